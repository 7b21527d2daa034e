"""Stabilization: the unstable formulas people write, rewritten into stable ops before differentiating.

``np.log(1 + np.exp(x))`` overflows to ``inf`` at x = 800, and its gradient
``exp(x) / (1 + exp(x))`` is ``inf / inf = NaN`` there (JAX returns NaN
already at x = 100, in float32). The same function written as
``softplus(x)`` has value ``x`` and gradient ``sigmoid(x) = 1``, exactly.
Users write the first; this pass recognises it and the other usual
spellings and rewrites them into the stable ops (``Op.SOFTPLUS``,
``Op.LOGSUMEXP``, ``Op.LOG_SOFTMAX``, ...), whose printers and adjoints are
stable by construction. It runs on the forward program, BEFORE reverse mode,
so that the gradient is derived from the stable form.

Each rewrite is a small named function (PyTensor's ``register_stabilize``
rewrites are the model) whose docstring states its identity; ``REWRITES``
registers them per op, as :mod:`diffc.passes.algebra` does. Every identity
here holds exactly in real arithmetic; the rewritten form only rounds
differently (better). Patterns are matched the ways people write them: up to
the order of ``+`` and ``*`` operands, ``1`` or ``1.0``, and ``-z`` as
``neg z``, ``0 - z``, ``(-1) * z`` or ``z * (-1)``.

The rebuild walks the graph bottom-up, so inner patterns are rewritten first:
``1 / (1 + exp(-z))`` becomes ``sigmoid(z)`` before the ``log`` around it is
looked at, and then ``log(sigmoid(z))`` becomes ``-softplus(-z)``.
"""

from __future__ import annotations

from collections.abc import Callable

from diffc.ir import Node, Op, Program
from diffc.passes.algebra import _is, _same
from diffc.passes.rebuild import first_rewrite, rebuild

Rewrite = Callable[[Node], "Node | None"]

MAX_ROUNDS = 4


# -- matching helpers ---------------------------------------------------------------

def negated(x: Node) -> Node | None:
    """``z`` when ``x`` is ``-z``, written ``neg z``, ``0 - z``, ``(-1) * z`` or ``z * (-1)``."""
    if x.op is Op.NEG:
        return x.inputs[0]
    if x.op is Op.SUB and _is(x.inputs[0], 0.0):
        return x.inputs[1]
    if x.op is Op.MUL:
        a, b = x.inputs
        if _is(a, -1.0):
            return b
        if _is(b, -1.0):
            return a
    return None


def negate(z: Node) -> Node:
    """``-z``, without a double negation when ``z`` is itself a negation."""
    inner = negated(z)
    return inner if inner is not None and inner.shape == z.shape and inner.dtype == z.dtype else -z


def one_plus(x: Node) -> Node | None:
    """``t`` when ``x`` is ``1 + t`` or ``t + 1``."""
    if x.op is Op.ADD:
        a, b = x.inputs
        if _is(a, 1.0):
            return b
        if _is(b, 1.0):
            return a
    return None


def one_minus(x: Node) -> Node | None:
    """``t`` when ``x`` is ``1 - t``, ``1 + (-t)`` or ``(-t) + 1``."""
    if x.op is Op.SUB and _is(x.inputs[0], 1.0):
        return x.inputs[1]
    t = one_plus(x)
    return negated(t) if t is not None else None


def apply(op: Op, x: Node, **attrs: object) -> Node:
    return x.graph.apply(op, x, **attrs)


def _leading(axes: tuple[int, ...]) -> bool:
    """Reduced leading axes: a result without keepdims still broadcasts back along them."""
    return axes == tuple(range(len(axes)))


def _reduced_like_keepdims(node: Node) -> bool:
    """A reduction whose result broadcasts against its input as if it had kept its axes."""
    return bool(node.attr("keepdims")) or _leading(node.attr("axis"))


def shift_base(u: Node, axes: tuple[int, ...]) -> Node:
    """``x`` when ``u = x - m`` with ``m`` constant along ``axes`` (a max shift, or a constant): else ``u``.

    softmax(x - m) = softmax(x) for any such m, so the shift users write for
    stability is dropped (the SOFTMAX op shifts by itself).
    """
    if u.op is not Op.SUB:
        return u
    x, m = u.inputs
    if m.op is Op.CONST and m.value.ndim == 0:
        return x
    if m.op is Op.AMAX and m.inputs[0] is x and set(axes) <= set(m.attr("axis")) and _reduced_like_keepdims(m):
        return x
    return u


