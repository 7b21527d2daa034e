"""Tracing NumPy's numerical helpers: gradient, trapezoid, polyval, interp, searchsorted.

Each follows NumPy's own formula (the same operations in the same order,
so the same bits wherever the back end does not reassociate) with the slices,
products and sums diffc already traces. ``searchsorted`` counts comparisons
(an integer, no gradient) so that ``interp`` can gather the segment of each
point; both compare every point with every breakpoint, which is right for the
short tables these functions usually read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from diffc.frontends import trace
from diffc.frontends.trace import Tracer, _fail, _traced


def _operand(value: Any) -> Any:
    """A traced value as it is; anything else as a float64 array."""
    return value if isinstance(value, trace._Traced) else np.asarray(value, dtype=np.float64)


def _gather(table: Any, index: Tracer) -> Any:
    """``table[index]`` for a vector ``table`` and traced integer ``index`` (NumPy dispatches ``np.take`` on its
    first argument only, so a constant table becomes a traced constant first); a 2-D index gathers a table of
    the index's shape."""
    if not isinstance(table, trace._Traced):
        table = Tracer(trace._node(index.graph, np.asarray(table, dtype=np.float64), trace.DType.F64))
    return np.take(table, index)


def _axes(ndim: int, axis: Any, what: str) -> list[int]:
    if axis is None:
        return list(range(ndim))
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise _fail(f"{what}: axis {a} is out of range for an array of rank {ndim}", trace.ShapeError)
    return [int(a) % ndim for a in axes]


def _part(f: Any, axis: int, key: slice | int) -> Any:
    """``f[..., key, ...]`` with ``key`` on ``axis`` (an int keeps the axis, as a length-1 slice)."""
    index: list[Any] = [slice(None)] * np.ndim(f)
    index[axis] = slice(key, key + 1 if key != -1 else None) if isinstance(key, int) else key
    return f[tuple(index)]


def _one_axis(f: Any, axis: int, h: float, edge_order: int, what: str) -> Any:
    """NumPy's uniform-spacing formulas: central differences inside, one-sided ones of ``edge_order`` at the
    two ends."""
    n = int(f.shape[axis])
    if n < edge_order + 1:
        raise _fail(f"{what}: an axis of size {n} is too small for edge_order={edge_order} (it needs "
                    f"{edge_order + 1})", ValueError)
    inside = (_part(f, axis, slice(2, None)) - _part(f, axis, slice(None, -2))) / (2.0 * h)
    if edge_order == 1:
        first = (_part(f, axis, 1) - _part(f, axis, 0)) / h
        last = (_part(f, axis, -1) - _part(f, axis, -2)) / h
    else:
        first = -1.5 / h * _part(f, axis, 0) + 2.0 / h * _part(f, axis, 1) - 0.5 / h * _part(f, axis, 2)
        last = 0.5 / h * _part(f, axis, -3) - 2.0 / h * _part(f, axis, -2) + 1.5 / h * _part(f, axis, -1)
    return np.concatenate((first, inside, last), axis=axis)


def _np_gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: Any = 1) -> Any:
    """``np.gradient`` with uniform spacings (one number, or one per axis); a tuple of arrays for several axes.

    Coordinate arrays (non-uniform spacing) are refused with a message.
    """
    what = "np.gradient"
    x = _traced(f, what)
    axes = _axes(x.ndim, axis, what)
    if edge_order not in (1, 2):
        raise _fail(f"{what}: edge_order must be 1 or 2, got {edge_order!r}", ValueError)
    spacings = list(varargs) if len(varargs) != 1 else list(varargs) * len(axes)
    if not varargs:
        spacings = [1.0] * len(axes)
    if len(spacings) != len(axes):
        raise _fail(f"{what}: {len(varargs)} spacings for {len(axes)} axes", TypeError)
    if any(np.ndim(h) != 0 or isinstance(h, trace._Traced) for h in spacings):
        raise _fail(f"{what}: spacings must be numbers (coordinate arrays are not supported by diffc's tracer)",
                    trace.UnsupportedCallError, function=what)
    out = [_one_axis(x, a, float(h), int(edge_order), what) for a, h in zip(axes, spacings, strict=True)]
    return out[0] if len(out) == 1 else tuple(out)


def _np_trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: Any = -1) -> Tracer:
    """``sum(d * (y[1:] + y[:-1]) / 2)`` along the axis, d = dx or ``diff(x)`` (NumPy's formula)."""
    what = "np.trapezoid"
    values = _operand(y)
    (ax,) = _axes(np.ndim(values), axis, what)
    if x is None:
        d = dx
    else:
        d = np.diff(_operand(x))
        if np.ndim(d) == 1:
            shape = [1] * np.ndim(values)
            shape[ax] = -1
            d = np.reshape(d, tuple(shape))
    upper = _part(values, ax, slice(1, None))
    lower = _part(values, ax, slice(None, -1))
    return np.sum(d * (upper + lower) / 2.0, axis=ax)


def _np_polyval(p: Any, x: Any) -> Any:
    """Horner's rule from the highest coefficient, starting from ``zeros_like(x)`` as NumPy does."""
    coefficients = p if isinstance(p, trace._Traced) else np.asarray(p)
    y = np.zeros_like(_operand(x))
    for k in range(len(coefficients)):
        y = y * x + coefficients[k]
    return y


