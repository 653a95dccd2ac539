"""Explicit Runge–Kutta integrators (nqs.integrators): orders of convergence, embedded error estimates,
adaptive step control, auxiliary-state threading and jit behaviour."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from nqs.integrators import (
    ADAPTIVE,
    FIXED,
    METHODS,
    adaptive_step,
    error_ratio,
    integrate,
    next_dt,
    rk_step,
    tableau,
)

LAM = -0.3 + 2j
Y0 = jnp.array([1.0 + 0.5j])
ORDER = {"euler": 1, "heun": 2, "rk4": 4, "adaptive_heun": 2, "rk23": 3, "rk45": 5}
ERROR_ORDER = {"adaptive_heun": 1, "rk23": 2, "rk45": 4}
STAGES = {"euler": 1, "heun": 2, "rk4": 4, "adaptive_heun": 2, "rk23": 4, "rk45": 7}


def scalar_rhs(t, y, aux):
    return LAM * y, aux, None


def exact_scalar(t):
    return Y0 * np.exp(LAM * t)


def fixed_step_error(method, n, t_end=1.0):
    """|y_n − y(t_end)| after n steps of dt = t_end / n of method's propagated solution."""
    step = jax.jit(partial(rk_step, tableau(method), scalar_rhs))
    y, dt = Y0, t_end / n
    for i in range(n):
        y, _, _, _ = step(i * dt, y, dt, None)
    return float(np.abs(y - exact_scalar(t_end))[0])


def test_tableaux_consistent():
    for m in METHODS:
        tab = tableau(m)
        assert tab.name == m and tab.stages == STAGES[m] and tab.order == ORDER[m]
        assert len(tab.a) == len(tab.c) == tab.stages
        for i, row in enumerate(tab.a):
            assert len(row) == i and sum(row) == pytest.approx(tab.c[i], abs=1e-14)
        assert sum(tab.b) == pytest.approx(1.0, abs=1e-14)
        assert (tab.b_error is None) == (m in FIXED)
        if tab.b_error is not None:
            assert tab.error_order == ERROR_ORDER[m]
            assert sum(tab.b_error) == pytest.approx(0.0, abs=1e-14)


@pytest.mark.parametrize(("method", "n"), [("euler", 64), ("heun", 32), ("rk4", 16)])
def test_fixed_order(method, n):
    e1, e2 = fixed_step_error(method, n), fixed_step_error(method, 2 * n)
    assert abs(np.log2(e1 / e2) - ORDER[method]) < 0.3, (e1, e2)


@pytest.mark.parametrize(("method", "n"), [("adaptive_heun", 32), ("rk23", 16), ("rk45", 16)])
def test_adaptive_tableau_propagated_order(method, n):
    e1, e2 = fixed_step_error(method, n), fixed_step_error(method, 2 * n)
    assert abs(np.log2(e1 / e2) - ORDER[method]) < 0.3, (e1, e2)


@pytest.mark.parametrize("method", ADAPTIVE)
def test_embedded_error_scaling(method):
    """One step's error estimate is the embedded method's local error, O(dt^(error_order+1))."""
    step = jax.jit(partial(rk_step, tableau(method), scalar_rhs))
    dt = 0.05
    _, e1, _, _ = step(0.0, Y0, dt, None)
    _, e2, _, _ = step(0.0, Y0, dt / 2, None)
    rate = np.log2(float(jnp.abs(e1[0])) / float(jnp.abs(e2[0])))
    assert abs(rate - (ERROR_ORDER[method] + 1)) < 0.3
    # and it estimates the embedded method's true local error: y_hat = y_new − y_err
    y_new, err, _, _ = step(0.0, Y0, dt, None)
    true_hat = abs(complex((y_new - err)[0]) - complex(exact_scalar(dt)[0]))
    assert float(jnp.abs(err[0])) == pytest.approx(true_hat, rel=0.2)


def test_complex_dtype_kept():
    y_new, y_err, _, _ = rk_step(tableau("rk45"), scalar_rhs, 0.0, Y0, 0.1, None)
    assert y_new.dtype == Y0.dtype and y_err.dtype == Y0.dtype and y_new.shape == (1,)


A = np.array([[-0.1, 1.0], [-1.0, -0.1]])
Y2 = np.array([1.0, 0.0])


def linear_rhs(t, y, aux):
    return jnp.asarray(A) @ y, aux, None


@pytest.mark.parametrize(("method", "tol"), [("rk4", 1e-8), ("rk45", 1e-6), ("rk23", 1e-5)])
def test_linear_system(method, tol):
    """Rotation + decay y' = A y, exact y(t) = expm(A t) y0."""
    t_end = 3.0
    ts, ys, n_acc, _ = integrate(method, linear_rhs, Y2, 0.0, t_end, 0.01, rtol=1e-9, atol=1e-12)
    assert ts[-1] == t_end and ys.shape == (n_acc + 1, 2)
    exact = np.stack([scipy.linalg.expm(A * t) @ Y2 for t in ts])
    assert np.max(np.abs(ys - exact)) < tol


