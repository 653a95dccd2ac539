"""Exact references for time evolution and finite temperature (nqs.exact.dynamics) and the observables
they measure (nqs.operators.observables), against dense matrices built here from Kronecker products."""

from functools import reduce

import numpy as np
import pytest
import scipy.linalg

from nqs.exact import lowest_energies, tfim_chain_energy
from nqs.exact.dynamics import (
    MAX_THERMAL_STATES,
    PRODUCT_STATES,
    bell_pairs_state,
    doubled,
    evolve,
    exact_dynamics,
    product_state,
    purified_thermal,
    thermal_averages,
)
from nqs.hamiltonians import heisenberg, ising
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.operators.observables import NAMED_OBSERVABLES, named_observable, user_observable
from nqs.operators.pauli import PauliSum

# one-site matrices in nqs's local order (index 0 = ↓, 1 = ↑): X|s⟩ = |−s⟩, Y|s⟩ = i s|−s⟩, Z|s⟩ = s|s⟩
PAULI = {
    "I": np.eye(2),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, 1j], [-1j, 0]]),
    "Z": np.diag([-1.0, 1.0]).astype(complex),
}


def dense_string(n, ops: dict[int, str]) -> np.ndarray:
    """⊗ over sites n−1, …, 0 (site 0 is the lowest bit of the code)."""
    return reduce(np.kron, [PAULI[ops.get(i, "I")] for i in reversed(range(n))])


def expect(op: PauliSum, psi, hilbert=None) -> float:
    hilbert = SpinHilbert(op.n_sites) if hilbert is None else hilbert
    return float(np.real(np.vdot(psi, op.to_sparse(hilbert) @ psi)))


# ------------------------------------------------------------------------------------ observables
@pytest.mark.parametrize("pbc", [True, False])
def test_named_observables_match_dense_matrices(pbc):
    n = 4
    lat = make_lattice("chain", [n], pbc=pbc)
    hil = SpinHilbert(n)
    bonds = [(0, 1), (1, 2), (2, 3)] + ([(0, 3)] if pbc else [])
    for a in "XYZ":
        ref = sum(dense_string(n, {i: a}) for i in range(n)) / n
        np.testing.assert_allclose(named_observable(lat, a).to_dense(hil), ref, atol=1e-14)
        ref2 = sum(dense_string(n, {i: a, j: a}) for i, j in bonds) / len(bonds)
        np.testing.assert_allclose(named_observable(lat, a + a).to_dense(hil), ref2, atol=1e-14)
    assert set(NAMED_OBSERVABLES) == {"X", "Y", "Z", "XX", "YY", "ZZ"}


def test_user_observable_matches_dense_matrix():
    lat = make_lattice("chain", [3])
    op = user_observable(lat, [[0.5, "XZ", [0, 2]], [[0.0, -1.0], "Y", [1]], [2, "ZZ", [1, 2]]])
    ref = 0.5 * dense_string(3, {0: "X", 2: "Z"}) - 1j * dense_string(3, {1: "Y"})
    ref = ref + 2 * dense_string(3, {1: "Z", 2: "Z"})
    np.testing.assert_allclose(op.to_dense(SpinHilbert(3)), ref, atol=1e-14)
    assert user_observable(3, [[1, "Z", [2]]]).n_sites == 3


def test_bad_observable_names_and_sites_are_named():
    lat = make_lattice("chain", [4])
    with pytest.raises(ValueError, match=r"'X_0'.*X, Y, Z, XX, YY, ZZ"):
        named_observable(lat, "X_0")
    with pytest.raises(ValueError, match=r"entry 1.*site 7 does not exist.*0\.\.3"):
        user_observable(lat, [[1.0, "Z", [0]], [1.0, "ZZ", [2, 7]]])
    with pytest.raises(ValueError, match="site -1 does not exist"):
        user_observable(4, [[1.0, "X", [-1]]])
    with pytest.raises(ValueError, match="entry 0.*not a number"):
        user_observable(4, [["a", "X", [0]]])


