"""Reference ground-state energies for systems too large for nqs's exact diagonalization.

Values (total energies, nqs units of :mod:`nqs.conventions`) come from the project's reference
table (``shared/reference/energies.json``: exact diagonalization with symmetries, or sign-free
QMC); each entry names its method.  Smaller systems are diagonalized directly instead.
"""

from __future__ import annotations

#: (hamiltonian, lattice kind, size, boundary, parameters) -> (E_total, method)
_TABLE: dict[tuple, tuple[float, str]] = {
    ("hubbard", "square", (4, 4), "periodic", (("U", 4.0), ("n_down", 5), ("n_up", 5), ("t", 1.0))): (
        -19.580937525419095,
        "ED (reference table)",
    ),
    ("hubbard", "square", (4, 4), "periodic", (("U", 4.0), ("n_down", 8), ("n_up", 8), ("t", 1.0))): (
        -13.621854821152844,
        "ED (reference table)",
    ),
    ("hubbard", "square", (8, 8), "periodic", (("U", 4.0), ("n_down", 32), ("n_up", 32), ("t", 1.0))): (
        -55.063,
        "AFQMC -0.86036(6) per site (reference table)",
    ),
    ("hubbard", "square", (8, 8), "periodic", (("U", 8.0), ("n_down", 32), ("n_up", 32), ("t", 1.0))): (
        -33.642,
        "AFQMC (reference table)",
    ),
    ("j1j2", "square", (6, 6), "periodic", (("J1", 1.0), ("J2", 0.5))): (-18.1371475400715, "ED (reference table)"),
    ("heisenberg", "square", (6, 6), "periodic", (("J", 1.0),)): (-24.439397399308923, "ED (reference table)"),
    ("heisenberg", "square", (8, 8), "periodic", (("J", 1.0),)): (-43.103168, "QMC (reference table)"),
    ("heisenberg", "square", (10, 10), "periodic", (("J", 1.0),)): (-67.1549, "QMC (reference table)"),
}
for _L, _E in (
    (32, -14.206527438949553),
    (40, -17.746522788333213),
    (64, -28.37430138535288),
    (80, -35.462076149721305),
    (100, -44.322957075091864),
    (200, -88.63355325224163),
):
    _TABLE[("heisenberg", "chain", (_L,), "periodic", (("J", 1.0),))] = (_E, "Bethe ansatz (reference table)")


def reference_energy(
    hamiltonian: str, lattice_kind: str, size, boundary: str, params: dict
) -> tuple[float, str] | None:
    """``(E_total, method)`` for a tabulated system, else None.

    ``boundary``: "periodic" (all directions) — open or antiperiodic clusters are not tabulated.
    ``params``: the Hamiltonian's parameters (and the filling for electrons); zero-valued optional
    parameters (t2, V) must be zero in the table's sense and are dropped before the lookup.
    """
    clean = {
        k: float(v) if k not in ("n_up", "n_down") else int(v)
        for k, v in params.items()
        if v is not None and not (k in ("t2", "V") and v == 0)
    }
    key = (hamiltonian, lattice_kind, tuple(int(x) for x in size), boundary, tuple(sorted(clean.items())))
    return _TABLE.get(key)
