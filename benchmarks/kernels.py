"""Hand-fused Numba value-and-gradient kernels: the baseline diffc's Numba back end is measured against.

Each kernel makes the fewest passes a person would write by hand. The linear
models (W1, W2, W6) make ONE pass over the rows of X: z_i = X_i·w + b, the
loss term and dz_i = ∂loss_i/∂z_i, then dw += dz_i·X_i, so X is read once. The
parallel variants split the rows into chunks with private partial gradients.
W3 calls BLAS (``@`` inside njit) for its three matrix products, since a
hand-written triple loop would only measure a worse matmul, and fuses the
bias, ReLU, softmax and cross-entropy around them.

``cache=False`` on purpose: the first-call column must show Numba's compile time.
"""

# ruff: noqa: N803, N806  (X, W1, dZ: the notation of the lecture notes)
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import prange

FASTMATH = {"contract", "afn", "arcp", "nsz", "reassoc"}
OPTS: dict[str, Any] = {"error_model": "numpy", "fastmath": FASTMATH, "cache": False}


def jit(fn: Callable[..., Any]) -> Any:
    return numba.njit(**OPTS)(fn)


def pjit(fn: Callable[..., Any]) -> Any:
    return numba.njit(parallel=True, **OPTS)(fn)


# ---------------------------------------------------------------------------
# pointwise pieces of the linear models: (z_i, y_i) -> (loss_i, dz_i)

@jit
def _softplus_sigmoid(z: float) -> tuple[float, float]:
    """log(1 + e^z) and σ(z) from one exp, stable for either sign of z."""
    e = np.exp(-abs(z))
    softplus = max(z, 0.0) + np.log1p(e)
    sigma = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
    return softplus, sigma


@jit
def _logistic01(z: float, y: float) -> tuple[float, float]:
    """−[y log σ(z) + (1−y) log(1−σ(z))] = softplus(z) − y·z."""
    softplus, sigma = _softplus_sigmoid(z)
    return softplus - y * z, sigma - y


@jit
def _neg_log_sigmoid_pm1(z: float, y: float) -> tuple[float, float]:
    """−log σ(y·z) = softplus(−y·z); its derivative in z is −y·σ(−y·z)."""
    softplus, sigma = _softplus_sigmoid(-y * z)
    return softplus, -y * sigma


@jit
def _hinge(z: float, y: float) -> tuple[float, float]:
    margin = 1.0 - y * z
    return (margin, -y) if margin > 0.0 else (0.0, 0.0)


