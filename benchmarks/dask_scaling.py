"""Rows per second of one value and gradient of logistic regression: in memory, and over Dask on 1, 2, 4 processes.

The loss is L(w) = mean(log(1 + e^z) - y z) + (lam / 2) |w|^2 with z = X w
(no intercept, so that dask-glm's Logistic family computes the same thing).
The data is generated block by block by a seeded generator, the same bits
in this process (for the in-memory path) and on the workers (persisted
there once, before timing). Each row of the table is one way of getting the
value and the gradient:

- diffc in memory: ``f.value_and_grad(w, X, y)`` on NumPy arrays (Numba back end);
- diffc over Dask: the same call with X and y Dask arrays, on a LocalCluster
  of K worker processes with one thread each;
- dask.array by hand: ``z = X @ w`` ..., ``X.T @ (sigmoid(z) - y) / m + lam w``, computed together;
- dask-glm: ``Logistic.pointwise_loss`` and ``pointwise_gradient``, divided by m, plus the ridge term.

Every result is checked against the in-memory one (rtol 1e-10) before it is
timed; each figure is the median of --repeats passes. The machine this
was written on has 2 cores: 4 worker processes share them and are not faster.

    python benchmarks/dask_scaling.py [--rows N] [--chunk ROWS] [--workers 1,2,4] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

import diffc

FEATURES = 64
LAM = 1e-3
SEED = 7


def loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0, z) - y * z) + 0.5 * LAM * np.sum(w * w)


def block(block_id: tuple[int, ...], block_info: dict | None = None) -> np.ndarray:
    """Rows of [X | y] for one block, the same bits wherever it runs."""
    rows = block_info[None]["chunk-shape"][0]
    rng = np.random.default_rng([SEED, block_id[0]])
    X = rng.standard_normal((rows, FEATURES)) / 4
    return np.column_stack([X, rng.random(rows) < 1 / (1 + np.exp(-X.sum(axis=1)))])


def lazy(rows: int, chunk: int) -> tuple[da.Array, da.Array]:
    sizes = (chunk,) * (rows // chunk) + ((rows % chunk,) if rows % chunk else ())
    both = da.map_blocks(block, chunks=(sizes, (FEATURES + 1,)), dtype=np.float64, meta=np.empty((0, 0)))
    # contiguous blocks, as data read from Parquet or Zarr would be: a strided view would cost every way a copy
    return (both[:, :FEATURES].map_blocks(np.ascontiguousarray, dtype=np.float64),
            both[:, FEATURES].map_blocks(np.ascontiguousarray, dtype=np.float64))


def by_hand(w: np.ndarray, X: da.Array, y: da.Array) -> tuple[Any, Any]:
    z = X @ w
    p = 1 / (1 + da.exp(-z))
    value = da.mean(da.logaddexp(0, z) - y * z) + 0.5 * LAM * np.sum(w * w)
    return value, X.T @ (p - y) / X.shape[0] + LAM * w


def dask_glm_terms() -> tuple[Callable[..., tuple[Any, Any]] | None, str]:
    """dask-glm's value and gradient of the same loss, or None and why not."""
    try:
        from dask_glm.families import Logistic
    except Exception as error:  # noqa: BLE001 - any failure to import is reported, not raised
        return None, f"dask-glm is not usable here ({type(error).__name__}: {error}); pip install dask-glm"

    def terms(w: np.ndarray, X: da.Array, y: da.Array) -> tuple[Any, Any]:
        m = X.shape[0]
        return (Logistic.pointwise_loss(w, X, y) / m + 0.5 * LAM * np.sum(w * w),
                Logistic.pointwise_gradient(w, X, y) / m + LAM * w)

    import dask_glm

    return terms, f"dask-glm {getattr(dask_glm, '__version__', '?')}"


def median_seconds(run: Callable[[np.ndarray], Any], w: np.ndarray, repeats: int) -> float:
    """Median wall time of ``run(w')``, w' a slightly different w each time: a graph of new keys, so that no
    pass finds its result still held by the scheduler from the one before (Dask's keys are content hashes)."""
    times = []
    for i in range(1, repeats + 1):
        moved = w * (1 + 1e-9 * i)
        start = time.perf_counter()
        run(moved)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def checked(label: str, got: tuple[Any, Any], expected: tuple[float, np.ndarray]) -> None:
    value, gradient = float(got[0]), np.asarray(got[1])
    if not (np.isclose(value, expected[0], rtol=1e-10) and np.allclose(gradient, expected[1], rtol=1e-10)):
        raise SystemExit(f"{label}: value {value} or gradient differs from in-memory diffc's")


def on_cluster(f: Any, Xd: da.Array, yd: da.Array,
               glm: Callable[..., tuple[Any, Any]] | None) -> dict[str, Callable[[np.ndarray], Any]]:
    """The ways timed on a cluster, each computing the value and the gradient at w from the persisted blocks."""
    ways = {"diffc over Dask": lambda w: f.value_and_grad(w, Xd, yd),
            "dask.array by hand": lambda w: dask.compute(*by_hand(w, Xd, yd))}
    if glm is not None:
        ways["dask-glm Logistic"] = lambda w: dask.compute(*glm(w, Xd, yd))
    return ways


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=125_000)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    rows = options.rows
    f = diffc.compile(loss, wrt="w")
    w = np.random.default_rng(1).standard_normal(FEATURES) / 8
    X, y = dask.compute(*lazy(rows, options.chunk), scheduler="sync")
    expected = f.value_and_grad(w, X, y)
    table = [("diffc in memory (NumPy arrays)", "-",
              median_seconds(lambda v: f.value_and_grad(v, X, y), w, options.repeats))]
    glm, glm_note = dask_glm_terms()
    print(f"{rows:,} rows x {FEATURES} features, blocks of {options.chunk:,} rows; {glm_note}")
    from distributed import Client, LocalCluster

    for workers in (int(k) for k in options.workers.split(",")):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=50) as cluster, Client(cluster):
            ways = on_cluster(f, *dask.persist(*lazy(rows, options.chunk)), glm)
            for label, run in ways.items():
                checked(label, run(w), expected)  # also the warm-up: kernels loaded and compiled on every worker
                table.append((label, str(workers), median_seconds(run, w, options.repeats)))
    print(f"{'way':<32} {'workers':>7} {'seconds':>9} {'rows/s':>14}")
    for label, workers, seconds in table:
        print(f"{label:<32} {workers:>7} {seconds:9.4f} {rows / seconds:14,.0f}")


if __name__ == "__main__":
    main()
