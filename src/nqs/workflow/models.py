"""The ``[model]`` section: the wave function a config describes, with its symmetries, shared weights and signs."""

from __future__ import annotations

import jax
import numpy as np

from ..config import Config, ConfigError
from ..hilbert import SpinfulFermions
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
from ..models.pair_product import neighbour_table
from ..models.rbm_pp import dwave_pairing
from .lattice import boundary_label, build_lattice, parse_angle, symmetry_sector


def fermion_model(cfg: Config, hil, op, neighbour_bonds=None):
    """``neighbour_bonds``: the nearest-neighbour pairs of the doublon–holon factor (the lattice's for the
    Hubbard model, the hopping pairs of a file Hamiltonian)."""
    mc = cfg.model
    L, nu, nd = hil.n_sites, hil.n_up, hil.n_down
    if mc.kind not in ("slater", "pp", "rbm_pp"):
        raise ConfigError(
            f'model.kind: \'{mc.kind}\' carries no fermion sign; electron Hamiltonians take "slater", "pp" or "rbm_pp"'
        )
    if mc.marshall_sign:
        raise ConfigError("model.marshall_sign: the Marshall sign is for spin models; remove it")
    rbm_images = rbm_chars = images = None
    if mc.symmetry is not None:
        images, chars = _fermion_projection(cfg, L, hil)
        if mc.symmetry.project == "rbm":
            rbm_images, rbm_chars = images, chars
    if mc.init == "dwave":
        raise ConfigError(
            "model.init: 'dwave' is the d-wave RVB start of the spin pair product; electrons take "
            '"tight_binding" or "uhf"'
        )
    hopping = op if mc.init in ("auto", "tight_binding") else None
    if mc.init == "uhf":
        from ..models.slater import unrestricted_hartree_fock

        lat = build_lattice(cfg)
        guess = (1 - 2 * np.asarray(lat.sublattice, dtype=float)) if lat.is_bipartite else None
        hopping, _ = unrestricted_hartree_fock(op, L, nu, nd, seed=cfg.seed, guess=guess)
    try:
        dh = neighbour_table(neighbour_bonds, L) if mc.doublon_holon else None
        if mc.kind == "slater":
            model = Slater(L, nu, nd, param_dtype=mc.param_dtype, hopping=hopping)
        elif (mc.kind == "pp" or (mc.kind == "rbm_pp" and mc.alpha == 0)) and mc.pairing == "general":
            from ..models.pfaffian import PfaffianPP

            model = PfaffianPP(
                L,
                nu,
                nd,
                gutzwiller=mc.gutzwiller,
                param_dtype=mc.param_dtype,
                hopping=hopping,
                spin_points=mc.spin_projection,
            )
        elif mc.kind == "pp" or (mc.kind == "rbm_pp" and mc.alpha == 0):
            model = PairProduct(
                L,
                nu,
                nd,
                gutzwiller=mc.gutzwiller,
                param_dtype=mc.param_dtype,
                hopping=hopping,
                jastrow=mc.jastrow,
                doublon_holon=dh,
            )
        else:
            model = RBMPP(
                L,
                nu,
                nd,
                alpha=mc.alpha,
                init_scale=mc.init_scale,
                gutzwiller=mc.gutzwiller,
                param_dtype=mc.param_dtype,
                hopping=hopping,
                jastrow=mc.jastrow,
                rbm_images=rbm_images,
                rbm_characters=rbm_chars,
                doublon_holon=dh,
                pairing=mc.pairing,
                spin_points=mc.spin_projection,
            )
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None
    model = _shared(cfg, build_lattice(cfg), model, fermions=True)
    if images is not None and rbm_images is None:
        from ..models.symmetric import FermionProjected

        model = FermionProjected(model, images, chars, nu + nd)
    return model


def _fermion_projection(cfg: Config, n_sites: int, hil):
    """``model.symmetry`` for electrons: the images (point group, and ↑↔↓ with ``spin_parity``) as permutations
    of the 2L orbitals, and their characters.  With shared translations the state has momentum 0 already.

    * ``project = "state"`` (default): the whole state is projected with the fermion reordering signs
      (:class:`~nqs.models.symmetric.FermionProjected`; every image pays the inner model's fast path);
    * ``project = "rbm"`` (rbm_pp): the RBM factor alone, through its image path, while the pair function is
      tied over the whole space group (f(Rr) = f(r), symmetric f: a singlet) — exact, since then
      ``Σ_g χ_g (U_g ψ)(x) = ψ_PP(x) Σ_g χ_g ψ_RBM(g x)``, but an invariant f excludes d-wave-like pairing."""
    from ..lattice import point_characters, point_group

    mc, sc = cfg.model, cfg.model.symmetry
    if sc.project == "rbm" and (mc.kind != "rbm_pp" or mc.alpha == 0):
        raise ConfigError(
            'model.symmetry.project: "rbm" projects the RBM factor of kind = "rbm_pp" (alpha > 0); use "state"'
        )
    if mc.shared_weights is None:
        raise ConfigError(
            "model.symmetry: projecting an electron model needs model.shared_weights = "
            '"translation" (momentum 0 exactly; the projection then sums the point group)'
        )
    if sc.k is not None and any(parse_angle(v, "model.symmetry.k") != 0 for v in sc.k):
        raise ConfigError("model.symmetry.k: with shared_weights the state has momentum 0; remove k or set it to 0")
    lat = build_lattice(cfg)
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


