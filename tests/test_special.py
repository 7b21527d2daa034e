"""scipy.special functions (diffc/frontends/special.py): values against SciPy, gradients against differences.

Each case is a scalar loss of one function's result. Its value is SciPy's own
on plain arrays, its gradient the central differences of the same function run
by SciPy; the Numba back end's module runs as plain Python (tests/plain_numba.py)
for every case, float64 and float32, and real Numba compiles one program that
combines them. digamma (gammaln's gradient, diffc's own series in
diffc/support/numba_special.py) is checked against scipy.special.digamma.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.special as sp
from conftest import as_tuple, assert_close, numeric_grad
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plain_numba import call_plain, load_compiled
from test_ops_functions import loss  # a scalar whose gradient differs per entry

import diffc
from diffc.support.numba_special import digamma, special_elements, trigamma


@dataclass
class Case:
    name: str
    fn: Callable[..., Any]
    low: float = -2.0
    high: float = 2.0
    second: tuple[float, float] | None = None  # the range of a second argument y, if any

    def args(self, dtype: Any = np.float64, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        out = [rng.uniform(self.low, self.high, size=(3, 4)).astype(dtype)]
        if self.second is not None:
            out.append(rng.uniform(*self.second, size=(4,)).astype(dtype))
        return out

    def types(self, dtype: str = "f64") -> dict[str, str]:
        return {"x": f"{dtype}[m,n]", **({"y": f"{dtype}[n]"} if self.second else {})}


CASES = [
    Case("expit", lambda x: loss(sp.expit(x))),
    Case("logit", lambda x: loss(sp.logit(x)), low=0.05, high=0.95),
    Case("log_expit", lambda x: loss(sp.log_expit(x)), low=-5.0, high=5.0),
    Case("erf", lambda x: loss(sp.erf(x))),
    Case("erfc", lambda x: loss(sp.erfc(x))),
    Case("gammaln", lambda x: loss(sp.gammaln(x)), low=0.3, high=6.0),
    Case("gammaln-negative", lambda x: loss(sp.gammaln(x)), low=-2.9, high=-2.1),
    Case("digamma", lambda x: loss(sp.digamma(x)) + loss(sp.polygamma(0, x) * 0.3), low=0.3, high=6.0),
    Case("digamma-negative", lambda x: loss(sp.psi(x) * 0.1), low=-2.9, high=-2.1),
    Case("xlogy", lambda x, y: loss(sp.xlogy(x, y)), second=(0.2, 3.0)),
    Case("xlog1py", lambda x, y: loss(sp.xlog1py(x, y)), second=(-0.8, 3.0)),
    Case("entr", lambda x: loss(sp.entr(x)), low=0.1, high=3.0),
    Case("logsumexp", lambda x: loss(sp.logsumexp(x))),
    Case("logsumexp-axis", lambda x: loss(sp.logsumexp(x, axis=1, keepdims=True) * x)),
    Case("logsumexp-b", lambda x, y: loss(sp.logsumexp(x, axis=1, b=y)), second=(0.2, 2.0)),
    Case("logsumexp-b-constant", lambda x: loss(sp.logsumexp(x, axis=0, b=np.array([[1.0], [0.5], [2.0]])))),
    Case("softmax", lambda x: loss(sp.softmax(x))),
    Case("softmax-axis", lambda x: loss(sp.softmax(x, axis=0))),
    Case("log_softmax", lambda x: loss(sp.log_softmax(x, axis=1)) + loss(sp.log_softmax(x))),
]
IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_and_gradient_numpy_backend(case: Case) -> None:
    """The value is SciPy's own; the gradient is the central differences of the function run by SciPy."""
    args = case.args()
    f = diffc.compile(case.fn, args=case.types(), backend="numpy")
    value, grads = f.value_and_grad(*args)
    assert_close(value, case.fn(*args), rtol=1e-12, atol=1e-12, what=f"{case.name} value")
    for k, (got, want) in enumerate(zip(as_tuple(grads, len(args)), numeric_grad(case.fn, args), strict=True)):
        assert_close(got, want, rtol=1e-6, atol=1e-7, what=f"{case.name} gradient {k}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_plain_numba_module_agrees_with_scipy(case: Case) -> None:
    """The Numba back end's module, run as plain Python: SciPy's value, the NumPy back end's gradient."""
    args = case.args(seed=1)
    _, want_grads = diffc.compile(case.fn, args=case.types(), backend="numpy").value_and_grad(*args)
    value, grads = call_plain(load_compiled(diffc.compile(case.fn, args=case.types()))["value_and_grad"], *args)
    assert_close(value, case.fn(*args), rtol=1e-12, atol=1e-12, what=f"{case.name} value")
    for k, (got, want) in enumerate(zip(as_tuple(grads, len(args)), as_tuple(want_grads, len(args)), strict=True)):
        assert_close(got, want, rtol=1e-10, atol=1e-12, what=f"{case.name} gradient {k}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("backend", ["numpy", "plain"])
def test_float32_values_and_gradients(case: Case, backend: str) -> None:
    """float32 stays float32: SciPy's value in float32, the float64 gradient to float32 precision."""
    args32 = case.args(np.float32, seed=2)
    args64 = [a.astype(np.float64) for a in args32]
    _, want = diffc.compile(case.fn, args=case.types(), backend="numpy").value_and_grad(*args64)
    if backend == "plain":
        value, grads = call_plain(load_compiled(diffc.compile(case.fn, args=case.types("f32")))["value_and_grad"],
                                  *args32)
    else:
        value, grads = diffc.compile(case.fn, args=case.types("f32"), backend="numpy").value_and_grad(*args32)
    assert_close(value, case.fn(*args64), rtol=1e-4, atol=1e-4, what=f"{case.name} value")
    for k, (got, ref) in enumerate(zip(as_tuple(grads, len(args32)), as_tuple(want, len(args32)), strict=True)):
        assert np.asarray(got).dtype == np.float32, f"{case.name}: gradient dtype"
        assert_close(got, ref, rtol=2e-3, atol=2e-3, what=f"{case.name} gradient {k}")


def combined(x: Any, y: Any) -> Any:
    """Several functions in one program: a fused loop (erf, erfc, gammaln and its digamma, digamma and its
    trigamma, expit, xlogy) and a row helper (logsumexp)."""
    return np.sum(sp.erf(x) * sp.gammaln(x * x + 0.5) + sp.erfc(x) * sp.expit(x) + sp.xlogy(x, y)
                  + sp.digamma(x * x + 1.0)) \
        + np.sum(sp.logsumexp(x, axis=1))


@pytest.mark.parametrize("dtype", ["f64", pytest.param("f32", marks=pytest.mark.slow)])
def test_real_numba_compiles_a_combined_program(dtype: str) -> None:
    rng = np.random.default_rng(3)
    npt = np.float64 if dtype == "f64" else np.float32
    x, y = rng.uniform(-1.5, 1.5, size=(5, 3)).astype(npt), rng.uniform(0.3, 2.0, size=3).astype(npt)
    types = {"x": f"{dtype}[m,n]", "y": f"{dtype}[n]"}
    value, grads = diffc.compile(combined, args=types).value_and_grad(x, y)
    want_value, want_grads = diffc.compile(combined, args=types, backend="numpy").value_and_grad(x, y)
    tol = 1e-10 if dtype == "f64" else 1e-4
    assert_close(value, combined(x.astype(np.float64), y.astype(np.float64)), rtol=tol, atol=tol, what="value")
    for got, want in zip(grads, want_grads, strict=True):
        assert np.asarray(got).dtype == npt
        assert_close(got, want, rtol=tol, atol=tol, what="gradient")
    if dtype == "f64":
        for got, want in zip(grads, numeric_grad(combined, [x, y]), strict=True):
            assert_close(got, want, rtol=1e-6, atol=1e-7, what="gradient against differences")


def test_numba_statement_printer_maps_the_elements() -> None:
    """Arrays outside the fused loops go through ``special_elements`` (real Numba): SciPy's values."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0.1, 5.0, size=(3, 4))
    for which, ref in enumerate((sp.erf, sp.erfc, sp.gammaln, sp.digamma, lambda v: sp.polygamma(1, v))):
        assert_close(special_elements(x, which), ref(x), rtol=1e-13, atol=1e-15, what=str(which))
        assert special_elements(x.astype(np.float32), which).dtype == np.float32


# ---------------------------------------------------------------------------
# digamma: diffc's series against SciPy's


def test_digamma_accuracy() -> None:
    rng = np.random.default_rng(5)
    positive = np.concatenate([rng.uniform(0.0, 3.0, 3000), 10.0 ** rng.uniform(-8, 8, 3000)])
    away = positive[np.abs(positive - 1.4616321449683622) > 0.05]  # ψ's root: a relative error means nothing there
    for run in (digamma, digamma.py_func):
        got = np.array([run(v) for v in away])
        assert_close(got, sp.digamma(away), rtol=1e-13, atol=0.0, what=f"digamma {run}")
        near = np.array([run(v) for v in positive])
        assert np.all(np.abs(near - sp.digamma(positive)) <= 1e-14 * np.maximum(1.0, np.abs(sp.digamma(positive))))
    negative = rng.uniform(-20.0, 0.0, 3000)
    got = np.array([digamma(v) for v in negative])
    ref = sp.digamma(negative)
    assert np.all(np.abs(got - ref) <= 1e-11 * np.maximum(1.0, np.abs(ref)))  # the reflection's tan


def test_digamma_edges_are_scipys() -> None:
    edges = np.array([0.0, -0.0, -1.0, -3.0, -np.inf, np.inf, np.nan, 1.0, 2.0])
    np.testing.assert_allclose(special_elements(edges, 3), sp.digamma(edges), rtol=2e-15, atol=0)
    np.testing.assert_allclose(special_elements(np.array([0.0, -2.0, 1.0, 2.0, 0.5]), 2),
                               sp.gammaln(np.array([0.0, -2.0, 1.0, 2.0, 0.5])), rtol=2e-15, atol=0)


def test_gammaln_gradient_is_digamma_and_its_hessian_trigamma() -> None:
    """The chain gammaln -> digamma -> trigamma: gradient and Hessian (diagonal) against SciPy, both back ends;
    trigamma's own gradient (tetragamma) is refused by name."""
    x = np.array([0.3, 1.0, 4.5, 12.0, -1.5])
    for backend in ("numpy", "numba"):
        f = diffc.compile(lambda x: np.sum(sp.gammaln(x)), args={"x": "f64[n]"}, backend=backend)
        assert_close(f.grad(x), sp.digamma(x), rtol=1e-13, atol=1e-14, what=backend)
        hessian = f.hessian(x)
        assert_close(np.diag(hessian), sp.polygamma(1, x), rtol=1e-13, atol=1e-14, what=f"{backend} Hessian")
        assert np.count_nonzero(hessian - np.diag(np.diag(hessian))) == 0
    g = diffc.compile(lambda x: np.sum(sp.digamma(x) * x), args={"x": "f64[n]"}, backend="numpy")
    assert_close(g.grad(x), sp.digamma(x) + x * sp.polygamma(1, x), rtol=1e-13, atol=1e-14, what="digamma'")
    for backend in ("numpy", "numba"):  # the value runs; the gradient, the vjp and their source are refused
        refused = diffc.compile(lambda x: np.sum(sp.polygamma(1, x)), args={"x": "f64[n]"}, backend=backend)
        assert_close(refused(x), np.sum(sp.polygamma(1, x)), rtol=1e-14, atol=0.0, what=f"{backend} value")
        for attempt in ("grad", "vjp", "grad_source"):
            with pytest.raises(diffc.UnsupportedError, match=r"trigamma, scipy.special.polygamma\(1, x\)"):
                getattr(refused, attempt)(x) if attempt == "grad" else refused.vjp(x, 1.0) if attempt == "vjp" \
                    else refused.grad_source
    with pytest.raises(diffc.UnsupportedCallError, match="n = 0 .* n = 1 .* got n = 2.*test_special.py"):
        diffc.compile(lambda x: np.sum(sp.polygamma(2, x)), args={"x": "f64[n]"}, backend="numpy", wrt=())(x)


def test_trigamma_against_mpmath_and_scipys_edges() -> None:
    """diffc's trigamma (the Numba helper and its Python twin) to 2e-15 relative of mpmath's ψ₁, near the poles
    too (the reflection reduces x to its nearest integer first), and SciPy's values at the edges."""
    import mpmath

    rng = np.random.default_rng(6)
    points = np.concatenate([rng.uniform(-20.0, 0.0, 300), 10.0 ** rng.uniform(-8, 8, 300),
                             -14.0 + 10.0 ** rng.uniform(-9, -1, 50), -3.0 - 10.0 ** rng.uniform(-9, -1, 50)])
    want = np.array([float(mpmath.psi(1, mpmath.mpf(float(v)))) for v in points])
    for run in (trigamma, trigamma.py_func):
        got = np.array([run(v) for v in points])
        assert np.all(np.abs(got - want) <= 2e-15 * np.abs(want)), np.max(np.abs(got - want) / np.abs(want))
    edges = np.array([0.0, -0.0, -1.0, -3.0, -np.inf, np.inf, np.nan, 1e-300, 1e300, 1.0])
    np.testing.assert_allclose(special_elements(edges, 4), sp.polygamma(1, edges), rtol=2e-15, atol=0)
    assert special_elements(edges.astype(np.float32), 4).dtype == np.float32


# ---------------------------------------------------------------------------
# edge values: SciPy's, on both back ends


def _both(fn: Callable[..., Any], types: dict[str, str], *args: Any) -> list[tuple[Any, Any]]:
    """(value, gradient) from the NumPy back end and the Numba back end's module run as plain Python."""
    out = [diffc.compile(fn, args=types, backend="numpy").value_and_grad(*args)]
    out.append(call_plain(load_compiled(diffc.compile(fn, args=types))["value_and_grad"], *args))
    return out


def test_xlogy_at_zero_follows_jax() -> None:
    """xlogy(0, y) = 0 for y >= 0 or y < 0; d/dx = log(y) at x = 0 (JAX's convention), d/dy = x / y = 0."""
    x, y = np.array([0.0, 0.0, 0.0, 2.0]), np.array([2.0, 0.0, -1.0, 3.0])
    for value, (gx, gy) in _both(lambda x, y: np.sum(sp.xlogy(x, y) * np.arange(1.0, 5.0)),
                                 {"x": "f64[n]", "y": "f64[n]"}, x, y):
        assert_close(value, np.sum(sp.xlogy(x, y) * np.arange(1.0, 5.0)), rtol=1e-15, atol=0, what="xlogy")
        np.testing.assert_allclose(gx, np.array([np.log(2.0), 0.0, 0.0, np.log(3.0)]) * np.arange(1.0, 5.0),
                                   rtol=1e-15, atol=0)
        np.testing.assert_allclose(gy, np.array([0.0, 0.0, 0.0, 2.0 / 3.0 * 4.0]), rtol=1e-15)
    for value, (gx, _) in _both(lambda x, y: np.sum(sp.xlog1py(x, y)), {"x": "f64[n]", "y": "f64[n]"},
                                 x, np.array([1.0, -1.0, -2.0, 0.5])):
        assert_close(value, np.sum(sp.xlog1py(x, np.array([1.0, -1.0, -2.0, 0.5]))), rtol=1e-15, atol=0, what="")
        np.testing.assert_allclose(gx, [np.log1p(1.0), 0.0, 0.0, np.log1p(0.5)], rtol=1e-15, atol=0)


def test_logit_and_expit_at_the_ends() -> None:
    """logit(0) = -inf and logit(1) = inf as in SciPy; expit and log_expit of large |z| stay finite and exact."""
    p = np.array([0.0, 1.0, 0.5])
    z = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    logit = diffc.compile(lambda p: sp.logit(p), args={"p": "f64[n]"}, backend="numpy")
    np.testing.assert_array_equal(logit(p), sp.logit(p))
    plain = load_compiled(diffc.compile(lambda p: sp.logit(p), args={"p": "f64[n]"}))["forward"]
    np.testing.assert_array_equal(call_plain(plain, p), sp.logit(p))
    for value, grad in _both(lambda z: np.sum(sp.expit(z)), {"z": "f64[n]"}, z):
        assert_close(value, np.sum(sp.expit(z)), rtol=1e-15, atol=0, what="expit value")
        assert np.all(np.isfinite(grad)) and grad[0] == 0.0 and grad[-1] == 0.0
    for value, grad in _both(lambda z: np.sum(sp.log_expit(z)), {"z": "f64[n]"}, z):
        assert_close(value, np.sum(sp.log_expit(z)), rtol=1e-15, atol=0, what="log_expit of large |z|")
        assert_close(grad, sp.expit(-z), rtol=1e-15, atol=1e-300, what="log_expit gradient")


def test_logsumexp_refusals() -> None:
    x = np.ones(3)
    with pytest.raises(diffc.TraceError, match="return_sign"):
        diffc.compile(lambda x: sp.logsumexp(x, return_sign=True)[0], backend="numpy")(x)
    with pytest.raises(diffc.TraceError, match="negative weight"):
        diffc.compile(lambda x: sp.logsumexp(x, b=np.array([1.0, -1.0, 1.0])), backend="numpy")(x)


def test_generated_numpy_module_imports_scipy_special_only_when_used() -> None:
    with_erf = diffc.compile(lambda x: np.sum(sp.erf(x)), args={"x": "f64[n]"}, backend="numpy")
    without = diffc.compile(lambda x: np.sum(np.exp(x)), args={"x": "f64[n]"}, backend="numpy")
    assert "import scipy.special" in with_erf.module_source()
    assert "scipy" not in without.module_source()
    numba_source = diffc.compile(lambda x: np.sum(sp.erf(x)), args={"x": "f64[n]"}).module_source()
    assert "import math" in numba_source and "scipy" not in numba_source


# ---------------------------------------------------------------------------
# hypothesis: special functions mixed with arithmetic

UNARY = [("erf", sp.erf), ("erfc", sp.erfc), ("expit", sp.expit), ("gammaln", lambda v: sp.gammaln(v * v + 0.4)),
         ("log_expit", sp.log_expit), ("logit", lambda v: sp.logit(sp.expit(v) * 0.8 + 0.1))]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.sampled_from(range(len(UNARY))), min_size=1, max_size=4),
       scales=st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4),
       n=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_hypothesis_programs_mixing_special_functions(picks: list[int], scales: list[float], n: int,
                                                      seed: int) -> None:
    def fn(x: Any, y: Any) -> Any:
        z = x
        for k, pick in enumerate(picks):
            z = UNARY[pick][1](z * scales[k] + y) + 0.5 * z
        return np.sum(z * z) + sp.logsumexp(z + sp.xlogy(x, y * y + 0.1))

    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1.0, 1.0, n), rng.uniform(-1.0, 1.0, n)
    types = {"x": "f64[n]", "y": "f64[n]"}
    value, grads = diffc.compile(fn, args=types, backend="numpy").value_and_grad(x, y)
    assert_close(value, fn(x, y), rtol=1e-11, atol=1e-11, what="value")
    for got, want in zip(grads, numeric_grad(fn, [x, y]), strict=True):
        assert_close(got, want, rtol=1e-5, atol=1e-6, what="gradient")
    plain_value, plain_grads = call_plain(load_compiled(diffc.compile(fn, args=types))["value_and_grad"], x, y)
    assert_close(plain_value, value, rtol=1e-11, atol=1e-11, what="plain value")
    for got, want in zip(plain_grads, grads, strict=True):
        assert_close(got, want, rtol=1e-9, atol=1e-11, what="plain gradient")


