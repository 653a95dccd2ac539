"""Product states written as RBM parameters: the start states of a time evolution.

* ``plus``  |+…+⟩ (σˣ = +1 on every site): all parameters zero, ψ(σ) constant — exact.
* ``up``, ``down``, ``neel``: σᶻ = ±1 on every site, or +1/−1 on the two sublattices: visible biases
  a_i = ±:data:`Z_BIAS`, the rest zero.  A configuration with k spins against the pattern has the amplitude
  e^{−2k·Z_BIAS} ≈ (2.5·10⁻³)^k relative to the pattern (weight 6·10⁻⁶ per spin): ⟨σˣ⟩ ≈ 2e^{−2·Z_BIAS} ≈
  5·10⁻³ per site, the state's distance from the product state.  A larger bias brings it closer, but the
  first TDVP step from it then divides by eigenvalues of S near the round-off (Z_BIAS = 5 made it non-finite
  on the TFIM chain L = 10).

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

from ..conventions import ANCILLA_BASES
from .base import MarshallSign
from .rbm import RBM
from .symmetric import SymmetricRBM

PRODUCT_STATES = ("plus", "up", "down", "neel")
#: The visible bias of a σᶻ product state (see the module docstring).
Z_BIAS = 3.0


def complex_noise(k1: jax.Array, k2: jax.Array, shape: tuple, scale: float) -> jax.Array:
    """``scale``·(N(0, 1) + i N(0, 1)) of ``shape``, the real parts from ``k1``, the imaginary from ``k2``: the
    noise on the free complex parameters of a start state."""
    return scale * (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape))


def bell_pair_coefficients(ancilla: str) -> tuple[complex, complex, complex]:
    """``(weight on the system spin, weight on the ancilla, visible bias)`` of a Bell pair's hidden unit with the
    ancillas in ``ancilla``'s basis (see :func:`bell_pairs_params`)."""
    if ancilla == "x":
        return BELL_PAIR_WEIGHT, BELL_PAIR_WEIGHT, BELL_PAIR_BIAS
    return 0.25j * np.pi, -0.25j * np.pi, 0.0


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
    if not isinstance(inner, RBM | SymmetricRBM):
        raise ValueError(
            f"the product state {kind!r} is written as RBM parameters: it needs model kind 'rbm' (without symmetry "
            "projections" + (" or the Marshall sign" if kind == "plus" else "") + ") or 'rbm_symmetric'"
        )
    if noise < 0:
        raise ValueError(f"the noise must be >= 0, got {noise!r}")
    pattern = _pattern(kind, lattice)
    if isinstance(inner, SymmetricRBM):
        return _symmetric_product(inner, kind, pattern, noise, key)
    params = inner.init(key)
    k_b, k_w = jax.random.split(jax.random.fold_in(key, 1))

    def draw(k, x):
        if jnp.iscomplexobj(x):
            return complex_noise(*jax.random.split(k), x.shape, noise).astype(x.dtype)
        return noise * jax.random.normal(k, x.shape, x.dtype)

    a = jnp.zeros_like(params["a"]) if pattern is None else jnp.asarray(Z_BIAS * pattern, params["a"].dtype)
    return {"a": a, "b": draw(k_b, params["b"]), "W": draw(k_w, params["W"])}


def _symmetric_product(model: SymmetricRBM, kind: str, pattern, noise: float, key: jax.Array) -> Any:
    """The product state on the translation-invariant RBM: its visible term is (Σ_f a_f)·Σ_i σ_i, so the uniform
    patterns (plus, up, down) are a_0 = 0 or ±Z_BIAS; the Néel state is not invariant under every translation."""
    if pattern is not None and not (np.all(pattern == pattern[0])):
        raise ValueError(f"the product state {kind!r} is not translation invariant: use model kind 'rbm'")
    params = model.init(key)
    keys = jax.random.split(jax.random.fold_in(key, 1), 4)
    free = [k for k in params if k != "a"]
    out = {
        k: complex_noise(keys[2 * i], keys[2 * i + 1], params[k].shape, noise).astype(params[k].dtype)
        for i, k in enumerate(free)
    }
    a = jnp.zeros_like(params["a"])
    out["a"] = a if pattern is None else a.at[0].set(Z_BIAS * pattern[0])
    return out


