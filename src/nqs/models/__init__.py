"""Wave functions. Contract: ``init(key) -> params``, ``log_psi(params, sigma) -> complex``."""

from .base import FunctionModel, MarshallSign, Model, log_cosh
from .jastrow import Jastrow
from .rbm import RBM, RBMRealAmpPhase
from .symmetric import Projected, SymmetricRBM

__all__ = ["Model", "FunctionModel", "MarshallSign", "RBM", "RBMRealAmpPhase", "Jastrow", "log_cosh",
           "SymmetricRBM", "Projected"]
