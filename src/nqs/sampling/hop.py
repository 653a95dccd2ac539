"""Metropolis proposal rules for spinful fermions at fixed (N↑, N↓).

Configurations are occupations ``x`` of length ``2L`` with orbital ``p = site + L·spin`` (↑ first,
:mod:`nqs.hilbert.fermions`).  The rules follow the interface of
:class:`~nqs.sampling.metropolis.Rule`: ``choose(u)`` turns uniforms into random ints (one per
proposal) and ``move(r, x)`` turns one of them into ``(sites, new_values, mask)``, so
:class:`~nqs.sampling.metropolis.MetropolisSampler` uses them unchanged.  Every proposal is symmetric
(the reverse move is drawn with the same probability, inapplicable draws give the identity move), so
no Hastings correction is needed.
Only ``|ψ|²`` enters the acceptance: the rules carry no fermion sign.

* :class:`HopRule`: pick a bond (i, j) and a spin σ uniformly; if exactly one of the orbitals
  (i, σ), (j, σ) is occupied the electron hops across the bond, otherwise nothing happens.
  2 entries per move.
* :class:`SpinExchangeRule`: pick a bond (i, j); if one site holds only ↑ and the other only ↓,
  the two electrons exchange (↑ at i, ↓ at j → ↓ at i, ↑ at j, and back).  4 entries per move.
* :class:`HopExchangeRule`: a spin exchange with probability ``p_exchange``, otherwise a hop;
  hops are padded to 4 entries (padding site ``2L``, mask False).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .metropolis import Rule, index_of

if TYPE_CHECKING:
    from ..lattice.lattice import Lattice

__all__ = ["HopRule", "SpinExchangeRule", "HopExchangeRule", "lattice_bonds"]


def lattice_bonds(lattice: Lattice, shells: Sequence[int] = (1,)) -> tuple[tuple[int, int], ...]:
    """The bonds ``(i, j)``, i < j, of the given neighbour shells of ``lattice`` (unique, sorted)."""
    rows = {(int(i), int(j)) for s in shells for i, j in lattice.bonds(s)}
    return tuple(sorted(rows))


def _bond_array(bonds) -> np.ndarray:
    b = np.asarray(bonds, dtype=np.int32).reshape(-1, 2)
    if len(b) == 0:
        raise ValueError("a fermion move rule needs at least one bond")
    if np.any(b[:, 0] == b[:, 1]):
        raise ValueError("bonds must join two different sites")
    return b


@dataclass(frozen=True, eq=False)
class HopRule(Rule):
    """One electron hops across a uniformly chosen bond with a uniformly chosen spin.

    ``bonds`` (n_bonds, 2) site pairs (e.g. :func:`lattice_bonds`); a draw ``r`` in
    ``[0, 2·n_bonds)`` selects bond ``r mod n_bonds`` and spin ``r // n_bonds``.  The move swaps the
    two occupations, which is a hop when exactly one is occupied and the identity otherwise.
    Ergodic in the (N↑, N↓) sector when the bond graph is connected.
    """

    n_sites: int
    bonds: tuple
    conserves_sz: bool = True

    @classmethod
    def from_lattice(cls, lattice: Lattice, shells: Sequence[int] = (1,)) -> HopRule:
        return cls(lattice.n_sites, lattice_bonds(lattice, shells))

    @property
    def n_bonds(self) -> int:
        return len(self.bonds)

    @property
    def n_choices(self) -> int:
        return 2 * self.n_bonds

    def choose(self, u: jax.Array) -> jax.Array:
        """A (bond, spin) index per move."""
        return index_of(u[..., 0], self.n_choices)

    def move(self, r: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(sites (2,), new_values (2,), mask (2,))`` for draw ``r``."""
        b = jnp.asarray(_bond_array(self.bonds))
        nb = self.n_bonds
        sites = b[r % nb] + self.n_sites * (r // nb)
        return sites, jnp.take(x, sites[::-1]), jnp.ones((2,), bool)


@dataclass(frozen=True, eq=False)
class SpinExchangeRule(Rule):
    """Opposite spins on a uniformly chosen bond (i, j) exchange: ↑ at i, ↓ at j ↔ ↓ at i, ↑ at j.

    Applies only when each site is singly occupied with opposite spins; otherwise the identity.
    Sites ``(i↑, j↑, i↓, j↓) = (i, j, i + L, j + L)``, all four entries change together.
    """

    n_sites: int
    bonds: tuple
    conserves_sz: bool = True

    @classmethod
    def from_lattice(cls, lattice: Lattice, shells: Sequence[int] = (1,)) -> SpinExchangeRule:
        return cls(lattice.n_sites, lattice_bonds(lattice, shells))

    @property
    def n_choices(self) -> int:
        return len(self.bonds)

    def choose(self, u: jax.Array) -> jax.Array:
        """A bond index per move."""
        return index_of(u[..., 0], self.n_choices)

    def move(self, r: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(sites (4,), new_values (4,), mask (4,))`` for draw ``r``."""
        ij = jnp.asarray(_bond_array(self.bonds))[r]
        sites = jnp.concatenate([ij, ij + self.n_sites])
        v = jnp.take(x, sites)
        ok = (v[0] != v[1]) & (v[2] != v[3]) & (v[0] != v[2])
        new = jnp.where(ok, v[jnp.array([1, 0, 3, 2])], v)
        return sites, new, jnp.ones((4,), bool)


@dataclass(frozen=True, eq=False)
class HopExchangeRule(Rule):
    """A :class:`SpinExchangeRule` move with probability ``p_exchange``, else a :class:`HopRule` move.

    The draw is ``r < n_hop`` for a hop (index r) and ``n_hop + e`` for exchange ``e``; moves are
    4 entries wide (hops padded with site ``2L``, mask False).  A mixture of symmetric proposals
    is symmetric.
    """

    hop: HopRule
    exchange: SpinExchangeRule
    p_exchange: float = 0.2
    conserves_sz: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_exchange <= 1.0:
            raise ValueError(f"p_exchange must lie in [0, 1], got {self.p_exchange!r}")
        if self.hop.n_sites != self.exchange.n_sites:
            raise ValueError("the hop and exchange rules act on different numbers of sites")

    @classmethod
    def from_lattice(cls, lattice: Lattice, p_exchange: float = 0.2, shells: Sequence[int] = (1,)) -> HopExchangeRule:
        return cls(HopRule.from_lattice(lattice, shells), SpinExchangeRule.from_lattice(lattice, shells), p_exchange)

    @property
    def n_sites(self) -> int:
        return self.hop.n_sites

    n_uniforms = 2

    def choose(self, u: jax.Array) -> jax.Array:
        """Uniform 0 picks the kind of move, uniform 1 the move."""
        ex = u[..., 0] < self.p_exchange
        rh, re = index_of(u[..., 1], self.hop.n_choices), index_of(u[..., 1], self.exchange.n_choices)
        return jnp.where(ex, self.hop.n_choices + re, rh)

    def move(self, r: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        nh = self.hop.n_choices
        pad = 2 * self.n_sites
        hs, hv, hm = self.hop.move(jnp.minimum(r, nh - 1), x)
        hs = jnp.concatenate([hs, jnp.full((2,), pad, hs.dtype)])
        hv = jnp.concatenate([hv, jnp.zeros((2,), hv.dtype)])
        hm = jnp.concatenate([hm, jnp.zeros((2,), bool)])
        es, ev, em = self.exchange.move(jnp.clip(r - nh, 0, self.exchange.n_choices - 1), x)
        is_ex = r >= nh
        return (jnp.where(is_ex, es, hs.astype(es.dtype)), jnp.where(is_ex, ev, hv), jnp.where(is_ex, em, hm))
