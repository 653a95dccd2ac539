"""The TOML config schema (pydantic): unknown keys and impossible values are errors naming the key.

Every section maps 1:1 onto the Python API (see :func:`nqs.workflow.build`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from . import drivers as _drivers  # noqa: F401  (registers the built-in drivers)
from . import hamiltonians as _hamiltonians  # noqa: F401  (registers the built-in Hamiltonians)
from . import models as _models  # noqa: F401  (registers the built-in model kinds)
from .drivers.loop import RecoveryConfig
from .drivers.tdvp import DynamicsConfig
from .drivers.thermal import ThermalConfig
from .hamiltonians import HeisenbergConfig
from .models.kinds import RBMConfig, SymmetryConfig  # noqa: F401  (SymmetryConfig: [model.symmetry])
from .optimizers import SROptimizerSection
from .registry import DRIVERS, HAMILTONIANS, MODELS, OPTIMIZERS, SAMPLERS, ConfigError, Section
from .sampling.kinds import AutoSamplerConfig, ExchangeSamplerConfig, chains_cannot_divide, default_kind

_Section = Section


class LatticeConfig(_Section):
    kind: Literal["chain", "square", "triangular", "honeycomb", "kagome"] = "chain"
    size: list[int] = Field(default_factory=lambda: [16])
    pbc: bool | list[bool] = True

    @field_validator("size", mode="before")
    @classmethod
    def _size_list(cls, v):
        return [v] if isinstance(v, int) else v


def _registered_section(registry, value, default_kind: str):
    """A section validated by the config class its ``kind`` registered in ``registry``
    (:mod:`nqs.registry`); a key the kind does not take is named with the keys it does take."""
    if isinstance(value, Section):
        return value
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ValueError("must be a table with a 'kind'")
    kind = value.get("kind", default_kind)
    if kind not in registry:
        known = ", ".join(registry.kinds())
        raise ValueError(_encode([("kind", f"unknown {registry.family} kind {kind!r} (one of: {known})")]))
    cls = registry[kind].config
    try:
        return cls.model_validate({**value, "kind": kind})
    except ValidationError as err:
        parts, extra = [], {}
        for loc, msg, etype in _error_parts(err):
            if etype == "extra_forbidden":
                path, _, key = loc.rpartition(".")
                extra.setdefault(path, []).append(key)
            else:
                parts.append((loc, msg))
        for path, keys in extra.items():  # the keys a table does not take, named with those it takes
            takes = f"(it takes {_takes(cls, path.split('.') if path else ())})"
            if len(keys) == 1:
                parts.append(
                    (
                        ".".join(x for x in (path, keys[0]) if x),
                        f"'{keys[0]}' is not a parameter of kind '{kind}' {takes}",
                    )
                )
            else:
                names = ", ".join(f"'{k}'" for k in keys[:-1]) + f" and '{keys[-1]}'"
                parts.append((path, f"{names} are not parameters of kind '{kind}' {takes}"))
        raise ValueError(_encode(parts)) from None


#: Separators of the (key, message) parts a section's validator hands to :func:`_format_errors`.
_PART, _KEY = "\x1f", "\x1e"


def _encode(parts: list[tuple[str, str]]) -> str:
    return _PART.join(f"{loc}{_KEY}{msg}" for loc, msg in parts)


def _is_branch(part) -> bool:
    """A component of an error's location that names a branch of a union (``bool``, ``list[bool]``, a tag), not
    a key."""
    return isinstance(part, str) and (part in _BRANCH_TAGS or part in _TYPE_NAMES or "[" in part or "-" in part)


_TYPE_NAMES = ("bool", "int", "float", "str", "none", "dict", "list")


def _error_parts(err: ValidationError) -> list[tuple[str, str, str]]:
    """``(key, message, type)`` per key, the input quoted (the branches of a union joined by "or"); a section's
    encoded parts are spliced in with their keys under the section's."""
    out: dict[str, list] = {}
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not _is_branch(x))
        msg = e["msg"].removeprefix("Value error, ")
        if _KEY in msg:
            for part in msg.split(_PART):
                key, text = part.split(_KEY, 1)
                full = ".".join(x for x in (loc, key) if x)
                out.setdefault(full, [[], None, "value_error"])[0].append(text)
            continue
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        entry = out.setdefault(loc, [[], None, e["type"]])
        if msg not in entry[0]:
            entry[0].append(msg)
        inp = e.get("input")
        if e["type"] not in ("extra_forbidden", "missing", "value_error") and not isinstance(inp, dict):
            entry[1] = f" (got {inp!r})"
    joined = {
        loc: msgs[:1] + [m.removeprefix("Input should be ") for m in msgs[1:]] for loc, (msgs, _, _) in out.items()
    }
    return [(loc, " or ".join(joined[loc]) + (got or ""), etype) for loc, (_, got, etype) in out.items()]


