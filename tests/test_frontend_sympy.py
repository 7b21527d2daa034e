"""The SymPy front end and the canonical-order pass.

References: the IR is evaluated by a tiny NumPy interpreter written here
(one NumPy function per op, run over ``program.nodes()`` in order) and
compared with ``sympy.lambdify`` of the same expression; structure is
checked against hand-written op lists.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from diffc.errors import DiffcError, ParseError, UnsupportedError
from diffc.frontends.sympy import from_sympy
from diffc.ir import COMMUTATIVE, DType, Graph, Node, Op, Program, Sym
from diffc.passes.canonical import canonicalize

a, b, w, x, y, z = sp.symbols("a b w x y z", real=True)

# ---------------------------------------------------------------------------
# a tiny reference interpreter for the IR

EVAL = {
    Op.NEG: np.negative, Op.EXP: np.exp, Op.LOG: np.log, Op.SQRT: np.sqrt, Op.SIN: np.sin,
    Op.COS: np.cos, Op.TAN: np.tan, Op.TANH: np.tanh, Op.ABS: np.abs,
    Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide, Op.POW: np.power,
    Op.MAX: np.maximum, Op.MIN: np.minimum, Op.GT: np.greater, Op.GE: np.greater_equal,
    Op.LT: np.less, Op.LE: np.less_equal, Op.EQ: np.equal, Op.NE: np.not_equal, Op.WHERE: np.where,
}


def evaluate(program: Program, env: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The output, and per point the largest finite |value| of any node (the scale of rounding errors)."""
    values: dict[Node, np.ndarray] = {}
    scale = np.zeros(np.broadcast(*env.values()).shape) if env else np.zeros(())
    with np.errstate(all="ignore"):
        for node in program.nodes():
            if node.op is Op.INPUT:
                values[node] = np.asarray(env[node.attr("name")], dtype=float)
            elif node.op is Op.CONST:
                values[node] = node.value
            else:
                values[node] = EVAL[node.op](*(values[i] for i in node.inputs))
            v = np.abs(values[node].astype(float))
            scale = np.maximum(scale, np.where(np.isfinite(v), v, 0.0))
    return values[program.outputs[0]], scale


def reference(expr: sp.Expr, symbols: list[sp.Symbol], env: dict[str, np.ndarray]) -> np.ndarray:
    fn = sp.lambdify(symbols, expr, "numpy")
    with np.errstate(all="ignore"):
        out = fn(*(env[s.name] for s in symbols))
    return np.broadcast_to(np.asarray(out, dtype=float), np.broadcast(*env.values()).shape)


def assert_close(got: np.ndarray, want: np.ndarray, scale: np.ndarray, rtol: float = 1e-9) -> None:
    """Equal up to rounding at the scale of the largest intermediate; nan and inf must match exactly."""
    got, want = np.broadcast_arrays(np.asarray(got, dtype=float), want)
    both_nan = np.isnan(got) & np.isnan(want)
    same_inf = np.isinf(got) & (got == want)
    near = np.abs(got - want) <= rtol * (1.0 + scale)
    assert np.all(both_nan | same_inf | near), (got, want)


def ops(program: Program) -> list[str]:
    """The ops of the computed nodes, in order (leaves left out)."""
    return [n.op.value for n in program.nodes() if n.op not in (Op.INPUT, Op.CONST, Op.DIM)]


def points(names: list[str], seed: int = 0, n: int = 16, low: float = 0.3, high: float = 2.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(low, high, n) * rng.choice([-1.0, 1.0], n) for name in names}


def check_values(expr: sp.Expr, env: dict[str, np.ndarray] | None = None) -> Program:
    symbols = sorted(expr.free_symbols, key=str)
    program = from_sympy(expr)
    env = env or points([s.name for s in symbols])
    got, scale = evaluate(program, env)
    assert_close(got, reference(expr, symbols, env), scale)
    return program


# ---------------------------------------------------------------------------
# structure


