"""nqs — neural-network quantum states (Boltzmann machines) by variational Monte Carlo in JAX.

Layers (a lower layer never imports a higher one):
``lattice → hilbert → operators/hamiltonians → models → sampling → estimators → sr/vmc → io/cli``.
Conventions (units, signs, encodings) are stated once in :mod:`nqs.conventions`.
"""

__version__ = "0.1.0"


#: Smallest size nqs gives XLA's CPU thread pool (environment variable ``PJRT_NPROC``).  jaxlib
#: >= 0.10 runs batched LAPACK kernels (LU behind ``slogdet``/``det``/``solve``) by splitting the
#: batch over that same pool and blocking a worker until the pieces finish; when as many such
#: kernels run at once as the pool has threads, every worker waits and the step never finishes
#: (seen on 2 cores: the RBM+PP J1-J2 step at 1024 samples hung in ``block_until_ready``, all
#: threads parked in ``jax::ParallelBatchMap``).  A few spare threads cost nothing measurable
#: (idle threads sleep) and remove the deadlock.
MIN_CPU_THREADS = 8


def guard_cpu_thread_pool() -> None:
    """Give XLA's CPU pool at least :data:`MIN_CPU_THREADS` threads unless ``PJRT_NPROC`` is set.

    Runs when :mod:`nqs` is imported; it only takes effect if JAX has not yet created its CPU
    backend (import nqs before the first JAX computation, as the CLI and the tests do)."""
    import os

    if not os.environ.get("PJRT_NPROC"):
        os.environ["PJRT_NPROC"] = str(max(os.cpu_count() or 1, MIN_CPU_THREADS))


guard_cpu_thread_pool()

#: XLA flag that turns off the YNNPACK fusions of XLA's CPU backend (jaxlib 0.10).  Measured on 2 cores
#: (``benchmarks/speed.py``, chain L = 64 / 128): 0.091 → 0.076 and 0.208 → 0.176 s per VMC step; the
#: local energies' reductions and the MinSR Cholesky right after the Gram products were the slow
#: parts with them on; electron models were unchanged.
YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type="


#: Bytes a while loop may touch for XLA's CPU backend to compile it into one kernel (its
#: ``xla_cpu_small_while_loop_byte_threshold``, 1 kB by default); bigger loops run op by op, each op a
#: separate dispatch.  The Markov chains' loop does ~15 small ops per Metropolis step, so the dispatches
#: were most of a step: with 10 MB the loop is one kernel up to chain L ≈ 256 / 16 × 16.  Measured on 2
#: cores (a VMC step, RBM α = 1, SR, medians of two A/B pairs): chain 64 0.080 → 0.066 s, square 8×8
#: 0.095 → 0.081 s, chain 128 0.162 → 0.155 s, the same energies.  Loops touching more (an SR solve by
#: conjugate gradients on large matrices) keep their multi-threaded ops.
SMALL_LOOP_BYTES = 10_000_000
SMALL_LOOPS = f"--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"


def tune_xla_cpu() -> None:
    """Append to ``XLA_FLAGS``: :data:`YNN_OFF` on jaxlib 0.10.x (an unknown flag would abort XLA, hence the
    version check) unless a ``ynn_fusion_type`` is there, and :data:`SMALL_LOOPS` unless the user passes
    ``xla_backend_extra_options`` of their own.  Nothing with ``NQS_KEEP_XLA_FLAGS`` set.

    Like :func:`guard_cpu_thread_pool` it runs at import and acts only before JAX's CPU backend starts."""
    import os
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


tune_xla_cpu()

#: Cycles (as a power of 2) an idle OpenBLAS thread spins before it sleeps (``OPENBLAS_THREAD_TIMEOUT``;
#: OpenBLAS's default 28 is ≈ 0.1 s).  jaxlib's LAPACK kernels (the Cholesky of the SR solve) run on
#: scipy's OpenBLAS, whose threads then spin on the cores for a tenth of a second after every call, just
#: when the next step's Markov chains want them.  Measured on 2 cores (chain L = 64, RBM, SR): a VMC step
#: 0.101 → 0.091 s on one sampling thread and 0.111 → 0.072 s on two; the Cholesky itself unchanged.
OPENBLAS_SPIN = 16


def tune_openblas() -> None:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` to :data:`OPENBLAS_SPIN` unless it is set.  Runs at import; OpenBLAS
    reads it when it is loaded (scipy's, on the first LAPACK call), so import nqs before that."""
    import os

    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(OPENBLAS_SPIN))


tune_openblas()


def enable_x64() -> None:
    """Switch JAX to float64/complex128 (nqs's default precision on CPU). Call at program entry."""
    import jax

    jax.config.update("jax_enable_x64", True)
