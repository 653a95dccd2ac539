"""Hamiltonians read from files (nqs TOML/JSON, mVMC/HPhi expert mode, StdFace, Wannier90).

References are independent of the reader: nqs.hamiltonians.hubbard, free-fermion band energies, and Jordan–Wigner
matrices built here with numpy Kronecker products from the formulas of the mVMC/HPhi manuals.
"""

from __future__ import annotations

import itertools
import re
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from nqs.exact import lowest_energies
from nqs.hamiltonians.files import FileHamiltonian, HamiltonianFileError, read_hamiltonian
from nqs.hamiltonians.hubbard import hubbard
from nqs.hilbert.fermions import SpinfulFermions
from nqs.lattice import make_lattice
from nqs.operators.fermion import FermionOperator

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
CHAIN6 = DATA / "mvmc_hubbard_chain6"
EXAMPLES = ROOT / "examples" / "files"
TOL = 1e-10


def spectrum(op: FermionOperator, n_sites: int, n_up: int, n_down: int) -> np.ndarray:
    return np.linalg.eigvalsh(op.to_dense(SpinfulFermions(n_sites, n_up, n_down)))


def assert_same_matrix(a: FermionOperator, b: FermionOperator, hilbert: SpinfulFermions, shift: float = 0.0) -> None:
    """⟨x|A|x'⟩ = ⟨x|B|x'⟩ + shift·δ (both operators label the sites alike), without diagonalizing."""
    diff = a.to_sparse(hilbert) - b.to_sparse(hilbert)
    diff = diff - shift * sparse.identity(hilbert.n_states, format="csr")
    assert abs(diff).max() < TOL


@cache
def chain6_lowest() -> np.ndarray:
    """The 4 lowest energies of nqs.hamiltonians.hubbard on the 6-ring, t = 1, U = 4, N↑ = N↓ = 3."""
    return lowest_energies(hubbard(make_lattice("chain", [6], True), t=1.0, U=4.0), SpinfulFermions(6, 3, 3), 4)


# --------------------------------------------------------------- independent Jordan–Wigner matrices
@cache
def jw(n_orb: int) -> tuple[np.ndarray, ...]:
    """Dense c_p on 2^n_orb states, basis index Σ_q n_q 2^q, c_p = (Π_{q<p} (−1)^{n_q}) a_p."""
    lower, z = np.array([[0.0, 1.0], [0.0, 0.0]]), np.diag([1.0, -1.0])
    out = []
    for p in range(n_orb):
        m = np.ones((1, 1))
        for q in reversed(range(n_orb)):  # kron's last factor is orbital 0 (bit 0)
            m = np.kron(m, np.eye(2) if q > p else lower if q == p else z)
        out.append(m)
    return tuple(out)


class Fock:
    """c†/c/n of site i, spin s (0 = ↑) with orbital i + n_sites·s, as dense matrices."""

    def __init__(self, n_sites: int):
        self.n = n_sites
        self.c = jw(2 * n_sites)

    def a(self, i: int, s: int) -> np.ndarray:
        return self.c[i + self.n * s]

    def ad(self, i: int, s: int) -> np.ndarray:
        return self.c[i + self.n * s].T

    def num(self, i: int, s: int) -> np.ndarray:
        return self.ad(i, s) @ self.a(i, s)

    def sector(self, h: np.ndarray, n_up: int, n_down: int) -> np.ndarray:
        """The (N↑, N↓) block in nqs's order (sorted by code = basis index)."""
        idx = [
            b
            for b in range(2 ** (2 * self.n))
            if bin(b & (2**self.n - 1)).count("1") == n_up and bin(b >> self.n).count("1") == n_down
        ]
        return h[np.ix_(idx, idx)]


def write_def(path: Path, count_name: str, rows: list[str], count: int | None = None) -> None:
    header = f"====\n{count_name} {len(rows) if count is None else count}\n====\n==== header ====\n====\n"
    path.write_text(header + "".join(r + "\n" for r in rows))


