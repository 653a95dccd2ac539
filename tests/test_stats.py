"""Tests for nqs.stats: weighted mode, independent and AR(1) data, R̂, jit/vmap, formatting."""

import jax

jax.config.update("jax_enable_x64", True)

import json  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nqs.stats import (  # noqa: E402
    Stats,
    autocorrelation,
    blocking_error,
    format_value_error,
    integrated_time,
    statistics,
    weighted_mean,
)

PHI = 0.9
TAU_AR1 = (1 + PHI) / (2 * (1 - PHI))  # exact τ_int = 9.5


def ar1(rng: np.random.Generator, shape: tuple[int, ...], n_steps: int, phi: float = PHI):
    """Stationary AR(1) series x_t = φ x_{t-1} + ξ_t, ξ ~ N(0,1); returns shape + (n_steps,)."""
    noise = rng.standard_normal((n_steps,) + shape)
    out = np.empty((n_steps,) + shape)
    x = noise[0] / np.sqrt(1 - phi**2)  # start in the stationary distribution
    for t in range(n_steps):
        if t:
            x = phi * x + noise[t]
        out[t] = x
    return np.moveaxis(out, 0, -1)


# --------------------------------------------------------------------------------- weighted mode
@pytest.mark.parametrize("is_complex", [False, True])
def test_weighted_mode_matches_numpy(is_complex):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 300))
    if is_complex:
        x = x + 1j * rng.standard_normal((1, 300))
    w = rng.random((1, 300))
    w /= w.sum()
    s = statistics(jnp.asarray(x), jnp.asarray(w))
    mean = np.sum(w * x)
    var = np.sum(w * np.abs(x - mean) ** 2)
    np.testing.assert_allclose(np.asarray(s.mean), mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(float(s.variance), var, rtol=0, atol=1e-12)
    assert float(s.error) == 0.0 and float(s.tau_corr) == 0.0 and np.isnan(float(s.r_hat))
    assert jnp.iscomplexobj(s.mean) == is_complex
    assert not jnp.iscomplexobj(s.variance)
    # 1D input with 1D weights, and unnormalised weights give the same result
    s1 = statistics(jnp.asarray(x[0]), jnp.asarray(3.0 * w[0]))
    np.testing.assert_allclose(np.asarray(s1.mean), mean, atol=1e-12)
    np.testing.assert_allclose(float(s1.variance), var, atol=1e-12)


def test_weighted_mean_helper():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7)) + 1j * rng.standard_normal((5, 7))
    w = rng.random((5, 7))
    for axis in (0, 1, None):
        ref = np.sum(w * x, axis=axis) / np.sum(w, axis=axis)
        np.testing.assert_allclose(np.asarray(weighted_mean(x, w, axis=axis)), ref, atol=1e-12)
    wv = rng.random(7)  # broadcast weights along the last axis
    ref = np.sum(wv * x, axis=1) / np.sum(wv)
    np.testing.assert_allclose(np.asarray(weighted_mean(x, wv, axis=1)), ref, atol=1e-12)


# --------------------------------------------------------------------------------- MCMC mode
def test_independent_gaussian():
    rng = np.random.default_rng(2)
    x = 1.5 + 2.0 * rng.standard_normal((32, 1024))
    s = statistics(jnp.asarray(x))
    n = x.size
    np.testing.assert_allclose(float(s.mean), x.mean(), atol=1e-12)
    np.testing.assert_allclose(float(s.variance), x.var(), rtol=1e-12)
    assert 0.0 <= float(s.tau_corr) < 0.2
    assert abs(float(s.error) / (x.std() / np.sqrt(n)) - 1.0) < 0.1
    assert abs(float(s.r_hat) - 1.0) < 0.01
    # the true error (2/sqrt(N)) too
    assert abs(float(s.error) / (2.0 / np.sqrt(n)) - 1.0) < 0.1


def test_ar1_tau_single_large_run():
    rng = np.random.default_rng(3)
    x = ar1(rng, (16,), 8000)
    s = statistics(jnp.asarray(x))
    tau_int = float(s.tau_corr) + 0.5
    assert abs(tau_int / TAU_AR1 - 1.0) < 0.2, tau_int
    np.testing.assert_allclose(float(integrated_time(x)), tau_int, rtol=1e-12)
    rho = np.asarray(autocorrelation(x))
    assert rho[0] == pytest.approx(1.0)
    np.testing.assert_allclose(rho[1:6], PHI ** np.arange(1, 6), atol=0.05)


