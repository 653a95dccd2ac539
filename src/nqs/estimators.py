"""Local estimators and their weighted averages; every function takes sample weights.

* ``E_loc(σ) = Σ_σ' ⟨σ|H|σ'⟩ ψ(σ')/ψ(σ)`` from the operator's moves and the model's fast path
  (:func:`~nqs.models.base.fast_path`);
* ``O_k(σ) = ∂ log ψ(σ)/∂θ_k`` (see :mod:`nqs.conventions` for complex parameters);
* force ``F = Σ_s w_s O_s^* (E_s − Ē)`` and ``S = Σ_s w_s (O_s − Ō)^* (O_s − Ō)ᵀ``;
* :class:`FactoredJacobian`: O kept as the factors a model gives (the RBM's ``∂/∂W_ij = σ_i tanh θ_j``
  is an outer product per sample), so that SR never forms the n × P matrix.

Weights are ``1/n`` for Markov-chain samples and ``|ψ|²/Z`` for exact enumeration, so the same
code gives noise-free results in exact mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .jax_utils import chunked_vmap
from .models.base import fast_path
from .operators.moves import apply_moves


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

    def tree_flatten(self) -> tuple[tuple[Any, ...], None]:
        return (self.blocks,), None

    @classmethod
    def tree_unflatten(cls, aux: Any, children: Any) -> FactoredJacobian:
        return cls(children[0])

    @property
    def shape(self) -> tuple[int, int]:
        n = self.blocks[0][0].shape[0]
        return n, sum(_block_size(b) for b in self.blocks)

    @property
    def dtype(self) -> np.dtype:
        return jnp.result_type(*[x.dtype for b in self.blocks for x in b])

    def dense(self) -> jax.Array:
        """The (n, P) matrix."""
        cols = []
        for b in self.blocks:
            if len(b) == 1:
                cols.append(_rows(b[0]))
            else:
                u, v = b
                cols.append((u[:, :, None] * v[:, None, :]).reshape(u.shape[0], -1))
        return jnp.concatenate(cols, axis=1).astype(self.dtype)

    def gram(self, precision: Any = jax.lax.Precision.HIGHEST) -> jax.Array:
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

    def rmatvec(self, z: jax.Array, precision: Any = jax.lax.Precision.HIGHEST) -> jax.Array:
        """``O† z`` (P,) for z (n,)."""
        out = []
        for b in self.blocks:
            if len(b) == 1:
                out.append(jnp.matmul(_rows(b[0]).conj().T, z, precision=precision))
            else:
                u, v = b
                out.append(jnp.matmul(u.conj().T, z[:, None] * v.conj(), precision=precision).reshape(-1))
        return jnp.concatenate(out)

    def matvec(self, x: jax.Array, precision: Any = jax.lax.Precision.HIGHEST) -> jax.Array:
        """``O x`` (n,) for x (P,)."""
        out, k = 0, 0
        for b in self.blocks:
            m = _block_size(b)
            xb = x[k : k + m]
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


def has_factored_derivatives(model: Any, params: Any, sigma: jax.Array) -> bool:
    """Whether the model's fast path gives ``log_derivative_factors`` (checked by shape evaluation only)."""
    return jax.eval_shape(fast_path(model).log_derivative_factors, params, sigma) is not None


def _active_moves(operator, sigma):
    """``operator.moves(σ)`` cut to the connections that apply (at most ``operator.max_active`` of them,
    when the operator knows that bound); the others keep ``mels = 0``."""
    diag, mels, sites, new_values, mask = operator.moves(sigma)
    bound = getattr(operator, "max_active", None)
    if bound is not None and bound < mels.shape[0]:
        idx = jnp.nonzero(mels != 0, size=bound, fill_value=0)[0]
        used = jnp.arange(bound) < jnp.count_nonzero(mels)
        mels = jnp.where(used, mels[idx], 0)
        sites, new_values, mask = sites[idx], new_values[idx], mask[idx]
    return diag, mels, sites, new_values, mask


def _amplitudes(mels, ratios):
    """ψ(σ′)/ψ(σ) = e^{ratio} for the connections that apply (mels ≠ 0), 0 for the others (whose ratio may
    be undefined)."""
    nz = mels != 0
    return jnp.where(nz, jnp.exp(jnp.where(nz, ratios, 0.0)), 0.0)


