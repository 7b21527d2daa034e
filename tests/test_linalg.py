"""np.linalg: values against NumPy, gradients against central differences and the closed forms.

Every function runs on the NumPy back end and on the Numba back end's module
run as plain Python (tests/plain_numba.py), in float64 and float32, at random
well-conditioned points (SPD matrices where the function needs one) of sizes
1x1, 2x2 and 5x5; two programs that combine several ops are compiled by real
Numba. cholesky and eigh read only the lower triangle, and their gradient is
the symmetric one (the module docstring of diffc/adjoint/linalg.py): they are
checked through an explicitly symmetrised input, whose entries finite
differences can move one at a time, and along symmetric directions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import as_tuple, assert_close, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from plain_numba import call_plain, load_compiled

import diffc
from diffc.adjoint.rules import ADJOINTS, NON_DIFFERENTIABLE
from diffc.codegen.numba import NumbaPrinter
from diffc.codegen.numpy import NumpyPrinter
from diffc.errors import ShapeError, UnsupportedError
from diffc.ir import LINALG, Op

SIZES = (1, 2, 5)


def general(n: int, seed: int) -> np.ndarray:
    """A random matrix with a dominant diagonal: invertible and well conditioned."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)) + n * np.eye(n) * 1.5


def spd(n: int, seed: int) -> np.ndarray:
    """A random symmetric positive definite matrix with well separated eigenvalues."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.linspace(1.0, 2.0 * n, n)) @ q.T


def weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 100).standard_normal(shape)


def _sym(a: Any) -> Any:
    return (a + a.T) * 0.5


def value_and_grad_on(backend: str, fn: Callable[..., Any], types: dict[str, str], args: list[Any],
                      wrt: str | None = None) -> tuple[Any, Any]:
    """``fn``'s value and gradient by the NumPy back end, or by the Numba back end's module run as Python."""
    compiled = diffc.compile(fn, args=types, wrt=wrt, backend="numpy" if backend == "numpy" else "numba")
    if backend == "numpy":
        return compiled.value_and_grad(*args)  # type: ignore[no-any-return]
    return call_plain(load_compiled(compiled)["value_and_grad"], *args)  # type: ignore[no-any-return]


def check_against_differences(backend: str, fn: Callable[..., Any], types: dict[str, str], args: list[Any]) -> None:
    """The value against ``fn`` run by NumPy, the gradient in ``args[0]`` against central differences."""
    value, grads = value_and_grad_on(backend, fn, types, args, wrt=next(iter(types)))
    assert_close(value, fn(*args), rtol=1e-12, atol=1e-12, what="value")
    (want,) = numeric_grad(fn, args, wrt=[0])
    assert_close(as_tuple(grads, 1)[0], want, rtol=1e-5, atol=1e-7, what="gradient")


# name -> (loss of (a, c): a the matrix, c a weight of the output's shape; matrix kind; output shape of n)
CASES: dict[str, tuple[Callable[..., Any], Callable[[int, int], np.ndarray], Callable[[int], tuple[int, ...]]]] = {
    "inv": (lambda a, c: np.sum(np.linalg.inv(a) * c), general, lambda n: (n, n)),
    "det": (lambda a, c: np.linalg.det(a) * np.sum(c), general, lambda n: (1,)),
    "slogdet": (lambda a, c: np.linalg.slogdet(a)[1] * np.sum(c) + np.linalg.slogdet(a).sign, general,
                lambda n: (1,)),
    "solve_vector": (lambda a, c: np.sum(np.linalg.solve(a, c) * c), general, lambda n: (n,)),
    "solve_matrix": (lambda a, c: np.sum(np.linalg.solve(a, c) ** 2), general, lambda n: (n, 2)),
    "cholesky": (lambda a, c: np.sum(np.linalg.cholesky(_sym(a)) * c), spd, lambda n: (n, n)),
    "cholesky_upper": (lambda a, c: np.sum(np.linalg.cholesky(_sym(a), upper=True) * c), spd, lambda n: (n, n)),
    "eigh_values": (lambda a, c: np.sum(np.linalg.eigh(_sym(a)).eigenvalues * c), spd, lambda n: (n,)),
    "eigh_vectors": (lambda a, c: np.sum(np.linalg.eigh(_sym(a))[1] ** 2 * c), spd, lambda n: (n, n)),
    "eigvalsh": (lambda a, c: np.sum(np.linalg.eigvalsh(_sym(a), UPLO="U") * c), spd, lambda n: (n,)),
    "matrix_power_3": (lambda a, c: np.sum(np.linalg.matrix_power(a, 3) * c), general, lambda n: (n, n)),
    "matrix_power_5": (lambda a, c: np.sum(np.linalg.matrix_power(a, 5) * c) * 1e-3, general, lambda n: (n, n)),
    "matrix_power_-2": (lambda a, c: np.sum(np.linalg.matrix_power(a, -2) * c), general, lambda n: (n, n)),
    "matrix_power_0": (lambda a, c: np.sum(np.linalg.matrix_power(a, 0) * c) + np.sum(a), general,
                       lambda n: (n, n)),
    "multi_dot": (lambda a, c: np.linalg.multi_dot([c[:, 0], a, a.T, c[:, 1]]), general, lambda n: (n, 2)),
    "pinv": (lambda a, c: np.sum(np.linalg.pinv(a) * c), general, lambda n: (n, n)),
    "svd_values": (lambda a, c: np.sum(np.linalg.svd(a)[1] * c) + np.sum(np.linalg.svdvals(a) ** 2), general,
                   lambda n: (n,)),
    # squares: the vectors are defined up to sign, a loss of them only means something if it does not see signs
    "svd_vectors": (lambda a, c: np.sum(np.linalg.svd(a).U ** 2 * c) + np.sum(np.linalg.svd(a)[2] ** 2 * c.T),
                    general, lambda n: (n, n)),
}


def _inputs(name: str, n: int, dtype: Any = np.float64) -> list[np.ndarray]:
    _, kind, out_shape = CASES[name]
    return [kind(n, n).astype(dtype), weights(out_shape(n), n).astype(dtype)]


def _compiled(name: str, n: int, backend: str, dtype: str = "f64") -> diffc.Compiled:
    loss = CASES[name][0]
    c_shape = ",".join(str(d) for d in CASES[name][2](n))
    return diffc.compile(loss, args={"a": f"{dtype}[{n},{n}]", "c": f"{dtype}[{c_shape}]"}, wrt="a", backend=backend)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", list(CASES))
def test_value_and_gradient_against_numpy_and_differences(name: str, n: int) -> None:
    loss = CASES[name][0]
    args = _inputs(name, n)
    compiled = _compiled(name, n, "numpy")
    assert_close(compiled(*args), loss(*args), rtol=1e-12, atol=1e-12, what="value")
    (grad,) = as_tuple(compiled.grad(*args), 1)
    (want,) = numeric_grad(loss, args, wrt=[0])
    assert_close(grad, want, rtol=1e-5, atol=1e-7, what=f"d {name} / d a")


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", list(CASES))
def test_numba_module_as_python_matches_numpy_backend(name: str, n: int) -> None:
    args = _inputs(name, n)
    value, grads = _compiled(name, n, "numpy").value_and_grad(*args)
    namespace = load_compiled(_compiled(name, n, "numba"))
    plain_value, plain_grads = call_plain(namespace["value_and_grad"], *args)
    assert_close(plain_value, value, rtol=1e-12, atol=1e-12, what="value")
    for got, want in zip(as_tuple(plain_grads, 1), as_tuple(grads, 1), strict=True):
        assert_close(got, want, rtol=1e-10, atol=1e-12, what="gradient")


@pytest.mark.parametrize("backend", ["numpy", "plain-numba"])
@pytest.mark.parametrize("name", list(CASES))
def test_float32_follows_float64(name: str, backend: str) -> None:
    """float32 in, float32 out: the value and gradient agree with float64 to float32's precision."""
    n = 5 if name != "matrix_power_5" else 2
    args64 = _inputs(name, n)
    args32 = [a.astype(np.float32) for a in args64]
    value, grads = _compiled(name, n, "numpy").value_and_grad(*args64)
    if backend == "numpy":
        value32, grads32 = _compiled(name, n, "numpy", "f32").value_and_grad(*args32)
    else:
        namespace = load_compiled(_compiled(name, n, "numba", "f32"))
        value32, grads32 = call_plain(namespace["value_and_grad"], *args32)
    (g32,), (g64,) = as_tuple(grads32, 1), as_tuple(grads, 1)
    assert np.asarray(g32).dtype == np.float32
    assert_close(value32, value, rtol=2e-4, atol=2e-4, what="value")
    assert_close(g32, g64, rtol=2e-3, atol=2e-3 * float(np.max(np.abs(g64))), what="gradient")