def test_ar1_error_bar_matches_repeats():
    """200 independent repeats of 8 chains x 2000 steps: the reported error bar equals the true
    spread of the mean across repeats; τ_int and the blocking estimate agree too."""
    rng = np.random.default_rng(4)
    n_rep, n_chains, n_steps = 200, 8, 2000
    x = ar1(rng, (n_rep, n_chains), n_steps)
    stats = jax.jit(jax.vmap(statistics))(jnp.asarray(x))
    assert stats.mean.shape == (n_rep,)
    true_std = np.std(np.asarray(stats.mean), ddof=1)  # ≈ 0.079; its own rel. noise ≈ 5 %
    exact_std = np.sqrt(1 / (1 - PHI**2) * 2 * TAU_AR1 / (n_chains * n_steps))
    assert abs(true_std / exact_std - 1.0) < 0.15  # sanity of the generator
    est = float(np.sqrt(np.mean(np.asarray(stats.error) ** 2)))
    assert abs(est / true_std - 1.0) < 0.2, (est, true_std)
    tau = np.asarray(stats.tau_corr) + 0.5
    assert abs(tau.mean() / TAU_AR1 - 1.0) < 0.2, tau.mean()
    assert np.all(np.abs(np.asarray(stats.r_hat) - 1.0) < 0.05)
    blk = np.array([blocking_error(x[r]) for r in range(50)])
    blk_rms = float(np.sqrt(np.mean(blk**2)))
    assert abs(blk_rms / true_std - 1.0) < 0.2, (blk_rms, true_std)


def test_blocking_error_1d():
    rng = np.random.default_rng(5)
    iid = rng.standard_normal(2**14)
    assert blocking_error(iid) == pytest.approx(1.0 / np.sqrt(iid.size), rel=0.1)
    # AR(1) series of odd length: true error sqrt(σ² 2τ/N); RMS over 20 series (each ±10 %)
    y = ar1(rng, (20,), 20_001)
    exact = np.sqrt(1 / (1 - PHI**2) * 2 * TAU_AR1 / y.shape[1])
    rms = np.sqrt(np.mean([blocking_error(row) ** 2 for row in y]))
    assert rms == pytest.approx(exact, rel=0.2)
    # 2D input: independent chains combined into the error of the grand mean
    assert blocking_error(y) == pytest.approx(exact / np.sqrt(y.shape[0]), rel=0.2)
    assert blocking_error(np.ones(100)) == 0.0
    with pytest.raises(ValueError):
        blocking_error(np.zeros((2, 2, 2)))


def test_r_hat_detects_offsets():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 500)) + np.array([0.0, 0.0, 1.0, 2.0])[:, None]
    s = statistics(jnp.asarray(x))
    assert float(s.r_hat) > 1.1
    # non-converged chains also inflate τ and the error bar above the naive one
    assert float(s.error) > 3 * np.sqrt(x.var() / x.size)


def test_r_hat_reference_formula():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 40)) + 0.3 * rng.standard_normal((5, 1))
    m, n = x.shape
    w = x.var(axis=1, ddof=1).mean()
    b_n = x.mean(axis=1).var(ddof=1)
    ref = np.sqrt(((n - 1) / n * w + b_n) / w)
    assert float(statistics(x).r_hat) == pytest.approx(ref, rel=1e-12)


def test_degenerate_inputs():
    s = statistics(jnp.ones((3, 50)))
    assert float(s.error) == 0.0 and float(s.variance) == 0.0
    assert float(s.tau_corr) == 0.0 and float(s.r_hat) == 1.0
    s = statistics(jnp.asarray([[1.0] * 20, [2.0] * 20]))  # constant but different chains
    assert np.isinf(float(s.r_hat))
    s = statistics(jnp.arange(100.0))  # 1D → single chain, R̂ undefined
    assert np.isnan(float(s.r_hat))
    assert float(s.mean) == pytest.approx(49.5)
    with pytest.raises(ValueError):
        statistics(jnp.zeros((2, 3, 4)))


