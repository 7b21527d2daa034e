"""More NumPy functions (diffc/frontends/numpy_functions.py): values against NumPy, gradients against differences.

Every case is a scalar loss of one function's result (a smooth, position-dependent
``sum(sin(1.3 y + 0.2))``, so that every entry's cotangent differs). Its value is
checked against the same function run by NumPy on plain arrays, its gradient
against central differences; the Numba back end's module runs as plain Python
(tests/plain_numba.py) for every case and must agree with the NumPy back end;
real Numba compiles a small sample. ``np.prod`` with zeros is checked against the
hand-derived gradient (the product of the other entries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import as_tuple, assert_close, numeric_grad
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plain_numba import call_plain, load_compiled

import diffc
from diffc.errors import IndexRangeError, ShapeError, TraceError, UnsupportedCallError


def loss(y: Any) -> Any:
    """A scalar whose gradient differs per entry of y (works on tracers and on arrays)."""
    return np.sum(np.sin(1.3 * y + 0.2))


@dataclass
class Case:
    name: str
    fn: Callable[..., Any]
    types: dict[str, str]
    shapes: list[tuple[int, ...]]
    low: float = -2.0
    high: float = 2.0
    rtol: float = 1e-6
    float32: bool = False

    def args(self, dtype: Any = np.float64, seed: int = 0) -> list[Any]:
        rng = np.random.default_rng(seed)
        return [rng.uniform(self.low, self.high, size=s).astype(dtype) if s else dtype(rng.uniform(self.low, self.high))
                for s in self.shapes]

    def typed(self, dtype: str) -> dict[str, str]:
        return {k: v.replace("f64", dtype) for k, v in self.types.items()}


M = {"x": "f64[m,n]"}
V = {"x": "f64[n]"}
C34 = {"x": "f64[3,4]"}
WEIGHTS = np.arange(1.0, 5.0)

CASES = [
    # reductions and running sums
    Case("prod", lambda x: loss(np.prod(x)), V, [(5,)], low=0.5, float32=True),
    Case("prod-axis", lambda x: loss(np.prod(x, axis=1)), M, [(3, 4)], float32=True),
    Case("prod-keepdims", lambda x: loss(x * x.prod(axis=0, keepdims=True)), M, [(3, 4)]),
    Case("cumsum", lambda x: loss(np.cumsum(x)), M, [(3, 4)], float32=True),
    Case("cumsum-axis0", lambda x: loss(np.cumsum(x, axis=0)), M, [(3, 4)]),
    Case("cumsum-method", lambda x: loss(x.cumsum(axis=-1)), M, [(2, 5)]),
    Case("cumprod", lambda x: loss(np.cumprod(x)), M, [(2, 3)], low=0.5, high=1.5, float32=True),
    Case("cumprod-axis", lambda x: loss(np.cumprod(x, axis=0) + x.cumprod(axis=1)), M, [(3, 4)]),
    Case("var", lambda x: loss(np.var(x)), M, [(3, 4)], float32=True),
    Case("var-ddof", lambda x: loss(np.var(x, axis=0, ddof=1)), M, [(3, 4)]),
    Case("std", lambda x: loss(np.std(x, axis=1, keepdims=True) * x), M, [(3, 4)], float32=True),
    Case("std-method", lambda x: loss(x.std() + x.var(axis=1)), M, [(3, 4)]),
    Case("average", lambda x: loss(np.average(x, axis=1, weights=WEIGHTS)), {"x": "f64[m,4]"}, [(3, 4)]),
    Case("average-full", lambda x, w: loss(np.average(x, weights=w)), {"x": "f64[n]", "w": "f64[n]"},
         [(5,), (5,)], low=0.5),
    Case("nansum-nanmean", lambda x: loss(np.nansum(np.where(x > 1.5, np.nan, x), axis=0)
                                          + np.nanmean(np.where(x < -1.5, np.nan, x))), M, [(3, 4)]),
    Case("diff", lambda x: loss(np.diff(x)) + loss(np.diff(x, n=2, axis=0)), M, [(4, 5)]),
    # shapes
    Case("squeeze", lambda x: loss(np.squeeze(x) * np.arange(4.0)) + loss(x.squeeze(axis=0)),
         {"x": "f64[1,4]"}, [(1, 4)]),
    Case("ravel-flatten", lambda x: loss(np.ravel(x) * np.arange(12.0)) + loss(x.flatten()[::2]), C34, [(3, 4)]),
    Case("atleast", lambda x, s: loss(np.atleast_2d(x) @ np.atleast_2d(x).T) + loss(np.atleast_1d(s))
         + loss(np.atleast_3d(x)), {"x": "f64[n]", "s": "f64"}, [(4,), ()]),
    Case("flip", lambda x: loss(np.flip(x) * np.arange(12.0).reshape(3, 4)), C34, [(3, 4)], float32=True),
    Case("flip-axis", lambda x: loss(np.flip(x, axis=1)[:, 1:]), M, [(3, 4)]),
    Case("fliplr-flipud", lambda x: loss(np.fliplr(x)[0] * np.flipud(x)[0]), M, [(3, 4)]),
    Case("rot90", lambda x: loss(np.rot90(x) * np.arange(12.0).reshape(4, 3))
         + loss(np.rot90(x, 2)[0]) + loss(np.rot90(x, -1)[0]), C34, [(3, 4)]),
    Case("repeat", lambda x: loss(np.repeat(x, 3)[::2] * 0.5 + np.repeat(x, 3)[1::2]), C34, [(3, 4)]),
    Case("repeat-axis", lambda x: loss(x.repeat(2, axis=0)[::3]), M, [(3, 4)]),
    Case("tile", lambda x: loss(np.tile(x, (2, 1, 3))[1, 2:]), M, [(3, 4)]),
    Case("roll", lambda x: loss(np.roll(x, 2) * np.arange(12.0).reshape(3, 4)), C34, [(3, 4)]),
    Case("roll-axes", lambda x: loss(np.roll(x, (1, -1), axis=(0, 1))[0]), C34, [(3, 4)]),
    Case("append", lambda x: loss(np.append(x, x[1:] * 2.0, axis=0)[2:]) + loss(np.append(x, 1.0)[5:]), M,
         [(3, 4)]),
    Case("pad", lambda x: loss(np.pad(x, ((1, 2), (0, 1)), constant_values=0.5)[1:]), M, [(3, 4)]),
    Case("swap-move", lambda x: loss(np.swapaxes(x, 0, 2)[0]) + loss(x.swapaxes(1, 2)[1] * 2.0)
         + loss(np.moveaxis(x, 0, -1)[:, :, 1] * np.moveaxis(x, (0, 1), (2, 0))[:, :, 0]),
         {"x": "f64[2,3,4]"}, [(2, 3, 4)]),
    Case("broadcast_to", lambda x: loss(np.broadcast_to(x, (2, 3, 4)) * np.arange(4.0)), M, [(3, 4)]),
    Case("split", lambda x: loss(np.split(x, 2, axis=1)[1]) + loss(np.array_split(x, 2)[0] * 2.0)
         + loss(np.split(x, [1, 3], axis=1)[1]), {"x": "f64[3,4]"}, [(3, 4)]),
    Case("hsplit-vsplit", lambda x: loss(np.hsplit(x, 2)[1] * 3.0) + loss(np.vsplit(x, [1])[1])
         + loss(np.hsplit(x[0], [1])[1]), {"x": "f64[3,4]"}, [(3, 4)]),
    Case("dsplit-rollaxis", lambda x: loss(np.dsplit(x, 2)[0] * np.arange(2.0)) + loss(np.rollaxis(x, 2)[1])
         + loss(np.rollaxis(x, 0, 3)[:, 0]), {"x": "f64[2,3,4]"}, [(2, 3, 4)]),
    Case("fmax-fmin", lambda x, y: loss(np.fmax(x, np.where(y > 0.5, np.nan, y)))
         + loss(np.fmin(np.where(x < -0.5, np.nan, x), y) * 2.0), {"x": "f64[n]", "y": "f64[n]"}, [(6,), (6,)]),
    Case("posinf-neginf-count", lambda x: loss(np.where(np.isposinf(np.where(x > 1, np.inf, x))
                                                        | np.isneginf(np.where(x < -1, -np.inf, x)), 0.0, x))
         + np.count_nonzero(x > 0) * loss(x), M, [(3, 4)]),
    Case("real-conj", lambda x: loss(np.real(x) * np.conj(x) + x.conjugate() + np.imag(x) + np.fabs(x)), M,
         [(3, 4)]),
    Case("vdot-cross", lambda a, b: np.vdot(a[1], b) + np.vdot(a, a) + loss(np.cross(a, b)),
         {"a": "f64[m,3]", "b": "f64[3]"}, [(2, 3), (3,)]),
    Case("float_power", lambda x: loss(np.float_power(x, 1.5) + np.float_power(2.0, x)), M, [(3, 4)], low=0.2),
    # diagonals and triangles
    Case("trace", lambda x: np.trace(x) * np.trace(x, 1) + np.sin(x.trace(offset=-1)), M, [(4, 4)]),
    Case("diagonal", lambda x: loss(np.diagonal(x)) + loss(x.diagonal(1)), C34, [(3, 4)]),
    Case("diag", lambda x, v: loss(np.diag(v) @ x) + loss(np.diag(v, -2)[2:]) + loss(np.diag(x, 1)),
         {"x": "f64[n,n]", "v": "f64[n]"}, [(3, 3), (3,)]),
    Case("triu-tril", lambda x: loss(np.triu(x) * np.tril(x, -1) + np.tril(x, 1)) + loss(np.triu(x, 2)), M, [(3, 4)],
         float32=True),
    # products
    Case("tensordot", lambda a, b: loss(np.tensordot(a, b, axes=([1, 0], [0, 1]))),
         {"a": "f64[m,n,p]", "b": "f64[n,m]"}, [(2, 3, 4), (3, 2)], float32=True),
    Case("tensordot-int", lambda a, b: loss(np.tensordot(a, b, 1)) + loss(np.tensordot(a[0], b[:, 0], 0)),
         {"a": "f64[m,n]", "b": "f64[n,p]"}, [(2, 3), (3, 4)]),
    Case("inner", lambda a, b: loss(np.inner(a, b)) + loss(np.inner(a[0], b[0])),
         {"a": "f64[m,n]", "b": "f64[p,n]"}, [(2, 3), (4, 3)]),
    Case("matmul-stacks", lambda a, b, v: loss(a @ b) + loss(np.matmul(a, v)) + loss(v @ b) + loss(b[0] @ a),
         {"a": "f64[k,m,n]", "b": "f64[k,n,m]", "v": "f64[n]"}, [(2, 3, 4), (2, 4, 3), (4,)]),
    Case("kron", lambda a, b: loss(np.kron(a, b)) + loss(np.kron(a[0], b[0])), {"a": "f64[2,3]", "b": "f64[3,2]"},
         [(2, 3), (3, 2)]),
    Case("einsum", lambda a, b: loss(np.einsum("ij,jk->ik", a, b)) + loss(np.einsum("ij,ij->i", a, a))
         + loss(np.einsum("ij->ji", a)) + np.einsum("ij,jk,ki", a, b, b.T @ a.T) + loss(np.einsum("i,j", a[0], b[0])),
         {"a": "f64[m,n]", "b": "f64[n,p]"}, [(2, 3), (3, 4)], float32=True),
    Case("einsum-ellipsis", lambda a, b: loss(np.einsum("...i,ij", a, b)) + loss(np.einsum("...i,...i", a, a[0]))
         + loss(np.einsum("bij,...j->...bi", a, a[0])) + loss(np.einsum("...ij->...", a))
         + loss(np.einsum("...", b)), {"a": "f64[2,3,4]", "b": "f64[4,5]"}, [(2, 3, 4), (4, 5)]),
    # sorted orders: a partition is checked through losses that do not depend on the order inside a part
    Case("partition", lambda x: loss(np.partition(x, 2)[:, :3]) + loss(np.partition(x, (0, 2), axis=0)[1])
         + loss(np.partition(x, 5, axis=None)[5:]), M, [(3, 4)]),
    Case("argpartition", lambda x: loss(np.take_along_axis(x, np.argpartition(x, 1, axis=1)[:, :2], axis=1)),
         M, [(3, 4)]),
    Case("dstack", lambda x: loss(np.dstack([x, 2.0 * x])) + loss(np.dstack((x[0], x[1] ** 2, np.ones(4)))),
         C34, [(3, 4)]),
    Case("full", lambda x, s: loss(np.full((3, 4), x[0]) * x + np.full(x.shape, s) + np.full((3, 4), 1.5))
         + loss(np.full(5, s * s, dtype=np.float64)), {"x": "f64[3,4]", "s": "f64"}, [(3, 4), ()]),
    Case("angle", lambda x: loss(np.angle(x) * x + np.angle(x, deg=True) * 0.01 + np.real_if_close(x)), M,
         [(3, 4)], float32=True),
    # order statistics and moments (diffc/frontends/statistics.py); a symbolic size is specialised on
    Case("ptp", lambda x: loss(np.ptp(x, axis=1)) + np.ptp(x), M, [(3, 4)], float32=True),
    Case("median", lambda x: np.median(x) + loss(np.median(x, axis=0)) + loss(np.median(x, axis=1, keepdims=True) * x),
         C34, [(3, 4)]),
    Case("median-odd", lambda x: np.median(x) + loss(np.median(x, axis=1)), {"x": "f64[3,5]"}, [(3, 5)]),
    Case("quantile", lambda x: np.quantile(x, 0.3) + loss(np.quantile(x, [0.1, 0.5, 0.95], axis=1))
         + loss(np.percentile(x, 75, axis=0, keepdims=True) * x) + np.percentile(x, 100), C34, [(3, 4)]),
    Case("cov-corrcoef", lambda x: loss(np.cov(x)) + loss(np.cov(x, rowvar=False)) + np.cov(x[0])
         + loss(np.cov(x[0], x[1], bias=True)) + loss(np.corrcoef(x)) + np.corrcoef(x[0], x[2])[0, 1], C34, [(3, 4)]),
    # truth tests and choices (diffc/frontends/logic.py)
    Case("all-any-isclose", lambda x: loss(np.where(np.all(x > -1.5, axis=1)[:, None], x, 0.0))
         + loss(np.where(np.any(x > 1.0, axis=0), x, 0.0)) + loss(np.where(np.isclose(x, 0.5, atol=0.3), 0.0, x))
         + loss(np.where(np.allclose(x, x + 1e-9), x, 0.0)), M, [(3, 4)]),
    Case("select", lambda x: loss(np.select([x > 0.5, x < -0.5], [x ** 2, np.sin(x)], 0.1)), M, [(3, 4)]),
    # numerical helpers (diffc/frontends/numerics.py)
    Case("gradient", lambda x: loss(np.gradient(x[0])) + loss(np.gradient(x, axis=1))
         + loss(np.gradient(x, 0.5, 2.0)[0]) + loss(np.gradient(x, 0.5, 2.0, edge_order=2)[1]), C34, [(3, 4)]),
    Case("trapezoid-polyval", lambda x: np.trapezoid(x[0]) + loss(np.trapezoid(x ** 2, dx=0.3, axis=0))
         + np.trapezoid(x[1], np.arange(4.0)) + loss(np.polyval(x[0], x[1])) + loss(np.polyval([1.0, -2.0, 0.5], x)),
         C34, [(3, 4)]),
    Case("interp-searchsorted", lambda x: loss(np.interp(x[0], [-1.0, 0.0, 1.5], [1.0, 3.0, -2.0]))
         + loss(np.interp(x[1], [-0.5, 0.5], x[2, :2], left=-1.0, right=4.0))
         + loss(x[0][np.searchsorted(np.array([0.0, 0.5, 1.0]), x[0, :3])])
         + loss(x[1] * np.searchsorted(np.array([-1.0, 0.0, 1.0]), x[1], side="right")), C34, [(3, 4)]),
    Case("meshgrid", lambda x: loss(np.meshgrid(x[0], x[1, :3])[0] * np.meshgrid(x[0], x[1, :3])[1])
         + loss(np.meshgrid(x[0], x[1, :3], indexing="ij")[1]) + loss(sum(np.meshgrid(x[0], x[2, :2], sparse=True))),
         C34, [(3, 4)]),
    Case("einsum-diagonal", lambda a: np.sin(np.einsum("ii", a)) + loss(np.einsum("ii->i", a))
         + loss(np.einsum("iij->j", a[None] * a[:, :, None] * 1.0)), {"a": "f64[n,n]"}, [(3, 3)]),
    # elementwise
    Case("sinc", lambda x: loss(np.sinc(x)), M, [(3, 4)], float32=True),
    Case("deg-rad", lambda x: loss(np.deg2rad(x * 50) + np.radians(x) + np.degrees(x) / 90 + np.rad2deg(x) / 90),
         M, [(3, 4)], float32=True),
    Case("arctanh", lambda x: loss(np.arctanh(x)), M, [(3, 4)], low=-0.9, high=0.9, float32=True),
    Case("arccosh", lambda x: loss(np.arccosh(x)), M, [(3, 4)], low=1.2, high=4.0, float32=True),
    Case("cbrt", lambda x: loss(np.cbrt(x)), M, [(3, 4)], low=0.2, float32=True),
    Case("steps", lambda x: loss(x * np.floor(x) + np.ceil(x) * x + np.rint(x * 3) + np.trunc(x) * x + np.fix(x)
                                 + np.round(x, 1) * x + np.around(x) + x.round(2) * x), M, [(3, 4)], float32=True),
    Case("remainder", lambda x, y: loss(x % y + np.remainder(x, 0.7) + np.mod(3.0, y) + np.fmod(x, y)
                                        + np.fmod(x, -0.6) + x // y * x), {"x": "f64[n]", "y": "f64[n]"},
         [(6,), (6,)], low=0.3, float32=True),
    Case("remainder-negative", lambda x, y: loss(x % -y + np.fmod(-x, y)), {"x": "f64[n]", "y": "f64[n]"},
         [(6,), (6,)], low=0.3),
    Case("logaddexp", lambda x, y: loss(np.logaddexp(x, y) + np.logaddexp2(x, 0.5 * y) + np.logaddexp(x, 1.0)),
         M | {"y": "f64[n]"}, [(3, 4), (4,)], float32=True),
    Case("heaviside", lambda x: loss(x * np.heaviside(x, 0.5) + np.heaviside(x - 1, 1.0)), M, [(3, 4)]),
    Case("nan_to_num", lambda x: loss(np.nan_to_num(np.where(x > 1.5, np.inf, np.where(x < -1.5, np.nan, x))) / 1e300
                                      + np.nan_to_num(np.where(x > 1, np.inf, np.where(x < -1, -np.inf, x)),
                                                      posinf=3.0, neginf=-2.0)), M, [(3, 4)]),
    Case("like", lambda x: loss(x * np.ones_like(x) + np.zeros_like(x) + np.full_like(x, 2.0)
                                + np.full_like(x, x[0, 0]) + np.ones_like(x, np.float64) * x
                                + np.full_like(x, fill_value=0.5, dtype=np.float64)), M, [(3, 4)]),
    Case("size-linspace", lambda x, s: loss(x / np.size(x) + np.size(x, 1)) + loss(np.linspace(s, 2 * s, 5))
         + loss(np.linspace(s, 2.0, 1)) + loss(np.linspace(1.0, s, 4, endpoint=False)),
         {"x": "f64[m,n]", "s": "f64"}, [(3, 4), ()]),
    Case("isnan-isinf", lambda x: loss(np.where(np.isnan(x) | np.isinf(np.where(x > 1, -np.inf, x)), 0.0, x)
                                       + np.where(np.isfinite(x), x, 0.0)), M, [(3, 4)]),
]
IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_and_gradient_numpy_backend(case: Case) -> None:
    """The value is NumPy's own; the gradient is the central differences of the function run by NumPy."""
    args = case.args()
    f = diffc.compile(case.fn, args=case.types, backend="numpy")
    value, grads = f.value_and_grad(*args)
    assert_close(value, case.fn(*args), rtol=1e-12, atol=1e-12, what=f"{case.name} value")
    reference = numeric_grad(case.fn, args)
    for k, (got, want) in enumerate(zip(as_tuple(grads, len(args)), reference, strict=True)):
        assert_close(got, want, rtol=case.rtol, atol=1e-7, what=f"{case.name} gradient {k}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_plain_numba_module_agrees_with_numpy_backend(case: Case) -> None:
    """The Numba back end's module, run as plain Python, gives the NumPy back end's value and gradient."""
    args = case.args(seed=1)
    want_value, want_grads = diffc.compile(case.fn, args=case.types, backend="numpy").value_and_grad(*args)
    namespace = load_compiled(diffc.compile(case.fn, args=case.types))
    got_value, got_grads = call_plain(namespace["value_and_grad"], *args)
    assert_close(got_value, want_value, rtol=1e-10, atol=1e-12, what=f"{case.name} value")
    for k, (got, want) in enumerate(zip(as_tuple(got_grads, len(args)), as_tuple(want_grads, len(args)), strict=True)):
        assert_close(got, want, rtol=1e-9, atol=1e-12, what=f"{case.name} gradient {k}")


F32_CASES = [c for c in CASES if c.float32]


@pytest.mark.parametrize("case", F32_CASES, ids=[c.name for c in F32_CASES])
def test_float32_values_and_gradients(case: Case) -> None:
    """float32 stays float32: the value is NumPy's in float32, the gradient the float64 one to float32 precision."""
    args32 = case.args(np.float32)
    args64 = [np.float64(a) if np.ndim(a) == 0 else a.astype(np.float64) for a in args32]
    want = diffc.compile(case.fn, args=case.types, backend="numpy").value_and_grad(*args64)
    for backend in ("numpy", "plain"):
        if backend == "plain":
            namespace = load_compiled(diffc.compile(case.fn, args=case.typed("f32")))
            value, grads = call_plain(namespace["value_and_grad"], *args32)
        else:
            value, grads = diffc.compile(case.fn, args=case.typed("f32"), backend="numpy").value_and_grad(*args32)
        assert_close(value, case.fn(*args32), rtol=2e-5, atol=2e-5, what=f"{case.name} {backend} value")
        for k, (got, ref) in enumerate(zip(as_tuple(grads, len(args32)), as_tuple(want[1], len(args32)), strict=True)):
            assert np.asarray(got).dtype == np.float32, f"{case.name} {backend}: gradient dtype"
            assert_close(got, ref, rtol=2e-3, atol=2e-3, what=f"{case.name} {backend} gradient {k}")


# ---------------------------------------------------------------------------
# np.prod with zeros: the hand-derived gradient (the product of the other entries)


def _others_product(x: np.ndarray) -> np.ndarray:
    """d prod(x) / dx_i = prod of x_j for j != i, by brute force."""
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


PROD_ZEROS = [np.array([2.0, 0.0, 3.0, 4.0]), np.array([0.0, 5.0, 0.0, 2.0]), np.array([0.0, 0.0, 0.0, 1.5]),
              np.array([-1.5, 2.0, 0.5, 3.0]), np.array([0.0, 0.0, 0.0, 0.0])]


@pytest.mark.parametrize("x", PROD_ZEROS, ids=["one-zero", "two-zeros", "three-zeros", "no-zero", "all-zero"])
@pytest.mark.parametrize("backend", ["numpy", "plain"])
def test_prod_gradient_with_zeros(x: np.ndarray, backend: str) -> None:
    f = diffc.compile(lambda x: np.prod(x), args={"x": "f64[n]"}, backend="numpy" if backend == "numpy" else "numba")
    if backend == "plain":
        value, grad = call_plain(load_compiled(f)["value_and_grad"], x)
    else:
        value, grad = f.value_and_grad(x)
    assert value == np.prod(x)
    assert_close(as_tuple(grad, 1)[0], _others_product(x), rtol=0, atol=0, what="d prod")


@pytest.mark.parametrize("backend", ["numpy", "plain"])
def test_prod_gradient_with_zeros_along_an_axis(backend: str) -> None:
    """Each row on its own: a row with one zero, one with two, one without."""
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 4.0], [1.5, -2.0, 3.0]])
    weights = np.array([1.0, -2.0, 0.5])

    def fn(x):
        return np.sum(np.prod(x, axis=1) * weights)

    f = diffc.compile(fn, args={"x": "f64[3,k]"}, backend="numpy" if backend == "numpy" else "numba")
    grad = call_plain(load_compiled(f)["grad"], x) if backend == "plain" else f.grad(x)
    expected = np.stack([w * _others_product(row) for w, row in zip(weights, x, strict=True)])
    assert_close(as_tuple(grad, 1)[0], expected, rtol=1e-15, atol=0, what="d prod along axis 1")


