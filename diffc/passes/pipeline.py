"""The order in which passes run, and the simplifier built from them."""

from __future__ import annotations

from diffc.ir import Node, Program, program_text
from diffc.passes.algebra import REWRITES
from diffc.passes.fold import fold_constants
from diffc.passes.rebuild import first_rewrite, rebuild

MAX_ROUNDS = 8


def local_rewrite(node: Node) -> Node | None:
    """Fold constants first, then try the node's algebraic identities in order."""
    folded = fold_constants(node)
    return folded if folded is not None else first_rewrite(REWRITES, node)


def simplify(program: Program) -> Program:
    """Constant folding, identities, CSE and DCE, repeated until nothing changes."""
    text = program_text(program)
    for _ in range(MAX_ROUNDS):
        program = rebuild(program, local_rewrite)
        new_text = program_text(program)
        if new_text == text:
            break
        text = new_text
    return program