@pytest.mark.parametrize("backend", ["numpy", "plain-numba"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (1, 4)])
def test_pinv_of_rectangular_matrices(shape: tuple[int, int], backend: str) -> None:
    rng = np.random.default_rng(sum(shape))
    a, c = rng.standard_normal(shape), rng.standard_normal(shape[::-1])

    def fn(a: Any, c: Any) -> Any:
        return np.sum(np.linalg.pinv(a) * c)

    check_against_differences(backend, fn, {"a": f"f64[{shape[0]},{shape[1]}]", "c": f"f64[{shape[1]},{shape[0]}]"},
                              [a, c])


@pytest.mark.parametrize("backend", ["numpy", "plain-numba"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (1, 4)])
def test_thin_svd_of_rectangular_matrices(shape: tuple[int, int], backend: str) -> None:
    """Townsend's adjoint, whose terms (I - U Uᵀ) Ū and V̄ᵀ (I - V Vᵀ) vanish for a square matrix."""
    rng = np.random.default_rng(sum(shape))
    a, c = rng.standard_normal(shape), rng.standard_normal(shape)

    def fn(a: Any, c: Any) -> Any:
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        return np.sum((u * s) ** 2 @ np.abs(vh)) + np.sum(s * c[0, :s.shape[0]]) + np.sum((u @ vh) ** 3 * c)

    check_against_differences(backend, fn, {"a": f"f64[{shape[0]},{shape[1]}]", "c": f"f64[{shape[0]},{shape[1]}]"},
                              [a, c])


