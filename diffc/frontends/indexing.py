"""Indexing traced arrays: basic indices, integer and index-array indices on any axis, boolean masks, assignment.

What each form records:

- ints, slices, ``None`` and ``...``: a SLICE (``diffc.ir.basic_index``), a view;
- an index array, constant or traced (``x[idx]``, ``x[[0, 2]]``, ``X[:, idx]``), or a
  0-d traced integer (``X[i]`` for ``i`` from the data): a TAKE along that axis,
  whose adjoint adds back with repeats (``np.add.at``). The entries are data:
  the generated code checks them (NumPy's ``IndexError``; a negative entry
  counts from the end), and never reads outside the array. A constant index is
  checked now when the axis has a concrete size. With one index array and ints
  separated by a slice (``X[0, :, idx]``), the array's axes come first, as NumPy
  puts them;
- ``x[np.arange(m), idx]``: the row gather (one entry per row), as before;
- a boolean mask: ``x[mask]`` has as many entries as the mask has true ones, a
  size known only at run time, so it is kept as a :class:`MaskedSelection`
  whose sum and mean are recorded (``where`` + sum, divided by the count);
  anything else done with it is refused with a message naming the form;
- ``x[key] = v``: traced values are immutable, so the tracer is rebound to a
  new value, ``where(positions, v, x)`` (a mask, a basic index, or one index
  array with a number ``v``). An argument is not written back to the caller's
  array. Assigning into a view (a slice, a transpose, a reshape) is refused:
  NumPy would write through to the array it views.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from diffc.errors import DiffcError, IndexRangeError, IndexTypeError, ShapeError, TraceError, UnsupportedError
from diffc.frontends.trace import (
    _FUNCTIONS,
    _UNSET,
    Size,
    Tracer,
    _apply,
    _elementwise,
    _fail,
    _np_where,
    _reduce,
    _reject_kwargs,
    _reshape,
    _traced,
    _user_location,
)
from diffc.ir import DType, Node, Op, basic_index, broadcast_shapes, type_text

__all__ = ["MaskedSelection", "getitem", "setitem"]



class _View(Tracer):
    """A basic index of another traced array: NumPy's view, which an assignment would write through."""

    __slots__ = ()


class _Owned(Tracer):
    """A copy (``x.copy()``, ``np.copy(x)``): its own array, which an assignment may change."""

    __slots__ = ()


_VIEW_OPS = frozenset({Op.SLICE, Op.TRANSPOSE, Op.RESHAPE, Op.BROADCAST})


def np_copy(a: Any, order: Any = "K", subok: Any = False) -> Tracer:
    """``np.copy(x)`` / ``x.copy()``: the same value, as an array of its own (assignable even if x is a view)."""
    return _Owned(_traced(a, "np.copy").node)


# ---------------------------------------------------------------------------
# the items of a key


def _index_error(exc: Exception, what: str) -> Exception:
    """A refusal of diffc.ir.basic_index, with the user's line."""
    if isinstance(exc, ShapeError):
        return ShapeError(f"{exc}{_user_location()}")
    return _fail(str(exc))


def _static_key(key: Any) -> Any:
    """Sizes (``x.shape[0] - 1``) as their Syms, in slice bounds too."""
    if isinstance(key, Size):
        return key.dim
    if isinstance(key, slice):
        return slice(*(_static_key(k) for k in (key.start, key.stop, key.step)))
    return key


def _is_mask(key: Any) -> bool:
    if isinstance(key, Tracer):
        return key.node.dtype is DType.BOOL
    return isinstance(key, (list, np.ndarray)) and np.ndim(key) > 0 and np.asarray(key).dtype == bool


def _is_int(key: Any) -> bool:
    return isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))


_NOT_AN_INDEX = ("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or boolean "
                 "arrays are valid indices")


