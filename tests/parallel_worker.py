"""The small VMC problem of tests/test_parallel.py, and a script running it on a device mesh / in several processes.

    python tests/parallel_worker.py [--mesh] [--coordinator HOST:PORT --num-processes N --process-id I]
                                    [--runs dense,dense:3,minsr] [--steps 5] [--checkpoint PATH]

prints one JSON line ``{"devices": ..., "processes": ..., "energies": {run: [E_1, ...]}}``.  A run is
``solver[:chunk_size]``.  XLA_FLAGS=--xla_force_host_platform_device_count=D gives D CPU devices.
"""

from __future__ import annotations

import argparse
import json
import sys

from nqs.runtime import configure_cpu

configure_cpu()

import jax  # noqa: E402

SEED = 3


def build(solver="dense", chunk_size=None, mesh=None, precision="float64", memory_limit_mb=None):
    """Heisenberg chain of 8 sites, real RBM (alpha = 1) times the Marshall sign, SR, 64 samples on 8 chains."""
    from nqs import hamiltonians as H
    from nqs.drivers.vmc import VMC, OptimizerConfig
    from nqs.hilbert import SpinHilbert
    from nqs.lattice import make_lattice
    from nqs.models import RBM, MarshallSign
    from nqs.sampling import ExchangeRule, MetropolisSampler
    from nqs.sr import SRConfig

    lat = make_lattice("chain", [8])
    model = MarshallSign(RBM(8, 1.0, init_scale=0.1, param_dtype="real"), tuple(int(c) for c in lat.sublattice))
    rule = ExchangeRule(tuple(map(tuple, lat.bonds(1).tolist())))
    sampler = MetropolisSampler(SpinHilbert(8, 0), rule, n_chains=8, n_samples=64, n_discard=8)
    opt = OptimizerConfig("sr", 0.05, SRConfig(diag_shift=0.01, solver=solver))
    return VMC(
        model,
        H.heisenberg(lat),
        sampler,
        opt,
        chunk_size=chunk_size,
        precision=precision,
        memory_limit_mb=memory_limit_mb,
        mesh=mesh,
    )


def energies(vmc, n_steps=5):
    """Energy history of ``n_steps`` steps from seed :data:`SEED`, and the final state."""
    from nqs.drivers import run

    out: list[float] = []
    state = run(
        vmc,
        vmc.init(jax.random.PRNGKey(SEED)),
        n_steps,
        callback=lambda st, info, dt: out.append(float(info["energy"].mean.real)),
    )
    return out, state


def collectives_in_loops(hlo: str) -> list[str]:
    """The cross-device collectives (all-reduce, all-gather, ...) that an optimized HLO module runs inside a
    while loop's body or condition, at any depth: each costs a rendezvous of the devices per iteration."""
    import re

    comps, cur = {}, None
    for line in hlo.splitlines():
        m = re.match(r"^(?:ENTRY )?%(\S+) \(", line)
        if m:
            cur = comps.setdefault(m.group(1), [])
        elif line.startswith("}"):
            cur = None
        elif cur is not None:
            cur.append(line)
    calls = re.compile(r"(?:body|condition|calls|to_apply)=%([\w.\-]+)")
    todo = [n for lines in comps.values() for line in lines if " while(" in line for n in calls.findall(line)]
    seen: set[str] = set()
    while todo:
        n = todo.pop()
        if n not in seen and n in comps:
            seen.add(n)
            todo.extend(c for line in comps[n] for c in calls.findall(line))
    kinds = re.compile(r"= [^=]*?\b(all-reduce|all-gather|collective-permute|all-to-all|reduce-scatter)(?:-start)?\(")
    return [m.group(1) for n in seen for line in comps[n] for m in [kinds.search(line)] if m]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", action="store_true")
    ap.add_argument("--coordinator")
    ap.add_argument("--num-processes", type=int)
    ap.add_argument("--process-id", type=int)
    ap.add_argument("--runs", default="dense")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--checkpoint")
    ap.add_argument(
        "--sampler-loops",
        action="store_true",
        help="print the collectives the sampler runs inside its loops (on the mesh) and stop",
    )
    a = ap.parse_args(argv)
    from nqs import parallel

    if a.coordinator:
        parallel.initialize(a.coordinator, a.num_processes, a.process_id)
    mesh = parallel.chain_mesh() if a.mesh or a.coordinator else None
    result = {"devices": jax.device_count(), "processes": jax.process_count(), "energies": {}}
    if a.sampler_loops:
        vmc = build("dense", None, mesh)
        state = vmc.init(jax.random.PRNGKey(SEED))
        hlo = jax.jit(lambda p, s: vmc.sampler.sample(vmc.model, p, s)).lower(state.params, state.sampler_state)
        result["sampler_loop_collectives"] = collectives_in_loops(hlo.compile().as_text())
        print(json.dumps(result), flush=True)
        return
    for spec in a.runs.split(","):
        solver, _, chunk = spec.partition(":")
        vmc = build(solver, int(chunk) if chunk else None, mesh)
        result["energies"][spec], state = energies(vmc, a.steps)
        if a.checkpoint:
            from nqs import io

            io.save_checkpoint(a.checkpoint, state, {"step": int(state.step)})
    print(json.dumps(result), flush=True)
    parallel.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
