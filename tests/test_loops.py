"""Loops and branches as written (diffc/frontends/control.py): the lecture notes' loop, ifs on traced values.

The references are independent of the rewrite: the vectorized form written
with NumPy (its value and diffc's gradient of it, itself checked against
central differences elsewhere), central differences of the loop function run
by NumPy itself, and hand-derived formulas. The Numba back end runs as plain
Python (tests/plain_numba.py) for breadth; one test compiles the notes' loop
with real Numba.
"""

# ruff: noqa: N803, N806  (X, W: the notes' notation)
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from conftest import assert_close, check_grad, numeric_grad
from plain_numba import call_plain, load_compiled

import diffc
from diffc.errors import DiffcError, TraceError
from diffc.frontends.control import UNROLL_LIMIT, rewrite
from diffc.frontends.trace import trace
from diffc.ir import Program, parse_type

rng = np.random.default_rng(14)
TYPES = {"w": "f64[n]", "b": "f64", "x": "f64[m,n]", "y": "f64[m]"}


def sigmoid(z: Any) -> Any:
    return 1 / (1 + np.exp(-z))


# ---------------------------------------------------------------------------
# the notes' code, written out as runnable Python


def notes_loop(w, b, x, y):
    """The notes' loop over m examples and n features, with its hand-written gradient loop."""
    m, n = x.shape
    z = np.zeros(m)
    a = np.zeros(m)
    dz = np.zeros(m)
    J = 0.0
    dw = np.zeros(n)
    db = 0.0
    for i in range(m):
        z[i] = np.dot(w, x[i]) + b
        a[i] = sigmoid(z[i])
        J = J + (-(y[i] * np.log(a[i]) + (1 - y[i]) * np.log(1 - a[i])))
        dz[i] = a[i] - y[i]
        for j in range(n):
            dw[j] = dw[j] + x[i][j] * dz[i]
        db = db + dz[i]
    J = J / m
    dw = dw / m
    db = db / m
    return J, dw, db


def notes_forward(w, b, x, y):
    """The same loop with the hand-written gradient removed: diffc computes dw and db."""
    m, n = x.shape
    z = np.zeros(m)
    a = np.zeros(m)
    J = 0.0
    for i in range(m):
        z[i] = np.dot(w, x[i]) + b
        a[i] = sigmoid(z[i])
        J = J + (-(y[i] * np.log(a[i]) + (1 - y[i]) * np.log(1 - a[i])))
    return J / m


def vectorized(w, b, x, y):
    """The loop's vectorized form: the m examples are the rows of x."""
    m = x.shape[0]
    z = x @ w + b
    a = sigmoid(z)
    J = np.sum(-(y * np.log(a) + (1 - y) * np.log(1 - a)))
    return J / m


def hand_gradient(w, b, x, y):
    """dw = xᵀ(a − y)/m, db = mean(a − y): the notes' vectorized gradient."""
    a = sigmoid(x @ w + b)
    return x.T @ (a - y) / x.shape[0], np.mean(a - y)


def logistic_data(m: int = 9, n: int = 4) -> tuple[Any, ...]:
    x = rng.normal(size=(m, n))
    return rng.normal(size=n), 0.3, x, (rng.random(m) < 0.5).astype(np.float64)


def plain_numba(fn: Any, types: dict[str, str], wrt: Any) -> dict[str, Any]:
    """The Numba back end's module for ``fn`` run as plain Python."""
    return load_compiled(diffc.compile(fn, args=types, wrt=wrt))


class PlainNumba:
    """The Numba back end's standalone module run as plain Python, called like a diffc.Compiled."""

    def __init__(self, fn: Any, types: dict[str, str], wrt: Any = None) -> None:
        self.namespace = plain_numba(fn, types, wrt)

    def __call__(self, *args: Any) -> Any:
        return call_plain(self.namespace["forward"], *args)

    def value_and_grad(self, *args: Any) -> Any:
        return call_plain(self.namespace["value_and_grad"], *args)

    def grad(self, *args: Any) -> Any:
        return call_plain(self.namespace["grad"], *args)


def compiled_on(backend: str, fn: Any, types: dict[str, str], wrt: Any = None) -> Any:
    """diffc.compile on the NumPy back end, or the Numba back end's text run as Python."""
    if backend == "numpy":
        return diffc.compile(fn, args=types, wrt=wrt, backend="numpy")
    return PlainNumba(fn, types, wrt)


