"""A run keeps only good checkpoints and recovers from a bad step by itself (nqs.drivers.loop, docs/recovery.md);
every unusable checkpoint is a one-line error naming the file."""

from __future__ import annotations

import csv
import io as stdio
import json
import math
import shutil
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rich.console import Console

from nqs import cli
from nqs import io as nio
from nqs.config import ConfigError, parse_config
from nqs.drivers import NonFiniteError, State, optimize, run
from nqs.drivers.base import Driver
from nqs.drivers.loop import CHECKPOINT, Evaluation, ParameterAverage, RecoveryConfig, bad_step
from nqs.stats import Stats
from nqs.workflow import run as run_config

E0_CHAIN6 = -2.8027756377319946  # Heisenberg ring L = 6, S = σ/2 (ED)


# ------------------------------------------------------------------------------------------- the judgement
def ev(mean, error=0.05, variance=1.0, r_hat=1.0):
    return Evaluation(mean, error, variance, r_hat)


def test_bad_step_tells_bad_states_from_good_ones():
    prev = ev(-2.0)
    assert bad_step(ev(-2.1), True, prev, 4.0, 3) == (None, False)
    assert bad_step(ev(-1.0), True, prev, 4.0, 3)[1]  # a rise of 14 error bars
    assert "rose from -2 to -1 at step 3" in bad_step(ev(-1.0), True, prev, 4.0, 3)[0]
    assert bad_step(ev(-1.9), True, prev, 4.0, 3) == (None, False)  # 1.2 error bars: noise
    assert bad_step(ev(-9.0), True, prev, 4.0, 3) == (None, False)  # fast descent is never a jump
    assert bad_step(ev(-1.0), True, prev, 0.0, 3) == (None, False)  # threshold 0: no jump tests
    nan = bad_step(ev(math.nan), True, prev, 0.0, 3)
    assert nan[1] and "NaN or inf at step 3" in nan[0]
    # a good energy whose update is not finite: the state is good, its update is not
    reason, state_bad = bad_step(ev(-2.1), False, prev, 4.0, 3)
    assert not state_bad and "in the update" in reason
    # a state with almost no variance: the relative floor keeps a tiny rise from being a jump
    still = ev(-2.0, error=1e-9, variance=1e-12)
    assert bad_step(ev(-1.999, error=1e-9, variance=1e-12), True, still, 4.0, 3) == (None, False)
    # chains that stop mixing (R̂ from 1 to inf) report a finite energy that no longer moves
    assert "stopped mixing" in bad_step(ev(-2.0, r_hat=math.inf), True, prev, 4.0, 3)[0]
    assert bad_step(ev(-2.0, r_hat=math.inf), True, ev(-2.0, r_hat=math.inf), 4.0, 3) == (None, False)
    # chains that mix poorly inflate their error bar: the last good state's is used
    assert bad_step(ev(-1.5, error=0.5, r_hat=5.0), True, prev, 4.0, 3)[1]
    assert bad_step(ev(-1.5, error=0.5, r_hat=1.0), True, prev, 4.0, 3) == (None, False)
    # a blow-up towards -inf, still finite: the spread of the local energies explodes
    assert "spread" in bad_step(ev(-2e4, error=1e3, variance=1e12), True, prev, 4.0, 3)[0]
    # below the exact ground-state energy by many error bars: the estimate has broken down
    assert "below the exact" in bad_step(ev(-3.5, error=0.01), True, prev, 4.0, 3, reference=-3.0)[0]
    assert bad_step(ev(-2.99, error=0.01), True, prev, 4.0, 3, reference=-3.0) == (None, False)


def test_recovery_config_is_validated():
    assert RecoveryConfig().max_retries > 0 and RecoveryConfig().jump_threshold > 0
    for bad in ({"max_retries": -1}, {"max_retries": True}, {"max_retries": "3"}, {"max_retries": 1.5}):
        with pytest.raises(ConfigError, match="recovery.max_retries"):
            parse_config({"recovery": bad})
    for bad in ({"jump_threshold": math.inf}, {"jump_threshold": math.nan}, {"jump_threshold": -1.0}):
        with pytest.raises(ConfigError, match="recovery.jump_threshold"):
            parse_config({"recovery": bad})
    with pytest.raises(ConfigError, match="recovery.retries: unknown key"):
        parse_config({"recovery": {"retries": 3}})
    assert parse_config({"recovery": {"max_retries": 0, "jump_threshold": 6}}).recovery.jump_threshold == 6.0


