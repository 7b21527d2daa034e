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


# ---------------------------------------------------------------------------
# Jacobians against sympy.Matrix.jacobian

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.slow)]  # Numba: the notes' layers in the default run


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["rev", "fwd", "auto"])
def test_vector_jacobian_agrees_with_sympy(backend, mode):
    """A vector-to-vector map (neighbours coupled: not diagonal) against SymPy's Jacobian of the same formulas."""
    f = diffc.compile(lambda x: np.exp(x[:-1] * x[1:]) + np.sin(x[1:]) * x[0], backend=backend)
    xs = sympy.symbols("x0:4")
    formulas = sympy.Matrix([sympy.exp(xs[i] * xs[i + 1]) + sympy.sin(xs[i + 1]) * xs[0] for i in range(3)])
    x = np.array([0.3, -0.8, 1.1, 0.4])
    reference = np.array(formulas.jacobian(xs).subs(dict(zip(xs, x, strict=True))), dtype=float)
    J = f.jacobian(x, mode=mode)
    assert J.shape == (3, 4)
    assert np.allclose(J, reference, rtol=1e-12, atol=1e-12)
    assert f.jacobian_structure().kind == "dense"


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalar_to_vector_jacobian_agrees_with_sympy(backend):
    """f(t) = sin(t c) + t² c for a data vector c: the Jacobian with respect to the scalar t has shape (n,)."""
    f = diffc.compile(lambda t, c: np.sin(t * c) + t ** 2 * c, wrt="t", backend=backend)
    t, cs = sympy.Symbol("t"), sympy.symbols("c0:3")
    c = np.array([0.5, -1.0, 2.0])
    formulas = sympy.Matrix([sympy.sin(t * ci) + t ** 2 * ci for ci in cs])
    reference = np.array(formulas.jacobian([t]).subs({t: 0.7, **dict(zip(cs, c, strict=True))}), dtype=float)
    for mode in ("rev", "fwd"):
        J = f.jacobian(0.7, c, mode=mode)
        assert np.shape(J) == (3,)
        assert np.allclose(J, reference[:, 0], rtol=1e-12)


