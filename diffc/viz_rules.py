"""What the pictures write on each edge: the local partial derivative, one entry per op.

The lecture notes teach reverse mode with a computation graph whose edges
carry the local derivatives (for e = c * d: ∂e/∂c = d, ∂e/∂d = c). This table
is that calculus table, written as text over the names in the picture: a rule
takes the output's name, the inputs' names and the node, and returns one
partial per input (``None``: no derivative flows along that edge, as for a
``where``'s condition). It mirrors :data:`diffc.adjoint.rules.ADJOINTS`
(which builds the same derivatives as IR): the tie conventions here are the
adjoint table's. An op without an entry gets the generic ``∂out/∂in``.
"""

from __future__ import annotations

from collections.abc import Callable

from diffc.adjoint.rules import is_constant
from diffc.ir import REDUCTIONS, Node, Op, dim_product, dim_text, size_labels

Partials = tuple["str | None", ...]
EdgeRule = Callable[[str, list[str], Node], Partials]


def _sq(x: str) -> str:
    return f"{x}²"


def _reduced_count(node: Node) -> str:
    """How many elements a mean averages: ``n``, ``m*n`` or a number."""
    x = node.inputs[0]
    axes = node.attr("axis") or tuple(range(x.ndim))
    return dim_text(node.graph.resolve(dim_product(x.shape[a] for a in axes)), size_labels(node.graph))


def _routes(strict: str, first: str, second: str) -> EdgeRule:
    """max (and min, with the comparisons mirrored) routes to the selected side.

    As in the adjoint table: against a constant the traced side must win
    strictly (relu'(0) = 0); between two traced inputs the first takes the tie.
    """
    def rule(out: str, xs: list[str], node: Node) -> Partials:
        x, y = xs
        if is_constant(node.inputs[1]):
            return f"[{x} {strict} {y}]", None
        if is_constant(node.inputs[0]):
            return None, f"[{y} {strict} {x}]"
        return f"[{x} {first} {y}]", f"[{x} {second} {y}]"
    return rule


def _matmul(out: str, xs: list[str], node: Node) -> Partials:
    """∂(W @ x)/∂x = W and ∂(W @ x)/∂W = xᵀ, in the notes' matrix notation."""
    a, b = xs
    return f"{b}ᵀ", a


EDGE_RULES: dict[Op, EdgeRule] = {
    Op.ADD: lambda out, xs, node: ("1", "1"),                              # add distributes
    Op.SUB: lambda out, xs, node: ("1", "-1"),
    Op.MUL: lambda out, xs, node: (xs[1], xs[0]),                          # mul switches
    Op.DIV: lambda out, xs, node: (f"1/{xs[1]}", f"-{xs[0]}/{_sq(xs[1])}"),
    Op.POW: lambda out, xs, node: (f"{xs[1]}·{xs[0]}^({xs[1]} - 1)", f"{out}·log({xs[0]})"),
    Op.NEG: lambda out, xs, node: ("-1",),
    Op.EXP: lambda out, xs, node: (f"exp({xs[0]})",),                      # = out: the adjoint reuses it
    Op.LOG: lambda out, xs, node: (f"1/{xs[0]}",),
    Op.SQRT: lambda out, xs, node: (f"1/(2·{out})",),
    Op.SIN: lambda out, xs, node: (f"cos({xs[0]})",),
    Op.COS: lambda out, xs, node: (f"-sin({xs[0]})",),
    Op.TAN: lambda out, xs, node: (f"1 + {_sq(out)}",),
    Op.TANH: lambda out, xs, node: (f"1 - {_sq(out)}",),
    Op.SIGMOID: lambda out, xs, node: (f"{out}·(1 - {out})",),
    Op.SOFTPLUS: lambda out, xs, node: (f"sigmoid({xs[0]})",),
    Op.LOG1P: lambda out, xs, node: (f"1/(1 + {xs[0]})",),
    Op.EXPM1: lambda out, xs, node: (f"exp({xs[0]})",),
    Op.ABS: lambda out, xs, node: (f"sign({xs[0]})",),
    Op.MAX: _routes(">", "≥", "<"),                                        # max routes
    Op.MIN: _routes("<", "≤", ">"),
    Op.WHERE: lambda out, xs, node: (None, f"[{xs[0]}]", f"[not {xs[0]}]"),  # where routes
    Op.SUM: lambda out, xs, node: ("1",),
    Op.MEAN: lambda out, xs, node: (f"1/{_reduced_count(node)}",),
    Op.MATMUL: _matmul,
    Op.CAST: lambda out, xs, node: ("1",),
    Op.BROADCAST: lambda out, xs, node: ("1",),
    Op.RESHAPE: lambda out, xs, node: ("1",),
}

INFIX: dict[Op, str] = {Op.ADD: "+", Op.SUB: "-", Op.MUL: "*", Op.DIV: "/", Op.POW: "**", Op.MATMUL: "@",
                        Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<=", Op.EQ: "==", Op.NE: "!="}
# how a node's formula reads; every other op is written as a call, np-style: exp(z), sum(x, axis=0)
FORMS: dict[Op, str] = {op: f"{{0}} {symbol} {{1}}" for op, symbol in INFIX.items()} | {
    Op.NEG: "-{0}", Op.TRANSPOSE: "{0}ᵀ"}
CALLED: dict[Op, str] = {Op.MAX: "maximum", Op.MIN: "minimum"}  # NumPy's names where they differ from the op's


def formula(node: Node, xs: list[str]) -> str:
    """The right-hand side the picture writes in a node: ``a + b``, ``exp(z)``, ``sum(x, axis=0)``."""
    form = FORMS.get(node.op)
    if form is not None and form.count("{") == len(xs):
        return form.format(*xs)  # the names are values here: braces in them are not read as fields
    axis = node.attr("axis")
    extra = ""
    if node.op in REDUCTIONS and axis is not None and len(axis) < node.inputs[0].ndim:
        extra = f", axis={axis[0] if len(axis) == 1 else axis}"
    return f"{CALLED.get(node.op, node.op.value)}({', '.join(xs)}{extra})"


def partials(node: Node, out: str, xs: list[str]) -> Partials:
    """One partial per input edge (``d`` for ∂e/∂c of e = c * d); ``""`` where the op has no rule here."""
    rule = EDGE_RULES.get(node.op)
    return tuple("" for _ in xs) if rule is None else rule(out, xs, node)
