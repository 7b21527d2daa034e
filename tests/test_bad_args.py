"""Bad arguments and odd sources get NumPy's answer or a clear error, on both back ends.

Two kinds of test. Named cases for each mistake the issue lists (a string or
a number as ``args``, negative and beyond-int64 sizes, huge slice bounds,
float labels for integer inputs, ``vjp`` without its cotangent, an empty
mean, a size-1 argument on the fast and the full path). And a hypothesis
search over the inputs a careless caller passes (wrong rank, mismatched
sizes, lists, int arrays, non-contiguous and read-only arrays, zero-size
arrays, NaN and inf): NumPy's own call of the same function is the
reference. Where NumPy answers, diffc gives the same value (NaN where NumPy
has NaN), and the two back ends the same gradient; where NumPy raises, diffc
raises a ``DiffcError`` of the same built-in class.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from conftest import as_tuple, check_grad
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plain_numba import call_plain, load_compiled

import diffc
from diffc.errors import ArgumentError, DiffcError, IndexRangeError, ParseError, ShapeError, SizeError

BACKENDS = ("numpy", "numba")


def loss(w, X):  # noqa: ANN001, ANN201 - a user's function
    return np.sum(np.tanh(X @ w))


def elementwise(x, y):  # noqa: ANN001, ANN201
    return np.sum(x * y + np.sin(x))


# ---------------------------------------------------------------------------
# args of the wrong kind


@pytest.mark.parametrize("source", [elementwise, "x * y + sin(x)"], ids=["function", "text"])
@pytest.mark.parametrize("args,kind", [
    ("x", ArgumentError), ({"x": 3}, ArgumentError), ({"x": None}, ArgumentError),
    ({"x": "f64[-3]"}, SizeError), ({"x": "f64[9999999999999999999999]"}, SizeError),
    ({"x": "f64[n, -1]"}, SizeError),
])
def test_bad_args_raise_a_diffc_error_of_the_builtin_class(source: Any, args: Any, kind: type) -> None:
    with pytest.raises(kind) as caught:
        diffc.compile(source, args=args)._declared()
    assert isinstance(caught.value, DiffcError)
    assert isinstance(caught.value, TypeError if kind is ArgumentError else ValueError)
    assert ("x" in str(caught.value)) or ("args" in str(caught.value))


def test_sympy_bad_args() -> None:
    sympy = pytest.importorskip("sympy")
    x = sympy.Symbol("x")
    with pytest.raises(ArgumentError, match="'x'"):
        diffc.compile(x * 2, args={"x": 3})
    with pytest.raises(SizeError, match="-3"):
        diffc.compile(x * 2, args={"x": "f64[-3]"})


def test_largest_size_is_accepted_and_one_more_is_not() -> None:
    diffc.compile("sum(x)", args={"x": f"f64[{2**63 - 1}]"})._declared()
    with pytest.raises(SizeError):
        diffc.compile("sum(x)", args={"x": f"f64[{2**63}]"})


# ---------------------------------------------------------------------------
# huge integers in the source


def huge_slices(x):  # noqa: ANN001, ANN201
    return np.sum(x[:10**30]) + np.sum(x[-10**30:]) * 2.0 + np.sum(x[1:10**25:3]) * 3.0 + np.sum(x[::-10**22])


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_slice_bounds_are_clamped_as_numpy_does(backend: str) -> None:
    x = np.linspace(0.5, 2.0, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # never a fallback: the literal must not reach Numba
        f = diffc.compile(huge_slices, backend=backend)
        value = f(x)
    assert value == pytest.approx(huge_slices(x), rel=1e-13)
    check_grad(f, [x], f=huge_slices)


def test_huge_slice_bounds_plain_numba_and_text() -> None:
    x = np.linspace(0.5, 2.0, 7)
    text = "sum(x[:1000000000000000000000000000000]) + sum(x[-99999999999999999999999:-2])"
    want = np.sum(x) + np.sum(x[:-2])
    for backend in BACKENDS:
        assert diffc.compile(text, args={"x": "f64[n]"}, backend=backend)(x) == pytest.approx(want)
    namespace = load_compiled(diffc.compile(text, args={"x": "f64[n]"}))
    assert call_plain(namespace["forward"], x) == pytest.approx(want)


@pytest.mark.parametrize("index", [10**30, -(10**30), 2**63])
def test_an_index_beyond_int64_is_numpys_index_error(index: int) -> None:
    with pytest.raises(IndexError) as caught:
        diffc.compile(lambda x: x[index], backend="numpy")(np.ones(3))
    assert isinstance(caught.value, IndexRangeError)
    with pytest.raises((IndexError, OverflowError)):  # NumPy: IndexError, or OverflowError beyond int64
        np.ones(3)[index]


# ---------------------------------------------------------------------------
# integer inputs, cotangents, empty axes, size 1


def pick(W, y):  # noqa: ANN001, ANN201
    return np.sum(W[np.arange(W.shape[0]), y])


@pytest.mark.parametrize("backend", BACKENDS)
def test_float_labels_for_integer_input_raise_like_numpy(backend: str) -> None:
    f = diffc.compile(pick, args={"W": "f64[m,k]", "y": "i64[m]"}, backend=backend)
    W = np.arange(6.0).reshape(3, 2)
    with pytest.raises(IndexError):
        pick(W, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ArgumentError, match="'y'"):
        f(W, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError):
        f.grad(W, np.array([0.0, 1.0, 1.0]))
    assert f(W, np.array([0, 1, 1])) == pick(W, np.array([0, 1, 1]))
    assert f(W, np.array([0, 1, 1], dtype=np.int32)) == pick(W, np.array([0, 1, 1]))  # a safe cast


def test_integer_scalar_given_a_float_raises() -> None:
    f = diffc.compile("x * k", args={"x": "f64", "k": "i64"}, backend="numpy")
    assert f(2.0, 3) == 6.0
    with pytest.raises(ArgumentError, match="'k'"):
        f(2.0, 2.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vjp_without_its_cotangent_names_vjps_signature(backend: str) -> None:
    f = diffc.compile(lambda W, x: W @ x, args={"W": "f64[m,n]", "x": "f64[n]"}, backend=backend)
    with pytest.raises(ArgumentError) as caught:
        f.vjp(np.ones((2, 2)), np.ones(2))
    message = str(caught.value)
    assert "vjp" in message and "cotangent" in message and "(W, x, cotangent)" in message
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_over_an_empty_axis_is_nan_like_numpy(backend: str) -> None:
    f = diffc.compile(lambda x: np.sum(np.mean(x, axis=0)), args={"x": "f64[m,n]"}, backend=backend)
    g = diffc.compile(lambda x: np.mean(x), args={"x": "f64[n]"}, backend=backend)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, grads = f.value_and_grad(np.ones((0, 3)))
        want = np.sum(np.mean(np.ones((0, 3)), axis=0))
        empty_value, empty_grad = g.value_and_grad(np.ones(0))
    assert np.isnan(value) and np.isnan(want)
    assert as_tuple(grads, 1)[0].shape == (0, 3)
    assert np.isnan(empty_value) and as_tuple(empty_grad, 1)[0].shape == (0,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_size_one_broadcasts_the_same_on_the_fast_and_the_full_path(backend: str) -> None:
    """The issue: whether (3,) * (1,) broadcast depended on which signature ran last (real Numba: the
    forward only, two signatures; the NumPy back end: the gradient and the other side too)."""
    f = diffc.compile(elementwise, backend=backend)
    x, y3, y1 = np.linspace(0.1, 0.9, 3), np.linspace(1.0, 2.0, 3), np.array([0.5])
    calls = [(x, y1), (x, y3), (x, y1), (x, y3), (x, y1)] + ([(y1, x)] if backend == "numpy" else [])
    for call in calls:
        assert f(*call) == pytest.approx(elementwise(*call), rel=1e-13)
        assert f(*call) == pytest.approx(elementwise(*call), rel=1e-13)  # the second call: the fast entry
    if backend == "numpy":
        f.grad(x, y3)
        grads = as_tuple(f.grad(x, y1), 2)
        assert grads[1].shape == (1,) and grads[1][0] == pytest.approx(np.sum(x))


def test_declared_sizes_refuse_size_one_on_both_paths() -> None:
    f = diffc.compile(elementwise, args={"x": "f64[n]", "y": "f64[n]"}, backend="numpy")
    x = np.ones(3)
    for _ in range(2):
        with pytest.raises(ShapeError):
            f(x, np.ones(1))
        assert f(x, x) == pytest.approx(elementwise(x, x))


# ---------------------------------------------------------------------------
# what a careless caller passes, drawn by hypothesis

KINDS = ("ok", "list", "int", "f32", "noncontiguous", "readonly", "zero", "nan", "inf", "rank", "mismatch",
         "size1", "scalar")


def variant(kind: str, base: np.ndarray, rng: np.random.Generator) -> Any:
    """``base`` (float64) changed the way ``kind`` says."""
    if kind == "list":
        return base.tolist()
    if kind == "int":
        return np.round(base * 3).astype(np.int64)
    if kind == "f32":
        return base.astype(np.float32)
    if kind == "noncontiguous":
        doubled = np.repeat(base, 2, axis=-1)
        return doubled[..., ::2]
    if kind == "readonly":
        out = base.copy()
        out.flags.writeable = False
        return out
    if kind == "zero":
        return base[..., :0]
    if kind in ("nan", "inf"):
        out = base.copy()
        out.flat[rng.integers(out.size)] = np.nan if kind == "nan" else -np.inf
        return out
    if kind == "rank":
        return base[None]
    if kind == "mismatch":
        return np.concatenate([base, base[..., :1]], axis=-1)
    if kind == "size1":
        return base[..., :1]
    if kind == "scalar":
        return float(base.flat[0])
    return base


def numpy_reference(fn: Any, args: list[Any]) -> tuple[Any, BaseException | None]:
    try:
        with np.errstate(all="ignore"):
            return fn(*[np.asarray(a) if isinstance(a, list) else a for a in args]), None
    except Exception as error:  # NumPy's own refusal is the reference
        return None, error


_COMPILED: dict[tuple[str, str], diffc.Compiled] = {}


def compiled_for(name: str, backend: str) -> diffc.Compiled:
    key = (name, backend)
    if key not in _COMPILED:
        _COMPILED[key] = diffc.compile({"loss": loss, "elementwise": elementwise}[name], backend=backend)
    return _COMPILED[key]


def run(compiled: diffc.Compiled, args: list[Any]) -> tuple[Any, Any, BaseException | None]:
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = compiled(*args)
            try:
                grads = compiled.grad(*args)
            except DiffcError as error:  # nothing to differentiate (every input an integer)
                assert "differentiate" in str(error) or "wrt" in str(error), error
                grads = None
        return value, grads, None
    except Exception as error:
        return None, None, error


def bases(name: str, rng: np.random.Generator) -> list[np.ndarray]:
    if name == "loss":
        return [rng.normal(size=4), rng.normal(size=(3, 4))]
    return [rng.normal(size=5), rng.normal(size=5)]


def check_against_numpy(name: str, kinds: tuple[str, str], seed: int, backends: tuple[str, ...]) -> str:
    rng = np.random.default_rng(seed)
    args = [variant(k, b, rng) for k, b in zip(kinds, bases(name, rng), strict=True)]
    fn = {"loss": loss, "elementwise": elementwise}[name]
    want, refused = numpy_reference(fn, args)
    results = {}
    for backend in backends:
        value, grads, error = run(compiled_for(name, backend), args)
        if refused is not None:
            assert error is not None, f"{backend}: NumPy raised {refused!r} but diffc returned {value}"
        if error is not None:
            assert isinstance(error, DiffcError), f"{backend} {kinds}: not a DiffcError: {error!r}"
            if refused is not None:
                builtin = next(c for c in type(refused).__mro__ if c.__module__ == "builtins")
                assert isinstance(error, (builtin, ShapeError)), (backend, error, refused)
            continue
        np.testing.assert_allclose(value, want, rtol=1e-5 if "f32" in kinds else 1e-12, atol=1e-12,
                                   err_msg=f"{backend} {kinds}")
        results[backend] = grads
    if len(results) == 2 and results["numpy"] is not None:
        both = [r if isinstance(r, tuple) else (r,) for r in (results["numpy"], results["numba"])]  # one: bare
        for a, b in zip(*both, strict=True):
            # float32: the two back ends sum in different orders, so small entries differ by a few ULP of the
            # largest term (the tolerance scales with the array's magnitude, not each entry's own)
            scale = float(np.max(np.abs(b), initial=0.0, where=np.isfinite(b))) if np.size(b) else 0.0
            np.testing.assert_allclose(a, b, rtol=1e-5 if "f32" in kinds else 1e-10,
                                       atol=max(1e-12, 1e-6 * scale) if "f32" in kinds else 1e-12)
    return "refused" if refused is not None else "answered"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["loss", "elementwise"]), first=st.sampled_from(KINDS), second=st.sampled_from(KINDS),
       seed=st.integers(0, 2**16))
def test_careless_arguments_numpy_back_end(name: str, first: str, second: str, seed: int) -> None:
    check_against_numpy(name, (first, second), seed, ("numpy",))


# real Numba compiles once per argument layout and dtype: by default each careless kind once, on one
# function (two new layouts: non-contiguous and read-only); hypothesis over both functions under -m slow
@pytest.mark.parametrize("kind", ["list", "noncontiguous", "readonly", "zero", "nan", "inf", "rank", "mismatch",
                                  "size1", "scalar"])
def test_careless_arguments_real_numba(kind: str) -> None:
    assert check_against_numpy("elementwise", (kind, "ok"), 7, BACKENDS) in ("refused", "answered")


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["loss", "elementwise"]), first=st.sampled_from(KINDS), second=st.sampled_from(KINDS),
       seed=st.integers(0, 2**16))
def test_careless_arguments_both_back_ends_slow(name: str, first: str, second: str, seed: int) -> None:
    check_against_numpy(name, (first, second), seed, BACKENDS)


def test_ordinary_arguments_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    for backend in BACKENDS:
        check_grad(compiled_for("loss", backend), [rng.normal(size=4), rng.normal(size=(3, 4))], f=loss)


def test_text_limit_is_a_parse_error() -> None:
    from diffc.frontends.text import MAX_TEXT

    with pytest.raises(ParseError, match="characters"):
        diffc.compile("x+" * (MAX_TEXT // 2) + "x")


# ---------------------------------------------------------------------------
# odd sources: SymPy and the CLI's file-or-expression rule


def test_sympy_unknown_function_and_symbols_that_print_alike() -> None:
    sympy = pytest.importorskip("sympy")
    from diffc.errors import UnsupportedError

    x = sympy.Symbol("x")
    with pytest.raises(UnsupportedError, match="g"):
        diffc.compile(sympy.Function("g")(x) + x)
    for other in (sympy.Dummy("x"), sympy.Symbol("x", positive=True)):  # renamed apart, never merged
        apart = diffc.compile(x + 3 * other + sympy.Symbol("x_2") * 0.5, backend="numpy")
        assert apart.signature() == "f(x: f64, x_2: f64, x_3: f64)"  # x, then the name SymPy kept apart
        assert apart(1.0, 10.0, 100.0) == 1.0 + 10.0 * 0.5 + 3 * 100.0
    apart = diffc.compile(x + 2 * sympy.Symbol("x_"), backend="numpy")  # two names, two inputs
    assert apart(1.0, 10.0) == 21.0
    nul = diffc.compile(sympy.Symbol("a\x00b") * 3, backend="numpy")  # a NUL reaches only an escaped docstring
    assert nul(2.0) == 6.0 and "\x00" not in nul.source


def cli(argv: list[str], folder: Any) -> tuple[int, str, str]:
    import contextlib
    import io
    import os

    from diffc.cli import main

    out, err, previous = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    finally:
        os.chdir(previous)
    return status, out.getvalue(), err.getvalue()


def test_cli_takes_a_file_only_when_it_exists_and_parses(tmp_path: Any) -> None:
    show = ["show", "--what", "ir", "--backend", "numpy", "--"]
    status, out, err = cli([*show, "a / b"], tmp_path)  # a '/' is no longer a path
    assert status == 0 and "div" in out and "expression" in err
    (tmp_path / "a").write_text("this is not an expression ::\n")
    status, out, err = cli([*show, "a"], tmp_path)  # names a file that does not parse: the expression
    assert status == 0 and "def f(a: f64)" in out and "as an expression" in err
    (tmp_path / "b").write_text("y = b * 2\n")
    status, out, err = cli([*show, "b"], tmp_path)  # a file that parses: the file, and it says so
    assert status == 0 and "def y(b: f64)" in out and "as a file" in err
    status, out, err = cli([*show, "(b)"], tmp_path)  # the way to the expression
    assert status == 0 and "def f(b: f64)" in out
    status, out, err = cli([*show, "missing.txt"], tmp_path)
    assert status == 2 and "no such file: missing.txt" in err
