"""diffc's vector math helpers (diffc/support/vmath.py): accuracy, special values, vectorization, copyability.

Every helper runs the way generated code runs it: inside a Numba loop compiled
with ``error_model="numpy"`` and the ``reassoc`` family of fast-math flags, so
these tests also show that the caller's flags do not leak into the helpers.

References, independent of the helpers:
- mpmath at 128 bits, rounded nowhere: the ULP error is measured against the
  exact value (the default run uses a few hundred points per function and
  range; the slow run 20,000);
- NumPy's long double (80-bit x87 on x86-64: 64-bit mantissa, its libm within
  an ulp of that, i.e. ~2**-11 ULP of a double) for the 10**6-point sweeps;
  a test checks it against mpmath first;
- NumPy itself, which the helpers must match within 4 ULP (sigmoid: the
  two-sided formula; NumPy has no sigmoid of its own).
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import re
import warnings
from collections.abc import Callable

import mpmath
import numba
import numpy as np
import pytest

from diffc.support import vmath

GENERATED_FASTMATH = {"contract", "afn", "arcp", "nsz", "reassoc"}
DTYPES = {"f64": np.float64, "f32": np.float32}
PRECISION = {"f64": (53, -1074), "f32": (24, -149)}  # significant bits, exponent of the smallest subnormal
LONG_DOUBLE_OK = np.finfo(np.longdouble).nmant >= 63

# documented bounds (docs/vmath.md) against the exact value; float32 rounds a float64 result once
BOUND = {"exp": 0.85, "expm1": 1.15, "log": 0.9, "log1p": 0.9, "sin": 0.85, "cos": 0.85, "tanh": 1.1,
         "sigmoid": 0.85, "softplus": 0.85}
BOUND_F32 = 0.51
NUMPY_BOUND = 4.0


# ---------------------------------------------------------------------------
# kernels, as the code generator writes them

@functools.cache
def kernel(helper: str) -> Callable[[np.ndarray, np.ndarray], None]:
    """``out[i] = helper(x[i])`` in a loop compiled with the generated code's flags."""
    fn = getattr(vmath, helper)

    @numba.njit(error_model="numpy", fastmath=GENERATED_FASTMATH)
    def loop(x: np.ndarray, out: np.ndarray) -> None:
        for i in range(x.size):
            out[i] = fn(x[i])

    return loop


