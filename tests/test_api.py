"""``diffc.compile`` and the function it returns, used as a user would.

Calls, gradients, vector-Jacobian products, argument binding, ``wrt``, the
types that come back, the readable attributes, shape checks at the door,
memory layouts, threads, integer data, and what ``import diffc`` costs.
References are hand-derived formulas and NumPy.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import diffc
import diffc.api
import diffc.cache
from diffc.ir import DType, Graph, Program

XW = {"X": "f64[m,n]", "w": "f64[n]"}
LAYOUT_EXPR = "sum(tanh(X @ w) * v) + sum(X * X) * 0.5"
LAYOUT_ARGS = {"X": "f64[m,n]", "w": "f64[n]", "v": "f64[m]"}


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5)


# ---------------------------------------------------------------------------
# calls, gradients, vjp


def test_call_grad_value_and_grad(data: Any) -> None:
    """loss = sum((X w - y)^2): grad_w = 2 X^T r, grad_X = 2 r w^T, grad_y = -2 r."""
    mat, w, y = data
    f = diffc.compile("sum((X @ w - y) ** 2)", args={**XW, "y": "f64[m]"}, backend="numpy")
    r = mat @ w - y
    assert f(mat, w, y) == pytest.approx(np.sum(r ** 2), rel=1e-14)
    g_mat, gw, gy = f.grad(mat, w, y)
    np.testing.assert_allclose(g_mat, 2 * np.outer(r, w), rtol=1e-13)
    np.testing.assert_allclose(gw, 2 * mat.T @ r, rtol=1e-13)
    np.testing.assert_allclose(gy, -2 * r, rtol=1e-13)
    value, grads = f.value_and_grad(mat, w, y)
    assert value == f(mat, w, y)
    for a, b in zip(grads, (g_mat, gw, gy), strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(g.shape == x.shape for g, x in zip(grads, (mat, w, y), strict=True))


def test_vjp_of_an_array_valued_function(data: Any) -> None:
    """f = exp(X w): vjp with cotangent c is (diag(c * f) X-shaped outer, X^T (c * f))."""
    mat, w, _ = data
    f = diffc.compile("exp(X @ w)", args=XW, backend="numpy")
    out = np.exp(mat @ w)
    np.testing.assert_allclose(f(mat, w), out, rtol=1e-14)
    c = np.linspace(-1.0, 2.0, 5)
    g_mat, gw = f.vjp(mat, w, c)
    np.testing.assert_allclose(g_mat, np.outer(c * out, w), rtol=1e-13)
    np.testing.assert_allclose(gw, mat.T @ (c * out), rtol=1e-13)
    g_mat2, gw2 = f.vjp(mat, w, cotangent=c)
    np.testing.assert_array_equal(g_mat, g_mat2)
    np.testing.assert_array_equal(gw, gw2)
    bare = diffc.compile("exp(X @ w)", args=XW, wrt="w", backend="numpy")
    np.testing.assert_allclose(bare.vjp(mat, w, c), gw, rtol=1e-15)


def test_grad_of_an_array_valued_function_points_to_vjp(data: Any) -> None:
    mat, w, _ = data
    f = diffc.compile("exp(X @ w)", args=XW, backend="numpy")
    with pytest.raises(diffc.DiffcError, match="vjp"):
        f.grad(mat, w)
    with pytest.raises(diffc.DiffcError, match="vjp"):
        f.value_and_grad(mat, w)


def test_vjp_of_a_scalar_function_is_the_scaled_gradient() -> None:
    f = diffc.compile("a * sin(b)", backend="numpy")
    da, db = f.grad(2.0, 0.5)
    assert f.vjp(2.0, 0.5, 3.0) == pytest.approx((3.0 * da, 3.0 * db), rel=1e-15)


def test_vjp_with_a_cotangent_of_the_wrong_shape(data: Any) -> None:
    mat, w, _ = data
    f = diffc.compile("exp(X @ w)", args=XW, backend="numpy")
    with pytest.raises(diffc.ShapeError):
        f.vjp(mat, w, np.ones(4))
    with pytest.raises(diffc.ShapeError):
        f.vjp(mat, w, np.ones((5, 1)))


# ---------------------------------------------------------------------------
# binding arguments like a Python function


def test_keyword_arguments() -> None:
    f = diffc.compile("a - 2.0 * b", backend="numpy")
    assert f(5.0, 1.0) == f(a=5.0, b=1.0) == f(b=1.0, a=5.0) == f(5.0, b=1.0) == 3.0
    assert f.grad(b=1.0, a=5.0) == (1.0, -2.0)
    assert f.value_and_grad(5.0, b=1.0) == (3.0, (1.0, -2.0))


@pytest.mark.parametrize("call", [
    lambda f: f(1.0),
    lambda f: f(1.0, 2.0, 3.0),
    lambda f: f(1.0, a=2.0),
    lambda f: f.grad(1.0),
    lambda f: f.value_and_grad(),
    lambda f: f.vjp(1.0, 2.0),
])
def test_wrong_number_of_arguments_names_the_signature(call: Any) -> None:
    f = diffc.compile("a - 2.0 * b", backend="numpy")
    with pytest.raises(TypeError, match=r"\(a, b"):
        call(f)


@pytest.mark.parametrize("call", [lambda f: f(1.0, 2.0, c=3.0), lambda f: f(1.0, c=3.0),
                                  lambda f: f.grad(a=1.0, c=2.0)])
def test_an_unknown_keyword_is_named(call: Any) -> None:
    f = diffc.compile("a - 2.0 * b", backend="numpy")
    with pytest.raises(TypeError, match=r"\(a, b\).*unexpected keyword argument 'c'"):
        call(f)


def test_arguments_named_like_the_methods_parameters() -> None:
    """An argument called self or cotangent is an argument like any other, by keyword too."""
    f = diffc.compile("self * cotangent", backend="numpy")
    assert f(self=2.0, cotangent=3.0) == 6.0
    assert f.grad(self=2.0, cotangent=3.0) == (3.0, 2.0)
    assert f.vjp(2.0, 3.0, 10.0) == (30.0, 20.0)
    assert f.vjp(self=2.0, cotangent=3.0, cotangent_=10.0) == (30.0, 20.0)


def test_a_traced_function_binds_like_itself() -> None:
    def loss(w: "f64[n]", mat: "f64[m,n]", scale: "f64" = 1.0) -> Any:  # noqa: F821, UP037 - diffc types
        return scale * np.sum(np.tanh(mat @ w))

    f = diffc.compile(loss, backend="numpy")
    mat, w = np.arange(6.0).reshape(2, 3) / 10, np.array([0.5, -0.2, 0.1])
    want = 2.0 * np.sum(np.tanh(mat @ w))
    assert f(w, mat, 2.0) == pytest.approx(want, rel=1e-15)
    assert f(mat=mat, scale=2.0, w=w) == pytest.approx(want, rel=1e-15)
    with pytest.raises(TypeError, match=r"\(w, mat, scale=1\.0\)"):
        f(w, mat, 2.0, 3.0)


# ---------------------------------------------------------------------------
# wrt


def test_wrt_default_is_every_float_input_in_order() -> None:
    f = diffc.compile("c * a + b * b", backend="numpy")
    assert f.grad(1.0, 2.0, 3.0) == (2.0, 1.0, 6.0)  # c=1, a=2, b=3: d/dc, d/da, d/db, by first appearance
    g = diffc.compile("c * a + b * b", args=["a", "b", "c"], backend="numpy")
    assert g.grad(2.0, 3.0, 1.0) == (1.0, 6.0, 2.0)


def test_wrt_a_bare_name_returns_a_bare_gradient(data: Any) -> None:
    mat, w, _ = data
    f = diffc.compile("sum(X @ w)", args=XW, wrt="w", backend="numpy")
    g = f.grad(mat, w)
    assert isinstance(g, np.ndarray)
    np.testing.assert_allclose(g, mat.sum(axis=0), rtol=1e-14)
    value, g2 = f.value_and_grad(mat, w)
    np.testing.assert_array_equal(g, g2)
    assert f.grad_source.splitlines()[1].endswith("with respect to w.\"\"\"")


def test_wrt_a_tuple_keeps_its_order() -> None:
    f = diffc.compile("w * x + b", args={"x": "f64", "w": "f64", "b": "f64"}, wrt=("b", "w"), backend="numpy")
    assert f.grad(3.0, 2.0, 1.0) == (1.0, 3.0)
    one = diffc.compile("w * x + b", args={"x": "f64", "w": "f64", "b": "f64"}, wrt=("w",), backend="numpy")
    assert one.grad(3.0, 2.0, 1.0) == (3.0,)


def test_an_unknown_wrt_name_is_refused() -> None:
    with pytest.raises(diffc.DiffcError, match="'z'"):
        f = diffc.compile("a * b", wrt="z", backend="numpy")
        f.grad(1.0, 2.0)
    with pytest.raises(diffc.DiffcError, match="'z'"):
        f = diffc.compile("a * b", wrt=("a", "z"), backend="numpy")
        f.grad(1.0, 2.0)


def test_an_unknown_wrt_name_is_refused_at_compile_time() -> None:
    with pytest.raises(diffc.DiffcError):
        diffc.compile("a * b", wrt="z", backend="numpy")


# ---------------------------------------------------------------------------
# Python numbers in, Python floats out


def test_scalars_accept_ints_and_return_python_floats(backend: str) -> None:
    f = diffc.compile("a * b + 1", backend=backend)
    value = f(2, 3)
    assert type(value) is float and value == 7.0
    v, (da, db) = f.value_and_grad(2, 3)
    assert type(v) is float and type(da) is float and type(db) is float
    assert (v, da, db) == (7.0, 3.0, 2.0)
    assert f.grad(np.int64(2), np.float32(3)) == (3.0, 2.0)
    assert type(f(np.float64(2.0), 3)) is float


def test_a_scalar_reduction_of_an_array_returns_a_python_float() -> None:
    f = diffc.compile("sum(x * x)", args={"x": "f64[n]"}, backend="numpy")
    value, grad = f.value_and_grad(np.array([1.0, 2.0]))
    assert type(value) is float and value == 5.0
    np.testing.assert_array_equal(grad, [2.0, 4.0])  # one float input: its gradient alone


def test_python_lists_and_int_arrays_are_converted() -> None:
    f = diffc.compile("sum(x * w)", args={"x": "f64[n]", "w": "f64[n]"}, backend="numpy")
    assert f([1, 2, 3], np.array([1, 1, 2])) == 9.0
    gx, gw = f.grad([1, 2, 3], [1.0, 1.0, 2.0])
    assert gx.dtype == np.float64
    np.testing.assert_array_equal(gx, [1.0, 1.0, 2.0])
    np.testing.assert_array_equal(gw, [1.0, 2.0, 3.0])


def test_scalar_division_by_zero_follows_numpy_on_the_numpy_backend() -> None:
    """Scalars reach NumPy code as NumPy floats: 1/0 is inf, (-8) ** (1/3) is nan (no exception, no complex)."""
    f = diffc.compile("1.0 / a + b ** c", backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert f(0.0, 2.0, 2.0) == np.inf
        assert np.isnan(f(1.0, -8.0, 1.0 / 3.0))
        assert f(1.0, 10.0, 400.0) == np.inf
        value, (da, _, _) = f.value_and_grad(0.0, 2.0, 2.0)
    assert value == np.inf and da == -np.inf


# ---------------------------------------------------------------------------
# shorthands and readable attributes


def test_grad_and_value_and_grad_shorthands() -> None:
    assert diffc.grad("a * a * b", backend="numpy")(3.0, 2.0) == (12.0, 9.0)
    assert diffc.grad("a * a * b", wrt="a", backend="numpy")(3.0, 2.0) == 12.0
    assert diffc.value_and_grad("a * a * b", backend="numpy")(3.0, 2.0) == (18.0, (12.0, 9.0))
    assert diffc.value_and_grad("a * a * b", wrt=("b",), backend="numpy")(3.0, 2.0) == (18.0, (9.0,))


def test_readable_attributes_are_strings_right_away_for_text_and_sympy() -> None:
    sympy = pytest.importorskip("sympy")
    a, b = sympy.symbols("a b")
    for f in (diffc.compile("e = sin(a) * b"), diffc.compile(sympy.sin(a) * b),
              diffc.compile("sum(X @ w)", args=XW), diffc.compile("exp(X @ w)", args=XW)):
        for attr in ("source", "grad_source", "ir", "grad_ir"):
            text = getattr(f, attr)
            assert isinstance(text, str) and text, attr
        assert "def forward(" in f.source
        assert "_bar" in f.grad_source
        assert f.ir.startswith("def ")
        assert isinstance(f.module_source(), str)


def test_a_traced_function_without_types_says_how_to_give_them() -> None:
    def loss(w: Any, mat: Any) -> Any:
        return np.sum(mat @ w)

    f = diffc.compile(loss, backend="numpy")
    with pytest.raises(diffc.DiffcError, match="args="):
        _ = f.source
    mat, w = np.ones((2, 3)), np.ones(3)
    assert f(w, mat) == 6.0
    assert "def forward(w, mat):" in f.source  # known after the first call
    typed = diffc.compile(loss, args={"w": "f64[n]", "mat": "f64[m,n]"}, backend="numpy")
    assert "mat.T @" in typed.grad_source


def test_unknown_backend_and_input_kind_are_refused() -> None:
    with pytest.raises(diffc.DiffcError, match="backend"):
        diffc.compile("a * b", backend="jax")
    with pytest.raises(diffc.DiffcError):
        diffc.compile(42)


# ---------------------------------------------------------------------------
# shapes are checked at the door


def shape_error(call: Any) -> diffc.ShapeError:
    with pytest.raises(diffc.ShapeError) as info:
        call()
    assert isinstance(info.value, ValueError)
    return info.value


@pytest.fixture(scope="module")
def shared_numba() -> diffc.Compiled:
    """One Numba-compiled function for the shape and layout tests: Numba compiles are the slow part."""
    return diffc.compile(LAYOUT_EXPR, args=LAYOUT_ARGS, backend="numba")


def compiled_for(backend: str, shared: diffc.Compiled) -> diffc.Compiled:
    return shared if backend == "numba" else diffc.compile(LAYOUT_EXPR, args=LAYOUT_ARGS, backend="numpy")


def test_mismatched_sizes_raise_shape_error_naming_both_shapes(backend: str, shared_numba: diffc.Compiled) -> None:
    """X @ w with w too short, too long (which must not read past X's row), much too long; v against X's rows."""
    f = compiled_for(backend, shared_numba)
    mat, v = np.ones((5, 3)), np.ones(5)
    calls = (f.value_and_grad,) if backend == "numba" else (f, f.grad, f.value_and_grad)  # a Numba compile is ~5 s
    for w in (np.ones(2), np.ones(4), np.ones(100)):
        for call in calls:
            message = str(shape_error(lambda call=call, w=w: call(mat, w, v)))
            assert "(5, 3)" in message and f"({len(w)},)" in message, message
    for bad in (np.ones(4), np.ones(6), np.ones(1)):  # elementwise: v must have X's row count
        message = str(shape_error(lambda bad=bad: f.value_and_grad(mat, np.ones(3), bad)))
        assert "(5, 3)" in message and f"({len(bad)},)" in message, message


def test_a_vjp_checks_the_cotangent_size() -> None:
    g = diffc.compile("X @ w", args=XW, backend="numpy")
    message = str(shape_error(lambda: g.vjp(np.ones((5, 3)), np.ones(3), np.ones(4))))
    assert "(5, 3)" in message and "(4,)" in message


def test_wrong_rank_raises_shape_error() -> None:
    f = diffc.compile("sum(X @ w)", args=XW, backend="numpy")
    assert "rank" in str(shape_error(lambda: f(np.ones(3), np.ones(3))))
    shape_error(lambda: f(np.ones((2, 3)), np.ones((3, 1))))
    shape_error(lambda: f(np.ones((2, 3, 1)), np.ones(3)))
    g = diffc.compile("a * sum(x)", args={"a": "f64", "x": "f64[n]"}, backend="numpy")
    shape_error(lambda: g(np.ones(2), np.ones(2)))
    shape_error(lambda: g(1.0, 2.0))


def test_a_fixed_size_is_checked() -> None:
    f = diffc.compile("sum(x * v)", args={"x": "f64[3]", "v": "f64[n]"}, backend="numpy")
    assert f(np.ones(3), np.ones(3)) == 3.0
    shape_error(lambda: f(np.ones(4), np.ones(4)))


# ---------------------------------------------------------------------------
# memory layouts (Numba specialises on them)


def mixed_layouts(mat: np.ndarray, w: np.ndarray, v: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """Two calls cover Fortran order, strided and reversed views and read-only arrays (one compile each)."""
    wide = np.zeros((mat.shape[0], 2 * mat.shape[1]))
    wide[:, ::2] = mat
    spread = np.zeros(3 * w.size)
    spread[::3] = w
    frozen_v, frozen_w = v.copy(), w.copy()
    frozen_v.flags.writeable = False
    frozen_w.flags.writeable = False
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous and not spread[::3].flags.c_contiguous
    return {
        "fortran X, strided w, read-only v": (np.asfortranarray(mat), spread[::3], frozen_v),
        "strided X, read-only w, reversed v": (strided, frozen_w, v[::-1].copy()[::-1]),
    }


def test_memory_layouts_give_the_contiguous_result_on_numba(data: Any, shared_numba: diffc.Compiled) -> None:
    mat, w, _ = data
    v = np.linspace(-1.0, 1.0, mat.shape[0])
    f = shared_numba
    value, grads = f.value_and_grad(mat, w, v)
    assert value == pytest.approx(np.sum(np.tanh(mat @ w) * v) + 0.5 * np.sum(mat * mat), rel=1e-14)
    np.testing.assert_allclose(grads[0], np.outer((1 - np.tanh(mat @ w) ** 2) * v, w) + mat, rtol=1e-13)
    for name, args in mixed_layouts(mat, w, v).items():
        before = [a.copy() for a in args]
        got_value, got_grads = f.value_and_grad(*args)
        assert got_value == pytest.approx(value, rel=1e-13), name
        for got, want in zip(got_grads, grads, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14, err_msg=name)  # BLAS may round apart
        for a, b in zip(args, before, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: an input was written to")


# ---------------------------------------------------------------------------
# threads: one compile, under a lock, and equal results


def run_in_threads(fn: Any, count: int = 8) -> list[Any]:
    barrier = threading.Barrier(count)

    def work(_: int) -> Any:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


@pytest.fixture
def counted_loads(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A cold cache directory, and a record of every generated module diffc loads."""
    monkeypatch.setenv("DIFFC_CACHE_DIR", str(tmp_path))
    loads: list[str] = []
    real_load = diffc.cache.load_module

    def counting_load(text: str, *rest: Any) -> Any:
        loads.append(text)
        return real_load(text, *rest)

    monkeypatch.setattr(diffc.cache, "load_module", counting_load)
    return loads


def test_first_call_from_eight_threads_compiles_once_numpy(counted_loads: list[str]) -> None:
    mat = np.arange(12.0).reshape(4, 3) / 10
    w = np.array([0.3, -0.1, 0.2])
    f = diffc.compile("sum(exp(X @ w) * 0.5) + sum(w * w)", args=XW, backend="numpy")
    results = run_in_threads(lambda: f.value_and_grad(mat, w))
    assert len(counted_loads) == 1
    value, (g_mat, gw) = results[0]
    assert value == pytest.approx(0.5 * np.sum(np.exp(mat @ w)) + w @ w, rel=1e-14)
    np.testing.assert_allclose(gw, 0.5 * mat.T @ np.exp(mat @ w) + 2 * w, rtol=1e-14)
    for v, (g_mat2, gw2) in results[1:]:
        assert v == value
        np.testing.assert_array_equal(g_mat2, g_mat)
        np.testing.assert_array_equal(gw2, gw)


def test_first_call_from_eight_threads_compiles_once_numba(counted_loads: list[str]) -> None:
    """A scalar program, so that Numba's compile (which the eight threads race into) stays short."""
    f = diffc.compile("exp(a) * sin(b) + a * b", backend="numba")
    results = run_in_threads(lambda: f.value_and_grad(0.5, 2.0))
    assert len(counted_loads) == 1
    value = np.exp(0.5) * np.sin(2.0) + 1.0
    grads = (np.exp(0.5) * np.sin(2.0) + 2.0, np.exp(0.5) * np.cos(2.0) + 0.5)
    assert results[0][0] == pytest.approx(value, rel=1e-14)
    assert results[0][1] == pytest.approx(grads, rel=1e-14)
    assert all(r == results[0] for r in results)
    assert run_in_threads(lambda: f(0.5, 2.0)) == [results[0][0]] * 8


def test_a_traced_function_specialises_once_under_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Types come from the first call: eight first calls at once build one specialisation."""
    builds: list[int] = []

    def loss(x: Any, y: Any) -> Any:
        builds.append(1)
        return np.sum(np.sin(x) * y)

    f = diffc.compile(loss, backend="numpy")
    x, y = np.linspace(0.0, 1.0, 4), np.linspace(1.0, 2.0, 4)
    results = run_in_threads(lambda: f.grad(x, y))
    assert len(builds) == 1
    for gx, gy in results:
        np.testing.assert_allclose(gx, np.cos(x) * y, rtol=1e-15)
        np.testing.assert_allclose(gy, np.sin(x), rtol=1e-15)


# ---------------------------------------------------------------------------
# integer arrays are data


def test_integer_labels_are_data_not_differentiated(data: Any) -> None:
    """A hinge-like loss over int64 labels y in {-1, +1}: y enters where and a product, and has no gradient."""
    mat, w, _ = data
    y = np.array([1, -1, 1, 1, -1], dtype=np.int64)
    f = diffc.compile("sum(where(y > 0, X @ w, -(X @ w)) * y * 0.5)", args={**XW, "y": "i64[m]"},
                      backend="numpy")
    z = mat @ w
    assert f(mat, w, y) == pytest.approx(np.sum(np.where(y > 0, z, -z) * y * 0.5), rel=1e-14)
    grads = f.grad(mat, w, y)
    assert len(grads) == 2  # mat and w only
    s = np.where(y > 0, 1.0, -1.0) * y * 0.5
    np.testing.assert_allclose(grads[0], np.outer(s, w), rtol=1e-14)
    np.testing.assert_allclose(grads[1], mat.T @ s, rtol=1e-14)
    with pytest.raises(diffc.DiffcError, match="'y'"):
        g = diffc.compile("sum(X @ w * y)", args={**XW, "y": "i64[m]"}, wrt="y", backend="numpy")
        g.grad(mat, w, y)
    with pytest.raises(diffc.DiffcError):
        g = diffc.compile("sum(X @ w * y)", args={**XW, "y": "i64[m]"}, wrt=("w", "y"), backend="numpy")
        g.grad(mat, w, y)


def test_an_integer_array_for_a_traced_function_is_data() -> None:
    def loss(w: Any, labels: Any) -> Any:
        return np.sum(w * labels)

    f = diffc.compile(loss, backend="numpy")
    w, labels = np.array([0.5, 2.0]), np.array([3, -1])
    assert f(w, labels) == -0.5
    grad = f.grad(w, labels)  # one float argument: its gradient alone, not a 1-tuple
    np.testing.assert_array_equal(grad, [3.0, -1.0])


# ---------------------------------------------------------------------------
# a hand-built program


def test_a_hand_built_program_compiles() -> None:
    g = Graph()
    x = g.input("x", DType.F64, ())
    y = g.input("y", DType.F64, ())
    program = Program(g, [x, y], [x * x * y + y], ["z"], name="poly")
    f = diffc.compile(program, backend="numpy")
    assert f.value_and_grad(3.0, 2.0) == (20.0, (12.0, 10.0))
    assert "def forward(x, y):" in f.source


# ---------------------------------------------------------------------------
# what importing costs


def test_import_diffc_does_not_import_sympy() -> None:
    run = subprocess.run([sys.executable, "-c", "import diffc, sys; print('sympy' in sys.modules)"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_several_outputs_are_all_returned(backend: str) -> None:
    """A tuple or a dict of values comes back whole (not its first value), on every call path; a gradient
    of several values is refused with what to do."""
    x = np.arange(3.0)
    pair = diffc.compile(lambda x: (np.sum(x), x * 2), backend=backend, args={"x": "f64[n]"})
    named = diffc.compile(lambda x: {"total": np.sum(x), "twice": x * 2}, backend=backend, args={"x": "f64[n]"})
    for _ in range(2):  # the first call and the fast entry after it
        total, twice = pair(x)
        assert total == 3.0 and np.array_equal(twice, 2 * x)
        result = named(x)
        assert list(result) == ["total", "twice"] and result["total"] == 3.0
        assert np.array_equal(result["twice"], 2 * x)
    for f in (pair, named):
        with pytest.raises(diffc.DiffcError, match="returns 2 values .* needs one output"):
            f.grad(x)
        with pytest.raises(diffc.DiffcError, match="needs one output"):
            f.vjp(x, 1.0)