def test_expression_strings_call_erf_erfc_gammaln() -> None:
    f = diffc.compile("sum(erf(x) + erfc(x / 2) + gammaln(x))", args={"x": "f64[n]"}, backend="numpy")
    x = np.array([0.4, 1.3, 3.0])
    value, grad = f.value_and_grad(x)
    assert_close(value, np.sum(sp.erf(x) + sp.erfc(x / 2) + sp.gammaln(x)), rtol=1e-14, atol=0, what="value")
    by_hand = 2 / np.sqrt(np.pi) * (np.exp(-x * x) - 0.5 * np.exp(-x * x / 4)) + sp.digamma(x)
    assert_close(grad, by_hand, rtol=1e-13, atol=1e-15, what="gradient")


# ---------------------------------------------------------------------------
# ufuncs given lists of traced values, as NumPy functions are


def lists(a: Any, b: Any) -> Any:
    return (np.sum(np.exp([a, b]) * np.array([[1.0], [2.0]])) + np.sum(np.maximum([a, b], 0.5))
            + np.sum(sp.erf([a, b * 0.5])) + np.sum(np.abs((a, -b))))


@pytest.mark.parametrize("backend", ["numpy", "plain"])
def test_ufuncs_take_lists_of_traced_values(backend: str) -> None:
    a, b = np.array([0.3, -1.1, 2.0]), np.array([0.7, 0.2, 2.4])
    types = {"a": "f64[n]", "b": "f64[n]"}
    if backend == "plain":
        value, grads = call_plain(load_compiled(diffc.compile(lists, args=types))["value_and_grad"], a, b)
    else:
        value, grads = diffc.compile(lists, args=types, backend="numpy").value_and_grad(a, b)
    assert_close(value, lists(a, b), rtol=1e-14, atol=0, what="value")
    for got, want in zip(grads, numeric_grad(lists, [a, b]), strict=True):
        assert_close(got, want, rtol=1e-6, atol=1e-7, what="gradient")
    assert isinstance(np.exp, np.ufunc) and isinstance(sp.erf, np.ufunc)  # restored after the trace