# ------------------------------------------------------------------------------ the loop, with a scripted driver
@dataclass(frozen=True)
class Bowl(Driver):
    """E(x) = x² − 2 (exact, error bar 0.01) minimised by x ← x − lr·2x, which diverges for lr > 1; ``kick`` adds
    lr·kick to x in the update of step ``kick_at`` (a bad step that smaller steps make harmless).  No compilation:
    the loop's logic alone."""

    lr: float
    kick: float = 0.0
    kick_at: int = -1
    can_soften: bool = True

    def init(self, key, params=None):
        return State({"x": jnp.asarray(1.0)}, (), None, jnp.zeros((), jnp.int64))

    def make_step(self):
        def step(state):
            x = state.params["x"]
            e = x * x - 2.0
            new = x - self.lr * 2.0 * x + jnp.where(state.step == self.kick_at, self.lr * self.kick, 0.0)
            new = jnp.where(jnp.abs(new) > 1e6, jnp.nan, new)
            stats = Stats(e, jnp.asarray(0.01), jnp.asarray(0.01), jnp.asarray(0.0), jnp.asarray(1.0))
            info = {"energy": stats, "grad_norm": jnp.abs(2.0 * x), "finite": jnp.isfinite(new) & jnp.isfinite(e)}
            return State({"x": new}, (), None, state.step + 1), info

        return step

    def make_estimate(self):
        raise NotImplementedError

    def softened(self, factor):
        return replace(self, lr=self.lr * factor) if self.can_soften else None

    def step_settings(self):
        return {"learning_rate": self.lr}


def numbers_of(row: dict) -> dict:
    """A history row without its timing, NaN as None (so that rows compare equal)."""
    return {k: None if math.isnan(v) else v for k, v in row.items() if k != "seconds"}


def accepted_rows(rows):
    return [r for r in rows if not r.get("recovery")]


def test_a_diverging_step_is_rolled_back_and_retried_with_half_the_learning_rate():
    steps, events = [], []
    driver = Bowl(lr=1.6)  # |1 − 2·lr| = 2.2: every step makes it worse
    state = run(
        driver,
        driver.init(None),
        30,
        lambda st, info, dt: steps.append((int(st.step), float(info["energy"].mean))),
        recovery=RecoveryConfig(),
        on_recovery=events.append,
    )
    assert [s for s, _ in steps] == list(range(1, 31))  # every step passed on once, in order
    assert len(events) == 1 and events[0].step == 0 and events[0].driver.lr == 0.8
    assert "rose from -1 to 2.84 at step 1" in events[0].reason
    assert float(state.params["x"]) ** 2 < 1e-12  # converged with lr 0.8


def test_without_recovery_a_non_finite_step_raises_with_the_last_good_state():
    driver = Bowl(lr=1.6)
    with pytest.raises(NonFiniteError, match="NaN or inf") as err:
        run(driver, driver.init(None), 100)
    good = err.value.state
    assert int(good.step) == err.value.step > 0
    assert abs(float(good.params["x"])) < 1e6


def test_optimize_writes_recovery_rows_and_checkpoints_only_good_states(tmp_path, monkeypatch):
    saved = []
    real_save = nio.save_checkpoint

    def recording_save(path, st, meta):
        saved.append((int(st.step), float(st.params["x"]), meta["recoveries"]))
        real_save(path, st, meta)

    monkeypatch.setattr(nio, "save_checkpoint", recording_save)
    driver = Bowl(lr=0.25, kick=400.0, kick_at=7)  # the update of step 7 throws x to ~100
    out = optimize(driver, driver.init(None), 20, tmp_path, checkpoint_every=5, progress=False)
    rows = nio.read_history(tmp_path / "history.csv")
    assert [int(r["step"]) for r in accepted_rows(rows)] == list(range(20))
    redone = [r for r in rows if r["recovery"]]
    assert redone and {int(r["step"]) for r in redone} == {7}  # step 7 redone, with ever smaller steps
    assert [int(r["recovery"]) for r in redone] == list(range(1, len(redone) + 1))
    assert out.recoveries == len(redone) and out.driver.lr == 0.25 * 0.5 ** len(redone)
    assert all(abs(x) < 1.0 for _, x, _ in saved)  # never a blown-up state
    assert [s for s, _, _ in saved][:2] == [5, 10]
    state, meta = nio.load_checkpoint(tmp_path / CHECKPOINT, driver.init(None))
    assert meta["step"] == 20 and meta["recoveries"] == out.recoveries and meta["settings"] == {"learning_rate": 0.25}


