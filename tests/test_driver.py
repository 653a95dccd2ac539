"""Driver: NaN stops the run with a clear message and keeps the last good state; reproducible from a seed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs import hamiltonians as H
from nqs.config import Config, ConfigError
from nqs.drivers import VMC, NonFiniteError, OptimizerConfig, run
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models import FunctionModel
from nqs.sampling import ExactSampler
from nqs.workflow import build, solve


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
    import nqs.workflow.run_folder as wf

    cfg = Config.model_validate(
        {
            "lattice": {"kind": "chain", "size": [6]},
            "hamiltonian": {"kind": "ising"},
            "sampler": {"kind": "exact"},
            "optimizer": {"kind": "sgd", "learning_rate": 0.5, "n_steps": 500},
            "output": {"dir": str(tmp_path / "run"), "checkpoint_every": 1000},
        }
    )
    real_build = wf.build

    def build_with_exploding_model(c):
        p = real_build(c)
        p.driver = VMC(_exploding_model(6), p.hamiltonian, p.driver.sampler, p.driver.optimizer)
        return p

    monkeypatch.setattr(wf, "build", build_with_exploding_model)
    with pytest.raises(ConfigError, match="last good state") as err:
        solve(cfg, progress=False)
    assert "learning_rate" in str(err.value)
    assert (tmp_path / "run" / "checkpoint.npz").exists()


def test_same_seed_same_energies(tmp_path):
    def go(d):
        cfg = Config.model_validate(
            {
                "seed": 7,
                "lattice": {"kind": "chain", "size": [6]},
                "hamiltonian": {"kind": "heisenberg"},
                "sampler": {"n_chains": 4, "n_samples": 64},
                "optimizer": {"n_steps": 5},
                "output": {"dir": str(tmp_path / d)},
            }
        )
        solve(cfg, progress=False)
        return np.loadtxt(tmp_path / d / "history.csv", delimiter=",", skiprows=1, usecols=1)

    np.testing.assert_array_equal(go("a"), go("b"))


def test_threads_give_the_same_steps():
    """The step on several threads (the chains in parts, sampled at once) equals the one-jit step: the same
    chains, energies and parameters (to rounding in the solve); sampled from |ψ|¹, so the reweighting
    joins across the parts too."""
    from dataclasses import replace

    cfg = Config.model_validate(
        {
            "lattice": {"kind": "chain", "size": [10]},
            "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
            "model": {"kind": "rbm", "alpha": 1, "param_dtype": "real", "marshall_sign": True},
            "sampler": {"kind": "exchange", "n_chains": 8, "n_samples": 256, "n_discard": 4, "power": 1.0},
            "optimizer": {"kind": "sr", "learning_rate": 0.02},
        }
    )
    vmc = build(cfg).driver
    state = vmc.init(jax.random.PRNGKey(1))
    finals = {}
    for threads in (1, 2):
        v = replace(vmc, threads=threads)
        assert v.threads_in_use == threads
        s, step = state, v.make_step(v.solver(state))
        energies = []
        for _ in range(2):
            s, info = step(s)
            energies.append(float(info["energy"].mean.real))
        finals[threads] = (s, energies, float(info["acceptance"]))
        # the final evaluation (make_estimate) splits the chains the same way
        est = v.make_estimate()(s.params, s.sampler_state)
        if threads == 1:
            est1 = est
        else:
            for x, y in zip(est, est1, strict=True):
                for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y), strict=True):
                    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
    s1, e1, a1 = finals[1]
    for threads in (2,):
        s, e, a = finals[threads]
        np.testing.assert_array_equal(np.asarray(s.sampler_state.sigma), np.asarray(s1.sampler_state.sigma))
        assert int(s.sampler_state.n_accepted) == int(s1.sampler_state.n_accepted) and a == a1
        np.testing.assert_allclose(e, e1, rtol=1e-12)
        for x, y in zip(jax.tree_util.tree_leaves(s.params), jax.tree_util.tree_leaves(s1.params), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-12)


def test_threads_must_divide_the_chains():
    cfg = {
        "lattice": {"kind": "chain", "size": [6]},
        "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
        "sampler": {"kind": "exchange", "n_chains": 8},
        "parallel": {"threads": 3},
    }
    with pytest.raises(ConfigError, match=r"threads \(3\) must divide n_chains \(8\)"):
        build(Config.model_validate(cfg))
    cfg["sampler"] = {"kind": "exact"}
    assert build(Config.model_validate(cfg)).driver.threads_in_use == 1  # enumeration has no chains to split
