"""The text front end: expression strings -> IR, through a whitelist over ``ast``.

The IR is checked by structure (ops, operands, names, types) and by value: a
tiny NumPy evaluator written here walks ``program.nodes()`` and its result is
compared with the same expression computed directly with NumPy.
"""

from __future__ import annotations

import ast
import builtins
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffc.errors import DiffcError, ParseError, ShapeError
from diffc.frontends.text import parse_text
from diffc.ir import DType, Node, Op, Program, Sym, node_text

# ---------------------------------------------------------------------------
# a tiny reference evaluator of the IR, independent of diffc's back ends


def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-x))


IR_NUMPY = {
    Op.NEG: np.negative, Op.EXP: np.exp, Op.LOG: np.log, Op.SQRT: np.sqrt, Op.SIN: np.sin, Op.COS: np.cos,
    Op.TAN: np.tan, Op.TANH: np.tanh, Op.ABS: np.abs, Op.SIGMOID: _sigmoid,
    Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide, Op.POW: np.power,
    Op.MAX: np.maximum, Op.MIN: np.minimum, Op.MATMUL: np.matmul,
    Op.LT: np.less, Op.LE: np.less_equal, Op.GT: np.greater, Op.GE: np.greater_equal,
    Op.EQ: np.equal, Op.NE: np.not_equal, Op.WHERE: np.where,
}
IR_REDUCE = {Op.SUM: np.sum, Op.MEAN: np.mean}


def evaluate(program: Program, **inputs: Any) -> Any:
    """Run the program's nodes in id order (a topological order) with NumPy."""
    values: dict[Node, Any] = {}
    with np.errstate(all="ignore"):
        for node in program.nodes():
            if node.op is Op.INPUT:
                values[node] = np.asarray(inputs[node.attr("name")], dtype=node.dtype.numpy)
            elif node.op is Op.CONST:
                values[node] = node.value
            elif node.op in IR_REDUCE:
                values[node] = IR_REDUCE[node.op](values[node.inputs[0]], axis=node.attr("axis"))
            else:
                values[node] = IR_NUMPY[node.op](*(values[x] for x in node.inputs))
    return values[program.outputs[0]]


def node_lines(program: Program) -> list[str]:
    return [node_text(n) for n in program.nodes()]


# ---------------------------------------------------------------------------
# the lecture notes' example


NOTES = "c = a + b\nd = b + 1\ne = c * d"


def test_notes_example_structure() -> None:
    p = parse_text(NOTES)
    a, b = p.inputs
    assert [n.attr("name") for n in p.inputs] == ["a", "b"]
    assert all(n.op is Op.INPUT and n.dtype is DType.F64 and n.shape == () for n in p.inputs)
    (e,) = p.outputs
    assert p.name == "e" and p.output_names == ["e"]
    assert e.op is Op.MUL
    c, d = e.inputs
    assert c.op is Op.ADD and c.inputs == (a, b)
    assert d.op is Op.ADD and d.inputs[0] is b
    one = d.inputs[1]
    assert one.op is Op.CONST and one.dtype is DType.F64 and float(one.value) == 1.0
    assert (c.name, d.name, e.name) == ("c", "d", "e")
    assert (a.name, b.name) == ("a", "b")
    assert float(evaluate(p, a=2.0, b=3.0)) == (2.0 + 3.0) * (3.0 + 1.0)


@pytest.mark.parametrize("source", [
    "(a + b) * (b + 1)",
    "c = a + b; d = b + 1; e = c * d",
    "\n    # the notes, indented in a triple-quoted string\n    c = a + b\n\n    d = b + 1  # d\n    e = c * d\n",
])
def test_notes_example_spellings_give_the_same_ir(source: str) -> None:
    reference = parse_text(NOTES)
    p = parse_text(source)
    assert node_lines(p) == node_lines(reference)
    assert [n.attr("name") for n in p.inputs] == ["a", "b"]


def test_bare_expression_is_named_f_and_out() -> None:
    p = parse_text("c = a + b\nc * 2")
    assert p.name == "f" and p.output_names == ["out"]
    assert p.outputs[0].inputs[0].name == "c"


