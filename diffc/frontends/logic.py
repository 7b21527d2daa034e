"""Tracing NumPy's truth tests and choices: all, any, isclose, allclose, select.

Their results are booleans (no gradient) or ``where`` choices, written as
NumPy writes them with the comparisons and reductions diffc already traces.
A boolean result is a traced value: it can choose with ``np.where``, but a
Python ``if`` on it raises a TraceError that says so (its value is unknown
while tracing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from diffc.frontends.trace import _UNSET, Tracer, _fail, _reject_kwargs, _Traced, _traced


def _np_any(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False, *, where: Any = _UNSET) -> Tracer:
    """True where a slice has a non-zero entry (NaN counts as true, as in NumPy)."""
    _reject_kwargs("np.any", out=out, where=where)
    return np.sum(_traced(a, "np.any") != 0, axis=axis, keepdims=keepdims) > 0


def _np_all(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False, *, where: Any = _UNSET) -> Tracer:
    """True where a slice has no zero entry."""
    _reject_kwargs("np.all", out=out, where=where)
    return np.sum(_traced(a, "np.all") == 0, axis=axis, keepdims=keepdims) == 0


def _np_isclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: Any = False) -> Tracer:
    """NumPy's test, term by term: ``|a - b| <= atol + rtol |b|`` for a finite b, or ``a == b`` (equal
    infinities); ``equal_nan`` adds NaN against NaN."""
    close = (np.abs(a - b) <= atol + rtol * np.abs(b)) & np.isfinite(b) | (a == b)
    return close | (np.isnan(a) & np.isnan(b)) if equal_nan else close


def _np_allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: Any = False) -> Tracer:
    """``np.all(np.isclose(...))``: a traced boolean (a Python ``if`` on it cannot be traced)."""
    return _np_all(_np_isclose(a, b, rtol, atol, equal_nan))


def _np_select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """The first true condition's choice, else ``default``: ``where`` nested from the last pair inward.

    Convention: each entry's gradient goes to the choice selected there, an exact zero to the others.
    """
    what = "np.select"
    # a list holding traced values arrives stacked (diffc/frontends/construction.py): its rows are the items
    condlist, choicelist = (list(v) if isinstance(v, _Traced) else v for v in (condlist, choicelist))
    if not isinstance(condlist, (list, tuple)) or not isinstance(choicelist, (list, tuple)):
        raise _fail(f"{what} takes a list of conditions and a list of choices")
    if len(condlist) != len(choicelist):
        raise _fail(f"{what}: {len(condlist)} conditions and {len(choicelist)} choices; they must pair up",
                    ValueError)
    result = default
    for condition, choice in zip(reversed(condlist), reversed(choicelist), strict=True):
        result = np.where(condition, choice, result)
    return result


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.any: _np_any, np.all: _np_all, np.isclose: _np_isclose, np.allclose: _np_allclose, np.select: _np_select,
}
