"""Dense references of imaginary-time evolution on small spin systems: Trotter products e^{−δτ H_K} ⋯ e^{−δτ H_1}
applied factor by factor to full state vectors, and the exact ⟨H⟩ of e^{−τH}ψ0 from a dense eigendecomposition.
They check the exact deep-Boltzmann-machine construction of :mod:`nqs.imaginary_time` amplitude by amplitude.

Units are nqs's (:mod:`nqs.conventions`): ``ising`` H = −J Σ σᶻσᶻ − h Σ σˣ (Pauli matrices); ``heisenberg``
H = J Σ S_i·S_j with S = σ/2.  Basis order of every vector: nqs's (code bit i set ⇔ σ_i = ↑, sorted by code;
``SpinHilbert(N).all_states()``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..hilbert import SpinHilbert

__all__ = [
    "checkerboard_groups",
    "neel_state",
    "trotter_reference",
    "tfim_trotter_reference",
    "heisenberg_trotter_reference",
    "heisenberg_bond_matrix",
    "rbm_vector",
    "vector_energy",
    "exact_tau_energy",
]


def _rbm_psi0(psi0: Any, n: int) -> dict[str, np.ndarray]:
    """Validate an nqs RBM parameter dict {"a" (N,), "b" (M,), "W" (N, M)} as numpy arrays."""
    try:
        a, b, W = (np.asarray(psi0[k]) for k in ("a", "b", "W"))
    except (KeyError, TypeError, IndexError) as e:
        raise ValueError('psi0 must be "plus" or an nqs RBM parameter dict {"a", "b", "W"}') from e
    if a.shape != (n,) or W.ndim != 2 or W.shape[0] != n or b.shape != (W.shape[1],):
        raise ValueError(f"RBM psi0 shapes a{a.shape}, b{b.shape}, W{W.shape} do not fit {n} sites")
    return {"a": a, "b": b, "W": W}


def checkerboard_groups(lattice) -> list[np.ndarray]:
    """Split ``lattice.bonds(1)`` into matchings (no site twice in a group), applied in order.

    Chain: group 0 = "even" bonds (2k, 2k+1), group 1 = "odd" bonds (2k+1, 2k+2) (the periodic
    bond (L−1, 0) is odd for even L).  Other lattices (or an odd periodic chain): greedy edge
    colouring, bonds in ``lattice.bonds(1)`` order, each into the first group it fits.
    Returns a list of (n_g, 2) int arrays.
    """
    bonds = np.asarray(lattice.bonds(1)).reshape(-1, 2)

    def is_matching(g):
        return len(g) == 0 or len(np.unique(g)) == 2 * len(g)

    if getattr(lattice, "kind", None) == "chain":
        start = np.where(bonds[:, 1] == bonds[:, 0] + 1, bonds[:, 0], bonds[:, 1])
        groups = [bonds[start % 2 == 0], bonds[start % 2 == 1]]
        if all(is_matching(g) for g in groups):
            return [g for g in groups if len(g)]
    used: list[set[int]] = []
    out: list[list[tuple[int, int]]] = []
    for i, j in bonds:
        for g, u in enumerate(used):
            if i not in u and j not in u:
                u.update((int(i), int(j)))
                out[g].append((int(i), int(j)))
                break
        else:
            used.append({int(i), int(j)})
            out.append([(int(i), int(j))])
    return [np.asarray(g, dtype=np.int64).reshape(-1, 2) for g in out]


def neel_state(lattice) -> np.ndarray:
    """The Néel configuration: σ_i = +1 on sublattice 0, −1 on sublattice 1, int8 (N,)."""
    if not lattice.is_bipartite:
        raise ValueError(f"{lattice.describe()} is not bipartite: no Néel state")
    return np.where(np.asarray(lattice.sublattice) == 0, 1, -1).astype(np.int8)


def _apply_one_site(psi: np.ndarray, n: int, i: int, m: np.ndarray) -> np.ndarray:
    """Apply a 2×2 matrix (axis order ↓, ↑ = code bit 0, 1) on site i of a (2**n,) vector."""
    t = psi.reshape((2,) * n)
    ax = n - 1 - i  # C order: site n-1 is the slowest axis, site 0 the fastest
    t = np.moveaxis(np.tensordot(m, t, axes=([1], [ax])), 0, ax)
    return t.reshape(-1)


def _apply_two_site(psi: np.ndarray, n: int, i: int, j: int, m: np.ndarray) -> np.ndarray:
    """Apply a 4×4 matrix on sites (i, j) (row index 2·bit_i + bit_j) of a (2**n,) vector."""
    t = psi.reshape((2,) * n)
    ai, aj = n - 1 - i, n - 1 - j
    t = np.tensordot(m.reshape(2, 2, 2, 2), t, axes=([2, 3], [ai, aj]))
    t = np.moveaxis(t, [0, 1], [ai, aj])
    return t.reshape(-1)


def trotter_reference(
    factors: Sequence[np.ndarray | Callable[[np.ndarray], np.ndarray]], psi0: np.ndarray, n_steps: int
) -> np.ndarray:
    """ψ_n = (F_{K−1} ⋯ F_1 F_0)^n ψ0 by dense products: ``factors[0]`` acts first in each step.

    Each factor is a dense (D, D) matrix or a callable ``psi -> F psi``; ``psi0`` is (D,).
    """
    psi = np.asarray(psi0, dtype=np.complex128)
    for _ in range(n_steps):
        for f in factors:
            psi = f(psi) if callable(f) else np.asarray(f) @ psi
    return psi


def _states(n: int) -> np.ndarray:
    return SpinHilbert(n).all_states().astype(np.float64)


def rbm_vector(rbm_params: dict, n: int) -> np.ndarray:
    """nqs RBM amplitudes exp(a·σ + Σ ln cosh θ) on all 2**n states (code order), unnormalised."""
    p = _rbm_psi0(rbm_params, n)
    s = _states(n)
    th = p["b"] + s @ p["W"]
    return np.exp(s @ p["a"] + np.sum(np.log(np.cosh(th.astype(np.complex128))), axis=-1))


def tfim_trotter_reference(
    lattice, J: float = 1.0, h: float = 1.0, dtau: float = 0.1, n_steps: int = 1, psi0: str | dict = "plus"
) -> np.ndarray:
    """Dense ψ_n = (U_zz U_x)^n ψ0 (unnormalised, (2**L,), code order), exact per-factor products.

    U_x = ⊗_i [[cosh δτh, sinh δτh], [sinh δτh, cosh δτh]] site by site; U_zz diagonal
    e^{δτJ Σ_⟨ij⟩ σ_iσ_j}.  ψ0 = all-ones ("plus") or the nqs RBM vector (:func:`rbm_vector`).
    """
    L = lattice.n_sites
    s = _states(L)
    bonds = np.asarray(lattice.bonds(1)).reshape(-1, 2)
    uzz = np.exp(dtau * J * np.sum(s[:, bonds[:, 0]] * s[:, bonds[:, 1]], axis=1))
    ch, sh = math.cosh(dtau * h), math.sinh(dtau * h)
    ux1 = np.array([[ch, sh], [sh, ch]])

    def ux(psi):
        for i in range(L):
            psi = _apply_one_site(psi, L, i, ux1)
        return psi

    psi = np.ones(2**L, dtype=np.complex128) if isinstance(psi0, str) else rbm_vector(psi0, L)
    return trotter_reference([ux, lambda p: uzz * p], psi, n_steps)


def heisenberg_bond_matrix(x: float) -> np.ndarray:
    """e^{−x S_i·S_j} (S = σ/2) as a 4×4 matrix, row/column index 2·bit_i + bit_j (bit 1 = ↑)."""
    lc = x / 4
    m = np.zeros((4, 4))
    m[0, 0] = m[3, 3] = math.exp(-x / 4)
    m[1, 1] = m[2, 2] = math.exp(lc) * math.cosh(x / 2)
    m[1, 2] = m[2, 1] = -math.exp(lc) * math.sinh(x / 2)
    return m


def heisenberg_trotter_reference(
    lattice, J: float = 1.0, dtau: float = 0.1, n_steps: int = 1, bond_groups: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Dense ψ_n = (U_{G−1} ⋯ U_0)^n |Néel⟩ ((2**L,), code order), bond by bond (exact 4×4 factors).

    Same groups as :func:`heisenberg_dbm` (default :func:`checkerboard_groups`); no Marshall rotation.
    """
    L = lattice.n_sites
    groups = checkerboard_groups(lattice) if bond_groups is None else bond_groups
    m = heisenberg_bond_matrix(dtau * J)
    code = int(SpinHilbert(L).states_to_codes(neel_state(lattice)[None, :])[0])
    psi0 = np.zeros(2**L, dtype=np.complex128)
    psi0[code] = 1.0

    def group_factor(g):
        def f(psi):
            for i, j in np.asarray(g).reshape(-1, 2):
                psi = _apply_two_site(psi, L, int(i), int(j), m)
            return psi

        return f

    return trotter_reference([group_factor(g) for g in groups], psi0, n_steps)


