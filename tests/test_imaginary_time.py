"""Exact imaginary-time DBMs (design note dbm_construction.md) against dense Trotter products."""

import jax
import numpy as np
import pytest
import scipy.linalg

from nqs.exact import exact_energy_of_model
from nqs.hamiltonians import heisenberg, ising
from nqs.hilbert import SpinHilbert
from nqs.imaginary_time import (
    checkerboard_groups,
    energy_vs_tau,
    exact_energy,
    heisenberg_dbm,
    heisenberg_trotter_reference,
    mc_energy,
    tfim_dbm,
    tfim_trotter_reference,
    trotter_reference,
)
from nqs.lattice import make_lattice
from nqs.models.rbm import RBM
from nqs.operators.pauli import PauliSum

DTAU = 0.1


def _err(dbm, params, ref):
    """max |ψ_DBM − ψ_dense| / max |ψ_dense|, constants included."""
    vec, log_scale = dbm.amplitudes(params)
    return float(np.max(np.abs(np.exp(log_scale) * vec - ref)) / np.max(np.abs(ref)))


# --------------------------------------------------------------------------------- references
def test_dense_references_match_expm():
    lat = make_lattice("chain", [6])
    hil = SpinHilbert(6)
    ux = scipy.linalg.expm(-DTAU * ising(lat, 0.0, 0.7).to_dense(hil))
    uzz = scipy.linalg.expm(-DTAU * ising(lat, 1.3, 0.0).to_dense(hil))
    ref = trotter_reference([ux, uzz], np.ones(64), 3)
    np.testing.assert_allclose(tfim_trotter_reference(lat, 1.3, 0.7, DTAU, 3), ref, rtol=1e-12)

    lat = make_lattice("chain", [4])
    groups = checkerboard_groups(lat)
    assert [g.tolist() for g in groups] == [[[0, 1], [2, 3]], [[0, 3], [1, 2]]]
    mats = []
    for g in groups:
        terms = [(0.25, p, (int(i), int(j))) for i, j in g for p in ("XX", "YY", "ZZ")]
        mats.append(scipy.linalg.expm(-DTAU * PauliSum(4, terms).to_dense(SpinHilbert(4))))
    psi0 = np.zeros(16)
    psi0[0b0101] = 1.0  # Néel: ↑ on sublattice 0 (sites 0, 2) = code bits 0 and 2
    np.testing.assert_allclose(
        heisenberg_trotter_reference(lat, 1.0, DTAU, 2), trotter_reference(mats, psi0, 2), rtol=1e-12, atol=1e-15
    )


# --------------------------------------------------------------------------------- TFIM
NOTE_TFIM_L8 = {1: -9.267418, 2: -9.757630, 3: -9.957779, 4: -10.052606}
NOTE_TFIM_L6 = {1: -6.951896, 2: -7.331105, 3: -7.500793, 4: -7.589066}


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_tfim_chain_L8_amplitudes_and_energy(n):
    lat = make_lattice("chain", [8])
    dbm, p = tfim_dbm(lat, 1.0, 1.0, DTAU, n)
    assert (dbm.n_hidden, dbm.n_deep) == (n * 8 + (n - 1) * 8, (n - 1) * 8)
    ref = tfim_trotter_reference(lat, 1.0, 1.0, DTAU, n)
    assert _err(dbm, p, ref) < 1e-10
    e = exact_energy(dbm, p, ising(lat, 1.0, 1.0), SpinHilbert(8))
    assert abs(e - NOTE_TFIM_L8[n]) < 1e-6


