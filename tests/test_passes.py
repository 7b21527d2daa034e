"""The simplifier, read through the IR text it prints and checked against NumPy.

Every algebraic identity of ``diffc.passes.algebra`` gets a test that it
fires (the op disappears from ``Program.text()``) and a test that the
simplified program computes what NumPy computes for the original formula at
±inf, NaN, ±0.0 and ordinary values: an identity may only be applied where it
holds for every float. Then constant folding, CSE by interning, dead code
elimination, purity (a pass never mutates its input) and ``rebuild``'s
``substitute``.

Simplified programs are run by compiling them as hand-built programs with the
NumPy back end: ``diffc.compile(program)`` prints a program's forward function
as it is, so it runs exactly the nodes the simplifier left.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from conftest import program

import diffc
from diffc.ir import DType, Graph, Node, Op, Program
from diffc.passes.algebra import REWRITES
from diffc.passes.canonical import canonicalize
from diffc.passes.fold import MAX_FOLDED_SIZE, fold_constants
from diffc.passes.pipeline import local_rewrite, simplify
from diffc.passes.rebuild import rebuild

SPECIAL = [1.5, -2.25, 0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]




def ops(p: Program) -> list[str]:
    """The ops the printed program still computes (inputs and constants left out)."""
    return [n.op.value for n in p.nodes() if n.op not in (Op.INPUT, Op.CONST)]


def run(p: Program, *args: float) -> float:
    """The program's output at ``args``, computed by its generated NumPy code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return diffc.compile(p, backend="numpy")(*args)


def same_float(got: float, want: float) -> bool:
    """Equal bits, except that any NaN equals any NaN (NumPy's NaN sign is not part of its contract)."""
    if math.isnan(want):
        return math.isnan(got)
    return np.float64(got).tobytes() == np.float64(want).tobytes()


def numpy_value(reference: Callable[..., float], *args: float) -> float:
    with np.errstate(all="ignore"):
        return float(reference(*(np.float64(a) for a in args)))


# ---------------------------------------------------------------------------
# identities: each fires, and keeps NumPy's value at every special float

C = Graph.const  # shorthand below: C(g, 1.0) is g.const(1.0)

# (id, builder over g, x, y, the op that must be gone, NumPy's reference of the ORIGINAL formula)
IDENTITIES: list[tuple[str, Callable[..., Node], str, Callable[..., float]]] = [
    ("x + (-0.0)", lambda g, x, y: x + C(g, -0.0), "add", lambda x, y: x + -0.0),
    ("x - 0.0", lambda g, x, y: x - C(g, 0.0), "sub", lambda x, y: x - 0.0),
    ("-0.0 - x", lambda g, x, y: C(g, -0.0) - x, "sub", lambda x, y: -0.0 - x),
    ("x * 1", lambda g, x, y: x * C(g, 1.0), "mul", lambda x, y: x * 1.0),
    ("1 * x", lambda g, x, y: C(g, 1.0) * x, "mul", lambda x, y: 1.0 * x),
    ("x * -1", lambda g, x, y: x * C(g, -1.0), "mul", lambda x, y: x * -1.0),
    ("x / 1", lambda g, x, y: x / C(g, 1.0), "div", lambda x, y: x / 1.0),
    ("x ** 1", lambda g, x, y: x ** C(g, 1.0), "pow", lambda x, y: x ** 1.0),
    ("-(-x)", lambda g, x, y: -g.apply(Op.NEG, x), "neg", lambda x, y: np.negative(np.negative(x))),
    ("x + (-y)", lambda g, x, y: x + (-y), "add", lambda x, y: x + (-y)),
    ("(-x) + y", lambda g, x, y: (-x) + y, "add", lambda x, y: (-x) + y),
    ("x - (-y)", lambda g, x, y: x - (-y), "sub", lambda x, y: x - (-y)),
    ("(-x) * y", lambda g, x, y: (-x) * y, None, lambda x, y: (-x) * y),
    ("x * (-y)", lambda g, x, y: x * (-y), None, lambda x, y: x * (-y)),
    ("(-x) * (-y)", lambda g, x, y: (-x) * (-y), "neg", lambda x, y: (-x) * (-y)),
    ("(-x) / y", lambda g, x, y: (-x) / y, None, lambda x, y: (-x) / y),
]


