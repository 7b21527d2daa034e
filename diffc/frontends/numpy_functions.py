"""More NumPy functions, ufuncs and array methods for the tracer, most of them compositions.

Why compositions: a function written with ops the IR already has (``np.var``
as a mean of squared deviations, ``np.flip`` as a slice with step -1,
``np.tensordot`` as a transpose, a reshape and a matrix product) needs no new
adjoint rule, no printer and no loop rule: both back ends, the fused loops,
the simplifier and the reverse pass already know its pieces. New IR ops are
used only where a composition would be wrong or quadratic: ``np.prod`` (its
adjoint must survive zeros), ``np.cumsum``, the step functions
(floor, ceil, rint, trunc), ``np.remainder``/``np.fmod``/``np.floor_divide``,
``np.arctanh``, ``np.arccosh`` and ``np.cbrt``.

Importing this module registers its handlers in the tracer's tables
(``trace._FUNCTIONS``, ``trace._UFUNCS``) and its methods on
:class:`~diffc.frontends.trace.Tracer`; diffc/frontends/trace.py imports it
at its end.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from diffc.errors import ShapeError
from diffc.frontends import trace
from diffc.frontends.trace import _UNSET, Tracer, _apply, _axis, _fail, _reject_kwargs, _traced
from diffc.ir import STEPS, Dim, DType, Op, _norm_axes, basic_index, dim_mul, dim_product

# ---------------------------------------------------------------------------
# small builders


def _axes(axis: Any, ndim: int, what: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple) as non-negative axes in the order given, checked against the rank."""
    found = _axis(axis, what)
    try:
        _norm_axes(found, ndim)  # in range, none repeated
    except ShapeError as exc:
        raise ShapeError(f"{what}: {exc}{trace._user_location()}") from None
    items = range(ndim) if found is None else (found,) if isinstance(found, int) else found
    return tuple(a % ndim for a in items)


def _count(x: Tracer, axes: Sequence[int]) -> Any:
    """The number of elements along ``axes``: an int, or a :class:`Size` that takes part in arithmetic."""
    total: Any = 1
    for a in axes:
        total = total * x.shape[a]
    return total


def _index(x: Tracer, key: tuple[Any, ...], what: str) -> Tracer:
    return Tracer(basic_index(x.node, key, what))


def _to_shape(x: Tracer, shape: tuple[Dim, ...], what: str) -> Tracer:
    """``x`` reshaped to ``shape`` (sizes that keep the element count), or ``x`` itself."""
    if x.graph.resolve_shape(shape) == x.node.shape:
        return x
    return Tracer(_apply(x.graph, Op.RESHAPE, (x.node,), what, shape=shape))


def _broadcast(x: Tracer, shape: tuple[Dim, ...], what: str) -> Tracer:
    if x.graph.resolve_shape(shape) == x.node.shape:
        return x
    return Tracer(_apply(x.graph, Op.BROADCAST, (x.node,), what, shape=shape))


def _ravel(x: Tracer, what: str) -> Tracer:
    """A vector of x's entries in C order; a scalar becomes a vector of one."""
    if x.node.ndim == 0:
        return _broadcast(x, (1,), what)
    return _to_shape(x, (dim_product(x.node.shape),), what)


def _integer(value: Any, what: str, role: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _fail(f"{what}: {role} must be an int, got {type(value).__name__}")
    return int(value)


def _concrete(dim: Dim, what: str, role: str) -> int:
    if not isinstance(dim, int):
        raise _fail(f"{what} needs a concrete size for {role}, not the symbolic size {dim!r}; give a concrete size "
                    "in the argument type")
    return dim


def _where(cond: Any, a: Any, b: Any) -> Tracer:
    return trace._np_where(cond, a, b)


def _positions(graph: Any, size: Dim) -> Tracer:
    """``np.arange(size)`` (i64): the row and column numbers the triangle and diagonal masks compare."""
    return Tracer(graph.apply(Op.ARANGE, size=size))


def _band(x: Tracer, what: str) -> Tracer:
    """``j - i`` over x's last two axes (an i64 matrix): a diagonal is where it is constant."""
    rows, cols = x.node.shape[-2:]
    i = _index(_positions(x.graph, rows), (slice(None), None), what)
    j = _index(_positions(x.graph, cols), (None, slice(None)), what)
    return j - i


def _matrix(a: Any, what: str) -> Tracer:
    x = _traced(a, what)
    if x.node.ndim < 2:
        raise ShapeError(f"{what} needs an array of rank 2 or more, got rank {x.node.ndim}{trace._user_location()}")
    return x


# ---------------------------------------------------------------------------
# reductions and running sums


def _np_prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
             initial: Any = _UNSET, where: Any = _UNSET) -> Tracer:
    """np.prod over axes, as one op whose adjoint is exact when the input has zeros.

    Convention: exact with zeros in the input (no division by zero): one zero entry gets the product
    of the others, two or more zeros give 0 everywhere.
    """
    _reject_kwargs("np.prod", dtype=dtype, out=out, initial=initial, where=where)
    return trace._reduce(Op.PROD, a, axis, keepdims, "np.prod")


def _running(op: Op, a: Any, axis: Any, what: str) -> Tracer:
    """cumsum, cumprod along one axis (the flattened array for axis=None)."""
    x = _traced(a, what)
    if axis is None:
        x = _ravel(x, what)
        axis = 0
    if not x.node.dtype.is_float and x.node.dtype is not DType.I64:  # NumPy sums booleans and i32 as i64
        x = Tracer(_apply(x.graph, Op.CAST, (x.node,), what, dtype=DType.I64))
    (k,) = _axes(_integer(axis, what, "axis"), x.node.ndim, what)
    return Tracer(_apply(x.graph, op, (x.node,), what, axis=(k,)))


def _np_cumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
    _reject_kwargs("np.cumsum", dtype=dtype, out=out)
    return _running(Op.CUMSUM, a, axis, "np.cumsum")


def _np_cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
    """np.cumprod along one axis.

    Convention: exact with zeros in the input (no division by zero), as for np.prod.
    """
    _reject_kwargs("np.cumprod", dtype=dtype, out=out)
    return _running(Op.CUMPROD, a, axis, "np.cumprod")


def _var(a: Any, axis: Any, ddof: Any, keepdims: Any, what: str) -> Tracer:
    """The mean squared deviation from the mean, divided by ``count - ddof`` instead of ``count``."""
    x = _traced(a, what)
    axes = _axes(axis, x.node.ndim, what)
    deviation = x - trace._reduce(Op.MEAN, x, axes, True, what)
    square = deviation * deviation
    if isinstance(ddof, (int, float)) and ddof == 0:
        return trace._reduce(Op.MEAN, square, axes, keepdims, what)
    if not isinstance(ddof, (int, float, np.integer, np.floating)):
        raise _fail(f"{what}: ddof must be a number, got {type(ddof).__name__}")
    return trace._reduce(Op.SUM, square, axes, keepdims, what) / (_count(x, axes) - ddof)


