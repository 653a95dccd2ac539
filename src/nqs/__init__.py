"""nqs — neural-network quantum states (Boltzmann machines) by variational Monte Carlo in JAX.

Layers (a lower layer never imports a higher one):
``lattice → hilbert → operators/hamiltonians → models → sampling → estimators → sr/vmc → io/cli``.
Conventions (units, signs, encodings) are stated once in :mod:`nqs.conventions`.
"""

__version__ = "0.1.0"


def enable_x64() -> None:
    """Switch JAX to float64/complex128 (nqs's default precision on CPU). Call at program entry."""
    import jax

    jax.config.update("jax_enable_x64", True)
