"""Tracing np.linalg: solve, inv, det, slogdet, cholesky, eigh, eigvalsh, pinv, norm, matrix_power, multi_dot.

Each function records the IR ops of diffc/ir.py's np.linalg block (a matrix
op per LAPACK call) or, where NumPy defines it by other operations (a norm of
some ``ord``, a matrix power, a chain of products), those operations: they
then fuse into loops and differentiate like any other code. Matrices are of
rank 2: stacks of matrices are refused with a ``ShapeError``.

Functions that NumPy gives a named tuple (``slogdet``, ``eigh``) give one with
the same fields here, so ``sign, logdet = np.linalg.slogdet(a)`` and
``np.linalg.eigh(a).eigenvalues`` both trace.
"""

from __future__ import annotations

import math
import operator
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from diffc.errors import ShapeError, UnsupportedCallError
from diffc.frontends.trace import (
    _UNSET,
    Tracer,
    _apply,
    _axis,
    _fail,
    _matmul,
    _node,
    _promote,
    _reject_kwargs,
    _traced,
)
from diffc.ir import DType, Node, Op, index_grid, type_text

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])


def _float(t: Tracer, what: str) -> Node:
    """The traced argument as a float node: NumPy computes np.linalg in float64 for integer input."""
    node = t.node
    return node if node.dtype.is_float else _apply(t.graph, Op.CAST, (node,), what, dtype=DType.F64)


def _matrix(a: Any, what: str, kind: str = "a square matrix") -> Node:
    """A traced matrix argument (rank 2), as a float node (the ops' shape rules check squareness)."""
    node = _float(_traced(a, what), what)
    if node.ndim != 2:
        raise _fail(f"{what}: needs {kind} (rank 2), got {type_text(node.dtype, node.shape)}"
                    f"{'; stacks of matrices are not supported' if node.ndim > 2 else ''}", ShapeError)
    return node


def _record(op: Op, a: Any, what: str) -> Tracer:
    node = _matrix(a, what)
    return Tracer(_apply(node.graph, op, (node,), what))


def _np_inv(a: Any) -> Tracer:
    """np.linalg.inv: C = A⁻¹, with Ā = -Cᵀ C̄ Cᵀ."""
    return _record(Op.INV, a, "np.linalg.inv")


def _np_det(a: Any) -> Tracer:
    """np.linalg.det: Ā = C̄ det(A) A⁻ᵀ.

    Convention: the gradient needs an invertible A (at a singular A, np.linalg.inv raises LinAlgError).
    """
    return _record(Op.DET, a, "np.linalg.det")


def _np_slogdet(a: Any) -> SlogdetResult:
    """np.linalg.slogdet: (sign, logabsdet); the gradient flows through logabsdet, Ā = C̄ A⁻ᵀ.

    Convention: the sign has no gradient; the gradient needs an invertible A.
    """
    what = "np.linalg.slogdet"
    node = _matrix(a, what)
    return SlogdetResult(Tracer(_apply(node.graph, Op.DETSIGN, (node,), what)),
                         Tracer(_apply(node.graph, Op.LOGABSDET, (node,), what)))


def _np_solve(a: Any, b: Any) -> Tracer:
    """np.linalg.solve(a, b) for b a vector or a matrix: B̄ = A⁻ᵀ C̄, Ā = -B̄ Cᵀ."""
    what = "np.linalg.solve"
    graph, dtype, items, _ = _promote((a, b), what)
    dtype = dtype if dtype.is_float else DType.F64
    matrix, rhs = (_node(graph, item, dtype) for item in items)
    if matrix.ndim != 2:
        raise _fail(f"{what}: a must be a square matrix (rank 2), got {type_text(matrix.dtype, matrix.shape)}",
                    ShapeError)
    return Tracer(_apply(graph, Op.SOLVE, (matrix, rhs), what))


def _lower(a: Any, uplo: Any, what: str) -> Node:
    """The matrix whose lower triangle LAPACK reads: ``a``, or ``a.T`` for UPLO='U'."""
    node = _matrix(a, what)
    if uplo not in ("L", "U"):
        raise _fail(f"{what}: UPLO must be 'L' or 'U', got {uplo!r}", ShapeError)
    return node if uplo == "L" else node.T


