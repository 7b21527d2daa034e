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

import math
from collections.abc import Callable

from diffc.ir import COMPARISONS, FULL, STEPS, Dim, DType, Index, Node, Op, Shape

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

    Convention: on a tie the first argument takes the whole gradient; against a constant the traced
    side must be strictly greater, so relu'(0) = 0.
    """
    if is_constant(y):
        return select(apply(Op.GT, x, y), g), None
    if is_constant(x):
        return None, select(apply(Op.GT, y, x), g)
    return select(apply(Op.GE, x, y), g), select(apply(Op.LT, x, y), g)


def minimum(g: Node, out: Node, x: Node, y: Node) -> tuple[Node | None, ...]:
    """min mirrors max: the strictly smaller side, the first argument on a tie.

    Convention: on a tie the first argument takes the whole gradient; against a constant the traced
    side must be strictly smaller.
    """
    if is_constant(y):
        return select(apply(Op.LT, x, y), g), None
    if is_constant(x):
        return None, select(apply(Op.LT, y, x), g)
    return select(apply(Op.LE, x, y), g), select(apply(Op.GT, x, y), g)


def power(g: Node, out: Node, x: Node, y: Node) -> tuple[Node | None, ...]:
    """d(x^y) = y x^(y-1) dx + x^y log(x) dy.

    The ``dy`` term is only built when ``y`` is differentiated; it is NaN for
    x < 0, where x^y is not differentiable in y either, and 0 at x = 0.

    Convention: for an integer exponent k >= 1 the gradient at x = 0 is k * 0^(k-1): 0 for k > 1, 1 for k = 1;
    an exponent of 0 (traced: a constant one folds away) has gradient 0 there, not 0 * 0^-1 = NaN.
    """
    dx = g * (y * x ** (y - 1.0))
    if is_constant(y):
        return dx, None
    dx = select(apply(Op.NE, y, y.graph.const(0, y.dtype)), dx)
    # at x = 0 (and y > 0) x^y is 0 for every y: log(x) is replaced by log(1) = 0 there, as in JAX,
    # instead of 0 * -inf = NaN
    base = apply(Op.WHERE, apply(Op.EQ, x, x.graph.const(0.0, x.dtype)), x.graph.const(1.0, x.dtype), x)
    return dx, g * (out * apply(Op.LOG, base))


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
    count = size(x, axes)
    if g.dtype is not DType.F64:  # an i64 count would promote f32 to f64 (NumPy's rule for arrays)
        count = apply(Op.CAST, count, dtype=g.dtype)
    return (keep_reduced_axes(g / count, x, axes, out.attr("keepdims")),)


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


# -- rules of the ops for real models (more math, max/min reductions, softmax family) --

LN2, LN10 = math.log(2.0), math.log(10.0)


def _nonzero(x: Node) -> Node:
    """``x`` with its zeros replaced by 1: a divisor that cannot make 0/0 = NaN."""
    graph = x.graph
    return apply(Op.WHERE, apply(Op.EQ, x, graph.const(0.0, x.dtype)), graph.const(1.0, x.dtype), x)


def reduce_extreme(mask_op: Op) -> AdjointRule:
    """amax/amin route the whole cotangent to ONE element per reduced slice.

    Tie rule: the FIRST occurrence (in row-major order over the reduced axes)
    of the maximum gets all of ``g``; the others get exactly 0. That is the
    rule of binary max (the first argument takes the tie), and it makes the
    gradient of ``max(x)`` the one-hot vector of ``argmax(x)``. The mask op
    (MAX_MASK / MIN_MASK) marks that element; the contribution is selected
    with ``where``, never multiplied by the mask.

    Convention: the first extreme element of each reduced slice (row-major order) takes the whole
    gradient, the one-hot vector of argmax / argmin.
    """
    def rule(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
        axes = out.attr("axis")
        mask = apply(mask_op, x, axis=axes)
        return (select(mask, keep_reduced_axes(g, x, axes, out.attr("keepdims"))),)
    rule.__doc__ = reduce_extreme.__doc__
    return rule


def _normalized(e: Node, axes: tuple[int, ...]) -> Node:
    """``e / sum(e, axes)``: a softmax from exponentials shifted by ANY amount constant along ``axes``."""
    return e / apply(Op.SUM, e, axis=axes, keepdims=True)


def logsumexp(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """d logsumexp(x) = g * softmax(x), with softmax = exp(x - out) / sum(exp(x - out)).

    Reusing the forward value makes it stable by construction: x - out <= 0,
    so the exponential never overflows. Dividing by the sum (1 up to rounding)
    keeps it exact where ``out`` has lost ``log 2`` to rounding (x ~ 1e17 and
    beyond): softmax does not change under a shift, so any shift works.
    """
    axes, keepdims = out.attr("axis"), out.attr("keepdims")
    lse = keep_reduced_axes(out, x, axes, keepdims)
    return (keep_reduced_axes(g, x, axes, keepdims) * _normalized(apply(Op.EXP, x - lse), axes),)


def softmax(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """d softmax: out * (g - sum(g * out, axis)), the Jacobian diag(s) - s sᵀ applied to g."""
    return (out * (g - apply(Op.SUM, g * out, axis=out.attr("axis"), keepdims=True)),)


def log_softmax(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """d log_softmax: g - softmax * sum(g, axis), with softmax = exp(out) (out <= 0: no overflow),
    normalized as in :func:`logsumexp`."""
    axes = out.attr("axis")
    return (g - _normalized(apply(Op.EXP, out), axes) * apply(Op.SUM, g, axis=axes, keepdims=True),)


def norm(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """d ||x|| = g * x / ||x||.

    At x = 0 the norm has no derivative; diffc returns 0 there (the smallest
    subgradient, as PyTorch does; JAX gives NaN): the divisor 0 becomes 1,
    and x is all zeros, so no NaN is ever computed.

    Convention: 0 at x = 0 (PyTorch's choice; JAX gives NaN).
    """
    axes, keepdims = out.attr("axis"), out.attr("keepdims")
    r = _nonzero(keep_reduced_axes(out, x, axes, keepdims))
    return (keep_reduced_axes(g, x, axes, keepdims) * (x / r),)


def hypot(g: Node, out: Node, x: Node, y: Node) -> tuple[Node | None, ...]:
    """d hypot(x, y) = (g x / h, g y / h); 0 at the origin, as for the norm it is.

    Convention: 0 at the origin, as for the norm.
    """
    h = _nonzero(out)
    return g * (x / h), g * (y / h)


def arctan2(g: Node, out: Node, y: Node, x: Node) -> tuple[Node | None, ...]:
    """d arctan2(y, x) = (x, -y) / (x² + y²), divided by hypot(x, y) twice so that large x, y do not
    overflow. NaN at the origin, where the angle jumps."""
    h = apply(Op.HYPOT, x, y)
    return g * ((x / h) / h), -(g * ((y / h) / h))


def _one_minus_square(x: Node) -> Node:
    """1 - x² as (1 - x)(1 + x): accurate near ±1, where arcsin' blows up."""
    return (1.0 - x) * (1.0 + x)


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
    # ops for real models
    Op.LOG1P: lambda g, out, x: (g / (1.0 + x),),
    Op.EXPM1: lambda g, out, x: (g * (out + 1.0),),             # reuse e^x - 1
    Op.LOG2: lambda g, out, x: (g / (x * LN2),),
    Op.LOG10: lambda g, out, x: (g / (x * LN10),),
    Op.EXP2: lambda g, out, x: (g * (out * LN2),),              # reuse 2^x
    Op.ARCSIN: lambda g, out, x: (g / apply(Op.SQRT, _one_minus_square(x)),),
    Op.ARCCOS: lambda g, out, x: (-(g / apply(Op.SQRT, _one_minus_square(x))),),
    Op.ARCTAN: lambda g, out, x: (g / (1.0 + x * x),),
    Op.SINH: lambda g, out, x: (g * apply(Op.COSH, x),),
    Op.COSH: lambda g, out, x: (g * apply(Op.SINH, x),),
    Op.ARCSINH: lambda g, out, x: (g / apply(Op.HYPOT, x, x.graph.const(1.0, x.dtype)),),  # 1/sqrt(x²+1)
    Op.SOFTPLUS: lambda g, out, x: (g * apply(Op.SIGMOID, x),),  # log(1 + e^x)' = σ(x)
    Op.ARCTAN2: arctan2,
    Op.HYPOT: hypot,
    Op.AMAX: reduce_extreme(Op.MAX_MASK),                       # one-hot: the first maximum
    Op.AMIN: reduce_extreme(Op.MIN_MASK),
    Op.LOGSUMEXP: logsumexp,
    Op.NORM: norm,
    Op.SOFTMAX: softmax,
    Op.LOG_SOFTMAX: log_softmax,
}

