"""SymPy expression -> IR.

SymPy stores expressions in its own canonical form: ``a - b`` is
``Add(a, Mul(-1, b))``, ``a / b`` is ``Mul(a, Pow(b, -1))``, ``sqrt(x)`` is
``Pow(x, 1/2)`` and ``-(u + v)`` is distributed into ``-u - v``. Printing that
form literally would give IR (and generated code) nobody would write, and IR
that differs from what the text and tracing front ends build for the same
formula. So each SymPy class has one small *lowering* rule that maps the
canonical form back to the idiomatic ops:

=============================  =======================================
SymPy                          IR
=============================  =======================================
``Add(a, Mul(-1, b))``         ``sub a b``
``Add(-u, -v)`` (all negated)  ``neg (add u v)``
``Add(1, b)``                  ``add b 1`` (numeric constants go last)
``Mul(-1, x)``                 ``neg x``
``Mul(a, Pow(b, -1))``         ``div a b``
``Mul(2, x)``                  ``mul 2 x`` (a coefficient stays first)
``Pow(x, 1/2)``                ``sqrt x``
``Pow(x, -1/2)``               ``div 1 (sqrt x)``
``Pow(x, n)``                  ``pow x n.0``
``Pow(E, x)`` / ``exp(x)``     ``exp x``
``Max(x, 0)``                  ``max x 0`` (constants last)
``Piecewise((x, x > 0), (0, True))``   ``max x 0`` (relu)
``Piecewise((a, c1), (b, c2), (d, True))``  ``where c1 a (where c2 b d)``
=============================  =======================================

A rule returns a *recipe*: a builder and the sub-expressions it needs. The
walk converts the sub-expressions first (post-order, explicit stack, never
recursion: a 20,000-deep expression converts under the default recursion
limit), then calls the builder on their nodes. A rule may hand back a new,
unevaluated SymPy object as a sub-expression (the ``b`` of ``a - 2*b`` is
``Mul(2, b, evaluate=False)``), which keeps every rule one screen long.

Anything not in the rule table raises :class:`UnsupportedError` naming the
SymPy class. ``import diffc`` does not import this module (SymPy is slow to
import); :mod:`diffc.api` imports it only when handed a SymPy expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sympy
from sympy.core.relational import (
    Equality,
    GreaterThan,
    LessThan,
    StrictGreaterThan,
    StrictLessThan,
    Unequality,
)

from diffc.errors import ArgumentError, ParseError, SizeError, UnsupportedError
from diffc.ir import DType, Graph, Node, Op, Program, parse_type

Build = Callable[[list[Node]], Node]
Recipe = tuple[Build, Sequence[Any]]


class _Context:
    """What the rules need: the graph, the input of each symbol, the dtype of constants."""

    def __init__(self, graph: Graph, inputs: dict[sympy.Symbol, Node], dtype: DType) -> None:
        self.graph = graph
        self.inputs = inputs
        self.dtype = dtype

    def const(self, value: Any) -> Node:
        return self.graph.const(float(value), self.dtype)

    def fold(self, op: Op, nodes: Sequence[Node]) -> Node:
        """Left fold, ``((a op b) op c)``: how Python parses ``a op b op c``."""
        acc = nodes[0]
        for node in nodes[1:]:
            acc = self.graph.apply(op, acc, node)
        return acc


# ---------------------------------------------------------------------------
# public entry point


def from_sympy(expr: Any, args: Mapping[str, str] | Sequence[str] | str | None = None,
               name: str = "f") -> Program:
    """Convert one SymPy expression into a :class:`Program` with one output, ``out``.

    ``args`` fixes the signature: a mapping ``name -> "f64[n]"`` (order and
    types), a sequence of names (order; every input a scalar f64), or a string
    of names separated by commas or spaces. Without it every symbol is a
    scalar f64 input and inputs are sorted by name, because SymPy reorders
    terms and the order of first appearance means nothing. A name in ``args``
    that the expression does not use is still an input.
    """
    if isinstance(expr, str):
        raise TypeError("from_sympy takes a SymPy expression; parse strings with the text front end")
    if not isinstance(expr, sympy.Basic):
        raise TypeError(f"from_sympy takes a SymPy expression, not {type(expr).__name__}")
    names = _symbol_names(expr)
    signature = _signature(args, set(names.values()))
    graph = Graph()
    inputs = {arg: graph.input(arg, dtype, shape) for arg, (dtype, shape) in signature.items()}
    dtypes = {node.dtype for node in inputs.values()}
    # NumPy's weak scalars: constants follow an all-f32 signature, else f64
    const_dtype = DType.F32 if dtypes == {DType.F32} else DType.F64
    out = _convert(expr, _Context(graph, {symbol: inputs[n] for symbol, n in names.items()}, const_dtype))
    return Program(graph, list(inputs.values()), [out], ["out"], name=name)  # "out", as the text front end


def _signature(args: Mapping[str, str] | Sequence[str] | str | None,
               used: set[str]) -> dict[str, tuple[DType, tuple[Any, ...]]]:
    """The inputs in signature order, each with its dtype and shape."""
    scalar = (DType.F64, ())
    if args is None:
        return {arg: scalar for arg in sorted(used)}
    if isinstance(args, str):
        args = [part for part in re.split(r"[\s,]+", args) if part]
    out: dict[str, tuple[DType, tuple[Any, ...]]] = {}
    if isinstance(args, Mapping):
        for arg, text in args.items():
            try:
                out[arg] = parse_type(text)
            except (ArgumentError, SizeError) as error:
                raise type(error)(f"argument {arg!r}: {error}") from None
            except ValueError as error:
                raise ParseError(f"bad type for argument {arg!r}: {error}", text=str(text)) from None
    else:
        for arg in args:
            if arg in out:
                raise ParseError(f"argument {arg!r} is listed twice in args", text=arg)
            out[arg] = scalar
    missing = sorted(used - set(out))
    if missing:
        raise ParseError(f"symbol {missing[0]!r} appears in the expression but not in args "
                         f"{list(out)}; add it to args", text=missing[0])
    return out


def _symbol_names(expr: sympy.Basic) -> dict[sympy.Symbol, str]:
    """Each symbol of ``expr`` and its input name, by an explicit-stack walk.

    ``expr.free_symbols`` recurses, so it fails on very deep expressions.
    Symbols that SymPy keeps apart but that print alike (``Symbol('x')``,
    ``Dummy('x')``, ``Symbol('x', positive=True)``) are renamed apart: a plain
    ``Symbol`` first, then in ``srepr`` order; the first keeps ``x``, the others
    become ``x_2``, ``x_3``, ... (a name no other symbol has), so they are
    never merged into one input.
    """
    found: set[sympy.Symbol] = set()
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, sympy.Symbol):
            found.add(node)
        stack.extend(node.args)
    names: dict[sympy.Symbol, str] = {}
    taken = {symbol.name for symbol in found}  # a new name is none of these
    assigned: set[str] = set()
    for symbol in sorted(found, key=lambda s: (s.name, type(s) is not sympy.Symbol, sympy.srepr(s))):
        name, count = symbol.name, 1
        while name in assigned or (count > 1 and name in taken):
            count += 1
            name = f"{symbol.name}_{count}"
        assigned.add(name)
        names[symbol] = name
    return names


def _convert(expr: sympy.Basic, ctx: _Context) -> Node:
    """Post-order walk with an explicit stack; sub-expressions are built left to right.

    Memo keys are ``id()`` (SymPy's ``==`` recurses on deep trees); ``keep``
    holds every visited object so that no id is reused while we walk.
    """
    memo: dict[int, Node] = {}
    pending: dict[int, Recipe] = {}
    keep: list[Any] = []
    stack: list[tuple[Any, bool]] = [(expr, False)]
    while stack:
        item, ready = stack.pop()
        key = id(item)
        if key in memo:
            continue
        if ready:
            build, children = pending.pop(key)
            memo[key] = build([memo[id(child)] for child in children])
            continue
        recipe = _lower(item, ctx)
        keep.append(item)
        pending[key] = recipe
        stack.append((item, True))
        stack.extend((child, False) for child in reversed(recipe[1]) if id(child) not in memo)
    return memo[id(expr)]


def _lower(expr: Any, ctx: _Context) -> Recipe:
    """Find the rule for ``expr``'s class (or the nearest base class, like SymPy's printers)."""
    for cls in type(expr).__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            return rule(expr, ctx)
    raise UnsupportedError(f"SymPy {type(expr).__name__} is not supported ({_short(expr)}); supported: "
                           "+ - * / **, exp, log, sin, cos, tan, tanh, sqrt, Abs, Max, Min, Piecewise, "
                           "comparisons, numbers, pi, E", op=type(expr).__name__)


def _short(expr: Any) -> str:
    try:
        text = str(expr)
    except RecursionError:
        return "a very deep expression"
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------
# rules: (expr, ctx) -> (builder, sub-expressions)


def _symbol(expr: sympy.Symbol, ctx: _Context) -> Recipe:
    node = ctx.inputs[expr]  # _signature checked that every symbol's name is an input
    return (lambda _: node), ()


def _number(expr: sympy.Number, ctx: _Context) -> Recipe:
    if expr.is_finite is not True:
        raise UnsupportedError(f"SymPy {type(expr).__name__} ({expr}) has no finite value", op=type(expr).__name__)
    value = float(expr)
    return (lambda _: ctx.const(value)), ()


def _unary(op: Op) -> Callable[[sympy.Basic, _Context], Recipe]:
    def rule(expr: sympy.Basic, ctx: _Context) -> Recipe:
        if len(expr.args) != 1:
            raise UnsupportedError(f"SymPy {type(expr).__name__} with {len(expr.args)} arguments is not supported",
                                   op=type(expr).__name__)
        return (lambda nodes: ctx.graph.apply(op, nodes[0])), expr.args

    return rule


def _comparison(op: Op) -> Callable[[sympy.Basic, _Context], Recipe]:
    def rule(expr: sympy.Basic, ctx: _Context) -> Recipe:
        return (lambda nodes: ctx.graph.apply(op, nodes[0], nodes[1])), (expr.lhs, expr.rhs)

    return rule


def _is_const(expr: sympy.Basic) -> bool:
    return bool(expr.is_Number) or isinstance(expr, sympy.NumberSymbol)


def _consts_last(args: Sequence[sympy.Basic]) -> list[sympy.Basic]:
    """``b + 1`` rather than SymPy's ``1 + b``; stable otherwise."""
    return [a for a in args if not _is_const(a)] + [a for a in args if _is_const(a)]


