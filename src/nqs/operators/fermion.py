"""Fermionic operators H = Σ_t c_t · (product of c† and c), acting on occupation configurations as moves.

Conventions (:mod:`nqs.conventions`, ``/work/shared/notes/rbm_pp.md`` §1)
--------------------------------------------------------------------------
* Occupations ``n_p ∈ {0, 1}`` (int8) on ``M`` orbitals; for spinful fermions ``p = site + n_sites·spin``
  (↑ = 0 first).  Basis states are the canonical products ``|n⟩ = c†_{p_1} ⋯ c†_{p_N}|0⟩``,
  ``p_1 < … < p_N``.
* Jordan–Wigner: ``c_p = (Π_{q<p} (−1)^{n_q}) a_p``, with ``a_p`` the sign-free hard-core operator.
  Hence ``c_p|n⟩ = (−1)^{P_p(n)} |n − e_p⟩`` (n_p = 1) and ``c†_p|n⟩ = (−1)^{P_p(n)} |n + e_p⟩``
  (n_p = 0), with the *exclusive prefix sum* ``P_p(n) = Σ_{q<p} n_q``.
* A hop, p occupied, q empty: ``c†_q c_p |n⟩ = (−1)^{Σ_{min(p,q)<m<max(p,q)} n_m} |n − e_p + e_q⟩``
  (only orbitals strictly between count; in the spin-major order the other spin never does).

Terms
-----
``FermionOperator(n_orbitals, terms)`` with ``terms`` a sequence of ``(coefficient, ops)``, where
``ops = ((p_1, d_1), (p_2, d_2), …)`` is the product ``c^{d_1}_{p_1} c^{d_2}_{p_2} ⋯`` written left
to right (``d = 1`` for c†, ``d = 0`` for c).  Any product is allowed (normal ordered or not, the
same orbital several times); ``ops = ()`` is a constant.  Examples::

    (−t, ((i, 1), (j, 0)))                  # −t c†_i c_j
    (U,  ((i, 1), (i, 0), (k, 1), (k, 0)))  # U n_i n_k
    (g,  ((i, 1), (j, 1), (l, 0), (k, 0)))  # g c†_i c†_j c_l c_k

Compilation: the action of one term on a basis state
-----------------------------------------------------
A product ``A`` of ladder operators maps ``|x'⟩`` to ``±|x⟩`` or to 0.  Per touched orbital the
sequence of operators (in order of action, right to left) must alternate c/c†, otherwise ``A = 0``;
it fixes the required value of ``n_p`` before and after.  Orbitals touched an odd number of times
*change*; those touched an even number of times only impose a condition (e.g. ``n_p = c†_p c_p``
requires ``n_p = 1``).  The sign is ``s_A(x) = s_0 · (−1)^{Σ_{p changed} P_p(x)}``, where ``s_0`` is a
constant found once by applying the operators to a reference state (untouched orbitals empty) and
correcting for the touched orbitals below each changed one: only the changed orbitals' strings
see the untouched occupations.  This is one prefix sum and a gather per configuration (jittable).

Rows, as in :mod:`nqs.operators.pauli`: for configuration ``x`` the moves give
``mels[g] = ⟨x|H|x'_g⟩``.  With ``A†|x⟩ = s|x'⟩`` one has ``⟨x|A|x'⟩ = s`` (s real), so each term is
compiled from ``A†`` = the reversed product with c ↔ c† acting on the ket ``x``, and contributes
``coefficient · s_{A†}(x) · [conditions on x hold]``.

Groups: terms that change the same set of orbitals to the same new values form one *move*
(a hop changes 2 entries, a pair hop up to 4).  A group also requires the changed orbitals to
hold the opposite values in ``x``; when that or a condition fails the element is 0 and the move
is returned as a no-op (``new_values = x[sites]``), so models never see states outside the sector.
Diagonal terms (number-operator products) go into ``diag``.
"""

from __future__ import annotations

import copy
import numbers
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

import jax.numpy as jnp
import numpy as np

from ._sparse import sparse_from_moves
from .moves import apply_moves

#: One ladder operator ``(orbital, dagger)``: dagger 1 = c†, 0 = c.
Ladder = tuple[int, int]
#: One term ``(coefficient, (ladder, ladder, …))``, the product written left to right.
FermionTerm = tuple[complex, tuple[Ladder, ...]]