@pytest.mark.parametrize("name, build, gone, reference", IDENTITIES, ids=[c[0] for c in IDENTITIES])
def test_identity_fires_and_keeps_numpy_values(name: str, build: Callable[..., Node], gone: str | None,
                                               reference: Callable[..., float]) -> None:
    p = program(build, x="f64", y="f64")
    s = simplify(p)
    assert ops(s) != ops(p), f"{name}: nothing was rewritten:\n{s.text()}"
    if gone is not None:
        assert gone not in ops(s), f"{name}: {gone} is still computed:\n{s.text()}"
    for x in SPECIAL:
        for y in (2.0, -0.0, math.inf, math.nan):
            got, want = run(s, x, y), numpy_value(reference, x, y)
            assert same_float(got, want), f"{name} at x={x}, y={y}: simplified gives {got}, NumPy {want}"


def test_negations_move_outward_and_cancel() -> None:
    """(-x) * y is -(x * y): one neg at the top, where a second one cancels it."""
    s = simplify(program(lambda g, x, y: -((-x) * y), x="f64", y="f64"))
    assert ops(s) == ["mul"]
    s = simplify(program(lambda g, x, y: (-x) / y, x="f64", y="f64"))
    assert ops(s) == ["div", "neg"]


def test_every_rewrite_table_entry_is_a_known_identity() -> None:
    """A new identity in REWRITES needs a test here; this lists the ones tested."""
    tested = {"add_zero", "add_negated", "sub_zero", "sub_negated", "mul_one", "mul_negated", "div_one",
              "div_negated", "neg_neg", "pow_one", "same_layout", "transpose_transpose", "reduce_nothing",
              "unbroadcast_number", "reshape_broadcast_number"}
    assert {rw.__name__ for rws in REWRITES.values() for rw in rws} == tested


def test_a_broadcast_number_stays_a_number() -> None:
    """x * broadcast(s) is x * s, and reshape(broadcast(s)) is broadcast(s): NaN and inf included."""
    def build(g: Graph, x: Node, s: Node) -> Node:
        spread = g.apply(Op.BROADCAST, s, shape=(4,))
        column = g.apply(Op.RESHAPE, spread, shape=(4, 1))
        return g.apply(Op.SUM, x * spread + column * x, axis=(0, 1), keepdims=False)

    p = program(build, x="f64[4]", s="f64")
    simplified = simplify(p)
    assert "reshape" not in ops(simplified) and ops(simplified).count("broadcast") <= 1
    x = np.array([1.0, -2.0, np.inf, 0.5])
    for s_value in (3.0, -0.0, np.nan, np.inf):
        with np.errstate(all="ignore"):
            want = np.sum(x * s_value + np.full((4, 1), s_value) * x)
        got = diffc.compile(simplified, backend="numpy")(x, s_value)
        assert same_float(float(got), float(want))


# the sign of zero: IEEE says 0.0 - 0.0 = +0.0 but -(0.0) = -0.0, and -0.0 + 0.0 = +0.0.
# A sign of zero is visible: 1 / x turns it into +inf or -inf.
ZERO_SIGN = [
    ("x + 0.0 at x = -0.0", lambda g, x: x + C(g, 0.0), lambda x: x + 0.0, -0.0),
    ("0.0 + x at x = -0.0", lambda g, x: C(g, 0.0) + x, lambda x: 0.0 + x, -0.0),
    ("x - (-0.0) at x = -0.0", lambda g, x: x - C(g, -0.0), lambda x: x - -0.0, -0.0),
    ("0.0 - x at x = +0.0", lambda g, x: C(g, 0.0) - x, lambda x: 0.0 - x, 0.0),
]


