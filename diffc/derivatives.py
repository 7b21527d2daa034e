"""Derivatives beyond the gradient: jvp, hvp, Jacobians, Hessians and Jacobian structure.

The programs come from diffc/adjoint/forward.py (the reverse pass applied
twice); here they are compiled by the signature's back end into a second
module (``jvp``; for a scalar output ``hvp``; for an elementwise map
``diagonal``, the gradient of the output's sum), cached on disk like the
first, and called by the methods of :class:`diffc.api.Compiled`, through a
fast entry after the first call. Dense Jacobians and Hessians are built
column by column (``jvp``/``hvp`` with a basis vector) or row by row
(``vjp``) by diffc/support/dense.py, in the shape convention of
``jax.jacobian``: the output's shape followed by the input's. Arguments may
be trees (diffc/pytree.py): directions are flattened like them, results
arranged like the gradients. The end of the file assembles standalone
modules for ``diffc emit --derivative``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from diffc import cache
from diffc.adjoint.forward import bind_one, hvp_program, jvp_program
from diffc.adjoint.reverse import reverse
from diffc.api import _MISS, _differentiable, _fast_entry, _plain, quiet_numba_hints
from diffc.codegen.module import FunctionSpec, print_function, render_module
from diffc.codegen.printer import hidden_constants
from diffc.errors import ArgumentError, DiffcError, ShapeError, UnsupportedError
from diffc.fallback import NEXT_VARIANT, is_refusal, warn_fallback
from diffc.ir import Node, Op, Program, type_text
from diffc.passes.pipeline import simplify
from diffc.pytree import flatten
from diffc.structure import Structure, structure
from diffc.support.dense import dense_hessian, dense_jacobian, unit_directions

if TYPE_CHECKING:
    from diffc.api import Compiled, Specialization

MODES = ("auto", "rev", "fwd")


@dataclass
class Derivatives:
    """The jvp, hvp and diagonal programs of one signature, and the module that holds them (built on first use)."""

    spec: Specialization
    _jvp: Program | None = None
    _hvp: Program | None = None
    _diagonal: Program | None = None
    _module: ModuleType | None = None
    _constants: tuple[Any, ...] = ()
    _factors: dict[Node, Callable[..., Any]] = field(default_factory=dict)
    _structures: dict[Node, Structure] = field(default_factory=dict)
    _called: set[str] = field(default_factory=set)  # functions called once (compiled by Numba by now)
    _variant: str = ""  # set by a fallback of this module alone

    def wrt_nodes(self, program: Program) -> list[Node]:
        by_name = {n.attr("name"): n for n in program.inputs}
        return [by_name[w] for w in self.spec.wrt]

    def jvp_program(self) -> Program:
        if self._jvp is None:
            self._jvp = jvp_program(self.spec.vjp_program(), len(self.spec.wrt))
        return self._jvp

    def hvp_program(self) -> Program:
        if self._hvp is None:
            grad = self.spec.grad_program()
            self._hvp = hvp_program(grad, self.wrt_nodes(grad))
        return self._hvp

    def diagonal_program(self) -> Program:
        """``x -> (sum(f(x)), Jᵀ1)``: the gradient of the output's sum, which is the diagonal of a diagonal J."""
        if self._diagonal is None:
            forward = self.spec.forward
            out = forward.outputs[0]
            total = forward.graph.apply(Op.SUM, out, axis=tuple(range(out.ndim)))
            summed = Program(forward.graph, forward.inputs, [total], [f"sum_{forward.output_names[0]}"], forward.name)
            vjp = simplify(reverse(summed, self.wrt_nodes(forward)))
            self._diagonal = bind_one(vjp, vjp.inputs[-1])
        return self._diagonal

    def has_diagonal(self) -> bool:
        """An array output whose Jacobian is diagonal in some argument: the module gets ``diagonal``."""
        spec = self.spec
        return not spec.scalar_output and any(self.structure(x).kind == "diagonal"
                                              for x in self.wrt_nodes(spec.forward))

    def specs(self, annotate: bool | None = None) -> list[FunctionSpec]:
        spec = self.spec
        name, wrt = spec.forward.name, ", ".join(spec.wrt)
        count = len(spec.wrt)
        found = [FunctionSpec("jvp", self.jvp_program(), (0, 1),
                              f"Value of {name} and its Jacobian times the tangents of {wrt} (forward mode).")]
        if spec.scalar_output:
            layout: Any = 0 if count == 1 else tuple(range(count))
            found.append(FunctionSpec("hvp", self.hvp_program(), layout,
                                      f"Hessian of {name} with respect to {wrt} times the directions "
                                      f"{', '.join(n.attr('name') for n in self.hvp_program().inputs[-count:])}."))
        if self.has_diagonal():
            found.append(FunctionSpec("diagonal", self.diagonal_program(), spec.layout(False),
                                      f"The diagonal of the Jacobian of {name} (of the arguments where it is "
                                      f"diagonal): the gradient of sum({spec.forward.output_names[0]}), one pass."))
        self._constants = hidden_constants([s.program for s in found])
        annotate = spec.annotate if annotate is None else annotate
        return [FunctionSpec(s.name, s.program, s.layout, s.doc, constants=self._constants,
                             vector_math=spec.vector_math, annotate=annotate) for s in found]

    @property
    def variant(self) -> str:
        """The printer of this module: the signature's, or the next one after Numba refused a kernel here."""
        return self._variant or self.spec.variant

    def source(self, which: str, annotate: bool | None = None) -> str:
        for s in self.specs(annotate):
            if s.name == which:
                return print_function(s, self.variant)
        if which == "hvp":
            raise DiffcError(f"{self.spec.forward.name} returns an array: it has no Hessian (hvp needs a scalar "
                             "output)")
        raise DiffcError(f"{self.spec.forward.name} has no {which} function")

    def module(self) -> ModuleType:
        with self.spec.lock:
            if self._module is None:
                started = time.perf_counter()
                key = hashlib.sha256(f"derivatives {self.variant}\n{self.spec.cache_key()}".encode()).hexdigest()[:32]
                text = lambda: render_module(self.specs(), self.variant,  # noqa: E731
                                             f"Generated by diffc: jvp and hvp of {self.spec.forward.name}.", False)
                self._module, _ = cache.load(key, text)
                self.spec.stats["derivatives"] = time.perf_counter() - started
            return self._module

    def call(self, name: str, inputs: Sequence[Any], directions: Sequence[Any]) -> Any:
        fn = getattr(self.module(), name)
        if name in self._called:
            return fn(*inputs, *directions, *self._constants)
        try:
            with quiet_numba_hints(self.variant):
                result = fn(*inputs, *directions, *self._constants)
        except Exception as error:
            if not self.fall_back(name, error):
                raise
            return self.call(name, inputs, directions)
        self._called.add(name)
        return result

    def fall_back(self, name: str, error: BaseException) -> bool:
        """Numba refused kernel ``name``: print this module with the next variant (diffc/fallback.py), loudly.

        Only this module changes: the value and gradient module compiled
        already and keeps its fused loops.
        """
        variant = NEXT_VARIANT.get(self.variant)
        if variant is None or not is_refusal(error):
            return False
        source = Path(self._module.__file__ or "").read_text() if self._module is not None else ""
        reason = warn_fallback(self.spec.forward.name, name, variant, error, source)
        with self.spec.lock:
            self._variant, self._module = variant, None
            self._called.clear()
            self.spec.stats["derivatives fallback"] = variant
            self.spec.stats["derivatives fallback reason"] = reason
        return True

    def structure(self, x: Node) -> Structure:
        """The structure of the Jacobian with respect to input ``x``, read from the IR once."""
        found = self._structures.get(x)
        if found is None:
            found = self._structures[x] = structure(self.spec.forward, x)
        return found

    def factor(self, node: Node, inputs: Sequence[Any]) -> Any:
        """The value of a forward node (a linear map's matrix), computed by a small NumPy program."""
        forward = self.spec.forward
        if node in forward.inputs:
            return np.asarray(inputs[forward.inputs.index(node)])
        run = self._factors.get(node)
        if run is None:
            from diffc.viz import run_numpy

            program = Program(forward.graph, forward.inputs, [node], ["factor"], f"{forward.name}_factor")
            run = self._factors[node] = lambda *values: run_numpy(program, values)[0]
        return np.asarray(run(*inputs))


