"""Reverse mode against independent references.

Every rule in ``diffc.adjoint.rules.ADJOINTS`` is checked against central
finite differences on IR built by hand (so the text front end is not in the
way), at scalar and array shapes and under broadcasting; scalar expressions
are checked against ``sympy.diff``; the tie rules of max/min/relu and the
``wrt`` contract are pinned down exactly; and Hypothesis builds random
expression trees and checks their gradients at random smooth points.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import sympy as sp
from conftest import assert_close, check_grad, check_vjp, numeric_grad, program
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

import diffc
from diffc import ir
from diffc.adjoint.rules import ADJOINTS, NON_DIFFERENTIABLE
from diffc.ir import DType, Graph, Node, Op, parse_type

RTOL, ATOL = 1e-6, 1e-7
SIZES = {"m": 3, "n": 4, "k": 2, "p": 5}


# ---------------------------------------------------------------------------
# building programs by hand




def compile_ir(build: Callable[..., Node], backend: str = "numpy", wrt: Any = None, **types: str) -> diffc.Compiled:
    return diffc.compile(program(build, **types), wrt=wrt, backend=backend)


DOMAINS: dict[str, Callable[[np.random.Generator, tuple[int, ...]], Any]] = {
    "real": lambda rng, shape: rng.normal(size=shape),
    "pos": lambda rng, shape: rng.uniform(0.5, 2.0, size=shape),   # log, sqrt, a divisor, a pow base
    "tan": lambda rng, shape: rng.uniform(-1.2, 1.2, size=shape),  # away from the poles at ±pi/2
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, size=shape),
}


def sample(rng: np.random.Generator, text: str, domain: str) -> Any:
    """A random value of type ``text`` (sizes from SIZES), drawn from ``domain``."""
    dtype, shape = parse_type(text)
    concrete = tuple(d if isinstance(d, int) else SIZES[d.name] for d in shape)
    if dtype is DType.I64:  # "index": a valid column of an n-column matrix
        low, high = (0, SIZES["n"]) if domain == "index" else (-3, 4)
        return np.asarray(rng.integers(low, high, size=concrete), dtype=np.int64)
    if dtype is DType.BOOL:
        return rng.random(size=concrete) > 0.5
    value = DOMAINS[domain](rng, concrete)
    return float(value) if not concrete else np.asarray(value, dtype=np.float64)


@dataclass
class Case:
    """One gradient check: the ops it covers, input types and domains, and the IR to build."""

    id: str
    ops: tuple[Op, ...]
    build: Callable[..., Node]
    types: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (type, domain)
    wrt: tuple[str, ...] | None = None


def unary(op: Op, t: str, domain: str = "real") -> Case:
    return Case(f"{op.value}-{t}", (op,), lambda g, x: g.apply(op, x), {"x": (t, domain)})


def binary(op: Op, tx: str, ty: str, dx: str = "real", dy: str = "real") -> Case:
    return Case(f"{op.value}-{tx}-{ty}", (op,), lambda g, x, y: g.apply(op, x, y), {"x": (tx, dx), "y": (ty, dy)})


UNARY_DOMAINS = {Op.NEG: "real", Op.EXP: "real", Op.LOG: "pos", Op.SQRT: "pos", Op.SIN: "real", Op.COS: "real",
                 Op.TAN: "tan", Op.TANH: "real", Op.SIGMOID: "real", Op.ABS: "real"}
BINARY_DOMAINS = {Op.ADD: ("real", "real"), Op.SUB: ("real", "real"), Op.MUL: ("real", "real"),
                  Op.DIV: ("real", "pos"), Op.POW: ("pos", "unit"), Op.MAX: ("real", "real"),
                  Op.MIN: ("real", "real")}
# shapes that broadcast: scalar + vector, (m,1) * (n,), a row against a matrix, ...
BINARY_SHAPES = [("f64", "f64"), ("f64[n]", "f64[n]"), ("f64[m,n]", "f64[m,n]"), ("f64", "f64[n]"),
                 ("f64[m,n]", "f64"), ("f64[m,1]", "f64[n]"), ("f64[m,n]", "f64[n]"), ("f64[1,n]", "f64[m,1]"),
                 ("f64[m,n]", "f64[m,1]")]


def reduction_cases() -> list[Case]:
    out = []
    for op in (Op.SUM, Op.MEAN):
        for t, axes in (("f64[m,n]", None), ("f64[m,n]", (0,)), ("f64[m,n]", (1,)), ("f64[m,n]", (0, 1)),
                        ("f64[n]", (0,)), ("f64[2,3,4]", (1,)), ("f64[2,3,4]", (0, 2)), ("f64[2,3,4]", (2,)),
                        ("f64[m,k,n]", (1, 2)), ("f64[m,1]", (1,))):
            for keep in (False, True):
                def build(g: Graph, x: Node, op: Op = op, axes: Any = axes, keep: bool = keep) -> Node:
                    # the sin makes the cotangent reach x through a nonlinear rule after the reduction
                    return g.apply(op, g.apply(Op.SIN, x) * x, axis=axes, keepdims=keep)
                out.append(Case(f"{op.value}-{t}-axis{axes}-keep{keep}", (op,), build, {"x": (t, "real")}))
    return out


def outer(g: Graph, u: Node, v: Node) -> Node:
    return g.apply(Op.OUTER, u, v)


CASES: list[Case] = [
    *[unary(op, t, d) for op, d in UNARY_DOMAINS.items() for t in ("f64", "f64[n]", "f64[m,n]")],
    *[binary(op, tx, ty, *BINARY_DOMAINS[op]) for op in BINARY_DOMAINS for tx, ty in BINARY_SHAPES],
    # pow with a constant exponent and with a constant base
    Case("pow-const-exponent", (Op.POW,), lambda g, x: x ** 3.0, {"x": ("f64[n]", "real")}),
    Case("pow-const-base", (Op.POW,), lambda g, x: g.const(2.0) ** x, {"x": ("f64[n]", "real")}),
    Case("pow-sqrt-exponent", (Op.POW,), lambda g, x: x ** 0.5, {"x": ("f64", "pos")}),
    # where routes: a traced condition, and a boolean input
    Case("where-traced-cond", (Op.WHERE,),
         lambda g, x, y: g.apply(Op.WHERE, g.apply(Op.GT, x, y), x * y, g.apply(Op.SIN, x)),
         {"x": ("f64[n]", "real"), "y": ("f64[n]", "real")}),
    Case("where-bool-input", (Op.WHERE,), lambda g, c, a, b: g.apply(Op.WHERE, c, a, b),
         {"c": ("bool[n]", "real"), "a": ("f64[n]", "real"), "b": ("f64", "real")}, wrt=("a", "b")),
    Case("where-broadcast", (Op.WHERE,),
         lambda g, x, y: g.apply(Op.WHERE, g.apply(Op.LT, x, g.const(0.0)), x * x, y),
         {"x": ("f64[m,n]", "real"), "y": ("f64[n]", "real")}),
    *reduction_cases(),
    # matmul in all four rank combinations, and inside a nonlinear function
    Case("matmul-mat-mat", (Op.MATMUL,), lambda g, a, b: a @ b, {"a": ("f64[m,n]", "real"), "b": ("f64[n,k]", "real")}),
    Case("matmul-mat-vec", (Op.MATMUL,), lambda g, a, b: a @ b, {"a": ("f64[m,n]", "real"), "b": ("f64[n]", "real")}),
    Case("matmul-vec-mat", (Op.MATMUL,), lambda g, a, b: a @ b, {"a": ("f64[n]", "real"), "b": ("f64[n,k]", "real")}),
    Case("matmul-vec-vec", (Op.MATMUL,), lambda g, a, b: a @ b, {"a": ("f64[n]", "real"), "b": ("f64[n]", "real")}),
    Case("matmul-tanh", (Op.MATMUL,), lambda g, a, b: g.apply(Op.TANH, a @ b),
         {"a": ("f64[m,n]", "real"), "b": ("f64[n,k]", "real")}),
    Case("outer", (Op.OUTER,), outer, {"u": ("f64[m]", "real"), "v": ("f64[n]", "real")}),
    Case("outer-same", (Op.OUTER,), lambda g, u: outer(g, u, g.apply(Op.EXP, u)), {"u": ("f64[n]", "real")}),
    Case("transpose-2d", (Op.TRANSPOSE,), lambda g, x: x.T, {"x": ("f64[m,n]", "real")}),
    Case("transpose-matmul", (Op.TRANSPOSE,), lambda g, x, y: x.T @ y,
         {"x": ("f64[m,n]", "real"), "y": ("f64[m,k]", "real")}),
    Case("transpose-3d", (Op.TRANSPOSE,), lambda g, x: g.apply(Op.TRANSPOSE, x, axes=(2, 0, 1)),
         {"x": ("f64[2,3,4]", "real")}),
    Case("transpose-3d-swap", (Op.TRANSPOSE,), lambda g, x: g.apply(Op.TRANSPOSE, x, axes=(1, 0, 2)) * x,
         {"x": ("f64[3,3,2]", "real")}),
    Case("broadcast-scalar", (Op.BROADCAST,), lambda g, x: g.apply(Op.BROADCAST, x, shape=(SIZES["n"],)),
         {"x": ("f64", "real")}),
    Case("broadcast-row", (Op.BROADCAST,), lambda g, x, y: g.apply(Op.BROADCAST, x, shape=y.shape) * y,
         {"x": ("f64[n]", "real"), "y": ("f64[m,n]", "real")}),
    Case("broadcast-column", (Op.BROADCAST,), lambda g, x, y: g.apply(Op.BROADCAST, x, shape=y.shape) * y,
         {"x": ("f64[m,1]", "real"), "y": ("f64[m,n]", "real")}),
    Case("reshape-flat", (Op.RESHAPE,), lambda g, x: g.apply(Op.RESHAPE, x, shape=(6,)), {"x": ("f64[2,3]", "real")}),
    Case("reshape-2d", (Op.RESHAPE,), lambda g, x: g.apply(Op.RESHAPE, g.apply(Op.EXP, x), shape=(3, 2)),
         {"x": ("f64[2,3]", "real")}),
    Case("reshape-unflatten", (Op.RESHAPE,), lambda g, x: g.apply(Op.RESHAPE, x, shape=(2, 1, 3))
         * g.apply(Op.RESHAPE, x * x, shape=(2, 3)),
         {"x": ("f64[6]", "real")}),
    # an integer input cast to float is data: only x gets a gradient
    Case("cast-int", (Op.CAST,), lambda g, x, k: x * g.apply(Op.CAST, k, dtype=DType.F64),
         {"x": ("f64[n]", "real"), "k": ("i64[n]", "real")}, wrt=("x",)),
    # sign and comparisons carry no gradient: d(sign(x) * x) = sign(x)
    Case("sign", (Op.SIGN,), lambda g, x: g.apply(Op.SIGN, x) * x, {"x": ("f64[n]", "real")}),
]


# -- the ops for real models (more math, max/min reductions, the softmax family) --------------
# Looked up by name, so this file still imports if one is renamed; a missing printer skips (see
# compile_or_skip) while test_every_adjoint_rule_has_a_gradient_case keeps the table honest.

def _op(name: str) -> Op | None:
    return Op.__members__.get(name)


MODEL_UNARY_DOMAINS = {"LOG1P": "pos", "EXPM1": "real", "LOG2": "pos", "LOG10": "pos", "EXP2": "real",
                       "ARCSIN": "unit", "ARCCOS": "unit", "ARCTAN": "real", "SINH": "real", "COSH": "real",
                       "ARCSINH": "real", "SOFTPLUS": "real"}
MODEL_BINARY = ["ARCTAN2", "HYPOT"]
MODEL_REDUCTIONS = ["AMAX", "AMIN", "LOGSUMEXP", "NORM"]
MODEL_AXIS_OPS = ["SOFTMAX", "LOG_SOFTMAX"]


def model_op_cases() -> list[Case]:
    out: list[Case] = []
    for name, domain in MODEL_UNARY_DOMAINS.items():
        op = _op(name)
        if op is not None:
            out += [unary(op, t, domain) for t in ("f64", "f64[m,n]")]
    for name in MODEL_BINARY:
        op = _op(name)
        if op is not None:
            out += [binary(op, tx, ty) for tx, ty in (("f64", "f64"), ("f64[m,n]", "f64[n]"), ("f64[m,1]", "f64"))]
    for name in MODEL_REDUCTIONS:
        op = _op(name)
        if op is None:
            continue
        for t, axes in (("f64[m,n]", None), ("f64[m,n]", (0,)), ("f64[m,n]", (1,)), ("f64[2,3,4]", (0, 2)),
                        ("f64[n]", None)):
            for keep in (False, True):
                def build(g: Graph, x: Node, op: Op = op, axes: Any = axes, keep: bool = keep) -> Node:
                    return g.apply(op, g.apply(Op.SIN, x) + x, axis=axes, keepdims=keep)
                out.append(Case(f"{op.value}-{t}-axis{axes}-keep{keep}", (op,), build, {"x": (t, "real")}))
    for name in MODEL_AXIS_OPS:
        op = _op(name)
        if op is None:
            continue
        for t, axes in (("f64[n]", None), ("f64[m,n]", (0,)), ("f64[m,n]", (1,)), ("f64[2,3,4]", (1,))):
            def build_axis(g: Graph, x: Node, op: Op = op, axes: Any = axes) -> Node:
                return g.apply(op, x) if axes is None else g.apply(op, x, axis=axes)
            out.append(Case(f"{op.value}-{t}-axis{axes}", (op,), build_axis, {"x": (t, "real")}))
    return out


CASES += model_op_cases()


def indexing_cases() -> list[Case]:
    """slice / unslice / concat / stack / gather / scatter, built by hand (when the IR has them)."""
    index_cls = getattr(ir, "Index", None)
    if index_cls is None or _op("SLICE") is None:
        return []

    def idx(*items: tuple[Any, ...]) -> Any:
        return index_cls(items)

    full = ("slice", None, None, 1)
    return [
        Case("slice-rows-col", (Op.SLICE,), lambda g, x: g.apply(Op.SLICE, x, index=idx(("slice", 1, None, 1),
                                                                                          ("int", 0))),
             {"x": ("f64[m,n]", "real")}),
        Case("slice-step-new-negative", (Op.SLICE,),
             lambda g, x: g.apply(Op.SLICE, x, index=idx(("slice", None, None, 2), ("new",), ("int", -1))),
             {"x": ("f64[p,n]", "real")}),
        Case("slice-reversed", (Op.SLICE,), lambda g, x: g.apply(Op.SLICE, x, index=idx(("slice", None, None, -1))),
             {"x": ("f64[n]", "real")}),
        Case("slice-used-twice", (Op.SLICE,), lambda g, x: g.apply(Op.SLICE, x, index=idx(("slice", 1, None, 1)))
             * g.apply(Op.SLICE, x, index=idx(("slice", None, -1, 1))), {"x": ("f64[n]", "real")}),
        Case("unslice", (Op.UNSLICE,), lambda g, x: g.apply(Op.UNSLICE, x, index=idx(("slice", 1, 3, 1), full),
                                                              shape=(5, SIZES["n"])),
             {"x": ("f64[2,n]", "real")}),
        Case("concat-axis0", (Op.CONCAT,), lambda g, x, y: g.apply(Op.CONCAT, x, y, x * y, axis=0),
             {"x": ("f64[m,n]", "real"), "y": ("f64[m,n]", "real")}),
        Case("concat-axis1", (Op.CONCAT,), lambda g, x, y: g.apply(Op.CONCAT, x, y, axis=1),
             {"x": ("f64[m,n]", "real"), "y": ("f64[m,k]", "real")}),
        Case("stack-axis0", (Op.STACK,), lambda g, x, y: g.apply(Op.STACK, x, g.apply(Op.SIN, y), axis=0),
             {"x": ("f64[n]", "real"), "y": ("f64[n]", "real")}),
        Case("stack-axis1", (Op.STACK,), lambda g, x, y: g.apply(Op.STACK, x, y, x, axis=1),
             {"x": ("f64[m,n]", "real"), "y": ("f64[m,n]", "real")}),
        Case("gather", (Op.GATHER,), lambda g, x, i: g.apply(Op.GATHER, g.apply(Op.EXP, x), i),
             {"x": ("f64[m,n]", "real"), "i": ("i64[m]", "index")}, wrt=("x",)),
        Case("scatter", (Op.SCATTER,), lambda g, x, i: g.apply(Op.SCATTER, x, i, size=SIZES["n"]),
             {"x": ("f64[m]", "real"), "i": ("i64[m]", "index")}, wrt=("x",)),
        *take_cases(),
    ]


def take_cases() -> list[Case]:
    """np.take along each axis and its scatter-add, on an index that may repeat entries (when the IR has them)."""
    if _op("TAKE") is None:
        return []
    return [
        Case("take-axis0", (Op.TAKE,), lambda g, x, i: g.apply(Op.TAKE, g.apply(Op.EXP, x), i, axis=0),
             {"x": ("f64[n,m]", "real"), "i": ("i64[p]", "index")}, wrt=("x",)),
        Case("take-axis1", (Op.TAKE,), lambda g, x, i: g.apply(Op.TAKE, x * x, i, axis=1),
             {"x": ("f64[m,n]", "real"), "i": ("i64[m]", "index")}, wrt=("x",)),
        Case("scatter-add-axis1", (Op.SCATTER_ADD,),
             lambda g, x, i: g.apply(Op.SCATTER_ADD, g.apply(Op.SIN, x), i, axis=1, size=SIZES["n"]),
             {"x": ("f64[m,m]", "real"), "i": ("i64[m]", "index")}, wrt=("x",)),
        Case("take-along-axis1", (Op.TAKE_ALONG,), lambda g, x, i: g.apply(Op.TAKE_ALONG, x * x, i, axis=1),
             {"x": ("f64[m,n]", "real"), "i": ("i64[m,k]", "index")}, wrt=("x",)),
        Case("scatter-add-along-axis1", (Op.SCATTER_ADD_ALONG,),
             lambda g, x, i: g.apply(Op.SCATTER_ADD_ALONG, g.apply(Op.SIN, x), i, axis=1, size=SIZES["n"]),
             {"x": ("f64[m,p]", "real"), "i": ("i64[m,p]", "index")}, wrt=("x",)),
    ]


CASES += indexing_cases()


def function_cases() -> list[Case]:
    """The ops of more NumPy functions (diffc/frontends/numpy_functions.py), built by hand."""
    out = [unary(Op.ARCTANH, t, "unit") for t in ("f64", "f64[m,n]")]
    out += [Case(f"arccosh-{t}", (Op.ARCCOSH,), lambda g, x: g.apply(Op.ARCCOSH, x + 1.0), {"x": (t, "pos")})
            for t in ("f64", "f64[m,n]")]
    out += [unary(Op.CBRT, t, "pos") for t in ("f64", "f64[m,n]")]
    out += [binary(op, tx, ty, "pos", "pos") for op in (Op.REMAINDER, Op.FMOD)
            for tx, ty in (("f64", "f64"), ("f64[m,n]", "f64[n]"))]
    for t, axes in (("f64[m,n]", None), ("f64[m,n]", (1,)), ("f64[2,3,4]", (0, 2))):
        for keep in (False, True):
            def build(g: Graph, x: Node, axes: Any = axes, keep: bool = keep) -> Node:
                return g.apply(Op.PROD, g.apply(Op.SIN, x) + 1.5, axis=axes, keepdims=keep)
            out.append(Case(f"prod-{t}-axis{axes}-keep{keep}", (Op.PROD,), build, {"x": (t, "real")}))
    for op in (Op.CUMSUM, Op.CUMPROD):
        for t, axis in (("f64[n]", (0,)), ("f64[m,n]", (0,)), ("f64[2,3,4]", (1,))):
            def build_running(g: Graph, x: Node, op: Op = op, axis: Any = axis) -> Node:
                return g.apply(op, x, axis=axis)
            out.append(Case(f"{op.value}-{t}-axis{axis}", (op,), build_running, {"x": (t, "real")}))
    return out


CASES += function_cases()
def linalg_cases() -> list[Case]:
    """np.linalg's ops at well-conditioned matrices built in the IR: x + 4I is strictly diagonally dominant
    for x in (-0.9, 0.9) ("unit"); x xᵀ + I is symmetric positive definite, so that finite differences of x
    move cholesky's and eigh's input along symmetric directions only."""
    def eye(g: Graph, n: Any) -> Node:
        return g.apply(Op.CAST, g.apply(Op.EQ, *ir.index_grid(g, n)), dtype=DType.F64)

    def general(g: Graph, x: Node) -> Node:
        return x + eye(g, x.shape[0]) * 4.0

    def spd(g: Graph, x: Node) -> Node:
        return x @ x.T + eye(g, x.shape[0])

    square = {"x": ("f64[n,n]", "unit")}
    return [
        Case("inv", (Op.INV,), lambda g, x: g.apply(Op.INV, general(g, x)), square),
        Case("solve-vector", (Op.SOLVE,), lambda g, x, b: g.apply(Op.SOLVE, general(g, x), b),
             {**square, "b": ("f64[n]", "real")}),
        Case("solve-matrix", (Op.SOLVE,), lambda g, x, b: g.apply(Op.SOLVE, general(g, x), b),
             {**square, "b": ("f64[n,k]", "real")}),
        Case("det", (Op.DET,), lambda g, x: g.apply(Op.DET, general(g, x)), square),
        Case("logabsdet", (Op.LOGABSDET,), lambda g, x: g.apply(Op.LOGABSDET, general(g, x) - eye(g, x.shape[0]) * 8.0),
             square),  # x - 4I: every eigenvalue near -4, the determinant's sign (-1)^n
        Case("cholesky", (Op.CHOLESKY,), lambda g, x: g.apply(Op.CHOLESKY, spd(g, x)), square),
        Case("eigvalsh", (Op.EIGVALSH,), lambda g, x: g.apply(Op.EIGVALSH, spd(g, x)), square),
        Case("eigvecsh", (Op.EIGVECSH,), lambda g, x: g.apply(Op.EIGVECSH, spd(g, x)) ** 2.0, square),
        Case("pinv", (Op.PINV,), lambda g, x: g.apply(Op.PINV, x), {"x": ("f64[p,m]", "real")}),
        Case("svdvals", (Op.SVDVALS,), lambda g, x: g.apply(Op.SVDVALS, x), {"x": ("f64[m,p]", "real")}),
        # the singular vectors are defined up to a sign per pair of columns: losses of their squares do not see it
        Case("svd-u-tall", (Op.SVD_U,), lambda g, x: g.apply(Op.SVD_U, x) ** 2.0, {"x": ("f64[p,m]", "real")}),
        Case("svd-u-wide", (Op.SVD_U,), lambda g, x: g.apply(Op.SVD_U, x) ** 2.0, {"x": ("f64[m,p]", "real")}),
        Case("svd-vt-tall", (Op.SVD_VT,), lambda g, x: g.apply(Op.SVD_VT, x) ** 2.0, {"x": ("f64[p,m]", "real")}),
        Case("svd-vt-wide", (Op.SVD_VT,), lambda g, x: g.apply(Op.SVD_VT, x) ** 2.0, {"x": ("f64[m,p]", "real")}),
    ]


CASES += linalg_cases()
CASES += [unary(op, t, domain) for op, domain in ((Op.ERF, "real"), (Op.ERFC, "real"), (Op.GAMMALN, "pos"),
                                                  (Op.DIGAMMA, "pos"))
          for t in ("f64", "f64[m,n]")]  # scipy.special's ops


def compile_or_skip(f: diffc.Compiled) -> diffc.Compiled:
    """Print every function now; skip (naming the op) if a back end cannot print an op yet."""
    try:
        f.module_source()
    except diffc.UnsupportedError as error:
        if "cannot print" not in str(error):
            raise
        pytest.skip(f"work in progress: {error}")
    return f


def test_every_op_has_an_adjoint_or_is_declared_non_differentiable() -> None:
    missing = [op for op in Op if op not in ADJOINTS and op not in NON_DIFFERENTIABLE]
    assert missing == []
    assert set(ADJOINTS) & NON_DIFFERENTIABLE == set()


def test_every_adjoint_rule_has_a_gradient_case() -> None:
    # f32 casts: test_cast_through_f32; trigamma's rule refuses (tests/test_special.py checks it)
    covered = {op for case in CASES for op in case.ops} | {Op.CAST, Op.TRIGAMMA}
    assert set(ADJOINTS) <= covered, sorted(op.value for op in set(ADJOINTS) - covered)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_adjoint_rule_against_central_differences(case: Case) -> None:
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    types = {name: t for name, (t, _) in case.types.items()}
    f = compile_or_skip(compile_ir(case.build, wrt=case.wrt, **types))
    args = [sample(rng, t, d) for t, d in case.types.values()]
    names = list(case.types)
    wrt = [names.index(w) for w in case.wrt] if case.wrt else None
    out = np.asarray(f(*args))
    if out.ndim == 0:
        check_grad(f, args, rtol=RTOL, atol=ATOL, wrt=wrt)
    else:
        check_vjp(f, args, rng.normal(size=out.shape), rtol=RTOL, atol=ATOL, wrt=wrt)


def test_cast_through_f32() -> None:
    """f64 -> f32 -> f64: the cotangent comes back through f32, so it is y rounded to f32."""
    f = compile_ir(lambda g, x, y: g.apply(Op.SUM, g.apply(Op.CAST, g.apply(Op.CAST, x, dtype=DType.F32),
                                                         dtype=DType.F64) * y),
                   wrt="x", x="f64[n]", y="f64[n]")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=4), rng.normal(size=4)
    got = f.grad(x, y)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, y.astype(np.float32).astype(np.float64))


# ---------------------------------------------------------------------------
# the lecture notes' worked example, and shared nodes


def test_seed_worked_example() -> None:
    """e = (a + b)(b + 1) at a = 2, b = 1: e = 6, de/da = b + 1 = 2, de/db = (b + 1) + (a + b) = 5."""
    for text in ("c = a + b\nd = b + 1\ne = c * d", "(a + b) * (b + 1)"):
        f = diffc.compile(text, backend="numpy")
        value, (da, db) = f.value_and_grad(2.0, 1.0)
        assert (value, da, db) == (6.0, 2.0, 5.0)
        assert f.grad(2.0, 1.0) == (2.0, 5.0)


@pytest.mark.parametrize("text, grad", [
    ("x * x", lambda x: 2 * x),
    ("sin(x) * x", lambda x: np.cos(x) * x + np.sin(x)),
    ("exp(x) * exp(x)", lambda x: 2 * np.exp(2 * x)),
    ("x * x * x + x", lambda x: 3 * x * x + 1),
    ("y = tanh(x)\ny * y + y / x", lambda x: (2 * np.tanh(x) + 1 / x) * (1 - np.tanh(x) ** 2) - np.tanh(x) / x ** 2),
])
def test_a_node_used_twice_gets_both_contributions(text: str, grad: Callable[[float], float]) -> None:
    f = diffc.compile(text, backend="numpy", wrt="x")
    for x in (0.3, -1.7, 2.5):
        assert f.grad(x) == pytest.approx(grad(x), rel=1e-13, abs=1e-13)


def test_undo_broadcasting_of_a_scalar_bias(backend: str) -> None:
    """X @ w + b with scalar b: b's cotangent is the sum over the m examples."""
    text, types = "sum((X @ w + b) * (X @ w + b)) / 2", {"X": "f64[m,n]", "w": "f64[n]", "b": "f64"}
    f = diffc.compile(text, args=types, wrt=("w", "b"), backend=backend)
    rng = np.random.default_rng(2)
    data, w, b = rng.normal(size=(5, 3)), rng.normal(size=3), 0.7
    r = data @ w + b
    dw, db = f.grad(data, w, b)
    assert isinstance(db, float)
    assert_close(dw, data.T @ r, 1e-12, 1e-12)
    assert db == pytest.approx(np.sum(r), rel=1e-12)