def test_first_name_of_a_shared_node_is_kept() -> None:
    p = parse_text("c = a + b\nd = a + b\nk = d")
    (out,) = p.outputs
    assert out.op is Op.ADD and out.name == "c"
    assert p.output_names == ["k"] and p.name == "k"


def test_reassignment_is_ssa() -> None:
    p = parse_text("a = a * 2\na = a + 1\nb = a * x")
    assert [n.attr("name") for n in p.inputs] == ["a", "x"]
    out = p.outputs[0]
    assert out.op is Op.MUL
    plus, x = out.inputs
    assert plus.op is Op.ADD and x is p.inputs[1]
    times = plus.inputs[0]
    assert times.op is Op.MUL and times.inputs[0] is p.inputs[0]
    assert times.name == "a" and plus.name == "a"
    assert float(evaluate(p, a=3.0, x=5.0)) == (3.0 * 2 + 1) * 5.0


def test_augmented_assignment_means_rebinding() -> None:
    p = parse_text("y = a\ny += b\ny *= 2\ny -= 1\ny /= 4\ny **= 2")
    assert p.name == "y"
    assert float(evaluate(p, a=1.5, b=2.0)) == (((1.5 + 2.0) * 2 - 1) / 4) ** 2


def test_inputs_in_order_of_first_appearance() -> None:
    p = parse_text("t = z * y\nu = t + x + y\nu * z")
    assert [n.attr("name") for n in p.inputs] == ["z", "y", "x"]


def test_name_read_then_assigned_is_an_input() -> None:
    p = parse_text("d = c + 1\nc = a\ne = c * d")
    assert [n.attr("name") for n in p.inputs] == ["c", "a"]
    assert float(evaluate(p, c=2.0, a=10.0)) == 10.0 * 3.0


# ---------------------------------------------------------------------------
# args: order and types


def test_args_sequence_fixes_order_and_keeps_unused() -> None:
    p = parse_text("a * b", ["b", "unused", "a"])
    assert [n.attr("name") for n in p.inputs] == ["b", "unused", "a"]
    assert all(n.dtype is DType.F64 and n.shape == () for n in p.inputs)
    mul = p.outputs[0]
    assert mul.inputs == (p.inputs[2], p.inputs[0])


def test_args_mapping_gives_types() -> None:
    p = parse_text("y = X @ w + b\nsum(relu(y) ** 2)", {"X": "f64[m,n]", "w": "f64[n]", "b": "f64"})
    big_x, w, b = p.inputs
    assert big_x.shape == (Sym.named("m"), Sym.named("n")) and w.shape == (Sym.named("n"),) and b.shape == ()
    out = p.outputs[0]
    assert out.op is Op.SUM and out.shape == ()
    assert p.outputs[0].inputs[0].shape == (Sym.named("m"),)
    rng = np.random.default_rng(0)
    xv, wv = rng.normal(size=(4, 3)), rng.normal(size=3)
    expected = np.sum(np.maximum(xv @ wv + 0.5, 0.0) ** 2)
    assert evaluate(p, X=xv, w=wv, b=0.5) == pytest.approx(expected, rel=1e-14)


def test_literals_take_the_float_dtype_of_their_partner() -> None:
    p = parse_text("2 * x + x ** 3 - relu(x)", {"x": "f32[n]"})
    consts = [n for n in p.nodes() if n.op is Op.CONST]
    assert consts and all(n.dtype is DType.F32 for n in consts)
    assert p.outputs[0].dtype is DType.F32


def test_literal_against_a_mask_is_f64() -> None:
    p = parse_text("(x > 0) * 2", {"x": "f32"})
    mul = p.outputs[0]
    assert mul.inputs[0].dtype is DType.BOOL
    assert mul.inputs[1].op is Op.CONST and mul.inputs[1].dtype is DType.F64
    assert float(mul.inputs[1].value) == 2.0


def test_literals_alone_are_f64_and_minus_is_folded() -> None:
    p = parse_text("-1")
    (out,) = p.outputs
    assert out.op is Op.CONST and out.dtype is DType.F64 and float(out.value) == -1.0
    assert p.inputs == []
    p = parse_text("x * -2.5")
    assert p.outputs[0].inputs[1].op is Op.CONST and float(p.outputs[0].inputs[1].value) == -2.5
    p = parse_text("-x + +x")
    assert p.outputs[0].inputs[0].op is Op.NEG and p.outputs[0].inputs[1] is p.inputs[0]


