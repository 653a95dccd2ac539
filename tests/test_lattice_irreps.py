"""Tests for nqs.lattice.irreps: momentum characters, point-group irreps, space characters.

Conventions under test (``docs/symmetry.md``): ``(gσ)_{perms[g, i]} = σ_i``; a sector
``χ`` is ``U_g ψ = χ(g) ψ`` ⇔ ``ψ(gσ) = χ(g)* ψ(σ)``; momentum characters ``χ(T) = e^{−ik·T}``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nqs.exact.sectors import projector_dense
from nqs.hilbert import SpinHilbert
from nqs.lattice import (
    is_representation,
    little_group,
    make_lattice,
    momentum,
    momentum_characters,
    point_characters,
    point_group,
    point_irreps,
    space_characters,
    space_group,
    spin_flip_character,
    translation_group,
)


def lat_of(kind: str, size: tuple[int, ...]):
    return make_lattice(kind, size[0] if kind == "chain" else list(size))


# ============================================================================ characters
CHARACTER_CASES = [
    ("chain", (8,), [0, math.pi]),
    ("square", (4, 4), [(0, 0), (math.pi, math.pi)]),
    ("triangular", (3, 3), [(0, 0)]),
    ("honeycomb", (3, 3), [(0, 0)]),
    ("kagome", (2, 2), [(0, 0), "all"]),
]


@pytest.mark.parametrize("kind,size,ks", CHARACTER_CASES)
def test_characters_are_representations(kind, size, ks):
    lat = lat_of(kind, size)
    G, T = space_group(lat), translation_group(lat)
    for ik in range(len(lat.momenta())):  # translations alone: every k
        assert is_representation(T, momentum_characters(lat, T, ik))
    ks = [k for k in ks if k != "all"]
    for k in ks:
        kv = momentum(lat, np.atleast_1d(np.asarray(k, dtype=float)))
        for name, chi_p in point_irreps(G).items():
            chi = space_characters(lat, G, kv, name)
            if chi_p[0].real == 1:
                assert is_representation(G, chi), name
            else:  # 2D irreps: class functions, traces of a representation
                assert np.allclose(chi[G.identity], 2)
    # spin flip: the group {1, F}
    for p in (1, -1):
        chi = spin_flip_character(p)
        assert chi[0] == 1 and chi[1] ** 2 == 1 and chi[1] == p


@pytest.mark.parametrize("kind,size", [("square", (4, 4)), ("triangular", (3, 3)), ("kagome", (2, 2)), ("chain", (8,))])
def test_little_group_characters_are_orthonormal(kind, size):
    """Σ_g χ_a(g)* χ_b(g) = |G_k| δ_ab for every little group: the irreps (2D included) are
    irreducible and distinct."""
    lat = lat_of(kind, size)
    for ik in range(len(lat.momenta())):
        lg = little_group(lat, ik)
        chis = [space_characters(lat, lg, ik, name) for name in point_irreps(lg)]
        gram = np.array([[np.vdot(a, b) for b in chis] for a in chis]) / len(lg)
        assert np.allclose(gram, np.eye(len(chis)), atol=1e-12)
        if kind == "square" and ik in (0, 10):  # Γ and M = (π, π): the full C4v
            assert len(lg) == 128 and sorted(point_irreps(lg)) == ["A1", "A2", "B1", "B2", "E"]


def test_class_rules_of_the_1d_irreps():
    sq = point_group(make_lattice("square", [4, 4]))
    b1 = dict(zip(sq.names, point_characters(sq, "B1").real, strict=True))
    assert b1 == {
        "E": 1,
        "rot90": -1,
        "rot180": 1,
        "rot270": -1,
        "mirror0": 1,
        "mirror45": -1,
        "mirror90": 1,
        "mirror135": -1,
    }
    hx = point_group(make_lattice("triangular", [3, 3]))
    b2 = dict(zip(hx.names, point_characters(hx, "B2").real, strict=True))
    assert [b2[f"rot{a}"] for a in (60, 120, 180)] == [-1, 1, -1]
    assert [b2[f"mirror{a}"] for a in (0, 30, 60, 90)] == [-1, 1, -1, 1]
    ch = point_group(make_lattice("chain", 8))
    assert point_characters(ch, "A2").real.tolist() == [1, -1]


def test_momentum_sign_convention_and_errors():
    lat = make_lattice("chain", 8)
    T = translation_group(lat)
    k = 2 * math.pi / 8
    chi = momentum_characters(lat, T, [k])
    assert np.allclose(chi[1], np.exp(-1j * k))  # T(1): χ = e^{-ik}
    # a single magnon ψ(r) = e^{ikr} has U_T ψ = e^{-ikT} ψ, i.e. lies in sector k
    hil = SpinHilbert(8, 3.0)  # one down spin
    states = hil.all_states()
    r = np.argmin(states, axis=1)
    psi = np.exp(1j * k * r) / math.sqrt(8)
    P = projector_dense(T, chi, hil)
    assert np.allclose(P @ psi, psi)
    with pytest.raises(ValueError, match="allowed momentum"):
        momentum(lat, [0.1])
    sq = make_lattice("square", [4, 4])
    with pytest.raises(ValueError, match="little_group"):
        space_characters(sq, space_group(sq), (math.pi / 2, 0), "A1")
