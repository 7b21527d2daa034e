"""The lecture notes' models, differentiated by diffc, against the notes' own formulas.

Each model is compiled from a text string (and, when the tracing front end is
available, from a plain NumPy function) and checked against a reference that
shares no code with diffc: the notes' per-example loop, a hand-derived
vectorized gradient, and central finite differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import assert_close, check_grad, check_vjp

import diffc

try:  # the tracing front end: models written as ordinary NumPy functions
    from diffc.frontends import trace as _trace  # noqa: F401
    HAVE_TRACER = True
except ImportError:  # pragma: no cover - depends on the checkout
    HAVE_TRACER = False

needs_tracer = pytest.mark.skipif(not HAVE_TRACER, reason="diffc.frontends.trace is not available")

SIZES = [(1, 1), (5, 3), (20, 4), (64, 10)]


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def logistic_data(m: int, n: int, seed: int) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """w, b, X (m examples as rows) and labels y in {0, 1}; scores kept moderate so log(1 - a) is accurate."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=n) / math.sqrt(n), float(rng.normal()), rng.normal(size=(m, n)),
            (rng.random(m) > 0.5).astype(np.float64))


# ---------------------------------------------------------------------------
# (a) logistic regression over m examples

LOGISTIC_TYPES = {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}
LOGISTIC_TEXT = "mean(-(y * log(sigmoid(X @ w + b)) + (1 - y) * log(1 - sigmoid(X @ w + b))))"
LOGISTIC_LINES = """
z = X @ w + b
a = sigmoid(z)
J = mean(-(y * log(a) + (1 - y) * log(1 - a)))
"""


