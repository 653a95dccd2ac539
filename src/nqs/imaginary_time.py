"""Exact imaginary-time evolution e^{−τH}ψ0 written as a deep Boltzmann machine, Trotter step by step.

Follows the design note ``dbm_construction.md`` (after Carleo, Nomura & Imada, Nat. Commun. 9,
5322 (2018)).  Units are nqs's (:mod:`nqs.conventions`):

* ``ising``: H = −J Σ⟨ij⟩ σᶻ_iσᶻ_j − h Σ_i σˣ_i (Pauli matrices);
* ``heisenberg``: H = J Σ⟨ij⟩ S_i·S_j with S = σ/2.

Constructors (exact: the DBM amplitudes equal the Trotterised vector, constants included):

* :func:`tfim_dbm` — ψ_n = (U_zz U_x)^n ψ0 with U_zz = e^{δτJ Σσᶻσᶻ}, U_x = e^{δτh Σσˣ},
  ψ0 = |+…+⟩ (all-ones vector) or an nqs RBM; any lattice (bonds = ``lattice.bonds(1)``).
* :func:`heisenberg_dbm` — ψ_n = (U_odd U_even)^n |Néel⟩ with a checkerboard splitting of the
  bonds into matchings; the Marshall sign (J > 0) is carried by imaginary visible biases.

Exact energies of a DBM (:func:`exact_energy`), the joint-chain Monte Carlo estimator (:func:`mc_energy`) and a
table helper (:func:`energy_vs_tau`); the dense Trotter references they are checked against live in
:mod:`nqs.exact.trotter` (and are re-exported here).

Basis order of every dense vector: nqs's (code bit i set ⇔ σ_i = ↑, sorted by code; i.e.
``SpinHilbert(N).all_states()``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .exact.trotter import (
    _rbm_psi0,
    _sector_vector,
    checkerboard_groups,
    exact_tau_energy,
    heisenberg_bond_matrix,
    heisenberg_trotter_reference,
    neel_state,
    rbm_vector,
    tfim_trotter_reference,
    trotter_reference,
    vector_energy,
)
from .hilbert import SpinHilbert
from .models.dbm import DBM, LN2, decompose_coupling, log_2cosh_np
from .sampling import LocalRule
from .sampling.joint import JointMetropolisSampler, joint_local_energies
from .stats import Stats, statistics

__all__ = [
    "tfim_dbm",
    "heisenberg_dbm",
    "checkerboard_groups",
    "neel_state",
    "trotter_reference",
    "tfim_trotter_reference",
    "heisenberg_trotter_reference",
    "heisenberg_bond_matrix",
    "rbm_vector",
    "exact_energy",
    "vector_energy",
    "exact_tau_energy",
    "mc_energy",
    "energy_vs_tau",
]


# --------------------------------------------------------------------------------- builder
class _Clamped(NamedTuple):
    """A spin fixed to ``value`` = ±1 (a clamped slice, e.g. the Néel state)."""

    value: int


Spin = int | _Clamped  # a variable index (visible 0..N-1, deep N..) or a clamped spin


class _Builder:
    """Accumulates a DBM unit by unit: hidden units with their couplings, deep spins, κ.

    Variables are numbered visible first (0..N−1), then deep spins in creation order; couplings
    to clamped spins become hidden biases, and a hidden unit that touches no variable is folded
    into κ as ln(2 cosh b).
    """

    def __init__(self, n_visible: int):
        self.n_visible = n_visible
        self.a = np.zeros(n_visible, dtype=np.complex128)
        self.c: list[complex] = []
        self.units: list[tuple[complex, dict[int, complex]]] = []
        self.kappa = 0j

    def new_deep(self, bias: complex = 0.0) -> int:
        self.c.append(complex(bias))
        return self.n_visible + len(self.c) - 1

    def add_unit(self, bias: complex, terms: Sequence[tuple[Spin, complex]]) -> None:
        bias = complex(bias)
        weights: dict[int, complex] = {}
        for spin, w in terms:
            if isinstance(spin, _Clamped):
                bias += complex(w) * spin.value
            else:
                weights[int(spin)] = weights.get(int(spin), 0j) + complex(w)
        if not weights:
            self.kappa += complex(log_2cosh_np(bias))
            return
        self.units.append((bias, weights))

    def build(self, description: str) -> tuple[DBM, dict]:
        nv, nd, nh = self.n_visible, len(self.c), len(self.units)
        W = np.zeros((nv, nh), dtype=np.complex128)
        U = np.zeros((nd, nh), dtype=np.complex128)
        b = np.zeros(nh, dtype=np.complex128)
        for k, (bias, weights) in enumerate(self.units):
            b[k] = bias
            for v, w in weights.items():
                if v < nv:
                    W[v, k] += w
                else:
                    U[v - nv, k] += w
        params = {
            "a": self.a.copy(),
            "b": b,
            "c": np.asarray(self.c, dtype=np.complex128).reshape(nd),
            "W": W,
            "U": U,
            "kappa": np.asarray(self.kappa),
        }
        is_real = all(np.all(np.asarray(v).imag == 0) for v in params.values())
        params = {k: jnp.asarray(v.real if is_real else v) for k, v in params.items()}
        dbm = DBM(n_visible=nv, n_hidden=nh, n_deep=nd, complex_params=not is_real, description=description)
        return dbm, params


# --------------------------------------------------------------------------------- TFIM
def tfim_dbm(
    lattice, J: float = 1.0, h: float = 1.0, dtau: float = 0.1, n_steps: int = 1, psi0: str | dict = "plus"
) -> tuple[DBM, dict]:
    """The DBM of ψ_n = (U_zz U_x)^n ψ0 for H = −J Σ⟨ij⟩ σᶻσᶻ − h Σ σˣ (Pauli), exactly.

    U_zz = e^{δτJ Σ_⟨ij⟩ σᶻ_iσᶻ_j} acts last; U_x = e^{δτh Σ σˣ}.  Sequential layout (note §1):
    time slices s^{(t)}, t = 0…n, with s^{(n)} = σ (visible); ⟨s'|e^{δτ|h|σˣ}|s⟩ = A e^{B s s'} with

        B = −½ ln tanh(δτ|h|),   ln A = ½ ln(½ sinh 2δτ|h|);

    every coupling becomes one hidden unit through :func:`decompose_coupling`:

    * a *bond unit* per bond (i, j) and slice t = 1…n: weights W_J, sgn(J) W_J on s^{(t)}_i, s^{(t)}_j,
      W_J = ½ arcosh e^{2δτ|J|}, κ −= ln 2 + δτ|J|;
    * a *link unit* per site i and link t: weights W_B on s^{(t)}_i and s^{(t−1)}_i,
      W_B = ½ arcosh e^{2B}, κ += ln A − ln 2 − B.

    ``psi0 = "plus"`` (the unnormalised all-ones vector): U_x|+⟩ = e^{δτ|h|L}|+⟩, so slice 0 and the
    t = 1 links collapse into κ += δτ|h|L; deep units = slices 1…n−1 (N_d = (n−1)L,
    N_h = n N_b + (n−1)L, all biases zero).
    ``psi0 = {"a", "b", "W"}`` (nqs RBM, log ψ0 = a·s + Σ_m ln cosh(b_m + Σ_i s_i W_im), no factor 2):
    slice 0 becomes L deep units with biases a, the M RBM units join h (biases b, weights W to
    slice 0), κ −= M ln 2 for the missing factors 2, and the t = 1 links are kept
    (N_d = nL, N_h = n N_b + nL + M).

    h < 0 uses the gauge e^{δτhσˣ} = σᶻ e^{δτ|h|σˣ} σᶻ: ψ_n = P (U_zz U_x(|h|))^n P ψ0 with
    P = Π σᶻ_i, i.e. ln P(σ) = iπL/2 − (iπ/2) Σσ_i on slice 0 and on the visible layer (complex
    parameters).  h = 0 is rejected (no transverse links).

    Index layout: deep spins slice by slice (slice-major, site-minor); hidden units per slice:
    (RBM units), then for t = 1…n the bond units of slice t followed by the link units (t−1 → t).

    Returns ``(dbm, params)``; params are float64 unless complex numbers are needed.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if not dtau > 0:
        raise ValueError(f"dtau must be > 0, got {dtau}")
    if h == 0:
        raise ValueError("tfim_dbm needs h != 0 (for h = 0, e^{-tau H} is a Jastrow factor)")
    L = lattice.n_sites
    bonds = np.asarray(lattice.bonds(1)).reshape(-1, 2)
    x = dtau * abs(h)
    B = -0.5 * math.log(math.tanh(x))
    lnA = 0.5 * math.log(0.5 * math.sinh(2 * x))
    lcJ, wJ1, wJ2 = (float(v) for v in decompose_coupling(dtau * J))
    lcB, wB, _ = (float(v) for v in decompose_coupling(B))
    gauge = h < 0
    bld = _Builder(L)
    plus = isinstance(psi0, str)
    if plus and psi0 != "plus":
        raise ValueError(f'psi0 must be "plus" or an nqs RBM parameter dict, got {psi0!r}')

    prev: list[Spin] | None
    if plus and not gauge:
        bld.kappa += x * L
        prev = None
    else:
        rbm = {"a": np.zeros(L), "b": np.zeros(0), "W": np.zeros((L, 0))} if plus else _rbm_psi0(psi0, L)
        a0 = rbm["a"].astype(np.complex128)
        if gauge:
            a0 = a0 - 0.5j * math.pi
            bld.kappa += 0.5j * math.pi * L
        prev = [bld.new_deep(a0[i]) for i in range(L)]
        M = rbm["W"].shape[1]
        for m in range(M):
            bld.add_unit(rbm["b"][m], [(prev[i], rbm["W"][i, m]) for i in range(L)])
        bld.kappa -= M * LN2
    for t in range(1, n_steps + 1):
        cur: list[Spin] = list(range(L)) if t == n_steps else [bld.new_deep() for _ in range(L)]
        for i, j in bonds:
            bld.add_unit(0.0, [(cur[i], wJ1), (cur[j], wJ2)])
            bld.kappa -= lcJ
        if prev is not None:
            for i in range(L):
                bld.add_unit(0.0, [(cur[i], wB), (prev[i], wB)])
                bld.kappa += lnA - lcB
        prev = cur
    if gauge:
        bld.a -= 0.5j * math.pi
        bld.kappa += 0.5j * math.pi * L
    src = "|+>" if plus else "RBM"
    return bld.build(f"TFIM imaginary-time DBM (n={n_steps}, dtau={dtau:g}, psi0={src})")


