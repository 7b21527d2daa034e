"""dtypes end to end: float32 stays float32, integer and boolean arrays are data.

The references are NumPy's own promotion (``np.result_type``), the dtypes
of the arrays the generated code returns, the generated source itself (no
float64 in a float32 model), and a float64 NumPy evaluation of the same
function for values and gradients (within float32 accuracy).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import numeric_grad

import diffc
from diffc.errors import DiffcError
from diffc.frontends.trace import trace
from diffc.ir import DType, Graph, Op, Sym, result_dtype

rng = np.random.default_rng(7)
f32 = np.float32
n, m = Sym.named("n"), Sym.named("m")


def test_result_dtype_is_numpys() -> None:
    for combo in itertools.chain(itertools.product(DType, repeat=2), itertools.product(DType, repeat=3)):
        expected = np.result_type(*(d.numpy for d in combo))
        assert result_dtype(combo).numpy == expected, combo
    assert result_dtype([DType.I64, DType.F32]) is DType.F64  # not f32: NumPy promotes int64 with float32


def test_ir_arithmetic_promotes_like_numpy() -> None:
    g = Graph()
    i, x = g.input("i", DType.I64, (n,)), g.input("x", DType.F32, (n,))
    assert (i * x).dtype is DType.F64
    assert (x * x).dtype is DType.F32
    assert g.apply(Op.MUL, g.input("b", DType.BOOL, (n,)), x).dtype is DType.F32


# ---------------------------------------------------------------------------
# float32 models


SCALE = np.array([1.0, 2.0, 0.5])  # a captured float64 constant: cast to the model's float32


def logistic(w, b, X, y):
    z = (X * SCALE) @ w + b
    p = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


MASK = (np.arange(20) % 3 != 0).astype(np.float64)  # 20 entries: a hidden parameter


def mlp(W1, b1, w2, X, y):
    h = np.tanh(X @ W1 + b1) * MASK
    out = h @ w2
    return np.mean((out - y) ** 2) + 0.01 * np.sum(W1 * W1) + np.sum(np.maximum(h[:, :3], 0.0)) * 1e-3


def float64_reference(fn, args, wrt):  # type: ignore[no-untyped-def]
    """Value and central-difference gradients of ``fn`` in float64 (NumPy, not diffc)."""
    wide = [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else a for a in args]
    wide = [a.item() if isinstance(a, np.ndarray) and a.ndim == 0 else a for a in wide]
    return float(fn(*wide)), numeric_grad(fn, wide, wrt=wrt)


@pytest.mark.parametrize(("fn", "types", "shapes"), [
    (logistic, {"w": "f32[3]", "b": "f32", "X": "f32[m,3]", "y": "f32[m]"}, [(3,), (), (9, 3), (9,)]),
    (mlp, {"W1": "f32[d,20]", "b1": "f32[20]", "w2": "f32[20]", "X": "f32[m,d]", "y": "f32[m]"},
     [(4, 20), (20,), (20,), (6, 4), (6,)]),
], ids=["logistic", "mlp"])
def test_float32_stays_float32(fn, types, shapes) -> None:  # type: ignore[no-untyped-def]
    args = [f32(rng.normal()) if not s else rng.normal(size=s).astype(f32) for s in shapes]
    if fn is logistic:
        args[3] = (rng.random(9) > 0.5).astype(f32)
    compiled = diffc.compile(fn, args=types, backend="numpy")
    # the generated module itself: every result is float32
    module = compiled._declared().module()
    value, grads = module.value_and_grad(*args, *compiled._declared().constants)
    assert type(value) is np.float32, type(value)
    assert [np.asarray(g).dtype for g in grads] == [np.dtype(np.float32)] * len(args)
    assert module.forward(*args, *compiled._declared().constants).dtype == np.float32
    # nothing in the code is float64, for either back end (the Numba source is only printed here)
    for source in (compiled.source, compiled.grad_source,
                   diffc.compile(fn, args=types, backend="numba").grad_source):
        assert "float64" not in source, source
    # and the numbers are the float64 ones, to float32 accuracy
    expected_value, expected_grads = float64_reference(fn, args, wrt=list(range(len(args))))
    assert float(value) == pytest.approx(expected_value, rel=2e-5, abs=1e-5)
    for got, want in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=2e-3, atol=2e-4)


def test_float32_on_numba() -> None:
    """The Numba back end returns float32 gradients too (a model without exp/log: quick to compile)."""
    def ridge(w, X, y):
        r = X @ w - y
        return np.mean(r * r) + 0.5 * np.sum(w[1:] * w[1:])

    compiled = diffc.compile(ridge, args={"w": "f32[k]", "X": "f32[m,k]", "y": "f32[m]"}, wrt="w",
                             backend="numba")
    w, X, y = rng.normal(size=4).astype(f32), rng.normal(size=(8, 4)).astype(f32), rng.normal(size=8).astype(f32)
    value, grad = compiled.value_and_grad(w, X, y)
    assert grad.dtype == np.float32
    expected = 2 * X.astype(np.float64).T @ (X.astype(np.float64) @ w - y) / 8 + np.r_[0.0, w[1:]]
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)
    assert "float64" not in compiled.grad_source


def test_float32_slices_in_text() -> None:
    f = diffc.compile("sum(x[1:] * x[:-1]) + mean(x * x)", args={"x": "f32[n]"}, backend="numpy")
    x = rng.normal(size=7).astype(f32)
    grad = f.grad(x)
    assert grad.dtype == np.float32
    expected = np.r_[x[1:], 0.0] + np.r_[0.0, x[:-1]] + 2 * x / 7
    np.testing.assert_allclose(grad, expected, rtol=1e-6)
    assert "np.float32(n)" in f.grad_source  # the mean's count, in the cotangent's dtype


def test_constants_take_the_traced_dtype() -> None:
    def f(x):
        return x * np.array([1.0, 2.0]), x + np.array([1, 2]), x * np.float64(2.0), x * 0.5

    p = trace(f, [("x", DType.F32, (2,))])
    assert [o.dtype for o in p.outputs] == [DType.F32, DType.F32, DType.F64, DType.F32]
    first = p.outputs[0]
    assert first.inputs[1].op is Op.CONST and first.inputs[1].dtype is DType.F32  # cast when traced, not per call
    # a NumPy scalar keeps NumPy 2's rule (an explicit dtype), and an integer input still promotes to float64
    q = trace(lambda i, x: i * x, [("i", DType.I64, (n,)), ("x", DType.F32, (n,))])
    assert q.outputs[0].dtype is DType.F64


# ---------------------------------------------------------------------------
# integer and boolean data


def masked_xent(W, X, labels, mask):
    logits = X @ W
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    picked = logp[np.arange(X.shape[0]), labels]
    return -np.sum(np.where(mask, picked, 0.0)) / np.sum(mask)


def test_integer_and_boolean_arrays_are_data() -> None:
    types = {"W": "f64[k,c]", "X": "f64[m,k]", "labels": "i64[m]", "mask": "bool[m]"}
    f = diffc.compile(masked_xent, args=types, backend="numpy")
    assert f.wrt == ("W", "X")  # the default: every floating-point argument
    W, X = rng.normal(size=(3, 4)), rng.normal(size=(6, 3))
    labels, mask = rng.integers(0, 4, size=6), np.array([True, False, True, True, False, True])
    value, (gW, gX) = f.value_and_grad(W, X, labels, mask)
    assert value == pytest.approx(float(masked_xent(W, X, labels, mask)), rel=1e-12)
    ref_W, ref_X = numeric_grad(masked_xent, [W, X, labels, mask], wrt=[0, 1])
    np.testing.assert_allclose(gW, ref_W, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gX, ref_X, rtol=1e-6, atol=1e-8)
    for wrt in ("labels", ("W", "mask")):
        g = diffc.compile(masked_xent, args=types, wrt=wrt, backend="numpy")
        with pytest.raises(DiffcError, match="is not floating point"):
            g.grad(W, X, labels, mask)
    # data given as Python lists or other integer widths is converted to the declared dtype
    assert f(W, X, labels.astype(np.int32), mask.tolist()) == pytest.approx(value, rel=1e-12)