# A cotangent smaller than its node (the scalar cotangent of a sum) must still be summed over the axes
# that an elementwise node broadcast its input along: sum(a + b) with scalar a and b of length n gives n.


def test_broadcast_input_against_a_full_cotangent() -> None:
    """The same broadcast, reached by a full-shaped cotangent (no reduction in between), is right."""
    f = diffc.compile("a + b", args={"a": "f64", "b": "f64[n]"}, backend="numpy")
    da, db = f.vjp(1.0, np.ones(3), np.array([1.0, 2.0, 4.0]))
    assert da == 7.0
    np.testing.assert_array_equal(db, [1.0, 2.0, 4.0])


def test_scalar_broadcast_under_a_sum_is_summed() -> None:
    """d/da sum(a + b) = n for scalar a and b of length n."""
    f = diffc.compile("sum(a + b)", args={"a": "f64", "b": "f64[n]"}, backend="numpy")
    assert f.grad(1.0, np.ones(3))[0] == 3.0


def test_scalar_bias_under_a_sum_is_summed() -> None:
    """d/db sum(X @ w + b) = m: the notes' linear layer with a scalar bias."""
    f = diffc.compile("sum(X @ w + b)", args={"X": "f64[m,n]", "w": "f64[n]", "b": "f64"}, wrt="b",
                      backend="numpy")
    assert f.grad(np.ones((5, 3)), np.ones(3), 0.5) == 5.0


