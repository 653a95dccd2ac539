"""The optimizer kinds a config's ``[optimizer]`` can name, each declared once with its config class and builder
(:data:`nqs.registry.OPTIMIZERS`), and :class:`OptimizerConfig`, the settings a driver's update uses.

* ``sr`` — stochastic reconfiguration (natural gradient, :mod:`nqs.sr`) with a diagonal shift; its ``solver``
  is dense, MinSR or CG ("auto": the cheaper of dense and MinSR);
* ``minsr`` — the same update always solved in sample space (MinSR), for many more parameters than samples;
* ``adam``, ``sgd`` — first-order updates (optax) of the plain energy gradient.

Every kind takes the keys of the run (:class:`OptimizerSection`): the learning rate (a cosine decay from
``learning_rate`` to ``learning_rate_final``, by default a tenth of it; equal values hold it constant),
``n_steps``, the averaging window, chunking, memory limit and precision.  The SR kinds add the diagonal shift
and its schedule (by default decaying by 0.995 per step to 1e-4), and the scale-invariant option.  The defaults
are the settings of the tuned Heisenberg examples (benchmarks page, "Defaults").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from pydantic import Field, model_validator

from . import sr
from .registry import OPTIMIZERS, Section


@dataclass(frozen=True)
class OptimizerConfig:
    """``kind`` is "sr", "minsr", "adam" or "sgd"; SR settings in ``sr``."""

    kind: str = "sr"
    learning_rate: float = 0.02
    sr: sr.SRConfig = sr.SRConfig()
    learning_rate_final: float | None = None
    n_steps: int = 0

    def schedule(self, scale: Any = None) -> optax.Schedule:
        """Constant η, or a cosine decay from ``learning_rate`` to ``learning_rate_final`` over n_steps; with
        ``scale`` (a number or a traced scalar) both times ``scale`` (:meth:`scaled`).  Always a schedule, so the
        optimizer state (which then counts the steps) has one structure whatever the settings: a run resumes
        with a changed learning rate or schedule."""
        lr = self.learning_rate if scale is None else self.learning_rate * scale
        if self.learning_rate_final is None or self.n_steps <= 0:
            return optax.constant_schedule(lr)
        return optax.cosine_decay_schedule(lr, self.n_steps, alpha=self.learning_rate_final / self.learning_rate)

    def transform(self, scale: Any = None) -> optax.GradientTransformation:
        """The optax transform (its learning rate times ``scale`` when given: :meth:`scaled`)."""
        if self.kind == "adam":
            return optax.adam(self.schedule(scale))
        return optax.sgd(self.schedule(scale))

    def shift(self, step: Any, scale: Any = None) -> jax.Array:
        """The SR diagonal shift at ``step``: ``sr.shift(step)``, or that of :meth:`scaled` (``scale`` may be
        traced: the softened steps of the run loop share one compiled step)."""
        if scale is None or not self.uses_sr:
            return self.sr.shift(step)
        oc = self.sr
        shift0 = oc.diag_shift if oc.diag_shift > 0 else jnp.where(scale < 1, SOFTENED_ZERO_SHIFT, 0.0)
        return jnp.maximum(oc.diag_shift_min, shift0 * oc.diag_shift_decay**step)

    @property
    def uses_sr(self) -> bool:
        return self.kind in ("sr", "minsr")

    def scaled(self, scale: float) -> OptimizerConfig:
        """The settings with steps made smaller by ``scale`` (0 < scale ≤ 1; the run loop's recoveries, each
        ×½): the learning rate (and ``learning_rate_final``) times ``scale``; an SR diagonal shift of zero becomes
        :data:`SOFTENED_ZERO_SHIFT` (a singular metric would stay singular), any other shift stays (a shift
        that grew with each recovery turned SR into a slow plain gradient after a dozen of them)."""
        if scale == 1:
            return self
        oc = self.sr
        if self.uses_sr:
            shift = oc.diag_shift if oc.diag_shift > 0 else (SOFTENED_ZERO_SHIFT if scale < 1 else 0.0)
            oc = replace(oc, diag_shift=shift)
        final = None if self.learning_rate_final is None else self.learning_rate_final * scale
        return replace(self, learning_rate=self.learning_rate * scale, learning_rate_final=final, sr=oc)

    def step_settings(self) -> dict[str, float]:
        """The settings :meth:`scaled` changes, by their config names."""
        out = {"learning_rate": self.learning_rate}
        if self.learning_rate_final is not None:
            out["learning_rate_final"] = self.learning_rate_final
        if self.uses_sr:
            out["diag_shift"] = self.sr.diag_shift
            if self.sr.diag_shift_min:
                out["diag_shift_min"] = self.sr.diag_shift_min
        return out


#: The SR diagonal shift that a zero shift becomes at the first recovery (:meth:`OptimizerConfig.scaled`).
SOFTENED_ZERO_SHIFT = 1e-2


#: Without ``learning_rate_final`` the learning rate decays (cosine) by this factor over the run.
DEFAULT_DECAY = 10.0


class OptimizerSection(Section):
    """Keys every optimizer kind takes.

    ``average_last``: the final parameters are the mean over the last this many steps (as mVMC's
    NSROptItrSmp), so the step-to-step noise of the updates averages out; 0 keeps the last step's parameters.
    ``memory_limit_mb``: the chunk size of the per-sample work is chosen to fit (per device); unset: no limit.
    ``precision = "float32"``: model, sampling and log-derivatives in single precision (the SR solve stays
    float64).
    """

    learning_rate: float = Field(0.05, gt=0)
    # cosine decay to this value over n_steps; unset: learning_rate / 10 (equal to learning_rate: constant)
    learning_rate_final: float | None = Field(None, gt=0)
    n_steps: int = Field(800, ge=0)
    average_last: int = Field(0, ge=0)
    chunk_size: int | None = Field(None, gt=0)
    memory_limit_mb: float | None = Field(4096, gt=0)
    precision: Literal["float64", "float32"] = "float64"

    @model_validator(mode="after")
    def _check_average(self):
        if self.average_last > self.n_steps:
            raise ValueError(f"average_last ({self.average_last}) cannot exceed n_steps ({self.n_steps})")
        return self

    def final_learning_rate(self) -> float:
        """The learning rate at the last step: ``learning_rate_final``, by default a tenth of ``learning_rate``."""
        if self.learning_rate_final is None:
            return self.learning_rate / DEFAULT_DECAY
        return self.learning_rate_final

    def settings(self, shift: sr.SRConfig | None = None) -> OptimizerConfig:
        kind = getattr(self, "kind", "sr")
        final = self.final_learning_rate()
        return OptimizerConfig(
            kind=kind,
            learning_rate=self.learning_rate,
            sr=shift if shift is not None else sr.SRConfig(),
            learning_rate_final=None if final == self.learning_rate else final,
            n_steps=self.n_steps,
        )


class ShiftedSection(OptimizerSection):
    """The SR kinds' keys: the diagonal shift λ_t = max(diag_shift_min, diag_shift · diag_shift_decay^t), and
    ``sr_rescale`` (scale-invariant SR: the shift relative to diag(S), as mVMC) with its cutoff (parameters with
    S_kk below this fraction of the largest are held for the step)."""

    diag_shift: float = Field(0.01, ge=0)
    diag_shift_decay: float = Field(0.995, gt=0, le=1)
    diag_shift_min: float = Field(1e-4, ge=0)
    sr_rescale: bool = False
    sr_rescale_cutoff: float = Field(1e-4, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_shift(self):
        if self.diag_shift_min > self.diag_shift and self.diag_shift_decay < 1:
            if "diag_shift_min" not in self.model_fields_set:  # a small diag_shift with the default floor
                object.__setattr__(self, "diag_shift_min", self.diag_shift)
            else:
                raise ValueError("diag_shift_min must not exceed diag_shift")
        return self

    def shift_settings(self, solver: str) -> sr.SRConfig:
        return sr.SRConfig(
            self.diag_shift,
            self.diag_shift_decay,
            self.diag_shift_min,
            solver,
            rescale=self.sr_rescale,
            rescale_cutoff=self.sr_rescale_cutoff,
        )


class SROptimizerSection(ShiftedSection):
    kind: Literal["sr"] = "sr"
    solver: Literal["auto", "dense", "minsr", "cg"] = "auto"


class MinSROptimizerSection(ShiftedSection):
    kind: Literal["minsr"] = "minsr"


class AdamOptimizerSection(OptimizerSection):
    kind: Literal["adam"] = "adam"


class SGDOptimizerSection(OptimizerSection):
    kind: Literal["sgd"] = "sgd"


@OPTIMIZERS.register("sr", config=SROptimizerSection)
def build_sr(section: SROptimizerSection) -> OptimizerConfig:
    return section.settings(section.shift_settings(section.solver))


@OPTIMIZERS.register("minsr", config=MinSROptimizerSection)
def build_minsr(section: MinSROptimizerSection) -> OptimizerConfig:
    return section.settings(section.shift_settings("minsr"))


@OPTIMIZERS.register("adam", config=AdamOptimizerSection)
def build_adam(section: AdamOptimizerSection) -> OptimizerConfig:
    return section.settings()


@OPTIMIZERS.register("sgd", config=SGDOptimizerSection)
def build_sgd(section: SGDOptimizerSection) -> OptimizerConfig:
    return section.settings()
