"""Hilbert spaces: spin-1/2 (optionally at fixed total Sz) and spinful fermions at fixed (N↑, N↓)."""

from .fermions import SpinfulFermions
from .spin import SpinHilbert

__all__ = ["SpinHilbert", "SpinfulFermions"]
