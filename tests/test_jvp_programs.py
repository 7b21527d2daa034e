"""jvp against vjp on drawn programs: ⟨u, J t⟩ = ⟨Jᵀu, t⟩ for every program tests/programs.py draws.

Why this identity: diffc's jvp is the transpose of its vjp (diffc/adjoint/forward.py), built by a
second reverse pass and simplified; the identity holds for the true Jacobian whatever J is, so an
error in the transposition, the simplifier or a printer shows as a mismatch, and the vjp itself is
checked against finite differences in tests/test_differential.py. The NumPy back end runs through
the public API (f.jvp, f.vjp); the Numba back end's jvp and vjp are printed into one standalone
module (diffc.emit's functions) and run as plain Python (tests/plain_numba.py), with the parallel
threshold the program drew, so chunked loops are exercised without compiling.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from conftest import as_tuple
from hypothesis import HealthCheck, assume, given, settings
from plain_numba import call_plain, load_text
from programs import ProgramSpec, programs

import diffc
from diffc.codegen.module import render_module
from diffc.derivatives import emitted
from diffc.errors import DiffcError

RTOL = {"f64": 1e-9, "f32": 1e-3}
COMMON = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


def _precision(spec: ProgramSpec) -> str:
    return "f32" if any(text.startswith("f32") for _, text in spec.args) or "float32" in spec.source else "f64"


def _quiet(fn: Any, *args: Any) -> Any:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)


def _setup(spec: ProgramSpec, backend: str) -> tuple[diffc.Compiled, list[Any], list[Any], Any]:
    """The compiled program, its inputs, one random tangent per differentiated input, a random cotangent."""
    try:
        f = diffc.compile(spec.function(), args=spec.types, wrt=spec.wrt, backend=backend,
                          vector_math=spec.vector_math)
        declared = f._declared()
        declared.specs()
    except DiffcError:
        assume(False)
        raise
    assume(bool(declared.wrt))
    inputs = spec.inputs()
    names = [p[0] for p in declared.params]
    rng = np.random.default_rng(spec.seed + 2)
    tangents = []
    for w in declared.wrt:
        value = np.asarray(inputs[names.index(w)])
        t = rng.uniform(-1.5, 1.5, size=value.shape).astype(value.dtype)
        tangents.append(t if t.ndim else t[()])
    out = declared.forward.outputs[0]
    like = _quiet(spec.function(), *inputs)  # the drawn source run by NumPy: the output's shape, no compiling
    return f, inputs, tangents, spec.cotangent(like, out.dtype.numpy)


def _inner(a: Any, b: Any) -> float:
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


def _check_identity(spec: ProgramSpec, u: Any, jt: Any, grads: tuple[Any, ...], tangents: list[Any], what: str) -> None:
    """⟨u, J t⟩ against ⟨Jᵀu, t⟩, to a tolerance scaled by the sizes of the terms summed."""
    lhs = _inner(u, jt)
    rhs = sum(_inner(g, t) for g, t in zip(grads, tangents, strict=True))
    terms = _inner(np.abs(u), np.abs(jt)) + sum(_inner(np.abs(g), np.abs(t)) for g, t in zip(grads, tangents,
                                                                                             strict=True))
    assume(np.isfinite(lhs) and np.isfinite(rhs) and np.isfinite(terms) and terms < 1e12)
    assert abs(lhs - rhs) <= RTOL[_precision(spec)] * (terms + 1.0), (
        f"{what}: <u, J t> = {lhs!r} but <J^T u, t> = {rhs!r}\n{spec!r}")


def check_numpy(spec: ProgramSpec) -> None:
    f, inputs, tangents, u = _setup(spec, "numpy")
    count = len(tangents)
    value, jt = _quiet(f.jvp, *inputs, tangents[0] if count == 1 else tuple(tangents))
    np.testing.assert_allclose(np.asarray(value, dtype=np.float64), np.asarray(_quiet(f, *inputs), np.float64),
                               rtol=1e-6, equal_nan=True)
    assert np.shape(jt) == np.shape(value), f"J t has shape {np.shape(jt)}, the output {np.shape(value)}"
    grads = as_tuple(_quiet(f.vjp, *inputs, u), count)
    _check_identity(spec, u, jt, grads, tangents, "NumPy back end")


def check_plain_numba(spec: ProgramSpec) -> None:
    f, inputs, tangents, u = _setup(spec, "numba")
    declared = f._declared()
    try:
        functions, python = emitted(declared, ("jvp", "vjp"), True)
    except DiffcError:  # a constant too large to print: not a standalone module
        assume(False)
        raise
    text = render_module(functions, declared.variant, "jvp test module.", True, python)
    namespace = load_text(text, parallel_threshold=spec.threshold)
    value, jt = call_plain(namespace["jvp"], *inputs, *tangents)
    grads = as_tuple(call_plain(namespace["vjp"], *inputs, u)[1], len(tangents))
    _check_identity(spec, u, jt, grads, tangents, "Numba back end as plain Python")
    reference = diffc.compile(spec.function(), args=spec.types, wrt=spec.wrt, backend="numpy",
                              vector_math=spec.vector_math)
    _, want = _quiet(reference.jvp, *inputs, tangents[0] if len(tangents) == 1 else tuple(tangents))
    got_a, want_a = np.asarray(jt, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(want_a[np.isfinite(want_a)]), initial=0.0)))
    finite = np.isfinite(want_a)
    np.testing.assert_allclose(got_a[finite], want_a[finite], rtol=RTOL[_precision(spec)] * 100,
                               atol=RTOL[_precision(spec)] * 100 * scale, err_msg=f"J t, Numba vs NumPy\n{spec!r}")


@settings(COMMON, max_examples=150)
@given(programs(plain=False))
def test_jvp_is_the_transpose_of_vjp_numpy(spec: ProgramSpec) -> None:
    check_numpy(spec)


@settings(COMMON, max_examples=150)
@given(programs())
def test_jvp_is_the_transpose_of_vjp_plain_numba(spec: ProgramSpec) -> None:
    check_plain_numba(spec)


@pytest.mark.slow
@settings(COMMON, max_examples=400)
@given(programs())
def test_jvp_is_the_transpose_of_vjp_many(spec: ProgramSpec) -> None:
    check_numpy(spec)
    check_plain_numba(spec)
