"""Joint-chain VMC of a trainable DBM (nqs.drivers.dbm): estimators by enumeration, sampler, energy, optimization."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from nqs import hamiltonians, sr
from nqs.drivers import OptimizerConfig, run
from nqs.drivers.dbm import DBMVMC, joint_direction, joint_gradient
from nqs.exact import exact_energy_of_model, lowest_energies
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models.dbm import DeepBoltzmann
from nqs.sampling import ExchangeRule, LocalRule
from nqs.sampling.joint import (
    JointMetropolisSampler,
    exact_joint_weights,
    joint_local_energies,
    joint_log_derivatives,
)
from nqs.sr import SRConfig


def _chain(n):
    lat = make_lattice("chain", [n], True)
    return lat, tuple(int(c) for c in lat.sublattice), ExchangeRule(tuple(map(tuple, lat.bonds(1).tolist())))


def _exact_energy_fn(model, op, hil, unravel):
    """Jitted θ_flat -> ψᵀHψ/ψᵀψ with ψ from model.log_psi (Σ_d exact) on ``hil``."""
    states = jnp.asarray(hil.all_states())
    H = jnp.asarray(op.to_dense(hil))

    @jax.jit
    def energy(flat):
        lp = jax.vmap(model.log_psi, in_axes=(None, 0))(unravel(flat), states)
        psi = jnp.exp(lp - jnp.max(jnp.real(lp)))
        return jnp.real(jnp.vdot(psi, H @ psi) / jnp.vdot(psi, psi))

    return energy


# --------------------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("kind", ["heisenberg_marshall", "ising"])
def test_enumerated_estimators_are_exact(kind):
    """Σ over all (σ, d, d') with w ∝ φφ': ⟨ε⟩ = ⟨H⟩ and the cross force = ∇⟨H⟩ (finite differences)."""
    lat, sub, _ = _chain(4)
    if kind == "ising":
        op, sub = hamiltonians.ising(lat, 1.0, 0.7), None
    else:
        op = hamiltonians.heisenberg(lat)
    hil = SpinHilbert(4)
    model = DeepBoltzmann(4, 2, 2, init_scale=0.5, init_scale_deep=0.7, sublattice=sub)
    params = model.init(jax.random.PRNGKey(3))
    sig, deep, w = exact_joint_weights(model, params, hil.all_states())
    sig, deep, w = jnp.asarray(sig), jnp.asarray(deep), jnp.asarray(w)
    e = joint_local_energies(model, params, op, sig, deep)  # (n, 2)
    O = joint_log_derivatives(model, params, sig, deep)  # (n, 2, P)

    flat, unravel = ravel_pytree(params)
    energy = _exact_energy_fn(model, op, hil, unravel)
    e_exact = float(energy(flat))
    assert abs(e_exact - exact_energy_of_model(model, params, op, hil)) < 1e-12
    assert abs(float(jnp.real(jnp.sum(w * jnp.mean(e, axis=-1)))) - e_exact) < 1e-10

    h = 1e-5
    eye = jnp.eye(flat.size)
    g_fd = np.array([(energy(flat + h * eye[i]) - energy(flat - h * eye[i])) / (2 * h) for i in range(flat.size)])
    g = np.asarray(joint_gradient(O, e, w))
    assert np.max(np.abs(g)) > 0.1
    np.testing.assert_allclose(g, g_fd, atol=1e-8, rtol=0)
    # the same-replica product E_loc(σ,d) O(σ,d) is biased
    g_same = np.asarray(sr.gradient(O[:, 0], e[:, 0], w, "real"))
    assert np.max(np.abs(g_same - g_fd)) > 1e-2

    # SR solves: dense, MinSR (Woodbury for "mean") and CG agree for both metrics
    for metric in ("mean", "pair"):
        d_dense = joint_direction(O, e, w, metric, 0.01, "dense")
        for solver in ("minsr", "cg"):
            d = joint_direction(O, e, w, metric, 0.01, solver, tol=1e-12, maxiter=5000)
            np.testing.assert_allclose(d, d_dense, atol=1e-7 * float(jnp.max(jnp.abs(d_dense))))
    # with a huge shift SR reduces to F/λ = ∇E/(2λ) for either metric
    for metric in ("mean", "pair"):
        np.testing.assert_allclose(1e6 * joint_direction(O, e, w, metric, 1e6, "dense"), g / 2, atol=1e-5)


def test_log_psi_paths_agree():
    """Σ_d by log_psi_exact in one chunk (K ≤ 12) and in several (K > 12) matches brute force."""
    lat, sub, _ = _chain(4)
    sigma = jnp.asarray([1, -1, -1, 1], jnp.int8)
    for k in (3, 13):
        model = DeepBoltzmann(4, 3, k, init_scale=0.3, init_scale_deep=0.3, sublattice=sub)
        params = model.init(jax.random.PRNGKey(k))
        codes = np.arange(2**k)
        D = jnp.asarray(((codes[:, None] >> np.arange(k)) & 1) * 2 - 1)
        brute = jax.nn.logsumexp(jax.vmap(model.log_phi, in_axes=(None, None, 0))(params, sigma, D))
        lp = model.log_psi(params, sigma)
        assert abs(float(jnp.real(lp)) - float(brute)) < 1e-11
        assert abs(np.exp(1j * float(jnp.imag(lp))) - (-1) ** 1) < 1e-12  # one ↑ on sublattice 1 (site 3)


# --------------------------------------------------------------------------------- sampler
@pytest.mark.parametrize("rule_kind", ["exchange", "local"])
def test_sampler_visits_configurations_with_exact_weights(rule_kind):
    """Empirical (σ, d, d') frequencies (first and last of R deep draws) against φφ'/Z."""
    lat, _, exch = _chain(4)
    if rule_kind == "exchange":
        hil, rule = SpinHilbert(4, 0.0), exch
    else:
        hil, rule = SpinHilbert(4), LocalRule(4)
    model = DeepBoltzmann(4, 2, 2, init_scale=0.6, init_scale_deep=0.8)
    params = model.init(jax.random.PRNGKey(7))
    sig, deep, w = exact_joint_weights(model, params, hil.all_states())
    bits = np.concatenate([sig > 0, deep.reshape(len(sig), -1) > 0], axis=1).astype(np.int64)
    codes = bits @ (1 << np.arange(bits.shape[1]))
    order = np.argsort(codes)

    sampler = JointMetropolisSampler(hil, rule, n_chains=128, n_samples=128 * 300, n_discard=20, deep_samples=3)
    js, st = jax.jit(lambda p, s: sampler.sample(model, p, s))(params, sampler.init_state(jax.random.PRNGKey(1), 2))
    assert js.sigma.shape == (128, 300, 4) and js.deep.shape == (128, 300, 3, 2, 2)
    assert 0.2 < float(st.n_accepted / st.n_proposed) < 0.95
    n = 128 * 300
    tv_iid = 0.5 * np.sum(np.sqrt(2 * w * (1 - w) / (np.pi * n)))  # expected TV of n independent draws
    for r in (0, 2):
        s = np.asarray(js.sigma).reshape(n, 4)
        d = np.asarray(js.deep)[:, :, r].reshape(n, 4)
        c = np.concatenate([s > 0, d > 0], axis=1).astype(np.int64) @ (1 << np.arange(8))
        idx = order[np.searchsorted(codes[order], c)]
        assert np.all(codes[idx] == c)
        freq = np.bincount(idx, minlength=len(w)) / n
        tv = 0.5 * np.sum(np.abs(freq - w))
        assert tv < 3 * tv_iid, (tv, tv_iid)


# --------------------------------------------------------------------------------- energy by MC
def test_joint_chain_energy_of_random_dbm():
    """MC ⟨H⟩ of a fixed random DBM on the 8-site Heisenberg chain (Marshall) vs exact, within 5σ."""
    lat, sub, rule = _chain(8)
    op = hamiltonians.heisenberg(lat)
    hil = SpinHilbert(8, 0.0)
    model = DeepBoltzmann(8, 4, 4, init_scale=0.2, init_scale_deep=0.4, sublattice=sub)
    params = model.init(jax.random.PRNGKey(1))
    e_exact = exact_energy_of_model(model, params, op, hil)
    sig, deep, w = exact_joint_weights(model, params, hil.all_states())
    e_enum = jnp.sum(w * jnp.mean(joint_local_energies(model, params, op, jnp.asarray(sig), jnp.asarray(deep)), -1))
    assert abs(float(jnp.real(e_enum)) - e_exact) < 1e-10

    sampler = JointMetropolisSampler(hil, rule, n_chains=64, n_samples=8192, n_discard=32)
    vmc = DBMVMC(model, op, sampler)
    state = vmc.init(jax.random.PRNGKey(2), params)
    samples, weights, eps, stats, _ = jax.jit(vmc.estimate)(params, state.sampler_state)
    assert samples.shape == (64, 128, 8) and weights.shape == eps.shape == (64, 128)
    assert float(stats.tau_corr) < 10
    err = float(stats.error)
    assert 0 < err < 0.1
    assert abs(float(jnp.real(stats.mean)) - e_exact) < 5 * err, (stats, e_exact)


# --------------------------------------------------------------------------------- optimization
def test_optimization_heisenberg8_reaches_ed():
    """SR on the joint chain: M=8, K=4 DBM × Marshall on the 8-site chain within 1e-3 of ED; one compile."""
    lat, sub, rule = _chain(8)
    op = hamiltonians.heisenberg(lat)
    hil = SpinHilbert(8, 0.0)
    e0 = float(lowest_energies(op, hil)[0])
    model = DeepBoltzmann(8, 8, 4, sublattice=sub)
    sampler = JointMetropolisSampler(hil, rule, n_chains=16, n_samples=512, n_discard=8)
    n_steps = 200
    opt = OptimizerConfig("sr", 0.05, SRConfig(0.01), learning_rate_final=0.005, n_steps=n_steps)
    vmc = DBMVMC(model, op, sampler, opt, threads=1)  # one jitted step (the threads: test_two_threads_...)
    state = vmc.init(jax.random.PRNGKey(0))
    assert vmc.n_parameters(state) == 8 + 8 + 4 + 64 + 32
    assert vmc.solver(state) == "dense"
    assert "Marshall" in vmc.model.describe()
    step = vmc.make_step(vmc.solver(state))
    infos = []
    state = run(vmc, state, n_steps, lambda st, info, dt: infos.append(info), step)
    assert step._cache_size() == 1
    assert set(infos[-1]) >= {"energy", "acceptance", "diag_shift", "grad_norm", "finite"}
    assert 0.2 < float(infos[-1]["acceptance"]) < 0.9
    rel = abs(exact_energy_of_model(model, state.params, op, hil) - e0) / abs(e0)
    assert rel < 1e-3, rel
    # a longer evaluation the way nqs.workflow.evaluate makes one
    ev = dataclasses.replace(vmc, sampler=dataclasses.replace(vmc.sampler, n_samples=4096))
    stats = jax.jit(ev.estimate)(state.params, state.sampler_state)[3]
    assert abs(float(jnp.real(stats.mean)) - e0) < max(5 * float(stats.error), 2e-3 * abs(e0))


def test_solver_choice_minsr_for_many_parameters():
    lat, sub, rule = _chain(8)
    model = DeepBoltzmann(8, 16, 16, sublattice=sub)
    for metric, want in (("mean", "minsr"), ("pair", "minsr")):
        sampler = JointMetropolisSampler(SpinHilbert(8, 0.0), rule, n_chains=8, n_samples=64)
        vmc = DBMVMC(model, hamiltonians.heisenberg(lat), sampler, metric=metric)
        assert vmc.solver(vmc.init(jax.random.PRNGKey(0))) == want
    with pytest.raises(ValueError, match="metric"):
        DBMVMC(model, hamiltonians.heisenberg(lat), sampler, metric="exact")


def test_deep_decay_shrinks_U_after_the_update():
    """deep_decay μ: the step's new U equals the undecayed step's U times (1 − η μ); nothing else changes."""
    lat, sub, rule = _chain(8)
    op = hamiltonians.heisenberg(lat)
    model = DeepBoltzmann(8, 4, 4, sublattice=sub)
    sampler = JointMetropolisSampler(SpinHilbert(8, 0.0), rule, n_chains=8, n_samples=64, n_discard=2, deep_samples=1)
    opt = OptimizerConfig("sr", 0.05, SRConfig(0.01))
    plain, decayed = DBMVMC(model, op, sampler, opt), DBMVMC(model, op, sampler, opt, deep_decay=0.5)
    state = plain.init(jax.random.PRNGKey(0))
    a, _ = plain.make_step("dense")(state)
    b, _ = decayed.make_step("dense")(state)
    np.testing.assert_allclose(b.params["U"], a.params["U"] * (1 - 0.05 * 0.5), rtol=1e-12)
    np.testing.assert_allclose(b.params["W"], a.params["W"], rtol=1e-12)
    with pytest.raises(ValueError, match="deep_decay"):
        DBMVMC(model, op, sampler, opt, deep_decay=-1.0)


# --------------------------------------------------------------------------------- one local energy
def _brute_local_energies(model, params, op, hil, sigma, deep):
    """Σ_σ' H_σσ' s(σ')φ(σ',d)/(s(σ)φ(σ,d)) from the dense H and log φ of every σ' (no moves, no θ updates)."""
    states = jnp.asarray(hil.all_states())
    H = np.asarray(op.to_dense(hil))
    codes = {tuple(np.asarray(s).tolist()): i for i, s in enumerate(hil.all_states())}
    out = np.zeros(deep.shape[:2], complex)
    for n in range(len(sigma)):
        row = H[codes[tuple(np.asarray(sigma[n]).tolist())]]
        sgn = np.exp(1j * np.pi * np.asarray(jax.vmap(model.sign_parity)(states)))
        s0 = np.exp(1j * np.pi * float(model.sign_parity(sigma[n])))
        for r in range(deep.shape[1]):
            lp = np.asarray(jax.vmap(model.log_phi, in_axes=(None, 0, None))(params, states, deep[n, r]))
            l0 = complex(model.log_phi(params, sigma[n], deep[n, r]))
            out[n, r] = np.sum(row * sgn / s0 * np.exp(lp - l0))
    return out


def test_one_joint_local_energy_for_the_construction_and_the_trainable_dbm():
    """joint_local_energies (the driver's and imaginary_time.mc_energy's) against the dense H on the same (σ, d):
    the TFIM imaginary-time DBM (complex, h < 0), the trainable DBM with the Marshall sign, and that same φ
    written as a construction-style DBM (κ = −M ln 2 as a parameter) all to 1e-12."""
    from nqs.imaginary_time import tfim_dbm
    from nqs.models.dbm import DBM, LN2

    lat, sub, _ = _chain(4)
    hil = SpinHilbert(4)
    rng = np.random.default_rng(0)
    sigma = jnp.asarray(rng.choice([-1, 1], size=(6, 4)).astype(np.int8))

    dbm, p = tfim_dbm(lat, J=1.0, h=-0.7, dtau=0.2, n_steps=2)
    assert dbm.complex_params and dbm.n_deep > 0
    op = hamiltonians.ising(lat, 1.0, -0.7)
    deep = jnp.asarray(rng.choice([-1, 1], size=(6, 2, dbm.n_deep)).astype(np.int8))
    e = np.asarray(joint_local_energies(dbm, p, op, sigma, deep))
    np.testing.assert_allclose(e, _brute_local_energies(dbm, p, op, hil, sigma, deep), rtol=1e-12, atol=1e-12)

    op = hamiltonians.heisenberg(lat)
    model = DeepBoltzmann(4, 3, 2, init_scale=0.4, init_scale_deep=0.6, sublattice=sub)
    params = model.init(jax.random.PRNGKey(5))
    deep = jnp.asarray(rng.choice([-1, 1], size=(6, 2, 2)).astype(np.int8))
    e = np.asarray(joint_local_energies(model, params, op, sigma, deep))
    np.testing.assert_allclose(e, _brute_local_energies(model, params, op, hil, sigma, deep), rtol=1e-12, atol=1e-12)
    generic = DBM(4, 3, 2, sublattice=sub)
    gp = dict(params, kappa=jnp.asarray(-3 * LN2))
    np.testing.assert_allclose(
        np.asarray(joint_local_energies(generic, gp, op, sigma, deep)), e, rtol=1e-12, atol=1e-12
    )
    for s in hil.all_states()[::3]:
        s = jnp.asarray(s)
        assert abs(complex(generic.log_psi(gp, s)) - complex(model.log_psi(params, s))) < 1e-12


# --------------------------------------------------------------------------------- threads and devices
def _small_dbm_problem(n_chains=4):
    lat, sub, rule = _chain(8)
    op = hamiltonians.heisenberg(lat)
    model = DeepBoltzmann(8, 4, 3, sublattice=sub)
    sampler = JointMetropolisSampler(
        SpinHilbert(8, 0.0), rule, n_chains=n_chains, n_samples=16 * n_chains, n_discard=4, deep_samples=2
    )
    return model, op, sampler, OptimizerConfig("sr", 0.05, SRConfig(0.01))


def _two_steps(vmc):
    state = vmc.init(jax.random.PRNGKey(4))
    step = vmc.make_step()
    energies = []
    for _ in range(2):
        state, info = step(state)
        energies.append(float(jnp.real(info["energy"].mean)))
    return energies, np.asarray(ravel_pytree(state.params)[0])


@pytest.mark.parametrize("metric", ["pair", "mean"])
def test_two_threads_equal_one_thread(metric):
    """The chains sampled in 2 parts on 2 threads = 1 thread, over 2 SR steps (energies and params to 1e-10)."""
    model, op, sampler, opt = _small_dbm_problem()
    one = DBMVMC(model, op, sampler, opt, metric=metric, threads=1)
    two = DBMVMC(model, op, sampler, opt, metric=metric, threads=2)
    assert one.threads_in_use == 1 and two.threads_in_use == 2
    e1, p1 = _two_steps(one)
    e2, p2 = _two_steps(two)
    np.testing.assert_allclose(e2, e1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(p2, p1, rtol=0, atol=1e-10)
    # the threaded estimate is the plain one
    state = one.init(jax.random.PRNGKey(1))
    a = one.make_estimate()(state.params, state.sampler_state)
    b = two.make_estimate()(state.params, state.sampler_state)
    np.testing.assert_allclose(np.asarray(b[2]), np.asarray(a[2]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(b[4].sigma), np.asarray(a[4].sigma))
    with pytest.raises(ValueError, match="threads"):
        DBMVMC(model, op, sampler, opt, threads=3)


_MESH_SCRIPT = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
sys.path.insert(0, {tests!r})
import test_dbm_vmc as t
from nqs import parallel
from nqs.drivers.dbm import DBMVMC
model, op, sampler, opt = t._small_dbm_problem()
mesh = parallel.chain_mesh() if jax.device_count() > 1 else None
vmc = DBMVMC(model, op, sampler, opt, mesh=mesh)
e, p = t._two_steps(vmc)
print(json.dumps({{"devices": jax.device_count(), "energies": e, "params": p.tolist()}}))
"""


def test_two_devices_equal_one_device():
    """The chains split over a mesh of 2 (forced host) devices = one device, over 2 SR steps, to rounding."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    model, op, sampler, opt = _small_dbm_problem()
    e1, p1 = _two_steps(DBMVMC(model, op, sampler, opt, threads=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "NQS_"))}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    script = _MESH_SCRIPT.format(tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    assert res["devices"] == 2
    np.testing.assert_allclose(res["energies"], e1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res["params"], p1, rtol=0, atol=1e-10)
