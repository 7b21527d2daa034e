"""Expression strings -> IR, through ``ast.parse`` and a whitelist.

The text is a tiny subset of Python: one expression, or assignment lines whose
last line is the output (the lecture notes' ``c = a + b``, ``d = b + 1``,
``e = c * d``). We let Python's own parser build the tree, so the syntax is
exactly Python's, and then walk that tree against a WHITELIST of node kinds.
Anything not on the list is refused with a :class:`ParseError` that names the
line, the 1-based column and the offending text. The text is never handed to
``eval``, ``exec`` or ``sympify``: a whitelist over a parsed tree is the only
way to accept a language without also accepting ``__import__('os')``.

Decisions worth knowing:

* Free names (read before any assignment) are the inputs, in order of first
  appearance, unless ``args`` fixes the order and the types.
* Assignment is SSA: ``a = a * 2`` reads the old ``a`` and then rebinds the
  name. ``a += b`` is accepted and means ``a = a + b`` (likewise for ``-= *=
  /= **= @=``), since that is what it means in NumPy code without aliasing.
* Number literals stay Python numbers until they meet a node: ``2 * x`` builds
  the constant with ``x``'s float dtype (NumPy's weak scalars), so an ``f32``
  input stays ``f32``. A unary minus on a literal is folded (``-1`` is the
  constant ``-1.0``, not ``neg 1.0``). A literal never meeting a node is f64.
* ``pi`` and ``e`` are not constants: ``e`` is the output of the notes'
  example. Any such name is an input.
* The walk over the tree is iterative (an explicit stack), so whatever
  ``ast.parse`` accepts we accept, under the default recursion limit. Python's
  parser itself refuses nesting about 200 deep and flat chains of about 3,000
  terms; both become a ParseError that suggests assignment lines.
"""

from __future__ import annotations

import ast
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from diffc.errors import ArgumentError, ParseError, ShapeError, SizeError, UnsupportedError
from diffc.ir import DType, Graph, Node, Op, Program, Shape, basic_index, parse_type

__all__ = ["parse_text", "FUNCTIONS"]


# ---------------------------------------------------------------------------
# the whitelist, as tables


@dataclass(frozen=True)
class _Lit:
    """A number literal not yet turned into a constant (its dtype comes from its partner)."""

    value: float
    name: str | None = None  # set when the literal was bound by an assignment (``k = 2``)


Value = Union[Node, _Lit]  # noqa: UP007 - a runtime alias, usable on Python 3.10

BINARY_OPS: dict[type[ast.operator], Op] = {
    ast.Add: Op.ADD, ast.Sub: Op.SUB, ast.Mult: Op.MUL, ast.Div: Op.DIV,
    ast.Pow: Op.POW, ast.MatMult: Op.MATMUL,
}
COMPARE_OPS: dict[type[ast.cmpop], Op] = {
    ast.Lt: Op.LT, ast.LtE: Op.LE, ast.Gt: Op.GT, ast.GtE: Op.GE, ast.Eq: Op.EQ, ast.NotEq: Op.NE,
}
_OPERATOR_TEXT: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitXor: "^", ast.BitAnd: "&", ast.Not: "not", ast.Invert: "~", ast.Is: "is",
    ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}