def local_energy(
    model: Any, params: Any, operator: Any, sigma: jax.Array, cache: Any = None, flips: Callable[..., Any] | None = None
) -> jax.Array:
    """E_loc(σ) for one configuration σ (n_sites,), complex scalar.  ``params`` as the model's fast path
    prepared them (or as they are); ``flips``: the ratios from its flip path (:func:`flip_ratios`) instead
    of its ``log_ratios``."""
    path = fast_path(model)
    if cache is None:
        cache = path.cache(params, sigma)
    if flips is not None:
        diag, mels, _, _, _ = operator.moves(sigma)
        if mels.shape[0] == 0:  # a diagonal operator: no ratios to compute
            return diag + jnp.zeros((), jnp.complex128)
        ratios = flips(sigma, cache)
    else:
        diag, mels, sites, new_values, mask = _active_moves(operator, sigma)
        if mels.shape[0] == 0:
            return diag + jnp.zeros((), jnp.complex128)
        ratios = path.log_ratios(params, sigma, cache, sites, new_values, mask)
    return diag + jnp.sum(mels * _amplitudes(mels, ratios))


def local_energies(
    model: Any, params: Any, operator: Any, samples: jax.Array, chunk_size: int | None = None, mesh: Any = None
) -> jax.Array:
    """E_loc for a batch of configurations (..., n_sites) → (...,), complex.

    ``mesh``: rows split over its devices are chunked per device (see :func:`~nqs.jax_utils.chunked_vmap`).
    """
    shape = samples.shape[:-1]
    flat = samples.reshape(-1, samples.shape[-1])
    params = fast_path(model).prepare(params)
    flips = flip_ratios(model, params, operator)
    e = chunked_vmap(lambda s: local_energy(model, params, operator, s, flips=flips), flat, chunk_size, mesh)
    return e.reshape(shape)


