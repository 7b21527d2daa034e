"""Arrays built from traced values: ``np.array([a, b])``, ``np.hstack``, ``np.r_[...]``, ``max([a, b])``.

NumPy builds an array from a list in C, by asking each element for
``__array__``; no dispatch protocol lets a tracer answer for the list. So,
as :mod:`trace` does for ``np.arange``, the names a user's code reaches for
are replaced while a trace runs (a counter: traces nest; the lock keeps
threads consistent): ``numpy.array``, ``numpy.asarray``,
``numpy.asanyarray``, ``numpy.r_``, ``numpy.c_``, every NumPy function the
tracer records (so ``np.sum([a, b])`` reaches its handler), ``numpy.arange``
(``np.arange(m)`` of a size, trace.py), and Python's ``max``, ``min`` and
``sum``. Each replacement looks for a traced value among its arguments,
lists and tuples included, and calls the original when there is none, so
other threads and untraced code see NumPy and Python unchanged. (``from numpy import array`` binds the original and is
not seen.)

A list or tuple holding traced values becomes a stack of its elements
(nested lists stack again), promoted to one dtype as NumPy would; Python
numbers in it are weak and take the traced values' dtype (a float32 model
stays float32).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from diffc.frontends import trace as _t
from diffc.ir import Op

_Traced, Tracer = _t._Traced, _t.Tracer


def has_traced(value: Any) -> bool:
    """A traced value, or a list or tuple (at any depth) that holds one."""
    if isinstance(value, _Traced):
        return True
    if not isinstance(value, (list, tuple)):
        return False
    stack = list(value)
    while stack:
        item = stack.pop()
        if isinstance(item, _Traced):
            return True
        if isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def sequence_operand(value: list[Any] | tuple[Any, ...], what: str) -> Any:
    """A list or tuple as an operand: a stack of its elements when one is traced, else NumPy's array."""
    if not has_traced(value):
        return _ORIGINAL["asarray"](value)
    if not value:
        raise _t._fail(f"{what}: an empty list cannot hold traced values")
    items = [sequence_operand(v, what) if isinstance(v, (list, tuple)) else v for v in value]
    return _t._np_stack(items, 0)


def _cast(x: Tracer, dtype: Any, what: str) -> Tracer:
    return x if dtype is None else x.astype(np.dtype(dtype))


def _np_array(obj: Any, dtype: Any = None, *, copy: Any = True, order: Any = "K", subok: Any = False,
              ndmin: int = 0, like: Any = None) -> Tracer:
    """``np.array`` of a traced value (itself: tracers are immutable, so a copy is the same value) or a list."""
    what = "np.array"
    x = _cast(_t._traced(obj, what), dtype, what)
    if x.ndim < ndmin:
        x = _t._reshape(x, (1,) * (ndmin - x.ndim) + tuple(x.shape), "C", what)
    return x


def _np_asarray(a: Any, dtype: Any = None, order: Any = None, *, device: Any = None, copy: Any = None,
                like: Any = None) -> Tracer:
    """``np.asarray`` of a traced value is the traced value itself (cast when ``dtype`` differs)."""
    return _cast(_t._traced(a, "np.asarray"), dtype, "np.asarray")


def _at_least(value: Any, ndim: int, what: str) -> Any:
    """``np.atleast_1d`` / ``2d`` of one element of a join: a vector becomes a row (1, n), as NumPy does."""
    if not isinstance(value, (_Traced, list, tuple)):
        return np.atleast_1d(value) if ndim == 1 else np.atleast_2d(value)
    x = _t._traced(value, what)
    if x.ndim >= ndim:
        return x
    return _t._reshape(x, (1,) * (ndim - x.ndim) + tuple(x.shape), "C", what)


def _column(value: Any, what: str) -> Any:
    """One element of ``np.column_stack`` / ``np.c_``: a vector (or number) becomes a column (n, 1)."""
    if not isinstance(value, (_Traced, list, tuple)):
        array = np.asarray(value)
        return array.reshape(-1, 1) if array.ndim < 2 else array
    x = _t._traced(value, what)
    return _t._reshape(x, (*x.shape, 1) if x.ndim == 1 else (1, 1), "C", what) if x.ndim < 2 else x


def _join(arrays: Any, what: str, prepare: Callable[[Any], Any], axis: Callable[[list[Any]], int]) -> Tracer:
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise _t._fail(f"{what} takes a non-empty list or tuple of arrays")
    items = [prepare(a) for a in arrays]
    return _t._np_concatenate(items, axis(items))


