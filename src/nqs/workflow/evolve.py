"""``nqs evolve CONFIG``: a time evolution (TDVP) into a run folder.

1. The start state (``[dynamics] initial`` / ``from_run``): the ground state of ``[hamiltonian]`` found first by
   VMC into ``OUT/prepare`` (a whole ground-state run folder), a product state, random parameters, or an earlier
   run folder's final state.
2. The evolution under ``[hamiltonian]`` with ``[dynamics.hamiltonian]``'s changes, by the TDVP driver
   (:mod:`nqs.drivers.tdvp`) in the one run loop (:func:`nqs.drivers.loop.run`): one ``history.csv`` row per
   attempted integrator step, ``checkpoint.npz`` at every output time, ``--resume`` from it.
3. The exact evolution of the same start state by Krylov methods where the Hilbert space is small enough
   (:mod:`nqs.exact.dynamics`), beside the variational curves in ``result.json`` and ``dynamics.png``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import io
from ..config import Config, ConfigError, OutputConfig, driver_kind, evolution_hamiltonian
from ..drivers.loop import CHECKPOINT, NonFiniteError, run
from ..drivers.tdvp import TDVP, build_tdvp
from ..hamiltonians import units_for, units_short
from ..models.product import PRODUCT_STATES, product_params
from .build import Problem, build, build_hamiltonian
from .run_folder import FINAL_PARAMS, check_output_dir, keep_earlier_run, solve, trajectory_fingerprint

#: ``[dynamics]`` keys a resumed evolution may change: it goes on to a later ``t_end`` with other outputs.
RESUMABLE = ("t_end", "max_steps", "output_every", "exact", "observables")
#: The exact reference is computed up to this many basis states (Krylov evolution of one vector).
EXACT_MAX_STATES = 1 << 20
PREPARE = "prepare"


def _fingerprint(resolved: dict) -> dict[str, str]:
    """What this run folder's checkpoint must match: the config but the keys of :data:`RESUMABLE`."""
    return trajectory_fingerprint(resolved, "dynamics", RESUMABLE)


def _params_of_run(folder: Path, problem: Problem, key) -> object:
    """The parameters (the model's own form) of ``folder``'s final state: ``final_params.npz``, else the
    ``checkpoint.npz`` of an unfinished run."""
    template = problem.driver.init(key)
    if (folder / FINAL_PARAMS).is_file():
        loaded, _ = io.load_checkpoint(folder / FINAL_PARAMS, {"params": template.params})
        params = loaded["params"]
    elif (folder / CHECKPOINT).is_file():
        params = io.load_checkpoint(folder / CHECKPOINT, template)[0].params
    else:
        raise ConfigError(f"dynamics.from_run: {folder} holds no {FINAL_PARAMS} or {CHECKPOINT} of a run")
    return problem.driver.physical_params(params)


def _prepare(cfg: Config, out: Path, resume: bool, progress: bool, console) -> dict:
    """The ground state of ``[hamiltonian]`` by VMC into ``out/prepare`` (reused when a resumed run finished
    it); returns its result."""
    folder = out / PREPARE
    prep = cfg.model_copy(
        update={"output": OutputConfig(dir=str(folder), checkpoint_every=cfg.output.checkpoint_every)}
    )
    if resume and (folder / FINAL_PARAMS).is_file() and (folder / "result.json").is_file():
        console.print(f"  the start state: the ground state in {folder} (already prepared)", markup=False)
        return io.read_json(folder / "result.json", "the preparation's result")
    console.print(f"  the start state: the ground state of [hamiltonian] by VMC, into {folder}", markup=False)
    result = solve(prep, resume=resume and (folder / CHECKPOINT).is_file(), progress=progress, console=console)
    e, rel = result["energy"], result.get("relative_error")
    console.print(
        f"  prepared: E = {e['mean']:.8f} ± {e['error']:.1e}"
        + (f", relative error {rel:.2e} against {result['exact_method']}" if rel is not None else ""),
        markup=False,
    )
    return result


def _exact_reference(problem: Problem, driver: TDVP, params, hamiltonian) -> dict | None:
    """The exact evolution of the start state (``None`` where the Hilbert space is too large)."""
    from ..exact import exact_state
    from ..exact.dynamics import exact_dynamics

    hil = problem.hilbert
    if problem.fermions or hil.n_states > EXACT_MAX_STATES:
        return None
    psi0 = exact_state(driver.model, params, hil)
    return exact_dynamics(
        hamiltonian,
        psi0,
        list(driver.output_times),
        dict(driver.observables),
        hilbert=hil,
        imaginary=not driver.real_time,
    )


