"""The printer shared by the back ends: one method per op, statements, names.

A back end is a subclass of :class:`Printer` that overrides only what differs
(the NumPy printer prints NumPy array statements; the Numba printer prints the
same statements for ``numba.njit`` and swaps the calls Numba lacks).

Printing a program walks its nodes once, in topological order. Each node
becomes an expression; it gets a line of its own when it deserves a name (a
user's name, several uses, an output) or when inlining it would nest
expressions more than :data:`MAX_INLINE_DEPTH` deep. Python refuses
expressions nested about 200 deep, so nothing here can ever build one.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from diffc.codegen.naming import FEEDS_DEPTH, Namer, describe, number_word, sanitize
from diffc.errors import UnsupportedError
from diffc.ir import (
    FULL,
    REDUCTIONS,
    Dim,
    DType,
    Graph,
    Index,
    Node,
    Op,
    Program,
    Shape,
    Sym,
    _const_key,
    dim_names,
    dim_nonneg,
    dim_text,
    float_text,
    reachable,
    size_labels,
    users,
)

MAX_INLINE_DEPTH = 3
SHOWN_NOTES = 3  # statements a comment names before it counts the rest
COMMENT_WIDTH = 80  # a longer comment lists its statements one a line (a loop's indent stays under 120)
INLINE_CONSTANT_MAX = 16  # larger constant arrays are hidden parameters, never huge literals
TEMP_NAMES = {Op.SLICE: "part"}  # temporaries named otherwise than their op (slice is a builtin)
FEEDS_WORDS = {op: "terms" for op in REDUCTIONS}  # a value summed into ``loss`` is ``loss_terms``
IN_PLACE = {Op.ADD: "+=", Op.SUB: "-=", Op.MUL: "*=", Op.DIV: "/="}  # updates of a fresh matrix product
COMMUTES = (Op.ADD, Op.MUL)  # b + X @ W is X @ W + b, bit for bit

# Python's operator precedence, higher binds tighter.
ATOM, POWER, UNARY, PRODUCT, SUM, COMPARE, TERNARY = 100, 90, 80, 70, 60, 50, 10


@dataclass(frozen=True)
class Expr:
    """Printed text, its precedence, and how deep it nests inlined nodes."""

    text: str
    prec: int = ATOM
    depth: int = 0
    notes: tuple[str, ...] = ()  # the rules of the adjoint nodes inlined in it (diffc/adjoint/notes.py)


def docstring(text: str) -> str:
    """Text made safe inside triple quotes: no escape, closing quote or control character of the user's survives.

    A NUL (a SymPy symbol may be named ``"a\\x00b"``) makes the whole module
    uncompilable, and a carriage return would move the lines, so control
    characters other than the newline and the tab are written as escapes.
    """
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    body = text[:-1]
    if text.endswith('"') and (len(body) - len(body.rstrip("\\"))) % 2 == 0:  # a quote not escaped yet:
        text = body + '\\"'  # 'a"' + '"""' would close the string one quote early
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


Layout = Any  # an output index, or a tuple of layouts: how the return value nests


CHECK_WIDTH = 112  # an entry check's line, without the function body's indent (120 in all)


