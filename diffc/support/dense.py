"""Dense Jacobians and Hessians, one column (or row) at a time, from compiled jvp, vjp and hvp.

Plain Python over NumPy, and self-contained: diffc's methods
(diffc/derivatives.py) call these functions, and ``diffc emit --derivative
jacobian|hessian`` copies them into the standalone module (through
``ast.unparse``, without their type hints, so they are written in forms it
prints back unchanged). Both build the matrices the same way, in the shape
convention of ``jax.jacobian`` and ``jax.hessian``: the output's shape
followed by the input's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np


def unit_arrays(shape: tuple[int, ...], dtype: Any) -> Iterator[Any]:
    """The unit arrays of ``shape`` in C order, one at a time (of shape ``()``: a NumPy scalar)."""
    for k in range(int(np.prod(shape, dtype=np.int64))):
        e = np.zeros(shape, dtype=dtype)
        e.flat[k] = 1
        if e.ndim == 0:
            e = e[()]
        yield e


def unit_directions(wrt_values: Sequence[np.ndarray], i: int, e: Any) -> list[Any]:
    """``e`` for the ``i``-th differentiated argument and zeros for the others, each of its own dtype."""
    return [e if j == i else np.zeros_like(v) if v.ndim else v.dtype.type(0) for j, v in enumerate(wrt_values)]


def dense_jacobian(value: Any, wrt_values: Sequence[Any], pull: Callable[[Any], Sequence[Any]],
                   push: Callable[[list[Any]], Any], mode: str = "auto") -> tuple[np.ndarray, ...]:
    """One block per differentiated argument ``x``, shaped ``value.shape + x.shape``.

    ``pull(u)`` is ``Jᵀu`` (one gradient per argument) and ``push(t)`` is
    ``J t`` (one tangent per argument). ``"rev"`` pulls back one unit
    cotangent per output element, ``"fwd"`` pushes one unit tangent per input
    element, and ``"auto"`` takes whichever needs fewer calls.
    """
    value = np.asarray(value)
    wrt_values = [np.asarray(v) for v in wrt_values]
    out_size = value.size
    in_size = sum([v.size for v in wrt_values])
    if mode == "auto":
        mode = "rev" if out_size <= in_size else "fwd"
    blocks = [np.empty(value.shape + v.shape, dtype=value.dtype) for v in wrt_values]
    if mode == "rev":
        for k, u in enumerate(unit_arrays(value.shape, value.dtype)):
            for block, g, v in zip(blocks, pull(u), wrt_values, strict=True):
                block.reshape(out_size, v.size)[k] = np.broadcast_to(g, v.shape).ravel()
        return tuple(blocks)
    for i, (block, v) in enumerate(zip(blocks, wrt_values, strict=True)):
        for k, e in enumerate(unit_arrays(v.shape, v.dtype)):
            column = np.asarray(push(unit_directions(wrt_values, i, e)))
            block.reshape(out_size, v.size)[:, k] = np.broadcast_to(column, value.shape).ravel()
    return tuple(blocks)


def dense_hessian(wrt_values: Sequence[Any], hvp: Callable[[list[Any]], Sequence[Any]]) -> list[list[np.ndarray]]:
    """Blocks ``H[a][b]`` shaped ``x_a.shape + x_b.shape``: one ``hvp`` per element of each argument.

    ``hvp(v)`` is ``H v`` for one direction per argument, one block per argument.
    The Hessian is symmetric, but every column is computed: a test compares
    ``H`` with ``H.T`` instead of the code assuming it.
    """
    wrt_values = [np.asarray(v) for v in wrt_values]
    blocks = [[np.empty(a.shape + b.shape, dtype=a.dtype) for b in wrt_values] for a in wrt_values]
    for b, v in enumerate(wrt_values):
        for k, e in enumerate(unit_arrays(v.shape, v.dtype)):
            for a, column in enumerate(hvp(unit_directions(wrt_values, b, e))):
                blocks[a][b].reshape(wrt_values[a].size, v.size)[:, k] = np.ravel(column)
    return blocks


# the functions an emitted module copies, in this order (each uses only those before it)
EMITTED = (unit_arrays, unit_directions, dense_jacobian, dense_hessian)
