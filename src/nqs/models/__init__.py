"""Wave functions. Contract: ``init(key) -> params``, ``log_psi(params, sigma) -> complex``."""

from .base import FunctionModel, MarshallSign, Model, log_cosh
from .jastrow import Jastrow
from .pair_product import RBMPP, PairProduct, SpinRBMPP
from .rbm import RBM, RBMRealAmpPhase
from .slater import Slater
from .symmetric import FermionProjected, Projected, SymmetricRBM

__all__ = ["Model", "FunctionModel", "MarshallSign", "RBM", "RBMRealAmpPhase", "Jastrow", "log_cosh",
           "SymmetricRBM", "Projected", "FermionProjected", "Slater", "PairProduct", "RBMPP", "SpinRBMPP"]
