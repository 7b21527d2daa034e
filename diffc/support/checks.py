"""The NumPy back end's entry check: one line per size that must agree.

Generated code checks each size an argument does not bind by itself with one
call, ``check_shape(X.shape[1] == n, "X.shape[1] must equal ...", (X.shape,
w.shape))``, instead of an ``if`` and a ``raise`` on two lines: a gradient of
twenty lines then spends two of them on checks, not eight. ``diffc emit``
copies this function into the module, after the module's own ``ShapeError``.
"""

from __future__ import annotations

from diffc.errors import ShapeError


def check_shape(ok: bool, message: str, got: object) -> None:
    """Raise ``ShapeError(message + str(got))`` unless ``ok`` (``got``: the shapes or sizes found)."""
    if not ok:
        raise ShapeError(message, got)
