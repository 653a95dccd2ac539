"""From a validated :class:`~nqs.config.Config` to a finished run folder.

``build`` turns the config into Python objects (the same ones a script would make), ``solve``
runs VMC with checkpoints, evaluates the final state and writes
``config.toml``, ``history.csv``, ``checkpoint.npz``, ``result.json`` and ``convergence.png``.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import estimators, hamiltonians, io
from .. import exact as exact_mod
from ..config import FERMION_KINDS, Config, ConfigError
from ..conventions import units_for, units_short
from ..drivers import VMC, NonFiniteError, OptimizerConfig, run
from ..drivers.dbm import DBMVMC
from ..estimators import structure_factor_samples
from ..hamiltonians.hubbard import hubbard as build_hubbard
from ..hilbert import SpinfulFermions, SpinHilbert
from ..lattice import make_lattice
from ..models import (
    RBM,
    RBMPP,
    Jastrow,
    MarshallSign,
    PairProduct,
    Projected,
    RBMRealAmpPhase,
    Slater,
    SpinRBMPP,
    SymmetricRBM,
)
from ..models.dbm import DeepBoltzmann
from ..models.pair_product import dwave_pairing, neighbour_table
from ..models.slater import one_body_matrices
from ..operators.pauli import pauli_terms_from_spec
from ..reference import reference_energy
from ..sampling import ExactSampler, ExchangeRule, LocalRule, MetropolisSampler
from ..sampling.hop import HopExchangeRule, HopRule, SpinExchangeRule, lattice_bonds
from ..sampling.joint import JointMetropolisSampler
from ..sr import SRConfig
from ..stats import statistics

CHECKPOINT = "checkpoint.npz"


@dataclass
class Problem:
    config: Config
    lattice: Any
    hilbert: Any  # SpinHilbert or SpinfulFermions
    hamiltonian: Any
    vmc: Any  # nqs.drivers.vmc.VMC; nqs.drivers.dbm.DBMVMC (same interface) for model.kind = "dbm"

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


def _parse_angle(value, where: str) -> float:
    """A momentum component: a number (radians) or a string such as "pi", "-pi/2", "2pi/3", "0.5*pi"."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower().replace("π", "pi").replace(" ", "")
    m = re.fullmatch(r"([+-]?)(\d*\.?\d*)\*?(pi)?(?:/(\d+\.?\d*))?", text)
    if not text or m is None or (not m.group(2) and not m.group(3)):
        raise ConfigError(f"{where}: cannot read momentum component {value!r} (use numbers or e.g. \"pi/2\")")
    sign = -1.0 if m.group(1) == "-" else 1.0
    num = float(m.group(2)) if m.group(2) else 1.0
    den = float(m.group(4)) if m.group(4) else 1.0
    return sign * num * (math.pi if m.group(3) else 1.0) / den


def symmetry_sector(cfg: Config, lat) -> tuple[Any, np.ndarray, int | None, str]:
    """``(group, characters, spin_parity, label)`` of ``model.symmetry`` on ``lat`` (ConfigError if impossible)."""
    from ..lattice.symmetry import little_group, momentum, momentum_characters, space_characters, translation_group

    sc = cfg.model.symmetry
    k = [0.0] * lat.ndim if sc.k is None else [_parse_angle(v, "model.symmetry.k") for v in sc.k]
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
        allowed = ", ".join(_k_label(q) for q in lat.momenta())
        raise ConfigError(f"model.symmetry: {err} (allowed momenta: {allowed})") from None
    label = f"k = {_k_label(kv)}"
    if sc.point_group is not None:
        label += f", {sc.point_group}"
    if sc.spin_parity is not None:
        label += f", spin parity {sc.spin_parity:+d}"
    return group, chi, sc.spin_parity, label


def _k_label(k) -> str:
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


def _build_lattice(cfg: Config):
    try:
        return make_lattice(cfg.lattice.kind, cfg.lattice.size, cfg.lattice.pbc)
    except ValueError as err:
        raise ConfigError(f"lattice: {err}") from None


def _build_fermions(cfg: Config, lat):
    """Hubbard or file Hamiltonian, its (N↑, N↓) sector and the hop bonds."""
    hc = cfg.hamiltonian
    n_up, n_down = hc.n_up, hc.n_down
    if hc.kind == "hubbard":
        try:
            op = build_hubbard(lat, t=hc.t, U=hc.U, t2=hc.t2, V=hc.V, boundary=hc.boundary or "periodic")
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
                f"set [lattice] to match (e.g. kind = \"chain\", size = [{n_sites}])"
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
    cfg.hamiltonian.n_up, cfg.hamiltonian.n_down = n_up, n_down
    return op.for_sector(n_up, n_down), hil, bonds


def _build_spins(cfg: Config, lat):
    hc, sc = cfg.hamiltonian, cfg.sampler
    try:
        if hc.kind == "pauli":
            op = hamiltonians.pauli(lat, pauli_terms_from_spec(hc.terms))
        else:
            params = {k: getattr(hc, k) for k in ("J", "h", "Delta", "J1", "J2") if getattr(hc, k) is not None}
            op = hamiltonians.BUILDERS[hc.kind](lat, **params)
    except ValueError as err:
        raise ConfigError(f"hamiltonian: {err}") from None
    total_sz = hc.total_sz
    conserving = hc.kind in hamiltonians.SZ_CONSERVING or (hc.kind == "pauli" and op.conserves_sz())
    if total_sz is not None and not conserving:
        raise ConfigError(
            f"hamiltonian.total_sz: the '{hc.kind}' Hamiltonian does not conserve Sz, so total_sz "
            "cannot be fixed; remove it"
        )
    if sc.kind == "exchange":
        if not conserving:
            raise ConfigError(
                f"sampler.kind: exchange moves conserve Sz but the '{hc.kind}' Hamiltonian does not; "
                "use kind = \"local\""
            )
        if total_sz is None:
            total_sz = 0.0 if lat.n_sites % 2 == 0 else 0.5
            cfg.hamiltonian.total_sz = total_sz
    if sc.kind == "local" and total_sz is not None:
        raise ConfigError("sampler.kind: local spin flips cannot keep total_sz fixed; use kind = \"exchange\"")
    if sc.kind == "hop":
        raise ConfigError(f"sampler.kind: hop moves are for electrons; the '{hc.kind}' Hamiltonian acts on spins "
                          "(use \"exchange\" or \"local\")")
    try:
        hil = SpinHilbert(lat.n_sites, total_sz)
    except ValueError as err:
        raise ConfigError(f"hamiltonian.total_sz: {err}") from None
    return op.for_sector(hil), hil