def _np_searchsorted(a: Any, v: Any, side: Any = "left", sorter: Any = None) -> Tracer:
    """The insertion points of ``v`` in the sorted vector ``a``: how many entries are below (``side='left'``)
    or at most (``'right'``) each value. An integer, no gradient."""
    what = "np.searchsorted"
    if sorter is not None:
        raise _fail(f"{what}(..., sorter=...) is not supported by diffc's tracer: sort a first")
    if side not in ("left", "right"):
        raise _fail(f"{what}: side must be 'left' or 'right', got {side!r}", ValueError)
    table = _operand(a)
    if np.ndim(table) != 1:
        raise _fail(f"{what}: a must be a vector", trace.ShapeError)
    points = _operand(v)
    column = np.expand_dims(points, -1)
    below = (table < column) if side == "left" else (table <= column)
    return np.sum(below, axis=-1)


def _np_interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None, period: Any = None) -> Tracer:
    """Piecewise-linear interpolation in the increasing breakpoints ``xp``: ``slope (x - xp[j]) + fp[j]`` in
    the segment j of each point, ``fp[0]`` (or ``left``) below the first breakpoint and ``fp[-1]`` (or
    ``right``) above the last.

    Convention: at a breakpoint the gradient with respect to x is the slope of the segment on its right;
    at the last breakpoint the value is ``fp[-1]`` exactly (as NumPy returns it) and that gradient is 0.
    """
    what = "np.interp"
    if period is not None:
        raise _fail(f"{what}(..., period=...) is not supported by diffc's tracer")
    xs, fs = _operand(xp), _operand(fp)
    if np.ndim(xs) != 1 or np.ndim(fs) != 1:
        raise _fail(f"{what}: xp and fp must be vectors", trace.ShapeError)
    count = int(np.shape(xs)[0])
    if count != int(np.shape(fs)[0]):
        raise _fail(f"{what}: xp and fp have different lengths ({count} and {int(np.shape(fs)[0])})",
                    trace.ShapeError)
    points = _operand(x)
    if count == 1:
        return np.zeros_like(points) + fs[0]
    segment = np.clip(_np_searchsorted(xs, points, side="right") - 1, 0, count - 2)
    x0, x1 = _gather(xs, segment), _gather(xs, segment + 1)
    f0, f1 = _gather(fs, segment), _gather(fs, segment + 1)
    inside = (f1 - f0) / (x1 - x0) * (points - x0) + f0
    below = fs[0] if left is None else left
    above = fs[count - 1] if right is None else right
    inside = np.where(points == xs[count - 1], fs[count - 1], inside)
    return np.where(points < xs[0], below, np.where(points > xs[count - 1], above, inside))


def _np_convolve(a: Any, v: Any, mode: Any = "full") -> Tracer:
    """The discrete linear convolution of two vectors: the longer one, zero-padded, gathered by a constant
    (L, k) table of positions and weighted by the shorter one (k entries), then the mode's slice of the
    full result, as NumPy cuts it. The work is L k, for L = n + k - 1 outputs."""
    what = "np.convolve"
    first, second = _operand(a), _operand(v)
    if np.ndim(first) != 1 or np.ndim(second) != 1:
        raise _fail(f"{what}: both arguments must be vectors", trace.ShapeError)
    n, k = int(np.shape(first)[0]), int(np.shape(second)[0])
    if n == 0 or k == 0:
        raise _fail(f"{what}: an argument is empty", ValueError)
    if k > n:
        first, second, n, k = second, first, k, n
    if mode not in ("full", "same", "valid"):
        raise _fail(f"{what}: mode must be 'full', 'same' or 'valid', got {mode!r}", ValueError)
    padded = np.concatenate((np.zeros(k - 1), first, np.zeros(k - 1)))
    graph = (first if isinstance(first, trace._Traced) else second).graph
    rows, cols = (Tracer(graph.apply(trace.Op.ARANGE, size=size)) for size in (n + k - 1, k))
    positions = rows[:, None] + (k - 1) - cols[None, :]  # computed by the generated code, not a constant table
    full = np.sum(_gather(padded, positions) * second, axis=1)
    start, length = {"full": (0, n + k - 1), "same": ((k - 1) // 2, n), "valid": (k - 1, n - k + 1)}[mode]
    return full[start:start + length]


def _np_correlate(a: Any, v: Any, mode: Any = "valid") -> Tracer:
    """``np.correlate`` of real vectors: the convolution with ``v`` reversed (NumPy's default mode 'valid').

    NumPy correlates a shorter ``a`` the other way round and reverses the result, so its 'same' slice then
    starts at ceil((n - 1) / 2) of the full result rather than floor.
    """
    first, second = _operand(a), _operand(v)[::-1]
    n, k = int(np.shape(first)[0]), int(np.shape(second)[0])
    if mode != "same" or k <= n:
        return _np_convolve(first, second, mode)
    start = (n - 1) - (n - 1) // 2
    return _np_convolve(first, second, "full")[start:start + k]


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.convolve: _np_convolve, np.correlate: _np_correlate, np.gradient: _np_gradient, np.trapezoid: _np_trapezoid,
    np.polyval: _np_polyval,
    np.searchsorted: _np_searchsorted, np.interp: _np_interp,
}
