"""Symmetry-sector exact diagonalization: the spectrum of H block by block.

* :func:`projector_dense` — the dense projector ``P = (d/|G|) Σ_g χ(g)* U_g`` (× ``(1 + pF)/2``).
* :func:`sector_basis` — an orthonormal basis of ``range(P)``, built orbit by orbit without forming ``P``.
* :func:`sector_hamiltonian` — ``B† H B``, with a check that ``H`` commutes with the group.
* :func:`sector_energies` — the lowest levels of ``H`` in a sector (momentum, point-group irrep, spin parity).

The sectors of :func:`nqs.lattice.symmetry_sectors` (the isotypic components of the little groups
``G_k = T ⋊ P_k`` over all allowed ``k``) decompose the whole space, so the union of their spectra, each
level with its multiplicity, is the full spectrum.  Groups and characters come from :mod:`nqs.lattice`;
the conventions (``U_g|σ⟩ = |gσ⟩``, projectors, the spin flip) are derived in ``docs/symmetry.md``.

Hilbert spaces are used through ``n_sites``, ``total_sz``, ``all_codes()`` (sorted codes, bit ``i`` set
when site ``i`` is ↑) and ``codes_to_states`` (see :mod:`nqs.hilbert.spin`); operators through
``to_sparse(hilbert)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..lattice import (
    Lattice,
    SymmetryGroup,
    little_group,
    momentum_characters,
    space_characters,
    spin_flip_character,
    translation_group,
)

__all__ = ["projector_dense", "sector_basis", "sector_hamiltonian", "sector_energies"]


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


def _action_indices(perms: np.ndarray, hilbert: Any, spin_parity: int | None) -> tuple[np.ndarray, np.ndarray]:
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
        r = float(np.sqrt(abs(resid).power(2).sum())) if sp.issparse(resid) else float(np.linalg.norm(resid))
        scale = max(1.0, float(abs(H).sum(axis=0).max()))
        if r > atol * scale:
            raise ValueError(f"the operator does not commute with the symmetry group (residual {r:.3g})")
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
    uses the translations only, a name (see :func:`~nqs.lattice.point_irreps`) uses the little group
    :func:`~nqs.lattice.little_group` ``(lattice, k, point)`` with characters :func:`~nqs.lattice.space_characters`;
    ``parity`` ``±1`` adds the spin flip.  For a ``d``-dimensional irrep the sector is the
    isotypic component, where each level of that symmetry appears ``d`` times (its degeneracy
    within momentum ``k``), so that the sectors of :func:`~nqs.lattice.symmetry_sectors` add up to the full
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
