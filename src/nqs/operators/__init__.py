"""Operators described by their action as *moves*: which sites change, to what, with which matrix element."""

from .fermion import FermionOperator
from .moves import apply_moves, move_delta
from .pauli import PauliSum

__all__ = ["PauliSum", "FermionOperator", "apply_moves", "move_delta"]
