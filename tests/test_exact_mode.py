"""Exact-sampling mode: estimators equal dense linear algebra; SR reaches the ED energy."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from nqs import hamiltonians as H
from nqs import sr
from nqs.drivers import VMC, OptimizerConfig, run
from nqs.estimators import force_and_s, local_energies, log_derivatives
from nqs.exact import exact_state, lowest_energies
from nqs.hilbert import SpinHilbert
from nqs.jax_utils import param_mode
from nqs.lattice import make_lattice
from nqs.models import RBM, MarshallSign, RBMRealAmpPhase
from nqs.sampling import ExactSampler


def _setup(model_cls, n=6, **kw):
    lat = make_lattice("chain", [n])
    hil = SpinHilbert(n, 0)
    op = H.heisenberg(lat)
    model = model_cls(n, init_scale=0.3, **kw)
    params = model.init(jax.random.PRNGKey(3))
    return lat, hil, op, model, params


@pytest.mark.parametrize(
    "model_cls", [RBM, RBMRealAmpPhase, partial(RBM, param_dtype="real")], ids=["rbm", "rbm_real", "rbm_real_params"]
)
def test_energy_force_s_equal_dense_linear_algebra(model_cls):
    lat, hil, op, model, params = _setup(model_cls)
    mode = param_mode(model, params)
    sampler = ExactSampler(hil)
    st = sampler.init_state(jax.random.PRNGKey(0))
    samples, w, _ = sampler.sample(model, params, st)
    e_loc = local_energies(model, params, op, samples)
    O = log_derivatives(model, params, samples, mode)
    F, S = force_and_s(O, e_loc, w)
    # dense reference: psi normalized, H matrix, derivative vectors
    psi = exact_state(model, params, hil)
    Hm = op.to_dense(hil)
    E = np.vdot(psi, Hm @ psi).real
    assert float(jnp.sum(w * e_loc).real) == pytest.approx(E, abs=1e-10)
    # |dpsi_k> = O_k psi; S_kl = <d_k|d_l> - <d_k|psi><psi|d_l>, F_k = <d_k|H|psi> - <d_k|psi> E
    Ok = np.asarray(O)
    D = Ok * psi[:, None]
    S_ref = D.conj().T @ D - np.outer(D.conj().T @ psi, psi.conj() @ D)
    F_ref = D.conj().T @ (Hm @ psi) - (D.conj().T @ psi) * E
    np.testing.assert_allclose(np.asarray(S), S_ref, atol=1e-10)
    np.testing.assert_allclose(np.asarray(F), F_ref, atol=1e-10)


@pytest.mark.parametrize(
    "mode_cls", [RBM, RBMRealAmpPhase, partial(RBM, param_dtype="real")], ids=["rbm", "rbm_real", "rbm_real_params"]
)
def test_dense_sr_equals_minsr(mode_cls):
    n = 8
    model = mode_cls(n, 2.0, init_scale=0.2)
    params = model.init(jax.random.PRNGKey(0))
    mode = param_mode(model, params)
    samples = SpinHilbert(n, 0).random_state(jax.random.PRNGKey(1), 40)
    O = log_derivatives(model, params, samples, mode)
    e = jax.random.normal(jax.random.PRNGKey(2), (40,)) + 1j * jax.random.normal(jax.random.PRNGKey(3), (40,))
    w = jnp.full(40, 1 / 40)
    d1 = sr.sr_direction(O, e, w, mode, 1e-3, "dense")
    d2 = sr.sr_direction(O, e, w, mode, 1e-3, "minsr")
    np.testing.assert_allclose(np.asarray(d1), np.asarray(d2), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("solver", ["dense", "minsr", "cg"])
@pytest.mark.parametrize("param_dtype", ["complex", "real"])
def test_full_vmc_step_in_exact_mode_matches_dense_update(solver, param_dtype):
    """Every SR solver — MinSR and CG on the RBM's factored O (σ ⊗ tanh θ, never the n × P matrix) —
    makes the update that dense linear algebra on the exact state gives."""
    lat, hil, op, model, params = _setup(RBM, param_dtype=param_dtype)
    mode = param_mode(model, params)
    cfg = OptimizerConfig("sr", 0.05, sr.SRConfig(diag_shift=0.01, solver=solver, cg_tol=1e-13, cg_maxiter=20000))
    vmc = VMC(model, op, ExactSampler(hil), cfg)
    state = vmc.init(jax.random.PRNGKey(0), params)
    new, info = vmc.make_step(solver)(state)
    # dense reference update
    psi = exact_state(model, params, hil)
    Hm = op.to_dense(hil)
    E = np.vdot(psi, Hm @ psi).real
    samples = jnp.asarray(hil.all_states())
    O = np.asarray(log_derivatives(model, params, samples, mode))
    D = O * psi[:, None]
    S = D.conj().T @ D - np.outer(D.conj().T @ psi, psi.conj() @ D)
    F = D.conj().T @ (Hm @ psi) - (D.conj().T @ psi) * E
    if mode == "real":
        S, F = S.real, F.real
    delta = np.linalg.solve(S + 0.01 * np.eye(len(F)), F)
    flat0 = ravel_pytree(params)[0]
    flat1 = ravel_pytree(new.params)[0]
    np.testing.assert_allclose(np.asarray(flat1), np.asarray(flat0) - 0.05 * delta, atol=1e-10)
    assert float(info["energy"].mean.real) == pytest.approx(E, abs=1e-10)
    assert float(info["energy"].variance) == pytest.approx(np.vdot(Hm @ psi, Hm @ psi).real - E**2, abs=1e-10)


def test_step_compiles_once():
    lat, hil, op, model, params = _setup(RBM)
    vmc = VMC(model, op, ExactSampler(hil), OptimizerConfig("sr", 0.05))
    state = vmc.init(jax.random.PRNGKey(0), params)
    step = vmc.make_step("dense")
    for _ in range(4):
        state, _ = step(state)
    assert step._cache_size() == 1


@pytest.mark.parametrize("real", [False, True])
def test_short_sr_run_reaches_ed_energy_on_8_site_chain(real):
    n = 8
    lat = make_lattice("chain", [n])
    hil = SpinHilbert(n, 0)
    op = H.heisenberg(lat)
    e0 = lowest_energies(op, hil)[0]
    model = RBM(n, 2.0, init_scale=0.05)
    if real:  # real parameters: the sign comes from the explicit Marshall rule
        model = MarshallSign(RBM(n, 2.0, init_scale=0.05, param_dtype="real"), tuple(lat.sublattice.tolist()))
    vmc = VMC(model, op, ExactSampler(hil), OptimizerConfig("sr", 0.1, sr.SRConfig(diag_shift=1e-3)))
    state = vmc.init(jax.random.PRNGKey(1))
    state = run(vmc, state, 300)
    _, _, _, stats, _ = jax.jit(vmc.estimate)(state.params, state.sampler_state)
    e = float(stats.mean.real)
    assert abs(e - e0) / abs(e0) < 1e-4, (e, e0)


def test_real_derivatives_path_equals_complex_path():
    """A real RBM's O has zero imaginary part: the real-row SR equals the stacked complex form."""
    n = 8
    model = MarshallSign(RBM(n, 1.0, init_scale=0.3, param_dtype="real"), tuple(i % 2 for i in range(n)))
    params = model.init(jax.random.PRNGKey(0))
    samples = SpinHilbert(n, 0).random_state(jax.random.PRNGKey(1), 30)
    O_real = log_derivatives(model, params, samples, "real")
    assert not jnp.iscomplexobj(O_real)
    O_cplx = O_real.astype(complex)  # what the generic path would build
    e = jax.random.normal(jax.random.PRNGKey(2), (30,)) + 1j * jax.random.normal(jax.random.PRNGKey(3), (30,))
    w = jnp.full(30, 1 / 30)
    for solver in ("dense", "minsr"):
        d1 = sr.sr_direction(O_real, e, w, "real", 1e-3, solver)
        d2 = sr.sr_direction(O_cplx, e, w, "real", 1e-3, solver)
        np.testing.assert_allclose(np.asarray(d1), np.asarray(d2), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("mode_cls", ["holomorphic", "real"])
def test_rescaled_sr_is_the_relative_shift_for_every_solver(mode_cls):
    """rescale=True solves (S + λ diag S) δ = F (exact mode, dense reference); dense = MinSR = CG."""
    if mode_cls == "holomorphic":
        lat, hil, op, model, params = _setup(RBM)
    else:
        lat, hil, op, model, params = _setup(RBM, param_dtype="real")
    samples = jnp.asarray(hil.all_states())
    psi = exact_state(model, params, hil)
    w = jnp.asarray(np.abs(psi) ** 2)
    e = local_energies(model, params, op, samples)
    mode = param_mode(model, params)
    O = log_derivatives(model, params, samples, mode)
    F, S = force_and_s(O, e, w)
    F, S = np.asarray(F), np.asarray(S)
    if mode == "real":
        F, S = F.real, S.real
    ref = np.linalg.solve(S + 1e-2 * np.diag(np.diag(S)), F)
    for solver in ("dense", "minsr", "cg"):
        d = sr.sr_direction(O, e, w, mode, 1e-2, solver, tol=1e-12, maxiter=5000, rescale=True)
        np.testing.assert_allclose(np.asarray(d), ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("solver", ["dense", "minsr"])
def test_rescaled_sr_holds_parameters_below_the_cutoff(solver):
    """Regression: with rescale, a parameter whose log-derivative hardly fluctuates (S_kk ~ 1e-8 of the
    largest, as the biases of a parity-projected symmetric RBM at the start) got a step ~ 1/√S_kk and
    the run went to NaN.  Below ``rescale_cutoff · max S_kk`` it is held; the others solve the reduced
    relative-shift system."""
    rng = np.random.default_rng(0)
    n, p = 200, 6
    O = rng.normal(size=(n, p)) + 1j * rng.normal(size=(n, p))
    O[:, 2] *= 1e-4  # S_22 ~ 1e-8 · the others
    e = rng.normal(size=n) + 1j * rng.normal(size=n)
    w = jnp.full(n, 1.0 / n)
    d = np.asarray(sr.sr_direction(jnp.asarray(O), jnp.asarray(e), w, "holomorphic", 1e-2, solver, rescale=True))
    assert np.all(np.isfinite(d)) and d[2] == 0
    F, S = force_and_s(jnp.asarray(O), jnp.asarray(e), w)
    keep = [0, 1, 3, 4, 5]
    Sk, Fk = np.asarray(S)[np.ix_(keep, keep)], np.asarray(F)[keep]
    np.testing.assert_allclose(d[keep], np.linalg.solve(Sk + 1e-2 * np.diag(np.diag(Sk)), Fk), rtol=1e-8, atol=1e-12)
    # with no cutoff the tiny column is solved for, and its step is ~ 1/√S_kk larger than the rest
    d0 = np.asarray(
        sr.sr_direction(
            jnp.asarray(O), jnp.asarray(e), w, "holomorphic", 1e-2, solver, rescale=True, rescale_cutoff=0.0
        )
    )
    assert abs(d0[2]) > 100 * np.max(np.abs(d0[keep]))


def _projected_j1j2(size=(4, 2)):
    from nqs.lattice import little_group, space_characters
    from nqs.models import Projected

    lat = make_lattice("square", list(size))
    hil = SpinHilbert(lat.n_sites, 0)
    op = H.j1j2(lat, 1.0, 0.5)
    lg = little_group(lat, 0)
    model = Projected(RBM(lat.n_sites, alpha=1, init_scale=0.3), lg, space_characters(lat, lg, 0, "A1"), spin_parity=1)
    return lat, hil, op, model, model.init(jax.random.PRNGKey(5))


def test_orbit_reduced_exact_mode_equals_full_enumeration():
    """A projected model in exact mode over one configuration per orbit (weights = orbit sizes) gives the
    same energy, force and S as enumerating every basis state, and the orbits tile the sector."""
    from nqs.sampling.exact import orbit_representatives
    from nqs.workflow.models import orbits as _orbits

    lat, hil, op, model, params = _projected_j1j2()
    orbits = _orbits(model, op, hil)
    assert orbits is not None
    reps, sizes = orbits
    assert sizes.sum() == hil.n_states and len(sizes) < hil.n_states / 4
    assert np.array_equal(orbit_representatives(hil, model.permutations, True)[1], sizes)
    mode = param_mode(model, params)
    out = []
    for sampler in (ExactSampler(hil), ExactSampler(hil, orbits)):

        @jax.jit
        def moments(p, sampler=sampler):
            samples, w, _ = sampler.sample(model, p, sampler.init_state(jax.random.PRNGKey(0)))
            e_loc = local_energies(model, p, op, samples)
            F, S = force_and_s(log_derivatives(model, p, samples, mode), e_loc, w)
            return jnp.sum(w * e_loc).real, F, S

        e, F, S = moments(params)
        out.append((float(e), np.asarray(F), np.asarray(S)))
    (e_full, F_full, S_full), (e_red, F_red, S_red) = out
    psi = exact_state(model, params, hil)
    assert e_full == pytest.approx(float(np.vdot(psi, op.to_dense(hil) @ psi).real), abs=1e-10)
    assert e_red == pytest.approx(e_full, abs=1e-10)
    np.testing.assert_allclose(F_red, F_full, atol=1e-10)
    np.testing.assert_allclose(S_red, S_full, atol=1e-10)


def test_orbit_reduction_refused_when_the_hamiltonian_breaks_the_symmetry():
    """One bond made stronger: the group no longer commutes with H, so exact mode enumerates every state."""
    from nqs.operators.pauli import PauliSum
    from nqs.workflow.models import orbits as _orbits

    lat, hil, op, model, _ = _projected_j1j2()
    bond = PauliSum(lat.n_sites, [(0.3, "ZZ", (0, 1))])
    assert _orbits(model, op + bond, hil) is None
