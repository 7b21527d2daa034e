"""A hypothesis strategy for small random NumPy programs that diffc can trace.

Why a strategy of programs: the two back ends print the same IR in two very
different ways (NumPy statements; fused Numba loops). Hand-written tests
cover the shapes their authors thought of; random programs combine ops,
broadcasts, slices, reductions and sizes 0, 1, 2, 7 in ways nobody writes
by hand, and the NumPy back end is the reference for the Numba one.

A program is drawn as an expression DAG with its shapes tracked
symbolically, so every drawn program is shape-valid for every size: each
axis is a *dim key*, a size name of the argument types (``"m"``, ``"n"``,
``"k"``), a literal int (1 broadcasts, 2 from ``np.stack``), or a derived
key for a slice or a join (``"drop(n,1)"`` for ``x[1:]`` and ``x[:-1]``).
Two axes combine only when their keys are equal (or one is the literal 1),
which is a subset of what diffc unifies.

Values are kept finite by bounds tracked with each node: ``mag`` bounds
``|value|`` (exp, sinh, powers are drawn only where the bound stays below
``MAG_CAP``) and ``lo`` is a positive lower bound where one is known (log,
sqrt, division and fractional powers are drawn only of such values).

What is drawn is a :class:`ProgramSpec`: plain data (the source text, the
argument types, the sizes, a seed for the inputs) that prints as a Python
literal, so a failing example is pasted into the regression list of
tests/test_differential.py as it is.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import diffc

MAG_CAP = 1e5          # |value| bound above which no op that grows values is drawn
SIZES = (0, 1, 2, 7)   # small sizes: empty, single, pair, odd and not a multiple of the chunk count
BIG_VECTOR = 150_000   # n * 16 >= 2**21 for a loop with a transcendental function: the parallel path
BIG_MATRIX = (3000, 64)
TRICKY_NAMES = ("i", "j", "n", "m", "chunk", "chunks", "out", "exp", "start", "stop", "parts", "k", "x_bar")

MAX_ELEMENTS = 2_000_000  # no intermediate larger than this (np.outer of two 150 000-vectors)

DimKey = str | int
Shape = tuple[DimKey, ...]


@dataclass(frozen=True)
class ProgramSpec:
    """Everything needed to rebuild one drawn program and its inputs; prints as a pasteable literal.

    ``source`` defines ``f``; ``args`` maps argument names to diffc types in
    signature order; ``sizes`` gives each size name's concrete value;
    ``labels`` gives each integer label argument's column count (labels are
    drawn in ``[-cols, cols)``: NumPy's negative indices count from the end);
    ``ties`` draws inputs from a grid of halves (exact ties for max, where,
    abs); ``smooth`` says finite differences apply; ``exact`` says the plain
    NumPy evaluation of ``source`` is accurate (no unstable spelling that
    diffc rewrites into a stable one); ``threshold`` is the parallel
    threshold the plain loader substitutes (None: the generated one);
    ``vector_math`` is compile's flag (False: libm in loops); ``layout`` is
    how array arguments are laid out: ``"C"``, ``"F"`` (Fortran order) or
    ``"strided"`` (every other element of a larger array), as views of user
    data often are.
    """

    source: str
    args: tuple[tuple[str, str], ...]
    wrt: tuple[str, ...] | str | None
    sizes: tuple[tuple[str, int], ...]
    seed: int
    labels: tuple[tuple[str, int], ...] = ()
    ties: bool = False
    smooth: bool = True
    exact: bool = True
    threshold: int | None = None
    vector_math: bool = True
    layout: str = "C"

    @property
    def types(self) -> dict[str, str]:
        return dict(self.args)

    def function(self) -> Callable[..., Any]:
        """The program as a Python function (its source executed with ``np`` and ``diffc`` in scope)."""
        namespace: dict[str, Any] = {"np": np, "diffc": diffc}
        exec(compile(self.source, "<drawn program>", "exec"), namespace)  # noqa: S102 - test-generated source
        return namespace["f"]

    def traced_locals(self) -> Callable[..., dict[str, Any]]:
        """The program rewritten to return its locals: every intermediate, for the tolerance's magnitude."""
        lines = self.source.splitlines()
        body = [line for line in lines if not line.strip().startswith("return ")]
        ret = next(line for line in lines if line.strip().startswith("return "))
        body.append(ret.replace("return ", "_result = ", 1))
        body.append("    return locals()")
        namespace: dict[str, Any] = {"np": np, "diffc": diffc}
        exec(compile("\n".join(body), "<drawn program locals>", "exec"), namespace)  # noqa: S102
        return namespace["f"]

    def shape_of(self, text: str) -> tuple[int, ...]:
        sizes = dict(self.sizes)
        inner = text.split("[", 1)[1][:-1] if "[" in text else ""
        return tuple(int(d) if d.strip().lstrip("-").isdigit() else sizes[d.strip()]
                     for d in inner.split(",") if d.strip())

    def inputs(self) -> list[Any]:
        """The arguments, from ``seed``: floats in [-2, 2] (or halves with ``ties``), labels in range."""
        rng = np.random.default_rng(self.seed)
        labels = dict(self.labels)
        out: list[Any] = []
        for name, text in self.args:
            dtype = {"f64": np.float64, "f32": np.float32, "i64": np.int64}[text.split("[", 1)[0]]
            shape = self.shape_of(text)
            if name in labels:
                cols = labels[name]
                values = rng.integers(-cols, cols, size=shape) if cols else np.zeros(shape, dtype=np.int64)
                out.append(self.laid_out(values.astype(np.int64)))
                continue
            if dtype is np.int64:
                out.append(rng.integers(-3, 4, size=shape).astype(np.int64))
                continue
            floats = rng.integers(-4, 5, size=shape) * 0.5 if self.ties else rng.uniform(-2.0, 2.0, size=shape)
            array = np.asarray(floats, dtype=dtype)
            out.append(dtype(array.item()) if not shape else self.laid_out(array))
        return out

    def laid_out(self, array: np.ndarray) -> np.ndarray:
        """``array``'s values in this spec's memory layout (a Fortran-order copy, or a strided view)."""
        if self.layout == "F":
            return np.asfortranarray(array)
        if self.layout == "strided":
            wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype=array.dtype)
            wide[..., ::2] = array
            return wide[..., ::2]
        return array

    def cotangent(self, like: Any, dtype: Any) -> Any:
        """A random cotangent of the forward result's shape, in the output's ``dtype`` (seeded by ``seed + 1``)."""
        rng = np.random.default_rng(self.seed + 1)
        array = np.asarray(like)
        values = rng.uniform(-1.5, 1.5, size=array.shape).astype(dtype)
        return values if array.ndim else values[()]


