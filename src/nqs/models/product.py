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


def bell_pairs_params(model: Any, n_system: int, noise: float, key: jax.Array) -> Any:
    """RBM parameters on 2N visible units (system 0..N−1, ancillas N..2N−1) of the infinite-temperature
    purification |Φ⟩ = Π_i (|↑_i ↑_{N+i}⟩ + |↓_i ↓_{N+i}⟩)/√2 (:func:`nqs.exact.dynamics.bell_pairs_state`).

    Hidden unit j < N couples to the pair (j, N+j) only, with W_{j,j} = iπ/4, W_{N+j,j} = −iπ/4 and b_j = 0:

        cosh(iπ/4 (σ_j − σ_{N+j})) = cos(π/4 (σ_j − σ_{N+j})) = 1 for σ_j = σ_{N+j},  cos(±π/2) = 0 otherwise,

    and a = 0, so ψ(σ) = Π_j [σ_j = σ_{N+j}] = 2^{N/2}·Φ(σ).  In floating point cos(π/2) is 6.1·10⁻¹⁷, not 0:
    an unequal pair has the finite log-amplitude −37.3 (weight 4·10⁻³³ relative to the equal one), so
    log ψ, the local energies and the log-derivatives stay finite (tanh θ = ±1.6·10¹⁶ i there; a weight of
    4·10⁻³³ times its square is O(1), the exact gradient of the amplitude cosh θ that opens the pair).
    The remaining M − N hidden units (M = α·2N) and every parameter of the pair units other than these
    weights start at ``noise`` (Gaussian, real and imaginary parts), which changes log ψ only at second order.
    ValueError for a model other than a complex RBM on 2N sites with at least N hidden units."""
    n = int(n_system)
    if not isinstance(model, RBM) or model.param_dtype != "complex":
        raise ValueError(
            "the purified start state is written as a complex RBM: model kind 'rbm', param_dtype 'complex'"
        )
    if model.n_sites != 2 * n:
        raise ValueError(f"the purification of {n} sites needs an RBM on {2 * n} visible units, not {model.n_sites}")
    if model.n_hidden < n:
        raise ValueError(f"the purification needs one hidden unit per pair: alpha must be >= 0.5 (M >= {n})")
    if noise < 0:
        raise ValueError(f"the noise must be >= 0, got {noise!r}")
    m = model.n_hidden
    k1, k2, k3, k4 = jax.random.split(key, 4)

    def draw(ka, kb, shape):
        return noise * (jax.random.normal(ka, shape) + 1j * jax.random.normal(kb, shape))

    W = np.zeros((2 * n, m), np.complex128)
    W[np.arange(n), np.arange(n)] = 1j * np.pi / 4
    W[n + np.arange(n), np.arange(n)] = -1j * np.pi / 4
    pair = np.zeros((2 * n, m), bool)
    pair[:, :n] = True
    W = jnp.where(jnp.asarray(pair), jnp.asarray(W), draw(k1, k2, (2 * n, m)))
    b = jnp.where(jnp.arange(m) < n, 0.0, draw(k3, k4, (m,)))
    return {"a": jnp.zeros(2 * n, jnp.complex128), "b": b.astype(jnp.complex128), "W": W.astype(jnp.complex128)}
