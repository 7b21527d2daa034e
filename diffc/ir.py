"""The IR: a hash-consed DAG in SSA form, with symbolic shapes.

Every front end builds a :class:`Graph` of :class:`Node` objects; every later
stage (reverse mode, passes, printers) reads and rebuilds graphs. A node is
immutable and interned: asking the graph for the same ``(op, inputs, attrs)``
twice returns the same object, so equal subexpressions are shared and node
equality is identity (O(1), never recursive).

Sizes are symbolic. A dimension is an ``int`` or a :class:`Sym` (an integer
linear combination of size names such as ``n`` or ``n - 1``). When an
operation needs two symbolic sizes to agree (the columns of ``X`` and the
length of ``w`` in ``X @ w``) the graph *unifies* them and remembers the
constraint; the generated code checks it on entry.

Nodes are created after their inputs, so creation order (``node.id``) is a
topological order: every walk below is a loop over sorted ids, never recursion.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

from diffc.errors import ArgumentError, IndexRangeError, ShapeError, SizeError, UnsupportedError

# ---------------------------------------------------------------------------
# dtypes


class DType(enum.Enum):
    """Element types. The value is the short name used in signatures."""

    F64 = "f64"
    F32 = "f32"
    I64 = "i64"
    I32 = "i32"
    BOOL = "bool"

    @property
    def is_float(self) -> bool:
        return self in (DType.F64, DType.F32)

    @property
    def numpy(self) -> np.dtype[Any]:
        return np.dtype(_NUMPY_NAMES[self])

    @staticmethod
    def from_numpy(dtype: Any) -> DType:
        name = np.dtype(dtype).name
        for key, value in _NUMPY_NAMES.items():
            if value == name:
                return key
        if np.issubdtype(np.dtype(dtype), np.integer):
            return DType.I64
        raise UnsupportedError(f"dtype {name} is not supported (use float64, float32, int or bool)")

    @staticmethod
    def parse(text: str) -> DType:
        aliases = {"float64": "f64", "float32": "f32", "int64": "i64", "int32": "i32",
                   "float": "f64", "int": "i64", "b1": "bool"}
        return DType(aliases.get(text, text))


_NUMPY_NAMES = {DType.F64: "float64", DType.F32: "float32", DType.I64: "int64",
                DType.I32: "int32", DType.BOOL: "bool"}


def result_dtype(dtypes: Iterable[DType]) -> DType:
    """NumPy's promotion of arrays of these dtypes (``np.result_type``): i64 with f32 is f64.

    Operands are arrays (strong): a weak Python number is a constant built in
    its partner's dtype by the front ends, so it never reaches this rule.
    """
    return _promote(tuple(dict.fromkeys(dtypes)))


@functools.cache
def _promote(seen: tuple[DType, ...]) -> DType:
    """``np.result_type`` costs microseconds per call: a pass over 100,000 nodes asks it for a handful of tuples."""
    if not seen:
        return DType.F64
    if len(seen) == 1:
        return seen[0]
    return DType.from_numpy(np.result_type(*(d.numpy for d in seen)))


# ---------------------------------------------------------------------------
# symbolic sizes


class Sym:
    """An integer linear combination of size terms plus a constant: ``n - 1``.

    A term is a size name (``n``) or an opaque :class:`Term` (``max(n - 1, 0)``,
    ``(n + 1) // 2``, ``m * n``): slicing a symbolic size needs them, since
    ``x[1:]`` of ``f64[n]`` has ``max(n - 1, 0)`` entries (NumPy gives an empty
    array for ``n = 0``, never a negative size).

    Immutable and hashable by value. Arithmetic with ints and other ``Sym``
    returns an ``int`` when every term cancels, so concrete sizes stay ints.
    """

    __slots__ = ("terms", "const", "_key")

    def __init__(self, terms: Iterable[tuple[str | Term, int]] = (), const: int = 0) -> None:
        merged: dict[str | Term, int] = {}
        for name, coeff in terms:
            merged[name] = merged.get(name, 0) + coeff
        self.terms = tuple(sorted(((k, v) for k, v in merged.items() if v != 0), key=_term_order))
        self.const = const
        self._key = (self.terms, const)

    @staticmethod
    def named(name: str) -> Sym:
        return Sym(((name, 1),))

    @property
    def name(self) -> str | None:
        """The size name when this is a bare name (``n``), else ``None``."""
        if len(self.terms) == 1 and self.terms[0][1] == 1 and self.const == 0 and isinstance(self.terms[0][0], str):
            return self.terms[0][0]
        return None

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and other._key == self._key

    def __add__(self, other: Dim) -> Dim:
        if isinstance(other, Sym):
            return _norm(Sym(self.terms + other.terms, self.const + other.const))
        return _norm(Sym(self.terms, self.const + int(other)))

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return _norm(Sym(((k, -v) for k, v in self.terms), -self.const))

    def __sub__(self, other: Dim) -> Dim:
        return self + (-other)

    def __rsub__(self, other: Dim) -> Dim:
        return (-self) + other

    def __mul__(self, other: Dim) -> Dim:
        return dim_mul(self, other)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return dim_text(self)


Dim = Union[int, Sym]  # noqa: UP007 - a runtime alias, usable on Python 3.10
Shape = tuple[Dim, ...]


def _norm(sym: Sym) -> Dim:
    return sym.const if not sym.terms else sym


# -- opaque size terms (slices of symbolic sizes, products) ---------------------------------------
# Sizes of slices are NumPy's exactly: a slice of a symbolic size clips, so its length is a
# ``max``/``min``/floor division of linear sizes. These are opaque terms of a Sym. The builders
# below simplify first (``max(n, 0)`` is ``n``, ``max(max(u, 0) - 1, 0)`` is ``max(u - 1, 0)``),
# so that equal sizes reached in different ways (``x[1:]`` and ``x[:-1]``) are equal Syms and unify.
# Every term is >= 0 (sizes are), which is what lets the builders prove signs. ``min(a, b)`` is
# spelled ``a - max(a - b, 0)`` (one kind of term less) and printed back as ``min(...)``.


class Term:
    """An opaque, non-negative size: ``max(a, 0)`` (kind ``clamp``), ``a // k`` (``floordiv``,
    ``args = (a, k)``) or a product of sizes (``mul``, ``args`` the factors in canonical order).

    Built only by :func:`dim_clamp`, :func:`dim_floordiv` and :func:`dim_mul`.
    """

    __slots__ = ("kind", "args", "_key", "text")

    def __init__(self, kind: str, args: tuple[Dim, ...]) -> None:
        self.kind = kind
        self.args = args
        self._key = (kind, args)
        self.text = _term_text(self, None)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Term) and other._key == self._key

    def __repr__(self) -> str:
        return self.text

    def rebuild(self, fn: Any) -> Dim:
        """The term with ``fn`` applied to its size arguments, simplified again."""
        if self.kind == "clamp":
            return dim_clamp(fn(self.args[0]))
        if self.kind == "floordiv":
            return dim_floordiv(fn(self.args[0]), int(self.args[1]))
        total: Dim = 1
        for factor in self.args:
            total = dim_mul(total, fn(factor))
        return total


def _term_order(item: tuple[str | Term, int]) -> tuple[int, str]:
    key = item[0]
    return (0, key) if isinstance(key, str) else (1, key.text)


def _scale(dim: Dim, factor: int) -> Dim:
    if isinstance(dim, int):
        return dim * factor
    return _norm(Sym(((k, v * factor) for k, v in dim.terms), dim.const * factor))


def _single(dim: Dim, kind: str) -> Term | None:
    """The term of ``dim`` when ``dim`` is exactly one term of ``kind`` (coefficient 1, no constant)."""
    if isinstance(dim, Sym) and len(dim.terms) == 1 and dim.terms[0][1] == 1 and dim.const == 0:
        key = dim.terms[0][0]
        if isinstance(key, Term) and key.kind == kind:
            return key
    return None


def dim_nonneg(dim: Dim) -> bool:
    """``dim`` is >= 0 whatever the (non-negative) sizes are: provable from its form alone."""
    if isinstance(dim, int):
        return dim >= 0
    negative = [(k, v) for k, v in dim.terms if v < 0]
    if not negative:
        return dim.const >= 0  # names and terms are >= 0
    if len(negative) == 1 and negative[0][1] == -1 and isinstance(negative[0][0], Term) \
            and negative[0][0].kind == "clamp":
        # rest - max(w, 0) = min(rest - w, rest)
        term = negative[0][0]
        rest = dim + Sym(((term, 1),))
        return dim_nonneg(rest) and dim_nonneg(rest - term.args[0])
    return False


def dim_clamp(a: Dim) -> Dim:
    """``max(a, 0)``, simplified."""
    if isinstance(a, int):
        return max(a, 0)
    if dim_nonneg(a):
        return a
    if dim_nonneg(-a):
        return 0
    if len(a.terms) == 1 and a.terms[0][1] == 1 and a.const < 0:
        inner = a.terms[0][0]
        if isinstance(inner, Term) and inner.kind == "clamp":  # max(max(u, 0) - c, 0) = max(u - c, 0)
            return dim_clamp(inner.args[0] + a.const)
    return Sym(((Term("clamp", (a,)), 1),))


def dim_max(a: Dim, b: Dim) -> Dim:
    """``max(a, b)`` as ``b + max(a - b, 0)`` (an int side goes outside the clamp)."""
    if isinstance(a, int) and not isinstance(b, int):
        a, b = b, a
    return b + dim_clamp(a - b)


def dim_min(a: Dim, b: Dim) -> Dim:
    """``min(a, b)`` as ``a - max(a - b, 0)`` (an int side goes outside, printed ``min(...)``)."""
    if isinstance(b, int) and not isinstance(a, int):
        a, b = b, a
    return a - dim_clamp(a - b)


def dim_floordiv(a: Dim, k: int) -> Dim:
    """``a // k`` for ``a >= 0`` and ``k > 0``, simplified."""
    if k <= 0:
        raise ValueError(f"floor division of a size by {k}")
    if k == 1:
        return a
    if isinstance(a, int):
        return a // k
    if all(v % k == 0 for _, v in a.terms):  # (k*u + c) // k = u + c // k
        return _norm(Sym(((t, v // k) for t, v in a.terms), a.const // k))
    if len(a.terms) == 1 and a.terms[0][1] == 1:
        inner = a.terms[0][0]
        if isinstance(inner, Term) and inner.kind == "floordiv":  # (u // m + c) // k = (u + c*m) // (m*k)
            u, m = inner.args
            return dim_floordiv(u + a.const * int(m), int(m) * k)
    return Sym(((Term("floordiv", (a, k)), 1),))


def _monomial(dim: Dim) -> tuple[int, tuple[Dim, ...]]:
    """``dim`` as an int coefficient times factors (names, sums with coprime coefficients, terms)."""
    if isinstance(dim, int):
        return dim, ()
    if dim.const == 0 and len(dim.terms) == 1:
        key, coeff = dim.terms[0]
        if isinstance(key, Term) and key.kind == "mul":
            return coeff, key.args
        return coeff, (Sym(((key, 1),)),)
    common = math.gcd(dim.const, *(v for _, v in dim.terms))
    if dim.terms[0][1] < 0:
        common = -common
    return common, (_scale(dim, 1) if common == 1 else Sym(((k, v // common) for k, v in dim.terms),
                                                             dim.const // common),)


def dim_mul(a: Dim, b: Dim) -> Dim:
    """``a * b``: linear when a side is an int, else a product term (factors in canonical order)."""
    if isinstance(a, int) or isinstance(b, int):
        return _scale(b, a) if isinstance(a, int) else _scale(a, int(b))
    ca, fa = _monomial(a)
    cb, fb = _monomial(b)
    factors = tuple(sorted(fa + fb, key=dim_text))
    body: Dim = factors[0] if len(factors) == 1 else Sym(((Term("mul", factors), 1),))
    return _scale(body, ca * cb)


def dim_product(dims: Iterable[Dim]) -> Dim:
    """The number of elements of a shape."""
    total: Dim = 1
    for d in dims:
        total = dim_mul(total, d)
    return total


def dim_quotient(a: Dim, b: Dim) -> Dim | None:
    """``a / b`` when it is provably a whole size (``m * n / m`` is ``n``), else ``None``."""
    ca, fa = _monomial(a)
    cb, fb = _monomial(b)
    if cb == 0 or ca % cb:
        return None
    rest = list(fa)
    for factor in fb:
        if factor not in rest:
            return None
        rest.remove(factor)
    return _scale(dim_product(rest), ca // cb)


def map_names(dim: Dim, fn: Any) -> Dim:
    """``dim`` with every size name replaced by ``fn(name)`` (a Dim), simplified again.

    Recursion here follows the nesting of terms, which the builders keep flat
    (slices of slices merge), so it is shallow.
    """
    if isinstance(dim, int):
        return dim
    total: Dim = dim.const
    for key, coeff in dim.terms:
        value = fn(key) if isinstance(key, str) else key.rebuild(lambda a: map_names(a, fn))
        total = total + _scale(value, coeff)
    return total


def dim_value(dim: Dim, sizes: dict[str, int]) -> int:
    """The size for concrete values of its names (tests, messages)."""
    value = map_names(dim, lambda name: sizes[name])
    assert isinstance(value, int)
    return value


def _term_text(term: Term, names: dict[str, str] | None) -> str:
    if term.kind == "clamp":
        return f"max({dim_text(term.args[0], names)}, 0)"
    if term.kind == "floordiv":
        return f"{_factor_text(term.args[0], names)} // {term.args[1]}"
    return " * ".join(_factor_text(f, names) for f in term.args)


def _factor_text(dim: Dim, names: dict[str, str] | None) -> str:
    """A size as an operand of ``*`` or ``//``: parenthesised unless it is one name or one clamp."""
    text = dim_text(dim, names)
    if isinstance(dim, int):
        return text if dim >= 0 else f"({text})"
    key, coeff = dim.terms[0]
    one = len(dim.terms) == 1 and (isinstance(key, str) or key.kind == "clamp")
    simple = one and ((dim.const == 0 and coeff == 1) or (coeff == -1 and not isinstance(key, str)))  # x, max, min
    return text if simple else f"({text})"


def dim_text(dim: Dim, names: dict[str, str] | None = None) -> str:
    """``n``, ``n - 1``, ``2*n + 1``, ``max(n - 1, 0)``: the text of a size (names renamed by ``names``).

    The text is a Python expression over the size names (generated code
    prints sizes with it): ``c - max(c - u, 0)`` reads back as ``min(u, c)``.
    """
    if isinstance(dim, int):
        return str(dim)
    negated = [k for k, v in dim.terms if v == -1 and isinstance(k, Term) and k.kind == "clamp"]
    if len(negated) == 1:  # rest + c - max(c - u, 0) = rest + min(u, c)
        clamp = negated[0]
        rest = Sym(kv for kv in dim.terms if kv[0] != clamp)
        shown = f"min({dim_text(dim.const - clamp.args[0], names)}, {dim.const})"
        return shown if not rest.terms else f"{dim_text(rest, names)} + {shown}"
    parts: list[str] = []
    for key, coeff in dim.terms:
        if isinstance(key, str):
            shown = names.get(key, key) if names else key
        else:
            shown = _term_text(key, names)
            if key.kind == "floordiv" and (abs(coeff) != 1 or (coeff < 0 and not parts)):
                shown = f"({shown})"  # -a // k would be (-a) // k in Python
        body = shown if abs(coeff) == 1 else f"{abs(coeff)}*{shown}"
        if not parts:
            parts.append(body if coeff > 0 else f"-{body}")
        else:
            parts.append(f"+ {body}" if coeff > 0 else f"- {body}")
    if dim.const:
        parts.append(f"+ {dim.const}" if dim.const > 0 else f"- {-dim.const}")
    return " ".join(parts)


def shape_text(shape: Shape) -> str:
    return "[" + ",".join(dim_text(d) for d in shape) + "]"


def size_labels(graph: Graph) -> dict[str, str]:
    """Size name -> the name a person gives it (``m, n = X.shape`` in the function, ``m``/``n`` for sizes
    read from a first call): the generated code binds the size under that name, and pictures write it."""
    labels: dict[str, str] = {}
    for raw, label in graph.size_labels.items():
        d = graph.resolve(Sym.named(raw))
        if isinstance(d, Sym) and d.name is not None:
            labels.setdefault(d.name, label)
    return labels


def type_text(dtype: DType, shape: Shape) -> str:
    """``f64[m,n]``; a scalar is just ``f64``."""
    return dtype.value + (shape_text(shape) if shape else "")


def dim_names(dim: Dim) -> tuple[str, ...]:
    """The size names ``dim`` reads, inside its terms too, each once, in order."""
    out: dict[str, None] = {}
    stack: list[Dim] = [dim]
    while stack:
        d = stack.pop()
        if isinstance(d, int):
            continue
        for key, _ in d.terms:
            if isinstance(key, str):
                out.setdefault(key)
            else:
                stack.extend(a for a in key.args if isinstance(a, Sym))
    return tuple(out)


def dim_names_of(shape: Shape) -> list[str]:
    return [name for d in shape for name in dim_names(d)]


# ---------------------------------------------------------------------------
# ops


class Op(enum.Enum):
    """Every operation of the IR. Properties live in the sets below."""

    INPUT = "input"
    CONST = "const"
    DIM = "dim"            # a symbolic size as an integer scalar (X.shape[0])
    # elementwise, one input
    NEG = "neg"
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    SIN = "sin"
    COS = "cos"
    TAN = "tan"
    TANH = "tanh"
    ABS = "abs"
    SIGN = "sign"
    SIGMOID = "sigmoid"
    CAST = "cast"          # attrs: dtype
    # elementwise, two inputs
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    POW = "pow"
    MAX = "max"            # np.maximum
    MIN = "min"            # np.minimum
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"
    EQ = "eq"
    NE = "ne"
    # elementwise, three inputs
    WHERE = "where"        # where(cond, a, b)
    # reductions: attrs axis (tuple of non-negative ints), keepdims
    SUM = "sum"
    MEAN = "mean"
    # linear algebra and layout
    MATMUL = "matmul"      # np.matmul on operands of rank 1 or 2
    OUTER = "outer"
    TRANSPOSE = "transpose"  # attrs: axes
    BROADCAST = "broadcast"  # attrs: shape (the target shape)
    RESHAPE = "reshape"      # attrs: shape
    # -- indexing, joins and index arrays (the "indexing" block below has their rules) --
    SLICE = "slice"          # basic indexing x[1:, 0, None]: attrs index (an Index)
    UNSLICE = "unslice"      # zeros(shape) with g written at index: SLICE's adjoint; attrs index, shape
    CONCAT = "concat"        # np.concatenate(xs, axis): attrs axis
    STACK = "stack"          # np.stack(xs, axis): attrs axis
    ARANGE = "arange"        # np.arange(size), no inputs: attrs size
    GATHER = "gather"        # x[np.arange(m), idx]: entry idx[i] of row i of a matrix x
    SCATTER = "scatter"      # zeros((m, size)) with g[i] at [i, idx[i]]: GATHER's adjoint; attrs size
    # -- ops for real models: more elementwise math, max/min reductions, the softmax family --
    LOG1P = "log1p"        # log(1 + x), accurate near 0
    EXPM1 = "expm1"        # e^x - 1, accurate near 0
    LOG2 = "log2"
    LOG10 = "log10"
    EXP2 = "exp2"
    ARCSIN = "arcsin"
    ARCCOS = "arccos"
    ARCTAN = "arctan"
    SINH = "sinh"
    COSH = "cosh"
    ARCSINH = "arcsinh"
    SOFTPLUS = "softplus"  # log(1 + e^x), printed without overflow
    ARCTAN2 = "arctan2"    # arctan2(y, x)
    HYPOT = "hypot"        # sqrt(x^2 + y^2) without overflow
    AMAX = "amax"          # reductions like SUM: attrs axis, keepdims
    AMIN = "amin"
    LOGSUMEXP = "logsumexp"  # log(sum(exp(x), axis)), printed max-shifted
    NORM = "norm"          # sqrt(sum(x * x, axis)): np.linalg.norm (2-norm of a vector, Frobenius of a matrix)
    SOFTMAX = "softmax"    # along attrs axis (a tuple); the shape of x
    LOG_SOFTMAX = "log_softmax"
    MAX_MASK = "max_mask"  # bool, the shape of x: true at the FIRST maximum along attrs axis (where amax's
    MIN_MASK = "min_mask"  # gradient goes, as argmax would pick it); MIN_MASK likewise for the minimum
    # -- more NumPy functions (diffc/frontends/numpy_functions.py records them) --
    FLOOR = "floor"        # floor, ceil, rint, trunc: a step function each, zero gradient
    CEIL = "ceil"
    RINT = "rint"
    TRUNC = "trunc"
    ARCTANH = "arctanh"
    ARCCOSH = "arccosh"
    CBRT = "cbrt"
    REMAINDER = "remainder"  # np.remainder (x % y): the sign of y
    FMOD = "fmod"            # np.fmod: the sign of x
    FLOOR_DIVIDE = "floor_divide"  # x // y, zero gradient
    PROD = "prod"          # a reduction like SUM: attrs axis, keepdims
    CUMSUM = "cumsum"      # running sum along attrs axis (a one-axis tuple); the shape of x
    CUMPROD = "cumprod"    # running product, like CUMSUM
    # -- np.linalg on one matrix (rank 2): LAPACK calls, printed as statements between loops --
    INV = "inv"              # np.linalg.inv(a)
    SOLVE = "solve"          # np.linalg.solve(a, b): b a vector or a matrix
    DET = "det"              # np.linalg.det(a)
    LOGABSDET = "logabsdet"  # np.linalg.slogdet(a)[1]
    DETSIGN = "detsign"      # np.linalg.slogdet(a)[0]: no gradient
    CHOLESKY = "cholesky"    # np.linalg.cholesky(a): the lower factor
    EIGVALSH = "eigvalsh"    # np.linalg.eigvalsh(a): ascending eigenvalues of a symmetric matrix
    EIGVECSH = "eigvecsh"    # np.linalg.eigh(a)[1]: their eigenvectors, as columns
    PINV = "pinv"            # np.linalg.pinv(a): any (m, n) matrix, an (n, m) result
    SVDVALS = "svdvals"      # np.linalg.svd(a, full_matrices=False)[1]: k = min(m, n) singular values, descending
    SVD_U = "svd_u"          # its [0], (m, k), and [2], (k, n): the singular vectors, for the adjoint of SVDVALS
    SVD_VT = "svd_vt"
    # -- integer indexing on any axis (diffc/frontends/indexing.py traces it; rules in the "take" block) --
    TAKE = "take"                # np.take(x, idx, axis): axis `axis` of x replaced by idx's axes; attrs axis
    SCATTER_ADD = "scatter_add"  # zeros with g added at idx along axis (np.add.at): TAKE's adjoint; attrs axis, size
    TAKE_ALONG = "take_along"    # np.take_along_axis(x, idx, axis): idx has x's rank and shape off the axis
    SCATTER_ADD_ALONG = "scatter_add_along"  # zeros with g[..., k, ...] added at idx[..., k, ...]: its adjoint
    ARGMAX = "argmax"            # i64, the first maximum along attrs axis (None: of the flattened array), keepdims
    ARGMIN = "argmin"
    ARGSORT = "argsort"          # i64, x's shape: a stable sort's permutation along attrs axis
    # -- scipy.special (diffc/frontends/special.py records them) --
    ERF = "erf"
    ERFC = "erfc"
    GAMMALN = "gammaln"      # log|Γ(x)|, as scipy.special.gammaln and math.lgamma
    DIGAMMA = "digamma"      # ψ(x) = d/dx log Γ(x): gammaln's gradient
    TRIGAMMA = "trigamma"    # ψ₁(x) = ψ'(x), scipy.special.polygamma(1, x): digamma's gradient


# ops for real models: the elementwise ones join UNARY and BINARY below
MATH_UNARY = frozenset({Op.LOG1P, Op.EXPM1, Op.LOG2, Op.LOG10, Op.EXP2, Op.ARCSIN, Op.ARCCOS, Op.ARCTAN,
                        Op.SINH, Op.COSH, Op.ARCSINH, Op.SOFTPLUS})
MATH_BINARY = frozenset({Op.ARCTAN2, Op.HYPOT})
# more NumPy functions: the elementwise ones join UNARY and BINARY below; STEPS keep an integer dtype
STEPS = frozenset({Op.FLOOR, Op.CEIL, Op.TRUNC})
FUNCTION_UNARY = STEPS | frozenset({Op.RINT, Op.ARCTANH, Op.ARCCOSH, Op.CBRT})
FUNCTION_BINARY = frozenset({Op.REMAINDER, Op.FMOD, Op.FLOOR_DIVIDE})
SPECIAL_UNARY = frozenset({Op.ERF, Op.ERFC, Op.GAMMALN, Op.DIGAMMA, Op.TRIGAMMA})  # scipy.special's
UNARY = frozenset({Op.NEG, Op.EXP, Op.LOG, Op.SQRT, Op.SIN, Op.COS, Op.TAN, Op.TANH,
                   Op.ABS, Op.SIGN, Op.SIGMOID, Op.CAST}) | MATH_UNARY | FUNCTION_UNARY | SPECIAL_UNARY
BINARY = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.POW, Op.MAX, Op.MIN,
                    Op.GT, Op.GE, Op.LT, Op.LE, Op.EQ, Op.NE}) | MATH_BINARY | FUNCTION_BINARY
COMPARISONS = frozenset({Op.GT, Op.GE, Op.LT, Op.LE, Op.EQ, Op.NE})
ELEMENTWISE = UNARY | BINARY | frozenset({Op.WHERE})
COMMUTATIVE = frozenset({Op.ADD, Op.MUL, Op.MAX, Op.MIN, Op.EQ, Op.NE, Op.HYPOT})
REDUCTIONS = frozenset({Op.SUM, Op.MEAN, Op.AMAX, Op.AMIN, Op.LOGSUMEXP, Op.NORM, Op.PROD})
# x.shape, along attrs axis
AXIS_OPS = frozenset({Op.SOFTMAX, Op.LOG_SOFTMAX, Op.MAX_MASK, Op.MIN_MASK, Op.CUMSUM, Op.CUMPROD})
LEAVES = frozenset({Op.INPUT, Op.CONST, Op.DIM})


# ---------------------------------------------------------------------------
# nodes


Attrs = tuple[tuple[str, Any], ...]


class Node:
    """One SSA value: ``%id = op[attrs] inputs : dtype[shape]``.

    Created only by :meth:`Graph.apply` and friends, which intern it. The
    arithmetic operators build new nodes in the same graph, so adjoint rules
    read like formulas (``g * y``); ``==`` stays identity on purpose.
    """

    __slots__ = ("op", "inputs", "attrs", "dtype", "id", "graph", "value", "_shape", "__weakref__")

    def __init__(self, graph: Graph, op: Op, inputs: tuple[Node, ...], attrs: Attrs,
                 dtype: DType, shape: Shape, value: Any = None) -> None:
        self.graph = graph
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.dtype = dtype
        self._shape = shape
        self.value = value
        self.id = len(graph.nodes)

    @property
    def shape(self) -> Shape:
        """The shape with every unified size replaced by its representative."""
        return self.graph.resolve_shape(self._shape)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def name(self) -> str | None:
        """The user's name for this value (an input or an assignment target)."""
        return self.graph.names.get(self)

    def __repr__(self) -> str:
        return f"%{self.id}"

    # arithmetic builds nodes; Python numbers become constants of our dtype
    def _lift(self, other: Any) -> Node:
        return other if isinstance(other, Node) else self.graph.const(other, self.dtype)

    def __add__(self, other: Any) -> Node:
        return self.graph.apply(Op.ADD, self, self._lift(other))

    def __radd__(self, other: Any) -> Node:
        return self.graph.apply(Op.ADD, self._lift(other), self)

    def __sub__(self, other: Any) -> Node:
        return self.graph.apply(Op.SUB, self, self._lift(other))

    def __rsub__(self, other: Any) -> Node:
        return self.graph.apply(Op.SUB, self._lift(other), self)

    def __mul__(self, other: Any) -> Node:
        return self.graph.apply(Op.MUL, self, self._lift(other))

    def __rmul__(self, other: Any) -> Node:
        return self.graph.apply(Op.MUL, self._lift(other), self)

    def __truediv__(self, other: Any) -> Node:
        return self.graph.apply(Op.DIV, self, self._lift(other))

    def __rtruediv__(self, other: Any) -> Node:
        return self.graph.apply(Op.DIV, self._lift(other), self)

    def __pow__(self, other: Any) -> Node:
        return self.graph.apply(Op.POW, self, self._lift(other))

    def __neg__(self) -> Node:
        return self.graph.apply(Op.NEG, self)

    def __matmul__(self, other: Node) -> Node:
        return self.graph.apply(Op.MATMUL, self, other)

    @property
    def T(self) -> Node:  # noqa: N802 - NumPy's spelling
        return self.graph.apply(Op.TRANSPOSE, self, axes=tuple(reversed(range(self.ndim))))


# ---------------------------------------------------------------------------
# shape rules


def broadcast_shapes(graph: Graph, *shapes: Shape) -> Shape:
    """NumPy broadcasting; two different symbolic sizes are unified (must agree)."""
    if shapes and all(s == shapes[0] for s in shapes):  # the common case, and the answer is known
        return graph.resolve_shape(shapes[0])
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(ndim):
        dims = [graph.resolve(s[axis - ndim + len(s)]) for s in shapes if axis - ndim + len(s) >= 0]
        result: Dim = 1
        for d in dims:
            if d == 1:
                continue
            if result == 1:
                result = d
            elif result != d:
                result = graph.unify(result, d, shapes)
        out.append(result)
    return tuple(out)


def _norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for an array of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis!r}")
    return tuple(sorted(out))


def _reduce_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _matmul_shape(graph: Graph, a: Shape, b: Shape) -> Shape:
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise ShapeError(f"matmul takes operands of rank 1 or 2, got shapes {shape_text(a)} and {shape_text(b)}")
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if graph.resolve(inner_a) != graph.resolve(inner_b):
        graph.unify(inner_a, inner_b, (a, b), what="matmul")
    return tuple(a[:-1]) + tuple(b[1:] if len(b) == 2 else ())


# ---------------------------------------------------------------------------
# graph


def _const_key(value: np.ndarray) -> tuple[Any, ...]:
    """Constants are equal when dtype, shape and bits agree: 0.0 and -0.0 differ, NaNs merge."""
    if value.dtype.kind == "f":
        canon = np.where(np.isnan(value), np.nan, value).astype(value.dtype)
        return (value.dtype.str, value.shape, canon.tobytes())
    return (value.dtype.str, value.shape, value.tobytes())


MAX_NOTES = 8  # notes kept per node: a comment names three and counts the rest


def join_notes(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """The notes of several groups, each once, in order of first appearance, at most :data:`MAX_NOTES`.

    The cap keeps long chains linear: a sum of many contributions merged again
    and again would otherwise carry every note of its past.
    """
    return tuple(dict.fromkeys(note for group in groups for note in group))[:MAX_NOTES]


class Graph:
    """A builder and owner of interned nodes, and of the size unification."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._intern: dict[tuple[Any, ...], Node] = {}
        self.names: dict[Node, str] = {}
        self.size_labels: dict[str, str] = {}  # size name -> the user's name for it (``m, n = X.shape``)
        # adjoint node -> the rules that made it (``mul switches: e = c * d``), and per gradient output name
        self.notes: dict[Node, tuple[str, ...]] = {}
        self.output_notes: dict[str, tuple[str, ...]] = {}
        # node -> the user's statement it is (diffc/adjoint/notes.py), recorded before passes rewrite the program
        self.statements: dict[Node, Any] = {}
        self._alias: dict[str, Dim] = {}
        self.constraints: list[tuple[Dim, Dim]] = []
        self._size_order: dict[str, int] = {}  # size names in the order inputs declare them
        # sizes that must be large enough for a static index (x[5] of f64[n] needs n >= 6): checked on entry
        self.bounds: dict[tuple[Dim, int], str] = {}

    # -- sizes ------------------------------------------------------------
    def resolve(self, dim: Dim) -> Dim:
        """Substitute unified size names until none is left to substitute."""
        alias = self._alias
        for _ in range(len(alias) + 1):
            if isinstance(dim, int) or not any(k in alias for k in dim_names(dim)):
                return dim
            dim = map_names(dim, lambda name: alias.get(name, Sym.named(name)))
        return dim

    def resolve_shape(self, shape: Shape) -> Shape:
        return shape if not self._alias else tuple(self.resolve(d) for d in shape)

    def unify(self, a: Dim, b: Dim, shapes: Sequence[Shape] = (), what: str = "broadcast") -> Dim:
        """Record that sizes ``a`` and ``b`` are equal; return the representative."""
        a, b = self.resolve(a), self.resolve(b)
        if a == b:
            return a
        shown = " and ".join(shape_text(tuple(self.resolve(d) for d in s)) for s in shapes)
        if isinstance(a, int) and isinstance(b, int):
            raise ShapeError(f"{what}: sizes {a} and {b} do not agree (shapes {shown})")
        self.constraints.append((a, b))
        # bind a bare name to the other side; of two names, the one declared first stays
        pairs = ((b, a), (a, b))
        if isinstance(a, Sym) and isinstance(b, Sym) and a.name and b.name:
            order = self._size_order
            if order.get(a.name, len(order)) > order.get(b.name, len(order)):
                pairs = ((a, b), (b, a))
        for name_side, other in pairs:
            if isinstance(name_side, Sym) and name_side.name is not None:
                if name_side.name in dim_names(other):
                    raise ShapeError(f"{what}: sizes {dim_text(a)} and {dim_text(b)} cannot agree (shapes {shown})")
                self._alias[name_side.name] = other
                return other
        return a  # two compound sizes: keep both, checked at entry

    def size_names(self) -> dict[str, Dim]:
        return dict(self._alias)

    # -- building ----------------------------------------------------------
    def _make(self, key: tuple[Any, ...], op: Op, inputs: tuple[Node, ...], attrs: Attrs,
              dtype: DType, shape: Shape, value: Any = None) -> Node:
        node = self._intern.get(key)
        if node is None:
            node = Node(self, op, inputs, attrs, dtype, shape, value)
            self.nodes.append(node)
            self._intern[key] = node
        return node

    def input(self, name: str, dtype: DType = DType.F64, shape: Shape = ()) -> Node:
        node = self._make((Op.INPUT, name), Op.INPUT, (), (("name", name),), dtype, tuple(shape))
        self.names.setdefault(node, name)
        for size in dim_names_of(shape):
            self._size_order.setdefault(size, len(self._size_order))
        return node

    def const(self, value: Any, dtype: DType | None = None, shape: Shape | None = None) -> Node:
        """A constant. A Python number takes ``dtype`` (default f64): NumPy's weak scalars."""
        if dtype is None:
            dtype = DType.from_numpy(np.asarray(value).dtype) if isinstance(value, np.ndarray) else DType.F64
        array = np.asarray(value, dtype=dtype.numpy)
        if shape is not None and array.shape != tuple(shape) and array.ndim == 0:
            return self.apply(Op.BROADCAST, self.const(array, dtype), shape=tuple(shape))
        array = array.copy()
        array.flags.writeable = False
        return self._make((Op.CONST, _const_key(array)), Op.CONST, (), (), dtype, array.shape, array)

    def dim(self, dim: Dim) -> Node:
        """A size as an integer scalar node (``X.shape[0]`` in a mean)."""
        dim = self.resolve(dim)
        if isinstance(dim, int):
            return self.const(dim, DType.I64)
        return self._make((Op.DIM, dim), Op.DIM, (), (("dim", dim),), DType.I64, ())

    def apply(self, op: Op, *inputs: Node, **attrs: Any) -> Node:
        """Build (or find) ``op(inputs, attrs)``, inferring shape and dtype."""
        for x in inputs:
            if x.graph is not self:
                raise ValueError("node from another graph")
        rule = _RULES.get(op)
        if rule is None:
            raise UnsupportedError(f"op {op.value} cannot be built with apply()", op=op.value)
        dtype, shape, attrs = rule(self, inputs, attrs)
        frozen = tuple(sorted(attrs.items()))
        key = (op, tuple(x.id for x in inputs), frozen)
        return self._make(key, op, tuple(inputs), frozen, dtype, shape)

    def copy_node(self, node: Node, inputs: Sequence[Node]) -> Node:
        """Rebuild ``node`` of another graph here, on new inputs (used by passes)."""
        if node.op is Op.INPUT:
            return self.input(node.attr("name"), node.dtype, node._shape)
        if node.op is Op.CONST:
            return self.const(node.value, node.dtype)
        if node.op is Op.DIM:
            return self.dim(node.attr("dim"))
        if all(a.dtype is b.dtype and a._shape == b._shape for a, b in zip(inputs, node.inputs, strict=True)):
            # inputs of the types the rule saw: its answer (and any size it unified, adopted) stands
            key = (node.op, tuple(x.id for x in inputs), node.attrs)
            return self._make(key, node.op, tuple(inputs), node.attrs, node.dtype, node._shape)
        return self.apply(node.op, *inputs, **dict(node.attrs))

    def adopt_sizes(self, other: Graph) -> None:
        """Take over another graph's size unifications (passes rebuild graphs)."""
        self._alias.update(other._alias)
        self._size_order.update(other._size_order)
        self.size_labels.update(other.size_labels)
        self.output_notes.update(other.output_notes)
        self.constraints.extend(other.constraints)
        self.bounds.update(other.bounds)

    def require(self, dim: Dim, minimum: int, what: str) -> None:
        """Record that size ``dim`` must be at least ``minimum`` (``what`` needs it); refuse if it is not.

        A concrete size is checked now; a symbolic one by the generated code on
        entry, before anything is read (``ShapeError``).
        """
        dim = self.resolve(dim)
        if isinstance(dim, int):
            if dim < minimum:
                raise ShapeError(f"{what}: needs a size of at least {minimum}, the size is {dim}")
            return
        if not dim_nonneg(dim - minimum):
            self.bounds.setdefault((dim, minimum), what)


# ---------------------------------------------------------------------------
# per-op shape and dtype rules: (graph, inputs, attrs) -> (dtype, shape, attrs)

Rule = Any
RuleResult = tuple[DType, Shape, dict[str, Any]]


def _elementwise(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    return result_dtype(x.dtype for x in inputs), broadcast_shapes(graph, *(x.shape for x in inputs)), attrs


def _float_elementwise(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    dtype, shape, attrs = _elementwise(graph, inputs, attrs)
    return (dtype if dtype.is_float else DType.F64), shape, attrs


def _compare(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    return DType.BOOL, broadcast_shapes(graph, *(x.shape for x in inputs)), attrs


def _where(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    cond, a, b = inputs
    return result_dtype((a.dtype, b.dtype)), broadcast_shapes(graph, cond.shape, a.shape, b.shape), attrs


def _cast(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    return attrs["dtype"], inputs[0].shape, attrs


def _reduction(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    axes = _norm_axes(attrs.get("axis"), x.ndim)
    keepdims = bool(attrs.get("keepdims", False))
    dtype = x.dtype if x.dtype.is_float else DType.F64 if attrs.get("mean") else DType.I64
    return dtype, _reduce_shape(x.shape, axes, keepdims), {"axis": axes, "keepdims": keepdims}


def _mean(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    dtype, shape, attrs = _reduction(graph, inputs, attrs)
    return (dtype if dtype.is_float else DType.F64), shape, attrs


def _extreme(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """amax/amin: a reduction that keeps the input's dtype (the max of ints is an int of that width)."""
    _, shape, attrs = _reduction(graph, inputs, attrs)
    return inputs[0].dtype, shape, attrs


def _along_axis(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """softmax/log_softmax: x's shape, along ``axis`` (default -1, the last axis, as in JAX and SciPy)."""
    (x,) = inputs
    axes = _norm_axes(attrs.get("axis", -1), x.ndim)
    return (x.dtype if x.dtype.is_float else DType.F64), x.shape, {"axis": axes}


def _extreme_mask(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """max_mask/min_mask: a bool array of x's shape, one true entry per slice along ``axis``."""
    (x,) = inputs
    return DType.BOOL, x.shape, {"axis": _norm_axes(attrs.get("axis"), x.ndim)}


def _cumulative(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """cumsum, cumprod: x's shape and dtype (booleans count as i64, as in NumPy), along one axis."""
    (x,) = inputs
    axes = _norm_axes(attrs["axis"], x.ndim)
    if len(axes) != 1:
        raise ShapeError(f"a running sum or product goes along one axis, got {attrs['axis']!r}")
    return (DType.I64 if x.dtype is DType.BOOL else x.dtype), x.shape, {"axis": axes}


def _matmul(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    a, b = inputs
    return result_dtype((a.dtype, b.dtype)), _matmul_shape(graph, a.shape, b.shape), attrs


def _outer(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    a, b = inputs
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"outer takes two vectors, got shapes {shape_text(a.shape)} and {shape_text(b.shape)}")
    return result_dtype((a.dtype, b.dtype)), (a.shape[0], b.shape[0]), attrs


def _transpose(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    axes = attrs.get("axes")
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose axes {axes} do not match an array of rank {x.ndim}")
    shape = x.shape
    return x.dtype, tuple(shape[a] for a in axes), {"axes": axes}


def _broadcast(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    target = tuple(graph.resolve(d) for d in attrs["shape"])
    got = broadcast_shapes(graph, x.shape, target)
    if len(got) != len(target):
        raise ShapeError(f"cannot broadcast {shape_text(x.shape)} to {shape_text(target)}")
    return x.dtype, target, {"shape": target}


def _reshape(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    target = tuple(graph.resolve(d) for d in attrs["shape"])
    return x.dtype, target, {"shape": target}


_RULES: dict[Op, Rule] = {
    **{op: _float_elementwise for op in UNARY - {Op.NEG, Op.ABS, Op.SIGN, Op.CAST} - STEPS},
    Op.NEG: _elementwise, Op.ABS: _elementwise, Op.SIGN: _elementwise, Op.CAST: _cast,
    Op.ADD: _elementwise, Op.SUB: _elementwise, Op.MUL: _elementwise, Op.DIV: _float_elementwise,
    Op.POW: _elementwise, Op.MAX: _elementwise, Op.MIN: _elementwise,
    **{op: _compare for op in COMPARISONS},
    Op.WHERE: _where,
    Op.SUM: _reduction, Op.MEAN: _mean,
    Op.MATMUL: _matmul, Op.OUTER: _outer, Op.TRANSPOSE: _transpose,
    Op.BROADCAST: _broadcast, Op.RESHAPE: _reshape,
    # ops for real models (the unary ones are covered by UNARY above)
    Op.ARCTAN2: _float_elementwise, Op.HYPOT: _float_elementwise,
    Op.AMAX: _extreme, Op.AMIN: _extreme, Op.LOGSUMEXP: _mean, Op.NORM: _mean,
    Op.SOFTMAX: _along_axis, Op.LOG_SOFTMAX: _along_axis, Op.MAX_MASK: _extreme_mask, Op.MIN_MASK: _extreme_mask,
    # more NumPy functions
    **{op: _elementwise for op in STEPS | FUNCTION_BINARY},
    Op.PROD: _reduction, Op.CUMSUM: _cumulative, Op.CUMPROD: _cumulative,
}


# ---------------------------------------------------------------------------
# indexing: basic indexing (slices, integer indices, new axes), joins, gathers
#
# A slice keeps NumPy's meaning exactly, symbolic sizes included: the generated
# code prints the user's own slice (``x[1:]``), so at run time NumPy (or Numba)
# clips it; the IR's size is the clipped length (``max(n - 1, 0)``), so an empty
# array stays empty and no size ever goes negative. An integer index past the
# end is refused: now for a concrete size, by the generated code's entry check
# for a symbolic one (``Graph.require``).

IndexItem = tuple[Any, ...]


class Index:
    """A basic NumPy index with one item per axis of the indexed array, plus new axes.

    Items: ``("slice", start, stop, step)`` where start and stop are ``None``,
    ints with Python's meaning (negative counts from the end, out of range
    clips) or sizes (:class:`Sym`: exact, in-range positions, as the adjoint of
    a concatenation slices at ``n``); ``("int", i)``, one entry (its axis
    goes; ``i`` may be negative); ``("new",)``, a new axis of size 1. Printed
    as NumPy writes it: ``[1:, 0, None]``.
    """

    __slots__ = ("items",)

    def __init__(self, items: Iterable[IndexItem]) -> None:
        self.items = tuple(tuple(item) for item in items)

    def __hash__(self) -> int:
        return hash(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and other.items == self.items

    def __repr__(self) -> str:
        return self.text(dim_text)

    def text(self, size_text: Any) -> str:
        """``[1:, 0]``, sizes printed by ``size_text``; trailing whole-axis slices are left out."""
        items = list(self.items)
        while len(items) > 1 and items[-1] == FULL:
            items.pop()
        return "[" + ", ".join(index_item_text(item, size_text) for item in items) + "]"


FULL: IndexItem = ("slice", None, None, 1)


def index_item_text(item: IndexItem, size_text: Any) -> str:
    if item[0] == "new":
        return "None"
    if item[0] == "int":
        return str(item[1])
    _, start, stop, step = item

    def bound(b: Any) -> str:
        return "" if b is None else str(b) if isinstance(b, int) else size_text(b)

    text = f"{bound(start)}:{bound(stop)}"
    return text if step == 1 else f"{text}:{step}"


def slice_length(n: Dim, start: Dim | None, stop: Dim | None, step: int) -> Dim:
    """``len(range(n)[start:stop:step])``, for a symbolic ``n`` too.

    Int bounds follow Python (negative from the end, clipped to the axis);
    size (:class:`Sym`) bounds are exact positions (step 1 only).
    """
    if step == 0:
        raise ShapeError("slice step cannot be zero")
    if isinstance(start, Sym) or isinstance(stop, Sym):
        if step != 1:
            raise UnsupportedError("a slice with a symbolic bound must have step 1")
        return dim_clamp((n if stop is None else stop) - (0 if start is None else start))
    if isinstance(n, int):
        return len(range(n)[slice(start, stop, step)])
    s = abs(step)
    if step > 0:
        a = 0 if start is None else start
        b = 0 if stop is None else stop  # None: the end, n + 0
        a_from_end, b_from_end = start is not None and start < 0, stop is None or stop < 0
        if not a_from_end and b_from_end:
            length = dim_clamp(n + b - a)
        elif not a_from_end:
            length = 0 if b <= a else dim_min(b - a, dim_clamp(n - a))
        elif b_from_end:
            length = 0 if b <= a else dim_min(b - a, dim_clamp(n + b))
        else:
            length = dim_clamp(dim_min(b, n) - dim_clamp(n + a))
    else:
        a = -1 if start is None else start  # None: the last entry, n - 1
        a_from_end = start is None or start < 0
        if stop is None and a_from_end:
            length = dim_clamp(n + a + 1)
        elif stop is None:
            length = dim_min(a + 1, n)
        elif a_from_end and stop < 0:
            length = 0 if stop >= a else dim_min(a - stop, dim_clamp(n + a + 1))
        elif not a_from_end and stop >= 0:
            length = 0 if stop >= a else dim_min(a - stop, dim_clamp(n - 1 - stop))
        else:
            first = dim_max(n + a, -1) if a_from_end else dim_min(a, n - 1)
            last = dim_max(n + stop, -1) if stop < 0 else dim_min(stop, n - 1)
            length = dim_clamp(first - last)
    return dim_floordiv(length + s - 1, s)


def index_shape(graph: Graph, shape: Shape, index: Index, what: str = "index") -> Shape:
    """The shape of ``x[index]`` for ``x`` of ``shape``; integer indices past the end are refused."""
    out: list[Dim] = []
    axis = 0
    for item in index.items:
        if item[0] == "new":
            out.append(1)
            continue
        if axis >= len(shape):
            raise ShapeError(f"{what}: too many indices for an array of rank {len(shape)}")
        size = graph.resolve(shape[axis])
        axis += 1
        if item[0] == "int":
            i = item[1]
            need = i + 1 if i >= 0 else -i
            if isinstance(size, int) and size < need:
                raise ShapeError(f"{what}: index {i} is out of range for axis {axis - 1} of size {size}")
            graph.require(size, need, f"index {i} on axis {axis - 1}")
        else:
            out.append(slice_length(size, item[1], item[2], item[3]))
    if axis != len(shape):
        raise ShapeError(f"{what}: the index covers {axis} axes of an array of rank {len(shape)}")
    return tuple(out)


def _slice(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    index = attrs["index"]
    return x.dtype, index_shape(graph, x.shape, index), {"index": index}


def _unslice(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (g,) = inputs
    shape = tuple(graph.resolve(d) for d in attrs["shape"])
    index = attrs["index"]
    expected = index_shape(graph, shape, index, "unslice")
    if g.ndim == 0:  # one number written to every entry of the index
        return g.dtype, shape, {"index": index, "shape": shape}
    if len(expected) != g.ndim:
        raise ShapeError(f"unslice: {type_text(g.dtype, g.shape)} does not fit {shape_text(shape)}{index!r}")
    for a, b in zip(expected, g.shape, strict=True):
        if graph.resolve(a) != graph.resolve(b):
            graph.unify(a, b, (expected, g.shape), what="unslice")
    return g.dtype, shape, {"index": index, "shape": shape}


def _concat(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    first = inputs[0]
    if first.ndim == 0:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    axis = _norm_axes(attrs.get("axis", 0), first.ndim)[0]
    total: Dim = 0
    shape = list(first.shape)
    for x in inputs:
        if x.ndim != first.ndim:
            raise ShapeError(f"concatenate: all arrays need the same rank, got shapes "
                             f"{', '.join(shape_text(y.shape) for y in inputs)}")
        for k, d in enumerate(x.shape):
            if k != axis and graph.resolve(d) != graph.resolve(shape[k]):
                shape[k] = graph.unify(shape[k], d, (first.shape, x.shape), what="concatenate")
        total = total + graph.resolve(x.shape[axis])
    shape[axis] = total
    return result_dtype(x.dtype for x in inputs), tuple(graph.resolve(d) for d in shape), {"axis": axis}


def _stack(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    first = inputs[0]
    axis = _norm_axes(attrs.get("axis", 0), first.ndim + 1)[0]
    shape = broadcast_shapes(graph, *(x.shape for x in inputs))
    if any(x.ndim != first.ndim or x.shape != shape for x in inputs):
        raise ShapeError(f"stack: all arrays need the same shape, got {', '.join(shape_text(x.shape) for x in inputs)}")
    out = shape[:axis] + (len(inputs),) + shape[axis:]
    return result_dtype(x.dtype for x in inputs), out, {"axis": axis}


def _arange(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    size = graph.resolve(attrs["size"])
    return DType.I64, (size,), {"size": size}


def _index_array(idx: Node, what: str) -> None:
    if idx.ndim != 1 or idx.dtype not in (DType.I64, DType.I32):
        raise ShapeError(f"{what}: the index must be a vector of integers, got {type_text(idx.dtype, idx.shape)}")


def _gather(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    x, idx = inputs
    if x.ndim != 2:
        raise ShapeError(f"gather: x[np.arange(m), idx] needs a matrix, got {type_text(x.dtype, x.shape)}")
    _index_array(idx, "gather")
    rows = graph.unify(x.shape[0], idx.shape[0], (x.shape, idx.shape), what="gather (one index per row)")
    return x.dtype, (rows,), {}


def _scatter(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    g, idx = inputs
    if g.ndim != 1:
        raise ShapeError(f"scatter: needs a vector, got {type_text(g.dtype, g.shape)}")
    _index_array(idx, "scatter")
    rows = graph.unify(g.shape[0], idx.shape[0], (g.shape, idx.shape), what="scatter")
    size = graph.resolve(attrs["size"])
    return g.dtype, (rows, size), {"size": size}


def _checked_reshape(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """A reshape keeps the number of elements: refused when the counts provably differ."""
    (x,) = inputs
    dtype, target, attrs = _reshape(graph, inputs, attrs)
    before, after = graph.resolve(dim_product(x.shape)), graph.resolve(dim_product(target))
    if isinstance(before, int) and isinstance(after, int) and before != after:
        raise ShapeError(f"cannot reshape {shape_text(x.shape)} ({before} elements) to {shape_text(target)} "
                         f"({after} elements)")
    return dtype, target, attrs


_RULES.update({
    Op.SLICE: _slice, Op.UNSLICE: _unslice, Op.CONCAT: _concat, Op.STACK: _stack,
    Op.ARANGE: _arange, Op.GATHER: _gather, Op.SCATTER: _scatter, Op.RESHAPE: _checked_reshape,
})


# ---------------------------------------------------------------------------
# np.linalg: one square matrix (rank 2; stacks are not supported), results as NumPy's

LINALG = frozenset({Op.INV, Op.SOLVE, Op.DET, Op.LOGABSDET, Op.DETSIGN, Op.CHOLESKY, Op.EIGVALSH, Op.EIGVECSH,
                    Op.PINV, Op.SVDVALS, Op.SVD_U, Op.SVD_VT})


def _square(graph: Graph, a: Node) -> Dim:
    """The size of square matrix ``a``: rows and columns unified (a symbolic pair is checked on entry)."""
    if a.ndim != 2:
        raise ShapeError(f"needs a square matrix (rank 2), got {type_text(a.dtype, a.shape)}")
    return graph.unify(a.shape[0], a.shape[1], (a.shape,), what="needs a square matrix")


def _float(dtype: DType) -> DType:
    return dtype if dtype.is_float else DType.F64


def _linalg_square(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """inv, cholesky, eigh's vectors: a square matrix of the input's size."""
    (a,) = inputs
    n = _square(graph, a)
    return _float(a.dtype), (n, n), attrs


def _linalg_scalar(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """det, slogdet's parts: a number."""
    _square(graph, inputs[0])
    return _float(inputs[0].dtype), (), attrs


def _linalg_eigvals(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """eigvalsh: one eigenvalue per row."""
    return _float(inputs[0].dtype), (_square(graph, inputs[0]),), attrs


def _pinv(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """pinv: the transposed shape, for any matrix."""
    (a,) = inputs
    if a.ndim != 2:
        raise ShapeError(f"needs a matrix (rank 2), got {type_text(a.dtype, a.shape)}")
    return _float(a.dtype), (a.shape[1], a.shape[0]), attrs


def _svd(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any], part: int) -> RuleResult:
    """The thin SVD's parts of an (m, n) matrix, k = min(m, n): U (m, k), s (k,), Vᵀ (k, n)."""
    (a,) = inputs
    if a.ndim != 2:
        raise ShapeError(f"needs a matrix (rank 2), got {type_text(a.dtype, a.shape)}")
    m, n = a.shape
    k = dim_min(m, n)
    return _float(a.dtype), ((m, k), (k,), (k, n))[part], attrs


def _solve(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    """solve(a, b): b of shape (n,) or (n, k), as NumPy 2 reads it (a vector only when b has rank 1)."""
    a, b = inputs
    n = _square(graph, a)
    if b.ndim not in (1, 2):
        raise ShapeError(f"b must be a vector or a matrix, got {type_text(b.dtype, b.shape)}")
    if graph.resolve(b.shape[0]) != graph.resolve(n):
        graph.unify(n, b.shape[0], (a.shape, b.shape), what="the rows of a and b")
    return _float(result_dtype((a.dtype, b.dtype))), graph.resolve_shape(b.shape), attrs


def index_grid(graph: Graph, n: Dim) -> tuple[Node, Node]:
    """Row and column indices of an (n, n) matrix, shaped (n, 1) and (1, n): comparing them makes the
    masks of a diagonal or a triangle without a constant of a symbolic size (identity, Φ)."""
    index = graph.apply(Op.ARANGE, size=n)
    return graph.apply(Op.RESHAPE, index, shape=(n, 1)), graph.apply(Op.RESHAPE, index, shape=(1, n))


_RULES.update({
    Op.INV: _linalg_square, Op.CHOLESKY: _linalg_square, Op.EIGVECSH: _linalg_square,
    Op.DET: _linalg_scalar, Op.LOGABSDET: _linalg_scalar, Op.DETSIGN: _linalg_scalar,
    Op.EIGVALSH: _linalg_eigvals, Op.SOLVE: _solve, Op.PINV: _pinv,
    **{op: functools.partial(_svd, part=k) for k, op in enumerate((Op.SVD_U, Op.SVDVALS, Op.SVD_VT))},
})
# -- integer indexing on any axis: np.take and its adjoint, the scatter-add of np.add.at --
#
# An index array (or a 0-d index: one entry, its axis goes) is data: its
# entries are checked when the generated code runs (NumPy's IndexError; a
# negative entry counts from the end), never read out of bounds.


def _integer_index(idx: Node, what: str) -> None:
    if idx.dtype not in (DType.I64, DType.I32):
        raise ShapeError(f"{what}: an index must be integers, got {type_text(idx.dtype, idx.shape)}")


def _take(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    x, idx = inputs
    if x.ndim == 0:
        raise ShapeError("take: a scalar cannot be indexed")
    _integer_index(idx, "take")
    axis = _norm_axes(attrs.get("axis", 0), x.ndim)[0]
    shape = x.shape
    return x.dtype, tuple(shape[:axis]) + tuple(idx.shape) + tuple(shape[axis + 1:]), {"axis": axis}


def _scatter_add(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    g, idx = inputs
    _integer_index(idx, "scatter_add")
    axis, k = attrs["axis"], idx.ndim
    if not 0 <= axis <= g.ndim - k:
        raise ShapeError(f"scatter_add: axis {axis} and an index of rank {k} do not fit "
                         f"{type_text(g.dtype, g.shape)}")
    for a, b in zip(g.shape[axis:axis + k], idx.shape, strict=True):
        if graph.resolve(a) != graph.resolve(b):
            graph.unify(a, b, (g.shape, idx.shape), what="scatter_add")
    size = graph.resolve(attrs["size"])
    shape = g.shape
    return g.dtype, tuple(shape[:axis]) + (size,) + tuple(shape[axis + k:]), {"axis": axis, "size": size}


def _along(graph: Graph, x: Node, idx: Node, axis: int, what: str) -> None:
    """idx has x's rank and x's sizes off ``axis`` (the tracer broadcasts it first)."""
    _integer_index(idx, what)
    if idx.ndim != x.ndim:
        raise ShapeError(f"{what}: the index needs the array's rank {x.ndim}, got {type_text(idx.dtype, idx.shape)}")
    for d, (a, b) in enumerate(zip(x.shape, idx.shape, strict=True)):
        if d != axis and graph.resolve(a) != graph.resolve(b):
            graph.unify(a, b, (x.shape, idx.shape), what=what)


def _take_along(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    x, idx = inputs
    if x.ndim == 0:
        raise ShapeError("take_along: a scalar cannot be indexed")
    axis = _norm_axes(attrs["axis"], x.ndim)[0]
    _along(graph, x, idx, axis, "take_along")
    return x.dtype, idx.shape, {"axis": axis}


def _scatter_add_along(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    g, idx = inputs
    axis = _norm_axes(attrs["axis"], g.ndim)[0]
    _along(graph, g, idx, axis, "scatter_add_along")
    size = graph.resolve(attrs["size"])
    shape = list(g.shape)
    shape[axis] = size
    return g.dtype, tuple(shape), {"axis": axis, "size": size}


def _arg_extreme(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    if x.ndim == 0:
        raise ShapeError("argmax/argmin of a scalar")
    axis, keepdims = attrs.get("axis"), bool(attrs.get("keepdims", False))
    if axis is None:
        return DType.I64, (1,) * x.ndim if keepdims else (), {"axis": None, "keepdims": keepdims}
    (axis,) = _norm_axes(axis, x.ndim)
    return DType.I64, _reduce_shape(x.shape, (axis,), keepdims), {"axis": axis, "keepdims": keepdims}


def _argsort(graph: Graph, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> RuleResult:
    (x,) = inputs
    if x.ndim == 0:
        raise ShapeError("argsort of a scalar")
    return DType.I64, x.shape, {"axis": _norm_axes(attrs.get("axis", -1), x.ndim)[0]}


_RULES.update({Op.TAKE: _take, Op.SCATTER_ADD: _scatter_add, Op.TAKE_ALONG: _take_along,
               Op.SCATTER_ADD_ALONG: _scatter_add_along, Op.ARGMAX: _arg_extreme, Op.ARGMIN: _arg_extreme,
               Op.ARGSORT: _argsort})


def basic_index(x: Node, key: Any, what: str = "x[...]") -> Node:
    """``x[key]`` for a basic NumPy index: ints, slices, ``None`` and ``...`` (front ends share it).

    Slice bounds are ints or ``None``; a size bound (``x.shape[0] - 1``, a
    :class:`Sym`) is read as counting from the end of its axis, which is what
    it means whenever it is in range. ``x[:]`` is ``x`` itself.
    """
    graph = x.graph
    if x.ndim == 0:
        raise ShapeError(f"{what}: a scalar cannot be indexed")
    items = list(key) if isinstance(key, tuple) else [key]
    if sum(1 for k in items if k is Ellipsis) > 1:
        raise ShapeError(f"{what}: an index can only have a single ellipsis ('...')")
    used = sum(1 for k in items if k is not None and k is not Ellipsis)
    if used > x.ndim:
        raise ShapeError(f"{what}: too many indices ({used}) for an array of rank {x.ndim}")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (x.ndim - used)
    else:
        items += [slice(None)] * (x.ndim - used)
    shape = x.shape
    out: list[IndexItem] = []
    axis = 0
    for k in items:
        if k is None:
            out.append(("new",))
            continue
        size = shape[axis]
        axis += 1
        if isinstance(k, slice):
            step = 1 if k.step is None else _clamp(_static_int(k.step, what, "a slice step"))
            if step == 0:
                raise ShapeError(f"{what}: slice step cannot be zero")
            start = _clamp(_bound(k.start, size, what, is_stop=False))
            stop = _clamp(_bound(k.stop, size, what, is_stop=True))
            out.append(("slice", start, stop, step))
        else:
            index = _static_int(k, what, "an index")
            if not -MAX_BOUND <= index < MAX_BOUND:  # out of range of every array, and beyond what Numba types
                raise IndexRangeError(f"{what}: index {index} is out of bounds for every array (NumPy: IndexError)")
            out.append(("int", index))
    if all(item == FULL for item in out):
        return x
    return graph.apply(Op.SLICE, x, index=Index(out))


# No axis holds 2**61 elements (that many bytes exceed any machine's memory), so a slice bound beyond it means
# "past the end" exactly as NumPy reads it, and sums of two bounds still fit the int64 that Numba computes in
MAX_BOUND = 2**61


def _clamp(bound: int | None) -> int | None:
    """``x[:10**30]`` is ``x[:2**61]``: NumPy clamps a slice bound to the axis, so the same slice, in int64."""
    return bound if bound is None else max(-MAX_BOUND, min(MAX_BOUND, bound))


def _static_int(value: Any, what: str, role: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise UnsupportedError(f"{what}: a boolean as {role} is not supported (boolean masks change the shape "
                               "with the data); use np.where(mask, a, b)")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, Sym):
        raise UnsupportedError(f"{what}: a symbolic size as {role} is not supported: its value is only known at "
                               "run time; give a concrete size in the argument type, or slice (x[-1:])")
    raise UnsupportedError(f"{what}: {type(value).__name__} as {role} is not supported: use integers, slices "
                           "with integer bounds, None (np.newaxis) and ...")


def _bound(value: Any, size: Dim, what: str, is_stop: bool) -> int | None:
    """A slice bound: an int, None, or a size ``n + c`` of this axis (``c < 0``, or ``c = 0`` for a stop)."""
    if value is None or not isinstance(value, Sym):
        return None if value is None else _static_int(value, what, "a slice bound")
    offset = value - size
    if isinstance(offset, int) and (offset < 0 or (offset == 0 and is_stop)):
        return None if offset == 0 else offset
    raise UnsupportedError(f"{what}: a slice bound {dim_text(value)} on an axis of size {dim_text(size)} is not "
                           "supported: bounds must be integers, or the axis size minus a constant "
                           "(x.shape[0] - 1)")


# ---------------------------------------------------------------------------
# programs: a graph with named inputs and outputs


class Program:
    """Inputs and outputs of one function over a graph.

    ``inputs`` are INPUT nodes in signature order; ``outputs`` are the
    returned values, named by ``output_names``.
    """

    def __init__(self, graph: Graph, inputs: Sequence[Node], outputs: Sequence[Node],
                 output_names: Sequence[str] | None = None, name: str = "f") -> None:
        self.graph = graph
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.output_names = list(output_names) if output_names else [f"out{i}" for i in range(len(outputs))]
        self.name = name

    def nodes(self) -> list[Node]:
        """The nodes that the outputs depend on, in topological (id) order."""
        return reachable(self.outputs)

    def text(self) -> str:
        return program_text(self)

    __str__ = text


def reachable(roots: Iterable[Node]) -> list[Node]:
    """Every node some root depends on, sorted by id (a topological order)."""
    seen: set[Node] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.inputs)
    return sorted(seen, key=lambda n: n.id)


def users(nodes: Iterable[Node]) -> dict[Node, list[Node]]:
    """For each node, the nodes among ``nodes`` that use it (once per use)."""
    out: dict[Node, list[Node]] = {}
    for node in nodes:
        out.setdefault(node, [])
        for x in node.inputs:
            out.setdefault(x, []).append(node)
    return out


def _const_text(node: Node) -> str:
    value = node.value
    if value.ndim == 0:
        return float_text(value.item()) if node.dtype.is_float else repr(value.item())
    return f"array{value.shape}"


def float_text(x: float) -> str:
    """A float written so that it reads back to the same bits (``-0.0`` included)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def node_text(node: Node) -> str:
    """``%4 = mul %2 %3 : f64[n]``; inputs and constants name themselves."""
    if node.op is Op.INPUT:
        rhs = f"input {node.attr('name')}"
    elif node.op is Op.CONST:
        rhs = f"const {_const_text(node)}"
    elif node.op is Op.DIM:
        rhs = f"dim {dim_text(node.attr('dim'))}"
    else:
        attrs = ""
        if node.attrs:
            attrs = "[" + ", ".join(f"{k}={_attr_text(v)}" for k, v in node.attrs) + "]"
        rhs = f"{node.op.value}{attrs} " + " ".join(f"%{x.id}" for x in node.inputs)
    return f"%{node.id} = {rhs} : {type_text(node.dtype, node.shape)}"


def _attr_text(value: Any) -> str:
    if isinstance(value, DType):
        return value.value
    if isinstance(value, tuple):
        return "(" + ",".join(_attr_text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, Sym):
        return dim_text(value)
    return repr(value)


def program_text(program: Program) -> str:
    sig = ", ".join(f"{n.attr('name')}: {type_text(n.dtype, n.shape)}" for n in program.inputs)
    lines = [f"def {program.name}({sig}):"]
    lines += ["  " + node_text(n) for n in program.nodes() if n.op is not Op.INPUT]
    rets = ", ".join(f"{name}=%{n.id}" for name, n in zip(program.output_names, program.outputs, strict=True))
    lines.append(f"  return {rets}")
    return "\n".join(lines)


INT64_MAX = 2**63 - 1  # the largest size (and integer literal) NumPy holds: np.intp on 64-bit machines


def parse_type(text: str) -> tuple[DType, Shape]:
    """``"f64[m,n]"`` -> (F64, (Sym(m), Sym(n))); ``"f64"`` is a scalar; sizes may be ints.

    A size is a name or an integer from 0 to ``INT64_MAX``: NumPy has no
    negative sizes and none beyond int64, and such a number would reach Numba
    as a literal it cannot type.
    """
    if not isinstance(text, str):
        raise ArgumentError(f"a type must be a string such as 'f64[n]', not {type(text).__name__} {text!r}")
    text = text.strip()
    if "[" not in text:
        return DType.parse(text), ()
    if not text.endswith("]"):
        raise ValueError(f"bad type {text!r}: expected e.g. 'f64[m,n]'")
    head, body = text[:-1].split("[", 1)
    dims: list[Dim] = []
    for part in body.split(","):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(r"[+-]?[0-9]+", part):
            size = int(part)
            if not 0 <= size <= INT64_MAX:
                raise SizeError(f"size {part} in type {text!r} is out of range: sizes go from 0 to 2**63 - 1")
            dims.append(size)
        elif part.isidentifier():
            dims.append(Sym.named(part))
        else:
            raise ValueError(f"bad size {part!r} in type {text!r}: use a name or an integer")
    return DType.parse(head.strip()), tuple(dims)
