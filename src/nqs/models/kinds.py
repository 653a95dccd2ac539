"""The ``[model]`` kinds a config can name: each is one config class (exactly the keys the kind takes) and one
builder, registered together in :data:`nqs.registry.MODELS`.

* here: the spin models ``rbm``, ``rbm_real``, ``rbm_symmetric``, ``jastrow`` and ``dbm``, the
  ``[model.symmetry]`` table, and what the spin models share (tied weights, Marshall sign, projection);
* :mod:`nqs.models.pair_kinds`: the pair-product kinds ``slater``, ``pp`` and ``rbm_pp``.

What the config alone decides is checked when it is read: within a kind by its class's validators, against the
Hamiltonian by the registration's facts ``describes`` (spins, electrons or both) and ``refuses`` (see
:data:`nqs.registry.MODELS`).  A builder receives its section and the build's context
(``nqs.workflow.build.ModelContext``) and raises :class:`~nqs.registry.ConfigError`, naming the key, for what
only the built lattice and Hilbert space tell (a bipartite lattice, total Sz = 0, an allowed momentum).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import jax
import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from ..lattice import (
    little_group,
    momentum,
    momentum_characters,
    point_characters,
    point_group,
    space_characters,
    space_group,
    translation_group,
)
from ..registry import MODELS, ConfigError, Section
from .base import MarshallSign
from .dbm import DeepBoltzmann
from .jastrow import Jastrow
from .rbm import RBM, RBMRealAmpPhase
from .symmetric import Projected, SymmetricRBM

#: ``describes`` of a registration: the particles of the Hamiltonians the model can describe.
SPINS, ELECTRONS = ("spins",), ("electrons",)


# --------------------------------------------------------------------------------- momenta as text
def parse_angle(value: float | str, where: str = "") -> float:
    """A momentum component: a number (radians) or a string such as "pi", "-pi/2", "2pi/3", "0.5*pi"."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower().replace("π", "pi").replace(" ", "")
    m = re.fullmatch(r"([+-]?)(\d*\.?\d*)\*?(pi)?(?:/(\d+\.?\d*))?", text)
    if not text or m is None or (not m.group(2) and not m.group(3)):
        prefix = f"{where}: " if where else ""
        raise ConfigError(f'{prefix}cannot read momentum component {value!r} (use numbers or e.g. "pi/2")')
    sign = -1.0 if m.group(1) == "-" else 1.0
    num = float(m.group(2)) if m.group(2) else 1.0
    den = float(m.group(4)) if m.group(4) else 1.0
    return sign * num * (math.pi if m.group(3) else 1.0) / den


def k_label(k) -> str:
    """A momentum in units of π, e.g. (0, π/2)."""
    from fractions import Fraction

    parts = []
    for x in np.atleast_1d(np.asarray(k, dtype=float)):
        f = Fraction(x / math.pi).limit_denominator(64)
        if abs(float(f) * math.pi - x) > 1e-8:
            parts.append(f"{x:.4f}")
        elif f == 0:
            parts.append("0")
        else:
            num = "" if abs(f.numerator) == 1 else str(abs(f.numerator))
            sign = "-" if f < 0 else ""
            parts.append(f"{sign}{num}π" + (f"/{f.denominator}" if f.denominator != 1 else ""))
    return "(" + ", ".join(parts) + ")" if len(parts) > 1 else parts[0]


# --------------------------------------------------------------------------------- [model.symmetry]
class SymmetryConfig(Section):
    """Projection onto a symmetry sector: momentum ``k`` (numbers in radians or strings such as "pi", "pi/2",
    "-2pi/3"), point-group irrep (e.g. "A1", "B1"; of the little group of k) and spin parity."""

    k: list[float | str] | None = None
    point_group: str | None = None
    spin_parity: Literal[1, -1] | None = None

    @field_validator("k")
    @classmethod
    def _readable(cls, k):
        for v in k or ():
            parse_angle(v)
        return k

    def at_momentum_zero(self) -> bool:
        return self.k is None or all(parse_angle(v) == 0 for v in self.k)


