"""One registration per kind: each Hamiltonian, model, sampler, optimizer and driver kind that a config can
name is declared once, beside its builder, in one of the registries below.  The config schema, the build
step, the units table and the CLI read them from here.

An entry holds the kind's name, its config class (a pydantic model of the keys the kind takes, with
``kind: Literal["name"]``), its builder, and, for Hamiltonians, its units::

    from nqs.registry import DRIVERS, Section

    class MyDriverConfig(Section):
        kind: Literal["my_driver"] = "my_driver"
        learning_rate: float = 0.1

    @DRIVERS.register("my_driver", config=MyDriverConfig)
    def build_my_driver(section: MyDriverConfig, parts) -> Driver:
        ...

What a builder receives depends on the registry (see each registry's ``builds``); a builder's problem with
the user's settings is a :class:`ConfigError` naming the key.  This module is tier 0: it imports nothing of nqs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every config class: unknown keys are errors, assignments are validated, and values are taken
    strictly: a boolean or a string is not a number, a number is not a boolean, a float is not an integer, and
    NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


class ConfigError(ValueError):
    """A user-facing configuration problem (one line, names the key); ``nqs.config.ConfigError``."""


@dataclass(frozen=True)
class Entry:
    """One registered kind."""

    kind: str
    config: type[Section] | None
    build: Callable[..., Any] | None
    units: str | None = None
    #: further facts about the kind that the build step reads (e.g. ``{"conserves_sz": True}``)
    facts: dict = field(default_factory=dict)


class Registry:
    """Kinds of one family by name, in registration order."""

    def __init__(self, family: str, builds: str):
        self.family = family
        self.builds = builds
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        kind: str,
        *,
        config: type[Section] | None = None,
        units: str | None = None,
        replace: bool = False,
        **facts: Any,
    ) -> Callable:
        """Decorator: ``@REGISTRY.register("name", config=NameConfig)`` over the kind's builder."""

        def decorate(build: Callable) -> Callable:
            if kind in self._entries and not replace:
                raise ValueError(f"{self.family} kind {kind!r} is registered already")
            self._entries[kind] = Entry(kind, config, build, units, dict(facts))
            return build

        return decorate

    def unregister(self, kind: str) -> None:
        self._entries.pop(kind, None)

    def __getitem__(self, kind: str) -> Entry:
        try:
            return self._entries[kind]
        except KeyError:
            raise KeyError(f"unknown {self.family} kind {kind!r} (known: {', '.join(self._entries)})") from None

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def kinds(self) -> tuple[str, ...]:
        return tuple(self._entries)


#: Hamiltonians: ``build(lattice, **parameters) -> operator``.
HAMILTONIANS = Registry("hamiltonian", "the operator on the lattice")
#: Models: ``build(section, context) -> Model`` with ``context`` the built lattice, Hilbert space and Hamiltonian
#: (``nqs.workflow.build.ModelContext``).  Facts the config and the build read: ``describes`` (the particles
#: the model can describe: ``("spins",)``, ``("electrons",)`` or both; absent: not checked), ``refuses``
#: (``fn(config) -> "key: why" | None``, checked at validation), ``driver`` (the driver that ``[driver] kind =
#: "auto"`` runs, default "vmc") and ``chosen`` (``fn(model) -> dict``, the values the build chose).
MODELS = Registry("model", "the wave function from its section and the built lattice, Hilbert space, Hamiltonian")
#: Drivers: ``build(section, parts) -> Driver`` with ``parts`` the built model, Hamiltonian, sampler, optimizer.
#: Facts: ``refuses`` (``fn(config) -> "key: why" | None``, checked at validation) and ``notes``
#: (``fn(config) -> list of lines`` printed in the run header: settings the driver leaves unused).
DRIVERS = Registry("driver", "the driver from the built parts")
#: Samplers: ``build(section, context) -> sampler`` with ``context`` the built lattice, Hilbert space, Hamiltonian
#: and model (``nqs.sampling.kinds.SamplerContext``).  Facts: ``particles`` ("spins", "electrons" or "any") and
#: ``fixed_sz`` (whether the moves keep total S^z fixed; None: not a Markov chain).
SAMPLERS = Registry("sampler", "the sampler from its section and the built lattice, Hilbert space, Hamiltonian, model")
#: Optimizers: ``build(section) -> nqs.optimizers.OptimizerConfig`` (the settings of the driver's update).
OPTIMIZERS = Registry("optimizer", "the update's settings from the section")
