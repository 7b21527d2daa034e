"""Logistic regression on 10^8 rows that no one process holds: diffc's gradient over a Dask array, in SciPy.

The data is synthetic and lazy: each block of rows of X (64 features) is
drawn by a generator seeded with the block's number, when and where Dask
needs it, and its labels are drawn from the true model
P(y = 1) = sigmoid(X w_true + b_true) inside the same task, so neither X nor y
exists whole anywhere (10^8 x 64 float64 would be 51 GB). The loss is the
notes' cross-entropy (z = Xw + b, J = -mean(y log a + (1-y) log(1-a)))
plus a small ridge term; diffc proves from its IR that J is a mean over
the rows plus a term of w alone, so ``diffc.dask.Problem`` hands
``scipy.optimize.minimize(jac=True)`` the value and gradient summed over
every block, each block run by the compiled one-pass kernel. A progress
bar shows each pass over the blocks (Dask's for threads,
``distributed.progress`` for a cluster). Data that fits in memory (the
``--small`` run) is persisted once, on the workers; data that does not is
regenerated block by block on every pass. At the end the script prints the
falling loss and how well the fitted w matches w_true. Drawing the random
numbers is most of a pass: on 2 busy cores a pass over 10^7 rows took about
35 s, so the full 10^8 rows for 20 iterations is hours there, and
``--rows 10000000 --iterations 5`` a few minutes.

    python examples/dask_logistic.py [--small] [--rows N] [--chunk ROWS] [--workers K]
                                     [--scheduler threads|processes] [--iterations N]
"""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
from common import parse_args
from scipy.optimize import minimize

import diffc
from diffc import dask as diffc_dask

FEATURES = 64
LAM = 1e-4
SEED = 2026


def loss(w, b, X, y):
    """The notes' cross-entropy, averaged over the m rows, plus (LAM / 2) |w|^2."""
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))  # diffc rewrites this to a stable sigmoid and log(a) to -softplus(-z)
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a)) + 0.5 * LAM * np.sum(w * w)


def truth(features: int = FEATURES) -> tuple[np.ndarray, float]:
    """The model the labels come from: w_true of norm about 3 (labels neither certain nor coin flips)."""
    w = np.random.default_rng(SEED).standard_normal(features)
    return 3.0 * w / np.linalg.norm(w), 0.5


def block(block_id: tuple[int, ...], block_info: dict | None = None) -> np.ndarray:
    """Rows of [X | y] for one block: the same numbers for the same block number, on any worker, at any time."""
    rows = block_info[None]["chunk-shape"][0]
    rng = np.random.default_rng([SEED, block_id[0]])
    X = rng.standard_normal((rows, FEATURES))
    w, b = truth()
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return np.column_stack([X, rng.random(rows) < p])


def lazy_data(rows: int, chunk: int) -> tuple[da.Array, da.Array]:
    """X and y as Dask arrays of ``rows`` rows in blocks of ``chunk``, made only when computed."""
    sizes = (chunk,) * (rows // chunk) + ((rows % chunk,) if rows % chunk else ())
    both = da.map_blocks(block, chunks=(sizes, (FEATURES + 1,)), dtype=np.float64, meta=np.empty((0, 0)))
    return both[:, :FEATURES], both[:, FEATURES]


def fit(rows: int, chunk: int, iterations: int, backend: str, persist: bool) -> None:
    f = diffc.compile(loss, wrt=("w", "b"), backend=backend)
    X, y = lazy_data(rows, chunk)
    print(f"{rows:,} rows x {FEATURES} features in {X.numblocks[0]} blocks of {chunk:,} rows "
          f"({X.nbytes / 1e9:.1f} GB as float64); {'persisted once' if persist else 'regenerated every pass'}")
    problem = diffc_dask.Problem(f, np.zeros(FEATURES), 0.0, X, y, persist=persist, progress=True)
    losses: list[float] = []
    start = time.perf_counter()
    result = minimize(lambda x: record(problem(x), losses), problem.x0, jac=True, method="L-BFGS-B",
                      options={"maxiter": iterations})
    seconds = time.perf_counter() - start
    for k, value in enumerate(losses):
        print(f"evaluation {k:3d}  loss {value:.6f}")
    w, b = problem.unpack(result.x)
    w_true, b_true = truth()
    print(f"L-BFGS-B: {result.nit} iterations, {result.nfev} passes over the data, {seconds:.1f} s, "
          f"{result.nfev * rows / seconds:,.0f} rows/s")
    print(f"corr(w, w_true) {np.corrcoef(w, w_true)[0, 1]:.4f}  |w - w_true| / |w_true| "
          f"{np.linalg.norm(w - w_true) / np.linalg.norm(w_true):.4f}  b {b:.4f} (true {b_true})")


def record(value_and_grad: tuple[float, np.ndarray], losses: list[float]) -> tuple[float, np.ndarray]:
    losses.append(value_and_grad[0])
    return value_and_grad


def main() -> None:
    options = parse_args(__doc__, {
        "rows": (int, 10**8, "rows of synthetic data"), "chunk": (int, 250_000, "rows per block"),
        "workers": (int, 2, "threads, or worker processes"),
        "scheduler": (str, "threads", "threads (Dask's threaded scheduler) or processes (a LocalCluster)"),
        "iterations": (int, 20, "L-BFGS-B iterations at most")})
    rows, chunk = (60_000, 7_000) if options.small else (options.rows, options.chunk)
    iterations = min(options.iterations, 15) if options.small else options.iterations
    persist = rows * (FEATURES + 1) * 8 < 2e9  # what fits is kept on the workers; the rest is regenerated
    if options.scheduler == "processes":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            fit(rows, chunk, iterations, options.backend, persist)
    elif options.scheduler == "threads":
        with dask.config.set(scheduler="threads", num_workers=options.workers):
            fit(rows, chunk, iterations, options.backend, persist)
    else:
        raise SystemExit(f"--scheduler is threads or processes, not {options.scheduler!r}")


if __name__ == "__main__":
    main()
