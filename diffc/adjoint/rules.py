"""The adjoint table: one entry per op, readable like a calculus table.

A rule takes the output's cotangent ``g``, the primal output ``out`` and the
op's inputs, all IR nodes, and returns one cotangent per input (``None`` where
the input gets nothing: not differentiable, or a zero contribution). Rules
build IR with the node operators, so ``g * y`` *is* the adjoint node.

Rules never undo broadcasting: a cotangent may come back with the output's
(broadcast) shape, and the reverse pass sums it down to the input's shape.

Contributions that depend on a comparison are *selected*
(``where(c, g, 0)``), never multiplied by a 0/1 mask, so an inf or NaN on the
side not taken cannot leak into the gradient.
"""

from __future__ import annotations

from collections.abc import Callable

from diffc.ir import COMPARISONS, DType, Node, Op, Shape

AdjointRule = Callable[..., tuple[Node | None, ...]]


# -- small builders the rules share ------------------------------------------

def select(cond: Node, g: Node) -> Node:
    """``g`` where ``cond`` holds, exactly zero elsewhere (no ``0 * inf``)."""
    return g.graph.apply(Op.WHERE, cond, g, g.graph.const(0.0, g.dtype))


def select_else(cond: Node, g: Node) -> Node:
    """``g`` where ``cond`` fails, exactly zero where it holds."""
    return g.graph.apply(Op.WHERE, cond, g.graph.const(0.0, g.dtype), g)


def apply(op: Op, *xs: Node, **attrs: object) -> Node:
    return xs[0].graph.apply(op, *xs, **attrs)


def is_constant(x: Node) -> bool:
    """A literal (or a broadcast literal): the tie rule treats it as fixed."""
    while x.op is Op.BROADCAST:
        x = x.inputs[0]
    return x.op is Op.CONST


def size(x: Node, axes: tuple[int, ...]) -> Node:
    """The number of elements ``x`` has along ``axes``, as an integer node."""
    graph = x.graph
    count: Node = graph.const(1, DType.I64)
    for axis in axes:
        count = count * graph.dim(x.shape[axis])
    return count


def keep_reduced_axes(g: Node, x: Node, axes: tuple[int, ...], keepdims: bool) -> Node:
    """Put the reduced axes back as size 1, so that ``g`` broadcasts against ``x``.

    Not needed when only leading axes were reduced: NumPy broadcasting
    aligns on the right.
    """
    if keepdims or axes == tuple(range(len(axes))):
        return g
    shape: Shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return apply(Op.RESHAPE, g, shape=shape)


# -- rules too long for one line ----------------------------------------------

def maximum(g: Node, out: Node, x: Node, y: Node) -> tuple[Node | None, ...]:
    """max routes ``g`` to the selected input.

    Tie rule: against a constant the traced input must be strictly greater
    (relu'(0) = 0, as the notes say); between two traced inputs the first
    argument takes the tie.
    """
    if is_constant(y):
        return select(apply(Op.GT, x, y), g), None
    if is_constant(x):
        return None, select(apply(Op.GT, y, x), g)
    return select(apply(Op.GE, x, y), g), select(apply(Op.LT, x, y), g)


def minimum(g: Node, out: Node, x: Node, y: Node) -> tuple[Node | None, ...]:
    """min mirrors max: the strictly smaller side, the first argument on a tie."""
    if is_constant(y):
        return select(apply(Op.LT, x, y), g), None
    if is_constant(x):
        return None, select(apply(Op.LT, y, x), g)
    return select(apply(Op.LE, x, y), g), select(apply(Op.GT, x, y), g)


def power(g: Node, out: Node, x: Node, y: Node) -> tuple[Node | None, ...]:
    """d(x^y) = y x^(y-1) dx + x^y log(x) dy.

    The ``dy`` term is only built when ``y`` is differentiated; it is NaN for
    x < 0, where x^y is not differentiable in y either.
    """
    dx = g * (y * x ** (y - 1.0))
    dy = None if is_constant(y) else g * (out * apply(Op.LOG, x))
    return dx, dy


