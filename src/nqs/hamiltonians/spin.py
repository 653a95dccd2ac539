"""Spin Hamiltonians on lattices, as :class:`~nqs.operators.PauliSum` operators, each registered with its
config class and units (:data:`nqs.registry.HAMILTONIANS`).

Units follow :mod:`nqs.conventions`: ``ising`` uses Pauli matrices, the Heisenberg family
uses spin-1/2 operators S = σ/2, so S_i·S_j = (X_iX_j + Y_iY_j + Z_iZ_j)/4.

Each registration may state ``sign_rule(section)``: "positive" where the ground state is positive in the S^z
basis (no positive off-diagonal element: a stoquastic Hamiltonian), "marshall" where it is positive times the
Marshall sign on a bipartite lattice (Marshall–Lieb–Mattis), None where neither is known.  The RBM's
default sign and parameter type follow it (:mod:`nqs.models.kinds`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from ..operators.pauli import PauliSum, pauli_terms_from_spec
from ..registry import HAMILTONIANS, Section


class SpinHamiltonianConfig(Section):
    """Keys every spin Hamiltonian takes besides its couplings."""

    #: fixed total S^z = Σσ/2 (the exchange sampler's default: 0, or 1/2 on an odd number of sites)
    total_sz: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_filling(cls, data):
        for name in ("n_up", "n_down"):
            if isinstance(data, dict) and name in data:
                raise ValueError(
                    f"'{name}' is for electron Hamiltonians (kind 'hubbard' or 'file'); spin models fix 'total_sz'"
                )
        return data

    def parameters(self) -> dict:
        """The builder's keyword arguments: the couplings (every key but ``kind`` and ``total_sz``)."""
        return self.model_dump(exclude={"kind", "total_sz"})


class IsingConfig(SpinHamiltonianConfig):
    kind: Literal["ising"] = "ising"
    J: float = 1.0
    h: float = 1.0


class HeisenbergConfig(SpinHamiltonianConfig):
    kind: Literal["heisenberg"] = "heisenberg"
    J: float = 1.0


class XXZConfig(SpinHamiltonianConfig):
    kind: Literal["xxz"] = "xxz"
    J: float = 1.0
    Delta: float = 1.0


class J1J2Config(SpinHamiltonianConfig):
    kind: Literal["j1j2"] = "j1j2"
    J1: float = 1.0
    J2: float = 0.5


class PauliConfig(SpinHamiltonianConfig):
    """User-written sums of Pauli strings: ``terms = [[coefficient, "XX", [i, j]], ...]``."""

    kind: Literal["pauli"] = "pauli"
    terms: list | None = None

    @model_validator(mode="after")
    def _needs_terms(self):
        if not self.terms:
            raise ValueError("kind 'pauli' needs 'terms = [[coefficient, \"XX\", [i, j]], ...]'")
        return self

    @field_validator("terms")
    @classmethod
    def _valid_terms(cls, v):
        if v is not None:
            pauli_terms_from_spec(v)  # a ValueError names the bad entry
        return v

    def parameters(self) -> dict:
        return {"terms": pauli_terms_from_spec(self.terms)}


@HAMILTONIANS.register(
    "ising",
    config=IsingConfig,
    units="Pauli matrices: H = -J sum_<ij> Z_i Z_j - h sum_i X_i",
    short_units="Pauli",
    conserves_sz=False,
    sign_rule=lambda section: "positive" if section.h >= 0 else None,
)
def ising(lattice, J: float = 1.0, h: float = 1.0) -> PauliSum:
    """Transverse-field Ising model H = −J Σ⟨ij⟩ σᶻ_iσᶻ_j − h Σ_i σˣ_i (Pauli; critical at h = J in 1D)."""
    terms = [(-J, "ZZ", (i, j)) for i, j in lattice.bonds(1)]
    terms += [(-h, "X", (i,)) for i in range(lattice.n_sites)]
    return PauliSum(lattice.n_sites, terms, name="ising")


