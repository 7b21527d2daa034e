"""Adjoints of the np.linalg ops, from the standard matrix results.

Each rule is one formula of M. Giles, "An extended collection of matrix
derivative results for forward and reverse mode algorithmic differentiation"
(2008), written with the IR's own ops, so that it is differentiated, simplified
and printed like any other graph. ``C`` is the op's output, ``g`` (C̄) its
cotangent. No rule forms an inverse it does not need: ``A⁻ᵀ C̄`` is a
``solve(Aᵀ, C̄)``.

Symmetric inputs (cholesky, eigh): NumPy reads only the lower triangle of
``A``, so the derivative along one entry of ``A`` alone is not what a user of
a symmetric matrix wants. These rules return the *symmetric* gradient, the one
of ``f((A + Aᵀ) / 2)``, as JAX (``symmetrize_input``) and autograd do: it is
exact along every symmetric direction, which is every direction that keeps
``A`` a valid input.
"""

from __future__ import annotations

from collections.abc import Callable

from diffc.ir import Node, Op, index_grid

AdjointRule = Callable[..., tuple[Node | None, ...]]


def _apply(op: Op, *xs: Node, **attrs: object) -> Node:
    return xs[0].graph.apply(op, *xs, **attrs)


def _zero(x: Node) -> Node:
    return x.graph.const(0.0, x.dtype)


def _symmetric(x: Node) -> Node:
    """(X + Xᵀ) / 2: the gradient along symmetric directions (see the module docstring)."""
    return (x + x.T) * 0.5


def _lower_half(x: Node) -> Node:
    """Φ(X): the strictly lower triangle of X and half its diagonal, zero above (Murray 2016)."""
    rows, cols = index_grid(x.graph, x.shape[0])
    upper = _apply(Op.WHERE, _apply(Op.EQ, rows, cols), x * 0.5, _zero(x))
    return _apply(Op.WHERE, _apply(Op.GT, rows, cols), x, upper)