def _fermion_model(cfg: Config, hil, op, neighbour_bonds=None):
    """``neighbour_bonds``: the nearest-neighbour pairs of the doublon–holon factor (the lattice's for the
    Hubbard model, the hopping pairs of a file Hamiltonian)."""
    mc = cfg.model
    L, nu, nd = hil.n_sites, hil.n_up, hil.n_down
    if mc.kind not in ("slater", "pp", "rbm_pp"):
        raise ConfigError(
            f"model.kind: '{mc.kind}' carries no fermion sign; electron Hamiltonians take "
            "\"slater\", \"pp\" or \"rbm_pp\""
        )
    if mc.marshall_sign:
        raise ConfigError("model.marshall_sign: the Marshall sign is for spin models; remove it")
    rbm_images = rbm_chars = images = None
    if mc.symmetry is not None:
        images, chars = _fermion_projection(cfg, L)
        if mc.symmetry.project == "rbm":
            rbm_images, rbm_chars = images, chars
    if mc.init == "dwave":
        raise ConfigError("model.init: 'dwave' is the d-wave RVB start of the spin pair product; electrons take "
                          "\"tight_binding\" or \"uhf\"")
    hopping = op if mc.init in ("auto", "tight_binding") else None
    if mc.init == "uhf":
        from ..models.slater import unrestricted_hartree_fock

        lat = _build_lattice(cfg)
        guess = (1 - 2 * np.asarray(lat.sublattice, dtype=float)) if lat.is_bipartite else None
        hopping, _ = unrestricted_hartree_fock(op, L, nu, nd, seed=cfg.seed, guess=guess)
    try:
        dh = neighbour_table(neighbour_bonds, L) if mc.doublon_holon else None
        if mc.kind == "slater":
            model = Slater(L, nu, nd, param_dtype=mc.param_dtype, hopping=hopping)
        elif (mc.kind == "pp" or (mc.kind == "rbm_pp" and mc.alpha == 0)) and mc.pairing == "general":
            from ..models.pfaffian import PfaffianPP

            model = PfaffianPP(L, nu, nd, gutzwiller=mc.gutzwiller, param_dtype=mc.param_dtype, hopping=hopping,
                               spin_points=mc.spin_projection)
        elif mc.kind == "pp" or (mc.kind == "rbm_pp" and mc.alpha == 0):
            model = PairProduct(L, nu, nd, gutzwiller=mc.gutzwiller, param_dtype=mc.param_dtype, hopping=hopping,
                                jastrow=mc.jastrow, doublon_holon=dh)
        else:
            model = RBMPP(L, nu, nd, alpha=mc.alpha, init_scale=mc.init_scale, gutzwiller=mc.gutzwiller,
                          param_dtype=mc.param_dtype, hopping=hopping, jastrow=mc.jastrow,
                          rbm_images=rbm_images, rbm_characters=rbm_chars, doublon_holon=dh, pairing=mc.pairing,
                          spin_points=mc.spin_projection)
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None
    model = _shared(cfg, _build_lattice(cfg), model, fermions=True)
    if images is not None and rbm_images is None:
        from ..models.symmetric import FermionProjected

        model = FermionProjected(model, images, chars, nu + nd)
    return model


def _fermion_projection(cfg: Config, n_sites: int):
    """``model.symmetry`` for electrons: the images (point group, and ↑↔↓ with ``spin_parity``) as permutations
    of the 2L orbitals, and their characters.  With shared translations the state has momentum 0 already.

    * ``project = "state"`` (default): the whole state is projected with the fermion reordering signs
      (:class:`~nqs.models.symmetric.FermionProjected`; every image pays the inner model's fast path);
    * ``project = "rbm"`` (rbm_pp): the RBM factor alone, through its image path, while the pair function is
      tied over the whole space group (f(Rr) = f(r), symmetric f: a singlet) — exact, since then
      ``Σ_g χ_g (U_g ψ)(x) = ψ_PP(x) Σ_g χ_g ψ_RBM(g x)``, but an invariant f excludes d-wave-like pairing."""
    from ..lattice.symmetry import point_characters, point_group

    mc, sc = cfg.model, cfg.model.symmetry
    if sc.project == "rbm" and (mc.kind != "rbm_pp" or mc.alpha == 0):
        raise ConfigError("model.symmetry.project: \"rbm\" projects the RBM factor of kind = \"rbm_pp\" "
                          "(alpha > 0); use \"state\"")
    if mc.shared_weights is None:
        raise ConfigError("model.symmetry: projecting an electron model needs model.shared_weights = "
                          "\"translation\" (momentum 0 exactly; the projection then sums the point group)")
    if sc.k is not None and any(_parse_angle(v, "model.symmetry.k") != 0 for v in sc.k):
        raise ConfigError("model.symmetry.k: with shared_weights the state has momentum 0; remove k or set it to 0")
    lat = _build_lattice(cfg)
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
        n_up, n_dn = cfg.hamiltonian.n_up, cfg.hamiltonian.n_down
        if n_up != n_dn:
            raise ConfigError(f"model.symmetry.spin_parity: the spin flip needs n_up = n_down, got {n_up} and {n_dn}")
        images = np.concatenate([images, np.concatenate([perms + n_sites, perms], axis=1)])
        fermion = 1 if sc.project == "rbm" else (-1) ** n_up  # "rbm": the RBM factor even, ψ_PP a singlet
        chi = np.concatenate([chi, sc.spin_parity * fermion * chi])
    return images, chi


def _shared(cfg: Config, lat, model, fermions: bool = False):
    """``model`` with its parameters shared over the lattice symmetries of ``model.shared_weights``."""
    mc = cfg.model
    if mc.shared_weights is None:
        return model
    from ..lattice.symmetry import space_group, translation_group
    from ..models.tied import Tied, antiperiodic_signs, translation_tying

    if not all(lat.pbc):
        raise ConfigError(f"model.shared_weights: {lat.describe()} has open directions; sharing parameters over "
                          "translations needs a periodic lattice")
    if fermions and (cfg.hamiltonian.kind != "hubbard" or _boundary_label(cfg, lat) != "periodic"):
        raise ConfigError("model.shared_weights: sharing parameters over translations needs a translation-"
                          "invariant Hamiltonian: kind = \"hubbard\" with periodic boundaries")
    trans = translation_group(lat)
    rbm_group = space_group(lat) if mc.shared_weights == "space_group" else trans
    # projected electron RBM+PP: the pair function must be invariant under every projected operation
    pp_group = space_group(lat) if (fermions and mc.symmetry is not None and mc.symmetry.project == "rbm") else trans
    try:
        # the d-wave pair function lives on a k grid antiperiodic along x: f(Ti, Tj) = ±f(i, j)
        signs = antiperiodic_signs(lat, trans, 0) if (mc.init == "dwave" and not fermions) else None
        symmetric = fermions and mc.symmetry is not None and mc.symmetry.project == "rbm" and \
            mc.symmetry.spin_parity is not None
        index = translation_tying(model.init(jax.random.PRNGKey(0)), pp_group, rbm_group, signs,
                                  symmetric_pairs=symmetric)
    except ValueError as err:
        raise ConfigError(f"model.shared_weights: {err}") from None
    label = "shared over the " + ("space group (RBM) and translations" if mc.shared_weights == "space_group"
                                  else "translations")
    return Tied(model, index, label)


