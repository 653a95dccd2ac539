"""Variational Monte Carlo for a trainable deep Boltzmann machine (issue #5).

Model
-----
Visible spins σ (N,), hidden h (M,) and deep d (K,), all ±1, no couplings inside a layer;
real parameters ``{"a": (N,), "b": (M,), "c": (K,), "W": (N, M), "U": (K, M)}`` (``U`` is stored
deep × hidden, as in :class:`nqs.models.dbm.DBM`).  Summing h analytically::

    θ(σ, d)  = b + σW + dU                                  (M,)
    log φ(σ, d) = a·σ + c·d + Σ_k log cosh θ_k              (φ > 0; the 2^M of 2 cosh is dropped)
    ψ(σ)     = s(σ) Σ_d φ(σ, d),    s(σ) = ±1 fixed (1, or the Marshall sign (−1)^{N↑ on sublattice 1})

Σ_d has no closed form, so (σ, d) must be sampled.

Estimators (derivation)
-----------------------
Let Z = Σ_σ ψ(σ)² = Σ_{σ,d,d'} φ(σ,d) φ(σ,d') and sample x = (σ, d, d') from

    w(x) = φ(σ,d) φ(σ,d') / Z.

(i)  Σ_{d,d'} w = ψ(σ)²/Z: the σ-marginal is |ψ|²; given σ, d and d' are independent draws from
     p(d|σ) = φ(σ,d)/Σ_d φ(σ,d).
(ii) For any σ', E_{d|σ}[φ(σ',d)/φ(σ,d)] = Σ_d φ(σ',d)/Σ_d φ(σ,d) = s(σ)ψ(σ')/(s(σ')ψ(σ)), so

         E_loc(σ,d) = Σ_σ' H_σσ' s(σ')φ(σ',d) / (s(σ)φ(σ,d))     (d held fixed)

     has conditional mean E_{d|σ}[E_loc(σ,d)] = E_loc^ψ(σ) = Σ_σ' H_σσ' ψ(σ')/ψ(σ), and
     E = ⟨H⟩ = E_w[E_loc(σ,d)] = E_w[ε],  ε = ½(E_loc(σ,d) + E_loc(σ,d')).
(iii) With O(σ,d) = ∂_θ log φ(σ,d) (real), ∂_θ log ψ(σ) = E_{d|σ}[O(σ,d)] =: Ô(σ).  For real θ and
     real ψ, ∂E = 2 (⟨E_loc^ψ Ô⟩_ψ − E ⟨Ô⟩_ψ).  Since d ⟂ d' given σ,
     E_w[E_loc(σ,d) O(σ,d')] = E_σ[E_loc^ψ(σ) Ô(σ)] exactly, so

         ∂E = 2 E_w[ ½((O(σ,d') − Ō)(E_loc(σ,d) − E) + (O(σ,d) − Ō)(E_loc(σ,d') − E)) ],  Ō = E_w[O],

     unbiased (up to the usual O(1/n) of the estimated means).  The same-replica product
     E_loc(σ,d) O(σ,d) is biased by E_σ Cov_{d|σ}(E_loc, O): never use it.
(iv) Rao–Blackwellisation over the deep layer: at each recorded σ the sampler draws R deep
     configurations per replica (R − 1 further heat-bath passes over d and d' with σ fixed; the
     passes leave w invariant, and given σ the two replicas' draws stay independent).  Every draw
     has the conditional law p(d|σ), so the per-replica averages Ē_r = (1/R) Σ_j E_loc(σ, d_r^(j))
     and Ô_r = (1/R) Σ_j O(σ, d_r^(j)) keep (ii) and (iii) unbiased with E_loc → Ē_r, O → Ô_r, at
     lower deep-layer noise.  R = 1 is the plain estimator.
(v)  SR needs S = Cov_ψ(Ô), which has no unbiased positive semi-definite estimator from a finite
     number of deep draws.  Two approximations (both PSD, both equal to S when d is determined
     by σ; C = E_σ Cov_{d|σ}(Ô_r) is the conditional covariance of one replica's average):

     * ``metric="pair"`` (default): the 2n rows Ô_1, Ô_2 with weight 1/(2n) each, S_pair = S + C.
       Pairing row Ô_1 with Ē_2 and row Ô_2 with Ē_1 makes Ōᵀε exactly the force of (iii), so
       :func:`nqs.sr.sr_direction` (dense, MinSR, CG) runs unchanged on the doubled rows;
     * ``metric="mean"``: one row Ō = ½(Ô_1 + Ô_2) per sample, S_mean = S + C/2, with the force of
       (iii) solved densely, by Woodbury when P > n, (ŌᵀŌ + λ)⁻¹F = (F − Ōᵀ(ŌŌᵀ + λ)⁻¹ŌF)/λ, or by CG.

     Either metric overestimates S by a conditional covariance; the gradient is unbiased.  The
     excess C is large exactly along the directions in which the force is noisy from the deep
     draws, so it damps that noise.  Measured on the L = 16 Heisenberg chain (M = K = 8, R = 4,
     the default SR settings): "mean" gains faster in the first ~60 steps, but then U random-walks
     upwards (max |U| 0.2 → 2 in 200 steps), the deep noise and Var ε explode (0.7 → 30) and
     the run diverges; with "pair" |U| follows the exact-Σ_d optimization (0.35 vs 0.38 after 200
     steps) at the same energy.  Hence "pair" is the default.

(vi) Stability.  The deep-layer noise of ε and of the force grows quickly with |U| (at fixed
     parameters on the L = 16 chain, M = K = 8, max|U| ≈ 0.9: Var ε = 15.7, 5.7, 1.8 for R = 1, 4,
     16 against Var_ψ E_loc = 0.45 with Σ_d exact; the means agree).  Where the energy is flat in U
     (M = K = 8 there), SR noise makes U diffuse outwards, the noise grows with it and the run
     eventually degrades (Var ε ≈ 28 after 800 steps, with either metric and R = 4 or 16).
     ``DBMVMC.deep_decay`` = μ adds a decoupled decay U ← (1 − η_t μ) U after each update (η_t the
     learning rate; AdamW-style, not preconditioned by S).  It biases the optimum towards small U
     (a regulariser, not part of the estimator); μ = 0.1 kept those runs stable (max|U| ≈ 0.12,
     Var ε ≈ 0.5) at the same energy.  Default 0 (pure VMC).

The sampler (:class:`JointMetropolisSampler`) runs many chains (vmapped) of the doubled chain:
one *sweep* = ``sweep_size`` (default N) Metropolis proposals of σ (exchange or flip rule of
:mod:`nqs.sampling`, weight ratio φ(σ',d)φ(σ',d')/(φ(σ,d)φ(σ,d')), the sign plays no part) then
``deep_sweeps`` systematic heat-bath passes over the 2K deep spins of d and d' (flip probability
1/(1 + e^{−Δ}), Δ the change of log φ), plus R − 1 deep-only passes per recorded sample (iv).
The angles θ, θ' (2, M) and Σ log cosh are cached.  One σ sample per sweep.  The test suite
checks (ii)–(iii) against the exact ⟨H⟩ and its finite-difference gradient by full enumeration
of (σ, d, d'), and the sampler's frequencies against w.

Capacity note: summing d first instead, ψ(σ) = e^{a·σ} Σ_h e^{b·h} F(h) Π_i e^{σ_i (Wh)_i} with
F(h) = Π_l 2 cosh(c_l + (Uh)_l): a mixture of 2^M product states whose weights the deep layer
reshapes.  The deep units never add mixture components, so at fixed M a DBM can beat the RBM
with the same M, but not an RBM with many more hidden units.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .. import sr
from ..estimators import centered
from ..models.base import Model, log_cosh
from ..models.dbm import DBM, LN2
from ..operators.moves import apply_moves, move_delta
from ..stats import statistics
from .vmc import OptimizerConfig, VMCState, finish_step

__all__ = ["DeepBoltzmann", "JointMetropolisSampler", "JointSamplerState", "JointSamples", "DBMVMC",
           "joint_local_energies", "joint_log_derivatives", "pair_rows", "joint_direction", "joint_gradient",
           "exact_joint_weights"]

#: Largest number of deep units that :meth:`DeepBoltzmann.log_psi` enumerates.
MAX_EXACT_DEEP = 20


# --------------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class DeepBoltzmann(Model):
    """Trainable real DBM (see the module docstring): ``n_sites`` N, ``n_hidden`` M, ``n_deep`` K.

    ``init_scale`` is the standard deviation of the initial a, b, c, W; ``init_scale_deep`` that of
    U (hidden–deep).  At U = 0 and c = 0 the deep layer is decoupled and ∂ log ψ/∂U vanishes by
    the d → −d symmetry, so U starts larger than the rest (default 0.1 vs 0.01) to break that
    saddle.  ``sublattice`` (0/1 per site) switches on the Marshall sign s(σ) = (−1)^{N↑ on 1}.

    ``log_psi`` sums the 2^K deep states exactly (small K only: tests and exact checks); VMC uses
    :meth:`log_phi` on sampled d.
    """

    n_sites: int
    n_hidden: int
    n_deep: int
    init_scale: float = 0.01
    init_scale_deep: float = 0.1
    sublattice: tuple | None = None
    holomorphic = False
    real_derivatives = True

    def __post_init__(self):
        if self.sublattice is not None and len(self.sublattice) != self.n_sites:
            raise ValueError(f"sublattice has {len(self.sublattice)} entries, expected {self.n_sites}")

    # ------------------------------------------------------------------ parameters
    def init(self, key: jax.Array) -> dict:
        """Normal initial parameters: a, b, c, W with std ``init_scale``, U with ``init_scale_deep``."""
        n, m, k = self.n_sites, self.n_hidden, self.n_deep
        ks = jax.random.split(key, 5)
        s, sd = self.init_scale, self.init_scale_deep
        return {"a": s * jax.random.normal(ks[0], (n,)), "b": s * jax.random.normal(ks[1], (m,)),
                "c": s * jax.random.normal(ks[2], (k,)), "W": s * jax.random.normal(ks[3], (n, m)),
                "U": sd * jax.random.normal(ks[4], (k, m))}

    # ------------------------------------------------------------------ amplitudes
    def theta(self, params, sigma, d):
        """θ = b + σW + dU, shape (M,)."""
        return params["b"] + sigma.astype(jnp.float64) @ params["W"] + d.astype(jnp.float64) @ params["U"]

    def log_phi(self, params, sigma, d):
        """log φ(σ, d) = a·σ + c·d + Σ_k log cosh θ_k (real scalar; h traced, sign excluded)."""
        s, dd = sigma.astype(jnp.float64), d.astype(jnp.float64)
        return params["a"] @ s + params["c"] @ dd + jnp.sum(log_cosh(self.theta(params, sigma, d)))

    def sign_parity(self, sigma):
        """Number of ↑ spins on sublattice 1 (s(σ) = (−1)^this); 0 without a sign."""
        if self.sublattice is None:
            return jnp.zeros((), jnp.float64)
        return jnp.sum(jnp.asarray(self.sublattice, jnp.float64) * (1 + sigma.astype(jnp.float64)) / 2)

    def to_dbm(self, params) -> tuple[DBM, dict]:
        """The same φ in the generic :class:`~nqs.models.dbm.DBM` container (κ = −M ln 2)."""
        dbm = DBM(self.n_sites, self.n_hidden, self.n_deep, description="trainable DBM")
        p = dict(params)
        p["kappa"] = jnp.asarray(-self.n_hidden * LN2, jnp.float64)
        return dbm, p

    def log_psi(self, params, sigma):
        """log ψ(σ) = log Σ_d φ(σ, d) + iπ·(sign parity), by enumeration of the 2^K deep states.

        Direct log-sum-exp over a (2^K, K) table for K ≤ 12, otherwise the chunked scan of
        :meth:`nqs.models.dbm.DBM.log_psi_exact`.  For tests, exact checks and small-K diagnostics.
        """
        k = self.n_deep
        if k > MAX_EXACT_DEEP:
            raise ValueError(f"log_psi enumerates 2**K deep states; K = {k} > {MAX_EXACT_DEEP}")
        phase = 1j * jnp.pi * self.sign_parity(sigma)
        if k > 12:
            dbm, p = self.to_dbm(params)
            return jnp.real(dbm.log_psi_exact(p, sigma)) + phase
        codes = np.arange(2**k)
        D = jnp.asarray((((codes[:, None] >> np.arange(k)) & 1) * 2 - 1).astype(np.float64))  # (2^K, K)
        s = sigma.astype(jnp.float64)
        th = params["b"] + s @ params["W"] + D @ params["U"]  # (2^K, M)
        logs = D @ params["c"] + _lc(th)
        return params["a"] @ s + jax.nn.logsumexp(logs) + phase

    def describe(self) -> str:
        s = " x Marshall sign" if self.sublattice is not None else ""
        return f"real DBM (N={self.n_sites}, M={self.n_hidden}, K={self.n_deep}){s}"


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


def _lc(theta):
    return jnp.sum(log_cosh(theta), axis=-1)


@dataclass(frozen=True, eq=False)
class JointMetropolisSampler:
    """Metropolis + heat bath on x = (σ, d, d') ∝ φ(σ,d) φ(σ,d') (module docstring), many chains.

    ``rule`` is an :mod:`nqs.sampling` rule (``ExchangeRule`` conserves Sz, ``LocalRule`` flips);
    ``n_samples`` = n_chains × samples per chain; ``n_discard`` burn-in sweeps per call;
    ``sweep_size`` σ proposals per sweep (default N); ``deep_sweeps`` heat-bath passes over the
    deep spins per sweep.
    """

    hilbert: Any
    rule: Any
    n_chains: int = 16
    n_samples: int = 1024
    n_discard: int = 16
    sweep_size: int | None = None
    deep_sweeps: int = 1
    deep_samples: int = 4

    @property
    def n_per_chain(self) -> int:
        return -(-self.n_samples // self.n_chains)

    @property
    def exact(self) -> bool:
        return False

    def init_state(self, key, n_deep: int) -> JointSamplerState:
        """Random σ in the Hilbert sector and random deep spins for both replicas."""
        k1, k2, k3 = jax.random.split(key, 3)
        sigma = self.hilbert.random_state(k1, self.n_chains)
        deep = jnp.where(jax.random.bernoulli(k2, 0.5, (self.n_chains, 2, n_deep)), 1, -1).astype(jnp.int8)
        z = jnp.zeros((), jnp.int64)
        return JointSamplerState(sigma, deep, k3, z, z)

    def sample(self, model: DeepBoltzmann, params, state: JointSamplerState):
        """Returns ``(JointSamples, new_state)`` (jittable; chains vmapped, sweeps scanned)."""
        p = params
        n_sweep = self.sweep_size or self.hilbert.n_sites
        n_deep = state.deep.shape[-1]
        n_chains = state.sigma.shape[0]

        def angles(sigma, deep):
            th = p["b"] + sigma.astype(jnp.float64) @ p["W"] + deep.astype(jnp.float64) @ p["U"]  # (2, M)
            return th, _lc(th)

        def sigma_move(sigma, deep, th, lc, r, log_u):
            sites, new_values, mask = self.rule.move(r, sigma)
            delta = move_delta(sigma, sites, new_values, mask)  # (k,)
            dth = delta @ jnp.take(p["W"], sites, axis=0, mode="clip")  # (M,), same for both replicas
            da = delta @ jnp.take(p["a"], sites, mode="clip")
            th_new = th + dth
            lc_new = _lc(th_new)
            accept = log_u < 2.0 * da + jnp.sum(lc_new - lc)
            sigma = jnp.where(accept, apply_moves(sigma, sites, new_values), sigma)
            return sigma, deep, jnp.where(accept, th_new, th), jnp.where(accept, lc_new, lc), accept

        def deep_flip(sigma, deep, th, lc, l, log_u):
            dl = deep[:, l].astype(jnp.float64)  # (2,)
            th_new = th - 2.0 * dl[:, None] * p["U"][l][None, :]
            lc_new = _lc(th_new)
            dlw = -2.0 * dl * p["c"][l] + lc_new - lc  # (2,)
            accept = log_u < -jax.nn.softplus(-dlw)  # heat bath: P(flip) = 1/(1 + e^{-Δ})
            deep = deep.at[:, l].set(jnp.where(accept, -deep[:, l], deep[:, l]))
            return sigma, deep, jnp.where(accept[:, None], th_new, th), jnp.where(accept, lc_new, lc)

        v_sigma = jax.vmap(sigma_move, in_axes=(0, 0, 0, 0, 0, 0))
        v_deep = jax.vmap(deep_flip, in_axes=(0, 0, 0, 0, None, 0))

        def s_body(carry, x):
            sigma, deep, th, lc, n_acc = carry
            sigma, deep, th, lc, acc = v_sigma(sigma, deep, th, lc, *x)
            return (sigma, deep, th, lc, n_acc + jnp.sum(acc)), None

        def d_body(carry, x):
            sigma, deep, th, lc, n_acc = carry
            sigma, deep, th, lc = v_deep(sigma, deep, th, lc, *x)
            return (sigma, deep, th, lc, n_acc), None

        def deep_pass(carry, key):
            """``deep_sweeps`` systematic heat-bath passes over the 2K deep spins (σ fixed)."""
            if n_deep == 0 or self.deep_sweeps == 0:
                return carry
            ls = jnp.tile(jnp.arange(n_deep), self.deep_sweeps)
            lud = jnp.log(jax.random.uniform(key, (ls.size, n_chains, 2)))
            carry, _ = jax.lax.scan(d_body, carry, (ls, lud))
            return carry

        def sweep(carry, key):
            k1, k3 = jax.random.split(key)
            carry, _ = jax.lax.scan(s_body, carry, self.rule.draw_with_acceptance(k1, (n_sweep, n_chains)))
            return deep_pass(carry, k3), None

        def record(carry, key):
            """One sweep, then ``deep_samples`` deep configurations at the same σ (one more pass each)."""
            k1, k2 = jax.random.split(key)
            carry, _ = sweep(carry, k1)

            def extra(c, k):
                c = deep_pass(c, k)
                return c, c[1]

            first = carry[1]
            if self.deep_samples > 1:
                carry, more = jax.lax.scan(extra, carry, jax.random.split(k2, self.deep_samples - 1))
                deeps = jnp.concatenate([first[None], more], axis=0)  # (R, C, 2, K)
            else:
                deeps = first[None]
            return carry, (carry[0], jnp.moveaxis(deeps, 0, 1))  # σ (C, N), deep (C, R, 2, K)

        th, lc = jax.vmap(angles)(state.sigma, state.deep)
        key, k_burn, k_samp = jax.random.split(state.key, 3)
        carry = (state.sigma, state.deep, th, lc, jnp.zeros((), jnp.int64))
        if self.n_discard > 0:
            carry, _ = jax.lax.scan(sweep, carry, jax.random.split(k_burn, self.n_discard))
        carry, (sig, dp) = jax.lax.scan(record, carry, jax.random.split(k_samp, self.n_per_chain))
        sigma, deep, _, _, n_acc = carry
        n_prop = (self.n_discard + self.n_per_chain) * n_sweep * n_chains
        new_state = JointSamplerState(sigma, deep, key, state.n_accepted + n_acc, state.n_proposed + n_prop)
        return JointSamples(jnp.swapaxes(sig, 0, 1), jnp.swapaxes(dp, 0, 1)), new_state


# --------------------------------------------------------------------------------- estimators
def joint_local_energies(model: DeepBoltzmann, params, operator, sigma, deep):
    """E_loc(σ, d_r) = Σ_σ' H_σσ' s(σ')φ(σ',d_r)/(s(σ)φ(σ,d_r)) for each deep configuration d_r.

    ``sigma`` (..., N), ``deep`` (..., n_d, K) → (..., n_d) complex128 (d_r held fixed; σ' from the
    operator's moves; O(G·M) per configuration from the cached angles).
    """
    batch = sigma.shape[:-1]
    n_rep, k = deep.shape[-2:]
    sig = sigma.reshape(-1, sigma.shape[-1])
    dp = deep.reshape(-1, n_rep, k)
    parity = (jnp.zeros((model.n_sites,)) if model.sublattice is None
              else jnp.asarray(model.sublattice, jnp.float64))

    def one(s, d):
        diag, mels, sites, new_values, mask = operator.moves(s)
        th = params["b"] + s.astype(jnp.float64) @ params["W"] + d.astype(jnp.float64) @ params["U"]  # (n_d, M)
        delta = jax.vmap(lambda si, v, m: move_delta(s, si, v, m))(sites, new_values, mask)  # (G, k)
        dth = jnp.einsum("gk,gkm->gm", delta, jnp.take(params["W"], sites, axis=0, mode="clip"))
        da = jnp.einsum("gk,gk->g", delta, jnp.take(params["a"], sites, mode="clip"))
        # s(σ')/s(σ) = (−1)^{Σ_{changed i on sublattice 1} δ_i/2}
        dpar = jnp.einsum("gk,gk->g", delta, jnp.take(parity, sites, mode="clip")) / 2
        sgn = 1.0 - 2.0 * jnp.mod(jnp.round(dpar), 2)
        logr = da[None, :] + _lc(th[:, None, :] + dth[None, :, :]) - _lc(th)[:, None]  # (n_d, G)
        nz = mels != 0
        contrib = jnp.where(nz, mels * sgn * jnp.exp(jnp.where(nz, logr, 0.0)), 0.0)
        return (diag + jnp.sum(contrib, axis=-1)).astype(jnp.complex128)

    return jax.vmap(one)(sig, dp).reshape(batch + (n_rep,))


def joint_log_derivatives(model: DeepBoltzmann, params, sigma, deep):
    """O(σ, d_r) = ∂ log φ(σ, d_r)/∂θ (real, flattened in ``ravel_pytree(params)`` order).

    ``sigma`` (..., N), ``deep`` (..., n_d, K) → (..., n_d, P) float64.
    """
    batch = sigma.shape[:-1]
    n_rep, k = deep.shape[-2:]
    sig = sigma.reshape(-1, sigma.shape[-1])
    dp = deep.reshape(-1, n_rep, k)

    def one(s, d):
        return ravel_pytree(jax.grad(model.log_phi)(params, s, d))[0]

    O = jax.vmap(lambda s, dd: jax.vmap(lambda d: one(s, d))(dd))(sig, dp)
    return O.reshape(batch + (n_rep, O.shape[-1]))


def pair_rows(O, e_loc, weights):
    """Doubled rows for replica pairs: ``(rows (2n, P), e_swapped (2n,), w (2n,))``.

    ``O`` (n, 2, P), ``e_loc`` (n, 2), ``weights`` (n,) summing to 1.  Row O(σ,d) is paired with
    E_loc(σ,d') and row O(σ,d') with E_loc(σ,d); weights w/2 each.  Then
    ``estimators.centered`` gives Ōᵀε = the unbiased cross force (module docstring (iii)) and ŌᵀŌ
    the joint-chain metric S_pair.
    """
    rows = jnp.concatenate([O[:, 0], O[:, 1]], axis=0)
    e_sw = jnp.concatenate([e_loc[:, 1], e_loc[:, 0]], axis=0)
    w = jnp.concatenate([weights, weights]) / 2
    return rows, e_sw, w


def joint_gradient(O, e_loc, weights):
    """∂E/∂θ (P,) = 2 Re F with the cross force F (module docstring (iii)); real parameters."""
    return sr.gradient(*pair_rows(O, e_loc, weights), "real")


def joint_direction(O, e_loc, weights, metric: str, diag_shift, solver: str, tol=1e-8, maxiter=1000):
    """SR direction δ = (S_metric + λ)⁻¹ F (real, (P,)); ``metric`` "pair" or "mean" (docstring (v)).

    ``O`` (n, 2, P) real, ``e_loc`` (n, 2), ``weights`` (n,) summing to 1; ``solver`` "dense",
    "minsr" or "cg".
    """
    rows, e_sw, w2 = pair_rows(O, e_loc, weights)
    if metric == "pair":
        return sr.sr_direction(rows, e_sw, w2, "real", diag_shift, solver, tol, maxiter)
    if metric != "mean":
        raise ValueError(f"metric must be 'pair' or 'mean', got {metric!r}")
    Oc2, ec2 = centered(rows, e_sw, w2)
    F = Oc2.T @ jnp.real(ec2)
    Oc, _ = centered(0.5 * (O[:, 0] + O[:, 1]), jnp.real(e_loc[:, 0]), weights)
    if solver == "dense":
        S = Oc.T @ Oc
        return jnp.linalg.solve(S + diag_shift * jnp.eye(S.shape[0]), F)
    if solver == "minsr":  # Woodbury: (ŌᵀŌ + λ)⁻¹F = (F − Ōᵀ(ŌŌᵀ + λ)⁻¹ŌF)/λ
        T = Oc @ Oc.T
        y = jnp.linalg.solve(T + diag_shift * jnp.eye(T.shape[0]), Oc @ F)
        return (F - Oc.T @ y) / diag_shift
    if solver == "cg":
        d, _ = jax.scipy.sparse.linalg.cg(lambda v: Oc.T @ (Oc @ v) + diag_shift * v, F, tol=tol, maxiter=maxiter)
        return d
    raise ValueError(f"unknown SR solver {solver!r}: use 'dense', 'minsr' or 'cg'")


# --------------------------------------------------------------------------------- the driver
@dataclass(frozen=True, eq=False)
class DBMVMC:
    """VMC of a :class:`DeepBoltzmann` over the joint chain; the interface of :class:`nqs.drivers.vmc.VMC`.

    ``init``, ``make_step``, ``estimate``, ``n_parameters``, ``solver`` behave as VMC's (same
    state, info keys and return shapes); ``estimate`` returns σ samples and per-sample
    ε = ½(Ē_1 + Ē_2) (so ``Stats.variance`` is Var ε, which includes the deep-layer noise and is
    larger than Var_ψ E_loc).  ``metric`` chooses the SR metric ("pair" or "mean", module
    docstring (v)); ``deep_decay`` μ ≥ 0 the decoupled decay of U (module docstring (vi)).
    Optimizer kinds "sr", "minsr", "sgd", "adam" as in :class:`~nqs.drivers.vmc.OptimizerConfig`.
    """

    model: DeepBoltzmann
    hamiltonian: Any
    sampler: JointMetropolisSampler
    optimizer: OptimizerConfig = OptimizerConfig()
    metric: str = "pair"
    deep_decay: float = 0.0

    def __post_init__(self):
        if self.metric not in ("pair", "mean"):
            raise ValueError(f"metric must be 'pair' or 'mean', got {self.metric!r}")
        if self.deep_decay < 0:
            raise ValueError(f"deep_decay must be >= 0, got {self.deep_decay!r}")

    # ------------------------------------------------------------------ set-up
    def init(self, key, params=None) -> VMCState:
        k_model, k_sampler = jax.random.split(key)
        if params is None:
            params = self.model.init(k_model)
        params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), params)
        opt_state = self.optimizer.transform().init(params)
        sstate = self.sampler.init_state(k_sampler, self.model.n_deep)
        return VMCState(params, opt_state, sstate, jnp.zeros((), jnp.int64))

    def place(self, state: VMCState) -> VMCState:
        """No-op (one device; :func:`nqs.drivers.vmc.run` calls it)."""
        return state

    def physical_params(self, params):
        return params

    @property
    def param_mode(self) -> str:
        return "real"

    def n_parameters(self, state: VMCState) -> int:
        return int(ravel_pytree(state.params)[0].size)

    def solver(self, state: VMCState) -> str:
        """"dense", "minsr" or "cg" for SR (auto: fewer flops on the metric's rows), else the kind."""
        if self.optimizer.kind == "minsr":
            return "minsr"
        if self.optimizer.kind != "sr":
            return self.optimizer.kind
        rows = self.sampler.n_samples * (2 if self.metric == "pair" else 1)
        return self.optimizer.sr.choose(self.n_parameters(state), rows, "real", real_rows=True)

    def for_evaluation(self, n_samples: int | None) -> DBMVMC:
        """This driver drawing ``n_samples`` σ samples per :meth:`estimate` (as VMC.for_evaluation)."""
        if n_samples is None:
            return self
        return dataclasses.replace(self, sampler=dataclasses.replace(self.sampler, n_samples=n_samples))

    def estimator_info(self) -> dict:
        """The driver, its joint-chain settings and what :meth:`estimate`'s statistics are (result.json)."""
        return {"driver": "DBMVMC", "sampler": type(self.sampler).__name__,
                "deep_samples": self.sampler.deep_samples, "deep_decay": self.deep_decay, "metric": self.metric,
                "variance": "Var eps, eps = (E_loc(s,d) + E_loc(s,d'))/2 averaged over the deep draws: includes "
                            "the deep-layer noise, so 'variance' and 'v_score' are upper bounds of Var E_loc "
                            "and of the V-score"}

    # ------------------------------------------------------------------ pieces
    def sample_joint(self, params, sampler_state, derivatives: bool = False):
        """``(JointSamples, e_pair (C, P, 2), O_pair (C, P, 2, P_θ) or None, new sampler state)``.

        ``e_pair[..., r]`` and ``O_pair[..., r, :]`` are E_loc and O of replica r averaged over its
        R = ``sampler.deep_samples`` recorded deep configurations.
        """
        js, sstate = self.sampler.sample(self.model, params, sampler_state)
        c, p, r, _, k = js.deep.shape
        deep = js.deep.reshape(c, p, 2 * r, k)
        e_pair = jnp.mean(joint_local_energies(self.model, params, self.hamiltonian, js.sigma, deep)
                          .reshape(c, p, r, 2), axis=2)
        O_pair = None
        if derivatives:
            O = joint_log_derivatives(self.model, params, js.sigma, deep)
            O_pair = jnp.mean(O.reshape(c, p, r, 2, O.shape[-1]), axis=2)
        return js, e_pair, O_pair, sstate

    def estimate(self, params, sampler_state):
        """``(σ samples (C, P, N), weights (C, P), ε (C, P), Stats, sampler_state)`` as VMC.estimate."""
        js, e_pair, _, sstate = self.sample_joint(params, sampler_state)
        eps = jnp.mean(e_pair, axis=-1)
        weights = jnp.full(eps.shape, 1.0 / eps.size)
        return js.sigma, weights, eps, statistics(eps), sstate

    def make_estimate(self):
        """:meth:`estimate` jitted, as ``fn(params, sampler_state)`` (VMC.make_estimate; one thread)."""
        return jax.jit(self.estimate)

    def make_step(self, solver: str):
        """The jitted ``step(state) -> (state, info)``; ``solver`` (see :meth:`solver`) is static."""
        tx = self.optimizer.transform()
        oc = self.optimizer

        def step(state: VMCState):
            params = state.params
            js, e_pair, O, sstate = self.sample_joint(params, state.sampler_state, derivatives=True)
            eps = jnp.mean(e_pair, axis=-1)
            stats = statistics(eps)
            n = eps.size
            O = O.reshape(n, 2, -1)
            e2 = e_pair.reshape(n, 2)
            w = jnp.full((n,), 1.0 / n)
            flat, unravel = ravel_pytree(params)
            shift = oc.sr.shift(state.step)
            if oc.kind in ("sr", "minsr"):
                d = joint_direction(O, e2, w, self.metric, shift, solver, oc.sr.cg_tol, oc.sr.cg_maxiter)
            else:
                d = joint_gradient(O, e2, w)
            d = d.astype(flat.dtype)
            updates, opt_state = tx.update(unravel(d), state.opt_state, params)
            new_params = optax.apply_updates(params, updates)
            if self.deep_decay:
                sched = oc.schedule()
                lr = sched(state.step) if callable(sched) else sched
                new_params = dict(new_params, U=new_params["U"] * (1.0 - lr * self.deep_decay))
            return finish_step(state, new_params, opt_state, sstate, stats, d, shift)

        return jax.jit(step)


def exact_joint_weights(model: DeepBoltzmann, params, states) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (σ, d, d') over ``states`` (n_σ, N) and all deep pairs, with exact weights φφ'/Z.

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
        params, jnp.asarray(sigma), jnp.asarray(deep))
    lw = np.asarray(jnp.sum(lphi, axis=-1))
    w = np.exp(lw - lw.max())
    return sigma, deep, w / w.sum()

