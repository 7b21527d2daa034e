"""The ops for real models: more math, max/min reductions over axes, the softmax family, the norm.

Every gradient is checked against an independent reference: central finite
differences of the same function run untraced by NumPy, ``sympy.diff`` for
scalar formulas, and hand-derived backpropagation for the two-layer MLP.
The tie rule of max/min reductions (the FIRST extreme element takes the
whole cotangent) is pinned down exactly, on both back ends.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sympy as sp
from conftest import assert_close, numeric_grad
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import diffc
from diffc.adjoint.rules import ADJOINTS, NON_DIFFERENTIABLE
from diffc.codegen.numba import NumbaPrinter
from diffc.codegen.numpy import NumpyPrinter
from diffc.errors import ParseError, ShapeError, TraceError
from diffc.frontends.text import FUNCTIONS, parse_text
from diffc.frontends.trace import trace
from diffc.ir import MATH_BINARY, MATH_UNARY, DType, Op
from diffc.passes.fold import FOLDERS

NEW_REDUCTIONS = (Op.AMAX, Op.AMIN, Op.LOGSUMEXP, Op.NORM)
NEW_AXIS_OPS = (Op.SOFTMAX, Op.LOG_SOFTMAX)
NEW_OPS = (*sorted(MATH_UNARY | MATH_BINARY, key=lambda op: op.value), *NEW_REDUCTIONS, *NEW_AXIS_OPS)


def grad_against_differences(fn: Callable[..., Any], args: list[Any], types: dict[str, str], wrt: Any = None,
                             rtol: float = 1e-6, atol: float = 1e-8, backend: str = "numpy") -> diffc.Compiled:
    """diffc's value and gradient of ``fn`` against ``fn`` run by NumPy and its central differences."""
    f = diffc.compile(fn, args=types, wrt=wrt, backend=backend)
    value, grads = f.value_and_grad(*args)
    names = list(types)
    indices = [names.index(w) for w in ((wrt,) if isinstance(wrt, str) else wrt)] if wrt else \
        [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]
    grads = (grads,) if isinstance(wrt, str) else grads
    assert value == pytest.approx(float(fn(*args)), rel=1e-12, abs=1e-12)
    reference = numeric_grad(fn, args, wrt=indices)
    for i, got, want in zip(indices, grads, reference, strict=True):
        assert_close(got, want, rtol=rtol, atol=atol, what=f"d/d{names[i]}")
    return f


# ---------------------------------------------------------------------------
# every new op is complete in every stage


@pytest.mark.parametrize("op", NEW_OPS, ids=lambda op: op.value)
def test_every_new_op_has_an_adjoint_and_printers(op: Op) -> None:
    assert op in ADJOINTS
    assert NumpyPrinter().method(op) is not None
    assert NumbaPrinter().method(op) is not None
    if op in MATH_UNARY or op in MATH_BINARY:
        assert op in FOLDERS


def test_the_masks_are_data() -> None:
    assert {Op.MAX_MASK, Op.MIN_MASK} <= NON_DIFFERENTIABLE


def test_the_text_language_knows_the_new_functions() -> None:
    names = ["log1p", "expm1", "log2", "log10", "exp2", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh",
             "arcsinh", "hypot", "softplus", "logsumexp", "softmax", "log_softmax", "sigmoid", "square"]
    assert set(names) <= set(FUNCTIONS)


def test_constant_folding_of_the_new_functions() -> None:
    f = diffc.compile("x * (log1p(1.0) + hypot(3.0, 4.0) + softplus(0.0) + arctan2(1.0, 1.0))", backend="numpy")
    assert f.grad_ir.count("const") >= 1 and "log1p" not in f.grad_ir and "hypot" not in f.grad_ir
    assert f.grad(2.0) == pytest.approx(math.log(2.0) + 5.0 + math.log(2.0) + math.pi / 4, rel=1e-15)


# ---------------------------------------------------------------------------
# elementwise math: traced NumPy against central differences

DOMAINS: dict[str, Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]] = {
    "real": lambda rng, shape: rng.normal(size=shape),
    "pos": lambda rng, shape: rng.uniform(0.2, 2.5, size=shape),
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, size=shape),
}

UNARY_CASES: list[tuple[str, Callable[[Any], Any], str]] = [
    ("log1p", np.log1p, "pos"), ("expm1", np.expm1, "real"), ("log2", np.log2, "pos"),
    ("log10", np.log10, "pos"), ("exp2", np.exp2, "real"), ("arcsin", np.arcsin, "unit"),
    ("arccos", np.arccos, "unit"), ("arctan", np.arctan, "real"), ("sinh", np.sinh, "real"),
    ("cosh", np.cosh, "real"), ("arcsinh", np.arcsinh, "real"), ("square", np.square, "real"),
    ("reciprocal", np.reciprocal, "pos"), ("softplus", diffc.softplus, "real"), ("sigmoid", diffc.sigmoid, "real"),
]


