"""DBM (joint-chain VMC, :mod:`nqs.drivers.dbm`) against the real RBM × Marshall on the Heisenberg chain.

    python benchmarks/dbm_vs_rbm.py                      # L = 16, 800 steps each, default rows
    python benchmarks/dbm_vs_rbm.py --steps 300 --rows rbm1 dbm8

Problem: Heisenberg chain L = 16, PBC, J = 1, Sz = 0 (ED E0 = −7.142296360616779).  Every row uses
the default problem's sampling and optimizer settings (:func:`nqs.config.default_config`):
1024 samples, 32 chains, 8 burn-in sweeps, exchange moves on bonds, SR with diagonal shift 0.01,
learning rate 0.05 → 0.005 (cosine), and the same number of steps.  The final energy is a
separate estimate with ``--n-eval`` samples at the optimized parameters (DBMs: with
``--eval-deep-samples`` deep draws per replica, which only lowers the deep-layer noise);
"seconds" is the optimization's wall time (compilation included, evaluation excluded).

Rows (``--rows``):

* ``rbm1``  real RBM α = 1 (M = 16) × Marshall, :class:`nqs.drivers.vmc.VMC`;
* ``rbm05`` real RBM α = 0.5 (M = 8) × Marshall (the DBM M = K = 8 without its deep layer);
* ``dbm8``  DBM M = K = 8 × Marshall, :class:`nqs.drivers.dbm.DBMVMC` (``--metric``, ``--deep-samples``,
  ``--deep-decay``: the decoupled decay of U that keeps the deep-layer noise from running away);
* ``dbm16`` DBM M = K = 16 × Marshall, same;
* ``dbm8x`` DBM M = K = 8 optimized by plain VMC with Σ_d done exactly (2^8 terms per amplitude):
  the same variational family without the deep-sampling noise (slow; a diagnostic).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from nqs.runtime import configure_cpu

configure_cpu()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from nqs.config import default_config  # noqa: E402
from nqs.drivers import VMC, run  # noqa: E402
from nqs.drivers.dbm import DBMVMC  # noqa: E402
from nqs.models.dbm import DeepBoltzmann  # noqa: E402
from nqs.sampling import MetropolisSampler  # noqa: E402
from nqs.sampling.joint import JointMetropolisSampler  # noqa: E402
from nqs.stats import statistics  # noqa: E402
from nqs.workflow import build  # noqa: E402

E0 = -7.142296360616779
ROWS = {
    "rbm1": ("real RBM α=1 × Marshall", None),
    "rbm05": ("real RBM α=0.5 × Marshall", None),
    "dbm8": ("DBM M=K=8 × Marshall (joint chain)", (8, 8)),
    "dbm16": ("DBM M=K=16 × Marshall (joint chain)", (16, 16)),
    "dbm8x": ("DBM M=K=8 × Marshall (Σ_d exact)", (8, 8)),
}


def problem(steps: int, alpha: float = 1.0):
    cfg = default_config()
    cfg.model.alpha = alpha
    cfg.optimizer.n_steps = steps
    return build(cfg)


def final_energy(vmc, params, sstate, n_eval: int, deep_samples: int, chunk: int = 4096):
    """E, its error and Var ε from ``n_eval`` samples in chunks (one continued Markov chain per
    walker, so the statistics see the whole series); DBMs use ``deep_samples`` draws per replica."""
    sampler = dataclasses.replace(vmc.sampler, n_samples=min(chunk, n_eval))
    if isinstance(sampler, JointMetropolisSampler):
        sampler = dataclasses.replace(sampler, deep_samples=deep_samples)
    est = jax.jit(dataclasses.replace(vmc, sampler=sampler).estimate)
    parts = []
    for _ in range(-(-n_eval // sampler.n_samples)):
        _, _, eps, _, sstate = est(params, sstate)
        parts.append(eps)
    stats = statistics(jnp.concatenate(parts, axis=1))
    return float(jnp.real(stats.mean)), float(stats.error), float(stats.variance)


def one_row(
    name: str,
    steps: int,
    n_eval: int,
    seed: int,
    log_every: int,
    deep_samples: int = 4,
    metric: str = "pair",
    deep_decay: float = 0.1,
    eval_deep_samples: int = 16,
    save: str | None = None,
) -> dict:
    label, mk = ROWS[name]
    pb = problem(steps, 0.5 if name == "rbm05" else 1.0)
    base = pb.driver
    if name in ("dbm8", "dbm16"):
        m, k = mk
        model = DeepBoltzmann(pb.lattice.n_sites, m, k, sublattice=tuple(int(c) for c in pb.lattice.sublattice))
        sampler = JointMetropolisSampler.from_metropolis(base.sampler, deep_samples)
        vmc = DBMVMC(model, pb.hamiltonian, sampler, base.optimizer, metric=metric, deep_decay=deep_decay)
        label += f", R={deep_samples}, {metric}, decay {deep_decay:g}"
    elif name == "dbm8x":
        m, k = mk
        model = DeepBoltzmann(pb.lattice.n_sites, m, k, sublattice=tuple(int(c) for c in pb.lattice.sublattice))
        s = base.sampler
        vmc = VMC(
            model,
            pb.hamiltonian,
            MetropolisSampler(s.hilbert, s.rule, n_chains=s.n_chains, n_samples=s.n_samples, n_discard=s.n_discard),
            base.optimizer,
        )
    else:
        vmc = base
    state = vmc.init(jax.random.PRNGKey(seed))
    n_par = vmc.n_parameters(state)
    solver = vmc.solver(state)
    print(f"--- {label}: {n_par} parameters, solver {solver}", flush=True)

    def cb(st, info, dt):
        k = int(st.step)
        if log_every and (k % log_every == 0 or k == steps):
            e = info["energy"]
            print(
                f"  step {k:5d}  E = {float(jnp.real(e.mean)):.6f} ± {float(e.error):.6f}  "
                f"var {float(e.variance):.4f}  acc {float(info['acceptance']):.3f}",
                flush=True,
            )

    t0 = time.perf_counter()
    state = run(vmc, state, steps, cb, vmc.make_step(solver))
    seconds = time.perf_counter() - t0
    e, err, var = final_energy(vmc, state.params, state.sampler_state, n_eval, eval_deep_samples)
    if save:
        np.savez(f"{save}/{name}.npz", **{k: np.asarray(v) for k, v in state.params.items()})
    return {
        "name": name,
        "label": label,
        "params": n_par,
        "energy": e,
        "error": err,
        "variance": var,
        "rel": abs(e - E0) / abs(E0),
        "seconds": seconds,
        "steps": steps,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--n-eval", type=int, default=65536)
    ap.add_argument("--eval-deep-samples", type=int, default=16, help="R of the DBMs' final evaluation")
    ap.add_argument("--save", default=None, help="folder for the optimized parameters (npz per row)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--deep-samples", type=int, default=4, help="deep draws per replica and sample (R)")
    ap.add_argument("--metric", default="pair", choices=["pair", "mean"], help="DBM SR metric")
    ap.add_argument("--deep-decay", type=float, default=0.1, help="DBM decoupled decay of U (0: none)")
    ap.add_argument("--rows", nargs="*", default=["rbm1", "rbm05", "dbm8", "dbm16"], choices=list(ROWS))
    args = ap.parse_args()
    rows = [
        one_row(
            n,
            args.steps,
            args.n_eval,
            args.seed,
            args.log_every,
            args.deep_samples,
            args.metric,
            args.deep_decay,
            args.eval_deep_samples,
            args.save,
        )
        for n in args.rows
    ]
    print(
        f"\nHeisenberg chain L=16 PBC, Sz=0; ED E0 = {E0:.12f}; {args.steps} steps; "
        f"final energy from {args.n_eval} samples (DBMs: R = {args.eval_deep_samples} deep draws)"
    )
    print("| model | params | E (final) | rel. error | var(ε) | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['label']} | {r['params']} | {r['energy']:.6f} ± {r['error']:.6f} | {r['rel']:.2e} | "
            f"{r['variance']:.4f} | {r['seconds']:.0f} |"
        )
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=6)
    main()
