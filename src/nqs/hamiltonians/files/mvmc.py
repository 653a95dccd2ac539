"""Format ``"mvmc"``: mVMC / HPhi expert-mode ``*.def`` files listed in a ``namelist.def``.

Which keywords are read, ignored or refused, the sign of every row and how ``ModPara`` sets the filling
are in ``docs/hamiltonian_files.md``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inputs import filling, no_options, read_text
from .terms import (
    FileHamiltonian,
    HamiltonianFileError,
    StatedFilling,
    Term,
    check_conserves_spin,
    check_hermitian,
    density_density,
    exchange,
    fermion_operator,
    fmt,
    hund,
    onsite_u,
    orb,
    orbital_label,
    pair_hop,
)

#: keyword (lower case) -> (column kinds, column description); i = site, s = spin, f = integer, r = real
_DEF_SPECS: dict[str, tuple[str, str]] = {
    "trans": ("isisrr", "i s1 j s2 Re(t) Im(t)"),
    "coulombintra": ("ir", "i U"),
    "coulombinter": ("iir", "i j V"),
    "hund": ("iir", "i j J"),
    "exchange": ("iir", "i j J"),
    "pairhop": ("iir", "i j J"),
    "interall": ("isisisisrr", "i s1 j s2 k s3 l s4 Re(I) Im(I)"),
    "locspin": ("if", "i flag"),
}
_MVMC_IGNORED = {
    "gutzwiller",
    "jastrow",
    "spinjastrow",
    "dh2",
    "dh4",
    "orbital",
    "orbitalantiparallel",
    "orbitalparallel",
    "orbitalgeneral",
    "transsym",
    "opttrans",
    "onebodyg",
    "twobodyg",
    "twobodygex",
    "twist",
    "lattice",
    "spectrumvec",
    "singleexcitation",
    "singleexcitationbra",
    "pairexcitation",
    "boost",
    "bfrange",
    "bf",
    "generalrbm_physlayer",
    "generalrbm_hiddenlayer",
    "generalrbm_physhidden",
    "chargerbm_physlayer",
    "chargerbm_hiddenlayer",
    "chargerbm_physhidden",
    "spinrbm_physlayer",
    "spinrbm_hiddenlayer",
    "spinrbm_physhidden",
}
_MVMC_REFUSED = {"pairlift": "PairLift (HPhi, spin systems only)", "ising": "Ising (HPhi, spin systems only)"}
_MODPARA_KEYS = {"nsite", "ncond", "ne", "nelectron", "2sz", "nup", "ndown"}


@dataclass(frozen=True)
class _DefFile:
    path: Path
    keyword: str
    count: int
    rows: list[tuple[int, list]]  # (1-based line, parsed values)


def _read_def(path: Path, keyword: str, n_sites: int | None) -> _DefFile:
    kinds, columns = _DEF_SPECS[keyword.lower()]
    lines = read_text(path).splitlines()
    if len(lines) < 5:
        raise HamiltonianFileError(path, f"a .def file starts with 5 header lines; this one has {len(lines)} lines")
    head = lines[1].split()
    if len(head) < 2 or not re.fullmatch(r"[+-]?\d+", head[1]):
        raise HamiltonianFileError(path, f"line 2 must be 'NAME COUNT' (e.g. 'N{keyword} 4'), got {lines[1]!r}", 2)
    count = int(head[1])
    rows = []
    for lineno, raw in enumerate(lines[5:], start=6):
        tok = raw.split()
        if not tok:
            continue
        if len(tok) != len(kinds):
            raise HamiltonianFileError(
                path, f"expected {len(kinds)} columns ({columns}), found {len(tok)}: {raw.strip()!r}", lineno
            )
        values: list = []
        for col, (kind, word) in enumerate(zip(kinds, tok, strict=True)):
            name = columns.split()[col]
            if kind in "isf":
                if not re.fullmatch(r"[+-]?\d+", word):
                    raise HamiltonianFileError(
                        path, f"column {col + 1} ({name}) must be an integer, got {word!r}", lineno
                    )
                v = int(word)
                if kind == "s" and v not in (0, 1):
                    raise HamiltonianFileError(
                        path, f"column {col + 1} ({name}) is a spin, 0 (up) or 1 (down), got {v}", lineno
                    )
                if kind == "i" and (v < 0 or (n_sites is not None and v >= n_sites)):
                    rng = f"0..{n_sites - 1}" if n_sites is not None else ">= 0"
                    raise HamiltonianFileError(
                        path, f"column {col + 1} ({name}) = {v} is not a site index ({rng}; Nsite = {n_sites})", lineno
                    )
            else:
                try:
                    v = float(word)
                except ValueError:
                    raise HamiltonianFileError(
                        path, f"column {col + 1} ({name}) must be a number, got {word!r}", lineno
                    ) from None
                if not math.isfinite(v):
                    raise HamiltonianFileError(path, f"column {col + 1} ({name}) is not finite: {word!r}", lineno)
            values.append(v)
        rows.append((lineno, values))
    if keyword.lower() != "locspin" and count != len(rows):
        raise HamiltonianFileError(path, f"{head[0]} = {count} on line 2, but the file has {len(rows)} rows", 2)
    return _DefFile(path, keyword, count, rows)


def _read_namelist(path: Path) -> list[tuple[int, str, str]]:
    out = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        tok = raw.split()
        if not tok or tok[0].startswith("#"):
            continue
        if len(tok) != 2:
            raise HamiltonianFileError(path, f"expected 'Keyword filename', got {raw.strip()!r}", lineno)
        key = tok[0].lower()
        if key in seen:
            raise HamiltonianFileError(path, f"keyword {tok[0]!r} appears twice (also on line {seen[key]})", lineno)
        seen[key] = lineno
        out.append((lineno, tok[0], tok[1]))
    return out


def _read_modpara(path: Path) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        tok = raw.split()
        if len(tok) < 2 or tok[0].lower() not in _MODPARA_KEYS:
            continue
        key = tok[0].lower()
        try:
            x = float(tok[1])
        except ValueError:
            x = math.nan
        if not x.is_integer():
            raise HamiltonianFileError(path, f"{tok[0]} must be an integer, got {tok[1]!r}", lineno)
        if key in found:
            raise HamiltonianFileError(path, f"{tok[0]} appears twice (also on line {found[key][1]})", lineno)
        found[key] = (int(x), lineno)
    return found


def _modpara_filling(path: Path, mp: dict[str, tuple[int, int]], n: int) -> StatedFilling | None:
    """What ``ModPara`` fixes of the filling: ``Nup``/``Ndown``, or the electron number (``Ncond``, or
    ``Ne``/``Nelectron`` pairs, which imply 2Sz = 0) and ``2Sz``, either alone (checked by
    :meth:`FileHamiltonian.sector`)."""
    if "nup" in mp or "ndown" in mp:
        line = mp.get("nup", mp.get("ndown"))[1]
        n_up, n_down = filling(path, n, mp.get("nup", (None,))[0], mp.get("ndown", (None,))[0], line, ("Nup", "Ndown"))
        return StatedFilling(n_up + n_down, n_up - n_down, str(path), line, f"Nup = {n_up}, Ndown = {n_down}")
    n_el, line, words = None, None, []
    if "ncond" in mp:
        n_el, line = mp["ncond"]
        words.append(f"Ncond = {n_el}")
    pairs = mp.get("nelectron", mp.get("ne"))
    if pairs is not None:
        name = "Nelectron" if "nelectron" in mp else "Ne"
        if n_el is not None and n_el != 2 * pairs[0]:
            raise HamiltonianFileError(
                path, f"Ncond = {n_el} electrons but {name} = {pairs[0]} pairs = {2 * pairs[0]} electrons", pairs[1]
            )
        if n_el is None:
            n_el, line = 2 * pairs[0], pairs[1]
            words.append(f"{name} = {pairs[0]} (pairs)")
    two_sz = None
    if "2sz" in mp:
        two_sz, sz_line = mp["2sz"]
        line = sz_line if line is None else line
        words.append(f"2Sz = {two_sz}")
    elif pairs is not None:
        two_sz = 0  # mVMC's singlet pairs
    if n_el is None and two_sz is None:
        return None
    where = sz_line if "2sz" in mp else line
    if n_el is not None and not 0 <= n_el <= 2 * n:
        raise HamiltonianFileError(path, f"{words[0]}: {n_el} electrons do not fit on {n} sites", line)
    if two_sz is not None and abs(two_sz) > n:
        raise HamiltonianFileError(path, f"2Sz = {two_sz} is impossible on {n} sites", where)
    if n_el is not None and two_sz is not None:
        if abs(two_sz) > n_el or (n_el + two_sz) % 2:
            raise HamiltonianFileError(path, f"{n_el} electrons cannot have 2Sz = {two_sz}", where)
        n_up, n_down = (n_el + two_sz) // 2, (n_el - two_sz) // 2
        if max(n_up, n_down) > n:
            raise HamiltonianFileError(path, f"N↑ = {n_up}, N↓ = {n_down} electrons do not fit on {n} sites", where)
    return StatedFilling(n_el, two_sz, str(path), line, ", ".join(words))


#: HPhi's CalcModel values (calcmod.def); only the canonical Hubbard model (0) is read
_CALC_MODELS = {
    0: "Hubbard",
    1: "Spin",
    2: "Kondo",
    3: "HubbardGC",
    4: "SpinGC",
    5: "KondoGC",
    6: "HubbardNConserved",
    7: "SpinlessFermion",
    8: "SpinlessFermionGC",
}
_CALC_MODEL_WHY = {
    1: "a spin model, whose rows act on spins; nqs reads electron models (CalcModel = 0)",
    2: "a Kondo model; local spins are not supported (nqs reads CalcModel = 0, Hubbard)",
    3: "grand canonical, N↑ and N↓ are free (the lowest state over all fillings) while nqs works at fixed "
    "N↑ and N↓; for one sector use CalcModel = 0 with Ncond and 2Sz in ModPara",
    4: "a grand-canonical spin model; nqs reads electron models (CalcModel = 0)",
    5: "a grand-canonical Kondo model; nqs reads CalcModel = 0 (Hubbard) at fixed N↑ and N↓",
    6: "HPhi sets it itself (Ncond without 2Sz); write CalcModel = 0 with Ncond and 2Sz in ModPara",
    7: "spinless fermions; nqs reads CalcModel = 0 (Hubbard)",
    8: "grand-canonical spinless fermions; nqs reads CalcModel = 0 (Hubbard) at fixed N↑ and N↓",
}


def _check_calcmod(path: Path) -> None:
    """Refuse an HPhi ``calcmod.def`` whose ``CalcModel`` is not the canonical Hubbard model (0)."""
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        tok = raw.split()
        if len(tok) < 2 or tok[0].startswith("#") or tok[0].lower() != "calcmodel":
            continue
        if not re.fullmatch(r"[+-]?\d+", tok[1]):
            raise HamiltonianFileError(path, f"CalcModel must be an integer, got {tok[1]!r}", lineno)
        model = int(tok[1])
        if model == 0:
            return
        name = _CALC_MODELS.get(model)
        if name is None:
            raise HamiltonianFileError(
                path, f"CalcModel = {model} is not an HPhi model (0 Hubbard, 1 Spin, ..., 5 KondoGC)", lineno
            )
        raise HamiltonianFileError(
            path, f"CalcModel = {model} ({name}) is not supported: {_CALC_MODEL_WHY[model]}", lineno
        )


def read_mvmc(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    no_options(path, "mvmc", options)
    namelist = path / "namelist.def" if path.is_dir() else path
    if not namelist.exists():
        raise HamiltonianFileError(namelist, "no such file (the mvmc format reads namelist.def)")
    base = namelist.parent
    files: dict[str, tuple[Path, int, str]] = {}
    for lineno, keyword, fname in _read_namelist(namelist):
        key = keyword.lower()
        if key in _MVMC_REFUSED:
            raise HamiltonianFileError(namelist, f"{_MVMC_REFUSED[key]} is not supported", lineno)
        if key in _MVMC_IGNORED or (key.startswith("in") and key != "interall"):
            continue
        if key not in _DEF_SPECS and key not in ("modpara", "calcmod"):
            raise HamiltonianFileError(namelist, f"unknown keyword {keyword!r}", lineno)
        target = base / fname
        if not target.is_file():
            what = "is a folder, not a file" if target.is_dir() else "does not exist"
            raise HamiltonianFileError(namelist, f"the {keyword} file {fname!r} {what} ({target})", lineno)
        files[key] = (target, lineno, keyword)

    if "calcmod" in files:
        _check_calcmod(files["calcmod"][0])
    n_sites, n_line, n_where = None, None, None
    mp: dict[str, tuple[int, int]] = {}
    if "modpara" in files:
        mp = _read_modpara(files["modpara"][0])
        if "nsite" in mp:
            n_sites, n_line = mp["nsite"]
            n_where = files["modpara"][0]
            if n_sites < 1:
                raise HamiltonianFileError(n_where, f"Nsite = {n_sites} must be positive", n_line)
    if "locspin" in files:
        loc = _read_def(files["locspin"][0], "LocSpin", n_sites)
        lpath = loc.path
        if not loc.rows:
            raise HamiltonianFileError(lpath, "LocSpin lists no sites")
        if n_sites is not None and len(loc.rows) != n_sites:
            raise HamiltonianFileError(
                lpath,
                f"LocSpin has {len(loc.rows)} rows but Nsite = {n_sites} "
                f"({n_where}:{n_line}); it needs one row per site",
            )
        n_loc = 0
        seen: set[int] = set()
        for lineno, (site, flag) in loc.rows:
            if site in seen or site >= len(loc.rows):
                raise HamiltonianFileError(lpath, f"site {site} is listed twice or out of range", lineno)
            seen.add(site)
            if flag != 0:
                raise HamiltonianFileError(
                    lpath,
                    f"site {site} is a local spin (flag {flag}); local spins (Kondo) are not supported: "
                    "every site must be itinerant (0)",
                    lineno,
                )
            n_loc += flag != 0
        if loc.count not in (n_loc, len(loc.rows)):
            raise HamiltonianFileError(
                lpath,
                f"the count {loc.count} on line 2 is neither the number of local "
                f"spins ({n_loc}) nor of sites ({len(loc.rows)})",
                2,
            )
        n_sites = len(loc.rows)
    if n_sites is None:
        raise HamiltonianFileError(namelist, "the number of sites is unknown: give ModPara with Nsite, or LocSpin")
    n = n_sites
    stated = _modpara_filling(files["modpara"][0], mp, n) if "modpara" in files else None
    n_up, n_down = (stated.sector if stated is not None else None) or (None, None)

    terms: list[Term] = []
    used = []
    for key in ("trans", "coulombintra", "coulombinter", "hund", "exchange", "pairhop", "interall"):
        if key not in files:
            continue
        fpath, _, keyword = files[key]
        df = _read_def(fpath, keyword, n)
        used.append(fpath.name)
        if key == "trans":
            hop: dict[tuple[int, int], complex] = defaultdict(complex)
            first: dict[tuple[int, int], int] = {}
            for lineno, (i, s1, j, s2, re_, im_) in df.rows:
                ops = ((orb(i, s1, n), 1), (orb(j, s2, n), 0))
                check_conserves_spin(fpath, ops, n, lineno, f"the Trans row c†_{i}{'↑↓'[s1]} c_{j}{'↑↓'[s2]}")
                t = complex(re_, im_)
                terms.append((-t, ops))
                hop[(ops[0][0], ops[1][0])] += t
                first.setdefault((ops[0][0], ops[1][0]), lineno)
            for (p, q), t in hop.items():
                partner = hop.get((q, p))
                if abs((0j if partner is None else partner) - t.conjugate()) > 1e-10 * max(1.0, abs(t)):
                    a, b = orbital_label(p, n), orbital_label(q, n)
                    got = "is missing" if partner is None else f"is {fmt(partner)}"
                    raise HamiltonianFileError(
                        fpath,
                        f"Trans is not Hermitian: t({a}, {b}) = {fmt(t)} needs t({b}, {a}) = "
                        f"{fmt(t.conjugate())}, which {got} (mVMC/HPhi require t_ijσσ' = conj(t_jiσ'σ))",
                        first[(p, q)],
                    )
        elif key == "coulombintra":
            terms += [onsite_u(u, i, n) for _, (i, u) in df.rows]
        elif key == "coulombinter":
            for _, (i, j, v) in df.rows:
                terms += density_density(v, i, j, n)
        elif key == "hund":
            for _, (i, j, v) in df.rows:
                terms += hund(v, i, j, n)
        elif key == "exchange":
            for _, (i, j, v) in df.rows:
                terms += exchange(v, i, j, n)
        elif key == "pairhop":
            for _, (i, j, v) in df.rows:
                terms += pair_hop(v, i, j, n)
        else:  # interall
            items = []
            for lineno, (i, s1, j, s2, k, s3, l, s4, re_, im_) in df.rows:
                ops = ((orb(i, s1, n), 1), (orb(j, s2, n), 0), (orb(k, s3, n), 1), (orb(l, s4, n), 0))
                check_conserves_spin(fpath, ops, n, lineno, "this InterAll term")
                term = (complex(re_, im_), ops)
                terms.append(term)
                items.append((term, lineno, "this InterAll row"))
            check_hermitian(fpath, items, n)
    if not used:
        raise HamiltonianFileError(
            namelist,
            "no Hamiltonian files (Trans, CoulombIntra, CoulombInter, Hund, Exchange, PairHop, InterAll) are listed",
        )
    op = fermion_operator(n, terms, f"mvmc files in {base.name}")
    return FileHamiltonian(op, n, n_up, n_down, f"mVMC expert files in {base} ({', '.join(used)})", stated)
