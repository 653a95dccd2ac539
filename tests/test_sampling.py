"""Samplers: Metropolis reproduces exact expectation values within k·σ (autocorrelation-corrected);
exchange moves conserve Sz; the exact sampler's weights are |ψ|²/Z."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs import hamiltonians as H
from nqs.estimators import local_energies, structure_factor_samples
from nqs.exact import exact_energy_of_model, exact_state
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models import RBM
from nqs.sampling import ExactSampler, ExchangeRule, LocalRule, MetropolisSampler
from nqs.stats import statistics


def _model_params(n, scale=0.4):
    model = RBM(n, 1.0, init_scale=scale)
    return model, model.init(jax.random.PRNGKey(11))


@pytest.mark.parametrize("rule_kind", ["local", "exchange"])
def test_metropolis_energy_matches_exact(rule_kind):
    lat = make_lattice("chain", [8])
    n = lat.n_sites
    if rule_kind == "local":
        hil, op, rule = SpinHilbert(n), H.ising(lat, 1.0, 0.7), LocalRule(n)
    else:
        hil, op = SpinHilbert(n, 0), H.heisenberg(lat)
        rule = ExchangeRule(tuple(map(tuple, lat.bonds(1).tolist())))
    model, params = _model_params(n)
    e_exact = exact_energy_of_model(model, params, op, hil)
    sampler = MetropolisSampler(hil, rule, n_chains=32, n_samples=32 * 400, n_discard=100)
    state = sampler.init_state(jax.random.PRNGKey(5))
    samples, w, state = jax.jit(lambda p, s: sampler.sample(model, p, s))(params, state)
    assert w is None and samples.shape == (32, 400, n)
    e = local_energies(model, params, op, samples)
    st = statistics(e)
    assert abs(float(st.mean.real) - e_exact) < 5 * float(st.error), (st, e_exact)
    assert float(st.r_hat) < 1.15  # slow-mixing random state: tau ~ 10 sweeps
    if rule_kind == "exchange":
        assert np.all(np.asarray(samples).sum(-1) == 0)


def test_metropolis_histogram_matches_born_rule():
    n = 4
    hil = SpinHilbert(n)
    model, params = _model_params(n, scale=0.6)
    psi = exact_state(model, params, hil)
    p_exact = np.abs(psi) ** 2
    sampler = MetropolisSampler(hil, LocalRule(n), n_chains=64, n_samples=64 * 400, n_discard=10)
    samples, _, _ = sampler.sample(model, params, sampler.init_state(jax.random.PRNGKey(2)))
    idx = hil.index_of(np.asarray(samples).reshape(-1, n))
    counts = np.bincount(idx, minlength=hil.n_states) / idx.size
    # per-state frequencies; chains are short-correlated, allow 6 binomial sigmas (x2 for correlation)
    sigma = np.sqrt(p_exact * (1 - p_exact) / idx.size) * 2
    assert np.all(np.abs(counts - p_exact) < 6 * sigma + 1e-4)


def test_power_sampling_reweighted_matches_born_rule_and_energy():
    """Chains sampling |ψ|^1 (power = 1): the raw histogram follows |ψ|/Σ|ψ|, the weights are |ψ|^{2−1}
    normalized, and the reweighted histogram and energy are those of |ψ|² (error bar from the ratio
    estimator covers the exact energy)."""
    n = 6
    lat = make_lattice("chain", [n])
    hil, op = SpinHilbert(n, 0), H.heisenberg(lat)
    model, params = _model_params(n, scale=0.6)
    psi = exact_state(model, params, hil)
    sampler = MetropolisSampler(
        hil,
        ExchangeRule(tuple(map(tuple, lat.bonds(1).tolist()))),
        n_chains=64,
        n_samples=64 * 300,
        n_discard=20,
        power=1.0,
    )
    samples, w, _ = jax.jit(lambda p, s: sampler.sample(model, p, s))(params, sampler.init_state(jax.random.PRNGKey(3)))
    assert w.shape == samples.shape[:-1] and float(jnp.sum(w)) == pytest.approx(1.0)
    idx = hil.index_of(np.asarray(samples).reshape(-1, n))
    w = np.asarray(w).reshape(-1)
    amp = np.abs(psi[idx])
    np.testing.assert_allclose(w, amp / amp.sum(), rtol=1e-10)  # weights ∝ |ψ| of each sample
    raw = np.bincount(idx, minlength=hil.n_states) / idx.size
    q = np.abs(psi) / np.abs(psi).sum()
    assert np.all(np.abs(raw - q) < 6 * 2 * np.sqrt(q * (1 - q) / idx.size) + 1e-4)
    reweighted = np.bincount(idx, weights=w, minlength=hil.n_states)
    p = np.abs(psi) ** 2
    # error bar of each probability from the spread of the 64 independent chains' reweighted histograms
    # (a fixed tolerance of 0.02 was 2σ for the largest one: it failed for one stream in ten)
    wc, ic = w.reshape(64, -1), idx.reshape(64, -1)
    per_chain = np.stack(
        [np.bincount(i, weights=x, minlength=hil.n_states) / x.sum() for i, x in zip(ic, wc, strict=True)]
    )
    se = per_chain.std(axis=0) / np.sqrt(64)
    assert np.all(np.abs(reweighted - p) < 5 * se + 1e-4), np.abs(reweighted - p) / (se + 1e-12)
    e = local_energies(model, params, op, samples)
    st = statistics(e, w.reshape(samples.shape[:-1]), mcmc=True)
    e_exact = exact_energy_of_model(model, params, op, hil)
    assert 0 < float(st.error) < 0.05
    assert abs(float(st.mean.real) - e_exact) < 5 * float(st.error), (st, e_exact)
    with pytest.raises(ValueError, match="power"):
        MetropolisSampler(hil, LocalRule(n), power=2.5)


def test_exact_sampler_weights_and_structure_factor():
    lat = make_lattice("square", [2, 3])
    hil = SpinHilbert(lat.n_sites, 0)
    model, params = _model_params(lat.n_sites)
    samples, w, _ = ExactSampler(hil).sample(model, params, ExactSampler(hil).init_state(jax.random.PRNGKey(0)))
    psi = exact_state(model, params, hil)
    np.testing.assert_allclose(np.asarray(w[0]), np.abs(psi) ** 2, atol=1e-13)
    sq = structure_factor_samples(samples, lat.positions, lat.momenta())
    got = np.asarray(jnp.sum(w[..., None] * sq, axis=(0, 1)))
    # dense: S(q) = (1/N) Σ_ij e^{iq(r_i - r_j)} <S^z_i S^z_j>
    states = hil.all_states().astype(float) / 2
    czz = (states.T * np.abs(psi) ** 2) @ states
    r = lat.positions
    for q, val in zip(lat.momenta(), got, strict=True):
        ph = np.exp(1j * r @ q)
        assert val == pytest.approx(np.real(ph @ czz @ ph.conj()) / lat.n_sites, abs=1e-12)


def test_hilbert_enumeration_and_index():
    hil = SpinHilbert(10, 1)
    states = hil.all_states()
    assert len(states) == hil.n_states == 210
    assert np.all(states.sum(1) == 2)
    np.testing.assert_array_equal(hil.index_of(states[::-1]), np.arange(210)[::-1])
    r = np.asarray(hil.random_state(jax.random.PRNGKey(0), 50))
    assert np.all(r.sum(1) == 2)
    with pytest.raises(ValueError, match="impossible"):
        SpinHilbert(5, 0)


@pytest.mark.parametrize("rule_kind", ["local", "exchange"])
@pytest.mark.parametrize("power", [2.0, 1.0])
def test_move_path_gives_the_same_chains_as_the_general_path(rule_kind, power):
    """The RBM's move path (tables of e^{±Δθ} per move) and the general path (cache, log_ratio,
    update_cache) make the same draws and the same acceptance test: same samples, same counts."""
    from dataclasses import replace

    from nqs.lattice import translation_group
    from nqs.models import MarshallSign
    from nqs.models.tied import Tied, translation_tying

    lat = make_lattice("chain", [10])
    n = lat.n_sites
    if rule_kind == "local":
        hil, rule = SpinHilbert(n), LocalRule(n)
        model = RBM(n, 2.0, init_scale=0.5)
    else:
        hil, rule = SpinHilbert(n, 0), ExchangeRule(tuple(map(tuple, lat.bonds(1).tolist())))
        # a reparametrized model (translation-tied weights) behind the Marshall sign: both pass the path on
        rbm = RBM(n, 1.0, init_scale=0.5, param_dtype="real")
        tied = Tied(rbm, translation_tying(rbm.init(jax.random.PRNGKey(0)), translation_group(lat)))
        model = MarshallSign(tied, tuple(lat.sublattice))
    params = model.init(jax.random.PRNGKey(3))
    params = jax.tree_util.tree_map(lambda x: x + 0.3 * jnp.sin(jnp.arange(x.size).reshape(x.shape) + 1.0), params)
    fast = MetropolisSampler(hil, rule, n_chains=8, n_samples=8 * 50, n_discard=5, power=power)
    general = replace(fast, move_path=False)
    assert fast._move_path(model) is not None and general._move_path(model) is None
    state = fast.init_state(jax.random.PRNGKey(5))
    a = jax.jit(lambda p, s: fast.sample(model, p, s))(params, state)
    b = jax.jit(lambda p, s: general.sample(model, p, s))(params, state)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert int(a[2].n_accepted) == int(b[2].n_accepted) > 0
    if power != 2:
        np.testing.assert_allclose(np.asarray(a[1]), np.asarray(b[1]), rtol=1e-12)


@pytest.mark.parametrize("move_path", [True, False])
@pytest.mark.parametrize("power", [2.0, 1.0])
def test_parts_join_to_the_whole_sampler(move_path, power):
    """The chains sampled in parts (one per thread in the VMC driver) and joined are the whole sampler's
    chains bit for bit: each chain draws from its own key, so neither the draws nor the acceptance tests
    depend on how the chains are split."""
    from dataclasses import replace

    lat = make_lattice("chain", [10])
    n = lat.n_sites
    hil, rule = SpinHilbert(n, 0), ExchangeRule(tuple(map(tuple, lat.bonds(1).tolist())))
    model, params = _model_params(n, 0.5)
    sampler = MetropolisSampler(hil, rule, n_chains=8, n_samples=8 * 20, n_discard=3, power=power)
    sampler = replace(sampler, move_path=move_path)
    state = sampler.init_state(jax.random.PRNGKey(5))
    whole = jax.jit(lambda p, s: sampler.sample(model, p, s))(params, state)
    assert int(whole[2].n_accepted) > 0
    part = jax.jit(lambda p, s, k, n_parts: sampler.sample_part(model, p, s, k, n_parts), static_argnums=3)
    for n_parts in (2, 4):
        parts = [part(params, state, jnp.int32(k), n_parts) for k in range(n_parts)]
        assert parts[0].samples.shape == (8 // n_parts, 20, n)
        joined = sampler.join_parts(state, parts)
        np.testing.assert_array_equal(np.asarray(joined[0]), np.asarray(whole[0]))
        for a, b in zip(joined[2], whole[2], strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        if power != 2:
            np.testing.assert_allclose(np.asarray(joined[1]), np.asarray(whole[1]), rtol=1e-13)
    with pytest.raises(ValueError, match="multiple of the number of parts"):
        sampler.sample_part(model, params, state, 0, 3)


def test_chains_on_nodes_restart_from_chains_off_them():
    """Chains where ψ = 0 restart from the chains where ψ ≠ 0, spread over them in order; the others stay;
    with every chain on a node nothing moves (the energy is then NaN and the run stops)."""
    from dataclasses import dataclass

    from nqs.sampling.metropolis import _off_nodes

    @dataclass(frozen=True)
    class NodeAtFirstUp:  # ψ = 0 where σ_0 = +1
        def log_psi(self, params, sigma):
            return jnp.where(sigma[0] > 0, -jnp.inf, 0.0)

    up, down = [1, 1, -1], [-1, 1, 1]
    sigma = jnp.asarray([up, [-1, -1, 1], up, down, up], jnp.int8)
    out = np.asarray(_off_nodes(NodeAtFirstUp(), None, sigma))
    np.testing.assert_array_equal(out[[1, 3]], np.asarray(sigma)[[1, 3]])
    assert np.all(out[:, 0] < 0)  # every chain now off the node
    assert {tuple(out[0]), tuple(out[2]), tuple(out[4])} == {tuple(sigma[1].tolist()), tuple(down)}
    all_on = jnp.asarray([up, up], jnp.int8)
    np.testing.assert_array_equal(np.asarray(_off_nodes(NodeAtFirstUp(), None, all_on)), np.asarray(all_on))


def test_rules_draw_every_move_uniformly():
    """floor(u·n) draws each of a rule's moves with probability 1/n (the histogram of 2e5 draws within 5σ)."""
    from nqs.sampling import HopExchangeRule, HopRule

    lat = make_lattice("chain", [6])
    for rule in (
        LocalRule(7),
        ExchangeRule(tuple((i, (i + 1) % 6) for i in range(6))),
        HopRule.from_lattice(lat),
        HopExchangeRule.from_lattice(lat, p_exchange=0.3),
    ):
        r = np.asarray(rule.draw(jax.random.PRNGKey(3), (200_000,)))
        if isinstance(rule, HopExchangeRule):
            nh, ne = rule.hop.n_choices, rule.exchange.n_choices
            p = np.r_[np.full(nh, 0.7 / nh), np.full(ne, 0.3 / ne)]
        else:
            n = (
                rule.n_sites
                if isinstance(rule, LocalRule)
                else (len(rule.pairs) if isinstance(rule, ExchangeRule) else rule.n_choices)
            )
            p = np.full(n, 1.0 / n)
        assert r.min() >= 0 and r.max() < len(p)
        counts = np.bincount(r, minlength=len(p))
        sd = np.sqrt(len(r) * p * (1 - p))
        assert np.all(np.abs(counts - len(r) * p) < 5 * sd), (rule, counts)
