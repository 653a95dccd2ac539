"""The VMC driver: one jitted step on a pytree state; the Python loop only logs and checkpoints.

State ``(params, opt_state, sampler_state, step)``; model, Hamiltonian, sampler and optimizer
settings are static.  ``vmc_step(state) -> (state, info)``:

1. sample (σ (n_chains, n_per_chain, N), weights 1/n or |ψ|²/Z);
2. local energies E_loc from the operator's moves and the model's fast path;
3. statistics of E_loc (mean, error with autocorrelation, variance, R̂);
4. per-sample log-derivatives O (factored for the RBM) and the force;
5. SR direction (dense or MinSR) or the plain gradient;
6. optax update.

On a CPU the chains are split into parts sampled (with their local energies) by concurrent threads,
steps 1–2 then being one jitted function per part and the rest one more (``VMC.threads``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from .. import estimators, sr
from ..jax_utils import param_mode
from ..models.base import Model, Reparametrized, fast_path
from ..optimizers import OptimizerConfig
from ..registry import DRIVERS, Section
from ..stats import Stats, statistics
from .base import SamplingDriver, State, finish_step, threaded_parts

if TYPE_CHECKING:
    from ..workflow.build import Parts


@dataclass(frozen=True, eq=False)
class SplitComplex(Reparametrized):
    """Presents a non-holomorphic model with complex parameters as one with real (Re, Im) pairs."""

    inner: Model

    holomorphic = False
    real_derivatives = False

    @staticmethod
    def split(params: Any) -> Any:
        return jax.tree_util.tree_map(lambda x: jnp.stack([jnp.real(x), jnp.imag(x)]), params)

    @staticmethod
    def join(params: Any) -> Any:
        return jax.tree_util.tree_map(lambda x: x[0] + 1j * x[1], params)

    def to_inner(self, params: Any) -> Any:
        return self.join(params)

    def init(self, key: jax.Array) -> Any:
        return self.split(self.inner.init(key))


PRECISIONS = ("float64", "float32")

#: Safety factor of the per-sample memory estimate behind ``memory_limit_mb`` (intermediates the
#: estimate does not see: XLA temporaries, the backward pass's residuals).
MEMORY_SAFETY = 2.0
#: With a model cache of at least this many bytes per configuration, the automatic chunk is at most
#: ``LARGE_CACHE_CHUNK`` rows (see :meth:`VMC._auto_chunk`).
LARGE_CACHE_BYTES = 64 * 2**10
LARGE_CACHE_CHUNK = 16


def cast_params(params: Any, precision: str) -> Any:
    """Parameters in the working precision: float32/complex64 for "float32"; unchanged for "float64"."""
    if precision == "float64":
        return params

    def one(x):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            return x.astype(jnp.complex64)
        if jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(jnp.float32)
        return x

    return jax.tree_util.tree_map(one, params)


def auto_chunk_size(
    memory_limit_mb: float,
    n_rows: int,
    n_params: int,
    o_itemsize: int,
    n_connected: int,
    config_bytes: int,
    cache_bytes: int,
) -> int | None:
    """Rows per chunk (per device) so that evaluating E_loc and O fits in ``memory_limit_mb``; None = no chunking.

    The estimate, per device holding ``n_rows`` samples:

    * the O matrix itself, ``n_rows · P · o_itemsize`` bytes, is kept whole (SR needs it) and is
      taken off the budget first;
    * one sample's E_loc needs, per connected configuration, the moved configuration
      (``config_bytes``), a new cache and its transform (2 · ``cache_bytes``) and a complex ratio (16);
    * one sample's O row needs the gradient, its flattened copy and the forward/backward residuals,
      ≈ 3 · (P · o_itemsize + ``cache_bytes``);
    * per-sample bytes = max of the two × :data:`MEMORY_SAFETY`; chunk = budget // per-sample bytes.

    Raises ValueError when not even the O matrix (plus one sample) fits.
    """
    budget = memory_limit_mb * 2**20 - n_rows * n_params * o_itemsize
    e_loc = n_connected * (config_bytes + 2 * cache_bytes + 16)
    o_row = 3 * (n_params * o_itemsize + cache_bytes)
    per_sample = MEMORY_SAFETY * max(e_loc, o_row)
    if budget < per_sample:
        need = (n_rows * n_params * o_itemsize + per_sample) / 2**20
        raise ValueError(
            f"memory_limit_mb = {memory_limit_mb:g} is too small: the O matrix of {n_rows} samples × "
            f"{n_params} parameters and one sample's work need ≈ {need:.1f} MB per device"
        )
    chunk = int(budget // per_sample)
    return None if chunk >= n_rows else max(1, chunk)


@dataclass(frozen=True, eq=False)
class VMC(SamplingDriver):
    """Variational Monte Carlo for ``hamiltonian`` with ``model`` sampled by ``sampler``.

    ``chunk_size``: samples evaluated at once for E_loc and O (per device); or ``memory_limit_mb``
    (per device) to choose it with :func:`auto_chunk_size` (an explicit ``chunk_size`` wins).
    ``precision``: "float64" (default) or "float32" — parameters, sampling, E_loc and O in
    float32/complex64 (for GPUs); statistics and the SR linear solve stay in float64.
    ``mesh``: a 1-D device mesh (:func:`nqs.parallel.chain_mesh`) to split the chains over, on one
    or many processes; None runs on the default device.
    ``threads``: on a CPU without a mesh, the chains are split into this many parts, each sampled with its
    local energies by its own thread at the same time (the Markov chains are sequential: one thread
    alone leaves the other cores idle); None: one per CPU core, as many as divide ``n_chains``.  The
    results do not depend on it.  See :attr:`threads_in_use`.
    """

    model: Model
    hamiltonian: Any
    sampler: Any
    optimizer: OptimizerConfig = OptimizerConfig()
    chunk_size: int | None = None
    precision: str = "float64"
    memory_limit_mb: float | None = None
    mesh: Any = None
    threads: int | None = None
    step_scale: float = 1.0
    _compiled: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not self.step_scale > 0:
            raise ValueError(f"step_scale must be positive, got {self.step_scale!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.memory_limit_mb is not None and self.memory_limit_mb <= 0:
            raise ValueError(f"memory_limit_mb must be positive, got {self.memory_limit_mb!r}")
        shapes = jax.eval_shape(self.model.init, jax.random.PRNGKey(0))
        m = param_mode(self.model, shapes)
        # non-holomorphic complex parameters are optimized as real (Re, Im) pairs
        object.__setattr__(self, "_model", SplitComplex(self.model) if m == "mixed" else self.model)
        object.__setattr__(self, "_mode", "real" if m == "mixed" else m)
        if self.mesh is not None:
            if len(self.mesh.axis_names) != 1:
                raise ValueError(f"mesh must be 1-D (nqs.parallel.chain_mesh()), got axes {self.mesh.axis_names}")
            self.sampler.state_sharding(self.mesh)  # checks that the chains split evenly
        if self.threads is not None:
            if self.threads < 1:
                raise ValueError(f"threads must be at least 1, got {self.threads!r}")
            if self.threads > 1 and self.sampler.supports_parts and self.sampler.n_chains % self.threads:
                raise ValueError(
                    f"threads ({self.threads}) must divide n_chains ({self.sampler.n_chains}): "
                    "each thread runs an equal part of the chains"
                )
        chunk = self.chunk_size
        if chunk is None and self.memory_limit_mb is not None:
            chunk = self._auto_chunk(shapes)
        object.__setattr__(self, "_chunk", chunk)

    # ------------------------------------------------------------------ set-up
    def _params_shapes(self, shapes):
        p = jax.eval_shape(
            lambda: cast_params(jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes), self.precision)
        )
        return jax.eval_shape(SplitComplex.split, p) if isinstance(self._model, SplitComplex) else p

    def _auto_chunk(self, shapes) -> int | None:
        from ..parallel import n_shards

        params = self._params_shapes(shapes)
        sstate = jax.eval_shape(self.sampler.init_state, jax.random.PRNGKey(0))
        sigma = jax.ShapeDtypeStruct(sstate.sigma.shape[-1:], sstate.sigma.dtype)
        n_conn = int(jax.eval_shape(self.hamiltonian.moves, sigma)[1].shape[0])
        cache = jax.eval_shape(fast_path(self._model).cache, params, sigma)
        cache_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(cache))
        n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
        real_dtype = jax.tree_util.tree_leaves(params)[0].dtype
        single = jnp.finfo(real_dtype).bits == 32
        real_o = self._mode == "real" and self._model.real_derivatives
        o_itemsize = (4 if single else 8) * (1 if real_o else 2)
        n_rows = self.sampler.n_chains * self.sampler.n_per_chain
        d = n_shards(self.mesh)
        if n_rows % d == 0:
            n_rows //= d
        config_bytes = sigma.shape[0] * (sigma.dtype.itemsize + 4)  # the moved configuration, its site indices
        chunk = auto_chunk_size(self.memory_limit_mb, n_rows, n_params, o_itemsize, n_conn, config_bytes, cache_bytes)
        if cache_bytes >= LARGE_CACHE_BYTES:
            # a cache this large (a projection's images) makes each sample's E_loc stream megabytes: small
            # chunks stay in the CPU caches
            chunk = min(chunk or n_rows, LARGE_CACHE_CHUNK)
            chunk = None if chunk >= n_rows else chunk
        return chunk

    @property
    def effective_chunk_size(self) -> int | None:
        """The chunk size in use: ``chunk_size``, else the one chosen from ``memory_limit_mb``, else None."""
        return self._chunk

    def init(self, key: jax.Array, params: Any = None) -> State:
        """Fresh state from a PRNG key (parameters from ``model.init`` unless given)."""
        k_model, k_sampler = jax.random.split(key)
        if params is None:
            params = self.model.init(k_model)
        params = cast_params(jax.tree_util.tree_map(jnp.asarray, params), self.precision)
        if isinstance(self._model, SplitComplex):
            params = SplitComplex.split(params)
        opt_state = self.optimizer.transform().init(params)
        state = State(params, opt_state, self.sampler.init_state(k_sampler), jnp.zeros((), jnp.int64))
        return self.place(state)

    def physical_params(self, params: Any) -> Any:
        """Parameters in the model's own form (undoes the (Re, Im) split where one was made)."""
        return SplitComplex.join(params) if isinstance(self._model, SplitComplex) else params

    @property
    def param_mode(self) -> str:
        """ "holomorphic" (complex θ, complex derivatives) or "real"."""
        return self._mode

    def solver(self, state: State | None = None) -> str:
        """The update rule actually used: "dense" or "minsr" for SR, else the optimizer kind (the parameter
        count is read from ``state`` or, without one, from the model's parameter shapes)."""
        if self.optimizer.kind == "minsr":
            return "minsr"
        if self.optimizer.kind != "sr":
            return self.optimizer.kind
        if state is None:
            shapes = self._params_shapes(jax.eval_shape(self.model.init, jax.random.PRNGKey(0)))
            n_params = int(sum(x.size for x in jax.tree_util.tree_leaves(shapes)))
        else:
            n_params = self.n_parameters(state)
        return self.optimizer.sr.choose(
            n_params, self.sampler.n_samples, self._mode, real_rows=bool(self._model.real_derivatives)
        )

    def for_evaluation(self, n_samples: int | None) -> VMC:
        """This driver drawing ``n_samples`` samples per :meth:`estimate` (the final evaluation of a run);
        itself when ``n_samples`` is None or the sampler is exact."""
        if n_samples is None or self.sampler.exact:
            return self
        return replace(self, sampler=replace(self.sampler, n_samples=n_samples))

    def describe(self, state: State) -> str:
        return (
            f"model: {self.model.describe()}, {self.n_parameters(state)} parameters; "
            f"optimizer: {self.optimizer.kind} (solver: {self.solver(state)})"
        )

    def softened(self, factor: float) -> VMC:
        """This driver with the learning rate times ``factor`` and the SR shift divided by it
        (:meth:`OptimizerConfig.scaled` of :attr:`step_scale`): the run loop's retry of a bad step.  Softened
        copies share one compiled step (the scale is its argument)."""
        return replace(self, step_scale=self.step_scale * factor)

    def step_settings(self) -> dict[str, float]:
        return self.optimizer.scaled(self.step_scale).step_settings()

    def estimator_info(self) -> dict:
        """The driver and what :meth:`estimate`'s statistics are (recorded in result.json)."""
        return {
            "driver": "VMC",
            "sampler": type(self.sampler).__name__,
            "precision": self.precision,
            "chunk_size": self._chunk,
            "variance": "Var E_loc over |psi|^2",
        }

    # ------------------------------------------------------------------ pieces
    def _rows(self, x, lead: int):
        """``x`` (..., rest) with its ``lead`` leading axes flattened to rows, split over the mesh."""
        from ..parallel import constrain_rows

        return constrain_rows(x.reshape(-1, *x.shape[lead:]), self.mesh)

    def estimate(self, params: Any, sampler_state: Any) -> tuple[jax.Array, jax.Array, jax.Array, Stats, Any]:
        """Sample and return ``(samples, weights (n_chains, n_per), e_loc, stats, sampler_state)``.

        ``e_loc`` is complex128 whatever the working precision (statistics are in float64).
        """
        model = self._model
        samples, weights, sampler_state = self.sampler.sample(model, params, sampler_state)
        shape = samples.shape[:-1]
        flat = self._rows(samples, len(shape))
        e_loc = estimators.local_energies(model, params, self.hamiltonian, flat, self._chunk, self.mesh)
        e_loc = self._rows(e_loc, 1).astype(jnp.complex128).reshape(shape)
        weights, stats = self._energy_statistics(e_loc, weights)
        return samples, weights, e_loc, stats, sampler_state

    def _energy_statistics(self, e_loc, weights):
        """``(weights, statistics of E_loc)``: uniform weights 1/n where the sampler gives none."""
        if weights is None:
            return jnp.full(e_loc.shape, 1.0 / e_loc.size), statistics(e_loc)
        return weights, statistics(e_loc, weights, mcmc=not self.sampler.exact)

    def make_step(self, solver: str | None = None) -> Callable[..., Any]:
        """The ``step(state) -> (state, info)``; ``solver`` (see :meth:`solver`; by default the one it chooses)
        is static.

        One jitted function, or, with :attr:`threads_in_use` > 1, the chains' parts sampled (with their
        local energies) by that many threads at once and then one jitted update: the same step, the parts
        being the same chains (:meth:`~nqs.sampling.MetropolisSampler.sample_part`).  With a mesh the
        state must be placed on it (:meth:`init` does; :func:`run` places any state).  A softened driver
        (``step_scale`` ≠ 1) shares one compiled step with its other softened copies.
        """
        solver = solver or self.solver()
        return self.softened_step(solver, self._build_step)

    def _build_step(self, solver: str, scaled: bool) -> Callable[..., Any]:
        """The jitted ``step(state)``, or with ``scaled`` ``step(state, scale)``."""
        n_threads = self.threads_in_use
        if n_threads > 1:
            parts_of, join = self._parts(n_threads)

            @jax.jit
            def rest(state: State, parts, *scale):
                samples, weights, e_loc, stats, sstate = join(state.sampler_state, parts)
                return self._update(state, solver, samples, weights, e_loc, stats, sstate, *scale)

            return lambda state, *scale: rest(state, parts_of(state.params, state.sampler_state), *scale)

        def step(state: State, *scale):
            samples, weights, e_loc, stats, sstate = self.estimate(state.params, state.sampler_state)
            return self._update(state, solver, samples, weights, e_loc, stats, sstate, *scale)

        if self.mesh is None:
            return jax.jit(step)
        from ..parallel import replicated

        sh, r = self.state_sharding(), replicated(self.mesh)
        return jax.jit(step, in_shardings=(sh, r) if scaled else (sh,), out_shardings=(sh, r))

    def _update(self, state: State, solver: str, samples, weights, e_loc, stats, sstate, scale=None):
        """The rest of a step after sampling and local energies: O, the SR direction, the optax update (with
        the learning rate and SR shift of :meth:`OptimizerConfig.scaled` for a traced ``scale``)."""
        tx = self.optimizer.transform(scale)
        solve_dtype = jnp.float64 if self.precision == "float32" else None
        params = state.params
        model, mode = self._model, self._mode
        rows = self._rows(samples, samples.ndim - 1)
        # factored where the model gives factors (the RBM): SR then never forms the n × P matrix
        O = estimators.log_derivatives(model, params, rows, mode, self._chunk, self.mesh, factored=True)
        O = jax.tree_util.tree_map(lambda x: self._rows(x, 1), O)
        flat, unravel = ravel_pytree(params)
        shift = self.optimizer.shift(state.step, scale)
        if self.optimizer.kind in ("sr", "minsr"):
            d = sr.sr_direction(
                O,
                e_loc,
                weights,
                mode,
                shift,
                solver,
                self.optimizer.sr.cg_tol,
                self.optimizer.sr.cg_maxiter,
                solve_dtype,
                rescale=self.optimizer.sr.rescale,
                rescale_cutoff=self.optimizer.sr.rescale_cutoff,
            )
        else:
            d = sr.gradient(O, e_loc, weights, mode)
        d = d.astype(flat.dtype)
        updates, opt_state = tx.update(unravel(d), state.opt_state, params)
        new_params = optax.apply_updates(params, updates)
        return finish_step(state, new_params, opt_state, sstate, stats, d, shift)

    def make_estimate(self) -> Callable[..., Any]:
        """:meth:`estimate` as ``fn(params, sampler_state)``: jitted, or, with :attr:`threads_in_use` > 1, the
        chains' parts sampled (with their local energies) by that many threads at once, then joined (the
        same chains, the same numbers)."""
        n_threads = self.threads_in_use
        if n_threads == 1:
            return jax.jit(self.estimate)
        parts_of, join = self._parts(n_threads)
        join_jit = jax.jit(join)
        return lambda params, sstate: join_jit(sstate, parts_of(params, sstate))

    def _parts(self, n_threads: int):
        """``(parts_of, join)``: ``parts_of(params, sampler_state)`` samples the chains in ``n_threads`` parts,
        each with its local energies, on as many threads (one compiled function for all parts), and the
        jittable ``join(sampler_state, parts)`` is :meth:`estimate`'s result from them."""

        model, sampler = self._model, self.sampler

        def part_fn(params, sstate, part):
            p = sampler.sample_part(model, params, sstate, part, n_threads)
            flat = p.samples.reshape(-1, p.samples.shape[-1])
            e_loc = estimators.local_energies(model, params, self.hamiltonian, flat, self._chunk, None)
            return p, e_loc.astype(jnp.complex128)

        def join(sstate, parts):
            samples, weights, sstate = sampler.join_parts(sstate, [p for p, _ in parts])
            e_loc = jnp.concatenate([e for _, e in parts]).reshape(samples.shape[:-1])
            weights, stats = self._energy_statistics(e_loc, weights)
            return samples, weights, e_loc, stats, sstate

        return threaded_parts(part_fn, n_threads, "nqs-chains"), join


class VMCDriverConfig(Section):
    """``[driver] kind = "vmc"``: ground-state VMC.  Its settings are those of ``[optimizer]`` (update rule,
    chunks, memory, precision) and ``[parallel]`` (devices, threads)."""

    kind: Literal["vmc"] = "vmc"


@DRIVERS.register("vmc", config=VMCDriverConfig)
def build_vmc(section: VMCDriverConfig, parts: Parts) -> VMC:
    """VMC of the built model, Hamiltonian and sampler; chains split over the devices when there are several."""
    from .. import parallel

    oc, pc = parts.config.optimizer, parts.config.parallel
    return VMC(
        parts.model,
        parts.hamiltonian,
        parts.sampler,
        parts.optimizer,
        chunk_size=oc.chunk_size,
        precision=oc.precision,
        memory_limit_mb=oc.memory_limit_mb,
        mesh=parallel.mesh_for(pc.shard),
        threads=pc.threads,
    )
