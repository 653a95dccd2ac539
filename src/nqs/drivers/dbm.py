"""VMC of a trainable deep Boltzmann machine over its joint (σ, d, d') chain (derivations: docs/dbm.md).

The model, :class:`nqs.models.dbm.DeepBoltzmann`, has ψ(σ) = s(σ) Σ_d φ(σ, d) with no closed form for the sum
over the deep spins d, so the driver samples x = (σ, d, d') ∝ φ(σ,d) φ(σ,d') with
:class:`nqs.sampling.joint.JointMetropolisSampler` (docs/dbm.md (i)).  Per recorded σ and replica r it
averages, over R deep draws (docs/dbm.md (iv)), the local energy at fixed deep spins E_loc(σ, d_r)
(:func:`nqs.sampling.joint.joint_local_energies`, docs/dbm.md (ii)) and O(σ, d_r) = ∂ log φ(σ, d_r)/∂θ:

* energy: the mean of ε = ½(Ē_1 + Ē_2) (its variance includes the deep-layer noise);
* gradient: the cross force pairing replica 1's O with replica 2's E_loc and vice versa, unbiased
  (docs/dbm.md (iii)); the same-replica product is biased;
* SR metric (docs/dbm.md (v)): ``metric="pair"`` (default) runs :func:`nqs.sr.sr_direction` on the 2n
  doubled rows; ``metric="mean"`` solves with one averaged row per sample and the cross force
  (:func:`nqs.sr.metric_direction`);
* ``deep_decay`` μ: a decoupled decay U ← (1 − η_t μ) U after each update (docs/dbm.md (vi)).

Threads and devices as :class:`nqs.drivers.vmc.VMC`: on a CPU the chains are sampled in parts by concurrent
threads (``threads``), or they are split over a device mesh (``mesh``); the results do not depend on either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from pydantic import Field

from .. import sr
from ..models.dbm import DeepBoltzmann
from ..registry import DRIVERS, Section
from ..sampling import MetropolisSampler
from ..sampling.joint import JointMetropolisSampler, JointSamples, joint_local_energies, joint_log_derivatives
from ..stats import Stats, statistics
from .base import SamplingDriver, State, finish_step, threaded_parts

if TYPE_CHECKING:
    from ..workflow.build import Parts
from ..optimizers import OptimizerConfig

__all__ = ["DBMVMC", "pair_rows", "joint_direction", "joint_gradient"]


# --------------------------------------------------------------------------------- estimators
def pair_rows(O: jax.Array, e_loc: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Doubled rows for replica pairs: ``(rows (2n, P), e_swapped (2n,), w (2n,))``.

    ``O`` (n, 2, P), ``e_loc`` (n, 2), ``weights`` (n,) summing to 1.  Row O(σ,d) is paired with
    E_loc(σ,d') and row O(σ,d') with E_loc(σ,d); weights w/2 each.  Then
    ``estimators.centered`` gives Ōᵀε = the unbiased cross force (docs/dbm.md (iii)) and ŌᵀŌ
    the joint-chain metric S_pair.
    """
    rows = jnp.concatenate([O[:, 0], O[:, 1]], axis=0)
    e_sw = jnp.concatenate([e_loc[:, 1], e_loc[:, 0]], axis=0)
    w = jnp.concatenate([weights, weights]) / 2
    return rows, e_sw, w


def joint_gradient(O: jax.Array, e_loc: jax.Array, weights: jax.Array) -> jax.Array:
    """∂E/∂θ (P,) = 2 Re F with the cross force F (docs/dbm.md (iii)); real parameters."""
    return sr.gradient(*pair_rows(O, e_loc, weights), "real")


