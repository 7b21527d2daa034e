"""The order in which passes run, and the simplifier built from them."""

from __future__ import annotations

from diffc.ir import Node, Program
from diffc.passes.algebra import REWRITES
from diffc.passes.fold import fold_constants
from diffc.passes.rebuild import first_rewrite, rebuild

MAX_ROUNDS = 8


def local_rewrite(node: Node) -> Node | None:
    """Fold constants first, then try the node's algebraic identities in order."""
    folded = fold_constants(node)
    return folded if folded is not None else first_rewrite(REWRITES, node)


def simplify(program: Program) -> Program:
    """Constant folding, identities, CSE and DCE, repeated until a round rewrites nothing.

    A round in which no rewrite fires copies the program unchanged (up to the
    merging of equal nodes, whose users were already offered every rewrite
    in that same walk), so the next round could not change it either: the
    count of rewrites is the fixed-point test, without printing the program.
    """
    for _ in range(MAX_ROUNDS):
        fired = 0

        def counted(node: Node) -> Node | None:
            nonlocal fired
            better = local_rewrite(node)
            fired += better is not None and better is not node
            return better

        program = rebuild(program, counted)
        if not fired:
            break
    return program
