"""The seven benchmark workloads: data, the model as plain NumPy, and a hand-written NumPy gradient.

Each model is written once, as ``model(xp)`` returning an ordinary function of
NumPy-like arrays; ``xp`` is ``numpy`` for diffc (which traces it) and
``jax.numpy`` for JAX, so both differentiate exactly the same text. The hand
NumPy value and gradient is the reference every other implementation is
checked against before it is timed.
"""

# ruff: noqa: N803, N806  (X, W1, dZ: the notation of the lecture notes)
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Grads = tuple[Any, ...]
Result = tuple[float, Grads]

LAMBDA = 0.1   # W2: L = ½‖w‖² − λ·mean log σ(y·Xw)
HINGE_C = 0.01  # W6: mean hinge + c·‖w‖²


@dataclass
class Workload:
    """One benchmark: how to build its data, the model, and the hand reference."""

    key: str
    title: str
    size_text: Callable[[int], str]          # "X 200000×64" for a size
    make_args: Callable[[int, np.random.Generator], tuple[Any, ...]]
    names: tuple[str, ...]                   # argument names, in signature order
    types: dict[str, str]                    # diffc argument types
    wrt: tuple[str, ...]
    model: Callable[[Any], Callable[..., Any]]
    hand_numpy: Callable[..., Result]
    sizes: dict[str, int] = field(default_factory=dict)  # "full" / "quick" -> size (rows or elements)
    elements: Callable[[int], int] = lambda size: size  # elements touched, for ns per element
    copy_elements: Callable[[int], int] | None = None  # float64 elements a minimal pass reads (and writes)
    peer_models: dict[str, Callable[[Any], Callable[..., Any]]] = field(default_factory=dict)  # JAX's own text
    peer_notes: dict[str, str] = field(default_factory=dict)  # a peer that cannot run the model: why

    def args(self, size: int, seed: int = 0) -> tuple[Any, ...]:
        return self.make_args(size, np.random.default_rng(seed))

    @property
    def argnums(self) -> tuple[int, ...]:
        return tuple(self.names.index(name) for name in self.wrt)


# ---------------------------------------------------------------------------
# W1 logistic regression, the lecture notes' form, y in {0, 1}

def w1_model(xp: Any) -> Callable[..., Any]:
    def logistic(w, b, X, y):
        z = X @ w + b
        a = 1 / (1 + xp.exp(-z))
        return -xp.mean(y * xp.log(a) + (1 - y) * xp.log(1 - a))
    return logistic


def w1_numpy(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> Result:
    m = X.shape[0]
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    loss = -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))
    dz = a - y
    return float(loss), (X.T @ dz / m, float(np.sum(dz) / m))


def _linear_args(labels01: bool) -> Callable[[int, np.random.Generator], tuple[Any, ...]]:
    def make(m: int, rng: np.random.Generator) -> tuple[Any, ...]:
        n = 64
        X = rng.standard_normal((m, n))
        w_true = rng.standard_normal(n) / np.sqrt(n)
        p = 1 / (1 + np.exp(-(X @ w_true)))
        y01 = (rng.random(m) < p).astype(np.float64)
        w = 0.1 * rng.standard_normal(n)
        if labels01:
            return w, 0.1, X, y01
        return w, X, 2 * y01 - 1
    return make


# ---------------------------------------------------------------------------
# W1loop the same model as the notes first write it: a loop over the m examples

def w1loop_model(xp: Any) -> Callable[..., Any]:
    def logistic_loop(w, b, X, y):
        m, n = X.shape
        z = xp.zeros(m)
        a = xp.zeros(m)
        J = 0.0
        for i in range(m):
            z[i] = xp.dot(w, X[i]) + b
            a[i] = 1 / (1 + xp.exp(-z[i]))
            J = J + (-(y[i] * xp.log(a[i]) + (1 - y[i]) * xp.log(1 - a[i])))
        return J / m
    return logistic_loop


def w1loop_jax(jnp: Any) -> Callable[..., Any]:
    """JAX cannot run the loop as written (it would unroll 200000 iterations, and jax arrays are immutable):
    the same loop as ``lax.fori_loop``, which JAX differentiates as a scan, one iteration after another."""
    import jax

    def logistic_loop(w, b, X, y):
        def body(i, J):
            a = 1 / (1 + jnp.exp(-(jnp.dot(w, X[i]) + b)))
            return J - (y[i] * jnp.log(a) + (1 - y[i]) * jnp.log(1 - a))
        return jax.lax.fori_loop(0, X.shape[0], body, 0.0) / X.shape[0]
    return logistic_loop


