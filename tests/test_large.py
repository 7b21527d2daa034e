"""Large programs: long chains (assignment lines, a traced loop) and a wide DAG, with both back ends.

Hidden quadratic steps and Numba's super-linear compile time only show at
these sizes. The value and gradient are compared with the NumPy back end on a
tiny input, and spot-checked by central differences. Sizes of 2,000
operations run by default; 20,000 and 50,000 are ``slow`` (``pytest -m slow``).
Timing belongs to ``benchmarks/compile_scaling.py``, not here.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import diffc
from diffc.codegen.split import split_function
from diffc.errors import FallbackWarning

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from compile_scaling import source as build  # noqa: E402


def check_large(kind: str, ops: int, backend: str) -> None:
    """Value and gradient against the NumPy back end, and one entry against central differences."""
    fn, args = build(kind, ops)
    x: Any = 0.3 if args["x"] == "f64" else np.array([0.1, 0.25, 0.4])
    f = diffc.compile(fn, args=args, backend=backend)
    with warnings.catch_warnings():
        # grad and vjp are built on value_and_grad: when it is too large for Numba (NumPy statements, run by
        # Python), they must be plain Python too, not Numba functions that fail to type and fall back
        warnings.simplefilter("error", FallbackWarning)
        value, grad = f.value_and_grad(x)
        np.testing.assert_array_equal(f.grad(x), grad)
        np.testing.assert_allclose(f.vjp(x, 2.5), 2.5 * np.asarray(grad), rtol=1e-15, atol=0)
    reference = diffc.compile(fn, args=args, backend="numpy") if backend != "numpy" else f
    ref_value, ref_grad = reference.value_and_grad(x)
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(f(x), ref_value, rtol=1e-10)
    h = 1e-6
    if args["x"] == "f64":
        numeric = (reference(x + h) - reference(x - h)) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    else:
        up, down = x.copy(), x.copy()
        up[1] += h
        down[1] -= h
        numeric = (reference(up) - reference(down)) / (2 * h)
        np.testing.assert_allclose(grad[1], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["text", "scalar", "loop", "dag"])
def test_two_thousand_operations(kind: str, backend: str) -> None:
    check_large(kind, 2000, backend)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["text", "loop"])
def test_twenty_thousand_step_chain(kind: str, backend: str) -> None:
    check_large(kind, 20000, backend)


@pytest.mark.slow
def test_fifty_thousand_node_dag(backend: str) -> None:
    check_large("dag", 50000, backend)


def test_split_keeps_a_repeated_part_once() -> None:
    """The steps of a chain are one helper, called once per part, each time with its own constants."""
    lines = ["def f(x):", '    """Doc."""']
    for k in range(1, 601):
        lines.append(f"    a{k} = np.sin({'x' if k == 1 else f'a{k - 1}'}) * {1.0 + k / 1000!r}")
    lines.append("    return a600")
    text = "\n".join(lines) + "\n"
    split = split_function(text, limit=100)
    assert split is not None
    assert len(split.helpers) <= 3  # the first part reads x, the others the last value: two shapes at most
    namespace: dict[str, Any] = {"np": np}
    for _, source in split.helpers:
        exec(source, namespace)  # noqa: S102 - our own generated text
    exec(split.function, namespace)  # noqa: S102
    plain: dict[str, Any] = {"np": np}
    exec(text, plain)  # noqa: S102
    assert namespace["f"](0.3) == plain["f"](0.3)
    assert '"""Doc."""' in split.function


def test_split_loop_body_and_carried_values() -> None:
    """A long loop body is split in place; an accumulator carried across iterations comes back from its part."""
    body = [f"        a{k} = a{k - 1} * 0.5 + x[i]" for k in range(1, 301)]
    text = "\n".join(["def f(x):", "    total = 0.0", "    for i in range(x.shape[0]):", "        a0 = x[i]",
                      *body, "        total += a300", "    return total"]) + "\n"
    split = split_function(text, limit=50)
    assert split is not None
    assert "for i in range(x.shape[0]):" in split.function
    namespace: dict[str, Any] = {}
    for _, source in split.helpers:
        exec(source, namespace)  # noqa: S102
    exec(split.function, namespace)  # noqa: S102
    plain: dict[str, Any] = {}
    exec(text, plain)  # noqa: S102
    x = np.array([0.1, 0.2, 0.3])
    assert namespace["f"](x) == plain["f"](x)


def test_small_function_is_not_split() -> None:
    assert split_function("def f(x):\n    y = x + 1\n    return y\n") is None


def test_split_tells_constants_apart_that_compare_equal() -> None:
    """``True`` and ``1`` are equal as dict keys but different code: parts holding them are two helpers."""
    lines = ["def f(x):", "    a0 = x"]
    for k in range(1, 201):
        lines.append(f"    a{k} = a{k - 1} + {'True' if k > 100 else '1'}")
    text = "\n".join([*lines, "    return a200"]) + "\n"
    split = split_function(text, limit=50)
    assert split is not None
    bodies = [source.split("\n", 1)[1] for _, source in split.helpers]
    assert any("True" in b for b in bodies) and any("+ 1" in b for b in bodies)


def test_split_moves_each_comment_with_its_statement() -> None:
    """Comments above a statement (rule comments) go where it goes: into a helper, above a loop, after a float
    that became a parameter; none is lost or doubled."""
    lines = ["def f(x):", '    """Doc."""', "    # the first statement's own note", "    a0 = x * 1.5"]
    for k in range(1, 301):  # the floats differ from part to part: the helpers take them as parameters
        lines += [f"    # step {k}:", f"    #   a{k} = sin(a{k - 1}) * {1.0 + k / 1000!r}",
                  f"    a{k} = np.sin(a{k - 1}) * {1.0 + k / 1000!r}"]
    lines += ["    total = 0.0", "    # the loop's note", "    for i in range(3):",
              *[f"        # inner {k}\n        total += a300 * {k}.0" for k in range(200)], "    return total"]
    text = "\n".join(lines) + "\n"
    split = split_function(text, limit=50)
    assert split is not None and any("c0" in source for _, source in split.helpers)
    whole = split.function + "".join(source for _, source in split.helpers)
    assert whole.count("# the first statement's own note") == 1 and whole.count("# the loop's note") == 1
    assert "    # the loop's note\n    for i in range(3):" in split.function
    for name, source in split.helpers:  # each helper is one occurrence's text: its comments precede its lines
        body = source.splitlines()[1:]
        for k, line in enumerate(body):
            if line.strip().startswith("# step"):
                assert body[k + 1].strip().startswith("#   a") and re.match(r"\s+a\d+ = np\.sin", body[k + 2]), name
    namespace: dict[str, Any] = {"np": np}
    for _, source in split.helpers:
        exec(source, namespace)  # noqa: S102 - our own generated text
    exec(split.function, namespace)  # noqa: S102
    plain: dict[str, Any] = {"np": np}
    exec(text, plain)  # noqa: S102
    assert namespace["f"](0.3) == plain["f"](0.3)