def _np_var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0, keepdims: Any = False,
            *, where: Any = _UNSET, mean: Any = _UNSET, correction: Any = _UNSET) -> Tracer:
    _reject_kwargs("np.var", dtype=dtype, out=out, where=where, mean=mean, correction=correction)
    return _var(a, axis, ddof, keepdims, "np.var")


def _np_std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0, keepdims: Any = False,
            *, where: Any = _UNSET, mean: Any = _UNSET, correction: Any = _UNSET) -> Tracer:
    """np.std as the square root of np.var.

    Convention: NaN where every entry of a reduced slice is equal (std = 0), as in JAX.
    """
    _reject_kwargs("np.std", dtype=dtype, out=out, where=where, mean=mean, correction=correction)
    return np.sqrt(_var(a, axis, ddof, keepdims, "np.std"))


def _np_average(a: Any, axis: Any = None, weights: Any = None, returned: Any = False, *,
                keepdims: Any = False) -> Tracer:
    """sum(a * w) / sum(w) over the axes; a 1-D ``w`` lies along the one axis given."""
    what = "np.average"
    if returned:
        raise _fail(f"{what}(..., returned=True) is not supported by diffc's tracer; compute np.sum(w) yourself")
    if weights is None:
        return trace._reduce(Op.MEAN, a, axis, keepdims, what)
    x, w = _operands((a, weights), what)
    if w.node.ndim != x.node.ndim:
        if w.node.ndim != 1 or not isinstance(axis, (int, np.integer)):
            raise _fail(f"{what}: weights of another shape than a must be 1-D, with one axis given")
        (k,) = _axes(axis, x.node.ndim, what)
        w = _index(w, tuple(slice(None) if p == k else None for p in range(x.node.ndim)), what)
    axes = _axes(axis, x.node.ndim, what)
    return trace._reduce(Op.SUM, x * w, axes, keepdims, what) / trace._reduce(Op.SUM, w, axes, keepdims, what)


def _nan_zeroed(a: Any, what: str) -> tuple[Tracer, Tracer]:
    x = _traced(a, what)
    number = x == x  # False exactly at NaN
    return _where(number, x, 0), number


def _np_nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
               initial: Any = _UNSET, where: Any = _UNSET) -> Tracer:
    """np.sum with NaNs counted as zero.

    Convention: a NaN entry gets gradient 0.
    """
    _reject_kwargs("np.nansum", dtype=dtype, out=out, initial=initial, where=where)
    zeroed, _ = _nan_zeroed(a, "np.nansum")
    return trace._reduce(Op.SUM, zeroed, axis, keepdims, "np.nansum")


def _np_nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
                *, where: Any = _UNSET) -> Tracer:
    """np.mean of the entries that are not NaN.

    Convention: a NaN entry gets gradient 0.
    """
    _reject_kwargs("np.nanmean", dtype=dtype, out=out, where=where)
    zeroed, number = _nan_zeroed(a, "np.nanmean")
    total = trace._reduce(Op.SUM, zeroed, axis, keepdims, "np.nanmean")
    return total / trace._reduce(Op.SUM, number, axis, keepdims, "np.nanmean")


def _np_diff(a: Any, n: Any = 1, axis: Any = -1, prepend: Any = _UNSET, append: Any = _UNSET) -> Tracer:
    _reject_kwargs("np.diff", prepend=prepend, append=append)
    what = "np.diff"
    x = _traced(a, what)
    if x.node.ndim == 0:
        raise ShapeError(f"{what} needs an array of rank 1 or more{trace._user_location()}")
    (k,) = _axes(_integer(axis, what, "axis"), x.node.ndim, what)
    before = [slice(None)] * k
    for _ in range(_integer(n, what, "n")):
        x = _index(x, (*before, slice(1, None)), what) - _index(x, (*before, slice(None, -1)), what)
    return x


# ---------------------------------------------------------------------------
# shapes: squeeze, ravel, atleast_*, flips, repeats, rolls, pads


def _squeeze(a: Any, axis: Any, what: str) -> Tracer:
    x = _traced(a, what)
    shape = x.node.shape
    if axis is None:
        drop = {k for k, d in enumerate(shape) if d == 1}
    else:
        drop = set(_axes(axis, x.node.ndim, what))
        for k in drop:
            if shape[k] != 1:
                raise ShapeError(f"{what}: cannot select an axis to squeeze out which has size not equal to one "
                                 f"(axis {k} has size {shape[k]!r}){trace._user_location()}")
    if not drop:
        return x
    return _index(x, tuple(0 if k in drop else slice(None) for k in range(len(shape))), what)


def _np_squeeze(a: Any, axis: Any = None) -> Tracer:
    return _squeeze(a, axis, "np.squeeze")


def _np_ravel(a: Any, order: Any = "C") -> Tracer:
    if order != "C":
        raise _fail(f"np.ravel(..., order={order!r}) is not supported by diffc's tracer: only order='C'")
    return _ravel(_traced(a, "np.ravel"), "np.ravel")


def _at_least(rank: int, name: str) -> Callable[..., Any]:
    """np.atleast_1d/2d/3d: NumPy's placement of the new axes (a vector is a row; a matrix gains a last axis)."""
    def handler(*arys: Any) -> Any:
        results = [_at_least_one(a, rank, name) for a in arys]
        return results[0] if len(results) == 1 else tuple(results)
    return handler


def _at_least_one(a: Any, rank: int, what: str) -> Any:
    if not isinstance(a, Tracer):
        return getattr(np, what[3:])(a)
    ndim = a.node.ndim
    if ndim >= rank:
        return a
    if ndim == 0:
        return _broadcast(a, (1,) * rank, what)
    if ndim == 1:
        key: tuple[Any, ...] = (None, slice(None), None)[:rank]
    else:
        key = (slice(None), slice(None), None)
    return _index(a, key, what)


def _flip(a: Any, axis: Any, what: str) -> Tracer:
    x = _traced(a, what)
    if x.node.ndim == 0:
        return x
    axes = _axes(axis, x.node.ndim, what)
    return _index(x, tuple(slice(None, None, -1) if k in axes else slice(None) for k in range(x.node.ndim)), what)


def _np_flip(m: Any, axis: Any = None) -> Tracer:
    return _flip(m, axis, "np.flip")


def _np_fliplr(m: Any) -> Tracer:
    return _flip(_matrix(m, "np.fliplr"), 1, "np.fliplr")


def _np_flipud(m: Any) -> Tracer:
    x = _traced(m, "np.flipud")
    if x.node.ndim < 1:
        raise ShapeError(f"np.flipud needs an array of rank 1 or more{trace._user_location()}")
    return _flip(x, 0, "np.flipud")


def _np_rot90(m: Any, k: Any = 1, axes: Any = (0, 1)) -> Tracer:
    """NumPy's own definition: two flips, or a flip and a swap of the two axes."""
    what = "np.rot90"
    x = _matrix(m, what)
    first, second = _axes(axes, x.node.ndim, what)
    turns = _integer(k, what, "k") % 4
    if turns == 0:
        return x
    if turns == 2:
        return _flip(_flip(x, first, what), second, what)
    order = list(range(x.node.ndim))
    order[first], order[second] = order[second], order[first]
    if turns == 1:
        return trace._transpose(_flip(x, second, what), tuple(order), what)
    return _flip(trace._transpose(x, tuple(order), what), second, what)


