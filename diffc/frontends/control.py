"""Loops and branches as written: the user's ``for i in range(m)`` and ``if z > 0:`` become traceable.

Why a source step: the tracer learns a function by calling it, so a Python
loop over a symbolic size cannot run (``range(m)`` needs an int) and an ``if``
on a traced value cannot choose (its value is unknown). As TensorFlow's
AutoGraph does, this module reads the function's source (``inspect`` and
``ast``), rewrites those statements into calls of the helpers below, compiles
the new tree and rebuilds the function with the original globals, closure
cells and defaults (``types.FunctionType``). Nothing is evaluated but the
rewritten function, when the tracer calls it; line numbers are the user's, so
errors point at the user's lines. A function without source (a lambda, a
builtin, code made by ``exec``) or without a ``for ... in range`` / ``if`` /
``a if c else b`` (nor a call of a function by name, whose own loops and
branches are rewritten when it is called) is traced exactly as before.

Map-reduce loops (docs/loops.md has the rule). A loop ``for i in range(N)``
whose iterations are independent is a map followed by a sum: its body reads
loop-invariant values and data indexed by ``i`` (``X[i]``, ``X[i, j]``,
``x[i][j]``), writes iteration-private values (locals assigned before they are
read, or ``z[i] = ...`` into an array made before the loop), and changes
loop-carried values only by ``+=`` / ``-=`` (``J += e``, ``dw[j] += e``,
``db = db + e``). Such a body runs once, with ``i`` bound to a *batch axis*
(:class:`BatchIndex`): ``X[i]`` is all of X (a :class:`Batched` value whose
leading axis is the loop's), elementwise operations broadcast along the batch
axes, and an accumulator update is kept as a per-iteration delta
(:class:`Accum`) that the end of the loop sums over the loop's axis. The IR is
therefore the vectorized expression itself (``X @ w + b``, a ``sum`` over the
rows), with the same fused kernel and gradient. Inner loops of the same kind
nest (``for j in range(n): dw[j] += x[i][j] * dz``). After the loop, a body
local holds its last iteration's value and the index is ``N - 1``, as in Python.

A ``range`` loop outside that class (a carried value read other than by
``+=``, ``break``, the index used as a number) is unrolled, as plain tracing
always did, when its trip count is a concrete number up to
:data:`UNROLL_LIMIT`; over a symbolic size it asks for the call's sizes
(docs/sizes.md) and then unrolls; above the limit it is refused with a
:class:`TraceError` naming the line and the reason. A loop whose count is a
literal (``range(3)``) or that touches no traced value runs as Python.

Branches: ``if``/``elif``/``else`` and ``a if c else b`` on a traced
condition run both branches (each on the values the names had before the
``if``) and merge every name they assign with ``where``: the unselected
branch gets an exact zero gradient. A name assigned in one branch only must
have a value before the ``if``. On a plain Python condition the statement is
ordinary Python.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import functools
import inspect
import textwrap
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from diffc.errors import TraceError
from diffc.frontends import construction
from diffc.frontends import trace as _t

__all__ = ["UNROLL_LIMIT", "Accum", "BatchIndex", "Batched", "rewrite"]

UNROLL_LIMIT = 256  # iterations a loop outside the map-reduce class may unroll to
RUNTIME = "_diffc_"  # the free variable through which rewritten code reaches this module
PREFIX = "_dc_"      # the rewritten code's own temporaries (never named in generated code)

Tracer, Size, _Traced = _t.Tracer, _t.Size, _t._Traced


# ---------------------------------------------------------------------------
# batch axes and per-iteration values


class _Active(threading.local):
    loops: list[Loop]

    def __init__(self) -> None:
        self.loops = []


_ACTIVE = _Active()


class BatchIndex:
    """The index ``i`` of a map-reduce loop while its body runs once: stands for every iteration at once."""

    __slots__ = ("depth", "line", "loop", "name", "size")

    def __init__(self, loop: Loop, name: str, size: Any, depth: int, line: int) -> None:
        self.loop, self.name, self.size, self.depth, self.line = loop, name, size, depth, line

    def __repr__(self) -> str:
        return f"BatchIndex({self.name})"

    def _refuse(self, *args: Any) -> Any:
        raise _t._fail(f"the loop index {self.name} is used as a number: inside a map-reduce loop it may only "
                       f"index arrays (x[{self.name}], X[{self.name}, j])")

    __index__ = __int__ = __float__ = __bool__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse


def _is_index(value: Any) -> bool:
    return isinstance(value, BatchIndex)


def _graph(values: Sequence[Any]) -> Any:
    for value in values:
        if isinstance(value, Batched):
            return value.data.graph
        if isinstance(value, _Traced):
            return value.graph
    return None


def _as_tracer(value: Any, graph: Any) -> Any:
    """A constant array (a NumPy array the body indexes by the loop index) as a constant tracer."""
    if isinstance(value, (Tracer, Batched)):
        return value
    if isinstance(value, Size):
        return value._tracer()
    array = np.asarray(value)
    return Tracer(graph.const(array, _t._to_dtype(array.dtype, "a constant in a loop")))


def _ordered(axes: Any) -> tuple[BatchIndex, ...]:
    return tuple(sorted(set(axes), key=lambda a: a.depth))


def _item_ndim(value: Any) -> int:
    if isinstance(value, Batched):
        return value.data.ndim - len(value.axes)
    return _t._ndim(value)


class Batched:
    """One iteration's value inside a map-reduce loop, held for all iterations at once.

    ``data`` is a tracer whose leading axes are the loop axes ``axes`` (outer
    loop first); the rest is the value of one iteration (its *item*).
    Operations align the batch axes (a missing one is a length-1 axis) and
    pad the items on the left, so NumPy's broadcasting of the items holds.
    """

    __slots__ = ("axes", "data")
    __array_priority__ = 2000
    _diffc_defer = True  # a tracer's NumPy protocols leave mixed calls to this class

    def _diffc_refuse(self, label: str) -> TraceError:
        """Why the function cannot return this value (trace.py asks)."""
        return TraceError(f"{label}: {stale_message(self.axes[0])}")

    def __init__(self, data: Any, axes: tuple[BatchIndex, ...]) -> None:
        self.data, self.axes = data, axes

    def __repr__(self) -> str:
        return f"Batched({self.data!r} over {', '.join(a.name for a in self.axes)})"

    # attributes of one iteration's value
    @property
    def shape(self) -> tuple[Any, ...]:
        return tuple(self.data.shape[len(self.axes):])

    @property
    def ndim(self) -> int:
        return _item_ndim(self)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def T(self) -> Batched:  # noqa: N802 - NumPy's spelling
        return self.transpose()

    def __len__(self) -> int:
        return operator_len(self)

    def __bool__(self) -> bool:
        raise _t._fail("a Python `and`, `or`, `not`, `while` or bool() on a per-iteration value of a map-reduce "
                       "loop cannot be traced; an `if` is rewritten into np.where, these are not")

    def __iter__(self) -> Iterator[Any]:
        raise _t._fail("iterating over a per-iteration value of a map-reduce loop is not supported; index it")

    def __getitem__(self, key: Any) -> Any:
        return index(self, key)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__" or kwargs:
            raise _t._unsupported(f"np.{ufunc.__name__}.{method}" if method != "__call__" else
                                  f"np.{ufunc.__name__}(..., {', '.join(kwargs)}=...)")
        return broadcasting(ufunc, inputs)

    def __array_function__(self, func: Any, types_: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        handler = _BATCHED_FUNCTIONS.get(func)
        if handler is None:
            raise _t._fail(f"{_t._np_name(func)} of a per-iteration value of a map-reduce loop is not supported; "
                           "write the loop's body with elementwise operations, np.dot, sums and np.where")
        return handler(*args, **kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _t._fail("converting a per-iteration value of a map-reduce loop to a NumPy array cannot be traced")

    # methods of one iteration's value
    def sum(self, axis: Any = None, keepdims: bool = False) -> Any:
        return _reduce_item("sum", self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Any:
        return _reduce_item("mean", self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Any:
        return _reduce_item("max", self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Any:
        return _reduce_item("min", self, axis, keepdims)

    def dot(self, other: Any) -> Any:
        return dot(self, other)

    def transpose(self, *axes: Any) -> Batched:
        nb, nd = len(self.axes), _item_ndim(self)
        order = tuple(reversed(range(nd))) if not axes or axes[0] is None else tuple(
            axes[0] if isinstance(axes[0], (tuple, list)) else axes)
        return Batched(np.transpose(self.data, tuple(range(nb)) + tuple(nb + a % nd for a in order)), self.axes)

    def astype(self, dtype: Any) -> Batched:
        return Batched(self.data.astype(dtype), self.axes)

    def __matmul__(self, other: Any) -> Any:
        return dot(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return dot(other, self)


def operator_len(value: Batched) -> int:
    shape = value.shape
    if not shape:
        raise _t._fail("len() of a per-iteration scalar: it has no length")
    first = shape[0]
    if isinstance(first, int):
        return first
    raise _t._sizes_needed("len() of a per-iteration value whose first size is symbolic")


def _install_operators() -> None:
    import operator as op

    binary = {"add": op.add, "sub": op.sub, "mul": op.mul, "truediv": op.truediv, "floordiv": op.floordiv,
              "mod": op.mod, "pow": op.pow, "and": op.and_, "or": op.or_, "xor": op.xor}
    for name, fn in binary.items():
        setattr(Batched, f"__{name}__", lambda self, other, fn=fn: broadcasting(fn, (self, other)))
        setattr(Batched, f"__r{name}__", lambda self, other, fn=fn: broadcasting(fn, (other, self)))
    for name, fn in {"lt": op.lt, "le": op.le, "gt": op.gt, "ge": op.ge, "eq": op.eq, "ne": op.ne}.items():
        setattr(Batched, f"__{name}__", lambda self, other, fn=fn: broadcasting(fn, (self, other)))
    for name, fn in {"neg": op.neg, "pos": op.pos, "abs": abs, "invert": op.invert}.items():
        setattr(Batched, f"__{name}__", lambda self, fn=fn: Batched(fn(self.data), self.axes))
    Batched.__hash__ = None  # type: ignore[assignment]


_install_operators()


def _aligned(values: Sequence[Any]) -> tuple[tuple[BatchIndex, ...], list[Any]]:
    """The union of the batch axes, and each value laid out over it (items padded on the left)."""
    axes = _ordered(a for v in values if isinstance(v, Batched) for a in v.axes)
    rank = max((_item_ndim(v) for v in values), default=0)
    out = []
    for v in values:
        if isinstance(v, Batched):
            pad = rank - _item_ndim(v)
            if v.axes != axes or pad:
                key = tuple(slice(None) if a in v.axes else None for a in axes) + (None,) * pad
                out.append(v.data[key + (slice(None),) * _item_ndim(v)] if key else v.data)
            else:
                out.append(v.data)
        else:
            out.append(v)
    return axes, out


def _wrap(data: Any, axes: tuple[BatchIndex, ...]) -> Any:
    return Batched(data, axes) if axes else data


def _check_live(values: Sequence[Any]) -> None:
    for v in values:
        if isinstance(v, Batched):
            stale = [a for a in v.axes if a.loop.done]
            if stale:
                raise _t._fail(stale_message(stale[0]))


def stale_message(index: BatchIndex) -> str:
    return (f"a value computed inside the loop over {index.name} at line {index.line} (one per iteration) is used "
            "after the loop: diffc runs a map-reduce loop's body once for all iterations, so only its += "
            "accumulators and the arrays it fills (z[i] = ...) have a value after it")


def broadcasting(fn: Callable[..., Any], values: Sequence[Any]) -> Any:
    """``fn`` (a ufunc, an operator) applied to the aligned values: elementwise along every batch axis."""
    if not any(isinstance(v, Batched) for v in values):
        return fn(*values)
    _check_live(values)
    axes, aligned = _aligned(values)
    return _wrap(fn(*aligned), axes)


def dot(a: Any, b: Any) -> Any:
    """``np.dot`` / ``@`` of one iteration's values: a matrix product of the stacked rows where one side is shared.

    ``np.dot(w, x[i])`` over the rows of X is ``X @ w``, the vectorized form's own node.
    """
    if not isinstance(a, Batched) and not isinstance(b, Batched):
        return np.dot(a, b)
    ra, rb = _item_ndim(a), _item_ndim(b)
    if ra == 0 or rb == 0:
        return broadcasting(lambda x, y: x * y, (a, b))
    if isinstance(a, Batched) and isinstance(b, Batched):
        if ra == rb == 1:
            return _reduce_item("sum", broadcasting(lambda x, y: x * y, (a, b)), -1, False)
        raise _t._fail("a matrix product of two per-iteration values is supported for vectors only "
                       "(np.dot(u[i], v[i])); write the product with sums")
    if isinstance(a, Batched):  # stacked rows @ a shared vector or matrix
        return Batched(a.data @ b, a.axes)
    if ra == 1 and rb == 1:  # np.dot(w, x[i]) = x[i] · w: the rows of X times w
        return Batched(b.data @ a, b.axes)
    if ra == 2 and rb == 1:  # W @ x[i] for every i: the rows times W transposed
        return Batched(b.data @ np.transpose(a), b.axes)
    return Batched(a @ b.data, b.axes)


_REDUCERS: dict[str, Callable[..., Any]] = {"sum": _t._np_sum, "mean": _t._np_mean, "max": _t._np_max,
                                            "min": _t._np_min}


def _reduce_item(kind: str, x: Any, axis: Any, keepdims: bool) -> Any:
    """A reduction of one iteration's value: over its item axes only, never over the batch axes."""
    if not isinstance(x, Batched):
        return _REDUCERS[kind](x, axis=axis, keepdims=keepdims)
    nb, nd = len(x.axes), _item_ndim(x)
    if nd == 0 and axis in (None, ()):
        return x
    if axis is None:
        axes = tuple(range(nb, nb + nd))
    else:
        items = axis if isinstance(axis, (tuple, list)) else (axis,)
        axes = tuple(nb + int(a) % nd for a in items)
    return Batched(_REDUCERS[kind](x.data, axis=axes, keepdims=keepdims), x.axes)


