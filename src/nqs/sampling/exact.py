"""Exact "sampler": every basis state of the sector with weight |ψ(σ)|²/Z (no Monte Carlo noise).

The same estimator code then gives exact expectation values (jVMC's ExactSampler idea).

For a state projected onto a symmetry sector of a symmetric Hamiltonian, |ψ(σ)|², E_loc(σ) and
O_k(σ) = ∂ log ψ(σ)/∂θ_k are the same on every configuration of an orbit {gσ} (ψ(gσ) = χ(g)* ψ(σ)), so
the sum over the basis reduces to one representative per orbit with weight (orbit size)·|ψ|²
(:func:`orbit_representatives`): 107 configurations instead of 12870 for the 4×4 space group × spin flip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .metropolis import SamplerState


def orbit_representatives(
    hilbert: Any, perms: np.ndarray, spin_flip: bool = False, matrix: Any = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """One configuration per orbit of the sector's basis under the permutations ``perms`` (n_g, n_sites)
    (``(gσ)_{perms[g, i]} = σ_i``; a group, identity included) and, with ``spin_flip``, σ → −σ.

    Returns ``(states (n_orbits, n_sites) int8, sizes (n_orbits,))``: the lowest-index member of each orbit
    and how many basis states the orbit has.  Raises ValueError if an image leaves the sector.
    With ``matrix`` (the sparse Hamiltonian on the sector) returns None instead unless every element
    maps the sector onto itself and commutes with it (each g, and the flip once: g₀F then covers the rest).
    """
    states, codes = np.asarray(hilbert.all_states()), hilbert.all_codes()
    lowest = np.arange(len(states))
    for g, inverse in enumerate(np.argsort(perms, axis=1)):  # gσ = σ[p_g^{-1}]
        for sign in (1, -1) if spin_flip else (1,):
            idx = hilbert.index_of(sign * states[:, inverse], codes)
            if np.any(idx < 0):
                if matrix is not None:
                    return None
                raise ValueError("orbit_representatives: a symmetry image leaves the Hilbert-space sector")
            if matrix is not None and (sign == 1 or g == 0) and abs(matrix[idx][:, idx] - matrix).max() > 1e-12:
                return None
            lowest = np.minimum(lowest, idx)
    reps, sizes = np.unique(lowest, return_counts=True)
    return states[reps], sizes


@dataclass(frozen=True, eq=False)
class ExactSampler:
    """Full enumeration; ``orbits = (representatives, sizes)`` (from :func:`orbit_representatives`)
    enumerates one configuration per orbit instead, weighted by the orbit's size — exact for a model
    projected onto a sector of that group when the Hamiltonian commutes with it."""

    hilbert: Any
    orbits: Any = None

    @property
    def exact(self) -> bool:
        return True

    @property
    def supports_parts(self) -> bool:
        """No parts: the enumeration is one computation."""
        return False

    @property
    def n_chains(self) -> int:
        return 1

    @property
    def n_per_chain(self) -> int:
        return self.n_samples

    @property
    def n_samples(self) -> int:
        return self.hilbert.n_states if self.orbits is None else len(self.orbits[1])

    def state_sharding(self, mesh: Any) -> SamplerState:
        """Shardings on a 1-D device mesh: the basis states split over the devices when they divide evenly
        (else replicated); key and counters replicated."""
        from ..parallel import n_shards, replicated, sharded

        r = replicated(mesh)
        return SamplerState(r if self.n_samples % n_shards(mesh) else sharded(mesh), r, r, r)

    def init_state(self, key: jax.Array) -> SamplerState:
        sigma = jnp.asarray(self.hilbert.all_states() if self.orbits is None else self.orbits[0])
        z = jnp.zeros((), jnp.int64)
        return SamplerState(sigma, key, z, z)

    def sample(self, model: Any, params: Any, state: SamplerState) -> tuple[jax.Array, jax.Array, SamplerState]:
        """Returns ``(samples (1, dim, N), weights (1, dim), state)`` with Σ weights = 1."""
        logp = 2.0 * jnp.real(jax.vmap(model.log_psi, in_axes=(None, 0))(params, state.sigma))
        if self.orbits is not None:
            logp = logp + jnp.log(jnp.asarray(self.orbits[1], dtype=logp.dtype))
        w = jnp.exp(logp - jax.scipy.special.logsumexp(logp))
        return state.sigma[None], w[None], state