def _index_node(x: Tracer, key: Any, what: str) -> Node | None:
    """An index array or a traced integer as an integer node; ``None`` for a basic item (int, slice, None, ...)."""
    if isinstance(key, Tracer):
        if not key.node.dtype.is_float:
            return key.node
        raise _fail(f"{what}: a {type_text(key.node.dtype, key.node.shape)} value as an index: {_NOT_AN_INDEX} "
                    "(declare integer labels as i64, e.g. 'i64[m]')", IndexTypeError)
    if isinstance(key, (float, np.floating)):
        raise _fail(f"{what}: the float {key!r} as an index: {_NOT_AN_INDEX}", IndexTypeError)
    if not isinstance(key, (list, np.ndarray)) or np.ndim(key) == 0:
        return None
    try:
        array = np.asarray(key)
    except TraceError:
        raise _fail(f"{what}: a list holding traced values as an index cannot be traced; use one traced index "
                    "array (i64[k]) or np.stack of the traced indices") from None
    if array.size == 0 and array.dtype.kind == "f":  # x[[]]: NumPy reads an empty list as no index at all
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise _fail(f"{what}: an index array of {array.dtype}: {_NOT_AN_INDEX}", IndexTypeError)
    return x.graph.const(array.astype(np.int64), DType.I64)


def _check_constant(x: Tracer, index: Node, axis: int, what: str) -> None:
    """A constant index on an axis of concrete size is checked now (NumPy's IndexError), others when run."""
    size = x.graph.resolve(x.node.shape[axis])
    if index.op is not Op.CONST or not isinstance(size, int) or index.value.size == 0:
        return
    bad = index.value[(index.value < -size) | (index.value >= size)]
    if bad.size:
        raise _fail(f"{what}: index {int(bad.flat[0])} is out of bounds for axis {axis} with size {size}",
                    IndexRangeError)


def _expand(items: tuple[Any, ...], ndim: int, what: str) -> list[Any]:
    """The key with its ellipsis expanded and whole-axis slices added: one item per axis, plus new axes."""
    out = list(items)
    if sum(1 for k in out if k is Ellipsis) > 1:
        raise ShapeError(f"{what}: an index can only have a single ellipsis ('...'){_user_location()}")
    used = sum(1 for k in out if k is not None and k is not Ellipsis)
    if used > ndim:
        raise ShapeError(f"{what}: too many indices ({used}) for an array of rank {ndim}{_user_location()}")
    if Ellipsis in out:
        at = out.index(Ellipsis)
        out[at:at + 1] = [slice(None)] * (ndim - used)
    else:
        out += [slice(None)] * (ndim - used)
    return out


# ---------------------------------------------------------------------------
# x[key]


def getitem(x: Tracer, key: Any) -> Any:
    """``x[key]`` for every form in the module docstring."""
    what = "x[...]"
    items = key if isinstance(key, tuple) else (key,)
    if x.node.ndim == 0:
        raise _fail("indexing a traced scalar (x[...]): it has no axes")
    if any(_is_mask(k) for k in items):
        return MaskedSelection(x, _mask_of(x, items, what))
    dynamic = [_index_node(x, k, what) for k in items]
    if all(d is None for d in dynamic):
        try:
            node = basic_index(x.node, tuple(_static_key(k) for k in items), what)
        except (ShapeError, UnsupportedError) as exc:
            raise _index_error(exc, what) from None
        return _View(node)
    if sum(1 for d in dynamic if d is not None and d.ndim) > 1:
        return _gather(x, items, what)
    return Tracer(_take_items(x, items, what))


def _take_items(x: Tracer, items: tuple[Any, ...], what: str) -> Node:
    """One TAKE per index array or traced integer (the last axis first, so earlier axes keep their numbers),
    then the basic rest of the key, then NumPy's placement of the array's axes."""
    graph = x.graph
    expanded = _expand(items, x.node.ndim, what)
    axis_of: dict[int, int] = {}
    dynamic: dict[int, Node] = {}
    axis = 0
    for p, k in enumerate(expanded):
        if k is None:
            continue
        axis_of[p] = axis
        node = _index_node(x, k, what)
        if node is not None:
            _check_constant(x, node, axis, what)
            dynamic[p] = node
        axis += 1
    node = x.node
    for p in sorted(dynamic, reverse=True):
        node = _apply(graph, Op.TAKE, (node, dynamic[p]), what, axis=axis_of[p])
    rest: list[Any] = []
    for p, k in enumerate(expanded):
        rest += [slice(None)] * dynamic[p].ndim if p in dynamic else [_static_key(k)]
    try:
        node = basic_index(node, tuple(rest), what) if node.ndim else node
    except (ShapeError, UnsupportedError) as exc:
        raise _index_error(exc, what) from None
    return _numpy_placement(node, expanded, dynamic)


