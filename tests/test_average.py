"""``optimizer.average_last``: the final parameters are the mean over the last steps (mVMC's
NSROptItrSmp), and a resumed run averages the same steps."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from nqs import cli
from nqs.config import parse_config
from nqs.drivers import ParameterAverage

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
param_dtype = "real"
marshall_sign = true
[sampler]
kind = "exchange"
n_chains = 8
n_samples = 128
n_discard = 4
n_samples_eval = 512
[optimizer]
learning_rate = 0.05
n_steps = 12
average_last = {avg}
[output]
dir = "{out}"
checkpoint_every = 3
"""


def _params(k):
    return {"w": jnp.full((2, 3), float(k)), "c": jnp.asarray([1j * k])}


def test_average_survives_a_resume_and_restarts_when_the_window_moved(tmp_path):
    path = tmp_path / "params_average.npz"
    first = ParameterAverage(path, 6, 12, _params(0), None)
    for k in range(1, 10):
        first.add(k, _params(k))
    first.save(9)
    assert first.count == 3
    again = ParameterAverage(path, 6, 12, _params(0), resume_from=9)
    assert again.count == 3 and again.note is None
    for k in range(10, 13):
        again.add(k, _params(k))
    mean = again.mean(_params(0))
    np.testing.assert_allclose(mean["w"], np.mean(np.arange(7, 13)))  # steps 7..12
    np.testing.assert_allclose(mean["c"], [1j * np.mean(np.arange(7, 13))])
    moved = ParameterAverage(path, 4, 12, _params(0), resume_from=9)  # n_steps/average_last changed
    assert moved.count == 0 and moved.first == 9 and "restarts" in moved.note
    untouched = ParameterAverage(path, 6, 12, _params(0), resume_from=5)  # before the window: nothing to load
    assert untouched.count == 0 and untouched.note is None
    assert ParameterAverage(path, 12, 12, _params(0), None).mean(_params(7))["w"][0, 0] == 7  # no window


def test_run_with_average_last(tmp_path, capsys):
    results = {}
    for avg in (0, 1, 6):
        cfg = tmp_path / f"c{avg}.toml"
        cfg.write_text(TINY.format(avg=avg, out=str(tmp_path / f"run{avg}")))
        assert cli.main(["run", str(cfg), "--quiet"]) == 0
        results[avg] = json.loads((tmp_path / f"run{avg}" / "result.json").read_text())
    # averaging one step is the last step's parameters: the same final estimate to rounding
    assert results[1]["energy"]["mean"] == pytest.approx(results[0]["energy"]["mean"], abs=1e-10)
    assert results[6]["params_averaged_over"] == 6 and results[0]["params_averaged_over"] == 0
    assert results[6]["energy"]["mean"] != results[0]["energy"]["mean"]
    assert (tmp_path / "run6" / "params_average.npz").exists()
    err = capsys.readouterr().err
    assert "mean over the last 6 steps" in err


def test_average_last_beyond_n_steps(tmp_path, capsys):
    """In a config it is an error; a shorter --n-steps override averages the steps it has, and says so."""
    with pytest.raises(ValueError, match="average_last"):
        parse_config({"optimizer": {"n_steps": 5, "average_last": 6}})
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY.format(avg=6, out=str(tmp_path / "run")))
    assert cli.main(["run", str(cfg), "--quiet", "--n-steps", "3"]) == 0
    assert "averaging the last 3 steps" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "result.json").read_text())["params_averaged_over"] == 3


def test_zero_steps_evaluates_the_initial_state_without_a_plot(tmp_path, capsys):
    """Bug fix: `nqs run --n-steps 0` crashed in the convergence plot (empty history) and in the
    s/step line; it now evaluates the initial state, and `nqs plot` says there is nothing to plot."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY.format(avg=0, out=str(tmp_path / "run")))
    assert cli.main(["run", str(cfg), "--quiet", "--n-steps", "0"]) == 0
    res = json.loads((tmp_path / "run" / "result.json").read_text())
    assert res["n_steps"] == 0 and res["seconds_per_step"] is None and np.isfinite(res["energy"]["mean"])
    assert "0 steps" in capsys.readouterr().out
    assert not (tmp_path / "run" / "convergence.png").exists()
    assert cli.main(["plot", str(tmp_path / "run")]) == 2
    assert "no steps to plot" in capsys.readouterr().err
