"""Integer, index-array and boolean-mask indexing on any axis, and assignment into traced arrays.

References: NumPy's own indexing (the traced function run on arrays), central
differences for every gradient, ``np.add.at`` by hand for repeated indices.
Both back ends: the NumPy one compiled, the Numba one run as plain Python
(tests/plain_numba.py) for breadth and compiled by real Numba for a sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import as_tuple, assert_close, check_grad, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from plain_numba import call_plain, load_compiled

import diffc
from diffc import DiffcError, ShapeError, TraceError
from diffc.errors import IndexRangeError, IndexTypeError

rng = np.random.default_rng(11)


@dataclass(frozen=True)
class Form:
    """One indexing form: the function, its argument types, and a maker of arguments (float ones first)."""

    name: str
    fn: Callable[..., Any]
    types: dict[str, str]
    make: Callable[[np.random.Generator], tuple[Any, ...]]


def _idx(r: np.random.Generator, size: int, count: int) -> np.ndarray:
    """Indices in NumPy's whole range [-size, size), with a repeat for sure (the scatter must add them)."""
    out = r.integers(-size, size, size=count)
    out[-1] = out[0]
    return out


MASK = np.array([True, False, True, True, False, False])
FORMS = [
    Form("x[idx]", lambda x, idx: np.sum(np.sin(x[idx]) * x[idx]), {"x": "f64[n]", "idx": "i64[j]"},
         lambda r: (r.normal(size=6), _idx(r, 6, 5))),
    Form("f(x)[idx] (a loop feeds the take)", lambda x, idx: np.sum(np.exp(x * 0.5)[idx] * np.sin(x)[idx[::-1]])
         + np.sum(np.exp(x) * 2.0), {"x": "f64[n]", "idx": "i64[j]"}, lambda r: (r.normal(size=6), _idx(r, 6, 5))),
    Form("x[[0, 2, 2, -1]]", lambda x: np.sum(x[[0, 2, 2, -1]] ** 2), {"x": "f64[n]"},
         lambda r: (r.normal(size=6),)),
    Form("X[:, idx]", lambda X, idx: np.sum(X[:, idx] ** 3), {"X": "f64[m,k]", "idx": "i64[j]"},
         lambda r: (r.normal(size=(4, 5)), _idx(r, 5, 6))),
    Form("X[idx, :]", lambda X, idx: np.sum(np.exp(X[idx, :]) * X[idx, :]), {"X": "f64[m,k]", "idx": "i64[j]"},
         lambda r: (r.normal(size=(4, 5)), _idx(r, 4, 3))),
    Form("X[idx] @ w", lambda X, w, idx: np.sum(np.tanh(X[idx] @ w)),
         {"X": "f64[m,k]", "w": "f64[k]", "idx": "i64[j]"},
         lambda r: (r.normal(size=(4, 5)), r.normal(size=5), _idx(r, 4, 7))),
    Form("T[..., idx]", lambda T, idx: np.sum(T[..., idx] ** 2 * T[..., 0][..., None]),
         {"T": "f64[a,b,c]", "idx": "i64[j]"}, lambda r: (r.normal(size=(2, 3, 4)), _idx(r, 4, 3))),
    Form("T[:, idx2d]", lambda T, idx: np.sum(np.sin(T[:, idx])), {"T": "f64[a,b,c]", "idx": "i64[p,q]"},
         lambda r: (r.normal(size=(2, 3, 4)), r.integers(-3, 3, size=(2, 2)))),
    Form("X[i]", lambda X, i: np.sum(X[i] ** 2), {"X": "f64[m,k]", "i": "i64"},
         lambda r: (r.normal(size=(4, 5)), int(r.integers(-4, 4)))),
    Form("X[:, i]", lambda X, i: np.sum(np.cos(X[:, i]) * X[:, -1]), {"X": "f64[m,k]", "i": "i64"},
         lambda r: (r.normal(size=(4, 5)), int(r.integers(-5, 5)))),
    Form("X[i, j]", lambda X, x, i, j: X[i, j] * x[i] + X[j, i], {"X": "f64[m,m]", "x": "f64[m]", "i": "i64",
                                                                   "j": "i64"},
         lambda r: (r.normal(size=(4, 4)), r.normal(size=4), int(r.integers(-4, 4)), int(r.integers(-4, 4)))),
    Form("X[i, idx]", lambda X, i, idx: np.sum(X[i, idx] ** 2), {"X": "f64[m,k]", "i": "i64", "idx": "i64[j]"},
         lambda r: (r.normal(size=(4, 5)), int(r.integers(-4, 4)), _idx(r, 5, 4))),
    Form("T[0, :, idx]", lambda T, idx: np.sum(T[0, :, idx] * np.arange(3.0)), {"T": "f64[a,b,c]", "idx": "i64[j]"},
         lambda r: (r.normal(size=(2, 3, 4)), _idx(r, 4, 5))),
    Form("T[i, :, idx]", lambda T, w, i, idx: np.sum((T[i, :, idx] @ w) ** 2),
         {"T": "f64[a,b,c]", "w": "f64[b]", "i": "i64", "idx": "i64[j]"},
         lambda r: (r.normal(size=(2, 3, 4)), r.normal(size=3), int(r.integers(-2, 2)), _idx(r, 4, 5))),
    Form("X[np.arange(m), idx]", lambda X, idx: np.sum(X[np.arange(X.shape[0]), idx] ** 2),
         {"X": "f64[m,k]", "idx": "i64[m]"}, lambda r: (r.normal(size=(4, 5)), _idx(r, 5, 4))),
    Form("np.take(X, idx, axis=1)",
         lambda X, idx: np.sum(np.take(X, idx, axis=1) ** 2 + np.take(X, idx[0], axis=-1)[:, None]),
         {"X": "f64[m,k]", "idx": "i64[j]"}, lambda r: (r.normal(size=(4, 5)), _idx(r, 5, 3))),
    Form("X.take(idx)", lambda X, idx: np.sum(X.take(idx) ** 2), {"X": "f64[m,k]", "idx": "i64[j]"},
         lambda r: (r.normal(size=(4, 5)), _idx(r, 20, 9))),
    Form("np.sum(x[x > 0])", lambda x: np.sum(x[x > 0]) + np.mean(x[x > 0]) * 2.0, {"x": "f64[n]"},
         lambda r: (r.normal(size=6),)),
    Form("np.sum(x[mask])", lambda x, mask: x[mask].sum() + x[mask].mean(), {"x": "f64[n]", "mask": "bool[n]"},
         lambda r: (r.normal(size=6), MASK)),
    Form("X[rows] sum axis 0", lambda X, rows: np.sum(np.sum(X[rows], axis=0) ** 2) + np.sum(np.mean(X[rows, :], 0)),
         {"X": "f64[n,k]", "rows": "bool[n]"}, lambda r: (r.normal(size=(6, 3)), MASK)),
    Form("np.mean(X[X > 0.5])", lambda X: np.mean(X[X > 0.5]) + np.sum(X[np.abs(X) < 0.1]),
         {"X": "f64[m,k]"}, lambda r: (r.normal(size=(4, 5)),)),
]


