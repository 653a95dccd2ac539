"""Tests for nqs.lattice: geometry, distance shells, bonds, bipartiteness, translations, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nqs.lattice import LATTICE_KINDS, Lattice, make_lattice

SQ3 = math.sqrt(3.0)

BULK = {
    "chain": [12],
    "square": [6, 6],
    "triangular": [6, 6],
    "honeycomb": [6, 6],
    "kagome": [6, 6],
}
N_BASIS = {"chain": 1, "square": 1, "triangular": 1, "honeycomb": 2, "kagome": 3}
# (shell-1, shell-2) coordination numbers of the infinite lattice
COORDINATION = {
    "chain": (2, 2),
    "square": (4, 4),
    "triangular": (6, 6),
    "honeycomb": (3, 6),
    "kagome": (4, 4),
}
SHELL_DISTANCES = {
    "chain": (1.0, 2.0),
    "square": (1.0, math.sqrt(2.0)),
    "triangular": (1.0, SQ3),
    "honeycomb": (1.0 / SQ3, 1.0),
    "kagome": (0.5, SQ3 / 2.0),
}


def bond_set(bonds: np.ndarray) -> set[tuple[int, int]]:
    return {(int(min(i, j)), int(max(i, j))) for i, j in bonds}


def degrees(lat: Lattice, shell: int) -> np.ndarray:
    return np.bincount(lat.bonds(shell).ravel(), minlength=lat.n_sites)


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    "kind,size,n",
    [
        ("chain", [1], 1),
        ("chain", 7, 7),
        ("square", [4, 4], 16),
        ("square", [2, 5], 10),
        ("triangular", [3, 4], 12),
        ("honeycomb", [3, 3], 18),
        ("honeycomb", [2, 4], 16),
        ("kagome", [2, 2], 12),
        ("kagome", [3, 4], 36),
    ],
)
def test_site_counts(kind, size, n):
    lat = make_lattice(kind, size)
    assert lat.n_sites == n
    assert lat.positions.shape == (n, lat.ndim)
    assert lat.cells.shape == (n, lat.ndim)
    assert lat.basis_index.shape == (n,)
    assert lat.sublattice.shape == (n,)
    assert lat.n_basis == N_BASIS[kind]


def test_site_order_and_positions():
    lat = make_lattice("kagome", [2, 3])
    a, basis = lat.primitive_vectors, lat.basis_vectors
    for i in range(lat.n_sites):
        c1, c2 = lat.cells[i]
        b = lat.basis_index[i]
        assert i == (c1 * 3 + c2) * 3 + b
        assert lat.site_index((c1, c2), b) == i
        np.testing.assert_allclose(lat.positions[i], c1 * a[0] + c2 * a[1] + basis[b])
    np.testing.assert_allclose(make_lattice("honeycomb", [1, 1]).positions[1], [0.5, SQ3 / 6])
    assert make_lattice("square", [3, 3]).site_index((-1, 4)) == make_lattice("square", [3, 3]).site_index((2, 1))


@pytest.mark.parametrize("kind", LATTICE_KINDS)
def test_reciprocal_vectors(kind):
    lat = make_lattice(kind, BULK[kind])
    np.testing.assert_allclose(
        lat.primitive_vectors @ lat.reciprocal_vectors().T, 2 * np.pi * np.eye(lat.ndim), atol=1e-12
    )


@pytest.mark.parametrize("kind", LATTICE_KINDS)
def test_shell_distances_are_infinite_lattice_values(kind):
    tiny = make_lattice(kind, [1] * len(BULK[kind]))
    d1, d2 = SHELL_DISTANCES[kind]
    assert tiny.shell_distance(1) == pytest.approx(d1)
    assert tiny.shell_distance(2) == pytest.approx(d2)


# ---------------------------------------------------------------- bonds


@pytest.mark.parametrize("kind", LATTICE_KINDS)
def test_bulk_coordination(kind):
    lat = make_lattice(kind, BULK[kind])
    z1, z2 = COORDINATION[kind]
    assert np.all(degrees(lat, 1) == z1)
    assert np.all(degrees(lat, 2) == z2)
    assert len(lat.bonds(1)) == lat.n_sites * z1 // 2
    assert len(lat.bonds(2)) == lat.n_sites * z2 // 2


@pytest.mark.parametrize("kind", LATTICE_KINDS)
@pytest.mark.parametrize("shell", [1, 2, 3])
def test_bond_format_and_distances(kind, shell):
    for pbc in (True, False):
        lat = make_lattice(kind, BULK[kind], pbc=pbc)
        b = lat.bonds(shell)
        assert b.dtype.kind == "i" and b.ndim == 2 and b.shape[1] == 2
        assert np.all(b[:, 0] < b[:, 1])
        assert len(bond_set(b)) == len(b)
        assert np.array_equal(b, np.array(sorted(map(tuple, b.tolist()))).reshape(-1, 2))
        # on bulk clusters every bond is at the shell distance (minimum image)
        d = lat.distance_matrix()[b[:, 0], b[:, 1]]
        np.testing.assert_allclose(d, lat.shell_distance(shell), atol=1e-9)


@pytest.mark.parametrize("L", [3, 4, 5, 6])
def test_square_bond_counts(L):
    lat = make_lattice("square", [L, L])
    assert len(lat.bonds(1)) == 2 * L * L
    assert len(lat.bonds(2)) == 2 * L * L
    open_lat = make_lattice("square", [L, L], pbc=False)
    assert len(open_lat.bonds(1)) == 2 * L * (L - 1)
    assert len(open_lat.bonds(2)) == 2 * (L - 1) ** 2


def test_square_2x2_pair_in_two_shells_and_no_self_bonds():
    lat = make_lattice("square", [2, 2])
    assert bond_set(lat.bonds(1)) == {(0, 1), (0, 2), (1, 3), (2, 3)}
    assert bond_set(lat.bonds(2)) == {(0, 3), (1, 2)}
    # shell 3 (distance 2) maps every site onto itself: no bonds
    assert lat.bonds(3).shape == (0, 2)
    # shell 4 (distance sqrt(5)) reaches the same pairs as shell 1
    assert bond_set(lat.bonds(4)) == bond_set(lat.bonds(1))


@pytest.mark.parametrize("L", [3, 4, 7, 10])
def test_chain_bond_counts(L):
    assert len(make_lattice("chain", L).bonds(1)) == L
    assert len(make_lattice("chain", [L], pbc=False).bonds(1)) == L - 1
    assert len(make_lattice("chain", [L], pbc=False).bonds(2)) == L - 2


def test_small_chains():
    assert bond_set(make_lattice("chain", 2).bonds(1)) == {(0, 1)}
    assert make_lattice("chain", 2).bonds(2).shape == (0, 2)
    assert make_lattice("chain", 1).bonds(1).shape == (0, 2)
    assert bond_set(make_lattice("chain", 4).bonds(2)) == {(0, 2), (1, 3)}


def test_mixed_boundaries():
    lat = make_lattice("square", [4, 3], pbc=[True, False])
    # periodic along a1 (4 * 3 bonds), open along a2 (4 * 2 bonds)
    assert len(lat.bonds(1)) == 12 + 8
    assert lat.describe() == "square 4x3, periodic x open, 12 sites"


def test_distance_minimum_image():
    lat = make_lattice("chain", 10)
    assert lat.distance(0, 9) == pytest.approx(1.0)
    assert lat.distance(0, 5) == pytest.approx(5.0)
    assert make_lattice("chain", [10], pbc=False).distance(0, 9) == pytest.approx(9.0)
    tri = make_lattice("triangular", [4, 4])
    dm = tri.distance_matrix()
    for i, j in [(0, 5), (0, 15), (3, 12), (7, 9)]:
        assert tri.distance(i, j) == pytest.approx(dm[i, j])
    assert tri.distance(0, 3) == pytest.approx(1.0)  # cell (0, 3) ~ (0, -1)
    assert tri.distance(0, 15) == pytest.approx(SQ3)  # cell (3, 3) ~ -(a1 + a2)
    # elongated skewed torus: images beyond n = +-1 matter; the brute force agrees
    thin = make_lattice("triangular", [1, 6])
    big = np.array(thin.size)[:, None] * thin.primitive_vectors
    for j in range(thin.n_sites):
        d0 = thin.positions[j] - thin.positions[0]
        brute = min(np.linalg.norm(d0 + n1 * big[0] + n2 * big[1]) for n1 in range(-8, 9) for n2 in range(-3, 4))
        assert thin.distance(0, j) == pytest.approx(brute)
        assert thin.distance_matrix()[0, j] == pytest.approx(brute)


# ---------------------------------------------------------------- bipartiteness


@pytest.mark.parametrize(
    "kind,size,pbc,expected",
    [
        ("chain", 8, True, True),
        ("chain", 2, True, True),
        ("chain", 7, True, False),
        ("chain", 7, False, True),
        ("chain", 8, False, True),
        ("square", [4, 4], True, True),
        ("square", [3, 4], True, False),
        ("square", [3, 4], [False, True], True),
        ("square", [3, 3], False, True),
        ("triangular", [4, 4], True, False),
        ("triangular", [3, 3], False, False),
        ("kagome", [2, 2], True, False),
        ("kagome", [3, 3], False, False),
        ("honeycomb", [3, 3], True, True),
        ("honeycomb", [3, 4], False, True),
    ],
)
def test_bipartite(kind, size, pbc, expected):
    lat = make_lattice(kind, size, pbc=pbc)
    assert lat.is_bipartite is expected
    if expected:
        b = lat.bonds(1)
        assert set(np.unique(lat.sublattice)) <= {0, 1}
        assert np.all(lat.sublattice[b[:, 0]] != lat.sublattice[b[:, 1]])
        assert lat.sublattice[0] == 0
    else:
        np.testing.assert_array_equal(lat.sublattice, lat.basis_index)


def test_honeycomb_and_square_sublattices():
    hc = make_lattice("honeycomb", [3, 3])
    np.testing.assert_array_equal(hc.sublattice, hc.basis_index)
    sq = make_lattice("square", [4, 4])
    np.testing.assert_array_equal(sq.sublattice, sq.cells.sum(axis=1) % 2)


# ---------------------------------------------------------------- translations / momenta

PERIODIC_CASES = [
    ("chain", [1]),
    ("chain", [2]),
    ("chain", [5]),
    ("square", [2, 2]),
    ("square", [3, 4]),
    ("triangular", [2, 3]),
    ("triangular", [4, 4]),
    ("triangular", [1, 5]),
    ("honeycomb", [2, 2]),
    ("honeycomb", [3, 3]),
    ("kagome", [2, 2]),
    ("kagome", [3, 2]),
]


@pytest.mark.parametrize("kind,size", PERIODIC_CASES)
def test_translations_are_symmetries(kind, size):
    lat = make_lattice(kind, size)
    T = lat.translations()
    assert T.shape == (lat.n_cells, lat.n_sites)
    np.testing.assert_array_equal(T[0], np.arange(lat.n_sites))
    for perm in T:
        np.testing.assert_array_equal(np.sort(perm), np.arange(lat.n_sites))
        np.testing.assert_array_equal(lat.basis_index[perm], lat.basis_index)
    for shell in (1, 2):
        bonds = bond_set(lat.bonds(shell))
        for perm in T:
            assert bond_set(perm[lat.bonds(shell)]) == bonds
    # the translations form a group isomorphic to Z_L1 x Z_L2: all rows distinct
    assert len({tuple(r) for r in T.tolist()}) == lat.n_cells


def test_translation_convention():
    lat = make_lattice("square", [3, 4])
    T = lat.translations()
    # row for shift (t1, t2) = (1, 2) is t1 * L2 + t2 = 6; it maps cell (0, 0) to (1, 2)
    assert T[6, lat.site_index((0, 0))] == lat.site_index((1, 2))
    assert T[6, lat.site_index((2, 3))] == lat.site_index((0, 1))


def test_translations_open_direction():
    lat = make_lattice("honeycomb", [3, 4], pbc=[False, True])
    T = lat.translations()
    assert T.shape == (4, lat.n_sites)
    for perm in T:
        assert bond_set(perm[lat.bonds(1)]) == bond_set(lat.bonds(1))
    assert make_lattice("chain", [6], pbc=False).translations().shape == (1, 6)
    assert lat.momenta().shape == (4, 2)


@pytest.mark.parametrize("kind,size", [("chain", [6]), ("square", [3, 4]), ("kagome", [3, 2])])
def test_momenta_are_characters(kind, size):
    lat = make_lattice(kind, size)
    k = lat.momenta()
    assert k.shape == (lat.n_cells, lat.ndim)
    np.testing.assert_allclose(k[0], 0.0)
    # translation vectors ordered like the momenta; exp(i k.T) over all T is a character table
    shifts = lat.cells[:: lat.n_basis] @ lat.primitive_vectors
    chars = np.exp(1j * k @ shifts.T)
    np.testing.assert_allclose(chars.conj() @ chars.T, lat.n_cells * np.eye(lat.n_cells), atol=1e-9)
    # exp(i k . L_i a_i) = 1: momenta are compatible with the torus
    super_vecs = np.array(lat.size)[:, None] * lat.primitive_vectors
    np.testing.assert_allclose(np.exp(1j * k @ super_vecs.T), 1.0, atol=1e-9)


# ---------------------------------------------------------------- description / errors


def test_describe_and_repr():
    lat = make_lattice("square", [4, 4])
    assert lat.describe() == "square 4x4, periodic, 16 sites"
    assert repr(lat) == "Lattice(square 4x4, periodic, 16 sites)"
    assert make_lattice("chain", 8, pbc=False).describe() == "chain 8, open, 8 sites"
    assert make_lattice("Kagome", (2, 2)).kind == "kagome"


def test_normalized_fields_and_equality():
    lat = make_lattice("chain", 6)
    assert lat.size == (6,) and lat.pbc == (True,) and lat.ndim == 1
    assert make_lattice("square", [3, 3]) == make_lattice("square", (3, 3), pbc=[True, True])
    assert hash(make_lattice("square", [3, 3])) == hash(make_lattice("square", (3, 3)))
    lat2 = make_lattice("square", np.array([3, 2]), pbc=[np.bool_(True), False])
    assert lat2.size == (3, 2) and lat2.pbc == (True, False)
    with pytest.raises(ValueError):
        lat2.bonds(1)[0, 0] = 5  # cached arrays are read-only


@pytest.mark.parametrize(
    "kind,size,pbc,match",
    [
        ("hexagonal", [4, 4], True, "unknown lattice.kind 'hexagonal'; valid kinds: chain, square"),
        (
            "square",
            [4],
            True,
            r"lattice.size must have 2 entries for a square lattice, got \[4\]",
        ),
        ("square", 4, True, "lattice.size must have 2 entries for a square lattice, got 4"),
        ("chain", [4, 4], True, r"must have 1 entries for a chain lattice, got \[4, 4\]"),
        ("square", [4, 0], True, r"lattice.size entries must be positive, got \[4, 0\]"),
        ("chain", -3, True, "lattice.size entries must be positive"),
        ("square", [4, 2.5], True, "lattice.size entries must be integers"),
        ("square", "4x4", True, "lattice.size must be a list of 2 positive integers"),
        ("square", [4, 4], [True], r"lattice.pbc .* have 2 entries .* got \[True\]"),
        ("square", [4, 4], [1, 0], "lattice.pbc entries must be true/false"),
    ],
)
def test_errors(kind, size, pbc, match):
    with pytest.raises(ValueError, match=match):
        make_lattice(kind, size, pbc=pbc)


def test_bad_shell():
    lat = make_lattice("chain", 4)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="shell must be a positive integer"):
            lat.bonds(bad)