def _repeat(a: Any, repeats: Any, axis: Any, what: str) -> Tracer:
    """Each entry ``repeats`` times along ``axis``: a new axis after it, broadcast, merged back."""
    x = _traced(a, what)
    count = np.asarray(repeats)
    if count.size != 1 or count.dtype.kind not in "iu":
        raise _fail(f"{what}: repeats must be one int (a count per entry is not supported), got {repeats!r}")
    r = int(count.reshape(()))
    if axis is None:
        x, k = _ravel(x, what), 0
    else:
        (k,) = _axes(_integer(axis, what, "axis"), x.node.ndim, what)
    shape = x.node.shape
    if r == 1:
        return x
    spread = _index(x, (*[slice(None)] * (k + 1), None), what)
    spread = _broadcast(spread, (*shape[:k + 1], r, *shape[k + 1:]), what)
    return _to_shape(spread, (*shape[:k], dim_mul(shape[k], r), *shape[k + 1:]), what)


def _np_repeat(a: Any, repeats: Any, axis: Any = None) -> Tracer:
    return _repeat(a, repeats, axis, "np.repeat")


def _np_tile(A: Any, reps: Any) -> Tracer:  # noqa: N803 - NumPy's name
    """np.tile: a new axis of size ``r`` before each axis, broadcast, then merged with it."""
    what = "np.tile"
    x = _traced(A, what)
    counts = [_integer(r, what, "reps") for r in (reps if isinstance(reps, (tuple, list)) else (reps,))]
    ndim = max(len(counts), x.node.ndim)
    counts = [1] * (ndim - len(counts)) + counts
    if x.node.ndim < ndim:
        x = _broadcast(x, (1,) * ndim, what) if x.node.ndim == 0 else \
            _index(x, (*[None] * (ndim - x.node.ndim), Ellipsis), what)
    if all(r == 1 for r in counts):
        return x
    shape = x.node.shape
    spread = _index(x, tuple(item for _ in range(ndim) for item in (None, slice(None))), what)
    spread = _broadcast(spread, tuple(d for r, s in zip(counts, shape, strict=True) for d in (r, s)), what)
    return _to_shape(spread, tuple(dim_mul(r, s) for r, s in zip(counts, shape, strict=True)), what)


def _np_roll(a: Any, shift: Any, axis: Any = None) -> Tracer:
    """np.roll as the concatenation of two slices per axis (concrete sizes: the cut depends on them)."""
    what = "np.roll"
    x = _traced(a, what)
    if axis is None:
        return _to_shape(_np_roll(_ravel(x, what), shift, 0), x.node.shape, what)
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if len(shifts) == 1:
        shifts = tuple(shifts) * len(axes)
    if len(shifts) != len(axes):
        raise _fail(f"{what}: shift and axis must have the same length")
    for s, k in zip(shifts, _axes(tuple(axes), x.node.ndim, what), strict=True):
        n = _concrete(x.node.shape[k], what, f"axis {k}")
        cut = n - _integer(s, what, "shift") % n if n else 0
        if cut in (0, n):
            continue
        before = [slice(None)] * k
        parts = [_index(x, (*before, slice(cut, None)), what), _index(x, (*before, slice(None, cut)), what)]
        x = trace._np_concatenate(parts, axis=k)
    return x


def _np_append(arr: Any, values: Any, axis: Any = None) -> Tracer:
    return trace._np_concatenate([arr, values], axis=axis)


def _np_pad(array: Any, pad_width: Any, mode: Any = "constant", **kwargs: Any) -> Tracer:
    """np.pad in constant mode: blocks of the constant concatenated before and after along each axis."""
    what = "np.pad"
    x = _traced(array, what)
    value = kwargs.pop("constant_values", 0)
    if mode != "constant" or kwargs:
        raise _fail(f"{what}(..., mode={mode!r}) is supported in mode='constant' only, with constant_values")
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(f"{what}: constant_values must be one number, got {value!r}")
    widths = np.broadcast_to(np.asarray(pad_width), (x.node.ndim, 2))
    if widths.dtype.kind not in "iu" or (widths < 0).any():
        raise _fail(f"{what}: pad_width must be non-negative ints, got {pad_width!r}")
    for k, (before, after) in enumerate(widths.tolist()):
        parts = []
        for width in (before, None, after):
            if width is None:
                parts.append(x)
            elif width:
                shape = (*x.node.shape[:k], width, *x.node.shape[k + 1:])
                parts.append(Tracer(x.graph.const(value, x.node.dtype, shape)))
        if len(parts) > 1:
            x = trace._np_concatenate(parts, axis=k)
    return x


def _np_swapaxes(a: Any, axis1: Any, axis2: Any) -> Tracer:
    x = _traced(a, "np.swapaxes")
    first, second = _axes((axis1, axis2), x.node.ndim, "np.swapaxes") if axis1 != axis2 else (0, 0)
    order = list(range(x.node.ndim))
    order[first], order[second] = order[second], order[first]
    return trace._transpose(x, tuple(order), "np.swapaxes")


def _np_moveaxis(a: Any, source: Any, destination: Any) -> Tracer:
    what = "np.moveaxis"
    x = _traced(a, what)
    sources, targets = _axes(source, x.node.ndim, what), _axes(destination, x.node.ndim, what)
    if len(sources) != len(targets):
        raise _fail(f"{what}: source and destination must have the same number of axes")
    order = [k for k in range(x.node.ndim) if k not in sources]
    for target, k in sorted(zip(targets, sources, strict=True)):
        order.insert(target, k)
    return trace._transpose(x, tuple(order), what)


def _np_broadcast_to(array: Any, shape: Any, subok: Any = False) -> Tracer:
    what = "np.broadcast_to"
    x = _traced(array, what)
    target = tuple(trace._shape_arg(shape, what))
    return _broadcast(x, target, what)


def _np_split(ary: Any, indices_or_sections: Any, axis: Any = 0) -> list[Tracer]:
    """np.split and np.array_split: slices of a concrete axis (np.split refuses unequal parts, as NumPy)."""
    return _split(ary, indices_or_sections, axis, "np.split")


def _np_array_split(ary: Any, indices_or_sections: Any, axis: Any = 0) -> list[Tracer]:
    return _split(ary, indices_or_sections, axis, "np.array_split")


def _split(ary: Any, parts: Any, axis: Any, what: str) -> list[Tracer]:
    x = _traced(ary, what)
    (k,) = _axes(_integer(axis, what, "axis"), x.node.ndim, what)
    n = _concrete(x.node.shape[k], what, f"axis {k}")
    if isinstance(parts, (int, np.integer)):
        count = _integer(parts, what, "the number of sections")
        if count <= 0 or (what == "np.split" and n % count):
            raise ShapeError(f"{what}: array split does not result in an equal division{trace._user_location()}")
        small, extra = divmod(n, count)
        sizes = [small + 1] * extra + [small] * (count - extra)
        cuts = list(np.cumsum(sizes)[:-1])
    else:
        cuts = [_integer(c, what, "a split index") for c in parts]
    bounds = zip([0, *cuts], [*cuts, n], strict=True)
    return [_index(x, (*[slice(None)] * k, slice(lo, hi)), what) for lo, hi in bounds]