@pytest.mark.parametrize(("name", "fn", "domain"), UNARY_CASES, ids=[c[0] for c in UNARY_CASES])
def test_unary_function_against_central_differences(name: str, fn: Callable[[Any], Any], domain: str) -> None:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x, c = DOMAINS[domain](rng, (3, 4)), rng.normal(size=(3, 4))

    def f(x: Any, c: Any) -> Any:
        return np.sum(fn(x) * c)

    grad_against_differences(f, [x, c], {"x": "f64[m,n]", "c": "f64[m,n]"}, wrt="x")


BINARY_CASES: list[tuple[str, Callable[[Any, Any], Any], str, str]] = [
    ("arctan2", np.arctan2, "real", "real"), ("hypot", np.hypot, "real", "real"),
    ("power", np.power, "pos", "real"), ("pow-operator", lambda x, y: x ** y, "pos", "unit"),
]


@pytest.mark.parametrize(("name", "fn", "dx", "dy"), BINARY_CASES, ids=[c[0] for c in BINARY_CASES])
def test_binary_function_against_central_differences(name: str, fn: Callable[[Any, Any], Any], dx: str,
                                                     dy: str) -> None:
    """Both arguments traced, broadcasting a row against a matrix (the exponent of power is traced too)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x, y = DOMAINS[dx](rng, (3, 4)), DOMAINS[dy](rng, (4,))

    def f(x: Any, y: Any) -> Any:
        return np.sum(np.sin(fn(x, y)))

    grad_against_differences(f, [x, y], {"x": "f64[m,n]", "y": "f64[n]"})


def test_power_gradient_with_respect_to_a_traced_exponent() -> None:
    """d(x^y)/dy = x^y log x; at x = 0 it is 0 for y > 0 (x^y is 0 for every such y), not 0 * -inf."""
    f = diffc.compile(lambda x, y: np.sum(x ** y), args={"x": "f64[n]", "y": "f64[n]"}, backend="numpy")
    x, y = np.array([0.0, 0.5, 2.0, 3.0]), np.array([1.5, 2.0, -0.5, 0.25])
    dx, dy = f.grad(x, y)
    np.testing.assert_allclose(dy, [0.0, *(x[1:] ** y[1:] * np.log(x[1:]))], rtol=1e-15)
    np.testing.assert_allclose(dx, y * x ** (y - 1), rtol=1e-15)


def test_arcsinh_and_arctan2_do_not_overflow_in_their_gradients() -> None:
    """arcsinh' = 1/hypot(x, 1) and arctan2's (x, -y)/h/h stay finite and right where x² overflows."""
    f = diffc.compile(lambda x: np.arcsinh(x), args={"x": "f64"}, wrt="x", backend="numpy")
    assert f.grad(1e200) == pytest.approx(1e-200, rel=1e-15)
    g = diffc.compile(lambda y, x: np.arctan2(y, x), args={"y": "f64", "x": "f64"}, backend="numpy")
    dy, dx = g.grad(3e200, 4e200)
    assert dy == pytest.approx(1.6e-201, rel=1e-14)  # x / (x² + y²)
    assert dx == pytest.approx(-1.2e-201, rel=1e-14)


def test_norm_and_hypot_at_the_origin_have_gradient_zero() -> None:
    """Decision: at x = 0 (no derivative) the gradient is 0, the smallest subgradient, as in PyTorch.

    JAX returns NaN there; a NaN would poison a whole training step for an all-zero row.
    """
    f = diffc.compile(lambda v, a, b: np.linalg.norm(v) + np.hypot(a, b),
                      args={"v": "f64[n]", "a": "f64", "b": "f64"}, backend="numpy")
    dv, da, db = f.grad(np.zeros(4), 0.0, 0.0)
    np.testing.assert_array_equal(dv, np.zeros(4))
    assert (da, db) == (0.0, 0.0)
    x = np.array([3.0, 0.0, -4.0, 0.0])
    dv, da, db = f.grad(x, -5.0, 12.0)
    np.testing.assert_allclose(dv, x / 5.0, rtol=1e-15)
    assert (da, db) == pytest.approx((-5.0 / 13.0, 12.0 / 13.0), rel=1e-15)


@pytest.mark.parametrize(("axis", "keepdims"), [(None, False), (1, False), (0, True), ((0, 1), False), (-1, True)])
def test_norm_with_axis(axis: Any, keepdims: bool) -> None:
    rng = np.random.default_rng(3)
    x, c = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))

    def f(x: Any, c: Any) -> Any:
        return np.sum(np.linalg.norm(x, axis=axis, keepdims=keepdims) * np.sum(c))

    grad_against_differences(f, [x, c], {"x": "f64[m,n]", "c": "f64[m,n]"}, wrt="x")
    rows = np.zeros((2, 3))
    rows[1] = [1.0, 2.0, 2.0]
    g = diffc.compile(lambda x: np.sum(np.linalg.norm(x, axis=1)), args={"x": "f64[m,n]"}, wrt="x", backend="numpy")
    np.testing.assert_allclose(g.grad(rows), [[0.0, 0.0, 0.0], [1 / 3, 2 / 3, 2 / 3]], rtol=1e-15)


def test_norm_refuses_other_orders() -> None:
    with pytest.raises(TraceError, match="ord='nuc'"):
        trace(lambda x: np.linalg.norm(x, ord="nuc"), [("x", DType.F64, (3,))])  # not a vector norm
    with pytest.raises(TraceError, match="ord=3"):
        trace(lambda x: np.linalg.norm(x, ord=3), [("x", DType.F64, (3, 3))])  # not a matrix norm


# ---------------------------------------------------------------------------
# scalar formulas against sympy.diff

a_, b_ = sp.symbols("a b", real=True)

# (text, the SymPy formula, the text functions it covers); points are drawn from (0.1, 0.9)
SYMPY_MATH_CASES: list[tuple[str, sp.Expr]] = [
    ("log1p(a * b) * expm1(b - a)", sp.log(1 + a_ * b_) * (sp.exp(b_ - a_) - 1)),
    ("log2(a + b) + log10(a * b + 1)", sp.log(a_ + b_, 2) + sp.log(a_ * b_ + 1, 10)),
    ("exp2(a * b) / (1 + b)", 2 ** (a_ * b_) / (1 + b_)),
    ("arcsin(a * b) + arccos(a - b)", sp.asin(a_ * b_) + sp.acos(a_ - b_)),
    ("arctan(a / b) * arcsinh(a + b)", sp.atan(a_ / b_) * sp.asinh(a_ + b_)),
    ("sinh(a * b) - cosh(a + b)", sp.sinh(a_ * b_) - sp.cosh(a_ + b_)),
    ("arctan2(a - b, a + b)", sp.atan2(a_ - b_, a_ + b_)),
    ("hypot(a, b * 3)", sp.sqrt(a_ ** 2 + 9 * b_ ** 2)),
    ("softplus(3 * a - b)", sp.log(1 + sp.exp(3 * a_ - b_))),
    ("sigmoid(a * b) * square(a - b)", (a_ - b_) ** 2 / (1 + sp.exp(-a_ * b_))),
    ("a ** b + b ** a", a_ ** b_ + b_ ** a_),
    ("max(a) + min(b) * sum(a) + mean(b) + logsumexp(a * b)", a_ + b_ * a_ + b_ + a_ * b_),
]


@pytest.mark.parametrize(("text", "expr"), SYMPY_MATH_CASES, ids=[c[0] for c in SYMPY_MATH_CASES])
def test_scalar_formula_against_sympy_diff(text: str, expr: sp.Expr) -> None:
    f = diffc.compile(text, args=["a", "b"], backend="numpy")
    value_fn = sp.lambdify((a_, b_), expr, "math")
    grad_fns = [sp.lambdify((a_, b_), sp.diff(expr, s), "math") for s in (a_, b_)]
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    for a, b in rng.uniform(0.1, 0.9, size=(4, 2)):
        value, (da, db) = f.value_and_grad(float(a), float(b))
        assert value == pytest.approx(value_fn(a, b), rel=1e-12, abs=1e-14)
        assert da == pytest.approx(grad_fns[0](a, b), rel=1e-10, abs=1e-13)
        assert db == pytest.approx(grad_fns[1](a, b), rel=1e-10, abs=1e-13)


# ---------------------------------------------------------------------------
# max/min reductions: every spelling, axis and keepdims, and the tie rule

SPELLINGS: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
    ("np.max", lambda x, **k: np.max(x, **k), lambda x, **k: np.max(x, **k)),
    ("np.amax", lambda x, **k: np.amax(x, **k), lambda x, **k: np.max(x, **k)),
    ("x.max", lambda x, **k: x.max(**k), lambda x, **k: np.max(x, **k)),
    ("np.min", lambda x, **k: np.min(x, **k), lambda x, **k: np.min(x, **k)),
    ("np.amin", lambda x, **k: np.amin(x, **k), lambda x, **k: np.min(x, **k)),
    ("x.min", lambda x, **k: x.min(**k), lambda x, **k: np.min(x, **k)),
]
AXES = [None, 0, 1, -1, 2, (0, 2), (-1, 0), (0, 1, 2)]


# every axis form with and without keepdims, the spellings taking turns
EXTREME_CASES = [(*SPELLINGS[(2 * i + keep) % len(SPELLINGS)], axis, bool(keep))
                 for i, axis in enumerate(AXES) for keep in (0, 1)]


@pytest.mark.parametrize(("name", "spelling", "reference", "axis", "keepdims"), EXTREME_CASES,
                         ids=[f"{c[0]}-axis{c[3]}-keep{c[4]}" for c in EXTREME_CASES])
def test_extreme_reductions_against_central_differences(name: str, spelling: Callable[..., Any],
                                                        reference: Callable[..., Any], axis: Any,
                                                        keepdims: bool) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{name}{axis}{keepdims}".encode()))
    x = rng.permutation(24).reshape(2, 3, 4) / 7.0 + rng.uniform(0, 0.01, size=(2, 3, 4))  # no ties
    c = rng.normal(size=reference(x, axis=axis, keepdims=keepdims).shape)

    def f(x: Any) -> Any:
        return np.sum(np.sin(spelling(x, axis=axis, keepdims=keepdims)) * c)

    def untraced(x: Any) -> Any:
        return np.sum(np.sin(reference(x, axis=axis, keepdims=keepdims)) * c)

    compiled = diffc.compile(f, args={"x": "f64[a,b,c]"}, wrt="x", backend="numpy")
    value, grad = compiled.value_and_grad(x)
    assert value == pytest.approx(untraced(x), rel=1e-14)
    assert_close(grad, numeric_grad(untraced, [x])[0], rtol=1e-6, atol=1e-9)
    assert np.count_nonzero(grad) == np.size(c)  # one element per reduced slice


@pytest.mark.parametrize(("op", "x", "axis", "expected"), [
    (np.max, [2.0, 5.0, 5.0, 1.0, 5.0], None, [0, 1, 0, 0, 0]),
    (np.min, [2.0, 1.0, 5.0, 1.0, 1.0], None, [0, 1, 0, 0, 0]),
    (np.max, [[4.0, 4.0, 1.0], [0.0, 3.0, 3.0]], 1, [[1, 0, 0], [0, 1, 0]]),
    (np.max, [[4.0, 4.0, 1.0], [4.0, 3.0, 3.0]], 0, [[1, 1, 0], [0, 0, 1]]),
    (np.min, [[3.0, 0.0], [0.0, 0.0]], None, [[0, 1], [0, 0]]),       # row-major: (0, 1) comes before (1, 0)
    (np.max, [[7.0, 7.0], [7.0, 7.0]], (0, 1), [[1, 0], [0, 0]]),
])
def test_tie_rule_the_first_extreme_takes_the_whole_cotangent(op: Callable[..., Any], x: list[Any], axis: Any,
                                                              expected: list[Any]) -> None:
    data = np.array(x)
    t = "f64[n]" if data.ndim == 1 else "f64[m,n]"
    f = diffc.compile(lambda v: np.sum(op(v, axis=axis)), args={"v": t}, wrt="v", backend="numpy")
    np.testing.assert_array_equal(f.grad(data), np.array(expected, dtype=float))
    # the same element argmax picks: the gradient of max is argmax's one-hot vector
    picker = np.argmax if op is np.max else np.argmin
    if axis is None or data.ndim == 1:
        assert np.flatnonzero(f.grad(data)).tolist() == [picker(data)]


def test_max_reduction_is_the_same_tie_rule_as_binary_max() -> None:
    """np.max(x) of two elements and np.maximum(a, b) send a tie to the same (first) place."""
    f = diffc.compile(lambda v: np.max(v), args={"v": "f64[n]"}, wrt="v", backend="numpy")
    g = diffc.compile("max(a, b)", backend="numpy")
    assert f.grad(np.array([2.0, 2.0])).tolist() == list(g.grad(2.0, 2.0)) == [1.0, 0.0]


def test_max_reduction_with_nan_and_inf() -> None:
    """A NaN is the maximum (np.max propagates it) and gets the gradient, as argmax picks it; an inf
    elsewhere does not leak into the zero contributions (they are selected, not multiplied)."""
    f = diffc.compile(lambda v: np.max(v, axis=1), args={"v": "f64[m,n]"}, wrt="v", backend="numpy")
    x = np.array([[1.0, np.nan, 3.0], [-np.inf, 2.0, np.inf]])
    np.testing.assert_array_equal(f(x), [np.nan, np.inf])
    np.testing.assert_array_equal(f.vjp(x, np.array([1.0, 1.0])), [[0, 1, 0], [0, 0, 1]])
    h = diffc.compile(lambda v: np.max(v) * 2.0, args={"v": "f64[n]"}, wrt="v", backend="numpy")
    np.testing.assert_array_equal(h.grad(np.array([-np.inf, 3.0, 1e308])), [0.0, 0.0, 2.0])


def test_extreme_reductions_refuse_storage_arguments() -> None:
    with pytest.raises(TraceError, match="initial"):
        trace(lambda x: np.max(x, initial=0.0), [("x", DType.F64, (3,))])
    with pytest.raises(TraceError, match="where"):
        trace(lambda x: x.min(where=x > 0), [("x", DType.F64, (3,))])


def test_extreme_of_an_int_array_keeps_its_dtype() -> None:
    program = trace(lambda k: np.max(k, axis=0), [("k", DType.I32, (3, 2))])
    assert program.outputs[0].dtype is DType.I32


def test_reductions_in_the_text_language() -> None:
    f = diffc.compile("sum(max(x, axis=1) * mean(x, axis=-1)) + sum(min(x) * logsumexp(x, axis=(0, 1), keepdims=True))",
                      args={"x": "f64[m,n]"}, wrt="x", backend="numpy")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4))

    def reference(x: Any) -> Any:
        lse = np.log(np.sum(np.exp(x)))
        return float(np.sum(np.max(x, axis=1) * np.mean(x, axis=-1)) + np.min(x) * lse)

    value, grad = f.value_and_grad(x)
    assert value == pytest.approx(reference(x), rel=1e-13)
    assert_close(grad, numeric_grad(reference, [x])[0], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("source", "fragment"), [
    ("sum(x, axis=1.5)", "axis must be an integer"),
    ("sum(x, axis=y)", "axis must be an integer"),
    ("max(x, keepdims=1)", "keepdims must be True or False"),
    ("softmax(x, keepdims=True)", "softmax() takes only the keyword arguments axis"),
    ("max(x, x, axis=0)", "belong to the reduction max(x)"),
    ("exp(x, axis=0)", "keyword arguments are not supported (exp)"),
])
def test_text_keyword_mistakes(source: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_text(source, {"x": "f64[m,n]", "y": "f64"})
    assert fragment in info.value.message


def test_an_axis_out_of_range_names_the_text() -> None:
    with pytest.raises(ShapeError, match=r"axis 2 is out of range.*max\(x, axis=2\)"):
        parse_text("max(x, axis=2)", {"x": "f64[m,n]"})


# ---------------------------------------------------------------------------
# the softmax family: values, gradients, the functions on plain arrays


def test_softmax_family_against_central_differences() -> None:
    rng = np.random.default_rng(8)
    x, c = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))

    def f(x: Any, c: Any) -> Any:
        return (np.sum(diffc.softmax(x, axis=1) * c) + np.sum(diffc.log_softmax(x, axis=(0, 2)) * c * c)
                + np.sum(diffc.logsumexp(x, axis=-1) * np.sum(c, axis=2)) + diffc.logsumexp(x * c)
                + np.sum(diffc.softplus(x) * c) + np.sum(diffc.sigmoid(x * c)))

    grad_against_differences(f, [x, c], {"x": "f64[a,b,c]", "c": "f64[a,b,c]"}, wrt="x")


def test_stable_functions_run_untraced_and_agree_with_the_traced_ones() -> None:
    x = np.array([[1000.0, 999.0, -1000.0], [0.5, -0.25, 3.0]])
    assert np.all(np.isfinite(diffc.logsumexp(x, axis=1)))
    np.testing.assert_allclose(diffc.logsumexp(x, axis=1), [1000.0 + math.log1p(math.exp(-1.0)),
                                                            np.log(np.sum(np.exp(x[1])))], rtol=1e-15)
    np.testing.assert_allclose(diffc.softmax(x).sum(axis=-1), [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(diffc.log_softmax(x[1]), x[1] - np.log(np.sum(np.exp(x[1]))), rtol=1e-14)
    assert diffc.sigmoid(-800.0) == 0.0 and diffc.sigmoid(800.0) == 1.0 and diffc.softplus(800.0) == 800.0
    assert diffc.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert diffc.logsumexp(np.array([np.inf, 1.0])) == np.inf

    # the same function run traced and untraced gives the same bits (the NumPy back end calls the same helpers)
    for fn in (lambda v: diffc.logsumexp(v, axis=0), lambda v: diffc.softmax(v, axis=0),
               lambda v: diffc.log_softmax(v), lambda v: diffc.softplus(v), lambda v: diffc.sigmoid(v)):
        traced = diffc.compile(fn, args={"v": "f64[m,n]"}, backend="numpy")
        np.testing.assert_array_equal(traced(x), fn(x))


def test_stable_functions_check_their_axes() -> None:
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        diffc.softmax(np.ones((2, 2)), axis=2)
    with pytest.raises(ShapeError, match="axis 3 is out of range"):
        trace(lambda x: diffc.logsumexp(x, axis=3), [("x", DType.F64, (2, 2))])


def test_logsumexp_at_infinities_and_huge_values() -> None:
    f = diffc.compile(lambda x: diffc.logsumexp(x), args={"x": "f64[n]"}, wrt="x", backend="numpy")
    assert f(np.array([-np.inf, -np.inf])) == -np.inf
    assert f(np.array([np.inf, 0.0])) == np.inf
    value, grad = f.value_and_grad(np.array([1e308, 1e308, 0.0]))
    assert value == pytest.approx(1e308, rel=1e-15)
    np.testing.assert_array_equal(grad, [0.5, 0.5, 0.0])


# ---------------------------------------------------------------------------
# Numba: the row loops, on axes Numba's NumPy lacks


def _axes_model(x: Any) -> Any:
    # (no elementwise work on vectors: that would be a fused, parallel loop, and Numba's parallel
    # array expressions refuse to broadcast a (1, n) array against an (m, n) one)
    return (np.sum(np.max(x, axis=0, keepdims=True) * x) - np.min(x) * 3.0
            + np.sum(diffc.softmax(x, axis=0) * x) + np.sum(diffc.logsumexp(x, axis=1, keepdims=True) * x))


def test_numba_reductions_over_axes_match_numpy() -> None:
    """One Numba function (compiling is slow): row loops over the last axis and, transposed, the first."""
    x = np.array([[4.0, 1.0, 2.0], [4.0, 3.0, -2.0], [0.5, 3.0, -2.0], [0.0, 3.0, 1.0]])  # ties in max and min
    fast = diffc.compile(_axes_model, args={"x": "f64[m,n]"}, wrt="x", backend="numba")
    slow = diffc.compile(_axes_model, args={"x": "f64[m,n]"}, wrt="x", backend="numpy")
    value, grad = fast.value_and_grad(x)
    want_value, want_grad = slow.value_and_grad(x)
    assert value == pytest.approx(want_value, rel=1e-13)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-13)
    assert "rows_max_mask" in fast.grad_source and "first_max_mask" in slow.grad_source
    standalone = fast.module_source()  # the helpers are copied into an emitted module
    assert "def rows_max_mask(" in standalone and "def first_max_index(" in standalone
    assert "import diffc" not in standalone and "from diffc" not in standalone


def test_numba_row_helpers_follow_numpy_on_ties_nan_and_inf() -> None:
    from diffc.support import numba_loops as loops
    from diffc.support import stable

    x = np.array([[4.0, 1.0, 4.0, 2.0], [1.0, np.nan, 3.0, np.nan], [-np.inf, -np.inf, -np.inf, -np.inf],
                  [np.inf, 0.0, np.inf, -1.0], [2.0, 2.0, 2.0, 2.0]])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(loops.rows_max(x), np.max(x, axis=1))
        np.testing.assert_array_equal(loops.rows_min(x), np.min(x, axis=1))
        np.testing.assert_array_equal(loops.rows_max_mask(x), stable.first_max_mask(x, (1,)))
        np.testing.assert_array_equal(loops.rows_min_mask(x), stable.first_min_mask(x, (1,)))
        np.testing.assert_array_equal(np.argmax(loops.rows_max_mask(x), axis=1), np.argmax(x, axis=1))
        np.testing.assert_array_equal(loops.rows_logsumexp(x), stable.stable_logsumexp(x, (1,), False))
        np.testing.assert_allclose(loops.rows_softmax(x[[0, 4]]), stable.stable_softmax(x[[0, 4]], (1,)), rtol=1e-15)
        np.testing.assert_allclose(loops.rows_log_softmax(x[[0, 4]]), stable.stable_log_softmax(x[[0, 4]], (1,)),
                                   rtol=1e-15)
    big = np.array([[1000.0, 1000.0, -1000.0]])
    np.testing.assert_allclose(loops.rows_logsumexp(big), [1000.0 + math.log(2.0)], rtol=1e-15)
    np.testing.assert_allclose(loops.rows_softmax(big), [[0.5, 0.5, 0.0]], rtol=1e-15)
    with pytest.raises(ValueError, match="zero-size"):
        loops.rows_max(np.zeros((2, 0)))


# ---------------------------------------------------------------------------
# the reference model: a two-layer MLP with a naive softmax cross-entropy


def mlp_loss(W1: Any, b1: Any, W2: Any, b2: Any, X: Any, Y: Any) -> Any:  # noqa: N803 - the notes' names
    """Written the naive way on purpose: diffc must make it stable."""
    h = np.maximum(X @ W1 + b1, 0.0)
    z = h @ W2 + b2
    p = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)
    return -np.mean(np.sum(Y * np.log(p), axis=1))


def mlp_backprop(W1: Any, b1: Any, W2: Any, b2: Any, X: Any, Y: Any) -> tuple[float, tuple[Any, ...]]:  # noqa: N803
    """Hand-derived backpropagation: dz = (softmax(z) - Y) / m, then the chain rule layer by layer."""
    m = X.shape[0]
    z1 = X @ W1 + b1
    h = np.maximum(z1, 0.0)
    z = h @ W2 + b2
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.mean(np.sum(Y * log_p, axis=1))
    dz = (np.exp(log_p) - Y) / m
    dW2, db2 = h.T @ dz, dz.sum(axis=0)
    dz1 = (dz @ W2.T) * (z1 > 0)
    return loss, (X.T @ dz1, dz1.sum(axis=0), dW2, db2)


MLP_TYPES = {"W1": "f64[d,h]", "b1": "f64[h]", "W2": "f64[h,k]", "b2": "f64[k]", "X": "f64[m,d]", "Y": "f64[m,k]"}


def mlp_data(scale: float = 1.0) -> list[Any]:
    rng = np.random.default_rng(2024)
    X = rng.normal(size=(64, 20))  # noqa: N806
    Y = np.eye(10)[rng.integers(0, 10, size=64)]  # noqa: N806 - one-hot labels
    return [rng.normal(size=(20, 32)) / math.sqrt(20), rng.normal(size=32) * 0.1,
            scale * rng.normal(size=(32, 10)) / math.sqrt(32), rng.normal(size=10) * 0.1, X, Y]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_mlp_against_hand_backprop(backend: str) -> None:
    f = diffc.compile(mlp_loss, args=MLP_TYPES, wrt=("W1", "b1", "W2", "b2"), backend=backend)
    args = mlp_data()
    value, grads = f.value_and_grad(*args)
    want_value, want_grads = mlp_backprop(*args)
    assert value == pytest.approx(want_value, rel=1e-12)
    for name, got, want in zip(("W1", "b1", "W2", "b2"), grads, want_grads, strict=True):
        assert_close(got, want, rtol=1e-10, atol=1e-13, what=name)
    assert "log_softmax" in f.ir  # the naive softmax and log became one stable op


def test_mlp_with_huge_logits_stays_finite_and_exact() -> None:
    """Logits in the thousands: exp overflows in the naive formula, not in diffc's."""
    args = mlp_data(scale=3000.0)
    with np.errstate(all="ignore"):
        assert not np.isfinite(mlp_loss(*args))
    f = diffc.compile(mlp_loss, args=MLP_TYPES, wrt=("W1", "b1", "W2", "b2"), backend="numpy")
    value, grads = f.value_and_grad(*args)
    want_value, want_grads = mlp_backprop(*args)
    assert np.isfinite(value) and value == pytest.approx(want_value, rel=1e-12)
    for got, want in zip(grads, want_grads, strict=True):
        assert np.all(np.isfinite(got))
        assert_close(got, want, rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))


