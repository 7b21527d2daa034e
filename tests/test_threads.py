"""Threads: a forked child computes (serially) instead of dying; small calls enter no parallel region.

The fork test runs in a child process of its own, so that the parallel
kernel it starts (and the GNU OpenMP pool that comes with it) belongs to
that process, not to the test runner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import diffc
from diffc.codegen.loops import serial_twin
from diffc.threads import CAP, omp_pool_started
from tests.conftest import as_tuple
from tests.plain_numba import call_plain, load_compiled

FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing, sys
    import numpy as np
    import diffc
    from diffc.threads import omp_pool_started

    f = diffc.compile(lambda x: np.sum(np.exp(x) * x), args={"x": "f64[n]"})
    big = np.linspace(-1.0, 1.0, 300_000)  # n * 20 above PARALLEL_MIN_WORK: the parallel branch
    small = np.linspace(-1.0, 1.0, 7)
    parent = f.value_and_grad(big)
    print("pool", omp_pool_started())

    def child(queue):
        value, grads = f.value_and_grad(big)
        grad = grads if isinstance(grads, np.ndarray) else grads[0]
        small_value, _ = f.value_and_grad(small)
        want = np.exp(big) * (1 + big)
        queue.put((value, float(np.max(np.abs(grad - want)) / np.max(np.abs(want))), small_value))

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    process.join(120)
    print("exitcode", process.exitcode)
    value, grad_error, small_value = queue.get(timeout=5)
    want = np.sum(np.exp(big) * big)
    assert abs(value - want) <= 1e-9 * abs(want), (value, want)
    assert value == parent[0], "the child's serial chunks give the parent's bits"
    assert grad_error <= 1e-13, grad_error
    assert abs(small_value - np.sum(np.exp(small) * small)) <= 1e-13
    print("ok")
""")


def test_forked_child_after_a_parallel_kernel_gets_the_right_numbers(tmp_path) -> None:
    """Run a parallel kernel, fork, call it in the child: the child lives and matches NumPy and its parent."""
    env = {**os.environ, "DIFFC_CACHE_DIR": str(tmp_path), "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", FORK_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exitcode 0" in done.stdout and "ok" in done.stdout, done.stdout + done.stderr
    assert "GNU OpenMP" not in done.stderr


def test_child_cap_only_after_the_pool_started() -> None:
    """The at-fork hook caps a child only when the parent's omp pool is running; here the test runner's state."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its cap and leaves at once
        os.write(write, repr(CAP[0]).encode())
        os._exit(0)
    os.close(write)
    got = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert got == ("1" if omp_pool_started() else repr(CAP[0]))


def test_serial_twin_prints_both_loops_over_the_same_chunks() -> None:
    lines = serial_twin("chunk", "chunks", "pool_threads", ["acc = 0.0", "parts[chunk] = acc"])
    assert lines[0] == "if chunks > 1 and pool_threads() > 1:"
    assert lines[1] == "    for chunk in numba.prange(chunks):"
    assert lines[lines.index("else:") + 1] == "    for chunk in range(chunks):"
    assert lines[2:4] == lines[-2:] == ["        acc = 0.0", "        parts[chunk] = acc"]


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_serial_and_parallel_branch_agree_plain(threads: int, dtype: str) -> None:
    """Both branches of the twin, run as plain Python over 3 chunks, give one answer (and NumPy's)."""
    f = diffc.compile(lambda x, y: np.sum(np.exp(x) * y), args={"x": f"{dtype}[n]", "y": f"{dtype}[n]"})
    module = load_compiled(f, parallel_threshold=0, threads=threads)
    rng = np.random.default_rng(3)
    x, y = (rng.normal(size=11).astype(np.float32 if dtype == "f32" else np.float64) for _ in range(2))
    value, grads = call_plain(module["value_and_grad"], x, y)
    gx, gy = as_tuple(grads, 2)
    rtol = 1e-5 if dtype == "f32" else 1e-13
    np.testing.assert_allclose(value, np.sum(np.exp(x) * y), rtol=rtol)
    np.testing.assert_allclose(gx, np.exp(x) * y, rtol=rtol)
    np.testing.assert_allclose(gy, np.exp(x), rtol=rtol)


def test_small_call_takes_the_serial_branch_numba() -> None:
    """With real Numba: a small input picks one chunk, and the value and gradient match NumPy (both back ends)."""
    x = np.linspace(-1.0, 1.0, 9)
    for backend in ("numba", "numpy"):
        f = diffc.compile(lambda x: np.sum(np.exp(x) * x), args={"x": "f64[n]"}, backend=backend)
        value, grads = f.value_and_grad(x)
        assert value == pytest.approx(np.sum(np.exp(x) * x), rel=1e-14)
        np.testing.assert_allclose(as_tuple(grads, 1)[0], np.exp(x) * (1 + x), rtol=1e-14)
    assert "pool_threads() > 1" in diffc.compile(lambda x: np.sum(np.exp(x) * x), args={"x": "f64[n]"}).grad_source