def test_short_chains_use_batch_means():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4096, 1))  # one sample per chain: naive error
    s = statistics(jnp.asarray(x))
    assert float(s.error) == pytest.approx(np.std(x, ddof=1) / np.sqrt(x.size), rel=1e-10)
    x = rng.standard_normal((512, 4))  # n_steps < 8: batch means over chains
    s = statistics(jnp.asarray(x))
    ref = np.sqrt(x.mean(axis=1).var(ddof=1) / x.shape[0])
    assert float(s.error) == pytest.approx(ref, rel=1e-10)


# --------------------------------------------------------------------------------- jit, complex
def test_jit_and_complex():
    rng = np.random.default_rng(9)
    n_traces = 0

    def f(x):
        nonlocal n_traces
        n_traces += 1
        return statistics(x)

    jf = jax.jit(f)
    for seed in range(3):
        r = np.random.default_rng(seed)
        x = r.standard_normal((8, 256)) + 1j * r.standard_normal((8, 256))
        s = jf(jnp.asarray(x))
        s_eager = statistics(jnp.asarray(x))
        for a, b in zip(s, s_eager, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(np.asarray(s.mean), x.mean(), atol=1e-12)
        np.testing.assert_allclose(float(s.variance), np.mean(np.abs(x - x.mean()) ** 2))
    assert n_traces == 1
    assert isinstance(s, Stats)
    assert s.mean.dtype == jnp.complex128 and s.error.dtype == jnp.float64
    assert s.r_hat.dtype == jnp.float64 and s.tau_corr.dtype == jnp.float64
    # weighted mode under jit as well
    x = rng.standard_normal((1, 16)) + 1j * rng.standard_normal((1, 16))
    w = rng.random((1, 16))
    w /= w.sum()
    sw = jax.jit(statistics)(jnp.asarray(x), jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(sw.mean), np.sum(w * x), atol=1e-12)


def test_stats_is_pytree():
    s = statistics(jnp.arange(64.0).reshape(4, 16))
    leaves, treedef = jax.tree_util.tree_flatten(s)
    assert len(leaves) == 5
    assert isinstance(jax.tree_util.tree_unflatten(treedef, leaves), Stats)


# --------------------------------------------------------------------------------- formatting
def test_format_value_error():
    assert format_value_error(-7.12341, 0.0012) == "-7.1234(12)"
    assert format_value_error(1.0, 0.00996) == "1.000(10)"
    assert format_value_error(1234.5, 123.0) == "1234(123)"
    assert format_value_error(0.5, 0.0) == "0.5"


def test_repr_and_to_dict():
    s = Stats(
        jnp.asarray(-7.12341 + 0.0j),
        jnp.asarray(0.0012),
        jnp.asarray(0.25),
        jnp.asarray(0.4),
        jnp.asarray(1.001),
    )
    text = repr(s)
    assert text.startswith("-7.1234(12) ± 0.0012") and "R̂=1.0010" in text
    d = s.to_dict()
    assert d == pytest.approx(
        {
            "mean": -7.12341,
            "mean_imag": 0.0,
            "error": 0.0012,
            "variance": 0.25,
            "tau_corr": 0.4,
            "r_hat": 1.001,
        }
    )
    assert all(type(v) is float for v in d.values())
    json.dumps(d)
    # repr does not fail on batched or traced fields
    assert "Stats(" in repr(jax.vmap(statistics)(jnp.ones((2, 3, 8))))
    jax.jit(lambda x: (repr(statistics(x)), x)[1])(jnp.ones((2, 8)))


def test_weighted_mcmc_with_uniform_weights_is_plain_mcmc():
    """Importance-weighted chains (``mcmc=True``) with equal weights reduce to the plain estimator; with
    unequal weights the mean is the weighted one and the error follows the reweighted deviations."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 500)).cumsum(axis=1) * 0.05 + rng.standard_normal((8, 500))
    plain = statistics(x)
    same = statistics(x, np.full(x.shape, 1.0 / x.size), mcmc=True)
    for a, b in zip(plain, same, strict=True):
        assert float(a) == pytest.approx(float(b), rel=1e-9, abs=1e-12)
    w = rng.uniform(0.5, 1.5, x.shape)
    w /= w.sum()
    st = statistics(x, w, mcmc=True)
    assert float(st.mean) == pytest.approx(float(np.sum(w * x)))
    assert float(st.variance) == pytest.approx(float(np.sum(w * (x - np.sum(w * x)) ** 2)))
    assert float(st.error) == pytest.approx(float(statistics(x.size * w * (x - np.sum(w * x))).error))
