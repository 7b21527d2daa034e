"""SciPy's Newton-CG on the 1,000-dimensional Rosenbrock function, with diffc's Hessian-vector product.

``f.hvp(x, v)`` is the Hessian times ``v`` from a second reverse pass over
the simplified gradient (docs/derivatives.md), so ``hessp=f.hvp`` and
``jac=f.grad`` go straight into ``scipy.optimize.minimize``; the script
compares the iterations with L-BFGS-B (gradient only) from the same start.

    python examples/newton_cg.py [--small] [--n N]
"""

from __future__ import annotations

import numpy as np
from common import parse_args
from scipy.optimize import minimize

import diffc


def rosenbrock(x):
    """sum over i of 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def main() -> None:
    options = parse_args(__doc__, {"n": (int, 1000, "the dimension")})
    n = 50 if options.small else options.n
    f = diffc.compile(rosenbrock, backend=options.backend)
    x0 = np.full(n, 0.5)
    newton = minimize(f, x0, jac=f.grad, hessp=f.hvp, method="Newton-CG", options={"xtol": 1e-10})
    lbfgs = minimize(f, x0, jac=f.grad, method="L-BFGS-B")
    print(f"Newton-CG: {newton.nit} iterations, f = {newton.fun:.3e}, max |x - 1| = {np.abs(newton.x - 1).max():.1e}")
    print(f"L-BFGS-B:  {lbfgs.nit} iterations, f = {lbfgs.fun:.3e}, max |x - 1| = {np.abs(lbfgs.x - 1).max():.1e}")


if __name__ == "__main__":
    main()
