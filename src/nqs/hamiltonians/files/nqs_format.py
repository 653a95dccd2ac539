"""Format ``"nqs"``: a ``.toml`` or ``.json`` file of hopping, interaction and on-site U rows.

The keys, the physicists' convention of ``interaction`` and the Hermiticity rules are in
``docs/hamiltonian_files.md``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .inputs import filling, is_int, is_real, no_options, read_text
from .terms import (
    FileHamiltonian,
    HamiltonianFileError,
    StatedFilling,
    Term,
    check_hermitian,
    fermion_operator,
    fmt,
    onsite_u,
    orb,
)

_NQS_KEYS = ("n_sites", "n_up", "n_down", "description", "hopping", "interaction", "onsite_U", "hubbard_U")


def _key_line(text: str, key: str) -> int | None:
    m = re.search(rf'^\s*"?{re.escape(key)}"?\s*[=:]', text, flags=re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _item_line(text: str, key: str, index: int) -> int | None:
    """Line of the ``index``-th element ``[...]`` of the top-level array ``key`` (TOML or JSON)."""
    m = re.search(rf'^\s*"?{re.escape(key)}"?\s*[=:]\s*\[', text, flags=re.MULTILINE)
    if not m:
        return None
    depth, count, pos, quote = 1, -1, m.end(), None
    while pos < len(text) and depth > 0:
        ch = text[pos]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl
            continue
        elif ch == "[":
            depth += 1
            if depth == 2:
                count += 1
                if count == index:
                    return text.count("\n", 0, pos) + 1
        elif ch == "]":
            depth -= 1
        pos += 1
    return None


def read_nqs(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    no_options(path, "nqs", options)
    text = read_text(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise HamiltonianFileError(path, f"the nqs format needs a .toml or .json file, got suffix {suffix!r}")
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        line = int(m.group(1)) if m else len(text.splitlines()) if "end of document" in str(exc) else None
        raise HamiltonianFileError(path, f"invalid TOML: {exc}", line) from exc
    except json.JSONDecodeError as exc:
        raise HamiltonianFileError(path, f"invalid JSON: {exc.msg}", exc.lineno) from exc
    if not isinstance(data, dict):
        raise HamiltonianFileError(path, "the file must hold a table/object of keys")
    for key in data:
        if key not in _NQS_KEYS:
            raise HamiltonianFileError(
                path, f"unknown key {key!r} (allowed: {', '.join(_NQS_KEYS)})", _key_line(text, key)
            )
    n = data.get("n_sites")
    if not is_int(n) or n < 1:
        raise HamiltonianFileError(path, f"n_sites must be a positive integer, got {n!r}", _key_line(text, "n_sites"))
    n = int(n)
    fill_line = _key_line(text, "n_up") or _key_line(text, "n_down")
    n_up, n_down = filling(path, n, data.get("n_up"), data.get("n_down"), fill_line)
    stated = None
    if n_up is not None:
        stated = StatedFilling(n_up + n_down, n_up - n_down, str(path), fill_line, f"n_up = {n_up}, n_down = {n_down}")

    def entries(key: str, lengths: tuple[int, ...], what: str) -> list[tuple[int | None, list]]:
        raw = data.get(key, [])
        if not isinstance(raw, list):
            raise HamiltonianFileError(path, f"{key} must be a list of [{what}] rows", _key_line(text, key))
        out = []
        for k, row in enumerate(raw):
            line = _item_line(text, key, k) or _key_line(text, key)
            if not isinstance(row, list) or len(row) not in lengths:
                raise HamiltonianFileError(path, f"{key}[{k}] = {row!r}: expected [{what}]", line)
            nidx = lengths[0] - 1
            for v in row[:nidx]:
                if not is_int(v) or not 0 <= v < n:
                    raise HamiltonianFileError(
                        path, f"{key}[{k}] = {row!r}: site index {v!r} must be an integer in 0..{n - 1}", line
                    )
            for v in row[nidx:]:
                if not is_real(v):
                    raise HamiltonianFileError(path, f"{key}[{k}] = {row!r}: {v!r} is not a number", line)
            out.append((line, row))
        return out

    terms: list[Term] = []
    parts = []
    # ---- hopping: no h.c. added, Hermiticity required
    hop: dict[tuple[int, int], complex] = defaultdict(complex)
    where: dict[tuple[int, int], tuple[int | None, int, list]] = {}
    for k, (line, row) in enumerate(entries("hopping", (3, 4), "i, j, t_re, t_im?")):
        i, j = int(row[0]), int(row[1])
        t = complex(row[2], row[3] if len(row) == 4 else 0.0)
        hop[(i, j)] += t
        where.setdefault((i, j), (line, k, row))
        for s in (0, 1):
            terms.append((t, ((orb(i, s, n), 1), (orb(j, s, n), 0))))
    for (i, j), t in hop.items():
        partner = hop.get((j, i))
        value = 0j if partner is None else partner
        if abs(value - t.conjugate()) > 1e-10 * max(1.0, abs(t)):
            line, k, row = where[(i, j)]
            if i == j:
                msg = f"hopping[{k}] = {row}: the on-site t[{i}][{i}] = {fmt(t)} must be real"
            else:
                got = "is missing" if partner is None else f"is {fmt(value)}"
                msg = (
                    f"hopping[{k}] = {row}: the Hamiltonian is not Hermitian: t[{i}][{j}] = {fmt(t)} needs "
                    f"t[{j}][{i}] = {fmt(t.conjugate())}, which {got} (h.c. is not added: list both directions)"
                )
            raise HamiltonianFileError(path, msg, line)
    if hop:
        parts.append(f"{len(where)} hoppings")
    # ---- general interaction ½ Σ_σρ U_ijkl c†_iσ c†_jρ c_lρ c_kσ
    items = []
    for k, (line, row) in enumerate(entries("interaction", (5, 6), "i, j, k, l, U_re, U_im?")):
        i, j, kk, ll = (int(v) for v in row[:4])
        u = complex(row[4], row[5] if len(row) == 6 else 0.0)
        for s in (0, 1):
            for r in (0, 1):
                term = (0.5 * u, ((orb(i, s, n), 1), (orb(j, r, n), 1), (orb(ll, r, n), 0), (orb(kk, s, n), 0)))
                terms.append(term)
                items.append((term, line, f"interaction[{k}] = {row}"))
    check_hermitian(path, items, n)
    if items:
        parts.append(f"{len(items) // 4} interaction integrals")
    # ---- Hubbard shorthands
    if "onsite_U" in data and "hubbard_U" in data:
        raise HamiltonianFileError(path, "give onsite_U or hubbard_U, not both", _key_line(text, "hubbard_U"))
    if "hubbard_U" in data:
        u = data["hubbard_U"]
        if not is_real(u):
            raise HamiltonianFileError(path, f"hubbard_U must be a number, got {u!r}", _key_line(text, "hubbard_U"))
        terms += [onsite_u(float(u), i, n) for i in range(n)]
        parts.append(f"hubbard_U = {u:g}")
    if "onsite_U" in data:
        us = data["onsite_U"]
        if not isinstance(us, list) or len(us) != n or not all(is_real(u) for u in us):
            raise HamiltonianFileError(
                path, f"onsite_U must be a list of {n} numbers (one per site)", _key_line(text, "onsite_U")
            )
        terms += [onsite_u(float(u), i, n) for i, u in enumerate(us)]
        parts.append("onsite_U")
    if not terms:
        raise HamiltonianFileError(path, "the file defines no terms (hopping, interaction, onsite_U, hubbard_U)")
    op = fermion_operator(n, terms, f"nqs file {path.name}")
    return FileHamiltonian(op, n, n_up, n_down, f"nqs file {path} ({n} sites; {', '.join(parts)})", stated)