def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal as NumPy values: NaN matches NaN, and 0.0 does not match -0.0."""
    return (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))


def run(name: str, dt: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=DTYPES[dt])
    out = np.empty_like(x)
    kernel(f"{name}_{dt}")(x, out)
    return out


# ---------------------------------------------------------------------------
# references

def _mp_sigmoid(x: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-x))


def _mp_softplus(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.log1p(mpmath.exp(x))


MPMATH = {"exp": mpmath.exp, "expm1": mpmath.expm1, "log": mpmath.log, "log1p": mpmath.log1p, "sin": mpmath.sin,
          "cos": mpmath.cos, "tanh": mpmath.tanh, "sigmoid": _mp_sigmoid, "softplus": _mp_softplus}


def _ld_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _ld_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.zeros_like(x), x)


LONG_DOUBLE = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "sin": np.sin, "cos": np.cos,
               "tanh": np.tanh, "sigmoid": _ld_sigmoid, "softplus": _ld_softplus}


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


NUMPY = {**{n: getattr(np, n) for n in ("exp", "expm1", "log", "log1p", "sin", "cos", "tanh")},
         "sigmoid": _np_sigmoid, "softplus": lambda x: np.logaddexp(x.dtype.type(0), x)}


def _overflow(dt: str) -> np.longdouble:
    """The smallest magnitude that rounds to inf in ``dt``: max + half an ulp = 2**(emax + 1) (1 - 2**-(p + 1))."""
    bits, _ = PRECISION[dt]
    return np.ldexp(1 - np.longdouble(2) ** -(bits + 1), np.finfo(DTYPES[dt]).maxexp)


def ulp_mpmath(y: np.ndarray, x: np.ndarray, name: str, dt: str) -> np.ndarray:
    """|y - f(x)| in ULPs of f(x), with f(x) exact (mpmath, 128 bits); an overflow to inf is exact."""
    bits, tiny = PRECISION[dt]
    errors = np.empty(x.size)
    with mpmath.workprec(128):
        limit = mpmath.ldexp(1 - mpmath.mpf(2) ** -(bits + 1), int(np.finfo(DTYPES[dt]).maxexp))
        for i, (xi, yi) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
            exact = MPMATH[name](mpmath.mpf(xi))
            if np.isinf(yi) and abs(exact) >= limit and (yi > 0) == (exact > 0):
                errors[i] = 0.0
                continue
            ulp = mpmath.ldexp(1, max(int(mpmath.frexp(exact)[1]) - bits, tiny)) if exact else mpmath.ldexp(1, tiny)
            errors[i] = float(abs(mpmath.mpf(yi) - exact) / ulp)
    return errors


def ulp_long_double(y: np.ndarray, reference: np.ndarray, dt: str) -> np.ndarray:
    """|y - reference| in ULPs of the reference (a long double array); inf where y rounds it wrongly to inf."""
    bits, tiny = PRECISION[dt]
    ref = np.asarray(reference, dtype=np.longdouble)
    exponent = np.frexp(np.where(np.isfinite(ref), np.abs(ref), 1))[1].astype(np.int64)
    ulp = np.ldexp(np.longdouble(1), np.where(ref == 0, tiny, np.maximum(exponent - bits, tiny)))
    with np.errstate(invalid="ignore"):
        errors = np.asarray(np.abs(y.astype(np.longdouble) - ref) / ulp, dtype=np.float64)
    rounds_to_inf = np.isinf(y) & (np.abs(ref) >= _overflow(dt)) & (np.sign(y) == np.sign(ref))
    errors[(y == ref) | rounds_to_inf | (np.isnan(y) & np.isnan(ref))] = 0.0
    errors[np.isnan(errors)] = np.inf
    return errors


# ---------------------------------------------------------------------------
# domains: (label, sampler) per function and dtype; every sample also gets the function's edge points

Sampler = Callable[[np.random.Generator, int], np.ndarray]


def uniform(lo: float, hi: float) -> Sampler:
    return lambda rng, n: rng.uniform(lo, hi, n)


def log_uniform(lo: float, hi: float, signed: bool = False) -> Sampler:
    """|x| log-uniform in [lo, hi] (subnormals included when lo is one), random signs if ``signed``."""
    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        x = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        return x * rng.choice([-1.0, 1.0], n) if signed else x
    return sample


def near_half_pi(kmax: int) -> Sampler:
    """Doubles a few ulps from k pi/2: the reduction's hardest inputs below 2**20."""
    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        x = rng.integers(1, kmax, n) * (np.pi / 2)
        return (x + rng.integers(-4, 5, n) * np.spacing(x)) * rng.choice([-1.0, 1.0], n)
    return sample


