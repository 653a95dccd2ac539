"""The model contract: ``init(key) -> params`` and ``log_psi(params, sigma) -> log ψ(σ)``.

``log_psi`` acts on ONE configuration σ of shape (n_sites,) and returns a complex scalar;
callers ``vmap`` over batches.

Fast path (optional)
--------------------
A model may keep a per-configuration cache (the RBM's angles θ = b + σW) and give
``log ψ(σ') − log ψ(σ)`` for a *move* σ → σ' from it, in O(k·M) for k changed sites:

* ``prepare(params)`` (once per batch of moves; the result is what the calls below receive)
* ``cache(params, sigma)``
* ``log_ratio(params, sigma, cache, sites, new_values, mask)``
* ``update_cache(params, sigma, cache, sites, new_values, mask)`` (after an accepted move)

``sites`` (k,) lists the changed sites (padded entries hold ``n_sites`` and have ``mask`` False),
``new_values`` (k,) the values there.  The defaults below implement the contract by full
re-evaluation, so a model that only defines ``log_psi`` (like a user function) works everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..operators.pauli import apply_moves


def log_cosh(z):
    """log cosh z for real or complex z, stable for large |Re z|."""
    s = jnp.where(jnp.real(z) < 0, -1.0, 1.0)
    z = z * s
    return z + jnp.log1p(jnp.exp(-2.0 * z)) - jnp.log(2.0)


def log_cosh_ratio_sum(theta, dtheta, block: int = 4):
    """Σ_j [log cosh(θ_j + Δ_j) − log cosh θ_j] over the last axis, for many Δ at once.

    ``theta`` (M,) and ``dtheta`` (C, M) (or any shapes broadcasting on the last axis).  Uses
    ``cosh(θ+Δ)/cosh θ = (e^Δ + u e^{−Δ})/(1 + u)`` with ``u = e^{−2θ}``, after flipping the signs
    of θ and Δ (cosh is even) so that Re θ ≥ 0 and |u| ≤ 1: no cancellation except at a true zero
    of cosh(θ+Δ) (the form cosh Δ + tanh θ sinh Δ loses e^{2|Δ|}·ε when tanh θ ≈ ∓1).  Per unit:
    one real exponential and one sin/cos pair (e^{±Δ} built from them, no complex division), and
    one logarithm per ``block`` units (the log of a product of ``block`` factors) — 2–2.5× faster
    than a log cosh per unit.  The imaginary part is defined modulo 2π (only ``exp`` of it is
    used).  A product of 4 factors overflows only beyond e^709, i.e. |Re Δ| ≳ 177 per unit.
    """
    return log_cosh_ratio_sum_gh(*cosh_ratio_state(theta), dtheta, block)


def cosh_ratio_state(theta):
    """``(sign, g, ug)``: sign = sign Re θ, g = 1/(1 + u), ug = u/(1 + u) with u = e^{−2·sign·θ} (|u| ≤ 1),
    from which cosh(θ + Δ)/cosh θ = g e^{sign·Δ} + ug e^{−sign·Δ}."""
    sign = jnp.where(jnp.real(theta) < 0, -1.0, 1.0).astype(jnp.real(theta).dtype)
    u = jnp.exp(-2.0 * sign * theta)
    g = 1.0 / (1.0 + u)
    return sign, g, u * g


def log_cosh_ratio_sum_gh(sign, g, ug, dtheta, block: int = 4):
    """:func:`log_cosh_ratio_sum` from ``sign`` = sign Re θ, ``g`` = 1/(1 + u) and ``ug`` = u/(1 + u),
    u = e^{−2·sign·θ} (as a cache keeps them)."""
    x = sign * dtheta
    if jnp.iscomplexobj(x):
        ea = jnp.exp(x.real)
        c, s = jnp.cos(x.imag), jnp.sin(x.imag)
        f = g * jax.lax.complex(ea * c, ea * s) + ug * jax.lax.complex(c / ea, -s / ea)
    else:
        e = jnp.exp(x)
        f = g * e + ug / e
    m = f.shape[-1]
    pad = (-m) % block
    if pad:
        f = jnp.concatenate([f, jnp.ones(f.shape[:-1] + (pad,), f.dtype)], axis=-1)
    f = f.reshape(f.shape[:-1] + ((m + pad) // block, block))
    return jnp.sum(jnp.log(jnp.prod(f, axis=-1)), axis=-1)


def _exponent(size):
    """The integer e with size = f·2^e, f in [1/2, 1), for finite size > 0 (read from the float's bits in
    float64; zero gives −1022)."""
    if size.dtype == jnp.float64:
        bits = jax.lax.bitcast_convert_type(size, jnp.int64)
        return (((bits >> 52) & 0x7FF) - 1022).astype(jnp.int32)
    return jnp.frexp(jnp.where(size > 0, size, 1.0))[1].astype(jnp.int32)


def power_of_two(e, dtype=jnp.float64):
    """2^e (exact) for integer e, clipped to the normal range of ``dtype`` (smaller e give its tiniest
    normal number: terms that small next to 1 do not matter where this is used)."""
    if jnp.dtype(dtype) == jnp.float64:
        e = jnp.clip(e, -1022, 1023).astype(jnp.int64)
        return jax.lax.bitcast_convert_type((e + 1023) << 52, jnp.float64)
    return jnp.ldexp(jnp.ones(jnp.shape(e), dtype), jnp.clip(e, -126, 127))


def _power_of_two_split(x):
    """``(m, e)`` with x = m·2^e and max(|Re m|, |Im m|) in [1/2, 1) (exact, no rounding)."""
    size = jnp.maximum(jnp.abs(jnp.real(x)), jnp.abs(jnp.imag(x)))
    e = _exponent(size)
    return x * power_of_two(-e, size.dtype), e


def scaled_product(f, scale=None, block: int = 4):
    """The products over the last axis of ``f`` (..., M) as ``(m, e)`` with Π f = m·2^e: each block of
    ``block`` factors is split into a mantissa and an exact power of two before the blocks are multiplied,
    so nothing overflows while a block stays below e^709 (|Re Δθ| ≲ 177 per RBM unit with blocks of 4)
    and there are fewer than ~250 blocks.  ``scale`` (...,) multiplies the result.  No logarithm, no
    division."""
    n = f.shape[-1]
    pad = (-n) % block
    if pad:
        f = jnp.concatenate([f, jnp.ones(f.shape[:-1] + (pad,), f.dtype)], axis=-1)
    # block b holds units b, b + n_b, b + 2n_b, ...: the product runs over a leading axis (contiguous vectors)
    m, e = _power_of_two_split(jnp.prod(f.reshape(f.shape[:-1] + (block, -1)), axis=-2))
    prod = jnp.prod(m, axis=-1)
    if scale is not None:
        prod = prod * scale
    m, e_last = _power_of_two_split(prod)
    return m, jnp.sum(e, axis=-1) + e_last


def move_delta(sigma, sites, new_values, mask):
    """The change d = σ'[sites] − σ[sites] of a move (zero on padded entries), float."""
    old = jnp.take(sigma, sites, mode="clip")
    return jnp.where(mask, new_values - old, 0).astype(jnp.float64)