def _np_real(val: Any) -> Tracer:
    return _traced(val, "np.real")


def _np_real_if_close(a: Any, tol: Any = 100) -> Tracer:
    """``np.real_if_close`` of a real array: the array itself (diffc traces real values only)."""
    return _traced(a, "np.real_if_close")


def _np_angle(z: Any, deg: Any = False) -> Tracer:
    """``np.angle`` of a real array, NumPy's ``arctan2(0, x)``: π for x < 0 and -0.0, 0 for x > 0 and +0.0.

    ``floor`` keeps each sign (and NaN, ±inf), so ``arctan2(0, floor(x))`` is NumPy's value exactly, and as
    a step it passes no gradient: the angle is piecewise constant, its gradient 0 everywhere.
    """
    what = "np.angle"
    x = _traced(z, what)
    x = x if x.node.dtype.is_float else _float64(x)
    step = trace._elementwise(Op.FLOOR, (x,), what)
    angle = trace._elementwise(Op.ARCTAN2, (Tracer(x.graph.const(0.0, x.node.dtype)), step), what)
    return trace._elementwise(Op.MUL, (angle, Tracer(x.graph.const(180.0 / math.pi, x.node.dtype))), what) \
        if deg else angle


def _np_imag(val: Any) -> Tracer:
    x = _traced(val, "np.imag")
    return Tracer(x.graph.const(0, x.node.dtype, x.node.shape or None))


def _np_vdot(a: Any, b: Any) -> Tracer:
    x, y = _operands((a, b), "np.vdot")
    return trace._matmul(_ravel(x, "np.vdot"), _ravel(y, "np.vdot"), "np.vdot")


def _np_cross(a: Any, b: Any, axisa: Any = -1, axisb: Any = -1, axisc: Any = -1, axis: Any = None) -> Tracer:
    """The cross product of 3-vectors along the last axis, from slices: (a1 b2 - a2 b1, ...)."""
    what = "np.cross"
    if axis is not None or (axisa, axisb, axisc) != (-1, -1, -1):
        raise _fail(f"{what} is supported along the last axis only")
    x, y = _operands((a, b), what)
    if 0 in (x.node.ndim, y.node.ndim) or x.node.shape[-1] != 3 or y.node.shape[-1] != 3:
        raise _fail(f"{what} is supported for vectors of 3 entries along the last axis")
    def part(t: Tracer, k: int) -> Tracer:
        return _index(t, (Ellipsis, k), what)
    entries = [part(x, (k + 1) % 3) * part(y, (k + 2) % 3) - part(x, (k + 2) % 3) * part(y, (k + 1) % 3)
               for k in range(3)]
    return trace._np_stack(entries, axis=-1)


# ---------------------------------------------------------------------------
# diagonals and triangles: masks from np.arange of the axes' sizes (symbolic sizes too)


def _last_two(x: Tracer, axis1: Any, axis2: Any, what: str) -> Tracer:
    """``x`` with ``axis1`` and ``axis2`` moved last (the others keep their order), as np.diagonal does."""
    first, second = _axes((axis1, axis2), x.node.ndim, what)
    rest = tuple(k for k in range(x.node.ndim) if k not in (first, second))
    return trace._transpose(x, (*rest, first, second), what)


def _np_trace(a: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1, dtype: Any = None, out: Any = None) -> Tracer:
    _reject_kwargs("np.trace", dtype=dtype, out=out)
    what = "np.trace"
    x = _last_two(_matrix(a, what), axis1, axis2, what)
    on = _band(x, what) == _integer(offset, what, "offset")
    return trace._reduce(Op.SUM, _where(on, x, 0), (-2, -1), False, what)


def _np_diagonal(a: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1) -> Tracer:
    """Entries (i, i + offset) as the last axis: the masked rows summed, then the rows that have one."""
    what = "np.diagonal"
    x = _last_two(_matrix(a, what), axis1, axis2, what)
    k = _integer(offset, what, "offset")
    rows, cols = x.node.shape[-2:]
    summed = trace._reduce(Op.SUM, _where(_band(x, what) == k, x, 0), -1, False, what)
    if x.graph.resolve(rows) == x.graph.resolve(cols):  # a square: the rows from -k, or up to n - k
        return summed if k == 0 else _index(summed, (Ellipsis, slice(None, -k) if k > 0 else slice(-k, None)), what)
    r, c = _concrete(rows, what, "the rows"), _concrete(cols, what, "the columns")
    start, stop = max(0, -k), max(max(0, -k), min(r, c - k))
    if (start, stop) == (0, r):
        return summed
    return _index(summed, (Ellipsis, slice(start, stop)), what)


def _np_diag(v: Any, k: Any = 0) -> Tracer:
    """A vector on the k-th diagonal of a square matrix of zeros, or the k-th diagonal of a matrix."""
    what = "np.diag"
    x = _traced(v, what)
    k = _integer(k, what, "k")
    if x.node.ndim == 2:
        return _np_diagonal(x, k)
    if x.node.ndim != 1:
        raise ShapeError(f"{what}: input must be 1- or 2-d{trace._user_location()}")
    if k:  # padded so that column j holds the entry of row j - k
        zeros = Tracer(x.graph.const(0, x.node.dtype, (abs(k),)))
        x = trace._np_concatenate([zeros, x] if k > 0 else [x, zeros], axis=0)
    size = x.node.shape[0]
    square = _broadcast(_index(x, (None, slice(None)), what), (size, size), what)
    return _where(_band(square, what) == k, square, 0)


def _triangle(m: Any, k: Any, upper: bool, what: str) -> Tracer:
    x = _matrix(m, what)
    band = _band(x, what)
    offset = _integer(k, what, "k")
    return _where(band >= offset if upper else band <= offset, x, 0)


def _np_triu(m: Any, k: Any = 0) -> Tracer:
    return _triangle(m, k, True, "np.triu")


def _np_tril(m: Any, k: Any = 0) -> Tracer:
    return _triangle(m, k, False, "np.tril")


# ---------------------------------------------------------------------------
# products: tensordot, inner, kron, einsum


def _contract(a: Tracer, b: Tracer, axes_a: Sequence[int], axes_b: Sequence[int], what: str) -> Tracer:
    """sum over the paired axes of a * b, as one matrix product of two reshaped transposes."""
    free_a = [k for k in range(a.node.ndim) if k not in axes_a]
    free_b = [k for k in range(b.node.ndim) if k not in axes_b]
    left = trace._transpose(a, (*free_a, *axes_a), what)
    right = trace._transpose(b, (*axes_b, *free_b), what)
    dims_a = [a.node.shape[k] for k in free_a]
    dims_b = [b.node.shape[k] for k in free_b]
    if not axes_a:
        if not dims_a or not dims_b:
            return left * right
        product = Tracer(_apply(a.graph, Op.OUTER, (_ravel(left, what).node, _ravel(right, what).node), what))
        return _to_shape(product, (*dims_a, *dims_b), what)
    inner = dim_product(a.node.shape[k] for k in axes_a)
    left = _to_shape(left, ((dim_product(dims_a),) if dims_a else ()) + (inner,), what)
    right = _to_shape(right, (dim_product(b.node.shape[k] for k in axes_b),) + ((dim_product(dims_b),)
                                                                               if dims_b else ()), what)
    return _to_shape(trace._matmul(left, right, what), (*dims_a, *dims_b), what)