# one-argument elementwise functions: name -> op
UNARY_FUNCTIONS: dict[str, Op] = {
    "exp": Op.EXP, "log": Op.LOG, "sqrt": Op.SQRT, "sin": Op.SIN, "cos": Op.COS, "tan": Op.TAN,
    "tanh": Op.TANH, "abs": Op.ABS, "sigmoid": Op.SIGMOID,
    # ops for real models
    "log1p": Op.LOG1P, "expm1": Op.EXPM1, "log2": Op.LOG2, "log10": Op.LOG10, "exp2": Op.EXP2,
    "arcsin": Op.ARCSIN, "arccos": Op.ARCCOS, "arctan": Op.ARCTAN, "sinh": Op.SINH, "cosh": Op.COSH,
    "arcsinh": Op.ARCSINH, "softplus": Op.SOFTPLUS,
    "erf": Op.ERF, "erfc": Op.ERFC, "gammaln": Op.GAMMALN,  # scipy.special's
}
# two-argument elementwise functions
BINARY_FUNCTIONS: dict[str, Op] = {"arctan2": Op.ARCTAN2, "hypot": Op.HYPOT}
# reductions of one argument: over every axis, or over axis=... (keepdims=... keeps them as size 1)
REDUCTION_FUNCTIONS: dict[str, Op] = {"sum": Op.SUM, "mean": Op.MEAN, "logsumexp": Op.LOGSUMEXP}
# along an axis (default the last), the shape of the argument
AXIS_FUNCTIONS: dict[str, Op] = {"softmax": Op.SOFTMAX, "log_softmax": Op.LOG_SOFTMAX}
# elementwise, two or more arguments, left-nested: max(a, b, c) = max(max(a, b), c)
VARIADIC_FUNCTIONS: dict[str, Op] = {"max": Op.MAX, "min": Op.MIN}
# ... and of one argument, a reduction like sum: max(x), max(x, axis=1)
EXTREMA: dict[str, Op] = {"max": Op.AMAX, "min": Op.AMIN}
# the keyword arguments a function takes; their values are literals, read from the tree (never evaluated)
KEYWORDS: dict[str, frozenset[str]] = {
    **{name: frozenset({"axis", "keepdims"}) for name in (*REDUCTION_FUNCTIONS, *EXTREMA)},
    **{name: frozenset({"axis"}) for name in AXIS_FUNCTIONS},
}
# every known function: name -> (min args, max args or None, what the count message says)
FUNCTIONS: dict[str, tuple[int, int | None, str]] = {
    **{name: (1, 1, "exactly 1 argument") for name in UNARY_FUNCTIONS},
    **{name: (1, 1, "exactly 1 argument") for name in REDUCTION_FUNCTIONS},
    **{name: (1, 1, "exactly 1 argument") for name in AXIS_FUNCTIONS},
    **{name: (2, 2, "exactly 2 arguments") for name in BINARY_FUNCTIONS},
    "relu": (1, 1, "exactly 1 argument"),
    "square": (1, 1, "exactly 1 argument"),
    **{name: (1, None, "1 argument (a reduction) or 2 or more (elementwise)") for name in VARIADIC_FUNCTIONS},
    "where": (3, 3, "exactly 3 arguments (condition, value if true, value if false)"),
}
_KNOWN = ", ".join(sorted(FUNCTIONS))

_COMPREHENSION = "comprehensions are not supported"
_CONTAINER = "lists, tuples, sets and dicts are not supported: the text computes one array expression"
_STRING = "strings are not supported: the text is an arithmetic expression"
REFUSED_EXPRESSIONS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access is not supported",
    ast.Slice: "a slice is only allowed inside an index (x[1:])",
    ast.Lambda: "lambda is not supported: write the expression itself",
    ast.ListComp: _COMPREHENSION, ast.SetComp: _COMPREHENSION, ast.DictComp: _COMPREHENSION,
    ast.GeneratorExp: _COMPREHENSION,
    ast.Starred: "starred arguments (*x) are not supported",
    ast.JoinedStr: _STRING, ast.FormattedValue: _STRING,
    ast.IfExp: "conditional expressions (a if c else b) are not supported: use where(c, a, b)",
    ast.BoolOp: "'and' and 'or' are not supported: combine masks with where(c, a, b)",
    ast.NamedExpr: "assignment expressions (:=) are not supported: write an assignment line",
    ast.List: _CONTAINER, ast.Tuple: _CONTAINER, ast.Set: _CONTAINER, ast.Dict: _CONTAINER,
    ast.Await: "await is not supported", ast.Yield: "yield is not supported",
    ast.YieldFrom: "yield is not supported",
}
_STATEMENT_KEYWORDS: dict[str, str] = {
    "Import": "import", "ImportFrom": "import", "FunctionDef": "def", "AsyncFunctionDef": "async def",
    "ClassDef": "class", "If": "if", "For": "for", "AsyncFor": "async for", "While": "while",
    "With": "with", "AsyncWith": "async with", "Try": "try", "TryStar": "try", "Match": "match",
    "Return": "return", "Delete": "del", "Pass": "pass", "Break": "break", "Continue": "continue",
    "Global": "global", "Nonlocal": "nonlocal", "Raise": "raise", "Assert": "assert",
}
_SPLIT_HINT = ("split it into assignment lines, e.g. 't1 = ...' then 't2 = t1 * ...': "
               "each line may be short, and any number of lines is fine")
