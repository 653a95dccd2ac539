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

The RBM × PP states built on it: :mod:`nqs.models.rbm_pp`.
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

__all__ = ["PairProduct", "neighbour_table"]


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
    return jnp.sum(d[:n_sites] * table[0, jnp.sum(h[nb], axis=1)]) + jnp.sum(
        h[:n_sites] * table[1, jnp.sum(d[nb], axis=1)]
    )


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
        raise ValueError(
            f"doublon_holon must be an (n_sites, z) neighbour table with n_sites = {n_sites}, got shape {nb.shape}"
        )
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

    def init_tight_binding(
        self, source: Any, key: jax.Array | None = None, noise: float | None = None, twist: float | None = None
    ) -> dict:
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

    def log_psi(self, params: Any, x: jax.Array) -> jax.Array:
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
            log_r = log_r + (
                _doublon_holon(params["dh"], moved, self.doublon_holon, L)
                - _doublon_holon(params["dh"], x, self.doublon_holon, L)
            )
        if not self.n_pairs:
            return log_r, lambda: cache
        f = params["F"].astype(jnp.complex128)
        mv = parse_move(x, sites, new_values, mask, L, slots)
        parity = hop_parity(x[:L], mv.old[0], mv.new[0], mv.active[0]) + hop_parity(
            x[L:], mv.old[1], mv.new[1], mv.active[1]
        )
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
        factors = [
            n
            for n, on in (
                ("Gutzwiller", self.gutzwiller),
                ("charge Jastrow", self.jastrow),
                ("doublon-holon", self.doublon_holon is not None),
            )
            if on
        ]
        g = f" with {' and '.join(factors)} factor{'s' if len(factors) > 1 else ''}" if factors else ""
        return f"{self.param_dtype} singlet pair product{g} ({self.n_pairs} pairs on {self.n_sites} sites)"
