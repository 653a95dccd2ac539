"""Parameters shared over lattice symmetries (nqs.models.tied, ``model.shared_weights``).

A state built from tied parameters must be invariant: ψ(gσ) = ψ(σ) for spins, and for electrons
ψ(Tx) = s_T(x) ψ(x), with s_T(x) the sign of re-sorting the translated creation operators into the
canonical order (all ↑ by site, then all ↓ by site) — i.e. T|ψ⟩ = |ψ⟩ as a fermion state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs.config import ConfigError, parse_config
from nqs.exact import exact_energy_of_model
from nqs.hamiltonians import j1j2
from nqs.hamiltonians.hubbard import hubbard
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice, point_characters, point_group, space_group, translation_group
from nqs.models.base import MarshallSign
from nqs.models.pair_product import neighbour_table
from nqs.models.rbm import RBM
from nqs.models.rbm_pp import RBMPP, SpinRBMPP, dwave_pairing
from nqs.models.symmetric import Projected
from nqs.models.tied import Tied, antiperiodic_signs, orbits, signed_orbits, translation_tying
from nqs.workflow import build


def _perturbed(params, key, scale=0.3):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    out = []
    for k, x in zip(keys, leaves, strict=True):
        noise = scale * jax.random.normal(k, x.shape)
        if jnp.iscomplexobj(x):
            noise = noise + 1j * scale * jax.random.normal(jax.random.fold_in(k, 1), x.shape)
        out.append(x + noise)
    return jax.tree_util.tree_unflatten(tree, out)


def _sort_sign(sites) -> int:
    """(−1)^(inversions) of the sequence ``sites``."""
    s = list(sites)
    inv = sum(1 for a in range(len(s)) for b in range(a + 1, len(s)) if s[a] > s[b])
    return -1 if inv % 2 else 1


def test_pair_orbits_of_translations_are_the_displacements():
    lat = make_lattice("square", [4, 4])
    perms = translation_group(lat).perms
    n = lat.n_sites
    labels = orbits((n, n), [(p[:, None] * n + p[None, :]).reshape(-1) for p in perms])
    assert labels.max() + 1 == n  # one free value per displacement r_i − r_j
    pos = np.asarray(lat.positions)
    for i in range(n):
        for j in range(n):
            d = np.mod(pos[i] - pos[j], 4)
            ref = [a for a in range(n) if np.allclose(np.mod(pos[a] - pos[0], 4), d)][0]
            assert labels[i, j] == labels[ref, 0]


def test_tied_spin_rbm_pp_is_translation_invariant_and_the_rbm_space_group_invariant():
    lat = make_lattice("square", [4, 4])
    trans, sg = translation_group(lat), space_group(lat)
    model = SpinRBMPP(16, alpha=8.0, param_dtype="complex", hopping=lat)
    tied = Tied(model, translation_tying(model.init(jax.random.PRNGKey(0)), trans, sg))
    params = _perturbed(tied.init(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    assert tied.n_parameters(params) == 16 + 16 + 1 + 1  # f(r), one filter of 16 weights, a, b
    rbm = Tied(RBM(16, 8.0), translation_tying(RBM(16, 8.0).init(jax.random.PRNGKey(0)), trans, sg))
    rbm_params = _perturbed(rbm.init(jax.random.PRNGKey(3)), jax.random.PRNGKey(4))
    rng = np.random.default_rng(0)
    for _ in range(4):
        s = np.array([1] * 8 + [-1] * 8)
        rng.shuffle(s)
        ref, ref_rbm = complex(tied.log_psi(params, jnp.asarray(s))), complex(rbm.log_psi(rbm_params, jnp.asarray(s)))
        for g in range(len(trans)):
            d = complex(tied.log_psi(params, jnp.asarray(trans.act(g, s)))) - ref
            assert abs(np.exp(d) - 1) < 1e-10
        for g in range(len(sg)):
            d = complex(rbm.log_psi(rbm_params, jnp.asarray(sg.act(g, s)))) - ref_rbm
            assert abs(np.exp(d) - 1) < 1e-10


@pytest.mark.parametrize("kind,size,n", [("chain", [6], (2, 2)), ("square", [2, 4], (3, 3)), ("chain", [6], (3, 3))])
def test_tied_rbm_pp_is_a_momentum_zero_fermion_state(kind, size, n):
    """ψ(Tx) = s_T(x) ψ(x) for every translation; the untied model breaks it (the test can fail)."""
    lat = make_lattice(kind, size)
    L = lat.n_sites
    trans = translation_group(lat)
    model = RBMPP(
        L,
        *n,
        alpha=2.0 if kind == "chain" else 1.0,
        gutzwiller=True,
        jastrow=True,
        param_dtype="complex",
        doublon_holon=neighbour_table(lat.bonds(1), L),
    )
    tied = Tied(model, translation_tying(model.init(jax.random.PRNGKey(0)), trans))
    params = _perturbed(tied.init(jax.random.PRNGKey(1)), jax.random.PRNGKey(2), 0.2)
    free = _perturbed(model.init(jax.random.PRNGKey(1)), jax.random.PRNGKey(2), 0.2)
    rng = np.random.default_rng(1)
    worst_free = 0.0
    for _ in range(5):
        up = np.sort(rng.choice(L, n[0], replace=False))
        dn = np.sort(rng.choice(L, n[1], replace=False))
        x = np.zeros(2 * L, dtype=np.int8)
        x[up], x[L + dn] = 1, 1
        ref, ref_free = complex(tied.log_psi(params, jnp.asarray(x))), complex(model.log_psi(free, jnp.asarray(x)))
        for g in range(len(trans)):
            p = trans.perms[g]
            tx = np.zeros_like(x)
            tx[p[up]], tx[L + p[dn]] = 1, 1
            sign = _sort_sign(p[up]) * _sort_sign(p[dn])
            r = sign * np.exp(complex(tied.log_psi(params, jnp.asarray(tx))) - ref)
            assert abs(r - 1) < 1e-10, (g, r)
            r_free = sign * np.exp(complex(model.log_psi(free, jnp.asarray(tx))) - ref_free)
            worst_free = max(worst_free, abs(r_free - 1))
    assert worst_free > 1e-3


def test_tied_fast_path_and_exact_energy_equal_the_expanded_model():
    lat = make_lattice("chain", [6])
    op = hubbard(lat, t=1.0, U=4.0)
    model = RBMPP(6, 2, 2, alpha=1.0, gutzwiller=True, param_dtype="real", hopping=lat)
    tied = Tied(model, translation_tying(model.init(jax.random.PRNGKey(0)), translation_group(lat)))
    params = _perturbed(tied.init(jax.random.PRNGKey(1)), jax.random.PRNGKey(5), 0.2)
    full = tied.expand(params)
    assert np.allclose(tied.reduce(full)["pp"]["F"], params["pp"]["F"])
    from nqs.hilbert.fermions import SpinfulFermions

    hil = SpinfulFermions(6, 2, 2)
    e_tied = exact_energy_of_model(tied, params, op, hil)
    e_full = exact_energy_of_model(model, full, op, hil)
    assert abs(e_tied - e_full) < 1e-10
    x = jnp.asarray(hil.all_states()[7])
    from nqs.models import fast_path

    path = fast_path(tied)
    cache = path.cache(params, x)
    up = np.flatnonzero(np.asarray(x[:6]))
    empty = [s for s in range(6) if s not in up][0]
    sites, vals, mask = jnp.asarray([up[0], empty]), jnp.asarray([0, 1], dtype=x.dtype), jnp.asarray([True, True])
    new = x.at[up[0]].set(0).at[empty].set(1)
    r = complex(path.log_ratio(params, x, cache, sites, vals, mask))
    assert abs(np.exp(r - complex(tied.log_psi(params, new) - tied.log_psi(params, x))) - 1) < 1e-10


def _cfg(model, ham=None, lattice=None):
    ham = ham or {"kind": "j1j2", "J1": 1.0, "J2": 0.5, "total_sz": 0}
    return parse_config(
        {
            "lattice": lattice or {"kind": "square", "size": [4, 4]},
            "hamiltonian": ham,
            "model": model,
            "sampler": {"kind": "hop" if ham["kind"] == "hubbard" else "exchange"},
        }
    )


def test_shared_weights_with_point_group_projection_lands_in_the_sector():
    """rbm_pp with shared translations and symmetry {A1, parity +1}: only the 8 point operations
    are summed, and the state transforms trivially under all 128 space-group elements and the flip."""
    cfg = _cfg(
        {
            "kind": "rbm_pp",
            "alpha": 1,
            "shared_weights": "translation",
            "init": "dwave",
            "symmetry": {"point_group": "A1", "spin_parity": 1},
        }
    )
    model = build(cfg).driver.model
    assert isinstance(model, Projected) and isinstance(model.model, Tied)
    assert len(np.asarray(model.group.perms)) == 8
    lat = make_lattice("square", [4, 4])
    sg = space_group(lat)
    params = _perturbed(model.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1), 0.1)
    rng = np.random.default_rng(2)
    for _ in range(3):
        s = np.array([1] * 8 + [-1] * 8)
        rng.shuffle(s)
        ref = complex(model.log_psi(params, jnp.asarray(s)))
        for g in list(range(0, len(sg), 7)) + [len(sg) - 1]:
            d = complex(model.log_psi(params, jnp.asarray(sg.act(g, s)))) - ref
            assert abs(np.exp(d) - 1) < 1e-9
        assert abs(np.exp(complex(model.log_psi(params, jnp.asarray(-s))) - ref) - 1) < 1e-9
    pg = point_group(lat)
    assert np.allclose(point_characters(pg, "A1"), 1)


def test_shared_weights_marshall_rbm_builds_and_counts_filters():
    cfg = _cfg(
        {"kind": "rbm", "alpha": 2, "shared_weights": "translation", "marshall_sign": True},
        ham={"kind": "heisenberg", "total_sz": 0},
        lattice={"kind": "chain", "size": [8]},
    )
    model = build(cfg).driver.model
    assert isinstance(model, MarshallSign) and isinstance(model.inner, Tied)
    params = model.init(jax.random.PRNGKey(0))
    assert model.n_parameters(params) == 2 * 8 + 1 + 2  # two filters, one visible bias, two hidden biases


@pytest.mark.parametrize(
    "model,ham,lattice,match",
    [
        (
            {"kind": "rbm_pp", "alpha": 1, "shared_weights": "translation"},
            {"kind": "hubbard", "U": 4.0, "n_up": 3, "n_down": 3, "boundary": "antiperiodic"},
            {"kind": "chain", "size": [6]},
            "translation-invariant Hamiltonian",
        ),
        (
            {"kind": "rbm", "alpha": 1, "shared_weights": "translation"},
            {"kind": "heisenberg"},
            {"kind": "chain", "size": [6], "pbc": False},
            "open directions",
        ),
        (
            {"kind": "rbm", "alpha": 1, "shared_weights": "space_group"},
            {"kind": "heisenberg"},
            {"kind": "square", "size": [4, 4]},
            "multiple of 128 hidden units",
        ),
        (
            {"kind": "rbm", "alpha": 1, "shared_weights": "translation", "symmetry": {"k": ["pi"]}},
            {"kind": "heisenberg"},
            {"kind": "chain", "size": [6]},
            "momentum 0",
        ),
    ],
)
def test_shared_weights_config_errors(model, ham, lattice, match):
    with pytest.raises(ConfigError, match=match):
        build(_cfg(model, ham, lattice))


def test_shared_weights_rejected_for_kinds_without_a_rule():
    with pytest.raises(Exception, match="shared_weights"):
        _cfg({"kind": "rbm_symmetric", "alpha": 1, "shared_weights": "translation"})


def test_signed_orbits_zero_an_orbit_that_must_equal_its_negative():
    # x[1] = x[0], x[2] = −x[1], x[0] = x[2] → x = −x on that orbit; x[3] = −x[4] is consistent
    gens = [np.array([1, 2, 0, 4, 3])]
    labels, signs = signed_orbits((5,), gens, [np.array([1, -1, 1, -1, -1])])
    assert labels[0] == labels[1] == labels[2] and np.all(signs[:3] == 0)
    assert labels[3] == labels[4] and signs[3] * signs[4] == -1


def test_dwave_pair_function_is_tied_exactly_with_the_antiperiodic_gauge():
    """The d-wave start (k grid antiperiodic along x) obeys f(Ti, Tj) = u_i u_j f(i, j): the tied model
    keeps it exactly (16 free values), so its energy is the untied start's; periodic tying would not."""
    lat = make_lattice("square", [4, 4])
    trans = translation_group(lat)
    f0 = dwave_pairing(lat)
    model = SpinRBMPP(16, alpha=0.0, param_dtype="real", pairing=f0, init_noise=0.0)
    p0 = model.init(jax.random.PRNGKey(0))
    tied = Tied(model, translation_tying(p0, trans, pair_signs=antiperiodic_signs(lat, trans, 0)))
    pt = tied.init(jax.random.PRNGKey(0))
    assert pt["pp"]["F"].shape == (16,)
    np.testing.assert_allclose(tied.expand(pt)["pp"]["F"], p0["pp"]["F"], atol=1e-12)
    plain = Tied(model, translation_tying(p0, trans))
    assert np.max(np.abs(plain.expand(plain.init(jax.random.PRNGKey(0)))["pp"]["F"] - p0["pp"]["F"])) > 0.1
    hil = SpinHilbert(16, 0.0)
    op = j1j2(lat, 1.0, 0.5)
    assert abs(exact_energy_of_model(tied, pt, op, hil) - exact_energy_of_model(model, p0, op, hil)) < 1e-9


