"""Hamiltonians: spin models on lattices (:mod:`.spin`), the Hubbard model (:mod:`.hubbard`), file readers."""

from .hubbard import hubbard
from .spin import BUILDERS, SZ_CONSERVING, heisenberg, ising, j1j2, pauli, xxz

__all__ = ["ising", "heisenberg", "xxz", "j1j2", "pauli", "hubbard", "BUILDERS", "SZ_CONSERVING"]
