"""Canonical operand order: one printed form per expression tree.

The three front ends build the same tree for the same formula but not in
the same operand order (SymPy sorts ``(b + 1)*(a + b)`` its own way) nor in
the same creation order (so node ids differ). :func:`canonicalize` rebuilds
a program so that two programs that differ only in the operand order of
commutative ops print identically:

1. Bottom-up (the id order is topological, so this is a loop), every node
   gets a sort key ``(rank, label, digest)``: inputs first by name, then
   computed values, then sizes, then constants; ``digest`` is a hash of the
   op, attributes, type, constant bytes, input name and the digests of the
   (already sorted) operands. It is flat (a fixed-size string), so comparing
   keys never recurses however deep the graph is.
2. Commutative operands (``ir.COMMUTATIVE``) are sorted by that key.
3. The program is rebuilt into a new graph: inputs first in signature order,
   then a post-order walk (explicit stack) from the outputs, operands left to
   right, so node ids depend only on the canonical tree.

Ops are never rewritten: ``a - b`` stays ``sub``, ``a > b`` is not turned
into ``b < a``. Associativity is not touched either: ``(a + b) + c`` and
``a + (b + c)`` stay different.
"""

from __future__ import annotations

import hashlib

from diffc.ir import COMMUTATIVE, Graph, Node, Op, Program, type_text

SortKey = tuple[int, str, bytes]

_RANK = {Op.INPUT: 0, Op.DIM: 2, Op.CONST: 3}  # every other op ranks 1


def canonicalize(program: Program) -> Program:
    """A new program with commutative operands in canonical order; ``program`` is untouched."""
    keys: dict[Node, SortKey] = {}
    operands: dict[Node, tuple[Node, ...]] = {}
    for node in program.nodes():
        ins = node.inputs
        if node.op in COMMUTATIVE:
            ins = tuple(sorted(ins, key=keys.__getitem__))
        operands[node] = ins
        keys[node] = _sort_key(node, [keys[x] for x in ins])

    graph = Graph()
    graph.adopt_sizes(program.graph)
    new: dict[Node, Node] = {node: graph.copy_node(node, ()) for node in program.inputs}
    stack: list[tuple[Node, bool]] = [(out, False) for out in reversed(program.outputs)]
    while stack:
        node, ready = stack.pop()
        if node in new:
            continue
        if ready:
            new[node] = graph.copy_node(node, [new[x] for x in operands[node]])
            continue
        stack.append((node, True))
        stack.extend((x, False) for x in reversed(operands[node]) if x not in new)
    for node, name in program.graph.names.items():
        if node in new:
            graph.names[new[node]] = name
    for node, notes in program.graph.notes.items():
        if node in new:
            graph.notes[new[node]] = notes
    for node, said in program.graph.statements.items():
        if node in new:
            graph.statements[new[node]] = said
    return Program(graph, [new[x] for x in program.inputs], [new[x] for x in program.outputs],
                   program.output_names, program.name)


def _sort_key(node: Node, operand_keys: list[SortKey]) -> SortKey:
    """``(rank, label, digest)``; ``label`` makes inputs sort by name (readable ``a*b``)."""
    label = node.attr("name") if node.op is Op.INPUT else ""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{node.op.value}|{node.attrs!r}|{type_text(node.dtype, node.shape)}|{label}".encode())
    if node.op is Op.CONST:
        digest.update(node.value.tobytes())
    for key in operand_keys:
        digest.update(key[2])
    return _RANK.get(node.op, 1), label, digest.digest()
