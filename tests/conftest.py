import os
import shutil
import tempfile

from nqs.runtime import configure_cpu

configure_cpu()  # before any JAX computation: thread pool, XLA flags, OpenBLAS spin, float64

import jax  # noqa: E402
import pytest  # noqa: E402

# One persistent XLA compilation cache for the whole test session: its workers and the `nqs run` processes
# the tests start.  Most of the suite's time is XLA compiling functions that earlier tests compiled already
# (the same sampler, step and evaluation for the same shapes, rebuilt by each run); a compiled function is
# then read back instead.  A fresh directory per session (the first process to import this makes it and the
# others inherit it through the environment), removed at the end; a user's JAX_COMPILATION_CACHE_DIR is kept.
_OWN_CACHE = "NQS_TEST_COMPILE_CACHE" not in os.environ and "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["NQS_TEST_COMPILE_CACHE"] = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="nqs-xla-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["NQS_TEST_COMPILE_CACHE"], ignore_errors=True)


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
