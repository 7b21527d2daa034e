"""Time one implementation's first call in a fresh process: ``python firstcall.py W1 "JAX jit" 200000``.

Run by run.py in a new interpreter so that nothing compiled or cached in the
measuring process (Numba dispatchers, JAX's trace cache, diffc's in-memory
specializations) hides the cost a user pays. Imports (NumPy, Numba, JAX,
diffc) and data generation happen before the clock starts: the time is
trace + differentiate + compile + the first call. diffc's disk cache is
wherever DIFFC_CACHE_DIR points (Numba's cache for a generated module sits
beside it); run.py points two successive processes at the same fresh
directory to get a cold and a warm time.

Prints one JSON line: {"seconds": ...} or {"error": "first line of the message"}.
"""

from __future__ import annotations

import json
import sys
import time

import numba  # noqa: F401  (imported before the clock, like NumPy)
import numpy as np  # noqa: F401
from impls import DIFFC, DIFFC_NUMPY, JAX, build, first_line
from workloads import WORKLOADS


def main(key: str, name: str, size: int) -> dict[str, object]:
    workload = WORKLOADS[key]
    args = workload.args(size)
    if name == JAX:
        import jax  # noqa: F401
    if name in (DIFFC, DIFFC_NUMPY):
        import diffc  # noqa: F401
    if name not in (JAX, DIFFC, DIFFC_NUMPY):
        import kernels  # noqa: F401  (defining the njit functions is not compiling them)
    start = time.perf_counter()
    try:
        call, call_args = build(workload, name, args)
        call(*call_args)
    except Exception as error:  # any failure is reported, not raised
        return {"error": first_line(error)}
    return {"seconds": time.perf_counter() - start}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
