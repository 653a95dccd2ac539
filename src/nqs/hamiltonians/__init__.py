"""Hamiltonians: spin models on lattices (:mod:`.spin`), the Hubbard model (:mod:`.hubbard`) and effective
Hamiltonians from files (:mod:`.files`).  Each kind is registered once, beside its builder, with its config
class and units (:data:`nqs.registry.HAMILTONIANS`); this package's import registers the built-in kinds.
"""

from ..registry import HAMILTONIANS
from .files import FileConfig, read_hamiltonian
from .hubbard import HubbardConfig, hubbard
from .spin import (
    HeisenbergConfig,
    IsingConfig,
    J1J2Config,
    PauliConfig,
    SpinHamiltonianConfig,
    XXZConfig,
    heisenberg,
    ising,
    j1j2,
    pauli,
    xxz,
)


def units_for(kind: str) -> str:
    """The statement of the units of Hamiltonian ``kind`` (printed with every energy)."""
    return HAMILTONIANS[kind].units if kind in HAMILTONIANS else "see the Hamiltonian's docstring"


def units_short(kind: str) -> str:
    """A short units label for plot axes ("Pauli", "S = σ/2", "t")."""
    return HAMILTONIANS[kind].facts.get("short_units", "") if kind in HAMILTONIANS else ""


def is_fermionic(kind: str) -> bool:
    """Whether Hamiltonian ``kind`` acts on spinful fermions (Hilbert space :class:`~nqs.hilbert.SpinfulFermions`)."""
    return bool(HAMILTONIANS[kind].facts.get("fermions", False))


__all__ = [
    "ising",
    "heisenberg",
    "xxz",
    "j1j2",
    "pauli",
    "hubbard",
    "read_hamiltonian",
    "units_for",
    "units_short",
    "is_fermionic",
    "IsingConfig",
    "HeisenbergConfig",
    "XXZConfig",
    "J1J2Config",
    "PauliConfig",
    "SpinHamiltonianConfig",
    "HubbardConfig",
    "FileConfig",
    "HAMILTONIANS",
]
