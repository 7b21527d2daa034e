"""The loop planner on programs the benchmarks do not have, under the default back end (real Numba).

The issue's examples first (logsumexp, the notes' linear layer, an MLP,
``np.outer``, array outputs through ``vjp``), then shapes of loop the
benchmarks never exercised (a domain over the columns, a 3-D input,
``X.T @ v`` beside a row kernel, a matrix-matrix product followed by a row
loss), each checked against central differences and for whole-array work
inside a loop (``loop_work``, from the differential test). Sizes of 150,000
take the parallel path (``chunks > 1`` on a machine of two or more cores).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import assert_close, check_grad, check_vjp
from test_differential import loop_work

import diffc
from diffc.errors import FallbackWarning

RNG = np.random.default_rng(7)


def compiled(fn, args, wrt=None):
    f = diffc.compile(fn, args=args, wrt=wrt)
    assert loop_work(f.module_source()) == []
    return f


def no_fallback(f) -> None:
    assert "fallback" not in f.stats, f.stats.get("fallback reason")


@pytest.fixture(autouse=True)
def fallbacks_fail():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        yield


def logsumexp(x):
    return np.log(np.sum(np.exp(x)))


def linear_layer(W, x, v):
    return np.sum((W @ x) * v)


def mlp(X, W1, W2, y):
    h = np.maximum(X @ W1, 0.0)
    return np.mean((h @ W2 - y) ** 2)


def outer_energy(a, b):
    return np.sum(np.outer(a, b) ** 2)


@pytest.mark.parametrize("n", [0, 1, 5, 150_000])
def test_logsumexp(n):
    f = compiled(logsumexp, {"x": "f64[n]"})
    x = RNG.standard_normal(n)
    if n == 0:
        value, x_bar = f.value_and_grad(x)
        assert value == -np.inf and x_bar.shape == (0,)
        return
    value, x_bar = f.value_and_grad(x)
    shifted = np.exp(x - x.max())
    assert_close(value, np.log(shifted.sum()) + x.max(), rtol=1e-13, atol=0, what="value")
    assert_close(x_bar, shifted / shifted.sum(), rtol=1e-12, atol=1e-18, what="softmax")
    if n <= 5:
        check_grad(f, [x], f=logsumexp)
    no_fallback(f)


def test_linear_layer_of_the_notes():
    """dW = outer(v, x) and dx = W.T @ v: the notes' layer Jacobians, pulled back."""
    f = compiled(linear_layer, {"W": "f64[m,n]", "x": "f64[n]", "v": "f64[m]"}, wrt=("W", "x"))
    W, x, v = RNG.standard_normal((4, 3)), RNG.standard_normal(3), RNG.standard_normal(4)
    value, (W_bar, x_bar) = f.value_and_grad(W, x, v)
    assert_close(value, v @ W @ x, rtol=1e-13, atol=1e-14)
    assert_close(W_bar, np.outer(v, x), rtol=1e-13, atol=1e-15, what="W_bar")
    assert_close(x_bar, W.T @ v, rtol=1e-13, atol=1e-15, what="x_bar")
    no_fallback(f)


@pytest.mark.parametrize("m", [3, 3000])
def test_mlp(m):
    f = compiled(mlp, {"X": "f64[m,n]", "W1": "f64[n,h]", "W2": "f64[h,k]", "y": "f64[m,k]"}, wrt=("W1", "W2"))
    X, W1, W2 = RNG.standard_normal((m, 4)), RNG.standard_normal((4, 5)), RNG.standard_normal((5, 2))
    y = RNG.standard_normal((m, 2))
    if m == 3:
        check_grad(f, [X, W1, W2, y], wrt=[1, 2], f=mlp)
    else:
        reference = diffc.compile(mlp, args={"X": "f64[m,n]", "W1": "f64[n,h]", "W2": "f64[h,k]", "y": "f64[m,k]"},
                                  wrt=("W1", "W2"), backend="numpy")
        got, want = f.value_and_grad(X, W1, W2, y), reference.value_and_grad(X, W1, W2, y)
        assert_close(got[0], want[0], rtol=1e-12, atol=0)
        for a, b in zip(got[1], want[1], strict=True):
            assert_close(a, b, rtol=1e-10, atol=1e-12)
    no_fallback(f)


def test_outer():
    f = compiled(outer_energy, {"a": "f64[n]", "b": "f64[m]"})
    check_grad(f, [RNG.standard_normal(4), RNG.standard_normal(3)], f=outer_energy)
    no_fallback(f)