def fermion_kinds() -> tuple[str, ...]:
    """The registered Hamiltonian kinds that act on electrons."""
    return tuple(e.kind for e in HAMILTONIANS if e.facts.get("fermions"))


def _takes(cls: type[BaseModel], path) -> str:
    """The keys of ``cls``'s table at ``path`` (a nested table: its own keys)."""

    def table(annotation):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        return next((t for t in map(table, get_args(annotation)) if t is not None), None)

    for name in path:
        cls = table(cls.model_fields[name].annotation) if name in cls.model_fields else None
        if cls is None:
            return "other keys"
    return ", ".join(k for k in cls.model_fields if k != "kind") or "no parameters"


#: Keys that left ``[model]``, and the section that takes them now.
_MOVED_MODEL_KEYS = {"deep_samples": "driver", "deep_decay": "driver", "deep_metric": "driver"}


def _model_section(value):
    """``[model]``: the config class its ``kind`` registered (:data:`nqs.registry.MODELS`, default "rbm")."""
    if isinstance(value, dict):
        kind = value.get("kind", "rbm")
        takes = MODELS[kind].config.model_fields if kind in MODELS else {}
        for key in value:
            if key in _MOVED_MODEL_KEYS and key not in takes:
                raise ValueError(
                    f"'{key}' has moved to [{_MOVED_MODEL_KEYS[key]}]: deep_samples, deep_decay and deep_metric "
                    "are settings of the DBM driver"
                )
    return _registered_section(MODELS, value, "rbm")


def _quoted(names) -> str:
    """``"a", "b" or "c"``."""
    names = [f'"{n}"' for n in names]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


#: Components of an error's location that name a branch of a section's union, not a key.
_BRANCH_TAGS = ("builtin", "registered")


def _sampler_section(value):
    """``[sampler]`` validated by its kind's config class (:data:`nqs.registry.SAMPLERS`); ``kind = "auto"`` is
    left where the Hamiltonian's S^z conservation is known only from the built operator (the build chooses)."""
    if isinstance(value, dict) and value.get("kind") == "auto":
        try:
            return AutoSamplerConfig.model_validate(value)
        except ValidationError as err:
            raise ValueError(_encode([(loc, msg) for loc, msg, _ in _error_parts(err)])) from None
    return _registered_section(SAMPLERS, value, "exchange")


