"""Names in generated code: the user's own where possible, never a clash.

User names reach generated source only through :func:`sanitize`, so a name
can neither inject code nor shadow what the generated code relies on
(``np``, ``numba``, builtins, keywords, our helpers).
"""

from __future__ import annotations

import builtins
import keyword
import re

# builtins that exist only in some processes (``site`` adds help, exit, ...; the REPL and gettext add ``_``)
# are reserved always, so that the generated text does not depend on how Python was started
PROCESS_BUILTINS = frozenset({"help", "exit", "quit", "copyright", "credits", "license", "_"})
RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | PROCESS_BUILTINS | {
    "np", "numba", "math", "ShapeError", "forward", "grad", "value_and_grad", "vjp", "self",
}
# support helpers (diffc/support/stable.py, numba_loops.py) are module-level names of generated code:
# a variable of the same name would shadow the helper (``stable_softmax = stable_softmax(z, (1,))``)
RESERVED = RESERVED | {
    "stable_logsumexp", "stable_softmax", "stable_log_softmax", "first_max_mask", "first_min_mask",
    "first_max_index", "first_min_index", "rows_max", "rows_min", "rows_max_mask", "rows_min_mask",
    "rows_logsumexp", "rows_softmax", "rows_log_softmax",
}


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
