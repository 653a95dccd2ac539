"""Hamiltonians against an independent Kronecker-product construction; local energies vs (Hψ)/ψ."""

import itertools

import jax
import numpy as np
import pytest
from scipy import sparse

from nqs import hamiltonians as H
from nqs.estimators import local_energy
from nqs.exact import lowest_energies, tfim_chain_energy
from nqs.hilbert import SpinHilbert
from nqs.lattice import make_lattice
from nqs.models import RBM, FunctionModel, Jastrow, MarshallSign, RBMRealAmpPhase
from nqs.operators import PauliSum

# single-site matrices in the local basis (index 0 = down, 1 = up): matches code bit = 1 for up
I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, 1j], [-1j, 0]], dtype=complex)  # Y|up> = i|down>
Z = np.diag([-1.0, 1.0]).astype(complex)
PAULI = {"X": X, "Y": Y, "Z": Z, "I": I2.astype(complex)}


def kron_term(n, ops, sites):
    mats = [I2] * n
    for o, s in zip(ops, sites, strict=True):
        mats[s] = PAULI[o]
    out = sparse.csr_matrix(np.array([[1.0 + 0j]]))
    for m in reversed(mats):  # site 0 is the least significant bit
        out = sparse.kron(out, sparse.csr_matrix(m), format="csr")
    return out


def kron_bond_model(n, bonds_coef):
    """Independent build: Σ c · P on given sites, terms listed explicitly (scipy.sparse.kron)."""
    h = sparse.csr_matrix((2**n, 2**n), dtype=complex)
    for c, ops, sites in bonds_coef:
        h = h + c * kron_term(n, ops, sites)
    return h.toarray()


def independent(kind, lat, **p):
    n = lat.n_sites
    terms = []
    if kind == "ising":
        terms += [(-p["J"], "ZZ", b) for b in lat.bonds(1)]
        terms += [(-p["h"], "X", (i,)) for i in range(n)]
    else:
        shells = {
            "heisenberg": [(1, p.get("J", 1.0), 1.0)],
            "xxz": [(1, p.get("J", 1.0), p.get("Delta", 1.0))],
            "j1j2": [(1, p.get("J1", 1.0), 1.0), (2, p.get("J2", 0.5), 1.0)],
        }[kind]
        for shell, J, delta in shells:
            for b in lat.bonds(shell):
                # S.S with S = sigma/2
                terms += [(J / 4, "XX", b), (J / 4, "YY", b), (J * delta / 4, "ZZ", b)]
    return kron_bond_model(n, terms)


LATTICES = [
    ("chain", [6], True),
    ("chain", [5], False),
    ("square", [2, 3], True),
    ("square", [3, 3], [True, False]),
    ("triangular", [3, 3], True),
    ("honeycomb", [2, 2], True),
    ("kagome", [2, 2], [True, False]),
]
MODELS = [
    ("ising", {"J": 0.7, "h": 1.3}),
    ("heisenberg", {"J": 1.1}),
    ("xxz", {"J": 0.9, "Delta": 1.7}),
    ("j1j2", {"J1": 1.0, "J2": 0.45}),
]


@pytest.mark.parametrize("lat_spec", LATTICES, ids=lambda s: f"{s[0]}{s[1]}")
@pytest.mark.parametrize("ham", MODELS, ids=lambda m: m[0])
def test_sparse_equals_kronecker(lat_spec, ham):
    lat = make_lattice(*lat_spec)
    kind, p = ham
    op = H.HAMILTONIANS[kind].build(lat, **p)
    ref = independent(kind, lat, **p)
    mine = op.to_dense(SpinHilbert(lat.n_sites))
    assert np.allclose(ref, ref.conj().T)
    np.testing.assert_allclose(mine, ref, atol=1e-13)


def test_sz_sector_block_matches_full():
    lat = make_lattice("square", [2, 3], True)
    op = H.j1j2(lat, 1.0, 0.4)
    full = np.linalg.eigvalsh(op.to_dense(SpinHilbert(6)))
    sectors = np.sort(np.concatenate([np.linalg.eigvalsh(op.to_dense(SpinHilbert(6, sz))) for sz in range(-3, 4)]))
    np.testing.assert_allclose(sectors, full, atol=1e-12)


def test_generic_pauli_terms_with_y_and_complex_coefficients():
    terms = [
        (0.3, "XY", (0, 2)),
        (0.2j, "ZY", (1, 3)),
        (-0.2j, "ZY", (1, 3)),
        (0.5, "YZX", (3, 0, 1)),
        (1.0 + 0.5j, "Y", (2,)),
        (1.0 - 0.5j, "Y", (2,)),
        (0.7, "Z", (0,)),
        (0.25, "I", (1,)),
    ]
    op = PauliSum(4, terms)
    np.testing.assert_allclose(op.to_dense(SpinHilbert(4)), kron_bond_model(4, terms) + 0 * 1j, atol=1e-14)
    assert op.trace() == pytest.approx(0.25)


def test_known_energies():
    # Heisenberg chain L=16 (reference table, shared/reference/energies.json) and 2-site singlet
    lat = make_lattice("chain", [16])
    e = lowest_energies(H.heisenberg(lat), SpinHilbert(16, 0))[0]
    assert e == pytest.approx(-7.142296360616779, abs=1e-10)
    two = PauliSum(2, [(0.25, "XX", (0, 1)), (0.25, "YY", (0, 1)), (0.25, "ZZ", (0, 1))])
    assert lowest_energies(two, SpinHilbert(2, 0), 2) == pytest.approx([-0.75, 0.25], abs=1e-12)


