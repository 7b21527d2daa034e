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
from pathlib import Path

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

    def fresh(self, base: str) -> str:
        base = sanitize(base)
        # ``taken`` only grows, so the smallest free number for ``base`` never goes down:
        # resuming from the last one keeps the names and makes n temporaries O(n), not O(n^2)
        name, k = base, self._next.get(base, 2)
        if name in self.taken:
            name = f"{base}_{k}"
            while name in self.taken:
                k += 1
                name = f"{base}_{k}"
            self._next[base] = k + 1
        self.taken.add(name)
        return name