def test_a_plus_b_times_b_plus_1() -> None:
    p = from_sympy((a + b) * (b + 1))
    assert [n.attr("name") for n in p.inputs] == ["a", "b"]
    assert p.output_names == ["out"] and p.name == "f"
    out = p.outputs[0]
    assert out.op is Op.MUL and out.dtype is DType.F64 and out.shape == ()
    sums = {tuple(i.op for i in s.inputs): s for s in out.inputs}
    assert set(sums) == {(Op.INPUT, Op.INPUT), (Op.INPUT, Op.CONST)}
    b_plus_1 = sums[(Op.INPUT, Op.CONST)]
    assert b_plus_1.op is Op.ADD and b_plus_1.inputs[0] is p.inputs[1]       # b + 1, not 1 + b
    assert float(b_plus_1.inputs[1].value) == 1.0
    assert sums[(Op.INPUT, Op.INPUT)].inputs == (p.inputs[0], p.inputs[1])   # a + b
    check_values((a + b) * (b + 1))


def test_inputs_sorted_by_name_by_default() -> None:
    p = from_sympy(z * sp.sin(a) + y - b)
    assert [n.attr("name") for n in p.inputs] == ["a", "b", "y", "z"]
    assert [n.id for n in p.inputs] == [0, 1, 2, 3]  # inputs come first in the graph


def test_args_order_types_and_unused_names() -> None:
    p = from_sympy(x + y, args=["y", "x", "unused"])
    assert [n.attr("name") for n in p.inputs] == ["y", "x", "unused"]
    assert p.outputs[0].inputs == (p.inputs[1], p.inputs[0])  # x + y whatever the signature order
    assert p.text().startswith("def f(y: f64, x: f64, unused: f64):")
    q = from_sympy(x * y, args={"x": "f64[n]", "y": "f64"}, name="g")
    assert q.text().startswith("def g(x: f64[n], y: f64):")
    assert q.outputs[0].shape == (Sym.named("n"),)
    assert from_sympy(x - y, args="y, x").inputs[0].attr("name") == "y"


def test_f32_signature_keeps_f32_constants() -> None:
    p = from_sympy(2 * x + 1, args={"x": "f32[n]"})
    assert p.outputs[0].dtype is DType.F32
    assert all(n.dtype is DType.F32 for n in p.nodes() if n.op is Op.CONST)


def test_symbol_missing_from_args() -> None:
    with pytest.raises(ParseError, match="'y'"):
        from_sympy(x + y, args=["x"])
    with pytest.raises(DiffcError, match="'z'"):
        from_sympy(x + z, args={"x": "f64"})


def test_bad_args() -> None:
    with pytest.raises(ParseError, match="twice"):
        from_sympy(x, args=["x", "x"])
    with pytest.raises(ParseError, match="'x'"):
        from_sympy(x, args={"x": "f64[n+]"})
    with pytest.raises(TypeError, match="text front end"):
        from_sympy("x + 1")
    with pytest.raises(TypeError):
        from_sympy(3.0)


