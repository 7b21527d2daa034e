"""Assemble printed functions into a Python module's source text.

The same input always gives the same bytes: no timestamps, no random names,
nothing that depends on dict order or hash seeds.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diffc.codegen.numba import NumbaPrinter, NumbaStatementPrinter
from diffc.codegen.numpy import NumpyPrinter
from diffc.codegen.printer import Layout, Printer, docstring
from diffc.codegen.split import split_function
from diffc.errors import UnsupportedError
from diffc.ir import Program

PRINTERS: dict[str, type[Printer]] = {"numpy": NumpyPrinter, "numba": NumbaPrinter,
                                      "numba-statements": NumbaStatementPrinter}

STANDALONE_SHAPE_ERROR = '''class ShapeError(ValueError):
    """Argument sizes that do not agree (the message names both shapes).

    Raised with the message in parts (strings and sizes), joined here.
    """

    def __init__(self, *parts):
        super().__init__("".join(str(part) for part in parts))'''

NUMBA_MISSING = '''try:
    import numba
except ImportError as error:  # pragma: no cover - depends on the machine
    raise ImportError(
        "this module was generated for Numba, which is not installed here; "
        "install numba or regenerate the module with --backend numpy"
    ) from error'''


@dataclass(frozen=True)
class FunctionSpec:
    """One function of a module: its name, program, return layout and docstring."""

    name: str
    program: Program
    layout: Layout
    doc: str
    delegate: tuple[str, int] | None = None  # (function, index): return function(...)[index]
    pullback_of: str | None = None  # a scalar function's vjp: that function's gradients times the cotangent
    vector_math: bool = True  # fused loops call diffc's vectorizable elementary functions
    constants: tuple[Any, ...] = ()  # large constant arrays: trailing hidden parameters _const0, ...
    annotate: bool = True  # a comment on each adjoint statement: its rule and forward statement

    @property
    def built_on(self) -> str | None:
        """The function this one calls instead of a program of its own (``grad``, a scalar ``vjp``)."""
        return self.delegate[0] if self.delegate else self.pullback_of


def printer_for(backend: str) -> Printer:
    try:
        return PRINTERS[backend]()
    except KeyError:
        raise UnsupportedError(f"unknown back end {backend!r}: choose one of {sorted(PRINTERS)}",
                               backend=backend) from None


# Programs larger than this (nodes) print fused loops with libm calls: diffc's vector-math helpers are
# inlined into every call site, and a few hundred inlined sines cost LLVM minutes (a 250-step chain: 150 s)
LARGE_PROGRAM = 400
# Numba compiles a few milliseconds per statement, so more different statements than this (after a
# split into parts, a repeated part counted once) would cost minutes: such a function is printed as NumPy
# statements, run by Python, instead (as a JIT leaves huge methods to its interpreter)
NUMBA_MAX_STATEMENTS = 4000
# A part that takes or returns more values than this makes Numba type and unpack long tuples at every call
# (a gradient keeps its forward values for the backward sweep: all of them cross every part in between);
# such a function is printed as NumPy statements too
MAX_INTERFACE = 32


def print_function(spec: FunctionSpec, backend: str, helpers: dict[str, str] | None = None) -> str:
    """The source of one function, with its decorator; support helpers it calls go into ``helpers``.

    A Numba function longer than a part (``split.PART_LIMIT`` statements) is split into helper
    functions of bounded size (``diffc/codegen/split.py``): Numba's compile time grows faster than
    the size of a function.
    """
    printer = printer_for(backend)
    printer.constants = spec.constants
    printer.vector_math = spec.vector_math
    printer.annotate = spec.annotate
    large = not spec.built_on and backend == "numba" and len(spec.program.nodes()) > LARGE_PROGRAM
    if large:
        printer.vector_math = False
    if spec.delegate:
        lines = printer.delegate(spec.name, spec.program, *spec.delegate, spec.doc)
    elif spec.pullback_of:
        lines = printer.pullback(spec.name, spec.program, spec.pullback_of, spec.layout, spec.doc)
    else:
        lines = printer.function(spec.name, spec.program, spec.layout, spec.doc)
    text = "\n".join(lines) + "\n"
    split = split_function(text) if large and printer.decorator else None
    if split is not None and (split.distinct > NUMBA_MAX_STATEMENTS or split.widest > MAX_INTERFACE):
        return print_function(spec, "numpy", helpers)
    if split is not None:
        decorator = printer.decorator
        plain = getattr(printer, "fused_decorator", decorator) if "prange" in decorator else decorator
        parts = [(decorator if "numba.prange(" in source else plain) + "\n" + source for _, source in split.helpers]
        text = "\n\n\n".join([*parts, decorator + "\n" + split.function])
    elif printer.decorator:
        text = printer.decorator + "\n" + text
    if helpers is not None:  # those the text still calls (a loop printed twice may have swapped one out)
        for name, module in printer.helpers.items():
            # a helper both back ends name alike (check_shape): a Numba module keeps Numba's, which
            # a function printed as NumPy statements (too large for Numba) can call from Python too
            keeps_numba = helpers.get(name, "").startswith("numba_") and not module.startswith("numba_")
            if re.search(rf"\b{name}\(", text) and not keeps_numba:
                helpers[name] = module
    return text


def function_sources(specs: Sequence[FunctionSpec], backend: str, helpers: dict[str, str]) -> list[str]:
    """Each function's source, in order; one built on another (``grad``, a scalar ``vjp``) is compiled like it.

    A Numba function too large for Numba is printed as NumPy statements, run
    by Python; a Numba function that called it would fail to type, so the
    functions built on it are plain Python too.
    """
    printed: dict[str, str] = {}
    for spec in specs:
        plain = spec.built_on is not None and not printed[spec.built_on].startswith("@numba")
        printed[spec.name] = print_function(spec, "numpy" if plain else backend, helpers).rstrip("\n")
    return list(printed.values())


def helper_sources(helpers: dict[str, str], standalone: bool) -> list[str]:
    """Import lines for the support helpers, or (standalone) copies of their source.

    A helper's own dependencies are listed in its module's ``REQUIRES``
    mapping (name -> names), and come first.
    """
    ordered: list[tuple[str, str]] = []
    stack = sorted(helpers.items())
    seen: set[str] = set()
    while stack:
        name, module_name = stack.pop(0)
        if name in seen:
            continue
        seen.add(name)
        module = importlib.import_module(f"diffc.support.{module_name}")
        for dep in getattr(module, "REQUIRES", {}).get(name, ()):
            if dep not in seen:
                stack.append((dep, module_name))
        ordered.append((name, module_name))
    if not standalone:  # import what the code calls; the helpers' own dependencies come with them
        by_module: dict[str, list[str]] = {}
        for name, module_name in sorted(helpers.items()):
            by_module.setdefault(module_name, []).append(name)
        return [f"from diffc.support.{m} import {', '.join(sorted(names))}" for m, names in sorted(by_module.items())]
    sources = []
    for name, module_name in reversed(ordered):  # dependencies first
        module = importlib.import_module(f"diffc.support.{module_name}")
        sources.append(inspect.getsource(getattr(module, name).py_func if hasattr(getattr(module, name), "py_func")
                                         else getattr(module, name)).rstrip("\n"))
    return sources


def _used(line: str, texts: Sequence[str]) -> bool:
    """Whether the name an import line binds is read in ``texts``.

    ``np`` of ``import numpy as np`` is read as ``np.``; ``ClassVar`` of
    ``from typing import ClassVar`` as the bare name.
    """
    name = re.escape(line.split()[-1])
    after = r"\b" if line.startswith("from ") else r"\."
    return any(re.search(rf"(?<![\w.]){name}{after}", text) for text in texts)


def _grouped(imports: list[str]) -> list[str]:
    """The standard library's imports, a blank line, then the rest (isort's order; the printers list them so)."""
    first = [line for line in imports if line.split()[1].split(".")[0] in sys.stdlib_module_names]
    third = [line for line in imports if line not in first]
    return [*first, "", *third] if first and third else imports


def render_module(specs: Sequence[FunctionSpec], backend: str, doc: str, standalone: bool,
                  python: Sequence[str] = ()) -> str:
    """A whole module: docstring, imports, ``ShapeError``, then each function (``python``: plain ones, last).

    A standalone module (``diffc emit``) needs nothing of diffc: it defines its
    own ``ShapeError``; a module diffc loads itself imports diffc's.
    """
    printer = printer_for(backend)
    doc = docstring(doc)
    parts = [f'"""{doc}"""' if "\n" not in doc else f'"""{doc}\n"""', ""]
    helpers: dict[str, str] = {}
    functions = function_sources(specs, backend, helpers)
    support = helper_sources(helpers, standalone)
    # scalar-only code may not use NumPy at all: an unused import would fail a linter (F401); the
    # optional ones (scipy.special, math) only when something calls them (copied helpers included)
    imports = [line for line in printer.imports
               if line == "import numba" or _used(line, [*functions, *support, *python])]
    numba_guarded = standalone and "import numba" in imports  # a standalone module says what is missing
    if numba_guarded:
        imports.remove("import numba")
    parts += _grouped(imports)
    if numba_guarded:
        parts += ["", NUMBA_MISSING, "", "", STANDALONE_SHAPE_ERROR]
    elif standalone:
        parts += ["", "", STANDALONE_SHAPE_ERROR]
    elif any("raise ShapeError(" in text for text in functions):
        parts += ["", "from diffc.errors import ShapeError"]
    if support and not standalone:
        parts += [""] + support
    for text in [*(support if standalone else []), *functions, *python]:
        parts += ["", "", text]
    return "\n".join(parts) + "\n"