@pytest.mark.parametrize("L", [6, 9, 10])
def test_tfim_free_fermions_vs_ed(L):
    lat = make_lattice("chain", [L])
    for J, h in [(1.0, 1.0), (1.0, 0.5), (0.8, 2.0)]:
        e_ed = lowest_energies(H.ising(lat, J, h), SpinHilbert(L))[0]
        assert tfim_chain_energy(L, J, h) == pytest.approx(e_ed, abs=1e-10)
    assert tfim_chain_energy(32, 1, 1) / 32 == pytest.approx(-1.2737510154435072, abs=1e-12)


def test_sector_violation_is_reported():
    lat = make_lattice("chain", [4])
    with pytest.raises(ValueError, match="leaves the Hilbert-space sector"):
        H.ising(lat).to_sparse(SpinHilbert(4, 0))


def _user_model(n):
    def log_psi(p, s):
        return jax.numpy.tanh(p["w"] @ s + p["c"]).sum() * (1 + 0.5j)

    init = {"w": 0.3 * jax.random.normal(jax.random.PRNGKey(3), (3, n)), "c": np.arange(3) * 0.1}
    return FunctionModel(log_psi, n, init)


@pytest.mark.parametrize("model_name", ["rbm", "rbm_real", "jastrow", "marshall_rbm", "user"])
@pytest.mark.parametrize(
    "lat_spec,ham",
    [
        (("chain", [8], True), ("heisenberg", {"J": 1.0})),
        (("square", [2, 3], True), ("j1j2", {"J1": 1.0, "J2": 0.5})),
        (("chain", [7], False), ("ising", {"J": 1.0, "h": 0.8})),
        (("kagome", [2, 1], True), ("xxz", {"J": 1.0, "Delta": 0.5})),
    ],
)
def test_local_energy_equals_H_psi_over_psi(model_name, lat_spec, ham):
    lat = make_lattice(*lat_spec)
    n = lat.n_sites
    op = H.HAMILTONIANS[ham[0]].build(lat, **ham[1])
    model = {
        "rbm": lambda: RBM(n, 1.5, init_scale=0.3),
        "rbm_real": lambda: RBMRealAmpPhase(n, 1.0, init_scale=0.3),
        "jastrow": lambda: Jastrow(n, init_scale=0.3),
        "marshall_rbm": lambda: MarshallSign(RBM(n, 1.0, init_scale=0.3), tuple(i % 2 for i in range(n))),
        "user": lambda: _user_model(n),
    }[model_name]()
    params = model.init(jax.random.PRNGKey(1))
    hil = SpinHilbert(n)
    states = hil.all_states()
    logpsi = np.asarray(jax.vmap(model.log_psi, in_axes=(None, 0))(params, states))
    psi = np.exp(logpsi - logpsi.real.max())
    hpsi = op.to_sparse(hil) @ psi
    eloc = np.asarray(jax.jit(jax.vmap(lambda s: local_energy(model, params, op, s)))(states))
    np.testing.assert_allclose(eloc, hpsi / psi, rtol=1e-10, atol=1e-10)


def test_moves_and_connected_agree():
    lat = make_lattice("square", [3, 3], True)
    op = H.heisenberg(lat)
    x = SpinHilbert(9).all_states()[123]
    diag, mels, xs = op.connected(jax.numpy.asarray(x))
    hil = SpinHilbert(9)
    Hm = op.to_dense(hil)
    i = hil.index_of(x[None])[0]
    row = np.zeros(2**9)
    for m, xp in zip(np.asarray(mels), np.asarray(xs), strict=True):
        row[hil.index_of(xp[None])[0]] += m
    row[i] += float(diag)
    np.testing.assert_allclose(row, Hm[i].real, atol=1e-14)
    assert all(len(set(itertools.chain(b))) == 2 for b in lat.bonds(1))


def test_pauli_for_sector_bounds_the_nonzero_connections_and_keeps_local_energies():
    """PauliSum.for_sector: the exact maximum of nonzero off-diagonal elements over the sector (48 of the 64
    exchange bonds of the 4×4 J1-J2 model at S^z = 0); local energies over only those equal the full ones
    (a model without a flip path: the spin RBM × PP)."""
    import jax
    import jax.numpy as jnp

    from nqs.estimators import local_energies
    from nqs.hamiltonians import j1j2
    from nqs.hilbert import SpinHilbert
    from nqs.lattice import make_lattice
    from nqs.models.rbm_pp import SpinRBMPP

    lat = make_lattice("square", [4, 4])
    op = j1j2(lat, 1.0, 0.5)
    hil = SpinHilbert(16, 0)
    sector = op.for_sector(hil)
    assert op.max_active is None and sector.max_active == 48 and sector.n_conn == 64
    assert op.for_sector(hil, max_states=100) is op
    model = SpinRBMPP(16, alpha=1.0, hopping=lat)
    params = model.init(jax.random.PRNGKey(0))
    params["rbm"] = jax.tree_util.tree_map(
        lambda a: a + 0.2 * jax.random.normal(jax.random.PRNGKey(1), a.shape), params["rbm"]
    )
    states = jnp.asarray(hil.all_states()[::37])
    e_all = np.asarray(jax.jit(lambda p, x: local_energies(model, p, op, x))(params, states))
    e_sector = np.asarray(jax.jit(lambda p, x: local_energies(model, p, sector, x))(params, states))
    assert np.allclose(e_sector, e_all, rtol=1e-10, atol=1e-10)