# Parsing is linear (10,000 assignment lines, 250 kB: about 0.7 s; 20,000 lines, 560 kB: 1.5 s), so a limit
# keeps every text's parse to a few seconds and refuses a megabyte at once, before Python's parser starts
MAX_TEXT = 1_000_000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Python's own line breaks (not str.splitlines's \f, \v, ...)


# ---------------------------------------------------------------------------
# entry point


def parse_text(source: str, args: Mapping[str, str] | Sequence[str] | None = None) -> Program:
    """Parse an expression string (or assignment lines) into a :class:`Program`.

    ``args`` fixes the signature: a mapping ``name -> type`` (``"f64"``,
    ``"f64[n]"``, ``"f32[m,n]"``) or a sequence of names (f64 scalars). Without
    it the inputs are the free names in order of first appearance, all f64
    scalars. The output is the last line; the program is named after its
    assignment target, or ``f`` (output ``out``) when the last line is a bare
    expression. Raises :class:`ParseError` for text outside the whitelist.
    """
    if not isinstance(source, str):
        raise ArgumentError(f"parse_text takes the expression as a str, not {type(source).__name__}")
    if len(source) > MAX_TEXT:
        raise ParseError(f"the text has {len(source):,} characters, more than the {MAX_TEXT:,} diffc parses "
                         "(about 35,000 assignment lines); for a larger model, trace a NumPy function "
                         "(diffc.compile(fn)), whose loops need no text")
    return _Parser(source, args).program()


# ---------------------------------------------------------------------------
# the parser