def _np_hstack(tup: Any, *, dtype: Any = None, casting: Any = "same_kind") -> Tracer:
    """Vectors joined end to end; anything of higher rank along its second axis (NumPy's rule)."""
    _t._reject_kwargs("np.hstack", dtype=dtype)
    return _join(tup, "np.hstack", lambda a: _at_least(a, 1, "np.hstack"),
                 lambda items: 0 if all(_t._ndim(i) == 1 for i in items) else 1)


def _np_vstack(tup: Any, *, dtype: Any = None, casting: Any = "same_kind") -> Tracer:
    """Rows stacked: vectors become rows (1, n) first."""
    _t._reject_kwargs("np.vstack", dtype=dtype)
    return _join(tup, "np.vstack", lambda a: _at_least(a, 2, "np.vstack"), lambda items: 0)


def _depth(value: Any, what: str) -> Any:
    """One element of ``np.dstack``: a vector (n,) becomes (1, n, 1), a matrix (m, n) becomes (m, n, 1)."""
    if not isinstance(value, (_Traced, list, tuple)):
        return np.atleast_3d(value)
    x = _t._traced(value, what)
    shapes = {0: (1, 1, 1), 1: (1, *x.shape, 1), 2: (*x.shape, 1)}
    return _t._reshape(x, shapes[x.ndim], "C", what) if x.ndim < 3 else x


def _np_dstack(tup: Any) -> Tracer:
    """Arrays stacked along a third axis (NumPy's rule: each made at least 3-D first)."""
    return _join(tup, "np.dstack", lambda a: _depth(a, "np.dstack"), lambda items: 2)


def _np_full(shape: Any, fill_value: Any, dtype: Any = None, order: Any = "C", **kwargs: Any) -> Any:
    """``np.full(shape, v)`` of a traced fill ``v``: ``v`` broadcast to ``shape`` (the gradient sums back);
    an untraced fill is NumPy's own constant."""
    if not (isinstance(fill_value, _Traced) or (isinstance(fill_value, (list, tuple)) and has_traced(fill_value))):
        return _ORIGINAL["full"](shape, fill_value, dtype, order, **kwargs)
    what = "np.full"
    _t._reject_kwargs(what, **{k: v for k, v in kwargs.items() if k != "device"})
    x = _cast(_t._traced(fill_value, what), dtype, what)
    target = tuple(_t._shape_arg(shape, what))
    if x.graph.resolve_shape(target) == x.node.shape:
        return x
    return Tracer(_t._apply(x.graph, Op.BROADCAST, (x.node,), what, shape=target))


def _np_meshgrid(*xi: Any, copy: Any = True, sparse: Any = False, indexing: Any = "xy") -> tuple[Any, ...]:
    """Coordinate arrays: vector k along axis k (the first two swapped for ``indexing='xy'``), broadcast to the
    full grid unless ``sparse``; the gradient of a broadcast vector sums back over the grid."""
    what = "np.meshgrid"
    if indexing not in ("xy", "ij"):
        raise _t._fail(f"{what}: indexing must be 'xy' or 'ij', got {indexing!r}", ValueError)
    vectors = [np.ravel(x) for x in xi]
    axes = list(range(len(vectors)))
    if indexing == "xy" and len(vectors) > 1:
        axes[0], axes[1] = 1, 0
    grids = []
    for vector, axis in zip(vectors, axes, strict=True):
        shape = [1] * len(vectors)
        shape[axis] = -1
        grids.append(np.reshape(vector, tuple(shape)))
    if sparse:
        return tuple(grids)
    full = [None] * len(vectors)
    for vector, axis in zip(vectors, axes, strict=True):
        full[axis] = vector.shape[0]
    return tuple(np.broadcast_to(g, tuple(full)) for g in grids)


def _np_column_stack(tup: Any) -> Tracer:
    """Vectors as the columns of a matrix; matrices join along their columns."""
    return _join(tup, "np.column_stack", lambda a: _column(a, "np.column_stack"), lambda items: 1)


