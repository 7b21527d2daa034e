"""Pictures (diffc/viz.py): the notes' computation graph, partials on the edges, values and adjoints at a point.

The DOT text is read back with a small parser (node lines and edge lines, labels
unescaped), so the tests check the picture's structure, not its spelling. The
worked numbers of the notes' e = (a + b)(b + 1) at a = 2, b = 1 are derived by
hand below; the logistic regression's adjoints are checked against central
differences and against the hand-derived dz = (a - y) / m.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st

import diffc
from diffc import viz
from diffc.cli import main
from diffc.errors import DiffcError, GraphvizError
from diffc.ir import Graph, Op, Program

NOTES = "c = a + b\nd = b + 1\ne = c * d"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")

_STRING = r'"((?:[^"\\]|\\.)*)"'
_NODE = re.compile(rf"^\s*(\w+) \[label={_STRING}(.*)\];$")
_EDGE = re.compile(rf"^\s*(\w+) -> (\w+)(?: \[(?:label={_STRING})?(.*)\])?;$")


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse_dot(text: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Nodes (id -> (label, attributes)) and edges (tail, head, label, attributes); every other line is
    structure (the header, attribute defaults, rank groups, cluster braces)."""
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str, str]] = []
    structure = re.compile(r'^\s*(digraph ".*" \{|\}|rankdir=\w+;|(node|edge) \[.*\];|\{rank=same; \w+; \w+;\}|'
                           rf'subgraph cluster_(loop)?\d+ \{{|label={_STRING}; style=dashed;)$')
    for line in text.splitlines():
        if m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2), unescape(m.group(3) or ""), m.group(4) or ""))
        elif m := _NODE.match(line):
            nodes[m.group(1)] = (unescape(m.group(2)), m.group(3))
        else:
            assert structure.match(line), f"unexpected DOT line {line!r}"
    return nodes, edges


