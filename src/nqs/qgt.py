"""The TDVP equation on the quantum geometric tensor, solved with a regulariser.

The time-dependent variational principle moves the parameters θ of ψ_θ so that the variational flow
Σ_k θ̇_k ∂_k ψ stays as close as possible to the exact one, c H ψ, with c = −i in real time and c = −1
in imaginary time.  From samples x_s with weights w_s (1/n for Monte Carlo, |ψ|²/Z for exact
enumeration) and the centred rows

    Ō_sk = √w_s (O_k(x_s) − ⟨O_k⟩),   O_k = ∂ log ψ / ∂θ_k,       ε_s = √w_s · c · (E_loc(x_s) − ⟨E_loc⟩)

(:func:`nqs.estimators.centered`, the caller multiplies by c) this is the least-squares problem

    min_θ̇ ‖Ō θ̇ − ε‖²,   i.e.   S θ̇ = F,   S = Ō†Ō (the quantum geometric tensor),   F = Ō†ε.

``mode = "holomorphic"``: θ̇ complex, the equation as written.  ``mode = "real"``: θ̇ real,
Re S θ̇ = Re F, which is the least-squares problem of the stacked real rows [Re Ō; Im Ō], [Re ε; Im ε].

S is singular or ill-conditioned in practice (redundant parameters, few samples), and its small
eigenvalues are the ones noise dominates, so the solve is regularised.  In the eigenbasis
S = V diag(σ) V†, ρ = V† F, every regulariser is θ̇ = V diag(r_k / σ_k) ρ with a factor r_k ∈ [0, 1]:

* ``"shift"``: (S + λ 1) θ̇ = F, i.e. r_k = σ_k / (σ_k + λ), solved by Cholesky without the
  eigenbasis.  Cheap, but it damps every direction, not only the bad ones, and so biases the flow;
  the error does not vanish with more samples.
* ``"pinv"``: the smooth pseudo-inverse, r_k = [σ_k ≥ rcond·σ_max] / (1 + (rcond_smooth·σ_max/σ_k)⁶).
  It drops the directions S cannot see (σ_k ≈ 0) and leaves the others exact.
* ``"snr"``: the pseudo-inverse times 1 / (1 + (snr_cut/SNR_k)⁶), where SNR_k is the signal-to-noise ratio
  of ρ_k over the Monte Carlo samples (Schmitt & Heyl, PRL 125, 100503 (2020)).  It drops the directions
  that sampling noise dominates, which otherwise make the real-time flow unstable.  Without Monte Carlo
  noise (exact enumeration, ``mcmc=False``) it is ``"pinv"``.

The signal-to-noise ratio: ρ = Σ_s q_s with the per-sample contributions q_s = V† (Ō_s^* ε_s)
(real mode: V† Re(Ō_s^* ε_s)).  With weights 1/n the values n·q_s have mean ρ, and
SNR_k = |ρ_k| / √(Var_s(n·q_sk) / n) (n: ``n_samples``, the number of rows unless given).  A mode without
variance (every sample contributes the same, up to rounding) has SNR = ∞ and is kept.

The eigenbasis comes from the P × P matrix S when P ≤ n (rows of Ō; 2n stacked rows in real mode for a
complex Ō), otherwise from the n × n Gram matrix G = Ō Ō† = U diag(σ) U†, whose non-zero eigenvalues are
those of S with eigenvectors V = Ō† U σ^{-1/2}; both give the same θ̇.  The solve runs in float64 /
complex128 whatever Ō's precision.

The returned residual is the relative TDVP error as jVMC reports it, the relative distance between the
variational and the exact flow,

    r² = ‖Ō θ̇ − ε‖² / ‖ε‖² = (θ̇†S θ̇ − 2 Re θ̇†F + ‖ε‖²) / ‖ε‖²,

(0 when ε = 0).  It is evaluated as the norm of Ō θ̇ − ε, which is the same number without the
cancellation of the quadratic form when the flow is nearly representable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .estimators import FactoredJacobian
from .sr import _mm, _stack_real

REGULARISERS = ("shift", "pinv", "snr")
MODES = ("holomorphic", "real")
SPACES = ("auto", "parameters", "samples")


@dataclass(frozen=True)
class TDVPSolver:
    """How :func:`tdvp_solve` regularises S θ̇ = F (see the module docstring for the formulas).

    ``regulariser``: ``"shift"`` ((S + λ 1) θ̇ = F), ``"pinv"`` (smooth pseudo-inverse) or ``"snr"``
    (pseudo-inverse and signal-to-noise cut).
    """

    regulariser: str = "snr"
    #: λ of ``"shift"`` (must be > 0 there).
    diag_shift: float = 0.0
    #: Hard cut: eigenvalues σ_k < rcond·σ_max are dropped.
    rcond: float = 1e-14
    #: Smooth cut: factor 1 / (1 + (rcond_smooth·σ_max/σ_k)⁶).
    rcond_smooth: float = 1e-8
    #: ``"snr"``: factor 1 / (1 + (snr_cut/SNR_k)⁶).
    snr_cut: float = 2.0
    #: Solve for √S_kk θ̇_k (S rescaled to unit diagonal, as jVMC does): the cuts then judge every parameter on
    #: its own scale, not by the size of its log-derivative.  Parameters with S_kk = 0 do not move.
    rescale: bool = False

    def __post_init__(self):
        if self.regulariser not in REGULARISERS:
            raise ValueError(f"regulariser: {self.regulariser!r} is not one of {', '.join(REGULARISERS)}")
        for name in ("diag_shift", "rcond", "rcond_smooth", "snr_cut"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{name}: {v!r} is not a number")
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name}: {v!r} must be a finite number >= 0")
        if self.regulariser == "shift" and not self.diag_shift > 0:
            raise ValueError(f"diag_shift: {self.diag_shift!r} must be > 0 for regulariser 'shift'")

    def describe(self) -> str:
        """One line: the regulariser and its settings."""
        scaled = ", S rescaled to unit diagonal" if self.rescale else ""
        if self.regulariser == "shift":
            return f"diagonal shift {self.diag_shift:g}{scaled}"
        text = f"pseudo-inverse (rcond {self.rcond:g}, smooth {self.rcond_smooth:g}{scaled})"
        return text + (f" with signal-to-noise cut {self.snr_cut:g}" if self.regulariser == "snr" else "")


class SolveInfo(NamedTuple):
    """Diagnostics of one TDVP solve."""

    #: Relative TDVP error r = ‖Ō θ̇ − ε‖ / ‖ε‖ (0 when ε = 0).
    residual: jax.Array
    #: Effective rank: the sum of the regularisation factors r_k.
    n_kept: jax.Array
    #: Smallest signal-to-noise ratio over the modes that pass the hard cut (∞ when not computed).
    snr_min: jax.Array


def _hi(x: jax.Array) -> jax.Array:
    """``x`` in float64 / complex128."""
    return x.astype(jnp.result_type(x.dtype, jnp.float64))


def _smooth_factor(sigma: jax.Array, solver: TDVPSolver) -> tuple[jax.Array, jax.Array]:
    """Pseudo-inverse factors r_k and the hard-cut mask (σ_k > 0 and σ_k ≥ rcond·σ_max)."""
    smax = jnp.max(sigma)
    kept = (sigma > 0) & (sigma >= solver.rcond * smax)
    safe = jnp.where(kept, sigma, 1.0)
    smooth = 1.0 / (1.0 + (solver.rcond_smooth * smax / safe) ** 6)
    return jnp.where(kept, smooth, 0.0), kept


def _snr(proj: jax.Array, b: jax.Array, n: int, stacked: bool, n_samples) -> jax.Array:
    """SNR_k = |ρ_k| / √(Var_s(n·q_sk) / n_samples) from the projected rows ``proj`` = A V (rows, K) and the
    right-hand side ``b`` (rows,): q_sk = conj(proj_sk) b_s, the two stacked halves of a sample added."""
    q = jnp.conj(proj) * b[:, None]
    if stacked:
        q = q[:n] + q[n:]
    x = n * q
    rho = jnp.mean(x, axis=0)
    spread = jnp.sqrt(jnp.mean(jnp.abs(x - rho) ** 2, axis=0))
    # a spread at the rounding level of the values is none: every sample contributes the same
    noisy = spread > 8 * jnp.finfo(spread.dtype).eps * jnp.mean(jnp.abs(x), axis=0)
    err = jnp.where(noisy, spread, 1.0) / jnp.sqrt(n_samples)
    return jnp.where(noisy, jnp.abs(rho) / err, jnp.inf)


def _snr_factor(snr: jax.Array, cut: float) -> jax.Array:
    """1 / (1 + (cut/SNR)⁶): 1 for SNR = ∞ or cut = 0, 0 for SNR = 0 < cut, never NaN."""
    tiny = jnp.finfo(snr.dtype).tiny
    t = jnp.where(jnp.isinf(snr), 0.0, cut / jnp.maximum(snr, tiny))
    return 1.0 / (1.0 + t**6)


class _Dense:
    """Rows A (rows, P) as a matrix: ``gram()`` = A A† and ``rmatvec(y)`` = A† y."""

    def __init__(self, A: jax.Array):
        self.A = A

    def gram(self) -> jax.Array:
        return _mm(self.A, self.A.conj().T)

    def rmatvec(self, y: jax.Array) -> jax.Array:
        return _mm(self.A.conj().T, y.astype(self.A.dtype))


class _OnFactors:
    """The centred rows Ō of a factored O (:class:`~nqs.sr._Centred`) with ``gram()`` and ``rmatvec`` in the
    working precision of the solve, never forming the n × P matrix."""

    def __init__(self, centred):
        self.c = centred

    def gram(self) -> jax.Array:
        return _hi(self.c.gram())

    def rmatvec(self, y: jax.Array) -> jax.Array:
        return _hi(self.c.rmatvec(y.astype(jnp.result_type(y.dtype, self.c.O.dtype))))


def _shift_solve(A, b: jax.Array, lam: float, samples: bool) -> tuple[jax.Array, jax.Array]:
    """θ̇ = (A†A + λ)⁻¹ A†b by Cholesky (in sample space: A†(AA† + λ)⁻¹ b) and the effective rank
    tr(S (S + λ)⁻¹) = m − λ tr((M + λ)⁻¹) = m − λ ‖L⁻¹‖²_F for the m × m system M + λ = L L†.  ``A``: the
    dense rows, or in sample space the rows as an operator (:class:`_Dense`, :class:`_OnFactors`)."""
    if samples:
        op = _Dense(A) if isinstance(A, jax.Array) else A
        M = op.gram()
    else:
        M = _mm(A.conj().T, A)
    m = M.shape[0]
    L = jnp.linalg.cholesky(M + lam * jnp.eye(m, dtype=M.dtype))
    rhs = b if samples else _mm(A.conj().T, b)
    y = jax.scipy.linalg.cho_solve((L, True), rhs.astype(L.dtype))
    x = op.rmatvec(y) if samples else y
    Linv = jax.scipy.linalg.solve_triangular(L, jnp.eye(m, dtype=L.dtype), lower=True)
    n_kept = m - lam * jnp.sum(jnp.abs(Linv) ** 2)
    return x, jnp.clip(n_kept, 0.0, m)


def _regularised(A, b: jax.Array, n: int, P: int, stacked: bool, samples: bool, solver, mcmc, n_samples):
    """``(θ̇, n_kept, snr_min)`` of the regularised least-squares problem A θ̇ ≈ b (rows of A: n samples, or
    2n stacked real rows); ``A`` dense, or in sample space an operator (:class:`_OnFactors`)."""
    snr_min = jnp.array(jnp.inf)
    if solver.regulariser == "shift":
        theta_dot, n_kept = _shift_solve(A, b, solver.diag_shift, samples)
        return theta_dot, n_kept, snr_min
    if samples:
        op = _Dense(A) if isinstance(A, jax.Array) else A
        sigma, U = jnp.linalg.eigh(op.gram())
        sigma = jnp.maximum(sigma, 0.0)
        proj = U * jnp.sqrt(sigma)  # A V = U σ^{1/2}
        rho = jnp.sqrt(sigma) * _mm(U.conj().T, b.astype(U.dtype))  # V† A† b = σ^{1/2} U† b
    else:
        sigma, V = jnp.linalg.eigh(_mm(A.conj().T, A))
        sigma = jnp.maximum(sigma, 0.0)
        proj = None
        rho = _mm(V.conj().T, _mm(A.conj().T, b))
    r, kept = _smooth_factor(sigma, solver)
    if solver.regulariser == "snr" and mcmc:
        if proj is None:
            proj = _mm(A, V)
        ns = n if n_samples is None else n_samples
        snr = _snr(proj, b, n, stacked, jnp.asarray(ns, sigma.dtype))
        r = r * _snr_factor(snr, solver.snr_cut)
        snr_min = jnp.min(jnp.where(kept, snr, jnp.inf))
    safe = jnp.where(kept, sigma, 1.0)
    c = jnp.where(kept, r / safe, 0.0) * rho
    if samples:
        # V c = A† U σ^{-1/2} c
        theta_dot = op.rmatvec(_mm(U, jnp.where(kept, c / jnp.sqrt(safe), 0.0)))
    else:
        theta_dot = _mm(V, c)
    return theta_dot, jnp.sum(r), snr_min


def _residual(d: jax.Array, ec: jax.Array) -> jax.Array:
    """‖d‖ / ‖ε‖ for d = Ō θ̇ − ε (0 when ε = 0)."""
    e2 = jnp.real(jnp.vdot(ec, ec))
    res2 = jnp.real(jnp.vdot(d, d))
    return jnp.where(e2 > 0, jnp.sqrt(res2 / jnp.where(e2 > 0, e2, 1.0)), 0.0)


@partial(jax.jit, static_argnames=("mode", "solver", "mcmc", "space"))
def tdvp_solve(
    Oc: jax.Array | FactoredJacobian,
    ec: jax.Array,
    mode: str,
    solver: TDVPSolver,
    mcmc: bool,
    n_samples: int | jax.Array | None = None,
    *,
    space: str = "auto",
) -> tuple[jax.Array, SolveInfo]:
    """θ̇ (P,) of the regularised TDVP equation S θ̇ = F and its :class:`SolveInfo`.

    ``Oc`` (n, P): centred rows Ō (a :class:`~nqs.estimators.FactoredJacobian` of them is made dense);
    ``ec`` (n,): centred right-hand side ε, already multiplied by c = −i or −1.  ``mode``:
    ``"holomorphic"`` (complex θ̇) or ``"real"`` (real θ̇ of Re S θ̇ = Re F).  ``mcmc``: the rows are Monte
    Carlo samples of weight 1/n (the ``"snr"`` cut needs their spread; with exact enumeration there is no
    noise and ``"snr"`` is ``"pinv"``).  ``n_samples``: the number of independent samples in the error of
    ρ_k (default n; an effective sample size accounts for autocorrelation).  ``space``: ``"parameters"``
    (eigenbasis of the P × P matrix S), ``"samples"`` (of the Gram matrix Ō Ō†) or ``"auto"`` (the smaller).
    Jitted, with ``mode``, ``solver``, ``mcmc`` and ``space`` static.  :func:`tdvp_solve_factored` takes the
    factors of the uncentred O instead.
    """
    _check(mode, space)
    if isinstance(Oc, FactoredJacobian):
        Oc = Oc.dense()
    Oc, ec = _hi(Oc), _hi(ec)
    if mode == "holomorphic":
        Oc = Oc.astype(jnp.result_type(Oc.dtype, jnp.complex64))
        ec = ec.astype(Oc.dtype)
        A, b = Oc, ec
    else:
        A, b = _stack_real(Oc, ec.astype(jnp.result_type(ec.dtype, Oc.dtype)))
    n, P = Oc.shape
    rows = A.shape[0]
    samples = space == "samples" or (space == "auto" and P > rows)
    scale = None
    if solver.rescale:
        norms = jnp.sqrt(jnp.sum(jnp.abs(A) ** 2, axis=0))
        scale = jnp.where(norms > 0, norms, jnp.inf)
        A = A / scale.astype(A.real.dtype)
    theta_dot, n_kept, snr_min = _regularised(A, b, n, P, rows != n, samples, solver, mcmc, n_samples)
    if scale is not None:
        theta_dot = theta_dot / scale.astype(theta_dot.real.dtype)
    residual = _residual(_mm(Oc, theta_dot.astype(Oc.dtype)) - ec, ec)
    return theta_dot, SolveInfo(residual=residual, n_kept=n_kept, snr_min=snr_min)


def _check(mode: str, space: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if space not in SPACES:
        raise ValueError(f"space: {space!r} is not one of {', '.join(SPACES)}")


@partial(jax.jit, static_argnames=("mode", "solver", "mcmc", "space"))
def tdvp_solve_factored(
    O: jax.Array | FactoredJacobian,
    e: jax.Array,
    weights: jax.Array,
    mode: str,
    solver: TDVPSolver,
    mcmc: bool,
    n_samples: int | jax.Array | None = None,
    *,
    space: str = "auto",
) -> tuple[jax.Array, SolveInfo]:
    """:func:`tdvp_solve` from the uncentred log-derivatives ``O`` (n, P), the right-hand side ``e`` = c·E_loc
    (n,) and the weights (n,): the same θ̇ and :class:`SolveInfo`.

    Where the solve runs in sample space (P greater than the rows) and ``O`` is a
    :class:`~nqs.estimators.FactoredJacobian` that needs no stacking of real rows (holomorphic θ, or a real
    O), the Gram matrix Ō Ō† comes from the factors (2n²(p + q) flops a Kronecker block instead of 2n²pq)
    and θ̇ = Ō† y and the residual from products with them: the n × P matrix is never formed.  Otherwise
    the rows are centred densely and :func:`tdvp_solve` solves.
    """
    from .estimators import centered, centered_energies
    from .sr import _Centred, _on_factors

    _check(mode, space)
    weights = weights.reshape(-1)
    e = e.reshape(-1)
    if isinstance(O, FactoredJacobian) and _on_factors(O, mode) and not solver.rescale:
        n, P = O.shape
        if space == "samples" or (space == "auto" and P > n):
            c = _Centred(O, e, weights, mode)
            op = _OnFactors(c)
            b = _hi(c.ec)
            theta_dot, n_kept, snr_min = _regularised(op, b, n, P, False, True, solver, mcmc, n_samples)
            _, _, ec = centered_energies(e.astype(jnp.result_type(O.dtype, jnp.complex64)), weights, O.dtype)
            d = c.matvec(theta_dot.astype(O.dtype)) - ec
            return theta_dot, SolveInfo(residual=_residual(_hi(d), _hi(ec)), n_kept=n_kept, snr_min=snr_min)
    if isinstance(O, FactoredJacobian):
        O = O.dense()
    Oc, ec = centered(O, e.astype(jnp.result_type(O.dtype, e.dtype, jnp.complex64)), weights)
    return tdvp_solve(Oc, ec, mode, solver, mcmc, n_samples, space=space)


@partial(jax.jit, static_argnames=("mode", "solver"))
def tdvp_solve_sf(
    S: jax.Array, F: jax.Array, e_norm2: jax.Array, mode: str, solver: TDVPSolver
) -> tuple[jax.Array, SolveInfo]:
    """θ̇ of S θ̇ = F from the accumulated S = Ō†Ō (P, P) and F = Ō†ε (P,), with ‖ε‖² = ``e_norm2``: the
    solve of :func:`tdvp_solve` where the rows are too many to hold (exact sums over a large basis, summed
    chunk by chunk).  ``mode = "real"`` solves Re S θ̇ = Re F.  ``"shift"`` as in :func:`tdvp_solve`;
    ``"pinv"`` and ``"snr"`` are the smooth pseudo-inverse (the signal-to-noise cut needs the rows, and exact
    sums have no noise); ``solver.rescale`` solves with S at unit diagonal.  The residual is
    √((θ̇†Sθ̇ − 2 Re θ̇†F + ‖ε‖²)/‖ε‖²), clipped at 0."""
    _check(mode, "auto")
    S, F = _hi(S), _hi(F)
    if mode == "real":
        S, F = jnp.real(S), jnp.real(F)
    S = 0.5 * (S + S.conj().T)
    P = S.shape[0]
    scale = jnp.ones(P, jnp.real(S).dtype)
    if solver.rescale:
        d = jnp.sqrt(jnp.maximum(jnp.real(jnp.diag(S)), 0.0))
        scale = jnp.where(d > 0, d, jnp.inf)
    Ss, Fs = S / jnp.outer(scale, scale), F / scale
    if solver.regulariser == "shift":
        L = jnp.linalg.cholesky(Ss + solver.diag_shift * jnp.eye(P, dtype=S.dtype))
        x = jax.scipy.linalg.cho_solve((L, True), Fs)
        Linv = jax.scipy.linalg.solve_triangular(L, jnp.eye(P, dtype=L.dtype), lower=True)
        n_kept = jnp.clip(P - solver.diag_shift * jnp.sum(jnp.abs(Linv) ** 2), 0.0, P)
    else:
        sigma, V = jnp.linalg.eigh(Ss)
        sigma = jnp.maximum(sigma, 0.0)
        r, kept = _smooth_factor(sigma, solver)
        rho = _mm(V.conj().T, Fs)
        safe = jnp.where(kept, sigma, 1.0)
        x = _mm(V, jnp.where(kept, r / safe, 0.0) * rho)
        n_kept = jnp.sum(r)
    theta_dot = x / scale
    quad = jnp.real(jnp.vdot(theta_dot, _mm(S, theta_dot))) - 2 * jnp.real(jnp.vdot(theta_dot, F))
    e2 = jnp.asarray(e_norm2, quad.dtype)
    res2 = jnp.maximum(quad + e2, 0.0)
    residual = jnp.where(e2 > 0, jnp.sqrt(res2 / jnp.where(e2 > 0, e2, 1.0)), 0.0)
    return theta_dot, SolveInfo(residual=residual, n_kept=n_kept, snr_min=jnp.array(jnp.inf))
