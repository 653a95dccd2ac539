"""The TDVP solve on the RBM's factored log-derivatives (sample space, no n × P matrix) against the dense solve."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs import estimators
from nqs.models import RBM
from nqs.qgt import TDVPSolver, tdvp_solve, tdvp_solve_factored

SOLVERS = [
    TDVPSolver("shift", diag_shift=1e-3),
    TDVPSolver("pinv", rcond=1e-12, rcond_smooth=1e-6),
    TDVPSolver("snr", rcond=1e-12, rcond_smooth=1e-6, snr_cut=1.0),
]


@pytest.mark.parametrize("param_dtype, mode", [("complex", "holomorphic"), ("real", "real")])
# P = 40: sample space below P rows (the factored path), parameter space above (the dense fallback: slow only)
@pytest.mark.parametrize("n_rows", [24, pytest.param(200, marks=pytest.mark.slow)])
@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: s.regulariser)
def test_factored_solve_is_the_dense_solve(param_dtype, mode, n_rows, solver):
    model = RBM(6, alpha=1.0, param_dtype=param_dtype, init_scale=0.3)
    params = model.init(jax.random.PRNGKey(0))
    sigma = jnp.where(jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (n_rows, 6)), 1, -1).astype(jnp.int8)
    O = estimators.log_derivatives(model, params, sigma, mode, factored=True)
    assert isinstance(O, estimators.FactoredJacobian)
    e = -1j * jax.random.normal(jax.random.PRNGKey(2), (n_rows,), jnp.complex128)
    w = jnp.full((n_rows,), 1.0 / n_rows)
    Oc, ec = estimators.centered(O.dense(), e, w)
    want, wi = tdvp_solve(Oc, ec, mode, solver, True)
    got, gi = tdvp_solve_factored(O, e, w, mode, solver, True)
    scale = float(jnp.max(jnp.abs(want)))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-8 * scale, rtol=1e-7)
    assert float(gi.residual) == pytest.approx(float(wi.residual), rel=1e-7, abs=1e-10)
    assert float(gi.n_kept) == pytest.approx(float(wi.n_kept), rel=1e-6)