def test_hessian_of_three_variables_agrees_with_sympy():
    """A denser case than two variables: every pair of x, y, z coupled, H symmetric as SymPy's is."""
    x, y, z = sympy.symbols("x y z")
    expr = sympy.log(1 + x ** 2 * y ** 2) + sympy.exp(y * z) * sympy.cos(x) + x * y * z
    f = diffc.compile(expr, args=["x", "y", "z"], backend="numpy")
    point = (0.4, -0.3, 0.9)
    reference = np.array(sympy.hessian(expr, (x, y, z)).subs(dict(zip((x, y, z), point, strict=True))), dtype=float)
    H = np.array(f.hessian(*point), dtype=float)
    assert np.allclose(H, reference, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# the kink convention (docs/conventions.md): routing rules have no second derivative


def kinks(x, a, b):
    return (np.sum(np.maximum(x, 0.0)) + np.sum(np.abs(x)) + np.sum(np.maximum(x, 0.0) ** 2)
            + np.maximum(a, b) ** 2)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_kinks_have_zero_second_derivative_and_the_documented_value_at_a_tie(backend):
    """relu, abs, max: Hessian 0 away from ties (as differences of the gradient say), and at the tie the value
    of the side the gradient's tie rule takes: relu and abs against 0 take the constant (relu'(0) = 0, abs'(0)
    = 0), so relu(x)²'' = 2·relu'(0)² = 0 at 0; max(a, b) takes a at a == b, so the (a, b) block is [[2, 0],
    [0, 0]] there."""
    f = diffc.compile(kinks, backend=backend)
    x = np.array([-1.5, -0.25, 0.0, 0.5, 2.0])  # 0.0: the tie of relu and abs
    for a, b in ((1.0, 1.0), (1.5, -0.5), (-0.5, 1.5)):
        H = f.hessian(x, a, b)
        assert np.array_equal(H[0][0], np.diag(2.0 * (x > 0)))  # relu(x)² alone: 2 where x > 0, else 0
        expected = [[2.0, 0.0], [0.0, 0.0]] if a >= b else [[0.0, 0.0], [0.0, 2.0]]
        assert np.array_equal([[H[1][1], H[1][2]], [H[2][1], H[2][2]]], expected)
        assert all(np.all(H[i][j] == 0) for i in range(3) for j in range(3) if (i == 0) != (j == 0))
    away = np.array([-1.5, -0.25, 0.5, 2.0])
    fd = np.array([numeric_grad(lambda y, i=i: f.grad(y, 1.5, -0.5)[0][i], [away])[0] for i in range(4)])
    assert np.allclose(f.hessian(away, 1.5, -0.5)[0][0], fd, atol=1e-6)
    v = RNG.normal(size=5)
    assert np.array_equal(f.hvp(x, 1.0, 1.0, (v, 0.3, 0.2))[0], 2.0 * (x > 0) * v)


def test_abs_squared_at_zero_follows_the_convention_not_the_smooth_function():
    """|x|² is x², whose second derivative is 2; through abs'(0) = 0 the rules give 0 at x = 0 (JAX gives 0
    too). The documented caveat: write x**2, not abs(x)**2."""
    f = diffc.compile(lambda x: np.sum(np.abs(x) ** 2), backend="numpy")
    assert np.array_equal(np.diag(f.hessian(np.array([-1.0, 0.0, 1.0]))), [2.0, 0.0, 2.0])


# ---------------------------------------------------------------------------
# arguments as trees (diffc/pytree.py)


def mlp(params, X):
    h = X
    for W, b in params[:-1]:
        h = np.tanh(h @ W + b)
    W, b = params[-1]
    return np.sum((h @ W + b) ** 2)


def mlp_flat(W1, b1, W2, b2, X):
    return mlp([(W1, b1), (W2, b2)], X)


def _mlp_params():
    return [(RNG.normal(size=(3, 4)), RNG.normal(size=4)), (RNG.normal(size=(4, 2)), RNG.normal(size=2))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_list_of_layer_tuples(backend):
    """jvp, hvp, jacobian and hessian take [(W1, b1), (W2, b2)] and directions of the same nesting, and give
    the flat function's numbers in the user's structure; hvp also against differences of the gradient."""
    tree = diffc.compile(mlp, wrt="params", backend=backend)
    flat = diffc.compile(mlp_flat, wrt=("W1", "b1", "W2", "b2"), backend="numpy")
    params, X = _mlp_params(), RNG.normal(size=(5, 3))
    leaves = [a for layer in params for a in layer]
    v = [(RNG.normal(size=(3, 4)), RNG.normal(size=4)), (RNG.normal(size=(4, 2)), RNG.normal(size=2))]
    v_leaves = tuple(a for layer in v for a in layer)
    value, tangent = tree.jvp(params, X, v)
    assert (value, tangent) == pytest.approx(flat.jvp(*leaves, X, v_leaves))
    Hv = tree.hvp(params, X, v)
    assert isinstance(Hv, list) and all(isinstance(layer, tuple) and len(layer) == 2 for layer in Hv)
    for got, want in zip([a for layer in Hv for a in layer], flat.hvp(*leaves, X, v_leaves), strict=True):
        assert np.allclose(got, want)
    eps = 1e-6
    shifted = [[tuple(a + s * eps * d for a, d in zip(layer, dl, strict=True)) for layer, dl in zip(params, v,
                                                                                                  strict=True)]
               for s in (1, -1)]
    fd = [(g1 - g2) / (2 * eps) for l1, l2 in zip(tree.grad(shifted[0], X), tree.grad(shifted[1], X), strict=True)
          for g1, g2 in zip(l1, l2, strict=True)]
    for got, want in zip([a for layer in Hv for a in layer], fd, strict=True):
        assert np.allclose(got, want, atol=1e-5)
    H = tree.hessian(params, X)
    assert H[1][0][0][1].shape == (4, 2, 4)  # H[params][params]: ∂²/∂W2 ∂b1, shaped W2 + b1
    assert np.allclose(H[1][0][0][1], flat.hessian(*leaves, X)[2][1])
    J = tree.jacobian(params, X)
    assert np.allclose(J[0][0], flat.grad(*leaves, X)[0])  # a scalar's Jacobian is its gradient


def test_dict_argument_and_a_left_out_default():
    """A dict of parameters, and an option left to its default (a constant): jvp and hvp still apply."""
    def loss(p, X, scale=2.0):
        return scale * np.sum(np.log1p(np.exp(X @ p["w"] + p["b"])))

    f = diffc.compile(loss, wrt="p", backend="numpy")
    p, X = {"w": RNG.normal(size=3), "b": 0.3}, RNG.normal(size=(6, 3))
    v = {"w": RNG.normal(size=3), "b": -0.4}
    value, tangent = f.jvp(p, X, v)
    g = f.grad(p, X)
    assert value == pytest.approx(f(p, X))
    assert tangent == pytest.approx(np.dot(g["w"], v["w"]) + g["b"] * v["b"])
    Hv = f.hvp(p, X, v)
    assert set(Hv) == {"w", "b"}
    H = f.hessian(p, X)
    assert np.allclose(Hv["w"], H["w"]["w"] @ v["w"] + H["w"]["b"] * v["b"])
    with pytest.raises(diffc.errors.ShapeError, match="not nested like p"):
        f.hvp(p, X, [v["w"], v["b"]])


# ---------------------------------------------------------------------------
# scipy with several arguments: one flat vector, sliced inside


def test_hessp_for_several_arguments_through_one_flat_vector():
    """SciPy's x is one vector: a loss of (w, b) is written of theta = [w, b] and sliced; its hvp is the
    two-argument hvp concatenated, and Newton-CG with it converges to where the gradient is 0."""
    from scipy.optimize import minimize

    def logistic(w, b, X, y):
        z = X @ w + b
        return np.mean(np.log1p(np.exp(z)) - y * z) + 0.05 * np.sum(w * w)

    def flat(theta, X, y):
        return logistic(theta[:-1], theta[-1], X, y)

    X = RNG.normal(size=(40, 3))
    y = (RNG.random(40) < 0.5).astype(float)
    two = diffc.compile(logistic, wrt=("w", "b"), backend="numpy")
    one = diffc.compile(flat, wrt="theta", backend="numpy")
    theta, v = RNG.normal(size=4), RNG.normal(size=4)
    Hv_w, Hv_b = two.hvp(theta[:-1], theta[-1], X, y, (v[:-1], v[-1]))
    assert np.allclose(one.hvp(theta, X, y, v), np.append(Hv_w, Hv_b))
    # with args=(X, y) SciPy calls hessp(theta, p, X, y): the direction comes second, diffc's hvp takes it last
    result = minimize(one, np.zeros(4), args=(X, y), jac=one.grad, hessp=lambda th, p, *data: one.hvp(th, *data, p),
                      method="Newton-CG")
    assert result.success and np.abs(one.grad(result.x, X, y)).max() < 1e-5
    # trust-exact with the exact Hessian lands on the same point once both stop near gradient 0 (its default
    # gtol of 1e-8 leaves it up to 1e-4 away on some data: the test depended on which data RNG gave it)
    exact = minimize(one, np.zeros(4), args=(X, y), jac=one.grad, hess=one.hessian, method="trust-exact",
                     options={"gtol": 1e-10})
    assert np.abs(one.grad(exact.x, X, y)).max() < 1e-8 and np.allclose(exact.x, result.x, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_compressed_diagonal_is_one_gradient_of_the_sum(backend):
    """compressed=True of an elementwise map is Jᵀ1 (the generated ``diagonal``: the gradient of the output's
    sum), by hand: ∂(eˣ y)/∂x = eˣ y and ∂/∂y = eˣ; the second call takes the fast entry, other sizes and a
    list (the full path) give the same."""
    f = diffc.compile(lambda x, y: np.exp(x) * y, backend=backend)
    for n in (5, 5, 3):
        x, y = RNG.normal(size=n), RNG.normal(size=n)
        d_x, d_y = f.jacobian(x, y, compressed=True)
        assert np.allclose(d_x, np.exp(x) * y) and np.allclose(d_y, np.exp(x))
    d_x, d_y = f.jacobian(list(x), y, compressed=True)
    assert np.allclose(d_x, np.exp(x) * y) and np.allclose(d_y, np.exp(x))
    assert "def diagonal(x, y):" in diffc.derivatives.derivatives_of(f._declared()).source("diagonal")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_entries_of_jvp_and_hvp_give_the_full_paths_answers(backend):
    """After a first call jvp and hvp take a fast entry (SciPy calls hessp at every CG step); its answers,
    types and errors are the full path's: a scalar argument, several arguments, a list direction, a wrong shape."""
    f = diffc.compile(lambda x, s: np.sum(np.exp(s * x) * x), backend=backend)
    x, v = RNG.normal(size=4), RNG.normal(size=4)
    first = f.hvp(x, 0.5, (v, 0.25)), f.jvp(x, 0.5, (v, 0.25))
    H = f.hessian(x, 0.5)
    block = np.block([[H[0][0], H[0][1][:, None]], [H[1][0][None, :], np.array([[H[1][1]]])]])
    for _ in range(2):  # the second time through the fast entries
        hv, (value, tangent) = f.hvp(x, 0.5, (v, 0.25)), f.jvp(x, 0.5, (v, 0.25))
        assert np.allclose(np.append(hv[0], hv[1]), block @ np.append(v, 0.25))
        assert type(hv[1]) is float and type(value) is float and type(tangent) is float
        assert np.allclose(hv[0], first[0][0]) and tangent == pytest.approx(first[1][1])
        assert tangent == pytest.approx(np.dot(f.grad(x, 0.5)[0], v) + f.grad(x, 0.5)[1] * 0.25)
    assert np.allclose(f.hvp(x, 0.5, (list(v), 0.25))[0], hv[0])  # a list: the full path converts it
    with pytest.raises(diffc.errors.ShapeError, match="direction for 'x' has shape"):
        f.hvp(x, 0.5, (v[:3], 0.25))
    single = diffc.compile(lambda x: np.sum(x ** 4), wrt=("x",), backend=backend)
    for _ in range(2):  # wrt=("x",): the block in a tuple, as f.grad gives it
        (h,) = single.hvp(x, v)
        assert np.allclose(h, 12 * x ** 2 * v)


def test_fast_entry_of_hvp_on_real_numba():
    """The default run's real-Numba twin of the test above: one hvp kernel, by hand (∂²Σx⁴ = 12x²)."""
    f = diffc.compile(lambda x: np.sum(x ** 4), backend="numba")
    x, v = RNG.normal(size=5), RNG.normal(size=5)
    for _ in range(3):
        assert np.allclose(f.hvp(x, v), 12 * x ** 2 * v)
    assert isinstance(f.__dict__["_hvp_entry"]((x, v)), np.ndarray)  # the fast entry took these arguments
