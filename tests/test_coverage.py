"""docs/numpy.md is what the tracer's tables say, and an unsupported call says where to look.

The page is generated (diffc/coverage.py); these tests fail when a handler
is added without regenerating it, when a listed name does not exist in NumPy
or SciPy, and when an unsupported call stops being an ``UnsupportedCallError``
that names the function, the user's line and the page.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import diffc
from diffc import coverage


def test_the_page_is_generated_from_the_tables() -> None:
    assert coverage.PAGE.read_text(encoding="utf-8") == coverage.page(), \
        "docs/numpy.md is stale: run `python -m diffc.coverage --write`"


def _resolve(name: str) -> object:
    module, _, attr = name.rpartition(".")
    module = {"np": "numpy", "np.linalg": "numpy.linalg"}.get(module, module.replace("np.", "numpy.", 1))
    return getattr(importlib.import_module(module), attr)


def test_every_listed_function_is_a_real_numpy_or_scipy_name() -> None:
    listed = [e.name for e in coverage.entries()
              if e.section in ("NumPy functions", "NumPy ufuncs", "SciPy functions")]
    assert len(listed) == coverage.numpy_names(coverage.entries())
    for name in listed:
        assert callable(_resolve(name)), name


def test_every_listed_operator_traces_and_an_unlisted_one_does_not() -> None:
    listed = {e.name for e in coverage.entries() if e.section == "Python operators"}
    assert {"x + y", "x * y", "x @ y", "x[...]"} <= listed
    for spelling, apply in coverage._OPERATORS.items():
        assert (spelling in listed) == coverage._traces(apply), spelling


def test_an_unsupported_call_names_the_function_the_line_and_the_page() -> None:
    def model(x):
        return np.sum(np.fft.fft(x).real)  # the line the error must name

    line = model.__code__.co_firstlineno + 1
    with pytest.raises(diffc.UnsupportedCallError) as info:
        diffc.compile(model, args={"x": "f64[n]"}).value_and_grad(np.ones(3))
    message = str(info.value)
    assert info.value.function == "np.fft.fft"
    assert "np.fft.fft" in message and "docs/numpy.md" in message
    assert f"test_coverage.py, line {line}" in message
    assert isinstance(info.value, diffc.TraceError) and isinstance(info.value, diffc.UnsupportedError)


def test_methods_share_their_functions_convention() -> None:
    found = {e.name: e.convention for e in coverage.entries()}
    assert found["x.max()"] == found["np.max"] != ""
