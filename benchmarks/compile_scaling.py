"""Compile time against program size: ``python benchmarks/compile_scaling.py [--sizes 1000,5000] [--backends numpy]``.

Large programs (a 20,000-step chain, a 50,000-node DAG) are where a compiler's
hidden quadratic steps show: a list scanned per node, a graph rebuilt per
rewrite, a Numba function that grows without bound. This script builds four
kinds of program at each size, compiles each with each back end, and prints
the seconds per stage, so that growth that is not near linear is visible at a
glance:

- ``text``: assignment lines ``a1 = sin(x) * 1.01``, ``a2 = cos(a1) + x``, ...,
  ``sum(aN)``, over a vector ``x: f64[n]`` (Numba: one fused loop);
- ``scalar``: the same lines over a scalar ``x: f64`` (Numba: statements);
- ``loop``: a traced Python loop ``x = np.sin(x) * 1.0001 + 0.1 * k``;
- ``dag``: node k combines node k-1 with a random earlier node (wide fan-out,
  long live ranges: the case a split into functions pays most for).

Before those, ``parse`` times the text front end alone on the sizes issue 12 names: a
10,000-line assignment program (parsed: under a second) and a 1 MB expression string
(refused at once by ``MAX_TEXT``), each in this process (``--parse-only`` prints just these).

Every measurement runs in a fresh process with a fresh ``DIFFC_CACHE_DIR``,
so neither diffc's disk cache nor Numba's in-process dispatchers (the support
helpers compile once per process) hide a cost a user pays. Numba compiles at
the first call, so the first ``value_and_grad`` is timed as its own stage.
The value and gradient on a 3-element input are checked against central
differences of the NumPy back end's value (the reference that needs no
compiler), and the two back ends against each other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

KINDS = ("text", "scalar", "loop", "dag")
STAGES = ("build", "passes", "reverse", "codegen", "first_call", "total")


def chain_text(count: int) -> str:
    """``count`` assignment lines alternating a sine and a cosine, each line two operations."""
    lines = []
    previous = "x"
    for k in range(1, count + 1):
        lines.append(f"a{k} = sin({previous}) * 1.01" if k % 2 else f"a{k} = cos({previous}) + x")
        previous = f"a{k}"
    return "\n".join([*lines, f"sum({previous})"])


def dag_text(count: int, seed: int = 0) -> str:
    """Node k combines node k-1 and a random earlier node: every node is used, live ranges are long."""
    rng = np.random.default_rng(seed)
    lines = ["v0 = x", "v1 = sin(x)"]
    forms = ("v{a} * 0.5 + v{b} * 0.25", "sin(v{a}) + v{b} * 0.5", "v{a} * v{b} * 0.5", "cos(v{a}) * 0.5 - v{b} * 0.25")
    for k in range(2, count):
        lines.append(f"v{k} = " + forms[k % 4].format(a=k - 1, b=int(rng.integers(0, k - 1))))
    return "\n".join([*lines, f"sum(v{count - 1})"])


def loop_function(count: int) -> Any:
    """A Python loop the tracer unrolls: ``count`` steps of three operations each."""

    def f(x):  # type: ignore[no-untyped-def]
        for k in range(count):
            x = np.sin(x) * 1.0001 + 0.1 * k
        return np.sum(x)

    return f


def source(kind: str, nodes: int) -> tuple[Any, dict[str, str]]:
    """The program of ``kind`` with about ``nodes`` forward operations, and its argument types."""
    vector = {"x": "f64[n]"}
    if kind == "text":
        return chain_text(nodes // 2), vector
    if kind == "scalar":
        return chain_text(nodes // 2), {"x": "f64"}
    if kind == "loop":
        return loop_function(nodes // 3), vector
    if kind == "dag":
        return dag_text(nodes // 3), vector
    raise ValueError(f"unknown kind {kind!r}: choose from {', '.join(KINDS)}")


def measure(kind: str, nodes: int, backend: str) -> dict[str, Any]:
    """One compile in this process: seconds per stage, and the value and gradient on a tiny input."""
    import diffc

    started = time.perf_counter()
    fn, args = source(kind, nodes)
    f = diffc.compile(fn, args=args, backend=backend)  # text: parsed here; a function: traced at the first use
    spec = f._declared()
    built = time.perf_counter()
    spec.grad_program()  # the reverse pass and the simplification of the gradient
    reversed_at = time.perf_counter()
    spec.module()  # printing (and, for Numba, defining the dispatchers: compiled at the first call)
    printed = time.perf_counter()
    x: Any = 0.3 if args["x"] == "f64" else np.array([0.1, 0.25, 0.4])
    value, grads = f.value_and_grad(x)
    done = time.perf_counter()
    grad = np.ravel(grads[0] if isinstance(grads, tuple) else grads)
    grad_nodes = len(spec.grad_program().graph.nodes)
    stats = spec.stats
    return {"kind": kind, "nodes": nodes, "backend": backend, "grad_nodes": grad_nodes,
            "build": built - started - stats.get("passes", 0.0), "passes": stats.get("passes", 0.0),
            "reverse": reversed_at - built, "codegen": printed - reversed_at, "first_call": done - printed,
            "total": done - started, "value": float(value), "grad": grad.tolist(), "x": np.atleast_1d(x).tolist()}


def parse_figures() -> list[tuple[str, float, str]]:
    """(what, seconds, outcome) for the text front end on a 10,000-line program and a 1 MB string."""
    from diffc.errors import DiffcError
    from diffc.frontends.text import parse_text

    cases = [("10,000 assignment lines", chain_text(10_000)), ("10,000-node DAG lines", dag_text(10_000)),
             ("1 MB expression 'x+x+...'", "x+" * 2**19), ("1 MB of 'a=1' lines", "a=1\n" * 2**18),
             ("0.95 MB of 'a=1' lines", "a=1\n" * 237_500)]
    figures = []
    for what, text in cases:
        started = time.perf_counter()
        try:
            program = parse_text(text)
            outcome = f"parsed, {len(program.graph.nodes)} nodes"
        except DiffcError as error:
            outcome = f"{type(error).__name__}: {str(error)[:60]}"
        figures.append((what, time.perf_counter() - started, outcome))
    return figures


def run_fresh(kind: str, nodes: int, backend: str, timeout: float) -> dict[str, Any]:
    """:func:`measure` in a new interpreter with an empty cache directory."""
    with tempfile.TemporaryDirectory(prefix="diffc-scaling-") as cache:
        env = dict(os.environ, DIFFC_CACHE_DIR=cache)
        command = [sys.executable, __file__, "--one", kind, str(nodes), backend]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"kind": kind, "nodes": nodes, "backend": backend, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"kind": kind, "nodes": nodes, "backend": backend, "error": tail[:200]}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def check(result: dict[str, Any], reference: dict[str, Any] | None) -> str:
    """``ok`` when the value and gradient agree with the NumPy back end and with central differences."""
    if "error" in result:
        return "-"
    import diffc

    fn, args = source(result["kind"], result["nodes"])
    plain = diffc.compile(fn, args=args, backend="numpy") if reference is None else None
    notes = []
    if reference is not None and "error" not in reference and (
            not np.allclose(result["value"], reference["value"], rtol=1e-9, atol=1e-12)
            or not np.allclose(result["grad"], reference["grad"], rtol=1e-7, atol=1e-10)):
        notes.append("differs from numpy")
    if plain is not None:  # central differences on the first element (the NumPy back end needs no compiler)
        h = 1e-6
        up, down = np.array(result["x"], dtype=float), np.array(result["x"], dtype=float)
        up[0] += h
        down[0] -= h
        vector = args["x"] != "f64"
        numeric = (plain(up if vector else up[0]) - plain(down if vector else down[0])) / (2 * h)
        if not np.isclose(result["grad"][0], numeric, rtol=1e-5, atol=1e-7):
            notes.append(f"gradient {result['grad'][0]:.6g} vs differences {numeric:.6g}")
    return ", ".join(notes) or "ok"


def table(results: list[dict[str, Any]], checks: list[str]) -> str:
    head = f"{'backend':8s} {'kind':7s} {'nodes':>7s} {'grad nodes':>10s} " + " ".join(f"{s:>10s}" for s in STAGES)
    rows = [head + "  check", "-" * (len(head) + 7)]
    for r, ok in zip(results, checks, strict=True):
        if "error" in r:
            rows.append(f"{r['backend']:8s} {r['kind']:7s} {r['nodes']:7d} {'':>10s} {r['error']}")
            continue
        rows.append(f"{r['backend']:8s} {r['kind']:7s} {r['nodes']:7d} {r['grad_nodes']:10d} "
                    + " ".join(f"{r[s]:10.2f}" for s in STAGES) + f"  {ok}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000,50000", help="forward operation counts, comma-separated")
    parser.add_argument("--backends", default="numpy,numba")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per compile before giving up")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "NODES", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--parse-only", action="store_true", help="only the text front end's figures")
    options = parser.parse_args()
    if not options.one:
        for what, seconds, outcome in parse_figures():
            print(f"parse    {what:28s} {seconds:8.2f} s  {outcome}", flush=True)
        if options.parse_only:
            return
    if options.one:
        kind, nodes, backend = options.one
        print(json.dumps(measure(kind, int(nodes), backend)), flush=True)
        return
    results, checks = [], []
    for backend in options.backends.split(","):
        for kind in options.kinds.split(","):
            for nodes in (int(s) for s in options.sizes.split(",")):
                result = run_fresh(kind, nodes, backend, options.timeout)
                reference = next((r for r in results if r["backend"] == "numpy" and r["kind"] == kind
                                  and r["nodes"] == nodes), None) if backend != "numpy" else None
                results.append(result)
                checks.append(check(result, reference))
                print(table(results[-1:], checks[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(results, checks))


if __name__ == "__main__":
    main()