def _numpy_placement(node: Node, items: list[Any], dynamic: dict[int, Node]) -> Node:
    """With an index array, ints count as array indices too; when a slice or a new axis separates them
    (``X[0, :, idx]``), NumPy puts the array's axes first, where TAKE left them in place."""
    arrays = [p for p, d in dynamic.items() if d.ndim]
    if not arrays:
        return node
    advanced = [p for p, k in enumerate(items) if p in dynamic or _is_int(k)]
    if advanced == list(range(advanced[0], advanced[-1] + 1)):
        return node
    (p0,) = arrays
    start = sum(1 for p, k in enumerate(items[:p0]) if p not in dynamic and not _is_int(k))
    width = dynamic[p0].ndim
    if start == 0:
        return node
    axes = tuple(range(start, start + width)) + tuple(range(start)) + tuple(range(start + width, node.ndim))
    return node.graph.apply(Op.TRANSPOSE, node, axes=axes)


_GATHER_FORM = ("two index arrays are supported in one form, x[np.arange(m), idx]: entry idx[i] of row i "
                "of a matrix x with m rows (the cross-entropy of integer labels); index one axis at a time "
                "(X[rows][:, cols]) otherwise")


def _gather(x: Tracer, items: tuple[Any, ...], what: str) -> Tracer:
    graph = x.graph
    if len(items) != 2 or x.node.ndim != 2:
        raise _fail(f"{what}: {_GATHER_FORM}")
    rows_key, cols_key = items
    rows = x.node.shape[0]
    if isinstance(rows_key, Tracer):
        node = rows_key.node
        if node.op is not Op.ARANGE:
            raise _fail(f"{what}: the row index must be np.arange(m); {_GATHER_FORM}")
        if graph.resolve(node.attr("size")) != graph.resolve(rows):
            try:
                graph.unify(node.attr("size"), rows, (node.shape, x.node.shape), what="np.arange(m) and x's rows")
            except ShapeError as exc:
                raise ShapeError(f"{what}: {exc}{_user_location()}") from None
    elif not (isinstance(rows, int) and np.array_equal(np.asarray(rows_key), np.arange(rows))):
        raise _fail(f"{what}: the row index must be np.arange(m) with m = x.shape[0]; {_GATHER_FORM}")
    cols = _index_node(x, cols_key, what)
    if cols is None or cols.ndim != 1:
        raise _fail(f"{what}: the column index must be a vector of integers; {_GATHER_FORM}")
    return Tracer(_apply(graph, Op.GATHER, (x.node, cols), what))


# ---------------------------------------------------------------------------
# boolean masks


def _mask_of(x: Tracer, items: tuple[Any, ...], what: str) -> Node:
    """The mask of ``x[mask]`` / ``x[mask, ...]`` / ``X[mask, :]``, shaped to broadcast against x."""
    mask, rest = items[0], items[1:]
    if not _is_mask(mask) or any(not (k is Ellipsis or k == slice(None)) for k in rest):
        raise _fail(f"{what}: a boolean mask is supported as the whole key (x[mask], X[mask, :]); other mixes of "
                    "masks and indices are not")
    graph = x.graph
    node = mask.node if isinstance(mask, Tracer) else graph.const(np.asarray(mask), DType.BOOL)
    shape = x.node.shape
    if node.ndim > len(shape):
        raise _fail(f"{what}: a mask of rank {node.ndim} for an array of rank {len(shape)}", IndexRangeError)
    for a, b in zip(node.shape, shape, strict=False):
        if graph.resolve(a) != graph.resolve(b):
            if isinstance(graph.resolve(a), int) and isinstance(graph.resolve(b), int):
                raise _fail(f"{what}: boolean index did not match indexed array: the mask is "
                            f"{type_text(node.dtype, node.shape)}, the array {type_text(x.node.dtype, shape)}",
                            IndexRangeError)
            graph.unify(a, b, (node.shape, shape), what="x[mask]")
    trailing = len(shape) - node.ndim
    if trailing:
        node = basic_index(node, (Ellipsis,) + (None,) * trailing, what)
    return node