def linear_pass(pointwise: Any) -> tuple[Any, Any]:
    """Serial and parallel one-pass kernels returning (Σ loss_i, Σ dz_i·X_i, Σ dz_i)."""

    @jit
    def rows(w, b, X, y, lo, hi, dw):
        n = X.shape[1]
        loss = 0.0
        db = 0.0
        for i in range(lo, hi):
            z = b
            for j in range(n):
                z += X[i, j] * w[j]
            loss_i, dz = pointwise(z, y[i])
            loss += loss_i
            db += dz
            for j in range(n):
                dw[j] += dz * X[i, j]
        return loss, db

    @jit
    def serial(w, b, X, y):
        dw = np.zeros(X.shape[1])
        loss, db = rows(w, b, X, y, 0, X.shape[0], dw)
        return loss, dw, db

    @pjit
    def parallel(w, b, X, y):
        m, n = X.shape
        chunks = 4 * numba.get_num_threads()
        dws = np.zeros((chunks, n))
        losses = np.zeros(chunks)
        dbs = np.zeros(chunks)
        for c in prange(chunks):
            losses[c], dbs[c] = rows(w, b, X, y, c * m // chunks, (c + 1) * m // chunks, dws[c])
        return losses.sum(), dws.sum(axis=0), dbs.sum()

    return serial, parallel


def _w1(pass_: Any) -> Any:
    @jit
    def w1(w, b, X, y):
        loss, dw, db = pass_(w, b, X, y)
        m = X.shape[0]
        return loss / m, (dw / m, db / m)
    return w1


def _w2(pass_: Any) -> Any:
    @jit
    def w2(w, X, y):
        loss, dw, _ = pass_(w, 0.0, X, y)
        scale = 0.1 / X.shape[0]  # λ / m
        return 0.5 * np.dot(w, w) + scale * loss, (w + scale * dw,)
    return w2


def _w6(pass_: Any) -> Any:
    @jit
    def w6(w, X, y):
        loss, dw, _ = pass_(w, 0.0, X, y)
        m = X.shape[0]
        return loss / m + 0.01 * np.dot(w, w), (dw / m + 0.02 * w,)
    return w6


_logistic_pass = linear_pass(_logistic01)
_dag_pass = linear_pass(_neg_log_sigmoid_pm1)
_hinge_pass = linear_pass(_hinge)
w1_numba, w1_numba_par = _w1(_logistic_pass[0]), _w1(_logistic_pass[1])
w2_numba, w2_numba_par = _w2(_dag_pass[0]), _w2(_dag_pass[1])
w6_numba, w6_numba_par = _w6(_hinge_pass[0]), _w6(_hinge_pass[1])


# ---------------------------------------------------------------------------
# W3 MLP: BLAS for the products, fused loops for everything else

@jit
def w3_numba(W1, b1, W2, b2, X, Y):
    m, k = X.shape[0], W2.shape[1]
    H = X @ W1
    for i in range(m):
        for j in range(H.shape[1]):
            H[i, j] = max(H[i, j] + b1[j], 0.0)
    dZ = H @ W2
    loss = 0.0
    inv_m = 1.0 / m
    for i in range(m):
        top = -np.inf
        y_dot_z = 0.0
        y_total = 0.0
        for c in range(k):
            z = dZ[i, c] + b2[c]
            dZ[i, c] = z
            top = max(top, z)
            y_dot_z += Y[i, c] * z
            y_total += Y[i, c]
        total = 0.0
        for c in range(k):
            dZ[i, c] = np.exp(dZ[i, c] - top)
            total += dZ[i, c]
        loss += (top + np.log(total)) * y_total - y_dot_z  # −Σ_c Y_c (z_c − logsumexp z)
        for c in range(k):
            dZ[i, c] = (dZ[i, c] / total - Y[i, c]) * inv_m
    dH = dZ @ W2.T
    for i in range(m):
        for j in range(H.shape[1]):
            if H[i, j] <= 0.0:
                dH[i, j] = 0.0
    return loss * inv_m, (X.T @ dH, dH.sum(axis=0), H.T @ dZ, dZ.sum(axis=0))


# ---------------------------------------------------------------------------
# W4 Rosenbrock: every g_i from x_{i-1}, x_i, x_{i+1}, so the loop vectorises

@jit
def _rosen_inner(x, g, lo, hi):
    value = 0.0
    for i in range(lo, hi):
        a = x[i]
        t = x[i + 1] - a * a
        value += 100.0 * t * t + (1.0 - a) * (1.0 - a)
        prev = x[i - 1]
        g[i] = 200.0 * (a - prev * prev) - 400.0 * a * t - 2.0 * (1.0 - a)
    return value


@jit
def w4_numba(x):
    n = x.size
    g = np.empty(n)
    t0 = x[1] - x[0] * x[0]
    value = 100.0 * t0 * t0 + (1.0 - x[0]) ** 2 + _rosen_inner(x, g, 1, n - 1)
    g[0] = -400.0 * x[0] * t0 - 2.0 * (1.0 - x[0])
    g[n - 1] = 200.0 * (x[n - 1] - x[n - 2] * x[n - 2])
    return value, (g,)


@pjit
def w4_numba_par(x):
    n = x.size
    g = np.empty(n)
    t0 = x[1] - x[0] * x[0]
    value = 100.0 * t0 * t0 + (1.0 - x[0]) ** 2
    for i in prange(1, n - 1):
        a = x[i]
        t = x[i + 1] - a * a
        value += 100.0 * t * t + (1.0 - a) * (1.0 - a)
        prev = x[i - 1]
        g[i] = 200.0 * (a - prev * prev) - 400.0 * a * t - 2.0 * (1.0 - a)
    g[0] = -400.0 * x[0] * t0 - 2.0 * (1.0 - x[0])
    g[n - 1] = 200.0 * (x[n - 1] - x[n - 2] * x[n - 2])
    return value, (g,)


# ---------------------------------------------------------------------------
# W5 elementwise chain: one loop, value and both gradients

@jit
def _chain_at(xi, yi):
    x2 = xi * xi
    s, c = np.sin(xi), np.cos(xi)
    e = np.exp(-x2)
    th = np.tanh(yi)
    lg = np.log1p(x2)
    r = np.sqrt(1.0 + x2 * yi * yi)
    value = s * e + lg * th + r
    gx = (c - 2.0 * xi * s) * e + 2.0 * xi / (1.0 + x2) * th + xi * yi * yi / r
    gy = lg * (1.0 - th * th) + x2 * yi / r
    return value, gx, gy


@jit
def w5_numba(x, y):
    n = x.size
    gx = np.empty(n)
    gy = np.empty(n)
    total = 0.0
    for i in range(n):
        v, gx[i], gy[i] = _chain_at(x[i], y[i])
        total += v
    return total, (gx, gy)


@pjit
def w5_numba_par(x, y):
    n = x.size
    gx = np.empty(n)
    gy = np.empty(n)
    total = 0.0
    for i in prange(n):
        v, gx[i], gy[i] = _chain_at(x[i], y[i])
        total += v
    return total, (gx, gy)


# ---------------------------------------------------------------------------
# W7 tiny

@jit
def w7_numba(a, b):
    s = a + b
    c = b + 1.0
    return s * c, (c, s + c)


HAND_NUMBA: dict[str, tuple[Any, Any | None]] = {
    "W1": (w1_numba, w1_numba_par),
    "W1loop": (w1_numba, w1_numba_par),  # the hand kernel is the loop already
    "W2": (w2_numba, w2_numba_par),
    "W3": (w3_numba, None),
    "W4": (w4_numba, w4_numba_par),
    "W5": (w5_numba, w5_numba_par),
    "W6": (w6_numba, w6_numba_par),
    "W7": (w7_numba, None),
}
