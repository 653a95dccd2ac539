"""Drivers: what turns a model, a Hamiltonian and a sampler into a computation, behind one protocol
(:class:`~nqs.drivers.base.Driver`) and one run loop (:mod:`nqs.drivers.loop`).

* :class:`~nqs.drivers.vmc.VMC` — ground-state variational Monte Carlo (SR, MinSR, first-order optimizers);
* :class:`~nqs.drivers.dbm.DBMVMC` — VMC of a deep Boltzmann machine over its joint (σ, d, d') chain.
"""

from ..optimizers import OptimizerConfig
from .base import Driver, State, finish_step
from .dbm import DBMVMC
from .loop import NonFiniteError, ParameterAverage, optimize, run
from .vmc import VMC

__all__ = [
    "Driver",
    "State",
    "finish_step",
    "run",
    "optimize",
    "NonFiniteError",
    "ParameterAverage",
    "VMC",
    "DBMVMC",
    "OptimizerConfig",
]
