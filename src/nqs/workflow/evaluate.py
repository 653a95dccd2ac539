"""The final evaluation of a run: energy, structure factor, Sz–Sz correlations, the correlation ratio and
the optional Lanczos step, from fresh samples at frozen parameters."""

from __future__ import annotations

import time
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np

from .. import estimators
from ..estimators import structure_factor_samples
from ..stats import statistics
from .build import Problem


def _stats_dict(s) -> dict:
    return {
        "mean": float(jnp.real(s.mean)),
        "error": float(s.error),
        "variance": float(s.variance),
        "tau_corr": float(s.tau_corr),
        "r_hat": float(s.r_hat),
    }


def spin_samples(problem: Problem, samples):
    """σ_i = 2 S^z_i per site: the samples themselves for spins, n_i↑ − n_i↓ for electrons."""
    if problem.fermions:
        L = problem.hilbert.n_sites
        return samples[..., :L].astype(jnp.int8) - samples[..., L:].astype(jnp.int8)
    return samples


def evaluate(problem: Problem, params, sampler_state, n_samples: int | None):
    """Final estimate of E, Var E, S(q) and ⟨SᶻSᶻ⟩ with frozen parameters.

    Returns ``(stats, sq_stats, zz_stats, sq_samples, weights, sampler_state)``; the per-sample
    S(q) values feed :func:`correlation_ratio`.
    """
    vmc = problem.driver.for_evaluation(n_samples)
    lat = problem.lattice

    @jax.jit
    def correlations(samples):
        sigma = spin_samples(problem, samples)
        sq = structure_factor_samples(sigma, lat.positions, lat.momenta())
        zz = sigma[..., :1].astype(jnp.float64) * sigma.astype(jnp.float64) / 4
        return sq, zz

    samples, weights, _, stats, sstate = vmc.make_estimate()(params, sampler_state)  # on the step's threads
    sq, zz = correlations(samples)
    mcmc = not vmc.sampler.exact
    sq_stats = [statistics(sq[..., i], weights, mcmc) for i in range(sq.shape[-1])]
    zz_stats = [statistics(zz[..., j], weights, mcmc) for j in range(zz.shape[-1])]
    return stats, sq_stats, zz_stats, sq, weights, sstate


def lanczos_evaluate(
    problem: Problem, params, sampler_state, n_samples: int | None, power: float = 1.0, chunk_size: int = 64
):
    """One Lanczos step on the final state (:func:`nqs.estimators.lanczos_step`) from ``n_samples`` fresh
    samples of |ψ|^``power`` (Markov chains; reweighted): returns the step's dict with ``n_samples``,
    ``lost_terms`` (connected configurations where ψ = 0, left out) and ``seconds`` added."""
    vmc = problem.driver.for_evaluation(n_samples)
    if not vmc.sampler.exact:
        vmc = replace(vmc, sampler=replace(vmc.sampler, power=power))
    t0 = time.perf_counter()

    @jax.jit
    def go(params, sstate):
        samples, weights, _ = vmc.sampler.sample(vmc.model, params, sstate)
        flat = samples.reshape(-1, samples.shape[-1])
        e, h2, lost = estimators.local_energies_h2(
            vmc.model, params, problem.hamiltonian, flat, min(chunk_size, flat.shape[0])
        )
        return e, h2, jnp.sum(lost), weights

    from ..parallel import to_host

    e, h2, lost, w = go(params, sampler_state)
    e, h2 = to_host(e), to_host(h2)  # every process's samples (several processes: gathered)
    out = estimators.lanczos_step(e, h2, None if w is None else to_host(w).reshape(-1))
    return {**out, "n_samples": int(e.size), "lost_terms": int(to_host(lost)), "seconds": time.perf_counter() - t0}


def correlation_ratio(lattice, sq_samples, weights=None, mcmc: bool = False) -> dict | None:
    """R = 1 − S(Q + δq)/S(Q) with Q the maximum of S(q) and δq the smallest momentum step
    (along the first periodic direction), with an error bar by linearization:
    the per-sample z = (s₁ − R′ s₀)/S(Q), R′ = S(Q+δq)/S(Q), has mean 0 and error = error of R.

    Returns None when the lattice has a single momentum (no δq)."""
    q = np.asarray(lattice.momenta())
    means = np.asarray([float(jnp.real(statistics(sq_samples[..., i], weights, mcmc).mean)) for i in range(len(q))])
    if len(q) < 2:
        return None
    iq = int(np.argmax(means))
    step = None
    for j, (L, p) in enumerate(zip(lattice.size, lattice.pbc, strict=True)):
        if p and L > 1:
            step = np.asarray(lattice.reciprocal_vectors())[j] / L
            break
    if step is None:
        return None
    target = q[iq] + step
    recip = np.asarray(lattice.reciprocal_vectors())
    # nearest momentum to Q + δq modulo reciprocal lattice vectors
    best, best_d = None, np.inf
    for i, qq in enumerate(q):
        d = target - qq
        c = np.linalg.solve(recip.T, d) if recip.shape[0] == recip.shape[1] else d / recip[0]
        if np.allclose(c, np.rint(c), atol=1e-8):
            best, best_d = i, 0.0
            break
        dist = np.linalg.norm(d)
        if dist < best_d:
            best, best_d = i, dist
    s0 = jnp.real(sq_samples[..., iq])
    s1 = jnp.real(sq_samples[..., best])
    S0, S1 = means[iq], means[best]
    if S0 <= 0:
        return None
    ratio = S1 / S0
    z = (s1 - ratio * s0) / S0
    err = float(statistics(z, weights, mcmc).error)
    return {"value": 1.0 - ratio, "error": err, "Q": q[iq].tolist(), "Q_plus_dq": q[best].tolist(), "S_Q": S0}
