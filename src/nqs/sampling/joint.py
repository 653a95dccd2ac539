"""The joint (σ, d, d') chain of a deep Boltzmann machine and its local energy at fixed deep spins.

For a :class:`~nqs.models.dbm.DBM` with ψ(σ) = s(σ) Σ_d φ(σ, d) the sum over the deep spins d has no
closed form, so d is sampled with σ: x = (σ, d, d') from w(x) ∝ |φ(σ,d)| |φ(σ,d')| (docs/dbm.md (i)).
Here are the pieces that the DBM's VMC driver (:class:`nqs.drivers.dbm.DBMVMC`) and the Monte Carlo
energy of the imaginary-time constructions (:func:`nqs.imaginary_time.mc_energy`) share:

* :func:`joint_local_energies` — E_loc(σ, d) = Σ_σ' H_σσ' s(σ')φ(σ',d)/(s(σ)φ(σ,d)) with d held fixed
  and σ' from the operator's moves (docs/dbm.md (ii));
* :func:`joint_log_derivatives` — O(σ, d) = ∂ log φ(σ, d)/∂θ (docs/dbm.md (iii));
* :class:`JointMetropolisSampler` — Metropolis moves of σ (an :mod:`nqs.sampling` rule) and heat-bath
  passes over the deep spins of both replicas, many chains, a key per chain, so that any part of the
  chains can be sampled on its own (:meth:`JointMetropolisSampler.sample_part`; the driver's threads);
* :func:`exact_joint_weights` — every (σ, d, d') with its exact weight, for tests on tiny systems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..models.numerics import log_cosh
from ..operators.moves import apply_moves, move_delta
from .chains import ChainSampler, concat

__all__ = [
    "JointMetropolisSampler",
    "JointSamplerState",
    "JointSamples",
    "JointPart",
    "joint_local_energies",
    "joint_log_derivatives",
    "exact_joint_weights",
]


# --------------------------------------------------------------------------------- local energy
def joint_local_energies(model: Any, params: Any, operator: Any, sigma: jax.Array, deep: jax.Array) -> jax.Array:
    """E_loc(σ, d_r) = Σ_σ' H_σσ' s(σ')φ(σ',d_r)/(s(σ)φ(σ,d_r)) for each deep configuration d_r.

    ``model`` a :class:`~nqs.models.dbm.DBM` (real or complex parameters, with or without a sublattice
    sign); ``sigma`` (..., N), ``deep`` (..., n_d, K) → (..., n_d) complex128 (d_r held fixed; σ' from
    the operator's moves; O(G·N_h) per configuration from θ updated at the moved sites).
    """
    batch = sigma.shape[:-1]
    n_rep, k = deep.shape[-2:]
    sig = sigma.reshape(math.prod(batch), sigma.shape[-1])
    dp = deep.reshape(math.prod(batch), n_rep, k)

    def one(s, d):
        diag, mels, sites, new_values, mask = operator.moves(s)
        logr = model.log_phi_ratios(params, s, d, sites, new_values, mask)  # (n_d, G)
        sgn = model.sign_ratios(s, sites, new_values, mask)  # (G,)
        nz = mels != 0
        contrib = jnp.where(nz, mels * sgn * jnp.exp(jnp.where(nz, logr, 0.0)), 0.0)
        return (diag + jnp.sum(contrib, axis=-1)).astype(jnp.complex128)

    return jax.vmap(one)(sig, dp).reshape(batch + (n_rep,))


def joint_log_derivatives(model: Any, params: Any, sigma: jax.Array, deep: jax.Array) -> jax.Array:
    """O(σ, d_r) = ∂ log φ(σ, d_r)/∂θ (real parameters, flattened in ``ravel_pytree(params)`` order).

    ``sigma`` (..., N), ``deep`` (..., n_d, K) → (..., n_d, P).
    """
    batch = sigma.shape[:-1]
    n_rep, k = deep.shape[-2:]
    sig = sigma.reshape(math.prod(batch), sigma.shape[-1])
    dp = deep.reshape(math.prod(batch), n_rep, k)

    def one(s, d):
        return ravel_pytree(jax.grad(model.log_phi)(params, s, d))[0]

    O = jax.vmap(lambda s, dd: jax.vmap(lambda d: one(s, d))(dd))(sig, dp)
    return O.reshape(batch + (n_rep, O.shape[-1]))


def exact_joint_weights(model: Any, params: Any, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (σ, d, d') over ``states`` (n_σ, N) and all deep pairs, with exact weights |φφ'|/Z.

    Returns ``(sigma (n, N), deep (n, 2, K), w (n,))``; for tests on tiny systems (n = n_σ·4^K).
    """
    k = model.n_deep
    if 2 * k + math.log2(max(len(states), 1)) > 22:
        raise ValueError("exact_joint_weights: too many (σ, d, d') configurations")
    codes = np.arange(2**k)
    D = (((codes[:, None] >> np.arange(k)) & 1) * 2 - 1).astype(np.int8)  # (2^K, K)
    i, a, b = np.meshgrid(np.arange(len(states)), codes, codes, indexing="ij")
    sigma = np.asarray(states)[i.ravel()]
    deep = np.stack([D[a.ravel()], D[b.ravel()]], axis=1)
    lphi = jax.vmap(jax.vmap(model.log_phi, in_axes=(None, None, 0)), in_axes=(None, 0, 0))(
        params, jnp.asarray(sigma), jnp.asarray(deep)
    )
    lw = np.asarray(jnp.sum(jnp.real(lphi), axis=-1))
    w = np.exp(lw - lw.max())
    return sigma, deep, w / w.sum()


# --------------------------------------------------------------------------------- sampler
class JointSamplerState(NamedTuple):
    """Chains' σ (C, N), deep replicas (C, 2, K) (d and d'), PRNG key, σ-move acceptance counters."""

    sigma: jax.Array
    deep: jax.Array
    key: jax.Array
    n_accepted: jax.Array
    n_proposed: jax.Array


class JointSamples(NamedTuple):
    """Recorded configurations: σ (C, P, N) and deep (C, P, R, 2, K) (R = ``deep_samples`` draws of
    the replicas (d, d') at that σ)."""

    sigma: jax.Array
    deep: jax.Array


class JointPart(NamedTuple):
    """One part of the chains after :meth:`JointMetropolisSampler.sample_part`: the recorded samples, the
    chains' last σ (n, N) and deep spins (n, 2, K), and their σ-move acceptances (n,)."""

    samples: JointSamples
    sigma: jax.Array
    deep: jax.Array
    n_accepted: jax.Array


def _lc(theta):
    return jnp.sum(jnp.real(log_cosh(theta)), axis=-1)


def _split(keys, n: int):
    """A key per chain (C, 2) -> ``n`` keys per chain, (n, C, 2)."""
    return jnp.swapaxes(jax.vmap(lambda k: jax.random.split(k, n))(keys), 0, 1)


@dataclass(frozen=True, eq=False)
class JointMetropolisSampler(ChainSampler):
    """Metropolis + heat bath on x = (σ, d, d') ∝ |φ(σ,d) φ(σ,d')|, many chains.

    One *sweep* = ``sweep_size`` (default N) Metropolis proposals of σ (``rule``: ``ExchangeRule``
    conserves Sz, ``LocalRule`` flips; weight ratio |φ(σ',d)φ(σ',d')/(φ(σ,d)φ(σ,d'))|, the sign plays no
    part) then ``deep_sweeps`` systematic heat-bath passes over the 2K deep spins of d and d' (flip
    probability 1/(1 + e^{−Δ}), Δ the change of log |φ|); θ, θ' and Σ log cosh are cached.  ``n_discard``
    burn-in sweeps per call, then one recorded σ per sweep, with ``deep_samples`` = R deep configurations
    per replica: R − 1 further deep-only passes at that σ (docs/dbm.md (iv)).  ``n_samples`` =
    n_chains × samples per chain.  Every chain draws from its own key: the chains do not depend on how
    they are split into parts or over devices.
    """

    hilbert: Any
    rule: Any
    n_chains: int = 16
    n_samples: int = 1024
    n_discard: int = 16
    sweep_size: int | None = None
    deep_sweeps: int = 1
    deep_samples: int = 4

    @classmethod
    def from_metropolis(cls, sampler: Any, deep_samples: int = 4) -> JointMetropolisSampler:
        """The joint chain driven by a :class:`~nqs.sampling.MetropolisSampler`'s move rule, with its chains,
        samples, burn-in and sweep."""
        return cls(
            sampler.hilbert,
            sampler.rule,
            n_chains=sampler.n_chains,
            n_samples=sampler.n_samples,
            n_discard=sampler.n_discard,
            sweep_size=sampler.sweep_size,
            deep_samples=deep_samples,
        )

    def init_state(self, key: jax.Array, n_deep: int) -> JointSamplerState:
        """Random σ in the Hilbert sector and random deep spins for both replicas."""
        k1, k2, k3 = jax.random.split(key, 3)
        sigma = self.hilbert.random_state(k1, self.n_chains)
        deep = jnp.where(jax.random.bernoulli(k2, 0.5, (self.n_chains, 2, n_deep)), 1, -1).astype(jnp.int8)
        z = jnp.zeros((), jnp.int64)
        return JointSamplerState(sigma, deep, k3, z, z)

    def state_sharding(self, mesh: Any) -> JointSamplerState:
        """Shardings of the state on a 1-D chain mesh (:mod:`nqs.parallel`): σ and deep spins split by chain,
        key and counters replicated; ``n_chains`` must be a multiple of the devices."""
        split, r = self.chain_shardings(mesh)
        return JointSamplerState(split, split, r, r, r)

    def sample(self, model: Any, params: Any, state: JointSamplerState) -> tuple[JointSamples, JointSamplerState]:
        """Returns ``(JointSamples, new_state)`` (jittable; chains vmapped, sweeps scanned)."""
        return self.join_parts(state, [self.sample_part(model, params, state, 0, 1)])

    def sample_part(
        self, model: Any, params: Any, state: JointSamplerState, part: int | jax.Array, n_parts: int
    ) -> JointPart:
        """Chains ``part·n … (part+1)·n − 1`` of :meth:`sample` (n = n_chains / n_parts; ``part`` may be
        traced); :meth:`join_parts` joins the parts into :meth:`sample`'s result exactly."""
        n, lo = self.part_bounds(part, n_parts)
        p = params
        n_sweep = self.sweep
        n_deep = state.deep.shape[-1]
        keys = jax.random.split(jax.random.split(state.key)[1], self.n_chains)  # [0]: the next state's key
        keys = jax.lax.dynamic_slice_in_dim(keys, lo, n)
        sigma0 = jax.lax.dynamic_slice_in_dim(state.sigma, lo, n)
        deep0 = jax.lax.dynamic_slice_in_dim(state.deep, lo, n)

        def sigma_move(sigma, deep, th, lc, r, log_u):
            sites, new_values, mask = self.rule.move(r, sigma)
            delta = move_delta(sigma, sites, new_values, mask).astype(p["W"].dtype)  # (k,)
            dth = delta @ jnp.take(p["W"], sites, axis=0, mode="clip")  # (M,), same for both replicas
            da = jnp.real(delta @ jnp.take(p["a"], sites, mode="clip"))
            th_new = th + dth
            lc_new = _lc(th_new)
            accept = log_u < 2.0 * da + jnp.sum(lc_new - lc)
            sigma = jnp.where(accept, apply_moves(sigma, sites, new_values), sigma)
            return sigma, deep, jnp.where(accept, th_new, th), jnp.where(accept, lc_new, lc), accept

        def deep_flip(sigma, deep, th, lc, l, log_u):
            dl = deep[:, l].astype(p["U"].dtype)  # (2,)
            th_new = th - 2.0 * dl[:, None] * p["U"][l][None, :]
            lc_new = _lc(th_new)
            dlw = jnp.real(-2.0 * dl * p["c"][l]) + lc_new - lc  # (2,)
            accept = log_u < -jax.nn.softplus(-dlw)  # heat bath: P(flip) = 1/(1 + e^{-Δ})
            deep = deep.at[:, l].set(jnp.where(accept, -deep[:, l], deep[:, l]))
            return sigma, deep, jnp.where(accept[:, None], th_new, th), jnp.where(accept, lc_new, lc)

        v_sigma = jax.vmap(sigma_move, in_axes=(0, 0, 0, 0, 0, 0))
        v_deep = jax.vmap(deep_flip, in_axes=(0, 0, 0, 0, None, 0))

        def s_body(carry, x):
            sigma, deep, th, lc, n_acc = carry
            sigma, deep, th, lc, acc = v_sigma(sigma, deep, th, lc, *x)
            return (sigma, deep, th, lc, n_acc + acc), None

        def d_body(carry, x):
            sigma, deep, th, lc, n_acc = carry
            sigma, deep, th, lc = v_deep(sigma, deep, th, lc, *x)
            return (sigma, deep, th, lc, n_acc), None

        def deep_pass(carry, keys):
            """``deep_sweeps`` systematic heat-bath passes over the 2K deep spins (σ fixed); a key per chain."""
            if n_deep == 0 or self.deep_sweeps == 0:
                return carry
            ls = jnp.tile(jnp.arange(n_deep), self.deep_sweeps)
            lud = jax.vmap(lambda k: jnp.log(jax.random.uniform(k, (ls.size, 2))))(keys)  # (n, L, 2)
            carry, _ = jax.lax.scan(d_body, carry, (ls, jnp.swapaxes(lud, 0, 1)))
            return carry

        def sweep(carry, keys):
            k1, k3 = _split(keys, 2)
            draws = jax.vmap(lambda k: self.rule.draw_with_acceptance(k, (n_sweep,)))(k1)  # (n, n_sweep) leaves
            draws = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), draws)
            carry, _ = jax.lax.scan(s_body, carry, draws)
            return deep_pass(carry, k3), None

        def record(carry, keys):
            """One sweep, then ``deep_samples`` deep configurations at the same σ (one more pass each)."""
            k1, k2 = _split(keys, 2)
            carry, _ = sweep(carry, k1)

            def extra(c, k):
                c = deep_pass(c, k)
                return c, c[1]

            first = carry[1]
            if self.deep_samples > 1:
                carry, more = jax.lax.scan(extra, carry, _split(k2, self.deep_samples - 1))
                deeps = jnp.concatenate([first[None], more], axis=0)  # (R, n, 2, K)
            else:
                deeps = first[None]
            return carry, (carry[0], jnp.moveaxis(deeps, 0, 1))  # σ (n, N), deep (n, R, 2, K)

        th = jax.vmap(lambda s, d: model.theta(p, s, d))(sigma0, deep0)  # (n, 2, M)
        k_burn, k_samp = _split(keys, 2)
        carry = (sigma0, deep0, th, _lc(th), jnp.zeros((n,), jnp.int32))
        if self.n_discard > 0:
            carry, _ = jax.lax.scan(sweep, carry, _split(k_burn, self.n_discard))
        carry, (sig, dp) = jax.lax.scan(record, carry, _split(k_samp, self.n_per_chain))
        sigma, deep, _, _, n_acc = carry
        return JointPart(JointSamples(jnp.swapaxes(sig, 0, 1), jnp.swapaxes(dp, 0, 1)), sigma, deep, n_acc)

    def join_parts(self, state: JointSamplerState, parts: list[JointPart]) -> tuple[JointSamples, JointSamplerState]:
        """``(JointSamples, new_state)`` of :meth:`sample` from its parts (in order)."""
        samples = JointSamples(concat([q.samples.sigma for q in parts]), concat([q.samples.deep for q in parts]))
        new_state = JointSamplerState(
            concat([q.sigma for q in parts]),
            concat([q.deep for q in parts]),
            *self.joined_counts(state, [q.n_accepted for q in parts]),
        )
        return samples, new_state