def by_first_line(nodes: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {label.split("\n")[0]: node_id for node_id, (label, _) in nodes.items()}


def forward_nodes(nodes: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {k: v for k, v in nodes.items() if k.startswith("n")}


# -- the notes' graph ---------------------------------------------------------------------------

def test_forward_picture_is_the_notes_graph(backend: str) -> None:
    text = diffc.compile(NOTES, backend=backend).to_dot(grad=False)
    nodes, edges = parse_dot(text)
    assert "rankdir=BT;" in text  # inputs at the bottom, the output at the top
    labels = {label for label, _ in nodes.values()}
    assert labels == {"a", "b", "c = a + b", "d = b + 1", "e = c * d"}  # the constant 1 is inside d's formula
    ids = by_first_line(nodes)
    name = {node_id: label.split(" ")[0] for label, node_id in ids.items()}
    assert sorted((name[t], name[h]) for t, h, _, _ in edges) == [("a", "c"), ("b", "c"), ("b", "d"),
                                                                   ("c", "e"), ("d", "e")]
    assert all(label == "" for _, _, label, _ in edges)  # no derivatives without grad
    assert "penwidth=2" in nodes[ids["e = c * d"]][1]  # the output stands out


def test_grad_picture_writes_the_partials_and_the_adjoint_nodes(backend: str) -> None:
    nodes, edges = parse_dot(diffc.compile(NOTES, backend=backend).to_dot(grad=True))
    partials = sorted(label for t, _, label, _ in edges if t.startswith("n"))
    assert partials == ["∂c/∂a = 1", "∂c/∂b = 1", "∂d/∂b = 1", "∂e/∂c = d", "∂e/∂d = c"]
    adjoint = {k: v for k, v in nodes.items() if k.startswith("g")}
    assert sorted(label for label, _ in adjoint.values()) == sorted(["ā", "b̄", "c̄", "d̄", "ē"])
    assert all(f"fillcolor={viz.ADJOINT_COLOUR}" in attrs for _, attrs in adjoint.values())
    assert all(f"fillcolor={viz.FORWARD_COLOUR}" in attrs for _, attrs in forward_nodes(nodes).values())
    # the adjoint flows back along every data-flow edge: ē -> c̄, ē -> d̄, c̄ -> ā, c̄ -> b̄, d̄ -> b̄
    flows = sorted((nodes[t][0], nodes[h][0]) for t, h, _, _ in edges if t.startswith("g"))
    assert flows == sorted([("ē", "c̄"), ("ē", "d̄"), ("c̄", "ā"), ("c̄", "b̄"), ("d̄", "b̄")])


def notes_numbers(a: float, b: float) -> dict[str, float]:
    """The notes' worked example by hand: e = c d with c = a + b, d = b + 1."""
    c, d = a + b, b + 1
    e_bar = 1.0
    c_bar, d_bar = e_bar * d, e_bar * c  # mul switches
    a_bar, b_bar = c_bar, c_bar + d_bar  # add distributes; b feeds c and d, so its adjoint sums both
    return {"a": a, "b": b, "c": c, "d": d, "e": c * d, "ē": e_bar, "c̄": c_bar, "d̄": d_bar, "ā": a_bar, "b̄": b_bar}


@pytest.mark.parametrize("point", [(2.0, 1.0), {"a": 2.0, "b": 1.0}, {"b": 1.0, "a": 2.0}])
def test_values_and_adjoints_at_the_notes_point(point: object, backend: str) -> None:
    nodes, _ = parse_dot(diffc.compile(NOTES, backend=backend).to_dot(at=point))
    expected = notes_numbers(2.0, 1.0)
    assert expected == {"a": 2, "b": 1, "c": 3, "d": 2, "e": 6, "ē": 1, "c̄": 2, "d̄": 3, "ā": 2, "b̄": 5}
    shown = {}
    for label, _ in nodes.values():
        for line in label.split("\n"):
            if m := re.fullmatch(r"(\S+) = (-?[\d.]+)", line):
                shown[m.group(1)] = float(m.group(2))
    assert shown == expected


def test_values_in_float32() -> None:
    f = diffc.compile(NOTES, args={"a": "f32", "b": "f32"})
    nodes, _ = parse_dot(f.to_dot(at=(np.float32(2.0), np.float32(1.0))))
    labels = [label for label, _ in nodes.values()]
    assert "b̄ = 5" in labels and "e = c * d\ne = 6" in labels


def test_at_takes_the_signature_and_refuses_a_wrong_one() -> None:
    f = diffc.compile(NOTES)
    with pytest.raises(TypeError):
        f.to_dot(at=(2.0,))
    with pytest.raises(TypeError):
        f.to_dot(at={"a": 2.0, "q": 1.0})


def test_max_routes_and_generic_partials() -> None:
    nodes, edges = parse_dot(diffc.compile("z = a * b\nh = relu(z)\nk = arcsinh(h) * tanh(z)").to_dot(grad=True))
    labels = {label for _, _, label, _ in edges}
    assert "∂h/∂z = [z > 0]" in labels  # relu'(0) = 0: against the constant the traced side is strictly greater
    assert "∂z/∂a = b" in labels and "∂z/∂b = a" in labels
    assert any(re.fullmatch(r"∂\w+/∂h", label) for label in labels)  # arcsinh has no entry: the generic partial
    assert any(re.fullmatch(r"∂(\w+)/∂z = 1 - \1²", label) for label in labels)  # tanh' = 1 - tanh²


def test_every_edge_rule_gives_one_partial_per_input() -> None:
    g = Graph()
    x, y, c = g.input("x"), g.input("y"), g.input("c", shape=())
    v, W = g.input("v", shape=(3,)), g.input("W", shape=(2, 3))
    cond = g.apply(Op.GT, x, y)
    samples = {op: g.apply(op, x, y) for op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.POW, Op.MAX, Op.MIN)}
    samples |= {op: g.apply(op, x) for op in viz_rules_unary()}
    samples[Op.WHERE] = g.apply(Op.WHERE, cond, x, c)
    samples[Op.SUM] = g.apply(Op.SUM, v, axis=(0,))
    samples[Op.MEAN] = g.apply(Op.MEAN, v, axis=(0,))
    samples[Op.MATMUL] = g.apply(Op.MATMUL, W, v)
    samples[Op.BROADCAST] = g.apply(Op.BROADCAST, x, shape=(3,))
    from diffc.viz_rules import EDGE_RULES, partials

    assert set(EDGE_RULES) - {Op.CAST, Op.RESHAPE} <= set(samples)
    for op, node in samples.items():
        names = [f"x{k}" for k in range(len(node.inputs))]
        assert len(partials(node, "out", names)) == len(node.inputs), op
    assert partials(samples[Op.MEAN], "m", ["v"]) == ("1/3",)
    assert partials(samples[Op.MATMUL], "h", ["W", "x"]) == ("xᵀ", "W")
    assert partials(samples[Op.WHERE], "w", ["p", "x", "c"]) == (None, "[p]", "[not p]")


def viz_rules_unary() -> list[Op]:
    from diffc.viz_rules import EDGE_RULES

    return [op for op in EDGE_RULES if op in (Op.NEG, Op.EXP, Op.LOG, Op.SQRT, Op.SIN, Op.COS, Op.TAN, Op.TANH,
                                              Op.SIGMOID, Op.SOFTPLUS, Op.LOG1P, Op.EXPM1, Op.ABS)]


# -- a traced NumPy function with arrays ----------------------------------------------------------

def logistic(w, b, X, y):  # noqa: ANN001, ANN201 - a user's plain NumPy function
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def logistic_data() -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5, 3))
    return rng.normal(size=3), 0.3, X, (rng.random(5) > 0.5).astype(np.float64)


