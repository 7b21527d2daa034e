"""Branch-free elementary functions that LLVM vectorizes inside Numba loops.

Numba >= 0.62 lost its SVML path, so a fused loop that calls ``np.exp`` or
``math.sin`` calls libm once per element and stays scalar. The helpers here
are plain arithmetic on doubles and integers (Cody-Waite range reduction,
minimax polynomials, exponent bits set through ``view``), with selects instead
of branches, so LLVM inlines them into the generated loop and vectorizes it.

Every helper is decorated ``@numba.njit(error_model="numpy",
fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)``, and each
part of that matters (``no_cfunc_wrapper`` only skips building a C-callable
entry nobody uses, a few hundredths of a second of each first call; the Python
entry stays, so a helper may still be called from Python):

- ``fastmath={"contract"}`` is set explicitly because a Numba function with
  no ``fastmath`` of its own *inherits its caller's*: the generated loops use
  ``reassoc``/``nsz``, which would fold ``(t + 1.5 * 2**52) - 1.5 * 2**52`` and
  the TwoSum error terms to nothing and lose -0.0. Flags are per LLVM
  instruction, so the helper keeps its own (exact) semantics after inlining.
  ``contract`` only lets LLVM fuse a*b+c into an FMA; every product the code
  relies on being exact is exact with or without fusion.
- ``forceinline=True`` marks the function ``alwaysinline`` for LLVM. Without
  it the larger helpers (sin, cos, softplus) exceed LLVM's inlining budget, the
  loop keeps a call, and nothing vectorizes.
- ``error_model="numpy"`` keeps divisions free of Python's zero check.

Accuracy against the exact value (mpmath), on each function's whole domain
(``docs/vmath.md`` has the table; tests/test_vmath.py checks it): float64
within 0.85-1.15 ULP; float32 within 0.51 ULP, since the float32 helpers
compute in float64 and round once. Special values follow NumPy (NaN in, NaN out;
``exp(-inf) = 0``; ``log(0) = -inf``; ``sin(inf) = nan``; -0.0 kept where NumPy
keeps it). Overflow and invalid operations return inf/NaN without NumPy's
warnings.

Rules for a helper (``diffc emit`` copies their source into standalone
modules with ``inspect.getsource``): a top-level function whose body uses only
``np``, ``numba`` and ``math`` and the helpers its entry in ``REQUIRES``
names; constants are literals in the body (a module-level constant would not
be copied). ``HELPERS`` maps ``(function, dtype)`` to the helper a generator
calls; ``FAST_HELPERS`` lists the reduced-domain sine and cosine.

sin and cos are the expensive ones: exactness for huge arguments needs a
Payne-Hanek reduction, and a vectorized loop cannot skip it for the lanes
that do not need it (LLVM turns a branch into a select and computes both
sides; a call to np.sin in a branch is either made for every lane or stops
vectorization). ``sin_f64``/``cos_f64`` therefore pay for it on every element;
``sin_fast_*``/``cos_fast_*`` do not and return nan beyond |x| = 2**20.
"""

from __future__ import annotations

import numba
import numpy as np