FORMS += [
    Form("np.take_along_axis(X, idx, 1)", lambda X, idx: np.sum(np.take_along_axis(X, idx, axis=1) ** 3),
         {"X": "f64[m,k]", "idx": "i64[m,j]"}, lambda r: (r.normal(size=(4, 5)), r.integers(-5, 5, size=(4, 3)))),
    Form("take_along_axis(T, idx, 0) broadcast", lambda T, idx: np.sum(np.sin(np.take_along_axis(T, idx, axis=0))),
         {"T": "f64[a,b,c]", "idx": "i64[j,1,c]"}, lambda r: (r.normal(size=(2, 3, 4)), r.integers(-2, 2, (5, 1, 4)))),
    Form("take_along_axis(X, argmin(X, 0, keepdims))",
         lambda X: np.sum(np.take_along_axis(X, np.argmin(X, axis=0, keepdims=True), axis=0) ** 2),
         {"X": "f64[m,k]"}, lambda r: (r.normal(size=(4, 5)),)),
    Form("np.sort(X, axis)", lambda X, w: np.sum(np.sort(X, axis=1) * w) + np.sum(np.sort(X, axis=0)[0] ** 2)
         + np.sum(np.sort(X, axis=None)[:3]), {"X": "f64[m,k]", "w": "f64[k]"},
         lambda r: (r.normal(size=(4, 5)), r.normal(size=5))),
    Form("x[np.argsort(x)]", lambda x, w: np.sum(x[np.argsort(x)] * w) + np.sum(x[x.argsort()[-2:]] ** 2),
         {"x": "f64[n]", "w": "f64[n]"}, lambda r: (r.normal(size=6), r.normal(size=6))),
    Form("X[argmax]", lambda X, w: np.sum(X[np.argmax(X @ w)] ** 2) + X[X[:, 0].argmin(), 1]
         + np.sum(X.argmax(axis=1) * (X @ w)), {"X": "f64[m,k]", "w": "f64[k]"},
         lambda r: (r.normal(size=(4, 5)), r.normal(size=5))),
]


