"""Symmetric wave functions: a weight-shared RBM and the projection of any model onto a sector.

Conventions are those of :mod:`nqs.lattice.groups` (docs/symmetry.md): element ``g`` of a
:class:`~nqs.lattice.SymmetryGroup` moves site ``i`` to ``perms[g, i]`` and acts on a
configuration as ``(gσ)_{perms[g, i]} = σ_i``, i.e. ``gσ = σ[p_g^{-1}]``; the operators
``U_g|σ⟩ = |gσ⟩`` act on wave functions as ``(U_g ψ)(σ) = ψ(g^{-1}σ)``.  A 1D character ``χ``
labels the sector ``U_g ψ = χ(g) ψ``, i.e. ``ψ(gσ) = χ(g)* ψ(σ)``; with the characters of
:func:`~nqs.lattice.space_characters` (``χ = e^{−ik·T} χ_P``) that is momentum ``k``.

* :class:`SymmetricRBM` — an RBM whose hidden units come in α filters, each copied over the
  group: log ψ is invariant, ``ψ(gσ) = ψ(σ)`` (the trivial sector: k = 0, A1).
* :class:`Projected` — ``ψ_P = Σ_g χ(g)* U_g ψ`` (and ``(1 + pF)`` for a spin parity ``p``): the
  projection of any model onto the sector ``χ`` (up to the factor ``|G|/d``), evaluated in log
  space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..lattice.groups import SymmetryGroup, translation_group
from ..lattice.lattice import Lattice
from ..operators.moves import move_delta
from .base import FastPath, Model, fast_path
from .numerics import log_cosh, log_cosh_ratio_sum, power_of_two


def _as_group(symmetry: Lattice | SymmetryGroup) -> SymmetryGroup:
    if isinstance(symmetry, SymmetryGroup):
        return symmetry
    if isinstance(symmetry, Lattice):
        return translation_group(symmetry)
    raise TypeError(f"expected a Lattice or a SymmetryGroup, got {type(symmetry).__name__}")


@dataclass(frozen=True, eq=False)
class SymmetricRBM(Model):
    """Weight-shared complex RBM, invariant under a permutation group (translations by default).

        log ψ(σ) = Σ_f a_f Σ_i σ_i + Σ_f Σ_{g∈G} log cosh θ_{f,g}(σ),
        θ_{f,g}(σ) = b_f + Σ_i W_{f,i} σ_{p_g(i)} = b_f + Σ_i W_{f,i} (g^{-1}σ)_i,

    so that ``σ → hσ`` only relabels ``g → h^{-1}g``: ``ψ(hσ) = ψ(σ)`` for every ``h ∈ G``.
    Parameters (complex, holomorphic): ``{"a": (α,), "b": (α,), "W": (α, n_sites)}``; the RBM has
    ``α·|G|`` hidden units.  ``symmetry`` is a :class:`~nqs.lattice.Lattice` (its translation
    group) or a :class:`~nqs.lattice.SymmetryGroup` (e.g. the space group).
    Initialization: real and imaginary parts ~ ``init_scale · N(0, 1)``.

    ``hidden_bias=False`` drops ``b`` (fixed at 0): log cosh is even, so then ``ψ(−σ) =
    e^{−2 a·Σσ} ψ(σ)`` and at total Sz = 0 the state is even under the global spin flip exactly —
    the parity-even projection for free, at half the cost of summing over ``±σ``.

    Fast path: the cache holds θ (α, |G|) and Σ log cosh θ; a move of ``k`` sites updates θ with
    ``Δθ_{f,g} = Σ_{j moved} W_{f, p_g^{-1}(j)} Δσ_j`` in O(α·|G|·k).
    """

    symmetry: Lattice | SymmetryGroup
    alpha: int = 1
    init_scale: float = 0.01
    hidden_bias: bool = True
    group: SymmetryGroup = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if int(self.alpha) != self.alpha or self.alpha < 1:
            raise ValueError(f"SymmetricRBM alpha (number of filters) must be a positive int, got {self.alpha!r}")
        object.__setattr__(self, "alpha", int(self.alpha))
        object.__setattr__(self, "group", _as_group(self.symmetry))

    holomorphic = True  # type: ignore[assignment]
    real_derivatives = False

    @property
    def n_sites(self) -> int:  # type: ignore[override]
        return self.group.n_sites

    @property
    def n_hidden(self) -> int:
        """Number of hidden units ``α·|G|``."""
        return self.alpha * len(self.group)

    def _perms(self) -> jax.Array:
        return jnp.asarray(self.group.perms, dtype=jnp.int32)

    def _inverse_perms(self) -> jax.Array:
        return jnp.asarray(self.group.inverse_perms, dtype=jnp.int32)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        ks = jax.random.split(key, 6)
        a, n = self.alpha, self.n_sites

        def draw(k1: jax.Array, k2: jax.Array, shape: tuple[int, ...]) -> jax.Array:
            return self.init_scale * (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape))

        params = {"a": draw(ks[0], ks[1], (a,)), "b": draw(ks[2], ks[3], (a,)), "W": draw(ks[4], ks[5], (a, n))}
        if not self.hidden_bias:
            del params["b"]
        return params

    def _theta(self, params: Any, sigma: jax.Array) -> jax.Array:
        """θ (α, |G|): ``θ[f, g] = b_f + Σ_i W[f, i] σ[p_g[i]]``."""
        s = sigma[self._perms()].astype(params["W"].dtype)  # s[g, i] = σ_{p_g(i)}
        theta = params["W"] @ s.T
        return theta + params["b"][:, None] if self.hidden_bias else theta

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        theta = self._theta(params, sigma)
        visible = jnp.sum(params["a"]) * jnp.sum(sigma.astype(params["a"].dtype))
        return (visible + jnp.sum(log_cosh(theta))).astype(jnp.complex128)

    def _deltas(self, params, sigma, sites, new_values, mask):
        """Δθ (α, |G|) of a move and its visible-bias term."""
        d = move_delta(sigma, sites, new_values, mask).astype(params["W"].dtype)  # (k,)
        src = jnp.take(self._inverse_perms(), sites, axis=1, mode="clip")  # (|G|, k): p_g^{-1}(j)
        w = jnp.take(params["W"], src, axis=1)  # (α, |G|, k)
        return w @ d, jnp.sum(params["a"]) * jnp.sum(d)

    def make_fast_path(self) -> FastPath:
        return _SymmetricRBMPath(self)

    def describe(self) -> str:
        return (
            f"symmetric complex RBM (alpha={self.alpha}, |G|={len(self.group)}, "
            f"{self.n_hidden} hidden units{'' if self.hidden_bias else ', no hidden bias: spin-flip even'})"
        )


@dataclass(frozen=True, eq=False)
class _SymmetricRBMPath(FastPath):
    """The cache holds θ (α, |G|) and Σ log cosh θ; a move of k sites costs O(α·|G|·k)."""

    model: SymmetricRBM

    def cache(self, params: Any, sigma: jax.Array) -> dict[str, jax.Array]:
        theta = self.model._theta(params, sigma)
        return {"theta": theta, "lc": jnp.sum(log_cosh(theta))}

    def _move(self, params, sigma, cache, sites, new_values, mask):
        dtheta, dvis = self.model._deltas(params, sigma, sites, new_values, mask)
        new_theta = cache["theta"] + dtheta
        new_lc = jnp.sum(log_cosh(new_theta))
        return (dvis + new_lc - cache["lc"]).astype(jnp.complex128), {"theta": new_theta, "lc": new_lc}

    def log_ratio(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        return self._move(params, sigma, cache, sites, new_values, mask)[0]

    def update(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        return self._move(params, sigma, cache, sites, new_values, mask)[1]

    def log_ratios(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        dtheta, dvis = jax.vmap(self.model._deltas, in_axes=(None, None, 0, 0, 0))(
            params, sigma, sites, new_values, mask
        )
        lc = log_cosh_ratio_sum(cache["theta"].reshape(-1), dtheta.reshape(dtheta.shape[0], -1))
        return (dvis + lc).astype(jnp.complex128)


class _ProjectedPrepared(NamedTuple):
    """The prepared parameters of a projection's path: ``raw`` parameters and the inner path's ``fast`` ones."""

    raw: Any
    fast: Any


class _ImageSum(Model):
    """What :class:`Projected` and :class:`FermionProjected` share: ``model``, the weights ``_weights`` of
    their images, and the sum ``log Σ_e c_e exp(l_e)`` of the image log-amplitudes."""

    @property
    def n_sites(self) -> int:  # type: ignore[override]
        return self.model.n_sites

    @property
    def holomorphic(self) -> bool:  # type: ignore[override]
        return self.model.holomorphic

    @property
    def real_derivatives(self) -> bool:  # type: ignore[override]
        """Real inner parameters and real characters: ψ_P is real, its sign is piecewise constant."""
        real_chi = bool(np.allclose(np.imag(self._weights), 0, atol=1e-12))
        return bool(self.model.real_derivatives) and real_chi

    def init(self, key: jax.Array) -> Any:
        return self.model.init(key)

    def _sum(self, logs):
        m = jax.lax.stop_gradient(jnp.max(jnp.real(logs)))
        return m + jnp.log(jnp.sum(jnp.asarray(self._weights, dtype=jnp.complex128) * jnp.exp(logs - m)))


@dataclass(frozen=True, eq=False)
class _ImageSumPath(FastPath):
    """What the paths of :class:`Projected` and :class:`FermionProjected` share: the model and the inner
    model's path; the prepared parameters are :class:`_ProjectedPrepared`."""

    model: Any
    inner: FastPath

    def _split(self, params):
        """(raw, fast) parameters: ``log_psi`` takes the first, the fast path the second."""
        if not isinstance(params, _ProjectedPrepared):
            params = self.prepare(params)
        return params.raw, params.fast


