"""Odd numbers: stabilized formulas, NaN and inf as NumPy has them, conventions at kinks.

Each convention at a point where the function has no derivative is stated
once in docs/conventions.md and tested once here, on the NumPy back end and
on the Numba back end's module run as plain Python; one function that
combines them all is compiled with real Numba. The references are hand-derived
(the convention itself) and NumPy's own value; away from the kink the same
functions are checked against central differences.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import as_tuple, check_grad
from plain_numba import call_plain, load_compiled

import diffc

PATHS = ("numpy", "numba-plain")


def value_and_grad(fn: Callable[..., Any], args: list[Any], path: str, types: dict[str, str] | None = None
                   ) -> tuple[Any, tuple[Any, ...]]:
    """diffc's value and gradients (every float argument) on ``path``, warnings of the arithmetic silenced."""
    count = sum(1 for a in args if isinstance(a, float) or getattr(a, "dtype", None) == np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if path == "numpy":
            value, grads = diffc.compile(fn, backend="numpy", args=types).value_and_grad(*args)
        else:
            compiled = diffc.compile(fn, args=types or {n: _type(a) for n, a in zip(_names(fn), args, strict=True)})
            value, grads = call_plain(load_compiled(compiled, parallel_threshold=0)["value_and_grad"], *args)
    return value, as_tuple(grads, count)


def _names(fn: Callable[..., Any]) -> tuple[str, ...]:
    return fn.__code__.co_varnames[:fn.__code__.co_argcount]


def _type(value: Any) -> str:
    return "f64" if np.ndim(value) == 0 else "f64[" + ",".join(f"n{k}" for k in range(np.ndim(value))) + "]"


def numpy_value(fn: Callable[..., Any], args: list[Any]) -> Any:
    with np.errstate(all="ignore"):
        return fn(*args)


# ---------------------------------------------------------------------------
# stabilizing rewrites: the right answer where the written formula overflows

STABLE = [
    # (name, function, x, value, gradient): hand-derived
    ("log(exp(x)) at 1000", lambda x: np.log(np.exp(x)), 1000.0, 1000.0, 1.0),
    ("log(exp(x)) at -1000", lambda x: np.log(np.exp(x)), -1000.0, -1000.0, 1.0),
    ("exp(log(x)) at 2", lambda x: np.exp(np.log(x)), 2.0, 2.0, 1.0),
    ("exp(log(x)) at 0", lambda x: np.exp(np.log(x)), 0.0, 0.0, 1.0),
    ("sqrt(x*x) at -1e200", lambda x: np.sqrt(x * x), -1e200, 1e200, -1.0),
    ("sqrt(x**2) at 3", lambda x: np.sqrt(x**2), 3.0, 3.0, 1.0),
    ("log1p(exp(x)) at 1000", lambda x: np.log1p(np.exp(x)), 1000.0, 1000.0, 1.0),
    ("log(1 + exp(x)) at 800", lambda x: np.log(1 + np.exp(x)), 800.0, 800.0, 1.0),
    ("log(sigmoid(x)) at -1000", lambda x: np.log(1 / (1 + np.exp(-x))), -1000.0, -1000.0, 1.0),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name,fn,x,value,grad", STABLE, ids=[s[0] for s in STABLE])
def test_stabilized_formula(name: str, fn: Callable[..., Any], x: float, value: float, grad: float,
                            path: str) -> None:
    got, grads = value_and_grad(fn, [x], path)
    assert got == pytest.approx(value, rel=1e-14)
    assert grads[0] == pytest.approx(grad, rel=1e-14)


@pytest.mark.parametrize("path", PATHS)
def test_exp_log_keeps_numpys_nan_for_negative_x(path: str) -> None:
    """Only the exact rewrite: exp(log(-1)) is NaN in NumPy, and stays NaN."""
    fn = lambda x: np.sum(np.exp(np.log(x)))  # noqa: E731
    x = np.array([-1.0, 0.5, np.nan, np.inf, 0.0])
    value, _ = value_and_grad(fn, [x], path)
    assert np.isnan(value) and np.isnan(numpy_value(fn, [x]))
    each = lambda x: np.exp(np.log(x))  # noqa: E731
    compiled = diffc.compile(each, backend="numpy")
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(compiled(x), numpy_value(each, [x]))


@pytest.mark.parametrize("fn", [lambda x: np.log(np.exp(x)), lambda x: np.sqrt(x * x), lambda x: np.exp(np.log(x))],
                         ids=["log_exp", "sqrt_square", "exp_log"])
def test_rewritten_forms_have_the_right_gradient_away_from_the_edges(fn: Callable[..., Any]) -> None:
    x = np.array([0.3, 1.7, 2.5])
    for backend in ("numpy", "numba"):
        check_grad(diffc.compile(lambda x: np.sum(fn(x)), backend=backend), [x], f=lambda x: np.sum(fn(x)))


# ---------------------------------------------------------------------------
# NaN and inf as NumPy has them

EDGE = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e-320, 2.0])
PROPAGATE = [
    ("sin", lambda x: np.sin(x)), ("exp", lambda x: np.exp(x)), ("log", lambda x: np.log(x)),
    ("sqrt", lambda x: np.sqrt(x)), ("reciprocal", lambda x: 1.0 / x), ("tanh", lambda x: np.tanh(x)),
    ("square", lambda x: x * x), ("abs", lambda x: np.abs(x)), ("max0", lambda x: np.maximum(x, 0.0)),
]