def _set_mask(x: Any) -> Any:
    y = x * 1.0
    y[y < 0] = 0.0
    y[y > 1.0] = x[0]
    big = y > 0.5
    y[big] += 1.0
    y[big] = np.exp(-y[big]) * y[big]
    return np.sum(y * x)


def _mask_math(x: Any, X: Any, w: Any) -> Any:
    """Elementwise math on selections: a NaN or inf where the mask is false never reaches the value or gradient."""
    positive = x > 0
    rows = X[:, 0] > 0
    return (np.sum(np.log(x[positive]) * 2.0 - np.sqrt(x[positive]) / x[positive]) + np.mean(np.abs(x[positive]) ** 1.5)
            + np.sum(X[rows] * w) + np.sum(np.tanh(X[rows, :]) > 0.5) + np.sum(-x[positive] + 1.0 < 0.5))


def _set_slice(x: Any, w: Any) -> Any:
    y = np.sin(x)
    y[1:3] = w[0]
    y[-1] = 2.0
    y[::2] = y[::2] * w[1]
    return np.sum(y ** 2)


def _set_index(x: Any, idx: Any) -> Any:
    y = x + 0.0
    y[idx] = 0.5
    return np.sum(y * x)


def _set_row(X: Any, w: Any, i: Any) -> Any:
    Y = X * 2.0
    Y[i] = w
    Y[:, i] = X[0, 0]
    return np.sum(Y ** 2)


def _set_copy_of_view(X: Any, w: Any) -> Any:
    Y = X.T.copy()
    Y[0] = w[0]
    Z = np.copy(X[1:])
    Z[:, 1:] = 0.0
    return np.sum(Y * X.T) + np.sum(Z * X[1:]) + np.sum(X)


def _set_rows_mask(X: Any, w: Any, rows: Any) -> Any:
    Y = X * 1.0
    Y[rows] = w
    return np.sum(Y * X)


FORMS += [
    Form("x[mask] = v", _set_mask, {"x": "f64[n]"}, lambda r: (r.normal(size=6) * 2,)),
    Form("math on x[mask]", _mask_math, {"x": "f64[n]", "X": "f64[m,k]", "w": "f64[k]"},
         lambda r: (np.concatenate([r.normal(size=5), [-1.0]]), r.normal(size=(4, 3)), r.normal(size=3))),
    Form("x[1:3] = v", _set_slice, {"x": "f64[n]", "w": "f64[2]"}, lambda r: (r.normal(size=6), r.normal(size=2))),
    Form("x[idx] = v", _set_index, {"x": "f64[n]", "idx": "i64[j]"}, lambda r: (r.normal(size=6), _idx(r, 6, 4))),
    Form("X[i] = row", _set_row, {"X": "f64[m,m]", "w": "f64[m]", "i": "i64"},
         lambda r: (r.normal(size=(4, 4)), r.normal(size=4), int(r.integers(-4, 4)))),
    Form("x.copy()[...] = v", _set_copy_of_view, {"X": "f64[m,m]", "w": "f64[m]"},
         lambda r: (r.normal(size=(4, 4)), r.normal(size=4))),
    Form("X[rows] = row", _set_rows_mask, {"X": "f64[n,k]", "w": "f64[k]", "rows": "bool[n]"},
         lambda r: (r.normal(size=(6, 3)), r.normal(size=3), MASK)),
]