_MASK_FORMS = ("x[mask] has as many entries as the mask has true ones, a size known only at run time; diffc "
               "records elementwise math on it (np.exp(x[mask]), x[mask] * 2, x[mask] - y[mask]), its np.sum and "
               "np.mean (also as methods, axis 0 or None) and x[mask] = v. For anything else, use "
               "np.where(mask, f(x), 0) and a sum")


class MaskedSelection:
    """``x[mask]`` while tracing: values of x's full shape, of which the mask's true entries count.

    Elementwise math works on all of them (the reverse pass guards the entries
    that are not selected, so a NaN there never reaches a gradient); a sum or a
    mean selects with ``where`` first. The selection itself, whose size is
    data, never becomes a traced array.
    """

    __array_priority__ = 1000
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, values: Tracer, mask: Node) -> None:
        self.values = values  # x's shape
        self.mask = mask      # bool, broadcasts against values (new axes after the ones it covers)

    def refuse(self, use: str) -> DiffcError:
        return _fail(f"{use}: a boolean mask selection x[mask] cannot be used this way: {_MASK_FORMS}")

    def _operand(self, other: Any, what: str) -> Any:
        """Another selection by the same mask, or a value that broadcasts against the unmasked axes."""
        if isinstance(other, MaskedSelection):
            if other.mask is not self.mask:
                raise self.refuse(f"{what} of selections by two different masks")
            return other.values
        rank = other.node.ndim if isinstance(other, Tracer) else np.ndim(other)
        if rank > self.values.node.ndim - _masked_rank(self.mask):
            raise self.refuse(f"{what} with an array that does not broadcast against the unmasked axes")
        return other

    def _map(self, fn: Any, *others: Any, what: str) -> MaskedSelection:
        return MaskedSelection(fn(self.values, *(self._operand(o, what) for o in others)), self.mask)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        what = f"np.{ufunc.__name__} of x[mask]"
        if method != "__call__" or kwargs:
            raise self.refuse(what)
        values = [self._operand(v, what) if v is not self else self.values for v in inputs]
        return MaskedSelection(ufunc(*values), self.mask)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        # by name: while a trace runs, np.sum is construction.py's wrapper, not the function NumPy dispatches
        name = getattr(func, "__name__", "") if getattr(func, "__module__", "").startswith("numpy") else ""
        method = {"sum": "sum", "mean": "mean"}.get(name)
        if method is None or not args or args[0] is not self:
            raise self.refuse(f"np.{getattr(func, '__name__', func)}(x[mask])")
        return getattr(self, method)(*args[1:], **kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise self.refuse("np.asarray(x[mask])")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self.refuse(f"x[mask].{name}")

    def __bool__(self) -> bool:
        raise self.refuse("bool(x[mask])")

    def __len__(self) -> int:
        raise self.refuse("len(x[mask])")

    def __iter__(self) -> Any:
        raise self.refuse("iterating over x[mask]")

    def __getitem__(self, key: Any) -> Any:
        raise self.refuse("x[mask][...]")

    def _axes(self, axis: Any, keepdims: Any, what: str) -> tuple[int, ...]:
        """x's axes that ``axis`` of ``x[mask]`` reduces: it must reduce axis 0, the selected entries."""
        if keepdims:
            raise self.refuse(f"{what}(..., keepdims=True)")
        ndim = self.values.node.ndim
        k = _masked_rank(self.mask)
        rank = 1 + ndim - k
        if axis is None:
            return tuple(range(ndim))
        picked = (axis,) if _is_int(axis) else tuple(axis)
        normal = {a % rank if -rank <= a < rank else rank for a in picked}
        if rank in normal or 0 not in normal:
            raise self.refuse(f"{what}(..., axis={axis!r}) (it keeps the axis of the selected entries)")
        return tuple(range(k)) + tuple(sorted(a - 1 + k for a in normal if a))

    def _selected(self) -> Tracer:
        return _np_where(Tracer(self.mask), self.values, 0)

    def sum(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
            initial: Any = _UNSET, where: Any = _UNSET) -> Tracer:
        _reject_kwargs("np.sum(x[mask])", dtype=dtype, out=out, initial=initial, where=where)
        return _reduce(Op.SUM, self._selected(), self._axes(axis, keepdims, "np.sum"), False, "np.sum(x[mask])")

    def mean(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
             *, where: Any = _UNSET) -> Tracer:
        """The sum over the count of selected entries: NaN when none is selected, as NumPy's (with its warning)."""
        what = "np.mean(x[mask])"
        _reject_kwargs(what, dtype=dtype, out=out, where=where)
        axes = self._axes(axis, keepdims, "np.mean")
        total = _reduce(Op.SUM, self._selected(), axes, False, what)
        k = _masked_rank(self.mask)
        count = _reduce(Op.SUM, Tracer(self.mask), None, False, what)
        for a in axes:
            if a >= k:
                count = _elementwise(Op.MUL, (count, self.values.shape[a]), what)
        dtype_ = total.node.dtype if total.node.dtype.is_float else DType.F64
        return _elementwise(Op.DIV, (total, count.astype(dtype_.numpy)), what)


def _binary(fn: Any, spelling: str) -> tuple[Any, Any]:
    def forward(self: MaskedSelection, other: Any) -> MaskedSelection:
        return self._map(fn, other, what=spelling)

    def reflected(self: MaskedSelection, other: Any) -> MaskedSelection:
        return self._map(lambda a, b: fn(b, a), other, what=spelling)

    return forward, reflected


for _name, _fn in {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
                   "pow": operator.pow, "and": operator.and_, "or": operator.or_, "xor": operator.xor}.items():
    _forward, _reflected = _binary(_fn, f"x[mask] {_name} y")
    setattr(MaskedSelection, f"__{_name}__", _forward)
    setattr(MaskedSelection, f"__r{_name}__", _reflected)
for _name, _fn in {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
                   "eq": operator.eq, "ne": operator.ne}.items():
    setattr(MaskedSelection, f"__{_name}__", _binary(_fn, f"x[mask] {_name} y")[0])
for _name, _fn in {"neg": operator.neg, "pos": operator.pos, "abs": operator.abs, "invert": operator.invert}.items():
    setattr(MaskedSelection, f"__{_name}__", lambda self, fn=_fn, name=_name: self._map(fn, what=f"{name}(x[mask])"))


# ---------------------------------------------------------------------------
# x[key] = v


def setitem(x: Tracer, key: Any, value: Any) -> None:
    """``x[key] = value`` as a new traced value bound to the same tracer (see the module docstring)."""
    what = "x[...] = v"
    if not isinstance(x, _Owned) and (isinstance(x, _View) or x.node.op in _VIEW_OPS):
        raise _fail(f"{what}: assigning into a view (a slice, transpose or reshape of another array) cannot be "
                    "traced: NumPy would change the array it views as well; assign into that array or a copy "
                    "(y = x[1:].copy()), or use np.where(mask, new, x)")
    items = key if isinstance(key, tuple) else (key,)
    graph = x.graph
    if any(_is_mask(k) for k in items):
        mask = _mask_of(x, items, what)
        if isinstance(value, MaskedSelection):  # x[mask] += 1, x[mask] = y[mask]: entry by entry
            if value.mask is not mask:
                raise value.refuse(f"{what} from a selection by another mask")
            v = _cast_to(value.values, x, what)
        else:
            v = _trailing(_cast_to(value, x, what), x, _masked_rank(mask), what)
        x.node = _np_where(Tracer(mask), v, x).node
        return
    v = _cast_to(value, x, what)
    dynamic = [(p, _index_node(x, k, what)) for p, k in enumerate(items)]
    found = [(p, d) for p, d in dynamic if d is not None]
    if not found:
        x.node = _assign_basic(x, items, v, what)
        return
    (p, index), rest = found[0], [k for q, k in enumerate(items) if q != found[0][0]]
    if len(found) > 1 or any(k != slice(None) for k in rest) or Ellipsis in items:
        raise _fail(f"{what}: assigning through an index array is supported with one index and whole slices "
                    "(x[idx] = v, X[:, idx] = v, X[i] = row); use np.where for other forms")
    _check_constant(x, index, p, what)
    if index.ndim and v.node.ndim:
        raise _fail(f"{what}: assigning an array through an index array cannot be traced exactly (NumPy keeps "
                    "the last of repeated indices); assign a number, or build the result with np.where")
    positions = Tracer(_apply(graph, Op.SCATTER_ADD, (_ones(x, _taken_shape(x, p, index)), index), what,
                              axis=p, size=x.node.shape[p]))
    if index.ndim == 0 and v.node.ndim:  # one place: the value may be a row of the rest of x's axes
        taken = _taken_shape(x, p, index)
        v = Tracer(_apply(graph, Op.SCATTER_ADD, (_broadcast(v, taken, what), index), what, axis=p,
                          size=x.node.shape[p]))
    x.node = _np_where(positions > 0, v, x).node


def _masked_rank(mask: Node) -> int:
    """The number of leading axes of x a mask covers (:func:`_mask_of` adds new axes for the rest)."""
    node = mask
    while node.op is Op.SLICE and node.attr("index").items[-1] == ("new",):
        node = node.inputs[0]
    return node.ndim


def _cast_to(value: Any, x: Tracer, what: str) -> Tracer:
    """The assigned value as a tracer of x's dtype (NumPy casts on assignment)."""
    graph = x.graph
    if isinstance(value, MaskedSelection):
        raise value.refuse(f"{what} with v = y[mask] under another index")
    if isinstance(value, Size):
        value = value._tracer()
    if not isinstance(value, Tracer):
        try:
            array = np.asarray(value)
        except TraceError:
            raise _fail(f"{what}: a list holding traced values cannot be assigned; use np.stack") from None
        if array.dtype.kind not in "biuf":
            raise _fail(f"{what}: cannot assign a value of type {type(value).__name__}")
        return Tracer(graph.const(array.astype(x.node.dtype.numpy), x.node.dtype))
    if value.graph is not graph:
        raise _fail(f"{what}: a traced value of another traced function was assigned here")
    if value.node.dtype is x.node.dtype:
        return value
    return value.astype(x.node.dtype.numpy)


def _trailing(v: Tracer, x: Tracer, k: int, what: str) -> Tracer:
    """``x[mask] = v``: a number, or one value per entry of the axes the mask leaves (a row for X[mask] = row)."""
    if v.node.ndim == 0:
        return v
    rest = x.node.shape[k:]
    if v.node.ndim > len(rest):
        raise _fail(f"{what}: x[mask] = v needs a number or an array of the unmasked axes' shape "
                    f"{type_text(x.node.dtype, rest)}, got {type_text(v.node.dtype, v.node.shape)} (the count of "
                    "true entries is known only at run time)")
    return v


def _taken_shape(x: Tracer, axis: int, index: Node) -> tuple[Any, ...]:
    shape = x.node.shape
    return tuple(shape[:axis]) + tuple(index.shape) + tuple(shape[axis + 1:])


def _ones(x: Tracer, shape: tuple[Any, ...]) -> Node:
    return x.graph.const(1.0, x.node.dtype if x.node.dtype.is_float else DType.F64, shape)


def _broadcast(v: Tracer, shape: tuple[Any, ...], what: str) -> Node:
    if tuple(v.node.shape) == tuple(shape):
        return v.node
    return _apply(v.graph, Op.BROADCAST, (v.node,), what, shape=shape)


def _assign_basic(x: Tracer, items: tuple[Any, ...], v: Tracer, what: str) -> Node:
    """``x[1:3] = v``: v written into zeros at the index, chosen where a written mask of the same index is true."""
    graph = x.graph
    try:
        part = basic_index(x.node, tuple(_static_key(k) for k in items), what)
    except (ShapeError, UnsupportedError) as exc:
        raise _index_error(exc, what) from None
    if part is x.node:
        return _broadcast(v, x.node.shape, what)
    index, shape = part.attr("index"), x.node.shape
    values = _broadcast(v, part.shape, what)
    written = _apply(graph, Op.UNSLICE, (values,), what, index=index, shape=shape)
    marks = _apply(graph, Op.UNSLICE, (graph.const(1.0, DType.F64, part.shape),), what, index=index, shape=shape)
    return _np_where(Tracer(marks) > 0, Tracer(written), x).node


# ---------------------------------------------------------------------------
# np.take and x.take


def np_take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: Any = "raise") -> Tracer:
    """``np.take(a, indices, axis)``: axis None reads the flattened array; only mode='raise' (NumPy's default).

    Convention: an entry picked several times gets the sum of their gradients (np.add.at); an index out of
    range raises IndexError when the function runs (a negative one counts from the end).
    """
    what = "np.take"
    _reject_kwargs(what, out=out)
    if mode != "raise":
        raise _fail(f"{what}(..., mode={mode!r}) is not supported by diffc's tracer: only mode='raise'")
    if isinstance(a, Tracer):
        x = a
    elif isinstance(indices, Tracer):  # a table of constants read at traced indices
        x = Tracer(indices.graph.const(np.asarray(a), DType.from_numpy(np.asarray(a).dtype)))
    else:
        x = _traced(a, what)
    if axis is None:
        x = _reshape(x, -1, "C", what) if x.node.ndim != 1 else x
        axis = 0
    if not _is_int(axis):
        raise _fail(f"{what}: axis must be an int, got {axis!r}")
    index = _index_node(x, indices, what)
    if index is None:
        if not _is_int(indices):
            raise _fail(f"{what}: indices {indices!r}: {_NOT_AN_INDEX}", IndexTypeError)
        index = x.graph.const(int(indices), DType.I64)
    ndim = x.node.ndim
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{what}: axis {axis} is out of range for an array of rank {ndim}{_user_location()}")
    _check_constant(x, index, axis % ndim, what)
    return Tracer(_apply(x.graph, Op.TAKE, (x.node, index), what, axis=axis % ndim))


