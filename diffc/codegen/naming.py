"""Names in generated code: the user's own where possible, never a clash.

User names reach generated source only through :func:`sanitize`, so a name
can neither inject code nor shadow what the generated code relies on
(``np``, ``numba``, builtins, keywords, our helpers).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections.abc import Callable
from pathlib import Path

from diffc.ir import Node, Op

# builtins that exist only in some processes (``site`` adds help, exit, ...; the REPL and gettext add ``_``)
# are reserved always, so that the generated text does not depend on how Python was started
PROCESS_BUILTINS = frozenset({"help", "exit", "quit", "copyright", "credits", "license", "_"})
# The one list of the names generated code gives its own things. Module globals are reserved: a user's
# name that equals one is renamed (``np`` -> ``np_``). Loop variables are handed out per function by
# ``Namer.fresh`` after the user's names are taken, so the loop's gets the number (``chunks_2``) and the
# user's argument keeps its name; the loop printers (loops.py) take the bases from ``LOOP_NAMES``.
MODULE_NAMES = ("np", "numba", "math", "ShapeError", "forward", "grad", "value_and_grad", "vjp", "self")
LOOP_NAMES = {"index": "i", "column": "j", "carry": "k", "start": "start", "stop": "stop",
              "chunk": "chunk", "chunks": "chunks"}
GENERATED_NAMES = MODULE_NAMES + tuple(LOOP_NAMES.values())
RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | PROCESS_BUILTINS \
    | frozenset(MODULE_NAMES)


def support_names() -> frozenset[str]:
    """Every top-level function of ``diffc/support/``: names generated code may call.

    A variable of the same name would shadow the helper
    (``stable_softmax = stable_softmax(z, (1,))``). Read from the source with
    ``ast``, so that naming does not import Numba.
    """
    folder = Path(__file__).resolve().parent.parent / "support"
    names: set[str] = set()
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names.update(node.name for node in tree.body if isinstance(node, ast.FunctionDef))
    return frozenset(names)


RESERVED = RESERVED | support_names()


def sanitize(name: str) -> str:
    """A valid, non-reserved identifier made from ``name`` (``lambda`` -> ``lambda_``)."""
    text = re.sub(r"\W", "_", name, flags=re.ASCII) or "_"
    if text[0].isdigit():
        text = "_" + text
    if text.startswith("__"):
        text = "u" + text
    while text in RESERVED:
        text += "_"
    return text


class Namer:
    """Hands out unique identifiers; a number is added only on collision."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken: set[str] = set(taken or ())
        self._next: dict[str, int] = {}  # per base, where the search for a free number resumes

    def fresh(self, base: str, avoid: frozenset[str] | set[str] = frozenset()) -> str:
        """``base``, or ``base_2``, ``base_3``, ...: the first name not taken (nor in ``avoid``)."""
        base = sanitize(base)
        # ``taken`` only grows, so the smallest free number for ``base`` never goes down:
        # resuming from the last one keeps the names and makes n temporaries O(n), not O(n^2)
        name, k = base, self._next.get(base, 2)
        if name in self.taken or name in avoid:
            name = f"{base}_{k}"
            while name in self.taken or name in avoid:
                k += 1
                name = f"{base}_{k}"
            self._next[base] = k + 1
        self.taken.add(name)
        return name


# -- temporaries named after what they compute: ``neg_z``, ``one_minus_y``, ``X_w``, ``inv_m``, ``log_a`` --
# (diffc/codegen/printer.py asks for these first, then for the name of the statement a value feeds,
# ``loss_terms``, and falls back to the op's name)
MAX_NAME = 18  # a longer description is no name: the value is named after what it feeds, or its op
DESCRIBE_DEPTH = 2  # operands without a name of their own are described this many levels deep
INFIX_WORDS: dict[Op, str] = {Op.ADD: "plus", Op.SUB: "minus", Op.DIV: "over", Op.MUL: "", Op.MATMUL: "",
                              Op.POW: "pow", Op.GT: "gt", Op.GE: "ge", Op.LT: "lt", Op.LE: "le",
                              Op.EQ: "eq", Op.NE: "ne"}  # "": juxtaposed, as in algebra (``X_w``, ``two_x``)
NUMBER_WORDS: dict[float, str] = {0.0: "zero", 1.0: "one", 2.0: "two", 0.5: "half", 3.0: "three", 10.0: "ten"}
OP_WORDS: dict[Op, str] = {Op.SLICE: "part", Op.CAST: "as", Op.BROADCAST: "full", Op.TRANSPOSE: "T",
                           Op.RESHAPE: "reshaped"}  # written after the operand: ``x_part``, ``w_T``, ``b_full``
FEEDS_DEPTH = 4  # single-use values looked through to the statement a value feeds

Label = Callable[[Node], "str | None"]


def describe(node: Node, label: Label, depth: int = DESCRIBE_DEPTH) -> str | None:
    """A name saying what ``node`` computes from its operands' names, or ``None`` (too long, no words).

    ``label(x)`` is the name of an operand that has one (a variable, a size, a
    number word); other operands are described in turn, ``depth`` levels deep.
    """
    def operand(x: Node) -> str | None:
        found = label(x)
        if found is not None or depth <= 0 or not x.inputs:
            return found
        return describe(x, label, depth - 1)

    op, inputs = node.op, node.inputs
    if op is Op.DIV and _number(inputs[0]) == 1.0:
        words = ["inv", operand(inputs[1])]
    elif op is Op.MAX and _number(inputs[1]) == 0.0:
        words = ["relu", operand(inputs[0])]
    elif op in INFIX_WORDS and len(inputs) == 2:
        words = [operand(inputs[0]), INFIX_WORDS[op], operand(inputs[1])]
    elif op in OP_WORDS and len(inputs) == 1:
        words = [operand(inputs[0]), OP_WORDS[op]]
    elif inputs and len(inputs) <= 2:
        words = [op.value, *(operand(x) for x in inputs)]
    else:
        return None
    if any(w is None for w in words):
        return None
    name = "_".join(w for w in words if w)
    return name if len(name) <= MAX_NAME else None


def _number(node: Node) -> float | None:
    if node.op is Op.CONST and node.value.ndim == 0 and node.value.dtype.kind in "iuf":
        return float(node.value.item())
    return None


def number_word(node: Node) -> str | None:
    """``one`` for the constant 1.0: a number as a name part (``one_minus_y``)."""
    value = _number(node)
    return NUMBER_WORDS.get(value) if value is not None else None
