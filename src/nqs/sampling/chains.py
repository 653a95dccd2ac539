"""What every sampler of Markov chains shares: ``n_chains`` chains of ``n_per_chain`` recorded samples each,
``sweep`` proposals between records, the chains split over a device mesh or sampled in parts (a key per
chain, so the parts are the same chains), and the bookkeeping that joins the parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp


def concat(xs: Sequence[jax.Array]) -> jax.Array:
    """The parts' arrays joined along the chains (the array itself for one part)."""
    return xs[0] if len(xs) == 1 else jnp.concatenate(xs)


class ChainSampler:
    """Base of the Markov-chain samplers (frozen dataclasses with the fields ``hilbert``, ``n_chains``,
    ``n_samples``, ``n_discard`` and ``sweep_size``)."""

    @property
    def n_per_chain(self) -> int:
        return -(-self.n_samples // self.n_chains)

    @property
    def exact(self) -> bool:
        return False

    @property
    def supports_parts(self) -> bool:
        """The chains can be sampled in parts (``sample_part``), e.g. on concurrent threads."""
        return True

    @property
    def sweep(self) -> int:
        """Proposals per sweep: ``sweep_size``, else the number of sites."""
        return self.sweep_size or self.hilbert.n_sites

    def chain_shardings(self, mesh: Any) -> tuple[Any, Any]:
        """``(chains split, replicated)`` shardings on a 1-D chain mesh (:mod:`nqs.parallel`).  The chains
        split evenly or not at all: ``n_chains`` must be a multiple of the devices."""
        from ..parallel import n_shards, replicated, sharded

        d = n_shards(mesh)
        if self.n_chains % d:
            raise ValueError(
                f"n_chains ({self.n_chains}) must be a multiple of the number of devices ({d}) "
                f"to split the chains over them; use e.g. n_chains = {-(-self.n_chains // d) * d}"
            )
        return sharded(mesh), replicated(mesh)

    def part_bounds(self, part: int | jax.Array, n_parts: int) -> tuple[int, int | jax.Array]:
        """``(n, lo)``: part ``part`` of ``n_parts`` holds chains ``lo … lo + n − 1``."""
        if self.n_chains % n_parts:
            raise ValueError(f"n_chains ({self.n_chains}) must be a multiple of the number of parts ({n_parts})")
        n = self.n_chains // n_parts
        return n, part * n

    def joined_counts(self, state: Any, n_accepted: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(next key, accepted, proposed)`` of the state after a call whose parts accepted ``n_accepted``
        moves (per chain) out of ``(n_discard + n_per_chain) · sweep`` proposals per chain."""
        n_acc = sum(jnp.sum(a.astype(jnp.int64)) for a in n_accepted)
        n_prop = (self.n_discard + self.n_per_chain) * self.sweep * self.n_chains
        return jax.random.split(state.key)[0], state.n_accepted + n_acc, state.n_proposed + n_prop
