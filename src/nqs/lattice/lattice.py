"""Bravais lattices with a basis, finite clusters on a torus, bonds by distance shell, symmetries.

Supported kinds (primitive vectors ``a_i``, basis positions; nearest-neighbour distance)
-----------------------------------------------------------------------------------------
* ``chain``:      a1 = (1,);                             basis (0,);                  nn = 1
* ``square``:     a1 = (1, 0), a2 = (0, 1);              basis (0, 0);                nn = 1
* ``triangular``: a1 = (1, 0), a2 = (1/2, √3/2);         basis (0, 0);                nn = 1
* ``honeycomb``:  a1, a2 as triangular;  basis (0, 0), (a1 + a2)/3 = (1/2, √3/6);    nn = 1/√3
* ``kagome``:     a1, a2 as triangular;  basis (0, 0), a1/2, a2/2;                   nn = 1/2

Cluster and site order
----------------------
A cluster of ``size = (L1[, L2])`` unit cells holds the cells ``c = (c1[, c2])`` with
``0 <= c_i < L_i``.  Site ``i`` sits at ``r_i = Σ_k c_k a_k + basis[b]`` and its index is

    i = cell_index * n_basis + b,    cell_index = c1 * L2 + c2  (2D, last direction fastest),
                                     cell_index = c1           (chain).

A periodic direction ``k`` identifies ``r ~ r + L_k a_k`` (the torus spanned by ``L1 a1`` and
``L2 a2``); an open direction has no images.

Distance shells and bonds
-------------------------
Shell ``s`` (1 = nearest neighbours, 2 = next-nearest, ...) is the ``s``-th smallest nonzero
distance ``d_s`` between sites of the *infinite* lattice (found on a large enough open patch), so
that ``d_2`` is the true next-nearest distance even on a tiny cluster (√2 square, √3 triangular,
1 honeycomb, √3/2 kagome, 2 chain).  A pair ``(i, j)``, ``i != j``, is a shell-``s`` bond when
*any* periodic image of ``j`` lies at distance ``d_s`` (tolerance 1e-8) from ``i``.  Each pair is
listed once per shell; on small tori a pair can belong to several shells (e.g. square 2x2).

Translations and momenta
------------------------
Translations by whole unit cells ``t = (t1[, t2])`` exist along periodic directions only (an open
direction contributes only ``t_k = 0``); they are ordered like the cells (last direction fastest),
row 0 is the identity.  The allowed momenta ``k = Σ_i (m_i / L_i) b_i`` (``a_i·b_j = 2π δ_ij``)
use the same ordering of ``m = (m1[, m2])``.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property

import numpy as np

#: Distance tolerance used to group distances into shells and to match bonds.
DISTANCE_TOL = 1e-8

_SQ3 = math.sqrt(3.0)
_TRI_A = ((1.0, 0.0), (0.5, _SQ3 / 2.0))

#: kind -> (primitive vectors a_i as rows, basis positions as rows)
_GEOMETRY: dict[str, tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]] = {
    "chain": (((1.0,),), ((0.0,),)),
    "square": (((1.0, 0.0), (0.0, 1.0)), ((0.0, 0.0),)),
    "triangular": (_TRI_A, ((0.0, 0.0),)),
    "honeycomb": (_TRI_A, ((0.0, 0.0), (0.5, _SQ3 / 6.0))),
    "kagome": (_TRI_A, ((0.0, 0.0), (0.5, 0.0), (0.25, _SQ3 / 4.0))),
}

#: The valid values of ``kind``.
LATTICE_KINDS: tuple[str, ...] = tuple(_GEOMETRY)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _geometry(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(A, basis)``: primitive vectors as rows of ``A`` (d, d), basis positions (n_basis, d)."""
    prim, basis = _GEOMETRY[kind]
    return np.array(prim, dtype=float), np.array(basis, dtype=float)


def _reciprocal(A: np.ndarray) -> np.ndarray:
    """Rows ``b_j`` with ``a_i · b_j = 2π δ_ij``, i.e. ``B = 2π (A^{-1})^T``."""
    return 2.0 * np.pi * np.linalg.inv(A).T