def stacked_matmul(a: Tracer, b: Tracer, what: str) -> Tracer:
    """``a @ b`` where an operand has rank 3 or more: sum over k of a[..., i, k, None] * b[..., None, k, j].

    The leading axes broadcast as NumPy's matmul broadcasts them; a vector operand gets (and then loses)
    a size-1 axis, as in NumPy. The product holds every (i, k, j) term: fine for small stacks.
    """
    if 0 in (a.node.ndim, b.node.ndim):
        raise ShapeError(f"{what}: matmul does not take scalars (use *){trace._user_location()}")
    left = _index(a, (None, slice(None)), what) if a.node.ndim == 1 else a
    right = _index(b, (slice(None), None), what) if b.node.ndim == 1 else b
    inner = (left.node.shape[-1], right.node.shape[-2])
    if a.graph.resolve(inner[0]) != a.graph.resolve(inner[1]):  # a size-1 k must not broadcast
        try:
            a.graph.unify(*inner, (left.node.shape, right.node.shape), what=f"{what} (matmul)")
        except ShapeError as exc:
            raise ShapeError(f"{exc}{trace._user_location()}") from None
    terms = trace._elementwise(Op.MUL, (_index(left, (Ellipsis, None), what),
                                        _index(right, (Ellipsis, None, slice(None), slice(None)), what)), what)
    product = trace._reduce(Op.SUM, terms, -2, False, what)
    if a.node.ndim == 1:
        product = _index(product, (Ellipsis, 0, slice(None)), what)
    return _index(product, (Ellipsis, 0), what) if b.node.ndim == 1 else product


def _operands(values: Sequence[Any], what: str) -> list[Tracer]:
    """Traced values and constants as tracers of one dtype (NumPy's promotion)."""
    graph, dtype, items, _ = trace._promote(list(values), what)
    return [Tracer(trace._node(graph, item, dtype)) for item in items]


def _np_tensordot(a: Any, b: Any, axes: Any = 2) -> Tracer:
    what = "np.tensordot"
    x, y = _operands((a, b), what)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        pairs_a, pairs_b = list(range(x.node.ndim - n, x.node.ndim)), list(range(n))
    else:
        first, second = axes
        pairs_a = list(first) if isinstance(first, (tuple, list)) else [first]
        pairs_b = list(second) if isinstance(second, (tuple, list)) else [second]
    if len(pairs_a) != len(pairs_b):
        raise ShapeError(f"{what}: shape-mismatch for sum (axes {axes!r}){trace._user_location()}")
    return _contract(x, y, _axes(tuple(pairs_a), x.node.ndim, what), _axes(tuple(pairs_b), y.node.ndim, what), what)


def _np_inner(a: Any, b: Any) -> Tracer:
    what = "np.inner"
    x, y = _operands((a, b), what)
    if not x.node.ndim or not y.node.ndim:
        return x * y
    return _contract(x, y, (x.node.ndim - 1,), (y.node.ndim - 1,), what)


def _np_kron(a: Any, b: Any) -> Tracer:
    """Every entry of a times b: a and b interleaved on new axes, multiplied, the pairs merged."""
    what = "np.kron"
    x, y = _operands((a, b), what)
    ndim = max(x.node.ndim, y.node.ndim)
    if ndim == 0:
        return x * y
    x, y = (t if t.node.ndim == ndim else _at_least_one(t, 1, what) if ndim == 1 else
            _index(_ravel(t, what) if t.node.ndim == 0 else t, (*[None] * (ndim - max(t.node.ndim, 1)), Ellipsis),
                   what) for t in (x, y))
    wide = _index(x, tuple(item for _ in range(ndim) for item in (slice(None), None)), what)
    tall = _index(y, tuple(item for _ in range(ndim) for item in (None, slice(None))), what)
    merged = tuple(dim_mul(p, q) for p, q in zip(x.node.shape, y.node.shape, strict=True))
    return _to_shape(wide * tall, merged, what)


def _aligned(t: Tracer, letters: str, order: str, what: str) -> Tracer:
    """``t`` (axes named by ``letters``) transposed to ``order`` and given size-1 axes for the letters it lacks."""
    mine = [c for c in order if c in letters]
    t = trace._transpose(t, tuple(letters.index(c) for c in mine), what) if len(mine) > 1 else t
    key = tuple(slice(None) if c in letters else None for c in order)
    return t if len(mine) == len(order) else _index(t, key, what) if mine else _broadcast(t, (1,) * len(order), what)


def _summed(t: Tracer, letters: str, drop: set[str], what: str) -> tuple[Tracer, str]:
    axes = tuple(k for k, c in enumerate(letters) if c in drop)
    if not axes:
        return t, letters
    return trace._reduce(Op.SUM, t, axes, False, what), "".join(c for c in letters if c not in drop)


def _einsum_spec(subscripts: Any, ranks: Sequence[int], what: str) -> tuple[list[str], str]:
    if not isinstance(subscripts, str):
        raise _fail(f"{what} is supported with a subscripts string only (np.einsum('ij,jk->ik', a, b))")
    spec = subscripts.replace(" ", "")
    lhs, arrow, out = spec.partition("->")
    inputs = lhs.split(",")
    letters = "".join(inputs).replace("...", "")
    if not all(c.isalpha() for c in letters + out.replace("...", "")) or len(inputs) != len(ranks):
        raise _fail(f"{what}({subscripts!r}, ...) is not supported by diffc's tracer: subscripts must be letters "
                    f"and '...', one group per operand ({len(ranks)} given)", trace.UnsupportedCallError,
                    function="np.einsum")
    if "..." in spec:
        inputs, out = _ellipsis_letters(subscripts, inputs, out if arrow else None, ranks, what)
        letters = "".join(inputs)
    elif not arrow:
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(set(out)) != len(out) or not set(out) <= set(letters):
        raise _fail(f"{what}({subscripts!r}, ...): each output letter must appear once and in an input")
    return inputs, out


