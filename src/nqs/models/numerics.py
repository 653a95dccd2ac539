"""Numerics of the RBM-type amplitudes: a stable log cosh, sums of log cosh ratios for many moves at once,
and products of many factors kept as mantissa × power of two (no overflow, no logarithm per factor)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "log_cosh",
    "log_cosh_ratio_sum",
    "cosh_ratio_state",
    "log_cosh_ratio_sum_gh",
    "power_of_two",
    "scaled_product",
]


def log_cosh(z: jax.Array) -> jax.Array:
    """log cosh z for real or complex z, stable for large |Re z|."""
    s = jnp.where(jnp.real(z) < 0, -1.0, 1.0)
    z = z * s
    return z + jnp.log1p(jnp.exp(-2.0 * z)) - jnp.log(2.0)


def log_cosh_ratio_sum(theta: jax.Array, dtheta: jax.Array, block: int = 4) -> jax.Array:
    """Σ_j [log cosh(θ_j + Δ_j) − log cosh θ_j] over the last axis, for many Δ at once.

    ``theta`` (M,) and ``dtheta`` (C, M) (or any shapes broadcasting on the last axis).  Uses
    ``cosh(θ+Δ)/cosh θ = (e^Δ + u e^{−Δ})/(1 + u)`` with ``u = e^{−2θ}``, after flipping the signs
    of θ and Δ (cosh is even) so that Re θ ≥ 0 and |u| ≤ 1: no cancellation except at a true zero
    of cosh(θ+Δ) (the form cosh Δ + tanh θ sinh Δ loses e^{2|Δ|}·ε when tanh θ ≈ ∓1).  Per unit:
    one real exponential and one sin/cos pair (e^{±Δ} built from them, no complex division), and
    one logarithm per ``block`` units (the log of a product of ``block`` factors) instead of a log cosh
    per unit.  The imaginary part is defined modulo 2π (only ``exp`` of it is
    used).  A product of 4 factors overflows only beyond e^709, i.e. |Re Δ| ≳ 177 per unit.
    """
    return log_cosh_ratio_sum_gh(*cosh_ratio_state(theta), dtheta, block)


def cosh_ratio_state(theta: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(sign, g, ug)``: sign = sign Re θ, g = 1/(1 + u), ug = u/(1 + u) with u = e^{−2·sign·θ} (|u| ≤ 1),
    from which cosh(θ + Δ)/cosh θ = g e^{sign·Δ} + ug e^{−sign·Δ}."""
    sign = jnp.where(jnp.real(theta) < 0, -1.0, 1.0).astype(jnp.real(theta).dtype)
    u = jnp.exp(-2.0 * sign * theta)
    g = 1.0 / (1.0 + u)
    return sign, g, u * g


def log_cosh_ratio_sum_gh(sign: jax.Array, g: jax.Array, ug: jax.Array, dtheta: jax.Array, block: int = 4) -> jax.Array:
    """:func:`log_cosh_ratio_sum` from ``sign`` = sign Re θ, ``g`` = 1/(1 + u) and ``ug`` = u/(1 + u),
    u = e^{−2·sign·θ} (as a cache keeps them)."""
    x = sign * dtheta
    if jnp.iscomplexobj(x):
        ea = jnp.exp(x.real)
        c, s = jnp.cos(x.imag), jnp.sin(x.imag)
        f = g * jax.lax.complex(ea * c, ea * s) + ug * jax.lax.complex(c / ea, -s / ea)
    else:
        e = jnp.exp(x)
        f = g * e + ug / e
    m = f.shape[-1]
    pad = (-m) % block
    if pad:
        f = jnp.concatenate([f, jnp.ones(f.shape[:-1] + (pad,), f.dtype)], axis=-1)
    f = f.reshape(f.shape[:-1] + ((m + pad) // block, block))
    return jnp.sum(jnp.log(jnp.prod(f, axis=-1)), axis=-1)


def _exponent(size):
    """The integer e with size = f·2^e, f in [1/2, 1), for finite size > 0 (read from the float's bits in
    float64; zero gives −1022)."""
    if size.dtype == jnp.float64:
        bits = jax.lax.bitcast_convert_type(size, jnp.int64)
        return (((bits >> 52) & 0x7FF) - 1022).astype(jnp.int32)
    return jnp.frexp(jnp.where(size > 0, size, 1.0))[1].astype(jnp.int32)


def power_of_two(e: jax.Array, dtype: Any = jnp.float64) -> jax.Array:
    """2^e (exact) for integer e, clipped to the normal range of ``dtype`` (smaller e give its tiniest
    normal number: terms that small next to 1 do not matter where this is used)."""
    if jnp.dtype(dtype) == jnp.float64:
        e = jnp.clip(e, -1022, 1023).astype(jnp.int64)
        return jax.lax.bitcast_convert_type((e + 1023) << 52, jnp.float64)
    return jnp.ldexp(jnp.ones(jnp.shape(e), dtype), jnp.clip(e, -126, 127))


def _power_of_two_split(x):
    """``(m, e)`` with x = m·2^e and max(|Re m|, |Im m|) in [1/2, 1) (exact, no rounding)."""
    size = jnp.maximum(jnp.abs(jnp.real(x)), jnp.abs(jnp.imag(x)))
    e = _exponent(size)
    return x * power_of_two(-e, size.dtype), e


def scaled_product(f: jax.Array, scale: jax.Array | None = None, block: int = 4) -> tuple[jax.Array, jax.Array]:
    """The products over the last axis of ``f`` (..., M) as ``(m, e)`` with Π f = m·2^e: each block of
    ``block`` factors is split into a mantissa and an exact power of two before the blocks are multiplied,
    so nothing overflows while a block stays below e^709 (|Re Δθ| ≲ 177 per RBM unit with blocks of 4)
    and there are fewer than ~250 blocks.  ``scale`` (...,) multiplies the result.  No logarithm, no
    division."""
    n = f.shape[-1]
    pad = (-n) % block
    if pad:
        f = jnp.concatenate([f, jnp.ones(f.shape[:-1] + (pad,), f.dtype)], axis=-1)
    # block b holds units b, b + n_b, b + 2n_b, ...: the product runs over a leading axis (contiguous vectors)
    m, e = _power_of_two_split(jnp.prod(f.reshape(f.shape[:-1] + (block, -1)), axis=-2))
    prod = jnp.prod(m, axis=-1)
    if scale is not None:
        prod = prod * scale
    m, e_last = _power_of_two_split(prod)
    return m, jnp.sum(e, axis=-1) + e_last