@pytest.mark.parametrize("tx, ty", [
    ("f64[m,1]", "f64[n]"),
    ("f64[1,n]", "f64[m,1]"),
    ("f64", "f64[m,n]"),
    ("f64[m,n]", "f64[1,1]")])
def test_broadcast_gradients_have_the_input_shapes(tx: str, ty: str) -> None:
    f = diffc.compile("sum(x * y + exp(x))", args={"x": tx, "y": ty}, backend="numpy")
    rng = np.random.default_rng(3)
    args = [sample(rng, tx, "real"), sample(rng, ty, "real")]
    check_grad(f, args, rtol=RTOL, atol=ATOL)  # assert_close checks shapes exactly


def _every_reduction_form(g: Graph, x: Node) -> Node:
    s = g.apply(Op.SIN, x)
    parts = [g.apply(Op.SUM, s * x, axis=(1,), keepdims=True) * x,
             g.apply(Op.MEAN, s, axis=(0,), keepdims=True) * x,
             g.apply(Op.SUM, g.apply(Op.EXP, s), axis=(0, 2)),
             g.apply(Op.MEAN, x * x, axis=(2,))]
    total = g.apply(Op.SUM, parts[0]) + g.apply(Op.SUM, parts[1])
    return total + g.apply(Op.MEAN, parts[2]) + g.apply(Op.SUM, g.apply(Op.SIN, parts[3]))


