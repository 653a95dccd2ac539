"""Explicit runtime settings for JAX on the CPU: :func:`configure_cpu` is what the CLI, the tests and the
benchmarks call before their first JAX computation.  Importing nqs sets nothing.

What :func:`configure_cpu` sets, and why (the measurements are on the benchmarks page, "CPU runtime"):

* ``PJRT_NPROC`` ≥ :data:`MIN_CPU_THREADS` (unless set): XLA's CPU thread pool.  jaxlib runs batched LAPACK
  kernels (the LU behind ``slogdet``/``solve``) by splitting the batch over that pool and blocking a worker
  until the pieces finish; with as many such kernels as threads, every worker waits and a step never
  finishes (the RBM × pair-product step on 2 cores).  Spare threads sleep and remove the deadlock.
* ``XLA_FLAGS`` gains :data:`YNN_OFF` on jaxlib 0.10.x (XLA's YNNPACK fusions made the local energies'
  reductions and the SR Cholesky slower) unless a ``ynn_fusion_type`` is there, and :data:`SMALL_LOOPS`
  unless the user passes ``xla_backend_extra_options``: while loops touching less than
  :data:`SMALL_LOOP_BYTES` compile into one kernel, so the Markov chains' loop is not dispatched op by op.
  Nothing is added with ``NQS_KEEP_XLA_FLAGS`` set.
* ``OPENBLAS_THREAD_TIMEOUT`` = :data:`OPENBLAS_SPIN` (unless set): OpenBLAS threads (scipy's, used by
  jaxlib's LAPACK kernels) otherwise spin about 0.1 s after each call, holding the cores the next step's
  chains want.
* ``jax_enable_x64``: float64/complex128, nqs's default precision (:mod:`nqs.conventions`).

The environment variables take effect only if they are set before they are read: XLA's when JAX starts its
CPU backend, OpenBLAS's when the library is loaded (importing scipy, which nqs's modules do).  Call
:func:`configure_cpu` first thing, before importing JAX, scipy or nqs's submodules.
"""

from __future__ import annotations

import os

#: Smallest size nqs gives XLA's CPU thread pool (``PJRT_NPROC``).
MIN_CPU_THREADS = 8
#: XLA flag that turns off the YNNPACK fusions of XLA's CPU backend (jaxlib 0.10).
YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type="
#: Bytes a while loop may touch for XLA's CPU backend to compile it into one kernel (its default is 1 kB).
SMALL_LOOP_BYTES = 10_000_000
SMALL_LOOPS = f"--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"
#: Cycles (as a power of 2) an idle OpenBLAS thread spins before it sleeps (OpenBLAS's default is 28).
OPENBLAS_SPIN = 16


def guard_cpu_thread_pool() -> None:
    """Give XLA's CPU pool at least :data:`MIN_CPU_THREADS` threads unless ``PJRT_NPROC`` is set."""
    if not os.environ.get("PJRT_NPROC"):
        os.environ["PJRT_NPROC"] = str(max(os.cpu_count() or 1, MIN_CPU_THREADS))


def tune_xla_cpu() -> None:
    """Append :data:`YNN_OFF` (jaxlib 0.10.x only: an unknown flag aborts XLA) and :data:`SMALL_LOOPS` to
    ``XLA_FLAGS`` where the user has not set those options; nothing with ``NQS_KEEP_XLA_FLAGS`` set."""
    from importlib.metadata import PackageNotFoundError, version

    flags = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("NQS_KEEP_XLA_FLAGS"):
        return
    add = []
    if "ynn_fusion_type" not in flags:
        try:
            major_minor = tuple(int(x) for x in version("jaxlib").split(".")[:2])
        except (PackageNotFoundError, ValueError):
            major_minor = None
        if major_minor == (0, 10):
            add.append(YNN_OFF)
    if "xla_backend_extra_options" not in flags:
        add.append(SMALL_LOOPS)
    if add:
        os.environ["XLA_FLAGS"] = " ".join([flags, *add]).strip()


def tune_openblas() -> None:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` to :data:`OPENBLAS_SPIN` unless it is set."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(OPENBLAS_SPIN))


def enable_x64() -> None:
    """Switch JAX to float64/complex128 (nqs's default precision on the CPU)."""
    import jax

    jax.config.update("jax_enable_x64", True)


def configure_cpu(x64: bool = True) -> None:
    """All of the above (see the module docstring): the thread pool, the XLA flags, OpenBLAS's spin and, with
    ``x64``, float64.  Call it before the first JAX computation of the process."""
    guard_cpu_thread_pool()
    tune_xla_cpu()
    tune_openblas()
    if x64:
        enable_x64()
