"""Command line: ``nqs run [CONFIG]``, ``nqs evolve CONFIG``, ``nqs ed CONFIG [--json]``, ``nqs plot RUN_DIR``,
``nqs imaginary-time CONFIG``, ``nqs thermal CONFIG``.

Every user error is one line on stderr with exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(EXIT_USAGE, f"nqs: error: {message}\n")


def _run_folder_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the commands that write a run folder (run, evolve, thermal)."""
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--out", help="override output.dir")
    p.add_argument("--seed", type=int, help="override seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nqs", description="Neural-network quantum states by variational Monte Carlo.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="optimize a wave function (built-in default problem without CONFIG)")
    r.add_argument("config", nargs="?", help="TOML config; omitted: Heisenberg chain L=16, RBM")
    r.add_argument("--n-steps", type=int, help="override optimizer.n_steps")
    _run_folder_arguments(r)
    ev = sub.add_parser("evolve", help="time evolution (TDVP) of the config's [dynamics] section")
    ev.add_argument("config")
    _run_folder_arguments(ev)
    th = sub.add_parser("thermal", help="energy and specific heat at the [thermal] temperatures (purification)")
    th.add_argument("config")
    _run_folder_arguments(th)
    e = sub.add_parser("ed", help="exact lowest energies by Lanczos")
    e.add_argument("config")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("-k", type=int, default=1, help="number of lowest energies (default 1; per sector with --sectors)")
    e.add_argument(
        "--sectors",
        choices=["momentum", "full"],
        help="resolve symmetry sectors: momentum only, or momentum and point-group irrep",
    )
    e.add_argument("--spin-flip", action="store_true", help="with --sectors: also resolve the spin parity")
    it = sub.add_parser("imaginary-time", help="build e^{-tau H}|psi0> exactly as a deep Boltzmann machine")
    it.add_argument("config")
    it.add_argument("--dtau", type=float, help="override imaginary_time.dtau")
    it.add_argument("--n-steps", type=int, help="override imaginary_time.n_steps (Trotter steps)")
    it.add_argument("--out", help="override output.dir")
    pl = sub.add_parser("plot", help="convergence plot of a run folder (PNG)")
    pl.add_argument("run_dir")
    pl.add_argument("-o", "--output", help="PNG path (default RUN_DIR/convergence.png)")
    return p


def _load(path):
    from .config import default_config, load_config

    return default_config() if path is None else load_config(path)


def cmd_run(args) -> int:
    from rich.console import Console

    from .workflow import solve

    cfg = _load(args.config)
    if args.n_steps is not None:
        if args.n_steps < 0:
            raise _user_error("--n-steps must be >= 0")
        if args.n_steps < cfg.optimizer.average_last:  # a short trial run averages what it has
            print(
                f"nqs: note: --n-steps {args.n_steps} is below optimizer.average_last "
                f"({cfg.optimizer.average_last}); averaging the last {args.n_steps} steps",
                file=sys.stderr,
            )
            cfg.optimizer.average_last = args.n_steps
        cfg.optimizer.n_steps = args.n_steps
    if args.out:
        cfg.output.dir = args.out
    if args.seed is not None:
        cfg.seed = args.seed
    if args.config and cfg.output.dir == "runs/default" and "output" not in _keys(args.config):
        cfg.output.dir = f"runs/{Path(args.config).stem}"
    console = Console(stderr=True)
    args.out_dir = cfg.output.dir  # named in the message when the run is interrupted
    res = solve(cfg, resume=args.resume, progress=not args.quiet, console=console)
    from .parallel import is_main_process

    if not is_main_process():
        return 0
    e = res["energy"]
    out = Console()
    out.print(f"energy      = {e['mean']:.8f} ± {e['error']:.8f}   ({e['per_site']:.8f} per site)")
    out.print(f"variance    = {e['variance']:.6g}    V-score = {res['v_score']:.3g}")
    if res["exact_energy"] is not None:
        out.print(f"exact       = {res['exact_energy']:.8f}   ({res['exact_method']})")
        rel = res["relative_error"]
        out.print(f"rel. error  = {rel:.3e}" if rel is not None else "rel. error  = n/a (the exact energy is 0)")
    else:
        out.print("exact       = n/a (lattice too large for exact diagonalization)")
    ls = res.get("lanczos_step")
    if ls:
        rel = f"   rel. error {ls['relative_error']:.3e}" if ls.get("relative_error") is not None else ""
        lost = f"; {ls['lost_terms']} terms at psi = 0 left out" if ls["lost_terms"] else ""
        out.print(
            f"1 Lanczos step: {ls['energy']:.8f} ± {ls['error']:.8f}{rel}   ({ls['n_samples']} samples, "
            f"{ls['seconds']:.0f} s{lost}; gain over psi on them {ls['gain']:.8f} ± {ls['gain_error']:.8f})"
        )
    out.print(f"units: {res['units']}")
    per_step = f"{res['seconds_per_step']:.4f} s/step, " if res["seconds_per_step"] is not None else ""
    out.print(f"{res['n_steps']} steps, {per_step}{res['seconds_total']:.1f} s total; results in {cfg.output.dir}/")
    return 0


def _config_with_overrides(args):
    """The config of ``args.config`` with ``--out`` (else ``runs/<config name>`` when it names no output folder)
    and ``--seed`` applied; ``args.out_dir`` names the folder for the message after an interruption."""
    cfg = _load(args.config)
    if args.out:
        cfg.output.dir = args.out
    elif "output" not in _keys(args.config):
        cfg.output.dir = f"runs/{Path(args.config).stem}"
    if args.seed is not None:
        cfg.seed = args.seed
    args.out_dir = cfg.output.dir
    return cfg


def cmd_evolve(args) -> int:
    from rich.console import Console

    from .workflow.evolve import evolve

    cfg = _config_with_overrides(args)
    res = evolve(cfg, resume=args.resume, progress=not args.quiet, console=Console(stderr=True))
    obs = res["observables"]
    exact = res.get("exact") or {}
    ref = {n: dict(zip((round(t, 9) for t in exact["time"]), exact[n], strict=True)) for n in obs if n in exact}
    label = "t" if res["time"] == "real" else "tau"
    head = f"{label:>8}" + "".join(f"{n:>24}" + (f"{'exact':>10}" if n in ref else "") for n in obs)
    print(head)
    for i, t in enumerate(res["times"]):
        line = f"{t:8.4f}"
        for n, v in obs.items():
            line += f"{v['value'][i]:>14.6f} ± {v['error'][i]:<7.1e}"
            if n in ref:
                x = ref[n].get(round(t, 9))
                line += f"{x:>10.6f}" if x is not None else f"{'':>10}"
        print(line)
    if res.get("max_abs_error"):
        print(
            "max |TDVP - exact|: " + ", ".join(f"{n} {e:.2e}" for n, e in res["max_abs_error"].items() if e is not None)
        )
    if res.get("energy_drift_max_relative") is not None:
        print(f"energy drift: max |E(t) - E(0)| / |E(0)| = {res['energy_drift_max_relative']:.2e}")
    print(f"units: {res['units']}")
    per = f"{res['seconds_per_step']:.4f} s/step, " if res["seconds_per_step"] else ""
    print(
        f"{res['n_steps']} steps ({res['n_rejected']} rejected), {per}{res['seconds_total']:.1f} s total; "
        f"results in {cfg.output.dir}/"
    )
    return 0


def _keys(path) -> set:
    import tomllib

    try:
        return set(tomllib.loads(Path(path).read_text()))
    except Exception:
        return set()


def _times(d) -> str:
    """``(×6)``: the degeneracy of a level (empty when unknown)."""
    return f"   (×{d})" if d is not None else ""


def cmd_ed(args) -> int:
    from .workflow import build, exact_levels

    cfg = _load(args.config)
    problem = build(cfg)
    if args.k < 1:
        raise _user_error("-k must be >= 1")
    if args.spin_flip and not args.sectors:
        raise _user_error("--spin-flip needs --sectors")
    if args.sectors:
        return _ed_sectors(args, cfg, problem)
    energies, degeneracies, method = exact_levels(problem, args.k)
    if energies is None:
        raise _user_error(
            f"{problem.hilbert.describe()} is too large for exact diagonalization "
            "(about 24 spins at total_sz = 0 is the limit)"
        )
    n = problem.lattice.n_sites
    if args.json:
        print(
            json.dumps(
                {
                    "energies": energies,
                    "degeneracies": degeneracies,
                    "n_sites": n,
                    "units": problem.units,
                    "method": method,
                    "sector": problem.hilbert.describe(),
                }
            )
        )
    else:
        print(f"{cfg.hamiltonian.kind} on {problem.lattice.describe()}; {problem.hilbert.describe()}")
        print(f"units: {problem.units}")
        degs = degeneracies or [None] * len(energies)
        for i, (e, d) in enumerate(zip(energies, degs, strict=True)):
            print(f"E_{i} = {e:.12f}   ({e / n:.12f} per site){_times(d)}")
        if degeneracies and max(degeneracies) > 1:
            print("(×d): the level's degeneracy; each copy is listed as its own E_i")
    return 0


def _ed_sectors(args, cfg, problem) -> int:
    from .workflow import sector_table

    rows = sector_table(problem, point_group=args.sectors == "full", spin_flip=args.spin_flip, n_levels=args.k)
    n = problem.lattice.n_sites
    if args.json:
        print(
            json.dumps(
                {
                    "sectors": rows,
                    "n_sites": n,
                    "units": problem.units,
                    "method": "ED per symmetry sector (dense)",
                    "sector": problem.hilbert.describe(),
                }
            )
        )
        return 0
    print(f"{cfg.hamiltonian.kind} on {problem.lattice.describe()}; {problem.hilbert.describe()}")
    print(f"units: {problem.units}")
    head = (
        f"{'k':>14}"
        + (f"{'irrep':>7}" if args.sectors == "full" else "")
        + (f"{'parity':>7}" if args.spin_flip else "")
        + "   energies"
    )
    print(head)
    for r in rows:
        line = (
            f"{r['k_label']:>14}"
            + (f"{r['irrep']:>7}" if args.sectors == "full" else "")
            + (f"{r['spin_parity']:>+7d}" if args.spin_flip else "")
        )
        levels = (
            f"{e:.10f}" + (f"(×{d})" if d > 1 else "") for e, d in zip(r["energies"], r["degeneracies"], strict=True)
        )
        print(line + "   " + "  ".join(levels))
    return 0


def cmd_imaginary_time(args) -> int:
    from rich.console import Console

    from .workflow import imaginary_time

    cfg = _load(args.config)
    if args.dtau is not None:
        if args.dtau <= 0:
            raise _user_error("--dtau must be > 0")
        cfg.imaginary_time.dtau = args.dtau
    if args.n_steps is not None:
        if args.n_steps < 1:
            raise _user_error("--n-steps must be >= 1")
        cfg.imaginary_time.n_steps = args.n_steps
    if args.out:
        cfg.output.dir = args.out
    elif "output" not in _keys(args.config):
        cfg.output.dir = f"runs/{Path(args.config).stem}-imaginary-time"
    res = imaginary_time(cfg, console=Console())
    print(f"units: {res['units']}; results in {cfg.output.dir}/imaginary_time.json and .png")
    return 0


def cmd_plot(args) -> int:
    import os

    from . import io
    from .hamiltonians import units_short

    d = Path(args.run_dir)
    if not d.exists():
        raise _user_error(f"{d}: no such folder (expected an nqs run folder)")
    if not d.is_dir():
        raise _user_error(f"{d} is a file, not a run folder")
    hist = d / "history.csv"
    if not hist.exists():
        raise _user_error(f"{d} has no history.csv: is it an nqs run folder?")
    out = Path(args.output) if args.output else d / "convergence.png"
    if out.is_dir():
        raise _user_error(f"{out} is a folder; give a PNG file path")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK | os.X_OK):
        raise _user_error(f"{out}: its folder {out.parent} does not exist or is not writable")
    rows, note = io.load_history(hist)
    exact, units, title = None, "", str(d)
    if (d / "result.json").exists():
        exact = io.read_json(d / "result.json", "result").get("exact_energy")
        if exact is not None and (isinstance(exact, bool) or not isinstance(exact, int | float)):
            raise io.RunFileError(d / "result.json", f"exact_energy = {exact!r} is not a number")
    if (d / "config.toml").exists():
        kind = io.read_toml(d / "config.toml", "saved config").get("hamiltonian", {})
        kind = kind.get("kind", "") if isinstance(kind, dict) else ""
        units, title = units_short(str(kind)), f"{kind}: {d}"
    if note:
        print(f"nqs: note: {note}", file=sys.stderr)
    if not io.plot_convergence(rows, out, exact=exact, title=title, units=units):
        raise _user_error(f"{hist} has no steps to plot")
    print(out)
    return 0


