"""Malformed inputs against the CLI: every config section, every file the CLI reads (config, Hamiltonian files,
run-folder files) and every subcommand.  Each must end with exit code 2 and one short line on stderr naming
the key or the file, never a traceback.

The CLI runs in-process (``nqs.cli.main``).  Nothing may start sampling: the steps after validation (the exact
reference, the run loop, the imaginary-time construction) are replaced by a stub that fails the case, so an
input that nqs wrongly accepts fails fast instead of running.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "files"
MVMC4 = EXAMPLES / "mvmc_extended_hubbard_chain4"
W90 = EXAMPLES / "wannier90"
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root writes into read-only folders

TINY = """
seed = 3
[lattice]
kind = "chain"
size = [8]
[hamiltonian]
kind = "heisenberg"
total_sz = 0
[model]
kind = "rbm"
alpha = 1
param_dtype = "real"
marshall_sign = true
[sampler]
kind = "exchange"
n_chains = 8
n_samples = 64
n_discard = 4
[optimizer]
kind = "sr"
learning_rate = 0.05
n_steps = 10
[output]
dir = "run"
checkpoint_every = 5
"""

HUBBARD = """
[lattice]
kind = "chain"
size = [4]
[hamiltonian]
kind = "hubbard"
{extra}
[model]
kind = "slater"
[sampler]
kind = "hop"
n_chains = 4
n_samples = 16
"""


class Accepted(Exception):
    """Raised where nqs would start the work: the input was accepted."""


@dataclass
class Case:
    argv: list[str]  # the command line, "{tmp}" standing for the case's folder
    expect: str  # a piece of the one-line message: the key or the file
    # a function tmp -> None writing the case's files, or ("run_folder", function tmp, src -> None | None):
    # a copy of the module's run folder, changed by the function
    files: object = None


def cfg(text, expect, command="run"):
    args = [command, "{tmp}/c.toml"] + (["--quiet"] if command == "run" else [])
    return Case(args, expect, lambda tmp: (tmp / "c.toml").write_text(text))


def tiny(section, old, new, expect, command="run"):
    """TINY with ``old`` replaced by ``new`` in ``[section]`` (``old`` None: ``new`` appended to the section)."""
    head, _, rest = TINY.partition(f"[{section}]\n")
    assert rest, section
    body, nxt, tail = rest.partition("\n[")
    body = body + "\n" + new if old is None else body.replace(old, new)
    assert old is None or old in rest.partition("\n[")[0], (section, old)
    return cfg(f"{head}[{section}]\n{body}{nxt}{tail}", expect, command)


def hubbard(extra, expect, command="run"):
    return cfg(HUBBARD.format(extra=extra), expect, command)


# ---------------------------------------------------------------------------------------------- file cases
def file_config(tmp, path, fmt, n_sites, options=""):
    text = (
        f'[lattice]\nkind = "chain"\nsize = [{n_sites}]\n'
        f'[hamiltonian]\nkind = "file"\nformat = "{fmt}"\npath = "{path}"\n{options}\n'
        '[model]\nkind = "slater"\n[sampler]\nkind = "hop"\nn_chains = 4\nn_samples = 16\n'
    )
    (tmp / "c.toml").write_text(text)


def ham_file(fmt, n_sites, make, expect, options="", command="run"):
    """A ``kind = "file"`` config whose file ``make(tmp)`` writes (and returns the path of)."""

    def files(tmp):
        file_config(tmp, make(tmp), fmt, n_sites, options)

    args = [command, "{tmp}/c.toml"] + (["--quiet"] if command == "run" else [])
    return Case(args, expect, files)


NQS_TOML = (EXAMPLES / "hubbard_chain6.toml").read_text()


def nqs_text(text, name="h.toml"):
    def make(tmp):
        (tmp / name).write_text(text)
        return tmp / name

    return make


def mvmc(edit=None, drop=None):
    """A copy of the 4-site mVMC example, ``edit = (file, function text -> text)``, ``drop``: a file removed."""

    def make(tmp):
        d = tmp / "defs"
        shutil.copytree(MVMC4, d)
        if edit:
            name, fn = edit
            if fn is None:
                (d / name).write_bytes(b"\xff\xfe\x00\x81")
            elif fn == "DIR":
                (d / name).unlink()
                (d / name).mkdir()
            else:
                (d / name).write_text(fn((d / name).read_text()))
        if drop:
            (d / drop).unlink()
        return d

    return make


def binary(name):
    def make(tmp):
        (tmp / name).write_bytes(b"\xff\x00\xfe\x81")
        return tmp / name

    return make


def stdface(text):
    return nqs_text(text, "stdface.def")


STDFACE = (EXAMPLES / "stdface_hubbard_square.def").read_text()
W90_HR = (W90 / "two_orbital_hr.dat").read_text()


def w90(text=W90_HR):
    def make(tmp):
        (tmp / "w_hr.dat").write_text(text)
        return tmp / "w_hr.dat"

    return make


def lines_cut(text, n):
    return "\n".join(text.splitlines()[:n]) + "\n"


def replace_line(text, i, new):
    lines = text.splitlines()
    lines[i] = new
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- run folders
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder as ``nqs run`` leaves it after 5 of 10 steps: config.toml, checkpoint.npz, history.csv
    (steps 0..4) and result.json, made without sampling."""
    import jax

    from nqs import io
    from nqs.config import load_config
    from nqs.drivers.loop import CHECKPOINT
    from nqs.workflow import build

    d = tmp_path_factory.mktemp("fuzz_run")
    (d / "c.toml").write_text(TINY)
    cfg = load_config(d / "c.toml")
    problem = build(cfg)
    state = problem.driver.init(jax.random.PRNGKey(cfg.seed))
    run = d / "run"
    run.mkdir()
    io.save_checkpoint(run / CHECKPOINT, state._replace(step=state.step + 5), {"step": 5})
    io.write_toml(run / "config.toml", problem.resolved_config())
    fields = problem.driver.history_fields
    hist = io.History(run / "history.csv", fields)
    for k in range(5):
        hist.append({f: (k if f == "step" else -3.0 + 0.01 * k) for f in fields})
    io.write_json(run / "result.json", {"exact_energy": -3.6510934089371783, "n_steps": 5})
    return d