# --------------------------------------------------------------------------------------------------
# float64: exponentials and logarithms
# --------------------------------------------------------------------------------------------------


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def exp_parts_f64(x):
    """(e**r, k) with e**x = e**r 2**k, |r| <= ln2/2, for |x| <= 746: the reduction and polynomial of ``exp_f64``.

    x = k ln2 + r (ln2 in two parts, k ln2_hi exact), e**r = 1 + r + r**2 P(r)
    with P a degree-10 minimax fit, summed with the rounding error of 1 + r
    kept. The callers scale by 2**k as their range needs.
    """
    t = x * 1.4426950408889634 + 6755399441055744.0  # 1.5 * 2**52: rounds x/ln2 to an integer
    kf = t - 6755399441055744.0
    k = np.float64(t).view(np.int64) - 0x4338000000000000
    rh = x - kf * 6.93147180369123816490e-01  # exact: ln2_hi has 32 significant bits, |k| < 2**11
    c = kf * 1.90821492927058770002e-10
    r = rh - c
    rl = (rh - r) - c
    p = (0.5 + r * (0.1666666666666667 + r * (0.041666666666666616 + r * (0.008333333333326162
         + r * (0.001388888888891798 + r * (0.0001984126987474082 + r * (2.4801587245708003e-05
         + r * (2.755725548881358e-06 + r * (2.7557349633016106e-07 + r * (2.510518421532937e-08
         + r * 2.0889375863212716e-09))))))))))
    h = 1.0 + r
    return h + (((1.0 - h) + r) + (rl + r * r * p)), k


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def exp_f64(x):
    """e**x for float64: <= 0.85 ULP on the whole line (subnormal results included); exp(-0.0) = 1.

    ``exp_parts_f64`` gives e**r and k; 2**k is two exponent-field scalings,
    so results down in the subnormal range are rounded once. x is clamped to
    [-746, 710] first: beyond that the result is 0 or inf anyway; NaN passes
    the clamp.
    """
    x = np.float64(x)
    x = 710.0 if x > 710.0 else x
    x = -746.0 if x < -746.0 else x
    e, k = exp_parts_f64(x)
    k1 = k >> 1
    s1 = np.int64((k1 + 1023) << 52).view(np.float64)
    s2 = np.int64((k - k1 + 1023) << 52).view(np.float64)
    return e * s1 * s2


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def expm1_f64(x):
    """e**x - 1 for float64: <= 1.15 ULP on the whole line; expm1(-0.0) = -0.0, expm1(-inf) = -1.

    Same reduction as ``exp_f64``; with s = 2**k the result is (s - 1) + s rh
    + s (r**2 P(r) - c), where s - 1 and s rh are exact and their sum is kept
    in double-double, so the only large rounding is the last one; for k = 0
    it is x + (a small term), exact near 0. For k > 53 the -1 moves to the
    small term (s - 1 is no longer exact); k = 1024 is done as 2 * (k = 1023).
    """
    x = np.float64(x)
    a = 710.0 if x > 710.0 else x
    a = -40.0 if a < -40.0 else a  # expm1(x) rounds to -1 below -37.5
    t = a * 1.4426950408889634 + 6755399441055744.0
    kf = t - 6755399441055744.0
    k = np.float64(t).view(np.int64) - 0x4338000000000000
    rh = a - kf * 6.93147180369123816490e-01
    c = kf * 1.90821492927058770002e-10
    r = rh - c
    p = (0.5 + r * (0.1666666666666667 + r * (0.041666666666666616 + r * (0.008333333333326162
         + r * (0.001388888888891798 + r * (0.0001984126987474082 + r * (2.4801587245708003e-05
         + r * (2.755725548881358e-06 + r * (2.7557349633016106e-07 + r * (2.510518421532937e-08
         + r * 2.0889375863212716e-09))))))))))
    tail = r * r * p - c
    half = k > 1023
    k = k - 1 if half else k
    s = np.int64((k + 1023) << 52).view(np.float64)
    big = k > 53
    head = s if big else s - 1.0
    low = -1.0 if big else 0.0
    a = head + s * rh
    y = a + (((head - a) + s * rh) + (s * tail + low))  # Fast2Sum: |head| >= |s rh|
    y = y * 2.0 if half else y
    return x if x == 0.0 else y


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def log_f64(x):
    """Natural logarithm for float64: <= 0.9 ULP for every x > 0 (subnormals included).

    x = 2**k m with m in [sqrt(2)/2, sqrt(2)) taken from the bits (subnormals
    are scaled by 2**54 first), then fdlibm's log(m) = f - f**2/2 + s (f**2/2 +
    R(s**2)), s = f / (2 + f), f = m - 1, with fdlibm's minimax R.
    log(0) = -inf, log(x < 0) = nan, log(inf) = inf.
    """
    x = np.float64(x)
    sub = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if sub else x
    ix = np.float64(xs).view(np.int64) + 0x95F619980C433  # moves m's range to [sqrt(2)/2, sqrt(2))
    e = (ix >> 52) - (1077 if sub else 1023)
    m = np.int64((ix & 0xFFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD).view(np.float64)
    f = m - 1.0
    dk = np.int64(e + 0x4338000000000000).view(np.float64) - 6755399441055744.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01))
    t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01
                                                                          + w * 1.479819860511658591e-01)))
    y = s * (hfsq + t1 + t2) + dk * 1.90821492927058770002e-10 - hfsq + f + dk * 6.93147180369123816490e-01
    y = y if x < np.inf else x + x
    y = -np.inf if x == 0.0 else y
    return np.nan if x < 0.0 else y


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def log1p_f64(x):
    """log(1 + x) for float64: <= 0.9 ULP for every x >= -1; log1p(-0.0) = -0.0.

    u = 1 + x is split like ``log_f64``; the rounding error of 1 + x (exact by
    Fast2Sum) is added back as c / u. When u's exponent is 0, f = x itself and
    no correction is needed, which keeps small x exact to the last bit.
    log1p(-1) = -inf, log1p(x < -1) = nan.
    """
    x = np.float64(x)
    u = 1.0 + x
    corr = (1.0 - (u - x)) if x > 1.0 else (x - (u - 1.0))
    ix = np.float64(u).view(np.int64) + 0x95F619980C433
    e = (ix >> 52) - 1023
    m = np.int64((ix & 0xFFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD).view(np.float64)
    near = e == 0
    f = x if near else m - 1.0
    c = 0.0 if near else corr / u
    dk = np.int64(e + 0x4338000000000000).view(np.float64) - 6755399441055744.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01))
    t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01
                                                                          + w * 1.479819860511658591e-01)))
    y = dk * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + t1 + t2) + (dk * 1.90821492927058770002e-10 + c)))
                                           - f)
    y = y if x < np.inf else x + x
    y = x if x == 0.0 else y
    y = -np.inf if x == -1.0 else y
    return np.nan if x < -1.0 else y