def _where(condition: Any, a: Any, b: Any) -> Any:
    return broadcasting(lambda c, x, y: np.where(c, x, y), (condition, a, b))


_BATCHED_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.dot: dot,
    np.matmul: dot,
    np.sum: lambda a, axis=None, keepdims=False: _reduce_item("sum", a, axis, keepdims),
    np.mean: lambda a, axis=None, keepdims=False: _reduce_item("mean", a, axis, keepdims),
    np.max: lambda a, axis=None, keepdims=False: _reduce_item("max", a, axis, keepdims),
    np.amax: lambda a, axis=None, keepdims=False: _reduce_item("max", a, axis, keepdims),
    np.min: lambda a, axis=None, keepdims=False: _reduce_item("min", a, axis, keepdims),
    np.amin: lambda a, axis=None, keepdims=False: _reduce_item("min", a, axis, keepdims),
    np.where: _where,
    np.clip: lambda a, lo, hi: broadcasting(lambda x, p, q: np.clip(x, p, q), (a, lo, hi)),
    np.transpose: lambda a, axes=None: a.transpose(axes),
    np.shape: lambda a: a.shape,
    np.ndim: lambda a: a.ndim,
}


def _same_size(a: Any, b: Any, graph: Any) -> bool | None:
    """Whether two sizes (ints or Sizes) are equal; None when only the call's numbers can tell."""
    da = graph.resolve(a.dim if isinstance(a, Size) else a)
    db = graph.resolve(b.dim if isinstance(b, Size) else b)
    if da == db:
        return True
    if isinstance(da, int) and isinstance(db, int):
        return False
    return None