def sampler_mismatch(sampler: str, hamiltonian: str, fermions: bool, conserves_sz: bool | None, total_sz) -> str | None:
    """Why the sampler of kind ``sampler`` cannot sample the Hamiltonian's Hilbert space, as ``"key: why"``
    (None: it can).  ``conserves_sz``: whether the Hamiltonian conserves S^z (None: not known)."""
    facts = SAMPLERS[sampler].facts if sampler in SAMPLERS else {}
    particles = facts.get("particles", "any")
    if fermions and particles == "spins":
        return f"sampler.kind: '{sampler}' moves are for spins; electrons use kind = \"hop\""
    if not fermions and particles == "electrons":
        return (
            f"sampler.kind: {sampler} moves are for electrons; the '{hamiltonian}' Hamiltonian acts on spins "
            '(use "exchange" or "local")'
        )
    if fermions:
        return None
    if total_sz is not None and conserves_sz is False:
        return (
            f"hamiltonian.total_sz: the '{hamiltonian}' Hamiltonian does not conserve Sz, so total_sz "
            "cannot be fixed; remove it"
        )
    if facts.get("fixed_sz") is True and conserves_sz is False:
        return (
            f"sampler.kind: {sampler} moves conserve Sz but the '{hamiltonian}' Hamiltonian does not; "
            'use kind = "local"'
        )
    if facts.get("fixed_sz") is False and total_sz is not None:
        return f'sampler.kind: {sampler} spin flips cannot keep total_sz fixed; use kind = "exchange"'
    return None


def _optimizer_section(value):
    return _registered_section(OPTIMIZERS, value, "sr")


class ParallelConfig(_Section):
    """Devices and processes. The chains are split over all devices when there are several.

    ``distributed = true`` joins several processes with jax.distributed: the coordinator, number
    of processes and this process's id come from these keys or, per process, from the environment
    (NQS_COORDINATOR, NQS_NUM_PROCESSES, NQS_PROCESS_ID) or a cluster jax detects (SLURM, MPI).
    """

    shard: bool = True
    # on a CPU without a device mesh: threads that sample parts of the chains at once (each part with its
    # local energies); unset: one per CPU core, as many as divide sampler.n_chains. Results do not depend on it.
    threads: int | None = Field(None, gt=0)
    distributed: bool = False
    coordinator: str | None = None
    num_processes: int | None = Field(None, gt=0)


class ImaginaryTimeConfig(_Section):
    """``nqs imaginary-time``: the exact DBM construction of e^{-tau H}|psi0> (ising or heisenberg)."""

    dtau: float = Field(0.1, gt=0)
    n_steps: int = Field(10, gt=0)
    method: Literal["auto", "exact", "mc"] = "auto"  # auto: exact contraction up to 12 sites
    n_chains: int = Field(256, gt=0)
    n_sweeps: int = Field(400, gt=0)
    n_discard: int = Field(100, ge=0)


class EvaluationConfig(_Section):
    """The final evaluation after the optimization (its sample count is ``sampler.n_samples_eval``).

    ``lanczos_step = true`` adds the energy of one Lanczos step, ψ₁ = ψ + β (H − E)ψ with the best β, from
    ⟨H⟩, ⟨H²⟩ and ⟨H³⟩ of ψ (as mVMC's Lanczos mode): a variational energy below that of ψ.  It needs a
    local energy at every configuration connected to each sample, so it costs about as many local
    energies per sample as H has connections; ``lanczos_samples`` (default ``sampler.n_samples_eval``)
    sets how many samples it uses.  Its chains sample |ψ|^``lanczos_power`` (reweighted to |ψ|²): the third
    moment lives in the upper tail of E_loc, near the nodes of ψ, which |ψ|² visits rarely (the
    benchmarks page compares |ψ|² and |ψ|¹ on the 4×4 Hubbard example).
    """

    lanczos_step: bool = False
    lanczos_samples: int | None = Field(None, gt=0)
    lanczos_power: float = Field(1.0, gt=0, le=2)


class OutputConfig(_Section):
    dir: str = "runs/default"
    checkpoint_every: int = Field(25, gt=0)


class DriverConfig(_Section):
    """``[driver]``: which computation runs: any registered driver kind (``nqs.registry.DRIVERS``) with the
    keys of its config class.  ``kind = "auto"`` (default) is the model kind's driver, chosen when the config is
    read: the joint-chain DBM driver ("dbm") for ``model.kind = "dbm"``, ground-state VMC ("vmc") otherwise;
    its keys are then those of that driver."""

    kind: Literal["auto"] = "auto"


