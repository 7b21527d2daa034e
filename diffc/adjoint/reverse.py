"""Reverse mode: walk the forward graph backwards and emit adjoint nodes.

The sweep visits the nodes that lie on a path from a ``wrt`` input to the
output, in reverse topological order. Each node's adjoint is the sum of the
contributions its users sent it (a value used twice receives both); the op's
entry in :data:`ADJOINTS` turns that adjoint into contributions for its
inputs. Adjoint nodes go into the *same* graph as the forward ones, so the
gradient reuses forward values (``exp``'s adjoint multiplies by ``out``)
instead of recomputing them.

Broadcasting is undone here, once, for every rule: a contribution shaped like
a broadcast output is summed over the broadcast axes down to its input's
shape. A contribution smaller than its target (the scalar cotangent of a sum)
stays small while elementwise rules consume it, and is broadcast only where a
full-shaped value is needed (a matrix product, a returned gradient).
"""

from __future__ import annotations

from collections.abc import Sequence

from diffc.adjoint.notes import Statements, note
from diffc.adjoint.rules import ADJOINTS, NON_DIFFERENTIABLE
from diffc.errors import DiffcError, UnsupportedError
from diffc.ir import ELEMENTWISE, MAX_NOTES, Graph, Node, Op, Program, Shape, broadcast_shapes, join_notes, reachable


def unbroadcast(c: Node, shape: Shape) -> Node:
    """Fit contribution ``c`` to an input of ``shape``: sum broadcast axes away."""
    graph = c.graph
    if c.shape == shape:
        return c
    full = broadcast_shapes(graph, c.shape, shape)
    if full == shape:
        return c  # c broadcasts into the input as it is; expanded later if needed
    if full != c.shape:
        c = graph.apply(Op.BROADCAST, c, shape=full)
    lead = len(full) - len(shape)
    if lead:
        c = graph.apply(Op.SUM, c, axis=tuple(range(lead)))
    ones = tuple(i for i, d in enumerate(shape) if d == 1 and c.shape[i] != 1)
    if ones:
        c = graph.apply(Op.SUM, c, axis=ones, keepdims=True)
    return c


def expand(g: Node, shape: Shape) -> Node:
    """Broadcast ``g`` to exactly ``shape`` (a no-op when it has it already)."""
    return g if g.shape == shape else g.graph.apply(Op.BROADCAST, g, shape=shape)


Guard = frozenset[tuple[Node, bool]]  # conditions (and their polarity) under which a value is used


def branch_guards(forward: Sequence[Node], out: Node) -> dict[Node, Guard]:
    """For each node, the ``where`` conditions that guard *every* use of it.

    A value that only a ``where`` branch uses (``sqrt(x)`` in
    ``where(x > 0, sqrt(x), 0)``) matters only where its branch is selected.
    Its contributions are selected with the same condition, so that a NaN or
    inf it computes on the side not taken (``1 / (2 sqrt(x))`` at x < 0) never
    reaches the gradient: JAX and PyTorch return NaN there; we return 0.
    """
    guards: dict[Node, Guard] = {out: frozenset()}
    for node in reversed(forward):  # users before the values they use
        mine = guards.get(node)
        if mine is None:
            continue
        for position, x in enumerate(node.inputs):
            # guards hold element by element: they stop at a reduction, a product or a broadcast
            use = mine if node.op in ELEMENTWISE and x.shape == node.shape else frozenset()
            if node.op is Op.WHERE and position > 0 and x is not node.inputs[0] and x.shape == node.shape:
                use = use | {(node.inputs[0], position == 1)}
            known = guards.get(x)
            guards[x] = use if known is None else known & use  # used in both branches: unguarded
    return guards


def guarded(c: Node, guard: Guard) -> Node:
    """Select contribution ``c`` by each guarding condition (exactly zero elsewhere)."""
    for cond, taken in sorted(guard, key=lambda item: (item[0].id, item[1])):
        zero = c.graph.const(0.0, c.dtype)
        c = c.graph.apply(Op.WHERE, cond, c, zero) if taken else c.graph.apply(Op.WHERE, cond, zero, c)
    return c


def annotate(graph: Graph, start: int, notes: tuple[str, ...]) -> None:
    """Give the nodes created since ``start`` the rules that made them (diffc/adjoint/notes.py)."""
    if notes:
        joined = join_notes(notes)
        for node in graph.nodes[start:]:
            graph.notes.setdefault(node, joined)


