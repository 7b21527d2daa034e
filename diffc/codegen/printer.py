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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from diffc.codegen.naming import Namer
from diffc.errors import UnsupportedError
from diffc.ir import Dim, DType, Node, Op, Program, Shape, Sym, dim_names, dim_text, float_text, reachable

MAX_INLINE_DEPTH = 3

# Python's operator precedence, higher binds tighter.
ATOM, POWER, UNARY, PRODUCT, SUM, COMPARE, TERNARY = 100, 90, 80, 70, 60, 50, 10


@dataclass(frozen=True)
class Expr:
    """Printed text, its precedence, and how deep it nests inlined nodes."""

    text: str
    prec: int = ATOM
    depth: int = 0


def docstring(text: str) -> str:
    """Text made safe inside triple quotes: no escape or closing quote of the user's survives."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


Layout = Any  # an output index, or a tuple of layouts: how the return value nests


class Printer:
    """Prints programs as Python functions over NumPy arrays."""

    backend: ClassVar[str] = "numpy"

    # ops printed as a call of one NumPy function
    FUNCTIONS: ClassVar[dict[Op, str]] = {
        Op.EXP: "np.exp", Op.LOG: "np.log", Op.SQRT: "np.sqrt", Op.SIN: "np.sin", Op.COS: "np.cos",
        Op.TAN: "np.tan", Op.TANH: "np.tanh", Op.ABS: "np.abs", Op.SIGN: "np.sign",
        Op.MAX: "np.maximum", Op.MIN: "np.minimum", Op.OUTER: "np.outer",
    }
    # ops printed as an infix operator: (symbol, precedence)
    INFIX: ClassVar[dict[Op, tuple[str, int]]] = {
        Op.ADD: ("+", SUM), Op.SUB: ("-", SUM), Op.MUL: ("*", PRODUCT), Op.DIV: ("/", PRODUCT),
        Op.MATMUL: ("@", PRODUCT), Op.GT: (">", COMPARE), Op.GE: (">=", COMPARE),
        Op.LT: ("<", COMPARE), Op.LE: ("<=", COMPARE), Op.EQ: ("==", COMPARE), Op.NE: ("!=", COMPARE),
    }

    def __init__(self) -> None:
        self.namer = Namer()
        self.dims: dict[str, str] = {}  # size name -> variable holding it
        self.used_dims: set[str] = set()  # the size variables some printed text reads
        self.optional: dict[str, str] = {}  # a line binding one size -> its variable, dropped if unread
        self.helpers: dict[str, str] = {}  # support helpers the printed code calls: name -> module

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
        if value.size > 64:
            raise UnsupportedError(f"a constant array of {value.size} elements cannot be printed inline yet",
                                   op="const", backend=self.backend)
        items = repr([self.literal(v, node.dtype).text for v in value.ravel().tolist()]).replace("'", "")
        return Expr(f"np.array({items}, dtype={self.dtype(node.dtype)}).reshape({self.shape(value.shape)})")

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
        return Expr(f"np.exp(-np.logaddexp(0.0, -{self.wrap(x, UNARY + 1)}))")

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
        extra = "" if node.dtype is DType.F64 else f", dtype={self.dtype(node.dtype)}"
        if not source.shape:
            return Expr(f"np.full({self.shape(node.shape)}, {x.text}{extra})")
        return Expr(f"np.broadcast_to({x.text}, {self.shape(node.shape)}).copy()")

    def print_reshape(self, node: Node, x: Expr) -> Expr:
        return Expr(f"{self.wrap(x, ATOM)}.reshape({self.shape(node.shape)})")

    def print_cast(self, node: Node, x: Expr) -> Expr:
        if not node.shape:
            return Expr(f"{self.dtype(node.dtype)}({x.text})")
        return Expr(f"{self.wrap(x, ATOM)}.astype({self.dtype(node.dtype)})")

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
        for node, param in zip(inputs, params, strict=True):
            dims = [graph.resolve(d) for d in node._shape] if graph else []
            names = [d.name if isinstance(d, Sym) else None for d in dims]
            fresh = [n for n in names if n is not None and n not in bound]
            if dims and len(set(fresh)) == len(dims):  # every axis binds a new size: unpack
                variables = [self.namer.fresh(n) for n in fresh]
                self.dims.update(zip(fresh, variables, strict=True))
                bound.update({n: (param, k) for k, n in enumerate(fresh)})
                lines.append(f"{', '.join(variables)}{',' if len(variables) == 1 else ''} = {param}.shape")
                continue
            for axis, (d, n) in enumerate(zip(dims, names, strict=True)):
                if n is not None and n not in bound:
                    self.dims[n] = self.namer.fresh(n)
                    bound[n] = (param, axis)
                    lines.append(f"{self.dims[n]} = {param}.shape[{axis}]")
                    self.optional[lines[-1]] = self.dims[n]
                else:
                    checks.append((param, axis, d))
        rank = {p: n.ndim for n, p in zip(inputs, params, strict=True)}
        for param, axis, d in checks:
            sources = sorted({bound[name][0] for name in dim_names(d)} - {param})
            pieces = [self._shape_message(p, rank[p]) for p in [param, *sources]]
            # a size name reaches the message only as the content of a string literal
            tail = json.dumps(f": {param}.shape[{axis}] must equal {self._size_name(d, bound)}")
            lines.append(f"if {param}.shape[{axis}] != {self.dim(d)}:")
            # one piece per line, so that the check stays as short as the shapes it names
            lines.append(f"    raise ShapeError({pieces[0]}")
            lines += [f'                     + " but " + {piece}' for piece in pieces[1:]]
            lines.append(f"                     + {tail})")
        return lines

    @staticmethod
    def _shape_message(param: str, rank: int) -> str:
        """Code that builds ``"X has shape (3, 4)"`` at run time (Numba has no tuple str)."""
        sizes = ' + ", " + '.join(f"str({param}.shape[{k}])" for k in range(rank))
        return f'"{param} has shape (" + {sizes} + "{"," if rank == 1 else ""})"'

    def _size_name(self, d: Dim, bound: dict[str, tuple[str, int]]) -> str:
        if isinstance(d, int):
            return str(d)
        shown = dim_text(d, {n: f"{p}.shape[{k}]" for n, (p, k) in bound.items()})
        return f"{shown} ({dim_text(d)})"

    def function(self, fn_name: str, program: Program, layout: Layout, doc: str,
                 params: Sequence[str] | None = None) -> list[str]:
        """Print ``program`` as ``def fn_name(params): ...`` returning ``layout``."""
        self.namer = Namer({fn_name})
        self.dims = {}
        self.used_dims = set()
        self.optional = {}
        names = self.parameters(program) if params is None else list(params)
        self.namer.taken.update(names)
        body = self.entry_checks(program.inputs, names)
        exprs: dict[Node, Expr] = {n: Expr(p) for n, p in zip(program.inputs, names, strict=True)}
        nodes = reachable(program.outputs)
        uses: dict[Node, int] = {}
        for node in nodes:
            for x in node.inputs:
                uses[x] = uses.get(x, 0) + 1
        outputs = set(program.outputs)
        forward = set(reachable(program.outputs[:1]))
        graph = program.graph
        bases: dict[Node, str] = {}
        for node in nodes:
            if node in exprs:
                continue
            args = [exprs[x] for x in node.inputs]
            expr = self.method(node.op)(node, *args)
            if node.inputs:
                expr = Expr(expr.text, expr.prec, 1 + max(a.depth for a in args))
            leaf = node.op in (Op.CONST, Op.DIM)
            named = node in graph.names and not leaf
            if not leaf and (named or node in outputs or uses.get(node, 0) > 1 or expr.depth > MAX_INLINE_DEPTH):
                base = graph.names.get(node) or self.temp_name(node, program, forward)
                var = self.namer.fresh(base)
                body.append(f"{var} = {expr.text}")
                bases[node] = base
                expr = Expr(var)
            exprs[node] = expr
        returned: list[str] = []
        for node, out_name in zip(program.outputs, program.output_names, strict=True):
            current = exprs[node].text
            if bases.get(node) != out_name:  # a_bar = d: the gradient is a value named already
                var = self.namer.fresh(out_name)
                body.append(f"{var} = {current}")
                current = var
            returned.append(current)
        body.append("return " + self._layout_text(layout, returned, top=True))
        # a size bound on entry but never read would be an unused variable (a linter's F841)
        body = [line for line in body if line not in self.optional or self.optional[line] in self.used_dims]
        lines = [f"def {fn_name}({', '.join(names)}):", f'    """{docstring(doc)}"""']
        return lines + ["    " + line for line in body]

    @staticmethod
    def parameters(program: Program) -> list[str]:
        """The generated function's parameter names: the user's, sanitised and unique."""
        namer = Namer()
        return [namer.fresh(n.name or "x") for n in program.inputs]

    def delegate(self, fn_name: str, program: Program, target: str, index: int, doc: str) -> list[str]:
        """``def grad(a, b): return value_and_grad(a, b)[1]``: one function built on another."""
        names = ", ".join(self.parameters(program))
        return [f"def {fn_name}({names}):", f'    """{docstring(doc)}"""', f"    return {target}({names})[{index}]"]

    def temp_name(self, node: Node, program: Program, forward: set[Node]) -> str:
        """Temporaries are named after their op (``exp``, ``matmul``), outputs after the output.

        A forward value keeps a forward name even when it is also a gradient
        (``d = b + 1`` then ``a_bar = d``), so the forward part reads on its own.
        """
        if node is program.outputs[0]:
            return program.output_names[0]
        if node in program.outputs and node not in forward:
            return program.output_names[program.outputs.index(node)]
        return node.op.value

    def _layout_text(self, layout: Layout, names: list[str], top: bool = False) -> str:
        if isinstance(layout, int):
            return names[layout]
        inner = ", ".join(self._layout_text(x, names) for x in layout)
        if len(layout) == 1:
            inner += ","
        return inner if top else f"({inner})"
