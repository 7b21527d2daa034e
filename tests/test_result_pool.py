"""Large result arrays reuse the memory of freed ones (``PooledBuffer``), and never the memory of a live one.

The pool trades a little memory held between calls for the page faults a
fresh array costs; the danger it brings is aliasing, a live result whose
memory is handed out again. These tests check both sides: reuse happens,
and no live array, or view of one, ever shares memory with a new result.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np
import pytest
from plain_numba import call_plain, load_compiled

import diffc
from diffc.support import numba_loops
from diffc.support.numba_loops import PooledBuffer, pooled_empty

N = 600_000  # above empty_f64's 4 MiB threshold (524,288 float64s)


@pytest.fixture(autouse=True)
def _empty_pool() -> Iterator[None]:
    """Each test starts and ends with an empty pool and the default limit."""
    limit = PooledBuffer.limit
    gc.collect()
    PooledBuffer.pool.clear()
    yield
    PooledBuffer.limit = limit
    PooledBuffer.pool.clear()


def address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


@pytest.mark.parametrize("dtype", ["<f8", "<f4"])
def test_freed_memory_is_reused_and_live_memory_is_not(dtype: str) -> None:
    a = pooled_empty(N, dtype)
    b = pooled_empty(N, dtype)
    assert not np.shares_memory(a, b) and a.dtype == np.dtype(dtype) and a.shape == (N,)
    freed = address(a)
    del a
    c = pooled_empty(N, dtype)
    assert address(c) == freed and not np.shares_memory(b, c)
    assert c.flags.writeable and c.flags.c_contiguous


def test_a_view_keeps_its_memory_out_of_the_pool() -> None:
    a = pooled_empty(N, "<f8")
    view = a[::2]
    del a
    assert not PooledBuffer.pool.get((N * 8, "<f8"))
    b = pooled_empty(N, "<f8")
    assert not np.shares_memory(view, b)
    del view
    assert len(PooledBuffer.pool[(N * 8, "<f8")]) == 1


def test_sizes_and_dtypes_do_not_mix() -> None:
    a = pooled_empty(N, "<f8")
    del a
    assert pooled_empty(N, "<f4").nbytes == N * 4 and pooled_empty(N + 1, "<f8").shape == (N + 1,)
    assert len(PooledBuffer.pool[(N * 8, "<f8")]) == 1  # neither took the float64 block


def test_the_limit_bounds_what_the_pool_holds() -> None:
    PooledBuffer.limit = 3 * N * 8
    arrays = [pooled_empty(N, "<f8") for _ in range(5)]
    del arrays
    held = sum(b.nbytes for free in PooledBuffer.pool.values() for b in free)
    assert 0 < held <= PooledBuffer.limit
    PooledBuffer.limit = 0
    PooledBuffer.pool.clear()
    a = pooled_empty(N, "<f8")
    del a
    assert not any(PooledBuffer.pool.values())


def chain(x, y):
    x2 = x * x
    return np.sum(np.sin(x) * np.exp(-x2) + np.log1p(x2) * np.tanh(y) + np.sqrt(1 + x2 * y * y))


def reference_gradient(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W5's gradient by hand (benchmarks/workloads.py writes the same)."""
    x2 = x * x
    r = np.sqrt(1 + x2 * y * y)
    th = np.tanh(y)
    gx = (np.cos(x) - 2 * x * np.sin(x)) * np.exp(-x2) + 2 * x / (1 + x2) * th + x * y * y / r
    return gx, np.log1p(x2) * (1 - th * th) + x2 * y / r


def test_a_kept_gradient_is_not_overwritten_by_the_next_call() -> None:
    """Real Numba: the second call reuses the first call's freed arrays, never the kept ones."""
    f = diffc.compile(chain, args={"x": "f64[n]", "y": "f64[n]"})
    rng = np.random.default_rng(5)
    inputs = [(rng.uniform(-2, 2, N), rng.uniform(-2, 2, N)) for _ in range(4)]
    kept = [f.grad(x, y) for x, y in inputs[:2]]
    for _ in range(3):
        f.grad(*inputs[2])  # results dropped at once: their memory goes back to the pool
    assert len(PooledBuffer.pool[(N * 8, "<f8")]) == 2  # the last dropped call's x_bar and y_bar
    kept.append(f.grad(*inputs[3]))
    for (x, y), grads in zip([inputs[0], inputs[1], inputs[3]], kept, strict=True):
        for got, expected in zip(grads, reference_gradient(x, y), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    arrays = [a for grads in kept for a in grads]
    assert all(not np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


def test_the_standalone_module_carries_its_own_pool() -> None:
    """``diffc emit``'s copy of the helpers: its pool class comes with it, and runs as plain Python."""
    f = diffc.compile(chain, args={"x": "f64[n]", "y": "f64[n]"})
    source = f.module_source(standalone=True)
    assert "class PooledBuffer" in source and "diffc" not in source.split('"""', 2)[2].replace("diffc_", "")
    namespace = load_compiled(f)
    rng = np.random.default_rng(6)
    x, y = rng.uniform(-2, 2, N), rng.uniform(-2, 2, N)
    first = call_plain(namespace["value_and_grad"], x, y)[1]
    second = call_plain(namespace["value_and_grad"], y, x)[1]
    for got, expected in zip(first, reference_gradient(x, y), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert not any(np.shares_memory(a, b) for a in first for b in second)
    assert namespace["PooledBuffer"] is not numba_loops.PooledBuffer
