"""Fused loops of the Numba back end against the NumPy-statement reference.

The Numba back end fuses elementwise chains into loops, reads matrix rows once
for value and gradient, and runs large loops in fixed chunks on all cores.
Every variant must equal ``backend="numpy"`` up to rounding, at awkward sizes
(0, 1, 7, not a multiple of anything) and at sizes that take the parallel path.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import diffc

EPS = np.finfo(np.float64).eps


def logistic(w, b, X, y):
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def dag_logistic(w, X, y):
    return 0.5 * np.sum(w * w) - 0.1 * np.mean(np.log(1 / (1 + np.exp(-y * (X @ w)))))


def hinge(w, X, y):
    return np.mean(np.maximum(0.0, 1 - y * (X @ w))) + 0.01 * np.sum(w * w)


def chain(x, y):
    return np.sum(np.sin(x) * np.exp(-x**2) + np.log(1 + x**2) * np.tanh(y) + np.sqrt(1 + x**2 * y**2))


def relu_where(x, y):
    return np.sum(np.where(x > y, x * y, np.maximum(x, 0.0)) + np.abs(y))


ROW_MODELS = {
    "logistic": (logistic, {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, ("w", "b")),
    "dag_logistic": (dag_logistic, {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, "w"),
    "hinge": (hinge, {"w": "f64[n]", "X": "f64[m,n]", "y": "f64[m]"}, "w"),
}


def _row_inputs(name: str, m: int, n: int, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(m) > 0.5).astype(float)
    return {"w": rng.normal(size=n) * 0.3, "b": 0.1, "X": rng.normal(size=(m, n)),
            "y": labels if name == "logistic" else 2 * labels - 1}


def _compare(got, expected, scale: float) -> None:
    got_value, got_grads = got
    value, grads = expected
    assert abs(got_value - value) <= 64 * EPS * scale + 1e-300
    for g, e in zip(got_grads if isinstance(got_grads, tuple) else (got_grads,),
                    grads if isinstance(grads, tuple) else (grads,), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13 * scale)


@pytest.fixture(scope="module")
def compiled() -> dict[str, tuple[diffc.Compiled, diffc.Compiled]]:
    out = {}
    for name, (fn, args, wrt) in ROW_MODELS.items():
        out[name] = (diffc.compile(fn, args=args, wrt=wrt), diffc.compile(fn, args=args, wrt=wrt, backend="numpy"))
    return out


@pytest.mark.parametrize("name", sorted(ROW_MODELS))
def test_row_kernel_reads_the_matrix_once(name: str, compiled) -> None:
    fused, _ = compiled[name]
    source = fused.grad_source
    # one row dot product and one row accumulation, in the same loop over the rows (printed twice when
    # parallel: the prange loop and its serial twin, diffc/codegen/loops.py)
    copies = 2 if "numba.prange" in source else 1
    assert len(re.findall(r"X\[(i\w*), j\w*\]", source)) == 2 * copies
    assert len(set(re.findall(r"X\[(i\w*), j\w*\]", source))) == 1
    code = re.sub(r"#.*", "", source)  # the rule comments name the forward statement (z = X @ w + b)
    assert "X.T" not in code and "X @" not in code
    assert "_block[" in source  # blocks of rows: dot products, then the elementwise chain, then accumulation


@pytest.mark.parametrize("name", sorted(ROW_MODELS))
@pytest.mark.parametrize("m,n", [(1, 1), (7, 3), (63, 2), (64, 2), (65, 2), (1000, 17), (12000, 64)])
def test_row_kernels_match_numpy(name: str, m: int, n: int, compiled) -> None:
    fused, reference = compiled[name]
    args = list(_row_inputs(name, m, n).values())
    if name != "logistic":
        args.pop(1)
    _compare(fused.value_and_grad(*args), reference.value_and_grad(*args), scale=m * n)


def test_parallel_result_is_bit_identical_across_runs(compiled) -> None:
    fused, _ = compiled["logistic"]
    args = list(_row_inputs("logistic", 30001, 64, seed=5).values())
    assert "numba.prange" in fused.grad_source
    first = fused.value_and_grad(*args)
    for _ in range(5):
        again = fused.value_and_grad(*args)
        assert again[0] == first[0]
        assert np.array_equal(again[1][0], first[1][0]) and again[1][1] == first[1][1]


def test_parallel_sum_is_within_rounding_of_the_exact_sum(compiled) -> None:
    """Chunked partial sums differ from a serial sum by at most n * eps * sum |terms|."""
    fused, _ = compiled["logistic"]
    values = _row_inputs("logistic", 40000, 64, seed=9)
    w, b, X, y = values.values()
    value, (w_bar, _) = fused.value_and_grad(w, b, X, y)
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    terms = -(y * np.log(a) + (1 - y) * np.log(1 - a)) / len(y)
    exact = float(np.sum(np.array(terms, dtype=np.longdouble)))
    assert abs(value - exact) <= len(y) * EPS * np.sum(np.abs(terms))
    dz = (a - y) / len(y)
    bound = len(y) * EPS * (np.abs(X).T @ np.abs(dz)) + 1e-300
    assert np.all(np.abs(w_bar - X.T @ dz) <= 4 * bound)


@pytest.mark.parametrize("n", [0, 1, 7, 1001, 70000])
def test_elementwise_chain_is_one_loop_and_matches(n: int) -> None:
    args = {"x": "f64[n]", "y": "f64[n]"}
    fused = diffc.compile(chain, args=args)
    reference = diffc.compile(chain, args=args, backend="numpy")
    source = fused.grad_source
    # one loop, printed twice: sin and cos by Cody-Waite alone when every |x| <= 2**20, else full range
    # (and each twice more when parallel: the prange loop and its serial twin, diffc/codegen/loops.py)
    copies = 2 if "numba.prange" in source else 1
    loops = re.findall(r"for i in range\(.*\):", source)
    assert len(loops) == 2 * copies and "empty_f64(n)" in source
    assert "sin_fast_f64(x[i])" in source and "np.sin(x[i])" in source and "def sin_f64(" not in fused.module_source()
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(size=n)
    _compare(fused.value_and_grad(x, y), reference.value_and_grad(x, y), scale=max(n, 1) * 4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 5, 524287, 524288, 1048577])
def test_result_arrays_around_the_huge_page_threshold(n: int, dtype) -> None:
    """empty_f64/empty_f32 switch to NumPy's allocator at 4 MiB: the same values on both sides."""
    from diffc.support import numba_loops

    helper = numba_loops.empty_f64 if dtype == np.float64 else numba_loops.empty_f32
    out = helper(n)
    assert out.shape == (n,) and out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable
    kind = "f64" if dtype == np.float64 else "f32"
    f = diffc.compile(lambda x: np.sum(np.exp(x) * x), args={"x": f"{kind}[n]"})
    x = np.linspace(-1.0, 1.0, n).astype(dtype)
    grad = f.grad(x)
    expected = np.exp(x.astype(np.float64)) * (1.0 + x.astype(np.float64))
    tolerance = 1e-12 if kind == "f64" else 1e-5  # absolute too: 1 + x cancels near x = -1
    np.testing.assert_allclose(grad, expected, rtol=tolerance, atol=tolerance)