def _coefficient(factors: Sequence[sympy.Basic]) -> tuple[sympy.Number, list[sympy.Basic]]:
    """Split a product into its numeric coefficient and the other factors."""
    numbers = [f for f in factors if f.is_Number]
    coeff = sympy.Mul(*numbers) if numbers else sympy.S.One
    return coeff, [f for f in factors if not f.is_Number]


def _product(factors: Sequence[sympy.Basic]) -> sympy.Basic:
    """An unevaluated product (evaluating would re-distribute ``2*(a + b)``)."""
    factors = [f for f in factors if not (f.is_Number and f == 1)]
    if not factors:
        return sympy.S.One
    return factors[0] if len(factors) == 1 else sympy.Mul(*factors, evaluate=False)


def _split_sign(term: sympy.Basic) -> tuple[bool, sympy.Basic]:
    """``-2*x`` -> (True, ``2*x``): a term of a sum that reads as a subtraction."""
    if term.is_Number:
        return (True, -term) if term.is_negative else (False, term)
    if term.is_Mul:
        coeff, others = _coefficient(term.args)
        if coeff.is_negative and others:
            return True, _product([-coeff, *others])
    return False, term


def _add(expr: sympy.Add, ctx: _Context) -> Recipe:
    """Terms in SymPy's order, constants last, negated terms subtracted.

    The first term must not be a subtraction: the first positive term moves
    to the front (``-x + y`` -> ``y - x``); when every term is negated the
    sum is negated once (``-b - w*x`` -> ``-(b + w*x)``, as people write it).
    """
    terms = [_split_sign(t) for t in _consts_last(expr.args)]
    if terms[0][0]:
        first = next((i for i, (neg, _) in enumerate(terms) if not neg), None)
        if first is None:
            items = [t for _, t in terms]
            return (lambda nodes: ctx.graph.apply(Op.NEG, ctx.fold(Op.ADD, nodes))), items
        terms.insert(0, terms.pop(first))
    signs = [neg for neg, _ in terms]

    def build(nodes: list[Node]) -> Node:
        acc = nodes[0]
        for neg, node in zip(signs[1:], nodes[1:], strict=True):
            acc = ctx.graph.apply(Op.SUB if neg else Op.ADD, acc, node)
        return acc

    return build, [t for _, t in terms]