def inv(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """C = A⁻¹: Ā = -Cᵀ C̄ Cᵀ."""
    return (-(out.T @ g @ out.T),)


def solve(g: Node, out: Node, a: Node, b: Node) -> tuple[Node | None, ...]:
    """C = A⁻¹ B: B̄ = A⁻ᵀ C̄ (one more solve, with Aᵀ), Ā = -B̄ Cᵀ (an outer product for a vector b)."""
    b_bar = _apply(Op.SOLVE, a.T, g)
    a_bar = _apply(Op.OUTER, b_bar, out) if out.ndim == 1 else b_bar @ out.T
    return -a_bar, b_bar


def det(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """C = det A: Ā = C̄ C A⁻ᵀ.

    Convention: needs an invertible A (a singular A makes np.linalg.inv raise LinAlgError).
    """
    return ((g * out) * _apply(Op.INV, a).T,)


def logabsdet(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """C = log|det A|: Ā = C̄ A⁻ᵀ, whatever the sign of the determinant.

    Convention: needs an invertible A (a singular A makes np.linalg.inv raise LinAlgError).
    """
    return (g * _apply(Op.INV, a).T,)


def cholesky(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """A = L Lᵀ: Ā = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹, symmetrised (Murray 2016, eq. 10).

    From L⁻¹ dA L⁻ᵀ = L⁻¹ dL + (L⁻¹ dL)ᵀ with L⁻¹ dL lower triangular. The two
    triangular inverses are solves with Lᵀ.

    Convention: the symmetric gradient, that of cholesky((A + Aᵀ) / 2); NumPy reads only the lower
    triangle of A.
    """
    lt = out.T
    left = _apply(Op.SOLVE, lt, _lower_half(lt @ g))     # L⁻ᵀ Φ(Lᵀ L̄)
    return (_symmetric(_apply(Op.SOLVE, lt, left.T).T),)  # (L⁻ᵀ (L⁻ᵀ Φ)ᵀ)ᵀ = L⁻ᵀ Φ L⁻¹


def eigvalsh(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """A = V diag(w) Vᵀ: Ā = V diag(w̄) Vᵀ (symmetric already).

    Convention: the symmetric gradient, that of eigh((A + Aᵀ) / 2); NumPy reads only the lower
    triangle of A.
    """
    v = _apply(Op.EIGVECSH, a)
    n = v.shape[0]
    return ((v * _apply(Op.RESHAPE, g, shape=(1, n))) @ v.T,)


def eigvecsh(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """A = V diag(w) Vᵀ: Ā = V (F ∘ (Vᵀ V̄)) Vᵀ, symmetrised, with F_ij = 1 / (w_j - w_i) off the diagonal
    and 0 on it (Giles 2008, section 3.1).

    A repeated eigenvalue makes the eigenvectors not differentiable, and F has an inf there, as in
    every implementation.

    Convention: the symmetric gradient, that of eigh((A + Aᵀ) / 2); eigenvectors are defined up to
    sign, so only losses that do not depend on the signs have a gradient that means anything.
    """
    w = _apply(Op.EIGVALSH, a)
    row, col = _row(w), _column(w)
    return (_symmetric(out @ (_inverse_gaps(row - col) * (out.T @ g)) @ out.T),)


def _row(x: Node) -> Node:
    return _apply(Op.RESHAPE, x, shape=(1, x.shape[0]))


def _column(x: Node) -> Node:
    return _apply(Op.RESHAPE, x, shape=(x.shape[0], 1))


def _inverse_gaps(gap: Node) -> Node:
    """F: 1 / gap off the diagonal, 0 on it. The diagonal divides by 1 and is selected away, never
    computed as 1/0 (a repeated eigen- or singular value still gives inf off the diagonal)."""
    rows, cols = index_grid(gap.graph, gap.shape[0])
    off = _apply(Op.NE, rows, cols)
    one = gap.graph.const(1.0, gap.dtype)
    return _apply(Op.WHERE, off, one / _apply(Op.WHERE, off, gap, one), _zero(gap))


def pinv(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """P = A⁺: Ā = -Pᵀ Ḡ Pᵀ + (I - A P) Ḡᵀ P Pᵀ + Pᵀ P Ḡᵀ (I - P A), the reverse of Golub and Pereyra's
    dA⁺ = -A⁺ dA A⁺ + A⁺ A⁺ᵀ dAᵀ (I - A A⁺) + (I - A⁺ A) dAᵀ A⁺ᵀ A⁺. The identities are not formed:
    (I - A P) X is X - A (P X).

    Convention: the derivative at constant rank (singular values below rcond stay cut off).
    """
    p, gt = out, g.T
    x = gt @ p @ p.T
    y = p.T @ p @ gt
    return (-(p.T @ g @ p.T) + (x - a @ (p @ x)) + (y - (y @ p) @ a),)


def svdvals(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """A = U diag(s) Vᵀ (thin): Ā = U diag(s̄) Vᵀ, exact where the singular values are distinct.

    Convention: at repeated or zero singular values the gradient is U diag(s̄) Vᵀ for the vectors
    LAPACK returns (a subgradient of the nuclear and spectral norms).
    """
    u, vt = _apply(Op.SVD_U, a), _apply(Op.SVD_VT, a)
    return ((u * _apply(Op.RESHAPE, g, shape=(1, out.shape[0]))) @ vt,)


def _singular_parts(a: Node) -> tuple[Node, Node, Node, Node]:
    """U, Vᵀ, the singular values s, and F_ij = 1 / (s_j² - s_i²) (0 on the diagonal)."""
    u, vt, values = _apply(Op.SVD_U, a), _apply(Op.SVD_VT, a), _apply(Op.SVDVALS, a)
    row, col = _row(values), _column(values)
    return u, vt, values, _inverse_gaps(row * row - col * col)


def svd_u(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """The U part of Townsend's thin-SVD adjoint (2016): Ā = U (F ∘ (UᵀŪ - ŪᵀU)) S Vᵀ
    + (I - U Uᵀ) Ū S⁻¹ Vᵀ, with (I - U Uᵀ) Ū computed as Ū - U (Uᵀ Ū).

    Built only by the adjoint of the singular values (np.linalg.svd itself is not traced).
    """
    u, vt, values, f = _singular_parts(a)
    s = _row(values)  # S on the right scales columns
    utg = u.T @ g
    return ((u @ ((f * (utg - utg.T)) * s) + (g - u @ utg) / s) @ vt,)


def svd_vt(g: Node, out: Node, a: Node) -> tuple[Node | None, ...]:
    """The Vᵀ part of Townsend's adjoint, with V̄ = gᵀ: Ā = U S (F ∘ (VᵀV̄ - V̄ᵀV)) Vᵀ
    + U S⁻¹ V̄ᵀ (I - V Vᵀ), with V̄ᵀ (I - V Vᵀ) computed as g - (g V) Vᵀ."""
    u, vt, values, f = _singular_parts(a)
    s = _column(values)  # S on the left scales rows
    vtg = vt @ g.T
    return (u @ (s * ((f * (vtg - vtg.T)) @ vt) + (g - (g @ vt.T) @ vt) / s),)


ADJOINTS: dict[Op, AdjointRule] = {
    Op.INV: inv,
    Op.SOLVE: solve,
    Op.DET: det,
    Op.LOGABSDET: logabsdet,
    Op.CHOLESKY: cholesky,
    Op.EIGVALSH: eigvalsh,
    Op.EIGVECSH: eigvecsh,
    Op.PINV: pinv,
    Op.SVDVALS: svdvals,
    Op.SVD_U: svd_u,
    Op.SVD_VT: svd_vt,
}

# the sign of the determinant is piecewise constant
NON_DIFFERENTIABLE: frozenset[Op] = frozenset({Op.DETSIGN})
