"""Tracing NumPy's order statistics and moments: ptp, median, percentile, quantile, cov, corrcoef.

Each is written as NumPy writes it, with the NumPy calls diffc already
traces (a stable sort, ``take_along_axis``, means, a matrix product), so it
needs no op, adjoint or printer of its own: the gradient of a median goes back
through the sort's permutation to the middle entries, as JAX's does. A
position that depends on an axis's size (the middle of a sort) needs that
size as a number; a symbolic size makes diffc specialise the function on the
sizes of the call (docs/sizes.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from diffc.frontends import trace
from diffc.frontends.numerics import _operand
from diffc.frontends.trace import _UNSET, Tracer, _fail, _reject_kwargs, _traced


def _along(a: Any, axis: Any, what: str) -> tuple[Tracer, int]:
    """The traced array and a non-negative axis; ``axis=None`` reads the flattened array (NumPy's rule)."""
    x = _traced(a, what)
    if axis is None:
        return np.ravel(x), 0
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise _fail(f"{what}: axis must be an int or None, got {axis!r} (a tuple of axes is not supported)")
    if not -x.ndim <= axis < x.ndim:
        raise _fail(f"{what}: axis {axis} is out of range for an array of rank {x.ndim}", trace.ShapeError)
    return x, int(axis) % x.ndim


def _kept(result: Tracer, a: Any, axis: Any, keepdims: Any) -> Tracer:
    """The reduced axis put back as a 1 (``keepdims=True``), or every axis for ``axis=None``."""
    if not keepdims:
        return result
    ndim = np.ndim(a)
    axes = tuple(range(ndim)) if axis is None else (int(axis) % ndim,)
    return np.expand_dims(result, axes)


def _take(sorted_: Tracer, index: int, axis: int) -> Tracer:
    """Entry ``index`` of every slice along ``axis`` (the axis removed)."""
    return np.take(sorted_, index, axis=axis)


def _np_ptp(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False) -> Tracer:
    """``max - min``: the gradient goes to the first maximum and (negated) to the first minimum."""
    _reject_kwargs("np.ptp", out=out)
    return np.max(a, axis=axis, keepdims=keepdims) - np.min(a, axis=axis, keepdims=keepdims)


def _np_median(a: Any, axis: Any = None, out: Any = None, overwrite_input: Any = False,
               keepdims: Any = False) -> Tracer:
    """The middle of a stable sort (the mean of the two middle entries for an even count), NaN where a
    slice holds a NaN (NumPy's sort puts it last, so the last entry tells).

    Convention: the gradient goes to the middle entry (half to each of the two middle ones); tied entries
    keep their order, so the first of equal middle entries takes it.
    """
    what = "np.median"
    _reject_kwargs(what, out=out)
    x, ax = _along(a, axis, what)
    n = int(x.shape[ax])
    if n == 0:
        raise _fail(f"{what} of an empty axis", trace.ShapeError)
    ordered = np.sort(x, axis=ax)
    middle = np.take(ordered, np.arange((n - 1) // 2, n // 2 + 1), axis=ax)
    result = np.where(np.isnan(_take(ordered, n - 1, ax)), np.nan, np.mean(middle, axis=ax))
    return _kept(result, a, axis, keepdims)


def _quantile(a: Any, q: Any, axis: Any, keepdims: Any, method: Any, what: str) -> Tracer:
    """NumPy's default ``method='linear'``: between sorted entries ``floor(q (n - 1))`` and the next,
    by NumPy's own lerp (``b - (b - a)(1 - t)`` for t >= 0.5, which keeps the end points exact)."""
    if method != "linear":
        raise _fail(f"{what}(..., method={method!r}) is not supported by diffc's tracer: method='linear' only",
                    trace.UnsupportedCallError, function=what)
    if isinstance(q, trace._Traced):
        raise _fail(f"{what}: q must be a number or an array of numbers, not a traced value")
    qs = np.asarray(q, dtype=np.float64)
    if np.any((qs < 0) | (qs > 1)) or np.any(np.isnan(qs)):
        raise _fail(f"{what}: q must lie in [0, 1] (percentiles in [0, 100]), got {q!r}", ValueError)
    x, ax = _along(a, axis, what)
    n = int(x.shape[ax])
    ordered = np.sort(x, axis=ax)
    last = np.isnan(_take(ordered, n - 1, ax))
    parts = []
    for value in qs.ravel():
        position = value * (n - 1)
        low = int(np.floor(position))
        high = min(low + 1, n - 1)
        t = position - low
        lo, hi = _take(ordered, low, ax), _take(ordered, high, ax)
        lerp = hi - (hi - lo) * (1.0 - t) if t >= 0.5 else lo + (hi - lo) * t
        parts.append(np.where(last, np.nan, lerp))
    stacked = parts[0] if qs.ndim == 0 else np.reshape(np.stack(parts), qs.shape + tuple(parts[0].shape))
    if not keepdims:
        return stacked
    kept = _kept(parts[0], a, axis, True)
    return kept if qs.ndim == 0 else np.reshape(np.stack([_kept(p, a, axis, True) for p in parts]),
                                                qs.shape + tuple(kept.shape))


def _np_quantile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: Any = False,
                 method: Any = "linear", keepdims: Any = False, *, weights: Any = None,
                 interpolation: Any = None) -> Tracer:
    """``np.quantile`` (q in [0, 1]), method 'linear'.

    Convention: the gradient is shared by the two sorted entries around the position, in the
    interpolation's weights (all to one entry at an exact position); tied entries keep their order.
    """
    _reject_kwargs("np.quantile", out=out, weights=weights, interpolation=interpolation)
    return _quantile(a, q, axis, keepdims, method, "np.quantile")


def _np_percentile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: Any = False,
                   method: Any = "linear", keepdims: Any = False, *, weights: Any = None,
                   interpolation: Any = None) -> Tracer:
    """``np.percentile`` (q in [0, 100]): ``np.quantile`` of q / 100, as NumPy computes it.

    Convention: as np.quantile's.
    """
    _reject_kwargs("np.percentile", out=out, weights=weights, interpolation=interpolation)
    if isinstance(q, trace._Traced):
        raise _fail("np.percentile: q must be a number or an array of numbers, not a traced value")
    return _quantile(a, np.true_divide(q, 100), axis, keepdims, method, "np.percentile")


def _np_cov(m: Any, y: Any = None, rowvar: Any = True, bias: Any = False, ddof: Any = None,
            fweights: Any = None, aweights: Any = None, *, dtype: Any = None) -> Tracer:
    """``np.cov``: each row a variable (``rowvar=True``), the deviations' product over N - ddof, squeezed."""
    what = "np.cov"
    _reject_kwargs(what, fweights=fweights, aweights=aweights, dtype=dtype)
    rows = np.atleast_2d(_operand(m))
    if not rowvar and rows.shape[0] != 1:
        rows = rows.T
    if y is not None:
        other = np.atleast_2d(_operand(y))
        if not rowvar and other.shape[0] != 1:
            other = other.T
        rows = np.concatenate((rows, other), axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    count = rows.shape[1]
    deviations = rows - np.mean(rows, axis=1, keepdims=True)
    product = deviations @ deviations.T
    return np.squeeze(product * (1.0 / (count - ddof)))


def _np_corrcoef(x: Any, y: Any = None, rowvar: Any = True, bias: Any = _UNSET, ddof: Any = _UNSET, *,
                 dtype: Any = None) -> Tracer:
    """``np.corrcoef``: the covariance over the outer product of the standard deviations, clipped to [-1, 1].

    Convention: clipping passes no gradient to an entry that reached ±1 by rounding (the diagonal is
    exactly 1 and has gradient 0).
    """
    c = _np_cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:
        return c / c
    deviation = np.sqrt(np.diagonal(c))
    c = c / deviation[:, None]
    c = c / deviation[None, :]
    return np.clip(c, -1, 1)


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.ptp: _np_ptp, np.median: _np_median, np.quantile: _np_quantile, np.percentile: _np_percentile,
    np.cov: _np_cov, np.corrcoef: _np_corrcoef,
}