def _np_cholesky(a: Any, /, *, upper: Any = False) -> Tracer:
    """np.linalg.cholesky: the lower factor L (its transpose for upper=True), Murray's adjoint.

    Convention: the gradient is symmetric, that of cholesky((A + Aᵀ) / 2), as in JAX and autograd
    (NumPy reads only the lower triangle of A).
    """
    what = "np.linalg.cholesky"
    node = _matrix(a, what)
    factor = _apply(node.graph, Op.CHOLESKY, (node,), what)
    return Tracer(factor.T if upper else factor)


def _np_eigh(a: Any, UPLO: Any = "L") -> EighResult:  # noqa: N803 - NumPy's name
    """np.linalg.eigh: (eigenvalues, eigenvectors) of a symmetric matrix, Giles's adjoint.

    Convention: the gradient is symmetric, that of eigh((A + Aᵀ) / 2), as in JAX and autograd;
    eigenvectors are defined up to sign, so a loss should not depend on their signs; at a repeated
    eigenvalue the eigenvectors' gradient is inf or NaN.
    """
    what = "np.linalg.eigh"
    node = _lower(a, UPLO, what)
    return EighResult(Tracer(_apply(node.graph, Op.EIGVALSH, (node,), what)),
                      Tracer(_apply(node.graph, Op.EIGVECSH, (node,), what)))


def _np_eigvalsh(a: Any, UPLO: Any = "L") -> Tracer:  # noqa: N803 - NumPy's name
    """np.linalg.eigvalsh: Ā = V diag(w̄) Vᵀ.

    Convention: the gradient is symmetric, that of eigvalsh((A + Aᵀ) / 2).
    """
    what = "np.linalg.eigvalsh"
    node = _lower(a, UPLO, what)
    return Tracer(_apply(node.graph, Op.EIGVALSH, (node,), what))


class _Refused:
    """A result that cannot be traced, refused where it is used rather than where it is made: after
    ``U, s, Vh = np.linalg.svd(X)`` a loss that reads only ``s`` traces."""

    def __init__(self, message: str) -> None:
        self._message = message

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise _fail(self._message, UnsupportedCallError, function="np.linalg.svd")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._refuse()

    __array_ufunc__ = __array_function__ = __getitem__ = __matmul__ = __rmatmul__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _refuse
    __pow__ = __neg__ = __array__ = __len__ = __iter__ = __float__ = _refuse


def _np_svd(a: Any, full_matrices: Any = True, compute_uv: Any = True, hermitian: Any = False) -> Any:
    """np.linalg.svd: (U, S, Vh) of the thin SVD, Townsend's adjoint (2016); S alone for compute_uv=False.

    ``full_matrices=True`` (NumPy's default) is the thin SVD for a square matrix; for a rectangular one
    the extra columns of U or rows of Vh are any orthonormal completion, with no derivative, so it is
    refused with a message (write ``full_matrices=False``). ``hermitian=True`` is read as the general case.

    Convention: the singular values' gradient is U diag(s̄) Vᵀ (exact where they are distinct, a
    subgradient of the norms elsewhere); the vectors' gradient is inf or NaN at a repeated singular value
    and they are defined up to sign, as in JAX and autograd.
    """
    what = "np.linalg.svd"
    node = _matrix(a, what, "a matrix")
    graph = node.graph
    values = Tracer(_apply(graph, Op.SVDVALS, (node,), what))
    if not compute_uv:
        return values
    if full_matrices and graph.resolve(node.shape[0]) != graph.resolve(node.shape[1]):
        refused = _Refused(f"{what}: full_matrices=True of a {type_text(node.dtype, node.shape)} matrix completes U "
                           "or Vh with columns that have no derivative; write np.linalg.svd(a, full_matrices=False)")
        return SVDResult(refused, values, refused)
    return SVDResult(Tracer(_apply(graph, Op.SVD_U, (node,), what)), values,
                     Tracer(_apply(graph, Op.SVD_VT, (node,), what)))