def test_full_matrices_of_a_rectangular_matrix_is_refused_where_its_vectors_are_used() -> None:
    """``U, s, Vh = np.linalg.svd(X)`` traces when only ``s`` is read; reading U or Vh names the fix."""
    a = np.random.default_rng(0).standard_normal((4, 3))

    def values_only(a: Any) -> Any:
        u, s, vh = np.linalg.svd(a)
        return np.sum(s ** 2)

    check_against_differences("numpy", values_only, {"a": "f64[4,3]"}, [a])
    with pytest.raises(UnsupportedError, match=r"full_matrices=True of a f64\[4,3\].*full_matrices=False"):
        _ir(lambda a: np.sum(np.linalg.svd(a)[0]), {"a": "f64[4,3]"})
    with pytest.raises(UnsupportedError, match="test_linalg.py"):
        _ir(lambda a: np.sum(np.linalg.svd(a).Vh @ a.T), {"a": "f64[4,3]"})


@pytest.mark.parametrize("name", ["eig", "eigvals"])
def test_complex_eigenproblems_are_refused_with_the_real_alternatives(name: str) -> None:
    with pytest.raises(UnsupportedError, match=f"np.linalg.{name} .*complex.*np.linalg.eig(h|valsh),"):
        _ir(lambda a: np.sum(getattr(np.linalg, name)(a)[0]), {"a": "f64[3,3]"})


# ---------------------------------------------------------------------------
# the closed forms


@pytest.mark.parametrize("n", SIZES)
def test_closed_forms_of_det_logdet_and_inverse_trace(n: int) -> None:
    a = general(n, 7) * np.where(np.arange(n) == 0, -1.0, 1.0)  # a negative determinant for slogdet's sign
    inv_t = np.linalg.inv(a).T
    det = diffc.compile(lambda a: np.linalg.det(a), args={"a": "f64[n,n]"}, backend="numpy")
    assert_close(as_tuple(det.grad(a), 1)[0], np.linalg.det(a) * inv_t, rtol=1e-10, atol=1e-12, what="d det")
    logdet = diffc.compile(lambda a: np.linalg.slogdet(a)[1], args={"a": "f64[n,n]"}, backend="numpy")
    assert_close(as_tuple(logdet.grad(a), 1)[0], inv_t, rtol=1e-10, atol=1e-12, what="d logdet")
    eye = np.eye(n)
    trace_inv = diffc.compile(lambda a: np.sum(np.linalg.inv(a) * eye), args={"a": f"f64[{n},{n}]"},
                              backend="numpy")
    assert_close(as_tuple(trace_inv.grad(a), 1)[0], -inv_t @ inv_t, rtol=1e-10, atol=1e-12, what="d tr inv")


