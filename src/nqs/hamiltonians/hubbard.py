"""The (extended) Hubbard model on a lattice cluster as a :class:`~nqs.operators.fermion.FermionOperator`.

    H = −t Σ_{⟨ij⟩σ} s_ij (c†_iσ c_jσ + h.c.) − t2 Σ_{⟨⟨ij⟩⟩σ} s_ij (c†_iσ c_jσ + h.c.)
        + U Σ_i n_i↑ n_i↓ + V Σ_{⟨ij⟩} n_i n_j,          n_i = n_i↑ + n_i↓,

with orbitals ``p = site + n_sites·spin`` (↑ first) and the Jordan–Wigner signs of
:mod:`nqs.operators.fermion` (the sign convention of ``/work/shared/notes/rbm_pp.md`` §1: a hop
counts the same-spin electrons strictly between the two sites in index order, also across a
periodic boundary).  ⟨ij⟩ are the lattice's shell-1 bonds, ⟨⟨ij⟩⟩ its shell-2 bonds
(:meth:`nqs.lattice.Lattice.bonds`).  Energies are in units of t as given (no factor 1/2 anywhere).

Boundary conditions and images
------------------------------
``boundary`` is one string for every periodic direction of the lattice, or one entry per direction
``k`` (along the primitive vector ``a_k``): ``"periodic"``, ``"antiperiodic"`` or ``"open"``.  A
direction the lattice itself leaves open is always open (a per-direction list must say so).

The cluster Hamiltonian is the infinite-lattice Hamiltonian folded onto the torus with the twist:
a bond from site ``i`` to the periodic image ``r_j + T`` of site ``j``, ``T = Σ_k n_k L_k a_k``,
has amplitude ``s(T) = Π_{k antiperiodic} (−1)^{n_k}`` (and none if ``n_k ≠ 0`` along an
``"open"`` direction).  A bond *wraps* along ``k`` when ``n_k ≠ 0``, i.e. when the displacement
that realizes the bond (the minimum image ``lattice.displacement(i, j)`` when there is only one)
differs from the plain position difference ``r_j − r_i``.  On tiny clusters one pair can be a bond
through several images (square 2×2: direct and across the boundary; chain L = 4 shell 2: ±2);
then every image counts and the pair gets ``s_ij = Σ_images s(T)``: 2 on the 2×2 torus with PBC,
0 along an antiperiodic direction of length 2.  The single-particle energies are then exactly the
infinite lattice's band ``ε(k)`` at the cluster momenta (shifted by π/L_k along antiperiodic
directions), which is why images are summed rather than deduplicated.  Likewise ``V`` is multiplied
by the number of images, and a site whose own image is at the bond distance (only when
``L_k·|a_k|`` equals it) gets the folded on-site terms ``−t Σ_T s(T) n_iσ`` and ``V/2 · #T · n_i²``.
Where no such coincidence occurs (``m_ij = 1`` in :func:`bond_images`; it does occur e.g. for t on
chain L = 2, square 2×2, triangular 2×2, and for t2 on chain L = 2, 4, square 2×2, triangular 3×3)
each bond has exactly one image and ``s_ij = −1`` exactly for the bonds across an antiperiodic boundary.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..lattice import DISTANCE_TOL, Lattice
from ..operators.fermion import FermionOperator
from ..registry import HAMILTONIANS, Section

BOUNDARY_MODES = ("periodic", "antiperiodic", "open")


def boundary_modes(lattice: Lattice, boundary: str | Sequence[str] = "periodic") -> tuple[str, ...]:
    """Per-direction boundary modes for ``lattice``; raises ValueError with a one-line message."""
    valid = ", ".join(BOUNDARY_MODES)
    if isinstance(boundary, str):
        mode = boundary.strip().lower()
        if mode not in BOUNDARY_MODES:
            raise ValueError(f"boundary must be one of {valid} (or one per direction), got {boundary!r}")
        return tuple(mode if p else "open" for p in lattice.pbc)
    modes = list(boundary)
    if len(modes) != lattice.ndim:
        raise ValueError(
            f"boundary needs one entry per direction ({lattice.ndim} for a {lattice.kind} lattice), got {modes!r}"
        )
    out = []
    for k, (m, p) in enumerate(zip(modes, lattice.pbc, strict=True)):
        mode = str(m).strip().lower()
        if mode not in BOUNDARY_MODES:
            raise ValueError(f"boundary[{k}] must be one of {valid}, got {m!r}")
        if mode != "open" and not p:
            raise ValueError(f"boundary[{k}] = {mode!r} but the lattice is open along direction {k}; use 'open'")
        out.append(mode)
    return tuple(out)


def bond_images(lattice: Lattice, shell: int, modes: Sequence[str]) -> list[tuple[int, int, float, int]]:
    """Folded bonds of ``shell``: rows ``(i, j, s_ij, m_ij)`` with ``i <= j``.

    ``m_ij`` counts the images ``T`` (allowed by ``modes``) with ``|r_j + T − r_i| = d_shell`` and
    ``s_ij = Σ_T Π_{k antiperiodic} (−1)^{n_k}``.  Rows with ``i = j`` (a site bonded to its own
    image) list all ``T`` of both signs.  Pairs without an allowed image are omitted.
    """
    d = lattice.shell_distance(shell)
    pos = lattice.positions
    super_vecs = np.array(lattice.size, dtype=float)[:, None] * lattice.primitive_vectors
    bnorm = np.linalg.norm(lattice.reciprocal_vectors(), axis=1)
    ranges = []
    for L, p, bk in zip(lattice.size, lattice.pbc, bnorm, strict=True):
        m = int(math.floor(d * bk / (2.0 * np.pi * L) + 1.0)) if p else 0
        ranges.append(range(-m, m + 1))
    n_img = np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, lattice.ndim)
    shifts = n_img @ super_vecs
    anti = np.array([m == "antiperiodic" for m in modes])
    opened = np.array([m == "open" for m in modes])
    sign = np.where(np.sum(n_img * anti, axis=1) % 2 == 1, -1.0, 1.0)
    allowed = ~np.any((n_img != 0) & opened, axis=1)

    out: list[tuple[int, int, float, int]] = []
    pairs = lattice.bonds(shell)
    if len(pairs):
        d0 = pos[pairs[:, 1]] - pos[pairs[:, 0]]
        dist = np.linalg.norm(d0[:, None, :] + shifts[None, :, :], axis=-1)
        hit = (np.abs(dist - d) < DISTANCE_TOL) & allowed[None, :]
        for (i, j), h in zip(pairs, hit, strict=True):
            if h.any():
                out.append((int(i), int(j), float(sign[h].sum()), int(h.sum())))
    self_hit = (np.abs(np.linalg.norm(shifts, axis=1) - d) < DISTANCE_TOL) & allowed & np.any(n_img != 0, axis=1)
    if self_hit.any():
        s_self, m_self = float(sign[self_hit].sum()), int(self_hit.sum())
        out += [(i, i, s_self, m_self) for i in range(lattice.n_sites)]
    return sorted(out)


def _hopping_terms(bonds: list[tuple[int, int, float, int]], t: float, n_sites: int) -> list:
    terms = []
    for i, j, s, _ in bonds:
        if s == 0:
            continue  # images cancel (antiperiodic direction of length 2)
        for spin in (0, 1):
            p, q = i + n_sites * spin, j + n_sites * spin
            if p == q:
                terms.append((-t * s, ((p, 1), (p, 0))))  # folded self-image: −t Σ_T s(T) n_p
            else:
                terms += [(-t * s, ((p, 1), (q, 0))), (-t * s, ((q, 1), (p, 0)))]
    return terms


class HubbardConfig(Section):
    """``kind = "hubbard"``: the Hubbard model on the lattice (module docstring); the filling (N↑, N↓)
    defaults to half filling on an even number of sites."""

    kind: Literal["hubbard"] = "hubbard"
    t: float = 1.0
    U: float = 4.0
    t2: float = 0.0  # t' on next-nearest-neighbour bonds
    V: float = 0.0  # nearest-neighbour density-density
    n_up: int | None = Field(None, ge=0)
    n_down: int | None = Field(None, ge=0)
    boundary: str | list[str] | None = None  # periodic | antiperiodic | open, or one per direction

    @model_validator(mode="before")
    @classmethod
    def _no_total_sz(cls, data):
        if isinstance(data, dict) and "total_sz" in data:
            raise ValueError("electron Hamiltonians fix 'n_up' and 'n_down', not 'total_sz'")
        return data

    def parameters(self) -> dict:
        """The builder's keyword arguments."""
        return {"t": self.t, "U": self.U, "t2": self.t2, "V": self.V, "boundary": self.boundary or "periodic"}