class _Concatenator:
    """``np.r_`` / ``np.c_`` of traced values; slices and directives are NumPy's (on untraced items only)."""

    def __init__(self, original: Any, columns: bool) -> None:
        self.original = original
        self.columns = columns

    def __getitem__(self, key: Any) -> Any:
        items = key if isinstance(key, tuple) else (key,)
        if not has_traced(list(items)):
            return self.original[key]
        what = "np.c_" if self.columns else "np.r_"
        if any(isinstance(i, (str, slice)) for i in items):
            raise _t._fail(f"{what}[...] with slices or string directives and traced values is not supported by "
                           "diffc's tracer; build the constant part with np.arange and join it with np.concatenate")
        if self.columns:
            return _np_column_stack(list(items))
        return _t._np_concatenate([_at_least(i, 1, what) for i in items], 0)

    def __len__(self) -> int:
        return 0


# -- Python's builtins on traced values ---------------------------------------------

def _fold(op: Op, items: list[Any], what: str) -> Any:
    """``max(a, b, c)``: elementwise max (min) from the left; a tie keeps the earlier value, as Python's does.

    Convention: at a tie the first of the tied arguments takes the whole gradient (np.maximum's rule).
    """
    result = items[0]
    for item in items[1:]:
        result = _t._elementwise(op, (result, item), what)
    return result


