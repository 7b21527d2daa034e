"""The one tree of errors diffc raises.

Every error a user can cause is a :class:`DiffcError`; the subclasses say which
stage refused the input and carry the facts needed to find it (line and column
for text, both shapes for a mismatch, the op and back end for a missing
printer). This module imports nothing, so every other module may import it.
"""

from __future__ import annotations


class DiffcError(Exception):
    """Base class of every error that diffc raises for a user's input."""


class ParseError(DiffcError):
    """An expression string that diffc does not accept.

    Carries the 1-based ``line``, the 1-based ``column`` and the offending
    ``text`` so that tools (the CLI) can point a caret at it.
    """

    def __init__(self, message: str, line: int = 0, column: int = 0,
                 text: str = "", source_line: str = "") -> None:
        self.line = line
        self.column = column
        self.text = text
        self.source_line = source_line
        self.message = message
        where = f"line {line}, column {column}: " if line else ""
        shown = f" (at {text!r})" if text else ""
        super().__init__(f"{where}{message}{shown}")


class TraceError(DiffcError):
    """Tracing a NumPy function met something it cannot record.

    Examples: an unsupported NumPy call (named in the message) or a Python
    ``if`` on a traced value (the message suggests ``np.where``).
    """


class ShapeError(DiffcError, ValueError):
    """Two shapes that must agree do not; the message names both.

    Generated code raises it with the message in parts, strings and sizes
    (``ShapeError("x has shape (", n, ",)", ...)``): Numba passes integers
    to an exception cheaply but compiles ``str(int)`` slowly, so the parts
    are joined here, in Python.
    """

    def __init__(self, *parts: object) -> None:
        super().__init__("".join(str(part) for part in parts))


class UnsupportedError(DiffcError, NotImplementedError):
    """An op that a stage (an adjoint rule, a back end's printer) lacks."""

    def __init__(self, message: str, op: str = "", backend: str = "") -> None:
        self.op = op
        self.backend = backend
        super().__init__(message)


class UnsupportedCallError(TraceError, UnsupportedError):
    """A traced function called a NumPy function (or method) that diffc cannot record.

    ``function`` is the name as the user wrote it (``np.fft.fft``); the message
    names the user's line and points to docs/numpy.md, the list of what is
    traced. It is a :class:`TraceError` (tracing stopped) and an
    :class:`UnsupportedError` (a gap in diffc, not a mistake in the code).
    """

    def __init__(self, message: str, function: str = "") -> None:
        self.function = function
        super().__init__(message)


class CodegenError(DiffcError):
    """diffc printed a module that is not valid Python: a bug of diffc's, never of the input.

    Carries the generated ``function`` and the 1-based ``line`` of the module
    where Python refused it, and ``saved``, the path of a copy of the source
    to attach to a bug report.
    """

    def __init__(self, message: str, function: str = "", line: int = 0, saved: str = "") -> None:
        self.function = function
        self.line = line
        self.saved = saved
        super().__init__(message)


class FallbackWarning(RuntimeWarning):
    """Numba refused a generated function, so diffc runs it another way (slower, still right).

    Every fallback is a gap in the Numba back end: the warning names the
    function, the generated line Numba stopped at and Numba's error, and
    ``f.stats["fallback"]`` records what runs instead.
    """


class CacheWarning(UserWarning):
    """The disk cache of generated code met a damaged entry or an unusable directory (diffc/cache.py).

    Nothing is lost: diffc rebuilds the entry, or compiles in a private
    temporary directory; the warning says which file or directory and why.
    """


class ArgumentError(DiffcError, TypeError):
    """An argument, or an ``args`` entry, of the wrong kind (``args="x"``, ``{"x": 3}``, float labels).

    Also a :class:`TypeError`, the class Python raises for a wrong argument, so
    code that catches that keeps working; the message names the argument.
    """


class SizeError(DiffcError, ValueError):
    """A size or integer that NumPy would not accept: negative (``f64[-3]``) or beyond int64.

    Raised before any code is generated, so such a number never reaches Numba.
    """


class IndexTypeError(ArgumentError, IndexError):
    """A float (or other non-integer) value used as an index, where NumPy raises IndexError: met while
    tracing (an index traced as f64), or in a call (floats passed for an integer parameter, such as labels).

    Also an :class:`ArgumentError` (a ``TypeError``): in a call it is an argument of the wrong kind.
    """


class IndexRangeError(DiffcError, IndexError):
    """A constant index out of range (``x[10**30]``, or past an axis whose size is known while tracing):
    NumPy's IndexError, said at compile time."""


class GraphvizError(DiffcError):
    """A picture could not be drawn: Graphviz's ``dot`` is missing (the message says how to install it),
    it refused the text, or the file name does not say svg, png or pdf."""


class RowCouplingError(UnsupportedError):
    """A loss given Dask data that is not a sum (or mean) over the data's rows plus terms of the parameters.

    The message names the node that couples the rows (a maximum over them, a
    normalisation across them, the log of a sum over them) and its IR line.
    """