@pytest.mark.parametrize("method", ADAPTIVE)
def test_tighter_rtol_more_steps_smaller_error(method):
    t_end = 2.0
    out = {}
    for rtol in (1e-4, 1e-7):
        ts, ys, n_acc, _ = integrate(method, scalar_rhs, Y0, 0.0, t_end, 0.1, rtol=rtol, atol=1e-12)
        out[rtol] = (n_acc, abs(complex(ys[-1, 0]) - complex(exact_scalar(t_end)[0])))
    assert out[1e-7][0] > out[1e-4][0]
    assert out[1e-7][1] < out[1e-4][1]


@pytest.mark.parametrize("method", ADAPTIVE)
def test_too_large_dt_rejected(method):
    tab = tableau(method)
    att = adaptive_step(tab, scalar_rhs, 0.5, Y0, 2.0, None, rtol=1e-6, atol=1e-9)
    assert not bool(att.accepted) and float(att.ratio) > 1
    assert float(att.dt_next) < 2.0
    assert float(att.t) == 0.5 and np.array_equal(att.y, Y0)
    _, _, n_acc, n_rej = integrate(method, scalar_rhs, Y0, 0.0, 1.0, 1.0, rtol=1e-6, atol=1e-9)
    assert n_rej >= 1 and n_acc >= 2


@pytest.mark.parametrize("method", ADAPTIVE)
def test_accepted_step_within_tolerance(method):
    """An accepted step's true local error is within the tolerance it was accepted at."""
    rtol, atol = 1e-6, 1e-9
    tab = tableau(method)
    dt = 0.5
    for _ in range(30):
        att = adaptive_step(tab, scalar_rhs, 0.0, Y0, dt, None, rtol=rtol, atol=atol)
        if bool(att.accepted):
            break
        dt = float(att.dt_next)
    assert bool(att.accepted) and float(att.ratio) <= 1
    assert float(att.t) == pytest.approx(dt)
    err = float(np.abs(att.y - exact_scalar(dt))[0])
    scale = atol + rtol * max(float(jnp.abs(Y0[0])), float(jnp.abs(att.y[0])))
    assert err <= scale
    assert float(att.dt_next) == pytest.approx(float(next_dt(dt, att.ratio, tab.error_order)))


def test_dt_min_forces_acceptance():
    att = adaptive_step(tableau("rk23"), scalar_rhs, 0.0, Y0, 2.0, None, rtol=1e-8, atol=1e-12, dt_min=2.0)
    assert bool(att.accepted) and float(att.ratio) > 1
    assert float(att.t) == 2.0 and float(att.dt_next) >= 2.0
    # 0.5 is rejected once, then every step is dt_min and accepted
    ts, _, n_acc, n_rej = integrate("rk23", scalar_rhs, Y0, 0.0, 1.0, 0.5, rtol=1e-10, atol=1e-14, dt_min=0.25)
    assert n_rej == 1 and n_acc == 4
    np.testing.assert_allclose(np.diff(ts), 0.25, atol=1e-15)


def test_dt_max_caps_steps():
    ts, _, _, _ = integrate("rk45", scalar_rhs, Y0, 0.0, 1.0, 0.01, rtol=1e-3, atol=1e-6, dt_max=0.1)
    assert np.max(np.diff(ts)) <= 0.1 + 1e-15 and len(ts) >= 11


@pytest.mark.parametrize("method", METHODS)
def test_never_passes_t_end(method):
    seen = []

    def rhs(t, y, aux):
        jax.debug.callback(lambda s: seen.append(float(s)), t)
        return LAM * y, aux, None

    t_end = 0.73
    ts, ys, n_acc, _ = integrate(method, rhs, Y0, 0.1, t_end, 0.2, rtol=1e-5, atol=1e-9)
    jax.effects_barrier()
    assert ts[0] == 0.1 and ts[-1] == t_end and np.all(np.diff(ts) > 0)
    assert len(ts) == n_acc + 1 == len(ys)
    assert max(seen) <= t_end
    if method in FIXED:
        np.testing.assert_allclose(np.diff(ts), [0.2, 0.2, 0.2, 0.03], atol=1e-14)


def counting_rhs(t, y, aux):
    """aux counts the evaluations; info records the call's time and count."""
    return LAM * y, aux + 1, {"t": t, "call": aux}


