"""What diffc traces, read from the tracer's own tables: the source of docs/numpy.md.

Why generated: a hand-written list of supported NumPy names drifts the day a
handler is added or removed. This module walks the tables the tracer
dispatches on (NumPy functions, ufuncs, array methods, operators, the names an
expression string may call) and the ``Convention:`` line of each handler's
docstring, and prints the page; a test checks that docs/numpy.md is what it
prints. Run ``python -m diffc.coverage --write`` after changing a table.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diffc.adjoint import rules
from diffc.errors import DiffcError
from diffc.frontends import construction, special, text, trace
from diffc.ir import DType, Op

PAGE = Path(__file__).resolve().parent.parent / "docs" / "numpy.md"

# attributes of a traced array that are not NumPy's (diffc's own bookkeeping)
_PRIVATE_ATTRS = frozenset({"graph", "node", "weak"})

# Python operators on a traced value: spelling -> a function applying it to (x, y)
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "x + y": lambda x, y: x + y, "x - y": lambda x, y: x - y, "x * y": lambda x, y: x * y,
    "x / y": lambda x, y: x / y, "x ** y": lambda x, y: x ** y, "x // y": lambda x, y: x // y,
    "x % y": lambda x, y: x % y, "x @ y": lambda x, y: x @ y, "-x": lambda x, y: -x, "+x": lambda x, y: +x,
    "abs(x)": lambda x, y: abs(x), "x < y": lambda x, y: x < y, "x <= y": lambda x, y: x <= y,
    "x > y": lambda x, y: x > y, "x >= y": lambda x, y: x >= y, "x == y": lambda x, y: x == y,
    "x != y": lambda x, y: x != y, "x & y": lambda x, y: (x > 0) & (y > 0),
    "x | y": lambda x, y: (x > 0) | (y > 0), "x ^ y": lambda x, y: (x > 0) ^ (y > 0),
    "~x": lambda x, y: ~(x > 0), "x[...]": lambda x, y: x[1:],
    # Python's builtins (swapped in while tracing: diffc/frontends/construction.py)
    "max(x, y)": lambda x, y: max(x, y), "min(x, y)": lambda x, y: min(x, y), "sum(x)": lambda x, y: sum(x),
    "len(x)": lambda x, y: x * len(x), "for xi in x": lambda x, y: [xi * 2 for xi in x][0],
    "np.r_[x, y]": lambda x, y: np.r_[x, y], "np.c_[x, y]": lambda x, y: np.c_[x, y],
    "x[[0, 2]], x[idx], X[:, idx], X[i]": lambda x, y: x[[0, 2]],
    "np.sum(x[mask]), np.mean(f(x[mask]))": lambda x, y: np.sum(x[x > 0]) + np.mean(np.exp(x[x > 0])),
    "x[key] = v": lambda x, y: _assigned(x, y),
}


def _assigned(x: Any, y: Any) -> Any:
    """``x[...] = v`` as the tracer records it (a new value bound to the same name)."""
    x = x.copy()
    x[x > 0] = y[0]
    return x


@dataclass(frozen=True)
class Entry:
    """One supported name, the section it is listed in, and its gradient convention ("" if none is needed)."""

    section: str
    name: str
    convention: str


def convention(handler: Any) -> str:
    """The text after ``Convention:`` in the handler's docstring (partials read their function's)."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    doc = inspect.getdoc(handler) or ""
    lines = [line.strip() for line in doc.splitlines()]
    for k, line in enumerate(lines):
        if line.startswith("Convention:"):
            rest = [line[len("Convention:"):].strip()]
            for more in lines[k + 1:]:
                if not more:
                    break
                rest.append(more)
            return " ".join(part for part in rest if part)
    return ""


def op_convention(op: Op | None) -> str:
    """An op's convention: its adjoint rule's ``Convention:`` line, else the one-line rules' table."""
    if op is None:
        return ""
    return convention(rules.ADJOINTS.get(op)) or rules.CONVENTIONS.get(op, "")


def ufunc_name(ufunc: Any) -> str:
    """``np.exp`` for NumPy's ufuncs, ``scipy.special.erf`` for SciPy's."""
    name = ufunc.__name__
    if getattr(np, name, None) is ufunc:
        return f"np.{name}"
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is ufunc:
        return f"scipy.special.{name}"
    return name