def test_logistic_regression_shows_arrays_by_shape(backend: str) -> None:
    f = diffc.compile(logistic, wrt=("w", "b"), backend=backend)
    w, b, X, y = logistic_data()
    nodes, edges = parse_dot(f.to_dot(at=(w, b, X, y)))
    labels = "\n".join(label for label, _ in nodes.values())
    assert f"X = shape (5, 3) [{X[0, 0]:.4g}, " in labels and "y = shape (5,)" in labels
    assert any(re.fullmatch(r"\w+ = X @ w", label.split("\n")[0]) for label, _ in nodes.values())
    assert f"w̄ = shape (3,) [{', '.join(f'{v:.4g}' for v in f.grad(w, b, X, y)[0])}]" in labels
    assert any(re.fullmatch(r"∂\w+/∂w = X", label) for _, _, label, _ in edges)  # ∂(X@w)/∂w = X
    # X and y are data: no adjoint nodes and no partials on their edges
    assert not any(label.startswith(("X̄", "ȳ")) for label, _ in nodes.values())
    assert all(label == "" for t, _, label, _ in edges if nodes[t][0].startswith(("X =", "y =")))


def test_adjoints_of_intermediate_nodes_are_right() -> None:
    """``evaluate``'s adjoints: the inputs' against central differences, z's against dz = (a - y) / m."""
    f = diffc.compile(logistic, wrt=("w", "b"), backend="numpy")
    w, b, X, y = args = logistic_data()
    f(*args)
    spec = f._last
    program = spec.forward
    values, adjoints = viz.evaluate(program, list(args), program.inputs[:2])
    out = program.outputs[0]
    assert_close(values[out], f(*args), rtol=1e-12, atol=0, what="value")
    reference = numeric_grad(lambda w_, b_: logistic(w_, b_, X, y), [w, b])
    assert_close(adjoints[program.inputs[0]], reference[0], rtol=1e-6, atol=1e-9, what="w_bar")
    assert_close(adjoints[program.inputs[1]], reference[1], rtol=1e-6, atol=1e-9, what="b_bar")
    z = next(n for n in program.nodes() if n.op is Op.ADD and program.inputs[1] in n.inputs)
    a = 1 / (1 + np.exp(-(X @ w + b)))
    assert_close(values[z], X @ w + b, rtol=1e-12, atol=1e-12, what="z")
    assert_close(adjoints[z], (a - y) / len(y), rtol=1e-9, atol=1e-12, what="z_bar")


# -- safety, determinism, legibility -------------------------------------------------------------

HOSTILE = ['x"]; evil [label="pwned', "back\\slash\\N\\l", "<b>html</b>", "line\nbreak", "} digraph {", "q\"\\\""]


