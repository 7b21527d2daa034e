"""Run a generated Numba module as plain Python, without compiling anything.

Why: the loop planner (diffc/codegen/loops.py) decides almost everything the
Numba back end does, and its mistakes (a loop that reads the wrong element, a
chunk bound off by one, a missing partial sum) show in the *Python* meaning of
the generated text. Numba takes one to five seconds to compile a module; run
as Python the same text takes milliseconds, so thousands of random programs
can be checked. Numba's typing is not checked here (the real-Numba tests in
tests/test_differential.py do that on a sample).

How: the module's standalone text (``module_source(..., standalone=True)``,
which carries copies of the support helpers) is compiled with Python's
``compile`` (so an ``IndentationError`` or a ``SyntaxError`` in it surfaces
here) and executed in a fresh namespace whose ``__import__`` hands out a fake
``numba``: ``njit`` returns the function unchanged, ``prange`` is ``range``,
``objmode`` does nothing, and ``config.NUMBA_NUM_THREADS`` is 3 (an odd count,
so chunk bounds ``chunk * n // chunks`` are uneven).

Two adjustments bring Python's meaning closer to Numba's:

- Float literals become ``np.float64`` scalars (an AST pass). In Numba ``0.0``
  is a float64 and ``1.0 / 0.0`` is ``inf`` (``error_model="numpy"``); in Python
  the same division raises ``ZeroDivisionError``, and ``0.0 + np.float32(x)``
  stays float32 (NEP 50) where Numba widens the accumulator to float64.
- ``parallel_threshold``: loops that read rows or call transcendental functions
  choose ``chunks = NUMBA_NUM_THREADS if work >= 2097152 else 1``
  (``PARALLEL_MIN_WORK``). Sizes that large are slow in plain Python, so the
  loader may rewrite the literal ``>= 2097152`` to ``>= <threshold>`` (0 forces
  the chunked branch at every size, 0 and 1 included, which is where chunk
  bounds go wrong).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import re
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from diffc.codegen.loops import PARALLEL_MIN_WORK

FAKE_THREADS = 3


def _njit(*args: Any, **kwargs: Any) -> Any:
    """``@numba.njit`` and ``@numba.njit(...)`` both leave the function as it is."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda fn: fn


@contextlib.contextmanager
def _objmode(**kwargs: Any) -> Iterator[None]:
    """``with numba.objmode(out="float64[::1]"):`` is ordinary Python already."""
    yield


def fake_numba(threads: int = FAKE_THREADS) -> types.ModuleType:
    """A stand-in module with the parts of Numba that generated code and the support helpers use."""
    module = types.ModuleType("numba")
    module.njit = _njit  # type: ignore[attr-defined]
    module.jit = _njit  # type: ignore[attr-defined]
    module.prange = range  # type: ignore[attr-defined]
    module.objmode = _objmode  # type: ignore[attr-defined]
    module.config = types.SimpleNamespace(NUMBA_NUM_THREADS=threads)  # type: ignore[attr-defined]
    module.set_num_threads = lambda count: None  # type: ignore[attr-defined]
    module.get_num_threads = lambda: threads  # type: ignore[attr-defined]
    parallel = types.SimpleNamespace(_iget_num_threads=lambda: threads)  # what diffc's pool_threads() reads
    module.np = types.SimpleNamespace(ufunc=types.SimpleNamespace(parallel=parallel))  # type: ignore[attr-defined]
    module.__version__ = "fake"  # type: ignore[attr-defined]
    return module


class _FloatLiterals(ast.NodeTransformer):
    """``0.5`` -> ``_diffc_f64(0.5)``: Numba's float64 literal, with NumPy's IEEE division."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is float:
            call = ast.Call(func=ast.Name(id="_diffc_f64", ctx=ast.Load()), args=[node], keywords=[])
            return ast.copy_location(call, node)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # f-strings stay text

    def visit_arguments(self, node: ast.arguments) -> ast.AST:
        return node  # a default value may be a float; leave signatures alone

    def visit_keyword(self, node: ast.keyword) -> ast.AST:
        return node  # fastmath={...}, dtype=... stay literal


_THRESHOLD = re.compile(rf">= {PARALLEL_MIN_WORK}\b")


def prepare_text(text: str, parallel_threshold: int | None = None) -> str:
    """The text actually executed: the parallel threshold rewritten when asked (see the module docstring)."""
    if parallel_threshold is not None:
        text = _THRESHOLD.sub(f">= {parallel_threshold}", text)
    return text


def load_text(text: str, parallel_threshold: int | None = None, threads: int = FAKE_THREADS,
              filename: str = "<diffc-generated>") -> dict[str, Any]:
    """Execute generated module text with a fake Numba; returns the module's namespace.

    The text is first compiled as written (a ``SyntaxError`` or
    ``IndentationError`` there is a bug of the generator), then the float
    literal pass is applied and the result executed.
    """
    text = prepare_text(text, parallel_threshold)
    compile(text, filename, "exec")  # the generated text as it is must be valid Python
    tree = ast.fix_missing_locations(_FloatLiterals().visit(ast.parse(text, filename)))
    code = compile(tree, filename, "exec")
    numba = fake_numba(threads)
    real_import = builtins.__import__

    def hooked_import(name: str, globals: Any = None, locals: Any = None,  # noqa: A002
                      fromlist: Any = (), level: int = 0) -> Any:
        if name == "numba" or name.startswith("numba."):
            return numba
        return real_import(name, globals, locals, fromlist, level)

    namespace_builtins = dict(vars(builtins))
    namespace_builtins["__import__"] = hooked_import
    namespace: dict[str, Any] = {"__builtins__": namespace_builtins, "__name__": "diffc_plain_generated",
                                 "_diffc_f64": np.float64}
    exec(code, namespace)  # noqa: S102 - diffc's own generated code, the thing under test
    return namespace


def load_compiled(compiled: Any, parallel_threshold: int | None = None,
                  threads: int = FAKE_THREADS) -> dict[str, Any]:
    """The standalone Numba module of a ``diffc.Compiled`` (declared types), loaded as plain Python."""
    text = compiled._declared().module_source("Differential test module.", standalone=True)
    return load_text(text, parallel_threshold, threads)


def call_plain(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a plain-loaded function with floating-point warnings silenced (Numba raises none either)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)
