"""Constant folding: an elementwise op whose inputs are all constants is
computed now, with NumPy, in the inputs' dtype, so the folded bits are the
bits the generated code would have produced."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from diffc.ir import Node, Op

FOLDERS: dict[Op, Callable[..., Any]] = {
    Op.NEG: np.negative, Op.EXP: np.exp, Op.LOG: np.log, Op.SQRT: np.sqrt,
    Op.SIN: np.sin, Op.COS: np.cos, Op.TAN: np.tan, Op.TANH: np.tanh, Op.ABS: np.abs,
    Op.SIGN: np.sign, Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply,
    Op.DIV: np.divide, Op.POW: np.power, Op.MAX: np.maximum, Op.MIN: np.minimum,
    Op.GT: np.greater, Op.GE: np.greater_equal, Op.LT: np.less, Op.LE: np.less_equal,
    Op.EQ: np.equal, Op.NE: np.not_equal, Op.WHERE: np.where,
    Op.SIGMOID: lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    # ops for real models
    Op.LOG1P: np.log1p, Op.EXPM1: np.expm1, Op.LOG2: np.log2, Op.LOG10: np.log10, Op.EXP2: np.exp2,
    Op.ARCSIN: np.arcsin, Op.ARCCOS: np.arccos, Op.ARCTAN: np.arctan, Op.SINH: np.sinh, Op.COSH: np.cosh,
    Op.ARCSINH: np.arcsinh, Op.ARCTAN2: np.arctan2, Op.HYPOT: np.hypot,
    Op.SOFTPLUS: lambda x: np.logaddexp(np.zeros_like(x), x),
    # more NumPy functions
    Op.FLOOR: np.floor, Op.CEIL: np.ceil, Op.RINT: np.rint, Op.TRUNC: np.trunc, Op.ARCTANH: np.arctanh,
    Op.ARCCOSH: np.arccosh, Op.CBRT: np.cbrt, Op.REMAINDER: np.remainder, Op.FMOD: np.fmod,
    Op.FLOOR_DIVIDE: np.floor_divide,
    # scipy.special (imported when first folded: SciPy is imported only by code that uses it)
    **{op: lambda x, name=name: getattr(importlib.import_module("scipy.special"), name)(x)
       for op, name in ((Op.ERF, "erf"), (Op.ERFC, "erfc"), (Op.GAMMALN, "gammaln"), (Op.DIGAMMA, "digamma"))},
    Op.TRIGAMMA: lambda x: importlib.import_module("scipy.special").polygamma(1, x),
}

MAX_FOLDED_SIZE = 16  # larger constant arrays are left for the generated code


def fold_constants(node: Node) -> Node | None:
    """``op(c1, c2)`` -> ``c`` when every input is a small constant."""
    fn = FOLDERS.get(node.op)
    if fn is None or not node.inputs or any(x.op is not Op.CONST for x in node.inputs):
        return None
    if any(x.value.size > MAX_FOLDED_SIZE for x in node.inputs):
        return None
    with np.errstate(all="ignore"):
        value = np.asarray(fn(*(x.value for x in node.inputs)), dtype=node.dtype.numpy)
    return node.graph.const(value, node.dtype)
