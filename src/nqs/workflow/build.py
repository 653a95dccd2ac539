"""From a validated :class:`~nqs.config.Config` to objects: lattice, Hilbert space, Hamiltonian, model,
sampler, optimizer and driver — the same objects a script would make (:func:`build`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..config import Config, ConfigError, driver_kind
from ..drivers import OptimizerConfig
from ..hamiltonians import is_fermionic, units_for
from ..hamiltonians.hubbard import hubbard as build_hubbard
from ..hilbert import SpinfulFermions, SpinHilbert
from ..models.slater import one_body_matrices
from ..registry import DRIVERS, HAMILTONIANS, MODELS
from ..sampling import ExactSampler, ExchangeRule, LocalRule, MetropolisSampler
from ..sampling.hop import HopExchangeRule, HopRule, SpinExchangeRule, lattice_bonds
from ..sr import SRConfig
from .lattice import boundary_label, build_lattice
from .models import orbits


@dataclass
class Problem:
    config: Config
    lattice: Any
    hilbert: Any  # SpinHilbert or SpinfulFermions
    hamiltonian: Any
    driver: Any  # the driver (nqs.drivers.Driver): VMC, or DBMVMC for model.kind = "dbm"
    #: values the config left open and the build chose, by section: ``{"hamiltonian": {"n_up": 2}, ...}``
    resolved: dict = field(default_factory=dict)

    def resolved_config(self) -> dict:
        """The config with every default and every value the build chose written out (for config.toml)."""
        out = self.config.resolved()
        for section, values in self.resolved.items():
            out[section] = {**out.get(section, {}), **values}
        return out

    @property
    def units(self) -> str:
        return units_for(self.config.hamiltonian.kind)

    @property
    def fermions(self) -> bool:
        return isinstance(self.hilbert, SpinfulFermions)

    @property
    def n_particles(self) -> int:
        """N of the V-score: spins, or electrons N↑ + N↓."""
        return self.hilbert.n_electrons if self.fermions else self.lattice.n_sites

    def energy_at_infinite_temperature(self) -> float:
        """E∞ = Tr H / dim over the sector (the V-score's reference)."""
        if self.fermions:
            return float(np.real(self.hamiltonian.trace_sector(self.hilbert)))
        return float(self.hamiltonian.trace())


def build_fermions(cfg: Config, lat):
    """Hubbard or file Hamiltonian, its (N↑, N↓) sector and the hop bonds."""
    hc = cfg.hamiltonian
    n_up, n_down = hc.n_up, hc.n_down
    if hc.kind == "hubbard":
        try:
            op = build_hubbard(lat, **hc.parameters())
        except ValueError as err:
            raise ConfigError(f"hamiltonian: {err}") from None
        shells = (1, 2) if hc.t2 else (1,)
        bonds = lattice_bonds(lat, shells)
        n_sites = lat.n_sites
    else:
        from ..hamiltonians.files import HamiltonianFileError, read_hamiltonian

        try:
            fh = read_hamiltonian(hc.path, hc.format, **(hc.options or {}))
        except HamiltonianFileError as err:
            raise ConfigError(f"hamiltonian.path: {err}") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"hamiltonian: {hc.path}: {err}") from None
        op, n_sites = fh.operator, fh.n_sites
        if lat.n_sites != n_sites:
            raise ConfigError(
                f"lattice: {lat.describe()} has {lat.n_sites} sites but {hc.path} describes {n_sites}; "
                f'set [lattice] to match (e.g. kind = "chain", size = [{n_sites}])'
            )
        n_up = fh.n_up if n_up is None else n_up
        n_down = fh.n_down if n_down is None else n_down
        h_up, h_dn = one_body_matrices(op, n_sites)
        hop = (np.abs(h_up) + np.abs(h_dn)) > 1e-12
        bonds = tuple((int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(hop | hop.T, 1)), strict=True))
        if not bonds:
            raise ConfigError(f"hamiltonian.path: {hc.path} has no hopping terms: electrons cannot move")
    if n_up is None and n_down is None:
        if n_sites % 2:
            raise ConfigError(f"hamiltonian: set n_up and n_down (no default half filling on {n_sites} sites)")
        n_up = n_down = n_sites // 2
    elif n_up is None or n_down is None:
        n_up = n_down = n_up if n_up is not None else n_down
    try:
        hil = SpinfulFermions(n_sites, n_up, n_down)
    except ValueError as err:
        raise ConfigError(f"hamiltonian: impossible filling: {err}") from None
    return op.for_sector(n_up, n_down), hil, bonds, {"n_up": n_up, "n_down": n_down}