def exchange_sign_rule(section) -> str:
    """The ground state's sign of an exchange J (SˣSˣ + SʸSʸ + ...): the Marshall sign for J > 0
    (Marshall–Lieb–Mattis, bipartite lattices), positive for J ≤ 0 (no positive off-diagonal element)."""
    return "marshall" if section.J > 0 else "positive"


def _exchange_terms(bonds, J: float, delta: float = 1.0) -> list[tuple]:
    """J (SˣSˣ + SʸSʸ + Δ SᶻSᶻ) on each bond, with S = σ/2."""
    out = []
    for i, j in bonds:
        out += [(J / 4, "XX", (i, j)), (J / 4, "YY", (i, j)), (J * delta / 4, "ZZ", (i, j))]
    return out


@HAMILTONIANS.register(
    "heisenberg",
    config=HeisenbergConfig,
    units="spin-1/2 (S = sigma/2): H = J sum_<ij> S_i.S_j",
    short_units="S = σ/2",
    conserves_sz=True,
    sign_rule=exchange_sign_rule,
)
def heisenberg(lattice, J: float = 1.0) -> PauliSum:
    """Heisenberg model H = J Σ⟨ij⟩ S_i·S_j, S = σ/2 (antiferromagnetic for J > 0)."""
    return PauliSum(lattice.n_sites, _exchange_terms(lattice.bonds(1), J), name="heisenberg")


@HAMILTONIANS.register(
    "xxz",
    config=XXZConfig,
    units="spin-1/2 (S = sigma/2): H = J sum_<ij> (Sx Sx + Sy Sy + Delta Sz Sz)",
    short_units="S = σ/2",
    conserves_sz=True,
    sign_rule=exchange_sign_rule,
)
def xxz(lattice, J: float = 1.0, Delta: float = 1.0) -> PauliSum:
    """XXZ model H = J Σ⟨ij⟩ (SˣSˣ + SʸSʸ + Δ SᶻSᶻ), S = σ/2."""
    return PauliSum(lattice.n_sites, _exchange_terms(lattice.bonds(1), J, Delta), name="xxz")


@HAMILTONIANS.register(
    "j1j2",
    config=J1J2Config,
    units="spin-1/2 (S = sigma/2): H = J1 sum_<ij> S_i.S_j + J2 sum_<<ij>> S_i.S_j",
    short_units="S = σ/2",
    conserves_sz=True,
    exchange_shells=(1, 2),
)
def j1j2(lattice, J1: float = 1.0, J2: float = 0.5) -> PauliSum:
    """J1-J2 model H = J1 Σ⟨ij⟩ S_i·S_j + J2 Σ⟨⟨ij⟩⟩ S_i·S_j, S = σ/2 (bonds by distance shell)."""
    terms = _exchange_terms(lattice.bonds(1), J1) + _exchange_terms(lattice.bonds(2), J2)
    return PauliSum(lattice.n_sites, terms, name="j1j2")


@HAMILTONIANS.register(
    "pauli",
    config=PauliConfig,
    units="Pauli matrices, user coefficients: H = sum_t c_t P_t",
    short_units="Pauli",
    conserves_sz=None,
)
def pauli(lattice, terms) -> PauliSum:
    """User model: H = Σ_t c_t P_t with terms ``(c, "XZ", (i, j))`` on the lattice's sites."""
    n = lattice.n_sites
    for i, (_, ops, sites) in enumerate(terms):
        outside = [s for s in sites if not 0 <= int(s) < n]
        if outside:
            raise ValueError(
                f"terms: entry {i}, {ops!r} on {list(sites)}: site {outside[0]} is outside the lattice (0..{n - 1})"
            )
    return PauliSum(n, terms, name="pauli")


__all__ = [
    "ising",
    "heisenberg",
    "xxz",
    "j1j2",
    "pauli",
    "IsingConfig",
    "HeisenbergConfig",
    "XXZConfig",
    "J1J2Config",
    "PauliConfig",
    "SpinHamiltonianConfig",
]