def _two_reduction_forms(g: Graph, x: Node) -> Node:
    """A keepdims mean over a middle axis and a sum over two axes: the forms Numba prints by hand."""
    s = g.apply(Op.SIN, x)
    kept = g.apply(Op.MEAN, s * x, axis=(1,), keepdims=True) * x
    outer_axes = g.apply(Op.SUM, g.apply(Op.EXP, s), axis=(0, 2))
    return g.apply(Op.SUM, kept) + g.apply(Op.SUM, g.apply(Op.SIN, outer_axes))


def test_reductions_with_axis_and_keepdims() -> None:
    """Reductions over leading, middle and trailing axes, kept and dropped, in one program."""
    f = compile_ir(_every_reduction_form, x="f64[m,k,n]")
    check_grad(f, [np.random.default_rng(4).normal(size=(3, 2, 4))], rtol=RTOL, atol=ATOL)


def test_reductions_on_both_backends(backend: str) -> None:
    """Numba lacks keepdims and tuple axes: its printer spells them out. The NumPy twin is the
    finite-difference reference, so Numba compiles one function only (axis sums compile slowly)."""
    f = compile_ir(_two_reduction_forms, backend=backend, x="f64[m,k,n]")
    reference = compile_ir(_two_reduction_forms, x="f64[m,k,n]")
    check_grad(f, [np.random.default_rng(4).normal(size=(3, 2, 4))], rtol=RTOL, atol=ATOL, f=reference)


# ---------------------------------------------------------------------------
# max, min, relu: ties and kinks


