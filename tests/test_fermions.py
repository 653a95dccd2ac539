"""Spinful fermions: Hilbert space, FermionOperator and Hubbard against an independent Jordan–Wigner build.

The reference matrices are built here from scratch: c_p = Z ⊗ … ⊗ Z ⊗ σ⁻ ⊗ 1 ⊗ … (Z = (−1)^n on the
orbitals q < p) as scipy.sparse Kronecker products, with orbital q on bit q of the basis index,
i.e. c_p = (Π_{q<p} (−1)^{n_q}) a_p, and orbital p = site + n_sites·spin.
"""

from __future__ import annotations

import itertools
import json
import math
from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import sparse

from nqs.estimators import local_energies
from nqs.exact import lowest_energies
from nqs.hamiltonians.hubbard import bond_images, hubbard, two_site_hubbard_energy
from nqs.hilbert.fermions import SpinfulFermions
from nqs.lattice import make_lattice
from nqs.models import FunctionModel
from nqs.operators.fermion import FermionOperator
from nqs.operators.moves import apply_moves

# ---------------------------------------------------------------- independent Jordan–Wigner matrices
SIGMA_MINUS = np.array([[0.0, 1.0], [0.0, 0.0]])  # local basis (|0⟩, |1⟩): σ⁻|1⟩ = |0⟩
ZSTRING = np.diag([1.0, -1.0])  # (−1)^n


@cache
def jw_annihilators(n_orb: int) -> tuple[sparse.csr_matrix, ...]:
    """c_p on the 2^n_orb Fock space; basis index = Σ_q n_q 2^q (last Kronecker factor = orbital 0)."""
    out = []
    for p in range(n_orb):
        factors = [np.eye(2) if q > p else SIGMA_MINUS if q == p else ZSTRING for q in reversed(range(n_orb))]
        m = sparse.csr_matrix(np.ones((1, 1)))
        for f in factors:
            m = sparse.kron(m, sparse.csr_matrix(f), format="csr")
        out.append(m)
    return tuple(out)


def jw_ladder(n_orb: int, p: int, dagger: int) -> sparse.csr_matrix:
    c = jw_annihilators(n_orb)[p]
    return c.T.tocsr() if dagger else c


def jw_number(n_orb: int, p: int) -> sparse.csr_matrix:
    return (jw_ladder(n_orb, p, 1) @ jw_ladder(n_orb, p, 0)).tocsr()


def jw_operator(n_orb: int, terms) -> sparse.csr_matrix:
    """Σ coef · (product of ladder matrices in written order)."""
    dim = 2**n_orb
    h = sparse.csr_matrix((dim, dim), dtype=complex)
    for coef, ops in terms:
        m = sparse.identity(dim, format="csr", dtype=complex)
        for p, d in ops:
            m = m @ jw_ladder(n_orb, p, d)
        h = h + coef * m
    return h.tocsr()


def restrict(full: sparse.spmatrix, hilbert: SpinfulFermions) -> np.ndarray:
    codes = hilbert.all_codes()
    return full.tocsr()[codes][:, codes].toarray()