@pytest.mark.parametrize("n", SIZES)
def test_closed_forms_of_solve_cholesky_and_eigenvalues(n: int) -> None:
    a, s, c = general(n, 3), spd(n, 4), weights((n,), 5)
    # d/db sum(c * solve(a, b)) = a⁻ᵀ c
    solve = diffc.compile(lambda a, b: np.sum(c * np.linalg.solve(a, b)), args={"a": "f64[n,n]", "b": "f64[n]"},
                          wrt="b", backend="numpy")
    assert_close(as_tuple(solve.grad(a, c), 1)[0], np.linalg.solve(a.T, c), rtol=1e-10, atol=1e-12, what="d solve")
    # 2 sum(log(diag(cholesky(s)))) is log det s, whose symmetric gradient is s⁻¹
    eye = np.eye(n, dtype=bool)
    logdet = diffc.compile(lambda s: 2.0 * np.sum(np.log(np.where(eye, np.linalg.cholesky(s), 1.0))),
                           args={"s": f"f64[{n},{n}]"}, backend="numpy")
    assert_close(as_tuple(logdet.grad(s), 1)[0], np.linalg.inv(s), rtol=1e-10, atol=1e-12, what="d chol logdet")
    # d λ_k / d s = v_k v_kᵀ
    w, v = np.linalg.eigh(s)
    top = diffc.compile(lambda s: np.sum(np.linalg.eigvalsh(s) * c), args={"s": "f64[n,n]"}, backend="numpy")
    assert_close(as_tuple(top.grad(s), 1)[0], (v * c) @ v.T, rtol=1e-10, atol=1e-12, what="d eigvalsh")


@pytest.mark.parametrize("name", ["cholesky", "eigh_vectors"])
def test_symmetric_gradient_along_symmetric_directions(name: str) -> None:
    """On the input itself (no explicit symmetrising): the gradient is symmetric, and it is the derivative
    along any symmetric direction E: (f(A + hE) - f(A - hE)) / 2h = <G, E>."""
    n = 4
    c = weights((n, n), 1)
    fn = {"cholesky": lambda a: np.sum(np.linalg.cholesky(a) * c),
          "eigh_vectors": lambda a: np.sum(np.linalg.eigh(a)[1] ** 2 * c)}[name]
    a = spd(n, 2)
    (grad,) = as_tuple(diffc.compile(fn, args={"a": "f64[n,n]"}, backend="numpy").grad(a), 1)
    assert_close(grad, grad.T, rtol=0, atol=1e-12, what="symmetric")
    for seed in range(3):
        e = _sym(weights((n, n), seed + 10))
        h = 1e-6
        directional = (fn(a + h * e) - fn(a - h * e)) / (2 * h)
        assert np.sum(grad * e) == pytest.approx(directional, rel=1e-6, abs=1e-8)


# ---------------------------------------------------------------------------
# norms

NORMS: list[tuple[tuple[int, ...], Any, Any, bool]] = [
    ((5,), None, None, False), ((5,), 2, None, False), ((5,), 1, None, True), ((5,), np.inf, None, False),
    ((5,), -np.inf, 0, False), ((5,), 3, None, False), ((5,), 1.5, -1, True), ((5,), 0.5, None, False),
    ((5,), -2, None, False), ((3, 4), None, None, False), ((3, 4), "fro", None, True), ((3, 4), 1, None, False),
    ((3, 4), -1, (1, 0), True), ((3, 4), np.inf, None, False), ((3, 4), -np.inf, (0, 1), False),
    ((3, 4), 1, 1, False), ((3, 4), 3, 0, True), ((2, 3, 4), np.inf, (2, 0), False), ((2, 3, 4), 1, (0, 2), True),
    ((2, 3, 4), None, (1, 2), False), ((2, 3, 4), np.inf, -1, False),
    ((3, 4), 2, None, False), ((4, 3), -2, (1, 0), True), ((3, 4), "nuc", None, True), ((4, 4), "nuc", (0, 1), False),
]