def _floats(args: tuple[Any, ...]) -> list[int]:
    return [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def _as(dtype: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args)


def _types(form: Form, dtype: str) -> dict[str, str]:
    return {k: v.replace("f64", dtype) for k, v in form.types.items()}


def _reference(form: Form, args: tuple[Any, ...]) -> tuple[float, list[Any]]:
    """NumPy's value and central differences, in float64."""
    wide = _as(np.float64, args)
    return float(form.fn(*(a.copy() if isinstance(a, np.ndarray) else a for a in wide))), \
        numeric_grad(lambda *a: form.fn(*(v.copy() if isinstance(v, np.ndarray) else v for v in a)), wide,
                     wrt=_floats(args))


def _check(form: Form, value: Any, grads: Any, args: tuple[Any, ...], dtype: str) -> None:
    want_value, want_grads = _reference(form, args)
    rtol, atol = (1e-10, 1e-8) if dtype == "f64" else (2e-4, 2e-3)
    assert_close(value, want_value, rtol=rtol, atol=atol, what=f"{form.name}: value")
    for got, want in zip(as_tuple(grads, len(want_grads)), want_grads, strict=True):
        assert_close(got, want, rtol=max(rtol, 1e-6), atol=atol, what=f"{form.name}: gradient")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # np.sqrt(x) of x[mask]'s unselected entries
@pytest.mark.parametrize("dtype", ["f64", "f32"])
@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_forms_on_the_numpy_back_end(form: Form, dtype: str) -> None:
    f = diffc.compile(form.fn, args=_types(form, dtype), wrt=None, backend="numpy")
    for seed in range(3):
        args = _as(np.float32 if dtype == "f32" else np.float64, form.make(np.random.default_rng(seed)))
        value, grads = f.value_and_grad(*args)
        _check(form, value, grads, args, dtype)
        if dtype == "f32":
            assert all(np.asarray(g).dtype == np.float32 for g in as_tuple(grads, len(_floats(args))))


@pytest.mark.parametrize("dtype", ["f64", "f32"])
@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_forms_on_the_numba_back_end_as_plain_python(form: Form, dtype: str) -> None:
    namespace = load_compiled(diffc.compile(form.fn, args=_types(form, dtype)), parallel_threshold=0)
    for seed in range(3):
        args = _as(np.float32 if dtype == "f32" else np.float64, form.make(np.random.default_rng(seed)))
        value, grads = call_plain(namespace["value_and_grad"], *args)
        _check(form, value, grads, args, dtype)
        assert call_plain(namespace["forward"], *args) == pytest.approx(float(value), rel=1e-6)


REAL_NUMBA = ["T[i, :, idx]", "np.sum(x[mask])", "X[i] = row",
              *(pytest.param(name, marks=pytest.mark.slow) for name in (
                  "np.sort(X, axis)", "f(x)[idx] (a loop feeds the take)", "x[idx]", "X[:, idx]", "X[i, j]",
                  "x[1:3] = v", "x[idx] = v", "np.take_along_axis(X, idx, 1)",
                  "take_along_axis(T, idx, 0) broadcast", "X[argmax]", "x[np.argsort(x)]"))]


@pytest.mark.parametrize("name", REAL_NUMBA)
def test_forms_on_real_numba(name: str) -> None:
    (form,) = [f for f in FORMS if f.name == name]
    f = diffc.compile(form.fn, args=form.types)
    args = form.make(np.random.default_rng(5))
    value, grads = f.value_and_grad(*args)
    _check(form, value, grads, args, "f64")
    assert f.stats.get("fallback") is None, f.stats


def test_repeated_indices_add_up_as_np_add_at(backend: str) -> None:
    """The gradient of sum(c * x[idx]) is np.add.at(zeros, idx, c): by hand, with every entry repeated."""
    c = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    idx = np.array([1, 1, -1, 3, 1, 4])

    f = diffc.compile(lambda X, idx: np.sum(c * X[:, idx]), args={"X": "f64[2,n]", "idx": "i64[j]"}, backend=backend)
    X = rng.normal(size=(2, 5))
    expected = np.zeros((2, 5))
    np.add.at(expected, (slice(None), idx), np.broadcast_to(c, (2, 6)))
    (grad,) = as_tuple(f.grad(X, idx), 1)
    np.testing.assert_array_equal(grad, expected)
    assert f(X, idx) == pytest.approx(float(np.sum(c * X[:, idx])), rel=1e-13)


@pytest.mark.parametrize("backend", ["numpy", "numba", "numba-plain"])
def test_out_of_range_indices_raise_index_error_before_any_read(backend: str) -> None:
    """NumPy's IndexError, on both back ends; the Numba helpers check every index before they read."""
    def fn(X, idx, i):
        return np.sum(X[:, idx] ** 2) + np.sum(X[i])

    types = {"X": "f64[m,k]", "idx": "i64[j]", "i": "i64"}
    if backend == "numba-plain":
        namespace = load_compiled(diffc.compile(fn, args=types))
        calls = [namespace["forward"], namespace["value_and_grad"]]
    else:
        f = diffc.compile(fn, args=types, backend=backend)
        calls = [f, f.value_and_grad]
    X = rng.normal(size=(3, 4))
    good = np.array([0, -4, 3])
    for call in calls:
        value = call(X, good, -3)
        assert np.asarray(value if call in (calls[0],) else value[0]) == pytest.approx(fn(X, good, -3))
        for idx, i in ((np.array([0, 4]), 0), (np.array([-5]), 0), (good, 3), (good, -4)):
            with pytest.raises(IndexError, match="out of bounds"):
                call(X, idx, i)
    # an empty index reads nothing
    assert calls[0](X, np.zeros(0, dtype=np.int64), 0) == pytest.approx(np.sum(X[0]))


def test_constant_and_float_indices_are_refused_while_tracing() -> None:
    cases = [
        (lambda x: np.sum(x[[0, 6]]), IndexRangeError, "index 6 is out of bounds for axis 0 with size 6"),
        (lambda x: np.sum(x[np.array([-7])]), IndexRangeError, "index -7 is out of bounds"),
        (lambda x: np.sum(x[np.array([0.0, 1.0])]), IndexTypeError, "index array of float64"),
        (lambda x: x[1.0], IndexTypeError, "the float 1.0 as an index"),
        (lambda x: np.sum(x[x]), IndexTypeError, "f64\\[6\\] value as an index"),
        (lambda x: np.sum(np.take(x, [0, 9])), IndexRangeError, "index 9"),
    ]
    for fn, error, message in cases:
        with pytest.raises(error, match=message) as info:
            diffc.compile(fn, args={"x": "f64[6]"}, backend="numpy").source  # noqa: B018
        assert isinstance(info.value, IndexError) and isinstance(info.value, DiffcError)
        assert "test_ops_take.py" in str(info.value)


def test_float_labels_raise_index_error() -> None:
    """Labels traced as floats (the default type) are refused as NumPy refuses float indices."""
    def loss(logp, labels):
        return -np.mean(logp[np.arange(logp.shape[0]), labels])

    with pytest.raises(IndexError, match="declare integer labels as i64"):
        diffc.compile(loss, args={"logp": "f64[m,c]", "labels": "f64[m]"}).source  # noqa: B018
    with pytest.raises(IndexError, match="declare integer labels as i64"):
        diffc.compile(loss)(rng.normal(size=(3, 2)), np.array([0.0, 1.0, 1.0]))  # types from the call


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_floats_for_integer_labels_raise_index_error_at_the_call(backend: str) -> None:
    """Labels declared i64 and passed as floats are not cast (NumPy's indexing refuses floats too)."""
    def loss(logp, labels):
        return -np.mean(logp[np.arange(logp.shape[0]), labels]) + np.sum(logp[0, labels[0]])

    f = diffc.compile(loss, args={"logp": "f64[m,c]", "labels": "i64[m]"}, backend=backend)
    logp = rng.normal(size=(3, 2))
    assert f(logp, np.array([0, 1, 1])) == pytest.approx(float(loss(logp, np.array([0, 1, 1]))))
    for call in (f, f.grad):
        with pytest.raises(IndexTypeError, match="argument 'labels' is i64\\[m\\].*got float64"):
            call(logp, np.array([0.0, 1.0, 1.0]))


def test_refused_forms_name_themselves() -> None:
    cases = [
        (lambda x, idx: x[x > 0], "returning x\\[mask\\]"),
        (lambda x, idx: np.max(x[x > 0]), "np.max\\(x\\[mask\\]\\)"),
        (lambda x, idx: np.sum(x[x > 0] * x[x < 0]), "selections by two different masks"),
        (lambda x, idx: np.sum(x[x > 0] * x), "does not broadcast against the unmasked axes"),
        (lambda x, idx: np.sum(np.exp(x[x > 0], out=x)), "np.exp of x\\[mask\\]"),
        (lambda x, idx: x[x > 0].std(), "x\\[mask\\].std"),
        (lambda x, idx: np.sum(x[x > 0], keepdims=True), "keepdims"),
        (lambda x, idx: np.sum(x[idx, idx]), "row index must be np.arange"),
        (lambda x, idx: np.sum(x[x > 0, 0]), "whole key"),
    ]
    for fn, message in cases:
        with pytest.raises(TraceError, match=message):
            diffc.compile(fn, args={"x": "f64[n,k]", "idx": "i64[j]"}, backend="numpy").source  # noqa: B018


def test_assignment_refusals() -> None:
    def into_view(x):
        y = x[1:]
        y[0] = 1.0
        return np.sum(x)

    def into_transpose(X):
        Y = X.T
        Y[0] = 1.0
        return np.sum(X)

    def array_through_index(x, idx):
        y = x * 1.0
        y[idx] = x[:2]
        return np.sum(y)

    for fn, types, message in ((into_view, {"x": "f64[n]"}, "assigning into a view"),
                               (into_transpose, {"X": "f64[n,n]"}, "assigning into a view"),
                               (array_through_index, {"x": "f64[n]", "idx": "i64[2]"}, "last of repeated")):
        with pytest.raises(TraceError, match=message):
            diffc.compile(fn, args=types, backend="numpy").source  # noqa: B018


def test_assignment_does_not_touch_other_values() -> None:
    """y = x * 1 is a copy in NumPy: assigning into y leaves x (and values read from it before) unchanged."""
    def fn(x):
        y = x * 1.0
        before = y[0]
        y[0] = 10.0
        y[x > 0.5] = 3.0
        return np.sum(y) + before + np.sum(x)

    f = diffc.compile(fn, args={"x": "f64[n]"}, backend="numpy")
    x = rng.normal(size=5)
    check_grad(f, (x,), f=lambda x: fn(x.copy()))


def test_mask_of_a_wrong_shape_is_refused() -> None:
    with pytest.raises(IndexError, match="boolean index did not match"):
        diffc.compile(lambda x: np.sum(x[np.array([True, False])]), args={"x": "f64[3]"}).source  # noqa: B018
    with pytest.raises(ShapeError):
        f = diffc.compile(lambda x, m: np.sum(x[m]), args={"x": "f64[n]", "m": "bool[k]"}, backend="numpy")
        f(np.ones(3), np.ones(2, dtype=bool))


def test_mean_of_an_empty_selection_is_nan_as_numpy() -> None:
    f = diffc.compile(lambda x: np.mean(x[x > 100.0]), args={"x": "f64[n]"}, backend="numpy")
    with np.errstate(all="ignore"):
        assert np.isnan(f(np.zeros(4)))


# ---------------------------------------------------------------------------
# hypothesis: shapes, axes, index arrays, against NumPy


@st.composite
def take_cases(draw: Any) -> tuple[tuple[int, ...], int, np.ndarray]:
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    axis = draw(st.integers(0, len(shape) - 1))
    size = shape[axis]
    idx_shape = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=2)))
    idx = np.array(draw(st.lists(st.integers(-size, size - 1), min_size=int(np.prod(idx_shape)),
                                 max_size=int(np.prod(idx_shape)))), dtype=np.int64).reshape(idx_shape)
    return shape, axis, idx