class Model:
    """Base class: subclasses define ``init`` and ``log_psi``; may override the fast path."""

    n_sites: int
    holomorphic: bool = False
    #: True when the parameters are real and Im log ψ does not depend on them (ψ > 0 up to a fixed
    #: sign): then O_k is real and SR runs in real arithmetic on n rows instead of 2n.
    real_derivatives: bool = False

    def init(self, key: jax.Array) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_psi(self, params, sigma):  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- fast-path contract; default = full re-evaluation
    def prepare(self, params):
        """Parameters in the form the fast path takes, computed once per batch of moves (the
        sampler's sweeps, a batch of local energies): the RBM adds tables of e^{±2W}.  Callers pass
        the result to ``cache``/``log_ratio``/``update_cache``/``log_ratios``, which also accept the
        parameters as they are.  Default: unchanged."""
        return params

    def cache(self, params, sigma):
        return self.log_psi(params, sigma)

    def log_ratio(self, params, sigma, cache, sites, new_values, mask):
        new = apply_moves(sigma, jnp.where(mask, sites, sigma.shape[-1]), new_values)
        return self.log_psi(params, new) - cache

    def update_cache(self, params, sigma, cache, sites, new_values, mask):
        new = apply_moves(sigma, jnp.where(mask, sites, sigma.shape[-1]), new_values)
        return self.log_psi(params, new)

    def log_ratios(self, params, sigma, cache, sites, new_values, mask):
        """``log_ratio`` for many moves from one σ at once (leading axis of ``sites``, ``new_values``,
        ``mask``): what local energies need.  Models may batch it better; the imaginary part is
        only defined modulo 2π."""
        return jax.vmap(lambda s, v, m: self.log_ratio(params, sigma, cache, s, v, m))(sites, new_values, mask)

    def log_derivative_factors(self, params, sigma):
        """Optional: ∂ log ψ(σ)/∂θ per parameter leaf in factored form, or None (the default).

        A pytree like ``params`` whose leaves are tuples: ``(x,)`` with x of the leaf's shape, or
        ``(u, v)`` for a (p, q) leaf whose derivative is the outer product u ⊗ v.  SR then works on the
        factors (:class:`nqs.estimators.FactoredJacobian`) instead of the n × P matrix.
        """
        return None

    def image_path(self, perms, signs):
        """Optional fast path over all images of σ at once, for :class:`~nqs.models.Projected`.

        The images are ``e σ = s_e·(g_e σ)`` with ``(g_e σ)_{perms[e, i]} = σ_i`` and ``s_e = ±1`` (the spin
        flip); ``perms`` (n_e, n_sites) and ``signs`` (n_e,) are numpy arrays.  Returns an object with

        * ``prepare(params)`` → tables for the images (the RBM: its weights permuted, e^{±2W} per image),
        * ``cache(prepared, sigma)`` → ``(cache, logs)`` with ``logs[e] = log ψ(e σ)``,
        * ``ratio(prepared, sigma, cache, sites, new_values, mask)`` → ``(m, e)``, (n_e,) each, with
          ``ψ(e σ′)/ψ(e σ) = m·2^e`` (not logs: the projection sums them, so no logarithm per image is needed),
        * ``update_cache(prepared, sigma, cache, sites, new_values, mask)``,

        or None (the default): the projection then calls this model's own fast path image by image.
        """
        return None

    def flip_path(self, flip_sites):
        """Optional fast path for local energies of an operator whose connection ``g`` flips the fixed sites
        ``flip_sites[g]`` (a numpy array (G, k), padded with ``n_sites``; the Pauli sums).

        Returns an object with ``prepare(prepared)`` → tables (from the output of :meth:`prepare`, once per
        batch) and ``log_ratios(tables, sigma, cache)`` → (G,) log ψ(σ′_g) − log ψ(σ) for the cache of
        :meth:`cache` at the prepared parameters; or None (the default): :meth:`log_ratios` then serves.
        """
        return None

    def move_path(self, sites, signs):
        """Optional fast path for the Markov chains' moves (:class:`~nqs.sampling.MetropolisSampler`) when
        move g flips the fixed sites ``sites[g]`` and is made only where σ at them equals ±``signs[g]``
        (numpy arrays (G, k) of site indices and ±1): a local flip is k = 1, an exchange of a pair with
        opposite spins is k = 2 with signs (+1, −1).  On such a move Δσ = −2 σ_first·signs[g] at the sites,
        where σ_first is σ at ``sites[g, 0]``.

        Returns an object with

        * ``prepare(params)`` → tables (from the parameters as they are, once per call of the sampler),
        * ``init(tables, sigma)`` → the chain's state (recomputed from σ every sweep),
        * ``log_abs_ratio(tables, state, g, first)`` → ``(log |ψ(σ′)/ψ(σ)|, aux)`` for move g, with
          ``first`` = σ_first,
        * ``update(tables, state, aux)`` → the state of σ′, for an accepted move,

        or None (the default): the sampler then uses ``cache``, ``log_ratio`` and ``update_cache``.  Only
        |ψ| enters, so a phase the model adds (the Marshall sign) does not change the path.
        """
        return None

    def n_parameters(self, params) -> int:
        return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))

    def describe(self) -> str:
        return type(self).__name__