BOTH = pytest.mark.parametrize("backend", ["numpy", "numba-plain"])


def value_and_grad_both(fn: Any, types: dict[str, str], wrt: Any, args: tuple[Any, ...]) -> list[Any]:
    """(value, grads) from the NumPy back end and from the Numba back end's text run as Python."""
    numpy_result = diffc.compile(fn, args=types, wrt=wrt, backend="numpy").value_and_grad(*args)
    numba_result = call_plain(plain_numba(fn, types, wrt)["value_and_grad"], *args)
    return [numpy_result, numba_result]


def notes_outputs(backend: str) -> list[Any]:
    """The notes' loop traced once; each of its outputs J, dw, db compiled alone.

    (A compiled function with several outputs returns its first from f(...), so
    each output becomes its own program over the same graph.)
    """
    params = [(name, *parse_type(text)) for name, text in TYPES.items()]
    program = trace(notes_loop, params)
    out = []
    for node in program.outputs:
        compiled = diffc.compile(Program(program.graph, program.inputs, [node], ["out"], "notes_loop"), wrt=(),
                                 backend="numpy" if backend == "numpy" else "numba")
        out.append(compiled if backend == "numpy" else functools.partial(
            call_plain, load_compiled(compiled)["forward"]))
    return out


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_the_notes_loop_gives_the_vectorized_cost_and_gradient(backend: str) -> None:
    args = logistic_data()
    J, dw, db = (f(*args) for f in notes_outputs(backend))
    want_dw, want_db = hand_gradient(*args)
    assert_close(J, vectorized(*args), rtol=1e-12, atol=1e-12, what="J")
    assert_close(dw, want_dw, rtol=1e-12, atol=1e-12, what="dw")
    assert_close(db, want_db, rtol=1e-12, atol=1e-12, what="db")


