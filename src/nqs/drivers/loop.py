"""The one run loop every driver shares: steps, progress bar, history, checkpoints, resume, parameter
averaging and the handling of non-finite steps.

:func:`run` is the bare loop (a Python ``while`` around the driver's jitted step; it only times, checks and
calls back).  :func:`optimize` adds what a run folder needs: ``history.csv`` rows, ``checkpoint.npz`` every
``checkpoint_every`` steps and at the end, the running parameter average and a progress bar.  Both take any
:class:`~nqs.drivers.base.Driver`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import io
from .base import Driver

CHECKPOINT = "checkpoint.npz"
AVERAGE = "params_average.npz"


class NonFiniteError(RuntimeError):
    """A step produced NaN/inf; ``state`` is the last good state (the one before that step)."""

    def __init__(self, step: int, state: Any, message: str):
        super().__init__(message)
        self.step = step
        self.state = state


def run(
    driver: Driver, state: Any, n_steps: int, callback: Callable | None = None, step_fn: Callable | None = None
) -> Any:
    """Advance ``state`` until ``state.step == n_steps``; ``callback(state, info, seconds)`` after each step
    (returning False stops the loop).

    A step whose ``info["finite"]`` is false is rejected: :class:`NonFiniteError` is raised carrying the
    last good state.  Returns the final state.
    """
    state = driver.place(state)
    if step_fn is None:
        step_fn = driver.make_step()
    while int(state.step) < n_steps:
        t0 = time.perf_counter()
        new_state, info = step_fn(state)
        jax.block_until_ready(new_state.params)
        dt = time.perf_counter() - t0
        if not bool(info["finite"]):
            k = int(state.step)
            energy = info.get("energy")
            what = "" if energy is None else f" (energy {float(jnp.real(energy.mean))!r})"
            raise NonFiniteError(k, state, f"the optimization produced NaN or inf at step {k}{what}")
        state = new_state
        if callback is not None and callback(state, info, dt) is False:
            break
    return state


class ParameterAverage:
    """Running sum of the parameters after steps ``first+1 … last`` (step k = the state after k
    updates), kept in ``path`` beside the checkpoint so that a resumed run averages the same steps."""

    def __init__(self, path: Path, first: int, last: int, template, resume_from: int | None, write: bool = True):
        self.path, self.first, self.last, self.write = Path(path), first, last, write
        self.total = jax.tree_util.tree_map(jnp.zeros_like, template)
        self.count = 0
        self.note = None
        if first >= last or resume_from is None or resume_from <= first:
            return
        saved = None
        if self.path.exists():
            with np.load(self.path) as data:
                n_leaves = len(jax.tree_util.tree_leaves(template))
                saved = (
                    int(data["step"]),
                    int(data["first"]),
                    int(data["count"]),
                    [jnp.asarray(data[f"leaf_{i}"]) for i in range(n_leaves)],
                )
        if saved is not None and saved[0] == resume_from and saved[1] == first:
            self.count = saved[2]
            self.total = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), saved[3])
        else:  # window moved (n_steps or average_last changed) or no saved sum: average from here on
            self.first = resume_from
            self.note = (
                f"the parameter average restarts at step {resume_from} (the averaging window of the "
                "interrupted run differs or its sum is missing)"
            )

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
    """What :func:`optimize` ends with."""

    state: Any
    average: ParameterAverage
    seconds: list[float]
    history: io.History


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
) -> Optimized:
    """Run ``driver`` from ``state`` to step ``n_steps`` with a run folder ``out``.

    Writes a ``history.csv`` row per step (the driver's :attr:`~nqs.drivers.base.Driver.history_fields`),
    ``checkpoint.npz`` every ``checkpoint_every`` steps and at the end, and keeps the mean of the parameters
    over the last ``average_last`` steps (``params_average.npz``).  ``resume_from``: the step of the state
    read from the checkpoint (history rows and the average continue from it).  ``write`` is False on the
    non-main processes of a multi-process run.  On a non-finite step the last good state is saved, then
    :class:`NonFiniteError` propagates.  Returns the final state, the parameter average, the seconds
    of each step and the history (:class:`Optimized`).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out = Path(out)
    ckpt = out / CHECKPOINT
    start = int(state.step)
    history = io.History(out / "history.csv", driver.history_fields, resume_from=resume_from, write=write)
    averager = ParameterAverage(out / AVERAGE, n_steps - average_last, n_steps, state.params, resume_from, write=write)
    if averager.note and console is not None:
        console.print(f"  note: {averager.note}")
    meta = dict(meta or {})

    def save(st):
        io.save_checkpoint(ckpt, st, {**meta, "step": int(st.step)})
        averager.save(int(st.step))

    prog = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )
    times: list[float] = []
    with prog:
        task = prog.add_task(label, total=n_steps, completed=start)

        def callback(st, info, dt):
            k = int(st.step)
            history.append({"step": k - 1, **driver.history_row(info), "seconds": dt})
            times.append(dt)
            averager.add(k, st.params)
            prog.update(task, completed=k, description=driver.progress_text(info, reference))
            if k % checkpoint_every == 0 or k == n_steps:
                save(st)

        try:
            state = run(driver, state, n_steps, callback=callback, step_fn=driver.make_step())
        except NonFiniteError as err:
            save(err.state)
            raise
    save(state)
    return Optimized(state, averager, times, history)
