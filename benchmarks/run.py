"""Benchmark diffc against hand-written NumPy, hand-fused Numba, JAX and torch.compile.

    python benchmarks/run.py                 # full sizes
    python benchmarks/run.py --quick         # small sizes, few repeats (about four minutes, mostly torch.compile)
    python benchmarks/run.py --only W1,W4    # some workloads
    python benchmarks/run.py --scaling       # W4 and W1 at 1e3 … 1e7 elements, ns per element
    python benchmarks/run.py --markdown docs/benchmarks.md   # also splice the tables into the document

Every implementation's value and gradient is checked against the hand NumPy
reference before it is timed; a mismatch is printed loudly and its time is
struck through, never counted as a win. Markdown goes to stdout, progress to
stderr.

The main tables end with warm starts: fresh processes, imports included, with
diffc's disk cache, JAX's persistent compilation cache and torch.compile's
inductor cache filled by an earlier process (every selected workload; with
--quick and no --only, W1 alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impls import (
    ALL,
    DIFFC,
    DIFFC_NUMPY,
    JAX,
    NUMBA,
    NUMBA_PAR,
    NUMPY,
    PEERS,
    TORCH,
    available,
    build,
    first_line,
    have,
    mismatch,
)
from report import (
    Entry,
    WarmStart,
    WorkloadResult,
    detail_table,
    machine,
    scaling_table,
    splice,
    summary_table,
    warm_start_table,
)
from timing import copy_call, interleaved_times, peak_growth
from workloads import WORKLOADS, Workload

HERE = Path(__file__).resolve().parent
FLOOR = "copy floor"


@dataclass
class Config:
    mode: str            # "full" or "quick": picks each workload's size
    repeats: int
    min_sample: float    # seconds each timing sample lasts at least
    first_call: tuple[str, ...]  # implementations whose first call is timed in a fresh process
    impls: tuple[str, ...]
    warm_repeats: int    # warm-start processes per implementation (the median is shown)
    second_process: tuple[str, ...]  # of first_call, those also timed in a 2nd process (disk caches on by default)


FULL = Config("full", 21, 0.02, (NUMBA, NUMBA_PAR, JAX, TORCH, DIFFC, DIFFC_NUMPY), ALL, 5, (DIFFC, TORCH))
QUICK = Config("quick", 7, 0.005, (JAX, TORCH, DIFFC), (NUMPY, NUMBA, JAX, TORCH, DIFFC, DIFFC_NUMPY), 3, (DIFFC,))
WARM_IMPLS = (DIFFC, JAX, TORCH)  # the warm-start table's columns


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_env(cache: str) -> dict[str, str]:
    """diffc's disk cache in ``cache``, torch.compile's (inductor's) in a directory inside it."""
    return {"DIFFC_CACHE_DIR": cache, "TORCHINDUCTOR_CACHE_DIR": os.path.join(cache, "torchinductor")}


def fresh_process(key: str, impl: str, size: int, cache: str, with_imports: bool = False) -> dict[str, Any]:
    """Run firstcall.py in a new interpreter with the disk caches in ``cache``.

    ``with_imports``: the clock counts the imports, and JAX's persistent
    compilation cache is on, in ``cache``/jax (it is off by default, so the
    plain first-call column leaves it off).
    """
    command = [sys.executable, str(HERE / "firstcall.py"), key, impl, str(size)]
    if with_imports:
        command += ["--imports", "--jax-cache", os.path.join(cache, "jax")]
    done = subprocess.run(command, env=dict(os.environ, **cache_env(cache)),
                          capture_output=True, text=True, timeout=900, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def first_calls(entry: Entry, key: str, size: int, cache: str, second: tuple[str, ...]) -> None:
    """Cold first call in a fresh process; for the ``second`` implementations (diffc (numba), and torch.compile
    in a full run: their disk caches are on by default), a second process reusing those caches.

    ``cache`` starts empty. Each generated module is a file named by the hash of
    its source, so diffc (numpy) finds nothing of diffc (numba)'s there.
    """
    cold = fresh_process(key, entry.impl, size, cache)
    entry.first = cold.get("seconds")
    if "error" in cold:
        entry.first_note = f"failed: {cold['error']}"
    elif entry.impl in second:
        warm = fresh_process(key, entry.impl, size, cache)
        entry.warm = warm.get("seconds")
        entry.warm_missed = warm.get("cache") == "miss"  # diffc's source changed between the two processes
        if entry.warm_missed:
            log(f"  {key} {entry.impl}: the 2nd process missed diffc's disk cache (diffc edited meanwhile?)")


def prepare(entry: Entry, workload: Workload, args: tuple[Any, ...], reference: Any) -> Any:
    """Build, run once and check one implementation; the callable to time, or None if it is n/a."""
    impl = entry.impl
    if impl in workload.peer_notes:
        entry.unavailable = workload.peer_notes[impl]
        return None
    if impl in PEERS and not available(workload, impl):
        entry.unavailable = f"{'jax' if impl == JAX else 'torch'} is not importable"
        return None
    try:
        call, call_args = build(workload, impl, args)
        result = call(*call_args)
    except Exception as error:  # an op diffc lacks, a JAX failure: report and go on
        entry.unavailable = first_line(error)
        log(f"  {workload.key} {impl}: n/a ({entry.unavailable})")
        return None
    entry.mismatch = mismatch(result, reference)
    if entry.mismatch:
        log(f"  !!!!! {workload.key} {impl}: RESULT MISMATCH against hand NumPy: {entry.mismatch}")
    return lambda: call(*call_args)


def run_workload(workload: Workload, size: int, cfg: Config, with_first_call: bool = True,
                 cache: str | None = None) -> WorkloadResult:
    """First calls in fresh processes, then check, time (interleaved) and measure memory in this one.

    The fresh processes go first and leave diffc's disk cache filled; this
    process then loads from it instead of compiling a second time, which
    keeps --quick quick. Steady-state timing does not depend on it. A given
    ``cache`` (the scaling run's, shared across sizes) is used as it is.
    """
    log(f"{workload.key} {workload.title}, {workload.size_text(size)}")
    args = workload.args(size)
    reference = workload.hand_numpy(*args)
    result = WorkloadResult(workload.key, workload.title, workload.size_text(size))
    impls = [i for i in cfg.impls if i in PEERS or available(workload, i)]  # W3, W7: no parallel variant
    result.entries = [Entry(impl) for impl in impls]
    with tempfile.TemporaryDirectory(prefix="diffc-bench-") as fresh:
        cache = cache or fresh
        for entry in result.entries:
            if with_first_call and entry.impl in cfg.first_call and available(workload, entry.impl):
                first_calls(entry, workload.key, size, cache, cfg.second_process)
        os.environ.update(cache_env(cache))
        calls = {}
        for entry in result.entries:
            call = prepare(entry, workload, args, reference)
            if call is not None:
                calls[entry.impl] = call
        if workload.copy_elements is not None:
            calls[FLOOR] = copy_call(workload.copy_elements(size))
            result.floor_bytes = 8 * workload.copy_elements(size)
        timings = interleaved_times(calls, cfg.repeats, cfg.min_sample)
    result.floor = timings.get(FLOOR)
    for entry in result.entries:
        if entry.impl in calls:
            entry.median = timings[entry.impl]
            entry.memory = peak_growth(calls[entry.impl])
            log(f"  {workload.key} {entry.impl}: {entry.median.median * 1e3:.4g} ms"
                + (f", first call {entry.first:.3g} s" if entry.first is not None else ""))
    return result


def warm_starts(key: str, cfg: Config) -> WarmStart:
    """Each of WARM_IMPLS in fresh processes, imports included: one to fill its caches, then the warm ones.

    The warm processes take turns (diffc, JAX, torch, diffc, ...) so a burst of
    load from elsewhere falls on all of them alike.
    """
    workload = WORKLOADS[key]
    size = workload.sizes[cfg.mode]
    log(f"{key} warm starts (fresh processes, imports included), {workload.size_text(size)}")
    result = WarmStart(key, workload.title, workload.size_text(size), cfg.warm_repeats)
    impls = [impl for impl in WARM_IMPLS if have(impl)]
    result.missing = [impl for impl in WARM_IMPLS if impl not in impls]
    with tempfile.TemporaryDirectory(prefix="diffc-bench-warm-") as root:
        caches = {impl: os.path.join(root, str(n)) for n, impl in enumerate(impls)}
        for impl in impls:
            result.cold[impl] = fresh_process(key, impl, size, caches[impl], with_imports=True)
        for round_ in range(cfg.warm_repeats):
            for k in range(len(impls)):
                impl = impls[(round_ + k) % len(impls)]
                if "error" not in result.cold[impl]:
                    result.warm.setdefault(impl, []).append(
                        fresh_process(key, impl, size, caches[impl], with_imports=True))
    for impl in impls:
        log(f"  {key} {impl}: {result.summary(impl)}")
    return result


def main_tables(keys: list[str], cfg: Config, warm_keys: list[str]) -> str:
    results = [run_workload(WORKLOADS[k], WORKLOADS[k].sizes[cfg.mode], cfg) for k in keys]
    warm = [warm_starts(k, cfg) for k in warm_keys]
    return "\n\n".join([
        "Median per call, value and gradient together, and the ratio to hand Numba (serial); the last columns "
        "divide diffc (numba)'s median by each peer's (below 1: diffc is faster):",
        summary_table(results, list(cfg.impls)),
        "Everything measured:",
        detail_table(results),
        warm_start_table(warm),
    ])


def scaling_tables(cfg: Config) -> str:
    top = 6 if cfg.mode == "quick" else 7
    parts = []
    for key, label in (("W4", "n = {size}"), ("W1", "m = {size} rows × 64")):
        workload = WORKLOADS[key]
        per_element = 64 if key == "W1" else 1
        sizes = [max(2, round(10 ** e / per_element)) for e in range(3, top + 1)]
        medians: dict[tuple[int, str], float | str] = {}
        notes: dict[str, str] = {}
        impls = list(cfg.impls) + ([FLOOR] if key == "W4" else [])
        with tempfile.TemporaryDirectory(prefix="diffc-bench-scaling-") as cache:
            results = [run_workload(workload, size, cfg, with_first_call=False, cache=cache) for size in sizes]
        for size, result in zip(sizes, results, strict=True):
            for entry in result.entries:
                if entry.unavailable or entry.mismatch:
                    medians[(size, entry.impl)] = "n/a" if entry.unavailable else "WRONG"
                    notes.setdefault(entry.impl, f"n/a ({entry.unavailable})" if entry.unavailable
                                     else f"MISMATCH: {entry.mismatch}")
                elif entry.median is not None:
                    medians[(size, entry.impl)] = entry.median.median
            if result.floor is not None:
                medians[(size, FLOOR)] = result.floor.median
        parts.append(scaling_table(key, sizes, [workload.elements(s) for s in sizes], impls, medians, label))
        parts += [f"- {key} {impl}: {note}" for impl, note in notes.items()]
    note = ("Sizes are capped at 1e7 elements (W1: 156250 rows × 64, an 80 MB X) so every implementation's "
            "copies fit in memory with room to spare; W1 counts the elements of X.")
    return "\n\n".join([note, *parts])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument("--scaling", action="store_true", help="W4 and W1 from 1e3 to 1e7 elements")
    parser.add_argument("--markdown", type=Path, help="splice the results into this Markdown file")
    parser.add_argument("--section", help="name of the section --markdown replaces (default: main, main-quick "
                        "or scaling)")
    options = parser.parse_args(argv)

    spelled = {key.upper(): key for key in WORKLOADS}  # --only w1loop finds W1loop
    keys = [spelled.get(k.strip().upper(), k.strip()) for k in options.only.split(",")] if options.only \
        else list(WORKLOADS)
    unknown = [k for k in keys if k not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)} (choose from {', '.join(WORKLOADS)})")
    cfg = QUICK if options.quick else FULL
    command = "python benchmarks/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    load_before = os.getloadavg()
    section = options.section or ("scaling" if options.scaling else "main-quick" if options.quick else "main")
    warm_keys = keys if options.only or not options.quick else ["W1"]
    body = scaling_tables(cfg) if options.scaling else main_tables(keys, cfg, warm_keys)
    text = machine(load_before, command.strip()) + "\n\n" + body
    print(text)
    if options.markdown:
        splice(options.markdown, {section: text})
        log(f"wrote {options.markdown} (section {section})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
