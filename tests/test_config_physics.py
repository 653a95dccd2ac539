"""Config → Problem for electrons and symmetry sectors: the built objects, the references, the errors.

Physics checks: a Hubbard config's ED equals the tabulated exact energy; a short exact-sampling
RBM+PP run from a config approaches ED; a projected model's reference is the ED energy of its sector
and the sectors of ``nqs ed --sectors`` contain the full ground state; the correlation ratio's error
by linearization matches a direct jackknife.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from nqs.config import ConfigError, parse_config
from nqs.exact import lowest_energies
from nqs.models import Projected
from nqs.workflow import build, correlation_ratio, exact_reference, sector_table, solve


def _hubbard(**over):
    base = {
        "lattice": {"kind": "chain", "size": [6]},
        "hamiltonian": {"kind": "hubbard", "U": 4.0},
        "model": {"kind": "rbm_pp", "alpha": 1},
        "sampler": {"kind": "hop", "n_chains": 8, "n_samples": 64},
    }
    for k, v in over.items():
        # a sampler of another kind replaces the section (its keys are the kind's own)
        keep = k != "sampler" or v.get("kind", "hop") == "hop"
        base[k] = {**(base.get(k, {}) if keep else {}), **v}
    return parse_config(base)


def test_hubbard_config_builds_the_sector_and_matches_the_reference_energy():
    prob = build(_hubbard())
    assert prob.fermions and prob.hilbert.n_up == 3 and prob.hilbert.n_down == 3  # default half filling
    e, method = exact_reference(prob)
    assert method == "ED" and abs(e[0] - (-3.66870617887296)) < 1e-9  # shared/reference, chain 6 PBC U=4
    assert prob.n_particles == 6
    assert abs(prob.energy_at_infinite_temperature() - 4.0 * 3 * 3 / 6) < 1e-12  # U N↑N↓/L
    prob_a = build(_hubbard(hamiltonian={"boundary": "antiperiodic"}))
    assert abs(exact_reference(prob_a)[0][0] - (-3.4078490586191217)) < 1e-9


def test_hubbard_4x4_uses_the_tabulated_reference():
    cfg = parse_config(
        {
            "lattice": {"kind": "square", "size": [4, 4]},
            "hamiltonian": {"kind": "hubbard", "U": 4, "n_up": 5, "n_down": 5},
            "model": {"kind": "pp"},
            "sampler": {"kind": "hop"},
        }
    )
    e, method = exact_reference(build(cfg))
    assert e == [-19.580937525419095] and "reference" in method


def test_exact_sampling_rbm_pp_run_from_config_approaches_ed(tmp_path):
    cfg = _hubbard(
        lattice={"size": [4]},
        hamiltonian={"boundary": "antiperiodic"},
        sampler={"kind": "exact"},
        optimizer={"n_steps": 60, "learning_rate": 0.05},
        output={"dir": str(tmp_path)},
    )
    res = solve(cfg, progress=False)
    assert res["exact_method"] == "ED"
    assert res["relative_error"] < 2e-3, res["relative_error"]
    assert json.loads((tmp_path / "result.json").read_text())["v_score"] >= 0


@pytest.mark.parametrize(
    "over, message",
    [
        ({"hamiltonian": {"n_up": 7}}, "impossible filling"),
        ({"model": {"kind": "rbm"}}, "carries no fermion sign"),
        ({"sampler": {"kind": "exchange"}}, 'electrons use kind = "hop"'),
        ({"hamiltonian": {"boundary": ["periodic", "open"]}}, "boundary needs one entry per direction"),
        ({"model": {"symmetry": {"k": [0]}}}, "needs model.shared_weights"),
        ({"lattice": {"size": [5]}}, "n_up and n_down"),
    ],
)
def test_electron_config_errors_name_the_problem(over, message):
    with pytest.raises(ConfigError, match=message):
        build(_hubbard(**over))


def test_validation_errors_for_electron_keys():
    with pytest.raises(ConfigError, match="n_up"):
        parse_config({"hamiltonian": {"kind": "hubbard", "n_up": -1}})
    with pytest.raises(ConfigError, match="'U' is not a parameter of kind 'heisenberg'"):
        parse_config({"hamiltonian": {"kind": "heisenberg", "U": 4}})
    with pytest.raises(ConfigError, match="fix 'total_sz'"):
        parse_config({"hamiltonian": {"kind": "heisenberg", "n_up": 3}})
    with pytest.raises(ConfigError, match="needs 'path' and 'format'"):
        parse_config({"hamiltonian": {"kind": "file"}})


def _spin(symmetry, size=(8,), kind="chain", ham="heisenberg", **model):
    return parse_config(
        {
            "lattice": {"kind": kind, "size": list(size)},
            "hamiltonian": {"kind": ham, "total_sz": 0},
            "model": {"kind": "rbm", "alpha": 1, "symmetry": symmetry, **model},
            "sampler": {"kind": "exchange", "n_chains": 8, "n_samples": 64},
        }
    )


def test_projected_config_reference_is_the_sector_energy():
    """Chain 8: (k = π, parity −1) holds the lowest triplet; (k = 0, +1) the ground state."""
    p0 = build(_spin({"k": [0], "spin_parity": 1}))
    assert isinstance(p0.driver.model, Projected)
    e0, m0 = exact_reference(p0)
    gs = lowest_energies(p0.hamiltonian, p0.hilbert, 4)
    assert abs(e0[0] - gs[0]) < 1e-10 and "sector" in m0
    p1 = build(_spin({"k": ["pi"], "spin_parity": -1}))
    e1, _ = exact_reference(p1)
    assert e1[0] > gs[0] + 1e-3 and np.min(np.abs(gs - e1[0])) < 1e-10  # an excited level of the full spectrum
    p2 = build(_spin({"k": ["pi"], "point_group": "A1", "spin_parity": -1}))
    assert abs(exact_reference(p2)[0][0] - e1[0]) < 1e-10


def test_sector_table_union_contains_the_spectrum_bottom():
    prob = build(_spin(None, size=(4, 4), kind="square", ham="j1j2"))
    rows = sector_table(prob, point_group=True, spin_flip=True, n_levels=2)
    levels = np.sort(np.concatenate([r["energies"] for r in rows]))
    gs = lowest_energies(prob.hamiltonian, prob.hilbert, 1)[0]
    assert abs(levels[0] - gs) < 1e-9 and abs(gs - (-8.457923351394875)) < 1e-9
    best = rows[0]
    assert best["k"] == [0.0, 0.0] and best["irrep"] == "A1" and best["spin_parity"] == 1


@pytest.mark.parametrize(
    "sym, message",
    [
        ({"k": [0.3]}, "not an allowed momentum"),
        ({"k": ["half pi"]}, "cannot read momentum"),
        ({"k": [0, 0]}, "needs 1 components"),
        ({"k": [0], "point_group": "Q7"}, "model.symmetry"),
    ],
)
def test_bad_symmetry_is_a_config_error(sym, message):
    with pytest.raises(ConfigError, match=message):
        build(_spin(sym))


def test_correlation_ratio_error_matches_jackknife():
    from nqs.lattice import make_lattice

    lat = make_lattice("chain", 8)
    rng = np.random.default_rng(0)
    n_q = len(lat.momenta())
    base = np.linspace(0.2, 1.0, n_q)
    sq = base[None, :] * (1 + 0.3 * rng.standard_normal((4000, n_q)))
    r = correlation_ratio(lat, jax.numpy.asarray(sq))
    iq = int(np.argmax(sq.mean(0)))
    q = np.asarray(lat.momenta())
    j = int(
        np.argmin([np.linalg.norm(((q[i] - q[iq] - 2 * np.pi / 8) + np.pi) % (2 * np.pi) - np.pi) for i in range(n_q)])
    )
    assert abs(r["value"] - (1 - sq[:, j].mean() / sq[:, iq].mean())) < 1e-12
    blocks = np.array_split(np.arange(4000), 50)  # jackknife over 50 blocks
    jk = np.array([1 - np.delete(sq[:, j], b).mean() / np.delete(sq[:, iq], b).mean() for b in blocks])
    err_jk = np.sqrt((len(blocks) - 1) * np.mean((jk - jk.mean()) ** 2))
    assert abs(r["error"] / err_jk - 1) < 0.1


def test_file_hamiltonian_config_same_spectrum_as_hubbard_config():
    """kind = "file" (mVMC .def set of the 6-site Hubbard ring) builds the same problem as kind = "hubbard"."""
    import pathlib

    data = pathlib.Path(__file__).parent / "data" / "mvmc_hubbard_chain6"
    cfg = _hubbard()
    cfg_file = parse_config(
        {
            "lattice": {"kind": "chain", "size": [6]},
            "hamiltonian": {"kind": "file", "format": "mvmc", "path": str(data)},
            "model": {"kind": "rbm_pp", "alpha": 1},
            "sampler": {"kind": "hop"},
        }
    )
    a, b = build(cfg), build(cfg_file)
    assert (b.hilbert.n_up, b.hilbert.n_down) == (3, 3)
    assert np.allclose(
        lowest_energies(a.hamiltonian, a.hilbert, 3), lowest_energies(b.hamiltonian, b.hilbert, 3), atol=1e-10
    )
    assert sorted(map(tuple, b.driver.sampler.rule.hop.bonds)) == sorted(map(tuple, a.driver.sampler.rule.hop.bonds))


def test_file_hamiltonian_errors_name_the_file(tmp_path):
    import pathlib

    data = pathlib.Path(__file__).parent / "data" / "mvmc_hubbard_chain6"
    wrong = parse_config(
        {
            "lattice": {"kind": "chain", "size": [8]},
            "hamiltonian": {"kind": "file", "format": "mvmc", "path": str(data)},
            "model": {"kind": "pp"},
            "sampler": {"kind": "hop"},
        }
    )
    with pytest.raises(ConfigError, match="has 8 sites but .* describes 6"):
        build(wrong)
    missing = parse_config(
        {
            "lattice": {"kind": "chain", "size": [6]},
            "hamiltonian": {"kind": "file", "format": "nqs", "path": str(tmp_path / "nope.toml")},
            "model": {"kind": "pp"},
            "sampler": {"kind": "hop"},
        }
    )
    with pytest.raises(ConfigError, match="nope.toml"):
        build(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text("n_sites = 2\nhopping = [[0, 1, -1.0], [1, 0]]\n")
    broken = parse_config(
        {
            "lattice": {"kind": "chain", "size": [2]},
            "hamiltonian": {"kind": "file", "format": "nqs", "path": str(bad), "n_up": 1, "n_down": 1},
            "model": {"kind": "pp"},
            "sampler": {"kind": "hop"},
        }
    )
    with pytest.raises(ConfigError, match="bad.toml"):
        build(broken)


def test_sampler_power_reaches_the_sampler_and_is_refused_where_it_cannot_apply():
    cfg = _spin({"k": [0], "spin_parity": 1})
    cfg.sampler.power = 1.0
    assert build(cfg).driver.sampler.power == 1.0
    with pytest.raises(ConfigError, match="sampler.power: 'power' is not a parameter of kind 'exact'"):
        parse_config({"lattice": {"kind": "chain", "size": [8]}, "sampler": {"kind": "exact", "power": 1.0}})
    with pytest.raises(ConfigError, match="power"):
        parse_config(
            {"lattice": {"kind": "chain", "size": [8]}, "hamiltonian": {"kind": "heisenberg"}, "sampler": {"power": 3}}
        )
