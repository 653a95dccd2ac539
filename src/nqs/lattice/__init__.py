"""Lattices: chain, square, triangular, honeycomb, kagome clusters; bonds by distance shell."""

from .lattice import DISTANCE_TOL, LATTICE_KINDS, Lattice, make_lattice

__all__ = ["DISTANCE_TOL", "LATTICE_KINDS", "Lattice", "make_lattice"]
