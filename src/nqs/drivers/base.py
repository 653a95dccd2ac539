"""The driver protocol: what every computation nqs runs (ground-state VMC, the DBM's joint-chain VMC, and any
driver a user registers) gives the one run loop (:mod:`nqs.drivers.loop`).

A driver is a frozen object holding the static pieces (model, Hamiltonian, sampler, optimizer settings).  All
that changes from step to step is one pytree, the *state*, with at least a ``params`` and a ``step`` field
(:class:`State` for the drivers that sample and optimize).  The loop only calls:

* ``init(key, params=None) -> state`` — a fresh state from a PRNG key;
* ``make_step() -> step`` with ``step(state) -> (state, info)``, jitted once; ``info`` is a dict of arrays
  holding at least ``"finite"`` (whether the new state is usable);
* ``place(state) -> state`` — the state on the driver's devices (identity on one device);
* ``finished(state, n_steps)`` — whether the loop stops there (by default after ``n_steps`` steps);
* ``history_fields`` / ``history_row(info)`` — the columns of ``history.csv`` and one row of floats;
* ``progress_text(info)`` — the progress bar's description after a step;
* ``describe(state)`` — the run header's line (model, parameters, sampler, optimizer);
* ``make_estimate()`` — the final evaluation's ``fn(params, sampler_state) -> (samples, weights, e_loc,
  stats, sampler_state)``, with ``for_evaluation(n_samples)`` giving the driver that draws that many samples;
* ``estimator_info()`` — what the estimates are, recorded in ``result.json``;
* ``softened(factor) -> driver | None`` — the driver with smaller steps (learning rate × factor, SR diagonal
  shift / factor) that the loop retries a bad step with; None (the default): the driver cannot recover, and a
  bad step stops the run (docs/recovery.md).  ``step_settings()`` names the settings it changes, and
  ``retry_state(state, number)`` is the state a retry starts from (sampling drivers: fresh random numbers).

Checkpoints hold the state pytree itself, so a driver needs nothing more to be resumable.  A driver is made
available to configs and the CLI by one registration beside its builder (:data:`nqs.registry.DRIVERS`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ..stats import Stats


class State(NamedTuple):
    """The state of a sampling driver: parameters, optimizer state, the sampler's chains, the step count."""

    params: Any
    opt_state: Any
    sampler_state: Any
    step: jax.Array


#: Columns of ``history.csv`` for drivers that minimise an energy (:meth:`Driver.history_row`).
ENERGY_FIELDS = (
    "step",
    "energy",
    "energy_error",
    "variance",
    "r_hat",
    "tau_corr",
    "acceptance",
    "diag_shift",
    "grad_norm",
    "seconds",
)