def test_hostile_names_stay_inside_their_labels() -> None:
    g = Graph()
    x, y = g.input("x"), g.input("y")
    node = x
    names = []
    for k, name in enumerate(HOSTILE):
        node = g.apply(Op.MUL, node, y) if k % 2 else g.apply(Op.ADD, node, x)
        g.names[node] = name
        names.append(name)
    g.names[x] = HOSTILE[0] + "input"
    program = Program(g, [x, y], [node], [HOSTILE[-1]], name=HOSTILE[2])
    text = viz.to_dot(program, grad=True, wrt=[x, y])
    nodes, edges = parse_dot(text)  # every line is a node, an edge or structure: nothing was injected
    assert len(forward_nodes(nodes)) == 2 + len(HOSTILE)
    firsts = {label.split(" = ")[0] for label, _ in forward_nodes(nodes).values()}
    assert set(names) <= firsts and HOSTILE[0] + "input" in firsts
    assert {viz.bar(name) for name in names} <= {label for k, (label, _) in nodes.items() if k.startswith("g")}
    if HAS_DOT:  # Graphviz reads it as one graph with exactly these nodes
        svg = viz.run_dot(text, "svg").decode()
        assert svg.count('class="node"') == len(nodes)


def test_quote_escapes_everything_dot_reads() -> None:
    assert viz.quote('a"b') == '"a\\"b"'
    assert viz.quote("a\\N") == '"a\\\\N"'
    assert viz.quote("a\nb\rc\x00\x85\u2028d") == '"a\\nbcd"'
    assert viz.quote("<x>") == '"<x>"'  # quoted strings are never HTML labels


def test_dot_text_is_deterministic() -> None:
    w, b, X, y = logistic_data()
    texts = {diffc.compile(logistic, wrt=("w", "b"), backend=backend).to_dot(grad=True, at=(w, b, X, y))
             for backend in ("numpy", "numba") for _ in range(2)}
    assert len(texts) == 1  # the same picture whatever the back end
    texts = {diffc.compile(NOTES, backend=backend).to_dot(grad=True) for backend in ("numpy", "numba")}
    assert len(texts) == 1


def chain(steps: int) -> str:
    """Named steps, each with unnamed temporaries: x1 = exp(x0 * 0.5) + x0 * x0 ..."""
    lines = [f"x{k + 1} = sin(x{k}) * 0.5 + x{k} * x{k}" for k in range(steps)]
    return "\n".join(["x0 = a * b", *lines])


def test_large_graphs_cluster_named_sub_expressions() -> None:
    big = diffc.compile(chain(25))
    nodes, _ = parse_dot(big.to_dot(grad=True))
    assert len(forward_nodes(nodes)) > viz.COLLAPSE_THRESHOLD
    text = big.to_dot(grad=True)
    heads = re.findall(rf"subgraph cluster_\d+ {{\n\s*label={_STRING};", text)
    assert sorted(heads) == sorted(f"x{k}" for k in range(1, 26))  # one cluster per named step
    assert "subgraph cluster_" not in big.to_dot(grad=True, collapse=False)
    small = diffc.compile(chain(2))
    assert "subgraph cluster_" not in small.to_dot()
    forced = small.to_dot(collapse=True)
    assert forced.count("subgraph cluster_") == 2
    assert parse_dot(forced)[0] == parse_dot(small.to_dot())[0]  # the same nodes, only grouped


# -- rendering ------------------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("suffix,magic", [("svg", (b"<?xml", b"<svg")), ("png", (b"\x89PNG",)), ("pdf", (b"%PDF",))])
def test_render_writes_the_format_its_suffix_names(tmp_path: Path, suffix: str, magic: tuple[bytes, ...]) -> None:
    path = diffc.compile(NOTES).render(str(tmp_path / f"graph.{suffix}"), at=(2.0, 1.0), dpi=60)
    data = path.read_bytes()
    assert data.startswith(magic)
    if suffix == "svg":
        text = data.decode()
        assert "∂e/∂c = d" in text and "b̄ = 5" in text and text.count('class="node"') == 10


@needs_dot
def test_notebook_shows_the_svg() -> None:
    f = diffc.compile(NOTES)
    svg = f._repr_svg_()
    assert svg is not None and "<svg" in svg and "∂e/∂c = d" in svg
    assert f._repr_markdown_() is None


