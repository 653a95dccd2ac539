"""General pair-product (Pfaffian) state for spinful fermions (``shared/notes/rbm_pp.md`` §2–§4).

Amplitude
---------
With an antisymmetric pair function ``F`` on the 2L spin-orbitals (orbital ``p = site + L·spin``, as in
:mod:`nqs.models.slater`) the pair-product state is ``|φ_F⟩ = (½ Σ_pq F_pq c†_p c†_q)^{N/2} / (N/2)! |0⟩`` and
its amplitude on the canonical basis state ``|x⟩ = c†_{p_1} ⋯ c†_{p_N}|0⟩`` (``p_1 < … < p_N``) is

    ψ(x) = Pf F[R, R],   R = the occupied orbitals, ascending                 (the note's §2)

(checked against a Jordan–Wigner construction in the tests).  Unlike :class:`~nqs.models.pair_product.
PairProduct` (singlet pairing ``F(i↑, j↓) = f_ij`` only, where ``Pf = (−1)^{N↑(N↑−1)/2} det f[R↑, R↓]``) every
block of ``F`` is free: ↑↑ and ↓↓ (triplet) pairing and an antisymmetric ↑↓ part, 2L(2L−1)/2 parameters
(the strict upper triangle; ``F = U − Uᵀ``).  Only ``N = N↑ + N↓`` even is needed; ``S^z`` is conserved by
the sampler's moves, not by the state.  The start :meth:`PfaffianPP.init` embeds the singlet pair function
of the tight-binding (or given) Slater determinant, ``F(i↑, j↓) = f_ij = −F(j↓, i↑)``, so it begins as the
same state as the determinant PP.

Pfaffian
--------
:func:`log_pfaffian`: Parlett–Reid elimination with row/column pivoting (pfapack's ``pfaffian_LTL``) in a
fixed-shape ``fori_loop``, accumulated as a complex logarithm (no overflow for large N); an exactly
singular matrix gives ``−inf``.  Autodiff differentiates through the chosen pivots.

Spin projection (``spin_points`` = n > 0)
----------------------------------------
The pair function is then restricted to its ↑↓ block, ``F(i↑, j↓) = f_ij`` with a general (not symmetric)
f — singlet and S^z = 0 triplet pairing, so the state has S^z = 0 — and the amplitude is projected on total
spin S = 0 (mVMC's L_S):

    ψ(x) = Σ_g w_g Pf F_g[R, R],   F_g = K_g F K_gᵀ,   K_g = exp(−iβ_g σ_y/2) ⊗ 1_L,

with Gauss–Legendre nodes cos β_g and weights w_g (the projector ½∫ sin β dβ e^{−iβS_y} on S^z = 0 states,
exact for n ≥ (N/2 + 1)/2 points since the components with spin S contribute P_S(cos β)).  The rotated F_g
has ↑↑ and ↓↓ blocks, so each is a Pfaffian; the fast path keeps one inverse per rotation and the weights
``c_g = w_g Pf_g(x)/ψ(x)``: ψ(x′)/ψ(x) = Σ_g c_g ρ_g.

Fast path (labelled electrons, low-rank updates)
------------------------------------------------
Cache: labelled orbitals ``r`` (N,) and ``Y = X⁻¹`` with ``X = F[r, r]`` (antisymmetric).  A move relocates
electrons ``S`` (labels, m slots; :func:`~nqs.models.slater.parse_move` on the 2L orbitals as one species).
With ``X′ = F[r′, r′]``, the new rows ``W = X′[S, :]`` and ``B = W − X[S, :]``, let ``B̃`` be ``B`` with its
columns ``S`` halved; then ``X′ − X = E B̃ − B̃ᵀ Eᵀ = U J Uᵀ`` with ``U = [E, B̃ᵀ]`` (N×2m) and
``J = [[0, 1], [−1, 0]]``, and the Pfaffian and Woodbury identities give

    Pf X′ / Pf X = Pf K / Pf(−J),    K = −J + Uᵀ Y U      (2m×2m, antisymmetric),
    Y′ = Y + G K⁻¹ Gᵀ,               G = Y U               (O(m N²)).

As the note demands, the old rows are never multiplied by the stored inverse: with the exact identities
``X[S, :] Y = Eᵀ`` and ``Y X[S, :]ᵀ = −E``, ``G = [Y E, Y Wᵀ + E − ½ Y E B_SSᵀ]`` and K's blocks are
``Y_SS``, ``Q − 1`` with ``Q = (YWᵀ)_S + 1 − ½ Y_SS B_SSᵀ``, and
``B̃YB̃ᵀ = W Y Wᵀ + W_SS + ½ (YWᵀ)_Sᵀ B_SSᵀ − ½ B_SSᵀ − ½ B_SS Q`` (``B_SS = W[:, S] − X[S, S]``).  The plain
form (``B`` formed, then ``UᵀYU``) let round-off in Y double every few hundred moves.  For one hop (m = 1)
``K = [[0, −ρ], [ρ, 0]]``: ``ρ = Σ_j W_j Y_{jl}`` and ``Y′ = Y + (a cᵀ − c aᵀ)/ρ`` with ``a = Y[:, l]``,
``c = YWᵀ + e_l``.  Inactive slots have zero columns in ``U`` (their block of K is −J and cancels).
The sign of the labelled list is tracked with :func:`~nqs.models.slater.hop_parity` over all 2L
orbitals (the Jordan–Wigner hop sign).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..operators.moves import apply_moves
from .slater import (
    MoveModel,
    _check_counts,
    electron_labels,
    hop_parity,
    occupied_sites,
    one_body_matrices,
    parse_move,
    relocate,
    tight_binding_orbitals,
)

__all__ = ["log_pfaffian", "PfaffianPP"]


def log_pfaffian(a: jax.Array) -> jax.Array:
    """log Pf(a) (complex) of an antisymmetric (n, n) matrix; ``−inf`` if it is singular or n is odd."""
    n = a.shape[-1]
    if n == 0:
        return jnp.zeros((), jnp.complex128)
    if n % 2:
        return jnp.asarray(-jnp.inf + 0j, jnp.complex128)
    a = a.astype(jnp.complex128)
    idx = jnp.arange(n)

    def body(i, carry):
        a, log_pf = carry
        k = 2 * i
        col = jnp.where(idx > k, jnp.abs(a[:, k]), -1.0)
        kp = jnp.argmax(col)
        perm = idx.at[k + 1].set(kp).at[kp].set(k + 1)
        a = a[perm][:, perm]
        log_pf = log_pf + jnp.where(kp != k + 1, 1j * jnp.pi, 0.0)
        piv = a[k, k + 1]
        zero = piv == 0
        log_pf = log_pf + jnp.where(zero, -jnp.inf + 0j, jnp.log(jnp.where(zero, 1.0, piv)))
        tau = jnp.where(idx > k + 1, a[k, :] / jnp.where(zero, 1.0, piv), 0.0)
        v = jnp.where(idx > k + 1, a[:, k + 1], 0.0)
        a = a + jnp.outer(tau, v) - jnp.outer(v, tau)
        return a, log_pf

    _, log_pf = jax.lax.fori_loop(0, n // 2, body, (a, jnp.zeros((), jnp.complex128)))
    return log_pf


def _antisymmetric(u: jax.Array, n: int) -> jax.Array:
    """F = U − Uᵀ from the strict upper triangle ``u`` (n(n−1)/2,) in row-major order."""
    rows, cols = np.triu_indices(n, 1)
    up = jnp.zeros((n, n), u.dtype).at[rows, cols].set(u)
    return up - up.T


def _replace(full, r, r_new, y, labels, act):
    """Pfaffian ratio and new inverse when electrons ``labels`` (active slots ``act``) move from ``r`` to
    ``r_new``; ``full`` is F, ``y`` = F[r, r]⁻¹.  The exact-identity forms of the module docstring."""
    m = labels.shape[-1]
    a2 = jnp.concatenate([act, act])
    w = full[r_new[labels]][:, r_new] * act[:, None]  # new rows X′[S, :] (m, N)
    b_ss = (w[:, labels] - full[r[labels]][:, r[labels]]) * (act[:, None] & act[None, :])
    y_s = y[:, labels] * act[None, :]  # Y E (N, m)
    p = y @ w.T  # Y Wᵀ (N, m)
    p_s, y_ss, w_ss = p[labels], y_s[labels], w[:, labels]
    eye = jnp.eye(m, dtype=y.dtype)
    e = (jnp.arange(r.shape[-1])[:, None] == labels[None, :]) * act[None, :]
    q = p_s + eye - 0.5 * y_ss @ b_ss.T  # Eᵀ Y B̃ᵀ
    rr = w @ p + w_ss + 0.5 * p_s.T @ b_ss.T - 0.5 * b_ss.T - 0.5 * b_ss @ q  # B̃ Y B̃ᵀ
    top = jnp.concatenate([y_ss, q], axis=1)
    bottom = jnp.concatenate([-q.T, rr], axis=1)
    zero = jnp.zeros((m, m), y.dtype)
    minus_j = jnp.block([[zero, -eye], [eye, zero]])
    k = minus_j + jnp.concatenate([top, bottom], axis=0) * (a2[:, None] & a2[None, :])
    k = 0.5 * (k - k.T)
    # Y′ = Y + G K⁻¹ Gᵀ with G = Y U = [Y E, Y Wᵀ + E − ½ Y E B_SSᵀ] (no old row times Y)
    g = jnp.concatenate([y_s, (p + e - 0.5 * y_s @ b_ss.T) * act[None, :]], axis=1)
    return log_pfaffian(k) - log_pfaffian(minus_j), y + g @ jnp.linalg.solve(k, g.T)


@dataclass(frozen=True, eq=False)
class PfaffianPP(MoveModel):
    """General pair product ``ψ(x) = Pf F[R, R]`` (× ``exp(−g Σ n↑n↓)`` with ``gutzwiller``), module docstring.

    Parameters ``{"F": (2L(2L−1)/2,)}`` (the strict upper triangle of F; ``"g": ()`` with ``gutzwiller``).
    ``init(key)``: with ``hopping`` (Lattice, FermionOperator or matrix) the singlet pair function of the
    tight-binding determinant ``f = Φ↑Φ↓ᵀ`` in the ↑↓ block plus noise ``init_noise`` (relative, as
    :meth:`~nqs.models.pair_product.PairProduct.perturbed`) on every entry; else random.  Configurations have
    length 2L; N↑ + N↓ must be even.
    """

    n_sites: int
    n_up: int
    n_down: int
    gutzwiller: bool = False
    param_dtype: str = "complex"
    hopping: Any = None
    init_noise: float = 0.01
    twist: float = 1e-6
    spin_points: int = 0  # > 0: projected on total spin S = 0 with this many Gauss–Legendre rotations

    def __post_init__(self) -> None:
        _check_counts(self.n_sites, self.n_up, self.n_down)
        self._check_param_dtype()
        if self.spin_points < 0 or (self.spin_points and self.n_up != self.n_down):
            raise ValueError(
                f"the S = 0 projection needs spin_points >= 0 and N↑ = N↓, got {self.spin_points} "
                f"points and {self.n_up}↑ + {self.n_down}↓"
            )
        if (self.n_up + self.n_down) % 2:
            raise ValueError(f"a pair product needs an even number of electrons, got {self.n_up}↑ + {self.n_down}↓")

    @property
    def n_orbitals(self) -> int:
        return 2 * self.n_sites

    @property
    def n_electrons(self) -> int:
        return self.n_up + self.n_down

    def _noise(self, key, shape):
        k1, k2 = jax.random.split(key)
        z = jax.random.normal(k1, shape)
        if self.param_dtype == "complex":
            z = (z + 1j * jax.random.normal(k2, shape)) / np.sqrt(2.0)
        return z

    def _params(self, full: np.ndarray | jax.Array, key, noise: float) -> dict:
        n = self.n_orbitals
        L = self.n_sites
        # concrete, so init stays traceable; with the spin projection only the ↑↓ block f is a parameter
        u0 = np.asarray(full)[:L, L:] if self.spin_points else np.asarray(full)[np.triu_indices(n, 1)]
        u = jnp.asarray(u0)
        if noise:
            scale = float(np.max(np.abs(u0))) or 1.0
            u = u + noise * scale * self._noise(key, u.shape)
        p = {"F": u.astype(self._dtype)}
        if self.gutzwiller:
            p["g"] = jnp.zeros((), self._dtype)
        return p

    def singlet(self, f: np.ndarray) -> np.ndarray:
        """The (2L, 2L) antisymmetric F of a singlet-type pair function f (L, L): F(i↑, j↓) = f_ij."""
        L = self.n_sites
        full = np.zeros((2 * L, 2 * L), dtype=np.result_type(f, float))
        full[:L, L:] = f
        full[L:, :L] = -np.asarray(f).T
        return full

    def init(self, key: jax.Array) -> dict:
        if self.hopping is not None:
            return self.init_tight_binding(self.hopping, key, self.init_noise)
        n = self.n_orbitals
        return self._params(np.zeros((n, n)), key, 1.0)

    def init_tight_binding(self, source: Any, key: jax.Array | None = None, noise: float | None = None) -> dict:
        """Singlet F from the tight-binding determinant (N↑ = N↓: ``f = Φ↑Φ↓ᵀ``, the state equals that
        determinant exactly at zero noise), plus relative noise on every entry (the triplet blocks start
        at the noise level)."""
        noise = self.init_noise if noise is None else noise
        key = jax.random.PRNGKey(0) if key is None else key
        if self.n_up != self.n_down:
            raise ValueError(
                "the tight-binding start of the Pfaffian pair product needs N↑ = N↓; use init(key) for a random start"
            )
        h_up, h_dn = one_body_matrices(source, self.n_sites)
        up = tight_binding_orbitals(h_up, self.n_up, self.twist)
        dn = tight_binding_orbitals(h_dn, self.n_down, self.twist)
        f = np.asarray(up @ dn.T)
        if self.param_dtype == "real":
            if np.iscomplexobj(f) and float(np.max(np.abs(f.imag))) > 0:
                raise ValueError("complex tight-binding orbitals need param_dtype='complex'")
            f = f.real
        return self._params(self.singlet(f), key, noise)

    def matrix(self, params: Any) -> jax.Array:
        """The antisymmetric (2L, 2L) pair function F (with the spin projection: F(i↑, j↓) = f_ij, a general
        f, so that the unprojected state has S^z = 0)."""
        if self.spin_points:
            f = params["F"]
            zero = jnp.zeros_like(f)
            return jnp.block([[zero, f], [-f.T, zero]])
        return _antisymmetric(params["F"], self.n_orbitals)

    # ------------------------------------------------------------------ amplitude
    def _gutzwiller(self, params, x):
        L = self.n_sites
        xi = x.astype(jnp.int32)
        return -params["g"] * jnp.sum(xi[:L] * xi[L:])

    def rotations(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss–Legendre angles β_g and weights w_g of the S = 0 projection (``spin_points`` of them)."""
        xg, wg = np.polynomial.legendre.leggauss(self.spin_points)
        return np.arccos(xg), wg

    def _matrices(self, params) -> jax.Array:
        """The pair functions summed over, (n_β, 2L, 2L): F itself, or ``K_β F K_βᵀ`` with
        ``K_β = exp(−iβσ_y/2) ⊗ 1_L`` for every rotation angle of the spin projection."""
        f = self.matrix(params).astype(jnp.complex128)
        if not self.spin_points:
            return f[None]
        eye = np.eye(self.n_sites)
        ks = np.stack(
            [
                np.kron(np.array([[np.cos(b / 2), -np.sin(b / 2)], [np.sin(b / 2), np.cos(b / 2)]]), eye)
                for b in self.rotations()[0]
            ]
        )
        return jnp.einsum("gpq,qr,gsr->gps", jnp.asarray(ks), f, jnp.asarray(ks))

    def _coefficients(self):
        return jnp.asarray(self.rotations()[1] if self.spin_points else np.ones(1), dtype=jnp.complex128)

    @staticmethod
    def _log_sum(logs, c):
        m = jax.lax.stop_gradient(jnp.max(jnp.real(logs)))
        return m + jnp.log(jnp.sum(c * jnp.exp(logs - m)))

    def log_psi(self, params: Any, x: jax.Array) -> jax.Array:
        r = occupied_sites(x, self.n_electrons)
        if self.spin_points:
            mats = self._matrices(params)
            out = self._log_sum(jax.vmap(lambda a: log_pfaffian(a[r][:, r]))(mats), self._coefficients())
        else:
            out = log_pfaffian(self.matrix(params)[r][:, r])
        if self.gutzwiller:
            out = out + self._gutzwiller(params, x)
        return out

    def _prepare(self, params):
        return {**params, "full": self._matrices(params)}

    def _full(self, params):
        return params["full"] if "full" in params else self._matrices(params)

    # ------------------------------------------------------------------ fast path
    def _cache(self, params, x):
        r = occupied_sites(x, self.n_electrons)
        mats = self._full(params)[:, r][:, :, r]
        out = {"r": r, "inv": jnp.linalg.inv(mats)}
        if self.spin_points:
            logs = jax.vmap(log_pfaffian)(mats)
            total = self._log_sum(logs, self._coefficients())
            out["w"] = self._coefficients() * jnp.exp(logs - total)  # c_β Pf_β(x) / ψ_P(x)
        return out

    def _move(self, params, x, cache, sites, new_values, mask):
        n_orb = self.n_orbitals
        log_r = jnp.zeros((), jnp.complex128)
        if self.gutzwiller:
            moved = apply_moves(x, jnp.where(mask, sites, n_orb), new_values)
            log_r = log_r + self._gutzwiller(params, moved) - self._gutzwiller(params, x)
        mv = parse_move(x, sites, new_values, mask, n_orb)  # every orbital one species: slot arrays [0]
        old, new, act = mv.old[0], mv.new[0], mv.active[0]
        r = cache["r"]
        labels = electron_labels(r, old, act)
        r_new = relocate(r, labels, old, new, act)
        log_dets, updates = jax.vmap(lambda full, y: _replace(full, r, r_new, y, labels, act))(
            self._full(params), cache["inv"]
        )
        parity = hop_parity(x, old, new, act)
        log_r = log_r + 1j * jnp.pi * (parity % 2)
        if not self.spin_points:
            log_r = log_r + log_dets[0]

            def new_cache():
                return {"r": r_new, "inv": updates}

            return log_r, new_cache
        top = jax.lax.stop_gradient(jnp.max(jnp.real(log_dets)))
        ratios = jnp.exp(log_dets - top)  # Pf_β(x′)/Pf_β(x) / e^top
        total = jnp.sum(cache["w"] * ratios)
        log_r = log_r + jnp.log(total) + top

        def new_cache():
            return {"r": r_new, "inv": updates, "w": cache["w"] * ratios / total}

        return log_r, new_cache

    def describe(self) -> str:
        g = " with Gutzwiller factor" if self.gutzwiller else ""
        if self.spin_points:
            g += f", projected on S = 0 ({self.spin_points} rotations)"
        return (
            f"{self.param_dtype} general (Pfaffian) pair product{g} ({self.n_electrons} electrons on "
            f"{self.n_sites} sites)"
        )