def test_bound_literal_names_its_constant() -> None:
    p = parse_text("lr = 0.1\nw - lr * g", {"w": "f32", "g": "f32"})
    mul = p.outputs[0].inputs[1]
    lr = mul.inputs[0]
    assert lr.op is Op.CONST and lr.dtype is DType.F32 and lr.name == "lr"


def test_free_name_not_in_args_is_refused_with_its_position() -> None:
    with pytest.raises(ParseError) as info:
        parse_text("y = a * 2\nz = y + c", ["a", "b"])
    err = info.value
    assert (err.line, err.column, err.text) == (2, 9, "c")
    assert "'c'" in err.message and "a, b" in err.message
    assert err.source_line == "z = y + c"


@pytest.mark.parametrize(("args", "fragment"), [
    ({"x": "f64[n"}, "bad type"),
    ({"x": "f16"}, "bad type"),
    ({"x": "f64[n+1]"}, "bad type"),
    (["x", "x"], "twice"),
    (["exp"], "built-in function"),
    (["__x"], "'__'"),
    (["1x"], "not an identifier"),
])
def test_bad_args(args: Any, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_text("x", args)
    assert fragment in str(info.value)


def test_args_must_not_be_a_string_and_source_must_be() -> None:
    with pytest.raises(TypeError):
        parse_text("a * b", "a b")
    with pytest.raises(TypeError):
        parse_text(b"a * b")  # type: ignore[arg-type]


def test_shape_error_carries_the_position() -> None:
    with pytest.raises(ShapeError, match="line 2, column 5") as info:
        parse_text("t = w\ny = X @ t", {"X": "f64[2,3]", "w": "f64[4]"})
    assert "X @ t" in str(info.value)


# ---------------------------------------------------------------------------
# functions


@pytest.mark.parametrize(("name", "op"), [
    ("exp", Op.EXP), ("log", Op.LOG), ("sqrt", Op.SQRT), ("sin", Op.SIN), ("cos", Op.COS), ("tan", Op.TAN),
    ("tanh", Op.TANH), ("abs", Op.ABS), ("sigmoid", Op.SIGMOID),
])
def test_unary_functions(name: str, op: Op) -> None:
    p = parse_text(f"{name}(x)", {"x": "f64[n]"})
    out = p.outputs[0]
    assert out.op is op and out.inputs == (p.inputs[0],) and out.shape == (Sym.named("n"),)


def test_relu_is_max_with_zero() -> None:
    p = parse_text("relu(x)")
    out = p.outputs[0]
    assert out.op is Op.MAX and out.inputs[0] is p.inputs[0]
    zero = out.inputs[1]
    assert zero.op is Op.CONST and float(zero.value) == 0.0 and not np.signbit(zero.value)


def test_max_min_are_left_nested() -> None:
    p = parse_text("max(a, b, c) + min(a, 1)")
    a, b, c = p.inputs
    mx, mn = p.outputs[0].inputs
    assert mx.op is Op.MAX and mx.inputs[1] is c
    assert mx.inputs[0].op is Op.MAX and mx.inputs[0].inputs == (a, b)
    assert mn.op is Op.MIN and mn.inputs[0] is a and float(mn.inputs[1].value) == 1.0


def test_reductions_and_where_and_comparisons() -> None:
    p = parse_text("s = sum(x) / mean(x)\nwhere(x >= s, x, -x)", {"x": "f64[n]"})
    out = p.outputs[0]
    assert out.op is Op.WHERE and out.shape == (Sym.named("n"),)
    cond = out.inputs[0]
    assert cond.op is Op.GE and cond.dtype is DType.BOOL
    s = cond.inputs[1]
    assert s.name == "s" and s.shape == ()
    assert [i.op for i in s.inputs] == [Op.SUM, Op.MEAN]
    xv = np.array([1.0, -2.0, 3.0, 0.5])
    sv = np.sum(xv) / np.mean(xv)
    np.testing.assert_array_equal(evaluate(p, x=xv), np.where(xv >= sv, xv, -xv))


@pytest.mark.parametrize(("source", "op"), [
    ("a < b", Op.LT), ("a <= b", Op.LE), ("a > b", Op.GT), ("a >= b", Op.GE), ("a == b", Op.EQ), ("a != b", Op.NE),
])
def test_single_comparisons(source: str, op: Op) -> None:
    out = parse_text(source).outputs[0]
    assert out.op is op and out.dtype is DType.BOOL


def test_max_of_one_argument_is_a_reduction() -> None:
    out = parse_text("y = 2 * max(x) + min(x, axis=-1, keepdims=True)", {"x": "f64[m,n]"}).outputs[0]
    (total, low) = out.inputs
    assert total.inputs[1].op is Op.AMAX and total.inputs[1].attr("axis") == (0, 1)
    assert low.op is Op.AMIN and low.attr("axis") == (1,) and low.attr("keepdims") is True


@pytest.mark.parametrize(("source", "fragment"), [
    ("exp(a, b)", "exp() takes exactly 1 argument, got 2"),
    ("sum()", "sum() takes exactly 1 argument, got 0"),
    ("relu(a, b)", "relu() takes exactly 1 argument, got 2"),
    ("max()", "max() takes 1 argument (a reduction) or 2 or more (elementwise), got 0"),
    ("where(a, b)", "where() takes exactly 3 arguments"),
])
def test_wrong_argument_count(source: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_text(source)
    assert fragment in info.value.message
    assert (info.value.line, info.value.column, info.value.text) == (1, 1, source)


# ---------------------------------------------------------------------------
# refusals, with their positions


REFUSED = [
    # (source, line, column, offending text, message fragment)
    ("y = np.exp(x)", 1, 5, "np.exp", "bare name 'exp(...)'"),
    ("c = a + b\nd = foo(c)", 2, 5, "foo", "unknown function 'foo'"),
    ("y = x.T", 1, 5, "x.T", "attribute access"),
    ("y = exp(a)(b)", 1, 5, "exp(a)", "only the known functions"),
    ("y = (lambda t: t)(x)", 1, 6, "lambda t: t", "lambda"),
    ("y = exp(x=a)", 1, 9, "x=a", "keyword arguments"),
    ("y = exp(*x)", 1, 9, "*x", "starred"),
    ("y = x[a] + 1", 1, 7, "a", "integer literal"),
    ("y = 1 + x[1:k]", 1, 13, "k", "integer literal"),
    ("y = [x, x]", 1, 5, "[x, x]", "lists"),
    ("y = (x, x)", 1, 5, "(x, x)", "tuples"),
    ("y = sum([t for t in x])", 1, 9, "[t for t in x]", "comprehensions"),
    ("y = 'abc'", 1, 5, "'abc'", "strings"),
    ("y = f'{x}'", 1, 5, "f'{x}'", "strings"),
    ("y = b'x'", 1, 5, "b'x'", "strings"),
    ("y = True * x", 1, 5, "True", "True"),
    ("y = None", 1, 5, "None", "only numbers"),
    ("y = 2j * x", 1, 5, "2j", "complex"),
    ("y = a if b else c", 1, 5, "a if b else c", "where(c, a, b)"),
    ("y = a and b", 1, 5, "a and b", "'and'"),
    ("y = (z := a)", 1, 6, "z := a", ":="),
    ("y = a // b", 1, 5, "a // b", "//"),
    ("y = a % b", 1, 5, "a % b", "%"),
    ("y = ~a", 1, 5, "~a", "~"),
    ("y = not a", 1, 5, "not a", "not"),
    ("y = a is b", 1, 5, "a is b", "'is'"),
    ("y = a < b < c", 1, 5, "a < b < c", "chained comparisons"),
    ("import os", 1, 1, "import os", "'import'"),
    ("c = a\nif c:\n    c = 1\nc", 2, 1, "if c:\n    c = 1", "where(c, a, b)"),
    ("def f(x): return x", 1, 1, "def f(x): return x", "'def'"),
    ("c = a\nfor i in c: pass", 2, 1, "for i in c: pass", "'for'"),
    ("a, b = x", 1, 1, "a, b", "tuple targets"),
    ("a = b = x", 1, 1, "a = b = x", "chained assignment"),
    ("x.y = 1", 1, 1, "x.y", "plain name"),
    ("x[0] = 1", 1, 1, "x[0]", "plain name"),
    ("c: float = a", 1, 1, "c: float = a", "annotated"),
    ("a //= b", 1, 1, "a //= b", "//="),
    ("exp = a + b", 1, 1, "exp", "cannot be assigned"),
    ("y = __builtins__", 1, 5, "__builtins__", "'__'"),
    ("__x = a", 1, 1, "__x", "'__'"),
    ("y = exp * 2", 1, 5, "exp", "is a function"),
    ("c = a + b\nc\nd = c", 2, 1, "c", "only the last line"),
    ("c = a + b; c; d = c", 1, 12, "c", "only the last line"),
    # non-ASCII names: the column counts characters, not UTF-8 bytes
    ("α = β + γ.δ", 1, 9, "γ.δ", "attribute access"),
    # an indented block: the column is the column in the text as given
    ("\n    c = a + b\n    d = c[b]\n", 3, 11, "b", "integer literal"),
]


@pytest.mark.parametrize(("source", "line", "column", "text", "fragment"), REFUSED)
def test_refused_constructs(source: str, line: int, column: int, text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_text(source)
    err = info.value
    assert (err.line, err.column, err.text) == (line, column, text)
    assert fragment in err.message
    assert err.source_line == source.split("\n")[line - 1]
    assert isinstance(err, DiffcError)
    assert f"line {line}, column {column}" in str(err)


@pytest.mark.parametrize(("source", "line", "column", "text"), [
    ("a +", 1, 4, "a +"),
    ("x = a\n\n  # comment\ny = x + @", 4, 9, "@"),
    ("a = 1\nb = = 2", 2, 5, "="),
    ("    a * (b +\n    c = 2", 1, 9, "("),
])
def test_syntax_errors_become_parse_errors(source: str, line: int, column: int, text: str) -> None:
    with pytest.raises(ParseError, match="syntax") as info:
        parse_text(source)
    err = info.value
    assert (err.line, err.column, err.text) == (line, column, text)
    assert err.source_line == source.split("\n")[line - 1]


@pytest.mark.parametrize("source", ["", "   \n\n", "# only a comment\n"])
def test_empty_input(source: str) -> None:
    with pytest.raises(ParseError, match="empty"):
        parse_text(source)


# ---------------------------------------------------------------------------
# safety: the text is parsed, never run


def test_never_eval_or_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec called on user text")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert float(evaluate(parse_text("c = a + b\nc * 2"), a=1.0, b=2.0)) == 6.0
    for source in ["__import__('os')", "__import__('os').system('echo hi')", "open('x')", "'open(\"x\")'",
                   "eval('1')", "exec('x = 1')", "getattr(a, 'b')", "a.__class__", "().__class__"]:
        with pytest.raises(ParseError):
            parse_text(source)


# ---------------------------------------------------------------------------
# depth: Python's parser limits, our iterative walk


def test_deep_nesting_suggests_assignment_lines() -> None:
    deep = "a * (" * 300 + "a" + ")" * 300
    with pytest.raises(ParseError, match="assignment lines") as info:
        parse_text(deep)
    assert info.value.line == 1 and info.value.column > 1
    parens = "(" * 500 + "a" + ")" * 500
    with pytest.raises(ParseError, match="assignment lines"):
        parse_text(parens)
    # the suggested rewrite works and computes the same thing
    lines = ["t0 = a"] + [f"t{i} = a * t{i - 1}" for i in range(1, 301)]
    p = parse_text("\n".join(lines))
    assert float(evaluate(p, a=1.001)) == pytest.approx(1.001 ** 301, rel=1e-12)


def test_long_assignment_chain_under_default_recursion_limit() -> None:
    assert sys.getrecursionlimit() <= 1000 or pytest.skip("recursion limit raised by the environment")
    n = 20_000
    lines = ["t0 = a"] + [f"t{i} = t{i - 1} * 1.0001 + a" for i in range(1, n + 1)]
    p = parse_text("\n".join(lines))
    assert p.name == f"t{n}"
    nodes = p.nodes()
    assert len(nodes) == 2 * n + 2  # a, const 1.0001, and a mul and an add per line
    assert p.outputs[0].name == f"t{n}"
    expected = 0.5
    for _ in range(n):
        expected = expected * 1.0001 + 0.5
    assert float(evaluate(p, a=0.5)) == expected


def test_long_flat_sum() -> None:
    short = " + ".join(f"x{i % 7}" for i in range(2000))
    p = parse_text(short)
    assert len(p.inputs) == 7
    inputs = {f"x{i}": float(i) for i in range(7)}
    expected = 0.0
    for i in range(2000):
        expected += float(i % 7)
    assert float(evaluate(p, **inputs)) == expected
    long = " + ".join(f"x{i % 7}" for i in range(20_000))
    try:
        ast.parse(long)
    except (RecursionError, MemoryError, SyntaxError):
        with pytest.raises(ParseError, match="assignment lines"):
            parse_text(long)
    else:  # a Python whose parser takes it: so must we
        assert len(parse_text(long).nodes()) == 7 + 19_999


def test_long_unary_chain() -> None:
    p = parse_text("-" * 1001 + "x")  # a literal would fold; on a name it is 1001 negations
    assert float(evaluate(p, x=2.0)) == -2.0
    assert sum(n.op is Op.NEG for n in p.nodes()) == 1001


# ---------------------------------------------------------------------------
# random expression trees: text -> IR -> NumPy equals the tree -> NumPy
#
# A tree is a tuple: ("leaf", text), ("bin", op, l, r), ("neg", x), ("pos", x),
# ("call", name, [args]) or ("where", cmp, l, r, a, b). The helpers recurse: the
# trees are small (hypothesis caps them), unlike the text under test.

SCALARS = {"a": 0.75, "b": -1.5}
VECTORS = {"x": np.array([0.5, -2.0, 3.0]), "y": np.array([1.25, 0.0, -0.75])}
ARGS = {"a": "f64", "b": "f64", "x": "f64[n]", "y": "f64[n]"}

BIN_TEXT = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
BIN_NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}
CMP_TEXT = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
CMP_NUMPY = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
             "eq": np.equal, "ne": np.not_equal}
CALL_NUMPY = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "tanh": np.tanh, "abs": np.abs, "sigmoid": _sigmoid, "relu": lambda v: np.maximum(v, 0.0),
    "sum": np.sum, "mean": np.mean,
}