def derivatives_of(spec: Specialization) -> Derivatives:
    """The :class:`Derivatives` of a signature, made once."""
    found = spec.__dict__.get("_derivatives")
    if found is None:
        found = spec.__dict__.setdefault("_derivatives", Derivatives(spec))
    return found


# ---------------------------------------------------------------------------
# argument handling shared by the methods


def bind(f: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any], what: str,
         extra: int) -> tuple[Specialization, list[Any], Any]:
    """The signature, the coerced inputs and the trailing argument (tangents, direction) of a call."""
    try:
        values, omitted = f._bind(args, kwargs, extra=extra)
    except TypeError as error:
        names = f._argument_names()
        tail = "tangents" if what == "jvp" else "v"
        raise ArgumentError(f"{f.label}.{what}({', '.join([*names, tail])}) takes the arguments of {f.label}, "
                            f"then {tail}: {error}") from None
    spec, inputs = f._prepare(values[:-1] if extra else values, omitted)
    _differentiable(spec, f.label)
    return spec, inputs, values[-1] if extra else None


def _wrt_values(spec: Specialization, inputs: Sequence[Any]) -> list[np.ndarray]:
    """The values of the differentiated arguments among a call's inputs, in ``wrt`` order."""
    names = [p[0] for p in spec.params]
    return [np.asarray(inputs[names.index(w)]) for w in spec.wrt]


