"""Explicit Runge–Kutta integrators, fixed-step and adaptive, for ``dy/dt = f(t, y)``.

Tier-2 numerics (no physics): these are the integrators of nqs's time evolution by the time-dependent
variational principle (TDVP), and of any ODE over a parameter vector.  The right-hand side
there is stochastic (it samples the wave function), so ``f`` carries an auxiliary state ``aux`` (the
sampler's chains, a PRNG key) and returns diagnostics::

    f(t, y, aux) -> (dy, aux, info)

``y`` is a 1-D real or complex ``jax`` array.  Every stage is a fresh evaluation of ``f`` with ``aux``
threaded through the stages in order (no first-same-as-last reuse: a noisy RHS evaluated twice at the same
point gives two different samples).  Everything here is pure and jittable with the method static.

Methods (Butcher tableaux, Hairer, Nørsett & Wanner, *Solving Ordinary Differential Equations I*, 2nd ed.,
Springer 1993, §II.1–II.5):

* ``euler`` — forward Euler, order 1, one stage.
* ``heun`` — Heun's method (explicit trapezoid), order 2, two stages.
* ``rk4`` — the classical Runge–Kutta method, order 4, four stages.
* ``adaptive_heun`` — Heun (order 2) with embedded forward Euler (order 1) for the error estimate.
* ``rk23`` — Bogacki–Shampine 3(2), four stages: propagates the 3rd-order solution, estimates the error
  with the embedded 2nd-order one (P. Bogacki & L. F. Shampine, Appl. Math. Lett. 2, 321 (1989)).
* ``rk45`` — Dormand–Prince 5(4) (DOPRI5), seven stages: propagates the 5th-order solution, estimates the
  error with the embedded 4th-order one (J. R. Dormand & P. J. Prince, J. Comput. Appl. Math. 6, 19 (1980)).

Adaptive stepping (local extrapolation: the higher-order solution is kept).  With stage derivatives
``k_i`` the error estimate is ``e = dt Σ_i (b_i − b̂_i) k_i`` and the error ratio

    r = ‖e‖ / (atol + rtol · max(‖y‖, ‖y_new‖)),

with ``‖·‖`` the Euclidean norm or one the caller passes (for TDVP the QGT metric ``sqrt(Re e† S e)``).
A step is accepted when ``r ≤ 1`` (or when ``dt ≤ dt_min`` already: it cannot shrink further), and the
next step size is ``dt · clip(0.9 · r^(−1/(q+1)), 0.2, 5)`` with ``q`` the embedded method's order,
clipped to ``[dt_min, dt_max]`` (Hairer–Nørsett–Wanner §II.4).

Entry points: :func:`tableau`, :func:`rk_step`, :func:`error_ratio`, :func:`next_dt`,
:func:`adaptive_step` (one attempted step, jittable) and :func:`integrate` (a Python driver for small ODEs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

FIXED = ("euler", "heun", "rk4")
ADAPTIVE = ("adaptive_heun", "rk23", "rk45")
METHODS = FIXED + ADAPTIVE


@dataclass(frozen=True)
class Tableau:
    """Butcher tableau of an explicit Runge–Kutta method.

    ``a[i]`` holds the ``i`` coefficients ``a_ij`` (j < i) of stage ``i`` (``a[0] == ()``); ``b`` the
    weights of the propagated solution; ``c`` the stage times.  ``b_error = b − b̂`` with ``b̂`` the embedded
    lower-order method's weights (``None`` for fixed-step methods).  ``order`` is the order of the
    propagated solution, ``error_order`` that of the embedded method (the step-size exponent is
    ``1/(error_order + 1)``; equal to ``order`` for fixed methods, where it is unused).
    """

    name: str
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    b_error: tuple[float, ...] | None
    order: int
    error_order: int

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def adaptive(self) -> bool:
        return self.b_error is not None


def _embedded(b: tuple[float, ...], b_hat: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(bi - bh for bi, bh in zip(b, b_hat, strict=True))


_HEUN_A = ((), (1.0,))
_HEUN_B = (0.5, 0.5)

# Bogacki–Shampine 3(2).
_BS_A = ((), (1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9))
_BS_B = (2 / 9, 1 / 3, 4 / 9, 0.0)
_BS_B_HAT = (7 / 24, 1 / 4, 1 / 3, 1 / 8)

# Dormand–Prince 5(4).
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_DP_B_HAT = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)

_TABLEAUX = {
    "euler": Tableau("euler", ((),), (1.0,), (0.0,), None, 1, 1),
    "heun": Tableau("heun", _HEUN_A, _HEUN_B, (0.0, 1.0), None, 2, 2),
    "rk4": Tableau(
        "rk4",
        ((), (1 / 2,), (0.0, 1 / 2), (0.0, 0.0, 1.0)),
        (1 / 6, 1 / 3, 1 / 3, 1 / 6),
        (0.0, 1 / 2, 1 / 2, 1.0),
        None,
        4,
        4,
    ),
    "adaptive_heun": Tableau("adaptive_heun", _HEUN_A, _HEUN_B, (0.0, 1.0), _embedded(_HEUN_B, (1.0, 0.0)), 2, 1),
    "rk23": Tableau("rk23", _BS_A, _BS_B, (0.0, 1 / 2, 3 / 4, 1.0), _embedded(_BS_B, _BS_B_HAT), 3, 2),
    "rk45": Tableau(
        "rk45", _DP_A, _DP_B, (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0), _embedded(_DP_B, _DP_B_HAT), 5, 4
    ),
}


def tableau(name: str) -> Tableau:
    """The Butcher tableau of method ``name`` (one of :data:`METHODS`)."""
    try:
        return _TABLEAUX[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown integrator {name!r}: valid methods are {', '.join(METHODS)}") from None


def _combine(coeffs: tuple[float, ...], ks: list) -> Any:
    """``Σ_j coeffs_j k_j`` over the non-zero coefficients (``None`` when all are zero)."""
    acc = None
    for coef, k in zip(coeffs, ks, strict=True):
        if coef != 0.0:
            term = coef * k
            acc = term if acc is None else acc + term
    return acc


def rk_step(tab: Tableau, f: Callable, t, y, dt, aux):
    """One explicit Runge–Kutta step of ``tab`` from ``(t, y)`` with step ``dt``.

    ``f(t, y, aux) -> (dy, aux, info)``; ``y`` is a 1-D ``jax`` array, real or complex.  The stages are
    evaluated in order with ``aux`` threaded through them.  Returns ``(y_new, y_err, aux, info0)``:
    ``y_err = dt Σ_i b_error_i k_i`` (``None`` for fixed methods), ``aux`` after the last stage and
    ``info0`` the ``info`` of the first stage, the evaluation at ``(t, y)`` (its diagnostics describe the
    state the step starts from).  ``y_new`` and ``y_err`` have ``y``'s dtype.
    """
    y = jnp.asarray(y)
    ks = []
    info0 = None
    for i in range(tab.stages):
        incr = _combine(tab.a[i], ks)
        y_i = y if incr is None else y + (dt * incr).astype(y.dtype)
        k, aux, info = f(t + tab.c[i] * dt, y_i, aux)
        k = jnp.asarray(k)
        if k.shape != y.shape:
            raise ValueError(f"integrator right-hand side returned shape {k.shape}, expected {y.shape}")
        if i == 0:
            info0 = info
        ks.append(k)
    y_new = y + (dt * _combine(tab.b, ks)).astype(y.dtype)
    y_err = None
    if tab.b_error is not None:
        err = _combine(tab.b_error, ks)
        y_err = jnp.zeros_like(y) if err is None else (dt * err).astype(y.dtype)
    return y_new, y_err, aux, info0


def _euclidean(v):
    return jnp.linalg.norm(v)


def error_ratio(y_err, y, y_new, rtol, atol, norm: Callable | None = None):
    """``norm(y_err) / (atol + rtol · max(norm(y), norm(y_new)))``, a scalar; accept the step when ≤ 1.

    ``norm`` defaults to the Euclidean norm (of ``|·|`` for complex); a caller may pass another, e.g.
    ``e ↦ sqrt(Re e† S e)`` with the quantum geometric tensor ``S``.
    """
    if y_err is None:
        raise ValueError("error_ratio needs an error estimate: fixed-step methods have none (y_err is None)")
    norm = _euclidean if norm is None else norm
    scale = atol + rtol * jnp.maximum(norm(y), norm(y_new))
    return jnp.real(norm(y_err)) / jnp.real(scale)


def next_dt(
    dt,
    ratio,
    error_order: int,
    *,
    safety: float = 0.9,
    min_factor: float = 0.2,
    max_factor: float = 5.0,
    dt_min: float = 0.0,
    dt_max: float = math.inf,
):
    """The next step size: ``dt · clip(safety · ratio^(−1/(error_order+1)), min_factor, max_factor)``,
    clipped to ``[dt_min, dt_max]``.  ``ratio == 0`` gives ``max_factor``, a non-finite ratio
    ``min_factor``.  Jittable."""
    ratio = jnp.asarray(ratio)
    finite_pos = jnp.isfinite(ratio) & (ratio > 0)
    safe = jnp.where(finite_pos, ratio, 1.0)
    factor = jnp.clip(safety * safe ** (-1.0 / (error_order + 1)), min_factor, max_factor)
    factor = jnp.where(ratio == 0, max_factor, jnp.where(finite_pos, factor, min_factor))
    return jnp.clip(dt * factor, dt_min, dt_max)


class Attempt(NamedTuple):
    """One attempted adaptive step.  ``t, y``: the new time and state when accepted, the old ones when
    rejected; ``dt_next``: the step size to try next; ``aux``: the auxiliary state after all stages
    (advanced whether or not the step was accepted); ``info0``: the first stage's diagnostics (at the
    old ``(t, y)``); ``ratio``: the error ratio (≤ 1 for an accepted step unless ``dt ≤ dt_min``)."""

    t: Any
    y: Any
    dt_next: Any
    accepted: Any
    aux: Any
    info0: Any
    ratio: Any


def adaptive_step(
    tab: Tableau,
    f: Callable,
    t,
    y,
    dt,
    aux,
    *,
    rtol,
    atol,
    norm: Callable | None = None,
    dt_min: float = 0.0,
    dt_max: float = math.inf,
) -> Attempt:
    """One attempted step of an embedded method: accepted when the error ratio is ≤ 1, or when
    ``dt ≤ dt_min`` already (it cannot shrink: the step is accepted and its ratio reported, whatever it
    is — a caller wanting to stop on a non-finite state checks ``ratio`` or ``y``).  On rejection ``t``
    and ``y`` are unchanged and ``dt_next < dt``.  Pure and jittable (no Python branching on traced
    values); ``aux`` is always the state after the step's evaluations, so a retry draws fresh samples.
    """
    if tab.b_error is None:
        raise ValueError(f"method {tab.name!r} has no error estimate: adaptive methods are {', '.join(ADAPTIVE)}")
    y = jnp.asarray(y)
    y_new, y_err, aux, info0 = rk_step(tab, f, t, y, dt, aux)
    ratio = error_ratio(y_err, y, y_new, rtol, atol, norm)
    accepted = (ratio <= 1.0) | (jnp.asarray(dt) <= dt_min)
    dt_next = next_dt(dt, ratio, tab.error_order, dt_min=dt_min, dt_max=dt_max)
    t_out = jnp.where(accepted, t + dt, t)
    y_out = jnp.where(accepted, y_new, y)
    return Attempt(t_out, y_out, dt_next, accepted, aux, info0, ratio)


def integrate(
    method: str,
    f: Callable,
    y0,
    t0: float,
    t_end: float,
    dt: float,
    aux=None,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    norm: Callable | None = None,
    dt_min: float = 0.0,
    dt_max: float = math.inf,
    max_steps: int = 100_000,
):
    """Integrate ``dy/dt = f(t, y, aux)`` from ``t0`` to ``t_end`` (a Python loop over a jitted step, for
    tests and small ODEs).  Fixed methods take steps of ``dt``, the last one shortened to land on
    ``t_end``; adaptive ones start from ``dt`` and adapt.  No step goes past ``t_end``; the last accepted
    time is ``t_end`` exactly.

    Returns ``(ts, ys, n_accepted, n_rejected)``: the accepted times (``t0`` first) and states
    (``ys[i]`` at ``ts[i]``) as numpy arrays.  Raises ``RuntimeError`` when ``t_end`` is not reached in
    ``max_steps`` attempts, ``ValueError`` for an unknown method or a non-positive ``dt``.
    """
    tab = tableau(method)
    if not dt > 0:
        raise ValueError(f"integrate: dt must be positive, got {dt}")
    if not t_end >= t0:
        raise ValueError(f"integrate: t_end ({t_end}) must not be before t0 ({t0})")
    t0, t_end = float(t0), float(t_end)
    y = jnp.asarray(y0)
    ts, ys = [t0], [np.asarray(y)]
    # A remaining interval below this counts as arrived (float rounding of t0 + Σ dt).
    tiny = 1e-12 * max(abs(t0), abs(t_end), t_end - t0, 1e-300)
    if tab.b_error is None:
        n = max(1, math.ceil((t_end - t0) / dt - 1e-9)) if t_end > t0 else 0
        if n > max_steps:
            raise RuntimeError(f"integrate: {n} steps of dt={dt} needed to reach t_end, above max_steps={max_steps}")
        step = jax.jit(partial(_fixed_step, tab, f))
        for i in range(n):
            t = t0 + i * dt
            t_next = t_end if i == n - 1 else t0 + (i + 1) * dt
            y, aux = step(t, y, t_next - t, aux)
            ts.append(t_next)
            ys.append(np.asarray(y))
        return np.asarray(ts), np.stack(ys), n, 0

    step = jax.jit(partial(adaptive_step, tab, f, rtol=rtol, atol=atol, norm=norm, dt_min=dt_min, dt_max=dt_max))
    t, h_next = t0, float(min(dt, dt_max))
    n_acc = n_rej = 0
    while t_end - t > tiny:
        if n_acc + n_rej >= max_steps:
            raise RuntimeError(f"integrate: t_end={t_end} not reached in max_steps={max_steps} (at t={t})")
        remaining = t_end - t
        last = h_next >= remaining - tiny
        h = remaining if last else h_next
        att = step(t, y, h, aux)
        aux = att.aux
        if bool(att.accepted):
            n_acc += 1
            t = t_end if last else float(att.t)
            y = att.y
            ts.append(t)
            ys.append(np.asarray(y))
        else:
            n_rej += 1
        h_next = float(att.dt_next)
    return np.asarray(ts), np.stack(ys), n_acc, n_rej


def _fixed_step(tab, f, t, y, dt, aux):
    y_new, _, aux, _ = rk_step(tab, f, t, y, dt, aux)
    return y_new, aux