def all_float32(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random bit patterns: every finite float32 is equally likely."""
    x = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return x[np.isfinite(x)].astype(np.float64)


SUB64, SUB32 = 5e-324, 1.4e-45
DOMAINS: dict[tuple[str, str], list[tuple[str, Sampler]]] = {
    ("exp", "f64"): [("[-745.2, 709.78]", uniform(-745.2, 709.78)), ("[-1, 1]", uniform(-1, 1)),
                     ("subnormal results [-745.2, -708]", uniform(-745.2, -708))],
    ("expm1", "f64"): [("[-40, 709.78]", uniform(-40, 709.78)), ("[-2, 2]", uniform(-2, 2)),
                       ("|x| in [1e-300, 1]", log_uniform(1e-300, 1, signed=True))],
    ("log", "f64"): [("(0, max], log-uniform", log_uniform(SUB64, 1.7e308)), ("[0.5, 2]", uniform(0.5, 2))],
    ("log1p", "f64"): [("[-1, 1]", uniform(-1, 1)), ("[1e-300, 1e300]", log_uniform(1e-300, 1e300)),
                       ("-[1e-300, 1)", lambda rng, n: -np.exp(rng.uniform(-690, 0, n)))],
    ("sin", "f64"): [("[-4, 4]", uniform(-4, 4)), ("[-2**20, 2**20]", uniform(-2.0**20, 2.0**20)),
                     ("|x| in [2**20, max]", log_uniform(2.0**20, 1.7e308, signed=True)),
                     ("|x| in [1e-300, 1]", log_uniform(1e-300, 1, signed=True)),
                     ("near k pi/2", near_half_pi(600_000))],
    ("tanh", "f64"): [("[-1, 1]", uniform(-1, 1)), ("[-25, 25]", uniform(-25, 25)),
                      ("|x| in [1e-300, 1]", log_uniform(1e-300, 1, signed=True))],
    ("sigmoid", "f64"): [("[-750, 750]", uniform(-750, 750)), ("[-40, 40]", uniform(-40, 40))],
    ("softplus", "f64"): [("[-750, 750]", uniform(-750, 750)), ("[-40, 40]", uniform(-40, 40))],
    ("exp", "f32"): [("[-104, 89]", uniform(-104, 89)), ("[-1, 1]", uniform(-1, 1))],
    ("expm1", "f32"): [("[-20, 89]", uniform(-20, 89)), ("|x| in [1e-40, 1]", log_uniform(1e-40, 1, signed=True))],
    ("log", "f32"): [("(0, max]", lambda rng, n: np.abs(all_float32(rng, n)))],
    ("log1p", "f32"): [("[-1, 10]", uniform(-1, 10)), ("[1e-40, 1e38]", log_uniform(1e-40, 1e38))],
    ("sin", "f32"): [("[-10, 10]", uniform(-10, 10)), ("every float32", all_float32)],
    ("tanh", "f32"): [("[-10, 10]", uniform(-10, 10)), ("|x| in [1e-40, 1]", log_uniform(1e-40, 1, signed=True))],
    ("sigmoid", "f32"): [("[-110, 30]", uniform(-110, 30))],
    ("softplus", "f32"): [("[-110, 110]", uniform(-110, 110))],
}
for _dt in DTYPES:
    DOMAINS[("cos", _dt)] = DOMAINS[("sin", _dt)]

EDGES64 = [0.0, -0.0, SUB64, -SUB64, 2.2250738585072014e-308, -2.2250738585072014e-308, 1e-300, -1e-300, 0.5, -0.5,
           1.0, -1.0, 2.0, np.log(2) / 2, -np.log(2) / 2, np.pi / 4, np.pi / 2, np.pi, 1e-8, 0.3465, 0.5493061443340549]
EDGES = {
    "exp": [709.782712893384, -745.1332191019411, -708.3964185322641, -708.39641853226, 709.78, -745.13],
    "expm1": [709.782712893384, -37.42994775023705, 36.7368005696771, 37.4, 1e-20, -1e-20],
    "log": [1.7976931348623157e308, 0.7071067811865476, 1.4142135623730951, 0.9999999999999999, 1.0000000000000002],
    "log1p": [-0.9999999999999999, 1e300, 1.7976931348623157e308, 0.41421356237309503, -0.2928932188134524],
    "sin": [1048576.0, -1048576.0, 1048576.0000000002, 1e22, 1.7976931348623157e308, 6381956970095103 * 2.0**797],
    "tanh": [19.0, 19.1, 22.0, -22.0, 1e-300, 0.55, 354.0],
    "sigmoid": [-745.0, -709.0, 36.0, 37.0, -36.0, 709.0],
    "softplus": [-745.0, 36.0, 37.0, 709.0, 710.0, 1e300, -1e300],
}
EDGES["cos"] = EDGES["sin"]


def sample(name: str, dt: str, sampler: Sampler, n: int, seed: int) -> np.ndarray:
    """n points of the domain plus the function's edge points, as ``dt`` values inside the domain."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([sampler(rng, n), EDGES64, EDGES[name]])
    x = x[np.abs(x) <= np.finfo(DTYPES[dt]).max].astype(DTYPES[dt])
    if name == "log":
        x = x[x > 0]
    if name == "log1p":
        x = x[x > -1]
    return x


def cases(dtypes: tuple[str, ...] = ("f64", "f32")) -> list[object]:
    return [pytest.param(name, dt, label, sampler, id=f"{name}_{dt}-{label}")
            for (name, dt), domains in DOMAINS.items() if dt in dtypes for label, sampler in domains]


def bound(name: str, dt: str) -> float:
    return BOUND[name] if dt == "f64" else BOUND_F32


def report(errors: np.ndarray, x: np.ndarray, y: np.ndarray) -> str:
    i = int(np.argmax(errors))
    return f"max {errors[i]:.3f} ULP at x = {x[i]!r} (got {y[i]!r})"


# ---------------------------------------------------------------------------
# accuracy

@pytest.mark.parametrize(("name", "dt", "label", "sampler"), cases())
def test_accuracy_against_mpmath(name: str, dt: str, label: str, sampler: Sampler) -> None:
    x = sample(name, dt, sampler, 1000, seed=1)
    y = run(name, dt, x)
    errors = ulp_mpmath(y, x.astype(np.float64), name, dt)
    assert errors.max() <= bound(name, dt), report(errors, x, y)


def numpy_agreement(name: str, dt: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ULPs between the helper and NumPy, at the points where NumPy itself is within 2 ULP of the exact value.

    NumPy is not always that close (its cos is 8 ULP off at the worst case of
    the pi/2 reduction, 5.3e255, where the helper is exact): those points
    are the mpmath tests' business.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = NUMPY[name](x)
        reference = LONG_DOUBLE[name](x.astype(np.longdouble)) if LONG_DOUBLE_OK else expected
    trusted = ulp_long_double(expected, reference, dt) <= 2
    assert trusted.mean() > 0.99, f"NumPy's {name} is more than 2 ULP off on {1 - trusted.mean():.1%} of the points"
    return np.where(trusted, ulp_long_double(y, expected.astype(np.longdouble), dt), 0.0)


@pytest.mark.parametrize(("name", "dt", "label", "sampler"), cases())
def test_agrees_with_numpy(name: str, dt: str, label: str, sampler: Sampler) -> None:
    x = sample(name, dt, sampler, 20_000, seed=2)
    y = run(name, dt, x)
    errors = numpy_agreement(name, dt, x, y)
    assert errors.max() <= NUMPY_BOUND, report(errors, x, y)


@pytest.mark.skipif(not LONG_DOUBLE_OK, reason="needs an 80-bit or wider long double")
@pytest.mark.parametrize("name", sorted(MPMATH))
def test_long_double_reference_is_exact_enough(name: str) -> None:
    """The 10**6-point sweeps trust NumPy's long double: it must sit within 0.01 ULP (float64) of mpmath."""
    x = np.concatenate([sample(name, "f64", sampler, 60, seed=3) for _, sampler in DOMAINS[(name, "f64")]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = LONG_DOUBLE[name](x.astype(np.longdouble))
    bits, tiny = PRECISION["f64"]
    with mpmath.workprec(128):
        for xi, ri in zip(x.tolist(), reference, strict=True):
            exact = MPMATH[name](mpmath.mpf(xi))
            ulp = mpmath.ldexp(1, max(int(mpmath.frexp(exact)[1]) - bits, tiny)) if exact else mpmath.ldexp(1, tiny)
            assert abs(mpmath.mpf(str(ri)) - exact) / ulp <= 0.01, (name, xi)


@pytest.mark.slow
@pytest.mark.skipif(not LONG_DOUBLE_OK, reason="needs an 80-bit or wider long double")
@pytest.mark.parametrize(("name", "dt", "label", "sampler"), cases())
def test_accuracy_million_points(name: str, dt: str, label: str, sampler: Sampler) -> None:
    """The documented ULP bounds, over 10**6 points per function and range (edges included)."""
    x = sample(name, dt, sampler, 1_000_000, seed=4)
    y = run(name, dt, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = LONG_DOUBLE[name](x.astype(np.longdouble))
    errors = ulp_long_double(y, reference, dt)
    assert errors.max() <= bound(name, dt), report(errors, x, y)
    assert numpy_agreement(name, dt, x, y).max() <= NUMPY_BOUND


@pytest.mark.slow
@pytest.mark.parametrize(("name", "dt", "label", "sampler"), cases())
def test_accuracy_against_mpmath_large_sample(name: str, dt: str, label: str, sampler: Sampler) -> None:
    x = sample(name, dt, sampler, 20_000, seed=5)
    y = run(name, dt, x)
    errors = ulp_mpmath(y, x.astype(np.float64), name, dt)
    assert errors.max() <= bound(name, dt), report(errors, x, y)


def test_sin_cos_worst_case_reduction() -> None:
    """x = 6381956970095103 * 2**797 is the double closest to a multiple of pi/2 (cos x ~ 4.7e-19)."""
    x = np.array([6381956970095103 * 2.0**797, -6381956970095103 * 2.0**797])
    for name in ("sin", "cos"):
        y = run(name, "f64", x)
        assert ulp_mpmath(y, x, name, "f64").max() <= 0.6, (name, y)


# ---------------------------------------------------------------------------
# special values: exactly NumPy's (NaN for NaN, the sign of zeros included)

# inputs whose result NumPy determines exactly (no rounding question), per function
SPECIAL = {
    "exp": ["nan", "inf", "-inf", "0", "-0", "sub", "-sub", "max", "-max", "1000", "-1000"],
    "expm1": ["nan", "inf", "-inf", "0", "-0", "sub", "-sub", "max", "-max", "-1000"],
    "log": ["nan", "inf", "-inf", "0", "-0", "-sub", "-max", "-1", "-2", "1"],
    "log1p": ["nan", "inf", "-inf", "0", "-0", "sub", "-sub", "-1", "-2", "-max"],
    "sin": ["nan", "inf", "-inf", "0", "-0", "sub", "-sub"],
    "cos": ["nan", "inf", "-inf", "0", "-0", "sub", "-sub"],
    "tanh": ["nan", "inf", "-inf", "0", "-0", "sub", "-sub", "max", "-max", "1000", "-1000"],
}


def special_inputs(names: list[str], dt: str) -> np.ndarray:
    fi = np.finfo(DTYPES[dt])
    value = {"nan": np.nan, "inf": np.inf, "sub": fi.smallest_subnormal, "max": fi.max}

    def one(text: str) -> float:
        return -one(text[1:]) if text.startswith("-") else value[text] if text in value else float(text)

    return np.array([one(n) for n in names], dtype=DTYPES[dt])


@pytest.mark.parametrize("dt", ["f64", "f32"])
@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_special_values_match_numpy(name: str, dt: str) -> None:
    x = special_inputs(SPECIAL[name], dt)
    y = run(name, dt, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = NUMPY[name](x)
    assert same(y, expected).all(), [(a, b, c) for a, b, c in zip(x, y, expected, strict=True) if not same(b, c)]


@pytest.mark.parametrize("dt", ["f64", "f32"])
def test_special_values_listed_in_the_issue(dt: str) -> None:
    t = DTYPES[dt]
    inf, nan = t(np.inf), t(np.nan)

    def one(name: str, value: float) -> np.floating:
        return run(name, dt, np.array([value]))[0]

    assert one("exp", -inf) == 0 and one("exp", 1000.0) == inf and one("exp", 1e300 if dt == "f64" else 1e30) == inf
    assert one("log", 0.0) == -inf and one("log", -0.0) == -inf and np.isnan(one("log", -1.0))
    assert np.isnan(one("log", -inf)) and one("log", inf) == inf
    assert one("log1p", -1.0) == -inf and np.isnan(one("log1p", -2.0)) and one("log1p", inf) == inf
    assert np.isnan(one("sin", inf)) and np.isnan(one("cos", -inf)) and np.isnan(one("sin", nan))
    assert one("tanh", inf) == 1 and one("tanh", -inf) == -1
    for name in ("tanh", "expm1", "log1p", "sin"):
        zero = one(name, -0.0)
        assert zero == 0 and np.signbit(zero), name
    assert one("cos", -0.0) == 1 and one("exp", -0.0) == 1
    assert one("sigmoid", -inf) == 0 and one("sigmoid", inf) == 1 and one("sigmoid", 0.0) == 0.5
    assert one("sigmoid", -0.0) == 0.5 and np.isnan(one("sigmoid", nan))
    big = 1e300 if dt == "f64" else 1e30
    assert one("softplus", big) == t(big) and one("softplus", 50.0) == t(50.0) and one("softplus", inf) == inf
    assert one("softplus", -inf) == 0 and np.isnan(one("softplus", nan))
    assert one("softplus", 0.0) == t(np.log(2)) and one("softplus", -0.0) == t(np.log(2))
    for name in ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "softplus"):
        assert np.isnan(one(name, nan)), name


@pytest.mark.parametrize("dt", ["f64", "f32"])
def test_tiny_results_are_subnormal_not_zero(dt: str) -> None:
    """exp, sigmoid, softplus and tanh keep subnormal results, as NumPy does."""
    t = DTYPES[dt]
    x = np.array([-745.0, -740.0] if dt == "f64" else [-103.0, -100.0], dtype=t)
    sub = np.finfo(t).smallest_normal
    for name in ("exp", "sigmoid", "softplus"):
        y = run(name, dt, x)
        assert ((y > 0) & (y < sub)).all(), (name, y)
    tiny = np.array([np.finfo(t).smallest_subnormal * 3], dtype=t)
    assert run("tanh", dt, tiny)[0] == tiny[0] and run("sin", dt, tiny)[0] == tiny[0]


# ---------------------------------------------------------------------------
# the reduced-domain sine and cosine

@pytest.mark.parametrize("dt", ["f64", "f32"])
def test_fast_sin_cos(dt: str) -> None:
    rng = np.random.default_rng(6)
    inside = np.concatenate([rng.uniform(-2.0**20, 2.0**20, 5000), [2.0**20, -2.0**20, 0.0, np.nan, np.inf]])
    for name in ("sin", "cos"):
        assert same(run(f"{name}_fast", dt, inside), run(name, dt, inside)).all()
        beyond = np.array([2.0**20 * (1 + 2.0**-20), -1e10, 1e30], dtype=DTYPES[dt])
        assert np.isnan(run(f"{name}_fast", dt, beyond)).all()
    ok = vmath.trig_fast_ok
    assert ok(2.0**20) and ok(-3.0) and ok(np.inf) and ok(np.nan)
    assert not ok(2.0**20 + 1) and not ok(-1e300)


# ---------------------------------------------------------------------------
# the helpers vectorize inside a loop compiled with the generated code's flags

def kernel_asm(helper: str) -> str:
    loop = kernel(helper)
    if not loop.signatures:
        run(helper.rsplit("_", 1)[0], helper.rsplit("_", 1)[1], np.zeros(8))
    asm = loop.inspect_asm(loop.signatures[0])
    return asm.split(".Lfunc_end0")[0]  # the loop's own function, not the CPython wrapper


def _has_wide_vectors() -> bool:
    import llvmlite.binding as llvm
    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    return "+avx2" in features or "+avx512f" in features


@pytest.mark.skipif(not _has_wide_vectors(), reason="no AVX2 on this machine: the check counts ymm/zmm instructions")
@pytest.mark.parametrize("helper", sorted(set(vmath.HELPERS.values()) | set(vmath.FAST_HELPERS.values())))
def test_loop_vectorizes_without_calls(helper: str) -> None:
    asm = kernel_asm(helper)
    packed = re.findall(r"^\s+v\w+p[sd]\s.*%[yz]mm", asm, re.MULTILINE)
    calls = re.findall(r"^\s+call.*", asm, re.MULTILINE)
    assert len(packed) >= 20, f"{helper}: only {len(packed)} packed instructions: the loop did not vectorize"
    assert not calls, f"{helper}: the loop still calls {calls}"


# ---------------------------------------------------------------------------
# the tables the code generator reads, and copies of the source (diffc emit)

def test_tables_name_existing_helpers() -> None:
    for fn in vmath.FUNCTIONS:
        for dt in DTYPES:
            assert hasattr(vmath, vmath.HELPERS[(fn, dt)])
    assert all(hasattr(vmath, name) for name in vmath.FAST_HELPERS.values())
    for name, deps in vmath.REQUIRES.items():
        assert hasattr(vmath, name) and all(hasattr(vmath, dep) for dep in deps), name


def _helpers() -> list[str]:
    return sorted(name for name, value in vars(vmath).items() if isinstance(value, numba.core.registry.CPUDispatcher))


@pytest.mark.parametrize("helper", _helpers())
def test_helper_source_is_self_contained(helper: str) -> None:
    """Free names of a helper's source: np, numba, math, builtins and the helpers REQUIRES lists, nothing else."""
    tree = ast.parse(inspect.getsource(getattr(vmath, helper).py_func))
    assigned = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    assigned |= {a.arg for node in ast.walk(tree) if isinstance(node, ast.arguments) for a in node.args}
    loaded = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    free = loaded - assigned - set(dir(builtins)) - {"np", "numba", "math"}
    assert free == set(vmath.REQUIRES.get(helper, ())), helper


def test_copied_source_runs_standalone() -> None:
    """sin_f64 and softplus_f32 with their REQUIRES, exec'd in a namespace holding only np and numba."""
    ordered: list[str] = []
    stack = ["sin_f64", "softplus_f32"]
    while stack:
        name = stack.pop()
        if name not in ordered:
            ordered.append(name)
            stack.extend(vmath.REQUIRES.get(name, ()))
    namespace: dict[str, object] = {"np": np, "numba": numba}
    for name in reversed(ordered):
        exec(inspect.getsource(getattr(vmath, name).py_func), namespace)
    for name, x in (("sin_f64", np.array([0.5, -3.0, 1e7, 1e300, -0.0])),
                    ("softplus_f32", np.array([0.5, -3.0, 1e7, 1e30, -40.0], dtype=np.float32))):
        got = np.array([namespace[name](v) for v in x])
        want = np.array([getattr(vmath, name)(v) for v in x])
        assert same(got, want).all(), name
