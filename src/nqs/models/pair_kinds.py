"""The pair-product ``[model]`` kinds: ``slater`` (electrons), ``pp`` and ``rbm_pp`` (electrons, and spins as
one electron per site), each one config class and one builder registered in :data:`nqs.registry.MODELS`
(the spin kinds and the shared pieces: :mod:`nqs.models.kinds`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..hilbert import SpinfulFermions
from ..lattice import SymmetryGroup, point_characters, point_group
from ..registry import HAMILTONIANS, MODELS, ConfigError, Section
from .kinds import (
    SPINS,
    InitScale,
    MarshallSignKey,
    PairSymmetryConfig,
    ParamDtype,
    SharedWeights,
    momentum_zero_when_shared,
    spin_state,
    tie,
    zero_sz,
)
from .pair_product import PairProduct, neighbour_table
from .rbm_pp import RBMPP, SpinRBMPP, dwave_pairing
from .slater import Slater
from .symmetric import FermionProjected
from .tied import Tied

ELECTRONS_AND_SPINS = ("electrons", *SPINS)

PairInit = Annotated[
    Literal["auto", "tight_binding", "uhf", "dwave", "random"],
    Field(
        description="start of the pair function: tight_binding (auto) the free-fermion state, uhf (electrons) "
        "unrestricted Hartree-Fock, dwave (spins, periodic square lattices) the d-wave RVB pairing, random"
    ),
]


# --------------------------------------------------------------------------------- config classes
class SlaterConfig(Section):
    """``kind = "slater"``: one Slater determinant of N↑ and N↓ orbitals (electrons)."""

    kind: Literal["slater"] = "slater"
    param_dtype: ParamDtype = "complex"
    init: Annotated[
        Literal["auto", "tight_binding", "uhf", "random"],
        Field(description="start: tight_binding (auto) the free-fermion state, uhf unrestricted Hartree-Fock, random"),
    ] = "auto"


class _PairProductKeys(Section):
    """The keys of the pair product, shared by ``pp`` and ``rbm_pp``."""

    param_dtype: ParamDtype = "complex"
    init: PairInit = "auto"
    marshall_sign: MarshallSignKey = False
    gutzwiller: bool = Field(False, description="electrons: the Gutzwiller factor exp(-g sum_i n_up n_down)")
    jastrow: bool = Field(False, description="electrons: the charge Jastrow factor exp(-1/2 sum_ij v_ij n_i n_j)")
    doublon_holon: bool = Field(
        False, description="electrons: the doublon-holon factor over nearest neighbours (mVMC's two-site factor)"
    )
    pairing: Literal["singlet", "general"] = Field(
        "singlet",
        description='electrons: "singlet" det f[R_up, R_down]; "general" the Pfaffian Pf F[R, R] of all spin blocks',
    )
    spin_projection: int = Field(
        0, ge=0, description='pairing = "general": Gauss-Legendre spin rotations projecting on total spin S = 0'
    )
    shared_weights: SharedWeights = None
    symmetry: PairSymmetryConfig | None = None

    _momentum = field_validator("symmetry")(momentum_zero_when_shared)

    def rbm_factor(self) -> bool:
        """Whether the state has an RBM factor (what ``symmetry.project = "rbm"`` projects)."""
        return False

    @model_validator(mode="after")
    def _check(self):
        if self.pairing == "general":
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
        if self.symmetry is not None and self.symmetry.project == "rbm":
            if not self.rbm_factor():
                raise ValueError(
                    'symmetry.project = "rbm" projects the RBM factor of kind = "rbm_pp" (alpha > 0); use "state"'
                )
            if self.marshall_sign:
                raise ValueError(
                    'symmetry.project = "rbm" cannot reach the RBM factor inside the Marshall sign; remove '
                    'marshall_sign or use project = "state"'
                )
        return self


class PPConfig(_PairProductKeys):
    """``kind = "pp"``: the pair product alone — for electrons det f[R↑, R↓] (or the Pfaffian) with its optional
    Gutzwiller, charge Jastrow and doublon–holon factors; for spins the Gutzwiller-projected singlet pair
    product."""

    kind: Literal["pp"] = "pp"


class RBMPPConfig(_PairProductKeys):
    """``kind = "rbm_pp"``: an RBM times the pair product (``alpha = 0``: the pair product alone)."""

    kind: Literal["rbm_pp"] = "rbm_pp"
    alpha: float = Field(1.0, ge=0, description="RBM hidden units per visible unit (0: the pair product alone)")
    init_scale: InitScale = 0.01

    def rbm_factor(self) -> bool:
        return self.alpha > 0


def pair_product_refuses(config: Any) -> str | None:
    """The first setting of a ``pp`` or ``rbm_pp`` section that the config's Hamiltonian rules out, as
    ``"key: why"`` (None: all apply); checked when the config is read."""
    mc, hc = config.model, config.hamiltonian
    if HAMILTONIANS[hc.kind].facts.get("fermions", False):
        if mc.marshall_sign:
            return "model.marshall_sign: the Marshall sign is for spin models; remove it"
        if mc.init == "dwave":
            return (
                "model.init: 'dwave' is the d-wave RVB start of the spin pair product; electrons take "
                '"tight_binding" or "uhf"'
            )
        if mc.symmetry is not None and mc.shared_weights is None:
            return (
                "model.symmetry: projecting an electron model needs model.shared_weights = "
                '"translation" (momentum 0 exactly; the projection then sums the point group)'
            )
        return None
    for name in ("gutzwiller", "jastrow", "doublon_holon"):
        if getattr(mc, name):
            return (
                f"model.{name}: the Gutzwiller, charge Jastrow and doublon-holon factors are constant for spins "
                f"(one electron per site); remove {name}"
            )
    if mc.pairing != "singlet":
        return "model.pairing: spin models take the singlet pair product (one electron per site, S^z = 0); remove it"
    if mc.init == "uhf":
        return 'model.init: \'uhf\' is for electron Hamiltonians; spins take "tight_binding" or "dwave"'
    return None


# --------------------------------------------------------------------------------- builders
@MODELS.register("slater", config=SlaterConfig, describes=("electrons",))
def build_slater(section: SlaterConfig, context) -> Slater:
    hil = context.hilbert
    try:
        return Slater(
            hil.n_sites, hil.n_up, hil.n_down, param_dtype=section.param_dtype, hopping=_start(section, context)
        )
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None


@MODELS.register("pp", config=PPConfig, describes=ELECTRONS_AND_SPINS, refuses=pair_product_refuses)
def build_pp(section: PPConfig, context):
    if isinstance(context.hilbert, SpinfulFermions):
        return electron_pair_product(section, context, 0.0)
    return spin_pair_product(section, context, 0.0)


@MODELS.register("rbm_pp", config=RBMPPConfig, describes=ELECTRONS_AND_SPINS, refuses=pair_product_refuses)
def build_rbm_pp(section: RBMPPConfig, context):
    if isinstance(context.hilbert, SpinfulFermions):
        return electron_pair_product(section, context, section.alpha, section.init_scale)
    return spin_pair_product(section, context, section.alpha, section.init_scale)


def _start(section, context):
    """The one-body matrix the pair function (or determinant) starts from, by ``init``: the Hamiltonian's
    hopping, unrestricted Hartree–Fock's, or None (random)."""
    if section.init in ("auto", "tight_binding"):
        return context.hamiltonian
    if section.init != "uhf":
        return None
    from .slater import unrestricted_hartree_fock

    lat, hil = context.lattice, context.hilbert
    guess = (1 - 2 * np.asarray(lat.sublattice, dtype=float)) if lat.is_bipartite else None
    hopping, _ = unrestricted_hartree_fock(
        context.hamiltonian, hil.n_sites, hil.n_up, hil.n_down, seed=context.config.seed, guess=guess
    )
    return hopping


