"""``scipy.special`` functions common in losses, traced when SciPy is installed (it is a dependency).

SciPy's elementwise functions are NumPy ufuncs, so a traced value receives
them through ``__array_ufunc__`` like ``np.exp``: they are keyed here by the
ufunc objects themselves. erf, erfc, gammaln and digamma are ops of their
own (and trigamma, digamma's gradient, reached as ``polygamma(1, x)``); the
others are built from existing ops (expit is ``Op.SIGMOID``, log_expit is
``-softplus(-x)``, xlogy a guarded product). ``logsumexp``,
``softmax`` and ``log_softmax`` are Python functions: the name
``scipy.special.<name>`` is swapped while a trace runs, as ``np.array`` is
(diffc/frontends/construction.py); ``from scipy.special import logsumexp``
binds SciPy's own function, which cannot trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from diffc.frontends import construction
from diffc.frontends import trace as _t
from diffc.ir import Op

try:
    import scipy.special as _sp
except ImportError:  # pragma: no cover - SciPy is a dependency; without it there is nothing to trace
    _sp = None

Tracer = _t.Tracer


def _float(x: Any, what: str) -> Tracer:
    """x as a float tracer (an integer input computes in float64, as SciPy's ufuncs do)."""
    t = _t._traced(x, what)
    return t if t.node.dtype.is_float else t.astype(np.float64)


def _expit(x: Any) -> Tracer:
    return _t._elementwise(Op.SIGMOID, (_float(x, "scipy.special.expit"),), "scipy.special.expit")


def _log_expit(x: Any) -> Tracer:
    """``log(expit(x)) = -softplus(-x)``: no overflow, and no log of 0 for large negative x."""
    what = "scipy.special.log_expit"
    return -_t._elementwise(Op.SOFTPLUS, (-_float(x, what),), what)


def _logit(x: Any) -> Tracer:
    """``log(x / (1 - x))`` as ``log(x) - log1p(-x)``: -inf at 0 and inf at 1, as in SciPy."""
    what = "scipy.special.logit"
    t = _float(x, what)
    return _t._elementwise(Op.LOG, (t,), what) - _t._elementwise(Op.LOG1P, (-t,), what)


def _guarded_product(x: Any, y: Any, log: Op, edge: float, what: str) -> Tracer:
    """``x * log(y)`` that is 0 where x is 0 (log is LOG or LOG1P, whose argument's domain ends at ``edge``).

    Where x = 0 and y is at or below the edge, the factor is 0 (so is the product: SciPy's value) and
    log reads ``edge + 1`` instead of y, so that no 0 / 0 reaches y's gradient; elsewhere the
    derivatives are exactly those of x log(y).
    """
    outside = _t._logical_and(_t._elementwise(Op.EQ, (x, 0.0), what), _t._elementwise(Op.LE, (y, edge), what), what)
    safe = _t._np_where(outside, edge + 1.0, y)
    return _t._elementwise(Op.MUL, (x, _t._np_where(outside, 0.0, _t._elementwise(log, (safe,), what))), what)


def _xlogy(x: Any, y: Any) -> Tracer:
    """``x * log(y)``, 0 where x = 0 (for any y but NaN).

    Convention: at x = 0 the gradient with respect to x is log(y), as in JAX, and with respect to y
    is x / y = 0; where x = 0 and y <= 0 both are 0.
    """
    return _guarded_product(x, y, Op.LOG, 0.0, "scipy.special.xlogy")


def _xlog1py(x: Any, y: Any) -> Tracer:
    """``x * log1p(y)``, 0 where x = 0 (for any y but NaN).

    Convention: at x = 0 the gradient with respect to x is log1p(y), as in JAX, and with respect to
    y is x / (1 + y) = 0; where x = 0 and y <= -1 both are 0.
    """
    return _guarded_product(x, y, Op.LOG1P, -1.0, "scipy.special.xlog1py")


def _entr(x: Any) -> Tracer:
    """``-x log(x)`` for x > 0, 0 at x = 0, -inf for x < 0 (SciPy's values).

    Convention: the gradient -(log(x) + 1) for x > 0; 0 at x = 0 (where it is +inf one-sided) and
    for x < 0.
    """
    what = "scipy.special.entr"
    t = _float(x, what)
    inside = -_t._elementwise(Op.MUL, (t, _t._elementwise(Op.LOG, (t,), what)), what)
    outside = _t._np_where(_t._elementwise(Op.EQ, (t, 0.0), what), 0.0, -np.inf)
    return _t._np_where(_t._elementwise(Op.GT, (t, 0.0), what), inside, outside)


# ops of their own: the ufunc -> its op (coverage.py reads the op's convention)
UNARY_UFUNCS: dict[Any, Op] = {}
UFUNCS: dict[Any, Callable[..., Tracer]] = {}
if _sp is not None:
    UNARY_UFUNCS = {_sp.erf: Op.ERF, _sp.erfc: Op.ERFC, _sp.gammaln: Op.GAMMALN, _sp.digamma: Op.DIGAMMA}
    UFUNCS = {
        **{u: functools.partial(lambda op, name, x: _t._elementwise(op, (_float(x, name),), name), op,
                                f"scipy.special.{u.__name__}") for u, op in UNARY_UFUNCS.items()},
        _sp.expit: _expit, _sp.log_expit: _log_expit, _sp.logit: _logit,
        _sp.xlogy: _xlogy, _sp.xlog1py: _xlog1py, _sp.entr: _entr,
    }


# -- the Python functions: logsumexp, softmax, log_softmax -------------------------------------

def _all_axes(x: Tracer, axis: Any) -> Any:
    """SciPy's ``axis=None`` is every axis (diffc.softmax's default is the last one)."""
    return tuple(range(x.ndim)) if axis is None else axis


def _logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False, return_sign: bool = False) -> Any:
    """``log(sum(b * exp(a), axis))``, max-shifted; ``b`` (weights, >= 0) enters as ``a + log(b)``.

    Convention: the gradient is softmax(a + log b) along the axis; a weight of 0 takes no part.
    """
    from diffc.functions import logsumexp

    what = "scipy.special.logsumexp"
    if return_sign:
        raise _t._fail(f"{what}(..., return_sign=True) is not supported by diffc's tracer (a signed sum of "
                       "exponentials); keep the weights b nonnegative and leave return_sign False")
    x = _float(a, what)
    if b is not None:
        if not isinstance(b, _t._Traced) and np.any(np.asarray(b) < 0):
            raise _t._fail(f"{what}: a negative weight b needs return_sign=True, which diffc does not trace")
        with np.errstate(divide="ignore"):
            weights = _t._elementwise(Op.LOG, (b,), what) if isinstance(b, _t._Traced) \
                else np.log(np.asarray(b, dtype=x.dtype))
        x = x + weights
    return logsumexp(x, axis=axis, keepdims=keepdims)


