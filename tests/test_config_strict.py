"""Config values are taken strictly and each sampler and optimizer kind takes its own keys: every refusal is one
line naming the key; a [sampler] without kind follows the Hamiltonian."""

from __future__ import annotations

import pytest

from nqs.config import ConfigError, load_config, parse_config
from nqs.workflow import build

CHAIN = {"lattice": {"kind": "chain", "size": [6]}}


@pytest.mark.parametrize(
    "data, key",
    [
        ({"optimizer": {"learning_rate": True}}, "optimizer.learning_rate"),
        ({"optimizer": {"learning_rate": float("inf")}}, "optimizer.learning_rate"),
        ({"optimizer": {"diag_shift": float("inf")}}, "optimizer.diag_shift"),
        ({"optimizer": {"n_steps": 10.0}}, "optimizer.n_steps"),
        ({"hamiltonian": {"kind": "hubbard", "U": "4.0"}}, "hamiltonian.U"),
        ({"hamiltonian": {"J": float("nan")}}, "hamiltonian.J"),
        ({"hamiltonian": {"kind": "ising", "h": float("-inf")}}, "hamiltonian.h"),
        ({"sampler": {"n_chains": "16"}}, "sampler.n_chains"),
        ({"model": {"marshall_sign": 1}}, "model.marshall_sign"),
        ({"lattice": {"pbc": "yes"}}, "lattice.pbc"),
        ({"output": {"checkpoint_every": 2.5}}, "output.checkpoint_every"),
        ({"seed": "1"}, "seed"),
    ],
)
def test_values_of_the_wrong_type_or_not_finite_are_refused_naming_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        parse_config({**CHAIN, **data})
    msg = str(err.value)
    assert f"config: {key}:" in msg and "\n" not in msg, msg


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"sampler": {"kind": "exact", "n_chains": 4}}, "'n_chains' is not a parameter of kind 'exact'"),
        ({"sampler": {"kind": "exchange", "p_exchange": 0.1}}, "'p_exchange' is not a parameter of kind 'exchange'"),
        ({"optimizer": {"kind": "adam", "diag_shift": 0.1}}, "'diag_shift' is not a parameter of kind 'adam'"),
        ({"optimizer": {"kind": "minsr", "solver": "dense"}}, "'solver' is not a parameter of kind 'minsr'"),
        ({"optimizer": {"kind": "newton"}}, "unknown optimizer kind 'newton'"),
        ({"sampler": {"kind": "gibbs"}}, "unknown sampler kind 'gibbs'"),
        ({"optimizer": {"diag_shift": 0.01, "diag_shift_min": 0.1, "diag_shift_decay": 0.9}}, "diag_shift_min"),
    ],
)
def test_each_sampler_and_optimizer_kind_takes_its_own_keys(data, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config({**CHAIN, **data})


@pytest.mark.parametrize(
    "data, key",
    [
        ({"hamiltonian": {"kind": "ising"}, "sampler": {"kind": "exchange"}}, "sampler.kind"),
        ({"hamiltonian": {"kind": "ising", "total_sz": 0}}, "hamiltonian.total_sz"),
        ({"hamiltonian": {"total_sz": 0}, "sampler": {"kind": "local"}}, "sampler.kind"),
        ({"hamiltonian": {"kind": "heisenberg"}, "sampler": {"kind": "hop"}}, "sampler.kind"),
        ({"hamiltonian": {"kind": "hubbard"}, "sampler": {"kind": "exchange"}}, "sampler.kind"),
        ({"sampler": {"n_chains": 16, "n_samples": 1000}}, "n_samples (1000) is not a multiple of n_chains (16)"),
        ({"sampler": {"n_chains": 16, "n_samples_eval": 100}}, "set n_samples_eval = 96 or 112"),
        ({"evaluation": {"lanczos_samples": 100}}, "evaluation.lanczos_samples (100)"),
    ],
)
def test_impossible_combinations_are_refused_when_the_config_is_read(data, key):
    with pytest.raises(ConfigError) as err:
        parse_config({**CHAIN, **data})
    assert key in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "hamiltonian, kind",
    [
        ({"kind": "heisenberg"}, "exchange"),
        ({"kind": "ising"}, "local"),
        ({"kind": "hubbard"}, "hop"),
    ],
)
def test_a_sampler_without_kind_follows_the_hamiltonian(hamiltonian, kind):
    model = {"kind": "slater"} if kind == "hop" else {"kind": "rbm"}
    cfg = parse_config({**CHAIN, "hamiltonian": hamiltonian, "model": model, "sampler": {"n_samples": 64}})
    assert cfg.sampler.kind == kind
    assert build(cfg).driver.sampler.n_samples == 64


HEISENBERG_BOND = [[1.0, "XX", [0, 1]], [1.0, "YY", [0, 1]], [1.0, "ZZ", [0, 1]], [1.0, "ZZ", [1, 2]]]


@pytest.mark.parametrize(
    "terms, kind", [(HEISENBERG_BOND, "exchange"), ([[1.0, "X", [0]], [1.0, "ZZ", [0, 1]]], "local")]
)
def test_a_pauli_sum_gets_its_sampler_from_the_built_operator(terms, kind):
    cfg = parse_config({**CHAIN, "hamiltonian": {"kind": "pauli", "terms": terms}, "sampler": {"n_samples": 64}})
    assert cfg.sampler.kind == "auto"
    problem = build(cfg)
    assert problem.resolved["sampler"] == {"kind": kind}
    assert problem.resolved_config()["sampler"]["kind"] == kind


def test_an_empty_config_file_is_refused(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("# only a comment\n")
    with pytest.raises(ConfigError, match="empty.toml: the config is empty"):
        load_config(path)
