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

REQUIRES = {"take3": ("checked",), "scatter_add3": ("checked",), "take_along3": ("entry",),
            "scatter_add_along3": ("entry",)}


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


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def take_along3(x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``np.take_along_axis`` of (before, size, after) arrays along the middle axis; every index checked first."""
    before, size, after = x.shape
    count = idx.shape[1]
    at = np.empty(idx.shape, dtype=np.int64)
    for a in range(before):
        for k in range(count):
            for b in range(after):
                at[a, k, b] = entry(idx[a, k, b], size, axis)
    out = np.empty(idx.shape, dtype=x.dtype)
    for a in range(before):
        for k in range(count):
            for b in range(after):
                out[a, k, b] = x[a, at[a, k, b], b]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def scatter_add_along3(g: np.ndarray, idx: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Zeros of (before, size, after) with ``g[a, k, b]`` added at ``[a, idx[a, k, b], b]``: take_along3's adjoint."""
    before, count, after = g.shape
    at = np.empty(idx.shape, dtype=np.int64)
    for a in range(before):
        for k in range(count):
            for b in range(after):
                at[a, k, b] = entry(idx[a, k, b], size, axis)
    out = np.zeros((before, size, after), dtype=g.dtype)
    for a in range(before):
        for k in range(count):
            for b in range(after):
                out[a, at[a, k, b], b] += g[a, k, b]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def arg_extreme3(x: np.ndarray, largest: bool) -> np.ndarray:
    """The first maximum (``largest``) or minimum along the middle axis of (before, size, after); a NaN is
    both, as in NumPy's argmax and argmin."""
    before, size, after = x.shape
    if size == 0:
        raise ValueError("attempt to get argmax or argmin of an empty sequence")
    out = np.zeros((before, after), dtype=np.int64)
    for a in range(before):
        for b in range(after):
            best = x[a, 0, b]
            for k in range(1, size):
                if best != best:
                    break
                v = x[a, k, b]
                if (v > best if largest else v < best) or v != v:
                    best = v
                    out[a, b] = k
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def argsort3(x: np.ndarray) -> np.ndarray:
    """A stable sort's permutation along the middle axis of (before, size, after) (NaNs last, as in NumPy)."""
    before, size, after = x.shape
    out = np.empty((before, size, after), dtype=np.int64)
    for a in range(before):
        for b in range(after):
            out[a, :, b] = np.argsort(x[a, :, b].copy(), kind="mergesort")
    return out
