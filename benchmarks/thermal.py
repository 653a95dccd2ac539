"""Finite-temperature targets of ``nqs thermal`` (purification + imaginary-time TDVP) on chains of 10 sites.

Runs the workflow (:func:`nqs.workflow.thermal.thermal`) on the TFIM chain L = 10, h = J = 1 with exact sums in
chunks over the 2^20 doubled-space states and prints E/L and C/L against the exact values from the spectrum
(targets: E/L within 1 % of −1.12478 at T = 1, C/L within 10 % of 0.32363).  With ``--heisenberg`` also the
Heisenberg chain L = 10 (S·S units; exact E/L −0.20465 at T = 1, −0.34177 at T = 0.5).  Exact sums over 2^20
states cost O(2^20 · P²) per TDVP evaluation: minutes on a GPU, far longer on a laptop CPU.

    python benchmarks/thermal.py [--heisenberg] [--out runs/bench_thermal]
"""

from __future__ import annotations

import argparse
import json
import time

from nqs.config import load_config
from nqs.runtime import configure_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heisenberg", action="store_true")
    ap.add_argument("--out", default="runs/bench_thermal")
    ap.add_argument("--dt", type=float, default=0.02)
    args = ap.parse_args()
    configure_cpu()
    from nqs.workflow.thermal import thermal

    cfg = load_config("examples/thermal_tfim_chain10.toml")
    cfg.thermal.dt = args.dt
    runs = [("tfim", cfg)]
    if args.heisenberg:
        h = load_config("examples/thermal_tfim_chain10.toml")
        from nqs.hamiltonians import HeisenbergConfig

        h.hamiltonian = HeisenbergConfig()
        h.thermal.temperatures = [1.0, 0.5]
        h.thermal.dt = args.dt
        runs.append(("heisenberg", h))
    for name, c in runs:
        c.output.dir = f"{args.out}/{name}"
        t0 = time.perf_counter()
        res = thermal(c, progress=False)
        print(
            f"== {name} ({time.perf_counter() - t0:.0f} s, {res['n_steps']} steps, max residual "
            f"{res['residual_max']:.3f})"
        )
        for r in res["temperatures"]:
            print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()}))


if __name__ == "__main__":
    main()
