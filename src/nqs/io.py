"""Run-folder I/O: resolved config (TOML), history (CSV), checkpoints (npz of the state pytree), results (JSON)."""

from __future__ import annotations

import csv
import json
import os
import zipfile
import zlib
from pathlib import Path

import jax
import numpy as np


def atomic_write(path: Path, write) -> None:
    """``write(f)`` into a temporary file beside ``path``, flushed to disk, then renamed over ``path``: a reader
    sees the old file or the whole new one, never a part (the temporary file is removed if ``write`` fails)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # the rename itself to disk
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class BadFile(ValueError):
    """A file nqs wrote that cannot be used as it is: ``"PATH: what is wrong"``."""


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of the ``.npz`` archive ``path``, read now; :class:`BadFile` naming the file and what is wrong
    when it is missing, a folder, empty, cut short, damaged or not an archive."""
    path = Path(path)
    if path.is_dir():
        raise BadFile(f"{path}: is a folder, not a file nqs wrote")
    try:
        size = path.stat().st_size
    except OSError as err:
        raise BadFile(f"{path}: cannot be read ({err.strerror or err})") from None
    if size == 0:
        raise BadFile(f"{path}: is empty (a write cut short?)")
    try:
        data = np.load(path, allow_pickle=False)
    except zipfile.BadZipFile as err:
        raise BadFile(f"{path}: not a whole .npz archive (cut short or damaged: {_why(err)})") from None
    except (OSError, ValueError, EOFError):
        raise BadFile(f"{path}: not an .npz archive nqs wrote (unrecognised content)") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise BadFile(f"{path}: a single array, not an .npz archive nqs wrote")
    try:
        with data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise BadFile(f"{path}: damaged ({_why(err)})") from None


def _why(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text[:80]}" if text else type(err).__name__


def save_checkpoint(path: Path, state, meta: dict) -> None:
    """Write the whole state pytree (leaves as arrays) and ``meta`` atomically (:func:`atomic_write`: the
    previous checkpoint stays whole until the new one is).

    With several processes every process must call it (the chains are gathered collectively) and
    process 0 writes the file (on a shared file system every process can then resume from it).
    """
    from .parallel import to_host

    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i}": to_host(x) for i, x in enumerate(leaves)}  # gathers other processes' chains
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    if jax.process_index() == 0:
        atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def load_checkpoint(path: Path, template, fingerprint: dict | None = None):
    """Read a checkpoint into the structure of ``template`` (a state built from the same config); returns
    ``(state, meta)``.

    Everything is checked before use: the file (readable, a whole archive), its record of the run (``meta``),
    the number, shapes and dtypes of its arrays against ``template``, finite parameters and optimizer state,
    and, where both are known, that it belongs to this config (``fingerprint``, stored by the run in
    ``meta["config"]``: a hash per config section).  Any problem is a :class:`~nqs.config.ConfigError` of one
    line naming the file and what is wrong.
    """
    from .config import ConfigError

    path = Path(path)
    try:
        data = read_npz(path)
    except BadFile as err:
        raise ConfigError(f"checkpoint {err}") from None

    def bad(what: str) -> ConfigError:
        return ConfigError(f"checkpoint {path}: {what}")

    try:
        meta = json.loads(bytes(data["meta"].astype(np.uint8)).decode())
    except KeyError:
        raise bad("has no record of its run ('meta'): not a checkpoint nqs wrote") from None
    except (ValueError, TypeError) as err:
        raise bad(f"its record of the run ('meta') is damaged ({_why(err)})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("step", 0), int):
        raise bad("its record of the run ('meta') is damaged")
    if fingerprint and isinstance(meta.get("config"), dict):
        differ = [k for k in fingerprint if k in meta["config"] and meta["config"][k] != fingerprint[k]]
        if differ:
            raise bad(
                f"belongs to another config (it differs in [{', '.join(differ)}]); resume with that run's config "
                "or choose another output.dir"
            )
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    n = treedef.num_leaves
    found = sum(1 for k in data if k.startswith("leaf_"))
    if found != n or any(f"leaf_{i}" not in data for i in range(n)):
        raise bad(f"holds {found} arrays where this config's state has {n}: it does not match this configuration")
    leaves = []
    for i, (key_path, old) in enumerate(with_paths):
        new, name = data[f"leaf_{i}"], jax.tree_util.keystr(key_path) or f"leaf {i}"
        if new.shape != np.shape(old):
            raise bad(f"{name} has shape {new.shape} where this config has {np.shape(old)}: not its checkpoint")
        if new.dtype != np.dtype(old.dtype):
            raise bad(f"{name} has dtype {new.dtype} where this config has {np.dtype(old.dtype)}: not its checkpoint")
        if name.startswith((".params", ".opt_state")) and np.issubdtype(new.dtype, np.inexact):
            if not np.all(np.isfinite(new)):
                raise bad(f"{name} holds NaN or inf: not a usable state")
        leaves.append(new)
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(x) for x in leaves]), meta