@settings(max_examples=60, deadline=None)
@given(take_cases(), st.sampled_from(["numpy", "numba-plain"]), st.booleans())
def test_take_on_any_axis_matches_numpy(case: Any, backend: str, by_key: bool) -> None:
    shape, axis, idx = case
    def fn(x, idx):
        picked = x[(slice(None),) * axis + (idx,)] if by_key else np.take(x, idx, axis=axis)
        return np.sum(np.sin(picked) * picked)

    types = {"x": "f64[" + ",".join(f"s{k}" for k in range(len(shape))) + "]",
             "idx": "i64" + ("[" + ",".join(f"t{k}" for k in range(idx.ndim)) + "]" if idx.ndim else "")}
    x = np.random.default_rng(1).normal(size=shape)
    ix = idx if idx.ndim else int(idx)
    want = float(fn(x, ix))
    expected = np.zeros(shape)
    picked = np.take(x, idx, axis=axis)
    np.add.at(expected, (slice(None),) * axis + (idx,), np.cos(picked) * picked + np.sin(picked))
    if backend == "numpy":
        value, grads = diffc.compile(fn, args=types, backend="numpy").value_and_grad(x, ix)
    else:
        namespace = load_compiled(diffc.compile(fn, args=types), parallel_threshold=0)
        value, grads = call_plain(namespace["value_and_grad"], x, ix)
    assert value == pytest.approx(want, rel=1e-12, abs=1e-12)
    (grad,) = as_tuple(grads, 1)
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.data())
def test_mixed_keys_match_numpy(rows: int, cols: int, data: Any) -> None:
    """Keys mixing an index array with ints, slices and new axes: NumPy's result shape and values."""
    idx = np.array(data.draw(st.lists(st.integers(-cols, cols - 1), min_size=1, max_size=4)), dtype=np.int64)
    first = data.draw(st.sampled_from([slice(None), 0, -1, slice(1, None), None]))
    last = data.draw(st.sampled_from(["idx-last", "idx-middle"]))
    key = (first, slice(None), idx) if last == "idx-last" else (first, idx, slice(None))
    sizes = {"r": rows, "c": cols}
    names = ("" if first is None else "a") + ("rc" if last == "idx-last" else "cr")
    shape = tuple(sizes.get(name, 2) for name in names)
    T = np.random.default_rng(rows).normal(size=shape)
    want = T[key]

    def fn(T, idx):
        return T[(first, slice(None), idx) if last == "idx-last" else (first, idx, slice(None))]

    types = {"T": f"f64[{','.join(names)}]", "idx": "i64[j]"}
    for got in (diffc.compile(fn, args=types, backend="numpy")(T, idx),
                call_plain(load_compiled(diffc.compile(fn, args=types))["forward"], T, idx)):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# integer results: argmax, argmin, argsort against NumPy (ties, NaN)