# --------------------------------------------------------------------------------- Heisenberg
def _heisenberg_bond_constants(x: float) -> dict[str, float]:
    """For one bond factor e^{−x S_i·S_j} (x = δτJ): ln a, ln b, ln c (rotated, c > 0), α, ln K, u.

    a = e^{−x/4} (parallel), b = e^{x/4} cosh(x/2) (antiparallel, unchanged),
    c = e^{x/4} sinh(|x|/2) (antiparallel, exchanged; the Marshall rotation makes it > 0 for
    x > 0, and for x < 0 it already is); e^{2α} = a/c, K = a e^{−α}/2, cosh 4u = b/c = coth(|x|/2).
    """
    la = -x / 4
    lb = x / 4 + math.log(math.cosh(x / 2))
    lc = x / 4 + math.log(math.sinh(abs(x) / 2))
    alpha = 0.5 * (la - lc)
    lnK = la - alpha - LN2
    # 4u = arcosh(e^{2 V_u}) with V_u = ½ ln(b/c) = ½ ln coth(|x|/2) > 0, i.e. u = W1(V_u)/2
    Vu = 0.5 * (lb - lc)
    u = 0.5 * float(decompose_coupling(Vu)[1])
    return {"la": la, "lb": lb, "lc": lc, "alpha": alpha, "lnK": lnK, "u": u}


