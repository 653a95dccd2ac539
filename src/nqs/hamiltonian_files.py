"""Readers that turn interaction files into nqs fermion Hamiltonians.

``read_hamiltonian(path, format, **options)`` returns a :class:`FileHamiltonian`: a
:class:`~nqs.operators.fermion.FermionOperator` on ``2·n_sites`` orbitals (orbital ``p = site +
n_sites·spin``, spin 0 = ↑ first, the Jordan–Wigner convention of :mod:`nqs.conventions`), the number
of sites, the filling when the file states it, and a one-line description.  Use it with
:class:`~nqs.hilbert.fermions.SpinfulFermions` ``(n_sites, n_up, n_down)``.  Every problem raises
:class:`HamiltonianFileError` (a ``ValueError``) whose message reads ``"PATH:LINE: what is wrong"``,
or ``"PATH: what is wrong"`` when no line applies.  Below ``n_iσ = c†_iσ c_iσ`` and ``n_i = n_i↑ + n_i↓``.

``format="nqs"`` — a ``.toml`` or ``.json`` file
-------------------------------------------------
Top-level keys: ``n_sites`` (required), ``n_up`` and ``n_down`` (both or neither), ``description``,
and the terms (indices are 0-based sites, values real or ``[re, im]`` columns)::

    hopping     = [[i, j, t_re, t_im?], ...]          # Σ_σ t_ij c†_iσ c_jσ
    interaction = [[i, j, k, l, U_re, U_im?], ...]    # ½ Σ_σρ U_ijkl c†_iσ c†_jρ c_lρ c_kσ
    onsite_U    = [U_0, U_1, ...]                     # Σ_i U_i n_i↑ n_i↓   (or hubbard_U = U for all i)

* **No h.c. is added** to ``hopping``: the file lists every directed pair it wants, and the sum must be
  Hermitian, ``t_ji = conj(t_ij)`` (and ``t_ii`` real); a missing or mismatched partner is an error
  naming the entry.  Repeated entries add up.  A hopping ``−t`` between neighbours is therefore
  written twice, ``[i, j, -t]`` and ``[j, i, -t]``.
* ``interaction`` uses the physicists' Coulomb-integral convention ``U_ijkl = ⟨ij|V|kl⟩``
  (electron 1 goes k → i, electron 2 goes l → j, spin kept along each line): ``[i, i, i, i, U]``
  is exactly ``U n_i↑ n_i↓``; ``[i, j, i, j, V]`` with ``i ≠ j`` is ``½ V n_i n_j``, so a
  density-density ``V n_i n_j`` needs both ``[i, j, i, j, V]`` and ``[j, i, j, i, V]``.  The whole
  interaction must be Hermitian (``U_klij = conj(U_ijkl)`` up to the identity ``U_ijkl ≡ U_jilk``);
  this is checked exactly, by normal ordering, and a failure names the offending entry.

``format="mvmc"`` — mVMC / HPhi expert-mode ``*.def`` files
-----------------------------------------------------------
``path`` is the folder holding ``namelist.def`` or the namelist file itself; file names in the
namelist are relative to its folder.  Conventions, as in the mVMC manual ("Input files for Expert
mode", ``issp-center-dev/mVMC`` ``doc/.../expert.rst``), the HPhi manual
(``doc/en/source/filespecification/expertmode_en/*.rst``) and the mVMC sources ``calham.c`` (signs)
and ``readdef.c`` (parsing; ``ReadPairHopValue`` stores every PairHop row twice, as (i, j) and
(j, i), which is the "+ h.c." of the manuals)::

    Trans         i s1 j s2 Re Im   H += −t c†_{i s1} c_{j s2}          (note the minus sign; no h.c. added)
    CoulombIntra  i U               H += U n_i↑ n_i↓
    CoulombInter  i j V             H += V n_i n_j
    Hund          i j J             H += −J (n_i↑ n_j↑ + n_i↓ n_j↓)
    Exchange      i j J             H += J (c†_i↑ c_j↑ c†_j↓ c_i↓ + c†_i↓ c_j↓ c†_j↑ c_i↑)
    PairHop       i j J             H += J (c†_i↑ c_j↑ c†_i↓ c_j↓ + h.c.)
    InterAll      i s1 j s2 k s3 l s4 Re Im
                                    H += I c†_{i s1} c_{j s2} c†_{k s3} c_{l s4}   (no h.c. added)

Spin 0 = ↑, 1 = ↓; sites are 0-based.  For i ≠ j the Exchange row equals ``−J (S⁺_i S⁻_j + S⁻_i S⁺_j)``
(as HPhi's manual notes), so one bond with ``Exchange = Hund = −J/2`` and ``CoulombInter = −J/4``
is ``J S_i·S_j`` (what StdFace writes for mVMC; the t-J paragraph of the current mVMC manual pairs
these values with ``J (S_i·S_j − n_i n_j/4)``, which by its own formulas needs ``CoulombInter = −J/2``).
The PairHop row equals ``J (c†_i↑ c†_i↓ c_j↓ c_j↑ + h.c.)``.  Rows are taken literally, also for
``i = j``.  Trans must be Hermitian (``t_ijσσ' = conj(t_jiσ'σ)``) and so
must the InterAll sum (checked by normal ordering); terms that change N↑ or N↓ (spin-flip Trans or
InterAll) are refused because nqs works at fixed (N↑, N↓).

Every ``.def`` file has 5 header lines, the count on line 2 (``NTransfer 24``), then one row per line
(blank lines are skipped).  ``ModPara`` gives ``Nsite`` and the filling: ``Nup``/``Ndown``, or the
electron number ``Ncond`` (HPhi, mVMC) or ``Ne``/``Nelectron`` (mVMC: the number of electron *pairs*,
N = 2·Nelectron) with ``2Sz`` (N↑ − N↓); without ``2Sz`` the filling is left open (None), except that
an mVMC pair count implies 2Sz = 0.  ``LocSpin`` lists one row ``i flag`` per site (so its row count
is Nsite); every flag must be 0 (itinerant): local spins (Kondo) are not supported.  Its line-2 count
is the number of local spins (manual, current StdFace); the number of rows (older StdFace) is
accepted too.  Keywords for variational parameters, outputs and solver options (``Gutzwiller``,
``Jastrow``, ``Orbital``, ``TransSym``, ``OneBodyG``, ``CalcMod``, ``In*``, ...) are ignored and
their files are not opened; HPhi spin-only terms (``PairLift``, ``Ising``) are refused.

``format="stdface"`` — a StdFace standard-mode input
----------------------------------------------------
``key = value`` lines, keys case-insensitive, ``//`` comments, quotes and blanks in values ignored
(as StdFace does).  Supported: ``model = "Hubbard"`` (or ``"FermionHubbard"``), ``lattice =
"chain"`` (``L``) or ``"square"``/``"tetragonal"`` (``W``, ``L``), ``t``, ``t'``, ``U``, ``V``,
``mu``, ``h``, ``nelec``/``ncond``, ``2Sz``, ``phase0``/``phase1`` (0 or 180 degrees: periodic or
antiperiodic).  The model is StdFace's (``StdFace_Hopping`` writes Trans entries ``t`` for both
directions, i.e. ``−t (c†_i c_j + h.c.)``)::

    H = −t Σ_⟨ij⟩σ (c†_iσ c_jσ + h.c.) − t' Σ_⟨⟨ij⟩⟩σ (...) + U Σ_i n_i↑ n_i↓ + V Σ_⟨ij⟩ n_i n_j
        − mu Σ_i n_i − h Σ_i (n_i↑ − n_i↓)/2

built with :func:`nqs.hamiltonians.hubbard.hubbard` on :func:`~nqs.lattice.make_lattice` ``("chain", [L])`` or
``("square", [W, L])``, periodic, so sites are in nqs order (the spectrum is StdFace's; site labels
may differ).  Unset parameters are 0, as in StdFace.  Other lattices ("StdFace lattice X is not
supported"), other models, and keys that change the Hamiltonian in ways not covered here (``J``,
``t''``, ``V'``, ``Gamma``, anisotropic ``t0``/``t1``, tilted cells ``a0W``, ...) are errors naming
the line; solver keys (``method``, ``Lanczos_max``, ``NVMCSample``, ...) are ignored.

``format="wannier90"`` — a Wannier90 ``*_hr.dat``
-------------------------------------------------
Line 1 a comment, line 2 ``num_wann``, line 3 ``nrpts``, then the ``nrpts`` degeneracies (15 per
line), then ``nrpts · num_wann²`` rows ``R1 R2 R3 m n Re Im`` with ``H_mn(R) = ⟨m, 0|H|n, R⟩`` (m, n
1-based in the file).  As Wannier90's own interpolation ``H(k) = Σ_R e^{ik·R} H(R)/ndegen(R)``
requires, each row is divided by its degeneracy (StdFace ignores the column, which agrees whenever
the weights are 1).  The hopping enters with a plus sign (it *is* the matrix element), periodically
folded onto the supercell ``(L1, L2, L3)``::

    H = Σ_cell Σ_{R,m,n} Σ_σ t_mn(R) c†_{m,cell,σ} c_{n,cell+R,σ},    t_mn(R) = H_mn(R)/ndegen(R),

site index = ``m + num_wann · cell_index`` (0-based m; ``cell_index = (c1·L2 + c2)·L3 + c3``).  The
file must be Hermitian, ``H_nm(−R) = conj(H_mn(R))`` (to 1e-6, then symmetrized); h.c. comes from the
−R rows.  Several R folding onto one pair add up (as in :mod:`nqs.hamiltonians.hubbard`).  Options:

* ``supercell``: int or 1–3 ints (required).
* ``U``: a number or one per orbital, ``U_m Σ_cell n_{m↑} n_{m↓}``; or the path of a
  Wannier90-format ``*_ur.dat`` (StdFace/mVMC Wannier mode): the R = 0, m = n rows are on-site ``U``,
  the others density-density ``½ U_mn(R) n_{m,cell} n_{n,cell+R}`` summed over all rows (each pair
  appears as (R, m, n) and (−R, n, m)).
* ``J``: a number, the intra-cell Kanamori Hund coupling for every orbital pair m < n of a cell,
  written with the mVMC terms above, Hund(J) + Exchange(J) + PairHop(J) — i.e.
  ``−J Σ_σ n_mσ n_nσ − J (S⁺_m S⁻_n + h.c.) + J (c†_m↑ c†_m↓ c_n↓ c_n↑ + h.c.)``; or the path of a
  ``*_jr.dat`` whose rows (except R = 0, m = n) add ``½ J_mn(R)`` times those terms between
  ``(m, cell)`` and ``(n, cell+R)``, as StdFace's Wannier mode does.
* ``V``: a dict ``{(R, m, n): V}`` (R a tuple of up to 3 ints, m, n 0-based orbitals) adding
  ``V Σ_cell n_{m,cell} n_{n,cell+R}`` once per entry.
* ``energy_cutoff`` (default 1e-8): |t|, |U|, |J| below it are dropped.
* ``n_up``, ``n_down``: the filling (else None).
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import re
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .hamiltonians.hubbard import hubbard
from .lattice import make_lattice
from .operators.fermion import FermionOperator

FORMATS: tuple[str, ...] = ("nqs", "mvmc", "stdface", "wannier90")
_FORMAT_ALIASES = {"hphi": "mvmc", "w90": "wannier90"}

#: (coefficient, ((orbital, dagger), ...)) as in :class:`FermionOperator`
Term = tuple[complex, tuple[tuple[int, int], ...]]


class HamiltonianFileError(ValueError):
    """A problem in a Hamiltonian file: ``"PATH:LINE: what is wrong"`` (or ``"PATH: ..."``)."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class FileHamiltonian:
    """A Hamiltonian read from a file (see the module docstring for every format's formula)."""

    operator: FermionOperator
    n_sites: int
    n_up: int | None
    n_down: int | None
    source: str