def joint_direction(
    O: jax.Array,
    e_loc: jax.Array,
    weights: jax.Array,
    metric: str,
    diag_shift: float | jax.Array,
    solver: str,
    tol: float = 1e-8,
    maxiter: int = 1000,
) -> jax.Array:
    """SR direction δ = (S_metric + λ)⁻¹ F (real, (P,)); ``metric`` "pair" or "mean" (docs/dbm.md (v)).

    ``O`` (n, 2, P) real, ``e_loc`` (n, 2), ``weights`` (n,) summing to 1; ``solver`` "dense",
    "minsr" or "cg".
    """
    rows, e_sw, w2 = pair_rows(O, e_loc, weights)
    if metric == "pair":
        return sr.sr_direction(rows, e_sw, w2, "real", diag_shift, solver, tol, maxiter)
    if metric != "mean":
        raise ValueError(f"metric must be 'pair' or 'mean', got {metric!r}")
    force = sr.gradient(rows, e_sw, w2, "real") / 2
    return sr.metric_direction(0.5 * (O[:, 0] + O[:, 1]), force, weights, diag_shift, solver, tol, maxiter)


# --------------------------------------------------------------------------------- the driver
@dataclass(frozen=True, eq=False)
class DBMVMC(SamplingDriver):
    """VMC of a :class:`~nqs.models.dbm.DeepBoltzmann` over the joint chain; the interface of
    :class:`nqs.drivers.vmc.VMC`.

    ``init``, ``make_step``, ``estimate``, ``n_parameters``, ``solver`` behave as VMC's (same
    state, info keys and return shapes); ``estimate`` returns σ samples and per-sample
    ε = ½(Ē_1 + Ē_2) (so ``Stats.variance`` is Var ε, which includes the deep-layer noise and is
    larger than Var_ψ E_loc).  ``metric`` chooses the SR metric ("pair" or "mean", docs/dbm.md (v));
    ``deep_decay`` μ ≥ 0 the decoupled decay of U (docs/dbm.md (vi)).  Optimizer kinds "sr", "minsr",
    "sgd", "adam" as in :class:`~nqs.optimizers.OptimizerConfig`.  ``mesh`` and ``threads`` as VMC's:
    the chains split over a 1-D device mesh, or (on a CPU without a mesh) sampled in ``threads`` parts
    at once (None: one per CPU core, as many as divide ``n_chains``).  Float64 only, all samples at once.
    """

    model: DeepBoltzmann
    hamiltonian: Any
    sampler: JointMetropolisSampler
    optimizer: OptimizerConfig = OptimizerConfig()
    metric: str = "pair"
    deep_decay: float = 0.0
    mesh: Any = None
    threads: int | None = None
    step_scale: float = 1.0
    _compiled: dict = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not self.step_scale > 0:
            raise ValueError(f"step_scale must be positive, got {self.step_scale!r}")
        if self.metric not in ("pair", "mean"):
            raise ValueError(f"metric must be 'pair' or 'mean', got {self.metric!r}")
        if self.deep_decay < 0:
            raise ValueError(f"deep_decay must be >= 0, got {self.deep_decay!r}")
        if self.mesh is not None:
            if len(self.mesh.axis_names) != 1:
                raise ValueError(f"mesh must be 1-D (nqs.parallel.chain_mesh()), got axes {self.mesh.axis_names}")
            self.sampler.state_sharding(self.mesh)  # checks that the chains split evenly
        if self.threads is not None:
            if self.threads < 1:
                raise ValueError(f"threads must be at least 1, got {self.threads!r}")
            if self.sampler.n_chains % self.threads:
                raise ValueError(
                    f"threads ({self.threads}) must divide n_chains ({self.sampler.n_chains}): "
                    "each thread runs an equal part of the chains"
                )

    # ------------------------------------------------------------------ set-up
    def init(self, key: jax.Array, params: Any = None) -> State:
        k_model, k_sampler = jax.random.split(key)
        if params is None:
            params = self.model.init(k_model)
        params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), params)
        opt_state = self.optimizer.transform().init(params)
        sstate = self.sampler.init_state(k_sampler, self.model.n_deep)
        return self.place(State(params, opt_state, sstate, jnp.zeros((), jnp.int64)))

    @property
    def param_mode(self) -> str:
        return "real"

    def n_parameters(self, state: State) -> int:
        return int(ravel_pytree(state.params)[0].size)

    def solver(self, state: State | None = None) -> str:
        """ "dense", "minsr" or "cg" for SR (auto: fewer flops on the metric's rows), else the kind."""
        if self.optimizer.kind == "minsr":
            return "minsr"
        if self.optimizer.kind != "sr":
            return self.optimizer.kind
        rows = self.sampler.n_samples * (2 if self.metric == "pair" else 1)
        n_params = (
            self.n_parameters(state)
            if state is not None
            else int(
                sum(x.size for x in jax.tree_util.tree_leaves(jax.eval_shape(self.model.init, jax.random.PRNGKey(0))))
            )
        )
        return self.optimizer.sr.choose(n_params, rows, "real", real_rows=True)

    def describe(self, state: State) -> str:
        return (
            f"model: {self.model.describe()}, {self.n_parameters(state)} parameters; "
            f"optimizer: {self.optimizer.kind} (solver: {self.solver(state)})"
        )

    def softened(self, factor: float) -> DBMVMC:
        """This driver with the learning rate times ``factor`` and the SR shift divided by it (as
        :meth:`nqs.drivers.vmc.VMC.softened`; the decay of U per update follows the learning rate)."""
        return dataclasses.replace(self, step_scale=self.step_scale * factor)

    def step_settings(self) -> dict[str, float]:
        return self.optimizer.scaled(self.step_scale).step_settings()

    def for_evaluation(self, n_samples: int | None) -> DBMVMC:
        """This driver drawing ``n_samples`` σ samples per :meth:`estimate` (as VMC.for_evaluation)."""
        if n_samples is None:
            return self
        return dataclasses.replace(self, sampler=dataclasses.replace(self.sampler, n_samples=n_samples))

    def estimator_info(self) -> dict:
        """The driver, its joint-chain settings and what :meth:`estimate`'s statistics are (result.json)."""
        return {
            "driver": "DBMVMC",
            "sampler": type(self.sampler).__name__,
            "deep_samples": self.sampler.deep_samples,
            "deep_decay": self.deep_decay,
            "metric": self.metric,
            "variance": "Var eps, eps = (E_loc(s,d) + E_loc(s,d'))/2 averaged over the deep draws: includes "
            "the deep-layer noise, so 'variance' and 'v_score' are upper bounds of Var E_loc "
            "and of the V-score",
        }

    # ------------------------------------------------------------------ pieces
    def _rows(self, x, lead: int):
        """``x`` with its ``lead`` leading axes flattened to rows, split over the mesh."""
        from ..parallel import constrain_rows

        return constrain_rows(x.reshape(-1, *x.shape[lead:]), self.mesh)

    def _replica_rows(self, js: JointSamples):
        """σ rows (n, N) and their deep configurations (n, 2R, K), replica-minor."""
        c, p, r, _, k = js.deep.shape
        return self._rows(js.sigma, 2), self._rows(js.deep.reshape(c, p, 2 * r, k), 2)

    def pair_energies(self, params: Any, js: JointSamples, mesh_rows: bool = True) -> jax.Array:
        """``e_pair`` (C, P, 2): E_loc of each replica averaged over its R recorded deep configurations."""
        c, p, r = js.deep.shape[:3]
        if mesh_rows:
            sig, deep = self._replica_rows(js)
        else:
            sig, deep = js.sigma.reshape(c * p, -1), js.deep.reshape(c * p, 2 * r, -1)
        e = joint_local_energies(self.model, params, self.hamiltonian, sig, deep)
        if mesh_rows:
            e = self._rows(e, 1)
        return jnp.mean(e.reshape(c, p, r, 2), axis=2)

    def pair_derivatives(self, params: Any, js: JointSamples) -> jax.Array:
        """``O_pair`` (C·P, 2, P_θ): O of each replica averaged over its R recorded deep configurations."""
        c, p, r = js.deep.shape[:3]
        sig, deep = self._replica_rows(js)
        O = self._rows(joint_log_derivatives(self.model, params, sig, deep), 1)
        return jnp.mean(O.reshape(c * p, r, 2, O.shape[-1]), axis=1)

    def _estimate_from(self, js: JointSamples, e_pair, sstate):
        eps = jnp.mean(e_pair, axis=-1)
        weights = jnp.full(eps.shape, 1.0 / eps.size)
        return js.sigma, weights, eps, statistics(eps), sstate

    def estimate(self, params: Any, sampler_state: Any) -> tuple[jax.Array, jax.Array, jax.Array, Stats, Any]:
        """``(σ samples (C, P, N), weights (C, P), ε (C, P), Stats, sampler_state)`` as VMC.estimate."""
        js, sstate = self.sampler.sample(self.model, params, sampler_state)
        return self._estimate_from(js, self.pair_energies(params, js), sstate)

    def make_estimate(self) -> Callable[..., Any]:
        """:meth:`estimate` as ``fn(params, sampler_state)``: jitted, or with :attr:`threads_in_use` > 1 the
        chains' parts sampled (with their local energies) by that many threads, then joined."""
        n_threads = self.threads_in_use
        if n_threads == 1:
            return jax.jit(self.estimate)
        parts_of, join = self._parts(n_threads)
        join_jit = jax.jit(lambda sstate, parts: self._estimate_from(*join(sstate, parts)))
        return lambda params, sstate: join_jit(sstate, parts_of(params, sstate))

    def _parts(self, n_threads: int):
        """``(parts_of, join)`` as :meth:`nqs.drivers.vmc.VMC._parts`: ``parts_of(params, sampler_state)`` samples
        the chains in ``n_threads`` parts with their pair energies on as many threads, and the jittable
        ``join(sampler_state, parts)`` gives ``(JointSamples, e_pair, new sampler state)``."""

        model, sampler = self.model, self.sampler

        def part_fn(params, sstate, part):
            q = sampler.sample_part(model, params, sstate, part, n_threads)
            return q, self.pair_energies(params, q.samples, mesh_rows=False)

        def join(sstate, parts):
            js, sstate = sampler.join_parts(sstate, [q for q, _ in parts])
            return js, jnp.concatenate([e for _, e in parts]), sstate

        return threaded_parts(part_fn, n_threads, "nqs-joint-chains"), join

    def make_step(self, solver: str | None = None) -> Callable[..., Any]:
        """The ``step(state) -> (state, info)``; ``solver`` (see :meth:`solver`) is static.  One jitted
        function, or with :attr:`threads_in_use` > 1 the parts sampled on threads and one jitted update (a
        softened driver shares its compiled step with its other softened copies, as VMC's)."""
        return self.softened_step(solver or self.solver(), self._build_step)

    def _build_step(self, solver: str, scaled: bool) -> Callable[..., Any]:
        """The jitted ``step(state)``, or with ``scaled`` ``step(state, scale)``."""
        n_threads = self.threads_in_use
        if n_threads > 1:
            parts_of, join = self._parts(n_threads)

            @jax.jit
            def rest(state: State, parts, *scale):
                js, e_pair, sstate = join(state.sampler_state, parts)
                return self._update(state, solver, js, e_pair, sstate, *scale)

            return lambda state, *scale: rest(state, parts_of(state.params, state.sampler_state), *scale)

        def step(state: State, *scale):
            js, sstate = self.sampler.sample(self.model, state.params, state.sampler_state)
            return self._update(state, solver, js, self.pair_energies(state.params, js), sstate, *scale)

        if self.mesh is None:
            return jax.jit(step)
        from ..parallel import replicated

        sh, r = self.state_sharding(), replicated(self.mesh)
        return jax.jit(step, in_shardings=(sh, r) if scaled else (sh,), out_shardings=(sh, r))

    def _update(self, state: State, solver: str, js: JointSamples, e_pair, sstate, scale=None):
        """The rest of a step after sampling and local energies: O, the SR direction, the optax update (with a
        traced ``scale``: the softened settings, :meth:`nqs.optimizers.OptimizerConfig.scaled`)."""
        tx = self.optimizer.transform(scale)
        oc = self.optimizer
        params = state.params
        stats = statistics(jnp.mean(e_pair, axis=-1))
        O = self.pair_derivatives(params, js)
        n = O.shape[0]
        e2 = self._rows(e_pair.reshape(n, 2), 1)
        w = jnp.full((n,), 1.0 / n)
        flat, unravel = ravel_pytree(params)
        shift = oc.shift(state.step, scale)
        if oc.kind in ("sr", "minsr"):
            d = joint_direction(O, e2, w, self.metric, shift, solver, oc.sr.cg_tol, oc.sr.cg_maxiter)
        else:
            d = joint_gradient(O, e2, w)
        d = d.astype(flat.dtype)
        updates, opt_state = tx.update(unravel(d), state.opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if self.deep_decay:
            sched = oc.schedule(scale)
            lr = sched(state.step) if callable(sched) else sched
            new_params = dict(new_params, U=new_params["U"] * (1.0 - lr * self.deep_decay))
        return finish_step(state, new_params, opt_state, sstate, stats, d, shift)


class DBMDriverConfig(Section):
    """``[driver] kind = "dbm"``: VMC of a deep Boltzmann machine over its joint (σ, d, d') chain (docs/dbm.md),
    the driver that ``kind = "auto"`` runs for ``model.kind = "dbm"``; its joint-chain settings are here, and
    ``[parallel]`` sets devices and threads."""

    kind: Literal["dbm"] = "dbm"
    deep_samples: int = Field(4, gt=0, description="deep draws per replica and recorded sample (R)")
    deep_decay: float = Field(
        0.1, ge=0, description="decoupled decay of the hidden-deep weights U per update, times the learning rate"
    )
    deep_metric: Literal["pair", "mean"] = Field(
        "pair", description='SR metric of the joint chain: "pair" the doubled replica rows, "mean" one averaged row'
    )


def refused_settings(config: Any) -> str | None:
    """The first setting of ``config`` the DBM driver cannot honour, as ``"key: why"`` (None: all apply).
    The config rejects it at validation (:class:`nqs.config.Config`)."""
    sc, oc = config.sampler, config.optimizer
    if getattr(sc, "power", 2.0) != 2:
        return (
            "sampler.power: only the Metropolis samplers of kind local, exchange and hop take a power "
            "other than 2 (the DBM's joint chain samples |psi|^2)"
        )
    if sc.kind == "exact":
        return 'sampler.kind: the DBM\'s joint (σ, d, d\') Markov chain has no exact mode; use "exchange" or "local"'
    if oc.precision != "float64":
        return "optimizer.precision: the DBM driver runs in float64 only; remove optimizer.precision"
    if oc.chunk_size is not None:
        return "optimizer.chunk_size: the DBM driver evaluates all samples at once; remove optimizer.chunk_size"
    if getattr(oc, "sr_rescale", False):
        return "optimizer.sr_rescale: scale-invariant SR is not available for the DBM; remove it"
    if config.parallel.distributed:
        return "parallel.distributed: the DBM driver runs in one process; set distributed = false"
    if config.evaluation.lanczos_step:
        return (
            "evaluation.lanczos_step is not available for model kind 'dbm' (its amplitudes are sampled "
            "jointly with the deep units, so H²ψ/ψ has no local estimator)"
        )
    return None


def unused_settings(config: Any) -> list[str]:
    """Settings of ``config`` that the DBM driver leaves unused, one line each (printed in the run header)."""
    if "memory_limit_mb" in config.optimizer.model_fields_set:
        return ["the DBM driver evaluates all samples in one batch; optimizer.memory_limit_mb does not apply to it"]
    return []


@DRIVERS.register("dbm", config=DBMDriverConfig, refuses=refused_settings, notes=unused_settings)
def build_dbm(section: DBMDriverConfig, parts: Parts) -> DBMVMC:
    """The DBM driver: the Metropolis sampler's move rule drives the joint (σ, d, d') chain."""
    from .. import parallel

    pc, s = parts.config.parallel, parts.sampler
    if not isinstance(parts.model, DeepBoltzmann) or not isinstance(s, MetropolisSampler):
        raise ValueError('driver.kind "dbm" needs model.kind = "dbm" and a Metropolis sampler')
    return DBMVMC(
        parts.model,
        parts.hamiltonian,
        JointMetropolisSampler.from_metropolis(s, section.deep_samples),
        parts.optimizer,
        metric=section.deep_metric,
        deep_decay=section.deep_decay,
        mesh=parallel.mesh_for(pc.shard),
        threads=pc.threads,
    )
