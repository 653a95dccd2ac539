"""Small JAX helpers: chunked vmap, parameter flattening by kind (holomorphic / real)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def chunked_vmap(fn, xs, chunk_size: int | None):
    """``vmap(fn)(xs)`` evaluated ``chunk_size`` rows at a time (all rows at once when None).

    ``xs`` is a pytree whose leaves share the leading axis.  Peak memory scales with
    ``chunk_size`` instead of the batch size; results are identical.
    """
    if chunk_size is None:
        return jax.vmap(fn)(xs)
    return jax.lax.map(fn, xs, batch_size=int(chunk_size))


def param_mode(model, params) -> str:
    """``"holomorphic"`` (all leaves complex, model holomorphic), ``"real"`` or ``"mixed"``."""
    leaves = jax.tree_util.tree_leaves(params)
    cplx = [jnp.iscomplexobj(x) for x in leaves]
    if all(cplx) and getattr(model, "holomorphic", False):
        return "holomorphic"
    if not any(cplx):
        return "real"
    return "mixed"


def tree_all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in leaves]))
