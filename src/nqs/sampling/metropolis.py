"""Metropolis–Hastings over many independent chains (vmapped), with the models' fast path.

A *rule* proposes a symmetric move ``(sites, new_values, mask)`` for one chain; the sampler
accepts it with probability min(1, |ψ(σ')/ψ(σ)|²) computed from the model's cache, and
updates the cache only on acceptance.  One *sweep* is ``sweep_size`` proposals (default N).
Each call to :meth:`MetropolisSampler.sample` recomputes the caches from scratch (the
parameters have changed), runs ``n_discard`` sweeps, then records one sample per sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..operators.pauli import apply_moves


class SamplerState(NamedTuple):
    """Chains' configurations (n_chains, N), PRNG key, and acceptance counters."""

    sigma: jax.Array
    key: jax.Array
    n_accepted: jax.Array
    n_proposed: jax.Array


@dataclass(frozen=True, eq=False)
class LocalRule:
    """Flip one uniformly chosen spin (does not conserve Sz)."""

    n_sites: int
    conserves_sz: bool = False

    def propose(self, key, sigma):
        i = jax.random.randint(key, (1,), 0, self.n_sites)
        return i, -jnp.take(sigma, i), jnp.ones((1,), bool)


@dataclass(frozen=True, eq=False)
class ExchangeRule:
    """Swap the spins of a uniformly chosen pair from ``pairs`` (n_pairs, 2); conserves Sz.

    A pair with equal spins gives the identity move (always accepted): the proposal stays
    symmetric, so detailed balance holds without a Hastings correction.
    """

    pairs: tuple
    conserves_sz: bool = True

    def propose(self, key, sigma):
        pairs = jnp.asarray(np.asarray(self.pairs, dtype=np.int32))
        p = pairs[jax.random.randint(key, (), 0, pairs.shape[0])]
        return p, jnp.take(sigma, p[::-1]), jnp.ones((2,), bool)


@dataclass(frozen=True, eq=False)
class MetropolisSampler:
    """Many parallel Markov chains; ``n_samples`` = n_chains × samples per chain."""

    hilbert: Any
    rule: Any
    n_chains: int = 16
    n_samples: int = 1024
    n_discard: int = 16
    sweep_size: int | None = None

    @property
    def n_per_chain(self) -> int:
        return -(-self.n_samples // self.n_chains)

    @property
    def exact(self) -> bool:
        return False

    def init_state(self, key) -> SamplerState:
        k1, k2 = jax.random.split(key)
        sigma = self.hilbert.random_state(k1, self.n_chains)
        z = jnp.zeros((), jnp.int64)
        return SamplerState(sigma, k2, z, z)

    def sample(self, model, params, state: SamplerState):
        """Returns ``(samples (n_chains, n_per_chain, N), None, new_state)`` (jittable)."""
        sweep = self.sweep_size or self.hilbert.n_sites
        cache = jax.vmap(model.cache, in_axes=(None, 0))(params, state.sigma)

        def one_move(carry, key):
            sigma, cache = carry
            k1, k2 = jax.random.split(key)
            sites, new_values, mask = self.rule.propose(k1, sigma)
            r = model.log_ratio(params, sigma, cache, sites, new_values, mask)
            log_u = jnp.log(jax.random.uniform(k2))
            accept = log_u < 2.0 * jnp.real(r)
            new_sigma = jnp.where(accept, apply_moves(sigma, sites, new_values), sigma)
            new_cache = jax.lax.cond(
                accept,
                lambda: model.update_cache(params, sigma, cache, sites, new_values, mask),
                lambda: cache,
            )
            return (new_sigma, new_cache), accept

        def chain_sweep(sigma, cache, key):
            (sigma, cache), acc = jax.lax.scan(one_move, (sigma, cache), jax.random.split(key, sweep))
            return sigma, cache, jnp.sum(acc)

        v_sweep = jax.vmap(chain_sweep)

        def body(carry, key):
            sigma, cache, n_acc = carry
            keys = jax.random.split(key, self.n_chains)
            sigma, cache, acc = v_sweep(sigma, cache, keys)
            return (sigma, cache, n_acc + jnp.sum(acc)), sigma

        key, k_burn, k_samp = jax.random.split(state.key, 3)
        carry = (state.sigma, cache, jnp.zeros((), jnp.int64))
        if self.n_discard > 0:
            carry, _ = jax.lax.scan(body, carry, jax.random.split(k_burn, self.n_discard))
        carry, samples = jax.lax.scan(body, carry, jax.random.split(k_samp, self.n_per_chain))
        sigma, _, n_acc = carry
        n_prop = (self.n_discard + self.n_per_chain) * sweep * self.n_chains
        new_state = SamplerState(sigma, key, state.n_accepted + n_acc, state.n_proposed + n_prop)
        # samples: (n_per_chain, n_chains, N) -> (n_chains, n_per_chain, N)
        return jnp.swapaxes(samples, 0, 1), None, new_state
