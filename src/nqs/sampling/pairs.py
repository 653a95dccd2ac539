"""Metropolis moves on a purified (doubled) spin system: system sites 0..N−1, ancillas N..2N−1.

The purification e^{−βH/2}⊗1 |Φ⟩ of :mod:`nqs.workflow.thermal` starts, at β = 0, with all its weight on the
configurations with σ_i = σ_{N+i} (the Bell pairs of :func:`nqs.exact.dynamics.bell_pairs_state`).  A single
flip from there opens a pair, and is always rejected; :class:`PairRule` therefore also flips the pair
(i, N+i) jointly.  For a Hamiltonian that conserves S^z the thermal state keeps S^z of the system equal to S^z
of the ancillas, and the rule adds exchanges on the Hamiltonian's bonds within the system and, the same bonds
shifted by N, within the ancillas.

One draw picks a kind of move with equal probability among the kinds in use and then a move of that kind
uniformly: a single flip of one of the 2N sites, a joint flip of one of the N pairs, or (``bonds`` given) an
exchange on one of the 2·n_bonds bonds.  Each move is its own reverse and is drawn with the same probability
both ways (an exchange of equal spins is the identity), so the proposal is symmetric: no Hastings correction.
Moves are two entries wide (a single flip padded with site 2N, mask False).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .metropolis import Rule, index_of

__all__ = ["PairRule"]


@dataclass(frozen=True, eq=False)
class PairRule(Rule):
    """Single flips, joint flips of the pairs (i, N+i) and, with ``bonds``, exchanges on ``bonds`` within the
    system and within the ancillas, for ``n_system`` = N (configurations of 2N spins)."""

    n_system: int
    bonds: tuple = ()
    conserves_sz: bool = False

    n_uniforms = 2

    def __post_init__(self):
        if self.n_system < 1:
            raise ValueError(f"n_system must be >= 1, got {self.n_system!r}")
        b = np.asarray(self.bonds, dtype=np.int64).reshape(-1, 2)
        if len(b) and (b.min() < 0 or b.max() >= self.n_system or np.any(b[:, 0] == b[:, 1])):
            raise ValueError("bonds must join two different system sites 0..N-1")

    @property
    def n_sites(self) -> int:
        return 2 * self.n_system

    def _bond_table(self) -> np.ndarray:
        """(2·n_bonds, 2): the system bonds and the same bonds on the ancillas."""
        b = np.asarray(self.bonds, dtype=np.int32).reshape(-1, 2)
        return np.concatenate([b, b + self.n_system])

    @property
    def n_kinds(self) -> int:
        return 3 if len(self.bonds) else 2

    def choose(self, u: jax.Array) -> jax.Array:
        """Uniform 0 picks the kind, uniform 1 the move: draw r < 2N is a single flip of site r, 2N ≤ r < 3N
        the joint flip of pair r − 2N, r ≥ 3N the exchange on bond r − 3N."""
        n = self.n_system
        kind = index_of(u[..., 0], self.n_kinds)
        single = index_of(u[..., 1], 2 * n)
        pair = 2 * n + index_of(u[..., 1], n)
        if self.n_kinds == 2:
            return jnp.where(kind == 0, single, pair)
        bond = 3 * n + index_of(u[..., 1], 2 * len(self.bonds))
        return jnp.where(kind == 0, single, jnp.where(kind == 1, pair, bond))

    def move(self, r: jax.Array, sigma: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        n = self.n_system
        pad = 2 * n
        i = jnp.minimum(r, 2 * n - 1)
        single = (jnp.stack([i, jnp.asarray(pad, i.dtype)]), jnp.array([True, False]))
        p = jnp.clip(r - 2 * n, 0, n - 1)
        pair = (jnp.stack([p, p + n]), jnp.array([True, True]))
        sites, mask = (
            jnp.where(r < 2 * n, single[0], pair[0]),
            jnp.where(r < 2 * n, single[1], pair[1]),
        )
        values = -jnp.take(sigma, sites, mode="clip")
        if self.n_kinds == 3:
            table = jnp.asarray(self._bond_table())
            ij = table[jnp.clip(r - 3 * n, 0, table.shape[0] - 1)]
            is_bond = r >= 3 * n
            sites = jnp.where(is_bond, ij.astype(sites.dtype), sites)
            mask = jnp.where(is_bond, True, mask)
            values = jnp.where(is_bond, jnp.take(sigma, ij[::-1]), values)
        return sites, jnp.where(mask, values, 0).astype(sigma.dtype), mask
