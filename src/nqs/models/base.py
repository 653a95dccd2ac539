"""The model contract.

A model is a :class:`Model` that declares

* ``init(key) -> params`` (a pytree) and ``log_psi(params, sigma) -> log ψ(σ)`` for ONE configuration σ
  of shape (n,), a complex scalar; callers ``vmap`` over batches;
* the attributes ``n_sites``, ``holomorphic`` (log ψ is a holomorphic function of complex parameters),
  ``real_derivatives`` (real parameters and Im log ψ independent of them) and ``describe()``;
* optionally ONE fast-path object, a :class:`FastPath` returned by :meth:`Model.make_fast_path`.

Whatever needs ratios of amplitudes (the Metropolis sampler, local energies, projections) asks
:func:`fast_path` for the model's path.  A model without one gets :class:`FullEvaluation`, which
re-evaluates ``log_psi`` on the moved configuration, so a model that only defines ``log_psi`` (a
:class:`FunctionModel`) works everywhere.

A :class:`FastPath` keeps a per-configuration cache (the RBM's angles θ = b + σW) and gives
``log ψ(σ′) − log ψ(σ)`` for a move σ → σ′ in the form of :mod:`nqs.operators.moves` (sites, new values,
mask; padded entries hold the configuration's length and have mask False): ``prepare(params)`` once per
batch of moves, ``cache(prepared, sigma)``, ``log_ratio`` (one move), ``log_ratios`` (many moves from one
σ) and ``update`` (the cache after an accepted move).  Its optional parts return None unless a model
has them: ``flip_path`` (local energies of operators whose connections flip fixed sites), ``move_path``
(the Metropolis rules' moves), ``image_path`` (all symmetry images at once, for :class:`Projected
<nqs.models.symmetric.Projected>`) and ``log_derivative_factors`` (∂ log ψ/∂θ in factored form, for SR).

Wrappers build their path from the inner model's (:class:`MarshallSign` adds its sign,
:class:`Reparametrized` maps the parameters), so the inner model's specialised parts pass through.
``docs/models.md`` explains how to write a model, with and without a fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..operators.moves import apply_moves, move_delta

__all__ = [
    "Model",
    "FastPath",
    "FlipPath",
    "MovePath",
    "ImagePath",
    "FullEvaluation",
    "fast_path",
    "ParamDtypeModel",
    "FunctionModel",
    "Wrapper",
    "Reparametrized",
    "MarshallSign",
]


class Model:
    """Base class: subclasses define ``init`` and ``log_psi``; may offer a fast path (``make_fast_path``)."""

    n_sites: int
    holomorphic: bool = False
    #: True when the parameters are real and Im log ψ does not depend on them (ψ > 0 up to a fixed
    #: sign): then O_k is real and SR runs in real arithmetic on n rows instead of 2n.
    real_derivatives: bool = False

    def init(self, key: jax.Array) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_fast_path(self) -> FastPath | None:
        """This model's :class:`FastPath`, or None (the default): :func:`fast_path` then gives
        :class:`FullEvaluation`.  Callers use :func:`fast_path`, never this method."""
        return None

    def n_parameters(self, params: Any) -> int:
        return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))

    def describe(self) -> str:
        return type(self).__name__


class FastPath:
    """log ψ(σ′) − log ψ(σ) for moves σ → σ′ from a per-configuration cache.

    ``prepared`` is what :meth:`prepare` returns (the methods also accept the parameters as they are, for
    one-off calls); ``sites``, ``new_values``, ``mask`` are a move (k,) (:mod:`nqs.operators.moves`).  The
    ratio's imaginary part is defined modulo 2π.  The optional parts (:meth:`flip_path`, :meth:`move_path`,
    :meth:`image_path`, :meth:`log_derivative_factors`) return None here.
    """

    def prepare(self, params: Any) -> Any:
        """The parameters in the form the other calls take, computed once per batch of moves (the
        sampler's sweeps, a batch of local energies): the RBM adds tables of e^{±2W}.  Default: unchanged."""
        return params

    def cache(self, prepared: Any, sigma: jax.Array) -> Any:  # pragma: no cover - abstract
        """The cache of configuration σ."""
        raise NotImplementedError

    def log_ratio(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:  # pragma: no cover
        """log ψ(σ′) − log ψ(σ) for one move (complex scalar)."""
        raise NotImplementedError

    def log_ratios(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        """:meth:`log_ratio` for C moves from one σ (leading axis of ``sites``, ``new_values``, ``mask``):
        what local energies need.  Paths may batch it better."""
        return jax.vmap(lambda s, v, m: self.log_ratio(prepared, sigma, cache, s, v, m))(sites, new_values, mask)

    def update(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:  # pragma: no cover - abstract
        """The cache of σ′ after the move (an accepted Metropolis move)."""
        raise NotImplementedError

    def flip_path(self, flip_sites: np.ndarray) -> FlipPath | None:
        """Optional: a :class:`FlipPath` for local energies of an operator whose connection g flips the fixed
        sites ``flip_sites[g]`` (numpy (G, k), padded with n_sites: the Pauli sums); None: :meth:`log_ratios`
        serves."""
        return None

    def move_path(self, sites: np.ndarray, signs: np.ndarray) -> MovePath | None:
        """Optional: a :class:`MovePath` for the Markov chains' moves (:class:`~nqs.sampling.MetropolisSampler`)
        when move g flips the fixed sites ``sites[g]`` and is made only where σ at them equals ±``signs[g]``
        (numpy (G, k) of site indices and ±1): a local flip is k = 1, an exchange of a pair with opposite spins
        is k = 2 with signs (+1, −1).  None: the sampler uses :meth:`cache`, :meth:`log_ratio`, :meth:`update`."""
        return None

    def image_path(self, perms: np.ndarray, signs: np.ndarray) -> ImagePath | None:
        """Optional: an :class:`ImagePath` over all images ``e σ = s_e·(g_e σ)`` of σ at once, with
        ``(g_e σ)_{perms[e, i]} = σ_i`` and ``s_e = ±1`` (the spin flip); ``perms`` (n_e, n_sites) and
        ``signs`` (n_e,) are numpy arrays.  None: a projection goes image by image through this path."""
        return None

    def log_derivative_factors(self, params: Any, sigma: jax.Array) -> Any:
        """Optional: ∂ log ψ(σ)/∂θ per parameter leaf in factored form, or None.

        A pytree like ``params`` whose leaves are tuples: ``(x,)`` with x of the leaf's shape, or ``(u, v)``
        for a (p, q) leaf whose derivative is the outer product u ⊗ v.  SR then works on the factors
        (:class:`nqs.estimators.FactoredJacobian`) instead of the n × P matrix.  ``params`` as they are."""
        return None


class FlipPath:
    """Ratios of all connections of an operator whose connection g flips fixed sites (:meth:`FastPath.flip_path`)."""

    def prepare(self, prepared: Any) -> Any:  # pragma: no cover - abstract
        """Tables from the output of :meth:`FastPath.prepare`, once per batch."""
        raise NotImplementedError

    def log_ratios(self, tables: Any, sigma: jax.Array, cache: Any) -> jax.Array:  # pragma: no cover
        """(G,) log ψ(σ′_g) − log ψ(σ), from the cache of :meth:`FastPath.cache` at the prepared parameters."""
        raise NotImplementedError


class MovePath:
    """The Metropolis rules' moves g that flip ``sites[g]`` (:meth:`FastPath.move_path`).  On a move
    Δσ = −2 σ_first·signs[g] at the sites, σ_first being σ at ``sites[g, 0]``.  Only |ψ| enters, so a phase
    a wrapper adds (the Marshall sign) leaves the path as it is."""

    def prepare(self, params: Any) -> Any:  # pragma: no cover - abstract
        """Tables from the parameters as they are, once per call of the sampler."""
        raise NotImplementedError

    def cache(self, tables: Any, sigma: jax.Array) -> Any:  # pragma: no cover - abstract
        """The chain's state (recomputed from σ every sweep)."""
        raise NotImplementedError

    def log_abs_ratio(
        self, tables: Any, cache: Any, g: jax.Array, first: jax.Array
    ) -> tuple[jax.Array, Any]:  # pragma: no cover - abstract
        """``(log |ψ(σ′)/ψ(σ)|, aux)`` for move g, with ``first`` = σ_first."""
        raise NotImplementedError

    def update(self, tables: Any, cache: Any, aux: Any) -> Any:  # pragma: no cover - abstract
        """The state of σ′, for an accepted move."""
        raise NotImplementedError


class ImagePath:
    """All images of σ at once (:meth:`FastPath.image_path`), for :class:`~nqs.models.symmetric.Projected`."""

    def prepare(self, params: Any) -> Any:  # pragma: no cover - abstract
        """Tables for the images (the RBM: its weights permuted, e^{±2W} per image)."""
        raise NotImplementedError

    def cache(self, tables: Any, sigma: jax.Array) -> tuple[Any, jax.Array]:  # pragma: no cover - abstract
        """``(cache, logs)`` with ``logs[e] = log ψ(e σ)`` (n_e,)."""
        raise NotImplementedError

    def ratios(
        self, tables: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> tuple[jax.Array, jax.Array]:  # pragma: no cover
        """``(m, e)``, (n_e,) each, with ``ψ(e σ′)/ψ(e σ) = m·2^e`` (not logs: the projection sums them, so no
        logarithm per image is needed)."""
        raise NotImplementedError

    def update(
        self, tables: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:  # pragma: no cover - abstract
        """The cache of σ′."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class FullEvaluation(FastPath):
    """The generic path: the cache is log ψ(σ) and a ratio re-evaluates ``log_psi`` on σ′."""

    model: Any

    def cache(self, prepared: Any, sigma: jax.Array) -> Any:
        return self.model.log_psi(prepared, sigma)

    def _moved(self, sigma, sites, new_values, mask):
        return apply_moves(sigma, jnp.where(mask, sites, sigma.shape[-1]), new_values)

    def log_ratio(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        return self.model.log_psi(prepared, self._moved(sigma, sites, new_values, mask)) - cache

    def update(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return self.model.log_psi(prepared, self._moved(sigma, sites, new_values, mask))


def fast_path(model: Any) -> FastPath:
    """The one place that finds a model's fast path: :meth:`Model.make_fast_path`, else (also for objects that
    only have ``log_psi``) :class:`FullEvaluation`."""
    path = model.make_fast_path() if isinstance(model, Model) else None
    return FullEvaluation(model) if path is None else path


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

    def init(self, key: jax.Array) -> Any:
        return self.init_params(key) if callable(self.init_params) else self.init_params

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        return jnp.asarray(self.fn(params, sigma)).astype(jnp.complex128).reshape(())

    def describe(self) -> str:
        return f"user function {getattr(self.fn, '__name__', 'log_psi')}"


class Wrapper(Model):
    """A model around ``inner`` (a field of the subclass) with its sites and its kind of parameters:
    holomorphic or not, real derivatives or not (what the wrapper adds does not depend on them)."""

    inner: Model

    @property
    def n_sites(self) -> int:  # type: ignore[override]
        return self.inner.n_sites

    @property
    def holomorphic(self) -> bool:  # type: ignore[override]
        return self.inner.holomorphic

    @property
    def real_derivatives(self) -> bool:  # type: ignore[override]
        return self.inner.real_derivatives


class Prepared(NamedTuple):
    """Parameters already mapped and prepared for the inner model (:meth:`_MappedPath.prepare`)."""

    inner: Any


class Reparametrized(Wrapper):
    """``inner`` evaluated at ``to_inner(params)``: the subclass defines ``to_inner`` (and ``init``).
    The fast path is the inner model's behind the map (:class:`_MappedPath`): ``prepare`` maps once and
    prepares for the inner path; the other calls then take those."""

    def to_inner(self, params: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        return self.inner.log_psi(self.to_inner(params), sigma)

    def make_fast_path(self) -> FastPath:
        return _MappedPath(fast_path(self.inner), self.to_inner)


@dataclass(frozen=True, eq=False)
class _MappedPath(FastPath):
    """An inner path behind a map of the parameters; its move and image paths pass through (mapped), its
    flip path and derivative factors do not (they are the inner parameters')."""

    inner: FastPath
    to_inner: Callable

    def _fast(self, params):
        return params.inner if isinstance(params, Prepared) else self.to_inner(params)

    def prepare(self, params: Any) -> Any:
        return Prepared(self.inner.prepare(self.to_inner(params)))

    def cache(self, prepared: Any, sigma: jax.Array) -> Any:
        return self.inner.cache(self._fast(prepared), sigma)

    def log_ratio(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        return self.inner.log_ratio(self._fast(prepared), sigma, cache, sites, new_values, mask)

    def log_ratios(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        return self.inner.log_ratios(self._fast(prepared), sigma, cache, sites, new_values, mask)

    def update(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return self.inner.update(self._fast(prepared), sigma, cache, sites, new_values, mask)

    def image_path(self, perms: np.ndarray, signs: np.ndarray) -> ImagePath | None:
        path = self.inner.image_path(perms, signs)
        return None if path is None else _MappedImages(path, self.to_inner)

    def move_path(self, sites: jax.Array, signs: np.ndarray) -> MovePath | None:
        path = self.inner.move_path(sites, signs)
        return None if path is None else _MappedMoves(path, self.to_inner)


@dataclass(frozen=True, eq=False)
class _MappedImages(ImagePath):
    """An inner image path behind a map of the parameters: ``prepare`` maps them."""

    path: ImagePath
    to_inner: Callable

    def prepare(self, params: Any) -> Any:
        return self.path.prepare(self.to_inner(params))

    def cache(self, tables: Any, sigma: jax.Array) -> tuple[Any, jax.Array]:
        return self.path.cache(tables, sigma)

    def ratios(
        self, tables: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        return self.path.ratios(tables, sigma, cache, sites, new_values, mask)

    def update(
        self, tables: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return self.path.update(tables, sigma, cache, sites, new_values, mask)


@dataclass(frozen=True, eq=False)
class _MappedMoves(MovePath):
    """An inner move path behind a map of the parameters: ``prepare`` maps them."""

    path: MovePath
    to_inner: Callable

    def prepare(self, params: Any) -> Any:
        return self.path.prepare(self.to_inner(params))

    def cache(self, tables: Any, sigma: jax.Array) -> Any:
        return self.path.cache(tables, sigma)

    def log_abs_ratio(self, tables: Any, cache: Any, g: jax.Array, first: jax.Array) -> tuple[jax.Array, Any]:
        return self.path.log_abs_ratio(tables, cache, g, first)

    def update(self, tables: Any, cache: Any, aux: Any) -> Any:
        return self.path.update(tables, cache, aux)


@dataclass(frozen=True, eq=False)
class _SignedImages(ImagePath):
    """The Marshall sign over the images: ``iπ Σ_j c_j (1 + (eσ)_j)/2`` added to the inner path's logs,
    from the table ``c_{p_e(i)} s_e`` (n_sites + 1 rows, the last 0 for padded move entries)."""

    path: ImagePath
    colour: Any  # (n_sites,) 0/1
    perms: Any
    signs: Any

    def _table(self):
        c = np.asarray(self.colour, dtype=float)[np.asarray(self.perms).T] * np.asarray(self.signs)[None, :]
        return jnp.asarray(np.concatenate([c, np.zeros((1, c.shape[1]))]))  # (N + 1, n_e)

    def prepare(self, params: Any) -> Any:
        return self.path.prepare(params)

    def cache(self, tables: Any, sigma: jax.Array) -> tuple[Any, jax.Array]:
        cache, logs = self.path.cache(tables, sigma)
        colour_img = jnp.asarray(self.colour, dtype=jnp.float64)[jnp.asarray(self.perms)]  # c_{p_e(i)}
        up = (1 + jnp.asarray(self.signs)[:, None] * sigma[None, :].astype(jnp.float64)) / 2
        return cache, logs + 1j * jnp.pi * jnp.sum(colour_img * up, axis=1)

    def ratios(
        self, tables: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        d = move_delta(sigma, sites, new_values, mask)
        n = sigma.shape[-1]
        rows = jnp.take(self._table(), jnp.where(mask, jnp.minimum(sites, n), n), axis=0)  # (k, n_e)
        flips = jnp.sum(rows * (d / 2)[:, None], axis=0)  # an integer: the sign is (−1)^flips
        sign = 1.0 - 2.0 * jnp.mod(jnp.round(flips), 2)
        m, e = self.path.ratios(tables, sigma, cache, sites, new_values, mask)
        return m * sign, e

    def update(
        self, tables: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return self.path.update(tables, sigma, cache, sites, new_values, mask)


@dataclass(frozen=True, eq=False)
class _SignedFlips(FlipPath):
    """The Marshall sign's phase of each connection added to the inner path's flip ratios."""

    path: FlipPath
    model: Any  # the MarshallSign
    sites: np.ndarray

    def prepare(self, prepared: Any) -> Any:
        return self.path.prepare(prepared)

    def log_ratios(self, tables: Any, sigma: jax.Array, cache: Any) -> jax.Array:
        sites = jnp.asarray(self.sites, dtype=jnp.int32)
        values = -jnp.take(sigma, sites, mode="clip")
        phase = jax.vmap(self.model._phase, in_axes=(None, 0, 0, 0))(sigma, sites, values, sites < sigma.shape[-1])
        return self.path.log_ratios(tables, sigma, cache) + phase


@dataclass(frozen=True, eq=False)
class MarshallSign(Wrapper):
    """ψ(σ) = (−1)^{N↑ on sublattice 1} · ψ_inner(σ): the Marshall sign rule, applied explicitly.

    ``sublattice`` (n_sites,) holds 0/1 colours of a bipartite lattice.  The fast path is the inner
    model's with the sign's phase added (:class:`_MarshallPath`).
    """

    inner: Model
    sublattice: tuple  # the sign adds a parameter-independent phase: the inner model's derivatives

    def _mask(self):
        return jnp.asarray(self.sublattice, dtype=jnp.float64)

    def init(self, key: jax.Array) -> Any:
        return self.inner.init(key)

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        n_up_b = jnp.sum(self._mask() * (1 + sigma) / 2)
        return self.inner.log_psi(params, sigma) + 1j * jnp.pi * n_up_b

    def _phase(self, sigma, sites, new_values, mask):
        d = move_delta(sigma, sites, new_values, mask)
        return 1j * jnp.pi * jnp.sum(jnp.take(self._mask(), sites, mode="clip") * d / 2)

    def make_fast_path(self) -> FastPath:
        return _MarshallPath(self, fast_path(self.inner))

    def describe(self) -> str:
        return f"{self.inner.describe()} x Marshall sign"


@dataclass(frozen=True, eq=False)
class _MarshallPath(FastPath):
    """The inner path with the sign's phase added to every ratio; the cache, the derivative factors (the
    sign does not depend on θ) and the move path (|ψ| only) are the inner path's."""

    model: MarshallSign
    inner: FastPath

    def prepare(self, params: Any) -> Any:
        return self.inner.prepare(params)

    def cache(self, prepared: Any, sigma: jax.Array) -> Any:
        return self.inner.cache(prepared, sigma)

    def log_ratio(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        phase = self.model._phase(sigma, sites, new_values, mask)
        return self.inner.log_ratio(prepared, sigma, cache, sites, new_values, mask) + phase

    def log_ratios(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        phase = jax.vmap(self.model._phase, in_axes=(None, 0, 0, 0))(sigma, sites, new_values, mask)
        return self.inner.log_ratios(prepared, sigma, cache, sites, new_values, mask) + phase

    def update(
        self, prepared: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return self.inner.update(prepared, sigma, cache, sites, new_values, mask)

    def log_derivative_factors(self, params: Any, sigma: jax.Array) -> Any:
        return self.inner.log_derivative_factors(params, sigma)

    def image_path(self, perms: np.ndarray, signs: np.ndarray) -> ImagePath | None:
        path = self.inner.image_path(perms, signs)
        return None if path is None else _SignedImages(path, self.model.sublattice, perms, signs)

    def flip_path(self, flip_sites: np.ndarray) -> FlipPath | None:
        path = self.inner.flip_path(flip_sites)
        return None if path is None else _SignedFlips(path, self.model, np.asarray(flip_sites))

    def move_path(self, sites: jax.Array, signs: np.ndarray) -> MovePath | None:
        return self.inner.move_path(sites, signs)
