"""Exact "sampler": every basis state of the sector with weight |ψ(σ)|²/Z (no Monte Carlo noise).

The same estimator code then gives exact expectation values (jVMC's ExactSampler idea).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from .metropolis import SamplerState


@dataclass(frozen=True, eq=False)
class ExactSampler:
    hilbert: Any

    @property
    def exact(self) -> bool:
        return True

    @property
    def n_chains(self) -> int:
        return 1

    @property
    def n_samples(self) -> int:
        return self.hilbert.n_states

    def state_sharding(self, mesh) -> SamplerState:
        """Shardings on a 1-D device mesh: the basis states split over the devices when they divide evenly
        (else replicated); key and counters replicated."""
        from ..parallel import n_shards, replicated, sharded

        r = replicated(mesh)
        return SamplerState(r if self.n_samples % n_shards(mesh) else sharded(mesh), r, r, r)

    def init_state(self, key) -> SamplerState:
        sigma = jnp.asarray(self.hilbert.all_states())
        z = jnp.zeros((), jnp.int64)
        return SamplerState(sigma, key, z, z)

    def sample(self, model, params, state: SamplerState):
        """Returns ``(samples (1, dim, N), weights (1, dim), state)`` with Σ weights = 1."""
        logp = 2.0 * jnp.real(jax.vmap(model.log_psi, in_axes=(None, 0))(params, state.sigma))
        w = jnp.exp(logp - jax.scipy.special.logsumexp(logp))
        return state.sigma[None], w[None], state