def _mul(expr: sympy.Basic, ctx: _Context) -> Recipe:
    """``Mul(-1, x)`` -> ``-x``; factors with negative exponents form one denominator.

    A rational coefficient ``p/q`` puts ``p`` first in the numerator (``2*x``,
    as people write it) and ``q`` first in the denominator (``x/(2*y)``).
    """
    factors = expr.args if expr.is_Mul else (expr,)
    coeff, others = _coefficient(factors)
    if others and (coeff == -1 or (coeff.is_Rational and coeff.p == -1)):
        return (lambda nodes: ctx.graph.apply(Op.NEG, nodes[0])), (_product([-coeff, *others]),)
    numer: list[sympy.Basic] = []
    denom: list[sympy.Basic] = []
    if coeff.is_Rational:
        numer += [sympy.Integer(coeff.p)] if coeff.p != 1 else []
        denom += [sympy.Integer(coeff.q)] if coeff.q != 1 else []
    elif coeff != 1:
        numer.append(coeff)
    for f in others:
        if f.is_Pow and f.exp.is_Number and f.exp.is_negative:
            denom.append(f.base if f.exp == -1 else sympy.Pow(f.base, -f.exp, evaluate=False))
        else:
            numer.append(f)
    numer = numer or [sympy.S.One]  # 1/x: the 1 is built first, as in the text front end
    count = len(numer)

    def build(nodes: list[Node]) -> Node:
        top = ctx.fold(Op.MUL, nodes[:count])
        return ctx.graph.apply(Op.DIV, top, ctx.fold(Op.MUL, nodes[count:])) if len(nodes) > count else top

    return build, numer + denom


