"""Many devices, many processes (issue #3): chains sharded over devices and processes give the one-device
energies to rounding; float32 precision tracks float64; the chunk size chosen from a memory limit.

The multi-device and multi-process runs are subprocesses (XLA_FLAGS and jax.distributed must be set
before JAX starts); each runs tests/parallel_worker.py on the CPU.
"""

import json
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import parallel_worker as pw
import pytest

from nqs import parallel
from nqs.drivers.vmc import auto_chunk_size

WORKER = str(Path(__file__).with_name("parallel_worker.py"))
TOL = 1e-10


def _env(n_devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "NQS_"))}
    env["JAX_PLATFORMS"] = "cpu"
    if n_devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    return env


def _last_json(out: str) -> dict:
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_device():
    """Energy histories (and final states) on one device without a mesh: the reference."""
    out = {}
    for spec in ("dense", "minsr"):
        out[spec] = pw.energies(pw.build(spec))
    return out


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def test_two_devices_equal_one_device(one_device):
    """Chains split over 2 host devices (unchunked, chunked per device, MinSR) = one device to rounding."""
    r = subprocess.run(
        [sys.executable, WORKER, "--mesh", "--runs", "dense,dense:3,minsr"],
        env=_env(2),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = _last_json(r.stdout)
    assert res["devices"] == 2 and res["processes"] == 1
    e = res["energies"]
    ref = one_device["dense"][0]
    assert len(e["dense"]) == 5 and np.all(np.isfinite(e["dense"]))
    assert _max_diff(e["dense"], ref) < TOL
    assert _max_diff(e["dense:3"], ref) < TOL
    assert _max_diff(e["minsr"], one_device["minsr"][0]) < TOL
    assert ref[-1] < ref[0]  # the optimization does something (Heisenberg chain of 8: E0 ≈ −3.651)


def test_sampler_loops_have_no_cross_device_reductions():
    """Regression: the acceptance count was summed over the chains at every Metropolis step, which on a mesh
    is an all-reduce (a rendezvous of the devices) per step: the 2-device step took 3× the 1-device one."""
    r = subprocess.run(
        [sys.executable, WORKER, "--mesh", "--sampler-loops"], env=_env(2), capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = _last_json(r.stdout)
    assert res["devices"] == 2
    assert res["sampler_loop_collectives"] == []


def test_collectives_in_loops_finds_a_reduction_in_a_loop():
    hlo = """
%body (p: (s64[], f64[8])) -> (s64[], f64[8]) {
  %x = f64[8] get-tuple-element(%p), index=1
  %ar = f64[8] all-reduce(%x), replica_groups={{0,1}}, to_apply=%add
}

ENTRY %main (a: f64[8]) -> f64[8] {
  %w = (s64[], f64[8]) while(%t), condition=%cond, body=%body
  %g = f64[8] all-gather(%a), dimensions={0}
}
"""
    assert pw.collectives_in_loops(hlo) == ["all-reduce"]
    assert pw.collectives_in_loops(hlo.replace("all-reduce(", "add(")) == []


def test_two_processes_equal_one_device(one_device, tmp_path):
    """Two processes joined with jax.distributed (gloo CPU collectives), one device each = one device;
    the checkpoint gathers both processes' chains."""
    port, ckpt = _free_port(), tmp_path / "ckpt.npz"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                WORKER,
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
                "--checkpoint",
                str(ckpt),
            ],
            env=_env(1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=300))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    ref, ref_state = one_device["dense"]
    for out, _ in outs:
        res = _last_json(out)
        assert res["devices"] == 2 and res["processes"] == 2
        assert _max_diff(res["energies"]["dense"], ref) < TOL
    with np.load(ckpt) as data:
        leaves = jax.tree_util.tree_leaves(ref_state)
        for i, x in enumerate(leaves):
            np.testing.assert_allclose(data[f"leaf_{i}"], np.asarray(x), rtol=0, atol=TOL)


