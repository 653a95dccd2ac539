"""RBM × pair product: :class:`RBMPP` for spinful fermions and :class:`SpinRBMPP` for spin-1/2 models
(``shared/notes/rbm_pp.md``; the pair product itself: :mod:`nqs.models.pair_product`).

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
from .pair_product import PairProduct
from .rbm import RBM

__all__ = ["RBMPP", "SpinRBMPP", "dwave_pairing"]


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
                raise ValueError(
                    "the general (Pfaffian) pair product takes the Gutzwiller factor only "
                    "(no charge Jastrow or doublon-holon factor)"
                )
            pp = PfaffianPP(
                self.n_sites,
                self.n_up,
                self.n_down,
                self.gutzwiller,
                self.param_dtype,
                self.hopping,
                self.init_noise,
                self.twist,
                self.spin_points,
            )
        elif self.pairing == "singlet":
            pp = PairProduct(
                self.n_sites,
                self.n_up,
                self.n_down,
                self.gutzwiller,
                self.param_dtype,
                self.hopping,
                self.init_noise,
                self.twist,
                self.jastrow,
                self.doublon_holon,
            )
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

    def log_psi(self, params: Any, x: jax.Array) -> jax.Array:
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
        object.__setattr__(
            self,
            "pp",
            PairProduct(self.n_sites, half, half, False, self.param_dtype, self.hopping, self.init_noise, self.twist),
        )
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

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
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

    def prepare(self, params: Any) -> Any:
        return {**params, "rbm": self.rbm.prepare(params["rbm"]), "pp": self.pp.prepare(params["pp"])}

    def cache(self, params: Any, x: jax.Array) -> Any:
        return {"rbm": self.rbm.cache(params["rbm"], RBMPP._spins(x)), "pp": self.pp.cache(params["pp"], x)}

    def log_ratio(
        self, params: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        s, nv = RBMPP._spins(x), RBMPP._spins(new_values)
        return self.rbm.log_ratio(params["rbm"], s, cache["rbm"], sites, nv, mask) + self.pp.log_ratio(
            params["pp"], x, cache["pp"], sites, new_values, mask
        )

    def log_ratios(
        self, params: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        s, nv = RBMPP._spins(x), RBMPP._spins(new_values)
        pp = jax.vmap(lambda st, v, m: self.pp.log_ratio(params["pp"], x, cache["pp"], st, v, m))(
            sites, new_values, mask
        )
        return self.rbm.log_ratios(params["rbm"], s, cache["rbm"], sites, nv, mask) + pp

    def update(
        self, params: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        s, nv = RBMPP._spins(x), RBMPP._spins(new_values)
        return {
            "rbm": self.rbm.update(params["rbm"], s, cache["rbm"], sites, nv, mask),
            "pp": self.pp.update(params["pp"], x, cache["pp"], sites, new_values, mask),
        }


@dataclass(frozen=True, eq=False)
class _SpinRBMPPPath(FastPath):
    """:class:`SpinRBMPP`'s path: the pair product's moves of x(σ) (k spin sites: at most k/2 ↑ and k/2 ↓
    electrons move) with ξ's change recounted, plus the RBM factor's path (``rbm``, None without one)."""

    model: SpinRBMPP
    rbm: FastPath | None

    def prepare(self, params: Any) -> Any:
        out = {**params, "pp": self.model.pp._prepare(params["pp"])}
        if self.rbm is not None:
            out["rbm"] = self.rbm.prepare(params["rbm"])
        return out

    def cache(self, params: Any, sigma: jax.Array) -> Any:
        c = {"pp": self.model.pp._cache(params["pp"], self.model.occupations(sigma))}
        if self.rbm is not None:
            c["rbm"] = self.rbm.cache(params["rbm"], sigma)
        return c

    def log_ratio(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        out = self._pp_log_ratio(params, sigma, cache, sites, new_values, mask)
        if self.rbm is not None:
            out = out + self.rbm.log_ratio(params["rbm"], sigma, cache["rbm"], sites, new_values, mask)
        return out

    def log_ratios(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        if self.rbm is None:
            return super().log_ratios(params, sigma, cache, sites, new_values, mask)
        rest = jax.vmap(lambda st, v, m: self._pp_log_ratio(params, sigma, cache, st, v, m))(sites, new_values, mask)
        return rest + self.rbm.log_ratios(params["rbm"], sigma, cache["rbm"], sites, new_values, mask)

    def _pp_move(self, params, sigma, cache, sites, new_values, mask):
        model = self.model
        return model.pp._move(
            params["pp"],
            model.occupations(sigma),
            cache["pp"],
            *model._fermion_move(sites, new_values, mask),
            slots=max(1, sites.shape[-1] // 2),
        )

    def _pp_log_ratio(self, params, sigma, cache, sites, new_values, mask):
        out = self._pp_move(params, sigma, cache, sites, new_values, mask)[0]
        new = apply_moves(sigma, jnp.where(mask, sites, self.model.n_sites), new_values)
        return out + 1j * jnp.pi * ((_xi_parity(new) - _xi_parity(sigma)) % 2)

    def update(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        c = {"pp": self._pp_move(params, sigma, cache, sites, new_values, mask)[1]()}
        if self.rbm is not None:
            c["rbm"] = self.rbm.update(params["rbm"], sigma, cache["rbm"], sites, new_values, mask)
        return c