def _driver_section(value):
    """``[driver]`` validated by the config class its ``kind`` registered (:data:`nqs.registry.DRIVERS`)."""
    if isinstance(value, Section):
        return value
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ValueError("must be a table with a 'kind'")
    kind = value.get("kind", "auto")
    if kind in DRIVERS:
        return _registered_section(DRIVERS, value, kind)
    if kind != "auto":
        raise ValueError(f'unknown driver kind {kind!r} (use "auto" or one of: {", ".join(DRIVERS.kinds())})')
    try:
        return DriverConfig.model_validate(value)
    except ValidationError as err:
        raise ValueError(_encode([(loc, msg) for loc, msg, _ in _error_parts(err)])) from None


class Config(_Section):
    seed: int = 1
    lattice: LatticeConfig = Field(default_factory=LatticeConfig)
    hamiltonian: SerializeAsAny[Section] = Field(default_factory=HeisenbergConfig)
    model: SerializeAsAny[Section] = Field(
        default_factory=RBMConfig,
        description="The wave function: a kind registered in `nqs.registry.MODELS`, each with exactly its own keys "
        "(a key of another kind is an error naming the keys the kind takes).",
    )
    sampler: SerializeAsAny[Section] = Field(default_factory=ExchangeSamplerConfig)
    optimizer: SerializeAsAny[Section] = Field(default_factory=SROptimizerSection)
    output: OutputConfig = Field(default_factory=OutputConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    imaginary_time: ImaginaryTimeConfig = Field(default_factory=ImaginaryTimeConfig)
    driver: SerializeAsAny[Section] = Field(default_factory=DriverConfig)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)
    dynamics: DynamicsConfig | None = Field(None, description="`nqs evolve`: the time evolution (TDVP)")
    thermal: ThermalConfig | None = Field(None, description="`nqs thermal`: finite temperature by purification")

    _driver = field_validator("driver", mode="before")(lambda cls, v: _driver_section(v))
    _hamiltonian = field_validator("hamiltonian", mode="before")(
        lambda cls, v: _registered_section(HAMILTONIANS, v, "heisenberg")
    )
    _model = field_validator("model", mode="before")(lambda cls, v: _model_section(v))
    _sampler = field_validator("sampler", mode="before")(lambda cls, v: _sampler_section(v))
    _optimizer = field_validator("optimizer", mode="before")(lambda cls, v: _optimizer_section(v))

    @model_validator(mode="before")
    @classmethod
    def _kinds_from_the_hamiltonian(cls, data):
        """A ``[sampler]`` or ``[model]`` without ``kind`` takes the kind that suits the Hamiltonian: the sampler
        of :func:`nqs.sampling.kinds.default_kind` ("auto" where only the built operator tells), the RBM for
        spins and the RBM × pair product for electrons."""
        if not isinstance(data, dict):
            return data
        ham = data.get("hamiltonian", {})
        kind = ham.get("kind", "heisenberg") if isinstance(ham, dict) else getattr(ham, "kind", None)
        if kind not in HAMILTONIANS:
            return data  # the [hamiltonian] error is the one to report
        facts = HAMILTONIANS[kind].facts
        fermions = bool(facts.get("fermions"))
        chosen = {
            "sampler": default_kind(fermions, facts.get("conserves_sz")) or "auto",
            "model": "rbm_pp" if fermions else "rbm",
        }
        out = dict(data)
        for section, default in chosen.items():
            table = data.get(section, {})
            if isinstance(table, dict) and "kind" not in table:
                out[section] = {**table, "kind": default}
        return out

    @model_validator(mode="after")
    def _sampler_fits_the_hamiltonian(self):
        """The sampler's moves stay in the Hamiltonian's Hilbert space (known from the registrations; where
        S^z conservation is known only from the built operator, the build checks it)."""
        hc = self.hamiltonian
        facts = HAMILTONIANS[hc.kind].facts
        problem = sampler_mismatch(
            self.sampler.kind,
            hc.kind,
            bool(facts.get("fermions")),
            facts.get("conserves_sz"),
            getattr(hc, "total_sz", None),
        )
        if problem:
            raise ValueError(problem)
        n_chains = getattr(self.sampler, "n_chains", None)
        if n_chains is not None:
            problem = chains_cannot_divide("lanczos_samples", self.evaluation.lanczos_samples, n_chains)
            if problem:
                raise ValueError(f"evaluation.{problem} (sampler.n_chains)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _auto_driver(cls, data):
        """``[driver] kind = "auto"`` (or no ``[driver]``) becomes the model kind's driver (its registration's
        ``driver``, else "vmc"), so that the section is checked with that driver's keys."""
        if not isinstance(data, dict):
            return data
        driver = data.get("driver")
        driver = {} if driver is None or isinstance(driver, DriverConfig) else driver
        if not isinstance(driver, dict) or driver.get("kind", "auto") != "auto":
            return data
        model = data.get("model")
        kind = model.get("kind", "rbm") if isinstance(model, dict) else getattr(model, "kind", "rbm")
        if kind not in MODELS:
            return data  # the [model] error names it
        return {**data, "driver": {**driver, "kind": MODELS[kind].facts.get("driver", "vmc")}}

    @model_validator(mode="after")
    def _model_fits_the_hamiltonian(self):
        """The model describes the Hamiltonian's particles and its settings apply to them (the model kind
        declares both with its registration: ``describes`` and ``refuses``)."""
        entry, kind = MODELS[self.model.kind], self.model.kind
        particles = "electrons" if HAMILTONIANS[self.hamiltonian.kind].facts.get("fermions") else "spins"
        describes = entry.facts.get("describes")
        if describes is not None and particles not in describes:
            takes = _quoted(e.kind for e in MODELS if particles in e.facts.get("describes", ()))
            if particles == "electrons":
                raise ValueError(f"model.kind: '{kind}' carries no fermion sign; electron Hamiltonians take {takes}")
            raise ValueError(
                f"model.kind: '{kind}' is for electron Hamiltonians (kind {_quoted(fermion_kinds())}); "
                f"spin Hamiltonians take {takes}"
            )
        refuses = entry.facts.get("refuses")
        problem = refuses(self) if refuses is not None else None
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _settings_the_driver_takes(self):
        """A setting the config's driver cannot honour is an error here, naming the key (the driver
        declares them with its registration: ``refuses``)."""
        refuses = DRIVERS[driver_kind(self)].facts.get("refuses")
        problem = refuses(self) if refuses is not None else None
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _quench_hamiltonian(self):
        """``[dynamics.hamiltonian]`` changes keys of ``[hamiltonian]``: the result must be a Hamiltonian of the
        same Hilbert space (checked here, with the keys named under ``dynamics.hamiltonian``)."""
        if self.dynamics is not None and self.dynamics.hamiltonian is not None:
            evolution_hamiltonian(self)
        return self

    def resolved(self) -> dict:
        """Every value, defaults included (None values are dropped when written to TOML)."""
        return self.model_dump(mode="json")


def evolution_hamiltonian(config: Config) -> Section:
    """The ``[hamiltonian]`` a time evolution runs with: ``[hamiltonian]`` with the keys of
    ``[dynamics.hamiltonian]`` changed (another ``kind`` replaces it); ValueError naming the key."""
    changes = (config.dynamics.hamiltonian if config.dynamics is not None else None) or {}
    base = config.hamiltonian
    if not changes:
        return base
    kind = changes.get("kind", base.kind)
    table = {**base.model_dump(exclude_unset=True), **changes} if kind == base.kind else dict(changes)
    try:
        section = _registered_section(HAMILTONIANS, table, kind)
    except ValueError as err:
        parts = [p.split(_KEY, 1) if _KEY in p else ("", p) for p in str(err).split(_PART)]
        raise ValueError(
            "; ".join(_named(".".join(x for x in ("dynamics.hamiltonian", loc) if x), msg) for loc, msg in parts)
        ) from None
    facts, old = HAMILTONIANS[kind].facts, HAMILTONIANS[base.kind].facts
    if bool(facts.get("fermions")) != bool(old.get("fermions")):
        raise ValueError("dynamics.hamiltonian: the evolution must act on the particles of [hamiltonian]")
    if getattr(section, "total_sz", None) != getattr(base, "total_sz", None):
        raise ValueError("dynamics.hamiltonian.total_sz: the evolution keeps the Hilbert space of [hamiltonian]")
    return section


def driver_kind(config: Config) -> str:
    """The driver a config runs: ``driver.kind``, or for "auto" the model kind's driver (``driver`` of its
    registration, e.g. "dbm" for ``model.kind = "dbm"``), else "vmc"."""
    kind = config.driver.kind
    if kind == "auto":
        return MODELS[config.model.kind].facts.get("driver", "vmc")
    return kind


def default_config() -> Config:
    """The built-in default problem: Heisenberg chain L = 16 (PBC), Sz = 0, SR.

    The model is a real RBM (α = 2) times the Marshall sign, stated explicitly here, printed with
    the run and written to the run's config.toml (``model.marshall_sign = true``).
    """
    return Config(
        lattice=LatticeConfig(kind="chain", size=[16], pbc=True),
        hamiltonian=HeisenbergConfig(J=1.0, total_sz=0),
        model=RBMConfig(alpha=2.0, param_dtype="real", marshall_sign=True),
        sampler=ExchangeSamplerConfig(n_chains=32, n_samples=1024, n_discard=8),
        optimizer=SROptimizerSection(learning_rate=0.05, learning_rate_final=0.005, diag_shift=0.01, n_steps=1000),
        output=OutputConfig(dir="runs/default"),
    )


def schema_model() -> type[Config]:
    """:class:`Config` with the registry-backed sections typed as the union of their registered kinds' config
    classes (discriminated on ``kind``): the class whose JSON schema documents every kind registered now
    (``docs/gen_config_reference.py``).  Validation uses :class:`Config` itself."""
    from typing import Union

    from pydantic import create_model

    def union(classes):
        classes = tuple(dict.fromkeys(classes))
        return Annotated[Union[classes], Field(discriminator="kind")] if len(classes) > 1 else classes[0]  # noqa: UP007

    return create_model(
        "Config",
        __base__=Config,
        hamiltonian=(union(e.config for e in HAMILTONIANS), Field(default_factory=HeisenbergConfig)),
        model=(union(e.config for e in MODELS), Field(default_factory=RBMConfig)),
        sampler=(
            union([*(e.config for e in SAMPLERS), AutoSamplerConfig]),
            Field(default_factory=ExchangeSamplerConfig),
        ),
        optimizer=(union(e.config for e in OPTIMIZERS), Field(default_factory=SROptimizerSection)),
        driver=(union([DriverConfig, *(e.config for e in DRIVERS if e.config)]), Field(default_factory=DriverConfig)),
    )


def _format_errors(err: ValidationError) -> str:
    """One line: ``key: what is wrong`` per error (an error of the whole config names its keys itself)."""
    return "; ".join(_named(loc, msg) for loc, msg, _ in _error_parts(err))


def _named(loc: str, msg: str) -> str:
    """``loc: msg``, or ``msg`` alone where it names its key itself (``model.symmetry: ...``)."""
    return msg if not loc or msg.startswith((f"{loc}:", f"{loc}.")) else f"{loc}: {msg}"


def parse_config(data: dict, source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_format_errors(err)}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config; every problem becomes a one-line :class:`ConfigError`."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    if p.is_dir():
        raise ConfigError(f"{p} is a folder, not a TOML config file")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None
    if not data:
        raise ConfigError(
            f"{p}: the config is empty; give at least [lattice] and [hamiltonian], or run `nqs run` without a "
            "config for the built-in default problem"
        )
    return parse_config(data, str(p))
