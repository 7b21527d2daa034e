"""The stabilize pass: unstable formulas as people write them become stable ops, before differentiation.

Each rewrite is checked three ways: the pattern (in each usual spelling)
turns into the stable op; the value and gradient stay those of the original
formula where it is well-conditioned (central differences); and at extreme
inputs, where the written formula overflows, value and gradient are finite
and equal to exact values computed by hand in the test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sympy as sp
from conftest import assert_close, numeric_grad

import diffc
from diffc.frontends.text import parse_text
from diffc.frontends.trace import trace
from diffc.ir import DType, Op, Program, Sym
from diffc.passes.stabilize import REWRITES, stabilize

N = Sym.named("n")


def ops_of(program: Program) -> set[Op]:
    return {node.op for node in program.nodes()}


def traced(fn: Callable[..., Any], *types: tuple[str, DType, tuple[Any, ...]]) -> Program:
    return trace(fn, list(types))


X = ("x", DType.F64, (N,))
M = ("x", DType.F64, (Sym.named("m"), N))


# ---------------------------------------------------------------------------
# each rewrite, in the spellings people use

# (id, function of x, the op it must become, ops that must be gone)
PATTERNS: list[tuple[str, Callable[[Any], Any], Op, set[Op]]] = [
    ("log(1+exp(x))", lambda x: np.log(1 + np.exp(x)), Op.SOFTPLUS, {Op.LOG, Op.EXP}),
    ("log(exp(x)+1.0)", lambda x: np.log(np.exp(x) + 1.0), Op.SOFTPLUS, {Op.LOG, Op.EXP}),
    ("log1p(exp(x))", lambda x: np.log1p(np.exp(x)), Op.SOFTPLUS, {Op.LOG1P, Op.EXP}),
    ("log(1+x)", lambda x: np.log(1 + x), Op.LOG1P, {Op.LOG, Op.ADD}),
    ("log(x+1)", lambda x: np.log(x + 1.0), Op.LOG1P, {Op.LOG, Op.ADD}),
    ("log(1-x)", lambda x: np.log(1 - x), Op.LOG1P, {Op.LOG, Op.SUB}),
    ("exp(x)-1", lambda x: np.exp(x) - 1, Op.EXPM1, {Op.EXP, Op.SUB}),
    ("exp(x)+(-1)", lambda x: np.exp(x) + (-1.0), Op.EXPM1, {Op.EXP, Op.ADD}),
    ("-1+exp(x)", lambda x: -1 + np.exp(x), Op.EXPM1, {Op.EXP, Op.ADD}),
    ("1/(1+exp(-x))", lambda x: 1 / (1 + np.exp(-x)), Op.SIGMOID, {Op.EXP, Op.DIV}),
    ("1.0/(exp(-x)+1)", lambda x: 1.0 / (np.exp(-x) + 1), Op.SIGMOID, {Op.EXP, Op.DIV}),
    ("1/(1+exp(0-x))", lambda x: 1 / (1 + np.exp(0 - x)), Op.SIGMOID, {Op.EXP, Op.DIV, Op.SUB}),
    ("1/(1+exp((-1)*x))", lambda x: 1 / (1 + np.exp((-1) * x)), Op.SIGMOID, {Op.EXP, Op.DIV, Op.MUL}),
    ("1/(1+exp(x*-1))", lambda x: 1 / (1 + np.exp(x * -1.0)), Op.SIGMOID, {Op.EXP, Op.DIV, Op.MUL}),
    ("1/(1+exp(x))", lambda x: 1 / (1 + np.exp(x)), Op.SIGMOID, {Op.EXP, Op.DIV}),  # = sigmoid(-x)
    ("exp(x)/(1+exp(x))", lambda x: np.exp(x) / (1 + np.exp(x)), Op.SIGMOID, {Op.EXP, Op.DIV}),
    ("(1+exp(-x))**-1", lambda x: (1 + np.exp(-x)) ** -1, Op.SIGMOID, {Op.EXP, Op.POW}),
    ("log(sigmoid(x))", lambda x: np.log(diffc.sigmoid(x)), Op.SOFTPLUS, {Op.LOG, Op.SIGMOID}),
    ("log(1-sigmoid(x))", lambda x: np.log(1 - diffc.sigmoid(x)), Op.SOFTPLUS, {Op.LOG, Op.SIGMOID}),
    ("log(1/(1+exp(-x)))", lambda x: np.log(1 / (1 + np.exp(-x))), Op.SOFTPLUS, {Op.LOG, Op.EXP, Op.SIGMOID}),
    ("log(1-1/(1+exp(-x)))", lambda x: np.log(1 - 1 / (1 + np.exp(-x))), Op.SOFTPLUS, {Op.LOG, Op.EXP}),
    ("log(sum(exp(x)))", lambda x: np.log(np.sum(np.exp(x))), Op.LOGSUMEXP, {Op.LOG, Op.EXP, Op.SUM}),
    ("log(exp(x).sum())", lambda x: np.log(np.exp(x).sum()), Op.LOGSUMEXP, {Op.LOG, Op.EXP, Op.SUM}),
    ("exp(x)/sum(exp(x))", lambda x: np.exp(x) / np.sum(np.exp(x)), Op.SOFTMAX, {Op.EXP, Op.DIV, Op.SUM}),
    ("exp(x-max(x))/sum(...)", lambda x: np.exp(x - np.max(x)) / np.sum(np.exp(x - np.max(x))), Op.SOFTMAX,
     {Op.EXP, Op.DIV, Op.SUM, Op.AMAX}),
    ("log(softmax(x))", lambda x: np.log(diffc.softmax(x)), Op.LOG_SOFTMAX, {Op.LOG, Op.SOFTMAX}),
    ("log(exp(x)/sum(exp(x)))", lambda x: np.log(np.exp(x) / np.sum(np.exp(x))), Op.LOG_SOFTMAX,
     {Op.LOG, Op.EXP, Op.DIV, Op.SUM}),
]


@pytest.mark.parametrize(("name", "fn", "op", "gone"), PATTERNS, ids=[p[0] for p in PATTERNS])
def test_pattern_becomes_the_stable_op(name: str, fn: Callable[[Any], Any], op: Op, gone: set[Op]) -> None:
    program = stabilize(traced(fn, X))
    assert op in ops_of(program), program.text()
    assert not (gone & ops_of(program)), program.text()


@pytest.mark.parametrize(("name", "fn", "op", "gone"), PATTERNS, ids=[p[0] for p in PATTERNS])
def test_rewritten_value_and_gradient_equal_the_written_formula(name: str, fn: Callable[[Any], Any], op: Op,
                                                               gone: set[Op]) -> None:
    """Where the written formula is well-conditioned, the rewrite changes nothing but rounding."""
    x = np.array([-0.7, -0.2, 0.05, 0.3, 0.6])  # inside the domain of log(1 - x) and log(1 + x)

    def f(x: Any) -> Any:
        return np.sum(np.sin(fn(x)))

    compiled = diffc.compile(f, args={"x": "f64[n]"}, wrt="x", backend="numpy")
    value, grad = compiled.value_and_grad(x)
    assert value == pytest.approx(float(f(x)), rel=1e-13, abs=1e-15)
    assert_close(grad, numeric_grad(f, [x])[0], rtol=1e-7, atol=1e-9)


def test_softmax_over_an_axis_with_keepdims_and_the_max_shift() -> None:
    def f(x: Any) -> Any:
        m = np.max(x, axis=1, keepdims=True)
        e = np.exp(x - m)
        return e / np.sum(e, axis=1, keepdims=True)

    out = stabilize(traced(f, M)).outputs[0]
    assert out.op is Op.SOFTMAX and out.attr("axis") == (1,) and out.inputs[0].op is Op.INPUT


def test_softmax_shifted_by_the_global_max_or_a_constant() -> None:
    """Any shift that is constant along the softmax axis cancels: max over all axes, or a number."""
    for shift in (lambda x: np.max(x), lambda x: 3.0):
        def f(x: Any, shift: Any = shift) -> Any:
            e = np.exp(x - shift(x))
            return e / np.sum(e, axis=0, keepdims=True)

        out = stabilize(traced(f, M)).outputs[0]
        assert out.op is Op.SOFTMAX and out.attr("axis") == (0,) and out.inputs[0].op is Op.INPUT


def test_softmax_is_not_matched_when_the_shift_varies_along_the_axis() -> None:
    """exp(x - max(x, axis=0)) / sum(..., axis=1) is NOT a softmax of x (the shift differs along axis 1)."""
    def f(x: Any) -> Any:
        e = np.exp(x - np.max(x, axis=0, keepdims=True))
        return e / np.sum(e, axis=1, keepdims=True)

    out = stabilize(traced(f, M)).outputs[0]
    assert out.op is Op.SOFTMAX and out.inputs[0].op is Op.SUB  # softmax of the shifted value: still right
    compiled = diffc.compile(lambda x: np.sum(f(x) * x), args={"x": "f64[m,n]"}, wrt="x", backend="numpy")
    x = np.random.default_rng(0).normal(size=(3, 4))
    assert compiled(x) == pytest.approx(float(np.sum(f(x) * x)), rel=1e-14)


def test_a_sum_without_keepdims_over_a_trailing_axis_is_not_a_softmax() -> None:
    """exp(x) / sum(exp(x), axis=1) broadcasts the row sums along the wrong axis (for a square x): not matched."""
    program = stabilize(traced(lambda x: np.exp(x) / np.sum(np.exp(x), axis=1), ("x", DType.F64, (3, 3))))
    assert Op.SOFTMAX not in ops_of(program)
    program = stabilize(traced(lambda x: np.exp(x) / np.sum(np.exp(x), axis=0), ("x", DType.F64, (3, 3))))
    assert Op.SOFTMAX in ops_of(program)  # leading axes broadcast back correctly


def test_log_sum_exp_keeps_axis_and_keepdims() -> None:
    out = stabilize(traced(lambda x: np.log(np.sum(np.exp(x), axis=-1, keepdims=True)), M)).outputs[0]
    assert out.op is Op.LOGSUMEXP and out.attr("axis") == (1,) and out.attr("keepdims") is True


def test_log_of_one_minus_sigmoid_in_its_other_spellings() -> None:
    for fn in (lambda x: np.log(1 + (-diffc.sigmoid(x))), lambda x: np.log(-diffc.sigmoid(x) + 1)):
        program = stabilize(traced(fn, X))
        assert ops_of(program) >= {Op.SOFTPLUS} and Op.SIGMOID not in ops_of(program), program.text()


def test_nothing_to_stabilize_returns_the_same_program() -> None:
    program = traced(lambda x: np.sum(np.log(x) * np.exp(x) - 1.5), X)
    assert stabilize(program) is program


def test_every_rewrite_has_a_docstring_stating_its_identity() -> None:
    for rewrites in REWRITES.values():
        for rewrite in rewrites:
            assert rewrite.__doc__ and "=" in rewrite.__doc__, rewrite.__name__


def test_the_text_and_sympy_front_ends_are_stabilized_too() -> None:
    f = diffc.compile("log(1 + exp(x))", backend="numpy")
    assert "softplus" in f.ir and f.value_and_grad(800.0) == (800.0, 1.0)
    x = sp.Symbol("x", real=True)
    g = diffc.compile(sp.log(1 + sp.exp(x)), backend="numpy")
    assert "softplus" in g.ir and g.value_and_grad(800.0) == (800.0, 1.0)
    assert Op.SOFTPLUS in ops_of(stabilize(parse_text("log(exp(x) + 1)")))


# ---------------------------------------------------------------------------
# extreme inputs: finite and exact


@pytest.mark.parametrize("x", [100.0, 800.0, 1e300, -100.0, -800.0])
def test_log_one_plus_exp_at_extremes(x: float) -> None:
    """JAX gives a NaN gradient at x = 100 (float32 exp overflows); here value and gradient are exact."""
    f = diffc.compile(lambda x: np.log(1 + np.exp(x)), args={"x": "f64"}, wrt="x", backend="numpy")
    value, grad = f.value_and_grad(x)
    # exact: softplus(x) = x + log1p(exp(-x)) and its slope sigmoid(x), computed by hand
    want = x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))
    slope = 1 / (1 + math.exp(-x)) if x > -700 else math.exp(x)
    assert value == pytest.approx(want, rel=1e-15, abs=0)
    assert grad == pytest.approx(slope, rel=1e-15, abs=0)
    if x == 100.0:
        assert (value, grad) == (100.0, 1.0)


def naive_logistic(w: Any, X: Any, y: Any) -> Any:  # noqa: N803 - the notes' names
    """The seed's logistic regression loss, written the naive way."""
    z = X @ w
    a = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def exact_logistic(w: Any, X: Any, y: Any) -> tuple[float, Any]:  # noqa: N803
    """By hand: -log a = softplus(-z), -log(1 - a) = softplus(z); d/dz = sigmoid(z) - y, both stable."""
    z = X @ w
    softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))              # softplus(z)
    softplus_neg = np.maximum(-z, 0) + np.log1p(np.exp(-np.abs(z)))         # softplus(-z)
    sigmoid = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    value = np.mean(y * softplus_neg + (1 - y) * softplus)
    return float(value), X.T @ (sigmoid - y) / len(y)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_naive_logistic_regression_at_z_800(backend: str) -> None:
    """z = ±800 with the wrong label: the naive formula computes log(0) = -inf and NaN gradients."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -0.5]])  # noqa: N806
    w = np.array([800.0, -800.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])  # z = (800, -800, 0, 800): two confident mistakes
    with np.errstate(all="ignore"):
        assert not np.isfinite(naive_logistic(w, X, y))
    f = diffc.compile(naive_logistic, args={"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, wrt="w",
                      backend=backend)
    value, grad = f.value_and_grad(w, X, y)
    want_value, want_grad = exact_logistic(w, X, y)
    assert value == pytest.approx(want_value, rel=1e-15)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-15)
    assert np.all(np.isfinite(grad))


def test_naive_logistic_regression_matches_at_moderate_z() -> None:
    rng = np.random.default_rng(1)
    X, w = rng.normal(size=(20, 3)), rng.normal(size=3)  # noqa: N806
    y = (rng.random(20) > 0.5).astype(float)
    f = diffc.compile(naive_logistic, args={"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, wrt="w",
                      backend="numpy")
    value, grad = f.value_and_grad(w, X, y)
    assert value == pytest.approx(naive_logistic(w, X, y), rel=1e-14)
    np.testing.assert_allclose(grad, exact_logistic(w, X, y)[1], rtol=1e-13)
    np.testing.assert_allclose(grad, numeric_grad(lambda v: naive_logistic(v, X, y), [w])[0], rtol=1e-7)


def test_softmax_cross_entropy_with_huge_logits() -> None:
    """-sum(y * log(exp(z) / sum(exp(z)))) at logits ~1000: exp overflows; log_softmax does not."""
    def loss(z: Any, y: Any) -> Any:
        p = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)
        return -np.sum(y * np.log(p))

    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 999.0, 1000.0]])
    y = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    f = diffc.compile(loss, args={"z": "f64[m,k]", "y": "f64[m,k]"}, wrt="z", backend="numpy")
    value, grad = f.value_and_grad(z, y)
    # by hand: row 1 log p = -1000; row 2 log p = 999 - (1000 + log1p(e^-1))
    assert value == pytest.approx(1000.0 + 1.0 + math.log1p(math.exp(-1.0)), rel=1e-15)
    p2 = np.array([0.0, math.exp(-1.0), 1.0]) / (1.0 + math.exp(-1.0))
    np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0], p2 - y[1]], rtol=1e-15, atol=1e-300)


def test_expm1_and_log1p_are_exact_for_tiny_arguments() -> None:
    f = diffc.compile(lambda x: np.exp(x) - 1.0, args={"x": "f64"}, backend="numpy")
    g = diffc.compile(lambda x: np.log(1.0 + x), args={"x": "f64"}, backend="numpy")
    assert f(1e-12) == math.expm1(1e-12) and f(1e-12) != math.exp(1e-12) - 1.0
    assert g(1e-12) == math.log1p(1e-12) and g(1e-12) != math.log(1.0 + 1e-12)
    assert f.grad(1e-12) == math.exp(1e-12)


def test_sigmoid_written_out_at_extremes_has_exact_gradient() -> None:
    f = diffc.compile(lambda z: 1 / (1 + np.exp(-z)), args={"z": "f64"}, wrt="z", backend="numpy")
    assert f.value_and_grad(-800.0) == (0.0, 0.0)
    value, grad = f.value_and_grad(-40.0)
    assert value == pytest.approx(math.exp(-40.0) / (1 + math.exp(-40.0)), rel=1e-15)
    assert grad == pytest.approx(math.exp(-40.0) / (1 + math.exp(-40.0)) ** 2, rel=1e-14)
    assert f.value_and_grad(800.0) == (1.0, 0.0)


def test_the_gradient_is_derived_from_the_stable_form() -> None:
    """Reverse mode sees softplus, so the gradient program has sigmoid, not exp(x) / (1 + exp(x))."""
    f = diffc.compile(lambda x: np.sum(np.log(1 + np.exp(x))), args={"x": "f64[n]"}, backend="numpy")
    assert "sigmoid" in f.grad_ir and " exp " not in f.grad_ir and " div " not in f.grad_ir