def _differentiated(spec: Specialization) -> list[tuple[str, Any, tuple[str, ...]]]:
    """``(name, tree, leaves)`` of each argument with a differentiated leaf, in signature order."""
    assert spec.arguments is not None
    wrt = set(spec.wrt)
    return [(name, tree, leaves) for name, (kind, tree), leaves in
            zip(spec.arguments.names, spec.arguments.parts, spec.arguments.leaves, strict=True)
            if kind == "tree" and any(leaf in wrt for leaf in leaves)]


def _leaf_parts(f: Compiled, spec: Specialization, given: Any, what: str) -> list[Any]:
    """The user's directions, one per differentiated leaf in ``wrt`` order.

    Plain arguments: one direction alone, or a tuple for several. Trees
    (``[(W, b), ...]``, dicts): the direction of each differentiated argument
    has its containers (one alone when ``f.grad`` returns one gradient alone,
    else a tuple), as JAX's ``jvp`` takes tangents shaped like the primals.
    """
    if spec.arguments is None or spec.arguments.is_flat:
        one = len(spec.wrt) == 1
        if one and not spec.bare and isinstance(given, tuple) and len(given) == 1 and np.ndim(given[0]) > 0:
            given = given[0]  # wrt=("x",): (v,) as the tuple grad returns, or v alone
        parts = [given] if one else list(given)
        if len(parts) != len(spec.wrt):
            raise ArgumentError(f"{f.label}.{what} takes one direction per differentiated argument "
                                f"({', '.join(spec.wrt)}): got {len(parts)}")
        return parts
    params = _differentiated(spec)
    names = ", ".join(name for name, _, _ in params)
    parts = [given] if spec.bare else list(given) if isinstance(given, tuple | list) else []
    if len(parts) != len(params):
        raise ArgumentError(f"{f.label}.{what} takes one direction per differentiated argument ({names}), each "
                            f"with that argument's lists, tuples and dicts" + ("" if spec.bare else ", in a tuple"))
    by_leaf: dict[str, Any] = {}
    for (name, tree, leaves), part in zip(params, parts, strict=True):
        found, its_tree = flatten(part)
        if its_tree != tree:
            raise ShapeError(f"{f.label}.{what}: the direction for {name!r} is not nested like {name} "
                             "(pass the same lists, tuples and dicts, with an array of the same shape at each leaf)")
        by_leaf.update(zip(leaves, (leaf for _, leaf in found), strict=True))
    return [by_leaf[w] for w in spec.wrt]


