"""d-wave RVB start of the projected pair product for spins (models.rbm_pp.dwave_pairing)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs.estimators import local_energies
from nqs.hamiltonians import j1j2
from nqs.hilbert import SpinHilbert
from nqs.lattice import Lattice
from nqs.models.rbm_pp import SpinRBMPP, dwave_pairing

E0_J1J2_4x4 = -8.457923351394875  # ED, J2 = 0.5 (shared/reference)


def _enumerated_energy(model, params, op, states):
    lp = jax.jit(jax.vmap(lambda s: model.log_psi(params, s)))(states)
    ok = jnp.isfinite(lp.real)
    w = jnp.where(ok, jnp.exp(2 * (lp.real - jnp.max(jnp.where(ok, lp.real, -jnp.inf)))), 0.0)
    e = jax.jit(lambda s: local_energies(model, params, op, s))(states)
    return float(jnp.sum(jnp.where(ok, w * e, 0.0)).real / jnp.sum(w))


def test_dwave_pairing_is_a_real_symmetric_singlet_pair_function():
    lat = Lattice("square", (4, 4))
    f = dwave_pairing(lat)
    assert f.shape == (16, 16) and np.isrealobj(f)
    np.testing.assert_allclose(f, f.T, atol=1e-14)  # singlet
    assert np.max(np.abs(f)) == pytest.approx(1.0)


def test_dwave_start_is_a_good_j1j2_state_where_the_open_shell_fermi_sea_is_not():
    lat = Lattice("square", (4, 4))
    op = j1j2(lat, 1.0, 0.5)
    states = jnp.asarray(SpinHilbert(16, 0.0).all_states())
    dw = SpinRBMPP(16, 0.0, param_dtype="real", pairing=dwave_pairing(lat), init_noise=0.0)
    noisy = SpinRBMPP(16, 0.0, param_dtype="complex", pairing=dwave_pairing(lat), init_noise=0.01)
    fs = SpinRBMPP(16, 0.0, param_dtype="real", hopping=lat, init_noise=0.0)
    e_dw = _enumerated_energy(dw, dw.init(jax.random.PRNGKey(0)), op, states)
    e_fs = _enumerated_energy(fs, fs.init(jax.random.PRNGKey(0)), op, states)
    e_noisy = _enumerated_energy(noisy, noisy.init(jax.random.PRNGKey(1)), op, states)
    assert E0_J1J2_4x4 < e_dw < E0_J1J2_4x4 * (1 - 0.04)  # variational, within 4 % (measured 3.3 %)
    assert abs(e_noisy - e_dw) < 0.05  # the start noise the config uses (0.01) keeps it (measured 0.0003)
    assert e_fs > e_dw + 2.0  # the projected Fermi sea of the open 4x4 shell is far worse (-5.79)


def test_dwave_pairing_rejects_other_lattices_and_bad_shapes():
    with pytest.raises(ValueError, match="periodic square"):
        dwave_pairing(Lattice("triangular", (3, 3)))
    with pytest.raises(ValueError, match="periodic square"):
        dwave_pairing(Lattice("square", (4, 4), pbc=False))
    with pytest.raises(ValueError, match="pairing must be"):
        SpinRBMPP(16, 1.0, pairing=np.zeros((4, 4))).init(jax.random.PRNGKey(0))


def _cfg(tmp_path, lattice, init, extra=""):
    p = tmp_path / "c.toml"
    p.write_text(f"""
[lattice]
{lattice}
[hamiltonian]
kind = "j1j2"
total_sz = 0
[model]
kind = "rbm_pp"
alpha = 1
init = "{init}"
{extra}
""")
    return p


def test_config_dwave_start_builds_the_pairing_and_rejects_misuse(tmp_path):
    from nqs.config import ConfigError, load_config
    from nqs.workflow import build

    p = build(load_config(_cfg(tmp_path, 'kind = "square"\nsize = [4, 4]', "dwave")))
    params = p.driver.init(jax.random.PRNGKey(0)).params
    f = np.asarray(p.driver.physical_params(params)["pp"]["F"])
    f0 = dwave_pairing(Lattice("square", (4, 4)))
    assert np.max(np.abs(f - f0)) < 0.1 * np.max(np.abs(f0))  # the d-wave f plus the 1 % start noise
    assert np.corrcoef(f.real.ravel(), f0.ravel())[0, 1] > 0.99
    with pytest.raises(ConfigError, match="model.init: the d-wave start needs a periodic square lattice"):
        build(load_config(_cfg(tmp_path, 'kind = "triangular"\nsize = [4, 4]', "dwave")))
    with pytest.raises(ConfigError, match="model.init: 'uhf' is for electron"):
        build(load_config(_cfg(tmp_path, 'kind = "square"\nsize = [4, 4]', "uhf")))
