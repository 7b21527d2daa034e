"""The note on an adjoint statement: the rule it applies and the forward statement it came from.

``# mul switches: e = c * d`` says that the line below it is the product
rule of ``e = c * d`` (the notes' "multiplication switches"). The reverse
pass writes one note per adjoint node it creates into ``graph.notes``;
passes carry the notes along with the nodes (diffc/passes/rebuild.py), and
the printers print them above the statements (``annotate=False``: not).

A forward statement is the user's own: before any pass rewrites the program,
:func:`record_statements` writes down each statement the user's code made
(``a = 1.0 / (1.0 + exp(-z))``: a named value, or the returned one) and the
statements it reads. Passes carry that record along with the nodes (as they
carry names), so a note made after the stabilizing rewrite still names the
user's statements: the adjoint of ``softplus(-z)`` (the stable form of
``log(a)``) is noted as coming from ``a = ...`` and ``loss = ...``. Without a
record (a program built by hand), a node is shown as a short formula of the
values it reads (``y * log(a)``), at most :data:`FORMULA_DEPTH` levels deep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diffc.adjoint.rules import rule_name
from diffc.ir import Node, Op, Program, dim_text, float_text, reachable, users

FORMULA_DEPTH = 2
STATEMENT_DEPTH = 6  # a user's statement is shown whole, up to this depth and STATEMENT_CHARS characters
STATEMENT_CHARS = 72
READS_CAP = 4  # statements remembered per value (what it reads, what reads it): a wide sum stays linear
PATH_DEPTH = 3  # statements looked through between a rewritten value and the statements it belongs to
# infix ops as the comments write them; other ops are written as calls: exp(z), maximum(z, 0)
SYMBOLS: dict[Op, str] = {Op.ADD: "+", Op.SUB: "-", Op.MUL: "*", Op.DIV: "/", Op.MATMUL: "@", Op.POW: "**",
                          Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<=", Op.EQ: "==", Op.NE: "!="}
# how tightly each infix op binds (Python's order): a + b * c, (a + b) * c
BINDS: dict[Op, int] = {Op.ADD: 1, Op.SUB: 1, Op.MUL: 2, Op.DIV: 2, Op.MATMUL: 2, Op.NEG: 3, Op.POW: 4,
                        **{op: 0 for op in (Op.GT, Op.GE, Op.LT, Op.LE, Op.EQ, Op.NE)}}
ATOM = 5
CALLS: dict[Op, str] = {Op.MAX: "maximum", Op.MIN: "minimum", Op.AMAX: "max", Op.AMIN: "min"}


def operand(x: Node, depth: int, binds: int = 0) -> str:
    """``x`` as a user reads it in a formula: its name, a number, or its own formula.

    ``binds``: how tightly the op around it binds; a looser formula gets parentheses.
    """
    name = x.graph.names.get(x)
    if name is not None:
        return name
    if x.op is Op.CONST:
        if x.value.ndim:
            return "const"
        text = float_text(float(x.value)) if x.dtype.is_float else str(x.value.item())
        return f"({text})" if text.startswith("-") and binds >= BINDS[Op.NEG] else text
    if x.op is Op.DIM:
        return dim_text(x.attr("dim"))
    if depth <= 0:
        return "..."
    text = formula(x, depth - 1)
    return f"({text})" if BINDS.get(x.op, ATOM) < binds else text


def formula(node: Node, depth: int = FORMULA_DEPTH) -> str:
    """``c * d``, ``exp(z)``, ``-z``: what ``node`` computes from its operands."""
    binds = BINDS.get(node.op, ATOM)
    if node.op in SYMBOLS and len(node.inputs) == 2:
        x, y = node.inputs  # the right operand binds one tighter: a - (b - c)
        return f"{operand(x, depth, binds)} {SYMBOLS[node.op]} {operand(y, depth, binds + 1)}"
    if node.op is Op.NEG:
        return f"-{operand(node.inputs[0], depth, binds)}"
    args = [operand(x, depth) for x in node.inputs]
    if node.op is Op.TRANSPOSE:
        return f"{operand(node.inputs[0], depth, ATOM)}.T"
    return f"{CALLS.get(node.op, node.op.value)}({', '.join(args)})"


@dataclass(eq=False)  # compared by identity: a chain of 20,000 statements never compares recursively
class Statement:
    """One statement of the user's code: its text and the statements whose values it reads."""

    text: str  # "a = 1.0 / (1.0 + exp(-z))"; "" for an input (it ends a path, it is never shown)
    reads: tuple[Statement, ...]
    order: int  # position in the user's program: comments list statements in the order they ran