def index(base: Any, key: Any) -> Any:
    """``base[key]`` where the key may hold loop indices: each one turns an axis into a batch axis."""
    items = key if isinstance(key, tuple) else (key,)
    if not isinstance(base, Batched) and not any(_is_index(k) for k in items):
        return base[key]
    _check_live([base])
    graph = _graph([base]) or next(k.loop.graph for k in items if _is_index(k))
    old = base.axes if isinstance(base, Batched) else ()
    data = base.data if isinstance(base, Batched) else _as_tracer(base, graph)
    nb = len(old)
    out: list[Any] = [slice(None)] * nb
    found: list[tuple[int, BatchIndex]] = [(p, a) for p, a in enumerate(old)]
    position, axis = nb, nb
    for k in items:
        if _is_index(k):
            if any(a is k for _, a in found):
                raise _t._fail(f"indexing by the loop index {k.name} twice (a diagonal) is not supported inside "
                               "a map-reduce loop")
            if axis >= data.ndim:
                raise _t._fail(f"too many indices: the loop index {k.name} indexes an axis the array lacks")
            size = data.shape[axis]
            same = _same_size(k.size, size, graph)
            if same is None and isinstance(k.size, Size) and isinstance(size, Size):
                # range(len(y)) over the rows of X: the sizes must agree, as in y * (X @ w); checked per call
                graph.unify(k.size.dim, size.dim, (), f"the loop over range() indexing x[{k.name}]")
                same = True
            if same is None:
                raise _t._sizes_needed(f"the loop over range({_t.dim_text(_size_dim(k.size))}) indexes an axis of "
                                       f"size {_t.dim_text(_size_dim(size))} at x[{k.name}]")
            if not same:
                if isinstance(k.size, int) and isinstance(size, int) and k.size < size:
                    out.append(slice(0, k.size))
                else:
                    raise _t._fail(f"the loop index {k.name} runs to {k.size}, past the axis of size {size} it "
                                   "indexes", LoopIndexError)
            else:
                out.append(slice(None))
            found.append((position, k))
            position, axis = position + 1, axis + 1
        elif k is None:
            out.append(None)
            position += 1
        elif isinstance(k, slice):
            out.append(k)
            position, axis = position + 1, axis + 1
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            out.append(k)
            axis += 1
        else:
            raise _t._fail("inside a map-reduce loop, an array is indexed by loop indices, ints, slices and "
                           f"None only, not by {type(k).__name__}")
    result = data[tuple(out)]
    order = sorted(found, key=lambda pa: pa[1].depth)
    moved = {p for p, _ in order}
    perm = [p for p, _ in order] + [p for p in range(result.ndim) if p not in moved]
    if perm != list(range(result.ndim)):
        result = np.transpose(result, perm)
    return Batched(result, tuple(a for _, a in order))


class LoopIndexError(TraceError, IndexError):
    """A loop index that runs past the axis it indexes."""


def _size_dim(size: Any) -> Any:
    return size.dim if isinstance(size, Size) else size


def _unbatch(value: Any, key: tuple[Any, ...], what: str) -> Any:
    """``value`` placed at ``target[key]`` for every iteration: the key's batch axes become item axes."""
    keyed = [k for k in key if _is_index(k)]
    if len(keyed) != len(key):
        raise _t._fail(f"{what}: inside a map-reduce loop the index must be made of loop indices only "
                       "(dw[j] += ..., z[i] = ...)")
    graph = keyed[0].loop.graph
    if not isinstance(value, Batched):
        value = Batched(_as_tracer(value, graph), ())
    for k in keyed:
        if k not in value.axes:  # the same value in every iteration of k: broadcast it along k's axis
            zeros = Tracer(graph.const(0, value.data.node.dtype, (_size_dim(k.size),)))
            value = broadcasting(lambda v, z: v + z, (value, Batched(zeros, (k,))))
    rest = [a for a in value.axes if a not in keyed]
    positions = [value.axes.index(a) for a in rest] + [value.axes.index(k) for k in keyed]
    nb = len(value.axes)
    perm = positions + list(range(nb, value.data.ndim))
    data = value.data if perm == list(range(value.data.ndim)) else np.transpose(value.data, perm)
    return _wrap(data, _ordered(rest)) if rest else data


# ---------------------------------------------------------------------------
# accumulators: a per-iteration delta, summed over the loop's axis when the loop ends


class Accum:
    """A loop-carried value changed only by ``+=``: ``base`` plus the sum over ``loop`` of ``delta``.

    ``base`` is the value at the loop's start (itself an Accum of an outer
    loop when the value is carried by both); ``delta`` is one iteration's
    change (a :class:`Batched` value, or None for nothing yet). Keeping the
    delta per iteration lets an ``if`` on a per-iteration condition choose
    it elementwise.
    """

    __slots__ = ("base", "delta", "loop")

    def __init__(self, loop: Loop, base: Any, delta: Any) -> None:
        self.loop, self.base, self.delta = loop, base, delta

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise _t._fail("an accumulator of a map-reduce loop is read inside the loop; only += updates are "
                       "supported")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __getitem__ = _refuse
    __bool__ = __neg__ = __array__ = __float__ = _refuse


def _chain(value: Any, loops: Sequence[Loop]) -> Any:
    """``value`` as an Accum of the innermost of ``loops``, outer levels made first."""
    if not loops:
        return value
    if isinstance(value, Accum) and value.loop is loops[-1]:
        return value
    return Accum(loops[-1], _chain(value, loops[:-1]), None)


def _plus(delta: Any, e: Any, sign: int) -> Any:
    if delta is None:
        return -e if sign < 0 else e
    return delta - e if sign < 0 else delta + e


def acc(value: Any, e: Any, sign: int, loops: Sequence[Loop]) -> Any:
    """``value += e`` (``sign`` 1) or ``value -= e`` (-1), carried by ``loops`` (outer first)."""
    batched = [loop for loop in loops if loop.index is not None]
    if not batched:
        return value - e if sign < 0 else value + e
    chained = _chain(value, batched)
    return Accum(chained.loop, chained.base, _plus(chained.delta, e, sign))


def acc_index(value: Any, key: Any, e: Any, sign: int, loops: Sequence[Loop]) -> Any:
    """``value[key] += e``: in a map-reduce loop the key's loop indices place ``e``; the rest is summed."""
    key = key if isinstance(key, tuple) else (key,)
    if not any(_is_index(k) for k in key):
        return setitem(value, key, _t_index(value, key) - e if sign < 0 else _t_index(value, key) + e)
    placed = _unbatch(e, key, "x[...] += e")
    keyed = {k.loop for k in key if _is_index(k)}
    return acc(value, placed, sign, [loop for loop in loops if loop not in keyed])


def _t_index(value: Any, key: tuple[Any, ...]) -> Any:
    return value[key if len(key) > 1 else key[0]]


def store(value: Any, key: Any, e: Any, loops: Sequence[Loop]) -> Any:
    """``value[key] = e`` for an array that collects one entry per iteration (``z[i] = ...``)."""
    key = key if isinstance(key, tuple) else (key,)
    if not any(_is_index(k) for k in key):
        return setitem(value, key, e)
    placed = _unbatch(e, key, "z[...] = e")
    carried = {loop.index for loop in loops if loop.index is not None} - set(key)
    if isinstance(placed, Batched) and carried & set(placed.axes):
        names = ", ".join(a.name for a in placed.axes if a in carried)
        raise _t._fail(f"an array entry indexed without {names} is written in every iteration of the loop over "
                       f"{names}: only the last write would count; index it by {names} too")
    shape = tuple(np.shape(value)) if not isinstance(value, _Traced) else tuple(value.shape)
    graph = _graph([placed]) or next(k.loop.graph for k in key if _is_index(k))
    covered = [_same_size(k.size, s, graph) for k, s in zip(key, shape, strict=False)]
    dtype = np.dtype(value.dtype) if hasattr(value, "dtype") else np.dtype(np.float64)
    if all(covered):
        if np.dtype(placed.dtype) != dtype:
            placed = placed.astype(dtype)
        if len(placed.shape) == len(shape) and all(_same_size(a, b, graph) for a, b in zip(placed.shape, shape,
                                                                                         strict=True)):
            return placed
        zeros = Tracer(graph.const(0, _t._to_dtype(dtype, "z[i] = ..."), shape))
        return broadcasting(lambda p, z: p + z, (placed, zeros))
    raise _t._fail("z[i] = ... inside a map-reduce loop needs the loop to cover z's axis (range(len(z)))")


