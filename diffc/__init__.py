"""diffc: compile differentiable NumPy functions, expression strings and SymPy
expressions to readable forward and gradient code."""

from __future__ import annotations

__version__ = "0.1.0"
