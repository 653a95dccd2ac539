"""Spin Hamiltonians on lattices, as :class:`~nqs.operators.PauliSum` operators.

Units follow :mod:`nqs.conventions`: ``ising`` uses Pauli matrices, the Heisenberg family
uses spin-1/2 operators S = σ/2, so S_i·S_j = (X_iX_j + Y_iY_j + Z_iZ_j)/4.
"""

from __future__ import annotations

from ..conventions import units_for
from ..operators.pauli import PauliSum


def ising(lattice, J: float = 1.0, h: float = 1.0) -> PauliSum:
    """Transverse-field Ising model H = −J Σ⟨ij⟩ σᶻ_iσᶻ_j − h Σ_i σˣ_i (Pauli; critical at h = J in 1D)."""
    terms = [(-J, "ZZ", (i, j)) for i, j in lattice.bonds(1)]
    terms += [(-h, "X", (i,)) for i in range(lattice.n_sites)]
    return PauliSum(lattice.n_sites, terms, name="ising")


def _exchange_terms(bonds, J: float, delta: float = 1.0) -> list[tuple]:
    """J (SˣSˣ + SʸSʸ + Δ SᶻSᶻ) on each bond, with S = σ/2."""
    out = []
    for i, j in bonds:
        out += [(J / 4, "XX", (i, j)), (J / 4, "YY", (i, j)), (J * delta / 4, "ZZ", (i, j))]
    return out


def heisenberg(lattice, J: float = 1.0) -> PauliSum:
    """Heisenberg model H = J Σ⟨ij⟩ S_i·S_j, S = σ/2 (antiferromagnetic for J > 0)."""
    return PauliSum(lattice.n_sites, _exchange_terms(lattice.bonds(1), J), name="heisenberg")


def xxz(lattice, J: float = 1.0, Delta: float = 1.0) -> PauliSum:
    """XXZ model H = J Σ⟨ij⟩ (SˣSˣ + SʸSʸ + Δ SᶻSᶻ), S = σ/2."""
    return PauliSum(lattice.n_sites, _exchange_terms(lattice.bonds(1), J, Delta), name="xxz")


def j1j2(lattice, J1: float = 1.0, J2: float = 0.5) -> PauliSum:
    """J1-J2 model H = J1 Σ⟨ij⟩ S_i·S_j + J2 Σ⟨⟨ij⟩⟩ S_i·S_j, S = σ/2 (bonds by distance shell)."""
    terms = _exchange_terms(lattice.bonds(1), J1) + _exchange_terms(lattice.bonds(2), J2)
    return PauliSum(lattice.n_sites, terms, name="j1j2")


def pauli(lattice, terms) -> PauliSum:
    """User model: H = Σ_t c_t P_t with terms ``(c, "XZ", (i, j))`` on the lattice's sites."""
    return PauliSum(lattice.n_sites, terms, name="pauli")


BUILDERS = {"ising": ising, "heisenberg": heisenberg, "xxz": xxz, "j1j2": j1j2, "pauli": pauli}
SZ_CONSERVING = {"heisenberg", "xxz", "j1j2"}

__all__ = ["ising", "heisenberg", "xxz", "j1j2", "pauli", "BUILDERS", "units_for"]
