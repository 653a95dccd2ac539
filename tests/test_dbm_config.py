"""``[model] kind = "dbm"`` from a TOML config: ``nqs run`` with the joint-chain DBM driver
(nqs.drivers.dbm.DBMVMC), its result.json, checkpoint resume, and the config errors of the combinations
it does not support."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from nqs import cli
from nqs.config import ConfigError, parse_config
from nqs.drivers.dbm import DBMVMC
from nqs.models.dbm import DeepBoltzmann
from nqs.sampling.joint import JointMetropolisSampler
from nqs.workflow import build

E0_CHAIN6 = -2.8027756377319946  # ED, Heisenberg chain L = 6 PBC, spin-1/2 units

TINY = """
seed = 2
[lattice]
kind = "chain"
size = [6]
[hamiltonian]
kind = "heisenberg"
total_sz = 0
[model]
kind = "dbm"
n_hidden = 4
n_deep = 4
marshall_sign = true
[driver]
deep_samples = 2
[sampler]
kind = "exchange"
n_chains = 8
n_samples = 128
n_discard = 4
n_samples_eval = 512
[optimizer]
kind = "sr"
learning_rate = 0.05
n_steps = 20
[output]
dir = "{out}"
checkpoint_every = 10
"""


def _history(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """20 steps of the tiny DBM config through the CLI; returns (config path, run folder, history rows)."""
    d = tmp_path_factory.mktemp("dbm_run")
    out = d / "run"
    cfg = d / "dbm.toml"
    cfg.write_text(TINY.format(out=out.as_posix()))
    assert cli.main(["run", str(cfg), "--quiet"]) == 0
    return cfg, out, _history(out / "history.csv")


def test_dbm_config_runs_and_writes_result(tiny_run):
    _, out, rows = tiny_run
    res = json.loads((out / "result.json").read_text())
    assert "DBM" in res["model"] and "M=4, K=4" in res["model"]
    assert res["estimator"]["driver"] == "DBMVMC" and res["estimator"]["deep_samples"] == 2
    assert res["n_steps"] == 20 and res["n_parameters"] == 6 + 4 + 4 + 6 * 4 + 4 * 4
    assert res["exact_method"] == "ED" and abs(res["exact_energy"] - E0_CHAIN6) < 1e-8
    e, err = res["energy"]["mean"], res["energy"]["error"]
    assert np.isfinite(err) and err > 0
    assert E0_CHAIN6 - 5 * err < e < 0, (e, err)
    assert [int(r["step"]) for r in rows] == list(range(20))
    assert len(res["structure_factor"]["value"]) == 6
    # the resolved sizes, the driver "auto" chose and its joint-chain settings are recorded with the run
    import tomllib

    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["model"]["n_deep"] == 4
    assert saved["driver"] == {"kind": "dbm", "deep_samples": 2, "deep_decay": 0.1, "deep_metric": "pair"}


def test_dbm_resume_continues_from_the_checkpoint(tiny_run, capsys):
    cfg, out, first = tiny_run
    capsys.readouterr()
    assert cli.main(["run", str(cfg), "--quiet", "--resume", "--n-steps", "30"]) == 0
    assert "resuming from step 20" in capsys.readouterr().err
    rows = _history(out / "history.csv")
    assert [int(r["step"]) for r in rows] == list(range(30))
    # steps 0-19 were not rerun: their rows, wall times included, are the first run's
    assert rows[:20] == first
    assert json.loads((out / "result.json").read_text())["n_steps"] == 30


def _dbm(**over):
    base = {
        "lattice": {"kind": "chain", "size": [6]},
        "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
        "model": {"kind": "dbm", "n_hidden": 4, "n_deep": 2},
        "sampler": {"kind": "exchange", "n_chains": 8, "n_samples": 64},
    }
    for k, v in over.items():
        base[k] = {n: x for n, x in {**base.get(k, {}), **v}.items() if x is not None}  # None: key unset
    return parse_config(base)


def test_dbm_config_builds_the_joint_chain_driver():
    prob = build(
        _dbm(
            model={"marshall_sign": True, "param_dtype": "real"},
            sampler={"n_discard": 3, "sweep_size": 5},
            driver={"kind": "dbm", "deep_decay": 0.05, "deep_metric": "mean"},
        )
    )
    vmc = prob.driver
    assert isinstance(vmc, DBMVMC) and isinstance(vmc.model, DeepBoltzmann)
    assert isinstance(vmc.sampler, JointMetropolisSampler)
    assert (vmc.model.n_hidden, vmc.model.n_deep, vmc.model.sublattice) == (4, 2, (0, 1, 0, 1, 0, 1))
    s = vmc.sampler
    assert (s.n_chains, s.n_samples, s.n_discard, s.sweep_size, s.deep_samples) == (8, 64, 3, 5, 4)
    assert (vmc.deep_decay, vmc.metric) == (0.05, "mean")
    assert vmc.for_evaluation(256).sampler.n_samples == 256
    # n_hidden defaults to alpha * n_sites and n_deep to n_hidden
    cfg = _dbm(model={"n_hidden": None, "n_deep": None, "alpha": 0.5})
    problem = build(cfg)
    m = problem.driver.model
    assert (m.n_hidden, m.n_deep, m.sublattice) == (3, 3, None)
    # the build leaves the config as it was and returns what it chose (written to the run's config.toml)
    assert (cfg.model.n_hidden, cfg.model.n_deep) == (None, None)
    assert problem.resolved["model"] == {"n_hidden": 3, "n_deep": 3}
    assert problem.resolved_config()["model"]["n_hidden"] == 3


@pytest.mark.parametrize(
    "over, field",
    [
        ({"hamiltonian": {"kind": "hubbard", "total_sz": None}, "sampler": {"kind": "hop"}}, "model.kind"),
        ({"model": {"symmetry": {"k": [0]}}}, "model.symmetry"),
        ({"sampler": {"kind": "exact", "n_chains": None, "n_samples": None}}, "sampler.kind"),
        ({"lattice": {"kind": "triangular", "size": [4, 4]}, "model": {"marshall_sign": True}}, "model.marshall_sign"),
        ({"model": {"init": "dwave"}}, "model.init"),
        ({"model": {"param_dtype": "complex"}}, "model.param_dtype"),
        ({"optimizer": {"precision": "float32"}}, "optimizer.precision"),
        ({"optimizer": {"chunk_size": 16}}, "optimizer.chunk_size"),
        ({"optimizer": {"sr_rescale": True}}, "optimizer.sr_rescale"),
    ],
)
def test_dbm_unsupported_combinations_are_config_errors(over, field):
    """Settings the DBM driver refuses are rejected when the config is read; the others when it is built.
    Either way: one line that starts with the key (after the config's name)."""
    with pytest.raises(ConfigError) as err:
        build(_dbm(**over))
    msg = str(err.value).removeprefix("config: ")
    assert msg.startswith(field) and "\n" not in msg, msg


@pytest.mark.parametrize(
    "model, driver, field",
    [
        ({"kind": "dbm"}, {"deep_samples": 0}, "driver.deep_samples"),
        ({"kind": "dbm"}, {"kind": "dbm", "deep_decay": -0.1}, "driver.deep_decay"),
        ({"kind": "dbm"}, {"deep_metric": "full"}, "driver.deep_metric"),
        ({"kind": "rbm"}, {"deep_samples": 2}, "driver.deep_samples: 'deep_samples' is not a parameter of kind 'vmc'"),
    ],
)
def test_dbm_driver_keys_are_validated(model, driver, field):
    with pytest.raises(ConfigError, match=field):
        parse_config({"model": model, "driver": driver})


@pytest.mark.parametrize("kind", ["dbm", "rbm"])
@pytest.mark.parametrize("key, value", [("deep_samples", 2), ("deep_decay", 0.1), ("deep_metric", "pair")])
def test_joint_chain_keys_in_model_say_where_they_moved(kind, key, value):
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"kind": kind, key: value}})
    msg = str(err.value)
    assert msg.startswith(f"config: model: '{key}' has moved to [driver]") and "\n" not in msg, msg


def test_dbm_defaults_are_the_benchmark_values():
    """``[driver] kind = "auto"`` (or no [driver]) with a DBM is the DBM driver with the benchmark's settings."""
    for driver in (None, {}, {"kind": "auto"}, {"kind": "dbm"}):
        cfg = parse_config({"model": {"kind": "dbm"}} | ({} if driver is None else {"driver": driver}))
        dc = cfg.driver
        assert (dc.kind, dc.deep_samples, dc.deep_decay, dc.deep_metric) == ("dbm", 4, 0.1, "pair")
    assert parse_config({"model": {"kind": "rbm"}}).driver.kind == "vmc"


def test_dbm_says_that_memory_limit_does_not_apply(tmp_path, capsys):
    """The DBM driver evaluates all samples in one batch: a memory_limit_mb the user set is not silently
    ignored (a note in the run's header)."""
    body = TINY.replace("n_steps = 20", "n_steps = 2\nmemory_limit_mb = 100")
    cfg = tmp_path / "dbm.toml"
    cfg.write_text(body.format(out=(tmp_path / "run").as_posix()))
    capsys.readouterr()
    assert cli.main(["run", str(cfg), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "memory_limit_mb does not apply" in err, err
