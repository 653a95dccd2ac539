"""Lattices: chain, square, triangular, honeycomb, kagome clusters; bonds by distance shell; symmetry groups."""

from . import symmetry
from .lattice import DISTANCE_TOL, LATTICE_KINDS, Lattice, make_lattice
from .symmetry import SymmetryGroup, point_group, space_group, translation_group

__all__ = ["DISTANCE_TOL", "LATTICE_KINDS", "Lattice", "make_lattice", "symmetry", "SymmetryGroup",
           "translation_group", "point_group", "space_group"]
