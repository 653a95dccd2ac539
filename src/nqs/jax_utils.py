"""Small JAX helpers: chunked vmap, parameter flattening by kind (holomorphic / real)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def chunked_vmap(fn, xs, chunk_size: int | None, mesh=None):
    """``vmap(fn)(xs)`` evaluated ``chunk_size`` rows at a time (all rows at once when None).

    ``xs`` is a pytree whose leaves share the leading axis.  Peak memory scales with
    ``chunk_size`` instead of the batch size; results are identical.

    With a device ``mesh`` (:mod:`nqs.parallel`) whose devices split the rows evenly, the rows are
    chunked *per device*: each device evaluates ``chunk_size`` of its own rows per step (the loop
    runs over chunks, never over the sharded axis, so no rows move between devices).
    """
    if chunk_size is None:
        return jax.vmap(fn)(xs)
    from .parallel import AXIS, n_shards

    d = n_shards(mesh)
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if d == 1 or n % d:
        return jax.lax.map(fn, xs, batch_size=int(chunk_size))
    from jax.sharding import NamedSharding, PartitionSpec

    m = n // d
    c = max(1, min(int(chunk_size), m))
    k, r = divmod(m, c)
    fn2 = jax.vmap(jax.vmap(fn))
    split = NamedSharding(mesh, PartitionSpec(None, AXIS))
    x = jax.tree_util.tree_map(lambda a: a.reshape(d, m, *a.shape[1:]), xs)
    main = jax.tree_util.tree_map(
        lambda a: jax.lax.with_sharding_constraint(
            jnp.swapaxes(a[:, : k * c].reshape(d, k, c, *a.shape[2:]), 0, 1), split
        ),
        x,
    )
    out = jax.lax.map(fn2, main)  # (k, d, c, ...): step j evaluates chunk j of every device
    out = jax.tree_util.tree_map(lambda o: jnp.swapaxes(o, 0, 1).reshape(d, k * c, *o.shape[3:]), out)
    if r:
        rest = fn2(jax.tree_util.tree_map(lambda a: a[:, k * c :], x))
        out = jax.tree_util.tree_map(lambda o, t: jnp.concatenate([o, t], axis=1), out, rest)
    return jax.tree_util.tree_map(lambda o: o.reshape(n, *o.shape[2:]), out)


def param_mode(model, params) -> str:
    """``"holomorphic"`` (all leaves complex, model holomorphic), ``"real"`` or ``"mixed"``."""
    leaves = jax.tree_util.tree_leaves(params)
    cplx = [jnp.iscomplexobj(x) for x in leaves]
    if all(cplx) and model.holomorphic:
        return "holomorphic"
    if not any(cplx):
        return "real"
    return "mixed"


def tree_all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in leaves]))
