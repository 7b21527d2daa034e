"""Functions written the way other projects write them (tests/third_party.py) compile as they are.

The value is the function run by NumPy; the gradient is its central differences, on the NumPy back end,
and the Numba back end's module run as plain Python agrees with it.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
import third_party
from conftest import as_tuple, assert_close, numeric_grad
from plain_numba import call_plain, load_compiled

import diffc

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 4))
LABELS, TARGETS = RNG.integers(0, 3, size=20), RNG.normal(size=20)
PAIR = np.array([0.5, 0.3])
ARGS: dict[str, tuple[Any, ...]] = {
    "softmax_xent": (RNG.normal(size=(4, 3)), X, LABELS),
    "mlp": ([RNG.normal(size=(4, 5)), RNG.normal(size=5), RNG.normal(size=(5, 1)), RNG.normal(size=1)], X, TARGETS),
    "gaussian_nll": (0.3, -0.2, RNG.normal(size=10)),
    "huber": (RNG.normal(size=4), X, TARGETS), "lasso_smooth": (RNG.normal(size=4), X, TARGETS),
    "ridge_closed": (RNG.normal(size=4), X, TARGETS), "kl_div": (RNG.normal(size=5), np.full(5, 0.2)),
    "pairwise": (RNG.normal(size=(6, 3)),), "perm": (RNG.uniform(-1, 1, size=4),),
    "cos_sim": (RNG.normal(size=5), RNG.normal(size=5)),
    "beale": (PAIR,), "booth": (PAIR,), "himmelblau": (PAIR,), "matyas": (PAIR,),
    "eggholder": (np.array([10.5, 20.3]),), "bukin6": (np.array([-9.5, 0.8]),),
    "powell": (RNG.normal(size=8),),
}
FIRST_ONLY = {"softmax_xent", "huber", "lasso_smooth", "ridge_closed", "kl_div", "mlp"}  # data after the parameters
NAMES = sorted(name for name, _ in inspect.getmembers(third_party, inspect.isfunction))


def _case(name: str) -> tuple[Any, tuple[Any, ...], Any]:
    fn = getattr(third_party, name)
    args = ARGS.get(name, (np.random.default_rng(len(name)).uniform(-2, 2, size=6),))
    wrt = [next(iter(inspect.signature(fn).parameters))] if name in FIRST_ONLY else None
    return fn, args, wrt


def _differences(fn: Any, args: tuple[Any, ...], name: str) -> Any:
    if name == "mlp":  # a list of parameters: differences leaf by leaf
        params, *data = args
        return [numeric_grad(lambda *leaves: fn(list(leaves), *data), params)]
    count = 1 if name in FIRST_ONLY else len(args)
    return numeric_grad(fn, list(args), wrt=list(range(count)))


@pytest.mark.parametrize("name", NAMES)
def test_third_party_functions_compile_as_written(name: str) -> None:
    fn, args, wrt = _case(name)
    f = diffc.compile(fn, backend="numpy", wrt=wrt)
    value, grads = f.value_and_grad(*args)
    assert_close(value, fn(*args), rtol=1e-12, atol=1e-12, what=f"{name} value")
    want = _differences(fn, args, name)
    got = as_tuple(grads, len(want))
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        for leaf, ref in zip(g if isinstance(g, list) else [g], w if isinstance(w, list) else [w], strict=True):
            assert_close(leaf, ref, rtol=1e-5, atol=1e-6, what=f"{name} gradient {k}")


def _type(value: Any) -> str:
    """The declared type of an example argument: its dtype and concrete shape."""
    array = np.asarray(value)
    kind = {"f": "f64", "i": "i64"}[array.dtype.kind]
    return kind + (f"[{','.join(map(str, array.shape))}]" if array.shape else "")


@pytest.mark.parametrize("name", [n for n in NAMES if n != "mlp"])
def test_the_numba_module_agrees_as_plain_python(name: str) -> None:
    fn, args, wrt = _case(name)
    types = {p: _type(a) for p, a in zip(inspect.signature(fn).parameters, args, strict=False)}
    want_value, want_grads = diffc.compile(fn, args=types, backend="numpy", wrt=wrt).value_and_grad(*args)
    # the generated functions take every parameter: the defaulted numbers are passed as the function has them
    defaults = [p.default for p in list(inspect.signature(fn).parameters.values())[len(args):]]
    module = load_compiled(diffc.compile(fn, args=types, wrt=wrt))
    got_value, got_grads = call_plain(module["value_and_grad"], *args, *defaults)
    assert_close(got_value, want_value, rtol=1e-10, atol=1e-12, what=f"{name} value")
    count = 1 if name in FIRST_ONLY else len(args)
    for got, want in zip(as_tuple(got_grads, count), as_tuple(want_grads, count), strict=True):
        assert_close(got, want, rtol=1e-9, atol=1e-12, what=f"{name} gradient")