def _np_svdvals(x: Any, /) -> Tracer:
    """np.linalg.svdvals: the singular values, descending; Ā = U diag(s̄) Vᵀ."""
    what = "np.linalg.svdvals"
    return Tracer(_apply(_traced(x, what).graph, Op.SVDVALS, (_matrix(x, what, "a matrix"),), what))


def _np_pinv(a: Any, rcond: Any = None, hermitian: Any = False, *, rtol: Any = _UNSET) -> Tracer:
    """np.linalg.pinv of any matrix, with NumPy's default cutoff (rcond 1e-15, Numba's too).

    Convention: the derivative at constant rank (Golub and Pereyra): singular values cut off stay cut
    off; hermitian=True is read as the general case (the same pseudo-inverse).
    """
    what = "np.linalg.pinv"
    _reject_kwargs(what, rcond=rcond, rtol=rtol)
    t = _traced(a, what)
    node = _float(t, what)
    if node.ndim != 2:
        raise _fail(f"{what}: needs a matrix (rank 2), got {type_text(node.dtype, node.shape)}", ShapeError)
    return Tracer(_apply(t.graph, Op.PINV, (node,), what))


# -- products -----------------------------------------------------------------------------------

def _np_matrix_power(a: Any, n: Any) -> Tracer:
    """np.linalg.matrix_power for an integer n: NumPy's own sequence of products (n < 0: of the inverse)."""
    what = "np.linalg.matrix_power"
    try:
        power = operator.index(n)
    except TypeError:
        raise _fail(f"{what}: the exponent must be an integer, got {type(n).__name__}") from None
    node = _traced(a, what).node
    if node.ndim != 2:
        raise _fail(f"{what}: needs a square matrix (rank 2), got {type_text(node.dtype, node.shape)}", ShapeError)
    graph = node.graph
    try:
        size = graph.unify(node.shape[0], node.shape[1], (node.shape,), what="needs a square matrix")
    except ShapeError as exc:
        raise _fail(f"{what}: {exc}", ShapeError) from None
    if power == 0:  # the identity, from index comparisons (its size may be symbolic)
        return Tracer(graph.apply(Op.CAST, graph.apply(Op.EQ, *index_grid(graph, size)), dtype=node.dtype))
    if power < 0:
        node = graph.apply(Op.INV, _float(Tracer(node), what))
    return Tracer(_power(node, abs(power)))


def _power(a: Node, n: int) -> Node:
    """a ** n (n >= 1) by squaring, in the order of NumPy's matrix_power."""
    if n <= 3:
        result = a
        for _ in range(n - 1):
            result = result @ a
        return result
    square: Node | None = None
    result: Node | None = None
    while n > 0:
        square = a if square is None else square @ square
        n, bit = divmod(n, 2)
        if bit:
            result = square if result is None else result @ square
    assert result is not None
    return result


