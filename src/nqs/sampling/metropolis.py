"""Metropolis–Hastings over many independent chains (vmapped), with the models' fast path.

A *rule* proposes a symmetric move ``(sites, new_values, mask)`` for one chain; the sampler
accepts it with probability min(1, |ψ(σ')/ψ(σ)|²) computed from the model's cache, and
updates the cache only on acceptance.  One *sweep* is ``sweep_size`` proposals (default N).
Each call to :meth:`MetropolisSampler.sample` prepares the parameters once (the fast path's ``prepare``),
runs ``n_discard`` sweeps, then records one sample per sweep; the caches are recomputed from
the configurations at the start of every sweep (a periodic full recompute against round-off drift).

Where the rule's moves are flips of fixed sites (``move_table``: the local and exchange rules) and the
model's fast path offers :meth:`~nqs.models.base.FastPath.move_path` for them (the RBM: a table of
e^{±Δθ} per move), the chains run on that path instead; the draws and the acceptance test are the same,
so are the chains.

Every chain draws its proposals from its own key, so any part of the chains can be sampled on its own
(:meth:`MetropolisSampler.sample_part`) and the parts joined are the whole sampler's chains: the VMC
driver samples the parts on concurrent CPU threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..models.base import fast_path
from ..operators.moves import apply_moves
from .chains import ChainSampler, concat


def index_of(u: jax.Array, n: int) -> jax.Array:
    """floor(u·n) for uniform ``u`` in [0, 1): an int in [0, n).

    Its departure from a flat histogram, ≤ n·2⁻⁵² in float64 (n·2⁻²³ in float32), is harmless where it is
    used: the rules' moves are their own reverse, drawn with the same probability both ways, so the
    proposals stay symmetric whatever the histogram."""
    return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)


class Rule:
    """A proposal rule's randomness: ``n_uniforms`` uniforms in [0, 1) per move, turned into the move's
    draw ``r`` by ``choose(u)`` (u: (..., n_uniforms)); ``move(r, sigma)`` then gives the move.

    The sampler draws the rule's uniforms and the acceptance test's in one ``jax.random.uniform`` call:
    XLA compiles each threefry call site in ~0.2–0.3 s on a CPU, and with ``jax.random.randint`` (a split
    and two draws) and a split per block they were most of the sampler's compile time."""

    n_uniforms = 1

    def move_table(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(sites, signs)`` (G, k) when draw g always flips the sites ``sites[g]`` where σ there is
        ±``signs[g]`` (and is the identity elsewhere), for :meth:`~nqs.models.base.FastPath.move_path`;
        None (the default) for other moves."""
        return None

    def draw(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """The draws of ``shape`` moves from ``key``."""
        return self.choose(jax.random.uniform(key, (*shape, self.n_uniforms)))

    def draw_with_acceptance(self, key: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
        """``(draws, log u)`` of ``shape`` moves: the moves and their acceptance tests' log-uniforms from one
        ``jax.random.uniform`` call (what the samplers use)."""
        u = jax.random.uniform(key, (*shape, self.n_uniforms + 1))
        return self.choose(u[..., :-1]), jnp.log(u[..., -1])


class SampledPart(NamedTuple):
    """One part of the chains after :meth:`MetropolisSampler.sample_part`: samples (n, n_per_chain, N),
    log_weights (n, n_per_chain) of the reweighting for ``power`` < 2 (None for 2), the chains' last
    configurations (n, N) and their acceptances (n,)."""

    samples: jax.Array
    log_weights: Any
    sigma: jax.Array
    n_accepted: jax.Array


class SamplerState(NamedTuple):
    """Chains' configurations (n_chains, N), PRNG key, and acceptance counters."""

    sigma: jax.Array
    key: jax.Array
    n_accepted: jax.Array
    n_proposed: jax.Array


@dataclass(frozen=True, eq=False)
class LocalRule(Rule):
    """Flip one uniformly chosen spin (does not conserve Sz)."""

    n_sites: int
    conserves_sz: bool = False

    def choose(self, u: jax.Array) -> jax.Array:
        """A site index per move."""
        return index_of(u[..., 0], self.n_sites)

    def move(self, r: jax.Array, sigma: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The move for random draw ``r``: flip site r."""
        i = jnp.reshape(r, (1,))
        return i, -jnp.take(sigma, i), jnp.ones((1,), bool)

    def move_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw r flips site r: sites (N, 1) and signs (N, 1) for :meth:`~nqs.models.base.FastPath.move_path`."""
        return np.arange(self.n_sites)[:, None], np.ones((self.n_sites, 1))


@dataclass(frozen=True, eq=False)
class ExchangeRule(Rule):
    """Swap the spins of a uniformly chosen pair from ``pairs`` (n_pairs, 2); conserves Sz.

    A pair with equal spins gives the identity move (always accepted): the proposal stays
    symmetric, so detailed balance holds without a Hastings correction.
    """

    pairs: tuple
    conserves_sz: bool = True

    def choose(self, u: jax.Array) -> jax.Array:
        """A pair index per move."""
        return index_of(u[..., 0], len(self.pairs))

    def move(self, r: jax.Array, sigma: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Swap the spins of pair r."""
        p = jnp.asarray(np.asarray(self.pairs, dtype=np.int32))[r]
        return p, jnp.take(sigma, p[::-1]), jnp.ones((2,), bool)

    def move_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw r swaps pair r, a flip of both sites where their spins are opposite (signs +1, −1) and the
        identity elsewhere: sites (P, 2) and signs (P, 2) for :meth:`~nqs.models.base.FastPath.move_path`."""
        pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        return pairs, np.tile([1.0, -1.0], (len(pairs), 1))


def _off_nodes(model, params, sigma):
    """Chains standing where ψ = 0 (a random start on a node of a symmetric or projected state: its cache is
    singular and every ratio from it is undefined) restart from chains where ψ ≠ 0: the k-th such chain from
    the (k mod n_good)-th good one, in order (no random draw: one threefry site fewer to compile).  When no
    chain has ψ ≠ 0 the configurations are returned as they are (the energy is then NaN and the run stops)."""
    logs = jnp.real(jax.vmap(model.log_psi, in_axes=(None, 0))(params, sigma))
    good = jnp.isfinite(logs)
    n = sigma.shape[0]
    order = jnp.argsort(~good, stable=True)  # the good chains first, in order
    n_good = jnp.maximum(jnp.sum(good), 1)
    pick = order[jnp.cumsum(~good) % n_good]
    pick = jnp.where(jnp.any(good), pick, jnp.arange(n))
    return jnp.where(good[:, None], sigma, sigma[pick])


#: Bytes of proposal randomness drawn ahead at a time (see ``MetropolisSampler.sample``).
_DRAW_BYTES = 8 << 20


def _block(n: int, bytes_per_sweep: int) -> int:
    """The largest divisor of ``n`` whose sweeps' randomness fits in ``_DRAW_BYTES``."""
    cap = max(1, _DRAW_BYTES // max(1, bytes_per_sweep))
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


@dataclass(frozen=True, eq=False)
class MetropolisSampler(ChainSampler):
    """Many parallel Markov chains; ``n_samples`` = n_chains × samples per chain.

    ``power``: the chains sample |ψ(σ)|^power; 2 (the default) is the Born distribution.  A smaller
    power visits the configurations where |ψ| is small — near the nodes of a projected state, where E_loc
    is large — more often, and :meth:`sample` then returns the weights |ψ|^{2−power} (normalized) that turn
    every average back into one over |ψ|² (importance sampling; NetKet's ``machine_pow``).  Where E_loc has
    heavy tails under |ψ|² (4×4 J1-J2 projected on its space group: exact variance 0.07, sampled 0.01)
    the optimization then sees the tails.
    """

    hilbert: Any
    rule: Any
    n_chains: int = 16
    n_samples: int = 1024
    n_discard: int = 16
    sweep_size: int | None = None
    power: float = 2.0
    #: use the fast path's :meth:`~nqs.models.base.FastPath.move_path` for the rule's moves where it offers one
    #: (the same chains as the general path, to round-off in the acceptance test; False: the general path)
    move_path: bool = True

    def __post_init__(self):
        if not 0 < self.power <= 2:
            raise ValueError(f"power must be in (0, 2] (the chains sample |psi|^power), got {self.power!r}")

    def state_sharding(self, mesh: Any) -> SamplerState:
        """Shardings of the state on a 1-D chain mesh (:mod:`nqs.parallel`): chains split, key and counters
        replicated (:meth:`~nqs.sampling.chains.ChainSampler.chain_shardings`)."""
        split, r = self.chain_shardings(mesh)
        return SamplerState(split, r, r, r)

    def init_state(self, key: jax.Array) -> SamplerState:
        k1, k2 = jax.random.split(key)
        sigma = self.hilbert.random_state(k1, self.n_chains)
        z = jnp.zeros((), jnp.int64)
        return SamplerState(sigma, k2, z, z)

    def _move_path(self, model):
        """The model's move path for this rule's moves (:meth:`~nqs.models.base.FastPath.move_path`), or None."""
        table = self.rule.move_table() if self.move_path else None
        return None if table is None else fast_path(model).move_path(*table)

    def _path_move(self, path, params):
        """One chain's move through ``path`` (:meth:`~nqs.models.base.FastPath.move_path`): the same draws and
        the same acceptance test as the general path, the state from ``path.cache``."""
        sites_np, signs_np = self.rule.move_table()
        sites_t = jnp.asarray(sites_np, dtype=jnp.int32)
        signs_t = jnp.asarray(signs_np, dtype=jnp.int8)
        n = self.hilbert.n_sites
        tables = path.prepare(params)

        def chain_move(sigma, state, r, log_u):
            sites = sites_t[r]
            values = jnp.take(sigma, sites)
            first = values[0]
            valid = jnp.all(values == first * signs_t[r])  # else the move is the identity (always accepted)
            log_ratio, aux = path.log_abs_ratio(tables, state, r, first)
            accept = log_u < self.power * log_ratio
            moved = valid & accept
            hit = jnp.any(jnp.arange(n, dtype=jnp.int32)[:, None] == sites[None, :], axis=1)
            new_sigma = jnp.where(moved & hit, -sigma, sigma)
            updated = path.update(tables, state, aux)
            new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(moved, a, b), updated, state)
            return new_sigma, new_state, accept | ~valid

        return chain_move, jax.vmap(path.cache, in_axes=(None, 0)), tables

    def sample(self, model: Any, params: Any, state: SamplerState) -> tuple[jax.Array, jax.Array | None, SamplerState]:
        """Returns ``(samples (n_chains, n_per_chain, N), weights, new_state)`` (jittable): weights None for
        ``power`` = 2, else |ψ|^{2−power} normalized to sum 1, shape (n_chains, n_per_chain)."""
        return self.join_parts(state, [self.sample_part(model, params, state, 0, 1)])

    def sample_part(
        self, model: Any, params: Any, state: SamplerState, part: int | jax.Array, n_parts: int
    ) -> SampledPart:
        """Chains ``part·n … (part+1)·n − 1`` of :meth:`sample` (n = n_chains / n_parts; ``part`` may be traced).

        Each chain draws its moves from its own key, so the parts joined by :meth:`join_parts` are
        :meth:`sample`'s chains exactly (to the last bit), whatever ``n_parts``.  Parts are independent
        computations: the driver runs them on concurrent threads (:class:`nqs.drivers.vmc.VMC` ``threads``)."""
        n, lo = self.part_bounds(part, n_parts)
        sweep = self.sweep
        raw_params = params
        k_sweeps = jax.random.split(state.key)[1]  # [0] is the next state's key (join_parts)
        sigma = _off_nodes(model, raw_params, state.sigma)
        sigma = jax.lax.dynamic_slice_in_dim(sigma, lo, n)
        path = self._move_path(model)
        if path is None:
            fast = fast_path(model)
            params = fast.prepare(params)
            v_cache = jax.vmap(fast.cache, in_axes=(None, 0))

            def chain_move(sigma, cache, r, log_u):
                sites, new_values, mask = self.rule.move(r, sigma)
                ratio = fast.log_ratio(params, sigma, cache, sites, new_values, mask)
                accept = log_u < self.power * jnp.real(ratio)
                new_sigma = jnp.where(accept, apply_moves(sigma, sites, new_values), sigma)
                updated = fast.update(params, sigma, cache, sites, new_values, mask)
                new_cache = jax.tree_util.tree_map(lambda a, b: jnp.where(accept, a, b), updated, cache)
                return new_sigma, new_cache, accept
        else:
            chain_move, v_cache, params = self._path_move(path, params)
        cache = v_cache(params, sigma)

        v_move = jax.vmap(chain_move)

        def move(carry, x):
            # acceptances are counted per chain: a sum over the chains here would be a reduction across
            # devices at every step when the chains are split over several
            sigma, cache, n_acc = carry
            sigma, cache, acc = v_move(sigma, cache, *x)
            return (sigma, cache, n_acc + acc), None

        def body(carry, x):
            # one sweep of all chains
            sigma, cache, n_acc = carry
            cache = v_cache(params, sigma)  # fresh every sweep: no round-off builds up in the updates
            (sigma, cache, n_acc), _ = jax.lax.scan(move, (sigma, cache, n_acc), x)
            return (sigma, cache, n_acc), sigma

        def sweeps(carry, key, n_sweeps):
            """``n_sweeps`` sweeps; the proposals' randomness is drawn ahead for blocks of sweeps (drawing it
            inside the sequential loop costs a dispatch per step), at most ``_DRAW_BYTES`` a block, from a
            key per chain and block, with one uniform draw for the rule's choices and the acceptance test."""
            b = _block(n_sweeps, sweep * self.n_chains * (8 * (self.rule.n_uniforms + 1) + 12))
            keys = jax.random.split(key, (n_sweeps // b, self.n_chains))  # a part draws only its own chains'
            if n_parts > 1:
                keys = jax.lax.dynamic_slice_in_dim(keys, lo, n, axis=1)

            def block(carry, k):
                draws = jax.vmap(lambda kc: self.rule.draw_with_acceptance(kc, (b, sweep)), out_axes=2)(k)
                return jax.lax.scan(body, carry, draws)

            carry, ys = jax.lax.scan(block, carry, keys)
            return carry, ys.reshape(n_sweeps, *ys.shape[2:])

        carry = (sigma, cache, jnp.zeros(sigma.shape[:1], jnp.int32))
        # the discarded sweeps and the recorded ones in one loop (one copy of the loop and its draws to compile)
        carry, samples = sweeps(carry, k_sweeps, self.n_discard + self.n_per_chain)
        sigma, _, n_acc = carry
        # samples: (n_discard + n_per_chain, n, N) -> (n, n_per_chain, N)
        samples = jnp.swapaxes(samples[self.n_discard :], 0, 1)
        log_w = None
        if self.power != 2:
            log_amp = jax.vmap(jax.vmap(model.log_psi, in_axes=(None, 0)), in_axes=(None, 0))(raw_params, samples)
            log_w = (2.0 - self.power) * jnp.real(log_amp)
        return SampledPart(samples, log_w, sigma, n_acc)

    def join_parts(
        self, state: SamplerState, parts: list[SampledPart]
    ) -> tuple[jax.Array, jax.Array | None, SamplerState]:
        """``(samples, weights, new_state)`` of :meth:`sample` from its parts (in order)."""
        samples = concat([p.samples for p in parts])
        new_state = SamplerState(
            concat([p.sigma for p in parts]), *self.joined_counts(state, [p.n_accepted for p in parts])
        )
        if self.power == 2:
            return samples, None, new_state
        logw = concat([p.log_weights for p in parts])
        w = jnp.exp(logw - jnp.max(logw))
        return samples, w / jnp.sum(w), new_state
