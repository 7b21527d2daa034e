"""The user's calling conventions, arrays built from traced values, sizes the code can use, x ** k at 0.

Every gradient is checked against central differences (conftest.numeric_grad)
on the NumPy back end and on the Numba back end's module run as plain Python
(tests/plain_numba.py); a small sample compiles with real Numba.
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import as_tuple, assert_close, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from plain_numba import call_plain, load_text

import diffc
from diffc.errors import DiffcError, TraceError
from diffc.pytree import Arguments, flatten, leaf_count, leaf_name, unflatten

rng = np.random.default_rng(11)

BACKENDS = ["numpy", "plain"]


def value_and_grad(fn: Any, backend: str, *args: Any, **options: Any) -> Any:
    """``value_and_grad`` through diffc's own binding, on the NumPy back end or the Numba module run as Python."""
    if backend != "plain":
        return diffc.compile(fn, backend=backend, **options).value_and_grad(*args)
    compiled = diffc.compile(fn, backend="numba", **options)
    values, omitted = compiled._bind(args, {})
    spec, leaves = compiled._prepare(values, omitted)
    namespace = load_text(spec.module_source("plain", standalone=True))
    value, grads = call_plain(namespace["value_and_grad"], *leaves)
    return value, compiled._gradients(spec, grads)


def check(fn: Any, args: list[Any], backend: str, wrt: list[int] | None = None, rtol: float = 1e-6,
          **options: Any) -> Any:
    """diffc's value and gradients of ``fn`` against ``fn`` itself and central differences."""
    value, grads = value_and_grad(fn, backend, *args, **options)
    indices = wrt if wrt is not None else [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]
    assert_close(value, fn(*args), rtol=1e-12, atol=1e-12, what="value")
    for got, want in zip(as_tuple(grads, len(indices)), numeric_grad(fn, args, wrt=indices), strict=True):
        assert_close(got, want, rtol=rtol, atol=1e-7)
    return grads


# ---------------------------------------------------------------------------
# trees: flatten / unflatten


leaves_st = st.one_of(st.floats(-5, 5), st.integers(-3, 3).map(float),
                      st.integers(0, 3).map(lambda n: np.arange(n + 1.0)))
trees_st = st.recursive(leaves_st, lambda children: st.one_of(
    st.lists(children, min_size=1, max_size=3).filter(lambda v: not all(isinstance(c, float) for c in v)),
    st.lists(children, min_size=1, max_size=3).map(tuple).filter(lambda v: not all(isinstance(c, float) for c in v)),
    st.dictionaries(st.sampled_from(["W", "b", "gamma", "layer 1"]), children, min_size=1, max_size=3)),
    max_leaves=8)


