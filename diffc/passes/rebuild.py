"""Rebuild a program into a fresh graph, rewriting each node on the way.

Every pass is a pure function ``Program -> Program``: it never mutates its
input. Rebuilding walks the old nodes in topological order and interns copies
in a new graph, so common subexpressions merge (interning *is* CSE) and nodes
that no output needs are never copied (dead code disappears).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from diffc.ir import Graph, Node, Op, Program, join_notes

Rewrite = Callable[[Node], "Node | None"]

MAX_REWRITES_PER_NODE = 32


def rebuild(program: Program, rewrite: Rewrite | None = None,
            substitute: Mapping[Node, Node] | None = None) -> Program:
    """Copy ``program`` into a new graph, applying ``rewrite`` to every new node.

    ``rewrite(node)`` returns a replacement (built in the node's graph) or
    ``None``; it is applied again to each replacement, up to a cap, so a
    chain of local identities settles within one walk. ``substitute`` maps
    old nodes to old nodes that stand in for them (an input bound to a
    constant, say).
    """
    old_graph = program.graph
    graph = Graph()
    graph.adopt_sizes(old_graph)
    substitute = dict(substitute or {})
    targets = set(substitute.values())
    roots = [substitute.get(n, n) for n in program.outputs]
    mapping: dict[Node, Node] = {}
    stack = list(roots)
    order: set[Node] = set()
    while stack:  # the old nodes the outputs need, after substitution
        node = stack.pop()
        if node in order:
            continue
        order.add(node)
        stack.extend(substitute.get(x, x) for x in node.inputs)
    for node in program.inputs:
        mapping[node] = graph.copy_node(node, ())
    # a leaf substitute (the constant 1.0 for a cotangent) may be newer than its users: it goes first
    for first in sorted(order, key=lambda n: (not (n in targets and not n.inputs), n.id)):
        # id order is topological unless a substitute is newer than a user of what it replaces
        # (exp(a) standing in for b in a * b): then its inputs are copied first, on demand
        stack: list[tuple[Node, bool]] = [(first, False)]
        open_nodes: set[Node] = set()  # expanded, waiting for their inputs: a path from ``first``
        while stack:
            node, expanded = stack.pop()
            if node in mapping:
                continue
            if not expanded:
                missing = [y for y in (substitute.get(x, x) for x in node.inputs) if y not in mapping]
                if missing:
                    if node in open_nodes:
                        raise ValueError(f"substitution makes {node!r} depend on itself")
                    open_nodes.add(node)
                    stack.append((node, True))
                    stack.extend((y, False) for y in reversed(missing))
                    continue
            open_nodes.discard(node)
            fresh_from = len(graph.nodes)
            new = graph.copy_node(node, [mapping[substitute.get(x, x)] for x in node.inputs])
            for _ in range(MAX_REWRITES_PER_NODE):
                better = rewrite(new) if rewrite else None
                if better is None or better is new:
                    break
                new = better
            mapping[node] = new
            name = old_graph.names.get(node)
            if name is not None and new.id >= fresh_from:  # an older node rewritten to keeps its own name
                graph.names.setdefault(new, name)
            said = old_graph.statements.get(node)
            if said is not None and (new.id >= fresh_from or new.op is Op.INPUT):  # the user's statement, too
                graph.statements.setdefault(new, said)
            notes = old_graph.notes.get(node)
            if notes and (new.id >= fresh_from or new in graph.notes):  # and its own rules (a constant: none)
                graph.notes[new] = join_notes(graph.notes.get(new, ()), notes)
    for node in program.inputs:
        graph.names[mapping[node]] = old_graph.names.get(node, node.attr("name"))
        if node in old_graph.statements:
            graph.statements.setdefault(mapping[node], old_graph.statements[node])
    keep_names(old_graph, graph, mapping)
    inputs = [mapping[n] for n in program.inputs if n not in substitute]
    outputs = [mapping[n] for n in roots]
    return Program(graph, inputs, outputs, program.output_names, program.name)


def keep_names(old_graph: Graph, graph: Graph, mapping: Mapping[Node, Node]) -> None:
    """Carry the user's names over to the rebuilt graph, for values no output needs too.

    A named value that no output needs any more (``a = sigmoid(z)`` once
    ``log(a)`` became ``-softplus(-z)``) is copied too, unreachable: the
    gradient rebuilds ``sigmoid(z)`` later, and interning hands it ``a``'s name.
    """
    for node, name in old_graph.names.items():
        if node not in mapping and node.inputs and all(x in mapping for x in node.inputs):
            copy = graph.copy_node(node, [mapping[x] for x in node.inputs])
            graph.names.setdefault(copy, name)
            if node in old_graph.statements:
                graph.statements.setdefault(copy, old_graph.statements[node])


def first_rewrite(rewrites: Mapping[Op, Sequence[Rewrite]], node: Node) -> Node | None:
    """The first rewrite registered for ``node``'s op that applies, or ``None``.

    Rewrite tables (``algebra.REWRITES``, ``stabilize.REWRITES``) list their
    rewrites per op, most specific first.
    """
    for rewrite in rewrites.get(node.op, ()):
        better = rewrite(node)
        if better is not None and better is not node:
            return better
    return None
