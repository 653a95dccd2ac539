"""Fermionic wave functions (Slater, pair product, RBM × PP) and the hop / exchange Metropolis rules.

Checks: amplitudes against explicit Jordan–Wigner creation operators; E_loc = (Hψ)(x)/ψ(x) on every
state (Hubbard, and an operator with exchange, pair-hop and correlated two-electron hops so that the
k = 4 fast path with two relocations per spin is exercised); low-rank updates against fresh
determinants after thousands of accepted moves; holomorphic log-derivatives against finite
differences; Metropolis sampling with the hop rules against exact ⟨H⟩; the tight-binding Slater
energy; a short exact-mode SR optimization of RBM + PP.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from nqs.drivers import VMC, OptimizerConfig, run
from nqs.estimators import local_energies
from nqs.exact import exact_energy_of_model, exact_state, lowest_energies
from nqs.hamiltonians import heisenberg
from nqs.hamiltonians.hubbard import hubbard
from nqs.hilbert.fermions import SpinfulFermions
from nqs.hilbert.spin import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models.base import fast_path
from nqs.models.pair_product import PairProduct, neighbour_table
from nqs.models.rbm_pp import RBMPP, SpinRBMPP
from nqs.models.slater import Slater, logdet, one_body_matrices
from nqs.operators.fermion import FermionOperator
from nqs.operators.moves import apply_moves
from nqs.operators.pauli import PauliSum
from nqs.sampling import ExactSampler, ExchangeRule, MetropolisSampler
from nqs.sampling.hop import HopExchangeRule, HopRule, SpinExchangeRule
from nqs.stats import statistics

REFERENCE = Path("/work/shared/reference/energies.json")


# ---------------------------------------------------------------- helpers
def _cplx(key, shape, scale=1.0):
    k1, k2 = jax.random.split(key)
    return scale * (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape))


def random_params(model, key, rbm_scale=0.3):
    """Generic complex parameters: O(1) orbitals / pairing, Gutzwiller g = 0.3 + 0.2i, RBM scale ``rbm_scale``."""
    k1, k2, k3 = jax.random.split(key, 3)
    if isinstance(model, Slater):
        L = model.n_sites
        return {"phi_up": _cplx(k1, (L, model.n_up)), "phi_dn": _cplx(k2, (L, model.n_down))}
    if isinstance(model, PairProduct):
        p = {"F": _cplx(k1, (model.n_sites, model.n_sites))}
        if model.gutzwiller:
            p["g"] = jnp.asarray(0.3 + 0.2j)
        if model.jastrow:
            p["v"] = rbm_scale * _cplx(k3, (model.n_sites, model.n_sites))
        if model.doublon_holon is not None:
            p["dh"] = _cplx(jax.random.fold_in(k3, 1), (2, model.doublon_holon.shape[1]), min(0.5, 4 * rbm_scale))
        return p
    rbm = jax.tree_util.tree_map(lambda a: _cplx(k3, a.shape, rbm_scale), model.rbm.init(k2))
    return {"rbm": rbm, "pp": random_params(model.pp, k1)}


def make_models(L, n, gutzwiller=True):
    return {
        "slater": Slater(L, n, n),
        "pp": PairProduct(L, n, n, gutzwiller=gutzwiller),
        "rbmpp": RBMPP(L, n, n, alpha=1.0, gutzwiller=gutzwiller),
        # + charge Jastrow and doublon-holon factors (ring neighbours, whatever the cluster: any table is a state)
        "ppj": PairProduct(
            L,
            n,
            n,
            gutzwiller=gutzwiller,
            jastrow=True,
            doublon_holon=neighbour_table([(i, (i + 1) % L) for i in range(L)], L),
        ),
    }


def wrap_phase(t):
    return (t + np.pi) % (2 * np.pi) - np.pi


def extra_terms(L, rng):
    """Spin exchange, pair hopping and correlated two-electron same-spin hops (moves of k = 4 entries)."""
    terms = []
    for i in range(L):
        j, k, m = (i + 1) % L, (i + 2) % L, (i + 3) % L
        terms.append((complex(rng.normal(), rng.normal()), ((i, 1), (i + L, 0), (j + L, 1), (j, 0))))
        terms.append((rng.normal(), ((i, 1), (i + L, 1), (j + L, 0), (j, 0))))
        if len({i, j, k, m}) == 4:
            terms.append((rng.normal(), ((i, 1), (j, 1), (m, 0), (k, 0))))
            terms.append((rng.normal(), ((i + L, 1), (k + L, 1), (j + L, 0), (m + L, 0))))
    return terms


# ---------------------------------------------------------------- Jordan–Wigner amplitudes
_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << 8)])


def _create(p, vec):
    """c†_p on a Fock vector (index = Σ_q n_q 2^q) with c_p = (Π_{q<p} (−1)^{n_q}) a_p."""
    idx = np.arange(len(vec))
    empty = (idx >> p) & 1 == 0
    below = _POPCOUNT[idx & ((1 << p) - 1)]
    out = np.zeros_like(vec)
    src = idx[empty]
    out[src | (1 << p)] = vec[src] * (-1.0) ** below[src]
    return out


def test_amplitudes_equal_jordan_wigner_states():
    """Slater: ψ(x) = ⟨x|Π_k b†_{k↑} Π_k b†_{k↓}|0⟩ exactly; PP: ⟨x|(Σ f_ij c†_i↑ c†_j↓)^N/N!|0⟩ =
    (−1)^{N(N−1)/2} ψ_PP(x) (the note's constant sign, dropped by the model)."""
    L, n = 4, 2
    h = SpinfulFermions(L, n, n)
    codes = h.all_codes()
    states = jnp.asarray(h.all_states())
    key = jax.random.PRNGKey(5)
    vac = np.zeros(2 ** (2 * L), dtype=complex)
    vac[0] = 1.0

    sl = Slater(L, n, n)
    p = random_params(sl, key)
    vec = vac
    for spin, phi in ((1, np.asarray(p["phi_dn"])), (0, np.asarray(p["phi_up"]))):
        for k in reversed(range(phi.shape[1])):  # rightmost factor acts first
            vec = sum(phi[i, k] * _create(i + L * spin, vec) for i in range(L))
    psi = np.exp(np.asarray(jax.vmap(sl.log_psi, in_axes=(None, 0))(p, states)))
    np.testing.assert_allclose(psi, vec[codes], rtol=1e-12, atol=1e-12)

    pp = PairProduct(L, n, n)
    q = random_params(pp, key)
    f = np.asarray(q["F"])

    def pair_op(v):
        return sum(f[i, j] * _create(i, _create(j + L, v)) for i in range(L) for j in range(L))

    vec = vac
    for _ in range(n):
        vec = pair_op(vec)
    vec = vec / math.factorial(n)
    psi = np.exp(np.asarray(jax.vmap(pp.log_psi, in_axes=(None, 0))(q, states)))
    np.testing.assert_allclose((-1) ** (n * (n - 1) // 2) * psi, vec[codes], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- E_loc on every state
CLUSTERS = {
    "chain4-pbc": (("chain", 4), "periodic", 2, 0.0),
    "chain4-apbc": (("chain", 4), "antiperiodic", 2, 0.0),
    "square2x2": (("square", [2, 2]), "periodic", 2, 0.0),
}


def _eloc_error(model, params, op, h):
    states = h.all_states()
    psi = np.exp(np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(params, jnp.asarray(states))))
    exact = (op.to_sparse(h) @ psi) / psi
    eloc = np.asarray(jax.jit(lambda s: local_energies(model, params, op, s))(jnp.asarray(states)))
    return float(np.max(np.abs(eloc - exact) / np.maximum(1.0, np.abs(exact))))


@pytest.mark.parametrize("name", ["slater", "pp", "rbmpp", "ppj"])
@pytest.mark.parametrize("cluster", list(CLUSTERS))
def test_local_energy_equals_h_psi_over_psi(name, cluster):
    (kind, size), bc, n, t2 = CLUSTERS[cluster]
    lat = make_lattice(kind, size)
    op = hubbard(lat, t=1.0, U=4.0, t2=t2, boundary=bc)
    model = make_models(lat.n_sites, n)[name]
    params = random_params(model, jax.random.PRNGKey(11))
    assert op.max_changes == 2  # single-hop fast path
    assert _eloc_error(model, params, op, SpinfulFermions(lat.n_sites, n, n)) < 1e-10


@pytest.mark.parametrize("name", ["slater", "pp", "rbmpp", "ppj"])
def test_local_energy_with_two_electron_moves(name):
    """Chain L = 6, 3+3, t2 ≠ 0, plus exchange / pair-hop / correlated-hop terms: general (k = 4) path."""
    L, n = 6, 3
    op = hubbard(make_lattice("chain", L), t=1.0, U=4.0, t2=0.3)
    op = op + FermionOperator(2 * L, extra_terms(L, np.random.default_rng(2)))
    assert op.max_changes == 4
    model = make_models(L, n)[name]
    params = random_params(model, jax.random.PRNGKey(12))
    assert _eloc_error(model, params, op, SpinfulFermions(L, n, n)) < 1e-10


# ---------------------------------------------------------------- low-rank update drift
def _drift(model, params, hilbert, rule, n_steps, key, prepared=False):
    """Metropolis chain driven by fresh amplitudes; at every proposal the cached log-ratio is compared
    with log ψ(x′) − log ψ(x) (mod 2πi); accepted moves update the cache (never rebuilt).
    ``prepared``: the fast path takes its ``prepare(params)``, as the sampler passes them."""
    path = fast_path(model)
    fp = path.prepare(params) if prepared else params
    k0, k1, k2 = jax.random.split(key, 3)
    x0 = hilbert.random_state(k0, 1)[0]
    rs = rule.draw(k1, (n_steps,))
    log_u = jnp.log(jax.random.uniform(k2, (n_steps,)))

    @jax.jit
    def go(x0, rs, log_u):
        def step(carry, inp):
            x, cache, lp, n_acc = carry
            r, lu = inp
            s, v, m = rule.move(r, x)
            fast = path.log_ratio(fp, x, cache, s, v, m)
            xn = apply_moves(x, s, v)
            lpn = model.log_psi(params, xn)
            d = fast - (lpn - lp)
            err = jnp.abs(jnp.real(d)) + jnp.abs((jnp.imag(d) + jnp.pi) % (2 * jnp.pi) - jnp.pi)
            acc = lu < 2.0 * jnp.real(lpn - lp)
            new_cache = path.update(fp, x, cache, s, v, m)
            cache = jax.tree_util.tree_map(lambda a, b: jnp.where(acc, a, b), new_cache, cache)
            n_acc = n_acc + (acc & jnp.any(xn != x))
            return (jnp.where(acc, xn, x), cache, jnp.where(acc, lpn, lp), n_acc), err

        c0 = (x0, path.cache(fp, x0), model.log_psi(params, x0), jnp.zeros((), jnp.int32))
        return jax.lax.scan(step, c0, (rs, log_u))

    (x, cache, _, n_acc), errs = go(x0, rs, log_u)
    return np.asarray(x), cache, int(n_acc), float(np.max(np.asarray(errs)))


def _label_matrices(model, params, cache):
    """(cached inverse, matrix rebuilt from the cached labelled positions) pairs."""
    if isinstance(model, RBMPP | SpinRBMPP):
        return _label_matrices(model.pp, params["pp"], cache["pp"])
    if isinstance(model, PairProduct):
        return [(cache["inv"], params["F"][cache["r_up"]][:, cache["r_dn"]])]
    return [(cache["inv_" + s], params["phi_" + s][cache["r_" + s]]) for s in ("up", "dn")]


@pytest.mark.parametrize(
    "name,rule_kind,n_steps,prepared",
    [
        ("pp", "hop", 8000, False),
        ("pp", "hop+exchange", 8000, False),
        ("slater", "hop+exchange", 6000, False),
        ("rbmpp", "hop+exchange", 6000, False),
        ("rbmpp", "hop+exchange", 6000, True),
        ("ppj", "hop+exchange", 6000, False),
    ],
)
def test_low_rank_updates_stay_exact(name, rule_kind, n_steps, prepared):
    L, n = 10, 5
    lat = make_lattice("chain", L)
    h = SpinfulFermions(L, n, n)
    hop = HopRule.from_lattice(lat, shells=(1, 2))
    rule = hop if rule_kind == "hop" else HopExchangeRule(hop, SpinExchangeRule.from_lattice(lat, (1, 2)), 0.3)
    model = make_models(L, n, gutzwiller=False)[name]
    params = random_params(model, jax.random.PRNGKey(3), rbm_scale=0.05)
    x, cache, n_acc, max_err = _drift(model, params, h, rule, n_steps, jax.random.PRNGKey(7), prepared)
    assert n_acc > 1000
    assert max_err < 1e-10, max_err
    c = cache["pp"] if isinstance(model, RBMPP) else cache
    occ = np.zeros(2 * L, dtype=np.int8)
    for s, key in ((0, "r_up"), (1, "r_dn")):
        occ[np.asarray(c[key]) + L * s] = 1
    np.testing.assert_array_equal(occ, x)  # cached positions describe the current configuration
    for inv, mat in _label_matrices(model, params, cache):
        fresh = np.linalg.inv(np.asarray(mat))
        assert np.max(np.abs(np.asarray(inv) - fresh)) < 1e-10 * np.max(np.abs(fresh))
    if isinstance(model, RBMPP):  # the RBM's cache (θ, or the table path's sign and weights) is current
        fp = fast_path(model).prepare(params) if prepared else params
        fresh = fast_path(model.rbm).cache(fp["rbm"], 2 * jnp.asarray(x) - 1)
        assert set(fresh) == ({"s", "g", "h"} if prepared else {"theta", "lc"})
        for k in fresh:
            np.testing.assert_allclose(cache["rbm"][k], fresh[k], atol=1e-10)


# ---------------------------------------------------------------- log-derivatives
def check_holomorphic_gradient(model, params, xs, eps=1e-5):
    """∂ log ψ(x)/∂θ by autodiff (holomorphic) equals central differences along the real and imaginary axes."""
    flat, unravel = ravel_pytree(params)

    def f(v, x):
        return model.log_psi(unravel(v), x)

    grad = jax.jit(jax.vmap(jax.grad(f, holomorphic=True), in_axes=(None, 0)))(flat, xs)
    basis = jnp.eye(flat.size, dtype=flat.dtype)

    @jax.jit
    def central(direction):
        def one(e):
            return jax.vmap(lambda x: f(flat + eps * direction * e, x) - f(flat - eps * direction * e, x))(xs)

        return jax.vmap(one)(basis).T  # (n_x, P)

    for direction in (1.0, 1j):
        d = np.asarray(central(direction))
        d = d.real + 1j * wrap_phase(d.imag)
        np.testing.assert_allclose(d / (2 * eps * direction), np.asarray(grad), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["slater", "pp", "rbmpp", "ppj"])
def test_log_derivatives_match_finite_differences(name):
    L, n = 4, 2
    model = make_models(L, n)[name]
    params = random_params(model, jax.random.PRNGKey(4))
    xs = jnp.asarray(SpinfulFermions(L, n, n).all_states()[::7])
    check_holomorphic_gradient(model, params, xs)
    if name == "pp":  # the Gutzwiller derivative is −Σ n↑n↓; the note's O_f = (M⁻¹)_{ba}
        x = xs[1]
        g = jax.grad(lambda p: model.log_psi(p, x), holomorphic=True)(params)
        D = float(jnp.sum(x[:L] * x[L:]))
        assert abs(g["g"] + D) < 1e-12
        r_up, r_dn = np.flatnonzero(x[:L]), np.flatnonzero(x[L:])
        minv = np.linalg.inv(np.asarray(params["F"])[np.ix_(r_up, r_dn)])
        np.testing.assert_allclose(np.asarray(g["F"])[np.ix_(r_up, r_dn)], minv.T, atol=1e-12)


# ---------------------------------------------------------------- Metropolis sampling
@pytest.mark.parametrize("rule_kind", ["hop", "hop+exchange"])
def test_metropolis_with_hop_rules_matches_exact_energy(rule_kind):
    L, n = 6, 3
    lat = make_lattice("chain", L)
    h = SpinfulFermions(L, n, n)
    op = hubbard(lat, t=1.0, U=4.0)
    model = RBMPP(L, n, n, alpha=1.0, init_scale=0.03)
    params = model.init_tight_binding(op, jax.random.PRNGKey(1), noise=0.1)
    exact = exact_energy_of_model(model, params, op, h)
    hop = HopRule.from_lattice(lat)
    rule = hop if rule_kind == "hop" else HopExchangeRule(hop, SpinExchangeRule.from_lattice(lat), 0.25)
    sampler = MetropolisSampler(h, rule, n_chains=32, n_samples=32 * 150, n_discard=30)
    state = sampler.init_state(jax.random.PRNGKey(2))

    @jax.jit
    def sample_and_measure(params, state):
        samples, _, state = sampler.sample(model, params, state)
        return local_energies(model, params, op, samples), state

    e_loc, state = sample_and_measure(params, state)
    assert e_loc.shape == (32, 150)
    assert bool(jnp.all(h.in_sector(state.sigma)))
    stats = statistics(e_loc)
    mean, err = float(jnp.real(stats.mean)), float(stats.error)
    acc = int(state.n_accepted) / int(state.n_proposed)
    assert 0.05 < acc < 0.95
    print(f"{rule_kind}: ⟨H⟩ = {mean:.5f} ± {err:.5f} (exact {exact:.5f}), acceptance {acc:.3f}")
    assert 0 < err < 0.2  # Var E_loc ≈ 9 here: U n↑n↓ fluctuates strongly near the Slater state
    assert abs(mean - exact) < 5 * err, (mean, err, exact)


def test_rules_are_symmetric_and_conserve_the_sector():
    """T(x → x′) = T(x′ → x) over every state of a small sector; moves stay in the sector."""
    lat = make_lattice("square", [2, 3])
    h = SpinfulFermions(6, 2, 3)
    hop = HopRule.from_lattice(lat)
    ex = SpinExchangeRule.from_lattice(lat)
    states = h.all_states()
    codes = h.all_codes()
    p = 0.3
    for rule, weights in (
        (hop, None),
        (ex, None),
        (
            HopExchangeRule(hop, ex, p),
            np.r_[np.full(hop.n_choices, (1 - p) / hop.n_choices), np.full(ex.n_choices, p / ex.n_choices)],
        ),
    ):
        n_r = hop.n_choices + ex.n_choices if weights is not None else rule.n_choices
        w = weights if weights is not None else np.full(n_r, 1.0 / n_r)
        rs = jnp.arange(n_r)

        def targets(x, rule=rule, rs=rs):
            return jax.vmap(lambda r: apply_moves(x, *rule.move(r, x)[:2]))(rs)

        new = np.asarray(jax.jit(jax.vmap(targets))(jnp.asarray(states)))  # (n_states, n_r, 2L)
        assert np.all(np.asarray(h.in_sector(new)))
        idx = h.index_of(new.reshape(-1, new.shape[-1]), codes).reshape(len(states), n_r)
        T = np.zeros((len(states), len(states)))
        np.add.at(T, (np.repeat(np.arange(len(states)), n_r), idx.ravel()), np.tile(w, len(states)))
        np.testing.assert_allclose(T, T.T, atol=1e-14)
        np.testing.assert_allclose(T.sum(1), 1.0)
        assert np.count_nonzero(T - np.diag(np.diag(T))) > 0
    # the exchange move: ↑ at i, ↓ at j → ↓ at i, ↑ at j, all four entries together
    x = jnp.asarray(np.array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], dtype=np.int8))
    r = ex.bonds.index((0, 1))
    sites, vals, mask = ex.move(r, x)
    np.testing.assert_array_equal(apply_moves(x, sites, vals), [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    assert sites.shape == (4,) and bool(mask.all())


# ---------------------------------------------------------------- tight binding and optimization
def test_tight_binding_slater_gives_free_fermion_ground_energy():
    """Closed shell chain L = 6 PBC, 3+3: the determinant of the lowest orbitals is the U = 0 ground
    state (E = 2·(−2 − 1 − 1) = −8); f = Φ↑Φ↓ᵀ gives the same state as a pair product."""
    L, n = 6, 3
    lat = make_lattice("chain", L)
    h = SpinfulFermions(L, n, n)
    op0 = hubbard(lat, t=1.0, U=0.0)
    e0 = lowest_energies(op0, h)[0]
    assert abs(e0 + 8.0) < 1e-10
    sl = Slater(L, n, n, hopping=lat)
    assert abs(exact_energy_of_model(sl, sl.init(jax.random.PRNGKey(0)), op0, h) - e0) < 1e-9
    pp = PairProduct(L, n, n)
    assert abs(exact_energy_of_model(pp, pp.init_tight_binding(op0, noise=0.0), op0, h) - e0) < 1e-9
    real = Slater(L, n, n, param_dtype="real", hopping=lat)  # real orbitals: ψ real, real derivatives
    p_real = real.init(jax.random.PRNGKey(0))
    assert p_real["phi_up"].dtype == jnp.float64 and real.real_derivatives and not real.holomorphic
    assert abs(exact_energy_of_model(real, p_real, op0, h) - e0) < 1e-9
    assert VMC(real, op0, ExactSampler(h)).param_mode == "real"
    # the one-body matrix read from a Hubbard operator (U ≠ 0 terms ignored) with antiperiodic bonds
    h_up, h_dn = one_body_matrices(hubbard(lat, t=1.0, U=4.0, boundary="antiperiodic"), L)
    np.testing.assert_allclose(h_up, h_dn)
    assert h_up[0, L - 1] == 1.0 and h_up[0, 1] == -1.0
    with pytest.raises(ValueError, match="N↑ = N↓"):
        PairProduct(4, 2, 1)


def test_logdet_is_holomorphic_and_handles_pivoting():
    a = _cplx(jax.random.PRNGKey(9), (5, 5))
    sign_perm = jnp.asarray(np.eye(5)[[1, 0, 2, 3, 4]])  # a row swap flips the sign
    ld, ld_swapped = logdet(a), logdet(sign_perm @ a)
    assert abs(np.exp(ld) - np.linalg.det(np.asarray(a))) < 1e-10 * abs(np.exp(ld))
    assert abs(np.exp(ld_swapped) + np.exp(ld)) < 1e-10 * abs(np.exp(ld))
    g = jax.grad(lambda m: logdet(m), holomorphic=True)(a)
    np.testing.assert_allclose(g, np.linalg.inv(np.asarray(a)).T, atol=1e-12)


def test_exact_sr_optimizes_rbmpp_on_hubbard_chain():
    """4-site Hubbard chain, PBC (open shell), U = 4, 2+2: exact-mode SR of RBM + PP reaches ED."""
    ref = [
        e
        for e in json.loads(REFERENCE.read_text())
        if e["model"] == "hubbard"
        and e["lattice"] == "chain"
        and e["size"] == 4
        and e["bc"] == "PBC"
        and e["params"]["U"] == 4.0
    ]
    e_ref = ref[0]["E_total"]
    lat = make_lattice("chain", 4)
    h = SpinfulFermions(4, 2, 2)
    op = hubbard(lat, t=1.0, U=4.0)
    assert abs(lowest_energies(op, h)[0] - e_ref) < 1e-10
    model = RBMPP(4, 2, 2, alpha=1.0, init_scale=0.05)
    params = model.init_tight_binding(op, jax.random.PRNGKey(0), noise=0.05)
    vmc = VMC(model, op, ExactSampler(h), OptimizerConfig("sr", 0.05))
    assert vmc.param_mode == "holomorphic"
    state = run(vmc, vmc.init(jax.random.PRNGKey(1), params), 150)
    e = exact_energy_of_model(model, vmc.physical_params(state.params), op, h)
    assert abs(e - e_ref) / abs(e_ref) < 1e-3, e


# ---------------------------------------------------------------- Gutzwiller-projected PP for spins
def test_projected_pair_product_for_heisenberg():
    """σ ∈ {±1}^6, S^z = 0: E_loc = (Hψ)/ψ on every state (RBM × ξ × det); a symmetric f is a singlet
    (⟨S²⟩ = 0, and ≠ 0 without the sign ξ); the projected Fermi sea (PBC, closed shell) is within
    0.2 % of the Heisenberg ground energy; cached updates stay exact along an exchange-move chain."""
    L = 6
    lat = make_lattice("chain", L)
    h = SpinHilbert(L, 0.0)
    op = heisenberg(lat)
    states = jnp.asarray(h.all_states())

    model = SpinRBMPP(L, alpha=1.0, init_scale=0.3)
    params = model.init(jax.random.PRNGKey(1))
    psi = np.exp(np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(params, states)))
    exact = (op.to_sparse(h) @ psi) / psi
    eloc = np.asarray(jax.jit(lambda s: local_energies(model, params, op, s))(states))
    assert np.max(np.abs(eloc - exact) / np.maximum(1.0, np.abs(exact))) < 1e-10

    s2 = PauliSum(
        L, [(0.75 * L, "", ())] + [(0.5, o + o, (i, j)) for i in range(L) for j in range(i + 1, L) for o in "XYZ"]
    ).to_sparse(h)
    pp = SpinRBMPP(L)  # random symmetric complex f, no RBM
    psi = exact_state(pp, pp.init(jax.random.PRNGKey(2)), h)
    assert abs(np.vdot(psi, s2 @ psi)) < 1e-10
    s = np.asarray(states)
    xi = np.array([(-1) ** sum(1 for i in range(L) for j in range(i + 1, L) if r[i] < 0 < r[j]) for r in s])
    no_xi = psi * xi
    assert np.vdot(no_xi, s2 @ no_xi).real > 0.5

    e0 = lowest_energies(op, h)[0]
    fermi_sea = SpinRBMPP(L, hopping=lat, init_noise=0.0)
    e = exact_energy_of_model(fermi_sea, fermi_sea.init(jax.random.PRNGKey(0)), op, h)
    assert e0 < e < e0 * (1 - 2e-3)

    _, cache, n_acc, max_err = _drift(
        model, params, h, ExchangeRule(tuple(map(tuple, lat.bonds(1)))), 3000, jax.random.PRNGKey(4)
    )
    assert n_acc > 300 and max_err < 1e-10
    for inv, mat in _label_matrices(model, params, cache):
        fresh = np.linalg.inv(np.asarray(mat))
        assert np.max(np.abs(np.asarray(inv) - fresh)) < 1e-10 * np.max(np.abs(fresh))


def test_unrestricted_hartree_fock_energy_and_orbitals():
    """UHF: the reported energy is <H> of the Slater determinant of its orbitals (exact enumeration);
    at half filling it breaks spin symmetry and lies below the tight-binding determinant but above ED;
    at U = 0 it is the free-fermion energy."""
    from nqs.exact import exact_energy_of_model, lowest_energies
    from nqs.models.slater import unrestricted_hartree_fock

    lat = make_lattice("chain", [8])
    hil = SpinfulFermions(8, 4, 4)
    op = hubbard(lat, 1.0, 4.0)
    h, e = unrestricted_hartree_fock(op, 8, 4, 4, guess=1 - 2 * lat.sublattice)
    uhf = Slater(8, 4, 4, hopping=h)
    e_slater = exact_energy_of_model(uhf, uhf.init(jax.random.PRNGKey(0)), op, hil)
    assert abs(e - e_slater) < 1e-8
    tb = Slater(8, 4, 4, hopping=op)
    e_tb = exact_energy_of_model(tb, tb.init(jax.random.PRNGKey(0)), op, hil)
    e0 = lowest_energies(op, hil)[0]
    assert e0 < e < e_tb
    free = hubbard(lat, 1.0, 0.0, boundary="antiperiodic")
    _, e_free = unrestricted_hartree_fock(free, 8, 4, 4)
    assert abs(e_free - lowest_energies(free, hil)[0]) < 1e-9


@pytest.mark.parametrize("lattice,n", [(("square", [2, 3]), (2, 2))])
def test_local_energies_over_the_applicable_connections_only(lattice, n):
    """FermionOperator.for_sector bounds the connections that apply to any state of the sector; local energies
    over only those equal the ones over all n_conn moves, on every state (the bound is checked by enumeration)."""
    lat = make_lattice(*lattice)
    L = lat.n_sites
    op = hubbard(lat, t=1.0, U=3.0, t2=0.4 if lattice[0] == "square" else 0.0)
    sector = op.for_sector(*n)
    hil = SpinfulFermions(L, *n)
    states = jnp.asarray(hil.all_states())
    valid = np.asarray(jax.jit(jax.vmap(lambda x: jnp.count_nonzero(op.moves(x)[1])))(states))
    assert valid.max() <= sector.max_active < op.n_conn
    model = RBMPP(L, *n, alpha=1.0, gutzwiller=True, param_dtype="complex", hopping=lat)
    params = random_params(model, jax.random.PRNGKey(3))
    e_all = np.asarray(jax.jit(lambda p, x: local_energies(model, p, op, x))(params, states))
    e_sector = np.asarray(jax.jit(lambda p, x: local_energies(model, p, sector, x))(params, states))
    assert np.allclose(e_sector, e_all, rtol=1e-10, atol=1e-10)


def test_doublon_holon_factor_counts_bound_pairs():
    """log ψ of the doublon–holon factor = Σ_i [d_i α_d(#holon neighbours) + h_i α_h(#doublon neighbours)], counted
    by a plain loop on a 2×3 open cluster (sites with 2 and 3 neighbours: padded rows); α(0) = 0."""
    lat = make_lattice("square", [2, 3], pbc=False)
    L = lat.n_sites
    table = neighbour_table(lat.bonds(1), L)
    assert table.shape == (L, 3) and np.sum(table == L) == 4  # four corners with two neighbours
    model = PairProduct(L, 2, 2, doublon_holon=table, hopping=lat)
    params = model.init(jax.random.PRNGKey(0))
    assert params["dh"].shape == (2, 3)
    rng = np.random.default_rng(0)
    params["dh"] = jnp.asarray(rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3)))
    plain = {**params, "dh": jnp.zeros_like(params["dh"])}
    nbrs = [set(lat.neighbours(i)) for i in range(L)]
    states = SpinfulFermions(L, 2, 2).all_states()[::5]
    got = np.asarray(
        jax.jit(jax.vmap(lambda x: model.log_psi(params, x) - model.log_psi(plain, x)))(jnp.asarray(states))
    )
    for x, g in zip(states, got, strict=True):
        up, dn = x[:L], x[L:]
        d, h = up * dn, (1 - up) * (1 - dn)
        ref = 0.0
        for i in range(L):
            nh, nd = sum(h[j] for j in nbrs[i]), sum(d[j] for j in nbrs[i])
            if d[i] and nh:
                ref += complex(params["dh"][0, nh - 1])
            if h[i] and nd:
                ref += complex(params["dh"][1, nd - 1])
        assert abs(g - ref) < 1e-12
    with pytest.raises(ValueError, match="neighbour table"):
        PairProduct(L, 2, 2, doublon_holon=np.zeros((L + 1, 2), dtype=int))
