"""Exact time evolution and thermal averages of small spin systems: the references of time-dependent VMC.

* :func:`product_state` — |+…+⟩, |−…−⟩, |↑…↑⟩, |↓…↓⟩ or the Néel state as a normalized vector.
* :func:`evolve` — ψ(t) = e^{−iHt}ψ0 (real time) or e^{−τH}ψ0/‖·‖ (imaginary time) at the requested times,
  by scipy's ``expm_multiply`` on the sparse H, one interval after the other.
* :func:`exact_dynamics` — ⟨H⟩ and observables (Pauli sums, e.g. :mod:`nqs.operators.observables`) along it.
* :func:`thermal_averages` — energy and specific heat per site at temperatures T from the full spectrum.
* :func:`purified_thermal` — the same numbers from the purification |Φ(β)⟩ = e^{−βH/2}⊗1 |Φ⟩ of
  :func:`bell_pairs_state` on 2N spins (system sites 0..N−1, ancillas N..2N−1), as a purified
  (doubled-space) time evolution computes them; :func:`doubled` is H on the system half.

Units are the operator's (:mod:`nqs.conventions`; ``ising`` in Pauli matrices, ``heisenberg`` in S = σ/2),
time in inverse energy units (ħ = 1), temperature in energy units (k_B = 1).  Vectors are in nqs's basis
order: bit i of the code set ⇔ σ_i = ↑, sorted by code (the sector's codes when ``hilbert`` fixes total_sz).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..conventions import ANCILLA_BASES
from ..hilbert import SpinHilbert
from ..operators.pauli import PauliSum
from .trotter import neel_state

__all__ = [
    "PRODUCT_STATES",
    "MAX_THERMAL_STATES",
    "product_state",
    "evolve",
    "exact_dynamics",
    "thermal_averages",
    "bell_pairs_state",
    "doubled",
    "purified_thermal",
]

#: Names :func:`product_state` knows.
PRODUCT_STATES = ("plus", "minus", "up", "down", "neel")
#: :func:`thermal_averages` diagonalizes densely up to this many states (14 spins).
MAX_THERMAL_STATES = 1 << 14
#: Imaginary-time steps are cut so that no amplitude grows by more than e^{2·this} between normalizations.
_MAX_LOG_GROWTH = 100.0


def _restrict(vec: np.ndarray, hilbert, what: str) -> np.ndarray:
    """A full-space vector (2**N,) on ``hilbert``'s sector; ValueError when it has weight outside it."""
    if hilbert is None or hilbert.total_sz is None:
        return vec
    inside = vec[hilbert.all_codes()]
    outside = max(float(np.linalg.norm(vec)) ** 2 - float(np.linalg.norm(inside)) ** 2, 0.0)
    if outside > 1e-12 * max(float(np.linalg.norm(vec)) ** 2, 1e-300):
        raise ValueError(f"{what} does not lie in the sector total_sz = {hilbert.total_sz:g}")
    return inside


def product_state(kind: str, n_sites: int, lattice=None, hilbert=None) -> np.ndarray:
    """The normalized product state ``kind`` of ``n_sites`` spins, in code order.

    ``"plus"``/``"minus"``: σˣ = +1/−1 on every site, |±⟩ = (|↑⟩ ± |↓⟩)/√2; ``"up"``/``"down"``: σᶻ = +1/−1
    on every site; ``"neel"``: ↑ on sublattice 0 and ↓ on sublattice 1 of ``lattice`` (bipartite).
    A full-space vector (2**N,), or its components on ``hilbert``'s sector when that fixes total_sz
    (a ValueError when the state does not lie in the sector).
    """
    if kind not in PRODUCT_STATES:
        raise ValueError(f"unknown product state {kind!r}; valid are {', '.join(PRODUCT_STATES)}")
    n = int(n_sites)
    if lattice is not None and lattice.n_sites != n:
        raise ValueError(f"{lattice.describe()} has {lattice.n_sites} sites, not {n}")
    if hilbert is not None and hilbert.n_sites != n:
        raise ValueError(f"the Hilbert space has {hilbert.n_sites} sites, not {n}")
    dim = 1 << n
    if kind in ("plus", "minus"):
        vec = np.full(dim, dim**-0.5)
        if kind == "minus":  # (−1)^{number of ↓}
            n_up = SpinHilbert(n).codes_to_states(np.arange(dim)).clip(0).sum(-1)
            vec = vec * (-1.0) ** (n - n_up)
    else:
        if kind == "neel":
            if lattice is None:
                raise ValueError("the Néel state needs the lattice (its sublattices)")
            code = int(SpinHilbert(n).states_to_codes(neel_state(lattice)[None, :])[0])
        else:
            code = dim - 1 if kind == "up" else 0
        vec = np.zeros(dim)
        vec[code] = 1.0
    return _restrict(vec, hilbert, f"the product state {kind!r}")


