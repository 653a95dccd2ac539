"""One Lanczos step: the local H² estimator and the step's energy against dense linear algebra."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from test_fermion_models import random_params

from nqs import hamiltonians as H
from nqs.estimators import lanczos_step, local_energies_h2
from nqs.exact import lowest_energies
from nqs.hamiltonians.hubbard import hubbard
from nqs.hilbert import SpinHilbert
from nqs.hilbert.fermions import SpinfulFermions
from nqs.lattice import make_lattice
from nqs.models import RBM
from nqs.models.rbm_pp import RBMPP


def _spin_case():
    lat = make_lattice("chain", [8])
    hil = SpinHilbert(8, 0)
    model = RBM(8, alpha=1.0, init_scale=0.3)
    return hil, H.heisenberg(lat), model, model.init(jax.random.PRNGKey(5))


def _hubbard_case():
    lat = make_lattice("chain", [4])
    hil = SpinfulFermions(4, 2, 2)
    model = RBMPP(4, 2, 2, alpha=1.0, gutzwiller=True)
    return hil, hubbard(lat, t=1.0, U=4.0), model, random_params(model, jax.random.PRNGKey(2))


def _dense(hil, op):
    return op.to_dense(hil) if hasattr(op, "to_dense") else op.to_sparse(hil).toarray()


@pytest.mark.parametrize("case", [_spin_case, _hubbard_case], ids=["heisenberg-rbm", "hubbard-rbmpp"])
def test_local_h2_and_lanczos_energy_equal_dense(case):
    hil, op, model, params = case()
    states = jnp.asarray(hil.all_states())
    psi = np.exp(np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(params, states)))
    Hm = _dense(hil, op)
    e, h2, lost = jax.jit(lambda s: local_energies_h2(model, params, op, s))(states)
    np.testing.assert_allclose(np.asarray(e), (Hm @ psi) / psi, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(h2), (Hm @ (Hm @ psi)) / psi, rtol=1e-9, atol=1e-9)
    assert int(np.sum(lost)) == 0

    # exact-sampling weights |ψ|²: the Lanczos energy is the lowest in span{ψ, Hψ}
    w = np.abs(psi) ** 2 / np.sum(np.abs(psi) ** 2)
    out = lanczos_step(e, h2, w, n_blocks=8)
    basis = np.stack([psi, Hm @ psi], axis=1)
    ritz = scipy.linalg.eigh(basis.conj().T @ Hm @ basis, basis.conj().T @ basis, eigvals_only=True)
    e_var = np.vdot(psi, Hm @ psi).real / np.vdot(psi, psi).real
    assert out["energy"] == pytest.approx(ritz[0], abs=1e-9)
    assert out["variance"] == pytest.approx(
        np.vdot(Hm @ psi, Hm @ psi).real / np.vdot(psi, psi).real - e_var**2, abs=1e-9
    )
    e0 = lowest_energies(op, hil, 1)[0]
    assert e0 - 1e-9 < out["energy"] < e_var - 1e-6
    # the state ψ + β (H − E_var) ψ has that energy
    phi = psi + out["beta"] * (Hm @ psi - e_var * psi)
    assert np.vdot(phi, Hm @ phi).real / np.vdot(phi, phi).real == pytest.approx(out["energy"], abs=1e-9)


def test_lanczos_step_leaves_an_eigenstate_alone_and_has_an_error_bar():
    rng = np.random.default_rng(0)
    e = np.full(4096, -3.5) + 0j
    out = lanczos_step(e, e * e, None)
    assert out["energy"] == pytest.approx(-3.5, abs=1e-12) and out["error"] == pytest.approx(0, abs=1e-12)
    # noisy moments: the jackknife error is finite and positive
    e = -3.5 + rng.normal(size=4096) + 0j
    out = lanczos_step(e, e * e + rng.normal(size=4096), None, n_blocks=16)
    assert np.isfinite(out["error"]) and out["error"] > 0


def test_run_reports_the_lanczos_step(tmp_path):
    """``evaluation.lanczos_step``: with exact sampling the step's energy lies between E_0 and E(ψ)."""
    from nqs.config import Config
    from nqs.workflow import solve

    cfg = Config.model_validate(
        {
            "seed": 2,
            "lattice": {"kind": "chain", "size": [4]},
            "hamiltonian": {"kind": "hubbard", "t": 1.0, "U": 4.0, "n_up": 2, "n_down": 2},
            "model": {"kind": "rbm_pp", "alpha": 1, "gutzwiller": True},
            "sampler": {"kind": "exact"},
            "optimizer": {"kind": "sr", "learning_rate": 0.05, "n_steps": 5},
            "evaluation": {"lanczos_step": True},
            "output": {"dir": str(tmp_path / "run")},
        }
    )
    res = solve(cfg, progress=False)
    ls, e, e0 = res["lanczos_step"], res["energy"]["mean"], res["exact_energy"]
    assert e0 - 1e-9 < ls["energy"] < e - 1e-6
    assert ls["energy_combined"] == pytest.approx(e + ls["gain"]) and e0 - 1e-9 < ls["energy_combined"] < e
    assert ls["relative_error"] == pytest.approx(abs(ls["energy"] - e0) / abs(e0))
    assert ls["energy"] == pytest.approx(ls["energy_combined"], abs=1e-9)  # exact sampling: the same
    assert ls["lost_terms"] == 0 and ls["n_samples"] == 36


