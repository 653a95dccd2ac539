"""``nqs thermal CONFIG``: energy and specific heat at a grid of temperatures by purification.

1. The start: the Bell pairs |Φ⟩ on 2N spins written exactly as a complex RBM on 2N visible units
   (:func:`nqs.models.product.bell_pairs_params`; ``[model]``: ``kind = "rbm"``, its ``alpha`` ≥ 0.5 per
   visible unit, so M = α·2N hidden units), the β = 0 purification of the system's infinite-temperature state;
   or (``kind = "rbm_symmetric"``, ``alpha`` filters) the RBM whose filters are copied over the translations of
   system and ancillas together (:mod:`nqs.models.purified`), exact with one filter, whose exact sums run over
   one state per translation orbit of the doubled basis.
   The ancillas are written in σˣ (:mod:`nqs.conventions`; ``[thermal] ancilla``): every amplitude of |Φ⟩ then
   has the same magnitude, so chains of single flips sample it and every term of H moves the flow.
2. Imaginary-time TDVP (:class:`~nqs.drivers.tdvp.TDVP`) under H ⊗ 1 (:func:`nqs.exact.dynamics.doubled`)
   from τ = 0 to β_max/2, landing on τ = β/2 for every β of ``[thermal]``'s grid, where it measures
   E = ⟨H⟩_β and C = β² Var(E_loc) (per site, with error bars for Monte Carlo).  Sums: plain exact
   enumeration, exact sums in chunks (:class:`~nqs.drivers.tdvp_exact.ChunkedExactTDVP`), or Metropolis chains
   (``[sampler]``'s chain settings) of single flips on the 2N sites — with ``ancilla = "z"`` also joint pair
   flips (:class:`~nqs.sampling.pairs.PairRule`), since there a single flip from the start opens a pair of
   weight 0.  ``result.json`` reports the largest TDVP residual (``residual_max``) and a note is printed when
   it exceeds 0.5: the RBM then does not follow the flow (with ``ancilla = "z"`` the exchange of the
   Heisenberg model opens two pairs at once, at second order in the pair units' parameters, and the flow
   stays at the start; with ``"x"`` the term σʸσʸ of the exchange is a four-spin term the RBM reaches only as
   its parameters grow).
3. ``result.json`` (T, β, E/N, C/N with errors, the exact values where N ≤ 14 from the spectrum,
   :func:`nqs.exact.dynamics.thermal_averages`), ``history.csv`` and ``thermal.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import io
from ..config import Config, ConfigError
from ..drivers.loop import CHECKPOINT, NonFiniteError, run
from ..drivers.tdvp import TDVP
from ..drivers.tdvp_exact import ChunkedExactTDVP
from ..drivers.thermal import AUTO_EXACT_STATES
from ..exact.dynamics import MAX_THERMAL_STATES, doubled, thermal_averages
from ..hamiltonians import is_fermionic, units_for, units_short
from ..hilbert import SpinHilbert
from ..models import RBM, SymmetricRBM
from ..models.product import bell_pairs_params
from ..models.purified import OrbitBiasRBM, bell_pairs_symmetric_params, doubled_translations
from ..registry import HAMILTONIANS
from ..sampling import ExactSampler
from ..sampling.exact import orbit_representatives
from ..sampling.kinds import metropolis_sampler
from ..sampling.metropolis import LocalRule
from ..sampling.pairs import PairRule
from ..stats import statistics
from .lattice import build_lattice
from .run_folder import check_output_dir, keep_earlier_run, trajectory_fingerprint

#: ``[thermal]`` keys a resumed run may change: it goes on to lower temperatures.
RESUMABLE = ("temperatures", "betas", "max_steps", "exact")


def _fingerprint(resolved: dict) -> dict[str, str]:
    """What this run folder's checkpoint must match: the config but the keys of :data:`RESUMABLE`."""
    return trajectory_fingerprint(resolved, "thermal", RESUMABLE)


def _system(cfg: Config):
    """``(lattice, H on the system's full space, conserves S^z)``; ConfigError for what purification cannot take."""
    hc = cfg.hamiltonian
    if is_fermionic(hc.kind):
        raise ConfigError(f"hamiltonian.kind: nqs thermal purifies spin Hamiltonians, not '{hc.kind}'")
    if getattr(hc, "total_sz", None) is not None:
        raise ConfigError("hamiltonian.total_sz: thermal averages run over every S^z sector; remove total_sz")
    lat = build_lattice(cfg)
    try:
        entry = HAMILTONIANS[hc.kind]
        op = entry.build(lat, **hc.parameters())
    except ValueError as err:
        raise ConfigError(f"hamiltonian: {err}") from None
    conserving = entry.facts.get("conserves_sz")
    return lat, op, bool(op.conserves_sz() if conserving is None else conserving)