def _prepare(operator, psi0, hilbert):
    """(sparse H, hilbert, ψ0 on its sector as complex128)."""
    hilbert = SpinHilbert(operator.n_sites) if hilbert is None else hilbert
    if hilbert.n_sites != operator.n_sites:
        raise ValueError(f"the operator acts on {operator.n_sites} sites, the Hilbert space has {hilbert.n_sites}")
    psi = np.asarray(psi0, dtype=np.complex128).reshape(-1)
    if len(psi) == 1 << hilbert.n_sites and len(psi) != hilbert.n_states:
        psi = _restrict(psi, hilbert, "psi0")
    if len(psi) != hilbert.n_states:
        raise ValueError(f"psi0 has {len(psi)} components; {hilbert.describe()} needs {hilbert.n_states}")
    norm = float(np.linalg.norm(psi))
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("psi0 must be a nonzero finite vector")
    return operator.to_sparse(hilbert), hilbert, psi / norm


def _check_times(times) -> np.ndarray:
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise ValueError("times must be a 1-d list of finite numbers")
    if np.any(t < 0) or np.any(np.diff(t) < 0):
        raise ValueError(f"times must be sorted and >= 0, got {t.tolist()}")
    return t


def _evolve_sparse(H, psi: np.ndarray, times: np.ndarray, imaginary: bool) -> Iterator[np.ndarray]:
    bound = max(float(abs(H).sum(axis=1).max()), 1e-300)  # ≥ every |eigenvalue| of H
    eye = sp.identity(H.shape[0], dtype=H.dtype, format="csr")
    now = 0.0
    for t in times:
        dt = float(t - now)
        if imaginary:
            # e^{−dt(H − ⟨H⟩)} in pieces that grow no amplitude beyond e^{2·_MAX_LOG_GROWTH}, normalized after each
            n_sub = max(1, int(np.ceil(dt * bound / _MAX_LOG_GROWTH)))
            for _ in range(n_sub if dt > 0 else 0):
                e = float(np.real(np.vdot(psi, H @ psi)))
                psi = spla.expm_multiply((-dt / n_sub) * (H - e * eye), psi)
                psi = psi / np.linalg.norm(psi)
        elif dt > 0:
            psi = spla.expm_multiply((-1j * dt) * H, psi)
        now = float(t)
        yield psi


def evolve(operator, psi0, times, hilbert=None, imaginary: bool = False) -> Iterator[np.ndarray]:
    """The states at ``times`` (sorted, ≥ 0) of ψ0 evolved under ``operator``, one by one (a generator).

    Real time: ψ(t) = e^{−iHt}ψ0.  Imaginary time: ψ(τ) = e^{−τH}ψ0/‖e^{−τH}ψ0‖.  ``psi0`` (normalized
    here) lives on ``hilbert`` (default: the full space of ``operator.n_sites`` spins); a full-space vector
    is restricted to a fixed-total_sz sector.  Each interval t_{k−1} → t_k (t_0 = 0) is one
    ``scipy.sparse.linalg.expm_multiply`` on the sparse H; ``np.array(list(evolve(...)))`` stacks them.
    """
    H, _, psi = _prepare(operator, psi0, hilbert)
    yield from _evolve_sparse(H, psi, _check_times(times), imaginary)