def logistic_loop(w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """The notes' loop, written out: J, dw, db accumulated one example (and one feature) at a time."""
    m, n = x.shape
    cost, dw, db = 0.0, [0.0] * n, 0.0
    for i in range(m):
        z = sum(w[j] * x[i][j] for j in range(n)) + b
        a = sigmoid(z)
        cost += -(y[i] * math.log(a) + (1 - y[i]) * math.log(1 - a))
        dz = a - y[i]
        for j in range(n):
            dw[j] += x[i][j] * dz
        db += dz
    return cost / m, np.array(dw) / m, db / m


def logistic_vectorized(w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The notes' vectorized version (examples as rows here): dw = Xᵀ(a - y)/m, db = mean(a - y)."""
    a = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    return x.T @ (a - y) / x.shape[0], float(np.mean(a - y))


def logistic_numpy(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> Any:  # noqa: N803 - the notes' X
    """The model as a user writes it in NumPy, for the tracing front end."""
    a = 1 / (1 + np.exp(-(X @ w + b)))
    return np.mean(-(y * np.log(a) + (1 - y) * np.log(1 - a)))


@pytest.fixture(scope="module")
def logistic_compiled() -> dict[str, diffc.Compiled]:
    """Compiled once for every size: sizes are symbolic, one signature serves them all."""
    return {source: diffc.compile(text, args=LOGISTIC_TYPES, wrt=("w", "b"), backend="numpy")
            for source, text in (("expression", LOGISTIC_TEXT), ("lines", LOGISTIC_LINES))}


@pytest.mark.parametrize("source", ["expression", "lines"])
@pytest.mark.parametrize("m, n", SIZES)
def test_logistic_regression_against_the_notes_loop(logistic_compiled: dict[str, diffc.Compiled], source: str,
                                                    m: int, n: int) -> None:
    w, b, x, y = logistic_data(m, n, seed=10 * m + n)
    cost, dw, db = logistic_loop(w, b, x, y)
    value, (got_dw, got_db) = logistic_compiled[source].value_and_grad(w, b, x, y)
    assert value == pytest.approx(cost, rel=1e-9)
    assert isinstance(got_db, float)
    assert_close(got_dw, dw, rtol=1e-9, atol=1e-12, what="dw")
    assert got_db == pytest.approx(db, rel=1e-9, abs=1e-12)
    vec_dw, vec_db = logistic_vectorized(w, b, x, y)
    assert_close(got_dw, vec_dw, rtol=1e-9, atol=1e-12, what="dw (vectorized)")
    assert got_db == pytest.approx(vec_db, rel=1e-9, abs=1e-12)


def test_logistic_regression_against_central_differences(logistic_compiled: dict[str, diffc.Compiled]) -> None:
    w, b, x, y = logistic_data(7, 3, seed=1)
    check_grad(logistic_compiled["expression"], [w, b, x, y], rtol=1e-6, atol=1e-8, wrt=[0, 1],
               f=lambda w, b, x, y: logistic_loop(w, b, x, y)[0])


def test_logistic_regression_gradient_with_respect_to_the_data() -> None:
    """Every float input by default: X and y get gradients too (dJ/dX = outer(a - y, w) / m)."""
    f = diffc.compile(LOGISTIC_TEXT, args=LOGISTIC_TYPES, backend="numpy")
    w, b, x, y = logistic_data(6, 3, seed=2)
    dw, db, dx, dy = f.grad(w, b, x, y)
    a = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    assert_close(dx, np.outer(a - y, w) / 6, rtol=1e-9, atol=1e-12, what="dX")
    assert_close(dy, -(x @ w + b) / 6, rtol=1e-9, atol=1e-12, what="dy")  # d/dy of -(y z - log(1 + e^z))
    check_grad(f, [w, b, x, y], rtol=1e-6, atol=1e-8)


def test_logistic_regression_with_numba() -> None:
    f = diffc.compile(LOGISTIC_TEXT, args=LOGISTIC_TYPES, wrt=("w", "b"), backend="numba")
    for m, n in ((5, 3), (40, 7)):  # one compiled signature, two sizes
        w, b, x, y = logistic_data(m, n, seed=m)
        cost, dw, db = logistic_loop(w, b, x, y)
        value, (got_dw, got_db) = f.value_and_grad(w, b, x, y)
        assert value == pytest.approx(cost, rel=1e-9)
        assert_close(got_dw, dw, rtol=1e-9, atol=1e-12, what="dw")
        assert got_db == pytest.approx(db, rel=1e-9, abs=1e-12)


@needs_tracer
@pytest.mark.parametrize("m, n", SIZES[1:3])
def test_logistic_regression_traced_from_numpy(m: int, n: int) -> None:
    f = diffc.compile(logistic_numpy, args=LOGISTIC_TYPES, wrt=("w", "b"), backend="numpy")
    w, b, x, y = logistic_data(m, n, seed=3)
    cost, dw, db = logistic_loop(w, b, x, y)
    value, (got_dw, got_db) = f.value_and_grad(w, b, x, y)
    assert value == pytest.approx(cost, rel=1e-9)
    assert value == pytest.approx(logistic_numpy(w, b, x, y), rel=1e-12)
    assert_close(got_dw, dw, rtol=1e-9, atol=1e-12, what="dw")
    assert got_db == pytest.approx(db, rel=1e-9, abs=1e-12)


def test_gradient_descent_step_lowers_the_cost(logistic_compiled: dict[str, diffc.Compiled]) -> None:
    """The notes' update rule w -= alpha dw, b -= alpha db, with diffc's gradient, decreases J."""
    f = logistic_compiled["expression"]
    w, b, x, y = logistic_data(30, 4, seed=4)
    costs = []
    for _ in range(20):
        cost, (dw, db) = f.value_and_grad(w, b, x, y)
        costs.append(cost)
        w, b = w - 0.5 * dw, b - 0.5 * db
    assert all(later < earlier for earlier, later in zip(costs, costs[1:], strict=False))


# ---------------------------------------------------------------------------
# (b) the DAG logistic regression, labels in {-1, 1}: L = ½‖w‖² - λ mean(log σ(y ⊙ Xw))

DAG_TYPES = {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]", "lam": "f64"}
DAG_TEXT = "0.5 * sum(w * w) - lam * mean(log(sigmoid(y * (X @ w))))"


def dag_hand_gradient(w: np.ndarray, x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """d/dw log σ(u) = (1 - σ(u)) du/dw with u = y_i x_iᵀw, so dL/dw = w - λ/m Xᵀ(y ⊙ (1 - σ(y ⊙ Xw)))."""
    u = y * (x @ w)
    return w - lam / x.shape[0] * x.T @ (y * (1.0 - 1.0 / (1.0 + np.exp(-u))))


def dag_data(m: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(size=(m, n)), rng.choice([-1.0, 1.0], size=m), float(rng.uniform(0.1, 3))


@pytest.mark.parametrize("m, n", SIZES)
def test_dag_logistic_regression_against_the_hand_gradient(m: int, n: int) -> None:
    f = diffc.compile(DAG_TEXT, args=DAG_TYPES, wrt="w", backend="numpy")
    w, x, y, lam = dag_data(m, n, seed=m + n)
    value, dw = f.value_and_grad(w, x, y, lam)
    u = y * (x @ w)
    assert value == pytest.approx(0.5 * w @ w - lam * np.mean(np.log(1 / (1 + np.exp(-u)))), rel=1e-12)
    assert_close(dw, dag_hand_gradient(w, x, y, lam), rtol=1e-9, atol=1e-12, what="dL/dw")


def test_dag_logistic_regression_one_example_as_in_the_notes() -> None:
    """One example x ∈ R^D: L = ½‖w‖² - λ log σ(y wᵀx); dL/dw = w - λ (1 - σ(y wᵀx)) y x."""
    f = diffc.compile("0.5 * sum(w * w) - lam * log(sigmoid(y * (w @ x)))",
                      args={"w": "f64[d]", "x": "f64[d]", "y": "f64", "lam": "f64"}, wrt=("w", "lam"),
                      backend="numpy")
    rng = np.random.default_rng(6)
    w, x, lam = rng.normal(size=4), rng.normal(size=4), 0.7
    for y in (-1.0, 1.0):
        p = sigmoid(y * (w @ x))
        value, (dw, dlam) = f.value_and_grad(w, x, y, lam)
        assert value == pytest.approx(0.5 * w @ w - lam * math.log(p), rel=1e-12)
        assert_close(dw, w - lam * (1 - p) * y * x, rtol=1e-12, atol=1e-14, what="dw")
        assert dlam == pytest.approx(-math.log(p), rel=1e-12)


def test_dag_logistic_regression_against_central_differences() -> None:
    f = diffc.compile(DAG_TEXT, args=DAG_TYPES, backend="numpy")
    w, x, y, lam = dag_data(8, 3, seed=7)
    check_grad(f, [w, x, y, lam], rtol=1e-6, atol=1e-8)


@needs_tracer
def test_dag_logistic_regression_traced_from_numpy() -> None:
    def dag_loss(w: Any, X: Any, y: Any, lam: Any) -> Any:  # noqa: N803 - the notes' X
        p = 1 / (1 + np.exp(-(y * (X @ w))))
        return 0.5 * np.sum(w * w) - lam * np.mean(np.log(p))

    f = diffc.compile(dag_loss, args=DAG_TYPES, wrt="w", backend="numpy")
    w, x, y, lam = dag_data(12, 5, seed=8)
    value, dw = f.value_and_grad(w, x, y, lam)
    assert value == pytest.approx(dag_loss(w, x, y, lam), rel=1e-12)
    assert_close(dw, dag_hand_gradient(w, x, y, lam), rtol=1e-9, atol=1e-12, what="dL/dw")


# ---------------------------------------------------------------------------
# (c) a linear layer h = W h_prev: its vector-Jacobian product


@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 4), (6, 2)])
def test_linear_layer_vjp(rows: int, cols: int) -> None:
    """With upstream gradient g = dL/dh: dL/dW = g h_prevᵀ = outer(g, h_prev), dL/dh_prev = Wᵀ g."""
    f = diffc.compile("W @ h_prev", args={"W": "f64[out,in]", "h_prev": "f64[in]"}, backend="numpy")
    rng = np.random.default_rng(rows * 10 + cols)
    w, h_prev, g = rng.normal(size=(rows, cols)), rng.normal(size=cols), rng.normal(size=rows)
    assert_close(f(w, h_prev), w @ h_prev, rtol=1e-14, atol=0, what="h")
    dw, dh_prev = f.vjp(w, h_prev, g)
    assert_close(dw, np.outer(g, h_prev), rtol=1e-14, atol=0, what="dW")
    assert_close(dh_prev, w.T @ g, rtol=1e-13, atol=1e-15, what="dh_prev")
    check_vjp(f, [w, h_prev], g, rtol=1e-7, atol=1e-9)


def test_linear_layer_vjp_is_linear_in_the_cotangent() -> None:
    """The notes' Jacobians: dh/dh_prev = W (so a unit cotangent e_i pulls back row i of W)."""
    f = diffc.compile("W @ h_prev", args={"W": "f64[out,in]", "h_prev": "f64[in]"}, wrt="h_prev", backend="numpy")
    w = np.random.default_rng(9).normal(size=(3, 5))
    h_prev = np.ones(5)
    jacobian = np.array([f.vjp(w, h_prev, e) for e in np.eye(3)])
    np.testing.assert_array_equal(jacobian, w)


def test_two_linear_layers_chain() -> None:
    """h2 = W2 (W1 x): the chain rule through two layers, dL/dx = W1ᵀ W2ᵀ g."""
    f = diffc.compile("W2 @ (W1 @ x)", args={"W2": "f64[k,m]", "W1": "f64[m,n]", "x": "f64[n]"}, backend="numpy")
    rng = np.random.default_rng(10)
    w2, w1, x, g = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=2)
    dw2, dw1, dx = f.vjp(w2, w1, x, g)
    assert_close(dw2, np.outer(g, w1 @ x), rtol=1e-13, atol=1e-15, what="dW2")
    assert_close(dw1, np.outer(w2.T @ g, x), rtol=1e-13, atol=1e-15, what="dW1")
    assert_close(dx, w1.T @ (w2.T @ g), rtol=1e-13, atol=1e-15, what="dx")


@needs_tracer
def test_linear_layer_traced_from_numpy() -> None:
    def layer(W: Any, h_prev: Any) -> Any:  # noqa: N803 - the notes' W
        return W @ h_prev

    f = diffc.compile(layer, args={"W": "f64[out,in]", "h_prev": "f64[in]"}, backend="numpy")
    rng = np.random.default_rng(11)
    w, h_prev, g = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=4)
    dw, dh_prev = f.vjp(w, h_prev, g)
    assert_close(dw, np.outer(g, h_prev), rtol=1e-14, atol=0, what="dW")
    assert_close(dh_prev, w.T @ g, rtol=1e-13, atol=1e-15, what="dh_prev")