class Driver(abc.ABC):
    """Base class of the drivers (see the module docstring for the protocol).

    The defaults suit drivers whose ``info`` holds ``"energy"`` (a :class:`~nqs.stats.Stats`),
    ``"acceptance"``, ``"diag_shift"`` and ``"grad_norm"``, as :func:`finish_step` makes it; other drivers
    override :attr:`history_fields`, :meth:`history_row` and :meth:`progress_text`.
    """

    #: The columns :meth:`history_row` fills (``step`` and ``seconds`` are filled by the run loop).
    history_fields: ClassVar[tuple[str, ...]] = ENERGY_FIELDS

    @abc.abstractmethod
    def init(self, key: jax.Array, params: Any = None) -> Any:
        """A fresh state from ``key`` (the model's initial parameters unless ``params`` is given)."""

    @abc.abstractmethod
    def make_step(self) -> Callable[[Any], tuple[Any, dict]]:
        """``step(state) -> (state, info)``, compiled once; ``info["finite"]`` says whether to keep it."""

    @abc.abstractmethod
    def make_estimate(self) -> Callable:
        """``fn(params, sampler_state) -> (samples, weights, e_loc, stats, sampler_state)``."""

    def for_evaluation(self, n_samples: int | None) -> Driver:
        """This driver drawing ``n_samples`` samples per estimate (the final evaluation); itself by default."""
        return self

    def place(self, state: Any) -> Any:
        """``state`` on the driver's devices (identity on one device)."""
        return state

    def finished(self, state: Any, n_steps: int) -> bool:
        """Whether the run loop stops at ``state``: after ``n_steps`` steps (a time evolution stops at its final
        time, whatever the number of steps its adaptive integrator took)."""
        return int(state.step) >= n_steps

    @property
    def threads_in_use(self) -> int:
        """CPU threads that run the driver's chains at once (printed in the run header)."""
        return 1

    def physical_params(self, params: Any) -> Any:
        """The parameters in the model's own form (identity unless the driver reparametrizes)."""
        return params

    def n_parameters(self, state: Any) -> int:
        """Number of real or complex numbers in ``state.params``."""
        return int(sum(x.size for x in jax.tree_util.tree_leaves(state.params)))

    def describe(self, state: Any) -> str:
        """One line for the run header: what is optimized, by what."""
        return f"{type(self).__name__}, {self.n_parameters(state)} parameters"

    def solver(self, state: Any = None) -> str | None:
        """The update rule in use (recorded in ``result.json``); None for drivers without one."""
        return None

    def estimator_info(self) -> dict:
        """What the driver's estimates are (written to ``result.json``)."""
        return {"driver": type(self).__name__}

    def softened(self, factor: float) -> Driver | None:
        """This driver with steps made smaller by ``factor`` (0 < factor < 1): the learning rate times
        ``factor``, the SR diagonal shift divided by it.  The run loop retries a bad step from the last good
        state with it (:mod:`nqs.drivers.loop`).  None (the default): not supported, a bad step stops the run."""
        return None

    def step_settings(self) -> dict[str, float]:
        """The settings :meth:`softened` changes, by name (printed after a recovery, kept in checkpoints so that
        a resumed run continues with them)."""
        return {}

    def retry_state(self, state: Any, number: int) -> Any:
        """The state the loop's ``number``-th retry starts from, given the last good ``state``: the state itself
        by default (sampling drivers draw fresh samples, :meth:`SamplingDriver.retry_state`)."""
        return state

    def history_row(self, info: dict) -> dict[str, float]:
        """One row of ``history.csv`` from a step's ``info`` (all :attr:`history_fields` but step, seconds)."""
        s: Stats = info["energy"]
        return {
            "energy": float(jnp.real(s.mean)),
            "energy_error": float(s.error),
            "variance": float(s.variance),
            "r_hat": float(s.r_hat),
            "tau_corr": float(s.tau_corr),
            "acceptance": float(info.get("acceptance", float("nan"))),
            "diag_shift": float(info.get("diag_shift", float("nan"))),
            "grad_norm": float(info.get("grad_norm", float("nan"))),
        }

    def progress_text(self, info: dict, reference: float | None = None) -> str:
        """The progress bar's description after a step (``reference``: an exact energy, for the error)."""
        s: Stats = info["energy"]
        e = float(jnp.real(s.mean))
        rel = f"  rel.err {abs(e - reference) / abs(reference):.2e}" if reference else ""
        return f"E = {e:.6f} ± {float(s.error):.6f}{rel}"


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def divisor_at_most(n: int, k: int) -> int:
    """The largest divisor of ``n`` not above ``k`` (at least 1)."""
    return max(d for d in range(1, max(1, min(n, k)) + 1) if n % d == 0)


def threaded_parts(part_fn: Callable, n_threads: int, name: str) -> Callable:
    """``parts_of(params, sampler_state)``: the jitted ``part_fn(params, sampler_state, part)`` for the parts
    0 … n_threads − 1, each dispatched from its own thread of a pool (XLA's CPU client runs computations
    dispatched from one thread one after the other, those from different threads at the same time); each
    thread waits for its own part.  Returns the parts' results in order."""
    from concurrent.futures import ThreadPoolExecutor

    part_jit = jax.jit(part_fn)
    pool = ThreadPoolExecutor(n_threads, thread_name_prefix=name)

    def parts_of(params, sampler_state):
        def one(part):
            return jax.block_until_ready(part_jit(params, sampler_state, jnp.int32(part)))

        return list(pool.map(one, range(n_threads)))

    return parts_of