def electron_pair_product(section: _PairProductKeys, context, alpha: float, init_scale: float | None = None):
    """``pp`` / ``rbm_pp`` for electrons: the pair product (singlet or Pfaffian) or RBM × PP, tied and projected
    as the section asks (``context.bonds``: the nearest-neighbour pairs of the doublon–holon factor)."""
    hil = context.hilbert
    L, nu, nd = hil.n_sites, hil.n_up, hil.n_down
    sc = section.symmetry
    rbm_images = rbm_chars = images = None
    if sc is not None:
        images, chars = _fermion_projection(sc, context)
        if sc.project == "rbm":
            rbm_images, rbm_chars = images, chars
    hopping = _start(section, context)
    try:
        dh = neighbour_table(context.bonds, L) if section.doublon_holon else None
        if alpha == 0 and section.pairing == "general":
            from .pfaffian import PfaffianPP

            model = PfaffianPP(
                L,
                nu,
                nd,
                gutzwiller=section.gutzwiller,
                param_dtype=section.param_dtype,
                hopping=hopping,
                spin_points=section.spin_projection,
            )
        elif alpha == 0:
            model = PairProduct(
                L,
                nu,
                nd,
                gutzwiller=section.gutzwiller,
                param_dtype=section.param_dtype,
                hopping=hopping,
                jastrow=section.jastrow,
                doublon_holon=dh,
            )
        else:
            model = RBMPP(
                L,
                nu,
                nd,
                alpha=alpha,
                init_scale=init_scale,
                gutzwiller=section.gutzwiller,
                param_dtype=section.param_dtype,
                hopping=hopping,
                jastrow=section.jastrow,
                rbm_images=rbm_images,
                rbm_characters=rbm_chars,
                doublon_holon=dh,
                pairing=section.pairing,
                spin_points=section.spin_projection,
            )
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None
    if section.shared_weights is not None:
        projects_rbm = sc is not None and sc.project == "rbm"
        model = tie(
            model,
            context,
            section.shared_weights,
            pair_space_group=projects_rbm,
            symmetric_pairs=projects_rbm and sc.spin_parity is not None,
        )
    if images is not None and rbm_images is None:
        model = FermionProjected(model, images, chars, nu + nd)
    return model


