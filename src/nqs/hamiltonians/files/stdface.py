"""Format ``"stdface"``: a StdFace standard-mode input for the Hubbard model on a chain or square lattice.

The Hamiltonian is built with :func:`nqs.hamiltonians.hubbard.hubbard`; the supported keys and the
model's signs are in ``docs/hamiltonian_files.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...lattice import make_lattice
from ...operators.fermion import FermionOperator
from ..hubbard import hubbard
from .inputs import filling, no_options, read_text
from .terms import FileHamiltonian, HamiltonianFileError, StatedFilling, Term, orb

_STDFACE_MODELS = {"hubbard", "fermionhubbard"}
_STDFACE_LATTICES = {
    "chain": "chain",
    "chainlattice": "chain",
    "square": "square",
    "squarelattice": "square",
    "tetragonal": "square",
    "tetragonallattice": "square",
}
_STDFACE_HANDLED = {
    "model",
    "lattice",
    "l",
    "w",
    "t",
    "t0",
    "t1",
    "t'",
    "t0'",
    "t1'",
    "u",
    "v",
    "v0",
    "v1",
    "mu",
    "h",
    "nelec",
    "ncond",
    "2sz",
    "phase0",
    "phase1",
    "v'",
    "t''",
    "v''",
    "gamma",
}
#: per lattice: parameter -> the StdFace keys that set it (isotropic only: they must agree)
_STDFACE_ALIASES = {
    "chain": {"t": ("t", "t0"), "t'": ("t'", "t0'"), "v": ("v", "v0")},
    "square": {"t": ("t", "t0", "t1"), "t'": ("t'", "t0'", "t1'"), "v": ("v", "v0", "v1")},
}
#: keys that would change the Hamiltonian but are not supported here (geometry-only keys such as
#: ``a``, ``Wx``, ``Wlength`` do not change a chain's or a square lattice's bonds and are ignored)
_STDFACE_PHYSICS = re.compile(
    r"^(j[0-9a-z]{0,3}'*|t[0-9]+'*|v[0-9]+'*|d|k|gamma.*|a[01][wl]|height|phase2|2s|"
    r"lambda.*|cutoff.*)$"
)


def _stdface_number(path: Path, key: str, value: str, line: int) -> float:
    parts = [p for p in value.split(",") if p.strip()]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2) or (len(nums) == 2 and nums[1] != 0.0) or not math.isfinite(nums[0]):
        raise HamiltonianFileError(path, f"{key} must be a real number, got {value!r}", line)
    return nums[0]


def read_stdface(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    no_options(path, "stdface", options)
    text = read_text(path)
    kv: dict[str, tuple[str, int]] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        body = raw.split("//", 1)[0].strip()
        if not body:
            continue
        if "=" not in body:
            raise HamiltonianFileError(path, f"expected 'key = value', got {raw.strip()!r}", lineno)
        key, value = (s.strip() for s in body.split("=", 1))
        key = key.lower().replace(" ", "")
        value = value.replace('"', "").replace("'", "") if key in ("model", "lattice") else value
        if key in kv:
            raise HamiltonianFileError(path, f"{key!r} is given twice (also on line {kv[key][1]})", lineno)
        kv[key] = (value.strip(), lineno)
        if key not in _STDFACE_HANDLED and _STDFACE_PHYSICS.match(key):
            raise HamiltonianFileError(
                path,
                f"StdFace key {key!r} is not supported (this reader covers the Hubbard model on chain and "
                "square lattices: t, t', U, V, mu, h, nelec, 2Sz, phase0, phase1)",
                lineno,
            )

    def get(key: str, default: float = 0.0) -> float:
        return _stdface_number(path, key, *kv[key]) if key in kv else default

    def get_int(key: str) -> int | None:
        if key not in kv:
            return None
        x = _stdface_number(path, key, *kv[key])
        if not x.is_integer():
            raise HamiltonianFileError(path, f"{key} must be an integer, got {kv[key][0]!r}", kv[key][1])
        return int(x)

    if "model" not in kv:
        raise HamiltonianFileError(path, "no 'model = ...' line")
    model, mline = kv["model"][0].replace(" ", "").lower(), kv["model"][1]
    if model not in _STDFACE_MODELS:
        raise HamiltonianFileError(
            path,
            f'StdFace model {kv["model"][0]!r} is not supported (only "Hubbard"; '
            "spin, Kondo and grand-canonical models are not)",
            mline,
        )
    if "lattice" not in kv:
        raise HamiltonianFileError(path, "no 'lattice = ...' line")
    lat_name, lline = kv["lattice"][0].replace(" ", "").lower(), kv["lattice"][1]
    kind = _STDFACE_LATTICES.get(lat_name)
    if kind is None:
        raise HamiltonianFileError(
            path, f"StdFace lattice {kv['lattice'][0]!r} is not supported (only chain and square)", lline
        )
    for key, what in (
        ("t''", "third-neighbour hopping t''"),
        ("v'", "next-nearest Coulomb V'"),
        ("v''", "third-neighbour Coulomb V''"),
        ("gamma", "transverse field Gamma (breaks S^z)"),
    ):
        if key in kv and get(key) != 0.0:
            raise HamiltonianFileError(path, f"the {what} is not supported", kv[key][1])

    def isotropic(param: str) -> float:
        keys = [k for k in _STDFACE_ALIASES[kind][param] if k in kv]
        values = [get(k) for k in keys]
        for k, v in zip(keys, values, strict=True):
            if v != values[0]:
                raise HamiltonianFileError(
                    path,
                    f"{k} = {kv[k][0]} differs from {keys[0]} = {kv[keys[0]][0]}: "
                    "anisotropic couplings are not supported",
                    kv[k][1],
                )
        return values[0] if values else 0.0

    for key in kv:
        if key in ("t1", "t1'", "v1") and kind == "chain":
            raise HamiltonianFileError(path, f"{key} is not used by the chain lattice", kv[key][1])
    L = get_int("l")
    if L is None or L < 1:
        raise HamiltonianFileError(path, "L (a positive integer) is required", kv.get("l", ("", None))[1])
    if kind == "chain":
        if "w" in kv:
            raise HamiltonianFileError(path, "W is not used by the chain lattice", kv["w"][1])
        size, phase_keys = [L], ("phase0",)
        if "phase1" in kv:
            raise HamiltonianFileError(path, "the chain uses phase0 only", kv["phase1"][1])
    else:
        W = get_int("w")
        if W is None or W < 1:
            raise HamiltonianFileError(
                path, "W (a positive integer) is required for the square lattice", kv.get("w", ("", None))[1]
            )
        size, phase_keys = [W, L], ("phase0", "phase1")
    modes = []
    for key in phase_keys:
        ph = get(key) % 360.0
        if ph not in (0.0, 180.0):
            raise HamiltonianFileError(
                path,
                f"{key} = {kv[key][0]}: only 0 (periodic) and 180 (antiperiodic) boundary phases are supported",
                kv[key][1],
            )
        modes.append("periodic" if ph == 0.0 else "antiperiodic")
    lattice = make_lattice(kind, size, True)
    n = lattice.n_sites
    t, tp, V = isotropic("t"), isotropic("t'"), isotropic("v")
    U, mu, h = get("u"), get("mu"), get("h")
    op = hubbard(lattice, t=t, U=U, t2=tp, V=V, boundary=modes)
    extra: list[Term] = []
    for i in range(n):
        for s, sz in ((0, 0.5), (1, -0.5)):
            c = -mu - h * sz
            if c != 0.0:
                extra.append((c, ((orb(i, s, n), 1), (orb(i, s, n), 0))))
    if extra:
        op = op + FermionOperator(2 * n, extra)
    op = FermionOperator(2 * n, op.terms, name=f"stdface {path.name}")
    n_el = get_int("nelec")
    n_cond = get_int("ncond")
    if n_el is not None and n_cond is not None and n_el != n_cond:
        raise HamiltonianFileError(path, f"nelec = {n_el} and ncond = {n_cond} disagree", kv["ncond"][1])
    el_key = "nelec" if n_el is not None else "ncond"
    n_el = n_el if n_el is not None else n_cond
    two_sz = get_int("2sz")
    n_up = n_down = None
    stated = None
    words = [f"{k} = {kv[k][0]}" for k in (el_key, "2sz") if k in kv]
    if n_el is not None and not 0 <= n_el <= 2 * n:
        raise HamiltonianFileError(path, f"{el_key} = {n_el} electrons do not fit on {n} sites", kv[el_key][1])
    if two_sz is not None and abs(two_sz) > n:
        raise HamiltonianFileError(path, f"2Sz = {two_sz} is impossible on {n} sites", kv["2sz"][1])
    if n_el is not None and two_sz is not None:
        line = kv["2sz"][1]
        if abs(two_sz) > n_el or (n_el + two_sz) % 2:
            raise HamiltonianFileError(path, f"{n_el} electrons cannot have 2Sz = {two_sz}", line)
        n_up, n_down = filling(path, n, (n_el + two_sz) // 2, (n_el - two_sz) // 2, line)
    if words:
        line = kv[el_key][1] if n_el is not None else kv["2sz"][1]
        stated = StatedFilling(n_el, two_sz, str(path), line, ", ".join(words))
    geometry = "x".join(str(s) for s in size)
    return FileHamiltonian(
        op,
        n,
        n_up,
        n_down,
        f"StdFace {kind} {geometry} Hubbard from {path} (t={t:g}, t'={tp:g}, U={U:g}, V={V:g})",
        stated,
    )