class _Parser:
    """One parse: the source, its positions, the graph and the name environment."""

    def __init__(self, source: str, args: Mapping[str, str] | Sequence[str] | None) -> None:
        self.original_lines = _LINE_BREAK.split(source)
        # A triple-quoted block is usually indented; Python would refuse the indent.
        # Dedenting removes the same prefix from every non-blank line, so columns shift by `margin`.
        self.source = textwrap.dedent(source)
        self.lines = _LINE_BREAK.split(self.source)
        self.margin = _margin(self.original_lines, self.lines)
        self.graph = Graph()
        self.env: dict[str, Value] = {}
        self.fixed_args = args is not None
        self.inputs: list[Node] = []
        if args is not None:
            for name, dtype, shape in _signature(args):
                node = self.graph.input(name, dtype, shape)
                self.inputs.append(node)
                self.env[name] = node

    # -- positions and errors ---------------------------------------------
    def column(self, lineno: int, col_offset: int) -> int:
        """1-based character column; ast's ``col_offset`` counts UTF-8 bytes."""
        line = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        chars = len(line.encode("utf-8")[:col_offset].decode("utf-8", errors="replace"))
        return chars + 1 + self.margin

    def source_line(self, lineno: int) -> str:
        return self.original_lines[lineno - 1] if 0 < lineno <= len(self.original_lines) else ""

    def segment(self, node: ast.AST) -> str:
        return _short(ast.get_source_segment(self.source, node) or "")

    def error(self, node: ast.AST, message: str) -> ParseError:
        lineno = getattr(node, "lineno", 0)
        col = self.column(lineno, getattr(node, "col_offset", 0)) if lineno else 0
        return ParseError(message, lineno, col, self.segment(node), self.source_line(lineno))

    def located(self, node: ast.AST, exc: Exception) -> Exception:
        """A ShapeError or UnsupportedError from the IR, with the text's position added."""
        lineno = getattr(node, "lineno", 0)
        where = f"line {lineno}, column {self.column(lineno, getattr(node, 'col_offset', 0))}: " if lineno else ""
        message = f"{where}{exc} (at {self.segment(node)!r})"
        if isinstance(exc, UnsupportedError):
            return UnsupportedError(message, op=exc.op, backend=exc.backend)
        return ShapeError(message)

    # -- statements ---------------------------------------------------------
    def parse_module(self) -> ast.Module:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning for odd literals: we refuse them anyway
                return ast.parse(self.source, mode="exec")
        except SyntaxError as exc:
            raise self.syntax_error(exc) from None
        except (RecursionError, MemoryError):
            raise ParseError("the expression is too deep for Python's parser (a very long chain of operators "
                             "or deep nesting); " + _SPLIT_HINT) from None
        except ValueError as exc:  # null bytes on Python 3.11
            raise ParseError(f"Python cannot parse the text: {exc}") from None

    def syntax_error(self, exc: SyntaxError) -> ParseError:
        lineno = exc.lineno or 0
        # SyntaxError offsets are 1-based characters of the (dedented) line
        col = (exc.offset or 1) + self.margin if lineno else 0
        line = self.source_line(lineno)
        end = (exc.end_offset or 0) + self.margin if exc.end_lineno == lineno else 0
        if end <= col:  # no span ("'(' was never closed"): the character pointed at, if any
            end = col + 1 if line[col - 1:col].strip() else col
        text = line[col - 1:end - 1] if end > col else line.strip()
        message = exc.msg
        if "too many nested" in message or "too complex" in message:
            message = f"the expression is nested too deeply for Python's parser ({message}); {_SPLIT_HINT}"
        else:
            message = f"Python syntax error: {message}"
        return ParseError(message, lineno, col, _short(text), line)

    def program(self) -> Program:
        body = self.parse_module().body
        if not body:
            raise ParseError("empty expression: write an expression such as 'a * b + 1', or assignment lines")
        output: Value | None = None
        target: str | None = None
        for index, stmt in enumerate(body):
            last = index == len(body) - 1
            target, output = self.statement(stmt, last)
            if target is not None:
                self.assign(target, output)
        assert output is not None
        node = self.node(output, None)
        if target is not None:
            self.graph.names.setdefault(node, target)
        if not self.fixed_args:
            self.inputs = [n for n in self.graph.nodes if n.op is Op.INPUT]  # creation = first appearance
        return Program(self.graph, self.inputs, [node], [target or "out"], name=target or "f")

    def statement(self, stmt: ast.stmt, last: bool) -> tuple[str | None, Value]:
        """Evaluate one statement: (assigned name or None, value)."""
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1:
                raise self.error(stmt, "chained assignment (a = b = ...) is not supported: assign one name per line")
            name = self.target(stmt.targets[0])
            return name, self.expression(stmt.value)
        if isinstance(stmt, ast.AugAssign):
            name = self.target(stmt.target)
            if type(stmt.op) not in BINARY_OPS:
                raise self.error(stmt, f"operator {_OPERATOR_TEXT.get(type(stmt.op), '?')}= is not supported")
            read = ast.copy_location(ast.Name(id=name, ctx=ast.Load()), stmt.target)
            combined = ast.copy_location(ast.BinOp(left=read, op=stmt.op, right=stmt.value), stmt)
            combined.end_lineno, combined.end_col_offset = stmt.end_lineno, stmt.end_col_offset
            return name, self.expression(combined)
        if isinstance(stmt, ast.Expr):
            if not last:
                raise self.error(stmt, "only the last line may be a bare expression (its value would be "
                                       "thrown away): assign it to a name, e.g. 't = ...'")
            return None, self.expression(stmt.value)
        if isinstance(stmt, ast.AnnAssign):
            raise self.error(stmt, "annotated assignments are not supported: give types through args, "
                                   "e.g. args={'x': 'f64[n]'}")
        keyword = _STATEMENT_KEYWORDS.get(type(stmt).__name__, type(stmt).__name__)
        hint = " (use where(c, a, b) for a choice)" if keyword in ("if", "match") else ""
        raise self.error(stmt, f"'{keyword}' statements are not supported: write assignment lines "
                               f"'name = expression' and a final expression{hint}")

    def target(self, node: ast.expr) -> str:
        if isinstance(node, (ast.Tuple, ast.List)):
            raise self.error(node, "tuple targets (a, b = ...) are not supported: assign one name per line")
        if isinstance(node, ast.Starred):
            raise self.error(node, "starred targets are not supported: assign one name per line")
        if not isinstance(node, ast.Name):
            raise self.error(node, "only a plain name can be assigned (indexing and attributes are not supported)")
        self.check_name(node)
        if node.id in FUNCTIONS:
            raise self.error(node, f"'{node.id}' is a built-in function and cannot be assigned: choose another name")
        return node.id

    def check_name(self, node: ast.Name) -> None:
        if node.id.startswith("__"):
            raise self.error(node, f"names starting with '__' are not allowed ({node.id})")

    def assign(self, name: str, value: Value) -> None:
        """SSA: the name now means this value; the first name given to a node is kept."""
        if isinstance(value, Node):
            self.graph.names.setdefault(value, name)
        else:
            value = _Lit(value.value, value.name or name)
        self.env[name] = value

    # -- expressions ----------------------------------------------------------
    def expression(self, root: ast.expr) -> Value:
        """Post-order walk with an explicit stack: children's values pile up on ``values``."""
        work: list[tuple[ast.expr, bool]] = [(root, False)]
        values: list[Value] = []
        while work:
            node, ready = work.pop()
            if ready:
                count = _arity(node)
                operands = values[len(values) - count:]
                del values[len(values) - count:]
                values.append(self.build(node, operands))
                continue
            children = self.children(node)
            if children is None:
                values.append(self.leaf(node))
            else:
                work.append((node, True))
                work.extend((child, False) for child in reversed(children))
        assert len(values) == 1
        return values[0]

    def children(self, node: ast.expr) -> list[ast.expr] | None:
        """Check ``node`` against the whitelist; its operands in order, or None for a leaf."""
        if isinstance(node, ast.BinOp):
            if type(node.op) not in BINARY_OPS:
                raise self.error(node, f"operator {_OPERATOR_TEXT.get(type(node.op), '?')} is not supported "
                                       "(supported: + - * / ** @)")
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.error(node, f"operator {_OPERATOR_TEXT.get(type(node.op), '?')} is not supported "
                                       "(supported: unary - and +)")
            return [node.operand]
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise self.error(node, "chained comparisons (a < b < c) are not supported: compare two values")
            if type(node.ops[0]) not in COMPARE_OPS:
                raise self.error(node, f"comparison '{_OPERATOR_TEXT.get(type(node.ops[0]), '?')}' is not "
                                       "supported (supported: < <= > >= == !=)")
            return [node.left, node.comparators[0]]
        if isinstance(node, ast.Call):
            self.check_call(node)
            return list(node.args)
        if isinstance(node, (ast.Name, ast.Constant)):
            return None
        if isinstance(node, ast.Subscript):  # x[1:], X[:, 0]: the index is read as literals, in build
            self.index_key(node)
            return [node.value]
        if isinstance(node, ast.Attribute) and node.attr in FUNCTIONS:
            raise self.error(node, f"attribute access is not supported: write the bare name '{node.attr}(...)'")
        message = REFUSED_EXPRESSIONS.get(type(node), f"{type(node).__name__} expressions are not supported")
        raise self.error(node, message)

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            self.children(func)  # a refused kind (np.exp, a lambda) says so itself
            raise self.error(func, f"only the known functions can be called, by their bare names ({_KNOWN})")
        self.check_name(func)
        if func.id not in FUNCTIONS:
            raise self.error(func, f"unknown function '{func.id}' (known: {_KNOWN})")
        allowed = KEYWORDS.get(func.id, frozenset())
        for kw in node.keywords:
            if not allowed:
                raise self.error(kw, f"keyword arguments are not supported ({func.id})")
            if kw.arg not in allowed:
                raise self.error(kw, f"{func.id}() takes only the keyword arguments {', '.join(sorted(allowed))}")
            self.static(kw.arg, kw.value)
        low, high, expected = FUNCTIONS[func.id]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            raise self.error(node, f"{func.id}() takes {expected}, got {count}")
        if func.id in VARIADIC_FUNCTIONS and count > 1 and node.keywords:
            raise self.error(node.keywords[0], f"axis and keepdims belong to the reduction {func.id}(x) of one "
                                               f"argument, not to the elementwise {func.id}(a, b)")

    def static(self, name: str, value: ast.expr) -> object:
        """A keyword's literal value: ``keepdims`` a bool; ``axis`` None, an int or a tuple of ints."""
        if name == "keepdims":
            if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                return value.value
            raise self.error(value, "keepdims must be True or False")
        if isinstance(value, ast.Constant) and value.value is None:
            return None
        items = value.elts if isinstance(value, ast.Tuple) else [value]
        axes: list[int] = []
        for item in items:
            sign = 1
            if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub):
                sign, item = -1, item.operand
            if not (isinstance(item, ast.Constant) and type(item.value) is int):
                raise self.error(value, "axis must be an integer, a tuple of integers or None")
            axes.append(sign * item.value)
        return tuple(axes) if isinstance(value, ast.Tuple) else axes[0]

    def keywords(self, node: ast.Call) -> dict[str, object]:
        return {kw.arg: self.static(kw.arg, kw.value) for kw in node.keywords if kw.arg is not None}

    def leaf(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Name):
            return self.read(node)
        assert isinstance(node, ast.Constant)
        value = node.value
        if isinstance(value, bool):
            raise self.error(node, f"{value} is not supported: write 1.0 or 0.0, or a comparison for a mask")
        if isinstance(value, (str, bytes)):
            raise self.error(node, _STRING)
        if isinstance(value, complex):
            raise self.error(node, "complex numbers are not supported")
        if not isinstance(value, (int, float)):
            raise self.error(node, f"{value!r} is not supported: only numbers")
        try:
            return _Lit(float(value))
        except OverflowError:
            raise self.error(node, "this integer is too large for a float64") from None

    def read(self, node: ast.Name) -> Value:
        self.check_name(node)
        name = node.id
        bound = self.env.get(name)
        if bound is not None:
            return bound
        if name in FUNCTIONS:
            raise self.error(node, f"'{name}' is a function: call it, e.g. '{name}(x)'")
        if self.fixed_args:
            raise self.error(node, f"name '{name}' is neither an argument nor assigned before this line "
                                   f"(arguments: {', '.join(n.attr('name') for n in self.inputs) or 'none'})")
        input_node = self.graph.input(name, DType.F64, ())
        self.env[name] = input_node
        return input_node

    # -- building nodes -------------------------------------------------------
    def node(self, value: Value, like: Node | None) -> Node:
        """A literal meeting a float node takes its dtype (NumPy's weak scalars); otherwise f64."""
        if isinstance(value, Node):
            return value
        dtype = like.dtype if like is not None and like.dtype.is_float else DType.F64
        const = self.graph.const(value.value, dtype)
        if value.name is not None:
            self.graph.names.setdefault(const, value.name)
        return const

    def apply(self, where: ast.AST, op: Op, operands: Sequence[Value], **attrs: object) -> Node:
        like = next((v for v in operands if isinstance(v, Node)), None)
        nodes = [self.node(v, like) for v in operands]
        try:
            return self.graph.apply(op, *nodes, **attrs)
        except (ShapeError, UnsupportedError) as exc:
            raise self.located(where, exc) from None

    def build(self, node: ast.expr, operands: list[Value]) -> Value:
        if isinstance(node, ast.BinOp):
            return self.apply(node, BINARY_OPS[type(node.op)], operands)
        if isinstance(node, ast.UnaryOp):
            (x,) = operands
            if isinstance(node.op, ast.UAdd):
                return x
            return _Lit(-x.value) if isinstance(x, _Lit) else self.apply(node, Op.NEG, operands)
        if isinstance(node, ast.Compare):
            return self.apply(node, COMPARE_OPS[type(node.ops[0])], operands)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, operands[0])
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return _CALLS[node.func.id](self, node, operands)

    # -- indexing: basic NumPy indexing with literal bounds (x[1:], x[:-1], X[:, 0], x[:, None]) --
    def index_key(self, node: ast.Subscript) -> tuple[object, ...]:
        """The index as Python values: ints, slices of ints, None and ... (read from the tree, never evaluated)."""
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        key: list[object] = []
        for part in parts:
            if isinstance(part, ast.Slice):
                key.append(slice(*(self.index_int(p, True) for p in (part.lower, part.upper, part.step))))
            elif isinstance(part, ast.Constant) and (part.value is None or part.value is Ellipsis):
                key.append(part.value)
            else:
                key.append(self.index_int(part, False))
        return tuple(key)

    def index_int(self, node: ast.expr | None, optional: bool) -> int | None:
        if node is None:
            return None
        sign, inner = 1, node
        if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, (ast.USub, ast.UAdd)):
            sign, inner = (-1 if isinstance(inner.op, ast.USub) else 1), inner.operand
        if isinstance(inner, ast.Constant) and type(inner.value) is int:
            return sign * inner.value
        if optional and isinstance(inner, ast.Constant) and inner.value is None and inner is node:
            return None
        raise self.error(node, "an index must be an integer literal, None or a slice with integer literal bounds "
                               "(x[1:], x[:-1], X[:, 0], x[:, None])")

    def subscript(self, node: ast.Subscript, value: Value) -> Value:
        if not isinstance(value, Node):
            raise self.error(node, "a number cannot be indexed")
        try:
            return basic_index(value, self.index_key(node), self.segment(node))
        except (ShapeError, UnsupportedError) as exc:
            raise self.located(node, exc) from None