# ---------------------------------------------------------------------------
# (d) a ReLU layer: max(W x, 0), summed

RELU_TYPES = {"W": "f64[m,n]", "x": "f64[n]"}


def relu_hand_gradient(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradient flows only where W x > 0 (zero at <= 0, the notes' rule): mask = [Wx > 0]."""
    mask = (w @ x > 0).astype(np.float64)
    return np.outer(mask, x), w.T @ mask


@pytest.mark.parametrize("text", ["sum(max(W @ x, 0))", "sum(relu(W @ x))", "sum(max(0, W @ x))"])
def test_relu_layer_against_the_hand_gradient(text: str) -> None:
    f = diffc.compile(text, args=RELU_TYPES, backend="numpy")
    rng = np.random.default_rng(12)
    for m, n in ((4, 3), (10, 6)):
        w, x = rng.normal(size=(m, n)), rng.normal(size=n)
        value, (dw, dx) = f.value_and_grad(w, x)
        assert value == pytest.approx(np.sum(np.maximum(w @ x, 0)), rel=1e-13)
        want_dw, want_dx = relu_hand_gradient(w, x)
        assert_close(dw, want_dw, rtol=1e-13, atol=0, what="dW")
        assert_close(dx, want_dx, rtol=1e-13, atol=1e-15, what="dx")


def test_relu_layer_with_exact_zeros_in_the_preactivation() -> None:
    """Rows of W orthogonal to x make W x exactly 0 there: those rows get no gradient."""
    f = diffc.compile("sum(max(W @ x, 0))", args=RELU_TYPES, backend="numpy")
    x = np.array([1.0, -1.0, 2.0])
    w = np.array([[1.0, 1.0, 0.0],     # Wx = 0: the tie, gradient 0
                  [2.0, 0.0, 1.0],     # Wx = 4 > 0
                  [-1.0, 1.0, 0.0],    # Wx = -2 < 0
                  [0.0, 2.0, 1.0]])    # Wx = 0
    dw, dx = f.grad(w, x)
    assert_close(dw, np.outer([0.0, 1.0, 0.0, 0.0], x), rtol=0, atol=0, what="dW")
    assert_close(dx, w[1], rtol=0, atol=0, what="dx")


def test_relu_layer_vjp_is_the_masked_cotangent() -> None:
    """The ReLU layer's Jacobian is diagonal: its vjp is g where h > 0, else 0 (h = 0 included)."""
    f = diffc.compile("max(h, 0)", args={"h": "f64[n]"}, backend="numpy")
    h = np.array([-1.0, 0.0, 0.5, -0.0, 3.0])
    g = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    dh = f.vjp(h, g)  # wrt defaults to every float input: here one, so its gradient alone
    np.testing.assert_array_equal(dh, [0.0, 0.0, 30.0, 0.0, 50.0])


def test_relu_then_linear_against_central_differences() -> None:
    """A two-layer net, loss = sum((W2 relu(W1 x)) ** 2) / 2, away from the kinks."""
    f = diffc.compile("h = relu(W1 @ x)\nout = W2 @ h\nsum(out * out) / 2",
                      args={"W1": "f64[k,n]", "W2": "f64[m,k]", "x": "f64[n]"}, backend="numpy")
    rng = np.random.default_rng(13)
    w1, w2, x = rng.normal(size=(5, 3)), rng.normal(size=(2, 5)), rng.normal(size=3)
    while np.min(np.abs(w1 @ x)) < 1e-2:  # finite differences must not cross a kink
        x = rng.normal(size=3)
    assert np.any(w1 @ x < 0) and np.any(w1 @ x > 0)  # both sides of the ReLU are exercised
    check_grad(f, [w1, w2, x], rtol=1e-6, atol=1e-8)


@needs_tracer
def test_relu_layer_traced_from_numpy() -> None:
    def relu_layer(W: Any, x: Any) -> Any:  # noqa: N803 - the notes' W
        return np.sum(np.maximum(W @ x, 0))

    f = diffc.compile(relu_layer, args=RELU_TYPES, backend="numpy")
    rng = np.random.default_rng(14)
    w, x = rng.normal(size=(6, 4)), rng.normal(size=4)
    value, (dw, dx) = f.value_and_grad(w, x)
    assert value == pytest.approx(relu_layer(w, x), rel=1e-13)
    want_dw, want_dx = relu_hand_gradient(w, x)
    assert_close(dw, want_dw, rtol=1e-13, atol=0, what="dW")
    assert_close(dx, want_dx, rtol=1e-13, atol=1e-15, what="dx")


# the reference functions above must not be vacuous: they agree with each other
def test_references_agree_with_each_other() -> None:
    w, b, x, y = logistic_data(9, 4, seed=15)
    _, dw, db = logistic_loop(w, b, x, y)
    vec_dw, vec_db = logistic_vectorized(w, b, x, y)
    np.testing.assert_allclose(dw, vec_dw, rtol=1e-12)
    assert db == pytest.approx(vec_db, rel=1e-12)
    from conftest import numeric_grad

    loss: Callable[..., float] = lambda w, b: logistic_loop(w, b, x, y)[0]  # noqa: E731
    num_dw, num_db = numeric_grad(loss, [w, b])
    np.testing.assert_allclose(dw, num_dw, rtol=1e-6, atol=1e-9)
    assert db == pytest.approx(num_db, rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------------------
# mean hinge loss with an L2 term: mean(max(0, 1 - y (X w))) + lam |w|^2, labels in {-1, 1}


def hinge(w, X, y):
    return np.mean(np.maximum(0.0, 1 - y * (X @ w))) + 0.01 * np.sum(w * w)


def hinge_hand_gradient(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The subgradient with relu'(0) = 0: rows strictly inside the margin pull on w."""
    margin = 1 - y * (X @ w)
    active = (margin > 0).astype(float)
    return -(X.T @ (active * y)) / len(y) + 0.02 * w


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("m,n", [(1, 1), (9, 4), (200, 13)])
def test_hinge_loss_against_the_hand_gradient(backend: str, m: int, n: int) -> None:
    f = diffc.compile(hinge, args={"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, wrt="w", backend=backend)
    rng = np.random.default_rng(m * 31 + n)
    w, X = rng.normal(size=n), rng.normal(size=(m, n))
    y = np.where(rng.random(m) > 0.5, 1.0, -1.0)
    value, w_bar = f.value_and_grad(w, X, y)
    assert value == pytest.approx(np.mean(np.maximum(0, 1 - y * (X @ w))) + 0.01 * w @ w, rel=1e-12)
    np.testing.assert_allclose(w_bar, hinge_hand_gradient(w, X, y), rtol=1e-10, atol=1e-14)


def test_hinge_loss_at_the_kink_routes_nothing() -> None:
    """A row exactly on the margin (1 - y x.w = 0) contributes 0, as relu'(0) = 0 in the notes."""
    f = diffc.compile(hinge, args={"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, wrt="w", backend="numpy")
    w = np.array([0.5, 0.5])
    X = np.array([[1.0, 1.0], [2.0, 0.0]])  # y x.w = 1 on the first row: on the kink
    y = np.array([1.0, -1.0])
    _, w_bar = f.value_and_grad(w, X, y)
    np.testing.assert_allclose(w_bar, hinge_hand_gradient(w, X, y), rtol=1e-15)