# Conventions of the one-line rules of ops that ufuncs record, for docs/numpy.md (longer rules state
# theirs in a ``Convention:`` line of their docstring, the tracer's handlers in theirs)
CONVENTIONS: dict[Op, str] = {
    Op.ABS: "sign(x), so 0 at x = 0.",
    Op.SIGN: "0 everywhere (a step function).",
    Op.SQRT: "1 / (2 sqrt(x)): inf at x = 0, as in NumPy's arithmetic and JAX.",
    **{op: "no gradient (a boolean result)." for op in COMPARISONS},
    **{op: "0 everywhere (a step function)." for op in STEPS | {Op.RINT, Op.FLOOR_DIVIDE}},
    Op.CBRT: "1 / (3 cbrt(x)^2): inf at x = 0, as for sqrt.",
    Op.REMAINDER: "1 for x and -floor(x / y) for y; the jumps (x / y an integer) are ignored.",
    Op.FMOD: "1 for x and -trunc(x / y) for y; the jumps (x / y an integer) are ignored.",
}

# Ops whose output does not depend differentiably on any input.
NON_DIFFERENTIABLE: frozenset[Op] = frozenset(COMPARISONS | STEPS | {Op.SIGN, Op.INPUT, Op.CONST, Op.DIM,
                                                                      Op.MAX_MASK, Op.MIN_MASK, Op.RINT,
                                                                      Op.FLOOR_DIVIDE})