def _literal_text(value: float | int) -> str:
    return f"({value!r})" if value < 0 or repr(value).startswith("-") else repr(value)


leaves = st.one_of(
    st.sampled_from(["a", "b", "x", "y"]).map(lambda name: ("leaf", name)),
    st.floats(min_value=-4.0, max_value=4.0, allow_nan=False).map(lambda v: ("leaf", _literal_text(v))),
    st.integers(min_value=0, max_value=4).map(lambda v: ("leaf", repr(v))),
)


def _extend(children: st.SearchStrategy[tuple]) -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.just("bin"), st.sampled_from(sorted(BIN_TEXT)), children, children),
        st.tuples(st.just("neg"), children),
        st.tuples(st.just("pos"), children),
        st.tuples(st.just("call"), st.sampled_from(sorted(CALL_NUMPY)), st.lists(children, min_size=1, max_size=1)),
        st.tuples(st.just("call"), st.sampled_from(["max", "min"]), st.lists(children, min_size=2, max_size=4)),
        st.tuples(st.just("where"), st.sampled_from(sorted(CMP_TEXT)), children, children, children, children),
    )


trees = st.recursive(leaves, _extend, max_leaves=14)


def tree_text(tree: tuple) -> str:
    kind = tree[0]
    if kind == "leaf":
        return tree[1]
    if kind == "bin":
        return f"({tree_text(tree[2])} {BIN_TEXT[tree[1]]} {tree_text(tree[3])})"
    if kind in ("neg", "pos"):
        return f"({'-' if kind == 'neg' else '+'}{tree_text(tree[1])})"
    if kind == "call":
        return f"{tree[1]}({', '.join(tree_text(t) for t in tree[2])})"
    _, cmp, left, right, a, b = tree
    return f"where({tree_text(left)} {CMP_TEXT[cmp]} {tree_text(right)}, {tree_text(a)}, {tree_text(b)})"


