"""``where`` routes: the branch not selected receives exactly zero, NaN and inf included.

JAX and PyTorch return NaN for the gradient of ``where(x > 0, sqrt(x), 0)`` at
x < 0 (the unselected branch's ``0 * inf``); diffc carries the condition down
the subgraph that only the branch uses, so the gradient is finite everywhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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
        (grad,) = f.grad(x)
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
        (grad,) = f.grad(x)
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
        (grad,) = g.grad(x)
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
