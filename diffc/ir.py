"""The IR: a hash-consed DAG in SSA form, with symbolic shapes.

Every front end builds a :class:`Graph` of :class:`Node` objects; every later
stage (reverse mode, passes, printers) reads and rebuilds graphs. A node is
immutable and interned: asking the graph for the same ``(op, inputs, attrs)``
twice returns the same object, so equal subexpressions are shared and node
equality is identity (O(1), never recursive).

Sizes are symbolic. A dimension is an ``int`` or a :class:`Sym` (an integer
linear combination of size names such as ``n`` or ``n - 1``). When an
operation needs two symbolic sizes to agree (the columns of ``X`` and the
length of ``w`` in ``X @ w``) the graph *unifies* them and remembers the
constraint; the generated code checks it on entry.

Nodes are created after their inputs, so creation order (``node.id``) is a
topological order: every walk below is a loop over sorted ids, never recursion.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

from diffc.errors import ShapeError, UnsupportedError

# ---------------------------------------------------------------------------
# dtypes


class DType(enum.Enum):
    """Element types. The value is the short name used in signatures."""

    F64 = "f64"
    F32 = "f32"
    I64 = "i64"
    I32 = "i32"
    BOOL = "bool"

    @property
    def is_float(self) -> bool:
        return self in (DType.F64, DType.F32)

    @property
    def numpy(self) -> np.dtype[Any]:
        return np.dtype(_NUMPY_NAMES[self])

    @staticmethod
    def from_numpy(dtype: Any) -> DType:
        name = np.dtype(dtype).name
        for key, value in _NUMPY_NAMES.items():
            if value == name:
                return key
        if np.issubdtype(np.dtype(dtype), np.integer):
            return DType.I64
        raise UnsupportedError(f"dtype {name} is not supported (use float64, float32, int or bool)")

    @staticmethod
    def parse(text: str) -> DType:
        aliases = {"float64": "f64", "float32": "f32", "int64": "i64", "int32": "i32",
                   "float": "f64", "int": "i64", "b1": "bool"}
        return DType(aliases.get(text, text))


_NUMPY_NAMES = {DType.F64: "float64", DType.F32: "float32", DType.I64: "int64",
                DType.I32: "int32", DType.BOOL: "bool"}


def result_dtype(dtypes: Iterable[DType]) -> DType:
    """NumPy's promotion restricted to our dtypes: any f64 wins, then f32, then ints."""
    seen = set(dtypes)
    for candidate in (DType.F64, DType.F32, DType.I64, DType.I32, DType.BOOL):
        if candidate in seen:
            return candidate
    return DType.F64


# ---------------------------------------------------------------------------
# symbolic sizes


class Sym:
    """An integer linear combination of named sizes plus a constant: ``n - 1``.

    Immutable and hashable by value. Arithmetic with ints and other ``Sym``
    returns an ``int`` when every name cancels, so concrete sizes stay ints.
    """

    __slots__ = ("terms", "const", "_key")

    def __init__(self, terms: Iterable[tuple[str, int]] = (), const: int = 0) -> None:
        merged: dict[str, int] = {}
        for name, coeff in terms:
            merged[name] = merged.get(name, 0) + coeff
        self.terms = tuple(sorted((k, v) for k, v in merged.items() if v != 0))
        self.const = const
        self._key = (self.terms, const)

    @staticmethod
    def named(name: str) -> Sym:
        return Sym(((name, 1),))

    @property
    def name(self) -> str | None:
        """The size name when this is a bare name (``n``), else ``None``."""
        if len(self.terms) == 1 and self.terms[0][1] == 1 and self.const == 0:
            return self.terms[0][0]
        return None

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and other._key == self._key

    def __add__(self, other: Dim) -> Dim:
        if isinstance(other, Sym):
            return _norm(Sym(self.terms + other.terms, self.const + other.const))
        return _norm(Sym(self.terms, self.const + int(other)))

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return _norm(Sym(((k, -v) for k, v in self.terms), -self.const))

    def __sub__(self, other: Dim) -> Dim:
        return self + (-other)

    def __rsub__(self, other: Dim) -> Dim:
        return (-self) + other

    def __repr__(self) -> str:
        return dim_text(self)