def _model(cfg: Config, lat) -> RBM | OrbitBiasRBM:
    """The plain complex RBM on the 2N sites (``kind = "rbm"``) or the RBM whose filters are copied over the
    translations of system and ancillas together (``kind = "rbm_symmetric"``, :func:`doubled_translations`)."""
    mc, n = cfg.model, lat.n_sites
    if mc.kind == "rbm_symmetric":
        if mc.symmetry is not None or mc.marshall_sign:
            raise ConfigError("model: nqs thermal's symmetric RBM takes no symmetry section or Marshall sign")
        group = doubled_translations(lat)
        if len(group) == 1:
            raise ConfigError('model.kind: "rbm_symmetric" needs a lattice with translations (periodic)')
        return OrbitBiasRBM(group, alpha=int(mc.alpha), init_scale=mc.init_scale)
    if mc.kind != "rbm":
        raise ConfigError(
            f"model.kind: nqs thermal writes the purification as an RBM ('rbm' or 'rbm_symmetric'), not '{mc.kind}'"
        )
    if mc.symmetry is not None or mc.shared_weights or mc.marshall_sign:
        raise ConfigError("model: nqs thermal takes a plain RBM (no symmetry, shared weights or Marshall sign)")
    if mc.param_dtype == "real":
        raise ConfigError('model.param_dtype: the purified RBM needs complex parameters ("complex" or "auto")')
    if mc.alpha * 2 * n < n - 1e-9:
        raise ConfigError(f"model.alpha: {mc.alpha:g} gives fewer hidden units than pairs; use alpha >= 0.5")
    return RBM(2 * n, alpha=mc.alpha, init_scale=mc.init_scale, param_dtype="complex")


def _orbits(model, op, n: int, exact_sums: bool):
    """The doubled basis's orbit representatives under the symmetric model's group when ``exact_sums`` (one
    state per orbit, :func:`~nqs.sampling.exact.orbit_representatives`), else None; None for the plain RBM.
    ConfigError when H does not commute with the system's translations (checked up to 14 sites)."""
    if not isinstance(model, SymmetricRBM):
        return None
    if (1 << n) <= MAX_THERMAL_STATES:
        hil_n = SpinHilbert(n)
        system = np.asarray(model.group.perms)[:, :n]
        if orbit_representatives(hil_n, system, matrix=op.to_sparse(hil_n).tocsr()) is None:
            raise ConfigError('model.kind: "rbm_symmetric" needs a Hamiltonian invariant under the translations')
    return orbit_representatives(SpinHilbert(2 * n), np.asarray(model.group.perms)) if exact_sums else None


#: Exact sums over the doubled space run up to this many basis states.
MAX_EXACT_SUM_STATES = 1 << 24


def _sums(cfg: Config, n: int) -> str:
    """The sums ``[thermal] sampler`` asks for on 2N spins: "exact", "exact_chunked" or "metropolis" ("auto":
    exact up to :data:`~nqs.drivers.thermal.AUTO_EXACT_STATES` states, Metropolis above)."""
    kind = cfg.thermal.sampler
    if kind == "auto":
        return "exact" if 4**n <= AUTO_EXACT_STATES else "metropolis"
    return kind


def _sampler(cfg: Config, kind: str, n: int, lat, conserving: bool, orbits=None):
    """The sampler of the sums ``kind`` (:func:`_sums`) on the doubled space of 2N spins (exact sums over
    ``orbits``' representatives when given)."""
    tc = cfg.thermal
    dim = 1 << (2 * n)
    hil = SpinHilbert(2 * n)
    if kind in ("exact", "exact_chunked"):
        if dim > MAX_EXACT_SUM_STATES:
            raise ConfigError(f"thermal.sampler: exact sums over {dim} states are too many; use 'metropolis'")
        return ExactSampler(hil, orbits)
    sc = cfg.sampler
    if not hasattr(sc, "n_chains"):
        raise ConfigError("thermal.sampler: 'metropolis' takes its chains from [sampler], which has no n_chains here")
    if tc.ancilla == "x":
        rule = LocalRule(2 * n)
    else:
        bonds = tuple(map(tuple, np.asarray(lat.bonds(1)).tolist())) if conserving else ()
        rule = PairRule(n, bonds, conserves_sz=conserving)
    return metropolis_sampler(sc, hil, rule)