def _arity(node: ast.expr) -> int:
    if isinstance(node, (ast.BinOp, ast.Compare)):
        return 2
    if isinstance(node, (ast.UnaryOp, ast.Subscript)):
        return 1
    assert isinstance(node, ast.Call)
    return len(node.args)


# -- calls: one small builder per function kind ---------------------------------

Builder = Callable[[_Parser, ast.Call, list[Value]], Value]


def _unary_call(op: Op) -> Builder:
    return lambda parser, node, operands: parser.apply(node, op, operands)


def _variadic_call(op: Op) -> Builder:
    def build(parser: _Parser, node: ast.Call, operands: list[Value]) -> Value:
        acc = operands[0]
        for x in operands[1:]:
            acc = parser.apply(node, op, [acc, x])
        return acc
    return build


def _keyword_call(op: Op) -> Builder:
    """A reduction or an along-axis function: its ``axis=`` and ``keepdims=`` become the op's attributes."""
    return lambda parser, node, operands: parser.apply(node, op, operands, **parser.keywords(node))


def _extremum(reduction: Op, elementwise: Op) -> Builder:
    """max(x) (and max(x, axis=1)) is the reduction; max(a, b, ...) the elementwise maximum."""
    variadic, reduce = _variadic_call(elementwise), _keyword_call(reduction)
    return lambda parser, node, operands: (reduce if len(operands) == 1 else variadic)(parser, node, operands)