@dataclass(frozen=True)
class _Action:
    """The compiled action on kets of ``A†`` for one term ``coef · A`` (see the module docstring)."""

    coef: complex  # coefficient · s_0
    changed: tuple[int, ...]  # sorted orbitals that change
    new: tuple[int, ...]  # their values after the move
    cond: tuple[tuple[int, int], ...]  # (orbital, required value) for touched, unchanged orbitals


def _term_text(coef: complex, ops: Sequence[Ladder]) -> str:
    body = " ".join(f"c{'†' if d else ''}_{p}" for p, d in ops) or "1"
    c = coef.real if coef.imag == 0 else coef
    return f"{c:g}·{body}"


def _compile_term(coef: complex, ops: tuple[Ladder, ...]) -> _Action | None:
    """Compile ``coef · A`` into the action of ``A†`` on a ket, or None when ``A = 0`` identically."""
    # A† = reversed product with daggers flipped; it acts right to left, i.e. A's factors in
    # written order, each flipped: action a = 1 − d (1 = create, 0 = annihilate).
    seq: dict[int, list[int]] = defaultdict(list)
    for p, d in ops:
        seq[p].append(1 - d)
    req: dict[int, int] = {}
    fin: dict[int, int] = {}
    for p, acts in seq.items():
        if any(a == b for a, b in zip(acts, acts[1:], strict=False)):
            return None  # c c or c† c† on the same orbital
        req[p] = 0 if acts[0] == 1 else 1
        fin[p] = acts[-1]
    # reference state: touched orbitals at their required values, all others empty
    cur = dict(req)
    sign = 1
    for p, d in ops:
        if sum(v for q, v in cur.items() if q < p) % 2:
            sign = -sign
        cur[p] = 1 - d
    changed = tuple(sorted(p for p in seq if req[p] != fin[p]))
    # s(x) = s_ref · (−1)^{Σ_{p changed} U_x(p)},  U_x(p) = P_p(x) − Σ_{q touched, q<p} req_q
    corr = sum(req[q] for p in changed for q in seq if q < p)
    if corr % 2:
        sign = -sign
    cond = tuple(sorted((p, req[p]) for p in seq if req[p] == fin[p]))
    return _Action(coef * sign, changed, tuple(fin[p] for p in changed), cond)


def _normalize_term(t: object, n_orbitals: int) -> FermionTerm:
    if not isinstance(t, Sequence) or isinstance(t, str) or len(t) != 2:
        raise ValueError(f"a fermion term is (coefficient, ((orbital, dagger), ...)), got {t!r}")
    c, ops = t
    if not isinstance(c, numbers.Number):
        raise ValueError(f"fermion term {t!r}: the coefficient must be a number")
    if not isinstance(ops, Sequence) or isinstance(ops, str):
        raise ValueError(f"fermion term {t!r}: ops must be a sequence of (orbital, dagger) pairs")
    clean: list[Ladder] = []
    for op in ops:
        if not isinstance(op, Sequence) or isinstance(op, str) or len(op) != 2:
            raise ValueError(f"fermion term {t!r}: each factor is (orbital, dagger), got {op!r}")
        p, d = op
        if not isinstance(p, numbers.Integral) or isinstance(p, bool) or not 0 <= int(p) < n_orbitals:
            raise ValueError(f"fermion term {t!r}: orbital {p!r} outside 0..{n_orbitals - 1}")
        if d not in (0, 1):  # also accepts True/False
            raise ValueError(f"fermion term {t!r}: dagger must be 1 (c†) or 0 (c), got {d!r}")
        clean.append((int(p), int(d)))
    return complex(c), tuple(clean)  # type: ignore[arg-type]


def _pad(rows: Sequence[Sequence[int]], width: int, fill: int) -> np.ndarray:
    out = np.full((len(rows), max(width, 1)), fill, dtype=np.int32)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out