def _point_projection(cfg: Config, lat):
    """Group and characters of ``model.symmetry`` for a model whose shared weights make it invariant
    under translations already (k = 0 exactly): the point group alone, or the identity."""
    from ..lattice.symmetry import point_characters, point_group

    sc = cfg.model.symmetry
    if sc.k is not None and any(_parse_angle(v, "model.symmetry.k") != 0 for v in sc.k):
        raise ConfigError("model.symmetry.k: with shared_weights the state has momentum 0; remove k or set it to 0")
    if sc.point_group is None:
        return np.arange(lat.n_sites)[None, :], np.ones(1)
    pg = point_group(lat)
    try:
        return pg, point_characters(pg, sc.point_group)
    except (ValueError, KeyError) as err:
        raise ConfigError(f"model.symmetry.point_group: {err}") from None


def _dbm_model(cfg: Config, lat) -> DeepBoltzmann:
    """The trainable real DBM of ``model.kind = "dbm"`` (:mod:`nqs.drivers.dbm`); resolves n_hidden, n_deep."""
    mc = cfg.model
    if mc.symmetry is not None:
        raise ConfigError("model.symmetry: the DBM driver samples (σ, d, d') jointly and cannot project onto a "
                          "symmetry sector; remove model.symmetry")
    if mc.param_dtype == "complex" and "param_dtype" in mc.model_fields_set:
        raise ConfigError("model.param_dtype: the DBM has real parameters (psi real, the sign from marshall_sign); "
                          "remove param_dtype or set \"real\"")
    if mc.init not in ("auto", "random"):
        raise ConfigError(f"model.init: '{mc.init}' is a start of the pair product; the DBM starts from random "
                          "parameters (remove model.init)")
    sublattice = None
    if mc.marshall_sign:
        if not lat.is_bipartite:
            raise ConfigError(f"model.marshall_sign: the Marshall sign rule needs a bipartite lattice; "
                              f"{lat.describe()} is not")
        sublattice = tuple(int(c) for c in lat.sublattice)
    n_hidden = mc.n_hidden or max(1, round(mc.alpha * lat.n_sites))
    n_deep = mc.n_deep or n_hidden
    mc.n_hidden, mc.n_deep = n_hidden, n_deep  # recorded in the run's config.toml
    return DeepBoltzmann(lat.n_sites, n_hidden, n_deep, init_scale=mc.init_scale, sublattice=sublattice)


def _spin_model(cfg: Config, lat, hil):
    mc = cfg.model
    if mc.param_dtype != "complex" and mc.kind not in ("rbm", "pp", "rbm_pp", "dbm"):
        raise ConfigError(f"model.param_dtype: kind '{mc.kind}' has fixed dtypes; only rbm, pp and rbm_pp take it "
                          "(dbm: \"real\" only)")
    if mc.kind == "dbm":
        return _dbm_model(cfg, lat)
    if mc.kind == "slater":
        raise ConfigError("model.kind: 'slater' is for electron Hamiltonians (kind 'hubbard' or 'file'); "
                          "spin models take \"pp\" or \"rbm_pp\" (Gutzwiller-projected pair product)")
    if mc.kind == "rbm":
        model = RBM(lat.n_sites, alpha=mc.alpha, init_scale=mc.init_scale, param_dtype=mc.param_dtype)
    elif mc.kind == "rbm_real":
        model = RBMRealAmpPhase(lat.n_sites, alpha=mc.alpha, init_scale=mc.init_scale)
    elif mc.kind == "rbm_symmetric":
        if mc.alpha != int(mc.alpha):
            raise ConfigError(f"model.alpha: the symmetric RBM takes an integer number of filters, got {mc.alpha}")
        from ..lattice.symmetry import space_group

        group = space_group(lat) if (mc.symmetry and mc.symmetry.point_group) else lat
        # Without hidden biases the symmetric RBM is even under the global spin flip at Sz = 0 (times
        # (-1)^(sites of sublattice 1) from the Marshall sign): a requested parity equal to that
        # natural one holds exactly, with no sum over ±σ (half the cost of projecting).
        parity = mc.symmetry.spin_parity if mc.symmetry is not None else None
        natural = -1 if (mc.marshall_sign and lat.is_bipartite and int(np.sum(lat.sublattice)) % 2) else 1
        free_parity = parity is not None and parity == natural
        model = SymmetricRBM(group, alpha=int(mc.alpha), init_scale=mc.init_scale, hidden_bias=not free_parity)
    elif mc.kind in ("pp", "rbm_pp"):
        if mc.gutzwiller or mc.jastrow or mc.doublon_holon:
            raise ConfigError("model: the Gutzwiller, charge Jastrow and doublon-holon factors are constant for spins "
                              "(one electron per site); remove them")
        if mc.pairing != "singlet":
            raise ConfigError("model.pairing: spin models take the singlet pair product (one electron per site, "
                              "S^z = 0); remove pairing")
        if hil.total_sz is None or abs(hil.total_sz) > 1e-12:
            raise ConfigError("model.kind: the projected pair product needs total_sz = 0 (exchange sampler)")
        if mc.init == "uhf":
            raise ConfigError("model.init: 'uhf' is for electron Hamiltonians; spins take \"tight_binding\" or "
                              "\"dwave\"")
        try:
            if mc.init == "dwave" and (lat.kind != "square" or not all(lat.pbc)):
                raise ConfigError(f"model.init: the d-wave start needs a periodic square lattice, not {lat.describe()}")
            pairing = dwave_pairing(lat) if mc.init == "dwave" else None
            model = SpinRBMPP(lat.n_sites, alpha=0.0 if mc.kind == "pp" else mc.alpha, init_scale=mc.init_scale,
                              param_dtype=mc.param_dtype, pairing=pairing,
                              init_noise=0.1 if pairing is None else 0.01,  # the d-wave state is fragile
                              hopping=lat if mc.init in ("auto", "tight_binding") else None)
        except ValueError as err:
            raise ConfigError(f"model: {err}") from None
    else:
        model = Jastrow(lat.n_sites, init_scale=mc.init_scale)
    model = _shared(cfg, lat, model)
    if mc.marshall_sign:
        if not lat.is_bipartite:
            raise ConfigError(
                f"model.marshall_sign: the Marshall sign rule needs a bipartite lattice; "
                f"{lat.describe()} is not"
            )
        model = MarshallSign(model, tuple(int(c) for c in lat.sublattice))
    if mc.symmetry is not None and mc.kind != "rbm_symmetric":
        group, chi, parity, _ = symmetry_sector(cfg, lat)
        if parity is not None and (hil.total_sz is None or abs(hil.total_sz) > 1e-12):
            raise ConfigError("model.symmetry.spin_parity: the spin flip needs total_sz = 0")
        if mc.shared_weights is not None:
            group, chi = _point_projection(cfg, lat)
        if mc.symmetry.project == "rbm":
            model = _project_rbm_factor(model, group, chi, parity)
        else:
            model = Projected(model, group, chi, spin_parity=parity)
    elif mc.kind == "rbm_symmetric" and mc.symmetry is not None:
        sc = mc.symmetry
        if (sc.k is not None and any(_parse_angle(v, "model.symmetry.k") != 0 for v in sc.k)) or \
                sc.point_group not in (None, "A1"):
            raise ConfigError("model.symmetry: the symmetric RBM is invariant (k = 0, A1); for other sectors "
                              "project a plain RBM (kind = \"rbm\" with model.symmetry)")
        if sc.spin_parity is not None:
            if hil.total_sz is None or abs(hil.total_sz) > 1e-12:
                raise ConfigError("model.symmetry.spin_parity: the spin flip needs total_sz = 0")
            inner = model.inner if isinstance(model, MarshallSign) else model
            if inner.hidden_bias:  # the other parity: project ψ(σ) + p ψ(−σ)
                model = Projected(model, np.arange(lat.n_sites)[None, :], np.ones(1), spin_parity=sc.spin_parity)
    return model


