"""Finite temperature by purification: the Bell-pair RBM, the pair-flip Metropolis rule, the chunked exact TDVP
solve and ``nqs thermal`` against exact thermal averages on small chains."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs import estimators
from nqs import hamiltonians as H
from nqs.cli import main
from nqs.exact import exact_state
from nqs.exact.dynamics import bell_pairs_state, doubled, thermal_averages
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models import RBM
from nqs.models.product import bell_pairs_params
from nqs.qgt import TDVPSolver, tdvp_solve, tdvp_solve_sf
from nqs.sampling import MetropolisSampler
from nqs.sampling.pairs import PairRule


def test_bell_pairs_rbm_is_the_infinite_temperature_purification():
    n = 3
    model = RBM(2 * n, alpha=1.0)
    params = bell_pairs_params(model, n, 0.0, jax.random.PRNGKey(0))
    hil = SpinHilbert(2 * n)
    psi = exact_state(model, params, hil)
    assert abs(np.vdot(bell_pairs_state(n), psi)) / np.linalg.norm(psi) == pytest.approx(1.0, abs=1e-12)
    # local energies and log-derivatives stay finite on the unequal pairs (cos(π/2) ≈ 6e-17, not 0)
    op = doubled(H.ising(make_lattice("chain", [n]), 1.0, 1.0))
    states = jnp.asarray(hil.all_states())
    e_loc = np.asarray(estimators.local_energies(model, params, op, states))
    ref = (op.to_dense(hil) @ psi) / psi
    assert np.all(np.isfinite(e_loc))
    assert np.max(np.abs(e_loc - ref) / np.maximum(np.abs(ref), 1.0)) < 1e-10
    assert np.all(np.isfinite(np.asarray(estimators.log_derivatives(model, params, states, "holomorphic"))))
    with pytest.raises(ValueError, match="alpha"):
        bell_pairs_params(RBM(2 * n, alpha=0.25), n, 0.0, jax.random.PRNGKey(0))


@pytest.mark.parametrize("bonds", [(), ((0, 1),)])
def test_pair_rule_samples_born_distribution(bonds):
    """Chains of the pair rule sample |ψ|² of a generic RBM on 2·2 spins (all 16 states) and, at the Bell-pair
    start, only equal pairs, uniformly."""
    n = 2
    hil = SpinHilbert(2 * n)
    model = RBM(2 * n, alpha=1.0, init_scale=0.5)
    params = model.init(jax.random.PRNGKey(4))
    sampler = MetropolisSampler(hil, PairRule(n, bonds), n_chains=64, n_samples=64 * 250, n_discard=20)
    samples, _, _ = sampler.sample(model, params, sampler.init_state(jax.random.PRNGKey(1)))
    codes = hil.states_to_codes(np.asarray(samples).reshape(-1, 2 * n))
    freq = np.bincount(codes, minlength=16) / codes.size
    p = np.abs(exact_state(model, params, hil)) ** 2
    p = p / p.sum()
    assert 0.5 * np.abs(freq - p).sum() < 0.03  # total variation distance (sampling noise ~ 0.007)

    bell = bell_pairs_params(model, n, 0.0, jax.random.PRNGKey(0))
    samples, _, state = sampler.sample(model, bell, sampler.init_state(jax.random.PRNGKey(2)))
    s = np.asarray(samples).reshape(-1, 2 * n)
    assert np.all(s[:, :n] == s[:, n:])
    _, counts = np.unique(hil.states_to_codes(s), return_counts=True)
    assert len(counts) == 2**n and counts.min() / counts.max() > 0.85
    assert int(state.n_accepted) > 0


def test_solve_from_s_and_f_matches_the_row_solve():
    rng = np.random.default_rng(0)
    Oc = jnp.asarray(rng.normal(size=(40, 12)) + 1j * rng.normal(size=(40, 12)))
    ec = jnp.asarray(rng.normal(size=40) + 1j * rng.normal(size=40))
    for mode in ("holomorphic", "real"):
        for solver in (TDVPSolver("pinv", rcond_smooth=1e-6), TDVPSolver("shift", diag_shift=0.1)):
            x, info = tdvp_solve(Oc, ec, mode, solver, False)
            y, info2 = tdvp_solve_sf(Oc.conj().T @ Oc, Oc.conj().T @ ec, jnp.vdot(ec, ec).real, mode, solver)
            assert np.allclose(x, y, atol=1e-10)
            assert float(info2.residual) == pytest.approx(float(info.residual), abs=1e-8)


_CONFIG = """
seed = 1
[lattice]
kind = "chain"
size = [4]
[hamiltonian]
kind = "{kind}"
{extra_h}
[model]
kind = "rbm"
alpha = 1.0
[thermal]
{grid}
dt = 0.02
{extra}
"""


def _write(tmp_path, kind="ising", grid="temperatures = [2.0, 1.0]", extra="", extra_h=""):
    p = tmp_path / "thermal.toml"
    p.write_text(_CONFIG.format(kind=kind, grid=grid, extra=extra, extra_h=extra_h))
    return p


@pytest.mark.parametrize(
    "kind, extra", [("ising", 'sampler = "exact"'), ("ising", 'sampler = "exact_chunked"\nchunk_states = 64')]
)
def test_thermal_cli_matches_exact(tmp_path, capsys, kind, extra):
    out = tmp_path / "run"
    assert main(["thermal", str(_write(tmp_path, kind, extra=extra)), "--out", str(out), "--quiet"]) == 0
    assert "exact E/N" in capsys.readouterr().out
    res = json.loads((out / "result.json").read_text())
    lat = make_lattice("chain", [4])
    op = H.ising(lat, 1.0, 1.0) if kind == "ising" else H.heisenberg(lat)
    ex = thermal_averages(op, None, [2.0, 1.0])
    for row, e, c in zip(res["temperatures"], ex["energy_per_site"], ex["specific_heat_per_site"], strict=True):
        assert row["energy_per_site"] == pytest.approx(e, rel=5e-3)
        assert row["specific_heat_per_site"] == pytest.approx(c, rel=5e-2)
        assert row["exact_energy_per_site"] == pytest.approx(e)
    assert (out / "thermal.png").is_file() and (out / "history.csv").is_file()


@pytest.mark.parametrize(
    "grid, extra, extra_h, message",
    [
        ("temperatures = [1.0, -0.5]", "", "", "thermal.temperatures"),
        ("temperatures = []", "", "", "empty"),
        ("betas = [1.0]\ntemperatures = [1.0]", "", "", "exactly one"),
        ("", "", "", "exactly one"),
        ("betas = [1.0]", "chunk_states = 100", "", "power of 2"),
        ("betas = [1.0]", "", "total_sz = 0.0", "total_sz"),
    ],
)
def test_thermal_bad_input_is_one_line(tmp_path, capsys, grid, extra, extra_h, message):
    p = _write(tmp_path, grid=grid, extra=extra, extra_h=extra_h)
    assert main(["thermal", str(p), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_thermal_needs_its_section(tmp_path, capsys):
    p = tmp_path / "plain.toml"
    p.write_text('[lattice]\nkind = "chain"\nsize = [4]\n')
    assert main(["thermal", str(p), "--quiet"]) == 2
    assert "[thermal]" in capsys.readouterr().err
