"""Defaults that work: a config naming only the physics against the same physics with tuned settings.

For each lattice, two runs of the Heisenberg model (J = 1, PBC, total S^z = 0) with an RBM times the Marshall
sign, compared with exact diagonalization:

* ``defaults`` — the config names only the lattice, ``kind = "heisenberg"`` and ``model = {kind = "rbm",
  marshall_sign = true}``: every other setting is nqs's default;
* ``tuned`` — the settings of the tuned 4×4 example (``examples/heisenberg_4x4.toml``: real RBM α = 4, 2048
  samples over 64 chains, SR with the learning rate decaying from 0.1 to 0.01 and the diagonal shift from
  0.005, 1000 steps).

The lattices are other than the examples' (chain L = 20, honeycomb 3×3 = 18 sites).  Prints one row per run
and the ratio of the relative errors (goal: defaults within 2× of tuned)::

    python benchmarks/defaults.py [--lattices chain:20 honeycomb:3x3] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from nqs.runtime import configure_cpu

configure_cpu()

from nqs.config import parse_config  # noqa: E402
from nqs.workflow import run  # noqa: E402

TUNED = {
    "model": {"alpha": 4, "param_dtype": "real"},
    "sampler": {"kind": "exchange", "n_chains": 64, "n_samples": 2048, "n_discard": 8},
    "optimizer": {
        "kind": "sr",
        "learning_rate": 0.1,
        "learning_rate_final": 0.01,
        "diag_shift": 0.005,
        "diag_shift_decay": 0.995,
        "diag_shift_min": 0.0001,
        "n_steps": 1000,
    },
}


def lattice_section(spec: str) -> dict:
    kind, size = spec.split(":")
    return {"kind": kind, "size": [int(x) for x in size.split("x")]}


def one_run(lattice: dict, seed: int, extra: dict) -> dict:
    cfg = {
        "seed": seed,
        "lattice": lattice,
        "hamiltonian": {"kind": "heisenberg"},
        "model": {"kind": "rbm", "marshall_sign": True},
    }
    for section, values in extra.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    with tempfile.TemporaryDirectory() as out:
        cfg["output"] = {"dir": out}
        t0 = time.perf_counter()
        r = run(parse_config(cfg), progress=False)
    return {
        "rel": r["relative_error"],
        "energy": r["energy"]["mean"],
        "error": r["energy"]["error"],
        "exact": r["exact_energy"],
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lattices", nargs="+", default=["chain:20", "honeycomb:3x3"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs", nargs="+", default=["defaults", "tuned"], choices=["defaults", "tuned"])
    p.add_argument("--json", action="store_true", help="one JSON line per run instead of the table")
    args = p.parse_args()
    print("| lattice | run | E | error bar | E (ED) | relative error | seconds | defaults / tuned |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.lattices:
        lattice = lattice_section(spec)
        runs = {"defaults": {}, "tuned": TUNED}
        rows = {name: one_run(lattice, args.seed, runs[name]) for name in args.runs}
        for name, r in rows.items():
            if args.json:
                print(json.dumps({"lattice": spec, "run": name, **r}), flush=True)
                continue
            both = name == "tuned" and "defaults" in rows
            ratio = f"**{rows['defaults']['rel'] / rows['tuned']['rel']:.2f}**" if both else ""
            print(
                f"| {spec} | {name} | {r['energy']:.5f} | {r['error']:.5f} | {r['exact']:.5f} | {r['rel']:.2e} | "
                f"{r['seconds']:.0f} | {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