def sine_weighted(x, y):
    return np.sum(np.sin(x) * y + np.cos(x))


@pytest.mark.parametrize("n", [1, 7, 70000])
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_sines_of_huge_arguments_take_the_full_range_loop(n: int, dtype: str) -> None:
    """An |x| > 2**20 anywhere in a chunk sends that chunk through the Payne-Hanek loop: exact still."""
    args = {"x": f"{dtype}[n]", "y": f"{dtype}[n]"}
    fused = diffc.compile(sine_weighted, args=args)
    reference = diffc.compile(sine_weighted, args=args, backend="numpy")
    assert f"sin_fast_{dtype}(x[i])" in fused.grad_source and "np.cos(x[i])" in fused.grad_source
    rng = np.random.default_rng(n)
    numpy_dtype = np.float64 if dtype == "f64" else np.float32
    x, y = rng.normal(size=n).astype(numpy_dtype), rng.normal(size=n).astype(numpy_dtype)
    tolerance = 1e-12 if dtype == "f64" else 1e-5
    for wide in ([], [0], [n - 1], [0, n // 2, n - 1]):
        x_wide = x.copy()
        x_wide[wide] = [1.5e6 * (k + 1) * (-1) ** k + 0.25 for k in range(len(wide))]
        if dtype == "f64" and wide:
            x_wide[wide[-1]] = 1e22  # the classic: sin(1e22) = -0.8522008497671888
        value, (x_bar, y_bar) = fused.value_and_grad(x_wide, y)
        ref_value, (ref_x_bar, ref_y_bar) = reference.value_and_grad(x_wide, y)
        assert abs(value - ref_value) <= tolerance * n
        np.testing.assert_allclose(y_bar, np.sin(x_wide), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(x_bar, ref_x_bar, rtol=tolerance, atol=tolerance)


def test_sines_of_computed_values_keep_the_full_range_helpers() -> None:
    """sin(2 x) cannot be range-checked before the loop: one loop, with the full-range sine."""
    f = diffc.compile(lambda x: np.sum(np.sin(2.0 * x)), args={"x": "f64[n]"})
    assert "sin_fast" not in f.grad_source and "cos_f64(" in f.grad_source
    x = np.array([0.5, 3e6, -1e22 / 2])
    np.testing.assert_allclose(f.grad(x), 2 * np.cos(2 * x), rtol=1e-12)


def test_branches_and_routing_inside_loops() -> None:
    args = {"x": "f64[n]", "y": "f64[n]"}
    fused = diffc.compile(relu_where, args=args)
    reference = diffc.compile(relu_where, args=args, backend="numpy")
    assert " if " in fused.grad_source  # where is a branch inside the loop
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=101), rng.normal(size=101)
    x[:5] = y[:5]  # ties
    x[5:10] = 0.0
    _compare(fused.value_and_grad(x, y), reference.value_and_grad(x, y), scale=101)


def test_fused_gradient_against_central_differences() -> None:
    f = diffc.compile(chain, args={"x": "f64[n]", "y": "f64[n]"})
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=5), rng.normal(size=5)
    x_bar, y_bar = f.grad(x, y)
    h = 1e-6
    for k in range(5):
        e = np.zeros(5)
        e[k] = h
        assert x_bar[k] == pytest.approx((f(x + e, y) - f(x - e, y)) / (2 * h), rel=1e-6, abs=1e-9)
        assert y_bar[k] == pytest.approx((f(x, y + e) - f(x, y - e)) / (2 * h), rel=1e-6, abs=1e-9)


def test_nan_and_inf_propagate_through_fused_loops() -> None:
    """fastmath never includes nnan/ninf: NaN and inf behave as in NumPy."""
    def f(x):
        return np.sum(np.log(x) * x)

    fused = diffc.compile(f, args={"x": "f64[n]"})
    reference = diffc.compile(f, args={"x": "f64[n]"}, backend="numpy")
    x = np.array([1.0, np.inf, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got, expected = fused.value_and_grad(x), reference.value_and_grad(x)
    assert got[0] == expected[0] == np.inf
    np.testing.assert_array_equal(got[1][0], expected[1][0])
    x = np.array([1.0, np.nan])
    assert np.isnan(fused(x))


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def shifted_products(x):
    return np.sum(x[2:] * x[:-2]) + np.sum(x[1:-1] ** 2)


def mixed_slices(x):
    return np.sum(x[2:] * x[:-2]) + np.sum(x[3:] * 0.5) + np.sum(x[::2]) + np.sum(x[-3:] ** 2)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 8, 101])
def test_mixed_slices_match(n: int) -> None:
    fused = diffc.compile(mixed_slices, args={"x": "f64[n]"})
    reference = diffc.compile(mixed_slices, args={"x": "f64[n]"}, backend="numpy")
    x = np.random.default_rng(n).normal(size=n)
    _compare(fused.value_and_grad(x), reference.value_and_grad(x), scale=max(n, 1) * 10)


@pytest.mark.parametrize("fn", [rosenbrock, shifted_products])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 1000])
def test_slices_fuse_into_one_loop_writing_each_gradient_element_once(fn, n: int) -> None:
    fused = diffc.compile(fn, args={"x": "f64[n]"})
    reference = diffc.compile(fn, args={"x": "f64[n]"}, backend="numpy")
    source = fused.grad_source
    assert "np.zeros" not in source and not re.search(r"x_bar\[[^]]*\] \+=", source)  # written once, in order
    x = np.random.default_rng(n).normal(size=n)
    _compare(fused.value_and_grad(x), reference.value_and_grad(x), scale=max(n, 1) * 100)


