"""Many devices, many processes: the chains sharded over a 1-D device mesh, processes joined by jax.distributed.

One VMC runs on every device of every process with the *same* jitted step; nothing in the
step knows how many devices there are:

* the Markov chains (the sampler state's chain axis, and the samples, E_loc and O rows derived
  from them) are split over a 1-D :class:`jax.sharding.Mesh` with axis :data:`AXIS`;
  parameters, optimizer state, the PRNG key and counters are replicated;
* ``jax.jit`` propagates the shardings (``in_shardings`` / ``out_shardings`` plus a few
  ``with_sharding_constraint``), so means, the S matrix and MinSR's sample-space matrix are
  exact all-reduces / all-gathers, not approximations;
* random numbers are drawn from the global key for the global shapes, exactly as on one
  device (JAX's values never depend on the sharding), so a run on D devices equals the run on
  one device to rounding (only the order of summation differs).

Several processes (one per GPU node, or per GPU) join with :func:`initialize` before anything
else touches JAX; :func:`chain_mesh` then spans the devices of all processes.  Every process runs
the same program on the same seed: the initial state is computed on each process (it is small)
and each process keeps only its own devices' shards (:func:`put`).  On the CPU the cross-process
collectives use gloo (``jax_cpu_collectives_implementation``, the default in recent jaxlib).

Environment (read by :func:`initialize` when an argument is not given): ``NQS_COORDINATOR``
(``host:port`` of process 0), ``NQS_NUM_PROCESSES``, ``NQS_PROCESS_ID``, ``NQS_LOCAL_DEVICE_IDS``
(comma-separated, optional).  With none of these set, :func:`initialize` leaves JAX alone on
clusters it cannot detect and otherwise lets ``jax.distributed`` auto-detect (SLURM, Open MPI, …).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Name of the mesh axis over which the chains (and samples) are split.
AXIS = "chains"

_initialized = False


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return None if v in (None, "") else int(v)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
    auto: bool = False,
) -> bool:
    """Join this process to a multi-process run (``jax.distributed.initialize``); call before any JAX work.

    Arguments left ``None`` come from ``NQS_COORDINATOR``, ``NQS_NUM_PROCESSES``, ``NQS_PROCESS_ID``
    and ``NQS_LOCAL_DEVICE_IDS``.  With one process (or nothing configured and ``auto`` False) this
    is a no-op.  ``auto=True`` with nothing configured lets JAX detect a cluster (SLURM, MPI, TPU pods).
    Idempotent.  Returns True when the process is part of a multi-process run.
    """
    global _initialized
    if _initialized:
        return jax.process_count() > 1
    coordinator_address = coordinator_address or os.environ.get("NQS_COORDINATOR") or None
    num_processes = num_processes if num_processes is not None else _env_int("NQS_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("NQS_PROCESS_ID")
    if local_device_ids is None and os.environ.get("NQS_LOCAL_DEVICE_IDS"):
        local_device_ids = [int(x) for x in os.environ["NQS_LOCAL_DEVICE_IDS"].split(",")]
    configured = coordinator_address is not None or num_processes is not None or process_id is not None
    if not configured and not auto:
        return False
    if num_processes == 1:
        return False
    if configured and (coordinator_address is None or num_processes is None or process_id is None):
        raise ValueError(
            "parallel.initialize: give coordinator address, number of processes and process id "
            "together (or NQS_COORDINATOR, NQS_NUM_PROCESSES, NQS_PROCESS_ID)"
        )
    if configured and not 0 <= process_id < num_processes:
        raise ValueError(f"parallel.initialize: process id {process_id} is not in [0, {num_processes})")
    jax.distributed.initialize(coordinator_address, num_processes, process_id, local_device_ids)
    _initialized = True
    return jax.process_count() > 1


def shutdown() -> None:
    """Leave the multi-process run (at program end; optional)."""
    global _initialized
    if _initialized:
        jax.distributed.shutdown()
        _initialized = False


def chain_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh with axis :data:`AXIS` over ``devices`` (default: every device of every process)."""
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise ValueError("chain_mesh: no devices")
    return Mesh(np.array(devs, dtype=object), (AXIS,))


def mesh_for(shard: bool) -> Mesh | None:
    """The chain mesh over every device when ``shard`` and there are several devices; None otherwise (the
    drivers then run on the default device)."""
    return chain_mesh() if shard and jax.device_count() > 1 else None


def n_shards(mesh: Mesh | None) -> int:
    """Number of devices the chain axis is split over (1 without a mesh)."""
    return 1 if mesh is None else int(mesh.devices.size)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def sharded(mesh: Mesh, axis: int = 0) -> NamedSharding:
    """Split array axis ``axis`` over the mesh; the other axes are replicated."""
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), AXIS))


def constrain_rows(x, mesh: Mesh | None, axis: int = 0):
    """``with_sharding_constraint`` splitting axis ``axis`` of every leaf of ``x`` over ``mesh``
    (leaves whose length there does not divide evenly are left to the compiler)."""
    if mesh is None or n_shards(mesh) == 1:
        return x

    def one(a):
        if a.ndim <= axis or a.shape[axis] % n_shards(mesh):
            return a
        return jax.lax.with_sharding_constraint(a, sharded(mesh, axis))

    return jax.tree_util.tree_map(one, x)


def _same_sharding(x, sharding) -> bool:
    return isinstance(x, jax.Array) and (x.sharding == sharding or x.sharding.is_equivalent_to(sharding, x.ndim))


def put(tree, shardings):
    """Place ``tree`` with ``shardings`` (a matching tree or a prefix of it) as global arrays.

    Multi-process: every process passes the same (host-identical) values; each keeps only the
    shards of its own devices.  Leaves already placed with the target sharding are kept as they are.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    shard_leaves = _broadcast_prefix(shardings, tree)

    def one(x, s):
        if _same_sharding(x, s):
            return x
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.jit(lambda a: a, out_shardings=s)(x)  # reshard a global array collectively
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, s, lambda idx: host[idx])

    return jax.tree_util.tree_unflatten(treedef, [one(x, s) for x, s in zip(leaves, shard_leaves, strict=True)])


def _broadcast_prefix(prefix, tree) -> list:
    """The leaves of ``prefix`` repeated over the matching subtrees of ``tree``, flattened like ``tree``."""
    out: list = []

    def is_leaf(x):
        return isinstance(x, jax.sharding.Sharding)

    jax.tree_util.tree_map(
        lambda s, sub: out.extend([s] * len(jax.tree_util.tree_leaves(sub))), prefix, tree, is_leaf=is_leaf
    )
    return out


def to_host(x) -> np.ndarray:
    """``np.asarray`` of a (possibly multi-process) array: shards of other processes are gathered."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def is_main_process() -> bool:
    """True on process 0 (the one that should write files and print)."""
    return jax.process_index() == 0
