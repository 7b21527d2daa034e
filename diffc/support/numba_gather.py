"""Numba helpers for the gather ``x[np.arange(m), idx]`` and its adjoint, as loops.

Numba's NumPy subset allows one index array per subscript, so the gather
and its scatter are loops. An index follows NumPy: a negative one counts from
the end of the row, one out of range raises ``IndexError`` (never a read or
write out of bounds), as NumPy's fancy indexing does in the NumPy back end.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def gather_rows(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x[np.arange(m), idx]``: entry ``idx[i]`` of row ``i``."""
    m, k = x.shape
    out = np.empty(m, dtype=x.dtype)
    for i in range(m):
        j = idx[i]
        if j < 0:
            j += k
        if j < 0 or j >= k:
            raise IndexError("index " + str(idx[i]) + " is out of bounds for axis 1 with size " + str(k))
        out[i] = x[i, j]
    return out


@numba.njit(cache=True)
def scatter_rows(g: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Zeros of shape ``(m, k)`` with ``g[i]`` at ``[i, idx[i]]``: the adjoint of :func:`gather_rows`."""
    m = g.shape[0]
    out = np.zeros((m, k), dtype=g.dtype)
    for i in range(m):
        j = idx[i]
        if j < 0:
            j += k
        if j < 0 or j >= k:
            raise IndexError("index " + str(idx[i]) + " is out of bounds for axis 1 with size " + str(k))
        out[i, j] = g[i]
    return out