def tree_lines(tree: tuple, lines: list[str]) -> str:
    """The same tree as assignment lines, one per operation; returns the text of its value."""
    kind = tree[0]
    if kind == "leaf":
        return tree[1]
    if kind == "bin":
        rhs = f"{tree_lines(tree[2], lines)} {BIN_TEXT[tree[1]]} {tree_lines(tree[3], lines)}"
    elif kind in ("neg", "pos"):
        rhs = f"{'-' if kind == 'neg' else '+'}{tree_lines(tree[1], lines)}"
    elif kind == "call":
        rhs = f"{tree[1]}({', '.join(tree_lines(t, lines) for t in tree[2])})"
    else:
        _, cmp, left, right, a, b = tree
        compare = f"{tree_lines(left, lines)} {CMP_TEXT[cmp]} {tree_lines(right, lines)}"
        cond = f"t{len(lines)}"  # its own line, so nodes are built in the one-line order
        lines.append(f"{cond} = {compare}")
        rhs = f"where({cond}, {tree_lines(a, lines)}, {tree_lines(b, lines)})"
    name = f"t{len(lines)}"
    lines.append(f"{name} = {rhs}")
    return name


def tree_numpy(tree: tuple) -> Any:
    kind = tree[0]
    if kind == "leaf":
        text = tree[1]
        if text in SCALARS:
            return np.float64(SCALARS[text])
        if text in VECTORS:
            return VECTORS[text]
        return np.float64(float(text.strip("()")))
    if kind == "bin":
        return BIN_NUMPY[tree[1]](tree_numpy(tree[2]), tree_numpy(tree[3]))
    if kind == "neg":
        return np.negative(tree_numpy(tree[1]))
    if kind == "pos":
        return tree_numpy(tree[1])
    if kind == "call":
        args = [tree_numpy(t) for t in tree[2]]
        if tree[1] in ("max", "min"):
            fn = np.maximum if tree[1] == "max" else np.minimum
            acc = args[0]
            for v in args[1:]:
                acc = fn(acc, v)
            return acc
        return CALL_NUMPY[tree[1]](args[0])
    _, cmp, left, right, a, b = tree
    return np.where(CMP_NUMPY[cmp](tree_numpy(left), tree_numpy(right)), tree_numpy(a), tree_numpy(b))