def test_rosenbrock_gradient_is_the_hand_derived_formula() -> None:
    f = diffc.compile(rosenbrock, args={"x": "f64[n]"})
    x = np.random.default_rng(2).normal(size=50)
    grad = f.grad(x)
    hand = np.zeros_like(x)
    hand[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    hand[1:] += 200 * (x[1:] - x[:-1] ** 2)
    np.testing.assert_allclose(grad, hand, rtol=1e-12, atol=1e-12)


def test_thread_cap_gives_the_same_bits(compiled) -> None:
    """The chunks are fixed, so capping the threads changes who computes them, not the result."""
    fused, _ = compiled["logistic"]
    args = list(_row_inputs("logistic", 30001, 64, seed=4).values())
    free = fused.value_and_grad(*args)
    try:
        diffc.set_num_threads(1)
        capped = fused.value_and_grad(*args)
    finally:
        diffc.set_num_threads(None)
    assert capped[0] == free[0] and np.array_equal(capped[1][0], free[1][0])
    with pytest.raises(ValueError):
        diffc.set_num_threads(0)


@pytest.mark.parametrize(("n", "threads"), [(6, False), (100_000, True)])
def test_a_fixed_size_too_small_for_threads_prints_no_parallel_loop(n: int, threads: bool) -> None:
    """The run-time test (size times work against the threshold) made at print time when the size is fixed:
    6 elements get one serial loop, no chunk count and no prange twin; 100,000 keep both."""
    f = diffc.compile(lambda x: np.sum(np.exp(x) * np.sin(x)), args={"x": f"f64[{n}]"})
    source = f.grad_source
    assert ("numba.prange(" in source) is threads and ("chunks" in source) is threads
    x = np.linspace(-1.0, 1.0, n)
    np.testing.assert_allclose(f.grad(x), np.exp(x) * (np.sin(x) + np.cos(x)), rtol=1e-14, atol=1e-15)
