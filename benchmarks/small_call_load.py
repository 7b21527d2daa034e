"""A small call's time on an idle machine and with CPU hogs running (issue 12, item 4).

A small function (``sum(exp(x) * sin(x))``'s value and gradient, n = 100) picks one chunk
for its parallel loop. Before the serial twin (diffc/codegen/loops.py) every
call still entered a ``prange`` region, and on a loaded machine waking
Numba's OpenMP threads took milliseconds. The script times the call with no
load and with ``--hogs`` busy child processes (default: one per core).

    python benchmarks/small_call_load.py [--hogs 2] [--calls 2000]

Run with ``PYTHONPATH`` pointing at another checkout to time that one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np

import diffc


def small(x):
    """One fused loop with transcendental calls: a parallel candidate, one chunk at this size."""
    return np.sum(np.exp(x) * np.sin(x))


def hog(stop: multiprocessing.synchronize.Event) -> None:
    """Spin until told to stop."""
    count = 0
    while not stop.is_set():
        count += 1


def time_calls(fn, x: np.ndarray, calls: int) -> tuple[float, float, float, float]:
    """Median, 90th and 99th percentile and mean of one call, in microseconds (spikes show in the mean)."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    times.sort()
    return (1e6 * times[len(times) // 2], 1e6 * times[int(len(times) * 0.9)], 1e6 * times[int(len(times) * 0.99)],
            1e6 * sum(times) / len(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--n", type=int, default=100)
    options = parser.parse_args()
    f = diffc.compile(small, args={"x": "f64[n]"})
    x = np.linspace(-1.0, 1.5, options.n)
    f.value_and_grad(x)  # compile
    parallel = "prange" in f.grad_source
    assert parallel, "the benchmark needs a function with a parallel loop"
    idle = time_calls(f.value_and_grad, x, options.calls)
    stop = multiprocessing.get_context("spawn").Event()
    hogs = [multiprocessing.get_context("spawn").Process(target=hog, args=(stop,)) for _ in range(options.hogs)]
    for process in hogs:
        process.start()
    time.sleep(1.0)
    try:
        loaded = time_calls(f.value_and_grad, x, options.calls)
    finally:
        stop.set()
        for process in hogs:
            process.join()
    print(f"diffc from {os.path.dirname(diffc.__file__)}; parallel loop in the gradient: {parallel}; "
          f"serial twin: {'pool_threads()' in f.grad_source}")
    print(f"value_and_grad, n={options.n}, {options.calls} calls: median / p90 / p99 / mean, us")
    for label, row in (("idle", idle), (f"{options.hogs} busy processes", loaded)):
        print(f"  {label:18} " + " / ".join(f"{t:9.1f}" for t in row))


if __name__ == "__main__":
    main()
