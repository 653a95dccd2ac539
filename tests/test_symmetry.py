"""Tests for nqs.lattice.symmetry (groups, characters, sector ED) and nqs.models.symmetric.

Conventions under test (see the module docstrings): ``(gσ)_{perms[g, i]} = σ_i``; a sector
``χ`` is ``U_g ψ = χ(g) ψ`` ⇔ ``ψ(gσ) = χ(g)* ψ(σ)``; momentum characters ``χ(T) = e^{−ik·T}``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs.config import parse_config
from nqs.exact import exact_state, lowest_energies
from nqs.hamiltonians import heisenberg, j1j2
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.lattice.symmetry import (
    SymmetryGroup,
    is_representation,
    little_group,
    momentum,
    momentum_characters,
    point_characters,
    point_group,
    point_irreps,
    projector_dense,
    sector_basis,
    sector_energies,
    sector_exists,
    sector_hamiltonian,
    space_characters,
    space_group,
    spin_flip_character,
    symmetry_sectors,
    translation_group,
)
from nqs.models import RBM, fast_path
from nqs.models.symmetric import Projected, SymmetricRBM
from nqs.operators.moves import apply_moves
from nqs.operators.pauli import PauliSum
from nqs.workflow import build

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


@pytest.mark.parametrize("kind,size", [("square", (4, 4)), ("triangular", (3, 3)), ("kagome", (2, 2)),
                                       ("chain", (8,))])
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
    assert b1 == {"E": 1, "rot90": -1, "rot180": 1, "rot270": -1,
                  "mirror0": 1, "mirror45": -1, "mirror90": 1, "mirror135": -1}
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


# ============================================================================ projectors, sector ED
def test_projectors_are_orthogonal_and_complete():
    lat = make_lattice("chain", 8)
    hil = SpinHilbert(8, 0.0)
    total = np.zeros((hil.n_states, hil.n_states), dtype=complex)
    n_dim = 0
    for ik, irrep, p in symmetry_sectors(lat, spin_flip=True):
        lg = little_group(lat, ik)
        chi = space_characters(lat, lg, ik, irrep)
        P = projector_dense(lg, chi, hil, p)
        assert np.allclose(P @ P, P) and np.allclose(P, P.conj().T)
        B = sector_basis(lg, chi, hil, p).toarray()
        assert B.shape[1] == round(np.trace(P).real)
        assert np.allclose(B.conj().T @ B, np.eye(B.shape[1])) and np.allclose(P @ B, B)
        total += P
        n_dim += B.shape[1]
    assert np.allclose(total, np.eye(hil.n_states)) and n_dim == hil.n_states


def _full_vs_sectors(lat, H, hil, spin_flip, point=None):
    full = np.linalg.eigvalsh(H.to_dense(hil))
    found, labels = [], []
    for label in symmetry_sectors(lat, point=point, spin_flip=spin_flip):
        e = sector_energies(H, lat, hil, *label, point=None if point is False else point)
        found.append(e)
        labels += [label] * len(e)
    found = np.concatenate(found)
    order = np.argsort(found, kind="stable")
    return full, found[order], [labels[i] for i in order]


SPECTRUM_CASES = [
    ("chain", (8,), "heisenberg", 0.0, True, None),
    ("chain", (8,), "heisenberg", 0.0, True, False),  # translations x spin flip only
    ("square", (3, 3), "j1j2", None, True, None),  # 2^9 states, C4v with its 2D irrep E
    ("square", (2, 4), "j1j2", 0.0, True, None),  # tiny torus: coinciding operations
    ("triangular", (3, 3), "heisenberg", None, True, None),  # C6v, C3v at K (E, E1, E2)
    ("honeycomb", (2, 2), "j1j2", None, False, None),
    ("kagome", (2, 2), "heisenberg", 0.0, True, None),
]


@pytest.mark.parametrize("kind,size,model,sz,flip,point", SPECTRUM_CASES)
def test_union_of_sector_spectra_is_the_full_spectrum(kind, size, model, sz, flip, point):
    lat = lat_of(kind, size)
    H = heisenberg(lat) if model == "heisenberg" else j1j2(lat, 1.0, 0.5)
    hil = SpinHilbert(lat.n_sites, sz)
    full, found, _ = _full_vs_sectors(lat, H, hil, flip, point)
    assert found.shape == full.shape
    assert np.max(np.abs(found - full)) < 1e-10


def test_sector_energies_match_dense_diagonalization_of_projected_blocks():
    """The orbit-based basis and the dense route (range of P by eigh, then V† H V) agree."""
    lat = make_lattice("chain", 8)
    hil = SpinHilbert(8, 0.0)
    H = heisenberg(lat)
    Hd = H.to_dense(hil)
    for ik, irrep, p in [(0, "A1", 1), (0, "A2", -1), (4, "A1", 1), (4, "A2", -1), (1, None, 1),
                         (3, None, -1), (2, None, None)]:
        if irrep is None:
            grp, chi = translation_group(lat), momentum_characters(lat, translation_group(lat), ik)
        else:
            grp = little_group(lat, ik)
            chi = space_characters(lat, grp, ik, irrep)
        w, v = np.linalg.eigh(projector_dense(grp, chi, hil, p))
        V = v[:, w > 0.5]
        dense = np.linalg.eigvalsh(V.conj().T @ Hd @ V)
        ours = sector_energies(H, lat, hil, ik, irrep, p)
        assert ours.shape == dense.shape and np.allclose(ours, dense, atol=1e-10)
        assert np.allclose(sector_energies(H, lat, hil, ik, irrep, p, n_levels=2), dense[:2])


def test_square_4x4_j1j2_sectors():
    """4x4 J1-J2 (J2 = 0.5), Sz = 0 (12870 states): the 84 sector Hamiltonians (k, little-group
    irrep, spin parity) have dimensions adding to 12870 and reproduce Tr H and Tr H² (the full
    spectrum's first moments, without diagonalizing all of them: multithreaded BLAS is slow on a
    loaded machine); E0 lies in (Γ, A1, even), E1 in (Γ, B1, even), as Lanczos finds them, and the
    momentum star of (π/2, 0) is degenerate."""
    lat = make_lattice("square", [4, 4])
    hil = SpinHilbert(16, 0.0)
    H = j1j2(lat, 1.0, 0.5)
    Hs = H.to_sparse(hil)
    blocks = {}
    for ik, irrep, p in symmetry_sectors(lat, spin_flip=True):
        grp = little_group(lat, ik)
        B = sector_basis(grp, space_characters(lat, grp, ik, irrep), hil, spin_parity=p)
        blocks[(ik, irrep, p)] = sector_hamiltonian(Hs, B, hil)  # also checks [H, P] = 0
    assert len(blocks) == 84
    assert sum(len(h) for h in blocks.values()) == hil.n_states
    assert np.isclose(sum(np.trace(h).real for h in blocks.values()), Hs.diagonal().sum(), atol=1e-8)
    assert np.isclose(sum(np.sum(np.abs(h) ** 2) for h in blocks.values()),
                      Hs.multiply(Hs.T).sum().real, atol=1e-7)
    ref = lowest_energies(H, hil, k=2)
    assert np.isclose(ref[0], -8.45792335139, atol=1e-9)
    assert np.isclose(np.linalg.eigvalsh(blocks[(0, "A1", 1)])[0], ref[0], atol=1e-9)
    assert np.isclose(np.linalg.eigvalsh(blocks[(0, "B1", 1)])[0], ref[1], atol=1e-9)
    star = [np.linalg.eigvalsh(blocks[(ik, "A1", 1)])[0] for ik in (1, 3, 4, 12)]  # (π/2,0) & images
    assert np.allclose(star, -7.559821355304, atol=1e-9)
    assert np.allclose(sector_energies(Hs, lat, hil, 0, "A1", 1, n_levels=3),
                       np.linalg.eigvalsh(blocks[(0, "A1", 1)])[:3])


@pytest.mark.parametrize("L", [6, 8, 10])
def test_heisenberg_ring_ground_state_momentum(L):
    """E0 of the even Heisenberg ring: k = 0 when L/2 is even, k = π when L/2 is odd (found:
    L=6 → π, L=8 → 0, L=10 → π); the sector minimum equals the full ED ground energy."""
    lat = make_lattice("chain", L)
    hil = SpinHilbert(L, 0.0)
    H = heisenberg(lat)
    best = {}
    for ik in range(L):
        best[ik] = sector_energies(H, lat, hil, ik, n_levels=1)[0]
    ik0 = min(best, key=best.get)
    e0 = lowest_energies(H, hil, k=1)[0]
    assert np.isclose(best[ik0], e0, atol=1e-10)
    k0 = float(lat.momenta()[ik0, 0])
    assert np.isclose(k0, 0.0 if (L // 2) % 2 == 0 else math.pi)
    # strictly lower than every other momentum sector (nondegenerate singlet)
    assert all(best[ik] > e0 + 1e-6 for ik in best if ik != ik0)
    if L == 8:
        assert np.isclose(e0, -3.6510934089371, atol=1e-9)
        sectors = {(ik, ir, p): sector_energies(H, lat, hil, ik, ir, p, n_levels=1)
                   for ik, ir, p in symmetry_sectors(lat, spin_flip=True)}
        gs = [lab for lab, e in sectors.items() if len(e) and np.isclose(e[0], e0)]
        assert gs == [(0, "A1", 1)]


def test_sector_hamiltonian_rejects_non_symmetric_operators():
    lat = make_lattice("chain", 6)
    hil = SpinHilbert(6, 0.0)
    H = PauliSum(6, [(1.0, "Z", (0,))] + [(0.25, op, (i, (i + 1) % 6)) for i in range(6)
                                          for op in ("XX", "YY")])
    T = translation_group(lat)
    B = sector_basis(T, momentum_characters(lat, T, 0), hil)
    with pytest.raises(ValueError, match="does not commute"):
        sector_hamiltonian(H, B, hil)
    with pytest.raises(ValueError, match="spin flip"):
        sector_basis(T, momentum_characters(lat, T, 0), SpinHilbert(6, 1.0), spin_parity=1)


# ============================================================================ models
def _random_states(n_sites, n, seed):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, n_sites))


def _projected_cases():
    chain = make_lattice("chain", 8)
    sq = make_lattice("square", [4, 4])
    return [
        (chain, 0, "A2", -1),
        (chain, 4, "A2", 1),  # k = π, odd under inversion
        (chain, 3, None, -1),  # complex momentum, translations only
        (sq, 10, "B1", -1),  # M = (π, π), B1 of C4v, odd under spin flip
        (sq, 0, "A2", None),
        (sq, 1, "A2", 1),  # k = (0, π/2): little group {E, mirror90}
    ]


@pytest.mark.parametrize("case", range(6))
def test_projected_amplitudes_transform_with_the_characters(case):
    """ψ_P(hσ) = χ(h)* ψ_P(σ) for every h of the group, and ψ_P(−σ) = p ψ_P(σ)."""
    lat, ik, irrep, parity = _projected_cases()[case]
    if irrep is None:
        grp = translation_group(lat)
        chi = momentum_characters(lat, grp, ik)
    else:
        grp = little_group(lat, ik)
        chi = space_characters(lat, grp, ik, irrep)
    rbm = RBM(lat.n_sites, alpha=1, init_scale=0.25)
    params = rbm.init(jax.random.PRNGKey(case))
    model = Projected(rbm, grp, chi, spin_parity=parity)
    f = jax.jit(jax.vmap(model.log_psi, in_axes=(None, 0)))
    inner = jax.jit(jax.vmap(rbm.log_psi, in_axes=(None, 0)))
    n_checked = 0
    for sigma in _random_states(lat.n_sites, 40, seed=case):
        base = complex(f(params, jnp.asarray(sigma[None]))[0])
        scale = float(np.max(np.real(inner(params, model.images(jnp.asarray(sigma))))))
        if not base.real > scale - 10:  # ψ_P(σ) vanishes by symmetry (or nearly): skip σ
            continue
        images = np.array([grp.act(h, sigma) for h in range(len(grp))])
        logs = np.asarray(f(params, jnp.asarray(images)))
        assert np.allclose(np.exp(logs - base), np.conj(chi), atol=1e-9)
        if parity is not None:
            flipped = np.asarray(f(params, jnp.asarray(-sigma[None])))[0]
            assert np.isclose(np.exp(flipped - base), parity, atol=1e-9)
        n_checked += 1
        if n_checked == 3:
            break
    assert n_checked == 3


def test_projected_state_is_the_projection_of_the_inner_state():
    """exact_state(Projected) = P ψ / |P ψ| with P from projector_dense (same characters)."""
    lat = make_lattice("chain", 8)
    hil = SpinHilbert(8, 0.0)
    rbm = RBM(8, alpha=1, init_scale=0.3)
    params = rbm.init(jax.random.PRNGKey(7))
    psi = exact_state(rbm, params, hil)
    n_checked = 0
    for ik, irrep, p in symmetry_sectors(lat, spin_flip=True):
        lg = little_group(lat, ik)
        chi = space_characters(lat, lg, ik, irrep)
        P = projector_dense(lg, chi, hil, p)
        target = P @ psi
        if np.linalg.norm(target) < 1e-8:  # empty sector (e.g. k = 0, A2, even at Sz = 0)
            assert np.trace(P).real < 0.5
            continue
        got = exact_state(Projected(rbm, lg, chi, spin_parity=p), params, hil)
        assert np.allclose(got, target / np.linalg.norm(target), atol=1e-10)
        n_checked += 1
    assert n_checked == 18  # 20 labels; (Γ, A2, even) and (π, A2, odd) are empty at Sz = 0


def test_projected_holomorphic_gradient_matches_finite_differences():
    lat = make_lattice("chain", 8)
    grp = little_group(lat, 4)
    model = Projected(RBM(8, alpha=1, init_scale=0.3), grp, space_characters(lat, grp, 4, "A1"), 1)
    assert model.holomorphic and model.n_sites == 8 and model.n_terms == 32
    params = model.init(jax.random.PRNGKey(3))
    sigma = jnp.asarray(_random_states(8, 1, seed=5)[0])
    grad = jax.grad(lambda q: model.log_psi(q, sigma), holomorphic=True)(params)
    keys = jax.random.split(jax.random.PRNGKey(4), 6)
    direction = {k: jax.random.normal(keys[2 * n], v.shape) + 1j * jax.random.normal(keys[2 * n + 1], v.shape)
                 for n, (k, v) in enumerate(sorted(params.items()))}
    eps = 1e-6
    plus = jax.tree_util.tree_map(lambda p, d: p + eps * d, params, direction)
    minus = jax.tree_util.tree_map(lambda p, d: p - eps * d, params, direction)
    fd = (model.log_psi(plus, sigma) - model.log_psi(minus, sigma)) / (2 * eps)
    lin = sum(jnp.sum(grad[k] * direction[k]) for k in params)
    assert np.isclose(complex(fd), complex(lin), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind,size", [("chain", (8,)), ("square", (4, 4)), ("kagome", (2, 2))])
def test_symmetric_rbm_is_translation_invariant(kind, size):
    lat = lat_of(kind, size)
    model = SymmetricRBM(lat, alpha=2, init_scale=0.3)
    params = model.init(jax.random.PRNGKey(1))
    assert {k: v.shape for k, v in params.items()} == {"a": (2,), "b": (2,), "W": (2, lat.n_sites)}
    assert model.holomorphic and model.n_hidden == 2 * len(lat.translations())
    T = translation_group(lat)
    f = jax.jit(jax.vmap(model.log_psi, in_axes=(None, 0)))
    for sigma in _random_states(lat.n_sites, 3, seed=2):
        logs = np.asarray(f(params, jnp.asarray(np.array([T.act(t, sigma) for t in range(len(T))]))))
        assert np.allclose(logs, logs[0], atol=1e-11)
    # not invariant under a point operation that is not in its group (generic parameters)
    G = space_group(lat)
    spread = 0.0
    for sigma in _random_states(lat.n_sites, 4, seed=3):
        vals = np.asarray(f(params, jnp.asarray(np.array([G.act(g, sigma) for g in range(len(G))]))))
        spread = max(spread, float(np.ptp(vals.real)))
    assert spread > 1e-6
    # with the space group it is invariant under all of it
    full = SymmetricRBM(G, alpha=1, init_scale=0.3)
    pf = full.init(jax.random.PRNGKey(2))
    vf = np.asarray(jax.vmap(full.log_psi, in_axes=(None, 0))(
        pf, jnp.asarray(np.array([G.act(g, sigma) for g in range(len(G))]))))
    assert np.allclose(vf, vf[0], atol=1e-11)


def test_symmetric_rbm_fast_path_and_formula():
    lat = make_lattice("square", [4, 4])
    model = SymmetricRBM(lat, alpha=2, init_scale=0.3)
    params = model.init(jax.random.PRNGKey(0))
    sigma = jnp.asarray(_random_states(16, 1, seed=1)[0])
    # explicit formula
    T = translation_group(lat)
    p = jax.tree_util.tree_map(np.asarray, params)
    s = np.asarray(sigma, dtype=float)
    ref = p["a"].sum() * s.sum() + sum(
        np.log(np.cosh(p["b"][f] + p["W"][f] @ s[T.perms[t]]))
        for f in range(2) for t in range(len(T)))
    assert np.isclose(np.exp(complex(model.log_psi(params, sigma)) - ref), 1.0, atol=1e-10)
    # fast path: a 3-site move with one padded entry
    sites = jnp.array([2, 9, 16])
    new_values = jnp.array([-sigma[2], -sigma[9], 1], dtype=jnp.int8)
    mask = jnp.array([True, True, False])
    new = apply_moves(sigma, jnp.where(mask, sites, 16), new_values)
    path = fast_path(model)
    cache = path.cache(params, sigma)
    ratio = path.log_ratio(params, sigma, cache, sites, new_values, mask)
    assert np.isclose(complex(ratio), complex(model.log_psi(params, new) - model.log_psi(params, sigma)))
    c2 = path.update(params, sigma, cache, sites, new_values, mask)
    assert np.allclose(c2["theta"], path.cache(params, new)["theta"])


@pytest.mark.parametrize("inner_kind", ["complex", "real_marshall", "amp_phase"])
def test_projected_fast_path_matches_full_evaluation_after_many_moves(inner_kind):
    """The projected model's cached images give log ψ_P(σ′) − log ψ_P(σ) = full re-evaluation (1e-12),
    and after 600 accepted exchange moves the cached log ψ_P still equals log_psi.  The RBM (also behind
    the Marshall sign) runs on its image path (all images from site-major tables); a model without one
    (amplitude/phase RBM) goes image by image through its own fast path."""
    from nqs.models import MarshallSign
    from nqs.models.rbm import RBMRealAmpPhase

    lat = make_lattice("square", [4, 4])
    lg = little_group(lat, 0)
    chi = space_characters(lat, lg, 0, "A1")
    if inner_kind == "complex":
        inner = RBM(16, alpha=1, init_scale=0.3)
    elif inner_kind == "real_marshall":
        inner = MarshallSign(RBM(16, alpha=1, init_scale=0.3, param_dtype="real"),
                             tuple(int(c) for c in lat.sublattice))
    else:
        inner = RBMRealAmpPhase(16, alpha=1, init_scale=0.3)
    model = Projected(inner, lg, chi, spin_parity=1)
    path = fast_path(model)
    assert (path.images is None) == (inner_kind == "amp_phase")
    assert model.real_derivatives == (inner_kind == "real_marshall")
    params = model.init(jax.random.PRNGKey(2))
    rng = np.random.default_rng(0)
    sigma = jnp.asarray(np.repeat([1, -1], 8)[rng.permutation(16)].astype(np.int8))
    cache = jax.jit(path.cache)(params, sigma)
    ratio = jax.jit(path.log_ratio)
    update = jax.jit(path.update)
    full = jax.jit(model.log_psi)
    worst = 0.0
    for step in range(600):
        up, dn = np.flatnonzero(np.asarray(sigma) > 0), np.flatnonzero(np.asarray(sigma) < 0)
        i, j = int(rng.choice(up)), int(rng.choice(dn))
        sites = jnp.array([i, j, 16])
        new_values = jnp.array([-1, 1, 1], dtype=jnp.int8)
        mask = jnp.array([True, True, False])
        new = apply_moves(sigma, jnp.where(mask, sites, 16), new_values)
        if step % 50 == 0:
            r = complex(ratio(params, sigma, cache, sites, new_values, mask))
            ref = complex(full(params, new) - full(params, sigma))
            worst = max(worst, abs(np.exp(r - ref) - 1))
        cache = update(params, sigma, cache, sites, new_values, mask)
        sigma = new
    assert worst < 1e-12
    assert abs(np.exp(complex(cache["total"]) - complex(full(params, sigma))) - 1) < 1e-12


@pytest.mark.parametrize("size,marshall,parity,projected", [
    ((8,), False, 1, False),   # no hidden bias: even by construction
    ((8,), False, -1, True),   # odd: biases kept and ψ(σ) − ψ(−σ) projected
    ((6,), True, -1, False),   # Marshall sign on 3 sublattice-1 sites: (−1)^3, odd without projecting
    ((6,), True, 1, True),
])
def test_symmetric_rbm_spin_parity_from_the_config(size, marshall, parity, projected):
    """kind = "rbm_symmetric" with spin_parity: the requested parity holds on every Sz = 0 state; when it
    is the natural parity of the bias-free RBM (x Marshall sign) no ±σ projection is built."""
    cfg = parse_config({"lattice": {"kind": "chain", "size": list(size)},
                        "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
                        "model": {"kind": "rbm_symmetric", "alpha": 2, "init_scale": 0.3, "marshall_sign": marshall,
                                  "symmetry": {"k": [0], "spin_parity": parity}}})
    problem = build(cfg)
    model = problem.vmc.model
    assert isinstance(model, Projected) == projected
    params = model.init(jax.random.PRNGKey(3))
    states = jnp.asarray(problem.hilbert.all_states())
    f = jax.vmap(model.log_psi, in_axes=(None, 0))
    logs, flipped = np.asarray(f(params, states)), np.asarray(f(params, -states))
    nonzero = np.isfinite(logs.real)  # the odd projection vanishes where −σ is a translate of σ
    assert np.array_equal(nonzero, np.isfinite(flipped.real)) and nonzero.mean() > 0.5
    np.testing.assert_allclose(np.exp(flipped[nonzero] - logs[nonzero]), parity, atol=1e-10)
