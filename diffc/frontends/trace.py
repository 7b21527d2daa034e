"""The tracing front end: run the user's NumPy function on tracers, record IR.

Why tracing: users write ordinary NumPy (``np.exp(-z)``, ``X @ w``,
``np.mean(...)``) and we must see every operation without reading their
source. A :class:`Tracer` stands in for each argument; its operators and
NumPy's two dispatch protocols (``__array_ufunc__`` for ufuncs such as
``np.exp``, ``__array_function__`` for functions such as ``np.sum``) append
nodes to one :class:`~diffc.ir.Graph`. No special NumPy module is needed.

Python control flow on ordinary values (a loop over ``range(3)``, an ``if`` on
a flag) simply runs, so it is unrolled. Control flow on a traced value cannot
be recorded (its value is unknown), so ``__bool__``, ``float()``, ``int()``
raise :class:`TraceError` with a hint (``np.where``, ``np.maximum``).
Iteration (``for xi in x``, ``a, b = x``) unrolls one slice per row, so it
needs a concrete first size. Basic indexing is recorded here; indexing and
assignment into traced arrays (index arrays, traced integers, boolean masks
where the selection's size does not matter) are in diffc/frontends/indexing.py.
Lists of traced values, ``np.array`` and Python's ``max``/``min``/``sum`` are
construction.py's.

Dtypes follow NumPy 2 (NEP 50) exactly, by asking ``np.result_type``: a
Python number is *weak* and takes the array's dtype (``x32 * 2.0`` stays f32),
a NumPy scalar or array is *strong* (``x32 * np.float64(2)`` is f64). The
operands of every elementwise node the tracer builds share one dtype: an
``Op.CAST`` is inserted where NumPy would convert, so later stages never guess
at promotion rules.

Sizes: ``x.shape`` holds ints for concrete sizes and :class:`Size` objects for
symbolic ones. A Size behaves like the Python int it will be at run time: it
stays symbolic under ``+``, ``-`` and multiplication by an int
(``X.shape[0] - 1``), and in any other arithmetic becomes a weak i64 tracer of
an ``Op.DIM`` node (``np.sum(z) / X.shape[0]``). Where Python needs a real int
from a symbolic size (``len(x)``, ``range(n)``, ``int(n)``, ``if n > 3``, a
reshape whose element count only numbers can show), :class:`SizesNeededError`
stops the trace and ``diffc.compile`` traces again with the call's sizes
(docs/sizes.md).
"""

from __future__ import annotations

import functools
import inspect
import keyword
import operator
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from diffc.errors import DiffcError, ShapeError, TraceError, UnsupportedCallError, UnsupportedError
from diffc.frontends.local_names import local_names
from diffc.ir import (
    Dim,
    DType,
    Graph,
    Node,
    Op,
    Program,
    Shape,
    Sym,
    basic_index,
    dim_mul,
    dim_product,
    dim_quotient,
    dim_text,
    parse_type,
    type_text,
)

__all__ = ["Size", "SizesNeededError", "Tracer", "annotation_types", "function_name", "signature_names", "trace"]


# ---------------------------------------------------------------------------
# errors that point at the user's line

_NUMPY_DIR = os.path.dirname(np.__file__)
_DIFFC_DIR = os.path.dirname(os.path.dirname(__file__)) + os.sep  # handlers in other modules (np.linalg's) too


def _user_location() -> str:
    """`` (at file.py, line 12)``: the innermost frame outside diffc and NumPy."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_DIFFC_DIR) and not filename.startswith(_NUMPY_DIR):
            return f" (at {os.path.basename(filename)}, line {frame.f_lineno})"
        frame = frame.f_back
    return ""


def _fail(message: str, error: type[DiffcError] = TraceError, **facts: Any) -> DiffcError:
    """``error`` with ``message`` and the user's file and line."""
    return error(message + _user_location(), **facts)


