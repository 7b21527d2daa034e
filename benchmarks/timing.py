"""Measuring: steady-state medians, peak memory growth of one call, the copy bandwidth floor.

Medians, not means or minima: a shared machine produces occasional slow
samples, and the median ignores them without hiding a consistently slow
implementation. Each sample repeats the call enough times to last at least
``min_sample`` seconds, so microsecond calls (W7) are not dominated by the
clock's resolution. The implementations of one workload are sampled in turn
(round robin), so they share whatever load the machine had.
"""

from __future__ import annotations

import ctypes
import re
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_STATUS = "/proc/self/status"
# Pause between two implementations' samples. Thread pools spin for a while after their work
# (OpenBLAS, libgomp, XLA's Eigen pool); on two cores a pool still spinning from the previous
# implementation slows the next one. Measured here: JAX's W1 took 13.9 ms alone, 39.6 ms sampled
# right after hand NumPy (OpenBLAS), 20.4 ms right after diffc (Numba's libgomp).
SETTLE = 0.2
ROUNDS = 3  # each implementation's samples come in this many blocks of back-to-back samples
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass
class Timing:
    median: float   # seconds per call
    best: float     # the fastest sample, seconds per call
    samples: int
    number: int     # calls per sample


def _sample(call: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - start) / number


def calls_per_sample(call: Callable[[], Any], min_sample: float) -> int:
    """timeit.autorange: grow the count until one sample lasts ``min_sample`` seconds."""
    number = 1
    while True:
        elapsed = _sample(call, number) * number
        if elapsed >= min_sample or number >= 1 << 22:
            return number
        number *= 2 if elapsed > min_sample / 10 else 10


def interleaved_times(calls: dict[str, Callable[[], Any]], repeats: int, min_sample: float,
                      warmup: int = 1) -> dict[str, Timing]:
    """Median seconds per call of each callable, their samples taken in turn.

    The samples come in ``ROUNDS`` rounds; in each, every callable takes a
    block of back-to-back samples, starting at a different one each round, so
    a burst of load from another process on a shared machine slows all of them
    alike instead of whichever happened to be running. Before each block: a
    pause of ``SETTLE`` seconds and one untimed sample, so that no
    implementation is timed against another's spinning threads, nor right after
    a pause (JAX's W1 took 14 ms in a run of calls, 19 ms after a pause and one
    call, 40 ms sampled in turn with hand NumPy).
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    numbers = {name: calls_per_sample(calls[name], min_sample) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    rounds = min(ROUNDS, repeats)
    for round_ in range(rounds):
        block = repeats // rounds + (1 if round_ < repeats % rounds else 0)
        for k in range(len(names)):
            name = names[(round_ + k) % len(names)]
            if len(names) > 1:  # let the last one's thread pools fall asleep, then warm this one's up
                time.sleep(SETTLE)
                _sample(calls[name], numbers[name])
            samples[name] += [_sample(calls[name], numbers[name]) for _ in range(block)]
    return {name: Timing(statistics.median(samples[name]), min(samples[name]), repeats, numbers[name])
            for name in names}


def median_time(call: Callable[[], Any], repeats: int, min_sample: float, warmup: int = 1) -> Timing:
    """Median seconds per call over ``repeats`` samples of ``number`` calls each."""
    return interleaved_times({"": call}, repeats, min_sample, warmup)[""]


# ---------------------------------------------------------------------------
# peak memory growth of one call

def _status_kib(field: str) -> int:
    with open(_STATUS) as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"{field} not in {_STATUS}")
    return int(match.group(1))


def _can_reset_peak_rss() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as handle:
            handle.write("5")
        return _status_kib("VmHWM") <= _status_kib("VmRSS") + 64
    except OSError:
        return False


def _malloc_trim() -> Callable[[], Any]:
    """glibc's malloc_trim(0), or a no-op elsewhere.

    Without it a warm call reuses heap pages an earlier call freed (glibc
    raises its mmap threshold after large frees), so the resident set does not
    grow and every implementation would show ~0 bytes.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return lambda: libc.malloc_trim(0)
    except (OSError, AttributeError):
        return lambda: None


PEAK_RSS = _can_reset_peak_rss()
_trim = _malloc_trim()
MEMORY_METHOD = ("peak resident-set growth of one warm call, median of 3: malloc_trim(0) returns freed heap pages, "
                 "/proc/self/clear_refs ← 5 resets VmHWM to the current RSS, then VmHWM − VmRSS after the call; "
                 "it counts every allocator (NumPy, Numba's NRT, XLA), to the page" if PEAK_RSS else
                 "tracemalloc peak of one warm call, median of 3 (sees NumPy allocations only; Numba and XLA "
                 "buffers are invisible to it)")


def _peak_once(call: Callable[[], Any]) -> int:
    if PEAK_RSS:
        _trim()
        with open(_CLEAR_REFS, "w") as handle:
            handle.write("5")
        before = _status_kib("VmRSS")
        result = call()
        peak = _status_kib("VmHWM")
        del result
        return max(0, peak - before) * 1024
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        tracemalloc.stop()
    return peak


def peak_growth(call: Callable[[], Any]) -> int:
    """Bytes of peak memory one call adds above what the process held before it."""
    return int(statistics.median(_peak_once(call) for _ in range(3)))


# ---------------------------------------------------------------------------
# the memory-bandwidth floor

def copy_call(elements: int) -> Callable[[], Any]:
    """np.copyto over ``elements`` float64s: the same bytes read and written as a minimal pass."""
    src = np.random.default_rng(1).random(elements)
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


# ---------------------------------------------------------------------------
# formatting

def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def bytes_text(count: int | None) -> str:
    if count is None:
        return "—"
    if count < 1 << 20:
        return f"{count / 1024:.0f} KiB"
    return f"{count / (1 << 20):.1f} MiB"