class Printer:
    """Prints programs as Python functions over NumPy arrays."""

    backend: ClassVar[str] = "numpy"
    checks_module: ClassVar[str] = "checks"  # the support module of the entry checks' helper
    vector_math: bool = False  # only the Numba printer's loops use it
    annotate: bool = True  # a comment above each adjoint statement: its rule and forward statement

    # ops printed as a call of one NumPy function
    FUNCTIONS: ClassVar[dict[Op, str]] = {
        Op.EXP: "np.exp", Op.LOG: "np.log", Op.SQRT: "np.sqrt", Op.SIN: "np.sin", Op.COS: "np.cos",
        Op.TAN: "np.tan", Op.TANH: "np.tanh", Op.ABS: "np.abs", Op.SIGN: "np.sign",
        Op.MAX: "np.maximum", Op.MIN: "np.minimum", Op.OUTER: "np.outer",
        # ops for real models
        Op.LOG1P: "np.log1p", Op.EXPM1: "np.expm1", Op.LOG2: "np.log2", Op.LOG10: "np.log10", Op.EXP2: "np.exp2",
        Op.ARCSIN: "np.arcsin", Op.ARCCOS: "np.arccos", Op.ARCTAN: "np.arctan", Op.SINH: "np.sinh",
        Op.COSH: "np.cosh", Op.ARCSINH: "np.arcsinh", Op.ARCTAN2: "np.arctan2", Op.HYPOT: "np.hypot",
        # more NumPy functions
        Op.FLOOR: "np.floor", Op.CEIL: "np.ceil", Op.RINT: "np.rint", Op.TRUNC: "np.trunc",
        Op.ARCTANH: "np.arctanh", Op.ARCCOSH: "np.arccosh", Op.CBRT: "np.cbrt", Op.REMAINDER: "np.remainder",
        Op.FMOD: "np.fmod", Op.FLOOR_DIVIDE: "np.floor_divide",
        # scipy.special (the module imports it; the Numba printer prints these otherwise)
        Op.ERF: "scipy.special.erf", Op.ERFC: "scipy.special.erfc", Op.GAMMALN: "scipy.special.gammaln",
        Op.DIGAMMA: "scipy.special.digamma",
    }
    # ops printed as an infix operator: (symbol, precedence)
    INFIX: ClassVar[dict[Op, tuple[str, int]]] = {
        Op.ADD: ("+", SUM), Op.SUB: ("-", SUM), Op.MUL: ("*", PRODUCT), Op.DIV: ("/", PRODUCT),
        Op.MATMUL: ("@", PRODUCT), Op.GT: (">", COMPARE), Op.GE: (">=", COMPARE),
        Op.LT: ("<", COMPARE), Op.LE: ("<=", COMPARE), Op.EQ: ("==", COMPARE), Op.NE: ("!=", COMPARE),
    }

    def __init__(self) -> None:
        self.program: Program | None = None
        self.uses: dict[Node, int] = {}
        self.forward: set[Node] = set()
        self.bases: dict[Node, str] = {}
        self.namer = Namer()
        self.dims: dict[str, str] = {}  # size name -> variable holding it
        self.used_dims: set[str] = set()  # the size variables some printed text reads
        self.optional: dict[str, str] = {}  # a line binding one size -> its variable, dropped if unread
        self.helpers: dict[str, str] = {}  # support helpers the printed code calls: name -> module
        self.constants: tuple[Any, ...] = ()  # large constant arrays, passed as hidden parameters
        self.constant_names: dict[Any, str] = {}
        self.vars: dict[Node, str] = {}  # node -> the variable holding it, if its name says what it is
        self.users_of: dict[Node, list[Node]] = {}
        self.user_names: set[str] = set()  # what the user named: a derived name never takes one

    def require(self, module: str, name: str) -> str:
        """Use helper ``name`` of support module ``module`` (``diffc.support.<module>``).

        Modules diffc loads itself import the helper; standalone modules
        (``diffc emit``) get a copy of its source, so they need no diffc.
        """
        self.helpers.setdefault(name, module)
        return name

    # -- lookup ---------------------------------------------------------------
    def method(self, op: Op) -> Callable[..., Expr]:
        """``print_<op>`` if the class defines it, else the tables above."""
        found = getattr(self, f"print_{op.value}", None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        if op in self.FUNCTIONS:
            return lambda node, *args: self.call(self.FUNCTIONS[op], *args)
        if op in self.INFIX:
            symbol, prec = self.INFIX[op]
            return lambda node, x, y: self.infix(symbol, prec, x, y)
        raise UnsupportedError(f"the {self.backend} back end cannot print op {op.value!r}",
                               op=op.value, backend=self.backend)

    # -- expression helpers ---------------------------------------------------
    @staticmethod
    def wrap(x: Expr, min_prec: int) -> str:
        return x.text if x.prec >= min_prec else f"({x.text})"

    def call(self, fn: str, *args: Expr, extra: str = "") -> Expr:
        return Expr(f"{fn}({', '.join(a.text for a in args)}{extra})")

    def infix(self, symbol: str, prec: int, x: Expr, y: Expr) -> Expr:
        # the right operand needs parentheses at equal precedence: a - (b - c)
        return Expr(f"{self.wrap(x, prec)} {symbol} {self.wrap(y, prec + 1)}", prec)

    def dim(self, d: Dim) -> str:
        self.used_dims.update(self.dims[name] for name in dim_names(d) if name in self.dims)
        return dim_text(d, self.dims)

    def shape(self, shape: Shape) -> str:
        parts = [self.dim(d) for d in shape]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def dtype(self, dtype: DType) -> str:
        return f"np.{dtype.numpy.name}"

    def dtype_arg(self, node: Node) -> str:
        """``, dtype=np.float32`` for an array constructor of ``node``'s dtype; nothing for float64."""
        return "" if node.dtype is DType.F64 else f", dtype={self.dtype(node.dtype)}"

    def literal(self, value: Any, dtype: DType) -> Expr:
        """A scalar constant that reads back to the same bits."""
        if dtype is DType.BOOL:
            return Expr(repr(bool(value)))
        if not dtype.is_float:
            text = repr(int(value))
        else:
            text = float_text(float(value))
            text = {"nan": "np.nan", "inf": "np.inf", "-inf": "-np.inf"}.get(text, text)
            if dtype is not DType.F64:
                return Expr(f"{self.dtype(dtype)}({text})")
        return Expr(text, UNARY if text.startswith("-") else ATOM)

    # -- leaves ---------------------------------------------------------------
    def print_const(self, node: Node) -> Expr:
        value = node.value
        if value.ndim == 0:
            return self.literal(value.item(), node.dtype)
        if value.size > INLINE_CONSTANT_MAX:  # a hidden parameter (api.py binds it once)
            name = self.constant_names.get(_const_key(value))
            if name is None:
                raise UnsupportedError(f"a constant array of {value.size} elements is not printed inline: it is "
                                       "passed in as a hidden parameter, which this function was not given",
                                       op="const", backend=self.backend)
            return Expr(name)
        # exact: a float prints as the float64 of its value, which converts back to the same bits
        items = ", ".join(self.literal(v, DType.F64 if node.dtype.is_float else node.dtype).text
                          for v in value.ravel().tolist())
        array = f"np.array([{items}], dtype={self.dtype(node.dtype)})"
        return Expr(array if value.ndim == 1 else f"{array}.reshape({self.shape(value.shape)})")

    def print_dim(self, node: Node) -> Expr:
        text = self.dim(node.attr("dim"))
        return Expr(text, ATOM if text.isidentifier() else SUM)

    # -- ops with their own shape -----------------------------------------------
    def print_neg(self, node: Node, x: Expr) -> Expr:
        return Expr(f"-{self.wrap(x, UNARY + 1)}", UNARY)

    def print_pow(self, node: Node, x: Expr, y: Expr) -> Expr:
        # ** binds tighter than a unary minus on its left, and is right-associative
        return Expr(f"{self.wrap(x, POWER + 1)} ** {self.wrap(y, UNARY)}", POWER)

    def print_sigmoid(self, node: Node, x: Expr) -> Expr:
        # 1 / (1 + e^-x) without overflow: exp(-log(1 + e^-x)), by logaddexp
        zero = self.literal(0.0, node.dtype).text  # a float32 zero for float32: Numba keeps the width
        return Expr(f"np.exp(-np.logaddexp({zero}, -{self.wrap(x, UNARY + 1)}))")

    def print_where(self, node: Node, c: Expr, a: Expr, b: Expr) -> Expr:
        if not node.shape:  # scalars: a branch, so the other side is never computed
            return Expr(f"{self.wrap(a, TERNARY + 1)} if {self.wrap(c, TERNARY + 1)} else {self.wrap(b, TERNARY)}",
                        TERNARY)
        return self.call("np.where", c, a, b)

    def axis_args(self, node: Node) -> str:
        axes = node.attr("axis")
        text = ""
        if axes != tuple(range(node.inputs[0].ndim)):
            text += f", axis={axes[0] if len(axes) == 1 else axes}"
        if node.attr("keepdims"):
            text += ", keepdims=True"
        return text

    def print_sum(self, node: Node, x: Expr) -> Expr:
        return self.call("np.sum", x, extra=self.axis_args(node))

    def print_mean(self, node: Node, x: Expr) -> Expr:
        return self.call("np.mean", x, extra=self.axis_args(node))

    def print_transpose(self, node: Node, x: Expr) -> Expr:
        axes = node.attr("axes")
        if axes == tuple(reversed(range(len(axes)))):
            return Expr(f"{self.wrap(x, ATOM)}.T")
        return self.call("np.transpose", x, extra=f", {axes}")

    def print_broadcast(self, node: Node, x: Expr) -> Expr:
        source = node.inputs[0]
        if not source.shape:
            return Expr(f"np.full({self.shape(node.shape)}, {x.text}{self.dtype_arg(node)})")
        return Expr(f"np.broadcast_to({x.text}, {self.shape(node.shape)}).copy()")

    def print_reshape(self, node: Node, x: Expr) -> Expr:
        return Expr(f"{self.wrap(x, ATOM)}.reshape({self.shape(node.shape)})")

    def print_cast(self, node: Node, x: Expr) -> Expr:
        if not node.shape:
            return Expr(f"{self.dtype(node.dtype)}({x.text})")
        return Expr(f"{self.wrap(x, ATOM)}.astype({self.dtype(node.dtype)})")

    # -- ops for real models: stable forms, max/min reductions, first-extreme masks --
    # (the helpers live in diffc/support/stable.py; the Numba printer swaps in loops)
    def print_softplus(self, node: Node, x: Expr) -> Expr:
        # log(1 + e^x) = logaddexp(0, x), which NumPy computes as max(x, 0) + log1p(exp(-|x|)): no overflow
        return self.call("np.logaddexp", self.literal(0.0, node.dtype), x)

    def print_amax(self, node: Node, x: Expr) -> Expr:
        return self.call("np.max", x, extra=self.axis_args(node))

    def print_amin(self, node: Node, x: Expr) -> Expr:
        return self.call("np.min", x, extra=self.axis_args(node))

    def print_norm(self, node: Node, x: Expr) -> Expr:
        # sqrt(sum(x^2)) over the axes; np.linalg.norm would mean the spectral norm for some axis pairs
        return self.call("np.sqrt", self.print_sum(node, self.call("np.square", x)))

    def print_logsumexp(self, node: Node, x: Expr) -> Expr:
        return self.call(self.require("stable", "stable_logsumexp"), x, Expr(repr(node.attr("axis"))),
                         Expr(repr(node.attr("keepdims"))))

    def print_softmax(self, node: Node, x: Expr) -> Expr:
        return self.call(self.require("stable", "stable_softmax"), x, Expr(repr(node.attr("axis"))))

    def print_log_softmax(self, node: Node, x: Expr) -> Expr:
        return self.call(self.require("stable", "stable_log_softmax"), x, Expr(repr(node.attr("axis"))))

    def print_max_mask(self, node: Node, x: Expr) -> Expr:
        return self.call(self.require("stable", "first_max_mask"), x, Expr(repr(node.attr("axis"))))

    def print_min_mask(self, node: Node, x: Expr) -> Expr:
        return self.call(self.require("stable", "first_min_mask"), x, Expr(repr(node.attr("axis"))))

    def print_prod(self, node: Node, x: Expr) -> Expr:
        return self.call("np.prod", x, extra=self.axis_args(node))

    def print_cumsum(self, node: Node, x: Expr) -> Expr:
        return self.call("np.cumsum", x, extra=f", axis={node.attr('axis')[0]}")

    def print_cumprod(self, node: Node, x: Expr) -> Expr:
        return self.call("np.cumprod", x, extra=f", axis={node.attr('axis')[0]}")

    # -- indexing, joins, gathers (SLICE's adjoint and SCATTER are built by statements: state_<op>) --
    def index_text(self, index: Index) -> str:
        return index.text(self.dim)

    def print_slice(self, node: Node, x: Expr) -> Expr:
        # a basic index is a view in NumPy and Numba: no copy
        return Expr(f"{self.wrap(x, ATOM)}{self.index_text(node.attr('index'))}")

    def zeros(self, node: Node) -> str:
        return f"np.zeros({self.shape(node.shape)}{self.dtype_arg(node)})"

    def state_unslice(self, node: Node, var: str, g: Expr) -> list[str]:
        """``z = zeros(shape); z[index] = g``: a new axis of the index is dropped from g by a 0."""
        index = node.attr("index")
        target = Index(item for item in index.items if item[0] != "new")
        value = g.text
        if len(target.items) != len(index.items) and node.inputs[0].ndim:
            picks = [("int", 0) if item[0] == "new" else FULL for item in index.items if item[0] != "int"]
            value = f"{self.wrap(g, ATOM)}{Index(picks).text(self.dim)}"
        return [f"{var} = {self.zeros(node)}", f"{var}{self.index_text(target)} = {value}"]

    def print_concat(self, node: Node, *xs: Expr) -> Expr:
        return Expr(f"np.concatenate(({', '.join(x.text for x in xs)}{',' if len(xs) == 1 else ''}), "
                    f"axis={node.attr('axis')})")

    def print_stack(self, node: Node, *xs: Expr) -> Expr:
        return Expr(f"np.stack(({', '.join(x.text for x in xs)}{',' if len(xs) == 1 else ''}), "
                    f"axis={node.attr('axis')})")

    def print_arange(self, node: Node) -> Expr:
        return Expr(f"np.arange({self.dim(node.attr('size'))})")

    def print_gather(self, node: Node, x: Expr, idx: Expr) -> Expr:
        # NumPy raises IndexError for an index out of range (a negative one counts from the end)
        return Expr(f"{self.wrap(x, ATOM)}[np.arange({self.dim(node.shape[0])}), {idx.text}]")

    def state_scatter(self, node: Node, var: str, g: Expr, idx: Expr) -> list[str]:
        """Row i gets g[i] at column idx[i]: one entry per row, so a plain assignment adds nothing up twice."""
        return [f"{var} = {self.zeros(node)}", f"{var}[np.arange({self.dim(node.shape[0])}), {idx.text}] = {g.text}"]

    # -- integer indexing on any axis: x[:, idx] reads, np.add.at adds back (NumPy raises IndexError itself) --
    @staticmethod
    def on_axis(axis: int, index: str) -> str:
        """``[:, :, index]``: ``index`` on axis ``axis``, the axes before it whole."""
        return f"[{', '.join([':'] * axis + [index])}]"

    def print_take(self, node: Node, x: Expr, idx: Expr) -> Expr:
        return Expr(f"{self.wrap(x, ATOM)}{self.on_axis(node.attr('axis'), idx.text)}")

    def state_scatter_add(self, node: Node, var: str, g: Expr, idx: Expr) -> list[str]:
        """One index entry is one place (an assignment); an index array may repeat one, so np.add.at adds."""
        axis = node.attr("axis")
        if node.inputs[1].ndim == 0:
            return [f"{var} = {self.zeros(node)}", f"{var}{self.on_axis(axis, idx.text)} = {g.text}"]
        where = idx.text if axis == 0 else f"({'slice(None), ' * axis}{idx.text})"
        return [f"{var} = {self.zeros(node)}", f"np.add.at({var}, {where}, {g.text})"]

    def print_take_along(self, node: Node, x: Expr, idx: Expr) -> Expr:
        return self.call("np.take_along_axis", x, idx, extra=f", axis={node.attr('axis')}")

    def print_scatter_add_along(self, node: Node, g: Expr, idx: Expr) -> Expr:
        return self.call(self.require("take", "scatter_add_along"), g, idx,
                         Expr(str(node.attr("axis"))), Expr(self.dim(node.shape[node.attr("axis")])))

    def arg_extreme(self, node: Node, x: Expr, name: str) -> Expr:
        axis = node.attr("axis")
        extra = ("" if axis is None else f", axis={axis}") + (", keepdims=True" if node.attr("keepdims") else "")
        return self.call(name, x, extra=extra)

    def print_argmax(self, node: Node, x: Expr) -> Expr:
        return self.arg_extreme(node, x, "np.argmax")

    def print_argmin(self, node: Node, x: Expr) -> Expr:
        return self.arg_extreme(node, x, "np.argmin")

    def print_argsort(self, node: Node, x: Expr) -> Expr:
        return self.call("np.argsort", x, extra=f", axis={node.attr('axis')}, kind=\"stable\"")

    # -- large constants: hidden parameters that api.py binds once --
    def hidden_parameters(self, taken: Sequence[str]) -> list[str]:
        """``_const0, ...``: one parameter per constant too large to print (``self.constants``), after the
        user's parameters."""
        namer = Namer(set(taken))
        names = [namer.fresh(f"_const{k}") for k in range(len(self.constants))]
        self.constant_names = {_const_key(c): n for c, n in zip(self.constants, names, strict=True)}
        return names

    def size_checks(self, graph: Graph, bound: dict[str, tuple[str, int]]) -> list[str]:
        """Entry checks of sizes that no argument binds by itself.

        A static index needs a large enough axis (``x[5]`` of ``f64[n]`` needs
        ``n >= 6``); two sizes computed in different ways must agree
        (``x[1:] + w`` with ``w: f64[3]`` needs ``max(n - 1, 0) == 3``).
        """
        lines: list[str] = []
        largest: dict[Dim, tuple[int, str]] = {}  # per size, the largest minimum (it implies the others)
        for (dim, minimum), what in graph.bounds.items():
            d = graph.resolve(dim)
            if not dim_nonneg(d - minimum) and minimum > largest.get(d, (minimum - 1, ""))[0]:
                largest[d] = (minimum, what)
        for d, (minimum, what) in largest.items():
            message = f"{what} needs {self._size_name(d, bound)} >= {minimum}, got "
            lines += self.check(f"{self.dim(d)} >= {minimum}", message, self.dim(d))
        seen: set[tuple[Dim, Dim]] = set()
        for a, b in graph.constraints:
            a, b = graph.resolve(a), graph.resolve(b)
            if a == b or (a, b) in seen:
                continue
            seen.update({(a, b), (b, a)})
            message = f"sizes {self._size_name(a, bound)} and {self._size_name(b, bound)} must agree, got "
            lines += self.check(f"{self.dim(a)} == {self.dim(b)}", message, f"({self.dim(a)}, {self.dim(b)})")
        return lines

    def check(self, condition: str, message: str, got: str) -> list[str]:
        """One entry check, one call: ``check_shape(X.shape[1] == n, "X.shape[1] must equal ...", (X.shape, w.shape))``.

        A helper call rather than ``if ...:`` and ``raise ...`` on two lines,
        which took 8 of the 20 lines of the notes' logistic regression (a call
        too long for :data:`CHECK_WIDTH` puts what was found on a second
        line). The message reaches the code only as a string literal
        (``json.dumps``); what was found goes in as a value that ``ShapeError``
        prints in Python: Numba passes sizes and shapes to an exception
        cheaply but compiles ``str(int)`` slowly.
        """
        head = f"{self.require(self.checks_module, 'check_shape')}({condition}, {json.dumps(message)},"
        if len(head) + len(got) + 2 <= CHECK_WIDTH:
            return [f"{head} {got})"]
        return [head, " " * len("check_shape(") + f"{got})"]

    # -- functions --------------------------------------------------------------
    def entry_checks(self, inputs: Sequence[Node], params: Sequence[str]) -> list[str]:
        """Bind size names from the arguments and check that sizes agree.

        Runs before any computation, so a mismatch raises ``ShapeError``
        naming both shapes instead of reading out of bounds.
        """
        graph = inputs[0].graph if inputs else None
        lines: list[str] = []
        bound: dict[str, tuple[str, int]] = {}
        checks: list[tuple[str, int, Dim]] = []
        labels = size_labels(graph) if graph is not None else {}
        for node, param in zip(inputs, params, strict=True):
            dims = [graph.resolve(d) for d in node._shape] if graph else []
            names = [d.name if isinstance(d, Sym) else None for d in dims]
            fresh = [n for n in names if n is not None and n not in bound]
            if dims and len(set(fresh)) == len(dims):  # every axis binds a new size: unpack
                variables = [self.namer.fresh(labels.get(n, n)) for n in fresh]
                self.dims.update(zip(fresh, variables, strict=True))
                bound.update({n: (param, k) for k, n in enumerate(fresh)})
                lines.append(f"{', '.join(variables)}{',' if len(variables) == 1 else ''} = {param}.shape")
                continue
            for axis, (d, n) in enumerate(zip(dims, names, strict=True)):
                if n is not None and n not in bound:
                    self.dims[n] = self.namer.fresh(labels.get(n, n))
                    bound[n] = (param, axis)
                    lines.append(f"{self.dims[n]} = {param}.shape[{axis}]")
                    self.optional[lines[-1]] = self.dims[n]
                else:
                    checks.append((param, axis, d))
        for param, axis, d in checks:
            sources = sorted({bound[name][0] for name in dim_names(d)} - {param})
            arrays = [param, *sources]  # "X.shape[1] must equal w.shape[0] (n): X, w have shapes ((9, 4), (3,))"
            found = ", ".join(f"{p}.shape" for p in arrays)
            message = (f"{param}.shape[{axis}] must equal {self._size_name(d, bound)}: {', '.join(arrays)} "
                       + ("has shape " if not sources else "have shapes "))
            lines += self.check(f"{param}.shape[{axis}] == {self.dim(d)}", message,
                                found if not sources else f"({found})")
        if graph is not None:
            lines += self.size_checks(graph, bound)
        return lines

    def _size_name(self, d: Dim, bound: dict[str, tuple[str, int]]) -> str:
        if isinstance(d, int):
            return str(d)
        shown = dim_text(d, {n: f"{p}.shape[{k}]" for n, (p, k) in bound.items()})
        return f"{shown} ({dim_text(d, self.dims)})"

    def function(self, fn_name: str, program: Program, layout: Layout, doc: str,
                 params: Sequence[str] | None = None) -> list[str]:
        """Print ``program`` as ``def fn_name(params): ...`` returning ``layout``."""
        self.namer = Namer({fn_name})
        self.dims = {}
        self.used_dims = set()
        self.optional = {}
        names = self.parameters(program) if params is None else list(params)
        hidden = self.hidden_parameters(names)
        self.namer.taken.update(names + hidden)
        body = self.entry_checks(program.inputs, names)
        exprs: dict[Node, Expr] = {n: Expr(p) for n, p in zip(program.inputs, names, strict=True)}
        nodes = reachable(program.outputs)
        self.program = program
        self.users_of = users(nodes)
        self.uses = {node: len(used_by) for node, used_by in self.users_of.items()}
        self.vars = dict(zip(program.inputs, names, strict=True))
        self.user_names = {sanitize(n) for n in (*program.graph.names.values(), *program.output_names)}
        self.forward = set(reachable(program.outputs[:1]))
        self.bases = {}
        self.statements(nodes, exprs, body)
        returned: list[str] = []
        for node, out_name in zip(program.outputs, program.output_names, strict=True):
            current = exprs[node].text
            # the value under the user's own name (loss = ...; return loss) needs no second name
            users_value = node is program.outputs[0] and node in program.graph.names and current.isidentifier()
            if self.bases.get(node) != out_name and not users_value:  # a_bar = d: a value named already
                var = self.namer.fresh(out_name)
                notes = exprs[node].notes or (() if node is program.outputs[0] else
                                              program.graph.output_notes.get(out_name, ()))
                body.extend(self.comment(notes) + [f"{var} = {current}"])
                current = var
            returned.append(current)
        body.append("return " + self._layout_text(layout, returned, top=True))
        # a size bound on entry but never read would be an unused variable (a linter's F841)
        body = [line for line in body if line not in self.optional or self.optional[line] in self.used_dims]
        lines = [f"def {fn_name}({', '.join(names + hidden)}):", f'    """{docstring(doc)}"""']
        return lines + ["    " + line for line in body]

    def statements(self, nodes: Sequence[Node], exprs: dict[Node, Expr], body: list[str]) -> None:
        """Print every node not printed yet, in order: one NumPy statement per named node."""
        for node in nodes:
            if node not in exprs:
                exprs[node] = self.emit(node, [exprs[x] for x in node.inputs], body)

    def emit(self, node: Node, args: Sequence[Expr], body: list[str], force: bool = False) -> Expr:
        """The expression of ``node``; a statement in ``body`` when it deserves a name.

        A node gets its own line when it has a user's name, several uses, is
        an output, or would nest inlined expressions too deep.
        """
        notes = self.notes_of(node, args)
        updated = self.update_in_place(node, args, body)
        if updated is not None:
            body[-2:-2] = self.comment(notes)
            return updated
        stated = getattr(self, f"state_{node.op.value}", None)
        if stated is not None:  # an op built by several statements (a scatter into zeros): always a variable
            var = self.fresh_var(node)
            body.extend(self.comment(notes) + stated(node, var, *args))
            return Expr(var)
        expr = self.method(node.op)(node, *args)
        if node.inputs:
            expr = Expr(expr.text, expr.prec, 1 + max(a.depth for a in args), notes)
        if node.op in (Op.CONST, Op.DIM):
            return expr
        graph = node.graph
        if force or node in graph.names or node in self.program.outputs or self.uses.get(node, 0) > 1 \
                or expr.depth > MAX_INLINE_DEPTH:
            var = self.fresh_var(node)
            body.extend(self.comment(notes) + [f"{var} = {expr.text}"])
            return Expr(var)
        return expr

    def notes_of(self, node: Node, args: Sequence[Expr]) -> tuple[str, ...]:
        """The rules behind ``node``'s statement: its own (an adjoint node's) and those of what it inlines."""
        own = () if node in self.forward else node.graph.notes.get(node, ())
        return tuple(dict.fromkeys([*own, *(note for a in args for note in a.notes)]))

    def comment(self, notes: Sequence[str]) -> list[str]:
        """``# mul switches: e = c * d``: one line naming the rule(s) of the statement below it.

        Merged contributions (fusion, simplification) are listed: their rules,
        then the user's statements they come from, each once (:func:`merge_notes`).
        Only printable ASCII reaches the comment: a name cannot end it early.
        """
        if not notes or not self.annotate:
            return []
        rules, statements = merge_notes(notes)
        few = len(notes) <= SHOWN_NOTES and all("; " not in n for n in notes)  # a few: each rule by its statement
        line = "# " + "; ".join(notes) if few else f"# {rules}: {'; '.join(statements)}"
        if len(line) > (COMMENT_WIDTH + 20 if few else COMMENT_WIDTH):  # the rules, then a list: one statement a line
            head = textwrap.wrap(rules + ":", COMMENT_WIDTH - 2, break_long_words=False, break_on_hyphens=False)
            lines = [*(f"# {text}" for text in head), *(f"#   {s}" for s in statements)]
        else:
            lines = [line]
        return [_UNPRINTABLE.sub("?", text) for text in lines]

    def fresh_product(self, node: Node, x: Node) -> bool:
        """``x`` is a matrix product of ``node``'s shape and dtype used by ``node`` alone.

        Its array is new and nobody else reads it, so ``node`` may overwrite it.
        """
        return x.op is Op.MATMUL and x.shape == node.shape and x.dtype == node.dtype \
            and self.uses.get(x, 0) == 1 and x not in self.program.outputs and x not in x.graph.names

    def update_in_place(self, node: Node, args: Sequence[Expr], body: list[str]) -> Expr | None:
        """``z = X @ W`` then ``z += b``: a bias (or scale) applied to a matrix product used nowhere else.

        ``X @ W + b`` would allocate a second array the size of the product and
        pass over both; updating the product's own array saves the allocation
        and its page faults (W3: 11 ms -> 5 ms in Numba). Only when the product
        already has the result's shape and dtype, so ``b`` is what broadcasts.
        """
        if node.op not in IN_PLACE or node.ndim == 0:
            return None
        for k in ((0, 1) if node.op in COMMUTES else (0,)):
            if self.fresh_product(node, node.inputs[k]):
                var = self.fresh_var(node)
                body += [f"{var} = {args[k].text}", f"{var} {IN_PLACE[node.op]} {args[1 - k].text}"]
                return Expr(var)
        return None

    def fresh_var(self, node: Node) -> str:
        """A new variable for ``node``, named by the user, its output, or what it computes."""
        user = node.graph.names.get(node)
        if user is not None:
            self.bases[node] = user
            self.vars[node] = var = self.namer.fresh(user)
            return var
        base = self.temp_name(node, self.program, self.forward)
        self.bases[node] = base
        if node in self.program.outputs:
            return self.namer.fresh(base)
        # a derived name leaves the user's names alone: the user's ``neg_z`` later keeps its name
        var = self.namer.fresh(base, self.user_names)
        if base != TEMP_NAMES.get(node.op, node.op.value):  # an op's bare name says nothing to build on
            self.vars[node] = var
        return var

    def label(self, x: Node) -> str | None:
        """The name part for operand ``x`` in a derived name: its variable, its size's name, a number word."""
        if x in self.vars:
            return self.vars[x]
        if x.op is Op.DIM:
            text = dim_text(x.attr("dim"), self.dims)
            return text if text.isidentifier() else None
        if x.op is Op.CONST:
            return number_word(x)
        return None

    def feeds(self, node: Node) -> str | None:
        """``loss_terms``: the name of the statement a single-use ``node`` feeds, a few values up."""
        current, word = node, "part"
        for _ in range(FEEDS_DEPTH):
            used_by = self.users_of.get(current, ())
            if len(used_by) != 1:
                return None
            current = used_by[0]
            word = FEEDS_WORDS.get(current.op, word)
            name = current.graph.names.get(current)
            if name is None and current in self.program.outputs:
                name = self.program.output_names[self.program.outputs.index(current)]
            if name is not None:
                return f"{name}_{word}"
        return None

    @staticmethod
    def parameters(program: Program) -> list[str]:
        """The generated function's parameter names: the user's, sanitised and unique."""
        namer = Namer()
        return [namer.fresh(n.name or "x") for n in program.inputs]

    def delegate(self, fn_name: str, program: Program, target: str, index: int, doc: str) -> list[str]:
        """``def grad(a, b): return value_and_grad(a, b)[1]``: one function built on another."""
        user = self.parameters(program)
        names = ", ".join(user + self.hidden_parameters(user))
        return [f"def {fn_name}({names}):", f'    """{docstring(doc)}"""', f"    return {target}({names})[{index}]"]

    def pullback(self, fn_name: str, program: Program, target: str, layout: Layout, doc: str) -> list[str]:
        """``def vjp(x, cotangent): value, x_bar = value_and_grad(x); return value, x_bar * cotangent``.

        The vector-Jacobian product of a scalar function is its gradient times
        the cotangent: built on ``value_and_grad``, it is not printed (nor split,
        nor compiled) a second time, which for a large program halves the
        time to generate the module.
        """
        user = self.parameters(program)
        hidden = self.hidden_parameters(user)
        cotangent = user[-1]
        namer = Namer({*user, *hidden})
        value, grads = namer.fresh("value"), namer.fresh("grads")
        call = ", ".join(user[:-1] + hidden)
        assert isinstance(layout, tuple)  # (value, gradients): the gradient layout is value_and_grad's
        bare = isinstance(layout[1], int)
        count = 1 if bare else len(layout[1])  # type: ignore[arg-type]
        scaled = [f"{grads} * {cotangent}"] if bare else [f"{grads}[{k}] * {cotangent}" for k in range(count)]
        return [f"def {fn_name}({', '.join(user + hidden)}):", f'    """{docstring(doc)}"""',
                f"    {value}, {grads} = {target}({call})",
                f"    return {self._layout_text(layout, [value, *scaled], top=True)}"]

    def temp_name(self, node: Node, program: Program, forward: set[Node]) -> str:
        """Outputs are named after the output; temporaries after what they compute from their operands'
        names (``neg_z``, ``one_minus_y``, ``X_w``: diffc/codegen/naming.py), else after the statement
        they feed (``loss_terms``), else after their op (``where``).

        A forward value keeps a forward name even when it is also a gradient
        (``d = b + 1`` then ``a_bar = d``), so the forward part reads on its own.
        """
        if node is program.outputs[0]:
            return program.output_names[0]
        if node in program.outputs and node not in forward:
            return program.output_names[program.outputs.index(node)]
        return describe(node, self.label) or self.feeds(node) or TEMP_NAMES.get(node.op, node.op.value)

    def _layout_text(self, layout: Layout, names: list[str], top: bool = False) -> str:
        if isinstance(layout, int):
            return names[layout]
        inner = ", ".join(self._layout_text(x, names) for x in layout)
        if len(layout) == 1:
            inner += ","
        return inner if top else f"({inner})"


def merge_notes(notes: Sequence[str]) -> tuple[str, list[str]]:
    """Notes (``rule: statement; statement``) merged into one: the rules, then the statements, each once.

    ``add distributes, mul switches, chain rule through softplus: a = ...; loss = ...``:
    the rules in the order of :data:`RULE_ORDER` (the chain rules after them, by
    function), at most :data:`SHOWN_NOTES` statements, the rest counted.
    """
    rules: dict[str, None] = {}
    said: dict[str, None] = {}
    for text in notes:
        rule, _, statements = text.partition(": ")
        rules[rule] = None
        said.update(dict.fromkeys(s for s in statements.split("; ") if s))
    through = [r.removeprefix(CHAIN_RULE) for r in rules if r.startswith(CHAIN_RULE)]
    named = sorted((r for r in rules if not r.startswith(CHAIN_RULE)),
                   key=lambda r: RULE_ORDER.index(r) if r in RULE_ORDER else len(RULE_ORDER))
    if through:
        named.append(CHAIN_RULE + ", ".join(through))
    shown = list(said)[:SHOWN_NOTES]
    if len(said) > len(shown):
        shown.append(f"+ {len(said) - len(shown)} more")
    return ", ".join(named), shown


CHAIN_RULE = "chain rule through "
RULE_ORDER = ("add distributes", "mul switches", "max routes", "min routes", "where routes")


def hidden_constants(programs: Sequence[Program]) -> tuple[Any, ...]:
    """The constant arrays too large to print (more than ``INLINE_CONSTANT_MAX`` elements) that
    ``programs`` use, each once (equal bits are one constant), in order of first use.

    Generated functions take them as trailing parameters ``_const0, ...``; the
    API binds them once, so a captured weight matrix is never copied per call
    and never printed as a huge literal.
    """
    found: dict[Any, Any] = {}
    for program in programs:
        for node in program.nodes():
            if node.op is Op.CONST and node.value.size > INLINE_CONSTANT_MAX:
                found.setdefault(_const_key(node.value), node.value)
    return tuple(found.values())