# -- the rewrites ----------------------------------------------------------------------

def log_sigmoid(node: Node) -> Node | None:
    """log(sigmoid(z)) = -softplus(-z): log(1 / (1 + e^-z)) = -log(1 + e^-z); finite for every z."""
    (x,) = node.inputs
    if x.op is not Op.SIGMOID:
        return None
    return _same(node, -apply(Op.SOFTPLUS, negate(x.inputs[0])))


def log_one_minus_sigmoid(node: Node) -> Node | None:
    """log(1 - sigmoid(z)) = -softplus(z): 1 - sigmoid(z) = sigmoid(-z), which underflows to 0 at z = 800."""
    (x,) = node.inputs
    s = one_minus(x)
    if s is None or s.op is not Op.SIGMOID:
        return None
    return _same(node, -apply(Op.SOFTPLUS, s.inputs[0]))


def log_sum_exp(node: Node) -> Node | None:
    """log(sum(exp(x), axis)) = logsumexp(x, axis), which shifts by max(x) and cannot overflow."""
    (s,) = node.inputs
    if s.op is not Op.SUM or s.inputs[0].op is not Op.EXP:
        return None
    x = s.inputs[0].inputs[0]
    return _same(node, apply(Op.LOGSUMEXP, x, axis=s.attr("axis"), keepdims=s.attr("keepdims")))


def log_of_softmax(node: Node) -> Node | None:
    """log(softmax(x)) = log_softmax(x) = x - logsumexp(x): no log of an underflowed 0."""
    (s,) = node.inputs
    if s.op is not Op.SOFTMAX:
        return None
    return _same(node, apply(Op.LOG_SOFTMAX, s.inputs[0], axis=s.attr("axis")))


def log_one_plus_exp(node: Node) -> Node | None:
    """log(1 + exp(x)) = softplus(x): x itself for large x, where exp(x) overflows."""
    (x,) = node.inputs
    t = one_plus(x)
    if t is None or t.op is not Op.EXP:
        return None
    return _same(node, apply(Op.SOFTPLUS, t.inputs[0]))


def log1p_exp(node: Node) -> Node | None:
    """log1p(exp(x)) = softplus(x): the same function, already half-stable, spelled with log1p."""
    (x,) = node.inputs
    return _same(node, apply(Op.SOFTPLUS, x.inputs[0])) if x.op is Op.EXP else None


def log_one_plus(node: Node) -> Node | None:
    """log(1 + x) = log1p(x), and log(1 - x) = log1p(-x): exact for small x, where 1 + x rounds x away."""
    (x,) = node.inputs
    t = one_plus(x)
    if t is not None:
        return _same(node, apply(Op.LOG1P, t))
    t = one_minus(x)
    if t is not None:
        return _same(node, apply(Op.LOG1P, negate(t)))
    return None


def exp_minus_one(node: Node) -> Node | None:
    """exp(x) - 1 = expm1(x) (also exp(x) + (-1) and -1 + exp(x)): exact for small x."""
    a, b = node.inputs
    # (the exponential, the constant, the value the constant must have)
    pairs = [(a, b, 1.0)] if node.op is Op.SUB else [(a, b, -1.0), (b, a, -1.0)]
    for e, c, value in pairs:
        if e.op is Op.EXP and _is(c, value):
            return _same(node, apply(Op.EXPM1, e.inputs[0]))
    return None


def written_sigmoid(node: Node) -> Node | None:
    """1 / (1 + exp(-z)) = sigmoid(z) (and 1 / (1 + exp(z)) = sigmoid(-z), exp(z) / (1 + exp(z)) = sigmoid(z)).

    The written form overflows: 1 / (1 + inf) = 0 is fine, but its gradient
    e^-z / (1 + e^-z)^2 is inf / inf = NaN at z = -800.
    """
    top, bottom = node.inputs
    t = one_plus(bottom)
    if t is None or t.op is not Op.EXP:
        return None
    if _is(top, 1.0):
        return _same(node, apply(Op.SIGMOID, negate(t.inputs[0])))
    if top is t:
        return _same(node, apply(Op.SIGMOID, t.inputs[0]))
    return None