def _sector_vector(vec: np.ndarray, hilbert) -> np.ndarray:
    if hilbert.total_sz is None:
        return vec
    return vec[hilbert.all_codes()]


def vector_energy(vec: np.ndarray, operator, hilbert) -> float:
    """⟨v|H|v⟩/⟨v|v⟩ for a full-space vector (2**N,) in code order, restricted to ``hilbert``."""
    v = _sector_vector(np.asarray(vec), hilbert)
    H = operator.to_sparse(hilbert)
    return float(np.real(np.vdot(v, H @ v)) / np.real(np.vdot(v, v)))


def exact_tau_energy(operator, psi0: np.ndarray, taus: Sequence[float], hilbert=None) -> np.ndarray:
    """⟨H⟩ of the normalised e^{−τH}ψ0 for each τ (dense eigendecomposition; small N).

    ``psi0`` (2**N,) in code order; ``hilbert`` defaults to the full space of N spins.
    """
    psi0 = np.asarray(psi0, dtype=np.complex128)
    n = int(round(math.log2(len(psi0))))
    hilbert = SpinHilbert(n) if hilbert is None else hilbert
    H = operator.to_dense(hilbert)
    w, V = np.linalg.eigh(H)
    c = V.conj().T @ _sector_vector(psi0, hilbert)
    out = []
    for tau in taus:
        amp = np.abs(c) ** 2 * np.exp(-2 * tau * (w - w[0]))
        out.append(float(np.sum(amp * w) / np.sum(amp)))
    return np.asarray(out)
