"""Two-body Jastrow factor: log ψ(σ) = Σ_i h_i σ_i + ½ Σ_{i≠j} J_ij σ_i σ_j, J symmetric, complex."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from ..operators.moves import move_delta
from .base import FastPath, Model


def _sym(J):
    J = 0.5 * (J + J.T)
    return J - jnp.diag(jnp.diag(J))


@dataclass(frozen=True, eq=False)
class Jastrow(Model):
    """Complex Jastrow state; fast path caches J σ (N,), a k-site move costs O(k·N)."""

    n_sites: int
    init_scale: float = 0.01
    holomorphic: bool = True

    def init(self, key: jax.Array) -> Any:
        k1, k2, k3, k4 = jax.random.split(key, 4)
        n, s = self.n_sites, self.init_scale
        return {
            "h": s * (jax.random.normal(k1, (n,)) + 1j * jax.random.normal(k2, (n,))),
            "J": s * (jax.random.normal(k3, (n, n)) + 1j * jax.random.normal(k4, (n, n))),
        }

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        s = sigma.astype(jnp.complex128)
        return jnp.dot(params["h"], s) + 0.5 * s @ _sym(params["J"]) @ s

    def make_fast_path(self) -> FastPath:
        return _JastrowPath()

    def describe(self) -> str:
        return "Jastrow (two-body, complex)"


@dataclass(frozen=True, eq=False)
class _JastrowPath(FastPath):
    """The cache is J σ (N,); a k-site move costs O(k·N)."""

    def cache(self, params: Any, sigma: jax.Array) -> Any:
        return _sym(params["J"]) @ sigma.astype(jnp.complex128)

    def _delta(self, params, sigma, cache, sites, new_values, mask):
        d = move_delta(sigma, sites, new_values, mask).astype(jnp.complex128)
        Jk = jnp.take(_sym(params["J"]), sites, axis=0, mode="clip")  # (k, N)
        Jkk = jnp.take(Jk, sites, axis=1, mode="clip")  # (k, k)
        dh = jnp.dot(jnp.take(params["h"], sites, mode="clip"), d)
        return dh + d @ jnp.take(cache, sites, mode="clip") + 0.5 * d @ Jkk @ d, d, Jk

    def log_ratio(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        return self._delta(params, sigma, cache, sites, new_values, mask)[0]

    def update(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        _, d, Jk = self._delta(params, sigma, cache, sites, new_values, mask)
        return cache + d @ Jk