def reverse(program: Program, wrt: Sequence[Node], cotangent_name: str | None = None) -> Program:
    """The value-and-gradient program of a one-output ``program``.

    Returns a program over the same graph whose inputs are the forward inputs
    followed by the output's cotangent (an input named ``<out>_bar``), and
    whose outputs are the value followed by one gradient per ``wrt`` node.
    """
    if len(program.outputs) != 1:
        raise DiffcError(f"reverse mode needs one output, {program.name} has {len(program.outputs)}")
    graph = program.graph
    (out,) = program.outputs
    out_name = program.output_names[0]
    for w in wrt:
        if not w.dtype.is_float:
            raise DiffcError(f"cannot differentiate with respect to {w.name!r}: its dtype {w.dtype.value} "
                             "is not floating point (integer and boolean inputs are data)")

    forward = reachable([out])
    wanted = set(wrt)
    active: set[Node] = set()
    for node in forward:  # ids ascend: inputs come first
        if node in wanted or any(x in active for x in node.inputs):
            active.add(node)

    guards = branch_guards(forward, out)
    statements = Statements(program, forward)  # the user's statements each node's rule comes from
    taken = {n.attr("name") for n in graph.nodes if n.op is Op.INPUT}
    name = cotangent_name or f"{out_name}_bar"
    while name in taken:  # a user's argument may already be called e_bar
        name += "_"
    cotangent = graph.input(name, out.dtype, out.shape)
    contributions: dict[Node, list[Node]] = {out: [cotangent]}
    sent: dict[Node, list[str]] = {}  # per node, the notes of the rules that sent it contributions
    adjoint: dict[Node, Node] = {}
    for node in reversed(forward):
        parts = contributions.pop(node, None)
        if node not in active or not parts:
            continue
        start = len(graph.nodes)
        g = parts[0]
        for part in parts[1:]:
            g = g + part
        if node.op not in ELEMENTWISE:
            g = expand(g, node.shape)
        annotate(graph, start, tuple(sent.get(node, ())))
        adjoint[node] = g
        name = node.name
        if name and g.op is not Op.INPUT:
            graph.names.setdefault(g, f"{name}_bar")
        if node.op in NON_DIFFERENTIABLE:
            continue
        rule = ADJOINTS.get(node.op)
        if rule is None:
            raise UnsupportedError(f"no adjoint rule for op {node.op.value!r}", op=node.op.value)
        guard = guards.get(node, frozenset())
        start, why = len(graph.nodes), note(node, statements)
        for x, c in zip(node.inputs, rule(g, node, *node.inputs), strict=True):
            if c is not None and x in active:
                # where selects its own contributions; a guard (shaped like the node) fits a contribution
                # only where that is shaped like the node too: elementwise ops, or a scalar node (not a
                # gather's scatter into a matrix)
                if guard and node.op is not Op.WHERE and (node.op in ELEMENTWISE or not node.shape):
                    c = guarded(c, guard)
                if node.op in ELEMENTWISE and x.shape != node.shape:
                    # x was broadcast here: a cotangent still smaller than the node (the scalar of
                    # a sum) stands for every element, so it expands before summing down to x
                    c = expand(c, broadcast_shapes(graph, c.shape, node.shape))
                # a contribution passed on as it is (add's g) carries the rule that made it: a chain of
                # two (mul switches, then add distributes), never the whole path (that would be quadratic)
                passed = graph.notes.get(c, ())[:1] if c.id < start else ()
                contributions.setdefault(x, []).append(unbroadcast(c, x.shape))
                known = sent.setdefault(x, [])
                if len(known) < MAX_NOTES:  # a value used thousands of times: its first rules are enough
                    known.extend((*passed, why))
        annotate(graph, start, (why,))

    grads = []
    for w in wrt:
        g = adjoint.get(w)
        if g is None:  # the output does not depend on w
            g = graph.const(0.0, w.dtype)
        grads.append(expand(g, w.shape))
        graph.output_notes[f"{w.name}_bar"] = join_notes(tuple(sent.get(w, ())))
    names = [out_name] + [f"{w.name}_bar" for w in wrt]
    return Program(graph, [*program.inputs, cotangent], [out, *grads], names, name=program.name)
