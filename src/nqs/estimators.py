"""Local estimators and their weighted averages; every function takes sample weights.

* ``E_loc(σ) = Σ_σ' ⟨σ|H|σ'⟩ ψ(σ')/ψ(σ)`` from the operator's moves and the model's fast path;
* ``O_k(σ) = ∂ log ψ(σ)/∂θ_k`` (see :mod:`nqs.conventions` for complex parameters);
* force ``F = Σ_s w_s O_s^* (E_s − Ē)`` and ``S = Σ_s w_s (O_s − Ō)^* (O_s − Ō)ᵀ``;
* :class:`FactoredJacobian`: O kept as the factors a model gives (the RBM's ``∂/∂W_ij = σ_i tanh θ_j``
  is an outer product per sample), so that SR never forms the n × P matrix.

Weights are ``1/n`` for Markov-chain samples and ``|ψ|²/Z`` for exact enumeration, so the same
code gives noise-free results in exact mode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .jax_utils import chunked_vmap


@jax.tree_util.register_pytree_node_class
class FactoredJacobian:
    """Per-sample log-derivatives O (n, P) in factored form, one block per parameter leaf (in
    ``ravel_pytree`` order):

    * ``(X,)`` with X (n, p): the block is X itself;
    * ``(U, V)`` with U (n, p), V (n, q): row s of the block is ``vec(U_s ⊗ V_s)`` (p·q entries, U's
      index outer, as a (p, q) leaf ravels).

    The products SR needs never form the n × P matrix: the Gram matrix ``O O†`` of a Kronecker block
    is ``(U U†) ⊙ (V V†)`` — 2n²(p + q) flops instead of 2n²·p·q — and ``O† z`` of it is the p × q
    matrix ``U† diag(z) V*``.  :meth:`dense` gives the plain matrix (tests, the dense solver).
    """

    def __init__(self, blocks):
        self.blocks = tuple(tuple(b) for b in blocks)

    def tree_flatten(self):
        return (self.blocks,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0])

    @property
    def shape(self):
        n = self.blocks[0][0].shape[0]
        return n, sum(_block_size(b) for b in self.blocks)

    @property
    def dtype(self):
        return jnp.result_type(*[x.dtype for b in self.blocks for x in b])

    def dense(self):
        """The (n, P) matrix."""
        cols = []
        for b in self.blocks:
            if len(b) == 1:
                cols.append(_rows(b[0]))
            else:
                u, v = b
                cols.append((u[:, :, None] * v[:, None, :]).reshape(u.shape[0], -1))
        return jnp.concatenate(cols, axis=1).astype(self.dtype)

    def gram(self, precision=jax.lax.Precision.HIGHEST):
        """``O O†`` (n, n)."""
        done = {}

        def mm(a):
            # the RBM's σ and tanh θ appear in two blocks each (a and W, b and W): one product each
            if id(a) not in done:
                done[id(a)] = (a, jnp.matmul(a, a.conj().T, precision=precision))
            return done[id(a)][1]

        g = 0
        for b in self.blocks:
            g = g + (mm(_rows(b[0])) if len(b) == 1 else mm(b[0]) * mm(b[1]))
        return g

    def rmatvec(self, z, precision=jax.lax.Precision.HIGHEST):
        """``O† z`` (P,) for z (n,)."""
        out = []
        for b in self.blocks:
            if len(b) == 1:
                out.append(jnp.matmul(_rows(b[0]).conj().T, z, precision=precision))
            else:
                u, v = b
                out.append(jnp.matmul(u.conj().T, z[:, None] * v.conj(), precision=precision).reshape(-1))
        return jnp.concatenate(out)

    def matvec(self, x, precision=jax.lax.Precision.HIGHEST):
        """``O x`` (n,) for x (P,)."""
        out, k = 0, 0
        for b in self.blocks:
            m = _block_size(b)
            xb = x[k:k + m]
            k += m
            if len(b) == 1:
                out = out + jnp.matmul(_rows(b[0]), xb, precision=precision)
            else:
                u, v = b
                uw = jnp.matmul(u, xb.reshape(u.shape[1], v.shape[1]), precision=precision)
                out = out + jnp.sum(uw * v, axis=1)
        return out


def _rows(x):
    """A dense block as (n, p); the array itself when already 2-D (``gram`` shares products by identity)."""
    return x if x.ndim == 2 else x.reshape(x.shape[0], -1)


def _block_size(b):
    if len(b) == 1:
        return int(b[0].size // b[0].shape[0])
    return int(b[0].shape[1] * b[1].shape[1])


def has_factored_derivatives(model, params, sigma) -> bool:
    """Whether ``model.log_derivative_factors`` gives factors (checked by shape evaluation only)."""
    fn = getattr(model, "log_derivative_factors", None)
    if fn is None:
        return False
    return jax.eval_shape(fn, params, sigma) is not None


def local_energy(model, params, operator, sigma, cache=None, flips=None):
    """E_loc(σ) for one configuration σ (n_sites,), complex scalar.  ``flips``: the ratios from a model's
    flip path (:func:`flip_ratios`) instead of its ``log_ratios``."""
    if cache is None:
        cache = model.cache(params, sigma)
    diag, mels, sites, new_values, mask = operator.moves(sigma)
    if flips is not None:
        ratios = flips(sigma, cache)
    else:
        bound = getattr(operator, "max_active", None)
        if bound is not None and bound < mels.shape[0]:
            # only the connections that apply (at most ``bound`` of them) reach the model
            idx = jnp.nonzero(mels != 0, size=bound, fill_value=0)[0]
            used = jnp.arange(bound) < jnp.count_nonzero(mels)
            mels = jnp.where(used, mels[idx], 0)
            sites, new_values, mask = sites[idx], new_values[idx], mask[idx]
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
    params = model.prepare(params)
    flips = flip_ratios(model, params, operator)
    e = chunked_vmap(lambda s: local_energy(model, params, operator, s, flips=flips), flat, chunk_size, mesh)
    return e.reshape(shape)


def flip_ratios(model, prepared, operator):
    """``(σ, cache) → log ψ(σ′_g) − log ψ(σ)`` for every connection g through the model's flip path, when
    the operator's connections flip fixed sites (``operator.flip_sites``) and the model has one; else None.
    ``prepared``: the output of ``model.prepare`` (the path's tables are built from it once)."""
    sites = getattr(operator, "flip_sites", None)
    path = None if sites is None else model.flip_path(sites)
    if path is None:
        return None
    tables = path.prepare(prepared)
    return lambda sigma, cache: path.log_ratios(tables, sigma, cache)


def log_derivatives(model, params, samples, mode: str, chunk_size=None, mesh=None, factored: bool = False):
    """Per-sample O_k(σ) = ∂ log ψ/∂θ_k, shape (n, n_params), complex.

    ``mode`` is ``"holomorphic"`` (complex derivative w.r.t. complex θ) or ``"real"``
    (real θ; O = ∂ Re log ψ/∂θ + i ∂ Im log ψ/∂θ).  Models with ``real_derivatives`` (Im log ψ
    independent of θ) give a real O of the same shape.

    ``factored``: a :class:`FactoredJacobian` when the model gives ``log_derivative_factors`` (the
    RBM does; holomorphic or real-derivative models only), else the dense matrix as usual.
    """
    flat = samples.reshape(-1, samples.shape[-1])
    if factored and (mode == "holomorphic" or getattr(model, "real_derivatives", False)) \
            and has_factored_derivatives(model, params, flat[0]):
        def factors(s):
            f = model.log_derivative_factors(params, s)
            return jax.tree_util.tree_leaves(f, is_leaf=lambda x: isinstance(x, tuple))

        blocks = chunked_vmap(factors, flat, chunk_size, mesh)
        if mode == "real":
            blocks = [tuple(jnp.real(x) for x in b) for b in blocks]
        return FactoredJacobian(blocks)

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


def centered_energies(e_loc, weights, dtype):
    """``(w, √w, ε)`` with ε = √w (E − Ē) (n,) and the weights in ``dtype``'s real precision."""
    w = weights.reshape(-1).astype(jnp.finfo(dtype).dtype)
    e = e_loc.reshape(-1)
    sw = jnp.sqrt(w)
    return w, sw, (e - jnp.sum(w * e)) * sw


def centered(O, e_loc, weights):
    """Ō = √w (O − ⟨O⟩) (n, P) and ε = √w (E − Ē) (n,): S = Ō†Ō, F = Ō†ε (in O's precision)."""
    w, sw, ec = centered_energies(e_loc, weights, O.dtype)
    Oc = (O - jnp.sum(w[:, None] * O, axis=0)) * sw[:, None]
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
