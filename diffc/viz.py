"""Pictures of a function's computation graph, as the lecture notes draw them.

The notes explain reverse mode with the graph of e = (a + b)(b + 1): one node
per input and per operation, named (c = a + b, d = b + 1, e = c * d), arrows
along the data flow, the local partial derivative written on each edge
(∂e/∂c = d), and the adjoints ā = ∂e/∂a beside the values. :func:`to_dot`
writes that picture as Graphviz DOT text for any program: the forward graph
alone, with ``grad`` the partials (diffc/viz_rules.py) and the adjoint nodes
in a second colour, and with ``values`` each node's value and adjoint at a
point (:func:`evaluate` computes them with the NumPy back end). :func:`render`
runs Graphviz's ``dot`` on it.

The text is deterministic (nodes and edges follow node ids) and every user
string goes through :func:`quote`, so a name never injects DOT syntax. Node
ids in the DOT text are ours (``n3``, ``g3``), never the user's names.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diffc.adjoint.rules import NON_DIFFERENTIABLE
from diffc.errors import DiffcError, GraphvizError
from diffc.ir import Graph, Node, Op, Program, dim_text, size_labels
from diffc.viz_rules import formula, partials

FORWARD_COLOUR = "lightblue"
ADJOINT_COLOUR = "mistyrose"
ADJOINT_EDGE = "firebrick"
COLLAPSE_THRESHOLD = 60  # drawn nodes: above it, each named sub-expression becomes a cluster
NOTEBOOK_MAX_LINES = 3000  # DOT lines: larger pictures are not drawn in a notebook's repr
SHOWN_ENTRIES = 4  # entries of an array written in its node
PICTURE_NAME = 12  # the longest name a picture derives for a temporary (longer: t1, t2, ...)
INSTALL_HINT = ("Graphviz's `dot` program is not installed (or not on PATH): install it with "
                "`apt install graphviz` (Debian, Ubuntu), `conda install graphviz`, or `brew install graphviz`; "
                "f.to_dot() gives the DOT text without it")


# ---------------------------------------------------------------------------
# text


def quote(text: str) -> str:
    """``text`` as a DOT double-quoted string that Graphviz shows literally.

    Backslashes are doubled (so ``\\N`` or ``\\l`` in a name is not an escape
    sequence), quotes escaped, newlines written as Graphviz's ``\\n`` and other
    unprintable characters dropped (controls, and the line separators U+0085
    and U+2028 that would break the DOT text's lines). Quoted strings are
    never HTML labels, so ``<`` and ``>`` are plain characters.
    """
    kept = "".join(ch for ch in text if ch.isprintable() or ch == "\n")
    return '"' + kept.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def bar(name: str) -> str:
    """The notes' overline for a one-letter name (ā for a); a longer one reads as the code names it (z1_bar)."""
    return unicodedata.normalize("NFC", name + "\u0304") if len(name) == 1 else f"{name}_bar"


def number_text(x: Any) -> str:
    """A short number: ``3``, ``0.25``, ``1.5e-08``, ``True``."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.4g}"


def value_text(value: Any) -> str:
    """A scalar as a number; an array as its shape and its first few entries."""
    array = np.asarray(value)
    if array.ndim == 0:
        return number_text(array.item())
    flat = array.ravel()
    shown = ", ".join(number_text(v) for v in flat[:SHOWN_ENTRIES])
    more = ", …" if flat.size > SHOWN_ENTRIES else ""
    return f"shape {array.shape} [{shown}{more}]"


# ---------------------------------------------------------------------------
# what the picture shows


@dataclass
class Scene:
    """The nodes a picture draws and the names it writes for every node."""

    program: Program
    drawn: list[Node]
    names: dict[Node, str]
    active: set[Node] = field(default_factory=set)  # nodes with an adjoint: they depend on a wrt input
    sizes: dict[str, str] = field(default_factory=dict)  # size name -> the name the code gives it (m, n)


def inlined(node: Node) -> bool:
    """Scalar constants and sizes are written inside their users' formulas (``d = b + 1``), not drawn."""
    return node.op is Op.DIM or (node.op is Op.CONST and node.value.ndim == 0)


def display_names(nodes: Sequence[Node], given: Mapping[Node, str],
                  sizes: Mapping[str, str] | None = None) -> dict[Node, str]:
    """The user's name where there is one, a number for a constant, else a name saying what the value computes
    (``neg_z``, as the generated code names it), else t1, t2, ... (never a user's name).

    ``given`` names nodes the graph leaves unnamed (the output, by the function's output name);
    ``sizes`` renames sizes as the generated code does (``m`` for ``X_0``).
    """
    from diffc.codegen.naming import describe, number_word

    taken = {name for node in nodes if (name := node.graph.names.get(node) or given.get(node))}
    names: dict[Node, str] = {}
    count = 0

    users_names: set[Node] = set()  # the nodes named by the user: derived names are made of these only

    def label(x: Node) -> str | None:  # as the generated code's derived names read their operands
        if x.op is Op.CONST:
            return number_word(x)
        found = names.get(x) if x in users_names else None
        return found if found is not None and found.isidentifier() else None

    for node in nodes:
        name = node.graph.names.get(node) or given.get(node) or (node.attr("name") if node.op is Op.INPUT else None)
        if node.op is Op.CONST:
            value = node.value
            name = number_text(value.item()) if value.ndim == 0 else f"const{value.shape}"
        elif node.op is Op.DIM:
            name = dim_text(node.graph.resolve(node.attr("dim")), dict(sizes or {}))
        elif name:
            users_names.add(node)
        else:  # named after what it computes, as in the generated code (neg_z, one_minus_y, X_w), if short
            name = describe(node, label)
            name = name if name is not None and len(name) <= PICTURE_NAME and name not in taken else None
        while not name:
            count += 1
            name = f"t{count}" if f"t{count}" not in taken else None
        taken.add(name)
        names[node] = name
    return names


def active_nodes(nodes: Sequence[Node], wrt: Sequence[Node]) -> set[Node]:
    """The nodes that depend on a differentiated input (ids ascend: inputs come first)."""
    active = set(wrt)
    for node in nodes:
        if node.dtype.is_float and any(x in active for x in node.inputs) and node.op not in NON_DIFFERENTIABLE:
            active.add(node)
    return active


def scene(program: Program, wrt: Sequence[Node] = ()) -> Scene:
    """What to draw for ``program``'s first output; an unnamed output takes the function's output name."""
    nodes = program.nodes()
    out = program.outputs[0]
    sizes = size_labels(program.graph)
    names = display_names(nodes, {out: program.output_names[0]} if out.op is not Op.INPUT else {}, sizes)
    return Scene(program, [n for n in nodes if not inlined(n)], names, active_nodes(nodes, wrt), sizes)


def type_label(node: Node, sizes: Mapping[str, str]) -> str:
    """``f64[m,n]``, the sizes under the names the generated code binds them to; a scalar is ``f64``."""
    if not node.shape:
        return node.dtype.value
    dims = (dim_text(node.graph.resolve(d), dict(sizes)) for d in node.shape)
    return f"{node.dtype.value}[{','.join(dims)}]"


def named_groups(nodes: Sequence[Node]) -> dict[Node, Node]:
    """Each unnamed temporary mapped to the named node it helps compute (its first named user).

    ``a = 1 / (1 + np.exp(-z))`` is four nodes of which only the last is
    named ``a``: the other three are its sub-expression and share its cluster.
    """
    owner: dict[Node, Node] = {}
    drawn = set(nodes)
    for node in sorted(nodes, key=lambda n: -n.id):
        if node.op is Op.INPUT or node.graph.names.get(node) is None:
            continue
        stack = list(node.inputs)
        while stack:
            x = stack.pop()
            if x in owner or x not in drawn or x.op in (Op.INPUT, Op.CONST) or x.graph.names.get(x):
                continue
            owner[x] = node
            stack.extend(x.inputs)
    return owner


def loop_groups(program: Program, nodes: Sequence[Node]) -> list[list[Node]]:
    """The nodes of each loop the Numba back end fuses for ``program`` (diffc/codegen/loop_plan.py).

    The planner is the printer's own, so a cluster is exactly one loop of
    ``f.source``: its per-element values and the reductions it ends.
    """
    from diffc.codegen.loop_plan import Plan

    plan = Plan([n for n in program.nodes() if n.op is not Op.INPUT], program.outputs, set(program.inputs))
    drawn = set(nodes)
    return [[n for n in loop.nodes + loop.reductions if n in drawn] for loop in plan.loops]


Cluster = tuple[str, str, list[Node]]  # DOT id, label, members in id order


def clusters(sc: Scene, collapse: bool | str | None) -> list[Cluster]:
    """The clusters to draw: one per named sub-expression (``collapse=True`` or "names", and by
    default above ``COLLAPSE_THRESHOLD`` drawn nodes) or one per fused loop ("loops")."""
    if collapse not in (None, True, False, "names", "loops"):
        raise DiffcError(f"collapse={collapse!r}: use True (or 'names') for named sub-expressions, 'loops' for "
                         "fused loops, False for none, or leave it out (named, above 60 nodes)")
    if collapse == "loops":
        groups = [g for g in loop_groups(sc.program, sc.drawn) if len(g) > 1]
        return [(f"cluster_loop{k}", f"fused loop {k + 1}", sorted(g, key=lambda n: n.id))
                for k, g in enumerate(groups)]
    if collapse not in (True, "names") and (collapse is not None or len(sc.drawn) <= COLLAPSE_THRESHOLD):
        return []
    named: dict[Node, list[Node]] = {}
    for member, head in named_groups(sc.drawn).items():
        named.setdefault(head, [head]).append(member)
    ordered = sorted(named.items(), key=lambda item: item[0].id)
    return [(f"cluster_{head.id}", sc.names[head], sorted(members, key=lambda n: n.id)) for head, members in ordered]


# ---------------------------------------------------------------------------
# DOT lines


def node_label(node: Node, sc: Scene, values: Mapping[Node, Any] | None) -> str:
    """``c = a + b`` (an input: its name), the type of an array, and ``c = 3`` at a point."""
    name = sc.names[node]
    leaf = node.op in (Op.INPUT, Op.CONST)
    lines = [name if leaf else f"{name} = {formula(node, [sc.names[x] for x in node.inputs])}"]
    if node.shape or not node.dtype.is_float:
        lines.append(type_label(node, sc.sizes))
    if values is not None and node in values:
        shown = f"{name} = {value_text(values[node])}"
        lines = [shown, *lines[1:]] if leaf else [*lines, shown]
    return "\n".join(lines)


def node_lines(node: Node, sc: Scene, values: Mapping[Node, Any] | None, grad: bool,
               adjoints: Mapping[Node, Any] | None) -> list[str]:
    """The node, and with ``grad`` its adjoint beside it (same rank) in the second colour."""
    shape = "ellipse" if node.op is Op.INPUT else "box"
    bold = ", penwidth=2" if node is sc.program.outputs[0] else ""
    lines = [f"n{node.id} [label={quote(node_label(node, sc, values))}, shape={shape}, "
             f"fillcolor={FORWARD_COLOUR}{bold}];"]
    if grad and node in sc.active:
        label = bar(sc.names[node])
        if adjoints is not None and node in adjoints:
            label += f" = {value_text(adjoints[node])}"
        lines.append(f"g{node.id} [label={quote(label)}, shape={shape}, fillcolor={ADJOINT_COLOUR}];")
        lines.append(f"{{rank=same; n{node.id}; g{node.id};}}")
    return lines


def edge_lines(node: Node, sc: Scene, grad: bool) -> list[str]:
    """Data-flow edges into ``node``; with ``grad`` each carries its partial, and the adjoint flows back."""
    xs = [sc.names[x] for x in node.inputs]
    local = partials(node, sc.names[node], xs) if grad else (None,) * len(xs)
    lines = []
    seen: set[Node] = set()
    for x, partial in zip(node.inputs, local, strict=True):
        if inlined(x):
            continue
        flows = grad and x in sc.active and node in sc.active and partial is not None
        label = ""
        if flows:
            label = f"∂{sc.names[node]}/∂{sc.names[x]}" + (f" = {partial}" if partial else "")
        lines.append(f"n{x.id} -> n{node.id}" + (f" [label={quote(label)}];" if label else ";"))
        if flows and x not in seen:  # the chain rule: x̄ += nodē · ∂node/∂x
            lines.append(f"g{node.id} -> g{x.id} [style=dashed, color={ADJOINT_EDGE}, constraint=false];")
        seen.add(x)
    return lines


def to_dot(program: Program, grad: bool = False, wrt: Sequence[Node] = (), values: Mapping[Node, Any] | None = None,
           adjoints: Mapping[Node, Any] | None = None, collapse: bool | str | None = None, title: str | None = None,
           rankdir: str = "BT") -> str:
    """DOT text of ``program``'s first output, inputs at the bottom, the output at the top.

    ``grad`` writes each edge's local partial derivative and draws an adjoint
    node (x̄) beside every node that depends on a ``wrt`` input; ``values`` and
    ``adjoints`` (node -> array, from :func:`evaluate`) add the numbers.
    ``collapse`` clusters each named sub-expression (True; None: when more
    than ``COLLAPSE_THRESHOLD`` nodes are drawn) or each fused loop ("loops").
    """
    sc = scene(Program(program.graph, program.inputs, program.outputs[:1], program.output_names[:1], program.name),
               wrt)
    groups = clusters(sc, collapse)
    grouped = {member for _, _, members in groups for member in members}
    lines = [f"digraph {quote(title or program.name)} {{", f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", style=filled];', '  edge [fontname="Helvetica", fontsize=10];']
    for node in sc.drawn:
        if node not in grouped:
            lines += ["  " + line for line in node_lines(node, sc, values, grad, adjoints)]
    for dot_id, label, members in groups:
        lines.append(f"  subgraph {dot_id} {{")
        lines.append(f"    label={quote(label)}; style=dashed;")
        for node in members:
            lines += ["    " + line for line in node_lines(node, sc, values, grad, adjoints)]
        lines.append("  }")
    for node in sc.drawn:
        lines += ["  " + line for line in edge_lines(node, sc, grad)]
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# values at a point


def copy_program(program: Program) -> tuple[Program, dict[Node, Node]]:
    """``program`` in a fresh graph, and the node map: the reverse sweep below adds nodes to it."""
    graph = Graph()
    graph.adopt_sizes(program.graph)
    mapping: dict[Node, Node] = {}
    for node in program.inputs:
        mapping[node] = graph.copy_node(node, ())
    for node in program.nodes():
        if node not in mapping:
            mapping[node] = graph.copy_node(node, [mapping[x] for x in node.inputs])
    for old, new in mapping.items():
        name = program.graph.names.get(old)
        if name is not None:
            graph.names.setdefault(new, name)
    copied = Program(graph, [mapping[n] for n in program.inputs], [mapping[n] for n in program.outputs],
                     program.output_names, program.name)
    return copied, mapping


def run_numpy(program: Program, args: Sequence[Any]) -> list[Any]:
    """Print ``program`` with the NumPy back end, load it and call it: its outputs, as a list."""
    from diffc import cache
    from diffc.codegen.module import FunctionSpec, render_module
    from diffc.codegen.printer import hidden_constants

    constants = hidden_constants([program])
    spec = FunctionSpec("values", program, tuple(range(len(program.outputs))), "Values for a picture.",
                        constants=constants)
    module = cache.load_module(render_module([spec], "numpy", "Values for a diffc picture.", standalone=False))
    return list(module.values(*args, *constants))


def evaluate(program: Program, args: Sequence[Any], wrt: Sequence[Node]) -> tuple[dict[Node, Any], dict[Node, Any]]:
    """Every node's value, and the adjoint of every node that depends on ``wrt``, at ``args``.

    The reverse pass differentiates with respect to every such node at once
    (its sweep computes their adjoints anyway), the output's cotangent is 1
    (ones for an array output: the vjp with ones), and the NumPy back end runs
    the program that returns them all.
    """
    from diffc.adjoint.reverse import reverse
    from diffc.passes.pipeline import simplify
    from diffc.passes.rebuild import rebuild

    first = Program(program.graph, program.inputs, program.outputs[:1], program.output_names[:1], program.name)
    nodes = first.nodes()
    computed = [n for n in nodes if n.op not in (Op.INPUT, Op.CONST, Op.DIM)]
    active = sorted(active_nodes(nodes, wrt), key=lambda n: n.id)
    copied, mapping = copy_program(first)
    outputs = [mapping[n] for n in computed]
    substitute: dict[Node, Node] = {}
    if active:
        vjp = reverse(copied, [mapping[n] for n in active], cotangent_name="_viz_bar")
        cotangent, out = vjp.inputs[-1], vjp.outputs[0]
        one = copied.graph.const(1.0, out.dtype)
        substitute[cotangent] = copied.graph.apply(Op.BROADCAST, one, shape=out.shape) if out.shape else one
        outputs += vjp.outputs[1:]
    names = [f"v{k}" for k in range(len(outputs))]
    everything = simplify(rebuild(Program(copied.graph, vjp.inputs if active else copied.inputs, outputs, names,
                                          "values"), substitute=substitute))
    results = run_numpy(everything, args) if outputs else []
    values: dict[Node, Any] = dict(zip(first.inputs, args, strict=True))
    values.update({n: n.value for n in nodes if n.op is Op.CONST})
    values.update(zip(computed, results[:len(computed)], strict=True))
    adjoints = dict(zip(active, results[len(computed):], strict=True))
    return values, adjoints


# ---------------------------------------------------------------------------
# Graphviz


def dot_program() -> str:
    """The path of Graphviz's ``dot``, or a :class:`GraphvizError` saying how to install it."""
    found = shutil.which("dot")
    if found is None:
        raise GraphvizError(INSTALL_HINT)
    return found


def run_dot(text: str, fmt: str, options: Mapping[str, Any] | None = None) -> bytes:
    """``dot -T<fmt>`` on ``text``; ``options`` become graph attributes (``dpi=150`` -> ``-Gdpi=150``)."""
    command = [dot_program(), f"-T{fmt}"] + [f"-G{key}={value}" for key, value in sorted((options or {}).items())]
    done = subprocess.run(command, input=text.encode(), capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise GraphvizError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


FORMATS = ("svg", "png", "pdf")


def render(text: str, path: str | Path, options: Mapping[str, Any] | None = None) -> Path:
    """Write ``text`` drawn by ``dot`` to ``path``, in the format its suffix names (svg, png, pdf)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise GraphvizError(f"cannot tell the picture's format from {str(path)!r}: end the name with "
                            f"{', '.join('.' + f for f in FORMATS)}")
    path.write_bytes(run_dot(text, fmt, options))
    return path


def svg_or_none(text: str) -> str | None:
    """The SVG of ``text`` when ``dot`` is installed, else None (a notebook then shows the text form).

    A graph of more than ``NOTEBOOK_MAX_LINES`` DOT lines is not laid out: displaying a large compiled
    function in a notebook must not stall it for minutes (``f.render`` still draws it).
    """
    if shutil.which("dot") is None or text.count("\n") > NOTEBOOK_MAX_LINES:
        return None
    try:
        return run_dot(text, "svg").decode()
    except GraphvizError:
        return None