def _square(parser: _Parser, node: ast.Call, operands: list[Value]) -> Value:
    """square(x) = x * x, as np.square (one node used twice: its adjoint is 2 x g)."""
    return parser.apply(node, Op.MUL, [operands[0], operands[0]])


def _relu(parser: _Parser, node: ast.Call, operands: list[Value]) -> Value:
    """relu(x) = max(x, 0), with the zero in x's dtype (the notes' relu'(0) = 0 comes from the tie rule)."""
    return parser.apply(node, Op.MAX, [operands[0], _Lit(0.0)])


def _where(parser: _Parser, node: ast.Call, operands: list[Value]) -> Value:
    cond, a, b = operands
    like = next((v for v in (a, b, cond) if isinstance(v, Node)), None)
    return parser.apply(node, Op.WHERE, [parser.node(cond, like), parser.node(a, like), parser.node(b, like)])


_CALLS: dict[str, Builder] = {
    **{name: _unary_call(op) for name, op in UNARY_FUNCTIONS.items()},
    **{name: _keyword_call(op) for name, op in REDUCTION_FUNCTIONS.items()},
    **{name: _keyword_call(op) for name, op in AXIS_FUNCTIONS.items()},
    **{name: _unary_call(op) for name, op in BINARY_FUNCTIONS.items()},
    **{name: _extremum(EXTREMA[name], op) for name, op in VARIADIC_FUNCTIONS.items()},
    "square": _square,
    "relu": _relu,
    "where": _where,
}
assert set(_CALLS) == set(FUNCTIONS)


