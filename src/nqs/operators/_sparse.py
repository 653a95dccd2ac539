"""Sparse matrices of move-based operators on an enumerated sector (shared by Pauli and fermion sums)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def sparse_from_moves(op, hilbert, new_codes: Callable[[np.ndarray], np.ndarray], chunk: int) -> object:
    """CSR matrix ⟨x|H|x'⟩ over ``hilbert``'s sorted codes.

    ``op.elements(states, xp=np)`` gives the diagonal and the (n, G) move elements; ``new_codes(codes)``
    gives the (n, G) codes of the moved configurations.  A nonzero element whose target lies outside
    the sector is an error (the operator does not conserve it).
    """
    import scipy.sparse as sp

    codes = hilbert.all_codes()
    dim = len(codes)
    dtype = np.float64 if op.is_real else np.complex128
    rows, cols, vals = [], [], []
    for start in range(0, dim, chunk):
        cc = codes[start : start + chunk]
        diag, mels = op.elements(hilbert.codes_to_states(cc), xp=np)
        r = np.arange(start, start + len(cc))
        rows.append(r)
        cols.append(r)
        vals.append(np.asarray(diag, dtype=dtype))
        if op.n_conn:
            new = new_codes(cc)
            nz = mels != 0
            idx = np.minimum(np.searchsorted(codes, new), dim - 1)
            if np.any(nz & (codes[idx] != new)):
                raise ValueError(
                    f"the operator {op.name!r} leaves the Hilbert-space sector ({hilbert.describe()}); "
                    "drop the sector constraint or use an operator that conserves it"
                )
            rows.append(np.broadcast_to(r[:, None], mels.shape)[nz])
            cols.append(idx[nz])
            vals.append(mels[nz].astype(dtype))
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(dim, dim))
    m.sum_duplicates()
    return m