def in_run(name, content, expect, command="plot"):
    """The run folder with ``name`` replaced by ``content`` (bytes, str, or "DIR" for a folder)."""

    def files(tmp, src):
        shutil.copytree(src / "run", tmp / "run")
        (tmp / "c.toml").write_text(TINY.replace('dir = "run"', f'dir = "{tmp}/run"'))
        f = tmp / "run" / name
        if f.exists():
            f.unlink()
        if content == "DIR":
            f.mkdir()
        elif isinstance(content, bytes):
            f.write_bytes(content)
        elif callable(content):
            f.write_text(content((src / "run" / name).read_text()))
        elif content is not None:
            f.write_text(content)

    argv = ["plot", "{tmp}/run"] if command == "plot" else ["run", "{tmp}/c.toml", "--quiet", "--resume"]
    return Case(argv, expect, ("run_folder", files))


HIST = "step,energy,energy_error,variance\n0,-1.0,0.1,0.2\n1,-1.5,0.1,0.2\n"

CASES = {
    # ---------------------------------------------------------------------------------- [lattice]
    "lattice kind": tiny("lattice", 'kind = "chain"', 'kind = "hexagon"', "lattice.kind"),
    "lattice size empty": tiny("lattice", "size = [8]", "size = []", "lattice"),
    "lattice size zero": tiny("lattice", "size = [8]", "size = [0]", "lattice"),
    "lattice size negative": tiny("lattice", "size = [8]", "size = [-4]", "lattice"),
    "lattice size word": tiny("lattice", "size = [8]", 'size = "eight"', "lattice.size"),
    "lattice size float": tiny("lattice", "size = [8]", "size = [4.5]", "lattice.size"),
    "lattice pbc list": tiny("lattice", None, 'pbc = [1, "x"]', "lattice.pbc"),
    "lattice square one size": tiny("lattice", 'kind = "chain"', 'kind = "square"', "lattice.size"),
    "lattice unknown key": tiny("lattice", None, 'colour = "red"', "lattice.colour"),
    "lattice not a table": cfg("lattice = 5\n", "lattice"),
    # ------------------------------------------------------------------------------ [hamiltonian]
    "hamiltonian kind": tiny("hamiltonian", 'kind = "heisenberg"', 'kind = "potts"', "hamiltonian"),
    "heisenberg J word": tiny("hamiltonian", None, 'J = "strong"', "J: Input should be a valid number"),
    "heisenberg total_sz too big": tiny("hamiltonian", "total_sz = 0", "total_sz = 7", "total_sz"),
    "heisenberg total_sz half": tiny("hamiltonian", "total_sz = 0", "total_sz = 0.5", "total_sz"),
    "heisenberg unknown key": tiny("hamiltonian", None, "J2 = 0.5", "J2"),
    "ising with total_sz": tiny("hamiltonian", 'kind = "heisenberg"', 'kind = "ising"', "total_sz"),
    "xxz Delta list": tiny("hamiltonian", 'kind = "heisenberg"', 'kind = "xxz"\nDelta = [1]', "Delta"),
    "j1j2 Delta": tiny("hamiltonian", 'kind = "heisenberg"', 'kind = "j1j2"\nDelta = 1.0', "Delta"),
    "hubbard U word": hubbard('U = "big"', "U: Input should be a valid number"),
    "hubbard n_up negative": hubbard("n_up = -1\nn_down = 1", "n_up"),
    "hubbard n_up too many": hubbard("n_up = 9\nn_down = 1", "filling"),
    "hubbard no electrons": hubbard("n_up = 0\nn_down = 0", "n_up"),
    "hubbard boundary": hubbard('boundary = "twisted"', "boundary"),
    "hubbard odd sites": cfg(HUBBARD.format(extra="").replace("size = [4]", "size = [5]"), "n_up"),
    "hubbard with rbm": cfg(HUBBARD.format(extra="").replace('kind = "slater"', 'kind = "rbm"'), "model.kind"),
    "hubbard with exchange": cfg(HUBBARD.format(extra="").replace('kind = "hop"', 'kind = "exchange"'), "sampler"),
    "pauli no terms": cfg('[hamiltonian]\nkind = "pauli"\n', "terms"),
    "pauli bad letter": cfg('[hamiltonian]\nkind = "pauli"\nterms = [[1.0, "XQ", [0, 1]]]\n', "hamiltonian.terms"),
    "pauli short sites": cfg('[hamiltonian]\nkind = "pauli"\nterms = [[1.0, "XX", [0]]]\n', "hamiltonian.terms"),
    "pauli site range": cfg('[hamiltonian]\nkind = "pauli"\nterms = [[1.0, "XX", [0, 99]]]\n', "site 99"),
    "pauli not a list": cfg('[hamiltonian]\nkind = "pauli"\nterms = "XX"\n', "terms"),
    "pauli row short": cfg('[hamiltonian]\nkind = "pauli"\nterms = [[1.0, "XX"]]\n', "terms"),
    "pauli word coefficient": cfg('[hamiltonian]\nkind = "pauli"\nterms = [["big", "XX", [0, 1]]]\n', "terms"),
    "file without path": cfg('[hamiltonian]\nkind = "file"\nformat = "nqs"\n', "path"),
    "file format": cfg('[hamiltonian]\nkind = "file"\nformat = "xml"\npath = "h.xml"\n', "format"),
    "file options not a table": ham_file("nqs", 6, nqs_text(NQS_TOML), "options", options="options = 3"),
    # ------------------------------------------------------------------------------------ [model]
    "model kind": tiny("model", 'kind = "rbm"', 'kind = "transformer"', "model"),
    "model alpha negative": tiny("model", "alpha = 1", "alpha = -1", "model.alpha"),
    "model alpha zero": tiny("model", "alpha = 1", "alpha = 0", "alpha"),
    "model param_dtype": tiny("model", 'param_dtype = "real"', 'param_dtype = "quaternion"', "model.param_dtype"),
    "model init_scale zero": tiny("model", None, "init_scale = 0", "model.init_scale"),
    "model marshall triangular": cfg(
        '[lattice]\nkind = "triangular"\nsize = [3, 3]\n[model]\nmarshall_sign = true\n', "marshall"
    ),
    "model shared_weights jastrow": tiny(
        "model", 'kind = "rbm"', 'kind = "jastrow"\nshared_weights = "translation"', "shared_weights"
    ),
    "model n_hidden for rbm": tiny("model", None, "n_hidden = 4", "n_hidden"),
    "model symmetry k word": tiny("model", None, 'symmetry = {k = ["banana"]}', "model.symmetry"),
    "model symmetry k count": tiny("model", None, "symmetry = {k = [0, 0]}", "model.symmetry.k"),
    "model symmetry point group": tiny("model", None, 'symmetry = {point_group = "Z9"}', "model.symmetry"),
    "model unknown key": tiny("model", None, "depth = 3", "model.depth"),
    # ---------------------------------------------------------------------------------- [sampler]
    "sampler kind": tiny("sampler", 'kind = "exchange"', 'kind = "gibbs"', "sampler.kind"),
    "sampler n_samples zero": tiny("sampler", "n_samples = 64", "n_samples = 0", "sampler.n_samples"),
    "sampler n_chains negative": tiny("sampler", "n_chains = 8", "n_chains = -2", "sampler.n_chains"),
    "sampler fewer samples than chains": tiny("sampler", "n_samples = 64", "n_samples = 4", "sampler.n_samples"),
    "sampler power": tiny("sampler", None, "power = 3", "sampler.power"),
    "sampler p_exchange": tiny("sampler", None, "p_exchange = 2", "'p_exchange' is not a parameter of kind 'exchange'"),
    "sampler local with total_sz": tiny("sampler", 'kind = "exchange"', 'kind = "local"', "sampler.kind"),
    "sampler n_discard word": tiny("sampler", "n_discard = 4", 'n_discard = "x"', "sampler.n_discard"),
    "sampler exact too large": cfg(
        '[lattice]\nsize = [40]\n[hamiltonian]\nkind = "ising"\n[sampler]\nkind = "exact"\n', "sampler.kind"
    ),
    # -------------------------------------------------------------------------------- [optimizer]
    "optimizer kind": tiny("optimizer", 'kind = "sr"', 'kind = "lbfgs"', "optimizer.kind"),
    "optimizer learning_rate zero": tiny("optimizer", "learning_rate = 0.05", "learning_rate = 0", "learning_rate"),
    "optimizer learning_rate negative": tiny(
        "optimizer", "learning_rate = 0.05", "learning_rate = -1", "optimizer.learning_rate"
    ),
    "optimizer n_steps negative": tiny("optimizer", "n_steps = 10", "n_steps = -5", "optimizer.n_steps"),
    "optimizer average_last": tiny("optimizer", None, "average_last = 20", "average_last"),
    "optimizer diag_shift_min": tiny(
        "optimizer", None, "diag_shift_decay = 0.9\ndiag_shift_min = 0.1", "diag_shift_min"
    ),
    "optimizer solver": tiny("optimizer", None, 'solver = "qr"', "optimizer.solver"),
    "optimizer precision": tiny("optimizer", None, 'precision = "float16"', "optimizer.precision"),
    "optimizer diag_shift_decay": tiny("optimizer", None, "diag_shift_decay = 2", "optimizer.diag_shift_decay"),
    # ----------------------------------------------------------------------------------- [output]
    "output dir number": tiny("output", 'dir = "run"', "dir = 5", "output.dir"),
    "output checkpoint_every zero": tiny("output", "checkpoint_every = 5", "checkpoint_every = 0", "checkpoint_every"),
    "output unknown key": tiny("output", None, 'format = "hdf5"', "output.format"),
    "output dir is a file": Case(
        ["run", "{tmp}/c.toml", "--quiet"],
        "output.dir",
        lambda tmp: [
            (tmp / "afile").write_text("x"),
            (tmp / "c.toml").write_text(TINY.replace('dir = "run"', f'dir = "{tmp}/afile"')),
        ],
    ),
    "output dir under a file": Case(
        ["run", "{tmp}/c.toml", "--quiet"],
        "output.dir",
        lambda tmp: [
            (tmp / "afile").write_text("x"),
            (tmp / "c.toml").write_text(TINY.replace('dir = "run"', f'dir = "{tmp}/afile/sub/run"')),
        ],
    ),
    "output dir not writable": pytest.param(
        Case(
            ["run", "{tmp}/c.toml", "--quiet", "--out", "{tmp}/locked/run"],
            "output.dir",
            lambda tmp: [(tmp / "locked").mkdir(mode=0o500), (tmp / "c.toml").write_text(TINY)],
        ),
        marks=pytest.mark.skipif(ROOT, reason="root writes into read-only folders"),
    ),
    "output --out is a file": Case(
        ["run", "{tmp}/c.toml", "--quiet", "--out", "{tmp}/c.toml"],
        "output.dir",
        lambda tmp: (tmp / "c.toml").write_text(TINY),
    ),
    # ------------------------------------------------------------------------------- [evaluation]
    "evaluation lanczos_step list": cfg("[evaluation]\nlanczos_step = [1]\n", "evaluation.lanczos_step"),
    "evaluation lanczos_power": cfg("[evaluation]\nlanczos_power = 5\n", "evaluation.lanczos_power"),
    "evaluation lanczos_samples": cfg("[evaluation]\nlanczos_samples = 0\n", "evaluation.lanczos_samples"),
    "evaluation unknown key": cfg("[evaluation]\nbootstrap = 10\n", "evaluation.bootstrap"),
    # --------------------------------------------------------------------------------- [parallel]
    "parallel threads zero": cfg("[parallel]\nthreads = 0\n", "parallel.threads"),
    "parallel num_processes zero": cfg("[parallel]\nnum_processes = 0\n", "parallel.num_processes"),
    "parallel shard word": cfg('[parallel]\nshard = "maybe"\n', "parallel.shard"),
    "parallel unknown key": cfg("[parallel]\ngpus = 4\n", "parallel.gpus"),
    # --------------------------------------------------------------------------- [imaginary_time]
    "imaginary_time dtau zero": cfg(
        '[hamiltonian]\nkind = "ising"\n[imaginary_time]\ndtau = 0\n', "dtau", "imaginary-time"
    ),
    "imaginary_time n_steps zero": cfg(
        '[hamiltonian]\nkind = "ising"\n[imaginary_time]\nn_steps = 0\n', "imaginary_time.n_steps", "imaginary-time"
    ),
    "imaginary_time method": cfg(
        '[hamiltonian]\nkind = "ising"\n[imaginary_time]\nmethod = "qmc"\n', "imaginary_time.method", "imaginary-time"
    ),
    "imaginary_time unknown key": cfg(
        '[hamiltonian]\nkind = "ising"\n[imaginary_time]\nbeta = 2\n', "imaginary_time.beta", "imaginary-time"
    ),
    "imaginary_time hubbard": hubbard("", "hamiltonian.kind", "imaginary-time"),
    "imaginary_time total_sz": tiny("hamiltonian", None, "", "total_sz", "imaginary-time"),
    "imaginary_time zero field": cfg('[hamiltonian]\nkind = "ising"\nh = 0\n', "hamiltonian.h", "imaginary-time"),
    "imaginary_time triangular": cfg(
        '[lattice]\nkind = "triangular"\nsize = [3, 3]\n[hamiltonian]\nkind = "heisenberg"\n',
        "lattice",
        "imaginary-time",
    ),
    "imaginary_time --dtau negative": Case(
        ["imaginary-time", "{tmp}/c.toml", "--dtau", "-1"],
        "--dtau",
        lambda tmp: (tmp / "c.toml").write_text('[hamiltonian]\nkind = "ising"\n'),
    ),
    "imaginary_time --n-steps zero": Case(
        ["imaginary-time", "{tmp}/c.toml", "--n-steps", "0"],
        "--n-steps",
        lambda tmp: (tmp / "c.toml").write_text('[hamiltonian]\nkind = "ising"\n'),
    ),
    "imaginary_time output is a file": Case(
        ["imaginary-time", "{tmp}/c.toml", "--out", "{tmp}/c.toml"],
        "output.dir",
        lambda tmp: (tmp / "c.toml").write_text('[hamiltonian]\nkind = "ising"\n'),
    ),
    # ----------------------------------------------------------------------------------- [driver]
    "driver kind": cfg('[driver]\nkind = "tensor_network"\n', "driver"),
    "driver not a table": cfg('driver = "vmc"\n', "driver"),
    "driver unknown key": cfg('[driver]\nkind = "auto"\nrecover = true\n', "driver.recover: 'recover' is not a"),
    # ---------------------------------------------------------------- top level, syntax, the file itself
    "unknown section": cfg("[solver]\nx = 1\n", "solver"),
    "unknown top-level key": cfg("colour = 1\n", "colour"),
    "seed word": cfg('seed = "abc"\n', "seed"),
    "seed float": cfg("seed = 1.5\n", "seed"),
    "toml unclosed table": cfg("[lattice\nkind=", "not valid TOML"),
    "toml duplicate key": cfg('[lattice]\nkind = "chain"\nkind = "square"\n', "not valid TOML"),
    "toml unclosed string": cfg('[lattice]\nkind = "chain\n', "not valid TOML"),
    "toml duplicate table": cfg("[lattice]\nsize = [8]\n[lattice]\nsize = [6]\n", "not valid TOML"),
    "toml cut config": cfg(TINY[: TINY.index("n_chains") + 5], "not valid TOML"),
    "config binary": Case(
        ["run", "{tmp}/c.toml"], "c.toml", lambda tmp: (tmp / "c.toml").write_bytes(b"\xff\xfe\x00\x81")
    ),
    "config missing": Case(["run", "{tmp}/none.toml"], "none.toml", None),
    "config is a folder": Case(["ed", "{tmp}"], "folder", None),
    "ed config missing": Case(["ed", "{tmp}/none.toml"], "none.toml", None),
    "imaginary-time config missing": Case(["imaginary-time", "{tmp}/none.toml"], "none.toml", None),
    # ------------------------------------------------------------------------------ subcommand arguments
    "run --n-steps negative": Case(
        ["run", "{tmp}/c.toml", "--n-steps", "-1"], "--n-steps", lambda tmp: (tmp / "c.toml").write_text(TINY)
    ),
    "run --seed word": Case(
        ["run", "{tmp}/c.toml", "--seed", "abc"], "--seed", lambda tmp: (tmp / "c.toml").write_text(TINY)
    ),
    "ed -k zero": Case(["ed", "{tmp}/c.toml", "-k", "0"], "-k", lambda tmp: (tmp / "c.toml").write_text(TINY)),
    "ed --spin-flip alone": Case(
        ["ed", "{tmp}/c.toml", "--spin-flip"], "--spin-flip", lambda tmp: (tmp / "c.toml").write_text(TINY)
    ),
    "ed --sectors word": Case(
        ["ed", "{tmp}/c.toml", "--sectors", "all"], "--sectors", lambda tmp: (tmp / "c.toml").write_text(TINY)
    ),
    "ed too large": cfg('[lattice]\nsize = [40]\n[hamiltonian]\nkind = "j1j2"\n', "too large", "ed"),
    "unknown subcommand": Case(["train", "x.toml"], "invalid choice", None),
    "plot without folder": Case(["plot"], "run_dir", None),
    # ------------------------------------------------------------------ Hamiltonian files: format "nqs"
    "nqs file not toml": ham_file("nqs", 6, nqs_text("n_sites = [\n"), "h.toml"),
    "nqs file empty": ham_file("nqs", 6, nqs_text(""), "h.toml"),
    "nqs file cut": ham_file("nqs", 6, nqs_text(NQS_TOML[: NQS_TOML.index("[3, 2")]), "h.toml"),
    "nqs file no n_sites": ham_file("nqs", 6, nqs_text(NQS_TOML.replace("n_sites = 6\n", "")), "h.toml"),
    "nqs file hopping row short": ham_file("nqs", 6, nqs_text(NQS_TOML.replace("[0, 1, -1.0]", "[0, 1]")), "h.toml"),
    "nqs file hopping site range": ham_file(
        "nqs", 6, nqs_text(NQS_TOML.replace("[0, 1, -1.0], [1, 0, -1.0]", "[0, 7, -1.0], [7, 0, -1.0]")), "h.toml"
    ),
    "nqs file hopping word": ham_file("nqs", 6, nqs_text(NQS_TOML.replace("[0, 1, -1.0]", '[0, 1, "x"]')), "h.toml"),
    "nqs file not hermitian": ham_file("nqs", 6, nqs_text(NQS_TOML.replace("[1, 0, -1.0]", "[1, 0, -2.0]")), "h.toml"),
    "nqs file n_up too many": ham_file("nqs", 6, nqs_text(NQS_TOML.replace("n_up = 3", "n_up = 9")), "h.toml"),
    "nqs file U word": ham_file(
        "nqs", 6, nqs_text(NQS_TOML.replace("hubbard_U = 4.0", 'hubbard_U = "four"')), "h.toml"
    ),
    "nqs file unknown key": ham_file("nqs", 6, nqs_text(NQS_TOML + "mu = 1.0\n"), "h.toml"),
    "nqs file json broken": ham_file("nqs", 6, nqs_text('{"n_sites": 6, "hopping": [', "h.json"), "h.json"),
    "nqs file json list": ham_file("nqs", 6, nqs_text("[1, 2, 3]", "h.json"), "h.json"),
    "nqs file binary": ham_file("nqs", 6, binary("h.toml"), "h.toml"),
    "nqs file missing": ham_file("nqs", 6, lambda tmp: tmp / "nothere.toml", "nothere.toml"),
    "nqs file is a folder": ham_file("nqs", 6, lambda tmp: tmp, "folder"),
    "nqs file lattice mismatch": ham_file("nqs", 8, nqs_text(NQS_TOML), "lattice"),
    "nqs file with options": ham_file("nqs", 6, nqs_text(NQS_TOML), "options", options="options = {U = 4.0}"),
    "nqs file for ed": ham_file(
        "nqs", 6, nqs_text(NQS_TOML.replace("n_sites = 6", "n_sites = -6")), "h.toml", command="ed"
    ),
    # ----------------------------------------------------------------- Hamiltonian files: format "mvmc"
    "mvmc def missing": ham_file("mvmc", 4, mvmc(drop="trans.def"), "trans.def"),
    "mvmc trans cut": ham_file("mvmc", 4, mvmc(("trans.def", lambda t: lines_cut(t, 12))), "trans.def"),
    "mvmc trans count": ham_file(
        "mvmc", 4, mvmc(("trans.def", lambda t: t.replace("NTransfer      16", "NTransfer      20"))), "trans.def"
    ),
    "mvmc trans number": ham_file(
        "mvmc", 4, mvmc(("trans.def", lambda t: replace_line(t, 6, "    1     0     0     0   one   0.0"))), "trans.def"
    ),
    "mvmc trans columns": ham_file(
        "mvmc", 4, mvmc(("trans.def", lambda t: replace_line(t, 6, "    1     0     0"))), "trans.def"
    ),
    "mvmc intra site range": ham_file(
        "mvmc", 4, mvmc(("coulombintra.def", lambda t: replace_line(t, 5, "    9         4.0"))), "coulombintra.def"
    ),
    "mvmc trans empty": ham_file("mvmc", 4, mvmc(("trans.def", lambda t: "")), "trans.def"),
    "mvmc modpara Nsite word": ham_file(
        "mvmc", 4, mvmc(("modpara.def", lambda t: t.replace("Nsite          4", "Nsite          four"))), "modpara.def"
    ),
    "mvmc modpara Ncond word": ham_file(
        "mvmc", 4, mvmc(("modpara.def", lambda t: t.replace("Ncond          4", "Ncond          x"))), "modpara.def"
    ),
    "mvmc namelist garbage": ham_file(
        "mvmc", 4, mvmc(("namelist.def", lambda t: t + "   Bogus  bogus.def\n")), "namelist.def"
    ),
    "mvmc namelist binary": ham_file("mvmc", 4, mvmc(("namelist.def", None)), "namelist.def"),
    "mvmc empty folder": ham_file("mvmc", 4, lambda tmp: (tmp / "defs").mkdir() or tmp / "defs", "defs"),
    "mvmc def is a folder": ham_file("mvmc", 4, mvmc(("trans.def", "DIR")), "trans.def' is a folder"),
    "mvmc lattice mismatch": ham_file("mvmc", 6, mvmc(), "lattice"),
    # -------------------------------------------------------------- Hamiltonian files: format "stdface"
    "stdface lattice": ham_file("stdface", 8, stdface(STDFACE.replace('"square"', '"cubic"')), "stdface.def"),
    "stdface W word": ham_file("stdface", 8, stdface(STDFACE.replace("W = 4", 'W = "x"')), "stdface.def"),
    "stdface no W": ham_file("stdface", 8, stdface(STDFACE.replace("W = 4\n", "")), "stdface.def"),
    "stdface model": ham_file("stdface", 8, stdface(STDFACE.replace('"Hubbard"', '"Kondo"')), "stdface.def"),
    "stdface garbage line": ham_file("stdface", 8, stdface(STDFACE + "this is not a key\n"), "stdface.def"),
    "stdface empty": ham_file("stdface", 8, stdface(""), "stdface.def"),
    "stdface U word": ham_file("stdface", 8, stdface(STDFACE.replace("U = 4.0", "U = four")), "stdface.def"),
    "stdface nelec odd": ham_file("stdface", 8, stdface(STDFACE.replace("nelec = 6", "nelec = 99")), "stdface.def"),
    # ------------------------------------------------------------ Hamiltonian files: format "wannier90"
    "wannier90 no supercell": ham_file("wannier90", 6, w90(), "supercell"),
    "wannier90 cut": ham_file("wannier90", 6, w90(lines_cut(W90_HR, 8)), "w_hr.dat", "options = {supercell = 3}"),
    "wannier90 number": ham_file(
        "wannier90",
        6,
        w90(replace_line(W90_HR, 5, "   -1    0    0    1    1   minus   0.0")),
        "w_hr.dat",
        "options = {supercell = 3}",
    ),
    "wannier90 num_wann": ham_file(
        "wannier90", 6, w90(replace_line(W90_HR, 1, "           7")), "w_hr.dat", "options = {supercell = 3}"
    ),
    "wannier90 empty": ham_file("wannier90", 6, w90(""), "w_hr.dat", "options = {supercell = 3}"),
    "wannier90 U file missing": ham_file(
        "wannier90", 6, w90(), "nothere_ur.dat", 'options = {supercell = 3, U = "nothere_ur.dat"}'
    ),
    "wannier90 unknown option": ham_file("wannier90", 6, w90(), "w_hr.dat", "options = {supercell = 3, mu = 1}"),
    "wannier90 supercell word": ham_file("wannier90", 6, w90(), "supercell", 'options = {supercell = "big"}'),
    # ----------------------------------------------------------------- run folder: nqs plot RUN_DIR
    "plot folder missing": Case(["plot", "{tmp}/nothere"], "nothere", None),
    "plot folder empty": Case(["plot", "{tmp}"], "history.csv", None),
    "plot folder is a file": Case(["plot", "{tmp}/c.toml"], "c.toml", lambda tmp: (tmp / "c.toml").write_text(TINY)),
    "plot history garbage": in_run("history.csv", "garbage,,,\nxx\n", "history.csv"),
    "plot history empty": in_run("history.csv", "", "history.csv"),
    "plot history header only": in_run("history.csv", lambda t: t.splitlines(True)[0], "history.csv"),
    "plot history cut header": in_run("history.csv", "step,ener", "history.csv"),
    "plot history bad number": in_run("history.csv", HIST.replace("-1.5", "-1.5e"), "history.csv:3"),
    "plot history short row": in_run("history.csv", HIST.replace("0,-1.0,0.1,0.2", "0,-1.0"), "history.csv:2"),
    "plot history step": in_run("history.csv", HIST.replace("1,-1.5", "-1,-1.5"), "history.csv:3"),
    "plot history binary": in_run("history.csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff", "history.csv"),
    "plot history folder": in_run("history.csv", "DIR", "history.csv"),
    "plot history nul": in_run("history.csv", "step,energy,energy_error\n0,\x00,1\n", "history.csv"),
    "plot result garbage": in_run("result.json", "{not json", "result.json"),
    "plot result cut": in_run("result.json", lambda t: t[: len(t) // 2], "result.json"),
    "plot result list": in_run("result.json", "[1, 2]", "result.json"),
    "plot result exact word": in_run("result.json", '{"exact_energy": "low"}', "result.json"),
    "plot result folder": in_run("result.json", "DIR", "result.json"),
    "plot result binary": in_run("result.json", b"\xff\xfe\xfd", "result.json"),
    "plot config garbage": in_run("config.toml", "[hamiltonian\nkind = ", "config.toml"),
    "plot config cut": in_run("config.toml", lambda t: t[: t.index("[hamiltonian]") + 5], "config.toml"),
    "plot config binary": in_run("config.toml", b"\xff\x00\xfe", "config.toml"),
    "plot config folder": in_run("config.toml", "DIR", "config.toml"),
    "plot -o missing folder": Case(["plot", "{tmp}/run", "-o", "{tmp}/no/such/x.png"], "x.png", ("run_folder", None)),
    "plot -o folder": Case(["plot", "{tmp}/run", "-o", "{tmp}"], "folder", ("run_folder", None)),
    # --------------------------------------------------------------- run folder: nqs run CONFIG --resume
    "resume config garbage": in_run("config.toml", "[seed\n", "config.toml", "resume"),
    "resume config cut": in_run("config.toml", lambda t: t[: t.index("[model]") + 4], "config.toml", "resume"),
    "resume config binary": in_run("config.toml", b"\x00\xff\xfe", "config.toml", "resume"),
    "resume config folder": in_run("config.toml", "DIR", "config.toml", "resume"),
    "resume config differs": in_run(
        "config.toml", lambda t: t.replace("alpha = 1.0", "alpha = 2.0"), "differs", "resume"
    ),
    "resume history garbage": in_run("history.csv", "what,is,this\n1,2,3\n", "history.csv", "resume"),
    "resume history bad row": in_run(
        "history.csv", lambda t: t.replace("\n2,", "\n2,oops,", 1), "history.csv:4", "resume"
    ),
    "resume history binary": in_run("history.csv", b"\xff\xfe\x00\x00", "history.csv", "resume"),
    "resume history folder": in_run("history.csv", "DIR", "history.csv", "resume"),
    "resume no checkpoint": in_run("checkpoint.npz", None, "no checkpoint", "resume"),
}

# Values the config's strict checks refuse (booleans and strings are not numbers, non-finite values).
STRICT = {
    "learning_rate true": tiny("optimizer", "learning_rate = 0.05", "learning_rate = true", "optimizer.learning_rate"),
    "learning_rate inf": tiny("optimizer", "learning_rate = 0.05", "learning_rate = inf", "optimizer.learning_rate"),
    "diag_shift inf": tiny("optimizer", None, "diag_shift = inf", "optimizer.diag_shift"),
    "heisenberg J nan": tiny("hamiltonian", None, "J = nan", "hamiltonian.J"),
    "heisenberg J inf": tiny("hamiltonian", None, "J = inf", "hamiltonian.J"),
    "hubbard U string number": hubbard('U = "4.0"', "hamiltonian.U"),
    "lattice pbc word": tiny("lattice", None, 'pbc = "yes"', "lattice.pbc"),
    "sampler n_chains true": tiny("sampler", "n_chains = 8", "n_chains = true", "sampler.n_chains"),
    "evaluation lanczos_step word": cfg(TINY + '[evaluation]\nlanczos_step = "yes"\n', "evaluation.lanczos_step"),
}


def _params():
    for name, case in CASES.items():
        if isinstance(case, Case):
            yield pytest.param(case, id=name)
        else:  # a pytest.param with marks
            yield pytest.param(*case.values, id=name, marks=case.marks)
    for name, case in STRICT.items():
        yield pytest.param(case, id=f"strict: {name}")


@pytest.fixture
def no_work(monkeypatch):
    """The first step of real work fails the case with :class:`Accepted`."""
    import nqs.exact
    import nqs.imaginary_time
    import nqs.workflow
    from nqs.workflow import run_folder

    def stop(*args, **kwargs):
        raise Accepted("the input was accepted")

    monkeypatch.setattr(run_folder, "exact_reference", stop)
    monkeypatch.setattr(run_folder, "optimize", stop)
    real_reference = nqs.workflow.exact_reference

    def reference(problem, *args, **kwargs):  # `nqs ed` on a lattice too large for ED: its message is the case
        if problem.lattice.n_sites > 30:
            return real_reference(problem, *args, **kwargs)
        stop()

    monkeypatch.setattr(nqs.workflow, "exact_reference", reference)
    monkeypatch.setattr(nqs.workflow, "sector_table", stop)
    monkeypatch.setattr(nqs.imaginary_time, "exact_tau_energy", stop)
    monkeypatch.setattr(nqs.imaginary_time, "tfim_dbm", stop)
    monkeypatch.setattr(nqs.imaginary_time, "heisenberg_dbm", stop)
    monkeypatch.setattr(nqs.exact, "lowest_energies", stop)


@pytest.mark.parametrize("case", list(_params()))
def test_malformed_input_is_one_line_exit_2(case, tmp_path, monkeypatch, capsys, no_work, request):
    from nqs import cli

    monkeypatch.chdir(tmp_path)
    files = case.files
    if isinstance(files, tuple):
        src = request.getfixturevalue("run_folder")
        if files[1] is None:
            shutil.copytree(src / "run", tmp_path / "run")
        else:
            files[1](tmp_path, src)
    elif files is not None:
        files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nqs: error: "), lines[0]
    assert len(lines[0]) < 400, lines[0]
    assert case.expect in lines[0], lines[0]


# ------------------------------------------------------------------------- what a good file may hold
def test_plot_leaves_out_a_cut_last_row_with_a_note(run_folder, tmp_path, capsys):
    """A run killed while writing a row leaves it without its line end: the plot shows the complete rows
    and says which row it left out."""
    from nqs import cli

    shutil.copytree(run_folder / "run", tmp_path / "run")
    hist = tmp_path / "run" / "history.csv"
    hist.write_text(hist.read_text() + "5,-3.1,0.0")
    assert cli.main(["plot", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "history.csv:7: the last row is cut short" in err and "left out" in err
    assert (tmp_path / "run" / "convergence.png").stat().st_size > 1000


def test_history_on_resume_keeps_the_rows_before_the_checkpoint(tmp_path):
    from nqs import io

    fields = ("step", "energy", "energy_error", "seconds")
    path = tmp_path / "history.csv"
    path.write_text(
        "step,energy,energy_error,seconds,extra\n" + "".join(f"{k},-{k}.5,0.1,0.01,7\n" for k in range(5)) + "5,-5"
    )
    h = io.History(path, fields, resume_from=3)
    assert [r["step"] for r in h.rows] == [0, 1, 2] and h.rows[1]["energy"] == -1.5
    assert path.read_text().splitlines() == [
        "step,energy,energy_error,seconds",
        *(f"{k},-{k}.5,0.1,0.01" for k in range(3)),
    ]
    with pytest.raises(io.RunFileError, match=r"history.csv:1: header lacks the column\(s\) grad_norm"):
        io.History(path, (*fields, "grad_norm"), resume_from=3)


def test_resume_notes_a_history_with_missing_rows(tmp_path):
    from nqs.workflow.run_folder import _history_note

    assert _history_note(tmp_path, [0, 1, 2, 3, 4], 5) is None
    assert _history_note(tmp_path, [0, 1, 2, 3, 4, 5, 6], 5) is None  # rows after the checkpoint are redone
    assert _history_note(tmp_path, None, 0) is None
    assert "missing or empty" in _history_note(tmp_path, None, 5)
    assert "holds 3 distinct of steps 0..4" in _history_note(tmp_path, [0, 1, 3], 5)


def test_run_summary_without_a_relative_error(tmp_path, monkeypatch, capsys):
    """An exact energy of 0 (e.g. an empty or a full band) has no relative error: the summary says so."""
    from nqs import cli
    from nqs.workflow import run_folder

    result = {
        "energy": {"mean": 0.0, "error": 0.0, "variance": 0.0, "per_site": 0.0},
        "v_score": 0.0,
        "exact_energy": 0.0,
        "exact_method": "ED",
        "relative_error": None,
        "units": "units of t",
        "n_steps": 2,
        "seconds_per_step": 0.01,
        "seconds_total": 1.0,
    }
    monkeypatch.setattr(run_folder, "solve", lambda *a, **k: result)
    monkeypatch.setattr("nqs.workflow.solve", lambda *a, **k: result)
    (tmp_path / "c.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "c.toml", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "rel. error  = n/a (the exact energy is 0)" in out


def test_output_dir_not_writable_is_refused_before_any_work(tmp_path, monkeypatch, capsys, no_work):
    """As root every folder is writable, so the refusal is shown with ``os.access`` answering as for a user."""
    from nqs import cli
    from nqs.workflow import run_folder

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(run_folder.os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    (tmp_path / "c.toml").write_text(TINY)
    assert cli.main(["run", str(tmp_path / "c.toml"), "--quiet", "--out", str(locked / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"nqs: error: output.dir: {locked}/run is not writable ({locked} cannot take new folders)"
    assert not (locked / "run").exists()
