"""What a Jacobian is, read from the IR before anything is computed.

The lecture notes teach layer Jacobians by their shape: for ``h = W h_prev``
the Jacobian ``∂h/∂h_prev`` *is* ``W``, ``∂h/∂W`` holds ``h_prev``
(``∂h_i/∂W_jk = δ_ij h_prev_k``: ``h_prevᵀ`` on every row), and a ReLU
layer's Jacobian is large but diagonal, since each output depends only on
the input at the same position. :func:`structure` finds these from the ops
on the paths from the input to the output:

* ``zero``: the output does not depend on the input;
* ``diagonal``: only elementwise ops, input and output of one shape;
* ``linear``: the output is ``A @ x`` (or ``x @ A``, or ``W @ h`` with
  respect to ``W``) of the input itself and a value that does not depend on
  it; the Jacobian is that value (``factor``);
* ``block-diagonal``: every value on the way keeps the input's rows (axis 0)
  apart: elementwise ops, reductions and axis ops along later axes, and
  ``X @ B`` with X on the path; row i of the output depends on row i of the
  input only (a row-wise softmax or layer);
* ``dense`` otherwise (a product mixes rows, a reduction sums them, an index
  moves them).

The answer is conservative: ``dense`` may be reported for a Jacobian that
happens to have more structure, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffc.ir import AXIS_OPS, ELEMENTWISE, REDUCTIONS, Node, Op, Program, reachable

KINDS = ("zero", "diagonal", "linear", "block-diagonal", "dense")


@dataclass(frozen=True)
class Structure:
    """The structure of ``∂output/∂wrt``, and the compressed form ``f.jacobian(..., compressed=True)`` returns."""

    kind: str  # one of KINDS
    wrt: str
    output: str
    text: str  # one sentence, as the notes would say it
    factor: Node | None = None  # linear: the matrix (or vector) the Jacobian is
    compressed: str = ""  # what compressed=True returns, in words

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Structure {self.kind}: {self.text}>"


def active_nodes(program: Program, x: Node) -> list[Node]:
    """The nodes on a path from ``x`` to the output, in topological order."""
    active: set[Node] = set()
    order = []
    for node in reachable(program.outputs[:1]):
        if node is x or any(i in active for i in node.inputs):
            active.add(node)
            order.append(node)
    return order


def label(program: Program, node: Node) -> str:
    """A person's name for a value: its user name, else its op."""
    return program.graph.names.get(node) or node.attr("name") or node.op.value


def structure(program: Program, x: Node) -> Structure:
    """The structure of the Jacobian of ``program``'s output with respect to input ``x``."""
    out = program.outputs[0]
    out_name, x_name = program.output_names[0], x.attr("name")
    where = f"∂{out_name}/∂{x_name}"
    active = active_nodes(program, x)
    if out not in active:
        return Structure("zero", x_name, out_name, f"{where} is zero: {out_name} does not depend on {x_name}",
                         compressed="0.0")
    ops = sorted({n.op.value for n in active if n is not x})
    if out.shape == x.shape and all(n.op in ELEMENTWISE and n.shape == x.shape for n in active if n is not x):
        return Structure("diagonal", x_name, out_name,
                         f"{where} is diagonal: elementwise ({', '.join(ops) or 'identity'}), each output depends "
                         f"only on the {x_name} at its position", compressed=f"the diagonal, shaped like {x_name}")
    linear = _linear(program, out, x, where)
    if linear is not None:
        return linear
    on_path = set(active)
    if x.ndim == 2 and out.ndim >= 1 and all(_keeps_rows(n, x, on_path) for n in active if n is not x):
        return Structure("block-diagonal", x_name, out_name,
                         f"{where} is block-diagonal: row i of {out_name} depends only on row i of {x_name} "
                         f"({', '.join(ops)})",
                         compressed=f"one block per row: shape (rows,) + {out_name}'s row + {x_name}'s row")
    return Structure("dense", x_name, out_name, f"{where} is dense ({', '.join(ops)})",
                     compressed="the dense Jacobian")


def _linear(program: Program, out: Node, x: Node, where: str) -> Structure | None:
    """``A @ x``, ``x @ A`` or ``W @ h`` (with respect to W), with the other operand independent of x."""
    if out.op is not Op.MATMUL or x not in out.inputs:
        return None
    a, b = out.inputs
    other = b if a is x else a
    if other is x or x in reachable([other]):
        return None
    name = label(program, other)
    if b is x and x.ndim == 1 and a.ndim == 2:  # h = W x: ∂h/∂x = W
        return Structure("linear", x.attr("name"), program.output_names[0],
                         f"{where} is {name}: a linear layer ({program.output_names[0]} = {name} @ {x.attr('name')})",
                         factor=a, compressed=name)
    if a is x and x.ndim == 1 and b.ndim == 2:  # h = x A: ∂h/∂x = Aᵀ
        return Structure("linear", x.attr("name"), program.output_names[0],
                         f"{where} is {name}.T: a linear layer ({program.output_names[0]} = "
                         f"{x.attr('name')} @ {name})", factor=b.T, compressed=f"{name}.T")
    if a is x and x.ndim == 2 and b.ndim == 1:  # h = W v: ∂h_i/∂W_jk = δ_ij v_k
        return Structure("linear", x.attr("name"), program.output_names[0],
                         f"{where} is {name}ᵀ on every row: ∂{program.output_names[0]}_i/∂{x.attr('name')}_jk "
                         f"= δ_ij {name}_k (h = W @ {name})", factor=b, compressed=name)
    return None


def _keeps_rows(node: Node, x: Node, on_path: set[Node]) -> bool:
    """Whether ``node`` keeps axis 0 (the rows of ``x``) apart: row i from row i of its inputs only.

    An input on the path must keep its rank in an elementwise op: NumPy aligns
    shapes on the right, so a per-row vector ``(m,)`` against ``(m, n)``
    would meet the columns, not the rows.
    """
    rows = x.shape[0]
    if not node.shape or node.shape[0] != rows:
        return False
    if node.op in ELEMENTWISE:
        return all(i not in on_path or i.ndim == node.ndim for i in node.inputs)
    if node.op in REDUCTIONS or node.op in AXIS_OPS:
        axes = node.attr("axis")
        axes = (axes,) if isinstance(axes, int) else tuple(axes or ())
        return bool(axes) and all(a % node.inputs[0].ndim != 0 for a in axes)
    if node.op is Op.MATMUL:
        a, b = node.inputs
        return a.ndim == 2 and a.shape[0] == rows and x not in reachable([b])
    if node.op in (Op.BROADCAST, Op.RESHAPE):
        source = node.inputs[0]
        return bool(source.shape) and source.shape[0] == rows and (
            node.op is Op.BROADCAST or all(d == 1 for d in (*source.shape[1:], *node.shape[1:])))
    return False