def _project_rbm_factor(model, group, chi, parity):
    """``model.symmetry.project = "rbm"`` for spins: the RBM factor of the RBM × PP projected (image path),
    the pair product as it is (its own symmetry: tied over translations, or none)."""
    from dataclasses import replace

    from ..models.tied import Tied

    inner = model.inner if isinstance(model, Tied) else model
    if not isinstance(inner, SpinRBMPP) or inner.rbm is None:
        raise ConfigError("model.symmetry.project: \"rbm\" projects the RBM factor of kind = \"rbm_pp\" "
                          "(alpha > 0); use \"state\"")
    perms = np.asarray(group.perms if hasattr(group, "perms") else group)
    try:
        new = replace(inner, rbm_images=perms, rbm_characters=np.asarray(chi), rbm_spin_parity=parity)
    except ValueError as err:
        raise ConfigError(f"model.symmetry: {err}") from None
    return replace(model, inner=new) if isinstance(model, Tied) else new


def _orbits(model, op, hil):
    """For exact enumeration of a projected spin model: one configuration per orbit of its group (and spin
    flip), when the Hamiltonian commutes with every element (checked on the sparse matrix); else None."""
    if not isinstance(model, Projected) or isinstance(hil, SpinfulFermions):
        return None
    from ..sampling.exact import orbit_representatives

    return orbit_representatives(hil, model.permutations, model.spin_parity is not None, op.to_sparse(hil).tocsr())


def build(cfg: Config) -> Problem:
    """Config → lattice, Hilbert space, Hamiltonian, model, sampler, VMC. Raises ConfigError."""
    lat = _build_lattice(cfg)
    hc, sc = cfg.hamiltonian, cfg.sampler
    fermions = hc.kind in FERMION_KINDS
    if fermions:
        op, hil, bonds = _build_fermions(cfg, lat)
        if sc.kind in ("local", "exchange"):
            raise ConfigError(f"sampler.kind: '{sc.kind}' moves are for spins; electrons use kind = \"hop\"")
        model = _fermion_model(cfg, hil, op, bonds if hc.kind != "hubbard" else lat.bonds(1))
    else:
        op, hil = _build_spins(cfg, lat)
        model = _spin_model(cfg, lat, hil)

    dbm = cfg.model.kind == "dbm"
    if dbm:
        _check_dbm_settings(cfg)
    if sc.power != 2 and (sc.kind == "exact" or dbm):
        raise ConfigError("sampler.power: only the Metropolis samplers of kind local, exchange and hop take a power "
                          "other than 2" + (" (the DBM's joint chain samples |psi|^2)" if dbm else
                                            " (exact enumeration weighs every state by |psi|^2)"))
    if sc.kind == "exact":
        if hil.n_states > 2**22:
            raise ConfigError(
                f"sampler.kind: exact enumeration of {hil.n_states} states is too large; use Monte Carlo"
            )
        sampler = ExactSampler(hil, _orbits(model, op, hil))
    else:
        if sc.n_samples < sc.n_chains:
            raise ConfigError(
                f"sampler.n_samples ({sc.n_samples}) must be at least sampler.n_chains ({sc.n_chains})"
            )
        if sc.kind == "hop":
            hop = HopRule(hil.n_sites, bonds)
            rule = HopExchangeRule(hop, SpinExchangeRule(hil.n_sites, bonds), p_exchange=sc.p_exchange) \
                if sc.p_exchange > 0 else hop
        elif sc.kind == "local":
            rule = LocalRule(lat.n_sites)
        else:
            shells = (1, 2) if hc.kind == "j1j2" else (1,)
            pairs = np.concatenate([lat.bonds(s) for s in shells if len(lat.bonds(s))])
            rule = ExchangeRule(tuple(map(tuple, pairs.tolist())))
        if dbm:
            sampler = JointMetropolisSampler(hil, rule, n_chains=sc.n_chains, n_samples=sc.n_samples,
                                             n_discard=sc.n_discard, sweep_size=sc.sweep_size,
                                             deep_samples=cfg.model.deep_samples)
        else:
            sampler = MetropolisSampler(hil, rule, n_chains=sc.n_chains, n_samples=sc.n_samples,
                                        n_discard=sc.n_discard, sweep_size=sc.sweep_size, power=sc.power)
    oc = cfg.optimizer
    if oc.diag_shift_min > oc.diag_shift and oc.diag_shift_decay < 1:
        raise ConfigError("optimizer.diag_shift_min must not exceed optimizer.diag_shift")
    opt = OptimizerConfig(
        kind=oc.kind, learning_rate=oc.learning_rate,
        sr=SRConfig(oc.diag_shift, oc.diag_shift_decay, oc.diag_shift_min, oc.solver, rescale=oc.sr_rescale,
                     rescale_cutoff=oc.sr_rescale_cutoff),
        learning_rate_final=oc.learning_rate_final, n_steps=oc.n_steps,
    )
    if dbm:
        mc = cfg.model
        from .. import parallel

        try:
            vmc = DBMVMC(model, op, sampler, opt, metric=mc.deep_metric, deep_decay=mc.deep_decay,
                         mesh=parallel.chain_mesh() if cfg.parallel.shard and jax.device_count() > 1 else None,
                         threads=cfg.parallel.threads)
        except ValueError as err:
            raise ConfigError(f"sampler/parallel: {err}") from None
        return Problem(cfg, lat, hil, op, vmc)
    from .. import parallel

    pc = cfg.parallel
    mesh = parallel.chain_mesh() if pc.shard and jax.device_count() > 1 else None
    try:
        vmc = VMC(model, op, sampler, opt, chunk_size=oc.chunk_size, precision=oc.precision,
                  memory_limit_mb=oc.memory_limit_mb, mesh=mesh, threads=pc.threads)
    except ValueError as err:
        raise ConfigError(f"optimizer/sampler/parallel: {err}") from None
    return Problem(cfg, lat, hil, op, vmc)