@dataclass(frozen=True, eq=False)
class Projected(_ImageSum):
    """Projection of ``model`` onto a symmetry sector, with the same parameters.

        ψ_P(σ) = Σ_{g∈G} χ(g)* (U_g ψ)(σ) = Σ_g χ(g)* ψ(g^{-1}σ) = Σ_g χ(g) ψ(gσ)

    (``χ(g^{-1}) = χ(g)*``), i.e. ``ψ_P = (|G|/d) P_χ ψ`` with ``P_χ`` of
    :func:`~nqs.exact.sectors.projector_dense`.  With ``spin_parity = p`` also
    ``ψ_P(σ) → ψ_P(σ) + p ψ_P(−σ)`` (the projector ``(1 + pF)/2``).  For a 1D character the
    result lies in the sector: ``U_h ψ_P = χ(h) ψ_P``, i.e.

        ψ_P(hσ) = χ(h)* ψ_P(σ),      ψ_P(−σ) = p ψ_P(σ).

    ``group``: a :class:`~nqs.lattice.SymmetryGroup` or a permutation table
    (n_g, n_sites); ``characters``: complex (n_g,) (e.g. from ``space_characters``).
    log ψ_P = m + log Σ_e c_e exp(l_e − m) over the ``n_e = |G|`` (or ``2|G|``) terms
    ``l_e = log ψ(e σ)`` with ``m = max Re l_e`` (a complex log-sum-exp; ``m`` carries no
    gradient).  Holomorphic when the inner model is.  Configurations where the projection
    vanishes get ``log ψ_P = −inf``.

    Fast path (uses the inner model's): the cache holds the inner caches of all images ``eσ`` and
    their log-amplitudes ``l_e``.  A move of site ``j`` to value ``v`` in σ moves site ``p_g(j)`` to
    ``v`` in ``gσ`` (``−v`` in ``−gσ``), so each image's ratio ``Δ_e`` comes from the inner fast
    path (O(|G|·k·M) for the RBM) and ``log ψ_P(σ′) − log ψ_P(σ) = log Σ_e c_e e^{l_e + Δ_e} −
    log Σ_e c_e e^{l_e}``; on acceptance ``l_e += Δ_e`` and the inner caches are updated.

    Image path (when the inner path has :meth:`~nqs.models.base.FastPath.image_path`, e.g. the RBM's, also
    behind the Marshall sign or a reparametrization): ``prepare`` builds tables over all images at once
    and the cache keeps w_e = c_e ψ(eσ)/ψ_P(σ).  A move then gives the image ratios r_e = ψ(eσ′)/ψ(eσ)
    (as mantissa × power of two, no logarithm per image) and ψ_P(σ′)/ψ_P(σ) = Σ_e w_e r_e; on acceptance
    w_e ← w_e r_e / Σ_e w_e r_e: one pass over the images per move instead of one fast-path call per image.
    """

    model: Model
    group: SymmetryGroup | np.ndarray
    characters: Any
    spin_parity: int | None = None

    def __post_init__(self) -> None:
        perms = self.group.perms if isinstance(self.group, SymmetryGroup) else np.asarray(self.group)
        perms = np.asarray(perms, dtype=np.int64)
        if perms.ndim != 2 or perms.shape[1] != self.model.n_sites:
            raise ValueError(f"group permutations must have shape (n_g, {self.model.n_sites}), got {perms.shape}")
        chi = np.asarray(self.characters, dtype=complex).reshape(-1)
        if chi.shape != (len(perms),):
            raise ValueError(f"characters must have shape ({len(perms)},), got {chi.shape}")
        if self.spin_parity not in (None, 1, -1):
            raise ValueError(f"spin_parity must be None, +1 or -1, got {self.spin_parity!r}")
        inv = np.empty_like(perms)
        inv[np.arange(len(perms))[:, None], perms] = np.arange(perms.shape[1])[None, :]
        weights = chi
        if self.spin_parity is not None:
            weights = np.concatenate([chi, self.spin_parity * chi])
        object.__setattr__(self, "_inverse", inv)
        object.__setattr__(self, "_perms", perms)
        object.__setattr__(self, "_weights", weights)

    @property
    def permutations(self) -> np.ndarray:
        """The group's permutations (n_g, n_sites) (the spin flip, if any, is ``spin_parity``)."""
        return self._perms

    @property
    def n_terms(self) -> int:
        """Number of inner evaluations per amplitude: ``|G|`` (``2|G|`` with a spin parity)."""
        return len(self._weights)

    def images(self, sigma: jax.Array) -> jax.Array:
        """The configurations ``e σ`` summed over, shape (n_terms, n_sites): ``gσ = σ[p_g^{-1}]``
        for every ``g``, then (with a spin parity) ``−gσ``."""
        configs = sigma[jnp.asarray(self._inverse, dtype=jnp.int32)]
        if self.spin_parity is not None:
            configs = jnp.concatenate([configs, -configs], axis=0)
        return configs

    def log_psi(self, params: Any, sigma: jax.Array) -> jax.Array:
        configs = self.images(sigma)
        return self._sum(jax.vmap(self.model.log_psi, in_axes=(None, 0))(params, configs).astype(jnp.complex128))

    # ---- fast path through the inner model's caches
    def _image_moves(self, sites, new_values, mask):
        """Per image ``e``: the moved sites ``p_g(j)`` (padding kept) and values (negated for −gσ)."""
        n = self.n_sites
        perms = np.concatenate([self._perms, self._perms]) if self.spin_parity is not None else self._perms
        signs = np.ones(len(perms), dtype=np.int8)
        if self.spin_parity is not None:
            signs[len(self._perms) :] = -1
        padded = jnp.concatenate([jnp.asarray(perms, jnp.int32), jnp.full((len(perms), 1), n, jnp.int32)], axis=1)
        img_sites = jnp.take(padded, jnp.where(mask, sites, n), axis=1)  # (n_e, k)
        img_values = jnp.asarray(signs)[:, None] * new_values[None, :].astype(jnp.int8)
        return img_sites, img_values.astype(new_values.dtype)

    def _coefficients(self):
        return jnp.asarray(self._weights, dtype=jnp.complex128)

    def make_fast_path(self) -> FastPath:
        perms, signs = self._perms, np.ones(len(self._perms), dtype=np.int64)
        if self.spin_parity is not None:
            perms, signs = np.concatenate([perms, perms]), np.concatenate([signs, -signs])
        inner = fast_path(self.model)
        return _ProjectedPath(self, inner, inner.image_path(perms, signs))

    def describe(self) -> str:
        par = "" if self.spin_parity is None else f", spin parity {self.spin_parity:+d}"
        return f"{self.model.describe()} projected on a {len(self._inverse)}-element group{par}"