def _cumprod_jacobian(x: np.ndarray) -> np.ndarray:
    """d cumprod(x)_k / dx_i = prod of x_j for j <= k, j != i (zero for k < i), by brute force."""
    n = x.size
    return np.array([[np.prod(np.delete(x[:k + 1], i)) if i <= k else 0.0 for i in range(n)] for k in range(n)])


@pytest.mark.parametrize("x", PROD_ZEROS, ids=["one-zero", "two-zeros", "three-zeros", "no-zero", "all-zero"])
@pytest.mark.parametrize("backend", ["numpy", "plain"])
def test_cumprod_gradient_with_zeros(x: np.ndarray, backend: str) -> None:
    weights = np.array([0.5, -1.0, 2.0, 1.5])

    def fn(x):
        return np.sum(np.cumprod(x) * weights)

    f = diffc.compile(fn, args={"x": "f64[n]"}, backend="numpy" if backend == "numpy" else "numba")
    grad = call_plain(load_compiled(f)["grad"], x) if backend == "plain" else f.grad(x)
    assert_close(as_tuple(grad, 1)[0], weights @ _cumprod_jacobian(x), rtol=1e-15, atol=0, what="d cumprod")


# ---------------------------------------------------------------------------
# shapes and axes vary (hypothesis), against NumPy and central differences