def _measure_fn(driver: TDVP):
    """``measure(state) -> (E, E error, Var, Var error)`` of the state (jitted; errors 0 for exact sums)."""
    if isinstance(driver, ChunkedExactTDVP):

        def measure(state):
            m = driver._moments(state.params, state.sampler_state.sigma)
            s = driver._energy_stats(m)
            z = jnp.zeros(())
            return jnp.real(s.mean), z, s.variance, z
    else:
        vmc = driver._vmc
        mcmc = not driver.sampler.exact

        def measure(state):
            _, weights, e_loc, s, _ = vmc.estimate(state.params, state.sampler_state)
            dev = jnp.abs(e_loc - s.mean) ** 2
            v = statistics(dev, None if mcmc else weights)
            return jnp.real(s.mean), s.error, v.mean, v.error

    return jax.jit(measure)


def _plot(path: Path, T, e, ee, c, ce, exact_curve: dict | None, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    for ax, v, err, name, key in (
        (axes[0], e, ee, "E / N", "energy_per_site"),
        (axes[1], c, ce, "C / N", "specific_heat_per_site"),
    ):
        if exact_curve is not None:
            ax.plot(exact_curve["temperature"], exact_curve[key], "k-", lw=1, label="exact")
        ax.errorbar(T, v, yerr=err, fmt="o", ms=4, label="purified TDVP")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    axes[1].set_xlabel("T")
    axes[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def thermal(cfg: Config, resume: bool = False, progress: bool = True, console=None) -> dict:
    """Run ``cfg``'s ``[thermal]`` into ``cfg.output.dir`` and return the result (also ``result.json``).

    ``checkpoint.npz`` holds the state at every τ = β/2 of the grid with the measurements made so far;
    ``resume`` goes on from it (also to a grid with lower temperatures)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    tc = cfg.thermal
    if tc is None:
        raise ConfigError("nqs thermal needs a [thermal] section with temperatures = [...] or betas = [...]")
    t_start = time.perf_counter()
    out = Path(cfg.output.dir)
    check_output_dir(out)
    lat, op, conserving = _system(cfg)
    n = lat.n_sites
    temps, betas = tc.grid()
    taus = sorted({b / 2 for b in betas})
    model = _model(cfg, lat)
    kind = _sums(cfg, n)
    exact_sums = kind != "metropolis" and 4**n <= MAX_EXACT_SUM_STATES
    sampler = _sampler(cfg, kind, n, lat, conserving, _orbits(model, op, n, exact_sums))
    key = jax.random.PRNGKey(cfg.seed)
    try:
        start = bell_pairs_symmetric_params if isinstance(model, SymmetricRBM) else bell_pairs_params
        params0 = start(model, n, tc.noise, jax.random.fold_in(key, 7), tc.ancilla)
        common = dict(
            t_end=taus[-1],
            output_times=tuple(taus),
            real_time=False,
            integrator=tc.integrator,
            dt=tc.dt,
            rtol=tc.rtol,
            atol=tc.atol,
            dt_min=tc.dt_min,
            dt_max=taus[-1],
            solver=tc.solver(),
        )
        if kind == "exact_chunked":
            chunk = min(tc.chunk_states, sampler.n_samples)
            driver = ChunkedExactTDVP(model, doubled(op, n), sampler, chunk_states=chunk, **common)
        else:
            driver = TDVP(model, doubled(op, n), sampler, **common)
    except ValueError as err:
        raise ConfigError(f"thermal: {err}") from None
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT
    if resume and not ckpt.is_file():
        raise ConfigError(f"--resume: no {CHECKPOINT} in {out}; run without --resume first")
    if not resume:
        kept = keep_earlier_run(out)
        if kept is not None:
            console.print(f"  note: the earlier run in {out} is kept in {kept} (--resume goes on)", markup=False)
    resolved = cfg.resolved()
    fingerprint = _fingerprint(resolved)
    io.write_toml(out / "config.toml", resolved)
    state = driver.init(jax.random.fold_in(key, 1), params0)
    measured: dict[float, tuple] = {}
    if resume:
        state, meta = io.load_checkpoint(ckpt, state, fingerprint)
        measured = {float(k): tuple(v) for k, v in (meta.get("measured") or {}).items()}
        console.print(f"resuming at tau = {float(state.t):.6g} (step {int(state.step)}, {ckpt})", markup=False)
        tol = 1e-9 * max(1.0, taus[-1])
        passed = [b for b in betas if b / 2 < float(state.t) - tol and not any(abs(b / 2 - m) < tol for m in measured)]
        if passed:
            raise ConfigError(
                f"--resume: the checkpoint is at tau = {float(state.t):.6g}, past beta/2 of beta = {passed[0]:g}, "
                "which the interrupted run did not measure; run that temperature without --resume"
            )
    console.print(
        f"[bold]nqs thermal[/bold] {cfg.hamiltonian.kind} on {lat.describe()}: purification on {2 * n} spins "
        f"(ancillas in sigma^{tc.ancilla}, {kind} sums)\n  {driver.describe(state)}\n"
        f"  units: {units_for(cfg.hamiltonian.kind)}"
    )

    measure = _measure_fn(driver)
    history = io.History(out / "history.csv", driver.history_fields, resume_from=int(state.step) if resume else None)
    prog = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, disable=not progress
    )
    tol = 1e-9 * max(1.0, taus[-1])

    def record(st):
        t = float(st.t)
        hit = [tau for tau in taus if abs(tau - t) < tol]
        if hit and not any(abs(hit[0] - m) < tol for m in measured):
            measured[hit[0]] = tuple(float(x) for x in measure(st))
            save(st)

    def save(st):
        table = {repr(k): list(v) for k, v in measured.items()}
        io.save_checkpoint(ckpt, st, {"config": fingerprint, "step": int(st.step), "t": float(st.t), "measured": table})

    with prog:
        task = prog.add_task("imaginary-time TDVP", total=taus[-1], completed=float(state.t))

        def callback(st, info, dt):
            history.append({"step": int(st.step) - 1, **driver.history_row(info), "seconds": dt})
            prog.update(task, completed=float(st.t), description=f"tau = {float(st.t):.4f}")
            if bool(info["accepted"]):
                record(st)

        try:
            state = run(driver, state, tc.max_steps, callback)
        except NonFiniteError as err:
            kept = ""
            if err.state is not None:
                save(err.state)
                kept = f"; the last good state (tau = {float(err.state.t):.6g}) is saved in {ckpt}"
            raise ConfigError(
                f"{err} — stopped{kept}. Lower thermal.dt (or use an adaptive integrator) or raise "
                "thermal.rcond_smooth, then rerun with --resume"
            ) from None
    if float(state.t) < taus[-1] * (1 - 1e-12):
        save(state)
        raise ConfigError(
            f"thermal.max_steps: {tc.max_steps} steps reached at tau = {float(state.t):.6g} before beta/2 = "
            f"{taus[-1]:g}; raise it, or dt"
        )
    record(state)

    residual_max = max((float(r["residual"]) for r in history.rows), default=0.0)
    if residual_max > 0.5:
        console.print(
            f"  note: the TDVP residual reached {residual_max:.2f}: the RBM does not follow the imaginary-time flow "
            "(see nqs.workflow.thermal); the energies are not to be trusted"
        )
    rows = []
    for T, b in zip(temps, betas, strict=True):
        e, e_err, var, var_err = measured[min(measured, key=lambda tau: abs(tau - b / 2))]
        rows.append(
            {
                "temperature": T,
                "beta": b,
                "energy_per_site": e / n,
                "energy_per_site_error": e_err / n,
                "specific_heat_per_site": b * b * var / n,
                "specific_heat_per_site_error": b * b * var_err / n,
            }
        )
    do_exact = tc.exact if tc.exact is not None else n <= 14
    if do_exact and (1 << n) > MAX_THERMAL_STATES:
        raise ConfigError(f"thermal.exact: the spectrum of {n} sites is too large (limit 14 sites)")
    exact_curve = None
    if do_exact:
        ex = thermal_averages(op, None, temps)
        for r, e, c in zip(rows, ex["energy_per_site"], ex["specific_heat_per_site"], strict=True):
            r["exact_energy_per_site"] = float(e)
            r["exact_specific_heat_per_site"] = float(c)
            r["energy_relative_error"] = abs(r["energy_per_site"] - e) / abs(e) if e else None
            r["specific_heat_relative_error"] = abs(r["specific_heat_per_site"] - c) / abs(c) if c else None
        t_lo, t_hi = min(temps), max(temps)
        exact_curve = thermal_averages(op, None, np.geomspace(0.8 * t_lo, 1.25 * t_hi, 120))
    result = {
        "hamiltonian": cfg.hamiltonian.model_dump(),
        "lattice": lat.describe(),
        "units": units_for(cfg.hamiltonian.kind),
        "n_sites": n,
        "model": model.describe(),
        "estimator": {**driver.estimator_info(), "sums": kind, "ancilla": tc.ancilla},
        "n_parameters": driver.n_parameters(state),
        "n_steps": int(state.step),
        "n_rejected": int(state.n_rejected),
        "residual_max": residual_max,
        "seconds_total": time.perf_counter() - t_start,
        "temperatures": rows,
    }
    io.write_json(out / "result.json", result)
    order = np.argsort(temps)
    pick = [
        [r[k] for r in (rows[i] for i in order)]
        for k in (
            "temperature",
            "energy_per_site",
            "energy_per_site_error",
            "specific_heat_per_site",
            "specific_heat_per_site_error",
        )
    ]
    _plot(
        out / "thermal.png",
        *pick,
        exact_curve,
        f"{cfg.hamiltonian.kind}, {lat.describe()} ({units_short(cfg.hamiltonian.kind)})",
    )
    return result
