"""TDVP: real- and imaginary-time evolution against exact Krylov evolution on small chains, the product start
states, the run folder of ``nqs evolve`` (checkpoints, --resume, one-line errors)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs import hamiltonians as H
from nqs.cli import main
from nqs.drivers.loop import run
from nqs.drivers.tdvp import TDVP
from nqs.exact import exact_state, lowest_energies
from nqs.exact.dynamics import exact_dynamics
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models import RBM, SymmetricRBM
from nqs.models.product import product_params
from nqs.operators.observables import named_observable
from nqs.qgt import TDVPSolver
from nqs.sampling import ExactSampler


def _tfim(n, h):
    lat = make_lattice("chain", [n])
    return lat, H.ising(lat, J=1.0, h=h), SpinHilbert(n)


def _evolve(driver, params, n_max=100_000):
    """Run ``driver`` from ``params``; the rows (t, accepted, energy, X) of every step and the final state."""
    rows = []

    def cb(st, info, dt):
        rows.append(driver.history_row(info))

    state = run(driver, driver.init(jax.random.PRNGKey(1), params), n_max, cb)
    return rows, state


def _on_grid(rows, name):
    """The first row at each distinct time: the value of ``name`` there."""
    out = {}
    for r in rows:
        out.setdefault(round(r["t"], 9), r[name])
    return out


@pytest.mark.parametrize("integrator, dt", [("rk4", 0.002), ("rk45", 0.02)])
def test_quench_from_plus_matches_exact(integrator, dt):
    """From |+…+⟩ (zero weights and a little noise) the flow starts with large θ̇ (S is nearly singular): a
    fixed step must be small there, an adaptive one finds it."""
    lat, ham, hil = _tfim(6, 1.0)
    model = RBM(6, alpha=2.0, param_dtype="complex")
    params = product_params(model, "plus", lat, 1e-2, jax.random.PRNGKey(3))
    obs = (("X", named_observable(lat, "X")), ("ZZ", named_observable(lat, "ZZ")))
    drv = TDVP(
        model,
        ham,
        ExactSampler(hil),
        t_end=0.6,
        output_times=(0.2, 0.4, 0.6),
        integrator=integrator,
        dt=dt,
        rtol=1e-5,
        atol=1e-7,
        solver=TDVPSolver("pinv", rcond=1e-12, rcond_smooth=1e-10),
        observables=obs,
    )
    rows, state = _evolve(drv, params)
    assert float(state.t) == pytest.approx(0.6, abs=1e-12)
    psi0 = exact_state(model, params, hil)
    ex = exact_dynamics(ham, psi0, [0.0, 0.2, 0.4], dict(obs), hilbert=hil)
    got = _on_grid(rows, "X")
    for t, x in zip(ex["time"], ex["X"], strict=True):
        assert got[round(t, 9)] == pytest.approx(x, abs=3e-3)
    zz = _on_grid(rows, "ZZ")
    assert zz[0.4] == pytest.approx(ex["ZZ"][2], abs=3e-3)
    # real time conserves the energy (exact sums: no noise)
    e = [r["energy"] for r in rows if r["accepted"]]
    assert max(abs(x - e[0]) for x in e) < 1e-3 * abs(e[0])
    assert all(np.isfinite(r["residual"]) for r in rows)


def test_imaginary_time_reaches_the_ground_state():
    lat, ham, hil = _tfim(6, 0.8)
    model = RBM(6, alpha=1.0, param_dtype="complex")
    params = product_params(model, "plus", lat, 1e-2, jax.random.PRNGKey(0))
    drv = TDVP(model, ham, ExactSampler(hil), t_end=3.0, real_time=False, integrator="rk23", dt=0.05, rtol=1e-4)
    rows, _ = _evolve(drv, params)
    e = [r["energy"] for r in rows if r["accepted"]]
    assert all(b <= a + 1e-9 for a, b in zip(e, e[1:], strict=False))  # imaginary time lowers the energy
    e0 = lowest_energies(ham, hil, 1)[0]
    assert e[-1] == pytest.approx(e0, rel=2e-3)


def test_adaptive_rejects_and_lands_on_output_times():
    lat, ham, hil = _tfim(4, 1.0)
    model = RBM(4, alpha=1.0, param_dtype="complex")
    params = product_params(model, "plus", lat, 1e-2, jax.random.PRNGKey(0))
    drv = TDVP(
        model, ham, ExactSampler(hil), t_end=0.3, output_times=(0.1, 0.2, 0.3), integrator="rk45", dt=1.0, rtol=1e-6
    )
    rows, state = _evolve(drv, params)
    assert any(not r["accepted"] for r in rows)  # dt = 1 (clipped to 0.1) is too coarse at rtol 1e-6
    times = {round(r["t"], 12) for r in rows}
    assert {0.0, 0.1, 0.2} <= times
    assert int(state.n_rejected) == sum(1 for r in rows if not r["accepted"])


def test_real_time_needs_a_phase():
    lat, ham, hil = _tfim(4, 1.0)
    with pytest.raises(ValueError, match="param_dtype"):
        TDVP(RBM(4, param_dtype="real"), ham, ExactSampler(hil), t_end=1.0)


def test_product_states():
    lat = make_lattice("chain", [4])
    hil = SpinHilbert(4)
    model = RBM(4, alpha=1.0, param_dtype="complex")
    key = jax.random.PRNGKey(0)
    psi = exact_state(model, product_params(model, "plus", lat, 0.0, key), hil)
    assert np.allclose(np.abs(psi), 0.25)
    psi = exact_state(model, product_params(model, "neel", lat, 0.0, key), hil)
    neel = hil.all_states()[np.argmax(np.abs(psi))]
    assert list(np.asarray(neel)) == [1, -1, 1, -1]
    assert np.abs(psi).max() ** 2 > 1 - 1e-4
    with pytest.raises(ValueError, match="unknown product state"):
        product_params(model, "sideways", lat, 0.0, key)
    sym = SymmetricRBM(lat, alpha=2)
    assert np.allclose(np.abs(exact_state(sym, product_params(sym, "plus", lat, 0.0, key), hil)), 0.25)
    psi = exact_state(sym, product_params(sym, "down", lat, 0.0, key), hil)
    assert list(np.asarray(hil.all_states()[np.argmax(np.abs(psi))])) == [-1, -1, -1, -1]
    with pytest.raises(ValueError, match="not translation invariant"):
        product_params(sym, "neel", lat, 0.0, key)


# ---------------------------------------------------------------------- nqs evolve
_CONFIG = """
seed = 3
[lattice]
kind = "chain"
size = [4]
[hamiltonian]
kind = "ising"
h = 1.0
[model]
kind = "rbm"
alpha = 1.0
param_dtype = "complex"
[sampler]
kind = "exact"
[optimizer]
n_steps = 40
[dynamics]
t_end = {t_end}
dt = 0.01
integrator = "rk23"
rtol = 1e-5
initial = "plus"
noise = 0.01
output_every = 0.1
hamiltonian = {{ h = 0.5 }}
observables = ["X", "ZZ", {{ name = "X0", terms = [[1.0, "X", [0]]] }}]
"""


def _write(tmp_path, t_end=0.2, extra=""):
    p = tmp_path / "quench.toml"
    p.write_text(_CONFIG.format(t_end=t_end) + extra)
    return p


def test_evolve_cli_and_resume(tmp_path, capsys):
    cfg = _write(tmp_path)
    out = tmp_path / "run"
    assert main(["evolve", str(cfg), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "max |TDVP - exact|" in printed
    res = json.loads((out / "result.json").read_text())
    assert res["times"] == pytest.approx([0.0, 0.1, 0.2])
    assert res["max_abs_error"]["X"] < 5e-3
    assert res["max_abs_error"]["X0"] < 5e-3
    assert (out / "dynamics.png").is_file() and (out / "checkpoint.npz").is_file()
    # continue to a later time from the checkpoint: the same curve as one run to that time
    cfg2 = _write(tmp_path, t_end=0.4)
    assert main(["evolve", str(cfg2), "--out", str(out), "--quiet", "--resume"]) == 0
    resumed = json.loads((out / "result.json").read_text())
    assert resumed["times"] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert main(["evolve", str(cfg2), "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    assert resumed["observables"]["X"]["value"] == pytest.approx(whole["observables"]["X"]["value"], abs=1e-10)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("dt = -0.1\n", "dynamics.dt"),
        ("integrator = 'rk9'\n", "dynamics.integrator"),
        ("rtol = 0.0\n", "dynamics.rtol"),
        ("regulariser = 'shift'\n", "diag_shift"),
        ("observables = ['Q']\n", "unknown observable 'Q'"),
        ("observables = [{ name = 'far', terms = [[1.0, 'X', [9]]] }]\n", "far"),
        ("hamiltonian = { hh = 1.0 }\n", "dynamics.hamiltonian.hh"),
    ],
)
def test_evolve_bad_input_is_one_line(tmp_path, capsys, extra, message):
    text = _CONFIG.format(t_end=0.2)
    key = extra.split("=")[0].strip()
    text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key} ")) + "\n" + extra
    p = tmp_path / "bad.toml"
    p.write_text(text)
    assert main(["evolve", str(p), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_evolve_t_end_must_be_positive(tmp_path, capsys):
    assert main(["evolve", str(_write(tmp_path, t_end=-1.0)), "--quiet"]) == 2
    assert "dynamics.t_end" in capsys.readouterr().err


def test_nan_stops_with_last_good_state(tmp_path):
    """A step that goes non-finite stops the run: a one-line error and the last good state in the checkpoint."""
    import nqs.drivers.tdvp as tdvp

    lat, ham, hil = _tfim(4, 1.0)
    model = RBM(4, alpha=1.0, param_dtype="complex")
    params = product_params(model, "plus", lat, 1e-2, jax.random.PRNGKey(0))
    drv = TDVP(model, ham, ExactSampler(hil), t_end=1.0, dt=0.05)
    step = drv.make_step()

    calls = {"n": 0}

    def poisoned(state):
        calls["n"] += 1
        new, info = step(state)
        if calls["n"] == 4:
            new = new._replace(params=jax.tree_util.tree_map(lambda x: x * jnp.nan, new.params))
            info = {**info, "finite": jnp.asarray(False)}
        return new, info

    from nqs.drivers.loop import NonFiniteError

    with pytest.raises(NonFiniteError) as err:
        run(drv, drv.init(jax.random.PRNGKey(0), params), 1000, step_fn=poisoned)
    assert err.value.state is not None and float(err.value.state.t) == pytest.approx(0.15)
    assert tdvp  # the module under test


def test_evolve_from_the_ground_state_and_from_a_run_folder(tmp_path):
    """initial = "ground_state" prepares by VMC into OUT/prepare; from_run starts from a run folder's
    final_params.npz: the same state, so the same values at t = 0 (exact sums)."""
    text = _CONFIG.format(t_end=0.1).replace('initial = "plus"', 'initial = "ground_state"')
    text = text.replace("n_steps = 40", "n_steps = 30")
    p = tmp_path / "gs.toml"
    p.write_text(text)
    out = tmp_path / "gs"
    assert main(["evolve", str(p), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "result.json").read_text())
    assert (out / "prepare" / "final_params.npz").is_file() and (out / "prepare" / "result.json").is_file()
    assert res["preparation"]["energy"]["mean"] < -4.0  # the TFIM ground energy at h = 1, L = 4: -5.226
    x0 = res["observables"]["X"]["value"][0]
    assert x0 == pytest.approx(res["exact"]["X"][0], abs=1e-10)
    # interrupted after the preparation, before the evolution's first checkpoint: --resume reuses the preparation
    (out / "checkpoint.npz").unlink()
    assert main(["evolve", str(p), "--out", str(out), "--quiet", "--resume"]) == 0
    again = json.loads((out / "result.json").read_text())
    assert again["observables"]["X"]["value"] == pytest.approx(res["observables"]["X"]["value"], abs=1e-10)
    q = tmp_path / "from.toml"
    q.write_text(text.replace('initial = "ground_state"', f'from_run = "{out / "prepare"}"'))
    assert main(["evolve", str(q), "--out", str(tmp_path / "from"), "--quiet"]) == 0
    again = json.loads((tmp_path / "from" / "result.json").read_text())
    assert again["observables"]["X"]["value"][0] == pytest.approx(x0, abs=1e-10)
    r = tmp_path / "missing.toml"
    r.write_text(text.replace('initial = "ground_state"', f'from_run = "{tmp_path / "nowhere"}"'))
    assert main(["evolve", str(r), "--out", str(tmp_path / "m"), "--quiet"]) == 2
