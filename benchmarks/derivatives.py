"""Derivatives beyond the gradient (issue 15, item 5): Hessian-vector products and a compressed Jacobian.

    python benchmarks/derivatives.py             # W1 at X 200000×64, W4 at 1e6, a 1,000-wide layer
    python benchmarks/derivatives.py --quick     # W1 at 20000 rows, W4 at 1e5, fewer repeats

Rows, each a ratio (smaller is faster):

* **HVP of W1 and W4**: ``f.hvp`` of diffc (numba) against JAX's
  ``jit(lambda x, v: jvp(grad(f), (x,), (v,))[1])`` (forward over reverse,
  the JAX documentation's recommended HVP), the data passed as arguments of
  the jitted function, converted to JAX arrays once. Both are checked against
  each other before they are timed. W4 also gets a bandwidth floor: ``np.add(x, v,
  out=out)`` reads and writes as many float64s as an HVP must (x and v in,
  one array out).
* **Jacobian of a 1,000-wide elementwise layer** (``tanh(z) * sigmoid(z)``)
  through ``f.jacobian(z, compressed=True)`` (its diagonal), against one
  gradient of the layer's sum (``g.grad(z)``), and JAX's dense
  ``jit(jacfwd(layer))`` for scale.

Timing is benchmarks/timing.py's: medians of interleaved samples. Markdown goes
to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from impls import _jax
from timing import interleaved_times
from workloads import WORKLOADS

import diffc

LAYER_WIDTH = 1000
FLOOR = "bandwidth floor: np.add(x, v, out=)"


def layer_model(xp: Any) -> Callable[[Any], Any]:
    """An elementwise layer: each output depends on the input at its position only."""
    def layer(z):
        return xp.tanh(z) / (1 + xp.exp(-z))
    return layer


def _check(name: str, ours: Any, theirs: Any) -> None:
    ours, theirs = np.concatenate([np.ravel(a) for a in ours]), np.concatenate([np.ravel(a) for a in theirs])
    if not np.allclose(ours, theirs, rtol=1e-9, atol=1e-9 * np.abs(theirs).max()):
        raise SystemExit(f"{name}: diffc and JAX disagree (max |difference| {np.abs(ours - theirs).max():.3e})")


def hvp_calls(key: str, size: int) -> dict[str, Callable[[], Any]]:
    """diffc's and JAX's HVP of a workload at ``size``, checked against each other."""
    jax = _jax()
    import jax.numpy as jnp

    workload = WORKLOADS[key]
    args = workload.args(size)
    rng = np.random.default_rng(1)
    wrt = workload.argnums
    directions = tuple(rng.standard_normal(np.shape(args[i])) if np.ndim(args[i]) else float(rng.standard_normal())
                       for i in wrt)
    f = diffc.compile(workload.model(np), args=workload.types, wrt=workload.wrt)
    v = directions if len(wrt) > 1 else directions[0]  # one differentiated argument: its direction alone
    ours = f.hvp(*args, v)
    ours = ours if isinstance(ours, tuple) else (ours,)
    model = workload.model(jnp)

    def jax_hvp(primals: Any, data: Any, tangents: Any) -> Any:
        def gradient(*xs: Any) -> Any:
            full = list(data)
            for i, x in zip(wrt, xs, strict=True):
                full[i] = x
            return jax.grad(model, argnums=wrt)(*full)
        return jax.jvp(gradient, primals, tangents)[1]

    jitted = jax.jit(jax_hvp)
    device = tuple(jnp.asarray(a) for a in args)
    primals = tuple(device[i] for i in wrt)
    tangents = tuple(jnp.asarray(d) for d in directions)
    theirs = jax.block_until_ready(jitted(primals, device, tangents))
    _check(f"{key} hvp", ours, theirs)
    calls = {"diffc (numba)": lambda: f.hvp(*args, v),
             "JAX jit(jvp(grad(f)))": lambda: jax.block_until_ready(jitted(primals, device, tangents))}
    if key == "W4":  # the least an HVP moves: read x and v, write one array (np.add into a buffer)
        x, out = args[0], np.empty_like(args[0])
        calls[FLOOR] = lambda: np.add(x, v, out=out)
    return calls


def jacobian_calls() -> dict[str, Callable[[], Any]]:
    """The compressed Jacobian of the layer, one gradient of its sum, and JAX's dense jacfwd."""
    jax = _jax()
    import jax.numpy as jnp

    z = np.random.default_rng(2).standard_normal(LAYER_WIDTH)
    layer = diffc.compile(layer_model(np), args={"z": "f64[n]"})
    total = diffc.compile(lambda z: np.sum(layer_model(np)(z)), args={"z": "f64[n]"})
    diagonal = layer.jacobian(z, compressed=True)
    assert layer.jacobian_structure().kind == "diagonal"
    dense = jax.jit(jax.jacfwd(layer_model(jnp)))
    z_device = jnp.asarray(z)
    _check("layer jacobian", [diagonal], [np.diag(np.asarray(dense(z_device)))])
    _check("layer gradient", [total.grad(z)], [diagonal])
    return {"diffc jacobian(compressed=True)": lambda: layer.jacobian(z, compressed=True),
            "diffc grad of sum(layer)": lambda: total.grad(z),
            "JAX jit(jacfwd(layer)), dense": lambda: jax.block_until_ready(dense(z_device))}


def _row(what: str, times: dict[str, Any], base: str, other: str) -> str:
    ratio = times[base].median / times[other].median
    return (f"| {what} | {times[base].median * 1e3:.3f} ms | {other}: {times[other].median * 1e3:.3f} ms "
            f"| {ratio:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--repeats", type=int, help="samples per implementation (default 15, quick 6)")
    ns = parser.parse_args()
    repeats = ns.repeats or (6 if ns.quick else 15)
    size = "quick" if ns.quick else "full"
    rows = ["| derivative | diffc | against | ratio |", "|---|---|---|---|"]
    for key in ("W1", "W4"):
        n = WORKLOADS[key].sizes[size]
        print(f"{key} hvp at {WORKLOADS[key].size_text(n)} ...", file=sys.stderr)
        times = interleaved_times(hvp_calls(key, n), repeats, min_sample=0.2)
        what = f"{key} HVP ({WORKLOADS[key].title}, {WORKLOADS[key].size_text(n)})"
        rows.append(_row(what, times, "diffc (numba)", "JAX jit(jvp(grad(f)))"))
        if FLOOR in times:
            rows.append(_row(what, times, "diffc (numba)", FLOOR))
    print(f"layer jacobian, {LAYER_WIDTH} wide ...", file=sys.stderr)
    times = interleaved_times(jacobian_calls(), repeats, min_sample=0.2)
    what = f"Jacobian of a {LAYER_WIDTH}-wide elementwise layer, compressed=True"
    rows.append(_row(what, times, "diffc jacobian(compressed=True)", "diffc grad of sum(layer)"))
    rows.append(_row(what, times, "diffc jacobian(compressed=True)", "JAX jit(jacfwd(layer)), dense"))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
