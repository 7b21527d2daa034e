"""Numba helpers for the gather ``x[np.arange(m), idx]`` and its adjoint, as loops.

Numba's NumPy subset allows one index array per subscript, so the gather
and its scatter are loops. An index follows NumPy: a negative one counts from
the end of the row, one out of range raises ``IndexError`` (never a read or
write out of bounds), as NumPy's fancy indexing does in the NumPy back end.
"""

from __future__ import annotations

import numba
import numpy as np

REQUIRES = {"gather_rows": ("column",), "scatter_rows": ("column",)}


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def column(j: int, k: int) -> int:
    """Index ``j`` of a row of ``k`` entries as NumPy reads it: negative counts from the end."""
    if j < 0:
        j += k
    if j < 0 or j >= k:
        raise IndexError("index " + str(j if j >= 0 else j - k) + " is out of bounds for axis 1 with size " + str(k))
    return j


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def gather_rows(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x[np.arange(m), idx]``: entry ``idx[i]`` of row ``i``."""
    m, k = x.shape
    out = np.empty(m, dtype=x.dtype)
    for i in range(m):
        out[i] = x[i, column(idx[i], k)]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def scatter_rows(g: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Zeros of shape ``(m, k)`` with ``g[i]`` at ``[i, idx[i]]``: the adjoint of :func:`gather_rows`."""
    m = g.shape[0]
    out = np.zeros((m, k), dtype=g.dtype)
    for i in range(m):
        out[i, column(idx[i], k)] = g[i]
    return out