def _extreme(name: str, op: Op, reduce: Callable[..., Any]) -> Callable[..., Any]:
    original = _ORIGINAL[name]

    def builtin(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("key") is not None or not args:
            return original(*args, **kwargs)
        if len(args) == 1 and isinstance(args[0], Tracer):
            x = args[0]
            if x.ndim == 0:
                raise _t._fail(f"{name}() of a traced scalar: it is not iterable")
            return reduce(x, axis=0)
        items = list(args[0]) if len(args) == 1 else list(args)
        if not any(isinstance(i, _Traced) or has_traced(i) for i in items):
            return original(items, **kwargs) if len(args) == 1 else original(*args, **kwargs)
        if not items:
            return original(items, **kwargs)
        if not any(isinstance(i, Tracer) and not i.weak for i in items) and all(
                isinstance(i, (int, _t.Size, Tracer)) for i in items):  # max(n, 1) of sizes: an int of the call
            raise _t._sizes_needed(f"{name}() of sizes")
        return _fold(op, [sequence_operand(i, f"{name}()") if isinstance(i, list) else i for i in items],
                     f"{name}()")

    functools.update_wrapper(builtin, original)
    return builtin


def _builtin_sum(iterable: Any, /, start: Any = 0) -> Any:
    """``sum(x)`` of a traced array is ``np.sum(x, axis=0)``: one node, not one per row."""
    if isinstance(iterable, Tracer):
        if iterable.ndim == 0:
            raise _t._fail("sum() of a traced scalar: it is not iterable")
        total = _t._reduce(Op.SUM, iterable, 0, False, "sum()")
        return total if isinstance(start, (int, float)) and start == 0 else start + total
    return _ORIGINAL["sum"](iterable, start)


# -- swapping the names in while a trace runs ----------------------------------------

_ORIGINAL: dict[str, Any] = {"array": np.array, "asarray": np.asarray, "asanyarray": np.asanyarray,
                             "r_": np.r_, "c_": np.c_, "max": builtins.max, "min": builtins.min,
                             "sum": builtins.sum, "full": np.full}

# functions whose argument is a sequence of arrays, not an array: their dispatch sees each element already
_SEQUENCE_FUNCTIONS = frozenset({"concatenate", "stack", "hstack", "vstack", "dstack", "column_stack",
                                 "row_stack", "block", "multi_dot"})


def converting(name: str, func: Any, whole: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """``func`` with its list arguments that hold traced values built into arrays first (``np.sum([a, b])``)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not any(isinstance(v, (list, tuple)) and has_traced(v) for v in (*args, *kwargs.values())):
            if whole is not None and args and isinstance(args[0], _Traced):
                return whole(*args, **kwargs)
            return func(*args, **kwargs)
        what = f"np.{name}"
        args = tuple(sequence_operand(v, what) if isinstance(v, (list, tuple)) else v for v in args)
        kwargs = {k: sequence_operand(v, what) if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()}
        return (whole or func)(*args, **kwargs)

    functools.update_wrapper(wrapper, func)
    return wrapper


class _ListUfunc:
    """A ufunc that stacks its list arguments holding traced values first (``np.exp([a, b])``).

    NumPy converts a list argument of a ufunc in C, asking each element for
    ``__array__``, so the tracer never sees the call; this stand-in builds the
    stack and calls the ufunc itself. Everything else (``np.add.at``, ``nin``,
    ``__name__``) is the ufunc's.
    """

    def __init__(self, ufunc: np.ufunc, name: str) -> None:
        self._ufunc, self._name = ufunc, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(v, (list, tuple)) and has_traced(v) for v in args):
            args = tuple(sequence_operand(v, self._name) if isinstance(v, (list, tuple)) else v for v in args)
        return self._ufunc(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._ufunc, attr)

    def __repr__(self) -> str:
        return repr(self._ufunc)


def _ufunc_replacements() -> list[tuple[Any, str, Any]]:
    """Every name of NumPy (and scipy.special, once imported) bound to a ufunc the tracer records."""
    traced = set(_t._UFUNCS)
    out = []
    for module, prefix in ((np, "np"), (sys.modules.get("scipy.special"), "scipy.special")):
        for name, value in list(vars(module).items()) if module is not None else ():
            if isinstance(value, np.ufunc) and value in traced:
                out.append((module, name, _ListUfunc(value, f"{prefix}.{name}")))
    return out


def _replacements() -> list[tuple[Any, str, Any]]:
    """(module, attribute, replacement) for every name swapped in while tracing."""
    out: list[tuple[Any, str, Any]] = [
        (np, "array", converting("array", _ORIGINAL["array"], _np_array)),
        (np, "asarray", converting("asarray", _ORIGINAL["asarray"], _np_asarray)),
        (np, "asanyarray", converting("asanyarray", _ORIGINAL["asanyarray"], _np_asarray)),
        (np, "r_", _Concatenator(_ORIGINAL["r_"], columns=False)),
        (np, "c_", _Concatenator(_ORIGINAL["c_"], columns=True)),
        (builtins, "max", _extreme("max", Op.MAX, lambda x, axis: _t._np_max(x, axis))),
        (builtins, "min", _extreme("min", Op.MIN, lambda x, axis: _t._np_min(x, axis))),
        (builtins, "sum", functools.update_wrapper(_builtin_sum, _ORIGINAL["sum"])),
        (np, "arange", _t._arange_wrapper),
        (np, "full", _np_full),
    ]
    out += _SWAPPED + _ufunc_replacements()
    for func in list(_t._FUNCTIONS):
        name = getattr(func, "__name__", None)
        module = sys.modules.get(getattr(func, "__module__", None) or "")
        if name and name not in _SEQUENCE_FUNCTIONS and module is not None and getattr(module, name, None) is func:
            out.append((module, name, converting(name, func)))
    return out


_SWAPPED: list[tuple[Any, str, Any]] = []  # names other modules swap in too (scipy.special.logsumexp)


def swap_while_tracing(module: Any, attr: str, replacement: Any) -> None:
    """``module.attr`` replaced by ``replacement`` while a trace runs, as the names above are."""
    _SWAPPED.append((module, attr, replacement))


class _Patch:
    lock = threading.Lock()
    depth = 0
    saved: list[tuple[Any, str, Any]] = []


@contextlib.contextmanager
def constructing() -> Iterator[None]:
    """The replacements above in place for the duration of a trace (restored when the last trace ends)."""
    with _Patch.lock:
        if _Patch.depth == 0:
            _Patch.saved = []
            for module, attr, replacement in _replacements():
                _Patch.saved.append((module, attr, getattr(module, attr)))
                setattr(module, attr, replacement)
        _Patch.depth += 1
    try:
        yield
    finally:
        with _Patch.lock:
            _Patch.depth -= 1
            if _Patch.depth == 0:
                for module, attr, original in reversed(_Patch.saved):
                    setattr(module, attr, original)
                _Patch.saved = []


# the NumPy names swapped in while tracing (docs/numpy.md lists them beside the tracer's table)
# (np.r_[...] and np.c_[...] are indexing, listed among the spellings in diffc/coverage.py)
PATCHED: dict[str, Callable[..., Any]] = {"np.array": _np_array, "np.asarray": _np_asarray,
                                          "np.asanyarray": _np_asarray, "np.full": _np_full}


def register(functions: dict[Any, Callable[..., Any]]) -> None:
    """The join functions' handlers, into the tracer's table of NumPy functions."""
    functions.update({
        np.hstack: _np_hstack,
        np.vstack: _np_vstack,
        np.column_stack: _np_column_stack,
        np.dstack: _np_dstack,
        np.meshgrid: _np_meshgrid,
    })


__all__ = ["PATCHED", "constructing", "converting", "has_traced", "register", "sequence_operand",
           "swap_while_tracing"]