class SizesNeededError(TraceError):
    """The user's code needs a real int where a size is symbolic (``len(x)``, ``range(n)``, ``x.reshape(20, 6)``).

    ``diffc.compile`` catches it and traces again with the call's concrete
    sizes (docs/sizes.md); ``reason`` says what needed the int, and where.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: Python needs a real int there, but the size is symbolic while tracing; "
                         "diffc.compile specialises such a function on the sizes of each call (docs/sizes.md)")


def _sizes_needed(what: str) -> SizesNeededError:
    return SizesNeededError(what + _user_location())


_CONTROL_FLOW = (
    "a Python `if`, `while`, `and`, `or`, `not`, `assert` or bool() on a traced value cannot be "
    "traced: its value is unknown while tracing. Use np.where(cond, a, b) to choose between values and "
    "np.maximum(a, b) / np.minimum(a, b) for an elementwise max/min"
)

# hints appended to "np.X is not supported by diffc's tracer"
_HINTS: dict[str, str] = {
    "np.fmax": "use np.maximum(a, b)",
    "np.fmin": "use np.minimum(a, b)",
    "np.maximum.reduce": "use np.max(x, axis=...)",
    "np.minimum.reduce": "use np.min(x, axis=...)",
    "np.true_divide": "write x / y",
    "np.add.reduce": "use np.sum(x, axis=...)",
    "np.multiply.outer": "use np.outer(a, b)",
    "np.asarray": "traced values are arrays already",
    "np.array": "traced values are arrays already",
    # a real matrix's eigenvalues are complex in general, and diffc traces real arrays only
    **{f"np.{name}": "its result's size depends on the values; choose with a mask instead (np.where(mask, x, 0), "
                     "np.sum(x[mask]))" for name in ("nonzero", "argwhere", "flatnonzero", "unique", "extract",
                                                      "histogram", "bincount", "compress", "trim_zeros")},
    "np.linalg.eig": "its results are complex; for a symmetric matrix use np.linalg.eigh, for singular values "
                     "np.linalg.svd",
    "np.linalg.eigvals": "its results are complex; for a symmetric matrix use np.linalg.eigvalsh, for singular "
                         "values np.linalg.svdvals",
}


def _unsupported(name: str) -> TraceError:
    hint = _HINTS.get(name)
    message = f"{name} is not supported by diffc's tracer" + (f"; {hint}" if hint else "")
    return _fail(f"{message} (docs/numpy.md lists what diffc traces)", UnsupportedCallError, function=name)


def _reject_kwargs(name: str, **kwargs: Any) -> None:
    """NumPy options that change storage or dtype (``out=``, ``dtype=``, ``where=``) are refused."""
    for key, value in kwargs.items():
        if value is not None and value is not _UNSET:
            raise _fail(f"{name}(..., {key}=...) is not supported by diffc's tracer: "
                        f"the `{key}` argument cannot be recorded; remove it")


class _Unset:
    """Marks an argument the user did not pass (NumPy's own sentinel is private)."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


# ---------------------------------------------------------------------------
# operands: tracers, sizes, Python numbers (weak), NumPy values (strong)

_PY_NUMBERS = (bool, int, float, complex)
_NP_VALUES = (np.ndarray, np.number, np.bool_)


def _is_operand(value: Any) -> bool:
    return isinstance(value, (_Traced, *_PY_NUMBERS, *_NP_VALUES, list, tuple))


def _weak_exemplar(dtype: DType) -> bool | int | float:
    """A Python number of the dtype's kind: what a weak tracer stands for in ``np.result_type``."""
    if dtype is DType.BOOL:
        return False
    return 0.0 if dtype.is_float else 0


def _operand(value: Any, what: str) -> Any:
    """A Tracer, a Python number, or an ndarray (lists and NumPy scalars become arrays)."""
    if isinstance(value, Tracer):
        return value
    if isinstance(value, Size):
        return value._tracer()
    if isinstance(value, _PY_NUMBERS):
        return value
    if isinstance(value, (list, tuple)):  # a stack when it holds traced values (construction.py)
        return sequence_operand(value, what)
    if isinstance(value, _NP_VALUES):
        array = np.asarray(value)
        if array.dtype == object:
            raise _fail(f"{what}: a list or tuple holding traced values cannot be turned into an array; "
                        "combine the values with arithmetic instead")
        return array
    raise _fail(f"{what}: cannot use a value of type {type(value).__name__} in a traced computation")


def _graph_of(values: Sequence[Any], what: str) -> Graph | None:
    """The one graph the traced operands belong to; tracers of two traces must not mix."""
    graph: Graph | None = None
    for value in values:
        if isinstance(value, _Traced):
            if graph is None:
                graph = value.graph
            elif value.graph is not graph:
                raise _fail(f"{what}: a traced value of another traced function was used here; values of "
                            "different traces cannot mix (does a closure capture a tracer from an earlier trace?)")
    return graph


_NUMPY_OF = {d: d.numpy for d in DType}
_DTYPE_OF: dict[np.dtype[Any], DType] = {d.numpy: d for d in DType}  # a cache: tracing is a hot loop


def _to_dtype(np_dtype: Any, what: str) -> DType:
    dtype = _DTYPE_OF.get(np_dtype) if isinstance(np_dtype, np.dtype) else None
    if dtype is not None:
        return dtype
    try:
        return DType.from_numpy(np_dtype)
    except UnsupportedError as exc:
        raise _fail(f"{what}: {exc}") from None


def _promote(values: Sequence[Any], what: str, graph: Graph | None = None) -> tuple[Graph, DType, list[Any], bool]:
    """Normalise operands and find NumPy 2's result dtype for them.

    Returns the graph, the common dtype, the operands (Tracers, Python numbers,
    ndarrays) and whether every traced operand is weak (a Python-int-like size).
    """
    graph = _graph_of(values, what) or graph
    if graph is None:
        raise _fail(f"{what}: no traced value among the operands")
    items: list[Any] = []
    exemplars: list[Any] = []
    weak = True
    for value in values:
        item = _operand(value, what)
        if isinstance(item, Tracer):
            exemplars.append(_weak_exemplar(item.node.dtype) if item.weak else _NUMPY_OF[item.node.dtype])
            weak = weak and item.weak
        elif isinstance(item, np.ndarray):
            # a constant array of the model (a literal, a captured mask or weight) takes the traced values'
            # dtype, as a Python number does: a float32 model stays float32 where NumPy would promote to
            # float64. A NumPy scalar (0-d) keeps NumPy 2's rule: np.float64(2) asks for float64.
            exemplars.append(_WEAK_KINDS.get(item.dtype.kind, item.dtype) if item.ndim else item.dtype)
            weak = False
        else:
            exemplars.append(item)
        items.append(item)
    return graph, _to_dtype(np.result_type(*exemplars), what), items, weak


def _node(graph: Graph, item: Any, dtype: DType) -> Node:
    """The operand as a node of ``dtype``: a cast tracer, or a constant converted now."""
    if isinstance(item, Tracer):
        if item.node.dtype is dtype:
            return item.node
        return graph.apply(Op.CAST, item.node, dtype=dtype)
    return graph.const(item, dtype)


def _apply(graph: Graph, op: Op, nodes: Sequence[Node], what: str, **attrs: Any) -> Node:
    """``graph.apply``, with the user's line added to a shape mismatch."""
    try:
        return graph.apply(op, *nodes, **attrs)
    except ShapeError as exc:
        raise ShapeError(f"{what}: {exc}{_user_location()}") from None


def _elementwise(op: Op, values: Sequence[Any], what: str, weak_ok: bool = False) -> Tracer:
    """``op`` over operands promoted to one dtype.

    ``weak_ok``: Python operators on sizes give Python numbers (weak), but a
    NumPy function returns a NumPy scalar (strong), as in NumPy.
    """
    graph, dtype, items, weak = _promote(values, what)
    nodes = [_node(graph, item, dtype) for item in items]
    return Tracer(_apply(graph, op, nodes, what), weak=weak_ok and weak)


def _traced(value: Any, what: str) -> Tracer:
    """An argument that must be a traced value (the array a reduction reduces)."""
    item = _operand(value, what)
    if not isinstance(item, Tracer):
        raise _fail(f"{what}: expected a traced value, got {type(value).__name__}")
    return item


def _bool_pair(a: Any, b: Any, what: str) -> tuple[Graph, Node, Node]:
    graph, dtype, items, _ = _promote((a, b), what)
    if dtype is not DType.BOOL:
        raise _fail(f"{what} is supported for boolean masks only (e.g. (x > 0) & (x < 1)), not for {dtype.value}")
    return graph, _node(graph, items[0], dtype), _node(graph, items[1], dtype)


# boolean masks: the IR has no logical ops, so they are spelled with WHERE and EQ/NE
def _logical_and(a: Any, b: Any, what: str = "x & y") -> Tracer:
    graph, x, y = _bool_pair(a, b, what)
    return Tracer(_apply(graph, Op.WHERE, (x, y, graph.const(False, DType.BOOL)), what))


def _logical_or(a: Any, b: Any, what: str = "x | y") -> Tracer:
    graph, x, y = _bool_pair(a, b, what)
    return Tracer(_apply(graph, Op.WHERE, (x, graph.const(True, DType.BOOL), y), what))


def _logical_xor(a: Any, b: Any, what: str = "x ^ y") -> Tracer:
    graph, x, y = _bool_pair(a, b, what)
    return Tracer(_apply(graph, Op.NE, (x, y), what))


def _logical_not(a: Any, what: str = "~x") -> Tracer:
    x = _traced(a, what)
    if x.node.dtype is not DType.BOOL:
        raise _fail(f"{what} is supported for boolean masks only, not for {x.node.dtype.value}")
    return Tracer(_apply(x.graph, Op.EQ, (x.node, x.graph.const(False, DType.BOOL)), what))


# ---------------------------------------------------------------------------
# NumPy functions: reductions, linear algebra, where


def _axis(axis: Any, what: str) -> int | tuple[int, ...] | None:
    if axis is None:
        return None
    try:
        if isinstance(axis, (tuple, list)):
            return tuple(operator.index(a) for a in axis)
        return operator.index(axis)
    except TypeError:
        raise _fail(f"{what}: axis must be None, an int or a tuple of ints, got {axis!r}") from None


def _reduce(op: Op, a: Any, axis: Any, keepdims: Any, what: str) -> Tracer:
    x = _traced(a, what)
    if x.node.ndim == 0 and x.node.dtype.is_float and axis in (None, ()):
        return Tracer(x.node)  # the sum or mean of one number is that number
    return Tracer(_apply(x.graph, op, (x.node,), what, axis=_axis(axis, what), keepdims=bool(keepdims)))


def _np_sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
            initial: Any = _UNSET, where: Any = _UNSET) -> Tracer:
    _reject_kwargs("np.sum", dtype=dtype, out=out, initial=initial, where=where)
    return _reduce(Op.SUM, a, axis, keepdims, "np.sum")


