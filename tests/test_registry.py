"""One registration per kind: a Hamiltonian and a model declared in one place (config class, builder, units)
are usable from a config file, with their units printed and their keys checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import jax.numpy as jnp
import pytest

from nqs import cli
from nqs.config import ConfigError, parse_config
from nqs.hamiltonians import units_for
from nqs.models import Model
from nqs.operators.pauli import PauliSum
from nqs.registry import HAMILTONIANS, MODELS, Registry, Section


class FieldConfig(Section):
    kind: Literal["toy_field"] = "toy_field"
    h: float = 1.0
    total_sz: float | None = None

    def parameters(self) -> dict:
        return {"h": self.h}


def toy_field(lattice, h: float = 1.0) -> PauliSum:
    """H = −h Σ_i σˣ_i (Pauli): ground state |+…+⟩, E₀ = −h N."""
    return PauliSum(lattice.n_sites, [(-h, "X", (i,)) for i in range(lattice.n_sites)], name="toy_field")


class ProductConfig(Section):
    kind: Literal["toy_product"] = "toy_product"
    a0: float = 0.3


@dataclass(frozen=True, eq=False)
class ProductState(Model):
    """ψ(σ) = exp(a Σ_i σ_i) with one real parameter a (|+…+⟩ at a = 0)."""

    n_sites: int
    a0: float
    real_derivatives = True

    def init(self, key):
        return {"a": jnp.asarray(self.a0)}

    def log_psi(self, params, sigma):
        return (params["a"] * jnp.sum(sigma)).astype(jnp.complex128)


@pytest.fixture
def toy_kinds():
    HAMILTONIANS.register(
        "toy_field",
        config=FieldConfig,
        units="Pauli matrices: H = -h sum_i X_i",
        short_units="Pauli",
        conserves_sz=False,
    )(toy_field)

    @MODELS.register("toy_product", config=ProductConfig)
    def build(section: ProductConfig, context) -> ProductState:
        return ProductState(context.lattice.n_sites, section.a0)

    yield
    HAMILTONIANS.unregister("toy_field")
    MODELS.unregister("toy_product")


def test_registered_hamiltonian_and_model_run_from_a_config(tmp_path, toy_kinds, capsys):
    config = tmp_path / "toy.toml"
    config.write_text(
        '[lattice]\nkind = "chain"\nsize = [6]\n'
        '[hamiltonian]\nkind = "toy_field"\nh = 0.5\n'
        '[model]\nkind = "toy_product"\na0 = 0.4\n'
        '[sampler]\nkind = "exact"\n'
        '[optimizer]\nkind = "sr"\nlearning_rate = 0.2\nlearning_rate_final = 0.2\nn_steps = 60\n'
        f'[output]\ndir = "{tmp_path / "run"}"\n'
    )
    assert cli.main(["run", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Pauli matrices: H = -h sum_i X_i" in out  # the registered units, printed with the energy
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["exact_energy"] == pytest.approx(-3.0, abs=1e-10)
    assert result["energy"]["mean"] == pytest.approx(-3.0, abs=1e-8)
    assert units_for("toy_field") == "Pauli matrices: H = -h sum_i X_i"


def test_registered_kinds_check_their_keys(toy_kinds):
    with pytest.raises(ConfigError, match="'J' is not a parameter of kind 'toy_field' \\(it takes h, total_sz\\)"):
        parse_config({"hamiltonian": {"kind": "toy_field", "J": 1.0}})
    with pytest.raises(ConfigError, match="'alpha' is not a parameter of kind 'toy_product'"):
        parse_config({"model": {"kind": "toy_product", "alpha": 2}})
    with pytest.raises(ConfigError, match="unknown model kind 'toy_prodct'.*toy_product"):
        parse_config({"model": {"kind": "toy_prodct"}})
    cfg = parse_config({"hamiltonian": {"kind": "toy_field"}, "model": {"kind": "toy_product", "a0": 0.1}})
    assert cfg.resolved()["model"] == {"kind": "toy_product", "a0": 0.1}


def test_a_kind_is_registered_once():
    reg = Registry("thing", "nothing")
    reg.register("a")(lambda: None)
    with pytest.raises(ValueError, match="registered already"):
        reg.register("a")(lambda: None)
    with pytest.raises(KeyError, match="unknown thing kind 'b'"):
        reg["b"]
