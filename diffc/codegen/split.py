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
fused loops alike, and whatever the loop printer prints. A statement moves
with the comment lines right above it (the rule comments of adjoint
statements, ``# mul switches: e = c * d``), so a split function reads as the
whole one did; a helper shared by several parts carries the comments of its
first occurrence, whose names it is written in.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
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
    spans: list[tuple[int, int, int]] = field(default_factory=list)  # each float's (line, start, end) in the text


class _Shape:
    """A part's shape: its syntax with variables numbered by first appearance and float constants blanked.

    Two parts with the same shape are the same code up to names and floats. The
    walk visits fields in ``ast``'s order and copies nothing (parts are many;
    this is a hot path); where each float stands in the text (``spans``) lets a
    helper take the floats that differ between occurrences as parameters.
    """

    def __init__(self, local: set[str]) -> None:
        self.local = local
        self.names: dict[str, int] = {}
        self.floats: list[float] = []
        self.spans: list[tuple[int, int, int]] = []
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
            self.spans.append((node.lineno, node.col_offset, node.end_col_offset or node.col_offset))
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
    docstring_end = (fn.body[0].end_lineno or 0) if _is_docstring(fn.body[0]) else 0
    comments = {k for k, line in enumerate(lines, 1) if k > docstring_end and line.lstrip().startswith("#")}

    def start(stmt: ast.stmt) -> int:
        """The first line of ``stmt`` and of the comment lines right above it (its rule comment)."""
        first = stmt.lineno
        while first - 1 in comments:
            first -= 1
        return first

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

    patched: dict[int, str] = {}  # line number -> its text with some floats replaced by parameters

    def source(first: int, last: int, indent: str, strip: int) -> list[str]:
        return [indent + patched.get(k, lines[k - 1])[strip:] for k in range(first, last + 1)]

    def part(stmts: list[ast.stmt], indent: str) -> None:
        count = sum(size(s) for s in stmts)
        if count < MIN_PART:
            for s in stmts:
                pieces.extend(source(start(s), s.end_lineno or s.lineno, indent, s.col_offset))
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
        pieces.append(Part(stmts, indent, reads, outs, key, shape.floats, shape.spans))

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
            if n > limit and _splittable(s, lines, start):
                pieces.extend(source(start(s), start(s.body[0]) - 1, indent, s.col_offset))
                block(s.body, indent + "    ")
                if isinstance(s, ast.If) and s.orelse:
                    pieces.append(indent + "else:")
                    block(s.orelse, indent + "    ")
            else:
                pieces.extend(source(start(s), s.end_lineno or s.lineno, indent, s.col_offset))
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
        patched.clear()
        for k, constant in sorted(constants.items(), key=lambda item: first.spans[item[0]], reverse=True):
            line, begin, end = first.spans[k]  # right to left along a line: the offsets before stay valid
            text_bytes = patched.get(line, lines[line - 1]).encode()  # ast's offsets count UTF-8 bytes
            patched[line] = (text_bytes[:begin] + constant.encode() + text_bytes[end:]).decode()
        body: list[str] = []
        for s in first.stmts:
            body += source(start(s), s.end_lineno or s.lineno, "    ", s.col_offset)
        patched.clear()
        if first.outs:
            body.append(f"    return {', '.join(first.outs)}")
        helpers.append((name, "\n".join([f"def {name}({args}):", *body]) + "\n"))
        names[key] = (name, varying)
        distinct += sum(size(s) for s in first.stmts)
    out = lines[:fn.body[0].end_lineno or 1] if _is_docstring(fn.body[0]) else lines[:start(fn.body[0]) - 1]
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


def _splittable(stmt: ast.stmt, lines: list[str], start: Callable[[ast.stmt], int]) -> bool:
    """A loop, or an ``if`` (with a plain ``else:``), whose body can be split in place."""
    if isinstance(stmt, (ast.For, ast.While)):
        return not stmt.orelse
    if isinstance(stmt, ast.If):
        return not stmt.orelse or lines[start(stmt.orelse[0]) - 2].strip() == "else:"
    return False


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _bits(value: float) -> str:
    return value.hex() if value == value else "nan"