SHAPED: dict[str, Callable[[np.ndarray | Any, int], Any]] = {
    "prod": lambda x, k: np.prod(x, axis=k),
    "cumsum": lambda x, k: np.cumsum(x, axis=k),
    "cumprod": lambda x, k: np.cumprod(x, axis=k),
    "var": lambda x, k: np.var(x, axis=k, ddof=0),
    "std": lambda x, k: np.std(x, axis=k, keepdims=True),
    "flip": lambda x, k: np.flip(x, axis=k),
    "repeat": lambda x, k: np.repeat(x, 2, axis=k),
    "roll": lambda x, k: np.roll(x, k + 1, axis=k),
    "diff": lambda x, k: np.diff(x, axis=k),
    "tile": lambda x, k: np.tile(x, (1,) * k + (2,)),
    "squeeze": lambda x, k: np.squeeze(x[None], axis=0) * (k + 1),
    "triu": lambda x, k: np.triu(x, k - 1) if x.ndim >= 2 else x,
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SHAPED)), shape=st.lists(st.integers(2, 4), min_size=1, max_size=3),
       axis=st.integers(0, 2), symbolic=st.booleans(), seed=st.integers(0, 2**16))
def test_shapes_and_axes_vary(name: str, shape: list[int], axis: int, symbolic: bool, seed: int) -> None:
    k = axis % len(shape)
    concrete = name == "roll" or not symbolic
    sizes = ",".join(str(d) if concrete else f"n{i}" for i, d in enumerate(shape))

    def fn(x):
        return loss(SHAPED[name](x, k))

    x = np.random.default_rng(seed).uniform(0.5, 1.5, size=shape) * np.where(np.arange(np.prod(shape)) % 3, 1, -1) \
        .reshape(shape)
    f = diffc.compile(fn, args={"x": f"f64[{sizes}]"}, backend="numpy")
    value, grad = f.value_and_grad(x)
    assert_close(value, fn(x), rtol=1e-12, atol=1e-12, what=f"{name} value")
    assert_close(as_tuple(grad, 1)[0], numeric_grad(fn, [x])[0], rtol=1e-6, atol=1e-7, what=f"{name} gradient")


