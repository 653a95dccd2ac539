"""Deep Boltzmann machines (DBM) with one traced hidden layer and one sampled deep layer.

Layout (Carleo, Nomura & Imada, Nat. Commun. 9, 5322 (2018); design note
``dbm_construction.md``):

* visible spins σ (N,), σ_i = ±1 (nqs convention: +1 = ↑);
* hidden units h (N_h,), h_k = ±1, coupled to σ and d only; they are summed analytically;
* deep units d (N_d,), d_l = ±1, coupled to h only; they must be sampled or enumerated.

Energy and amplitudes::

    E(σ, h, d) = κ + a·σ + c·d + Σ_k h_k θ_k,      θ_k = b_k + Σ_i σ_i W_ik + Σ_l d_l U_lk,
    φ(σ, d)    = Σ_h exp E = exp(κ + a·σ + c·d) Π_k 2 cosh θ_k,
    ψ(σ)       = Σ_d φ(σ, d).

Parameters are a pytree ``{"a": (N,), "b": (N_h,), "c": (N_d,), "W": (N, N_h), "U": (N_d, N_h),
"kappa": ()}``, real or complex.  The constant κ is kept in log form everywhere.  Unlike nqs's
:class:`~nqs.models.rbm.RBM`, the DBM keeps the factor 2 of every 2 cosh θ_k.

Two uses share :class:`DBM`'s amplitude code: the exact imaginary-time constructions
(:mod:`nqs.imaginary_time`; their one identity is :func:`decompose_coupling`, identity (D) of the design
note) and the trainable real DBM :class:`DeepBoltzmann` (κ = −N_h ln 2 fixed, optional Marshall sign),
optimized over its joint (σ, d, d') chain by :class:`nqs.drivers.dbm.DBMVMC` (docs/dbm.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..operators.moves import move_delta
from .base import Model
from .numerics import log_cosh

LN2 = math.log(2.0)
#: Largest number of deep units that :meth:`DBM.log_psi_exact` enumerates (2**N_d terms).
MAX_ENUM_DEEP = 24
#: Largest intermediate tensor (number of entries, log2) allowed in :meth:`DBM.amplitudes`.
MAX_CONTRACT_LOG2 = 26
#: Largest number of visible spins for the full amplitude vector of :meth:`DBM.amplitudes`.
MAX_CONTRACT_VISIBLE = 20


# --------------------------------------------------------------------------------- identity (D)
def decompose_coupling(V: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace a two-spin coupling by one hidden unit: returns ``(log_C, W1, W2)`` with

        C · exp(V s1 s2) = Σ_{h=±1} exp(h (W1 s1 + W2 s2)) = 2 cosh(W1 s1 + W2 s2),  s1, s2 = ±1.

    Real V (overflow-free for any |V|)::

        W1 = |V| + ½ ln(1 + √(1 − e^{−4|V|}))   (= ½ arcosh e^{2|V|}),
        W2 = sgn(V) W1   (sgn 0 = +1),
        log C = ln 2 + |V|.

    Proof: if s1 s2 = sgn V the right side is 2 cosh 2W1 = 2 e^{2|V|}, otherwise it is 2.

    Complex V (real-time evolution): the same formula with ε = sgn(Re V) in place of sgn V and
    εV in place of |V| (complex principal ``log`` and ``sqrt``), which gives a root of
    cosh 2W1 = e^{2εV}.  For Re V ≥ 0 this is the design note's principal-branch choice
    W1 = W2 = ½ arcosh(e^{2V}), C = 2 e^{V}, up to the branch of the logarithm (a shift of W1 by
    iπ, which leaves 2 cosh(W1 (s1 + s2)) unchanged); for Re V < 0 the ε trick keeps the formula
    accurate where e^{2V} underflows.  Any root of that equation satisfies the identity.

    Vectorized over ``V`` (any shape); returns float64 arrays for real input and complex128
    arrays for complex input.
    """
    V = np.asarray(V)
    if np.iscomplexobj(V):
        V = V.astype(np.complex128)
        eps = np.where(V.real < 0, -1.0, 1.0)
        Vp = eps * V
        w1 = Vp + 0.5 * np.log1p(np.sqrt(-np.expm1(-4.0 * Vp)))
        return LN2 + Vp, w1, eps * w1
    V = V.astype(np.float64)
    av = np.abs(V)
    w1 = av + 0.5 * np.log1p(np.sqrt(-np.expm1(-4.0 * av)))
    return LN2 + av, w1, np.where(V < 0, -w1, w1)


