"""Time one implementation's first call in a fresh process: ``python firstcall.py W1 "JAX jit" 200000``.

Run by run.py in a new interpreter so that nothing compiled or cached in the
measuring process (Numba dispatchers, JAX's trace cache, torch's dynamo cache,
diffc's in-memory specializations) hides the cost a user pays.

Default mode: imports (NumPy, Numba, JAX, torch, diffc) and data generation
happen before the clock starts: the time is trace + differentiate + compile +
the first call.

``--imports`` mode: the clock starts at the top of this script, before any
import but after the interpreter's own start-up (the same for everyone), and
counts importing NumPy and the one library the implementation needs (diffc;
jax; torch; numba for the hand kernels), then build + first call. Generating
the data is timed apart and left out. ``--jax-cache DIR`` turns JAX's
persistent compilation cache on in DIR, for every program however small or
quick to compile, as a JAX user who wants warm starts would.

Disk caches: diffc's is wherever DIFFC_CACHE_DIR points (Numba's cache for a
generated module sits beside it); torch.compile's (inductor's FX graph,
AOTAutograd and compiled-kernel caches, on by default) wherever
TORCHINDUCTOR_CACHE_DIR points. run.py points two successive processes at the
same fresh directories to get a cold and a warm time.

Prints one JSON line: {"seconds": ..., "imports": ..., "cache": "hit"} or {"error": "first line of the
message"}. "cache" is diffc's own account of its disk cache ("hit" or "miss"): its key includes a hash of
diffc's source, so editing diffc between two processes makes the second one cold, and the report says so.
"""

from __future__ import annotations

import sys
import time

START = time.perf_counter()  # before every import below: --imports counts them


def _import_library(name: str, jax_cache: str | None) -> None:
    """Import what a user of ``name`` imports (NumPy came with impls)."""
    from impls import DIFFC, DIFFC_NUMPY, JAX, TORCH

    if name == JAX:
        import jax

        if jax_cache:
            jax.config.update("jax_compilation_cache_dir", jax_cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size floor
    elif name == TORCH:
        import torch  # noqa: F401
    elif name in (DIFFC, DIFFC_NUMPY):
        import diffc  # noqa: F401
    else:
        import kernels  # noqa: F401  (defining the njit functions is not compiling them)
        import numba  # noqa: F401


def main(key: str, name: str, size: int, with_imports: bool = False, jax_cache: str | None = None) -> dict[str, object]:
    if not with_imports:
        import numba  # noqa: F401  (imported before the clock, like NumPy)
    import impls
    from workloads import WORKLOADS

    _import_library(name, jax_cache)
    imported = time.perf_counter()
    workload = WORKLOADS[key]
    args = workload.args(size)
    start = time.perf_counter()
    try:
        call, call_args = impls.build(workload, name, args)
        call(*call_args)
    except Exception as error:  # any failure is reported, not raised
        return {"error": impls.first_line(error)}
    end = time.perf_counter()
    result: dict[str, object] = {"seconds": end - start}
    if with_imports:
        result = {"seconds": (imported - START) + (end - start), "imports": imported - START}
    stats = getattr(getattr(call, "__self__", None), "stats", None)  # diffc: compiled.value_and_grad
    if isinstance(stats, dict) and "cache" in stats:
        result["cache"] = stats["cache"]
    return result


def _parse(argv: list[str]) -> tuple[str, str, int, bool, str | None]:
    """KEY IMPL SIZE [--imports] [--jax-cache DIR], parsed by hand: argparse's import would be on the clock."""
    positional, with_imports, jax_cache = [], False, None
    rest = iter(argv)
    for arg in rest:
        if arg == "--imports":
            with_imports = True
        elif arg == "--jax-cache":
            jax_cache = next(rest)
        else:
            positional.append(arg)
    key, name, size = positional
    return key, name, int(size), with_imports, jax_cache


if __name__ == "__main__":
    result = main(*_parse(sys.argv[1:]))
    import json

    print(json.dumps(result))
