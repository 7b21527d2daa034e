"""Forward mode and second order, built from the reverse pass alone.

There is no tangent rule table. Both programs come from :func:`reverse`
applied to a program that is itself the output of :func:`reverse`:

* **jvp by the transpose trick.** The vjp program ``x, u -> Jᵀu`` is linear
  in the cotangent ``u``, so ``⟨Jᵀu, t⟩ = ⟨u, J t⟩`` and the gradient of
  ``s(u) = ⟨vjp(x, u), t⟩`` with respect to ``u`` is ``J t``. Reverse mode
  over that scalar transposes every linear adjoint op (``outer``'s
  transpose is a matrix-vector product, ``broadcast``'s a sum, ``where``'s
  a ``where``) with the rules the table already has, and the result no
  longer depends on ``u`` (the derivative of a linear map is constant), so
  ``u`` is bound to zero and folds away. Why not a tangent table: a second
  table of one rule per op would have to agree with the first on every kink
  and tie convention, and every new op would need both; transposing the one
  table gives those conventions for free, and the simplifier removes the
  scaffolding (tests/test_jacobian.py checks ``⟨u, J t⟩ = ⟨Jᵀu, t⟩`` on
  drawn programs).
* **hvp by reverse over reverse.** The gradient program is simplified IR
  made of differentiable ops, so the gradient of ``⟨∇f(x), v⟩`` with respect
  to ``x`` is ``H v``: one more reverse pass over the simplified gradient,
  printed as one function like the gradient (the Numba back end fuses it
  into the same kind of loops).

Kinks: ``max``, ``relu``, ``abs``, ``clip`` and friends route their
cotangent with a ``where`` on a comparison, and comparisons are not
differentiable, so the second pass sees a piecewise-linear gradient: the
second derivative is exactly 0 away from a tie, and also *at* the tie (no
Dirac mass: the Hessian of ``relu`` at 0 is 0, of ``abs`` at 0 is 0), as in
JAX, PyTorch and autograd.
"""

from __future__ import annotations

from collections.abc import Sequence

from diffc.adjoint.reverse import reverse
from diffc.ir import Node, Op, Program
from diffc.passes.pipeline import simplify
from diffc.passes.rebuild import rebuild


def inner(pairs: Sequence[tuple[Node, Node]]) -> Node:
    """``Σ_i sum(a_i * b_i)``: the scalar whose gradient transposes a linear map."""
    total: Node | None = None
    for a, b in pairs:
        product = a * b
        if product.ndim:
            product = product.graph.apply(Op.SUM, product, axis=tuple(range(product.ndim)))
        total = product if total is None else total + product
    assert total is not None, "inner product of nothing"
    return total


def direction_name(program: Program, name: str) -> str:
    """``x_dot`` for input ``x``: the tangent (direction) of that input, renamed apart from the others."""
    taken = {n.attr("name") for n in program.graph.nodes if n.op is Op.INPUT}
    candidate = f"{name}_dot"
    while candidate in taken:
        candidate += "_"
    return candidate


def tangent_inputs(program: Program, wrt: Sequence[Node]) -> list[Node]:
    """One new input per differentiated input, of its dtype and shape."""
    return [program.graph.input(direction_name(program, w.attr("name")), w.dtype, w.shape) for w in wrt]


def bind_one(program: Program, cotangent: Node) -> Program:
    """``program`` with its scalar cotangent bound to 1.0, simplified."""
    one = program.graph.const(1.0, cotangent.dtype)
    return simplify(rebuild(program, substitute={cotangent: one}))


def jvp_program(vjp: Program, count: int) -> Program:
    """``(x..., t...) -> (f(x), J t)`` from the vjp program ``(x..., u) -> (f(x), Jᵀu...)``.

    ``count`` is the number of differentiated inputs (the gradients after
    the value); the tangents take their shapes from those gradients.
    """
    graph = vjp.graph
    *xs, u = vjp.inputs
    out, grads = vjp.outputs[0], vjp.outputs[1:1 + count]
    tangents = [graph.input(direction_name(vjp, g_name[:-4] if g_name.endswith("_bar") else g_name), g.dtype,
                            g.shape) for g, g_name in zip(grads, vjp.output_names[1:], strict=True)]
    scalar = Program(graph, [*xs, u, *tangents], [inner(list(zip(grads, tangents, strict=True)))], ["s"], vjp.name)
    transposed = reverse(scalar, [u])  # (x, u, t, s_bar) -> (s, J t)
    s_bar = transposed.inputs[-1]
    zero = graph.const(0.0, u.dtype)
    if u.shape:
        zero = graph.apply(Op.BROADCAST, zero, shape=u.shape)
    out_name = vjp.output_names[0]
    program = Program(graph, transposed.inputs, [out, transposed.outputs[1]], [out_name, f"{out_name}_dot"],
                      vjp.name)
    one = graph.const(1.0, s_bar.dtype)
    return simplify(rebuild(program, substitute={s_bar: one, u: zero}))


def hvp_program(grad: Program, wrt: Sequence[Node]) -> Program:
    """``(x..., v...) -> H v`` (one block per ``wrt`` input) from the gradient program ``x -> (f, ∇f...)``."""
    count = len(wrt)
    grads = grad.outputs[1:1 + count]
    directions = tangent_inputs(grad, wrt)
    scalar = Program(grad.graph, [*grad.inputs, *directions], [inner(list(zip(grads, directions, strict=True)))],
                     ["s"], grad.name)
    second = reverse(scalar, list(wrt))  # (x, v, s_bar) -> (s, Hv...)
    s_bar = second.inputs[-1]
    names = [f"{w.attr('name')}_hvp" for w in wrt]
    program = Program(grad.graph, second.inputs, second.outputs[1:], names, grad.name)
    return bind_one(program, s_bar)
