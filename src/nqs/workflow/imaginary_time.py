"""``nqs imaginary-time``: energies of the exactly constructed DBM e^{−nδτH}ψ0 beside exact ⟨H⟩(τ)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import exact as exact_mod
from .. import hamiltonians, io
from ..config import Config, ConfigError
from ..hamiltonians import units_for, units_short
from ..hilbert import SpinHilbert
from ..lattice import make_lattice


def imaginary_time(cfg: Config, console=None) -> dict:
    """Energies of the exactly constructed DBM e^{−nδτH}ψ0 for n = 1…n_steps (TFIM from |+…+⟩,
    Heisenberg from Néel), beside ⟨H⟩ of the exact e^{−τH}ψ0 and E0 when the lattice is small.

    Writes ``imaginary_time.json`` and ``imaginary_time.png`` into ``output.dir``.
    """
    from .. import imaginary_time as it
    from .run_folder import check_output_dir

    hc, ic = cfg.hamiltonian, cfg.imaginary_time
    check_output_dir(cfg.output.dir)
    if hc.kind not in ("ising", "heisenberg"):
        raise ConfigError(
            f"hamiltonian.kind: the exact DBM construction exists for 'ising' and 'heisenberg', not '{hc.kind}'"
        )
    if hc.total_sz is not None:
        raise ConfigError(
            "hamiltonian.total_sz: the imaginary-time construction works in the full spin space; remove total_sz"
        )
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
            raise ConfigError(
                "lattice: the Heisenberg construction starts from the Néel state and needs a bipartite lattice"
            )
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
                raise ConfigError(
                    "imaginary_time.method: Monte Carlo of the Heisenberg DBM needs loop moves "
                    '(not available yet); use method = "exact" on a small lattice'
                )
            key, sub = jax.random.split(key)
            st = it.mc_energy(dbm, params, op, sub, n_chains=ic.n_chains, n_sweeps=ic.n_sweeps, n_discard=ic.n_discard)
            e, err = float(jnp.real(st.mean)), float(st.error)
        row = {
            "n": k,
            "tau": k * ic.dtau,
            "e_dbm": e,
            "e_dbm_error": err,
            "e_exact_tau": None if e_tau is None else float(e_tau[k - 1]),
            "e0": e0,
            "n_hidden": dbm.n_hidden,
            "n_deep": dbm.n_deep,
        }
        rows.append(row)
        if console is not None:
            ex = "" if row["e_exact_tau"] is None else f"   exact <H>(tau) {row['e_exact_tau']:.6f}"
            console.print(
                f"tau = {row['tau']:.3f}  E_DBM = {e:.6f} ± {err:.6f}{ex}   "
                f"({dbm.n_hidden} hidden, {dbm.n_deep} deep units)"
            )
    out = Path(cfg.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "hamiltonian": hc.kind,
        "lattice": lat.describe(),
        "units": units_for(hc.kind),
        "method": method,
        "dtau": ic.dtau,
        "e0": e0,
        "rows": rows,
    }
    io.write_json(out / "imaginary_time.json", result)
    _plot_imaginary_time(
        rows, e0, out / "imaginary_time.png", f"{hc.kind}, {lat.describe()}, δτ = {ic.dtau:g}", units_short(hc.kind)
    )
    return result


def _plot_imaginary_time(rows, e0, path, title, units):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tau = [r["tau"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(
        tau,
        [r["e_dbm"] for r in rows],
        yerr=[r["e_dbm_error"] for r in rows],
        fmt="o-",
        ms=4,
        label="constructed DBM (Trotterized)",
    )
    if rows and rows[0]["e_exact_tau"] is not None:
        ax.plot(
            tau, [r["e_exact_tau"] for r in rows], "s--", ms=4, label=r"ED: $\langle H\rangle$ of $e^{-\tau H}\psi_0$"
        )
    if e0 is not None:
        ax.axhline(e0, color="k", lw=1, ls=":", label=f"E0 = {e0:.6f}")
    ax.set_xlabel(r"$\tau$")
    ax.set_ylabel(f"energy ({units} units)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
