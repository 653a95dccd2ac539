"""``[thermal]``: finite temperature by purification and imaginary-time TDVP (``nqs thermal``,
:mod:`nqs.workflow.thermal`).

The thermal state at inverse temperature β is the system half of the purification
|ψ(β/2)⟩ = (e^{−βH/2} ⊗ 1)|Φ⟩ on 2N spins (system 0..N−1 in σᶻ, ancillas N..2N−1 in σˣ, see
:mod:`nqs.conventions`) with the Bell pairs |Φ⟩ = Π_i (|↑_i ↑_{N+i}⟩ + |↓_i ↓_{N+i}⟩)/√2, whose amplitudes
are ½·(−1)^{[s=↓][x=−]} per pair.  A complex RBM on the 2N spins starts exactly at |Φ⟩
(:func:`nqs.models.product.bell_pairs_params`) and imaginary-time TDVP under H ⊗ 1 carries it to τ = β/2 for
every β of the grid, where ⟨H⟩_β = ⟨ψ|H ⊗ 1|ψ⟩/⟨ψ|ψ⟩ and C = β² Var_{|ψ|²}(E_loc).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..conventions import ANCILLA_BASES
from .tdvp import TDVPSettings

#: ``[thermal] sampler``: exact enumeration (all 4^N states, one matrix of log-derivatives), exact sums in
#: chunks (:class:`~nqs.drivers.tdvp_exact.ChunkedExactTDVP`), or Metropolis chains with the chain settings
#: of ``[sampler]`` (single flips on the 2N sites; with ``ancilla = "z"`` also the pair moves of
#: :class:`~nqs.sampling.pairs.PairRule`).
THERMAL_SAMPLERS = ("auto", "exact", "exact_chunked", "metropolis")
#: ``sampler = "auto"``: exact sums up to this many doubled-space states (2N = 12 spins), Metropolis above.
AUTO_EXACT_STATES = 1 << 12


def _grid(v: list[float] | None, name: str) -> list[float] | None:
    if v is None:
        return None
    if len(v) == 0:
        raise ValueError(f"{name} is empty: give at least one value")
    bad = [x for x in v if not (math.isfinite(x) and x > 0)]
    if bad:
        raise ValueError(f"{name} must be finite and > 0, got {bad[0]!r}")
    if len(set(v)) != len(v):
        raise ValueError(f"{name} has a value twice")
    return v


class ThermalConfig(TDVPSettings):
    """``[thermal]``: the temperature grid of ``nqs thermal`` (``temperatures`` T or ``betas`` β = 1/T, one of
    them) and the imaginary-time TDVP that reaches τ = β/2 for each (keys as in ``[dynamics]``)."""

    temperatures: list[float] | None = Field(None, description="temperatures T > 0 (energy units, k_B = 1)")
    betas: list[float] | None = Field(None, description="inverse temperatures beta > 0 (instead of temperatures)")
    rcond_smooth: float = Field(1e-6, ge=0, lt=1, description="pinv/snr: smooth cut-off, relative to the largest")
    rescale: bool = Field(False, description="solve with S rescaled to unit diagonal")
    noise: float = Field(1e-2, ge=0, description="Gaussian noise on the start state's free RBM parameters")
    sampler: Literal[THERMAL_SAMPLERS] = Field(  # type: ignore[valid-type]
        "auto", description="exact, exact_chunked, metropolis (chains of [sampler]) or auto (exact up to 6 sites)"
    )
    ancilla: Literal[ANCILLA_BASES] = Field(  # type: ignore[valid-type]
        "x", description="the ancillas' basis: x (no zeros at beta = 0) or z (equal pairs only; pair-flip chains)"
    )
    chunk_states: int = Field(1 << 14, gt=0, description="exact_chunked: basis states per chunk (a power of 2)")
    exact: bool | None = Field(None, description="exact thermal averages from the spectrum (default: N <= 14)")

    _temperatures = field_validator("temperatures")(lambda cls, v: _grid(v, "temperatures"))
    _betas = field_validator("betas")(lambda cls, v: _grid(v, "betas"))

    @field_validator("chunk_states")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"chunk_states must be a power of 2, got {v}")
        return v

    @model_validator(mode="after")
    def _one_grid(self):
        if (self.temperatures is None) == (self.betas is None):
            raise ValueError("give the grid as temperatures = [...] or as betas = [...] (exactly one of them)")
        return self

    def grid(self) -> tuple[list[float], list[float]]:
        """``(temperatures, betas)`` in the order given."""
        if self.betas is not None:
            return [1.0 / b for b in self.betas], list(self.betas)
        return list(self.temperatures), [1.0 / t for t in self.temperatures]