class RunFileError(ValueError):
    """A run-folder file (history, result, saved config) that cannot be used: ``"PATH[:LINE]: what is wrong"``."""

    def __init__(self, path: Path | str, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


#: The columns ``nqs plot`` needs in a ``history.csv``.
PLOT_FIELDS = ("step", "energy", "energy_error")


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path`` (``what`` names the file's role in the message), or :class:`RunFileError`."""
    path = Path(path)
    if not path.exists():
        raise RunFileError(path, f"no such file (the run folder's {what})")
    if path.is_dir():
        raise RunFileError(path, f"is a folder, expected the run folder's {what}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunFileError(path, f"not a text file (expected the run folder's {what})") from None
    except OSError as err:
        raise RunFileError(path, f"cannot be read ({err.strerror or err})") from None


def load_history(path: Path, fields: tuple[str, ...] | list[str] = PLOT_FIELDS) -> tuple[list[dict], str | None]:
    """The rows of ``history.csv`` as floats, checked: a header naming at least ``fields``, and in every row as
    many values as columns, numbers only, ``step`` an integer >= 0.  A last row without its line end (a write
    cut short when the run was killed) is left out; the second value is then a note saying so, else None.
    Any other problem is a :class:`RunFileError` naming the file and line."""
    path = Path(path)
    text = read_text(path, "history")
    parts = text.split("\n")
    lines = [line + "\n" for line in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    if not lines or not lines[0].strip():
        raise RunFileError(path, "is empty (no header line); expected the CSV history an nqs run writes")
    header = _csv_values(lines[0])
    missing = [f for f in fields if f not in header]
    if not lines[0].endswith("\n") or missing or len(set(header)) != len(header):
        what = f"lacks the column(s) {', '.join(missing)}" if missing else "is cut or repeats a column"
        raise RunFileError(path, f"header {what} (got {lines[0].strip()[:80]!r})", 1)
    rows, note = [], None
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if i == len(lines) and not line.endswith("\n"):
            note = f"{path}:{i}: the last row is cut short (the run stopped while writing it); left out"
            break
        values = _csv_values(line)
        problem = _row_problem(header, values)
        if problem:
            raise RunFileError(path, problem, i)
        row = dict(zip(header, map(float, values), strict=True))
        if "step" in row and not (row["step"].is_integer() and row["step"] >= 0):
            raise RunFileError(path, f"step {values[header.index('step')]!r} is not an integer >= 0", i)
        rows.append(row)
    return rows, note


def _csv_values(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return [line]  # not CSV at all: one value, named in the message


def _row_problem(header: list[str], values: list[str]) -> str | None:
    if len(values) != len(header):
        return f"{len(values)} values for {len(header)} columns"
    for name, v in zip(header, values, strict=True):
        try:
            float(v)
        except ValueError:
            return f"{name} = {v[:40]!r} is not a number"
    return None


class History:
    """history.csv with the columns ``fields`` (the driver's), one row per completed step; on resume the rows at
    or after the checkpoint are dropped (an unreadable history is a :class:`RunFileError`)."""

    def __init__(
        self, path: Path, fields: tuple[str, ...] | list[str], resume_from: int | None = None, write: bool = True
    ):
        self.path = Path(path)
        self.fields = list(fields)
        self.write = write  # False on the non-main processes of a multi-process run
        rows = []
        if resume_from is not None and self.path.exists():
            # the loop's own columns (``recovery``) may be missing in an older history: 0 then
            required = [f for f in self.fields if f != "recovery"]
            rows = [
                {k: r.get(k, 0.0) for k in self.fields}
                for r in load_history(self.path, required)[0]
                if r["step"] < resume_from
            ]
        if write:
            with open(self.path, "w", newline="") as f:  # a column the old rows lack (``recovery``): 0
                w = csv.DictWriter(f, fieldnames=self.fields, restval=0)
                w.writeheader()
                # integer columns read back as floats are written as the loop writes them
                w.writerows({**r, **{k: int(r[k]) for k in ("step", "recovery") if k in r}} for r in rows)
        self.rows = rows

    def append(self, row: dict) -> None:
        self.rows.append(row)
        if not self.write:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(row)


def read_history(path: Path) -> list[dict]:
    """The checked rows of ``history.csv`` (:func:`load_history`; a cut last row is left out)."""
    return load_history(path)[0]


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path`` (``what``: the file's role), or :class:`RunFileError` saying what is wrong."""
    try:
        data = json.loads(read_text(path, what))
    except json.JSONDecodeError as err:
        raise RunFileError(path, f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(data, dict):
        raise RunFileError(path, f"expected a JSON object (the run folder's {what}), got {type(data).__name__}")
    return data


def read_toml(path: Path, what: str) -> dict:
    """A TOML table from ``path`` (``what``: the file's role), or :class:`RunFileError` saying what is wrong."""
    import tomllib

    try:
        return tomllib.loads(read_text(path, what))
    except tomllib.TOMLDecodeError as err:
        raise RunFileError(path, f"not valid TOML ({err})") from None


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

    Rows of recoveries (``recovery`` > 0, :mod:`nqs.drivers.loop`) are not plotted as energies: a dotted line
    marks the step each redid.  Returns False (and writes nothing) when ``history`` has no steps (a run with
    ``--n-steps 0``)."""
    redone = sorted({r["step"] for r in history if r.get("recovery")})
    history = [r for r in history if not r.get("recovery")]
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
    for i, k in enumerate(redone):
        ax.axvline(k, color="tab:red", ls=":", lw=1, label="recovery" if i == 0 else None)
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
