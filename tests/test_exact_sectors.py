"""Tests for nqs.exact.sectors: projectors, sector bases and symmetry-sector ED against full ED.

Conventions under test (``docs/symmetry.md``): ``(gσ)_{perms[g, i]} = σ_i``; a sector
``χ`` is ``U_g ψ = χ(g) ψ`` ⇔ ``ψ(gσ) = χ(g)* ψ(σ)``; momentum characters ``χ(T) = e^{−ik·T}``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nqs.exact import lowest_energies
from nqs.exact.sectors import projector_dense, sector_basis, sector_energies, sector_hamiltonian
from nqs.hamiltonians import heisenberg, j1j2
from nqs.hilbert import SpinHilbert
from nqs.lattice import (
    little_group,
    make_lattice,
    momentum_characters,
    space_characters,
    symmetry_sectors,
    translation_group,
)
from nqs.operators.pauli import PauliSum


def lat_of(kind: str, size: tuple[int, ...]):
    return make_lattice(kind, size[0] if kind == "chain" else list(size))


# ============================================================================ projectors, sector ED
def test_projectors_are_orthogonal_and_complete():
    lat = make_lattice("chain", 8)
    hil = SpinHilbert(8, 0.0)
    total = np.zeros((hil.n_states, hil.n_states), dtype=complex)
    n_dim = 0
    for ik, irrep, p in symmetry_sectors(lat, spin_flip=True):
        lg = little_group(lat, ik)
        chi = space_characters(lat, lg, ik, irrep)
        P = projector_dense(lg, chi, hil, p)
        assert np.allclose(P @ P, P) and np.allclose(P, P.conj().T)
        B = sector_basis(lg, chi, hil, p).toarray()
        assert B.shape[1] == round(np.trace(P).real)
        assert np.allclose(B.conj().T @ B, np.eye(B.shape[1])) and np.allclose(P @ B, B)
        total += P
        n_dim += B.shape[1]
    assert np.allclose(total, np.eye(hil.n_states)) and n_dim == hil.n_states


def _full_vs_sectors(lat, H, hil, spin_flip, point=None):
    full = np.linalg.eigvalsh(H.to_dense(hil))
    found, labels = [], []
    for label in symmetry_sectors(lat, point=point, spin_flip=spin_flip):
        e = sector_energies(H, lat, hil, *label, point=None if point is False else point)
        found.append(e)
        labels += [label] * len(e)
    found = np.concatenate(found)
    order = np.argsort(found, kind="stable")
    return full, found[order], [labels[i] for i in order]


SPECTRUM_CASES = [
    ("chain", (8,), "heisenberg", 0.0, True, None),
    ("chain", (8,), "heisenberg", 0.0, True, False),  # translations x spin flip only
    ("square", (3, 3), "j1j2", None, True, None),  # 2^9 states, C4v with its 2D irrep E
    ("square", (2, 4), "j1j2", 0.0, True, None),  # tiny torus: coinciding operations
    ("triangular", (3, 3), "heisenberg", None, True, None),  # C6v, C3v at K (E, E1, E2)
    ("honeycomb", (2, 2), "j1j2", None, False, None),
    ("kagome", (2, 2), "heisenberg", 0.0, True, None),
]


@pytest.mark.parametrize("kind,size,model,sz,flip,point", SPECTRUM_CASES)
def test_union_of_sector_spectra_is_the_full_spectrum(kind, size, model, sz, flip, point):
    lat = lat_of(kind, size)
    H = heisenberg(lat) if model == "heisenberg" else j1j2(lat, 1.0, 0.5)
    hil = SpinHilbert(lat.n_sites, sz)
    full, found, _ = _full_vs_sectors(lat, H, hil, flip, point)
    assert found.shape == full.shape
    assert np.max(np.abs(found - full)) < 1e-10


def test_sector_energies_match_dense_diagonalization_of_projected_blocks():
    """The orbit-based basis and the dense route (range of P by eigh, then V† H V) agree."""
    lat = make_lattice("chain", 8)
    hil = SpinHilbert(8, 0.0)
    H = heisenberg(lat)
    Hd = H.to_dense(hil)
    for ik, irrep, p in [
        (0, "A1", 1),
        (0, "A2", -1),
        (4, "A1", 1),
        (4, "A2", -1),
        (1, None, 1),
        (3, None, -1),
        (2, None, None),
    ]:
        if irrep is None:
            grp, chi = translation_group(lat), momentum_characters(lat, translation_group(lat), ik)
        else:
            grp = little_group(lat, ik)
            chi = space_characters(lat, grp, ik, irrep)
        w, v = np.linalg.eigh(projector_dense(grp, chi, hil, p))
        V = v[:, w > 0.5]
        dense = np.linalg.eigvalsh(V.conj().T @ Hd @ V)
        ours = sector_energies(H, lat, hil, ik, irrep, p)
        assert ours.shape == dense.shape and np.allclose(ours, dense, atol=1e-10)
        assert np.allclose(sector_energies(H, lat, hil, ik, irrep, p, n_levels=2), dense[:2])


def test_square_4x4_j1j2_sectors():
    """4x4 J1-J2 (J2 = 0.5), Sz = 0 (12870 states): the 84 sector Hamiltonians (k, little-group
    irrep, spin parity) have dimensions adding to 12870 and reproduce Tr H and Tr H² (the full
    spectrum's first moments, without diagonalizing all of them: multithreaded BLAS is slow on a
    loaded machine); E0 lies in (Γ, A1, even), E1 in (Γ, B1, even), as Lanczos finds them, and the
    momentum star of (π/2, 0) is degenerate."""
    lat = make_lattice("square", [4, 4])
    hil = SpinHilbert(16, 0.0)
    H = j1j2(lat, 1.0, 0.5)
    Hs = H.to_sparse(hil)
    blocks = {}
    for ik, irrep, p in symmetry_sectors(lat, spin_flip=True):
        grp = little_group(lat, ik)
        B = sector_basis(grp, space_characters(lat, grp, ik, irrep), hil, spin_parity=p)
        blocks[(ik, irrep, p)] = sector_hamiltonian(Hs, B, hil)  # also checks [H, P] = 0
    assert len(blocks) == 84
    assert sum(len(h) for h in blocks.values()) == hil.n_states
    assert np.isclose(sum(np.trace(h).real for h in blocks.values()), Hs.diagonal().sum(), atol=1e-8)
    assert np.isclose(sum(np.sum(np.abs(h) ** 2) for h in blocks.values()), Hs.multiply(Hs.T).sum().real, atol=1e-7)
    ref = lowest_energies(H, hil, k=2)
    assert np.isclose(ref[0], -8.45792335139, atol=1e-9)
    assert np.isclose(np.linalg.eigvalsh(blocks[(0, "A1", 1)])[0], ref[0], atol=1e-9)
    assert np.isclose(np.linalg.eigvalsh(blocks[(0, "B1", 1)])[0], ref[1], atol=1e-9)
    star = [np.linalg.eigvalsh(blocks[(ik, "A1", 1)])[0] for ik in (1, 3, 4, 12)]  # (π/2,0) & images
    assert np.allclose(star, -7.559821355304, atol=1e-9)
    assert np.allclose(
        sector_energies(Hs, lat, hil, 0, "A1", 1, n_levels=3), np.linalg.eigvalsh(blocks[(0, "A1", 1)])[:3]
    )


@pytest.mark.parametrize("L", [6, 8, 10])
def test_heisenberg_ring_ground_state_momentum(L):
    """E0 of the even Heisenberg ring: k = 0 when L/2 is even, k = π when L/2 is odd (found:
    L=6 → π, L=8 → 0, L=10 → π); the sector minimum equals the full ED ground energy."""
    lat = make_lattice("chain", L)
    hil = SpinHilbert(L, 0.0)
    H = heisenberg(lat)
    best = {}
    for ik in range(L):
        best[ik] = sector_energies(H, lat, hil, ik, n_levels=1)[0]
    ik0 = min(best, key=best.get)
    e0 = lowest_energies(H, hil, k=1)[0]
    assert np.isclose(best[ik0], e0, atol=1e-10)
    k0 = float(lat.momenta()[ik0, 0])
    assert np.isclose(k0, 0.0 if (L // 2) % 2 == 0 else math.pi)
    # strictly lower than every other momentum sector (nondegenerate singlet)
    assert all(best[ik] > e0 + 1e-6 for ik in best if ik != ik0)
    if L == 8:
        assert np.isclose(e0, -3.6510934089371, atol=1e-9)
        sectors = {
            (ik, ir, p): sector_energies(H, lat, hil, ik, ir, p, n_levels=1)
            for ik, ir, p in symmetry_sectors(lat, spin_flip=True)
        }
        gs = [lab for lab, e in sectors.items() if len(e) and np.isclose(e[0], e0)]
        assert gs == [(0, "A1", 1)]


def test_sector_hamiltonian_rejects_non_symmetric_operators():
    lat = make_lattice("chain", 6)
    hil = SpinHilbert(6, 0.0)
    H = PauliSum(6, [(1.0, "Z", (0,))] + [(0.25, op, (i, (i + 1) % 6)) for i in range(6) for op in ("XX", "YY")])
    T = translation_group(lat)
    B = sector_basis(T, momentum_characters(lat, T, 0), hil)
    with pytest.raises(ValueError, match="does not commute"):
        sector_hamiltonian(H, B, hil)
    with pytest.raises(ValueError, match="spin flip"):
        sector_basis(T, momentum_characters(lat, T, 0), SpinHilbert(6, 1.0), spin_parity=1)
