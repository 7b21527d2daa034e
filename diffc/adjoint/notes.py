"""The note on an adjoint statement: the rule it applies and the forward statement it came from.

``# mul switches: e = c * d`` says that the line below it is the product
rule of ``e = c * d`` (the notes' "multiplication switches"). The reverse
pass writes one note per adjoint node it creates into ``graph.notes``;
passes carry the notes along with the nodes (diffc/passes/rebuild.py), and
the printers print them above the statements (``annotate=False``: not).

A forward statement is shown in the user's names where it has them, else as
a short formula of the values it reads (``y * log(a)``), at most
:data:`FORMULA_DEPTH` levels deep.
"""

from __future__ import annotations

from diffc.adjoint.rules import rule_name
from diffc.ir import Node, Op, dim_text, float_text

FORMULA_DEPTH = 2
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


def statement(node: Node) -> str:
    """``e = c * d``, or the formula alone for a value the user did not name."""
    name = node.graph.names.get(node)
    text = formula(node)
    return f"{name} = {text}" if name else text


def note(node: Node) -> str:
    """``mul switches: e = c * d``: the rule of ``node``'s adjoint and the statement it differentiates."""
    return f"{rule_name(node.op)}: {statement(node)}"