def test_with_recovery_disabled_the_run_stops_and_keeps_the_last_good_state(tmp_path):
    driver = Bowl(lr=0.25, kick=400.0, kick_at=7)
    with pytest.raises(NonFiniteError, match="rose from") as err:
        optimize(
            driver,
            driver.init(None),
            20,
            tmp_path,
            checkpoint_every=5,
            progress=False,
            recovery=RecoveryConfig(max_retries=0),
        )
    assert err.value.step == 7
    state, meta = nio.load_checkpoint(tmp_path / CHECKPOINT, driver.init(None))
    assert int(state.step) == 7 and abs(float(state.params["x"])) < 1.0  # the state before the bad update
    assert [int(r["step"]) for r in nio.read_history(tmp_path / "history.csv")] == list(range(7))
    # resumed with smaller steps (that no longer throw x away) it goes on
    resumed = optimize(Bowl(lr=0.1), state, 20, tmp_path, resume_from=7, progress=False, resumed=meta)
    assert float(resumed.state.params["x"]) ** 2 < float(state.params["x"]) ** 2
    assert [int(r["step"]) for r in nio.read_history(tmp_path / "history.csv")] == list(range(20))


def test_a_driver_that_cannot_soften_stops_and_has_no_recovery_column(tmp_path):
    driver = Bowl(lr=0.25, kick=400.0, kick_at=3, can_soften=False)
    with pytest.raises(NonFiniteError):
        optimize(driver, driver.init(None), 10, tmp_path, progress=False)
    header = (tmp_path / "history.csv").read_text().splitlines()[0]
    assert header.split(",")[-1] == "seconds"


def test_resume_applies_the_recoveries_of_the_interrupted_run(tmp_path):
    def history(path):
        return [numbers_of(r) for r in nio.read_history(path / "history.csv")]

    driver = Bowl(lr=1.6)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = optimize(driver, driver.init(None), 12, tmp_path / "a", checkpoint_every=3, progress=False)
    part = optimize(driver, driver.init(None), 6, tmp_path / "b", checkpoint_every=3, progress=False)
    assert part.recoveries == 1
    state, meta = nio.load_checkpoint(tmp_path / "b" / CHECKPOINT, driver.init(None))
    rest = optimize(driver, state, 12, tmp_path / "b", resume_from=6, checkpoint_every=3, progress=False, resumed=meta)
    assert rest.driver.lr == 0.8 and rest.recoveries == 1
    assert history(tmp_path / "a") == history(tmp_path / "b")
    assert float(whole.state.params["x"]) == float(rest.state.params["x"])
    # other optimizer settings: the recoveries are not applied again
    state, meta = nio.load_checkpoint(tmp_path / "b" / CHECKPOINT, driver.init(None))
    console = Console(file=stdio.StringIO(), width=200)
    other = optimize(
        Bowl(lr=0.5), state, 14, tmp_path / "b", resume_from=12, progress=False, resumed=meta, console=console
    )
    assert other.driver.lr == 0.5 and "not applied" in console.file.getvalue()


# --------------------------------------------------------------------------------- real runs on a 6-site chain
def chain6(out, optimizer, n_steps, recovery=None, **sections):
    cfg = {
        "seed": 1,
        "lattice": {"kind": "chain", "size": [6]},
        "hamiltonian": {"kind": "heisenberg"},
        "model": {"kind": "rbm", "alpha": 1, "param_dtype": "real", "marshall_sign": True},
        "sampler": {"n_chains": 8, "n_samples": 256, "n_discard": 8},
        "optimizer": {**optimizer, "n_steps": n_steps},
        "parallel": {"threads": 1},
        "output": {"dir": str(out), "checkpoint_every": 5},
        **sections,
    }
    if recovery is not None:
        cfg["recovery"] = recovery
    return cfg


