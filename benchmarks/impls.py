"""The implementations compared: each becomes ``call(*args) -> (value, grads)`` for one workload.

``build`` returns the callable and the arguments to give it: JAX gets its
arrays converted to device arrays once, outside the timed region, as a JAX
user keeps data on the device; torch gets float64 tensors sharing the NumPy
arrays' memory (``torch.from_numpy``), made once, as a torch user keeps
tensors. Building does not call anything: JAX, torch.compile and diffc trace
and compile on the first call, which the first-call column measures.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
from workloads import Workload

NUMPY = "NumPy (hand)"
NUMBA = "Numba (hand)"
NUMBA_PAR = "Numba (hand, parallel)"
JAX = "JAX jit"
TORCH = "torch.compile"
DIFFC = "diffc (numba)"
DIFFC_NUMPY = "diffc (numpy)"
ALL = (NUMPY, NUMBA, NUMBA_PAR, JAX, TORCH, DIFFC, DIFFC_NUMPY)
COMPILED = (NUMBA, NUMBA_PAR, JAX, TORCH, DIFFC, DIFFC_NUMPY)  # those with a first-call cost worth measuring
PEERS = (JAX, TORCH)  # optional frameworks: n/a when not importable

Call = Callable[..., tuple[Any, Any]]


def have_jax() -> bool:
    return importlib.util.find_spec("jax") is not None


def have_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def have(name: str) -> bool:
    """Whether an optional peer's framework is importable (always True for the others)."""
    return {JAX: have_jax, TORCH: have_torch}.get(name, lambda: True)()


def _jax() -> Any:
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def available(workload: Workload, name: str) -> bool:
    if name in workload.peer_notes:
        return False
    if name in PEERS:
        return have(name)
    if name == NUMBA_PAR:
        from kernels import HAND_NUMBA

        return HAND_NUMBA[workload.key][1] is not None
    return True


def build(workload: Workload, name: str, args: tuple[Any, ...]) -> tuple[Call, tuple[Any, ...]]:
    """The callable for implementation ``name`` and the arguments it takes."""
    if name == NUMPY:
        return workload.hand_numpy, args
    if name in (NUMBA, NUMBA_PAR):
        from kernels import HAND_NUMBA

        return HAND_NUMBA[workload.key][name == NUMBA_PAR], args
    if name == JAX:
        jax = _jax()
        import jax.numpy as jnp

        model = workload.peer_models.get(JAX, workload.model)
        fn = jax.jit(jax.value_and_grad(model(jnp), argnums=workload.argnums))

        def call(*a: Any) -> Any:
            return jax.block_until_ready(fn(*a))

        return call, tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
    if name == TORCH:
        return _torch_build(workload, args)
    if name in (DIFFC, DIFFC_NUMPY):
        import diffc

        compiled = diffc.compile(workload.model(np), args=workload.types, wrt=workload.wrt,
                                 backend="numba" if name == DIFFC else "numpy")
        compiled.value_and_grad(*args)  # after the first call, f.value_and_grad is the fast entry users call
        return compiled.value_and_grad, args
    raise ValueError(f"unknown implementation {name!r}")


# ---------------------------------------------------------------------------
# torch.compile

def torch_numpy() -> Any:
    """The NumPy names the workload models use, spelled for torch: torch differentiates the same model text.

    Only what ``workloads.py`` calls: elementwise functions are torch's own;
    ``sum``/``mean``/``max`` take NumPy's ``axis``/``keepdims``; ``maximum``
    with a Python number on either side is ``torch.clamp_min`` (torch.maximum
    wants two tensors).
    """
    import torch

    def reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
        def numpy_style(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
            return fn(x) if axis is None else fn(x, dim=axis, keepdim=keepdims)
        return numpy_style

    def maximum(a: Any, b: Any) -> Any:
        if isinstance(a, int | float):
            return torch.clamp_min(b, a)
        if isinstance(b, int | float):
            return torch.clamp_min(a, b)
        return torch.maximum(a, b)

    return SimpleNamespace(exp=torch.exp, log=torch.log, log1p=torch.log1p, sin=torch.sin, tanh=torch.tanh,
                           sqrt=torch.sqrt, sum=reduce(torch.sum), mean=reduce(torch.mean), max=reduce(torch.amax),
                           maximum=maximum)


def _torch_build(workload: Workload, args: tuple[Any, ...]) -> tuple[Call, tuple[Any, ...]]:
    """torch.compile over torch.func.grad_and_value: one graph per model, no graph break, fused by inductor.

    (torch.autograd.grad inside a compiled function breaks the graph in three
    places, and compiling only the model leaves the backward to eager autograd.)
    The compiled function returns (value, grads) like the others, grads for
    exactly the workload's ``wrt`` arguments. ``torch._dynamo.reset()`` makes
    each build start afresh, as a new process would: otherwise a second size of
    the same model (the scaling run) would trigger dynamo's automatic dynamic
    shapes and time a shape-generic kernel instead.

    Python floats (W1's b, W7's a and b) become 0-d float64 tensors, once, here:
    grad_and_value differentiates tensors only, so a torch user differentiating
    with respect to a scalar holds it as a 0-d tensor.
    """
    import torch
    from torch.func import grad_and_value

    torch._dynamo.reset()
    value_and_grads = grad_and_value(workload.model(torch_numpy()), argnums=workload.argnums)

    def value_then_grads(*a: Any) -> Any:
        grads, value = value_and_grads(*a)
        return value, grads

    tensors = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else torch.tensor(a, dtype=torch.float64)
                    for a in args)
    return torch.compile(value_then_grads), tensors


def as_numpy(result: Any) -> tuple[float, list[np.ndarray]]:
    """(value, grads) from any implementation, as a float and a list of NumPy arrays."""
    value, grads = result
    if not isinstance(grads, tuple | list):
        grads = (grads,)
    return float(np.asarray(value)), [np.asarray(g, dtype=np.float64) for g in grads]


def mismatch(result: Any, reference: Any, rtol: float = 1e-6) -> str | None:
    """None if ``result`` matches ``reference``, else what differs.

    Each entry must satisfy |got − ref| ≤ rtol·|ref| + rtol·max|ref|: relative
    error, with an absolute floor scaled by the array's largest entry, so a
    gradient entry that is tiny by cancellation does not fail on rounding.
    """
    value, grads = as_numpy(result)
    ref_value, ref_grads = as_numpy(reference)
    if not np.isclose(value, ref_value, rtol=rtol, atol=0.0):
        return f"value {value!r} ≠ {ref_value!r}"
    if len(grads) != len(ref_grads):
        return f"{len(grads)} gradients, expected {len(ref_grads)}"
    for index, (got, ref) in enumerate(zip(grads, ref_grads, strict=True)):
        if got.shape != ref.shape:
            return f"gradient {index} has shape {got.shape}, expected {ref.shape}"
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        bad = ~np.isclose(got, ref, rtol=rtol, atol=rtol * scale)
        if bad.any():
            where = np.unravel_index(np.argmax(np.abs(got - ref)), ref.shape) if ref.ndim else ()
            return (f"gradient {index}: {int(bad.sum())} of {ref.size} entries differ "
                    f"(worst at {tuple(int(i) for i in where)}: {float(got[where])!r} vs {float(ref[where])!r})")
    return None


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type name if the message is empty)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