# ---------------------------------------------------------------------------
# a random mix of the new functions and the old ones

MIX: list[Callable[[Any], Any]] = [
    lambda y: np.cumsum(y, axis=-1) * 0.3,
    lambda y: np.flip(y, axis=0),
    lambda y: y * np.prod(np.tanh(y) + 1.5, axis=-1, keepdims=True) * 0.2,
    lambda y: np.exp(-y * y) + np.var(y, axis=0),
    lambda y: np.logaddexp(y, 0.5 * y * y),
    lambda y: np.roll(y, 1, axis=-1) - np.maximum(y, 0.1),
    lambda y: y * np.heaviside(y, 0.5) + np.cbrt(y * y + 1.0),  # steps are left out: differences jump there
    lambda y: np.sinc(y) * np.sqrt(y * y + 1.0),
    lambda y: np.triu(np.tril(y, 1)) + np.log1p(y * y),
    lambda y: np.einsum("ij->ij", y) / (1.0 + np.abs(y)),
    lambda y: np.arctanh(np.tanh(y) * 0.5) + np.std(y, axis=-1, keepdims=True),
]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.integers(0, len(MIX) - 1), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_hypothesis_programs_mix_new_and_old_functions(picks: list[int], seed: int) -> None:
    def fn(x):
        y = x
        for p in picks:
            y = MIX[p](y)
        return np.sum(np.sin(y) * np.cos(np.arange(12.0)).reshape(3, 4))

    x = np.random.default_rng(seed).uniform(-1.2, 1.2, size=(3, 4))
    f = diffc.compile(fn, args={"x": "f64[3,4]"}, backend="numpy")
    value, grad = f.value_and_grad(x)
    assert_close(value, fn(x), rtol=1e-10, atol=1e-12, what="value")
    assert_close(as_tuple(grad, 1)[0], numeric_grad(fn, [x])[0], rtol=1e-5, atol=1e-6, what="gradient")
    got_value, got_grad = call_plain(load_compiled(diffc.compile(fn, args={"x": "f64[3,4]"}))["value_and_grad"], x)
    assert_close(got_value, value, rtol=1e-10, atol=1e-12, what="plain Numba value")
    assert_close(as_tuple(got_grad, 1)[0], as_tuple(grad, 1)[0], rtol=1e-9, atol=1e-12, what="plain Numba gradient")