def matmul(g: Node, out: Node, a: Node, b: Node) -> tuple[Node | None, ...]:
    """out = a @ b for operands of rank 1 or 2 (the notes' h = W h_prev).

    matrix-matrix: da = g bᵀ, db = aᵀ g; matrix-vector: dW = outer(g, h),
    dh = Wᵀ g; vector-matrix: da = b g, db = outer(a, g); dot: da = g b.
    """
    if a.ndim == 2 and b.ndim == 2:
        return g @ b.T, a.T @ g
    if a.ndim == 2:
        return apply(Op.OUTER, g, b), a.T @ g
    if b.ndim == 2:
        return b @ g, apply(Op.OUTER, a, g)
    return g * b, g * a


def reduce_sum(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """Every summed element gets the cotangent of its sum."""
    return (keep_reduced_axes(g, x, out.attr("axis"), out.attr("keepdims")),)


def reduce_mean(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """A mean is a sum divided by the count: each element gets g / count."""
    axes = out.attr("axis")
    return (keep_reduced_axes(g / size(x, axes), x, axes, out.attr("keepdims")),)


def transpose(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """Transpose back with the inverse permutation."""
    axes = out.attr("axes")
    inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return (apply(Op.TRANSPOSE, g, axes=inverse),)


def cast(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """A cast passes the cotangent back in the input's dtype; ints get none."""
    return (apply(Op.CAST, g, dtype=x.dtype) if x.dtype.is_float else None,)


def unary(fn: Op) -> Callable[[Node], Node]:
    return lambda x: apply(fn, x)


sin, cos, sign = unary(Op.SIN), unary(Op.COS), unary(Op.SIGN)


# -- the table ----------------------------------------------------------------

ADJOINTS: dict[Op, AdjointRule] = {
    Op.ADD: lambda g, out, x, y: (g, g),                        # addition distributes
    Op.SUB: lambda g, out, x, y: (g, -g),
    Op.MUL: lambda g, out, x, y: (g * y, g * x),                # multiplication switches
    Op.DIV: lambda g, out, x, y: (g / y, -(g * out) / y),       # d(x/y)/dy = -(x/y)/y
    Op.NEG: lambda g, out, x: (-g,),
    Op.POW: power,
    Op.EXP: lambda g, out, x: (g * out,),                       # reuse e^x
    Op.LOG: lambda g, out, x: (g / x,),
    Op.SQRT: lambda g, out, x: (g / (2.0 * out),),              # reuse sqrt(x)
    Op.SIN: lambda g, out, x: (g * cos(x),),
    Op.COS: lambda g, out, x: (-(g * sin(x)),),
    Op.TAN: lambda g, out, x: (g * (1.0 + out * out),),         # sec² = 1 + tan²
    Op.TANH: lambda g, out, x: (g * (1.0 - out * out),),
    Op.SIGMOID: lambda g, out, x: (g * (out * (1.0 - out)),),   # σ' = σ(1 - σ)
    Op.ABS: lambda g, out, x: (g * sign(x),),                   # |x|' = sign(x), 0 at 0
    Op.MAX: maximum,                                            # max routes
    Op.MIN: minimum,
    Op.WHERE: lambda g, out, c, a, b: (None, select(c, g), select_else(c, g)),  # routes
    Op.SUM: reduce_sum,
    Op.MEAN: reduce_mean,
    Op.MATMUL: matmul,
    Op.OUTER: lambda g, out, a, b: (g @ b, a @ g),
    Op.TRANSPOSE: transpose,
    Op.BROADCAST: lambda g, out, x: (g,),                       # the reverse pass sums it down
    Op.RESHAPE: lambda g, out, x: (apply(Op.RESHAPE, g, shape=x.shape),),
    Op.CAST: cast,
}

# Ops whose output does not depend differentiably on any input.
NON_DIFFERENTIABLE: frozenset[Op] = frozenset(COMPARISONS | {Op.SIGN, Op.INPUT, Op.CONST, Op.DIM})
