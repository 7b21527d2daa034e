"""Split a loss into a sum over the rows of its data and a term of the parameters alone.

A loss such as ``mean(softplus(X @ w + b) - y * z) + lam / 2 * sum(w * w)``
is ``A + B / m + P``: ``A`` a sum over the rows of X and y, ``B`` a sum that
the mean divides by the row count m, and ``P`` a function of the parameters.
Each block of rows then contributes its own partial sums, and the blocks
add up (diffc/dask.py). This pass proves the split from the IR and prints
it as two programs over the same inputs plus ``rows`` (the total number of
rows, an int): the *block* program, whose value is the block's part of
``A + B / rows``, and the *parameter* program, ``P`` (``None`` when there is
none), run once. A value that the rows couple (a max over the rows, a
normalisation across them, the log of a sum over them) raises
:class:`~diffc.errors.RowCouplingError` naming its node.

Every node is one of four kinds, found in one walk in topological order:

- PARAM: the same for every block (no data under it; the row count counts);
- ROW: row i depends on row i of the data alone, and the row axis is axis 0;
- ROWT: a ROW matrix transposed, met only as the left operand of a matmul;
- TOTAL: a sum over all rows, kept as a pair (block part, parameter part).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from diffc.errors import RowCouplingError
from diffc.ir import (
    AXIS_OPS,
    ELEMENTWISE,
    FULL,
    REDUCTIONS,
    DType,
    Node,
    Op,
    Program,
    Sym,
    dim_names,
    node_text,
    type_text,
)
from diffc.passes.rebuild import rebuild


class Kind(enum.Enum):
    PARAM = "param"
    ROW = "row"
    ROWT = "rowt"
    TOTAL = "total"


@dataclass
class RowSplit:
    """The two programs of a decomposable loss; both take the loss's inputs, then ``rows``."""

    block: Program
    params: Program | None
    data: tuple[str, ...]


# reductions other than sum and mean over the rows, and axis ops along them: what they do to the rows
COUPLING = {Op.AMAX: "takes the maximum over the rows", Op.AMIN: "takes the minimum over the rows",
            Op.LOGSUMEXP: "takes a log-sum-exp over the rows", Op.NORM: "takes a norm over the rows",
            Op.PROD: "multiplies over the rows", Op.SOFTMAX: "normalises across the rows",
            Op.LOG_SOFTMAX: "normalises across the rows", Op.CUMSUM: "runs a cumulative sum down the rows",
            Op.CUMPROD: "runs a cumulative product down the rows", Op.MAX_MASK: "compares the rows",
            Op.MIN_MASK: "compares the rows", Op.ARANGE: "numbers the rows"}
LINEAR_UNARY = frozenset({Op.NEG, Op.CAST, Op.BROADCAST, Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.SUM, Op.MEAN})
ROW_LOCAL_UNARY = frozenset({Op.CAST})


