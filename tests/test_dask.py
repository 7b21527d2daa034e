"""Value and gradient over Dask data (diffc/dask.py, diffc/passes/decompose.py) equal the in-memory ones.

The reference is the same compiled function on the whole NumPy arrays (itself
checked against finite differences elsewhere) and, for logistic regression,
the hand formula X.T (sigmoid(z) - y) / m + lam w. Chunkings: one chunk,
uneven chunks, a chunk of zero rows, columns chunked apart. A loss that the
rows couple raises RowCouplingError naming the node. The cluster tests run
a LocalCluster of worker processes: the kernel is loaded once per process,
and a worker killed mid-computation is replaced and its tasks retried.
"""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="the dask extra is not installed: pip install -e '.[dask]'")

import dask  # noqa: E402

import diffc  # noqa: E402
from diffc import dask as diffc_dask  # noqa: E402
from diffc.errors import RowCouplingError  # noqa: E402

LAM = 0.1


def logistic(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0, z) - y * z) + 0.5 * LAM * np.sum(w * w)


def squares(w, X, y):
    r = X @ w - y
    return np.sum(r * r) / X.shape[0] + np.sum(np.abs(w))


def data(m: int = 301, n: int = 4, dtype: type = np.float64, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)).astype(dtype)
    y = (rng.random(m) < 0.5).astype(dtype)
    return rng.standard_normal(n).astype(dtype), X, y


def close(a, b, rtol: float = 1e-12) -> None:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, tuple):
            close(x, y, rtol)
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * 1e-3)


CHUNKINGS = {"one": ((301,),), "uneven": ((100, 7, 150, 44),), "zero rows": ((150, 0, 151),)}


@pytest.mark.parametrize("chunks", list(CHUNKINGS), ids=list(CHUNKINGS))
def test_chunkings_equal_in_memory(backend: str, chunks: str) -> None:
    f = diffc.compile(logistic, wrt=("w", "b"), backend=backend)
    w, X, y = data()
    rows = CHUNKINGS[chunks][0]
    with dask.config.set(scheduler="threads"):
        lazy = f.value_and_grad(w, 0.25, da.from_array(X, chunks=(rows, 4)), da.from_array(y, chunks=(rows,)))
    close(lazy, f.value_and_grad(w, 0.25, X, y))
    # and the hand formula
    z = X @ w + 0.25
    p = 1 / (1 + np.exp(-z))
    close(lazy[1], (X.T @ (p - y) / len(y) + LAM * w, float(np.mean(p - y))), rtol=1e-10)


def test_grad_columns_chunked_and_mixed_chunks(backend: str) -> None:
    """Columns chunked apart are joined; y chunked unlike X is rechunked to X's rows; grad returns the bare one."""
    f = diffc.compile(squares, wrt="w", backend=backend)
    w, X, y = data(m=97, n=6)
    lazy = f.grad(w, da.from_array(X, chunks=(30, 2)), da.from_array(y, chunks=(50,)))
    assert isinstance(lazy, np.ndarray)
    close(lazy, f.grad(w, X, y))


@pytest.mark.parametrize("kind", ["numpy", pytest.param("numba", marks=pytest.mark.slow)])
def test_float32(kind: str) -> None:
    """float32 blocks give float32 gradients; Numba's float32 kernels cost a cold compile, so in the slow run."""
    f = diffc.compile(logistic, wrt=("w", "b"), backend=kind)
    w, X, y = data(dtype=np.float32)
    lazy = f.value_and_grad(w, np.float32(0.25), da.from_array(X, chunks=(64, 4)), da.from_array(y, chunks=64))
    ref = f.value_and_grad(w, np.float32(0.25), X, y)
    assert lazy[1][0].dtype == np.float32
    close(lazy, ref, rtol=1e-5)  # blocks add in another order than one pass: float32's rounding


def softmax_rows(w, X, y):
    z = X @ w
    return -np.sum(y * (z - np.log(np.sum(np.exp(z)))))


def max_loss(w, X, y):
    return np.max(X @ w - y)


def log_of_sum(w, X, y):
    return np.log(np.sum(np.exp(X @ w - y)))


@pytest.mark.parametrize(("fn", "words"), [(max_loss, "amax"), (log_of_sum, "log"), (softmax_rows, "rows")],
                         ids=["max", "log of a sum", "normalised across rows"])
def test_non_decomposable_loss_names_the_node(fn, words: str) -> None:
    f = diffc.compile(fn, wrt="w", backend="numpy")
    w, X, y = data()
    with pytest.raises(RowCouplingError, match=r"is not a sum over the rows of X, y: .*%\d+ = ") as info:
        f.grad(w, da.from_array(X, chunks=(100, 4)), da.from_array(y, chunks=100))
    assert words in str(info.value)
    assert isinstance(info.value, diffc.DiffcError)


def test_row_argument_left_in_memory_is_refused() -> None:
    f = diffc.compile(logistic, wrt=("w", "b"), backend="numpy")
    w, X, y = data()
    with pytest.raises(RowCouplingError, match="'y'.*not chunked with them"):
        f.grad(w, 0.0, da.from_array(X, chunks=(100, 4)), y)


