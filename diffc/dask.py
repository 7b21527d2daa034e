"""Value and gradient over data in Dask arrays: one compiled kernel per block of rows, partials added in a tree.

``f.value_and_grad(w, b, X, y)`` and ``f.grad`` come here when some
arguments are Dask arrays (the *data*). diffc/passes/decompose.py proves
that the loss is ``A + B / m + P`` (sums over the rows, a mean's sum over
the row count m, and a term of the parameters alone) and prints the block
program; every block of rows runs it and returns (partial value, partial
gradients, row count); the partials are added pairwise in a tree whose
shape depends only on the number of blocks, so the result does not depend
on the number of workers or the order they finish in; ``P`` and its
gradient are computed once, here. Nothing here schedules: the work is a
Dask graph, run by whatever Dask scheduler is active (threads, or a
``distributed.Client``), so ``ProgressBar`` and ``distributed.progress`` see it.

The kernel reaches a worker as its generated module's text (a few
kilobytes, one key of the graph), loaded once per worker process through
diffc's disk cache (:func:`loads` counts the loads); Numba compiles it
at its first call there, or finds it in its own cache beside the file.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diffc import cache
from diffc.errors import DiffcError, RowCouplingError
from diffc.passes.decompose import split_rows

__all__ = ["Problem", "RowCouplingError", "compiles", "compute", "is_dask", "lazy_value_and_grad", "loads",
           "value_and_grad"]


def is_dask(value: Any) -> bool:
    """A Dask collection, recognised without importing Dask (import diffc stays light)."""
    return type(value).__module__.split(".")[0] == "dask" and hasattr(value, "__dask_graph__")


# ---------------------------------------------------------------------------
# the kernel, as it travels to workers

_LOADED: dict[str, Any] = {}
_LOADS: dict[str, int] = {}
_LOAD_LOCK = threading.Lock()


def loads() -> dict[str, int]:
    """How many times this process loaded each block kernel (by cache key): 1 each, however many tasks ran."""
    return dict(_LOADS)


def compiles() -> dict[str, int]:
    """How many machine-code versions of each loaded block kernel this process holds (Numba's signatures).

    1 each on the Numba back end however many blocks ran (a second would
    mean a recompile, say for another dtype); 0 on the NumPy back end.
    """
    return {key: len(getattr(module.value_and_grad, "signatures", ())) for key, module in _LOADED.items()}


@dataclass(frozen=True)
class Kernel:
    """A block program's generated module, by text: picklable, loaded once per process."""

    key: str
    text: str
    constants: tuple[Any, ...] = ()
    plain: bool = False  # the NumPy back end: scalars come back as NumPy's

    def __dask_tokenize__(self) -> str:
        return self.key

    def function(self) -> Any:
        module = _LOADED.get(self.key)
        if module is None:
            with _LOAD_LOCK:
                module = _LOADED.get(self.key)
                if module is None:
                    module, _ = cache.load(self.key, lambda: self.text)
                    _LOADED[self.key] = module
                    _LOADS[self.key] = _LOADS.get(self.key, 0) + 1
        return module.value_and_grad

    def __call__(self, *args: Any) -> tuple[Any, tuple[Any, ...]]:
        return self.function()(*args, *self.constants)


def _run_block(kernel: Kernel, template: tuple[Any, ...], positions: tuple[int, ...], rows: int,
               *blocks: np.ndarray) -> tuple[Any, tuple[Any, ...], int]:
    values = list(template)
    for i, block in zip(positions, blocks, strict=True):
        values[i] = np.ascontiguousarray(block)
    value, grads = kernel(*values, rows)
    return value, tuple(np.asarray(g).copy() for g in grads), len(blocks[0])


def _add(a: tuple[Any, tuple[Any, ...], int], b: tuple[Any, tuple[Any, ...], int]) -> tuple[Any, tuple[Any, ...], int]:
    return a[0] + b[0], tuple(x + y for x, y in zip(a[1], b[1], strict=True)), a[2] + b[2]


def tree_sum(parts: list[Any], add: Any) -> Any:
    """Pairwise sums in a fixed order: ((p0 + p1) + (p2 + p3)) + ..., the same tree on any workers."""
    while len(parts) > 1:
        parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


# ---------------------------------------------------------------------------
# a plan per compiled signature and choice of data arguments


@dataclass
class Plan:
    kernel: Kernel
    params: Any  # the Compiled of the parameter program, or None
    positions: tuple[int, ...]  # of the data leaves among the signature's leaves
    dtypes: tuple[np.dtype[Any], ...]
    spec: Any
    extra: dict[str, Any] = field(default_factory=dict)


def _plan(f: Any, spec: Any, data: tuple[str, ...]) -> Plan:
    from diffc.api import Compiled, _from_program

    plans = f.__dict__.setdefault("_dask_plans", {})
    key = (id(spec), data)
    if key in plans:
        return plans[key]
    split = split_rows(spec.forward, data)
    block: Compiled = _from_program(split.block, tuple(spec.wrt), f.backend, f"{f.label} (a block of rows)")
    block.vector_math, block.annotate = f.vector_math, f.annotate
    bspec = block._declared()
    module = bspec.module()
    text = cache.unsealed(Path(module.__file__ or "").read_bytes())
    assert text is not None
    kernel = Kernel(bspec.cache_key(), text, tuple(bspec.constants), plain=f.backend == "numpy")
    params = None
    if split.params is not None:
        params = _from_program(split.params, tuple(spec.wrt), f.backend, f"{f.label} (its parameter terms)")
    names = [p[0] for p in spec.params]
    positions = tuple(names.index(d) for d in data)
    dtypes = tuple(spec.params[i][1].numpy for i in positions)
    plans[key] = plan = Plan(kernel, params, positions, dtypes, spec)
    return plan


def _prepare(f: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The Dask graph of ``name`` (a Delayed) and how to finish its result."""
    import dask

    from diffc.api import Compiled, _plain

    values, omitted = f._bind(args, kwargs)
    names = f._argument_names()
    data_args = [(n, v) for n, v in zip(names, values, strict=True) if is_dask(v)]
    stand_ins = [np.zeros((0, *v.shape[1:]), dtype=v.dtype) if is_dask(v) else v for v in values]
    spec, leaves = f._prepare(stand_ins, omitted)
    if spec.sized:
        raise DiffcError(f"{f.label} needs concrete sizes ({spec.sized}), so it cannot run on blocks of rows "
                         "of any size; write it without len() or shape arithmetic on the rows")
    if not spec.scalar_output or not spec.wrt:
        raise DiffcError(f"{f.label}: a gradient over Dask data needs a scalar loss of floating-point arguments")
    data = []
    for n, _ in data_args:
        group = spec.arguments.leaves[spec.arguments.names.index(n)]
        if group != [n] and list(group) != [n]:
            raise DiffcError(f"{f.label}: Dask data must be whole arguments (arrays), not parts of {n!r}")
        data.append(n)
    plan = _plan(f, spec, tuple(data))
    arrays = _aligned([v for _, v in data_args], plan.dtypes, data)
    chunks = arrays[0].chunks[0]
    if any(c != c for c in chunks):
        raise DiffcError(f"{f.label}: the row chunks of {data[0]!r} are unknown (nan); call "
                         f"{data[0]}.compute_chunk_sizes() first")
    rows = int(sum(chunks))
    template = tuple(None if i in plan.positions else v for i, v in enumerate(leaves))
    kernel = dask.delayed(plan.kernel, pure=True, traverse=False)
    fixed = dask.delayed(template, pure=True, traverse=False)
    columns = [a.to_delayed().reshape(len(chunks)) for a in arrays]
    run = dask.delayed(_run_block, pure=True)
    parts = [run(kernel, fixed, plan.positions, rows, *(c[i] for c in columns)) for i in range(len(chunks))]
    total = tree_sum(parts, dask.delayed(_add, pure=True))

    def finish(result: tuple[Any, tuple[Any, ...], int]) -> Any:
        value, grads, count = result
        if count != rows:
            raise DiffcError(f"{f.label}: the blocks held {count} rows, the chunks promised {rows}")
        if plan.params is not None:
            p_value, p_grads = plan.params.value_and_grad(*leaves, rows)
            value = value + p_value
            grads = tuple(g + pg for g, pg in zip(grads, p_grads, strict=True))
        grads = _plain(tuple(np.asarray(g) for g in grads))
        out = Compiled._gradients(spec, grads[0] if spec.module_bare else grads)
        value = float(value) if np.ndim(value) == 0 else value
        return out if name == "grad" else (value, out)

    return total, finish


def _aligned(arrays: Sequence[Any], dtypes: Sequence[np.dtype[Any]], names: Sequence[str]) -> list[Any]:
    """The data arrays chunked along the rows only (other axes whole), with the first one's row chunks."""
    out = []
    for a, dtype, n in zip(arrays, dtypes, names, strict=True):
        if a.dtype != dtype:
            if not np.can_cast(a.dtype, dtype, "same_kind"):
                raise DiffcError(f"argument {n!r} holds {a.dtype} values; the compiled signature takes {dtype}")
            a = a.astype(dtype)
        whole = {axis: -1 for axis in range(1, a.ndim)}
        if out:
            whole[0] = out[0].chunks[0]
        if any(len(a.chunks[axis]) > 1 for axis in whole if axis) or (out and a.chunks[0] != out[0].chunks[0]):
            a = a.rechunk(whole)  # a block holds whole rows: columns chunked apart are joined
        out.append(a)
    return out


def lazy_value_and_grad(f: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(graph, finish)``: a Dask Delayed of the summed partials, and the function that makes the answer.

    For ``client.compute(graph)`` and ``distributed.progress``:
    ``finish(future.result())`` is ``f.value_and_grad(*args)``.
    """
    return _prepare(f, "value_and_grad", args, kwargs)


def value_and_grad(f: Any, *args: Any, **kwargs: Any) -> Any:
    """``f.value_and_grad(*args)`` with Dask data: the sum over all blocks, as NumPy values."""
    return call(f, args, kwargs, "value_and_grad")


def call(f: Any, args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    """The hook of ``Compiled.value_and_grad`` and ``grad`` for Dask arguments: compute with the active scheduler."""
    import dask

    graph, finish = _prepare(f, name, args, kwargs)
    (result,) = dask.compute(graph)
    return finish(result)


def _client() -> Any:
    """The ``distributed.Client`` that ``dask.compute`` would use now, or None (threads, processes, sync)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        client = default_client()
    except ValueError:
        return None
    from dask.base import get_scheduler

    return client if get_scheduler() == client.get else None  # dask.config.set(scheduler=...) wins


def compute(graph: Any, progress: bool = False) -> Any:
    """``graph`` computed by the active scheduler, with a progress bar if asked.

    Under a ``distributed.Client`` the bar is ``distributed.progress`` on the
    future; under the local schedulers it is ``dask.diagnostics.ProgressBar``
    (which a Client's tasks never report to, hence the two).
    """
    import dask

    client = _client()
    if client is not None:
        future = client.compute(graph)
        if progress:
            from distributed import progress as show

            show(future, notebook=False)
            print(flush=True)  # the bar ends its line with a carriage return
        return future.result()
    if not progress:
        return dask.compute(graph)[0]
    from dask.diagnostics import ProgressBar

    with ProgressBar():
        return dask.compute(graph)[0]


# ---------------------------------------------------------------------------
# scipy.optimize.minimize


class Problem:
    """``fun(x) -> (value, gradient)`` over one flat vector of the differentiated arguments, for SciPy.

    ``Problem(f, w0, b0, X, y)`` persists the Dask arguments once (on the
    workers of an active ``distributed.Client``, else in this process), so
    each iteration reads the same blocks instead of recomputing them;
    ``persist=False`` keeps them lazy (data that fits nowhere is regenerated
    or reread per pass). ``minimize(problem, problem.x0, jac=True)``, then
    ``problem.unpack(result.x)`` gives the arguments back, in ``f``'s order.
    ``progress=True`` shows a bar per evaluation (see :func:`compute`).
    """

    def __init__(self, f: Any, *args: Any, persist: bool = True, progress: bool = False, **kwargs: Any) -> None:
        import dask

        values, _ = f._bind(args, kwargs)
        names = f._argument_names()
        if persist:
            lazy = [i for i, v in enumerate(values) if is_dask(v)]
            for i, v in zip(lazy, dask.persist(*(values[i] for i in lazy)), strict=True):
                values[i] = v
        self.f = f
        self.values = values
        wanted = f._wanted()
        floats = [n for n, v in zip(names, values, strict=True)
                  if not is_dask(v) and np.asarray(v).dtype.kind == "f" and n not in (f._defaults or {})]
        self.wrt = list(wanted) if wanted is not None else floats
        self.positions = [names.index(n) for n in self.wrt]
        self.shapes = [np.shape(values[i]) for i in self.positions]
        self.x0 = np.concatenate([np.ravel(np.asarray(values[i], dtype=np.float64)) for i in self.positions])
        self.calls = 0
        self.progress = progress

    def unpack(self, x: np.ndarray) -> list[Any]:
        """The differentiated arguments from the flat vector (scalars as floats)."""
        out, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            piece = x[start:start + size].reshape(shape)
            out.append(float(piece) if not shape else piece)
            start += size
        return out

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        values = list(self.values)
        for i, piece in zip(self.positions, self.unpack(np.asarray(x, dtype=np.float64)), strict=True):
            values[i] = piece
        graph, finish = lazy_value_and_grad(self.f, *values)
        value, grads = finish(compute(graph, self.progress))
        grads = grads if isinstance(grads, tuple) else (grads,)
        self.calls += 1
        return float(value), np.concatenate([np.ravel(np.asarray(g, dtype=np.float64)) for g in grads])
