"""The one run loop every driver shares: steps, progress bar, history, checkpoints, resume, parameter
averaging, and the recovery from a bad step (docs/recovery.md).

:func:`run` is the bare loop (a Python ``while`` around the driver's jitted step; it times, judges each step
and calls back).  :func:`optimize` adds what a run folder needs: ``history.csv`` rows, ``checkpoint.npz`` every
``checkpoint_every`` steps and at the end, the running parameter average and a progress bar.  Both take any
:class:`~nqs.drivers.base.Driver`.

A step ``step(state_k) -> (state_k+1, info_k)`` samples the state it starts from: ``info_k["energy"]`` is the
energy of ``state_k``, so ``state_k+1`` is only known to be good once the next step has evaluated it.  The loop
accepts a state when that evaluation passes :func:`bad_step`, and passes it to the callback (which writes its
history row and any checkpoint) once the state after it is accepted too; a bad step goes back to the last
accepted state and is retried with smaller steps (:func:`run`; docs/recovery.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field

from .. import io
from ..registry import Section
from .base import Driver

CHECKPOINT = "checkpoint.npz"
AVERAGE = "params_average.npz"

#: What a recovery multiplies the learning rate by (and divides the SR diagonal shift by).
SOFTEN_FACTOR = 0.5
#: The jump tests' floor on the error bar, relative to the energy (and to the spread of the local energies)
#: of the last good state: states with almost no variance do not raise false alarms.
JUMP_FLOOR = 1e-2
#: A step whose local energies spread (standard deviation) this many times more than the last good state's
#: (or than its |energy|, whichever is larger) is bad: how a blow-up towards −∞ shows while still finite.
SPREAD_JUMP = 100.0
#: Chains whose R̂ is above this no longer mix (stuck chains give R̂ = inf): a step that takes R̂ from below it
#: to above is bad.
R_HAT_BROKEN = 10.0
#: The rise test's threshold (in error bars) for the first state a retried step makes: a retry has to do no
#: harm, or the step is retried again with smaller steps still.
RETRY_THRESHOLD = 1.0
#: Above this R̂ the chains mix too little for their error bar to be trusted in the rise test (chains that
#: sit in different places report a large one); the last good state's is used instead.  A rare large local
#: energy (a heavy tail) raises the error bar with the mean but leaves R̂ near 1.
R_HAT_TRUSTED = 2.0


class RecoveryConfig(Section):
    """``[recovery]``: what the run loop does with a bad step (docs/recovery.md).

    A step is bad when the energy or the update is NaN or inf, when the energy rose by more than
    ``jump_threshold`` error bars, when the Markov chains stopped mixing (R̂ above 10), when the spread of the
    local energies grew a hundredfold, or when the energy fell that many error bars below a known exact
    ground-state energy.  The loop then goes back to the last
    good state, halves the learning rate (an SR diagonal shift of zero becomes 1e-2) for the rest of the run and
    retries, at most ``max_retries`` times in the whole run; after that the run stops with the last good
    state in its checkpoint."""

    max_retries: int = Field(
        30,
        ge=0,
        strict=True,
        description="recoveries allowed in the whole run; 0: a bad step stops the run (its last good state is kept)",
    )
    jump_threshold: float = Field(
        4.0,
        ge=0,
        strict=True,
        allow_inf_nan=False,
        description="a rise of the energy by more than this many error bars is a bad step; 0: only NaN/inf are "
        "(no jump tests at all)",
    )


class NonFiniteError(RuntimeError):
    """A bad step (NaN/inf, or an energy jump) that the loop could not recover from; ``state`` is the last good
    state, ``step`` its step (both None when not even the initial state was good), ``recoveries`` the
    recoveries made until then."""

    def __init__(self, step: int | None, state: Any, message: str, recoveries: int = 0):
        super().__init__(message)
        self.step = step
        self.state = state
        self.recoveries = recoveries


class Evaluation(NamedTuple):
    """The energy statistics of one state, as floats (from a step's ``info["energy"]``)."""

    mean: float
    error: float
    variance: float
    r_hat: float


def evaluation(info: dict) -> Evaluation | None:
    """``info["energy"]`` as floats; None for a driver whose steps report no energy."""
    s = info.get("energy")
    if s is None or not hasattr(s, "mean"):
        return None
    return Evaluation(
        float(jnp.real(s.mean)),
        float(getattr(s, "error", 0.0)),
        float(getattr(s, "variance", 0.0)),
        float(getattr(s, "r_hat", math.nan)),
    )


def bad_step(
    ev: Evaluation | None,
    finite: bool,
    previous: Evaluation | None,
    threshold: float,
    step: int,
    reference: float | None = None,
) -> tuple[str | None, bool]:
    """What is wrong with a step whose evaluation of its starting state is ``ev`` (None: nothing), and whether
    that state itself is bad (else only the step's update is: ``finite`` false with a good energy).

    ``previous``: the evaluation of the last good state before it.  The tests (``threshold`` > 0):

    * NaN or inf in the energy or its variance; or, ``finite`` false, in the update;
    * a rise: E − E_prev > threshold · (√(σ² + σ_prev²) + 10⁻²·max(|E_prev|, spread_prev)) — normal descent,
      however fast, goes down, and the relative floor keeps near-zero-variance states from false alarms;
      where the chains mix poorly (R̂ > :data:`R_HAT_TRUSTED`) σ is replaced by σ_prev;
    * chains that stopped mixing: R̂ above :data:`R_HAT_BROKEN` where the last good state's was not (stuck
      chains report a finite energy that no longer moves);
    * a blow-up downwards, still finite: the spread √Var of the local energies above
      :data:`SPREAD_JUMP` × max(spread_prev, |E_prev|);
    * an energy more than threshold · (σ + 10⁻²·|E₀|) below ``reference`` E₀, an exact ground-state energy:
      no variational state is there, the estimate has broken down.
    """
    if ev is None:
        return (None, False) if finite else (f"the optimization produced NaN or inf at step {step}", True)
    if not (math.isfinite(ev.mean) and math.isfinite(ev.variance)):
        what = f"energy {ev.mean!r}" + ("" if math.isnan(ev.mean) else f", variance {ev.variance!r}")
        return f"the optimization produced NaN or inf at step {step} ({what})", True
    if threshold > 0 and previous is not None:
        spread_prev, spread = math.sqrt(max(previous.variance, 0.0)), math.sqrt(max(ev.variance, 0.0))
        error = previous.error if ev.r_hat > R_HAT_TRUSTED else ev.error
        sigma = math.hypot(previous.error, error) + JUMP_FLOOR * max(abs(previous.mean), spread_prev) + 1e-12
        rise = ev.mean - previous.mean
        if rise > threshold * sigma:
            return (
                f"the energy rose from {previous.mean:.6g} to {ev.mean:.6g} at step {step} "
                f"({rise / sigma:.3g} error bars, more than {threshold:g})",
                True,
            )
        if ev.r_hat > R_HAT_BROKEN and not previous.r_hat > R_HAT_BROKEN:
            return (
                f"the Markov chains stopped mixing at step {step} (R̂ {ev.r_hat:.3g}, energy {ev.mean:.6g}; "
                f"R̂ {previous.r_hat:.3g} the step before)",
                True,
            )
        if spread > SPREAD_JUMP * max(spread_prev, abs(previous.mean)):
            return (
                f"the spread of the local energies grew from {spread_prev:.3g} to {spread:.3g} at step {step} "
                f"(energy {ev.mean:.6g})",
                True,
            )
    if threshold > 0 and reference is not None:
        if ev.mean < reference - threshold * (ev.error + JUMP_FLOOR * abs(reference)):
            return (
                f"the energy {ev.mean:.6g} at step {step} is below the exact ground-state energy {reference:.6g} "
                "(the estimate has broken down)",
                True,
            )
    if not finite:
        return f"the optimization produced NaN or inf at step {step} (in the update; energy {ev.mean!r})", False
    return None, False


class Recovered(NamedTuple):
    """One recovery: step ``step`` is redone from the last good state (the state after ``step`` updates) by the
    softened ``driver``; ``number`` counts the recoveries of the run, ``reason`` says what was wrong and
    ``info``/``seconds`` are those of the rejected step."""

    step: int
    number: int
    reason: str
    info: dict
    seconds: float
    driver: Driver


def softened(driver: Driver, times: int) -> Driver:
    """``driver`` softened ``times`` times by :data:`SOFTEN_FACTOR` (a resumed run's recoveries)."""
    for _ in range(times):
        driver = driver.softened(SOFTEN_FACTOR)
    return driver


class Accepted(NamedTuple):
    """A state whose energy was evaluated and accepted: ``ev`` that evaluation, ``ref`` the one it was compared
    with, ``info``/``seconds`` those of the step that made it (None for the state a run starts from)."""

    state: Any
    ev: Evaluation | None
    ref: Evaluation | None
    info: dict | None
    seconds: float


def run(
    driver: Driver,
    state: Any,
    n_steps: int,
    callback: Callable | None = None,
    step_fn: Callable | None = None,
    *,
    recovery: RecoveryConfig | None = None,
    reference: float | None = None,
    on_recovery: Callable[[Recovered], Any] | None = None,
    recoveries: int = 0,
) -> Any:
    """Advance ``state`` until ``driver.finished(state, n_steps)`` (``state.step == n_steps``; a time evolution
    ends at its final time instead); ``callback(state, info, seconds)`` after each step,
    once ``state`` (the state after it) is known to be good (returning False stops the loop).  Returns the
    final state.

    A state is accepted when the step from it evaluates its energy and :func:`bad_step` finds nothing wrong
    against the last accepted state nor the one before it, and it is passed to ``callback`` once the state
    after it is accepted too: until then a bad step can still show
    that it was bad (see below).  Without ``recovery`` a bad step is one with NaN or inf, and it raises
    :class:`NonFiniteError` carrying the last accepted state.  With ``recovery`` the jump tests of
    :func:`bad_step` apply too (``reference``: an exact ground-state energy, or None), the final state is
    evaluated by one more step before it is passed on, and a bad step is a recovery: back to the last accepted
    state, ``driver.softened(SOFTEN_FACTOR)`` for the rest of the run, the step retried from
    ``driver.retry_state`` (fresh samples) and ``on_recovery(Recovered)`` called.  That state's new evaluation
    is compared again with the one before it; if it fails, the loop goes back one more state (never past the
    last one passed to ``callback``, so that a run resumed from a checkpoint makes the same decisions).  The
    first state a retried step makes has to pass the rise test at :data:`RETRY_THRESHOLD` error bars.  At most
    ``recovery.max_retries`` recoveries in all (``recoveries``: those made before, by the run this one
    resumes); then :class:`NonFiniteError`.
    """
    state = driver.place(state)
    if driver.finished(state, n_steps):
        return state
    if step_fn is None:
        step_fn = driver.make_step()
    threshold = recovery.jump_threshold if recovery is not None else 0.0
    max_retries = recovery.max_retries if recovery is not None else 0

    def deliver(entry: Accepted) -> bool:
        return callback is None or entry.info is None or callback(entry.state, entry.info, entry.seconds) is not False

    base = Accepted(state, None, None, None, 0.0)  # the last state passed on (or the start): no rollback past it
    good = None  # the state accepted after `base`, passed on when the next one is accepted
    role = "base"  # what `state` is: `base` or `good` again (after a recovery), or a "new" state
    pending = None  # (info, seconds) of the step that made a new `state`
    probation = False  # the next new state is a retried step's: judged at RETRY_THRESHOLD
    while True:
        k = int(state.step)
        done = driver.finished(state, n_steps)
        if done and recovery is None:
            break
        t0 = time.perf_counter()
        new_state, info = step_fn(state)
        jax.block_until_ready(new_state.params)
        dt = time.perf_counter() - t0
        ev = evaluation(info)
        if role == "new":
            previous, limit = (good or base).ev, min(threshold, RETRY_THRESHOLD) if probation else threshold
        else:
            previous, limit = (good.ref if role == "good" else None), threshold
        reason, state_bad = bad_step(ev, bool(info["finite"]), previous, limit, k, reference)
        if role == "new" and not state_bad and good is not None and base.ev is not None:
            # and against the state before: one accepted state with a large error bar hides nothing
            again, state_bad = bad_step(ev, True, base.ev, limit, k, reference)
            if state_bad:
                reason = f"{again} (compared with step {int(base.state.step)})"
        if not state_bad:
            if role == "new":
                if good is not None:
                    if not deliver(good):
                        return good.state
                    base = good
                good, pending, probation = Accepted(state, ev, previous, *pending), None, False
            elif role == "good":
                good = good._replace(state=state, ev=ev)
            else:
                base = base._replace(state=state, ev=ev)
            if done:
                break  # the final state's evaluation (its update is not used)
            if reason is None:
                state, pending, role = new_state, (info, dt), "new"
                continue
            target = good if good is not None and state is good.state else base  # retry the update from `state`
        elif role == "new":
            target = good or base
        elif role == "good":
            good, target = None, base
        else:
            if base.ev is None:
                reason += ": the state the run started from is not usable"
            else:
                reason += ": the last good state, measured again, is not usable either"
            raise NonFiniteError(None, None, reason, recoveries)
        softer = driver.softened(SOFTEN_FACTOR) if recoveries < max_retries else None
        if softer is None:
            if recoveries:
                reason += f", after {recoveries} recoveries (recovery.max_retries = {max_retries})"
            if target is good:
                deliver(good)
            raise NonFiniteError(int(target.state.step), target.state, reason, recoveries)
        recoveries += 1
        driver, step_fn = softer, softer.make_step()
        state, role = driver.retry_state(target.state, recoveries), ("good" if target is good else "base")
        pending, probation = None, True
        if on_recovery is not None:
            on_recovery(Recovered(int(target.state.step), recoveries, reason, info, dt, driver))
    if good is not None:
        deliver(good)
    if pending is not None:  # without `recovery`: the final state is passed on unevaluated
        deliver(Accepted(state, None, None, *pending))
    return state


class ParameterAverage:
    """Running sum of the parameters after steps ``first+1 … last`` (step k = the state after k
    updates), kept in ``path`` beside the checkpoint so that a resumed run averages the same steps.  A saved
    sum that cannot be read or does not fit the parameters restarts the average (``note`` says so)."""

    def __init__(self, path: Path, first: int, last: int, template, resume_from: int | None, write: bool = True):
        self.path, self.first, self.last, self.write = Path(path), first, last, write
        self.total = jax.tree_util.tree_map(jnp.zeros_like, template)
        self.count = 0
        self.note = None
        if first >= last or resume_from is None or resume_from <= first:
            return
        saved, problem = None, None
        if self.path.exists():
            try:
                saved = self._read(template)
            except io.BadFile as err:
                problem = str(err)
        if saved is not None and saved[0] == resume_from and saved[1] == first:
            self.count = saved[2]
            self.total = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), saved[3])
        else:  # window moved (n_steps or average_last changed), no saved sum, or an unusable one: average from here
            self.first = resume_from
            why = problem or "the averaging window of the interrupted run differs or its sum is missing"
            self.note = f"the parameter average restarts at step {resume_from} ({why})"

    def _read(self, template):
        """``(step, first, count, leaves)`` of the saved sum; :class:`nqs.io.BadFile` when it does not fit."""
        data = io.read_npz(self.path)
        leaves = jax.tree_util.tree_leaves(template)
        try:
            head = [int(np.asarray(data[k]).reshape(())) for k in ("step", "first", "count")]
            saved = [data[f"leaf_{i}"] for i in range(len(leaves))]
        except (KeyError, TypeError, ValueError) as err:
            raise io.BadFile(f"{self.path}: not a parameter average ({err})") from None
        for new, old in zip(saved, leaves, strict=True):
            if new.shape != np.shape(old) or new.dtype != np.dtype(old.dtype) or not np.all(np.isfinite(new)):
                raise io.BadFile(f"{self.path}: does not fit the parameters (shape, dtype or NaN)")
        return (*head, [jnp.asarray(x) for x in saved])

    def add(self, step: int, params: Any) -> None:
        if self.first < step <= self.last:
            self.total = jax.tree_util.tree_map(jnp.add, self.total, params)
            self.count += 1

    def save(self, step: int) -> None:
        if self.first >= self.last or step <= self.first:
            return
        from ..parallel import to_host

        arrays = {f"leaf_{i}": to_host(x) for i, x in enumerate(jax.tree_util.tree_leaves(self.total))}
        if self.write:
            io.atomic_write(self.path, lambda f: np.savez(f, step=step, first=self.first, count=self.count, **arrays))

    def mean(self, params: Any) -> Any:
        """The averaged parameters (``params`` when nothing was averaged)."""
        if not self.count:
            return params
        return jax.tree_util.tree_map(lambda t, p: (t / self.count).astype(p.dtype), self.total, params)


