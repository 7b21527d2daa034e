"""The Numba back end's entry check: one line per size that must agree (see :mod:`diffc.support.checks`).

``inline="always"`` puts the check into the caller before typing: called as
a function, Numba would compile it once per call site (each message is a
string literal, typed as its own type), about 0.1 s each; inlined, it costs
what the ``if`` and ``raise`` cost. The message's parts go to the exception
as they are (``ShapeError`` joins them in Python): building a string in
compiled code costs Numba about a second of compile time.
"""

from __future__ import annotations

import numba

from diffc.errors import ShapeError


@numba.njit(cache=True, error_model="numpy", fastmath=False, inline="always")
def check_shape(ok: bool, message: str, got: object) -> None:
    """Raise ``ShapeError(message + str(got))`` unless ``ok`` (``got``: the shapes or sizes found)."""
    if not ok:
        raise ShapeError(message, got)
