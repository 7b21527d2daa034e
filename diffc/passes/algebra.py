"""Algebraic identities that keep NumPy's results for NaN and inf.

Each rewrite is a small named function: it states its identity, returns the
replacement node, or ``None`` when it does not apply. We apply only
identities that hold for every float, NaN and ±inf included:

- ``x * 1``, ``x / 1``, ``x ** 1``, ``x - 0`` -> ``x``; ``x + 0`` -> ``x``
  (this turns ``-0.0 + 0.0 = 0.0`` into ``-0.0``: the only bit that changes);
- ``0 - x`` -> ``-x``, ``x * -1`` -> ``-x``, ``-(-x)`` -> ``x``;
- negations move outward (``(-x) * y`` -> ``-(x * y)``) and meet a sum:
  ``x + (-y)`` -> ``x - y``, ``x - (-y)`` -> ``x + y``;
- casts, broadcasts, reshapes and transposes that change nothing vanish; a number spread by
  ``broadcast`` stays a number where NumPy's own broadcasting spreads it (``x * broadcast(s)``
  -> ``x * s``).

We never apply ``x * 0 -> 0`` or ``x - x -> 0``: both are wrong when x is inf
or NaN. A rewrite never changes a node's shape or dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from diffc.ir import Node, Op

Rewrite = Callable[[Node], "Node | None"]


def _is(x: Node, value: float) -> bool:
    """``x`` is a scalar constant equal to ``value``; for zero, with the same sign."""
    if x.op is not Op.CONST or x.value.ndim != 0 or x.value.item() != value:
        return False
    return value != 0.0 or math.copysign(1.0, x.value.item()) == math.copysign(1.0, value)


def _same(node: Node, x: Node) -> Node | None:
    """``x`` may stand for ``node`` only if it has the same shape and dtype."""
    return x if x.shape == node.shape and x.dtype == node.dtype else None


def add_zero(node: Node) -> Node | None:
    """x + (-0.0) = (-0.0) + x = x, for every x.

    Not ``x + 0.0``: at x = -0.0 that is +0.0, and ``1 / x`` would change sign.
    """
    x, y = node.inputs
    if _is(y, -0.0):
        return _same(node, x)
    return _same(node, y) if _is(x, -0.0) else None


def add_negated(node: Node) -> Node | None:
    """x + (-y) = x - y and (-x) + y = y - x."""
    x, y = node.inputs
    if y.op is Op.NEG:
        return x - y.inputs[0]
    if x.op is Op.NEG:
        return y - x.inputs[0]
    return None


def sub_zero(node: Node) -> Node | None:
    """x - 0.0 = x and (-0.0) - x = -x, for every x (signed zeros included)."""
    x, y = node.inputs
    if _is(y, 0.0):
        return _same(node, x)
    if _is(x, -0.0) and _same(node, y) is not None:
        return -y
    return None


def sub_negated(node: Node) -> Node | None:
    """x - (-y) = x + y."""
    x, y = node.inputs
    return x + y.inputs[0] if y.op is Op.NEG else None


def mul_one(node: Node) -> Node | None:
    """x * 1 = 1 * x = x and x * -1 = -x."""
    x, y = node.inputs
    for a, b in ((x, y), (y, x)):
        if _is(b, 1.0):
            return _same(node, a)
        if _is(b, -1.0) and _same(node, a) is not None:
            return -a
    return None


def mul_negated(node: Node) -> Node | None:
    """(-x) * y = x * (-y) = -(x * y): negations move outward, to cancel."""
    x, y = node.inputs
    if x.op is Op.NEG and y.op is Op.NEG:
        return x.inputs[0] * y.inputs[0]
    if x.op is Op.NEG:
        return -(x.inputs[0] * y)
    if y.op is Op.NEG:
        return -(x * y.inputs[0])
    return None


def div_one(node: Node) -> Node | None:
    """x / 1 = x."""
    x, y = node.inputs
    return _same(node, x) if _is(y, 1.0) else None


def div_negated(node: Node) -> Node | None:
    """(-x) / y = -(x / y)."""
    x, y = node.inputs
    return -(x.inputs[0] / y) if x.op is Op.NEG else None


def neg_neg(node: Node) -> Node | None:
    """-(-x) = x."""
    (x,) = node.inputs
    return x.inputs[0] if x.op is Op.NEG else None


def pow_one(node: Node) -> Node | None:
    """x ** 1 = x."""
    x, y = node.inputs
    return _same(node, x) if _is(y, 1.0) else None


def same_layout(node: Node) -> Node | None:
    """A cast to its own dtype, a broadcast or reshape to its own shape is x."""
    return _same(node, node.inputs[0])


def _broadcast_number(x: Node) -> Node | None:
    """The number a ``broadcast`` of a rank-0 value spreads, else ``None``."""
    return x.inputs[0] if x.op is Op.BROADCAST and x.inputs[0].ndim == 0 else None


def reshape_broadcast_number(node: Node) -> Node | None:
    """reshape(broadcast(s)) = broadcast(s) to the new shape: every element is s either way."""
    s = _broadcast_number(node.inputs[0])
    return None if s is None else node.graph.apply(Op.BROADCAST, s, shape=tuple(node.shape))


def unbroadcast_number(node: Node) -> Node | None:
    """x op broadcast(s) = x op s when x already has the result's shape (NumPy broadcasts s itself)."""
    x, y = node.inputs
    s, t = _broadcast_number(x), _broadcast_number(y)
    if t is not None and x.shape == node.shape:
        return node.graph.apply(node.op, x, t)
    if s is not None and y.shape == node.shape:
        return node.graph.apply(node.op, s, y)
    return None


def transpose_transpose(node: Node) -> Node | None:
    """Two transposes compose into one; a rank-0/1 transpose is x."""
    (x,) = node.inputs
    axes = node.attr("axes")
    if axes == tuple(range(len(axes))):
        return x
    if x.op is Op.TRANSPOSE:
        inner = x.attr("axes")
        return node.graph.apply(Op.TRANSPOSE, x.inputs[0], axes=tuple(inner[a] for a in axes))
    return None


def reduce_nothing(node: Node) -> Node | None:
    """A sum, mean, max or min over no axis is x."""
    return _same(node, node.inputs[0]) if node.attr("axis") == () else None


REWRITES: dict[Op, tuple[Rewrite, ...]] = {
    Op.ADD: (add_zero, add_negated, unbroadcast_number),
    Op.SUB: (sub_zero, sub_negated, unbroadcast_number),
    Op.MUL: (mul_one, mul_negated, unbroadcast_number),
    Op.DIV: (div_one, div_negated, unbroadcast_number),
    Op.NEG: (neg_neg,),
    Op.POW: (pow_one,),
    Op.CAST: (same_layout,),
    Op.BROADCAST: (same_layout,),
    Op.RESHAPE: (same_layout, reshape_broadcast_number),
    Op.TRANSPOSE: (transpose_transpose,),
    Op.SUM: (reduce_nothing,),
    Op.MEAN: (reduce_nothing,),
    Op.AMAX: (reduce_nothing,), Op.AMIN: (reduce_nothing,),  # the max of one number is that number
}