class _UserError(Exception):
    pass


def cmd_thermal(args) -> int:
    from rich.console import Console

    from .workflow.thermal import thermal

    cfg = _config_with_overrides(args)
    res = thermal(cfg, resume=args.resume, progress=not args.quiet, console=Console(stderr=True))
    exact = "exact_energy_per_site" in res["temperatures"][0]
    print(f"{'T':>8}{'beta':>9}{'E/N':>24}{'C/N':>24}" + (f"{'exact E/N':>12}{'exact C/N':>12}" if exact else ""))
    for r in res["temperatures"]:
        line = (
            f"{r['temperature']:8.4f}{r['beta']:9.4f}{r['energy_per_site']:>14.6f} ± {r['energy_per_site_error']:<7.1e}"
            f"{r['specific_heat_per_site']:>14.6f} ± {r['specific_heat_per_site_error']:<7.1e}"
        )
        if exact:
            line += f"{r['exact_energy_per_site']:12.6f}{r['exact_specific_heat_per_site']:12.6f}"
        print(line)
    print(f"units: {res['units']}; {res['n_steps']} steps, {res['seconds_total']:.1f} s; results in {cfg.output.dir}/")
    return 0


def _user_error(msg):
    return _UserError(msg)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, taken through the same path as Ctrl-C (the run stops between steps; its checkpoint is kept)."""


def _on_sigterm(signum, frame):
    raise _Terminated


def _interrupted(args, err) -> str:
    what = "terminated (SIGTERM)" if isinstance(err, _Terminated) else "interrupted"
    out = getattr(args, "out_dir", None)
    if args.command not in ("run", "evolve", "thermal") or out is None:
        return f"nqs: {what}"
    from .drivers.loop import CHECKPOINT

    if (Path(out) / CHECKPOINT).exists():
        return f"nqs: {what}; the last checkpoint in {out}/ is kept: continue with --resume"
    return f"nqs: {what} before the first checkpoint (output.checkpoint_every); nothing to resume in {out}/"


def main(argv=None) -> int:
    import signal
    import threading

    args = _parser().parse_args(argv)
    from .runtime import configure_cpu

    configure_cpu()  # before the first JAX computation: thread pool, XLA flags, OpenBLAS spin, float64
    from .config import ConfigError
    from .io import RunFileError

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        commands = {
            "run": cmd_run,
            "evolve": cmd_evolve,
            "thermal": cmd_thermal,
            "ed": cmd_ed,
            "plot": cmd_plot,
            "imaginary-time": cmd_imaginary_time,
        }
        return commands[args.command](args)
    except (ConfigError, RunFileError, _UserError) as err:
        print(f"nqs: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        print(_interrupted(args, err), file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(err, _Terminated) else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
