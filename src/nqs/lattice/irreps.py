"""Characters of the lattice symmetry groups: momenta, point-group irreps, space-group sectors.

* :func:`momentum_characters` — ``χ(g) = exp(−i k·T_g)`` of the translations.
* :func:`point_irreps`, :func:`point_characters` — irreps of the point group (``A1, A2, B1, B2, E, ...``).
* :func:`space_characters`, :func:`sector_exists` — ``χ(g) = exp(−i k·T_t) χ_P(p)`` of a little group.
* :func:`spin_flip_character`, :func:`is_representation` — the group ``{1, F}``; a check of ``χ(gh) = χ(g)χ(h)``.
* :func:`symmetry_sectors` — labels ``(k, irrep, parity)`` whose sectors decompose the whole space.

A character ``χ`` labels the sector ``U_g ψ = χ(g) ψ``, i.e. ``ψ(gσ) = χ(g)* ψ(σ)``; a sector-``k``
state has ``ψ(σ shifted by +T) = e^{+ik·T} ψ(σ)``.  The sign conventions and the irrep labels are
derived in ``docs/symmetry.md``.  The symmetry-sector exact diagonalization is :mod:`nqs.exact.sectors`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from .groups import SymmetryGroup, _k_invariant, little_group, momentum, point_group
from .lattice import Lattice

__all__ = [
    "momentum_characters",
    "point_irreps",
    "point_characters",
    "space_characters",
    "sector_exists",
    "spin_flip_character",
    "is_representation",
    "symmetry_sectors",
]

_ANGLE_TOL = 1e-8


# ============================================================================ characters
def momentum_characters(lattice: Lattice, group: SymmetryGroup, k: int | Sequence[float] | np.ndarray) -> np.ndarray:
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

    See ``docs/symmetry.md`` for the labels (dihedral ``A1, A2, B1, B2, E, E1, E2, ...``, cyclic
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
        ok = bool(np.allclose(chi_of(t if group.translation is not None else None, p), chi[g], atol=1e-10))
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


def sector_exists(lattice: Lattice, group: SymmetryGroup, k: int | Sequence[float] | np.ndarray, irrep: str) -> bool:
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
    :func:`point_group` ``(lattice)``.  Pass each label to :func:`nqs.exact.sectors.sector_energies` (with the same
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