def reciprocal_sigmoid(node: Node) -> Node | None:
    """(1 + exp(-z)) ** -1 = sigmoid(z): the reciprocal spelled as a power."""
    base, exponent = node.inputs
    if not _is(exponent, -1.0):
        return None
    t = one_plus(base)
    if t is None or t.op is not Op.EXP:
        return None
    return _same(node, apply(Op.SIGMOID, negate(t.inputs[0])))


def written_softmax(node: Node) -> Node | None:
    """exp(x) / sum(exp(x), axis, keepdims=True) = softmax(x, axis), also max-shifted.

    ``exp(x - max(x, axis, keepdims=True)) / sum(...)`` is the same softmax:
    the shift cancels. The sum must broadcast back along its axes (keepdims,
    or leading axes).
    """
    e, s = node.inputs
    if e.op is not Op.EXP or s.op is not Op.SUM or s.inputs[0] is not e or not _reduced_like_keepdims(s):
        return None
    axes = s.attr("axis")
    return _same(node, apply(Op.SOFTMAX, shift_base(e.inputs[0], axes), axis=axes))


def log_exp(node: Node) -> Node | None:
    """log(exp(x)) = x for every x (inf, -inf and NaN too): exp overflows to inf at x = 710, x does not."""
    (x,) = node.inputs
    return _same(node, x.inputs[0]) if x.op is Op.EXP else None


def exp_log(node: Node) -> Node | None:
    """exp(log(x)) = x for x >= 0 and NaN, NaN for x < 0 (NumPy's log of a negative number): exact everywhere.

    Written as ``where(x < 0, nan, x)``, so that a negative x still gives
    NumPy's NaN (and NaN passes through as itself: the comparison is false);
    the gradient is 1 off the NaN side (0 there: selected, not multiplied),
    where the written form's exp(log(x)) / x is 0 / 0 at x = 0.
    """
    (x,) = node.inputs
    if x.op is not Op.LOG:
        return None
    z = x.inputs[0]
    zero, nan = z.graph.const(0.0, z.dtype), z.graph.const(float("nan"), z.dtype)
    return _same(node, z.graph.apply(Op.WHERE, z.graph.apply(Op.LT, z, zero), nan, z))


def squared(x: Node) -> Node | None:
    """``z`` when ``x`` is ``z * z`` or ``z ** 2``."""
    if x.op is Op.MUL and x.inputs[0] is x.inputs[1]:
        return x.inputs[0]
    if x.op is Op.POW and _is(x.inputs[1], 2.0):
        return x.inputs[0]
    return None


def sqrt_square(node: Node) -> Node | None:
    """sqrt(x * x) = sqrt(x ** 2) = |x|: x * x overflows to inf at |x| = 1.4e154, |x| does not.

    The gradient becomes sign(x) (abs's convention at 0), where the written
    form's x / sqrt(x * x) is 0 / 0 = NaN at x = 0.
    """
    z = squared(node.inputs[0])
    return _same(node, apply(Op.ABS, z)) if z is not None and z.dtype.is_float else None


REWRITES: dict[Op, tuple[Rewrite, ...]] = {
    # most specific first: log(1 + exp(x)) is softplus before it is log1p(exp(x))
    Op.LOG: (log_exp, log_sigmoid, log_one_minus_sigmoid, log_sum_exp, log_of_softmax, log_one_plus_exp,
             log_one_plus),
    Op.EXP: (exp_log,),
    Op.SQRT: (sqrt_square,),
    Op.LOG1P: (log1p_exp,),
    Op.SUB: (exp_minus_one,),
    Op.ADD: (exp_minus_one,),
    Op.DIV: (written_sigmoid, written_softmax),
    Op.POW: (reciprocal_sigmoid,),
}


def stabilize_node(node: Node) -> Node | None:
    """The first rewrite registered for the node's op that applies, or ``None``."""
    return first_rewrite(REWRITES, node)


def stabilize(program: Program) -> Program:
    """``program`` with its unstable patterns rewritten; the same object when nothing matched.

    Returning the very same program when no pattern occurs keeps every other
    program's IR, node ids and printed code exactly as the front end built them.
    """
    result = program
    for _ in range(MAX_ROUNDS):
        if not any(node.op in REWRITES for node in result.nodes()):
            break
        fired: list[Node] = []

        def rewrite(node: Node, fired: list[Node] = fired) -> Node | None:
            better = stabilize_node(node)
            if better is not None:
                fired.append(better)
            return better

        candidate = rebuild(result, rewrite)
        if not fired:
            break
        result = candidate
    return result