# --------------------------------------------------------------------------------------------------
# float64: sine and cosine
# --------------------------------------------------------------------------------------------------


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def two_over_pi_limb(i):
    """Entry i & 63 of the table 0, 0, 0, then 2/pi in 24-bit limbs (bits 24(i-3)+1 .. 24(i-2)), then 0s.

    A constant tuple indexed by a masked integer becomes an LLVM lookup table,
    which a vectorized loop reads with gathers.
    """
    table = (
        0.0, 0.0, 0.0, 10680707.0, 7228996.0, 1387004.0, 2578385.0, 16069853.0,
        12639074.0, 9804092.0, 4427841.0, 16666979.0, 11263675.0, 12935607.0, 2387514.0, 4345298.0,
        14681673.0, 3074569.0, 13734428.0, 16653803.0, 1880361.0, 10960616.0, 8533493.0, 3062596.0,
        8710556.0, 7349940.0, 6258241.0, 3772886.0, 3769171.0, 3798172.0, 8675211.0, 12450088.0,
        3874808.0, 9961438.0, 366607.0, 15675153.0, 9132554.0, 7151469.0, 3571407.0, 2607881.0,
        12013382.0, 4155038.0, 6285869.0, 7677882.0, 13102053.0, 15825725.0, 473591.0, 9065106.0,
        15363067.0, 6271263.0, 9264392.0, 5636912.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    )
    return table[i & 63]


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def rem_pio2_fast_f64(x):
    """(y0, y1, n) with x = n pi/2 + y0 + y1, |y0| <= pi/4 + tiny, for |x| <= 2**20; y0 = nan beyond.

    Cody-Waite with fdlibm's pi/2 in 33-bit parts: n * part is exact while
    |n| < 2**20, and TwoSum keeps each subtraction's rounding error, so y0 + y1
    is good to about 150 bits. That covers the worst case: no double below
    2**20 comes closer than about 2**-60 to a multiple of pi/2.
    """
    x = np.float64(x)
    t = x * 0.6366197723675814 + 6755399441055744.0
    fn = t - 6755399441055744.0
    n = np.float64(t).view(np.int64) - 0x4338000000000000
    r1 = x - fn * 1.57079632673412561417e+00
    p2 = fn * 6.07710050630396597660e-11
    r2 = r1 - p2
    bb = r2 - r1
    e2 = (r1 - (r2 - bb)) - (p2 + bb)
    p3 = fn * 2.02226624871116645580e-21
    r3 = r2 - p3
    bb = r3 - r2
    e3 = (r2 - (r3 - bb)) - (p3 + bb)
    lo = (e2 + e3) - fn * 8.47842766036889956997e-32
    y0 = r3 + lo
    y1 = (r3 - y0) + lo
    y0 = y0 if abs(x) <= 1048576.0 else np.nan
    return y0, y1, n


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def rem_pio2_f64(x):
    """(y0, y1, n) with x = n pi/2 + y0 + y1, |y0| <= pi/4 + tiny, for every finite x; nan for inf/nan.

    |x| <= 2**20 uses ``rem_pio2_fast_f64``. Above, Payne-Hanek, computed on
    every lane because a branch would stop LLVM from vectorizing the loop:
    |x| = v 2**(24 q) with v < 2**77 split into four 24-bit limbs, times the
    limbs of 2/pi from the table; each output limb is a sum of four products
    below 2**48, exact in a double, and carries are propagated with floor.
    Limbs worth 4 or more are dropped (n is needed mod 4); six fraction limbs
    keep 144 bits, more than the ~118 the worst case (x within 2**-61 of a
    multiple of pi/2) needs. The fraction is rounded to the nearest quadrant
    and multiplied by pi/2 in double-double.
    """
    x = np.float64(x)
    y0, y1, n = rem_pio2_fast_f64(x)
    ax = abs(x)
    big = ax > 1048576.0 and ax < np.inf
    ab = ax if big else 1048576.0  # a harmless stand-in on the lanes that do not use this path
    ib = np.float64(ab).view(np.int64)
    e = (ib >> 52) - 1075  # ab = mantissa * 2**e, e in [-32, 971]
    q = (((e + 48) & 0x7FF) * 2731 >> 16) - 2  # floor(e / 24), exact on this range; a 32-bit multiply
    rho = e - 24 * q
    mi = (ib & 0xFFFFFFFFFFFFF) | 0x10000000000000
    hi48 = mi >> (48 - rho)
    # limbs of mantissa * 2**rho (77 bits), made doubles by the 2**52 trick
    x0 = np.int64(((mi << rho) & 0xFFFFFF) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    x1 = np.int64(((mi >> (24 - rho)) & 0xFFFFFF) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    x2 = np.int64((hi48 & 0xFFFFFF) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    x3 = np.int64((hi48 >> 24) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    f0 = two_over_pi_limb(q + 2)
    f1 = two_over_pi_limb(q + 3)
    f2 = two_over_pi_limb(q + 4)
    f3 = two_over_pi_limb(q + 5)
    f4 = two_over_pi_limb(q + 6)
    f5 = two_over_pi_limb(q + 7)
    f6 = two_over_pi_limb(q + 8)
    f7 = two_over_pi_limb(q + 9)
    f8 = two_over_pi_limb(q + 10)
    f9 = two_over_pi_limb(q + 11)
    # output limbs (weights 1, 2**-24, ..., 2**-144) as integers: the carries are integer shifts,
    # which keeps the dependency chain short
    g5 = np.float64(x0 * f6 + x1 * f7 + x2 * f8 + x3 * f9 + 4503599627370496.0).view(np.int64) - 0x4330000000000000
    g4 = np.float64(x0 * f5 + x1 * f6 + x2 * f7 + x3 * f8 + 4503599627370496.0).view(np.int64) - 0x4330000000000000
    g3 = np.float64(x0 * f4 + x1 * f5 + x2 * f6 + x3 * f7 + 4503599627370496.0).view(np.int64) - 0x4330000000000000
    g2 = np.float64(x0 * f3 + x1 * f4 + x2 * f5 + x3 * f6 + 4503599627370496.0).view(np.int64) - 0x4330000000000000
    g1 = np.float64(x0 * f2 + x1 * f3 + x2 * f4 + x3 * f5 + 4503599627370496.0).view(np.int64) - 0x4330000000000000
    g0 = np.float64(x0 * f1 + x1 * f2 + x2 * f3 + x3 * f4 + 4503599627370496.0).view(np.int64) - 0x4330000000000000
    gi = np.float64(x0 * f0 + x1 * f1 + x2 * f2 + x3 * f3 + 4503599627370496.0).view(np.int64) - 0x4330000000000000
    g4 = g4 + (g5 >> 24)
    g3 = g3 + (g4 >> 24)
    g2 = g2 + (g3 >> 24)
    g1 = g1 + (g2 >> 24)
    g0 = g0 + (g1 >> 24)
    gi = gi + (g0 >> 24)
    # a fraction >= 1/2 rounds up to the next quadrant and becomes -(1 - fraction), limb by limb
    up = (g0 & 0x800000) != 0
    flip = 0xFFFFFF if up else 0
    quad = (gi + (1 if up else 0)) & 3
    g0 = np.int64(((g0 & 0xFFFFFF) ^ flip) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    g1 = np.int64(((g1 & 0xFFFFFF) ^ flip) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    g2 = np.int64(((g2 & 0xFFFFFF) ^ flip) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    g3 = np.int64(((g3 & 0xFFFFFF) ^ flip) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    g4 = np.int64(((g4 & 0xFFFFFF) ^ flip) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    g5 = np.int64(((g5 & 0xFFFFFF) ^ flip) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    s1 = g0 * 5.960464477539063e-08 + g1 * 3.552713678800501e-15  # each pair is exact (48 bits)
    s2 = g2 * 2.117582368135751e-22 + g3 * 1.262177448353619e-29
    s3 = g4 * 7.52316384526264e-37 + g5 * 4.484155085839415e-44
    hi = s1 + s2
    lo = ((s1 - hi) + s2) + s3
    h = hi + lo
    lo = (hi - h) + lo
    # (h + lo) * pi/2 in double-double; h1 is h's top 26 bits, so h1 * 1.5707963109016418 is exact
    h1 = np.int64(np.float64(h).view(np.int64) & -134217728).view(np.float64)
    h2 = h - h1
    prod = h * 1.5707963267948966
    err = ((h1 * 1.5707963109016418 - prod) + h1 * 1.5893254712295857e-08 + h2 * 1.5707963109016418) \
        + h2 * 1.5893254712295857e-08
    rl = err + (h * 6.123233995736766e-17 + lo * 1.5707963267948966)
    b0 = prod + rl
    b1 = (prod - b0) + rl
    neg = (x < 0.0) != up
    b0 = -b0 if neg else b0
    b1 = -b1 if neg else b1
    nb = -quad if x < 0.0 else quad
    y0 = b0 if big else y0
    y1 = b1 if big else y1
    n = nb if big else n
    return y0, y1, n


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sincos_kernel_f64(y0, y1):
    """(sin, cos) of y0 + y1 for |y0| <= pi/4 + tiny, y1 a low part: fdlibm's kernels and minimax coefficients."""
    z = y0 * y0
    w = z * z
    r = 8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * 2.75573137070700676789e-06) \
        + z * w * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)
    v = z * y0
    s = y0 - ((z * (0.5 * y1 - v * r) - y1) - v * -1.66666666666666324348e-01)
    hz = 0.5 * z
    ww = 1.0 - hz
    r = z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * 2.48015872894767294178e-05)) \
        + w * w * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11))
    c = ww + (((1.0 - ww) - hz) + (z * r - y0 * y1))
    return s, c


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sin_f64(x):
    """sin x for float64: <= 0.85 ULP for every finite x; sin(+-inf) = nan, sin(-0.0) = -0.0.

    Both the Cody-Waite and the Payne-Hanek reduction run on every element
    (see ``rem_pio2_f64``), which costs 4-7 times ``sin_fast_f64``.
    """
    x = np.float64(x)
    y0, y1, n = rem_pio2_f64(x)
    s, c = sincos_kernel_f64(y0, y1)
    y = c if n & 1 else s
    y = -y if n & 2 else y
    return x if x == 0.0 else y


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def cos_f64(x):
    """cos x for float64: <= 0.85 ULP for every finite x; cos(+-inf) = nan.

    Both reductions run on every element, as for ``sin_f64``.
    """
    x = np.float64(x)
    y0, y1, n = rem_pio2_f64(x)
    s, c = sincos_kernel_f64(y0, y1)
    y = s if n & 1 else c
    return -y if (n + 1) & 2 else y


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sin_fast_f64(x):
    """sin x for |x| <= 2**20 (<= 0.85 ULP), nan for larger finite |x|: Cody-Waite alone, 4-7x faster than sin_f64.

    For generators that check the arguments' range (e.g. an or-reduced flag
    in the loop) and rerun with ``sin_f64`` when some |x| > 2**20.
    """
    x = np.float64(x)
    y0, y1, n = rem_pio2_fast_f64(x)
    s, c = sincos_kernel_f64(y0, y1)
    y = c if n & 1 else s
    y = -y if n & 2 else y
    return x if x == 0.0 else y


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def cos_fast_f64(x):
    """cos x for |x| <= 2**20 (<= 0.85 ULP), nan for larger finite |x|: Cody-Waite alone."""
    x = np.float64(x)
    y0, y1, n = rem_pio2_fast_f64(x)
    s, c = sincos_kernel_f64(y0, y1)
    y = s if n & 1 else c
    return -y if (n + 1) & 2 else y


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def trig_fast_ok(x):
    """False when ``sin_fast_*``/``cos_fast_*`` would return nan where sin/cos do not: finite |x| > 2**20.

    A generated loop can or-reduce ``not trig_fast_ok(arg)`` (it vectorizes)
    and rerun with ``sin_*``/``cos_*`` when it is set. nan and inf are fine:
    the fast versions return nan for them, as the full ones do.
    """
    a = abs(np.float64(x))
    return not (a > 1048576.0 and a < np.inf)


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def trig_fast_range(x, low, high):
    """True when ``sin_fast_*``/``cos_fast_*`` equal ``sin_*``/``cos_*`` on ``x[low:high]``: no finite |x| > 2**20.

    A generated loop whose sines and cosines read an array checks it first and
    runs its Cody-Waite-only copy when this holds (a vectorized loop would
    otherwise pay for the Payne-Hanek reduction on every element).
    """
    ok = True
    for i in range(np.uint64(low), np.uint64(high)):  # unsigned: no negative-index check, so it vectorizes
        ok &= trig_fast_ok(x[i])
    return ok


# --------------------------------------------------------------------------------------------------
# float64: tanh, sigmoid, softplus
# --------------------------------------------------------------------------------------------------


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def tanh_f64(x):
    """tanh x for float64: <= 1.1 ULP on the whole line; tanh(+-inf) = +-1, tanh(-0.0) = -0.0.

    With a = |x| and E = e**(2a): below tanh = 1/2 (E < 3), a + a**3 G(a**2)
    with G a degree-10 minimax fit (no cancellation); above, 1 - 2/(E + 1),
    with E + 1 carried in double-double. a is clamped to 20 (tanh rounds to 1
    from 19.1 on), so E is a normal number and 2**k one exponent field: that
    costs less than ``exp_f64``'s full range or an expm1. The sign is copied
    back from x.
    """
    x = np.float64(x)
    a = abs(x)
    z = a * a
    g = (-0.3333333333333333 + z * (0.13333333333332728 + z * (-0.05396825396745093 + z * (0.021869488494439038
         + z * (-0.008863234415616721 + z * (0.003592110613397399 + z * (-0.0014556637064971774
         + z * (0.0005889453038929324 + z * (-0.00023466222239235888 + z * (8.515820353494434e-05
         + z * -2.063409604140226e-05))))))))))
    er, k = exp_parts_f64(2.0 * (20.0 if a > 20.0 else a))
    e = er * np.int64((k + 1023) << 52).view(np.float64)
    d = e + 1.0
    dl = (e - d) + 1.0  # Fast2Sum: e >= 1
    q = 2.0 / d
    q = q - q * (0.5 * q) * dl
    y = a + a * (z * g) if e < 3.0 else 1.0 - q
    return np.copysign(y, x)


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sigmoid_f64(x):
    """1 / (1 + e**-x) for float64: <= 0.85 ULP on the whole line (no overflow; tiny results are subnormal).

    E = e**-|x| in double-double (``exp_f64``'s steps, inlined), then 1/(1 + E)
    for x >= 0 and E/(1 + E) for x < 0; the quotient is corrected with its
    exact residual (Dekker's product on 26-bit halves), so the error is the
    final rounding plus a few hundredths.
    """
    x = np.float64(x)
    v = -abs(x)
    v = -746.0 if v < -746.0 else v  # noqa: FURB136 - a select, which vectorizes
    t = v * 1.4426950408889634 + 6755399441055744.0
    kf = t - 6755399441055744.0
    k = np.float64(t).view(np.int64) - 0x4338000000000000
    rh = v - kf * 6.93147180369123816490e-01
    c = kf * 1.90821492927058770002e-10
    r = rh - c
    rl = (rh - r) - c
    p = (0.5 + r * (0.1666666666666667 + r * (0.041666666666666616 + r * (0.008333333333326162
         + r * (0.001388888888891798 + r * (0.0001984126987474082 + r * (2.4801587245708003e-05
         + r * (2.755725548881358e-06 + r * (2.7557349633016106e-07 + r * (2.510518421532937e-08
         + r * 2.0889375863212716e-09))))))))))
    h = 1.0 + r
    tail = ((1.0 - h) + r) + (rl + r * r * p)
    eh = h + tail
    el = (h - eh) + tail
    k1 = k >> 1
    s1 = np.int64((k1 + 1023) << 52).view(np.float64)
    s2 = np.int64((k - k1 + 1023) << 52).view(np.float64)
    e = eh * s1 * s2
    elo = el * s1 * s2
    pos = x >= 0.0
    num = 1.0 if pos else e
    numl = 0.0 if pos else elo
    d = 1.0 + e
    dl = ((1.0 - d) + e) + elo
    y = num / d
    yh = np.int64(np.float64(y).view(np.int64) & -134217728).view(np.float64)
    yl = y - yh
    dh = np.int64(np.float64(d).view(np.int64) & -134217728).view(np.float64)
    dlo = d - dh
    ph = y * d
    pl = ((yh * dh - ph) + yh * dlo + yl * dh) + yl * dlo
    rho = (((num - ph) - pl) + numl) - y * dl
    return y + rho * (y if pos else 1.0 - y)  # rho / d, with 1/d = y or 1 - y


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def softplus_f64(x):
    """log(1 + e**x) for float64: <= 0.85 ULP on the whole line; softplus(large x) = x, no overflow.

    max(x, 0) + log1p(E) with E = e**-|x| in double-double (``exp_f64``'s
    steps) fed to ``log1p_f64``'s steps with E's low part added to the
    correction term, so E's rounding does not show.
    """
    x = np.float64(x)
    v = -abs(x)
    v = -746.0 if v < -746.0 else v  # noqa: FURB136 - a select, which vectorizes
    t = v * 1.4426950408889634 + 6755399441055744.0
    kf = t - 6755399441055744.0
    k = np.float64(t).view(np.int64) - 0x4338000000000000
    rh = v - kf * 6.93147180369123816490e-01
    c = kf * 1.90821492927058770002e-10
    r = rh - c
    rl = (rh - r) - c
    p = (0.5 + r * (0.1666666666666667 + r * (0.041666666666666616 + r * (0.008333333333326162
         + r * (0.001388888888891798 + r * (0.0001984126987474082 + r * (2.4801587245708003e-05
         + r * (2.755725548881358e-06 + r * (2.7557349633016106e-07 + r * (2.510518421532937e-08
         + r * 2.0889375863212716e-09))))))))))
    h = 1.0 + r
    tail = ((1.0 - h) + r) + (rl + r * r * p)
    eh = h + tail
    el = (h - eh) + tail
    k1 = k >> 1
    s1 = np.int64((k1 + 1023) << 52).view(np.float64)
    s2 = np.int64((k - k1 + 1023) << 52).view(np.float64)
    e = eh * s1 * s2
    elo = el * s1 * s2
    u = 1.0 + e
    ix = np.float64(u).view(np.int64) + 0x95F619980C433
    ek = (ix >> 52) - 1023
    m = np.int64((ix & 0xFFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD).view(np.float64)
    near = ek == 0
    f = e if near else m - 1.0
    c = (elo if near else (e - (u - 1.0)) + elo) / u
    dk = np.int64(ek + 0x4338000000000000).view(np.float64) - 6755399441055744.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01))
    t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01
                                                                          + w * 1.479819860511658591e-01)))
    y = dk * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + t1 + t2) + (dk * 1.90821492927058770002e-10 + c)))
                                           - f)
    return (x if x > 0.0 else 0.0) + y  # noqa: FURB136 - a select, which vectorizes