def _pow(expr: sympy.Pow, ctx: _Context) -> Recipe:
    base, exp = expr.args
    if base is sympy.E:
        return (lambda nodes: ctx.graph.apply(Op.EXP, nodes[0])), (exp,)
    if exp.is_Number and exp.is_negative:
        return _mul(expr, ctx)  # 1/x, 1/sqrt(x), 1/x**2: a product with a denominator
    if exp == sympy.S.Half:
        return (lambda nodes: ctx.graph.apply(Op.SQRT, nodes[0])), (base,)
    if exp == 1:
        return (lambda nodes: nodes[0]), (base,)  # only from evaluate=False
    return (lambda nodes: ctx.graph.apply(Op.POW, nodes[0], nodes[1])), (base, exp)


def _minmax(op: Op) -> Callable[[sympy.Basic, _Context], Recipe]:
    def rule(expr: sympy.Basic, ctx: _Context) -> Recipe:
        return (lambda nodes: ctx.fold(op, nodes)), _consts_last(expr.args)

    return rule


def _relu_arg(pieces: Sequence[Any]) -> sympy.Basic | None:
    """``e`` when the Piecewise is exactly ``max(e, 0)``, else None.

    Only the forms whose tie at ``e == 0`` takes the 0 branch match: diffc's
    MAX sends the gradient at a tie with a constant to the constant
    (relu'(0) = 0), so ``(e, e >= 0)`` stays a ``where`` (its slope at 0 is 1).
    """
    if len(pieces) != 2:
        return None
    (a, cond), (b, _) = pieces[0].args, pieces[1].args
    zero = sympy.S.Zero
    if b.is_Number and b.is_zero:  # (e, e > 0), (0, True)
        forms = ((StrictGreaterThan, a, zero), (StrictLessThan, zero, a))
        candidate = a
    elif a.is_Number and a.is_zero:  # (0, e <= 0), (e, True)
        forms = ((LessThan, b, zero), (GreaterThan, zero, b))
        candidate = b
    else:
        return None
    for cls, lhs, rhs in forms:
        if type(cond) is cls and _same(cond.lhs, lhs) and _same(cond.rhs, rhs):
            return candidate
    return None


def _same(a: sympy.Basic, b: sympy.Basic) -> bool:
    return a is b or (a.is_Number and b.is_Number and a == b) or a == b


def _piecewise(expr: sympy.Piecewise, ctx: _Context) -> Recipe:
    """Nested ``where`` from the last branch outwards; the last branch must be ``(value, True)``."""
    pieces = expr.args
    if pieces[-1].cond is not sympy.true:
        raise UnsupportedError(f"Piecewise without a final (value, True) branch is not supported ({_short(expr)}): "
                               "the value is undefined where no condition holds; add a (value, True) branch",
                               op="Piecewise")
    arg = _relu_arg(pieces)
    if arg is not None:
        return (lambda nodes: ctx.graph.apply(Op.MAX, nodes[0], ctx.const(0.0))), (arg,)
    children: list[sympy.Basic] = []
    for piece in pieces[:-1]:
        children += [piece.cond, piece.expr]
    children.append(pieces[-1].expr)

    def build(nodes: list[Node]) -> Node:
        acc = nodes[-1]
        for i in range(len(nodes) - 3, -1, -2):
            acc = ctx.graph.apply(Op.WHERE, nodes[i], nodes[i + 1], acc)
        return acc

    return build, children


def _number_symbol(expr: sympy.NumberSymbol, ctx: _Context) -> Recipe:
    value = float(expr)
    return (lambda _: ctx.const(value)), ()


_RULES: dict[type, Callable[[Any, _Context], Recipe]] = {
    sympy.Symbol: _symbol,
    sympy.Number: _number,
    sympy.NumberSymbol: _number_symbol,  # pi, E, and friends
    sympy.Add: _add,
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.exp: _unary(Op.EXP),
    sympy.log: _unary(Op.LOG),
    sympy.sin: _unary(Op.SIN),
    sympy.cos: _unary(Op.COS),
    sympy.tan: _unary(Op.TAN),
    sympy.tanh: _unary(Op.TANH),
    sympy.Abs: _unary(Op.ABS),
    sympy.Max: _minmax(Op.MAX),
    sympy.Min: _minmax(Op.MIN),
    sympy.Piecewise: _piecewise,
    StrictGreaterThan: _comparison(Op.GT),
    GreaterThan: _comparison(Op.GE),
    StrictLessThan: _comparison(Op.LT),
    LessThan: _comparison(Op.LE),
    Equality: _comparison(Op.EQ),
    Unequality: _comparison(Op.NE),
}