def directions(f: Compiled, spec: Specialization, inputs: Sequence[Any], given: Any, what: str) -> list[Any]:
    """One array per differentiated input (leaf), shaped and typed like it."""
    wrt_values = _wrt_values(spec, inputs)
    out = []
    for w, value, part in zip(spec.wrt, wrt_values, _leaf_parts(f, spec, given, what), strict=True):
        array = np.asarray(part, dtype=np.asarray(value).dtype)
        if array.shape != np.shape(value):
            raise ShapeError(f"{f.label}.{what}: the direction for {w!r} has shape {array.shape}, "
                             f"but {w} has shape {np.shape(value)}")
        out.append(array if array.ndim else array[()])
    return out


def as_given(spec: Specialization, leaves: Sequence[Any]) -> Any:
    """One value per differentiated leaf, arranged as the user passed the arguments (as ``f.grad`` does)."""
    if spec.arguments is None or spec.arguments.is_flat:
        return leaves[0] if spec.bare else tuple(leaves)
    return spec.arguments.gradients(spec.wrt, list(leaves), spec.bare)


# ---------------------------------------------------------------------------
# the methods


def jvp(f: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """``(f(x), J t)``: the value and the Jacobian times the tangents (the last argument)."""
    entry = None if kwargs else f.__dict__.get("_jvp_entry")
    if entry is not None:
        result = entry(args)
        if result is not _MISS:
            return result
    spec, inputs, given = bind(f, args, kwargs, "jvp", 1)
    tangents = directions(f, spec, inputs, given, "jvp")
    value, tangent = derivatives_of(spec).call("jvp", inputs, tangents)
    _remember(f, spec, "jvp")
    return _plain(value), _plain(tangent)


def hvp(f: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``H v``: the Hessian times ``v`` (the last argument), one block per differentiated argument."""
    entry = None if kwargs else f.__dict__.get("_hvp_entry")
    if entry is not None:
        result = entry(args)
        if result is not _MISS:
            return result
    spec, inputs, given = bind(f, args, kwargs, "hvp", 1)
    _scalar_only(f, spec, "hvp")
    result = derivatives_of(spec).call("hvp", inputs, directions(f, spec, inputs, given, "hvp"))
    _remember(f, spec, "hvp")
    return as_given(spec, _plain(result if isinstance(result, tuple) else (result,)))


def _remember(f: Compiled, spec: Specialization, name: str) -> None:
    """After a first call, a fast entry to ``jvp``/``hvp``: one type check of the arguments and directions.

    SciPy's Newton-CG calls ``hessp`` in every CG step; binding the arguments
    and checking the directions the long way costs 20 µs a call, twenty times
    a small Rosenbrock's kernel. The entry takes plain arguments of exactly
    the compiled types (as the gradient's fast entry, diffc/api.py) and
    directions that are arrays of their argument's dtype and shape (a float
    for a scalar); anything else takes the full path, which converts or
    explains. Trees always take the full path.
    """
    key = f"_{name}_entry"
    entry = f.__dict__.get(key)
    if (entry is not None and entry.spec is spec) or spec.arguments is None or not spec.arguments.is_flat:
        return
    work = derivatives_of(spec)
    if spec.constants or work._constants:
        return
    fn = getattr(work.module(), name)
    fits = _fast_entry(lambda *values: True, spec)  # the arguments' type checks, shared with f.grad's entry
    names = [p[0] for p in spec.params]
    count, positions = len(names), [names.index(w) for w in spec.wrt]
    one = len(positions) == 1
    scalar_value = name == "jvp"  # (value, J t) as it is; hvp's blocks as f.grad arranges gradients

    def entry(args: tuple[Any, ...]) -> Any:
        if len(args) != count + 1 or fits(args[:count]) is _MISS:
            return _MISS
        given = (args[count],) if one else args[count]
        if type(given) is not tuple or len(given) != len(positions):
            return _MISS
        for k, d in zip(positions, given, strict=True):
            x = args[k]
            if type(d) is not type(x) or (type(x) is np.ndarray and (d.shape != x.shape or d.dtype != x.dtype)):
                return _MISS
        result = _plain(fn(*args[:count], *given))
        return (result,) if one and not spec.bare and not scalar_value else result

    entry.spec = spec  # type: ignore[attr-defined]
    f.__dict__[key] = entry


def _scalar_only(f: Compiled, spec: Specialization, what: str) -> None:
    if not spec.scalar_output:
        out = spec.forward.outputs[0]
        raise DiffcError(f"{f.label} returns an array ({type_text(out.dtype, out.shape)}), so it has no Hessian; "
                         f"{what} needs a scalar output (use f.jacobian, or f.jvp and f.vjp)")


def jacobian(f: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any], mode: str = "auto",
             compressed: bool = False) -> Any:
    """The Jacobian of each differentiated argument: shape ``out.shape + x.shape`` (as ``jax.jacobian``).

    ``mode="rev"`` pulls back one unit cotangent per output element (a vjp
    each), ``"fwd"`` pushes one unit tangent per input element (a jvp each);
    ``"auto"`` picks the fewer calls. ``compressed=True`` returns what
    :func:`diffc.structure.structure` found instead of the dense array.
    """
    if compressed and not kwargs:
        entry = f.__dict__.get("_diagonal_entry")
        if entry is not None:
            result = entry(args)
            if result is not _MISS:
                return result
    if mode not in MODES:
        raise DiffcError(f"unknown jacobian mode {mode!r}: choose one of {', '.join(MODES)}")
    spec, inputs, _ = bind(f, args, kwargs, "jacobian", 0)
    wrt_values = _wrt_values(spec, inputs)
    if compressed:
        found = as_given(spec, [_compressed(f, spec, inputs, wrt_values, i) for i in range(len(spec.wrt))])
        _remember_diagonal(f, spec)
        return found
    return as_given(spec, _dense(f, spec, inputs, wrt_values, mode))


def _remember_diagonal(f: Compiled, spec: Specialization) -> None:
    """A fast path for ``compressed=True`` when every Jacobian is diagonal: one type check, then one kernel.

    The diagonal is ``Jᵀ1``, one pull-back of a vector of ones, so the call
    should cost what one gradient costs (issue 15's benchmark row); binding
    the arguments and reading the structure on every call cost four times the
    kernel of a 1,000-wide layer. The kernel is the module's ``diagonal``, the
    gradient of ``sum(f(x))``, which also skips the vjp's copy of the value.
    Plain arguments only (trees take the full path).
    """
    entry = f.__dict__.get("_diagonal_entry")
    if (entry is not None and entry.spec is spec) or spec.arguments is None or not spec.arguments.is_flat:
        return
    work = derivatives_of(spec)
    if spec.scalar_output or any(work.structure(x).kind != "diagonal" for x in work.wrt_nodes(spec.forward)):
        return
    if spec.constants or work._constants:  # the entry passes the first module's hidden constants
        return
    f.__dict__["_diagonal_entry"] = _fast_entry(work.module().diagonal, spec)


def _dense(f: Compiled, spec: Specialization, inputs: list[Any], wrt_values: list[np.ndarray], mode: str) -> Any:
    value = np.asarray(f._timed(spec, "forward", inputs))
    work = derivatives_of(spec)

    def pull(u: Any) -> Any:
        grads = f._timed(spec, "vjp", [*inputs, u])[1]
        return (grads,) if spec.module_bare else grads

    return _plain(dense_jacobian(value, wrt_values, pull, lambda t: work.call("jvp", inputs, t)[1], mode))


def _compressed(f: Compiled, spec: Specialization, inputs: list[Any], wrt_values: list[np.ndarray], i: int) -> Any:
    """The compressed Jacobian of the ``i``-th differentiated argument (see diffc/structure.py)."""
    forward = spec.forward
    x = forward.inputs[[p[0] for p in spec.params].index(spec.wrt[i])]
    found = derivatives_of(spec).structure(x)
    if found.kind == "zero":
        return 0.0
    if found.kind == "diagonal":  # Jᵀ1 = the gradient of sum(f(x)) = the diagonal: the price of one gradient
        if spec.scalar_output:  # a scalar of a scalar: the derivative itself
            grads = f._timed(spec, "vjp", [*inputs, spec.forward.outputs[0].dtype.numpy.type(1)])[1]
        else:
            grads = derivatives_of(spec).call("diagonal", inputs, [])
        return _plain(((grads,) if spec.module_bare else grads)[i])
    if found.kind == "linear":
        assert found.factor is not None
        return derivatives_of(spec).factor(found.factor, inputs)
    if found.kind == "block-diagonal":
        return _blocks(spec, inputs, wrt_values, i)
    return _dense(f, spec, inputs, wrt_values, "auto")[i]


def _blocks(spec: Specialization, inputs: list[Any], wrt_values: list[np.ndarray], i: int) -> np.ndarray:
    """Row i's block of a row-wise map, for every row at once: one jvp per column of the input."""
    work = derivatives_of(spec)
    value = wrt_values[i]
    rows, width = value.shape
    columns = []
    for k in range(width):
        e = np.zeros_like(value)
        e[:, k] = 1
        columns.append(np.asarray(work.call("jvp", inputs, unit_directions(wrt_values, i, e))[1]))
    return np.stack(columns, axis=-1)  # (rows, ...out row..., width)


def hessian(f: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The Hessian: ``x.shape + x.shape`` for one argument, else blocks ``H[a][b]`` (as ``jax.hessian``)."""
    spec, inputs, _ = bind(f, args, kwargs, "hessian", 0)
    _scalar_only(f, spec, "hessian")
    wrt_values = _wrt_values(spec, inputs)
    work = derivatives_of(spec)

    def hvp(v: list[Any]) -> Any:
        result = work.call("hvp", inputs, v)
        return result if isinstance(result, tuple) else (result,)

    rows = [as_given(spec, _plain(tuple(row))) for row in dense_hessian(wrt_values, hvp)]
    return as_given(spec, rows)  # H[a][b]: a's structure outside, b's inside (as jax.hessian)


def jacobian_structure(f: Compiled, wrt: str | Sequence[str] | None) -> Structure | tuple[Structure, ...]:
    """The structure of each Jacobian, from the IR of the declared (or last-called) signature."""
    spec = f._declared()
    forward = spec.forward
    by_name = {n.attr("name"): n for n in forward.inputs}
    names = spec.wrt if wrt is None else (wrt,) if isinstance(wrt, str) else tuple(wrt)
    for name in names:
        if name not in by_name:
            raise DiffcError(f"jacobian_structure: {name!r} is not an argument of {forward.name} "
                             f"(arguments: {', '.join(by_name)})")
    found = tuple(structure(forward, by_name[name]) for name in names)
    return found[0] if isinstance(wrt, str) or (wrt is None and spec.bare) else found


# ---------------------------------------------------------------------------
# standalone modules: diffc emit --derivative ...

EMITTABLE = ("grad", "jvp", "vjp", "jacobian", "hvp", "hessian")
# the compiled functions each derivative needs in the module (forward always comes first)
_NEEDS = {"grad": ("value_and_grad", "grad"), "vjp": ("vjp",), "jvp": ("jvp",), "jacobian": ("vjp", "jvp"),
          "hvp": ("hvp",), "hessian": ("hvp",)}
_SCALAR_ONLY = ("grad", "hvp", "hessian")


def emitted(spec: Specialization, which: Sequence[str], annotate: bool) -> tuple[list[FunctionSpec], list[str]]:
    """The compiled functions and the plain Python ones of a standalone module with the derivatives ``which``.

    ``jacobian`` and ``hessian`` are plain Python over the module's own
    ``vjp``/``jvp``/``hvp``, with copies of diffc/support/dense.py's loops, so
    the module builds them exactly as ``f.jacobian`` and ``f.hessian`` do.
    """
    unknown = [w for w in which if w not in EMITTABLE]
    if unknown:
        raise DiffcError(f"unknown derivative {unknown[0]!r}: choose from {', '.join(EMITTABLE)}")
    name = spec.forward.name
    if not spec.wrt:
        raise DiffcError(f"{name} has no floating-point argument to differentiate")
    if not spec.scalar_output:
        scalar = [w for w in which if w in _SCALAR_ONLY]
        if scalar:
            out = spec.forward.outputs[0]
            raise DiffcError(f"{name} returns an array ({type_text(out.dtype, out.shape)}): it has no {scalar[0]} "
                             "(grad, hvp and hessian need a scalar output); emit vjp, jvp or jacobian")
    wanted = {"forward"} | {fn for w in which for fn in _NEEDS[w]}
    every = spec.specs(annotate)
    for s in every:  # a function built on another (a scalar function's vjp on value_and_grad) needs it too
        if s.name in wanted and s.built_on:
            wanted.add(s.built_on)
    found = [s for s in every if s.name in wanted]
    if wanted & {"jvp", "hvp"}:
        found += [s for s in derivatives_of(spec).specs(annotate) if s.name in wanted]
    constants = [c for s in found for c in s.constants]
    if constants:
        raise UnsupportedError(f"{name} uses constant arrays too large to print; a standalone module cannot carry "
                               "them: pass them to the function as arguments instead", op="const")
    texts = [_wrapper(spec, w) for w in ("jacobian", "hessian") if w in which]
    if texts:
        from diffc.support import dense

        texts = [_without_annotations(fn) for fn in dense.EMITTED] + texts
    return found, texts


def emitted_signatures(spec: Specialization, functions: Sequence[FunctionSpec], texts: Sequence[str]) -> list[str]:
    """``name(arguments)`` of every function of an emitted module, for its docstring."""
    params = [p[0] for p in spec.params]
    out = []
    for s in functions:
        extra = [n.attr("name") for n in s.program.inputs[len(params):]] if s.name != "grad" else []
        out.append(f"{s.name}({', '.join([*params, *extra])})")
    mode = _free("mode", params)
    out += [f"jacobian({', '.join(params)}, {mode}='auto')" for t in texts if t.startswith("def jacobian(")]
    out += [f"hessian({', '.join(params)})" for t in texts if t.startswith("def hessian(")]
    return out


def _free(name: str, taken: Sequence[str]) -> str:
    while name in taken:
        name += "_"
    return name


def _wrapper(spec: Specialization, which: str) -> str:
    """The text of the emitted ``jacobian`` or ``hessian``: the module's kernels, called column by column."""
    params = [p[0] for p in spec.params]
    call = ", ".join(params)
    wrt = ", ".join(spec.wrt)
    name = spec.forward.name
    if which == "jacobian":
        mode, u, t = (_free(n, params) for n in ("mode", "u", "t"))
        pull = f"vjp({call}, {u})[1]"
        pull = f"({pull},)" if spec.module_bare else pull
        lines = [f"def jacobian({call}, {mode}=\"auto\"):",
                 f'    """Jacobian of {name} with respect to {wrt}, shaped output + argument (as jax.jacobian).',
                 "",
                 f'    {mode}="rev" takes one vjp per output element, "fwd" one jvp per input element, and',
                 '    "auto" whichever needs fewer calls.',
                 '    """',
                 f"    blocks = dense_jacobian(forward({call}), [{wrt}], lambda {u}: {pull},",
                 f"                            lambda {t}: jvp({call}, *{t})[1], {mode})",
                 "    return blocks[0]" if spec.bare else "    return blocks"]
        return "\n".join(lines)
    v = _free("v", params)
    hvp = f"hvp({call}, *{v})"
    hvp = f"({hvp},)" if len(spec.wrt) == 1 else hvp
    shape = "x.shape + x.shape" if spec.bare else "blocks H[a][b] shaped a.shape + b.shape"
    lines = [f"def hessian({call}):",
             f'    """Hessian of {name} with respect to {wrt}: {shape} (as jax.hessian), one hvp per element."""',
             f"    blocks = dense_hessian([{wrt}], lambda {v}: {hvp})",
             "    return blocks[0][0]" if spec.bare else "    return tuple(tuple(row) for row in blocks)"]
    return "\n".join(lines)


def _without_annotations(fn: Callable[..., Any]) -> str:
    """A support function's source without its type hints (a standalone module imports no typing names)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(fn))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            node.returns = None
            for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
                arg.annotation = None
    return ast.unparse(tree)