@pytest.mark.parametrize("size,n,project", [([2, 4], (3, 3), "state"), ([6], (3, 3), "rbm")])
def test_projected_electron_rbm_pp_is_in_the_a1_spin_even_sector(size, n, project):
    """model.symmetry for electrons — the whole state projected with fermion signs ("state"), or the RBM factor
    projected and the pair function tied over the space group ("rbm"): ψ(gx) = s_g(x) ψ(x) for every
    space-group element, ψ(swap x) = c ψ(x) with one constant c; fast-path local energies equal (Hψ)(x)/ψ(x)
    on every state.  Without the projection (shared translations only) the point operations are broken (the
    test can fail)."""
    lattice = {"kind": "chain", "size": size} if len(size) == 1 else {"kind": "square", "size": size}
    ham = {"kind": "hubbard", "t": 1.0, "U": 4.0, "n_up": n[0], "n_down": n[1]}
    model_cfg = {
        "kind": "rbm_pp",
        "alpha": 2,
        "shared_weights": "translation",
        "gutzwiller": True,
        "doublon_holon": True,
        "param_dtype": "real",
    }
    sym = {"point_group": "A1", "spin_parity": 1, "project": project}
    problem = build(_cfg({**model_cfg, "symmetry": sym}, ham, lattice))
    model = problem.driver.model
    plain = build(_cfg(model_cfg, ham, lattice)).driver.model
    lat = problem.lattice
    L = lat.n_sites
    sg = space_group(lat)
    assert len(sg) > len(translation_group(lat))
    params = _perturbed(model.init(jax.random.PRNGKey(1)), jax.random.PRNGKey(2), 0.2)
    free = _perturbed(plain.init(jax.random.PRNGKey(1)), jax.random.PRNGKey(2), 0.2)
    log_psi = jax.jit(jax.vmap(model.log_psi, in_axes=(None, 0)))
    log_free = jax.jit(jax.vmap(plain.log_psi, in_axes=(None, 0)))
    rng = np.random.default_rng(3)
    swaps, worst_free = [], 0.0
    for _ in range(4):
        up = np.sort(rng.choice(L, n[0], replace=False))
        dn = np.sort(rng.choice(L, n[1], replace=False))
        configs, signs = [], []
        for p in [np.arange(L)] + list(sg.perms):
            gx = np.zeros(2 * L, dtype=np.int8)
            gx[p[up]], gx[L + p[dn]] = 1, 1
            configs.append(gx)
            signs.append(_sort_sign(p[up]) * _sort_sign(p[dn]))
        x = configs[0]
        configs.append(np.concatenate([x[L:], x[:L]]))  # ↑ ↔ ↓
        logs = np.asarray(log_psi(params, jnp.asarray(np.array(configs))))
        r = np.array(signs[1:]) * np.exp(logs[1:-1] - logs[0])
        assert np.allclose(r, 1, atol=1e-9), r
        swaps.append(np.exp(logs[-1] - logs[0]))
        logs_free = np.asarray(log_free(free, jnp.asarray(np.array(configs[:-1]))))
        worst_free = max(worst_free, np.max(np.abs(np.array(signs[1:]) * np.exp(logs_free[1:] - logs_free[0]) - 1)))
    assert np.allclose(np.abs(swaps), 1, atol=1e-9) and np.allclose(swaps, swaps[0], atol=1e-9)
    assert worst_free > 1e-3
    # local energies through the projected fast path = (Hψ)(x)/ψ(x) from the dense vector
    from nqs.estimators import local_energies

    hil, op = problem.hilbert, problem.hamiltonian
    states = np.asarray(hil.all_states())
    psi = np.exp(np.asarray(log_psi(params, jnp.asarray(states))))
    h_psi = op.to_sparse(hil) @ psi
    keep = np.abs(psi) > 1e-8 * np.max(np.abs(psi))
    keep &= np.random.default_rng(4).random(len(psi)) < 48 / len(psi)  # a sample of the states (time)
    e_loc = np.asarray(jax.jit(lambda p, x: local_energies(model, p, op, x))(params, jnp.asarray(states[keep])))
    assert np.allclose(e_loc, h_psi[keep] / psi[keep], atol=1e-8)