@pytest.mark.parametrize(("expr", "expected"), [
    (x + y, ["add"]),
    (x - y, ["sub"]),
    (y - x, ["sub"]),
    (-x, ["neg"]),
    (-x * y, ["mul", "neg"]),
    (x / y, ["div"]),
    (-x / y, ["div", "neg"]),
    (x / (2 * y), ["mul", "div"]),
    (3 * x / 2, ["mul", "div"]),
    (-x / 2, ["div", "neg"]),
    (x - y / 2, ["div", "sub"]),
    (x - 2 * y, ["mul", "sub"]),
    (1 - x - y, ["sub", "sub"]),
    (-x - y, ["add", "neg"]),
    (-(w * x + b), ["mul", "add", "neg"]),
    (x * y * z, ["mul", "mul"]),
    (x ** 3, ["pow"]),
    (x ** y, ["pow"]),
    (1 / x, ["div"]),
    (x ** -2, ["pow", "div"]),
    (sp.sqrt(x), ["sqrt"]),
    (1 / sp.sqrt(x), ["sqrt", "div"]),
    (x ** sp.Rational(3, 2), ["pow"]),
    (sp.exp(x), ["exp"]),
    (sp.Pow(sp.E, x, evaluate=False), ["exp"]),
    (sp.log(x), ["log"]),
    (sp.sin(x), ["sin"]),
    (sp.cos(x), ["cos"]),
    (sp.tan(x), ["tan"]),
    (sp.tanh(x), ["tanh"]),
    (sp.Abs(x), ["abs"]),
    (sp.Max(x, y), ["max"]),
    (sp.Min(x, y, z), ["min", "min"]),
    (sp.Max(x, 0), ["max"]),
    (sp.pi * x + sp.E, ["mul", "add"]),
    (x + sp.Rational(1, 2), ["add"]),
    (sp.Float(0.25) * x, ["mul"]),
    (sp.Piecewise((x, x > 1), (y, True)), ["gt", "where"]),
    (sp.Piecewise((x, x >= 1), (y, True)), ["ge", "where"]),
    (sp.Piecewise((x, x < 1), (y, True)), ["lt", "where"]),
    (sp.Piecewise((x, x <= 1), (y, True)), ["le", "where"]),
    (sp.Piecewise((x, sp.Eq(x, y)), (y + 1, True)), ["eq", "add", "where"]),
    (sp.Piecewise((x, sp.Ne(x, 1)), (y, True)), ["ne", "where"]),
    (sp.Piecewise((x, x > 1), (y, x < -1), (0, True)), ["gt", "lt", "where", "where"]),
])
def test_each_supported_form(expr: sp.Expr, expected: list[str]) -> None:
    program = check_values(expr, points(["b", "w", "x", "y", "z"], seed=1, low=0.5, high=2.0))
    assert sorted(ops(program)) == sorted(expected)


def test_canonical_forms_map_back_to_idiomatic_ops() -> None:
    sub = from_sympy(x - y).outputs[0]
    assert sub.op is Op.SUB and [i.attr("name") for i in sub.inputs] == ["x", "y"]
    sub = from_sympy(y - x).outputs[0]  # SymPy stores (-x, y): the positive term goes first
    assert sub.op is Op.SUB and [i.attr("name") for i in sub.inputs] == ["y", "x"]
    div = from_sympy(x / (2 * y)).outputs[0]
    assert div.op is Op.DIV and div.inputs[1].op is Op.MUL
    assert float(div.inputs[1].inputs[0].value) == 2.0  # a coefficient stays first: 2*y
    neg = from_sympy(-(w * x + b)).outputs[0]  # SymPy distributes to -b - w*x; we undo it
    assert neg.op is Op.NEG and neg.inputs[0].op is Op.ADD
    rsqrt = from_sympy(1 / sp.sqrt(x)).outputs[0]
    assert rsqrt.op is Op.DIV and float(rsqrt.inputs[0].value) == 1.0 and rsqrt.inputs[1].op is Op.SQRT
    power = from_sympy(x ** 3).outputs[0]
    assert power.op is Op.POW and power.inputs[1].dtype is DType.F64 and float(power.inputs[1].value) == 3.0
    relu = from_sympy(sp.Max(0, x)).outputs[0]
    assert relu.op is Op.MAX and relu.inputs[0].op is Op.INPUT and relu.inputs[1].op is Op.CONST


@pytest.mark.parametrize("expr", [
    sp.Piecewise((x, x > 0), (0, True)),
    sp.Piecewise((x, sp.StrictLessThan(0, x)), (0, True)),
    sp.Piecewise((0, x <= 0), (x, True)),
    sp.Piecewise((0, sp.GreaterThan(0, x)), (x, True)),
])
def test_piecewise_relu_is_max(expr: sp.Expr) -> None:
    program = check_values(expr, {"x": np.array([-2.0, -0.5, 0.0, 0.5, 3.0])})
    out = program.outputs[0]
    assert out.op is Op.MAX and out.inputs[0] is program.inputs[0] and float(out.inputs[1].value) == 0.0


def test_piecewise_relu_of_expression() -> None:
    program = check_values(sp.Piecewise((w * x + b, w * x + b > 0), (0, True)))
    assert program.outputs[0].op is Op.MAX and program.outputs[0].inputs[0].op is Op.ADD


