"""Arguments as trees: nested lists, tuples and dicts of arrays and numbers (JAX's pytrees).

JAX and autograd users pass parameters as ``[(W1, b1), (W2, b2)]`` or
``{"W": W, "b": b}``; the IR only knows arrays and numbers. :func:`flatten`
turns one argument into its leaves, each named after its path
(``params_0_W``), and a *tree*, a hashable description of the containers;
:func:`unflatten` builds the same containers around other leaves (tracers
while tracing, gradients after a call).

What is a leaf: an array, a number, or a list or tuple holding only numbers
(NumPy reads ``[1.0, 2.0]`` as an array, and so does diffc). A list or tuple
holding an array, a list of arrays, or a dict is a container, as in JAX; a
dict always is one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# a tree is None (a leaf), ("list" | "tuple", children) or ("dict", keys, children)
Tree = Any

LEAF: Tree = None


def _numbers_only(value: Any) -> bool:
    """A list or tuple that NumPy reads as a numeric array (nested lists of numbers)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif not isinstance(item, (bool, int, float, complex, np.number, np.bool_)):
            return False
    return True


def is_leaf(value: Any) -> bool:
    if isinstance(value, dict):
        return False
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and _numbers_only(value)
    return True


def flatten(value: Any) -> tuple[list[tuple[tuple[Any, ...], Any]], Tree]:
    """The leaves of ``value`` with their paths (keys and indices from the root), and its tree."""
    leaves: list[tuple[tuple[Any, ...], Any]] = []

    def walk(item: Any, path: tuple[Any, ...]) -> Tree:
        if is_leaf(item):
            leaves.append((path, item))
            return LEAF
        if isinstance(item, dict):
            keys = tuple(item)
            return ("dict", keys, tuple(walk(item[k], (*path, k)) for k in keys))
        kind = "tuple" if isinstance(item, tuple) else "list"
        return (kind, tuple(walk(child, (*path, i)) for i, child in enumerate(item)))

    tree = walk(value, ())
    return leaves, tree


def unflatten(tree: Tree, leaves: Iterator[Any] | Sequence[Any]) -> Any:
    """The containers of ``tree`` around ``leaves``, taken in order (as :func:`flatten` gave them)."""
    items = iter(leaves)

    def build(node: Tree) -> Any:
        if node is LEAF:
            return next(items)
        if node[0] == "dict":
            return {k: build(child) for k, child in zip(node[1], node[2], strict=True)}
        children = [build(child) for child in node[1]]
        return tuple(children) if node[0] == "tuple" else children

    return build(tree)


def leaf_count(tree: Tree) -> int:
    count, stack = 0, [tree]
    while stack:
        node = stack.pop()
        if node is LEAF:
            count += 1
        else:
            stack.extend(node[-1])
    return count


def leaf_name(root: str, path: tuple[Any, ...]) -> str:
    """``params_0_W``: the argument's name and the path, made an identifier (the generated code's name)."""
    parts = [root, *(re.sub(r"\W", "_", str(p)) for p in path)]
    return "_".join(p for p in parts if p) or root


# ---------------------------------------------------------------------------
# one call's arguments: per parameter a tree of traced leaves, or a constant

_STATIC_TYPES = (type(None), bool, int, str)


def is_static(value: Any) -> bool:
    """A value a defaulted parameter passes as a constant: ``None``, an int, a bool, a string, a tuple of them.

    Floats and arrays are data (traced); an int of a defaulted parameter is an
    option (``axis=0``, ``steps=3``) that the code may need as a real int.
    """
    if isinstance(value, tuple):
        return all(is_static(v) for v in value)
    return isinstance(value, _STATIC_TYPES)


def _static_key(value: Any) -> Any:
    """Keys that tell ``True`` from ``1`` and ``(1,)`` from ``[1]``."""
    if isinstance(value, tuple):
        return ("tuple", tuple(_static_key(v) for v in value))
    return (type(value).__name__, value)


class Arguments:
    """How the user's arguments of one call become the IR's inputs (and gradients go back).

    ``parts`` holds, per parameter, ``("tree", tree)`` for traced leaves or
    ``("static", value)`` for a constant; ``leaves`` the leaf names per
    parameter. Two calls with equal :attr:`key` share a compiled signature.
    """

    __slots__ = ("key", "leaves", "names", "parts")

    def __init__(self, names: Sequence[str], parts: Sequence[tuple[str, Any]],
                 leaves: Sequence[Sequence[str]]) -> None:
        self.names = tuple(names)
        self.parts = tuple(parts)
        self.leaves = tuple(tuple(group) for group in leaves)
        self.key = tuple((kind, _static_key(v) if kind == "static" else v) for kind, v in self.parts)

    @classmethod
    def flat(cls, names: Sequence[str]) -> Arguments:
        """Every parameter one leaf of its own name (declared types, expression strings, SymPy)."""
        return cls(names, [("tree", LEAF)] * len(names), [[n] for n in names])

    @property
    def is_flat(self) -> bool:
        """The compiled functions take the user's arguments as they are (the fast call path applies)."""
        return all(kind == "tree" and v is LEAF for kind, v in self.parts)

    def arguments(self, leaves: Sequence[Any]) -> list[Any]:
        """The user's arguments around ``leaves`` (tracers while tracing): containers rebuilt, constants put back."""
        items = iter(leaves)
        return [value if kind == "static" else unflatten(value, items) for kind, value in self.parts]

    def gradients(self, wrt: Sequence[str], grads: Sequence[Any], bare: bool) -> Any:
        """Leaf gradients (in ``wrt`` order) as the user's structures: one per parameter that has any.

        A leaf not differentiated (integer data) has ``None`` in its place.
        """
        by_leaf = dict(zip(wrt, grads, strict=True))
        out = [unflatten(tree, [by_leaf.get(name) for name in names])
               for (kind, tree), names in zip(self.parts, self.leaves, strict=True)
               if kind == "tree" and any(name in by_leaf for name in names)]
        return out[0] if bare else tuple(out)