Dim = Union[int, Sym]  # noqa: UP007 - a runtime alias, usable on Python 3.10
Shape = tuple[Dim, ...]


def _norm(sym: Sym) -> Dim:
    return sym.const if not sym.terms else sym


def dim_text(dim: Dim, names: dict[str, str] | None = None) -> str:
    """``n``, ``n - 1``, ``2*n + 1``: the text of a size (names renamed by ``names``)."""
    if isinstance(dim, int):
        return str(dim)
    parts: list[str] = []
    for name, coeff in dim.terms:
        shown = names.get(name, name) if names else name
        body = shown if abs(coeff) == 1 else f"{abs(coeff)}*{shown}"
        if not parts:
            parts.append(body if coeff > 0 else f"-{body}")
        else:
            parts.append(f"+ {body}" if coeff > 0 else f"- {body}")
    if dim.const:
        parts.append(f"+ {dim.const}" if dim.const > 0 else f"- {-dim.const}")
    return " ".join(parts)


def shape_text(shape: Shape) -> str:
    return "[" + ",".join(dim_text(d) for d in shape) + "]"


def type_text(dtype: DType, shape: Shape) -> str:
    """``f64[m,n]``; a scalar is just ``f64``."""
    return dtype.value + (shape_text(shape) if shape else "")


def dim_names(dim: Dim) -> tuple[str, ...]:
    return () if isinstance(dim, int) else tuple(k for k, _ in dim.terms)


def dim_names_of(shape: Shape) -> list[str]:
    return [name for d in shape for name in dim_names(d)]


# ---------------------------------------------------------------------------
# ops


class Op(enum.Enum):
    """Every operation of the IR. Properties live in the sets below."""

    INPUT = "input"
    CONST = "const"
    DIM = "dim"            # a symbolic size as an integer scalar (X.shape[0])
    # elementwise, one input
    NEG = "neg"
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    SIN = "sin"
    COS = "cos"
    TAN = "tan"
    TANH = "tanh"
    ABS = "abs"
    SIGN = "sign"
    SIGMOID = "sigmoid"
    CAST = "cast"          # attrs: dtype
    # elementwise, two inputs
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    POW = "pow"
    MAX = "max"            # np.maximum
    MIN = "min"            # np.minimum
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"
    EQ = "eq"
    NE = "ne"
    # elementwise, three inputs
    WHERE = "where"        # where(cond, a, b)
    # reductions: attrs axis (tuple of non-negative ints), keepdims
    SUM = "sum"
    MEAN = "mean"
    # linear algebra and layout
    MATMUL = "matmul"      # np.matmul on operands of rank 1 or 2
    OUTER = "outer"
    TRANSPOSE = "transpose"  # attrs: axes
    BROADCAST = "broadcast"  # attrs: shape (the target shape)
    RESHAPE = "reshape"      # attrs: shape


UNARY = frozenset({Op.NEG, Op.EXP, Op.LOG, Op.SQRT, Op.SIN, Op.COS, Op.TAN, Op.TANH,
                   Op.ABS, Op.SIGN, Op.SIGMOID, Op.CAST})
BINARY = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.POW, Op.MAX, Op.MIN,
                    Op.GT, Op.GE, Op.LT, Op.LE, Op.EQ, Op.NE})
COMPARISONS = frozenset({Op.GT, Op.GE, Op.LT, Op.LE, Op.EQ, Op.NE})
ELEMENTWISE = UNARY | BINARY | frozenset({Op.WHERE})
COMMUTATIVE = frozenset({Op.ADD, Op.MUL, Op.MAX, Op.MIN, Op.EQ, Op.NE})
REDUCTIONS = frozenset({Op.SUM, Op.MEAN})
LEAVES = frozenset({Op.INPUT, Op.CONST, Op.DIM})


# ---------------------------------------------------------------------------
# nodes


Attrs = tuple[tuple[str, Any], ...]