class PairSymmetryConfig(SymmetryConfig):
    """Projection onto a symmetry sector (as for the other kinds), and what is projected."""

    project: Literal["state", "rbm"] | None = Field(
        None,
        description='"state" (default): the whole state, every image paying a pair product; "rbm" (rbm_pp): '
        "the RBM factor alone through its image path (for electrons exact, the pair function then tied over the "
        "space group)",
    )


# --------------------------------------------------------------------------------- keys shared by kinds
Alpha = Annotated[float, Field(gt=0, description="hidden units per site (round(alpha N) hidden units)")]
InitScale = Annotated[float, Field(gt=0, description="standard deviation of the initial RBM weights")]
ParamDtype = Annotated[
    Literal["complex", "real"],
    Field(description='"real": real parameters and a real psi (the sign from marshall_sign or the pair function)'),
]
MarshallSignKey = Annotated[
    bool, Field(description="times the Marshall sign (-1)^(N_up on sublattice 1) (bipartite lattices)")
]
SharedWeights = Annotated[
    Literal["translation", "space_group"] | None,
    Field(
        description="periodic lattices: parameters shared over the translations (RBM filters, pair function "
        'f(r_i - r_j)); "space_group": the RBM\'s over the whole space group (f keeps translations)'
    ),
]
Symmetry = SymmetryConfig | None


def momentum_zero_when_shared(sc: SymmetryConfig | None, info: ValidationInfo) -> SymmetryConfig | None:
    """``symmetry`` of a kind with ``shared_weights`` (a field validator): shared weights make the state
    invariant under translations, so a projection has k = 0."""
    if info.data.get("shared_weights") is not None and sc is not None and not sc.at_momentum_zero():
        raise ValueError("with shared_weights the state has momentum 0; remove k or set it to 0")
    return sc


# --------------------------------------------------------------------------------- config classes
class RBMConfig(Section):
    """``kind = "rbm"``: the restricted Boltzmann machine, log ψ = a·σ + Σ_j log cosh(b_j + W_j·σ) (spins)."""

    kind: Literal["rbm"] = "rbm"
    alpha: Alpha = 4.0
    param_dtype: Annotated[
        Literal["auto", "complex", "real"],
        Field(
            description='"real": real parameters and a real psi (the sign from marshall_sign); "auto": real where '
            "the Hamiltonian's ground state is positive, or positive times the Marshall sign applied, else complex"
        ),
    ] = "auto"
    init_scale: InitScale = 0.01
    marshall_sign: Annotated[
        bool | None,
        Field(
            description="times the Marshall sign (-1)^(N_up on sublattice 1) (bipartite lattices); unset: where the "
            "Hamiltonian's ground state has that sign (Heisenberg and XXZ with J > 0 on a bipartite lattice)"
        ),
    ] = None
    shared_weights: SharedWeights = None
    symmetry: Symmetry = None

    _momentum = field_validator("symmetry")(momentum_zero_when_shared)


class RBMRealConfig(Section):
    """``kind = "rbm_real"``: log ψ = log A + i φ with a real RBM each for log A and φ (spins)."""

    kind: Literal["rbm_real"] = "rbm_real"
    alpha: Alpha = 1.0
    init_scale: InitScale = 0.01
    marshall_sign: MarshallSignKey = False
    symmetry: Symmetry = None


class SymmetricRBMConfig(Section):
    """``kind = "rbm_symmetric"``: an RBM whose ``alpha`` filters are copied over the translations (with
    ``symmetry.point_group``: the space group), invariant under them (k = 0, A1; spins)."""

    kind: Literal["rbm_symmetric"] = "rbm_symmetric"
    alpha: Annotated[float, Field(gt=0, description="filters (an integer): alpha |G| hidden units")] = 1.0
    init_scale: InitScale = 0.01
    marshall_sign: MarshallSignKey = False
    symmetry: Symmetry = None

    @field_validator("alpha")
    @classmethod
    def _filters(cls, alpha):
        if alpha != int(alpha):
            raise ValueError("the symmetric RBM takes an integer number of filters")
        return alpha

    @field_validator("symmetry")
    @classmethod
    def _invariant(cls, sc):
        if sc is not None and (not sc.at_momentum_zero() or sc.point_group not in (None, "A1")):
            raise ValueError(
                "the symmetric RBM is invariant (k = 0, A1); for other sectors "
                'project a plain RBM (kind = "rbm" with model.symmetry)'
            )
        return sc


