"""From a validated :class:`~nqs.config.Config` to objects: lattice, Hilbert space, Hamiltonian, model,
sampler, optimizer and driver — the same objects a script would make (:func:`build`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..config import Config, ConfigError, driver_kind, sampler_mismatch
from ..hamiltonians import is_fermionic, units_for
from ..hamiltonians.hubbard import hubbard as build_hubbard
from ..hilbert import SpinfulFermions, SpinHilbert
from ..models.slater import one_body_matrices
from ..optimizers import OptimizerConfig
from ..registry import DRIVERS, HAMILTONIANS, MODELS, OPTIMIZERS, SAMPLERS
from ..sampling.hop import lattice_bonds
from ..sampling.kinds import SamplerContext, default_kind
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
        try:  # the file's filling, or the config's where it agrees with what the file fixes
            n_up, n_down = fh.sector(n_up, n_down, ("hamiltonian.n_up", "hamiltonian.n_down"))
        except HamiltonianFileError as err:
            key = "hamiltonian.n_up" if hc.n_up is not None or hc.n_down is not None else "hamiltonian.path"
            raise ConfigError(f"{key}: {err}") from None
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
    if n_up == 0 and n_down == 0:
        raise ConfigError("hamiltonian.n_up, hamiltonian.n_down: no electrons (both 0); set at least one electron")
    try:
        hil = SpinfulFermions(n_sites, n_up, n_down)
    except ValueError as err:
        raise ConfigError(f"hamiltonian: impossible filling: {err}") from None
    return op.for_sector(n_up, n_down), hil, bonds, {"n_up": n_up, "n_down": n_down}


def build_spins(cfg: Config, lat):
    """Spin Hamiltonian, its Hilbert space (total Sz sector when fixed), the sampler kind and the values chosen."""
    hc, sampler = cfg.hamiltonian, cfg.sampler.kind
    chosen = {}
    try:
        entry = HAMILTONIANS[hc.kind]
        op = entry.build(lat, **hc.parameters())
    except ValueError as err:
        raise ConfigError(f"hamiltonian: {err}") from None
    total_sz = hc.total_sz
    conserving = entry.facts.get("conserves_sz")
    conserving = op.conserves_sz() if conserving is None else conserving
    if sampler == "auto":
        sampler = default_kind(False, conserving)
        chosen["sampler"] = {"kind": sampler}
    problem = sampler_mismatch(sampler, hc.kind, False, conserving, total_sz)
    if problem:
        raise ConfigError(problem)
    if SAMPLERS[sampler].facts.get("fixed_sz") and total_sz is None:
        total_sz = 0.0 if lat.n_sites % 2 == 0 else 0.5
        chosen["hamiltonian"] = {"total_sz": total_sz}
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


def model_context(cfg: Config, lat, hil, op, bonds) -> ModelContext:
    fermions = is_fermionic(cfg.hamiltonian.kind)
    invariant = boundary_label(cfg, lat) == "periodic" and (not fermions or cfg.hamiltonian.kind == "hubbard")
    if fermions:
        bonds = bonds if cfg.hamiltonian.kind != "hubbard" else lat.bonds(1)
    return ModelContext(lat, hil, op, cfg, bonds, invariant)


def build_model(cfg: Config, lat, hil, op, bonds):
    """``[model]``: the builder its kind registered (:data:`nqs.registry.MODELS`; the built-in kinds in
    :mod:`nqs.models.kinds` and :mod:`nqs.models.pair_kinds`)."""
    context = model_context(cfg, lat, hil, op, bonds)
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
    """``[hamiltonian]``: ``(operator in its sector, Hilbert space, hop bonds or None, resolved values by
    section)``."""
    if is_fermionic(cfg.hamiltonian.kind):
        op, hil, bonds, chosen = build_fermions(cfg, lat)
        return op, hil, bonds, {"hamiltonian": chosen}
    op, hil, chosen = build_spins(cfg, lat)
    return op, hil, None, chosen


def sampler_section(cfg: Config, resolved: dict):
    """``[sampler]`` with the kind the build chose for ``kind = "auto"``
    (:class:`~nqs.sampling.kinds.AutoSamplerConfig`)."""
    sc = cfg.sampler
    kind = resolved.get("sampler", {}).get("kind")
    if sc.kind != "auto" or kind is None:
        return sc
    return SAMPLERS[kind].config.model_validate({**sc.model_dump(exclude={"kind"}, exclude_unset=True), "kind": kind})


def build_sampler(cfg: Config, lat, hil, op, model, bonds, resolved: dict | None = None):
    """``[sampler]``: its kind's builder (:data:`nqs.registry.SAMPLERS`) on the built parts."""
    sc = sampler_section(cfg, resolved or {})
    context = SamplerContext(
        lat,
        hil,
        op,
        model,
        bonds,
        tuple(HAMILTONIANS[cfg.hamiltonian.kind].facts.get("exchange_shells", (1,))),
        lambda: orbits(model, op, hil),
    )
    try:
        return SAMPLERS[sc.kind].build(sc, context)
    except ValueError as err:  # a builder's message starts with the key it is about
        raise ConfigError(f"sampler.{err}") from None


def build_optimizer(cfg: Config) -> OptimizerConfig:
    """``[optimizer]``: the update rule's settings (:data:`nqs.registry.OPTIMIZERS`)."""
    return OPTIMIZERS[cfg.optimizer.kind].build(cfg.optimizer)


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
    op, hil, bonds, resolved = build_hamiltonian(cfg, lat)
    model = build_model(cfg, lat, hil, op, bonds)
    chosen_by_model = MODELS[cfg.model.kind].facts.get("chosen")
    if chosen_by_model is not None:
        resolved["model"] = chosen_by_model(model, cfg.model, model_context(cfg, lat, hil, op, bonds))
    sampler = build_sampler(cfg, lat, hil, op, model, bonds, resolved)
    parts = Parts(cfg, lat, hil, op, model, sampler, build_optimizer(cfg))
    return Problem(cfg, lat, hil, op, build_driver(cfg, parts), resolved)