@dataclass(frozen=True, eq=False)
class _ProjectedPath(_ImageSumPath):
    """:class:`Projected`'s path: through the inner path's ``images`` (an :class:`~nqs.models.base.ImagePath`)
    when it has one, else image by image through the inner path (the model's docstring)."""

    images: Any  # ImagePath | None

    def prepare(self, params: Any) -> Any:
        """The parameters as they are (for ``log ψ`` of the images) and prepared for the fast path: the inner
        image path's tables when there is one (the RBM's tables over all images), else the inner path's."""
        fast = self.images.prepare(params) if self.images is not None else self.inner.prepare(params)
        return _ProjectedPrepared(params, fast)

    def cache(self, params: Any, sigma: jax.Array) -> Any:
        raw, fast = self._split(params)
        model = self.model
        if self.images is not None:
            inner, logs = self.images.cache(fast, sigma)
            total = model._sum(logs)
            return {"inner": inner, "w": model._coefficients() * jnp.exp(logs - total), "total": total}
        configs = model.images(sigma)
        inner = jax.vmap(self.inner.cache, in_axes=(None, 0))(fast, configs)
        logs = jax.vmap(model.model.log_psi, in_axes=(None, 0))(raw, configs).astype(jnp.complex128)
        return {"inner": inner, "logs": logs, "total": model._sum(logs)}

    def _deltas(self, params, sigma, cache, sites, new_values, mask):
        """Image by image through the inner path: (n_e,) log ψ(eσ′) − log ψ(eσ)."""
        img_sites, img_values = self.model._image_moves(sites, new_values, mask)
        configs = self.model.images(sigma)
        return jax.vmap(self.inner.log_ratio, in_axes=(None, 0, 0, 0, 0, None))(
            self._split(params)[1], configs, cache["inner"], img_sites, img_values, mask
        ).astype(jnp.complex128)

    def _path_ratio(self, fast, sigma, cache, sites, new_values, mask):
        """Through the image path: ψ_P(σ′)/ψ_P(σ) = Σ_e w_e ψ(eσ′)/ψ(eσ) with w_e = c_e ψ(eσ)/ψ_P(σ) cached."""
        m, e = self.images.ratios(fast, sigma, cache["inner"], sites, new_values, mask)
        top = jnp.max(e)
        r = m * power_of_two(e - top, jnp.real(m).dtype)  # ψ(eσ′)/ψ(eσ) / 2^top
        return r, jnp.sum(cache["w"] * r), top

    def _path_log_ratio(self, fast, sigma, cache, sites, new_values, mask):
        _, total, top = self._path_ratio(fast, sigma, cache, sites, new_values, mask)
        return jnp.log(total) + top * jnp.log(2.0)

    def log_ratio(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        if self.images is not None:
            return self._path_log_ratio(self._split(params)[1], sigma, cache, sites, new_values, mask)
        d = self._deltas(params, sigma, cache, sites, new_values, mask)
        return self.model._sum(cache["logs"] + d) - cache["total"]

    def log_ratios(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        """C moves at once: the image path move by move, or the inner path's batched ``log_ratios``
        image by image."""
        fast = self._split(params)[1]
        if self.images is not None:
            return jax.vmap(lambda s, v, m: self._path_log_ratio(fast, sigma, cache, s, v, m))(sites, new_values, mask)
        img_sites, img_values = jax.vmap(self.model._image_moves)(sites, new_values, mask)  # (C, n_e, k)
        configs = self.model.images(sigma)
        d = jax.vmap(self.inner.log_ratios, in_axes=(None, 0, 0, 1, 1, None))(
            fast, configs, cache["inner"], img_sites, img_values, mask
        ).astype(jnp.complex128)  # (n_e, C)
        return jax.vmap(self.model._sum, in_axes=1)(cache["logs"][:, None] + d) - cache["total"]

    def update(
        self, params: Any, sigma: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        fast = self._split(params)[1]
        if self.images is not None:
            r, total, top = self._path_ratio(fast, sigma, cache, sites, new_values, mask)
            inner = self.images.update(fast, sigma, cache["inner"], sites, new_values, mask)
            return {
                "inner": inner,
                "w": cache["w"] * r / total,
                "total": cache["total"] + jnp.log(total) + top * jnp.log(2.0),
            }
        d = self._deltas(params, sigma, cache, sites, new_values, mask)
        img_sites, img_values = self.model._image_moves(sites, new_values, mask)
        inner = jax.vmap(self.inner.update, in_axes=(None, 0, 0, 0, 0, None))(
            fast, self.model.images(sigma), cache["inner"], img_sites, img_values, mask
        )
        logs = cache["logs"] + d
        return {"inner": inner, "logs": logs, "total": self.model._sum(logs)}


def _inversion_parity(seq: jax.Array) -> jax.Array:
    """Parity (0/1) of the number of inversions of the integer sequence ``seq`` (..., n)."""
    a, b = seq[..., :, None], seq[..., None, :]
    upper = jnp.triu(jnp.ones((seq.shape[-1], seq.shape[-1]), bool), 1)
    return jnp.sum((a > b) & upper, axis=(-2, -1)) % 2


@dataclass(frozen=True, eq=False)
class FermionProjected(_ImageSum):
    """Projection of a fermion state (occupations x of 2L orbitals, ↑ block then ↓ block) onto a sector of
    orbital permutations — lattice operations acting on both spin species, and the ↑↔↓ exchange:

        ψ_P(x) = Σ_e χ_e s_e(x) ψ(e x),      (e x)_{π_e(p)} = x_p,

    where ``U_e c†_p U_e† = c†_{π_e(p)}`` and ``U_e|x⟩ = s_e(x)|e x⟩``: ``s_e(x)`` is the sign of sorting the
    occupied orbitals' images ``π_e(p₁ < p₂ < …)`` (the canonical order of :mod:`nqs.conventions`), i.e. the
    fermion reordering that the spin :class:`Projected` does not have.  For a 1D character the result obeys
    ``U_h ψ_P = χ_h* ψ_P``.  ``perms`` (n_e, 2L) must be closed under composition for that (a group).

    Fast path: image by image through the inner model's caches (as :class:`Projected` without an image
    path); a move of orbital p moves orbital π_e(p) in image e, and the sign change s_e(x′)/s_e(x) is
    recounted (O(n_e·N²) comparisons for N electrons).
    """

    model: Model
    perms: Any
    characters: Any
    n_electrons: int

    def __post_init__(self) -> None:
        perms = np.asarray(self.perms, dtype=np.int64)
        n_orb = 2 * self.model.n_sites
        if perms.ndim != 2 or perms.shape[1] != n_orb:
            raise ValueError(f"orbital permutations must have shape (n_e, {n_orb}), got {perms.shape}")
        if not all(np.array_equal(np.sort(p), np.arange(n_orb)) for p in perms):
            raise ValueError("every row of perms must be a permutation of the orbitals")
        chi = np.asarray(self.characters, dtype=complex).reshape(-1)
        if chi.shape != (len(perms),):
            raise ValueError(f"characters must have shape ({len(perms)},), got {chi.shape}")
        inv = np.empty_like(perms)
        inv[np.arange(len(perms))[:, None], perms] = np.arange(n_orb)[None, :]
        object.__setattr__(self, "_perms", perms)
        object.__setattr__(self, "_inverse", inv)
        object.__setattr__(self, "_weights", chi)

    @property
    def n_terms(self) -> int:
        return len(self._perms)

    def images(self, x: jax.Array) -> jax.Array:
        """The configurations ``e x`` (n_e, 2L)."""
        return x[jnp.asarray(self._inverse, dtype=jnp.int32)]

    def _parities(self, x: jax.Array) -> jax.Array:
        """(n_e,) 0/1: s_e(x) = (−1)^parity."""
        occ = jnp.nonzero(x, size=self.n_electrons, fill_value=0)[0]
        return _inversion_parity(jnp.asarray(self._perms, dtype=jnp.int32)[:, occ])

    def _image_logs(self, params, x):
        logs = jax.vmap(self.model.log_psi, in_axes=(None, 0))(params, self.images(x)).astype(jnp.complex128)
        return logs + 1j * jnp.pi * self._parities(x)

    def log_psi(self, params: Any, x: jax.Array) -> jax.Array:
        return self._sum(self._image_logs(params, x))

    def _image_moves(self, sites, new_values, mask):
        n = 2 * self.n_sites
        padded = jnp.concatenate(
            [jnp.asarray(self._perms, jnp.int32), jnp.full((len(self._perms), 1), n, jnp.int32)], axis=1
        )
        img_sites = jnp.take(padded, jnp.where(mask, sites, n), axis=1)  # (n_e, k)
        return img_sites, jnp.broadcast_to(new_values, img_sites.shape)

    def _sign_change(self, x, sites, new_values, mask):
        new = x.at[jnp.where(mask, sites, 2 * self.n_sites)].set(new_values, mode="drop")
        return 1j * jnp.pi * ((self._parities(new) - self._parities(x)) % 2)

    def make_fast_path(self) -> FastPath:
        return _FermionProjectedPath(self, fast_path(self.model))

    def describe(self) -> str:
        return f"{self.model.describe()} projected on {len(self._perms)} orbital permutations (fermion signs)"


@dataclass(frozen=True, eq=False)
class _FermionProjectedPath(_ImageSumPath):
    """:class:`FermionProjected`'s path: image by image through the inner path, with the reordering signs."""

    def prepare(self, params: Any) -> Any:
        return _ProjectedPrepared(params, self.inner.prepare(params))

    def cache(self, params: Any, x: jax.Array) -> Any:
        raw, fast = self._split(params)
        inner = jax.vmap(self.inner.cache, in_axes=(None, 0))(fast, self.model.images(x))
        logs = self.model._image_logs(raw, x)
        return {"inner": inner, "logs": logs, "total": self.model._sum(logs)}

    def _deltas(self, fast, x, cache, sites, new_values, mask):
        img_sites, img_values = self.model._image_moves(sites, new_values, mask)
        d = jax.vmap(self.inner.log_ratio, in_axes=(None, 0, 0, 0, 0, None))(
            fast, self.model.images(x), cache["inner"], img_sites, img_values, mask
        ).astype(jnp.complex128)
        return d + self.model._sign_change(x, sites, new_values, mask)

    def log_ratio(
        self, params: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        d = self._deltas(self._split(params)[1], x, cache, sites, new_values, mask)
        return self.model._sum(cache["logs"] + d) - cache["total"]

    def log_ratios(
        self, params: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> jax.Array:
        model = self.model
        fast = self._split(params)[1]
        img_sites, img_values = jax.vmap(model._image_moves)(sites, new_values, mask)  # (C, n_e, k)
        d = jax.vmap(self.inner.log_ratios, in_axes=(None, 0, 0, 1, 1, None))(
            fast, model.images(x), cache["inner"], img_sites, img_values, mask
        ).astype(jnp.complex128)  # (n_e, C)
        d = d + jax.vmap(model._sign_change, in_axes=(None, 0, 0, 0))(x, sites, new_values, mask).T
        return jax.vmap(model._sum, in_axes=1)(cache["logs"][:, None] + d) - cache["total"]

    def update(
        self, params: Any, x: jax.Array, cache: Any, sites: jax.Array, new_values: jax.Array, mask: jax.Array
    ) -> Any:
        model = self.model
        fast = self._split(params)[1]
        d = self._deltas(fast, x, cache, sites, new_values, mask)
        img_sites, img_values = model._image_moves(sites, new_values, mask)
        inner = jax.vmap(self.inner.update, in_axes=(None, 0, 0, 0, 0, None))(
            fast, model.images(x), cache["inner"], img_sites, img_values, mask
        )
        logs = cache["logs"] + d
        return {"inner": inner, "logs": logs, "total": model._sum(logs)}
