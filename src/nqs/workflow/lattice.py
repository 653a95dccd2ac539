"""The ``[lattice]`` section, and for the config as a whole the symmetry sector of ``model.symmetry`` and the
boundary of the Hamiltonian (momenta written as text, "pi/2": :func:`nqs.models.kinds.parse_angle`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import Config, ConfigError
from ..lattice import make_lattice
from ..models.kinds import k_label, parse_angle
from ..models.kinds import symmetry_sector as sector_of

__all__ = ["boundary_label", "build_lattice", "k_label", "parse_angle", "symmetry_sector"]


def build_lattice(cfg: Config):
    try:
        return make_lattice(cfg.lattice.kind, cfg.lattice.size, cfg.lattice.pbc)
    except ValueError as err:
        raise ConfigError(f"lattice: {err}") from None


def symmetry_sector(cfg: Config, lat) -> tuple[Any, np.ndarray, int | None, str]:
    """``(group, characters, spin_parity, label)`` of ``model.symmetry`` on ``lat`` (ConfigError if impossible)."""
    return sector_of(cfg.model.symmetry, lat)


def boundary_label(cfg: Config, lat) -> str | None:
    if not all(lat.pbc):
        return None
    b = getattr(cfg.hamiltonian, "boundary", None)  # the Hubbard model's key; other kinds are periodic
    if (
        b is None
        or (isinstance(b, str) and b.strip().lower() == "periodic")
        or (isinstance(b, list) and all(str(x).strip().lower() == "periodic" for x in b))
    ):
        return "periodic"
    return None
