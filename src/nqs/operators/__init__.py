"""Operators described by their action as *moves*: which sites change, to what, with which matrix element."""

from .pauli import PauliSum, apply_moves

__all__ = ["PauliSum", "apply_moves"]
