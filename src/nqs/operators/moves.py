"""Moves: how operators and proposal rules describe a change of one configuration.

A move of configuration ``x`` (n,) is three arrays of the same static width k:

* ``sites`` (k,) int: the entries that change;
* ``new_values`` (k,): their values after the move (σ = ±1 for spins, n = 0/1 for fermion orbitals);
* ``mask`` (k,) bool: False on padded entries.

Padding convention: a padded entry has ``mask`` False and ``sites`` = n, the length of the configuration
(for fermions that is the number of orbitals 2L, not the number of sites L), so that
:func:`apply_moves` drops it and gathers with ``mode="clip"`` read a real entry that ``mask`` then
discards.  Operators give G moves at once as (G, k) arrays (``operator.moves(x)``, together with the
matrix elements); the Metropolis rules give one per proposal.  A model's fast path
(:class:`~nqs.models.base.FastPath`) takes moves in this form, so it never has to build x′.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["apply_moves", "move_delta"]


def apply_moves(x: jax.Array, sites: jax.Array, new_values: jax.Array) -> jax.Array:
    """x with ``x[sites] = new_values``; works for one move (k,) or a batch (G, k) of moves.

    Padded entries (site index ``n``, the length of ``x``) are dropped.
    """
    if sites.ndim == 1:
        return x.at[sites].set(new_values, mode="drop")
    return jax.vmap(lambda s, v: x.at[s].set(v, mode="drop"))(sites, new_values)


def move_delta(sigma: jax.Array, sites: jax.Array, new_values: jax.Array, mask: jax.Array) -> jax.Array:
    """The change d = σ'[sites] − σ[sites] of a move (zero on padded entries), float64 (k,)."""
    old = jnp.take(sigma, sites, mode="clip")
    return jnp.where(mask, new_values - old, 0).astype(jnp.float64)
