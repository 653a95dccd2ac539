"""Product states written as RBM parameters: the start states of a time evolution.

* ``plus``  |+…+⟩ (σˣ = +1 on every site): all parameters zero, ψ(σ) constant — exact.
* ``up``, ``down``, ``neel``: σᶻ = ±1 on every site, or +1/−1 on the two sublattices: visible biases
  a_i = ±:data:`Z_BIAS`, the rest zero.  A configuration with k spins against the pattern has weight
  e^{−4k·Z_BIAS} ≈ (6·10⁻⁶)^k relative to the pattern: the state is the product state to that accuracy.

At W = b = 0 the RBM's log-derivatives with respect to W vanish (O_{W_ij} = σ_i tanh θ_j = 0), so the TDVP
flow cannot leave the product state along W: a time evolution that needs correlations would stay frozen.
``noise`` adds that much Gaussian noise to W and b (real and imaginary parts for complex parameters); it
changes log ψ only at second order, by ~noise² per hidden unit.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .base import MarshallSign
from .rbm import RBM

PRODUCT_STATES = ("plus", "up", "down", "neel")
#: The visible bias of a σᶻ product state (see the module docstring).
Z_BIAS = 3.0


def _pattern(kind: str, lattice) -> np.ndarray | None:
    """The σᶻ pattern of ``kind`` (N,) of ±1; None for ``plus``."""
    n = lattice.n_sites
    if kind == "plus":
        return None
    if kind == "up":
        return np.ones(n)
    if kind == "down":
        return -np.ones(n)
    if kind == "neel":
        if not lattice.is_bipartite:
            raise ValueError(f"{lattice.describe()} is not bipartite: it has no Néel state")
        return np.where(np.asarray(lattice.sublattice) == 0, 1.0, -1.0)
    raise ValueError(f"unknown product state {kind!r} (one of: {', '.join(PRODUCT_STATES)})")


def product_params(model: Any, kind: str, lattice, noise: float, key: jax.Array) -> Any:
    """Parameters of ``model`` (an RBM, possibly with the Marshall sign for the σᶻ states) for the product state
    ``kind`` with ``noise`` on W and b.  ValueError for another model or a state it cannot write."""
    inner = model.inner if isinstance(model, MarshallSign) and kind != "plus" else model
    if not isinstance(inner, RBM):
        raise ValueError(
            f"the product state {kind!r} is written as RBM parameters: it needs model kind 'rbm' without symmetry "
            "projections" + (" or the Marshall sign" if kind == "plus" else "")
        )
    if noise < 0:
        raise ValueError(f"the noise must be >= 0, got {noise!r}")
    pattern = _pattern(kind, lattice)
    params = inner.init(key)
    k_b, k_w = jax.random.split(jax.random.fold_in(key, 1))

    def draw(k, x):
        if jnp.iscomplexobj(x):
            k1, k2 = jax.random.split(k)
            return noise * (jax.random.normal(k1, x.shape) + 1j * jax.random.normal(k2, x.shape)).astype(x.dtype)
        return noise * jax.random.normal(k, x.shape, x.dtype)

    a = jnp.zeros_like(params["a"]) if pattern is None else jnp.asarray(Z_BIAS * pattern, params["a"].dtype)
    return {"a": a, "b": draw(k_b, params["b"]), "W": draw(k_w, params["W"])}
