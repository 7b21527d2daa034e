"""The Numba back end: the same statements, compiled by ``numba.njit``.

``error_model="numpy"`` makes division follow IEEE (inf and NaN, no
exception branch), as NumPy does. Numba's NumPy subset lacks ``keepdims`` and
tuple axes on reductions and ``axis`` on ``mean``; those print as a chain of
single-axis sums here (loops arrive with the fusion work).
"""

from __future__ import annotations

from typing import ClassVar

from diffc.codegen.printer import Expr, Printer
from diffc.ir import Node


class NumbaPrinter(Printer):
    backend: ClassVar[str] = "numba"
    imports: ClassVar[tuple[str, ...]] = ("import numpy as np", "import numba")
    decorator: ClassVar[str] = '@numba.njit(error_model="numpy", cache=True)'

    def _sum_axes(self, node: Node, x: Expr) -> Expr:
        """Sum one axis at a time, highest first, then restore kept axes by reshape."""
        axes = node.attr("axis")
        if axes == tuple(range(node.inputs[0].ndim)):
            expr = self.call("np.sum", x)
        else:
            expr = x
            for axis in sorted(axes, reverse=True):
                expr = self.call("np.sum", expr, extra=f", axis={axis}")
        if node.attr("keepdims") and node.shape:
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
