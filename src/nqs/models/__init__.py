"""Wave functions. Contract (:mod:`nqs.models.base`): ``init(key) -> params``, ``log_psi(params, sigma) -> complex``,
and at most one fast path found by :func:`fast_path`.  The kinds a config's ``[model]`` names are registered
with their config classes by :mod:`.kinds` and :mod:`.pair_kinds` (imported here)."""

from . import kinds, pair_kinds  # noqa: F401  (register the built-in [model] kinds)
from .base import FastPath, FunctionModel, MarshallSign, Model, fast_path
from .jastrow import Jastrow
from .numerics import log_cosh
from .pair_product import PairProduct
from .rbm import RBM, RBMRealAmpPhase
from .rbm_pp import RBMPP, SpinRBMPP
from .slater import Slater
from .symmetric import FermionProjected, Projected, SymmetricRBM

__all__ = [
    "Model",
    "FastPath",
    "fast_path",
    "FunctionModel",
    "MarshallSign",
    "RBM",
    "RBMRealAmpPhase",
    "Jastrow",
    "log_cosh",
    "SymmetricRBM",
    "Projected",
    "FermionProjected",
    "Slater",
    "PairProduct",
    "RBMPP",
    "SpinRBMPP",
]
