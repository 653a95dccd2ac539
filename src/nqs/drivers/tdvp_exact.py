"""TDVP with exact sums over a basis too large for one matrix of log-derivatives.

:class:`~nqs.drivers.tdvp.TDVP` with an :class:`~nqs.sampling.ExactSampler` holds the centred log-derivatives
Ō of every basis state at once, (2^N × P): for the 2^20 states of a purified chain of 10 sites and a few
hundred parameters that is gigabytes.  :class:`ChunkedExactTDVP` sums instead, chunk by chunk of
``chunk_states`` basis states (a ``lax.scan``), the moments

    Z-normalized weights w = |ψ|²/Z,   Σ w O,   Σ w E,   Σ w |E|²,   Σ w O* Oᵀ,   Σ w O* E

from which S = ⟨O* Oᵀ⟩ − ⟨O⟩*⟨O⟩ᵀ and F = c (⟨O* E⟩ − ⟨O⟩*⟨E⟩) follow, and solves S θ̇ = F with
:func:`nqs.qgt.tdvp_solve_sf` (the pseudo-inverse or the shift; no sampling noise, so no signal-to-noise cut).
The memory is O(chunk_states · P + P²), the time per evaluation O(2^N · P²).  Same protocol, integrators and
output times as :class:`~nqs.drivers.tdvp.TDVP`; no extra observables (the energy and its variance only) and
the Euclidean error norm only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import estimators
from ..qgt import tdvp_solve_sf
from ..stats import Stats
from .tdvp import TDVP


@dataclass(frozen=True, eq=False)
class ChunkedExactTDVP(TDVP):
    """:class:`~nqs.drivers.tdvp.TDVP` over an exact sampler's basis, summed in chunks of ``chunk_states``
    states (a power of two that divides the basis; larger chunks are cut to the basis size)."""

    chunk_states: int = 1 << 14

    def __post_init__(self):
        super().__post_init__()
        if not getattr(self.sampler, "exact", False):
            raise ValueError("ChunkedExactTDVP sums over a basis: the sampler must be an ExactSampler")
        if self.observables:
            raise ValueError("ChunkedExactTDVP measures the energy only: give no observables")
        if self.error_norm != "euclidean":
            raise ValueError("ChunkedExactTDVP does not keep the metric: error_norm must be 'euclidean'")
        dim = self.sampler.n_samples
        c = min(int(self.chunk_states), dim)
        orbits = getattr(self.sampler, "orbits", None)
        if c < 1 or (dim % c and orbits is None):
            raise ValueError(f"chunk_states ({self.chunk_states}) must divide the basis size {dim}")
        object.__setattr__(self, "_chunk_rows", c)
        # orbit representatives: log of the orbit sizes, padded to whole chunks with weight 0 (log −∞)
        pad = -dim % c
        sizes = None
        if orbits is not None:
            sizes = np.full(dim + pad, -np.inf)
            sizes[:dim] = np.log(np.asarray(orbits[1], float))
        object.__setattr__(self, "_log_sizes", sizes)

    def estimator_info(self) -> dict:
        return {**super().estimator_info(), "sampler": f"ExactSampler, sums in chunks of {self._chunk_rows} states"}

    def _moments(self, params: Any, states: jax.Array) -> dict:
        """The weighted moments of the module docstring over ``states`` (D, N) (all of the basis)."""
        model, mode = self._vmc._model, self._mode
        c = self._chunk_rows
        if self._log_sizes is not None:
            pad = len(self._log_sizes) - states.shape[0]
            states = jnp.concatenate([states, jnp.broadcast_to(states[:1], (pad, states.shape[-1]))])
        chunks = states.reshape(-1, c, states.shape[-1])
        logp = 2.0 * jnp.real(jax.lax.map(jax.vmap(lambda s: model.log_psi(params, s)), chunks))
        if self._log_sizes is not None:
            logp = logp + jnp.asarray(self._log_sizes).reshape(logp.shape)
        w = jnp.exp(logp - jax.scipy.special.logsumexp(logp))
        n_params = jax.flatten_util.ravel_pytree(params)[0].size

        def body(acc, xs):
            x, wc = xs
            e = estimators.local_energies(model, params, self.hamiltonian, x).astype(jnp.complex128)
            O = estimators.log_derivatives(model, params, x, mode, factored=True)
            if isinstance(O, estimators.FactoredJacobian):
                O = O.dense()
            O = O.astype(jnp.complex128)
            # an unequal-pair state of the purification has |ψ|² ~ 1e-33 and O, E ~ 1e16: the products are O(1)
            Ow = O.conj() * wc[:, None]
            return {
                "O": acc["O"] + jnp.sum(O * wc[:, None], axis=0),
                "E": acc["E"] + jnp.sum(wc * e),
                "E2": acc["E2"] + jnp.sum(wc * jnp.abs(e) ** 2),
                "OO": acc["OO"] + Ow.T @ O,
                "OE": acc["OE"] + Ow.T @ e,
            }, None

        z = jnp.zeros((), jnp.complex128)
        acc0 = {
            "O": jnp.zeros(n_params, jnp.complex128),
            "E": z,
            "E2": jnp.zeros((), jnp.float64),
            "OO": jnp.zeros((n_params, n_params), jnp.complex128),
            "OE": jnp.zeros(n_params, jnp.complex128),
        }
        acc, _ = jax.lax.scan(body, acc0, (chunks, w))
        return acc

    @staticmethod
    def _energy_stats(m: dict) -> Stats:
        var = jnp.maximum(m["E2"] - jnp.abs(m["E"]) ** 2, 0.0)
        zero = jnp.zeros((), jnp.float64)
        return Stats(m["E"], zero, var, zero, jnp.asarray(jnp.nan))

    def _measure(self, params: Any, sampler_state: Any):
        m = self._moments(params, sampler_state.sigma)
        return None, None, None, self._energy_stats(m), {}, sampler_state

    def _rhs(self, unravel: Callable) -> Callable:
        cfac = -1j if self.real_time else -1.0
        mode, solver = self._mode, self.solver

        def f(t, y, sstate):
            params = unravel(y)
            m = self._moments(params, sstate.sigma)
            stats = self._energy_stats(m)
            S = m["OO"] - jnp.outer(m["O"].conj(), m["O"])
            F = cfac * (m["OE"] - m["O"].conj() * m["E"])
            theta_dot, solved = tdvp_solve_sf(S, F, stats.variance, mode, solver)
            info = {
                "energy": stats,
                "observables": {},
                "residual": solved.residual,
                "n_kept": solved.n_kept,
                "snr_min": solved.snr_min,
                "acceptance": jnp.zeros((), jnp.float64),
            }
            return theta_dot.astype(y.dtype), sstate, info

        return f