class Node:
    """One SSA value: ``%id = op[attrs] inputs : dtype[shape]``.

    Created only by :meth:`Graph.apply` and friends, which intern it. The
    arithmetic operators build new nodes in the same graph, so adjoint rules
    read like formulas (``g * y``); ``==`` stays identity on purpose.
    """

    __slots__ = ("op", "inputs", "attrs", "dtype", "id", "graph", "value", "_shape", "__weakref__")

    def __init__(self, graph: Graph, op: Op, inputs: tuple[Node, ...], attrs: Attrs,
                 dtype: DType, shape: Shape, value: Any = None) -> None:
        self.graph = graph
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.dtype = dtype
        self._shape = shape
        self.value = value
        self.id = len(graph.nodes)

    @property
    def shape(self) -> Shape:
        """The shape with every unified size replaced by its representative."""
        return self.graph.resolve_shape(self._shape)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def name(self) -> str | None:
        """The user's name for this value (an input or an assignment target)."""
        return self.graph.names.get(self)

    def __repr__(self) -> str:
        return f"%{self.id}"

    # arithmetic builds nodes; Python numbers become constants of our dtype
    def _lift(self, other: Any) -> Node:
        return other if isinstance(other, Node) else self.graph.const(other, self.dtype)

    def __add__(self, other: Any) -> Node:
        return self.graph.apply(Op.ADD, self, self._lift(other))

    def __radd__(self, other: Any) -> Node:
        return self.graph.apply(Op.ADD, self._lift(other), self)

    def __sub__(self, other: Any) -> Node:
        return self.graph.apply(Op.SUB, self, self._lift(other))

    def __rsub__(self, other: Any) -> Node:
        return self.graph.apply(Op.SUB, self._lift(other), self)

    def __mul__(self, other: Any) -> Node:
        return self.graph.apply(Op.MUL, self, self._lift(other))

    def __rmul__(self, other: Any) -> Node:
        return self.graph.apply(Op.MUL, self._lift(other), self)

    def __truediv__(self, other: Any) -> Node:
        return self.graph.apply(Op.DIV, self, self._lift(other))

    def __rtruediv__(self, other: Any) -> Node:
        return self.graph.apply(Op.DIV, self._lift(other), self)

    def __pow__(self, other: Any) -> Node:
        return self.graph.apply(Op.POW, self, self._lift(other))

    def __neg__(self) -> Node:
        return self.graph.apply(Op.NEG, self)

    def __matmul__(self, other: Node) -> Node:
        return self.graph.apply(Op.MATMUL, self, other)

    @property
    def T(self) -> Node:  # noqa: N802 - NumPy's spelling
        return self.graph.apply(Op.TRANSPOSE, self, axes=tuple(reversed(range(self.ndim))))


# ---------------------------------------------------------------------------
# shape rules