# ============================================================================ common helpers
def _orb(site: int, spin: int, n_sites: int) -> int:
    return site + n_sites * spin


def _adjoint(ops: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((p, 1 - d) for p, d in reversed(ops))


def _density_density(coef: complex, i: int, j: int, n: int) -> list[Term]:
    """coef · n_i n_j (n = n↑ + n↓)."""
    return [(coef, ((_orb(i, s, n), 1), (_orb(i, s, n), 0), (_orb(j, r, n), 1), (_orb(j, r, n), 0)))
            for s in (0, 1) for r in (0, 1)]


def _onsite_u(coef: complex, i: int, n: int) -> Term:
    return (coef, ((i, 1), (i, 0), (i + n, 1), (i + n, 0)))


def _hund(coef: float, i: int, j: int, n: int) -> list[Term]:
    """mVMC Hund: −J (n_i↑ n_j↑ + n_i↓ n_j↓)."""
    return [(-coef, ((_orb(i, s, n), 1), (_orb(i, s, n), 0), (_orb(j, s, n), 1), (_orb(j, s, n), 0)))
            for s in (0, 1)]


def _exchange(coef: float, i: int, j: int, n: int) -> list[Term]:
    """mVMC Exchange: J (c†_i↑ c_j↑ c†_j↓ c_i↓ + c†_i↓ c_j↓ c†_j↑ c_i↑)."""
    u, d = 0, 1
    return [(coef, ((_orb(i, u, n), 1), (_orb(j, u, n), 0), (_orb(j, d, n), 1), (_orb(i, d, n), 0))),
            (coef, ((_orb(i, d, n), 1), (_orb(j, d, n), 0), (_orb(j, u, n), 1), (_orb(i, u, n), 0)))]


def _pair_hop(coef: complex, i: int, j: int, n: int) -> list[Term]:
    """mVMC PairHop: J (c†_i↑ c_j↑ c†_i↓ c_j↓ + h.c.)."""
    ops = ((_orb(i, 0, n), 1), (_orb(j, 0, n), 0), (_orb(i, 1, n), 1), (_orb(j, 1, n), 0))
    return [(coef, ops), (complex(coef).conjugate(), _adjoint(ops))]


def _kanamori(coef: float, i: int, j: int, n: int) -> list[Term]:
    return _hund(coef, i, j, n) + _exchange(coef, i, j, n) + _pair_hop(coef, i, j, n)


def _fmt(z: complex) -> str:
    z = complex(z)
    if z.imag == 0:
        return f"{z.real:g}"
    return f"({z.real:g}{z.imag:+g}j)"


def _orbital_label(p: int, n_sites: int) -> str:
    return f"{p % n_sites}{'↑' if p < n_sites else '↓'}"


def _term_label(coef: complex, key: tuple[tuple[int, ...], tuple[int, ...]], n_sites: int) -> str:
    cre, ann = key
    body = " ".join([f"c†_{_orbital_label(p, n_sites)}" for p in cre]
                    + [f"c_{_orbital_label(p, n_sites)}" for p in ann])
    return f"{_fmt(coef)}·{body}"


def _sort_sign(seq: Sequence[int]) -> int:
    """Sign of the permutation sorting ``seq`` (0 when an index repeats: c†c† or cc on one orbital)."""
    if len(set(seq)) < len(seq):
        return 0
    inversions = sum(1 for a, b in itertools.combinations(seq, 2) if a > b)
    return -1 if inversions % 2 else 1


def _normal_ordered(coef: complex, ops: Sequence[tuple[int, int]]) -> list[tuple[tuple, complex]]:
    """``coef · ops`` as a sum of normal-ordered products ``c†_{C} c_{A}`` (C, A ascending).

    Uses ``c_p c†_q = δ_pq − c†_q c_p`` and the antisymmetry of creators (annihilators) among
    themselves.  The keys ``(C, A)`` are canonical: two sums are the same operator iff their
    collected coefficients agree.
    """
    out: list[tuple[tuple, complex]] = []
    stack: list[tuple[complex, list[tuple[int, int]]]] = [(complex(coef), list(ops))]
    while stack:
        c, seq = stack.pop()
        k = next((k for k in range(len(seq) - 1) if seq[k][1] == 0 and seq[k + 1][1] == 1), None)
        if k is not None:
            stack.append((-c, seq[:k] + [seq[k + 1], seq[k]] + seq[k + 2:]))
            if seq[k][0] == seq[k + 1][0]:
                stack.append((c, seq[:k] + seq[k + 2:]))
            continue
        cre = [p for p, d in seq if d == 1]
        ann = [p for p, d in seq if d == 0]
        sign = _sort_sign(cre) * _sort_sign(ann)
        if sign:
            out.append(((tuple(sorted(cre)), tuple(sorted(ann))), c * sign))
    return out


def _check_hermitian(path: Path, items: Iterable[tuple[Term, int | None, str]], n_sites: int) -> None:
    """Raise unless Σ terms is Hermitian; ``items`` = (term, line, label of the input entry)."""
    canon: dict[tuple, complex] = defaultdict(complex)
    origin: dict[tuple, tuple[int | None, str]] = {}
    for (coef, ops), line, label in items:
        for key, c in _normal_ordered(coef, ops):
            canon[key] += c
            origin.setdefault(key, (line, label))
    scale = max((abs(c) for c in canon.values()), default=1.0)
    tol = 1e-10 * max(1.0, scale)
    for key, c in canon.items():
        partner_key = (key[1], key[0])
        partner = canon.get(partner_key, 0j)
        if abs(partner - c.conjugate()) > tol:
            line, label = origin[key]
            raise HamiltonianFileError(
                path,
                f"{label} makes the Hamiltonian non-Hermitian: it contributes {_term_label(c, key, n_sites)}, "
                f"whose conjugate {_term_label(c.conjugate(), partner_key, n_sites)} is needed, but the file "
                f"gives {_fmt(partner)} for that term (no h.c. is added)",
                line,
            )


def _check_conserves_spin(path: Path, ops: Sequence[tuple[int, int]], n_sites: int, line: int, what: str) -> None:
    d_up = sum((1 if d else -1) for p, d in ops if p < n_sites)
    if d_up:
        raise HamiltonianFileError(
            path, f"{what} changes N↑ by {d_up:+d} (a spin flip); nqs works at fixed N↑ and N↓", line
        )


def _read_text(path: Path) -> str:
    if not path.exists():
        raise HamiltonianFileError(path, "no such file")
    if path.is_dir():
        raise HamiltonianFileError(path, "is a folder, expected a file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HamiltonianFileError(path, f"cannot read the file ({exc})") from exc


def _no_options(path: Path, fmt: str, options: Mapping[str, Any]) -> None:
    if options:
        raise HamiltonianFileError(path, f"format {fmt!r} takes no options, got {', '.join(sorted(options))}")


def _filling(path: Path, n_sites: int, n_up: Any, n_down: Any, line: int | None = None,
             names: tuple[str, str] = ("n_up", "n_down")) -> tuple[int | None, int | None]:
    if n_up is None and n_down is None:
        return None, None
    if n_up is None or n_down is None:
        raise HamiltonianFileError(path, f"give both {names[0]} and {names[1]}, or neither", line)
    out = []
    for name, v in zip(names, (n_up, n_down), strict=True):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) <= n_sites:
            raise HamiltonianFileError(path, f"{name} = {v!r} is impossible on {n_sites} sites: "
                                             f"it must be an integer in 0..{n_sites}", line)
        out.append(int(v))
    return out[0], out[1]


# ============================================================================ format "nqs"
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


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _read_nqs(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    _no_options(path, "nqs", options)
    text = _read_text(path)
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
            raise HamiltonianFileError(path, f"unknown key {key!r} (allowed: {', '.join(_NQS_KEYS)})",
                                       _key_line(text, key))
    n = data.get("n_sites")
    if not _is_int(n) or n < 1:
        raise HamiltonianFileError(path, f"n_sites must be a positive integer, got {n!r}", _key_line(text, "n_sites"))
    n = int(n)
    n_up, n_down = _filling(path, n, data.get("n_up"), data.get("n_down"),
                            _key_line(text, "n_up") or _key_line(text, "n_down"))

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
                if not _is_int(v) or not 0 <= v < n:
                    raise HamiltonianFileError(
                        path, f"{key}[{k}] = {row!r}: site index {v!r} must be an integer in 0..{n - 1}", line)
            for v in row[nidx:]:
                if not _is_real(v):
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
            terms.append((t, ((_orb(i, s, n), 1), (_orb(j, s, n), 0))))
    for (i, j), t in hop.items():
        partner = hop.get((j, i))
        value = 0j if partner is None else partner
        if abs(value - t.conjugate()) > 1e-10 * max(1.0, abs(t)):
            line, k, row = where[(i, j)]
            if i == j:
                msg = f"hopping[{k}] = {row}: the on-site t[{i}][{i}] = {_fmt(t)} must be real"
            else:
                got = "is missing" if partner is None else f"is {_fmt(value)}"
                msg = (f"hopping[{k}] = {row}: the Hamiltonian is not Hermitian: t[{i}][{j}] = {_fmt(t)} needs "
                       f"t[{j}][{i}] = {_fmt(t.conjugate())}, which {got} (h.c. is not added: list both directions)")
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
                term = (0.5 * u, ((_orb(i, s, n), 1), (_orb(j, r, n), 1), (_orb(ll, r, n), 0), (_orb(kk, s, n), 0)))
                terms.append(term)
                items.append((term, line, f"interaction[{k}] = {row}"))
    _check_hermitian(path, items, n)
    if items:
        parts.append(f"{len(items) // 4} interaction integrals")
    # ---- Hubbard shorthands
    if "onsite_U" in data and "hubbard_U" in data:
        raise HamiltonianFileError(path, "give onsite_U or hubbard_U, not both", _key_line(text, "hubbard_U"))
    if "hubbard_U" in data:
        u = data["hubbard_U"]
        if not _is_real(u):
            raise HamiltonianFileError(path, f"hubbard_U must be a number, got {u!r}", _key_line(text, "hubbard_U"))
        terms += [_onsite_u(float(u), i, n) for i in range(n)]
        parts.append(f"hubbard_U = {u:g}")
    if "onsite_U" in data:
        us = data["onsite_U"]
        if not isinstance(us, list) or len(us) != n or not all(_is_real(u) for u in us):
            raise HamiltonianFileError(path, f"onsite_U must be a list of {n} numbers (one per site)",
                                       _key_line(text, "onsite_U"))
        terms += [_onsite_u(float(u), i, n) for i, u in enumerate(us)]
        parts.append("onsite_U")
    if not terms:
        raise HamiltonianFileError(path, "the file defines no terms (hopping, interaction, onsite_U, hubbard_U)")
    op = FermionOperator(2 * n, terms, name=f"nqs file {path.name}")
    return FileHamiltonian(op, n, n_up, n_down, f"nqs file {path} ({n} sites; {', '.join(parts)})")


# ============================================================================ format "mvmc"
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
    "gutzwiller", "jastrow", "spinjastrow", "dh2", "dh4", "orbital", "orbitalantiparallel", "orbitalparallel",
    "orbitalgeneral", "transsym", "opttrans", "onebodyg", "twobodyg", "twobodygex", "twist", "lattice",
    "calcmod", "spectrumvec", "singleexcitation", "singleexcitationbra", "pairexcitation", "boost", "bfrange",
    "bf", "generalrbm_physlayer", "generalrbm_hiddenlayer", "generalrbm_physhidden", "chargerbm_physlayer",
    "chargerbm_hiddenlayer", "chargerbm_physhidden", "spinrbm_physlayer", "spinrbm_hiddenlayer",
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
    lines = _read_text(path).splitlines()
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
                path, f"expected {len(kinds)} columns ({columns}), found {len(tok)}: {raw.strip()!r}", lineno)
        values: list = []
        for col, (kind, word) in enumerate(zip(kinds, tok, strict=True)):
            name = columns.split()[col]
            if kind in "isf":
                if not re.fullmatch(r"[+-]?\d+", word):
                    raise HamiltonianFileError(path, f"column {col + 1} ({name}) must be an integer, got {word!r}",
                                               lineno)
                v = int(word)
                if kind == "s" and v not in (0, 1):
                    raise HamiltonianFileError(path, f"column {col + 1} ({name}) is a spin, 0 (up) or 1 (down), "
                                                     f"got {v}", lineno)
                if kind == "i" and (v < 0 or (n_sites is not None and v >= n_sites)):
                    rng = f"0..{n_sites - 1}" if n_sites is not None else ">= 0"
                    raise HamiltonianFileError(
                        path, f"column {col + 1} ({name}) = {v} is not a site index ({rng}; Nsite = {n_sites})",
                        lineno)
            else:
                try:
                    v = float(word)
                except ValueError:
                    raise HamiltonianFileError(path, f"column {col + 1} ({name}) must be a number, got {word!r}",
                                               lineno) from None
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
    for lineno, raw in enumerate(_read_text(path).splitlines(), start=1):
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
    for lineno, raw in enumerate(_read_text(path).splitlines(), start=1):
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


def _modpara_filling(path: Path, mp: dict[str, tuple[int, int]], n: int) -> tuple[int | None, int | None]:
    if "nup" in mp or "ndown" in mp:
        line = mp.get("nup", mp.get("ndown"))[1]
        return _filling(path, n, mp.get("nup", (None,))[0], mp.get("ndown", (None,))[0], line, ("Nup", "Ndown"))
    n_el = None
    if "ncond" in mp:
        n_el, line = mp["ncond"]
    pairs = mp.get("nelectron", mp.get("ne"))
    if pairs is not None:
        if n_el is not None and n_el != 2 * pairs[0]:
            raise HamiltonianFileError(
                path, f"Ncond = {n_el} electrons but Nelectron = {pairs[0]} pairs = {2 * pairs[0]} electrons",
                pairs[1])
        if n_el is None:
            n_el, line = 2 * pairs[0], pairs[1]
    if n_el is None:
        return None, None
    if "2sz" in mp:
        two_sz, line = mp["2sz"]
    elif pairs is not None:
        two_sz = 0  # mVMC's singlet pairs
    else:
        return None, None
    if n_el < 0 or abs(two_sz) > n_el or (n_el + two_sz) % 2:
        raise HamiltonianFileError(path, f"{n_el} electrons cannot have 2Sz = {two_sz}", line)
    n_up, n_down = (n_el + two_sz) // 2, (n_el - two_sz) // 2
    if max(n_up, n_down) > n:
        raise HamiltonianFileError(path, f"N↑ = {n_up}, N↓ = {n_down} electrons do not fit on {n} sites", line)
    return n_up, n_down


def _read_mvmc(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    _no_options(path, "mvmc", options)
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
        if key not in _DEF_SPECS and key != "modpara":
            raise HamiltonianFileError(namelist, f"unknown keyword {keyword!r}", lineno)
        target = base / fname
        if not target.is_file():
            raise HamiltonianFileError(namelist, f"the {keyword} file {fname!r} does not exist ({target})", lineno)
        files[key] = (target, lineno, keyword)

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
            raise HamiltonianFileError(lpath, f"LocSpin has {len(loc.rows)} rows but Nsite = {n_sites} "
                                              f"({n_where}:{n_line}); it needs one row per site")
        n_loc = 0
        seen: set[int] = set()
        for lineno, (site, flag) in loc.rows:
            if site in seen or site >= len(loc.rows):
                raise HamiltonianFileError(lpath, f"site {site} is listed twice or out of range", lineno)
            seen.add(site)
            if flag != 0:
                raise HamiltonianFileError(
                    lpath, f"site {site} is a local spin (flag {flag}); local spins (Kondo) are not supported: "
                           "every site must be itinerant (0)", lineno)
            n_loc += flag != 0
        if loc.count not in (n_loc, len(loc.rows)):
            raise HamiltonianFileError(lpath, f"the count {loc.count} on line 2 is neither the number of local "
                                              f"spins ({n_loc}) nor of sites ({len(loc.rows)})", 2)
        n_sites = len(loc.rows)
    if n_sites is None:
        raise HamiltonianFileError(namelist, "the number of sites is unknown: give ModPara with Nsite, or LocSpin")
    n = n_sites
    n_up, n_down = _modpara_filling(files["modpara"][0], mp, n) if "modpara" in files else (None, None)

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
                ops = ((_orb(i, s1, n), 1), (_orb(j, s2, n), 0))
                _check_conserves_spin(fpath, ops, n, lineno, f"the transfer c†_{i}{'↑↓'[s1]} c_{j}{'↑↓'[s2]}")
                t = complex(re_, im_)
                terms.append((-t, ops))
                hop[(ops[0][0], ops[1][0])] += t
                first.setdefault((ops[0][0], ops[1][0]), lineno)
            for (p, q), t in hop.items():
                partner = hop.get((q, p))
                if abs((0j if partner is None else partner) - t.conjugate()) > 1e-10 * max(1.0, abs(t)):
                    a, b = _orbital_label(p, n), _orbital_label(q, n)
                    got = "is missing" if partner is None else f"is {_fmt(partner)}"
                    raise HamiltonianFileError(
                        fpath, f"Trans is not Hermitian: t({a}, {b}) = {_fmt(t)} needs t({b}, {a}) = "
                               f"{_fmt(t.conjugate())}, which {got} (mVMC/HPhi require t_ijσσ' = conj(t_jiσ'σ))",
                        first[(p, q)])
        elif key == "coulombintra":
            terms += [_onsite_u(u, i, n) for _, (i, u) in df.rows]
        elif key == "coulombinter":
            for _, (i, j, v) in df.rows:
                terms += _density_density(v, i, j, n)
        elif key == "hund":
            for _, (i, j, v) in df.rows:
                terms += _hund(v, i, j, n)
        elif key == "exchange":
            for _, (i, j, v) in df.rows:
                terms += _exchange(v, i, j, n)
        elif key == "pairhop":
            for _, (i, j, v) in df.rows:
                terms += _pair_hop(v, i, j, n)
        else:  # interall
            items = []
            for lineno, (i, s1, j, s2, k, s3, l, s4, re_, im_) in df.rows:
                ops = ((_orb(i, s1, n), 1), (_orb(j, s2, n), 0), (_orb(k, s3, n), 1), (_orb(l, s4, n), 0))
                _check_conserves_spin(fpath, ops, n, lineno, "this InterAll term")
                term = (complex(re_, im_), ops)
                terms.append(term)
                items.append((term, lineno, "this InterAll row"))
            _check_hermitian(fpath, items, n)
    if not used:
        raise HamiltonianFileError(namelist, "no Hamiltonian files (Trans, CoulombIntra, CoulombInter, Hund, "
                                             "Exchange, PairHop, InterAll) are listed")
    op = FermionOperator(2 * n, terms, name=f"mvmc files in {base.name}")
    return FileHamiltonian(op, n, n_up, n_down, f"mVMC expert files in {base} ({', '.join(used)})")


# ============================================================================ format "stdface"
_STDFACE_MODELS = {"hubbard", "fermionhubbard"}
_STDFACE_LATTICES = {"chain": "chain", "chainlattice": "chain", "square": "square", "squarelattice": "square",
                     "tetragonal": "square", "tetragonallattice": "square"}
_STDFACE_HANDLED = {"model", "lattice", "l", "w", "t", "t0", "t1", "t'", "t0'", "t1'", "u", "v", "v0", "v1", "mu",
                    "h", "nelec", "ncond", "2sz", "phase0", "phase1", "v'", "t''", "v''", "gamma"}
#: per lattice: parameter -> the StdFace keys that set it (isotropic only: they must agree)
_STDFACE_ALIASES = {"chain": {"t": ("t", "t0"), "t'": ("t'", "t0'"), "v": ("v", "v0")},
                    "square": {"t": ("t", "t0", "t1"), "t'": ("t'", "t0'", "t1'"), "v": ("v", "v0", "v1")}}
#: keys that would change the Hamiltonian but are not supported here (geometry-only keys such as
#: ``a``, ``Wx``, ``Wlength`` do not change a chain's or a square lattice's bonds and are ignored)
_STDFACE_PHYSICS = re.compile(r"^(j[0-9a-z]{0,3}'*|t[0-9]+'*|v[0-9]+'*|d|k|gamma.*|a[01][wl]|height|phase2|2s|"
                              r"lambda.*|cutoff.*)$")


def _stdface_number(path: Path, key: str, value: str, line: int) -> float:
    parts = [p for p in value.split(",") if p.strip()]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2) or (len(nums) == 2 and nums[1] != 0.0) or not math.isfinite(nums[0]):
        raise HamiltonianFileError(path, f"{key} must be a real number, got {value!r}", line)
    return nums[0]


def _read_stdface(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    _no_options(path, "stdface", options)
    text = _read_text(path)
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
                path, f"StdFace key {key!r} is not supported (this reader covers the Hubbard model on chain and "
                      "square lattices: t, t', U, V, mu, h, nelec, 2Sz, phase0, phase1)", lineno)

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
        raise HamiltonianFileError(path, f"StdFace model {kv['model'][0]!r} is not supported (only \"Hubbard\"; "
                                         "spin, Kondo and grand-canonical models are not)", mline)
    if "lattice" not in kv:
        raise HamiltonianFileError(path, "no 'lattice = ...' line")
    lat_name, lline = kv["lattice"][0].replace(" ", "").lower(), kv["lattice"][1]
    kind = _STDFACE_LATTICES.get(lat_name)
    if kind is None:
        raise HamiltonianFileError(path, f"StdFace lattice {kv['lattice'][0]!r} is not supported "
                                         "(only chain and square)", lline)
    for key, what in (("t''", "third-neighbour hopping t''"), ("v'", "next-nearest Coulomb V'"),
                      ("v''", "third-neighbour Coulomb V''"), ("gamma", "transverse field Gamma (breaks S^z)")):
        if key in kv and get(key) != 0.0:
            raise HamiltonianFileError(path, f"the {what} is not supported", kv[key][1])
    def isotropic(param: str) -> float:
        keys = [k for k in _STDFACE_ALIASES[kind][param] if k in kv]
        values = [get(k) for k in keys]
        for k, v in zip(keys, values, strict=True):
            if v != values[0]:
                raise HamiltonianFileError(path, f"{k} = {kv[k][0]} differs from {keys[0]} = {kv[keys[0]][0]}: "
                                                 "anisotropic couplings are not supported", kv[k][1])
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
            raise HamiltonianFileError(path, "W (a positive integer) is required for the square lattice",
                                       kv.get("w", ("", None))[1])
        size, phase_keys = [W, L], ("phase0", "phase1")
    modes = []
    for key in phase_keys:
        ph = get(key) % 360.0
        if ph not in (0.0, 180.0):
            raise HamiltonianFileError(path, f"{key} = {kv[key][0]}: only 0 (periodic) and 180 (antiperiodic) "
                                             "boundary phases are supported", kv[key][1])
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
                extra.append((c, ((_orb(i, s, n), 1), (_orb(i, s, n), 0))))
    if extra:
        op = op + FermionOperator(2 * n, extra)
    op = FermionOperator(2 * n, op.terms, name=f"stdface {path.name}")
    n_el = get_int("nelec")
    n_cond = get_int("ncond")
    if n_el is not None and n_cond is not None and n_el != n_cond:
        raise HamiltonianFileError(path, f"nelec = {n_el} and ncond = {n_cond} disagree", kv["ncond"][1])
    n_el = n_el if n_el is not None else n_cond
    two_sz = get_int("2sz")
    n_up = n_down = None
    if n_el is not None and two_sz is not None:
        line = kv["2sz"][1]
        if n_el < 0 or abs(two_sz) > n_el or (n_el + two_sz) % 2:
            raise HamiltonianFileError(path, f"{n_el} electrons cannot have 2Sz = {two_sz}", line)
        n_up, n_down = _filling(path, n, (n_el + two_sz) // 2, (n_el - two_sz) // 2, line)
    geometry = "x".join(str(s) for s in size)
    return FileHamiltonian(op, n, n_up, n_down,
                           f"StdFace {kind} {geometry} Hubbard from {path} (t={t:g}, t'={tp:g}, U={U:g}, V={V:g})")


# ============================================================================ format "wannier90"
@dataclass(frozen=True)
class _W90:
    path: Path
    num_wann: int
    entries: dict[tuple[tuple[int, int, int], int, int], tuple[complex, int]]  # (R, m, n) 0-based -> (value, line)


def _read_w90_file(path: Path) -> _W90:
    lines = _read_text(path).splitlines()

    def header_int(index: int, name: str) -> int:
        if len(lines) <= index or not re.fullmatch(r"\s*\d+\s*", lines[index]):
            got = repr(lines[index]) if len(lines) > index else "nothing"
            raise HamiltonianFileError(path, f"line {index + 1} must hold {name} (a positive integer), got {got}",
                                       index + 1)
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
            raise HamiltonianFileError(path, f"expected degeneracy weights (positive integers, {nrpts} in all), "
                                             f"got {lines[pos].strip()!r}", pos + 1)
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
            raise HamiltonianFileError(path, f"R = {R} inside the block of R = {r_of_block[b]} (each R needs "
                                             f"{block} consecutive rows)", lineno)
        key = (R, m - 1, k - 1)
        if key in entries:
            raise HamiltonianFileError(path, f"(R = {R}, m = {m}, n = {k}) appears twice "
                                             f"(also line {entries[key][1]})", lineno)
        entries[key] = (value / degen[b], lineno)
        count += 1
    if count != nrpts * block:
        raise HamiltonianFileError(path, f"nrpts = {nrpts} and num_wann = {num_wann} need {nrpts * block} rows, "
                                         f"found {count}", 3)
    # Hermiticity H_nm(−R) = conj(H_mn(R)), then symmetrize
    sym: dict[tuple[tuple[int, int, int], int, int], tuple[complex, int]] = {}
    for (R, m, k), (v, lineno) in entries.items():
        pkey = (tuple(-x for x in R), k, m)
        partner = entries.get(pkey)  # type: ignore[arg-type]
        if partner is None or abs(partner[0] - v.conjugate()) > 1e-6 * max(1.0, abs(v)):
            got = "is missing" if partner is None else f"is {_fmt(partner[0])} (line {partner[1]})"
            raise HamiltonianFileError(
                path, f"not Hermitian: H_{m + 1}{k + 1}(R={R}) = {_fmt(v)} needs "
                      f"H_{k + 1}{m + 1}(R={pkey[0]}) = {_fmt(v.conjugate())}, which {got}", lineno)
        sym[(R, m, k)] = (0.5 * (v + partner[0].conjugate()), lineno)
    return _W90(path, num_wann, sym)


def _supercell(path: Path, value: Any) -> tuple[int, int, int]:
    cells = [value] if _is_int(value) else list(value) if isinstance(value, Sequence) else None
    if not cells or len(cells) > 3 or not all(_is_int(c) and c >= 1 for c in cells):
        raise HamiltonianFileError(path, f"supercell must be a positive int or 1 to 3 positive ints, got {value!r}")
    cells = [int(c) for c in cells] + [1] * (3 - len(cells))
    return cells[0], cells[1], cells[2]


def _read_wannier90(path: Path, options: Mapping[str, Any]) -> FileHamiltonian:
    allowed = {"supercell", "U", "J", "V", "energy_cutoff", "n_up", "n_down"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise HamiltonianFileError(path, f"unknown option(s) {', '.join(unknown)} for format 'wannier90' "
                                         f"(allowed: {', '.join(sorted(allowed))})")
    if "supercell" not in options:
        raise HamiltonianFileError(path, "the wannier90 format needs supercell=(L1, L2, L3)")
    L = _supercell(path, options["supercell"])
    cutoff = options.get("energy_cutoff", 1e-8)
    if not _is_real(cutoff) or cutoff < 0:
        raise HamiltonianFileError(path, f"energy_cutoff must be a number >= 0, got {cutoff!r}")
    hr = _read_w90_file(path)
    nw = hr.num_wann
    cells = list(itertools.product(range(L[0]), range(L[1]), range(L[2])))
    n = nw * len(cells)
    n_up, n_down = _filling(path, n, options.get("n_up"), options.get("n_down"))

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
            terms += [(t, ((_orb(i, s, n), 1), (_orb(j, s, n), 0))) for s in (0, 1)]
    parts = [f"{n_hop} hoppings"]
    U = options.get("U")
    if isinstance(U, str | Path):
        ur = companion(U, "U")
        for (R, m, k), (u, _) in ur.entries.items():
            if abs(u) < cutoff:
                continue
            for c in cells:
                if R == (0, 0, 0) and m == k:
                    terms.append(_onsite_u(u.real, site(m, c), n))
                else:
                    terms += _density_density(0.5 * u.real, site(m, c), site(k, c, R), n)
        parts.append(f"U from {ur.path.name}")
    elif U is not None:
        us = [U] * nw if _is_real(U) else list(U) if isinstance(U, Sequence) else None
        if us is None or len(us) != nw or not all(_is_real(u) for u in us):
            raise HamiltonianFileError(path, f"U must be a number, {nw} numbers (one per orbital) or a *_ur.dat path, "
                                             f"got {U!r}")
        terms += [_onsite_u(float(us[m]), site(m, c), n) for c in cells for m in range(nw) if us[m] != 0]
        parts.append(f"U = {us if len(set(us)) > 1 else us[0]}")
    J = options.get("J")
    if isinstance(J, str | Path):
        jr = companion(J, "J")
        for (R, m, k), (jv, _) in jr.entries.items():
            if abs(jv) < cutoff or (R == (0, 0, 0) and m == k):
                continue
            for c in cells:
                terms += _kanamori(0.5 * jv.real, site(m, c), site(k, c, R), n)
        parts.append(f"J from {jr.path.name}")
    elif J is not None:
        if not _is_real(J):
            raise HamiltonianFileError(path, f"J must be a number or a *_jr.dat path, got {J!r}")
        if J != 0:
            for c in cells:
                for m, k in itertools.combinations(range(nw), 2):
                    terms += _kanamori(float(J), site(m, c), site(k, c), n)
            parts.append(f"J = {J:g}")
    V = options.get("V")
    if V is not None:
        if not isinstance(V, Mapping):
            raise HamiltonianFileError(path, f"V must be a dict {{(R, m, n): V}}, got {type(V).__name__}")
        for key, v in V.items():
            ok = (isinstance(key, tuple) and len(key) == 3 and isinstance(key[0], Sequence)
                  and 1 <= len(key[0]) <= 3 and all(_is_int(x) for x in key[0])
                  and all(_is_int(x) and 0 <= x < nw for x in key[1:]) and _is_real(v))
            if not ok:
                raise HamiltonianFileError(path, f"V entry {key!r}: {v!r} must be (R, m, n): number with R a tuple "
                                                 f"of up to 3 ints and m, n in 0..{nw - 1}")
            R = tuple(key[0]) + (0,) * (3 - len(key[0]))
            for c in cells:
                terms += _density_density(float(v), site(key[1], c), site(key[2], c, R), n)
        parts.append(f"{len(V)} V terms")
    if not terms:
        raise HamiltonianFileError(path, "no terms above energy_cutoff")
    op = FermionOperator(2 * n, terms, name=f"wannier90 {path.name}")
    geometry = "x".join(str(x) for x in L)
    return FileHamiltonian(op, n, n_up, n_down,
                           f"Wannier90 {path} on a {geometry} supercell ({nw} orbitals/cell; {', '.join(parts)})")


# ============================================================================ entry point
_READERS: dict[str, Callable[[Path, Mapping[str, Any]], FileHamiltonian]] = {
    "nqs": _read_nqs, "mvmc": _read_mvmc, "stdface": _read_stdface, "wannier90": _read_wannier90,
}


def read_hamiltonian(path: str | Path, format: str, **options: Any) -> FileHamiltonian:
    """Read a Hamiltonian file; ``format`` is one of ``nqs``, ``mvmc`` (alias ``hphi``), ``stdface``,
    ``wannier90`` (alias ``w90``).  See the module docstring for each format's formula and options.

    Raises :class:`HamiltonianFileError` (``"PATH:LINE: what is wrong"``) on any problem.
    """
    p = Path(path)
    fmt = str(format).strip().lower()
    fmt = _FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in _READERS:
        raise HamiltonianFileError(p, f"unknown format {format!r} (choose one of {', '.join(FORMATS)})")
    if not p.exists():
        raise HamiltonianFileError(p, "no such file or folder")
    return _READERS[fmt](p, options)