def _functions() -> Iterator[Entry]:
    for func, handler in trace._FUNCTIONS.items():
        yield Entry("NumPy functions", trace._np_name(func), convention(handler))
    yield Entry("NumPy functions", "np.arange", convention(trace._np_arange))  # patched while tracing
    for name, handler in construction.PATCHED.items():
        yield Entry("NumPy functions", name, convention(handler))
    for name, handler in special.PATCHED.items():
        yield Entry("SciPy functions", name, convention(handler))


def _ufuncs() -> Iterator[Entry]:
    ops = {**trace._UNARY_UFUNCS, **trace._BINARY_UFUNCS}
    for ufunc, handler in trace._UFUNCS.items():
        name = ufunc_name(ufunc)
        section = "SciPy functions" if name.startswith("scipy.") else "NumPy ufuncs"
        yield Entry(section, name, convention(handler) or op_convention(ops.get(ufunc)))


def _methods() -> Iterator[Entry]:
    """Public members of the traced array; a method without a convention of its own shares its function's."""
    functions = {e.name: e.convention for e in _functions()}
    for name, member in inspect.getmembers(trace.Tracer):
        if name.startswith("_") or name in _PRIVATE_ATTRS:
            continue
        target = member.fget if isinstance(member, property) else member
        spelled = f"x.{name}" if isinstance(member, property) else f"x.{name}()"
        yield Entry("Array methods and attributes", spelled, convention(target) or functions.get(f"np.{name}", ""))


def _traces(apply: Callable[[Any, Any], Any]) -> bool:
    """Whether ``apply(x, y)`` on two traced float vectors records without a diffc error."""
    params = [("x", DType.F64, (3,)), ("y", DType.F64, (3,))]
    try:
        trace.trace(apply, params)
    except DiffcError:
        return False
    return True


def _operators() -> Iterator[Entry]:
    for spelling, apply in _OPERATORS.items():
        if _traces(apply):
            yield Entry("Python operators", spelling, "")


def _text_names() -> Iterator[Entry]:
    for name in sorted(text.FUNCTIONS):
        yield Entry("Expression strings", f"{name}(...)", "")


SECTIONS = {
    "NumPy functions": "Called as `np.<name>(...)` inside a traced function.",
    "NumPy ufuncs": "Elementwise; they broadcast as NumPy's do and fuse into the Numba back end's loops.",
    "SciPy functions": "`scipy.special` functions, traced when SciPy is installed (it is a dependency); "
                       "call `scipy.special.logsumexp`, `softmax` and `log_softmax` by their module "
                       "(`from scipy.special import logsumexp` binds SciPy's own, which cannot trace).",
    "Array methods and attributes": "On a traced array `x`.",
    "Python operators": "On traced arrays and numbers.",
    "Expression strings": "The functions an expression string (`diffc.compile(\"...\")`, the CLI) may call.",
}


def entries() -> list[Entry]:
    """Every supported name, each section sorted by name."""
    found = [e for source in (_functions, _ufuncs, _methods, _operators, _text_names) for e in source()]
    order = list(SECTIONS)
    return sorted(found, key=lambda e: (order.index(e.section), e.name.lower()))


def numpy_names(found: list[Entry]) -> int:
    """How many distinct NumPy and SciPy names are traced (functions and ufuncs)."""
    return len({e.name for e in found if e.section in ("NumPy functions", "NumPy ufuncs", "SciPy functions")})


def page() -> str:
    """The text of docs/numpy.md."""
    found = entries()
    methods = sum(e.section == "Array methods and attributes" for e in found)
    lines = [
        "# What diffc traces",
        "",
        "<!-- generated by `python -m diffc.coverage --write` from the tracer's tables; do not edit -->",
        "",
        f"diffc traces {numpy_names(found)} NumPy and SciPy names and {methods} array methods and "
        "attributes. Any other NumPy call inside a traced function raises `diffc.UnsupportedCallError` "
        "(a `TraceError`) naming the function and the line of your code that called it.",
        "",
        "A *convention* is what diffc returns where the mathematical derivative does not exist or is "
        "a choice (a kink, a tie, a step); names without one have their ordinary derivative.",
    ]
    for section, blurb in SECTIONS.items():
        rows = [e for e in found if e.section == section]
        if not rows:
            continue
        lines += ["", f"## {section}", "", blurb, "", "| name | gradient convention |", "|---|---|"]
        lines += [f"| `{e.name}` | {e.convention} |" for e in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffc.coverage", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {PAGE} instead of printing it")
    options = parser.parse_args(argv)
    if options.write:
        PAGE.write_text(page(), encoding="utf-8")
    else:
        sys.stdout.write(page())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