def _np_mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
             *, where: Any = _UNSET) -> Tracer:
    _reject_kwargs("np.mean", dtype=dtype, out=out, where=where)
    return _reduce(Op.MEAN, a, axis, keepdims, "np.mean")


# -- ops for real models: max/min reductions (the norm is in diffc/frontends/linalg.py) --

def _np_max(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False, initial: Any = _UNSET,
            where: Any = _UNSET) -> Tracer:
    """np.max / np.amax over axes.

    Convention: the first maximum of each reduced slice takes the whole gradient (argmax's one-hot).
    """
    _reject_kwargs("np.max", out=out, initial=initial, where=where)
    return _reduce(Op.AMAX, a, axis, keepdims, "np.max")


def _np_min(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False, initial: Any = _UNSET,
            where: Any = _UNSET) -> Tracer:
    """np.min / np.amin over axes.

    Convention: the first minimum of each reduced slice takes the whole gradient (argmin's one-hot).
    """
    _reject_kwargs("np.min", out=out, initial=initial, where=where)
    return _reduce(Op.AMIN, a, axis, keepdims, "np.min")


def _matmul(a: Any, b: Any, what: str) -> Tracer:
    graph, dtype, items, _ = _promote((a, b), what)
    nodes = [_node(graph, item, dtype) for item in items]
    if max(n.ndim for n in nodes) > 2:  # stacks of matrices: a broadcast product and a sum
        return numpy_functions.stacked_matmul(Tracer(nodes[0]), Tracer(nodes[1]), what)
    return Tracer(_apply(graph, Op.MATMUL, nodes, what))


def _ndim(value: Any) -> int:
    if isinstance(value, Tracer):
        return value.node.ndim
    return 0 if isinstance(value, _Traced) else int(np.ndim(value))


def _np_dot(a: Any, b: Any, out: Any = None) -> Tracer:
    """np.dot is matmul for vectors and matrices, and a product when either side is a number."""
    _reject_kwargs("np.dot", out=out)
    if _ndim(a) == 0 or _ndim(b) == 0:
        return _elementwise(Op.MUL, (a, b), "np.dot")
    return _matmul(a, b, "np.dot")


def _np_outer(a: Any, b: Any, out: Any = None) -> Tracer:
    _reject_kwargs("np.outer", out=out)
    graph, dtype, items, _ = _promote((a, b), "np.outer")
    return Tracer(_apply(graph, Op.OUTER, [_node(graph, item, dtype) for item in items], "np.outer"))


def _transpose(a: Any, axes: Any, what: str) -> Tracer:
    x = _traced(a, what)
    ndim = x.node.ndim
    if axes is None:
        axes = tuple(reversed(range(ndim)))
    else:
        axes = _axis(axes, what)
        axes = (axes,) if isinstance(axes, int) else axes
    if len(axes) == ndim and all(a % max(ndim, 1) == i for i, a in enumerate(axes)):
        return Tracer(x.node)  # the identity permutation (every vector's .T)
    return Tracer(_apply(x.graph, Op.TRANSPOSE, (x.node,), what, axes=axes))


def _np_transpose(a: Any, axes: Any = None) -> Tracer:
    return _transpose(a, axes, "np.transpose")


def _np_where(condition: Any, x: Any = _UNSET, y: Any = _UNSET) -> Tracer:
    """np.where(cond, a, b), the three-argument form.

    Convention: the branch not taken gets exactly 0, so a NaN or inf there never leaks into the gradient.
    """
    what = "np.where"
    if x is _UNSET or y is _UNSET:
        raise _fail("np.where(cond) with one argument (the indices of the true entries, as np.nonzero(cond)) "
                    "is not supported by diffc's tracer: their number depends on the data, and np.nonzero is "
                    "not traceable either; use the three-argument form np.where(cond, a, b), or a mask "
                    "(np.sum(x[cond])) (docs/numpy.md lists what diffc traces)", UnsupportedCallError,
                    function="np.where(cond)")
    graph = _graph_of((condition, x, y), what)
    cond = _operand(condition, what)
    if isinstance(cond, Tracer):
        mask = cond.node
        if mask.dtype is not DType.BOOL:  # NumPy reads a number as "is nonzero"
            mask = _apply(graph, Op.NE, (mask, graph.const(0, mask.dtype)), what)
    else:
        assert graph is not None
        mask = graph.const(np.asarray(cond).astype(bool), DType.BOOL)
    graph, dtype, items, _ = _promote((x, y), what, graph)
    nodes = [mask] + [_node(graph, item, dtype) for item in items]
    return Tracer(_apply(graph, Op.WHERE, nodes, what))


def _np_clip(a: Any, a_min: Any = _UNSET, a_max: Any = _UNSET, out: Any = None, *,
             min: Any = _UNSET, max: Any = _UNSET, **kwargs: Any) -> Tracer:
    """``np.clip`` is ``np.minimum(np.maximum(a, lo), hi)``, which is how NumPy defines it."""
    _reject_kwargs("np.clip", out=out, **kwargs)
    lo = a_min if a_min is not _UNSET else min
    hi = a_max if a_max is not _UNSET else max
    result = a
    if lo is not _UNSET and lo is not None:
        result = _elementwise(Op.MAX, (result, lo), "np.clip")
    if hi is not _UNSET and hi is not None:
        result = _elementwise(Op.MIN, (result, hi), "np.clip")
    return _traced(result, "np.clip")


def _np_shape(a: Any) -> tuple[int | Size, ...]:
    return _traced(a, "np.shape").shape


def _np_ndim(a: Any) -> int:
    return _traced(a, "np.ndim").ndim


_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: _np_sum,
    np.mean: _np_mean,
    np.dot: _np_dot,
    np.outer: _np_outer,
    np.transpose: _np_transpose,
    np.where: _np_where,
    np.clip: _np_clip,
    np.shape: _np_shape,
    np.ndim: _np_ndim,
    # ops for real models
    np.max: _np_max, np.amax: _np_max, np.min: _np_min, np.amin: _np_min,
}


def _np_name(func: Any) -> str:
    """``np.linalg.norm`` for a NumPy function (private module paths are hidden)."""
    module = getattr(func, "__module__", None) or "numpy"
    name = getattr(func, "__name__", repr(func))
    if module == "numpy" or module.startswith("numpy._"):
        return f"np.{name}"
    if module.startswith("numpy."):
        return f"np.{module[6:]}.{name}"
    return f"{module}.{name}"


