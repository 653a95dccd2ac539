"""The built-in ``[model]`` kinds: each one config class with exactly the keys it takes, registered beside its
builder (``nqs.models.kinds``, ``nqs.models.pair_kinds``); a key of another kind, a model that cannot describe the
Hamiltonian and a setting the Hamiltonian rules out are errors when the config is read, naming the key."""

from __future__ import annotations

from typing import Literal

import pytest

from nqs.config import ConfigError, default_config, parse_config
from nqs.registry import MODELS, Section

HUBBARD = {"kind": "hubbard", "U": 4.0}

#: The keys of each built-in kind (besides ``kind``).
TAKES = {
    "rbm": {"alpha", "param_dtype", "init_scale", "marshall_sign", "shared_weights", "symmetry"},
    "rbm_real": {"alpha", "init_scale", "marshall_sign", "symmetry"},
    "rbm_symmetric": {"alpha", "init_scale", "marshall_sign", "symmetry"},
    "jastrow": {"init_scale", "marshall_sign", "symmetry"},
    "dbm": {"alpha", "n_hidden", "n_deep", "param_dtype", "init_scale", "marshall_sign"},
    "slater": {"param_dtype", "init"},
    "pp": {
        "param_dtype",
        "init",
        "marshall_sign",
        "gutzwiller",
        "jastrow",
        "doublon_holon",
        "pairing",
        "spin_projection",
        "shared_weights",
        "symmetry",
    },
}
TAKES["rbm_pp"] = TAKES["pp"] | {"alpha", "init_scale"}


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg.removeprefix("config: ")


def test_each_built_in_kind_is_registered_with_exactly_its_keys():
    assert set(TAKES) <= set(MODELS.kinds())
    for kind, keys in TAKES.items():
        assert set(MODELS[kind].config.model_fields) - {"kind"} == keys, kind


def test_the_default_model_is_the_rbm_with_its_defaults():
    mc = parse_config({}).model
    assert mc.model_dump() == {
        "kind": "rbm",
        "alpha": 4.0,
        "param_dtype": "auto",
        "init_scale": 0.01,
        "marshall_sign": None,
        "shared_weights": None,
        "symmetry": None,
    }
    assert parse_config({"model": {"alpha": 3}}).model.kind == "rbm"
    assert default_config().model.model_dump()["param_dtype"] == "real"


@pytest.mark.parametrize(
    "lattice, hamiltonian, model, chosen",
    [
        ({"size": [8]}, {"kind": "heisenberg"}, {}, {"marshall_sign": True, "param_dtype": "real"}),
        ({"size": [8]}, {"kind": "xxz", "Delta": 2.0}, {}, {"marshall_sign": True, "param_dtype": "real"}),
        ({"size": [8]}, {"kind": "heisenberg", "J": -1.0}, {}, {"marshall_sign": False, "param_dtype": "real"}),
        ({"size": [8]}, {"kind": "ising"}, {}, {"marshall_sign": False, "param_dtype": "real"}),
        (
            {"kind": "triangular", "size": [3, 3]},
            {"kind": "heisenberg"},
            {},
            {"marshall_sign": False, "param_dtype": "complex"},
        ),
        ({"kind": "square", "size": [4, 4]}, {"kind": "j1j2"}, {}, {"marshall_sign": False, "param_dtype": "complex"}),
        (
            {"size": [8]},
            {"kind": "heisenberg"},
            {"marshall_sign": False},
            {"marshall_sign": False, "param_dtype": "complex"},
        ),
        (
            {"size": [8]},
            {"kind": "heisenberg"},
            {"param_dtype": "complex"},
            {"marshall_sign": True, "param_dtype": "complex"},
        ),
    ],
)
def test_the_rbm_sign_and_parameter_type_follow_the_hamiltonian_when_unset(lattice, hamiltonian, model, chosen):
    """Unset marshall_sign / param_dtype: the Marshall sign where the ground state has it (bipartite lattice,
    antiferromagnetic exchange), real parameters where the sign is then exact; set values are kept."""
    from nqs.workflow import build

    problem = build(parse_config({"lattice": lattice, "hamiltonian": hamiltonian, "model": {"kind": "rbm", **model}}))
    assert problem.resolved["model"] == chosen
    assert problem.resolved_config()["model"]["marshall_sign"] == chosen["marshall_sign"]


@pytest.mark.parametrize(
    "kind, key, value",
    [
        ("jastrow", "alpha", 2),
        ("rbm", "gutzwiller", True),
        ("rbm_real", "param_dtype", "real"),
        ("rbm_symmetric", "shared_weights", "translation"),
        ("dbm", "symmetry", {"k": [0]}),
        ("slater", "marshall_sign", False),
        ("pp", "init_scale", 0.1),
        ("rbm", "n_hidden", 4),
    ],
)
def test_a_key_of_another_kind_names_the_kind_and_the_keys_it_takes(kind, key, value):
    ham = HUBBARD if kind == "slater" else {"kind": "heisenberg"}
    msg = _error({"hamiltonian": ham, "model": {"kind": kind, key: value}})
    takes = ", ".join(k for k in MODELS[kind].config.model_fields if k != "kind")
    assert msg == f"model.{key}: '{key}' is not a parameter of kind '{kind}' (it takes {takes})"