def test_relu_gradient_is_zero_at_and_below_zero(backend: str) -> None:
    """relu'(x) = 1 for x > 0 and 0 for x <= 0, x = 0 (and -0.0) included, as the notes say."""
    f = compile_ir(lambda g, x: g.apply(Op.SUM, g.apply(Op.MAX, x, g.const(0.0))), backend=backend, x="f64[n]")
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    np.testing.assert_array_equal(f.grad(x), [0.0, 0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("text", ["max(x, 0)", "max(0, x)", "relu(x)", "max(x, 0.0) * 1"])
def test_relu_spellings(text: str) -> None:
    f = diffc.compile(text, backend="numpy", wrt="x")
    assert [f.grad(x) for x in (-1.0, -0.0, 0.0, 0.5)] == [0.0, 0.0, 0.0, 1.0]


def test_relu_against_a_broadcast_zero_and_a_constant_first() -> None:
    """max(0, x) with the zero a broadcast constant array: still the constant side of the tie rule."""
    def build(g: Graph, x: Node) -> Node:
        zeros = g.const(0.0, shape=x.shape)
        return g.apply(Op.SUM, g.apply(Op.MAX, zeros, x) + g.apply(Op.MIN, x, zeros) * 3.0)
    f = compile_ir(build, x="f64[n]")
    x = np.array([-1.0, 0.0, 2.0])
    # max(0, x): 1 where x > 0; min(x, 0): 1 where x < 0, 0 at the tie
    np.testing.assert_array_equal(f.grad(x), [3.0, 0.0, 1.0])


@pytest.mark.parametrize("text, at, expected", [
    ("max(a, b)", (1.0, 1.0), (1.0, 0.0)),   # a tie goes to the first argument
    ("max(a, b)", (1.0, 2.0), (0.0, 1.0)),
    ("max(a, b)", (3.0, 2.0), (1.0, 0.0)),
    ("max(b, a)", (1.0, 1.0), (0.0, 1.0)),   # first *argument*, not first input
    ("min(a, b)", (1.0, 1.0), (1.0, 0.0)),
    ("min(a, b)", (1.0, 2.0), (1.0, 0.0)),
    ("min(a, b)", (3.0, 2.0), (0.0, 1.0)),
    ("max(a, b) * 2 + min(a, b)", (0.5, 0.5), (3.0, 0.0)),
])
def test_max_min_between_traced_inputs(text: str, at: tuple[float, float], expected: tuple[float, float]) -> None:
    f = diffc.compile(text, args=["a", "b"], backend="numpy")
    assert f.grad(*at) == expected


def test_nested_max_three_way_tie_goes_to_the_first() -> None:
    f = diffc.compile("max(a, b, c)", backend="numpy")
    assert f.grad(1.0, 1.0, 1.0) == (1.0, 0.0, 0.0)
    assert f.grad(1.0, 2.0, 2.0) == (0.0, 1.0, 0.0)
    assert f.grad(1.0, 2.0, 3.0) == (0.0, 0.0, 1.0)


def test_max_of_a_value_with_itself_has_slope_one() -> None:
    f = compile_ir(lambda g, x: g.apply(Op.MAX, x, x) + g.apply(Op.MIN, x, x), x="f64")
    assert f.grad(0.7) == 2.0


def test_abs_gradient_is_sign() -> None:
    f = diffc.compile("abs(x)", backend="numpy", wrt="x")
    assert [f.grad(x) for x in (-2.0, -0.0, 0.0, 3.0)] == [-1.0, 0.0, 0.0, 1.0]


def test_where_routes_each_element() -> None:
    f = diffc.compile("sum(where(x > 0, x * x, -3 * x))", args={"x": "f64[n]"}, backend="numpy", wrt="x")
    x = np.array([-1.0, 0.0, 2.0, 0.5])
    np.testing.assert_array_equal(f.grad(x), [-3.0, -3.0, 4.0, 1.0])


def test_where_does_not_leak_the_untaken_branch_through_its_own_rule() -> None:
    """log(x) is NaN for x < 0, but g / x with g selected to 0 is -0.0, not NaN."""
    f = diffc.compile("sum(where(x > 0, log(x), x))", args={"x": "f64[n]"}, backend="numpy", wrt="x")
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(f.grad(np.array([-1.0, 2.0])), [1.0, 0.5])


@pytest.mark.parametrize("text, x, expected", [
    ("sum(where(x > 0, sqrt(x), 0))", [-1.0, 4.0], [0.0, 0.25]),            # sqrt(-1) is NaN
    ("sum(where(x > 1, log(x), x))", [0.0, 2.0], [1.0, 0.5]),               # log'(0) = 1/0
    ("sum(where(x > 0, exp(sqrt(x)) * 2, -x))", [-1.0, 4.0], [-1.0, math.exp(2.0) / 2]),  # nested in the branch
    ("sum(where(x > 0, 1 / x, x))", [0.0, 2.0], [1.0, -0.25]),             # -1/x^2 is -inf at 0, not taken
])
def test_where_gradient_is_finite_when_the_untaken_branch_is_not(text: str, x: list[float],
                                                                expected: list[float]) -> None:
    """A NaN or inf computed on the side not taken never reaches the gradient (JAX would give NaN)."""
    f = diffc.compile(text, args={"x": "f64[n]"}, backend="numpy", wrt="x")
    with np.errstate(invalid="ignore", divide="ignore"):
        got = f.grad(np.array(x))
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


def test_numpy_backend_scalars_follow_ieee() -> None:
    """Scalars are NumPy scalars, as in Numba: inf and NaN, never ZeroDivisionError or a complex number."""
    with np.errstate(all="ignore"):
        assert diffc.compile("1 / x", backend="numpy").value_and_grad(0.0) == (math.inf, -math.inf)
        value, grad = diffc.compile("x ** 0.5", backend="numpy").value_and_grad(-1.0)
        assert isinstance(value, float) and math.isnan(value) and math.isnan(grad)
        assert diffc.compile("x * x", backend="numpy").value_and_grad(1e300) == (math.inf, 2e300)


def test_sign_and_comparisons_carry_no_gradient() -> None:
    """d/dx [sign(x) * x + float(x > y) + y] = sign(x), d/dy = 1: sign and > pass nothing back."""
    f = compile_ir(lambda g, x, y: g.apply(Op.SIGN, x) * x + g.apply(Op.CAST, g.apply(Op.GT, x, y),
                                                                      dtype=DType.F64) + y, x="f64", y="f64")
    assert f.grad(-2.0, 1.0) == (-1.0, 1.0)
    assert f.grad(3.0, 1.0) == (1.0, 1.0)


def _text_functions() -> set[str]:
    from diffc.frontends.text import FUNCTIONS
    return set(FUNCTIONS)


# ---------------------------------------------------------------------------
# the ops for real models: ties, zeros and overflow


def model_op(name: str) -> Op:
    op = _op(name)
    if op is None:
        pytest.skip(f"Op.{name} does not exist")
    return op


@pytest.mark.parametrize("name, x, axis, expected", [
    ("AMAX", [1.0, 3.0, 3.0, 2.0], None, [0.0, 1.0, 0.0, 0.0]),          # the first maximum takes it all
    ("AMIN", [2.0, 1.0, 5.0, 1.0], None, [0.0, 1.0, 0.0, 0.0]),
    ("AMAX", [[1.0, 4.0, 4.0], [7.0, 7.0, 7.0]], (1,), [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
    ("AMAX", [[1.0, 4.0], [1.0, 2.0]], (0,), [[1.0, 1.0], [0.0, 0.0]]),
    ("AMIN", [[3.0, 3.0], [0.0, 3.0]], None, [[0.0, 0.0], [1.0, 0.0]]),
    ("AMAX", [[5.0, 1.0], [2.0, 5.0]], None, [[1.0, 0.0], [0.0, 0.0]]),     # row-major: (0, 0) comes first
])
def test_max_reduction_ties_go_to_the_first_occurrence(name: str, x: list[Any], axis: Any,
                                                       expected: list[Any]) -> None:
    op = model_op(name)
    data = np.array(x)
    t = f"f64[{','.join('mn'[: data.ndim])}]"
    f = compile_or_skip(compile_ir(lambda g, v: g.apply(Op.SUM, g.apply(op, v, axis=axis)), wrt="v", v=t))
    np.testing.assert_array_equal(f.grad(data), expected)


def test_norm_and_hypot_have_gradient_zero_at_the_origin() -> None:
    norm, hypot = model_op("NORM"), model_op("HYPOT")
    f = compile_or_skip(compile_ir(lambda g, v, a, b: g.apply(norm, v) + g.apply(hypot, a, b),
                                   v="f64[n]", a="f64", b="f64"))
    dv, da, db = f.grad(np.zeros(3), 0.0, 0.0)
    np.testing.assert_array_equal(dv, np.zeros(3))
    assert (da, db) == (0.0, 0.0)
    dv, da, db = f.grad(np.array([3.0, 0.0, 4.0]), 3.0, -4.0)
    np.testing.assert_allclose(dv, [0.6, 0.0, 0.8], rtol=1e-15)
    assert (da, db) == pytest.approx((0.6, -0.8), rel=1e-15)


def test_softmax_family_is_stable_for_large_inputs() -> None:
    """logsumexp, softmax, log_softmax and softplus at ±1000: finite, and right to the rounding of
    values near 1000 (an ulp there is 1e-13)."""
    lse, softmax, log_softmax, softplus = (model_op(n) for n in ("LOGSUMEXP", "SOFTMAX", "LOG_SOFTMAX", "SOFTPLUS"))
    x = np.array([1000.0, 1000.0, -1000.0])
    f = compile_or_skip(compile_ir(lambda g, v: g.apply(lse, v), wrt="v", v="f64[n]"))
    value, grad = f.value_and_grad(x)
    assert value == pytest.approx(1000.0 + math.log(2.0), rel=1e-15)
    np.testing.assert_allclose(grad, [0.5, 0.5, 0.0], rtol=1e-12, atol=0)
    c = np.array([1.0, -2.0, 5.0])
    s = np.array([0.5, 0.5, 0.0])
    f = compile_or_skip(compile_ir(lambda g, v: g.apply(softmax, v), wrt="v", v="f64[n]"))
    np.testing.assert_allclose(f(x), s, rtol=1e-12, atol=0)
    np.testing.assert_allclose(f.vjp(x, c), s * (c - s @ c), rtol=1e-12, atol=1e-300)
    f = compile_or_skip(compile_ir(lambda g, v: g.apply(log_softmax, v), wrt="v", v="f64[n]"))
    np.testing.assert_allclose(f.vjp(x, c), c - s * c.sum(), rtol=1e-12, atol=1e-300)
    f = compile_or_skip(compile_ir(lambda g, v: g.apply(Op.SUM, g.apply(softplus, v)), wrt="v", v="f64[n]"))
    value, grad = f.value_and_grad(x)
    assert value == pytest.approx(2000.0, rel=1e-15)
    np.testing.assert_allclose(grad, [1.0, 1.0, 0.0], rtol=1e-12, atol=1e-300)


def test_pow_at_a_zero_base_has_no_nan_in_the_exponent_gradient() -> None:
    """0 ** y = 0 for every y > 0, so d/dy is 0 there (log(0) must not turn it into 0 * -inf = NaN)."""
    f = diffc.compile("x ** y", backend="numpy")
    assert f.grad(0.0, 2.0) == (0.0, 0.0)
    assert f.grad(0.0, 0.5)[1] == 0.0
    assert f.grad(2.0, 3.0) == pytest.approx((12.0, 8.0 * math.log(2.0)), rel=1e-15)


# ---------------------------------------------------------------------------
# wrt: which inputs, in which order, and only what is needed


def test_wrt_a_single_name_returns_a_bare_gradient() -> None:
    f = diffc.compile("a * sin(b)", wrt="a", backend="numpy")
    value, grad = f.value_and_grad(2.0, 0.5)
    assert grad == pytest.approx(math.sin(0.5), rel=1e-15)
    assert isinstance(grad, float)
    assert value == pytest.approx(2 * math.sin(0.5), rel=1e-15)


def test_wrt_order_is_respected() -> None:
    f = diffc.compile("a * sin(b)", wrt=("b", "a"), backend="numpy")
    db, da = f.grad(2.0, 0.5)
    assert db == pytest.approx(2 * math.cos(0.5), rel=1e-15)
    assert da == pytest.approx(math.sin(0.5), rel=1e-15)
    assert diffc.compile("a * sin(b)", wrt=("a",), backend="numpy").grad(2.0, 0.5) == (math.sin(0.5),)


def test_only_nodes_on_a_path_from_wrt_get_adjoints() -> None:
    """With wrt='a', sin(b) is a constant factor: no cos (b's adjoint) may be computed."""
    f = diffc.compile("a * sin(b)", wrt="a", backend="numpy")
    assert "cos" not in f.grad_ir and "cos" not in f.grad_source
    assert "cos" in diffc.compile("a * sin(b)", backend="numpy").grad_ir
    g = diffc.compile("a * a + exp(b) * log(b)", wrt="a", backend="numpy")
    assert "div" not in g.grad_ir  # 1/b would be log's adjoint: b is not on a path from a
    assert "div" in diffc.compile("a * a + exp(b) * log(b)", backend="numpy").grad_ir


def test_a_wrt_input_the_output_ignores_gets_zeros_of_its_shape() -> None:
    f = diffc.compile("a * a", args={"a": "f64", "v": "f64[n]", "c": "f64"}, wrt=("v", "a", "c"), backend="numpy")
    dv, da, dc = f.grad(3.0, np.ones(4), 1.0)
    assert isinstance(dv, np.ndarray) and dv.shape == (4,)
    np.testing.assert_array_equal(dv, np.zeros(4))
    assert (da, dc) == (6.0, 0.0)


def test_wrt_an_integer_input_is_refused() -> None:
    with pytest.raises(diffc.DiffcError, match="'k'"):  # the signature is known: refused at compile time
        diffc.compile("x * k", args={"x": "f64", "k": "i64"}, wrt="k", backend="numpy")


def test_deep_chain_of_shared_nodes() -> None:
    """2,000 nested assignments (each value used twice): the sweep and printer are iterative."""
    depth = 2000
    lines = ["x0 = a"] + [f"x{i + 1} = sin(x{i}) * 0.001 + x{i}" for i in range(depth)]
    f = diffc.compile("\n".join(lines), backend="numpy", wrt="a")
    x, grad = 0.3, 1.0
    for _ in range(depth):
        grad *= 1 + 0.001 * math.cos(x)
        x = math.sin(x) * 0.001 + x
    value, got = f.value_and_grad(0.3)
    assert value == pytest.approx(x, rel=1e-12)
    assert got == pytest.approx(grad, rel=1e-10)


# ---------------------------------------------------------------------------
# scalar expressions against sympy.diff

A, B = sp.symbols("a b", real=True)


def _sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


# (diffc text, the same function in SymPy, which ties to stay away from)
SYMPY_CASES: list[tuple[str, sp.Expr, Callable[[float, float], float]]] = [
    ("exp(a) * sin(b) / (1 + a*a)", sp.exp(A) * sp.sin(B) / (1 + A * A), lambda a, b: 1.0),
    ("(a + b) * (b + 1)", (A + B) * (B + 1), lambda a, b: 1.0),
    ("a - b * a", A - B * A, lambda a, b: 1.0),
    ("-a / b", -A / B, lambda a, b: abs(b)),
    ("log(a*a + 1) * cos(b)", sp.log(A * A + 1) * sp.cos(B), lambda a, b: 1.0),
    ("sqrt(a*a + b*b)", sp.sqrt(A * A + B * B), lambda a, b: 1.0),
    ("tan(a / 3) + tanh(b)", sp.tan(A / 3) + sp.tanh(B), lambda a, b: 1.0),
    ("sigmoid(a * b)", _sigmoid(A * B), lambda a, b: 1.0),
    ("log(sigmoid(a)) + log(1 - sigmoid(b))", sp.log(_sigmoid(A)) + sp.log(1 - _sigmoid(B)), lambda a, b: 1.0),
    ("abs(a) * b", sp.Abs(A) * B, lambda a, b: abs(a)),
    ("max(a, b) * a", sp.Max(A, B) * A, lambda a, b: abs(a - b)),
    ("min(a * b, 1)", sp.Min(A * B, 1), lambda a, b: abs(a * b - 1)),
    ("relu(a - b) + relu(b)", sp.Max(A - B, 0) + sp.Max(B, 0), lambda a, b: min(abs(a - b), abs(b))),
    ("where(a > b, a * b, a - b)", sp.Piecewise((A * B, A > B), (A - B, True)), lambda a, b: abs(a - b)),
    ("(a*a + 1) ** b", (A * A + 1) ** B, lambda a, b: 1.0),
    ("a ** 3 - 2 ** b", A ** 3 - 2 ** B, lambda a, b: 1.0),
    ("exp(-a*a) ** 0.5 * sin(a * b)", sp.exp(-A * A) ** sp.Rational(1, 2) * sp.sin(A * B), lambda a, b: 1.0),
    ("cos(sin(a)) * exp(cos(b))", sp.cos(sp.sin(A)) * sp.exp(sp.cos(B)), lambda a, b: 1.0),
    ("a / (1 + exp(-b)) - b / (2 + sin(a))", A * _sigmoid(B) - B / (2 + sp.sin(A)), lambda a, b: 1.0),
    ("tanh(a * tanh(b * a))", sp.tanh(A * sp.tanh(B * A)), lambda a, b: 1.0),
    ("c = a * b\nd = c + sin(c)\ne = d * d - c", (A * B + sp.sin(A * B)) ** 2 - A * B, lambda a, b: 1.0),
    ("-(-a) * -b", -A * B, lambda a, b: 1.0),
    # the math functions for real models
    ("log1p(a*a) + expm1(b)", sp.log(1 + A * A) + sp.exp(B) - 1, lambda a, b: 1.0),
    ("log2(1 + a*a) * log10(2 + cos(b))", sp.log(1 + A * A, 2) * sp.log(2 + sp.cos(B), 10), lambda a, b: 1.0),
    ("exp2(a * b) - b", 2 ** (A * B) - B, lambda a, b: 1.0),
    ("arcsin(sin(a) / 2) + arccos(b / 3)", sp.asin(sp.sin(A) / 2) + sp.acos(B / 3), lambda a, b: 1.0),
    ("arctan(a * b) + arcsinh(a - b)", sp.atan(A * B) + sp.asinh(A - B), lambda a, b: 1.0),
    ("sinh(a) * cosh(b)", sp.sinh(A) * sp.cosh(B), lambda a, b: 1.0),
    ("softplus(a * b)", sp.log(1 + sp.exp(A * B)), lambda a, b: 1.0),
    ("arctan2(a, b + 3) + arctan2(b, a)", sp.atan2(A, B + 3) + sp.atan2(B, A), lambda a, b: abs(a) + abs(b)),
    ("hypot(a, b) * a", sp.sqrt(A * A + B * B) * A, lambda a, b: abs(a) + abs(b)),
    ("square(a - b) + square(b)", (A - B) ** 2 + B ** 2, lambda a, b: 1.0),
    # scipy.special's, in the text language too
    ("erf(a * b) + erfc(b)", sp.erf(A * B) + sp.erfc(B), lambda a, b: 1.0),
    ("gammaln(a * a + 0.5) * b", sp.loggamma(A * A + sp.Rational(1, 2)) * B, lambda a, b: 1.0),
]


@pytest.mark.parametrize("text, expr, clearance", SYMPY_CASES, ids=[c[0].replace("\n", "; ") for c in SYMPY_CASES])
def test_scalar_expression_against_sympy_diff(text: str, expr: sp.Expr,
                                              clearance: Callable[[float, float], float]) -> None:
    f = diffc.compile(text, args=["a", "b"], backend="numpy")
    value_fn = sp.lambdify((A, B), expr, ["scipy", "numpy"])  # SciPy for erf, loggamma and digamma
    grad_fns = [sp.lambdify((A, B), sp.diff(expr, s), ["scipy", "numpy"]) for s in (A, B)]
    rng = np.random.default_rng(5)
    checked = 0
    while checked < 6:
        a, b = (float(v) for v in rng.uniform(-2.0, 2.0, size=2))
        if clearance(a, b) < 0.05:
            continue
        value, (da, db) = f.value_and_grad(a, b)
        assert value == pytest.approx(float(value_fn(a, b)), rel=1e-12, abs=1e-12)
        assert da == pytest.approx(float(grad_fns[0](a, b)), rel=1e-10, abs=1e-12)
        assert db == pytest.approx(float(grad_fns[1](a, b)), rel=1e-10, abs=1e-12)
        checked += 1


def test_sympy_cases_cover_every_scalar_text_function() -> None:
    """Every function of the text language that works on scalars has a SymPy case (the array-only
    ones, reductions and softmax, are tested on arrays above)."""
    from diffc.frontends import text

    array_only = {*getattr(text, "REDUCTION_FUNCTIONS", {"sum": 0, "mean": 0}), *getattr(text, "AXIS_FUNCTIONS", {})}
    used = set(re.findall(r"[a-z0-9_]+(?=\()", " ".join(text for text, _, _ in SYMPY_CASES)))
    assert set(_text_functions()) - array_only <= used


# ---------------------------------------------------------------------------
# random expression trees (Hypothesis)

Tree = tuple[Any, ...]

BINARY_TEXT = ["+", "-", "*", "/", "**"]


LEAVES = st.one_of(st.sampled_from(["a", "b", "c"]).map(lambda v: ("var", v)),
                   st.sampled_from([0.5, 1.0, 2.0, 3.0]).map(lambda v: ("const", v)))


def trees(depth: int, leaf_depth: int = 0) -> st.SearchStrategy[Tree]:
    """Expression trees of at most ``depth`` levels over a, b, c and a few constants; the top
    ``depth - leaf_depth`` levels are operators (Hypothesis would otherwise favour bare leaves)."""
    if depth == 0:
        return LEAVES
    sub = trees(depth - 1, leaf_depth)
    compound = st.one_of(
        st.tuples(st.just("un"), st.sampled_from(UNARY_TEXT), sub),
        st.tuples(st.just("bin"), st.sampled_from(BINARY_TEXT), sub, sub),
        st.tuples(st.just("pow"), sub, st.sampled_from([2.0, 3.0, 0.5, -1.0])),
        st.tuples(st.just("call"), st.sampled_from(CALL_TEXT), sub, sub),
        st.tuples(st.just("where"), st.sampled_from([">", "<"]), sub, sub, sub, sub),
    )
    return compound if depth > leaf_depth else st.one_of(LEAVES, compound)


def operator_count(t: Tree) -> int:
    return 0 if t[0] in ("var", "const") else 1 + sum(operator_count(x) for x in t[1:] if isinstance(x, tuple))


def tree_text(t: Tree) -> str:
    kind = t[0]
    if kind == "var":
        return t[1]
    if kind == "const":
        return repr(t[1])
    if kind == "un":
        return f"(-{tree_text(t[2])})" if t[1] == "neg" else f"{t[1]}({tree_text(t[2])})"
    if kind == "bin":
        return f"({tree_text(t[2])} {t[1]} {tree_text(t[3])})"
    if kind == "pow":
        return f"({tree_text(t[1])} ** {t[2]!r})"
    if kind == "call":
        return f"{t[1]}({tree_text(t[2])}, {tree_text(t[3])})"
    return f"where({tree_text(t[2])} {t[1]} {tree_text(t[3])}, {tree_text(t[4])}, {tree_text(t[5])})"


def real(v: float | complex) -> float:
    """NumPy's float64 answer where Python's is complex: (-8.0) ** 0.5 is NaN."""
    return math.nan if isinstance(v, complex) else v


class UnsafePointError(Exception):
    """The point is near a kink, a pole or outside the domain of some subexpression."""


KINK = 1e-3   # how far from a kink or a tie a point must be
BIG = 1e6     # values and local derivatives must stay below this


def _any(x: float) -> bool:
    return True


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


# name: (value, derivative, whether x is safely inside the domain and away from a kink)
_UNARY_EVAL: dict[str, tuple[Callable[[float], float], Callable[[float], float], Callable[[float], bool]]] = {
    "exp": (math.exp, math.exp, _any),
    "log": (math.log, lambda x: 1 / x, lambda x: x > KINK),
    "sqrt": (math.sqrt, lambda x: 0.5 / math.sqrt(x), lambda x: x > KINK),
    "sin": (math.sin, math.cos, _any),
    "cos": (math.cos, math.sin, _any),
    "tan": (math.tan, lambda x: 1 + math.tan(x) ** 2, _any),   # poles: the derivative check
    "tanh": (math.tanh, lambda x: 1.0, _any),
    "abs": (abs, lambda x: 1.0, lambda x: abs(x) > KINK),
    "sigmoid": (lambda x: 1 / (1 + math.exp(-x)), lambda x: 1.0, _any),
    "neg": (lambda x: -x, lambda x: 1.0, _any),
    "log1p": (math.log1p, lambda x: 1 / (1 + x), lambda x: x > -1 + KINK),
    "expm1": (math.expm1, math.exp, _any),
    "log2": (math.log2, lambda x: 1 / x, lambda x: x > KINK),
    "log10": (math.log10, lambda x: 1 / x, lambda x: x > KINK),
    "exp2": (lambda x: 2.0 ** x, lambda x: 2.0 ** x, _any),
    "arcsin": (math.asin, lambda x: 1 / math.sqrt(1 - x * x), lambda x: abs(x) < 1 - KINK),
    "arccos": (math.acos, lambda x: 1 / math.sqrt(1 - x * x), lambda x: abs(x) < 1 - KINK),
    "arctan": (math.atan, lambda x: 1.0, _any),
    "sinh": (math.sinh, math.cosh, _any),
    "cosh": (math.cosh, math.sinh, _any),
    "arcsinh": (math.asinh, lambda x: 1.0, _any),
    "softplus": (_softplus, lambda x: 1.0, _any),
}
# two-argument functions: name -> (value, whether (x, y) is away from a kink, a tie or a branch cut)
_CALL_EVAL: dict[str, tuple[Callable[[float, float], float], Callable[[float, float], bool]]] = {
    "max": (max, lambda x, y: abs(x - y) > KINK),
    "min": (min, lambda x, y: abs(x - y) > KINK),
    "arctan2": (math.atan2, lambda y, x: abs(y) > KINK or x > KINK),   # the cut: y = 0, x <= 0
    "hypot": (math.hypot, lambda x, y: abs(x) + abs(y) > KINK),
}


def tree_eval(t: Tree, env: dict[str, float], strict: bool = True) -> float:
    """Evaluate in plain float64, raising UnsafePointError (when strict) unless every subexpression,
    taken or not, is finite and well-conditioned and every kink is at least KINK away."""
    kind = t[0]
    if kind == "var":
        return env[t[1]]
    if kind == "const":
        return t[1]

    def check(v: float) -> float:
        if strict and not (math.isfinite(v) and abs(v) < BIG):
            raise UnsafePointError
        return v

    try:
        if kind == "un":
            x = tree_eval(t[2], env, strict)
            fn, deriv, safe = _UNARY_EVAL[t[1]]
            if strict:
                if not safe(x):
                    raise UnsafePointError
                check(deriv(x))
            return check(fn(x))
        if kind == "bin":
            x, y = tree_eval(t[2], env, strict), tree_eval(t[3], env, strict)
            if t[1] == "/" and strict and abs(y) < KINK:
                raise UnsafePointError
            if t[1] == "**":
                if strict:  # a traced exponent needs a positive base
                    if x < KINK:
                        raise UnsafePointError
                    check(y * x ** (y - 1))
                    check(math.log(x) * x ** y)
                return check(real(x ** y))
            return check({"+": x + y, "-": x - y, "*": x * y, "/": x / y}[t[1]])
        if kind == "pow":
            x, k = tree_eval(t[1], env, strict), t[2]
            if strict:
                if k in (0.5, -1.0) and x < KINK:
                    raise UnsafePointError
                check(k * x ** (k - 1))
            return check(real(x ** k))
        if kind == "call":
            x, y = tree_eval(t[2], env, strict), tree_eval(t[3], env, strict)
            fn2, safe2 = _CALL_EVAL[t[1]]
            if strict and not safe2(x, y):
                raise UnsafePointError
            return check(fn2(x, y))
        x, y = tree_eval(t[2], env, strict), tree_eval(t[3], env, strict)
        if strict and abs(x - y) < KINK:
            raise UnsafePointError
        a, b = tree_eval(t[4], env, strict), tree_eval(t[5], env, strict)
        return a if (x > y if t[1] == ">" else x < y) else b
    except (OverflowError, ValueError, ZeroDivisionError):
        raise UnsafePointError from None


# the functions the text language knows (all of them, as the SymPy cases check), plus unary minus
UNARY_TEXT = [name for name in _UNARY_EVAL if name == "neg" or name in _text_functions()]
CALL_TEXT = [name for name in _CALL_EVAL if name in _text_functions()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(tree=trees(5, leaf_depth=3), a=st.floats(-2.5, 2.5), b=st.floats(-2.5, 2.5), c=st.floats(-2.5, 2.5))
def test_random_expression_trees(tree: Tree, a: float, b: float, c: float) -> None:
    env = {"a": a, "b": b, "c": c}
    try:
        expected = tree_eval(tree, env)
    except UnsafePointError:
        assume(False)
        return

    def ref(a: float, b: float, c: float) -> float:
        try:
            return tree_eval(tree, {"a": a, "b": b, "c": c}, strict=False)
        except UnsafePointError:
            return math.nan

    reference = numeric_grad(ref, [a, b, c], eps=1e-7)
    coarse = numeric_grad(ref, [a, b, c], eps=1e-5)
    for fine, rough in zip(reference, coarse, strict=True):  # smooth at this scale, or skip the point
        assume(math.isfinite(fine) and abs(fine) < BIG and abs(fine - rough) <= 1e-4 * (1 + abs(fine)))

    text = tree_text(tree)
    event(f"operators in the tree: {min(operator_count(tree) // 4 * 4, 12)}+")  # --hypothesis-show-statistics
    f = diffc.compile(text, args=["a", "b", "c"], backend="numpy")
    value, grads = f.value_and_grad(a, b, c)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-9), text
    for name, got, want in zip("abc", grads, reference, strict=True):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6), f"d/d{name} of {text} at {env}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(tree=trees(4, leaf_depth=2), seed=st.integers(0, 2**32 - 1), reduce=st.sampled_from(["sum", "mean"]))
@example(tree=("bin", "+", ("var", "a"), ("var", "b")), seed=0, reduce="sum")  # found a reverse-mode bug once
def test_random_expression_trees_over_a_vector_and_scalars(tree: Tree, seed: int, reduce: str) -> None:
    """The same trees with b a vector: scalar-vector broadcasting and its undoing, then a reduction."""
    assume(re.search(r"\bb\b", tree_text(tree)) is not None)  # otherwise nothing is a vector
    rng = np.random.default_rng(seed)
    a, c = (float(v) for v in rng.uniform(-2.0, 2.0, size=2))
    b = rng.uniform(-2.0, 2.0, size=3)
    per_element = []
    for bi in b:
        try:
            per_element.append(tree_eval(tree, {"a": a, "b": float(bi), "c": c}))
        except UnsafePointError:
            assume(False)
    # central differences lose about |f| * 1e-16 / eps to rounding: keep the values where that is small
    assume(max(abs(v) for v in per_element) < 1e3)

    # central differences element by element, then summed: differencing the sum itself would lose a
    # small element's slope in the rounding of a large one
    def element(a: float, bi: float, c: float) -> float:
        try:
            return tree_eval(tree, {"a": a, "b": bi, "c": c}, strict=False)
        except UnsafePointError:
            return math.nan

    fine = np.array([numeric_grad(element, [a, float(bi), c], eps=1e-7) for bi in b])      # (3 elements, 3 args)
    rough = np.array([numeric_grad(element, [a, float(bi), c], eps=1e-5) for bi in b])
    assume(bool(np.all(np.isfinite(fine))) and bool(np.all(np.abs(fine) < BIG)))
    assume(bool(np.all(np.abs(fine - rough) <= 1e-4 * (1 + np.abs(fine)))))
    scale = 1.0 if reduce == "sum" else 1.0 / len(b)
    reference = [scale * fine[:, 0].sum(), scale * fine[:, 1], scale * fine[:, 2].sum()]

    text = f"{reduce}({tree_text(tree)})"
    f = diffc.compile(text, args={"a": "f64", "b": "f64[n]", "c": "f64"}, backend="numpy")
    value, (da, db, dc) = f.value_and_grad(a, b, c)
    expected = np.sum(per_element) if reduce == "sum" else np.mean(per_element)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-9), text
    assert isinstance(da, float) and isinstance(dc, float) and db.shape == (3,)
    magnitude = [scale * np.abs(fine[:, k]).sum() for k in (0, 2)]  # the sum may cancel: scale by its terms
    assert da == pytest.approx(reference[0], rel=1e-5, abs=1e-6 + 1e-5 * magnitude[0]), text
    np.testing.assert_allclose(db, reference[1], rtol=1e-5, atol=1e-6, err_msg=text)
    assert dc == pytest.approx(reference[2], rel=1e-5, abs=1e-6 + 1e-5 * magnitude[1]), text
