"""Numba helpers: reductions along axes as explicit loops over the rows of a 2-D array.

Numba's NumPy subset has no ``axis``/``keepdims`` on ``np.max``, ``np.min``
and friends, and no tuple axes. The Numba printer therefore moves the reduced
axes of an array to the end (a static ``np.transpose``), flattens it to
``(kept elements, reduced elements)`` and calls one of these helpers, which
loop over the rows. Its result is reshaped (and transposed) back.

NaN and ties follow NumPy: ``np.max`` of a row with a NaN is NaN, and the
element ``np.argmax`` picks (the first maximum, or the first NaN) is where
the gradient goes. The stable forms shift by the row's maximum, replaced by 0
when it is not finite (see :mod:`diffc.support.stable`).
Every helper states ``error_model`` and ``fastmath`` itself: a Numba function
that leaves them unset inherits its first caller's (a fused loop's
``reassoc``/``contract``), and Numba's disk cache, whose key ignores these
flags, would then serve that variant to every later caller.
"""

from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np

REQUIRES = {
    "empty_f64": ("pooled_empty",), "empty_f32": ("pooled_empty",), "pooled_empty": ("PooledBuffer",),
    "where_rows": ("where_rows_into",),
    "rows_max": ("first_max_index",), "rows_min": ("first_min_index",),
    "rows_max_mask": ("first_max_index",), "rows_min_mask": ("first_min_index",),
    "rows_logsumexp": ("first_max_index",), "rows_softmax": ("first_max_index",),
    "rows_log_softmax": ("rows_logsumexp",), "rows_cumsum": ("rows_running",), "rows_cumprod": ("rows_running",),
}


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def first_max_index(row: np.ndarray) -> int:
    """The index np.argmax(row) gives: the first maximum, or the first NaN."""
    if row.shape[0] == 0:
        raise ValueError("zero-size array to reduction operation maximum which has no identity")
    best = 0
    for j in range(1, row.shape[0]):
        if row[best] != row[best]:  # a NaN is the maximum
            break
        if row[j] > row[best] or row[j] != row[j]:
            best = j
    return best


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def first_min_index(row: np.ndarray) -> int:
    """The index np.argmin(row) gives: the first minimum, or the first NaN."""
    if row.shape[0] == 0:
        raise ValueError("zero-size array to reduction operation minimum which has no identity")
    best = 0
    for j in range(1, row.shape[0]):
        if row[best] != row[best]:
            break
        if row[j] < row[best] or row[j] != row[j]:
            best = j
    return best


class PooledBuffer:
    """The owner of a large result array's memory: when the array is freed, its memory waits for the next call.

    A new 8 MB array costs its page faults when it is first written (W5's two
    gradients: 2.4 ms of a 3.2 ms allocate-and-fill on two cores, against 0.8
    ms in reused memory), and glibc hands large blocks back to the kernel as
    soon as they are freed. The array a call returns is a view of this object
    (``np.asarray`` reads ``__array_interface__``), so this object dies with
    the array's last view, and only then is its memory offered to
    ``pooled_empty``. The pool keeps at most ``limit`` bytes (set it to 0 to
    turn the pool off); past that it is emptied, so that sizes a program no
    longer uses do not hold memory. JAX's and PyTorch's allocators keep freed
    buffers the same way.
    """

    pool: ClassVar[dict[tuple[int, str], list[np.ndarray]]] = {}
    limit = 256 * 1024 * 1024

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw
        self.__array_interface__ = raw.__array_interface__

    def __del__(self) -> None:
        raw, pool = self.raw, PooledBuffer.pool
        if sum(b.nbytes for free in list(pool.values()) for b in free) + raw.nbytes > PooledBuffer.limit:
            pool.clear()
        if raw.nbytes <= PooledBuffer.limit:
            pool.setdefault((raw.nbytes, raw.dtype.str), []).append(raw)