def _shared(cfg: Config, lat, model, fermions: bool = False):
    """``model`` with its parameters shared over the lattice symmetries of ``model.shared_weights``."""
    mc = cfg.model
    if mc.shared_weights is None:
        return model
    from ..lattice import space_group, translation_group
    from ..models.tied import Tied, antiperiodic_signs, translation_tying

    if not all(lat.pbc):
        raise ConfigError(
            f"model.shared_weights: {lat.describe()} has open directions; sharing parameters over "
            "translations needs a periodic lattice"
        )
    if fermions and (cfg.hamiltonian.kind != "hubbard" or boundary_label(cfg, lat) != "periodic"):
        raise ConfigError(
            "model.shared_weights: sharing parameters over translations needs a translation-"
            'invariant Hamiltonian: kind = "hubbard" with periodic boundaries'
        )
    trans = translation_group(lat)
    rbm_group = space_group(lat) if mc.shared_weights == "space_group" else trans
    # projected electron RBM+PP: the pair function must be invariant under every projected operation
    pp_group = space_group(lat) if (fermions and mc.symmetry is not None and mc.symmetry.project == "rbm") else trans
    try:
        # the d-wave pair function lives on a k grid antiperiodic along x: f(Ti, Tj) = ±f(i, j)
        signs = antiperiodic_signs(lat, trans, 0) if (mc.init == "dwave" and not fermions) else None
        symmetric = (
            fermions
            and mc.symmetry is not None
            and mc.symmetry.project == "rbm"
            and mc.symmetry.spin_parity is not None
        )
        index = translation_tying(
            model.init(jax.random.PRNGKey(0)), pp_group, rbm_group, signs, symmetric_pairs=symmetric
        )
    except ValueError as err:
        raise ConfigError(f"model.shared_weights: {err}") from None
    label = "shared over the " + (
        "space group (RBM) and translations" if mc.shared_weights == "space_group" else "translations"
    )
    return Tied(model, index, label)


def _point_projection(cfg: Config, lat):
    """Group and characters of ``model.symmetry`` for a model whose shared weights make it invariant
    under translations already (k = 0 exactly): the point group alone, or the identity."""
    from ..lattice import point_characters, point_group

    sc = cfg.model.symmetry
    if sc.k is not None and any(parse_angle(v, "model.symmetry.k") != 0 for v in sc.k):
        raise ConfigError("model.symmetry.k: with shared_weights the state has momentum 0; remove k or set it to 0")
    if sc.point_group is None:
        return np.arange(lat.n_sites)[None, :], np.ones(1)
    pg = point_group(lat)
    try:
        return pg, point_characters(pg, sc.point_group)
    except (ValueError, KeyError) as err:
        raise ConfigError(f"model.symmetry.point_group: {err}") from None


def dbm_model(cfg: Config, lat) -> DeepBoltzmann:
    """The trainable real DBM of ``model.kind = "dbm"`` (n_hidden = α N and n_deep = n_hidden unless given)."""
    mc = cfg.model
    if mc.symmetry is not None:
        raise ConfigError(
            "model.symmetry: the DBM driver samples (σ, d, d') jointly and cannot project onto a "
            "symmetry sector; remove model.symmetry"
        )
    if mc.param_dtype == "complex" and "param_dtype" in mc.model_fields_set:
        raise ConfigError(
            "model.param_dtype: the DBM has real parameters (psi real, the sign from marshall_sign); "
            'remove param_dtype or set "real"'
        )
    if mc.init not in ("auto", "random"):
        raise ConfigError(
            f"model.init: '{mc.init}' is a start of the pair product; the DBM starts from random "
            "parameters (remove model.init)"
        )
    sublattice = None
    if mc.marshall_sign:
        if not lat.is_bipartite:
            raise ConfigError(
                f"model.marshall_sign: the Marshall sign rule needs a bipartite lattice; {lat.describe()} is not"
            )
        sublattice = tuple(int(c) for c in lat.sublattice)
    n_hidden = mc.n_hidden or max(1, round(mc.alpha * lat.n_sites))
    n_deep = mc.n_deep or n_hidden
    return DeepBoltzmann(lat.n_sites, n_hidden, n_deep, init_scale=mc.init_scale, sublattice=sublattice)


