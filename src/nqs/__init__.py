"""nqs — neural-network quantum states (Boltzmann machines) by variational Monte Carlo in JAX.

Floors (a lower one never imports a higher one): ``lattice → hilbert → operators → hamiltonians → models →
sampling → estimators/sr → drivers → config/workflow/cli``.  Conventions (units, signs, encodings) are stated
once in :mod:`nqs.conventions`; the CPU runtime settings are one explicit call, :func:`nqs.runtime.configure_cpu`.

Importing nqs changes no environment variable and no JAX setting, and loads the public names below on first
use::

    import nqs
    nqs.runtime.configure_cpu()  # first, before JAX and scipy are imported
    lattice = nqs.make_lattice("chain", [16])
    result = nqs.run("examples/heisenberg_chain22.toml")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public names of the package root and the module each comes from.
_EXPORTS = {
    # lattices and Hilbert spaces
    "Lattice": "lattice",
    "make_lattice": "lattice",
    "SpinHilbert": "hilbert",
    "SpinfulFermions": "hilbert",
    # Hamiltonians
    "ising": "hamiltonians",
    "heisenberg": "hamiltonians",
    "xxz": "hamiltonians",
    "j1j2": "hamiltonians",
    "pauli": "hamiltonians",
    "hubbard": "hamiltonians",
    "PauliSum": "operators.pauli",
    "FermionOperator": "operators.fermion",
    "read_hamiltonian": "hamiltonians.files",
    # models
    "Model": "models",
    "FunctionModel": "models",
    "RBM": "models",
    "RBMRealAmpPhase": "models",
    "MarshallSign": "models",
    "SymmetricRBM": "models",
    "Projected": "models",
    "Jastrow": "models",
    "Slater": "models",
    "PairProduct": "models",
    "RBMPP": "models",
    "SpinRBMPP": "models",
    # samplers
    "MetropolisSampler": "sampling",
    "ExactSampler": "sampling",
    "LocalRule": "sampling",
    "ExchangeRule": "sampling",
    "HopRule": "sampling",
    # drivers
    "Driver": "drivers",
    "VMC": "drivers",
    "DBMVMC": "drivers",
    "OptimizerConfig": "optimizers",
    "SRConfig": "sr",
    # configs and runs
    "Config": "config",
    "load_config": "config",
    "run": "workflow",
    "build": "workflow",
    "lowest_energies": "exact",
}
_MODULES = (
    "conventions",
    "runtime",
    "registry",
    "lattice",
    "hilbert",
    "operators",
    "hamiltonians",
    "models",
    "sampling",
    "estimators",
    "sr",
    "stats",
    "exact",
    "drivers",
    "config",
    "workflow",
    "io",
    "parallel",
)

__all__ = sorted(_EXPORTS) + list(_MODULES)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'nqs' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
