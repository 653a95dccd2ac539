"""The term algebra shared by the Hamiltonian-file readers.

Every reader turns its rows into :data:`Term` s, ``(coefficient, ((orbital, dagger), ...))`` as in
:class:`~nqs.operators.fermion.FermionOperator`, on orbitals ``p = site + n_sites·spin`` (spin 0 = ↑
first, the Jordan–Wigner order of :mod:`nqs.conventions`), and :func:`fermion_operator` makes the
operator.  The two-body builders follow the mVMC/HPhi expert-mode definitions (CoulombIntra,
CoulombInter, Hund, Exchange, PairHop); :func:`check_hermitian` decides Hermiticity exactly by normal
ordering.  Formulas and sign conventions: ``docs/hamiltonian_files.md``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...operators.fermion import FermionOperator

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
class StatedFilling:
    """What a file fixes of the filling: the electron number ``n_electrons`` and ``two_sz`` = N↑ − N↓ (either
    may be None) and where it says so: ``path``, ``line`` and ``text`` (the keywords as written, e.g.
    ``"Ncond = 6, 2Sz = 0"``)."""

    n_electrons: int | None
    two_sz: int | None
    path: str
    line: int | None
    text: str

    @property
    def sector(self) -> tuple[int, int] | None:
        """``(N↑, N↓)`` when both numbers are fixed, else None."""
        if self.n_electrons is None or self.two_sz is None:
            return None
        return (self.n_electrons + self.two_sz) // 2, (self.n_electrons - self.two_sz) // 2


@dataclass(frozen=True)
class FileHamiltonian:
    """A Hamiltonian read from a file: a fermion operator on ``2·n_sites`` orbitals, the filling when the
    file states it (else None), a one-line description (formulas: ``docs/hamiltonian_files.md``) and what the
    file fixes of the filling, also when it fixes only N or only 2S^z (``stated``; :meth:`sector`)."""

    operator: FermionOperator
    n_sites: int
    n_up: int | None
    n_down: int | None
    source: str
    stated: StatedFilling | None = None

    def sector(
        self, n_up: int | None = None, n_down: int | None = None, keys: tuple[str, str] = ("n_up", "n_down")
    ) -> tuple[int | None, int | None]:
        """The ``(N↑, N↓)`` to work in: the requested ``n_up``, ``n_down`` (None: not chosen) checked against
        what the file fixes.

        * The file fixes N and 2S^z: the requested numbers must agree with them (or be None).
        * The file fixes only N (an electron count without ``2Sz``: a model with free S^z, HPhi's
          HubbardNConserved) or only 2S^z: the requested numbers must choose the sector, consistently;
          one of them is enough when the file's number fixes the other.
        * The file fixes nothing: the requested numbers, unchecked.

        Raises :class:`HamiltonianFileError` naming the file's line and keywords (and ``keys``, the
        names of the requested numbers in messages) otherwise.
        """
        s = self.stated
        if s is None or (s.n_electrons is None and s.two_sz is None):
            return n_up, n_down
        N, M = s.n_electrons, s.two_sz
        ku, kd = keys
        su, sd = (k.rsplit(".", 1)[-1] for k in keys)
        asked = ", ".join(f"{k} = {v}" for k, v in ((ku, n_up), (kd, n_down)) if v is not None)
        if s.sector is not None:
            fu, fd = s.sector
            if (n_up is not None and n_up != fu) or (n_down is not None and n_down != fd):
                raise HamiltonianFileError(
                    s.path,
                    f"{s.text} fix N↑ = {fu}, N↓ = {fd}, but the config asks for {asked}; "
                    "remove them from the config or make them agree with the file",
                    s.line,
                )
            return fu, fd
        if n_up is None and n_down is None:
            if N is not None:
                raise HamiltonianFileError(
                    s.path,
                    f"{s.text} gives the electron number without 2Sz: the file's model has a free S^z (HPhi's "
                    "HubbardNConserved, the lowest state over all S^z), while nqs works at fixed N↑ and N↓; "
                    f"give 2Sz in the file, or choose the sector with {ku} and {kd} ({su} + {sd} = {N})",
                    s.line,
                )
            raise HamiltonianFileError(
                s.path,
                f"{s.text} gives 2S^z without the electron number; give it in the file (Ncond), "
                f"or choose the sector with {ku} and {kd} ({su} − {sd} = {M})",
                s.line,
            )
        if n_up is None:
            n_up = N - n_down if N is not None else n_down + M
        if n_down is None:
            n_down = N - n_up if N is not None else n_up - M
        fixed = f"N↑ + N↓ = {N}" if N is not None else f"N↑ − N↓ = {M}"
        if (N is not None and n_up + n_down != N) or (M is not None and n_up - n_down != M) or min(n_up, n_down) < 0:
            raise HamiltonianFileError(
                s.path,
                f"{s.text} fixes {fixed}, but the config asks for {asked}; make them agree with the file",
                s.line,
            )
        return n_up, n_down


# ============================================================================ term builders
def orb(site: int, spin: int, n_sites: int) -> int:
    """Orbital index ``site + n_sites·spin`` (spin 0 = ↑, 1 = ↓)."""
    return site + n_sites * spin


def _adjoint(ops: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((p, 1 - d) for p, d in reversed(ops))


def density_density(coef: complex, i: int, j: int, n: int) -> list[Term]:
    """coef · n_i n_j (n = n↑ + n↓)."""
    return [
        (coef, ((orb(i, s, n), 1), (orb(i, s, n), 0), (orb(j, r, n), 1), (orb(j, r, n), 0)))
        for s in (0, 1)
        for r in (0, 1)
    ]


def onsite_u(coef: complex, i: int, n: int) -> Term:
    """coef · n_i↑ n_i↓."""
    return (coef, ((i, 1), (i, 0), (i + n, 1), (i + n, 0)))


def hund(coef: float, i: int, j: int, n: int) -> list[Term]:
    """mVMC Hund: −J (n_i↑ n_j↑ + n_i↓ n_j↓)."""
    return [(-coef, ((orb(i, s, n), 1), (orb(i, s, n), 0), (orb(j, s, n), 1), (orb(j, s, n), 0))) for s in (0, 1)]


def exchange(coef: float, i: int, j: int, n: int) -> list[Term]:
    """mVMC Exchange: J (c†_i↑ c_j↑ c†_j↓ c_i↓ + c†_i↓ c_j↓ c†_j↑ c_i↑)."""
    u, d = 0, 1
    return [
        (coef, ((orb(i, u, n), 1), (orb(j, u, n), 0), (orb(j, d, n), 1), (orb(i, d, n), 0))),
        (coef, ((orb(i, d, n), 1), (orb(j, d, n), 0), (orb(j, u, n), 1), (orb(i, u, n), 0))),
    ]


def pair_hop(coef: complex, i: int, j: int, n: int) -> list[Term]:
    """mVMC PairHop: J (c†_i↑ c_j↑ c†_i↓ c_j↓ + h.c.)."""
    ops = ((orb(i, 0, n), 1), (orb(j, 0, n), 0), (orb(i, 1, n), 1), (orb(j, 1, n), 0))
    return [(coef, ops), (complex(coef).conjugate(), _adjoint(ops))]


def kanamori(coef: float, i: int, j: int, n: int) -> list[Term]:
    """Kanamori Hund coupling: Hund + Exchange + PairHop, each with ``coef``."""
    return hund(coef, i, j, n) + exchange(coef, i, j, n) + pair_hop(coef, i, j, n)


# ============================================================================ labels for messages
def fmt(z: complex) -> str:
    """A coefficient for an error message: ``1.5`` or ``(1+2j)``."""
    z = complex(z)
    if z.imag == 0:
        return f"{z.real:g}"
    return f"({z.real:g}{z.imag:+g}j)"


def orbital_label(p: int, n_sites: int) -> str:
    """``2↑`` for orbital ``p = 2``, ``2↓`` for ``p = 2 + n_sites``."""
    return f"{p % n_sites}{'↑' if p < n_sites else '↓'}"


def _term_label(coef: complex, key: tuple[tuple[int, ...], tuple[int, ...]], n_sites: int) -> str:
    cre, ann = key
    body = " ".join([f"c†_{orbital_label(p, n_sites)}" for p in cre] + [f"c_{orbital_label(p, n_sites)}" for p in ann])
    return f"{fmt(coef)}·{body}"


# ============================================================================ normal ordering, checks
def _sort_sign(seq: Sequence[int]) -> int:
    """Sign of the permutation sorting ``seq`` (0 when an index repeats: c†c† or cc on one orbital)."""
    if len(set(seq)) < len(seq):
        return 0
    inversions = sum(1 for a, b in itertools.combinations(seq, 2) if a > b)
    return -1 if inversions % 2 else 1


def normal_ordered(coef: complex, ops: Sequence[tuple[int, int]]) -> list[tuple[tuple, complex]]:
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
            stack.append((-c, seq[:k] + [seq[k + 1], seq[k]] + seq[k + 2 :]))
            if seq[k][0] == seq[k + 1][0]:
                stack.append((c, seq[:k] + seq[k + 2 :]))
            continue
        cre = [p for p, d in seq if d == 1]
        ann = [p for p, d in seq if d == 0]
        sign = _sort_sign(cre) * _sort_sign(ann)
        if sign:
            out.append(((tuple(sorted(cre)), tuple(sorted(ann))), c * sign))
    return out


def check_hermitian(path: Path, items: Iterable[tuple[Term, int | None, str]], n_sites: int) -> None:
    """Raise unless Σ terms is Hermitian; ``items`` = (term, line, label of the input entry)."""
    canon: dict[tuple, complex] = defaultdict(complex)
    origin: dict[tuple, tuple[int | None, str]] = {}
    for (coef, ops), line, label in items:
        for key, c in normal_ordered(coef, ops):
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
                f"gives {fmt(partner)} for that term (no h.c. is added)",
                line,
            )


def check_conserves_spin(path: Path, ops: Sequence[tuple[int, int]], n_sites: int, line: int, what: str) -> None:
    """Raise if ``ops`` changes N↑ (the readers keep N↑ and N↓ fixed)."""
    d_up = sum((1 if d else -1) for p, d in ops if p < n_sites)
    if d_up:
        raise HamiltonianFileError(
            path,
            f"{what} changes N↑ by {d_up:+d} (a spin flip, which changes S^z); nqs works at fixed N↑ and N↓, "
            "so a model with spin-flip terms is not supported",
            line,
        )


# ============================================================================ the operator
def fermion_operator(n_sites: int, terms: Sequence[Term], name: str) -> FermionOperator:
    """The operator ``Σ terms`` on the ``2·n_sites`` orbitals of ``n_sites`` spinful sites."""
    return FermionOperator(2 * n_sites, terms, name=name)
