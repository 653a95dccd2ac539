"""Exact references for a problem: ED (in a symmetry sector when the model has one), free fermions,
tabulated energies (:mod:`nqs.reference`), and the table of lowest energies per symmetry sector."""

from __future__ import annotations

import numpy as np

from .. import exact as exact_mod
from ..config import Config, ConfigError
from ..reference import reference_energy
from .build import Problem
from .lattice import boundary_label, k_label, parse_angle, symmetry_sector


def exact_reference(problem: Problem, k: int = 1) -> tuple[list[float] | None, str | None]:
    """Lowest exact energies when available: ED (in the model's symmetry sector when it has one),
    free fermions for the TFIM chain, or a tabulated reference (:mod:`nqs.reference`)."""
    energies, _, method = exact_levels(problem, k, degeneracy=False)
    return energies, method


def exact_levels(
    problem: Problem, k: int = 1, degeneracy: bool = True
) -> tuple[list[float] | None, list[int] | None, str | None]:
    """As :func:`exact_reference`, with the degeneracy of each energy's level (every copy in the sector,
    also beyond the ``k``-th energy) where ED gives it (``degeneracy``), else None."""
    cfg, lat = problem.config, problem.lattice
    hc = cfg.hamiltonian
    if getattr(cfg.model, "symmetry", None) is not None and not problem.fermions and _needs_sector(cfg):
        from ..exact.sectors import sector_energies

        group, chi, parity, label = symmetry_sector(cfg, lat)
        sc = cfg.model.symmetry
        kv = [0.0] * lat.ndim if sc.k is None else [parse_angle(v, "model.symmetry.k") for v in sc.k]
        if problem.hilbert.n_states <= SECTOR_ED_STATES:
            spectrum = sector_energies(problem.hamiltonian, lat, problem.hilbert, kv, sc.point_group, parity)
            if len(spectrum) == 0:
                raise ConfigError(f"model.symmetry: the sector ({label}) is empty for {problem.hilbert.describe()}")
            levels = spectrum[:k]
            deg = exact_mod.level_degeneracies(levels, spectrum) if degeneracy else None
            return [float(x) for x in levels], deg, f"ED in the sector {label}"
        return None, None, None
    if problem.hilbert.n_states <= exact_mod.MAX_ED_STATES:
        if degeneracy:
            levels, deg = exact_mod.lowest_levels(problem.hamiltonian, problem.hilbert, k)
        else:
            levels, deg = exact_mod.lowest_energies(problem.hamiltonian, problem.hilbert, k), None
        return [float(x) for x in levels], deg, "ED"
    if hc.kind == "ising" and lat.kind == "chain" and all(lat.pbc) and k == 1:
        if hc.J >= 0 or lat.n_sites % 2 == 0:
            return [exact_mod.tfim_chain_energy(lat.n_sites, hc.J, hc.h)], None, "free fermions"
    boundary = boundary_label(cfg, lat)
    if k == 1 and boundary and hc.kind != "file":
        params = dict.fromkeys(("J", "h", "Delta", "J1", "J2", "t", "U", "t2", "V")) | hc.model_dump(exclude={"kind"})
        if problem.fermions:
            params |= {"n_up": problem.hilbert.n_up, "n_down": problem.hilbert.n_down}
        ref = reference_energy(hc.kind, lat.kind, lat.size, boundary, params)
        if ref is not None:
            return [ref[0]], None, ref[1]
    return None, None, None


#: Largest Hilbert-space sector for which the symmetry-sector ED (dense per sector) is attempted.
SECTOR_ED_STATES = 200_000


def _needs_sector(cfg: Config) -> bool:
    """Whether model.symmetry restricts to a sector that need not hold the ground state."""
    return getattr(cfg.model, "symmetry", None) is not None


def sector_table(problem: Problem, point_group: bool = False, spin_flip: bool = False, n_levels: int = 1) -> list[dict]:
    """Lowest ``n_levels`` energies in every symmetry sector (momentum; with ``point_group`` the
    irreps of each little group; with ``spin_flip`` the spin parity), by dense diagonalization of the
    symmetrized blocks, every copy of a degenerate level listed.  Rows ``{k, k_label, irrep, spin_parity,
    energies, degeneracies}`` sorted by lowest energy; ``degeneracies[i]`` counts the copies of
    ``energies[i]``'s level in the sector (also those beyond ``n_levels``)."""
    from ..exact.sectors import sector_energies
    from ..lattice import symmetry_sectors

    if problem.fermions:
        raise ConfigError("nqs ed --sectors: symmetry sectors are implemented for spin models")
    if problem.hilbert.n_states > SECTOR_ED_STATES:
        raise ConfigError(
            f"nqs ed --sectors: {problem.hilbert.describe()} is too large for the dense "
            f"sector diagonalization (limit {SECTOR_ED_STATES} states)"
        )
    if spin_flip and (problem.hilbert.total_sz is None or abs(problem.hilbert.total_sz) > 1e-12):
        raise ConfigError("nqs ed --spin-flip: the spin flip needs total_sz = 0")
    lat = problem.lattice
    momenta = lat.momenta()
    rows = []
    for ik, irrep, parity in symmetry_sectors(lat, point=None if point_group else False, spin_flip=spin_flip):
        spectrum = sector_energies(problem.hamiltonian, lat, problem.hilbert, ik, irrep, parity)
        if len(spectrum) == 0:
            continue
        e = spectrum[:n_levels]
        rows.append(
            {
                "k": np.asarray(momenta[ik]).tolist(),
                "k_label": k_label(momenta[ik]),
                "irrep": irrep,
                "spin_parity": parity,
                "energies": [float(x) for x in e],
                "degeneracies": exact_mod.level_degeneracies(e, spectrum),
            }
        )
    rows.sort(key=lambda r: r["energies"][0])
    return rows