def solve_quietly(cfg, resume=False):
    console = Console(file=stdio.StringIO(), width=300)
    result = run_config(cfg, resume=resume, progress=False, console=console)
    return result, console.file.getvalue()


def history_rows(run_dir):
    with open(run_dir / "history.csv") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def test_sr_divergence_recovers_to_the_ed_energy(tmp_path):
    """SR at learning rate 1e6 (a clean run uses 0.05): NaN and energy jumps, each rolled back and retried with
    half the learning rate, until the steps are sane."""
    result, text = solve_quietly(chain6(tmp_path / "run", {"kind": "sr", "learning_rate": 1e6}, 60))
    rows = history_rows(tmp_path / "run")
    assert [int(r["step"]) for r in accepted_rows(rows)] == list(range(60))
    assert any(r["recovery"] for r in rows) and "recovery 1 (of at most 30)" in text
    assert result["recoveries"]["count"] == sum(1 for r in rows if r["recovery"])
    assert result["recoveries"]["settings"]["learning_rate"] < 1.0
    e, err = result["energy"]["mean"], result["energy"]["error"]
    assert abs(e - E0_CHAIN6) < max(5 * err, 1e-3 * abs(E0_CHAIN6)), (e, err)  # as a clean run (lr 0.05)


def test_sgd_divergence_recovers_and_every_checkpoint_is_good(tmp_path, monkeypatch):
    """Plain SGD at learning rate 20 with checkpoint_every = 5: the run recovers, ends where a clean SGD run
    ends, and every checkpoint it writes holds a finite state whose energy was accepted, never an older one."""
    saved = []
    real_save = nio.save_checkpoint

    def recording_save(path, st, meta):
        params = st.params if hasattr(st, "params") else st["params"]  # a state, or final_params.npz's dict
        finite = all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(params))
        saved.append((int(meta["step"]), finite))
        real_save(path, st, meta)

    monkeypatch.setattr(nio, "save_checkpoint", recording_save)
    result, _ = solve_quietly(chain6(tmp_path / "run", {"kind": "sgd", "learning_rate": 20.0}, 100))
    monkeypatch.setattr(nio, "save_checkpoint", real_save)
    rows = history_rows(tmp_path / "run")
    accepted = accepted_rows(rows)
    assert [int(r["step"]) for r in accepted] == list(range(100)) and result["recoveries"]["count"] >= 1
    energy = {int(r["step"]): r["energy"] for r in accepted}
    steps = [k for k, _ in saved]
    assert steps == sorted(steps) and steps[0] == 5 and steps[-1] == 100 and all(f for _, f in saved)
    assert all(math.isfinite(energy[k]) for k in steps if k < 100)  # each saved state's energy was accepted
    clean, _ = solve_quietly(chain6(tmp_path / "clean", {"kind": "sgd", "learning_rate": 0.3}, 100))
    e, err = result["energy"]["mean"], result["energy"]["error"]
    e_clean, err_clean = clean["energy"]["mean"], clean["energy"]["error"]
    assert abs(e - e_clean) < 4 * math.hypot(err, err_clean), (e, err, e_clean, err_clean)


def test_zero_diag_shift_is_rolled_back_instead_of_sticking(tmp_path):
    """diag_shift = 0 at learning rate 1: the singular metric gives NaN, then stuck chains; the zero shift
    becomes 1e-2, and the run reaches the ED energy instead of sitting at a frozen state."""
    result, _ = solve_quietly(chain6(tmp_path / "run", {"kind": "sr", "learning_rate": 1.0, "diag_shift": 0.0}, 40))
    rows = history_rows(tmp_path / "run")
    assert any(r["recovery"] for r in rows)
    assert result["recoveries"]["settings"]["diag_shift"] > 0
    energies = [r["energy"] for r in accepted_rows(rows)]
    assert energies[-1] < energies[0] - 0.3  # it moved
    assert abs(result["energy"]["mean"] - E0_CHAIN6) < 2e-3 * abs(E0_CHAIN6)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("nqs: error")]


