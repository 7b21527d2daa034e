"""The thread count a parallel loop may use, read inside compiled code (see diffc/threads.py).

``numba.get_num_threads()`` called from compiled code goes through a ctypes
pointer, which Numba cannot cache ("uses dynamic globals"): every process
would compile the function again. Numba's own intrinsic behind it links the
threading layer's ``get_num_threads`` by symbol name, as parallel loops do,
and caches. The symbol exists once the thread pool is launched, so this
module launches it on import (a cached caller loaded without it would
crash); a copy of :func:`pool_threads` in a standalone module runs only
inside functions with parallel loops, whose loading launches the pool.
"""

from __future__ import annotations

import numba
import numba.np.ufunc.parallel

numba.np.ufunc.parallel._launch_threads()


@numba.njit(cache=True)
def pool_threads() -> int:
    """The calling thread's thread count: 1 after ``set_num_threads(1)``, and in a forked child."""
    return numba.np.ufunc.parallel._iget_num_threads()  # type: ignore[no-any-return]
