"""``diffc emit`` and ``diffc show``: a thin layer over the public API.

Everything here can be done from Python with ``diffc.emit``,
``diffc.compile(...).grad_source`` or ``.to_dot()``; the CLI only reads
arguments, finds the source, and turns a user's mistake into one clear line
on standard error and exit status 2 (``--debug`` shows the traceback).
Standard output carries the requested text alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import diffc
from diffc import viz
from diffc.api import emit
from diffc.derivatives import EMITTABLE as DERIVATIVES
from diffc.errors import DiffcError, ParseError

EXAMPLES = {
    "emit": """examples:
  diffc emit "(a + b) * (b + 1)" -o e.py
  diffc emit model.txt --args "w:f64[n] b:f64 X:f64[m,n] y:f64[m]" --wrt w,b
  diffc emit losses.py:logistic --args "w:f64[n] X:f64[m,n] y:f64[m]" --backend numpy
  diffc emit "sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)" --args "x:f64[n]" --derivative hvp,hessian""",
    "show": """examples:
  diffc show "(a + b) * (b + 1)" --what grad-source
  diffc show model.txt --args "w:f64[n] X:f64[m,n]" --what dot | dot -Tpng > graph.png
  diffc show "(a + b) * (b + 1)" --what picture --at a=2,b=1 -o graph.svg""",
}

WHAT = ("ir", "grad-ir", "source", "grad-source", "jvp-source", "hvp-source", "dot", "picture")


class UsageError(Exception):
    """A mistake in the command line itself (a missing file, a bad --args)."""


def parse_args_option(text: str | None) -> dict[str, str] | None:
    """``"w:f64[n] b:f64 X:f64[m, n]"`` -> ``{"w": "f64[n]", "b": "f64", "X": "f64[m,n]"}``.

    A name without a type is an f64 scalar. Sizes inside brackets may be
    separated by commas with or without spaces.
    """
    if text is None:
        return None
    merged, depth, current = [], 0, ""
    for ch in text:  # split on spaces outside brackets
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch.isspace() and depth == 0:
            if current:
                merged.append(current)
            current = ""
        elif not ch.isspace():
            current += ch
    if current:
        merged.append(current)
    types: dict[str, str] = {}
    for item in merged:
        name, _, kind = item.partition(":")
        if not name.isidentifier():
            raise UsageError(f"--args: {item!r} is not NAME:TYPE (for example w:f64[n])")
        if name in types:
            raise UsageError(f"--args: {name!r} is given twice")
        types[name] = kind or "f64"
    if not types:
        raise UsageError("--args is empty")
    return types


def load_source(source: str, args: dict[str, str] | None = None) -> Any:
    """An expression string, a file of assignment lines, or ``file.py:function``.

    A SOURCE is a file when a file of that name exists and its text parses;
    otherwise it is an expression when it parses as one (``"a / b"`` is an
    expression although it contains a ``/``); otherwise the error names what
    was missing. When both readings were possible, or a file was passed over,
    one line on standard error says which was taken.
    """
    path, sep, function = source.rpartition(":")
    if sep and path.endswith(".py") and function.isidentifier() and os.path.isfile(path):
        return _import_function(path, function)
    file_text = _read_if_file(source)
    if file_text is not None and _parses(file_text, args):
        _note(f"read {source!r} as a file" + (" (it also parses as an expression: write it in parentheses "
                                              "to compile the expression)" if _parses(source, args) else ""))
        return file_text
    looks_like_path = (sep and path.endswith(".py")) or source.endswith((".txt", ".py")) or os.sep in source
    if file_text is not None or looks_like_path:
        if _parses(source, args):
            _note(f"took {source!r} as an expression" + (" (a file of that name exists, but its text does not "
                                                          "parse)" if file_text is not None else ""))
            return source
        if file_text is not None:
            return file_text  # the file's own parse error, with its line and column, is the useful one
        raise UsageError(f"no such file: {path if sep and path.endswith('.py') else source}")
    return source


def _read_if_file(source: str) -> str | None:
    """The text of the file named ``source``, or None (no such file, or not a readable text file)."""
    if "\n" in source or "\0" in source or not os.path.isfile(source):
        return None
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _parses(text: str, args: dict[str, str] | None) -> bool:
    """The text front end accepts ``text`` (the user's text is parsed, never evaluated)."""
    from diffc.frontends.text import parse_text

    try:
        parse_text(text, args)
    except DiffcError:
        return False
    return True


def _note(message: str) -> None:
    print(f"diffc: {message}", file=sys.stderr)


def _import_function(path: str, function: str) -> Any:
    """Import the user's module as their own code would be, its folder first on sys.path."""
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise UsageError(f"importing {path} failed: {type(error).__name__}: {error}") from error
    finally:
        sys.path.remove(folder)
    fn = getattr(module, function, None)
    if fn is None or not callable(fn):
        raise UsageError(f"{path} has no function {function!r}")
    return fn


def _wrt(text: str | None) -> str | tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UsageError("--wrt is empty")
    return names[0] if len(names) == 1 else names  # as wrt="w" in Python: one gradient comes back bare


def regenerate_command(ns: argparse.Namespace) -> str:
    """The command that regenerates the module, without ``-o`` so the bytes match stdout."""
    words = ["diffc", "emit", ns.source]
    for flag, value in (("--args", ns.args), ("--wrt", ns.wrt), ("--name", ns.name),
                        ("--derivative", ns.derivative)):
        if value:
            words += [flag, value]
    if ns.backend != "numba":
        words += ["--backend", ns.backend]
    if ns.no_comments:
        words.append("--no-comments")
    return shlex.join(words)


def run_emit(ns: argparse.Namespace) -> str:
    args = parse_args_option(ns.args)
    return emit(load_source(ns.source, args), args=args, wrt=_wrt(ns.wrt), name=ns.name,
                backend=ns.backend, command=regenerate_command(ns), annotate=not ns.no_comments,
                derivatives=_derivatives(ns.derivative))


def _derivatives(text: str | None) -> tuple[str, ...] | None:
    """``--derivative jvp,hvp`` -> ``("jvp", "hvp")``; each name checked here, so the message is the CLI's."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in DERIVATIVES]
    if unknown or not names:
        raise UsageError(f"--derivative: {unknown[0] if unknown else text!r} is not one of {', '.join(DERIVATIVES)} "
                         "(several: comma-separated, e.g. jvp,hvp)")
    return names


def _at(text: str | None) -> dict[str, float] | None:
    """``--at a=2,b=1`` -> ``{"a": 2.0, "b": 1.0}``: scalar arguments for a picture's values."""
    if text is None:
        return None
    point = {}
    for item in text.split(","):
        name, _, number = item.partition("=")
        try:
            point[name.strip()] = float(number)
        except ValueError:
            raise UsageError(f"--at: {item!r} is not NAME=NUMBER (for example a=2,b=1)") from None
    return point


def run_show(ns: argparse.Namespace) -> str | None:
    """The text to print; None when a picture was drawn into ``-o`` (svg, png or pdf by its suffix)."""
    args = parse_args_option(ns.args)
    f = diffc.compile(load_source(ns.source, args), wrt=_wrt(ns.wrt), args=args, backend=ns.backend,
                      annotate=not ns.no_comments)
    at = _at(ns.at)
    if ns.what == "picture" and ns.output:
        f.render(ns.output, at=at, grad=True)
        return None
    picture = lambda: viz.run_dot(f.to_dot(grad=True, at=at), "svg").decode()  # noqa: E731
    shown = {"ir": lambda: f.ir, "grad-ir": lambda: f.grad_ir, "source": lambda: f.source,
             "grad-source": lambda: f.grad_source, "jvp-source": lambda: f.jvp_source,
             "hvp-source": lambda: f.hvp_source, "dot": lambda: f.to_dot(grad=True, at=at),
             "picture": picture}[ns.what]()
    return shown if shown.endswith("\n") else shown + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffc", description="Compile differentiable expressions to "
                                     "readable gradient code.", epilog=EXAMPLES["emit"],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"diffc {diffc.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("emit", "write a standalone gradient module"),
                            ("show", "print the IR, the generated source or a Graphviz graph")):
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("source", help='an expression ("(a + b) * (b + 1)"), a file of assignment lines '
                         "(model.txt), or path/to/file.py:function")
        sub.add_argument("--args", help='argument types, e.g. "w:f64[n] b:f64 X:f64[m,n]" (also fixes the order)')
        sub.add_argument("--wrt", help="comma-separated names to differentiate (default: every float input)")
        sub.add_argument("--backend", choices=("numba", "numpy"), default="numba",
                         help="numba (default) or numpy (pure NumPy, no Numba needed)")
        sub.add_argument("--debug", action="store_true", help="show Python tracebacks")
        sub.add_argument("--no-comments", action="store_true",
                         help="leave out the comment naming each adjoint statement's rule")
        if name == "emit":
            sub.add_argument("--name", help="the function's name in docstrings (default: from the source)")
            sub.add_argument("--derivative", help="the derivatives to emit, comma-separated: " + "|".join(DERIVATIVES)
                             + " (default: grad and vjp; jacobian brings vjp and jvp, hessian brings hvp)")
        else:
            sub.add_argument("--what", choices=WHAT, required=True, help="what to print (picture: the graph "
                             "with derivatives on its edges, drawn by Graphviz's dot into -o FILE.svg|png|pdf)")
            sub.add_argument("--at", help="for dot and picture: argument values, e.g. a=2,b=1 (writes every "
                             "node's value and adjoint)")
        sub.add_argument("-o", "--output", help="write to this file (default: standard output)")
    return parser


def _report(error: BaseException, ns: argparse.Namespace) -> None:
    if isinstance(error, ParseError) and error.source_line:
        print(f"diffc: parse error: {error}", file=sys.stderr)
        print(f"    {error.source_line}", file=sys.stderr)
        print(f"    {' ' * max(error.column - 1, 0)}^", file=sys.stderr)
    else:
        print(f"diffc: {error}", file=sys.stderr)
    if getattr(ns, "debug", False):
        traceback.print_exception(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        text = run_emit(ns) if ns.command == "emit" else run_show(ns)
    except (UsageError, DiffcError, TypeError, ValueError) as error:
        _report(error, ns)
        return 2
    output = getattr(ns, "output", None)
    if output:
        if text is not None:  # None: the picture is drawn into output already
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        print(f"diffc: wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text or "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
