"""Lattice symmetry groups as site permutations: translations, point group, space group, little groups.

* :class:`SymmetryGroup` — a finite group of site permutations with its translation and point parts.
* :func:`translation_group`, :func:`point_group`, :func:`space_group` — the groups a cluster admits.
* :func:`momentum`, :func:`little_group` — allowed momenta and the little group ``G_k = T ⋊ P_k``.

An element ``g`` carries site ``i`` to site ``perms[g, i]`` and acts on configurations as
``(gσ)_{perms[g, i]} = σ_i``; the space-group elements are ``g = (t, p)``, ``r ↦ T_t + c + R_p (r − c)``.
The conventions (composition, the point operations and their centre, small tori) are derived in
``docs/symmetry.md``.  Characters and irreps live in :mod:`nqs.lattice.irreps`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .lattice import Lattice

__all__ = [
    "SymmetryGroup",
    "translation_group",
    "point_group",
    "space_group",
    "little_group",
    "momentum",
]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# ============================================================================ the group object
@dataclass(frozen=True, eq=False)
class SymmetryGroup:
    """A finite group of site permutations (convention: ``docs/symmetry.md``).

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
        :func:`~nqs.lattice.irreps.space_characters` and :func:`~nqs.lattice.irreps.point_characters` check.
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
            table = np.array([[idx[row.tobytes()] for row in prods[g]] for g in range(len(self))], dtype=np.int64)
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
