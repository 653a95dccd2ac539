"""Unrestricted Slater determinant for spinful fermions, and the determinant machinery shared by
the fermionic models (:mod:`nqs.models.pair_product`).

Configurations and sign convention (``/work/shared/notes/rbm_pp.md`` §1, :mod:`nqs.conventions`)
-------------------------------------------------------------------------------------------------
A configuration is the int8 occupation vector ``x`` of length ``2·L`` (``L = n_sites``), orbital
``p = site + L·spin`` (↑ block first).  The basis state is the canonical product
``|x⟩ = c†_{p_1} ⋯ c†_{p_N}|0⟩`` with ``p_1 < … < p_N``, i.e. the ↑ electrons by site, then the ↓
electrons by site, and the Jordan–Wigner convention is ``c_p = (Π_{q<p} (−1)^{n_q}) a_p`` — the same
as :class:`~nqs.operators.fermion.FermionOperator`, so ``E_loc = (Hψ)(x)/ψ(x)`` with the operator's
matrix elements.

For the determinant state ``|Φ⟩ = Π_{k<N↑} (Σ_i Φ↑_{ik} c†_{i↑}) Π_{k<N↓} (Σ_i Φ↓_{ik} c†_{i↓}) |0⟩``
the amplitude on the canonical basis state is the determinant of the occupied rows, taken in
sorted order (block diagonal in spin):

    ψ(x) = ⟨x|Φ⟩ = det Φ↑[R↑, :] · det Φ↓[R↓, :],   R_σ = occupied sites of spin σ, ascending.

Sorted vs labelled electrons (the note's "never mix them")
----------------------------------------------------------
``log_psi`` always uses the *sorted* lists.  The fast path keeps *labelled* electrons: electron
``a`` keeps its row ``a`` of the cached inverse and its position ``r[a]`` changes in place when it
hops, so the rows of the cached matrix are in label order.  Then
``ψ_sorted(x) = sgn(π_r) · det Φ[r, :]`` with π_r the permutation sorting ``r``, and for a move of
electrons ``i_j → s_j`` (carried out one after another) the sign change is the product of the
*hop signs* ``(−1)^{#(same-spin electrons strictly between i_j and s_j)}``, counted in the
configuration reached after the earlier hops — exactly the Jordan–Wigner hop sign of the note.
So ``log_ratio = log det(B) + iπ·(parity)``: determinant part in label order, sign from the
configuration.  The cache is rebuilt in sorted order by ``Slater._cache``.

Low-rank updates (the note's §4, "exact identity" forms)
--------------------------------------------------------
Replacing the rows ``A = (a_1..a_m)`` of ``M`` (N×N, rows = labelled electrons) by new rows ``U``
(m×N) gives, with ``Y = M⁻¹`` and the exact identity ``M[A, :] Y = E_Aᵀ``,

    det M′/det M = det B,            B = U Y[:, A]                       (m×m, O(m²N))
    Y′ = Y − Y[:, A] B⁻¹ (U Y − E_Aᵀ)                                    (O(mN²))

(Woodbury with the row change written as ``U − M[A, :]``).  For one hop (m = 1) these are the
matrix-determinant lemma ``ρ = u·Y[:, a]`` and Sherman–Morrison ``Y′ = Y − Y[:, a](uY − e_aᵀ)/ρ``
(the note's stable form: the old row is never multiplied by the stored inverse).

Moves with up to ``k`` changed entries (``k`` = the static width of ``sites``) are parsed into
``m = max(1, k // 2)`` *slots* per spin (an electron leaving a site and one arriving), padded slots
inactive; inactive slots enter ``B`` as identity rows/columns, so every move the operators and
rules produce (hops, exchanges, pair hops, correlated hops) goes through the same formula and no
full re-evaluation is ever needed.  Moves must conserve N↑ and N↓ (as every sector operator does).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .base import FastPath, ParamDtypeModel

__all__ = [
    "Slater",
    "MoveModel",
    "logdet",
    "one_body_matrices",
    "tight_binding_orbitals",
    "MoveSlots",
    "parse_move",
    "hop_parity",
    "electron_labels",
    "relocate",
]

# ============================================================================ shared helpers


def logdet(a: jax.Array) -> jax.Array:
    """Holomorphic ``log det a`` of a square matrix (N, N) via LU, complex scalar.

    ``log det a = Σ_k log U_kk + iπ·(number of row swaps mod 2)``; the imaginary part is defined
    modulo 2π.  Unlike ``slogdet`` this is a holomorphic function of complex entries (its JAX
    derivative is the complex derivative ``tr(a⁻¹ da)``).  Singular ``a`` gives ``−inf``.
    ``N = 0`` gives 0 (empty determinant = 1).
    """
    n = a.shape[-1]
    if n == 0:
        return jnp.zeros((), jnp.complex128)
    lu, piv, _ = jax.lax.linalg.lu(a.astype(jnp.complex128))
    swaps = jnp.sum(piv != jnp.arange(n, dtype=piv.dtype))
    return jnp.sum(jnp.log(jnp.diagonal(lu))) + 1j * jnp.pi * (swaps % 2)


def small_logdet(b: jax.Array) -> jax.Array:
    """``log det b`` for the small (m×m) update matrices; closed forms for m ≤ 2."""
    m = b.shape[-1]
    b = b.astype(jnp.complex128)
    if m == 1:
        return jnp.log(b[0, 0])
    if m == 2:
        return jnp.log(b[0, 0] * b[1, 1] - b[0, 1] * b[1, 0])
    return logdet(b)


def small_solve(b: jax.Array, rhs: jax.Array) -> jax.Array:
    """``b⁻¹ rhs`` for the small (m×m) update matrix ``b``; a division for m = 1."""
    if b.shape[-1] == 1:
        return rhs / b[0, 0]
    if b.shape[-1] == 2:  # closed form: no batched LAPACK call for the 2×2 of a spin exchange
        det = b[0, 0] * b[1, 1] - b[0, 1] * b[1, 0]
        adj = jnp.stack([jnp.stack([b[1, 1], -b[0, 1]]), jnp.stack([-b[1, 0], b[0, 0]])])
        return (adj @ rhs) / det
    return jnp.linalg.solve(b, rhs)


def occupied_sites(x_spin: jax.Array, count: int) -> jax.Array:
    """Ascending sites (count,) int32 of the occupied entries of one spin block ``x_spin`` (L,)."""
    return jnp.nonzero(x_spin, size=count, fill_value=0)[0].astype(jnp.int32)


class MoveSlots(NamedTuple):
    """A move σ-resolved into electron relocations, shapes (2, m) (spin 0 = ↑, 1 = ↓).

    Slot ``j`` of spin σ (when ``active[σ, j]``) moves the electron at site ``old[σ, j]`` to the empty
    site ``new[σ, j]`` (site indices 0..L−1).  Inactive slots hold site 0 and must be masked.
    """

    old: jax.Array
    new: jax.Array
    active: jax.Array


def parse_move(
    x: jax.Array, sites: jax.Array, new_values: jax.Array, mask: jax.Array, n_sites: int, slots: int | None = None
) -> MoveSlots:
    """Split the move ``x[sites] = new_values`` into ``m = max(1, k // 2)`` relocation slots per spin
    (``slots`` when the caller knows fewer suffice, e.g. 1 for a spin exchange: one ↑ and one ↓ hop).

    Entries with ``mask`` False (padding, site ``2L``) or ``new == old`` (no-op) are ignored.  The
    j-th emptied orbital of spin σ (in the order of ``sites``) is paired with the j-th filled one;
    any pairing is valid because the sign of the labelled list is tracked (:func:`hop_parity`).
    """
    L = n_sites
    k = sites.shape[-1]
    m = max(1, k // 2) if slots is None else slots
    old_vals = jnp.take(x, sites, mode="clip")
    changed = mask & (new_values != old_vals)
    spin = (sites >= L).astype(jnp.int32)
    local = jnp.where(mask, sites - L * spin, 0).astype(jnp.int32)
    leave = changed & (old_vals == 1)
    arrive = changed & (old_vals == 0)
    slot = jnp.arange(m)

    def pick(flag):
        rank = jnp.cumsum(flag) - 1
        sel = flag[None, :] & (rank[None, :] == slot[:, None])  # (m, k)
        return jnp.sum(jnp.where(sel, local[None, :], 0), axis=1).astype(jnp.int32), jnp.any(sel, axis=1)

    olds, news, acts = [], [], []
    for s in (0, 1):
        o, ao = pick(leave & (spin == s))
        n_, an = pick(arrive & (spin == s))
        act = ao & an
        olds.append(jnp.where(act, o, 0))
        news.append(jnp.where(act, n_, 0))
        acts.append(act)
    return MoveSlots(jnp.stack(olds), jnp.stack(news), jnp.stack(acts))


def hop_parity(x_spin: jax.Array, old: jax.Array, new: jax.Array, active: jax.Array) -> jax.Array:
    """Parity (0/1) of the sign of the relocations ``old[j] → new[j]`` of one spin, done in slot order.

    Hop j contributes the number of same-spin electrons strictly between ``old[j]`` and ``new[j]``
    in the configuration reached after hops 0..j−1:
    ``#(x strictly between) + Σ_{l<j} ([new_l between] − [old_l between])``.  This equals the
    change of the sorting sign of the labelled position list, and the JW hop sign of the note.
    """
    L = x_spin.shape[-1]
    lo = jnp.minimum(old, new)
    hi = jnp.maximum(old, new)

    def between(v):  # (m, len(v)): is v[l] strictly between the ends of hop j
        return ((v[None, :] > lo[:, None]) & (v[None, :] < hi[:, None])).astype(jnp.int32)

    base = between(jnp.arange(L)) @ x_spin.astype(jnp.int32)
    m = old.shape[-1]
    earlier = jnp.tril(jnp.ones((m, m), jnp.int32), -1) * active[None, :].astype(jnp.int32)
    corr = jnp.sum(earlier * (between(new) - between(old)), axis=1)
    return jnp.sum(jnp.where(active, base + corr, 0)) % 2


def electron_labels(r: jax.Array, sites: jax.Array, active: jax.Array) -> jax.Array:
    """Labels (m,) of the electrons sitting at ``sites`` in the labelled position list ``r`` (N,).

    Inactive slots get label 0 (only ever used masked).
    """
    lab = jnp.argmax(r[None, :] == sites[:, None], axis=1).astype(jnp.int32)
    return jnp.where(active, lab, 0)


def relocate(r: jax.Array, labels: jax.Array, old: jax.Array, new: jax.Array, active: jax.Array) -> jax.Array:
    """``r`` with ``r[labels[j]] = new[j]`` for the active slots (scatter-free, so inactive slots with
    duplicate labels are harmless)."""
    hit = (jnp.arange(r.shape[-1])[:, None] == labels[None, :]) & active[None, :]  # (N, m)
    return r + jnp.sum(jnp.where(hit, (new - old)[None, :], 0), axis=1).astype(r.dtype)


def mask_to_identity(b: jax.Array, active: jax.Array) -> jax.Array:
    """``b`` with the rows and columns of inactive slots replaced by those of the identity."""
    both = active[:, None] & active[None, :]
    return jnp.where(both, b, jnp.eye(b.shape[-1], dtype=b.dtype))


def row_replacement(
    inv: jax.Array, new_rows: jax.Array, labels: jax.Array, active: jax.Array
) -> tuple[jax.Array, Callable[..., Any]]:
    """Ratio matrix and inverse update for replacing rows ``labels`` of M by ``new_rows``.

    ``inv`` = M⁻¹ (N×N, columns indexed by M's rows), ``new_rows`` (m×N).  Returns
    ``(B, update)`` with ``B = U inv[:, A]`` (inactive slots → identity) and a function giving
    ``inv′ = inv − inv[:, A] B⁻¹ (U inv − E_Aᵀ)`` (inactive slots masked out).
    """
    n = inv.shape[-1]
    cols = jnp.take(inv, labels, axis=1)  # (N, m)
    b = mask_to_identity(new_rows @ cols, active)

    def update():
        left = cols * active[None, :]
        unit = (labels[:, None] == jnp.arange(n)[None, :]).astype(inv.dtype)
        right = (new_rows @ inv - unit) * active[:, None]
        return inv - left @ small_solve(b, right)

    return b, update


# ============================================================================ one-body input


def one_body_matrices(source: Any, n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """The one-body matrices ``(h↑, h↓)`` (L×L each) of ``source``, for tight-binding orbitals.

    ``source`` is
    * a :class:`~nqs.lattice.Lattice`: nearest-neighbour hopping ``h_ij = −1`` on its periodic
      shell-1 bonds (:func:`nqs.hamiltonians.hubbard.hubbard` with t = 1, U = 0);
    * a :class:`~nqs.operators.fermion.FermionOperator` on ``2L`` orbitals (e.g. a Hubbard model
      with any boundary condition): its quadratic terms ``c·c†_p c_q`` give ``h_pq += c``
      (``c·c_q c†_p`` gives ``h_pq −= c``); quartic and constant terms are ignored;
    * an array (L, L) (both spins) or (2L, 2L) (its ↑↑ and ↓↓ blocks).
    """
    from ..lattice import Lattice
    from ..operators.fermion import FermionOperator

    L = n_sites
    if isinstance(source, Lattice):
        from ..hamiltonians.hubbard import hubbard

        if source.n_sites != L:
            raise ValueError(f"the lattice has {source.n_sites} sites but the model has {L}")
        source = hubbard(source, t=1.0, U=0.0)
    if isinstance(source, FermionOperator):
        if source.n_orbitals != 2 * L:
            raise ValueError(f"the operator acts on {source.n_orbitals} orbitals, the model on {2 * L}")
        h = np.zeros((2 * L, 2 * L), dtype=complex)
        for coef, ops in source.terms:
            if len(ops) != 2:
                continue
            (p, dp), (q, dq) = ops
            if dp == 1 and dq == 0:
                h[p, q] += coef
            elif dp == 0 and dq == 1 and p != q:
                h[q, p] -= coef
        source = h
    h = np.asarray(source)
    if h.shape == (L, L):
        return h.copy(), h.copy()
    if h.shape == (2 * L, 2 * L):
        return h[:L, :L].copy(), h[L:, L:].copy()
    raise ValueError(f"a one-body matrix must have shape ({L}, {L}) or ({2 * L}, {2 * L}), got {h.shape}")


def tight_binding_orbitals(h: np.ndarray, n_occ: int, twist: float = 1e-6, seed: int = 0) -> np.ndarray:
    """The ``n_occ`` lowest eigenvectors (L, n_occ) of the Hermitian one-body matrix ``h``.

    Degeneracies are split by diagonalising ``h + twist·‖h‖·S`` with ``S`` a fixed random real
    symmetric matrix (entries N(0, 1), from ``seed``): inside a degenerate shell at the Fermi level
    this picks a definite, generic set of orbitals.  The occupied subspace differs from an exact one
    by O(twist/gap), so for a closed shell the determinant's energy is exact up to O(twist²).
    """
    h = np.asarray(h)
    h = 0.5 * (h + h.conj().T)
    L = h.shape[0]
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(L, L))
    s = 0.5 * (s + s.T)
    scale = max(float(np.abs(h).max(initial=0.0)), 1.0)
    _, v = np.linalg.eigh(h + twist * scale * s)
    v = v[:, :n_occ]
    return v.real.copy() if np.all(np.abs(v.imag) < 1e-14) else v


def _check_counts(n_sites: int, n_up: int, n_down: int) -> None:
    for name, v in (("n_sites", n_sites), ("n_up", n_up), ("n_down", n_down)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if n_sites < 1 or not (0 <= n_up <= n_sites and 0 <= n_down <= n_sites):
        raise ValueError(f"impossible filling: {n_up}↑ + {n_down}↓ electrons on {n_sites} sites")


# ============================================================================ the model


class MoveModel(ParamDtypeModel):
    """A fermion model whose fast path (:class:`_MoveModelPath`) is its ``_prepare(params)`` (default: the
    parameters as they are), ``_cache(prepared, x)`` and one ``_move(prepared, x, cache, sites, new_values,
    mask)`` giving ``(log ψ(x′) − log ψ(x), thunk for the new cache)``: the ratio and the update share the work."""

    def _prepare(self, params):
        return params

    def _cache(self, params, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _move(self, params, x, cache, sites, new_values, mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def make_fast_path(self) -> FastPath:
        return _MoveModelPath(self)


@dataclass(frozen=True, eq=False)
class _MoveModelPath(FastPath):
    """The fast path of a :class:`MoveModel`: its ``_prepare``, ``_cache`` and ``_move``."""

    model: MoveModel

    def prepare(self, params: Any) -> Any:
        return self.model._prepare(params)

    def cache(self, prepared: Any, x: jax.Array) -> Any:
        return self.model._cache(prepared, x)

    def log_ratio(
        self, prepared: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        return self.model._move(prepared, x, cache, sites, new_values, mask)[0]

    def update(
        self, prepared: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return self.model._move(prepared, x, cache, sites, new_values, mask)[1]()


@dataclass(frozen=True, eq=False)
class Slater(MoveModel):
    """Unrestricted Slater determinant ``ψ(x) = det Φ↑[R↑, :] · det Φ↓[R↓, :]`` (module docstring).

    Parameters ``{"phi_up": (L, N↑), "phi_dn": (L, N↓)}``, complex (default, holomorphic) or real
    (``param_dtype="real"``: ψ real, ``real_derivatives``).  ``n_sites`` is the number of lattice
    sites L; configurations have length ``2L`` (:attr:`n_orbitals`).

    ``init(key)``: the tight-binding orbitals of ``hopping`` (a Lattice, FermionOperator or matrix,
    see :func:`one_body_matrices`) when given, else random N(0, 1) orbitals.
    Fast path: the cache holds the labelled positions ``r_up`` (N↑,), ``r_dn`` (N↓,) and the inverses
    ``inv_up = Φ↑[r_up]⁻¹``, ``inv_dn``; a move of m electrons per spin costs O(m²N) for the ratio and
    O(mN²) for the update.
    """

    n_sites: int
    n_up: int
    n_down: int
    param_dtype: str = "complex"
    hopping: Any = None
    twist: float = 1e-6

    def __post_init__(self) -> None:
        _check_counts(self.n_sites, self.n_up, self.n_down)
        self._check_param_dtype()

    @property
    def n_orbitals(self) -> int:
        """Configuration length 2L."""
        return 2 * self.n_sites

    # ------------------------------------------------------------------ parameters
    def init(self, key: jax.Array) -> dict:
        if self.hopping is not None:
            return self.init_tight_binding(self.hopping, twist=self.twist)
        k1, k2, k3, k4 = jax.random.split(key, 4)
        L = self.n_sites
        if self.param_dtype == "complex":
            up = jax.random.normal(k1, (L, self.n_up)) + 1j * jax.random.normal(k2, (L, self.n_up))
            dn = jax.random.normal(k3, (L, self.n_down)) + 1j * jax.random.normal(k4, (L, self.n_down))
        else:
            up = jax.random.normal(k1, (L, self.n_up))
            dn = jax.random.normal(k3, (L, self.n_down))
        return {"phi_up": up.astype(self._dtype), "phi_dn": dn.astype(self._dtype)}

    def init_tight_binding(self, source: Any, twist: float | None = None, seed: int = 0) -> dict:
        """Parameters with the lowest N↑ (N↓) eigenvectors of the one-body matrix of ``source``.

        ``source``: see :func:`one_body_matrices`; degenerate levels are split by a tiny random
        symmetric perturbation (:func:`tight_binding_orbitals`, relative size ``twist``).  The same
        perturbation is used for both spins, so equal one-body matrices give Φ↓ = Φ↑[:, :N↓].
        """
        twist = self.twist if twist is None else twist
        h_up, h_dn = one_body_matrices(source, self.n_sites)
        up = tight_binding_orbitals(h_up, self.n_up, twist, seed)
        dn = tight_binding_orbitals(h_dn, self.n_down, twist, seed)
        if self.param_dtype == "real":
            if np.iscomplexobj(up) or np.iscomplexobj(dn):
                raise ValueError("complex tight-binding orbitals need param_dtype='complex'")
        return {"phi_up": jnp.asarray(up, self._dtype), "phi_dn": jnp.asarray(dn, self._dtype)}

    # ------------------------------------------------------------------ amplitude
    def _blocks(self, params):
        return ((params["phi_up"], self.n_up, "up"), (params["phi_dn"], self.n_down, "dn"))

    def log_psi(self, params: Any, x: jax.Array) -> jax.Array:
        L = self.n_sites
        out = jnp.zeros((), jnp.complex128)
        for s, (phi, n, _) in enumerate(self._blocks(params)):
            if n:
                r = occupied_sites(x[s * L : (s + 1) * L], n)
                out = out + logdet(jnp.take(phi, r, axis=0))
        return out

    # ------------------------------------------------------------------ fast path
    def _cache(self, params, x):
        L = self.n_sites
        c = {}
        for s, (phi, n, name) in enumerate(self._blocks(params)):
            if n:
                r = occupied_sites(x[s * L : (s + 1) * L], n)
                c["r_" + name] = r
                c["inv_" + name] = jnp.linalg.inv(jnp.take(phi, r, axis=0).astype(jnp.complex128))
        return c

    def _move(self, params, x, cache, sites, new_values, mask):
        """``(log ψ(x′) − log ψ(x), thunk giving the cache of x′)`` for the move ``x[sites] = new_values``."""
        L = self.n_sites
        mv = parse_move(x, sites, new_values, mask, L)
        log_r = jnp.zeros((), jnp.complex128)
        parity = jnp.zeros((), jnp.int32)
        positions, inverse_updates = {}, {}
        for s, (phi, n, name) in enumerate(self._blocks(params)):
            if not n:
                continue
            old, new, act = mv.old[s], mv.new[s], mv.active[s]
            r = cache["r_" + name]
            labels = electron_labels(r, old, act)
            rows = jnp.take(phi, new, axis=0).astype(jnp.complex128)  # (m, N): orbitals at the new sites
            b, inverse_updates["inv_" + name] = row_replacement(cache["inv_" + name], rows, labels, act)
            log_r = log_r + small_logdet(b)
            parity = parity + hop_parity(x[s * L : (s + 1) * L], old, new, act)
            positions["r_" + name] = relocate(r, labels, old, new, act)
        log_r = log_r + 1j * jnp.pi * (parity % 2)

        def new_cache():
            return {**positions, **{k: upd() for k, upd in inverse_updates.items()}}

        return log_r, new_cache

    def describe(self) -> str:
        return f"{self.param_dtype} Slater determinant ({self.n_up}↑ + {self.n_down}↓ on {self.n_sites} sites)"


def unrestricted_hartree_fock(
    op: Any,
    n_sites: int,
    n_up: int,
    n_down: int,
    n_iter: int = 2000,
    mixing: float = 0.5,
    tol: float = 1e-10,
    seed: int = 0,
    guess: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Collinear unrestricted Hartree–Fock for the quadratic and density–density terms of ``op``.

    ``op``: a :class:`~nqs.operators.fermion.FermionOperator` on 2L orbitals (↑ first).  Terms
    ``c n_p n_q`` (written ``c†_p c_p c†_q c_q``) are decoupled with Wick's theorem,
    ``n_p n_q → ⟨n_p⟩n_q + n_p⟨n_q⟩ − ⟨c†_p c_q⟩c†_q c_p − c†_p c_q⟨c†_q c_p⟩`` (Fock terms only within
    a spin; spin-flip averages vanish in the collinear ansatz); other quartic terms are ignored.
    Start: the densities of the non-interacting orbitals plus a staggered or random spin
    polarisation (``guess`` (L,) of ±1, e.g. the sublattice signs; else random, ``seed``), linear
    mixing of the one-body density matrices until they change by less than ``tol``.

    Returns ``(h_eff, energy)``: the converged block-diagonal mean-field matrix (2L, 2L) — its
    lowest N↑ (N↓) eigenvectors in the ↑↑ (↓↓) block are the UHF orbitals, so it can be passed as
    ``hopping`` to :class:`Slater` / ``PairProduct`` — and the Hartree–Fock energy ⟨H⟩.
    """
    L, M = n_sites, 2 * n_sites
    h_up, h_dn = one_body_matrices(op, L)
    h0 = np.zeros((M, M), dtype=complex)
    h0[:L, :L], h0[L:, L:] = h_up, h_dn
    pairs = []  # (p, q, c) for c n_p n_q, p != q; (p, p, c) for c n_p
    for coef, ops in op.terms:
        if (
            len(ops) == 4
            and ops[0][0] == ops[1][0]
            and ops[2][0] == ops[3][0]
            and (ops[0][1], ops[1][1], ops[2][1], ops[3][1]) == (1, 0, 1, 0)
        ):
            p, q = ops[0][0], ops[2][0]
            if p == q:
                h0[p, p] += coef
            else:
                pairs.append((p, q, coef))
    rng = np.random.default_rng(seed)
    stag = np.asarray(guess, dtype=float) if guess is not None else rng.choice([-1.0, 1.0], L)

    def density(h, bias=0.0):
        g = np.zeros((M, M), dtype=complex)
        for s, n in ((0, n_up), (1, n_down)):
            blk = slice(s * L, (s + 1) * L)
            hb = h[blk, blk] + np.diag(bias * stag * (1 if s == 0 else -1))
            w, v = np.linalg.eigh((hb + hb.conj().T) / 2)
            occ = v[:, :n]
            g[blk, blk] = occ.conj() @ occ.T  # g[a, b] = <c†_a c_b>
        return g

    def mean_field(g):
        h = h0.copy()
        for p, q, c in pairs:
            h[q, q] += c * g[p, p].real
            h[p, p] += c * g[q, q].real
            if (p < L) == (q < L):  # same spin: exchange
                h[q, p] -= c * g[p, q]
                h[p, q] -= c * g[q, p]
        return h

    def energy(g):
        e = np.sum(h0 * g.T).real  # Σ h0[a,b] <c†_a c_b>
        for p, q, c in pairs:
            e += (c * (g[p, p] * g[q, q] - (g[p, q] * g[q, p] if (p < L) == (q < L) else 0))).real
        return float(e)

    g = density(h0, bias=0.5)
    for _ in range(n_iter):
        g_new = density(mean_field(g))
        if np.max(np.abs(g_new - g)) < tol:
            g = g_new
            break
        g = (1 - mixing) * g + mixing * g_new
    h = mean_field(g)
    return (h + h.conj().T) / 2, energy(g)
