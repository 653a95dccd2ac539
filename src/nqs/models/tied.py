"""Parameter sharing over a symmetry group: a model whose parameters are tied so that the state is invariant.

``Tied(inner, index)`` keeps one free value per *orbit* of each parameter array of ``inner`` and
expands them before every call: ``full_leaf = reduced_leaf[index_leaf]``.  Gradients with respect to
the free values are sums over their orbits (``jax.grad`` through the gather), so SR and every
estimator work unchanged on the smaller parameter set; the fast path (caches, ratios) is the inner
model's, on the expanded parameters.

:func:`translation_tying` builds the orbits for the RBM, the pair product and their products under a
group of site permutations (e.g. the lattice translations):

* pair function, charge Jastrow: ``F[g i, g j] = F[i, j]`` (for translations ``F_ij = f(r_i − r_j)``);
* RBM: hidden units come in ``M / |G|`` filters of ``|G|`` units, unit ``(f, h)`` (index ``f·|G| + h``);
  ``W[g p, (f, g h)] = W[p, (f, h)]``, ``a[g p] = a[p]``, ``b[(f, g h)] = b[(f, h)]``.  Then the angles
  of a translated configuration are the angles of the original one, permuted, and ψ is invariant;
* RBM on the 2L occupations of electrons: the permutation acts on the site of each spin species.

With characters all 1 the tied state is invariant: ``ψ(gσ) = ψ(σ)`` for spins; for electrons the
pair product with ``F[gi, gj] = F[i, j]`` is invariant as a fermion state (the re-sorting of the
rows and columns of ``det f[R↑, R↓]`` gives exactly the fermion reordering sign), i.e. momentum 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .base import Model, Reparametrized

__all__ = ["Signed", "Tied", "antiperiodic_signs", "orbits", "signed_orbits", "translation_tying"]


def orbits(shape: tuple[int, ...], generators: list[np.ndarray]) -> np.ndarray:
    """Orbit labels (int array of ``shape``, labels 0..n−1 in order of first appearance) of the flat
    index maps ``generators`` (each an int array of ``prod(shape)`` entries: flat index → image)."""
    n = int(np.prod(shape)) if len(shape) else 1
    if not generators:
        return np.arange(n, dtype=np.int64).reshape(shape)
    src = np.concatenate([np.arange(n)] * len(generators))
    dst = np.concatenate([np.asarray(g, dtype=np.int64).reshape(-1) for g in generators])
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="weak")
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)  # relabel by first appearance (stable, readable)
    relabel = np.empty_like(order)
    relabel[order] = np.arange(len(order))
    return relabel[labels].reshape(shape).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Signed:
    """Orbit labels with signs: the full leaf is ``signs · reduced[labels]`` (a pytree leaf)."""

    labels: np.ndarray
    signs: np.ndarray


def _labels(idx) -> np.ndarray:
    return np.asarray(idx.labels if isinstance(idx, Signed) else idx)


def signed_orbits(
    shape: tuple[int, ...], generators: list[np.ndarray], signs: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Orbits of flat index maps with signs: ``x[g(k)] = s_g(k) x[k]``.  Returns ``(labels, sign)``
    (arrays of ``shape``): ``x = sign · r[labels]``; an orbit that would have to equal its own
    negative is zero (``sign`` 0 there)."""
    n = int(np.prod(shape))
    nbr: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for g, sg in zip(generators, signs, strict=True):
        g, sg = np.asarray(g).reshape(-1), np.asarray(sg).reshape(-1)
        for k in range(n):
            nbr[k].append((int(g[k]), int(sg[k])))
            nbr[int(g[k])].append((k, int(sg[k])))
    labels, sign = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    n_orbits = 0
    for start in range(n):
        if labels[start] >= 0:
            continue
        labels[start], sign[start] = n_orbits, 1
        stack, members, consistent = [start], [start], True
        while stack:
            k = stack.pop()
            for j, s in nbr[k]:
                if labels[j] < 0:
                    labels[j], sign[j] = n_orbits, sign[k] * s
                    stack.append(j)
                    members.append(j)
                elif sign[j] != sign[k] * s:
                    consistent = False
        if not consistent:
            sign[members] = 0
        n_orbits += 1
    return labels.reshape(shape), sign.reshape(shape)


def antiperiodic_signs(lattice: Any, group: Any, direction: int = 0) -> np.ndarray:
    """``u[g, i] = −1`` where translation ``g`` carries site ``i`` across the boundary of ``direction``
    (int (n_g, n_sites)): the gauge of a pair function built on a k grid antiperiodic along it,
    ``f(g i, g j) = u[g, i] u[g, j] f(i, j)``."""
    cells = np.asarray(lattice.cells)
    L = int(lattice.size[direction])
    shift = np.mod(cells[np.asarray(group.perms)[:, 0], direction] - cells[0, direction], L)  # (n_g,)
    wraps = cells[None, :, direction] + shift[:, None] >= L
    return np.where(wraps, -1, 1)


def _pair_maps(perms: np.ndarray, symmetric: bool = False) -> list[np.ndarray]:
    n = perms.shape[1]
    maps = [(p[:, None] * n + p[None, :]).reshape(-1) for p in perms]
    if symmetric:  # F[j, i] = F[i, j]
        maps.append((np.arange(n)[None, :] * n + np.arange(n)[:, None]).reshape(-1))
    return maps