@pytest.mark.parametrize("expr", [
    sp.Piecewise((x, x >= 0), (0, True)),   # slope 1 at 0: not diffc's relu, stays a where
    sp.Piecewise((0, x < 0), (x, True)),
    sp.Piecewise((x, x > 1), (0, True)),
    sp.Piecewise((y, x > 0), (0, True)),
])
def test_piecewise_near_relu_stays_where(expr: sp.Expr) -> None:
    program = check_values(expr, {"x": np.array([-2.0, 0.0, 0.5, 1.0, 3.0]), "y": np.array([1.0, 2, 3, 4, 5])})
    assert program.outputs[0].op is Op.WHERE


@pytest.mark.parametrize(("expr", "name"), [
    (sp.sinh(x), "sinh"),
    (sp.I * x, "ImaginaryUnit"),
    (sp.atan2(x, y), "atan2"),
    (sp.Function("sigmoid")(x), "sigmoid"),
    (sp.Piecewise((x, (x > 0) & (y > 0)), (0, True)), "And"),
    (sp.floor(x), "floor"),
    (sp.Derivative(sp.Function("g")(x), x), "Derivative"),
])
def test_unsupported_class_is_named(expr: sp.Expr, name: str) -> None:
    with pytest.raises(UnsupportedError, match=name):
        from_sympy(expr)


def test_unsupported_numbers_and_piecewise() -> None:
    with pytest.raises(UnsupportedError, match="True"):
        from_sympy(sp.Piecewise((x, x > 0), (y, x < -1)))
    with pytest.raises(UnsupportedError, match="Infinity"):
        from_sympy(x + sp.oo)
    with pytest.raises(UnsupportedError, match="NaN"):
        from_sympy(sp.Add(x, sp.nan, evaluate=False))


def test_import_diffc_does_not_import_sympy() -> None:
    code = "import sys, diffc, diffc.ir, diffc.errors; assert 'sympy' not in sys.modules, 'sympy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------
# depth: the walk is iterative

DEPTH = 20_000  # SymPy builds this with evaluate=False; evaluated sin(sin(...)) fails near 1,000 in SymPy itself