def heisenberg_dbm(
    lattice, J: float = 1.0, dtau: float = 0.1, n_steps: int = 1, bond_groups: Sequence[np.ndarray] | None = None
) -> tuple[DBM, dict]:
    """The DBM of ψ_n = (U_{G−1} ⋯ U_1 U_0)^n |Néel⟩, H = J Σ⟨ij⟩ S_i·S_j (S = σ/2), exactly.

    U_g = Π_{(ij) ∈ group g} e^{−δτJ S_i·S_j}; the default groups (:func:`checkerboard_groups`) give
    (U_odd U_even)^n on an even chain.  Néel: σ_i = +1 on sublattice 0 (:func:`neel_state`).

    Each bond factor, on a half step s (input slice s^{(s−1)}, output s^{(s)}), in the Marshall-rotated
    basis, is T = K e^{α s_i s_j} 2cosh(uQ) δ_{D,0} with Q = s_i − s_j + s'_i − s'_j and
    D = s_i + s_j − s'_i − s'_j (note §2, constants in :func:`_heisenberg_bond_constants`).  Four
    hidden units per bond and half step:

    * u·Q;
    * the (D) unit of α s_i s_j (folded into κ when both input spins are clamped Néel spins);
    * iπ/4·D and iπ/8·D, since ¼ Σ_{h1,h2} e^{i(π/4)h1 D + i(π/8)h2 D} = cos(πD/4) cos(πD/8) = δ_{D,0};

    and κ += ln K − ln 4 − ln C_α per bond and half step.  A site gets a new slice spin each time
    a bond touches it; the last one is visible, the earlier ones deep, slice 0 is clamped.  For an
    even periodic chain: N_h = 4nL − L/2, N_d = (2n−1)L.

    Marshall sign (J > 0, bipartite lattice): ψ = M ψ̃ with M(σ) = (−1)^{#↑ on sublattice 1}
    = Π_{i∈1} e^{iπ/2} e^{iπσ_i/2}, i.e. visible biases a_i = iπ/2 on sublattice 1 and κ += iπ/2
    per such site.  J < 0 needs no rotation.  Every site must belong to some bond.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if not dtau > 0 or J == 0:
        raise ValueError("heisenberg_dbm needs dtau > 0 and J != 0")
    L = lattice.n_sites
    groups = [
        np.asarray(g, dtype=np.int64).reshape(-1, 2)
        for g in (checkerboard_groups(lattice) if bond_groups is None else bond_groups)
    ]
    for g in groups:
        if len(np.unique(g)) != 2 * len(g):
            raise ValueError("each bond group must be a matching (no site twice)")
    neel = neel_state(lattice)
    sub = np.asarray(lattice.sublattice)
    sequence = [g for _ in range(n_steps) for g in groups]
    last_touch = np.full(L, -1)
    for s, g in enumerate(sequence):
        last_touch[g.reshape(-1)] = s
    if np.any(last_touch < 0):
        raise ValueError("every site must belong to some bond for heisenberg_dbm")
    x = dtau * J
    k = _heisenberg_bond_constants(x)
    lcA, wA1, wA2 = (float(v) for v in decompose_coupling(k["alpha"]))
    u = k["u"]
    bld = _Builder(L)
    slice_: list[Spin] = [_Clamped(int(v)) for v in neel]
    for s, g in enumerate(sequence):
        for i, j in g:
            si, sj = slice_[i], slice_[j]
            ni = int(i) if last_touch[i] == s else bld.new_deep()
            nj = int(j) if last_touch[j] == s else bld.new_deep()
            if isinstance(si, _Clamped) and isinstance(sj, _Clamped):
                bld.kappa += k["alpha"] * si.value * sj.value
            else:
                bld.add_unit(0.0, [(si, wA1), (sj, wA2)])
                bld.kappa -= lcA
            bld.add_unit(0.0, [(si, u), (sj, -u), (ni, u), (nj, -u)])
            for phase in (math.pi / 4, math.pi / 8):
                w = 1j * phase
                bld.add_unit(0.0, [(si, w), (sj, w), (ni, -w), (nj, -w)])
            bld.kappa += k["lnK"] - 2 * LN2
            slice_[i], slice_[j] = ni, nj
    if J > 0:  # Marshall sign; neel_state() has checked that the lattice is bipartite
        ones = sub == 1
        bld.a[ones] += 0.5j * math.pi
        bld.kappa += 0.5j * math.pi * int(ones.sum())
    return bld.build(f"Heisenberg imaginary-time DBM (n={n_steps}, dtau={dtau:g}, psi0=Neel)")


# --------------------------------------------------------------------------------- exact energies
def exact_energy(dbm: DBM, params, operator, hilbert, method: str = "contract") -> float:
    """⟨ψ|H|ψ⟩/⟨ψ|ψ⟩ of the DBM state, exactly (small N).

    ``method="contract"``: the full vector from :meth:`DBM.amplitudes` (exact elimination of d);
    ``method="enumerate"``: log ψ(σ) = log Σ_d φ(σ, d) by enumeration of σ and d
    (:meth:`DBM.log_psi_exact`, N_d ≤ 24).  ``hilbert`` may fix total_sz (the vector is restricted).
    """
    if method == "contract":
        vec, _ = dbm.amplitudes(params)
        v = _sector_vector(vec, hilbert)
    elif method == "enumerate":
        states = jnp.asarray(hilbert.all_states())
        lp = np.asarray(jax.jit(jax.vmap(dbm.log_psi_exact, in_axes=(None, 0)))(params, states))
        v = np.exp(lp - lp.real.max())
    else:
        raise ValueError(f"method must be 'contract' or 'enumerate', got {method!r}")
    H = operator.to_sparse(hilbert)
    return float(np.real(np.vdot(v, H @ v)) / np.real(np.vdot(v, v)))


# --------------------------------------------------------------------------------- Monte Carlo
@functools.lru_cache(maxsize=16)
def _mc_runner(dbm: DBM, operator, n_chains: int, n_sweeps: int, n_discard: int):
    """Jitted ``run(params, key) -> (num, den)`` (n_chains, n_sweeps) for (dbm, operator): the joint chain of
    :class:`~nqs.sampling.joint.JointMetropolisSampler` (single-spin flips of σ, heat bath over d and d'),
    the numerator ½(w E_loc(σ,d) + w* E_loc(σ,d')) and Re w per recorded sample."""
    nv = dbm.n_visible
    sampler = JointMetropolisSampler(
        SpinHilbert(nv),
        LocalRule(nv),
        n_chains=n_chains,
        n_samples=n_chains * n_sweeps,
        n_discard=n_discard,
        deep_samples=1,
    )

    @jax.jit
    def run(params, key):
        js, _ = sampler.sample(dbm, params, sampler.init_state(key, dbm.n_deep))
        sigma, deep = js.sigma, js.deep[:, :, 0]  # (C, P, N), (C, P, 2, N_d)
        e = joint_local_energies(dbm, params, operator, sigma, deep)  # (C, P, 2)
        log_phi = jax.vmap(dbm.log_phi, in_axes=(None, None, 0))
        lp = jax.vmap(jax.vmap(log_phi, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))(params, sigma, deep)
        w = jnp.exp(1j * (jnp.imag(lp[..., 0]) - jnp.imag(lp[..., 1])))  # phase of φ(σ,d) φ(σ,d')*
        return 0.5 * (w * e[..., 0] + jnp.conj(w) * e[..., 1]), jnp.real(w)

    return run


def mc_energy(
    dbm: DBM, params, operator, key: jax.Array, n_chains: int = 256, n_sweeps: int = 400, n_discard: int = 100
) -> Stats:
    """⟨H⟩ of the DBM state by the joint-chain Monte Carlo estimator (note §3).

    Samples (σ, d, d') ∝ |φ(σ, d)| |φ(σ, d')| with the DBM's joint chain
    (:class:`~nqs.sampling.joint.JointMetropolisSampler`: one sweep = N single-spin Metropolis flips of σ
    and a heat-bath pass over the 2N_d deep spins; ``n_discard`` sweeps of burn-in from random spins;
    one measurement per sweep).
    With the local energy at fixed deep spins (:func:`nqs.sampling.joint.joint_local_energies`, the one
    the DBM's VMC driver uses)

        E_loc(σ, d) = Σ_σ' H_σσ' φ(σ', d)/φ(σ, d)   (σ' from ``operator.moves(σ)``),

    and the phase w = φ(σ,d) φ(σ,d')* / |φ(σ,d) φ(σ,d')|,

        ⟨H⟩ = E[½(w E_loc(σ,d) + w* E_loc(σ,d'))] / E[Re w].

    For real positive φ (TFIM with h > 0, ψ0 = |+⟩ or a real positive RBM) w ≡ 1 and this is the
    plain mean of ½(E_loc(σ,d) + E_loc(σ,d')).  Returns :class:`~nqs.stats.Stats` with ``mean`` the
    (real) ratio estimate and error, variance, τ, R̂ of the linearised series
    (num − R·Re w)/mean(Re w), which equal those of the plain series when w ≡ 1.
    Heisenberg DBMs cannot be sampled this way (every single flip violates a δ_{D,0} unit).
    """
    dbm.check_params(params)
    run = _mc_runner(dbm, operator, int(n_chains), int(n_sweeps), int(n_discard))
    num, den = run(params, key)
    num, den = np.asarray(num), np.asarray(den)
    dbar = float(np.mean(den))
    R = float(np.real(np.mean(num))) / dbar
    z = (np.real(num) - R * den) / dbar
    st = statistics(jnp.asarray(z))
    return st._replace(mean=R)


# --------------------------------------------------------------------------------- table
def energy_vs_tau(
    kind: str,
    lattice,
    dtau: float,
    n_max: int,
    J: float = 1.0,
    h: float = 1.0,
    psi0: str | dict = "plus",
    method: str = "exact",
    key: jax.Array | None = None,
    mc_kwargs: dict | None = None,
) -> list[dict[str, float]]:
    """Table for plots: for n = 1…n_max the rows ``{"n", "tau", "e_dbm", "e_dbm_err", "e_exact_tau",
    "e0", "n_hidden", "n_deep"}``.

    ``kind`` is "ising" (:func:`tfim_dbm`, ψ0 = ``psi0``) or "heisenberg" (:func:`heisenberg_dbm`,
    ψ0 = Néel, ``h`` unused).  ``e_dbm`` is the DBM energy (= the Trotterised one), exact
    (``method="exact"``, error 0) or by :func:`mc_energy` (``method="mc"``, ``key`` and ``mc_kwargs``);
    ``e_exact_tau`` is ⟨H⟩ of the normalised e^{−τH}ψ0 (τ = nδτ, no Trotter error) and ``e0`` the
    ground-state energy (full space), both by dense diagonalisation (small N).
    """
    from .hamiltonians import heisenberg, ising

    L = lattice.n_sites
    hil = SpinHilbert(L)
    if kind == "ising":
        op = ising(lattice, J, h)
        vec0 = np.ones(2**L) if isinstance(psi0, str) else rbm_vector(psi0, L)
    elif kind == "heisenberg":
        op = heisenberg(lattice, J)
        vec0 = np.zeros(2**L)
        vec0[int(hil.states_to_codes(neel_state(lattice)[None, :])[0])] = 1.0
    else:
        raise ValueError(f"kind must be 'ising' or 'heisenberg', got {kind!r}")
    taus = [n * dtau for n in range(1, n_max + 1)]
    e_tau = exact_tau_energy(op, vec0, taus)
    e0 = float(np.linalg.eigvalsh(op.to_dense(hil))[0])
    key = jax.random.PRNGKey(0) if key is None else key
    rows = []
    for n in range(1, n_max + 1):
        if kind == "ising":
            dbm, params = tfim_dbm(lattice, J, h, dtau, n, psi0)
        else:
            dbm, params = heisenberg_dbm(lattice, J, dtau, n)
        if method == "exact":
            e, err = exact_energy(dbm, params, op, hil), 0.0
        elif method == "mc":
            key, sub = jax.random.split(key)
            st = mc_energy(dbm, params, op, sub, **(mc_kwargs or {}))
            e, err = float(st.mean), float(st.error)
        else:
            raise ValueError(f"method must be 'exact' or 'mc', got {method!r}")
        rows.append(
            {
                "n": n,
                "tau": n * dtau,
                "e_dbm": e,
                "e_dbm_err": err,
                "e_exact_tau": float(e_tau[n - 1]),
                "e0": e0,
                "n_hidden": dbm.n_hidden,
                "n_deep": dbm.n_deep,
            }
        )
    return rows
