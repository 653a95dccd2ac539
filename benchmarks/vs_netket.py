"""nqs and NetKet side by side on the same problem, alternately on the same machine.

Heisenberg model (chains and square lattices, PBC, total Sz = 0), RBM alpha = 1 (real parameters,
as in NetKet's orientation numbers), 1024 samples over 16 chains, exchange moves between nearest
neighbours, 16 discarded sweeps, SR with diagonal shift 0.01, SGD learning rate 0.01.
For NetKet both drivers are timed (``VMC_SR`` and ``VMC`` + ``SR`` preconditioner with CG) and
the faster one is the reference.  Seconds per step are medians after compilation; compilation
(the first step) is reported apart.  Peak memory is the worker process's max RSS.

    pip install -e '.[peers]'
    python benchmarks/vs_netket.py                       # chains 16..128, square 4x4 and 8x8
    python benchmarks/vs_netket.py --systems chain:16 chain:64 --steps 10
    python benchmarks/vs_netket.py --systems --accuracy-systems chain:22 --wall-seconds 30

After the speed table it prints the relative error each library reaches on chain L=22 and square 4x4
after the same wall time (``--wall-seconds``, compilation included), the energy from 16384 samples.

On a GPU: ``JAX_PLATFORMS=cuda XLA_PYTHON_CLIENT_PREALLOCATE=false python benchmarks/vs_netket.py
--precision float32`` (the memory columns are then the device's peak bytes in use).

Each measurement runs in a fresh worker process (so memory is per library); the runs alternate
nqs / NetKet per system.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def parse_system(s: str):
    kind, size = s.split(":")
    dims = [int(x) for x in size.split("x")]
    return kind, dims


def _precision() -> str:
    """The working precision of both libraries' workers ("float64" or "float32"), set by ``--precision``."""
    return os.environ.get("NQS_BENCH_PRECISION", "float64")


def peak_mb() -> float:
    """Peak memory so far: the accelerator's peak bytes in use on a GPU, else the process's max RSS
    (also used by speed.py)."""
    import resource

    import jax

    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_steps(step, state, n_steps):
    """``n_steps + 1`` calls of an nqs driver's ``step`` (the first compiles): the last state and info and the
    seconds of each call."""
    import jax

    times = []
    for _ in range(n_steps + 1):
        t0 = time.perf_counter()
        state, info = step(state)
        jax.block_until_ready(state.params)
        times.append(time.perf_counter() - t0)
    return state, info, times


def worker_nqs(kind, dims, n_steps, n_samples, n_chains):
    from nqs.runtime import configure_cpu

    configure_cpu()  # before JAX loads OpenBLAS and starts its CPU backend
    import jax

    from nqs.workflow import build

    cfg = _nqs_config(kind, dims, n_samples, n_chains, marshall=True)
    p = build(cfg)
    vmc = p.driver
    state = vmc.init(jax.random.PRNGKey(0))
    solver = vmc.solver(state)
    step = vmc.make_step(solver)
    state, info, times = timed_steps(step, state, n_steps)
    return {
        "lib": "nqs",
        "driver": f"sr/{solver}",
        "compile_s": times[0],
        "step_s": float(np.median(times[1:])),
        "peak_mb": peak_mb(),
        "n_params": vmc.n_parameters(state),
    }


#: NetKet's ``Heisenberg`` is J Σ σ·σ (Pauli matrices), 4 × nqs's J Σ S·S; the SR step δ = (S + λ)⁻¹F
#: scales with H, so NetKet's learning rate 0.01 moves the parameters as nqs's 0.04 does.  The
#: equal-wall-time comparison uses the equivalent rate (at 0.01 nqs would move 4× slower).
UNIT_RATIO = 4.0


def _nqs_config(kind, dims, n_samples, n_chains, marshall=False, learning_rate=0.01):
    from nqs.config import Config

    return Config.model_validate(
        {
            "lattice": {"kind": kind, "size": dims},
            "hamiltonian": {"kind": "heisenberg", "total_sz": 0},
            "model": {"kind": "rbm", "alpha": 1, "param_dtype": "real", "marshall_sign": marshall},
            "sampler": {"kind": "exchange", "n_chains": n_chains, "n_samples": n_samples, "n_discard": 16},
            "optimizer": {"kind": "sr", "diag_shift": 0.01, "learning_rate": learning_rate, "precision": _precision()},
        }
    )


#: Samples of the final energy estimate in the equal-wall-time comparison.
EVAL_SAMPLES = 16384