def log_2cosh_np(z: Any) -> np.ndarray:
    """ln(2 cosh z) in numpy for real or complex z, stable for large |Re z| (principal phase)."""
    z = np.asarray(z)
    s = np.where(np.real(z) < 0, -1.0, 1.0)
    z = z * s
    return z + np.log1p(np.exp(-2.0 * z))


# --------------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class DBM(Model):
    """Deep Boltzmann machine (see the module docstring for E, φ, ψ); the container of the exact
    imaginary-time constructions.

    Fields: ``n_visible`` N, ``n_hidden`` N_h, ``n_deep`` N_d; ``init_scale`` and ``complex_params``
    set the random initial parameters of :meth:`init`; ``description`` is a free-text label
    (the imaginary-time constructors record their layout there); ``sublattice`` (0/1 per site)
    multiplies ψ by the Marshall sign s(σ) = (−1)^{N↑ on sublattice 1} (None: no sign).

    As an nqs :class:`~nqs.models.base.Model`, ``log_psi`` is :meth:`log_psi_exact`: it sums over
    all 2**N_d deep configurations, so it is meant for small N_d only (tests, exact checks).
    Monte Carlo samples (σ, d, d') jointly (:mod:`nqs.sampling.joint`) and uses :meth:`log_phi`.
    """

    n_visible: int
    n_hidden: int
    n_deep: int
    init_scale: float = 0.01
    complex_params: bool = False
    description: str = "DBM"
    holomorphic: bool = True
    sublattice: tuple | None = None

    def __post_init__(self):
        if self.sublattice is not None and len(self.sublattice) != self.n_visible:
            raise ValueError(f"sublattice has {len(self.sublattice)} entries, expected {self.n_visible}")

    @property
    def n_sites(self) -> int:  # type: ignore[override]
        return self.n_visible

    # ------------------------------------------------------------------ parameters
    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {
            "a": (self.n_visible,),
            "b": (self.n_hidden,),
            "c": (self.n_deep,),
            "W": (self.n_visible, self.n_hidden),
            "U": (self.n_deep, self.n_hidden),
            "kappa": (),
        }

    def init(self, key: jax.Array) -> dict:
        """Small random parameters (normal, std ``init_scale``; real and imaginary parts if
        ``complex_params``), κ = 0."""
        shapes = {k: v for k, v in self._shapes().items() if k != "kappa"}
        keys = jax.random.split(key, 2 * len(shapes))
        out = {}
        for n, (name, shape) in enumerate(shapes.items()):
            x = self.init_scale * jax.random.normal(keys[2 * n], shape)
            if self.complex_params:
                x = x + 1j * self.init_scale * jax.random.normal(keys[2 * n + 1], shape)
            out[name] = x
        out["kappa"] = jnp.zeros((), jnp.complex128 if self.complex_params else jnp.float64)
        return out

    def check_params(self, params: Any) -> None:
        """Raise ValueError when the parameter shapes do not match N, N_h, N_d."""
        for name, shape in self._shapes().items():
            got = tuple(np.shape(params[name]))
            if got != shape:
                raise ValueError(f"DBM parameter {name!r} has shape {got}, expected {shape}")

    def log_offset(self, params: Any) -> jax.Array:
        """The constant of log φ: κ + N_h ln 2 (the factors 2 of every 2 cosh θ_k)."""
        return params["kappa"] + self.n_hidden * LN2

    # ------------------------------------------------------------------ amplitudes
    def theta(self, params: Any, sigma: jax.Array, d: jax.Array) -> jax.Array:
        """Hidden-unit angles θ = b + σW + dU, shape (..., N_h) (``d`` may carry leading axes)."""
        dt = jnp.result_type(params["W"], params["U"], params["b"])
        return params["b"] + sigma.astype(dt) @ params["W"] + d.astype(dt) @ params["U"]

    def log_phi(self, params: Any, sigma: jax.Array, d: jax.Array) -> jax.Array:
        """log φ(σ, d) = κ + a·σ + c·d + Σ_k ln(2 cosh θ_k) (real for real parameters, else complex).

        ``sigma`` (N,) and ``d`` (N_d,) hold ±1 (any dtype); h is traced analytically; the sign
        s(σ) is not part of φ.
        """
        dt = jnp.result_type(params["a"], params["c"], params["W"], params["U"])
        s, dd = sigma.astype(dt), d.astype(dt)
        th = self.theta(params, sigma, d)
        return self.log_offset(params) + params["a"] @ s + params["c"] @ dd + jnp.sum(log_cosh(th))

    def log_phi_ratios(
        self, params: Any, sigma: jax.Array, d: jax.Array, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        """log φ(σ', d) − log φ(σ, d) for moves of σ (leading axis G of ``sites``, ``new_values``,
        ``mask``) at fixed deep spins ``d`` (..., N_d): shape (..., G), from θ updated at the moved
        sites only."""
        dt = jnp.result_type(params["a"], params["W"])
        th = self.theta(params, sigma, d)  # (..., N_h)
        delta = jax.vmap(lambda si, v, m: move_delta(sigma, si, v, m))(sites, new_values, mask).astype(dt)  # (G, k)
        dth = jnp.einsum("gk,gkm->gm", delta, jnp.take(params["W"], sites, axis=0, mode="clip"))
        da = jnp.einsum("gk,gk->g", delta, jnp.take(params["a"], sites, mode="clip"))
        lc = jnp.sum(log_cosh(th), axis=-1)[..., None]  # (..., 1)
        return da + jnp.sum(log_cosh(th[..., None, :] + dth), axis=-1) - lc

    def sign_parity(self, sigma: jax.Array) -> jax.Array:
        """Number of ↑ spins on sublattice 1 (s(σ) = (−1)^this); 0 without a sign."""
        if self.sublattice is None:
            return jnp.zeros((), jnp.float64)
        return jnp.sum(jnp.asarray(self.sublattice, jnp.float64) * (1 + sigma.astype(jnp.float64)) / 2)

    def sign_ratios(self, sigma: jax.Array, sites: jax.Array, new_values: jax.Array, mask: jax.Array) -> jax.Array:
        """s(σ')/s(σ) (±1, float) for moves of σ (leading axis G), 1 without a sign."""
        if self.sublattice is None:
            return jnp.ones(sites.shape[:1])
        parity = jnp.asarray(self.sublattice, jnp.float64)
        delta = jax.vmap(lambda si, v, m: move_delta(sigma, si, v, m))(sites, new_values, mask)  # (G, k)
        # (−1)^{Σ_{changed i on sublattice 1} δ_i/2}
        dpar = jnp.einsum("gk,gk->g", delta, jnp.take(parity, sites, mode="clip")) / 2
        return 1.0 - 2.0 * jnp.mod(jnp.round(dpar), 2)

    def log_psi_exact(self, params: Any, sigma: jax.Array, chunk_bits: int = 12) -> jax.Array:
        """log ψ(σ) = log Σ_d φ(σ, d) + iπ·(sign parity) by explicit enumeration of the 2**N_d deep
        states, complex128.

        Log-sum-exp (max real part subtracted), in chunks of 2**chunk_bits deep states (jittable;
        memory O(2**chunk_bits · N_h)); real arithmetic for real parameters.  Only for
        N_d ≤ :data:`MAX_ENUM_DEEP`.
        """
        nd = self.n_deep
        phase = 1j * jnp.pi * self.sign_parity(sigma)
        if nd == 0:
            return self.log_phi(params, sigma, jnp.zeros((0,), jnp.int8)).astype(jnp.complex128) + phase
        if nd > MAX_ENUM_DEEP:
            raise ValueError(f"log_psi_exact enumerates 2**N_d deep states; N_d = {nd} > {MAX_ENUM_DEEP}")
        cb = min(chunk_bits, nd)
        dt = jnp.result_type(params["a"], params["c"], params["W"], params["U"], jnp.float64)
        s = sigma.astype(dt)
        base = self.log_offset(params) + params["a"].astype(dt) @ s  # ()
        th0 = params["b"] + s @ params["W"]  # (N_h,)
        low = jnp.arange(2**cb, dtype=jnp.int64)

        def chunk_logs(c):
            codes = low + (c.astype(jnp.int64) << cb)
            D = (((codes[:, None] >> jnp.arange(nd, dtype=jnp.int64)) & 1) * 2 - 1).astype(dt)
            th = th0 + D @ params["U"]
            return D @ params["c"] + jnp.sum(log_cosh(th), axis=-1)

        def step(carry, c):
            m, acc = carry
            z = chunk_logs(c)
            mc = jnp.max(jnp.real(z))
            m_new = jnp.maximum(m, mc)
            acc = acc * jnp.exp(m - m_new) + jnp.sum(jnp.exp(z - m_new))
            return (m_new, acc), None

        init = (jnp.asarray(-jnp.inf), jnp.zeros((), dt))
        (m, acc), _ = jax.lax.scan(step, init, jnp.arange(2 ** (nd - cb)))
        return (base + m + jnp.log(acc)).astype(jnp.complex128) + phase

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        return self.log_psi_exact(params, sigma)

    def amplitudes(self, params: Any) -> tuple[np.ndarray, float]:
        """The full amplitude vector by exact contraction: ``(vec, log_scale)`` with
        ψ(σ) = exp(log_scale) · vec[code(σ)], max |vec| = 1.

        ``vec`` has shape (2**N,), in nqs's basis order (code bit i set ⇔ σ_i = ↑, sorted by code,
        i.e. :meth:`nqs.hilbert.SpinHilbert.all_states` of the full space).  Every hidden unit
        becomes the factor 2 cosh θ_k on the spins it touches (nonzero weights), every bias a
        one-spin factor; the deep spins are then summed out by greedy variable elimination
        (smallest intermediate tensor first), in numpy, complex128, with a running log scale.
        Exact up to rounding; cost set by the elimination width (fine for the layered
        imaginary-time networks, exponential in N_d for dense random weights).  The construction's
        parameters only (κ included; no ``sublattice`` sign).
        """
        self.check_params(params)
        if self.sublattice is not None:
            raise ValueError("amplitudes() does not apply the sublattice sign; use log_psi_exact")
        return _contract(self, params)

    def describe(self) -> str:
        return f"{self.description} (N={self.n_visible}, N_h={self.n_hidden}, N_d={self.n_deep})"


@dataclass(frozen=True, eq=False)
class DeepBoltzmann(DBM):
    """The trainable real DBM: :class:`DBM` with real parameters ``{"a", "b", "c", "W", "U"}`` and
    κ = −N_h ln 2 fixed, not a parameter (φ > 0 drops the 2^{N_h} of the 2 cosh, as nqs's RBM);
    ``n_visible`` N (= ``n_sites``), ``n_hidden`` M, ``n_deep`` K.

    ``init_scale`` is the standard deviation of the initial a, b, c, W; ``init_scale_deep`` that of
    U (deep × hidden).  At U = 0 and c = 0 the deep layer is decoupled and ∂ log ψ/∂U vanishes by
    the d → −d symmetry, so U starts larger than the rest (default 0.1 vs 0.01) to break that
    saddle.  ``sublattice`` (0/1 per site) switches on the Marshall sign.  ``log_psi`` sums the 2^K
    deep states exactly (small K only: tests and exact checks); VMC over the joint chain
    (:class:`nqs.drivers.dbm.DBMVMC`) uses :meth:`log_phi` on sampled d.
    """

    holomorphic: bool = False
    init_scale_deep: float = 0.1
    real_derivatives = True

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: v for k, v in super()._shapes().items() if k != "kappa"}

    def init(self, key: jax.Array) -> dict:
        """Normal initial parameters: a, b, c, W with std ``init_scale``, U with ``init_scale_deep``."""
        n, m, k = self.n_visible, self.n_hidden, self.n_deep
        ks = jax.random.split(key, 5)
        s, sd = self.init_scale, self.init_scale_deep
        return {
            "a": s * jax.random.normal(ks[0], (n,)),
            "b": s * jax.random.normal(ks[1], (m,)),
            "c": s * jax.random.normal(ks[2], (k,)),
            "W": s * jax.random.normal(ks[3], (n, m)),
            "U": sd * jax.random.normal(ks[4], (k, m)),
        }

    def log_offset(self, params: Any) -> jax.Array:
        """0: κ = −N_h ln 2 cancels the factors 2."""
        return jnp.zeros((), jnp.result_type(params["a"]))

    def describe(self) -> str:
        s = " x Marshall sign" if self.sublattice is not None else ""
        return f"real DBM (N={self.n_visible}, M={self.n_hidden}, K={self.n_deep}){s}"


