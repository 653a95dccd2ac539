"""Sums of Pauli strings, H = Σ_t c_t P_t, with P_t a product of X, Y, Z on a few sites.

Action as moves
---------------
For a configuration x the operator returns, with shapes fixed at construction (so that it runs
inside ``jit``):

* ``diag``: the diagonal element ⟨x|H|x⟩;
* for every *flip group* g (the terms flipping the same set of sites): the matrix element
  ``mels[g] = ⟨x|H|x'_g⟩``, the sites that change ``sites[g]`` (padded with ``n_sites``),
  their new values ``new_values[g]`` and a ``mask[g]`` for the padding.

With X|s⟩ = |−s⟩, Y|s⟩ = i s|−s⟩, Z|s⟩ = s|s⟩ (s = ±1) one finds
⟨x|P|x'⟩ = c · (−i)^{n_Y} · Π_{j ∈ Y ∪ Z} x_j  for x' = x with the X and Y sites flipped.

The same element formula serves the jitted local energies (``jax.numpy``) and the sparse
matrix used by exact diagonalization (``numpy``), through the ``xp`` argument.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ._sparse import sparse_from_moves
from .moves import apply_moves

_PAULI = set("XYZI")


def _pad(rows: list[list[int]], width: int, fill: int) -> np.ndarray:
    out = np.full((len(rows), max(width, 1)), fill, dtype=np.int32)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out


@dataclass(frozen=True, eq=False)
class PauliSum:
    """H = Σ_t c_t P_t on ``n_sites`` spins.

    ``terms`` is a sequence of ``(coefficient, ops, sites)`` with ``ops`` a string over
    ``"XYZI"`` and ``sites`` the sites they act on, e.g. ``(0.25, "XX", (0, 1))``.
    """

    n_sites: int
    terms: tuple
    name: str = "pauli"

    def __init__(self, n_sites: int, terms: Iterable[tuple], name: str = "pauli"):
        object.__setattr__(self, "n_sites", int(n_sites))
        object.__setattr__(self, "name", name)
        clean = []
        for t in terms:
            if len(t) != 3:
                raise ValueError(f"a Pauli term is (coefficient, ops, sites), got {t!r}")
            c, ops, sites = t
            ops = str(ops).upper()
            sites = tuple(int(s) for s in np.atleast_1d(sites))
            if len(ops) != len(sites):
                raise ValueError(f"Pauli term {ops!r} acts on {len(ops)} sites but names {len(sites)}")
            if set(ops) - _PAULI:
                raise ValueError(f"Pauli term {ops!r}: letters must be X, Y, Z or I")
            if len(set(sites)) != len(sites):
                raise ValueError(f"Pauli term {ops!r} on {sites}: a site appears twice")
            for s in sites:
                if not 0 <= s < n_sites:
                    raise ValueError(f"Pauli term {ops!r} on {sites}: site {s} outside 0..{n_sites - 1}")
            keep = [(o, s) for o, s in zip(ops, sites, strict=True) if o != "I"]
            clean.append((complex(c), "".join(o for o, _ in keep), tuple(s for _, s in keep)))
        object.__setattr__(self, "terms", tuple(clean))
        object.__setattr__(self, "_compiled", self._compile())

    # ------------------------------------------------------------------ compile
    def _compile(self):
        n = self.n_sites
        diag_c, diag_s = [], []
        groups: dict[tuple[int, ...], list[tuple[complex, list[int]]]] = defaultdict(list)
        for c, ops, sites in self.terms:
            if c == 0:
                continue
            flips = tuple(sorted(s for o, s in zip(ops, sites, strict=True) if o in "XY"))
            signs = [s for o, s in zip(ops, sites, strict=True) if o in "YZ"]
            coef = c * (-1j) ** ops.count("Y")
            if flips:
                groups[flips].append((coef, signs))
            else:
                diag_c.append(coef)
                diag_s.append(signs)
        flip_keys = sorted(groups)
        kd = max((len(s) for s in diag_s), default=0)
        kf = max((len(f) for f in flip_keys), default=0)
        nt = max((len(groups[f]) for f in flip_keys), default=0)
        ks = max((len(s) for f in flip_keys for _, s in groups[f]), default=0)
        off_c = np.zeros((len(flip_keys), max(nt, 1)), dtype=complex)
        off_s = np.full((len(flip_keys), max(nt, 1), max(ks, 1)), n, dtype=np.int32)
        for g, f in enumerate(flip_keys):
            for t, (c, s) in enumerate(groups[f]):
                off_c[g, t] = c
                off_s[g, t, : len(s)] = s
        all_c = np.concatenate([np.asarray(diag_c, dtype=complex), off_c.ravel()])
        is_real = bool(np.all(np.abs(all_c.imag) < 1e-15))
        cast = (lambda a: np.ascontiguousarray(a.real)) if is_real else (lambda a: a)
        return {
            "diag_coef": cast(np.asarray(diag_c, dtype=complex).reshape(-1)),
            "diag_sites": _pad(diag_s, kd, n),
            "flip_sites": _pad([list(f) for f in flip_keys], kf, n),
            "off_coef": cast(off_c),
            "off_sites": off_s,
            "is_real": is_real,
        }

    #: At most this many connections have a nonzero element on any configuration of the sector it was set
    #: for (:meth:`for_sector`); local energies then evaluate only those (None: all ``n_conn``).
    max_active: int | None = None

    def for_sector(self, hilbert, max_states: int = 1 << 17, chunk: int = 1 << 14) -> PauliSum:
        """This operator with :attr:`max_active` = the largest number of nonzero off-diagonal elements over
        all states of ``hilbert`` (counted exactly; e.g. 48 of the 64 exchange bonds of the 4×4 J1-J2 model
        at S^z = 0).  Sectors of more than ``max_states`` states are not enumerated: returned unchanged."""
        if hilbert.n_states > max_states or self.n_conn == 0:
            return self
        states = np.asarray(hilbert.all_states())
        most = 0
        for start in range(0, len(states), chunk):
            _, mels = self.elements(states[start : start + chunk], np)
            most = max(most, int(np.max(np.count_nonzero(np.abs(mels) > 0, axis=-1))))
        if most >= self.n_conn:
            return self
        op = copy.copy(self)
        object.__setattr__(op, "max_active", max(most, 1))
        return op

    @property
    def is_real(self) -> bool:
        """True when every matrix element is real (then ``mels`` are float64)."""
        return self._compiled["is_real"]

    @property
    def n_conn(self) -> int:
        """Number of off-diagonal flip groups (connected configurations per x, at most)."""
        return self._compiled["flip_sites"].shape[0]

    @property
    def flip_sites(self) -> np.ndarray:
        """(n_conn, max_flips): connection g flips these sites (padded with n_sites); models use it to
        tabulate their ratios per connection (:meth:`nqs.models.base.FastPath.flip_path`)."""
        return self._compiled["flip_sites"]

    @property
    def max_flips(self) -> int:
        return self._compiled["flip_sites"].shape[1]

    # ------------------------------------------------------------------ action
    def elements(self, x, xp=jnp):
        """Matrix elements for configurations ``x`` of shape (..., n_sites).

        Returns ``diag`` (...,) = ⟨x|H|x⟩ and ``mels`` (..., n_conn) = ⟨x|H|x'_g⟩.
        ``xp`` is ``jax.numpy`` (jittable) or ``numpy`` (exact diagonalization).
        """
        c = self._compiled
        ones = xp.ones(x.shape[:-1] + (1,), dtype=c["diag_coef"].dtype)
        xe = xp.concatenate([x.astype(ones.dtype), ones], axis=-1)
        ds = c["diag_sites"]
        diag = (xp.prod(xe[..., ds], axis=-1) * c["diag_coef"]).sum(-1) if len(ds) else xe[..., 0] * 0
        if self.n_conn == 0:
            return diag, xp.zeros(x.shape[:-1] + (0,), dtype=ones.dtype)
        mels = (xp.prod(xe[..., c["off_sites"]], axis=-1) * c["off_coef"]).sum(-1)
        return diag, mels

    def moves(self, x):
        """Moves to the connected configurations of one configuration ``x`` (n_sites,), jittable.

        Returns ``(diag, mels, sites, new_values, mask)`` with shapes (), (G,), (G, k), (G, k), (G, k).
        Padded sites hold ``n_sites`` (out of range, dropped by :func:`apply_moves`).
        """
        diag, mels = self.elements(x)
        sites = jnp.asarray(self._compiled["flip_sites"])
        mask = sites < self.n_sites
        new_values = -jnp.take(x, sites, mode="clip")
        return diag, mels, sites, new_values.astype(x.dtype), mask

    def connected(self, x):
        """Connected configurations x'_g (G, n_sites) and elements, for one x (n_sites,)."""
        diag, mels, sites, new_values, mask = self.moves(x)
        return diag, mels, apply_moves(x, sites, new_values)

    # ------------------------------------------------------------------ dense/sparse
    def to_sparse(self, hilbert, chunk: int = 1 << 18):
        """Sparse CSR matrix ⟨x|H|x'⟩ on ``hilbert``'s sector (rows and columns sorted by code).

        Raises ValueError when H connects the sector to states outside it.
        """
        fs = self._compiled["flip_sites"]
        # flipping a set of sites toggles the corresponding bits of the code
        flip_masks = np.zeros(len(fs), dtype=np.int64)
        for g, row in enumerate(fs):
            for s in row:
                if s < self.n_sites:
                    flip_masks[g] |= np.int64(1) << np.int64(s)
        return sparse_from_moves(self, hilbert, lambda cc: cc[:, None] ^ flip_masks[None, :], chunk)

    def to_dense(self, hilbert) -> np.ndarray:
        return self.to_sparse(hilbert).toarray()

    def trace(self) -> float:
        """E∞ = Tr H / 2^N over the full spin space: only identity terms contribute.

        This is the V-score's reference energy for spin models (Wu et al., Science 386, 296 (2024);
        0 for Ising, Heisenberg, XXZ and J1-J2).
        """
        return float(sum(c.real for c, ops, _ in self.terms if ops == ""))

    def conserves_sz(self, n_probe: int = 64, seed: int = 0) -> bool:
        """Whether every nonzero element connects states of equal Σσ (checked on random states)."""
        if self.n_conn == 0:
            return True
        rng = np.random.default_rng(seed)
        x = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_probe, self.n_sites))
        _, mels = self.elements(x, xp=np)
        fs = self._compiled["flip_sites"]
        valid = fs < self.n_sites
        xe = np.concatenate([x, np.zeros((n_probe, 1), np.int8)], axis=1)
        dsum = -2 * (xe[:, fs] * valid).sum(-1)
        return bool(np.all((mels == 0) | (dsum == 0)))

    def __add__(self, other: PauliSum) -> PauliSum:
        if other.n_sites != self.n_sites:
            raise ValueError("cannot add operators on different numbers of sites")
        return PauliSum(self.n_sites, self.terms + other.terms, name=self.name)