def short(text: str, limit: int = STATEMENT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def record_statements(program: Program) -> None:
    """Write down the user's statements of ``program`` (``graph.statements``), before any pass rewrites it.

    A statement is a value the user named (``z = X @ w + b``), an input, or
    the returned value (under the output's name). Its reads are the nearest
    statements below it, looked through unnamed values.
    """
    graph = program.graph
    out, out_name = program.outputs[0], program.output_names[0]
    reads: dict[Node, tuple[Statement, ...]] = {}
    for order, node in enumerate(reachable([*program.inputs, *program.outputs])):
        if node in graph.statements:
            continue
        below = _below(node, graph.statements, reads)
        name = graph.names.get(node) or (out_name if node is out else None)
        if node.op is Op.INPUT:
            graph.statements[node] = Statement("", (), order)
        elif name is not None and node.op not in (Op.CONST, Op.DIM):
            text = short(f"{name} = {formula(node, STATEMENT_DEPTH)}")
            graph.statements[node] = Statement(text, below[:2 * READS_CAP], order)
        else:
            reads[node] = below[:READS_CAP]


def _below(node: Node, statements: dict[Node, Statement],
           reads: dict[Node, tuple[Statement, ...]]) -> tuple[Statement, ...]:
    """The nearest statements under ``node``: its operands' own, or what unnamed operands read (each once)."""
    return tuple(dict.fromkeys(s for x in node.inputs
                               for s in ((statements[x],) if x in statements else reads.get(x, ()))))


class Statements:
    """Which of the user's statements a node of the (rewritten) forward graph belongs to.

    A node belongs to its own statement if it has one, else to the statements
    that read it (its users', looked through unnamed values). A rewritten node
    may read a statement that its own statement reads only through others
    (``softplus(-z)`` reads ``z``; ``loss`` read it through ``a``): those in
    between are listed too, for they are what the line differentiates.
    """

    def __init__(self, program: Program, forward: Sequence[Node]) -> None:
        graph = program.graph
        self.known = bool(graph.statements)
        self.statements = graph.statements
        used_by = users(forward)
        self.owners: dict[Node, tuple[Statement, ...]] = {}
        for node in reversed(forward):  # users first
            own = graph.statements.get(node)
            if own is not None and own.text:
                self.owners[node] = (own,)
            else:
                self.owners[node] = tuple(dict.fromkeys(s for u in used_by.get(node, ()) for s in self.owners[u]))[
                    :READS_CAP]
        self.reads: dict[Node, tuple[Statement, ...]] = {}
        for node in forward:
            self.reads[node] = _below(node, graph.statements, self.reads)[:READS_CAP]

    def of(self, node: Node) -> list[Statement]:
        """The user's statements that ``node``'s adjoint differentiates, in the order they ran."""
        found: dict[Statement, None] = {}
        targets = set(self.reads.get(node, ()))
        for owner in self.owners.get(node, ()):
            found[owner] = None
            if not targets <= set(owner.reads) | {owner}:
                for s in between(owner, targets):
                    found[s] = None
        return sorted(found, key=lambda s: s.order)


def between(top: Statement, targets: set[Statement]) -> list[Statement]:
    """The statements on paths from ``top`` down to one of ``targets`` (at most :data:`PATH_DEPTH` deep)."""
    on_path: set[Statement] = set()

    def reaches(s: Statement, depth: int) -> bool:
        if s in targets:
            return True
        if depth == 0:
            return False
        hit = False
        for r in s.reads:
            if reaches(r, depth - 1):
                hit = True
        if hit and s is not top:
            on_path.add(s)
        return hit

    reaches(top, PATH_DEPTH)
    return [s for s in on_path if s.text]


def statement(node: Node) -> str:
    """``e = c * d``, or the formula alone for a value the user did not name."""
    name = node.graph.names.get(node)
    text = formula(node)
    return f"{name} = {text}" if name else text


def note(node: Node, statements: Statements | None = None) -> str:
    """``mul switches: e = c * d``: the rule of ``node``'s adjoint and the statement(s) it differentiates."""
    found = statements.of(node) if statements is not None and statements.known else []
    text = "; ".join(s.text for s in found) if found else statement(node)
    return f"{rule_name(node.op)}: {text}"
