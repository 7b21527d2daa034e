"""The NumPy back end: plain NumPy array statements, no Numba.

It is the reference most tests compare against, because it needs no compile
time; the shared :class:`~diffc.codegen.printer.Printer` already prints NumPy,
so this back end only names itself and its imports.
"""

from __future__ import annotations

from typing import ClassVar

from diffc.codegen.printer import Printer


class NumpyPrinter(Printer):
    backend: ClassVar[str] = "numpy"
    imports: ClassVar[tuple[str, ...]] = ("import numpy as np",)
    decorator: ClassVar[str] = ""
