"""Seconds per TDVP step with Monte Carlo: nqs against NetKet's TDVP driver, and nqs against system size.

Transverse-field Ising chain H = −Σ ZZ − h Σ X (h = 1, PBC), complex RBM α = 1 (holomorphic parameters on
both sides), 4096 samples over 128 chains (32 per chain), single-spin-flip Metropolis, 5 discarded sweeps
per sampling (NetKet's default ``n_discard_per_chain``; every Runge–Kutta stage samples anew, the chains
continuing from the previous stage on both sides), RK4 with the fixed step dt = 0.01, real time.

The linear solve: a diagonal shift 1e-4 on both sides, solved by Cholesky — nqs
``TDVPSolver("shift", diag_shift=1e-4)``, NetKet ``qgt=QGTJacobianDense(diag_shift=1e-4, holomorphic=True)``
with ``linear_solver=nk.optimizer.solver.cholesky``.  Seconds per step are medians over ``--steps`` steps
after the first (compilation, reported apart).

    python benchmarks/tdvp_speed.py                       # L = 64 side by side; nqs at L = 16, 32, 64, 128
    python benchmarks/tdvp_speed.py --side-by-side 32 --sizes 16 32 --steps 3
    python benchmarks/tdvp_speed.py --steps 4 --netket-steps 2   # NetKet's L = 64 step takes minutes here

Each measurement runs in a fresh worker process.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import vs_netket  # beside this script: its worker runner

H_FIELD = 1.0
DT = 0.01
DIAG_SHIFT = 1e-4
N_DISCARD = 5


def worker_nqs(L, n_steps, n_samples, n_chains):
    from nqs.runtime import configure_cpu

    configure_cpu()
    import jax

    from nqs import hamiltonians as H
    from nqs.drivers.tdvp import TDVP
    from nqs.hilbert import SpinHilbert
    from nqs.lattice import make_lattice
    from nqs.models import RBM
    from nqs.qgt import TDVPSolver
    from nqs.sampling import LocalRule, MetropolisSampler

    lat = make_lattice("chain", [L])
    ham = H.ising(lat, J=1.0, h=H_FIELD)
    sampler = MetropolisSampler(
        SpinHilbert(L), LocalRule(L), n_chains=n_chains, n_samples=n_samples, n_discard=N_DISCARD
    )
    drv = TDVP(
        RBM(L, alpha=1.0, param_dtype="complex"),
        ham,
        sampler,
        t_end=1e6,
        integrator="rk4",
        dt=DT,
        solver=TDVPSolver("shift", diag_shift=DIAG_SHIFT),
    )
    state = drv.init(jax.random.PRNGKey(0))
    state, info, times = vs_netket.timed_steps(drv.make_step(), state, n_steps)
    return {
        "lib": "nqs",
        "L": L,
        "n_params": drv.n_parameters(state),
        "threads": drv.threads_in_use,
        "compile_s": times[0],
        "step_s": float(np.median(times[1:])),
        "energy": float(info["energy"].mean.real),
    }


def worker_netket(L, n_steps, n_samples, n_chains):
    import jax

    jax.config.update("jax_enable_x64", True)
    import netket as nk
    import netket.experimental as nkx

    from nqs.runtime import configure_cpu

    configure_cpu()  # the same CPU runtime settings as nqs's
    g = nk.graph.Chain(L, pbc=True)
    hi = nk.hilbert.Spin(s=0.5, N=L)
    ha = nk.operator.Ising(hilbert=hi, graph=g, h=H_FIELD, J=-1.0)  # −Σ ZZ − h Σ X
    sa = nk.sampler.MetropolisLocal(hi, n_chains=n_chains)
    model = nk.models.RBM(alpha=1, param_dtype=complex)
    vs = nk.vqs.MCState(sa, model, n_samples=n_samples, n_discard_per_chain=N_DISCARD, seed=0, sampler_seed=1)
    te = nkx.TDVP(
        ha,
        vs,
        nkx.dynamics.RK4(dt=DT),
        qgt=nk.optimizer.qgt.QGTJacobianDense(diag_shift=DIAG_SHIFT, holomorphic=True),
        linear_solver=nk.optimizer.solver.cholesky,
        propagation_type="real",
    )
    stamps = []

    def cb(step, log, drv):
        jax.block_until_ready(drv.state.parameters)
        stamps.append(time.perf_counter())
        return True

    t0 = time.perf_counter()
    te.run(T=(n_steps + 1) * DT * (1 - 1e-9), out=None, show_progress=False, callback=cb)
    ts = np.diff([t0, *stamps])
    return {
        "lib": "netket",
        "L": L,
        "n_params": int(vs.n_parameters),
        "compile_s": float(ts[0]),
        "step_s": float(np.median(ts[1:])),
        "n_timed": len(ts) - 1,
    }


def run_worker(args_list):
    return vs_netket.run_worker(args_list, __file__)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side-by-side", type=int, default=64, help="chain length of the nqs/NetKet comparison")
    ap.add_argument("--sizes", type=int, nargs="*", default=[16, 32, 64, 128], help="chain lengths for nqs alone")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--netket-steps", type=int, default=None, help="timed NetKet steps (default: --steps)")
    ap.add_argument("--n-samples", type=int, default=4096)
    ap.add_argument("--n-chains", type=int, default=128)
    ap.add_argument("--no-netket", action="store_true", help="skip NetKet (nqs rows only)")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        lib, L, steps, ns, nc = args.worker
        fn = worker_nqs if lib == "nqs" else worker_netket
        print(json.dumps(fn(int(L), int(steps), int(ns), int(nc))))
        return
    common = [str(args.steps), str(args.n_samples), str(args.n_chains)]
    print(
        f"# TFIM chain h = {H_FIELD:g}, PBC; complex RBM alpha = 1; {args.n_samples} samples over {args.n_chains} "
        f"chains, {N_DISCARD} discarded sweeps per stage; RK4 dt = {DT:g}; shift {DIAG_SHIFT:g} + Cholesky; "
        f"medians over {args.steps} (NetKet {args.netket_steps or args.steps}) steps after the first"
    )
    L = args.side_by_side
    a = run_worker(["nqs", str(L), *common])
    nk_steps = str(args.netket_steps or args.steps)
    b = {"error": "skipped"} if args.no_netket else run_worker(["netket", str(L), nk_steps, *common[1:]])
    print(f"{'L':>4} {'params':>7} {'nqs s/step':>11} {'NetKet s/step':>14} {'ratio':>7} {'compile nqs / NK (s)':>21}")
    if "error" in a:
        print(f"{L:>4} nqs failed: {a['error']}")
    else:
        nk_s = b.get("step_s", float("nan"))
        nk_c = b.get("compile_s", float("nan"))
        nk_txt = f"{nk_s:.3f}" if "error" not in b else b["error"][:40]
        print(
            f"{L:>4} {a['n_params']:>7} {a['step_s']:>11.3f} {nk_txt:>14} {a['step_s'] / nk_s:>7.3f} "
            f"{a['compile_s']:>9.1f} / {nk_c:.1f}",
            flush=True,
        )
    print("\n# nqs against L")
    print(f"{'L':>4} {'params':>7} {'threads':>7} {'s/step':>8} {'compile s':>9}")
    for L in args.sizes:
        r = a if L == args.side_by_side and "error" not in a else run_worker(["nqs", str(L), *common])
        if "error" in r:
            print(f"{L:>4} failed: {r['error']}")
            continue
        print(f"{L:>4} {r['n_params']:>7} {r['threads']:>7} {r['step_s']:>8.3f} {r['compile_s']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
