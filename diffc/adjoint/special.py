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


def digamma(g: Node, out: Node, x: Node) -> tuple[Node | None, ...]:
    """ψ'(x) is trigamma, which diffc has no op for: a gradient through digamma is refused, not guessed.

    This is also what a second derivative of ``gammaln`` meets.

    Convention: scipy.special.digamma (psi) is traced for its value; its gradient raises UnsupportedError.
    """
    raise UnsupportedError("the gradient of scipy.special.digamma (trigamma, or a second derivative of gammaln) "
                           "is not supported by diffc", op=Op.DIGAMMA.value)


ADJOINTS = {
    Op.ERF: lambda g, out, x: (g * _gauss(x),),
    Op.ERFC: lambda g, out, x: (-(g * _gauss(x)),),
    Op.GAMMALN: lambda g, out, x: (g * x.graph.apply(Op.DIGAMMA, x),),  # (log Γ)' = ψ
    Op.DIGAMMA: digamma,
}
