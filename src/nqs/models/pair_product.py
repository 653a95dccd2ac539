"""Singlet-type pair-product (PP) state and RBM × PP for spinful fermions (``shared/notes/rbm_pp.md``).

Amplitude
---------
With up–down pairing ``F(i↑, j↓) = f_ij`` (all other blocks zero) and N↑ = N↓, the PP amplitude
``⟨x|φ_F⟩ = Pf X(R)`` of the note §2 equals ``(−1)^{N↑(N↑−1)/2} det M`` with
``M_ab = f(r_a↑, r_b↓)`` (R sorted, canonical basis of :mod:`nqs.models.slater`).  The constant
sign is dropped here:

    ψ_PP(x) = det f[R↑, R↓] · exp(−g Σ_i n_i↑ n_i↓)       (the Gutzwiller factor only if enabled),

rows = ↑ electrons by site, columns = ↓ electrons by site.  ``f`` is a general complex (L, L)
matrix (symmetric f gives a spin singlet; a general one has S^z = 0 only).  The tight-binding
start ``f = Φ↑ Φ↓ᵀ`` reproduces the Slater determinant ``det Φ↑[R↑] det Φ↓[R↓]`` exactly.

Fast path (labelled electrons, see :mod:`nqs.models.slater` for the sign bookkeeping)
-------------------------------------------------------------------------------------
Cache: labelled positions ``r_up``, ``r_dn`` (N,) and ``inv = M⁻¹`` (N↓-labels × N↑-labels) with
``M = f[r_up, r_dn]``.  A move relocates ↑ electrons ``A`` (rows) to sites ``s`` and ↓ electrons
``C`` (columns) to sites ``t``.  With ``u′ = f[s, r_dn′]`` (new rows at the new columns),
``v = f[r_up, t]`` (new columns at the old rows), ``P`` = projector on the rows not in A and
``M_AC = f[r_up[A], r_dn[C]]``, the exact-identity Woodbury form ``M′ = M + L Rᵀ``,
``L = [E_A, P(v − M[:, C])]``, ``Rᵀ = [u′ − M[A, :]; E_Cᵀ]`` gives

    ρ = det M′/det M = det K,   K = [[ u′Y[:, A],   u′(Y P v) − u′[:, C] + u′Y[:, A] M_AC ],
                                     [ Y[C, A],     Y[C, :] P v + Y[C, A] M_AC            ]],
    Y′ = Y − [Y[:, A], Y P v − E_C + Y[:, A] M_AC] K⁻¹ [u′Y − E_Aᵀ; Y[C, :]].

Only exact identities (``M[A, :] Y = E_Aᵀ``, ``Y M[:, C] = E_C``) are used, and the ↑ and ↓
relocations are done *together* (never through the intermediate configuration), as the note
demands.  For a single ↑ hop a → s this is ``ρ = u Y[:, a]``, ``Y′ = Y − Y[:, a](uY − e_aᵀ)/ρ``;
for a single ↓ hop c → t, ``ρ = Y[c, :] v``, ``Y′ = Y − (Yv − e_c) Y[c, :]/ρ``; for the spin
exchange (one ↑ and one ↓ hop) K is the note's 2×2 determinant.  When the move width is k ≤ 2
(every move a single hop, e.g. the Hubbard operator or :class:`~nqs.sampling.hop.HopRule`) the
rank-1 forms are used: ratio O(N), update O(N²).  Otherwise (k ≥ 4: exchanges, pair hops) the
general form with ``m = k // 2`` slots per spin: ratio O(mN²) (one bilinear term), update O(mN²).

Gutzwiller factor (optional): parameter ``g`` (scalar), ``log ψ += −g Σ_i n_i↑ n_i↓``
(the note's sign; mVMC uses exp(+g …)), ``O_g = −Σ_i n_i↑ n_i↓``.
Charge Jastrow factor (optional, ``jastrow=True``): parameter ``v`` (L, L),
``log ψ += −½ Σ_{i≠j} V_ij n_i n_j`` with ``V = (v + vᵀ)/2`` off the diagonal and ``n_i = n_i↑ + n_i↓``;
a move's change costs O(k·L) from the moved sites' rows of V.
Doublon–holon factor (optional, ``doublon_holon`` = the (L, z) nearest-neighbour table): parameter
``dh`` (2, z), ``log ψ += Σ_i [d_i α_d(h̄_i) + h_i α_h(d̄_i)]`` with doublons ``d_i = n_i↑ n_i↓``,
holons ``h_i = (1 − n_i↑)(1 − n_i↓)``, ``h̄_i`` / ``d̄_i`` the holons / doublons among the z neighbours of
i, ``α_d(n) = dh[0, n − 1]``, ``α_h(n) = dh[1, n − 1]`` and ``α(0) = 0`` (a doublon or holon with no
partner beside it is the Gutzwiller factor's: Σ_i h_i = D + L − N); Yokoyama & Shiba's binding of
doublons to holons, mVMC's two-site DH factor.  Its change under a move is recomputed, O(L·z).

RBM × PP
--------
:class:`RBMPP`: ``ψ = ψ_RBM(σ) · ψ_PP(x)`` with the RBM of :mod:`nqs.models.rbm` on the 2L visible
units ``σ_p = 2 n_p − 1 ∈ {±1}`` (the note's recommended "General" encoding; hidden units
``M = round(α · 2L)``), ``log ψ_RBM = Σ_p a_p σ_p + Σ_k log cosh θ_k``, θ = b + σW.

Spin-1/2 models (the note's §2, infinite Gutzwiller projection)
---------------------------------------------------------------
:class:`SpinRBMPP` acts on spin configurations ``σ ∈ {±1}^L`` (:mod:`nqs.hilbert.spin`, S^z = 0)
with one electron per site, ``n_i↑ = (1 + σ_i)/2``, ``n_i↓ = (1 − σ_i)/2``.  The spin basis state
with sign-free spin matrix elements is the site-major product ``Π_{i ascending} c†_{i,s_i}|0⟩ =
ξ(σ)|x(σ)⟩`` with ``ξ(σ) = (−1)^{#{i<j : σ_i = ↓, σ_j = ↑}}``, hence

    ψ(σ) = ψ_RBM(σ) · ξ(σ) · det f[R↑(σ), R↓(σ)]        (RBM on x_i = σ_i, M = round(α·L)),

to be used with the ordinary spin Hamiltonians (:mod:`nqs.hamiltonians`).  A symmetric f gives a
singlet (⟨S²⟩ = 0 with ξ; without ξ it is not).  A spin move (k sites) becomes the fermion move of
2k entries (↑ and ↓ copies of the sites) of the PP fast path; ξ's change is recounted in O(L).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..operators.moves import apply_moves
from .base import FastPath, ParamDtypeModel, fast_path
from .rbm import RBM
from .slater import (
    MoveModel,
    _check_counts,
    electron_labels,
    hop_parity,
    logdet,
    mask_to_identity,
    occupied_sites,
    one_body_matrices,
    parse_move,
    relocate,
    small_logdet,
    small_solve,
    tight_binding_orbitals,
)

__all__ = ["PairProduct", "RBMPP", "SpinRBMPP"]


def _project_factor(rbm: RBM, images: Any, characters: Any, spin_parity: int | None = None):
    """The RBM factor itself, or ``Σ_e χ_e ψ_RBM(e σ)`` over the permutations ``images`` (n_e, n_visible)
    (:class:`~nqs.models.symmetric.Projected`, through the RBM's image path).  When the pair product is
    invariant under the same operations (its f tied over them), this is the projection of the whole
    product: ``Σ_e χ_e (U_e ψ)(x) = ψ_PP(x) Σ_e χ_e ψ_RBM(e x)``."""
    if images is None:
        if characters is not None or spin_parity is not None:
            raise ValueError("rbm characters or spin parity without rbm images")
        return rbm
    from .symmetric import Projected

    perms = np.asarray(images, dtype=np.int64)
    chi = np.ones(len(perms)) if characters is None else np.asarray(characters)
    return Projected(rbm, perms, chi, spin_parity=spin_parity)


def _charges(x: jax.Array, n_sites: int) -> jax.Array:
    """n_i = n_i↑ + n_i↓ (L,), float."""
    xi = x.astype(jnp.float64)
    return xi[:n_sites] + xi[n_sites:]


def _jastrow_matrix(v: jax.Array) -> jax.Array:
    """V = (v + vᵀ)/2 with a zero diagonal (the on-site part is the Gutzwiller factor's)."""
    return 0.5 * (v + v.T) * (1.0 - jnp.eye(v.shape[0]))


def _jastrow_delta(v, x, sites, new_values, mask, n_sites: int):
    """Δ log J for a move, log J = −½ nᵀVn: with Δn on the move's sites s_p (orbital p → site p mod L),
    Δ = −(Σ_p Δn_p (Vn)_{s_p} + ½ Σ_pq Δn_p V_{s_p s_q} Δn_q); O(k·L)."""
    V = _jastrow_matrix(v)
    d = jnp.where(mask, new_values.astype(jnp.float64) - jnp.take(x, sites, mode="clip"), 0.0)
    s = jnp.where(mask, sites, 0) % n_sites
    vs = jnp.take(V, s, axis=0)  # (k, L)
    field = vs @ _charges(x, n_sites)  # (Vn)_{s_p}
    return -(d @ field + 0.5 * d @ jnp.take(vs, s, axis=1) @ d)


def _doublon_holon(dh: jax.Array, x: jax.Array, neighbours: np.ndarray, n_sites: int) -> jax.Array:
    """Σ_i [d_i α_d(h̄_i) + h_i α_h(d̄_i)] of the module docstring, O(L·z)."""
    xi = x.astype(jnp.int32)
    up, dn = xi[:n_sites], xi[n_sites:]
    pad = jnp.zeros((1,), jnp.int32)  # index n_sites pads the rows of sites with fewer neighbours
    d, h = jnp.concatenate([up * dn, pad]), jnp.concatenate([(1 - up) * (1 - dn), pad])
    nb = jnp.asarray(neighbours, dtype=jnp.int32)
    zero = jnp.zeros((2, 1), dh.dtype)
    table = jnp.concatenate([zero, dh], axis=1)  # α(0) = 0
    return (jnp.sum(d[:n_sites] * table[0, jnp.sum(h[nb], axis=1)])
            + jnp.sum(h[:n_sites] * table[1, jnp.sum(d[nb], axis=1)]))


def neighbour_table(bonds: Any, n_sites: int) -> np.ndarray:
    """(L, z_max) neighbour lists of the bonds ``(i, j)``, rows padded with ``n_sites`` (the doublon–holon
    factor's table)."""
    lists: list[set] = [set() for _ in range(n_sites)]
    for i, j in np.asarray(bonds, dtype=np.int64).reshape(-1, 2):
        if i != j:
            lists[int(i)].add(int(j))
            lists[int(j)].add(int(i))
    z = max((len(a) for a in lists), default=0)
    if z == 0:
        raise ValueError("the doublon-holon factor needs neighbours: no bonds given")
    return np.array([sorted(a) + [n_sites] * (z - len(a)) for a in lists], dtype=np.int64)


def _neighbour_table(neighbours: Any, n_sites: int) -> np.ndarray:
    nb = np.asarray(neighbours, dtype=np.int64)
    if nb.ndim != 2 or nb.shape[0] != n_sites or nb.shape[1] < 1:
        raise ValueError(f"doublon_holon must be an (n_sites, z) neighbour table with n_sites = {n_sites}, "
                         f"got shape {nb.shape}")
    if nb.min() < 0 or nb.max() > n_sites:
        raise ValueError(f"doublon_holon: neighbour indices must lie in 0..{n_sites - 1} ({n_sites}: padding)")
    return nb


def _double_occupancy(x: jax.Array, n_sites: int) -> jax.Array:
    """D(x) = Σ_i n_i↑ n_i↓."""
    xi = x.astype(jnp.int32)
    return jnp.sum(xi[:n_sites] * xi[n_sites:])


@dataclass(frozen=True, eq=False)
class PairProduct(MoveModel):
    """Singlet-type pair product ``ψ(x) = det f[R↑, R↓] (· exp(−g Σ n↑n↓))``, N↑ = N↓ (module docstring).

    Parameters ``{"F": (L, L)}`` (+ ``"g": ()`` with ``gutzwiller=True``), complex (default,
    holomorphic) or real (``param_dtype="real"``).  ``init(key)``: with ``hopping`` given (Lattice,
    FermionOperator or matrix, :func:`~nqs.models.slater.one_body_matrices`) the tight-binding
    pairing ``f = Φ↑Φ↓ᵀ`` plus noise ``init_noise`` (see :meth:`init_tight_binding`), else
    ``f = 1 + init_noise·N(0, 1)`` (complex noise for complex parameters).  ``n_sites`` is L;
    configurations have length 2L.
    """

    n_sites: int
    n_up: int
    n_down: int
    gutzwiller: bool = False
    param_dtype: str = "complex"
    hopping: Any = None
    init_noise: float = 0.01
    twist: float = 1e-6
    jastrow: bool = False
    doublon_holon: Any = None  # (L, z) nearest-neighbour table: the doublon–holon factor (module docstring)

    def __post_init__(self) -> None:
        _check_counts(self.n_sites, self.n_up, self.n_down)
        self._check_param_dtype()
        if self.doublon_holon is not None:
            object.__setattr__(self, "doublon_holon", _neighbour_table(self.doublon_holon, self.n_sites))
        if self.n_up != self.n_down:
            raise ValueError(
                f"the singlet pair product needs N↑ = N↓, got {self.n_up}↑ + {self.n_down}↓ "
                "(use the Slater determinant for polarized fillings)"
            )

    @property
    def n_orbitals(self) -> int:
        return 2 * self.n_sites

    @property
    def n_pairs(self) -> int:
        return self.n_up

    # ------------------------------------------------------------------ parameters
    def _noise(self, key, shape):
        k1, k2 = jax.random.split(key)
        z = jax.random.normal(k1, shape)
        if self.param_dtype == "complex":
            z = (z + 1j * jax.random.normal(k2, shape)) / np.sqrt(2.0)
        return z

    def init(self, key: jax.Array) -> dict:
        if self.hopping is not None:
            return self.init_tight_binding(self.hopping, key, self.init_noise)
        L = self.n_sites
        f = jnp.eye(L) + self.init_noise * self._noise(key, (L, L))
        return self._with_g({"F": f.astype(self._dtype)})

    def _with_g(self, p: dict) -> dict:
        if self.gutzwiller:
            p["g"] = jnp.zeros((), self._dtype)
        if self.jastrow:
            p["v"] = jnp.zeros((self.n_sites, self.n_sites), self._dtype)
        if self.doublon_holon is not None:
            p["dh"] = jnp.zeros((2, self.doublon_holon.shape[1]), self._dtype)
        return p

    def init_tight_binding(self, source: Any, key: jax.Array | None = None, noise: float | None = None,
                           twist: float | None = None) -> dict:
        """``f = Φ↑Φ↓ᵀ + noise · ‖Φ↑Φ↓ᵀ‖₂ / L · N(0, 1)`` from the lowest orbitals of ``source``'s one-body
        matrices (degeneracies split as in :func:`~nqs.models.slater.tight_binding_orbitals`).

        With ``noise = 0`` the state is exactly the tight-binding Slater determinant.  The noise is
        scaled by 1/L so that it stays a small perturbation of the determinants at any size (an
        L×L Gaussian matrix has norm ~2√L per unit entry): scaled by max|f| instead, 10 % noise
        turned the 8×8 Hubbard UHF start (E = −51.3) into E = +3.4.
        """
        noise = self.init_noise if noise is None else noise
        twist = self.twist if twist is None else twist
        h_up, h_dn = one_body_matrices(source, self.n_sites)
        up = tight_binding_orbitals(h_up, self.n_up, twist)
        dn = tight_binding_orbitals(h_dn, self.n_down, twist)
        f0 = np.asarray(up @ dn.T)  # concrete (numpy), so init stays traceable (eval_shape, jit)
        if self.param_dtype == "real" and np.iscomplexobj(f0) and float(np.max(np.abs(f0.imag))) > 0:
            raise ValueError("complex tight-binding orbitals need param_dtype='complex'")
        f = self.perturbed(f0.real if self.param_dtype == "real" else f0, noise, key)
        return self._with_g({"F": f})

    def perturbed(self, f0: np.ndarray, noise: float, key: jax.Array | None = None) -> jax.Array:
        """``f0 + noise · ‖f0‖₂ / L · N(0, 1)`` in the parameter dtype (the start noise of every f)."""
        f = jnp.asarray(f0)
        if noise:
            key = jax.random.PRNGKey(0) if key is None else key
            f = f + noise * float(np.linalg.norm(f0, 2)) / self.n_sites * self._noise(key, f.shape)
        return f.astype(self._dtype)

    # ------------------------------------------------------------------ amplitude
    def _positions(self, x):
        L, n = self.n_sites, self.n_pairs
        return occupied_sites(x[:L], n), occupied_sites(x[L:], n)

    def log_psi(self, params, x):
        out = jnp.zeros((), jnp.complex128)
        if self.n_pairs:
            r_up, r_dn = self._positions(x)
            out = logdet(params["F"][r_up][:, r_dn])
        if self.gutzwiller:
            out = out - params["g"] * _double_occupancy(x, self.n_sites)
        if self.jastrow:
            n = _charges(x, self.n_sites)
            out = out - 0.5 * n @ (_jastrow_matrix(params["v"]) @ n)
        if self.doublon_holon is not None:
            out = out + _doublon_holon(params["dh"], x, self.doublon_holon, self.n_sites)
        return out

    # ------------------------------------------------------------------ fast path
    def _cache(self, params, x):
        if not self.n_pairs:
            return {}
        r_up, r_dn = self._positions(x)
        m = params["F"][r_up][:, r_dn].astype(jnp.complex128)
        return {"r_up": r_up, "r_dn": r_dn, "inv": jnp.linalg.inv(m)}

    def _gutzwiller_delta(self, params, x, sites, new_values, mask):
        new = apply_moves(x, jnp.where(mask, sites, 2 * self.n_sites), new_values)
        dd = _double_occupancy(new, self.n_sites) - _double_occupancy(x, self.n_sites)
        return -params["g"] * dd

    def _move(self, params, x, cache, sites, new_values, mask, slots=None):
        """``(log ψ(x′) − log ψ(x), thunk giving the new cache)`` for the move (``slots``: see
        :func:`~nqs.models.slater.parse_move`)."""
        L = self.n_sites
        log_r = jnp.zeros((), jnp.complex128)
        if self.gutzwiller:
            log_r = log_r + self._gutzwiller_delta(params, x, sites, new_values, mask)
        if self.jastrow:
            log_r = log_r + _jastrow_delta(params["v"], x, sites, new_values, mask, L)
        if self.doublon_holon is not None:
            moved = apply_moves(x, jnp.where(mask, sites, 2 * L), new_values)
            log_r = log_r + (_doublon_holon(params["dh"], moved, self.doublon_holon, L)
                             - _doublon_holon(params["dh"], x, self.doublon_holon, L))
        if not self.n_pairs:
            return log_r, lambda: cache
        f = params["F"].astype(jnp.complex128)
        mv = parse_move(x, sites, new_values, mask, L, slots)
        parity = hop_parity(x[:L], mv.old[0], mv.new[0], mv.active[0]) + hop_parity(
            x[L:], mv.old[1], mv.new[1], mv.active[1])
        r_up, r_dn, inv = cache["r_up"], cache["r_dn"], cache["inv"]
        la = electron_labels(r_up, mv.old[0], mv.active[0])
        lc = electron_labels(r_dn, mv.old[1], mv.active[1])
        new_up = relocate(r_up, la, mv.old[0], mv.new[0], mv.active[0])
        new_dn = relocate(r_dn, lc, mv.old[1], mv.new[1], mv.active[1])
        if sites.shape[-1] <= 2:
            log_det, inv_fn = self._single_hop(f, inv, r_up, r_dn, mv, la, lc)
        else:
            log_det, inv_fn = self._general(f, inv, r_up, new_dn, mv, la, lc)
        log_r = log_r + log_det + 1j * jnp.pi * (parity % 2)

        def new_cache():
            return {"r_up": new_up, "r_dn": new_dn, "inv": inv_fn()}

        return log_r, new_cache

    @staticmethod
    def _single_hop(f, inv, r_up, r_dn, mv, la, lc):
        """Rank-1 forms for a move with at most one hop (k ≤ 2): ratio O(N), update O(N²)."""
        n = inv.shape[-1]
        up, dn = mv.active[0, 0], mv.active[1, 0]
        a, c = la[0], lc[0]
        u = f[mv.new[0, 0], r_dn]  # new ↑ row at the (unchanged) ↓ columns
        v = f[r_up, mv.new[1, 0]]  # new ↓ column at the (unchanged) ↑ rows
        rho_up = u @ inv[:, a]
        rho_dn = inv[c, :] @ v
        rho = jnp.where(up, rho_up, jnp.where(dn, rho_dn, 1.0 + 0j))

        def inv_fn():
            e = jnp.arange(n)
            p = jnp.where(up, inv[:, a], jnp.where(dn, inv @ v - (e == c), 0.0))
            q = jnp.where(up, u @ inv - (e == a), inv[c, :])
            return inv - jnp.outer(p, q) / rho

        return jnp.log(rho), inv_fn

    @staticmethod
    def _general(f, inv, r_up, new_dn, mv, la, lc):
        """The rank-(m↑ + m↓) Woodbury form of the module docstring (any k)."""
        n = inv.shape[-1]
        alpha, beta = mv.active[0], mv.active[1]
        e = jnp.arange(n)
        u = f[mv.new[0][:, None], new_dn[None, :]]  # (m, N): new rows at the new columns
        v = f[r_up[:, None], mv.new[1][None, :]]  # (N, m): new columns at the old rows
        unit_a = ((la[:, None] == e[None, :]) & alpha[:, None]).astype(inv.dtype)  # (m, N)
        unit_c = ((lc[:, None] == e[None, :]) & beta[:, None]).astype(inv.dtype)  # (m, N)
        pv = v * (1.0 - jnp.sum(unit_a, axis=0))[:, None]  # rows of the moved ↑ electrons removed
        mac = f[mv.old[0][:, None], mv.old[1][None, :]] * alpha[:, None]  # old rows A × old columns C
        inv_a = jnp.take(inv, la, axis=1)  # (N, m)
        inv_c = jnp.take(inv, lc, axis=0)  # (m, N)
        inv_pv = inv @ pv  # (N, m)
        k11 = u @ inv_a
        k21 = jnp.take(inv_c, la, axis=1)
        k12 = u @ inv_pv - jnp.take(u, lc, axis=1) + k11 @ mac
        k22 = inv_c @ pv + k21 @ mac
        act = jnp.concatenate([alpha, beta])
        k = mask_to_identity(jnp.block([[k11, k12], [k21, k22]]), act)

        def inv_fn():
            left = jnp.concatenate([inv_a, inv_pv - unit_c.T + inv_a @ mac], axis=1) * act[None, :]
            right = jnp.concatenate([u @ inv - unit_a, inv_c], axis=0) * act[:, None]
            return inv - left @ small_solve(k, right)

        return small_logdet(k), inv_fn

    def describe(self) -> str:
        factors = [n for n, on in (("Gutzwiller", self.gutzwiller), ("charge Jastrow", self.jastrow),
                                   ("doublon-holon", self.doublon_holon is not None)) if on]
        g = f" with {' and '.join(factors)} factor{'s' if len(factors) > 1 else ''}" if factors else ""
        return f"{self.param_dtype} singlet pair product{g} ({self.n_pairs} pairs on {self.n_sites} sites)"


@dataclass(frozen=True, eq=False)
class RBMPP(ParamDtypeModel):
    """``ψ(x) = ψ_RBM(2x − 1) · ψ_PP(x)``: RBM on the 2L occupations (±1 encoded) times a pair product.

    Parameters ``{"rbm": {"a", "b", "W"}, "pp": {"F"(, "g", "v", "dh")}}``; hidden units ``round(α·2L)``;
    RBM initial scale ``init_scale``; PP options as in :class:`PairProduct`.  The cache is
    ``{"rbm": θ-cache, "pp": PP cache}``; a move costs the sum of both fast paths.
    """

    n_sites: int
    n_up: int
    n_down: int
    alpha: float = 1.0
    init_scale: float = 0.01
    gutzwiller: bool = False
    param_dtype: str = "complex"
    hopping: Any = None
    init_noise: float = 0.01
    twist: float = 1e-6
    jastrow: bool = False
    rbm_images: Any = None  # (n_e, 2L) permutations of the visible units: the RBM factor is projected
    rbm_characters: Any = None  # (n_e,) weights of those images (default all 1)
    doublon_holon: Any = None  # (L, z) neighbour table: the PP's doublon–holon factor
    pairing: str = "singlet"  # "general": the Pfaffian pair product (:mod:`nqs.models.pfaffian`)
    spin_points: int = 0  # general pairing: the PP projected on S = 0 with this many rotations

    def __post_init__(self) -> None:
        if self.spin_points and self.pairing != "general":
            raise ValueError("the S = 0 projection (spin_points) is for pairing = 'general'")
        if self.pairing == "general":
            from .pfaffian import PfaffianPP

            if self.jastrow or self.doublon_holon is not None:
                raise ValueError("the general (Pfaffian) pair product takes the Gutzwiller factor only "
                                 "(no charge Jastrow or doublon-holon factor)")
            pp = PfaffianPP(self.n_sites, self.n_up, self.n_down, self.gutzwiller, self.param_dtype,
                            self.hopping, self.init_noise, self.twist, self.spin_points)
        elif self.pairing == "singlet":
            pp = PairProduct(self.n_sites, self.n_up, self.n_down, self.gutzwiller, self.param_dtype,
                             self.hopping, self.init_noise, self.twist, self.jastrow, self.doublon_holon)
        else:
            raise ValueError(f"pairing must be 'singlet' or 'general', got {self.pairing!r}")
        rbm = RBM(2 * self.n_sites, self.alpha, self.init_scale, self.param_dtype)
        object.__setattr__(self, "pp", pp)
        object.__setattr__(self, "plain_rbm", rbm)
        object.__setattr__(self, "rbm", _project_factor(rbm, self.rbm_images, self.rbm_characters))

    @property
    def n_orbitals(self) -> int:
        return 2 * self.n_sites

    @property
    def n_hidden(self) -> int:
        return self.plain_rbm.n_hidden

    def init(self, key: jax.Array) -> dict:
        k1, k2 = jax.random.split(key)
        return {"rbm": self.rbm.init(k1), "pp": self.pp.init(k2)}

    def init_tight_binding(self, source: Any, key: jax.Array | None = None, noise: float | None = None) -> dict:
        """Small random RBM and the tight-binding PP (:meth:`PairProduct.init_tight_binding`)."""
        key = jax.random.PRNGKey(0) if key is None else key
        k1, k2 = jax.random.split(key)
        return {"rbm": self.rbm.init(k1), "pp": self.pp.init_tight_binding(source, k2, noise)}

    @staticmethod
    def _spins(x):
        return (2 * x.astype(jnp.int8) - 1).astype(jnp.int8)

    def log_psi(self, params, x):
        return self.rbm.log_psi(params["rbm"], self._spins(x)) + self.pp.log_psi(params["pp"], x)

    def make_fast_path(self) -> FastPath:
        return _RBMPPPath(fast_path(self.rbm), fast_path(self.pp))

    def describe(self) -> str:
        proj = "" if self.rbm_images is None else f" projected on {self.rbm.n_terms} images"
        return f"RBM (alpha={self.alpha:g}, {self.n_hidden} hidden){proj} x {self.pp.describe()}"


def _xi_parity(sigma: jax.Array) -> jax.Array:
    """Parity of #{i < j : σ_i = ↓, σ_j = ↑} (the sign ξ(σ) of the note §2), O(L) via a prefix sum."""
    up = (sigma > 0).astype(jnp.int32)
    dn_before = jnp.cumsum(1 - up) - (1 - up)
    return jnp.sum(up * dn_before) % 2


def dwave_pairing(lattice: Any, delta: float = 3.0, mu: float = 0.0, t: float = 1.0) -> np.ndarray:
    """Real-space BCS pair function of d_{x²−y²} pairing on a periodic square lattice, (L, L) real.

    ``f_ij = (1/N) Σ_k φ_k cos k·(r_i − r_j)`` with ``φ_k = v_k/u_k = (E_k − ξ_k)/Δ_k``,
    ``ξ_k = −2t(cos k_x + cos k_y) − μ``, ``Δ_k = Δ(cos k_x − cos k_y)``, ``E_k = √(ξ_k² + Δ_k²)``:
    after Gutzwiller projection the d-wave RVB state (Gros; the usual start of mVMC's PP for
    Heisenberg and J1-J2 models).  The k grid is taken antiperiodic along x (k_x shifted by π/L_x):
    on an L×L torus no k then lies on a nodal line k_x = ±k_y (where Δ_k = 0 and φ_k is 0 or
    infinite), nor at ξ_k = Δ_k = 0.  On other grids such points get φ_k = 0 (ξ_k > 0), 1 (ξ_k = 0)
    or 10³ (ξ_k < 0, a filled pair).  Any f is a valid pair function: the boundary of the auxiliary
    BCS problem need not be the spins'.  On the 4×4 J1-J2 model at J2 = 0.5 this start alone
    (Δ = 3) gives E = −8.183 against the exact −8.458, where the projected nearest-neighbour Fermi
    sea (open shell) gives −5.794.  The projected state is sensitive to f: start noise
    (:meth:`PairProduct.perturbed`) of 0.01 costs 0.0003 in that energy, 0.1 costs 0.06.
    """
    if getattr(lattice, "kind", None) != "square" or not all(lattice.pbc):
        raise ValueError("d-wave pairing needs a periodic square lattice")
    if delta <= 0:
        raise ValueError(f"the d-wave gap must be positive, got {delta}")
    ks = np.asarray(lattice.momenta(), float) + np.array([np.pi / lattice.size[0], 0.0])
    xi = -2.0 * t * (np.cos(ks[:, 0]) + np.cos(ks[:, 1])) - mu
    dk = delta * (np.cos(ks[:, 0]) - np.cos(ks[:, 1]))
    node = np.abs(dk) < 1e-12
    on_node = np.where(xi < -1e-12, 1e3, np.where(xi > 1e-12, 0.0, 1.0))
    phi = np.where(node, on_node, (np.sqrt(xi**2 + dk**2) - xi) / np.where(node, 1.0, dk))
    pos = np.asarray(lattice.positions, float)
    r = pos[:, None, :] - pos[None, :, :]
    f = np.cos(np.einsum("kd,ijd->ijk", ks, r)) @ phi / len(ks)
    return f / np.max(np.abs(f))


@dataclass(frozen=True, eq=False)
class SpinRBMPP(ParamDtypeModel):
    """RBM × Gutzwiller-projected singlet pair product for spin-1/2 configurations (module docstring).

    ``n_sites`` L (even; configurations σ (L,) ∈ {±1} with Σσ = 0).  Parameters ``{"pp": {"F": (L, L)}}``
    plus ``"rbm"`` (visible units σ_i, ``round(α·L)`` hidden units) when ``alpha > 0``.
    ``init(key)``: with ``hopping`` (Lattice, FermionOperator or matrix on L or 2L orbitals) the
    projected Fermi sea ``f = ΦΦᵀ`` (symmetric) plus relative noise ``init_noise``; else a random
    symmetric complex f.  The cache is ``{"pp": PP cache of x(σ)(, "rbm": θ-cache)}``.
    """

    n_sites: int
    alpha: float = 0.0
    init_scale: float = 0.01
    param_dtype: str = "complex"
    hopping: Any = None
    init_noise: float = 0.1
    twist: float = 1e-6
    pairing: Any = None  # (L, L) start for f (e.g. :func:`dwave_pairing`); wins over ``hopping``
    rbm_images: Any = None  # (n_g, L) site permutations: the RBM factor is projected over them
    rbm_characters: Any = None  # (n_g,) characters of those images (default all 1)
    rbm_spin_parity: int | None = None  # also over the spin flip: ψ_RBM(gσ) + p ψ_RBM(−gσ)

    def __post_init__(self) -> None:
        if self.n_sites % 2:
            raise ValueError(f"the projected pair product needs an even number of sites (S^z = 0), got {self.n_sites}")
        half = self.n_sites // 2
        object.__setattr__(self, "pp", PairProduct(self.n_sites, half, half, False, self.param_dtype,
                                                   self.hopping, self.init_noise, self.twist))
        rbm = RBM(self.n_sites, self.alpha, self.init_scale, self.param_dtype) if self.alpha > 0 else None
        if rbm is not None:
            rbm = _project_factor(rbm, self.rbm_images, self.rbm_characters, self.rbm_spin_parity)
        elif self.rbm_images is not None:
            raise ValueError("projecting the RBM factor needs alpha > 0")
        object.__setattr__(self, "rbm", rbm)

    def init(self, key: jax.Array) -> dict:
        k1, k2 = jax.random.split(key)
        if self.pairing is not None:
            f0 = np.asarray(self.pairing)
            if f0.shape != (self.n_sites, self.n_sites):
                raise ValueError(f"pairing must be ({self.n_sites}, {self.n_sites}), got {f0.shape}")
            pp = {"F": self.pp.perturbed(f0, self.init_noise, k1)}
        elif self.hopping is not None:
            pp = self.pp.init_tight_binding(self.hopping, k1)
        else:
            a = self.pp._noise(k1, (self.n_sites, self.n_sites))
            pp = {"F": (0.5 * (a + a.T)).astype(self.pp._dtype)}
        out = {"pp": pp}
        if self.rbm is not None:
            out["rbm"] = self.rbm.init(k2)
        return out

    def occupations(self, sigma: jax.Array) -> jax.Array:
        """x(σ) = (n↑, n↓) = ((1 + σ)/2, (1 − σ)/2), int8 (2L,)."""
        up = ((1 + sigma) // 2).astype(jnp.int8)
        return jnp.concatenate([up, 1 - up])

    def _fermion_move(self, sites, new_values, mask):
        L = self.n_sites
        up = ((1 + new_values) // 2).astype(jnp.int8)
        fs = jnp.concatenate([jnp.where(mask, sites, 2 * L), jnp.where(mask, sites + L, 2 * L)])
        return fs, jnp.concatenate([up, 1 - up]), jnp.concatenate([mask, mask])

    def log_psi(self, params, sigma):
        out = self.pp.log_psi(params["pp"], self.occupations(sigma)) + 1j * jnp.pi * _xi_parity(sigma)
        if self.rbm is not None:
            out = out + self.rbm.log_psi(params["rbm"], sigma)
        return out

    def make_fast_path(self) -> FastPath:
        return _SpinRBMPPPath(self, None if self.rbm is None else fast_path(self.rbm))

    def describe(self) -> str:
        proj = "" if self.rbm_images is None else f" projected on {self.rbm.n_terms} images"
        rbm = f"RBM (alpha={self.alpha:g}){proj} x " if self.rbm is not None else ""
        return f"{rbm}Gutzwiller-projected pair product for spins ({self.n_sites} sites)"


@dataclass(frozen=True, eq=False)
class _RBMPPPath(FastPath):
    """:class:`RBMPP`'s path: the RBM factor's path on σ = 2x − 1 plus the pair product's on x."""

    rbm: FastPath
    pp: FastPath

    def prepare(self, params):
        return {**params, "rbm": self.rbm.prepare(params["rbm"]), "pp": self.pp.prepare(params["pp"])}

    def cache(self, params, x):
        return {"rbm": self.rbm.cache(params["rbm"], RBMPP._spins(x)), "pp": self.pp.cache(params["pp"], x)}

    def log_ratio(self, params, x, cache, sites, new_values, mask):
        s, nv = RBMPP._spins(x), RBMPP._spins(new_values)
        return (self.rbm.log_ratio(params["rbm"], s, cache["rbm"], sites, nv, mask)
                + self.pp.log_ratio(params["pp"], x, cache["pp"], sites, new_values, mask))

    def log_ratios(self, params, x, cache, sites, new_values, mask):
        s, nv = RBMPP._spins(x), RBMPP._spins(new_values)
        pp = jax.vmap(lambda st, v, m: self.pp.log_ratio(params["pp"], x, cache["pp"], st, v, m))(
            sites, new_values, mask)
        return self.rbm.log_ratios(params["rbm"], s, cache["rbm"], sites, nv, mask) + pp

    def update(self, params, x, cache, sites, new_values, mask):
        s, nv = RBMPP._spins(x), RBMPP._spins(new_values)
        return {"rbm": self.rbm.update(params["rbm"], s, cache["rbm"], sites, nv, mask),
                "pp": self.pp.update(params["pp"], x, cache["pp"], sites, new_values, mask)}


@dataclass(frozen=True, eq=False)
class _SpinRBMPPPath(FastPath):
    """:class:`SpinRBMPP`'s path: the pair product's moves of x(σ) (k spin sites: at most k/2 ↑ and k/2 ↓
    electrons move) with ξ's change recounted, plus the RBM factor's path (``rbm``, None without one)."""

    model: SpinRBMPP
    rbm: FastPath | None

    def prepare(self, params):
        out = {**params, "pp": self.model.pp._prepare(params["pp"])}
        if self.rbm is not None:
            out["rbm"] = self.rbm.prepare(params["rbm"])
        return out

    def cache(self, params, sigma):
        c = {"pp": self.model.pp._cache(params["pp"], self.model.occupations(sigma))}
        if self.rbm is not None:
            c["rbm"] = self.rbm.cache(params["rbm"], sigma)
        return c

    def log_ratio(self, params, sigma, cache, sites, new_values, mask):
        out = self._pp_log_ratio(params, sigma, cache, sites, new_values, mask)
        if self.rbm is not None:
            out = out + self.rbm.log_ratio(params["rbm"], sigma, cache["rbm"], sites, new_values, mask)
        return out

    def log_ratios(self, params, sigma, cache, sites, new_values, mask):
        if self.rbm is None:
            return super().log_ratios(params, sigma, cache, sites, new_values, mask)
        rest = jax.vmap(lambda st, v, m: self._pp_log_ratio(params, sigma, cache, st, v, m))(sites, new_values, mask)
        return rest + self.rbm.log_ratios(params["rbm"], sigma, cache["rbm"], sites, new_values, mask)

    def _pp_move(self, params, sigma, cache, sites, new_values, mask):
        model = self.model
        return model.pp._move(params["pp"], model.occupations(sigma), cache["pp"],
                              *model._fermion_move(sites, new_values, mask), slots=max(1, sites.shape[-1] // 2))

    def _pp_log_ratio(self, params, sigma, cache, sites, new_values, mask):
        out = self._pp_move(params, sigma, cache, sites, new_values, mask)[0]
        new = apply_moves(sigma, jnp.where(mask, sites, self.model.n_sites), new_values)
        return out + 1j * jnp.pi * ((_xi_parity(new) - _xi_parity(sigma)) % 2)

    def update(self, params, sigma, cache, sites, new_values, mask):
        c = {"pp": self._pp_move(params, sigma, cache, sites, new_values, mask)[1]()}
        if self.rbm is not None:
            c["rbm"] = self.rbm.update(params["rbm"], sigma, cache["rbm"], sites, new_values, mask)
        return c
