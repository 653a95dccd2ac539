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
from .optimizers import SROptimizerSection
from .registry import DRIVERS, HAMILTONIANS, MODELS, OPTIMIZERS, SAMPLERS, Section
from .sampling.kinds import AutoSamplerConfig, ExchangeSamplerConfig, chains_cannot_divide, default_kind


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
        known = ", ".join(registry.kinds())
        raise ValueError(_encode([("kind", f"unknown {registry.family} kind {kind!r} (one of: {known})")]))
    cls = registry[kind].config
    try:
        return cls.model_validate({**value, "kind": kind})
    except ValidationError as err:
        takes = ", ".join(k for k in cls.model_fields if k != "kind")
        parts = []
        for loc, msg, etype in _error_parts(err):
            if etype == "extra_forbidden":
                parts.append(("", f"'{loc}' is not a parameter of kind '{kind}' (it takes {takes or 'no parameters'})"))
            else:
                parts.append((loc, msg))
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
        raise ValueError(_encode([(loc, msg) for loc, msg, _ in _error_parts(err)])) from None


class Config(_Section):
    seed: int = 1
    lattice: LatticeConfig = Field(default_factory=LatticeConfig)
    hamiltonian: SerializeAsAny[Section] = Field(default_factory=HeisenbergConfig)
    model: ModelSection = Field(default_factory=ModelConfig)
    sampler: SerializeAsAny[Section] = Field(default_factory=ExchangeSamplerConfig)
    optimizer: SerializeAsAny[Section] = Field(default_factory=SROptimizerSection)
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
    _sampler = field_validator("sampler", mode="before")(lambda cls, v: _sampler_section(v))
    _optimizer = field_validator("optimizer", mode="before")(lambda cls, v: _optimizer_section(v))

    @model_validator(mode="before")
    @classmethod
    def _default_sampler(cls, data):
        """A ``[sampler]`` without ``kind`` takes the sampler that suits the Hamiltonian
        (:func:`nqs.sampling.kinds.default_kind`; "auto" where only the built operator tells)."""
        if not isinstance(data, dict):
            return data
        sampler = data.get("sampler", {})
        if not isinstance(sampler, dict) or "kind" in sampler:
            return data
        ham = data.get("hamiltonian", {})
        kind = ham.get("kind", "heisenberg") if isinstance(ham, dict) else getattr(ham, "kind", None)
        if kind not in HAMILTONIANS:
            return data  # the [hamiltonian] error is the one to report
        facts = HAMILTONIANS[kind].facts
        chosen = default_kind(bool(facts.get("fermions")), facts.get("conserves_sz"))
        return {**data, "sampler": {**sampler, "kind": chosen or "auto"}}

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
        model=(union([ModelConfig, *(e.config for e in MODELS)]), Field(default_factory=ModelConfig)),
        sampler=(
            union([*(e.config for e in SAMPLERS), AutoSamplerConfig]),
            Field(default_factory=ExchangeSamplerConfig),
        ),
        optimizer=(union(e.config for e in OPTIMIZERS), Field(default_factory=SROptimizerSection)),
        driver=(union([DriverConfig, *(e.config for e in DRIVERS if e.config)]), Field(default_factory=DriverConfig)),
    )


def _format_errors(err: ValidationError) -> str:
    """One line: ``key: what is wrong`` per error (an error of the whole config names its keys itself)."""
    return "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg, _ in _error_parts(err))


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