@pytest.mark.parametrize("name, build, reference, x", ZERO_SIGN, ids=[c[0] for c in ZERO_SIGN])
def test_zero_identities_keep_the_sign_of_zero(name: str, build: Callable[..., Node],
                                               reference: Callable[..., float], x: float) -> None:
    p = program(lambda g, a: C(g, 1.0) / build(g, a), a="f64")
    got, want = run(simplify(p), x), numpy_value(lambda a: 1.0 / reference(a), x)
    assert same_float(got, want), f"{name}: simplified 1/(...) gives {got}, NumPy {want}"


def test_zero_identities_still_fire_where_they_are_exact() -> None:
    """The zero identities that are exact for every float, signed zeros included, do fire."""
    for build in (lambda g, x: x + C(g, -0.0), lambda g, x: x - C(g, 0.0)):
        assert ops(simplify(program(build, x="f64"))) == []
    assert ops(simplify(program(lambda g, x: C(g, -0.0) - x, x="f64"))) == ["neg"]


@pytest.mark.parametrize("name, build, reference", [
    ("x * 0", lambda g, x: x * C(g, 0.0), lambda x: x * 0.0),
    ("0 * x", lambda g, x: C(g, 0.0) * x, lambda x: 0.0 * x),
    ("x * -0.0", lambda g, x: x * C(g, -0.0), lambda x: x * -0.0),
    ("x - x", lambda g, x: x - x, lambda x: x - x),
    ("x / x", lambda g, x: x / x, lambda x: x / x),
    ("x ** 0", lambda g, x: x ** C(g, 0.0), lambda x: x ** 0.0),
    ("0 / x", lambda g, x: C(g, 0.0) / x, lambda x: 0.0 / x),
])
def test_identities_that_break_on_inf_or_nan_are_not_applied(name: str, build: Callable[..., Node],
                                                             reference: Callable[..., float]) -> None:
    """x * 0 is NaN at x = inf, like NumPy: it must stay a multiplication, never a constant 0."""
    p = program(build, x="f64")
    s = simplify(p)
    assert ops(s) == ops(p), f"{name} was rewritten:\n{s.text()}"
    for x in SPECIAL:
        got, want = run(s, x), numpy_value(reference, x)
        assert same_float(got, want), f"{name} at {x}: {got} vs NumPy {want}"
    assert math.isnan(run(s, math.inf)) == math.isnan(numpy_value(reference, math.inf))