@pytest.mark.parametrize("name,fn", PROPAGATE, ids=[p[0] for p in PROPAGATE])
def test_nan_and_inf_values_are_numpys(name: str, fn: Callable[..., Any]) -> None:
    want = numpy_value(fn, [EDGE])
    for backend in ("numpy", "numba-plain"):
        if backend == "numpy":
            compiled = diffc.compile(fn, backend="numpy")
            with np.errstate(all="ignore"):
                got = compiled(EDGE)
        else:
            got = call_plain(load_compiled(diffc.compile(fn, args={"x": "f64[n]"}), parallel_threshold=0)["forward"],
                             EDGE)
        np.testing.assert_array_equal(got, want, err_msg=f"{name} on {backend}")


@pytest.mark.parametrize("path", PATHS)
def test_a_nan_input_gives_a_nan_value_and_gradient_where_numpys_arithmetic_does(path: str) -> None:
    fn = lambda x, y: np.sum(np.sin(x) * y)  # noqa: E731
    x, y = np.array([0.5, np.nan, 1.0]), np.array([2.0, 3.0, np.inf])
    value, grads = value_and_grad(fn, [x, y], path)
    assert np.isnan(value) and np.isnan(numpy_value(fn, [x, y]))
    with np.errstate(all="ignore"):
        want_x, want_y = np.cos(x) * y, np.sin(x)  # the hand-derived gradient in NumPy's arithmetic
    np.testing.assert_array_equal(grads[0], want_x)
    np.testing.assert_array_equal(grads[1], want_y)


# ---------------------------------------------------------------------------
# one convention at each non-differentiable point (docs/conventions.md, line by line)