def same_structure(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_structure(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and not all(isinstance(v, float) for v in a):
        return type(a) is type(b) and len(a) == len(b) and all(same_structure(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(np.asarray(a), np.asarray(b))


@settings(max_examples=200, deadline=None)
@given(trees_st)
def test_flatten_then_unflatten_is_the_identity(tree: Any) -> None:
    leaves, structure = flatten(tree)
    assert leaf_count(structure) == len(leaves)
    assert same_structure(unflatten(structure, [leaf for _, leaf in leaves]), tree)
    names = [leaf_name("params", path) for path, _ in leaves]
    assert all(name.isidentifier() for name in names) and len(set(names)) == len(names)


def test_leaves_and_names() -> None:
    params = [(np.ones(2), 0.5), {"W": np.eye(2), "b": [1.0, 2.0]}]
    leaves, tree = flatten(params)
    assert [leaf_name("params", p) for p, _ in leaves] == ["params_0_0", "params_0_1", "params_1_W", "params_1_b"]
    assert isinstance(leaves[3][1], list)  # a list of numbers is one array leaf, as NumPy reads it
    arguments = Arguments(["params"], [("tree", tree)], [["params_0_0", "params_0_1", "params_1_W", "params_1_b"]])
    grads = arguments.gradients(["params_0_1", "params_1_W"], [2.0, "gW"], bare=True)
    assert grads == [(None, 2.0), {"W": "gW", "b": None}]


# ---------------------------------------------------------------------------
# trees as arguments: gradients of the same structure


def mlp(params: Any, X: Any, y: Any) -> Any:
    h = X
    for W, b in params[:-1]:
        h = np.tanh(h @ W + b)
    W, b = params[-1]
    return np.mean((h @ W + b - y) ** 2)


def flat_reference(fn: Any, tree: Any, *rest: Any) -> list[Any]:
    """Central differences of ``fn`` in each leaf of ``tree``."""
    found, structure = flatten(tree)
    leaves = [np.asarray(leaf, dtype=np.float64) for _, leaf in found]

    def on_leaves(*values: Any) -> float:
        return float(fn(unflatten(structure, list(values)), *rest))

    return numeric_grad(on_leaves, leaves)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_list_of_weight_tuples(backend: str) -> None:
    params = [(rng.normal(size=(3, 4)), rng.normal(size=4)), (rng.normal(size=(4, 2)), rng.normal(size=2))]
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    value, grads = value_and_grad(mlp, backend, params, X, y, wrt="params")
    assert value == pytest.approx(mlp(params, X, y), rel=1e-12)
    assert isinstance(grads, list) and all(isinstance(layer, tuple) and len(layer) == 2 for layer in grads)
    got = [leaf for _, leaf in flatten(grads)[0]]
    for g, want in zip(got, flat_reference(mlp, params, X, y), strict=True):
        assert_close(g, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dict_of_parameters_and_data(backend: str) -> None:
    def loss(p: Any, data: Any) -> Any:
        z = data["X"] @ p["w"] + p["b"]
        return np.sum(np.log1p(np.exp(-data["y"] * z))) + p["scale"] * np.sum(p["w"] ** 2)

    p = {"w": rng.normal(size=3), "b": 0.3, "scale": 0.1}
    data = {"X": rng.normal(size=(6, 3)), "y": np.sign(rng.normal(size=6))}
    value, grads = value_and_grad(loss, backend, p, data)
    g_p, g_data = grads  # two differentiated arguments: a tuple of two trees
    assert set(g_p) == {"w", "b", "scale"} and isinstance(g_p["b"], float) and set(g_data) == {"X", "y"}
    for key, want in zip(["w", "b", "scale"], flat_reference(lambda q: loss(q, data), p), strict=True):
        assert_close(g_p[key], want, rtol=1e-6, atol=1e-8)
    compiled = diffc.compile(loss, wrt="p", backend="numpy")
    compiled.value_and_grad(p, data)
    assert "p_w" in compiled.ir and "data_X" in compiled.ir and "p_scale" in compiled.ir


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_leaves_keep_their_dtype(backend: str) -> None:
    def loss(p: Any) -> Any:
        return np.sum(np.tanh(p[0]) * p[1][0]) + p[1][1] ** 2

    p = (rng.normal(size=3).astype(np.float32), [rng.normal(size=3).astype(np.float32), np.float32(0.5)])
    _, (g0, (g10, g11)) = value_and_grad(loss, backend, p)
    assert g0.dtype == g10.dtype == np.float32
    np.testing.assert_allclose(g0, (1 - np.tanh(p[0]) ** 2) * p[1][0], rtol=1e-5)
    np.testing.assert_allclose(g10, np.tanh(p[0]), rtol=1e-5)
    assert g11 == pytest.approx(1.0, rel=1e-6)


def test_integer_leaves_are_data() -> None:
    def loss(p: Any) -> Any:
        return np.sum(p["w"] ** 2 * p["k"])

    grads = diffc.compile(loss, backend="numpy").grad({"w": np.array([1.0, 2.0]), "k": np.array([1, 3])})
    assert grads["k"] is None
    np.testing.assert_allclose(grads["w"], [2.0, 12.0])  # 2 w k


@pytest.mark.slow
def test_a_tree_compiles_with_real_numba() -> None:
    params = [(rng.normal(size=(3, 4)), rng.normal(size=4)), (rng.normal(size=(4, 2)), rng.normal(size=2))]
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    f = diffc.compile(mlp, wrt="params")
    want = diffc.compile(mlp, wrt="params", backend="numpy").grad(params, X, y)
    got = f.grad(params, X, y)
    for g, w in zip(flatten(got)[0], flatten(want)[0], strict=True):
        assert_close(g[1], w[1], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# one differentiated argument: its gradient alone


def rosenbrock(x: Any) -> Any:
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_scipy_minimize_with_jac_grad(backend: str) -> None:
    optimize = pytest.importorskip("scipy.optimize")
    f = diffc.compile(rosenbrock, backend=backend)
    result = optimize.minimize(f, np.zeros(5), jac=f.grad, method="BFGS", options={"gtol": 1e-9})
    assert result.success
    np.testing.assert_allclose(result.x, np.ones(5), atol=1e-5)
    assert isinstance(f.grad(np.zeros(5)), np.ndarray)


def test_one_or_several_gradients() -> None:
    f = diffc.compile(lambda x, k: np.sum(x ** 2) * 3, backend="numpy")
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(f.grad(x, np.array([1, 2])), [6.0, 12.0])  # one float argument: bare
    two = diffc.compile(lambda a, b: a * b, backend="numpy")
    assert two.grad(2.0, 3.0) == (3.0, 2.0)
    assert two.value_and_grad(2.0, 3.0) == (6.0, (3.0, 2.0))
    assert diffc.compile(lambda a, b: a * b, wrt="a", backend="numpy").grad(2.0, 3.0) == 3.0
    assert diffc.compile(lambda a, b: a * b, wrt=("a",), backend="numpy").grad(2.0, 3.0) == (3.0,)  # JAX's argnums
    assert diffc.compile("x * x", backend="numpy").grad(3.0) == 6.0
    assert diffc.compile(lambda x: x * x, backend="numpy").vjp(3.0, 2.0) == 12.0


def test_cli_wrt_gives_what_python_wrt_gives(tmp_path: Any) -> None:
    for wrt, expected in (("a", "3.0"), ("a,b", "(3.0, 2.0)")):
        out = tmp_path / f"m_{wrt.replace(',', '_')}.py"
        subprocess.run([sys.executable, "-m", "diffc", "emit", "a * b", "--wrt", wrt, "--backend", "numpy",
                        "-o", str(out)], check=True, capture_output=True)
        script = (f"import {out.stem} as m; g = m.grad(2.0, 3.0); "
                  "print(tuple(map(float, g)) if type(g) is tuple else float(g))")
        shown = subprocess.run([sys.executable, "-c", script],
                               cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()
        python = diffc.compile("a * b", wrt=wrt if "," not in wrt else tuple(wrt.split(",")), backend="numpy")
        assert shown == expected == str(python.grad(2.0, 3.0))


# ---------------------------------------------------------------------------
# default argument values


@pytest.mark.parametrize("backend", BACKENDS)
def test_defaults_are_constants_unless_named(backend: str) -> None:
    def loss(w: Any, X: Any, lam: Any = 0.5, axis: Any = 0, mode: Any = "mean") -> Any:
        r = np.sum(X * w, axis=axis)
        data = np.mean(r ** 2) if mode == "mean" else np.sum(r ** 2)
        return data + lam * np.sum(w ** 2)

    w, X = rng.normal(size=3), rng.normal(size=(4, 3))
    value, grads = value_and_grad(loss, backend, w, X, wrt="w")
    assert value == pytest.approx(loss(w, X), rel=1e-12)
    assert_close(grads, numeric_grad(lambda v: loss(v, X), [w])[0], rtol=1e-6, atol=1e-8)
    value, grads = value_and_grad(loss, backend, w, X, 2.0, 1, "sum")
    assert value == pytest.approx(loss(w, X, 2.0, 1, "sum"), rel=1e-12)
    g_w, g_x = grads  # lam passed, traced, but not differentiated by default
    assert_close(g_w, numeric_grad(lambda v: loss(v, X, 2.0, 1, "sum"), [w])[0], rtol=1e-6, atol=1e-8)
    _, (g_w, g_lam) = value_and_grad(loss, backend, w, X, wrt=("w", "lam"))
    assert g_lam == pytest.approx(np.sum(w ** 2), rel=1e-12)


def test_a_keyword_default_and_the_fast_path_agree() -> None:
    f = diffc.compile(lambda x, scale=2.0: scale * np.sum(x ** 2), backend="numpy")
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(f.grad(x), 4 * x)
    np.testing.assert_allclose(f.grad(x, 3.0), 6 * x)
    np.testing.assert_allclose(f.grad(x), 4 * x)  # the default again, after a call that passed it
    np.testing.assert_allclose(f.grad(x, scale=1.0), 2 * x)


# ---------------------------------------------------------------------------
# Python's builtins on traced values


def builtins_fn(a: Any, b: Any, x: Any) -> Any:
    return (max(a, b) + min(a, b, 0.5) + abs(a - b) + sum([a, b, 1.0]) + max([a * b, a]) + max(x) + min(x)
            + sum(x) + abs(x[0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_min_abs_sum(backend: str) -> None:
    check(builtins_fn, [0.7, -1.3, np.array([0.3, -2.0, 1.5])], backend)


def test_int_float_bool_of_a_traced_value_name_the_line() -> None:
    for fn, what in ((lambda x: int(x), "int()"), (lambda x: float(np.sum(x)), "float()"),
                     (lambda x: bool(x > 0), "bool()")):
        with pytest.raises(TraceError, match=r"test_calling\.py, line") as info:
            diffc.compile(fn, backend="numpy")(np.ones(3))
        assert what in str(info.value)


# ---------------------------------------------------------------------------
# arrays built from traced values


def construct(a: Any, b: Any, x: Any) -> Any:
    v = np.array([a, 2.0 * b, 1.0])
    m = np.array([[a, b], [b, a]])
    s = np.stack([x, x * a])
    h = np.hstack([x, a, [b, 1.0]])
    vs = np.vstack([x, np.ones(3), x * b])
    c = np.concatenate([x, np.array([a, b])])
    r = np.r_[a, x, b]
    cc = np.c_[x, x * b]
    return (np.sum(v ** 2) + np.sum(m @ v[:2]) + np.sum(s[1] ** 2) + np.sum(h * np.arange(6.0)) + np.sum(vs[2])
            + np.sum(c ** 3) + np.sum(r * np.arange(5.0)) + np.sum(cc @ np.array([1.0, 2.0]))
            + np.sum(np.asarray(x) ** 2) + np.sum([a, b]) + np.mean([a, b * b]) + np.max([a, b])
            + np.sum(np.array(x, dtype=float)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_construction(backend: str) -> None:
    check(construct, [0.7, -1.3, np.array([0.3, -2.0, 1.5])], backend)


def test_construction_dtypes_and_casts() -> None:
    def f(x: Any) -> Any:
        pair = np.array([x[0], 1.0])
        assert pair.dtype == x.dtype and np.asarray(x) is x
        return np.sum(pair * x.astype(np.float64)[:2]) + np.sum(x.astype(float)) + np.sum(x.astype(int))

    x = np.array([1.5, -2.25, 3.0], dtype=np.float32)
    value, grad = diffc.compile(f, backend="numpy").value_and_grad(x)
    assert value == pytest.approx(1.5 * 1.5 - 2.25 + 2.25 + 2.0, rel=1e-6)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, [2 * 1.5 + 1.0, 2.0, 1.0], rtol=1e-6)


def test_untraced_construction_is_numpys_own() -> None:
    seen = {}
    originals = (np.array, np.asarray, np.sum, np.r_, max, sum)

    def f(x: Any) -> Any:
        seen["array"] = np.array([[1, 2], [3, 4]])
        seen["r"] = np.r_[0:3, 7]
        return np.sum(x) + float(np.sum(seen["array"])) + max(1, 2) + sum(range(3))

    assert diffc.compile(f, backend="numpy")(np.ones(2)) == 2.0 + 10.0 + 2 + 3
    assert seen["array"].dtype == np.int64 and list(seen["r"]) == [0, 1, 2, 7]
    assert (np.array, np.asarray, np.sum, np.r_, max, sum) == originals  # put back when the trace ends


def test_a_ragged_list_names_the_line() -> None:
    with pytest.raises(DiffcError, match=r"test_calling\.py, line"):
        diffc.compile(lambda x: np.sum(np.array([x, x[1:]])), backend="numpy")(np.ones(3))


# ---------------------------------------------------------------------------
# sizes: specialised when the code needs an int


def uses_len(x: Any) -> Any:
    n = len(x)
    total = 0.0
    for i in range(n):
        total = total + (x[i] - i) ** 2
    return total / n


def uses_reshape(x: Any) -> Any:
    M = x.reshape(4, 3)
    return np.sum(np.tanh(M) @ np.arange(3.0)) + x.size


def uses_iteration(x: Any) -> Any:
    first, *rest = x
    return first * sum(xi ** 2 for xi in x) + np.sum(np.array(rest))


def uses_size_range(X: Any) -> Any:
    return sum(np.sum(X[i] ** 2) * i for i in range(X.shape[0])) / X.size


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("fn", "shapes"), [(uses_len, [(3,), (5,)]), (uses_reshape, [(12,), (12,)]),
                                              (uses_iteration, [(2,), (4,)]), (uses_size_range, [(2, 3), (4, 1)])])
def test_specialised_on_the_sizes_of_the_call(fn: Any, shapes: list[tuple[int, ...]], backend: str) -> None:
    for shape in shapes:
        check(fn, [rng.normal(size=shape)], backend)
    f = diffc.compile(fn, backend="numpy")
    first = f.grad(rng.normal(size=shapes[0]))
    why = f.stats["sizes"]
    assert why.startswith("specialised on the call's sizes") and "test_calling.py, line" in why
    assert np.shape(first) == shapes[0]
    if shapes[0] != shapes[1]:
        assert np.shape(f.grad(rng.normal(size=shapes[1]))) == shapes[1]
        assert np.shape(f.grad(rng.normal(size=shapes[0]))) == shapes[0]  # the first version again


def test_why_is_named() -> None:
    f = diffc.compile(uses_len, backend="numpy")
    f(np.ones(3))
    assert "len()" in f.stats["sizes"]
    g = diffc.compile(uses_reshape, backend="numpy")
    g(np.ones(12))
    assert "reshape" in g.stats["sizes"]
    with pytest.raises(diffc.errors.ShapeError):
        g(np.ones(10))


def test_symbolic_code_keeps_one_version() -> None:
    f = diffc.compile(lambda x: np.sum(x ** 2) / x.shape[0] + x.size, backend="numpy")
    for n in (2, 5, 9):
        np.testing.assert_allclose(f.grad(np.ones(n)), 2 * np.ones(n) / n)
    assert f.stats["sizes"] == "symbolic" and len(f._specs) == 1


def test_declared_symbolic_sizes_before_and_after_a_call() -> None:
    f = diffc.compile(uses_len, args={"x": "f64[n]"}, backend="numpy")
    with pytest.raises(DiffcError, match=r"needs concrete sizes .*len\(\).*test_calling\.py, line") as info:
        f.source  # noqa: B018 - the property traces
    assert "call it once" in str(info.value) and "f64[20]" in str(info.value)
    x = np.array([1.0, 3.0, 2.0])
    np.testing.assert_allclose(f.grad(x), numeric_grad(uses_len, [x])[0], rtol=1e-6)
    assert "check_shape(x.shape[0] == 3, " in f.source
    concrete = diffc.compile(uses_len, args={"x": "f64[3]"}, backend="numpy")
    assert concrete.stats["sizes"] == "as declared" and "check_shape(x.shape[0] == 3, " in concrete.source


@pytest.mark.slow
def test_specialised_with_real_numba() -> None:
    f = diffc.compile(uses_len)
    for n in (3, 4):
        x = rng.normal(size=n)
        assert_close(f.grad(x), numeric_grad(uses_len, [x])[0], rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# x ** k at 0


def powers(x: Any) -> Any:
    return (np.sum(x ** 1) + np.sum(x ** 2) + np.sum(x ** 3) + np.sum(np.power(x, 4)) + np.sum(np.square(x))
            + np.sum(x ** np.int64(5)) + np.sum(np.power(x, np.array([3, 3, 3]))))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_integer_powers_at_zero(backend: str, dtype: Any) -> None:
    x = np.array([0.0, -0.0, 1.5], dtype=dtype)
    _, grad = value_and_grad(powers, backend, x)
    expected = [1.0, 1.0, 1 + 2 * 1.5 + 3 * 1.5 ** 2 + 4 * 1.5 ** 3 + 2 * 1.5 + 5 * 1.5 ** 4 + 3 * 1.5 ** 2]
    np.testing.assert_allclose(grad, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert grad.dtype == dtype


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_traced_integer_exponent_at_zero(backend: str) -> None:
    x = np.array([0.0, 0.0, 0.0, 2.0])
    k = np.array([0, 1, 3, 0])
    with np.errstate(all="ignore"):  # NumPy statements compute both branches of the where; the 0 is selected
        _, grad = value_and_grad(lambda x, k: np.sum(x ** k), backend, x, k)
    np.testing.assert_array_equal(grad, [0.0, 1.0, 0.0, 0.0])
    _, (gx, gk) = value_and_grad(lambda x, k: x ** k, backend, 0.0, 2.0)
    assert gx == 0.0 and gk == 0.0 and not math.isnan(gk)


def test_powers_at_zero_with_real_numba() -> None:
    grad = diffc.compile(powers).grad(np.array([0.0, 0.0, 1.0]))
    assert np.all(np.isfinite(grad)) and grad[0] == 1.0 + 0.0


def test_bound_methods_taken_before_the_first_call_use_the_scalar_fast_path() -> None:
    """``jac=f.grad`` binds the method once; its calls must stay right on every path (W7's)."""
    f = diffc.compile("(a + b) * (b + 1)")
    grad, value_and_grad, call = f.grad, f.value_and_grad, f.__call__
    for _ in range(3):  # the first call fills the fast entry, the later ones use it
        assert grad(2.0, 1.0) == (2.0, 5.0)  # hand: d/da = b + 1, d/db = (b + 1) + (a + b)
        assert value_and_grad(3.0, -1.0) == (0.0, (0.0, 2.0))
        assert call(2.0, 1.0) == 6.0
    assert grad(2, 1) == (2.0, 5.0)  # ints take the full path, which converts them
    assert grad(a=2.0, b=1.0) == (2.0, 5.0)  # keywords too