def spin_model(cfg: Config, lat, hil):
    mc = cfg.model
    if mc.param_dtype != "complex" and mc.kind not in ("rbm", "pp", "rbm_pp", "dbm"):
        raise ConfigError(
            f"model.param_dtype: kind '{mc.kind}' has fixed dtypes; only rbm, pp and rbm_pp take it "
            '(dbm: "real" only)'
        )
    if mc.kind == "dbm":
        return dbm_model(cfg, lat)
    if mc.kind == "slater":
        raise ConfigError(
            "model.kind: 'slater' is for electron Hamiltonians (kind 'hubbard' or 'file'); "
            'spin models take "pp" or "rbm_pp" (Gutzwiller-projected pair product)'
        )
    if mc.kind == "rbm":
        model = RBM(lat.n_sites, alpha=mc.alpha, init_scale=mc.init_scale, param_dtype=mc.param_dtype)
    elif mc.kind == "rbm_real":
        model = RBMRealAmpPhase(lat.n_sites, alpha=mc.alpha, init_scale=mc.init_scale)
    elif mc.kind == "rbm_symmetric":
        if mc.alpha != int(mc.alpha):
            raise ConfigError(f"model.alpha: the symmetric RBM takes an integer number of filters, got {mc.alpha}")
        from ..lattice import space_group

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
            raise ConfigError(
                "model: the Gutzwiller, charge Jastrow and doublon-holon factors are constant for spins "
                "(one electron per site); remove them"
            )
        if mc.pairing != "singlet":
            raise ConfigError(
                "model.pairing: spin models take the singlet pair product (one electron per site, "
                "S^z = 0); remove pairing"
            )
        if hil.total_sz is None or abs(hil.total_sz) > 1e-12:
            raise ConfigError("model.kind: the projected pair product needs total_sz = 0 (exchange sampler)")
        if mc.init == "uhf":
            raise ConfigError('model.init: \'uhf\' is for electron Hamiltonians; spins take "tight_binding" or "dwave"')
        try:
            if mc.init == "dwave" and (lat.kind != "square" or not all(lat.pbc)):
                raise ConfigError(f"model.init: the d-wave start needs a periodic square lattice, not {lat.describe()}")
            pairing = dwave_pairing(lat) if mc.init == "dwave" else None
            model = SpinRBMPP(
                lat.n_sites,
                alpha=0.0 if mc.kind == "pp" else mc.alpha,
                init_scale=mc.init_scale,
                param_dtype=mc.param_dtype,
                pairing=pairing,
                init_noise=0.1 if pairing is None else 0.01,  # the d-wave state is fragile
                hopping=lat if mc.init in ("auto", "tight_binding") else None,
            )
        except ValueError as err:
            raise ConfigError(f"model: {err}") from None
    else:
        model = Jastrow(lat.n_sites, init_scale=mc.init_scale)
    model = _shared(cfg, lat, model)
    if mc.marshall_sign:
        if not lat.is_bipartite:
            raise ConfigError(
                f"model.marshall_sign: the Marshall sign rule needs a bipartite lattice; {lat.describe()} is not"
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
        if (sc.k is not None and any(parse_angle(v, "model.symmetry.k") != 0 for v in sc.k)) or sc.point_group not in (
            None,
            "A1",
        ):
            raise ConfigError(
                "model.symmetry: the symmetric RBM is invariant (k = 0, A1); for other sectors "
                'project a plain RBM (kind = "rbm" with model.symmetry)'
            )
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

    from ..lattice import SymmetryGroup
    from ..models.tied import Tied

    inner = model.inner if isinstance(model, Tied) else model
    if not isinstance(inner, SpinRBMPP) or inner.rbm is None:
        raise ConfigError(
            'model.symmetry.project: "rbm" projects the RBM factor of kind = "rbm_pp" (alpha > 0); use "state"'
        )
    perms = np.asarray(group.perms if isinstance(group, SymmetryGroup) else group)
    try:
        new = replace(inner, rbm_images=perms, rbm_characters=np.asarray(chi), rbm_spin_parity=parity)
    except ValueError as err:
        raise ConfigError(f"model.symmetry: {err}") from None
    return replace(model, inner=new) if isinstance(model, Tied) else new


def orbits(model, op, hil):
    """For exact enumeration of a projected spin model: one configuration per orbit of its group (and spin
    flip), when the Hamiltonian commutes with every element (checked on the sparse matrix); else None."""
    if not isinstance(model, Projected) or isinstance(hil, SpinfulFermions):
        return None
    from ..sampling.exact import orbit_representatives

    return orbit_representatives(hil, model.permutations, model.spin_parity is not None, op.to_sparse(hil).tocsr())