# ---------------------------------------------------------------------------
# real Numba: a sample of the new ops in two compiled programs


def _sample(x: Any, y: Any) -> Any:
    z = np.prod(x, axis=1) + np.cumsum(y)[:3] + np.floor(x[:, 0]) * x[:, 1] + np.fmod(x[:, 2], 0.7)
    w = np.einsum("ij,j->i", np.flip(x, axis=0), y[:4]) + np.trace(x[:, :3]) + np.var(x, axis=0)[:3].sum()
    return np.sum(np.logaddexp(z, 0.2) + np.arctanh(np.tanh(z) * 0.5) + np.cbrt(z * z + 1.0) + z % 0.9
                  + np.sinc(w)) + np.sum(np.roll(np.repeat(w, 2), 1) ** 2) + np.sum(np.triu(x) * np.cumsum(x, axis=0))


def _small_sample(x: Any, y: Any) -> Any:
    z = np.prod(x, axis=1) + np.cumsum(y)[:3] + np.floor(x[:, 0]) * x[:, 1] + np.fmod(x[:, 2], 0.7) + x[:, 3] % 0.9
    return np.sum(np.logaddexp(z, 0.2) + np.arctanh(np.tanh(z) * 0.5) + np.cbrt(z * z + 1.0)) + np.var(x)