def test_uneven_chains_rejected():
    sampler = pw.build().sampler  # 8 chains
    fake_mesh = types.SimpleNamespace(devices=np.empty(3, dtype=object), axis_names=(parallel.AXIS,))
    with pytest.raises(ValueError, match=r"n_chains \(8\) must be a multiple of the number of devices \(3\)"):
        sampler.state_sharding(fake_mesh)


def test_initialize_without_configuration_is_a_no_op(monkeypatch):
    for k in ("NQS_COORDINATOR", "NQS_NUM_PROCESSES", "NQS_PROCESS_ID"):
        monkeypatch.delenv(k, raising=False)
    assert parallel.initialize() is False
    assert parallel.initialize(num_processes=1) is False
    with pytest.raises(ValueError, match="together"):
        parallel.initialize(coordinator_address="127.0.0.1:1234")


def test_float32_tracks_float64(one_device):
    """precision = "float32": parameters and O in float32, SR solved in float64; energies follow float64."""
    vmc = pw.build(precision="float32")
    state = vmc.init(jax.random.PRNGKey(pw.SEED))
    assert {x.dtype for x in jax.tree_util.tree_leaves(state.params)} == {np.dtype(np.float32)}
    e32, s32 = pw.energies(vmc)
    e64, s64 = one_device["dense"]
    assert _max_diff(e32, e64) < 1e-4
    assert {x.dtype for x in jax.tree_util.tree_leaves(s32.params)} == {np.dtype(np.float32)}
    for a, b in zip(jax.tree_util.tree_leaves(s32.params), jax.tree_util.tree_leaves(s64.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    with pytest.raises(ValueError, match="precision"):
        pw.build(precision="float16")


def test_auto_chunk_size_estimate():
    # 1000 rows, 100 parameters of 8 bytes: O takes 0.8 MB; per sample max(10·(20+2·80+16), 3·(800+80)) · 2 = 5280
    mb = 2**-20
    assert auto_chunk_size(1e3, 1000, 100, 8, 10, 20, 80) is None  # everything fits at once
    assert auto_chunk_size((800_000 + 5280 * 37 + 100) * mb, 1000, 100, 8, 10, 20, 80) == 37
    assert auto_chunk_size((800_000 + 5280) * mb, 1000, 100, 8, 10, 20, 80) == 1
    with pytest.raises(ValueError, match="too small"):
        auto_chunk_size(0.5, 1000, 100, 8, 10, 20, 80)


def test_large_model_caches_get_small_automatic_chunks():
    """A projection's cache over its images (256 here) streams megabytes per sample: the automatic chunk is
    capped at LARGE_CACHE_CHUNK rows; an explicit chunk_size still wins and a plain RBM is left alone."""
    from nqs.config import load_config
    from nqs.drivers.vmc import LARGE_CACHE_CHUNK
    from nqs.workflow import build

    cfg = load_config(Path(__file__).parents[1] / "examples" / "j1j2_4x4_projected.toml")
    assert build(cfg).driver.effective_chunk_size == LARGE_CACHE_CHUNK
    cfg.optimizer.chunk_size = 100
    assert build(cfg).driver.effective_chunk_size == 100
    assert pw.build(memory_limit_mb=1000.0).effective_chunk_size is None


def test_memory_limit_chooses_chunks_with_same_result(one_device):
    big = pw.build(memory_limit_mb=1000.0)
    assert big.effective_chunk_size is None
    vmc = pw.build(memory_limit_mb=0.06)  # O: 64 × 80 × 8 bytes = 40 kB; ≈ 5 kB per sample → chunks of ~4
    c = vmc.effective_chunk_size
    assert c is not None and 1 < c < 64, c
    assert pw.build(chunk_size=5, memory_limit_mb=0.06).effective_chunk_size == 5  # explicit wins
    e, _ = pw.energies(vmc, 3)
    assert _max_diff(e, one_device["dense"][0][:3]) < TOL
