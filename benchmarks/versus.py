"""This diffc against an earlier commit's, side by side in one run, each as a ratio to JAX.

    python benchmarks/versus.py 96c80ac                   # W1, W2, W4, W5, W6 at full size
    python benchmarks/versus.py 96c80ac --only W5 --quick

A ratio to JAX depends on the machine as much as on diffc: the same code gave
W5 0.13x JAX on one machine and 0.21x on another. Whether a change kept the
speed an earlier commit had is a question about one machine, and this script
answers it in one process. The earlier commit's diffc is taken out of git
(``git archive``) into a temporary directory; a subprocess with that tree on
its path compiles each workload's model and writes the standalone module
``diffc emit`` would write (needing no diffc), and this process imports it.
Then JAX, this diffc and the earlier module are checked against the hand NumPy
reference and timed in turn, with the harness of ``run.py``. W4 also gets the
copy floor.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from impls import DIFFC, JAX, build, have, mismatch
from run import FLOOR, FULL, QUICK
from timing import copy_call, interleaved_times
from workloads import WORKLOADS, Workload

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# run with the earlier tree on sys.path: writes one standalone module per workload key
EMIT = """
import json, sys
import numpy as np
sys.path.insert(1, {benchmarks!r})
import diffc
from workloads import WORKLOADS
for key in {keys!r}:
    w = WORKLOADS[key]
    compiled = diffc.compile(w.model(np), args=w.types, wrt=w.wrt)
    with open({out!r} + "/" + key + ".py", "w") as handle:
        handle.write(compiled.module_source(standalone=True))
print(json.dumps(diffc.__file__))
"""


def earlier_tree(commit: str, into: Path) -> Path:
    """diffc's package at ``commit``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "diffc"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def emit_earlier(tree: Path, keys: list[str], out: Path) -> None:
    """The earlier diffc's standalone module of each workload, written to ``out/<key>.py``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "DIFFC_CACHE_DIR": str(out / "cache")}
    code = EMIT.format(benchmarks=str(HERE), keys=keys, out=str(out))
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=out, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"the earlier diffc could not compile the workloads:\n{run.stderr}")
    where = json.loads(run.stdout.strip().splitlines()[-1])
    if not where.startswith(str(tree)):
        raise SystemExit(f"the subprocess imported diffc from {where}, not from the earlier tree")


def load_module(path: Path) -> Any:
    """The emitted module, imported from its file."""
    spec = importlib.util.spec_from_file_location(f"diffc_earlier_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Numba finds an objmode block's globals through sys.modules
    spec.loader.exec_module(module)
    return module


def checked(name: str, fn: Callable[..., Any], args: tuple[Any, ...], reference: Any) -> Callable[[], Any]:
    """A no-argument call of ``fn``, after its result was checked against the reference."""
    problem = mismatch(fn(*args), reference)
    if problem is not None:
        raise SystemExit(f"{name} gives a wrong result: {problem}")
    return lambda: fn(*args)


def compare(workload: Workload, size: int, earlier: Any, label: str, repeats: int,
            min_sample: float) -> dict[str, float]:
    """Median seconds per call of JAX, this diffc, the earlier module (and W4's copy floor)."""
    args = workload.args(size)
    reference = workload.hand_numpy(*args)
    calls = {}
    for name in (JAX, DIFFC):
        fn, fn_args = build(workload, name, args)
        calls[name] = checked(name, fn, fn_args, reference)
    calls[label] = checked(label, earlier.value_and_grad, args, reference)
    if workload.copy_elements is not None:
        calls[FLOOR] = copy_call(workload.copy_elements(size))
    return {name: timing.median for name, timing in interleaved_times(calls, repeats, min_sample).items()}


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def row(key: str, times: dict[str, float], label: str) -> str:
    now, then, jax = times[DIFFC], times[label], times[JAX]
    floor = f" (floor {milliseconds(times[FLOOR])}: now {now / times[FLOOR]:.2f}×, then {then / times[FLOOR]:.2f}×)" \
        if FLOOR in times else ""
    return (f"| {key} | {milliseconds(jax)} | {milliseconds(now)}{floor} | {milliseconds(then)} | {now / jax:.2f}× "
            f"| {then / jax:.2f}× | {now / then:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit", help="the earlier commit (anything git names)")
    parser.add_argument("--only", default="W1,W2,W4,W5,W6", help="workload keys, comma-separated")
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer samples")
    options = parser.parse_args()
    if not have(JAX):
        raise SystemExit("JAX is not installed: pip install 'jax[cpu]'")
    keys = options.only.split(",")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", options.commit], capture_output=True,
                            text=True, check=True).stdout.strip()
    label = f"diffc @{commit}"
    cfg = QUICK if options.quick else FULL  # run.py's sizes and samples
    mode, repeats, min_sample = cfg.mode, cfg.repeats, cfg.min_sample
    print(f"This diffc (numba) against {label}'s standalone module (numba), one process, {mode} sizes; medians.\n")
    print(f"| workload | JAX jit | diffc now | {label} | now × JAX | then × JAX | now × then |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="diffc-versus-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        emit_earlier(earlier_tree(commit, tree), keys, Path(scratch))
        for key in keys:
            workload = WORKLOADS[key]
            earlier = load_module(Path(scratch) / f"{key}.py")
            times = compare(workload, workload.sizes[mode], earlier, label, repeats, min_sample)
            print(row(key, times, label), flush=True)


if __name__ == "__main__":
    main()