def _ellipsis_letters(subscripts: str, inputs: list[str], out: str | None, ranks: Sequence[int],
                      what: str) -> tuple[list[str], str]:
    """'...' spelled out as letters no group uses: the broadcast axes, aligned from the right as NumPy
    aligns them; in implicit mode they lead the output, before the letters used once."""
    used = set("".join(inputs) + (out or ""))
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    widths = []
    for group, rank in zip(inputs, ranks, strict=True):
        width = rank - len(group.replace("...", "")) if "..." in group else 0
        if width < 0:
            raise ShapeError(f"{what}: {group!r} names more axes than an array of rank {rank} has"
                             f"{trace._user_location()}")
        widths.append(width)
    broadcast = "".join(free[:max(widths, default=0)])
    spelled = [g.replace("...", broadcast[len(broadcast) - w:]) for g, w in zip(inputs, widths, strict=True)]
    if out is None:
        every = "".join(spelled)
        return spelled, broadcast + "".join(sorted(c for c in set(every) if every.count(c) == 1 and c not in broadcast))
    if broadcast and "..." not in out:
        raise ShapeError(f"{what}({subscripts!r}, ...): the output needs '...' for the broadcast axes, as in NumPy"
                         f"{trace._user_location()}")
    return spelled, out.replace("...", broadcast)


def _np_einsum(*operands: Any, out: Any = None, optimize: Any = False, dtype: Any = None, order: Any = "K",
               casting: Any = "safe") -> Tracer:
    """np.einsum with a subscripts string: diagonals by masks, then pairwise contractions
    (a matrix product where no index is shared with the rest, else a broadcast product and a sum)."""
    _reject_kwargs("np.einsum", out=out, dtype=dtype)
    what = "np.einsum"
    traced = _operands(operands[1:], what)
    inputs, result = _einsum_spec(operands[0], [t.node.ndim for t in traced], what)
    terms = []
    for t, letters in zip(traced, inputs, strict=True):
        if len(letters) != t.node.ndim:
            raise ShapeError(f"{what}: {letters!r} names {len(letters)} axes of an array of rank {t.node.ndim}"
                             f"{trace._user_location()}")
        while len(set(letters)) != len(letters):  # a repeated letter: the diagonal, as the last axis
            c = next(c for c in letters if letters.count(c) > 1)
            first = letters.index(c)
            second = letters.index(c, first + 1)
            t = _np_diagonal(t, 0, first, second)
            letters = "".join(x for k, x in enumerate(letters) if k not in (first, second)) + c
        terms.append((t, letters))
    for k, (t, letters) in enumerate(terms):  # letters no one else needs are summed out first
        needed = set(result).union(*(set(s) for j, (_, s) in enumerate(terms) if j != k))
        terms[k] = _summed(t, letters, set(letters) - needed, what)
    while len(terms) > 1:
        (a, la), (b, lb) = terms[0], terms[1]
        keep = set(result).union(*(set(s) for _, s in terms[2:]))
        shared = [c for c in la if c in lb]
        if all(c not in keep for c in shared):
            joined = _contract(a, b, [la.index(c) for c in shared], [lb.index(c) for c in shared], what)
            letters = "".join(c for c in la if c not in shared) + "".join(c for c in lb if c not in shared)
        else:
            order = la + "".join(c for c in lb if c not in la)
            joined, letters = _summed(_aligned(a, la, order, what) * _aligned(b, lb, order, what), order,
                                      {c for c in shared if c not in keep}, what)
        terms = [(joined, letters), *terms[2:]]
    t, letters = _summed(*terms[0], set(terms[0][1]) - set(result), what)
    return trace._transpose(t, tuple(letters.index(c) for c in result), what) if len(result) > 1 else t


# ---------------------------------------------------------------------------
# constructors of traced shapes, sizes, linspace


def _like(fill: Any, name: str) -> Callable[..., Any]:
    """np.zeros_like, ones_like, empty_like (zeros), full_like: a constant (or a traced fill) of x's shape."""
    names = ("dtype", "order", "subok", "shape") if fill is not None else ("fill_value", "dtype", "order", "subok",
                                                                            "shape")

    def handler(a: Any, *args: Any, **kwargs: Any) -> Tracer:
        what = f"np.{name}"
        if len(args) > len(names) or set(kwargs) & set(names[:len(args)]):
            raise _fail(f"{what}: too many arguments")
        given = {**dict(zip(names[:len(args)], args, strict=True)), **kwargs}
        value = given.pop("fill_value", fill)
        dtype = given.pop("dtype", None)
        for ignored in ("order", "subok", "device"):  # layout only: the values are the same
            given.pop(ignored, None)
        _reject_kwargs(what, **given)
        x = _traced(a, what)
        if value is None:
            raise _fail(f"{what}: give the fill value")
        target = trace._to_dtype(np.dtype(dtype), what) if dtype is not None else x.node.dtype
        if isinstance(value, trace._Traced):
            filled = trace._elementwise(Op.ADD, (value, Tracer(x.graph.const(0, target))), what)
            return _broadcast(filled, x.node.shape, what)
        return Tracer(x.graph.const(value, target, x.node.shape if x.node.shape else None))
    handler.__name__ = f"_np_{name}"
    return handler


def _np_size(a: Any, axis: Any = None) -> Any:
    x = _traced(a, "np.size")
    if axis is None:
        return x.size
    (k,) = _axes(_integer(axis, "np.size", "axis"), x.node.ndim, "np.size")
    return x.shape[k]


def _np_linspace(start: Any, stop: Any, num: Any = 50, endpoint: Any = True, retstep: Any = False,
                 dtype: Any = None, axis: Any = 0, **kwargs: Any) -> Any:
    """np.linspace between traced numbers: ``start + arange(num) * step``, the last point ``stop`` itself."""
    what = "np.linspace"
    _reject_kwargs(what, dtype=dtype, **{k: v for k, v in kwargs.items() if k != "device"})
    count = _integer(num, what, "num")
    if trace._ndim(start) or trace._ndim(stop) or axis != 0 or count < 0:
        raise _fail(f"{what} of traced values is supported for two numbers and a count num >= 0")
    div = count - 1 if endpoint else count
    lo, hi = _operands((start, stop), what)
    step = (hi - lo) / div if div > 0 else (hi - lo) * np.nan  # NumPy's step for one point is NaN
    spacing = step if div > 0 else hi - lo  # and its one point is start
    points = lo + np.arange(count, dtype=np.float64) * spacing if count else _broadcast(lo, (0,), what)
    if endpoint and count > 1:
        points = trace._np_concatenate([_index(points, (slice(None, -1),), what), _ravel(hi, what)])
    return (points, step) if retstep else points


# ---------------------------------------------------------------------------
# elementwise functions that are compositions


def _np_sinc(x: Any) -> Tracer:
    """NumPy's own formula: sin(y) / y with y = pi x, and x = 0 replaced by 1e-20 (so sinc(0) = 1).

    Convention: 0 at x = 0 (the derivative there).
    """
    t = _traced(x, "np.sinc")
    y = np.pi * _where(t == 0, 1.0e-20, t)
    return np.sin(y) / y


def _np_nan_to_num(x: Any, copy: Any = True, nan: Any = 0.0, posinf: Any = None, neginf: Any = None) -> Tracer:
    """NaN and the infinities replaced by numbers (the largest finite ones by default).

    Convention: 0 where x is NaN or infinite.
    """
    t = _traced(x, "np.nan_to_num")
    if not t.node.dtype.is_float:
        return t
    big = float(np.finfo(t.node.dtype.numpy).max)
    high = big if posinf is None else posinf
    low = -big if neginf is None else neginf
    return _where(t != t, nan, _where(t == np.inf, high, _where(t == -np.inf, low, t)))