def test_tfim_chain_L6_energies_match_note_and_trotter_vector():
    lat = make_lattice("chain", [6])
    op, hil = ising(lat, 1.0, 1.0), SpinHilbert(6)
    for n, e_note in NOTE_TFIM_L6.items():
        dbm, p = tfim_dbm(lat, 1.0, 1.0, DTAU, n)
        ref = tfim_trotter_reference(lat, 1.0, 1.0, DTAU, n)
        e_ref = float(np.real(np.vdot(ref, op.to_sparse(hil) @ ref) / np.vdot(ref, ref)))
        e = exact_energy(dbm, p, op, hil)
        assert abs(e - e_ref) < 1e-10
        assert abs(e - e_note) < 1e-6
    # n = 3 by explicit enumeration of σ and d (N_d = 12), the note's headline number
    dbm, p = tfim_dbm(lat, 1.0, 1.0, DTAU, 3)
    e_enum = exact_energy(dbm, p, op, hil, method="enumerate")
    assert abs(e_enum - (-7.500792836220)) < 1e-10
    assert abs(exact_energy_of_model(dbm, p, op, hil) - e_enum) < 1e-10  # nqs Model contract


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tfim_rbm_initial_state(n):
    lat = make_lattice("chain", [6])
    rbm = RBM(6, alpha=1.0, init_scale=0.3).init(jax.random.PRNGKey(10 + n))  # complex a, b, W
    dbm, p = tfim_dbm(lat, 1.0, 1.0, DTAU, n, psi0=rbm)
    assert (dbm.n_hidden, dbm.n_deep) == (6 + n * 6 + n * 6, n * 6)
    assert _err(dbm, p, tfim_trotter_reference(lat, 1.0, 1.0, DTAU, n, psi0=rbm)) < 1e-10


@pytest.mark.parametrize(("J", "h"), [(-0.7, 0.6), (0.8, -1.2)])
def test_tfim_signs_of_couplings(J, h):
    """Antiferromagnetic bonds (W2 = −W1) and h < 0 (Π σᶻ gauge, complex biases)."""
    lat = make_lattice("chain", [6])
    dbm, p = tfim_dbm(lat, J, h, DTAU, 3)
    assert _err(dbm, p, tfim_trotter_reference(lat, J, h, DTAU, 3)) < 1e-10
    rbm = RBM(6, alpha=0.5, init_scale=0.3).init(jax.random.PRNGKey(3))
    dbm, p = tfim_dbm(lat, J, h, DTAU, 2, psi0=rbm)
    assert _err(dbm, p, tfim_trotter_reference(lat, J, h, DTAU, 2, psi0=rbm)) < 1e-10


@pytest.mark.parametrize("pbc", [True, False])
def test_tfim_square_cluster(pbc):
    lat = make_lattice("square", [3, 3], pbc=pbc)
    dbm, p = tfim_dbm(lat, 0.9, 1.1, DTAU, 2)
    assert dbm.n_hidden == 2 * len(lat.bonds(1)) + 9 and dbm.n_deep == 9
    assert _err(dbm, p, tfim_trotter_reference(lat, 0.9, 1.1, DTAU, 2)) < 1e-10


def test_tfim_rejects_bad_input():
    lat = make_lattice("chain", [4])
    with pytest.raises(ValueError):
        tfim_dbm(lat, 1.0, 0.0, DTAU, 2)
    with pytest.raises(ValueError):
        tfim_dbm(lat, 1.0, 1.0, DTAU, 0)
    with pytest.raises(ValueError):
        tfim_dbm(lat, 1.0, 1.0, DTAU, 1, psi0="minus")


# --------------------------------------------------------------------------------- Heisenberg
NOTE_HEIS_N1 = {4: -1.180570, 6: -1.769826}


