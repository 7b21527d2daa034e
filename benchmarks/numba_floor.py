"""The least a fresh process pays to run any function from Numba's disk cache: ``python benchmarks/numba_floor.py``.

A warm start of diffc (numba) imports NumPy and Numba, then loads its kernel
from Numba's cache. This script measures that floor with a trivial kernel
(``x + 1.0``, ``@njit(cache=True)``), so it can be set beside the warm-start
table in docs/benchmarks.md: no diffc code loaded through Numba's cache can
start faster than this. One process fills the cache; each later one is timed
from before ``import numpy`` to the first result (the interpreter's own
start-up left out, as in that table).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

KERNEL = '''import numba


@numba.njit(cache=True)
def kernel(x):
    return x + 1.0
'''

PROCESS = '''import time
start = time.perf_counter()
import numpy
import numba
imported = time.perf_counter()
import floor_kernel
floor_kernel.kernel(1.0)
done = time.perf_counter()
print('{"imports": %r, "load_and_call": %r, "total": %r}' % (imported - start, done - imported, done - start))
'''


def main(processes: int = 5) -> None:
    with tempfile.TemporaryDirectory(prefix="diffc-numba-floor-") as folder:
        Path(folder, "floor_kernel.py").write_text(KERNEL)
        runs = []
        for _ in range(processes + 1):  # the first one compiles and fills the cache
            done = subprocess.run([sys.executable, "-c", PROCESS], cwd=folder, capture_output=True, text=True,
                                  check=True)
            runs.append(json.loads(done.stdout))
        warm = runs[1:]
        for key in ("imports", "load_and_call", "total"):
            print(f"{key:14s} median {statistics.median(r[key] for r in warm) * 1e3:6.0f} ms"
                  f"  (cold process: {runs[0][key] * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