class JastrowConfig(Section):
    """``kind = "jastrow"``: the two-body Jastrow state, log ψ = Σ_i h_i σ_i + ½ Σ_i≠j J_ij σ_i σ_j (spins)."""

    kind: Literal["jastrow"] = "jastrow"
    init_scale: Annotated[float, Field(gt=0, description="standard deviation of the initial h and J")] = 0.01
    marshall_sign: MarshallSignKey = False
    symmetry: Symmetry = None


class DBMConfig(Section):
    """``kind = "dbm"``: the deep Boltzmann machine, visible–hidden–deep with real parameters, run by the
    joint-chain driver (``[driver] kind = "dbm"``, the default driver of this kind; docs/dbm.md)."""

    kind: Literal["dbm"] = "dbm"
    alpha: Annotated[float, Field(gt=0, description="hidden units per site when n_hidden is unset")] = 1.0
    n_hidden: int | None = Field(None, gt=0, description="hidden units M (default round(alpha N))")
    n_deep: int | None = Field(None, gt=0, description="deep units K (default n_hidden)")
    param_dtype: Literal["real"] = Field("real", description="real only: psi real, the sign from marshall_sign")
    init_scale: InitScale = 0.01
    marshall_sign: MarshallSignKey = False

    @field_validator("param_dtype", mode="before")
    @classmethod
    def _real(cls, v):
        if v != "real":
            raise ValueError('the DBM has real parameters (psi real, the sign from marshall_sign); set "real"')
        return v


# --------------------------------------------------------------------------------- what spin kinds share
def symmetry_sector(sc: SymmetryConfig, lat) -> tuple[Any, np.ndarray, int | None, str]:
    """``(group, characters, spin_parity, label)`` of ``model.symmetry`` on ``lat`` (ConfigError if impossible)."""
    k = [0.0] * lat.ndim if sc.k is None else [parse_angle(v) for v in sc.k]
    if len(k) != lat.ndim:
        raise ConfigError(f"model.symmetry.k needs {lat.ndim} components for {lat.describe()}, got {len(k)}")
    try:
        kv = momentum(lat, k)
        if sc.point_group is None:
            group = translation_group(lat)
            chi = momentum_characters(lat, group, kv)
        else:
            group = little_group(lat, kv)
            chi = space_characters(lat, group, kv, sc.point_group)
    except (ValueError, KeyError) as err:
        allowed = ", ".join(k_label(q) for q in lat.momenta())
        raise ConfigError(f"model.symmetry: {err} (allowed momenta: {allowed})") from None
    label = f"k = {k_label(kv)}"
    if sc.point_group is not None:
        label += f", {sc.point_group}"
    if sc.spin_parity is not None:
        label += f", spin parity {sc.spin_parity:+d}"
    return group, chi, sc.spin_parity, label


def point_projection(sc: SymmetryConfig, lat):
    """Group and characters of ``model.symmetry`` for a model invariant under translations already (shared
    weights: k = 0 exactly): the point group alone, or the identity."""
    if sc.point_group is None:
        return np.arange(lat.n_sites)[None, :], np.ones(1)
    pg = point_group(lat)
    try:
        return pg, point_characters(pg, sc.point_group)
    except (ValueError, KeyError) as err:
        raise ConfigError(f"model.symmetry.point_group: {err}") from None