def assign(value: Any, key: Any, e: Any) -> Any:
    """``value[key] = e`` in place, except that a NumPy array given a traced entry becomes a traced copy."""
    if isinstance(value, np.ndarray) and (isinstance(e, _Traced) or construction.has_traced(e)):
        value = _t._indexing.np_copy(_as_tracer(value, _first_graph(e)))
    value[key] = e
    return value


def setitem(value: Any, key: Any, e: Any) -> Any:
    """``value[key] = e`` without changing ``value`` itself: both branches of an ``if`` start from it."""
    if isinstance(value, Batched) or isinstance(e, Batched):
        raise _t._fail("assigning into an array inside a traced if, within a map-reduce loop, is not supported; "
                       "assign a name in both branches instead")
    if isinstance(value, Tracer):
        out = _t._indexing.np_copy(value)
    elif isinstance(value, np.ndarray) and isinstance(e, _Traced):
        out = _t._indexing.np_copy(_as_tracer(value, e.graph))
    else:
        out = copy.copy(value)
    out[key] = e
    return out


# ---------------------------------------------------------------------------
# the loop driver


class Loop:
    """``for i in range(...)`` as rewritten: runs the body once over a batch axis, or as Python."""

    def __init__(self, args: tuple[Any, ...], name: str, line: int, reason: str | None, literal: bool) -> None:
        self.args, self.name, self.line, self.reason, self.literal = args, name, line, reason, literal
        self.index: BatchIndex | None = None
        self.graph: Any = None
        self.traced = False
        self.done = False  # the body ran: its per-iteration values are no longer usable

    def probe(self, *values: Any) -> None:
        """The loop-invariant values the body reads: a traced one makes the loop a traced loop."""
        for value in values:
            if isinstance(value, (_Traced, Batched)) or construction.has_traced(value):
                self.traced = True
                self.graph = self.graph or _graph([value]) or _first_graph(value)

    def indexed(self, *values: Any) -> None:
        """The values the body indexes by the loop index: a Python list of arrays takes the unrolled path."""
        for value in values:
            if isinstance(value, (list, tuple, dict)):
                self.reason = f"a {type(value).__name__} is indexed by the loop index {self.name}"
                return

    def __iter__(self) -> Iterator[Any]:
        count = self.args[-1] if self.reason is None else None  # range(N) or range(0, N)
        enclosing = bool(_ACTIVE.loops)
        if isinstance(count, Size):
            self.graph = count.graph
        if self.reason is None and (isinstance(count, Size) or (self.traced and count is not None) or enclosing):
            return self._batched(count)
        if self.reason is not None and enclosing:
            raise _t._fail(f"a loop inside a map-reduce loop is outside the map-reduce form: {self.reason}")
        if self.reason is not None and not self.literal and (self.traced or any(isinstance(a, Size)
                                                                                for a in self.args)):
            return self._unrolled()
        return iter(range(*self.args))

    def _batched(self, count: Any) -> Iterator[Any]:
        if self.graph is None and _ACTIVE.loops:
            self.graph = _ACTIVE.loops[-1].graph
        if isinstance(count, Tracer) and count.weak:
            raise _t._sizes_needed("range() of a value computed from sizes")
        if isinstance(count, _Traced) and not isinstance(count, Size):
            raise _t._fail("range() of a traced value: the number of iterations depends on the data; "
                           "diffc's loops run over sizes (range(m), range(len(y)), range(X.shape[0]))")
        self.index = BatchIndex(self, self.name, count, len(_ACTIVE.loops), self.line)
        _ACTIVE.loops.append(self)
        try:
            yield self.index
        finally:
            _ACTIVE.loops.pop()
            self.done = True

    def _unrolled(self) -> Iterator[Any]:
        if any(isinstance(a, Size) or (isinstance(a, Tracer) and a.weak) for a in self.args):
            raise _t._sizes_needed(f"a loop outside diffc's map-reduce form ({self.reason}) unrolls, over the sizes "
                                   "of the call")
        count = len(range(*self.args))
        if count > UNROLL_LIMIT:
            raise _t._fail(f"the loop at line {self.line} runs {count} times and is outside diffc's map-reduce "
                           f"form: {self.reason}; such a loop unrolls up to {UNROLL_LIMIT} iterations only "
                           "(docs/loops.md)")
        return iter(range(*self.args))

    def last(self, value: Any) -> Any:
        """A body local after the loop: its value in the last iteration, as in Python (the index: N - 1)."""
        index = self.index
        if index is None:
            return value
        if value is index:
            return index.size - 1
        if isinstance(value, Batched) and index in value.axes:
            key = tuple(-1 if a is index else slice(None) for a in value.axes)
            rest = tuple(a for a in value.axes if a is not index)
            return _wrap(value.data[key], rest)
        return value

    def finish(self, value: Any) -> Any:
        """An accumulator after the loop: its base plus the sum over this loop's axis of its delta."""
        if not isinstance(value, Accum) or value.loop is not self:
            return value
        delta = value.delta
        if delta is None:
            return value.base
        index = self.index
        assert index is not None
        if isinstance(delta, Batched) and index in delta.axes:
            position = delta.axes.index(index)
            rest = tuple(a for a in delta.axes if a is not index)
            total = _wrap(np.sum(delta.data, axis=position), rest)
        else:  # the same change in every iteration
            total = delta * index.size
        return _add(value.base, total)


def _first_graph(value: Any) -> Any:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Traced):
            return item.graph
        if isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def _add(base: Any, total: Any) -> Any:
    if isinstance(base, Accum):
        return Accum(base.loop, base.base, _plus(base.delta, total, 1))
    if isinstance(base, (int, float)) and not isinstance(base, bool) and base == 0:
        return total  # J = 0.0 before the loop: the sum itself, the vectorized form's node
    return base + total


def length(value: Any) -> Any:
    """``len(value)`` as a size: ``len(y)`` over a symbolic size stays symbolic in ``range(len(y))``."""
    if isinstance(value, Tracer) and value.ndim:
        return value.shape[0]
    if isinstance(value, Batched):
        return value.shape[0]
    return len(value)


def loop(args: tuple[Any, ...], name: str, line: int, reason: str | None, literal: bool) -> Loop:
    return Loop(args, name, line, reason, literal)


# ---------------------------------------------------------------------------
# branches


class _Unbound:
    """The value of a name that had none before a traced ``if`` (while the other branch runs)."""

    def __repr__(self) -> str:
        return "<unbound>"


UNBOUND: Any = _Unbound()


def _traced_condition(value: Any) -> bool:
    if isinstance(value, Batched):
        return True
    return isinstance(value, Tracer) and not value.weak


def condition(value: Any) -> Any:
    """An ``if``'s test: a Python bool, or the traced condition itself (both branches will run)."""
    if _traced_condition(value):
        return value
    return bool(value)


def choose(test: Any, then: Callable[[], Any], otherwise: Callable[[], Any]) -> Any:
    """``a if c else b``: on a traced c, both values merged with where."""
    c = condition(test)
    if c is True:
        return then()
    if c is False:
        return otherwise()
    return _merge(c, then(), otherwise(), "a if c else b")


class Branches:
    """The values of the names a traced ``if`` assigns: before it, after the then-branch, after the else."""

    def __init__(self, test: Any, line: int) -> None:
        self.test, self.line = test, line
        self.before_values: dict[str, Any] = {}
        self.then_values: dict[str, Any] = {}
        self.else_values: dict[str, Any] = {}

    def before(self, name: str, value: Any) -> None:
        self.before_values[name] = value

    def then(self, name: str, value: Any) -> None:
        self.then_values[name] = value

    def start_else(self, name: str) -> Any:
        return self.before_values.get(name, UNBOUND)

    def otherwise(self, name: str, value: Any) -> None:
        self.else_values[name] = value

    def merged(self, name: str) -> Any:
        a = self.then_values.get(name, UNBOUND)
        b = self.else_values.get(name, UNBOUND)
        if a is UNBOUND and b is UNBOUND:
            return UNBOUND
        if a is UNBOUND or b is UNBOUND:
            side = "else" if a is UNBOUND else "then"
            raise _t._fail(f"{name} is assigned only in the {side} branch of the if at line {self.line} on a traced "
                           f"value, and has no value before it: both branches run, so give {name} a value before "
                           "the if or assign it in both branches")
        return _merge(self.test, a, b, name)