# --------------------------------------------------------------------------------- contraction
def _spin_axis() -> np.ndarray:
    """Values of a spin along a tensor axis: index 0 ↔ −1 (↓, code bit 0), index 1 ↔ +1 (↑)."""
    return np.array([-1.0, 1.0])


def _contract(dbm: DBM, params) -> tuple[np.ndarray, float]:
    p = {k: np.asarray(v) for k, v in params.items()}
    nv, nd, nh = dbm.n_visible, dbm.n_deep, dbm.n_hidden
    if nv > MAX_CONTRACT_VISIBLE:
        raise ValueError(f"amplitudes() builds a 2**N vector; N = {nv} > {MAX_CONTRACT_VISIBLE}")
    spin = _spin_axis()
    kappa = complex(p["kappa"])
    log_scale = kappa.real
    factors: list[tuple[tuple[int, ...], np.ndarray]] = []
    phase0 = np.exp(1j * kappa.imag)

    # one-spin factors: biases a (visible vars 0..N-1) and c (deep vars N..N+N_d-1)
    for v, bias in enumerate(np.concatenate([p["a"].reshape(-1), p["c"].reshape(-1)])):
        if bias != 0:
            lt = bias * spin
            m = float(np.max(np.real(lt)))
            factors.append(((v,), np.exp(lt - m).astype(np.complex128)))
            log_scale += m
    # hidden units: 2 cosh(b_k + Σ w s) on the spins with nonzero weights
    Wall = np.concatenate([p["W"].reshape(nv, nh), p["U"].reshape(nd, nh)], axis=0)
    for k in range(nh):
        vars_k = tuple(int(v) for v in np.flatnonzero(Wall[:, k] != 0))
        if len(vars_k) > MAX_CONTRACT_LOG2:
            raise ValueError(f"hidden unit {k} touches {len(vars_k)} spins: too many for amplitudes()")
        w = Wall[list(vars_k), k]
        grids = np.meshgrid(*([spin] * len(vars_k)), indexing="ij") if vars_k else []
        arg = p["b"][k] + sum((wi * g for wi, g in zip(w, grids, strict=True)), np.zeros(()))
        lt = log_2cosh_np(np.asarray(arg, dtype=np.result_type(arg, np.complex128)))
        m = float(np.max(np.real(lt)))
        log_scale += m
        t = np.exp(lt - m)
        if vars_k:
            factors.append((vars_k, t))
        else:
            phase0 = phase0 * complex(t)

    # eliminate deep variables, smallest resulting tensor first
    remaining = set(range(nv, nv + nd))
    while remaining:
        best, best_size = None, None
        for v in sorted(remaining):
            union = set()
            for vs, _ in factors:
                if v in vs:
                    union.update(vs)
            size = len(union) - 1 if union else -1
            if best_size is None or size < best_size:
                best, best_size = v, size
        v = best
        remaining.discard(v)
        touching = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        if not touching:  # a deep spin with no factor contributes Σ_d 1 = 2
            log_scale += LN2
            continue
        if best_size > MAX_CONTRACT_LOG2:
            raise ValueError(f"exact contraction needs a tensor of 2**{best_size} entries")
        union = sorted(set().union(*[vs for vs, _ in touching]))
        out_vars = tuple(u for u in union if u != v)
        label = {u: n for n, u in enumerate(union)}
        ops: list[Any] = []
        for vs, t in touching:
            ops += [t, [label[u] for u in vs]]
        t = np.einsum(*ops, [label[u] for u in out_vars], optimize="greedy")
        m = float(np.max(np.abs(t))) if t.size else 0.0
        if m > 0:
            t = t / m
            log_scale += math.log(m)
        if out_vars:
            factors.append((out_vars, t))
        else:
            phase0 = phase0 * complex(t)

    # multiply the remaining (visible-only) factors into the full tensor
    full = np.full((2,) * nv, phase0, dtype=np.complex128)
    labels = list(range(nv))
    for vs, t in factors:
        full = np.einsum(full, labels, t, list(vs), labels)
        m = float(np.max(np.abs(full)))
        if m > 0:
            full = full / m
            log_scale += math.log(m)
    # axes are σ_0..σ_{N-1}; code = Σ_i bit_i 2**i, so σ_0 must be the fastest axis
    vec = np.transpose(full, tuple(range(nv - 1, -1, -1))).reshape(-1) if nv else full.reshape(1)
    return vec, float(log_scale)


__all__ = ["DBM", "DeepBoltzmann", "decompose_coupling", "log_2cosh_np", "LN2", "MAX_ENUM_DEEP"]