def _later_sample(x: Any, y: Any) -> Any:
    """The functions added after the first sample: partition, angle, einsum with '...', the thin SVD, dstack, full,
    median, quantile, cov, isclose, any, interp, gradient."""
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    return (np.sum(np.sin(np.partition(x, 2)[:, :3])) + np.sum(np.angle(x - 0.5) * x)
            + np.sum(np.einsum("...i,...i", x, x)) + np.sum(s * u[0]) + np.sum(vh ** 2 * x)
            + np.sum(np.dstack([x, x]) ** 2) + np.sum(np.full(y.shape, x[0, 0]) * y)
            + np.median(x) + np.sum(np.quantile(x, [0.2, 0.7], axis=1)) + np.sum(np.cov(x) ** 2)
            + np.sum(np.where(np.isclose(x, 1.0, atol=0.2) | np.any(x > 1.4, axis=1, keepdims=True), 0.0, x))
            + np.sum(np.interp(y, [-0.5, 0.5], x[0, :2])) + np.sum(np.gradient(x, axis=1) ** 2))


@pytest.mark.parametrize("fn", [_small_sample, pytest.param(_sample, marks=pytest.mark.slow),
                                pytest.param(_later_sample, marks=pytest.mark.slow)],
                         ids=["small", "most-new-ops", "later-ops"])