# ---------------------------------------------------------------------------
# Hypothesis: random expressions with reductions over axes

UNARY_FNS: dict[str, Callable[[Any], Any]] = {
    "sin": np.sin, "tanh": np.tanh, "arctan": np.arctan, "softplus": diffc.softplus, "sigmoid": diffc.sigmoid,
    "sinh3": lambda x: np.sinh(x / 3.0), "log1p_sq": lambda x: np.log1p(x * x), "expm1_3": lambda x: np.expm1(x / 3),
    "arcsinh": np.arcsinh, "cosh3": lambda x: np.cosh(x / 3.0),
}
REDUCE_FNS: dict[str, Callable[..., Any]] = {
    "sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "logsumexp": diffc.logsumexp,
    "norm": lambda x, axis, keepdims: np.linalg.norm(x, axis=axis, keepdims=keepdims),
}
REDUCE_AXES: list[Any] = [None, 0, 1, -1, (0, 1)]

Expr = tuple[Any, ...]


def exprs(depth: int) -> st.SearchStrategy[Expr]:
    """Random expressions over X (3x4): elementwise math, binary ops, and reductions over random axes
    whose result broadcasts back against X."""
    leaf = st.just(("X",))
    if depth == 0:
        return leaf
    sub = exprs(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.just("un"), st.sampled_from(sorted(UNARY_FNS)), sub),
        st.tuples(st.just("bin"), st.sampled_from(["+", "*", "hypot", "arctan2", "softmax", "log_softmax"]), sub, sub),
        st.tuples(st.just("red"), st.sampled_from(sorted(REDUCE_FNS)), st.sampled_from(REDUCE_AXES), sub),
    )