def _coefficient(c) -> complex | None:
    """A finite real number, or ``[re, im]`` of two, as a complex number (None otherwise; bools are not numbers)."""

    def real(x) -> bool:
        return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)

    if real(c):
        return complex(c)
    if isinstance(c, list | tuple) and len(c) == 2 and all(real(x) for x in c):
        return complex(c[0], c[1])
    return None


def pauli_terms_from_spec(spec: Sequence) -> list[tuple]:
    """Parse user terms ``[[coef, "XX", [i, j]], ...]`` (config files) into PauliSum terms.

    ``coef`` is a real number or ``[re, im]``; a ``ValueError`` names the entry (``entry 2, [...]``) and
    what is wrong with it.
    """
    if not isinstance(spec, list | tuple):
        raise ValueError(f'must be a list of [coefficient, "ops", [sites]] entries, got {spec!r}')
    out = []
    for i, t in enumerate(spec):
        where = f"entry {i}, {t!r}"
        if not isinstance(t, list | tuple) or len(t) != 3:
            raise ValueError(f'{where}: expected [coefficient, "ops", [sites]]')
        c, ops, sites = t
        coef = _coefficient(c)
        if coef is None:
            raise ValueError(f"{where}: the coefficient {c!r} is not a number (write a real number or [re, im])")
        if not isinstance(ops, str) or not ops or set(ops.upper()) - _PAULI:
            raise ValueError(f'{where}: the operators {ops!r} must be a string of X, Y, Z, I (e.g. "XX")')
        site_list = [sites] if isinstance(sites, int) and not isinstance(sites, bool) else sites
        if not isinstance(site_list, list | tuple) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in site_list
        ):
            raise ValueError(f"{where}: the sites {sites!r} must be a list of integers")
        if len(site_list) != len(ops):
            raise ValueError(f"{where}: {ops!r} acts on {len(ops)} sites but {len(site_list)} are given")
        if len(set(site_list)) != len(site_list):
            raise ValueError(f"{where}: a site appears twice")
        out.append((coef, ops, tuple(site_list)))
    return out
