"""Numba helpers for scipy.special's functions: digamma, a pole-safe lgamma, and an elementwise map.

Numba compiles ``math.erf``, ``math.erfc`` and ``math.lgamma`` but has no
digamma, and SciPy's ufuncs cannot be called from compiled code. ``digamma``
follows Cephes' ``psi`` (what SciPy uses): the reflection
``ψ(x) = ψ(1 - x) - π / tan(πx)`` for negative x, the recurrence
``ψ(x) = ψ(x + 1) - 1/x`` up to x >= 10, then the asymptotic series
``log x - 1/(2x) - Σ B_2k / (2k x^2k)``; seven terms leave an error below
4e-17 at x = 10, so the result is good to about 1e-15 relative (rounding in
the recurrence), except near ψ's root x ≈ 1.4616, where it is good to 1e-16
absolute. Values at the poles follow SciPy (see ``digamma``).
Every helper states ``error_model`` and ``fastmath`` (see numba_loops.py).
"""

from __future__ import annotations

import math

import numba
import numpy as np

REQUIRES = {"special_elements": ("lgamma", "digamma", "trigamma")}


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def lgamma(x: float) -> float:
    """``log|Γ(x)|`` as ``scipy.special.gammaln``: inf at the poles 0, -1, -2, ... (Python's math raises there)."""
    if x <= 0.0 and math.floor(x) == x:
        return math.inf
    return math.lgamma(x)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def digamma(x: float) -> float:
    """``ψ(x)`` with SciPy's values at the edges: -inf at +0, inf at -0, NaN at the negative integers,
    at -inf and at NaN, inf at inf."""
    x = float(x)
    if x != x or x == math.inf:
        return x
    if x == 0.0:
        return -math.inf if math.copysign(1.0, x) > 0 else math.inf
    shift = 0.0
    if x < 0.0:
        if math.floor(x) == x:  # a pole (and -inf)
            return math.nan
        shift = -math.pi / math.tan(math.pi * x)  # ψ(x) = ψ(1 - x) - π / tan(πx)
        x = 1.0 - x
    while x < 10.0:
        shift -= 1.0 / x
        x += 1.0
    z = 1.0 / (x * x)
    series = z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (1.0 / 240 - z * (1.0 / 132
                  - z * (691.0 / 32760 - z * (1.0 / 12)))))))
    return shift + math.log(x) - 0.5 / x - series


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def trigamma(x: float) -> float:
    """``ψ₁(x)``, digamma's derivative, as ``scipy.special.polygamma(1, x)``: inf at the poles 0, -1, ...
    (and -inf), 0 at inf, NaN at NaN.

    The reflection ``ψ₁(x) = π² / sin²(πx) - ψ₁(1 - x)`` for negative x, the recurrence
    ``ψ₁(x) = ψ₁(x + 1) + 1/x²`` up to x >= 10, then ``1/x + 1/(2x²) + Σ B_2k / x^(2k+1)``; the
    eighth term is below 1e-17 at x = 10.
    """
    x = float(x)
    if x != x:
        return x
    if x == math.inf:
        return 0.0
    if x <= 0.0 and math.floor(x) == x:  # a pole (and -inf)
        return math.inf
    reflected = 0.0
    sign = 1.0
    if x < 0.0:
        s = math.sin(math.pi * (x - math.floor(x + 0.5)))  # x minus its nearest integer is exact: no loss near a pole
        reflected = math.pi * math.pi / (s * s)
        sign = -1.0
        x = 1.0 - x
    shift = 0.0
    while x < 10.0:
        shift += 1.0 / (x * x)
        x += 1.0
    z = 1.0 / x
    z2 = z * z
    series = z + 0.5 * z2 + z * z2 * (1.0 / 6 - z2 * (1.0 / 30 - z2 * (1.0 / 42 - z2 * (1.0 / 30 - z2 * (
        5.0 / 66 - z2 * (691.0 / 2730 - z2 * (7.0 / 6)))))))
    return reflected + sign * (shift + series)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def special_elements(x: np.ndarray, which: int) -> np.ndarray:
    """erf (0), erfc (1), gammaln (2), digamma (3) or trigamma (4) of every element, in x's shape and dtype."""
    flat = np.ascontiguousarray(x).ravel()
    out = np.empty_like(flat)
    for k in range(flat.shape[0]):
        v = flat[k]
        if which == 0:
            out[k] = math.erf(v)
        elif which == 1:
            out[k] = math.erfc(v)
        elif which == 2:
            out[k] = lgamma(v)
        elif which == 3:
            out[k] = digamma(v)
        else:
            out[k] = trigamma(v)
    return out.reshape(x.shape)