def _threads_note(vmc) -> str:
    """" on N threads" where the chains are sampled by several threads (:attr:`nqs.drivers.vmc.VMC.threads_in_use`)."""
    n = getattr(vmc, "threads_in_use", 1)
    return f" on {n} threads" if n > 1 else ""


def _check_dbm_settings(cfg: Config) -> None:
    """Settings that the DBM driver (:class:`nqs.drivers.dbm.DBMVMC`, one device, float64) does not have."""
    sc, oc = cfg.sampler, cfg.optimizer
    if sc.kind == "exact":
        raise ConfigError("sampler.kind: the DBM's joint (σ, d, d') Markov chain has no exact mode; "
                          "use \"exchange\" or \"local\"")
    if oc.precision != "float64":
        raise ConfigError("optimizer.precision: the DBM driver runs in float64 only; remove optimizer.precision")
    if oc.chunk_size is not None:
        raise ConfigError("optimizer.chunk_size: the DBM driver evaluates all samples at once; remove "
                          "optimizer.chunk_size")
    if oc.sr_rescale:
        raise ConfigError("optimizer.sr_rescale: scale-invariant SR is not available for the DBM; remove it")
    if cfg.parallel.distributed:
        raise ConfigError("parallel.distributed: the DBM driver runs on one device; set distributed = false")


def join_processes(cfg: Config) -> bool:
    """``[parallel] distributed = true``: join the jax.distributed run (before any JAX work)."""
    from .. import parallel

    pc = cfg.parallel
    if not pc.distributed:
        return False
    try:
        return parallel.initialize(pc.coordinator, pc.num_processes, auto=True)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"parallel: {err}") from None


def _boundary_label(cfg: Config, lat) -> str | None:
    if not all(lat.pbc):
        return None
    b = cfg.hamiltonian.boundary
    if b is None or (isinstance(b, str) and b.strip().lower() == "periodic") or \
            (isinstance(b, list) and all(str(x).strip().lower() == "periodic" for x in b)):
        return "periodic"
    return None


def exact_reference(problem: Problem, k: int = 1) -> tuple[list[float] | None, str | None]:
    """Lowest exact energies when available: ED (in the model's symmetry sector when it has one),
    free fermions for the TFIM chain, or a tabulated reference (:mod:`nqs.reference`)."""
    cfg, lat = problem.config, problem.lattice
    hc = cfg.hamiltonian
    if cfg.model.symmetry is not None and not problem.fermions and _needs_sector(cfg):
        from ..lattice.symmetry import sector_energies

        group, chi, parity, label = symmetry_sector(cfg, lat)
        sc = cfg.model.symmetry
        kv = [0.0] * lat.ndim if sc.k is None else [_parse_angle(v, "model.symmetry.k") for v in sc.k]
        if problem.hilbert.n_states <= SECTOR_ED_STATES:
            levels = sector_energies(problem.hamiltonian, lat, problem.hilbert, kv, sc.point_group, parity,
                                     n_levels=k)
            if len(levels) == 0:
                raise ConfigError(f"model.symmetry: the sector ({label}) is empty for {problem.hilbert.describe()}")
            return [float(x) for x in levels], f"ED in the sector {label}"
        return None, None
    if problem.hilbert.n_states <= exact_mod.MAX_ED_STATES:
        return [float(x) for x in exact_mod.lowest_energies(problem.hamiltonian, problem.hilbert, k)], "ED"
    if hc.kind == "ising" and lat.kind == "chain" and all(lat.pbc) and k == 1:
        if hc.J >= 0 or lat.n_sites % 2 == 0:
            return [exact_mod.tfim_chain_energy(lat.n_sites, hc.J, hc.h)], "free fermions"
    boundary = _boundary_label(cfg, lat)
    if k == 1 and boundary and hc.kind != "file":
        params = {n: getattr(hc, n) for n in ("J", "h", "Delta", "J1", "J2", "t", "U", "t2", "V")}
        if problem.fermions:
            params |= {"n_up": problem.hilbert.n_up, "n_down": problem.hilbert.n_down}
        ref = reference_energy(hc.kind, lat.kind, lat.size, boundary, params)
        if ref is not None:
            return [ref[0]], ref[1]
    return None, None


#: Largest Hilbert-space sector for which the symmetry-sector ED (dense per sector) is attempted.
SECTOR_ED_STATES = 200_000


def _needs_sector(cfg: Config) -> bool:
    """Whether model.symmetry restricts to a sector that need not hold the ground state."""
    return cfg.model.symmetry is not None


def sector_table(problem: Problem, point_group: bool = False, spin_flip: bool = False,
                 n_levels: int = 1) -> list[dict]:
    """Lowest ``n_levels`` energies in every symmetry sector (momentum; with ``point_group`` the
    irreps of each little group; with ``spin_flip`` the spin parity), by dense diagonalization of the
    symmetrized blocks.  Rows ``{k, k_label, irrep, spin_parity, energies}`` sorted by lowest energy."""
    from ..lattice.symmetry import sector_energies, symmetry_sectors

    if problem.fermions:
        raise ConfigError("nqs ed --sectors: symmetry sectors are implemented for spin models")
    if problem.hilbert.n_states > SECTOR_ED_STATES:
        raise ConfigError(f"nqs ed --sectors: {problem.hilbert.describe()} is too large for the dense "
                          f"sector diagonalization (limit {SECTOR_ED_STATES} states)")
    if spin_flip and (problem.hilbert.total_sz is None or abs(problem.hilbert.total_sz) > 1e-12):
        raise ConfigError("nqs ed --spin-flip: the spin flip needs total_sz = 0")
    lat = problem.lattice
    momenta = lat.momenta()
    rows = []
    for ik, irrep, parity in symmetry_sectors(lat, point=None if point_group else False, spin_flip=spin_flip):
        e = sector_energies(problem.hamiltonian, lat, problem.hilbert, ik, irrep, parity, n_levels=n_levels)
        if len(e) == 0:
            continue
        rows.append({"k": np.asarray(momenta[ik]).tolist(), "k_label": _k_label(momenta[ik]), "irrep": irrep,
                     "spin_parity": parity, "energies": [float(x) for x in e]})
    rows.sort(key=lambda r: r["energies"][0])
    return rows


def _stats_dict(s) -> dict:
    return {"mean": float(jnp.real(s.mean)), "error": float(s.error), "variance": float(s.variance),
            "tau_corr": float(s.tau_corr), "r_hat": float(s.r_hat)}


def spin_samples(problem: Problem, samples):
    """σ_i = 2 S^z_i per site: the samples themselves for spins, n_i↑ − n_i↓ for electrons."""
    if problem.fermions:
        L = problem.hilbert.n_sites
        return samples[..., :L].astype(jnp.int8) - samples[..., L:].astype(jnp.int8)
    return samples


