"""The sampler kinds a config's ``[sampler]`` can name, each declared once with its config class and builder
(:data:`nqs.registry.SAMPLERS`).

* ``exchange`` — Metropolis chains of spin exchanges on the Hamiltonian's bonds (fixed total S^z);
* ``local`` — Metropolis chains of single spin flips (every S^z sector);
* ``hop`` — Metropolis chains of electron hops on the Hamiltonian's hopping bonds, plus up–down exchanges with
  probability ``p_exchange`` (fixed N↑ and N↓);
* ``exact`` — exact enumeration of the Hilbert space (weights |ψ|²; orbit representatives for a projected state).

Without ``kind`` the config takes the sampler that suits its Hamiltonian: ``hop`` for electrons, ``exchange``
for spins that conserve S^z, ``local`` otherwise (:func:`default_kind`).  Each registration states the facts
that the config checks against the Hamiltonian: ``particles`` ("spins" or "electrons") and ``fixed_sz``
(whether the moves keep total S^z fixed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from ..registry import SAMPLERS, Section
from .exact import ExactSampler
from .hop import HopExchangeRule, HopRule, SpinExchangeRule
from .metropolis import ExchangeRule, LocalRule, MetropolisSampler


class SamplerContext(NamedTuple):
    """What a sampler's builder receives besides its section: the built lattice, Hilbert space, Hamiltonian
    (in its sector) and model, the bonds electrons hop on (None for spins), the neighbour shells the
    Hamiltonian couples (for spin exchanges) and ``orbits()``: the orbit representatives of a projected
    model's group, or None (computed only when asked for)."""

    lattice: Any
    hilbert: Any
    hamiltonian: Any
    model: Any
    hop_bonds: Any
    exchange_shells: tuple[int, ...]
    orbits: Callable[[], Any]


class MetropolisSection(Section):
    """Keys of every Metropolis sampler: ``n_samples`` = n_chains × samples per chain after ``n_discard``
    discarded sweeps; ``sweep_size`` moves per sample (default: the number of sites); ``n_samples_eval`` samples
    of the final evaluation (default 8 × n_samples); the chains sample |ψ|^``power`` and reweight by
    |ψ|^(2 − power) (below 2 they visit where |ψ| is small, near the nodes of projected states, more often)."""

    n_chains: int = Field(64, gt=0)
    n_samples: int = Field(2048, gt=0)
    n_discard: int = Field(8, ge=0)
    sweep_size: int | None = Field(None, gt=0)
    n_samples_eval: int | None = Field(None, gt=0)
    power: float = Field(2.0, gt=0, le=2)

    @field_validator("n_samples", "n_samples_eval")
    @classmethod
    def _whole_chains(cls, n: int | None, info: ValidationInfo) -> int | None:
        """Every chain records the same number of samples: a count the chains cannot divide is refused with the
        nearest counts they can."""
        n_chains = info.data.get("n_chains")
        if n is None or n_chains is None:
            return n
        if n < n_chains:
            raise ValueError(f"{info.field_name} ({n}) must be at least n_chains ({n_chains})")
        problem = chains_cannot_divide(info.field_name, n, n_chains)
        if problem:
            raise ValueError(problem)
        return n


def chains_cannot_divide(key: str, n: int | None, n_chains: int) -> str | None:
    """``"key: why"`` when ``n`` samples do not split evenly over ``n_chains`` chains (None: they do)."""
    if n is None or n % n_chains == 0:
        return None
    lo, hi = (n // n_chains) * n_chains, -(-n // n_chains) * n_chains
    near = f"{hi}" if lo == 0 else f"{lo} or {hi}"
    return f"{key} ({n}) is not a multiple of n_chains ({n_chains}); the chains would draw {hi}: set {key} = {near}"


class ExchangeSamplerConfig(MetropolisSection):
    kind: Literal["exchange"] = "exchange"


class LocalSamplerConfig(MetropolisSection):
    kind: Literal["local"] = "local"


class HopSamplerConfig(MetropolisSection):
    kind: Literal["hop"] = "hop"
    p_exchange: float = Field(0.2, ge=0, le=1)  # probability of an up-down exchange move


class ExactSamplerConfig(Section):
    """Exact enumeration: every state (or orbit representative) with its weight |ψ|²; no keys."""

    kind: Literal["exact"] = "exact"


def metropolis_sampler(section: MetropolisSection, hilbert, rule) -> MetropolisSampler:
    """Markov chains of ``rule`` on ``hilbert`` with the chain settings of a ``[sampler]`` section."""
    return MetropolisSampler(
        hilbert,
        rule,
        n_chains=section.n_chains,
        n_samples=section.n_samples,
        n_discard=section.n_discard,
        sweep_size=section.sweep_size,
        power=section.power,
    )


@SAMPLERS.register("exchange", config=ExchangeSamplerConfig, particles="spins", fixed_sz=True)
def build_exchange(section: ExchangeSamplerConfig, context: SamplerContext) -> MetropolisSampler:
    lat = context.lattice
    pairs = np.concatenate([lat.bonds(s) for s in context.exchange_shells if len(lat.bonds(s))])
    return metropolis_sampler(section, context.hilbert, ExchangeRule(tuple(map(tuple, pairs.tolist()))))


@SAMPLERS.register("local", config=LocalSamplerConfig, particles="spins", fixed_sz=False)
def build_local(section: LocalSamplerConfig, context: SamplerContext) -> MetropolisSampler:
    return metropolis_sampler(section, context.hilbert, LocalRule(context.lattice.n_sites))


@SAMPLERS.register("hop", config=HopSamplerConfig, particles="electrons", fixed_sz=True)
def build_hop(section: HopSamplerConfig, context: SamplerContext) -> MetropolisSampler:
    n_sites, bonds = context.hilbert.n_sites, context.hop_bonds
    hop = HopRule(n_sites, bonds)
    if section.p_exchange > 0:
        hop = HopExchangeRule(hop, SpinExchangeRule(n_sites, bonds), p_exchange=section.p_exchange)
    return metropolis_sampler(section, context.hilbert, hop)


#: Largest Hilbert space exact enumeration takes.
MAX_EXACT_STATES = 2**22


@SAMPLERS.register("exact", config=ExactSamplerConfig, particles="any", fixed_sz=None)
def build_exact(section: ExactSamplerConfig, context: SamplerContext) -> ExactSampler:
    n = context.hilbert.n_states
    if n > MAX_EXACT_STATES:
        raise ValueError(f"kind: exact enumeration of {n} states is too large; use Monte Carlo")
    return ExactSampler(context.hilbert, context.orbits())


def default_kind(fermions: bool, conserves_sz: bool | None) -> str | None:
    """The sampler of a config without ``[sampler] kind``: ``hop`` for electrons, ``exchange`` for spins that
    conserve S^z, ``local`` for spins that do not; None where S^z conservation is known only from the built
    operator (the build decides)."""
    if fermions:
        return "hop"
    if conserves_sz is None:
        return None
    return "exchange" if conserves_sz else "local"


class AutoSamplerConfig(MetropolisSection):
    """``[sampler]`` without ``kind`` for a Hamiltonian whose S^z conservation only the built operator tells
    (the Pauli sum): the build takes ``exchange`` if it conserves S^z and ``local`` otherwise."""

    kind: Literal["auto"] = "auto"
