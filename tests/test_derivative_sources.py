"""The readable jvp and hvp sources (f.jvp_source, f.hvp_source) on both back ends, and the Numba ones run.

The Numba back end's jvp and hvp are run as plain Python (tests/plain_numba.py) with the parallel
threshold at 0 and at the generated one, so the chunked branch and the serial one both run, and
compared with the NumPy back end through the public API; central differences of the gradient are
the reference for the hvp.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numeric_grad
from plain_numba import call_plain, load_text

import diffc
from diffc.codegen.module import render_module
from diffc.derivatives import emitted
from diffc.errors import DiffcError

RNG = np.random.default_rng(23)


def logistic(w, b, X, y):
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def softmax_rows(W, X):
    Z = X @ W
    return np.exp(Z) / np.sum(np.exp(Z), axis=1, keepdims=True)


TYPES = {"logistic": {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, "rosenbrock": {"x": "f64[n]"},
         "softmax_rows": {"W": "f64[n,k]", "X": "f64[m,n]"}}
FUNCTIONS = {"logistic": logistic, "rosenbrock": rosenbrock, "softmax_rows": softmax_rows}


def _inputs(name: str) -> list:
    if name == "logistic":
        return [RNG.normal(size=4), 0.2, RNG.normal(size=(9, 4)), (RNG.random(9) < 0.5).astype(float)]
    if name == "rosenbrock":
        return [RNG.uniform(-1.5, 1.5, size=8)]
    return [RNG.normal(size=(3, 4)), RNG.normal(size=(6, 3))]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sources_are_readable_and_deterministic(backend):
    f = diffc.compile(rosenbrock, args=TYPES["rosenbrock"], backend=backend)
    g = diffc.compile(rosenbrock, args=TYPES["rosenbrock"], backend=backend)
    assert f.jvp_source == g.jvp_source and f.hvp_source == g.hvp_source
    assert "def jvp(x, x_dot):" in f.jvp_source and "def hvp(x, x_dot):" in f.hvp_source
    assert ("@numba.njit" in f.hvp_source) == (backend == "numba")
    if backend == "numba":  # forward over reverse in one fused pass over x, as the gradient
        main_loops = [line for line in f.hvp_source.splitlines() if line.strip().startswith("for i in range(")]
        assert len(main_loops) == 1, f.hvp_source
    layer = diffc.compile(softmax_rows, args=TYPES["softmax_rows"], backend=backend)
    assert "def jvp(W, X, W_dot, X_dot):" in layer.jvp_source
    with pytest.raises(DiffcError, match="no Hessian"):
        layer.hvp_source  # noqa: B018 - the property raises


@pytest.mark.parametrize("threshold", [0, None])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_numba_jvp_and_hvp_as_plain_python(name, threshold):
    """The Numba module's jvp and hvp (fused loops, row kernels, chunks) agree with the NumPy back end's."""
    numba_f = diffc.compile(FUNCTIONS[name], args=TYPES[name], backend="numba")
    numpy_f = diffc.compile(FUNCTIONS[name], args=TYPES[name], backend="numpy")
    spec = numba_f._declared()
    scalar = spec.scalar_output
    functions, python = emitted(spec, ("jvp", "hvp") if scalar else ("jvp",), True)
    namespace = load_text(render_module(functions, spec.variant, "plain test.", True, python), threshold)
    inputs = _inputs(name)
    names = list(TYPES[name])
    directions = [RNG.normal(size=np.shape(inputs[names.index(w)])) if np.ndim(inputs[names.index(w)])
                  else float(RNG.normal()) for w in spec.wrt]
    given = directions[0] if len(directions) == 1 else tuple(directions)
    value, tangent = call_plain(namespace["jvp"], *inputs, *directions)
    want_value, want_tangent = numpy_f.jvp(*inputs, given)
    assert np.allclose(value, want_value, rtol=1e-12) and np.allclose(tangent, want_tangent, rtol=1e-10)
    if not scalar:
        return
    got = call_plain(namespace["hvp"], *inputs, *directions)
    want = numpy_f.hvp(*inputs, given)
    got, want = (got, want) if len(directions) > 1 else ((got,), (want,))
    for a, b in zip(got, want, strict=True):
        assert np.allclose(a, b, rtol=1e-10, atol=1e-12)
    eps = 1e-6  # H v = d/dt grad(x + t v) at t = 0
    shifted = [[x + s * eps * d if k in [names.index(w) for w in spec.wrt] else x
                for k, (x, d) in enumerate(zip(inputs, _spread(names, spec.wrt, directions), strict=True))]
               for s in (1, -1)]
    grads = [numpy_f.grad(*values) for values in shifted]
    grads = [g if isinstance(g, tuple) else (g,) for g in grads]
    for a, plus, minus in zip(got, *grads, strict=True):
        assert np.allclose(a, (np.asarray(plus) - np.asarray(minus)) / (2 * eps), rtol=1e-5, atol=1e-5)


def _spread(names: list[str], wrt: tuple[str, ...], directions: list) -> list:
    """The directions at the positions of their arguments, 0 elsewhere."""
    return [directions[wrt.index(n)] if n in wrt else 0 for n in names]


def test_the_hvp_reference_itself_is_central_differences():
    """The finite-difference reference above, checked once against the conftest helper on Rosenbrock."""
    f = diffc.compile(rosenbrock, backend="numpy")
    x, v = RNG.uniform(-1.5, 1.5, size=6), RNG.normal(size=6)
    along = numeric_grad(lambda t: float(np.dot(f.grad(x + t * v), v)), [0.0])[0]
    assert np.dot(f.hvp(x, v), v) == pytest.approx(along, rel=1e-6)
