"""Operators described by their action as *moves*: which sites change, to what, with which matrix element."""

from .fermion import FermionOperator
from .pauli import PauliSum, apply_moves

__all__ = ["PauliSum", "FermionOperator", "apply_moves"]