KINKS = [
    # (convention, function, arguments, gradients by the convention)
    ("abs at 0: 0", lambda x: np.sum(np.abs(x)), [np.array([0.0, -2.0, 3.0])], [np.array([0.0, -1.0, 1.0])]),
    ("sqrt at 0: inf", lambda x: np.sum(np.sqrt(x)), [np.array([0.0, 4.0])], [np.array([np.inf, 0.25])]),
    ("maximum tie: first argument", lambda x, y: np.sum(np.maximum(x, y)),
     [np.array([1.0, 2.0]), np.array([1.0, 3.0])], [np.array([1.0, 0.0]), np.array([0.0, 1.0])]),
    ("minimum tie: first argument", lambda x, y: np.sum(np.minimum(x, y)),
     [np.array([1.0, 2.0]), np.array([1.0, 3.0])], [np.array([1.0, 1.0]), np.array([0.0, 0.0])]),
    ("max reduction tie: first maximum", lambda x: np.max(x), [np.array([1.0, 3.0, 3.0, 2.0])],
     [np.array([0.0, 1.0, 0.0, 0.0])]),
    ("min reduction tie: first minimum", lambda x: np.min(x), [np.array([2.0, 1.0, 5.0, 1.0])],
     [np.array([0.0, 1.0, 0.0, 0.0])]),
    ("relu at 0: 0", lambda x: np.sum(np.maximum(x, 0.0)), [np.array([0.0, 1.0, -1.0])], [np.array([0.0, 1.0, 0.0])]),
    ("norm at 0: 0", lambda x: np.linalg.norm(x), [np.zeros(3)], [np.zeros(3)]),
    ("hypot at the origin: 0", lambda x, y: np.sum(np.hypot(x, y)), [np.zeros(2), np.zeros(2)],
     [np.zeros(2), np.zeros(2)]),
    ("clip at its bounds: 0", lambda x: np.sum(np.clip(x, -1.0, 1.0)), [np.array([-1.0, 1.0, 0.5, 2.0])],
     [np.array([0.0, 0.0, 1.0, 0.0])]),
    ("sign: 0", lambda x: np.sum(np.sign(x) * 3.0 + x), [np.array([0.0, -2.0, 5.0])], [np.ones(3)]),
    ("where: the branch not taken gets 0", lambda x: np.sum(np.where(x > 0, np.sqrt(x), 0.0)),
     [np.array([0.0, -1.0, 4.0])], [np.array([0.0, 0.0, 0.25])]),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("convention,fn,args,want", KINKS, ids=[k[0] for k in KINKS])
def test_convention_at_a_kink(convention: str, fn: Callable[..., Any], args: list[Any], want: list[Any],
                              path: str) -> None:
    value, grads = value_and_grad(fn, args, path)
    assert value == pytest.approx(numpy_value(fn, args), rel=1e-15)
    assert len(grads) == len(want)
    for got, expected in zip(grads, want, strict=True):
        np.testing.assert_array_equal(got, expected, err_msg=convention)


def test_every_convention_has_one_line_in_the_docs() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "conventions.md").read_text(encoding="utf-8")
    for convention, *_ in KINKS:
        assert sum(1 for line in text.splitlines() if line.startswith(f"| {convention.split(':')[0]} |")) == 1, \
            convention


def combined(x, y):  # noqa: ANN001, ANN201 - every kink in one function, for one real Numba compile
    return (np.sum(np.abs(x)) + np.sum(np.maximum(x, y)) + np.sum(np.minimum(x, y)) + np.max(x)
            + np.sum(np.maximum(x, 0.0)) + np.sum(np.clip(x, -1.0, 1.0)) + np.linalg.norm(y - y)
            + np.sum(np.where(x > 0, np.sqrt(x), 0.0)) + np.sum(np.log(np.exp(x * 500.0))))


def test_conventions_with_real_numba() -> None:
    x, y = np.array([0.0, 1.0, -1.0, 1.0]), np.array([0.0, 3.0, -1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = diffc.compile(combined)
        value, grads = compiled.value_and_grad(x, y)
    with np.errstate(all="ignore"):  # NumPy statements evaluate both branches of the where (the loops do not)
        want = diffc.compile(combined, backend="numpy").value_and_grad(x, y)
    assert value == pytest.approx(want[0], rel=1e-14)
    for got, expected in zip(as_tuple(grads, 2), as_tuple(want[1], 2), strict=True):
        np.testing.assert_array_equal(got, expected)
    # by hand: abs' = sign, max/min ties to x, max(x) takes the first 1.0, relu'(0) = 0, clip'(+-1) = 0,
    # the zero norm gives 0, the sqrt branch not taken gives 0, log(exp(500 x)) = 500 x
    gx = np.sign(x) + (x >= y) + (x <= y) + np.array([0, 1, 0, 0]) + (x > 0) + (np.abs(x) < 1) \
        + np.where(x > 0, 0.5 / np.sqrt(np.maximum(x, 1e-300)), 0.0) + 500.0
    np.testing.assert_array_equal(as_tuple(grads, 2)[0], gx)
