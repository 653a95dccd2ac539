"""Spin-1/2 Hilbert space, optionally restricted to a fixed total magnetization.

Configurations are int8 arrays with σᶻ ∈ {+1, −1} (see :mod:`nqs.conventions`); a basis state's
integer code has bit ``i`` set when site ``i`` is ↑, and enumerations are sorted by code.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

MAX_ENUMERATION_SITES = 30


def _popcount(codes: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64 code (vectorized SWAR popcount)."""
    c = codes.astype(np.uint64)
    c = c - ((c >> np.uint64(1)) & np.uint64(0x5555555555555555))
    c = (c & np.uint64(0x3333333333333333)) + ((c >> np.uint64(2)) & np.uint64(0x3333333333333333))
    c = (c + (c >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((c * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


@dataclass(frozen=True)
class SpinHilbert:
    """Spin-1/2 space of ``n_sites`` spins; ``total_sz`` (S^z = Σσ/2) fixes a sector when given."""

    n_sites: int
    total_sz: float | None = None

    def __post_init__(self):
        if self.n_sites < 1:
            raise ValueError(f"a spin Hilbert space needs at least one site, got n_sites={self.n_sites}")
        if self.total_sz is not None:
            sz = Fraction(self.total_sz).limit_denominator(4)
            n_up = sz + Fraction(self.n_sites, 2)
            if n_up.denominator != 1 or not (0 <= n_up <= self.n_sites):
                allowed = "integer" if self.n_sites % 2 == 0 else "half-integer"
                raise ValueError(
                    f"total_sz = {self.total_sz:g} is impossible for {self.n_sites} spins-1/2: it must be "
                    f"a{'n' if allowed == 'integer' else ''} {allowed} between "
                    f"{-self.n_sites / 2:g} and {self.n_sites / 2:g}"
                )

    # ----------------------------------------------------------------- sector
    @property
    def n_up(self) -> int | None:
        """Number of ↑ spins in the sector, or None when Sz is not fixed."""
        if self.total_sz is None:
            return None
        return int(round(self.total_sz + self.n_sites / 2))

    @property
    def conserves_sz(self) -> bool:
        return self.total_sz is not None

    @property
    def n_states(self) -> int:
        from math import comb

        if self.n_up is None:
            return 2**self.n_sites
        return comb(self.n_sites, self.n_up)

    # ------------------------------------------------------------ enumeration
    def all_codes(self) -> np.ndarray:
        """Sorted integer codes of every basis state in the sector, shape (n_states,), int64."""
        if self.n_sites > MAX_ENUMERATION_SITES:
            raise ValueError(
                f"cannot enumerate {self.n_sites} spins (limit {MAX_ENUMERATION_SITES}); "
                "use Monte Carlo sampling instead of exact enumeration"
            )
        codes = np.arange(2**self.n_sites, dtype=np.int64)
        if self.n_up is not None:
            codes = codes[_popcount(codes) == self.n_up]
        return codes

    def codes_to_states(self, codes: np.ndarray) -> np.ndarray:
        """Integer codes (n,) → configurations (n, n_sites) int8 in {+1, −1}."""
        bits = (np.asarray(codes, dtype=np.int64)[:, None] >> np.arange(self.n_sites)) & 1
        return (2 * bits - 1).astype(np.int8)

    def states_to_codes(self, states: np.ndarray) -> np.ndarray:
        """Configurations (n, n_sites) → integer codes (n,) int64."""
        bits = (np.asarray(states) > 0).astype(np.int64)
        return bits @ (np.int64(1) << np.arange(self.n_sites, dtype=np.int64))

    def all_states(self) -> np.ndarray:
        """Every basis configuration in the sector, shape (n_states, n_sites), int8, sorted by code."""
        return self.codes_to_states(self.all_codes())

    def index_of(self, states: np.ndarray, codes_sorted: np.ndarray | None = None) -> np.ndarray:
        """Index of each configuration in :meth:`all_codes` (−1 where it lies outside the sector)."""
        if codes_sorted is None:
            codes_sorted = self.all_codes()
        c = self.states_to_codes(states)
        idx = np.searchsorted(codes_sorted, c)
        idx = np.minimum(idx, len(codes_sorted) - 1)
        return np.where(codes_sorted[idx] == c, idx, -1)

    # ------------------------------------------------------------- sampling
    def random_state(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` uniformly random configurations in the sector, shape (n, n_sites), int8 (jittable)."""
        if self.n_up is None:
            bits = jax.random.bernoulli(key, 0.5, (n, self.n_sites))
            return jnp.where(bits, 1, -1).astype(jnp.int8)
        base = jnp.where(jnp.arange(self.n_sites) < self.n_up, 1, -1).astype(jnp.int8)
        keys = jax.random.split(key, n)
        return jax.vmap(lambda k: jax.random.permutation(k, base))(keys)

    def describe(self) -> str:
        sec = "" if self.total_sz is None else f", total Sz = {self.total_sz:g}"
        return f"{self.n_sites} spins-1/2{sec} ({self.n_states} states)"
