"""Lattice symmetry groups as site permutations, their characters, and symmetry-resolved ED.

Permutation convention
----------------------
A group element ``g`` is stored as a site permutation ``p_g = perms[g]`` (int, shape (n_sites,)):
``g`` carries site ``i`` to site ``p_g[i]``.  It acts on a configuration σ by carrying the spins
along with the sites,

    (gσ)_{p_g[i]} = σ_i,        i.e.   gσ = σ[p_g^{-1}]   (numpy: ``sigma[..., inverse_perms[g]]``).

Composition: ``(gh)σ = g(hσ)``  ⇔  ``p_{gh} = p_g ∘ p_h``  (numpy: ``perms[g][perms[h]]``).
The operators ``U_g|σ⟩ = |gσ⟩`` form a unitary representation, ``U_g U_h = U_{gh}``, and act on
wave functions as ``(U_g ψ)(σ) = ψ(g^{-1}σ)``.

Sectors and characters
----------------------
A character ``χ`` of a ``d``-dimensional irrep (``d = χ(e)``) labels the sector

    V_χ = range(P_χ),      P_χ = (d/|G|) Σ_g χ(g)* U_g      (an orthogonal projector).

For a 1D irrep ``V_χ = {ψ : U_g ψ = χ(g) ψ for all g}``, i.e. the amplitudes obey

    ψ(gσ) = χ(g)* ψ(σ).

The space group is symmorphic: element ``g = (t, p)`` is "point operation ``p`` about the centre
``c``, then translation by the cell vector ``T_t``", acting on positions as
``r ↦ T_t + c + R_p (r − c)``.  Its characters at momentum ``k`` (in the little group of ``k``) are

    χ(g) = exp(−i k·T_t) · χ_P(p),

so a sector-``k`` state obeys ``U_T ψ = e^{−ik·T} ψ`` and ``ψ(σ shifted by +T) = e^{+ik·T} ψ(σ)``:
a single magnon ``ψ(r) = e^{ik·r}`` has momentum ``k`` (the phase ``exp(i k·T_t)`` quoted by
:meth:`Lattice.momenta` is this amplitude phase).  ``exp(−i k·T)`` is well defined on the torus
for the allowed momenta of :meth:`Lattice.momenta`, and the product rule
``χ(g h) = χ(g) χ(h)`` requires ``R_p k ≡ k`` (mod the reciprocal lattice) for every point
operation used: at other ``k`` use :func:`little_group`.

Global spin flip ``F σ = −σ`` commutes with every permutation; parity ``p = ±1`` selects
``F ψ = p ψ`` ⇔ ``ψ(−σ) = p ψ(σ)``, projector ``(1 + pF)/2`` (only in the full space or at
``S^z = 0``).

Point-group irreps (labels)
---------------------------
Point operations are orthogonal matrices ``R`` (Cartesian coordinates): rotations by ``θ``
(det +1) and mirrors across the line at angle ``φ`` (det −1; in 1D the inversion ``x ↦ −x`` is
the mirror).  A point group with ``n`` rotations (multiples of ``2π/n``) and mirrors at
``φ_j = φ_0 + jπ/n`` (``φ_0`` the smallest mirror angle in [0, π)) is the dihedral group ``D_n``
(``C_nv``); its irreps are

* ``A1``: 1;  ``A2``: 1 on rotations, −1 on mirrors;
* ``B1``, ``B2`` (``n`` even): ``(−1)^m`` on the rotation by ``2πm/n``, ``±(−1)^j`` on mirror ``j``
  (``B1`` is +1 on the mirror at ``φ_0``);
* ``E`` (``n`` = 3, 4) or ``E1, E2, ...`` (``n`` ≥ 5), two-dimensional: ``2 cos(2π l m/n)`` on
  the rotation ``m``, 0 on mirrors.

With ``φ_0 = 0`` (a mirror along ``a_1``) these are the textbook tables: square C4v: ``σ_v`` =
mirrors along the axes (``B1`` = +1, d_{x²−y²}-like), ``σ_d`` = diagonals; hexagonal C6v: ``σ_v``
= mirrors along ``a_1``, ``a_2``, ``a_2 − a_1`` (0°, 60°, 120°; ``B1`` = +1), ``σ_d`` at 30°, 90°,
150°.  The chain's point group ``{E, I}`` is ``D_1``: ``A1`` even, ``A2`` odd under inversion.
A group of rotations only (``C_n``, no mirrors) has the 1D irreps ``A1`` (trivial), ``B`` (``n``
even: ``(−1)^m``) and ``m1, m2, ...`` (``exp(2πi l m/n)``).  ``"A"`` is accepted for ``A1``.

Sector-resolved exact diagonalization
-------------------------------------
:func:`sector_basis` builds an orthonormal basis of ``range(P)`` orbit by orbit (``P`` maps the
span of each orbit into itself), :func:`sector_energies` diagonalizes ``H`` in it, and
:func:`symmetry_sectors` lists labels ``(k, irrep, parity)`` whose sectors decompose the whole
space: the isotypic components of the little groups ``G_k = T ⋊ P_k`` over *all* allowed ``k``,
so the union of their spectra (2D irreps included, each level with its multiplicity) is the
full spectrum.

Hilbert spaces are used through ``n_sites``, ``total_sz``, ``all_codes()`` (sorted codes, bit
``i`` set when site ``i`` is ↑) and ``codes_to_states`` (see :mod:`nqs.hilbert.spin`); operators
through ``to_sparse(hilbert)``.  This module imports no higher layer of ``nqs``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

from .lattice import Lattice

__all__ = [
    "SymmetryGroup",
    "translation_group",
    "point_group",
    "space_group",
    "little_group",
    "momentum",
    "momentum_characters",
    "point_irreps",
    "point_characters",
    "space_characters",
    "sector_exists",
    "spin_flip_character",
    "is_representation",
    "symmetry_sectors",
    "projector_dense",
    "sector_basis",
    "sector_hamiltonian",
    "sector_energies",
]

_ANGLE_TOL = 1e-8


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# ============================================================================ the group object
@dataclass(frozen=True, eq=False)
class SymmetryGroup:
    """A finite group of site permutations (see the module docstring for the convention).

    Fields
    ------
    perms : int array (n_g, n_sites)
        ``perms[g, i]`` is the image of site ``i`` under ``g``; ``(gσ)_{perms[g, i]} = σ_i``.
        All rows are distinct; row 0 is the identity for the groups built in this module.
    names : tuple of str (n_g,)
        Labels, e.g. ``"T(1,0)"``, ``"rot90"``, ``"T(1,0)*mirror45"``.
    translation : int array (n_g,) or None
        Translation part ``t`` of each element: row of ``translation_vectors``.
    translation_vectors : float array (n_t, d) or None
        Cartesian cell vectors ``T_t`` (the rows of :meth:`Lattice.translations`, same order).
    point : int array (n_g,) or None
        Point part ``p`` of each element: row of ``point_matrices``.
    point_matrices : float array (n_p, d, d) or None
        Orthogonal matrices ``R_p`` (Cartesian) of the *abstract* point group (all operations the
        cluster admits, closed under products); row 0 is the identity.
    point_perms : int array (n_p, n_sites) or None
        Site permutation of each point operation (rows may coincide on small tori).
    point_names : tuple of str (n_p,) or None
    centre : float array (d,) or None
        Fixed point ``c`` of the point operations.
    duplicates : int array (n_dup, 3)
        Rows ``(t, p, g)``: the pair (translation ``t``, point operation ``p``) gives the same
        permutation as element ``g`` (small tori only).  The abstract group ``T ⋊ P`` then acts
        non-faithfully; a sector exists only if its characters agree on such pairs, which
        :func:`space_characters` and :func:`point_characters` check.
    """

    perms: np.ndarray
    names: tuple[str, ...]
    translation: np.ndarray | None = None
    translation_vectors: np.ndarray | None = None
    point: np.ndarray | None = None
    point_matrices: np.ndarray | None = None
    point_perms: np.ndarray | None = None
    point_names: tuple[str, ...] | None = None
    centre: np.ndarray | None = None
    duplicates: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        perms = np.asarray(self.perms, dtype=np.int64)
        if perms.ndim != 2:
            raise ValueError(f"perms must have shape (n_g, n_sites), got {perms.shape}")
        n = perms.shape[1]
        if not np.array_equal(np.sort(perms, axis=1), np.broadcast_to(np.arange(n), perms.shape)):
            raise ValueError("every row of perms must be a permutation of range(n_sites)")
        if len(self.names) != perms.shape[0]:
            raise ValueError(f"{len(self.names)} names for {perms.shape[0]} elements")
        object.__setattr__(self, "perms", _readonly(perms))
        object.__setattr__(self, "names", tuple(self.names))
        for name in ("translation", "point", "point_perms", "duplicates"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _readonly(np.asarray(v, dtype=np.int64)))
        for name in ("translation_vectors", "point_matrices", "centre"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _readonly(np.asarray(v, dtype=float)))
        if self.point_names is not None:
            object.__setattr__(self, "point_names", tuple(self.point_names))
        keys = {row.tobytes(): g for g, row in enumerate(self.perms)}
        if len(keys) != len(self.perms):
            raise ValueError("the rows of perms must be distinct")
        self._cache["index"] = keys

    # ----------------------------------------------------------------- basic properties
    def __len__(self) -> int:
        return int(self.perms.shape[0])

    @property
    def order(self) -> int:
        """Number of elements ``|G|``."""
        return len(self)

    @property
    def n_sites(self) -> int:
        return int(self.perms.shape[1])

    @property
    def inverse_perms(self) -> np.ndarray:
        """``inverse_perms[g] = p_g^{-1}``, shape (n_g, n_sites); ``gσ = σ[inverse_perms[g]]``."""
        if "inv" not in self._cache:
            inv = np.empty_like(self.perms)
            rows = np.arange(len(self))[:, None]
            inv[rows, self.perms] = np.arange(self.n_sites)[None, :]
            self._cache["inv"] = _readonly(inv)
        return self._cache["inv"]

    def index_of(self, perm: Sequence[int] | np.ndarray) -> int:
        """Index of the element with permutation ``perm``; ``KeyError`` if it is not in the group."""
        key = np.asarray(perm, dtype=np.int64).tobytes()
        return self._cache["index"][key]

    def __contains__(self, perm: object) -> bool:
        try:
            self.index_of(perm)  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError):
            return False
        return True

    @property
    def identity(self) -> int:
        """Index of the identity element."""
        return self.index_of(np.arange(self.n_sites))

    def compose(self, g: int, h: int) -> np.ndarray:
        """Permutation of ``g h`` (apply ``h`` first): ``p_g[p_h]``."""
        return self.perms[g][self.perms[h]]

    def product(self, g: int, h: int) -> int:
        """Index of ``g h``; ``KeyError`` if the set is not closed."""
        return self.index_of(self.compose(g, h))

    def inverse(self, g: int) -> int:
        """Index of ``g^{-1}``."""
        return self.index_of(self.inverse_perms[g])

    def product_table(self) -> np.ndarray:
        """``table[g, h]`` = index of ``g h``, shape (n_g, n_g); ``KeyError`` if not closed."""
        if "table" not in self._cache:
            prods = self.perms[:, self.perms]  # prods[g, h, i] = p_g[p_h[i]]
            idx = self._cache["index"]
            table = np.array(
                [[idx[row.tobytes()] for row in prods[g]] for g in range(len(self))], dtype=np.int64
            )
            self._cache["table"] = _readonly(table)
        return self._cache["table"]

    def is_closed(self) -> bool:
        """Whether the permutations form a group (closed under products; inverses follow)."""
        if np.arange(self.n_sites) not in self:
            return False
        try:
            self.product_table()
        except KeyError:
            return False
        return True

    def act(self, g: int, sigma: np.ndarray) -> np.ndarray:
        """``gσ`` for configurations ``sigma`` (..., n_sites): ``sigma[..., p_g^{-1}]``."""
        return np.asarray(sigma)[..., self.inverse_perms[g]]

    def __repr__(self) -> str:
        return f"SymmetryGroup(order={len(self)}, n_sites={self.n_sites})"


# ============================================================================ geometry helpers
def _point_candidates(lattice: Lattice) -> list[tuple[str, np.ndarray]]:
    """Candidate point operations (name, R) of the Bravais lattice: chain {E, I}, square C4v,
    triangular-based C6v; identity first, then rotations, then mirrors by increasing angle."""
    if lattice.ndim == 1:
        return [("E", np.eye(1)), ("I", -np.eye(1))]
    n = 4 if lattice.kind == "square" else 6
    out: list[tuple[str, np.ndarray]] = []
    for m in range(n):
        th = 2.0 * math.pi * m / n
        c, s = math.cos(th), math.sin(th)
        out.append(("E" if m == 0 else f"rot{round(360 * m / n)}", np.array([[c, -s], [s, c]])))
    for j in range(n):
        phi = math.pi * j / n
        c, s = math.cos(2 * phi), math.sin(2 * phi)
        out.append((f"mirror{round(180 * j / n)}", np.array([[c, s], [s, -c]])))
    return out


def _default_centre(lattice: Lattice, origin_site: int) -> np.ndarray:
    """Highest-symmetry point next to ``origin_site``: the site itself (chain, square,
    triangular), the hexagon centre of its cell (honeycomb: cell + 2(a1+a2)/3; kagome: cell +
    (a1+a2)/2); the centroid of the cluster when a direction is open."""
    if not all(lattice.pbc):
        return np.asarray(lattice.positions.mean(axis=0), dtype=float)
    r = np.asarray(lattice.positions[origin_site], dtype=float)
    A = lattice.primitive_vectors
    if lattice.kind == "honeycomb":
        return r - lattice.basis_vectors[lattice.basis_index[origin_site]] + 2.0 * (A[0] + A[1]) / 3
    if lattice.kind == "kagome":
        return r - lattice.basis_vectors[lattice.basis_index[origin_site]] + (A[0] + A[1]) / 2
    return r


def _site_map(lattice: Lattice, points: np.ndarray) -> np.ndarray | None:
    """Site index at each Cartesian point (n, d), modulo the torus; None if a point is no site."""
    A = lattice.primitive_vectors
    Ainv = np.linalg.inv(A)
    frac = points @ Ainv  # r = f · A
    bfrac = lattice.basis_vectors @ Ainv  # (n_basis, d)
    L = np.array(lattice.size, dtype=np.int64)
    per = np.array(lattice.pbc, dtype=bool)
    out = np.full(len(points), -1, dtype=np.int64)
    for b, fb in enumerate(bfrac):
        cell_f = frac - fb
        cell = np.rint(cell_f)
        ok = np.all(np.abs(cell_f - cell) < 1e-6, axis=1)
        cell = cell.astype(np.int64)
        cell = np.where(per, np.mod(cell, L), cell)
        ok &= np.all((cell >= 0) & (cell < L), axis=1)
        hit = ok & (out < 0)
        if np.any(hit):
            ci = np.ravel_multi_index(tuple(cell[hit].T), lattice.size)
            out[hit] = ci * lattice.n_basis + b
    return None if np.any(out < 0) else out


def _preserves_torus(lattice: Lattice, R: np.ndarray) -> bool:
    """Whether ``R`` maps the superlattice of periodic vectors ``L_k a_k`` onto itself."""
    A = lattice.primitive_vectors
    per = [k for k, p in enumerate(lattice.pbc) if p]
    if not per:
        return True
    S = np.array([lattice.size[k] * A[k] for k in per])  # (n_per, d)
    for v in S:
        w = R @ v
        coef, *_ = np.linalg.lstsq(S.T, w, rcond=None)
        if np.linalg.norm(S.T @ coef - w) > 1e-6 or np.any(np.abs(coef - np.rint(coef)) > 1e-6):
            return False
    return True


def _cell_vectors(lattice: Lattice) -> np.ndarray:
    """Cartesian vectors ``T_t`` of the rows of :meth:`Lattice.translations`, shape (n_t, d)."""
    trans = lattice.translations()
    cells = lattice.cells[trans[:, 0]]  # site 0 is cell 0, basis 0: its image is cell t
    return cells.astype(float) @ lattice.primitive_vectors


# ============================================================================ groups
def translation_group(lattice: Lattice) -> SymmetryGroup:
    """The lattice translations (rows of :meth:`Lattice.translations`, same order; identity first).

    Element ``t`` moves site (cell ``c``, basis ``b``) to (cell ``c + t mod L``, basis ``b``).
    """
    trans = lattice.translations()
    cells = lattice.cells[trans[:, 0]]
    names = tuple("T(" + ",".join(str(int(x)) for x in c) + ")" for c in cells)
    n_t = len(trans)
    return SymmetryGroup(
        perms=np.array(trans),
        names=names,
        translation=np.arange(n_t),
        translation_vectors=_cell_vectors(lattice),
        point=np.zeros(n_t, dtype=np.int64),
        point_matrices=np.eye(lattice.ndim)[None],
        point_perms=np.arange(lattice.n_sites)[None],
        point_names=("E",),
        centre=np.asarray(lattice.positions[0], dtype=float),
    )


def point_group(
    lattice: Lattice, origin_site: int = 0, centre: str | Sequence[float] | np.ndarray = "auto"
) -> SymmetryGroup:
    """The point operations about ``centre`` that the finite cluster admits, as site permutations.

    Candidates: chain ``{E, I}``; square C4v (rotations by 90°, mirrors at 0°, 45°, 90°, 135°);
    triangular, honeycomb, kagome C6v (rotations by 60°, mirrors every 30°).  A candidate ``R`` is
    kept when ``r ↦ c + R (r − c)`` maps every site onto a site modulo the torus, bijectively, and
    ``R`` maps the periodic superlattice onto itself (so the map is well defined on the torus).
    Periodic square L×L gives C4v (8), L1 ≠ L2 gives C2v; periodic triangular-based tori with
    L1 = L2 give C6v (12), others a subgroup (C2v, C2, ...).

    ``centre``: ``"auto"`` (the site ``origin_site`` for chain, square and triangular lattices,
    the hexagon centre of its cell for honeycomb and kagome, where the full C6v lives; the
    cluster's centroid when a direction is open), ``"site"`` (the site ``origin_site`` itself) or
    explicit Cartesian coordinates.  Element ``p`` of the result has ``point[p] = p``; the
    identity is element 0.
    """
    if isinstance(centre, str):
        if centre == "auto":
            c = _default_centre(lattice, origin_site)
        elif centre == "site":
            c = np.asarray(lattice.positions[origin_site], dtype=float)
        else:
            raise ValueError(f"centre must be 'auto', 'site' or coordinates, got {centre!r}")
    else:
        c = np.asarray(centre, dtype=float).reshape(lattice.ndim)
    pos = np.asarray(lattice.positions, dtype=float)
    ops = []
    for name, R in _point_candidates(lattice):
        if not _preserves_torus(lattice, R):
            continue
        img = _site_map(lattice, c + (pos - c) @ R.T)
        if img is None or len(np.unique(img)) != lattice.n_sites:
            continue
        ops.append((name, R, img))
    return _make_point_group(ops, c)


def _make_point_group(ops: Sequence[tuple[str, np.ndarray, np.ndarray]], centre: np.ndarray) -> SymmetryGroup:
    """Point group from ``(name, R, perm)`` triples (identity first): distinct permutations become
    elements, repeated ones are recorded in ``duplicates`` as ``(0, p, g)``."""
    names = tuple(op[0] for op in ops)
    mats = np.array([op[1] for op in ops])
    pperms = np.array([op[2] for op in ops], dtype=np.int64)
    seen: dict[bytes, int] = {}
    keep, dup = [], []
    for p, perm in enumerate(pperms):
        key = perm.tobytes()
        if key in seen:
            dup.append((0, p, seen[key]))
        else:
            seen[key] = len(keep)
            keep.append(p)
    return SymmetryGroup(
        perms=pperms[keep],
        names=tuple(names[p] for p in keep),
        point=np.array(keep, dtype=np.int64),
        point_matrices=mats,
        point_perms=pperms,
        point_names=names,
        centre=centre,
        duplicates=np.array(dup, dtype=np.int64).reshape(-1, 3),
    )


def space_group(lattice: Lattice, point: SymmetryGroup | None = None) -> SymmetryGroup:
    """Translations × point group: elements ``g = (t, p)``, ``r ↦ T_t + c + R_p (r − c)``.

    ``perms[g] = translations[t][point_perms[p]]``.  Ordered point-major (the first ``n_t``
    elements are the translations, in :meth:`Lattice.translations` order); pairs giving an
    already-listed permutation (small tori) are dropped and recorded in ``duplicates``.
    ``point`` defaults to :func:`point_group` ``(lattice)``; pass a subgroup (e.g. a little group)
    to get ``T ⋊ P_sub``.
    """
    if point is None:
        point = point_group(lattice)
    if point.point_matrices is None or point.point_perms is None:
        raise ValueError("space_group needs a point group built by point_group()")
    trans = lattice.translations()
    tnames = translation_group(lattice).names
    perms, names, t_idx, p_idx, dup = [], [], [], [], []
    seen: dict[bytes, int] = {}
    for p, pp in enumerate(point.point_perms):
        pn = point.point_names[p] if point.point_names else str(p)
        for t in range(len(trans)):
            perm = trans[t][pp]
            key = perm.tobytes()
            if key in seen:
                dup.append((t, p, seen[key]))
                continue
            seen[key] = len(perms)
            perms.append(perm)
            names.append(tnames[t] if pn == "E" else (pn if t == 0 else f"{tnames[t]}*{pn}"))
            t_idx.append(t)
            p_idx.append(p)
    return SymmetryGroup(
        perms=np.array(perms),
        names=tuple(names),
        translation=np.array(t_idx),
        translation_vectors=_cell_vectors(lattice),
        point=np.array(p_idx),
        point_matrices=point.point_matrices,
        point_perms=point.point_perms,
        point_names=point.point_names,
        centre=point.centre,
        duplicates=np.array(dup, dtype=np.int64).reshape(-1, 3),
    )


# ============================================================================ momenta
def momentum(lattice: Lattice, k: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """``k`` as a Cartesian vector (d,): an int selects a row of :meth:`Lattice.momenta`; a vector
    must be an allowed momentum (``k·L_j a_j ∈ 2πℤ`` along periodic ``j``, 0 along open ones)."""
    if isinstance(k, int | np.integer) and not isinstance(k, bool):
        return np.array(lattice.momenta()[int(k)], dtype=float)
    kv = np.asarray(k, dtype=float).reshape(lattice.ndim)
    A = lattice.primitive_vectors
    for j, (L, p) in enumerate(zip(lattice.size, lattice.pbc, strict=True)):
        x = kv @ A[j] * (L if p else 1) / (2 * math.pi)
        if (p and abs(x - round(x)) > 1e-8) or (not p and abs(x) > 1e-8):
            raise ValueError(f"k = {kv.tolist()} is not an allowed momentum of {lattice}")
    return kv


def _k_invariant(lattice: Lattice, R: np.ndarray, k: np.ndarray) -> bool:
    """``R k ≡ k`` modulo the reciprocal lattice (``(R k − k)·a_j ∈ 2πℤ``)."""
    x = (R @ k - k) @ lattice.primitive_vectors.T / (2 * math.pi)
    return bool(np.all(np.abs(x - np.rint(x)) < 1e-8))


def little_group(
    lattice: Lattice, k: int | Sequence[float] | np.ndarray, point: SymmetryGroup | None = None
) -> SymmetryGroup:
    """``G_k = T ⋊ P_k``: translations × the point operations with ``R k ≡ k``.

    ``point`` defaults to :func:`point_group` ``(lattice)``.  At Γ (and e.g. M of the square,
    ``k = π`` of the chain) ``P_k`` is the whole point group.
    """
    if point is None:
        point = point_group(lattice)
    if point.point_matrices is None or point.point_perms is None or point.point_names is None:
        raise ValueError("little_group needs a point group built by point_group()")
    kv = momentum(lattice, k)
    ops = [
        (point.point_names[p], point.point_matrices[p], point.point_perms[p])
        for p in range(len(point.point_matrices))
        if _k_invariant(lattice, point.point_matrices[p], kv)
    ]
    return space_group(lattice, _make_point_group(ops, point.centre))


# ============================================================================ characters
def momentum_characters(
    lattice: Lattice, group: SymmetryGroup, k: int | Sequence[float] | np.ndarray
) -> np.ndarray:
    """``χ(g) = exp(−i k·T_g)`` from the translation part ``T_g`` of each element, complex (n_g,).

    Sign convention: a sector-``k`` state obeys ``U_T ψ = e^{−ik·T} ψ``, i.e. amplitudes
    ``ψ(σ shifted by +T) = e^{+ik·T} ψ(σ)`` (a plane wave ``e^{+ik·r}``).  The point part is
    ignored: alone this is a representation only of the translations (or when ``R k ≡ k``).
    """
    if group.translation is None or group.translation_vectors is None:
        raise ValueError("the group has no translation part")
    kv = momentum(lattice, k)
    T = group.translation_vectors[group.translation]
    return np.exp(-1j * (T @ kv))


def _classify(R: np.ndarray) -> tuple[int, float]:
    """``(det, angle)``: rotation angle θ ∈ [0, 2π) for det +1, mirror-line angle φ ∈ [0, π)."""
    if R.shape == (1, 1):
        return (1, 0.0) if R[0, 0] > 0 else (-1, 0.0)
    det = int(round(np.linalg.det(R)))
    a = math.atan2(R[1, 0], R[0, 0]) % (2 * math.pi)
    if det == 1:
        return 1, (0.0 if abs(a - 2 * math.pi) < _ANGLE_TOL else a)
    phi = (a / 2) % math.pi
    return -1, (0.0 if abs(phi - math.pi) < _ANGLE_TOL else phi)


def point_irreps(group: SymmetryGroup) -> dict[str, np.ndarray]:
    """Irreducible characters of the abstract point group of ``group``: name → χ_P, complex
    (n_p,), over the rows of ``group.point_matrices``.

    See the module docstring for the labels (dihedral ``A1, A2, B1, B2, E, E1, E2, ...``, cyclic
    ``A1, B, m1, m2, ...``).
    """
    if group.point_matrices is None or group.point is None:
        raise ValueError("the group has no point part")
    n_p = len(group.point_matrices)
    cls = [_classify(R) for R in group.point_matrices]
    rots = {q: a for q, (det, a) in enumerate(cls) if det == 1}
    mirrors = {q: a for q, (det, a) in enumerate(cls) if det == -1}
    n = len(rots)
    step = 2 * math.pi / n

    def rot_index(a: float) -> int:
        m = a / step
        if abs(m - round(m)) > 1e-6:
            raise ValueError("the point operations do not form a finite rotation group")
        return int(round(m)) % n

    m_of = {q: rot_index(a) for q, a in rots.items()}
    j_of: dict[int, int] = {}
    if mirrors:
        if len(mirrors) != n:
            raise ValueError("a point group with mirrors must have as many mirrors as rotations")
        phi0 = min(mirrors.values())
        for q, phi in mirrors.items():
            j = (phi - phi0) / (math.pi / n)
            if abs(j - round(j)) > 1e-6:
                raise ValueError("the mirror lines are not equally spaced")
            j_of[q] = int(round(j)) % n

    def table(f_rot, f_mir) -> np.ndarray:
        chi = np.zeros(n_p, dtype=complex)
        for q, m in m_of.items():
            chi[q] = f_rot(m)
        for q, j in j_of.items():
            chi[q] = f_mir(j)
        chi.real[np.abs(chi.real) < 1e-14] = 0.0
        chi.imag[np.abs(chi.imag) < 1e-14] = 0.0
        return chi

    out: dict[str, np.ndarray] = {"A1": table(lambda m: 1.0, lambda j: 1.0)}
    if mirrors:
        out["A2"] = table(lambda m: 1.0, lambda j: -1.0)
        if n % 2 == 0:
            out["B1"] = table(lambda m: (-1.0) ** m, lambda j: (-1.0) ** j)
            out["B2"] = table(lambda m: (-1.0) ** m, lambda j: -((-1.0) ** j))
        n_e = (n - 1) // 2
        for l in range(1, n_e + 1):
            out["E" if n_e == 1 else f"E{l}"] = table(
                lambda m, l=l: 2.0 * math.cos(2 * math.pi * l * m / n), lambda j: 0.0
            )
    else:
        for l in range(1, n):
            out["B" if 2 * l == n else f"m{l}"] = table(
                lambda m, l=l: complex(np.exp(2j * math.pi * l * m / n)), lambda j: 0.0
            )
    return out


def _irrep_table(group: SymmetryGroup, irrep: str) -> np.ndarray:
    irreps = point_irreps(group)
    name = "A1" if irrep == "A" else irrep
    if name not in irreps:
        raise ValueError(f"irrep {irrep!r} not in this point group; available: {sorted(irreps)}")
    return irreps[name]


def _characters(group: SymmetryGroup, kv: np.ndarray | None, irrep: str) -> tuple[np.ndarray, bool]:
    """``(χ over the elements, consistent)``: ``χ(t, p) = exp(−i k·T_t) χ_P(p)``; ``consistent`` is
    False when two pairs ``(t, p)`` with the same permutation get different characters."""
    chi_p = _irrep_table(group, irrep)

    def chi_of(t: np.ndarray | None, p: np.ndarray) -> np.ndarray:
        out = chi_p[p].astype(complex)
        if kv is not None and t is not None and group.translation_vectors is not None:
            out = out * np.exp(-1j * (group.translation_vectors[t] @ kv))
        return out

    chi = chi_of(group.translation, group.point)
    ok = True
    if len(group.duplicates):
        t, p, g = group.duplicates.T
        ok = bool(np.allclose(chi_of(t if group.translation is not None else None, p), chi[g],
                              atol=1e-10))
    return chi, ok


def point_characters(group: SymmetryGroup, irrep: str = "A1") -> np.ndarray:
    """``χ_P(p_g)`` for every element of ``group`` (n_g,), complex; ``irrep`` as in
    :func:`point_irreps` (``"A"`` is an alias of ``"A1"``).  Translation parts are ignored.

    Raises ``ValueError`` when the irrep is not constant on point operations that coincide as
    permutations (that sector is empty on this cluster).
    """
    chi = _irrep_table(group, irrep)[group.point]
    if len(group.duplicates):
        _, p, g = group.duplicates.T
        if not np.allclose(_irrep_table(group, irrep)[p], chi[g], atol=1e-10):
            raise ValueError(f"irrep {irrep} does not exist on this cluster (non-faithful action)")
    return chi


def space_characters(
    lattice: Lattice,
    group: SymmetryGroup,
    k: int | Sequence[float] | np.ndarray = 0,
    irrep: str = "A1",
) -> np.ndarray:
    """``χ(g) = exp(−i k·T_g) χ_P(p_g)``, complex (n_g,), for a space group ``T ⋊ P``.

    Requires ``R k ≡ k`` for every point operation of ``group`` (e.g. Γ; M of the square; ``k =
    π`` of the chain): otherwise use :func:`little_group` ``(lattice, k)``.  Raises
    ``ValueError`` when the sector does not exist on this cluster (two pairs ``(t, p)`` give the
    same permutation but different characters; see :func:`sector_exists`).
    """
    kv = momentum(lattice, k)
    if group.point_matrices is None or group.point is None:
        raise ValueError("the group has no point part")
    for q, R in enumerate(group.point_matrices):
        if not _k_invariant(lattice, R, kv):
            name = group.point_names[q] if group.point_names else str(q)
            raise ValueError(
                f"k = {np.round(kv, 6).tolist()} is not invariant under point operation {name}: "
                "use little_group(lattice, k)"
            )
    chi, ok = _characters(group, kv, irrep)
    if not ok:
        raise ValueError(
            f"sector (k = {np.round(kv, 6).tolist()}, {irrep}) does not exist on {lattice}: "
            "the characters differ on pairs (t, p) that act identically on this small torus"
        )
    return chi


def sector_exists(
    lattice: Lattice, group: SymmetryGroup, k: int | Sequence[float] | np.ndarray, irrep: str
) -> bool:
    """Whether :func:`space_characters` ``(lattice, group, k, irrep)`` is a well-defined
    representation of the permutations (always true unless the torus is tiny)."""
    return _characters(group, momentum(lattice, k), irrep)[1]


def spin_flip_character(parity: int) -> np.ndarray:
    """Characters ``[χ(1), χ(F)] = [1, parity]`` of the group ``{1, F}``, ``F σ = −σ``.

    ``parity = +1`` (even) or ``−1`` (odd): ``ψ(−σ) = parity · ψ(σ)``.
    """
    if parity not in (1, -1):
        raise ValueError(f"spin-flip parity must be +1 or -1, got {parity!r}")
    return np.array([1.0, float(parity)])


def is_representation(group: SymmetryGroup, characters: np.ndarray, atol: float = 1e-10) -> bool:
    """Whether ``characters`` (n_g,) obey ``χ(g h) = χ(g) χ(h)`` for all pairs (1D reps)."""
    chi = np.asarray(characters)
    table = group.product_table()
    return bool(np.allclose(chi[table], chi[:, None] * chi[None, :], atol=atol))


# ============================================================================ sectors
def symmetry_sectors(
    lattice: Lattice, point: SymmetryGroup | bool | None = None, spin_flip: bool = False
) -> Iterator[tuple[int, str | None, int | None]]:
    """Labels ``(k_index, irrep, parity)`` whose sectors together decompose the whole space.

    ``k_index`` runs over all rows of :meth:`Lattice.momenta`; ``irrep`` over the irreps of the
    little point group ``P_k`` (``None`` when ``point`` is ``False``: translations only);
    ``parity`` over ``±1`` when ``spin_flip`` else ``None``.  Irreps that do not exist on a tiny
    torus (see :func:`sector_exists`) are skipped: their sectors are empty.  ``point=None`` uses
    :func:`point_group` ``(lattice)``.  Pass each label to :func:`sector_energies` (with the same
    ``point``); the union of the sector spectra is the full spectrum.
    """
    if point is None or point is True:
        point = point_group(lattice)
    parities: list[int | None] = [1, -1] if spin_flip else [None]
    for ik in range(len(lattice.momenta())):
        if point is False:
            irreps: list[str | None] = [None]
        else:
            lg = little_group(lattice, ik, point)
            irreps = [ir for ir in point_irreps(lg) if sector_exists(lattice, lg, ik, ir)]
        for irrep in irreps:
            for p in parities:
                yield ik, irrep, p


def _perms_of(group_perms: SymmetryGroup | np.ndarray) -> np.ndarray:
    perms = group_perms.perms if isinstance(group_perms, SymmetryGroup) else np.asarray(group_perms)
    return np.asarray(perms, dtype=np.int64).reshape(len(perms), -1)


def _check_flip(hilbert: Any, spin_parity: int | None) -> None:
    if spin_parity is None:
        return
    spin_flip_character(spin_parity)
    sz = getattr(hilbert, "total_sz", None)
    if sz is not None and abs(sz) > 1e-12:
        raise ValueError(f"spin flip maps total Sz = {sz:g} out of the sector; use Sz = 0 or all Sz")


@lru_cache(maxsize=4)
def _permuted_indices(perms_key: bytes, shape: tuple[int, int], hilbert: Any) -> np.ndarray:
    """``idx[g, j]`` = index of ``U_g |state j⟩`` in ``hilbert.all_codes()``, (n_g, n_states).

    Cached (a few groups), so that the irreps and parities of one little group share the work.
    """
    perms = np.frombuffer(perms_key, dtype=np.int64).reshape(shape)
    codes = np.asarray(hilbert.all_codes(), dtype=np.int64)
    n = perms.shape[1]
    # bit i of the code moves to bit p[i]:  (gσ)_{p[i]} = σ_i
    new_codes = np.zeros((len(perms), len(codes)), dtype=np.int64)
    for i in range(n):
        bit = (codes >> np.int64(i)) & np.int64(1)
        new_codes |= bit[None, :] << perms[:, i : i + 1]
    if len(codes) == 1 << n:  # the full space: index = code
        idx = new_codes
    else:
        idx = np.minimum(np.searchsorted(codes, new_codes), len(codes) - 1)
        if not np.all(codes[idx] == new_codes):
            raise ValueError("the group does not map the Hilbert-space sector onto itself")
    idx.setflags(write=False)
    return idx


def _action_indices(
    perms: np.ndarray, hilbert: Any, spin_parity: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``idx[e, j]`` = index of ``U_e |state j⟩`` for every element ``e`` of G (then F·G when a
    spin parity is given), shape (n_e, n_states), and the extra character factor per element."""
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    try:
        idx = _permuted_indices(perms.tobytes(), perms.shape, hilbert)
    except TypeError:  # an unhashable Hilbert-space object: no caching
        idx = _permuted_indices.__wrapped__(perms.tobytes(), perms.shape, hilbert)
    factors = np.ones(len(perms))
    if spin_parity is not None:
        codes = np.asarray(hilbert.all_codes(), dtype=np.int64)
        flipped = codes ^ np.int64((1 << perms.shape[1]) - 1)
        fidx = np.minimum(np.searchsorted(codes, flipped), len(codes) - 1)
        if not np.all(codes[fidx] == flipped):
            raise ValueError("the spin flip does not map the Hilbert-space sector onto itself")
        idx = np.concatenate([idx, fidx[idx]], axis=0)
        factors = np.concatenate([factors, float(spin_parity) * np.ones(len(perms))])
    return idx, factors


def projector_dense(
    group_perms: SymmetryGroup | np.ndarray,
    characters: np.ndarray,
    hilbert: Any,
    spin_parity: int | None = None,
) -> np.ndarray:
    """Dense ``P = (d/|G|) Σ_g χ(g)* U_g`` (× ``(1 + pF)/2`` when ``spin_parity = p`` is given),
    complex (n_states, n_states), rows/columns in ``hilbert.all_codes()`` order; ``d = χ(e)``.

    ``U_g |σ⟩ = |gσ⟩`` with ``(gσ)_{perms[g, i]} = σ_i``.  For small spaces (tests, N ≲ 12).
    """
    perms = _perms_of(group_perms)
    chi = np.asarray(characters, dtype=complex)
    _check_flip(hilbert, spin_parity)
    idx, factors = _action_indices(perms, hilbert, spin_parity)
    if chi.shape != (len(perms),):
        raise ValueError(f"characters must have shape ({len(perms)},), got {chi.shape}")
    d = _degree(perms, chi)
    chi_all = np.concatenate([chi, chi]) if spin_parity is not None else chi
    coef = np.conj(chi_all) * factors * d / len(factors)  # (d/|G'|) χ(e)*, G' = G (× {1, F})
    n_states = idx.shape[1]
    P = np.zeros((n_states, n_states), dtype=complex)
    cols = np.broadcast_to(np.arange(n_states), idx.shape)
    np.add.at(P, (idx, cols), np.broadcast_to(coef[:, None], idx.shape))
    return P


def _degree(perms: np.ndarray, chi: np.ndarray) -> float:
    """Irrep dimension ``d = χ(e)`` (the identity permutation must be in the group)."""
    ident = np.flatnonzero(np.all(perms == np.arange(perms.shape[1]), axis=1))
    if len(ident) != 1:
        raise ValueError("the group must contain the identity exactly once")
    d = chi[ident[0]]
    if abs(d.imag) > 1e-12 or abs(d.real - round(d.real)) > 1e-12 or d.real < 1:
        raise ValueError(f"χ(identity) must be a positive integer (the irrep dimension), got {d}")
    return float(round(d.real))


def sector_basis(
    group_perms: SymmetryGroup | np.ndarray,
    characters: np.ndarray,
    hilbert: Any,
    spin_parity: int | None = None,
    tol: float = 1e-10,
) -> sp.csr_matrix:
    """Orthonormal basis of ``range(P)`` (``P`` as in :func:`projector_dense`), sparse complex
    (n_states, n_sector), built orbit by orbit without forming ``P``.

    1D irreps: for each orbit representative ``r`` the column ``P|r⟩`` (kept when its norm exceeds
    ``tol``; distinct orbits give orthogonal columns).  Higher irreps: the eigenvectors of ``P``
    restricted to each orbit with eigenvalue 1 (an orthonormal basis of ``P Ω`` for a few
    random columns ``Ω``: the rank is at most ``d²`` per orbit).
    """
    perms = _perms_of(group_perms)
    chi = np.asarray(characters, dtype=complex)
    if chi.shape != (len(perms),):
        raise ValueError(f"characters must have shape ({len(perms)},), got {chi.shape}")
    _check_flip(hilbert, spin_parity)
    d = _degree(perms, chi)
    idx, factors = _action_indices(perms, hilbert, spin_parity)
    n_e, n_states = idx.shape
    chi_all = np.concatenate([chi, chi]) if spin_parity is not None else chi
    coef = np.conj(chi_all) * factors * d / n_e  # (d/|G'|) χ(e)* over G' = G (× {1, F})
    rep = idx.min(axis=0)  # orbit label: the smallest index in the orbit
    if d == 1:
        reps = np.flatnonzero(rep == np.arange(n_states))
        rows = idx[:, reps].ravel()
        cols = np.broadcast_to(np.arange(len(reps)), (n_e, len(reps))).ravel()
        data = np.broadcast_to(coef[:, None], (n_e, len(reps))).ravel()
        B = sp.coo_matrix((data, (rows, cols)), shape=(n_states, len(reps))).tocsc()
        B.sum_duplicates()
        norms = np.sqrt(np.asarray(abs(B).power(2).sum(axis=0)).ravel())
        keep = np.flatnonzero(norms > tol)
        B = B[:, keep] @ sp.diags(1.0 / norms[keep])
        return B.tocsr()
    rows_l, cols_l, data_l = [], [], []
    n_col = 0
    order = np.argsort(rep, kind="stable")
    bounds = np.flatnonzero(np.diff(rep[order])) + 1
    loc = np.empty(n_states, dtype=np.int64)  # position of each state inside its orbit
    rng = np.random.default_rng(0)
    for members in np.split(order, bounds):
        size = len(members)
        loc[members] = np.arange(size)
        # P restricted to the orbit: column a = P|members[a]⟩ = Σ_e coef_e |idx[e, members[a]]⟩
        Pl = np.zeros((size, size), dtype=complex)
        rows = loc[idx[:, members]]
        cols = np.broadcast_to(np.arange(size), rows.shape)
        np.add.at(Pl, (rows, cols), np.broadcast_to(coef[:, None], rows.shape))
        # range(P) on the orbit (rank r <= d^2): orthonormalize P Ω for q = d^2 + 4 random
        # columns Ω.  P Ω = V (V† Ω) with V† Ω an r x q Gaussian: its singular values are O(1)
        # (about √q − √r), the rest are rounding errors, so the cut at 1e-6 is safe.
        q = min(size, int(d * d) + 4)
        omega = rng.standard_normal((size, q)) + 1j * rng.standard_normal((size, q))
        u, sv, _ = np.linalg.svd(Pl @ omega, full_matrices=False)
        vecs = u[:, sv > 1e-6]
        if vecs.shape[1] == 0:
            continue
        if not np.allclose(Pl @ vecs, vecs, atol=1e-8):  # pragma: no cover - sanity check
            raise RuntimeError("sector_basis: P restricted to an orbit is not a projector")
        r, c = np.nonzero(np.abs(vecs) > 1e-14)
        rows_l.append(members[r])
        cols_l.append(n_col + c)
        data_l.append(vecs[r, c])
        n_col += vecs.shape[1]
    if n_col == 0:
        return sp.csr_matrix((n_states, 0), dtype=complex)
    B = sp.coo_matrix(
        (np.concatenate(data_l), (np.concatenate(rows_l), np.concatenate(cols_l))),
        shape=(n_states, n_col),
    )
    return B.tocsr()


def sector_hamiltonian(
    operator: Any, basis: sp.spmatrix, hilbert: Any, check: bool = True, atol: float = 1e-8
) -> np.ndarray:
    """Dense ``B† H B`` (n_sector, n_sector) for an orthonormal sector basis ``B``.

    With ``check`` the symmetry of ``H`` is verified: ``‖H B − B (B† H B)‖_F ≤ atol · max(1,
    ‖H‖_1)`` (``ValueError`` otherwise: the operator does not commute with the group).
    """
    H = operator.to_sparse(hilbert) if not sp.issparse(operator) else operator
    HB = H @ basis
    Hs = basis.conj().T @ HB
    Hs = Hs.toarray() if sp.issparse(Hs) else np.asarray(Hs)
    if check and basis.shape[1]:
        resid = HB - basis @ sp.csr_matrix(Hs)
        r = float(np.sqrt(abs(resid).power(2).sum())) if sp.issparse(resid) else float(
            np.linalg.norm(resid))
        scale = max(1.0, float(abs(H).sum(axis=0).max()))
        if r > atol * scale:
            raise ValueError(
                f"the operator does not commute with the symmetry group (residual {r:.3g})"
            )
    return (Hs + Hs.conj().T) / 2


def sector_energies(
    operator: Any,
    lattice: Lattice,
    hilbert: Any,
    k: int | Sequence[float] | np.ndarray = 0,
    irrep: str | None = None,
    parity: int | None = None,
    n_levels: int | None = None,
    point: SymmetryGroup | None = None,
    check: bool = True,
) -> np.ndarray:
    """Lowest ``n_levels`` eigenvalues (all when None, ascending) of ``operator`` in a sector.

    Sector: momentum ``k`` (index into :meth:`Lattice.momenta` or a vector); ``irrep`` ``None``
    uses the translations only, a name (see :func:`point_irreps`) uses the little group
    :func:`little_group` ``(lattice, k, point)`` with characters :func:`space_characters`;
    ``parity`` ``±1`` adds the spin flip.  For a ``d``-dimensional irrep the sector is the
    isotypic component, where each level of that symmetry appears ``d`` times (its degeneracy
    within momentum ``k``), so that the sectors of :func:`symmetry_sectors` add up to the full
    spectrum.  ``operator`` is anything with ``to_sparse(hilbert)`` (a PauliSum) or a scipy
    sparse matrix on ``hilbert``.  Dense diagonalization of ``B† H B``: fine up to a few
    thousand states per sector.
    """
    if irrep is None:
        group = translation_group(lattice)
        chi = momentum_characters(lattice, group, k)
    else:
        group = little_group(lattice, k, point)
        chi = space_characters(lattice, group, k, irrep)
    B = sector_basis(group, chi, hilbert, spin_parity=parity)
    if B.shape[1] == 0:
        return np.zeros(0)
    Hs = sector_hamiltonian(operator, B, hilbert, check=check)
    if np.all(np.abs(Hs.imag) < 1e-14):  # real characters: real symmetric, faster
        Hs = Hs.real
    w = np.linalg.eigvalsh(Hs)
    return w if n_levels is None else w[:n_levels]