@pytest.mark.parametrize("L", [4, 6])
def test_heisenberg_chain_amplitudes(L):
    lat = make_lattice("chain", [L])
    for n in (1, 2, 3):
        dbm, p = heisenberg_dbm(lat, 1.0, DTAU, n)
        assert (dbm.n_hidden, dbm.n_deep) == (4 * n * L - L // 2, (2 * n - 1) * L)
        ref = heisenberg_trotter_reference(lat, 1.0, DTAU, n)
        assert _err(dbm, p, ref) < 1e-10
        if n == 1:
            e = exact_energy(dbm, p, heisenberg(lat, 1.0), SpinHilbert(L, total_sz=0))
            assert abs(e - NOTE_HEIS_N1[L]) < 1e-6


def test_heisenberg_enumeration_and_other_layouts():
    lat = make_lattice("chain", [4])
    dbm, p = heisenberg_dbm(lat, 1.0, DTAU, 2)  # N_d = 12
    op = heisenberg(lat, 1.0)
    e1 = exact_energy(dbm, p, op, SpinHilbert(4), method="enumerate")
    e2 = exact_energy(dbm, p, op, SpinHilbert(4, total_sz=0))
    assert abs(e1 - e2) < 1e-10
    # ferromagnetic J < 0 (no Marshall rotation) and a 2x2 open square (greedy matchings)
    dbm, p = heisenberg_dbm(lat, -0.8, DTAU, 2)
    assert _err(dbm, p, heisenberg_trotter_reference(lat, -0.8, DTAU, 2)) < 1e-10
    sq = make_lattice("square", [2, 2], pbc=False)
    dbm, p = heisenberg_dbm(sq, 1.0, DTAU, 2)
    assert _err(dbm, p, heisenberg_trotter_reference(sq, 1.0, DTAU, 2)) < 1e-10


# --------------------------------------------------------------------------------- Monte Carlo
def test_mc_estimator_matches_exact():
    lat = make_lattice("chain", [6])
    op = ising(lat, 1.0, 1.0)
    dbm, p = tfim_dbm(lat, 1.0, 1.0, DTAU, 3)
    exact = exact_energy(dbm, p, op, SpinHilbert(6))
    st = mc_energy(dbm, p, op, jax.random.PRNGKey(1), n_chains=256, n_sweeps=400, n_discard=100)
    assert 0 < float(st.error) < 0.05
    assert abs(float(st.mean) - exact) < 4 * float(st.error), (float(st.mean), float(st.error), exact)


# --------------------------------------------------------------------------------- table
def test_energy_vs_tau_table():
    rows = energy_vs_tau("ising", make_lattice("chain", [6]), DTAU, 2)
    assert [r["n"] for r in rows] == [1, 2]
    np.testing.assert_allclose([r["e_dbm"] for r in rows], [-6.951896, -7.331105], atol=1e-6)
    np.testing.assert_allclose([r["e_exact_tau"] for r in rows], [-6.822248, -7.198498], atol=1e-6)
    assert abs(rows[0]["e0"] - (-7.727407)) < 1e-6
    rows = energy_vs_tau("heisenberg", make_lattice("chain", [4]), DTAU, 1)
    assert abs(rows[0]["e_dbm"] - (-1.180570)) < 1e-6
    assert abs(rows[0]["e_exact_tau"] - (-1.180295)) < 1e-6
    assert abs(rows[0]["e0"] - (-2.0)) < 1e-9


def test_mc_estimator_mixes_without_deep_units():
    """Regression: n = 1 (no deep units, nearly flat φ). The systematic-scan Metropolis rule flipped
    almost every spin per sweep (σ → −σ) and froze E_loc (R̂ ≈ 2, 6% off); heat-bath fixes it."""
    from nqs.imaginary_time import exact_energy, mc_energy, tfim_dbm

    lat = make_lattice("chain", [6])
    op = ising(lat, 1.0, 1.0)
    dbm, params = tfim_dbm(lat, 1.0, 1.0, 0.1, 1)
    exact = exact_energy(dbm, params, op, SpinHilbert(6))
    st = mc_energy(dbm, params, op, jax.random.PRNGKey(3), n_chains=64, n_sweeps=200)
    assert float(st.r_hat) < 1.05
    assert abs(float(st.mean.real) - exact) < 4 * float(st.error)


def test_cli_imaginary_time(tmp_path):
    import json

    from nqs.cli import main

    cfg = tmp_path / "it.toml"
    cfg.write_text(
        '[lattice]\nkind = "chain"\nsize = [6]\n[hamiltonian]\nkind = "ising"\nJ = 1.0\nh = 1.0\n'
        '[imaginary_time]\ndtau = 0.1\nn_steps = 3\nmethod = "exact"\n'
        f'[output]\ndir = "{tmp_path / "out"}"\n'
    )
    assert main(["imaginary-time", str(cfg)]) == 0
    res = json.loads((tmp_path / "out" / "imaginary_time.json").read_text())
    # the note's table (L = 6, δτ = 0.1): Trotterized DBM energies for n = 1, 2, 3
    assert [r["e_dbm"] for r in res["rows"]] == pytest.approx([-6.951896, -7.331105, -7.500793], abs=2e-6)
    assert [r["e_exact_tau"] for r in res["rows"]] == pytest.approx([-6.822248, -7.198498, -7.392879], abs=2e-6)
    assert res["e0"] == pytest.approx(-7.727407, abs=2e-6)
    assert (tmp_path / "out" / "imaginary_time.png").exists()