def tie(
    model,
    context,
    shared_weights: str,
    *,
    pair_space_group: bool = False,
    antiperiodic_pairs: bool = False,
    symmetric_pairs: bool = False,
):
    """``model`` with its parameters shared over the lattice symmetries of ``shared_weights`` (the RBM's over
    the translations or the space group, a pair function's over the translations, or with
    ``pair_space_group`` over the space group; ``antiperiodic_pairs``: the d-wave pair function's signs)."""
    from .tied import Tied, antiperiodic_signs, translation_tying

    lat = context.lattice
    if not all(lat.pbc):
        raise ConfigError(
            f"model.shared_weights: {lat.describe()} has open directions; sharing parameters over "
            "translations needs a periodic lattice"
        )
    if not context.translation_invariant:
        raise ConfigError(
            "model.shared_weights: sharing parameters over translations needs a translation-"
            'invariant Hamiltonian: kind = "hubbard" with periodic boundaries'
        )
    trans = translation_group(lat)
    rbm_group = space_group(lat) if shared_weights == "space_group" else trans
    pp_group = space_group(lat) if pair_space_group else trans
    try:
        signs = antiperiodic_signs(lat, trans, 0) if antiperiodic_pairs else None
        index = translation_tying(
            model.init(jax.random.PRNGKey(0)), pp_group, rbm_group, signs, symmetric_pairs=symmetric_pairs
        )
    except ValueError as err:
        raise ConfigError(f"model.shared_weights: {err}") from None
    label = "shared over the " + (
        "space group (RBM) and translations" if shared_weights == "space_group" else "translations"
    )
    return Tied(model, index, label)


def sublattices(lat) -> tuple[int, ...]:
    """The sublattice (0 or 1) of each site of the Marshall sign rule (a bipartite lattice)."""
    if not lat.is_bipartite:
        raise ConfigError(
            f"model.marshall_sign: the Marshall sign rule needs a bipartite lattice; {lat.describe()} is not"
        )
    return tuple(int(c) for c in lat.sublattice)


def marshall(model, lat):
    """``model`` times the Marshall sign of ``lat``'s sublattices."""
    return MarshallSign(model, sublattices(lat))


def zero_sz(hil) -> bool:
    return hil.total_sz is not None and abs(hil.total_sz) <= 1e-12


def spin_state(
    model,
    context,
    marshall_sign: bool,
    shared_weights: str | None = None,
    symmetry: SymmetryConfig | None = None,
    *,
    antiperiodic_pairs: bool = False,
    project: Callable | None = None,
):
    """``model`` with what the spin kinds share: parameters tied over ``shared_weights``, the Marshall sign, and
    the projection of ``symmetry`` (``project(model, group, characters, spin_parity)`` instead of
    :class:`~nqs.models.symmetric.Projected` when given)."""
    lat = context.lattice
    if shared_weights is not None:
        model = tie(model, context, shared_weights, antiperiodic_pairs=antiperiodic_pairs)
    if marshall_sign:
        model = marshall(model, lat)
    if symmetry is not None:
        group, chi, parity, _ = symmetry_sector(symmetry, lat)
        if parity is not None and not zero_sz(context.hilbert):
            raise ConfigError("model.symmetry.spin_parity: the spin flip needs total_sz = 0")
        if shared_weights is not None:
            group, chi = point_projection(symmetry, lat)
        model = project(model, group, chi, parity) if project else Projected(model, group, chi, spin_parity=parity)
    return model


# --------------------------------------------------------------------------------- builders
@MODELS.register(
    "rbm",
    config=RBMConfig,
    describes=SPINS,
    chosen=lambda model, section, context: dict(
        zip(("marshall_sign", "param_dtype"), rbm_sign(section, context.lattice, context.config), strict=True)
    ),
)
def build_rbm(section: RBMConfig, context):
    marshall_sign, param_dtype = rbm_sign(section, context.lattice, context.config)
    model = RBM(context.lattice.n_sites, alpha=section.alpha, init_scale=section.init_scale, param_dtype=param_dtype)
    return spin_state(model, context, marshall_sign, section.shared_weights, section.symmetry)