def _fermion_projection(sc: PairSymmetryConfig, context):
    """``model.symmetry`` for electrons: the images (point group, and ↑↔↓ with ``spin_parity``) as permutations
    of the 2L orbitals, and their characters.  With shared translations the state has momentum 0 already.

    * ``project = "state"`` (default): the whole state is projected with the fermion reordering signs
      (:class:`~nqs.models.symmetric.FermionProjected`; every image pays the inner model's fast path);
    * ``project = "rbm"`` (rbm_pp): the RBM factor alone, through its image path, while the pair function is
      tied over the whole space group (f(Rr) = f(r), symmetric f: a singlet) — exact, since then
      ``Σ_g χ_g (U_g ψ)(x) = ψ_PP(x) Σ_g χ_g ψ_RBM(g x)``, but an invariant f excludes d-wave-like pairing."""
    lat, hil = context.lattice, context.hilbert
    n_sites = hil.n_sites
    if sc.point_group is not None:
        pg = point_group(lat)
        try:
            chi = point_characters(pg, sc.point_group)
        except (ValueError, KeyError) as err:
            raise ConfigError(f"model.symmetry.point_group: {err}") from None
        perms = np.asarray(pg.perms)
    else:
        perms, chi = np.arange(n_sites)[None, :], np.ones(1)
    images = np.concatenate([perms, perms + n_sites], axis=1)  # the same permutation of both spin species
    if sc.spin_parity is not None:
        # the spin flip is the rotation by π about x, c†_i↑ → i c†_i↓, c†_i↓ → i c†_i↑: i^{N} times the orbital
        # exchange i↑ ↔ i↓ (eigenvalue (−1)^S at S^z = 0, so spin_parity = +1 holds the singlets)
        n_up, n_dn = hil.n_up, hil.n_down
        if n_up != n_dn:
            raise ConfigError(f"model.symmetry.spin_parity: the spin flip needs n_up = n_down, got {n_up} and {n_dn}")
        images = np.concatenate([images, np.concatenate([perms + n_sites, perms], axis=1)])
        fermion = 1 if sc.project == "rbm" else (-1) ** n_up  # "rbm": the RBM factor even, ψ_PP a singlet
        chi = np.concatenate([chi, sc.spin_parity * fermion * chi])
    return images, chi


def spin_pair_product(section: _PairProductKeys, context, alpha: float, init_scale: float | None = None):
    """``pp`` / ``rbm_pp`` for spins: the Gutzwiller-projected singlet pair product (one electron per site), times
    an RBM for ``alpha > 0``, with the spin kinds' tied weights, Marshall sign and projection."""
    lat = context.lattice
    if not zero_sz(context.hilbert):
        raise ConfigError("model.kind: the projected pair product needs total_sz = 0 (exchange sampler)")
    dwave = section.init == "dwave"
    if dwave and (lat.kind != "square" or not all(lat.pbc)):
        raise ConfigError(f"model.init: the d-wave start needs a periodic square lattice, not {lat.describe()}")
    rbm = {"alpha": alpha, "init_scale": init_scale} if alpha > 0 else {}
    try:
        pairing = dwave_pairing(lat) if dwave else None
        model = SpinRBMPP(
            lat.n_sites,
            **rbm,
            param_dtype=section.param_dtype,
            pairing=pairing,
            init_noise=0.1 if pairing is None else 0.01,  # the d-wave state is fragile
            hopping=lat if section.init in ("auto", "tight_binding") else None,
        )
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None
    sc = section.symmetry
    return spin_state(
        model,
        context,
        section.marshall_sign,
        section.shared_weights,
        sc,
        antiperiodic_pairs=dwave,
        project=_project_rbm_factor if (sc is not None and sc.project == "rbm") else None,
    )


def _project_rbm_factor(model, group, chi, parity):
    """``model.symmetry.project = "rbm"`` for spins: the RBM factor of the RBM × PP projected (image path),
    the pair product as it is (its own symmetry: tied over translations, or none)."""
    inner = model.inner if isinstance(model, Tied) else model
    if not isinstance(inner, SpinRBMPP) or inner.rbm is None:
        raise ConfigError('model.symmetry.project: "rbm" needs the RBM factor of kind = "rbm_pp"; use "state"')
    perms = np.asarray(group.perms if isinstance(group, SymmetryGroup) else group)
    try:
        new = replace(inner, rbm_images=perms, rbm_characters=np.asarray(chi), rbm_spin_parity=parity)
    except ValueError as err:
        raise ConfigError(f"model.symmetry: {err}") from None
    return replace(model, inner=new) if isinstance(model, Tied) else new