class ParamDtypeModel(Model):
    """A model whose parameters are all complex (holomorphic log ψ) or all real (``param_dtype``).

    Subclasses are dataclasses with a ``param_dtype: str`` field, "complex" or "real"; with real
    parameters their phase does not depend on them (``real_derivatives``).
    """

    param_dtype: str = "complex"

    def _check_param_dtype(self) -> None:
        if self.param_dtype not in ("complex", "real"):
            raise ValueError(f"{type(self).__name__} param_dtype must be 'complex' or 'real', got {self.param_dtype!r}")

    @property
    def holomorphic(self) -> bool:  # type: ignore[override]
        return self.param_dtype == "complex"

    @property
    def real_derivatives(self) -> bool:  # type: ignore[override]
        return self.param_dtype == "real"

    @property
    def _dtype(self):
        return jnp.complex128 if self.param_dtype == "complex" else jnp.float64


@dataclass(frozen=True, eq=False)
class FunctionModel(Model):
    """Wrap a user JAX function ``log_psi(params, sigma)`` (one σ of shape (n_sites,)) as a model.

    ``init_params`` is either a pytree of initial parameters or a function ``key -> params``.
    Set ``holomorphic=True`` only if log ψ is a holomorphic function of complex parameters.
    """

    fn: Callable
    n_sites: int
    init_params: Any
    holomorphic: bool = False

    def init(self, key):
        return self.init_params(key) if callable(self.init_params) else self.init_params

    def log_psi(self, params, sigma):
        return jnp.asarray(self.fn(params, sigma)).astype(jnp.complex128).reshape(())

    def describe(self) -> str:
        return f"user function {getattr(self.fn, '__name__', 'log_psi')}"


