"""``where`` routes: the branch not selected receives exactly zero, NaN and inf included.

JAX and PyTorch return NaN for the gradient of ``where(x > 0, sqrt(x), 0)`` at
x < 0 (the unselected branch's ``0 * inf``); diffc carries the condition down
the subgraph that only the branch uses, so the gradient is finite everywhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import check_grad

import diffc


def sqrt_where(x):
    return np.sum(np.where(x > 0, np.sqrt(x), 0.0))


def log_where(x):
    return np.sum(np.where(x > 1, np.log(x - 1) * x, x * x))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_unselected_branch_gives_zero_not_nan(backend: str) -> None:
    f = diffc.compile(sqrt_where, backend=backend)
    x = np.array([-4.0, -1e-300, 0.0, 1e-300, 0.25, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grad = f.grad(x)
    expected = np.where(x > 0, 0.5 / np.sqrt(np.abs(x) + (x <= 0)), 0.0)
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[x <= 0], 0.0)
    np.testing.assert_allclose(grad[x > 0], expected[x > 0], rtol=1e-15)


def test_both_branches_use_x() -> None:
    """x feeds both branches and the condition: each side routes its own contribution."""
    f = diffc.compile(log_where, backend="numpy")
    x = np.array([-3.0, 0.5, 1.0, 1.5, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grad = f.grad(x)
    hand = np.where(x > 1, np.log(np.where(x > 1, x - 1, 1.0)) + x / np.where(x > 1, x - 1, 1.0), 2 * x)
    np.testing.assert_allclose(grad, hand, rtol=1e-14)


def test_nested_where_guards_combine() -> None:
    def f(x):
        inner = np.where(x < 10, np.log(10 - x), 0.0)
        return np.sum(np.where(x > 0, np.sqrt(x) * inner, 0.0))

    g = diffc.compile(f, backend="numpy")
    x = np.array([-2.0, 1.0, 4.0, 12.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grad = g.grad(x)
    assert np.all(np.isfinite(grad))
    assert grad[0] == 0.0 and grad[3] == 0.0
    for i in (1, 2):  # central differences where the function is smooth
        h = 1e-6
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        assert grad[i] == pytest.approx((g(xp) - g(xm)) / (2 * h), rel=1e-6)


def test_value_is_numpy_where() -> None:
    f = diffc.compile(sqrt_where, backend="numpy")
    x = np.linspace(-2, 2, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert f(x) == pytest.approx(sqrt_where(x), rel=1e-15)


def test_guard_stops_at_a_reduction() -> None:
    """A reduced value used in one branch is used by every element: its inputs are not guarded."""
    def f(x, y):
        return np.sum(np.where(y > 0, np.sum(x * x), y))

    g = diffc.compile(f, backend="numpy")
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 2.0, 5.0])
    x_bar, y_bar = g.grad(x, y)
    np.testing.assert_allclose(x_bar, 3 * 2 * x)  # three positive y's each use sum(x*x)
    np.testing.assert_array_equal(y_bar, [0.0, 1.0, 0.0, 0.0])


SHAPES = [((3, 4), (3, 4), (3, 4)), ((3, 1), (3, 4), ()), ((1, 4), (3, 1), (4,)), ((4,), (), (3, 4)),
          ((2, 3, 4), (2, 3, 1), ()), ((2, 3, 4), (3, 4), (2, 1, 1)), ((5,), (5,), ()), ((0, 4), (4,), ())]


@pytest.mark.parametrize(("c_shape", "a_shape", "b_shape"), SHAPES)
def test_broadcasting_where_matches_numpy_in_both_back_ends(c_shape, a_shape, b_shape) -> None:
    """The Numba back end's where_rows (2-D views, size-1 axes broadcast) against NumPy's where."""
    def model(c, a, b):
        return np.sum(np.where(c > 0.0, a * 2.0, np.sin(b)) ** 2)

    rng = np.random.default_rng(len(c_shape) + 10 * len(a_shape))
    c, a, b = rng.normal(size=c_shape), rng.normal(size=a_shape), rng.normal(size=b_shape)
    c = np.where(np.abs(c) < 1e-3, 0.5, c)  # away from the switch, for the differences below
    if b_shape == ():
        b = float(b)
    values = []
    for backend in ("numpy", "numba"):
        f = diffc.compile(model, backend=backend)
        values.append(f.value_and_grad(c, a, b))
    (value_np, grads_np), (value_nb, grads_nb) = values
    assert value_nb == pytest.approx(value_np, rel=1e-13)
    for g_nb, g_np in zip(grads_nb, grads_np, strict=True):
        np.testing.assert_allclose(g_nb, g_np, rtol=1e-13, atol=1e-300)
    check_grad(diffc.compile(model), (c, a, b), f=model)  # and against central differences
