"""Invalid generated source is a diffc bug reported as such; Numba's refusals fall back, loudly.

The printers are broken on purpose here (monkeypatched to print what Python
or Numba refuses), each test in a cache directory of its own so that no
module of a correct printer is found there, and the results are checked
against the NumPy back end and central differences.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close, check_grad

import diffc
from diffc.codegen.loops import LoopPrinting
from diffc.codegen.numba import NumbaPrinter
from diffc.errors import CodegenError, FallbackWarning


def logsumexp(x):
    return np.log(np.sum(np.exp(x)))


def sine_moment(x):
    return np.sum(np.sin(x) * x)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIFFC_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_invalid_python_raises_codegen_error_naming_function_and_line(monkeypatch, own_cache):
    original = LoopPrinting.passes

    def empty_block(self, t, low, high):  # a `for` with nothing inside: an IndentationError at import
        return [*original(self, t, low, high), "for never in range(0):"]

    monkeypatch.setattr(LoopPrinting, "passes", empty_block)
    f = diffc.compile(logsumexp, args={"x": "f64[n]"})
    with pytest.raises(CodegenError) as info:
        f.grad(np.arange(3.0))
    error = info.value
    assert error.function in ("forward", "value_and_grad")
    saved = Path(error.saved)
    assert saved.exists()
    # Python points at the line after the empty block's header
    near = saved.read_text().splitlines()[error.line - 2:error.line]
    assert "for never in range(0):" in [line.strip() for line in near]
    assert f"line {error.line}" in str(error)
    with pytest.raises(CodegenError):  # diffc emit never writes a module that does not import
        diffc.emit(logsumexp, args={"x": "f64[n]"})


def test_numba_refusing_loops_falls_back_to_statements(monkeypatch):
    original = LoopPrinting.piece_sum

    def untypable(self, t, node):
        original(self, t, node)
        t.inside.append("refused = 'text' + 1.0")  # valid Python that Numba cannot type

    monkeypatch.setattr(LoopPrinting, "piece_sum", untypable)
    f = diffc.compile(sine_moment, args={"x": "f64[n]"})
    x = np.linspace(-1.0, 2.0, 7)
    with pytest.warns(FallbackWarning, match=r"value_and_grad\(\).*refused = 'text' \+ 1.0"):
        check_grad(f, [x], f=sine_moment)
    assert f.stats["fallback"] == "numba-statements"
    assert "TypingError" in f.stats["fallback reason"]
    assert "for i in" not in f.grad_source  # the source shown is the one that runs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per signature: later calls are quiet
        value, x_bar = f.value_and_grad(x)
    reference = diffc.compile(sine_moment, args={"x": "f64[n]"}, backend="numpy")
    want_value, want = reference.value_and_grad(x)
    assert_close(value, want_value, rtol=1e-13, atol=0)
    assert_close(x_bar, want, rtol=1e-13, atol=1e-16)


def test_numba_refusing_both_forms_falls_back_to_numpy(monkeypatch):
    original = NumbaPrinter.entry_checks

    def untypable(self, inputs, params):
        return ["refused = 'text' + 1.0", *original(self, inputs, params)]

    monkeypatch.setattr(NumbaPrinter, "entry_checks", untypable)
    f = diffc.compile(lambda W, v: np.sum(np.tanh(W @ v)), args={"W": "f64[m,n]", "v": "f64[n]"})
    W, v = np.arange(6.0).reshape(2, 3) / 7, np.array([0.5, -1.0, 2.0])
    with pytest.warns(FallbackWarning) as caught:
        check_grad(f, [W, v], f=lambda W, v: np.sum(np.tanh(W @ v)))
    assert f.stats["fallback"] == "numpy"
    messages = " ".join(str(w.message) for w in caught)
    assert "NumPy statements compiled by Numba" in messages and "plain NumPy (no Numba)" in messages
    assert "numba" not in f.grad_source


def test_errors_of_the_run_are_not_refusals():
    f = diffc.compile(lambda x, y: np.sum(x * y), args={"x": "f64[n]", "y": "f64[n]"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        with pytest.raises(diffc.ShapeError):
            f.grad(np.ones(3), np.ones(4))
    assert "fallback" not in f.stats


def test_numba_refusing_a_derivative_kernel_falls_back_for_that_module_alone(monkeypatch, own_cache):
    """The hvp kernel refused in both Numba forms (the value and gradient not): FallbackWarnings naming hvp(),
    H v from plain NumPy, and the gradient's fused loops kept."""
    original = NumbaPrinter.entry_checks

    def untypable(self, inputs, params):
        refused = ["refused = 'text' + 1.0"] if any(p.endswith("_dot") for p in params) else []
        return [*refused, *original(self, inputs, params)]

    monkeypatch.setattr(NumbaPrinter, "entry_checks", untypable)
    f = diffc.compile(sine_moment, args={"x": "f64[n]"})
    x, v = np.linspace(-1.0, 2.0, 7), np.linspace(0.5, 1.5, 7)
    with pytest.warns(FallbackWarning, match=r"hvp\(\).*refused = 'text' \+ 1.0"):
        got = f.hvp(x, v)
    reference = diffc.compile(sine_moment, args={"x": "f64[n]"}, backend="numpy")
    assert_close(got, reference.hvp(x, v), rtol=1e-12, atol=1e-14)
    assert f.stats["derivatives fallback"] == "numpy" and "fallback" not in f.stats
    assert "for i in" in f.grad_source and "numba" not in f.hvp_source
