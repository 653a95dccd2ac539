"""No silent change of problem, and a warning where a run cannot learn.

* Hamiltonian files whose model nqs cannot honour exactly are refused naming the file, line and keyword:
  grand-canonical and other non-Hubbard HPhi ``CalcModel`` values, an electron count without ``2Sz`` (or
  ``2Sz`` without a count) unless the config chooses the sector, spin-flip terms, and a config filling that
  contradicts the file's.
* ``nqs ed -k K`` lists every copy of a degenerate level, with its degeneracy, as dense diagonalization does.
* A Pauli term with a word as coefficient is named (``hamiltonian: terms: entry ...``).
* A start next to an excited eigenstate (complex RBM without the Marshall sign on the Heisenberg chain) is
  warned about, in the output and in result.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nqs import exact
from nqs.cli import main
from nqs.config import ConfigError, parse_config
from nqs.exact import level_degeneracies, lowest_energies, lowest_levels
from nqs.hamiltonians import heisenberg
from nqs.hamiltonians.files import HamiltonianFileError, read_hamiltonian
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.workflow import build, sector_table
from nqs.workflow.run_folder import start_warning

CHAIN6 = Path(__file__).resolve().parent / "data" / "mvmc_hubbard_chain6"
#: 8 header lines: Nsite on line 9, the filling from line 10
MODPARA_HEAD = "----\nModel_Parameters 0\n----\nHPhi\n----\nCDataFileHead zvo\nCParaFileHead zqp\n----\n"


def chain6(tmp_path: Path, modpara: list[str] | None = None, calcmodel: int | None = None) -> Path:
    """The 6-site Hubbard ring's expert files; ``modpara`` lines replace the filling, ``calcmodel`` adds an
    HPhi calcmod.def (CalcModel on its line 4)."""
    folder = tmp_path / "c6"
    shutil.copytree(CHAIN6, folder)
    if modpara is not None:
        (folder / "modpara.def").write_text(MODPARA_HEAD + "\n".join(["Nsite 6", *modpara]) + "\nNVMCSample 100\n")
    if calcmodel is not None:
        (folder / "calcmod.def").write_text(
            "#CalcType = 0:Lanczos, 1:TPQCalc, 2:FullDiag, 3:CG, 4:Time-evolution\n"
            "#CalcModel = 0:Hubbard, 1:Spin, 2:Kondo, 3:HubbardGC, 4:SpinGC, 5:KondoGC\n"
            f"CalcType   0\nCalcModel   {calcmodel}\nReStart   0\n"
        )
        with (folder / "namelist.def").open("a") as f:
            f.write("         CalcMod  calcmod.def\n")
    return folder


def file_config(path: Path, fmt: str = "mvmc", **hamiltonian) -> dict:
    return {
        "lattice": {"kind": "chain", "size": [6]},
        "hamiltonian": {"kind": "file", "format": fmt, "path": str(path), **hamiltonian},
        "model": {"kind": "slater"},
        "sampler": {"kind": "hop", "n_chains": 2, "n_samples": 8},
    }


# =============================================================== HPhi CalcModel
def test_grand_canonical_calcmod_is_refused_naming_file_line_keyword(tmp_path, capsys):
    folder = chain6(tmp_path, calcmodel=3)
    where = f"{folder / 'calcmod.def'}:4: "
    with pytest.raises(HamiltonianFileError, match="CalcModel = 3 \\(HubbardGC\\) is not supported: grand canonical"):
        read_hamiltonian(folder, "mvmc")
    try:
        read_hamiltonian(folder, "mvmc")
    except HamiltonianFileError as err:
        assert str(err).startswith(where)
    cfg = tmp_path / "gc.toml"
    cfg.write_text(
        f'[lattice]\nkind = "chain"\nsize = [6]\n[hamiltonian]\nkind = "file"\nformat = "mvmc"\npath = "{folder}"\n'
    )
    assert main(["ed", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and where in err and "Traceback" not in err


@pytest.mark.parametrize("model, name", [(1, "Spin"), (2, "Kondo"), (4, "SpinGC"), (5, "KondoGC"), (9, None)])
def test_other_calcmodels_are_refused(tmp_path, model, name):
    folder = chain6(tmp_path, calcmodel=model)
    what = f"CalcModel = {model} \\({name}\\) is not supported" if name else "CalcModel = 9 is not an HPhi model"
    with pytest.raises(HamiltonianFileError, match=what) as err:
        read_hamiltonian(folder, "mvmc")
    assert str(err.value).startswith(f"{folder / 'calcmod.def'}:4: ")


def test_canonical_hubbard_calcmod_is_read(tmp_path):
    h = read_hamiltonian(chain6(tmp_path, calcmodel=0), "mvmc")
    assert (h.n_up, h.n_down) == (3, 3)


# =============================================================== fillings
def test_electron_count_without_2sz_is_refused_unless_the_config_chooses(tmp_path):
    folder = chain6(tmp_path, ["Ncond 4"])  # Ncond on line 10
    with pytest.raises(ConfigError) as err:
        build(parse_config(file_config(folder)))
    msg = str(err.value)
    assert msg.startswith(f"hamiltonian.path: {folder / 'modpara.def'}:10: Ncond = 4 gives the electron number ")
    assert "without 2Sz" in msg and "hamiltonian.n_up" in msg and "n_up + n_down = 4" in msg
    # the config chooses a sector with N = 4: accepted; one number is enough
    for chosen, sector in (({"n_up": 3, "n_down": 1}, (3, 1)), ({"n_up": 1}, (1, 3)), ({"n_down": 2}, (2, 2))):
        hil = build(parse_config(file_config(folder, **chosen))).hilbert
        assert (hil.n_up, hil.n_down) == sector
    with pytest.raises(ConfigError, match=r"^hamiltonian.n_up: .*modpara.def:10: Ncond = 4 fixes N↑ \+ N↓ = 4, but"):
        build(parse_config(file_config(folder, n_up=3, n_down=3)))


def test_2sz_without_electron_count_is_refused(tmp_path):
    folder = chain6(tmp_path, ["2Sz 2"])
    with pytest.raises(ConfigError, match=r"modpara.def:10: 2Sz = 2 gives 2S\^z without the electron number"):
        build(parse_config(file_config(folder)))
    hil = build(parse_config(file_config(folder, n_up=3, n_down=1))).hilbert
    assert (hil.n_up, hil.n_down) == (3, 1)


def test_stdface_nelec_without_2sz_is_refused(tmp_path):
    path = tmp_path / "stan.in"
    path.write_text('model = "Hubbard"\nlattice = "chain"\nL = 6\nt = 1\nU = 4\nnelec = 4\n')
    assert read_hamiltonian(path, "stdface").stated.n_electrons == 4
    with pytest.raises(ConfigError, match=f"^hamiltonian.path: {path}:6: nelec = 4 gives the electron number"):
        build(parse_config(file_config(path, "stdface")))


def test_config_filling_contradicting_the_file_is_refused_naming_both(tmp_path):
    folder = chain6(tmp_path)  # Ncond 6, 2Sz 0 on lines 15, 16
    with pytest.raises(ConfigError) as err:
        build(parse_config(file_config(folder, n_up=4, n_down=2)))
    msg = str(err.value)
    assert msg.startswith(f"hamiltonian.n_up: {folder / 'modpara.def'}:15: Ncond = 6, 2Sz = 0 fix N↑ = 3, N↓ = 3")
    assert "hamiltonian.n_up = 4, hamiltonian.n_down = 2" in msg
    hil = build(parse_config(file_config(folder, n_up=3, n_down=3))).hilbert  # agreeing: accepted
    assert (hil.n_up, hil.n_down) == (3, 3)
    toml = tmp_path / "ring.toml"
    toml.write_text("n_sites = 6\nn_up = 2\nn_down = 2\nhopping = [[0, 1, -1.0], [1, 0, -1.0]]\n")
    with pytest.raises(ConfigError, match=f"{toml}:2: n_up = 2, n_down = 2 fix .* hamiltonian.n_down = 3"):
        build(parse_config(file_config(toml, "nqs", n_down=3)))


# =============================================================== spin flips
def test_spin_flip_terms_are_refused_naming_file_line_keyword(tmp_path):
    folder = chain6(tmp_path)
    lines = (folder / "trans.def").read_text().splitlines()
    lines[5] = "    1     0     0     1   1.0  0.0"  # c†_1↑ c_0↓ on line 6
    (folder / "trans.def").write_text("\n".join(lines) + "\n")
    with pytest.raises(HamiltonianFileError, match="the Trans row c†_1↑ c_0↓ changes N↑ by \\+1 \\(a spin flip") as e:
        read_hamiltonian(folder, "mvmc")
    assert str(e.value).startswith(f"{folder / 'trans.def'}:6: ")
    ia = tmp_path / "ia"
    shutil.copytree(CHAIN6, ia)
    (ia / "interall.def").write_text("=====\nNInterAll 1\n=====\n=====\n=====\n0 0 1 1 2 1 2 1 0.5 0.0\n")
    with (ia / "namelist.def").open("a") as f:
        f.write("InterAll interall.def\n")
    with pytest.raises(HamiltonianFileError, match="this InterAll term changes N↑ by \\+1 \\(a spin flip") as e:
        read_hamiltonian(ia, "mvmc")
    assert str(e.value).startswith(f"{ia / 'interall.def'}:6: ")


# =============================================================== every copy of a degenerate level
def _ferro_chain(L: int):
    """H = −Σ S_i·S_j on a ring of L spins, all S^z: the ground level is the S = L/2 multiplet, L + 1 copies."""
    return heisenberg(make_lattice("chain", [L], True), J=-1.0), SpinHilbert(L)


@pytest.mark.parametrize("J, k", [(-1.0, 6), (-1.0, 12), (1.0, 6)])
def test_lanczos_lists_every_copy_like_dense(monkeypatch, J, k):
    op, hil = heisenberg(make_lattice("chain", [8], True), J=J), SpinHilbert(8)
    dense = np.linalg.eigvalsh(op.to_sparse(hil).toarray())
    monkeypatch.setattr(exact, "DENSE_ED_STATES", 0)  # the Lanczos path on a small space
    w, deg = lowest_levels(op, hil, k)
    np.testing.assert_allclose(w, dense[:k], atol=1e-9)
    assert deg == level_degeneracies(dense[:k], dense)
    np.testing.assert_allclose(lowest_energies(op, hil, k), dense[:k], atol=1e-9)
    if J < 0:
        assert deg[0] == 9  # S = 4
    else:
        assert deg[:4] == [1, 3, 3, 3]  # singlet, then a triplet


def test_nqs_ed_lists_every_copy_and_the_degeneracy(tmp_path, capsys):
    L = 11  # 2048 states: the Lanczos path; the S = 11/2 ground level, E = −L/4, has L + 1 = 12 copies
    cfg = tmp_path / "ferro.toml"
    cfg.write_text(
        f'[lattice]\nkind = "chain"\nsize = [{L}]\n[hamiltonian]\nkind = "heisenberg"\nJ = -1.0\n'
        '[sampler]\nkind = "local"\n'
    )
    assert main(["ed", str(cfg), "-k", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["energies"], [-L / 4] * 6, atol=1e-9)
    assert out["degeneracies"] == [12] * 6
    assert main(["ed", str(cfg), "-k", "6"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("E_")]
    assert len(lines) == 6 and all(x.endswith("(×12)") for x in lines)


def test_sector_table_counts_copies_within_each_sector():
    problem = build(
        parse_config(
            {
                "lattice": {"kind": "chain", "size": [8]},
                "hamiltonian": {"kind": "heisenberg", "J": -1.0},
                "sampler": {"kind": "local"},
            }
        )
    )
    op, hil = _ferro_chain(8)
    dense = np.linalg.eigvalsh(op.to_sparse(hil).toarray())
    ground = sector_table(problem, n_levels=3)[0]
    assert ground["k_label"] == "0" and ground["degeneracies"] == [9, 9, 9]  # the S = 4 multiplet, at k = 0
    np.testing.assert_allclose(ground["energies"], dense[:3], atol=1e-9)
    # a level's copies in each sector add up to its degeneracy in the whole space
    rows = sector_table(problem, n_levels=hil.n_states)
    for level in np.unique(dense.round(8))[:4]:
        per_sector = [
            next((d for e, d in zip(r["energies"], r["degeneracies"], strict=True) if abs(e - level) < 1e-8), 0)
            for r in rows
        ]
        assert sum(per_sector) == level_degeneracies([level], dense)[0]


# =============================================================== Pauli terms
def test_pauli_word_coefficient_names_terms_and_the_entry(tmp_path, capsys):
    spec = {
        "lattice": {"kind": "chain", "size": [4]},
        "hamiltonian": {"kind": "pauli", "terms": [[1.0, "X", [0]], ["abc", "ZZ", [0, 1]]]},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(spec)
    msg = str(err.value)
    assert "hamiltonian.terms: entry 1, ['abc', 'ZZ', [0, 1]]: the coefficient 'abc' is not a number" in msg
    assert "malformed" not in msg
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        '[lattice]\nkind = "chain"\nsize = [4]\n[hamiltonian]\nkind = "pauli"\nterms = [[1, "ZZ", [0, 9]]]\n'
    )
    assert main(["ed", str(cfg)]) == 2
    assert "hamiltonian: terms: entry 0, 'ZZ' on [0, 9]: site 9 is outside the lattice" in capsys.readouterr().err


# =============================================================== a start that cannot learn
def test_start_warning_criterion():
    # Heisenberg ring L = 16: E0 = -7.14, E∞ = 0; the maximal-spin state has E = +4 and no variance
    assert "marshall_sign = true" in start_warning(3.99, 0.007, 0.0, -7.142)
    assert start_warning(3.99, 0.007, 0.0, None) is not None  # no reference: above E∞
    assert start_warning(-4.6, 3.7, 0.0, -7.142) is None  # a Marshall-signed start: learns
    assert start_warning(-7.14, 1e-6, 0.0, -7.142) is None  # converged: near the reference
    assert start_warning(-5.0, 1e-8, 0.0, -7.142) is None  # an eigenstate, but not far from E0
    assert "marshall" not in start_warning(5.0, 1e-6, 1.0, -3.0, fermions=True)


@pytest.mark.parametrize("marshall", [False, True])
def test_run_warns_when_the_start_cannot_learn(tmp_path, marshall):
    from nqs.workflow import solve

    cfg = parse_config(
        {
            "seed": 1,
            "lattice": {"kind": "chain", "size": [16]},
            "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
            "model": {"kind": "rbm", "alpha": 1, "marshall_sign": marshall},
            "sampler": {"kind": "exchange", "n_chains": 8, "n_samples": 128, "n_samples_eval": 128},
            "optimizer": {"kind": "sr", "learning_rate": 0.01, "n_steps": 1},
            "output": {"dir": str(tmp_path / "run")},
        }
    )
    from rich.console import Console

    console = Console(stderr=True, record=True, width=300)
    result = solve(cfg, progress=False, console=console)
    text = console.export_text()
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    if marshall:
        assert "warning" not in text and "warnings" not in saved
    else:
        assert result["energy"]["mean"] > 3.5  # next to the maximal-spin state, E = +L/4 = 4
        assert "warning: the start has almost no energy variance" in text and "marshall_sign = true" in text
        assert saved["warnings"] == result["warnings"] and "sign structure" in saved["warnings"][0]