def _merge(test: Any, a: Any, b: Any, name: str) -> Any:
    if a is b or (type(a) is type(b) and isinstance(a, (int, float, str)) and a == b):
        return a  # unchanged by both branches (the two copies of a number are equal)
    if isinstance(a, Accum) or isinstance(b, Accum):
        loop = a.loop if isinstance(a, Accum) else b.loop
        a, b = _chain(a, [loop]), _chain(b, [loop])
        if a.loop is not b.loop:
            raise _t._fail(f"{name}: an accumulator of two different loops in the branches of an if")
        base = _merge(test, a.base, b.base, name)
        if a.delta is b.delta:  # an outer level that neither branch changed
            return Accum(loop, base, a.delta)
        da = 0.0 if a.delta is None else a.delta
        db = 0.0 if b.delta is None else b.delta
        return Accum(loop, base, _where(test, da, db))
    numeric = (_Traced, Batched, int, float, np.ndarray, np.number, np.bool_)
    if isinstance(a, numeric) and isinstance(b, numeric):
        return _where(test, a, b)
    if isinstance(a, (tuple, list)) and type(a) is type(b) and len(a) == len(b):
        return type(a)(_merge(test, x, y, name) for x, y in zip(a, b, strict=True))
    raise _t._fail(f"{name} is given a {type(a).__name__} and a {type(b).__name__} in the two branches of an if on "
                   "a traced value: both branches run, and only numbers and arrays can be merged with np.where")


# ---------------------------------------------------------------------------
# zeros of a symbolic size (z = np.zeros(m) before the loop that fills it)


def _zeros_like_shape(fill: float, original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(shape: Any, dtype: Any = float, order: Any = "C", **kwargs: Any) -> Any:
        dims = shape if isinstance(shape, (tuple, list)) else (shape,)
        sizes = [d for d in dims if isinstance(d, Size)]
        if not sizes or kwargs:
            return original(shape, dtype, order, **kwargs)
        graph = sizes[0].graph
        target = _t._to_dtype(np.dtype(dtype), "np.zeros")
        return Tracer(graph.const(fill, target, tuple(_t._shape_arg(list(dims), "np.zeros"))))

    functools.update_wrapper(wrapper, original)
    return wrapper


construction.swap_while_tracing(np, "zeros", _zeros_like_shape(0, np.zeros))
construction.swap_while_tracing(np, "ones", _zeros_like_shape(1, np.ones))


# ---------------------------------------------------------------------------
# the source step: which loops are map-reduce loops


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _comprehension_names(node: ast.AST) -> set[str]:
    """The names a comprehension binds for itself (``j`` in ``sum(w[j] for j in range(n))``)."""
    return {t.id for c in ast.walk(node) if isinstance(c, _COMPREHENSIONS) for g in c.generators
            for t in ast.walk(g.target) if isinstance(t, ast.Name)}


def _names_loaded(node: ast.AST) -> list[ast.Name]:
    """The names read, without those a comprehension inside binds for itself."""
    own = _comprehension_names(node)
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in own]


def _walk_outside_comprehensions(node: ast.AST) -> list[ast.AST]:
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        out.append(item)
        if not isinstance(item, _COMPREHENSIONS):
            stack.extend(ast.iter_child_nodes(item))
    return out


def _names_stored(node: ast.AST) -> set[str]:
    out: set[str] = set()
    for n in _walk_outside_comprehensions(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name):
            out.add(n.value.id)
    return out


def _range_args(node: ast.For) -> list[ast.expr] | None:
    it = node.iter
    if (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" and not it.keywords
            and 1 <= len(it.args) <= 3 and not any(isinstance(a, ast.Starred) for a in it.args)):
        return list(it.args)
    return None


def _count_of(args: list[ast.expr]) -> ast.expr | None:
    """The trip count of a map-reduce range: ``range(N)`` or ``range(0, N)``."""
    if len(args) == 1:
        return args[0]
    if len(args) == 2 and isinstance(args[0], ast.Constant) and args[0].value == 0:
        return args[1]
    return None


class _Update:
    """An accumulator update statement: ``name[key] += expr`` in one of its spellings."""

    def __init__(self, name: str, key: ast.expr | None, expr: ast.expr, sign: int) -> None:
        self.name, self.key, self.expr, self.sign = name, key, expr, sign


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a) == ast.dump(b)


def update_of(stmt: ast.stmt) -> _Update | None:
    """``J += e``, ``J -= e``, ``J = J + e``, ``J = J - e``, ``J = e + J`` and the same with ``dw[j]``."""
    target: ast.expr
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, (ast.Add, ast.Sub)):
        target, expr, sign = stmt.target, stmt.value, 1 if isinstance(stmt.op, ast.Add) else -1
    elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.value, ast.BinOp)
          and isinstance(stmt.value.op, (ast.Add, ast.Sub))):
        target, value = stmt.targets[0], stmt.value
        if _same_target(value.left, target):
            expr, sign = value.right, 1 if isinstance(value.op, ast.Add) else -1
        elif isinstance(value.op, ast.Add) and _same_target(value.right, target):
            expr, sign = value.left, 1
        else:
            return None
    else:
        return None
    if isinstance(target, ast.Name):
        name, key = target.id, None
    elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        name, key = target.value.id, target.slice
    else:
        return None
    if any(n.id == name for n in _names_loaded(expr)):
        return None
    return _Update(name, key, expr, sign)


def _same_target(expr: ast.expr, target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return isinstance(expr, ast.Name) and expr.id == target.id
    if isinstance(target, ast.Subscript):
        return isinstance(expr, ast.Subscript) and _same(expr.value, target.value) and _same(expr.slice, target.slice)
    return False


def _names_only(key: ast.expr) -> bool:
    """A key of names alone (``z[i]``, ``T[i, j]``): what an entry written per iteration is indexed by."""
    return all(isinstance(e, ast.Name) for e in (key.elts if isinstance(key, ast.Tuple) else [key]))


def _key_names(key: ast.expr) -> set[str]:
    elements = key.elts if isinstance(key, ast.Tuple) else [key]
    return {e.id for e in elements if isinstance(e, ast.Name)}


_FORBIDDEN = {ast.Break: "break", ast.Continue: "continue", ast.Return: "return", ast.Yield: "yield",
              ast.YieldFrom: "yield", ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Delete: "del",
              ast.Try: "try", ast.With: "with", ast.While: "a while loop", ast.FunctionDef: "a def",
              ast.ClassDef: "a class", ast.Lambda: "a lambda", ast.Import: "import", ast.ImportFrom: "import",
              ast.Raise: "raise", ast.Assert: "assert", ast.NamedExpr: ":="}


class LoopFacts:
    """What the source says of one ``for ... in range`` loop: its form, and its carried names."""

    def __init__(self, node: ast.For) -> None:
        self.node = node
        self.reason: str | None = None
        self.carried: set[str] = set()   # accumulators: changed only by += (and dw[j] += ...)
        self.stored: set[str] = set()    # arrays written one entry per iteration (z[i] = ...)

    def refuse(self, reason: str, node: ast.AST) -> None:
        """Keep the first reason; ``{line}`` in it (or its end) becomes the user's line."""
        if self.reason is None:
            line = f"at line {getattr(node, 'lineno', self.node.lineno)}"
            self.reason = reason.replace("{line}", line) if "{line}" in reason else f"{reason} {line}"


def classify(node: ast.For, facts_of: dict[ast.For, LoopFacts]) -> LoopFacts:
    """Whether ``node`` is a map-reduce loop (``facts.reason`` is None) and what it carries."""
    facts = LoopFacts(node)
    facts_of[node] = facts
    args = _range_args(node)
    count = _count_of(args) if args is not None else None
    if not isinstance(node.target, ast.Name) or count is None or node.orelse:
        facts.refuse("the loop is not `for i in range(n)`", node)
        for inner in _inner_loops(node.body):
            classify(inner, facts_of)
        return facts
    index = node.target.id
    for sub in ast.walk(ast.Module(body=node.body, type_ignores=[])):
        for kind, word in _FORBIDDEN.items():
            if isinstance(sub, kind):
                facts.refuse(f"{word} inside the loop", sub)
    for inner in _inner_loops(node.body):
        inner_facts = classify(inner, facts_of)
        if inner_facts.reason is not None:
            facts.refuse(f"its inner loop is outside the form ({inner_facts.reason})", inner)
    _check_index(node, index, facts)
    assigned = _names_stored(ast.Module(body=node.body, type_ignores=[]))
    if index in assigned:
        facts.refuse(f"the loop index {index} is assigned inside the loop", node)
    _Walk(facts, index, assigned).block(node.body, set())
    return facts


def _inner_loops(body: list[ast.stmt]) -> list[ast.For]:
    """The ``for`` statements directly nested in ``body`` (through ifs, not through other loops)."""
    out: list[ast.For] = []
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, ast.For):
            out.append(stmt)
        elif isinstance(stmt, ast.If):
            stack.extend(reversed(stmt.body + stmt.orelse))
    return out


