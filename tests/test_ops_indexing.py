"""Slicing, shape ops, gathers and constants: values against NumPy, gradients against references.

References are independent of diffc's adjoint table: central finite
differences (``conftest.check_grad``), the hand-derived gradient of the
Rosenbrock function and of the softmax cross-entropy with integer labels,
and NumPy itself for values and for slice lengths (``len(range(n)[s])``).
Most tests use the NumPy back end (no compile time); the Numba back end is
exercised where the printed code differs (gather loops, views, reshapes).
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import check_grad, check_vjp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffc
from diffc.api import emit
from diffc.errors import ParseError, ShapeError, TraceError, UnsupportedError
from diffc.frontends.trace import SizesNeededError, trace
from diffc.ir import DType, Sym, dim_mul, dim_quotient, dim_text, dim_value, slice_length

rng = np.random.default_rng(20240501)
n = Sym.named("n")


def sym_len(dim: Any, size: int) -> int:
    return dim_value(dim, {"n": size})


# ---------------------------------------------------------------------------
# sizes of slices: NumPy's lengths, symbolic


def test_slice_lengths_are_numpys_for_every_size() -> None:
    """``len(range(n)[start:stop:step])`` for every bound in -7..7 (and None), steps ±1..3, n = 0..12."""
    bounds = [None, *range(-7, 8)]
    for start, stop, step in itertools.product(bounds, bounds, [1, 2, 3, -1, -2, -3]):
        length = slice_length(n, start, stop, step)
        for size in range(13):
            want = len(range(size)[slice(start, stop, step)])
            assert sym_len(length, size) == want, (start, stop, step, size, dim_text(length))
        assert slice_length(9, start, stop, step) == len(range(9)[slice(start, stop, step)])  # concrete: an int


def test_common_slices_read_simply_and_agree() -> None:
    assert dim_text(slice_length(n, 1, None, 1)) == "max(n - 1, 0)"
    assert slice_length(n, 1, None, 1) == slice_length(n, None, -1, 1)  # x[1:] and x[:-1] unify
    assert dim_text(slice_length(n, None, None, 2)) == "(n + 1) // 2"
    assert dim_text(slice_length(n, None, 3, 1)) == "min(n, 3)"
    assert slice_length(n, None, None, -1) == n
    # slices of slices stay flat
    assert dim_text(slice_length(slice_length(n, 1, None, 1), 1, None, 1)) == "max(n - 2, 0)"
    assert dim_text(slice_length(slice_length(n, None, None, 2), None, None, 2)) == "(n + 3) // 4"
    assert dim_text(slice_length(slice_length(n, None, 3, 1), None, 2, 1)) == "min(n, 2)"


def test_traced_slice_shapes() -> None:
    def f(x):
        return x[1:], x[:-1], x[::2], x[3]

    p = trace(f, [("x", DType.F64, (n,))])
    shapes = [o.shape for o in p.outputs]
    assert [dim_text(s[0]) for s in shapes[:3]] == ["max(n - 1, 0)", "max(n - 1, 0)", "(n + 1) // 2"]
    assert shapes[3] == ()
    assert "f64[max(n - 1, 0)]" in p.text()
    q = trace(f, [("x", DType.F64, (5,))])
    assert [o.shape for o in q.outputs] == [(4,), (4,), (3,), ()]  # concrete sizes stay ints


def test_products_and_quotients_of_sizes() -> None:
    m = Sym.named("m")
    assert dim_mul(m, n) == dim_mul(n, m) and dim_text(dim_mul(m, n)) == "m * n"
    assert dim_quotient(dim_mul(dim_mul(m, n), 3), m) == 3 * n
    assert dim_quotient(dim_mul(m, n), 2) is None
    assert dim_value(dim_mul(m, n - 1), {"m": 4, "n": 3}) == 8


# ---------------------------------------------------------------------------
# Rosenbrock: slices of one array, accumulated in the adjoint


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosenbrock_grad(x: np.ndarray) -> np.ndarray:
    """d/dx_i: -400 x_i (x_{i+1} - x_i^2) - 2 (1 - x_i) for i < n-1, plus 200 (x_i - x_{i-1}^2) for i > 0."""
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


ROSENBROCK_TEXT = "sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)"


@pytest.mark.parametrize("front", ["trace", "text"])
def test_rosenbrock_gradient_is_the_hand_derived_one(front: str) -> None:
    source = rosenbrock if front == "trace" else ROSENBROCK_TEXT
    f = diffc.compile(source, args={"x": "f64[n]"}, wrt="x", backend="numpy")
    for size in (0, 1, 2, 3, 10, 1000):
        x = rng.normal(size=size)
        value, grad = f.value_and_grad(x)
        assert value == pytest.approx(float(rosenbrock(x)), rel=1e-13, abs=1e-13)
        assert grad.shape == (size,)
        np.testing.assert_allclose(grad, rosenbrock_grad(x), rtol=1e-12, atol=1e-12)
    assert f.grad(np.ones(5)).tolist() == [0.0] * 5  # the minimum
    if front == "trace":  # the adjoint writes each slice's part into zeros, then adds the parts
        assert "np.zeros((n,))" in f.grad_source and "[1:] = " in f.grad_source and "[:-1] = " in f.grad_source


def test_rosenbrock_on_numba() -> None:
    f = diffc.compile(rosenbrock, args={"x": "f64[n]"}, wrt="x", backend="numba")
    for size in (0, 1, 2, 3, 10, 1000):
        x = rng.normal(size=size)
        value, grad = f.value_and_grad(x)
        assert value == pytest.approx(float(rosenbrock(x)), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(grad, rosenbrock_grad(x), rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------------------
# slicing: odd sizes, every axis, negative indices, new axes


def many_slices(x):
    return (np.sum(x[1:] * x[:-1]) + np.sum(x[::2] ** 2) + np.sum(np.sin(x[::-1]) * x)
            + np.sum(x[2:5] ** 3) + np.sum(x[-3:]) + np.sum(x[1::3] * 2.0) + np.sum(x[-2::-2]))


@pytest.mark.parametrize("size", [0, 1, 7])
def test_slices_of_odd_sizes(size: int) -> None:
    f = diffc.compile(many_slices, args={"x": "f64[n]"}, wrt="x", backend="numpy")
    x = rng.normal(size=size)
    assert f(x) == pytest.approx(float(many_slices(x)), rel=1e-13, abs=1e-13)
    if size:
        check_grad(f, (x,), f=many_slices)
    else:
        assert f.grad(x).shape == (0,)


def matrix_slices(X, v):
    return (np.sum(X[:, 0] * v) + np.sum(X[2:5, ::2] ** 2) + np.sum(X[-1] * X[0]) + np.sum(X[1:, -1])
            + np.sum(X[::-1, 1:3] * X[:, :2]) + X[1, 2] * X[-2, -1] + np.sum(X[..., 1]))


def test_slices_on_every_axis() -> None:
    f = diffc.compile(matrix_slices, args={"X": "f64[m,k]", "v": "f64[m]"}, backend="numpy")
    X, v = rng.normal(size=(6, 4)), rng.normal(size=6)
    assert f(X, v) == pytest.approx(float(matrix_slices(X, v)), rel=1e-13)
    check_grad(f, (X, v), f=matrix_slices)
    with pytest.raises(ShapeError, match=r"index 2 on axis 1 needs X\.shape\[1\] \(k\) >= 3"):
        f(rng.normal(size=(6, 2)), v)


def test_vjp_of_a_sliced_vector() -> None:
    """A vector output shaped by slices: its cotangent is f64[max(n - 1, 0)], checked on entry."""
    def diffs(x, X):
        return (x[1:] - x[:-1]) * X[1:, 0] + np.sum(X[:-1] * X[1:], axis=1)

    f = diffc.compile(diffs, args={"x": "f64[n]", "X": "f64[n,k]"}, backend="numpy")
    x, X = rng.normal(size=6), rng.normal(size=(6, 3))
    check_vjp(f, (x, X), rng.normal(size=5))
    with pytest.raises(ShapeError, match="max"):
        f.vjp(x, X, np.ones(6))


def test_integer_index_past_the_end() -> None:
    with pytest.raises(ShapeError, match="index 5 is out of range for axis 0 of size 5"):
        trace(lambda x: x[5], [("x", DType.F64, (5,))])
    with pytest.raises(ShapeError, match="index -6"):
        trace(lambda x: x[-6], [("x", DType.F64, (5,))])
    f = diffc.compile(lambda x: x[5] + x[-1] * x[2], args={"x": "f64[n]"}, backend="numpy")
    assert f.source.count("check_shape(") == 1  # one check: n >= 6 implies n >= 3 and n >= 1
    assert 'check_shape(n >= 6, "index 5 on axis 0 needs x.shape[0] (n) >= 6, got ", n)' in f.source
    with pytest.raises(ShapeError, match=r"index 5 on axis 0 needs x\.shape\[0\] \(n\) >= 6, got 5"):
        f(np.arange(5.0))
    assert f(np.arange(6.0)) == 5.0 + 5.0 * 2.0


def test_new_axes_and_expand_dims() -> None:
    def f(x, y):
        return (np.sum(x[:, None] * y[None, :] * np.outer(y, x).T) + np.sum(np.expand_dims(x, 1) * y)
                + np.sum(x[None] ** 2) + np.sum(np.expand_dims(y, (0, 2)) * 3.0))

    c = diffc.compile(f, args={"x": "f64[n]", "y": "f64[m]"}, backend="numpy")
    x, y = rng.normal(size=4), rng.normal(size=3)
    assert c(x, y) == pytest.approx(float(f(x, y)), rel=1e-13)
    check_grad(c, (x, y), f=f)


@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_slices_match_numpy(data: st.DataObject) -> None:
    bound = st.one_of(st.none(), st.integers(-9, 9))
    start, stop = data.draw(bound, "start"), data.draw(bound, "stop")
    step = data.draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3]), "step")

    def g(x):
        part = x[start:stop:step]
        return np.sum(np.sin(part) + part * part)

    compiled = diffc.compile(g, args={"x": "f64[n]"}, wrt="x", backend="numpy")
    for size in sorted({0, 1, data.draw(st.integers(2, 11), "size")}):
        x = rng.normal(size=size)
        assert compiled(x) == pytest.approx(float(g(x)), rel=1e-13, abs=1e-13)
        if size:
            check_grad(compiled, (x,), f=g)
        else:
            assert compiled.grad(x).shape == (0,)


def index_items() -> st.SearchStrategy[Any]:
    """One axis of a basic index: a slice with random bounds and step, or an integer."""
    bound = st.one_of(st.none(), st.integers(-5, 5))
    step = st.sampled_from([None, 1, 2, -1, -2])
    return st.one_of(st.builds(slice, bound, bound, step), st.integers(-2, 1))


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_matrix_indices_match_numpy(data: st.DataObject) -> None:
    """Random per-axis slices and indices (with a new axis) of a matrix with symbolic sizes."""
    key = (data.draw(index_items(), "rows"), data.draw(index_items(), "cols"))
    if data.draw(st.booleans(), "new axis"):
        key = (key[0], None, key[1])

    def g(X):
        part = X[key]
        return np.sum(part * np.cos(part))

    compiled = diffc.compile(g, args={"X": "f64[m,k]"}, backend="numpy")
    for shape in [(2, 2), (4, 3), (data.draw(st.integers(0, 6), "rows"), 5)]:
        X = rng.normal(size=shape)
        try:
            expected = float(g(X))
        except IndexError:  # the index is past the end here: diffc refuses it before reading
            with pytest.raises(ShapeError, match="needs"):
                compiled(X)
            continue
        assert compiled(X) == pytest.approx(expected, rel=1e-13, abs=1e-13)
        if X.size:
            check_grad(compiled, (X,), f=g)


# ---------------------------------------------------------------------------
# shape ops


def test_transpose_reshape_concatenate_stack() -> None:
    def f(A, x, y, X):
        B = np.transpose(A, (1, 2, 0))                        # (3, 4, 2)
        r = B.reshape(-1) @ np.concatenate((x, y, x)) * 0.1   # 24 = 3 n for n = 8
        m, k = X.shape
        flat = X.reshape(m * k)
        s = np.stack((x, x * 2), axis=1)
        c = np.concatenate((X, X[:1]), axis=0)
        return (r + np.sum(flat ** 2) + np.sum(s * s[:, ::-1]) + np.sum(c[:, None, :] * c[None, :, :])
                + np.sum(X.T[0]) + np.sum(A.transpose(2, 0, 1).reshape(4, -1) ** 2))

    c = diffc.compile(f, args={"A": "f64[2,3,4]", "x": "f64[n]", "y": "f64[n]", "X": "f64[m,k]"},
                      backend="numpy")
    args = (rng.normal(size=(2, 3, 4)), rng.normal(size=8), rng.normal(size=8), rng.normal(size=(3, 5)))
    assert c(*args) == pytest.approx(float(f(*args)), rel=1e-13)
    check_grad(c, args, f=f)
    with pytest.raises(ShapeError, match="must agree"):  # 3 n must be 24
        c(args[0], rng.normal(size=7), rng.normal(size=7), args[3])


def test_concatenate_of_symbolic_sizes() -> None:
    def f(a, b):
        joined = np.concatenate((a, b * b, a[:2]))
        return np.sum(joined * np.arange(3.0).sum()) + np.sum(joined[1:] * joined[:-1])

    p = trace(f, [("a", DType.F64, (n,)), ("b", DType.F64, (Sym.named("m"),))])
    assert "concat[axis=0]" in p.text() and "f64[m + n + min(n, 2)]" in p.text()
    c = diffc.compile(f, args={"a": "f64[n]", "b": "f64[m]"}, backend="numpy")
    for sizes in [(4, 3), (1, 5), (0, 2)]:
        a, b = rng.normal(size=sizes[0]), rng.normal(size=sizes[1])
        assert c(a, b) == pytest.approx(float(f(a, b)), rel=1e-13, abs=1e-13)
        if sizes[0]:
            check_grad(c, (a, b), f=f)
    assert "[n:m + n]" in c.grad_source  # the middle slab of the cotangent


def test_broadcasting_between_ranks() -> None:
    def f(X, b, c, s):
        return np.sum((X + b) * c[:, None] * s) + np.mean(X * b[None, :] - s)

    c = diffc.compile(f, args={"X": "f64[m,k]", "b": "f64[k]", "c": "f64[m]", "s": "f64"}, backend="numpy")
    args = (rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5), 0.7)
    check_grad(c, args, f=f)


def test_reshape_refusals() -> None:
    # undecidable on symbolic sizes: diffc.compile specialises on the call's sizes (tests/test_calling.py)
    with pytest.raises(SizesNeededError, match=r"the -1 in \(2, -1\)"):
        trace(lambda x: x.reshape(2, -1), [("x", DType.F64, (n,))])
    with pytest.raises(ShapeError, match="cannot reshape an array of 6 elements"):
        trace(lambda x: x.reshape(4, -1), [("x", DType.F64, (6,))])
    with pytest.raises(ShapeError, match="6 elements"):
        trace(lambda x: x.reshape(7), [("x", DType.F64, (6,))])
    with pytest.raises(SizesNeededError, match="whether the shape"):
        trace(lambda x: x.reshape(n_size(x)), [("x", DType.F64, (n, Sym.named("k")))])
    p = trace(lambda X: X.reshape(-1), [("X", DType.F64, (Sym.named("m"), n))])
    assert dim_text(p.outputs[0].shape[0]) == "m * n"


def n_size(x: Any) -> Any:
    return x.shape[0]


def test_views_on_numba() -> None:
    """Slices on every axis, and reshapes of views (Numba reshapes contiguous arrays only, so a slice or a
    transpose is made contiguous first), printed for Numba; only value_and_grad is compiled (compile time)."""
    def f(X, v, y):
        # products, not powers: a power makes the fused loops parallel, which multiplies Numba's compile time
        return (np.sum(X[:, 0] * v) + np.sum(X[2:5, ::2] * X[2:5, ::2]) + np.sum(X[-1] * X[0]) + np.sum(X[1:, -1])
                + np.sum(X[::-1, 1:3] * X[:, :2]) + X[1, 2] * X[-2, -1] + np.sum(X[:, None, 1] * v[:, None])
                + np.sum(X[:, ::2].reshape(-1) * y) + np.sum(X.T.reshape(-1) * X.reshape(-1))
                + np.sum(np.concatenate((y, y[::-1])) * np.stack((y, y), axis=1).reshape(-1)))

    c = diffc.compile(f, args={"X": "f64[6,4]", "v": "f64[6]", "y": "f64[12]"}, backend="numba")
    args = (rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=12))
    check_grad(c, args, f=f)


# ---------------------------------------------------------------------------
# gathers: cross-entropy with integer labels


def cross_entropy(W, X, labels):
    logits = X @ W
    m = X.shape[0]
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(m), labels])


def cross_entropy_grad(W: np.ndarray, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """dL/dW = Xᵀ (softmax(XW) - onehot(labels)) / m."""
    logits = X @ W
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(W.shape[1])[labels]
    return X.T @ (p - onehot) / len(labels)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=pytest.mark.slow)])
def test_cross_entropy_with_integer_labels(backend: str) -> None:
    f = diffc.compile(cross_entropy, args={"W": "f64[k,c]", "X": "f64[m,k]", "labels": "i64[m]"}, wrt="W",
                      backend=backend)
    for rows in (1, 7, 50):
        W, X = rng.normal(size=(4, 3)), rng.normal(size=(rows, 4))
        labels = rng.integers(0, 3, size=rows)
        value, grad = f.value_and_grad(W, X, labels)
        assert value == pytest.approx(float(cross_entropy(W, X, labels)), rel=1e-12)
        np.testing.assert_allclose(grad, cross_entropy_grad(W, X, labels), rtol=1e-10, atol=1e-12)
    # a label out of range never reads out of bounds: IndexError, as NumPy's own indexing raises
    with pytest.raises(IndexError, match="out of bounds"):
        f(W, X, np.full(50, 3))
    with pytest.raises(IndexError, match="out of bounds"):
        f.grad(W, X, np.full(50, -4))
    # a negative label counts from the end, as in NumPy
    assert f(W, X, np.full(50, -1)) == pytest.approx(float(cross_entropy(W, X, np.full(50, 2))), rel=1e-12)
    with pytest.raises(ShapeError, match="labels"):
        f(W, X, labels[:10])
    gathered = "gather_rows(" if backend == "numba" else "[np.arange(m), labels]"
    assert gathered in f.grad_source


def picked_loss(logp, labels):
    """The gather alone, as the end of a cross-entropy: -mean(logp[i, labels[i]])."""
    return -np.mean(logp[np.arange(logp.shape[0]), labels] * 2.0) + np.sum(logp * logp) * 0.1


def test_gather_on_numba() -> None:
    """Numba has one index array per subscript: the gather and its scatter are loop helpers."""
    f = diffc.compile(picked_loss, args={"logp": "f64[m,c]", "labels": "i64[m]"}, backend="numba")
    logp, labels = rng.normal(size=(7, 3)), rng.integers(-3, 3, size=7)
    check_grad(f, (logp, labels), f=picked_loss, wrt=[0])
    assert "gather_rows(" in f.grad_source and "scatter_rows(" in f.grad_source
    for bad in (np.full(7, 3), np.full(7, -4)):
        with pytest.raises(IndexError, match="out of bounds for axis 1 with size 3"):
            f.value_and_grad(logp, bad)


def test_gather_forms() -> None:
    def picked(P, idx):
        return np.sum(P[np.arange(P.shape[0]), idx] ** 2) + np.sum(P[np.arange(4), np.array([0, 2, 1, 1])])

    c = diffc.compile(picked, args={"P": "f64[4,3]", "idx": "i64[4]"}, wrt="P", backend="numpy")
    P, idx = rng.normal(size=(4, 3)), np.array([2, 0, 0, 1])
    check_grad(c, (P, idx), f=picked, wrt=[0])
    refusals = [
        (lambda P, idx: P[idx, idx], "row index must be np.arange"),
        (lambda P, idx: P[P > 0], "returning x\\[mask\\]: a boolean mask selection"),
        (lambda P, idx: P[np.arange(3), idx], "row index must be np.arange"),
    ]
    for fn, message in refusals:
        with pytest.raises(TraceError, match=message):
            trace(fn, [("P", DType.F64, (4, 3)), ("idx", DType.I64, (4,))])


def test_arange_of_a_size_is_data() -> None:
    def f(x):
        return np.sum(x * np.arange(x.shape[0])) + np.sum(x * np.arange(3.0).sum())

    c = diffc.compile(f, args={"x": "f64[n]"}, wrt="x", backend="numpy")
    x = rng.normal(size=6)
    assert c(x) == pytest.approx(float(f(x)))
    np.testing.assert_allclose(c.grad(x), np.arange(6.0) + 3.0)
    assert np.arange(3).tolist() == [0, 1, 2]  # numpy.arange is restored after tracing
    assert np.arange is np.__dict__["arange"] and np.arange.__module__ == "numpy"


# ---------------------------------------------------------------------------
# constants: literals and captured arrays


def test_small_constants_print_exactly() -> None:
    values = np.array([0.1, -0.0, 1e-300, 2.0 / 3.0, np.inf, 123456789.123456789])
    f = diffc.compile(lambda x: np.sum(x * values), args={"x": "f64[6]"}, backend="numpy")
    source = f.source
    assert "np.array([0.1, -0.0, 1e-300, 0.6666666666666666, np.inf, 123456789.12345679], dtype=np.float64)" \
        in source
    ones = np.ones(6)
    assert f(ones) == float(np.sum(values))
    np.testing.assert_array_equal(f.grad(ones), values)
    grid = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = diffc.compile(lambda X: np.sum(X @ grid), args={"X": "f64[3,2]"}, backend="numpy")
    assert ".reshape((2, 2))" in g.source
    check_grad(g, (rng.normal(size=(3, 2)),), f=lambda X: np.sum(X @ grid))


def test_large_constants_are_hidden_parameters() -> None:
    weights = rng.normal(size=(20, 5))
    mask = (rng.random(20) > 0.3).astype(np.float64)

    def model(x, y):
        h = np.tanh(x @ weights)
        return np.sum((h - y) ** 2) + np.sum(mask * x)

    f = diffc.compile(model, args={"x": "f64[20]", "y": "f64[5]"}, backend="numpy")
    x, y = rng.normal(size=20), rng.normal(size=5)
    assert f(x, y) == pytest.approx(float(model(x, y)), rel=1e-13)
    check_grad(f, (x, y), f=model)
    assert "def forward(x, y, _const0, _const1):" in f.source
    assert "def value_and_grad(x, y, _const0, _const1):" in f.grad_source
    spec = f._declared()
    first = spec.constants
    f(x, y)
    assert spec.constants is first  # bound once, passed by reference every call
    assert all(not c.flags.writeable for c in first)
    np.testing.assert_array_equal(first[0], weights)
    with pytest.raises(UnsupportedError, match="pass them to the function as arguments"):
        emit(model, args={"x": "f64[20]", "y": "f64[5]"}, backend="numpy")


def test_arrays_built_inside_the_function_are_constants() -> None:
    def f(x):
        return (np.sum(x * np.ones(4)) + np.sum(x @ np.eye(4) * np.arange(4)) + np.sum(np.full(4, 0.5) * x * x)
                + np.sum(x * np.zeros(4)) + np.sum(np.array([1.0, -1.0, 2.0, 0.0]) * x))

    c = diffc.compile(f, args={"x": "f64[4]"}, backend="numpy")
    x = rng.normal(size=4)
    check_grad(c, (x,), f=f)
    with pytest.raises(TraceError, match="symbolic while tracing"):
        trace(lambda x: x * np.full(x.shape[0], 2.0), [("x", DType.F64, (n,))])
    # np.zeros / np.ones of a size are constants (the arrays a loop fills, docs/loops.md)
    ones = trace(lambda x: np.sum(x * np.ones(x.shape[0]) + np.zeros(x.shape[0])), [("x", DType.F64, (n,))])
    assert diffc.compile(ones, backend="numpy")(x) == pytest.approx(np.sum(x), rel=1e-14)


# ---------------------------------------------------------------------------
# the text front end and emitted modules


def test_text_front_end_slices() -> None:
    f = diffc.compile("sum(X[:, 0] * x[1:]) + sum(x[:-1] ** 2) + sum(X[1:, :] * X[:-1, :]) + x[-1]",
                      args={"X": "f64[n,k]", "x": "f64[m]"}, backend="numpy")

    def reference(X, x):
        return np.sum(X[:, 0] * x[1:]) + np.sum(x[:-1] ** 2) + np.sum(X[1:, :] * X[:-1, :]) + x[-1]

    X, x = rng.normal(size=(5, 3)), rng.normal(size=6)
    assert f(X, x) == pytest.approx(float(reference(X, x)), rel=1e-13)
    check_grad(f, (X, x), f=reference)
    outer = diffc.compile("sum(x[:, None] * x[None, :])", args={"x": "f64[n]"}, backend="numpy")
    assert outer(np.array([1.0, 2.0])) == 9.0
    with pytest.raises(ParseError) as info:
        diffc.compile("x[k]", args={"x": "f64[n]", "k": "f64"})
    assert (info.value.column, info.value.text) == (3, "k") and "integer literal" in info.value.message
    with pytest.raises(ShapeError, match="too many indices"):
        diffc.compile("x[0, 1]", args={"x": "f64[n]"})
    with pytest.raises(ShapeError, match="a scalar cannot be indexed"):
        diffc.compile("y = x[0] + 1")  # free names are scalars
    with pytest.raises(ShapeError, match="out of range"):
        diffc.compile("x[3]", args={"x": "f64[3]"})


def test_emitted_numba_module_carries_the_gather_helpers(tmp_path: Path) -> None:
    source = emit(picked_loss, args={"logp": "f64[m,c]", "labels": "i64[m]"}, backend="numba")
    assert "from diffc" not in source and "def gather_rows(" in source and "def scatter_rows(" in source
    path = tmp_path / "xent_module.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("xent_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logp, labels = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    value, grad = module.value_and_grad(logp, labels)  # one float argument: its gradient alone
    assert value == pytest.approx(float(picked_loss(logp, labels)), rel=1e-12)
    expected = 0.2 * logp
    expected[np.arange(6), labels] -= 2.0 / 6
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-14)