ARG_OUTPUTS = [  # (traced, NumPy's with a stable sort)
    (lambda X: np.argmax(X), lambda X: np.argmax(X)),
    (lambda X: np.argmin(X, axis=0), lambda X: np.argmin(X, axis=0)),
    (lambda X: X.argmax(axis=1, keepdims=True), lambda X: X.argmax(axis=1, keepdims=True)),
    (lambda X: np.argsort(X, axis=0), lambda X: np.argsort(X, axis=0, kind="stable")),
    (lambda X: X.argsort(), lambda X: X.argsort(kind="stable")),
    (lambda X: np.argsort(X, axis=None), lambda X: np.argsort(X, axis=None, kind="stable")),
]


@pytest.mark.parametrize("backend", ["numpy", "numba-plain", pytest.param("numba", marks=pytest.mark.slow)])
@pytest.mark.parametrize("case", range(len(ARG_OUTPUTS)))
def test_integer_results_match_numpy(backend: str, case: int) -> None:
    traced, reference = ARG_OUTPUTS[case]
    types = {"X": "f64[m,k]"}
    if backend == "numba-plain":
        forward = load_compiled(diffc.compile(traced, args=types))["forward"]
    else:
        forward = diffc.compile(traced, args=types, backend=backend)
    ties = np.random.default_rng(3).integers(0, 3, size=(5, 4)).astype(np.float64)
    with_nan = np.random.default_rng(4).normal(size=(5, 4))
    with_nan[2, 1] = with_nan[3, 3] = np.nan
    for X in (ties, with_nan, np.random.default_rng(5).normal(size=(1, 3))):
        got, want = call_plain(forward, X), reference(X)
        assert np.asarray(got).dtype == np.int64
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ["numpy", "numba-plain"])
def test_take_along_axis_out_of_range_raises(backend: str) -> None:
    def fn(X, idx):
        return np.sum(np.take_along_axis(X, idx, axis=1))

    types = {"X": "f64[m,k]", "idx": "i64[m,j]"}
    call = (diffc.compile(fn, args=types, backend="numpy").value_and_grad if backend == "numpy"
            else load_compiled(diffc.compile(fn, args=types))["value_and_grad"])
    X = rng.normal(size=(2, 3))
    for bad in (np.array([[0], [3]]), np.array([[-4], [0]])):
        with pytest.raises(IndexError, match="out of bounds"):
            call(X, bad)


