"""The NumPy back end: plain NumPy array statements, no Numba.

It is the reference most tests compare against, because it needs no compile
time; the shared :class:`~diffc.codegen.printer.Printer` already prints NumPy,
so this back end only names itself and its imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from diffc.codegen.printer import Printer
from diffc.ir import Node


class NumpyPrinter(Printer):
    backend: ClassVar[str] = "numpy"
    imports: ClassVar[tuple[str, ...]] = ("import numpy as np",)
    decorator: ClassVar[str] = ""

    def entry_checks(self, inputs: Sequence[Node], params: Sequence[str]) -> list[str]:
        """Scalars become NumPy scalars first: Python's own float arithmetic raises
        ``ZeroDivisionError`` where NumPy gives inf or NaN (``1.0 / 0.0``, ``0.0 ** -0.5``)."""
        lines = [f"{param} = {self.dtype(node.dtype)}({param})"
                 for node, param in zip(inputs, params, strict=True) if not node.shape and node.dtype.is_float]
        return lines + super().entry_checks(inputs, params)