def take_method(self: Tracer, indices: Any, axis: Any = None, out: Any = None, mode: Any = "raise") -> Tracer:
    return np_take(self, indices, axis, out, mode)


# ---------------------------------------------------------------------------
# np.take_along_axis, arg-extremes, sorts


def _flat_or_axis(x: Tracer, axis: Any, what: str) -> tuple[Tracer, int]:
    """axis None means the flattened array, as NumPy's take_along_axis, argsort and sort read it."""
    if axis is None:
        return (_reshape(x, -1, "C", what) if x.node.ndim != 1 else x), 0
    if not _is_int(axis):
        raise _fail(f"{what}: axis must be an int or None, got {axis!r}")
    ndim = x.node.ndim
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{what}: axis {axis} is out of range for an array of rank {ndim}{_user_location()}")
    return x, int(axis) % ndim


def np_take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Tracer:
    """``np.take_along_axis``: the index has the array's rank; both broadcast off the axis.

    Convention: an entry picked several times gets the sum of their gradients; an index out of range raises
    IndexError when the function runs.
    """
    what = "np.take_along_axis"
    x = _traced(arr, what)
    if axis is None:
        x = _reshape(x, -1, "C", what) if x.node.ndim != 1 else x
    index = _index_node(x, indices, what)
    if index is None:
        raise _fail(f"{what}: indices must be an integer array of the array's rank", IndexTypeError)
    if axis is None:
        index = _reshape(Tracer(index), -1, "C", what).node if index.ndim != 1 else index
        axis = 0
    x, axis = _flat_or_axis(x, axis, what)
    if index.ndim != x.node.ndim:
        raise _fail(f"{what}: indices need the array's rank {x.node.ndim}, got "
                    f"{type_text(index.dtype, index.shape)}", IndexRangeError)
    graph = x.graph
    shape = list(_off_axis_shape(x.node, index, axis, what))
    x_node = _broadcast(x, tuple(shape[:axis] + [x.node.shape[axis]] + shape[axis + 1:]), what)
    index = _broadcast(Tracer(index), tuple(shape[:axis] + [index.shape[axis]] + shape[axis + 1:]), what)
    _check_constant(x, index, axis, what)
    return Tracer(_apply(graph, Op.TAKE_ALONG, (x_node, index), what, axis=axis))


