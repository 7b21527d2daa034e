"""The Numba back end: the same statements, compiled by ``numba.njit``.

``error_model="numpy"`` makes division follow IEEE (inf and NaN, no
exception branch), as NumPy does. Numba's NumPy subset lacks ``keepdims`` and
tuple axes on reductions and ``axis`` on ``mean``; those print as a chain of
single-axis sums here (loops arrive with the fusion work).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from diffc.codegen.linalg import NumbaLinalgPrinting
from diffc.codegen.loops import LoopPrinting
from diffc.codegen.printer import Expr, Printer
from diffc.codegen.special import NumbaSpecialPrinting
from diffc.ir import Dim, Node, Op


class NumbaPrinter(LoopPrinting, NumbaLinalgPrinting, NumbaSpecialPrinting, Printer):
    backend: ClassVar[str] = "numba"
    checks_module: ClassVar[str] = "numba_checks"
    imports: ClassVar[tuple[str, ...]] = ("import math", "from typing import ClassVar", "import numpy as np",
                                          "import numba")
    decorator: ClassVar[str] = '@numba.njit(error_model="numpy", cache=True)'
    fused_decorator: ClassVar[str] = ('@numba.njit(error_model="numpy", '
                                      'fastmath={"contract", "afn", "arcp", "nsz", "reassoc"}, cache=True)')
    # Only the explicit prange loop runs in parallel: with every ParallelOptions pass on, Numba
    # also turns np.empty, np.sum, ... into parallel loops, each compiled as its own function
    # (about 0.4 s more at the first call, for nothing: those statements are small)
    parallel_decorator: ClassVar[str] = fused_decorator[:-1] + (
        ',\n            parallel={"prange": True, "numpy": False, "reduction": False, "setitem": False,\n'
        '                      "stencil": False, "fusion": False, "comprehension": False, "inplace_binop": False})')
    fuse: bool = True

    def statements(self, nodes, exprs, body):  # type: ignore[no-untyped-def]
        """Fuse elementwise chains into loops where the program has them, else NumPy statements."""
        self.parallel = False
        if self.fuse and self.fused_statements(nodes, exprs, body):
            self.decorator = self.parallel_decorator if self.parallel else self.fused_decorator  # type: ignore[misc]
            return
        super().statements(nodes, exprs, body)

    def _sum_axes(self, node: Node, x: Expr) -> Expr:
        """Sum over ``node``'s axes: float arrays by row loops (leading axes by ``cols_sum``), else one axis at a time.

        Numba's own ``np.sum(x, axis=k)`` costs over a second of compile time
        per call site; the loop helpers are compiled once and cached.
        """
        axes = node.attr("axis")
        source = node.inputs[0]
        ndim = source.ndim
        if axes == tuple(range(ndim)):
            expr = self.call("np.sum", x)
        elif source.dtype.value in ("f64", "f32"):
            leading = axes == tuple(range(len(axes)))
            if ndim == 2:  # the helpers index [i, j]: any 2-D array as it is
                rows = x.text
            elif leading:  # (reduced, kept) is x's own layout: no transpose
                shape = source.shape
                reduced, kept = self._product(shape[:len(axes)]), self._product(shape[len(axes):])
                rows = f"np.ascontiguousarray({x.text}).reshape(({reduced}, {kept}))"
            else:
                rows, _ = self._rows(source, x, axes)
            call = f"{self.require('numba_loops', 'cols_sum' if leading else 'rows_sum')}({rows})"
            return Expr(call if node.ndim == 1 else f"{call}.reshape({self.shape(node.shape)})")
        else:
            expr = x
            for axis in sorted(axes, reverse=True):
                expr = self.call("np.sum", expr, extra=f", axis={axis}")
        if node.attr("keepdims") and node.shape and axes == tuple(range(node.inputs[0].ndim)):
            # a full sum is a Numba scalar, which has no reshape
            extra = "" if node.dtype.value == "f64" else f", dtype={self.dtype(node.dtype)}"
            expr = Expr(f"np.full({self.shape(node.shape)}, {expr.text}{extra})")
        elif node.attr("keepdims") and node.shape:
            expr = Expr(f"{self.wrap(expr, 100)}.reshape({self.shape(node.shape)})")
        return expr

    def print_sum(self, node: Node, x: Expr) -> Expr:
        return self._sum_axes(node, x)

    def print_mean(self, node: Node, x: Expr) -> Expr:
        if node.attr("axis") == tuple(range(node.inputs[0].ndim)) and not node.attr("keepdims"):
            return self.call("np.mean", x)
        shape = node.inputs[0].shape
        count = " * ".join(self.dim(shape[a]) for a in node.attr("axis")) or "1"
        total = self._sum_axes(node, x)
        return Expr(f"{self.wrap(total, 70)} / {count if count.isidentifier() or count.isdigit() else f'({count})'}",
                    70)

    # -- ops for real models: reductions along axes as row loops (diffc/support/numba_loops.py) --
    def _product(self, dims: Sequence[Dim]) -> str:
        parts = [self.dim(d) for d in dims]
        return " * ".join(p if p.isidentifier() or p.isdigit() else f"({p})" for p in parts) or "1"

    def _rows(self, source: Node, x: Expr, axes: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        """``x`` as a contiguous 2-D array: the kept axes flattened into rows, the reduced ones into columns.

        The permutation that moves the reduced axes last is static, so Numba
        sees a plain transpose and reshape; the helper loops over the rows.
        """
        if source.ndim == 0:
            return f"np.full((1, 1), {x.text})", ()
        kept = tuple(a for a in range(source.ndim) if a not in axes)
        perm = kept + tuple(axes)
        if kept == (0,) and source.ndim == 2:  # a matrix reduced along its rows is already the helpers' layout
            return x.text, perm
        shape = source.shape
        moved = x.text if perm == tuple(range(source.ndim)) else f"np.transpose({x.text}, {perm})"
        rows, cols = self._product([shape[a] for a in kept]), self._product([shape[a] for a in axes])
        return f"np.ascontiguousarray({moved}).reshape(({rows}, {cols}))", perm

    def _row_reduce(self, node: Node, x: Expr, helper: str) -> Expr:
        """A reduction over ``node``'s axes by a row helper, reshaped to the node's shape (keepdims or not)."""
        rows, _ = self._rows(node.inputs[0], x, node.attr("axis"))
        call = f"{self.require('numba_loops', helper)}({rows})"
        if not node.shape:
            return Expr(f"{call}[0]")
        return Expr(f"{call}.reshape({self.shape(node.shape)})")

    def _row_map(self, node: Node, x: Expr, helper: str) -> Expr:
        """A result of x's shape computed row by row (softmax, masks), transposed back if needed."""
        source = node.inputs[0]
        rows, perm = self._rows(source, x, node.attr("axis"))
        call = f"{self.require('numba_loops', helper)}({rows})"
        if not source.shape:
            return Expr(f"{call}[0, 0]")
        if source.ndim == 2 and node.attr("axis") == (1,):  # the helper's (rows, columns) are x's
            return Expr(call)
        moved = f"{call}.reshape({self.shape(tuple(source.shape[p] for p in perm))})"
        if perm == tuple(range(source.ndim)):
            return Expr(moved)
        inverse = tuple(sorted(range(len(perm)), key=perm.__getitem__))
        return Expr(f"np.ascontiguousarray(np.transpose({moved}, {inverse}))")

    def print_where(self, node: Node, c: Expr, a: Expr, b: Expr) -> Expr:
        """Arrays by the ``where_rows`` loop helper on 2-D views; scalars (a branch) and odd broadcasts as NumPy."""
        views = [self._rows_view(x, e, node.shape) for x, e in zip(node.inputs, (c, a, b), strict=True)]
        if not node.shape or any(v is None for v in views) or node.inputs[1].dtype != node.dtype \
                or node.inputs[2].dtype != node.dtype:
            return super().print_where(node, c, a, b)
        # where(c, g, 0) with g = A @ B used here alone (ReLU's adjoint): written into g's own array
        helper = "where_rows_into" if node.ndim == 2 and self.fresh_product(node, node.inputs[1]) else "where_rows"
        call = f"{self.require('numba_loops', helper)}({', '.join(views)})"  # type: ignore[arg-type]
        return Expr(call if node.ndim == 2 else f"{call}.reshape({self.shape(node.shape)})")

    def _rows_view(self, x: Node, expr: Expr, shape: tuple[Dim, ...]) -> str | None:
        """``x`` as a 2-D array against a result of ``shape`` seen as (rows, last axis): each axis full or 1.

        ``None`` when x broadcasts some leading axes and not others (NumPy's where prints it).
        """
        if x.ndim == 0:
            return f"np.full((1, 1), {expr.text})"
        if x.ndim == 2 == len(shape):  # already (rows or 1, columns or 1)
            return expr.text
        lead, last = shape[:-1], shape[-1]
        same = x.graph.resolve
        mine = (1,) * (len(shape) - x.ndim) + tuple(x.shape)
        cols = "1" if mine[-1] == 1 and same(last) != 1 else self.dim(last)
        if all(same(a) == same(b) for a, b in zip(mine[:-1], lead, strict=True)):
            rows = self._product(lead)
        elif all(a == 1 for a in mine[:-1]):
            rows = "1"
        else:
            return None
        return f"np.ascontiguousarray({expr.text}).reshape(({rows}, {cols}))"

    def _full(self, node: Node) -> bool:
        return node.attr("axis") == tuple(range(node.inputs[0].ndim)) and not node.attr("keepdims")

    def _whole_or_rows(self, node: Node, x: Expr, function: str, helper: str) -> Expr:
        """NumPy's own reduction of a whole array (Numba has it without ``axis``), else a row helper."""
        if self._full(node) and node.inputs[0].ndim:
            return self.call(function, x)
        return self._row_reduce(node, x, helper)

    # -- indexing: Numba has one index array per subscript, so gathers are loops (diffc/support/numba_gather.py) --
    def state_slice(self, node: Node, var: str, x: Expr) -> list[str]:
        """A slice gets a variable of its own: a loop then reads ``s[i]``, not a new view ``x[1:][i]`` per entry."""
        return [f"{var} = {self.print_slice(node, x).text}"]

    def print_gather(self, node: Node, x: Expr, idx: Expr) -> Expr:
        return self.call(self.require("numba_gather", "gather_rows"), x, idx)

    state_scatter = None  # type: ignore[assignment]  # one expression here: the helper's call

    def print_scatter(self, node: Node, g: Expr, idx: Expr) -> Expr:
        return self.call(self.require("numba_gather", "scatter_rows"), g, idx, Expr(self.dim(node.shape[1])))

    # -- integer indexing on any axis: loops over a (before, axis, after) view (diffc/support/numba_take.py) --
    def _entry(self, node: Node, idx: Expr, size: Dim) -> str:
        """A 0-d index checked and counted from the end as NumPy does: the helper raises IndexError."""
        return f"{self.require('numba_take', 'entry')}({idx.text}, {self.dim(size)}, {node.attr('axis')})"

    def _three_axes(self, x: Node, expr: Expr, axis: int, width: int) -> str:
        """``x`` as a contiguous (before, axis, after) array, ``width`` axes from ``axis`` on merged in the middle."""
        shape = x.shape
        if x.ndim == 3 and axis == 1 and width == 1:
            return expr.text
        parts = (self._product(shape[:axis]), self._product(shape[axis:axis + width]),
                 self._product(shape[axis + width:]))
        return f"{self.wrap(self._contiguous(x, expr), 100)}.reshape(({', '.join(parts)}))"

    @staticmethod
    def _contiguous(x: Node, expr: Expr) -> Expr:
        """Numba reshapes contiguous arrays only: a view (a slice, a transpose, an argument that may be one)
        goes through ``np.ascontiguousarray`` first, which copies only when the array is not contiguous."""
        if x.op in (Op.INPUT, Op.SLICE, Op.TRANSPOSE):
            return Expr(f"np.ascontiguousarray({expr.text})")
        return expr

    def _flat(self, idx: Node, expr: Expr) -> str:
        return expr.text if idx.ndim == 1 else f"{self.wrap(self._contiguous(idx, expr), 100)}.reshape(-1)"

    def print_take(self, node: Node, x: Expr, idx: Expr) -> Expr:
        source, index, axis = node.inputs[0], node.inputs[1], node.attr("axis")
        if index.ndim == 0:
            return Expr(f"{self.wrap(x, 100)}{self.on_axis(axis, self._entry(node, idx, source.shape[axis]))}")
        call = (f"{self.require('numba_take', 'take3')}({self._three_axes(source, x, axis, 1)}, "
                f"{self._flat(index, idx)}, {axis})")
        return Expr(call if source.ndim == 3 and index.ndim == 1 and axis == 1
                    else f"{call}.reshape({self.shape(node.shape)})")

    def state_scatter_add(self, node: Node, var: str, g: Expr, idx: Expr) -> list[str]:
        grad, index, axis = node.inputs[0], node.inputs[1], node.attr("axis")
        if index.ndim == 0:
            place = self.on_axis(axis, self._entry(node, idx, node.shape[axis]))
            return [f"{var} = {self.zeros(node)}", f"{var}{place} = {g.text}"]
        call = (f"{self.require('numba_take', 'scatter_add3')}({self._three_axes(grad, g, axis, index.ndim)}, "
                f"{self._flat(index, idx)}, {self.dim(node.shape[axis])}, {axis})")
        return [f"{var} = {call}.reshape({self.shape(node.shape)})"]

    def _reshaped(self, node: Node, call: str) -> Expr:
        return Expr(f"{call}.reshape({self.shape(node.shape)})")

    def print_take_along(self, node: Node, x: Expr, idx: Expr) -> Expr:
        axis = node.attr("axis")
        views = (self._three_axes(node.inputs[0], x, axis, 1), self._three_axes(node.inputs[1], idx, axis, 1))
        return self._reshaped(node, f"{self.require('numba_take', 'take_along3')}({', '.join(views)}, {axis})")

    def print_scatter_add_along(self, node: Node, g: Expr, idx: Expr) -> Expr:
        axis = node.attr("axis")
        views = (self._three_axes(node.inputs[0], g, axis, 1), self._three_axes(node.inputs[1], idx, axis, 1))
        return self._reshaped(node, f"{self.require('numba_take', 'scatter_add_along3')}({', '.join(views)}, "
                                    f"{self.dim(node.shape[axis])}, {axis})")

    def arg_extreme(self, node: Node, x: Expr, name: str) -> Expr:
        """Along an axis by a loop helper over the (before, axis, after) view; the flattened array by Numba's own."""
        source, axis = node.inputs[0], node.attr("axis")
        if axis is None:
            whole = self.call(name, x)
            return whole if not node.shape else Expr(f"np.full({self.shape(node.shape)}, {whole.text})")
        helper = self.require("numba_take", "arg_extreme3")
        return self._reshaped(node, f"{helper}({self._three_axes(source, x, axis, 1)}, {name == 'np.argmax'})")

    def print_argsort(self, node: Node, x: Expr) -> Expr:
        view = self._three_axes(node.inputs[0], x, node.attr("axis"), 1)
        return self._reshaped(node, f"{self.require('numba_take', 'argsort3')}({view})")

    def print_reshape(self, node: Node, x: Expr) -> Expr:
        return super().print_reshape(node, self._contiguous(node.inputs[0], x))