@dataclass(frozen=True, eq=False)
class FermionOperator:
    """H = Σ_t c_t · Π (c or c†) on ``n_orbitals`` fermionic orbitals (see the module docstring).

    The same move interface as :class:`~nqs.operators.pauli.PauliSum`: :meth:`moves` (jittable),
    :meth:`elements` (numpy or jax.numpy), :meth:`to_sparse` / :meth:`to_dense` on a
    :class:`~nqs.hilbert.fermions.SpinfulFermions` sector, :attr:`is_real`, :attr:`n_conn`.
    """

    n_orbitals: int
    terms: tuple[FermionTerm, ...]
    name: str = "fermion"

    def __init__(self, n_orbitals: int, terms: Iterable[Any], name: str = "fermion"):
        if not isinstance(n_orbitals, numbers.Integral) or n_orbitals < 1:
            raise ValueError(f"n_orbitals must be a positive integer, got {n_orbitals!r}")
        object.__setattr__(self, "n_orbitals", int(n_orbitals))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "terms", tuple(_normalize_term(t, int(n_orbitals)) for t in terms))
        object.__setattr__(self, "_compiled", self._compile())

    # ------------------------------------------------------------------ compile
    def _compile(self) -> dict[str, Any]:
        M = self.n_orbitals
        pad_y = 2 * M  # index of the constant 1 in ye = (n, 1 − n, 1)

        def yidx(p: int, value: int) -> int:
            return p if value == 1 else M + p

        diag: dict[tuple, complex] = defaultdict(complex)
        groups: dict[tuple, dict[tuple, complex]] = defaultdict(lambda: defaultdict(complex))
        example: dict[tuple, int] = {}
        for t_index, (c, ops) in enumerate(self.terms):
            if c == 0:
                continue
            act = _compile_term(c, ops)
            if act is None:
                continue
            if act.changed:
                key = (act.changed, act.new)
                groups[key][act.cond] += act.coef
                example.setdefault(key, t_index)
            else:
                diag[act.cond] += act.coef
        diag = {k: v for k, v in diag.items() if v != 0}
        groups_clean = {}
        for key, by_cond in groups.items():
            kept = {k: v for k, v in by_cond.items() if v != 0}
            if kept:
                groups_clean[key] = kept
        keys = sorted(groups_clean)

        diag_keys = sorted(diag)
        diag_coef = np.array([diag[k] for k in diag_keys], dtype=complex)
        diag_cond = _pad(
            [[yidx(p, v) for p, v in k] for k in diag_keys], max((len(k) for k in diag_keys), default=0), pad_y
        )

        kmove = max((len(ch) for ch, _ in keys), default=0)
        move_sites = _pad([list(ch) for ch, _ in keys], kmove, M)
        move_new = _pad([list(nv) for _, nv in keys], kmove, 0).astype(np.int8)
        move_req = _pad([[yidx(p, 1 - v) for p, v in zip(ch, nv, strict=True)] for ch, nv in keys], kmove, pad_y)
        nt = max((len(groups_clean[k]) for k in keys), default=0)
        kc = max((len(cond) for k in keys for cond in groups_clean[k]), default=0)
        term_coef = np.zeros((len(keys), max(nt, 1)), dtype=complex)
        term_cond = np.full((len(keys), max(nt, 1), max(kc, 1)), pad_y, dtype=np.int32)
        for g, k in enumerate(keys):
            for t, (cond, coef) in enumerate(sorted(groups_clean[k].items())):
                term_coef[g, t] = coef
                term_cond[g, t, : len(cond)] = [yidx(p, v) for p, v in cond]

        all_c = np.concatenate([diag_coef, term_coef.ravel()])
        is_real = bool(np.all(np.abs(all_c.imag) <= 1e-15 * max(1.0, float(np.abs(all_c).max(initial=0)))))
        cast = (lambda a: np.ascontiguousarray(a.real)) if is_real else (lambda a: a)
        return {
            "diag_coef": cast(diag_coef),
            "diag_cond": diag_cond,
            "diag_keys": diag_keys,
            "move_sites": move_sites,
            "move_new": move_new,
            "move_req": move_req,
            "term_coef": cast(term_coef),
            "term_cond": term_cond,
            "group_keys": keys,
            "group_example": [example[k] for k in keys],
            "is_real": is_real,
        }

    # ------------------------------------------------------------------ sectors of fixed filling
    #: At most this many connections apply to any configuration of the sector it was set for
    #: (:meth:`for_sector`); local energies then evaluate only those (None: all ``n_conn``).
    max_active: int | None = None

    def active_bound(self, n_up: int, n_down: int) -> int:
        """An upper bound on the moves that apply to one configuration with (N↑, N↓) electrons.

        Every move needs some orbital occupied (an electron leaves it); counted under that orbital, the
        applicable moves are at most the sum of the counts of the N↑ (N↓) most-counted ↑ (↓) orbitals.
        For the Hubbard model on the 4×4 torus: 5·4 + 5·4 = 40 of the 128 hops.
        """
        M, L = self.n_orbitals, self.n_orbitals // 2
        req = self._compiled["move_req"]
        counts = np.zeros(M, dtype=np.int64)
        for row in req:
            occ = [int(i) for i in row if i < M]  # entries y = n_p (the orbital must hold an electron)
            if not occ:
                return self.n_conn
            counts[occ[0]] += 1
        if M % 2:
            return self.n_conn
        top = [np.sort(counts[b * L : (b + 1) * L])[::-1][:n] for b, n in ((0, n_up), (1, n_down))]
        return int(min(self.n_conn, sum(int(t.sum()) for t in top)))

    def for_sector(self, n_up: int, n_down: int) -> FermionOperator:
        """This operator with :attr:`max_active` set for the (N↑, N↓) sector (same terms, same matrix)."""
        op = copy.copy(self)
        object.__setattr__(op, "max_active", self.active_bound(n_up, n_down))
        return op

    # ------------------------------------------------------------------ properties
    @property
    def is_real(self) -> bool:
        """True when every matrix element is real (then ``mels`` are float64)."""
        return self._compiled["is_real"]

    @property
    def n_conn(self) -> int:
        """Number of off-diagonal move groups G (connected configurations per x, at most)."""
        return self._compiled["move_sites"].shape[0]

    @property
    def max_changes(self) -> int:
        """k: the most entries one move changes (2 for hops, 4 for pair hops)."""
        return self._compiled["move_sites"].shape[1]

    @property
    def n_diagonal_terms(self) -> int:
        return len(self._compiled["diag_keys"])

    # ------------------------------------------------------------------ action
    def _elements(self, x, xp):
        c = self._compiled
        xi = x.astype(xp.int32)
        ones = xp.ones(x.shape[:-1] + (1,), dtype=xp.int32)
        ye = xp.concatenate([xi, 1 - xi, ones], axis=-1)  # (n_p, 1 − n_p, 1)
        dcoef = c["diag_coef"]
        if len(dcoef):
            diag = (xp.prod(ye[..., c["diag_cond"]], axis=-1) * dcoef).sum(-1)
        else:
            diag = xp.zeros(x.shape[:-1], dtype=dcoef.dtype)
        if self.n_conn == 0:
            empty = xp.zeros(x.shape[:-1] + (0,), dtype=dcoef.dtype)
            return diag, empty, xp.zeros(x.shape[:-1] + (0,), dtype=xp.int32)
        prefix = xp.cumsum(xi, axis=-1) - xi  # P_p = Σ_{q<p} n_q
        pe = xp.concatenate([prefix, xp.zeros_like(ones)], axis=-1)  # padding site M → 0
        parity = pe[..., c["move_sites"]].sum(-1) % 2
        valid = xp.prod(ye[..., c["move_req"]], axis=-1)
        amp = (xp.prod(ye[..., c["term_cond"]], axis=-1) * c["term_coef"]).sum(-1)
        mels = (1 - 2 * parity) * valid * amp
        return diag, mels, valid

    def elements(self, x, xp=jnp):
        """Matrix elements for occupations ``x`` of shape (..., n_orbitals).

        Returns ``diag`` (...,) = ⟨x|H|x⟩ and ``mels`` (..., n_conn) = ⟨x|H|x'_g⟩, Jordan–Wigner
        sign included.  ``xp`` is ``jax.numpy`` (jittable) or ``numpy`` (exact diagonalization).
        """
        diag, mels, _ = self._elements(x, xp)
        return diag, mels

    def moves(self, x):
        """Moves to the connected configurations of one configuration ``x`` (n_orbitals,), jittable.

        Returns ``(diag, mels, sites, new_values, mask)`` with shapes (), (G,), (G, k), (G, k), (G, k).
        Padded entries hold site ``n_orbitals`` (dropped by :func:`apply_moves`).  A move that does not
        apply to ``x`` has ``mels = 0`` and ``new_values = x[sites]`` (a no-op).
        """
        diag, mels, valid = self._elements(x, jnp)
        sites = jnp.asarray(self._compiled["move_sites"])
        mask = sites < self.n_orbitals
        old = jnp.take(x, sites, mode="clip")
        new = jnp.where((valid > 0)[:, None], jnp.asarray(self._compiled["move_new"]), old)
        return diag, mels, sites, new.astype(x.dtype), mask

    def connected(self, x):
        """Connected configurations x'_g (G, n_orbitals) and elements, for one x (n_orbitals,)."""
        diag, mels, sites, new_values, _ = self.moves(x)
        return diag, mels, apply_moves(x, sites, new_values)

    # ------------------------------------------------------------------ sectors
    def _check_sector(self, hilbert) -> None:
        if hilbert.n_orbitals != self.n_orbitals:
            raise ValueError(
                f"the operator {self.name!r} acts on {self.n_orbitals} orbitals but the Hilbert space "
                f"({hilbert.describe()}) has {hilbert.n_orbitals}"
            )
        n = hilbert.n_sites
        c = self._compiled
        for (changed, new), t_index in zip(c["group_keys"], c["group_example"], strict=True):
            # a group is the move x → x' of the row x; the term itself maps |x'⟩ to |x⟩
            d_up = -sum(2 * v - 1 for p, v in zip(changed, new, strict=True) if p < n)
            d_dn = -sum(2 * v - 1 for p, v in zip(changed, new, strict=True) if p >= n)
            if d_up or d_dn:
                coef, ops = self.terms[t_index]
                raise ValueError(
                    f"the operator {self.name!r} changes (N↑, N↓) by ({d_up:+d}, {d_dn:+d}) in the term "
                    f"{_term_text(coef, ops)}, so it leaves the sector ({hilbert.describe()})"
                )

    def to_sparse(self, hilbert, chunk: int = 1 << 16):
        """Sparse CSR matrix ⟨x|H|x'⟩ on ``hilbert``'s (N↑, N↓) sector (rows and columns sorted by code).

        Raises ValueError when a term changes N↑ or N↓.
        """
        self._check_sector(hilbert)
        c = self._compiled
        one = np.int64(1)
        clear = np.zeros(self.n_conn, dtype=np.int64)
        setb = np.zeros(self.n_conn, dtype=np.int64)
        for g, (changed, new) in enumerate(c["group_keys"]):
            for p, v in zip(changed, new, strict=True):
                clear[g] |= one << np.int64(p)
                if v:
                    setb[g] |= one << np.int64(p)
        return sparse_from_moves(self, hilbert, lambda cc: (cc[:, None] & ~clear[None, :]) | setb[None, :], chunk)

    def to_dense(self, hilbert) -> np.ndarray:
        return self.to_sparse(hilbert).toarray()

    def trace_sector(self, hilbert) -> float | complex:
        """E∞ = Tr H / dim over ``hilbert``'s (N↑, N↓) sector, without enumerating it.

        Only diagonal terms contribute.  A product of conditions with ``a_σ`` orbitals of spin σ
        required occupied and ``b_σ`` required empty holds on a fraction
        ``Π_σ C(L − a_σ − b_σ, N_σ − a_σ) / C(L, N_σ)`` of the sector (L = n_sites); e.g.
        ``U Σ_i n_i↑ n_i↓`` gives ``U · N↑ · N↓ / L``.  This is the V-score's reference energy.
        """
        if hilbert.n_orbitals != self.n_orbitals:
            raise ValueError(
                f"the operator {self.name!r} acts on {self.n_orbitals} orbitals but the Hilbert space "
                f"({hilbert.describe()}) has {hilbert.n_orbitals}"
            )
        L = hilbert.n_sites
        counts = ((hilbert.n_up, 0), (hilbert.n_down, L))
        total = 0j
        for cond, coef in zip(self._compiled["diag_keys"], self._compiled["diag_coef"], strict=True):
            frac = 1.0
            for n_sigma, offset in counts:
                a = sum(1 for p, v in cond if offset <= p < offset + L and v == 1)
                b = sum(1 for p, v in cond if offset <= p < offset + L and v == 0)
                free, need = L - a - b, n_sigma - a
                frac *= comb(free, need) / comb(L, n_sigma) if 0 <= need <= free else 0.0
            total += complex(coef) * frac
        return total.real if self.is_real else total

    # ------------------------------------------------------------------ algebra
    def adjoint(self) -> FermionOperator:
        """H† = Σ_t conj(c_t) · (reversed product with c ↔ c†)."""
        terms = [(np.conj(c), tuple((p, 1 - d) for p, d in reversed(ops))) for c, ops in self.terms]
        return FermionOperator(self.n_orbitals, terms, name=self.name)

    def __add__(self, other: FermionOperator) -> FermionOperator:
        if not isinstance(other, FermionOperator):
            return NotImplemented
        if other.n_orbitals != self.n_orbitals:
            raise ValueError("cannot add fermion operators on different numbers of orbitals")
        return FermionOperator(self.n_orbitals, self.terms + other.terms, name=self.name)

    def __mul__(self, scalar: complex) -> FermionOperator:
        if not isinstance(scalar, numbers.Number):
            return NotImplemented
        return FermionOperator(self.n_orbitals, [(scalar * c, ops) for c, ops in self.terms], name=self.name)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return (
            f"FermionOperator({self.name!r}, {self.n_orbitals} orbitals, {len(self.terms)} terms, "
            f"{self.n_conn} move groups)"
        )