def build_spins(cfg: Config, lat):
    """Spin Hamiltonian, its Hilbert space (total Sz sector when fixed) and the values chosen."""
    hc, sc = cfg.hamiltonian, cfg.sampler
    chosen = {}
    try:
        entry = HAMILTONIANS[hc.kind]
        op = entry.build(lat, **hc.parameters())
    except ValueError as err:
        raise ConfigError(f"hamiltonian: {err}") from None
    total_sz = hc.total_sz
    conserving = entry.facts.get("conserves_sz")
    conserving = op.conserves_sz() if conserving is None else conserving
    if total_sz is not None and not conserving:
        raise ConfigError(
            f"hamiltonian.total_sz: the '{hc.kind}' Hamiltonian does not conserve Sz, so total_sz "
            "cannot be fixed; remove it"
        )
    if sc.kind == "exchange":
        if not conserving:
            raise ConfigError(
                f"sampler.kind: exchange moves conserve Sz but the '{hc.kind}' Hamiltonian does not; "
                'use kind = "local"'
            )
        if total_sz is None:
            total_sz = 0.0 if lat.n_sites % 2 == 0 else 0.5
            chosen["total_sz"] = total_sz
    if sc.kind == "local" and total_sz is not None:
        raise ConfigError('sampler.kind: local spin flips cannot keep total_sz fixed; use kind = "exchange"')
    if sc.kind == "hop":
        raise ConfigError(
            f"sampler.kind: hop moves are for electrons; the '{hc.kind}' Hamiltonian acts on spins "
            '(use "exchange" or "local")'
        )
    try:
        hil = SpinHilbert(lat.n_sites, total_sz)
    except ValueError as err:
        raise ConfigError(f"hamiltonian.total_sz: {err}") from None
    return op.for_sector(hil), hil, chosen


class ModelContext(NamedTuple):
    """What a model kind's builder receives besides its section (:data:`nqs.registry.MODELS`)."""

    lattice: Any
    hilbert: Any
    hamiltonian: Any
    #: the whole validated config (e.g. its seed)
    config: Any = None
    #: electrons: the nearest-neighbour pairs (the lattice's for the Hubbard model, the hopping pairs of a file)
    bonds: Any = None
    #: whether the Hamiltonian commutes with the lattice's translations (what shared weights need)
    translation_invariant: bool = False


def build_model(cfg: Config, lat, hil, op, bonds):
    """``[model]``: the builder its kind registered (:data:`nqs.registry.MODELS`; the built-in kinds in
    :mod:`nqs.models.kinds` and :mod:`nqs.models.pair_kinds`)."""
    fermions = is_fermionic(cfg.hamiltonian.kind)
    invariant = boundary_label(cfg, lat) == "periodic" and (not fermions or cfg.hamiltonian.kind == "hubbard")
    if fermions:
        bonds = bonds if cfg.hamiltonian.kind != "hubbard" else lat.bonds(1)
    context = ModelContext(lat, hil, op, cfg, bonds, invariant)
    try:
        return MODELS[cfg.model.kind].build(cfg.model, context)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None


class Parts(NamedTuple):
    """What a driver's builder receives (:data:`nqs.registry.DRIVERS`): the config and the built pieces."""

    config: Config
    lattice: Any
    hilbert: Any
    hamiltonian: Any
    model: Any
    sampler: Any
    optimizer: OptimizerConfig


def build_hamiltonian(cfg: Config, lat):
    """``[hamiltonian]``: ``(operator in its sector, Hilbert space, hop bonds or None, resolved values)``."""
    if is_fermionic(cfg.hamiltonian.kind):
        built = build_fermions(cfg, lat)
        if cfg.sampler.kind in ("local", "exchange"):
            raise ConfigError(f"sampler.kind: '{cfg.sampler.kind}' moves are for spins; electrons use kind = \"hop\"")
        return built
    op, hil, chosen = build_spins(cfg, lat)
    return op, hil, None, chosen


