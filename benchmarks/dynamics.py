"""Accuracy of nqs evolve (TDVP) against exact Krylov evolution on the TFIM chain L = 10 (Pauli units).

Runs the examples and prints one table:

* the quench h = 1 -> 0.5 from the VMC ground state, exact sums (examples/tfim_quench_chain10.toml):
  max over t of |<X> - exact|, <X> at t = 0.5, 1, 2, the largest energy drift;
* the same quench with Monte Carlo (examples/tfim_quench_chain10_mc.toml, 4096 samples, t <= 1), from the
  exact-sum run's prepared ground state: max error, and the largest error in units of the error bar;
* from |+...+> and from |up...up> at h = 1 (examples/tfim_plus_chain10.toml, tfim_up_chain10.toml): the
  Kramers-Wannier check <X>(t) from |+> = <ZZ>(t) from |up>.

    python benchmarks/dynamics.py [--out runs/bench-dynamics]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def evolve(config: Path, out: Path, extra: str = "") -> dict:
    if extra:
        text = config.read_text().replace("[dynamics]\n", f"[dynamics]\n{extra}\n", 1)
        config = out.parent / f"{out.name}.toml"
        config.write_text(text)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "nqs.cli", "evolve", str(config), "--out", str(out), "--quiet"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    res = json.loads((out / "result.json").read_text())
    res["wall"] = time.perf_counter() - t0
    return res


def at(res: dict, name: str, t: float) -> float:
    i = int(np.argmin(np.abs(np.asarray(res["times"]) - t)))
    return res["observables"][name]["value"][i]


def exact_at(res: dict, name: str, t: float) -> float:
    i = int(np.argmin(np.abs(np.asarray(res["exact"]["time"]) - t)))
    return res["exact"][name][i]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench-dynamics")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ex = ROOT / "examples"

    q = evolve(ex / "tfim_quench_chain10.toml", out / "quench")
    prep = q["preparation"]
    print(
        f"quench h 1 -> 0.5, exact sums: preparation rel. error {prep['relative_error']:.2e}; "
        f"max|X - exact| = {q['max_abs_error']['X']:.2e}; X(0.5, 1, 2) = "
        + ", ".join(f"{at(q, 'X', t):.4f} (exact {exact_at(q, 'X', t):.4f})" for t in (0.5, 1.0, 2.0))
        + f"; max |E(t) - E(0)|/|E(0)| = {q['energy_drift_max_relative']:.2e}; "
        f"{q['n_steps']} steps ({q['n_rejected']} rejected), {q['wall']:.0f} s"
    )

    mc = evolve(ex / "tfim_quench_chain10_mc.toml", out / "quench_mc", f'from_run = "{out / "quench" / "prepare"}"')
    x, err = np.asarray(mc["observables"]["X"]["value"]), np.asarray(mc["observables"]["X"]["error"])
    ref = np.asarray([exact_at(mc, "X", t) for t in mc["times"]])
    finite = bool(np.all(np.isfinite(x)))
    worst_sigma = float(np.max(np.abs(x - ref) / np.maximum(err, 1e-12)))
    print(
        f"quench, Monte Carlo (4096 samples): max|X - exact| over t <= 1 = {float(np.max(np.abs(x - ref))):.2e}; "
        f"largest deviation {worst_sigma:.1f} error bars; finite: {finite}; "
        f"{mc['n_steps']} steps, {mc['seconds_per_step']:.2f} s/step, {mc['wall']:.0f} s"
    )

    plus = evolve(ex / "tfim_plus_chain10.toml", out / "plus")
    up = evolve(ex / "tfim_up_chain10.toml", out / "up")

    def kw(t_max):
        return max(abs(at(plus, "X", t) - at(up, "ZZ", t)) for t in plus["times"] if t <= t_max + 1e-9)

    def worst(res, name, t_max):
        ts = [t for t in res["times"] if t <= t_max + 1e-9]
        return max(abs(at(res, name, t) - exact_at(res, name, t)) for t in ts)

    print(
        f"from |+>: max|X - exact| = {worst(plus, 'X', 0.5):.2e} (t <= 0.5), {worst(plus, 'X', 1.0):.2e} (t <= 1), "
        f"X(0.5) = {at(plus, 'X', 0.5):.4f}; from |up>: max|ZZ - exact| = {worst(up, 'ZZ', 0.5):.2e} (t <= 0.5), "
        f"{worst(up, 'ZZ', 1.0):.2e} (t <= 1), ZZ(0.5) = {at(up, 'ZZ', 0.5):.4f}; Kramers-Wannier: "
        f"max |X_plus - ZZ_up| = {kw(0.5):.2e} (t <= 0.5), {kw(1.0):.2e} (t <= 1)"
    )


if __name__ == "__main__":
    main()