@st.composite
def mask_cases(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    covered = draw(st.integers(1, len(shape)))
    bits = draw(st.lists(st.booleans(), min_size=int(np.prod(shape[:covered])),
                         max_size=int(np.prod(shape[:covered]))))
    mask = np.array(bits, dtype=bool).reshape(shape[:covered])
    return np.random.default_rng(len(bits)).normal(size=shape), mask


@settings(max_examples=40, deadline=None)
@given(mask_cases(), st.sampled_from(["numpy", "numba-plain"]))
def test_masks_match_numpy(case: Any, backend: str) -> None:
    """Masks covering leading axes: the sum, the mean and an assignment, against NumPy and the closed form."""
    x, mask = case

    def fn(x, mask):
        y = x * 2.0
        y[mask] = 1.5
        return np.sum(np.sin(x)[mask]) + np.mean(x[mask]) + np.sum(y * x)

    types = {"x": "f64[" + ",".join(f"s{k}" for k in range(x.ndim)) + "]",
             "mask": "bool[" + ",".join(f"s{k}" for k in range(mask.ndim)) + "]"}
    full = np.broadcast_to(mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)), x.shape)
    count = np.count_nonzero(full)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's mean of nothing warns, and is NaN
        want = fn(x.copy(), mask)
        grad_want = np.where(full, np.cos(x) + 1.0 / count + 1.5, 4.0 * x)
        if backend == "numpy":
            value, grads = diffc.compile(fn, args=types, backend="numpy").value_and_grad(x, mask)
        else:
            namespace = load_compiled(diffc.compile(fn, args=types), parallel_threshold=0)
            value, grads = call_plain(namespace["value_and_grad"], x, mask)
    (grad,) = as_tuple(grads, 1)
    if count == 0:  # the mean of nothing is NaN, as NumPy's, and so is its gradient
        assert np.isnan(value) and np.isnan(want)
        return
    assert value == pytest.approx(float(want), rel=1e-12)
    np.testing.assert_allclose(grad, grad_want, rtol=1e-12, atol=1e-12)


