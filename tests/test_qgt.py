"""TDVP solves (nqs.qgt): regularisers against direct linear algebra, both eigenbases, singular S, the SNR cut."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs.estimators import FactoredJacobian, centered
from nqs.qgt import SolveInfo, TDVPSolver, tdvp_solve

PINV = TDVPSolver(regulariser="pinv", rcond=1e-12, rcond_smooth=0.0)


def _problem(n, p, seed=0, cplx=True):
    rng = np.random.default_rng(seed)
    if cplx:
        Oc = rng.normal(size=(n, p)) + 1j * rng.normal(size=(n, p))
        ec = rng.normal(size=n) + 1j * rng.normal(size=n)
    else:
        Oc, ec = rng.normal(size=(n, p)), rng.normal(size=n) + 1j * rng.normal(size=n)
    return Oc / np.sqrt(n), ec / np.sqrt(n)


def _real_lstsq(Oc, ec):
    A = np.concatenate([Oc.real, Oc.imag])
    b = np.concatenate([ec.real, ec.imag])
    return np.linalg.lstsq(A, b, rcond=None)[0]


@pytest.mark.parametrize("n,p", [(40, 12), (12, 40)])
def test_pinv_is_lstsq_holomorphic(n, p):
    Oc, ec = _problem(n, p)
    x, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), "holomorphic", PINV, mcmc=False)
    ref = np.linalg.lstsq(Oc, ec, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-9, atol=1e-11)
    assert x.dtype == jnp.complex128
    assert float(info.n_kept) == pytest.approx(min(n, p))
    assert float(info.snr_min) == np.inf


@pytest.mark.parametrize("n,p,cplx", [(40, 12, True), (12, 40, True), (6, 40, True), (40, 12, False), (12, 40, False)])
def test_pinv_is_stacked_real_lstsq(n, p, cplx):
    """Real mode: Re S θ̇ = Re F is the least-squares problem of [Re Ō; Im Ō], [Re ε; Im ε] (for a real Ō the
    imaginary rows are zero; ε stays complex)."""
    Oc, ec = _problem(n, p, seed=1, cplx=cplx)
    x, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), "real", PINV, mcmc=False)
    assert x.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(x), _real_lstsq(Oc, ec), rtol=1e-9, atol=1e-11)
    S, F = (Oc.conj().T @ Oc).real, (Oc.conj().T @ ec).real
    if np.linalg.matrix_rank(S) == p:
        np.testing.assert_allclose(np.asarray(x), np.linalg.solve(S, F), rtol=1e-8)
    # residual with the full complex ε (the imaginary part of ε that a real Ō cannot reach counts)
    r = np.linalg.norm(Oc @ np.asarray(x) - ec) / np.linalg.norm(ec)
    assert float(info.residual) == pytest.approx(r, rel=1e-10)


@pytest.mark.parametrize("mode", ["holomorphic", "real"])
@pytest.mark.parametrize("n,p", [(30, 10), (10, 30)])
@pytest.mark.parametrize("reg", ["pinv", "shift"])
def test_parameter_and_sample_space_agree(mode, n, p, reg):
    Oc, ec = _problem(n, p, seed=2)
    solver = TDVPSolver(regulariser=reg, diag_shift=1e-2)
    xs, infos = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, solver, mcmc=False, space="parameters")
    xg, infog = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, solver, mcmc=False, space="samples")
    np.testing.assert_allclose(np.asarray(xs), np.asarray(xg), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(float(infos.residual), float(infog.residual), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(float(infos.n_kept), float(infog.n_kept), rtol=1e-8)


@pytest.mark.parametrize("mode", ["holomorphic", "real"])
@pytest.mark.parametrize("n,p", [(30, 10), (10, 30)])
def test_shift_is_direct_solve(mode, n, p):
    Oc, ec = _problem(n, p, seed=3)
    lam = 0.05
    x, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, TDVPSolver("shift", diag_shift=lam), mcmc=True)
    S, F = Oc.conj().T @ Oc, Oc.conj().T @ ec
    if mode == "real":
        S, F = S.real, F.real
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(S + lam * np.eye(p), F), rtol=1e-9, atol=1e-12)
    sig = np.linalg.eigvalsh(S)
    assert float(info.n_kept) == pytest.approx(np.sum(sig / (sig + lam)), rel=1e-8)
    assert float(info.snr_min) == np.inf
    # residual = the quadratic form (θ̇†Sθ̇ − 2 Re θ̇†F + ‖ε‖²)/‖ε‖²
    xx = np.asarray(x)
    e2 = np.vdot(ec, ec).real
    r2 = (np.vdot(xx, S @ xx).real - 2 * np.vdot(xx, F).real + e2) / e2
    assert float(info.residual) == pytest.approx(np.sqrt(r2), rel=1e-9)


@pytest.mark.parametrize("mode", ["holomorphic", "real"])
@pytest.mark.parametrize("n,p", [(30, 10), (10, 30)])
def test_residual(mode, n, p):
    Oc, _ = _problem(n, p, seed=4)
    rng = np.random.default_rng(5)
    theta = rng.normal(size=p) + (1j * rng.normal(size=p) if mode == "holomorphic" else 0)
    solver = TDVPSolver("pinv")
    _, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(Oc @ theta), mode, solver, mcmc=False)
    assert float(info.residual) < 1e-7  # exactly representable flow
    ec = rng.normal(size=n) + 1j * rng.normal(size=n)
    x, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, solver, mcmc=False)
    r = np.linalg.norm(Oc @ np.asarray(x) - ec) / np.linalg.norm(ec)
    if n > p:  # more equations than unknowns: not representable
        assert 1e-3 < r <= 1
    assert float(info.residual) == pytest.approx(r, rel=1e-10)
    _, info = tdvp_solve(jnp.asarray(Oc), jnp.zeros(n, complex), mode, solver, mcmc=True)
    assert float(info.residual) == 0.0


@pytest.mark.parametrize("mode", ["holomorphic", "real"])
@pytest.mark.parametrize("reg", ["pinv", "snr", "shift"])
@pytest.mark.parametrize("space", ["parameters", "samples"])
def test_singular_s(mode, reg, space):
    Oc, ec = _problem(16, 6, seed=6)
    Oc[:, 3] = Oc[:, 1]  # duplicate column
    Oc[:, 4] = 0  # zero column
    solver = TDVPSolver(reg, diag_shift=1e-3)
    x, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, solver, mcmc=True, space=space)
    x = np.asarray(x)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(np.asarray(info.residual)))
    assert x[4] == 0
    np.testing.assert_allclose(x[3], x[1], rtol=1e-8)  # the minimum-norm split of a duplicate
    if reg == "pinv":
        keep = [0, 1, 2, 5]
        ref = _real_lstsq(Oc, ec) if mode == "real" else np.linalg.lstsq(Oc, ec, rcond=None)[0]
        np.testing.assert_allclose(x, ref, rtol=1e-7, atol=1e-10)
        assert float(info.n_kept) == pytest.approx(len(keep))
    # Ō = 0: S = 0, nothing moves
    x0, info0 = tdvp_solve(jnp.zeros_like(jnp.asarray(Oc)), jnp.asarray(ec), mode, solver, mcmc=True, space=space)
    assert np.all(np.asarray(x0) == 0)
    assert float(info0.n_kept) == 0 and float(info0.residual) == pytest.approx(1.0)
    assert not np.isnan(float(info0.snr_min))


@pytest.mark.parametrize("mode", ["holomorphic", "real"])
def test_snr_without_noise_is_pinv(mode):
    Oc, ec = _problem(30, 10, seed=7)
    a = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, TDVPSolver("snr"), mcmc=False)
    b = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, TDVPSolver("pinv"), mcmc=False)
    for u, v in zip(a[0:1] + tuple(a[1]), b[0:1] + tuple(b[1]), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    # every sample contributing the same (ε_s ∝ Ō_s with |Ō_s| the same): no variance, SNR = ∞, no NaN
    Oc1 = np.tile([[1.0, -1.0]], (8, 1)) * np.array([1, -1] * 4)[:, None] / np.sqrt(8)
    x, info = tdvp_solve(jnp.asarray(Oc1), jnp.asarray(0.5 * Oc1[:, 0]), mode, TDVPSolver("snr"), mcmc=True)
    assert np.all(np.isfinite(np.asarray(x))) and float(info.snr_min) == np.inf
    np.testing.assert_allclose(np.asarray(Oc1 @ np.asarray(x)), 0.5 * Oc1[:, 0], atol=1e-12)


def _snr_numpy(Oc, ec):
    """SNR of every eigenmode of S = Ō†Ō (ascending σ), straight from the definition."""
    n = Oc.shape[0]
    sig, V = np.linalg.eigh(Oc.conj().T @ Oc)
    q = (Oc.conj() * ec[:, None]) @ V.conj()  # q_sk = (V† Ō_s^* ε_s)_k
    rho = q.sum(0)
    return sig, np.abs(rho) / np.sqrt(np.var(n * q, axis=0) / n), V, rho


@pytest.mark.parametrize("mode", ["holomorphic", "real"])
def test_snr_cuts_a_noise_direction(mode):
    """O = [x, 0.3·s] with random signs s, E = 3x + noise: the s direction carries no signal and is cut, x is kept."""
    n = 1000
    rng = np.random.default_rng(11)
    x, s, eta = rng.normal(size=n), rng.choice([-1.0, 1.0], size=n), rng.normal(size=n)
    O = np.stack([x, 0.3 * s], axis=1).astype(complex if mode == "holomorphic" else float)
    w = jnp.full(n, 1.0 / n)
    Oc, ec = centered(jnp.asarray(O), jnp.asarray(-(3 * x + eta)).astype(complex), w)
    Oc, ec = np.asarray(Oc), np.asarray(ec)
    sig, snr, V, rho = _snr_numpy(Oc, ec)
    assert snr[0] < 1 < 10 < snr[1]  # mode 0 (small σ) is the noise column, mode 1 the signal
    assert abs(V[1, 0]) > 0.99 and abs(V[0, 1]) > 0.99
    cut = TDVPSolver("snr", snr_cut=2.0)
    xs, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, cut, mcmc=True)
    xp, _ = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, TDVPSolver("pinv"), mcmc=True)
    assert float(info.snr_min) == pytest.approx(snr[0], rel=1e-8)
    factor = 1 / (1 + (2.0 / snr) ** 6)
    assert float(info.n_kept) == pytest.approx(factor.sum(), rel=1e-8)
    ref = V @ (factor * rho / sig)
    ref = ref.real if mode == "real" else ref
    np.testing.assert_allclose(np.asarray(xs), ref, rtol=1e-8)
    ms, mp = V.conj().T @ np.asarray(xs), V.conj().T @ np.asarray(xp)  # mode amplitudes
    assert abs(ms[0]) < 0.05 * abs(mp[0])  # noise direction suppressed
    assert ms[1] == pytest.approx(mp[1], rel=1e-5)  # signal direction kept (factor 1 − O((2/SNR)⁶))
    assert float(xs[0].real) == pytest.approx(-3.0, rel=0.1)
    # the sample-space eigenbasis gives the same
    xg, infog = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, cut, mcmc=True, space="samples")
    np.testing.assert_allclose(np.asarray(xg), np.asarray(xs), rtol=1e-7)
    assert float(infog.snr_min) == pytest.approx(snr[0], rel=1e-6)
    # a larger effective sample size shrinks the error bars and keeps more
    _, info4 = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, cut, mcmc=True, n_samples=4 * n)
    assert float(info4.snr_min) == pytest.approx(2 * snr[0], rel=1e-8)


@pytest.mark.parametrize("reg", ["pinv", "snr", "shift"])
def test_jit(reg):
    Oc, ec = _problem(20, 8, seed=8)
    solver = TDVPSolver(reg, diag_shift=1e-3)
    f = jax.jit(partial(tdvp_solve, mode="holomorphic", solver=solver, mcmc=True))
    x, info = f(jnp.asarray(Oc), jnp.asarray(ec))
    assert isinstance(info, SolveInfo)
    y, _ = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), "holomorphic", solver, True)
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10)
    # single-precision input is solved in double precision
    x32, _ = f(jnp.asarray(Oc, jnp.complex64), jnp.asarray(ec, jnp.complex64))
    assert x32.dtype == jnp.complex128
    np.testing.assert_allclose(np.asarray(x32), np.asarray(y), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"regulariser": "tikhonov"}, "regulariser"),
        ({"diag_shift": -1.0}, "diag_shift"),
        ({"regulariser": "shift"}, "diag_shift"),
        ({"rcond": -1e-3}, "rcond"),
        ({"rcond": float("nan")}, "rcond"),
        ({"rcond_smooth": "small"}, "rcond_smooth"),
        ({"snr_cut": True}, "snr_cut"),
        ({"snr_cut": float("inf")}, "snr_cut"),
    ],
)
def test_invalid_solver(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        TDVPSolver(**kwargs)


def test_invalid_mode():
    Oc, ec = _problem(4, 2)
    with pytest.raises(ValueError, match="^mode:"):
        tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), "mixed", TDVPSolver(), mcmc=False)


def test_factored_jacobian_is_made_dense():
    rng = np.random.default_rng(9)
    x, u, v = (jnp.asarray(rng.normal(size=(20, k))) for k in (2, 3, 4))
    J = FactoredJacobian([(x,), (u, v)])
    e = jnp.asarray(rng.normal(size=20) + 1j * rng.normal(size=20))
    a, ia = tdvp_solve(J, e, "real", TDVPSolver(), mcmc=True)
    b, ib = tdvp_solve(J.dense(), e, "real", TDVPSolver(), mcmc=True)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(ia.residual) == float(ib.residual)


@pytest.mark.parametrize("mode", ["holomorphic", "real"])
@pytest.mark.parametrize("reg", ["shift", "pinv"])
def test_rescaled_solve(mode, reg):
    """rescale: the solve with S at unit diagonal — the same θ̇ from the rows (tdvp_solve) and from S, F
    (tdvp_solve_sf); for the shift it is the relative shift (S + λ diag S) θ̇ = F; columns of very different
    sizes do not change the pseudo-inverse's answer (it is scale invariant where nothing is cut)."""
    from nqs.qgt import tdvp_solve_sf

    Oc, ec = _problem(40, 12, seed=5)
    Oc = Oc * np.logspace(-3, 1, 12)[None, :]
    solver = TDVPSolver(reg, diag_shift=0.05 if reg == "shift" else 0.0, rcond=1e-14, rcond_smooth=0.0, rescale=True)
    x, info = tdvp_solve(jnp.asarray(Oc), jnp.asarray(ec), mode, solver, mcmc=False)
    S, F = Oc.conj().T @ Oc, Oc.conj().T @ ec
    x_sf, info_sf = tdvp_solve_sf(jnp.asarray(S), jnp.asarray(F), np.vdot(ec, ec).real, mode, solver)
    np.testing.assert_allclose(np.asarray(x_sf), np.asarray(x), rtol=1e-8, atol=1e-12)
    assert float(info_sf.residual) == pytest.approx(float(info.residual), rel=1e-6)
    if mode == "real":
        S, F = S.real, F.real
    if reg == "shift":
        expected = np.linalg.solve(S + 0.05 * np.diag(np.diag(S).real), F)
    else:
        expected = np.linalg.solve(S, F)
    np.testing.assert_allclose(np.asarray(x), expected, rtol=1e-7, atol=1e-10)