def _off_axis_shape(x: Node, index: Node, axis: int, what: str) -> tuple[Any, ...]:
    a = tuple(1 if d == axis else s for d, s in enumerate(x.shape))
    b = tuple(1 if d == axis else s for d, s in enumerate(index.shape))
    try:
        return broadcast_shapes(x.graph, a, b)
    except ShapeError as exc:
        raise ShapeError(f"{what}: {exc}{_user_location()}") from None


def _arg_extreme(op: Op, a: Any, axis: Any, out: Any, keepdims: Any, what: str) -> Tracer:
    _reject_kwargs(what, out=out)
    x = _traced(a, what)
    if axis is not None:
        x, axis = _flat_or_axis(x, axis, what)
    return Tracer(_apply(x.graph, op, (x.node,), what, axis=axis, keepdims=bool(keepdims)))


def np_argmax(a: Any, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Tracer:
    """``np.argmax``: an integer (no gradient), usable as an index; the first maximum, a NaN first of all."""
    return _arg_extreme(Op.ARGMAX, a, axis, out, keepdims, "np.argmax")


def np_argmin(a: Any, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Tracer:
    """``np.argmin``: an integer (no gradient), usable as an index; the first minimum, a NaN first of all."""
    return _arg_extreme(Op.ARGMIN, a, axis, out, keepdims, "np.argmin")


def _sort_kwargs(what: str, kind: Any, order: Any, stable: Any) -> None:
    if order is not None:
        raise _fail(f"{what}(..., order=...) is not supported by diffc's tracer: it sorts structured arrays")
    if stable is False or kind not in (None, "stable", "mergesort", "quicksort", "heapsort"):
        raise _fail(f"{what}: kind={kind!r}, stable={stable!r} is not supported: diffc always sorts stably")


def np_argsort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None) -> Tracer:
    """``np.argsort``: integers (no gradient), a stable sort's permutation, whatever ``kind`` asks (ties keep
    their order; NaNs go last, as in NumPy)."""
    what = "np.argsort"
    _sort_kwargs(what, kind, order, stable)
    x, axis = _flat_or_axis(_traced(a, what), axis, what)
    return Tracer(_apply(x.graph, Op.ARGSORT, (x.node,), what, axis=axis))


def np_sort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None) -> Tracer:
    """``np.sort``: the values in a stable sort's order along the axis.

    Convention: each sorted entry's gradient goes back to the entry it came from (the argsort permutation);
    tied entries keep their order.
    """
    what = "np.sort"
    _sort_kwargs(what, kind, order, stable)
    x, axis = _flat_or_axis(_traced(a, what), axis, what)
    perm = _apply(x.graph, Op.ARGSORT, (x.node,), what, axis=axis)
    return Tracer(_apply(x.graph, Op.TAKE_ALONG, (x.node, perm), what, axis=axis))


