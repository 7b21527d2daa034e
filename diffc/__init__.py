"""diffc: compile differentiable NumPy functions, expression strings and SymPy
expressions to readable forward and gradient code."""

from __future__ import annotations

from diffc.api import Compiled, compile, emit, grad, hessian, jacobian, value_and_grad
from diffc.errors import (
    ArgumentError,
    CacheWarning,
    DiffcError,
    GraphvizError,
    IndexRangeError,
    IndexTypeError,
    ParseError,
    ShapeError,
    SizeError,
    TraceError,
    UnsupportedCallError,
    UnsupportedError,
)
from diffc.functions import log_softmax, logsumexp, sigmoid, softmax, softplus
from diffc.threads import set_num_threads

__version__ = "0.1.0"

__all__ = [
    "ArgumentError", "CacheWarning", "Compiled", "DiffcError", "GraphvizError", "IndexRangeError", "IndexTypeError",
    "ParseError", "ShapeError", "SizeError", "TraceError", "UnsupportedCallError", "UnsupportedError",
    "compile", "emit", "grad", "set_num_threads", "value_and_grad", "__version__", "hessian", "jacobian",
    "log_softmax", "logsumexp", "sigmoid", "softmax", "softplus",
]