def test_deep_expression_converts_under_default_recursion_limit() -> None:
    assert sys.getrecursionlimit() <= 10_000
    expr: sp.Expr = x
    for i in range(DEPTH):
        if i % 4 == 0:
            expr = sp.sin(expr, evaluate=False)
        elif i % 4 == 1:
            expr = sp.Add(expr, y, evaluate=False)
        elif i % 4 == 2:
            expr = sp.Mul(expr, sp.Rational(1, 2), evaluate=False)
        else:
            expr = sp.Add(expr, sp.Integer(-1), evaluate=False)
    program = from_sympy(expr)
    assert len(program.nodes()) == DEPTH + 4  # one node per level, inputs x and y, constants 2 (x/2) and 1 (x - 1)
    counts = {op: ops(program).count(op) for op in ("sin", "add", "div", "sub")}
    assert counts == {"sin": DEPTH // 4, "add": DEPTH // 4, "div": DEPTH // 4, "sub": DEPTH // 4}
    got, _ = evaluate(program, {"x": np.array([0.3]), "y": np.array([0.7])})
    want = 0.3
    for _ in range(DEPTH // 4):
        want = (np.sin(want) + 0.7) / 2 - 1
    assert got[0] == pytest.approx(want, rel=1e-12)
    again = canonicalize(program)
    assert len(again.nodes()) == len(program.nodes())


# ---------------------------------------------------------------------------
# canonicalize


def _build(g: Graph, swap: bool) -> Node:
    a_, b_ = g.input("a"), g.input("b")
    one = g.const(1.0)
    s = g.apply(Op.ADD, *((b_, a_) if swap else (a_, b_)))
    t = g.apply(Op.ADD, *((one, b_) if swap else (b_, one)))
    m = g.apply(Op.MUL, *((t, s) if swap else (s, t)))
    d = g.apply(Op.SUB, m, a_)
    return g.apply(Op.MAX, *((g.const(0.0), d) if swap else (d, g.const(0.0))))


def test_canonicalize_makes_operand_order_variants_identical() -> None:
    programs = []
    for swap in (False, True):
        g = Graph()
        out = _build(g, swap)
        programs.append(Program(g, [g.input("a"), g.input("b")], [out], ["out"]))
    assert programs[0].text() != programs[1].text()
    before = programs[1].text()
    texts = [canonicalize(p).text() for p in programs]
    assert texts[0] == texts[1]
    assert programs[1].text() == before  # pure: the input program is untouched
    assert canonicalize(canonicalize(programs[1])).text() == texts[1]  # idempotent
    assert "sub %" in texts[0]  # ops are not rewritten


def test_canonicalize_keeps_sub_div_and_comparison_order() -> None:
    g = Graph()
    a_, b_ = g.input("a"), g.input("b")
    p = Program(g, [a_, b_], [a_ - b_, b_ / a_, g.apply(Op.LT, b_, a_)])
    q = canonicalize(p)
    assert [tuple(i.attr("name") for i in o.inputs) for o in q.outputs] == [("a", "b"), ("b", "a"), ("b", "a")]


def test_canonicalize_carries_names_shapes_and_signature() -> None:
    g = Graph()
    u = g.input("u", DType.F64, (Sym.named("n"),))
    v = g.input("v", DType.F64, (Sym.named("m"),))
    s = g.apply(Op.ADD, v, u)  # unifies m with n
    g.names[s] = "s"
    p = Program(g, [v, u], [s], ["total"], name="h")
    q = canonicalize(p)
    assert q.graph is not g and q.name == "h" and q.output_names == ["total"]
    assert [n.attr("name") for n in q.inputs] == ["v", "u"]
    assert q.outputs[0].name == "s"
    assert q.outputs[0].inputs == (q.inputs[1], q.inputs[0])  # u before v: sorted by name
    assert q.outputs[0].shape == p.outputs[0].shape
    assert q.text().splitlines()[0] == p.text().splitlines()[0]


def test_three_front_ends_agree_after_canonicalize() -> None:
    text = pytest.importorskip("diffc.frontends.text")
    cases = [
        ((a + b) * (b + 1), "(a + b) * (b + 1)", ["a", "b"]),
        (sp.log(1 + sp.exp(-(w * x + b))), "log(1 + exp(-(w*x + b)))", ["w", "x", "b"]),
        (sp.Max(x, 0) * y, "max(x, 0) * y", ["x", "y"]),
        (x / (2 * y) - 1 / sp.sqrt(x), "x / (2*y) - 1/sqrt(x)", ["x", "y"]),
    ]
    for expr, source, names in cases:
        ours = canonicalize(from_sympy(expr, names)).text()
        theirs = canonicalize(text.parse_text(source, names)).text()
        assert ours == theirs, (source, ours, theirs)


# ---------------------------------------------------------------------------
# hypothesis: random expressions over the supported ops

SYMS = [x, y, z]
SUPPORTED = (sp.Symbol, sp.Number, sp.NumberSymbol, sp.Add, sp.Mul, sp.Pow, sp.exp, sp.log, sp.sin, sp.cos,
             sp.tan, sp.tanh, sp.Abs, sp.Max, sp.Min, sp.Piecewise, sp.core.relational.Relational,
             sp.logic.boolalg.BooleanTrue, sp.functions.elementary.piecewise.ExprCondPair)

leaves = st.one_of(st.sampled_from(SYMS), st.sampled_from([sp.Integer(1), sp.Integer(2), sp.Integer(3),
                                                           sp.Rational(1, 2), sp.Float(0.75), sp.pi]))


def _grow(children: st.SearchStrategy[sp.Expr]) -> st.SearchStrategy[sp.Expr]:
    """Well-conditioned building blocks, so that rounding cannot separate IR from lambdify."""
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda t: t[0] + t[1]),
        pair.map(lambda t: t[0] - t[1]),
        pair.map(lambda t: t[0] * t[1]),
        pair.map(lambda t: t[0] / (t[1] ** 2 + 1)),
        children.map(lambda e: -e),
        children.map(lambda e: e ** 2),
        children.map(lambda e: e ** 3),
        children.map(lambda e: sp.exp(sp.tanh(e))),
        children.map(lambda e: sp.log(sp.Abs(e) + 1)),
        children.map(lambda e: sp.sqrt(sp.Abs(e) + 1)),
        children.map(lambda e: 1 / sp.sqrt(sp.Abs(e) + 1)),
        children.map(sp.sin), children.map(sp.cos), children.map(sp.tanh), children.map(sp.Abs),
        children.map(lambda e: sp.tan(sp.tanh(e))),
        pair.map(lambda t: sp.Max(*t)),
        pair.map(lambda t: sp.Min(*t)),
        children.map(lambda e: sp.Piecewise((e, e > 0), (0, True))),
        st.tuples(children, children, st.sampled_from(SYMS), st.sampled_from([0, 1, -1])).map(
            lambda t: sp.Piecewise((t[0], t[2] > t[3]), (t[1], True))),
        st.tuples(children, children, children, st.sampled_from(SYMS)).map(
            lambda t: sp.Piecewise((t[0], t[3] < -1), (t[1], t[3] <= 1), (t[2], True))),
    )


