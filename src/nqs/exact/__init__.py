"""Exact results: sparse Lanczos diagonalization, exact states and expectation values.

* :func:`lowest_energies` — the lowest ``k`` eigenvalues of H in a Hilbert-space sector, every copy of a
  degenerate level listed (dense ``eigh`` for small sectors, scipy's Lanczos ``eigsh`` with deflation
  otherwise; ~24 spins at Sz=0 on 2 cores); :func:`lowest_levels` adds each level's degeneracy.
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
    "lowest_levels",
    "level_degeneracies",
    "DEGENERACY_RTOL",
    "tfim_chain_energy",
    "exact_state",
    "exact_energy_of_model",
    "projector_dense",
    "sector_basis",
    "sector_hamiltonian",
    "sector_energies",
]

MAX_ED_STATES = 3_000_000


#: Two eigenvalues closer than this (relative to max(1, |E|)) are copies of one level.
DEGENERACY_RTOL = 1e-8
#: Sectors up to this many states are diagonalized densely.
DENSE_ED_STATES = 1024


def _same_level(a, b) -> np.ndarray:
    return np.abs(np.asarray(a) - b) <= DEGENERACY_RTOL * np.maximum(1.0, np.abs(b))


def level_degeneracies(energies, spectrum) -> list[int]:
    """For each of ``energies`` the number of eigenvalues in ``spectrum`` that are copies of its level
    (within :data:`DEGENERACY_RTOL`)."""
    spectrum = np.asarray(spectrum, dtype=float)
    return [int(np.count_nonzero(_same_level(spectrum, e))) for e in np.asarray(energies, dtype=float)]


def _lowest_complete(H, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the sparse Hermitian ``H``: the ``k`` lowest eigenvalues and every copy of the levels
    they belong to (so possibly more than ``k``), ascending.

    A Krylov method started from one vector sees one direction per degenerate eigenspace (further copies
    only through rounding errors), so it can return a degenerate level with too few copies and list the
    next level in their place.  Here the pairs found are deflated, ``H' = Q H Q + s·(1 − Q)`` with ``Q`` the
    projector off them and ``s`` above the spectrum, and Lanczos (``eigsh``) is run again on ``H'``, whose
    lowest eigenvalue is the lowest one not yet found; rounds go on until that is above the ``k``-th
    eigenvalue found (beyond :data:`DEGENERACY_RTOL`).  A Rayleigh–Ritz step on everything found sets
    the final values.
    """
    import scipy.sparse as sp

    dim = H.shape[0]
    dtype = np.result_type(H.dtype, np.float64)
    shift = 2.0 * float(abs(H).sum(axis=1).max()) + 1.0  # above ‖H‖ ≥ every |eigenvalue|
    rng = np.random.default_rng(0)
    n_round = min(max(k, 4), dim - 2)
    V = np.zeros((dim, 0), dtype=dtype)
    w = np.zeros(0)
    for _ in range(dim):
        n_found = V.shape[1]
        kr = min(n_round, dim - n_found - 2)
        if kr < 1:  # nearly everything found: finish densely
            Hd = H.toarray() if sp.issparse(H) else np.asarray(H)
            w, V = np.linalg.eigh(Hd)
            break

        def matvec(x, V=V):
            x = np.asarray(x).reshape(-1)
            px = V @ (V.conj().T @ x)
            y = H @ (x - px)
            return y - V @ (V.conj().T @ y) + shift * px

        op = spla.LinearOperator((dim, dim), matvec=matvec, dtype=dtype)
        v0 = rng.standard_normal(dim).astype(dtype)
        v0 -= V @ (V.conj().T @ v0)
        mu, X = spla.eigsh(op, k=kr, which="SA", v0=v0, tol=1e-12)
        keep = mu < shift / 2  # eigenpairs of H, not the deflated ones
        mu, X = mu[keep], X[:, keep]
        if n_found >= k and (len(mu) == 0 or mu.min() > w[k - 1] + DEGENERACY_RTOL * max(1.0, abs(w[k - 1]))):
            break
        V, _ = np.linalg.qr(np.concatenate([V, X - V @ (V.conj().T @ X)], axis=1))
        w, U = np.linalg.eigh(V.conj().T @ (H @ V))  # Rayleigh–Ritz on every pair found
        V = V @ U
        if len(w) >= k:  # drop what lies above the k-th level: it is found again if it matters
            last = int(np.flatnonzero(_same_level(w, w[k - 1]) | (w <= w[k - 1]))[-1])
            w, V = w[: last + 1], V[:, : last + 1]
    return w, V


def _lowest(operator, hilbert, k: int, complete: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w, v, spectrum)``: the ``k`` lowest eigenpairs and the eigenvalues found (every copy of the
    levels of ``w`` when ``complete``, or the whole spectrum for a dense sector)."""
    dim = hilbert.n_states
    if dim > MAX_ED_STATES:
        raise ValueError(
            f"exact diagonalization needs {dim} states ({hilbert.describe()}); the limit is "
            f"{MAX_ED_STATES} (about 24 spins at total_sz = 0)"
        )
    H = operator.to_sparse(hilbert)
    k = min(k, dim)
    if dim <= DENSE_ED_STATES:
        w, v = np.linalg.eigh(H.toarray())
        return w[:k], v[:, :k], w
    if k == 1 and not complete:  # the lowest value is right whatever its degeneracy
        v0 = np.random.default_rng(0).standard_normal(dim)
        w, v = spla.eigsh(H, k=1, which="SA", v0=v0, tol=1e-12)
        return w, v, w
    w, v = _lowest_complete(H, k)
    return w[:k], v[:, :k], w


def lowest_energies(operator, hilbert, k: int = 1, return_vectors: bool = False):
    """Lowest ``k`` eigenvalues (ascending) of ``operator`` on ``hilbert``'s sector, every copy of a
    degenerate level counted (``k = 6`` on a six-fold ground level gives it six times)."""
    w, v, _ = _lowest(operator, hilbert, k, complete=False)
    return (w, v) if return_vectors else w


def lowest_levels(operator, hilbert, k: int = 1) -> tuple[np.ndarray, list[int]]:
    """The ``k`` lowest eigenvalues (every copy, as :func:`lowest_energies`) and, for each, the degeneracy
    of its level: all its copies, also those beyond the ``k``-th eigenvalue."""
    w, _, spectrum = _lowest(operator, hilbert, k, complete=True)
    return w, level_degeneracies(w, spectrum)


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