def test_the_notes_loop_runs_as_python_on_lists() -> None:
    """The rewritten function is still the user's function: on Python values it runs as written."""
    w, b, x, y = logistic_data(5, 3)
    rewritten = rewrite(notes_loop)
    assert rewritten is not notes_loop
    for got, want in zip(rewritten(w, b, x, y), notes_loop(w, b, x, y), strict=True):
        assert_close(got, want, rtol=1e-14, atol=1e-14)
    assert_close(notes_loop(w, b, x, y)[1], hand_gradient(w, b, x, y)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_the_forward_loop_gradient_is_the_vectorized_one(backend: str) -> None:
    args = logistic_data()
    if backend == "numpy":
        value, (dw, db) = diffc.compile(notes_forward, args=TYPES, wrt=("w", "b"), backend="numpy").value_and_grad(
            *args)
    else:
        value, (dw, db) = call_plain(plain_numba(notes_forward, TYPES, ("w", "b"))["value_and_grad"], *args)
    want_dw, want_db = hand_gradient(*args)
    assert_close(value, vectorized(*args), rtol=1e-12, atol=1e-12, what="J")
    assert_close(dw, want_dw, rtol=1e-12, atol=1e-12, what="dw")
    assert_close(db, want_db, rtol=1e-12, atol=1e-12, what="db")


def test_the_forward_loop_against_central_differences() -> None:
    args = logistic_data(6, 3)
    check_grad(diffc.compile(notes_forward, args=TYPES, wrt=("w", "b"), backend="numpy"), args, wrt=(0, 1),
               f=lambda *a: vectorized(*a))


def _body(text: str) -> list[str]:
    """A program's lines without the signature line and the output's name."""
    lines = text.strip().splitlines()[1:]
    return lines[:-1] + [lines[-1].split("=")[-1]]


def test_the_loop_and_the_vectorized_form_are_one_graph_and_one_kernel() -> None:
    loop = diffc.compile(notes_forward, args=TYPES, wrt=("w", "b"))
    vector = diffc.compile(vectorized, args=TYPES, wrt=("w", "b"))
    assert _body(loop.ir) == _body(vector.ir)
    assert _body(loop.grad_ir) == _body(vector.grad_ir)
    loop.annotate = vector.annotate = False  # the comments quote each function's own lines
    assert loop.grad_source.replace("notes_forward", "vectorized") == vector.grad_source


def count_by_len(w, b, x, y):
    J = 0.0
    for i in range(len(y)):
        J -= y[i] * np.log(sigmoid(np.dot(w, x[i]) + b))
    return J / x.shape[0]


def count_by_shape(w, b, x, y):
    J = 0.0
    for i in range(x.shape[0]):
        J -= y[i] * np.log(sigmoid(np.dot(w, x[i]) + b))
    return J / x.shape[0]


def count_by_name(w, b, x, y):
    m, n = x.shape
    J = 0.0
    for i in range(m):
        J -= y[i] * np.log(sigmoid(np.dot(w, x[i]) + b))
    return J / m


@pytest.mark.parametrize("cost", [count_by_len, count_by_shape, count_by_name])
def test_the_trip_count_may_be_any_size(cost: Any) -> None:
    """range(len(y)), range(x.shape[0]), range(m): one symbolic version serves every size."""
    compiled = diffc.compile(cost, wrt=("w", "b"), backend="numpy")
    for m in (4, 7):
        w, b, x, y = logistic_data(m, 3)

        def reference(w: Any, b: Any, x: Any = x, y: Any = y) -> Any:
            return -np.mean(y * np.log(sigmoid(x @ w + b)))

        value, grads = compiled.value_and_grad(w, b, x, y)
        assert_close(value, reference(w, b), rtol=1e-12, atol=1e-12)
        for got, want in zip(grads, numeric_grad(reference, [w, b]), strict=True):
            assert_close(got, want, rtol=1e-6, atol=1e-8)
    assert compiled.stats["sizes"] == "symbolic"


@pytest.mark.slow  # about 9 s of Numba compiling; the plain-Python twin above runs by default
def test_the_notes_loop_with_real_numba() -> None:
    args = logistic_data(40, 5)
    compiled = diffc.compile(notes_forward, args=TYPES, wrt=("w", "b"))
    value, (dw, db) = compiled.value_and_grad(*args)
    assert "fallback" not in compiled.stats
    want_dw, want_db = hand_gradient(*args)
    assert_close(value, vectorized(*args), rtol=1e-12, atol=1e-12)
    assert_close(dw, want_dw, rtol=1e-12, atol=1e-12)
    assert_close(db, want_db, rtol=1e-12, atol=1e-12)


@pytest.mark.slow  # a few seconds of Numba compiling; the plain-Python twins run by default
def test_a_branch_in_a_loop_with_real_numba() -> None:
    m, n = 50, 3
    X, w = rng.normal(size=(m, n)), rng.normal(size=n)
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    compiled = diffc.compile(hinge, args={"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, wrt="w")
    value, grad = compiled.value_and_grad(w, X, y)
    assert "fallback" not in compiled.stats
    margin = y * (X @ w)
    assert_close(value, np.mean(np.maximum(0.0, 1 - margin)) + 0.01 * np.sum(w * w), rtol=1e-12, atol=1e-12)
    assert_close(grad, -(X.T @ (y * (margin < 1))) / m + 0.02 * w, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# other loops: X[i, j] accumulators, rows times a matrix, carried arrays


def feature_loop(w, X, y):
    """dw[j]-style accumulation over X[i, j], and an accumulator of a vector."""
    m, n = X.shape
    J = 0.0
    for i in range(m):
        s = 0.0
        for j in range(n):
            s += w[j] * X[i, j]
        J += (s - y[i]) ** 2
    return J / m


def rows_times_matrix(W, X, Y):
    """A loop over the rows of X calling np.dot(W, x[i])."""
    m = X.shape[0]
    J = 0.0
    for i in range(m):
        h = np.tanh(np.dot(W, X[i]))
        J += np.sum((h - Y[i]) ** 2)
    return J / m


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_an_inner_accumulator_and_x_ij(backend: str) -> None:
    m, n = 7, 3
    X, y, w = rng.normal(size=(m, n)), rng.normal(size=m), rng.normal(size=n)
    types = {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}
    value, grad = value_and_grad_both(feature_loop, types, "w", (w, X, y))[backend == "numba-plain"]
    assert_close(value, np.mean((X @ w - y) ** 2), rtol=1e-12, atol=1e-12)
    assert_close(grad, 2 * X.T @ (X @ w - y) / m, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_rows_times_a_matrix(backend: str) -> None:
    m, n, k = 6, 4, 3
    W, X, Y = rng.normal(size=(k, n)), rng.normal(size=(m, n)), rng.normal(size=(m, k))
    types = {"W": "f64[k,n]", "X": "f64[m,n]", "Y": "f64[m,k]"}
    value, grad = value_and_grad_both(rows_times_matrix, types, "W", (W, X, Y))[backend == "numba-plain"]

    def reference(W):
        return np.mean(np.sum((np.tanh(X @ W.T) - Y) ** 2, axis=1))

    assert_close(value, reference(W), rtol=1e-12, atol=1e-12)
    assert_close(grad, numeric_grad(reference, [W])[0], rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# branches


def hinge(w, X, y):
    """Hinge loss written with `if margin < 1:` inside the loop over examples."""
    m = X.shape[0]
    J = 0.0
    for i in range(m):
        margin = y[i] * np.dot(w, X[i])
        if margin < 1:
            J += 1 - margin
    return J / m + 0.01 * np.sum(w * w)


def relu_loop(W, b, X):
    """A ReLU written with `if h > 0:` over examples and units."""
    m, k = X.shape[0], W.shape[0]
    total = 0.0
    for i in range(m):
        for j in range(k):
            h = np.dot(W[j], X[i]) + b[j]
            if h > 0:  # noqa: SIM108 - the if is the point
                r = h
            else:
                r = 0.0
            total += r * r
    return total / m


def piecewise(x):
    """A scalar if/elif/else on a traced value."""
    if x > 1.0:
        y = x ** 2
    elif x > -1.0:
        y = 2.0 * x - 1.0
    else:
        y = -3.0 + 0.0 * x
    return y


def _guarded(x):
    """The branch not taken would give a NaN gradient (sqrt at a negative number): it gets an exact zero."""
    t = np.sum(x)
    y = np.sqrt(t) if t > 0 else 0.0 * t
    return y


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_hinge_with_an_if(backend: str) -> None:
    m, n = 12, 3
    X, w = rng.normal(size=(m, n)), rng.normal(size=n)
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    types = {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}
    value, grad = value_and_grad_both(hinge, types, "w", (w, X, y))[backend == "numba-plain"]

    def reference(w):
        return np.mean(np.maximum(0.0, 1 - y * (X @ w))) + 0.01 * np.sum(w * w)

    assert_close(value, reference(w), rtol=1e-12, atol=1e-12)
    assert_close(grad, numeric_grad(reference, [w])[0], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_relu_with_an_if(backend: str) -> None:
    m, n, k = 5, 3, 4
    W, b, X = rng.normal(size=(k, n)), rng.normal(size=k), rng.normal(size=(m, n))
    types = {"W": "f64[k,n]", "b": "f64[k]", "X": "f64[m,n]"}
    value, grads = value_and_grad_both(relu_loop, types, ("W", "b"), (W, b, X))[backend == "numba-plain"]

    def reference(W, b):
        return np.sum(np.maximum(X @ W.T + b, 0.0) ** 2) / m

    assert_close(value, reference(W, b), rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, numeric_grad(reference, [W, b]), strict=True):
        assert_close(got, want, rtol=1e-6, atol=1e-8)


@BOTH
@pytest.mark.parametrize("x", [2.5, 0.3, -2.0])
def test_if_elif_else_on_a_scalar(x: float, backend: str) -> None:
    compiled = compiled_on(backend, piecewise, {"x": "f64"})
    assert compiled(x) == pytest.approx(piecewise(x), rel=1e-14)
    assert compiled.grad(x) == pytest.approx(numeric_grad(piecewise, [x])[0], rel=1e-6, abs=1e-9)


@BOTH
def test_the_branch_not_taken_gets_an_exact_zero(backend: str) -> None:
    compiled = compiled_on(backend, _guarded, {"x": "f64[n]"})
    x = np.array([-1.0, -2.0, 0.5])
    grad = compiled.grad(x)
    assert np.all(grad == 0.0)
    x = np.array([1.0, 2.0, 1.0])
    assert_close(compiled.grad(x), numeric_grad(_guarded, [x])[0], rtol=1e-6, atol=1e-9)


def test_an_if_on_python_values_stays_python() -> None:
    def f(x, power=2):
        if power == 2:  # noqa: SIM108 - the if is the point
            y = x * x
        else:
            y = x ** power
        return np.sum(y) if x.ndim == 1 else y

    compiled = diffc.compile(f, backend="numpy")
    x = rng.normal(size=4)
    assert_close(compiled.grad(x), 2 * x, rtol=1e-14, atol=0)
    assert "where" not in compiled.ir


# ---------------------------------------------------------------------------
# outside the form: unrolled when short, refused with the line when long


def carried(x):
    m = x.shape[0]
    J = 0.0
    for i in range(m):
        J = 0.5 * J + x[i] ** 2
    return J


def breaks(x):
    m = x.shape[0]
    J = 0.0
    for i in range(m):
        J += x[i] ** 2
        if m > 1000:
            break
    return J


def test_a_loop_outside_the_form_unrolls_when_short() -> None:
    x = rng.normal(size=5)
    compiled = diffc.compile(carried, backend="numpy")
    check_grad(compiled, [x], f=carried)
    assert compiled.stats["sizes"].startswith("specialised on the call's sizes")
    assert "J is read inside the loop at line" in compiled.stats["sizes"]


CARRIED_WHY = r"J is read inside the loop at line \d+ before the body assigns it.*only \+= updates"


@pytest.mark.parametrize(("fn", "why"), [(carried, CARRIED_WHY), (breaks, "break inside the loop at line")])
def test_a_long_loop_outside_the_form_names_its_line(fn: Any, why: str) -> None:
    compiled = diffc.compile(fn, backend="numpy")
    with pytest.raises(TraceError, match=why) as info:
        compiled(np.ones(UNROLL_LIMIT + 1))
    assert "test_loops.py, line" in str(info.value)
    assert isinstance(info.value, DiffcError)


def one_branch_only(x):
    if np.sum(x) > 0:
        y = x * 2.0
    return np.sum(y)


def returns_in_a_branch(x):
    if x > 0:
        return x
    return -x


def test_a_name_assigned_in_one_branch_only_must_exist() -> None:
    with pytest.raises(TraceError, match=r"y is assigned only in the then branch of the if at line \d+") as info:
        diffc.compile(one_branch_only, args={"x": "f64[n]"}, backend="numpy").source  # noqa: B018
    assert "test_loops.py, line" in str(info.value)


def test_a_return_in_a_traced_branch_is_refused_with_a_hint() -> None:
    with pytest.raises(TraceError, match=r"`if` on a traced value \(line \d+\) whose branch ends in `return`"):
        diffc.compile(returns_in_a_branch, args={"x": "f64"}, backend="numpy").source  # noqa: B018


def test_functions_without_loops_or_source_are_traced_as_before() -> None:
    def plain(x):
        return np.sum(x * x)

    assert rewrite(plain) is plain  # (no loop, no if, no call of a function by name)
    square = lambda x: np.sum(x * x)  # noqa: E731
    assert rewrite(square) is square
    assert rewrite(np.sum) is np.sum


# ---------------------------------------------------------------------------
# more spellings: the tutorial's loop, a conditional expression, concrete sizes


def tutorial_loop(w, b, X, y):
    """docs/tutorial.md's loop_gradient: tuple assignment, w @ X[i], X[i, j], += on names and entries."""
    m, n = X.shape
    J, dw, db = 0.0, np.zeros(n), 0.0
    for i in range(m):
        z = w @ X[i] + b
        a = 1 / (1 + np.exp(-z))
        J += -(y[i] * np.log(a) + (1 - y[i]) * np.log(1 - a))
        dz = a - y[i]
        for j in range(n):
            dw[j] += X[i, j] * dz
        db += dz
    return J / m, dw / m, db / m


def hinge_expression(w, X, y):
    """The hinge loss with a conditional expression in the loop."""
    J = 0.0
    for i in range(X.shape[0]):
        margin = y[i] * (X[i] @ w)
        J += (1 - margin) if margin < 1 else 0.0
    return J / X.shape[0]


def test_the_tutorial_loop_traces_to_the_vectorized_outputs() -> None:
    w, b, x, y = logistic_data(8, 3)
    params = [(name, *parse_type(text)) for name, text in {"w": "f64[n]", "b": "f64", "X": "f64[m,n]",
                                                            "y": "f64[m]"}.items()]
    program = trace(tutorial_loop, params)
    values = [diffc.compile(Program(program.graph, program.inputs, [node], ["out"], "tutorial_loop"), wrt=(),
                            backend="numpy")(w, b, x, y) for node in program.outputs]
    want_dw, want_db = hand_gradient(w, b, x, y)
    for got, want in zip(values, (vectorized(w, b, x, y), want_dw, want_db), strict=True):
        assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_a_conditional_expression_in_the_loop(backend: str) -> None:
    m, n = 10, 3
    X, w = rng.normal(size=(m, n)), rng.normal(size=n)
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    types = {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}
    value, grad = value_and_grad_both(hinge_expression, types, "w", (w, X, y))[backend == "numba-plain"]

    def reference(w):
        return np.mean(np.maximum(0.0, 1 - y * (X @ w)))

    assert_close(value, reference(w), rtol=1e-12, atol=1e-12)
    assert_close(grad, numeric_grad(reference, [w])[0], rtol=1e-6, atol=1e-8)


def test_declared_concrete_sizes_give_the_same_map_reduce() -> None:
    """With f64[9,4] the loop counts are ints and np.zeros(m) a NumPy array: still one pass, no unrolling."""
    args = logistic_data(9, 4)
    compiled = diffc.compile(notes_forward, args={"w": "f64[4]", "b": "f64", "x": "f64[9,4]", "y": "f64[9]"},
                             wrt=("w", "b"), backend="numpy")
    value, (dw, db) = compiled.value_and_grad(*args)
    want_dw, want_db = hand_gradient(*args)
    assert_close(value, vectorized(*args), rtol=1e-12, atol=1e-12)
    assert_close(dw, want_dw, rtol=1e-12, atol=1e-12)
    assert compiled.ir.count("matmul") == 1  # the rows in one product, not 9 slices


def unbound_in_a_loop_branch(x):
    total = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0:
            r = x[i]
        total += r
    return total


def test_a_name_assigned_in_one_branch_inside_a_loop_names_the_if() -> None:
    """r carries over from an earlier iteration when x[i] <= 0: outside the form; unrolled, the if refuses it."""
    compiled = diffc.compile(unbound_in_a_loop_branch, backend="numpy")
    with pytest.raises(TraceError, match=r"r is assigned only in the then branch of the if at line \d+"):
        compiled(np.ones(3))
    with pytest.raises(TraceError, match=r"r is read inside the loop at line \d+ before the body assigns it"):
        compiled(np.ones(UNROLL_LIMIT + 1))


def carried_by_both_loops(X, a):
    """J updated in the outer body and in the inner loop: each update summed over its own loops."""
    m, n = X.shape
    J = 1.0
    for i in range(m):
        J += a[i] ** 2
        for j in range(n):
            J += X[i, j] * a[i]
        J -= 0.5 * a[i]
    return J


def branches_over_two_axes(W, X):
    """An if/elif/else on one entry per (i, j), each branch changing the accumulator differently."""
    m, n = X.shape
    J = 0.0
    for i in range(m):
        for j in range(n):
            t = W[j] * X[i, j]
            if t > 0:
                J += t
            elif t > -0.5:
                J -= t * t
            else:
                J += 0.1
    return J


@BOTH
def test_an_accumulator_of_both_loops(backend: str) -> None:
    X, a = rng.normal(size=(4, 3)), rng.normal(size=4)

    def reference(X, a):
        return 1.0 + np.sum(a ** 2) + np.sum(X * a[:, None]) - 0.5 * np.sum(a)

    check_grad(compiled_on(backend, carried_by_both_loops, {"X": "f64[m,n]", "a": "f64[m]"}), [X, a], f=reference)


@BOTH
def test_branches_over_two_loop_axes(backend: str) -> None:
    W, X = rng.normal(size=3), rng.normal(size=(5, 3))

    def reference(W, X):
        t = W[None, :] * X
        return np.sum(np.where(t > 0, t, np.where(t > -0.5, -t * t, 0.1)))

    check_grad(compiled_on(backend, branches_over_two_axes, {"W": "f64[n]", "X": "f64[m,n]"}), [W, X], f=reference)


def last_iteration(x):
    """A body local after the loop holds its last iteration's value, as in Python."""
    J = 0.0
    for i in range(x.shape[0]):
        a = x[i] ** 2
        J += a
    return J + a * i


@BOTH
def test_a_body_local_after_the_loop_is_its_last_value(backend: str) -> None:
    x = rng.normal(size=5)
    compiled = compiled_on(backend, last_iteration, {"x": "f64[n]"})
    check_grad(compiled, [x], f=lambda x: np.sum(x ** 2) + x[-1] ** 2 * (len(x) - 1))


def kept_in_a_list(x):
    rows = []
    for i in range(x.shape[0]):
        a = x[i] ** 2
        rows.append(a)
    return rows[0] * 2.0


def test_a_per_iteration_value_kept_past_the_loop_is_refused() -> None:
    with pytest.raises(TraceError, match=r"computed inside the loop over i at line \d+ .* used after the loop"):
        diffc.compile(kept_in_a_list, args={"x": "f64[n]"}, backend="numpy").source  # noqa: B018


def over_a_list(W1, W2):
    params = [W1, W2]
    J = 0.0
    for k in range(len(params)):
        J += np.sum(params[k] ** 2)
    return J


def test_a_loop_over_a_python_list_unrolls_as_before() -> None:
    W1, W2 = rng.normal(size=(3, 2)), rng.normal(size=4)
    compiled = diffc.compile(over_a_list, backend="numpy")
    grads = compiled.grad(W1, W2)
    assert_close(grads[0], 2 * W1, rtol=1e-14, atol=0)
    assert_close(grads[1], 2 * W2, rtol=1e-14, atol=0)


def with_a_comprehension(w, b, x, y):
    """tests/test_models.py's loop: the dot product as a generator over j inside the loop over i."""
    m, n = x.shape
    cost = 0.0
    for i in range(m):
        z = sum(w[j] * x[i][j] for j in range(n)) + b
        a = sigmoid(z)
        cost += -(y[i] * np.log(a) + (1 - y[i]) * np.log(1 - a))
    return cost / m


def test_a_generator_inside_the_loop_body() -> None:
    args = logistic_data(6, 3)
    value, (dw, db) = diffc.compile(with_a_comprehension, wrt=("w", "b"), backend="numpy").value_and_grad(*args)
    want_dw, want_db = hand_gradient(*args)
    assert_close(value, vectorized(*args), rtol=1e-12, atol=1e-12)
    assert_close(dw, want_dw, rtol=1e-12, atol=1e-12)
    assert_close(db, want_db, rtol=1e-12, atol=1e-12)


def fills_rows(X):
    """Rows written one per iteration: Z[i] (the map-reduce form) and Z[i, :] (unrolled)."""
    m, n = X.shape
    Z = np.zeros((m, n))
    Y = np.zeros((m, n))
    for i in range(m):
        Z[i] = X[i] * 2.0
    for i in range(m):
        Y[i, :] = np.tanh(X[i])
    return np.sum(Z * Y)


def test_arrays_filled_row_by_row() -> None:
    X = rng.normal(size=(4, 3))
    check_grad(diffc.compile(fills_rows, backend="numpy"), [X], f=lambda X: np.sum(2 * X * np.tanh(X)))


def stable_sigmoid(z):
    """A helper with its own branch: rewritten too when the traced function calls it."""
    if z >= 0:  # noqa: SIM108 - the if is the point
        s = 1 / (1 + np.exp(-z))
    else:
        s = np.exp(z) / (1 + np.exp(z))
    return s


def calls_a_helper_with_a_branch(w, b, x, y):
    m = x.shape[0]
    J = 0.0
    for i in range(m):
        a = stable_sigmoid(np.dot(w, x[i]) + b)
        J = J - (y[i] * np.log(a) + (1 - y[i]) * np.log(1 - a))
    return J / m


@BOTH
def test_a_called_function_with_a_branch(backend: str) -> None:
    args = logistic_data(7, 3)
    value, (dw, db) = compiled_on(backend, calls_a_helper_with_a_branch, TYPES, ("w", "b")).value_and_grad(*args)
    want_dw, want_db = hand_gradient(*args)
    assert_close(value, vectorized(*args), rtol=1e-12, atol=1e-12)
    assert_close(dw, want_dw, rtol=1e-12, atol=1e-12)
    assert_close(db, want_db, rtol=1e-12, atol=1e-12)