# -- rules of indexing, joins and gathers --------------------------------------------------------

def unslice(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """x[index] passes g back into zeros of x's shape at the same index (several slices of one
    array each send theirs, and the reverse pass adds them up)."""
    if g.op is Op.BROADCAST and g.inputs[0].ndim == 0:  # a number is written as it is: z[1:] = 1.0
        g = g.inputs[0]
    return (apply(Op.UNSLICE, g, index=out.attr("index"), shape=x.shape),)


def concat(g: Node, out: Node, *xs: Node) -> tuple[Node | None, ...]:
    """Each input of a concatenation gets its own slab of g along the axis (g[:n], g[n:n + m], ...)."""
    axis = out.attr("axis")
    full = [FULL] * out.ndim
    start: Dim = 0
    grads: list[Node | None] = []
    for k, x in enumerate(xs):
        stop = start + x.shape[axis]
        items = list(full)
        items[axis] = ("slice", None if k == 0 else start, None if k == len(xs) - 1 else stop, 1)
        grads.append(apply(Op.SLICE, g, index=Index(items)) if len(xs) > 1 else g)
        start = stop
    return tuple(grads)


def stack(g: Node, out: Node, *xs: Node) -> tuple[Node | None, ...]:
    """Input k of a stack gets g[..., k, ...] along the new axis."""
    axis = out.attr("axis")
    grads: list[Node | None] = []
    for k in range(len(xs)):
        items = [FULL] * out.ndim
        items[axis] = ("int", k)
        grads.append(apply(Op.SLICE, g, index=Index(items)))
    return tuple(grads)


ADJOINTS.update({
    Op.SLICE: unslice,
    Op.UNSLICE: lambda g, out, x: (apply(Op.SLICE, g, index=out.attr("index")),),  # linear: slice back
    Op.CONCAT: concat,
    Op.STACK: stack,
    Op.GATHER: lambda g, out, x, idx: (apply(Op.SCATTER, g, idx, size=x.shape[1]), None),
    Op.SCATTER: lambda g, out, x, idx: (apply(Op.GATHER, g, idx), None),
})
NON_DIFFERENTIABLE = NON_DIFFERENTIABLE | frozenset({Op.ARANGE})


# -- rules of more NumPy functions (diffc/frontends/numpy_functions.py records them) ---------------

def reduce_prod(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """d prod(x) / dx_i = the product of the other entries, computed without dividing by a zero.

    With no zero in a reduced slice it is prod / x_i; with one zero, the zero entry gets the
    product of the non-zero ones and every other entry 0; with two or more zeros, all 0.

    Convention: exact with zeros in the input (no division by zero): one zero entry gets the product
    of the others, two or more zeros give 0 everywhere.
    """
    axes, keepdims = out.attr("axis"), out.attr("keepdims")
    graph = x.graph
    zero, one = graph.const(0.0, x.dtype), graph.const(1.0, x.dtype)
    is_zero = apply(Op.EQ, x, zero)
    divisor = _nonzero(x)
    rest = apply(Op.PROD, divisor, axis=axes, keepdims=True)  # the product of the non-zero entries
    zeros = apply(Op.SUM, apply(Op.CAST, is_zero, dtype=x.dtype), axis=axes, keepdims=True)
    one_zero = select(is_zero, select(apply(Op.EQ, zeros, one), rest))
    others = apply(Op.WHERE, apply(Op.EQ, zeros, zero), rest / divisor, one_zero)
    return (keep_reduced_axes(g, x, axes, keepdims) * others,)


def flip(x: Node, axis: int) -> Node:
    """``x`` reversed along ``axis`` (a slice with step -1: a view)."""
    items = [FULL] * x.ndim
    items[axis] = ("slice", None, None, -1)
    return apply(Op.SLICE, x, index=Index(items))


def from_end(values: Node, axis: int) -> Node:
    """The running sum of ``values`` along ``axis`` from the last entry back."""
    return flip(apply(Op.CUMSUM, flip(values, axis), axis=(axis,)), axis)


def cumsum(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """x_i enters every running sum from i on: its cotangent is the running sum of g from the end."""
    (axis,) = out.attr("axis")
    return (from_end(g, axis),)


def cumprod(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """d out_k / dx_i = prod of x_j for j <= k, j != i (k >= i), computed without dividing by a zero.

    Before the first zero z of a slice it is revcumsum(g * out)_i / x_i (out_k is 0 from z on, so
    nothing is lost); at z it is revcumsum(g * out')_z with out' the running product where x_z is
    replaced by 1; after z every product holds x_z = 0.

    Convention: exact with zeros in the input (no division by zero), as for np.prod.
    """
    (axis,) = out.attr("axis")
    graph = x.graph
    zero, one = graph.const(0.0, x.dtype), graph.const(1.0, x.dtype)
    is_zero = apply(Op.EQ, x, zero)
    seen = apply(Op.CUMSUM, apply(Op.CAST, is_zero, dtype=x.dtype), axis=(axis,))  # zeros up to here
    first_zero = apply(Op.EQ, apply(Op.WHERE, is_zero, seen, zero), one)
    before = from_end(g * out, axis) / _nonzero(x)
    at = from_end(g * apply(Op.CUMPROD, apply(Op.WHERE, first_zero, one, x), axis=(axis,)), axis)
    return (apply(Op.WHERE, apply(Op.EQ, seen, zero), before, select(first_zero, at)),)


ADJOINTS.update({
    Op.CUMPROD: cumprod,
    Op.ARCTANH: lambda g, out, x: (g / _one_minus_square(x),),              # 1 / (1 - x²)
    Op.ARCCOSH: lambda g, out, x: (g / apply(Op.SQRT, (x - 1.0) * (x + 1.0)),),  # 1 / sqrt(x² - 1)
    Op.CBRT: lambda g, out, x: (g / (3.0 * (out * out)),),                 # reuse cbrt(x)
    Op.REMAINDER: lambda g, out, x, y: (g, -(g * apply(Op.FLOOR, x / y))),  # x - floor(x / y) y
    Op.FMOD: lambda g, out, x, y: (g, -(g * apply(Op.TRUNC, x / y))),       # x - trunc(x / y) y
    Op.PROD: reduce_prod,
    Op.CUMSUM: cumsum,
})
from diffc.adjoint import linalg as _linalg  # noqa: E402 - np.linalg's rules, in their own module

ADJOINTS.update(_linalg.ADJOINTS)
from diffc.adjoint import special as _special  # noqa: E402 - scipy.special's rules

ADJOINTS.update(_special.ADJOINTS)
NON_DIFFERENTIABLE = NON_DIFFERENTIABLE | _linalg.NON_DIFFERENTIABLE
def take(g: Node, out: Node, x: Node, idx: Node) -> tuple[Node | None, ...]:
    """Each entry of x that idx picks gets g back, added up where idx picks it again (np.add.at)."""
    axis = out.attr("axis")
    return (apply(Op.SCATTER_ADD, g, idx, axis=axis, size=x.shape[axis]), None)


ADJOINTS.update({
    Op.TAKE: take,
    Op.SCATTER_ADD: lambda g, out, x, idx: (apply(Op.TAKE, g, idx, axis=out.attr("axis")), None),  # linear
    Op.TAKE_ALONG: lambda g, out, x, idx: (apply(Op.SCATTER_ADD_ALONG, g, idx, axis=out.attr("axis"),
                                                 size=x.shape[out.attr("axis")]), None),
    Op.SCATTER_ADD_ALONG: lambda g, out, x, idx: (apply(Op.TAKE_ALONG, g, idx, axis=out.attr("axis")), None),
})
NON_DIFFERENTIABLE = NON_DIFFERENTIABLE | frozenset({Op.ARGMAX, Op.ARGMIN, Op.ARGSORT})  # integer results


# -- what each rule is called in the generated code's comments (``# mul switches: e = c * d``) --
# The notes' three rules by their names; every other op is the chain rule through it.
RULE_NAMES: dict[Op, str] = {
    Op.ADD: "add distributes", Op.SUB: "add distributes", Op.NEG: "add distributes",
    Op.SUM: "add distributes", Op.MEAN: "add distributes", Op.BROADCAST: "add distributes",
    Op.MUL: "mul switches", Op.MATMUL: "mul switches", Op.OUTER: "mul switches",
    Op.MAX: "max routes", Op.MIN: "min routes", Op.AMAX: "max routes", Op.AMIN: "min routes",
    Op.WHERE: "where routes",
}


def rule_name(op: Op) -> str:
    """The rule an adjoint of ``op`` applies, as the comments name it."""
    return RULE_NAMES.get(op, f"chain rule through {op.value}")
