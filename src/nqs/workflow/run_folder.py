"""A run folder from a config: build, resume, the driver's run loop, the final evaluation, and the files
``config.toml``, ``history.csv``, ``checkpoint.npz``, ``result.json`` and ``convergence.png``."""

from __future__ import annotations

import json
import math
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
    p = cfg.sampler.power
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


def _check_resume(out: Path, resolved: dict) -> None:
    """--resume needs a checkpoint in ``out`` and, where the run's config.toml is there, the same physics."""
    if not (out / CHECKPOINT).exists():
        raise ConfigError(f"--resume: no checkpoint in {out}; run without --resume first")
    saved = out / "config.toml"
    if saved.exists():
        import tomllib

        old = tomllib.loads(saved.read_text())
        mismatched = [
            k
            for k in ("seed", "lattice", "hamiltonian", "model", "sampler")
            if json.dumps(_drop_none(old.get(k)), sort_keys=True)
            != json.dumps(_drop_none(resolved.get(k)), sort_keys=True)
        ]
        if mismatched:
            raise ConfigError(
                f"--resume: the config differs from the run in {out} in [{', '.join(mismatched)}]; "
                "resume with the same config or choose another output.dir"
            )


def _header(problem: Problem, state) -> str:
    cfg, driver = problem.config, problem.driver
    return (
        f"[bold]nqs[/bold] {cfg.hamiltonian.kind} on {problem.lattice.describe()}; "
        f"{problem.hilbert.describe()}\n  {driver.describe(state)}; "
        f"sampler: {cfg.sampler.kind}{_power_note(cfg)}{_threads_note(driver)}\n"
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
    problem = build(cfg)
    driver = problem.driver
    out = Path(cfg.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = problem.resolved_config()

    state = driver.init(jax.random.PRNGKey(cfg.seed))
    if resume:
        _check_resume(out, resolved)
        state, _ = io.load_checkpoint(out / CHECKPOINT, state)
        console.print(f"resuming from step {int(state.step)} ({out / CHECKPOINT})")
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
    try:
        state, averager, times, history = optimize(
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
            meta={"n_parameters": n_params},
        )
    except NonFiniteError as err:
        raise ConfigError(
            f"{err} — stopped; the last good state (step {err.step}) is saved in {out / CHECKPOINT}. "
            "Lower optimizer.learning_rate or raise optimizer.diag_shift, then rerun with --resume."
        ) from None
    final_params = averager.mean(state.params)
    if averager.count:
        console.print(f"  final parameters: the mean over the last {averager.count} steps")
    result = _evaluate(problem, state, final_params, e0, exact_method, n_params, averager.count, times, t_start)
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
    n_eval = cfg.sampler.n_samples_eval or 8 * cfg.sampler.n_samples
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
            "n_samples": int(n_eval),
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
