"""Numerically stable building blocks for models: logsumexp, softmax, log_softmax, sigmoid, softplus.

Each function works on traced values AND on plain NumPy arrays and numbers,
so the same user function runs both under ``diffc.compile`` and untraced:

- on a traced value it records ONE op (``Op.LOGSUMEXP``, ``Op.SOFTMAX``, ...),
  which the back ends print in a stable form and whose adjoint is stable by
  construction (see docs/adjoints.md);
- on anything else it computes the same stable value with NumPy, with the
  helpers the generated NumPy code calls (:mod:`diffc.support.stable`), so
  traced and untraced runs agree to the last bit on the NumPy back end.

Writing these out by hand (``np.log(np.sum(np.exp(x)))``) works too: the
stabilize pass (:mod:`diffc.passes.stabilize`) recognises the usual spellings
and rewrites them into these ops before differentiating.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from diffc.errors import ShapeError
from diffc.frontends.trace import Tracer, _apply, _axis, _Traced, _traced
from diffc.ir import Op
from diffc.support.stable import stable_log_softmax, stable_logsumexp, stable_softmax

__all__ = ["log_softmax", "logsumexp", "sigmoid", "softmax", "softplus"]


def _record(op: Op, x: Any, what: str, **attrs: Any) -> Tracer:
    t = _traced(x, what)
    return Tracer(_apply(t.graph, op, (t.node,), what, **attrs))


def _axes(axis: Any, ndim: int, what: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, negative allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in items:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ShapeError(f"{what}: axis {a} is out of range for an array of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{what}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _float_array(x: Any) -> np.ndarray:
    array = np.asarray(x)
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x), axis))`` without overflow: ``m + log(sum(exp(x - m)))`` with ``m = max(x)``."""
    if isinstance(x, _Traced):
        return _record(Op.LOGSUMEXP, x, "diffc.logsumexp", axis=_axis(axis, "diffc.logsumexp"),
                       keepdims=bool(keepdims))
    array = _float_array(x)
    return stable_logsumexp(array, _axes(axis, array.ndim, "diffc.logsumexp"), bool(keepdims))


def softmax(x: Any, axis: Any = -1) -> Any:
    """``exp(x) / sum(exp(x), axis, keepdims=True)``, shifted by the maximum; ``axis`` defaults to the last."""
    if isinstance(x, _Traced):
        return _record(Op.SOFTMAX, x, "diffc.softmax", axis=_axis(axis, "diffc.softmax"))
    array = _float_array(x)
    return stable_softmax(array, _axes(axis, array.ndim, "diffc.softmax"))


def log_softmax(x: Any, axis: Any = -1) -> Any:
    """``log(softmax(x))`` computed as ``x - logsumexp(x, axis, keepdims=True)``: no log of 0."""
    if isinstance(x, _Traced):
        return _record(Op.LOG_SOFTMAX, x, "diffc.log_softmax", axis=_axis(axis, "diffc.log_softmax"))
    array = _float_array(x)
    return stable_log_softmax(array, _axes(axis, array.ndim, "diffc.log_softmax"))


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` as SciPy's ``expit``: no overflow for any x, the NumPy back end's bits."""
    if isinstance(x, _Traced):
        return _record(Op.SIGMOID, x, "diffc.sigmoid")
    import scipy.special  # a declared dependency; imported here to keep ``import diffc`` light

    return scipy.special.expit(_float_array(x))


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` as ``logaddexp(0, x)``: x itself for large x, no overflow."""
    if isinstance(x, _Traced):
        return _record(Op.SOFTPLUS, x, "diffc.softplus")
    return np.logaddexp(0.0, _float_array(x))
