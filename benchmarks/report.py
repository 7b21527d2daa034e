"""Markdown: the machine description and the result tables, and splicing them into docs/benchmarks.md.

The generated parts of the document sit between ``<!-- begin NAME -->`` and
``<!-- end NAME -->`` markers, so the prose around them is written by hand
and survives a rerun, and a ``--scaling`` run replaces only its own section.
"""

from __future__ import annotations

import ctypes
import datetime
import glob
import os
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from impls import DIFFC, JAX, NUMBA, TORCH, have_jax, have_torch
from timing import MEMORY_METHOD, Timing, bytes_text, median_time, seconds_text

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "XLA_FLAGS")


@dataclass
class Entry:
    """One implementation of one workload."""

    impl: str
    median: Timing | None = None
    first: float | None = None     # trace + compile + first call, fresh process
    warm: float | None = None      # the same in a second process, diffc's disk cache warm
    warm_missed: bool = False      # diffc reported a disk-cache miss in that second process
    first_note: str | None = None  # why first/warm are missing
    memory: int | None = None
    unavailable: str | None = None  # n/a: the error's first line
    mismatch: str | None = None


@dataclass
class WorkloadResult:
    key: str
    title: str
    size_text: str
    entries: list[Entry] = field(default_factory=list)
    floor: Timing | None = None
    floor_bytes: int = 0

    def entry(self, impl: str) -> Entry | None:
        return next((e for e in self.entries if e.impl == impl), None)

    def trusted_median(self, impl: str) -> float | None:
        entry = self.entry(impl)
        ok = entry is not None and entry.median is not None and not entry.mismatch and not entry.unavailable
        return entry.median.median if ok else None  # type: ignore[union-attr]