def test_electron_symmetry_config_errors():
    ham = {"kind": "hubbard", "t": 1.0, "U": 4.0, "n_up": 2, "n_down": 2}
    lattice = {"kind": "chain", "size": [6]}
    with pytest.raises(ConfigError, match="shared_weights"):
        build(_cfg({"kind": "rbm_pp", "symmetry": {"point_group": "A1"}}, ham, lattice))
    with pytest.raises(ConfigError, match="RBM factor"):
        build(
            _cfg(
                {"kind": "pp", "shared_weights": "translation", "symmetry": {"point_group": "A1", "project": "rbm"}},
                ham,
                lattice,
            )
        )
    with pytest.raises(ConfigError, match="momentum 0"):
        build(
            _cfg(
                {"kind": "rbm_pp", "shared_weights": "translation", "symmetry": {"k": ["pi"], "point_group": "A1"}},
                ham,
                lattice,
            )
        )


def test_doublon_holon_config_errors():
    """The doublon–holon factor: constant for spins (one electron per site), absent from spin-only kinds."""
    with pytest.raises(ConfigError, match="doublon-holon"):
        build(_cfg({"kind": "rbm_pp", "doublon_holon": True}))
    with pytest.raises(ConfigError, match="doublon_holon"):
        _cfg({"kind": "rbm", "doublon_holon": True})