@pytest.mark.parametrize("method", METHODS)
def test_aux_threaded_through_stages(method):
    y_new, _, aux, info0 = rk_step(tableau(method), counting_rhs, 0.25, Y0, 0.1, jnp.int32(10))
    assert int(aux) == 10 + STAGES[method]
    assert int(info0["call"]) == 10 and float(info0["t"]) == 0.25
    if method in ADAPTIVE:
        att = adaptive_step(tableau(method), counting_rhs, 0.25, Y0, 0.1, jnp.int32(3), rtol=1e-3, atol=1e-6)
        assert int(att.aux) == 3 + STAGES[method]
        assert int(att.info0["call"]) == 3 and float(att.info0["t"]) == 0.25


def test_rejected_attempt_still_advances_aux():
    """A retry after a rejection must draw fresh samples: aux is the state after the attempt's stages."""
    att = adaptive_step(tableau("rk45"), counting_rhs, 0.0, Y0, 5.0, jnp.int32(0), rtol=1e-6, atol=1e-9)
    assert not bool(att.accepted) and int(att.aux) == 7


def test_jit_compiles_once():
    traces = []

    def rhs(t, y, aux):
        traces.append(1)
        return LAM * y, aux + 1, {"norm": jnp.linalg.norm(y)}

    step = jax.jit(partial(rk_step, tableau("rk4"), rhs))
    y1, _, a1, _ = step(0.0, Y0, 0.1, jnp.int32(0))
    y2, _, a2, info = step(0.3, 2 * Y0, 0.05, jnp.int32(5))
    assert len(traces) == 4  # one trace: four stages
    assert int(a1) == 4 and int(a2) == 9
    assert float(info["norm"]) == pytest.approx(2 * float(jnp.linalg.norm(Y0)))
    ref, _, _, _ = rk_step(tableau("rk4"), rhs, 0.3, 2 * Y0, 0.05, jnp.int32(5))
    np.testing.assert_allclose(y2, ref, rtol=1e-14)

    traces.clear()
    astep = jax.jit(partial(adaptive_step, tableau("rk45"), rhs, rtol=1e-6, atol=1e-9))
    r1 = astep(0.0, Y0, 0.1, jnp.int32(0))
    r2 = astep(0.5, 3 * Y0, 4.0, jnp.int32(0))
    assert len(traces) == 7
    assert bool(r1.accepted) and not bool(r2.accepted) and float(r2.t) == 0.5


def test_error_ratio_and_norm():
    y = jnp.array([3.0 + 4.0j, 0.0])
    y_new = jnp.array([0.0, 1.0j])
    err = jnp.array([1e-3j, 0.0])
    r = error_ratio(err, y, y_new, rtol=1e-3, atol=0.0)
    assert float(r) == pytest.approx(1e-3 / (1e-3 * 5.0))
    s = jnp.diag(jnp.array([4.0, 4.0]))
    metric = lambda e: jnp.sqrt(jnp.real(jnp.conj(e) @ s @ e))
    assert float(error_ratio(err, y, y_new, 1e-3, 0.0, norm=metric)) == pytest.approx(float(r))
    assert float(error_ratio(err, y, y_new, 0.0, 1e-3, norm=metric)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="fixed-step"):
        error_ratio(None, y, y_new, 1e-3, 0.0)


def test_next_dt():
    assert float(next_dt(1.0, 0.0, 4)) == 5.0
    assert float(next_dt(1.0, jnp.nan, 4)) == 0.2
    assert float(next_dt(1.0, jnp.inf, 4)) == 0.2
    assert float(next_dt(1.0, 1.0, 4)) == pytest.approx(0.9)
    assert float(next_dt(1.0, 2.0**5, 4)) == pytest.approx(0.45)
    assert float(next_dt(1.0, 1e-12, 2)) == 5.0
    assert float(next_dt(1.0, 1e-12, 2, dt_max=2.0)) == 2.0
    assert float(next_dt(1.0, 1e6, 2, dt_min=0.5)) == 0.5
    assert float(jax.jit(partial(next_dt, error_order=1))(2.0, 0.25)) == pytest.approx(2.0 * 0.9 * 2.0)


def test_unknown_method():
    with pytest.raises(ValueError, match="valid methods are euler, heun, rk4, adaptive_heun, rk23, rk45"):
        tableau("rk8")
    with pytest.raises(ValueError, match="rk8"):
        integrate("rk8", scalar_rhs, Y0, 0.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="no error estimate"):
        adaptive_step(tableau("rk4"), scalar_rhs, 0.0, Y0, 0.1, None, rtol=1e-6, atol=1e-9)


def test_integrate_bad_arguments():
    with pytest.raises(ValueError, match="dt must be positive"):
        integrate("rk4", scalar_rhs, Y0, 0.0, 1.0, 0.0)
    with pytest.raises(RuntimeError, match="max_steps"):
        integrate("euler", scalar_rhs, Y0, 0.0, 1.0, 0.01, max_steps=10)
    with pytest.raises(RuntimeError, match="max_steps"):
        integrate("rk45", scalar_rhs, Y0, 0.0, 1.0, 0.01, rtol=1e-12, atol=1e-15, max_steps=5)
