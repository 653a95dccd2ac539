"""Hilbert spaces: spin-1/2 (optionally at fixed total Sz). Spinful fermions will live here too."""

from .spin import SpinHilbert

__all__ = ["SpinHilbert"]