@pytest.mark.parametrize("backend", ["numpy", "plain-numba"])
@pytest.mark.parametrize(("shape", "ord", "axis", "keepdims"), NORMS)
def test_norm_value_and_gradient(shape: tuple[int, ...], ord: Any, axis: Any, keepdims: bool, backend: str) -> None:
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    out_shape = np.linalg.norm(x, ord, axis, keepdims).shape
    c = weights(out_shape, 0) if out_shape else np.array(1.3)

    def fn(x: Any, c: Any) -> Any:
        return np.sum(np.linalg.norm(x, ord, axis, keepdims) * c)

    types = {"x": f"f64[{','.join(map(str, shape))}]", "c": f"f64[{','.join(map(str, out_shape))}]"}
    check_against_differences(backend, fn, types, [x, c])


@pytest.mark.parametrize(("ord", "shape"), [(None, (4,)), (2, (4,)), (1, (4,)), (np.inf, (4,)), (-np.inf, (4,)),
                                           (3, (4,)), (1.5, (4,)), ("fro", (3, 3)), (1, (3, 3)), (np.inf, (3, 3)),
                                           (2, (3, 3)), (-2, (3, 3)), ("nuc", (3, 3))])
def test_norm_gradient_is_zero_at_zero(ord: Any, shape: tuple[int, ...]) -> None:
    """Convention: every ord gives the gradient 0 at x = 0 (finite: no NaN from 0/0)."""
    types = {"x": f"f64[{','.join(map(str, shape))}]"}
    for backend in ("numpy", "plain-numba"):
        value, grads = value_and_grad_on(backend, lambda x: np.linalg.norm(x, ord), types, [np.zeros(shape)])
        assert value == 0.0
        assert_close(as_tuple(grads, 1)[0], np.zeros(shape), rtol=0, atol=0, what=f"{backend} ord={ord}")


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(NORMS), st.integers(0, 2**16), st.booleans())
def test_norm_against_numpy_on_random_data(case: Any, seed: int, scale_up: bool) -> None:
    shape, ord, axis, keepdims = case
    x = np.random.default_rng(seed).standard_normal(shape) * (1e3 if scale_up else 1e-3)
    types = {"x": f"f64[{','.join(map(str, shape))}]"}
    compiled = diffc.compile(lambda x: np.linalg.norm(x, ord, axis, keepdims), args=types, backend="numpy")
    assert_close(compiled(x), np.linalg.norm(x, ord, axis, keepdims), rtol=1e-12, atol=0, what="norm")


# ---------------------------------------------------------------------------
# real Numba: a small sample in the default run (Numba's LAPACK typing takes seconds per function)


def _sample(a: Any, b: Any) -> Any:
    """Two LAPACK calls (the gradient reuses the inverse) beside fused loops (the 3-norm)."""
    return np.sum(np.linalg.inv(a) * b) + np.linalg.slogdet(a)[1] + np.linalg.norm(b[1], 3)


def _combined(a: Any, s: Any, b: Any) -> Any:
    sign, logdet = np.linalg.slogdet(a)
    w, v = np.linalg.eigh(s)
    return (np.sum(np.linalg.inv(a) * b[0]) + np.linalg.det(a) + sign * logdet + np.sum(np.linalg.solve(a, b[1]))
            + np.sum(np.linalg.cholesky(s)) + np.sum(w * b[2]) + np.sum(v * v * b[3])
            + np.linalg.norm(b[4], 3) + np.linalg.norm(a, 1) + np.sum(np.linalg.pinv(a) * b[0])
            + np.linalg.norm(s, "nuc"))


def _real_numba_matches_numpy(fn: Callable[..., Any], types: dict[str, str], args: list[np.ndarray]) -> None:
    pytest.importorskip("numba")
    reference = diffc.compile(fn, args=types, backend="numpy")
    compiled = diffc.compile(fn, args=types)
    value, grads = compiled.value_and_grad(*args)
    want_value, want_grads = reference.value_and_grad(*args)
    assert not compiled.stats.get("fallback")
    dtype = args[0].dtype
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert_close(value, want_value, rtol=tol, atol=tol, what="value")
    for got, want in zip(as_tuple(grads, len(args)), as_tuple(want_grads, len(args)), strict=True):
        assert np.asarray(got).dtype == dtype
        assert_close(got, want, rtol=tol * 10, atol=tol * 10, what="gradient")


def test_real_numba_compiles_a_sample() -> None:
    n = 4
    a, b = general(n, 1), weights((n, n), 3)
    _real_numba_matches_numpy(_sample, {"a": "f64[n,n]", "b": "f64[n,n]"}, [a, b])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_real_numba_compiles_every_linalg_op(dtype: str) -> None:
    n = 4
    npdt = np.float64 if dtype == "f64" else np.float32
    args = [general(n, 1).astype(npdt), spd(n, 2).astype(npdt), weights((5, n), 3).astype(npdt)]
    _real_numba_matches_numpy(_combined, {"a": f"{dtype}[n,n]", "s": f"{dtype}[n,n]", "b": f"{dtype}[5,n]"}, args)


