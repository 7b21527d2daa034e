"""The NumPy back end: plain NumPy array statements, no Numba.

It is the reference most tests compare against, because it needs no compile
time; the shared :class:`~diffc.codegen.printer.Printer` already prints NumPy,
so this back end only names itself and its imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from diffc.codegen.linalg import LinalgPrinting
from diffc.codegen.printer import PRODUCT, Expr, Printer
from diffc.ir import DType, Node


class NumpyPrinter(LinalgPrinting, Printer):
    backend: ClassVar[str] = "numpy"
    imports: ClassVar[tuple[str, ...]] = ("import numpy as np", "import scipy.special")
    decorator: ClassVar[str] = ""

    def entry_checks(self, inputs: Sequence[Node], params: Sequence[str]) -> list[str]:
        """Scalars become NumPy scalars first: Python's own float arithmetic raises
        ``ZeroDivisionError`` where NumPy gives inf or NaN (``1.0 / 0.0``, ``0.0 ** -0.5``)."""
        lines = [f"{param} = {self.dtype(node.dtype)}({param})"
                 for node, param in zip(inputs, params, strict=True) if not node.shape and node.dtype.is_float]
        return lines + super().entry_checks(inputs, params)

    def print_sigmoid(self, node: Node, x: Expr) -> Expr:
        """``scipy.special.expit(z)``: 1 / (1 + e^-z) as SciPy computes it, without overflow for large |z|
        (e^-z is taken only where it is at most 1) and in the argument's own precision."""
        return self.call("scipy.special.expit", x)

    def print_trigamma(self, node: Node, x: Expr) -> Expr:
        """``scipy.special.polygamma(1, x)``, which computes in float64: a float32 result is narrowed back."""
        text = f"scipy.special.polygamma(1, {x.text})"
        if node.dtype is DType.F32:
            text = f"np.float32({text})" if not node.shape else f"{text}.astype(np.float32)"
        return Expr(text)

    def print_div(self, node: Node, x: Expr, y: Expr) -> Expr:
        """A number over a size (a mean's ``1.0 / n``) divides as NumPy does: ``n == 0`` gives inf, not
        Python's ``ZeroDivisionError``."""
        divisor = node.inputs[1]
        if not node.shape and not divisor.shape and not divisor.dtype.is_float and node.dtype.is_float:
            y = Expr(f"{self.dtype(node.dtype)}({y.text})")
        return self.infix("/", PRODUCT, x, y)