@settings(max_examples=300, deadline=None)
@given(trees)
def test_random_trees_evaluate_like_numpy(tree: tuple) -> None:
    with np.errstate(all="ignore"):
        expected = tree_numpy(tree)
    one_line = parse_text(tree_text(tree), ARGS)
    got = evaluate(one_line, **SCALARS, **VECTORS)
    np.testing.assert_array_equal(got, expected)
    assert np.shape(got) == np.shape(expected)
    if tree[0] != "leaf":
        lines: list[str] = []
        tree_lines(tree, lines)
        many = parse_text("\n".join(lines), ARGS)
        assert node_lines(many) == node_lines(one_line)
        assert many.name == f"t{len(lines) - 1}"


# ---------------------------------------------------------------------------
# through diffc.compile (NumPy back end): text in, gradient out


def _central_differences(fn: Any, point: list[float], h: float = 1e-6) -> list[float]:
    out = []
    for i in range(len(point)):
        up, down = list(point), list(point)
        up[i] += h
        down[i] -= h
        out.append((fn(*up) - fn(*down)) / (2 * h))
    return out


def test_compile_notes_example() -> None:
    api = pytest.importorskip("diffc.api")
    f = api.compile(NOTES, backend="numpy")
    assert f(2.0, 3.0) == pytest.approx(20.0)
    # e = (a + b)(b + 1): de/da = b + 1, de/db = (b + 1) + (a + b)
    assert f.grad(2.0, 3.0) == pytest.approx((4.0, 9.0))
    assert "c = a + b" in f.source


def test_compile_text_gradient_matches_finite_differences() -> None:
    api = pytest.importorskip("diffc.api")
    source = "u = sigmoid(a * b) + log(b) * a ** 2\nv = max(u, tanh(a), b / 10)\nsqrt(v) / (1 + abs(a - b))"
    f = api.compile(source, args=["a", "b"], backend="numpy")
    point = [0.7, 1.3]
    reference = _central_differences(lambda a, b: float(f(a, b)), point)
    assert f.grad(*point) == pytest.approx(tuple(reference), rel=1e-6, abs=1e-8)
