"""General (Pfaffian) pair product: the Pfaffian itself, amplitudes against Jordan–Wigner states, local energies
against (Hψ)/ψ on every state, low-rank updates against fresh inverses, gradients against finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_fermion_models import _create, _drift, _eloc_error, check_holomorphic_gradient, extra_terms

from nqs.hamiltonians.hubbard import hubbard
from nqs.hilbert import SpinfulFermions
from nqs.lattice import make_lattice
from nqs.models.base import fast_path
from nqs.models.pair_product import PairProduct
from nqs.models.pfaffian import PfaffianPP, log_pfaffian
from nqs.models.rbm_pp import RBMPP
from nqs.operators.fermion import FermionOperator
from nqs.sampling.hop import HopExchangeRule, HopRule, SpinExchangeRule


def _pf_expansion(a):
    """Pf by expansion along the first row (exponential; n ≤ 8)."""
    n = len(a)
    if n == 0:
        return 1.0
    total = 0.0
    for j in range(1, n):
        rest = [k for k in range(1, n) if k != j]
        total += (-1) ** (j + 1) * a[0, j] * _pf_expansion(a[np.ix_(rest, rest)])
    return total


def _random_params(model, key, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    n = (model.n_sites, model.n_sites) if model.spin_points else (model.n_orbitals * (model.n_orbitals - 1) // 2,)
    p = {"F": scale * (jax.random.normal(k1, n) + 1j * jax.random.normal(k2, n))}
    if model.gutzwiller:
        p["g"] = jnp.asarray(0.3 + 0.2j)
    return p


def test_log_pfaffian_equals_the_expansion():
    rng = np.random.default_rng(0)
    for n in (2, 4, 6, 8):
        for cplx in (False, True):
            b = rng.normal(size=(n, n)) + (1j * rng.normal(size=(n, n)) if cplx else 0)
            a = b - b.T
            got = np.exp(complex(log_pfaffian(jnp.asarray(a))))
            ref = _pf_expansion(a)
            assert abs(got - ref) < 1e-10 * max(1.0, abs(ref))
            assert abs(got**2 - np.linalg.det(a)) < 1e-9 * max(1.0, abs(ref) ** 2)
    a = np.zeros((4, 4))
    a[0, 3], a[1, 2] = 2.0, 3.0  # the first pivot is zero: needs the row/column exchange
    a = a - a.T
    assert abs(np.exp(complex(log_pfaffian(jnp.asarray(a)))) - 6.0) < 1e-12
    a[1, 2], a[2, 1] = 0.0, 0.0  # singular
    assert np.real(complex(log_pfaffian(jnp.asarray(a)))) == -np.inf


def test_amplitudes_equal_jordan_wigner_states_and_the_singlet_case():
    """ψ(x) = ⟨x|(½ Σ F_pq c†_p c†_q)^{N/2}/(N/2)!|0⟩ with every block of F (↑↑, ↓↓, ↑↓); with the singlet F the
    state is the determinant pair product times (−1)^{N↑(N↑−1)/2}."""
    L, n = 3, 2
    h = SpinfulFermions(L, n, n)
    states = jnp.asarray(h.all_states())
    model = PfaffianPP(L, n, n)
    params = _random_params(model, jax.random.PRNGKey(1))
    F = np.asarray(model.matrix(params))
    vac = np.zeros(2 ** (2 * L), dtype=complex)
    vac[0] = 1.0

    def pair_op(v):
        return 0.5 * sum(F[p, q] * _create(p, _create(q, v)) for p in range(2 * L) for q in range(2 * L))

    vec = vac
    for _ in range((2 * n) // 2):
        vec = pair_op(vec)
    vec = vec / math.factorial(n)
    psi = np.exp(np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(params, states)))
    np.testing.assert_allclose(psi, vec[h.all_codes()], rtol=1e-11, atol=1e-11)

    L, n = 4, 2
    pp = PairProduct(L, n, n, hopping=make_lattice("chain", L))
    pf = PfaffianPP(L, n, n)
    q = pp.init(jax.random.PRNGKey(2))
    f = np.asarray(q["F"])
    u = pf.singlet(f)[np.triu_indices(2 * L, 1)]
    states = jnp.asarray(SpinfulFermions(L, n, n).all_states())
    a = np.asarray(jax.vmap(pf.log_psi, in_axes=(None, 0))({"F": jnp.asarray(u)}, states))
    b = np.asarray(jax.vmap(pp.log_psi, in_axes=(None, 0))(q, states))
    np.testing.assert_allclose(np.exp(a), (-1) ** (n * (n - 1) // 2) * np.exp(b), rtol=1e-11, atol=1e-12)
    # the tight-binding start at zero noise is the same state as the determinant pair product
    tb = PfaffianPP(L, n, n, hopping=make_lattice("chain", L), init_noise=0.0)
    c = np.asarray(jax.vmap(tb.log_psi, in_axes=(None, 0))(tb.init(jax.random.PRNGKey(0)), states))
    ratio = np.exp(
        c
        - np.asarray(
            jax.vmap(pp.log_psi, in_axes=(None, 0))(
                PairProduct(L, n, n, hopping=make_lattice("chain", L), init_noise=0.0).init(jax.random.PRNGKey(0)),
                states,
            )
        )
    )
    assert np.allclose(ratio, ratio[0], atol=1e-10) and abs(abs(ratio[0]) - 1) < 1e-10


@pytest.mark.parametrize("case,spin_points", [("square2x2", 0), ("chain6_k4", 0), ("chain6_k4", 3)])
def test_local_energy_equals_h_psi_over_psi(case, spin_points):
    """Single hops (2×2 Hubbard with t′) and moves of four entries (exchange, pair hops, correlated hops), with
    the Gutzwiller factor and inside RBM × PP."""
    if case == "square2x2":
        lat, n = make_lattice("square", [2, 2]), (2, 2)
        op = hubbard(lat, t=1.0, U=4.0, t2=0.3)
    else:
        lat, n = make_lattice("chain", 6), (2, 2)
        op = hubbard(lat, t=1.0, U=4.0, t2=0.3) + FermionOperator(12, extra_terms(6, np.random.default_rng(2)))
    L = lat.n_sites
    model = PfaffianPP(L, *n, gutzwiller=True, spin_points=spin_points)
    params = _random_params(model, jax.random.PRNGKey(11))
    assert _eloc_error(model, params, op, SpinfulFermions(L, *n)) < 1e-10
    if spin_points:
        return
    both = RBMPP(L, *n, alpha=1.0, gutzwiller=True, pairing="general")
    p2 = both.init(jax.random.PRNGKey(3))
    p2 = {"rbm": jax.tree_util.tree_map(lambda a: a + 0.3, p2["rbm"]), "pp": params}
    assert _eloc_error(both, p2, op, SpinfulFermions(L, *n)) < 1e-10


@pytest.mark.parametrize("prepared,spin_points", [(False, 0), (True, 0), (True, 3)])
def test_low_rank_updates_stay_exact(prepared, spin_points):
    """Thousands of accepted hops and exchanges on the 10-site chain (5+5): every cached log-ratio equals
    log ψ(x′) − log ψ(x), and the cached inverse equals a fresh one."""
    L, n = 10, 5
    lat = make_lattice("chain", L)
    hop = HopRule.from_lattice(lat, shells=(1, 2))
    rule = HopExchangeRule(hop, SpinExchangeRule.from_lattice(lat, (1, 2)), 0.3)
    model = PfaffianPP(L, n, n, hopping=lat, init_noise=0.3, spin_points=spin_points)
    params = model.init(jax.random.PRNGKey(3))
    x, cache, n_acc, max_err = _drift(
        model, params, SpinfulFermions(L, n, n), rule, 5000, jax.random.PRNGKey(7), prepared
    )
    assert n_acc > 1000
    assert max_err < 1e-10, max_err
    r = np.asarray(cache["r"])
    occ = np.zeros(2 * L, dtype=np.int8)
    occ[r] = 1
    np.testing.assert_array_equal(occ, x)
    fresh = np.linalg.inv(np.asarray(model._matrices(params))[:, r][:, :, r])
    assert np.max(np.abs(np.asarray(cache["inv"]) - fresh)) < 1e-10 * np.max(np.abs(fresh))
    if spin_points:  # the weights c_g = w_g Pf_g(x)/ψ(x) are current
        np.testing.assert_allclose(cache["w"], fast_path(model).cache(params, jnp.asarray(x))["w"], atol=1e-10)


def test_log_derivatives_match_finite_differences():
    L, n = 3, 2
    for spin_points in (0, 3):
        model = PfaffianPP(L, n, n, gutzwiller=True, spin_points=spin_points)
        params = _random_params(model, jax.random.PRNGKey(4))
        check_holomorphic_gradient(model, params, jnp.asarray(SpinfulFermions(L, n, n).all_states()[::3]))


def test_errors():
    with pytest.raises(ValueError, match="even number of electrons"):
        PfaffianPP(4, 2, 1)
    with pytest.raises(ValueError, match="Gutzwiller factor only"):
        RBMPP(4, 2, 2, jastrow=True, pairing="general")
    with pytest.raises(ValueError, match="pairing"):
        RBMPP(4, 2, 2, pairing="triplet")


def test_general_pairing_from_the_config_lowers_the_energy():
    """model.pairing = "general" (exact-mode SR, 6-site Hubbard ring, 3+3, U = 4): variational (above ED) and below
    the singlet pair product from the same start (measured 3.9e-3 against 2.6e-2); config errors."""
    from nqs.config import ConfigError, parse_config
    from nqs.drivers import run
    from nqs.exact import exact_energy_of_model, lowest_energies
    from nqs.workflow import build

    energies = {}
    for pairing in ("singlet", "general"):
        cfg = parse_config(
            {
                "lattice": {"kind": "chain", "size": [6]},
                "hamiltonian": {"kind": "hubbard", "U": 4.0, "n_up": 3, "n_down": 3},
                "model": {"kind": "pp", "pairing": pairing, "gutzwiller": True},
                "sampler": {"kind": "exact"},
                "optimizer": {"kind": "sr", "learning_rate": 0.1},
            }
        )
        problem = build(cfg)
        vmc = problem.driver
        assert isinstance(vmc.model, PfaffianPP) == (pairing == "general")
        state = run(vmc, vmc.init(jax.random.PRNGKey(1)), 100)
        energies[pairing] = exact_energy_of_model(
            vmc.model, vmc.physical_params(state.params), problem.hamiltonian, problem.hilbert
        )
    e0 = lowest_energies(problem.hamiltonian, problem.hilbert)[0]
    assert e0 - 1e-9 < energies["general"] < energies["singlet"] - 0.05
    assert (energies["general"] - e0) / abs(e0) < 1e-2
    bad = {"lattice": {"kind": "chain", "size": [6]}, "hamiltonian": {"kind": "hubbard", "U": 4.0}}
    with pytest.raises(ConfigError, match="Gutzwiller factor only"):
        parse_config({**bad, "model": {"kind": "pp", "pairing": "general", "jastrow": True}})
    with pytest.raises(ConfigError, match="no parameter sharing"):
        parse_config({**bad, "model": {"kind": "rbm_pp", "pairing": "general", "shared_weights": "translation"}})
    with pytest.raises(ConfigError, match="pairing"):
        build(
            parse_config(
                {
                    "lattice": {"kind": "chain", "size": [6]},
                    "hamiltonian": {"kind": "heisenberg"},
                    "model": {"kind": "pp", "pairing": "general"},
                    "sampler": {"kind": "exchange"},
                }
            )
        )


def _total_spin_squared(L):
    """S² = Σ_ij S_i·S_j as a FermionOperator (orbital i↑ = i, i↓ = i + L)."""
    terms = []
    for i in range(L):
        for j in range(L):
            terms.append((0.5, ((i, 1), (i + L, 0), (j + L, 1), (j, 0))))  # ½ S⁺_i S⁻_j
            terms.append((0.5, ((i + L, 1), (i, 0), (j, 1), (j + L, 0))))  # ½ S⁻_i S⁺_j
            for a, sa in ((i, 1), (i + L, -1)):
                for b, sb in ((j, 1), (j + L, -1)):
                    terms.append((0.25 * sa * sb, ((a, 1), (a, 0), (b, 1), (b, 0))))  # S^z_i S^z_j
    return FermionOperator(2 * L, terms)


def test_spin_projection_gives_a_singlet():
    """With spin_points the state is an exact S = 0 eigenstate (⟨S²⟩ = 0 on the 4-site, 2+2 sector) where the
    unprojected general f is not; a symmetric f (a singlet already) is left unchanged up to Σ w_g = 2."""
    L, n = 4, 2
    h = SpinfulFermions(L, n, n)
    states = jnp.asarray(h.all_states())
    s2 = _total_spin_squared(L).to_sparse(h)
    model = PfaffianPP(L, n, n, spin_points=3)
    params = _random_params(model, jax.random.PRNGKey(5))
    psi = np.exp(np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(params, states)))
    log_pf = jax.jit(log_pfaffian)

    def amplitudes(f):  # Pf f[R, R] state by state, R the occupied orbitals
        f = np.asarray(f)
        return np.array(
            [np.exp(complex(log_pf(f[np.ix_(np.flatnonzero(x), np.flatnonzero(x))]))) for x in np.asarray(states)]
        )

    plain = amplitudes(model.matrix(params))

    def mean_s2(v):
        return float(np.real(np.vdot(v, s2 @ v) / np.vdot(v, v)))

    assert mean_s2(plain) > 0.1
    assert abs(mean_s2(psi)) < 1e-10
    sym = {"F": 0.5 * (params["F"] + params["F"].T)}
    singlet = amplitudes(model.matrix(sym))
    assert abs(mean_s2(singlet)) < 1e-10
    projected = np.exp(np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(sym, states)))
    np.testing.assert_allclose(projected, 2.0 * singlet, rtol=1e-10, atol=1e-12)