def _power_note(cfg: Config) -> str:
    p = cfg.sampler.power
    return "" if p == 2 else f" (samples |psi|^{p:g}, reweighted by |psi|^{2 - p:g})"


def evaluate(problem: Problem, params, sampler_state, n_samples: int | None):
    """Final estimate of E, Var E, S(q) and ⟨SᶻSᶻ⟩ with frozen parameters.

    Returns ``(stats, sq_stats, zz_stats, sq_samples, weights, sampler_state)``; the per-sample
    S(q) values feed :func:`correlation_ratio`.
    """
    vmc = problem.vmc.for_evaluation(n_samples)
    lat = problem.lattice

    @jax.jit
    def correlations(samples):
        sigma = spin_samples(problem, samples)
        sq = structure_factor_samples(sigma, lat.positions, lat.momenta())
        zz = sigma[..., :1].astype(jnp.float64) * sigma.astype(jnp.float64) / 4
        return sq, zz

    samples, weights, _, stats, sstate = vmc.make_estimate()(params, sampler_state)  # on the step's threads
    sq, zz = correlations(samples)
    mcmc = not vmc.sampler.exact
    sq_stats = [statistics(sq[..., i], weights, mcmc) for i in range(sq.shape[-1])]
    zz_stats = [statistics(zz[..., j], weights, mcmc) for j in range(zz.shape[-1])]
    return stats, sq_stats, zz_stats, sq, weights, sstate


def lanczos_evaluate(problem: Problem, params, sampler_state, n_samples: int | None, power: float = 1.0,
                     chunk_size: int = 64):
    """One Lanczos step on the final state (:func:`nqs.estimators.lanczos_step`) from ``n_samples`` fresh
    samples of |ψ|^``power`` (Markov chains; reweighted): returns the step's dict with ``n_samples``,
    ``lost_terms`` (connected configurations where ψ = 0, left out) and ``seconds`` added."""
    vmc = problem.vmc.for_evaluation(n_samples)
    if not vmc.sampler.exact:
        vmc = replace(vmc, sampler=replace(vmc.sampler, power=power))
    t0 = time.perf_counter()

    @jax.jit
    def go(params, sstate):
        samples, weights, _ = vmc.sampler.sample(vmc.model, params, sstate)
        flat = samples.reshape(-1, samples.shape[-1])
        e, h2, lost = estimators.local_energies_h2(vmc.model, params, problem.hamiltonian, flat,
                                                   min(chunk_size, flat.shape[0]))
        return e, h2, jnp.sum(lost), weights

    from ..parallel import to_host

    e, h2, lost, w = go(params, sampler_state)
    e, h2 = to_host(e), to_host(h2)  # every process's samples (several processes: gathered)
    out = estimators.lanczos_step(e, h2, None if w is None else to_host(w).reshape(-1))
    return {**out, "n_samples": int(e.size), "lost_terms": int(to_host(lost)), "seconds": time.perf_counter() - t0}


def correlation_ratio(lattice, sq_samples, weights=None, mcmc: bool = False) -> dict | None:
    """R = 1 − S(Q + δq)/S(Q) with Q the maximum of S(q) and δq the smallest momentum step
    (along the first periodic direction), with an error bar by linearization:
    the per-sample z = (s₁ − R′ s₀)/S(Q), R′ = S(Q+δq)/S(Q), has mean 0 and error = error of R.

    Returns None when the lattice has a single momentum (no δq)."""
    q = np.asarray(lattice.momenta())
    means = np.asarray([float(jnp.real(statistics(sq_samples[..., i], weights, mcmc).mean)) for i in range(len(q))])
    if len(q) < 2:
        return None
    iq = int(np.argmax(means))
    step = None
    for j, (L, p) in enumerate(zip(lattice.size, lattice.pbc, strict=True)):
        if p and L > 1:
            step = np.asarray(lattice.reciprocal_vectors())[j] / L
            break
    if step is None:
        return None
    target = q[iq] + step
    recip = np.asarray(lattice.reciprocal_vectors())
    # nearest momentum to Q + δq modulo reciprocal lattice vectors
    best, best_d = None, np.inf
    for i, qq in enumerate(q):
        d = target - qq
        c = np.linalg.solve(recip.T, d) if recip.shape[0] == recip.shape[1] else d / recip[0]
        if np.allclose(c, np.rint(c), atol=1e-8):
            best, best_d = i, 0.0
            break
        dist = np.linalg.norm(d)
        if dist < best_d:
            best, best_d = i, dist
    s0 = jnp.real(sq_samples[..., iq])
    s1 = jnp.real(sq_samples[..., best])
    S0, S1 = means[iq], means[best]
    if S0 <= 0:
        return None
    ratio = S1 / S0
    z = (s1 - ratio * s0) / S0
    err = float(statistics(z, weights, mcmc).error)
    return {"value": 1.0 - ratio, "error": err, "Q": q[iq].tolist(), "Q_plus_dq": q[best].tolist(),
            "S_Q": S0}