def exact_dynamics(
    operator,
    psi0,
    times,
    observables: Mapping[str, PauliSum] | None = None,
    hilbert=None,
    imaginary: bool = False,
) -> dict[str, np.ndarray]:
    """⟨H⟩ and ⟨O⟩ (real parts) along :func:`evolve`, one state in memory at a time.

    Returns ``{"time": times, "energy": ⟨H⟩(t), name: ⟨O_name⟩(t) for each observable}``.
    """
    H, hilbert, psi = _prepare(operator, psi0, hilbert)
    t = _check_times(times)
    observables = dict(observables or {})
    mats = {}
    for name, obs in observables.items():
        if name in ("time", "energy"):
            raise ValueError(f"observable name {name!r} is taken by the result's own column")
        if obs.n_sites != hilbert.n_sites:
            raise ValueError(f"observable {name!r} acts on {obs.n_sites} sites, the system has {hilbert.n_sites}")
        try:
            mats[name] = obs.to_sparse(hilbert)
        except ValueError as e:
            raise ValueError(f"observable {name!r}: {e}") from e
    out = {"time": t, "energy": np.empty(len(t))} | {name: np.empty(len(t)) for name in mats}
    for k, psi_t in enumerate(_evolve_sparse(H, psi, t, imaginary)):
        out["energy"][k] = np.real(np.vdot(psi_t, H @ psi_t))
        for name, m in mats.items():
            out[name][k] = np.real(np.vdot(psi_t, m @ psi_t))
    return out


def _moments(w: np.ndarray, beta: float) -> tuple[float, float]:
    """⟨H⟩ and ⟨H²⟩ − ⟨H⟩² of the Gibbs weights e^{−β(w − w_min)} on the spectrum ``w``."""
    p = np.exp(-beta * (w - w.min()))
    p /= p.sum()
    e = float(p @ w)
    return e, float(p @ (w - e) ** 2)


def thermal_averages(operator, hilbert, temperatures: Sequence[float], n_sites: int | None = None) -> dict:
    """Energy and specific heat per site at each temperature T > 0 (k_B = 1, T in H's energy units).

    From the whole spectrum of H on ``hilbert`` (None: all 2**N states; a fixed total_sz gives the
    averages within that sector), by dense ``eigvalsh`` up to :data:`MAX_THERMAL_STATES` states.
    Returns ``{"temperature", "energy_per_site": ⟨H⟩_T/N, "specific_heat_per_site": β²(⟨H²⟩ − ⟨H⟩²)/N}``,
    N = ``n_sites`` (None: ``operator.n_sites``); Gibbs weights are taken relative to the ground energy.
    """
    hilbert = SpinHilbert(operator.n_sites) if hilbert is None else hilbert
    n = operator.n_sites if n_sites is None else int(n_sites)
    T = np.atleast_1d(np.asarray(temperatures, dtype=float))
    if T.ndim != 1 or not np.all(np.isfinite(T)) or np.any(T <= 0):
        raise ValueError(f"temperatures must be finite and > 0, got {T.tolist()}")
    if hilbert.n_states > MAX_THERMAL_STATES:
        raise ValueError(
            f"thermal averages diagonalize {hilbert.describe()} densely; the limit is {MAX_THERMAL_STATES} states"
        )
    w = np.linalg.eigvalsh(operator.to_dense(hilbert))
    moments = np.array([_moments(w, 1.0 / t) for t in T]).reshape(-1, 2)
    return {
        "temperature": T,
        "energy_per_site": moments[:, 0] / n,
        "specific_heat_per_site": moments[:, 1] / T**2 / n,
    }