expressions = st.recursive(leaves, _grow, max_leaves=8)


def _all_supported(expr: sp.Basic) -> bool:
    return all(isinstance(node, SUPPORTED) for node in sp.preorder_traversal(expr))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions, seed=st.integers(0, 2**32 - 1))
def test_random_expressions_match_lambdify(expr: sp.Expr, seed: int) -> None:
    assume(_all_supported(expr))  # SymPy's own rewriting may introduce e.g. sign(); that is not our bug
    env = points(["x", "y", "z"], seed=seed, low=0.05, high=2.5)
    program = from_sympy(expr, args=["x", "y", "z"])
    got, scale = evaluate(program, env)
    assert_close(got, reference(expr, SYMS, env), scale, rtol=1e-8)


def _scramble(program: Program, rng: np.random.Generator) -> Program:
    """The same program with commutative operands randomly swapped (inputs created first)."""
    g = Graph()
    new = {n: g.copy_node(n, ()) for n in program.inputs}
    for node in program.nodes():
        if node not in new:
            ins = [new[i] for i in node.inputs]
            if node.op in COMMUTATIVE and rng.random() < 0.5:
                ins.reverse()
            new[node] = g.copy_node(node, ins)
    return Program(g, [new[n] for n in program.inputs], [new[n] for n in program.outputs], program.output_names)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions, seed=st.integers(0, 2**32 - 1))
def test_canonicalize_ignores_commutative_operand_order(expr: sp.Expr, seed: int) -> None:
    assume(_all_supported(expr))
    program = from_sympy(expr, args=["x", "y", "z"])
    scrambled = _scramble(program, np.random.default_rng(seed))
    assert canonicalize(scrambled).text() == canonicalize(program).text()
    env = points(["x", "y", "z"], seed=seed)
    got, scale = evaluate(canonicalize(scrambled), env)
    assert_close(got, evaluate(program, env)[0], scale)


# ---------------------------------------------------------------------------
# gradients through diffc.compile, once the API exists


@pytest.mark.parametrize("expr", [
    (a + b) * (b + 1),
    sp.log(1 + sp.exp(-(a * b + 1))),
    sp.sqrt(a ** 2 + 1) / b - sp.tanh(a) * sp.sin(b),
])
def test_gradient_matches_sympy_diff(expr: sp.Expr) -> None:
    api = pytest.importorskip("diffc.api")
    f = api.compile(expr, args=["a", "b"], backend="numpy")
    vals = (0.7, 1.3)
    grad = f.grad(*vals)
    grad = grad if isinstance(grad, (tuple, list)) else (grad,)
    subs = {a: vals[0], b: vals[1]}
    assert float(f(*vals)) == pytest.approx(float(expr.evalf(subs=subs)), rel=1e-12)
    for symbol, got in zip((a, b), grad, strict=True):
        assert float(got) == pytest.approx(float(sp.diff(expr, symbol).evalf(subs=subs)), rel=1e-10)