@dataclass
class WarmStart:
    """One workload's fresh processes, imports included: the cold one that fills the caches, then warm ones."""

    key: str
    title: str
    size_text: str
    repeats: int
    cold: dict[str, dict[str, Any]] = field(default_factory=dict)        # impl -> firstcall.py's JSON
    warm: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # impl -> one JSON per process
    missing: list[str] = field(default_factory=list)                     # not importable

    def warm_seconds(self, impl: str, part: str = "seconds") -> float | None:
        """Median over the warm processes; None if any failed (a failure is not a fast start)."""
        runs = self.warm.get(impl, [])
        if not runs or any(part not in run for run in runs):
            return None
        return statistics.median(run[part] for run in runs)

    def error(self, impl: str) -> str | None:
        failed = [run for run in [self.cold.get(impl, {}), *self.warm.get(impl, [])] if "error" in run]
        return failed[0]["error"] if failed else None

    def misses(self, impl: str) -> int:
        """Warm processes in which diffc reported a disk-cache miss (its source changed in between)."""
        return sum(run.get("cache") == "miss" for run in self.warm.get(impl, []))

    def warm_text(self, impl: str) -> str:
        text = f"{seconds_text(self.warm_seconds(impl))} ({seconds_text(self.warm_seconds(impl, 'imports'))})"
        missed = self.misses(impl)
        return text + (f" **{missed} of {len(self.warm[impl])} missed the cache**" if missed else "")

    def summary(self, impl: str) -> str:
        if self.error(impl):
            return f"failed: {self.error(impl)}"
        return f"cold {seconds_text(self.cold[impl].get('seconds'))}, warm (imports) {self.warm_text(impl)}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or base is None else f"{value / base:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(results: list[WorkloadResult], impls: list[str]) -> str:
    """Workloads down, implementations across: the median, and its ratio to hand Numba; then diffc ÷ each peer."""
    peers = [peer for peer in (JAX, TORCH) if DIFFC in impls and peer in impls]
    rows = []
    for result in results:
        base = result.trusted_median(NUMBA)
        row = [f"{result.key} {result.title}", result.size_text]
        for impl in impls:
            entry = result.entry(impl)
            if entry is None:
                row.append("—")
            elif entry.unavailable:
                row.append("n/a")
            elif entry.mismatch:
                row.append("WRONG")
            else:
                median = entry.median.median if entry.median else None
                row.append(f"{seconds_text(median)} ({_ratio(median, base)})")
        row += [_ratio(result.trusted_median(DIFFC), result.trusted_median(peer)) for peer in peers]
        rows.append(row)
    return _table(["workload", "size", *impls, *(f"diffc × {peer}" for peer in peers)], rows)


def detail_table(results: list[WorkloadResult]) -> str:
    header = ["workload", "implementation", "check", "first call (fresh process)", "2nd process (warm cache)",
              "median / call", "min / call", "× hand Numba", "× JAX", "× torch.compile", "peak RSS growth / call"]
    rows = []
    for result in results:
        numba_median, jax_median = result.trusted_median(NUMBA), result.trusted_median(JAX)
        torch_median = result.trusted_median(TORCH)
        for entry in result.entries:
            if entry.unavailable:
                rows.append([result.key, entry.impl, f"n/a ({entry.unavailable})"] + ["—"] * 8)
                continue
            median = entry.median.median if entry.median else None
            check = f"**MISMATCH**: {entry.mismatch}" if entry.mismatch else "ok"
            shown = f"~~{seconds_text(median)}~~ (wrong result)" if entry.mismatch else seconds_text(median)
            trusted = None if entry.mismatch else median
            first = seconds_text(entry.first) if entry.first is not None else (entry.first_note or "—")
            best = seconds_text(entry.median.best if entry.median and not entry.mismatch else None)
            warm = seconds_text(entry.warm) + (" (**cache miss**: diffc edited meanwhile)" if entry.warm_missed else "")
            rows.append([result.key, entry.impl, check, first, warm, shown, best,
                         _ratio(trusted, numba_median), _ratio(trusted, jax_median), _ratio(trusted, torch_median),
                         bytes_text(entry.memory)])
        if result.floor is not None:
            rate = 2 * result.floor_bytes / result.floor.median / 1e9
            rows.append([result.key, f"bandwidth floor: np.copyto of {bytes_text(result.floor_bytes)} "
                         f"(read + write {rate:.1f} GB/s)", "—", "—", "—", seconds_text(result.floor.median),
                         seconds_text(result.floor.best),
                         _ratio(result.floor.median, numba_median), _ratio(result.floor.median, jax_median),
                         _ratio(result.floor.median, torch_median), "—"])
    return _table(header, rows)


WARM_CAPTION = (
    "Fresh process, imports included, warm caches. Each cell is the time from the top of "
    "benchmarks/firstcall.py (`time.perf_counter()` before `import numpy`; the interpreter's own start-up, "
    "the same for all, is left out) to the first value and gradient returned: importing NumPy and the "
    "library (diffc; jax; torch), building, tracing, compiling or loading from the cache, and the first call; "
    "generating the data is left out. *cold*: the first process, empty caches (it fills them); *warm*: the "
    "median of {repeats} further processes, taking turns, with imports in parentheses. Caches: diffc's "
    "`DIFFC_CACHE_DIR` (generated module + Numba's cache of it; its key includes a hash of diffc's source, so "
    "a warm process after an edit to diffc is a miss, and the cell says so); JAX's persistent compilation cache "
    "(`jax_compilation_cache_dir`, `jax_persistent_cache_min_compile_time_secs=0`, "
    "`jax_persistent_cache_min_entry_size_bytes=-1`, so even tiny programs are cached); torch.compile's "
    "inductor caches (on by default; `TORCHINDUCTOR_CACHE_DIR`), while dynamo still traces in every process.")


def warm_start_table(results: list[WarmStart]) -> str:
    """Cold and warm fresh-process starts per implementation, and diffc's warm start ÷ each peer's."""
    if not results:
        return ""
    impls = [DIFFC, JAX, TORCH]
    header = ["workload", "size"]
    for impl in impls:
        header += [f"{impl} cold", f"{impl} warm"]
    header += [f"diffc warm × {peer} warm" for peer in (JAX, TORCH)]
    rows = []
    for result in results:
        row = [f"{result.key} {result.title}", result.size_text]
        for impl in impls:
            if impl in result.missing:
                row += ["n/a (not importable)", "—"]
            elif result.error(impl):
                row += [f"failed: {result.error(impl)}", "—"]
            else:
                row += [seconds_text(result.cold[impl].get("seconds")), result.warm_text(impl)]
        ok = {impl: None if result.error(impl) else result.warm_seconds(impl) for impl in impls}
        row += [_ratio(ok[DIFFC], ok[peer]) for peer in (JAX, TORCH)]
        rows.append(row)
    return WARM_CAPTION.format(repeats=results[0].repeats) + "\n\n" + _table(header, rows)


def scaling_table(key: str, sizes: list[int], elements: list[int], impls: list[str],
                  medians: dict[tuple[int, str], float | str], label: str) -> str:
    """ns per element at each size; a string cell is an n/a or mismatch note."""
    rows = []
    for size, count in zip(sizes, elements, strict=True):
        row = [label.format(size=size), f"{count:.0e}".replace("e+0", "e")]
        for impl in impls:
            value = medians.get((size, impl))
            if isinstance(value, str):
                row.append(value)
            elif value is None:
                row.append("—")
            else:
                row.append(f"{value / count * 1e9:.3g}")
        rows.append(row)
    return f"**{key}**, ns per element (median per call ÷ elements):\n\n" + _table(["size", "elements", *impls], rows)


# ---------------------------------------------------------------------------
# the machine

def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _memory() -> str:
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    except OSError:
        return "unknown"
    return f"{int(match.group(1)) / (1 << 20):.1f} GiB" if match else "unknown"


def _openblas_threads() -> str:
    """OpenBLAS's thread count, asked of the library NumPy loaded (no threadpoolctl needed)."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, symbol):
                return str(getattr(lib, symbol)())
    return "unknown"


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def _git() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "diffc"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes in diffc/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def blas_probe() -> str:
    """One BLAS matrix-vector product, timed: a contended multi-threaded BLAS shows up here first."""
    x = np.random.default_rng(2).random((20_000, 64))
    w = np.ones(64)
    timing = median_time(lambda: x @ w, 21, 0.0)
    return (f"X @ w with X 20000×64 (2.6 MFLOP, 10 MB): median {seconds_text(timing.median)}, "
            f"min {seconds_text(timing.best)}")


def machine(load_before: tuple[float, ...], command: str) -> str:
    import numba

    import diffc

    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}", f"Numba {numba.__version__}",
                f"diffc {getattr(diffc, '__version__', '?')} (git {_git()})"]
    if have_jax():
        import jax
        import jaxlib

        versions.append(f"JAX {jax.__version__} (jaxlib {jaxlib.__version__})")
    if have_torch():
        import torch

        versions.append(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)")
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised (no parallel kernel ran)"
    env = ", ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in THREAD_VARIABLES)
    load_after = os.getloadavg()
    lines = [
        f"- Date: {datetime.datetime.now().isoformat(timespec='minutes')}; command: `{command}`",
        f"- CPU: {_cpu_model()}; {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0))} usable by this process); memory {_memory()}; {platform.platform()}",
        f"- Versions: {', '.join(versions)}",
        f"- BLAS: {_blas()}, {_openblas_threads()} threads; Numba: {numba.get_num_threads()} threads, "
        f"threading layer {layer}",
        f"- BLAS probe at the end of the run: {blas_probe()}",
        f"- Environment: {env}",
        f"- Load average (1 min) before / after the run: {load_before[0]:.2f} / {load_after[0]:.2f}",
        f"- Memory column: {MEMORY_METHOD}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# splicing into the document

def splice(path: Path, sections: dict[str, str]) -> None:
    """Replace each ``<!-- begin NAME -->`` … ``<!-- end NAME -->`` block; append the missing ones."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    for name, body in sections.items():
        block = f"<!-- begin {name} -->\n{body.strip()}\n<!-- end {name} -->"
        pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->", re.DOTALL)
        found = pattern.search(text)
        text = (text[:found.start()] + block + text[found.end():] if found
                else text.rstrip() + "\n\n" + block + "\n")
    path.write_text(text)
