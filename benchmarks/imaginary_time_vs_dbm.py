"""⟨H⟩(τ) of e^{−τH}|+…+⟩ three ways on one plot: the exact DBM construction (`nqs imaginary-time`, Trotter
steps δτ), imaginary-time TDVP (`nqs evolve` with `time = "imaginary"`, the translation-invariant complex RBM
from |+…+⟩, exact sums) and the exact evolution; TFIM chain (Pauli units, h = J = 1, PBC).

    python benchmarks/imaginary_time_vs_dbm.py [--n 10] [--dtau 0.1] [--steps 10] [--out runs/bench-itime]

Prints a table and writes OUT/imaginary_time_vs_dbm.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nqs.config import parse_config
from nqs.runtime import configure_cpu
from nqs.workflow import imaginary_time
from nqs.workflow.evolve import evolve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--dtau", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default="runs/bench-itime")
    args = ap.parse_args()
    configure_cpu()
    out = Path(args.out)
    base = {
        "seed": 1,
        "lattice": {"kind": "chain", "size": [args.n], "pbc": True},
        "hamiltonian": {"kind": "ising", "J": 1.0, "h": 1.0},
    }
    dbm = imaginary_time(
        parse_config(
            {
                **base,
                "imaginary_time": {"dtau": args.dtau, "n_steps": args.steps, "method": "exact"},
                "output": {"dir": str(out / "dbm")},
            }
        )
    )
    tau_end = args.dtau * args.steps
    tdvp = evolve(
        parse_config(
            {
                **base,
                "model": {"kind": "rbm_symmetric", "alpha": 4},
                "sampler": {"kind": "exact"},
                "dynamics": {
                    "time": "imaginary",
                    "t_end": tau_end,
                    "initial": "plus",
                    "integrator": "rk23",
                    "dt": 0.001,
                    "rtol": 1e-5,
                    "atol": 1e-7,
                    "regulariser": "pinv",
                    "rcond": 1e-12,
                    "rcond_smooth": 1e-10,
                    "observables": ["X"],
                    "output_every": args.dtau,
                },
                "output": {"dir": str(out / "tdvp")},
            }
        ),
        progress=False,
    )
    rows = dbm["rows"]
    tau = np.asarray([r["tau"] for r in rows])
    e_dbm = np.asarray([r["e_dbm"] for r in rows])
    e_ex = np.asarray([r["e_exact_tau"] for r in rows])
    t_tdvp = np.asarray(tdvp["times"])
    e_tdvp = np.asarray(tdvp["observables"]["energy"]["value"])
    on_grid = {round(t, 9): e for t, e in zip(t_tdvp, e_tdvp, strict=True)}
    print(f"TFIM chain L = {args.n}, h = J = 1 (Pauli units); E0 = {dbm['e0']:.6f}")
    print(f"{'tau':>6} {'exact':>12} {'DBM':>12} {'TDVP':>12} {'DBM-exact':>11} {'TDVP-exact':>11}")
    for t, a, b in zip(tau, e_ex, e_dbm, strict=True):
        c = on_grid.get(round(t, 9), np.nan)
        print(f"{t:6.2f} {a:12.6f} {b:12.6f} {c:12.6f} {b - a:11.2e} {c - a:11.2e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(tau, e_ex, "k-", label="exact e^{-τH}|+⟩")
    ax.plot(tau, e_dbm, "s", label=f"DBM construction (δτ = {args.dtau:g})")
    ax.plot(t_tdvp, e_tdvp, "o-", ms=3, label="imaginary-time TDVP (symmetric RBM, 4 filters)")
    if dbm["e0"] is not None:
        ax.axhline(dbm["e0"], color="gray", ls=":", label="E0")
    ax.set_xlabel("τ")
    ax.set_ylabel("⟨H⟩ (Pauli units)")
    ax.set_title(f"TFIM chain L = {args.n}, h = J = 1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "imaginary_time_vs_dbm.png", dpi=120)
    print(out / "imaginary_time_vs_dbm.png")


if __name__ == "__main__":
    main()