def _np_round(a: Any, decimals: Any = 0, out: Any = None) -> Tracer:
    """NumPy's rounding: rint(x * 10**d) / 10**d (halves to even); integers are returned as they are.

    Convention: 0 everywhere (a step function).
    """
    _reject_kwargs("np.round", out=out)
    x = _traced(a, "np.round")
    d = _integer(decimals, "np.round", "decimals")
    if not x.node.dtype.is_float:
        if d < 0:
            raise _fail("np.round of integers to negative decimals is not supported by diffc's tracer")
        return x
    if d == 0:
        return np.rint(x)
    scale = 10.0 ** abs(d)
    return np.rint(x * scale) / scale if d > 0 else np.rint(x / scale) * scale


def _np_fix(x: Any, out: Any = None) -> Tracer:
    """Rounding toward zero, as np.trunc.

    Convention: 0 everywhere (a step function).
    """
    _reject_kwargs("np.fix", out=out)
    return _step(Op.TRUNC, "np.fix", x)


def _step(op: Op, what: str, x: Any) -> Tracer:
    """floor, ceil, trunc: integers are returned as they are (NumPy 2 keeps their dtype).

    Convention: 0 everywhere (a step function).
    """
    t = _traced(x, what)
    if not t.node.dtype.is_float:
        return t
    return Tracer(_apply(t.graph, op, (t.node,), what))


def _scaled(factor: float, what: str) -> Callable[[Any], Tracer]:
    """deg2rad, rad2deg: a product with the constant NumPy multiplies by (pi / 180 or 180 / pi)."""
    return lambda x: trace._elementwise(Op.MUL, (x, factor), what)


def _np_logaddexp(x1: Any, x2: Any) -> Tracer:
    """log(e^x1 + e^x2) = max + softplus(-|x1 - x2|), with each side's own exact gradient.

    The larger argument a gives a + softplus(b - a), whose gradient (sigmoid(a - b), sigmoid(b - a)) is
    exact, ties included; two equal infinities give that infinity, not NaN.
    """
    return _logaddexp(x1, x2, "np.logaddexp")


def _softplus(t: Tracer) -> Tracer:
    return Tracer(t.graph.apply(Op.SOFTPLUS, t.node))


def _logaddexp(x1: Any, x2: Any, what: str, scale: float = 1.0) -> Tracer:
    a, b = _operands((x1, x2), what)
    if not a.node.dtype.is_float:
        a, b = (Tracer(_apply(t.graph, Op.CAST, (t.node,), what, dtype=DType.F64)) for t in (a, b))
    if scale != 1.0:
        a, b = a * scale, b * scale
    same_infinity = (a == b) & (abs(a) == np.inf)
    gap = _where(same_infinity, 0, b - a)
    return _where(a >= b, a + _softplus(gap), b + _softplus(-gap))


def _np_logaddexp2(x1: Any, x2: Any) -> Tracer:
    """log2(2^x1 + 2^x2), as logaddexp of the arguments in units of ln 2."""
    ln2 = math.log(2.0)
    return _logaddexp(x1, x2, "np.logaddexp2", ln2) / ln2


def _np_heaviside(x1: Any, x2: Any) -> Tracer:
    """0 for x < 0, 1 for x > 0, x2 at x = 0, NaN for NaN.

    Convention: 0 with respect to x1 (a step function); 1 with respect to x2 where x1 = 0.
    """
    t = _operands((x1, x2), "np.heaviside")[0]
    return _where(t < 0, 0, _where(t > 0, 1, _where(t == 0, x2, np.nan)))


def _np_isnan(x: Any) -> Tracer:
    t = _traced(x, "np.isnan")
    return t != t


def _np_isinf(x: Any) -> Tracer:
    return abs(_traced(x, "np.isinf")) == np.inf


def _np_isfinite(x: Any) -> Tracer:
    return abs(_traced(x, "np.isfinite")) < np.inf


def _np_isposinf(x: Any, out: Any = None) -> Tracer:
    _reject_kwargs("np.isposinf", out=out)
    return _traced(x, "np.isposinf") == np.inf


def _np_isneginf(x: Any, out: Any = None) -> Tracer:
    _reject_kwargs("np.isneginf", out=out)
    return _traced(x, "np.isneginf") == -np.inf


def _nan_ignoring(op: Op, what: str) -> Callable[[Any, Any], Tracer]:
    """np.fmax / np.fmin, built on np.maximum / np.minimum."""
    def extreme(x1: Any, x2: Any) -> Tracer:
        """np.maximum or np.minimum, except that a NaN loses to a number.

        Convention: the number gets the whole gradient where the other argument is NaN; ties as np.maximum.
        """
        a, b = _operands((x1, x2), what)
        both = trace._elementwise(op, (a, b), what)
        return _where(_np_isnan(b), a, _where(_np_isnan(a), b, both))
    return extreme


def _np_count_nonzero(a: Any, axis: Any = None, *, keepdims: Any = False) -> Tracer:
    """The number of non-zero entries: an integer, no gradient."""
    what = "np.count_nonzero"
    return trace._reduce(Op.SUM, _traced(a, what) != 0, axis, keepdims, what)


def _split_along(axis: int, rank: int, what: str) -> Callable[[Any, Any], list[Tracer]]:
    """np.hsplit / vsplit / dsplit: np.split along one axis (hsplit: axis 0 of a vector)."""
    def split(ary: Any, indices_or_sections: Any) -> list[Tracer]:
        x = _traced(ary, what)
        if x.node.ndim < rank:
            raise _fail(f"{what} needs an array of rank {rank} or more, got rank {x.node.ndim}", ShapeError)
        return _split(x, indices_or_sections, 0 if what == "np.hsplit" and x.node.ndim == 1 else axis, "np.split")
    return split


def _np_rollaxis(a: Any, axis: Any, start: Any = 0) -> Tracer:
    """np.rollaxis: axis ``axis`` moved to just before ``start`` (NumPy's own reading of the two)."""
    what = "np.rollaxis"
    x = _traced(a, what)
    rank = x.node.ndim
    (k,) = _axes(_integer(axis, what, "axis"), rank, what)
    first = _integer(start, what, "start")
    first += rank if first < 0 else 0
    if not 0 <= first <= rank:
        raise _fail(f"{what}: start {start} is out of range for an array of rank {rank}")
    return _np_moveaxis(x, k, first - 1 if k < first else first)


# ---------------------------------------------------------------------------
# array methods