# ---------------------------------------------------------------------------
# the edges issue 11 names: np.where(cond), np.clip with array bounds, x ** k, sqrt/abs/norm at 0


def test_where_with_one_argument_is_refused_by_name() -> None:
    with pytest.raises(diffc.UnsupportedCallError, match=r"np\.nonzero") as info:
        diffc.compile(lambda x: np.sum(x[np.where(x > 0)]), args={"x": "f64[n]"}, backend="numpy")(np.ones(3))
    assert info.value.function == "np.where(cond)"
    assert "test_special.py" in str(info.value)


@pytest.mark.parametrize("traced_bounds", [False, True])
def test_clip_with_array_bounds(traced_bounds: bool) -> None:
    """Random points off the bounds: the gradient goes to x inside, to the bound it is clipped to outside."""
    rng = np.random.default_rng(6)
    x = rng.uniform(-2.0, 2.0, (4, 5))
    lo, hi = rng.uniform(-1.0, 0.0, 5), rng.uniform(0.0, 1.0, (4, 1))
    if traced_bounds:
        def fn(x: Any, lo: Any, hi: Any) -> Any:
            return loss(np.clip(x, lo, hi))
        types, args = {"x": "f64[m,n]", "lo": "f64[n]", "hi": "f64[m,1]"}, [x, lo, hi]
    else:
        def fn(x: Any) -> Any:
            return loss(np.clip(x, lo, hi) + x.clip(min=lo))
        types, args = {"x": "f64[m,n]"}, [x]
    for value, grads in _both(fn, types, *args):
        assert_close(value, fn(*args), rtol=1e-13, atol=1e-13, what="clip value")
        for got, want in zip(as_tuple(grads, len(args)), numeric_grad(fn, args), strict=True):
            assert_close(got, want, rtol=1e-6, atol=1e-7, what="clip gradient")


