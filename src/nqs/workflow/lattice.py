"""The ``[lattice]`` section, momenta written as text ("pi/2"), and the symmetry sector of ``model.symmetry``."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..config import Config, ConfigError
from ..lattice import make_lattice


def build_lattice(cfg: Config):
    try:
        return make_lattice(cfg.lattice.kind, cfg.lattice.size, cfg.lattice.pbc)
    except ValueError as err:
        raise ConfigError(f"lattice: {err}") from None


def parse_angle(value, where: str) -> float:
    """A momentum component: a number (radians) or a string such as "pi", "-pi/2", "2pi/3", "0.5*pi"."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower().replace("π", "pi").replace(" ", "")
    m = re.fullmatch(r"([+-]?)(\d*\.?\d*)\*?(pi)?(?:/(\d+\.?\d*))?", text)
    if not text or m is None or (not m.group(2) and not m.group(3)):
        raise ConfigError(f'{where}: cannot read momentum component {value!r} (use numbers or e.g. "pi/2")')
    sign = -1.0 if m.group(1) == "-" else 1.0
    num = float(m.group(2)) if m.group(2) else 1.0
    den = float(m.group(4)) if m.group(4) else 1.0
    return sign * num * (math.pi if m.group(3) else 1.0) / den


def k_label(k) -> str:
    """A momentum in units of π, e.g. (0, π/2)."""
    from fractions import Fraction

    parts = []
    for x in np.atleast_1d(np.asarray(k, dtype=float)):
        f = Fraction(x / math.pi).limit_denominator(64)
        if abs(float(f) * math.pi - x) > 1e-8:
            parts.append(f"{x:.4f}")
        elif f == 0:
            parts.append("0")
        else:
            num = "" if abs(f.numerator) == 1 else str(abs(f.numerator))
            sign = "-" if f < 0 else ""
            parts.append(f"{sign}{num}π" + (f"/{f.denominator}" if f.denominator != 1 else ""))
    return "(" + ", ".join(parts) + ")" if len(parts) > 1 else parts[0]


def symmetry_sector(cfg: Config, lat) -> tuple[Any, np.ndarray, int | None, str]:
    """``(group, characters, spin_parity, label)`` of ``model.symmetry`` on ``lat`` (ConfigError if impossible)."""
    from ..lattice import little_group, momentum, momentum_characters, space_characters, translation_group

    sc = getattr(cfg.model, "symmetry", None)
    k = [0.0] * lat.ndim if sc.k is None else [parse_angle(v, "model.symmetry.k") for v in sc.k]
    if len(k) != lat.ndim:
        raise ConfigError(f"model.symmetry.k needs {lat.ndim} components for {lat.describe()}, got {len(k)}")
    try:
        kv = momentum(lat, k)
        if sc.point_group is None:
            group = translation_group(lat)
            chi = momentum_characters(lat, group, kv)
        else:
            group = little_group(lat, kv)
            chi = space_characters(lat, group, kv, sc.point_group)
    except (ValueError, KeyError) as err:
        allowed = ", ".join(k_label(q) for q in lat.momenta())
        raise ConfigError(f"model.symmetry: {err} (allowed momenta: {allowed})") from None
    label = f"k = {k_label(kv)}"
    if sc.point_group is not None:
        label += f", {sc.point_group}"
    if sc.spin_parity is not None:
        label += f", spin parity {sc.spin_parity:+d}"
    return group, chi, sc.spin_parity, label


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