def pooled_empty(n: int, dtype: str) -> np.ndarray:
    """np.empty(n, dtype) in memory a freed result left in ``PooledBuffer.pool``, else new (NumPy's, huge pages)."""
    kind = np.dtype(dtype)
    free = PooledBuffer.pool.get((n * kind.itemsize, kind.str))
    try:
        raw = free.pop() if free else np.empty(n, kind)
    except IndexError:  # another thread took the last one
        raw = np.empty(n, kind)
    return np.asarray(PooledBuffer(raw))


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def empty_f64(n: int) -> np.ndarray:
    """np.empty(n) for a result: from 4 MiB on, from ``pooled_empty`` (reused memory, else NumPy's huge pages).

    A fresh gradient array is paid for in page faults when it is first
    written; Numba's own allocator gets 4 KiB pages, NumPy's ``madvise`` gets
    2 MiB ones (W5's two 8 MB gradients: 1.8 ms less per call on two cores),
    and memory a freed result left behind has none.
    """
    if n < 524288:
        return np.empty(n)
    with numba.objmode(out="float64[::1]"):
        out = pooled_empty(n, "<f8")
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def empty_f32(n: int) -> np.ndarray:
    """np.empty(n, dtype=np.float32) for a result, from ``pooled_empty`` from 4 MiB on (see ``empty_f64``)."""
    if n < 1048576:
        return np.empty(n, dtype=np.float32)
    with numba.objmode(out="float32[::1]"):
        out = pooled_empty(n, "<f4")
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_sum(x: np.ndarray) -> np.ndarray:
    """np.sum(x, axis=1) of a 2-D array: Numba compiles its own ``axis`` sum for over a second, this in 0.1 s."""
    out = np.zeros(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i] += x[i, j]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def cols_sum(x: np.ndarray) -> np.ndarray:
    """np.sum(x, axis=0) of a 2-D array, read row by row: each row is added into the result, in order."""
    out = np.zeros(x.shape[1], dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[j] += x[i, j]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def where_rows(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.where(c, a, b) of 2-D arrays whose axes are the result's or 1 (broadcast), row by row.

    Numba's own np.where with broadcasting takes over 1.5 s to compile at every
    call site; this is compiled once and cached. ``a`` is copied into the
    result, then ``where_rows_into`` picks ``b`` where ``c`` is false.
    """
    # NumPy's rule: an axis of 1 takes the others' size, even 0 (max() would make (0, 4) and (1, 4) one row)
    rows = c.shape[0] if c.shape[0] != 1 else a.shape[0] if a.shape[0] != 1 else b.shape[0]
    cols = c.shape[1] if c.shape[1] != 1 else a.shape[1] if a.shape[1] != 1 else b.shape[1]
    out = np.empty((rows, cols), dtype=a.dtype)
    for i in range(rows):  # a, broadcast to the result, then chosen in place
        row = a[min(i, a.shape[0] - 1)]
        for j in range(cols):
            out[i, j] = row[min(j, row.shape[0] - 1)]
    return where_rows_into(c, out, b)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def where_rows_into(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``where_rows`` written into ``a``, which has the result's shape and is the caller's to overwrite.

    ReLU's adjoint ``where(z > 0, g, 0)`` with ``g`` a fresh matrix product:
    no second array. The loops read and write ``a`` through one name, so LLVM
    sees no aliasing and vectorizes them. Rows whose ``c`` and ``b`` are whole,
    or whose ``b`` is one number (``where(c, g, 0)``), take loops that
    vectorize; other broadcasts index with a stride of 0.
    """
    rows, cols = a.shape
    whole_c, whole_b = c.shape[1] == cols, b.shape[1] == cols
    for i in range(rows):
        cr, ar, br = c[min(i, c.shape[0] - 1)], a[i], b[min(i, b.shape[0] - 1)]
        if whole_c and whole_b:
            for j in range(cols):
                ar[j] = ar[j] if cr[j] else br[j]
        elif whole_c:
            other = br[0]
            for j in range(cols):
                ar[j] = ar[j] if cr[j] else other
        else:
            sc, sb = int(whole_c), int(whole_b)
            for j in range(cols):
                ar[j] = ar[j] if cr[j * sc] else br[j * sb]
    return a


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_max(x: np.ndarray) -> np.ndarray:
    """np.max(x, axis=1) of a 2-D array."""
    out = np.empty(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        out[i] = x[i, first_max_index(x[i])]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_min(x: np.ndarray) -> np.ndarray:
    """np.min(x, axis=1) of a 2-D array."""
    out = np.empty(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        out[i] = x[i, first_min_index(x[i])]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_max_mask(x: np.ndarray) -> np.ndarray:
    """True at the first maximum of each row: where the gradient of max goes."""
    out = np.zeros(x.shape, dtype=np.bool_)
    for i in range(x.shape[0]):
        out[i, first_max_index(x[i])] = True
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_min_mask(x: np.ndarray) -> np.ndarray:
    """True at the first minimum of each row: where the gradient of min goes."""
    out = np.zeros(x.shape, dtype=np.bool_)
    for i in range(x.shape[0]):
        out[i, first_min_index(x[i])] = True
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_logsumexp(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x), axis=1)), each row shifted by its maximum (0 if that is not finite).

    An empty row sums to 0, so its log is -inf, as ``np.log(np.sum(np.exp(x)))`` gives.
    """
    out = np.empty(x.shape[0], dtype=x.dtype)
    if x.shape[1] == 0:
        out[:] = -np.inf
        return out
    for i in range(x.shape[0]):
        m = x[i, first_max_index(x[i])]
        if not np.isfinite(m):
            m = 0.0
        total = 0.0
        for j in range(x.shape[1]):
            total += np.exp(x[i, j] - m)
        out[i] = m + np.log(total)
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / sum(exp(x), axis=1), each row shifted by its maximum (an empty row stays empty)."""
    out = np.empty(x.shape, dtype=x.dtype)
    for i in range(x.shape[0] if x.shape[1] else 0):
        m = x[i, first_max_index(x[i])]
        if not np.isfinite(m):
            m = 0.0
        total = 0.0
        for j in range(x.shape[1]):
            out[i, j] = np.exp(x[i, j] - m)
            total += out[i, j]
        for j in range(x.shape[1]):
            out[i, j] = out[i, j] / total
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_log_softmax(x: np.ndarray) -> np.ndarray:
    """x - logsumexp(x, axis=1)."""
    lse = rows_logsumexp(x)
    out = np.empty(x.shape, dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - lse[i]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_prod(x: np.ndarray) -> np.ndarray:
    """np.prod(x, axis=1) of a 2-D array (an empty row's product is 1)."""
    out = np.ones(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i] *= x[i, j]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_running(x: np.ndarray, multiply: bool) -> np.ndarray:
    """np.cumsum(x, axis=1) of a 2-D array, or np.cumprod with ``multiply``: left to right, as NumPy goes."""
    out = np.empty(x.shape, dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if j == 0:
                out[i, j] = x[i, j]
            elif multiply:
                out[i, j] = out[i, j - 1] * x[i, j]
            else:
                out[i, j] = out[i, j - 1] + x[i, j]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_cumsum(x: np.ndarray) -> np.ndarray:
    return rows_running(x, False)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def rows_cumprod(x: np.ndarray) -> np.ndarray:
    return rows_running(x, True)
