"""Models: log-derivatives vs central finite differences (Re and Im directions); fast path vs full."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from nqs.estimators import log_derivatives
from nqs.hilbert import SpinHilbert
from nqs.jax_utils import param_mode
from nqs.models import RBM, Jastrow, MarshallSign, RBMRealAmpPhase, fast_path
from nqs.operators import apply_moves

N = 6


def _models():
    return {
        "rbm": RBM(N, 2.0, init_scale=0.2),
        "rbm_real": RBMRealAmpPhase(N, 1.0, init_scale=0.2),
        "rbm_real_params": RBM(N, 1.5, init_scale=0.2, param_dtype="real"),
        "marshall_real": MarshallSign(RBM(N, 1.0, init_scale=0.2, param_dtype="real"), tuple(i % 2 for i in range(N))),
        "jastrow": Jastrow(N, init_scale=0.2),
        "marshall": MarshallSign(RBM(N, 1.0, init_scale=0.2), tuple(i % 2 for i in range(N))),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_log_derivative_vs_finite_differences(name):
    model = _models()[name]
    params = model.init(jax.random.PRNGKey(2))
    mode = param_mode(model, params)
    flat, unravel = ravel_pytree(params)
    sigma = SpinHilbert(N).all_states()[[5, 17, 40]]
    O = np.asarray(log_derivatives(model, params, jnp.asarray(sigma), mode))
    eps = 1e-5
    rng = np.random.default_rng(0)
    for k in rng.choice(flat.size, 8, replace=False):
        e = np.zeros(flat.size, dtype=flat.dtype)
        e[k] = eps
        for s, o in zip(sigma, O, strict=True):
            f = lambda d, s=s: complex(model.log_psi(unravel(flat + d), jnp.asarray(s)))
            d_re = (f(e) - f(-e)) / (2 * eps)
            assert d_re == pytest.approx(o[k], abs=1e-8), "real direction"
            if mode == "holomorphic":
                # holomorphic: a step i*eps changes log psi by i*eps*O
                d_im = (f(1j * e) - f(-1j * e)) / (2 * eps)
                assert d_im == pytest.approx(1j * o[k], abs=1e-8), "imaginary direction"


@pytest.mark.parametrize("name", list(_models()))
@pytest.mark.parametrize("move", ["flip", "exchange"])
@pytest.mark.parametrize("prepared", [False, True])
def test_fast_path_matches_full_evaluation_after_many_moves(name, move, prepared):
    """``prepared``: the parameters as the fast path's ``prepare`` gives them (the RBM's table path, as the
    sampler uses it); unprepared, the same calls take the plain parameters."""
    model = _models()[name]
    path = fast_path(model)
    params = model.init(jax.random.PRNGKey(4))
    params = jax.tree_util.tree_map(lambda x: 5 * x, params)  # not tiny: make the check meaningful
    fast = path.prepare(params) if prepared else params
    sigma = SpinHilbert(N, 0).random_state(jax.random.PRNGKey(1), 1)[0]
    cache = path.cache(fast, sigma)
    n_moves = 3000
    keys = jax.random.split(jax.random.PRNGKey(7), n_moves)

    def body(carry, key):
        sigma, cache, maxerr = carry
        if move == "flip":
            sites = jax.random.randint(key, (1,), 0, N)
            new = -sigma[sites]
            mask = jnp.ones(1, bool)
        else:
            sites = jax.random.choice(key, N, (2,), replace=False)
            new = sigma[sites[::-1]]
            mask = jnp.ones(2, bool)
        # a padded entry (site N, masked) must be ignored
        sites = jnp.concatenate([sites, jnp.array([N])])
        new = jnp.concatenate([new, jnp.array([1], sigma.dtype)])
        mask = jnp.concatenate([mask, jnp.array([False])])
        r = path.log_ratio(fast, sigma, cache, sites, new, mask)
        new_sigma = apply_moves(sigma, sites, new)
        full = model.log_psi(params, new_sigma) - model.log_psi(params, sigma)
        # compare modulo 2πi (phases)
        d = r - full
        err = jnp.abs(jnp.real(d)) + jnp.abs(jnp.angle(jnp.exp(1j * jnp.imag(d))))
        cache = path.update(fast, sigma, cache, sites, new, mask)
        return (new_sigma, cache, jnp.maximum(maxerr, err)), None

    (sigma_f, cache_f, maxerr), _ = jax.lax.scan(body, (sigma, cache, 0.0), keys)
    assert float(maxerr) < 1e-12
    fresh = path.cache(fast, sigma_f)
    for a, b in zip(jax.tree_util.tree_leaves(cache_f), jax.tree_util.tree_leaves(fresh), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-11)


def test_default_fast_path_ignores_padding_when_configuration_is_longer_than_n_sites():
    """Regression: the default log_ratio padded with model.n_sites, which for fermion models (n_sites = L,
    configurations of length 2L) pointed at a real entry and overwrote it."""
    from nqs.models import FunctionModel

    model = FunctionModel(lambda p, x: jnp.dot(p["w"], x).astype(complex), 3, {"w": jnp.arange(1.0, 7.0)})
    params = model.init(None)
    x = jnp.array([1, 0, 1, 0, 1, 0], dtype=jnp.int8)
    sites = jnp.array([1, 3])  # entry 1 changes; the second entry is padding (mask False)
    new = jnp.array([1, 1], dtype=jnp.int8)
    mask = jnp.array([True, False])
    path = fast_path(model)
    assert type(path).__name__ == "FullEvaluation"
    r = path.log_ratio(params, x, path.cache(params, x), sites, new, mask)
    assert complex(r) == pytest.approx(2.0)  # only w[1] * (1 - 0)


@pytest.mark.parametrize(
    "name", ["rbm", "rbm_real_params", "marshall", "marshall_real", "symmetric", "symmetric_nobias", "projected"]
)
@pytest.mark.parametrize("scale", [0.2, 1.5])
def test_batched_log_ratios_equal_full_evaluation(name, scale):
    """``log_ratios`` (the product form used by local energies: one exp per hidden unit, one log per
    16 units) equals log ψ(σ') − log ψ(σ) modulo 2πi for many moves at once, padded entries included,
    also with weights of order one where cosh θ varies over decades."""
    from nqs.lattice import make_lattice, momentum_characters, translation_group
    from nqs.models import Projected, SymmetricRBM

    models = dict(_models())
    lat = make_lattice("chain", [N])
    models["symmetric"] = SymmetricRBM(lat, alpha=3)
    models["symmetric_nobias"] = SymmetricRBM(lat, alpha=3, hidden_bias=False)
    T = translation_group(lat)  # momentum 2π/6 and odd spin parity: complex characters, signs
    models["projected"] = Projected(
        RBM(N, 2.0, init_scale=0.2), T, momentum_characters(lat, T, [2 * np.pi / N]), spin_parity=-1
    )
    model = models[name]
    path = fast_path(model)
    # (the projected model's inner RBM starts at init_scale 0.2 like the plain ones: weights of order one)
    params = jax.tree_util.tree_map(
        lambda x: x * scale / 0.2 if name.startswith(("rbm", "marshall", "projected")) else x * scale / 0.01,
        model.init(jax.random.PRNGKey(7)),
    )
    rng = np.random.default_rng(3)
    checked = 0
    for sigma in np.asarray(SpinHilbert(N).all_states())[rng.choice(2**N, 5, replace=False)]:
        sigma = jnp.asarray(sigma)
        C = 12
        sites = np.array([rng.permutation(N)[:3] for _ in range(C)])  # distinct sites per move
        mask = np.ones((C, 3), bool)
        mask[:, 2] = rng.random(C) < 0.5
        sites[~mask] = N  # padding
        values = -np.asarray(sigma)[np.minimum(sites, N - 1)]
        sites, values, mask = jnp.asarray(sites), jnp.asarray(values, jnp.int8), jnp.asarray(mask)
        got = np.asarray(path.log_ratios(params, sigma, path.cache(params, sigma), sites, values, mask))
        ref = np.array(
            [
                complex(model.log_psi(params, apply_moves(sigma, jnp.where(m, s, N), v)) - model.log_psi(params, sigma))
                for s, v, m in zip(sites, values, mask, strict=True)
            ]
        )
        one = np.array(
            [
                complex(path.log_ratio(params, sigma, path.cache(params, sigma), s, v, m))
                for s, v, m in zip(sites, values, mask, strict=True)
            ]
        )
        live = np.ones(C, bool)
        if name == "projected":  # where the projection vanishes by symmetry both sides are rounding noise

            def weight(x):
                logs = np.asarray(jax.vmap(model.model.log_psi, in_axes=(None, 0))(params, model.images(x)))
                terms = np.exp(logs - logs.real.max())
                return abs(np.sum(model._weights * terms)) / np.sum(np.abs(terms))

            if weight(sigma) < 1e-6:
                continue
            live = np.array(
                [
                    weight(apply_moves(sigma, jnp.where(m, s, N), v)) > 1e-6
                    for s, v, m in zip(sites, values, mask, strict=True)
                ]
            )
        np.testing.assert_allclose(np.exp(got - ref)[live], 1.0, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(np.exp(got - one)[live], 1.0, rtol=1e-11, atol=1e-11)
        checked += int(live.sum())
    assert checked >= 20


@pytest.mark.parametrize("param_dtype", ["real", "complex"])
def test_rbm_table_path_on_a_long_chain_with_sign_changes(param_dtype):
    """The RBM's table path (``prepare``: e^{±2W}; cache s, g, h) on 70 sites with weights of order one:
    3000 exchange moves accepted, each ratio equal to full re-evaluation, θ changing sign on the way,
    the cache equal to a fresh one at the end.  Regression: the table row index was computed in the
    configurations' int8 and wrapped around for more than 63 sites."""
    n = 70
    model = RBM(n, 1.0, init_scale=0.3, param_dtype=param_dtype)
    path = fast_path(model)
    params = model.init(jax.random.PRNGKey(0))
    fast = path.prepare(params)
    sigma = SpinHilbert(n, 0).random_state(jax.random.PRNGKey(1), 1)[0]
    keys = jax.random.split(jax.random.PRNGKey(2), 3000)

    def body(carry, key):
        sigma, cache, maxerr, flips = carry
        i = jax.random.randint(key, (), 0, n)
        sites = jnp.stack([i, (i + 1 + jax.random.randint(jax.random.fold_in(key, 1), (), 0, n - 1)) % n])
        new = sigma[sites[::-1]]
        mask = jnp.ones(2, bool)
        r = path.log_ratio(fast, sigma, cache, sites, new, mask)
        new_sigma = apply_moves(sigma, sites, new)
        full = model.log_psi(params, new_sigma) - model.log_psi(params, sigma)
        err = jnp.abs(jnp.exp(r - full) - 1.0)
        new_cache = path.update(fast, sigma, cache, sites, new, mask)
        flips = flips + jnp.sum(new_cache["s"] != cache["s"])
        return (new_sigma, new_cache, jnp.maximum(maxerr, err), flips), None

    carry = (sigma, path.cache(fast, sigma), 0.0, 0)
    (sigma_f, cache_f, maxerr, flips), _ = jax.lax.scan(body, carry, keys)
    assert float(maxerr) < 1e-11
    assert int(flips) > 100  # the sign-change branch was exercised
    for a, b in zip(
        jax.tree_util.tree_leaves(cache_f), jax.tree_util.tree_leaves(path.cache(fast, sigma_f)), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-10)
    # the batched ratios (local energies) from the table cache
    sites = jnp.array([[i, (i + 1) % n] for i in range(n)])
    values = sigma_f[sites[:, ::-1]]
    mask = jnp.ones(sites.shape, bool)
    got = path.log_ratios(fast, sigma_f, cache_f, sites, values, mask)
    ref = jnp.stack([model.log_psi(params, apply_moves(sigma_f, s, v)) for s, v in zip(sites, values, strict=True)])
    np.testing.assert_allclose(np.asarray(jnp.exp(got - (ref - model.log_psi(params, sigma_f)))), 1.0, atol=1e-11)


@pytest.mark.parametrize("name", ["rbm", "rbm_real_params", "marshall", "marshall_real"])
def test_factored_log_derivatives_equal_the_dense_matrix(name):
    """The RBM's factored O (σ ⊗ tanh θ for W) is the matrix autodiff gives, in ravel order."""
    model = _models()[name]
    params = model.init(jax.random.PRNGKey(3))
    mode = param_mode(model, params)
    sigma = jnp.asarray(SpinHilbert(N).all_states())
    dense = log_derivatives(model, params, sigma, mode)
    fac = log_derivatives(model, params, sigma, mode, factored=True)
    assert type(fac).__name__ == "FactoredJacobian"
    np.testing.assert_allclose(np.asarray(fac.dense()), np.asarray(dense), atol=1e-14)
    v = jax.random.normal(jax.random.PRNGKey(0), (dense.shape[1],))
    z = jax.random.normal(jax.random.PRNGKey(1), (dense.shape[0],))
    np.testing.assert_allclose(np.asarray(fac.matvec(v)), np.asarray(dense @ v), atol=1e-12)
    np.testing.assert_allclose(np.asarray(fac.rmatvec(z)), np.asarray(dense.conj().T @ z), atol=1e-12)
    np.testing.assert_allclose(np.asarray(fac.gram()), np.asarray(dense @ dense.conj().T), atol=1e-12)
    from nqs import sr

    e = z + 1j * jax.random.normal(jax.random.PRNGKey(5), z.shape)
    w = jnp.full(z.shape, 1.0 / z.size)
    np.testing.assert_allclose(
        np.asarray(sr.gradient(fac, e, w, mode)), np.asarray(sr.gradient(dense, e, w, mode)), atol=1e-12
    )
    # models without factors give the dense matrix
    jas = _models()["jastrow"]
    pj = jas.init(jax.random.PRNGKey(0))
    assert not hasattr(log_derivatives(jas, pj, sigma, param_mode(jas, pj), factored=True), "blocks")


@pytest.mark.parametrize("name", ["rbm", "rbm_real_params", "marshall", "marshall_real"])
@pytest.mark.parametrize("scale", [0.2, 1.5])
def test_flip_path_ratios_equal_full_evaluation(name, scale):
    """The flip path (tables of e^{Δθ} per connection and sign pattern, used by local energies of Pauli sums)
    gives log ψ(σ′_g) − log ψ(σ) of full evaluation for every connection, with one-, two- and three-site flips
    and padding; local energies through it equal the batched ``log_ratios`` route."""
    from nqs import hamiltonians
    from nqs.estimators import flip_ratios, local_energies, local_energy
    from nqs.lattice import make_lattice
    from nqs.operators.pauli import PauliSum

    lat = make_lattice("chain", [N])
    ops = [
        hamiltonians.j1j2(lat, 1.0, 0.4),
        hamiltonians.ising(lat, 1.0, 0.7),
        PauliSum(N, [(0.3, "XYX", (0, 2, 4)), (0.2, "YY", (3, 5)), (-0.4, "XZX", (1, 2, 3)), (0.1, "Z", (4,))]),
    ]
    model = _models()[name]
    params = jax.tree_util.tree_map(lambda x: x * scale / 0.2, model.init(jax.random.PRNGKey(7)))
    path = fast_path(model)
    prepared = path.prepare(params)
    states = jnp.asarray(SpinHilbert(N).all_states())
    for op in ops:
        flips = flip_ratios(model, prepared, op)
        assert flips is not None

        @jax.jit
        def both(sigma, op=op, flips=flips):
            got = flips(sigma, path.cache(prepared, sigma))
            _, _, sites, values, mask = op.moves(sigma)
            moved = jax.vmap(lambda s, v, m: apply_moves(sigma, jnp.where(m, s, N), v))(sites, values, mask)
            ref = jax.vmap(model.log_psi, in_axes=(None, 0))(params, moved) - model.log_psi(params, sigma)
            return got, ref

        got, ref = jax.vmap(both)(states[::11])
        np.testing.assert_allclose(np.exp(np.asarray(got) - np.asarray(ref)), 1.0, rtol=1e-11, atol=1e-11)
        plain = jax.jit(jax.vmap(lambda s, op=op: local_energy(model, prepared, op, s)))(states)  # log_ratios route
        got_e = jax.jit(lambda p, x, op=op: local_energies(model, p, op, x))(params, states)
        np.testing.assert_allclose(np.asarray(got_e), np.asarray(plain), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", ["rbm", "rbm_real_params", "marshall", "marshall_real"])
@pytest.mark.parametrize("rule", ["local", "exchange"])
def test_move_path_matches_full_evaluation_after_many_moves(name, rule):
    """The sampler's move path (:meth:`FastPath.move_path`): log |ψ(σ')/ψ(σ)| from its tables and state equals
    the full re-evaluation to 1e-12 after thousands of moves, each applied (valid ones), and the carried
    state equals a fresh one at the end."""
    from nqs.sampling import ExchangeRule, LocalRule

    model = _models()[name]
    params = jax.tree_util.tree_map(lambda x: 5 * x, model.init(jax.random.PRNGKey(4)))
    r = LocalRule(N) if rule == "local" else ExchangeRule(tuple((i, j) for i in range(N) for j in range(i + 1, N)))
    sites_np, signs_np = r.move_table()
    path = fast_path(model).move_path(sites_np, signs_np)
    assert path is not None
    tables = path.prepare(params)
    sites_t, signs_t = jnp.asarray(sites_np), jnp.asarray(signs_np, dtype=jnp.int8)
    sigma = SpinHilbert(N, 0).random_state(jax.random.PRNGKey(1), 1)[0]
    state = path.cache(tables, sigma)

    def body(carry, g):
        sigma, state, maxerr, n_valid = carry
        values = sigma[sites_t[g]]
        valid = jnp.all(values == values[0] * signs_t[g])
        ratio, aux = path.log_abs_ratio(tables, state, g, values[0])
        hit = jnp.any(jnp.arange(N)[:, None] == sites_t[g][None, :], axis=1)
        new_sigma = jnp.where(valid & hit, -sigma, sigma)
        full = jnp.real(model.log_psi(params, new_sigma) - model.log_psi(params, sigma))
        err = jnp.where(valid, jnp.abs(ratio - full), 0.0)
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(valid, a, b), path.update(tables, state, aux), state)
        return (new_sigma, new_state, jnp.maximum(maxerr, err), n_valid + valid), None

    moves = jax.random.randint(jax.random.PRNGKey(7), (3000,), 0, len(sites_np))
    (sigma_f, state_f, maxerr, n_valid), _ = jax.lax.scan(body, (sigma, state, 0.0, 0), moves)
    assert int(n_valid) > 1000
    assert float(maxerr) < 1e-12
    fresh = path.cache(tables, sigma_f)
    for a, b in zip(jax.tree_util.tree_leaves(state_f), jax.tree_util.tree_leaves(fresh), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-11)


def test_models_without_a_move_path_say_so():
    from nqs.sampling import LocalRule

    for name in ["rbm_real", "jastrow"]:
        assert fast_path(_models()[name]).move_path(*LocalRule(N).move_table()) is None


def test_wrapper_stack_exposes_the_inner_paths_through_one_object():
    """Projected over MarshallSign over Tied over a real RBM: the one fast path of each layer passes the RBM's
    specialised parts through (move path through the sign and the tying, image path with the sign added),
    and the projection's ratios from the RBM's image tables equal full evaluation after many moves."""
    from nqs.lattice import make_lattice, translation_group
    from nqs.models import Projected
    from nqs.models.tied import Tied, translation_tying
    from nqs.sampling import ExchangeRule

    lat = make_lattice("chain", [N])
    T = translation_group(lat)
    rbm = RBM(N, 2.0, init_scale=0.3, param_dtype="real")
    stack = MarshallSign(
        Tied(rbm, translation_tying(rbm.init(jax.random.PRNGKey(0)), T)), tuple(i % 2 for i in range(N))
    )
    params = stack.init(jax.random.PRNGKey(1))
    path = fast_path(stack)
    # the move path: the RBM's tables behind the parameter map, |ψ| only (the sign drops out)
    rule = ExchangeRule(tuple((i, j) for i in range(N) for j in range(i + 1, N)))
    sites_np, signs_np = rule.move_table()
    moves = path.move_path(sites_np, signs_np)
    assert moves is not None
    tables = moves.prepare(params)
    sigma = jnp.asarray([1, -1, -1, 1, 1, -1], jnp.int8)
    state = moves.cache(tables, sigma)
    for g in range(len(sites_np)):
        s = sites_np[g]
        if sigma[s[0]] == sigma[s[1]]:
            continue
        ratio, _ = moves.log_abs_ratio(tables, state, g, sigma[s[0]])
        new = sigma.at[jnp.asarray(s)].set(-sigma[jnp.asarray(s)])
        assert float(ratio) == pytest.approx(
            float(jnp.real(stack.log_psi(params, new) - stack.log_psi(params, sigma))), abs=1e-12
        )
    # the image path: ψ(gσ) = ±ψ(σ) (tied RBM, Marshall sign), so these characters keep the projection nonzero
    images = Projected(stack, T, np.ones(len(T))).images(sigma)
    chi = np.sign(
        np.real(
            np.exp(
                np.asarray(jax.vmap(stack.log_psi, in_axes=(None, 0))(params, images))
                - complex(stack.log_psi(params, sigma))
            )
        )
    )
    projected = Projected(stack, T, chi)
    ppath = fast_path(projected)
    assert ppath.images is not None  # the RBM's image tables, through Tied and the sign
    fast = ppath.prepare(params)
    cache = ppath.cache(fast, sigma)
    rng = np.random.default_rng(5)
    worst = 0.0
    for _ in range(200):
        up, dn = np.flatnonzero(np.asarray(sigma) > 0), np.flatnonzero(np.asarray(sigma) < 0)
        sites = jnp.array([int(rng.choice(up)), int(rng.choice(dn)), N])
        values = jnp.array([-1, 1, 1], jnp.int8)
        mask = jnp.array([True, True, False])
        new = apply_moves(sigma, jnp.where(mask, sites, N), values)
        r = complex(ppath.log_ratio(fast, sigma, cache, sites, values, mask))
        ref = complex(projected.log_psi(params, new) - projected.log_psi(params, sigma))
        worst = max(worst, abs(np.exp(r - ref) - 1))
        cache = ppath.update(fast, sigma, cache, sites, values, mask)
        sigma = new
    assert worst < 1e-11
    assert abs(np.exp(complex(cache["total"]) - complex(projected.log_psi(params, sigma))) - 1) < 1e-11
    # many moves at once (local energies) from the same object
    sites = jnp.asarray([[i, (i + 1) % N] for i in range(N)])
    values = sigma[sites[:, ::-1]]
    got = ppath.log_ratios(fast, sigma, cache, sites, values, jnp.ones(sites.shape, bool))
    ref = jnp.stack([projected.log_psi(params, apply_moves(sigma, s, v)) for s, v in zip(sites, values, strict=True)])
    live = np.asarray(sigma[sites[:, 0]] != sigma[sites[:, 1]])
    ratios = np.exp(np.asarray(got - (ref - projected.log_psi(params, sigma))))
    np.testing.assert_allclose(ratios[live], 1.0, atol=1e-11)


@pytest.mark.parametrize("kind", ["rbm", "rbm_symmetric", "jastrow"])
def test_local_estimator_of_a_diagonal_operator(kind):
    """An operator without off-diagonal terms (σᶻσᶻ alone): its local estimator is its diagonal, through every
    model's fast path (the RBM's and the symmetric RBM's flip paths once failed on zero moves)."""
    import jax

    from nqs.estimators import local_energies
    from nqs.lattice import make_lattice
    from nqs.models import RBM, SymmetricRBM
    from nqs.operators.pauli import PauliSum

    lat = make_lattice("chain", [4])
    op = PauliSum(4, [(1.0, "ZZ", (i, j)) for i, j in lat.bonds(1)])
    model = {
        "rbm": lambda: RBM(4, alpha=1.0),
        "rbm_symmetric": lambda: SymmetricRBM(lat, alpha=1),
        "jastrow": lambda: Jastrow(4),
    }[kind]()
    params = model.init(jax.random.PRNGKey(0))
    s = jnp.asarray([[1, 1, -1, 1], [1, -1, 1, -1]], jnp.int8)
    e = local_energies(model, params, op, s)
    assert jnp.allclose(e, jnp.asarray([0.0, -4.0]))