def build_sampler(cfg: Config, lat, hil, op, model, bonds):
    """``[sampler]``: exact enumeration, or Metropolis chains with the move rule of ``sampler.kind``."""
    sc, hc = cfg.sampler, cfg.hamiltonian
    if sc.power != 2 and sc.kind == "exact":
        raise ConfigError(
            "sampler.power: only the Metropolis samplers of kind local, exchange and hop take a power "
            "other than 2 (exact enumeration weighs every state by |psi|^2)"
        )
    if sc.kind == "exact":
        if hil.n_states > 2**22:
            raise ConfigError(f"sampler.kind: exact enumeration of {hil.n_states} states is too large; use Monte Carlo")
        return ExactSampler(hil, orbits(model, op, hil))
    if sc.n_samples < sc.n_chains:
        raise ConfigError(f"sampler.n_samples ({sc.n_samples}) must be at least sampler.n_chains ({sc.n_chains})")
    if sc.kind == "hop":
        hop = HopRule(hil.n_sites, bonds)
        rule = (
            HopExchangeRule(hop, SpinExchangeRule(hil.n_sites, bonds), p_exchange=sc.p_exchange)
            if sc.p_exchange > 0
            else hop
        )
    elif sc.kind == "local":
        rule = LocalRule(lat.n_sites)
    else:
        shells = HAMILTONIANS[hc.kind].facts.get("exchange_shells", (1,))
        pairs = np.concatenate([lat.bonds(s) for s in shells if len(lat.bonds(s))])
        rule = ExchangeRule(tuple(map(tuple, pairs.tolist())))
    return MetropolisSampler(
        hil,
        rule,
        n_chains=sc.n_chains,
        n_samples=sc.n_samples,
        n_discard=sc.n_discard,
        sweep_size=sc.sweep_size,
        power=sc.power,
    )


def build_optimizer(cfg: Config) -> OptimizerConfig:
    """``[optimizer]``: the update rule's settings (SR shift schedule, learning-rate schedule)."""
    oc = cfg.optimizer
    if oc.diag_shift_min > oc.diag_shift and oc.diag_shift_decay < 1:
        raise ConfigError("optimizer.diag_shift_min must not exceed optimizer.diag_shift")
    return OptimizerConfig(
        kind=oc.kind,
        learning_rate=oc.learning_rate,
        sr=SRConfig(
            oc.diag_shift,
            oc.diag_shift_decay,
            oc.diag_shift_min,
            oc.solver,
            rescale=oc.sr_rescale,
            rescale_cutoff=oc.sr_rescale_cutoff,
        ),
        learning_rate_final=oc.learning_rate_final,
        n_steps=oc.n_steps,
    )


def build_driver(cfg: Config, parts: Parts):
    """``[driver]``: the registered driver's builder on the built parts (:data:`nqs.registry.DRIVERS`)."""
    entry = DRIVERS[driver_kind(cfg)]
    try:
        return entry.build(cfg.driver, parts)
    except ValueError as err:
        raise ConfigError(f"optimizer/sampler/parallel: {err}") from None


def build(cfg: Config) -> Problem:
    """Config → lattice, Hilbert space, Hamiltonian, model, sampler, optimizer, driver (one function per
    section).  Raises ConfigError.  The config is not changed: values the build chose are in
    :attr:`Problem.resolved`."""
    lat = build_lattice(cfg)
    op, hil, bonds, chosen = build_hamiltonian(cfg, lat)
    resolved = {"hamiltonian": chosen}
    model = build_model(cfg, lat, hil, op, bonds)
    chosen_by_model = MODELS[cfg.model.kind].facts.get("chosen")
    if chosen_by_model is not None:
        resolved["model"] = chosen_by_model(model)
    sampler = build_sampler(cfg, lat, hil, op, model, bonds)
    parts = Parts(cfg, lat, hil, op, model, sampler, build_optimizer(cfg))
    return Problem(cfg, lat, hil, op, build_driver(cfg, parts), resolved)
