"""A run folder from a config: build, resume, the driver's run loop, the final evaluation, and the files
``config.toml``, ``history.csv``, ``checkpoint.npz``, ``final_params.npz`` (the parameters the result
evaluates: a time evolution can start from them), ``result.json`` and ``convergence.png``."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import io
from ..config import Config, ConfigError, driver_kind
from ..drivers.loop import CHECKPOINT, NonFiniteError, optimize
from ..hamiltonians import units_short
from ..registry import DRIVERS
from .build import Problem, build
from .evaluate import correlation_ratio, evaluate, lanczos_evaluate
from .references import exact_reference


def _threads_note(vmc) -> str:
    """ " on N threads" where the chains are sampled by several threads (:attr:`nqs.drivers.vmc.VMC.threads_in_use`)."""
    n = vmc.threads_in_use
    return f" on {n} threads" if n > 1 else ""


def _power_note(cfg: Config) -> str:
    p = getattr(cfg.sampler, "power", 2.0)
    return "" if p == 2 else f" (samples |psi|^{p:g}, reweighted by |psi|^{2 - p:g})"


def join_processes(cfg: Config) -> bool:
    """``[parallel] distributed = true``: join the jax.distributed run (before any JAX work)."""
    from .. import parallel

    pc = cfg.parallel
    if not pc.distributed:
        return False
    try:
        return parallel.initialize(pc.coordinator, pc.num_processes, auto=True)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"parallel: {err}") from None


def check_output_dir(path: str | Path, key: str = "output.dir") -> None:
    """Refuse an output folder that cannot be made or written (before any work starts), naming ``key``."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{key}: {out} is a file, not a folder")
    base = out
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ConfigError(f"{key}: {out} cannot be made: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        where = "" if base == out else f" ({base} cannot take new folders)"
        raise ConfigError(f"{key}: {out} is not writable{where}")
    if out.is_dir():
        for name in ("config.toml", "history.csv", CHECKPOINT, "result.json"):
            f = out / name
            if f.is_dir() or (f.exists() and not os.access(f, os.W_OK)):
                raise ConfigError(f"{key}: {f} cannot be written ({'a folder' if f.is_dir() else 'read-only'})")


#: The files of a run in its folder (an earlier run's are kept aside by a fresh run: :func:`keep_earlier_run`).
RUN_FILES = ("config.toml", "history.csv", "result.json", "convergence.png", "params_average.npz", "final_params.npz")
#: The parameters a run's result evaluates (the average over the last steps where there is one).
FINAL_PARAMS = "final_params.npz"


def keep_earlier_run(out: Path) -> Path | None:
    """Move the files of an earlier run in ``out`` (a fresh run into the same folder) into ``out/previous.K``
    (the first K free) so that nothing is overwritten; returns that folder (None: nothing to keep)."""
    files = [out / n for n in RUN_FILES if (out / n).is_file()]
    files += sorted(p for p in out.glob("checkpoint*.npz*") if p.is_file()) if out.is_dir() else []
    if not any(f.name in ("history.csv", "result.json") or f.name.startswith("checkpoint") for f in files):
        return None
    k = 1
    while (out / f"previous.{k}").exists():
        k += 1
    keep = out / f"previous.{k}"
    keep.mkdir()
    for f in files:
        f.rename(keep / f.name)
    return keep


#: The config sections that define the problem a run folder holds: a resume must keep them.
PHYSICS_KEYS = ("seed", "lattice", "hamiltonian", "model", "sampler")


def config_fingerprint(resolved: dict) -> dict[str, str]:
    """A short hash per section of :data:`PHYSICS_KEYS` of the resolved config (kept in each checkpoint, so that
    one from another config is refused on --resume; :func:`nqs.io.load_checkpoint`)."""
    import hashlib

    def digest(value) -> str:
        return hashlib.sha256(json.dumps(_drop_none(value), sort_keys=True, default=str).encode()).hexdigest()[:16]

    return {k: digest(resolved.get(k)) for k in PHYSICS_KEYS}


def trajectory_fingerprint(resolved: dict, section: str, resumable: tuple[str, ...]) -> dict[str, str]:
    """:func:`config_fingerprint` and a hash of ``[section]`` without the keys ``resumable`` (those a resumed
    run may change): what a time evolution's checkpoint must match (``nqs evolve``, ``nqs thermal``)."""
    import hashlib

    kept = {k: v for k, v in (resolved.get(section) or {}).items() if k not in resumable and v is not None}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {**config_fingerprint(resolved), section: digest}


def _check_resume(out: Path, resolved: dict, fields) -> list[int] | None:
    """--resume needs a checkpoint in ``out``, a readable saved config.toml with the same physics where there is
    one, and a readable history.csv with the driver's columns ``fields``.  Returns the history's steps (None
    when there is no history or it is empty)."""
    if not (out / CHECKPOINT).exists():
        raise ConfigError(f"--resume: no checkpoint in {out}; run without --resume first")
    saved, hist = out / "config.toml", out / "history.csv"
    try:
        old = io.read_toml(saved, "saved config") if saved.exists() else None
        mismatched = [
            k
            for k in PHYSICS_KEYS
            if old is not None
            and json.dumps(_drop_none(old.get(k)), sort_keys=True, default=str)
            != json.dumps(_drop_none(resolved.get(k)), sort_keys=True, default=str)
        ]
        if mismatched:
            raise ConfigError(
                f"--resume: the config differs from the run in {out} in [{', '.join(mismatched)}]; "
                "resume with the same config or choose another output.dir"
            )
        rows = io.load_history(hist, fields)[0] if hist.exists() and hist.stat().st_size else None
    except io.RunFileError as err:
        raise ConfigError(f"--resume: {err}; restore it or move it away") from None
    # the accepted steps (a recovery's row repeats the step it redid: nqs.drivers.loop)
    return None if rows is None else [int(r["step"]) for r in rows if not r.get("recovery", 0)]


def _history_note(out: Path, steps: list[int] | None, start: int) -> str | None:
    """A note when the history kept for a resume from step ``start`` does not hold steps 0 … start−1 once each."""
    if start == 0:
        return None
    if steps is None:
        return f"{out / 'history.csv'} is missing or empty: the history restarts at step {start}"
    kept = [k for k in steps if k < start]
    if kept != list(range(start)):
        have = f"{len(set(kept))} distinct of steps 0..{start - 1}"
        return f"{out / 'history.csv'} holds {have} (missing or repeated rows); later rows follow from step {start}"
    return None


#: A start is flagged when its energy variance is below this fraction of (E − E_ref)²: its ground-state
#: weight is then at most this (σ² ≥ w₀ (E − E₀)²), and the gradient, which scales with σ, nearly vanishes.
STUCK_VARIANCE_RATIO = 1e-3


def start_warning(
    energy: float, variance: float, e_inf: float, e_ref: float | None, fermions: bool = False
) -> str | None:
    """A warning when a run cannot learn: a state with almost no energy variance at an energy far from the
    ground state (an excited eigenstate, such as the maximal-spin state E = +L/4 of the Heisenberg chain that
    a complex RBM without the Marshall sign starts next to), else None.

    "Far": more than half way from the reference ``e_ref`` to ``e_inf`` = Tr H / dim, or above ``e_inf``
    when there is no reference.  "Almost no variance": below :data:`STUCK_VARIANCE_RATIO` × (E − E_ref)²
    (E − E∞ without a reference).
    """
    if not all(math.isfinite(x) for x in (energy, variance, e_inf)):
        return None
    if e_ref is not None and math.isfinite(e_ref) and e_inf > e_ref:
        gap, far = energy - e_ref, energy - e_ref > 0.5 * (e_inf - e_ref)
        where = f"far above the reference {e_ref:.6g} (E∞ = Tr H/dim = {e_inf:.6g})"
    else:
        gap, far = energy - e_inf, energy > e_inf
        where = f"above E∞ = Tr H/dim = {e_inf:.6g}"
    if not far or variance >= STUCK_VARIANCE_RATIO * gap**2:
        return None
    fix = (
        "another start (model.init, or a larger model.init_scale)"
        if fermions
        else "model.marshall_sign = true (bipartite lattices), or a random-phase start: a larger "
        "model.init_scale (e.g. 0.1) for a complex model"
    )
    return (
        f"the start has almost no energy variance ({variance:.3g}) at E = {energy:.6g}, {where}: it sits next to "
        "an excited eigenstate, where the gradient vanishes and the run cannot learn. Likely cause: the sign "
        f"structure (the model cannot reach the ground state's signs from here). Fix: {fix}"
    )


def _watch_start(problem: Problem, e0: float | None, console, warnings: list[str]):
    """``watch(step, info)`` for the run loop: the first step checked by :func:`start_warning`; a warning is
    printed and kept in ``warnings``."""

    def check(step: int, info: dict) -> None:
        if warnings or step != 0:
            return
        s = info.get("energy")
        if s is None or not bool(info.get("finite", True)):
            return
        msg = start_warning(
            float(jnp.real(s.mean)), float(s.variance), problem.energy_at_infinite_temperature(), e0, problem.fermions
        )
        if msg:
            warnings.append(msg)
            console.print(f"  [yellow]warning:[/yellow] {msg}", soft_wrap=True)

    return check


def _header(problem: Problem, state) -> str:
    cfg, driver = problem.config, problem.driver
    sampler_kind = problem.resolved.get("sampler", {}).get("kind", cfg.sampler.kind)
    return (
        f"[bold]nqs[/bold] {cfg.hamiltonian.kind} on {problem.lattice.describe()}; "
        f"{problem.hilbert.describe()}\n  {driver.describe(state)}; "
        f"sampler: {sampler_kind}{_power_note(cfg)}{_threads_note(driver)}\n"
        f"  units: {problem.units}"
    )


def run(config, *, resume: bool = False, progress: bool = True, console=None) -> dict:
    """Run a config — a :class:`~nqs.config.Config`, a dict of its sections, or a TOML file's path — into its
    run folder and return the result (as ``nqs run`` does; :func:`solve` with the config validated first)."""
    from pathlib import PurePath

    from ..config import load_config, parse_config

    if isinstance(config, str | PurePath):
        config = load_config(config)
    elif isinstance(config, dict):
        config = parse_config(config)
    return solve(config, resume=resume, progress=progress, console=console)


def solve(cfg: Config, resume: bool = False, progress: bool = True, console=None) -> dict:
    """Run the config's driver into ``cfg.output.dir`` (:func:`nqs.drivers.loop.optimize`), evaluate the
    final state (:mod:`nqs.workflow.evaluate`) and return the result dictionary (also ``result.json``)."""
    from rich.console import Console

    from .. import parallel

    join_processes(cfg)
    main = parallel.is_main_process()
    console = console or Console(stderr=True)
    if not main:
        console, progress = Console(stderr=True, quiet=True), False
    t_start = time.perf_counter()
    out = Path(cfg.output.dir)
    check_output_dir(out)
    problem = build(cfg)
    driver = problem.driver
    resolved = problem.resolved_config()
    steps = _check_resume(out, resolved, driver.history_fields) if resume else None
    out.mkdir(parents=True, exist_ok=True)
    kept = keep_earlier_run(out) if main and not resume else None
    if kept is not None:
        console.print(f"  note: the earlier run in {out} is kept in {kept} (--resume continues a run)")

    state = driver.init(jax.random.PRNGKey(cfg.seed))
    fingerprint, resumed = config_fingerprint(resolved), None
    if resume:
        state, resumed = io.load_checkpoint(out / CHECKPOINT, state, fingerprint)
        console.print(f"resuming from step {int(state.step)} ({out / CHECKPOINT})")
        note = _history_note(out, steps, int(state.step))
        if note:
            console.print(f"  note: {note}")
    if main:
        io.write_toml(out / "config.toml", resolved)

    n_params = driver.n_parameters(state)
    console.print(_header(problem, state))
    notes = DRIVERS[driver_kind(cfg)].facts.get("notes")
    for line in notes(cfg) if notes is not None else ():
        console.print(f"  note: {line}")
    exact_e, exact_method = exact_reference(problem)
    e0 = exact_e[0] if exact_e else None
    if e0 is not None:
        console.print(f"  exact energy ({exact_method}): {e0:.10f}")
    oc = cfg.optimizer
    warnings: list[str] = []
    try:
        opt = optimize(
            driver,
            state,
            oc.n_steps,
            out,
            resume_from=int(state.step) if resume else None,
            checkpoint_every=cfg.output.checkpoint_every,
            average_last=oc.average_last,
            reference=e0,
            console=console,
            progress=progress,
            write=main,
            meta={"n_parameters": n_params, "config": fingerprint},
            recovery=cfg.recovery,
            resumed=resumed,
            watch=_watch_start(problem, e0, console, warnings),
        )
    except NonFiniteError as err:
        if err.state is not None:
            kept, again = f"the last good state (step {err.step}) is saved in {out / CHECKPOINT}", "rerun with --resume"
        else:
            kept, again = "no state of this run was good", "rerun" + (" with --resume" if resume else "")
        raise ConfigError(
            f"{err} — stopped; {kept}. Lower optimizer.learning_rate or raise optimizer.diag_shift, then {again}."
        ) from None
    state, averager, times, history = opt.state, opt.average, opt.seconds, opt.history
    final_params = averager.mean(state.params)
    if averager.count:
        console.print(f"  final parameters: the mean over the last {averager.count} steps")
    io.save_checkpoint(out / FINAL_PARAMS, {"params": final_params}, {"step": int(state.step), "config": fingerprint})
    result = _evaluate(problem, state, final_params, e0, exact_method, n_params, averager.count, times, t_start)
    if warnings:
        result["warnings"] = warnings
    if opt.recoveries:
        result["recoveries"] = {"count": opt.recoveries, "settings": opt.driver.step_settings()}
    if not main:
        return result
    io.write_json(out / "result.json", result)
    io.plot_convergence(
        history.rows,
        out / "convergence.png",
        exact=e0,
        title=f"{cfg.hamiltonian.kind}, {problem.lattice.describe()}",
        units=units_short(cfg.hamiltonian.kind),
    )
    return result


def _evaluate(problem: Problem, state, final_params, e0, exact_method, n_params, n_averaged, times, t_start) -> dict:
    """The result dictionary: the final evaluation of ``final_params`` and the run's facts."""
    cfg, driver = problem.config, problem.driver
    n_sites = problem.lattice.n_sites
    sc = cfg.sampler
    # exact enumeration: every state; Metropolis: n_samples_eval, or 8 x the samples of a step
    n_eval = None if driver.sampler.exact else (sc.n_samples_eval or 8 * sc.n_samples)
    stats, sq_stats, zz_stats, sq, sq_w, eval_sstate = evaluate(problem, final_params, state.sampler_state, n_eval)
    e_inf = problem.energy_at_infinite_temperature()
    energy = float(jnp.real(stats.mean))
    var = float(stats.variance)
    v_score = problem.n_particles * var / (energy - e_inf) ** 2 if energy != e_inf else math.inf
    ratio = correlation_ratio(problem.lattice, sq, sq_w, mcmc=not driver.sampler.exact)
    compiled = times[1:] if len(times) > 1 else times
    result = {
        "energy": {
            "mean": energy,
            "error": float(stats.error),
            "variance": var,
            "per_site": energy / n_sites,
            "tau_corr": float(stats.tau_corr),
            "r_hat": float(stats.r_hat),
            "n_samples": int(problem.hilbert.n_states if n_eval is None else n_eval),
        },
        "v_score": v_score,
        "e_inf": e_inf,
        "exact_energy": e0,
        "exact_method": exact_method,
        "relative_error": abs(energy - e0) / abs(e0) if e0 else None,
        "n_sites": n_sites,
        "n_parameters": n_params,
        "units": problem.units,
        "hamiltonian": cfg.hamiltonian.kind,
        "lattice": problem.lattice.describe(),
        "model": driver.model.describe(),
        "estimator": driver.estimator_info(),
        "solver": driver.solver(state),
        "n_steps": int(state.step),
        "params_averaged_over": n_averaged,
        "seconds_total": time.perf_counter() - t_start,
        "seconds_per_step": float(np.median(compiled)) if compiled else None,
        "seconds_first_step": times[0] if times else None,
        "structure_factor": {
            "q": np.asarray(problem.lattice.momenta()).tolist(),
            "value": [float(jnp.real(s.mean)) for s in sq_stats],
            "error": [float(s.error) for s in sq_stats],
        },
        "correlation_ratio": ratio,
        "sz_sz_from_site0": {
            "value": [float(jnp.real(s.mean)) for s in zz_stats],
            "error": [float(s.error) for s in zz_stats],
        },
    }
    if cfg.evaluation.lanczos_step:
        ls = lanczos_evaluate(
            problem, final_params, eval_sstate, cfg.evaluation.lanczos_samples or n_eval, cfg.evaluation.lanczos_power
        )
        ls["power"] = cfg.evaluation.lanczos_power
        # also: the step's gain (E₁ − E of ψ on its own samples) added to the final evaluation's E of ψ.  The
        # energy on the step's samples alone is the one quoted: tail events move its two parts in opposite
        # directions
        ls["energy_combined"] = energy + ls["gain"]
        ls["error_combined"] = math.hypot(float(stats.error), ls["gain_error"])
        ls["relative_error"] = abs(ls["energy"] - e0) / abs(e0) if e0 else None
        result["lanczos_step"] = ls
        result["seconds_total"] = time.perf_counter() - t_start
    return result


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d
