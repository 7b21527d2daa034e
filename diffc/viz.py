"""Graphviz DOT text of a forward graph and its adjoint.

Forward nodes sit in one cluster, adjoint nodes (everything the reverse pass
added) in another, so the picture shows the notes' two passes: values flow
down through the forward graph, cotangents flow back up through the adjoint.
The output is deterministic: nodes and edges follow node ids.
"""

from __future__ import annotations

from diffc.ir import Node, Op, Program, dim_text, float_text, reachable, type_text


def _label(node: Node) -> str:
    kind = node.op.value
    if node.op is Op.INPUT:
        kind = node.attr("name")
    elif node.op is Op.CONST:
        value = node.value
        kind = float_text(value.item()) if value.ndim == 0 and node.dtype.is_float else f"const{value.shape}"
    elif node.op is Op.DIM:
        kind = dim_text(node.attr("dim"))
    elif node.name:
        kind = f"{node.name} = {kind}"
    return f"{kind}\\n{type_text(node.dtype, node.shape)}".replace('"', '\\"')


def to_dot(program: Program, title: str = "diffc") -> str:
    """DOT text of a value-and-gradient program (or a forward one).

    The first output is the value: what it needs is the forward graph; every
    other node the outputs need belongs to the adjoint.
    """
    fwd = reachable(program.outputs[:1])
    known = set(fwd)
    back = [n for n in reachable(program.outputs) if n not in known]
    lines = [f'digraph "{title}" {{', "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    for cluster, nodes, colour in (("forward", fwd, "lightblue"), ("adjoint", back, "mistyrose")):
        if not nodes:
            continue
        lines.append(f'  subgraph cluster_{cluster} {{ label="{cluster}"; style=dashed;')
        for node in nodes:
            shape = "ellipse" if node.op is Op.INPUT else "box"
            lines.append(f'    n{node.id} [label="{_label(node)}", shape={shape}, style=filled, fillcolor={colour}];')
        lines.append("  }")
    for node in fwd + back:
        for x in node.inputs:
            lines.append(f"  n{x.id} -> n{node.id};")
    for k, (node, name) in enumerate(zip(program.outputs, program.output_names, strict=True)):
        lines.append(f'  out{k} [label="{name}", shape=plaintext];')
        lines.append(f"  n{node.id} -> out{k};")
    lines.append("}")
    return "\n".join(lines) + "\n"
