"""Time evolution by the time-dependent variational principle (TDVP), in real and in imaginary time.

The parameters θ of a wave function follow the flow that stays closest to the exact one (McLachlan):

* real time, ψ̇ = −iHψ:        S θ̇ = −i F
* imaginary time, ψ̇ = −(H − E)ψ: S θ̇ = −F

with the quantum geometric tensor S and the force F of :mod:`nqs.conventions`, both estimated from samples of
|ψ|² (Monte Carlo, or exact enumeration with weights |ψ|²/Z).  For real parameters the equations take their
real parts, ``Re S θ̇ = Im F`` and ``Re S θ̇ = −Re F``.  The linear system is solved with a regulariser
(:mod:`nqs.qgt`: diagonal shift, smooth pseudo-inverse, or the pseudo-inverse with the signal-to-noise cut of
Schmitt & Heyl) and integrated by an explicit Runge–Kutta method (:mod:`nqs.integrators`: Euler, Heun and
RK4 with a fixed step; adaptive Heun, RK23 and RK45 with an error estimate that accepts or rejects a step and
chooses the next one).  Every right-hand-side evaluation samples the state anew.

The driver follows the protocol of :mod:`nqs.drivers.base`: its state is :class:`TDVPState`, one step is one
attempted integrator step (a rejected one leaves θ and t as they were and shrinks dt), every step lands on the
next output time rather than stepping past it, and the run loop stops at ``t_end``
(:meth:`TDVP.finished`).  Each step's ``info`` describes the state it starts from: energy (and its drift
from t = 0), the TDVP residual (the relative distance between the variational and the exact flow), the
acceptance rate of the chains and each observable with its error bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from pydantic import Field, field_validator, model_validator

from .. import estimators, integrators
from ..jax_utils import tree_all_finite
from ..models.product import PRODUCT_STATES
from ..operators.observables import NAMED_OBSERVABLES, named_observable, user_observable
from ..operators.pauli import pauli_terms_from_spec
from ..qgt import REGULARISERS, TDVPSolver, tdvp_solve_factored
from ..registry import Section
from ..stats import Stats
from .base import Driver
from .vmc import VMC

#: Error norms of the adaptive integrators: the Euclidean norm of the parameters' error, or its length in the
#: metric S, √(δθ† S δθ) — the distance it makes between the wave functions.
ERROR_NORMS = ("euclidean", "qgt")
#: Start states of ``[dynamics] initial``.
INITIAL_STATES = ("ground_state", *PRODUCT_STATES, "random")


class TDVPState(NamedTuple):
    """What changes along a time evolution: parameters, the chains, the time, the next step's dt (the adaptive
    controller's proposal), the number of attempted steps, the energy at t = 0 (for the drift; NaN before the
    first evaluation) and the number of rejected steps."""

    params: Any
    sampler_state: Any
    t: jax.Array
    dt: jax.Array
    step: jax.Array
    energy0: jax.Array
    n_rejected: jax.Array


def _stat_fields(name: str) -> tuple[str, str]:
    return name, f"{name}_error"


@dataclass(frozen=True, eq=False)
class TDVP(Driver):
    """TDVP of ``model`` sampled by ``sampler`` under ``hamiltonian``, from t = 0 to ``t_end``.

    ``output_times``: the times the evolution must land on (sorted, ending at ``t_end``; checkpoints and the
    result's time grid).  ``real_time`` False: imaginary time τ (the state tends to the ground state).
    ``integrator``: one of :data:`nqs.integrators.METHODS`; ``dt`` its fixed step, or the first step of an
    adaptive one, which keeps its error per step below ``atol + rtol·‖θ‖`` in ``error_norm`` with steps in
    [``dt_min``, ``dt_max``].  ``solver``: the regularised solve of S θ̇ = F.  ``observables``: ``(name,
    operator)`` pairs measured at every step from the same samples (local estimators, like the energy).
    """

    model: Any
    hamiltonian: Any
    sampler: Any
    t_end: float
    output_times: tuple[float, ...] = ()
    real_time: bool = True
    integrator: str = "rk4"
    dt: float = 0.01
    rtol: float = 1e-4
    atol: float = 1e-6
    dt_min: float = 1e-8
    dt_max: float = math.inf
    error_norm: str = "euclidean"
    solver: TDVPSolver = field(default_factory=TDVPSolver)
    observables: tuple = ()
    chunk_size: int | None = None

    def __post_init__(self):
        if not self.t_end > 0:
            raise ValueError(f"t_end must be positive, got {self.t_end!r}")
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt!r}")
        if self.error_norm not in ERROR_NORMS:
            raise ValueError(f"error_norm must be one of {ERROR_NORMS}, got {self.error_norm!r}")
        tab = integrators.tableau(self.integrator)  # ValueError naming the methods
        times = sorted({float(t) for t in self.output_times if 0 < t < self.t_end} | {float(self.t_end)})
        object.__setattr__(self, "output_times", (0.0, *times))
        object.__setattr__(self, "_tableau", tab)
        vmc = VMC(self.model, self.hamiltonian, self.sampler, chunk_size=self.chunk_size, threads=1)
        object.__setattr__(self, "_vmc", vmc)
        object.__setattr__(self, "_mode", vmc.param_mode)
        if self.real_time and self._mode == "real" and vmc._model.real_derivatives:
            raise ValueError(
                "real-time evolution changes the phase of the wave function, and this model's parameters cannot "
                'change it (real parameters without a phase): use param_dtype = "complex"'
            )

    # ------------------------------------------------------------------ protocol
    @property
    def adaptive(self) -> bool:
        return self._tableau.b_error is not None

    @property
    def param_mode(self) -> str:
        return self._mode

    @property
    def history_fields(self) -> tuple[str, ...]:
        obs = tuple(f for name, _ in self.observables for f in _stat_fields(name))
        return (
            "step",
            "t",
            "dt",
            "accepted",
            "energy",
            "energy_error",
            "energy_drift",
            "variance",
            "residual",
            "acceptance",
            "n_kept",
            "snr_min",
            *obs,
            "seconds",
        )

    def init(self, key: jax.Array, params: Any = None) -> TDVPState:
        """The state at t = 0 with ``params`` (the model's initial parameters when None) and fresh chains."""
        vs = self._vmc.init(key, params)
        zero = jnp.zeros((), jnp.float64)
        return TDVPState(
            vs.params,
            vs.sampler_state,
            zero,
            jnp.asarray(self.dt, jnp.float64),
            jnp.zeros((), jnp.int64),
            jnp.full((), jnp.nan, jnp.float64),
            jnp.zeros((), jnp.int64),
        )

    def finished(self, state: TDVPState, n_steps: int) -> bool:
        """At ``t_end`` (or after ``n_steps`` attempted steps, the run's cap)."""
        return float(state.t) >= self.t_end * (1 - 1e-12) or int(state.step) >= n_steps

    def physical_params(self, params: Any) -> Any:
        return self._vmc.physical_params(params)

    def describe(self, state: TDVPState) -> str:
        kind = "real" if self.real_time else "imaginary"
        step = (
            f"{self.integrator} (rtol {self.rtol:g}, atol {self.atol:g}, {self.error_norm} norm)"
            if self.adaptive
            else f"{self.integrator}, dt = {self.dt:g}"
        )
        return (
            f"model: {self.model.describe()}, {self.n_parameters(state)} parameters; TDVP in {kind} time to "
            f"{self.t_end:g}: {step}; regulariser {self.solver.describe()}"
        )

    def estimator_info(self) -> dict:
        return {
            "driver": "TDVP",
            "time": "real" if self.real_time else "imaginary",
            "integrator": self.integrator,
            "sampler": type(self.sampler).__name__,
            "regulariser": self.solver.describe(),
        }

    def make_estimate(self) -> Callable:
        return self._vmc.make_estimate()

    def history_row(self, info: dict) -> dict[str, float]:
        s: Stats = info["energy"]
        row = {
            "t": float(info["t"]),
            "dt": float(info["dt"]),
            "accepted": int(info["accepted"]),
            "energy": float(jnp.real(s.mean)),
            "energy_error": float(s.error),
            "energy_drift": float(info["energy_drift"]),
            "variance": float(s.variance),
            "residual": float(info["residual"]),
            "acceptance": float(info["acceptance"]),
            "n_kept": float(info["n_kept"]),
            "snr_min": float(info["snr_min"]),
        }
        for name, _ in self.observables:
            o: Stats = info["observables"][name]
            row[name], row[f"{name}_error"] = float(jnp.real(o.mean)), float(o.error)
        return row

    def progress_text(self, info: dict, reference: float | None = None) -> str:
        s: Stats = info["energy"]
        obs = "".join(
            f"  {name} = {float(jnp.real(info['observables'][name].mean)):.4f}" for name, _ in self.observables[:2]
        )
        return f"t = {float(info['t']):.4f}  E = {float(jnp.real(s.mean)):.6f}{obs}"

    # ------------------------------------------------------------------ the flow
    def _measure(self, params: Any, sampler_state: Any):
        """Sample ``params``; ``(samples, weights, e_loc, energy Stats, observables' Stats, sampler_state)``."""
        vmc = self._vmc
        samples, weights, e_loc, stats, sstate = vmc.estimate(params, sampler_state)
        flat = samples.reshape(-1, samples.shape[-1])
        obs = {}
        for name, op in self.observables:
            o_loc = estimators.local_energies(vmc._model, params, op, flat, self.chunk_size)
            obs[name] = vmc._energy_statistics(o_loc.astype(jnp.complex128).reshape(weights.shape), weights)[1]
        return samples, weights, e_loc, stats, obs, sstate

    def _rhs(self, unravel: Callable) -> Callable:
        """``f(t, θ, sampler_state) -> (θ̇, sampler_state, info)`` for :mod:`nqs.integrators`."""
        vmc, mode = self._vmc, self._mode
        c = -1j if self.real_time else -1.0
        mcmc = not self.sampler.exact

        def f(t, y, sstate):
            params = unravel(y)
            samples, weights, e_loc, stats, obs, new_sstate = self._measure(params, sstate)
            rows = samples.reshape(-1, samples.shape[-1])
            O = estimators.log_derivatives(vmc._model, params, rows, mode, self.chunk_size, factored=True)
            # the solve works on O's factors where it can (sample space): no n × P matrix
            theta_dot, solved = tdvp_solve_factored(O, c * e_loc, weights, mode, self.solver, mcmc)
            n_prop = jnp.maximum(new_sstate.n_proposed - sstate.n_proposed, 1)
            info = {
                "energy": stats,
                "observables": obs,
                "residual": solved.residual,
                "n_kept": solved.n_kept,
                "snr_min": solved.snr_min,
                "acceptance": (new_sstate.n_accepted - sstate.n_accepted) / n_prop,
                "metric": O,
                "weights": weights,
            }
            return theta_dot.astype(y.dtype), new_sstate, info

        return f

    def _metric_norm(self, O, weights) -> Callable:
        """‖e‖_S = √(e† S e) = ‖Ō e‖ (for real parameters, √(eᵀ Re S e)), from the uncentred log-derivatives
        ``O`` (dense or factored) and the weights: Ō e = √w (O e − ⟨O e⟩)."""
        w = weights.reshape(-1)

        def norm(e):
            e = e.astype(O.dtype if self._mode == "real" else jnp.result_type(e.dtype, O.dtype))
            oe = O.matvec(e) if isinstance(O, estimators.FactoredJacobian) else O @ e
            oe = jnp.sqrt(w) * (oe - jnp.sum(w * oe))
            return jnp.sqrt(jnp.sum(jnp.abs(oe) ** 2))

        return norm

    def make_step(self) -> Callable[[TDVPState], tuple[TDVPState, dict]]:
        """The jitted ``step(state) -> (state, info)``: one attempted integrator step, landing on the next
        output time when it is nearer than ``dt``."""
        tab = self._tableau
        grid = jnp.asarray(self.output_times, jnp.float64)
        tol = 1e-12 * max(1.0, self.t_end)

        def step(state: TDVPState):
            y, unravel = ravel_pytree(state.params)
            f = self._rhs(unravel)
            t = state.t
            t_next = grid[jnp.minimum(jnp.searchsorted(grid, t + tol, side="right"), grid.size - 1)]
            dt_eff = jnp.minimum(state.dt, t_next - t)
            clipped = dt_eff < state.dt
            y_new, y_err, sstate, info0 = integrators.rk_step(tab, f, t, y, dt_eff, state.sampler_state)
            if self.adaptive:
                norm = self._metric_norm(info0["metric"], info0["weights"]) if self.error_norm == "qgt" else None
                ratio = integrators.error_ratio(y_err, y, y_new, self.rtol, self.atol, norm)
                accepted = (ratio <= 1.0) | (dt_eff <= self.dt_min)
                proposed = integrators.next_dt(
                    dt_eff, ratio, tab.error_order, dt_min=self.dt_min, dt_max=min(self.dt_max, self.t_end)
                )
                dt_next = jnp.where(accepted & clipped, jnp.maximum(proposed, state.dt), proposed)
            else:
                accepted, dt_next = jnp.asarray(True), state.dt
            finite = tree_all_finite(y_new) & jnp.isfinite(info0["energy"].mean)
            keep = accepted & finite
            y_out = jnp.where(keep, y_new, y)
            t_out = jnp.where(keep, jnp.where(clipped, t_next, t + dt_eff), t)
            e = jnp.real(info0["energy"].mean)
            energy0 = jnp.where(state.step == 0, e, state.energy0)
            new = TDVPState(
                unravel(y_out),
                sstate,
                t_out,
                dt_next,
                state.step + 1,
                energy0,
                state.n_rejected + (~accepted).astype(jnp.int64),
            )
            info = {k: v for k, v in info0.items() if k not in ("metric", "weights")}
            info.update(
                t=t,
                dt=dt_eff,
                accepted=accepted,
                energy_drift=e - energy0,
                finite=finite,
            )
            return new, info

        return jax.jit(step)

    def make_measure(self) -> Callable[[TDVPState], dict]:
        """``measure(state) -> info``: the energy and the observables of ``state`` (a fresh sample), as a step's
        ``info`` has them (the evaluation at the final time)."""

        def measure(state: TDVPState):
            _, _, _, stats, obs, sstate = self._measure(state.params, state.sampler_state)
            return {"energy": stats, "observables": obs}, sstate

        return jax.jit(measure)


# ---------------------------------------------------------------------- the [dynamics] section
class ObservableSpec(Section):
    """An observable the user writes: ``{name = "X0", terms = [[1.0, "X", [0]]]}`` (a sum of Pauli strings)."""

    name: str = Field(min_length=1)
    terms: list

    @field_validator("terms")
    @classmethod
    def _valid_terms(cls, v):
        pauli_terms_from_spec(v)  # a ValueError names the bad entry
        return v


class TDVPSettings(Section):
    """The keys every TDVP section shares (``[dynamics]``, ``[thermal]``): the integrator, its steps and
    tolerances, and the regularised solve of S θ̇ = F (:class:`~nqs.qgt.TDVPSolver`)."""

    dt: float = Field(0.01, gt=0, description="the step of a fixed-step integrator; the first step of an adaptive one")
    integrator: Literal[integrators.METHODS] = Field(  # type: ignore[valid-type]
        "rk4", description="euler, heun, rk4 (fixed dt); adaptive_heun, rk23, rk45 (adaptive dt)"
    )
    rtol: float = Field(1e-4, gt=0, description="adaptive integrators: relative tolerance per step")
    atol: float = Field(1e-6, gt=0, description="adaptive integrators: absolute tolerance per step")
    dt_min: float = Field(1e-8, ge=0, description="adaptive integrators: smallest step (taken even if too coarse)")
    regulariser: Literal[REGULARISERS] = Field(  # type: ignore[valid-type]
        "snr",
        description="shift: (S + diag_shift) x = F; pinv: smooth pseudo-inverse; snr: pinv and the "
        "signal-to-noise cut (Schmitt & Heyl; Monte Carlo only, exact sums solve with pinv)",
    )
    diag_shift: float = Field(0.0, ge=0, description="regulariser 'shift': the diagonal shift (> 0)")
    rcond: float = Field(1e-14, ge=0, lt=1, description="pinv/snr: eigenvalues of S below rcond*max are dropped")
    rcond_smooth: float = Field(1e-8, ge=0, lt=1, description="pinv/snr: smooth cut-off, relative to the largest")
    snr_cut: float = Field(2.0, ge=0, description="snr: modes with a signal-to-noise ratio below this are damped")
    rescale: bool = Field(
        True, description="solve with S rescaled to unit diagonal (the cuts judge each parameter on its own scale)"
    )
    max_steps: int = Field(1_000_000, gt=0, description="cap on the integrator steps")

    @model_validator(mode="after")
    def _shift_needs_a_value(self):
        if self.regulariser == "shift" and not self.diag_shift > 0:
            raise ValueError("diag_shift: regulariser 'shift' needs diag_shift > 0")
        return self

    def solver(self) -> TDVPSolver:
        return TDVPSolver(
            regulariser=self.regulariser,
            diag_shift=self.diag_shift,
            rcond=self.rcond,
            rcond_smooth=self.rcond_smooth,
            snr_cut=self.snr_cut,
            rescale=self.rescale,
        )


class DynamicsConfig(TDVPSettings):
    """``[dynamics]``: the time evolution ``nqs evolve`` runs (TDVP, :class:`TDVP`).

    The start state (``initial``): the ground state of ``[hamiltonian]`` found first by VMC with ``[optimizer]``
    (``"ground_state"``), a product state (``"plus"`` |+…+⟩, ``"up"``, ``"down"``, ``"neel"``; RBM only,
    :mod:`nqs.models.product`), the model's random initial parameters (``"random"``), or the final state of an
    earlier run folder (``from_run``).  The evolution's Hamiltonian is ``[hamiltonian]`` with the keys of
    ``[dynamics.hamiltonian]`` changed (a quench: ``hamiltonian = {h = 0.5}``)."""

    time: Literal["real", "imaginary"] = Field("real", description="real time t, or imaginary time tau")
    t_end: float = Field(1.0, gt=0, description="final time (imaginary time: final tau)")
    dt_max: float | None = Field(None, gt=0, description="adaptive integrators: largest step (default: t_end)")
    error_norm: Literal[ERROR_NORMS] = Field(  # type: ignore[valid-type]
        "euclidean", description="adaptive integrators: norm of the error, of the parameters or in the metric S"
    )
    initial: Literal[INITIAL_STATES] = Field(  # type: ignore[valid-type]
        "ground_state", description="the start state (see the section's text); from_run overrides it"
    )
    from_run: str | None = Field(None, description="start from the final state of this run folder")
    noise: float = Field(1e-3, ge=0, description="product states: Gaussian noise on W and b (see nqs.models.product)")
    hamiltonian: dict | None = Field(None, description="keys of [hamiltonian] changed for the evolution (a quench)")
    observables: list[str | ObservableSpec] = Field(
        default_factory=lambda: ["X", "Z", "ZZ"],
        description="named observables (" + ", ".join(NAMED_OBSERVABLES) + ") or {name, terms} Pauli sums",
    )
    output_every: float | None = Field(None, gt=0, description="spacing of the output times (default t_end/20)")
    exact: bool | None = Field(None, description="exact reference by Krylov time evolution (default: when ED can)")

    @model_validator(mode="after")
    def _consistent(self):
        if self.dt_max is not None and self.dt_max < self.dt_min:
            raise ValueError(f"dt_max: {self.dt_max:g} is below dt_min ({self.dt_min:g})")
        names = [o if isinstance(o, str) else o.name for o in self.observables]
        for o in self.observables:
            if isinstance(o, str) and o not in NAMED_OBSERVABLES:
                raise ValueError(
                    f"observables: unknown observable {o!r} (named ones: {', '.join(NAMED_OBSERVABLES)}; or write "
                    '{name = "...", terms = [[coefficient, "XX", [i, j]], ...]})'
                )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"observables: {', '.join(map(repr, twice))} named twice")
        if "energy" in names:
            raise ValueError("observables: 'energy' is always measured; it is not a name to give")
        return self

    def output_times(self) -> tuple[float, ...]:
        every = self.output_every or self.t_end / 20
        n = max(1, int(math.floor(self.t_end / every * (1 + 1e-12))))
        return tuple(min(self.t_end, (k + 1) * every) for k in range(n))


def build_observables(section: DynamicsConfig, lattice) -> tuple[tuple[str, Any], ...]:
    """``(name, operator)`` of ``section.observables`` on ``lattice``; ValueError naming a bad one."""
    out = []
    for o in section.observables:
        if isinstance(o, str):
            out.append((o, named_observable(lattice, o)))
        else:
            try:
                out.append((o.name, user_observable(lattice, o.terms)))
            except ValueError as err:
                raise ValueError(f"observables: {o.name!r}: {err}") from None
    return tuple(out)


def build_tdvp(section: DynamicsConfig, model, hamiltonian, sampler, lattice, chunk_size=None) -> TDVP:
    """The TDVP driver of a ``[dynamics]`` section on the built model, evolution Hamiltonian and sampler."""
    return TDVP(
        model,
        hamiltonian,
        sampler,
        t_end=section.t_end,
        output_times=section.output_times(),
        real_time=section.time == "real",
        integrator=section.integrator,
        dt=section.dt,
        rtol=section.rtol,
        atol=section.atol,
        dt_min=section.dt_min,
        dt_max=section.dt_max or section.t_end,
        error_norm=section.error_norm,
        solver=section.solver(),
        observables=build_observables(section, lattice),
        chunk_size=chunk_size,
    )