def test_several_keys_of_another_kind_are_named_in_one_part():
    msg = _error({"model": {"kind": "jastrow", "alpha": 1, "param_dtype": "real", "shared_weights": "translation"}})
    assert msg == (
        "model: 'alpha', 'param_dtype' and 'shared_weights' are not parameters of kind 'jastrow' "
        "(it takes init_scale, marshall_sign, symmetry)"
    )


def test_a_key_of_a_nested_table_is_named_with_that_table_s_keys():
    msg = _error({"model": {"kind": "rbm", "symmetry": {"k": [0], "project": "rbm"}}})
    assert (
        msg
        == "model.symmetry.project: 'project' is not a parameter of kind 'rbm' (it takes k, point_group, spin_parity)"
    )
    assert parse_config({"model": {"kind": "rbm_pp", "symmetry": {"project": "rbm"}}}).model.symmetry.project == "rbm"


@pytest.mark.parametrize(
    "ham, model, start",
    [
        (HUBBARD, {"kind": "rbm"}, "model.kind: 'rbm' carries no fermion sign; electron Hamiltonians take"),
        (HUBBARD, {"kind": "dbm"}, "model.kind: 'dbm' carries no fermion sign"),
        ({"kind": "heisenberg"}, {"kind": "slater"}, "model.kind: 'slater' is for electron Hamiltonians"),
        (HUBBARD, {"kind": "pp", "marshall_sign": True}, "model.marshall_sign: the Marshall sign is for spin models"),
        (HUBBARD, {"kind": "rbm_pp", "init": "dwave"}, "model.init: 'dwave' is the d-wave RVB start"),
        (HUBBARD, {"kind": "rbm_pp", "symmetry": {"k": [0]}}, "model.symmetry: projecting an electron model needs"),
        ({"kind": "heisenberg"}, {"kind": "pp", "jastrow": True}, "model.jastrow: the Gutzwiller, charge Jastrow"),
        ({"kind": "j1j2"}, {"kind": "rbm_pp", "pairing": "general"}, "model.pairing: spin models take the singlet"),
        ({"kind": "heisenberg"}, {"kind": "pp", "init": "uhf"}, "model.init: 'uhf' is for electron Hamiltonians"),
    ],
)
def test_model_and_hamiltonian_mismatches_are_rejected_when_read(ham, model, start):
    """``parse_config`` alone (nothing is built) rejects them, the message starting with the key."""
    msg = _error({"lattice": {"kind": "chain", "size": [6]}, "hamiltonian": ham, "model": model})
    assert msg.startswith(start), msg


def test_the_kinds_named_in_a_mismatch_come_from_the_registrations():
    class ToyConfig(Section):
        kind: Literal["toy_electrons"] = "toy_electrons"

    MODELS.register("toy_electrons", config=ToyConfig, describes=("electrons",))(lambda section, context: None)
    try:
        msg = _error({"hamiltonian": HUBBARD, "model": {"kind": "jastrow"}})
        assert msg.endswith('take "slater", "pp", "rbm_pp" or "toy_electrons"'), msg
        msg = _error({"model": {"kind": "toy_electrons"}})
        assert msg.startswith("model.kind: 'toy_electrons' is for electron Hamiltonians"), msg
        assert parse_config({"hamiltonian": HUBBARD, "model": {"kind": "toy_electrons"}}).model.kind == "toy_electrons"
    finally:
        MODELS.unregister("toy_electrons")


@pytest.mark.parametrize(
    "model, start",
    [
        ({"kind": "rbm_symmetric", "alpha": 1.5}, "model.alpha: the symmetric RBM takes an integer number of filters"),
        (
            {"kind": "rbm_symmetric", "symmetry": {"point_group": "B1"}},
            "model.symmetry: the symmetric RBM is invariant",
        ),
        (
            {"kind": "rbm", "shared_weights": "translation", "symmetry": {"k": ["pi"]}},
            "model.symmetry: with shared_weights",
        ),
        ({"kind": "rbm", "symmetry": {"k": ["half pi"]}}, "model.symmetry.k: cannot read momentum component"),
        ({"kind": "rbm_pp", "alpha": 0, "symmetry": {"project": "rbm"}}, 'model: symmetry.project = "rbm" projects'),
        ({"kind": "pp", "symmetry": {"project": "rbm"}}, 'model: symmetry.project = "rbm" projects the RBM factor'),
        ({"kind": "rbm_pp", "marshall_sign": True, "symmetry": {"project": "rbm"}}, "model: symmetry.project = "),
        ({"kind": "pp", "spin_projection": 4}, "model: spin_projection is for pairing"),
        ({"kind": "dbm", "param_dtype": "complex"}, "model.param_dtype: the DBM has real parameters"),
        ({"kind": "rbm", "alpha": 0}, "model.alpha: Input should be greater than 0"),
    ],
)
def test_checks_within_a_kind_name_the_key(model, start):
    msg = _error({"model": model})
    assert msg.startswith(start), msg


@pytest.mark.parametrize("kind", sorted(TAKES))
def test_the_resolved_section_reads_back_as_the_same_section(kind):
    """What a run writes to config.toml (every default filled in) is a valid config of the same model."""
    data = {"lattice": {"kind": "chain", "size": [6]}, "model": {"kind": kind}}
    if kind == "slater":
        data["hamiltonian"] = HUBBARD
    cfg = parse_config(data)
    again = parse_config(cfg.resolved())
    assert again.model == cfg.model and again.driver == cfg.driver