def test_without_recovery_it_stops_with_exit_2_and_the_checkpoint_resumes(tmp_path, capsys):
    import tomli_w

    cfg = chain6(tmp_path / "run", {"kind": "sr", "learning_rate": 1e6}, 20, recovery={"max_retries": 0})
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(cfg))
    assert cli.main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(error_lines(err)) == 1
    assert "NaN or inf at step 1" in err and "the last good state (step 0) is saved" in err
    with np.load(tmp_path / "run" / CHECKPOINT) as data:
        params = data["leaf_0"]
    assert np.all(np.isfinite(params)) and np.abs(params).max() < 1.0  # the initial state, not the 1e6 one
    cfg["optimizer"].update(learning_rate=0.05, learning_rate_final=0.05)  # constant, as the clean run's
    path.write_text(tomli_w.dumps(cfg))
    assert cli.main(["run", str(path), "--quiet", "--resume"]) == 0
    rows = history_rows(tmp_path / "run")
    energies = [r["energy"] for r in accepted_rows(rows)]
    assert [int(r["step"]) for r in accepted_rows(rows)] == list(range(20))
    assert all(math.isfinite(e) for e in energies) and energies[-1] < energies[0] - 0.3
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert abs(result["energy"]["mean"] - E0_CHAIN6) < 0.02 * abs(E0_CHAIN6)


class Killed(Exception):
    pass


def test_resume_after_a_recovery_gives_the_same_numbers(tmp_path, monkeypatch):
    """Killed after a recovery, resumed from its checkpoint: the same history as the run that was not."""
    opt = {"kind": "sgd", "learning_rate": 20.0}
    solve_quietly(chain6(tmp_path / "whole", opt, 25))
    real_append = nio.History.append

    def killed_at_step_8(self, row):
        real_append(self, row)
        if row["step"] >= 8 and not row.get("recovery"):
            raise Killed

    monkeypatch.setattr(nio.History, "append", killed_at_step_8)
    with pytest.raises(Killed):
        solve_quietly(chain6(tmp_path / "cut", opt, 25))
    monkeypatch.setattr(nio.History, "append", real_append)
    meta = json.loads(bytes(np.load(tmp_path / "cut" / CHECKPOINT)["meta"]).decode())
    assert meta["recoveries"] >= 1  # the checkpoint comes after a recovery
    solve_quietly(chain6(tmp_path / "cut", opt, 25), resume=True)

    def numbers(d):
        return [numbers_of(r) for r in history_rows(tmp_path / d)]

    assert numbers("whole") == numbers("cut")