def _parents(root: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(root) for child in ast.iter_child_nodes(parent)}


def _check_index(node: ast.For, index: str, facts: LoopFacts) -> None:
    """The loop index may only be an element of a subscript's key (``x[i]``, ``X[i, j]``)."""
    tree = ast.Module(body=node.body, type_ignores=[])
    parents = _parents(tree)
    for name in _names_loaded(tree):
        if name.id != index:
            continue
        parent = parents.get(name)
        if isinstance(parent, ast.Tuple) and isinstance(parents.get(parent), ast.Subscript) \
                and parents[parent].slice is parent:
            continue
        if isinstance(parent, ast.Subscript) and parent.slice is name:
            continue
        facts.refuse(f"the loop index {index} is used as a number", name)


class _Walk:
    """The body in order: which names are read before this iteration assigns them (carried values)."""

    def __init__(self, facts: LoopFacts, index: str, assigned: set[str]) -> None:
        self.facts, self.index, self.assigned = facts, index, assigned
        self.plain_assigned: set[str] = set()

    def block(self, body: list[ast.stmt], bound: set[str]) -> set[str]:
        for stmt in body:
            bound = self.statement(stmt, bound)
        return bound

    def read(self, expr: ast.AST | None, bound: set[str], skip: ast.AST | None = None) -> None:
        if expr is None:
            return
        parents = _parents(expr)
        for name in _names_loaded(expr):
            n = name.id
            if n == self.index or n in bound or n not in self.assigned:
                continue
            if n in self.facts.stored and isinstance(parents.get(name), ast.Subscript) and \
                    self.index in _key_names(parents[name].slice):
                continue
            if n in self.facts.carried:
                self.facts.refuse(f"{n} is read inside the loop {{line}}; only += updates are supported", name)
            else:
                self.facts.refuse(f"{n} is read inside the loop {{line}} before the body assigns it, so its value "
                                  "carries over from the previous iteration; only += updates are supported", name)

    def statement(self, stmt: ast.stmt, bound: set[str]) -> set[str]:
        update = update_of(stmt)
        if update is not None and update.name not in bound:
            self.read(update.expr, bound)
            if update.key is not None:
                self.read(update.key, bound)
                if not _names_only(update.key):
                    self.facts.refuse(f"{update.name}[...] += is indexed by more than loop indices", stmt)
            if update.name in self.facts.stored or update.name in self.plain_assigned:
                self.facts.refuse(f"{update.name} is both updated by += and assigned inside the loop", stmt)
            self.facts.carried.add(update.name)
            return bound
        if isinstance(stmt, ast.If):
            self.read(stmt.test, bound)
            then = self.block(stmt.body, set(bound))
            other = self.block(stmt.orelse, set(bound))
            return bound | (then & other)
        if isinstance(stmt, ast.For):
            self.read(stmt.iter, bound)
            inner = set(bound) | ({stmt.target.id} if isinstance(stmt.target, ast.Name) else set())
            self.block(stmt.body, inner)
            return bound
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if isinstance(stmt, ast.AugAssign):
                self.read(stmt.target if isinstance(stmt.target, ast.Name) else stmt.target, bound)
            self.read(stmt.value, bound)
            for target in targets:
                bound = self.target(target, bound, stmt)
            return bound
        if isinstance(stmt, (ast.Expr, ast.Pass)):
            self.read(stmt, bound)
            return bound
        self.facts.refuse(f"a {type(stmt).__name__} statement inside the loop", stmt)
        return bound

    def target(self, target: ast.expr, bound: set[str], stmt: ast.stmt) -> set[str]:
        if isinstance(target, ast.Name):
            if target.id in self.facts.carried:
                self.facts.refuse(f"{target.id} is both updated by += and assigned inside the loop", stmt)
            self.plain_assigned.add(target.id)
            return bound | {target.id}
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                bound = self.target(element, bound, stmt)
            return bound
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            name = target.value.id
            self.read(target.slice, bound)
            if name in bound:
                self.facts.refuse(f"{name}[...] is assigned into after {name} is made inside the loop; "
                                  "only arrays made before the loop collect entries", stmt)
                return bound
            if self.index not in _key_names(target.slice):
                self.facts.refuse(f"{name}[...] is written in every iteration without the loop index "
                                  f"{self.index} in its index", stmt)
            elif not _names_only(target.slice):
                self.facts.refuse(f"{name}[...] = is indexed by more than loop indices", stmt)
            if name in self.facts.carried:
                self.facts.refuse(f"{name} is both updated by += and assigned inside the loop", stmt)
            self.facts.stored.add(name)
            return bound
        self.facts.refuse("an assignment to an attribute or a starred target inside the loop", stmt)
        return bound


# ---------------------------------------------------------------------------
# the source step: the rewrite


def _call(attr: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=ast.Name(id=RUNTIME, ctx=ast.Load()), attr=attr, ctx=ast.Load()),
                    args=list(args), keywords=[])


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _store(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Store())


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[_store(name)], value=value)


def _guarded(stmts: list[ast.stmt]) -> ast.Try:
    """``try: stmts except NameError: pass``: the name may have no value (a loop that ran zero times)."""
    return ast.Try(body=stmts, handlers=[ast.ExceptHandler(type=_load("NameError"), name=None, body=[ast.Pass()])],
                   orelse=[], finalbody=[])


class _IfExps(ast.NodeTransformer):
    """``a if c else b`` -> ``_diffc_.choose(c, lambda: a, lambda: b)``."""

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        empty = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                              defaults=[])
        call = _call("choose", node.test, ast.Lambda(args=empty, body=node.body),
                     ast.Lambda(args=empty, body=node.orelse))
        return ast.copy_location(call, node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node  # a nested function is the user's own; only the traced function is rewritten

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]  # noqa: N815 - ast's spelling
    visit_Lambda = visit_FunctionDef  # type: ignore[assignment]  # noqa: N815