class Optimized(NamedTuple):
    """What :func:`optimize` ends with: also the driver it ended with (softened by ``recoveries`` recoveries,
    those of a resumed run included)."""

    state: Any
    average: ParameterAverage
    seconds: list[float]
    history: io.History
    driver: Driver
    recoveries: int


def _settings_text(settings: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:.4g}" for k, v in settings.items()) or "its settings"


def optimize(
    driver: Driver,
    state: Any,
    n_steps: int,
    out: Path,
    *,
    resume_from: int | None = None,
    checkpoint_every: int = 25,
    average_last: int = 0,
    reference: float | None = None,
    console: Any = None,
    progress: bool = True,
    write: bool = True,
    meta: dict | None = None,
    label: str = "VMC",
    recovery: RecoveryConfig | None = None,
    resumed: dict | None = None,
    watch: Callable[[int, dict], None] | None = None,
) -> Optimized:
    """Run ``driver`` from ``state`` to step ``n_steps`` with a run folder ``out``.

    Writes a ``history.csv`` row per accepted step (the driver's
    :attr:`~nqs.drivers.base.Driver.history_fields`, and for a driver that can recover a ``recovery`` column:
    0, or on the row of a recovery its number), ``checkpoint.npz`` every ``checkpoint_every`` steps and at the
    end — always of a state known to be good (:func:`run`) — and keeps the mean of the parameters over the
    last ``average_last`` steps (``params_average.npz``).  ``resume_from``: the step of the state read from
    the checkpoint (history rows and the average continue from it); ``resumed``: that checkpoint's meta (the
    recoveries of the interrupted run are applied again where the driver's settings are the same).
    ``recovery``: what a bad step does (:class:`RecoveryConfig`; its defaults when None).  ``write`` is False on
    the non-main processes of a multi-process run.  ``watch(step, info)`` sees each accepted step's ``info`` (the
    run folder checks the start with it).  When the run cannot recover, the last good state is saved, then
    :class:`NonFiniteError` propagates.  Returns :class:`Optimized`.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    recovery = RecoveryConfig() if recovery is None else recovery
    out = Path(out)
    ckpt = out / CHECKPOINT
    start = int(state.step)
    can_recover = driver.softened(SOFTEN_FACTOR) is not None
    fields = (*driver.history_fields, "recovery") if can_recover else driver.history_fields
    history = io.History(out / "history.csv", fields, resume_from=resume_from, write=write)
    averager = ParameterAverage(out / AVERAGE, n_steps - average_last, n_steps, state.params, resume_from, write=write)
    prog = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )

    def say(text: str) -> None:
        prog.console.print(text, markup=False, highlight=False)

    if averager.note:
        say(f"  note: {averager.note}")
    base_settings = driver.step_settings()
    count = 0
    if resumed and resumed.get("recoveries") and can_recover:
        if resumed.get("settings") == base_settings:
            count = int(resumed["recoveries"])
            driver = softened(driver, count)
            say(f"  the interrupted run's {count} recoveries apply: {_settings_text(driver.step_settings())}")
        else:
            say(
                f"  note: the optimizer settings differ from the interrupted run's; its {resumed['recoveries']} "
                "recoveries are not applied"
            )
    meta = dict(meta or {})
    current = {"driver": driver, "count": count}

    def save(st, recoveries):
        io.save_checkpoint(
            ckpt, st, {**meta, "step": int(st.step), "recoveries": recoveries, "settings": base_settings}
        )
        averager.save(int(st.step))

    times: list[float] = []
    with prog:
        task = prog.add_task(label, total=n_steps, completed=start)

        def callback(st, info, dt):
            k = int(st.step)
            row = {"step": k - 1, **driver.history_row(info), "seconds": dt}
            history.append({**row, "recovery": 0} if can_recover else row)
            if watch is not None:
                watch(k - 1, info)
            times.append(dt)
            averager.add(k, st.params)
            prog.update(task, completed=k, description=driver.progress_text(info, reference))
            if k % checkpoint_every == 0 or k == n_steps:
                save(st, current["count"])

        def on_recovery(event: Recovered):
            current.update(driver=event.driver, count=event.number)
            row = {"step": event.step, **driver.history_row(event.info), "seconds": event.seconds}
            history.append({**row, "recovery": event.number})
            say(
                f"  recovery {event.number} (of at most {recovery.max_retries}): {event.reason}; step {event.step} "
                f"is redone from the last good state with {_settings_text(event.driver.step_settings())}"
            )

        try:
            state = run(
                driver,
                state,
                n_steps,
                callback=callback,
                recovery=recovery,
                reference=reference,
                on_recovery=on_recovery,
                recoveries=count,
            )
        except NonFiniteError as err:
            if err.state is not None:
                save(err.state, err.recoveries)
            raise
    save(state, current["count"])
    driver, count = current["driver"], current["count"]
    if count:
        say(
            f"  note: after {count} recoveries the run ended with {_settings_text(driver.step_settings())} "
            "(set these in [optimizer] to start from them)"
        )
    return Optimized(state, averager, times, history, driver, count)