def solve(cfg: Config, resume: bool = False, progress: bool = True, console=None) -> dict:
    """Run VMC for ``cfg`` into ``cfg.output.dir`` and return the result dictionary."""
    from rich.console import Console

    from .. import parallel

    join_processes(cfg)
    main = parallel.is_main_process()
    console = console or Console(stderr=True)
    if not main:
        console, progress = Console(stderr=True, quiet=True), False
    t_start = time.perf_counter()
    problem = build(cfg)
    vmc, units = problem.vmc, problem.units
    out = Path(cfg.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT
    resolved = cfg.resolved()

    state = vmc.init(jax.random.PRNGKey(cfg.seed))
    start = 0
    if resume:
        if not ckpt.exists():
            raise ConfigError(f"--resume: no checkpoint in {out}; run without --resume first")
        saved = out / "config.toml"
        if saved.exists():
            import tomllib

            old = tomllib.loads(saved.read_text())
            mismatched = [k for k in ("seed", "lattice", "hamiltonian", "model", "sampler")
                          if json.dumps(_drop_none(old.get(k)), sort_keys=True)
                          != json.dumps(_drop_none(resolved.get(k)), sort_keys=True)]
            if mismatched:
                raise ConfigError(
                    f"--resume: the config differs from the run in {out} in [{', '.join(mismatched)}]; "
                    "resume with the same config or choose another output.dir"
                )
        state, meta = io.load_checkpoint(ckpt, state)
        start = int(state.step)
        console.print(f"resuming from step {start} ({ckpt})")
    if main:
        io.write_toml(out / "config.toml", resolved)

    n_sites, n_params = problem.lattice.n_sites, vmc.n_parameters(state)
    solver = vmc.solver(state)
    console.print(
        f"[bold]nqs[/bold] {cfg.hamiltonian.kind} on {problem.lattice.describe()}; "
        f"{problem.hilbert.describe()}\n  model: {vmc.model.describe()}, {n_params} parameters; "
        f"sampler: {cfg.sampler.kind}{_power_note(cfg)}{_threads_note(vmc)}; "
        f"optimizer: {cfg.optimizer.kind} (solver: {solver})\n"
        f"  units: {units}"
    )
    if cfg.model.kind == "dbm" and (jax.device_count() > 1 or "memory_limit_mb" in cfg.optimizer.model_fields_set):
        console.print(f"  note: the DBM driver runs on one device (of {jax.device_count()}) and evaluates all samples "
                      "in one batch; [parallel] shard and optimizer.memory_limit_mb do not apply to it")
    exact_e, exact_method = exact_reference(problem)
    e0 = exact_e[0] if exact_e else None
    if e0 is not None:
        console.print(f"  exact energy ({exact_method}): {e0:.10f}")

    history = io.History(out / "history.csv", resume_from=start if resume else None, write=main)
    step_fn = vmc.make_step(solver)
    every = cfg.output.checkpoint_every
    meta = {"n_parameters": n_params}
    n_steps = cfg.optimizer.n_steps
    averager = ParameterAverage(out / "params_average.npz", n_steps - cfg.optimizer.average_last, n_steps,
                                state.params, start if resume else None, write=main)

    if averager.note:
        console.print(f"  note: {averager.note}")

    def save(st):
        io.save_checkpoint(ckpt, st, {**meta, "step": int(st.step)})
        averager.save(int(st.step))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=not progress)
    times: list[float] = []
    with prog:
        task = prog.add_task("VMC", total=n_steps, completed=start)

        def callback(st, info, dt):
            s = info["energy"]
            k = int(st.step)
            e = float(jnp.real(s.mean))
            history.append({
                "step": k - 1, "energy": e, "energy_error": float(s.error),
                "variance": float(s.variance), "r_hat": float(s.r_hat), "tau_corr": float(s.tau_corr),
                "acceptance": float(info["acceptance"]), "diag_shift": float(info["diag_shift"]),
                "grad_norm": float(info["grad_norm"]), "seconds": dt,
            })
            times.append(dt)
            averager.add(k, st.params)
            rel = f"  rel.err {abs(e - e0) / abs(e0):.2e}" if e0 else ""
            prog.update(task, completed=k, description=f"E = {e:.6f} ± {float(s.error):.6f}{rel}")
            if k % every == 0 or k == n_steps:
                save(st)

        try:
            state = run(vmc, state, n_steps, callback=callback, step_fn=step_fn)
        except NonFiniteError as err:
            save(err.state)
            raise ConfigError(
                f"{err} — stopped; the last good state (step {err.step}) is saved in {ckpt}. "
                "Lower optimizer.learning_rate or raise optimizer.diag_shift, then rerun with --resume."
            ) from None
    save(state)

    n_eval = cfg.sampler.n_samples_eval or 8 * cfg.sampler.n_samples
    final_params = averager.mean(state.params)
    if averager.count:
        console.print(f"  final parameters: the mean over the last {averager.count} steps")
    stats, sq_stats, zz_stats, sq, sq_w, eval_sstate = evaluate(problem, final_params, state.sampler_state, n_eval)
    e_inf = problem.energy_at_infinite_temperature()
    energy = float(jnp.real(stats.mean))
    var = float(stats.variance)
    v_score = problem.n_particles * var / (energy - e_inf) ** 2 if energy != e_inf else math.inf
    ratio = correlation_ratio(problem.lattice, sq, sq_w, mcmc=not problem.vmc.sampler.exact)
    compiled = times[1:] if len(times) > 1 else times
    result = {
        "energy": {"mean": energy, "error": float(stats.error), "variance": var,
                   "per_site": energy / n_sites, "tau_corr": float(stats.tau_corr),
                   "r_hat": float(stats.r_hat), "n_samples": int(n_eval)},
        "v_score": v_score,
        "e_inf": e_inf,
        "exact_energy": e0,
        "exact_method": exact_method,
        "relative_error": abs(energy - e0) / abs(e0) if e0 else None,
        "n_sites": n_sites,
        "n_parameters": n_params,
        "units": units,
        "hamiltonian": cfg.hamiltonian.kind,
        "lattice": problem.lattice.describe(),
        "model": vmc.model.describe(),
        "estimator": vmc.estimator_info(),
        "solver": solver,
        "n_steps": int(state.step),
        "params_averaged_over": averager.count,
        "seconds_total": time.perf_counter() - t_start,
        "seconds_per_step": float(np.median(compiled)) if compiled else None,
        "seconds_first_step": times[0] if times else None,
        "structure_factor": {
            "q": np.asarray(problem.lattice.momenta()).tolist(),
            "value": [float(jnp.real(s.mean)) for s in sq_stats],
            "error": [float(s.error) for s in sq_stats],
        },
        "correlation_ratio": ratio,
        "sz_sz_from_site0": {
            "value": [float(jnp.real(s.mean)) for s in zz_stats],
            "error": [float(s.error) for s in zz_stats],
        },
    }
    if cfg.evaluation.lanczos_step:
        ls = lanczos_evaluate(problem, final_params, eval_sstate, cfg.evaluation.lanczos_samples or n_eval,
                              cfg.evaluation.lanczos_power)
        ls["power"] = cfg.evaluation.lanczos_power
        # also: the step's gain (E₁ − E of ψ on its own samples) added to the final evaluation's E of ψ.  The
        # energy on the step's samples alone is the one quoted: tail events move its two parts in opposite
        # directions (on the 4×4 Hubbard model its error was the smaller one)
        ls["energy_combined"] = energy + ls["gain"]
        ls["error_combined"] = math.hypot(float(stats.error), ls["gain_error"])
        ls["relative_error"] = abs(ls["energy"] - e0) / abs(e0) if e0 else None
        result["lanczos_step"] = ls
        result["seconds_total"] = time.perf_counter() - t_start
    if not main:
        return result
    io.write_json(out / "result.json", result)
    io.plot_convergence(history.rows, out / "convergence.png", exact=e0,
                        title=f"{cfg.hamiltonian.kind}, {problem.lattice.describe()}",
                          units=units_short(cfg.hamiltonian.kind))
    return result


