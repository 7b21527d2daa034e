"""Adjoint rules of the scipy.special ops (diffc/frontends/special.py records them).

Registered into :data:`diffc.adjoint.rules.ADJOINTS` like np.linalg's rules.
"""

from __future__ import annotations

import math

from diffc.errors import UnsupportedError
from diffc.ir import Node, Op

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)  # erf'(x) = 2 / sqrt(pi) exp(-x²)


def _gauss(x: Node) -> Node:
    """``2 / sqrt(pi) * exp(-x²)``, the derivative of erf."""
    return x.graph.apply(Op.EXP, -(x * x)) * TWO_OVER_SQRT_PI


def trigamma(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """ψ₁'(x) is tetragamma, which diffc has no op for: a gradient through trigamma is refused, not guessed.

    This is what a third derivative of ``gammaln`` (or a Hessian of a loss with digamma) meets.

    Convention: scipy.special.polygamma(1, x) (trigamma) is traced for its value; its gradient raises
    UnsupportedError.
    """
    raise UnsupportedError("the gradient of trigamma, scipy.special.polygamma(1, x) (tetragamma, or a third "
                           "derivative of gammaln), is not supported by diffc", op=Op.TRIGAMMA.value)


ADJOINTS = {
    Op.ERF: lambda g, out, x: (g * _gauss(x),),
    Op.ERFC: lambda g, out, x: (-(g * _gauss(x)),),
    Op.GAMMALN: lambda g, out, x: (g * x.graph.apply(Op.DIGAMMA, x),),  # (log Γ)' = ψ
    Op.DIGAMMA: lambda g, out, x: (g * x.graph.apply(Op.TRIGAMMA, x),),  # ψ' = ψ₁
    Op.TRIGAMMA: trigamma,
}
