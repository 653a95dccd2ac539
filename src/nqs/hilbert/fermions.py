"""Spinful fermions on ``n_sites`` sites at fixed particle numbers (N↑, N↓).

Encoding (see :mod:`nqs.conventions`)
-------------------------------------
* A configuration is an int8 occupation vector ``n`` of length ``2·n_sites`` with ``n_p ∈ {0, 1}``.
  Orbital ``p = site + n_sites·spin`` with spin 0 = ↑ and 1 = ↓, so the ↑ block comes first:
  ``n = (n_{0↑}, …, n_{L−1,↑}, n_{0↓}, …, n_{L−1,↓})``.
* The basis state is the canonical product ``|n⟩ = c†_{p_1} c†_{p_2} ⋯ c†_{p_N} |0⟩`` with
  ``p_1 < p_2 < … < p_N`` the occupied orbitals, and the Jordan–Wigner convention is
  ``c_p = (Π_{q<p} (−1)^{n_q}) a_p`` (the string runs over orbitals of smaller index), as in
  ``/work/shared/notes/rbm_pp.md`` §1.  Operators with these signs live in
  :mod:`nqs.operators.fermion`.
* Integer code: bit ``p`` (value ``2**p``) is set when orbital ``p`` is occupied, i.e.
  ``code = code↑ + 2**n_sites · code↓``.  Enumerations are sorted by code (↓ part major).

The sector has ``C(n_sites, N↑) · C(n_sites, N↓)`` states.  ``n_sites`` is the number of lattice
sites; the configuration length is :attr:`SpinfulFermions.n_orbitals` ``= 2·n_sites``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from math import comb

import jax
import jax.numpy as jnp
import numpy as np

#: Codes must fit in int64: at most 31 sites (62 orbitals).
MAX_CODE_SITES = 31
#: Refuse to enumerate sectors larger than this (memory: 8 bytes per code, 2·n_sites per state).
MAX_ENUMERATION_STATES = 1 << 28


def _as_count(name: str, value: object, n_sites: int) -> int:
    """``value`` as an int in 0..n_sites, or ValueError with a one-line message naming it."""
    rule = f"0 <= {name} <= {n_sites}"
    ok_type = isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    if not ok_type and isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        if float(value).is_integer():
            value, ok_type = int(value), True
    if not ok_type:
        raise ValueError(f"{name} = {value!r} is impossible on {n_sites} sites: it must be an integer with {rule}")
    v = int(value)  # type: ignore[call-overload]
    if not 0 <= v <= n_sites:
        raise ValueError(f"{name} = {v} is impossible on {n_sites} sites: {rule}")
    return v


def fixed_popcount_codes(n_bits: int, k: int) -> np.ndarray:
    """Sorted int64 codes of ``n_bits``-bit integers with exactly ``k`` bits set, shape (C(n_bits, k),).

    Built bit by bit: the codes with the top bit clear (all smaller) precede those with it set,
    so concatenation keeps them sorted.
    """
    if not 0 <= k <= n_bits:
        return np.zeros(0, dtype=np.int64)
    rows = [np.zeros(1, dtype=np.int64)] + [np.zeros(0, dtype=np.int64)] * k
    for m in range(n_bits):
        bit = np.int64(1) << np.int64(m)
        rows = [rows[0]] + [np.concatenate([rows[j], rows[j - 1] | bit]) for j in range(1, k + 1)]
    return rows[k]


@dataclass(frozen=True)
class SpinfulFermions:
    """Spin-1/2 fermions on ``n_sites`` sites with ``n_up`` ↑ and ``n_down`` ↓ electrons.

    Configurations are int8 occupations of length ``2·n_sites`` (↑ block, then ↓ block).
    Impossible fillings raise ``ValueError``, e.g. ``SpinfulFermions(8, 9, 4)`` →
    ``n_up = 9 is impossible on 8 sites: 0 <= n_up <= 8``.
    """

    n_sites: int
    n_up: int
    n_down: int

    def __post_init__(self) -> None:
        n = self.n_sites
        if not isinstance(n, numbers.Integral) or isinstance(n, bool | np.bool_) or n < 1:
            raise ValueError(f"spinful fermions need a positive integer number of sites, got n_sites = {n!r}")
        object.__setattr__(self, "n_sites", int(n))
        object.__setattr__(self, "n_up", _as_count("n_up", self.n_up, int(n)))
        object.__setattr__(self, "n_down", _as_count("n_down", self.n_down, int(n)))

    # ----------------------------------------------------------------- sector
    @property
    def n_orbitals(self) -> int:
        """Configuration length ``2·n_sites`` (spin orbitals, ↑ first)."""
        return 2 * self.n_sites

    @property
    def size(self) -> int:
        """Alias of :attr:`n_orbitals`: the length of one configuration."""
        return self.n_orbitals

    @property
    def n_electrons(self) -> int:
        """N = N↑ + N↓ (the V-score's particle count)."""
        return self.n_up + self.n_down

    @property
    def n_states(self) -> int:
        """Dimension ``C(n_sites, N↑) · C(n_sites, N↓)`` of the sector."""
        return comb(self.n_sites, self.n_up) * comb(self.n_sites, self.n_down)

    # ------------------------------------------------------------ enumeration
    def all_codes(self) -> np.ndarray:
        """Sorted codes of every basis state of the sector, shape (n_states,), int64."""
        if self.n_sites > MAX_CODE_SITES:
            raise ValueError(
                f"cannot enumerate {self.n_sites} sites: codes of {self.n_orbitals} orbitals do not fit "
                f"in int64 (limit {MAX_CODE_SITES} sites); use Monte Carlo sampling instead"
            )
        if self.n_states > MAX_ENUMERATION_STATES:
            raise ValueError(
                f"cannot enumerate {self.describe()} (limit {MAX_ENUMERATION_STATES} states); "
                "use Monte Carlo sampling instead"
            )
        up = fixed_popcount_codes(self.n_sites, self.n_up)
        dn = fixed_popcount_codes(self.n_sites, self.n_down)
        return ((dn[:, None] << np.int64(self.n_sites)) | up[None, :]).reshape(-1)

    def codes_to_states(self, codes: np.ndarray) -> np.ndarray:
        """Integer codes (n,) → occupations (n, 2·n_sites), int8 in {0, 1}."""
        shifts = np.arange(self.n_orbitals, dtype=np.int64)
        return ((np.asarray(codes, dtype=np.int64)[:, None] >> shifts) & 1).astype(np.int8)

    def states_to_codes(self, states: np.ndarray) -> np.ndarray:
        """Occupations (n, 2·n_sites) → integer codes (n,), int64."""
        bits = (np.asarray(states) > 0).astype(np.int64)
        return bits @ (np.int64(1) << np.arange(self.n_orbitals, dtype=np.int64))

    def all_states(self) -> np.ndarray:
        """Every basis configuration of the sector, shape (n_states, 2·n_sites), int8, sorted by code."""
        return self.codes_to_states(self.all_codes())

    def index_of(self, states: np.ndarray, codes_sorted: np.ndarray | None = None) -> np.ndarray:
        """Index of each configuration in :meth:`all_codes` (−1 where it lies outside the sector)."""
        if codes_sorted is None:
            codes_sorted = self.all_codes()
        c = self.states_to_codes(np.atleast_2d(states))
        idx = np.minimum(np.searchsorted(codes_sorted, c), len(codes_sorted) - 1)
        return np.where(codes_sorted[idx] == c, idx, -1)

    def in_sector(self, states) -> jax.Array:
        """Whether each configuration (..., 2·n_sites) has N↑ and N↓ electrons and entries in {0, 1}."""
        s = jnp.asarray(states)
        binary = jnp.all((s == 0) | (s == 1), axis=-1)
        n_up = jnp.sum(s[..., : self.n_sites], axis=-1)
        n_dn = jnp.sum(s[..., self.n_sites :], axis=-1)
        return binary & (n_up == self.n_up) & (n_dn == self.n_down)

    # ------------------------------------------------------------- sampling
    def random_state(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` uniformly random configurations of the sector, shape (n, 2·n_sites), int8 (jittable).

        The N↑ electrons are placed on a random subset of the ↑ orbitals, the N↓ independently on the ↓ ones.
        """
        sites = jnp.arange(self.n_sites)
        base_up = (sites < self.n_up).astype(jnp.int8)
        base_dn = (sites < self.n_down).astype(jnp.int8)

        def one(k: jax.Array) -> jax.Array:
            k_up, k_dn = jax.random.split(k)
            return jnp.concatenate([jax.random.permutation(k_up, base_up), jax.random.permutation(k_dn, base_dn)])

        return jax.vmap(one)(jax.random.split(key, n))

    def describe(self) -> str:
        return (
            f"spinful fermions on {self.n_sites} sites, N↑ = {self.n_up}, N↓ = {self.n_down} ({self.n_states} states)"
        )