def test_x_times_zero_at_inf_is_nan_through_the_whole_pipeline() -> None:
    """The user-visible form: the value and the gradient of a * 0.0 + b at a = inf."""
    f = diffc.compile("a * 0.0 + b", backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, (da, db) = f.value_and_grad(math.inf, 1.0)
        assert math.isnan(value) and math.isnan(f(math.inf, 1.0))
    assert (da, db) == (0.0, 1.0)
    assert "mul" in f.grad_ir


def test_identities_never_change_a_dtype() -> None:
    """An f32 x times an f64 one is an f64 (NumPy's promotion): ``x * 1.0`` may not become the f32 ``x``."""
    def build(g: Graph, x: Node) -> Node:
        return x * g.const(1.0, DType.F64)
    p = program(build, x="f32")
    s = simplify(p)
    assert s.outputs[0].dtype is DType.F64
    assert s.outputs[0].op is not Op.INPUT
    same = simplify(program(lambda g, x: x * g.const(1.0, DType.F32), x="f32"))
    assert same.outputs[0].op is Op.INPUT


def test_layout_identities() -> None:
    """Casts, broadcasts and reshapes to what x already is vanish; transposes compose."""
    cases: list[tuple[Callable[..., Node], str, list[str]]] = [
        (lambda g, x: g.apply(Op.CAST, x, dtype=DType.F64), "f64[m,n]", []),
        (lambda g, x: g.apply(Op.CAST, x, dtype=DType.F32), "f64[m,n]", ["cast"]),
        (lambda g, x: g.apply(Op.BROADCAST, x, shape=x.shape), "f64[m,n]", []),
        (lambda g, x: g.apply(Op.RESHAPE, x, shape=x.shape), "f64[m,n]", []),
        (lambda g, x: x.T.T, "f64[m,n]", []),
        (lambda g, x: x.T, "f64[m,n]", ["transpose"]),
        (lambda g, x: x.T, "f64[n]", []),
        (lambda g, x: g.apply(Op.TRANSPOSE, g.apply(Op.TRANSPOSE, x, axes=(1, 2, 0)), axes=(2, 0, 1)), "f64[a,b,c]",
         []),
        (lambda g, x: g.apply(Op.SUM, x, axis=()), "f64[m,n]", []),
        (lambda g, x: g.apply(Op.MEAN, x, axis=()), "f64[m,n]", []),
        (lambda g, x: g.apply(Op.SUM, x, axis=0), "f64[m,n]", ["sum"]),
    ]
    for build, t, expected in cases:
        p = program(build, x=t)
        assert ops(simplify(p)) == expected, p.text()


def test_composed_transposes_become_one() -> None:
    p = program(lambda g, x: g.apply(Op.TRANSPOSE, g.apply(Op.TRANSPOSE, x, axes=(1, 2, 0)), axes=(1, 2, 0)),
                x="f64[a,b,c]")
    s = simplify(p)
    assert ops(s) == ["transpose"]
    assert s.outputs[0].attr("axes") == (2, 0, 1)
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(run(s, x), np.transpose(np.transpose(x, (1, 2, 0)), (1, 2, 0)))


# ---------------------------------------------------------------------------
# constant folding


@pytest.mark.parametrize("text, expected", [
    ("a * (2.0 * 3.0)", 6.0),
    ("a * exp(1000.0)", math.inf),
    ("a * (exp(1000.0) - exp(1000.0))", math.nan),
    ("a * log(0.0)", -math.inf),
    ("a * sqrt(-1.0)", math.nan),
    ("a * (1.0 / 0.0)", math.inf),
    ("a * (0.1 + 0.2)", 0.1 + 0.2),
    ("a * sigmoid(0.0)", 0.5),
    ("a * max(2.0, 3.0)", 3.0),
])
def test_constant_subexpressions_fold_to_numpys_value(text: str, expected: float) -> None:
    """op(c1, c2) is computed once, with NumPy: the constant left is NumPy's bits (0.1 + 0.2 included)."""
    p = diffc.compile(text, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = simplify(parse(text))
    consts = [n for n in s.nodes() if n.op is Op.CONST]
    assert ops(s) == ["mul"], s.text()
    assert len(consts) == 1 and same_float(consts[0].value.item(), expected), s.text()
    assert p.grad(1.0) == expected or (math.isnan(expected) and math.isnan(p.grad(1.0)))


def parse(text: str) -> Program:
    from diffc.frontends.text import parse_text
    return parse_text(text)


def test_folding_keeps_the_dtype_of_f32_constants() -> None:
    """f32 constants fold in f32: exp(0.3f) is NumPy's float32 exp, not a float64 exp rounded afterwards."""
    p = program(lambda g, x: x * g.apply(Op.EXP, g.const(0.3, DType.F32)), x="f32")
    s = simplify(p)
    (const,) = [n for n in s.nodes() if n.op is Op.CONST]
    assert const.dtype is DType.F32 and s.outputs[0].dtype is DType.F32
    assert const.value.tobytes() == np.exp(np.float32(0.3)).tobytes()
    assert const.value.tobytes() != np.float32(np.exp(np.float64(np.float32(0.3)))).tobytes()  # tells them apart


def test_comparisons_and_where_fold() -> None:
    """A constant comparison folds to a bool; a where of constants folds to its chosen value."""
    p = program(lambda g, x: g.apply(Op.WHERE, g.apply(Op.GT, g.const(2.0), g.const(1.0)), x, -x), x="f64")
    s = simplify(p)
    assert ops(s) == ["neg", "where"], s.text()
    assert "const True : bool" in s.text()
    q = program(lambda g, x: x * g.apply(Op.WHERE, g.apply(Op.LT, g.const(2.0), g.const(1.0)), g.const(5.0),
                                         g.const(7.0)), x="f64")
    assert ops(simplify(q)) == ["mul"] and "const 7.0" in simplify(q).text()


def test_large_constant_arrays_are_not_folded() -> None:
    """Folding a big array would bake it into the source; only small ones are folded."""
    big = np.arange(float(MAX_FOLDED_SIZE + 1))
    g = Graph()
    c = g.const(big)
    assert fold_constants(g.apply(Op.EXP, c)) is None
    small = g.const(big[:MAX_FOLDED_SIZE])
    folded = fold_constants(g.apply(Op.EXP, small))
    assert folded is not None and folded.op is Op.CONST
    np.testing.assert_array_equal(folded.value, np.exp(big[:MAX_FOLDED_SIZE]))


def test_fold_leaves_nodes_with_an_input_alone() -> None:
    g = Graph()
    a = g.input("a")
    assert fold_constants(a * g.const(2.0)) is None
    assert local_rewrite(a * g.const(2.0)) is None


# ---------------------------------------------------------------------------
# CSE by interning, DCE by reachability


def test_interning_makes_equal_subexpressions_one_node() -> None:
    g = Graph()
    a, b = g.input("a"), g.input("b")
    first, second = g.apply(Op.EXP, a * b), g.apply(Op.EXP, a * b)
    assert first is second
    assert g.const(0.5) is g.const(0.5)
    assert g.const(0.0) is not g.const(-0.0)  # different bits, different constants
    assert g.const(math.nan) is g.const(math.nan)
    assert g.const(1.0, DType.F32) is not g.const(1.0, DType.F64)


def test_cse_after_a_rewrite_merges_what_became_equal() -> None:
    """(a * 1) * b and a * b differ until the simplifier meets them: then there is one a * b, used twice."""
    p = program(lambda g, a, b: (a * g.const(1.0)) * b + a * b, a="f64", b="f64")
    assert ops(p).count("mul") == 3
    s = simplify(p)
    assert ops(s) == ["mul", "add"]
    add = s.outputs[0]
    assert add.inputs[0] is add.inputs[1]
    assert "add %2 %2" in s.text()


def test_cse_shows_in_generated_code() -> None:
    """exp(a * b) written twice is computed once, in one named temporary."""
    f = diffc.compile("exp(a * b) + exp(a * b) * c", backend="numpy")
    assert f.grad_source.count("np.exp(") == 1
    assert f.value_and_grad(1.0, 2.0, 3.0)[0] == pytest.approx(4 * math.exp(2.0))


def test_dead_nodes_are_not_printed_nor_copied() -> None:
    g = Graph()
    a, b = g.input("a"), g.input("b")
    dead = g.apply(Op.SIN, a * b)
    g.names[dead] = "unused"
    out = g.apply(Op.EXP, a) + b
    p = Program(g, [a, b], [out], ["out"])
    assert "sin" not in p.text() and "mul" not in p.text()
    r = rebuild(p)
    assert [n.op for n in r.graph.nodes if n.op not in (Op.INPUT, Op.CONST)] == [Op.EXP, Op.ADD]
    assert "unused" not in r.graph.names.values()


def test_unused_inputs_stay_in_the_signature() -> None:
    """DCE never drops an argument: the signature is the user's."""
    p = program(lambda g, a, b: a * g.const(2.0), a="f64", b="f64")
    s = simplify(p)
    assert [n.attr("name") for n in s.inputs] == ["a", "b"]
    assert s.text().startswith("def f(a: f64, b: f64):")


# ---------------------------------------------------------------------------
# purity and names


def snapshot(p: Program) -> tuple[str, int, dict[str, str], list[int], list[int]]:
    return (p.text(), len(p.graph.nodes), {repr(k): v for k, v in p.graph.names.items()},
            [n.id for n in p.inputs], [n.id for n in p.outputs])


@pytest.mark.parametrize("transform", [
    simplify, rebuild, canonicalize, lambda p: rebuild(p, local_rewrite),
    lambda p: rebuild(p, substitute={p.inputs[1]: p.graph.const(2.0)}),
], ids=["simplify", "rebuild", "canonicalize", "rebuild-rewrite", "rebuild-substitute"])
def test_passes_do_not_mutate_their_input(transform: Callable[[Program], Program]) -> None:
    text = "c = a * 1.0 + b\nd = -(-c) * (2.0 * 3.0)\ne = d + exp(a) * 0.0 + (b - b)"
    p = parse(text)
    before = snapshot(p)
    result = transform(p)
    assert snapshot(p) == before
    assert result is not p and result.graph is not p.graph


def test_simplify_is_idempotent() -> None:
    p = parse("c = a * 1.0 + (-b)\nd = -(-c) * (2.0 * 3.0) / 1.0\ne = d ** 1.0 + exp(a) * 0.0")
    once = simplify(p)
    assert simplify(once).text() == once.text()


def test_simplification_keeps_the_users_names() -> None:
    p = parse("c = a * 1.0 + b\nd = c * 2.0\ne = d * d")
    s = simplify(p)
    names = sorted(s.graph.names.values())
    assert names == ["a", "b", "c", "d", "e"]


# ---------------------------------------------------------------------------
# rebuild with substitute


def test_substituting_an_input_by_a_constant_drops_it_and_folds() -> None:
    p = parse("c = a * b\nd = c + exp(b)")
    b = p.inputs[1]
    s = simplify(rebuild(p, substitute={b: p.graph.const(0.0)}))
    assert [n.attr("name") for n in s.inputs] == ["a"]
    assert ops(s) == ["mul", "add"], s.text()  # a * 0.0 stays (a may be inf); exp(0.0) folds to 1.0
    assert run(s, 3.0) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert math.isnan(run(s, math.inf))


def test_substituting_an_input_by_a_newer_expression() -> None:
    """A substitute created after the nodes that use what it replaces (b := exp(a) in a * b + a)."""
    g = Graph()
    a, b = g.input("a"), g.input("b")
    p = Program(g, [a, b], [a * b + a], ["y"])
    later = g.apply(Op.SIN, g.apply(Op.EXP, a)) + a  # ids above every node of p
    r = rebuild(p, substitute={b: later})
    assert [n.attr("name") for n in r.inputs] == ["a"]
    assert run(r, 0.5) == pytest.approx(0.5 * (math.sin(math.exp(0.5)) + 0.5) + 0.5, rel=1e-15)


def test_a_substitution_that_makes_a_cycle_is_refused() -> None:
    g = Graph()
    a, b = g.input("a"), g.input("b")
    p = Program(g, [a, b], [a * b], ["y"])
    with pytest.raises(ValueError, match="depend on itself"):
        rebuild(p, substitute={b: g.apply(Op.EXP, b)})


def test_substituting_the_cotangent_gives_the_gradient_program() -> None:
    """How diffc builds value_and_grad: the vjp with its cotangent bound to 1.0, then simplified."""
    from diffc.adjoint.reverse import reverse
    p = parse("e = sin(a) * b")
    vjp = reverse(p, p.inputs)
    cotangent = vjp.inputs[-1]
    assert cotangent.attr("name") == "e_bar"
    grad = simplify(rebuild(vjp, substitute={cotangent: vjp.graph.const(1.0)}))
    assert [n.attr("name") for n in grad.inputs] == ["a", "b"]
    assert "e_bar" not in grad.text()
    got = run_outputs(grad, 0.7, 1.3)
    assert got == pytest.approx([math.sin(0.7) * 1.3, math.cos(0.7) * 1.3, math.sin(0.7)], rel=1e-15)


def run_outputs(p: Program, *args: float) -> list[float]:
    """Every output of a multi-output program, one single-output program each."""
    return [run(Program(p.graph, p.inputs, [out], [name], p.name), *args)
            for out, name in zip(p.outputs, p.output_names, strict=True)]
