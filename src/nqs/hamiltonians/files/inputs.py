"""Input checks shared by the Hamiltonian-file readers: reading a text file, option and filling checks."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .terms import HamiltonianFileError


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``, or a :class:`HamiltonianFileError` saying why not."""
    if not path.exists():
        raise HamiltonianFileError(path, "no such file")
    if path.is_dir():
        raise HamiltonianFileError(path, "is a folder, expected a file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HamiltonianFileError(path, f"cannot read the file ({exc})") from exc


def no_options(path: Path, fmt: str, options: Mapping[str, Any]) -> None:
    """Refuse options for a format that takes none."""
    if options:
        raise HamiltonianFileError(path, f"format {fmt!r} takes no options, got {', '.join(sorted(options))}")


def filling(
    path: Path,
    n_sites: int,
    n_up: Any,
    n_down: Any,
    line: int | None = None,
    names: tuple[str, str] = ("n_up", "n_down"),
) -> tuple[int | None, int | None]:
    """``(n_up, n_down)`` checked against ``n_sites``: both None, or both integers in ``0..n_sites``."""
    if n_up is None and n_down is None:
        return None, None
    if n_up is None or n_down is None:
        raise HamiltonianFileError(path, f"give both {names[0]} and {names[1]}, or neither", line)
    out = []
    for name, v in zip(names, (n_up, n_down), strict=True):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) <= n_sites:
            raise HamiltonianFileError(
                path, f"{name} = {v!r} is impossible on {n_sites} sites: it must be an integer in 0..{n_sites}", line
            )
        out.append(int(v))
    return out[0], out[1]


def is_real(v: Any) -> bool:
    """A real number (bool excluded)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def is_int(v: Any) -> bool:
    """An integer (bool excluded)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)
