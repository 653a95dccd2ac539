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
class FileHamiltonian:
    """A Hamiltonian read from a file: a fermion operator on ``2·n_sites`` orbitals, the filling when the
    file states it (else None) and a one-line description (formulas: ``docs/hamiltonian_files.md``)."""

    operator: FermionOperator
    n_sites: int
    n_up: int | None
    n_down: int | None
    source: str


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
            path, f"{what} changes N↑ by {d_up:+d} (a spin flip); nqs works at fixed N↑ and N↓", line
        )


# ============================================================================ the operator
def fermion_operator(n_sites: int, terms: Sequence[Term], name: str) -> FermionOperator:
    """The operator ``Σ terms`` on the ``2·n_sites`` orbitals of ``n_sites`` spinful sites."""
    return FermionOperator(2 * n_sites, terms, name=name)
