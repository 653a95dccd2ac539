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
from .hamiltonians import HeisenbergConfig
from .models.kinds import RBMConfig, SymmetryConfig  # noqa: F401  (SymmetryConfig: [model.symmetry])
from .registry import DRIVERS, HAMILTONIANS, MODELS, ConfigError, Section

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
        raise ValueError(f"unknown {registry.family} kind {kind!r} (one of: {', '.join(registry.kinds())})")
    cls = registry[kind].config
    try:
        return cls.model_validate({**value, "kind": kind})
    except ValidationError as err:
        parts, extra = [], {}
        for e in err.errors():  # each named from the top of the config: "model.alpha: ..."
            if e["type"] == "extra_forbidden":
                extra.setdefault(tuple(e["loc"][:-1]), []).append(str(e["loc"][-1]))
            else:
                parts.append(_error_line(e, registry.family))
        for path, keys in extra.items():  # the keys a table does not take, named with those it takes
            table = ".".join(str(x) for x in (registry.family, *path))
            takes = f"(it takes {_takes(cls, path)})"
            if len(keys) == 1:
                parts.append(f"{table}.{keys[0]}: '{keys[0]}' is not a parameter of kind '{kind}' {takes}")
            else:
                names = ", ".join(f"'{k}'" for k in keys[:-1]) + f" and '{keys[-1]}'"
                parts.append(f"{table}: {names} are not parameters of kind '{kind}' {takes}")
        raise ValueError("; ".join(parts)) from None


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


def fermion_kinds() -> tuple[str, ...]:
    """The registered Hamiltonian kinds that act on electrons."""
    return tuple(e.kind for e in HAMILTONIANS if e.facts.get("fermions"))


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


class SamplerConfig(_Section):
    kind: Literal["local", "exchange", "hop", "exact"] = "exchange"  # hop: electrons (+ spin exchanges)
    p_exchange: float = Field(0.2, ge=0, le=1)  # hop: probability of an up-down exchange move
    n_chains: int = Field(16, gt=0)
    n_samples: int = Field(1024, gt=0)
    n_discard: int = Field(16, ge=0)
    sweep_size: int | None = Field(None, gt=0)
    n_samples_eval: int | None = Field(None, gt=0)
    # the chains sample |psi|^power and reweight by |psi|^(2 - power): below 2 they visit where |psi| is small
    # (near the nodes of projected states, where E_loc has heavy tails) more often
    power: float = Field(2.0, gt=0, le=2)


class OptimizerConfig(_Section):
    kind: Literal["sr", "minsr", "adam", "sgd"] = "sr"

    @model_validator(mode="after")
    def _check_average(self):
        if self.average_last > self.n_steps:
            raise ValueError(f"average_last ({self.average_last}) cannot exceed n_steps ({self.n_steps})")
        return self

    learning_rate: float = Field(0.02, gt=0)
    learning_rate_final: float | None = Field(None, gt=0)  # cosine decay to this value over n_steps
    diag_shift: float = Field(0.01, ge=0)
    diag_shift_decay: float = Field(1.0, gt=0, le=1)
    diag_shift_min: float = Field(0.0, ge=0)
    solver: Literal["auto", "dense", "minsr", "cg"] = "auto"
    sr_rescale: bool = False  # scale-invariant SR: shift relative to diag(S) (as mVMC)
    # with sr_rescale: parameters with S_kk below this fraction of the largest are held for the step
    sr_rescale_cutoff: float = Field(1e-4, ge=0.0, lt=1.0)
    n_steps: int = Field(300, ge=0)
    # the final parameters are the mean over the last this many steps (as mVMC's NSROptItrSmp): the
    # step-to-step noise of the SR updates averages out; 0 keeps the last step's parameters
    average_last: int = Field(0, ge=0)
    chunk_size: int | None = Field(None, gt=0)
    memory_limit_mb: float | None = Field(4096, gt=0)  # chunk size chosen to fit (per device); unset: no limit
    precision: Literal["float64", "float32"] = "float64"  # float32: model/sampling/O; the SR solve stays float64


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
        raise ValueError(_format_errors(err)) from None


class Config(_Section):
    seed: int = 1
    lattice: LatticeConfig = Field(default_factory=LatticeConfig)
    hamiltonian: SerializeAsAny[Section] = Field(default_factory=HeisenbergConfig)
    model: SerializeAsAny[Section] = Field(
        default_factory=RBMConfig,
        description="The wave function: a kind registered in `nqs.registry.MODELS`, each with exactly its own keys "
        "(a key of another kind is an error naming the keys the kind takes).",
    )
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    imaginary_time: ImaginaryTimeConfig = Field(default_factory=ImaginaryTimeConfig)
    driver: SerializeAsAny[Section] = Field(default_factory=DriverConfig)

    _driver = field_validator("driver", mode="before")(lambda cls, v: _driver_section(v))
    _hamiltonian = field_validator("hamiltonian", mode="before")(
        lambda cls, v: _registered_section(HAMILTONIANS, v, "heisenberg")
    )
    _model = field_validator("model", mode="before")(lambda cls, v: _model_section(v))

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

    def resolved(self) -> dict:
        """Every value, defaults included (None values are dropped when written to TOML)."""
        return self.model_dump(mode="json")


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
        sampler=SamplerConfig(kind="exchange", n_chains=32, n_samples=1024, n_discard=8),
        optimizer=OptimizerConfig(
            kind="sr", learning_rate=0.05, learning_rate_final=0.005, diag_shift=0.01, n_steps=1000
        ),
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
        driver=(union([DriverConfig, *(e.config for e in DRIVERS if e.config)]), Field(default_factory=DriverConfig)),
    )


def _error_line(e: dict, section: str = "") -> str:
    """``key: what is wrong`` for one pydantic error, the key named from the top of the config (``section``:
    where the error's location starts); a message that names its key itself keeps its own name."""
    loc = ".".join(str(x) for x in (section, *e["loc"]) if x != "")
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    inp = e.get("input")
    if e["type"] not in ("extra_forbidden", "missing") and not isinstance(inp, dict):
        msg += f" (got {inp!r})"
    named = not loc or msg.startswith((f"{loc}:", f"{loc}."))  # a section's message, its keys named already
    return msg if named else f"{loc}: {msg}"


def _format_errors(err: ValidationError) -> str:
    """One line: ``key: what is wrong`` per error (an error of the whole config names its keys itself)."""
    return "; ".join(_error_line(e) for e in err.errors())


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
    return parse_config(data, str(p))