def test_real_numba_sample(fn: Callable[..., Any]) -> None:
    """Compiled by real Numba, the new ops type-check and agree with the NumPy back end and with differences."""
    types = {"x": "f64[3,4]", "y": "f64[n]"}
    rng = np.random.default_rng(3)
    args = [rng.uniform(0.3, 1.5, size=(3, 4)), rng.uniform(-1, 1, size=5)]
    want_value, want_grads = diffc.compile(fn, args=types, backend="numpy").value_and_grad(*args)
    compiled = diffc.compile(fn, args=types, backend="numba")
    value, grads = compiled.value_and_grad(*args)
    assert "fallback" not in compiled.stats, compiled.stats.get("fallback reason")
    assert_close(value, want_value, rtol=1e-10, atol=1e-12, what="value")
    assert_close(value, fn(*args), rtol=1e-10, atol=1e-12, what="value against NumPy")
    for got, want in zip(as_tuple(grads, 2), as_tuple(want_grads, 2), strict=True):
        assert_close(got, want, rtol=1e-9, atol=1e-12, what="gradient")
    for got, want in zip(as_tuple(grads, 2), numeric_grad(fn, args), strict=True):
        assert_close(got, want, rtol=1e-5, atol=1e-7, what="gradient against differences")


# ---------------------------------------------------------------------------
# refusals name what was wrong


