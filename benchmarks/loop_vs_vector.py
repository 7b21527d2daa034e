"""W1 as the notes' loop (W1loop) against W1 vectorized, diffc only, samples interleaved in one process.

    python benchmarks/loop_vs_vector.py               # X 200000×64
    python benchmarks/loop_vs_vector.py --rows 20000

run.py measures each workload in turn, so load from elsewhere on a shared
machine can fall on one and not the other; here the two compiled functions
take their samples in turn (timing.interleaved_times), and the ratio of
medians is what the loop form costs. Both are checked against the hand NumPy
reference first.
"""

from __future__ import annotations

import argparse
import sys

from impls import DIFFC, DIFFC_NUMPY, build, mismatch
from timing import interleaved_times
from workloads import WORKLOADS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=21)
    options = parser.parse_args(argv)
    vector, loop = WORKLOADS["W1"], WORKLOADS["W1loop"]
    args = vector.args(options.rows)
    reference = vector.hand_numpy(*args)
    print(f"| X {options.rows}×64 | W1 (vectorized) | W1loop (the notes' loop) | loop / vectorized |")
    print("|---|---|---|---|")
    for impl in (DIFFC, DIFFC_NUMPY):
        calls = {}
        for workload in (vector, loop):
            call, call_args = build(workload, impl, args)
            wrong = mismatch(call(*call_args), reference)
            if wrong:
                print(f"{workload.key} {impl}: MISMATCH {wrong}", file=sys.stderr)
                return 1
            calls[workload.key] = lambda call=call, call_args=call_args: call(*call_args)
        times = interleaved_times(calls, options.repeats, 0.02)
        a, b = times["W1"].median, times["W1loop"].median
        print(f"| {impl} | {a * 1e3:.2f} ms | {b * 1e3:.2f} ms | {b / a:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
