"""Stochastic reconfiguration (natural gradient) with a diagonal shift.

With Ō = √w (O − ⟨O⟩) (n×P) and ε = √w (E_loc − Ē) (n):

* dense SR:  δ = (S + λ 1)⁻¹ F  with S = Ō†Ō, F = Ō†ε            — O(P³), for P ≤ n;
* MinSR:     δ = Ō† (Ō Ō† + λ 1)⁻¹ ε  (Chen & Heyl, Nat. Phys. 20, 1476 (2024)) — O(n³), for P > n;
* CG:        (S + λ) δ = F by conjugate gradients with S v = Ō†(Ō v), never forming S — O(n·P) per
             iteration, cheapest when n and P are both large.

Both give the same δ (push-through identity); the test suite checks it.  O may also come as a
:class:`~nqs.estimators.FactoredJacobian` (the RBM's outer-product derivatives): MinSR, CG and the
gradient then work on its factors — the Gram matrix in 2n²(N + M) flops instead of 2n²·N·M, no
n × P matrix in memory — and the dense solver (P ≤ n) forms O, which is small there.  For real parameters
S → Re S and F → Re F, which is the same as stacking [Re Ō; Im Ō] and [Re ε; Im ε].
The parameters then move by −η δ through an optax transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from .estimators import FactoredJacobian, centered, centered_energies


@dataclass(frozen=True)
class SRConfig:
    """Diagonal shift λ_t = max(λ_min, λ₀ · decay^t); ``solver`` is "auto", "dense" or "minsr"."""

    diag_shift: float = 0.01
    diag_shift_decay: float = 1.0
    diag_shift_min: float = 0.0
    solver: str = "auto"
    cg_tol: float = 1e-8
    cg_maxiter: int = 1000
    #: Scale-invariant SR: solve in parameters rescaled by √S_kk, i.e. ``(S + λ·diag S) δ ≈ F``
    #: (mVMC's relative shift) — parameters with tiny log-derivatives (small initial RBM weights,
    #: pairing amplitudes) are not frozen by an absolute shift.
    rescale: bool = False
    #: With ``rescale``: parameters with ``S_kk < rescale_cutoff · max S_kk`` are held for the step
    #: (mVMC's truncation of redundant directions).  Without it a parameter whose log-derivative
    #: hardly fluctuates gets a step ~ 1/√S_kk: the biases of a symmetric RBM under spin-parity
    #: projection (S_kk ~ 1e-8 of the largest) jumped to 1e7 on the first step.
    rescale_cutoff: float = 1e-4

    def shift(self, step: int | jax.Array) -> jax.Array:
        return jnp.maximum(self.diag_shift_min, self.diag_shift * self.diag_shift_decay**step)

    def choose(self, n_params: int, n_samples: int, mode: str, real_rows: bool = False) -> str:
        """The solver actually used; "auto" picks dense or MinSR, whichever costs fewer flops.

        dense ≈ n·P² + P³/3, MinSR ≈ n²·P + n³/3 (n = rows of Ō: samples, doubled for real
        parameters unless O is real).  CG is never picked automatically: at diagonal shifts ~0.01
        it needs hundreds to thousands of iterations and loses to both; ask for it with
        ``solver = "cg"``.
        """
        if self.solver != "auto":
            return self.solver
        n = n_samples if mode == "holomorphic" or real_rows else 2 * n_samples
        p = n_params
        return "minsr" if n * n * p + n**3 / 3 < n * p * p + p**3 / 3 else "dense"


def _stack_real(Oc, ec):
    """Real form for real θ: rows [Re Ō; Im Ō], [Re ε; Im ε] (just Ō, Re ε when Ō is real)."""
    if not jnp.iscomplexobj(Oc):
        return Oc, ec.real
    return jnp.concatenate([Oc.real, Oc.imag], axis=0), jnp.concatenate([ec.real, ec.imag])


def _mm(a, b):
    """Matrix product at full working precision (no TF32 / bf16 passes on GPUs for float32)."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def sr_direction(
    O: jax.Array | FactoredJacobian,
    e_loc: jax.Array,
    weights: jax.Array,
    mode: str,
    diag_shift: float | jax.Array,
    solver: str,
    tol: float = 1e-8,
    maxiter: int = 1000,
    solve_dtype: Any = None,
    rescale: bool = False,
    rescale_cutoff: float = 1e-4,
) -> jax.Array:
    """Natural-gradient direction δ (P,): complex for holomorphic θ, real for real θ.

    ``rescale``: columns of Ō divided by ``d_k = √S_kk`` before the solve and δ divided by ``d``
    after it (the shift becomes relative, ``λ·S_kk``); parameters with
    ``S_kk ≤ rescale_cutoff · max S_kk`` do not move (their columns are dropped).

    ``solve_dtype`` (e.g. float64 when O is float32/complex64): the products Ō†Ō, Ō Ō†, Ō†ε are
    formed in O's precision, the shifted linear system is solved in ``solve_dtype`` (its complex
    counterpart for complex matrices); CG then runs wholly in ``solve_dtype``.
    """
    if isinstance(O, FactoredJacobian):
        if solver in ("minsr", "cg") and not rescale and _on_factors(O, mode):
            return _factored_direction(O, e_loc, weights, mode, diag_shift, solver, tol, maxiter, solve_dtype)
        O = O.dense()
    Oc, ec = centered(O, e_loc.astype(jnp.result_type(O.dtype, jnp.complex64)), weights)
    if mode == "real":
        Oc, ec = _stack_real(Oc, ec)
    if rescale:
        d = jnp.sqrt(jnp.sum(jnp.abs(Oc) ** 2, axis=0))
        keep = d**2 > max(rescale_cutoff, 1e-24) * jnp.max(d) ** 2
        d = jnp.where(keep, d, jnp.inf)  # held: column scaled to 0, δ_k = 0
        Oc = Oc / d[None, :].astype(Oc.real.dtype)
        return sr_direction_scaled(Oc, ec, diag_shift, solver, tol, maxiter, solve_dtype) / d
    return sr_direction_scaled(Oc, ec, diag_shift, solver, tol, maxiter, solve_dtype)