class _Splitter:
    def __init__(self, program: Program, data: Sequence[str]) -> None:
        self.program = rebuild(program)  # a copy whose graph this pass may extend
        self.graph = self.program.graph
        self.label = program.name
        inputs = {n.attr("name"): n for n in self.program.inputs}
        self.data = [inputs[d] for d in data]
        self.rows_dim = self._row_size()
        name = "rows"
        while name in inputs:
            name += "_"
        self.rows = self.graph.input(name, DType.I64, ())
        self.kind: dict[Node, Kind] = {}
        self.new: dict[Node, Node] = {}  # PARAM, ROW, ROWT nodes: their block form
        self.total: dict[Node, tuple[Node | None, Node | None]] = {}

    # -- the row axis ------------------------------------------------------
    def _row_size(self) -> Sym:
        names = ", ".join(n.attr("name") for n in self.data)
        first = self.data[0]
        if not first.shape:
            raise RowCouplingError(f"{self.label}: data argument {first.attr('name')!r} is a scalar; "
                                   "data arguments are arrays whose rows are split into blocks")
        dim = self.graph.resolve(first.shape[0])
        if not isinstance(dim, Sym) or dim.name is None:
            raise RowCouplingError(f"{self.label}: the rows of {names} have the fixed size {dim}; declare a "
                                   "symbolic row count (f64[m,n]) so that blocks of any size fit")
        for node in self.data[1:]:
            if not node.shape or self.graph.resolve(node.shape[0]) != dim:
                raise RowCouplingError(f"{self.label}: data argument {node.attr('name')!r} "
                                       f"({type_text(node.dtype, node.shape)}) does not have the rows of "
                                       f"{first.attr('name')!r} as its leading axis")
        return dim

    def has_rows(self, shape: Sequence[object]) -> list[int]:
        name = self.rows_dim.name
        return [axis for axis, d in enumerate(shape) if not isinstance(d, int) and name in dim_names(d)]

    def row_shaped(self, node: Node) -> bool:
        """Rows on axis 0 and nowhere else, as the size itself (not m - 1)."""
        shape = node.shape
        return bool(shape) and shape[0] == self.rows_dim and self.has_rows(shape) == [0]

    def couple(self, node: Node, why: str) -> RowCouplingError:
        who = f" ({node.name})" if node.name else ""
        data = ", ".join(n.attr("name") for n in self.data)
        return RowCouplingError(f"{self.label} is not a sum over the rows of {data}: {node.op.value}{who} at "
                                f"`{node_text(node)}` {why}, so blocks of rows cannot be added up", op=node.op.value)

    # -- the walk ------------------------------------------------------------
    def run(self) -> RowSplit:
        for node in self.program.inputs:
            self.kind[node] = Kind.ROW if node in self.data else Kind.PARAM
            self.new[node] = node
            if node not in self.data and self.has_rows(node.shape):
                raise RowCouplingError(
                    f"{self.label}: argument {node.attr('name')!r} ({type_text(node.dtype, node.shape)}) has an "
                    "axis of the rows' size but is not chunked with them; pass it as a Dask array too")
        for node in self.program.nodes():
            if node not in self.kind:
                self.visit(node)
        out = self.program.outputs[0]
        kind = self.kind[out]
        if kind is Kind.TOTAL:
            block, params = self.total[out]
        elif kind is Kind.PARAM:
            block, params = None, self.new[out]
        else:
            raise self.couple(out, "is not a scalar")
        zero = self.graph.const(0.0, out.dtype)
        inputs = [*self.program.inputs, self.rows]
        names = self.program.output_names
        block_program = Program(self.graph, inputs, [block if block is not None else zero], names,
                                f"{self.label}_rows")
        params_program = None if params is None else Program(self.graph, inputs, [params], names,
                                                                  f"{self.label}_params")
        return RowSplit(block_program, params_program, tuple(n.attr("name") for n in self.data))

    def visit(self, node: Node) -> None:
        kinds = [self.kind[x] for x in node.inputs]
        if node.op is Op.DIM:
            self._dim(node)
        elif Kind.TOTAL in kinds:
            self._total(node, kinds)
        elif Kind.ROW in kinds or Kind.ROWT in kinds:
            self._row(node, kinds)
        elif self.has_rows(node.shape):  # np.ones(m), arange(m): made of nothing but the row count
            if node.op is Op.BROADCAST and self.row_shaped(node):
                self._set(node, Kind.ROW)
            else:
                raise self.couple(node, COUPLING.get(node.op, "has the rows' size without reading the data"))
        else:
            self._set(node, Kind.PARAM)

    def _set(self, node: Node, kind: Kind, new: Node | None = None) -> None:
        self.kind[node] = kind
        self.new[node] = new if new is not None else self.graph.copy_node(node, [self.new[x] for x in node.inputs])

    def _dim(self, node: Node) -> None:
        dim = node.attr("dim")
        if dim == self.rows_dim:
            self._set(node, Kind.PARAM, self.rows)  # the total row count, the same in every block
        elif self.has_rows([dim]):
            raise self.couple(node, "uses a size made from the row count")
        else:
            self._set(node, Kind.PARAM)

    def _row(self, node: Node, kinds: list[Kind]) -> None:
        op = node.op
        x = node.inputs[0] if node.inputs else None
        if op is Op.MATMUL:
            a, b = node.inputs
            ka, kb = kinds
            if ka is Kind.ROW and a.ndim == 2 and kb is Kind.PARAM:
                return self._set(node, Kind.ROW)
            if (ka is Kind.ROWT or (ka is Kind.ROW and a.ndim == 1)) and kb is Kind.ROW:  # X.T @ r, r @ r
                return self._to_total(node, self.graph.copy_node(node, [self.new[a], self.new[b]]))
            raise self.couple(node, "multiplies across the rows")
        if Kind.ROWT in kinds:
            if op is Op.TRANSPOSE:
                return self._set(node, Kind.ROW)
            raise self.couple(node, "reads a transposed data matrix other than in X.T @ r")
        if op in REDUCTIONS or op in AXIS_OPS:
            axes = node.attr("axis")
            axes = tuple(range(x.ndim)) if axes is None else (axes,) if isinstance(axes, int) else tuple(axes)
            if 0 not in axes:
                return self._set(node, Kind.ROW)
            if op is Op.SUM:
                return self._to_total(node, self.graph.copy_node(node, [self.new[x]]))
            if op is Op.MEAN:
                return self._to_total(node, self._mean(node, axes))
            raise self.couple(node, COUPLING.get(op, "combines the rows"))
        if op is Op.TRANSPOSE:
            axes = node.attr("axes")
            if axes[0] == 0:
                return self._set(node, Kind.ROW)
            if x.ndim == 2:
                return self._set(node, Kind.ROWT)
        if op is Op.SLICE and node.attr("index").items[0] == FULL and self.row_shaped(node):
            return self._set(node, Kind.ROW)
        local = op in ELEMENTWISE or op in ROW_LOCAL_UNARY or op is Op.GATHER
        local |= op in (Op.BROADCAST, Op.RESHAPE) and (x is None or not self.has_rows(x.shape) or x.ndim == node.ndim
                                                       or op is Op.RESHAPE)
        local |= op in (Op.TAKE, Op.TAKE_ALONG) and node.attr("axis") not in (0, None)
        if local and self.row_shaped(node):
            if op in ELEMENTWISE and any(k is Kind.ROW and i.ndim != node.ndim for k, i in zip(kinds, node.inputs,
                                                                                                 strict=True)):
                raise self.couple(node, "broadcasts the rows onto another axis")
            return self._set(node, Kind.ROW)
        raise self.couple(node, COUPLING.get(op, "mixes values of different rows"))

    def _mean(self, node: Node, axes: tuple[int, ...]) -> Node:
        """``mean`` over the rows (and other axes): the block's sum of the mean over the others, over ``rows``."""
        x = self.new[node.inputs[0]]
        keep = bool(node.attr("keepdims"))
        others = tuple(a for a in axes if a != 0)
        inner = self.graph.apply(Op.MEAN, x, axis=others, keepdims=keep) if others else x  # rows stay axis 0
        summed = self.graph.apply(Op.SUM, inner, axis=(0,), keepdims=keep)
        count = self.graph.apply(Op.CAST, self.rows, dtype=node.dtype)
        return self.graph.apply(Op.DIV, summed, count)

    def _to_total(self, node: Node, block: Node) -> None:
        self.kind[node] = Kind.TOTAL
        self.total[node] = (self._fit(block, node), None)

    def _fit(self, part: Node | None, like: Node) -> Node | None:
        """A part in the node's own shape and dtype (a broadcast scalar summed later must count each entry)."""
        if part is None:
            return None
        if part.dtype is not like.dtype:
            part = self.graph.apply(Op.CAST, part, dtype=like.dtype)
        if part.shape != like.shape:
            part = self.graph.apply(Op.BROADCAST, part, shape=like.shape)
        return part

    def _parts(self, x: Node) -> tuple[Node | None, Node | None]:
        kind = self.kind[x]
        if kind is Kind.TOTAL:
            return self.total[x]
        if kind is Kind.PARAM:
            return None, self.new[x]
        raise AssertionError("a row value meets a total only through _total's check")

    def _total(self, node: Node, kinds: list[Kind]) -> None:
        """Linear maps of totals stay totals: each part goes through the same op."""
        op = node.op
        if any(k in (Kind.ROW, Kind.ROWT) for k in kinds):
            raise self.couple(node, "combines a sum over all rows with values of single rows")
        parts = [self._parts(x) for x in node.inputs]
        totals = [k is Kind.TOTAL for k in kinds]
        g = self.graph
        if op in (Op.ADD, Op.SUB):
            (ab, ap), (bb, bp) = parts

            def combine(a: Node | None, b: Node | None) -> Node | None:
                if b is None:
                    return a
                if a is None:
                    return b if op is Op.ADD else g.apply(Op.NEG, b)
                return g.apply(op, a, b)

            block, params = combine(ab, bb), combine(ap, bp)
        elif (op is Op.MUL or op is Op.MATMUL) and sum(totals) == 1 or op is Op.DIV and totals == [True, False]:
            i = totals.index(True)
            other = self.new[node.inputs[1 - i]]

            def scaled(part: Node | None) -> Node | None:
                if part is None:
                    return None
                return g.apply(op, *((part, other) if i == 0 else (other, part)))

            block, params = scaled(parts[i][0]), scaled(parts[i][1])
        elif op in LINEAR_UNARY:
            attrs = dict(node.attrs)
            (xb, xp), = parts
            block = None if xb is None else g.apply(op, xb, **attrs)
            params = None if xp is None else g.apply(op, xp, **attrs)
        else:
            product = op in (Op.MUL, Op.MATMUL)
            why = "multiplies two sums over the rows" if product else "is not linear in a sum over the rows"
            raise self.couple(node, why)
        self.kind[node] = Kind.TOTAL
        self.total[node] = (self._fit(block, node), self._fit(params, node))


def split_rows(program: Program, data: Sequence[str]) -> RowSplit:
    """The block and parameter programs of ``program``, a scalar loss summed over the rows of ``data``.

    ``data`` names inputs whose leading axis is the rows; raises
    :class:`RowCouplingError` naming the node when the loss does not decompose.
    """
    if not data:
        raise RowCouplingError(f"{program.name}: no data argument to split into blocks of rows")
    return _Splitter(program, data).run()