class _Callees(ast.NodeTransformer):
    """``f(x)`` -> ``_diffc_.callee(f)(x)``: a Python function the traced one calls is rewritten too."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id not in _BUILTIN_NAMES:
            node.func = ast.copy_location(_call("callee", node.func), node.func)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]  # noqa: N815 - ast's spelling
    visit_Lambda = visit_FunctionDef  # type: ignore[assignment]  # noqa: N815


def callee(fn: Any) -> Any:
    """The function a traced function calls, with its own loops and branches rewritten (cached)."""
    return rewrite(fn) if isinstance(fn, (types.FunctionType, types.MethodType, functools.partial)) else fn


class _Reads(ast.NodeTransformer):
    """Subscripts read with a loop index in their key become ``_diffc_.index(x, key)``."""

    def __init__(self, indices: set[str]) -> None:
        self.indices = indices

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load) and _key_names(node.slice) & self.indices:
            return ast.copy_location(_call("index", node.value, node.slice), node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node


class _Functional(ast.NodeTransformer):
    """``z[k] = e`` -> ``z = _diffc_.setitem(z, k, e)`` inside the branches of a traced if."""

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript) and \
                isinstance(node.targets[0].value, ast.Name):
            target = node.targets[0]
            name = target.value.id  # type: ignore[attr-defined]
            return ast.copy_location(_assign(name, _call("setitem", _load(name), target.slice, node.value)), node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        target = node.target
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            name = target.value.id
            old = ast.Subscript(value=_load(name), slice=target.slice, ctx=ast.Load())
            value = ast.BinOp(left=old, op=node.op, right=node.value)
            return ast.copy_location(_assign(name, _call("setitem", _load(name), target.slice, value)), node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node


class _Rewriter:
    """The statements of the user's function with ``range`` loops and ``if`` statements rewritten."""

    def __init__(self, facts_of: dict[ast.For, LoopFacts]) -> None:
        self.facts_of = facts_of
        self.count = 0

    def fresh(self, kind: str) -> str:
        self.count += 1
        return f"{PREFIX}{kind}{self.count}"

    def block(self, body: list[ast.stmt], loops: list[tuple[LoopFacts, str]]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            out.extend(self.statement(stmt, loops))
        return out

    def statement(self, stmt: ast.stmt, loops: list[tuple[LoopFacts, str]]) -> list[ast.stmt]:
        if isinstance(stmt, ast.For) and stmt in self.facts_of:
            return self.loop(stmt, loops)
        if isinstance(stmt, ast.If):
            return self.branch(stmt, loops)
        if isinstance(stmt, (ast.For, ast.While)):
            stmt.body = self.block(stmt.body, loops)
            stmt.orelse = self.block(stmt.orelse, loops)
            return [stmt]
        if isinstance(stmt, (ast.With, ast.Try)):
            return [self._nested(stmt, loops)]
        if loops:
            stmt = self.in_loop(stmt, loops) or stmt
            return [self.reads(stmt, loops)]
        return [stmt]

    def reads(self, node: Any, loops: list[tuple[LoopFacts, str]]) -> Any:
        """``x[i]`` -> ``_diffc_.index(x, i)`` for the indices of the enclosing map-reduce loops."""
        indices = {f.node.target.id for f, _ in loops if f.reason is None and isinstance(f.node.target, ast.Name)}
        return _Reads(indices).visit(node) if indices else node

    def _nested(self, stmt: Any, loops: list[tuple[LoopFacts, str]]) -> ast.stmt:
        for field in ("body", "orelse", "finalbody"):
            if hasattr(stmt, field):
                setattr(stmt, field, self.block(getattr(stmt, field), loops))
        for handler in getattr(stmt, "handlers", []):
            handler.body = self.block(handler.body, loops)
        return stmt

    def in_loop(self, stmt: ast.stmt, loops: list[tuple[LoopFacts, str]]) -> ast.stmt | None:
        """An update of a carried value, or a store of one entry, as a call of the runtime."""
        mapreduce = [(f, name) for f, name in loops if f.reason is None]
        update = update_of(stmt)
        if update is not None:
            carriers = [name for f, name in _carriers(mapreduce, update.name)]
            if not carriers:
                return None
            where = ast.Tuple(elts=[_load(n) for n in carriers], ctx=ast.Load())
            sign = _const(update.sign)
            if update.key is None:
                value = _call("acc", _load(update.name), update.expr, sign, where)
            else:
                value = _call("acc_index", _load(update.name), update.key, update.expr, sign, where)
            return ast.copy_location(_assign(update.name, value), stmt)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Subscript) \
                and isinstance(stmt.targets[0].value, ast.Name):
            target = stmt.targets[0]
            name = target.value.id  # type: ignore[attr-defined]
            carriers = [n for f, n in mapreduce if name in f.stored]
            if carriers:
                where = ast.Tuple(elts=[_load(n) for n in carriers], ctx=ast.Load())
                return ast.copy_location(_assign(name, _call("store", _load(name), target.slice, stmt.value, where)),
                                         stmt)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Subscript) \
                and isinstance(stmt.targets[0].value, ast.Name):  # an unrolled loop filling a NumPy array
            target = stmt.targets[0]
            name = target.value.id  # type: ignore[attr-defined]
            return ast.copy_location(_assign(name, _call("assign", _load(name), target.slice, stmt.value)), stmt)
        return None

    def loop(self, node: ast.For, loops: list[tuple[LoopFacts, str]]) -> list[ast.stmt]:
        facts = self.facts_of[node]
        args = _range_args(node)
        if args is None:  # not a range loop: Python's own
            node.body = self.block(node.body, loops)
            return [node]
        name = self.fresh("loop")
        literal = all(isinstance(a, ast.Constant) for a in args)
        if len(args) == 1 and isinstance(args[0], ast.Call) and isinstance(args[0].func, ast.Name) and \
                args[0].func.id == "len" and len(args[0].args) == 1 and not args[0].keywords:
            args = [_call("length", args[0].args[0])]
        index = node.target.id if isinstance(node.target, ast.Name) else "i"
        made = _assign(name, _call("loop", ast.Tuple(elts=args, ctx=ast.Load()), _const(index), _const(node.lineno),
                                   _const(facts.reason), _const(literal)))
        out: list[ast.stmt] = [ast.copy_location(made, node)]
        invariant = sorted({n.id for n in _names_loaded(ast.Module(body=node.body, type_ignores=[]))}
                           - _names_stored(ast.Module(body=node.body, type_ignores=[])) - {index}
                           - facts.carried - facts.stored)
        probes = [n for n in invariant if n not in _BUILTIN_NAMES]
        indexed = sorted({s.value.id for s in ast.walk(ast.Module(body=node.body, type_ignores=[]))
                          if isinstance(s, ast.Subscript) and isinstance(s.value, ast.Name)
                          and index in _key_names(s.slice)} & set(probes))
        for method, names in (("probe", probes), ("indexed", indexed)):
            if names and (method == "probe" or facts.reason is None):
                out.append(ast.copy_location(_guarded([ast.Expr(value=ast.Call(
                    func=ast.Attribute(value=_load(name), attr=method, ctx=ast.Load()),
                    args=[_load(n) for n in names], keywords=[]))]), node))
        node.iter = _load(name)
        node.body = self.block(node.body, loops + [(facts, name)])
        out.append(node)
        if facts.reason is None:
            assigned = _names_stored(ast.Module(body=node.body, type_ignores=[])) | {index}
            for local in sorted(n for n in assigned - facts.carried - facts.stored if not n.startswith(PREFIX)):
                last = _assign(local, ast.Call(func=ast.Attribute(value=_load(name), attr="last", ctx=ast.Load()),
                                               args=[_load(local)], keywords=[]))
                out.append(ast.copy_location(_guarded([last]), node))
            for carried in sorted(facts.carried):
                finish = _assign(carried, ast.Call(func=ast.Attribute(value=_load(name), attr="finish",
                                                                      ctx=ast.Load()),
                                                   args=[_load(carried)], keywords=[]))
                out.append(ast.copy_location(_guarded([finish]), node))
        return out

    def branch(self, node: ast.If, loops: list[tuple[LoopFacts, str]]) -> list[ast.stmt]:
        """Plain condition: the ``if`` as written. Traced: both branches, then every name merged."""
        then_plain = self.block(copy.deepcopy(node.body), loops)
        else_plain = self.block(copy.deepcopy(node.orelse), loops)
        then_traced = [_Functional().visit(s) for s in self.block(copy.deepcopy(node.body), loops)]
        else_traced = [_Functional().visit(s) for s in self.block(copy.deepcopy(node.orelse), loops)]
        tree = ast.Module(body=then_traced + else_traced, type_ignores=[])
        names = sorted(n for n in _names_stored(tree) if not n.startswith(PREFIX))
        node.test = self.reads(node.test, loops)
        test, merge = self.fresh("test"), self.fresh("branches")
        early = [s for s in ast.walk(ast.Module(body=node.body + node.orelse, type_ignores=[]))
                 if isinstance(s, (ast.Return, ast.Break, ast.Continue, ast.Yield, ast.Raise, ast.Global,
                                   ast.Nonlocal, ast.FunctionDef, ast.ClassDef))]
        out: list[ast.stmt] = [_assign(test, _call("condition", node.test))]
        if early:  # a branch that leaves early cannot be merged: Python's if, on Python values only
            plain_test = _call("plain_condition", _load(test), _const(node.lineno), _const(type(early[0]).__name__))
            out.append(ast.If(test=plain_test, body=then_plain or [ast.Pass()], orelse=else_plain))
            return [ast.fix_missing_locations(ast.copy_location(s, node)) for s in out]

        def each(method: str, guarded: bool) -> list[ast.stmt]:
            stmts: list[ast.stmt] = []
            for n in names:
                call = ast.Expr(value=ast.Call(func=ast.Attribute(value=_load(merge), attr=method, ctx=ast.Load()),
                                               args=[_const(n), _load(n)], keywords=[]))
                stmts.append(_guarded([call]) if guarded else call)
            return stmts

        def rebind(method: str) -> list[ast.stmt]:
            return [_assign(n, ast.Call(func=ast.Attribute(value=_load(merge), attr=method, ctx=ast.Load()),
                                        args=[_const(n)], keywords=[])) for n in names]

        traced = [_assign(merge, _call("Branches", _load(test), _const(node.lineno))), *each("before", True),
                  *then_traced, *each("then", True), *rebind("start_else"), *else_traced, *each("otherwise", True),
                  *rebind("merged")]
        is_ = ast.Compare(left=_load(test), ops=[ast.Is()], comparators=[_const(True)])
        is_not = ast.Compare(left=_load(test), ops=[ast.Is()], comparators=[_const(False)])
        out.append(ast.If(test=is_, body=then_plain or [ast.Pass()],
                          orelse=[ast.If(test=is_not, body=else_plain or [ast.Pass()], orelse=traced)]))
        return [_located(s, node) for s in out]