def test_without_dot_render_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    f = diffc.compile(NOTES)
    with pytest.raises(GraphvizError) as caught:
        f.render(str(tmp_path / "graph.svg"))
    assert isinstance(caught.value, DiffcError)
    assert "apt install graphviz" in str(caught.value) and "conda install graphviz" in str(caught.value)
    assert not (tmp_path / "graph.svg").exists()
    assert f._repr_svg_() is None  # Jupyter falls back to the text form
    markdown = f._repr_markdown_()
    assert markdown is not None and markdown.startswith("```dot\n") and "∂e/∂c = d" in markdown


def test_render_refuses_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(GraphvizError, match=r"\.svg, \.png, \.pdf"):
        diffc.compile(NOTES).render(str(tmp_path / "graph.gif"))


def test_repr_before_the_types_are_known_is_none() -> None:
    f = diffc.compile(logistic)
    assert f._repr_svg_() is None and f._repr_markdown_() is None


# -- the command line -----------------------------------------------------------------------------

@needs_dot
def test_cli_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "graph.svg"
    assert main(["show", NOTES, "--what", "picture", "--at", "a=2,b=1", "-o", str(out), "--backend", "numpy"]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    text = out.read_text()
    assert text.startswith("<?xml") and "c̄ = 2" in text and "∂e/∂d = c" in text
    assert main(["show", NOTES, "--what", "picture"]) == 0  # without -o: the SVG on standard output
    assert "<svg" in capsys.readouterr().out


def test_cli_picture_without_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["show", NOTES, "--what", "picture", "-o", str(tmp_path / "g.svg")]) == 2
    assert "apt install graphviz" in capsys.readouterr().err


def test_cli_dot_at_and_a_bad_point(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", NOTES, "--what", "dot", "--at", "a=2,b=1"]) == 0
    assert "b̄ = 5" in capsys.readouterr().out
    assert main(["show", NOTES, "--what", "dot", "--at", "a=two"]) == 2
    assert "NAME=NUMBER" in capsys.readouterr().err


def relu_layer(W, x):  # noqa: N803 - docs/tutorial.md's layer, as it draws it
    z = W @ x
    h = np.maximum(z, 0.0)
    return h


PICTURES = {  # docs/img/<file>: what draws it (the render lines of docs/pictures.md and docs/tutorial.md)
    "notes_graph.svg": (NOTES, (2.0, 1.0)),
    "relu_layer.svg": (relu_layer, (np.array([[1.0, 1.0], [-2.0, 0.5]]), np.array([1.0, 2.0]))),
}


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_checked_in_picture_is_current(name: str) -> None:
    """docs/img's pictures show what the code draws now: every text of the picture at its point
    (regenerate one with ``diffc.compile(source).render("docs/img/<name>", at=point)``)."""
    source, point = PICTURES[name]
    svg = (Path(__file__).parent.parent / "docs" / "img" / name).read_text()
    drawn = sorted(html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg))
    nodes, edges = parse_dot(diffc.compile(source).to_dot(at=point))
    wanted = [line for label, _ in nodes.values() for line in label.split("\n")] + [e[2] for e in edges if e[2]]
    assert drawn == sorted(wanted)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=12))
def test_any_name_round_trips_through_its_label(name: str) -> None:
    kept = "".join(ch for ch in name if ch.isprintable() or ch == "\n")
    assert unescape(viz.quote(name)[1:-1]) == kept
    g = Graph()
    x = g.input("x")
    node = g.apply(Op.EXP, x)
    g.names[node] = name or "v"
    nodes, _ = parse_dot(viz.to_dot(Program(g, [x], [node], [name or "v"], name=name), grad=True, wrt=[x]))
    assert len(nodes) == 4  # x, its adjoint, exp, its adjoint: nothing injected


def test_array_output_pulls_back_ones() -> None:
    """For an array output the adjoints are the vjp with a cotangent of ones: x̄ = cos(x) * k here."""
    f = diffc.compile(lambda x: np.sin(x) * np.arange(4.0))
    x = np.array([0.5, 1.0, -2.0, 3.0])
    f(x)
    program = f._last.forward
    values, adjoints = viz.evaluate(program, [x], program.inputs)
    assert_close(values[program.outputs[0]], np.sin(x) * np.arange(4.0), rtol=1e-12, atol=0, what="value")
    assert_close(adjoints[program.inputs[0]], np.cos(x) * np.arange(4.0), rtol=1e-12, atol=1e-15, what="x_bar")
    identity = diffc.compile(lambda x: x)
    nodes, _ = parse_dot(identity.to_dot(at=(2.0,)))
    assert sorted(label for label, _ in nodes.values()) == ["x = 2", "x̄ = 1"]