def _array_function(func: Any, types: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    handler = _FUNCTIONS.get(func)
    if handler is None:
        raise _unsupported(_np_name(func))
    return handler(*args, **kwargs)


# ---------------------------------------------------------------------------
# ufuncs: one table from NumPy's ufunc to the handler that records it

_UNARY_UFUNCS = {
    np.exp: Op.EXP, np.log: Op.LOG, np.sqrt: Op.SQRT, np.sin: Op.SIN, np.cos: Op.COS, np.tan: Op.TAN,
    np.tanh: Op.TANH, np.absolute: Op.ABS, np.sign: Op.SIGN, np.negative: Op.NEG,
    # ops for real models
    np.log1p: Op.LOG1P, np.expm1: Op.EXPM1, np.log2: Op.LOG2, np.log10: Op.LOG10, np.exp2: Op.EXP2,
    np.arcsin: Op.ARCSIN, np.arccos: Op.ARCCOS, np.arctan: Op.ARCTAN, np.sinh: Op.SINH, np.cosh: Op.COSH,
    np.arcsinh: Op.ARCSINH,
}
_BINARY_UFUNCS = {
    np.add: Op.ADD, np.subtract: Op.SUB, np.multiply: Op.MUL, np.divide: Op.DIV, np.power: Op.POW,
    np.maximum: Op.MAX, np.minimum: Op.MIN, np.greater: Op.GT, np.greater_equal: Op.GE, np.less: Op.LT,
    np.less_equal: Op.LE, np.equal: Op.EQ, np.not_equal: Op.NE,
    np.arctan2: Op.ARCTAN2, np.hypot: Op.HYPOT,  # ops for real models
}


def _np_square(x: Any) -> Tracer:
    return _elementwise(Op.MUL, (x, x), "np.square")


def _np_reciprocal(x: Any) -> Tracer:
    t = _traced(x, "np.reciprocal")
    if not t.node.dtype.is_float:  # NumPy's integer reciprocal truncates: not a 1 / x
        raise _fail(f"np.reciprocal of {t.node.dtype.value} is not supported by diffc's tracer; write 1.0 / x")
    return _elementwise(Op.DIV, (1, t), "np.reciprocal")


def _np_positive(x: Any) -> Tracer:
    return Tracer(_traced(x, "np.positive").node)


_UFUNCS: dict[np.ufunc, Callable[..., Tracer]] = {
    **{u: functools.partial(lambda op, name, x: _elementwise(op, (x,), name), op, f"np.{u.__name__}")
       for u, op in _UNARY_UFUNCS.items()},
    **{u: functools.partial(lambda op, name, x, y: _elementwise(op, (x, y), name), op, f"np.{u.__name__}")
       for u, op in _BINARY_UFUNCS.items()},
    np.square: _np_square,
    np.reciprocal: _np_reciprocal,
    np.positive: _np_positive,
    np.matmul: lambda a, b: _matmul(a, b, "np.matmul"),
    np.logical_and: lambda a, b: _logical_and(a, b, "np.logical_and"),
    np.logical_or: lambda a, b: _logical_or(a, b, "np.logical_or"),
    np.logical_xor: lambda a, b: _logical_xor(a, b, "np.logical_xor"),
    np.logical_not: lambda a: _logical_not(a, "np.logical_not"),
}


def _array_ufunc(ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    name = f"np.{ufunc.__name__}"
    if method != "__call__":
        raise _unsupported(f"{name}.{method}")
    handler = _UFUNCS.get(ufunc)
    if handler is None:
        raise _unsupported(name)
    _reject_kwargs(name, **kwargs)
    if len(inputs) != ufunc.nin:
        raise _fail(f"{name} takes {ufunc.nin} argument(s), got {len(inputs)}")
    return handler(*inputs)


# ---------------------------------------------------------------------------
# the traced values


class _Traced:
    """What tracers and symbolic sizes share: arithmetic, comparisons, NumPy dispatch, refusals."""

    __slots__ = ()
    __array_priority__ = 1000  # NumPy defers binary operators to us

    @property
    def graph(self) -> Graph:
        raise NotImplementedError

    # NumPy's protocols
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if any(getattr(type(x), "_diffc_defer", False) for x in inputs):
            return NotImplemented  # a loop's per-iteration value (diffc/frontends/control.py) answers
        return _array_ufunc(ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        if any(getattr(t, "_diffc_defer", False) for t in types):
            return NotImplemented
        return _array_function(func, types, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _fail("converting a traced value to a NumPy array (np.float64(x), math.* functions, a NumPy "
                    "function diffc does not trace given a list of traced values, `from numpy import array`) "
                    "cannot be traced; use np.array / np.asarray / np.stack, arithmetic and the NumPy functions "
                    "diffc records (docs/numpy.md)")

    # refusals: the value is unknown while tracing
    def __bool__(self) -> bool:
        raise _fail(_CONTROL_FLOW)

    def __float__(self) -> float:
        raise _fail("float() (or a math.* function) on a traced value cannot be traced: its value is unknown "
                    "while tracing; use NumPy functions (np.exp, np.sqrt, ...), which diffc records")

    def __int__(self) -> int:
        raise _fail("int() on a traced value cannot be traced: its value is unknown while tracing")

    __complex__ = __float__  # type: ignore[assignment]

    def __index__(self) -> int:
        raise _fail("a traced value cannot be used as an index or a count (range(), indexing): its value is "
                    "unknown while tracing")

    def __divmod__(self, other: Any) -> Any:
        raise _unsupported("divmod()")

    __rdivmod__ = __divmod__

    def __and__(self, other: Any) -> Any:
        return _logical_and(self, other) if _is_operand(other) else NotImplemented

    def __rand__(self, other: Any) -> Any:
        return _logical_and(other, self) if _is_operand(other) else NotImplemented

    def __or__(self, other: Any) -> Any:
        return _logical_or(self, other) if _is_operand(other) else NotImplemented

    def __ror__(self, other: Any) -> Any:
        return _logical_or(other, self) if _is_operand(other) else NotImplemented

    def __xor__(self, other: Any) -> Any:
        return _logical_xor(self, other) if _is_operand(other) else NotImplemented

    def __rxor__(self, other: Any) -> Any:
        return _logical_xor(other, self) if _is_operand(other) else NotImplemented

    def __invert__(self) -> Tracer:
        return _logical_not(self)

    def __neg__(self) -> Any:
        return _elementwise(Op.NEG, (self,), "-x", weak_ok=True)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Tracer:
        return _elementwise(Op.ABS, (self,), "abs(x)", weak_ok=True)

    def __pow__(self, other: Any, modulo: Any = None) -> Any:
        if modulo is not None:
            raise _unsupported("pow(x, y, modulo)")
        return _elementwise(Op.POW, (self, other), "x ** y", weak_ok=True) if _is_operand(other) else NotImplemented

    def __rpow__(self, other: Any) -> Any:
        return _elementwise(Op.POW, (other, self), "x ** y", weak_ok=True) if _is_operand(other) else NotImplemented

    def __matmul__(self, other: Any) -> Any:
        return _matmul(self, other, "x @ y") if _is_operand(other) else NotImplemented

    def __rmatmul__(self, other: Any) -> Any:
        return _matmul(other, self, "x @ y") if _is_operand(other) else NotImplemented

    # arithmetic and comparisons are installed from a table below the class
    __add__: Callable[[Any, Any], Any]
    __radd__: Callable[[Any, Any], Any]
    __sub__: Callable[[Any, Any], Any]
    __rsub__: Callable[[Any, Any], Any]
    __mul__: Callable[[Any, Any], Any]
    __rmul__: Callable[[Any, Any], Any]
    __truediv__: Callable[[Any, Any], Any]
    __rtruediv__: Callable[[Any, Any], Any]
    __mod__: Callable[[Any, Any], Any]
    __rmod__: Callable[[Any, Any], Any]
    __floordiv__: Callable[[Any, Any], Any]
    __rfloordiv__: Callable[[Any, Any], Any]


def _binary_methods(op: Op, what: str) -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]:
    def forward(self: Any, other: Any) -> Any:
        return _elementwise(op, (self, other), what, weak_ok=True) if _is_operand(other) else NotImplemented

    def reflected(self: Any, other: Any) -> Any:
        return _elementwise(op, (other, self), what, weak_ok=True) if _is_operand(other) else NotImplemented

    return forward, reflected


# Python operator -> (op, text for messages); comparisons need no reflected form (Python swaps them)
_OPERATORS = {"add": (Op.ADD, "x + y"), "sub": (Op.SUB, "x - y"), "mul": (Op.MUL, "x * y"),
              "truediv": (Op.DIV, "x / y"), "mod": (Op.REMAINDER, "x % y"), "floordiv": (Op.FLOOR_DIVIDE, "x // y")}
_COMPARISONS = {"lt": (Op.LT, "x < y"), "le": (Op.LE, "x <= y"), "gt": (Op.GT, "x > y"),
                "ge": (Op.GE, "x >= y"), "eq": (Op.EQ, "x == y"), "ne": (Op.NE, "x != y")}

for _name, (_op, _what) in _OPERATORS.items():
    _forward, _reflected = _binary_methods(_op, _what)
    setattr(_Traced, f"__{_name}__", _forward)
    setattr(_Traced, f"__r{_name}__", _reflected)
for _name, (_op, _what) in _COMPARISONS.items():
    setattr(_Traced, f"__{_name}__", _binary_methods(_op, _what)[0])
_Traced.__hash__ = None  # type: ignore[assignment]  # == is elementwise, as for ndarray


_NDARRAY_ATTRS = frozenset(name for name in dir(np.ndarray) if not name.startswith("_"))


class Tracer(_Traced):
    """A traced array: stands for one argument (or intermediate) of the user's function.

    ``weak`` marks a value that is a Python number at run time (derived from a
    symbolic size), which takes the other operand's dtype as NumPy 2 does.
    """

    __slots__ = ("node", "weak")

    def __init__(self, node: Node, weak: bool = False) -> None:
        self.node = node
        self.weak = weak

    @property
    def graph(self) -> Graph:
        return self.node.graph

    def __repr__(self) -> str:
        return f"Tracer(%{self.node.id}: {type_text(self.node.dtype, self.node.shape)})"

    def __format__(self, spec: str) -> str:
        if spec:
            raise _fail(f"formatting a traced value with {spec!r} cannot be traced: it has no number yet")
        return repr(self)

    # array attributes
    @property
    def shape(self) -> tuple[int | Size, ...]:
        graph = self.node.graph
        return tuple(d if isinstance(d, int) else Size(graph, d) for d in self.node.shape)

    @property
    def ndim(self) -> int:
        return self.node.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.node.dtype.numpy

    @property
    def size(self) -> Any:
        total: Any = 1
        for d in self.shape:
            total = total * d
        return total

    @property
    def T(self) -> Tracer:  # noqa: N802 - NumPy's spelling
        return _transpose(self, None, "x.T")

    def __len__(self) -> int:
        if self.node.ndim == 0:
            raise _fail("len() of a traced scalar: it has no length")
        first = self.node.shape[0]
        if isinstance(first, int):
            return first
        raise _sizes_needed(f"len() of an array whose first size {dim_text(first)} is symbolic")

    def __iter__(self) -> Any:
        """Rows one by one (``for xi in x``, ``a, b = x``): unrolled, one slice per row, so for a known count."""
        if self.node.ndim == 0:
            raise _fail("iterating over a traced scalar: it has no rows")
        first = self.node.shape[0]
        if not isinstance(first, int):
            raise _sizes_needed(f"iterating over an array whose first size {dim_text(first)} is symbolic")
        return (self[i] for i in range(first))

    # a value computed from sizes alone (weak) is an int of the call: known once sizes are concrete
    def __bool__(self) -> bool:
        if self.weak:
            raise _sizes_needed("a Python `if` or bool() on a value computed from sizes")
        raise _fail(_CONTROL_FLOW)

    def __int__(self) -> int:
        if self.weak:
            raise _sizes_needed("int() of a value computed from sizes")
        return _Traced.__int__(self)

    def __float__(self) -> float:
        if self.weak:
            raise _sizes_needed("float() of a value computed from sizes")
        return _Traced.__float__(self)

    def __index__(self) -> int:
        if self.weak:
            raise _sizes_needed("a value computed from sizes used as an int (range(), indexing, a size)")
        return _Traced.__index__(self)

    def __getitem__(self, key: Any) -> Any:
        return _indexing.getitem(self, key)

    def reshape(self, *shape: Any, order: str = "C") -> Tracer:
        return _reshape(self, shape[0] if len(shape) == 1 else shape, order, "x.reshape")

    def __setitem__(self, key: Any, value: Any) -> None:
        _indexing.setitem(self, key, value)  # rebinds self.node: traced values are immutable

    def copy(self, order: Any = "C") -> Tracer:
        return _indexing.np_copy(self)

    def take(self, indices: Any, axis: Any = None, out: Any = None, mode: Any = "raise") -> Tracer:
        return _indexing.np_take(self, indices, axis, out, mode)

    def argmax(self, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Tracer:
        return _indexing.np_argmax(self, axis, out, keepdims=keepdims)

    def argmin(self, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Tracer:
        return _indexing.np_argmin(self, axis, out, keepdims=keepdims)

    def argsort(self, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None) -> Tracer:
        return _indexing.np_argsort(self, axis, kind, order, stable=stable)

    def __getattr__(self, name: str) -> Any:
        if name in _NDARRAY_ATTRS:
            raise _fail(f"x.{name} is not supported by diffc's tracer")
        raise AttributeError(f"'Tracer' object has no attribute {name!r}")

    # array methods
    def sum(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
            initial: Any = _UNSET, where: Any = _UNSET) -> Tracer:
        _reject_kwargs("x.sum", dtype=dtype, out=out, initial=initial, where=where)
        return _reduce(Op.SUM, self, axis, keepdims, "x.sum")

    def mean(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
             *, where: Any = _UNSET) -> Tracer:
        _reject_kwargs("x.mean", dtype=dtype, out=out, where=where)
        return _reduce(Op.MEAN, self, axis, keepdims, "x.mean")

    def max(self, axis: Any = None, out: Any = None, keepdims: Any = False, initial: Any = _UNSET,
            where: Any = _UNSET) -> Tracer:
        _reject_kwargs("x.max", out=out, initial=initial, where=where)
        return _reduce(Op.AMAX, self, axis, keepdims, "x.max")

    def min(self, axis: Any = None, out: Any = None, keepdims: Any = False, initial: Any = _UNSET,
            where: Any = _UNSET) -> Tracer:
        _reject_kwargs("x.min", out=out, initial=initial, where=where)
        return _reduce(Op.AMIN, self, axis, keepdims, "x.min")

    def dot(self, other: Any, out: Any = None) -> Tracer:
        return _np_dot(self, other, out)

    def transpose(self, *axes: Any) -> Tracer:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _transpose(self, axes or None, "x.transpose")

    def astype(self, dtype: Any, copy: bool = True) -> Tracer:
        target = _to_dtype(dtype, "x.astype")
        if target is self.node.dtype:
            return Tracer(self.node)
        return Tracer(_apply(self.graph, Op.CAST, (self.node,), "x.astype", dtype=target))


def _scale(sym: Sym, factor: int) -> Dim:
    scaled = Sym(((k, v * factor) for k, v in sym.terms), sym.const * factor)
    return scaled if scaled.terms else scaled.const


class Size(_Traced):
    """A symbolic size from ``x.shape``: the Python int it will be at run time.

    ``+``, ``-`` and products with ints stay symbolic sizes (``n - 1``, ``2*n``);
    anything else (``np.sum(z) / n``, ``1.0 / n``) becomes a weak i64 tracer
    of an ``Op.DIM`` node, which a float operand casts to its own dtype.
    """

    __slots__ = ("_graph", "dim")

    def __init__(self, graph: Graph, dim: Sym) -> None:
        self._graph = graph
        self.dim = dim

    @property
    def graph(self) -> Graph:
        return self._graph

    def _tracer(self) -> Tracer:
        return Tracer(self._graph.dim(self.dim), weak=True)

    def __repr__(self) -> str:
        return f"Size({dim_text(self._graph.resolve(self.dim))})"

    def _same(self, other: Any) -> Dim | None:
        """``other`` as a size of this graph, or None when it is not an int or a Size."""
        if isinstance(other, Size) and other._graph is self._graph:
            return other.dim
        if isinstance(other, (int, np.integer)) and not isinstance(other, (bool, np.bool_)):
            return int(other)
        return None

    @staticmethod
    def _wrap(graph: Graph, dim: Dim) -> int | Size:
        dim = graph.resolve(dim)
        return dim if isinstance(dim, int) else Size(graph, dim)

    def __add__(self, other: Any) -> Any:
        dim = self._same(other)
        return _Traced.__add__(self, other) if dim is None else self._wrap(self._graph, self.dim + dim)

    def __radd__(self, other: Any) -> Any:
        dim = self._same(other)
        return _Traced.__radd__(self, other) if dim is None else self._wrap(self._graph, dim + self.dim)

    def __sub__(self, other: Any) -> Any:
        dim = self._same(other)
        return _Traced.__sub__(self, other) if dim is None else self._wrap(self._graph, self.dim - dim)

    def __rsub__(self, other: Any) -> Any:
        dim = self._same(other)
        return _Traced.__rsub__(self, other) if dim is None else self._wrap(self._graph, dim - self.dim)

    def __mul__(self, other: Any) -> Any:
        dim = self._same(other)
        if dim is not None:  # m * n stays a size (a reshape's target)
            return self._wrap(self._graph, dim_mul(self.dim, dim))
        return _Traced.__mul__(self, other)

    def __rmul__(self, other: Any) -> Any:
        dim = self._same(other)
        if dim is not None:
            return self._wrap(self._graph, dim_mul(dim, self.dim))
        return _Traced.__rmul__(self, other)

    def __neg__(self) -> Any:
        return self._wrap(self._graph, _scale(self.dim, -1))

    def __eq__(self, other: object) -> Any:
        dim = self._same(other)
        if dim is None:
            return _Traced.__eq__(self, other)
        a, b = self._graph.resolve(self.dim), self._graph.resolve(dim)
        if a == b:
            return True
        raise _sizes_needed(f"cannot decide while tracing whether the sizes {dim_text(a)} and {dim_text(b)} "
                            "are equal")

    def __ne__(self, other: object) -> Any:
        result = self.__eq__(other)
        return (not result) if isinstance(result, bool) else _Traced.__ne__(self, other)

    def __hash__(self) -> int:
        return hash(self._graph.resolve(self.dim))

    def __int__(self) -> int:
        raise _sizes_needed(f"the symbolic size {self!r} used as a Python int (int(), range(), indexing, "
                            "np.zeros(n))")

    __index__ = __int__

    def __float__(self) -> float:
        raise _sizes_needed(f"float() of the symbolic size {self!r}")

    def __bool__(self) -> bool:
        raise _sizes_needed(f"a Python `if` or bool() on the symbolic size {self!r}")

    def __floordiv__(self, other: Any) -> Any:
        raise _sizes_needed(f"the symbolic size {self!r} in // or %")

    __rfloordiv__ = __floordiv__
    __mod__ = __floordiv__
    __rmod__ = __floordiv__
    __divmod__ = __floordiv__
    __rdivmod__ = __floordiv__


# ---------------------------------------------------------------------------
# indexing, reshapes, joins, np.arange of a size
#
# Indexing (x[key] and x[key] = v) lives in diffc/frontends/indexing.py: basic
# indices, index arrays and traced integers on any axis, boolean masks in the
# forms whose size does not matter, the row gather ``x[np.arange(m), idx]``.
# ``np.arange(m)`` of a symbolic size cannot go through NumPy's
# dispatch (np.arange has none), so ``trace`` swaps ``numpy.arange`` for a
# wrapper while the function runs: the wrapper records an ARANGE node when a
# size is among its arguments and calls NumPy's own arange otherwise, so other
# threads see no change. (``from numpy import arange`` binds the original and
# is not seen.)

_WEAK_KINDS: dict[str, Any] = {"b": False, "i": 0, "u": 0, "f": 0.0}


def _shape_arg(shape: Any, what: str) -> list[Any]:
    items = list(shape) if isinstance(shape, (tuple, list)) else [shape]
    out: list[Any] = []
    for d in items:
        if isinstance(d, Size):
            out.append(d.dim)
        elif isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)):
            out.append(int(d))
        elif isinstance(d, Tracer) and d.weak:
            raise _sizes_needed(f"{what}: a size computed from sizes")
        else:
            raise _fail(f"{what}: a size must be an int or a size from x.shape, got {type(d).__name__}")
    return out


def _reshape(a: Any, shape: Any, order: Any, what: str) -> Tracer:
    """A reshape to sizes that are known to keep the number of elements; ``-1`` is worked out."""
    x = _traced(a, what)
    if order != "C":
        raise _fail(f"{what}(..., order={order!r}) is not supported by diffc's tracer: only order='C'")
    graph = x.graph
    dims = _shape_arg(shape, what)
    total = graph.resolve(dim_product(x.node.shape))
    if sum(1 for d in dims if d == -1) > 1:
        raise ShapeError(f"{what}: can only specify one unknown dimension (-1){_user_location()}")
    if any(isinstance(d, int) and d < -1 for d in dims):
        raise ShapeError(f"{what}: negative size in {tuple(dims)}{_user_location()}")
    if -1 in dims:
        known = graph.resolve(dim_product(d for d in dims if d != -1))
        missing = dim_quotient(total, known)
        if missing is None:
            if isinstance(total, int) and isinstance(known, int):
                raise ShapeError(f"{what}: cannot reshape an array of {total} elements into shape "
                                 f"{tuple(dims)}{_user_location()}")
            raise _sizes_needed(f"{what}: the -1 in ({', '.join(dim_text(d) for d in dims)}) for an array of "
                                f"{dim_text(total)} elements")
        dims[dims.index(-1)] = missing
    target = tuple(graph.resolve(d) for d in dims)
    after = graph.resolve(dim_product(target))
    if after != total:
        if isinstance(total, int) and isinstance(after, int):
            raise ShapeError(f"{what}: cannot reshape an array of {total} elements into shape {target}"
                             f"{_user_location()}")
        raise _sizes_needed(f"{what}: whether the shape ({', '.join(dim_text(d) for d in target)}) has the "
                            f"{dim_text(total)} elements of {type_text(x.node.dtype, x.node.shape)}")
    if target == x.node.shape:
        return Tracer(x.node)
    return Tracer(_apply(graph, Op.RESHAPE, (x.node,), what, shape=target))


def _np_reshape(a: Any, shape: Any = None, order: Any = "C", *, newshape: Any = None, copy: Any = None) -> Tracer:
    _reject_kwargs("np.reshape", copy=copy)
    return _reshape(a, newshape if shape is None else shape, order, "np.reshape")


def _joined(arrays: Any, what: str) -> tuple[Graph, list[Node]]:
    """The arrays of a concatenate or stack, promoted to one dtype."""
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise _fail(f"{what} takes a non-empty list or tuple of arrays")
    graph, dtype, items, _ = _promote(list(arrays), what)
    return graph, [_node(graph, item, dtype) for item in items]


def _np_concatenate(arrays: Any, axis: Any = 0, out: Any = None, dtype: Any = None,
                    casting: Any = "same_kind") -> Tracer:
    _reject_kwargs("np.concatenate", out=out, dtype=dtype)
    what = "np.concatenate"
    if axis is None:
        arrays = [_reshape(a, -1, "C", what) if isinstance(a, Tracer) else np.ravel(a) for a in arrays]
        axis = 0
    graph, nodes = _joined(arrays, what)
    if len(nodes) == 1:
        return Tracer(nodes[0])
    return Tracer(_apply(graph, Op.CONCAT, nodes, what, axis=operator.index(axis)))


def _np_stack(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None, casting: Any = "same_kind") -> Tracer:
    _reject_kwargs("np.stack", out=out, dtype=dtype)
    graph, nodes = _joined(arrays, "np.stack")
    return Tracer(_apply(graph, Op.STACK, nodes, "np.stack", axis=operator.index(axis)))


def _np_expand_dims(a: Any, axis: Any) -> Tracer:
    what = "np.expand_dims"
    x = _traced(a, what)
    axes = _axis(axis, what)
    axes = (axes,) if isinstance(axes, int) else tuple(axes or ())
    ndim = x.node.ndim + len(axes)
    where = {a % ndim if -ndim <= a < ndim else ndim for a in axes}
    if ndim in where or len(where) != len(axes):
        raise ShapeError(f"{what}: axis {axis!r} is out of range or repeated for the result's rank {ndim}"
                         f"{_user_location()}")
    key = tuple(None if p in where else slice(None) for p in range(ndim))
    return Tracer(basic_index(x.node, key, what)) if x.node.ndim else _fail(f"{what} of a traced scalar: "
                                                                            "use np.full or arithmetic")


def _np_arange(*args: Any, **kwargs: Any) -> Any:
    """``np.arange(m)`` of a symbolic size: an ARANGE node (the row index of a gather)."""
    if kwargs.get("dtype") not in (None, int, np.int64) or len(args) != 1 or set(kwargs) - {"dtype"}:
        if all(isinstance(a, Size) or (isinstance(a, Tracer) and a.weak) or not isinstance(a, _Traced)
               for a in (*args, *kwargs.values())):
            raise _sizes_needed("np.arange of a symbolic size in a form other than np.arange(m)")
        raise _fail("np.arange of a symbolic size is supported as np.arange(m) only (m = x.shape[0])")
    (size,) = args
    if isinstance(size, Tracer) and size.weak:
        raise _sizes_needed("np.arange of a value computed from sizes")
    if not isinstance(size, Size):
        raise _fail("np.arange of a traced value: its value is unknown while tracing; np.arange(m) takes a size "
                    "(m = x.shape[0])")
    return Tracer(size.graph.apply(Op.ARANGE, size=size.dim))


class _ArangePatch:
    """``numpy.arange`` is replaced by :func:`_arange_wrapper` while any trace runs (construction.constructing)."""

    original = np.arange


def _arange_wrapper(*args: Any, **kwargs: Any) -> Any:
    if any(isinstance(a, _Traced) for a in (*args, *kwargs.values())):
        return _np_arange(*args, **kwargs)
    return _ArangePatch.original(*args, **kwargs)


_FUNCTIONS.update({
    np.reshape: _np_reshape,
    np.concatenate: _np_concatenate,
    np.stack: _np_stack,
    np.expand_dims: _np_expand_dims,
})


# ---------------------------------------------------------------------------
# the entry points


def function_name(fn: Callable[..., Any]) -> str:
    """The function's name as an identifier: ``<lambda>`` -> ``lambda_``, a partial -> its function's name."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str):
        name = type(fn).__name__
    return _identifier(name)


def _identifier(text: str) -> str:
    text = re.sub(r"\W", "_", text.replace("<", "").replace(">", ""))
    if not text:
        return "f"
    if text[0].isdigit():
        text = "_" + text
    return text + "_" if keyword.iskeyword(text) else text


def signature_names(fn: Callable[..., Any]) -> list[str]:
    """The names of the parameters that tracing passes positionally, in signature order.

    A bound method's ``self`` is not among them. ``*args``, ``**kwargs`` and
    keyword-only parameters without a default are refused: tracing needs one
    named, typed input per parameter. A keyword-only parameter *with* a
    default (e.g. the ``b=2`` bound by ``functools.partial(f, b=2)``) keeps
    its default and is not traced. Positional parameters with defaults are
    traced like the others.
    """
    shown = function_name(fn)
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError) as exc:
        raise TraceError(f"cannot read the parameters of {shown}: {exc}") from None
    names: list[str] = []
    for p in parameters:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            raise TraceError(f"{shown}(*{p.name}) cannot be traced: diffc needs one named parameter per input")
        elif p.kind is p.VAR_KEYWORD:
            raise TraceError(f"{shown}(**{p.name}) cannot be traced: diffc needs one named parameter per input")
        elif p.default is p.empty:
            raise TraceError(f"{shown}(*, {p.name}) cannot be traced: a keyword-only parameter without a "
                             "default cannot be passed positionally; make it positional or give it a default")
    return names


_TYPE_HEADS = frozenset(d.value for d in DType) | {"float64", "float32", "int64", "int32"}


def annotation_types(fn: Callable[..., Any]) -> dict[str, str]:
    """Parameter annotations that are type strings (``x: "f64[n]"``), by parameter name.

    Other annotations (``np.ndarray``, ``float`` objects, or ``"float"`` under
    ``from __future__ import annotations``) are ignored, so that the result
    does not depend on that import.
    """
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    out: dict[str, str] = {}
    for p in parameters:
        text = p.annotation
        if not isinstance(text, str) or text.split("[", 1)[0].strip() not in _TYPE_HEADS:
            continue
        try:
            parse_type(text)
        except ValueError:
            continue
        out[p.name] = text
    return out


def _output_node(graph: Graph, value: Any, label: str) -> Node:
    """A returned value as a node: a tracer, a size, or a constant."""
    if isinstance(value, _Traced):
        if value.graph is not graph:
            raise TraceError(f"{label}: the function returned a traced value of another traced function")
        return value._tracer().node if isinstance(value, Size) else value.node
    if isinstance(value, bool):
        return graph.const(value, DType.BOOL)
    if isinstance(value, int):
        return graph.const(value, DType.I64)
    if isinstance(value, float):
        return graph.const(value, DType.F64)
    if isinstance(value, (np.ndarray, np.number, np.bool_)):
        array = np.asarray(value)
        try:
            return graph.const(array, DType.from_numpy(array.dtype))
        except UnsupportedError as exc:
            raise TraceError(f"{label}: {exc}") from None
    if value is None:
        raise TraceError(f"{label}: the function returned None (is a `return` missing?)")
    if isinstance(value, _indexing.MaskedSelection):
        raise value.refuse(f"{label}: returning x[mask]")
    if hasattr(type(value), "_diffc_refuse"):  # a per-iteration value of a loop (diffc/frontends/control.py)
        raise value._diffc_refuse(label)
    raise TraceError(f"{label}: cannot return a value of type {type(value).__name__} from a traced function; "
                     "return arrays, numbers, or a tuple or dict of them")


def _outputs(graph: Graph, result: Any, fname: str) -> tuple[list[Node], list[str]]:
    if isinstance(result, dict):
        names = list(result)
        for key in names:
            if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
                raise TraceError(f"{fname} returned a dict with key {key!r}: output names must be identifiers")
        values = list(result.values())
    elif isinstance(result, (tuple, list)):
        values = list(result)
        names = [f"out{i}" for i in range(len(values))]
    else:
        values, names = [result], ["out"]
    if not values:
        raise TraceError(f"{fname} returned nothing to differentiate (an empty tuple)")
    nodes = [_output_node(graph, v, f"{fname}, output {name}") for v, name in zip(values, names, strict=True)]
    return nodes, names


def trace(fn: Callable[..., Any], params: Sequence[tuple[str, DType, Shape]], name: str | None = None,
          arguments: Callable[[list[Tracer]], Sequence[Any]] | None = None) -> Program:
    """Call ``fn`` on one tracer per parameter and return the recorded :class:`Program`.

    ``params`` gives each parameter's name, dtype and shape in signature order
    (api.py works them out). A returned tracer is the output ``out``; a tuple
    (even of one value) gives ``out0``, ``out1``, ...; a dict names its outputs by its keys; a
    number becomes a constant output. ``arguments`` builds the user's arguments
    from the tracers (diffc.pytree.Arguments: trees, defaulted constants);
    without it each tracer is one argument.
    """
    graph = Graph()
    inputs: list[Node] = []
    for pname, dtype, shape in params:
        if any(n.attr("name") == pname for n in inputs):
            raise TraceError(f"parameter {pname!r} appears twice")
        dtype = DType.parse(dtype) if isinstance(dtype, str) else dtype
        inputs.append(graph.input(pname, dtype, tuple(shape)))
    from diffc.frontends.control import rewrite  # loops and ifs as written (it builds on this module)

    # leaves of a tree argument (params_0_0) take the name the function unpacks them to ((W1, b1), ... = params)
    leaves = {node for node in inputs if node.attr("name") not in _parameter_names(fn)} if arguments else set()
    fn = rewrite(fn)
    with constructing(), local_names(fn, functools.partial(_bind_name, graph, leaves)):
        tracers = [Tracer(node) for node in inputs]
        result = fn(*(arguments(tracers) if arguments is not None else tracers))
    program_name = _identifier(name) if name else function_name(fn)
    outputs, names = _outputs(graph, result, program_name)
    return Program(graph, inputs, outputs, names, program_name)


def _parameter_names(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(signature_names(fn))
    except (TraceError, TypeError, ValueError):
        return set()


def _bind_name(graph: Graph, leaves: set[Node], name: str, value: Any) -> None:
    """A local of the user's function names its traced value (``z``) or its size (``m, n = X.shape``).

    An input keeps its parameter's name (``y = x`` does not rename ``x``), except a leaf of a tree
    argument: ``(W1, b1), (W2, b2) = params`` names the leaf ``params_0_0`` ``W1``, once.
    """
    if name.startswith("_dc_"):  # diffc/frontends/control.py's temporaries
        return
    value = value.data if getattr(type(value), "_diffc_defer", False) else value  # a loop's value: its tracer
    if isinstance(value, Tracer) and value.graph is graph and value.node in leaves:
        leaves.discard(value.node)
        graph.names[value.node] = name
    elif isinstance(value, Tracer) and value.graph is graph and value.node.op not in (Op.INPUT, Op.CONST, Op.DIM):
        graph.names.setdefault(value.node, name)
    elif isinstance(value, Size) and value.graph is graph and isinstance(value.dim, Sym) and value.dim.name:
        graph.size_labels.setdefault(value.dim.name, name)


# handler modules that build on the tracer above: array construction, more NumPy functions, np.linalg
from diffc.frontends.construction import constructing, register, sequence_operand  # noqa: E402

register(_FUNCTIONS)

from diffc.frontends import (  # noqa: E402 - NumPy's own formulas over traced calls
    logic,
    numerics,
    numpy_functions,  # noqa: E402, F401 - it registers itself in the tables above
    statistics,
)

for _module in (logic, numerics, statistics):
    _FUNCTIONS.update(_module.FUNCTIONS)
from diffc.frontends.linalg import FUNCTIONS as _LINALG  # noqa: E402

_FUNCTIONS.update(_LINALG)

from diffc.frontends import indexing as _indexing  # noqa: E402  (it builds on the tracer; registers np.take)
from diffc.frontends import special as _special  # noqa: E402, F401 - scipy.special's functions
