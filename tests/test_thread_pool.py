"""Regression: the RBM+PP J1-J2 step deadlocked on a 2-core machine (jaxlib's batched LU blocks
XLA CPU pool workers; see nqs.runtime.MIN_CPU_THREADS).  Run in a fresh process, with a time limit, so a
hang fails the test instead of stalling the suite."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import os
    import nqs
    nqs.runtime.configure_cpu()
    import jax
    assert int(os.environ["PJRT_NPROC"]) >= nqs.runtime.MIN_CPU_THREADS, os.environ["PJRT_NPROC"]
    from nqs.config import load_config
    from nqs.workflow import build
    cfg = load_config(os.path.join(os.environ["NQS_ROOT"], "examples", "j1j2_4x4_rbm_pp.toml"))
    cfg.sampler.n_samples = 1024
    v = build(cfg).driver
    st = v.init(jax.random.PRNGKey(1))
    step = v.make_step(v.solver(st))
    for _ in range(3):
        st, info = step(st)
        jax.block_until_ready(st.params)
    print("E", float(info["energy"].mean.real))
    """
)


def test_rbm_pp_j1j2_step_finishes_on_a_small_cpu_pool():
    env = {k: v for k, v in os.environ.items() if k != "PJRT_NPROC"}
    env["NQS_ROOT"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    e = float(r.stdout.split("E")[-1])
    assert -8.46 < e < 0.0  # a variational energy of the 4x4 J1-J2 model (ED -8.4579)


def test_xla_cpu_flag_is_added_once_and_can_be_kept_out(monkeypatch):
    """nqs.runtime.tune_xla_cpu appends the YNN-off flag (jaxlib 0.10) and the small-loop threshold after the
    user's flags, never twice, each not where the user set its own, and nothing with NQS_KEEP_XLA_FLAGS
    (it only edits the environment of later backends)."""
    from importlib.metadata import version

    import nqs

    ynn = [nqs.runtime.YNN_OFF] if version("jaxlib").startswith("0.10.") else []
    monkeypatch.delenv("NQS_KEEP_XLA_FLAGS", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    nqs.runtime.tune_xla_cpu()
    nqs.runtime.tune_xla_cpu()
    assert os.environ["XLA_FLAGS"] == " ".join(
        ["--xla_force_host_platform_device_count=2", *ynn, nqs.runtime.SMALL_LOOPS]
    )
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=-reduce")
    nqs.runtime.tune_xla_cpu()
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_experimental_ynn_fusion_type=-reduce {nqs.runtime.SMALL_LOOPS}"
    own = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"
    monkeypatch.setenv("XLA_FLAGS", own)
    nqs.runtime.tune_xla_cpu()
    assert os.environ["XLA_FLAGS"] == " ".join([own, *ynn])
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("NQS_KEEP_XLA_FLAGS", "1")
    nqs.runtime.tune_xla_cpu()
    assert os.environ["XLA_FLAGS"] == ""


def test_openblas_spin_is_shortened_unless_set(monkeypatch):
    """nqs.runtime.tune_openblas shortens OpenBLAS's idle spin (its threads otherwise hold the cores ~0.1 s after
    each LAPACK call, when the next step's chains want them) and keeps a value the user set."""
    import nqs

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    nqs.runtime.tune_openblas()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == str(nqs.runtime.OPENBLAS_SPIN)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")
    nqs.runtime.tune_openblas()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "28"


def test_import_nqs_changes_no_environment_variable_and_exports_the_api():
    """``import nqs`` (and its public names) leave os.environ and JAX's settings alone; the CPU tuning is the
    explicit :func:`nqs.runtime.configure_cpu`."""
    script = textwrap.dedent(
        """
        import os
        before = dict(os.environ)
        import nqs
        from nqs import RBM, VMC, MetropolisSampler, SpinHilbert, make_lattice, heisenberg, run, Driver
        import nqs.cli, nqs.workflow, nqs.drivers
        assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())
        import jax
        assert not jax.config.jax_enable_x64
        nqs.runtime.configure_cpu()
        assert jax.config.jax_enable_x64 and "PJRT_NPROC" in os.environ
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PJRT_NPROC", "OPENBLAS_THREAD_TIMEOUT", "XLA_FLAGS")}
    env.pop("JAX_ENABLE_X64", None)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
