"""jvp, hvp, Jacobians, Hessians and Jacobian structure (diffc/derivatives.py), against references.

References: central differences of the gradient (tests/conftest.py's numeric_grad), sympy.hessian,
the notes' two layers by hand (h = W x: ∂h/∂x = W; relu: the diagonal of its step).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import diffc
from tests.conftest import numeric_grad

RNG = np.random.default_rng(7)


def loss(x, W):
    return np.sum(np.log1p(np.exp(W @ x))) + np.sum(np.maximum(x, 0.0) ** 3)


def test_jvp_matches_vjp_transpose(backend):
    f = diffc.compile(loss, backend=backend)
    x, W = RNG.normal(size=4), RNG.normal(size=(3, 4))
    t = (RNG.normal(size=4), RNG.normal(size=(3, 4)))
    value, tangent = f.jvp(x, W, t)
    gx, gW = f.grad(x, W)
    assert value == pytest.approx(f(x, W))
    assert tangent == pytest.approx(np.sum(gx * t[0]) + np.sum(gW * t[1]))


def test_hessian_against_differences_of_the_gradient(backend):
    f = diffc.compile(lambda x: np.sum(np.log1p(np.exp(x[:-1] * x[1:]))) + np.sum(x ** 4), backend=backend)
    x = RNG.normal(size=5)
    H = f.hessian(x)
    assert H.shape == (5, 5)
    assert np.allclose(H, H.T)
    fd = np.array([numeric_grad(lambda y, i=i: f.grad(y)[i], [x])[0] for i in range(5)])
    assert np.allclose(H, fd, atol=1e-5)
    v = RNG.normal(size=5)
    assert np.allclose(f.hvp(x, v), H @ v)


def test_hessian_of_a_scalar_expression_agrees_with_sympy(backend):
    a, b = sympy.symbols("a b")
    expr = sympy.exp(a * b) + a ** 3 * sympy.sin(b)
    f = diffc.compile(expr, args=["a", "b"], wrt=["a", "b"], backend=backend)
    point = {a: 0.3, b: -0.7}
    reference = np.array(sympy.hessian(expr, (a, b)).subs(point), dtype=float)
    H = f.hessian(0.3, -0.7)
    assert np.allclose(np.array([[H[0][0], H[0][1]], [H[1][0], H[1][1]]]), reference)


def test_the_notes_layers(backend):
    W, x = RNG.normal(size=(3, 4)), RNG.normal(size=4)
    layer = diffc.compile(lambda W, h_prev: W @ h_prev, backend=backend)
    layer(W, x)
    s_W, s_h = layer.jacobian_structure()
    assert (s_W.kind, s_h.kind) == ("linear", "linear")
    assert np.array_equal(layer.jacobian(W, x, compressed=True)[1], W)
    assert np.array_equal(layer.jacobian(W, x, compressed=True)[0], x)
    J_W, J_h = layer.jacobian(W, x)
    assert np.allclose(J_h, W)
    assert np.allclose(J_W, np.einsum("ij,k->ijk", np.eye(3), x))
    relu = diffc.compile(lambda z: np.maximum(z, 0.0), backend=backend)
    z = RNG.normal(size=6)
    relu(z)
    assert relu.jacobian_structure().kind == "diagonal"
    assert np.array_equal(relu.jacobian(z, compressed=True), (z > 0).astype(float))
    assert np.array_equal(relu.jacobian(z, mode="fwd"), np.diag((z > 0).astype(float)))
    assert np.array_equal(relu.jacobian(z, mode="rev"), np.diag((z > 0).astype(float)))


def test_row_wise_softmax_is_block_diagonal():
    f = diffc.compile(lambda X: np.exp(X) / np.sum(np.exp(X), axis=1, keepdims=True), backend="numpy")
    X = RNG.normal(size=(3, 4))
    dense = f.jacobian(X)
    assert dense.shape == (3, 4, 3, 4)
    assert f.jacobian_structure().kind == "block-diagonal"
    blocks = f.jacobian(X, compressed=True)
    for i in range(3):
        assert np.allclose(blocks[i], dense[i, :, i, :])


def test_newton_cg_beats_lbfgs_on_rosenbrock():
    from scipy.optimize import minimize

    def rosen(x):
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    f = diffc.compile(rosen, backend="numpy")
    x0 = np.full(1000, 0.5)
    newton = minimize(f, x0, jac=f.grad, hessp=f.hvp, method="Newton-CG", options={"xtol": 1e-10})
    lbfgs = minimize(f, x0, jac=f.grad, method="L-BFGS-B")
    assert np.allclose(newton.x, 1.0, atol=1e-4)
    assert newton.nit < lbfgs.nit