def sr_direction_scaled(
    Oc: jax.Array,
    ec: jax.Array,
    diag_shift: float | jax.Array,
    solver: str,
    tol: float = 1e-8,
    maxiter: int = 1000,
    solve_dtype: Any = None,
) -> jax.Array:
    """The shifted solve for centred (and, for real θ, stacked) Ō and ε."""

    def hi(x):
        if solve_dtype is None:
            return x
        return x.astype(jnp.result_type(x.dtype, solve_dtype))

    if solver == "dense":
        return solve_metric(Oc, _mm(Oc.conj().T, ec), diag_shift, solver, tol, maxiter, solve_dtype)
    if solver == "minsr":
        T = hi(_mm(Oc, Oc.conj().T))
        y = jnp.linalg.solve(T + diag_shift * jnp.eye(T.shape[0], dtype=T.dtype), hi(ec))
        return _mm(Oc.conj().T, y.astype(Oc.dtype))
    if solver == "cg":
        Oc, ec = hi(Oc), hi(ec)
        return solve_metric(Oc, _mm(Oc.conj().T, ec), diag_shift, solver, tol, maxiter, solve_dtype)
    raise ValueError(f"unknown SR solver {solver!r}: use 'dense', 'minsr' or 'cg'")


def solve_metric(
    Oc: jax.Array,
    F: jax.Array,
    diag_shift: float | jax.Array,
    solver: str,
    tol: float = 1e-8,
    maxiter: int = 1000,
    solve_dtype: Any = None,
) -> jax.Array:
    """δ = (Ō†Ō + λ)⁻¹ F for centred rows Ō (n, P) and a given force F (P,).

    ``solver``: "dense" (the P × P system), "minsr" (Woodbury in sample space, for P > n:
    (Ō†Ō + λ)⁻¹F = (F − Ō†(ŌŌ† + λ)⁻¹ŌF)/λ) or "cg" (conjugate gradients, S never formed).
    :func:`sr_direction_scaled` is this with F = Ō†ε (its MinSR form needs no F); a driver whose force
    is not Ō†ε for the metric's rows (the DBM's "mean" metric) calls it directly.
    ``solve_dtype`` as in :func:`sr_direction`.
    """

    def hi(x):
        if solve_dtype is None:
            return x
        return x.astype(jnp.result_type(x.dtype, solve_dtype))

    if solver == "dense":
        S = hi(_mm(Oc.conj().T, Oc))
        return jnp.linalg.solve(S + diag_shift * jnp.eye(S.shape[0], dtype=S.dtype), hi(F))
    if solver == "minsr":
        T = hi(_mm(Oc, Oc.conj().T))
        y = jnp.linalg.solve(T + diag_shift * jnp.eye(T.shape[0], dtype=T.dtype), hi(_mm(Oc, F)))
        return (hi(F) - _mm(Oc.conj().T, y.astype(Oc.dtype))) / diag_shift
    if solver == "cg":
        Oc, F = hi(Oc), hi(F)

        def matvec(v):
            return _mm(Oc.conj().T, _mm(Oc, v)) + diag_shift * v

        d, _ = jax.scipy.sparse.linalg.cg(matvec, F, tol=tol, maxiter=maxiter)
        return d
    raise ValueError(f"unknown SR solver {solver!r}: use 'dense', 'minsr' or 'cg'")


def metric_direction(
    O: jax.Array,
    force: jax.Array,
    weights: jax.Array,
    diag_shift: float | jax.Array,
    solver: str,
    tol: float = 1e-8,
    maxiter: int = 1000,
) -> jax.Array:
    """δ = (S + λ)⁻¹ F with S = Ō†Ō from real rows ``O`` (n, P) with ``weights`` (n,) and a given force F (P,)
    (:func:`solve_metric` on the centred rows)."""
    Oc, _ = centered(O, jnp.zeros(O.shape[:1], O.dtype), weights)
    return solve_metric(Oc, force, diag_shift, solver, tol, maxiter)