def rbm_sign(section: RBMConfig, lattice, config=None) -> tuple[bool, str]:
    """``(marshall_sign, param_dtype)`` of an RBM section, its unset values chosen from the Hamiltonian's
    ``sign_rule`` (:mod:`nqs.hamiltonians.spin`): the Marshall sign where the ground state has it on this
    (bipartite) lattice, and real parameters where the sign is then exact."""
    from ..registry import HAMILTONIANS

    rule = None
    if config is not None and config.hamiltonian.kind in HAMILTONIANS:
        sign_rule = HAMILTONIANS[config.hamiltonian.kind].facts.get("sign_rule")
        rule = sign_rule(config.hamiltonian) if sign_rule is not None else None
    marshall = section.marshall_sign
    if marshall is None:
        marshall = rule == "marshall" and lattice.is_bipartite
    dtype = section.param_dtype
    if dtype == "auto":
        exact = rule == "positive" and not marshall or rule == "marshall" and marshall
        dtype = "real" if exact else "complex"
    return bool(marshall), dtype


@MODELS.register("rbm_real", config=RBMRealConfig, describes=SPINS)
def build_rbm_real(section: RBMRealConfig, context):
    model = RBMRealAmpPhase(context.lattice.n_sites, alpha=section.alpha, init_scale=section.init_scale)
    return spin_state(model, context, section.marshall_sign, symmetry=section.symmetry)


@MODELS.register("rbm_symmetric", config=SymmetricRBMConfig, describes=SPINS)
def build_rbm_symmetric(section: SymmetricRBMConfig, context):
    """The invariant RBM; a spin parity other than its natural one is projected (ψ(σ) + p ψ(−σ))."""
    lat, sc = context.lattice, section.symmetry
    group = space_group(lat) if (sc and sc.point_group) else lat
    # Without hidden biases the symmetric RBM is even under the global spin flip at Sz = 0 (times
    # (-1)^(sites of sublattice 1) from the Marshall sign): a requested parity equal to that
    # natural one holds exactly, with no sum over ±σ (half the cost of projecting).
    parity = sc.spin_parity if sc is not None else None
    natural = -1 if (section.marshall_sign and lat.is_bipartite and int(np.sum(lat.sublattice)) % 2) else 1
    free_parity = parity is not None and parity == natural
    model = SymmetricRBM(group, alpha=int(section.alpha), init_scale=section.init_scale, hidden_bias=not free_parity)
    if section.marshall_sign:
        model = marshall(model, lat)
    if parity is not None:
        if not zero_sz(context.hilbert):
            raise ConfigError("model.symmetry.spin_parity: the spin flip needs total_sz = 0")
        if not free_parity:
            model = Projected(model, np.arange(lat.n_sites)[None, :], np.ones(1), spin_parity=parity)
    return model


@MODELS.register("jastrow", config=JastrowConfig, describes=SPINS)
def build_jastrow(section: JastrowConfig, context):
    model = Jastrow(context.lattice.n_sites, init_scale=section.init_scale)
    return spin_state(model, context, section.marshall_sign, symmetry=section.symmetry)


@MODELS.register(
    "dbm",
    config=DBMConfig,
    describes=SPINS,
    driver="dbm",
    chosen=lambda model, section, context: {"n_hidden": model.n_hidden, "n_deep": model.n_deep},
)
def build_dbm(section: DBMConfig, context) -> DeepBoltzmann:
    """The trainable real DBM (n_hidden = α N and n_deep = n_hidden unless given); the Marshall sign is its own
    sublattice rule, which the joint chain samples with."""
    lat = context.lattice
    sublattice = sublattices(lat) if section.marshall_sign else None
    n_hidden = section.n_hidden or max(1, round(section.alpha * lat.n_sites))
    n_deep = section.n_deep or n_hidden
    return DeepBoltzmann(lat.n_sites, n_hidden, n_deep, init_scale=section.init_scale, sublattice=sublattice)
