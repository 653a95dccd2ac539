"""Faults against ``nqs run``: kill -9 at several points, SIGINT and SIGTERM, each followed by ``--resume`` with
the same seed.  The history ends complete and contiguous (steps 0 … n−1, each once) and every number equals an
uninterrupted run's: the checkpoint holds the whole state, the chains' random keys included."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
N_STEPS = 600
CONFIG = f"""
seed = 5
[lattice]
kind = "chain"
size = [8]
[hamiltonian]
kind = "heisenberg"
total_sz = 0
[model]
kind = "rbm"
alpha = 1
param_dtype = "real"
marshall_sign = true
[sampler]
kind = "exchange"
n_chains = 8
n_samples = 64
n_discard = 4
[optimizer]
kind = "sr"
learning_rate = 0.05
learning_rate_final = 0.01
n_steps = {N_STEPS}
[output]
checkpoint_every = 20
"""


def _env():
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": path}


def _start(cfg: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nqs.cli", "run", str(cfg), "--quiet", "--out", str(out), *extra],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows_written(out: Path) -> int:
    try:
        return max((out / "history.csv").read_text().count("\n") - 1, 0)
    except FileNotFoundError:
        return 0


def _stop_after(p: subprocess.Popen, out: Path, n_rows: int, sig: int) -> tuple[int, str]:
    """Send ``sig`` once ``history.csv`` holds ``n_rows`` rows; the exit code and stderr."""
    t0 = time.time()
    while _rows_written(out) < n_rows and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.005)
    assert p.poll() is None, f"the run ended before the fault at {n_rows} rows: {p.communicate()[1][-500:]}"
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def _finish(cfg: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "nqs.cli", "run", str(cfg), "--quiet", "--out", str(out), *extra],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def _history(out: Path) -> list[dict]:
    with open(out / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "tiny.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def reference(config) -> tuple[list[dict], dict]:
    """An uninterrupted run: its history and result."""
    out = config.parent / "reference"
    _finish(config, out)
    return _history(out), json.loads((out / "result.json").read_text())


def _assert_equals_reference(out: Path, reference) -> None:
    rows, result = _history(out), json.loads((out / "result.json").read_text())
    ref_rows, ref_result = reference
    assert [int(r["step"]) for r in rows] == list(range(N_STEPS)), "the history has gaps or repeated steps"
    for r, q in zip(rows, ref_rows, strict=True):
        for k in r.keys() - {"seconds"}:
            assert float(r[k]) == float(q[k]), (r["step"], k, r[k], q[k])
    assert result["n_steps"] == N_STEPS
    assert result["energy"] == ref_result["energy"]


@pytest.mark.slow
def test_kill_9_at_three_points_then_resume_equals_an_uninterrupted_run(config, reference, tmp_path):
    out = tmp_path / "run"
    for i, n_rows in enumerate((30, 250, 450)):
        p = _start(config, out, *(["--resume"] if i else []))
        code, err = _stop_after(p, out, n_rows, signal.SIGKILL)
        assert code == -signal.SIGKILL, err[-500:]
        assert (out / "checkpoint.npz").exists()
    r = _finish(config, out, "--resume")
    assert "resuming from step" in r.stderr
    _assert_equals_reference(out, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")], ids=["int", "term"]
)
def test_signal_stops_with_one_line_and_resumes(config, reference, tmp_path, sig, code, word):
    """SIGINT and SIGTERM stop the run between steps with one line naming the checkpoint kept; --resume
    then continues to the uninterrupted run's numbers."""
    out = tmp_path / "run"
    rc, err = _stop_after(_start(config, out), out, 200, sig)
    assert rc == code, err[-1000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert word in last and f"{out}/" in last and "--resume" in last, last
    _finish(config, out, "--resume")
    _assert_equals_reference(out, reference)


# ------------------------------------------------------------------------------------ in-process, fast
def test_sigterm_takes_the_interrupt_path(tmp_path, monkeypatch, capsys):
    """SIGTERM during a command: one line, exit 143, and the previous handler restored."""
    from nqs import cli

    def slow_command(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in here
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(cli, "cmd_ed", slow_command)
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["ed", "x.toml"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == "nqs: terminated (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("checkpoint", [True, False])
def test_interrupted_run_says_whether_it_can_resume(tmp_path, monkeypatch, capsys, checkpoint):
    from nqs import cli
    from nqs.workflow import run_folder

    def interrupted(cfg, **kwargs):
        out = Path(cfg.output.dir)
        out.mkdir(parents=True)
        if checkpoint:
            (out / "checkpoint.npz").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(run_folder, "solve", interrupted)
    monkeypatch.setattr("nqs.workflow.solve", interrupted)
    (tmp_path / "c.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "c.toml", "--quiet", "--out", "run"]) == 128 + signal.SIGINT
    err = capsys.readouterr().err.strip()
    if checkpoint:
        assert err == "nqs: interrupted; the last checkpoint in run/ is kept: continue with --resume"
    else:
        assert (
            err == "nqs: interrupted before the first checkpoint (output.checkpoint_every); nothing to resume in run/"
        )


def test_a_fresh_run_into_a_run_folder_keeps_the_earlier_run(tmp_path):
    """Nothing lost: a second `nqs run` (no --resume) into the same folder moves the first run's files aside."""
    from nqs.workflow.run_folder import keep_earlier_run

    out = tmp_path / "run"
    out.mkdir()
    assert keep_earlier_run(out) is None  # an empty folder: nothing to keep
    (out / "config.toml").write_text("seed = 1\n")
    assert keep_earlier_run(out) is None  # a config alone is no run
    for name in ("history.csv", "checkpoint.npz", "result.json"):
        (out / name).write_text(name)
    first = keep_earlier_run(out)
    assert first == out / "previous.1"
    assert sorted(p.name for p in first.iterdir()) == ["checkpoint.npz", "config.toml", "history.csv", "result.json"]
    assert not (out / "history.csv").exists()
    (out / "history.csv").write_text("again")
    assert keep_earlier_run(out) == out / "previous.2"
    assert (out / "previous.1" / "history.csv").read_text() == "history.csv"