def _solve_hpd(T, b):
    """T⁻¹ b for Hermitian positive definite T (n, n) by Cholesky.

    LAPACK wants T column-major, and T is built row-major: T and Tᵀ = T* are the same bytes in the two
    layouts, so the factorization takes Tᵀ (no transposing copy, no symmetrizing pass) and the solve
    runs with its conjugate: T* x* = b*."""
    lc = jax.lax.linalg.cholesky(T.T, symmetrize_input=False)  # lower factor of T*
    y = jax.lax.linalg.triangular_solve(lc, jnp.conj(b)[:, None], left_side=True, lower=True)
    y = jax.lax.linalg.triangular_solve(lc, y, left_side=True, lower=True, conjugate_a=True, transpose_a=True)
    return jnp.conj(y[:, 0])


def _on_factors(O: FactoredJacobian, mode: str) -> bool:
    """Whether SR can use O's factors as they are: holomorphic θ, or real θ with a real O (no
    [Re Ō; Im Ō] stacking needed)."""
    return mode == "holomorphic" or not jnp.issubdtype(O.dtype, jnp.complexfloating)


class _Centred:
    """Ō = diag(√w)(1 − 𝟙wᵀ) O and ε = √w (E − Ē) for a factored O, applied without forming Ō."""

    def __init__(self, O: FactoredJacobian, e_loc, weights, mode):
        self.O = O
        e = e_loc.astype(jnp.result_type(O.dtype, jnp.complex64))
        self.w, self.sw, ec = centered_energies(e, weights, O.dtype)
        # real θ with a real O: the stacked rows [Re Ō; Im Ō] reduce to Ō and Re ε
        self.ec = ec if mode == "holomorphic" else ec.real

    def rmatvec(self, y: jax.Array) -> jax.Array:
        """Ō† y = O† (1 − w𝟙ᵀ) diag(√w) y."""
        z = self.sw * y
        return self.O.rmatvec(z - self.w * jnp.sum(z))

    def matvec(self, x: jax.Array) -> jax.Array:
        """Ō x."""
        ox = self.O.matvec(x)
        return self.sw * (ox - jnp.sum(self.w * ox))

    def gram(self, shift: float | jax.Array = 0.0) -> jax.Array:
        """Ō Ō† + shift·1 (n, n) from O O†: one elementwise pass over the n × n products.

        The centring needs r = (O O†) w, taken from the factors (O (O† w)) rather than from the n × n
        matrix; O O† is Hermitian, so w† O O† = r†."""
        g = self.O.gram()
        r = self.O.matvec(self.O.rmatvec(self.w.astype(self.O.dtype)))
        t = jnp.real(jnp.vdot(self.w.astype(r.dtype), r))
        n = g.shape[0]
        eye = jnp.arange(n)[:, None] == jnp.arange(n)[None, :]
        return self.sw[:, None] * (g - r[:, None] - r.conj()[None, :] + t) * self.sw[None, :] + jnp.where(eye, shift, 0)


def _factored_direction(O, e_loc, weights, mode, diag_shift, solver, tol, maxiter, solve_dtype):
    """MinSR or CG on the factors of O (see :class:`~nqs.estimators.FactoredJacobian`)."""
    c = _Centred(O, e_loc, weights, mode)

    def hi(x):
        return x if solve_dtype is None else x.astype(jnp.result_type(x.dtype, solve_dtype))

    if solver == "minsr":
        T = hi(c.gram(diag_shift))
        return c.rmatvec(_solve_hpd(T, hi(c.ec)).astype(c.ec.dtype))
    F = c.rmatvec(c.ec)

    def matvec(v):
        return c.rmatvec(c.matvec(v.astype(F.dtype))) + diag_shift * v

    d, _ = jax.scipy.sparse.linalg.cg(matvec, hi(F), tol=tol, maxiter=maxiter)
    return d


def gradient(O: jax.Array | FactoredJacobian, e_loc: jax.Array, weights: jax.Array, mode: str) -> jax.Array:
    """Energy gradient for first-order optimizers: F (holomorphic, = ∂E/∂θ*) or 2 Re F (real θ)."""
    if isinstance(O, FactoredJacobian):
        if _on_factors(O, mode):
            c = _Centred(O, e_loc, weights, mode)
            F = c.rmatvec(c.ec)
            return F if mode == "holomorphic" else 2.0 * F.real
        O = O.dense()
    Oc, ec = centered(O, e_loc.astype(jnp.result_type(O.dtype, jnp.complex64)), weights)
    F = _mm(Oc.conj().T, ec)
    return F if mode == "holomorphic" else 2.0 * F.real
