"""Observables as Pauli sums: the named averages measured along a time evolution, and user-written sums.

Named observables (:data:`NAMED_OBSERVABLES`) are in **Pauli** units (:mod:`nqs.conventions`):

* ``"X"``, ``"Y"``, ``"Z"``: the site average (1/N) Σ_i σ^a_i;
* ``"XX"``, ``"YY"``, ``"ZZ"``: the nearest-neighbour bond average (1/N_b) Σ_⟨ij⟩ σ^a_i σ^a_j over the
  N_b bonds of ``lattice.bonds(1)``.

Anything else (one site, a staggered sum, a correlation at distance r) is a user sum of Pauli strings,
``[[coefficient, "ops", [sites]], ...]`` as in a config file (:func:`user_observable`).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from .pauli import PauliSum, pauli_terms_from_spec

__all__ = ["NAMED_OBSERVABLES", "named_observable", "user_observable"]

NAMED_OBSERVABLES: dict[str, str] = {
    "X": "site average (1/N) sum_i X_i (Pauli)",
    "Y": "site average (1/N) sum_i Y_i (Pauli)",
    "Z": "site average (1/N) sum_i Z_i (Pauli)",
    "XX": "nearest-neighbour bond average (1/N_b) sum_<ij> X_i X_j (Pauli)",
    "YY": "nearest-neighbour bond average (1/N_b) sum_<ij> Y_i Y_j (Pauli)",
    "ZZ": "nearest-neighbour bond average (1/N_b) sum_<ij> Z_i Z_j (Pauli)",
}


def named_observable(lattice, name: str) -> PauliSum:
    """The observable ``name`` (a key of :data:`NAMED_OBSERVABLES`) on ``lattice``'s sites."""
    if name not in NAMED_OBSERVABLES:
        raise ValueError(f"unknown observable {name!r}; the named ones are {', '.join(NAMED_OBSERVABLES)}")
    n = lattice.n_sites
    if len(name) == 1:
        return PauliSum(n, [(1.0 / n, name, (i,)) for i in range(n)], name=name)
    bonds = [(int(i), int(j)) for i, j in lattice.bonds(1)]
    if not bonds:
        raise ValueError(f"observable {name!r} averages over nearest-neighbour bonds; {lattice.describe()} has none")
    return PauliSum(n, [(1.0 / len(bonds), name, b) for b in bonds], name=name)


def user_observable(lattice_or_n_sites, terms: Sequence, name: str = "observable") -> PauliSum:
    """Σ_t c_t P_t from ``[[coefficient, "ops", [sites]], ...]`` (coefficient a number or ``[re, im]``).

    ``lattice_or_n_sites`` is a lattice (its ``n_sites``) or the number of sites; a ``ValueError`` names
    the entry and what is wrong with it, e.g. a site that does not exist.
    """
    n = int(lattice_or_n_sites) if isinstance(lattice_or_n_sites, numbers.Integral) else lattice_or_n_sites.n_sites
    parsed = pauli_terms_from_spec(terms)
    for i, (_, ops, sites) in enumerate(parsed):
        outside = [s for s in sites if not 0 <= s < n]
        if outside:
            raise ValueError(
                f"entry {i}, {ops!r} on {list(sites)}: site {outside[0]} does not exist (sites are 0..{n - 1})"
            )
    return PauliSum(n, parsed, name=name)