# ---------------------------------------------------------------------------
# W2 DAG logistic regression: ½‖w‖² − λ·mean log σ(y·Xw), y in {-1, 1}

def w2_model(xp: Any) -> Callable[..., Any]:
    def dag_logistic(w, X, y):
        p = 1 / (1 + xp.exp(-y * (X @ w)))
        return 0.5 * xp.sum(w * w) - LAMBDA * xp.mean(xp.log(p))
    return dag_logistic


def w2_numpy(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> Result:
    m = X.shape[0]
    t = y * (X @ w)
    loss = 0.5 * w @ w + LAMBDA * np.mean(np.logaddexp(0.0, -t))  # −log σ(t) = log(1 + e^−t)
    s = 1 / (1 + np.exp(t))                                        # 1 − σ(t)
    return float(loss), (w - (LAMBDA / m) * (X.T @ (y * s)),)


# ---------------------------------------------------------------------------
# W3 MLP 256–256(ReLU)–10, softmax cross-entropy, one-hot labels

def w3_model(xp: Any) -> Callable[..., Any]:
    def mlp(W1, b1, W2, b2, X, Y):
        H = xp.maximum(X @ W1 + b1, 0.0)
        Z = H @ W2 + b2
        Z = Z - xp.max(Z, axis=1, keepdims=True)
        logp = Z - xp.log(xp.sum(xp.exp(Z), axis=1, keepdims=True))
        return -xp.mean(xp.sum(Y * logp, axis=1))
    return mlp


def w3_numpy(W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray,
             X: np.ndarray, Y: np.ndarray) -> Result:
    m = X.shape[0]
    pre = X @ W1 + b1
    H = np.maximum(pre, 0.0)
    Z = H @ W2 + b2
    Z -= Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    S = E.sum(axis=1, keepdims=True)
    loss = -np.mean(np.sum(Y * (Z - np.log(S)), axis=1))
    dZ = (E / S - Y) / m
    dH = dZ @ W2.T
    dH[pre <= 0] = 0.0
    return float(loss), (X.T @ dH, dH.sum(axis=0), H.T @ dZ, dZ.sum(axis=0))


def w3_args(m: int, rng: np.random.Generator) -> tuple[Any, ...]:
    X = rng.standard_normal((m, 256))
    Y = np.eye(10)[rng.integers(0, 10, m)]
    W1 = rng.standard_normal((256, 256)) * np.sqrt(2 / 256)
    W2 = rng.standard_normal((256, 10)) * np.sqrt(1 / 256)
    return W1, 0.01 * rng.standard_normal(256), W2, 0.01 * rng.standard_normal(10), X, Y


# ---------------------------------------------------------------------------
# W4 Rosenbrock

def w4_model(xp: Any) -> Callable[..., Any]:
    def rosenbrock(x):
        return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    return rosenbrock


def w4_numpy(x: np.ndarray) -> Result:
    head, tail = x[:-1], x[1:]
    t = tail - head ** 2
    g = np.zeros_like(x)
    g[:-1] = -400 * head * t - 2 * (1 - head)
    g[1:] += 200 * t
    return float(np.sum(100 * t ** 2 + (1 - head) ** 2)), (g,)


# ---------------------------------------------------------------------------
# W5 elementwise chain

def w5_model(xp: Any) -> Callable[..., Any]:
    def chain(x, y):
        x2 = x * x
        return xp.sum(xp.sin(x) * xp.exp(-x2) + xp.log1p(x2) * xp.tanh(y) + xp.sqrt(1 + x2 * y * y))
    return chain


def w5_numpy(x: np.ndarray, y: np.ndarray) -> Result:
    x2 = x * x
    e = np.exp(-x2)
    th = np.tanh(y)
    lg = np.log1p(x2)
    r = np.sqrt(1 + x2 * y * y)
    value = np.sum(np.sin(x) * e + lg * th + r)
    gx = (np.cos(x) - 2 * x * np.sin(x)) * e + 2 * x / (1 + x2) * th + x * y * y / r
    gy = lg * (1 - th * th) + x2 * y / r
    return float(value), (gx, gy)


# ---------------------------------------------------------------------------
# W6 hinge loss with an L2 penalty, y in {-1, 1}

def w6_model(xp: Any) -> Callable[..., Any]:
    def hinge(w, X, y):
        return xp.mean(xp.maximum(0.0, 1 - y * (X @ w))) + HINGE_C * xp.sum(w * w)
    return hinge


def w6_numpy(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> Result:
    m = X.shape[0]
    margin = 1 - y * (X @ w)
    active = margin > 0
    loss = np.mean(np.maximum(0.0, margin)) + HINGE_C * w @ w
    return float(loss), (-(X.T @ (y * active)) / m + 2 * HINGE_C * w,)


# ---------------------------------------------------------------------------
# W7 the notes' tiny example: per-call overhead

def w7_model(xp: Any) -> Callable[..., Any]:
    def tiny(a, b):
        return (a + b) * (b + 1)
    return tiny


def w7_numpy(a: float, b: float) -> Result:
    return (a + b) * (b + 1), (b + 1, a + 2 * b + 1)


# ---------------------------------------------------------------------------

def _rows(m: int) -> str:
    return f"X {m}×64"


WORKLOADS: dict[str, Workload] = {w.key: w for w in [
    Workload("W1", "logistic regression (lecture form)", _rows, _linear_args(True),
             ("w", "b", "X", "y"), {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, ("w", "b"),
             w1_model, w1_numpy, {"full": 200_000, "quick": 20_000}, elements=lambda m: 64 * m),
    Workload("W1loop", "W1 as the notes' loop over examples", _rows, _linear_args(True),
             ("w", "b", "X", "y"), {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, ("w", "b"),
             w1loop_model, w1_numpy, {"full": 200_000, "quick": 20_000}, elements=lambda m: 64 * m,
             peer_models={"JAX jit": w1loop_jax},
             peer_notes={"torch.compile": "a Python loop over 200000 rows: dynamo would unroll every iteration"}),
    Workload("W2", "DAG logistic regression ½‖w‖² − λ·mean log σ", _rows, _linear_args(False),
             ("w", "X", "y"), {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, ("w",),
             w2_model, w2_numpy, {"full": 200_000, "quick": 20_000}, elements=lambda m: 64 * m),
    Workload("W3", "MLP 256–256(ReLU)–10, softmax CE", lambda m: f"X {m}×256", w3_args,
             ("W1", "b1", "W2", "b2", "X", "Y"),
             {"W1": "f64[d,h]", "b1": "f64[h]", "W2": "f64[h,k]", "b2": "f64[k]", "X": "f64[m,d]",
              "Y": "f64[m,k]"}, ("W1", "b1", "W2", "b2"),
             w3_model, w3_numpy, {"full": 4096, "quick": 512}, elements=lambda m: 256 * m),
    Workload("W4", "Rosenbrock", lambda n: f"x {n:.0e}".replace("e+0", "e"),
             lambda n, rng: (rng.uniform(-1.5, 1.5, n),), ("x",), {"x": "f64[n]"}, ("x",),
             w4_model, w4_numpy, {"full": 1_000_000, "quick": 100_000}, copy_elements=lambda n: n),
    Workload("W5", "elementwise chain", lambda n: f"x, y {n:.0e}".replace("e+0", "e"),
             lambda n, rng: (rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)), ("x", "y"),
             {"x": "f64[n]", "y": "f64[n]"}, ("x", "y"),
             w5_model, w5_numpy, {"full": 1_000_000, "quick": 100_000}, elements=lambda n: 2 * n,
             copy_elements=lambda n: 2 * n),
    Workload("W6", "hinge + 0.01‖w‖²", _rows, _linear_args(False),
             ("w", "X", "y"), {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, ("w",),
             w6_model, w6_numpy, {"full": 200_000, "quick": 20_000}, elements=lambda m: 64 * m),
    Workload("W7", "tiny (a+b)·(b+1), Python floats", lambda _: "scalars",
             lambda _, rng: (2.0, 1.0), ("a", "b"), {"a": "f64", "b": "f64"}, ("a", "b"),
             w7_model, w7_numpy, {"full": 1, "quick": 1}),
]}