def _kth(x: Tracer, kth: Any, axis: int, what: str) -> None:
    """``kth`` as NumPy checks it: ints (or a sequence of them) within the axis, when its size is known."""
    size = x.graph.resolve(x.node.shape[axis]) if x.node.ndim else 1
    for k in np.atleast_1d(np.asarray(kth)).tolist():
        if not _is_int(k):
            raise _fail(f"{what}: kth must be an int or a sequence of ints, got {kth!r}")
        if isinstance(size, int) and not -size <= k < size:
            raise IndexRangeError(f"{what}: kth {k} is out of bounds for an axis of size {size}{_user_location()}")


def np_partition(a: Any, kth: Any, axis: Any = -1, kind: Any = "introselect", order: Any = None) -> Tracer:
    """``np.partition``: the fully sorted array, which is one valid partition for every ``kth``.

    NumPy leaves the order inside each part undefined; diffc's choice is the stable sort, so the entry at
    ``kth`` and the contents of each part are NumPy's. Convention: as np.sort, each entry's gradient goes
    back to the entry it came from.
    """
    what = "np.partition"
    _sort_kwargs(what, None, order, None)
    x, axis = _flat_or_axis(_traced(a, what), axis, what)
    _kth(x, kth, axis, what)
    return np_sort(x, axis)


def np_argpartition(a: Any, kth: Any, axis: Any = -1, kind: Any = "introselect", order: Any = None) -> Tracer:
    """``np.argpartition``: integers (no gradient), the stable sort's permutation (a valid partition's)."""
    what = "np.argpartition"
    _sort_kwargs(what, None, order, None)
    x, axis = _flat_or_axis(_traced(a, what), axis, what)
    _kth(x, kth, axis, what)
    return np_argsort(x, axis)


_FUNCTIONS.update({np.partition: np_partition, np.argpartition: np_argpartition,
                   np.copy: np_copy, np.take: np_take, np.take_along_axis: np_take_along_axis, np.argmax: np_argmax,
                   np.argmin: np_argmin, np.argsort: np_argsort, np.sort: np_sort})