def test_problem_with_scipy_minimize() -> None:
    """L-BFGS on the Dask objective reaches the in-memory optimum."""
    from scipy.optimize import minimize

    f = diffc.compile(logistic, wrt=("w", "b"), backend="numpy")
    w, X, y = data()
    problem = diffc_dask.Problem(f, np.zeros(4), 0.0, da.from_array(X, chunks=(77, 4)), da.from_array(y, chunks=77))
    result = minimize(problem, problem.x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    w_fit, b_fit = problem.unpack(result.x)

    def in_memory(x):
        value, (gw, gb) = f.value_and_grad(x[:4], float(x[4]), X, y)
        return value, np.append(gw, gb)

    expected = minimize(in_memory, np.zeros(5), jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    np.testing.assert_allclose(np.append(w_fit, b_fit), expected.x, atol=1e-6)
    assert problem.calls == result.nfev


def test_progress_bar_sees_the_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    from dask.diagnostics import ProgressBar

    f = diffc.compile(logistic, wrt=("w", "b"), backend="numpy")
    w, X, y = data()
    with ProgressBar(minimum=0, dt=0.001):
        f.grad(w, 0.0, da.from_array(X, chunks=(50, 4)), da.from_array(y, chunks=50))
    assert "100%" in capsys.readouterr().out


def test_problem_progress_bar_per_evaluation(capsys: pytest.CaptureFixture[str]) -> None:
    """Problem(progress=True) under threads: one finished Dask bar per evaluation, the same value as in memory."""
    f = diffc.compile(logistic, wrt=("w", "b"), backend="numpy")
    w, X, y = data()
    problem = diffc_dask.Problem(f, w, 0.25, da.from_array(X, chunks=(60, 4)), da.from_array(y, chunks=60),
                                 progress=True)
    value, gradient = problem(problem.x0)
    problem(problem.x0 + 0.5)
    assert capsys.readouterr().out.count("100% Completed") == 2
    ref_value, (gw, gb) = f.value_and_grad(w, 0.25, X, y)
    close((value, gradient), (ref_value, np.append(gw, gb)))


def _client(workers: int):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    return cluster, distributed.Client(cluster)


def test_distributed_loads_the_kernel_once_per_worker() -> None:
    """Two worker processes, 12 blocks: each process loads the kernel at most once; the result matches."""
    f = diffc.compile(logistic, wrt=("w", "b"), backend="numpy")
    w, X, y = data()
    cluster, client = _client(2)
    with cluster, client:
        Xd, yd = da.from_array(X, chunks=(25, 4)), da.from_array(y, chunks=25)
        graph, finish = diffc_dask.lazy_value_and_grad(f, w, 0.25, Xd, yd)
        future = client.compute(graph)
        from distributed import progress

        progress(future, notebook=False)
        close(finish(future.result()), f.value_and_grad(w, 0.25, X, y))
        close(f.value_and_grad(w, 0.25, Xd, yd), f.value_and_grad(w, 0.25, X, y))  # the Client is the scheduler
        counts = client.run(diffc_dask.loads)
    assert counts and all(set(c.values()) <= {1} for c in counts.values()), counts
    assert sum(len(c) for c in counts.values()) >= 1


@pytest.mark.slow
def test_numba_kernel_compiled_once_per_worker() -> None:
    """Numba back end, two worker processes, 16 blocks, two evaluations: one load and one machine-code version
    of the block kernel per process (diffc.dask.compiles counts Numba's signatures), the answers in-memory's."""
    f = diffc.compile(logistic, wrt=("w", "b"), backend="numba")
    w, X, y = data(m=400)
    cluster, client = _client(2)
    with cluster, client:
        Xd, yd = da.from_array(X, chunks=(25, 4)), da.from_array(y, chunks=25)
        for shift in (0.0, 1.0):
            close(f.value_and_grad(w + shift, 0.25, Xd, yd), f.value_and_grad(w + shift, 0.25, X, y))
        loaded, compiled = client.run(diffc_dask.loads), client.run(diffc_dask.compiles)
    assert sum(len(c) for c in compiled.values()) >= 1
    for worker in compiled:
        assert set(loaded[worker].values()) <= {1} and set(compiled[worker].values()) <= {1}, (loaded, compiled)
        assert set(compiled[worker]) == set(loaded[worker])


def _slow_block(block: np.ndarray) -> np.ndarray:
    import time

    time.sleep(0.3)
    return block


@pytest.mark.slow
def test_killed_worker_is_retried_and_the_result_matches() -> None:
    """A worker process killed mid-computation: dask.distributed reruns its tasks; the answer is unchanged."""
    import os
    import signal
    import time

    f = diffc.compile(logistic, wrt=("w", "b"), backend="numba")
    w, X, y = data(m=1200)
    cluster, client = _client(2)
    with cluster, client:
        Xd = da.from_array(X, chunks=(50, 4)).map_blocks(_slow_block, dtype=X.dtype)
        yd = da.from_array(y, chunks=50)
        graph, finish = diffc_dask.lazy_value_and_grad(f, w, 0.25, Xd, yd)
        future = client.compute(graph)
        time.sleep(1.5)
        pids = client.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        result = finish(future.result(timeout=120))
    close(result, f.value_and_grad(w, 0.25, X, y))