# ---------------------------------------------------------------------------
# completeness and bad input


def _ir(fn: Callable[..., Any], types: dict[str, str]) -> str:
    """The traced program's text: tracing is where a bad input is refused."""
    return diffc.compile(fn, args=types, backend="numpy").ir


@pytest.mark.parametrize("op", sorted(LINALG, key=lambda op: op.value), ids=lambda op: op.value)
def test_every_linalg_op_has_an_adjoint_and_printers(op: Op) -> None:
    assert op in ADJOINTS or op in NON_DIFFERENTIABLE
    assert NumpyPrinter().method(op) is not None
    assert NumbaPrinter().method(op) is not None


@pytest.mark.parametrize("fn", [np.linalg.inv, np.linalg.det, np.linalg.slogdet, np.linalg.cholesky,
                                np.linalg.eigh, lambda a: np.linalg.matrix_power(a, 2)])
def test_a_matrix_that_is_not_square_is_refused(fn: Callable[..., Any]) -> None:
    with pytest.raises(ShapeError, match=r"sizes 3 and 4 do not agree.*\[3,4\].*test_linalg.py"):
        _ir(lambda a: np.sum(fn(a)[0]), {"a": "f64[3,4]"})


def test_symbolic_sizes_are_checked_on_entry() -> None:
    compiled = diffc.compile(lambda a: np.linalg.det(a), args={"a": "f64[m,n]"}, backend="numpy")
    assert compiled(np.eye(3) * 2) == pytest.approx(8.0)
    with pytest.raises(ShapeError, match=r"a has shape \(3, 4\)"):
        compiled(np.ones((3, 4)))


def test_stacks_and_vectors_are_refused() -> None:
    with pytest.raises(ShapeError, match="stacks of matrices"):
        _ir(lambda a: np.sum(np.linalg.inv(a)), {"a": "f64[2,3,3]"})
    with pytest.raises(ShapeError, match=r"rank 2.*f64\[3\]"):
        _ir(lambda a: np.linalg.det(a), {"a": "f64[3]"})
    with pytest.raises(ShapeError, match=r"rows of a and b.*\[3,3\] and \[4\]"):
        _ir(lambda a, b: np.sum(np.linalg.solve(a, b)), {"a": "f64[3,3]", "b": "f64[4]"})


@pytest.mark.parametrize(("shape", "ord", "axis"), [((2, 3, 3), "nuc", (1, 2)), ((2, 3, 3), 2, (0, 2)),
                                                    ((3,), "fro", None), ((3, 3), 3, None), ((3,), "inf", None)])
def test_norm_with_an_unsupported_ord_names_it(shape: tuple[int, ...], ord: Any, axis: Any) -> None:
    types = {"x": f"f64[{','.join(map(str, shape))}]"}
    with pytest.raises(UnsupportedError, match=f"ord={ord!r}"):
        _ir(lambda x: np.linalg.norm(x, ord, axis), types)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_parts_of_one_call_share_it(backend: str) -> None:
    """eigh's values and vectors, slogdet's sign and logarithm, the SVD's three parts: one LAPACK call each."""
    def fn(a: Any) -> Any:
        sign, logdet = np.linalg.slogdet(a)
        return np.linalg.norm(a, "nuc") + np.sum(np.linalg.eigh(a)[0]) + sign * logdet

    compiled = diffc.compile(fn, args={"a": "f64[n,n]"}, backend=backend)
    text = compiled.grad_source
    for call in ("np.linalg.svd(", "np.linalg.eigh(", "np.linalg.slogdet("):
        assert text.count(call) == 1, (call, text)
    a = spd(4, 0)
    (want,) = numeric_grad(fn, [a])
    grads = compiled.grad(a) if backend == "numpy" else call_plain(load_compiled(compiled)["grad"], a)
    # eigh reads the lower triangle: at a symmetric a, the symmetrised differences are the symmetric gradient
    assert_close(as_tuple(grads, 1)[0], _sym(want), rtol=1e-5, atol=1e-7, what="gradient")
