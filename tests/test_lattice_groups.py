"""Tests for nqs.lattice.groups: translation, point, space and little groups as site permutations.

Conventions under test (``docs/symmetry.md``): ``(gσ)_{perms[g, i]} = σ_i``; a sector
``χ`` is ``U_g ψ = χ(g) ψ`` ⇔ ``ψ(gσ) = χ(g)* ψ(σ)``; momentum characters ``χ(T) = e^{−ik·T}``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nqs.lattice import (
    SymmetryGroup,
    make_lattice,
    point_group,
    sector_exists,
    space_characters,
    space_group,
    translation_group,
)

# (kind, size) -> (|T|, |P|): periodic clusters and their expected group orders
CLUSTERS = {
    ("chain", (8,)): (8, 2),
    ("square", (4, 4)): (16, 8),
    ("square", (3, 3)): (9, 8),
    ("triangular", (3, 3)): (9, 12),
    ("triangular", (4, 4)): (16, 12),
    ("honeycomb", (3, 3)): (9, 12),
    ("honeycomb", (2, 2)): (4, 12),
    ("kagome", (2, 2)): (4, 12),
}


def lat_of(kind: str, size: tuple[int, ...]):
    return make_lattice(kind, size[0] if kind == "chain" else list(size))


def bond_set(bonds) -> set[tuple[int, int]]:
    return {(int(min(i, j)), int(max(i, j))) for i, j in bonds}


def permuted_bonds(perm: np.ndarray, bonds: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(int(min(perm[i], perm[j])), int(max(perm[i], perm[j]))) for i, j in bonds}


# ============================================================================ groups
@pytest.mark.parametrize("kind,size", list(CLUSTERS))
def test_groups_are_bond_preserving_closed_and_of_the_right_order(kind, size):
    lat = lat_of(kind, size)
    n_t, n_p = CLUSTERS[(kind, size)]
    T, P, G = translation_group(lat), point_group(lat), space_group(lat)
    assert (len(T), len(P), len(G)) == (n_t, n_p, n_t * n_p)
    shells = [bond_set(lat.bonds(s)) for s in (1, 2)]
    for grp in (T, P, G):
        assert grp.is_closed()
        assert grp.identity == 0
        assert np.array_equal(np.sort(grp.perms, axis=1), np.tile(np.arange(lat.n_sites), (len(grp), 1)))
        for perm in grp.perms:
            for bonds in shells:
                assert permuted_bonds(perm, bonds) == bonds
    # the space group's elements are (translation t) ∘ (point op p)
    trans = lat.translations()
    for g in range(len(G)):
        assert np.array_equal(G.perms[g], trans[G.translation[g]][G.point_perms[G.point[g]]])


def test_documented_group_orders():
    assert len(space_group(make_lattice("square", [4, 4]))) == 16 * 8
    assert len(space_group(make_lattice("triangular", [3, 3]))) == 9 * 12
    assert len(space_group(make_lattice("chain", 8))) == 16


def test_composition_convention_and_helpers():
    lat = make_lattice("square", [4, 4])
    G = space_group(lat)
    rng = np.random.default_rng(0)
    sigma = rng.choice(np.array([-1, 1], dtype=np.int8), size=lat.n_sites)
    for g, h in rng.integers(0, len(G), size=(20, 2)):
        gh = G.product(g, h)
        # (gh)σ = g(hσ), and (gσ)_{p_g[i]} = σ_i
        assert np.array_equal(G.act(gh, sigma), G.act(g, G.act(h, sigma)))
        gs = G.act(g, sigma)
        assert np.array_equal(gs[G.perms[g]], sigma)
        assert G.product(g, G.inverse(g)) == G.identity
    table = G.product_table()
    assert table.shape == (128, 128)
    assert all(sorted(row) == list(range(128)) for row in table)  # Latin square
    assert not SymmetryGroup(perms=G.perms[:5], names=G.names[:5]).is_closed()


def test_point_groups_of_non_symmetric_tori_and_centres():
    def ops(lat, **kw):
        return set(point_group(lat, **kw).point_names)

    assert ops(make_lattice("square", [2, 4])) == {"E", "rot180", "mirror0", "mirror90"}  # C2v
    assert ops(make_lattice("square", [3, 4])) == {"E", "rot180", "mirror0", "mirror90"}
    assert ops(make_lattice("triangular", [3, 4])) == {"E", "rot180"}  # C2 only
    assert ops(make_lattice("triangular", [3, 6])) == {"E", "rot180", "mirror0", "mirror90"}
    hc = make_lattice("honeycomb", [3, 3])
    site_ops = ops(hc, centre="site")  # C3v about a site (mirrors through the bonds)
    assert site_ops == {"E", "rot120", "rot240", "mirror30", "mirror90", "mirror150"}
    assert len(ops(make_lattice("kagome", [2, 2]), centre="site")) == 4  # C2v about a site
    # open chain: inversion about the centre of the cluster
    P = point_group(make_lattice("chain", 6, pbc=False))
    assert P.point_names == ("E", "I") and P.perms[1].tolist() == [5, 4, 3, 2, 1, 0]


def test_tiny_torus_records_coinciding_operations():
    lat = make_lattice("square", [2, 4])  # x -> -x is the identity on a length-2 direction
    G = space_group(lat)
    assert len(G.duplicates) > 0 and G.is_closed()
    assert not sector_exists(lat, G, 0, "B1") and sector_exists(lat, G, 0, "A1")
    with pytest.raises(ValueError, match="does not exist"):
        space_characters(lat, G, 0, "B1")