class _Methods:
    """Array methods registered on :class:`Tracer`; each is its NumPy function on ``self``."""

    def prod(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
             initial: Any = _UNSET, where: Any = _UNSET) -> Tracer:
        return _np_prod(self, axis, dtype, out, keepdims, initial, where)

    def cumsum(self, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
        _reject_kwargs("x.cumsum", dtype=dtype, out=out)
        return _running(Op.CUMSUM, self, axis, "x.cumsum")

    def cumprod(self, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
        _reject_kwargs("x.cumprod", dtype=dtype, out=out)
        return _running(Op.CUMPROD, self, axis, "x.cumprod")

    def var(self, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0, keepdims: Any = False,
            **kwargs: Any) -> Tracer:
        return _np_var(self, axis, dtype, out, ddof, keepdims, **kwargs)

    def std(self, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0, keepdims: Any = False,
            **kwargs: Any) -> Tracer:
        return _np_std(self, axis, dtype, out, ddof, keepdims, **kwargs)

    def squeeze(self, axis: Any = None) -> Tracer:
        return _squeeze(self, axis, "x.squeeze")

    def ravel(self, order: Any = "C") -> Tracer:
        return _np_ravel(self, order)

    def flatten(self, order: Any = "C") -> Tracer:
        return _np_ravel(self, order)

    def trace(self, offset: Any = 0, axis1: Any = 0, axis2: Any = 1, dtype: Any = None, out: Any = None) -> Tracer:
        return _np_trace(self, offset, axis1, axis2, dtype, out)

    def diagonal(self, offset: Any = 0, axis1: Any = 0, axis2: Any = 1) -> Tracer:
        return _np_diagonal(self, offset, axis1, axis2)

    def repeat(self, repeats: Any, axis: Any = None) -> Tracer:
        return _repeat(self, repeats, axis, "x.repeat")

    def round(self, decimals: Any = 0, out: Any = None) -> Tracer:
        return _np_round(self, decimals, out)

    def swapaxes(self, axis1: Any, axis2: Any) -> Tracer:
        return _np_swapaxes(self, axis1, axis2)

    def conj(self) -> Tracer:
        return _np_real(self)

    def conjugate(self) -> Tracer:
        return _np_real(self)

    def clip(self, min: Any = None, max: Any = None, out: Any = None, **kwargs: Any) -> Tracer:  # noqa: A002
        return trace._np_clip(self, min, max, out, **kwargs)


# ---------------------------------------------------------------------------
# registration in the tracer's tables

FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.prod: _np_prod, np.cumsum: _np_cumsum, np.cumprod: _np_cumprod, np.var: _np_var, np.std: _np_std,
    np.average: _np_average,
    np.nansum: _np_nansum, np.nanmean: _np_nanmean, np.diff: _np_diff,
    np.squeeze: _np_squeeze, np.ravel: _np_ravel, np.atleast_1d: _at_least(1, "np.atleast_1d"),
    np.atleast_2d: _at_least(2, "np.atleast_2d"), np.atleast_3d: _at_least(3, "np.atleast_3d"),
    np.flip: _np_flip, np.fliplr: _np_fliplr, np.flipud: _np_flipud, np.rot90: _np_rot90,
    np.repeat: _np_repeat, np.tile: _np_tile, np.roll: _np_roll, np.append: _np_append, np.pad: _np_pad,
    np.trace: _np_trace, np.diagonal: _np_diagonal, np.diag: _np_diag, np.triu: _np_triu, np.tril: _np_tril,
    np.tensordot: _np_tensordot, np.inner: _np_inner, np.kron: _np_kron, np.einsum: _np_einsum,
    np.zeros_like: _like(0, "zeros_like"), np.ones_like: _like(1, "ones_like"),
    np.empty_like: _like(0, "empty_like"), np.full_like: _like(None, "full_like"),
    np.size: _np_size, np.linspace: _np_linspace,
    np.swapaxes: _np_swapaxes, np.moveaxis: _np_moveaxis, np.broadcast_to: _np_broadcast_to, np.split: _np_split,
    np.array_split: _np_array_split, np.real: _np_real, np.real_if_close: _np_real_if_close,
    np.angle: _np_angle, np.imag: _np_imag, np.vdot: _np_vdot, np.cross: _np_cross,
    np.sinc: _np_sinc, np.nan_to_num: _np_nan_to_num, np.round: _np_round, np.around: _np_round, np.fix: _np_fix,
    np.isposinf: _np_isposinf, np.isneginf: _np_isneginf, np.count_nonzero: _np_count_nonzero,
    np.hsplit: _split_along(1, 1, "np.hsplit"), np.vsplit: _split_along(0, 2, "np.vsplit"),
    np.dsplit: _split_along(2, 3, "np.dsplit"), np.rollaxis: _np_rollaxis,
}

UNARY_UFUNCS = {np.arctanh: Op.ARCTANH, np.arccosh: Op.ARCCOSH, np.cbrt: Op.CBRT, np.rint: Op.RINT,
                np.floor: Op.FLOOR, np.ceil: Op.CEIL, np.trunc: Op.TRUNC}
BINARY_UFUNCS = {np.remainder: Op.REMAINDER, np.fmod: Op.FMOD, np.floor_divide: Op.FLOOR_DIVIDE}

UFUNCS: dict[np.ufunc, Callable[..., Tracer]] = {
    **{u: functools.partial(_step, op, f"np.{u.__name__}") for u, op in UNARY_UFUNCS.items() if op in STEPS},
    np.deg2rad: _scaled(math.pi / 180.0, "np.deg2rad"), np.radians: _scaled(math.pi / 180.0, "np.radians"),
    np.rad2deg: _scaled(180.0 / math.pi, "np.rad2deg"), np.degrees: _scaled(180.0 / math.pi, "np.degrees"),
    np.logaddexp: _np_logaddexp, np.logaddexp2: _np_logaddexp2, np.heaviside: _np_heaviside,
    np.isnan: _np_isnan, np.isinf: _np_isinf, np.isfinite: _np_isfinite,
    np.fmax: _nan_ignoring(Op.MAX, "np.fmax"), np.fmin: _nan_ignoring(Op.MIN, "np.fmin"),
    np.fabs: lambda x: trace._elementwise(Op.ABS, (x,), "np.fabs"), np.conjugate: _np_real,
    np.float_power: lambda x, y: trace._elementwise(Op.POW, (_float64(x), _float64(y)), "np.float_power"),
}


def _float64(value: Any) -> Any:
    """np.float_power computes in float64 (or wider) whatever its operands are."""
    if isinstance(value, Tracer):
        return value if value.node.dtype is DType.F64 else \
            Tracer(_apply(value.graph, Op.CAST, (value.node,), "np.float_power", dtype=DType.F64))
    return np.float64(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)


def _register() -> None:
    trace._FUNCTIONS.update(FUNCTIONS)
    trace._UNARY_UFUNCS.update(UNARY_UFUNCS)
    trace._BINARY_UFUNCS.update(BINARY_UFUNCS)
    trace._UFUNCS.update({u: functools.partial(lambda op, name, x: trace._elementwise(op, (x,), name), op,
                                               f"np.{u.__name__}") for u, op in UNARY_UFUNCS.items()})
    trace._UFUNCS.update({u: functools.partial(lambda op, name, x, y: trace._elementwise(op, (x, y), name), op,
                                               f"np.{u.__name__}") for u, op in BINARY_UFUNCS.items()})
    trace._UFUNCS.update(UFUNCS)
    for name, method in vars(_Methods).items():
        if not name.startswith("_"):
            setattr(Tracer, name, method)


_register()
