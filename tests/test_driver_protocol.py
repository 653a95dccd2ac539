"""The drivers floor is open: a driver declared in one place (its class, its config section, one registration)
runs through ``nqs run`` with the shared run loop, history, checkpoints and final evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import pytest

from nqs import cli, estimators, sr
from nqs.drivers import Driver, State
from nqs.registry import DRIVERS, Section
from nqs.stats import statistics

# ---------------------------------------------------------------------------------------- the toy driver


class GradientDescentConfig(Section):
    """``[driver] kind = "toy_gradient_descent"``: θ ← θ − η ∂E/∂θ with exact expectation values."""

    kind: Literal["toy_gradient_descent"] = "toy_gradient_descent"
    learning_rate: float = 0.1


@dataclass(frozen=True, eq=False)
class GradientDescent(Driver):
    """Plain gradient descent on ⟨H⟩ for real-parameter models with the exact sampler."""

    model: Any
    hamiltonian: Any
    sampler: Any
    learning_rate: float

    history_fields = ("step", "energy", "energy_error", "grad_norm", "seconds")

    def init(self, key, params=None):
        k_model, k_sampler = jax.random.split(key)
        params = self.model.init(k_model) if params is None else params
        return State(params, None, self.sampler.init_state(k_sampler), jnp.zeros((), jnp.int64))

    def estimate(self, params, sampler_state):
        samples, weights, sampler_state = self.sampler.sample(self.model, params, sampler_state)
        e_loc = estimators.local_energies(self.model, params, self.hamiltonian, samples)
        return samples, weights, e_loc, statistics(e_loc, weights, mcmc=False), sampler_state

    def make_estimate(self):
        return jax.jit(self.estimate)

    def make_step(self):
        def step(state):
            samples, weights, e_loc, stats, sstate = self.estimate(state.params, state.sampler_state)
            flat = samples.reshape(-1, samples.shape[-1])
            o = estimators.log_derivatives(self.model, state.params, flat, "real")
            grad = sr.gradient(o, e_loc.reshape(-1), weights.reshape(-1), "real")
            flat_params, unravel = jax.flatten_util.ravel_pytree(state.params)
            params = unravel(flat_params - self.learning_rate * grad)
            finite = jnp.all(jnp.isfinite(flat_params)) & jnp.isfinite(stats.mean)
            info = {"energy": stats, "grad_norm": jnp.linalg.norm(grad), "finite": finite}
            return State(params, None, sstate, state.step + 1), info

        return jax.jit(step)

    def history_row(self, info):
        s = info["energy"]
        return {
            "energy": float(jnp.real(s.mean)),
            "energy_error": float(s.error),
            "grad_norm": float(info["grad_norm"]),
        }


@pytest.fixture
def toy_driver():
    @DRIVERS.register("toy_gradient_descent", config=GradientDescentConfig)
    def build(section: GradientDescentConfig, parts) -> GradientDescent:
        return GradientDescent(parts.model, parts.hamiltonian, parts.sampler, section.learning_rate)

    yield
    DRIVERS.unregister("toy_gradient_descent")


def test_a_registered_driver_runs_through_nqs_run_to_the_ed_energy(tmp_path, toy_driver, capsys):
    config = tmp_path / "toy.toml"
    config.write_text(
        "seed = 3\n"
        '[lattice]\nkind = "chain"\nsize = [4]\n'
        '[hamiltonian]\nkind = "heisenberg"\ntotal_sz = 0\n'
        '[model]\nkind = "rbm"\nalpha = 1\nparam_dtype = "real"\nmarshall_sign = true\ninit_scale = 0.1\n'
        '[sampler]\nkind = "exact"\n'
        "[optimizer]\nn_steps = 200\n"
        '[driver]\nkind = "toy_gradient_descent"\nlearning_rate = 0.2\n'
        f'[output]\ndir = "{tmp_path / "run"}"\ncheckpoint_every = 50\n'
    )
    assert cli.main(["run", str(config), "--quiet"]) == 0
    run = tmp_path / "run"
    result = json.loads((run / "result.json").read_text())
    assert result["exact_energy"] == pytest.approx(-2.0, abs=1e-10)  # 4-site Heisenberg ring, S = σ/2
    assert result["relative_error"] < 1e-4
    assert result["estimator"] == {"driver": "GradientDescent"}
    header = (run / "history.csv").read_text().splitlines()[0]
    assert header == "step,energy,energy_error,grad_norm,seconds"
    assert "toy_gradient_descent" in (run / "config.toml").read_text()
    # the shared loop checkpoints and resumes it like any driver
    assert cli.main(["run", str(config), "--quiet", "--resume", "--n-steps", "220"]) == 0
    assert json.loads((run / "result.json").read_text())["n_steps"] == 220


def test_unknown_driver_kind_and_keys_are_one_line_errors(tmp_path, toy_driver, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[driver]\nkind = "no_such_driver"\n')
    assert cli.main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown driver kind 'no_such_driver'" in err and "toy_gradient_descent" in err
    config.write_text('[driver]\nkind = "toy_gradient_descent"\nlearning_rat = 0.1\n')
    assert cli.main(["run", str(config)]) == 2
    assert "learning_rat" in capsys.readouterr().err


def test_the_built_in_drivers_implement_the_protocol():
    from nqs.drivers import DBMVMC, VMC

    for cls in (VMC, DBMVMC):
        assert issubclass(cls, Driver)
    assert {"vmc", "dbm"} <= set(DRIVERS.kinds())
