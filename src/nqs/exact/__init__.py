"""Exact results: sparse Lanczos diagonalization, exact states and expectation values.

* :func:`lowest_energies` — the lowest ``k`` eigenvalues of H in a Hilbert-space sector
  (dense ``eigh`` for small sectors, scipy's Lanczos ``eigsh`` otherwise; ~24 spins at Sz=0 on 2 cores).
* :func:`tfim_chain_energy` — ground-state energy of the periodic transverse-field Ising chain
  from its free-fermion solution (any length).
* :func:`exact_state` / :func:`exact_energy_of_model` — a model's normalized vector by
  enumeration and ⟨ψ|H|ψ⟩ from it.
* :mod:`nqs.exact.sectors` — ED per symmetry sector (momentum, point-group irrep, spin parity):
  :func:`sector_energies`, :func:`sector_basis`, :func:`sector_hamiltonian`, :func:`projector_dense`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from .sectors import projector_dense, sector_basis, sector_energies, sector_hamiltonian

__all__ = [
    "MAX_ED_STATES",
    "lowest_energies",
    "tfim_chain_energy",
    "exact_state",
    "exact_energy_of_model",
    "projector_dense",
    "sector_basis",
    "sector_hamiltonian",
    "sector_energies",
]

MAX_ED_STATES = 3_000_000


def lowest_energies(operator, hilbert, k: int = 1, return_vectors: bool = False):
    """Lowest ``k`` eigenvalues (ascending) of ``operator`` on ``hilbert``'s sector."""
    dim = hilbert.n_states
    if dim > MAX_ED_STATES:
        raise ValueError(
            f"exact diagonalization needs {dim} states ({hilbert.describe()}); the limit is "
            f"{MAX_ED_STATES} (about 24 spins at total_sz = 0)"
        )
    H = operator.to_sparse(hilbert)
    k = min(k, dim)
    if dim <= 1024:
        w, v = np.linalg.eigh(H.toarray())
        w, v = w[:k], v[:, :k]
    else:
        v0 = np.random.default_rng(0).standard_normal(dim)
        w, v = spla.eigsh(H, k=k, which="SA", v0=v0, tol=1e-12)
        order = np.argsort(w)
        w, v = w[order], v[:, order]
    return (w, v) if return_vectors else w


def tfim_chain_energy(n_sites: int, J: float = 1.0, h: float = 1.0) -> float:
    """E₀ of H = −J Σ σᶻ_iσᶻ_{i+1} − h Σ σˣ_i on a periodic chain (Pauli units).

    Jordan–Wigner fermions in the even-parity (antiperiodic) sector:
    E₀ = −Σ_k √(J² + h² − 2Jh cos k), k = π(2n+1)/L.  Valid for J ≥ 0 (any L), and for J < 0 when
    L is even (a sublattice rotation maps it to J > 0); the sign of h never matters.
    """
    if J < 0 and n_sites % 2:
        raise ValueError("the free-fermion formula needs an even chain for J < 0 (frustrated otherwise)")
    J, h = abs(J), abs(h)
    k = np.pi * (2 * np.arange(n_sites) + 1) / n_sites
    return float(-np.sum(np.sqrt(J**2 + h**2 - 2 * J * h * np.cos(k))))


def exact_state(model, params, hilbert) -> np.ndarray:
    """ψ(σ) on every basis state of the sector (sorted by code), normalized to 1."""
    import jax

    states = hilbert.all_states()
    logpsi = np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(params, states))
    logpsi = logpsi - logpsi.real.max()
    psi = np.exp(logpsi)
    return psi / np.linalg.norm(psi)


def exact_energy_of_model(model, params, operator, hilbert) -> float:
    """⟨ψ|H|ψ⟩/⟨ψ|ψ⟩ by full enumeration."""
    psi = exact_state(model, params, hilbert)
    H = operator.to_sparse(hilbert)
    return float(np.real(np.vdot(psi, H @ psi)))