# ------------------------------------------------------------------------------------------ unusable checkpoints
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 3-step run (4-site chain, exact sampler) and its config."""
    d = tmp_path_factory.mktemp("done")
    cfg = {
        "lattice": {"kind": "chain", "size": [4]},
        "model": {"kind": "rbm", "alpha": 1, "param_dtype": "real", "marshall_sign": True},
        "sampler": {"kind": "exact"},
        "optimizer": {"n_steps": 3},
        "output": {"dir": str(d / "run"), "checkpoint_every": 1},
    }
    solve_quietly(cfg)
    return d / "run", cfg


def damaged(tmp_path, finished_run, damage):
    """A copy of the finished run whose checkpoint ``damage(path)`` spoils; its config."""
    src, cfg = finished_run
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    damage(dst / CHECKPOINT)
    return {**cfg, "output": {**cfg["output"], "dir": str(dst)}}, dst / CHECKPOINT


def _rewrite(path, change):
    """Rewrite the checkpoint with ``change(arrays, meta)`` applied."""
    with np.load(path) as data:
        arrays = {k: np.asarray(data[k]) for k in data.files}
    meta = json.loads(bytes(arrays.pop("meta")).decode())
    change(arrays, meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _npy(array) -> bytes:
    buf = stdio.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _folder(p):
    p.unlink()
    p.mkdir()


def _param_leaf(arrays):
    return next(k for k in sorted(arrays, key=lambda k: int(k.split("_")[1])) if arrays[k].dtype == np.float64)


CORRUPT = {
    "truncated": (_truncate, "not a whole .npz archive (cut short or damaged"),
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "unrecognised content"),
    "a folder": (_folder, "cannot be written (a folder)"),  # found by the output folder's check, first
    "a single array": (lambda p: p.write_bytes(_npy(np.zeros(3))), "a single array"),
    "no meta": (lambda p: np.savez(p, leaf_0=np.zeros(3)), "no record of its run"),
    "shape": (
        lambda p: _rewrite(p, lambda a, m: a.update({_param_leaf(a): np.zeros(7)})),
        "has shape (7,) where this config has",
    ),
    "dtype": (
        lambda p: _rewrite(p, lambda a, m: a.update({_param_leaf(a): a[_param_leaf(a)].astype(np.float32)})),
        "has dtype float32 where this config has float64",
    ),
    "NaN": (
        lambda p: _rewrite(p, lambda a, m: a.update({_param_leaf(a): np.full_like(a[_param_leaf(a)], np.nan)})),
        "holds NaN or inf",
    ),
    "arrays missing": (lambda p: _rewrite(p, lambda a, m: a.pop("leaf_0")), "arrays where this config's state has"),
    "another config": (
        lambda p: _rewrite(p, lambda a, m: m["config"].update(lattice="0" * 16)),
        "belongs to another config (it differs in [lattice])",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_an_unusable_checkpoint_is_one_line_naming_the_file(tmp_path, finished_run, case):
    damage, message = CORRUPT[case]
    cfg, ckpt = damaged(tmp_path, finished_run, damage)
    with pytest.raises(ConfigError) as err:
        solve_quietly({**cfg, "optimizer": {"n_steps": 4}}, resume=True)
    text = str(err.value)
    assert str(ckpt) in text and message in text, text
    assert "\n" not in text


def test_an_unusable_checkpoint_exits_2_without_traceback(tmp_path, finished_run, capsys):
    import tomli_w

    cfg, ckpt = damaged(tmp_path, finished_run, _truncate)
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(cfg))
    assert cli.main(["run", str(path), "--quiet", "--resume", "--n-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and error_lines(err) == [
        f"nqs: error: checkpoint {ckpt}: " + err.split(": ", 3)[-1].strip()
    ]


def test_a_damaged_parameter_average_restarts_with_a_note(tmp_path):
    template = {"w": jnp.zeros(3)}
    path = tmp_path / "params_average.npz"
    for damage in (b"", b"garbage" * 100):
        path.write_bytes(damage)
        avg = ParameterAverage(path, 5, 10, template, resume_from=7)
        assert avg.count == 0 and avg.first == 7 and str(path) in avg.note and "restarts at step 7" in avg.note
    np.savez(path, step=7, first=5, count=2, leaf_0=np.zeros(4))  # another shape
    assert "does not fit" in ParameterAverage(path, 5, 10, template, resume_from=7).note
    np.savez(path, step=7, first=5, count=2, leaf_0=np.ones(3))
    good = ParameterAverage(path, 5, 10, template, resume_from=7)
    assert good.note is None and good.count == 2
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda x: bool(jnp.all(x == 0.5)), good.mean(template)))


# ------------------------------------------------------------------------------------- softened built-in drivers
@pytest.mark.parametrize("model", [{"kind": "rbm", "alpha": 1, "param_dtype": "real"}, {"kind": "dbm", "alpha": 1}])
def test_softened_drivers_share_one_compiled_step_with_the_scaled_settings(model):
    """VMC and DBMVMC softened twice step exactly as the driver built with the scaled settings (a zero SR shift
    becomes 1e-2 and stays), and all softened copies share one compiled step."""
    from nqs.workflow import build

    cfg = parse_config(
        {
            "lattice": {"kind": "chain", "size": [4]},
            "model": {**model, "marshall_sign": True},
            "sampler": {"n_chains": 4, "n_samples": 32, "n_discard": 2},
            "optimizer": {"kind": "sr", "learning_rate": 0.1, "learning_rate_final": 0.1, "diag_shift": 0.0},
            "parallel": {"threads": 1},
        }
    )
    driver = build(cfg).driver
    state = driver.init(jax.random.PRNGKey(0))
    once = driver.softened(0.5)
    twice = once.softened(0.5)
    assert twice.step_settings() == {"learning_rate": 0.025, "diag_shift": 0.01}
    new, info = twice.make_step()(state)
    once.make_step()(state)
    assert len(driver._compiled) == 1  # one compiled step for every softened copy
    reference = replace(driver, optimizer=driver.optimizer.scaled(0.25))
    ref_new, ref_info = reference.make_step()(state)
    assert float(info["diag_shift"]) == float(ref_info["diag_shift"]) == 0.01
    for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(ref_new.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
