"""SciPy's L-BFGS-B on the 1,000-dimensional Rosenbrock function, with diffc's gradient as ``jac``.

Rosenbrock is written as a plain NumPy function; ``diffc.compile`` gives its
gradient, and because the function has one float input ``f.grad`` returns
that gradient bare, so ``jac=f.grad`` works as it stands. The script first
checks diffc's gradient against SciPy's hand-written ``rosen_der`` at x0, then
runs ``scipy.optimize.minimize`` three times: with ``jac=f.grad``, with
``f.value_and_grad`` and ``jac=True`` (value and gradient from one pass), and
with SciPy's ``rosen``/``rosen_der``; it prints iterations,
function evaluations, time and the final gradient norm of each. The minimum
is x = (1, ..., 1).

    python examples/rosenbrock_lbfgs.py [--small] [--n N]
"""

from __future__ import annotations

import time

import numpy as np
from common import parse_args
from scipy.optimize import minimize, rosen, rosen_der

import diffc


def rosenbrock(x):
    """sum over i of 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def run(label: str, fun, jac, x0: np.ndarray, gradient) -> None:
    """One L-BFGS-B run; ``gradient`` gives the final gradient norm whatever ``jac`` was."""
    start = time.perf_counter()
    result = minimize(fun, x0, jac=jac, method="L-BFGS-B",
                      options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-6})
    seconds = time.perf_counter() - start
    print(f"{label:<24} iterations {result.nit:5d}  evaluations {result.nfev:5d}  time {seconds:8.4f} s  "
          f"f {result.fun:.3e}  |grad| {np.linalg.norm(gradient(result.x)):.3e}  "
          f"max|x-1| {np.max(np.abs(result.x - 1.0)):.2e}")


def main() -> None:
    options = parse_args(__doc__, {"n": (int, 1000, "dimension")})
    n = 50 if options.small else options.n
    f = diffc.compile(rosenbrock, args={"x": "f64[n]"}, backend=options.backend)
    x0 = np.random.default_rng(0).uniform(-1.0, 2.0, n)
    f.grad(x0)  # compile before timing
    difference = np.max(np.abs(f.grad(x0) - rosen_der(x0))) / np.max(np.abs(rosen_der(x0)))
    print(f"n = {n}: f(x0) = {f(x0):.6f}, rosen(x0) = {rosen(x0):.6f}")
    print(f"max |f.grad(x0) - rosen_der(x0)| / max|rosen_der(x0)| = {difference:.3e}")
    run("diffc jac=f.grad", f, f.grad, x0, f.grad)
    run("diffc value_and_grad", f.value_and_grad, True, x0, f.grad)  # one pass for both
    run("scipy rosen, rosen_der", rosen, rosen_der, x0, rosen_der)


if __name__ == "__main__":
    main()