def _located(stmt: ast.stmt, node: ast.AST) -> ast.stmt:
    """Every new node at the user's ``if`` line (nodes copied from the user's code keep their own)."""
    for sub in ast.walk(stmt):
        if "lineno" in sub._attributes and not hasattr(sub, "lineno"):
            ast.copy_location(sub, node)
    return stmt


def plain_condition(test: Any, line: int, kind: str) -> bool:
    if test is True or test is False:
        return test
    word = {"Return": "return", "Break": "break", "Continue": "continue", "Raise": "raise"}.get(kind, kind)
    raise _t._fail(f"a Python `if` on a traced value (line {line}) whose branch ends in `{word}` cannot be traced: "
                   "when the condition is traced both branches run, so assign a name in both branches and "
                   "use it after the if, or write `a if c else b` / np.where(c, a, b)")


_BUILTIN_NAMES = frozenset(dir(builtins))


def _carriers(loops: list[tuple[LoopFacts, str]], name: str) -> list[tuple[LoopFacts, str]]:
    """The map-reduce loops (outer first) that carry ``name``: from the innermost outward while it is carried."""
    out: list[tuple[LoopFacts, str]] = []
    for facts, loop_name in reversed(loops):
        if name not in facts.carried:
            break
        out.append((facts, loop_name))
    return list(reversed(out))


# ---------------------------------------------------------------------------
# the source step: building the function again


class _Runtime:
    """What rewritten code calls, as attributes of one object (its only new free variable)."""

    loop = staticmethod(loop)
    acc = staticmethod(acc)
    acc_index = staticmethod(acc_index)
    store = staticmethod(store)
    setitem = staticmethod(setitem)
    assign = staticmethod(assign)
    callee = staticmethod(callee)
    condition = staticmethod(condition)
    plain_condition = staticmethod(plain_condition)
    choose = staticmethod(choose)
    length = staticmethod(length)
    index = staticmethod(index)
    Branches = Branches


_CACHE: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def rewrite(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its loops and branches rewritten, or ``fn`` itself when there is nothing to rewrite."""
    if isinstance(fn, functools.partial):
        inner = rewrite(fn.func)
        return fn if inner is fn.func else functools.partial(inner, *fn.args, **fn.keywords)
    if isinstance(fn, types.MethodType):
        inner = rewrite(fn.__func__)
        return fn if inner is fn.__func__ else types.MethodType(inner, fn.__self__)
    if not isinstance(fn, types.FunctionType):
        return fn
    try:
        cached = _CACHE.get(fn)
    except TypeError:
        cached = None
    if cached is not None and cached[0] == (fn.__code__, fn.__defaults__):
        return cached[1] or fn
    built = _build(fn)
    with contextlib.suppress(TypeError):  # the entry must not refer to fn, or it would keep fn alive
        _CACHE[fn] = ((fn.__code__, fn.__defaults__), built)
    return built or fn


def _parse(fn: types.FunctionType) -> ast.FunctionDef | None:
    code = fn.__code__
    if code.co_name == "<lambda>" or code.co_flags & (inspect.CO_GENERATOR | inspect.CO_COROUTINE
                                                      | inspect.CO_ASYNC_GENERATOR):
        return None
    if getattr(fn, "__wrapped__", None) is not None:
        return None
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef) or tree.body[0].name != code.co_name:
        return None
    node = tree.body[0]
    ast.increment_lineno(tree, first - 1)
    names = [a.arg for a in node.args.posonlyargs + node.args.args]
    if names != list(code.co_varnames[:code.co_argcount]):
        return None  # the file changed since the function was defined
    return node


def _build(fn: types.FunctionType) -> Callable[..., Any] | None:
    node = _parse(fn)
    if node is None:
        return None
    if not any(isinstance(n, (ast.For, ast.If, ast.IfExp)) or _calls_a_name(n) for n in ast.walk(node)):
        return None
    code = fn.__code__
    if RUNTIME in code.co_varnames or RUNTIME in code.co_names or "__class__" in code.co_freevars:
        return None  # (super() needs the class's own cell, which only a class body makes)
    facts_of: dict[ast.For, LoopFacts] = {}
    for loop_node in _top_loops(node.body):
        classify(loop_node, facts_of)
    rewriter = _Rewriter(facts_of)
    body = [_Callees().visit(_IfExps().visit(s)) for s in node.body]
    node.body = rewriter.block(body, [])
    node.decorator_list = []
    freevars = fn.__code__.co_freevars
    factory = ast.FunctionDef(
        name="_diffc_factory",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=n) for n in (*freevars, RUNTIME)], vararg=None,
                           kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
        body=[node, ast.Return(value=_load(node.name))], decorator_list=[], returns=None, type_comment=None)
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    _fix_locations(module, node.lineno)
    try:
        code = compile(module, fn.__code__.co_filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    inner = _code_named(_code_named(code, "_diffc_factory"), fn.__code__.co_name)
    if inner is None:
        return None
    cells = dict(zip(freevars, fn.__closure__ or (), strict=True))
    cells[RUNTIME] = types.CellType(_Runtime)
    try:
        closure = tuple(cells[name] for name in inner.co_freevars)
    except KeyError:
        return None
    new = types.FunctionType(inner, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__doc__ = fn.__doc__
    new.__module__ = fn.__module__
    new.__dict__.update(fn.__dict__)
    return new


def _calls_a_name(node: ast.AST) -> bool:
    """``sigmoid(z)``: a call of a function by name, which may have loops or branches of its own."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in _BUILTIN_NAMES


def _fix_locations(module: ast.Module, line: int) -> None:
    for sub in ast.walk(module):
        if "lineno" in sub._attributes and getattr(sub, "lineno", None) is None:
            sub.lineno, sub.col_offset = line, 0  # type: ignore[attr-defined]


def _top_loops(body: list[ast.stmt]) -> list[ast.For]:
    """The outermost ``for`` statements of the function (nested defs excluded)."""
    out: list[ast.For] = []
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, ast.For):
            out.append(stmt)
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            stack.extend(reversed(getattr(stmt, field, []) or []))
    return out


def _code_named(code: Any, name: str) -> Any:
    if code is None:
        return None
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name:
            return const
    return None