@HAMILTONIANS.register(
    "hubbard",
    config=HubbardConfig,
    fermions=True,
    short_units="t",
    units="units of t: H = -t sum_<ij>s (c+_is c_js + h.c.) + U sum_i n_iup n_idn",
)
def hubbard(
    lattice: Lattice,
    t: float = 1.0,
    U: float = 4.0,
    t2: float = 0.0,
    V: float = 0.0,
    boundary: str | Sequence[str] = "periodic",
) -> FermionOperator:
    """The Hubbard Hamiltonian of the module docstring on ``lattice`` (2·n_sites orbitals, ↑ first).

    ``boundary``: ``"periodic"``, ``"antiperiodic"``, ``"open"``, or one of them per direction.
    Use with :class:`~nqs.hilbert.fermions.SpinfulFermions` ``(lattice.n_sites, N↑, N↓)``.
    """
    n = lattice.n_sites
    modes = boundary_modes(lattice, boundary)
    terms: list = []
    if t != 0:
        terms += _hopping_terms(bond_images(lattice, 1, modes), t, n)
    if t2 != 0:
        terms += _hopping_terms(bond_images(lattice, 2, modes), t2, n)
    if U != 0:
        terms += [(U, ((i, 1), (i, 0), (i + n, 1), (i + n, 0))) for i in range(n)]
    if V != 0:
        for i, j, _, m in bond_images(lattice, 1, modes):
            weight = V * m if i != j else V * m / 2  # a self-image bond: T and −T are one bond
            for si, sj in itertools.product((0, 1), repeat=2):
                p, q = i + n * si, j + n * sj
                terms.append((weight, ((p, 1), (p, 0), (q, 1), (q, 0))))
    return FermionOperator(2 * n, terms, name="hubbard")


def two_site_hubbard_energy(t: float = 1.0, U: float = 4.0) -> float:
    """Ground-state energy of two sites joined by one bond, N↑ = N↓ = 1:  E₀ = U/2 − √(U²/4 + 4t²).

    (The singlet sector {|↑↓,0⟩, |0,↑↓⟩, (|↑,↓⟩ − |↓,↑⟩)/√2} gives the 2×2 problem with off-diagonal
    −2t between the covalent state (energy 0) and the even ionic state (energy U).)
    """
    return U / 2.0 - math.sqrt(U * U / 4.0 + 4.0 * t * t)
