"""Numba helpers for integer indexing on any axis (``np.take``) and its adjoint (``np.add.at``), as loops.

The printer views the indexed array as (before, axis, after), so one helper
serves every rank and axis. Every index is checked before anything is read or
written: a negative one counts from the end, as NumPy's, and one out of range
raises ``IndexError`` with NumPy's message; no entry outside the array is
ever touched.
"""

from __future__ import annotations

import numba
import numpy as np

REQUIRES = {"take3": ("checked",), "scatter_add3": ("checked",)}


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def entry(i: int, size: int, axis: int) -> int:
    """Index ``i`` of an axis of ``size`` entries as NumPy reads it: negative counts from the end."""
    j = i + size if i < 0 else i
    if j < 0 or j >= size:
        raise IndexError("index " + str(i) + " is out of bounds for axis " + str(axis) + " with size " + str(size))
    return j


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def checked(idx: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Every entry of ``idx`` in ``[0, size)``: checked (and counted from the end) before any read."""
    out = np.empty(idx.shape[0], dtype=np.int64)
    for k in range(idx.shape[0]):
        i = idx[k]
        j = i + size if i < 0 else i
        if j < 0 or j >= size:
            raise IndexError("index " + str(i) + " is out of bounds for axis " + str(axis) + " with size " + str(size))
        out[k] = j
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def take3(x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``x[:, idx, :]`` of a (before, size, after) array: ``np.take(x, idx, axis=1)`` (``axis``: the user's, for
    the message)."""
    before, size, after = x.shape
    at = checked(idx, size, axis)
    out = np.empty((before, at.shape[0], after), dtype=x.dtype)
    for a in range(before):
        for k in range(at.shape[0]):
            j = at[k]
            for b in range(after):
                out[a, k, b] = x[a, j, b]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def scatter_add3(g: np.ndarray, idx: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Zeros of (before, size, after) with ``g[:, k, :]`` added at ``idx[k]``: repeated indices add up."""
    before, count, after = g.shape
    at = checked(idx, size, axis)
    out = np.zeros((before, size, after), dtype=g.dtype)
    for a in range(before):
        for k in range(count):
            j = at[k]
            for b in range(after):
                out[a, j, b] += g[a, k, b]
    return out