class SamplingDriver(Driver):
    """A driver whose state is :class:`State` and whose Markov chains (``sampler``) run on a device ``mesh``
    (split over its devices) or, on a CPU without one, in ``threads`` parts at once.  Subclasses are
    dataclasses with the fields ``sampler``, ``mesh`` and ``threads``, and, to be softened by the run loop
    (:meth:`softened_step`), ``step_scale`` and ``_compiled``."""

    sampler: Any
    mesh: Any
    threads: int | None
    step_scale: float = 1.0
    _compiled: dict

    @property
    def threads_in_use(self) -> int:
        """Threads that sample the chains: 1 with a mesh, off the CPU, or for a sampler without parts (exact
        enumeration); else ``threads``, or by default the largest divisor of n_chains not above the CPU cores
        this process may use."""
        if self.mesh is not None or not self.sampler.supports_parts or jax.default_backend() != "cpu":
            return 1
        if self.threads is not None:
            return self.threads
        return divisor_at_most(self.sampler.n_chains, cpu_cores())

    def softened_step(self, solver: str, build: Callable[[str, bool], Callable]) -> Callable:
        """The ``step(state)`` of :meth:`~Driver.make_step`: ``build(solver, False)`` (the jitted ``step(state)``)
        while ``step_scale`` is 1, else ``build(solver, True)``'s ``step(state, scale)`` (the learning rate times
        ``scale``, the SR shift divided by it) at this driver's scale.  That one is compiled once for all the
        softened copies of a driver (they share the ``_compiled`` dictionary), so that a recovery of the run
        loop costs no compilation."""
        if self.step_scale == 1:
            return build(solver, False)
        import dataclasses

        others = (
            id(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in ("step_scale", "_compiled")
        )
        key = (solver, self.threads_in_use, *others)
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._compiled[key] = build(solver, True)
        scale = jnp.asarray(self.step_scale, jnp.float64)
        return lambda state: fn(state, scale)

    def retry_state(self, state: State, number: int) -> State:
        """``state`` with the chains' PRNG key folded with ``number``: a retry of a bad step draws fresh samples
        instead of replaying the ones that failed (a rare sample can make a good step look bad), the same ones
        in every run of the same seed."""
        ss = state.sampler_state
        if not hasattr(ss, "key"):
            return state
        key = ss.key.addressable_data(0) if hasattr(ss.key, "addressable_data") else ss.key
        key = jax.random.fold_in(jnp.asarray(jax.device_get(key)), number)
        return self.place(state._replace(sampler_state=ss._replace(key=key)))

    def state_sharding(self) -> State | None:
        """Shardings of the state on ``mesh`` (a prefix tree): replicated, except the chains."""
        if self.mesh is None:
            return None
        from ..parallel import replicated

        r = replicated(self.mesh)
        return State(r, r, self.sampler.state_sharding(self.mesh), r)

    def place(self, state: State) -> State:
        """``state`` as global arrays on ``mesh`` (no-op without a mesh or when already placed).

        With several processes every process passes the same values (as from ``init`` or a checkpoint read
        on each); each keeps the shards of its own devices.
        """
        if self.mesh is None:
            return state
        from ..parallel import put

        return put(state, self.state_sharding())


def finish_step(
    state: State,
    new_params: Any,
    opt_state: Any,
    sampler_state: Any,
    stats: Stats,
    direction: jax.Array,
    shift: float | jax.Array,
) -> tuple[State, dict]:
    """``(next state, info)`` of an optimization step of a sampling driver: the energy statistics, the
    acceptance since ``state``, the SR shift, the update norm and whether everything (the energy, the new
    parameters and the optimizer's state) is finite."""
    from ..jax_utils import tree_all_finite

    finite = (
        tree_all_finite(new_params)
        & tree_all_finite(opt_state)
        & jnp.isfinite(stats.mean)
        & jnp.isfinite(stats.variance)
    )
    n_prop = jnp.maximum(sampler_state.n_proposed - state.sampler_state.n_proposed, 1)
    info = {
        "energy": stats,
        "acceptance": (sampler_state.n_accepted - state.sampler_state.n_accepted) / n_prop,
        "diag_shift": shift,
        "grad_norm": jnp.linalg.norm(direction),
        "finite": finite,
    }
    return State(new_params, opt_state, sampler_state, state.step + 1), info
