"""Local estimators and their weighted averages; every function takes sample weights.

* ``E_loc(σ) = Σ_σ' ⟨σ|H|σ'⟩ ψ(σ')/ψ(σ)`` from the operator's moves and the model's fast path;
* ``O_k(σ) = ∂ log ψ(σ)/∂θ_k`` (see :mod:`nqs.conventions` for complex parameters);
* force ``F = Σ_s w_s O_s^* (E_s − Ē)`` and ``S = Σ_s w_s (O_s − Ō)^* (O_s − Ō)ᵀ``.

Weights are ``1/n`` for Markov-chain samples and ``|ψ|²/Z`` for exact enumeration, so the same
code gives noise-free results in exact mode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .jax_utils import chunked_vmap


def local_energy(model, params, operator, sigma, cache=None):
    """E_loc(σ) for one configuration σ (n_sites,), complex scalar."""
    if cache is None:
        cache = model.cache(params, sigma)
    diag, mels, sites, new_values, mask = operator.moves(sigma)
    ratios = model.log_ratios(params, sigma, cache, sites, new_values, mask)
    nz = mels != 0
    contrib = jnp.where(nz, mels * jnp.exp(jnp.where(nz, ratios, 0.0)), 0.0)
    return diag + jnp.sum(contrib)


def local_energies(model, params, operator, samples, chunk_size=None, mesh=None):
    """E_loc for a batch of configurations (..., n_sites) → (...,), complex.

    ``mesh``: rows split over its devices are chunked per device (see :func:`~nqs.jax_utils.chunked_vmap`).
    """
    shape = samples.shape[:-1]
    flat = samples.reshape(-1, samples.shape[-1])
    e = chunked_vmap(lambda s: local_energy(model, params, operator, s), flat, chunk_size, mesh)
    return e.reshape(shape)


def log_derivatives(model, params, samples, mode: str, chunk_size=None, mesh=None):
    """Per-sample O_k(σ) = ∂ log ψ/∂θ_k, shape (n, n_params), complex.

    ``mode`` is ``"holomorphic"`` (complex derivative w.r.t. complex θ) or ``"real"``
    (real θ; O = ∂ Re log ψ/∂θ + i ∂ Im log ψ/∂θ).  Models with ``real_derivatives`` (Im log ψ
    independent of θ) give a real O of the same shape.
    """
    flat = samples.reshape(-1, samples.shape[-1])

    if mode == "holomorphic":
        def one(s):
            g = jax.grad(lambda p: model.log_psi(p, s), holomorphic=True)(params)
            return ravel_pytree(g)[0]
    elif mode == "real" and getattr(model, "real_derivatives", False):
        def one(s):
            return ravel_pytree(jax.grad(lambda p: jnp.real(model.log_psi(p, s)))(params))[0]
    elif mode == "real":
        def one(s):
            gr = jax.grad(lambda p: jnp.real(model.log_psi(p, s)))(params)
            gi = jax.grad(lambda p: jnp.imag(model.log_psi(p, s)))(params)
            return ravel_pytree(gr)[0] + 1j * ravel_pytree(gi)[0]
    else:
        raise ValueError(f"log_derivatives: mode must be 'holomorphic' or 'real', got {mode!r}")
    return chunked_vmap(one, flat, chunk_size, mesh)


def centered(O, e_loc, weights):
    """Ō = √w (O − ⟨O⟩) (n, P) and ε = √w (E − Ē) (n,): S = Ō†Ō, F = Ō†ε (in O's precision)."""
    w = weights.reshape(-1).astype(jnp.finfo(O.dtype).dtype)
    e = e_loc.reshape(-1)
    sw = jnp.sqrt(w)
    Oc = (O - jnp.sum(w[:, None] * O, axis=0)) * sw[:, None]
    ec = (e - jnp.sum(w * e)) * sw
    return Oc, ec


def force_and_s(O, e_loc, weights):
    """Force F (P,) and quantum geometric tensor S (P, P), both complex (dense)."""
    Oc, ec = centered(O, e_loc, weights)
    return Oc.conj().T @ ec, Oc.conj().T @ Oc


def structure_factor_samples(samples, positions, momenta):
    """Per-sample S^{zz}(q) = |Σ_i e^{i q·r_i} S^z_i|² / N with S^z = σ/2; shape (..., n_q)."""
    phase = jnp.exp(1j * jnp.asarray(momenta) @ jnp.asarray(positions).T)  # (n_q, N)
    m = (samples.astype(jnp.float64) / 2) @ phase.T
    return jnp.abs(m) ** 2 / samples.shape[-1]
