"""The safety net under the Numba back end: what runs when Numba refuses a generated function.

The fused loops are the fast form; if Numba still cannot type or lower them
(a Numba limitation diffc did not foresee), the same function is printed
again as NumPy statements under ``numba.njit``, and if Numba refuses that
too, as plain NumPy. Each step warns once (:class:`~diffc.errors.FallbackWarning`)
naming the function, the generated line and Numba's error, and is recorded
in ``f.stats["fallback"]``; the differential tests fail on any fallback, so
the net never hides a printer bug.
"""

from __future__ import annotations

import re
import warnings

from diffc.errors import FallbackWarning

# what runs after a refusal of each printer variant (module.PRINTERS names them)
NEXT_VARIANT = {"numba": "numba-statements", "numba-statements": "numpy"}
DESCRIPTION = {"numba-statements": "NumPy statements compiled by Numba", "numpy": "plain NumPy (no Numba)"}
LINE = re.compile(r'File "[^"]*diffc[^"]*\.py", line (\d+)')


def is_refusal(error: BaseException) -> bool:
    """Numba's own compile errors (typing, lowering, unsupported constructs), not errors of the run."""
    try:
        from numba.core.errors import NumbaError
    except ImportError:  # pragma: no cover - Numba is a dependency
        return False
    return isinstance(error, NumbaError)


def refused_line(error: BaseException, source: str) -> str:
    """The generated line Numba's message points at, stripped, or ``""``."""
    found = LINE.findall(str(error))
    lines = source.splitlines()
    if found and 0 < int(found[-1]) <= len(lines):
        return lines[int(found[-1]) - 1].strip()
    return ""


def warn_fallback(label: str, function: str, variant: str, error: BaseException, source: str) -> str:
    """Warn that ``function`` of ``label`` now runs as ``variant``; returns the reason recorded in stats."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    first = re.sub(r"\x1b\[[0-9;]*m", "", first)  # Numba colours its messages
    line = refused_line(error, source)
    reason = f"{type(error).__name__}: {first}" + (f" (at {line!r})" if line else "")
    warnings.warn(f"diffc: Numba refused {function}() of {label}: {reason}; running it as {DESCRIPTION[variant]} "
                  "instead. This is a gap in diffc's Numba back end; please report it.", FallbackWarning,
                  stacklevel=4)
    return reason