# ---------------------------------------------------------------------------
# the DAG under construction


class TooBigError(Exception):
    """A step would make an intermediate of more than ``MAX_ELEMENTS`` entries; the step is dropped."""


@dataclass
class Value:
    """One node of the program being drawn: its variable, shape (dim keys), dtype and bounds."""

    expr: str
    shape: Shape
    dtype: str            # "f64", "f32", "bool", "i64"
    mag: float            # |value| <= mag
    lo: float | None = None  # value >= lo > 0 when known positive

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in ("f64", "f32")


def _promote(a: str, b: str) -> str:
    """NumPy 2's result dtype of two array operands (a Python float operand is weak: see callers)."""
    kinds = {a, b}
    if kinds <= {"bool"}:
        return "bool"
    if "f64" in kinds or ("i64" in kinds and "f32" in kinds):
        return "f64"
    if "f32" in kinds:
        return "f32"
    return "i64" if "i64" in kinds else "f64"


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """NumPy's broadcast of two shapes of dim keys, or None: equal keys, or one side the literal 1."""
    out: list[DimKey] = []
    for k in range(max(len(a), len(b))):
        da = a[len(a) - 1 - k] if k < len(a) else None
        db = b[len(b) - 1 - k] if k < len(b) else None
        if da is None or da == db:
            out.append(db)  # type: ignore[arg-type]
        elif db is None or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            return None
    return tuple(reversed(out))


