"""Models: log-derivatives vs central finite differences (Re and Im directions); fast path vs full."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from nqs.estimators import log_derivatives
from nqs.hilbert import SpinHilbert
from nqs.jax_utils import param_mode
from nqs.models import RBM, Jastrow, MarshallSign, RBMRealAmpPhase
from nqs.operators import apply_moves

N = 6


def _models():
    return {
        "rbm": RBM(N, 2.0, init_scale=0.2),
        "rbm_real": RBMRealAmpPhase(N, 1.0, init_scale=0.2),
        "rbm_real_params": RBM(N, 1.5, init_scale=0.2, param_dtype="real"),
        "marshall_real": MarshallSign(RBM(N, 1.0, init_scale=0.2, param_dtype="real"), tuple(i % 2 for i in range(N))),
        "jastrow": Jastrow(N, init_scale=0.2),
        "marshall": MarshallSign(RBM(N, 1.0, init_scale=0.2), tuple(i % 2 for i in range(N))),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_log_derivative_vs_finite_differences(name):
    model = _models()[name]
    params = model.init(jax.random.PRNGKey(2))
    mode = param_mode(model, params)
    flat, unravel = ravel_pytree(params)
    sigma = SpinHilbert(N).all_states()[[5, 17, 40]]
    O = np.asarray(log_derivatives(model, params, jnp.asarray(sigma), mode))
    eps = 1e-5
    rng = np.random.default_rng(0)
    for k in rng.choice(flat.size, 8, replace=False):
        e = np.zeros(flat.size, dtype=flat.dtype)
        e[k] = eps
        for s, o in zip(sigma, O, strict=True):
            f = lambda d, s=s: complex(model.log_psi(unravel(flat + d), jnp.asarray(s)))
            d_re = (f(e) - f(-e)) / (2 * eps)
            assert d_re == pytest.approx(o[k], abs=1e-8), "real direction"
            if mode == "holomorphic":
                # holomorphic: a step i*eps changes log psi by i*eps*O
                d_im = (f(1j * e) - f(-1j * e)) / (2 * eps)
                assert d_im == pytest.approx(1j * o[k], abs=1e-8), "imaginary direction"


@pytest.mark.parametrize("name", list(_models()))
@pytest.mark.parametrize("move", ["flip", "exchange"])
def test_fast_path_matches_full_evaluation_after_many_moves(name, move):
    model = _models()[name]
    params = model.init(jax.random.PRNGKey(4))
    params = jax.tree_util.tree_map(lambda x: 5 * x, params)  # not tiny: make the check meaningful
    sigma = SpinHilbert(N, 0).random_state(jax.random.PRNGKey(1), 1)[0]
    cache = model.cache(params, sigma)
    n_moves = 3000
    keys = jax.random.split(jax.random.PRNGKey(7), n_moves)

    def body(carry, key):
        sigma, cache, maxerr = carry
        if move == "flip":
            sites = jax.random.randint(key, (1,), 0, N)
            new = -sigma[sites]
            mask = jnp.ones(1, bool)
        else:
            sites = jax.random.choice(key, N, (2,), replace=False)
            new = sigma[sites[::-1]]
            mask = jnp.ones(2, bool)
        # a padded entry (site N, masked) must be ignored
        sites = jnp.concatenate([sites, jnp.array([N])])
        new = jnp.concatenate([new, jnp.array([1], sigma.dtype)])
        mask = jnp.concatenate([mask, jnp.array([False])])
        r = model.log_ratio(params, sigma, cache, sites, new, mask)
        new_sigma = apply_moves(sigma, sites, new)
        full = model.log_psi(params, new_sigma) - model.log_psi(params, sigma)
        # compare modulo 2πi (phases)
        d = r - full
        err = jnp.abs(jnp.real(d)) + jnp.abs(jnp.angle(jnp.exp(1j * jnp.imag(d))))
        cache = model.update_cache(params, sigma, cache, sites, new, mask)
        return (new_sigma, cache, jnp.maximum(maxerr, err)), None

    (sigma_f, cache_f, maxerr), _ = jax.lax.scan(body, (sigma, cache, 0.0), keys)
    assert float(maxerr) < 1e-12
    fresh = model.cache(params, sigma_f)
    for a, b in zip(jax.tree_util.tree_leaves(cache_f), jax.tree_util.tree_leaves(fresh), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-11)


def test_default_fast_path_ignores_padding_when_configuration_is_longer_than_n_sites():
    """Regression: the default log_ratio padded with model.n_sites, which for fermion models (n_sites = L,
    configurations of length 2L) pointed at a real entry and overwrote it."""
    from nqs.models import FunctionModel

    model = FunctionModel(lambda p, x: jnp.dot(p["w"], x).astype(complex), 3, {"w": jnp.arange(1.0, 7.0)})
    params = model.init(None)
    x = jnp.array([1, 0, 1, 0, 1, 0], dtype=jnp.int8)
    sites = jnp.array([1, 3])  # entry 1 changes; the second entry is padding (mask False)
    new = jnp.array([1, 1], dtype=jnp.int8)
    mask = jnp.array([True, False])
    r = model.log_ratio(params, x, model.cache(params, x), sites, new, mask)
    assert complex(r) == pytest.approx(2.0)  # only w[1] * (1 - 0)
