"""Seconds per VMC step against system size, with the split of a step into its parts.

Heisenberg chain, RBM alpha=1 (real parameters by default, as in the peers' numbers;
``--param-dtype complex`` for the complex RBM), 1024 samples over 16 chains, exchange moves, SR (diag
shift 0.01).  Medians over ``--repeats`` steps after compilation; compilation reported apart.

    python benchmarks/speed.py                 # L = 16, 32, 64, 128; then 512 ... 8192 samples at L = 64
    python benchmarks/speed.py --sizes 16 32 --samples --repeats 3
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from nqs import enable_x64, estimators, sr
from nqs.config import Config
from nqs.workflow import build


def _time(f, *args, repeats=5):
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return first, float(np.median(ts))


def measure(L: int, n_samples: int, n_chains: int, alpha: float, repeats: int, param_dtype: str = "real") -> dict:
    cfg = Config.model_validate({
        "lattice": {"kind": "chain", "size": [L]},
        "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
        "model": {"kind": "rbm", "alpha": alpha, "param_dtype": param_dtype},
        "sampler": {"kind": "exchange", "n_chains": n_chains, "n_samples": n_samples, "n_discard": 16},
        "optimizer": {"kind": "sr", "diag_shift": 0.01, "learning_rate": 0.01},
    })
    p = build(cfg)
    vmc, op = p.vmc, p.hamiltonian
    state = vmc.init(jax.random.PRNGKey(0))
    solver = vmc.solver(state)
    step = vmc.make_step(solver)
    compile_s, step_s = _time(lambda s: step(s)[0].params, state, repeats=repeats)
    mode = vmc.param_mode
    sample = jax.jit(lambda pr, ss: vmc.sampler.sample(vmc.model, pr, ss)[0])
    _, t_sample = _time(sample, state.params, state.sampler_state, repeats=repeats)
    samples = sample(state.params, state.sampler_state)
    eloc = jax.jit(lambda pr, s: estimators.local_energies(vmc.model, pr, op, s))
    _, t_eloc = _time(eloc, state.params, samples, repeats=repeats)
    grads = jax.jit(lambda pr, s: estimators.log_derivatives(vmc.model, pr, s, mode, factored=True))
    _, t_grad = _time(grads, state.params, samples, repeats=repeats)
    O = grads(state.params, samples)
    e = eloc(state.params, samples).reshape(-1)
    w = jnp.full(e.shape, 1.0 / e.size)
    solve = jax.jit(lambda O, e, w: sr.sr_direction(O, e, w, mode, 0.01, solver))
    _, t_sr = _time(solve, O, e, w, repeats=repeats)
    return {"L": L, "n_params": vmc.n_parameters(state), "solver": solver, "compile_s": compile_s,
            "step_s": step_s, "sample_s": t_sample, "eloc_s": t_eloc, "grad_s": t_grad, "sr_s": t_sr}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--n-samples", type=int, default=1024)
    ap.add_argument("--samples", type=int, nargs="*", default=[512, 2048, 4096, 8192],
                    help="then these sample counts at L = --scan-size (none: skip)")
    ap.add_argument("--scan-size", type=int, default=64)
    ap.add_argument("--n-chains", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--param-dtype", choices=["real", "complex"], default="real")
    args = ap.parse_args()
    enable_x64()
    print(f"# Heisenberg chain, {args.param_dtype} RBM alpha={args.alpha:g}, {args.n_chains} chains, exchange, SR; "
          f"device: {jax.devices()[0].platform}, {jax.device_count()} device(s)")
    hdr = (f"{'L':>5} {'samples':>7} {'params':>7} {'solver':>6} {'s/step':>8} {'sample':>8} {'E_loc':>8} "
           f"{'O_k':>8} {'SR':>8} {'compile':>8}")
    print(hdr)
    runs = [(L, args.n_samples) for L in args.sizes] + [(args.scan_size, n) for n in args.samples]
    for L, ns in runs:
        r = measure(L, ns, args.n_chains, args.alpha, args.repeats, args.param_dtype)
        print(f"{r['L']:>5} {ns:>7} {r['n_params']:>7} {r['solver']:>6} {r['step_s']:>8.4f} {r['sample_s']:>8.4f} "
              f"{r['eloc_s']:>8.4f} {r['grad_s']:>8.4f} {r['sr_s']:>8.4f} {r['compile_s']:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
