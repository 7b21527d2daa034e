"""NumPy helpers for integer indexing that NumPy has no one call for.

``np.put_along_axis`` assigns, so a repeated index would keep one value; the
adjoint of ``np.take_along_axis`` must add them up, which ``np.add.at`` does
given the full index tuple.
"""

from __future__ import annotations

import numpy as np


def scatter_add_along(g: np.ndarray, idx: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Zeros of g's shape with ``size`` entries on ``axis``, g added at idx along it (repeats add up)."""
    shape = list(g.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=g.dtype)
    where = list(np.indices(idx.shape, sparse=True))
    where[axis] = idx
    np.add.at(out, tuple(where), g)
    return out