def _plot(out: Path, times, series: dict, exact: dict | None, title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(series)
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.2 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        v, e = series[name]
        ax.errorbar(times, v, yerr=e, fmt="o-", ms=3, lw=1, label="TDVP")
        if exact is not None and name in exact:
            ax.plot(exact["time"], exact[name], "k--", lw=1, label="exact")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(xlabel)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def evolve(cfg: Config, resume: bool = False, progress: bool = True, console=None) -> dict:
    """Run ``cfg``'s ``[dynamics]`` into ``cfg.output.dir`` and return the result (also ``result.json``)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    dc = cfg.dynamics
    if dc is None:
        raise ConfigError("nqs evolve needs a [dynamics] section (docs/dynamics.md)")
    t_start = time.perf_counter()
    out = Path(cfg.output.dir)
    check_output_dir(out)
    if driver_kind(cfg) != "vmc":
        raise ConfigError(f"dynamics: model kind '{cfg.model.kind}' has its own driver; nqs evolve evolves VMC models")
    problem = build(cfg)
    if problem.fermions:
        raise ConfigError("dynamics: nqs evolve evolves spin Hamiltonians (its observables are Pauli sums)")
    evo_cfg = cfg.model_copy(update={"hamiltonian": evolution_hamiltonian(cfg)})
    op_evo = build_hamiltonian(evo_cfg, problem.lattice)[0]
    vmc = problem.driver
    try:
        driver = build_tdvp(dc, vmc.model, op_evo, vmc.sampler, problem.lattice, vmc.effective_chunk_size)
    except ValueError as err:
        raise ConfigError(f"dynamics.{err}") from None
    key = jax.random.PRNGKey(cfg.seed)
    resolved = problem.resolved_config()
    fingerprint = _fingerprint(resolved)
    out.mkdir(parents=True, exist_ok=True)
    started = resume and (out / CHECKPOINT).is_file()  # the evolution itself has a checkpoint to go on from
    if resume and not started:
        if not (out / PREPARE).is_dir():
            raise ConfigError(f"--resume: {out} holds no {CHECKPOINT} or preparation of a time evolution")
        console.print(f"  note: {out} holds no checkpoint of the evolution yet: it starts at t = 0", markup=False)
    if not resume:
        kept = keep_earlier_run(out)
        if kept is not None:
            console.print(f"  note: the earlier run in {out} is kept in {kept} (--resume continues a run)")
    io.write_toml(out / "config.toml", resolved)

    # ------------------------------------------------------------------ the start state
    prepared = None
    if dc.from_run is not None:
        params0 = _params_of_run(Path(dc.from_run), problem, key)
        start = f"the final state of {dc.from_run}"
    elif dc.initial == "ground_state":
        prepared = _prepare(cfg, out, resume, progress, console)
        params0 = _params_of_run(out / PREPARE, problem, key)
        start = "the ground state of [hamiltonian] (VMC)"
    elif dc.initial in PRODUCT_STATES:
        try:
            params0 = product_params(vmc.model, dc.initial, problem.lattice, dc.noise, jax.random.fold_in(key, 7))
        except ValueError as err:
            raise ConfigError(f"dynamics.initial: {err}") from None
        start = f"the product state {dc.initial!r} (noise {dc.noise:g})"
    else:
        params0 = vmc.model.init(key)
        start = "the model's random initial parameters"
    state = driver.init(jax.random.fold_in(key, 1), params0)
    if started:
        state, _ = io.load_checkpoint(out / CHECKPOINT, state, fingerprint)
        console.print(f"resuming at t = {float(state.t):.6g} (step {int(state.step)}, {out / CHECKPOINT})")

    kind = "real" if driver.real_time else "imaginary"
    console.print(
        f"nqs evolve {cfg.hamiltonian.kind} on {problem.lattice.describe()}; {problem.hilbert.describe()}"
        f"\n  {driver.describe(state)}\n  start: {start}; evolution: {evo_cfg.hamiltonian.model_dump()}"
        f"\n  units: {units_for(evo_cfg.hamiltonian.kind)}; {kind} time",
        markup=False,
        highlight=False,
    )
    exact = None if dc.exact is False else _exact_reference(problem, driver, params0, op_evo)
    if dc.exact is True and exact is None:
        raise ConfigError("dynamics.exact: the Hilbert space is too large for the exact evolution")

    # ------------------------------------------------------------------ the run loop
    history = io.History(out / "history.csv", driver.history_fields, resume_from=int(state.step) if started else None)
    grid = np.asarray(driver.output_times)
    tol = 1e-9 * max(1.0, dc.t_end)
    meta = {"config": fingerprint}
    times: list[float] = []
    prog = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, disable=not progress
    )

    def save(st):
        io.save_checkpoint(out / CHECKPOINT, st, {**meta, "step": int(st.step), "t": float(st.t)})

    with prog:
        task = prog.add_task("TDVP", total=dc.t_end, completed=float(state.t))

        def callback(st, info, dt):
            history.append({"step": int(st.step) - 1, **driver.history_row(info), "seconds": dt})
            times.append(dt)
            prog.update(task, completed=float(st.t), description=driver.progress_text(info))
            if bool(info["accepted"]) and np.min(np.abs(grid - float(st.t))) < tol:
                save(st)

        try:
            state = run(driver, state, dc.max_steps, callback)
        except NonFiniteError as err:
            if err.state is not None:
                save(err.state)
                kept = f"the last good state (t = {float(err.state.t):.6g}) is saved in {out / CHECKPOINT}"
            else:
                kept = "the start state is not usable"
            raise ConfigError(
                f"{err} — stopped; {kept}. Lower dynamics.dt (or use an adaptive integrator) or raise the "
                "regularisation, then rerun with --resume."
            ) from None
    if float(state.t) < dc.t_end * (1 - 1e-12):  # the loop stopped at max_steps
        save(state)
        raise ConfigError(
            f"dynamics.max_steps: {dc.max_steps} steps reached at t = {float(state.t):.6g} before t_end = "
            f"{dc.t_end:g}; raise it, or dt, and rerun with --resume"
        )
    final, _ = driver.make_measure()(state)

    # ------------------------------------------------------------------ the result
    rows = history.rows
    names = ["energy", *(name for name, _ in driver.observables)]
    series = {n: ([], []) for n in names}
    for t in grid:
        if abs(t - dc.t_end) < tol:
            e, obs = final["energy"], final["observables"]
            vals = {"energy": (float(jnp.real(e.mean)), float(e.error))}
            vals.update({n: (float(jnp.real(o.mean)), float(o.error)) for n, o in obs.items()})
        else:
            row = next((r for r in rows if abs(float(r["t"]) - t) < tol), None)
            if row is None:
                continue
            vals = {n: (float(row[n]), float(row[f"{n}_error"])) for n in names}
        for n in names:
            series[n][0].append(vals[n][0])
            series[n][1].append(vals[n][1])
    grid_done = [float(t) for t in grid if any(abs(float(r["t"]) - t) < tol for r in rows) or abs(t - dc.t_end) < tol]
    result = {
        "time": kind,
        "times": grid_done,
        "start": start,
        "units": units_for(evo_cfg.hamiltonian.kind),
        "hamiltonian": evo_cfg.hamiltonian.model_dump(),
        "lattice": problem.lattice.describe(),
        "model": vmc.model.describe(),
        "estimator": driver.estimator_info(),
        "n_parameters": driver.n_parameters(state),
        "n_steps": int(state.step),
        "n_rejected": int(state.n_rejected),
        "seconds_total": time.perf_counter() - t_start,
        "seconds_per_step": float(np.median(times[1:])) if len(times) > 1 else None,
        "observables": {n: {"value": series[n][0], "error": series[n][1]} for n in names},
    }
    e0 = series["energy"][0][0] if series["energy"][0] else math.nan
    if driver.real_time and series["energy"][0]:
        result["energy_drift_max"] = float(np.max(np.abs(np.asarray(series["energy"][0]) - e0)))
        result["energy_drift_max_relative"] = result["energy_drift_max"] / abs(e0) if e0 else None
    if prepared is not None:
        result["preparation"] = {k: prepared.get(k) for k in ("energy", "exact_energy", "relative_error")}
    if exact is not None:
        ex = {n: [float(x) for x in exact[n]] for n in names if n in exact}
        result["exact"] = {"time": [float(t) for t in exact["time"]], **ex}
        result["max_abs_error"] = {}
        for n in names:
            if n not in exact:
                continue
            ref = dict(zip((round(float(t), 12) for t in exact["time"]), exact[n], strict=True))
            diffs = [
                abs(v - ref[round(t, 12)]) for t, v in zip(grid_done, series[n][0], strict=False) if round(t, 12) in ref
            ]
            result["max_abs_error"][n] = float(max(diffs)) if diffs else None
    io.write_json(out / "result.json", result)
    _plot(
        out / "dynamics.png",
        grid_done,
        series,
        result.get("exact"),
        f"{cfg.hamiltonian.kind}, {problem.lattice.describe()} ({units_short(evo_cfg.hamiltonian.kind)})",
        "t" if driver.real_time else "tau",
    )
    return result