def _softmax(x: Any, axis: Any = None) -> Any:
    """``exp(x - logsumexp(x, axis, keepdims=True))``; SciPy's default axis is all of them."""
    from diffc.functions import softmax

    t = _float(x, "scipy.special.softmax")
    return softmax(t, axis=_all_axes(t, axis))


def _log_softmax(x: Any, axis: Any = None) -> Any:
    """``x - logsumexp(x, axis, keepdims=True)``; SciPy's default axis is all of them."""
    from diffc.functions import log_softmax

    t = _float(x, "scipy.special.log_softmax")
    return log_softmax(t, axis=_all_axes(t, axis))


def _polygamma(n: Any, x: Any) -> Any:
    """``polygamma(0, x)`` is digamma and ``polygamma(1, x)`` trigamma, ops of their own (digamma's gradient is
    trigamma); a higher order is refused by name. An untraced ``x`` is SciPy's own call.

    Convention: n = 0 and n = 1 only; the gradient of polygamma(1, x) (tetragamma) raises UnsupportedError.
    """
    if not isinstance(x, _t._Traced):
        return _ORIGINAL_POLYGAMMA(n, x)
    what = "scipy.special.polygamma"
    if isinstance(n, _t._Traced) or n not in (0, 1):
        raise _t._fail(f"{what}(n, x) is traced for n = 0 (digamma) and n = 1 (trigamma) only, got n = {n!r}",
                       _t.UnsupportedCallError, function=what)
    return _t._elementwise(Op.TRIGAMMA if n == 1 else Op.DIGAMMA, (_float(x, what),), what)


_ORIGINAL_POLYGAMMA = _sp.polygamma if _sp is not None else None

# the names swapped in while tracing: "scipy.special.<name>" -> its handler (docs/numpy.md lists them)
PATCHED: dict[str, Callable[..., Any]] = {}
if _sp is not None:
    PATCHED = {"scipy.special.logsumexp": _logsumexp, "scipy.special.softmax": _softmax,
               "scipy.special.log_softmax": _log_softmax, "scipy.special.polygamma": _polygamma}


def register() -> None:
    """The ufuncs into the tracer's table; the Python functions into the names swapped while tracing."""
    if _sp is None:
        return
    _t._UNARY_UFUNCS.update(UNARY_UFUNCS)
    _t._UFUNCS.update(UFUNCS)
    for name, handler in PATCHED.items():
        attr = name.rpartition(".")[2]
        if handler is _polygamma:  # its traced operand is the second
            construction.swap_while_tracing(_sp, attr, handler)
            continue
        construction.swap_while_tracing(_sp, attr, construction.converting(attr, getattr(_sp, attr), handler))


register()
