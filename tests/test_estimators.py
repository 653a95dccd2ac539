"""Estimators: chunked evaluation equals unchunked; SR solver choice; V-score inputs."""

import jax
import numpy as np
import pytest

from nqs import hamiltonians as H
from nqs.estimators import local_energies, log_derivatives
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models import RBM, RBMRealAmpPhase
from nqs.sr import SRConfig, sr_direction


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_equals_unchunked(chunk):
    lat = make_lattice("square", [3, 3])
    op = H.j1j2(lat, 1.0, 0.5)
    model = RBMRealAmpPhase(9, 1.0, init_scale=0.3)
    params = model.init(jax.random.PRNGKey(0))
    s = SpinHilbert(9, 0.5).random_state(jax.random.PRNGKey(1), 50)
    # equal to rounding (batched matmuls may sum in another order)
    np.testing.assert_allclose(
        np.asarray(local_energies(model, params, op, s, chunk)),
        np.asarray(local_energies(model, params, op, s)),
        rtol=1e-13,
        atol=1e-13,
    )
    np.testing.assert_allclose(
        np.asarray(log_derivatives(model, params, s, "real", chunk)),
        np.asarray(log_derivatives(model, params, s, "real")),
        rtol=1e-13,
        atol=1e-13,
    )


def test_cg_solver_matches_dense():
    model = RBM(8, 1.0, init_scale=0.2)
    params = model.init(jax.random.PRNGKey(0))
    s = SpinHilbert(8, 0).random_state(jax.random.PRNGKey(1), 100)
    O = log_derivatives(model, params, s, "holomorphic")
    e = jax.random.normal(jax.random.PRNGKey(2), (100,)).astype(complex)
    w = np.full(100, 0.01)
    d_dense = sr_direction(O, e, w, "holomorphic", 0.01, "dense")
    d_cg = sr_direction(O, e, w, "holomorphic", 0.01, "cg", tol=1e-12, maxiter=5000)
    np.testing.assert_allclose(np.asarray(d_cg), np.asarray(d_dense), rtol=1e-7, atol=1e-9)


def test_solver_choice_by_cost():
    c = SRConfig()
    assert c.choose(n_params=300, n_samples=4096, mode="holomorphic") == "dense"
    assert c.choose(n_params=20000, n_samples=1024, mode="holomorphic") == "minsr"
    assert SRConfig(solver="cg").choose(10, 10, "real") == "cg"
