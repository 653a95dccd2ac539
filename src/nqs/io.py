"""Run-folder I/O: resolved config (TOML), history (CSV), checkpoints (npz of the state pytree), results (JSON)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import jax
import numpy as np


def atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: Path, state, meta: dict) -> None:
    """Write the whole state pytree (leaves as arrays) and ``meta`` atomically.

    With several processes every process must call it (the chains are gathered collectively) and
    process 0 writes the file (on a shared file system every process can then resume from it).
    """
    from .parallel import to_host

    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i}": to_host(x) for i, x in enumerate(leaves)}  # gathers other processes' chains
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    if jax.process_index() == 0:
        atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def load_checkpoint(path: Path, template):
    """Read a checkpoint into the structure of ``template`` (a state built from the same config)."""
    with np.load(path) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        treedef = jax.tree_util.tree_structure(template)
        n = treedef.num_leaves
        if sum(1 for k in data.files if k.startswith("leaf_")) != n:
            raise ValueError(f"checkpoint {path} does not match this configuration (different model?)")
        leaves = [data[f"leaf_{i}"] for i in range(n)]
    for new, old in zip(leaves, jax.tree_util.tree_leaves(template), strict=True):
        if np.shape(new) != np.shape(old):
            raise ValueError(
                f"checkpoint {path} does not match this configuration (shape {np.shape(new)} vs {np.shape(old)})"
            )
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(x) for x in leaves]), meta


class History:
    """history.csv with the columns ``fields`` (the driver's), one row per completed step; on resume the rows at
    or after the checkpoint are dropped."""

    def __init__(
        self, path: Path, fields: tuple[str, ...] | list[str], resume_from: int | None = None, write: bool = True
    ):
        self.path = Path(path)
        self.fields = list(fields)
        self.write = write  # False on the non-main processes of a multi-process run
        rows = []
        if resume_from is not None and self.path.exists():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) < resume_from]
        if write:
            with open(self.path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields)
                w.writeheader()
                w.writerows(rows)
        self.rows = [{k: float(v) for k, v in r.items()} for r in rows]

    def append(self, row: dict) -> None:
        self.rows.append(row)
        if not self.write:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(row)


def read_history(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(x):
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x)}")


def write_toml(path: Path, data: dict) -> None:
    import tomli_w

    def clean(d):
        return {k: clean(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}

    Path(path).write_text(tomli_w.dumps(clean(data)))


def plot_convergence(
    history: list[dict], out_png: Path, exact: float | None = None, title: str = "", units: str = ""
) -> bool:
    """Energy vs step (± error) and, when the exact energy is known, |E − E₀|/|E₀| (log scale).

    Returns False (and writes nothing) when ``history`` has no steps (a run with ``--n-steps 0``)."""
    if not history:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in history])
    e = np.array([r["energy"] for r in history])
    err = np.array([r["energy_error"] for r in history])
    n_panels = 2 if exact is not None else 1
    fig, axes = plt.subplots(n_panels, 1, figsize=(7, 3.2 * n_panels), sharex=True, squeeze=False)
    ax = axes[0, 0]
    ax.plot(steps, e, lw=1, label="VMC")
    ax.fill_between(steps, e - err, e + err, alpha=0.3)
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=1, label=f"exact {exact:.6f}")
        lo = exact - 0.02 * abs(exact)
        ax.set_ylim(lo, max(np.nanpercentile(e, 95), exact + 0.05 * abs(exact)))
    ax.set_ylabel(f"energy ({units} units)" if units else "energy")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    if exact is not None:
        ax2 = axes[1, 0]
        ax2.semilogy(steps, np.abs(e - exact) / abs(exact), lw=1)
        ax2.set_ylabel("relative error")
    axes[-1, 0].set_xlabel("VMC step")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return True