# --------------------------------------------------------------------------------------------------
# float32: the float64 helper, rounded once (<= 0.5 ULP + 2**-28 ULP; over/underflow as float32)
# --------------------------------------------------------------------------------------------------


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def exp_f32(x):
    """e**x for float32, via ``exp_f64`` (one rounding of a 0.85-ULP float64: <= 0.5 ULP + 2**-28)."""
    return np.float32(exp_f64(np.float64(x)))


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def expm1_f32(x):
    """e**x - 1 for float32, via ``expm1_f64``."""
    return np.float32(expm1_f64(np.float64(x)))


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def log_f32(x):
    """log x for float32 (subnormal x included), via ``log_f64``."""
    return np.float32(log_f64(np.float64(x)))


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def log1p_f32(x):
    """log(1 + x) for float32, via ``log1p_f64``."""
    return np.float32(log1p_f64(np.float64(x)))


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def rem_pio2_f32(x):
    """(r, n) with float32 x = n pi/2 + r, r a float64 with |r| <= pi/4 + tiny, for every finite x; nan for inf/nan.

    |x| <= 2**20: r = (x - n pio2_1) - n pio2_1t in doubles (n pio2_1 exact),
    good to ~2**-66 absolute. Above: Payne-Hanek as in ``rem_pio2_f64`` but with
    float32's 24-bit mantissa as two 24-bit limbs and five output limbs; the
    first three are combined mod 4 exactly in doubles, the last two (< 2**-22)
    added in double. Both paths run on every element; float32 needs far fewer
    bits, so this costs about a fifth of the float64 reduction.
    """
    x = np.float64(x)
    t = x * 0.6366197723675814 + 6755399441055744.0
    fn = t - 6755399441055744.0
    n = np.float64(t).view(np.int64) - 0x4338000000000000
    r = (x - fn * 1.57079632673412561417e+00) - fn * 6.07710050650619224932e-11
    ax = abs(x)
    big = ax > 1048576.0 and ax < np.inf
    ab = ax if big else 1048576.0
    ib = np.float64(ab).view(np.int64)
    e = (ib >> 52) - 1046  # ab = M 2**e with M < 2**24: e in [-3, 104]
    q = (((e + 24) & 0xFF) * 2731 >> 16) - 1  # floor(e / 24)
    v = (((ib >> 29) & 0x7FFFFF) | 0x800000) << (e - 24 * q)  # M 2**(e - 24 q) < 2**47
    x1 = np.int64((v >> 24) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    x0 = np.int64((v & 0xFFFFFF) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    f0 = two_over_pi_limb(q + 2)
    f1 = two_over_pi_limb(q + 3)
    f2 = two_over_pi_limb(q + 4)
    f3 = two_over_pi_limb(q + 5)
    f4 = two_over_pi_limb(q + 6)
    f5 = two_over_pi_limb(q + 7)
    # the bits of v + 2**52 (the 2**52 bit is above every bit used below)
    gi = np.float64(x0 * f0 + x1 * f1 + 4503599627370496.0).view(np.int64)
    g0 = np.float64(x0 * f1 + x1 * f2 + 4503599627370496.0).view(np.int64)
    # integer part mod 4 and the first 48 fraction bits, exactly: < 6 in steps of 2**-48
    a = np.int64(((gi + (g0 >> 24)) & 3) | 0x4330000000000000).view(np.float64) - 4503599627370496.0
    a = a + (np.int64((g0 & 0xFFFFFF) | 0x4330000000000000).view(np.float64) - 4503599627370496.0) \
        * 5.960464477539063e-08
    a = a + (x0 * f2 + x1 * f3) * 3.552713678800501e-15
    t = a + 6755399441055744.0
    nf = t - 6755399441055744.0
    fr = (a - nf) + ((x0 * f3 + x1 * f4) * 2.117582368135751e-22 + (x0 * f4 + x1 * f5) * 1.262177448353619e-29)
    up = fr > 0.5
    fr = fr - 1.0 if up else fr
    nb = np.float64(t).view(np.int64) - 0x4338000000000000 + (1 if up else 0)
    rb = fr * 1.5707963267948966
    rb = -rb if x < 0.0 else rb
    nb = -nb if x < 0.0 else nb
    r = rb if big else r
    n = nb if big else n
    return r, n


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sincos_kernel_f32(r):
    """(sin r, cos r) in float64 for |r| <= pi/4 + tiny, good to 2**-34: FreeBSD's float kernels (k_sinf, k_cosf)."""
    z = r * r
    w = z * z
    s = (r + z * r * (-0.16666666641626524 + z * 0.008333329385889463)) \
        + z * r * w * (-0.00019839334836096632 + z * 2.718311493989822e-06)
    c = ((1.0 + z * -0.499999997251031) + w * 0.04166662332373906) \
        + w * z * (-0.001388676377460993 + z * 2.439044879627741e-05)
    return s, c


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sin_f32(x):
    """sin x for every float32: <= 0.5 ULP + 2**-10; sin(+-inf) = nan, sin(-0.0) = -0.0."""
    x = np.float32(x)
    r, n = rem_pio2_f32(np.float64(x))
    s, c = sincos_kernel_f32(r)
    y = c if n & 1 else s
    y = -y if n & 2 else y
    return x if x == 0.0 else np.float32(y)


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def cos_f32(x):
    """cos x for every float32: <= 0.5 ULP + 2**-10; cos(+-inf) = nan."""
    x = np.float32(x)
    r, n = rem_pio2_f32(np.float64(x))
    s, c = sincos_kernel_f32(r)
    y = s if n & 1 else c
    return np.float32(-y if (n + 1) & 2 else y)


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sin_fast_f32(x):
    """sin x for float32 |x| <= 2**20 (as ``sin_f32``), nan beyond: no Payne-Hanek."""
    x = np.float32(x)
    d = np.float64(x)
    t = d * 0.6366197723675814 + 6755399441055744.0
    fn = t - 6755399441055744.0
    n = np.float64(t).view(np.int64) - 0x4338000000000000
    r = (d - fn * 1.57079632673412561417e+00) - fn * 6.07710050650619224932e-11
    s, c = sincos_kernel_f32(r)
    y = c if n & 1 else s
    y = -y if n & 2 else y
    y = y if abs(d) <= 1048576.0 else np.nan
    return x if x == 0.0 else np.float32(y)


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def cos_fast_f32(x):
    """cos x for float32 |x| <= 2**20 (as ``cos_f32``), nan beyond: no Payne-Hanek."""
    d = np.float64(np.float32(x))
    t = d * 0.6366197723675814 + 6755399441055744.0
    fn = t - 6755399441055744.0
    n = np.float64(t).view(np.int64) - 0x4338000000000000
    r = (d - fn * 1.57079632673412561417e+00) - fn * 6.07710050650619224932e-11
    s, c = sincos_kernel_f32(r)
    y = s if n & 1 else c
    y = -y if (n + 1) & 2 else y
    return np.float32(y if abs(d) <= 1048576.0 else np.nan)


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def tanh_f32(x):
    """tanh x for float32, via ``tanh_f64``."""
    return np.float32(tanh_f64(np.float64(x)))


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def sigmoid_f32(x):
    """1 / (1 + e**-x) for float32, via ``sigmoid_f64``."""
    return np.float32(sigmoid_f64(np.float64(x)))


@numba.njit(error_model="numpy", fastmath={"contract"}, forceinline=True, no_cfunc_wrapper=True)
def softplus_f32(x):
    """log(1 + e**x) for float32, via ``softplus_f64``."""
    return np.float32(softplus_f64(np.float64(x)))


# --------------------------------------------------------------------------------------------------
# tables for the code generator
# --------------------------------------------------------------------------------------------------

FUNCTIONS = ("exp", "expm1", "log", "log1p", "sin", "cos", "tanh", "sigmoid", "softplus")

# (function, dtype) -> the helper a generated loop calls; every helper is full-domain
HELPERS: dict[tuple[str, str], str] = {(f, d): f"{f}_{d}" for f in FUNCTIONS for d in ("f64", "f32")}

# sine and cosine valid for |x| <= FAST_LIMIT only (nan beyond), about 3x faster than HELPERS' versions
FAST_LIMIT = 2.0 ** 20
FAST_HELPERS: dict[tuple[str, str], str] = {(f, d): f"{f}_fast_{d}" for f in ("sin", "cos") for d in ("f64", "f32")}

# helper -> the helpers it calls (module.py copies these too, transitively)
REQUIRES: dict[str, tuple[str, ...]] = {
    "rem_pio2_f64": ("rem_pio2_fast_f64", "two_over_pi_limb"),
    "sin_f64": ("rem_pio2_f64", "sincos_kernel_f64"),
    "cos_f64": ("rem_pio2_f64", "sincos_kernel_f64"),
    "sin_fast_f64": ("rem_pio2_fast_f64", "sincos_kernel_f64"),
    "cos_fast_f64": ("rem_pio2_fast_f64", "sincos_kernel_f64"),
    "trig_fast_range": ("trig_fast_ok",),
    "exp_f64": ("exp_parts_f64",),
    "tanh_f64": ("exp_parts_f64",),
    **{f"{f}_f32": (f"{f}_f64",) for f in FUNCTIONS if f not in ("sin", "cos")},
    "rem_pio2_f32": ("two_over_pi_limb",),
    "sin_f32": ("rem_pio2_f32", "sincos_kernel_f32"),
    "cos_f32": ("rem_pio2_f32", "sincos_kernel_f32"),
    "sin_fast_f32": ("sincos_kernel_f32",),
    "cos_fast_f32": ("sincos_kernel_f32",),
}
