"""CLI: one-line errors with exit code 2, `nqs ed --json`, a full run's outputs, kill -9 + --resume."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

NQS = [sys.executable, "-m", "nqs.cli"]

TINY = """
seed = 3
[lattice]
kind = "chain"
size = [6]
[hamiltonian]
kind = "heisenberg"
total_sz = 0
[model]
kind = "rbm"
alpha = 1
[sampler]
kind = "exchange"
n_chains = 8
n_samples = 64
n_discard = 4
[optimizer]
kind = "sr"
learning_rate = 0.05
n_steps = {n_steps}
[output]
dir = "{out}"
checkpoint_every = {every}
"""


def nqs(*args, cwd=None, timeout=300):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([*NQS, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


BAD = {
    "unknown key": ("[lattice]\nkind='chain'\nsize=[6]\ncolour='red'\n", "lattice.colour: unknown key"),
    "unknown section": ("[solver]\nx=1\n", "solver: unknown key"),
    "wrong type": ("[sampler]\nn_samples='many'\n", "sampler.n_samples"),
    "size length": ("[lattice]\nkind='square'\nsize=[4]\n", "lattice.size must have 2 entries"),
    "impossible total_sz": (
        "[lattice]\nsize=[6]\n[hamiltonian]\nkind='heisenberg'\ntotal_sz=4\n",
        "total_sz = 4 is impossible",
    ),
    "half-integer total_sz": ("[lattice]\nsize=[6]\n[hamiltonian]\nkind='heisenberg'\ntotal_sz=0.5\n", "total_sz"),
    "non-positive samples": ("[sampler]\nn_samples=0\n", "sampler.n_samples: Input should be greater than 0"),
    "parameter of another model": ("[hamiltonian]\nkind='heisenberg'\nJ2=0.5\n", "'J2' is not a parameter"),
    "local sampler with total_sz": ("[hamiltonian]\ntotal_sz=0\n[sampler]\nkind='local'\n", "sampler.kind"),
    "exchange on ising": ("[hamiltonian]\nkind='ising'\n[sampler]\nkind='exchange'\n", "Hamiltonian does not"),
    "marshall on triangular": ("[lattice]\nkind='triangular'\nsize=[3,3]\n[model]\nmarshall_sign=true\n", "bipartite"),
    "bad toml": ("[lattice\nkind=", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2(tmp_path, case):
    text, expected = BAD[case]
    r = nqs("run", str(write(tmp_path, text)), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert expected in lines[0], lines[0]


def test_missing_config_file(tmp_path):
    r = nqs("run", "nope.toml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "nqs: error: config file not found: nope.toml"
    r = nqs("ed", "nope.toml", cwd=tmp_path)
    assert r.returncode == 2 and "not found" in r.stderr


def test_ed_json(tmp_path):
    cfg = write(tmp_path, "[lattice]\nkind='chain'\nsize=[8]\n[hamiltonian]\nkind='heisenberg'\ntotal_sz=0\n")
    r = nqs("ed", str(cfg), "--json", "-k", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_sites"] == 8 and "S = sigma/2" in out["units"]
    assert out["energies"][0] == pytest.approx(-3.6510934089371783, abs=1e-10)
    assert out["energies"][0] < out["energies"][1]


def _history_steps(run_dir):
    with open(run_dir / "history.csv") as f:
        return [int(float(r["step"])) for r in csv.DictReader(f)]


def test_run_writes_outputs_and_plot(tmp_path):
    cfg = write(tmp_path, TINY.format(n_steps=20, out="run", every=5))
    r = nqs("run", str(cfg), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = tmp_path / "run"
    for f in ("config.toml", "result.json", "history.csv", "checkpoint.npz", "convergence.png"):
        assert (d / f).exists(), f
    res = json.loads((d / "result.json").read_text())
    for k in (
        "energy",
        "v_score",
        "exact_energy",
        "relative_error",
        "n_sites",
        "n_parameters",
        "units",
        "seconds_total",
        "seconds_per_step",
    ):
        assert k in res
    assert set(res["energy"]) >= {"mean", "error", "variance", "per_site"}
    assert res["n_sites"] == 6 and res["exact_energy"] == pytest.approx(-2.8027756377319946, abs=1e-9)
    assert "exact" in r.stdout and "units" in r.stdout
    assert _history_steps(d) == list(range(20))
    resolved = (d / "config.toml").read_text()
    assert "diag_shift" in resolved and "n_discard" in resolved  # every default written out
    r2 = nqs("plot", str(d), cwd=tmp_path)
    assert r2.returncode == 0 and (d / "convergence.png").stat().st_size > 1000


def test_kill_9_then_resume_has_no_gap(tmp_path):
    n_steps = 400
    cfg = write(tmp_path, TINY.format(n_steps=n_steps, out="run", every=10))
    d = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    p = subprocess.Popen(
        [*NQS, "run", str(cfg), "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    t0 = time.time()
    while time.time() - t0 < 240:
        if (d / "history.csv").exists() and len(_history_steps(d)) >= 25:
            break
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done = _history_steps(d)
    assert 0 < len(done) < n_steps, "the run must be killed mid-way"
    r = nqs("run", str(cfg), "--quiet", "--resume", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _history_steps(d) == list(range(n_steps))
    res = json.loads((d / "result.json").read_text())
    assert res["n_steps"] == n_steps


def test_resume_with_changed_model_is_refused(tmp_path):
    cfg = write(tmp_path, TINY.format(n_steps=5, out="run", every=5))
    assert nqs("run", str(cfg), "--quiet", cwd=tmp_path).returncode == 0
    cfg2 = write(tmp_path, TINY.format(n_steps=5, out="run", every=5).replace("alpha = 1", "alpha = 2"), "d.toml")
    r = nqs("run", str(cfg2), "--quiet", "--resume", cwd=tmp_path)
    assert r.returncode == 2 and "differs" in r.stderr


def test_resume_without_checkpoint(tmp_path):
    cfg = write(tmp_path, TINY.format(n_steps=5, out="run", every=5))
    r = nqs("run", str(cfg), "--resume", cwd=tmp_path)
    assert r.returncode == 2 and "no checkpoint" in r.stderr


def test_two_process_run_equals_one_process(tmp_path):
    """`[parallel] distributed = true` with two local processes (gloo on the CPU) gives the same
    energy history as one process, and only process 0 writes the run folder."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    base = TINY.format(n_steps=4, out="{out}", every=2).replace("alpha = 1", 'alpha = 1\nparam_dtype = "real"')
    one = write(tmp_path, base.replace("{out}", str(tmp_path / "one")), "one.toml")
    two = write(
        tmp_path,
        base.replace("{out}", str(tmp_path / "two"))
        + f'[parallel]\ndistributed = true\ncoordinator = "localhost:{port}"\nnum_processes = 2\n',
        "two.toml",
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs = [
        subprocess.Popen(
            [*NQS, "run", str(two), "--quiet"],
            env={**env, "NQS_PROCESS_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert "energy" in outs[0][0] and "energy" not in outs[1][0]  # process 1 prints no result
    r = nqs("run", str(one), "--quiet")
    assert r.returncode == 0, r.stderr
    rows = [list(csv.DictReader(open(tmp_path / d / "history.csv"))) for d in ("one", "two")]
    assert len(rows[0]) == len(rows[1]) == 4
    for a, b in zip(*rows, strict=True):
        assert abs(float(a["energy"]) - float(b["energy"])) < 1e-10