def jw_hubbard(size, t=1.0, U=4.0, t2=0.0, V=0.0, modes=None) -> tuple[sparse.csr_matrix, int]:
    """Hubbard model written directly from coordinates: for every site r and every bond vector δ
    (chain: +1; square: +x, +y; next-nearest chain: +2; square: +x+y, +x−y) add
    −t s (c†_{r+δ} c_r + h.c.) and V n_r n_{r+δ}, with s = Π_{antiperiodic k} (−1)^{#wraps along k};
    bonds wrapping an open direction are left out."""
    size = tuple(size)
    dimn = len(size)
    modes = modes or ("periodic",) * dimn
    n = math.prod(size)
    M = 2 * n
    nn = [(1,)] if dimn == 1 else [(1, 0), (0, 1)]
    nnn = [(2,)] if dimn == 1 else [(1, 1), (1, -1)]
    coords = list(itertools.product(*(range(L) for L in size)))  # last direction fastest = site order

    def index(c):
        i = 0
        for ck, L in zip(c, size, strict=True):
            i = i * L + ck
        return i

    dim = 2**M
    h = sparse.csr_matrix((dim, dim), dtype=complex)
    for amp, vecs, nearest in ((t, nn, True), (t2, nnn, False)):
        if amp == 0 and not (nearest and V):
            continue
        for r in coords:
            for d in vecs:
                moved = [rk + dk for rk, dk in zip(r, d, strict=True)]
                wraps = [mk // L for mk, L in zip(moved, size, strict=True)]
                if any(w and m == "open" for w, m in zip(wraps, modes, strict=True)):
                    continue
                s = (-1) ** sum(w for w, m in zip(wraps, modes, strict=True) if m == "antiperiodic")
                i, j = index(r), index([mk % L for mk, L in zip(moved, size, strict=True)])
                for spin in (0, 1):
                    p, q = i + n * spin, j + n * spin
                    hop = jw_ladder(M, q, 1) @ jw_ladder(M, p, 0)
                    h = h - amp * s * (hop + hop.T)
                if V and nearest:
                    ni = jw_number(M, i) + jw_number(M, i + n)
                    nj = jw_number(M, j) + jw_number(M, j + n)
                    h = h + V * (ni @ nj)
    for i in range(n):
        h = h + U * (jw_number(M, i) @ jw_number(M, i + n))
    return h.tocsr(), n


# ---------------------------------------------------------------- the JW construction itself
def test_jw_construction_anticommutes_and_matches_convention():
    M = 5
    c = [m.toarray() for m in jw_annihilators(M)]
    eye = np.eye(2**M)
    for i, j in itertools.product(range(M), repeat=2):
        np.testing.assert_array_equal(c[i] @ c[j].T + c[j].T @ c[i], eye if i == j else 0 * eye)
        np.testing.assert_array_equal(c[i] @ c[j] + c[j] @ c[i], 0 * eye)
    # c†_p |n⟩ = (−1)^{Σ_{q<p} n_q} |n + e_p⟩: orbital 0 occupied (code 1), create orbital 2 → −|code 5⟩
    vec = np.zeros(2**M)
    vec[1] = 1.0
    out = jw_ladder(M, 2, 1) @ vec
    assert out[5] == -1.0 and np.count_nonzero(out) == 1
    # canonical basis: c†_0 c†_2 |0⟩ = +|code 5⟩ (ascending orbitals left to right)
    vac = np.zeros(2**M)
    vac[0] = 1.0
    assert (jw_ladder(M, 0, 1) @ (jw_ladder(M, 2, 1) @ vac))[5] == 1.0


# ---------------------------------------------------------------- Hilbert space
def test_hilbert_enumeration_and_codes(key):
    h = SpinfulFermions(4, 2, 1)
    assert h.n_states == math.comb(4, 2) * math.comb(4, 1) == 24
    assert h.n_orbitals == 8 and h.n_electrons == 3
    codes = h.all_codes()
    assert np.all(np.diff(codes) > 0) and len(codes) == h.n_states
    states = h.all_states()
    assert states.dtype == np.int8 and states.shape == (24, 8)
    assert np.all(states[:, :4].sum(1) == 2) and np.all(states[:, 4:].sum(1) == 1)
    brute = [c for c in range(2**8) if bin(c & 0xF).count("1") == 2 and bin(c >> 4).count("1") == 1]
    np.testing.assert_array_equal(codes, brute)
    np.testing.assert_array_equal(h.states_to_codes(states), codes)
    np.testing.assert_array_equal(h.index_of(states), np.arange(24))
    outside = states[:1].copy()
    outside[0, 4:] = 1
    assert h.index_of(outside)[0] == -1
    x = jax.jit(lambda k: h.random_state(k, 500))(key)
    assert x.shape == (500, 8) and x.dtype == jnp.int8
    assert bool(jnp.all(h.in_sector(x)))
    # every state of the small sector is reached (random placement)
    assert len(np.unique(h.states_to_codes(np.asarray(x)))) == 24
    assert "N↑ = 2" in h.describe() and "24 states" in h.describe()
    assert SpinfulFermions(3, 0, 3).n_states == 1


@pytest.mark.parametrize(
    "args, message",
    [
        ((8, 9, 4), "n_up = 9 is impossible on 8 sites: 0 <= n_up <= 8"),
        ((8, -1, 4), "n_up = -1 is impossible on 8 sites: 0 <= n_up <= 8"),
        ((8, 4, 12), "n_down = 12 is impossible on 8 sites: 0 <= n_down <= 8"),
        ((8, 2.5, 4), "n_up = 2.5 is impossible on 8 sites"),
        ((8, True, 4), "n_up = True is impossible on 8 sites"),
        ((0, 0, 0), "positive integer number of sites"),
    ],
)
def test_impossible_fillings_raise(args, message):
    with pytest.raises(ValueError) as err:
        SpinfulFermions(*args)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_integral_float_filling_is_accepted():
    h = SpinfulFermions(4, 2.0, 1)
    assert h.n_up == 2 and isinstance(h.n_up, int)


# ---------------------------------------------------------------- FermionOperator vs JW
def random_conserving_terms(rng, n_sites: int, n_terms: int) -> list:
    """Random products of c†/c in random order that conserve N↑ and N↓ (1 to 3 c†c pairs), plus
    standard hops, pair hops c†_i c†_j c_l c_k, number products and a constant."""
    M = 2 * n_sites
    terms = [(0.7, ())]
    for _ in range(n_terms):
        m = rng.integers(1, 4)
        ops = []
        for _ in range(m):
            spin = rng.integers(2)
            a, b = rng.integers(n_sites, size=2)
            ops += [(int(a + n_sites * spin), 1), (int(b + n_sites * spin), 0)]
        if rng.random() < 0.6:
            ops = [ops[k] for k in rng.permutation(len(ops))]
        coef = complex(rng.normal(), rng.normal())
        terms.append((coef, tuple(ops)))
    for _ in range(n_terms // 2):
        i, j, k, l_ = (int(v) for v in rng.integers(M, size=4))
        spins = [p >= n_sites for p in (i, j)]
        # c†_i c†_j c_l c_k with matching spins: take l, k in the spin blocks of j, i
        k = k % n_sites + n_sites * spins[0]
        l_ = l_ % n_sites + n_sites * spins[1]
        terms.append((complex(rng.normal(), rng.normal()), ((i, 1), (j, 1), (l_, 0), (k, 0))))
        terms.append((rng.normal(), ((i, 1), (i, 0), (j, 1), (j, 0))))
    return terms


@pytest.mark.parametrize("n_sites, fillings", [(3, [(1, 1), (2, 1), (3, 0)]), (4, [(2, 2), (1, 3), (2, 1)])])
def test_random_operator_equals_jordan_wigner(n_sites, fillings):
    rng = np.random.default_rng(n_sites)
    terms = random_conserving_terms(rng, n_sites, 30)
    op = FermionOperator(2 * n_sites, terms)
    full = jw_operator(2 * n_sites, terms)
    assert not op.is_real and op.max_changes <= 6
    for nu, nd in fillings:
        h = SpinfulFermions(n_sites, nu, nd)
        ref = restrict(full, h)
        np.testing.assert_allclose(op.to_dense(h), ref, atol=1e-12)
        np.testing.assert_allclose(op.adjoint().to_dense(h), ref.conj().T, atol=1e-12)
        assert op.trace_sector(h) == pytest.approx(np.trace(ref) / h.n_states, abs=1e-12)


def test_hop_and_pair_terms_keep_small_moves():
    """Hops are moves of 2 entries and pair hops of ≤ 4; both kinds share the padded (G, 4) arrays."""
    n = 3
    hop = FermionOperator(2 * n, [(-1.0, ((0, 1), (2, 0))), (-1.0, ((2, 1), (0, 0)))])
    assert hop.max_changes == 2 and hop.n_conn == 2 and hop.is_real
    pair = FermionOperator(2 * n, [(0.5, ((0, 1), (3, 1), (4, 0), (1, 0)))])
    assert pair.max_changes == 4 and pair.n_conn == 1
    both = hop + pair
    assert both.max_changes == 4 and both.n_conn == 3
    h = SpinfulFermions(n, 1, 1)
    full = jw_operator(2 * n, hop.terms + pair.terms)
    np.testing.assert_allclose(both.to_dense(h), restrict(full, h), atol=1e-14)
    # c c on one orbital vanishes; n_p n_p = n_p; c c† = 1 − n
    special = FermionOperator(
        2 * n, [(1.0, ((1, 0), (1, 0))), (2.0, ((1, 1), (1, 0), (1, 1), (1, 0))), (3.0, ((4, 0), (4, 1)))]
    )
    full = jw_operator(2 * n, special.terms)
    np.testing.assert_allclose(special.to_dense(h), restrict(full, h), atol=1e-14)
    assert special.n_conn == 0


def test_moves_reproduce_sparse_rows(key):
    n = 4
    rng = np.random.default_rng(7)
    terms = random_conserving_terms(rng, n, 20)
    for op, h in [
        (FermionOperator(2 * n, terms), SpinfulFermions(n, 2, 2)),
        (
            hubbard(make_lattice("chain", 4), t=1.0, U=3.0, t2=0.3, V=0.7, boundary="antiperiodic"),
            SpinfulFermions(4, 2, 1),
        ),
    ]:
        dense = op.to_dense(h)
        codes = h.all_codes()
        xs = h.random_state(key, 40)
        diag, mels, sites, new_values, mask = jax.jit(op.moves)(xs[0])  # one configuration
        assert sites.shape == new_values.shape == mask.shape == (op.n_conn, op.max_changes)
        assert mels.shape == (op.n_conn,) and diag.shape == () and new_values.dtype == xs.dtype

        def one(x, op=op):
            diag, mels, sites, new_values, mask = op.moves(x)
            return diag, mels, apply_moves(x, jnp.where(mask, sites, op.n_orbitals), new_values)

        diags, melss, xprimes = jax.jit(jax.vmap(one))(xs)
        assert bool(jnp.all(h.in_sector(xprimes)))  # inapplicable moves are no-ops
        rows = h.index_of(np.asarray(xs), codes)
        for r, d, m, xprime in zip(rows, np.asarray(diags), np.asarray(melss), np.asarray(xprimes), strict=True):
            row = np.zeros(h.n_states, dtype=complex)
            row[r] += d
            np.add.at(row, h.index_of(xprime, codes), m)
            np.testing.assert_allclose(row, dense[r], atol=1e-12)
        # numpy and jax.numpy give the same elements
        d_np, m_np = op.elements(np.asarray(xs), xp=np)
        d_j, m_j = jax.jit(op.elements)(xs)
        np.testing.assert_allclose(d_np, d_j, atol=1e-13)
        np.testing.assert_allclose(m_np, m_j, atol=1e-13)


def test_local_energy_equals_h_psi_over_psi():
    """E_loc from the moves (JW sign inside mels) equals (Hψ)(x)/ψ(x) for a generic complex ψ."""
    lat = make_lattice("square", [2, 3])
    op = hubbard(lat, t=1.0, U=4.0, t2=-0.3, boundary=["periodic", "antiperiodic"])
    h = SpinfulFermions(6, 3, 2)
    M = h.n_orbitals
    rng = np.random.default_rng(3)
    params = {
        "a": jnp.asarray(rng.normal(size=M) + 1j * rng.normal(size=M)),
        "W": jnp.asarray(0.3 * (rng.normal(size=(M, M)) + 1j * rng.normal(size=(M, M)))),
    }

    def log_psi(p, x):
        x = x.astype(jnp.complex128)
        return x @ p["a"] + x @ p["W"] @ x

    model = FunctionModel(log_psi, M, params)
    states = h.all_states()
    psi = np.exp(np.asarray(jax.vmap(log_psi, in_axes=(None, 0))(params, states)))
    exact = (op.to_sparse(h) @ psi) / psi
    eloc = np.asarray(local_energies(model, params, op, jnp.asarray(states)))
    np.testing.assert_allclose(eloc, exact, rtol=1e-10, atol=1e-10)


def test_sector_leaving_terms_are_rejected():
    h = SpinfulFermions(3, 1, 1)
    spin_flip = FermionOperator(6, [(1.0, ((0, 1), (3, 0)))], name="flip")
    with pytest.raises(ValueError, match=r"changes \(N↑, N↓\) by \(\+1, -1\)"):
        spin_flip.to_sparse(h)
    with pytest.raises(ValueError, match="leaves the sector"):
        FermionOperator(6, [(1.0, ((2, 1),))]).to_sparse(h)
    with pytest.raises(ValueError, match="8 orbitals"):
        FermionOperator(8, [(1.0, ((0, 1), (0, 0)))]).to_sparse(h)
    with pytest.raises(ValueError, match="outside 0..5"):
        FermionOperator(6, [(1.0, ((6, 1), (0, 0)))])
    with pytest.raises(ValueError, match="dagger"):
        FermionOperator(6, [(1.0, ((1, 2), (0, 0)))])


# ---------------------------------------------------------------- Hubbard
HUBBARD_CASES = [
    ("chain", (4,), "periodic", dict(U=4.0)),
    ("chain", (4,), "antiperiodic", dict(U=4.0)),
    ("chain", (4,), "open", dict(U=2.5, t2=0.4, V=0.6)),
    ("chain", (4,), "antiperiodic", dict(U=2.0, t2=0.4, V=0.6)),
    ("square", (2, 2), "periodic", dict(U=4.0, t2=0.3)),
    ("square", (2, 3), "periodic", dict(U=4.0, V=0.5)),
    ("square", (2, 3), ["periodic", "antiperiodic"], dict(U=3.0, t2=-0.2)),
    ("square", (2, 3), "antiperiodic", dict(U=3.0, t2=0.25)),
]


@pytest.mark.parametrize(
    "kind, size, boundary, params",
    HUBBARD_CASES,
    ids=lambda v: str(v).replace(" ", "") if not isinstance(v, dict) else "",
)
def test_hubbard_equals_jordan_wigner(kind, size, boundary, params):
    bmodes = [boundary] * len(size) if isinstance(boundary, str) else boundary
    lat = make_lattice(kind, list(size), [m != "open" for m in bmodes])
    op = hubbard(lat, t=1.0, boundary=boundary, **params)
    full, n = jw_hubbard(size, t=1.0, modes=tuple(bmodes), **params)
    assert op.is_real and op.max_changes == 2
    for nu, nd in [(n // 2, n // 2), (1, 2), (n // 2 + 1, n // 2 - 1)]:
        h = SpinfulFermions(n, nu, nd)
        ref = restrict(full, h)
        np.testing.assert_allclose(op.to_dense(h), ref, atol=1e-12)
        assert op.trace_sector(h) == pytest.approx(np.trace(ref).real / h.n_states, abs=1e-12)


@pytest.mark.parametrize("boundary, bond_sign", [("periodic", 1.0), ("antiperiodic", -1.0)])
def test_hubbard_boundary_hop_signs(boundary, bond_sign):
    """Chain L=4, ↑ electrons on sites 1 and 3: the hop 3 → 0 crosses the boundary and passes the ↑
    electron on site 1 (JW string −1), so ⟨0,1|H|1,3⟩ = −t · s_bond · (−1) = +t s_bond."""
    t = 0.8
    lat = make_lattice("chain", 4)
    op = hubbard(lat, t=t, U=0.0, boundary=boundary)
    h = SpinfulFermions(4, 2, 0)
    dense = op.to_dense(h)
    x = np.array([[0, 1, 0, 1, 0, 0, 0, 0]], dtype=np.int8)
    xp_ = np.array([[1, 1, 0, 0, 0, 0, 0, 0]], dtype=np.int8)
    inner = np.array([[0, 0, 1, 1, 0, 0, 0, 0]], dtype=np.int8)  # hop 1 → 2 inside: no string
    i, j, k = h.index_of(x)[0], h.index_of(xp_)[0], h.index_of(inner)[0]
    assert dense[j, i] == pytest.approx(t * bond_sign)
    assert dense[k, i] == pytest.approx(-t)
    # only the wrapping bond carries the boundary sign
    images = {(a, b): s for a, b, s, _ in bond_images(lat, 1, (boundary,))}
    assert images == {(0, 1): 1.0, (1, 2): 1.0, (2, 3): 1.0, (0, 3): bond_sign}


def test_single_particle_band_from_folded_images():
    """One electron: the spectrum is ε(k) of the infinite lattice at the cluster momenta (images summed)."""
    t, t2 = 1.0, 0.3
    for L, boundary, shift in [
        (4, "periodic", 0.0),
        (4, "antiperiodic", 0.5),
        (2, "periodic", 0.0),
        (2, "antiperiodic", 0.5),
        (5, "antiperiodic", 0.5),
    ]:
        k = 2 * np.pi * (np.arange(L) + shift) / L
        band = -2 * t * np.cos(k) - 2 * t2 * np.cos(2 * k)
        op = hubbard(make_lattice("chain", L), t=t, U=5.0, t2=t2, boundary=boundary)
        np.testing.assert_allclose(np.linalg.eigvalsh(op.to_dense(SpinfulFermions(L, 1, 0))), np.sort(band), atol=1e-12)
    size, boundary, shift = (2, 3), ["periodic", "antiperiodic"], (0.0, 0.5)
    lat = make_lattice("square", list(size))
    op = hubbard(lat, t=t, t2=t2, U=1.0, boundary=boundary)
    kx = 2 * np.pi * (np.arange(size[0]) + shift[0]) / size[0]
    ky = 2 * np.pi * (np.arange(size[1]) + shift[1]) / size[1]
    KX, KY = np.meshgrid(kx, ky)
    band = -2 * t * (np.cos(KX) + np.cos(KY)) - 4 * t2 * np.cos(KX) * np.cos(KY)
    ev = np.linalg.eigvalsh(op.to_dense(SpinfulFermions(6, 0, 1)))
    np.testing.assert_allclose(ev, np.sort(band.ravel()), atol=1e-12)


def test_single_particle_band_triangular_twisted():
    """Triangular 3×3 (non-orthogonal a1, a2), antiperiodic along a1: ε(k) = −2t Σ_δ cos(k·δ),
    δ ∈ {a1, a2, a2 − a1}, with k·a_i = 2π (m_i + shift_i) / L_i."""
    t = 0.9
    lat = make_lattice("triangular", [3, 3])
    op = hubbard(lat, t=t, U=2.0, boundary=["antiperiodic", "periodic"])
    th1 = 2 * np.pi * (np.arange(3) + 0.5) / 3
    th2 = 2 * np.pi * np.arange(3) / 3
    T1, T2 = np.meshgrid(th1, th2)
    band = -2 * t * (np.cos(T1) + np.cos(T2) + np.cos(T2 - T1))
    ev = np.linalg.eigvalsh(op.to_dense(SpinfulFermions(9, 1, 0)))
    np.testing.assert_allclose(ev, np.sort(band.ravel()), atol=1e-12)


@pytest.mark.parametrize("U", [0.0, 1.0, 4.0, 10.0])
def test_two_site_closed_form(U):
    t = 1.3
    lat = make_lattice("chain", 2, False)
    op = hubbard(lat, t=t, U=U)
    e0 = lowest_energies(op, SpinfulFermions(2, 1, 1), 1)[0]
    assert e0 == pytest.approx(two_site_hubbard_energy(t, U), abs=1e-12)
    assert two_site_hubbard_energy(1.0, 0.0) == -2.0


def test_hubbard_trace_and_boundary_errors():
    lat = make_lattice("square", [2, 3])
    op = hubbard(lat, U=4.0)
    h = SpinfulFermions(6, 3, 2)
    assert op.trace_sector(h) == pytest.approx(4.0 * 3 * 2 / 6)
    with pytest.raises(ValueError, match="boundary"):
        hubbard(lat, boundary="twisted")
    with pytest.raises(ValueError, match="one entry per direction"):
        hubbard(lat, boundary=["periodic"])
    with pytest.raises(ValueError, match="open along direction 1"):
        hubbard(make_lattice("square", [3, 3], [True, False]), boundary=["periodic", "antiperiodic"])
    # a single string applies only to the directions the lattice wraps
    mixed = hubbard(make_lattice("square", [3, 3], [True, False]), boundary="antiperiodic")
    assert mixed.n_conn == 4 * (9 + 6)


# ---------------------------------------------------------------- ED against the reference table
# Hubbard chain, t = 1, U = 4, N↑ = N↓ = L/2, E_total (copied from /work/shared/reference/energies.json)
CHAIN_U4 = {
    (4, "PBC"): -2.102748483462074,
    (4, "APBC"): -2.720566232730446,
    (6, "PBC"): -3.66870617887296,
    (6, "APBC"): -3.4078490586191217,
    (8, "PBC"): -4.603526299989204,
    (8, "APBC"): -4.7310469337769865,
    (10, "PBC"): -5.83432263577254,
    (10, "APBC"): -5.767708807712144,
}
REFERENCE_FILE = Path("/work/shared/reference/energies.json")


def test_reference_constants_match_shared_table():
    if not REFERENCE_FILE.exists():
        pytest.skip("shared reference table not available")
    table = json.loads(REFERENCE_FILE.read_text())
    found = {
        (e["size"], e["bc"]): e["E_total"]
        for e in table
        if e["model"] == "hubbard"
        and e["lattice"] == "chain"
        and e["params"].get("U") == 4.0
        and e["size"] in (4, 6, 8, 10)
    }
    assert found == CHAIN_U4


@pytest.mark.parametrize("L, bc", sorted(CHAIN_U4))
def test_chain_ground_state_energies(L, bc):
    op = hubbard(make_lattice("chain", L), t=1.0, U=4.0, boundary={"PBC": "periodic", "APBC": "antiperiodic"}[bc])
    h = SpinfulFermions(L, L // 2, L // 2)
    e0 = lowest_energies(op, h, 1)[0]
    assert e0 == pytest.approx(CHAIN_U4[(L, bc)], abs=1e-9)
    assert op.trace_sector(h) == pytest.approx(4.0 * (L // 2) ** 2 / L)