def test_integer_powers_at_zero() -> None:
    """d/dx x**k = k x**(k-1): 0 at 0 for k > 1 and 1 for k = 1, never NaN (np.power too)."""
    x = np.array([0.0, 1.5, -0.5])
    for _, grad in _both(lambda x: np.sum(x ** 3 + x ** 1 + x ** 2 + np.power(x, 4)), {"x": "f64[n]"}, x):
        np.testing.assert_allclose(grad, 3 * x ** 2 + 1 + 2 * x + 4 * x ** 3, rtol=1e-15, atol=0)


def test_sqrt_abs_norm_at_zero_follow_docs_conventions() -> None:
    """docs/conventions.md: sqrt'(0) = inf, |x|'(0) = 0, the norm's gradient at 0 is 0 (every ord, every axis)."""
    x = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 0.0]])
    cases = [
        (lambda x: np.sum(np.sqrt(x[0])), np.array([[np.inf] * 3, [0.0] * 3])),
        (lambda x: np.sum(np.abs(x)), np.sign(x)),
        (lambda x: np.linalg.norm(x[0]), np.zeros((2, 3))),
        (lambda x: np.linalg.norm(x[0], ord=1) + np.linalg.norm(x[0], ord=np.inf), np.zeros((2, 3))),
        (lambda x: np.sum(np.linalg.norm(x, axis=1)), np.array([[0.0, 0.0, 0.0], [0.6, -0.8, 0.0]])),
    ]
    for k, (fn, want) in enumerate(cases):
        for _, grad in _both(fn, {"x": "f64[2,3]"}, x):
            np.testing.assert_allclose(grad, want, rtol=1e-15, atol=0, err_msg=f"case {k}")