@pytest.mark.parametrize(("fn", "types", "error", "message"), [
    (lambda a: np.einsum("...ij->ij", a[None]), {"a": "f64[3,4]"}, ShapeError, "the output needs '...'"),
    (lambda a: np.einsum("...ijk", a), {"a": "f64[3,4]"}, ShapeError, "'...ijk' names more axes"),
    (lambda a: np.einsum("i.j", a), {"a": "f64[3,4]"}, UnsupportedCallError, "'i.j'"),
    (lambda a: np.partition(a, 4), {"a": "f64[3,4]"}, IndexRangeError, "kth 4 is out of bounds"),
    (lambda a: np.partition(a, 1.5), {"a": "f64[3,4]"}, TraceError, "kth must be an int"),
    (lambda a: np.sum(a[np.nonzero(a > 0)]), {"a": "f64[3,4]"}, UnsupportedCallError, "size depends on the values"),
    (lambda a: np.sum(np.unique(a)), {"a": "f64[3,4]"}, UnsupportedCallError, "size depends on the values"),
    (lambda a: np.quantile(a, 0.5, method="nearest"), {"a": "f64[3,4]"}, UnsupportedCallError, "method='linear'"),
    (lambda a: np.quantile(a, 1.5), {"a": "f64[3,4]"}, ValueError, "q must lie in [0, 1]"),
    (lambda a: np.sum(np.gradient(a[0], np.arange(4.0))), {"a": "f64[3,4]"}, UnsupportedCallError,
     "coordinate arrays"),
    (lambda a: np.sum(np.gradient(a[:1], axis=0)), {"a": "f64[3,4]"}, ValueError, "too small for edge_order=1"),
    (lambda a: np.sum(np.interp(a, [0.0, 1.0], [1.0, 2.0], period=2.0)), {"a": "f64[3,4]"}, TraceError, "period"),
    (lambda a: np.sum(np.select([a > 0], [a, a])), {"a": "f64[3,4]"}, ValueError, "1 conditions and 2 choices"),
    (lambda a: np.sum(np.searchsorted([0.0, 1.0], a, sorter=[1, 0])), {"a": "f64[3,4]"}, TraceError, "sorter"),
    (lambda a: np.einsum("ij,jk", a), {"a": "f64[3,4]"}, UnsupportedCallError, "'ij,jk'"),
    (lambda a: np.einsum("ijk", a), {"a": "f64[3,4]"}, ShapeError, "'ijk' names 3 axes"),
    (lambda a: np.repeat(a, [1, 2, 3]), {"a": "f64[3]"}, TraceError, "repeats must be one int"),
    (lambda a: np.roll(a, 1), {"a": "f64[n]"}, TraceError, "np.roll needs a concrete size"),
    (lambda a: np.diagonal(a, 1), {"a": "f64[m,n]"}, TraceError, "np.diagonal needs a concrete size"),
    (lambda a: np.pad(a, 1, mode="reflect"), {"a": "f64[3]"}, TraceError, "mode='constant' only"),
    (lambda a: np.squeeze(a, axis=0), {"a": "f64[3,4]"}, ShapeError, "cannot select an axis to squeeze"),
    (lambda a: np.trace(a), {"a": "f64[3]"}, ShapeError, "np.trace needs an array of rank 2"),
    (lambda a: np.average(a, weights=np.ones(3), returned=True), {"a": "f64[3]"}, TraceError, "returned=True"),
    (lambda a: np.sum(a[None] @ a[:, None, :][:2]), {"a": "f64[3,4]"}, ShapeError, "x @ y (matmul): sizes 4 and 1"),
    (lambda a: np.sum(a[:2, None, :] @ a[:, :, None]), {"a": "f64[3,4]"}, ShapeError, "x @ y: broadcast"),
])
def test_refusals_name_the_problem(fn: Callable[..., Any], types: dict[str, str], error: type, message: str) -> None:
    with pytest.raises(error) as info:
        diffc.compile(fn, args=types, backend="numpy").value_and_grad(*(np.ones((3, 4)[:len(t.split(","))])
                                                                         for t in types.values()))
    assert message in str(info.value)
    assert "test_ops_functions.py" in str(info.value)


@pytest.mark.parametrize("n", [1, 4, 7])
def test_order_statistics_specialise_on_symbolic_sizes(n: int) -> None:
    """A median's middle needs the count: declared symbolic, the function is compiled for each call's size
    (f.stats says so), and the value is NumPy's, the gradient the differences'."""
    def fn(x: Any) -> Any:
        return np.median(x) + np.quantile(x, 0.3) * 2.0 + np.percentile(x, [20, 90])[1]

    f = diffc.compile(fn, args={"x": "f64[n]"}, backend="numpy")
    x = np.random.default_rng(n).normal(size=n)
    value, grad = f.value_and_grad(x)
    assert_close(value, fn(x), rtol=1e-14, atol=1e-14, what="value")
    assert_close(grad, numeric_grad(fn, [x])[0], rtol=1e-6, atol=1e-8, what="gradient")
    assert "specialised on the call's sizes" in f.stats["sizes"]


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize(("n", "k"), [(1, 1), (5, 3), (6, 4), (2, 7), (3, 3)])
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_convolve_and_correlate_match_numpy(name: str, n: int, k: int, mode: str) -> None:
    """Every mode, either argument the longer: NumPy's values (its 'same' cut and its reversal when
    correlating a shorter a), gradients against differences, the Numba module run as Python agreeing."""
    rng = np.random.default_rng(n * 10 + k)
    a, v = rng.normal(size=n), rng.normal(size=k)
    fn = getattr(np, name)

    def scalar(a: Any, v: Any) -> Any:
        return loss(fn(a, v, mode))

    types = {"a": f"f64[{n}]", "v": f"f64[{k}]"}
    assert_close(diffc.compile(lambda a, v: fn(a, v, mode), args=types, backend="numpy", wrt=())(a, v),
                 fn(a, v, mode), rtol=1e-13, atol=1e-14, what="values")
    value, grads = diffc.compile(scalar, args=types, backend="numpy").value_and_grad(a, v)
    for got, want in zip(grads, numeric_grad(scalar, [a, v]), strict=True):
        assert_close(got, want, rtol=1e-6, atol=1e-8, what="gradient")
    plain_value, plain_grads = call_plain(load_compiled(diffc.compile(scalar, args=types))["value_and_grad"], a, v)
    assert_close(plain_value, value, rtol=1e-12, atol=1e-13, what="plain Numba value")
    for got, want in zip(plain_grads, grads, strict=True):
        assert_close(got, want, rtol=1e-10, atol=1e-12, what="plain Numba gradient")
