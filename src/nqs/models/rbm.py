"""Restricted Boltzmann machines (Carleo & Troyer, Science 355, 602 (2017)).

log ψ(σ) = Σ_i a_i σ_i + Σ_j log cosh θ_j,   θ_j = b_j + Σ_i σ_i W_ij,
with M = α·N hidden units (the constant log 2 per hidden unit is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .base import Model, ParamDtypeModel, log_cosh, log_cosh_ratio_sum, move_delta


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
    return d @ w, jnp.dot(jnp.take(p["a"], sites, mode="clip"), d)


def _rbm_ratio(p, sigma, cache, sites, new_values, mask):
    """log ψ(σ') − log ψ(σ) for a move, and the cache of σ'."""
    dtheta, da = _rbm_deltas(p, sigma, sites, new_values, mask)
    new_theta = cache["theta"] + dtheta
    new_lc = jnp.sum(log_cosh(new_theta))
    return da + new_lc - cache["lc"], {"theta": new_theta, "lc": new_lc}


def _rbm_ratios(p, sigma, cache, sites, new_values, mask):
    """log ψ(σ') − log ψ(σ) for C moves at once (sites (C, k)): one exponential per hidden unit."""
    dtheta, da = jax.vmap(_rbm_deltas, in_axes=(None, None, 0, 0, 0))(p, sigma, sites, new_values, mask)
    return da + log_cosh_ratio_sum(cache["theta"], dtheta)


def _init_rbm(key, n, m, dtype, scale):
    ks = jax.random.split(key, 6)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        def draw(k1, k2, shape):
            return scale * (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape))
        return {"a": draw(ks[0], ks[1], (n,)), "b": draw(ks[2], ks[3], (m,)),
                "W": draw(ks[4], ks[5], (n, m))}
    return {"a": scale * jax.random.normal(ks[0], (n,)), "b": scale * jax.random.normal(ks[1], (m,)),
            "W": scale * jax.random.normal(ks[2], (n, m))}


@dataclass(frozen=True, eq=False)
class RBM(ParamDtypeModel):
    """RBM with complex (default) or real parameters a, b, W.

    Complex: log ψ is holomorphic in them (Carleo & Troyer).  Real (``param_dtype="real"``):
    ψ > 0, for sign-free problems or combined with an explicit sign (Marshall).
    Parameters: ``n_sites`` N, ``alpha`` hidden-unit density (M = round(α·N)), ``init_scale``
    standard deviation of the initial real and imaginary parts.
    Fast path: the cache is θ (M,) with Σ log cosh θ; a move changing k sites costs O(k·M).
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

    def init(self, key):
        dtype = jnp.complex128 if self.param_dtype == "complex" else jnp.float64
        return _init_rbm(key, self.n_sites, self.n_hidden, dtype, self.init_scale)

    def log_psi(self, params, sigma):
        return _rbm_log_psi(params, sigma).astype(jnp.complex128)

    def cache(self, params, sigma):
        return _rbm_cache(params, sigma)

    def log_ratio(self, params, sigma, cache, sites, new_values, mask):
        return _rbm_ratio(params, sigma, cache, sites, new_values, mask)[0].astype(jnp.complex128)

    def update_cache(self, params, sigma, cache, sites, new_values, mask):
        return _rbm_ratio(params, sigma, cache, sites, new_values, mask)[1]

    def log_ratios(self, params, sigma, cache, sites, new_values, mask):
        return _rbm_ratios(params, sigma, cache, sites, new_values, mask).astype(jnp.complex128)

    def describe(self) -> str:
        return f"{self.param_dtype} RBM (alpha={self.alpha:g}, {self.n_hidden} hidden units)"


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

    def init(self, key):
        k1, k2 = jax.random.split(key)
        n, m = self.n_sites, self.n_hidden
        return {"amp": _init_rbm(k1, n, m, jnp.float64, self.init_scale),
                "phase": _init_rbm(k2, n, m, jnp.float64, self.init_scale)}

    def log_psi(self, params, sigma):
        return _rbm_log_psi(params["amp"], sigma) + 1j * _rbm_log_psi(params["phase"], sigma)

    def cache(self, params, sigma):
        return {k: _rbm_cache(params[k], sigma) for k in ("amp", "phase")}

    def log_ratio(self, params, sigma, cache, sites, new_values, mask):
        ra = _rbm_ratio(params["amp"], sigma, cache["amp"], sites, new_values, mask)[0]
        rp = _rbm_ratio(params["phase"], sigma, cache["phase"], sites, new_values, mask)[0]
        return ra + 1j * rp

    def update_cache(self, params, sigma, cache, sites, new_values, mask):
        return {k: _rbm_ratio(params[k], sigma, cache[k], sites, new_values, mask)[1]
                for k in ("amp", "phase")}

    def describe(self) -> str:
        return f"real RBM amplitude+phase (alpha={self.alpha:g}, {self.n_hidden} hidden units each)"
