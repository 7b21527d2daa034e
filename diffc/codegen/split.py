"""Split a large generated function into helper functions of bounded size.

Numba's compile time grows faster than linearly with the size of a function
(type inference, SSA passes and LLVM walk the whole function), so a
20,000-step chain printed as one ``@numba.njit`` function never finishes
compiling. Here the printed text of such a function is cut into *parts* of at
most ``limit`` statements each. A part becomes a helper ``<fn>_part<k>`` that
takes the values it reads (defined earlier) and returns the values later code
reads; the function itself keeps its entry checks, its loops' headers, its
``return``, and one call per part. A loop whose body is too long keeps its
header and calls parts inside the loop, so a fused loop stays one pass.

Parts that are the same code up to variable names and float constants (the
steps of an unrolled loop, a repeated pattern of assignment lines) are one
helper, called with each occurrence's own values, and Numba compiles it once:
the compile time then follows the number of *different* parts, not the length
of the program. :func:`split_function` reports that number, so the caller can
decide what to do with a program that is large and does not repeat.

This works on the printed text (through ``ast``), so it splits statements and
fused loops alike, and whatever the loop printer prints.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

PART_LIMIT = 120  # statements per part (a multiple of the small periods of repeated code: 1-6, 8, 10, 12, 15)
MIN_PART = 8  # fewer statements left between parts stay inline


SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)  # statements that hold no statement
_ESCAPES = (ast.Return, ast.Break, ast.Continue, ast.FunctionDef, ast.Global, ast.Nonlocal)


def _nested(stmt: ast.stmt) -> Iterator[ast.stmt]:
    """The statements directly inside ``stmt`` (loop and ``if`` bodies, ``try`` blocks)."""
    for name in ("body", "orelse", "finalbody"):
        yield from getattr(stmt, name, ())
    for handler in getattr(stmt, "handlers", ()):
        yield from handler.body


def size(stmt: ast.stmt) -> int:
    """Statements in ``stmt``, nested ones included (most are assignments: 1, without a walk)."""
    if isinstance(stmt, SIMPLE):
        return 1
    return 1 + sum(size(s) for s in _nested(stmt))


def _extractable(stmt: ast.stmt) -> bool:
    """Whether ``stmt`` can move into a helper: nothing in it leaves the function or the loop.

    Only statements are looked at: generated code never yields.
    """
    if isinstance(stmt, SIMPLE):
        return True
    return not isinstance(stmt, _ESCAPES) and all(_extractable(s) for s in _nested(stmt))


def _events(node: ast.AST) -> Iterator[tuple[str, bool]]:
    """``(name, is_store)`` for every variable in ``node``, in the order they are evaluated."""
    if isinstance(node, ast.Assign):
        yield from _events(node.value)
        for target in node.targets:
            yield from _events(target)
    elif isinstance(node, ast.AugAssign):
        yield from _events(node.value)
        if isinstance(node.target, ast.Name):
            yield node.target.id, False
        yield from _events(node.target)
    elif isinstance(node, ast.AnnAssign):
        if node.value is not None:
            yield from _events(node.value)
        yield from _events(node.target)
    elif isinstance(node, ast.For):
        yield from _events(node.iter)
        yield from _events(node.target)
        for stmt in node.body + node.orelse:
            yield from _events(stmt)
    elif isinstance(node, ast.Name):
        yield node.id, isinstance(node.ctx, ast.Store)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _events(child)


@dataclass
class Part:
    """One occurrence of a part: its statements, what it reads and what it returns."""

    stmts: list[ast.stmt]
    indent: str
    params: list[str]
    outs: list[str]
    key: tuple[object, ...] = ()
    floats: list[float] = field(default_factory=list)


class _Shape:
    """A part's shape: its syntax with variables numbered by first appearance and float constants blanked.

    Two parts with the same shape are the same code up to names and floats. The
    walk visits fields in ``ast``'s order, the order :class:`_Floats` numbers
    the constants in, and copies nothing (parts are many; this is a hot path).
    """

    def __init__(self, local: set[str]) -> None:
        self.local = local
        self.names: dict[str, int] = {}
        self.floats: list[float] = []
        self.tokens: list[object] = []

    def visit(self, node: ast.AST) -> None:
        tokens = self.tokens
        if isinstance(node, ast.Name):
            name = node.id
            tokens.append((self.names.setdefault(name, len(self.names)) if name in self.local else name,
                           type(node.ctx)))
            return
        if isinstance(node, ast.Constant) and type(node.value) is float:
            self.floats.append(node.value)
            tokens.append(float)
            return
        tokens.append(type(node))
        for _, value in ast.iter_fields(node):
            if isinstance(value, list):
                tokens.append(len(value))
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
                    else:
                        tokens.append(repr(item))
            elif isinstance(value, ast.AST):
                self.visit(value)
            else:  # by repr: True == 1 and 0.0 == -0.0 as keys, but they are different code
                tokens.append(repr(value))


class _Floats(ast.NodeTransformer):
    """The float constants at the given positions (walk order of :class:`_Shape`) become parameters."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.count = 0

    def visit_Constant(self, node: ast.Constant) -> ast.AST:  # noqa: N802
        if type(node.value) is float:
            k = self.count
            self.count += 1
            if k in self.names:
                return ast.Name(self.names[k], ast.Load())
        return node


@dataclass
class Split:
    """The text of the split function and its helpers, and how much code Numba has to compile."""

    helpers: list[tuple[str, str]]  # (name, source without decorator)
    function: str  # the function's own source, without decorator
    distinct: int  # statements of the function and of its different helpers
    widest: int  # the most values a part takes and returns