#: The pair unit's weight on both spins of a Bell pair with the ancilla in σˣ (see :func:`bell_pairs_params`).
BELL_PAIR_WEIGHT = (np.log(np.sqrt(2.0) - 1.0) + 0.5j * np.pi) / 2
#: The visible bias of every unit of the purification with the ancillas in σˣ.
BELL_PAIR_BIAS = 0.25j * np.pi


def bell_pairs_params(model: Any, n_system: int, noise: float, key: jax.Array, ancilla: str = "x") -> Any:
    """RBM parameters on 2N visible units (system 0..N−1 in σᶻ, ancillas N..2N−1 in ``ancilla``'s basis) of
    the infinite-temperature purification |Φ⟩ = Π_i (|↑_i ↑_{N+i}⟩ + |↓_i ↓_{N+i}⟩)/√2
    (:func:`nqs.exact.dynamics.bell_pairs_state`, :mod:`nqs.conventions`).  Hidden unit j < N couples to the
    pair (j, N+j) only, with b_j = 0.

    ``"x"`` (the default): the ancilla value x = +1 is |+⟩, −1 is |−⟩, and a pair has the amplitudes
    ⟨s|⟨x|Φ_pair⟩ = ½·(−1)^{[s=↓][x=−]}: all of one magnitude, no zeros, so |ψ|² is uniform at β = 0, single
    flips sample it and every log-derivative is finite.  W_{j,j} = W_{N+j,j} = w = (ln(√2 − 1) + iπ/2)/2
    (:data:`BELL_PAIR_WEIGHT`) and every visible bias a = iπ/4 (:data:`BELL_PAIR_BIAS`):

        e^{a(s+x)}·2cosh(w(s+x)) = 2, 2, 2, −2   for (s, x) = (+,+), (+,−), (−,+), (−,−)

    (cosh 2w = −i, e^{±iπ/2} = ±i).

    ``"z"``: W_{j,j} = iπ/4, W_{N+j,j} = −iπ/4 and a = 0, so cosh(iπ/4 (σ_j − σ_{N+j})) is 1 on an equal pair
    and cos(π/2) on an unequal one: 6.1·10⁻¹⁷ in floating point, not 0 (log-amplitude −37.3), which keeps
    log ψ, the local energies and the log-derivatives finite but leaves the unequal pairs out of reach of a
    single flip (:class:`~nqs.sampling.pairs.PairRule` samples it).

    The remaining M − N hidden units (M = α·2N) start at ``noise`` (Gaussian, real and imaginary parts, on
    their W and b: at W = 0 they would stay frozen, see the module docstring), which changes log ψ only at
    second order; the pair units' other weights start at 0.  ValueError for a model other than a complex RBM
    on 2N sites with at least N hidden units, or an unknown ``ancilla``."""
    n = int(n_system)
    if ancilla not in ANCILLA_BASES:
        raise ValueError(f"ancilla must be one of {ANCILLA_BASES}, got {ancilla!r}")
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

    w_sys, w_anc, bias = bell_pair_coefficients(ancilla)
    W = np.zeros((2 * n, m), np.complex128)
    W[np.arange(n), np.arange(n)] = w_sys
    W[n + np.arange(n), np.arange(n)] = w_anc
    pair = np.zeros((2 * n, m), bool)
    pair[:, :n] = True
    W = jnp.where(jnp.asarray(pair), jnp.asarray(W), complex_noise(k1, k2, (2 * n, m), noise))
    b = jnp.where(jnp.arange(m) < n, 0.0, complex_noise(k3, k4, (m,), noise))
    a = jnp.full(2 * n, bias, jnp.complex128)
    return {"a": a, "b": b.astype(jnp.complex128), "W": W.astype(jnp.complex128)}
