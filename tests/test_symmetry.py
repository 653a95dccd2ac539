"""Tests for nqs.models.symmetric: the weight-shared RBM and the projection onto a symmetry sector.

Conventions under test (``docs/symmetry.md``): ``(gσ)_{perms[g, i]} = σ_i``; a sector
``χ`` is ``U_g ψ = χ(g) ψ`` ⇔ ``ψ(gσ) = χ(g)* ψ(σ)``; momentum characters ``χ(T) = e^{−ik·T}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nqs.config import parse_config
from nqs.exact import exact_state
from nqs.exact.sectors import projector_dense
from nqs.hilbert import SpinHilbert
from nqs.lattice import (
    little_group,
    make_lattice,
    momentum_characters,
    space_characters,
    space_group,
    symmetry_sectors,
    translation_group,
)
from nqs.models import RBM, fast_path
from nqs.models.symmetric import Projected, SymmetricRBM
from nqs.operators.moves import apply_moves
from nqs.workflow import build


def lat_of(kind: str, size: tuple[int, ...]):
    return make_lattice(kind, size[0] if kind == "chain" else list(size))


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
    direction = {
        k: jax.random.normal(keys[2 * n], v.shape) + 1j * jax.random.normal(keys[2 * n + 1], v.shape)
        for n, (k, v) in enumerate(sorted(params.items()))
    }
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
    vf = np.asarray(
        jax.vmap(full.log_psi, in_axes=(None, 0))(pf, jnp.asarray(np.array([G.act(g, sigma) for g in range(len(G))])))
    )
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
        np.log(np.cosh(p["b"][f] + p["W"][f] @ s[T.perms[t]])) for f in range(2) for t in range(len(T))
    )
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
        inner = MarshallSign(
            RBM(16, alpha=1, init_scale=0.3, param_dtype="real"), tuple(int(c) for c in lat.sublattice)
        )
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


@pytest.mark.parametrize(
    "size,marshall,parity,projected",
    [
        ((8,), False, 1, False),  # no hidden bias: even by construction
        ((8,), False, -1, True),  # odd: biases kept and ψ(σ) − ψ(−σ) projected
        ((6,), True, -1, False),  # Marshall sign on 3 sublattice-1 sites: (−1)^3, odd without projecting
        ((6,), True, 1, True),
    ],
)
def test_symmetric_rbm_spin_parity_from_the_config(size, marshall, parity, projected):
    """kind = "rbm_symmetric" with spin_parity: the requested parity holds on every Sz = 0 state; when it
    is the natural parity of the bias-free RBM (x Marshall sign) no ±σ projection is built."""
    cfg = parse_config(
        {
            "lattice": {"kind": "chain", "size": list(size)},
            "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
            "model": {
                "kind": "rbm_symmetric",
                "alpha": 2,
                "init_scale": 0.3,
                "marshall_sign": marshall,
                "symmetry": {"k": [0], "spin_parity": parity},
            },
        }
    )
    problem = build(cfg)
    model = problem.driver.model
    assert isinstance(model, Projected) == projected
    params = model.init(jax.random.PRNGKey(3))
    states = jnp.asarray(problem.hilbert.all_states())
    f = jax.vmap(model.log_psi, in_axes=(None, 0))
    logs, flipped = np.asarray(f(params, states)), np.asarray(f(params, -states))
    nonzero = np.isfinite(logs.real)  # the odd projection vanishes where −σ is a translate of σ
    assert np.array_equal(nonzero, np.isfinite(flipped.real)) and nonzero.mean() > 0.5
    np.testing.assert_allclose(np.exp(flipped[nonzero] - logs[nonzero]), parity, atol=1e-10)
