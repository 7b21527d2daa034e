"""Shared test helpers: central-difference gradients, a gradient checker, a back-end fixture.

Finite differences are the independent reference for every gradient test:
they know nothing of diffc's adjoint table, so an agreement means the rule,
the reverse sweep, the simplifier and the printer are all right at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from diffc.ir import Graph, Node, Program, parse_type

_OWN_CACHE_DIR: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Generated modules go to a throwaway directory, set before diffc reads the variable."""
    if "DIFFC_CACHE_DIR" not in os.environ:
        path = tempfile.mkdtemp(prefix="diffc-test-cache-")
        os.environ["DIFFC_CACHE_DIR"] = path
        _OWN_CACHE_DIR.append(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the directory we made (never one the user chose)."""
    for path in _OWN_CACHE_DIR:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop("DIFFC_CACHE_DIR", None)


@pytest.fixture(params=["numpy", "numba"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both back ends; Numba costs about a second per compiled function, so use it sparingly."""
    return request.param


# Real-Numba cases that cost the default run the most compile time for the least new coverage (a
# plain-Python or smaller real-Numba twin of each stays in the default run). They are marked slow
# here, in one list, and run in CI's `pytest -m slow` pass. Each entry is a node id or its prefix.
SLOW_IN_DEFAULT_RUN = (
    "tests/test_codegen.py::test_20000_",  # the size itself is the point: 20,000 operations
    "tests/test_jacobian.py::test_jvp_matches_vjp_transpose[numba]",  # the notes' layers keep real Numba in
    "tests/test_jacobian.py::test_hessian_against_differences_of_the_gradient[numba]",
    "tests/test_jacobian.py::test_hessian_of_a_scalar_expression_agrees_with_sympy[numba]",
    "tests/test_large.py::test_two_thousand_operations[numba-text]",
    "tests/test_large.py::test_two_thousand_operations[numba-scalar]",
    "tests/test_large.py::test_two_thousand_operations[numba-loop]",
    "tests/test_api.py::test_memory_layouts_give_the_contiguous_result_on_numba",
    "tests/test_adjoint.py::test_reductions_on_both_backends[numba]",
    "tests/test_cli.py::test_emitted_module_matches_compile[dag_logistic-numba]",
    "tests/test_cli.py::test_emitted_module_matches_compile[relu_layer-numba]",
    "tests/test_ops_take.py::test_forms_on_real_numba[T[i, :, idx]]",
    "tests/test_bad_args.py::test_careless_arguments_real_numba[noncontiguous]",
    "tests/test_bad_args.py::test_careless_arguments_real_numba[readonly]",
    "tests/test_bad_args.py::test_careless_arguments_real_numba[list]",
    "tests/test_cache.py::test_damaged_entry_or_numba_file_is_rebuilt_numba[nbc garbled]",
)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SLOW_IN_DEFAULT_RUN):
            item.add_marker(pytest.mark.slow)


def _is_float(value: Any) -> bool:
    return isinstance(value, float) or (isinstance(value, np.ndarray) and value.dtype.kind == "f")


def numeric_grad(f: Callable[..., Any], args: Sequence[Any], eps: float = 1e-6,
                 wrt: Sequence[int] | None = None) -> list[Any]:
    """Central differences of scalar ``f(*args)``, element by element, in float64.

    The step is relative (``eps * max(1, |x|)``) so large and small entries
    are both differentiated well. Returns one gradient per index in ``wrt``
    (default: every float argument), a float for a scalar argument and an
    array of the argument's shape otherwise.
    """
    values = [np.array(a, dtype=np.float64) if _is_float(a) else a for a in args]
    indices = list(wrt) if wrt is not None else [i for i, a in enumerate(args) if _is_float(a)]
    grads: list[Any] = []

    def call(vals: list[Any]) -> float:
        plain = [v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v for v in vals]
        return float(f(*plain))

    for i in indices:
        base = values[i]
        grad = np.zeros(base.shape)
        for k in np.ndindex(base.shape):
            h = eps * max(1.0, abs(float(base[k])))
            plus, minus = base.copy(), base.copy()
            plus[k] += h
            minus[k] -= h
            up = call(values[:i] + [plus] + values[i + 1:])
            down = call(values[:i] + [minus] + values[i + 1:])
            grad[k] = (up - down) / (plus[k] - minus[k])
        grads.append(grad.item() if grad.ndim == 0 else grad)
    return grads


def assert_close(actual: Any, expected: Any, rtol: float, atol: float, what: str = "") -> None:
    """Shapes must agree exactly (a (3,) gradient for a (3,1) input is a bug), then values."""
    actual_arr, expected_arr = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual_arr.shape == expected_arr.shape, f"{what}: shape {actual_arr.shape} != {expected_arr.shape}"
    np.testing.assert_allclose(actual_arr, expected_arr, rtol=rtol, atol=atol, err_msg=what)


def as_tuple(grads: Any, count: int) -> tuple[Any, ...]:
    return tuple(grads) if isinstance(grads, tuple) else (grads,) if count == 1 else tuple(grads)


def check_grad(compiled: Any, args: Sequence[Any], rtol: float = 1e-6, atol: float = 1e-8,
               wrt: Sequence[int] | None = None, f: Callable[..., Any] | None = None,
               eps: float = 1e-6) -> tuple[Any, ...]:
    """``compiled.grad(*args)`` against central differences of ``f`` (default: ``compiled`` itself).

    ``wrt`` lists the argument indices the compiled function differentiates
    (default: every float argument, which is diffc's default too). Returns
    diffc's gradients as a tuple.
    """
    value, grads = compiled.value_and_grad(*args)
    indices = list(wrt) if wrt is not None else [i for i, a in enumerate(args) if _is_float(a)]
    grads = as_tuple(grads, len(indices))
    reference = numeric_grad(f or compiled, args, eps=eps, wrt=indices)
    assert len(grads) == len(reference), f"{len(grads)} gradients for {len(reference)} differentiated arguments"
    assert np.isfinite(value)
    if f is not None:
        assert_close(value, f(*args), rtol=1e-12, atol=1e-12, what="value")
    for i, got, want in zip(indices, grads, reference, strict=True):
        assert_close(got, want, rtol=rtol, atol=atol, what=f"gradient of argument {i}")
    return grads


def check_vjp(compiled: Any, args: Sequence[Any], cotangent: Any, rtol: float = 1e-6, atol: float = 1e-8,
              wrt: Sequence[int] | None = None, eps: float = 1e-6) -> tuple[Any, ...]:
    """``compiled.vjp(*args, cotangent)`` against central differences of ``sum(cotangent * f(args))``."""
    indices = list(wrt) if wrt is not None else [i for i, a in enumerate(args) if _is_float(a)]
    grads = as_tuple(compiled.vjp(*args, cotangent), len(indices))
    ct = np.asarray(cotangent, dtype=np.float64)

    def pulled(*values: Any) -> float:
        return float(np.sum(ct * np.asarray(compiled(*values), dtype=np.float64)))

    reference = numeric_grad(pulled, args, eps=eps, wrt=indices)
    for i, got, want in zip(indices, grads, reference, strict=True):
        assert_close(got, want, rtol=rtol, atol=atol, what=f"vjp of argument {i}")
    return grads


def program(build: Callable[..., Node], **types: str) -> Program:
    """A one-output program over fresh inputs (``types`` name them, in order), built by ``build(g, *inputs)``."""
    g = Graph()
    inputs = []
    for name, text in types.items():
        dtype, shape = parse_type(text)
        inputs.append(g.input(name, dtype, shape))
    return Program(g, inputs, [build(g, *inputs)], ["out"], name="f")
