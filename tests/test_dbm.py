"""Deep Boltzmann machine container and the coupling decomposition (D)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs.hilbert import SpinHilbert
from nqs.models.dbm import DBM, LN2, decompose_coupling, log_2cosh_np
from nqs.models.rbm import RBM

SPINS = (-1.0, 1.0)


# --------------------------------------------------------------------------------- identity (D)
def test_decomposition_identity_real():
    V = np.linspace(-10, 10, 2001)
    log_c, w1, w2 = decompose_coupling(V)
    assert w1.dtype == np.float64 and np.all(w1 >= 0)
    np.testing.assert_array_equal(np.abs(w2), w1)
    worst = 0.0
    for s1, s2 in itertools.product(SPINS, SPINS):
        lhs = log_c + V * s1 * s2  # ln(C e^{V s1 s2})
        rhs = log_2cosh_np(w1 * s1 + w2 * s2)  # ln Σ_h e^{h(W1 s1 + W2 s2)}
        worst = max(worst, float(np.max(np.abs(lhs - rhs) / np.abs(lhs))))
    assert worst < 1e-12, worst


def test_decomposition_closed_forms():
    V = np.array([-3.0, -0.2, 0.0, 0.2, 3.0])
    log_c, w1, w2 = decompose_coupling(V)
    np.testing.assert_allclose(w1, 0.5 * np.arccosh(np.exp(2 * np.abs(V))), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(log_c, LN2 + np.abs(V), rtol=1e-15)
    np.testing.assert_array_equal(np.sign(w2), [-1, -1, 0, 1, 1])


def test_decomposition_no_overflow():
    V = np.array([-1e4, -800.0, 800.0, 1e4])
    log_c, w1, w2 = decompose_coupling(V)
    assert np.all(np.isfinite(log_c)) and np.all(np.isfinite(w1)) and np.all(np.isfinite(w2))
    for s1, s2 in itertools.product(SPINS, SPINS):
        lhs = log_c + V * s1 * s2  # rounding of |V| + V s1 s2 sets the scale of the comparison
        rhs = log_2cosh_np(w1 * s1 + w2 * s2)
        assert np.all(np.abs(rhs - lhs) <= 1e-14 * (1 + 2 * np.abs(V)))


def test_decomposition_identity_complex():
    rng = np.random.default_rng(0)
    V = rng.normal(size=200) * 3 + 1j * rng.normal(size=200) * 2
    V = np.concatenate([V, 1j * np.linspace(-3, 3, 31), [-200 + 0.5j, 200 - 0.5j]])
    log_c, w1, w2 = decompose_coupling(V)
    assert np.iscomplexobj(w1)
    for s1, s2 in itertools.product(SPINS, SPINS):
        lhs = np.exp(log_c + V * s1 * s2 - log_c.real)
        rhs = np.exp(log_2cosh_np(w1 * s1 + w2 * s2) - log_c.real)
        np.testing.assert_allclose(rhs, lhs, rtol=1e-12, atol=1e-12)
    # for Re V >= 0 it is the principal-branch ½ arcosh(e^{2V}) of the note (up to iπ)
    small = 0.3 + 0.2j
    assert abs(decompose_coupling(small)[1] - 0.5 * np.arccosh(np.exp(2 * small))) < 1e-14


# --------------------------------------------------------------------------------- the container
def _random_params(dbm, key, scale=0.5):
    p = DBM(dbm.n_visible, dbm.n_hidden, dbm.n_deep, init_scale=scale, complex_params=True).init(key)
    p["kappa"] = jnp.asarray(0.3 - 0.4j)
    return p


def test_init_shapes_and_check():
    dbm = DBM(5, 7, 3, init_scale=0.01)
    p = dbm.init(jax.random.PRNGKey(0))
    assert p["W"].shape == (5, 7) and p["U"].shape == (3, 7) and p["c"].shape == (3,)
    assert p["kappa"].shape == () and p["W"].dtype == jnp.float64
    assert float(jnp.max(jnp.abs(p["W"]))) < 0.1
    pc = DBM(5, 7, 3, complex_params=True).init(jax.random.PRNGKey(0))
    assert jnp.iscomplexobj(pc["U"])
    dbm.check_params(p)
    with pytest.raises(ValueError, match="shape"):
        DBM(5, 7, 4).check_params(p)
    assert dbm.n_sites == 5 and "N_d=3" in dbm.describe()


def test_log_phi_and_psi_against_brute_force(key):
    dbm = DBM(3, 4, 2)
    p = _random_params(dbm, key)
    log_phi = jax.jit(dbm.log_phi)
    log_psi = jax.jit(dbm.log_psi_exact)
    for sigma in SpinHilbert(3).all_states():
        s = sigma.astype(float)
        psi = 0j
        for d in itertools.product(SPINS, SPINS):
            d = np.array(d)
            phi = 0j
            for h in itertools.product(SPINS, repeat=4):
                h = np.array(h)
                th = np.asarray(p["b"]) + s @ np.asarray(p["W"]) + d @ np.asarray(p["U"])
                phi += np.exp(complex(p["kappa"]) + np.asarray(p["a"]) @ s + np.asarray(p["c"]) @ d + h @ th)
            lp = complex(log_phi(p, jnp.asarray(sigma), jnp.asarray(d, dtype=jnp.int8)))
            assert abs(np.exp(lp) - phi) < 1e-13 * abs(phi)
            psi += phi
        lpsi = complex(log_psi(p, jnp.asarray(sigma)))
        assert abs(np.exp(lpsi) - psi) < 1e-13 * abs(psi)
    sigma = jnp.asarray(SpinHilbert(3).all_states()[3])
    assert abs(complex(dbm.log_psi(p, sigma)) - complex(log_psi(p, sigma))) < 1e-13  # Model contract


def test_enumeration_chunks_and_contraction_agree(key):
    """log_psi_exact (chunked enumeration) = amplitudes() (variable elimination), dense weights."""
    dbm = DBM(4, 6, 7)
    p = _random_params(dbm, key, scale=0.4)
    states = jnp.asarray(SpinHilbert(4).all_states())
    full = jax.vmap(lambda s: dbm.log_psi_exact(p, s))(states)
    chunked = jax.vmap(lambda s: dbm.log_psi_exact(p, s, chunk_bits=3))(states)
    np.testing.assert_allclose(np.exp(chunked), np.exp(full), rtol=1e-12)
    vec, log_scale = dbm.amplitudes(p)
    psi = np.exp(log_scale) * vec
    np.testing.assert_allclose(psi, np.exp(np.asarray(full)), rtol=1e-12)
    assert np.isclose(np.max(np.abs(vec)), 1.0)


def test_no_deep_layer_is_an_rbm(key):
    """N_d = 0: log ψ = log ψ_RBM + M ln 2 (nqs's RBM drops the factor 2 of 2 cosh)."""
    n, m = 5, 4
    rbm = RBM(n, alpha=m / n, init_scale=0.3)
    pr = rbm.init(key)
    dbm = DBM(n, m, 0)
    p = {
        "a": pr["a"],
        "b": pr["b"],
        "W": pr["W"],
        "c": jnp.zeros((0,), complex),
        "U": jnp.zeros((0, m), complex),
        "kappa": jnp.asarray(-m * LN2 + 0j),
    }
    for sigma in SpinHilbert(n).all_states()[::5]:
        s = jnp.asarray(sigma)
        assert abs(complex(dbm.log_psi_exact(p, s)) - complex(rbm.log_psi(pr, s))) < 1e-13
    vec, ls = dbm.amplitudes(p)
    ref = np.exp(np.asarray(jax.vmap(rbm.log_psi, in_axes=(None, 0))(pr, jnp.asarray(SpinHilbert(n).all_states()))))
    np.testing.assert_allclose(np.exp(ls) * vec, ref, rtol=1e-12)


def test_enumeration_limit():
    dbm = DBM(2, 2, 30)
    p = dbm.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="N_d"):
        dbm.log_psi_exact(p, jnp.ones(2, jnp.int8))
