"""Lattices: chain, square, triangular, honeycomb, kagome clusters; bonds by distance shell; symmetry
groups (:mod:`nqs.lattice.groups`) and their characters (:mod:`nqs.lattice.irreps`).

Conventions for groups, characters and sectors: ``docs/symmetry.md``.
"""

from .groups import SymmetryGroup, little_group, momentum, point_group, space_group, translation_group
from .irreps import (
    is_representation,
    momentum_characters,
    point_characters,
    point_irreps,
    sector_exists,
    space_characters,
    spin_flip_character,
    symmetry_sectors,
)
from .lattice import DISTANCE_TOL, LATTICE_KINDS, Lattice, make_lattice

__all__ = [
    "DISTANCE_TOL",
    "LATTICE_KINDS",
    "Lattice",
    "make_lattice",
    "SymmetryGroup",
    "translation_group",
    "point_group",
    "space_group",
    "little_group",
    "momentum",
    "momentum_characters",
    "point_irreps",
    "point_characters",
    "space_characters",
    "sector_exists",
    "spin_flip_character",
    "is_representation",
    "symmetry_sectors",
]