# ------------------------------------------------------------------------------------ product states
def test_product_states():
    n = 6
    lat = make_lattice("chain", [n])
    X, Z = named_observable(lat, "X"), named_observable(lat, "Z")
    for kind, op, value in [("plus", X, 1), ("minus", X, -1), ("up", Z, 1), ("down", Z, -1)]:
        psi = product_state(kind, n)
        assert psi.shape == (2**n,)
        assert np.linalg.norm(psi) == pytest.approx(1.0, abs=1e-14)
        assert expect(op, psi) == pytest.approx(value, abs=1e-13)
    neel = product_state("neel", n, lattice=lat)
    z_i = [expect(user_observable(lat, [[1.0, "Z", [i]]]), neel) for i in range(n)]
    np.testing.assert_allclose(z_i, [1, -1] * (n // 2), atol=1e-14)
    assert expect(named_observable(lat, "ZZ"), neel) == pytest.approx(-1.0)
    assert PRODUCT_STATES == ("plus", "minus", "up", "down", "neel")


def test_product_state_sector_restriction():
    n = 4
    lat = make_lattice("chain", [n])
    sector = SpinHilbert(n, total_sz=0)
    neel = product_state("neel", n, lattice=lat, hilbert=sector)
    assert neel.shape == (sector.n_states,)
    full = product_state("neel", n, lattice=lat)
    np.testing.assert_array_equal(neel, full[sector.all_codes()])
    assert product_state("up", n, hilbert=SpinHilbert(n, total_sz=2)).tolist() == [1.0]
    with pytest.raises(ValueError, match="'plus' does not lie in the sector total_sz = 0"):
        product_state("plus", n, hilbert=sector)
    with pytest.raises(ValueError, match="'up' does not lie in the sector"):
        product_state("up", n, hilbert=sector)


def test_product_state_errors():
    with pytest.raises(ValueError, match=r"'ferro'.*plus, minus, up, down, neel"):
        product_state("ferro", 4)
    with pytest.raises(ValueError, match="needs the lattice"):
        product_state("neel", 4)
    with pytest.raises(ValueError, match="not bipartite"):
        product_state("neel", 3, lattice=make_lattice("chain", [3]))
    with pytest.raises(ValueError, match="has 6 sites, not 4"):
        product_state("neel", 4, lattice=make_lattice("chain", [6]))


# ------------------------------------------------------------------------------------ evolution
def _complex_chain(n=6):
    """TFIM chain with a Y field and a ZX term: complex, no symmetry to hide a wrong sign or order."""
    lat = make_lattice("chain", [n])
    op = ising(lat, 1.0, 0.7) + PauliSum(n, [(0.3, "Y", (i,)) for i in range(n)] + [(0.2, "ZX", (0, 3))])
    return lat, op


def test_evolve_matches_dense_expm():
    lat, op = _complex_chain(6)
    H = op.to_dense(SpinHilbert(6))
    rng = np.random.default_rng(0)
    psi0 = rng.standard_normal(64) + 1j * rng.standard_normal(64)
    psi0 /= np.linalg.norm(psi0)
    times = [0.0, 0.3, 0.3, 1.0, 2.5]
    for t, psi in zip(times, evolve(op, psi0, times), strict=True):
        np.testing.assert_allclose(psi, scipy.linalg.expm(-1j * t * H) @ psi0, atol=1e-10)
    taus = [0.2, 1.5]
    for t, psi in zip(taus, evolve(op, psi0, taus, imaginary=True), strict=True):
        ref = scipy.linalg.expm(-t * H) @ psi0
        np.testing.assert_allclose(psi, ref / np.linalg.norm(ref), atol=1e-10)


def test_real_time_conserves_norm_and_energy():
    lat, op = _complex_chain(6)
    times = np.linspace(0, 5, 11)
    norms = [np.linalg.norm(psi) for psi in evolve(op, product_state("plus", 6), times)]
    np.testing.assert_allclose(norms, 1.0, atol=1e-12)
    r = exact_dynamics(op, product_state("up", 6), times, {"X": named_observable(lat, "X")})
    np.testing.assert_allclose(r["energy"], r["energy"][0], atol=1e-11)
    np.testing.assert_array_equal(r["time"], times)
    assert np.ptp(r["X"]) > 0.1  # the observable does move


def test_imaginary_time_decreases_energy_to_the_ground_energy():
    lat = make_lattice("chain", [8])
    op = ising(lat, 1.0, 0.8)
    r = exact_dynamics(op, product_state("plus", 8), np.linspace(0, 4, 17), imaginary=True)
    assert np.all(np.diff(r["energy"]) < 0)
    assert r["energy"][0] == pytest.approx(-0.8 * 8)
    e0 = tfim_chain_energy(8, 1.0, 0.8)
    assert 0 < r["energy"][-1] - e0 < 1e-3
    # one interval of τ = 500 from |+…+⟩: e^{−τ(H − E)} would grow by e^{500 (E − E0)} ≈ e^{1100}, past float64;
    # it is taken in normalized pieces
    far = exact_dynamics(op, product_state("plus", 8), [500.0], imaginary=True)
    assert far["energy"][0] == pytest.approx(e0, abs=1e-10)


def test_evolution_in_a_sector_matches_the_full_space():
    lat = make_lattice("chain", [6])
    op = heisenberg(lat)
    sector = SpinHilbert(6, total_sz=0)
    zz = named_observable(lat, "ZZ")
    times = [0.5, 2.0]
    full = exact_dynamics(op, product_state("neel", 6, lattice=lat), times, {"ZZ": zz})
    sub = exact_dynamics(op, product_state("neel", 6, lattice=lat), times, {"ZZ": zz}, hilbert=sector)
    for key in ("energy", "ZZ"):
        np.testing.assert_allclose(sub[key], full[key], atol=1e-12)
    with pytest.raises(ValueError, match="observable 'X'"):
        exact_dynamics(op, product_state("neel", 6, lattice=lat), times, {"X": named_observable(lat, "X")}, sector)


def test_evolve_errors():
    lat, op = _complex_chain(4)
    psi = product_state("plus", 4)
    with pytest.raises(ValueError, match="sorted and >= 0"):
        list(evolve(op, psi, [1.0, 0.5]))
    with pytest.raises(ValueError, match="sorted and >= 0"):
        list(evolve(op, psi, [-0.1]))
    with pytest.raises(ValueError, match="psi0 has 8 components"):
        list(evolve(op, psi[:8], [0.1]))
    with pytest.raises(ValueError, match="taken"):
        exact_dynamics(op, psi, [0.1], {"energy": named_observable(lat, "X")})


# ------------------------------------------------------------------------------------ quoted numbers
def test_tfim_quench_from_the_critical_ground_state():
    """L = 10 periodic chain, ground state of h = 1 evolved with h = 0.5: per-site ⟨X⟩(t)."""
    lat = make_lattice("chain", [10])
    _, v = lowest_energies(ising(lat, 1.0, 1.0), SpinHilbert(10), return_vectors=True)
    r = exact_dynamics(ising(lat, 1.0, 0.5), v[:, 0], [0.5, 1.0, 2.0], {"X": named_observable(lat, "X")})
    np.testing.assert_allclose(r["X"], [0.3350, 0.1840, 0.3702], atol=5e-5)


def test_tfim_product_state_quenches_and_duality():
    """From |+…+⟩ ⟨X⟩(0.5) and from |↑…↑⟩ ⟨ZZ⟩(0.5) at h = J = 1 (Kramers–Wannier duals)."""
    lat = make_lattice("chain", [10])
    op = ising(lat, 1.0, 1.0)
    obs = {"X": named_observable(lat, "X"), "ZZ": named_observable(lat, "ZZ")}
    plus = exact_dynamics(op, product_state("plus", 10), [0.5], obs)
    up = exact_dynamics(op, product_state("up", 10), [0.5], obs)
    assert plus["X"][0] == pytest.approx(0.4835, abs=5e-5)
    assert up["ZZ"][0] == pytest.approx(0.4835, abs=5e-5)
    assert up["ZZ"][0] == pytest.approx(plus["X"][0], abs=1e-10)


def test_thermal_values_of_the_ten_site_chains():
    lat = make_lattice("chain", [10])
    hil = SpinHilbert(10)
    heis = thermal_averages(heisenberg(lat), hil, [1.0, 0.5], 10)
    np.testing.assert_allclose(heis["energy_per_site"], [-0.20465, -0.34177], atol=5e-5)
    tfim = thermal_averages(ising(lat, 1.0, 1.0), hil, [1.0], 10)
    assert tfim["energy_per_site"][0] == pytest.approx(-1.12478, abs=5e-5)
    assert tfim["specific_heat_per_site"][0] == pytest.approx(0.32363, abs=5e-5)


# ------------------------------------------------------------------------------------ thermal
def test_thermal_limits_and_specific_heat_is_dE_dT():
    L = 8
    op = ising(make_lattice("chain", [L]), 1.0, 1.0)
    gap = np.diff(lowest_energies(op, SpinHilbert(L), 2))[0]
    cold = thermal_averages(op, None, [gap / 40])  # excited weight e^{-40}
    assert cold["energy_per_site"][0] == pytest.approx(tfim_chain_energy(L) / L, abs=1e-10)
    hot = thermal_averages(op, None, [1e6])
    assert abs(hot["energy_per_site"][0]) < 1e-5  # Tr H / 2^N = 0
    T, dT = 0.7, 1e-4
    e = thermal_averages(op, None, [T - dT, T + dT])["energy_per_site"]
    c = thermal_averages(op, None, [T])["specific_heat_per_site"][0]
    assert (e[1] - e[0]) / (2 * dT) == pytest.approx(c, rel=1e-6)


@pytest.mark.parametrize("L", [4, 5, 6])
def test_purified_thermal_equals_the_spectrum(L):
    lat = make_lattice("chain", [L])
    op = ising(lat, 1.0, 0.9) + heisenberg(lat, 0.4)
    betas = np.array([0.0, 2.0, 0.5, 1.0, 5.0])
    pur = purified_thermal(op, L, betas)
    spec = thermal_averages(op, SpinHilbert(L), 1 / betas[1:], L)
    np.testing.assert_allclose(pur["energy_per_site"][1:], spec["energy_per_site"], atol=1e-10)
    np.testing.assert_allclose(pur["specific_heat_per_site"][1:], spec["specific_heat_per_site"], atol=1e-10)
    assert pur["energy_per_site"][0] == pytest.approx(op.trace() / L, abs=1e-12)
    assert pur["specific_heat_per_site"][0] == 0.0
    np.testing.assert_array_equal(pur["beta"], betas)


def test_bell_pairs_and_doubled_operator():
    n = 3
    phi = bell_pairs_state(n)
    assert phi.shape == (2 ** (2 * n),) and np.linalg.norm(phi) == pytest.approx(1.0)
    m = phi.reshape(2**n, 2**n)  # rows: ancilla code, columns: system code
    np.testing.assert_allclose(m.T @ m.conj(), np.eye(2**n) / 2**n, atol=1e-15)  # system state 1/2^N
    op = ising(make_lattice("chain", [n]), 1.0, 0.6)
    d = doubled(op, n)
    assert d.n_sites == 2 * n and d.terms == op.terms
    H = op.to_dense(SpinHilbert(n))
    np.testing.assert_allclose(d.to_dense(SpinHilbert(2 * n)), np.kron(np.eye(2**n), H), atol=1e-14)
    with pytest.raises(ValueError, match="acts on 3 sites, not 4"):
        doubled(op, 4)


def test_thermal_errors():
    op = ising(make_lattice("chain", [4]), 1.0, 1.0)
    with pytest.raises(ValueError, match="> 0"):
        thermal_averages(op, None, [1.0, 0.0])
    with pytest.raises(ValueError, match=">= 0"):
        purified_thermal(op, 4, [-1.0])
    big = PauliSum(15, [(1.0, "X", (0,))])
    with pytest.raises(ValueError, match=f"limit is {MAX_THERMAL_STATES} states"):
        thermal_averages(big, SpinHilbert(15), [1.0])