@cache
def _infinite_shell(kind: str, shell: int) -> tuple[float, np.ndarray]:
    """Distance ``d_shell`` of the infinite lattice and its neighbour table.

    Returns ``(d, table)`` where ``table`` is an int array of shape (n_entries, 2 + d) with rows
    ``(b, b', Δc_1[, Δc_2])``: the site of basis ``b'`` in cell ``c + Δc`` is at distance ``d``
    from the site of basis ``b`` in cell ``c``.

    Completeness: with basis coordinates in [0, 1) (in units of ``a_i``), a site outside the patch
    ``|Δc_i| <= R`` has some lattice coordinate ``|x_i| > R`` and hence distance
    ``> R · 2π / |b_i|``; only distances below ``R · min_i 2π/|b_i|`` are trusted, and ``R`` grows
    until ``shell`` shells are trusted.
    """
    A, basis = _geometry(kind)
    dim = A.shape[0]
    height = float(np.min(2.0 * np.pi / np.linalg.norm(_reciprocal(A), axis=1)))
    radius = 2
    while True:
        rng = np.arange(-radius, radius + 1)
        dcells = np.array(list(itertools.product(rng, repeat=dim)), dtype=np.int64)  # (M, d)
        # vec[m, b, b'] = Δc_m · A + basis[b'] - basis[b]
        vec = (dcells @ A)[:, None, None, :] + basis[None, None, :, :] - basis[None, :, None, :]
        dist = np.linalg.norm(vec, axis=-1)  # (M, nb, nb)
        trusted = radius * height - DISTANCE_TOL
        vals = np.sort(dist[(dist > DISTANCE_TOL) & (dist < trusted)])
        if vals.size:
            starts = np.concatenate(([0], np.flatnonzero(np.diff(vals) > DISTANCE_TOL) + 1))
            shells = vals[starts]
        else:
            shells = vals
        if shells.size >= shell:
            d = float(shells[shell - 1])
            m, b, bp = np.nonzero(np.abs(dist - d) < DISTANCE_TOL)
            table = np.column_stack([b, bp, dcells[m]]).astype(np.int64)
            return d, _readonly(table)
        radius *= 2


def _normalize_kind(kind: object) -> str:
    valid = ", ".join(LATTICE_KINDS)
    if not isinstance(kind, str):
        raise ValueError(f"lattice.kind must be a string (one of: {valid}), got {kind!r}")
    k = kind.strip().lower()
    if k not in _GEOMETRY:
        raise ValueError(f"unknown lattice.kind {kind!r}; valid kinds: {valid}")
    return k


def _shown(value: object) -> str:
    """User-facing rendering of a size/pbc value for error messages (lists as ``[..]``)."""
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        return repr([v.item() if isinstance(v, np.generic) else v for v in value])
    return repr(value)


def _normalize_size(kind: str, size: object, dim: int) -> tuple[int, ...]:
    if isinstance(size, int | np.integer) and not isinstance(size, bool | np.bool_):
        if dim != 1:
            raise ValueError(f"lattice.size must have {dim} entries for a {kind} lattice, got {_shown(size)}")
        entries: list[object] = [size]
    elif isinstance(size, Sequence | np.ndarray) and not isinstance(size, str):
        entries = list(size)
        if len(entries) != dim:
            raise ValueError(f"lattice.size must have {dim} entries for a {kind} lattice, got {_shown(size)}")
    else:
        raise ValueError(f"lattice.size must be a list of {dim} positive integers for a {kind} lattice, got {size!r}")
    out = []
    for e in entries:
        if isinstance(e, bool | np.bool_):
            raise ValueError(f"lattice.size entries must be integers, got {_shown(size)}")
        try:
            n = operator.index(e)
        except TypeError:
            raise ValueError(f"lattice.size entries must be integers, got {_shown(size)}") from None
        if n < 1:
            raise ValueError(f"lattice.size entries must be positive, got {_shown(size)}")
        out.append(int(n))
    return tuple(out)


def _normalize_pbc(kind: str, pbc: object, dim: int) -> tuple[bool, ...]:
    if isinstance(pbc, bool | np.bool_):
        return (bool(pbc),) * dim
    if isinstance(pbc, Sequence | np.ndarray) and not isinstance(pbc, str):
        entries = list(pbc)
        if len(entries) != dim:
            raise ValueError(
                f"lattice.pbc must be true/false or have {dim} entries (one per direction) "
                f"for a {kind} lattice, got {_shown(pbc)}"
            )
        if not all(isinstance(e, bool | np.bool_) for e in entries):
            raise ValueError(f"lattice.pbc entries must be true/false, got {_shown(pbc)}")
        return tuple(bool(e) for e in entries)
    raise ValueError(f"lattice.pbc must be true/false or a list of {dim} booleans, got {pbc!r}")