@st.composite
def mixed_keys(draw: Any) -> tuple[np.ndarray, tuple[Any, ...]]:
    """An array of rank 1-3 and a key of one index array among ints, slices, new axes and an ellipsis."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    at = draw(st.integers(0, len(shape) - 1))
    items: list[Any] = []
    for axis, size in enumerate(shape):
        if axis == at:
            count = draw(st.integers(1, 3))
            items.append(np.array(draw(st.lists(st.integers(-size, size - 1), min_size=count, max_size=count))))
        elif draw(st.booleans()):
            items.append(draw(st.integers(-size, size - 1)))
        else:
            items.append(slice(draw(st.sampled_from([None, 0, 1, -1])), draw(st.sampled_from([None, 2, -1])),
                               draw(st.sampled_from([None, 1, 2, -1]))))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()) and not isinstance(items[-1], np.ndarray):
        items[-1] = Ellipsis
    return np.random.default_rng(len(shape)).normal(size=shape), tuple(items)


@settings(max_examples=60, deadline=None)
@given(mixed_keys(), st.sampled_from(["numpy", "numba-plain"]))
def test_random_keys_match_numpy(case: Any, backend: str) -> None:
    """NumPy's result (values and shape, the array's axes placed as NumPy places them) and its gradient."""
    T, key = case
    arrays = [k for k in key if isinstance(k, np.ndarray)]

    def traced(T, idx):
        return T[tuple(idx if isinstance(k, np.ndarray) else k for k in key)]

    def loss(T, idx):
        return np.sum(np.sin(traced(T, idx)) * 1.5)

    types = {"T": "f64[" + ",".join(f"s{k}" for k in range(T.ndim)) + "]", "idx": "i64[j]"}
    want = T[key]
    (idx,) = arrays
    if backend == "numpy":
        got = diffc.compile(traced, args=types, backend="numpy")(T, idx)
        value, grads = diffc.compile(loss, args=types, backend="numpy").value_and_grad(T, idx)
    else:
        got = call_plain(load_compiled(diffc.compile(traced, args=types))["forward"], T, idx)
        value, grads = call_plain(load_compiled(diffc.compile(loss, args=types))["value_and_grad"], T, idx)
    assert np.shape(got) == want.shape
    np.testing.assert_array_equal(got, want)
    assert value == pytest.approx(float(loss(T, idx)), rel=1e-12, abs=1e-12)
    (grad,) = as_tuple(grads, 1)
    np.testing.assert_allclose(grad, numeric_grad(loss, (T, idx), wrt=[0])[0], rtol=1e-6, atol=1e-8)