# ---------------------------------------------------------------------------
# helpers


def _short(text: str) -> str:
    """The offending text as shown in a message: long text is cut, the position says where."""
    return text if len(text) <= 80 else text[:77] + "..."


def _margin(original: list[str], dedented: list[str]) -> int:
    """How many characters dedent removed from each non-blank line (the same for all of them)."""
    for before, after in zip(original, dedented, strict=True):
        if before.strip():
            return len(before) - len(after)
    return 0


def _signature(args: Mapping[str, str] | Sequence[str]) -> list[tuple[str, DType, Shape]]:
    """``args`` as (name, dtype, shape) triples, checked."""
    if isinstance(args, str):
        raise ArgumentError(f"args must be a mapping name -> type or a sequence of names, not the string {args!r} "
                            f"(for one argument: args=[{args!r}])")
    items = list(args.items()) if isinstance(args, Mapping) else [(name, "f64") for name in args]
    out: list[tuple[str, DType, Shape]] = []
    seen: set[str] = set()
    for name, type_text in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise ParseError(f"argument name {name!r} is not an identifier")
        if name.startswith("__"):
            raise ParseError(f"argument names starting with '__' are not allowed ({name})")
        if name in FUNCTIONS:
            raise ParseError(f"argument name '{name}' is a built-in function: choose another name")
        if name in seen:
            raise ParseError(f"argument '{name}' is listed twice")
        seen.add(name)
        if not isinstance(type_text, str):
            raise ArgumentError(f"the type of argument '{name}' must be a string such as 'f64[n]', "
                                f"not {type(type_text).__name__} {type_text!r}")
        try:
            dtype, shape = parse_type(type_text)
        except SizeError as exc:
            raise SizeError(f"argument '{name}': {exc}") from None
        except ValueError as exc:
            raise ParseError(f"bad type {type_text!r} for argument '{name}': {exc} "
                             "(expected e.g. 'f64', 'f64[n]', 'f32[m,n]')") from None
        out.append((name, dtype, shape))
    return out