def write_mvmc(folder: Path, n_sites: int, files: dict[str, list[str]], modpara: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = {"ModPara": "modpara.def", "LocSpin": "locspn.def"}
    (folder / "modpara.def").write_text(
        modpara
        if modpara is not None
        else "----\nModel_Parameters 0\n----\nHPhi\n----\nCDataFileHead zvo\nCParaFileHead zqp\n----\n"
        f"Nsite {n_sites}\n"
    )
    write_def(folder / "locspn.def", "NlocalSpin", [f"{i} 0" for i in range(n_sites)], count=0)
    for key, rows in files.items():
        names[key] = f"{key.lower()}.def"
        write_def(folder / names[key], f"N{key}", rows)
    (folder / "namelist.def").write_text("".join(f"{k} {v}\n" for k, v in names.items()))
    return folder


# =============================================================== mVMC expert files
def test_mvmc_hubbard_chain_matches_nqs_hubbard():
    h = read_hamiltonian(CHAIN6, "mvmc")
    assert isinstance(h, FileHamiltonian)
    assert (h.n_sites, h.n_up, h.n_down) == (6, 3, 3)
    assert "trans.def" in h.source and "coulombintra.def" in h.source
    np.testing.assert_allclose(lowest_energies(h.operator, SpinfulFermions(6, 3, 3), 4), chain6_lowest(), atol=TOL)


def test_mvmc_trans_sign_on_an_odd_ring(tmp_path):
    """Trans rows enter as −t c†c (StdFace writes t = 1 for both directions of each bond).

    On an even ring t → −t is a gauge transformation, so the sign is tested on the 5-ring, where one
    electron has the band −2t cos(2πm/5) and t = ±1 differ.
    """
    rows = [f"{(i + 1) % 5} {s} {i} {s} 1.0 0.0" for i in range(5) for s in (0, 1)]
    rows += [f"{i} {s} {(i + 1) % 5} {s} 1.0 0.0" for i in range(5) for s in (0, 1)]
    files = {"Trans": rows, "CoulombIntra": [f"{i} 4.0" for i in range(5)]}
    h = read_hamiltonian(write_mvmc(tmp_path / "ring5", 5, files), "mvmc")
    band = np.sort(-2.0 * np.cos(2 * np.pi * np.arange(5) / 5))
    np.testing.assert_allclose(spectrum(h.operator, 5, 1, 0), band, atol=TOL)
    assert abs(band[0] - np.sort(-band)[0]) > 0.3
    ref = hubbard(make_lattice("chain", [5], True), t=1.0, U=4.0)
    np.testing.assert_allclose(spectrum(h.operator, 5, 2, 2), spectrum(ref, 5, 2, 2), atol=TOL)


def test_mvmc_files_and_toml_give_the_same_spectrum():
    """A model written as mVMC .def files gives the same ED spectrum as the same model built in TOML."""
    from_def = read_hamiltonian(CHAIN6 / "namelist.def", "mvmc")
    from_toml = read_hamiltonian(EXAMPLES / "hubbard_chain6.toml", "nqs")
    assert (from_toml.n_sites, from_toml.n_up, from_toml.n_down) == (6, 3, 3)
    np.testing.assert_allclose(spectrum(from_def.operator, 6, 3, 3), spectrum(from_toml.operator, 6, 3, 3), atol=TOL)
    for n_up, n_down in ((2, 3), (1, 1)):  # other sectors: same sites, so the matrices agree too
        assert_same_matrix(from_def.operator, from_toml.operator, SpinfulFermions(6, n_up, n_down))


def test_mvmc_all_term_kinds_against_jordan_wigner(tmp_path):
    n = 4
    t01 = 0.7 - 0.4j
    g = 0.3 + 0.2j
    files = {
        "Trans": [f"0 {s} 1 {s} {t01.real} {t01.imag}" for s in (0, 1)]
        + [f"1 {s} 0 {s} {t01.real} {-t01.imag}" for s in (0, 1)]
        + [f"1 {s} 2 {s} 1.0 0.0" for s in (0, 1)]
        + [f"2 {s} 1 {s} 1.0 0.0" for s in (0, 1)]
        + ["3 0 3 0 0.25 0.0"],  # a spin-dependent potential
        "CoulombIntra": ["0 4.0", "2 2.5"],
        "CoulombInter": ["0 1 0.6", "2 3 -0.3"],
        "Hund": ["1 2 0.8"],
        "Exchange": ["0 2 -0.45"],
        "PairHop": ["1 3 0.35"],
        # correlated hopping g c†_0↑ c_1↑ n_2↓ with its conjugate in the manual's (l k j i) form, and
        # S+_0 S−_3 with its conjugate written with the bilinears swapped (as StdFace writes them)
        "InterAll": [
            f"0 0 1 0 2 1 2 1 {g.real} {g.imag}",
            f"2 1 2 1 1 0 0 0 {g.real} {-g.imag}",
            "0 0 0 1 3 1 3 0 0.55 0.0",
            "0 1 0 0 3 0 3 1 0.55 0.0",
        ],
    }
    h = read_hamiltonian(write_mvmc(tmp_path / "defs", n, files), "mvmc")
    assert (h.n_sites, h.n_up, h.n_down) == (n, None, None)
    f = Fock(n)
    H = np.zeros((2 ** (2 * n),) * 2, dtype=complex)
    for s in (0, 1):  # H_T = −Σ t c†c
        H -= t01 * f.ad(0, s) @ f.a(1, s) + np.conj(t01) * f.ad(1, s) @ f.a(0, s)
        H -= f.ad(1, s) @ f.a(2, s) + f.ad(2, s) @ f.a(1, s)
    H -= 0.25 * f.num(3, 0)
    H += 4.0 * f.num(0, 0) @ f.num(0, 1) + 2.5 * f.num(2, 0) @ f.num(2, 1)
    nn = [f.num(i, 0) + f.num(i, 1) for i in range(n)]
    H += 0.6 * nn[0] @ nn[1] - 0.3 * nn[2] @ nn[3]
    H -= 0.8 * (f.num(1, 0) @ f.num(2, 0) + f.num(1, 1) @ f.num(2, 1))
    H += -0.45 * (f.ad(0, 0) @ f.a(2, 0) @ f.ad(2, 1) @ f.a(0, 1) + f.ad(0, 1) @ f.a(2, 1) @ f.ad(2, 0) @ f.a(0, 0))
    ph = f.ad(1, 0) @ f.a(3, 0) @ f.ad(1, 1) @ f.a(3, 1)
    H += 0.35 * (ph + ph.conj().T)
    ch = f.ad(0, 0) @ f.a(1, 0) @ f.num(2, 1)
    H += g * ch + np.conj(g) * ch.conj().T
    sp = f.ad(0, 0) @ f.a(0, 1) @ f.ad(3, 1) @ f.a(3, 0)
    H += 0.55 * (sp + sp.conj().T)
    assert np.allclose(H, H.conj().T)
    for n_up, n_down in ((2, 2), (1, 2), (3, 1)):
        ref = f.sector(H, n_up, n_down)
        got = h.operator.to_dense(SpinfulFermions(n, n_up, n_down))
        np.testing.assert_allclose(np.linalg.eigvalsh(got), np.linalg.eigvalsh(ref), atol=TOL)
        np.testing.assert_allclose(got, ref, atol=TOL)


def test_mvmc_exchange_hund_inter_make_heisenberg(tmp_path):
    """CoulombInter −J/4, Hund −J/2, Exchange −J/2 on one bond give J S_i·S_j (StdFace's mapping for mVMC).

    Built from spin operators S = c† σ c / 2, independent of the Exchange formula: fixes its sign.
    """
    J = 1.3
    files = {"CoulombInter": [f"0 1 {-J / 4}"], "Hund": [f"0 1 {-J / 2}"], "Exchange": [f"0 1 {-J / 2}"]}
    h = read_hamiltonian(write_mvmc(tmp_path / "tj", 2, files), "mvmc")
    f = Fock(2)
    sz = [0.5 * (f.num(i, 0) - f.num(i, 1)) for i in (0, 1)]
    sp = [f.ad(i, 0) @ f.a(i, 1) for i in (0, 1)]  # S+ = c†↑ c↓
    ss = sz[0] @ sz[1] + 0.5 * (sp[0] @ sp[1].T + sp[0].T @ sp[1])
    np.testing.assert_allclose(h.operator.to_dense(SpinfulFermions(2, 1, 1)), f.sector(J * ss, 1, 1), atol=TOL)
    # singlet −3J/4, triplet (Sz = 0) J/4, the two doublon states 0
    np.testing.assert_allclose(spectrum(h.operator, 2, 1, 1), [-0.75 * J, 0, 0, 0.25 * J], atol=TOL)
    np.testing.assert_allclose(spectrum(h.operator, 2, 2, 0), [0.25 * J], atol=TOL)  # triplet Sz = 1


def test_mvmc_pairhop_row_includes_its_conjugate(tmp_path):
    h = read_hamiltonian(write_mvmc(tmp_path / "ph", 2, {"PairHop": ["0 1 0.7"]}), "mvmc")
    m = h.operator.to_dense(SpinfulFermions(2, 1, 1))
    np.testing.assert_allclose(m, m.conj().T, atol=TOL)
    np.testing.assert_allclose(np.linalg.eigvalsh(m), [-0.7, 0, 0, 0.7], atol=TOL)  # doublon on 0 ↔ on 1


@pytest.mark.parametrize(
    "lines, expected",
    [
        (["Nsite 6", "Ncond 6", "2Sz 2"], (4, 2)),
        (["Nsite 6", "Nelectron 2"], (2, 2)),  # mVMC: pairs, Sz = 0
        (["Nsite 6", "Ncond 4"], (None, None)),  # no 2Sz: Sz not fixed (HPhi)
        (["Nsite 6", "Nup 1", "Ndown 4"], (1, 4)),
    ],
)
def test_mvmc_filling_from_modpara(tmp_path, lines, expected):
    folder = tmp_path / "c6"
    shutil.copytree(CHAIN6, folder)
    head = "----\nModel_Parameters 0\n----\nVMC\n----\nCDataFileHead zvo\nCParaFileHead zqp\n----\n"
    (folder / "modpara.def").write_text(head + "\n".join(lines) + "\nNVMCSample 100\n")
    h = read_hamiltonian(folder, "mvmc")
    assert (h.n_up, h.n_down) == expected


# =============================================================== nqs TOML / JSON
def test_nqs_interaction_convention_matches_hubbard_with_v(tmp_path):
    """[i,i,i,i,U] is U n↑n↓; [i,j,i,j,V] + [j,i,j,i,V] is V n_i n_j."""
    n, lines = 4, []
    for i in range(n):
        j = (i + 1) % n
        lines += [f"[{i}, {j}, -1.0]", f"[{j}, {i}, -1.0]"]
    inter = [f"[{i}, {i}, {i}, {i}, 4.0]" for i in range(n)]
    for i in range(n):
        j = (i + 1) % n
        inter += [f"[{i}, {j}, {i}, {j}, 0.8]", f"[{j}, {i}, {j}, {i}, 0.8]"]
    path = tmp_path / "ext.toml"
    body = ",\n  ".join(inter)
    path.write_text(f"n_sites = {n}\nhopping = [{', '.join(lines)}]\ninteraction = [\n  {body}\n]\n")
    h = read_hamiltonian(path, "nqs")
    ref = hubbard(make_lattice("chain", [n], True), t=1.0, U=4.0, V=0.8)
    for sector in ((2, 2), (1, 2)):
        np.testing.assert_allclose(spectrum(h.operator, n, *sector), spectrum(ref, n, *sector), atol=TOL)


def test_nqs_complex_flux_ring_toml_and_json(tmp_path):
    n, theta = 4, 0.37
    hop = []
    for i in range(n):
        j = (i + 1) % n
        z = -np.exp(1j * theta)  # −t e^{iθ} c†_j c_i and its conjugate
        hop += [[j, i, float(z.real), float(z.imag)], [i, j, float(z.real), -float(z.imag)]]
    toml = tmp_path / "flux.toml"
    toml.write_text(f"n_sites = {n}\nn_up = 1\nn_down = 0\nhubbard_U = 3.0\nhopping = {hop}\n")
    json_path = tmp_path / "flux.json"
    json_path.write_text(f'{{"n_sites": {n}, "n_up": 1, "n_down": 0, "onsite_U": {[3.0] * n}, "hopping": {hop}}}')
    a, b = read_hamiltonian(toml, "nqs"), read_hamiltonian(json_path, "nqs")
    assert not a.operator.is_real and (a.n_up, a.n_down) == (1, 0)
    # one electron: the band −2 cos(k + θ) at k = 2πm/4
    band = np.sort(-2 * np.cos(2 * np.pi * np.arange(n) / n + theta))
    np.testing.assert_allclose(spectrum(a.operator, n, 1, 0), band, atol=TOL)
    # hand-built operator, two electrons with U
    terms = [(complex(re, im), ((i + n * s, 1), (j + n * s, 0))) for i, j, re, im in hop for s in (0, 1)]
    terms += [(3.0, ((i, 1), (i, 0), (i + n, 1), (i + n, 0))) for i in range(n)]
    hand = FermionOperator(2 * n, terms)
    for op in (a.operator, b.operator):
        np.testing.assert_allclose(
            op.to_dense(SpinfulFermions(n, 1, 1)), hand.to_dense(SpinfulFermions(n, 1, 1)), atol=TOL
        )


# =============================================================== StdFace
def test_stdface_chain_equals_hubbard_and_mvmc_files(tmp_path):
    path = tmp_path / "stan.in"
    path.write_text(
        '// Hubbard chain\nmodel = "Fermion Hubbard"\nmethod = "Lanczos"\nLattice = "Chain"\n'
        "L = 6\nt = 1.0\nU = 4.0  // on-site\nnelec = 6\n2Sz = 0\nLanczos_max = 1000\n"
    )
    h = read_hamiltonian(path, "stdface")
    assert (h.n_sites, h.n_up, h.n_down) == (6, 3, 3)
    hil = SpinfulFermions(6, 3, 3)
    np.testing.assert_allclose(lowest_energies(h.operator, hil, 4), chain6_lowest(), atol=TOL)
    assert_same_matrix(h.operator, read_hamiltonian(CHAIN6, "mvmc").operator, hil)


def test_stdface_square_free_band_and_fields(tmp_path):
    W, L, t, tp = 4, 2, 1.0, -0.3
    path = tmp_path / "sq.def"
    path.write_text(f'model = "Hubbard"\nlattice = "square"\nW = {W}\nL = {L}\nt = {t}\nt\' = {tp}\nU = 0\n')
    h = read_hamiltonian(path, "stdface")
    assert (h.n_sites, h.n_up, h.n_down) == (8, None, None)
    kx, ky = np.meshgrid(2 * np.pi * np.arange(W) / W, 2 * np.pi * np.arange(L) / L)
    eps = np.sort((-2 * t * (np.cos(kx) + np.cos(ky)) - 4 * tp * np.cos(kx) * np.cos(ky)).ravel())
    e0 = lowest_energies(h.operator, SpinfulFermions(8, 2, 1), 1)[0]
    assert abs(e0 - (eps[:2].sum() + eps[0])) < TOL
    # mu and h: −mu N − h (N↑ − N↓)/2, and U against nqs.hamiltonians.hubbard on the same torus
    path.write_text(path.read_text().replace("U = 0", "U = 4\nmu = 0.3\nh = 0.2\nnelec = 5\n2Sz = 1"))
    h2 = read_hamiltonian(path, "stdface")
    assert (h2.n_up, h2.n_down) == (3, 2)
    ref = hubbard(make_lattice("square", [W, L], True), t=t, U=4.0, t2=tp)
    assert_same_matrix(h2.operator, ref, SpinfulFermions(8, 3, 2), shift=-0.3 * 5 - 0.2 * 0.5)


def test_stdface_antiperiodic_phase(tmp_path):
    path = tmp_path / "ap.def"
    path.write_text('model = "Hubbard"\nlattice = "chain"\nL = 4\nt = 1\nU = 2\nphase0 = 180\n')
    h = read_hamiltonian(path, "stdface")
    ref = hubbard(make_lattice("chain", [4], True), t=1.0, U=2.0, boundary="antiperiodic")
    np.testing.assert_allclose(spectrum(h.operator, 4, 2, 2), spectrum(ref, 4, 2, 2), atol=TOL)


# =============================================================== Wannier90
def write_hr(path: Path, num_wann: int, blocks: dict[tuple[int, int, int], np.ndarray], degen=None) -> Path:
    degen = degen or [1] * len(blocks)
    text = f" test file\n{num_wann:12d}\n{len(blocks):12d}\n"
    for k in range(0, len(degen), 15):
        text += "".join(f"{d:5d}" for d in degen[k : k + 15]) + "\n"
    for R, mat in blocks.items():
        for nn, mm in itertools.product(range(num_wann), repeat=2):  # m fastest, as Wannier90 writes
            v = complex(mat[mm, nn])
            text += f"{R[0]:5d}{R[1]:5d}{R[2]:5d}{mm + 1:5d}{nn + 1:5d}{v.real:12.6f}{v.imag:12.6f}\n"
    path.write_text(text)
    return path


@pytest.mark.parametrize("weight", [1, 2])
def test_wannier90_one_orbital_chain_equals_hubbard(tmp_path, weight):
    t = 1.0
    blocks = {(-1, 0, 0): np.array([[-t * weight]]), (0, 0, 0): np.array([[0.0]]), (1, 0, 0): np.array([[-t * weight]])}
    path = write_hr(tmp_path / "chain_hr.dat", 1, blocks, degen=[weight, 1, weight])
    h = read_hamiltonian(path, "wannier90", supercell=(6, 1, 1), U=4.0, n_up=3, n_down=3)
    assert (h.n_sites, h.n_up, h.n_down) == (6, 3, 3)
    hil = SpinfulFermions(6, 3, 3)
    # one orbital per cell: site = cell, as in nqs.hamiltonians.hubbard, so the matrices agree (hence all of ED)
    assert_same_matrix(h.operator, hubbard(make_lattice("chain", [6], True), t=t, U=4.0), hil)
    if weight == 1:
        np.testing.assert_allclose(lowest_energies(h.operator, hil, 4), chain6_lowest(), atol=TOL)


def test_wannier90_two_orbitals_equal_hand_built_operator(tmp_path):
    ea, eb, tab, ta, tb, g = 0.1, -0.4, -0.3, -1.0, -0.6, 0.25 + 0.15j
    U, J, V = (4.0, 2.5), 0.45, 0.3
    blocks = {
        (0, 0, 0): np.array([[ea, tab], [tab, eb]]),
        (1, 0, 0): np.array([[ta, g], [0, tb]]),
        (-1, 0, 0): np.array([[ta, 0], [np.conj(g), tb]]),
    }
    path = write_hr(tmp_path / "two_hr.dat", 2, blocks)
    h = read_hamiltonian(path, "wannier90", supercell=3, U=list(U), J=J, V={((1,), 0, 1): V})
    n, cells = 6, 3

    def a(c: int) -> int:  # orbital a of cell c (periodic)
        return 2 * (c % cells)

    def b(c: int) -> int:
        return 2 * (c % cells) + 1

    terms = []
    for c in range(cells):
        for s in (0, 1):

            def hop(x, i, j, s=s):
                return [(x, ((i + n * s, 1), (j + n * s, 0))), (np.conj(x), ((j + n * s, 1), (i + n * s, 0)))]

            terms += [(ea, ((a(c) + n * s, 1), (a(c) + n * s, 0))), (eb, ((b(c) + n * s, 1), (b(c) + n * s, 0)))]
            terms += hop(tab, a(c), b(c)) + hop(ta, a(c), a(c + 1)) + hop(tb, b(c), b(c + 1)) + hop(g, a(c), b(c + 1))
            # Hund −J n_aσ n_bσ
            terms.append((-J, ((a(c) + n * s, 1), (a(c) + n * s, 0), (b(c) + n * s, 1), (b(c) + n * s, 0))))
            # V n_{a,c} n_{b,c+1}
            for r in (0, 1):
                terms.append((V, ((a(c) + n * s, 1), (a(c) + n * s, 0), (b(c + 1) + n * r, 1), (b(c + 1) + n * r, 0))))
        for i, u in ((a(c), U[0]), (b(c), U[1])):
            terms.append((u, ((i, 1), (i, 0), (i + n, 1), (i + n, 0))))
        up = {x: x for x in (a(c), b(c))}
        dn = {x: x + n for x in (a(c), b(c))}
        # spin flip −J (S+_a S−_b + S−_a S+_b), S+ = c†↑ c↓
        terms.append((-J, ((up[a(c)], 1), (dn[a(c)], 0), (dn[b(c)], 1), (up[b(c)], 0))))
        terms.append((-J, ((dn[a(c)], 1), (up[a(c)], 0), (up[b(c)], 1), (dn[b(c)], 0))))
        # pair hopping J (c†_a↑ c†_a↓ c_b↓ c_b↑ + h.c.)
        terms.append((J, ((up[a(c)], 1), (dn[a(c)], 1), (dn[b(c)], 0), (up[b(c)], 0))))
        terms.append((J, ((up[b(c)], 1), (dn[b(c)], 1), (dn[a(c)], 0), (up[a(c)], 0))))
    hand = FermionOperator(2 * n, terms)
    for sector in ((3, 3), (2, 3)):
        hil = SpinfulFermions(n, *sector)
        np.testing.assert_allclose(h.operator.to_dense(hil), hand.to_dense(hil), atol=TOL)


def test_wannier90_ur_jr_files_equal_numeric_options():
    folder = EXAMPLES / "wannier90"
    hr = folder / "two_orbital_hr.dat"
    files = read_hamiltonian(
        hr,
        "wannier90",
        supercell=3,
        U=folder / "two_orbital_ur.dat",
        J=str(folder / "two_orbital_jr.dat"),
        n_up=3,
        n_down=3,
    )
    numeric = read_hamiltonian(
        hr, "wannier90", supercell=[3], U=[4.0, 3.0], J=0.4, V={((0,), 0, 1): 1.5, ((1, 0, 0), 0, 0): 0.5}
    )
    hil = SpinfulFermions(6, 3, 3)
    np.testing.assert_allclose(files.operator.to_dense(hil), numeric.operator.to_dense(hil), atol=TOL)


# =============================================================== examples
def test_examples_read_and_match_references():
    ext = read_hamiltonian(EXAMPLES / "mvmc_extended_hubbard_chain4", "mvmc")
    assert (ext.n_sites, ext.n_up, ext.n_down) == (4, 2, 2)
    ref = hubbard(make_lattice("chain", [4], True), t=1.0, U=4.0, V=1.0)
    np.testing.assert_allclose(spectrum(ext.operator, 4, 2, 2), spectrum(ref, 4, 2, 2), atol=TOL)
    sq = read_hamiltonian(EXAMPLES / "stdface_hubbard_square.def", "stdface")
    assert (sq.n_sites, sq.n_up, sq.n_down) == (8, 3, 3)
    ref = hubbard(make_lattice("square", [4, 2], True), t=1.0, U=4.0, t2=-0.2)
    assert_same_matrix(sq.operator, ref, SpinfulFermions(8, 3, 3))


# =============================================================== errors
def _copy_chain(tmp_path: Path) -> Path:
    folder = tmp_path / "c6"
    shutil.copytree(CHAIN6, folder)
    return folder


def _edit(path: Path, line: int, new: str | None) -> None:
    lines = path.read_text().splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    path.write_text("\n".join(lines) + "\n")


def test_error_missing_file_and_unknown_format(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(HamiltonianFileError, match="no such file") as err:
        read_hamiltonian(missing, "nqs")
    assert str(err.value).startswith(f"{missing}: ")
    with pytest.raises(HamiltonianFileError, match="unknown format 'fcidump'") as err:
        read_hamiltonian(CHAIN6, "fcidump")
    assert str(err.value).startswith(f"{CHAIN6}: ")


def test_error_namelist_names_a_missing_def(tmp_path):
    folder = _copy_chain(tmp_path)
    (folder / "trans.def").unlink()
    with pytest.raises(HamiltonianFileError, match="Trans file 'trans.def' does not exist") as err:
        read_hamiltonian(folder, "mvmc")
    assert str(err.value).startswith(f"{folder / 'namelist.def'}:3: ")


@pytest.mark.parametrize(
    "fname, line, new, where, match",
    [
        ("trans.def", 8, "    1     1     0     1   1.0", 8, r"expected 6 columns \(i s1 j s2 Re\(t\) Im\(t\)\)"),
        ("trans.def", 9, "    0     1     1     x   1.0  0.0", 9, r"column 4 \(s2\) must be an integer"),
        ("trans.def", 9, "    0     1     1     2   1.0  0.0", 9, "is a spin"),
        ("coulombintra.def", 11, "    6   4.0", 11, r"= 6 is not a site index \(0..5; Nsite = 6\)"),
        ("trans.def", 2, "NTransfer 25", 2, "NTransfer = 25 on line 2, but the file has 24 rows"),
        ("locspn.def", 8, "    2      1", 8, r"local spins \(Kondo\) are not supported"),
        ("trans.def", 6, "    1     0     0     1   1.0  0.0", 6, "changes N↑ by"),
        ("trans.def", 7, "    0     0     1     0   1.0  0.5", 6, "Trans is not Hermitian"),
        ("modpara.def", 16, "2Sz 1", 16, "6 electrons cannot have 2Sz = 1"),
    ],
)
def test_error_bad_def_rows_name_file_and_line(tmp_path, fname, line, new, where, match):
    folder = _copy_chain(tmp_path)
    _edit(folder / fname, line, new)
    with pytest.raises(HamiltonianFileError, match=match) as err:
        read_hamiltonian(folder, "mvmc")
    assert str(err.value).startswith(f"{folder / fname}:{where}: ")


def test_error_non_hermitian_interall(tmp_path):
    folder = write_mvmc(tmp_path / "ia", 3, {"InterAll": ["0 0 1 0 2 1 2 1 0.5 0.0"]})
    with pytest.raises(HamiltonianFileError, match="non-Hermitian") as err:
        read_hamiltonian(folder, "mvmc")
    assert str(err.value).startswith(f"{folder / 'interall.def'}:6: ")


def test_error_nqs_non_hermitian_hopping_and_interaction(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("n_sites = 3\nhopping = [\n  [0, 1, -1.0], [1, 0, -1.0],\n  [1, 2, -1.0],\n]\n")
    with pytest.raises(HamiltonianFileError, match=r"t\[1\]\[2\] = -1 needs t\[2\]\[1\] = -1, which is missing"):
        read_hamiltonian(path, "nqs")
    try:
        read_hamiltonian(path, "nqs")
    except HamiltonianFileError as exc:
        assert str(exc).startswith(f"{path}:4: hopping[2] = [1, 2, -1.0]")
    path.write_text("n_sites = 3\nhopping = [[0, 1, 1.0, 0.5], [1, 0, 1.0, 0.5]]\n")
    where = re.escape(str(path))
    with pytest.raises(HamiltonianFileError, match=rf"^{where}:2: hopping\[0\].*needs t\[1\]\[0\] = \(1-0.5j\)"):
        read_hamiltonian(path, "nqs")
    path.write_text("n_sites = 3\ninteraction = [\n  [0, 0, 0, 0, 2.0],\n  [0, 1, 2, 2, 0.5],\n]\n")
    with pytest.raises(HamiltonianFileError, match=rf"^{where}:4: interaction\[1\].*non-Hermitian"):
        read_hamiltonian(path, "nqs")


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("n_sites = 3\nhopping = [[0, 1, -1.0]\n", 2, "invalid TOML"),
        ("n_sites = 3\nhubbard_U = = 2\nn_up = 1\n", 2, "invalid TOML"),
        ("n_sites = 3\nhoping = []\n", 2, "unknown key 'hoping'"),
        ("n_sites = 2\nn_up = 3\nn_down = 1\nhubbard_U = 1\n", 2, "n_up = 3 is impossible on 2 sites"),
        ("n_sites = 2\nhopping = [\n [0, 1, -1], [1, 0, -1],\n [0, 2, 1], [2, 0, 1]]\n", 4, "site index 2"),
    ],
)
def test_error_nqs_file_lines(tmp_path, text, line, match):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(HamiltonianFileError, match=match) as err:
        read_hamiltonian(path, "nqs")
    assert str(err.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    "extra, line, match",
    [
        ("J = 1.0", 5, "StdFace key 'j' is not supported"),
        ("t'' = 0.1", 5, "third-neighbour hopping"),
        ("phase0 = 90", 5, "only 0 \\(periodic\\) and 180"),
        ("t0 = 0.5", 5, "anisotropic couplings are not supported"),
        ("bad line", 5, "expected 'key = value'"),
    ],
)
def test_error_stdface_lines(tmp_path, extra, line, match):
    path = tmp_path / "s.def"
    path.write_text(f'model = "Hubbard"\nlattice = "chain"\nL = 4\nt = 1\n{extra}\n')
    with pytest.raises(HamiltonianFileError, match=match) as err:
        read_hamiltonian(path, "stdface")
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_error_stdface_unsupported_lattice_and_model(tmp_path):
    path = tmp_path / "tri.def"
    path.write_text('model = "Hubbard"\nlattice = "Triangular"\nW = 3\nL = 3\n')
    with pytest.raises(HamiltonianFileError, match="StdFace lattice 'Triangular' is not supported") as err:
        read_hamiltonian(path, "stdface")
    assert str(err.value).startswith(f"{path}:2: ")
    path.write_text('model = "Spin"\nlattice = "chain"\nL = 4\n')
    where = re.escape(str(path))
    with pytest.raises(HamiltonianFileError, match=rf"^{where}:1: StdFace model 'Spin' is not supported"):
        read_hamiltonian(path, "stdface")


def test_error_wannier90(tmp_path):
    blocks = {(0, 0, 0): np.array([[0.0]]), (1, 0, 0): np.array([[-1.0]]), (-1, 0, 0): np.array([[-0.9]])}
    path = write_hr(tmp_path / "bad_hr.dat", 1, blocks)
    with pytest.raises(HamiltonianFileError, match=r"not Hermitian: H_11\(R=\(1, 0, 0\)\) = -1") as err:
        read_hamiltonian(path, "wannier90", supercell=4)
    assert str(err.value).startswith(f"{path}:6: ")
    with pytest.raises(HamiltonianFileError, match="needs supercell"):
        read_hamiltonian(path, "wannier90")
    _edit(path, 7, "   -1    0    0    1    1")
    with pytest.raises(HamiltonianFileError, match=rf"^{re.escape(str(path))}:7: expected 7 columns"):
        read_hamiltonian(path, "wannier90", supercell=4)
