import jax
import pytest

import nqs  # noqa: F401  (first: sizes the XLA CPU thread pool, see nqs.MIN_CPU_THREADS)

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
