"""Statistics of Monte Carlo estimators: mean, error bar, autocorrelation time, R̂.

Tier-0 numerics (no physics).  The main entry point is :func:`statistics`, which is pure
``jax.numpy`` and can be called inside ``jax.jit`` / ``jax.vmap``.  It is itself wrapped in
``jax.jit`` (one compilation per input shape/dtype) so that eager calls are cheap too.

Notation: ``x`` has shape ``(n_chains, n_steps)`` (M chains of length n, N = M·n samples in all);
each row is one Markov-chain time series of a (possibly complex) local estimator.

MCMC mode (``weights=None``)
----------------------------
* mean      ``x̄ = (1/N) Σ x``
* variance  ``σ² = (1/N) Σ |x − x̄|²``  (ddof = 0; real and imaginary parts both count)
* autocorrelation (real part only): with ``y = Re x − Re x̄`` (centred at the *global* mean),
  per-chain autocovariance ``C_c(t) = (1/n) Σ_{s=0}^{n−1−t} y_{c,s} y_{c,s+t}`` by zero-padded FFT
  (the biased, low-variance estimator), chain-averaged ``C(t) = (1/M) Σ_c C_c(t)`` and normalised
  ``ρ(t) = C(t) / C(0)``.
* integrated time ``τ_int(W) = 1/2 + Σ_{t=1}^{W} ρ(t)`` with Sokal's automatic window: the
  smallest ``W`` with ``W ≥ c·τ_int(W)`` (``c = 5``).  If no window qualifies (chains much
  shorter than the correlation time) the largest ``τ_int(W)`` over all windows is used
  (conservative).  ``τ_int`` is floored at 1/2 (anticorrelation is never used to shrink the
  error bar).  Reported: ``tau_corr = τ_int − 1/2 ≥ 0`` (NetKet's convention: 0 for independent
  samples).
* error     ``ε = sqrt(σ² · 2τ_int / N)``.
  Exception: for very short chains (``n_steps < 8``) the autocorrelation function is meaningless
  and, when ``n_chains ≥ 2``, the batch-means error over chains is used instead,
  ``ε_B = sqrt(Var_{ddof=1}(chain means) / M)`` (for ``n_steps == 1`` this is the naive
  ``sqrt(Var/N)`` of independent chains).
* Gelman–Rubin (real part, no chain splitting): ``W = mean_c Var_{ddof=1}(x_c)``,
  ``B/n = Var_{ddof=1}(chain means)``, ``V⁺ = (n−1)/n·W + B/n``, ``R̂ = sqrt(V⁺ / W)``.
  ``R̂ = nan`` when ``n_chains == 1`` or ``n_steps == 1``.  Guard for ``W == 0``: ``R̂ = 1`` when all
  samples are equal (``V⁺ == 0``), ``R̂ = +inf`` when every chain is constant but chains differ.

Why the global mean for centring: with per-chain centring the sum of the biased ACF over *all*
lags is exactly zero, which silently hides non-converged chains.  With global centring, chain
offsets show up as a long-time plateau of ρ(t); if the window then never terminates the error
bar degrades gracefully to (at least) the batch-means error over chains.

Weighted / exact mode (``weights`` given)
-----------------------------------------
For exact enumeration with ``w = |ψ|²/Z``: ``x̄ = Σ w x / Σ w``, ``σ² = Σ w |x − x̄|² / Σ w``,
``error = 0``, ``tau_corr = 0``, ``r_hat = nan``.  (Weights are renormalised by their sum, so
unnormalised non-negative weights also work.)
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Stats",
    "statistics",
    "weighted_mean",
    "autocorrelation",
    "integrated_time",
    "blocking_error",
    "format_value_error",
    "SOKAL_C",
    "MIN_STEPS_FOR_TAU",
]

#: Sokal's window constant c in ``W ≥ c·τ_int(W)``.
SOKAL_C: float = 5.0
#: Below this chain length the batch-means error (over chains) replaces the τ-based error.
MIN_STEPS_FOR_TAU: int = 8


# --------------------------------------------------------------------------------- formatting
def _to_float(v: Any) -> float:
    return float(np.real(np.asarray(v)))


def format_value_error(value: float, error: float) -> str:
    """Format ``value`` with ``error`` in parenthesis notation, two significant error digits.

    ``format_value_error(-7.12345, 0.0012) == "-7.1234(12)"``; ``error == 0`` prints the value with
    12 significant digits; a non-finite error prints ``"value(nan)"``-style output.
    """
    value, error = float(value), float(error)
    if not math.isfinite(value):
        return f"{value}"
    if error == 0.0:
        return f"{value:.12g}"
    if not math.isfinite(error):
        return f"{value:.6g}({error})"
    error = abs(error)
    decimals = 1 - math.floor(math.log10(error))
    if decimals > 0:
        units = round(error * 10**decimals)
        if units >= 100:  # e.g. 0.00996 -> rounds up to 100 units: drop one digit
            decimals -= 1
            units = round(error * 10**decimals)
        if decimals > 0:
            return f"{value:.{decimals}f}({units})"
    return f"{value:.0f}({error:.0f})"


# --------------------------------------------------------------------------------- Stats
class Stats(NamedTuple):
    """Summary statistics of a Monte Carlo estimator (a NamedTuple, hence a JAX pytree).

    Attributes:
        mean: sample mean (complex if the input is complex).
        error: standard error of the mean (0 in exact/weighted mode).
        variance: ``mean |x − mean|²`` (real).
        tau_corr: integrated autocorrelation time minus 1/2 (0 for independent samples).
        r_hat: Gelman–Rubin potential scale reduction (nan when undefined).
    """

    mean: Any
    error: Any
    variance: Any
    tau_corr: Any
    r_hat: Any

    def format(self) -> str:
        """Human-readable one-liner, e.g. ``-7.1234(12) ± 0.0012 [σ²=0.0123, τ=0.48, R̂=1.0012]``."""
        try:
            m = np.asarray(self.mean)
            mr, mi = float(np.real(m)), float(np.imag(m))
            err = _to_float(self.error)
            var = _to_float(self.variance)
            tau = _to_float(self.tau_corr)
            rh = _to_float(self.r_hat)
        except Exception:  # traced values or non-scalar fields (e.g. under jit/vmap)
            return (
                f"Stats(mean={self.mean!r}, error={self.error!r}, variance={self.variance!r}, "
                f"tau_corr={self.tau_corr!r}, r_hat={self.r_hat!r})"
            )
        s = format_value_error(mr, err)
        if mi != 0.0:
            s += f" {'+' if mi >= 0 else '-'} {abs(mi):.3g}i"
        return f"{s} ± {err:.2g} [σ²={var:.4g}, τ={tau:.3g}, R̂={rh:.4f}]"

    def __repr__(self) -> str:
        return self.format()

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, float]:
        """Python floats for JSON: ``mean`` (real part), ``mean_imag``, ``error``, ``variance``,
        ``tau_corr``, ``r_hat`` (nan stays nan: serialise with ``allow_nan`` or map to None)."""
        m = np.asarray(self.mean)
        return {
            "mean": float(np.real(m)),
            "mean_imag": float(np.imag(m)),
            "error": _to_float(self.error),
            "variance": _to_float(self.variance),
            "tau_corr": _to_float(self.tau_corr),
            "r_hat": _to_float(self.r_hat),
        }


# --------------------------------------------------------------------------------- helpers
def _as_inexact(x: Any) -> jnp.ndarray:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def _as_2d(x: jnp.ndarray) -> jnp.ndarray:
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2:
        raise ValueError(f"expected x of shape (n_chains, n_steps) or (n_samples,), got {x.shape}")
    return x


def weighted_mean(x: Any, weights: Any, axis: int | tuple[int, ...] | None = 0) -> jnp.ndarray:
    """``Σ_axis w x / Σ_axis w`` (weights broadcast against ``x``)."""
    x = _as_inexact(x)
    w = jnp.broadcast_to(jnp.asarray(weights), x.shape)
    return jnp.sum(w * x, axis=axis) / jnp.sum(w, axis=axis)


@jax.jit
def autocorrelation(x: Any) -> jnp.ndarray:
    """Chain-averaged normalised autocorrelation ``ρ(t)``, ``t = 0..n_steps−1``, of ``Re x``.

    ``y = Re x − mean(Re x)`` (global mean); ``C_c(t) = (1/n) Σ_s y_{c,s} y_{c,s+t}`` computed by
    FFT zero-padded to a power of two ≥ 2n; ``ρ(t) = mean_c C_c(t) / mean_c C_c(0)``.  For constant
    data ``ρ = (1, 0, 0, ...)``.
    """
    x = _as_2d(_as_inexact(x))
    y = jnp.real(x)
    y = y - y[0, 0]  # exact shift first: constant data give exactly zero
    y = y - jnp.mean(y)
    n = y.shape[1]
    nfft = 1 << (2 * n - 1).bit_length()
    f = jnp.fft.rfft(y, n=nfft, axis=-1)
    acov = jnp.fft.irfft(f * jnp.conj(f), n=nfft, axis=-1)[:, :n] / n
    acov = jnp.mean(acov, axis=0)
    c0 = acov[0]
    safe = jnp.where(c0 > 0, c0, 1.0)
    delta = (jnp.arange(n) == 0).astype(acov.dtype)
    return jnp.where(c0 > 0, acov / safe, delta)


@jax.jit
def integrated_time(x: Any, c: float = SOKAL_C) -> jnp.ndarray:
    """Integrated autocorrelation time ``τ_int = 1/2 + Σ_{t=1}^{W} ρ(t)`` (≥ 1/2) of ``Re x``.

    ``W`` is Sokal's automatic window, the smallest ``W ≥ 1`` with ``W ≥ c·τ_int(W)``; if none
    exists, ``max_W τ_int(W)`` is returned.  Independent samples give ≈ 1/2; an AR(1) process
    with coefficient φ has ``τ_int = (1+φ) / (2(1−φ))``.  ``x``: ``(n_chains, n_steps)`` or 1D.
    """
    x = _as_2d(_as_inexact(x))
    n = x.shape[1]
    rho = autocorrelation(x)
    half = jnp.asarray(0.5, rho.dtype)
    if n < 2:
        return half
    taus = 0.5 + jnp.cumsum(rho[1:])  # τ_int(W) for W = 1..n-1
    windows = jnp.arange(1, n, dtype=rho.dtype)
    ok = windows >= c * taus
    tau = jnp.where(jnp.any(ok), taus[jnp.argmax(ok)], jnp.max(taus))
    return jnp.maximum(tau, half)


def _r_hat(xr: jnp.ndarray) -> jnp.ndarray:
    """Gelman–Rubin R̂ of a real ``(n_chains, n_steps)`` array (see module docstring)."""
    m, n = xr.shape
    if m < 2 or n < 2:
        return jnp.asarray(jnp.nan, xr.dtype)
    w_within = jnp.mean(jnp.var(xr, axis=1, ddof=1))
    b_over_n = jnp.var(jnp.mean(xr, axis=1), ddof=1)
    var_plus = (n - 1) / n * w_within + b_over_n
    safe_w = jnp.where(w_within > 0, w_within, 1.0)
    r = jnp.sqrt(var_plus / safe_w)
    degenerate = jnp.where(var_plus > 0, jnp.inf, 1.0).astype(xr.dtype)
    return jnp.where(w_within > 0, r, degenerate)


# --------------------------------------------------------------------------------- main
@partial(jax.jit, static_argnames="mcmc")
def statistics(x: Any, weights: Any | None = None, mcmc: bool = False) -> Stats:
    """Mean, error, variance, autocorrelation time and R̂ of Monte Carlo data (jit-compatible).

    Args:
        x: ``(n_chains, n_steps)`` Markov-chain samples of a real or complex estimator; a 1D
            ``(n_samples,)`` array is treated as a single chain ``(1, n_samples)``.
        weights: ``None`` for MCMC data; otherwise non-negative weights broadcastable to ``x``
            (exact enumeration, ``|ψ|²/Z``), giving the exact weighted mean and variance with
            ``error = tau_corr = 0`` and ``r_hat = nan``.
        mcmc: with weights, the data are Markov chains sampled from another distribution and the
            weights (summing to 1) reweight them (importance sampling): the mean is Σ w x, the
            variance Σ w |x − mean|², and the error, τ and R̂ are those of the chains of
            y = n·w·(x − mean) (the linearized ratio estimator).

    Returns:
        :class:`Stats`; ``mean`` has ``x``'s (inexact) dtype, the other fields its real dtype.
        The formulas and the short-chain fallback are in the module docstring.
    """
    x = _as_2d(_as_inexact(x))
    rdtype = jnp.real(x).dtype
    zero = jnp.zeros((), rdtype)
    nan = jnp.asarray(jnp.nan, rdtype)

    if weights is not None:
        w = jnp.broadcast_to(jnp.asarray(weights).astype(rdtype), x.shape)
        wsum = jnp.sum(w)
        mean = jnp.sum(w * x) / wsum
        variance = jnp.sum(w * jnp.abs(x - mean) ** 2) / wsum
        if not mcmc:
            return Stats(mean, zero, variance.astype(rdtype), zero, nan)
        y = statistics(x.size * (w / wsum) * (x - mean))
        return Stats(mean, y.error, variance.astype(rdtype), y.tau_corr, y.r_hat)

    n_chains, n_steps = x.shape
    n_total = n_chains * n_steps
    # Shift by one sample (exact for constant data, less cancellation); all but the mean are
    # shift-invariant.
    shift = x[0, 0]
    d = x - shift
    d_mean = jnp.mean(d)
    mean = shift + d_mean
    variance = jnp.mean(jnp.abs(d - d_mean) ** 2).astype(rdtype)

    tau_int = integrated_time(d)
    if n_steps < MIN_STEPS_FOR_TAU and n_chains >= 2:
        error = jnp.sqrt(jnp.var(jnp.mean(d, axis=1), ddof=1).real / n_chains)
        # (for complex x, jnp.var returns the real E|m - m̄|² of the chain means)
    else:
        error = jnp.sqrt(variance * 2.0 * tau_int / n_total)

    return Stats(
        mean=mean,
        error=error.astype(rdtype),
        variance=variance,
        tau_corr=(tau_int - 0.5).astype(rdtype),
        r_hat=_r_hat(jnp.real(d)),
    )


# --------------------------------------------------------------------------------- blocking
# 99% quantiles of the chi² distribution with k = 1..30 degrees of freedom (Jonsson 2018).
_CHI2_Q99 = np.array(
    [
        6.634897,
        9.210340,
        11.344867,
        13.276704,
        15.086272,
        16.811894,
        18.475307,
        20.090235,
        21.665994,
        23.209251,
        24.724970,
        26.216967,
        27.688250,
        29.141238,
        30.577914,
        31.999927,
        33.408664,
        34.805306,
        36.190869,
        37.566235,
        38.932173,
        40.289360,
        41.638398,
        42.979820,
        44.314105,
        45.641683,
        46.962942,
        48.278236,
        49.587884,
        50.892181,
    ]
)


def _blocking_error_1d(x: np.ndarray) -> float:
    mu = x.mean()
    s2: list[float] = []
    gamma: list[float] = []
    sizes: list[int] = []
    while x.size >= 2:
        n = x.size
        s2.append(float(np.var(x)))
        gamma.append(float(np.sum((x[:-1] - mu) * (x[1:] - mu)) / n))
        sizes.append(n)
        if n % 2:
            x = x[1:]  # drop the oldest sample so pairs can be formed
        x = 0.5 * (x[0::2] + x[1::2])
    if not sizes:
        return float("nan")
    s2_a, g_a, n_a = np.array(s2), np.array(gamma), np.array(sizes, dtype=float)
    if s2_a[0] == 0.0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(s2_a > 0, n_a * (g_a / s2_a) ** 2, 0.0)
    m_stat = np.cumsum(terms[::-1])[::-1]  # M_j = Σ_{k ≥ j} n_k (γ_k / s_k²)²
    d = len(sizes)
    k_sel = d - 1
    for k in range(d):
        dof = d - k
        q = _CHI2_Q99[dof - 1] if dof <= len(_CHI2_Q99) else dof + 2.326 * math.sqrt(2 * dof)
        if m_stat[k] < q:
            k_sel = k
            break
    s2k, nk = s2_a[k_sel], n_a[k_sel]
    var_k = s2k + 2.0 * g_a[k_sel] * (nk - 1.0) / nk  # lag-1 (residual correlation) correction
    if not var_k > 0.0:
        var_k = s2k
    return float(math.sqrt(var_k / nk))


def blocking_error(x: Any) -> float:
    """Standard error of the mean by Flyvbjerg–Petersen blocking (NumPy; for cross-checks).

    The real part of a 1D series is repeatedly block-averaged in pairs (an odd leading sample is
    dropped).  At level k with ``n_k`` blocks, variance ``s_k²`` (ddof=0) and lag-1 autocovariance
    ``γ_k`` (both about the overall mean), the level is chosen automatically by Jonsson's test
    (Phys. Rev. E 98, 043304 (2018)): the first k with
    ``M_k = Σ_{j≥k} n_j (γ_j/s_j²)² < χ²_{0.99}(d − k)`` (χ² quantiles tabulated for d − k ≤ 30,
    a normal approximation beyond), i.e. the first level whose blocks look uncorrelated.

    The plain estimate ``s_k² / n_k`` is biased low for short series (the test has little power,
    so it stops where blocks still carry some lag-1 correlation: ≈ −20 % for 2000 steps at
    τ_int ≈ 10).  We therefore add the residual lag-1 term,
    ``ε² = (s_k² + 2 γ_k (n_k − 1)/n_k) / n_k`` (falling back to ``s_k²/n_k`` if that is ≤ 0),
    which removes most of the bias (≈ −5 % in the same setting).

    A 2D ``(n_chains, n_steps)`` input is treated as independent chains:
    ``ε = sqrt(Σ_c ε_c²) / n_chains`` (the error of the grand mean of equal-length chains).
    """
    a = np.real(np.asarray(x)).astype(float)
    if a.ndim == 1:
        return _blocking_error_1d(a)
    if a.ndim == 2:
        errs = np.array([_blocking_error_1d(row) for row in a])
        return float(np.sqrt(np.sum(errs**2)) / a.shape[0])
    raise ValueError(f"expected a 1D series or (n_chains, n_steps), got shape {a.shape}")