def test_collapse_by_fused_loop() -> None:
    """The logistic loss is one loop over the m rows (X @ w row by row, the elementwise chain, the mean's sum)."""
    f = diffc.compile(logistic, wrt=("w", "b"), args={"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"})
    text = f.to_dot(grad=True, collapse="loops")
    assert text.count("subgraph cluster_loop") == 1 and 'label="fused loop 1"' in text
    inside = text.split("subgraph cluster_loop0 {")[1].split("\n  }")[0]
    nodes, _ = parse_dot(f.to_dot(grad=True, collapse=False))
    per_row = {k for k, (label, _) in forward_nodes(nodes).items() if label.endswith("f64[m]")
               and " = " in label.split("\n")[0]}  # computed per row (the inputs have no formula)
    mean = {k for k, (label, _) in nodes.items() if "= mean(" in label}
    assert set(re.findall(r"^\s*(n\d+) \[", inside, re.M)) == per_row | mean
    assert parse_dot(text)[0] == nodes  # the same nodes, only grouped
    with pytest.raises(DiffcError, match="collapse='sideways'"):
        f.to_dot(collapse="sideways")


@needs_dot
def test_notebook_leaves_huge_graphs_undrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    f = diffc.compile(chain(3))
    assert f._repr_svg_() is not None
    monkeypatch.setattr(viz, "NOTEBOOK_MAX_LINES", f.to_dot(grad=True).count("\n") - 1)
    assert f._repr_svg_() is None


def test_sizes_are_drawn_under_the_names_the_code_gives_them() -> None:
    """Sizes read from a first call are m, n in the picture as in the code (never X_0, w_n); a mean's 1/m too;
    a tree's leaves under the names the function unpacks them to."""
    def loss(w, b, X, y):  # noqa: N803
        z = X @ w + b
        return np.mean((z - y) ** 2)

    w, X, y = np.zeros(3), np.ones((5, 3)), np.ones(5)  # noqa: N806
    f = diffc.compile(loss, wrt="w", backend="numpy")
    f.grad(w, 0.0, X, y)
    text = unescape(f.to_dot(grad=True))
    assert "f64[m,n]" in text and "f64[m]" in text and "= 1/m" in text
    assert not re.search(r"\b(X_0|X_1|w_n|y_n)\b", text)
    assert re.search(r"n, = w\.shape", f.grad_source) and "m = X.shape[0]" in f.grad_source  # the same names

    def layer(params, x):
        W, c = params  # noqa: N806
        return np.sum(np.tanh(W @ x + c))

    g = diffc.compile(layer, wrt="params", backend="numpy")
    g.grad((np.ones((2, 3)), np.zeros(2)), np.ones(3))
    drawn = unescape(g.to_dot(grad=True))
    assert "W @ x" in drawn and "params_0" not in drawn


def test_temporaries_are_named_after_what_they_compute() -> None:
    """Unnamed values read as the generated code names them (X_w, neg_z, one_minus_y); long ones are t1, t2."""
    def loss(w, b, X, y):  # noqa: N803
        z = X @ w + b
        a = 1 / (1 + np.exp(-z))
        return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))

    f = diffc.compile(loss, args={"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, wrt="w",
                      backend="numpy")
    nodes, edges = parse_dot(f.to_dot(grad=True))
    first = {label.split("\n")[0] for label, _ in nodes.values()}
    assert {"X_w = X @ w", "z = X_w + b", "neg_z = -z", "one_minus_y = 1 - y", "X_w_bar", "neg_z_bar"} <= first
    derived = {line.split(" = ")[0] for line in first} - {"loss", "z", "w", "b", "X", "y"}
    assert all(len(name.removesuffix("_bar")) <= viz.PICTURE_NAME for name in derived), derived
    assert any(e[2] == "∂z/∂X_w = 1" for e in edges)
