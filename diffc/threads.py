"""Threads for diffc's parallel loops: the thread cap, and serial code in a forked child.

Which threading layer. diffc keeps Numba's own choice, ``tbb`` if the
``tbb`` package is installed, else ``omp`` (GNU OpenMP on Linux), and does
not pick ``workqueue``:

- ``workqueue`` survives ``fork``, but it is not thread-safe: two Python
  threads calling a parallel function at once terminate the process
  ("Concurrent access has been detected"), and calling one compiled
  function from many threads is something diffc promises.
- ``omp`` is thread-safe, but GNU OpenMP does not survive ``fork``: a
  process forked after the thread pool started (``multiprocessing``'s
  default on Linux) is killed by Numba the first time it enters a parallel
  region ("fork() called from a process already using GNU OpenMP, this is
  unsafe").
- ``tbb`` is both, when installed (``pip install tbb``).

So with ``omp`` diffc itself keeps a forked child out of parallel regions:
every parallel loop has a serial twin (diffc/codegen/loops.py,
``serial_twin``) that runs the same chunks in the same order, taken when the
call has one chunk or the calling thread has one thread
(``support/numba_threads.pool_threads``). In a child forked from a process
whose ``omp`` pool has started, :func:`_after_fork_in_child` caps diffc's
threads at 1, so the child computes the same bits as its parent, serially,
instead of dying. ``diffc.set_num_threads(None)`` in the child lifts the cap
(for a child that will exec or that uses ``tbb``).

Spinning threads. GNU OpenMP's idle threads spin before they sleep; on a
loaded machine they take cores from other work. Small calls never wake them
(the serial twin); for large calls on a shared machine, set
``OMP_WAIT_POLICY=passive`` before the first import of Numba (diffc does not
set it: it holds for every OpenMP library in the process).
"""

from __future__ import annotations

import os
import sys

# the cap on the threads of diffc's parallel loops, applied on each call (None: no cap); a list so that
# the call path reads it without a function call
CAP: list[int | None] = [int(os.environ["DIFFC_NUM_THREADS"]) if os.environ.get("DIFFC_NUM_THREADS") else None]


def set_num_threads(count: int | None) -> None:
    """Cap the threads diffc's parallel loops use, for every calling thread (``None``: no cap).

    Numba's own ``set_num_threads`` holds for the calling thread only, so
    diffc applies the cap on each call of a function with parallel loops.
    The environment variable ``DIFFC_NUM_THREADS`` sets it at import.
    """
    if count is not None and count < 1:
        raise ValueError("set_num_threads takes a positive count or None")
    CAP[0] = count


def apply_cap() -> None:
    """Numba's thread count for the calling thread, from :data:`CAP` (nothing without a cap or without Numba)."""
    if CAP[0] is not None and "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(CAP[0], numba.config.NUMBA_NUM_THREADS))


def omp_pool_started() -> bool:
    """Whether this process has started Numba's GNU OpenMP thread pool (which a forked child must not use)."""
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not getattr(parallel, "_is_initialized", False):
        return False
    import numba

    try:
        return bool(numba.threading_layer() == "omp")
    except ValueError:  # no layer chosen yet
        return False


def _after_fork_in_child() -> None:
    """Serial code in a child forked after the ``omp`` pool started (see the module docstring)."""
    if omp_pool_started():
        CAP[0] = 1
        apply_cap()  # the forking thread, which is the child's only one, before any call


os.register_at_fork(after_in_child=_after_fork_in_child)