def worker_nqs_accuracy(kind, dims, seconds, n_samples, n_chains):
    """Optimize for ``seconds`` of wall time (compilation included), then estimate E with EVAL_SAMPLES.

    The real RBM carries the Marshall sign explicitly (NetKet's Heisenberg applies it in H)."""
    from nqs.runtime import configure_cpu

    configure_cpu()  # before JAX loads OpenBLAS and starts its CPU backend
    import jax

    from nqs.exact import lowest_energies
    from nqs.workflow import build

    p = build(_nqs_config(kind, dims, n_samples, n_chains, marshall=True, learning_rate=0.01 * UNIT_RATIO))
    vmc = p.driver
    state = vmc.init(jax.random.PRNGKey(0))
    step = vmc.make_step(vmc.solver(state))
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        state, _ = step(state)
        jax.block_until_ready(state.params)
        n += 1
    ev = vmc.for_evaluation(EVAL_SAMPLES)
    stats = jax.jit(lambda pr, ss: ev.estimate(pr, ss)[3])(state.params, state.sampler_state)
    e_ref = float(lowest_energies(p.hamiltonian, p.hilbert, 1)[0])
    e = float(stats.mean.real)
    return {
        "lib": "nqs",
        "steps": n,
        "energy": e,
        "err": float(stats.error),
        "e_ref": e_ref,
        "rel": abs(e - e_ref) / abs(e_ref),
    }


def worker_netket_accuracy(kind, dims, seconds, n_samples, n_chains, driver):
    import jax

    jax.config.update("jax_enable_x64", True)
    import netket as nk

    from nqs.exact import lowest_energies
    from nqs.runtime import configure_cpu
    from nqs.workflow import build

    configure_cpu()  # the same CPU runtime settings for NetKet's run as for nqs's
    vs, gs, ha = _netket_setup(nk, kind, dims, n_samples, n_chains, driver)
    t0 = time.perf_counter()
    count = [0]

    def cb(step, log, drv):
        jax.block_until_ready(drv.state.parameters)
        count[0] += 1
        return time.perf_counter() - t0 < seconds

    gs.run(n_iter=10**9, out=None, show_progress=False, callback=cb)
    vs.n_samples = EVAL_SAMPLES
    st = vs.expect(ha)
    p = build(_nqs_config(kind, dims, n_samples, n_chains))
    e_ref = UNIT_RATIO * float(lowest_energies(p.hamiltonian, p.hilbert, 1)[0])  # NetKet: Pauli matrices
    e = float(st.mean.real)
    return {
        "lib": "netket",
        "driver": driver,
        "steps": count[0],
        "energy": e,
        "err": float(st.error_of_mean),
        "e_ref": e_ref,
        "rel": abs(e - e_ref) / abs(e_ref),
    }


def _netket_setup(nk, kind, dims, n_samples, n_chains, driver):
    if kind == "chain":
        g = nk.graph.Chain(dims[0], pbc=True)
    else:
        g = nk.graph.Hypercube(length=dims[0], n_dim=2, pbc=True)
    hi = nk.hilbert.Spin(s=0.5, total_sz=0, N=g.n_nodes)
    ha = nk.operator.Heisenberg(hilbert=hi, graph=g)
    sa = nk.sampler.MetropolisExchange(hi, graph=g, n_chains=n_chains)
    model = nk.models.RBM(alpha=1, param_dtype=np.float32 if _precision() == "float32" else np.float64)
    vs = nk.vqs.MCState(sa, model, n_samples=n_samples, n_discard_per_chain=16, seed=0, sampler_seed=1)
    opt = nk.optimizer.Sgd(learning_rate=0.01)
    if driver == "VMC_SR":
        gs = nk.driver.VMC_SR(ha, opt, diag_shift=0.01, variational_state=vs)
    else:
        gs = nk.driver.VMC(ha, opt, variational_state=vs, preconditioner=nk.optimizer.SR(diag_shift=0.01))
    return vs, gs, ha


def worker_netket(kind, dims, n_steps, n_samples, n_chains, driver):
    import jax

    jax.config.update("jax_enable_x64", True)
    import netket as nk

    vs, gs, ha = _netket_setup(nk, kind, dims, n_samples, n_chains, driver)
    stamps = []

    def cb(step, log, drv):
        jax.block_until_ready(drv.state.parameters)
        stamps.append(time.perf_counter())
        return True

    t0 = time.perf_counter()
    gs.run(n_iter=n_steps + 1, out=None, show_progress=False, callback=cb)
    ts = np.diff([t0, *stamps])
    return {
        "lib": "netket",
        "driver": driver,
        "compile_s": float(ts[0]),
        "step_s": float(np.median(ts[1:])),
        "peak_mb": peak_mb(),
        "n_params": int(vs.n_parameters),
    }


def run_three(system, common, suffix=""):
    """nqs, NetKet ``VMC_SR`` and NetKet ``VMC`` + SR workers for one system, one after the other
    (``suffix`` "-acc": the equal-wall-time runs)."""
    return (
        run_worker([f"nqs{suffix}", system, *common]),
        run_worker([f"netket{suffix}", system, *common, "VMC_SR"]),
        run_worker([f"netket{suffix}", system, *common, "VMC"]),
    )


