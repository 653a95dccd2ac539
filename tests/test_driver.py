"""Driver: NaN stops the run with a clear message and keeps the last good state; reproducible from a seed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs import hamiltonians as H
from nqs.config import Config, ConfigError
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models import FunctionModel
from nqs.sampling import ExactSampler
from nqs.vmc import VMC, NonFiniteError, OptimizerConfig, run
from nqs.workflow import solve


def _exploding_model(n):
    """log ψ = w·σ, but NaN once |w| grows past 1: a stand-in for an optimization that blows up."""

    def log_psi(p, s):
        v = p["w"] @ s
        return jnp.where(jnp.linalg.norm(p["w"]) > 1.0, jnp.nan, v).astype(complex)

    return FunctionModel(log_psi, n, {"w": 0.01 * jnp.arange(n, dtype=float)})


def test_nan_raises_with_last_good_state():
    lat = make_lattice("chain", [6])
    vmc = VMC(_exploding_model(6), H.ising(lat), ExactSampler(SpinHilbert(6)), OptimizerConfig("sgd", 0.5))
    state = vmc.init(jax.random.PRNGKey(0))
    with pytest.raises(NonFiniteError, match="NaN or inf at step") as err:
        run(vmc, state, 500)
    good = err.value.state
    assert bool(jnp.all(jnp.isfinite(good.params["w"])))
    assert int(good.step) == err.value.step > 0


def test_solve_reports_nan_and_keeps_checkpoint(tmp_path, monkeypatch):
    import nqs.workflow as wf

    cfg = Config.model_validate({
        "lattice": {"kind": "chain", "size": [6]}, "hamiltonian": {"kind": "ising"},
        "sampler": {"kind": "exact"}, "optimizer": {"kind": "sgd", "learning_rate": 0.5, "n_steps": 500},
        "output": {"dir": str(tmp_path / "run"), "checkpoint_every": 1000},
    })
    real_build = wf.build

    def build_with_exploding_model(c):
        p = real_build(c)
        p.vmc = VMC(_exploding_model(6), p.hamiltonian, p.vmc.sampler, p.vmc.optimizer)
        return p

    monkeypatch.setattr(wf, "build", build_with_exploding_model)
    with pytest.raises(ConfigError, match="last good state") as err:
        solve(cfg, progress=False)
    assert "learning_rate" in str(err.value)
    assert (tmp_path / "run" / "checkpoint.npz").exists()


def test_same_seed_same_energies(tmp_path):
    def go(d):
        cfg = Config.model_validate({
            "seed": 7, "lattice": {"kind": "chain", "size": [6]}, "hamiltonian": {"kind": "heisenberg"},
            "sampler": {"n_chains": 4, "n_samples": 64}, "optimizer": {"n_steps": 5},
            "output": {"dir": str(tmp_path / d)},
        })
        solve(cfg, progress=False)
        return np.loadtxt(tmp_path / d / "history.csv", delimiter=",", skiprows=1, usecols=1)

    np.testing.assert_array_equal(go("a"), go("b"))