def bell_pairs_state(n_sites: int, ancilla: str = "x") -> np.ndarray:
    """|Φ⟩ = Π_i (|↑_i ↑_{N+i}⟩ + |↓_i ↓_{N+i}⟩)/√2 on 2N spins, (2**(2N),) in code order.

    The system sites 0..N−1 are written in σᶻ; the ancillas N..2N−1 in ``ancilla``'s basis: ``"x"`` (nqs's
    purifications, :mod:`nqs.conventions`; bit set ⇔ |+⟩), where a pair has the amplitudes
    ½·(−1)^{[s=↓][x=−]}, or ``"z"``, where only the equal pairs have weight (2^{−N/2} each).  Tracing out the
    ancillas leaves the infinite-temperature state 1/2^N on the system in either basis.
    """
    n = int(n_sites)
    if ancilla not in ANCILLA_BASES:
        raise ValueError(f"ancilla must be one of {ANCILLA_BASES}, got {ancilla!r}")
    codes = np.arange(1 << n, dtype=np.int64)
    if ancilla == "z":
        vec = np.zeros(1 << (2 * n))
        vec[codes | (codes << n)] = 2.0 ** (-n / 2)
        return vec
    sys_down = (~codes[None, :]) & ((1 << n) - 1)  # columns: system code; bit set ⇔ s = ↓
    anc_minus = (~codes[:, None]) & ((1 << n) - 1)  # rows: ancilla code; bit set ⇔ x = −
    both = sys_down & anc_minus
    parity = np.array([bin(int(c)).count("1") & 1 for c in range(1 << n)])[both]
    return (0.5**n * (1.0 - 2.0 * parity)).reshape(-1)


def doubled(operator, n_sites: int | None = None) -> PauliSum:
    """``operator`` ⊗ 1: the same terms on the system sites 0..N−1 of 2N spins (ancillas N..2N−1)."""
    n = operator.n_sites if n_sites is None else int(n_sites)
    if operator.n_sites != n:
        raise ValueError(f"the operator acts on {operator.n_sites} sites, not {n}")
    return PauliSum(2 * n, operator.terms, name=operator.name)


def purified_thermal(operator, n_sites: int | None, betas: Sequence[float], ancilla: str = "x") -> dict:
    """Energy and specific heat per site at inverse temperatures β ≥ 0 from the purification.

    |Φ(β)⟩ ∝ (e^{−βH/2} ⊗ 1)|Φ⟩ (:func:`bell_pairs_state` with the ancillas in ``ancilla``'s basis, imaginary
    time β/2 by :func:`evolve`), whose system half is e^{−βH}/Z; then ⟨H⟩ and ⟨H²⟩ − ⟨H⟩² = ‖(H − ⟨H⟩)Φ(β)‖²
    in that state.  Returns
    ``{"beta", "energy_per_site", "specific_heat_per_site": β²(⟨H²⟩ − ⟨H⟩²)/N}`` (N = ``n_sites``, None:
    ``operator.n_sites``); equal to :func:`thermal_averages` at T = 1/β on the full space.
    """
    n = operator.n_sites if n_sites is None else int(n_sites)
    b = np.atleast_1d(np.asarray(betas, dtype=float))
    if b.ndim != 1 or not np.all(np.isfinite(b)) or np.any(b < 0):
        raise ValueError(f"betas must be finite and >= 0, got {b.tolist()}")
    H2 = doubled(operator, n)
    hilbert = SpinHilbert(2 * n)
    H = H2.to_sparse(hilbert)
    order = np.argsort(b, kind="stable")
    e, var = np.empty(len(b)), np.empty(len(b))
    states = _evolve_sparse(H, bell_pairs_state(n, ancilla).astype(np.complex128), b[order] / 2, imaginary=True)
    for k, phi in zip(order, states, strict=True):
        hphi = H @ phi
        e[k] = np.real(np.vdot(phi, hphi))
        var[k] = np.linalg.norm(hphi - e[k] * phi) ** 2
    return {"beta": b, "energy_per_site": e / n, "specific_heat_per_site": b**2 * var / n}