def split_function(text: str, limit: int = PART_LIMIT) -> Split | None:
    """``text`` (one ``def``, without decorator) cut into parts of at most ``limit`` statements.

    ``None`` when the function is small enough as it is.
    """
    tree = ast.parse(text)
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    if sum(size(s) for s in fn.body) <= limit:
        return None
    lines = text.splitlines()
    params = [a.arg for a in fn.args.args]
    local = set(params)
    loads: dict[str, int] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):  # x += v reads x too
            loads[node.target.id] = loads.get(node.target.id, 0) + 1
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                local.add(node.id)
            else:
                loads[node.id] = loads.get(node.id, 0) + 1
    pieces: list[str | Part] = []

    def source(first: int, last: int, indent: str, strip: int) -> list[str]:
        return [indent + line[strip:] for line in lines[first - 1:last]]

    def part(stmts: list[ast.stmt], indent: str) -> None:
        count = sum(size(s) for s in stmts)
        if count < MIN_PART:
            for s in stmts:
                pieces.extend(source(s.lineno, s.end_lineno or s.lineno, indent, s.col_offset))
            return
        seen: set[str] = set()
        reads: list[str] = []
        stored: list[str] = []
        inside: dict[str, int] = {}
        for s in stmts:
            for name, store in _events(s):
                if name not in local:
                    continue
                if not store:
                    inside[name] = inside.get(name, 0) + 1
                if name not in seen:
                    seen.add(name)
                    (stored if store else reads).append(name)
                elif store and name not in stored:
                    stored.append(name)
        outs = [n for n in stored if loads.get(n, 0) > inside.get(n, 0) or n in reads]
        shape = _Shape(local)
        for s in stmts:
            shape.visit(s)
        key = (*shape.tokens, tuple(shape.names[n] for n in reads), tuple(shape.names[n] for n in outs))
        pieces.append(Part(stmts, indent, reads, outs, key, shape.floats))

    def block(stmts: list[ast.stmt], indent: str) -> None:
        group: list[ast.stmt] = []
        count = 0
        for s in stmts:
            n = size(s)
            if n <= limit and _extractable(s):
                if count + n > limit:
                    part(group, indent)
                    group, count = [], 0
                group.append(s)
                count += n
                continue
            if group:
                part(group, indent)
                group, count = [], 0
            if n > limit and _splittable(s, lines):
                pieces.extend(source(s.lineno, s.body[0].lineno - 1, indent, s.col_offset))
                block(s.body, indent + "    ")
                if isinstance(s, ast.If) and s.orelse:
                    pieces.append(indent + "else:")
                    block(s.orelse, indent + "    ")
            else:
                pieces.extend(source(s.lineno, s.end_lineno or s.lineno, indent, s.col_offset))
        if group:
            part(group, indent)

    block(fn.body[1:] if _is_docstring(fn.body[0]) else fn.body, "    ")
    taken = local | {fn.name}
    by_key: dict[tuple[object, ...], list[Part]] = {}
    for piece in pieces:
        if isinstance(piece, Part):
            by_key.setdefault(piece.key, []).append(piece)
    helpers: list[tuple[str, str]] = []
    names: dict[tuple[object, ...], tuple[str, list[int]]] = {}  # key -> (helper, positions of the float parameters)
    distinct = 0
    for key, parts in by_key.items():
        name = f"{fn.name}_part{len(helpers) + 1}"
        while name in taken:
            name += "_"
        taken.add(name)
        first = parts[0]
        varying = [k for k, value in enumerate(first.floats)
                   if any(_bits(p.floats[k]) != _bits(value) for p in parts[1:])]
        constants: dict[int, str] = {}
        for k in varying:
            constant = f"c{len(constants)}"
            while constant in taken:
                constant += "_"
            constants[k] = constant
        args = ", ".join(first.params + list(constants.values()))
        body: list[str] = []
        if constants:  # one numbering over the whole part, as in the key
            floats = _Floats(constants)
            body = ["    " + line for s in first.stmts
                    for line in ast.unparse(floats.visit(copy.deepcopy(s))).splitlines()]
        else:
            for s in first.stmts:
                body += source(s.lineno, s.end_lineno or s.lineno, "    ", s.col_offset)
        if first.outs:
            body.append(f"    return {', '.join(first.outs)}")
        helpers.append((name, "\n".join([f"def {name}({args}):", *body]) + "\n"))
        names[key] = (name, varying)
        distinct += sum(size(s) for s in first.stmts)
    out = lines[:fn.body[0].end_lineno or 1] if _is_docstring(fn.body[0]) else lines[:fn.body[0].lineno - 1]
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        name, varying = names[piece.key]
        call = f"{name}({', '.join(piece.params + [repr(piece.floats[k]) for k in varying])})"
        target = ", ".join(piece.outs)  # one value comes back bare, several as a tuple
        out.append(f"{piece.indent}{target} = {call}" if piece.outs else f"{piece.indent}{call}")
    distinct += len(out)
    widest = max((len(p.params) + len(p.outs) for ps in by_key.values() for p in ps), default=0)
    return Split(helpers, "\n".join(out) + "\n", distinct, widest)


def _splittable(stmt: ast.stmt, lines: list[str]) -> bool:
    """A loop, or an ``if`` (with a plain ``else:``), whose body can be split in place."""
    if isinstance(stmt, (ast.For, ast.While)):
        return not stmt.orelse
    if isinstance(stmt, ast.If):
        return not stmt.orelse or lines[stmt.orelse[0].lineno - 2].strip() == "else:"
    return False


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _bits(value: float) -> str:
    return value.hex() if value == value else "nan"
