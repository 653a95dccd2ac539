"""Hamiltonians read from files: ``read_hamiltonian(path, format, **options)``.

A reader per format, each returning a :class:`FileHamiltonian` (a
:class:`~nqs.operators.fermion.FermionOperator` on ``2·n_sites`` orbitals, ``p = site + n_sites·spin``,
the filling when the file states it, a one-line description) built from the shared terms of
:mod:`.terms`:

* ``"nqs"`` (:mod:`.nqs_format`): a ``.toml`` or ``.json`` file of hopping, interaction and on-site U rows;
* ``"mvmc"``, alias ``"hphi"`` (:mod:`.mvmc`): mVMC / HPhi expert-mode ``*.def`` files;
* ``"stdface"`` (:mod:`.stdface`): a StdFace standard-mode input (Hubbard, chain or square);
* ``"wannier90"``, alias ``"w90"`` (:mod:`.wannier90`): a Wannier90 ``*_hr.dat`` on a supercell.

Use the result with :class:`~nqs.hilbert.fermions.SpinfulFermions` ``(n_sites, n_up, n_down)``.  Every
problem raises :class:`HamiltonianFileError` (a ``ValueError``) reading ``"PATH:LINE: what is wrong"``.
Each format's formula, units, sign conventions and options: ``docs/hamiltonian_files.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ...registry import HAMILTONIANS, Section
from .mvmc import read_mvmc
from .nqs_format import read_nqs
from .stdface import read_stdface
from .terms import FileHamiltonian, HamiltonianFileError, StatedFilling
from .wannier90 import read_wannier90

#: format name -> reader ``(path, options) -> FileHamiltonian``; a new format is one module and one row here
READERS: dict[str, Callable[[Path, Mapping[str, Any]], FileHamiltonian]] = {
    "nqs": read_nqs,
    "mvmc": read_mvmc,
    "stdface": read_stdface,
    "wannier90": read_wannier90,
}
FORMATS: tuple[str, ...] = tuple(READERS)
FORMAT_ALIASES: dict[str, str] = {"hphi": "mvmc", "w90": "wannier90"}


def read_hamiltonian(path: str | Path, format: str, **options: Any) -> FileHamiltonian:
    """Read a Hamiltonian file; ``format`` is one of ``nqs``, ``mvmc`` (alias ``hphi``), ``stdface``,
    ``wannier90`` (alias ``w90``).  Each format's formula and options: ``docs/hamiltonian_files.md``.

    Raises :class:`HamiltonianFileError` (``"PATH:LINE: what is wrong"``) on any problem.
    """
    p = Path(path)
    fmt = str(format).strip().lower()
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in READERS:
        raise HamiltonianFileError(p, f"unknown format {format!r} (choose one of {', '.join(FORMATS)})")
    if not p.exists():
        raise HamiltonianFileError(p, "no such file or folder")
    return READERS[fmt](p, options)


class FileConfig(Section):
    """``kind = "file"``: an effective Hamiltonian from a file (``path``, ``format``; reader ``options``).
    The filling is the file's own; ``n_up``/``n_down`` must agree with it, choose the sector where the file
    fixes only N or only 2S^z, and default to half filling where the file fixes neither."""

    kind: Literal["file"] = "file"
    path: str | None = None
    format: Literal["nqs", "mvmc", "stdface", "wannier90"] | None = None
    options: dict | None = None  # reader options (wannier90: supercell, U, J, ...)
    n_up: int | None = Field(None, ge=0)
    n_down: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _needs_path(self):
        if self.path is None or self.format is None:
            raise ValueError("kind 'file' needs 'path' and 'format' (nqs, mvmc, stdface or wannier90)")
        return self


HAMILTONIANS.register(
    "file",
    config=FileConfig,
    fermions=True,
    short_units="file",
    units="the input file's energy units (terms and signs as in nqs.hamiltonians.files, docs/hamiltonian_files.md)",
)(read_hamiltonian)

__all__ = [
    "FileConfig",
    "read_hamiltonian",
    "FileHamiltonian",
    "HamiltonianFileError",
    "StatedFilling",
    "READERS",
    "FORMATS",
    "FORMAT_ALIASES",
]