def run_worker(args_list, script=__file__):
    """``script --worker ARGS`` in a fresh process (its own JAX and XLA state); the JSON of its last line, or
    ``{"error": ...}``."""
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    r = subprocess.run([sys.executable, script, "--worker", *args_list], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--systems", nargs="*", default=["chain:16", "chain:32", "chain:64", "chain:128", "square:4x4", "square:8x8"]
    )
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--n-samples", type=int, default=1024)
    ap.add_argument("--n-chains", type=int, default=16)
    ap.add_argument(
        "--accuracy-systems",
        nargs="*",
        default=["chain:22", "square:4x4"],
        help="systems of the equal-wall-time accuracy comparison (none: skip it)",
    )
    ap.add_argument(
        "--wall-seconds",
        type=float,
        default=60.0,
        help="optimization wall time per library in the accuracy comparison (compilation included)",
    )
    ap.add_argument(
        "--precision",
        choices=["float64", "float32"],
        default=_precision(),
        help="parameters and sampling in both libraries (nqs keeps its SR solve in float64)",
    )
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ["NQS_BENCH_PRECISION"] = args.precision
    if args.worker:
        lib, system, steps, ns, nc, *rest = args.worker
        kind, dims = parse_system(system)
        if lib == "nqs":
            out = worker_nqs(kind, dims, int(steps), int(ns), int(nc))
        elif lib == "nqs-acc":
            out = worker_nqs_accuracy(kind, dims, float(steps), int(ns), int(nc))
        elif lib == "netket-acc":
            out = worker_netket_accuracy(kind, dims, float(steps), int(ns), int(nc), rest[0])
        else:
            out = worker_netket(kind, dims, int(steps), int(ns), int(nc), rest[0])
        print(json.dumps(out))
        return
    try:
        import netket  # noqa: F401
    except ImportError:
        sys.exit("NetKet is not installed: pip install -e '.[peers]'")
    common = [str(args.steps), str(args.n_samples), str(args.n_chains)]
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    dev = jax.devices()[0]
    print(
        f"# device: {dev.device_kind} ({dev.platform}); {args.precision}; memory: "
        f"{'device peak bytes in use' if dev.platform != 'cpu' else 'process max RSS'}"
    )
    print(
        f"# Heisenberg, RBM alpha=1 (real), {args.n_samples} samples, {args.n_chains} chains, exchange, "
        f"SR diag_shift 0.01; medians over {args.steps} steps after the first"
    )
    print(
        f"{'system':<12} {'params':>7} {'nqs s/step':>11} {'NetKet VMC_SR':>14} {'NetKet VMC+SR':>14} "
        f"{'ratio':>7} {'nqs MB':>8} {'NK MB':>8} {'nqs comp s':>10} {'NK comp s':>10}  nqs solver"
    )
    for system in args.systems:
        a, b, c = run_three(system, common)
        if "error" in a:
            print(f"{system:<12} nqs failed: {a['error']}")
            continue
        nk = [r for r in (b, c) if "error" not in r]
        best = min(nk, key=lambda r: r["step_s"]) if nk else None
        fmt = lambda r: f"{r['step_s']:.4f}" if "error" not in r else "failed"
        ratio = a["step_s"] / best["step_s"] if best else float("nan")
        print(
            f"{system:<12} {a['n_params']:>7} {a['step_s']:>11.4f} {fmt(b):>14} {fmt(c):>14} {ratio:>7.2f} "
            f"{a['peak_mb']:>8.0f} {best['peak_mb'] if best else float('nan'):>8.0f} {a['compile_s']:>10.2f} "
            f"{best['compile_s'] if best else float('nan'):>10.2f}  {a['driver']}",
            flush=True,
        )
    if not args.accuracy_systems:
        return
    acc = [str(args.wall_seconds), str(args.n_samples), str(args.n_chains)]
    print(
        f"\n# relative error after {args.wall_seconds:g} s of optimization (compilation included), energy "
        f"from {EVAL_SAMPLES} samples; NetKet: Heisenberg (Pauli units) with its sign rule, learning rate 0.01; "
        f"nqs: S = σ/2 units, Marshall sign, the equivalent rate {0.01 * UNIT_RATIO:g}"
    )
    print(
        f"{'system':<12} {'nqs steps':>9} {'nqs rel. error':>15} {'NK VMC_SR steps':>15} {'rel. error':>11} "
        f"{'NK VMC+SR steps':>15} {'rel. error':>11}"
    )
    for system in args.accuracy_systems:
        cells = []
        for r in run_three(system, acc, "-acc"):
            cells.append(("failed", "") if "error" in r else (str(r["steps"]), f"{r['rel']:.2e}"))
        print(
            f"{system:<12} {cells[0][0]:>9} {cells[0][1]:>15} {cells[1][0]:>15} {cells[1][1]:>11} "
            f"{cells[2][0]:>15} {cells[2][1]:>11}",
            flush=True,
        )


if __name__ == "__main__":
    main()
