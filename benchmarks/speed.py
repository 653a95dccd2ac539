"""Seconds per VMC step against system size, with the split of a step into its parts.

Heisenberg chain, RBM alpha=1 (real parameters by default, as in the peers' numbers;
``--param-dtype complex`` for the complex RBM), 1024 samples over 16 chains, exchange moves, SR (diag
shift 0.01).  Medians over ``--repeats`` steps after compilation; compilation reported apart.

    python benchmarks/speed.py                 # L = 16, 32, 64, 128; then 512 ... 8192 samples at L = 64
    python benchmarks/speed.py --sizes 16 32 --samples --repeats 3
    python benchmarks/speed.py --squares 4 8 --precision float32   # also square lattices; float32 (GPUs)

On a GPU (``JAX_PLATFORMS=cuda``) the memory column is the device's peak bytes in use; on the CPU
it is the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import time

from nqs.runtime import configure_cpu

configure_cpu()  # before JAX and scipy load OpenBLAS and JAX starts its CPU backend

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from vs_netket import peak_mb  # noqa: E402  (benchmarks/ is on the path when this script runs)

from nqs import estimators, sr  # noqa: E402
from nqs.config import Config  # noqa: E402
from nqs.workflow import build  # noqa: E402


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


def measure(
    L: int,
    n_samples: int,
    n_chains: int,
    alpha: float,
    repeats: int,
    param_dtype: str = "real",
    precision: str = "float64",
    square: bool = False,
) -> dict:
    cfg = Config.model_validate(
        {
            "lattice": {"kind": "square", "size": [L, L]} if square else {"kind": "chain", "size": [L]},
            "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
            "model": {"kind": "rbm", "alpha": alpha, "param_dtype": param_dtype},
            "sampler": {"kind": "exchange", "n_chains": n_chains, "n_samples": n_samples, "n_discard": 16},
            "optimizer": {"kind": "sr", "diag_shift": 0.01, "learning_rate": 0.01, "precision": precision},
        }
    )
    p = build(cfg)
    vmc, op = p.driver, p.hamiltonian
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
    solve_dtype = jnp.float64 if precision == "float32" else None
    solve = jax.jit(lambda O, e, w: sr.sr_direction(O, e, w, mode, 0.01, solver, solve_dtype=solve_dtype))
    _, t_sr = _time(solve, O, e, w, repeats=repeats)
    return {
        "L": f"{L}x{L}" if square else str(L),
        "n_params": vmc.n_parameters(state),
        "solver": solver,
        "compile_s": compile_s,
        "step_s": step_s,
        "sample_s": t_sample,
        "eloc_s": t_eloc,
        "grad_s": t_grad,
        "sr_s": t_sr,
        "peak_mb": peak_mb(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--n-samples", type=int, default=1024)
    ap.add_argument(
        "--samples",
        type=int,
        nargs="*",
        default=[512, 2048, 4096, 8192],
        help="then these sample counts at L = --scan-size (none: skip)",
    )
    ap.add_argument("--scan-size", type=int, default=64)
    ap.add_argument("--n-chains", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--param-dtype", choices=["real", "complex"], default="real")
    ap.add_argument(
        "--precision",
        choices=["float64", "float32"],
        default="float64",
        help="working precision of model, sampling, E_loc and O (the SR solve stays float64)",
    )
    ap.add_argument(
        "--squares",
        type=int,
        nargs="*",
        default=[],
        help="then square lattices of these side lengths (after the chains)",
    )
    args = ap.parse_args()
    print(
        f"# Heisenberg, {args.param_dtype} RBM alpha={args.alpha:g}, {args.n_chains} chains, exchange, SR; "
        f"{args.precision}; device: {jax.devices()[0].device_kind} ({jax.devices()[0].platform}), "
        f"{jax.device_count()} device(s)"
    )
    hdr = (
        f"{'L':>5} {'samples':>7} {'params':>7} {'solver':>6} {'s/step':>8} {'sample':>8} {'E_loc':>8} "
        f"{'O_k':>8} {'SR':>8} {'compile':>8} {'peak MB':>8}"
    )
    print(hdr)
    runs = (
        [(L, args.n_samples, False) for L in args.sizes]
        + [(L, args.n_samples, True) for L in args.squares]
        + [(args.scan_size, n, False) for n in args.samples]
    )
    for L, ns, square in runs:
        r = measure(L, ns, args.n_chains, args.alpha, args.repeats, args.param_dtype, args.precision, square)
        print(
            f"{r['L']:>5} {ns:>7} {r['n_params']:>7} {r['solver']:>6} {r['step_s']:>8.4f} {r['sample_s']:>8.4f} "
            f"{r['eloc_s']:>8.4f} {r['grad_s']:>8.4f} {r['sr_s']:>8.4f} {r['compile_s']:>8.2f} "
            f"{r['peak_mb']:>8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