@pytest.mark.parametrize(("fn", "types", "args"), [
    (lambda x: np.exp(x), {"x": "f64[n]"}, lambda n: [RNG.standard_normal(n)]),
    (lambda x: x ** 2, {"x": "f64[n]"}, lambda n: [RNG.standard_normal(n)]),
    (lambda W, x: W @ x, {"W": "f64[m,n]", "x": "f64[n]"}, lambda n: [RNG.standard_normal((n, 3)),
                                                                      RNG.standard_normal(3)]),
    (lambda W, x: np.maximum(W @ x, 0.0), {"W": "f64[m,n]", "x": "f64[n]"},
     lambda n: [RNG.standard_normal((n, 3)), RNG.standard_normal(3)]),
], ids=["exp", "square", "matvec", "relu-matvec"])
def test_array_outputs_through_vjp(fn, types, args):
    """The parallel path of an array output has no reduction to combine: no empty combine loop."""
    f = compiled(fn, types)
    for n in (4, 150_000):
        values = args(n)
        out = f(*values)
        cotangent = RNG.standard_normal(out.shape)
        if n == 4:
            check_vjp(f, values, cotangent)
        else:
            reference = diffc.compile(fn, args=types, backend="numpy")
            for got, want in zip(f.vjp(*values, cotangent), reference.vjp(*values, cotangent), strict=True):
                assert_close(got, want, rtol=1e-12, atol=1e-12)
    no_fallback(f)


@pytest.mark.parametrize(("name", "fn", "types", "shapes"), [
    ("scaled matrix product", lambda W, x: np.sum(np.tanh((W * 0.7) @ x)), {"W": "f64[m,n]", "x": "f64[n]"},
     [(5, 3), (3,)]),
    ("Gram matrix product", lambda W, z: np.sum(np.sin((W.T @ W) @ z)), {"W": "f64[m,n]", "z": "f64[n]"},
     [(5, 3), (3,)]),
    ("sliced column mean", lambda W: np.sum(np.exp(np.mean(W, axis=0)[:-1])), {"W": "f64[m,n]"}, [(4, 5)]),
    ("mean of squares in tanh", lambda W: np.sum(np.tanh(np.mean(W ** 2, axis=1))), {"W": "f64[m,n]"}, [(6, 3)]),
    ("max times exp", lambda x: np.sum(np.exp(x) * np.max(x)), {"x": "f64[n]"}, [(40_000,)]),
    ("tanh of row sums", lambda W: np.sum(np.tanh(np.sum(W, axis=1))), {"W": "f64[m,n]"}, [(40_000, 8)]),
    ("columns domain", lambda W, v: np.sum(np.exp(v @ W)), {"W": "f64[m,n]", "v": "f64[m]"}, [(5, 7), (5,)]),
    ("3-D input", lambda A, x: np.sum(np.sin(A) * x) + np.sum(np.exp(x)), {"A": "f64[a,b,c]", "x": "f64[c]"},
     [(2, 3, 4), (4,)]),
    ("X.T @ u beside a row kernel", lambda X, w, u: np.sum(np.tanh(X @ w)) * np.sum(X.T @ u),
     {"X": "f64[m,n]", "w": "f64[n]", "u": "f64[m]"}, [(6, 3), (3,), (6,)]),
    ("matrix product then a row loss", lambda X, W, y: np.mean(np.log(np.sum(np.exp(X @ W), axis=1)) - y),
     {"X": "f64[m,n]", "W": "f64[n,k]", "y": "f64[m]"}, [(6, 3), (3, 4), (6,)]),
    ("a concatenated domain", lambda y, x: np.sum(1 / (1 + np.exp(-np.concatenate([y, x])))),
     {"y": "f64[m]", "x": "f64[n]"}, [(7,), (150_000,)]),
])
def test_shapes_the_benchmarks_lack(name, fn, types, shapes):
    f = compiled(fn, types)
    values = [RNG.standard_normal(s) for s in shapes]
    if sum(np.prod(s) for s in shapes) <= 50:
        check_grad(f, values, f=fn)
    else:  # too many entries for differences: the NumPy back end (checked by differences elsewhere)
        reference = diffc.compile(fn, args=types, backend="numpy")
        got, want = f.value_and_grad(*values), reference.value_and_grad(*values)
        assert_close(got[0], want[0], rtol=1e-11, atol=0, what="value")
        for a, b in zip(got[1], want[1], strict=True):
            assert_close(a, b, rtol=1e-10, atol=1e-13)
    no_fallback(f)


def test_a_parameter_named_like_a_loop_temporary():
    """``chunks`` is a user's name here; the parallel loop's count takes another."""
    def f(chunks, x):
        return np.sum(np.exp(x) * chunks)

    g = compiled(f, {"chunks": "f64", "x": "f64[n]"})
    x = RNG.standard_normal(150_000) / 10
    value, (c_bar, x_bar) = g.value_and_grad(2.0, x)
    assert_close(value, 2.0 * np.exp(x).sum(), rtol=1e-12, atol=0)
    assert_close(c_bar, np.exp(x).sum(), rtol=1e-12, atol=0)
    assert_close(x_bar, 2.0 * np.exp(x), rtol=1e-12, atol=0)
