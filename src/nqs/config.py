"""The TOML config schema (pydantic): unknown keys and impossible values are errors naming the key.

Every section maps 1:1 onto the Python API (see :func:`nqs.workflow.build`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    SerializeAsAny,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from . import drivers as _drivers  # noqa: F401  (registers the built-in drivers)
from . import hamiltonians as _hamiltonians  # noqa: F401  (registers the built-in Hamiltonians)
from .drivers.loop import RecoveryConfig
from .hamiltonians import HeisenbergConfig
from .registry import DRIVERS, HAMILTONIANS, MODELS, Section


class ConfigError(ValueError):
    """A user-facing configuration problem (one line, names the key)."""


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
        takes = ", ".join(k for k in cls.model_fields if k != "kind")
        parts = []
        for e in err.errors():
            loc = ".".join(str(x) for x in e["loc"])
            if e["type"] == "extra_forbidden":
                parts.append(f"'{loc}' is not a parameter of kind '{kind}' (it takes {takes or 'no parameters'})")
            else:
                msg = e["msg"].removeprefix("Value error, ")
                parts.append(f"{loc}: {msg}" if loc else msg)
        raise ValueError("; ".join(parts)) from None


def fermion_kinds() -> tuple[str, ...]:
    """The registered Hamiltonian kinds that act on electrons."""
    return tuple(e.kind for e in HAMILTONIANS if e.facts.get("fermions"))


class SymmetryConfig(_Section):
    """Projection onto a symmetry sector: momentum ``k`` (numbers in radians or strings such as
    "pi", "pi/2", "-2pi/3"), point-group irrep (e.g. "A1", "B1"; the little group of k) and spin parity."""

    k: list[float | str] | None = None
    point_group: str | None = None
    spin_parity: Literal[1, -1] | None = None
    # rbm_pp: "state" projects the whole RBM x PP (every image pays a pair product); "rbm" projects the RBM
    # factor alone (its image path; exact for electrons, whose pair function is then tied over the group)
    project: Literal["state", "rbm"] | None = None


#: Defaults of the DBM's joint-chain settings (the working values of benchmarks/dbm_vs_rbm.py).
DBM_DEFAULTS = {"deep_samples": 4, "deep_decay": 0.1, "deep_metric": "pair"}


class ModelConfig(_Section):
    kind: Literal["rbm", "rbm_real", "rbm_symmetric", "jastrow", "slater", "pp", "rbm_pp", "dbm"] = "rbm"
    alpha: float = Field(1.0, ge=0)
    param_dtype: Literal["complex", "real"] = "complex"  # rbm, slater, pp, rbm_pp: real gives psi real
    init_scale: float = Field(0.01, gt=0)
    marshall_sign: bool = False
    gutzwiller: bool = False  # pp, rbm_pp: exp(-g sum n_up n_down)
    jastrow: bool = False  # pp, rbm_pp (electrons): exp(-1/2 sum_ij v_ij n_i n_j)
    doublon_holon: bool = False  # pp, rbm_pp (electrons): doublon-holon binding over nearest neighbours
    # pp, rbm_pp (electrons): "singlet" = det f[R_up, R_down]; "general" = Pf F[R, R] (all spin blocks)
    pairing: Literal["singlet", "general"] = "singlet"
    # pairing = "general": project the pair product on total spin S = 0 with this many Gauss-Legendre rotations
    spin_projection: int = Field(0, ge=0)
    # slater/pp/rbm_pp start: uhf for electrons; dwave (d-wave RVB pairing) for spins on periodic square lattices
    init: Literal["auto", "tight_binding", "uhf", "dwave", "random"] = "auto"
    n_hidden: int | None = Field(None, gt=0)  # dbm: hidden units (default alpha * n_sites)
    n_deep: int | None = Field(None, gt=0)  # dbm: deep units (default n_hidden)
    # dbm (joint-chain VMC, nqs.drivers.dbm; filled in for kind "dbm", unset for the other kinds):
    deep_samples: int | None = Field(None, gt=0)  # deep draws per replica and sample (R; default 4)
    deep_decay: float | None = Field(None, ge=0)  # decoupled decay of U per update, x lr (default 0.1; 0: none)
    deep_metric: Literal["pair", "mean"] | None = None  # SR metric of the joint chain (default "pair")
    # rbm, pp, rbm_pp on periodic lattices: parameters shared over the translations (RBM filters,
    # pair function f(r_i - r_j)); "space_group": the RBM's over the whole space group (f keeps translations)
    shared_weights: Literal["translation", "space_group"] | None = None
    symmetry: SymmetryConfig | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.shared_weights is not None and self.kind not in ("rbm", "pp", "rbm_pp"):
            raise ValueError(
                f"'shared_weights' is for kinds 'rbm', 'pp' and 'rbm_pp', not '{self.kind}' "
                "(rbm_symmetric shares its weights already)"
            )
        if self.alpha == 0 and self.kind not in ("rbm_pp",):
            raise ValueError(f"alpha must be > 0 for kind '{self.kind}' (alpha = 0 only for rbm_pp: the PP alone)")
        for name in ("gutzwiller", "jastrow", "doublon_holon"):
            if getattr(self, name) and self.kind not in ("pp", "rbm_pp"):
                raise ValueError(f"'{name}' is for kinds 'pp' and 'rbm_pp', not '{self.kind}'")
        if self.pairing == "general":
            if self.kind not in ("pp", "rbm_pp"):
                raise ValueError(f"'pairing' is for kinds 'pp' and 'rbm_pp', not '{self.kind}'")
            if self.jastrow or self.doublon_holon:
                raise ValueError(
                    'pairing = "general" (Pfaffian) takes the Gutzwiller factor only; remove jastrow and doublon_holon'
                )
            if self.shared_weights is not None:
                raise ValueError('pairing = "general" has no parameter sharing; remove shared_weights')
        elif self.spin_projection:
            raise ValueError(
                'spin_projection is for pairing = "general" (the rotated pair function has ↑↑ and '
                '↓↓ blocks); set pairing = "general"'
            )
        if self.kind == "dbm":
            for name, value in DBM_DEFAULTS.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)
        else:
            for name in ("n_hidden", "n_deep", *DBM_DEFAULTS):
                if getattr(self, name) is None:
                    continue
                if name in DBM_DEFAULTS and name not in self.model_fields_set:
                    object.__setattr__(self, name, None)  # a filled-in default (kind changed from "dbm")
                else:
                    raise ValueError(f"'{name}' is for kind 'dbm', not '{self.kind}'")
        return self


#: The model kinds :class:`ModelConfig` describes; further kinds come from :data:`nqs.registry.MODELS`.
BUILTIN_MODEL_KINDS: tuple[str, ...] = get_args(ModelConfig.model_fields["kind"].annotation)


def _model_branch(value) -> str:
    kind = value.get("kind", "rbm") if isinstance(value, dict) else getattr(value, "kind", "rbm")
    return "registered" if kind not in BUILTIN_MODEL_KINDS else "builtin"


def _registered_model(value):
    if isinstance(value, dict) and value.get("kind") not in MODELS:
        known = ", ".join([*BUILTIN_MODEL_KINDS, *MODELS.kinds()])
        raise ValueError(f"unknown model kind {value.get('kind')!r} (one of: {known})")
    return _registered_section(MODELS, value, "")


#: ``[model]``: a built-in kind (:class:`ModelConfig`) or a registered one (its own config class).
ModelSection = Annotated[
    Annotated[ModelConfig, Tag("builtin")]
    | Annotated[SerializeAsAny[Section], BeforeValidator(_registered_model), Tag("registered")],
    Discriminator(_model_branch),
]
#: Components of an error's location that name a branch of a section's union, not a key.
_BRANCH_TAGS = ("builtin", "registered")


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
    """``[driver]``: which computation runs.  ``kind = "auto"`` (default) is ground-state VMC ("vmc"), or the
    joint-chain DBM driver ("dbm") for ``model.kind = "dbm"``; any registered driver kind
    (:data:`nqs.registry.DRIVERS`) with the keys of its config class."""

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
    model: ModelSection = Field(default_factory=ModelConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    imaginary_time: ImaginaryTimeConfig = Field(default_factory=ImaginaryTimeConfig)
    driver: SerializeAsAny[Section] = Field(default_factory=DriverConfig)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)

    _driver = field_validator("driver", mode="before")(lambda cls, v: _driver_section(v))
    _hamiltonian = field_validator("hamiltonian", mode="before")(
        lambda cls, v: _registered_section(HAMILTONIANS, v, "heisenberg")
    )

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
    """The driver a config runs: ``driver.kind``, or for "auto" "dbm" with a DBM model and "vmc" otherwise."""
    kind = config.driver.kind
    if kind == "auto":
        return "dbm" if config.model.kind == "dbm" else "vmc"
    return kind


def default_config() -> Config:
    """The built-in default problem: Heisenberg chain L = 16 (PBC), Sz = 0, SR.

    The model is a real RBM (α = 2) times the Marshall sign, stated explicitly here, printed with
    the run and written to the run's config.toml (``model.marshall_sign = true``).
    """
    return Config(
        lattice=LatticeConfig(kind="chain", size=[16], pbc=True),
        hamiltonian=HeisenbergConfig(J=1.0, total_sz=0),
        model=ModelConfig(kind="rbm", alpha=2.0, param_dtype="real", marshall_sign=True),
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
        model=(union([ModelConfig, *(e.config for e in MODELS)]), Field(default_factory=ModelConfig)),
        driver=(union([DriverConfig, *(e.config for e in DRIVERS if e.config)]), Field(default_factory=DriverConfig)),
    )


def _format_errors(err: ValidationError) -> str:
    """One line: ``key: what is wrong`` per error (an error of the whole config names its keys itself)."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if x not in _BRANCH_TAGS)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        inp = e.get("input")
        if e["type"] not in ("extra_forbidden", "missing") and not isinstance(inp, dict):
            msg += f" (got {inp!r})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


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