def broadcast_shapes(graph: Graph, *shapes: Shape) -> Shape:
    """NumPy broadcasting; two different symbolic sizes are unified (must agree)."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(ndim):
        dims = [graph.resolve(s[axis - ndim + len(s)]) for s in shapes if axis - ndim + len(s) >= 0]
        result: Dim = 1
        for d in dims:
            if d == 1:
                continue
            if result == 1:
                result = d
            elif result != d:
                result = graph.unify(result, d, shapes)
        out.append(result)
    return tuple(out)


def _norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for an array of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis!r}")
    return tuple(sorted(out))


def _reduce_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _matmul_shape(graph: Graph, a: Shape, b: Shape) -> Shape:
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise ShapeError(f"matmul takes operands of rank 1 or 2, got shapes {shape_text(a)} and {shape_text(b)}")
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if graph.resolve(inner_a) != graph.resolve(inner_b):
        graph.unify(inner_a, inner_b, (a, b), what="matmul")
    return tuple(a[:-1]) + tuple(b[1:] if len(b) == 2 else ())


# ---------------------------------------------------------------------------
# graph


def _const_key(value: np.ndarray) -> tuple[Any, ...]:
    """Constants are equal when dtype, shape and bits agree: 0.0 and -0.0 differ, NaNs merge."""
    if value.dtype.kind == "f":
        canon = np.where(np.isnan(value), np.nan, value).astype(value.dtype)
        return (value.dtype.str, value.shape, canon.tobytes())
    return (value.dtype.str, value.shape, value.tobytes())


class Graph:
    """A builder and owner of interned nodes, and of the size unification."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._intern: dict[tuple[Any, ...], Node] = {}
        self.names: dict[Node, str] = {}
        self._alias: dict[str, Dim] = {}
        self.constraints: list[tuple[Dim, Dim]] = []
        self._size_order: dict[str, int] = {}  # size names in the order inputs declare them

    # -- sizes ------------------------------------------------------------
    def resolve(self, dim: Dim) -> Dim:
        """Substitute unified size names until none is left to substitute."""
        for _ in range(len(self._alias) + 1):
            if isinstance(dim, int) or not any(k in self._alias for k, _ in dim.terms):
                return dim
            total: Dim = dim.const
            for name, coeff in dim.terms:
                target = self._alias.get(name, Sym.named(name))
                for _ in range(abs(coeff)):
                    total = total + target if coeff > 0 else total - target
            dim = total
        return dim

    def resolve_shape(self, shape: Shape) -> Shape:
        return shape if not self._alias else tuple(self.resolve(d) for d in shape)

    def unify(self, a: Dim, b: Dim, shapes: Sequence[Shape] = (), what: str = "broadcast") -> Dim:
        """Record that sizes ``a`` and ``b`` are equal; return the representative."""
        a, b = self.resolve(a), self.resolve(b)
        if a == b:
            return a
        shown = " and ".join(shape_text(tuple(self.resolve(d) for d in s)) for s in shapes)
        if isinstance(a, int) and isinstance(b, int):
            raise ShapeError(f"{what}: sizes {a} and {b} do not agree (shapes {shown})")
        self.constraints.append((a, b))
        # bind a bare name to the other side; of two names, the one declared first stays
        pairs = ((b, a), (a, b))
        if isinstance(a, Sym) and isinstance(b, Sym) and a.name and b.name:
            order = self._size_order
            if order.get(a.name, len(order)) > order.get(b.name, len(order)):
                pairs = ((a, b), (b, a))
        for name_side, other in pairs:
            if isinstance(name_side, Sym) and name_side.name is not None:
                if name_side.name in dim_names(other):
                    raise ShapeError(f"{what}: sizes {dim_text(a)} and {dim_text(b)} cannot agree (shapes {shown})")
                self._alias[name_side.name] = other
                return other
        return a  # two compound sizes: keep both, checked at entry

    def size_names(self) -> dict[str, Dim]:
        return dict(self._alias)

    # -- building ----------------------------------------------------------
    def _make(self, key: tuple[Any, ...], op: Op, inputs: tuple[Node, ...], attrs: Attrs,
              dtype: DType, shape: Shape, value: Any = None) -> Node:
        node = self._intern.get(key)
        if node is None:
            node = Node(self, op, inputs, attrs, dtype, shape, value)
            self.nodes.append(node)
            self._intern[key] = node
        return node

    def input(self, name: str, dtype: DType = DType.F64, shape: Shape = ()) -> Node:
        node = self._make((Op.INPUT, name), Op.INPUT, (), (("name", name),), dtype, tuple(shape))
        self.names.setdefault(node, name)
        for size in dim_names_of(shape):
            self._size_order.setdefault(size, len(self._size_order))
        return node

    def const(self, value: Any, dtype: DType | None = None, shape: Shape | None = None) -> Node:
        """A constant. A Python number takes ``dtype`` (default f64): NumPy's weak scalars."""
        if dtype is None:
            dtype = DType.from_numpy(np.asarray(value).dtype) if isinstance(value, np.ndarray) else DType.F64
        array = np.asarray(value, dtype=dtype.numpy)
        if shape is not None and array.shape != tuple(shape) and array.ndim == 0:
            return self.apply(Op.BROADCAST, self.const(array, dtype), shape=tuple(shape))
        array = array.copy()
        array.flags.writeable = False
        return self._make((Op.CONST, _const_key(array)), Op.CONST, (), (), dtype, array.shape, array)

    def dim(self, dim: Dim) -> Node:
        """A size as an integer scalar node (``X.shape[0]`` in a mean)."""
        dim = self.resolve(dim)
        if isinstance(dim, int):
            return self.const(dim, DType.I64)
        return self._make((Op.DIM, dim), Op.DIM, (), (("dim", dim),), DType.I64, ())

    def apply(self, op: Op, *inputs: Node, **attrs: Any) -> Node:
        """Build (or find) ``op(inputs, attrs)``, inferring shape and dtype."""
        for x in inputs:
            if x.graph is not self:
                raise ValueError("node from another graph")
        rule = _RULES.get(op)
        if rule is None:
            raise UnsupportedError(f"op {op.value} cannot be built with apply()", op=op.value)
        dtype, shape, attrs = rule(self, inputs, attrs)
        frozen = tuple(sorted(attrs.items()))
        key = (op, tuple(x.id for x in inputs), frozen)
        return self._make(key, op, tuple(inputs), frozen, dtype, shape)

    def copy_node(self, node: Node, inputs: Sequence[Node]) -> Node:
        """Rebuild ``node`` of another graph here, on new inputs (used by passes)."""
        if node.op is Op.INPUT:
            return self.input(node.attr("name"), node.dtype, node._shape)
        if node.op is Op.CONST:
            return self.const(node.value, node.dtype)
        if node.op is Op.DIM:
            return self.dim(node.attr("dim"))
        return self.apply(node.op, *inputs, **dict(node.attrs))

    def adopt_sizes(self, other: Graph) -> None:
        """Take over another graph's size unifications (passes rebuild graphs)."""
        self._alias.update(other._alias)
        self._size_order.update(other._size_order)
        self.constraints.extend(other.constraints)


