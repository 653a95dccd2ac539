"""The translation-invariant RBM of the purification (``nqs thermal`` with ``[model] kind = "rbm_symmetric"``).

The purification lives on 2N sites (system 0..N−1, ancillas N..2N−1, :mod:`nqs.conventions`); H ⊗ 1 and the
Bell pairs |Φ⟩ are invariant under the lattice translations applied to both halves at once
(:func:`doubled_translations`), and so is the purified state e^{−τH}|Φ⟩ at every τ.  A
:class:`~nqs.models.SymmetricRBM` over that group writes |Φ⟩ exactly with one filter (per orbit of pairs):
its copy under translation t is the hidden unit of the pair moved by t (:func:`bell_pairs_symmetric_params`).

The group has two orbits of sites (more on a lattice with a basis): the system and the ancillas.  The
SymmetricRBM's visible term Σ_f a_f Σ_i σ_i weighs both alike, but the flow needs them apart: with the
ancillas in σˣ, σˣ_i ⊗ 1 |Φ⟩ = 1 ⊗ σˣ_{N+i} |Φ⟩ is diagonal in the ancilla's basis, a bias on the ancillas
alone, which the transverse field of the TFIM drives from τ = 0.  :class:`OrbitBiasRBM` gives every orbit
of sites its own visible bias, log ψ = Σ_o a_o Σ_{i∈o} σ_i + Σ_f Σ_g log cosh(b_f + Σ_i W_{f,i} σ_{p_g(i)}),
the most general invariant visible term.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..conventions import ANCILLA_BASES
from ..lattice.groups import SymmetryGroup
from ..operators.moves import move_delta
from .numerics import log_cosh
from .product import bell_pair_coefficients, complex_noise
from .symmetric import SymmetricRBM


def doubled_translations(lattice) -> SymmetryGroup:
    """The translations of ``lattice`` acting on the purification's 2N sites, system and ancillas together:
    element t moves system site i to p_t(i) and ancilla N+i to N+p_t(i) (p_t: :meth:`Lattice.translations`)."""
    perms = np.asarray(lattice.translations(), dtype=np.int64)
    n = perms.shape[1]
    names = tuple(f"T{t}" for t in range(len(perms)))
    return SymmetryGroup(perms=np.concatenate([perms, perms + n], axis=1), names=names)


def site_orbits(group: SymmetryGroup) -> np.ndarray:
    """The orbit of every site under ``group`` (n_sites,), numbered 0, 1, … in the order of their first site."""
    perms = np.asarray(group.perms)
    orbit = np.full(perms.shape[1], -1, np.int64)
    k = 0
    for i in range(perms.shape[1]):
        if orbit[i] < 0:
            orbit[perms[:, i]] = k
            k += 1
    return orbit


@dataclass(frozen=True, eq=False)
class OrbitBiasRBM(SymmetricRBM):
    """A :class:`~nqs.models.SymmetricRBM` with one visible bias per orbit of sites of its group:

        log ψ(σ) = Σ_o a_o Σ_{i∈o} σ_i + Σ_f Σ_{g∈G} log cosh(b_f + Σ_i W_{f,i} σ_{p_g(i)}),

    invariant under the group as the SymmetricRBM.  Parameters (complex, holomorphic): ``{"a": (n_orbits,),
    "b": (α,), "W": (α, n_sites)}``, the orbits of :func:`site_orbits`.  Same fast path (θ cached)."""

    orbits: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hidden_bias:
            raise ValueError("OrbitBiasRBM keeps its hidden biases")
        object.__setattr__(self, "orbits", site_orbits(self.group))

    @property
    def n_orbits(self) -> int:
        return int(self.orbits.max()) + 1

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        params = super().init(key)
        k1, k2 = jax.random.split(jax.random.fold_in(key, 11))
        shape = (self.n_orbits,)
        params["a"] = self.init_scale * (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape))
        return params

    def _visible(self, params: Any, sigma: jax.Array) -> jax.Array:
        a = params["a"][jnp.asarray(self.orbits)]
        return jnp.sum(a * sigma.astype(a.dtype))

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        theta = self._theta(params, sigma)
        return (self._visible(params, sigma) + jnp.sum(log_cosh(theta))).astype(jnp.complex128)

    def _deltas(self, params, sigma, sites, new_values, mask):
        d = move_delta(sigma, sites, new_values, mask).astype(params["W"].dtype)  # (k,)
        src = jnp.take(self._inverse_perms(), sites, axis=1, mode="clip")  # (|G|, k): p_g^{-1}(j)
        w = jnp.take(params["W"], src, axis=1)  # (α, |G|, k)
        a = params["a"][jnp.take(jnp.asarray(self.orbits), sites, mode="clip")]
        return w @ d, jnp.sum(a * d)

    def describe(self) -> str:
        return super().describe()[:-1] + f", a visible bias per orbit of sites ({self.n_orbits}))"


def _pair_orbits(group: SymmetryGroup, n: int) -> list[int]:
    """One system site per orbit of ``group`` on the pairs (i, N+i); ValueError unless every element moves
    system and ancillas together and each orbit holds |G| distinct pairs (a free action, as translations)."""
    perms = np.asarray(group.perms)
    if perms.shape[1] != 2 * n or not np.array_equal(perms[:, n:], perms[:, :n] + n):
        raise ValueError("the symmetric purification needs a group that moves system and ancillas together")
    reps, seen = [], np.zeros(n, bool)
    for i in range(n):
        if seen[i]:
            continue
        if len(set(perms[:, i].tolist())) != len(perms):
            raise ValueError("the symmetric purification needs a group that moves every pair freely (translations)")
        seen[perms[:, i]] = True
        reps.append(i)
    return reps


def bell_pairs_symmetric_params(model: Any, n_system: int, noise: float, key: jax.Array, ancilla: str = "x") -> Any:
    """Parameters of a :class:`~nqs.models.SymmetricRBM` (or :class:`OrbitBiasRBM`) on 2N sites whose group
    moves system and ancillas together (:func:`doubled_translations`) for the Bell pairs |Φ⟩ of
    :func:`~nqs.models.product.bell_pairs_params`, exactly.

    One filter per orbit of pairs (one on a Bravais lattice, one per basis site otherwise), with its pair at
    site r: W[f, r] = w_sys, W[f, N+r] = w_anc, b_f = 0, so the copy of the filter under element g is the
    hidden unit of the pair (p_g(r), N+p_g(r)) with the weights of ``bell_pairs_params`` (``"x"``: w_sys =
    w_anc = (ln(√2 − 1) + iπ/2)/2; ``"z"``: ±iπ/4).  The visible bias of every site is that construction's
    (iπ/4 for ``"x"``, 0 for ``"z"``): every orbit's a_o for the OrbitBiasRBM, Σ_f a_f (a_0) for the
    SymmetricRBM.  The remaining filters start at ``noise`` (Gaussian, real and imaginary parts, on W and b:
    at W = 0 they would stay frozen); the pair filters' other weights start at 0.  ValueError for another
    model, too few filters, a group that does not act freely on the pairs, or an unknown ``ancilla``."""
    n = int(n_system)
    if ancilla not in ANCILLA_BASES:
        raise ValueError(f"ancilla must be one of {ANCILLA_BASES}, got {ancilla!r}")
    if not isinstance(model, SymmetricRBM) or not model.hidden_bias:
        raise ValueError("the symmetric purified start state is written as a SymmetricRBM with hidden biases")
    if noise < 0:
        raise ValueError(f"the noise must be >= 0, got {noise!r}")
    reps = _pair_orbits(model.group, n)
    alpha, k = model.alpha, len(reps)
    if alpha < k:
        raise ValueError(f"the purification needs one filter per orbit of pairs: alpha must be >= {k}")
    w_sys, w_anc, bias = bell_pair_coefficients(ancilla)
    W = np.zeros((alpha, 2 * n), np.complex128)
    W[np.arange(k), reps] = w_sys
    W[np.arange(k), n + np.asarray(reps)] = w_anc
    k1, k2, k3, k4 = jax.random.split(key, 4)

    free = jnp.arange(alpha) >= k
    W = jnp.where(free[:, None], complex_noise(k1, k2, (alpha, 2 * n), noise), jnp.asarray(W))
    b = jnp.where(free, complex_noise(k3, k4, (alpha,), noise), 0.0)
    if isinstance(model, OrbitBiasRBM):
        a = jnp.full(model.n_orbits, bias, jnp.complex128)
    else:
        a = jnp.zeros(alpha, jnp.complex128).at[0].set(bias)
    return {"a": a, "b": b.astype(jnp.complex128), "W": W.astype(jnp.complex128)}
