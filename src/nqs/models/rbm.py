"""Restricted Boltzmann machines (Carleo & Troyer, Science 355, 602 (2017)).

log ψ(σ) = Σ_i a_i σ_i + Σ_j log cosh θ_j,   θ_j = b_j + Σ_i σ_i W_ij,
with M = α·N hidden units (the constant log 2 per hidden unit is dropped); σ_i = ±1.

Fast path without transcendental functions per move
---------------------------------------------------
The fast path's ``prepare`` (:class:`_RBMPath`) adds a table of e^{±2W} (computed once per batch of
moves).  A move changes σ_i by d_i = ±2 on k sites, so e^{±Δθ_j} = Π_i e^{±d_i W_ij} are products of k
table entries.  With
s_j = sign Re θ_j, u_j = e^{−2 s_j θ_j} (|u_j| ≤ 1), g_j = 1/(1 + u_j) and h_j = u_j/(1 + u_j):

    f_j = cosh(θ_j + Δθ_j) / cosh θ_j = g_j e^{s_j Δθ_j} + h_j e^{−s_j Δθ_j},

with no cancellation (both terms have the same sign for real θ) and no division.  The log of the
ratio is summed as the log of products of ``_BLOCK`` factors (one logarithm per block).  The cache
is (s, g, h) only: on acceptance g' = g e^{sΔθ}/f and h' = h e^{−sΔθ}/f (one division per unit), and
where |h'| > |g'| (Re θ changed sign) s flips and g, h swap.  The sampler recomputes the cache from
σ every sweep, so round-off cannot build up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..operators.moves import move_delta
from .base import (
    FastPath,
    FlipPath,
    ImagePath,
    Model,
    MovePath,
    ParamDtypeModel,
)
from .numerics import cosh_ratio_state, log_cosh, log_cosh_ratio_sum, log_cosh_ratio_sum_gh, scaled_product


def _rbm_log_psi(p, sigma):
    s = sigma.astype(p["W"].dtype)
    theta = p["b"] + s @ p["W"]
    return jnp.dot(p["a"], s) + jnp.sum(log_cosh(theta))


def _rbm_cache(p, sigma):
    """Cache: the angles θ = b + σW (M,) and their Σ_j log cosh θ_j (so a move needs one log cosh per unit)."""
    theta = p["b"] + sigma.astype(p["W"].dtype) @ p["W"]
    return {"theta": theta, "lc": jnp.sum(log_cosh(theta))}


def _rbm_deltas(p, sigma, sites, new_values, mask):
    """Δθ (M,) and the visible-bias change of a move; O(k·M) for k changed sites."""
    d = move_delta(sigma, sites, new_values, mask).astype(p["W"].dtype)
    w = jnp.take(p["W"], sites, axis=0, mode="clip")  # (k, M)
    # an elementwise product-sum, not a dot: vmapped over many moves a batch of (1, k) @ (k, M) dots is slow on CPUs
    return jnp.sum(d[:, None] * w, axis=0), jnp.sum(jnp.take(p["a"], sites, mode="clip") * d)


def _rbm_ratio(p, sigma, cache, sites, new_values, mask):
    """log ψ(σ') − log ψ(σ) for a move, and the cache of σ'."""
    dtheta, da = _rbm_deltas(p, sigma, sites, new_values, mask)
    new_theta = cache["theta"] + dtheta
    new_lc = jnp.sum(log_cosh(new_theta))
    return da + new_lc - cache["lc"], {"theta": new_theta, "lc": new_lc}


#: Factors per logarithm in the table path: a product of 8 float64 factors overflows only when
#: |Re Δθ_j| ≳ 88 (e^{709}), i.e. |W| ≳ 22 for an exchange move; in float32 (e^{88}) blocks of 2 keep
#: the same bound per factor, |Re Δθ_j| ≳ 44.
_BLOCK = 8
_BLOCK_F32 = 2


def _prepared(p):
    return "exp2W" in p


def _prepare(p):
    """``p`` plus the table of e^{d W} for d = −2, 0, +2 (3·(N+1) rows of M; row N of each is 1, for padded
    entries of a move): row ``(d/2 + 1)·(N+1) + i`` holds e^{d W_i·}."""
    ones = jnp.ones((1, p["W"].shape[1]), p["W"].dtype)
    w = jnp.concatenate([p["W"], jnp.zeros_like(ones)])
    table = jnp.concatenate([jnp.exp(-2.0 * w), jnp.ones_like(w), jnp.exp(2.0 * w)])
    return {**p, "exp2W": table}


def _table_cache(p, sigma):
    """s = sign Re θ, g = 1/(1 + u), h = u/(1 + u) with u = e^{−2sθ}: all the table path keeps."""
    sign, g, h = cosh_ratio_state(p["b"] + sigma.astype(p["W"].dtype) @ p["W"])
    return {"s": sign, "g": g, "h": h}


def _exp_dtheta(p, sigma, sites, new_values, mask):
    """e^{sΔθ}, e^{−sΔθ} (M,) from the table (σ changes by 0 or ±2 on the move's sites), and Δa."""
    n = p["W"].shape[0]
    d = move_delta(sigma, sites, new_values, mask)
    sg = jnp.sign(d).astype(jnp.int32)  # the row index in int32: in σ's int8 it wrapped beyond 63 sites
    row = jnp.minimum(sites, n)
    idx = jnp.stack([(sg + 1) * (n + 1) + row, (1 - sg) * (n + 1) + row])  # (2, k): ±d
    rows = p["exp2W"].at[idx].get(mode="promise_in_bounds")  # in range by construction
    e_plus, e_minus = jnp.prod(rows, axis=1)
    return e_plus, e_minus, jnp.sum(jnp.take(p["a"], sites, mode="clip") * d.astype(p["a"].dtype))


def _table_factors(p, sigma, cache, sites, new_values, mask):
    """f = cosh(θ+Δθ)/cosh θ per unit, e^{±sΔθ}, and Δa."""
    e_plus, e_minus, da = _exp_dtheta(p, sigma, sites, new_values, mask)
    up = cache["s"] > 0
    ep, em = jnp.where(up, e_plus, e_minus), jnp.where(up, e_minus, e_plus)
    return cache["g"] * ep + cache["h"] * em, ep, em, da


def _block_log(f):
    """Σ log f over the last axis as logs of products of ``_BLOCK`` factors (``_BLOCK_F32`` in float32)."""
    block = _BLOCK if jnp.finfo(f.dtype).bits == 64 else _BLOCK_F32
    if f.size == 0:  # no moves (an operator without off-diagonal terms), or no hidden units
        return jnp.zeros(f.shape[:-1], f.dtype)
    m = f.shape[-1]
    pad = (-m) % block
    if pad:
        f = jnp.concatenate([f, jnp.ones(f.shape[:-1] + (pad,), f.dtype)], axis=-1)
    # units j and j + M/B share a block: the product runs over a leading axis (contiguous vectors)
    return jnp.sum(jnp.log(jnp.prod(f.reshape(f.shape[:-1] + (block, -1)), axis=-2)), axis=-1)


def _table_ratio(p, sigma, cache, sites, new_values, mask):
    f, _, _, da = _table_factors(p, sigma, cache, sites, new_values, mask)
    return da + _block_log(f)


def _table_update(p, sigma, cache, sites, new_values, mask):
    f, ep, em, _ = _table_factors(p, sigma, cache, sites, new_values, mask)
    r = 1.0 / f
    g, h = cache["g"] * ep * r, cache["h"] * em * r
    flip = jnp.real(h * jnp.conj(h)) > jnp.real(g * jnp.conj(g))  # |u'| > 1: Re θ changed sign
    return {"s": jnp.where(flip, -cache["s"], cache["s"]), "g": jnp.where(flip, h, g), "h": jnp.where(flip, g, h)}


def _table_ratios(p, sigma, cache, sites, new_values, mask):
    # many moves at once: Δθ by a product with W and one exponential per unit beat the table's gathers
    dtheta, da = jax.vmap(_rbm_deltas, in_axes=(None, None, 0, 0, 0))(p, sigma, sites, new_values, mask)
    return da + log_cosh_ratio_sum_gh(cache["s"], cache["g"], cache["h"], dtheta)


def _rbm_ratios(p, sigma, cache, sites, new_values, mask):
    """log ψ(σ') − log ψ(σ) for C moves at once (sites (C, k)): one exponential per hidden unit."""
    dtheta, da = jax.vmap(_rbm_deltas, in_axes=(None, None, 0, 0, 0))(p, sigma, sites, new_values, mask)
    return da + log_cosh_ratio_sum(cache["theta"], dtheta)


#: Largest table of e^{±2W} over the images (bytes) for which the RBM's :meth:`~nqs.models.base.FastPath.image_path`
#: offers itself.
_IMAGE_TABLE_BYTES = 256 * 2**20


@dataclass(frozen=True, eq=False)
class _RBMImages(ImagePath):
    """The RBM over all images ``e σ = s_e·(g_e σ)`` at once (:meth:`~nqs.models.base.FastPath.image_path`).

    θ_e = b + Σ_i V[i, e] σ_i with V[i, e] = s_e W[p_e(i)], laid out site-major so that a move of site i
    reads one contiguous (n_e, M) block: the table X[±, i] = e^{±2V[i]} (row N = 1 for padded entries)
    gives e^{±Δθ_e} as products of k blocks, and the cache per image is the (s, g, h) of the table path.
    ``ratios`` gives ψ(eσ′)/ψ(eσ) as the product of the M factors cosh(θ+Δθ)/cosh θ with no logarithm,
    rescaled by powers of two every 4 factors (:func:`~nqs.models.numerics.scaled_product`).
    """

    perms: np.ndarray
    signs: np.ndarray

    def prepare(self, p: Any) -> Any:
        n, m = p["W"].shape
        cols = jnp.asarray(self.perms.T, dtype=jnp.int32)  # (N, n_e): p_e(i)
        sgn = jnp.asarray(self.signs, dtype=p["W"].dtype)
        v = p["W"][cols] * sgn[None, :, None]  # (N, n_e, M)
        vpad = jnp.concatenate([v, jnp.zeros((1,) + v.shape[1:], v.dtype)])
        a = p["a"][cols] * sgn[None, :]  # (N, n_e)
        apad = jnp.concatenate([a, jnp.zeros((1, a.shape[1]), a.dtype)])
        return {
            "V": v,
            "b": p["b"],
            "X": jnp.stack([jnp.exp(-2.0 * vpad), jnp.exp(2.0 * vpad)]),
            "A": apad,
            "XA": jnp.stack([jnp.exp(-2.0 * apad), jnp.exp(2.0 * apad)]),
        }

    def cache(self, q: Any, sigma: jax.Array) -> tuple[Any, jax.Array]:
        s = sigma.astype(q["V"].dtype)
        theta = q["b"][None, :] + jnp.einsum("i,iem->em", s, q["V"])
        sign, g, h = cosh_ratio_state(theta)
        # log cosh θ = sθ + log(1 + u) − log 2 = sθ − log g − log 2: a logarithm per block of units, not per unit
        logs = jnp.sum(sign * theta, axis=1) - _block_log(g) - theta.shape[1] * jnp.log(2.0) + s @ q["A"][:-1]
        return {"s": sign, "g": g, "h": h}, logs.astype(jnp.complex128)

    def _factors(self, q, sigma, cache, sites, new_values, mask):
        n = sigma.shape[-1]
        d = move_delta(sigma, sites, new_values, mask)
        row = jnp.where(d != 0, jnp.minimum(sites, n), n).astype(jnp.int32)
        up = (d > 0).astype(jnp.int32)
        e_plus = jnp.prod(q["X"][up, row], axis=0)  # (n_e, M) = e^{Δθ}
        e_minus = jnp.prod(q["X"][1 - up, row], axis=0)
        pos = cache["s"] > 0
        ep, em = jnp.where(pos, e_plus, e_minus), jnp.where(pos, e_minus, e_plus)
        visible = jnp.prod(q["XA"][up, row], axis=0)  # (n_e,) e^{ΔA}
        return cache["g"] * ep + cache["h"] * em, ep, em, visible

    def ratios(
        self, q: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        f, _, _, visible = self._factors(q, sigma, cache, sites, new_values, mask)
        return scaled_product(f, visible, block=_BLOCK)

    def update(
        self, q: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        f, ep, em, _ = self._factors(q, sigma, cache, sites, new_values, mask)
        r = 1.0 / f
        g, h = cache["g"] * ep * r, cache["h"] * em * r
        flip = jnp.real(h * jnp.conj(h)) > jnp.real(g * jnp.conj(g))
        return {"s": jnp.where(flip, -cache["s"], cache["s"]), "g": jnp.where(flip, h, g), "h": jnp.where(flip, g, h)}


#: Largest table of e^{Δθ} over connections × sign patterns (bytes) for which the RBM's flip path offers itself.
_FLIP_TABLE_BYTES = 64 * 2**20
#: Most sites a connection of the flip path flips (2^k sign patterns are selected among per connection).
_FLIP_MAX_SITES = 3


@dataclass(frozen=True, eq=False)
class _RBMFlips(FlipPath):
    """Local energies of an operator whose connection g flips the fixed sites ``sites[g]`` (G, k).

    Δθ of connection g depends on σ only through the signs of σ at its k sites, one of 2^k patterns, so
    ``prepare`` tabulates E[g, p] = e^{Δθ} (G, 2^k, M) once per batch and a sample's ratios need no
    exponential: pattern p gives e^{Δθ}, its complement e^{−Δθ}, and cosh(θ+Δθ)/cosh θ = g e^{sΔθ} +
    h e^{−sΔθ} from the table path's cache (s, g, h) — one logarithm per ``_BLOCK`` units."""

    sites: np.ndarray  # (G, k), padded with n_sites

    def _patterns(self):
        k = self.sites.shape[1]
        bits = (np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1  # (P, k): bit set = spin up
        return -2.0 * (2 * bits - 1)  # the change of σ at the k sites for each pattern

    def prepare(self, p: Any) -> Any:
        zero = jnp.zeros((1,) + p["W"].shape[1:], p["W"].dtype)
        rows = jnp.asarray(self.sites, dtype=jnp.int32)
        w = jnp.concatenate([p["W"], zero])[rows]  # (G, k, M); padded entries give 0
        a = jnp.concatenate([p["a"], zero[:, 0]])[rows]  # (G, k)
        d = jnp.asarray(self._patterns(), dtype=p["W"].dtype)
        return {"E": jnp.exp(jnp.einsum("pk,gkm->gpm", d, w)), "da": jnp.einsum("pk,gk->gp", d, a)}

    def log_ratios(self, t: Any, sigma: jax.Array, cache: Any) -> jax.Array:
        up = jnp.take(sigma, jnp.asarray(self.sites, dtype=jnp.int32), mode="fill", fill_value=1) > 0
        pattern = jnp.sum(up.astype(jnp.int32) << jnp.arange(self.sites.shape[1], dtype=jnp.int32), axis=1)
        # e^{±Δθ} (G, M) by selects over the few patterns (they fuse with the rest, where a gather of the rows
        # does not); the complement of pattern p, P − 1 − p, gives e^{−Δθ}
        n_p = t["E"].shape[1]
        e, e_bar, da = t["E"][:, 0], t["E"][:, n_p - 1], t["da"][:, 0]
        for q in range(1, n_p):
            hit = pattern == q
            e = jnp.where(hit[:, None], t["E"][:, q], e)
            e_bar = jnp.where(hit[:, None], t["E"][:, n_p - 1 - q], e_bar)
            da = jnp.where(hit, t["da"][:, q], da)
        pos = cache["s"] > 0
        f = cache["g"] * jnp.where(pos, e, e_bar) + cache["h"] * jnp.where(pos, e_bar, e)
        return (da + _block_log(f)).astype(jnp.complex128)


#: Largest table of e^{±Δθ} over the moves (bytes) for which the RBM's move path offers itself.
_MOVE_TABLE_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class _RBMMoves(MovePath):
    """The Markov chains' moves g that flip the sites ``sites[g]`` where σ there is ±``signs[g]``
    (:meth:`~nqs.models.base.FastPath.move_path`).

    On such a move Δθ = −2 σ_first V_g with V_g = Σ_k signs[g, k] W[sites[g, k]], so ``prepare`` tabulates
    e^{∓2V_g} once and a move reads two rows: no product of rows, no exponential.  The state is (s, h) of the
    table path (g = 1 − h, one array fewer to carry and select): cosh(θ+Δθ)/cosh θ = (1 − h) e^{sΔθ} +
    h e^{−sΔθ}, and on acceptance h' = h e^{−sΔθ}/f, or g' = g e^{sΔθ}/f with s flipped where |h'| > |g'|.
    """

    sites: np.ndarray  # (G, k)
    signs: np.ndarray  # (G, k), ±1

    def prepare(self, p: Any) -> Any:
        sites = jnp.asarray(self.sites, dtype=jnp.int32)
        signs = jnp.asarray(self.signs, dtype=p["W"].dtype)
        v = jnp.einsum("gk,gkm->gm", signs, p["W"][sites])
        va = jnp.einsum("gk,gk->g", signs, p["a"][sites])
        # row 2g + 0: σ_first = +1 (Δθ = −2V_g); row 2g + 1: σ_first = −1; row ^ 1 is e^{−Δθ}
        e = jnp.stack([jnp.exp(-2.0 * v), jnp.exp(2.0 * v)], axis=1).reshape(-1, v.shape[1])
        da = jnp.stack([-2.0 * va, 2.0 * va], axis=1).reshape(-1)
        return {"E": e, "da": jnp.real(da), "W": p["W"], "b": p["b"]}

    def cache(self, t: Any, sigma: jax.Array) -> Any:
        sign, _, h = cosh_ratio_state(t["b"] + sigma.astype(t["W"].dtype) @ t["W"])
        return {"s": sign, "h": h}

    def log_abs_ratio(self, t: Any, state: Any, g: jax.Array, first: jax.Array) -> tuple[jax.Array, Any]:
        row = 2 * g + (first < 0).astype(jnp.int32)
        e_plus, e_minus = t["E"][row], t["E"][row ^ 1]
        up = state["s"] > 0
        ep, em = jnp.where(up, e_plus, e_minus), jnp.where(up, e_minus, e_plus)
        f = (1.0 - state["h"]) * ep + state["h"] * em
        return t["da"][row] + jnp.real(_block_log(f)), (f, ep, em)

    def update(self, t: Any, state: Any, aux: Any) -> Any:
        f, ep, em = aux
        r = 1.0 / f
        h, g = state["h"] * em * r, (1.0 - state["h"]) * ep * r  # g' from g = 1 − h (≥ 1/2: exact to rounding)
        # where Re θ changed sign the new h is g' as computed, not 1 − h': that would lose h's relative
        # precision when h' is near 1, and a small h multiplies a large e^{−sΔθ} in the next ratio
        flip = jnp.real(h * jnp.conj(h)) > jnp.real(g * jnp.conj(g))
        return {"s": jnp.where(flip, -state["s"], state["s"]), "h": jnp.where(flip, g, h)}


def _init_rbm(key, n, m, dtype, scale):
    ks = jax.random.split(key, 6)
    if jnp.issubdtype(dtype, jnp.complexfloating):

        def draw(k1, k2, shape):
            return scale * (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape))

        return {"a": draw(ks[0], ks[1], (n,)), "b": draw(ks[2], ks[3], (m,)), "W": draw(ks[4], ks[5], (n, m))}
    return {
        "a": scale * jax.random.normal(ks[0], (n,)),
        "b": scale * jax.random.normal(ks[1], (m,)),
        "W": scale * jax.random.normal(ks[2], (n, m)),
    }


@dataclass(frozen=True, eq=False)
class RBM(ParamDtypeModel):
    """RBM with complex (default) or real parameters a, b, W.

    Complex: log ψ is holomorphic in them (Carleo & Troyer).  Real (``param_dtype="real"``):
    ψ > 0, for sign-free problems or combined with an explicit sign (Marshall).
    Parameters: ``n_sites`` N, ``alpha`` hidden-unit density (M = round(α·N)), ``init_scale``
    standard deviation of the initial real and imaginary parts.
    Fast path (:class:`_RBMPath`): a move changing k sites costs O(k·M) from the cached angles, with flip,
    move and image paths and factored log-derivatives.
    """

    n_sites: int
    alpha: float = 1.0
    init_scale: float = 0.01
    param_dtype: str = "complex"

    def __post_init__(self):
        self._check_param_dtype()

    @property
    def n_hidden(self) -> int:
        return max(1, int(round(self.alpha * self.n_sites)))

    def init(self, key: jax.Array) -> Any:
        dtype = jnp.complex128 if self.param_dtype == "complex" else jnp.float64
        return _init_rbm(key, self.n_sites, self.n_hidden, dtype, self.init_scale)

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        return _rbm_log_psi(params, sigma).astype(jnp.complex128)

    def make_fast_path(self) -> FastPath:
        return _RBMPath(self)

    def describe(self) -> str:
        return f"{self.param_dtype} RBM (alpha={self.alpha:g}, {self.n_hidden} hidden units)"


@dataclass(frozen=True, eq=False)
class _RBMPath(FastPath):
    """The RBM's fast path.  Prepared (:meth:`prepare`: the table of e^{±2W}), the cache is the table path's
    (s, g, h) and a move costs products of table rows and one logarithm per ``_BLOCK`` units; with the
    parameters as they are, the cache is θ with Σ log cosh θ.  Specialised parts: the flip path
    (:class:`_RBMFlips`), the move path (:class:`_RBMMoves`), the image path (:class:`_RBMImages`) and the
    factored log-derivatives."""

    model: RBM

    def prepare(self, params: Any) -> Any:
        return _prepare(params)

    def cache(self, params: Any, sigma: jax.Array) -> Any:
        return _table_cache(params, sigma) if _prepared(params) else _rbm_cache(params, sigma)

    def log_ratio(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        if _prepared(params):
            return _table_ratio(params, sigma, cache, sites, new_values, mask).astype(jnp.complex128)
        return _rbm_ratio(params, sigma, cache, sites, new_values, mask)[0].astype(jnp.complex128)

    def update(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        if _prepared(params):
            return _table_update(params, sigma, cache, sites, new_values, mask)
        return _rbm_ratio(params, sigma, cache, sites, new_values, mask)[1]

    def log_ratios(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        if _prepared(params):
            return _table_ratios(params, sigma, cache, sites, new_values, mask).astype(jnp.complex128)
        return _rbm_ratios(params, sigma, cache, sites, new_values, mask).astype(jnp.complex128)

    def _item(self) -> int:
        return 16 if self.model.param_dtype == "complex" else 8

    def image_path(self, perms: np.ndarray, signs: np.ndarray) -> ImagePath | None:
        """All images at once from site-major tables of the permuted weights (:class:`_RBMImages`), while
        the table e^{±2W} over the images stays under ``_IMAGE_TABLE_BYTES``."""
        if 2 * (self.model.n_sites + 1) * len(perms) * self.model.n_hidden * self._item() > _IMAGE_TABLE_BYTES:
            return None
        return _RBMImages(np.asarray(perms), np.asarray(signs))

    def flip_path(self, flip_sites: np.ndarray) -> FlipPath | None:
        """Tables of e^{Δθ} per connection and sign pattern (:class:`_RBMFlips`) for moves of at most
        ``_FLIP_MAX_SITES`` sites, while the tables stay under ``_FLIP_TABLE_BYTES``."""
        sites = np.asarray(flip_sites)
        if (
            sites.ndim != 2
            or not 0 < sites.shape[1] <= _FLIP_MAX_SITES
            or sites.shape[0] * 2 ** sites.shape[1] * self.model.n_hidden * self._item() > _FLIP_TABLE_BYTES
        ):
            return None
        return _RBMFlips(sites)

    def move_path(self, sites: jax.Array, signs: np.ndarray) -> MovePath | None:
        """Tables of e^{±Δθ} per move (:class:`_RBMMoves`) while they stay under ``_MOVE_TABLE_BYTES``."""
        sites = np.asarray(sites)
        if sites.ndim != 2 or 2 * sites.shape[0] * self.model.n_hidden * self._item() > _MOVE_TABLE_BYTES:
            return None
        return _RBMMoves(sites, np.asarray(signs))

    def log_derivative_factors(self, params: Any, sigma: jax.Array) -> Any:
        """∂/∂a = σ, ∂/∂b = tanh θ, ∂/∂W = σ ⊗ tanh θ (the outer product SR exploits)."""
        s = sigma.astype(params["W"].dtype)
        t = jnp.tanh(params["b"] + s @ params["W"])
        return {"W": (s, t), "a": (s,), "b": (t,)}


@dataclass(frozen=True, eq=False)
class RBMRealAmpPhase(Model):
    """RBM with real parameters for amplitude and phase (Torlai et al., Nat. Phys. 14, 447 (2018)).

    log ψ(σ) = log A(σ) + i φ(σ), where log A and φ are each a real RBM
    (a·σ + Σ_j log cosh θ_j with real a, b, W); M = round(α·N) hidden units in each.
    """

    n_sites: int
    alpha: float = 1.0
    init_scale: float = 0.01
    holomorphic: bool = False

    @property
    def n_hidden(self) -> int:
        return max(1, int(round(self.alpha * self.n_sites)))

    def init(self, key: jax.Array) -> Any:
        k1, k2 = jax.random.split(key)
        n, m = self.n_sites, self.n_hidden
        return {
            "amp": _init_rbm(k1, n, m, jnp.float64, self.init_scale),
            "phase": _init_rbm(k2, n, m, jnp.float64, self.init_scale),
        }

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        return _rbm_log_psi(params["amp"], sigma) + 1j * _rbm_log_psi(params["phase"], sigma)

    def make_fast_path(self) -> FastPath:
        return _AmpPhasePath()

    def describe(self) -> str:
        return f"real RBM amplitude+phase (alpha={self.alpha:g}, {self.n_hidden} hidden units each)"


@dataclass(frozen=True, eq=False)
class _AmpPhasePath(FastPath):
    """Both real RBMs' θ caches: a move of k sites costs O(k·M) each."""

    def cache(self, params: Any, sigma: jax.Array) -> Any:
        return {k: _rbm_cache(params[k], sigma) for k in ("amp", "phase")}

    def log_ratio(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        ra = _rbm_ratio(params["amp"], sigma, cache["amp"], sites, new_values, mask)[0]
        rp = _rbm_ratio(params["phase"], sigma, cache["phase"], sites, new_values, mask)[0]
        return ra + 1j * rp

    def update(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return {k: _rbm_ratio(params[k], sigma, cache[k], sites, new_values, mask)[1] for k in ("amp", "phase")}