def build(e: Expr, x: Any) -> Any:
    """The expression as NumPy code: run on a tracer it is traced, on an array it is the reference."""
    kind = e[0]
    if kind == "X":
        return x
    if kind == "un":
        return UNARY_FNS[e[1]](build(e[2], x))
    if kind == "bin":
        a, b = build(e[2], x), build(e[3], x)
        if e[1] in ("softmax", "log_softmax"):  # an along-axis op of a + b
            return getattr(diffc, e[1])(a + b, axis=0)
        return {"+": lambda: a + b, "*": lambda: a * b, "hypot": lambda: np.hypot(a, b + 2.0),
                "arctan2": lambda: np.arctan2(a, b + 3.0)}[e[1]]()
    # reductions keep their axes, so that the result broadcasts back against X
    return REDUCE_FNS[e[1]](build(e[3], x), axis=e[2], keepdims=True) * 0.5


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(e=exprs(3), seed=st.integers(0, 2**32 - 1))
def test_random_expressions_with_reductions_over_axes(e: Expr, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, c = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))

    def f(x: Any, c: Any) -> Any:
        return np.sum(build(e, x) * c)  # reductions broadcast back against c

    with np.errstate(all="ignore"):
        value = float(f(x, c))
        fine = numeric_grad(lambda v: f(v, c), [x], eps=1e-7)[0]
        coarse = numeric_grad(lambda v: f(v, c), [x], eps=1e-5)[0]
    assume(math.isfinite(value) and abs(value) < 1e6)
    assume(bool(np.all(np.isfinite(fine))) and bool(np.all(np.abs(fine - coarse) <= 1e-4 * (1 + np.abs(fine)))))
    traced = diffc.compile(f, args={"x": "f64[m,n]", "c": "f64[m,n]"}, wrt="x", backend="numpy")
    got_value, got = traced.value_and_grad(x, c)
    assert got_value == pytest.approx(value, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(got, fine, rtol=1e-5, atol=1e-6, err_msg=repr(e))


def test_dtype_of_new_ops_follows_the_input() -> None:
    program = trace(lambda x: diffc.softmax(np.log1p(x) + np.hypot(x, 1.0)), [("x", DType.F32, (3,))])
    assert program.outputs[0].dtype is DType.F32
    f = diffc.compile(lambda x: np.sum(diffc.log_softmax(np.arcsinh(x))), args={"x": "f32[n]"}, wrt="x",
                      backend="numpy")
    value, grad = f.value_and_grad(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert grad.dtype == np.float32
    want = np.arcsinh(np.array([1.0, 2.0, 3.0]))
    assert value == pytest.approx(np.sum(want - np.log(np.sum(np.exp(want)))), rel=1e-5)


def test_row_helpers_keep_their_own_exact_flags_when_a_fused_loop_calls_them_first(tmp_path) -> None:
    """A helper without explicit flags inherits its first caller's fastmath, and the disk cache keeps it.

    In a fresh process with an empty Numba cache, a ``reassoc`` caller compiles
    ``rows_sum`` first; the helper must still add each row in order (a
    reassociated sum keeps the ones that the in-order sum loses to 1e16).
    """
    script = """
import numba, numpy as np
from diffc.support import numba_loops

@numba.njit(fastmath={"contract", "reassoc", "nsz"}, error_model="numpy")
def fused_caller(x):
    return numba_loops.rows_sum(x)[0]

row = np.array([[1e16] + [1.0] * 62 + [-1e16]])
fused_caller(row)
ordered = 0.0
for v in row[0]:
    ordered += v
print(numba_loops.rows_sum(row)[0], ordered)
"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    got, ordered = (float(v) for v in done.stdout.split())
    assert ordered == 0.0 and got == ordered