def _visible_perm(p: np.ndarray, n_visible: int) -> np.ndarray:
    """The site permutation on ``n_visible`` units: the sites themselves or (2L) both spin species."""
    n = len(p)
    if n_visible == n:
        return p
    if n_visible == 2 * n:
        return np.concatenate([p, p + n])
    raise ValueError(f"an RBM on {n_visible} visible units cannot be tied to permutations of {n} sites")


def _rbm_index(params: dict, perms: np.ndarray, table: np.ndarray) -> dict:
    n_vis, m = params["W"].shape
    n_g = len(perms)
    if m % n_g:
        raise ValueError(
            f"tying the RBM to {n_g} symmetry operations needs a multiple of {n_g} hidden units, "
            f"got {m} (choose alpha so that alpha x visible units is a multiple of {n_g})"
        )
    n_f = m // n_g
    hidden = [(np.arange(n_f)[:, None] * n_g + table[g][None, :]).reshape(-1) for g in range(n_g)]
    vis = [_visible_perm(p, n_vis) for p in perms]
    w_maps = [(v[:, None] * m + h[None, :]).reshape(-1) for v, h in zip(vis, hidden, strict=True)]
    return {"a": orbits((n_vis,), vis), "b": orbits((m,), hidden), "W": orbits((n_vis, m), w_maps)}


def _pp_index(params: dict, perms: np.ndarray, pair_signs: np.ndarray | None = None, symmetric: bool = False) -> dict:
    out = {}
    for name, leaf in params.items():
        if name == "F" and pair_signs is not None:
            if symmetric:
                raise ValueError("a symmetric pair function with gauge signs is not available")
            signs = [(u[:, None] * u[None, :]).reshape(-1) for u in pair_signs]
            out[name] = Signed(*signed_orbits(tuple(leaf.shape), _pair_maps(perms), signs))
        elif name in ("F", "v"):
            out[name] = orbits(tuple(leaf.shape), _pair_maps(perms, symmetric and name == "F"))
        elif np.ndim(leaf) == 0 or name == "dh":  # translation-invariant already: each entry free
            out[name] = orbits(tuple(np.shape(leaf)), [])
        else:
            raise ValueError(f"no tying rule for pair-product parameter '{name}'")
    return out


def translation_tying(
    params: dict, group: Any, rbm_group: Any = None, pair_signs: np.ndarray | None = None, symmetric_pairs: bool = False
) -> dict:
    """Orbit indices for the parameters ``params`` of an RBM (``{"a", "b", "W"}``), a pair product
    (``{"F"(, "g", "v")}``) or their product (``{"rbm": ..., "pp": ...}``) under ``group`` (a
    :class:`~nqs.lattice.SymmetryGroup`); ``rbm_group`` (default ``group``) for the RBM part
    (e.g. the space group while the pair function keeps translations only).  ``pair_signs``
    (n_g, n_sites) of ±1 (:func:`antiperiodic_signs`): the pair function is tied as
    ``F[g i, g j] = u[g, i] u[g, j] F[i, j]`` (its leaf of the result is ``(labels, signs)``).
    ``symmetric_pairs``: also ``F[j, i] = F[i, j]`` (a singlet pair function)."""
    rbm_group = group if rbm_group is None else rbm_group

    def rbm(p):
        return _rbm_index(p, np.asarray(rbm_group.perms), rbm_group.product_table())

    if "W" in params:
        return rbm(params)
    if "F" in params:
        return _pp_index(params, np.asarray(group.perms), pair_signs, symmetric_pairs)
    out = {}
    for name, sub in params.items():
        if name == "rbm":
            out[name] = rbm(sub)
        elif name == "pp":
            out[name] = _pp_index(sub, np.asarray(group.perms), pair_signs, symmetric_pairs)
        else:
            raise ValueError(f"no tying rule for parameters '{name}'")
    return out


@dataclass(frozen=True, eq=False)
class Tied(Reparametrized):
    """``inner`` with parameters shared over orbits: ``index`` is a pytree like ``inner``'s parameters
    of int arrays (orbit labels 0..n−1 per leaf).  Free parameters: one 1-D array per leaf."""

    inner: Model
    index: Any
    label: str = "tied"

    def expand(self, params: Any) -> Any:
        """The inner model's full parameters (``to_inner``)."""

        def one(r, idx):
            full = r[jnp.asarray(_labels(idx))]
            return full * jnp.asarray(idx.signs, dtype=full.real.dtype) if isinstance(idx, Signed) else full

        return jax.tree_util.tree_map(one, params, self.index)

    def reduce(self, full: Any) -> Any:
        """Free parameters from full ones: the (signed) mean over each orbit (exact for tied parameters)."""

        def one(leaf, idx):
            labels = _labels(idx).reshape(-1)
            n = int(labels.max()) + 1 if labels.size else 0
            flat = jnp.reshape(leaf, (-1,))
            if isinstance(idx, Signed):
                sg = np.asarray(idx.signs).reshape(-1)
                flat = flat * jnp.asarray(sg, dtype=flat.real.dtype)
                counts = np.maximum(np.bincount(labels, weights=np.abs(sg), minlength=n), 1)
            else:
                counts = np.bincount(labels, minlength=n)
            return jax.ops.segment_sum(flat, jnp.asarray(labels), num_segments=n) / counts

        return jax.tree_util.tree_map(one, full, self.index)

    def init(self, key: jax.Array) -> Any:
        return self.reduce(self.inner.init(key))

    def to_inner(self, params: Any) -> Any:
        return self.expand(params)

    def describe(self) -> str:
        return f"{self.inner.describe()}, parameters {self.label}"