# Ops printed by a row helper of diffc/support/numba_loops.py: one entry per op, a method each below.
WHOLE_OR_ROWS = {Op.AMAX: ("np.max", "rows_max"), Op.AMIN: ("np.min", "rows_min"), Op.PROD: ("np.prod", "rows_prod")}
ROW_REDUCTIONS = {Op.LOGSUMEXP: "rows_logsumexp"}
ROW_MAPS = {Op.SOFTMAX: "rows_softmax", Op.LOG_SOFTMAX: "rows_log_softmax", Op.MAX_MASK: "rows_max_mask",
            Op.MIN_MASK: "rows_min_mask", Op.CUMSUM: "rows_cumsum", Op.CUMPROD: "rows_cumprod"}


def _row_printers() -> None:
    """``print_<op>`` for each op of the tables above."""
    for op, (function, helper) in WHOLE_OR_ROWS.items():
        setattr(NumbaPrinter, f"print_{op.value}",
                lambda self, node, x, f=function, h=helper: self._whole_or_rows(node, x, f, h))
    for op, helper in ROW_REDUCTIONS.items():
        setattr(NumbaPrinter, f"print_{op.value}", lambda self, node, x, h=helper: self._row_reduce(node, x, h))
    for op, helper in ROW_MAPS.items():
        setattr(NumbaPrinter, f"print_{op.value}", lambda self, node, x, h=helper: self._row_map(node, x, h))


_row_printers()

class NumbaStatementPrinter(NumbaPrinter):
    """The Numba printer without fused loops: what runs when Numba refuses the loops (diffc/fallback.py)."""

    fuse = False