def _chain_order(dims: Sequence[int]) -> list[list[int]]:
    """The cheapest split of a chain of products (the textbook dynamic program NumPy's multi_dot uses):
    ``split[i][j]`` is where the product of matrices i..j splits."""
    count = len(dims) - 1
    cost = [[0.0] * count for _ in range(count)]
    split = [[0] * count for _ in range(count)]
    for length in range(1, count):
        for i in range(count - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _np_multi_dot(arrays: Any, *, out: Any = None) -> Tracer:
    """np.linalg.multi_dot: a chain of matrix products, in the cheapest order when every size is known
    (NumPy's order), else left to right."""
    what = "np.linalg.multi_dot"
    _reject_kwargs(what, out=out)
    items = list(arrays) if isinstance(arrays, (list, tuple)) else None
    if items is None or len(items) < 2:
        raise _fail(f"{what} takes a list of at least two arrays")
    shapes = [np.shape(x) if not isinstance(x, Tracer) else x.node.shape for x in items]
    rows = [(1, *shapes[0]) if len(shapes[0]) == 1 else shapes[0]] + list(shapes[1:-1]) \
        + [(*shapes[-1], 1) if len(shapes[-1]) == 1 else shapes[-1]]
    dims = [s[0] for s in rows] + [rows[-1][-1]]
    if len(items) == 2 or not all(isinstance(d, int) for d in dims):
        result = items[0]
        for item in items[1:]:
            result = _matmul(result, item, what)
        return _traced(result, what)
    split = _chain_order(dims)

    def product(i: int, j: int) -> Any:
        if i == j:
            return items[i]
        k = split[i][j]
        return _matmul(product(i, k), product(k + 1, j), what)  # depth: the number of arrays

    return _traced(product(0, len(items) - 1), what)


# -- norms ---------------------------------------------------------------------------------------

VECTOR_ORDS = "None, 2, 1, np.inf, -np.inf, 0, or any other number p"
MATRIX_ORDS = "None, 'fro', 1, -1, np.inf, -np.inf, and for a matrix (rank 2) 2, -2, 'nuc'"


def _reduce(op: Op, x: Node, axes: tuple[int, ...], keepdims: bool) -> Node:
    return x.graph.apply(op, x, axis=axes, keepdims=keepdims)


def _p_norm(x: Node, p: float, axes: tuple[int, ...], keepdims: bool) -> Node:
    """(sum |x|^p)^(1/p), NumPy's formula; the root is guarded so that it is 0, with gradient 0, at x = 0."""
    graph = x.graph
    total = _reduce(Op.SUM, graph.apply(Op.POW, graph.apply(Op.ABS, x), graph.const(p, x.dtype)), axes, keepdims)
    zero, one = graph.const(0.0, x.dtype), graph.const(1.0, x.dtype)
    positive = graph.apply(Op.GT, total, zero)
    root = graph.apply(Op.POW, graph.apply(Op.WHERE, positive, total, one), graph.const(1.0 / p, x.dtype))
    return graph.apply(Op.WHERE, positive, root, zero)


def _vector_norm(x: Node, ord: Any, axes: tuple[int, ...], keepdims: bool) -> Node | None:  # noqa: A002
    """The vector norm of ``ord`` along one axis, or ``None`` for an ord that is not a number."""
    graph = x.graph
    if ord is None or ord == 2:
        return _reduce(Op.NORM, x, axes, keepdims)
    if isinstance(ord, str) or not isinstance(ord, (int, float, np.integer, np.floating)) or math.isnan(ord):
        return None
    if ord == 1:
        return _reduce(Op.SUM, graph.apply(Op.ABS, x), axes, keepdims)
    if ord == math.inf:
        return _reduce(Op.AMAX, graph.apply(Op.ABS, x), axes, keepdims)
    if ord == -math.inf:
        return _reduce(Op.AMIN, graph.apply(Op.ABS, x), axes, keepdims)
    if ord == 0:  # the count of nonzero entries: no gradient
        nonzero = graph.apply(Op.CAST, graph.apply(Op.NE, x, graph.const(0.0, x.dtype)), dtype=x.dtype)
        return _reduce(Op.SUM, nonzero, axes, keepdims)
    return _p_norm(x, float(ord), axes, keepdims)


# a matrix norm of ord 1 (inf): the largest column (row) sum of |x|; -1 (-inf) the smallest
_MATRIX_SUMS: dict[Any, tuple[int, Op]] = {1: (0, Op.AMAX), -1: (0, Op.AMIN), math.inf: (1, Op.AMAX),
                                           -math.inf: (1, Op.AMIN)}
# a matrix norm of the singular values: the largest (2), the smallest (-2), their sum ('nuc')
_SINGULAR: dict[Any, Op] = {2: Op.AMAX, -2: Op.AMIN, "nuc": Op.SUM}


def _matrix_norm(x: Node, ord: Any, axes: tuple[int, int], keepdims: bool) -> Node | None:  # noqa: A002
    """The matrix norm of ``ord`` over the axes (rows, columns), or ``None`` for an ord diffc lacks."""
    if ord is None or ord == "fro":
        return _reduce(Op.NORM, x, tuple(sorted(axes)), keepdims)
    if not isinstance(ord, (str, int, float, np.integer, np.floating)):
        return None
    if ord in _SINGULAR and x.ndim == 2:  # a stack would need a batched SVD
        graph = x.graph
        norm = _reduce(_SINGULAR[ord], graph.apply(Op.SVDVALS, x), (0,), False)
        zero = graph.const(0.0, x.dtype)
        norm = graph.apply(Op.WHERE, graph.apply(Op.GT, norm, zero), norm, zero)  # gradient 0 where the norm is 0
        return graph.apply(Op.RESHAPE, norm, shape=(1, 1)) if keepdims else norm
    if ord not in _MATRIX_SUMS:
        return None
    summed, extreme = _MATRIX_SUMS[ord]
    sums = _reduce(Op.SUM, x.graph.apply(Op.ABS, x), (axes[summed],), True)
    # the summed axis has size 1 now: reducing both axes reduces the other one
    return _reduce(extreme, sums, tuple(sorted(axes)), keepdims)


def _np_norm(x: Any, ord: Any = None, axis: Any = None, keepdims: Any = False) -> Tracer:  # noqa: A002
    """np.linalg.norm: vector norms along one axis, matrix norms over two, as NumPy defines them.

    Convention: at x = 0 the gradient is 0 for every ord (PyTorch's choice; JAX gives NaN); ord 1 and
    the matrix norms 1, inf take sign(0) = 0; ord inf, -inf (and the matrix norms' largest or smallest
    sum) send the gradient to the first extreme entry; a p-norm with p < 1 has an infinite derivative
    at a zero entry and gives NaN there. The matrix norms 2, -2, 'nuc' (of a rank-2 array) have the
    gradient 0 where the norm is 0, and elsewhere U diag(s̄) Vᵀ of LAPACK's singular vectors (a
    subgradient at repeated or zero singular values).
    """
    what = "np.linalg.norm"
    t = _traced(x, what)
    node = _float(t, what)
    axes = _axis(axis, what)
    keep = bool(keepdims)
    if axes is None and ord is None:
        return Tracer(_apply(t.graph, Op.NORM, (node,), what, axis=None, keepdims=keep))
    if axes is None:
        if node.ndim not in (1, 2):
            raise _fail(f"{what}(..., ord={ord!r}) of a rank-{node.ndim} array: give axis", ShapeError)
        axes = tuple(range(node.ndim))
    axes = (axes,) if isinstance(axes, int) else axes
    if len(axes) not in (1, 2):
        raise _fail(f"{what}: axis must name one axis (a vector norm) or two (a matrix norm), got {axis!r}",
                    ShapeError)
    try:
        normal = _normal_axes(axes, node.ndim)
        result = _vector_norm(node, ord, normal, keep) if len(normal) == 1 else \
            _matrix_norm(node, ord, normal, keep)  # type: ignore[arg-type]
    except ShapeError as exc:
        raise _fail(f"{what}: {exc}", ShapeError) from None
    if result is None:
        kind, ords = ("vector", VECTOR_ORDS) if len(normal) == 1 else ("matrix", MATRIX_ORDS)
        raise _fail(f"{what}(..., ord={ord!r}) is not supported by diffc's tracer for a {kind} norm: use ord = "
                    f"{ords}", UnsupportedCallError, function=what)
    return Tracer(result)


def _normal_axes(axes: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """The axes made non-negative, in the user's order (a matrix norm's first axis holds the rows)."""
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for an array of rank {ndim}")
    normal = tuple(a % ndim for a in axes)
    if len(set(normal)) != len(normal):
        raise ShapeError(f"repeated axis in {axes!r}")
    return normal


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.linalg.inv: _np_inv,
    np.linalg.det: _np_det,
    np.linalg.slogdet: _np_slogdet,
    np.linalg.solve: _np_solve,
    np.linalg.cholesky: _np_cholesky,
    np.linalg.eigh: _np_eigh,
    np.linalg.eigvalsh: _np_eigvalsh,
    np.linalg.matrix_power: _np_matrix_power,
    np.linalg.multi_dot: _np_multi_dot,
    np.linalg.norm: _np_norm,
    np.linalg.pinv: _np_pinv,
    np.linalg.svd: _np_svd,
    np.linalg.svdvals: _np_svdvals,
}