def test_lanczos_step_is_refused_for_the_dbm():
    from nqs.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="lanczos_step is not available for model kind 'dbm'"):
        parse_config({"model": {"kind": "dbm"}, "evaluation": {"lanczos_step": True}})


def test_gain_is_the_difference_of_the_two_energies_on_the_same_samples():
    rng = np.random.default_rng(1)
    e = -3.5 + rng.normal(size=2048) + 0j
    h2 = e * e + 0.3 * rng.normal(size=2048)
    out = lanczos_step(e, h2, None, n_blocks=16)
    assert out["energy_psi"] == pytest.approx(float(np.mean(e.real)))
    assert out["gain"] == pytest.approx(out["energy"] - out["energy_psi"]) and out["gain"] <= 0
    assert out["gain_error"] > 0


@pytest.mark.parametrize("power", [2.0, 1.0])
def test_sampled_lanczos_step_agrees_with_dense(power):
    """Markov chains of |ψ|^power (reweighted): the step's energy within 4 error bars of the dense value."""
    from nqs.config import Config
    from nqs.workflow import build, lanczos_evaluate

    cfg = Config.model_validate(
        {
            "lattice": {"kind": "chain", "size": [8]},
            "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
            "model": {"kind": "rbm", "alpha": 1, "init_scale": 0.3, "param_dtype": "complex", "marshall_sign": False},
            "sampler": {"kind": "exchange", "n_chains": 16, "n_samples": 256},
        }
    )
    problem = build(cfg)
    state = problem.driver.init(jax.random.PRNGKey(4))
    hil, op, model = problem.hilbert, problem.hamiltonian, problem.driver.model
    states = jnp.asarray(hil.all_states())
    psi = np.exp(np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(state.params, states)))
    Hm = _dense(hil, op)
    basis = np.stack([psi, Hm @ psi], axis=1)
    exact = scipy.linalg.eigh(basis.conj().T @ Hm @ basis, basis.conj().T @ basis, eigvals_only=True)[0]
    ls = lanczos_evaluate(problem, state.params, state.sampler_state, 8192, power=power)
    assert ls["n_samples"] == 8192 and ls["lost_terms"] == 0
    assert abs(ls["energy"] - exact) < 4 * ls["error"] + 1e-9
    assert ls["error"] < 0.1 * abs(exact - ls["energy_psi"])  # the step moves E by 1.6: a check that can fail
