"""From a validated :class:`~nqs.config.Config` to a finished run folder.

``build`` turns the config into Python objects (the same ones a script would make), ``solve``
runs VMC with checkpoints, evaluates the final state and writes
``config.toml``, ``history.csv``, ``checkpoint.npz``, ``result.json`` and ``convergence.png``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import exact as exact_mod
from . import hamiltonians, io
from .config import Config, ConfigError
from .conventions import units_for, units_short
from .estimators import structure_factor_samples
from .hilbert import SpinHilbert
from .lattice import make_lattice
from .models import RBM, Jastrow, MarshallSign, RBMRealAmpPhase
from .operators.pauli import pauli_terms_from_spec
from .sampling import ExactSampler, ExchangeRule, LocalRule, MetropolisSampler
from .sr import SRConfig
from .stats import statistics
from .vmc import VMC, NonFiniteError, OptimizerConfig, run

CHECKPOINT = "checkpoint.npz"


@dataclass
class Problem:
    config: Config
    lattice: Any
    hilbert: SpinHilbert
    hamiltonian: Any
    vmc: VMC

    @property
    def units(self) -> str:
        return units_for(self.config.hamiltonian.kind)


def build(cfg: Config) -> Problem:
    """Config → lattice, Hilbert space, Hamiltonian, model, sampler, VMC. Raises ConfigError."""
    try:
        lat = make_lattice(cfg.lattice.kind, cfg.lattice.size, cfg.lattice.pbc)
    except ValueError as err:
        raise ConfigError(f"lattice: {err}") from None
    hc = cfg.hamiltonian
    try:
        if hc.kind == "pauli":
            op = hamiltonians.pauli(lat, pauli_terms_from_spec(hc.terms))
        else:
            params = {k: getattr(hc, k) for k in ("J", "h", "Delta", "J1", "J2") if getattr(hc, k) is not None}
            op = hamiltonians.BUILDERS[hc.kind](lat, **params)
    except ValueError as err:
        raise ConfigError(f"hamiltonian: {err}") from None

    sc = cfg.sampler
    total_sz = hc.total_sz
    conserving = hc.kind in hamiltonians.SZ_CONSERVING or (hc.kind == "pauli" and op.conserves_sz())
    if total_sz is not None and not conserving:
        raise ConfigError(
            f"hamiltonian.total_sz: the '{hc.kind}' Hamiltonian does not conserve Sz, so total_sz "
            "cannot be fixed; remove it"
        )
    if sc.kind == "exchange":
        if not conserving:
            raise ConfigError(
                f"sampler.kind: exchange moves conserve Sz but the '{hc.kind}' Hamiltonian does not; "
                "use kind = \"local\""
            )
        if total_sz is None:
            total_sz = 0.0 if lat.n_sites % 2 == 0 else 0.5
            cfg.hamiltonian.total_sz = total_sz
    if sc.kind == "local" and total_sz is not None:
        raise ConfigError("sampler.kind: local spin flips cannot keep total_sz fixed; use kind = \"exchange\"")
    try:
        hil = SpinHilbert(lat.n_sites, total_sz)
    except ValueError as err:
        raise ConfigError(f"hamiltonian.total_sz: {err}") from None

    mc = cfg.model
    if mc.param_dtype != "complex" and mc.kind != "rbm":
        raise ConfigError(f"model.param_dtype: only kind 'rbm' takes it (kind '{mc.kind}' has fixed dtypes)")
    if mc.kind == "rbm":
        model = RBM(lat.n_sites, alpha=mc.alpha, init_scale=mc.init_scale, param_dtype=mc.param_dtype)
    elif mc.kind == "rbm_real":
        model = RBMRealAmpPhase(lat.n_sites, alpha=mc.alpha, init_scale=mc.init_scale)
    else:
        model = Jastrow(lat.n_sites, init_scale=mc.init_scale)
    if mc.marshall_sign:
        if not lat.is_bipartite:
            raise ConfigError(
                f"model.marshall_sign: the Marshall sign rule needs a bipartite lattice; "
                f"{lat.describe()} is not"
            )
        model = MarshallSign(model, tuple(int(c) for c in lat.sublattice))

    if sc.kind == "exact":
        if hil.n_states > 2**22:
            raise ConfigError(
                f"sampler.kind: exact enumeration of {hil.n_states} states is too large; use Monte Carlo"
            )
        sampler = ExactSampler(hil)
    else:
        if sc.n_samples < sc.n_chains:
            raise ConfigError(
                f"sampler.n_samples ({sc.n_samples}) must be at least sampler.n_chains ({sc.n_chains})"
            )
        if sc.kind == "local":
            rule = LocalRule(lat.n_sites)
        else:
            shells = (1, 2) if hc.kind == "j1j2" else (1,)
            pairs = np.concatenate([lat.bonds(s) for s in shells if len(lat.bonds(s))])
            rule = ExchangeRule(tuple(map(tuple, pairs.tolist())))
        sampler = MetropolisSampler(hil, rule, n_chains=sc.n_chains, n_samples=sc.n_samples,
                                    n_discard=sc.n_discard, sweep_size=sc.sweep_size)
    oc = cfg.optimizer
    if oc.diag_shift_min > oc.diag_shift and oc.diag_shift_decay < 1:
        raise ConfigError("optimizer.diag_shift_min must not exceed optimizer.diag_shift")
    opt = OptimizerConfig(
        kind=oc.kind, learning_rate=oc.learning_rate,
        sr=SRConfig(oc.diag_shift, oc.diag_shift_decay, oc.diag_shift_min, oc.solver),
        learning_rate_final=oc.learning_rate_final, n_steps=oc.n_steps,
    )
    vmc = VMC(model, op, sampler, opt, chunk_size=oc.chunk_size)
    return Problem(cfg, lat, hil, op, vmc)


def exact_reference(problem: Problem, k: int = 1) -> tuple[list[float] | None, str | None]:
    """Lowest exact energies when available: ED for small sectors, free fermions for the TFIM chain."""
    cfg, lat = problem.config, problem.lattice
    if problem.hilbert.n_states <= exact_mod.MAX_ED_STATES:
        return [float(x) for x in exact_mod.lowest_energies(problem.hamiltonian, problem.hilbert, k)], "ED"
    hc = cfg.hamiltonian
    if hc.kind == "ising" and lat.kind == "chain" and all(lat.pbc) and k == 1:
        if hc.J >= 0 or lat.n_sites % 2 == 0:
            return [exact_mod.tfim_chain_energy(lat.n_sites, hc.J, hc.h)], "free fermions"
    return None, None


def _stats_dict(s) -> dict:
    return {"mean": float(jnp.real(s.mean)), "error": float(s.error), "variance": float(s.variance),
            "tau_corr": float(s.tau_corr), "r_hat": float(s.r_hat)}


def evaluate(problem: Problem, params, sampler_state, n_samples: int | None):
    """Final estimate of E, Var E, S(q) and ⟨SᶻSᶻ⟩ with frozen parameters."""
    vmc = problem.vmc
    if n_samples is not None and not vmc.sampler.exact:
        vmc = replace(vmc, sampler=replace(vmc.sampler, n_samples=n_samples))
    lat = problem.lattice

    @jax.jit
    def go(params, sstate):
        samples, weights, e_loc, stats, sstate = vmc.estimate(params, sstate)
        sq = structure_factor_samples(samples, lat.positions, lat.momenta())
        zz = samples[..., :1].astype(jnp.float64) * samples.astype(jnp.float64) / 4
        return stats, sq, zz, weights, sstate

    stats, sq, zz, weights, sstate = go(params, sampler_state)
    exact_w = vmc.sampler.exact
    sq_stats = [statistics(sq[..., i], weights if exact_w else None) for i in range(sq.shape[-1])]
    zz_stats = [statistics(zz[..., j], weights if exact_w else None) for j in range(zz.shape[-1])]
    return stats, sq_stats, zz_stats, sstate


def solve(cfg: Config, resume: bool = False, progress: bool = True, console=None) -> dict:
    """Run VMC for ``cfg`` into ``cfg.output.dir`` and return the result dictionary."""
    from rich.console import Console

    console = console or Console(stderr=True)
    t_start = time.perf_counter()
    problem = build(cfg)
    vmc, units = problem.vmc, problem.units
    out = Path(cfg.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT
    resolved = cfg.resolved()

    state = vmc.init(jax.random.PRNGKey(cfg.seed))
    start = 0
    if resume:
        if not ckpt.exists():
            raise ConfigError(f"--resume: no checkpoint in {out}; run without --resume first")
        saved = out / "config.toml"
        if saved.exists():
            import tomllib

            old = tomllib.loads(saved.read_text())
            mismatched = [k for k in ("seed", "lattice", "hamiltonian", "model", "sampler")
                          if json.dumps(_drop_none(old.get(k)), sort_keys=True)
                          != json.dumps(_drop_none(resolved.get(k)), sort_keys=True)]
            if mismatched:
                raise ConfigError(
                    f"--resume: the config differs from the run in {out} in [{', '.join(mismatched)}]; "
                    "resume with the same config or choose another output.dir"
                )
        state, meta = io.load_checkpoint(ckpt, state)
        start = int(state.step)
        console.print(f"resuming from step {start} ({ckpt})")
    io.write_toml(out / "config.toml", resolved)

    n_sites, n_params = problem.lattice.n_sites, vmc.n_parameters(state)
    solver = vmc.solver(state)
    console.print(
        f"[bold]nqs[/bold] {cfg.hamiltonian.kind} on {problem.lattice.describe()}; "
        f"{problem.hilbert.describe()}\n  model: {vmc.model.describe()}, {n_params} parameters; "
        f"sampler: {cfg.sampler.kind}; optimizer: {cfg.optimizer.kind} (solver: {solver})\n"
        f"  units: {units}"
    )
    exact_e, exact_method = exact_reference(problem)
    e0 = exact_e[0] if exact_e else None
    if e0 is not None:
        console.print(f"  exact energy ({exact_method}): {e0:.10f}")

    history = io.History(out / "history.csv", resume_from=start if resume else None)
    step_fn = vmc.make_step(solver)
    every = cfg.output.checkpoint_every
    meta = {"n_parameters": n_params}

    def save(st):
        io.save_checkpoint(ckpt, st, {**meta, "step": int(st.step)})

    n_steps = cfg.optimizer.n_steps
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=not progress)
    times: list[float] = []
    with prog:
        task = prog.add_task("VMC", total=n_steps, completed=start)

        def callback(st, info, dt):
            s = info["energy"]
            k = int(st.step)
            e = float(jnp.real(s.mean))
            history.append({
                "step": k - 1, "energy": e, "energy_error": float(s.error),
                "variance": float(s.variance), "r_hat": float(s.r_hat), "tau_corr": float(s.tau_corr),
                "acceptance": float(info["acceptance"]), "diag_shift": float(info["diag_shift"]),
                "grad_norm": float(info["grad_norm"]), "seconds": dt,
            })
            times.append(dt)
            rel = f"  rel.err {abs(e - e0) / abs(e0):.2e}" if e0 else ""
            prog.update(task, completed=k, description=f"E = {e:.6f} ± {float(s.error):.6f}{rel}")
            if k % every == 0 or k == n_steps:
                save(st)

        try:
            state = run(vmc, state, n_steps, callback=callback, step_fn=step_fn)
        except NonFiniteError as err:
            save(err.state)
            raise ConfigError(
                f"{err} — stopped; the last good state (step {err.step}) is saved in {ckpt}. "
                "Lower optimizer.learning_rate or raise optimizer.diag_shift, then rerun with --resume."
            ) from None
    save(state)

    n_eval = cfg.sampler.n_samples_eval or 8 * cfg.sampler.n_samples
    stats, sq_stats, zz_stats, _ = evaluate(problem, state.params, state.sampler_state, n_eval)
    e_inf = problem.hamiltonian.trace()
    energy = float(jnp.real(stats.mean))
    var = float(stats.variance)
    v_score = n_sites * var / (energy - e_inf) ** 2 if energy != e_inf else math.inf
    compiled = times[1:] if len(times) > 1 else times
    result = {
        "energy": {"mean": energy, "error": float(stats.error), "variance": var,
                   "per_site": energy / n_sites, "tau_corr": float(stats.tau_corr),
                   "r_hat": float(stats.r_hat), "n_samples": int(n_eval)},
        "v_score": v_score,
        "e_inf": e_inf,
        "exact_energy": e0,
        "exact_method": exact_method,
        "relative_error": abs(energy - e0) / abs(e0) if e0 else None,
        "n_sites": n_sites,
        "n_parameters": n_params,
        "units": units,
        "hamiltonian": cfg.hamiltonian.kind,
        "lattice": problem.lattice.describe(),
        "model": vmc.model.describe(),
        "solver": solver,
        "n_steps": int(state.step),
        "seconds_total": time.perf_counter() - t_start,
        "seconds_per_step": float(np.median(compiled)) if compiled else None,
        "seconds_first_step": times[0] if times else None,
        "structure_factor": {
            "q": np.asarray(problem.lattice.momenta()).tolist(),
            "value": [float(jnp.real(s.mean)) for s in sq_stats],
            "error": [float(s.error) for s in sq_stats],
        },
        "sz_sz_from_site0": {
            "value": [float(jnp.real(s.mean)) for s in zz_stats],
            "error": [float(s.error) for s in zz_stats],
        },
    }
    io.write_json(out / "result.json", result)
    io.plot_convergence(history.rows, out / "convergence.png", exact=e0,
                        title=f"{cfg.hamiltonian.kind}, {problem.lattice.describe()}",
                          units=units_short(cfg.hamiltonian.kind))
    return result


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def imaginary_time(cfg: Config, console=None) -> dict:
    """Energies of the exactly constructed DBM e^{−nδτH}ψ0 for n = 1…n_steps (TFIM from |+…+⟩,
    Heisenberg from Néel), beside ⟨H⟩ of the exact e^{−τH}ψ0 and E0 when the lattice is small.

    Writes ``imaginary_time.json`` and ``imaginary_time.png`` into ``output.dir``.
    """
    from . import imaginary_time as it

    hc, ic = cfg.hamiltonian, cfg.imaginary_time
    if hc.kind not in ("ising", "heisenberg"):
        raise ConfigError(f"hamiltonian.kind: the exact DBM construction exists for 'ising' and 'heisenberg', "
                          f"not '{hc.kind}'")
    if hc.total_sz is not None:
        raise ConfigError("hamiltonian.total_sz: the imaginary-time construction works in the full spin space; "
                          "remove total_sz")
    try:
        lat = make_lattice(cfg.lattice.kind, cfg.lattice.size, cfg.lattice.pbc)
    except ValueError as err:
        raise ConfigError(f"lattice: {err}") from None
    n = lat.n_sites
    if hc.kind == "ising":
        if hc.h == 0:
            raise ConfigError("hamiltonian.h: the construction needs a transverse field h != 0")
        op = hamiltonians.ising(lat, hc.J, hc.h)
    else:
        if not lat.is_bipartite:
            raise ConfigError("lattice: the Heisenberg construction starts from the Néel state and needs a "
                              "bipartite lattice")
        op = hamiltonians.heisenberg(lat, hc.J)
    method = ic.method if ic.method != "auto" else ("exact" if n <= 12 else "mc")
    hil = SpinHilbert(n)
    e_tau, e0 = None, None
    if n <= 14:
        if hc.kind == "ising":
            vec0 = np.ones(2**n)
        else:
            vec0 = np.zeros(2**n)
            vec0[int(hil.states_to_codes(it.neel_state(lat)[None, :])[0])] = 1.0
        e_tau = it.exact_tau_energy(op, vec0, [k * ic.dtau for k in range(1, ic.n_steps + 1)])
    if hil.n_states <= exact_mod.MAX_ED_STATES or (hc.kind == "heisenberg" and n <= 24):
        sector = hil if hc.kind == "ising" else SpinHilbert(n, 0.0 if n % 2 == 0 else 0.5)
        e0 = float(exact_mod.lowest_energies(op, sector)[0])
    elif hc.kind == "ising" and lat.kind == "chain" and all(lat.pbc):
        e0 = exact_mod.tfim_chain_energy(n, hc.J, hc.h)
    key = jax.random.PRNGKey(cfg.seed)
    rows = []
    for k in range(1, ic.n_steps + 1):
        if hc.kind == "ising":
            dbm, params = it.tfim_dbm(lat, hc.J, hc.h, ic.dtau, k)
        else:
            dbm, params = it.heisenberg_dbm(lat, hc.J, ic.dtau, k)
        if method == "exact":
            e, err = it.exact_energy(dbm, params, op, hil), 0.0
        else:
            if hc.kind == "heisenberg":
                raise ConfigError("imaginary_time.method: Monte Carlo of the Heisenberg DBM needs loop moves "
                                  "(not available yet); use method = \"exact\" on a small lattice")
            key, sub = jax.random.split(key)
            st = it.mc_energy(dbm, params, op, sub, n_chains=ic.n_chains, n_sweeps=ic.n_sweeps,
                              n_discard=ic.n_discard)
            e, err = float(jnp.real(st.mean)), float(st.error)
        row = {"n": k, "tau": k * ic.dtau, "e_dbm": e, "e_dbm_error": err,
               "e_exact_tau": None if e_tau is None else float(e_tau[k - 1]), "e0": e0,
               "n_hidden": dbm.n_hidden, "n_deep": dbm.n_deep}
        rows.append(row)
        if console is not None:
            ex = "" if row["e_exact_tau"] is None else f"   exact <H>(tau) {row['e_exact_tau']:.6f}"
            console.print(f"tau = {row['tau']:.3f}  E_DBM = {e:.6f} ± {err:.6f}{ex}   "
                          f"({dbm.n_hidden} hidden, {dbm.n_deep} deep units)")
    out = Path(cfg.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"hamiltonian": hc.kind, "lattice": lat.describe(), "units": units_for(hc.kind), "method": method,
              "dtau": ic.dtau, "e0": e0, "rows": rows}
    io.write_json(out / "imaginary_time.json", result)
    _plot_imaginary_time(rows, e0, out / "imaginary_time.png", f"{hc.kind}, {lat.describe()}, δτ = {ic.dtau:g}",
                         units_short(hc.kind))
    return result


def _plot_imaginary_time(rows, e0, path, title, units):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tau = [r["tau"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(tau, [r["e_dbm"] for r in rows], yerr=[r["e_dbm_error"] for r in rows], fmt="o-", ms=4,
                label="constructed DBM (Trotterized)")
    if rows and rows[0]["e_exact_tau"] is not None:
        ax.plot(tau, [r["e_exact_tau"] for r in rows], "s--", ms=4,
                label=r"ED: $\langle H\rangle$ of $e^{-\tau H}\psi_0$")
    if e0 is not None:
        ax.axhline(e0, color="k", lw=1, ls=":", label=f"E0 = {e0:.6f}")
    ax.set_xlabel(r"$\tau$")
    ax.set_ylabel(f"energy ({units} units)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