class Wrapper(Model):
    """A model around ``inner`` (a field of the subclass) with its sites and its kind of parameters:
    holomorphic or not, real derivatives or not (what the wrapper adds does not depend on them)."""

    inner: Model

    @property
    def n_sites(self):  # type: ignore[override]
        return self.inner.n_sites

    @property
    def holomorphic(self):  # type: ignore[override]
        return self.inner.holomorphic

    @property
    def real_derivatives(self):  # type: ignore[override]
        return self.inner.real_derivatives


class Prepared(NamedTuple):
    """Parameters already mapped and prepared for the inner model (:meth:`Reparametrized.prepare`)."""

    inner: Any


class Reparametrized(Wrapper):
    """``inner`` evaluated at ``to_inner(params)``: the subclass defines ``to_inner`` (and ``init``);
    every call, fast path included, goes to the inner model with the mapped parameters.
    ``prepare`` maps once and prepares for the inner model; the fast-path calls then take those."""

    def to_inner(self, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fast(self, params):
        return params.inner if isinstance(params, Prepared) else self.to_inner(params)

    def prepare(self, params):
        return Prepared(self.inner.prepare(self.to_inner(params)))

    def log_psi(self, params, sigma):
        return self.inner.log_psi(self.to_inner(params), sigma)

    def cache(self, params, sigma):
        return self.inner.cache(self._fast(params), sigma)

    def log_ratio(self, params, sigma, cache, sites, new_values, mask):
        return self.inner.log_ratio(self._fast(params), sigma, cache, sites, new_values, mask)

    def log_ratios(self, params, sigma, cache, sites, new_values, mask):
        return self.inner.log_ratios(self._fast(params), sigma, cache, sites, new_values, mask)

    def update_cache(self, params, sigma, cache, sites, new_values, mask):
        return self.inner.update_cache(self._fast(params), sigma, cache, sites, new_values, mask)

    def image_path(self, perms, signs):
        path = self.inner.image_path(perms, signs)
        return None if path is None else _MappedPath(path, self.to_inner)

    def move_path(self, sites, signs):
        path = self.inner.move_path(sites, signs)
        return None if path is None else _MappedPath(path, self.to_inner)


@dataclass(frozen=True, eq=False)
class _MappedPath:
    """An inner model's fast path (:meth:`Model.image_path`, :meth:`Model.move_path`) behind a map of the
    parameters (:class:`Reparametrized`): ``prepare`` maps them, every other call goes to the path as it is."""

    path: Any
    to_inner: Callable

    def prepare(self, params):
        return self.path.prepare(self.to_inner(params))

    def __getattr__(self, name):
        if name in ("path", "to_inner"):  # not yet set (copying): no recursion
            raise AttributeError(name)
        return getattr(self.path, name)


@dataclass(frozen=True, eq=False)
class _SignedImages:
    """The Marshall sign over the images: ``iπ Σ_j c_j (1 + (eσ)_j)/2`` added to the inner path's logs,
    from the table ``c_{p_e(i)} s_e`` (n_sites + 1 rows, the last 0 for padded move entries)."""

    path: Any
    colour: Any  # (n_sites,) 0/1
    perms: Any
    signs: Any

    def _table(self):
        c = np.asarray(self.colour, dtype=float)[np.asarray(self.perms).T] * np.asarray(self.signs)[None, :]
        return jnp.asarray(np.concatenate([c, np.zeros((1, c.shape[1]))]))  # (N + 1, n_e)

    def prepare(self, params):
        return self.path.prepare(params)

    def cache(self, prepared, sigma):
        cache, logs = self.path.cache(prepared, sigma)
        colour_img = jnp.asarray(self.colour, dtype=jnp.float64)[jnp.asarray(self.perms)]  # c_{p_e(i)}
        up = (1 + jnp.asarray(self.signs)[:, None] * sigma[None, :].astype(jnp.float64)) / 2
        return cache, logs + 1j * jnp.pi * jnp.sum(colour_img * up, axis=1)

    def ratio(self, prepared, sigma, cache, sites, new_values, mask):
        d = move_delta(sigma, sites, new_values, mask)
        n = sigma.shape[-1]
        rows = jnp.take(self._table(), jnp.where(mask, jnp.minimum(sites, n), n), axis=0)  # (k, n_e)
        flips = jnp.sum(rows * (d / 2)[:, None], axis=0)  # an integer: the sign is (−1)^flips
        sign = 1.0 - 2.0 * jnp.mod(jnp.round(flips), 2)
        m, e = self.path.ratio(prepared, sigma, cache, sites, new_values, mask)
        return m * sign, e

    def update_cache(self, prepared, sigma, cache, sites, new_values, mask):
        return self.path.update_cache(prepared, sigma, cache, sites, new_values, mask)


@dataclass(frozen=True, eq=False)
class _SignedFlips:
    """The Marshall sign's phase of each connection added to the inner model's flip path."""

    path: Any
    model: Any  # the MarshallSign
    sites: np.ndarray

    def prepare(self, prepared):
        return self.path.prepare(prepared)

    def log_ratios(self, tables, sigma, cache):
        sites = jnp.asarray(self.sites, dtype=jnp.int32)
        values = -jnp.take(sigma, sites, mode="clip")
        phase = jax.vmap(self.model._phase, in_axes=(None, 0, 0, 0))(sigma, sites, values, sites < sigma.shape[-1])
        return self.path.log_ratios(tables, sigma, cache) + phase


@dataclass(frozen=True, eq=False)
class MarshallSign(Wrapper):
    """ψ(σ) = (−1)^{N↑ on sublattice 1} · ψ_inner(σ): the Marshall sign rule, applied explicitly.

    ``sublattice`` (n_sites,) holds 0/1 colours of a bipartite lattice.
    """

    inner: Model
    sublattice: tuple  # the sign adds a parameter-independent phase: the inner model's derivatives

    def _mask(self):
        return jnp.asarray(self.sublattice, dtype=jnp.float64)

    def init(self, key):
        return self.inner.init(key)

    def log_psi(self, params, sigma):
        n_up_b = jnp.sum(self._mask() * (1 + sigma) / 2)
        return self.inner.log_psi(params, sigma) + 1j * jnp.pi * n_up_b

    def prepare(self, params):
        return self.inner.prepare(params)

    def cache(self, params, sigma):
        return self.inner.cache(params, sigma)

    def _phase(self, sigma, sites, new_values, mask):
        d = move_delta(sigma, sites, new_values, mask)
        return 1j * jnp.pi * jnp.sum(jnp.take(self._mask(), sites, mode="clip") * d / 2)

    def log_ratio(self, params, sigma, cache, sites, new_values, mask):
        phase = self._phase(sigma, sites, new_values, mask)
        return self.inner.log_ratio(params, sigma, cache, sites, new_values, mask) + phase

    def update_cache(self, params, sigma, cache, sites, new_values, mask):
        return self.inner.update_cache(params, sigma, cache, sites, new_values, mask)

    def log_ratios(self, params, sigma, cache, sites, new_values, mask):
        phase = jax.vmap(self._phase, in_axes=(None, 0, 0, 0))(sigma, sites, new_values, mask)
        return self.inner.log_ratios(params, sigma, cache, sites, new_values, mask) + phase

    def log_derivative_factors(self, params, sigma):
        return self.inner.log_derivative_factors(params, sigma)  # the sign does not depend on θ

    def image_path(self, perms, signs):
        path = self.inner.image_path(perms, signs)
        return None if path is None else _SignedImages(path, self.sublattice, perms, signs)

    def flip_path(self, flip_sites):
        path = self.inner.flip_path(flip_sites)
        return None if path is None else _SignedFlips(path, self, np.asarray(flip_sites))

    def move_path(self, sites, signs):
        return self.inner.move_path(sites, signs)  # the sampler needs |ψ| only: the sign drops out

    def describe(self) -> str:
        return f"{self.inner.describe()} x Marshall sign"