class Builder:
    """Draws a program step by step; every step appends one assignment ``tK = ...``."""

    def __init__(self, draw: Callable[..., Any], sizes: dict[str, int]) -> None:
        self.draw = draw
        self.sizes: dict[DimKey, int] = {name: size for name, size in sizes.items()}
        self.lines: list[str] = []
        self.pool: list[Value] = []
        self.args: list[tuple[str, str]] = []
        self.labels: list[tuple[str, int]] = []
        self.smooth = True
        self.exact = True
        self.count = 0

    # -- helpers -------------------------------------------------------------------
    def size(self, key: DimKey) -> int:
        return key if isinstance(key, int) else self.sizes[key]

    def elements(self, shape: Shape) -> int:
        return math.prod(self.size(d) for d in shape)

    def derived(self, key: str, size: int) -> str:
        self.sizes[key] = size
        return key

    def choose(self, options: Any) -> Any:
        return self.draw(st.sampled_from(list(options)))

    def flag(self, p_true: float = 0.5) -> bool:
        return self.draw(st.integers(0, 99)) < p_true * 100

    def emit(self, expr: str, shape: Shape, dtype: str, mag: float, lo: float | None = None) -> Value:
        if self.elements(shape) > MAX_ELEMENTS:
            raise TooBigError(expr)
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"    {name} = {expr}")
        value = Value(name, shape, dtype, min(max(mag, 0.0), 1e300), lo)
        self.pool.append(value)
        return value

    def floats(self, pred: Callable[[Value], bool] = lambda v: True) -> list[Value]:
        return [v for v in self.pool if v.is_float and pred(v)]

    def pick(self, pred: Callable[[Value], bool] = lambda v: True) -> Value | None:
        candidates = self.floats(pred)
        if not candidates:
            return None
        # the newest values first, so that steps build on each other (deeper DAGs)
        return self.choose(list(reversed(candidates)))

    def const(self) -> tuple[str, float]:
        text = self.choose(["0.5", "2.0", "-1.5", "0.7", "3", "1.0", "-0.25"])
        return text, abs(float(text))

    # -- positivity ----------------------------------------------------------------
    def positive(self, v: Value) -> Value:
        """A positive value made from ``v`` (with a lower bound), for log, sqrt, division and powers."""
        if v.lo is not None and v.lo >= 1e-3 and self.flag(0.5):
            return v
        options = ["square", "cosh", "exp", "softplus1"] if v.mag <= 10 else ["square"]
        if v.mag <= 300:
            options.append("abs")
        kind = self.choose(options)
        if kind == "square" and v.mag <= 300:
            return self.emit(f"1.0 + {v.expr} ** 2", v.shape, v.dtype, 1.0 + v.mag**2, 1.0)
        if kind == "square":
            return self.emit(f"1.0 + np.tanh({v.expr}) ** 2", v.shape, v.dtype, 2.0, 1.0)
        if kind == "cosh":
            return self.emit(f"np.cosh({v.expr})", v.shape, v.dtype, math.cosh(v.mag), 1.0)
        if kind == "exp":
            return self.emit(f"np.exp({v.expr})", v.shape, v.dtype, math.exp(v.mag), math.exp(-v.mag))
        if kind == "softplus1":
            return self.emit(f"{v.expr} * {v.expr} + 0.25", v.shape, v.dtype, v.mag**2 + 0.25, 0.25)
        self.smooth = False
        return self.emit(f"np.abs({v.expr}) + 0.5", v.shape, v.dtype, v.mag + 0.5, 0.5)

    # -- steps -------------------------------------------------------------------------
    def step(self) -> None:
        kind = self.choose(["unary", "binary", "reduce", "matmul", "slice", "select", "stable",
                            "shape", "join", "gather", "model", "binary", "unary", "model"])
        with contextlib.suppress(TooBigError):  # an outer product of two long vectors: not drawn
            getattr(self, f"step_{kind}")()

    def step_unary(self) -> None:
        v = self.pick()
        if v is None:
            return
        fns = ["neg", "sin", "cos", "tanh", "arctan", "square", "sigmoid_fn", "abs", "scale", "log_pos", "sqrt_pos",
               "log1p_pos", "pow_int", "pow_frac", "reciprocal", "arcsinh", "log2_pos", "log10_pos"]
        if v.mag <= 10:
            fns += ["exp", "expm1", "sinh", "cosh", "exp2", "rpow"]
        if v.mag <= 0.9:
            fns += ["arcsin", "arccos", "tan"]
        if v.dtype == "f32" or v.dtype == "f64":
            fns += ["astype"]
        if v.ndim:
            fns += ["norm", "per_row", "expand"]
        fn = self.choose(fns)
        x, s, d, m = v.expr, v.shape, v.dtype, v.mag
        simple = {"sin": ("np.sin", 1.0), "cos": ("np.cos", 1.0), "tanh": ("np.tanh", 1.0),
                  "arctan": ("np.arctan", 1.6), "arcsin": ("np.arcsin", 1.6), "arccos": ("np.arccos", 3.2),
                  "tan": ("np.tan", 1.3), "arcsinh": ("np.arcsinh", math.asinh(m) + 1e-9)}
        if fn in simple:
            name, bound = simple[fn]
            self.emit(f"{name}({x})", s, d, bound)
        elif fn == "neg":
            self.emit(f"-{x}", s, d, m)
        elif fn == "square":
            if m <= 300:
                self.emit(f"np.square({x})", s, d, m * m)
        elif fn == "sigmoid_fn":
            self.emit(f"diffc.sigmoid({x})" if self.flag(0.5) else f"diffc.softplus({x})", s, d, m + 1.0)
        elif fn == "abs":
            self.smooth = False
            self.emit(f"np.abs({x})" if self.flag(0.7) else f"abs({x})", s, d, m)
        elif fn == "scale":
            c, cm = self.const()
            self.emit(f"{c} * {x}" if self.flag(0.5) else f"{x} * {c}", s, d, m * cm)
        elif fn == "exp":
            self.emit(f"np.exp({x})", s, d, math.exp(m), math.exp(-m))
        elif fn == "expm1":
            self.emit(f"np.expm1({x})", s, d, math.expm1(m))
        elif fn == "sinh":
            self.emit(f"np.sinh({x})", s, d, math.sinh(m))
        elif fn == "cosh":
            self.emit(f"np.cosh({x})", s, d, math.cosh(m), 1.0)
        elif fn == "exp2":
            self.emit(f"np.exp2({x})", s, d, 2.0**m, 2.0**-m)
        elif fn == "rpow":
            self.emit(f"2.0 ** {x}" if m > 0 else f"2.0 ** ({x})", s, d, 2.0**m, 2.0**-m)
        elif fn in ("log_pos", "log1p_pos", "log2_pos", "log10_pos", "sqrt_pos", "reciprocal", "pow_frac"):
            p = self.positive(v)
            lo, hi = p.lo or 1e-3, p.mag
            if fn == "log_pos":
                self.emit(f"np.log({p.expr})", s, d, max(abs(math.log(lo)), abs(math.log(hi))))
            elif fn == "log1p_pos":
                self.emit(f"np.log1p({p.expr})", s, d, math.log1p(hi), math.log1p(lo))
            elif fn == "log2_pos":
                self.emit(f"np.log2({p.expr})", s, d, max(abs(math.log2(lo)), abs(math.log2(hi))))
            elif fn == "log10_pos":
                self.emit(f"np.log10({p.expr})", s, d, max(abs(math.log10(lo)), abs(math.log10(hi))))
            elif fn == "sqrt_pos":
                self.emit(f"np.sqrt({p.expr})", s, d, math.sqrt(hi), math.sqrt(lo))
            elif fn == "reciprocal":
                self.emit(f"1.0 / {p.expr}" if self.flag(0.7) else f"np.reciprocal({p.expr})", s, d, 1.0 / lo,
                          1.0 / hi if hi < 1e300 else None)
            elif hi <= 1e4:
                e = self.choose(["0.5", "1.5", "-0.5"])
                self.emit(f"{p.expr} ** {e}", s, d, max(hi**float(e), lo**float(e)))
        elif fn == "pow_int":
            e = self.choose([2, 3, 1, 0])
            if m**max(e, 1) <= MAG_CAP:
                self.emit(f"{x} ** {e}", s, d, max(m, 1.0) ** e)
        elif fn == "norm":
            self.smooth = False  # not differentiable at 0 (an empty or all-zero input)
            count = max(self.elements(v.shape), 1)
            if v.ndim == 2 and self.flag(0.5):
                self.emit(f"np.linalg.norm({x}, axis=-1)", s[:1], d, m * math.sqrt(self.size(s[1]) or 1))
            else:
                self.emit(f"np.linalg.norm({x})", (), d, m * math.sqrt(count))
        elif fn == "per_row":
            if self.size(s[0]):
                self.emit(f"np.sum({x}, axis=0) / {x}.shape[0]", s[1:], d, m)
        elif fn == "expand":
            if v.ndim == 1:
                axis = self.choose([0, 1, -1])
                self.emit(f"np.expand_dims({x}, {axis})", (1, s[0]) if axis == 0 else (s[0], 1), d, m, v.lo)
        elif fn == "astype":
            target = "f32" if d == "f64" else "f64"
            self.emit(f"{x}.astype(np.{'float32' if target == 'f32' else 'float64'})", s, target, m, v.lo)

    def operand_for(self, a: Value) -> tuple[str, Shape, str, float, float | None]:
        """A second operand broadcast-compatible with ``a``: a value of the pool, a view of one, or a number."""
        compatible = [v for v in self.floats() if broadcast(a.shape, v.shape) is not None]
        if not compatible or self.flag(0.2):
            c, cm = self.const()
            return c, (), "weak", cm, float(c) if float(c) > 0 else None
        b = self.choose(list(reversed(compatible)))
        return b.expr, b.shape, b.dtype, b.mag, b.lo

    def step_binary(self) -> None:
        a = self.pick()
        if a is None:
            return
        bx, bs, bd, bm, blo = self.operand_for(a)
        shape = broadcast(a.shape, bs)
        assert shape is not None
        dtype = a.dtype if bd == "weak" else _promote(a.dtype, bd)
        op = self.choose(["+", "-", "*", "/", "maximum", "minimum", "hypot", "arctan2", "pow", "dot_scalar"])
        if self.flag(0.5) and bd != "weak":  # the other order, for the reflected operators and broadcasts
            left, right = bx, a.expr
        else:
            left, right = a.expr, bx
        if op in ("+", "-"):
            self.emit(f"{left} {op} {right}", shape, dtype, a.mag + bm)
        elif op == "*":
            if a.mag * bm <= MAG_CAP:
                self.emit(f"{left} * {right}", shape, dtype, a.mag * bm)
        elif op == "/":
            if blo is not None and blo >= 0.1 and a.mag / blo <= MAG_CAP:
                self.emit(f"{a.expr} / {bx}", shape, dtype, a.mag / blo)
            elif bd != "weak":  # divide by a positive form of the other operand
                b = Value(bx, bs, bd, bm, blo)
                p = self.positive(b)
                if p.lo and a.mag / p.lo <= MAG_CAP:
                    self.emit(f"{a.expr} / {p.expr}", shape, dtype, a.mag / p.lo)
        elif op in ("maximum", "minimum"):
            self.smooth = False
            if self.flag(0.7):
                self.emit(f"np.{op}({left}, {right})", shape, dtype, max(a.mag, bm))
            else:
                self.emit(f"np.{op}({a.expr}, 0.0)", a.shape, a.dtype, a.mag)
        elif op == "hypot":
            self.emit(f"np.hypot({left}, {right})", shape, dtype, a.mag + bm)
            self.smooth = False  # not differentiable at the origin (ties grids hit it)
        elif op == "arctan2":
            self.emit(f"np.arctan2({left}, {right})", shape, dtype, 3.2)
            self.smooth = False
        elif op == "pow":
            if bd != "weak" and bm <= 3:
                p = self.positive(a)
                if p.mag <= 100:
                    mag = max(p.mag**bm, (p.lo or 1e-3) ** -bm)
                    if mag <= MAG_CAP:
                        self.emit(f"{p.expr} ** {bx}", shape, dtype, mag)
        elif op == "dot_scalar" and (a.ndim == 0 or bs == ()) and a.mag * bm <= MAG_CAP:
            self.emit(f"np.dot({left}, {right})", shape, dtype, a.mag * bm)

    def step_reduce(self) -> None:
        v = self.pick(lambda v: v.ndim >= 1)
        if v is None:
            return
        fn = self.choose(["sum", "mean", "max", "min", "sum", "mean"])
        axes_options: list[Any] = [None, 0, -1]
        if v.ndim == 2:
            axes_options += [1, (0, 1), (1, 0), (0,), (-1,)]
        axis = self.choose(axes_options)
        keepdims = self.flag(0.3)
        nd = v.ndim
        reduced = list(range(nd)) if axis is None else [a % nd for a in (axis if isinstance(axis, tuple) else (axis,))]
        if fn in ("max", "min") and any(self.size(v.shape[a]) == 0 for a in reduced):
            return  # NumPy refuses the max of nothing
        if fn in ("max", "min"):
            self.smooth = False
        count = math.prod(self.size(v.shape[a]) for a in reduced)
        mag = v.mag * max(count, 1) if fn == "sum" else v.mag
        shape = tuple((1 if a in reduced else d) for a, d in enumerate(v.shape)) if keepdims else \
            tuple(d for a, d in enumerate(v.shape) if a not in reduced)
        args = "" if axis is None else f"axis={axis}"
        if keepdims:
            args += (", " if args else "") + "keepdims=True"
        if self.flag(0.7):
            name = {"max": "np.max", "min": "np.min"}.get(fn, f"np.{fn}")
            self.emit(f"{name}({v.expr}{', ' + args if args else ''})", shape, v.dtype, mag)
        else:
            self.emit(f"{v.expr}.{fn}({args})", shape, v.dtype, mag)

    def step_matmul(self) -> None:
        mats = self.floats(lambda v: v.ndim == 2)
        vecs = self.floats(lambda v: v.ndim == 1)
        forms: list[tuple[str, Value, Value, str]] = []
        for a in mats:
            for b in vecs:
                if a.shape[1] == b.shape[0]:
                    forms.append(("{a} @ {b}", a, b, "Mv"))
                if a.shape[0] == b.shape[0]:
                    forms.append(("{b} @ {a}", a, b, "vM"))
                    forms.append(("{a}.T @ {b}", a, b, "MTv"))
            for b in mats:
                if a.shape[1] == b.shape[0]:
                    forms.append(("{a} @ {b}", a, b, "MM"))
                if a.shape[0] == b.shape[0]:
                    forms.append(("{a}.T @ {b}", a, b, "MTM"))
                if a.shape[1] == b.shape[1]:
                    forms.append(("{a} @ {b}.T", a, b, "MMT"))
        for a in vecs:
            for b in vecs:
                if a.shape == b.shape:
                    forms.append(("{a} @ {b}", a, b, "vv"))
                forms.append(("np.outer({a}, {b})", a, b, "outer"))
        if not forms:
            return
        template, a, b, kind = self.choose(forms)
        if self.flag(0.25) and kind in ("Mv", "vM", "MM", "vv"):
            template = template.replace("{a} @ {b}", "np.dot({a}, {b})").replace("{b} @ {a}", "np.dot({b}, {a})")
        a0, a1 = a.shape[0], a.shape[-1]
        b0, b1 = b.shape[0], b.shape[-1]
        shape, inner = {"Mv": ((a0,), a1), "vM": ((a1,), a0), "MTv": ((a1,), a0), "MM": ((a0, b1), a1),
                        "MTM": ((a1, b1), a0), "MMT": ((a0, b0), a1), "vv": ((), a0), "outer": ((a0, b0), 1)}[kind]
        mag = a.mag * b.mag * max(self.size(inner), 1)
        if mag > MAG_CAP:
            return
        self.emit(template.format(a=a.expr, b=b.expr), shape, _promote(a.dtype, b.dtype), mag)

    def step_slice(self) -> None:
        v = self.pick(lambda v: v.ndim >= 1)
        if v is None:
            return
        options = ["[1:]", "[:-1]", "[::2]", "[1::2]", "[2:]", "[::-1]", "[0]", "[-1]", "[:, None]", "[None, :]"]
        if v.ndim == 2:
            options += ["[:, 1:]", "[1:, :]", "[:, :-1]", "[:, ::2]", "[:, 0]", "[-1, :]", "[::2, 1:]"]
        key = self.choose(options)
        if v.ndim == 2 and key in ("[:, None]", "[None, :]"):
            key = "[:, :, None]" if key == "[:, None]" else "[None]"
            if key == "[:, :, None]":
                return  # rank 3: outside what this strategy draws
        first, rest = v.shape[0], v.shape[1:]

        def cut(d: DimKey, how: str) -> DimKey:
            s = self.size(d)
            if how == "drop1":
                return self.derived(f"drop({d},1)", max(s - 1, 0))
            if how == "drop2":
                return self.derived(f"drop({d},2)", max(s - 2, 0))
            if how == "half":
                return self.derived(f"half({d})", (s + 1) // 2)
            return self.derived(f"halfodd({d})", s // 2)

        if key in ("[1:]", "[:-1]", "[1:, :]"):
            shape: Shape = (cut(first, "drop1"), *rest)
        elif key == "[2:]":
            shape = (cut(first, "drop2"), *rest)
        elif key == "[::2]":
            shape = (cut(first, "half"), *rest)
        elif key == "[1::2]":
            shape = (cut(first, "halfodd"), *rest)
        elif key == "[::-1]":
            shape = v.shape
        elif key in ("[0]", "[-1]", "[-1, :]"):
            if self.size(first) == 0:
                return
            shape = tuple(rest)
        elif key == "[:, None]":
            shape = (first, 1)
        elif key in ("[None, :]", "[None]"):
            shape = (1, *v.shape)
        elif key in ("[:, 1:]", "[:, :-1]"):
            shape = (first, cut(v.shape[1], "drop1"))
        elif key == "[:, ::2]":
            shape = (first, cut(v.shape[1], "half"))
        elif key == "[:, 0]":
            if self.size(v.shape[1]) == 0:
                return
            shape = (first,)
        else:  # [::2, 1:]
            shape = (cut(first, "half"), cut(v.shape[1], "drop1"))
        if len(shape) > 2:
            return
        self.emit(f"{v.expr}{key}", shape, v.dtype, v.mag, v.lo)

    def step_select(self) -> None:
        a = self.pick()
        if a is None:
            return
        self.smooth = False
        kind = self.choose(["where", "where0", "clip", "sign", "mask_mul", "relu", "and_where", "or_where"])
        if kind == "clip":
            self.emit(f"np.clip({a.expr}, -0.5, 0.75)", a.shape, a.dtype, min(a.mag, 0.75))
        elif kind == "relu":
            self.emit(f"np.where({a.expr} > 0, {a.expr}, 0.1 * {a.expr})", a.shape, a.dtype, a.mag)
        elif kind in ("and_where", "or_where"):
            join = "&" if kind == "and_where" else "|"
            self.emit(f"np.where(({a.expr} > -0.5) {join} ({a.expr} < 1.0), {a.expr}, 0.5 * {a.expr})", a.shape,
                      a.dtype, a.mag)
        elif kind == "sign":
            self.emit(f"np.sign({a.expr})", a.shape, a.dtype, 1.0)
        elif kind == "mask_mul":
            self.emit(f"({a.expr} > 0.25) * {a.expr}", a.shape, a.dtype, a.mag)
        else:
            bx, bs, bd, bm, _ = self.operand_for(a)
            cx, cs, cd, cm, _ = self.operand_for(a)
            shape = broadcast(broadcast(a.shape, bs) or (), cs)
            if shape is None or broadcast(a.shape, bs) is None:
                return
            dtype = a.dtype if cd == "weak" else _promote(a.dtype, cd)
            if kind == "where0":
                self.emit(f"np.where({a.expr} > 0.3, {bx}, 0.0)", broadcast(a.shape, bs) or (),
                          "f64" if bd == "weak" else bd, bm)
            else:
                both = broadcast(shape, a.shape)
                if both is None:
                    return
                self.emit(f"np.where({a.expr} < {bx}, {cx}, {a.expr})", both, dtype, max(cm, a.mag))

    def step_stable(self) -> None:
        z = self.pick()
        if z is None:
            return
        kind = self.choose(["sigmoid", "log_sigmoid", "softplus", "logsumexp", "log_one_minus", "lse_fn",
                            "softmax_fn", "log_softmax_fn", "softmax_pattern"])
        x, s, d, m = z.expr, z.shape, z.dtype, z.mag
        if kind == "sigmoid":
            self.exact = self.exact and m <= 20
            self.emit(f"1 / (1 + np.exp(-{x}))", s, d, 1.0)
        elif kind == "log_sigmoid":
            self.exact = False
            self.emit(f"np.log(1 / (1 + np.exp(-{x})))", s, d, m + 1.0)
        elif kind == "softplus":
            self.exact = False
            self.emit(f"np.log(1 + np.exp({x}))", s, d, m + 1.0)
        elif kind == "log_one_minus":
            self.exact = False
            self.emit(f"np.log(1 - 1 / (1 + np.exp(-{x})))", s, d, m + 1.0)
        elif z.ndim >= 1:
            axis = self.choose([None, -1, 0] + ([1] if z.ndim == 2 else []))
            nd = z.ndim
            reduced = list(range(nd)) if axis is None else [axis % nd]
            if any(self.size(z.shape[a]) == 0 for a in reduced):
                return  # the max of nothing (the stable forms shift by it)
            keep = kind == "softmax_pattern" or self.flag(0.3)
            rshape = tuple((1 if a in reduced else dd) for a, dd in enumerate(s)) if keep else \
                tuple(dd for a, dd in enumerate(s) if a not in reduced)
            count = math.prod(self.size(z.shape[a]) for a in reduced)
            ax = "" if axis is None else f", axis={axis}"
            kd = ", keepdims=True" if keep else ""
            if kind == "logsumexp":
                self.exact = False
                self.emit(f"np.log(np.sum(np.exp({x}){ax}{kd}))", rshape, d, m + math.log(max(count, 1)) + 1)
            elif kind == "lse_fn":
                self.emit(f"diffc.logsumexp({x}{ax}{kd})", rshape, d, m + math.log(max(count, 1)) + 1)
            elif kind == "softmax_fn":
                self.emit(f"diffc.softmax({x}{ax})", s, d, 1.0)
            elif kind == "log_softmax_fn":
                self.emit(f"diffc.log_softmax({x}{ax})", s, d, 2 * m + math.log(max(count, 1)) + 1)
            elif m <= 10:  # softmax spelled out (stable only while exp does not overflow)
                self.emit(f"np.exp({x}) / np.sum(np.exp({x}){ax}, keepdims=True)", s, d, 1.0)

    def step_shape(self) -> None:
        v = self.pick(lambda v: v.ndim >= 1)
        if v is None:
            return
        if v.ndim == 2:
            kind = self.choose(["T", "transpose", "ravel", "transpose_fn"])
            if kind in ("T", "transpose", "transpose_fn"):
                text = {"T": f"{v.expr}.T", "transpose": f"{v.expr}.transpose()",
                        "transpose_fn": f"np.transpose({v.expr})"}[kind]
                self.emit(text, (v.shape[1], v.shape[0]), v.dtype, v.mag, v.lo)
            else:
                a, b = v.shape
                key = self.derived(f"prod({a},{b})", self.size(a) * self.size(b))
                self.emit(f"{v.expr}.reshape(-1)", (key,), v.dtype, v.mag, v.lo)
        else:
            kind = self.choose(["col", "row", "np_reshape"])
            (d,) = v.shape
            if kind == "col":
                self.emit(f"{v.expr}.reshape(-1, 1)", (d, 1), v.dtype, v.mag, v.lo)
            elif kind == "row":
                self.emit(f"{v.expr}.reshape(1, -1)", (1, d), v.dtype, v.mag, v.lo)
            else:
                self.emit(f"np.reshape({v.expr}, (1, -1))", (1, d), v.dtype, v.mag, v.lo)

    def step_join(self) -> None:
        a = self.pick(lambda v: 1 <= v.ndim <= 2)
        if a is None:
            return
        kind = self.choose(["concat", "stack"])
        if kind == "stack":
            same = [v for v in self.floats() if v.shape == a.shape and v.ndim == 1]
            if not same:
                return
            b = self.choose(list(reversed(same)))
            axis = self.choose([0, 1, -1])
            shape: Shape = (2, a.shape[0]) if axis == 0 else (a.shape[0], 2)
            self.emit(f"np.stack([{a.expr}, {b.expr}], axis={axis})" if axis else f"np.stack([{a.expr}, {b.expr}])",
                      shape, _promote(a.dtype, b.dtype), max(a.mag, b.mag))
            return
        axis = self.choose([0] if a.ndim == 1 else [0, 1])
        others = [v for v in self.floats() if v.ndim == a.ndim
                  and all(v.shape[k] == a.shape[k] for k in range(a.ndim) if k != axis)]
        b = self.choose(list(reversed(others)))  # a itself qualifies
        key = self.derived(f"cat({a.shape[axis]},{b.shape[axis]})", self.size(a.shape[axis]) + self.size(b.shape[axis]))
        shape = tuple(key if k == axis else a.shape[k] for k in range(a.ndim))
        tail = f", axis={axis}" if axis else ""
        self.emit(f"np.concatenate([{a.expr}, {b.expr}]{tail})", shape, _promote(a.dtype, b.dtype),
                  max(a.mag, b.mag))

    def step_model(self) -> None:
        """The shapes of real models in one step: a row loss of ``X @ w``, a layer, Rosenbrock, a long chain.

        These are what the loop planner fuses hardest (row kernels that read X
        once for value and gradient, scatter windows, several reductions in
        one loop), and single random steps rarely line them up.
        """
        kind = self.choose(["rowloss", "layer", "rosen", "chain", "softmax_ce"])
        mats = self.floats(lambda v: v.ndim == 2)
        vecs = self.floats(lambda v: v.ndim == 1)
        if kind == "rosen":
            v = self.pick(lambda v: v.ndim == 1 and v.mag <= 10)
            if v is None:
                return
            a = self.emit(f"{v.expr}[1:] - {v.expr}[:-1] ** 2", (self.derived(f"drop({v.shape[0]},1)", max(
                self.size(v.shape[0]) - 1, 0)),), v.dtype, v.mag + v.mag**2)
            b = self.emit(f"1.0 - {v.expr}[:-1]", a.shape, v.dtype, 1.0 + v.mag)
            self.emit(f"100.0 * {a.expr} ** 2 + {b.expr} ** 2", a.shape, v.dtype, 100 * a.mag**2 + b.mag**2)
            return
        if kind == "chain":
            u = self.pick(lambda v: v.mag <= 5)
            if u is None:
                return
            partners = [w for w in self.floats(lambda w: w.shape == u.shape and w.mag <= 5)]
            w = self.choose(list(reversed(partners)))
            self.emit(f"np.sin({u.expr}) * np.exp(-{u.expr} ** 2) + np.log(1 + {u.expr} ** 2) * np.tanh({w.expr})"
                      f" + np.sqrt(1 + {u.expr} ** 2 * {w.expr} ** 2)", u.shape, _promote(u.dtype, w.dtype),
                      2 + math.log(1 + u.mag**2) + math.sqrt(1 + u.mag**2 * w.mag**2))
            return
        pairs = [(a, v) for a in mats for v in vecs if a.shape[1] == v.shape[0] and a.mag * v.mag <= 100]
        if kind in ("rowloss", "softmax_ce") and not pairs:
            return
        if kind == "rowloss":
            a, v = self.choose(pairs)
            z = self.emit(f"{a.expr} @ {v.expr}", (a.shape[0],), _promote(a.dtype, v.dtype),
                          a.mag * v.mag * max(self.size(a.shape[1]), 1))
            if z.mag > 1e4:
                return
            ys = [y for y in self.floats(lambda y: y.shape == z.shape)]
            y = self.choose(list(reversed(ys)))
            scalars = self.floats(lambda t: t.ndim == 0)
            if scalars and self.flag(0.5):
                bias = self.choose(scalars)
                z = self.emit(f"{z.expr} + {bias.expr}", z.shape, _promote(z.dtype, bias.dtype), z.mag + bias.mag)
            loss = self.choose(["logistic", "hinge", "square", "logistic_sig"])
            if loss == "logistic":
                self.emit(f"np.log(1 + np.exp(-{y.expr} * {z.expr}))", z.shape, z.dtype, y.mag * z.mag + 1)
                self.exact = False
            elif loss == "hinge":
                self.smooth = False
                self.emit(f"np.maximum(0.0, 1 - {y.expr} * {z.expr})", z.shape, z.dtype, 1 + y.mag * z.mag)
            elif loss == "square":
                self.emit(f"({z.expr} - {y.expr}) ** 2", z.shape, z.dtype, (z.mag + y.mag) ** 2)
            else:
                self.exact = False
                p = self.emit(f"1 / (1 + np.exp(-{z.expr}))", z.shape, z.dtype, 1.0)
                self.emit(f"{y.expr} * np.log({p.expr}) + (1 - {y.expr}) * np.log(1 - {p.expr})", z.shape, z.dtype,
                          (1 + y.mag) * (z.mag + 1))
            return
        if kind == "layer":
            forms = [(a, w) for a in mats for w in mats if a.shape[1] == w.shape[0] and a.mag * w.mag <= 100]
            if not forms:
                return
            a, w = self.choose(forms)
            h = self.emit(f"{a.expr} @ {w.expr}", (a.shape[0], w.shape[1]), _promote(a.dtype, w.dtype),
                          a.mag * w.mag * max(self.size(a.shape[1]), 1))
            biases = [b for b in self.floats(lambda b: b.shape in ((w.shape[1],), (1, w.shape[1]), ()))]
            if biases and self.flag(0.7):
                b = self.choose(list(reversed(biases)))
                h = self.emit(f"{h.expr} + {b.expr}", h.shape, _promote(h.dtype, b.dtype), h.mag + b.mag)
            act = self.choose(["relu", "tanh", "sigmoid"])
            if act == "relu":
                self.smooth = False
                self.emit(f"np.maximum({h.expr}, 0.0)", h.shape, h.dtype, h.mag)
            elif act == "tanh":
                self.emit(f"np.tanh({h.expr})", h.shape, h.dtype, 1.0)
            else:
                self.emit(f"1 / (1 + np.exp(-{h.expr}))", h.shape, h.dtype, 1.0)
            return
        # softmax cross-entropy with integer labels on logits X @ W
        forms = [(a, w) for a in mats for w in mats if a.shape[1] == w.shape[0] and isinstance(a.shape[0], str)
                 and a.shape[0] in ("m", "n", "k") and self.size(w.shape[1]) > 0 and a.mag * w.mag <= 100]
        if not forms:
            return
        a, w = self.choose(forms)
        logits = self.emit(f"{a.expr} @ {w.expr}", (a.shape[0], w.shape[1]), _promote(a.dtype, w.dtype),
                           a.mag * w.mag * max(self.size(a.shape[1]), 1))
        lse = self.emit(f"diffc.logsumexp({logits.expr}, axis=1)" if self.flag(0.5) else
                        f"np.log(np.sum(np.exp({logits.expr}), axis=1))", (a.shape[0],), logits.dtype, logits.mag + 3)
        self.exact = False
        label = f"labels{len(self.labels)}"
        self.args.append((label, f"i64[{a.shape[0]}]"))
        self.labels.append((label, self.size(w.shape[1])))
        self.emit(f"{lse.expr} - {logits.expr}[np.arange({logits.expr}.shape[0]), {label}]", (a.shape[0],),
                  logits.dtype, 2 * logits.mag + 3)

    def step_gather(self) -> None:
        rows = [v for v in self.floats(lambda v: v.ndim == 2) if isinstance(v.shape[0], str) and v.shape[0] in
                ("m", "n", "k") and (self.size(v.shape[1]) > 0 or self.size(v.shape[0]) == 0)]
        if not rows:
            return
        v = self.choose(list(reversed(rows)))
        existing = [name for name, text in self.args if text == f"i64[{v.shape[0]}]" and
                    dict(self.labels).get(name) == self.size(v.shape[1])]
        if existing and self.flag(0.7):
            label = existing[0]
        else:
            label = f"labels{len(self.labels)}"
            self.args.append((label, f"i64[{v.shape[0]}]"))
            self.labels.append((label, self.size(v.shape[1])))
        self.emit(f"{v.expr}[np.arange({v.expr}.shape[0]), {label}]", (v.shape[0],), v.dtype, v.mag, v.lo)


# ---------------------------------------------------------------------------
# the strategy


@st.composite
def programs(draw: Callable[..., Any], allow_big: bool = False, max_steps: int = 7,
             plain: bool = True) -> ProgramSpec:
    """A random, shape-valid program over 1-4 inputs, ending in a scalar (mostly) or an array.

    ``allow_big``: occasionally sizes that take the parallel path for real
    (150 000-vectors, 3000 x 64 matrices). ``plain``: the program runs
    through the plain-Python loader, so draw a parallel threshold to
    substitute (0 forces the chunked branch at every size).
    """
    big = allow_big and draw(st.integers(0, 9)) == 0
    sizes = {name: draw(st.sampled_from(SIZES)) for name in ("m", "n", "k")}
    if big:
        if draw(st.booleans()):
            sizes["n"] = BIG_VECTOR
        else:
            sizes["m"], sizes["n"] = BIG_MATRIX
    precision = draw(st.sampled_from(["f64", "f64", "f64", "f64", "f32", "mixed"]))
    b = Builder(draw, sizes)
    shapes: list[Shape] = [("n",), ("m", "n"), (), ("m",), ("k",), ("n", "k"), (1, "n"), ("m", 1), ("n", "m")]
    count = draw(st.integers(1, 4))
    used_names: set[str] = set()
    for index in range(count):
        shape = draw(st.sampled_from(shapes))
        if big and b.elements(shape) > 200_000:
            shape = ("n",) if sizes["n"] <= BIG_VECTOR else ("m",)
        dtype = "f64" if precision == "f64" else "f32" if precision == "f32" else draw(st.sampled_from(["f64", "f32"]))
        name = {0: "s", 1: "x", 2: "W"}[len(shape)] + str(index)
        if draw(st.integers(0, 9)) == 0:
            tricky = draw(st.sampled_from(TRICKY_NAMES))
            if tricky not in used_names:
                name = tricky
        used_names.add(name)
        dims = ",".join(str(d) for d in shape)
        b.args.append((name, f"{dtype}[{dims}]" if shape else dtype))
        b.pool.append(Value(name, shape, dtype, 2.0))
    if draw(st.integers(0, 19)) == 0:  # an integer data array, used arithmetically (promotes to float)
        shape = draw(st.sampled_from([("n",), ("m", "n")]))
        name = f"ints{count}"
        b.args.append((name, f"i64[{','.join(shape)}]"))
        b.pool.append(Value(name, shape, "i64", 3.0))
        partner = [v for v in b.floats() if broadcast(v.shape, shape) is not None]
        if partner:
            p = draw(st.sampled_from(partner))
            out_shape = broadcast(p.shape, shape)
            assert out_shape is not None
            b.emit(f"{p.expr} * {name}", out_shape, _promote(p.dtype, "i64"), p.mag * 3.0)
    steps = draw(st.integers(1, max_steps))
    for _ in range(steps):
        b.step()
    # the output: mostly a scalar (value_and_grad), sometimes an array (vjp with a random cotangent)
    floats = b.floats()
    last = floats[-1]
    if last.ndim and draw(st.integers(0, 3)) == 0:
        ret = last.expr
    else:
        terms = [last] + [draw(st.sampled_from(floats)) for _ in range(draw(st.integers(0, 2)))]
        parts = []
        for t in terms:
            if t.ndim == 0:
                parts.append(t.expr)
                continue
            red = draw(st.sampled_from(["np.sum", "np.sum", "np.mean", "np.max"]))
            if red == "np.max" and b.elements(t.shape) == 0:
                red = "np.sum"
            if red == "np.max":
                b.smooth = False
            parts.append(f"{red}({t.expr})")
        weights = [draw(st.sampled_from(["", "0.5 * ", "-1.0 * ", "2.0 * "])) for _ in parts]
        ret = " + ".join(w + p for w, p in zip(weights, parts, strict=True))
    params = ", ".join(name for name, _ in b.args)
    source = "\n".join([f"def f({params}):", *b.lines, f"    return {ret}", ""])
    float_args = [name for name, text in b.args if text.startswith("f")]
    wrt_kind = draw(st.sampled_from(["all", "subset", "one", "bare"]))
    wrt: tuple[str, ...] | str | None
    if wrt_kind == "all":
        wrt = None
    elif wrt_kind == "subset":
        chosen = draw(st.lists(st.sampled_from(float_args), min_size=1, unique=True))
        wrt = tuple(name for name in float_args if name in chosen)
    elif wrt_kind == "one":
        wrt = (draw(st.sampled_from(float_args)),)
    else:
        wrt = draw(st.sampled_from(float_args))
    threshold = draw(st.sampled_from([None, 0])) if plain else None
    vector_math = draw(st.integers(0, 9)) != 0
    layout = draw(st.sampled_from(["C"] * 8 + ["F", "strided"]))
    used_sizes = tuple(sorted((k, v) for k, v in sizes.items() if any(k in text for _, text in b.args)))
    return ProgramSpec(source=source, args=tuple(b.args), wrt=wrt, sizes=used_sizes,
                       seed=draw(st.integers(0, 2**16)), labels=tuple(b.labels),
                       ties=draw(st.integers(0, 9)) == 0, smooth=b.smooth, exact=b.exact, threshold=threshold,
                       vector_math=vector_math, layout=layout)


__all__ = ["ProgramSpec", "broadcast", "programs"]