@dataclass(frozen=True, repr=False)
class Lattice:
    """A finite cluster of a Bravais lattice with basis (see the module docstring for conventions).

    Fields ``kind``, ``size`` and ``pbc`` are normalized on construction (``size`` may be an int
    for a chain; ``pbc`` may be one bool).  All arrays returned are read-only and cached.
    Prefer :func:`make_lattice` to build one.
    """

    kind: str
    size: tuple[int, ...]
    pbc: tuple[bool, ...] = True  # type: ignore[assignment]
    _cache: dict = field(default_factory=dict, init=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        kind = _normalize_kind(self.kind)
        dim = len(_GEOMETRY[kind][0])
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "size", _normalize_size(kind, self.size, dim))
        object.__setattr__(self, "pbc", _normalize_pbc(kind, self.pbc, dim))

    # ------------------------------------------------------------------ geometry
    @property
    def ndim(self) -> int:
        """Spatial dimension ``d``."""
        return len(self.size)

    @property
    def n_basis(self) -> int:
        """Number of sites per unit cell."""
        return len(_GEOMETRY[self.kind][1])

    @property
    def n_cells(self) -> int:
        """Number of unit cells ``Π_i L_i``."""
        return math.prod(self.size)

    @property
    def n_sites(self) -> int:
        """Number of sites ``n_cells * n_basis``."""
        return self.n_cells * self.n_basis

    @cached_property
    def primitive_vectors(self) -> np.ndarray:
        """Primitive vectors ``a_i`` as rows, shape (d, d)."""
        return _readonly(_geometry(self.kind)[0])

    @cached_property
    def basis_vectors(self) -> np.ndarray:
        """Basis positions inside the unit cell, shape (n_basis, d)."""
        return _readonly(_geometry(self.kind)[1])

    @cached_property
    def cells(self) -> np.ndarray:
        """Unit-cell coordinates ``c`` of every site, int, shape (n_sites, d)."""
        grid = np.array(list(itertools.product(*(range(L) for L in self.size))), dtype=np.int64)
        return _readonly(np.repeat(grid, self.n_basis, axis=0))

    @cached_property
    def basis_index(self) -> np.ndarray:
        """Basis index ``b`` of every site, int, shape (n_sites,)."""
        return _readonly(np.tile(np.arange(self.n_basis, dtype=np.int64), self.n_cells))

    @cached_property
    def positions(self) -> np.ndarray:
        """Site positions ``r_i = c_i · A + basis[b_i]``, float, shape (n_sites, d)."""
        pos = self.cells @ self.primitive_vectors + self.basis_vectors[self.basis_index]
        return _readonly(pos)

    def site_index(self, cell: Sequence[int], b: int = 0) -> int:
        """Index of the site of basis ``b`` in ``cell``; periodic coordinates are taken mod ``L``.

        Raises ``IndexError`` for a coordinate outside an open direction or a bad ``b``.
        """
        if len(cell) != self.ndim:
            raise IndexError(f"cell must have {self.ndim} coordinates, got {list(cell)}")
        if not 0 <= b < self.n_basis:
            raise IndexError(f"basis index {b} out of range for {self.kind} ({self.n_basis})")
        idx = 0
        for c, L, p in zip(cell, self.size, self.pbc, strict=True):
            if p:
                c %= L
            elif not 0 <= c < L:
                raise IndexError(f"cell {list(cell)} is outside the open cluster {self.size}")
            idx = idx * L + int(c)
        return idx * self.n_basis + b

    # ------------------------------------------------------------------ distances
    def _image_range(self, radius: float) -> list[range]:
        """Per direction, the shifts ``n_k`` of ``L_k a_k`` that can bring a displacement between
        cluster sites within ``radius``: ``|n_k| <= radius |b_k| / (2π L_k) + 1``; open: ``{0}``.
        """
        bnorm = np.linalg.norm(self.reciprocal_vectors(), axis=1)
        out = []
        for L, p, bk in zip(self.size, self.pbc, bnorm, strict=True):
            m = int(math.floor(radius * bk / (2.0 * np.pi * L) + 1.0)) if p else 0
            out.append(range(-m, m + 1))
        return out

    def displacement(self, i: int, j: int) -> np.ndarray:
        """Minimum-image displacement ``r_j + T - r_i`` over superlattice vectors ``T``, shape (d,).

        ``T = Σ_k n_k L_k a_k`` over periodic directions; all ``n_k`` that can matter are tried
        (this includes ``n_k ∈ {-1, 0, 1}`` and is exact also on skewed, elongated tori).
        """
        d0 = self.positions[j] - self.positions[i]
        super_vecs = np.array(self.size)[:, None] * self.primitive_vectors
        best, best_norm = d0, float(np.linalg.norm(d0))
        for n in itertools.product(*self._image_range(best_norm + DISTANCE_TOL)):
            v = d0 + np.asarray(n, dtype=float) @ super_vecs
            nv = float(np.linalg.norm(v))
            if nv < best_norm - DISTANCE_TOL:
                best, best_norm = v, nv
        return best

    def distance(self, i: int, j: int) -> float:
        """Minimum-image distance ``|displacement(i, j)|`` between sites ``i`` and ``j``."""
        return float(np.linalg.norm(self.displacement(i, j)))

    def distance_matrix(self) -> np.ndarray:
        """Minimum-image distances between all pairs of sites, shape (n_sites, n_sites)."""
        if "distance_matrix" not in self._cache:
            pos = self.positions
            d0 = pos[None, :, :] - pos[:, None, :]
            best = np.linalg.norm(d0, axis=-1)
            super_vecs = np.array(self.size)[:, None] * self.primitive_vectors
            for n in itertools.product(*self._image_range(float(best.max()) + DISTANCE_TOL)):
                if any(n):
                    shift = np.asarray(n, dtype=float) @ super_vecs
                    np.minimum(best, np.linalg.norm(d0 + shift, axis=-1), out=best)
            self._cache["distance_matrix"] = _readonly(best)
        return self._cache["distance_matrix"]

    # ------------------------------------------------------------------ bonds
    @staticmethod
    def _check_shell(shell: int) -> int:
        if isinstance(shell, bool) or not isinstance(shell, int | np.integer) or shell < 1:
            raise ValueError(f"bond shell must be a positive integer, got {shell!r}")
        return int(shell)

    def shell_distance(self, shell: int = 1) -> float:
        """Distance ``d_shell`` of the ``shell``-th neighbour shell of the infinite lattice."""
        return _infinite_shell(self.kind, self._check_shell(shell))[0]

    def bonds(self, shell: int = 1) -> np.ndarray:
        """Pairs of sites at the ``shell``-th neighbour distance, int, shape (n_bonds, 2).

        Rows ``(i, j)`` with ``i < j``, unique, sorted lexicographically.  ``(i, j)`` is listed
        when some periodic image of ``j`` is at distance ``shell_distance(shell)`` from ``i``.
        """
        shell = self._check_shell(shell)
        key = ("bonds", shell)
        if key not in self._cache:
            _, table = _infinite_shell(self.kind, shell)
            L = np.array(self.size, dtype=np.int64)
            per = np.array(self.pbc, dtype=bool)
            grid = self.cells[:: self.n_basis]  # (n_cells, d), cell order
            rows = []
            for b, bp, *dc in table:
                target = grid + np.asarray(dc, dtype=np.int64)
                inside = np.all(per | ((target >= 0) & (target < L)), axis=1)
                target = np.mod(target, L)[inside]
                cell_j = np.ravel_multi_index(tuple(target.T), self.size)
                i = np.flatnonzero(inside) * self.n_basis + b
                j = cell_j * self.n_basis + bp
                rows.append(np.column_stack([i, j]))
            pairs = np.concatenate(rows) if rows else np.zeros((0, 2), dtype=np.int64)
            pairs = pairs[pairs[:, 0] != pairs[:, 1]]
            pairs = np.sort(pairs, axis=1)
            pairs = np.unique(pairs, axis=0).reshape(-1, 2).astype(np.int64)
            self._cache[key] = _readonly(pairs)
        return self._cache[key]

    def neighbours(self, i: int, shell: int = 1) -> np.ndarray:
        """Sorted indices of the shell-``shell`` neighbours of site ``i``, shape (z_i,)."""
        b = self.bonds(shell)
        return np.sort(np.concatenate([b[b[:, 0] == i, 1], b[b[:, 1] == i, 0]]))

    # ------------------------------------------------------------------ sublattices
    @cached_property
    def _colouring(self) -> tuple[bool, np.ndarray]:
        """Breadth-first two-colouring of the nearest-neighbour graph (site 0 of each component
        gets colour 0); ``(False, basis_index)`` when an odd cycle is found."""
        n = self.n_sites
        adj: list[list[int]] = [[] for _ in range(n)]
        for i, j in self.bonds(1):
            adj[i].append(int(j))
            adj[j].append(int(i))
        colour = np.full(n, -1, dtype=np.int64)
        for start in range(n):
            if colour[start] >= 0:
                continue
            colour[start] = 0
            queue = deque([start])
            while queue:
                u = queue.popleft()
                for v in adj[u]:
                    if colour[v] < 0:
                        colour[v] = 1 - colour[u]
                        queue.append(v)
                    elif colour[v] == colour[u]:
                        return False, self.basis_index
        return True, _readonly(colour)

    @property
    def is_bipartite(self) -> bool:
        """Whether the nearest-neighbour graph of the cluster (boundaries included) is bipartite."""
        return self._colouring[0]

    @property
    def sublattice(self) -> np.ndarray:
        """Per-site label, int, shape (n_sites,): the 0/1 two-colouring of the nearest-neighbour
        graph when it is bipartite (site 0 has colour 0), else the basis index."""
        return self._colouring[1]

    # ------------------------------------------------------------------ symmetries
    def _shift_grid(self) -> np.ndarray:
        """Shifts ``t`` (periodic directions ``0..L-1``, open ``0``), last direction fastest."""
        ranges = [range(L) if p else range(1) for L, p in zip(self.size, self.pbc, strict=True)]
        return np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, self.ndim)

    def translations(self) -> np.ndarray:
        """Permutation table of the lattice translations, int, shape (n_translations, n_sites).

        ``n_translations = Π_{periodic k} L_k`` (= ``n_cells`` when fully periodic).  Row ``t``
        maps site ``i`` (cell ``c``, basis ``b``) to ``perm[t, i]`` = site (cell
        ``(c + t) mod L``, basis ``b``).  Rows are ordered like the cells; row 0 is the identity.
        """
        if "translations" not in self._cache:
            grid = self.cells[:: self.n_basis]
            L = np.array(self.size, dtype=np.int64)
            shifts = self._shift_grid()
            moved = np.mod(grid[None, :, :] + shifts[:, None, :], L)  # (T, n_cells, d)
            cell_idx = np.ravel_multi_index(tuple(np.moveaxis(moved, -1, 0)), self.size)
            perm = cell_idx[:, :, None] * self.n_basis + np.arange(self.n_basis)
            self._cache["translations"] = _readonly(perm.reshape(len(shifts), self.n_sites))
        return self._cache["translations"]

    def reciprocal_vectors(self) -> np.ndarray:
        """Reciprocal vectors ``b_j`` as rows with ``a_i · b_j = 2π δ_ij``, shape (d, d)."""
        return _reciprocal(self.primitive_vectors)

    def momenta(self) -> np.ndarray:
        """Allowed momenta ``k = Σ_i (m_i / L_i) b_i``, float, shape (n_translations, d).

        ``m_i = 0..L_i-1`` along periodic directions, ``0`` along open ones, ordered like the rows
        of :meth:`translations`; ``exp(i k·T_t)`` are the characters of translation ``t``.
        """
        m = self._shift_grid().astype(float) / np.array(self.size, dtype=float)
        return m @ self.reciprocal_vectors()

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        """Short description, e.g. ``"square 4x4, periodic, 16 sites"``."""
        dims = "x".join(str(L) for L in self.size)
        if all(self.pbc):
            bc = "periodic"
        elif not any(self.pbc):
            bc = "open"
        else:
            bc = " x ".join("periodic" if p else "open" for p in self.pbc)
        return f"{self.kind} {dims}, {bc}, {self.n_sites} sites"

    def __repr__(self) -> str:
        return f"Lattice({self.describe()})"

    __str__ = describe


def make_lattice(kind: str, size: int | Sequence[int], pbc: bool | Sequence[bool] = True) -> Lattice:
    """Build a :class:`Lattice`; raises ``ValueError`` with a one-line message on bad input.

    ``kind`` is one of :data:`LATTICE_KINDS`; ``size`` lists unit cells per direction (an int is
    accepted for a chain); ``pbc`` is one bool or one per direction.
    """
    return Lattice(kind=kind, size=size, pbc=pbc)  # type: ignore[arg-type]