class ParameterAverage:
    """Running sum of the parameters after steps ``first+1 … last`` (step k = the state after k
    updates), kept in ``path`` beside the checkpoint so that a resumed run averages the same steps."""

    def __init__(self, path: Path, first: int, last: int, template, resume_from: int | None, write: bool = True):
        self.path, self.first, self.last, self.write = Path(path), first, last, write
        self.total = jax.tree_util.tree_map(jnp.zeros_like, template)
        self.count = 0
        self.note = None
        if first >= last or resume_from is None or resume_from <= first:
            return
        saved = None
        if self.path.exists():
            with np.load(self.path) as data:
                n_leaves = len(jax.tree_util.tree_leaves(template))
                saved = (int(data["step"]), int(data["first"]), int(data["count"]),
                         [jnp.asarray(data[f"leaf_{i}"]) for i in range(n_leaves)])
        if saved is not None and saved[0] == resume_from and saved[1] == first:
            self.count = saved[2]
            self.total = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), saved[3])
        else:  # window moved (n_steps or average_last changed) or no saved sum: average from here on
            self.first = resume_from
            self.note = (f"the parameter average restarts at step {resume_from} (the averaging window of the "
                         "interrupted run differs or its sum is missing)")

    def add(self, step: int, params) -> None:
        if self.first < step <= self.last:
            self.total = jax.tree_util.tree_map(jnp.add, self.total, params)
            self.count += 1

    def save(self, step: int) -> None:
        if self.first >= self.last or step <= self.first:
            return
        from ..parallel import to_host

        arrays = {f"leaf_{i}": to_host(x) for i, x in enumerate(jax.tree_util.tree_leaves(self.total))}
        if self.write:
            io.atomic_write(self.path, lambda f: np.savez(f, step=step, first=self.first, count=self.count, **arrays))

    def mean(self, params):
        """The averaged parameters (``params`` when nothing was averaged)."""
        if not self.count:
            return params
        return jax.tree_util.tree_map(lambda t, p: (t / self.count).astype(p.dtype), self.total, params)


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def imaginary_time(cfg: Config, console=None) -> dict:
    """Energies of the exactly constructed DBM e^{−nδτH}ψ0 for n = 1…n_steps (TFIM from |+…+⟩,
    Heisenberg from Néel), beside ⟨H⟩ of the exact e^{−τH}ψ0 and E0 when the lattice is small.

    Writes ``imaginary_time.json`` and ``imaginary_time.png`` into ``output.dir``.
    """
    from .. import imaginary_time as it

    hc, ic = cfg.hamiltonian, cfg.imaginary_time
    if hc.kind not in ("ising", "heisenberg"):
        raise ConfigError(f"hamiltonian.kind: the exact DBM construction exists for 'ising' and 'heisenberg', "
                          f"not '{hc.kind}'")
    if hc.total_sz is not None:
        raise ConfigError("hamiltonian.total_sz: the imaginary-time construction works in the full spin space; "
                          "remove total_sz")
    try:
        lat = make_lattice(cfg.lattice.kind, cfg.lattice.size, cfg.lattice.pbc)
    except ValueError as err:
        raise ConfigError(f"lattice: {err}") from None
    n = lat.n_sites
    if hc.kind == "ising":
        if hc.h == 0:
            raise ConfigError("hamiltonian.h: the construction needs a transverse field h != 0")
        op = hamiltonians.ising(lat, hc.J, hc.h)
    else:
        if not lat.is_bipartite:
            raise ConfigError("lattice: the Heisenberg construction starts from the Néel state and needs a "
                              "bipartite lattice")
        op = hamiltonians.heisenberg(lat, hc.J)
    method = ic.method if ic.method != "auto" else ("exact" if n <= 12 else "mc")
    hil = SpinHilbert(n)
    e_tau, e0 = None, None
    if n <= 14:
        if hc.kind == "ising":
            vec0 = np.ones(2**n)
        else:
            vec0 = np.zeros(2**n)
            vec0[int(hil.states_to_codes(it.neel_state(lat)[None, :])[0])] = 1.0
        e_tau = it.exact_tau_energy(op, vec0, [k * ic.dtau for k in range(1, ic.n_steps + 1)])
    if hil.n_states <= exact_mod.MAX_ED_STATES or (hc.kind == "heisenberg" and n <= 24):
        sector = hil if hc.kind == "ising" else SpinHilbert(n, 0.0 if n % 2 == 0 else 0.5)
        e0 = float(exact_mod.lowest_energies(op, sector)[0])
    elif hc.kind == "ising" and lat.kind == "chain" and all(lat.pbc):
        e0 = exact_mod.tfim_chain_energy(n, hc.J, hc.h)
    key = jax.random.PRNGKey(cfg.seed)
    rows = []
    for k in range(1, ic.n_steps + 1):
        if hc.kind == "ising":
            dbm, params = it.tfim_dbm(lat, hc.J, hc.h, ic.dtau, k)
        else:
            dbm, params = it.heisenberg_dbm(lat, hc.J, ic.dtau, k)
        if method == "exact":
            e, err = it.exact_energy(dbm, params, op, hil), 0.0
        else:
            if hc.kind == "heisenberg":
                raise ConfigError("imaginary_time.method: Monte Carlo of the Heisenberg DBM needs loop moves "
                                  "(not available yet); use method = \"exact\" on a small lattice")
            key, sub = jax.random.split(key)
            st = it.mc_energy(dbm, params, op, sub, n_chains=ic.n_chains, n_sweeps=ic.n_sweeps,
                              n_discard=ic.n_discard)
            e, err = float(jnp.real(st.mean)), float(st.error)
        row = {"n": k, "tau": k * ic.dtau, "e_dbm": e, "e_dbm_error": err,
               "e_exact_tau": None if e_tau is None else float(e_tau[k - 1]), "e0": e0,
               "n_hidden": dbm.n_hidden, "n_deep": dbm.n_deep}
        rows.append(row)
        if console is not None:
            ex = "" if row["e_exact_tau"] is None else f"   exact <H>(tau) {row['e_exact_tau']:.6f}"
            console.print(f"tau = {row['tau']:.3f}  E_DBM = {e:.6f} ± {err:.6f}{ex}   "
                          f"({dbm.n_hidden} hidden, {dbm.n_deep} deep units)")
    out = Path(cfg.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"hamiltonian": hc.kind, "lattice": lat.describe(), "units": units_for(hc.kind), "method": method,
              "dtau": ic.dtau, "e0": e0, "rows": rows}
    io.write_json(out / "imaginary_time.json", result)
    _plot_imaginary_time(rows, e0, out / "imaginary_time.png", f"{hc.kind}, {lat.describe()}, δτ = {ic.dtau:g}",
                         units_short(hc.kind))
    return result


def _plot_imaginary_time(rows, e0, path, title, units):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tau = [r["tau"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(tau, [r["e_dbm"] for r in rows], yerr=[r["e_dbm_error"] for r in rows], fmt="o-", ms=4,
                label="constructed DBM (Trotterized)")
    if rows and rows[0]["e_exact_tau"] is not None:
        ax.plot(tau, [r["e_exact_tau"] for r in rows], "s--", ms=4,
                label=r"ED: $\langle H\rangle$ of $e^{-\tau H}\psi_0$")
    if e0 is not None:
        ax.axhline(e0, color="k", lw=1, ls=":", label=f"E0 = {e0:.6f}")
    ax.set_xlabel(r"$\tau$")
    ax.set_ylabel(f"energy ({units} units)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
