"""The ``[model]`` section's kinds are registered with their builders in :mod:`nqs.models.kinds` and
:mod:`nqs.models.pair_kinds` (:data:`nqs.registry.MODELS`); here, what the build adds for a built model."""

from __future__ import annotations

from ..hilbert import SpinfulFermions
from ..models import Projected


def orbits(model, op, hil):
    """For exact enumeration of a projected spin model: one configuration per orbit of its group (and spin
    flip), when the Hamiltonian commutes with every element (checked on the sparse matrix); else None."""
    if not isinstance(model, Projected) or isinstance(hil, SpinfulFermions):
        return None
    from ..sampling.exact import orbit_representatives

    return orbit_representatives(hil, model.permutations, model.spin_parity is not None, op.to_sparse(hil).tocsr())