def local_energy_h2(model: Any, params: Any, operator: Any, sigma: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(E_loc(σ), H2_loc(σ), n_lost)`` for one configuration, with H2_loc(σ) = (H²ψ)(σ)/ψ(σ) =
    Σ_σ′ ⟨σ|H|σ′⟩ ψ(σ′)/ψ(σ) · E_loc(σ′): a local energy at every connected σ′ (G of them), so G + 1
    local energies per sample.  ``n_lost`` counts connected σ′ with ψ(σ′) = 0, whose E_loc is undefined
    and whose term is left out (their (Hψ)(σ′) is not zero in general: the estimate is then biased)."""
    path = fast_path(model)
    cache = path.cache(params, sigma)
    diag, mels, sites, new_values, mask = _active_moves(operator, sigma)
    amp = _amplitudes(mels, path.log_ratios(params, sigma, cache, sites, new_values, mask))
    e = diag + jnp.sum(mels * amp)
    primed = jax.vmap(apply_moves, in_axes=(None, 0, 0))(sigma, sites, new_values)
    e_primed = jax.vmap(lambda s: local_energy(model, params, operator, s))(primed)
    nz = mels != 0
    ok = nz & (amp != 0) & jnp.isfinite(e_primed)
    h2 = diag * e + jnp.sum(jnp.where(ok, mels * amp * jnp.where(ok, e_primed, 0.0), 0.0))
    return e, h2, jnp.sum(nz & ~ok)


def local_energies_h2(
    model: Any, params: Any, operator: Any, samples: jax.Array, chunk_size: int | None = None, mesh: Any = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`local_energy_h2` for a batch (..., n_sites) → three arrays (...,)."""
    shape = samples.shape[:-1]
    flat = samples.reshape(-1, samples.shape[-1])
    params = fast_path(model).prepare(params)
    e, h2, lost = chunked_vmap(lambda s: local_energy_h2(model, params, operator, s), flat, chunk_size, mesh)
    return e.reshape(shape), h2.reshape(shape), lost.reshape(shape)


def flip_ratios(model: Any, prepared: Any, operator: Any) -> Callable[..., Any] | None:
    """``(σ, cache) → log ψ(σ′_g) − log ψ(σ)`` for every connection g through the model's flip path, when
    the operator's connections flip fixed sites (``operator.flip_sites``) and the model has one; else None.
    ``prepared``: the output of the fast path's ``prepare`` (the flip path's tables are built from it once)."""
    sites = getattr(operator, "flip_sites", None)
    path = None if sites is None else fast_path(model).flip_path(sites)
    if path is None:
        return None
    tables = path.prepare(prepared)
    return lambda sigma, cache: path.log_ratios(tables, sigma, cache)


def log_derivatives(
    model: Any,
    params: Any,
    samples: jax.Array,
    mode: str,
    chunk_size: int | None = None,
    mesh: Any = None,
    factored: bool = False,
) -> jax.Array | FactoredJacobian:
    """Per-sample O_k(σ) = ∂ log ψ/∂θ_k, shape (n, n_params), complex.

    ``mode`` is ``"holomorphic"`` (complex derivative w.r.t. complex θ) or ``"real"``
    (real θ; O = ∂ Re log ψ/∂θ + i ∂ Im log ψ/∂θ).  Models with ``real_derivatives`` (Im log ψ
    independent of θ) give a real O of the same shape.

    ``factored``: a :class:`FactoredJacobian` when the model's fast path gives ``log_derivative_factors``
    (the RBM's does; holomorphic or real-derivative models only), else the dense matrix as usual.
    """
    flat = samples.reshape(-1, samples.shape[-1])
    if (
        factored
        and (mode == "holomorphic" or model.real_derivatives)
        and has_factored_derivatives(model, params, flat[0])
    ):
        path = fast_path(model)

        def factors(s):
            f = path.log_derivative_factors(params, s)
            return jax.tree_util.tree_leaves(f, is_leaf=lambda x: isinstance(x, tuple))

        blocks = chunked_vmap(factors, flat, chunk_size, mesh)
        if mode == "real":
            blocks = [tuple(jnp.real(x) for x in b) for b in blocks]
        return FactoredJacobian(blocks)

    if mode == "holomorphic":

        def one(s):
            g = jax.grad(lambda p: model.log_psi(p, s), holomorphic=True)(params)
            return ravel_pytree(g)[0]
    elif mode == "real" and model.real_derivatives:

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


def centered_energies(e_loc: jax.Array, weights: jax.Array, dtype: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(w, √w, ε)`` with ε = √w (E − Ē) (n,) and the weights in ``dtype``'s real precision."""
    w = weights.reshape(-1).astype(jnp.finfo(dtype).dtype)
    e = e_loc.reshape(-1)
    sw = jnp.sqrt(w)
    return w, sw, (e - jnp.sum(w * e)) * sw


def centered(O: jax.Array, e_loc: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Ō = √w (O − ⟨O⟩) (n, P) and ε = √w (E − Ē) (n,): S = Ō†Ō, F = Ō†ε (in O's precision)."""
    w, sw, ec = centered_energies(e_loc, weights, O.dtype)
    Oc = (O - jnp.sum(w[:, None] * O, axis=0)) * sw[:, None]
    return Oc, ec


def force_and_s(O: jax.Array, e_loc: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Force F (P,) and quantum geometric tensor S (P, P), both complex (dense)."""
    Oc, ec = centered(O, e_loc, weights)
    return Oc.conj().T @ ec, Oc.conj().T @ Oc


def structure_factor_samples(samples: jax.Array, positions: np.ndarray, momenta: np.ndarray) -> jax.Array:
    """Per-sample S^{zz}(q) = |Σ_i e^{i q·r_i} S^z_i|² / N with S^z = σ/2; shape (..., n_q)."""
    phase = jnp.exp(1j * jnp.asarray(momenta) @ jnp.asarray(positions).T)  # (n_q, N)
    m = (samples.astype(jnp.float64) / 2) @ phase.T
    return jnp.abs(m) ** 2 / samples.shape[-1]


def _lanczos_from_moments(s1, s2, s3, s4):
    """E and β of one Lanczos step from the sample means s1 = ⟨E⟩, s2 = ⟨|E|²⟩, s3 = ⟨Re E* H2⟩,
    s4 = ⟨Re H2⟩ (E = E_loc, H2 = H2_loc): the lowest energy in span{ψ, (H − μ)ψ}, μ = s1."""
    mu = s1
    v = s2 - mu**2  # variance ⟨(H − μ)²⟩
    # third central moment ⟨ψ|(H − μ)³|ψ⟩ = ⟨(E − μ)* ((H − μ)²ψ)/ψ⟩ = s3 − 2μ s2 − μ s4 + 2μ³: the
    # fluctuations of H2_loc enter multiplied by E − μ (written as ⟨E* H2⟩ − 3μ⟨|E|²⟩ + 2μ³ they
    # would not, and on the 4×4 Hubbard model that estimate was useless at 512 samples)
    m3 = s3 - 2 * mu * s2 - mu * s4 + 2 * mu**3
    if not v > 0:  # an eigenstate (or round-off): nothing to gain
        return mu, 0.0, max(v, 0.0), m3
    # the 2 × 2 problem [[0, v], [v, m3]] c = ε [[1, 0], [0, v]] c: ε² v − ε m3 − v² = 0, lower root
    # (written without cancellation for either sign of m3; the roots multiply to −v)
    root = np.sqrt(m3**2 + 4 * v**3)
    eps = (m3 - root) / (2 * v) if m3 <= 0 else -2 * v**2 / (m3 + root)
    return mu + eps, eps / v, v, m3


def lanczos_step(
    e_loc: jax.Array | np.ndarray,
    h2_loc: jax.Array | np.ndarray,
    weights: jax.Array | np.ndarray | None = None,
    n_blocks: int = 32,
) -> dict:
    """Energy of one Lanczos step ψ₁ = ψ + β (H − E)ψ with the best β (the lowest energy in the span of
    ψ and Hψ), from per-sample E_loc and H2_loc (:func:`local_energies_h2`) under |ψ|² (``weights``:
    importance weights, e.g. the exact sampler's; None: equal).  ψ₁ is a wave function, so its energy is
    variational; on an eigenstate β = 0 and nothing changes.

    Moments: ⟨H⟩ = ⟨E_loc⟩, ⟨(H − μ)²⟩ = ⟨|E_loc − μ|²⟩, ⟨(H − μ)³⟩ = ⟨Re (E_loc − μ)* ((H − μ)²ψ)/ψ⟩ (both
    zero-variance on an eigenstate).
    The error bar is a jackknife over ``n_blocks`` contiguous blocks of the samples (in chain order, so
    a block holds whole chains or long stretches of one).  Returns a dict: ``energy``, ``error``,
    ``beta``, ``variance`` and ``third_moment`` of ψ, ``energy_psi`` (⟨H⟩ of ψ from the same samples) and
    ``gain`` (energy − energy_psi, ≤ 0) with its own jackknife ``gain_error``.  A tail event in E_loc moves
    energy_psi and the gain in opposite directions, so ``gain_error`` is not smaller than ``error`` in general.
    """
    e = np.asarray(e_loc).reshape(-1)
    h2 = np.asarray(h2_loc).reshape(-1)
    w = np.full(e.shape, 1.0 / e.size) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    cols = np.stack([e.real, np.abs(e) ** 2, np.real(np.conj(e) * h2), h2.real], axis=1) * w[:, None]
    means = cols.sum(0) / w.sum()
    energy, beta, var, m3 = _lanczos_from_moments(*means)
    mu = means[0]
    out = {
        "energy": float(energy),
        "error": float("nan"),
        "beta": float(beta),
        "variance": float(var),
        "third_moment": float(m3),
        "energy_psi": float(mu),
        "gain": float(energy - mu),
        "gain_error": float("nan"),
    }
    nb = int(min(n_blocks, e.size))
    if nb < 2:
        return out
    edges = np.linspace(0, e.size, nb + 1).astype(int)
    sums = np.stack([cols[a:b].sum(0) for a, b in zip(edges[:-1], edges[1:], strict=True)])
    wsum = np.array([w[a:b].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    tot, wtot = sums.sum(0), wsum.sum()
    rest = [(tot - sums[i]) / (wtot - wsum[i]) for i in range(nb)]
    jack = np.array([_lanczos_from_moments(*r)[0] for r in rest])
    gain = jack - np.array([r[0] for r in rest])

    def spread(x):
        return float(np.sqrt((nb - 1) / nb * np.sum((x - x.mean()) ** 2)))

    return {**out, "error": spread(jack), "gain_error": spread(gain)}
