"""Format ``"wannier90"``: a Wannier90 ``*_hr.dat`` folded onto a supercell, with optional U, J and V.

The file layout, the degeneracy weights, the site numbering of the supercell and the options
(``supercell``, ``U``, ``J``, ``V``, ``energy_cutoff``, ``n_up``, ``n_down``) are in
``docs/hamiltonian_files.md``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inputs import filling, is_int, is_real, read_text
from .terms import (
    FileHamiltonian,
    HamiltonianFileError,
    StatedFilling,
    Term,
    density_density,
    fermion_operator,
    fmt,
    kanamori,
    onsite_u,
    orb,
)


@dataclass(frozen=True)
class _W90:
    path: Path
    num_wann: int
    entries: dict[tuple[tuple[int, int, int], int, int], tuple[complex, int]]  # (R, m, n) 0-based -> (value, line)


def _read_w90_file(path: Path) -> _W90:
    lines = read_text(path).splitlines()

    def header_int(index: int, name: str) -> int:
        if len(lines) <= index or not re.fullmatch(r"\s*\d+\s*", lines[index]):
            got = repr(lines[index]) if len(lines) > index else "nothing"
            raise HamiltonianFileError(
                path, f"line {index + 1} must hold {name} (a positive integer), got {got}", index + 1
            )
        v = int(lines[index])
        if v < 1:
            raise HamiltonianFileError(path, f"{name} must be positive, got {v}", index + 1)
        return v

    num_wann, nrpts = header_int(1, "num_wann"), header_int(2, "nrpts")
    degen: list[int] = []
    pos = 3
    while len(degen) < nrpts:
        if pos >= len(lines):
            raise HamiltonianFileError(path, f"the file ends before the {nrpts} degeneracies", pos)
        tok = lines[pos].split()
        if not tok or not all(re.fullmatch(r"\d+", w) and int(w) > 0 for w in tok) or len(degen) + len(tok) > nrpts:
            raise HamiltonianFileError(
                path,
                f"expected degeneracy weights (positive integers, {nrpts} in all), got {lines[pos].strip()!r}",
                pos + 1,
            )
        degen += [int(w) for w in tok]
        pos += 1
    block = num_wann * num_wann
    entries: dict[tuple[tuple[int, int, int], int, int], tuple[complex, int]] = {}
    count = 0
    r_of_block: dict[int, tuple[int, int, int]] = {}
    for lineno, raw in enumerate(lines[pos:], start=pos + 1):
        tok = raw.split()
        if not tok:
            continue
        if len(tok) != 7:
            raise HamiltonianFileError(path, f"expected 7 columns (R1 R2 R3 m n Re Im), found {len(tok)}", lineno)
        if not all(re.fullmatch(r"[+-]?\d+", w) for w in tok[:5]):
            raise HamiltonianFileError(path, "R1 R2 R3 m n must be integers", lineno)
        try:
            value = complex(float(tok[5]), float(tok[6]))
        except ValueError:
            raise HamiltonianFileError(path, f"Re, Im must be numbers, got {tok[5]!r} {tok[6]!r}", lineno) from None
        R = (int(tok[0]), int(tok[1]), int(tok[2]))
        m, k = int(tok[3]), int(tok[4])
        if not (1 <= m <= num_wann and 1 <= k <= num_wann):
            raise HamiltonianFileError(path, f"orbital indices m = {m}, n = {k} must lie in 1..{num_wann}", lineno)
        b = count // block
        if b >= nrpts:
            raise HamiltonianFileError(path, f"more rows than nrpts·num_wann² = {nrpts * block}", lineno)
        if r_of_block.setdefault(b, R) != R:
            raise HamiltonianFileError(
                path, f"R = {R} inside the block of R = {r_of_block[b]} (each R needs {block} consecutive rows)", lineno
            )
        key = (R, m - 1, k - 1)
        if key in entries:
            raise HamiltonianFileError(
                path, f"(R = {R}, m = {m}, n = {k}) appears twice (also line {entries[key][1]})", lineno
            )
        entries[key] = (value / degen[b], lineno)
        count += 1
    if count != nrpts * block:
        raise HamiltonianFileError(
            path, f"nrpts = {nrpts} and num_wann = {num_wann} need {nrpts * block} rows, found {count}", 3
        )
    # Hermiticity H_nm(−R) = conj(H_mn(R)), then symmetrize
    sym: dict[tuple[tuple[int, int, int], int, int], tuple[complex, int]] = {}
    for (R, m, k), (v, lineno) in entries.items():
        pkey = (tuple(-x for x in R), k, m)
        partner = entries.get(pkey)  # type: ignore[arg-type]
        if partner is None or abs(partner[0] - v.conjugate()) > 1e-6 * max(1.0, abs(v)):
            got = "is missing" if partner is None else f"is {fmt(partner[0])} (line {partner[1]})"
            raise HamiltonianFileError(
                path,
                f"not Hermitian: H_{m + 1}{k + 1}(R={R}) = {fmt(v)} needs "
                f"H_{k + 1}{m + 1}(R={pkey[0]}) = {fmt(v.conjugate())}, which {got}",
                lineno,
            )
        sym[(R, m, k)] = (0.5 * (v + partner[0].conjugate()), lineno)
    return _W90(path, num_wann, sym)


def _supercell(path: Path, value: Any) -> tuple[int, int, int]:
    cells = [value] if is_int(value) else list(value) if isinstance(value, Sequence) else None
    if not cells or len(cells) > 3 or not all(is_int(c) and c >= 1 for c in cells):
        raise HamiltonianFileError(path, f"supercell must be a positive int or 1 to 3 positive ints, got {value!r}")
    cells = [int(c) for c in cells] + [1] * (3 - len(cells))
    return cells[0], cells[1], cells[2]


def read_wannier90(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    allowed = {"supercell", "U", "J", "V", "energy_cutoff", "n_up", "n_down"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise HamiltonianFileError(
            path,
            f"unknown option(s) {', '.join(unknown)} for format 'wannier90' (allowed: {', '.join(sorted(allowed))})",
        )
    if "supercell" not in options:
        raise HamiltonianFileError(path, "the wannier90 format needs supercell=(L1, L2, L3)")
    L = _supercell(path, options["supercell"])
    cutoff = options.get("energy_cutoff", 1e-8)
    if not is_real(cutoff) or cutoff < 0:
        raise HamiltonianFileError(path, f"energy_cutoff must be a number >= 0, got {cutoff!r}")
    hr = _read_w90_file(path)
    nw = hr.num_wann
    cells = list(itertools.product(range(L[0]), range(L[1]), range(L[2])))
    n = nw * len(cells)
    n_up, n_down = filling(path, n, options.get("n_up"), options.get("n_down"))

    def site(m: int, c: tuple[int, ...], R: tuple[int, ...] = (0, 0, 0)) -> int:
        cc = [(c[a] + R[a]) % L[a] for a in range(3)]
        return m + nw * ((cc[0] * L[1] + cc[1]) * L[2] + cc[2])

    def companion(value: Any, name: str) -> _W90:
        w = _read_w90_file(Path(value))
        if w.num_wann != nw:
            raise HamiltonianFileError(w.path, f"num_wann = {w.num_wann} differs from {path.name}'s {nw} ({name})", 2)
        return w

    terms: list[Term] = []
    n_hop = 0
    for (R, m, k), (t, _) in hr.entries.items():
        if abs(t) < cutoff:
            continue
        n_hop += 1
        for c in cells:
            i, j = site(m, c), site(k, c, R)
            terms += [(t, ((orb(i, s, n), 1), (orb(j, s, n), 0))) for s in (0, 1)]
    parts = [f"{n_hop} hoppings"]
    U = options.get("U")
    if isinstance(U, str | Path):
        ur = companion(U, "U")
        for (R, m, k), (u, _) in ur.entries.items():
            if abs(u) < cutoff:
                continue
            for c in cells:
                if R == (0, 0, 0) and m == k:
                    terms.append(onsite_u(u.real, site(m, c), n))
                else:
                    terms += density_density(0.5 * u.real, site(m, c), site(k, c, R), n)
        parts.append(f"U from {ur.path.name}")
    elif U is not None:
        us = [U] * nw if is_real(U) else list(U) if isinstance(U, Sequence) else None
        if us is None or len(us) != nw or not all(is_real(u) for u in us):
            raise HamiltonianFileError(
                path, f"U must be a number, {nw} numbers (one per orbital) or a *_ur.dat path, got {U!r}"
            )
        terms += [onsite_u(float(us[m]), site(m, c), n) for c in cells for m in range(nw) if us[m] != 0]
        parts.append(f"U = {us if len(set(us)) > 1 else us[0]}")
    J = options.get("J")
    if isinstance(J, str | Path):
        jr = companion(J, "J")
        for (R, m, k), (jv, _) in jr.entries.items():
            if abs(jv) < cutoff or (R == (0, 0, 0) and m == k):
                continue
            for c in cells:
                terms += kanamori(0.5 * jv.real, site(m, c), site(k, c, R), n)
        parts.append(f"J from {jr.path.name}")
    elif J is not None:
        if not is_real(J):
            raise HamiltonianFileError(path, f"J must be a number or a *_jr.dat path, got {J!r}")
        if J != 0:
            for c in cells:
                for m, k in itertools.combinations(range(nw), 2):
                    terms += kanamori(float(J), site(m, c), site(k, c), n)
            parts.append(f"J = {J:g}")
    V = options.get("V")
    if V is not None:
        if not isinstance(V, Mapping):
            raise HamiltonianFileError(path, f"V must be a dict {{(R, m, n): V}}, got {type(V).__name__}")
        for key, v in V.items():
            ok = (
                isinstance(key, tuple)
                and len(key) == 3
                and isinstance(key[0], Sequence)
                and 1 <= len(key[0]) <= 3
                and all(is_int(x) for x in key[0])
                and all(is_int(x) and 0 <= x < nw for x in key[1:])
                and is_real(v)
            )
            if not ok:
                raise HamiltonianFileError(
                    path,
                    f"V entry {key!r}: {v!r} must be (R, m, n): number with R a tuple "
                    f"of up to 3 ints and m, n in 0..{nw - 1}",
                )
            R = tuple(key[0]) + (0,) * (3 - len(key[0]))
            for c in cells:
                terms += density_density(float(v), site(key[1], c), site(key[2], c, R), n)
        parts.append(f"{len(V)} V terms")
    if not terms:
        raise HamiltonianFileError(path, "no terms above energy_cutoff")
    op = fermion_operator(n, terms, f"wannier90 {path.name}")
    geometry = "x".join(str(x) for x in L)
    stated = None
    if n_up is not None:
        stated = StatedFilling(
            n_up + n_down, n_up - n_down, str(path), None, f"the options n_up = {n_up}, n_down = {n_down}"
        )
    return FileHamiltonian(
        op,
        n,
        n_up,
        n_down,
        f"Wannier90 {path} on a {geometry} supercell ({nw} orbitals/cell; {', '.join(parts)})",
        stated,
    )