# ---------------------------------------------------------------------------
# per-op shape and dtype rules: (graph, inputs, attrs) -> (dtype, shape, attrs)

Rule = Any
RuleResult = tuple[DType, Shape, dict[str, Any]]


def _elementwise(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    return result_dtype(x.dtype for x in inputs), broadcast_shapes(graph, *(x.shape for x in inputs)), attrs


def _float_elementwise(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    dtype, shape, attrs = _elementwise(graph, inputs, attrs)
    return (dtype if dtype.is_float else DType.F64), shape, attrs


def _compare(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    return DType.BOOL, broadcast_shapes(graph, *(x.shape for x in inputs)), attrs


def _where(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    cond, a, b = inputs
    return result_dtype((a.dtype, b.dtype)), broadcast_shapes(graph, cond.shape, a.shape, b.shape), attrs


def _cast(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    return attrs["dtype"], inputs[0].shape, attrs


def _reduction(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    axes = _norm_axes(attrs.get("axis"), x.ndim)
    keepdims = bool(attrs.get("keepdims", False))
    dtype = x.dtype if x.dtype.is_float else DType.F64 if attrs.get("mean") else DType.I64
    return dtype, _reduce_shape(x.shape, axes, keepdims), {"axis": axes, "keepdims": keepdims}


def _mean(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    dtype, shape, attrs = _reduction(graph, inputs, attrs)
    return (dtype if dtype.is_float else DType.F64), shape, attrs


def _matmul(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    a, b = inputs
    return result_dtype((a.dtype, b.dtype)), _matmul_shape(graph, a.shape, b.shape), attrs


def _outer(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    a, b = inputs
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"outer takes two vectors, got shapes {shape_text(a.shape)} and {shape_text(b.shape)}")
    return result_dtype((a.dtype, b.dtype)), (a.shape[0], b.shape[0]), attrs


def _transpose(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    axes = attrs.get("axes")
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose axes {axes} do not match an array of rank {x.ndim}")
    shape = x.shape
    return x.dtype, tuple(shape[a] for a in axes), {"axes": axes}


def _broadcast(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    target = tuple(graph.resolve(d) for d in attrs["shape"])
    got = broadcast_shapes(graph, x.shape, target)
    if len(got) != len(target):
        raise ShapeError(f"cannot broadcast {shape_text(x.shape)} to {shape_text(target)}")
    return x.dtype, target, {"shape": target}


def _reshape(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    target = tuple(graph.resolve(d) for d in attrs["shape"])
    return x.dtype, target, {"shape": target}


_RULES: dict[Op, Rule] = {
    **{op: _float_elementwise for op in UNARY - {Op.NEG, Op.ABS, Op.SIGN, Op.CAST}},
    Op.NEG: _elementwise, Op.ABS: _elementwise, Op.SIGN: _elementwise, Op.CAST: _cast,
    Op.ADD: _elementwise, Op.SUB: _elementwise, Op.MUL: _elementwise, Op.DIV: _float_elementwise,
    Op.POW: _elementwise, Op.MAX: _elementwise, Op.MIN: _elementwise,
    **{op: _compare for op in COMPARISONS},
    Op.WHERE: _where,
    Op.SUM: _reduction, Op.MEAN: _mean,
    Op.MATMUL: _matmul, Op.OUTER: _outer, Op.TRANSPOSE: _transpose,
    Op.BROADCAST: _broadcast, Op.RESHAPE: _reshape,
}


# ---------------------------------------------------------------------------
# programs: a graph with named inputs and outputs


class Program:
    """Inputs and outputs of one function over a graph.

    ``inputs`` are INPUT nodes in signature order; ``outputs`` are the
    returned values, named by ``output_names``.
    """

    def __init__(self, graph: Graph, inputs: Sequence[Node], outputs: Sequence[Node],
                 output_names: Sequence[str] | None = None, name: str = "f") -> None:
        self.graph = graph
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.output_names = list(output_names) if output_names else [f"out{i}" for i in range(len(outputs))]
        self.name = name

    def nodes(self) -> list[Node]:
        """The nodes that the outputs depend on, in topological (id) order."""
        return reachable(self.outputs)

    def text(self) -> str:
        return program_text(self)

    __str__ = text


def reachable(roots: Iterable[Node]) -> list[Node]:
    """Every node some root depends on, sorted by id (a topological order)."""
    seen: set[Node] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.inputs)
    return sorted(seen, key=lambda n: n.id)


def users(nodes: Iterable[Node]) -> dict[Node, list[Node]]:
    """For each node, the nodes among ``nodes`` that use it (once per use)."""
    out: dict[Node, list[Node]] = {}
    for node in nodes:
        out.setdefault(node, [])
        for x in node.inputs:
            out.setdefault(x, []).append(node)
    return out


def _const_text(node: Node) -> str:
    value = node.value
    if value.ndim == 0:
        return float_text(value.item()) if node.dtype.is_float else repr(value.item())
    return f"array{value.shape}"


def float_text(x: float) -> str:
    """A float written so that it reads back to the same bits (``-0.0`` included)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def node_text(node: Node) -> str:
    """``%4 = mul %2 %3 : f64[n]``; inputs and constants name themselves."""
    if node.op is Op.INPUT:
        rhs = f"input {node.attr('name')}"
    elif node.op is Op.CONST:
        rhs = f"const {_const_text(node)}"
    elif node.op is Op.DIM:
        rhs = f"dim {dim_text(node.attr('dim'))}"
    else:
        attrs = ""
        if node.attrs:
            attrs = "[" + ", ".join(f"{k}={_attr_text(v)}" for k, v in node.attrs) + "]"
        rhs = f"{node.op.value}{attrs} " + " ".join(f"%{x.id}" for x in node.inputs)
    return f"%{node.id} = {rhs} : {type_text(node.dtype, node.shape)}"


def _attr_text(value: Any) -> str:
    if isinstance(value, DType):
        return value.value
    if isinstance(value, tuple):
        return "(" + ",".join(_attr_text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, Sym):
        return dim_text(value)
    return repr(value)


def program_text(program: Program) -> str:
    sig = ", ".join(f"{n.attr('name')}: {type_text(n.dtype, n.shape)}" for n in program.inputs)
    lines = [f"def {program.name}({sig}):"]
    lines += ["  " + node_text(n) for n in program.nodes() if n.op is not Op.INPUT]
    rets = ", ".join(f"{name}=%{n.id}" for name, n in zip(program.output_names, program.outputs, strict=True))
    lines.append(f"  return {rets}")
    return "\n".join(lines)


def parse_type(text: str) -> tuple[DType, Shape]:
    """``"f64[m,n]"`` -> (F64, (Sym(m), Sym(n))); ``"f64"`` is a scalar; sizes may be ints."""
    text = text.strip()
    if "[" not in text:
        return DType.parse(text), ()
    if not text.endswith("]"):
        raise ValueError(f"bad type {text!r}: expected e.g. 'f64[m,n]'")
    head, body = text[:-1].split("[", 1)
    dims: list[Dim] = []
    for part in body.split(","):
        part = part.strip()
        if not part:
            continue
        if part.lstrip("-").isdigit():
            dims.append(int(part))
        elif part.isidentifier():
            dims.append(Sym.named(part))
        else:
            raise ValueError(f"bad size {part!r} in type {text!r}: use a name or an integer")
    return DType.parse(head.strip()), tuple(dims)
