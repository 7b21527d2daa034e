"""The public API: ``diffc.compile`` and the callable it returns.

``compile`` picks the front end from what it is given (a string, a SymPy
expression, a Python callable), and returns a :class:`Compiled` function.
Each argument signature (dtype and rank of every argument, and which axes
have size 1, since NumPy broadcasts those) is traced, differentiated,
simplified, printed and loaded once, under a lock, and reused; sizes stay
symbolic, so one compiled signature serves every size, unless the code needs
a real int from a size (``len(x)``): then each call's sizes get their own
version (docs/sizes.md). Arguments may be trees of arrays (diffc/pytree.py);
the IR sees their leaves.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from diffc import cache
from diffc.adjoint.notes import record_statements
from diffc.adjoint.reverse import reverse
from diffc.codegen.module import FunctionSpec, print_function, render_module
from diffc.codegen.printer import INLINE_CONSTANT_MAX, hidden_constants
from diffc.codegen.validate import check_source
from diffc.dask import is_dask
from diffc.errors import ArgumentError, DiffcError, IndexTypeError, ShapeError, UnsupportedError
from diffc.fallback import NEXT_VARIANT, is_refusal, warn_fallback
from diffc.frontends.trace import SizesNeededError
from diffc.ir import DType, Op, Program, Shape, Sym, parse_type, type_text
from diffc.passes.pipeline import simplify
from diffc.passes.rebuild import rebuild
from diffc.passes.stabilize import stabilize
from diffc.pytree import Arguments, flatten, is_static, leaf_name
from diffc.threads import CAP as _THREADS
from diffc.threads import apply_cap

ArgTypes = Mapping[str, str] | Sequence[str] | None
Param = tuple[str, DType, Shape]


# ---------------------------------------------------------------------------
# the three front ends behind one door


def _is_sympy(obj: Any) -> bool:
    """SymPy objects, recognised without importing SymPy (import diffc stays light)."""
    return type(obj).__module__.split(".")[0] == "sympy"


def _params_from_types(names: Sequence[str], types: Mapping[str, str]) -> list[Param]:
    out = []
    for name in names:
        try:
            dtype, shape = parse_type(types.get(name, "f64"))
        except (TypeError, ValueError) as error:  # ArgumentError and SizeError keep their class
            kind = type(error) if isinstance(error, DiffcError) else DiffcError
            raise kind(f"argument {name!r}: {error}") from None
        out.append((name, dtype, shape))
    return out


def _param_from_value(name: str, value: Any) -> tuple[Param, Any]:
    """Infer a parameter's type from a first call: dtype, rank, size-1 axes."""
    if isinstance(value, bool | np.bool_):
        return (name, DType.BOOL, ()), bool(value)
    if isinstance(value, int | float):
        return (name, DType.F64, ()), float(value)
    array = np.asarray(value)
    dtype = DType.from_numpy(array.dtype)
    shape: Shape = tuple(1 if size == 1 else Sym.named(f"{name}_{axis}" if array.ndim > 1 else f"{name}_n")
                         for axis, size in enumerate(array.shape))
    return (name, dtype, shape), (array if array.ndim else array.item())


SIZE_LETTERS = ("m", "n", "k", "p", "q", "r", "s", "t", "u", "v")


def _name_sizes(program: Program) -> None:
    """Sizes read from a first call (``X_0``, ``w_n``) take the names a person would use.

    A matrix is m by n and a vector has n entries, as in the notes; a size
    that the function named itself (``m, n = X.shape``) keeps its name, and
    the other sizes take the next free letter (k, p, q, ...).
    """
    graph = program.graph

    def resolved(raw: str) -> str | None:
        d = graph.resolve(Sym.named(raw))
        return d.name if isinstance(d, Sym) else None

    named = {resolved(raw) for raw in graph.size_labels}
    taken = set(graph.size_labels.values()) | {n.attr("name") for n in program.inputs}
    for node in program.inputs:
        for axis, d in enumerate(node.shape):
            name = d.name if isinstance(d, Sym) else None
            if name is None or resolved(name) in named:
                continue
            preferred = {1: ("n",), 2: ("m", "n")}.get(node.ndim, ())[axis:axis + 1]
            letter = next((x for x in (*preferred, *SIZE_LETTERS) if x not in taken), None)
            if letter is not None:
                graph.size_labels[name] = letter
                named.add(resolved(name))
                taken.add(letter)


def _signature_key(params: Sequence[Param]) -> tuple[Any, ...]:
    return tuple((dtype, tuple(d == 1 for d in shape)) for _, dtype, shape in params)


# ---------------------------------------------------------------------------
# one compiled signature


@dataclass
class Specialization:
    """Everything built for one argument signature."""

    params: list[Param]
    forward: Program
    backend: str
    wrt: tuple[str, ...]  # the differentiated inputs (leaves)
    bare: bool  # one differentiated argument: its gradient comes back alone, not in a tuple
    arguments: Arguments | None = None  # how the user's arguments map to the inputs (None: one each)
    sized: str = ""  # why this signature is specialised on concrete sizes ("": sizes stay symbolic)
    _grad: Program | None = None
    _vjp: Program | None = None
    _module: ModuleType | None = None
    _constants: tuple[Any, ...] | None = None
    gradient_refused: UnsupportedError | None = None  # why the module has no gradient (an op without an adjoint)
    _key: tuple[str, str] | None = None  # (printer variant, cache key)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict[str, Any] = field(default_factory=dict)  # seconds per stage, and whether the cache hit
    vector_math: bool = True
    annotate: bool = True  # the loaded module's comments (f.source and friends follow Compiled.annotate)
    variant: str = ""  # the printer in use: the back end's own, or a fallback (diffc/fallback.py)

    def __post_init__(self) -> None:
        self.variant = self.variant or self.backend
        self.arguments = self.arguments or Arguments.flat([p[0] for p in self.params])

    @property
    def module_bare(self) -> bool:
        """The generated functions return the one gradient bare (else a tuple, restructured in Python)."""
        return self.bare and self.arguments is not None and self.arguments.is_flat

    @property
    def scalar_output(self) -> bool:
        return len(self.forward.outputs) == 1 and self.forward.outputs[0].shape == ()

    @property
    def several_outputs(self) -> bool:
        """A tuple or dict of values: the value is all of them; reverse mode needs one output."""
        return len(self.forward.outputs) > 1

    @property
    def output_keys(self) -> list[str] | None:
        """The keys of a returned dict (the tracer names a tuple's outputs out0, out1, ...), else None."""
        names = self.forward.output_names
        if not self.several_outputs or names == [f"out{i}" for i in range(len(names))]:
            return None
        return names

    def vjp_program(self) -> Program:
        if self._vjp is None:
            wrt_nodes = [self.forward.inputs[[p[0] for p in self.params].index(w)] for w in self.wrt]
            self._vjp = simplify(reverse(self.forward, wrt_nodes))
        return self._vjp

    def grad_program(self) -> Program:
        """The value-and-gradient program: the scalar cotangent bound to 1.0."""
        if self._grad is None:
            vjp = self.vjp_program()
            cotangent = vjp.inputs[-1]
            one = vjp.graph.const(1.0, cotangent.dtype)
            self._grad = simplify(rebuild(vjp, substitute={cotangent: one}))
        return self._grad

    def layout(self, with_value: bool) -> Any:
        grads: Any = 1 if self.module_bare else tuple(range(1, 1 + len(self.wrt)))
        return (0, grads) if with_value else grads

    def vjp_layout(self) -> Any:
        grads = tuple(range(1, 1 + len(self.wrt)))
        return grads[0] if self.module_bare else grads

    def wrt_text(self) -> str:
        """``w, b``: the differentiated inputs under the names the generated code gives them (a tree's leaf
        under the name the function unpacks it to, ``W1``)."""
        params = [p[0] for p in self.params]
        return ", ".join(self.forward.inputs[params.index(w)].name or w for w in self.wrt)

    def specs(self, annotate: bool | None = None) -> list[FunctionSpec]:
        name = self.forward.name
        layout = tuple(range(len(self.forward.outputs))) if self.several_outputs else 0
        specs = [FunctionSpec("forward", self.forward, layout, f"Value of {name}.")]
        try:
            specs += self._gradient_specs()
        except UnsupportedError as refused:  # the value still runs; a gradient call raises this
            self.gradient_refused = refused
        # constant arrays too large to print are trailing parameters of every function, bound by the calls below
        self._constants = hidden_constants([spec.program for spec in specs])
        annotate = self.annotate if annotate is None else annotate
        return [replace(spec, constants=self._constants, vector_math=self.vector_math, annotate=annotate)
                for spec in specs]

    def _gradient_specs(self) -> list[FunctionSpec]:
        name, wrt = self.forward.name, self.wrt_text()
        specs = []
        if self.scalar_output and self.wrt:
            program = self.grad_program()
            specs.append(FunctionSpec("value_and_grad", program, self.layout(True),
                                      f"Value of {name} and its gradient with respect to {wrt}."))
            specs.append(FunctionSpec("grad", program, None, f"Gradient of {name} with respect to {wrt}.",
                                      delegate=("value_and_grad", 1)))
        if self.wrt and not self.several_outputs:
            vjp_doc = f"Gradients of {name} with respect to {wrt}, pulled back from its cotangent."
            vjp = self.vjp_program()
            vjp_only = Program(vjp.graph, vjp.inputs, vjp.outputs, vjp.output_names, vjp.name)
            built_on = "value_and_grad" if self.scalar_output else None  # the gradient times the cotangent
            specs.append(FunctionSpec("vjp", vjp_only, (0, self.vjp_layout()), vjp_doc, pullback_of=built_on))
        return specs

    @property
    def constants(self) -> tuple[Any, ...]:
        """The large constant arrays every generated function takes last (``_const0, ...``), bound once."""
        if self._constants is None:
            self.specs()
        assert self._constants is not None
        return self._constants

    def source(self, which: str, annotate: bool | None = None) -> str:
        for spec in self.specs(annotate):
            if spec.name == which:
                return print_function(spec, self.variant)
        if self.gradient_refused is not None and which != "forward":
            raise self.gradient_refused.with_traceback(None)
        raise DiffcError(f"{self.forward.name} has no {which} function")

    def module_source(self, doc: str, standalone: bool, annotate: bool | None = None) -> str:
        specs = self.specs(annotate)
        if standalone and self.constants:
            sizes = ", ".join(f"{c.dtype.name}{list(c.shape)}" for c in self.constants)
            raise UnsupportedError(
                f"{self.forward.name} uses constant arrays too large to print ({sizes}: more than "
                f"{INLINE_CONSTANT_MAX} elements, built by the function or captured from its closure); a standalone "
                "module cannot carry them: pass them to the function as arguments instead", op="const")
        text = render_module(specs, self.variant, doc, standalone)
        check_source(text, self.forward.name, cache.writable_cache_dir())
        return text

    def module(self) -> ModuleType:
        """The loaded module; from the disk cache when this signature was compiled before.

        The cache is keyed by the forward IR, the signature, ``wrt``, the back
        end and the versions of diffc (its source), Numba, NumPy and Python;
        on a hit the reverse pass, the passes and printing are skipped, and
        Numba's own cache (keyed by the file's stable path) skips compilation.
        A damaged entry is rebuilt (diffc/cache.py).
        """
        with self.lock:
            if self._module is None:
                started = time.perf_counter()
                large = any(n.op is Op.CONST and n.value.size > INLINE_CONSTANT_MAX for n in self.forward.nodes())

                def text() -> str:
                    source = self.module_source(f"Generated by diffc for {self.forward.name}.", standalone=False)
                    self.stats["codegen"] = time.perf_counter() - started
                    return source

                if large:  # constants that only this process holds: named by the text, never looked up
                    self._module, hit = cache.load_module(text()), False
                else:
                    self._module, hit = cache.load(self.cache_key(), text)
                self.stats["cache"] = "hit" if hit else "miss"
                self.stats["load"] = time.perf_counter() - started - self.stats.get("codegen", 0.0)
            return self._module

    def fall_back(self, label: str, function: str, error: BaseException) -> bool:
        """Switch to the next printer variant after Numba refused ``function``; ``False`` when none is left."""
        variant = NEXT_VARIANT.get(self.variant)
        if variant is None or not is_refusal(error):
            return False
        source = Path(self._module.__file__ or "").read_text() if self._module is not None else ""
        reason = warn_fallback(label, function, variant, error, source)
        with self.lock:
            self.variant = variant
            self._module = None
            self.stats["fallback"] = variant
            self.stats["fallback reason"] = reason
            for key in [k for k in self.stats if k.startswith("first ")]:
                del self.stats[key]
        return True

    def cache_key(self) -> str:
        """The key of this signature's module on disk, made once per printer variant: printing names more nodes
        (graph.names), so a key made after printing would differ from the one a process that found the module
        on disk (and printed nothing) makes."""
        if self._key is None or self._key[0] != self.variant:
            self._key = (self.variant, self._new_key())
        return self._key[1]

    def _new_key(self) -> str:
        names = sorted((n.id, name) for n, name in self.forward.graph.names.items())
        # the IR text shows a constant array by its shape only: its bytes must be part of the key too
        arrays = [hashlib.sha256(n.value.tobytes()).hexdigest() for n in self.forward.nodes()
                  if n.op is Op.CONST and n.value.ndim]
        parts = [self.forward.text(), repr(names), repr(arrays), repr(self.forward.output_names), repr(self.params),
                 repr(self.wrt), repr(self.module_bare), self.variant, f"vector_math={self.vector_math}",
                 f"annotate={self.annotate}", repr(sorted(self.forward.graph.size_labels.items())), cache.versions()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------
# the compiled callable


class Compiled:
    """A compiled differentiable function.

    Call it for the value; ``grad``, ``value_and_grad`` and ``vjp`` for
    derivatives; read ``source``, ``grad_source``, ``ir`` and ``grad_ir``.
    """

    def __init__(self, build: Callable[[list[Param], Arguments], Program], names: list[str] | None,
                 params: list[Param] | None, wrt: str | Sequence[str] | None, backend: str, label: str,
                 defaults: Mapping[str, Any] | None = None) -> None:
        self._build = build
        self._names = names
        self._params = params
        self._wrt = wrt
        self._defaults = dict(defaults) if defaults is not None else None  # a traced function's; None: no trees
        self.backend = backend
        self.label = label
        self._specs: dict[tuple[Any, ...], Specialization | SizesNeededError] = {}
        self._lock = threading.Lock()
        self._last: Specialization | None = None
        self.verbose = False
        self.vector_math = True  # fused loops call diffc's vectorizable exp, log, sin... (False: libm)
        self.annotate = True  # a comment on each adjoint statement of the printed code (its rule); False: none
        self._entries: dict[str, Any] = {}  # fast entries: name -> callable(args) -> result or _MISS
        # all-scalar fast entries: name -> (compiled function, argument types); a bound method taken
        # before the first call (``jac=f.grad``) still reaches the compiled code in one frame
        self._direct: dict[str, tuple[Callable[..., Any], tuple[type, ...]]] = {}
        self._signatures: dict[int, tuple[inspect.Signature, str]] = {}  # by the count of extra arguments

    def __repr__(self) -> str:
        return f"<diffc.Compiled {self.label} backend={self.backend}>"

    # -- specializations --------------------------------------------------------
    def _specialize(self, params: list[Param], arguments: Arguments | None = None,
                    shapes: Sequence[tuple[int, ...]] | None = None) -> Specialization:
        """The compiled signature of ``params``; specialised on ``shapes`` when tracing needs real sizes."""
        arguments = arguments or Arguments.flat([p[0] for p in params])
        key = (arguments.key, _signature_key(params))
        spec = self._specs.get(key) or self._new_spec(key, params, arguments)
        if isinstance(spec, Specialization):
            return spec
        if shapes is None:
            raise DiffcError(
                f"{self.label} needs concrete sizes ({spec.reason}), so diffc compiles it for the sizes of each "
                "call; call it once (f.source then shows the code for that call's sizes), or declare concrete "
                "sizes (args={'x': 'f64[20]'}); docs/sizes.md") from None
        sizes = tuple(tuple(shape) for shape in shapes)
        concrete: list[Param] = [(name, dtype, size) for (name, dtype, _), size in zip(params, sizes, strict=True)]
        sized = self._specs.get((key, sizes)) or self._new_spec((key, sizes), concrete, arguments, spec.reason)
        assert isinstance(sized, Specialization)
        return sized

    def _new_spec(self, key: tuple[Any, ...], params: list[Param], arguments: Arguments,
                  sized: str = "") -> Specialization | SizesNeededError:
        with self._lock:
            spec = self._specs.get(key)
            if spec is not None:
                return spec
            # stable forms first, so that the gradient is derived from them (diffc/passes/stabilize.py)
            started = time.perf_counter()
            try:
                program = self._build(params, arguments)
            except SizesNeededError as needed:
                if sized:  # already concrete: cannot happen, but never loop
                    raise
                self._specs[key] = needed
                return needed
            traced = time.perf_counter()
            record_statements(program)  # the user's statements, before the passes rewrite them (rule comments)
            program = simplify(stabilize(program))
            wrt, bare = self._resolve_wrt(program, arguments)
            spec = Specialization(params, program, self.backend, wrt, bare, arguments, sized,
                                  vector_math=self.vector_math, annotate=self.annotate)
            spec.stats.update(trace=traced - started, passes=time.perf_counter() - traced)
            spec.stats["sizes"] = (f"specialised on the call's sizes: {sized}" if sized else "symbolic"
                                   if any(not isinstance(d, int) for p in params for d in p[2]) else "as declared")
            self._specs[key] = spec
            return spec

    def _wanted(self) -> tuple[str, ...] | None:
        return None if self._wrt is None else (self._wrt,) if isinstance(self._wrt, str) else tuple(self._wrt)

    def _resolve_wrt(self, program: Program, arguments: Arguments | None = None) -> tuple[tuple[str, ...], bool]:
        """The differentiated inputs, and whether the gradient comes back bare.

        ``wrt`` names the user's arguments; an argument that is a tree is
        differentiated in all its float leaves. Without ``wrt``, every
        argument with a float leaf is, except those with a default value
        (options such as ``lam=0.1``, passed or not); one such
        argument gives its gradient bare (as JAX and autograd), more a tuple.
        A ``wrt`` string is bare, a sequence a tuple (JAX's ``argnums``).
        """
        inputs = {n.attr("name"): n for n in program.inputs}
        arguments = arguments or Arguments.flat(list(inputs))
        floats = {name: [leaf for leaf in group if inputs[leaf].dtype.is_float]
                  for name, group, (kind, _) in zip(arguments.names, arguments.leaves, arguments.parts, strict=True)
                  if kind == "tree"}
        wanted = self._wanted()
        if wanted is None:
            chosen = [name for name in arguments.names if floats.get(name) and name not in (self._defaults or ())]
            return tuple(leaf for name in chosen for leaf in floats[name]), len(chosen) == 1
        for w in wanted:
            if w not in floats:
                raise DiffcError(f"wrt names {w!r}, which is not an argument of {program.name} "
                                 f"(arguments: {', '.join(arguments.names)})")
            if not floats[w]:
                leaf = arguments.leaves[arguments.names.index(w)]
                dtype = inputs[leaf[0]].dtype.value if leaf else "empty"
                raise DiffcError(f"cannot differentiate with respect to {w!r}: its dtype {dtype} is not "
                                 "floating point (integer and boolean arguments are data)")
        return tuple(leaf for w in wanted for leaf in floats[w]), isinstance(self._wrt, str)

    def _declared(self) -> Specialization:
        if self._params is None or (self._last is not None and self._last.sized):
            if self._last is not None:
                return self._last
            raise DiffcError(f"{self.label}: argument types are not known until the first call; "
                             "call the function once, or give args={'x': 'f64[n]', ...} or annotations")
        return self._specialize(self._params)

    # -- argument binding -------------------------------------------------------
    def _argument_names(self) -> list[str]:
        """The function's parameters in signature order (traced functions), else the declared ones."""
        return self._names if self._names is not None else [p[0] for p in self._params or []]

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], extra: int = 0) -> tuple[list[Any], set[str]]:
        """The arguments in signature order (defaults filled in), and the names left to their defaults."""
        names = self._argument_names()
        if not kwargs and len(args) == len(names) + extra:
            return list(args), set()
        sig, cotangent = self._signature(names, extra)
        unknown = [k for k in kwargs if k not in sig.parameters]
        if unknown:  # said first: inspect would rather report a missing argument
            raise TypeError(f"{self.label}{sig}: got an unexpected keyword argument {unknown[0]!r}")
        if extra and args and cotangent not in kwargs:  # the cotangent comes last, after any defaults
            args, kwargs = args[:-1], {**kwargs, cotangent: args[-1]}
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{self.label}{sig}: {error}") from None
        omitted = {n for n in names if n not in bound.arguments}
        bound.apply_defaults()
        return [bound.arguments[n] for n in names] + ([bound.arguments[cotangent]] if extra else []), omitted

    def _signature(self, names: Sequence[str], extra: int) -> tuple[inspect.Signature, str]:
        """The signature calls bind to (defaults included; ``vjp``'s cotangent keyword-only, last), built once."""
        known = self._signatures.get(extra)
        if known is not None:
            return known
        cotangent = "cotangent"
        while cotangent in names:  # an argument of the user's may be called cotangent
            cotangent += "_"
        defaults = self._defaults or {}
        parameters = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=defaults.get(n, inspect.Parameter.empty)) for n in names]
        if extra:
            parameters.append(inspect.Parameter(cotangent, inspect.Parameter.KEYWORD_ONLY))
        self._signatures[extra] = inspect.Signature(parameters), cotangent
        return self._signatures[extra]

    def _split(self, values: list[Any], omitted: set[str]) -> tuple[Arguments, list[tuple[str, Any]]]:
        """The call's arguments as leaves: trees flattened, defaulted constants kept aside (pytree.Arguments)."""
        names = self._names or []
        if self._defaults is None or self._params is not None:
            return Arguments.flat(names), list(zip(names, values, strict=True))
        wanted = set(self._wanted() or ())
        used = set(names)
        parts: list[tuple[str, Any]] = []
        groups: list[list[str]] = []
        leaves: list[tuple[str, Any]] = []
        for name, value in zip(names, values, strict=True):
            if name in self._defaults and name not in wanted and (name in omitted or is_static(value)):
                parts.append(("static", value))
                groups.append([])
                continue
            found, tree = flatten(value)
            group = []
            for path, leaf in found:
                leaf_id = leaf_name(name, path)
                while path and leaf_id in used:
                    leaf_id += "_"
                used.add(leaf_id)
                group.append(leaf_id)
                leaves.append((leaf_id, leaf))
            parts.append(("tree", tree))
            groups.append(group)
        return Arguments(names, parts, groups), leaves

    def _prepare(self, values: list[Any], omitted: set[str] | None = None) -> tuple[Specialization, list[Any]]:
        arguments, leaves = self._split(values, omitted or set())
        if self._params is not None:
            declared = self._params
            coerced = [_coerce(v, p) for (_, v), p in zip(leaves, declared, strict=True)]
        else:
            inferred = [_param_from_value(n, v) for n, v in leaves]
            declared = [p for p, _ in inferred]
            coerced = [v for _, v in inferred]
        spec = self._specialize(declared, arguments, [np.shape(v) for v in coerced])
        self._last = spec
        return spec, [_coerce(v, p) for v, p in zip(coerced, spec.params, strict=True)]

    # -- calls --------------------------------------------------------------------
    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        direct = self._direct.get("forward")
        if direct is not None and not kwargs and direct[1](args):
            return direct[0](*args)
        return self._call("forward", args, kwargs)

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The fast entry of ``name`` when the arguments fit it, else the full path."""
        entry = self._entries.get(name)
        if entry is not None and not kwargs:
            result = entry(args)
            if result is not _MISS:
                return result
        if name != "forward":
            return self._value_and_grad(args, kwargs, name)
        spec, values = self._prepare(*self._bind(args, kwargs))
        keys = spec.output_keys
        if keys is None:  # a dict is rebuilt here, so only the other results take the fast entry
            self._remember("forward", spec)
        result = _plain(self._timed(spec, "forward", values))
        return dict(zip(keys, result, strict=True)) if keys is not None else result

    def _timed(self, spec: Specialization, name: str, values: list[Any]) -> Any:
        """Call ``name``; the first call of each is timed (it includes Numba's compilation)."""
        fn = getattr(spec.module(), name)
        apply_cap()  # the fast entry's cap (diffc/threads.py), on this path too
        if f"first {name}" in spec.stats:
            with quiet_numba_hints(spec.variant):  # a new layout or dtype compiles here too
                return fn(*values, *spec.constants)
        started = time.perf_counter()
        try:
            with quiet_numba_hints(spec.variant):
                result = fn(*values, *spec.constants)
        except Exception as error:
            if not spec.fall_back(self.label, name, error):
                raise
            self._forget(spec)
            return self._timed(spec, name, values)
        spec.stats[f"first {name}"] = time.perf_counter() - started
        if self.verbose:
            print(f"diffc: {self.label}: " + ", ".join(
                f"{k} {v:.3f} s" if isinstance(v, float) else f"{k} {v}" for k, v in spec.stats.items()),
                file=sys.stderr)
        return result

    @property
    def stats(self) -> dict[str, Any]:
        """The last signature's seconds per stage (trace, passes, codegen, load, first calls) and ``sizes``.

        ``sizes`` is ``"symbolic"``, ``"as declared"`` (concrete sizes in
        ``args``) or ``"specialised on the call's sizes: <why, and the line>"``.
        """
        spec = self._last or (self._specialize(self._params) if self._params is not None else None)
        return dict(spec.stats) if spec is not None else {}

    def _forget(self, spec: Specialization) -> None:
        """Drop the fast entries into ``spec``'s old module (after a fallback replaced it)."""
        for name in [n for n, entry in self._entries.items() if entry.spec is spec]:  # type: ignore[attr-defined]
            del self._entries[name]
            self._direct.pop(name, None)
            self.__dict__.pop(name, None)

    def _remember(self, name: str, spec: Specialization) -> None:
        """Keep a fast entry to ``name`` of the signature just called (see :func:`_fast_entry`).

        For ``grad`` and ``value_and_grad`` the entry also shadows the method on
        this instance, so a call costs one Python function call and a type check.
        """
        if self._entries.get(name) is not None and self._entries[name].spec is spec:  # type: ignore[attr-defined]
            return
        if spec.arguments is None or not spec.arguments.is_flat:  # trees and defaults: the full path rebuilds them
            return
        entry = _fast_entry(getattr(spec.module(), name), spec)
        self._entries[name] = entry
        direct = getattr(entry, "direct", None)
        if direct is not None:
            self._direct[name] = direct
        if name == "forward":
            return
        full = self._value_and_grad
        if direct is not None:  # an instance attribute: no bound method made per call, as the class's is
            fn, exact = direct

            def method(*args: Any, **kwargs: Any) -> Any:
                if not kwargs and exact(args):
                    return fn(*args)
                return full(args, kwargs, name)
        else:
            def method(*args: Any, **kwargs: Any) -> Any:
                if not kwargs:
                    result = entry(args)
                    if result is not _MISS:
                        return result
                return full(args, kwargs, name)

        method.__doc__ = getattr(type(self), name).__doc__
        setattr(self, name, method)

    def value_and_grad(self, /, *args: Any, **kwargs: Any) -> Any:
        """``(value, gradients)``; after the first call a fast entry shadows this method."""
        direct = self._direct.get("value_and_grad")
        if direct is not None and not kwargs and direct[1](args):
            return direct[0](*args)
        return self._call("value_and_grad", args, kwargs)

    def _value_and_grad(self, args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        if any(is_dask(v) for v in (*args, *kwargs.values())):  # data in Dask arrays: blocks of rows (diffc/dask.py)
            from diffc import dask as diffc_dask

            return diffc_dask.call(self, args, kwargs, name)
        spec, values = self._prepare(*self._bind(args, kwargs))
        _differentiable(spec, self.label)
        if not spec.scalar_output:
            shape = type_text(spec.forward.outputs[0].dtype, spec.forward.outputs[0].shape)
            raise DiffcError(f"{self.label} returns an array ({shape}), so it has no gradient; "
                             "use f.vjp(*args, cotangent) for its vector-Jacobian product")
        self._remember(name, spec)
        result = _plain(self._timed(spec, name, values))
        return self._gradients(spec, result) if name == "grad" else (result[0], self._gradients(spec, result[1]))

    def grad(self, /, *args: Any, **kwargs: Any) -> Any:
        """The gradients; after the first call a fast entry shadows this method."""
        direct = self._direct.get("grad")
        if direct is not None and not kwargs and direct[1](args):
            return direct[0](*args)
        return self._call("grad", args, kwargs)

    def vjp(self, /, *args: Any, **kwargs: Any) -> Any:
        """Gradients pulled back from ``cotangent`` (the last argument), in ``wrt`` order."""
        try:
            values, omitted = self._bind(args, kwargs, extra=1)
        except TypeError as error:  # the signature in the message is vjp's: the function's, then the cotangent
            names = self._argument_names()
            raise ArgumentError(f"{self.label}.vjp({', '.join([*names, 'cotangent'])}) takes the arguments of "
                                f"{self.label}, then the cotangent: {error}") from None
        spec, inputs = self._prepare(values[:-1], omitted)
        _differentiable(spec, self.label)
        out = spec.forward.outputs[0]
        cotangent = np.asarray(values[-1], dtype=out.dtype.numpy)
        if cotangent.ndim != out.ndim:
            raise ShapeError(f"cotangent has shape {cotangent.shape} but {self.label} returns "
                             f"{type_text(out.dtype, out.shape)}")
        return self._gradients(spec, _plain(self._timed(spec, "vjp", [*inputs, cotangent if cotangent.ndim
                                                                      else cotangent[()]])[1]))

    # -- beyond the gradient (diffc/derivatives.py) -------------------------------
    def jvp(self, /, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """``(value, J t)``: forward mode, with the tangents (one per ``wrt``, a tuple for several) last."""
        from diffc import derivatives

        return derivatives.jvp(self, args, kwargs)

    def hvp(self, /, *args: Any, **kwargs: Any) -> Any:
        """The Hessian times ``v`` (the last argument): ``hessp=f.hvp`` for ``scipy.optimize.minimize``."""
        from diffc import derivatives

        return derivatives.hvp(self, args, kwargs)

    def jacobian(self, /, *args: Any, mode: str = "auto", compressed: bool = False, **kwargs: Any) -> Any:
        """The Jacobian, shaped ``out.shape + x.shape``; ``compressed=True``: its structure's compact form."""
        from diffc import derivatives

        return derivatives.jacobian(self, args, kwargs, mode=mode, compressed=compressed)

    def hessian(self, /, *args: Any, **kwargs: Any) -> Any:
        """The Hessian, shaped ``x.shape + x.shape``: ``hess=f.hessian`` for ``scipy.optimize.minimize``."""
        from diffc import derivatives

        return derivatives.hessian(self, args, kwargs)

    def jacobian_structure(self, wrt: str | Sequence[str] | None = None) -> Any:
        """What each Jacobian is (zero, diagonal, linear, block-diagonal, dense), read from the IR."""
        from diffc import derivatives

        return derivatives.jacobian_structure(self, wrt)

    @property
    def jvp_source(self) -> str:
        from diffc.derivatives import derivatives_of

        return derivatives_of(self._declared()).source("jvp", self.annotate)

    @property
    def hvp_source(self) -> str:
        from diffc.derivatives import derivatives_of

        return derivatives_of(self._declared()).source("hvp", self.annotate)

    @staticmethod
    def _gradients(spec: Specialization, grads: Any) -> Any:
        """The generated code's gradients as the user passed the arguments (trees, one bare or a tuple)."""
        if spec.module_bare or spec.arguments is None or spec.arguments.is_flat:
            return grads
        return spec.arguments.gradients(spec.wrt, grads, spec.bare)

    # -- what a person reads -----------------------------------------------------
    @property
    def source(self) -> str:
        return self._declared().source("forward", self.annotate)

    @property
    def grad_source(self) -> str:
        spec = self._declared()
        return spec.source("value_and_grad" if spec.scalar_output else "vjp", self.annotate)

    @property
    def ir(self) -> str:
        return self._declared().forward.text()

    @property
    def grad_ir(self) -> str:
        spec = self._declared()
        return (spec.grad_program() if spec.scalar_output else spec.vjp_program()).text()

    def module_source(self, doc: str = "", standalone: bool = True) -> str:
        return self._declared().module_source(doc or f"Generated by diffc for {self.label}.", standalone,
                                              self.annotate)

    def to_dot(self, grad: bool | None = None, at: Any = None, collapse: bool | str | None = None) -> str:
        """Graphviz DOT of the computation graph, drawn as the lecture notes draw it (diffc/viz.py).

        ``grad=True`` writes each edge's local partial derivative and the
        adjoint nodes (ā); ``at`` (the arguments, positional as a tuple or by
        name as a dict) adds every node's value and adjoint at that point, and
        implies ``grad`` unless ``grad=False``. ``collapse`` clusters named
        sub-expressions (default: for graphs of more than 60 nodes), or with
        ``"loops"`` the nodes of each loop the Numba back end fuses.
        """
        from diffc import viz

        spec, values = (self._declared(), None) if at is None else self._prepare(*self._bind(*_point(at)))
        program = spec.forward
        wrt = [program.inputs[[p[0] for p in spec.params].index(w)] for w in spec.wrt]
        grad = at is not None if grad is None else grad
        found = viz.evaluate(program, values, wrt if grad else []) if values is not None else (None, None)
        return viz.to_dot(program, grad=grad, wrt=wrt, values=found[0], adjoints=found[1], collapse=collapse)

    def render(self, path: str | Path, grad: bool | None = None, at: Any = None, collapse: bool | str | None = None,
               **options: Any) -> Path:
        """Draw :meth:`to_dot`'s picture into ``path`` (.svg, .png, .pdf) with Graphviz's ``dot``.

        Other keywords are Graphviz graph attributes (``dpi=150``); without
        ``dot`` installed, a :class:`~diffc.errors.GraphvizError` says how to get it.
        """
        from diffc import viz

        return viz.render(self.to_dot(grad=grad, at=at, collapse=collapse), path, options)

    def _repr_svg_(self) -> str | None:
        """The picture with partials in a notebook; None without ``dot``, so Jupyter shows the text form."""
        from diffc import viz

        try:
            return viz.svg_or_none(self.to_dot(grad=True))
        except DiffcError:  # types unknown until the first call: nothing to draw yet
            return None

    def _repr_markdown_(self) -> str | None:
        """Without ``dot``, the DOT text as a code block (paste it into any Graphviz viewer)."""
        import shutil

        if shutil.which("dot") is not None:
            return None  # the SVG is shown
        try:
            return f"```dot\n{self.to_dot(grad=True)}```"
        except DiffcError:
            return None

    def signature(self) -> str:
        """``e(a: f64, b: f64)``: the declared (or first-call) signature, sizes symbolic."""
        spec = self._declared()
        args = ", ".join(f"{name}: {type_text(dtype, shape)}" for name, dtype, shape in spec.params)
        return f"{spec.forward.name}({args})"

    @property
    def wrt(self) -> tuple[str, ...]:
        return self._declared().wrt


def _point(at: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``to_dot(at=...)``'s arguments: a dict by name, a tuple positional, anything else the one argument."""
    if isinstance(at, Mapping):
        return (), dict(at)
    return (tuple(at) if isinstance(at, tuple) else (at,)), {}


def _coerce(value: Any, param: Param) -> Any:
    """Python numbers to the parameter's dtype; arrays checked for rank."""
    name, dtype, shape = param
    if dtype in (DType.I64, DType.I32) and np.asarray(value).dtype.kind == "f":  # as NumPy refuses float indices
        raise IndexTypeError(f"argument {name!r} is {type_text(dtype, shape)} (integers: labels, indices), got "
                             f"{np.asarray(value).dtype} values; pass integers")
    if not shape:
        if isinstance(value, np.ndarray) and value.ndim:
            raise ShapeError(f"argument {name!r} must be a scalar ({type_text(dtype, shape)}), got shape {value.shape}")
        if not dtype.is_float and isinstance(value, float | np.floating):
            raise ArgumentError(f"argument {name!r} must be {type_text(dtype, shape)}, got the float {value!r}")
        # a NumPy scalar, not a Python float: 1.0 / 0.0 is inf and (-8.0) ** 0.5 is nan, as in NumPy
        return dtype.numpy.type(value) if dtype.is_float else value
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.ndim != len(shape):
        raise ShapeError(f"argument {name!r} has shape {array.shape} but must be {type_text(dtype, shape)} "
                         f"(rank {len(shape)})")
    if array.dtype != dtype.numpy:
        if not np.can_cast(array.dtype, dtype.numpy, "same_kind"):  # float labels: NumPy's IndexError, not a cast
            raise ArgumentError(f"argument {name!r} must be {type_text(dtype, shape)}, got {array.dtype} values "
                                f"(NumPy does not cast {array.dtype} to {dtype.numpy} silently)")
        array = array.astype(dtype.numpy)
    for axis, d in enumerate(shape):
        if d == 1 and array.shape[axis] != 1:
            raise ShapeError(f"argument {name!r} has shape {array.shape} but must be {type_text(dtype, shape)}")
    return array


_MISS = object()  # a fast entry's answer when the arguments need the full path


def _differentiable(spec: Specialization, label: str) -> None:
    """What every derivative needs (gradients, vjp, jvp, hvp, Jacobians): one output (several, a tuple or a
    dict, are refused with what to do), a floating-point argument, and an adjoint for every op (else the
    module holds the value alone, and the refusal is raised here)."""
    if spec.several_outputs:
        names = ", ".join(spec.forward.output_names)
        raise DiffcError(f"{label} returns {len(spec.forward.outputs)} values ({names}); a gradient or vjp needs "
                         "one output: return the loss alone (or differentiate a function that picks one); "
                         "f(*args) gives all of them")
    if not spec.wrt:
        raise DiffcError(f"{label} has no floating-point argument to differentiate")
    spec.module()
    if spec.gradient_refused is not None:
        raise spec.gradient_refused.with_traceback(None)


def _exact_types(types: tuple[type, ...]) -> Callable[[tuple[Any, ...]], bool]:
    """A test that the arguments are exactly of ``types``: written out for up to four arguments, where a
    call of a small function is all the cost there is (``tuple(map(type, args)) == types`` took 0.36 µs of
    W7's 1.3 µs; this, 0.1)."""
    count = len(types)
    if count > 4:
        return lambda args: tuple(map(type, args)) == types
    a, b, c, d = (*types, None, None, None, None)[:4]
    return {0: lambda args: not args,
            1: lambda args: len(args) == 1 and type(args[0]) is a,
            2: lambda args: len(args) == 2 and type(args[0]) is a and type(args[1]) is b,
            3: lambda args: len(args) == 3 and type(args[0]) is a and type(args[1]) is b and type(args[2]) is c,
            4: lambda args: (len(args) == 4 and type(args[0]) is a and type(args[1]) is b and type(args[2]) is c
                             and type(args[3]) is d)}[count]


def _fast_entry(fn: Callable[..., Any], spec: Specialization) -> Callable[[tuple[Any, ...]], Any]:
    """A call path that only checks each argument's type, then calls the compiled code.

    Positional arguments of exactly the compiled types (a Python float for
    an f64 scalar; an ndarray of the right dtype and rank) go straight in;
    anything else (ints to convert, keywords, other ranks) answers ``_MISS``
    and takes the full path, which converts or raises the friendly error.
    Sizes are checked inside the compiled code, except by a signature
    specialised on sizes, whose entry takes only those sizes.
    """
    checks: list[tuple[Any, int]] = []
    shapes: list[Any] = []
    for _, dtype, shape in spec.params:
        shapes.append(shape if spec.sized and shape else None)
        if not shape:
            checks.append((float if dtype.is_float else int if dtype is not DType.BOOL else bool, -1))
        elif any(d == 1 for d in shape) and not spec.sized:
            checks.append((None, -2))  # size-1 axes are checked on the full path
        else:
            checks.append((dtype.numpy, len(shape)))
    sized = any(shape is not None for shape in shapes)
    count = len(checks)
    constants = tuple(spec.constants)
    plain = not hasattr(fn, "py_func")  # not a Numba dispatcher: NumPy statements, whose scalars are NumPy's
    parallel = "numba.prange(" in Path(spec.module().__file__ or "").read_text()

    scalar_types = tuple(kind for kind, _ in checks) if all(rank == -1 for _, rank in checks) else None

    exact = _exact_types(scalar_types) if scalar_types is not None else None

    def entry(args: tuple[Any, ...]) -> Any:
        if exact is not None:  # all scalars: the types compared, written out
            if not exact(args):
                return _MISS
        elif len(args) != count:
            return _MISS
        else:
            for value, (kind, rank) in zip(args, checks):  # noqa: B905 - lengths checked above
                if rank == -1:
                    if type(value) is not kind:
                        return _MISS
                elif (type(value) is not np.ndarray or value.ndim != rank or value.dtype != kind or 1 in value.shape
                      or not value.flags.c_contiguous):
                    # a size-1 axis may broadcast: the full path decides, as on a first call; another layout is a
                    # new Numba compile, which the full path makes with Numba's hints quiet
                    return _MISS
            if sized and any(shape is not None and value.shape != shape
                             for value, shape in zip(args, shapes)):  # noqa: B905 - lengths checked above
                return _MISS
        if parallel and _THREADS[0] is not None:
            apply_cap()
        result = fn(*args, *constants)
        return _plain(result) if plain else result

    entry.spec = spec  # type: ignore[attr-defined]
    if scalar_types is not None and not constants and not plain and not parallel:
        entry.direct = (fn, exact)  # type: ignore[attr-defined]  # nothing to add: skip a frame (W7)
    return entry


@contextlib.contextmanager
def quiet_numba_hints(variant: str) -> Iterator[None]:
    """Numba's performance hints, silenced: they point at generated lines the user cannot change (a
    parallel flag on an array expression's own function, '@' of a strided argument), not at theirs."""
    with warnings.catch_warnings():
        if variant != "numpy":
            from numba.core.errors import NumbaPerformanceWarning

            warnings.simplefilter("ignore", NumbaPerformanceWarning)
        yield


def _plain(result: Any) -> Any:
    """NumPy scalars come back as Python floats, inside tuples too."""
    if isinstance(result, tuple):
        return tuple(_plain(x) for x in result)
    if isinstance(result, np.generic):
        return result.item()
    if isinstance(result, np.ndarray) and result.ndim == 0:
        return result.item()
    return result


# ---------------------------------------------------------------------------
# entry points


def compile(fn_or_expr: Any, wrt: str | Sequence[str] | None = None, args: ArgTypes = None,  # noqa: A001
            backend: str = "numba", verbose: bool = False, vector_math: bool = True,
            annotate: bool = True) -> Compiled:
    """Compile a NumPy function, an expression string or a SymPy expression.

    ``args`` gives argument types (``{"w": "f64[n]", "b": "f64"}``) or, for
    strings and SymPy, an order (``["a", "b"]``); ``wrt`` names the inputs to
    differentiate (default: every floating-point input, as a tuple).
    ``verbose=True`` prints the time of each stage at the first call
    (also in ``f.stats``); ``vector_math=False`` makes fused loops call libm
    instead of diffc's vectorizable elementary functions; ``annotate=False``
    leaves out the comment that names each adjoint statement's rule
    (``# mul switches: e = c * d``) in ``f.grad_source`` and emitted modules.
    """
    compiled = _compile(fn_or_expr, wrt, args, backend)
    compiled.verbose = verbose
    compiled.vector_math = vector_math
    compiled.annotate = annotate
    return compiled


def _compile(fn_or_expr: Any, wrt: str | Sequence[str] | None, args: ArgTypes, backend: str) -> Compiled:
    if backend not in ("numba", "numpy"):
        raise DiffcError(f"unknown backend {backend!r}: choose 'numba' or 'numpy'")
    if isinstance(fn_or_expr, Program):  # IR built by hand (tests, other front ends)
        return _from_program(fn_or_expr, wrt, backend, fn_or_expr.name)
    if isinstance(fn_or_expr, str):
        from diffc.frontends.text import parse_text

        program = parse_text(fn_or_expr, args)
        return _from_program(program, wrt, backend, repr(fn_or_expr))
    if _is_sympy(fn_or_expr):
        from diffc.frontends.sympy import from_sympy

        program = from_sympy(fn_or_expr, args)
        return _from_program(program, wrt, backend, str(fn_or_expr))
    if callable(fn_or_expr):
        return _from_function(fn_or_expr, wrt, args, backend)
    raise DiffcError(f"diffc.compile takes a function, an expression string or a SymPy expression, "
                     f"not {type(fn_or_expr).__name__}")


def _from_program(program: Program, wrt: Any, backend: str, label: str) -> Compiled:
    params = [(n.attr("name"), n.dtype, n.shape) for n in program.inputs]
    compiled = Compiled(lambda _params, _arguments: program, [p[0] for p in params], params, wrt, backend, label)
    compiled._resolve_wrt(program)  # the signature is known: refuse an unknown wrt name now
    return compiled


def _from_function(fn: Callable[..., Any], wrt: Any, args: ArgTypes, backend: str) -> Compiled:
    from diffc.frontends.trace import annotation_types, signature_names, trace

    names = signature_names(fn)
    if args is not None and not isinstance(args, Mapping):
        raise ArgumentError(f"for a function, args must map argument names to types (args={{'x': 'f64[n]'}}), "
                            f"not {type(args).__name__} {args!r}; its signature fixes the order")
    types = dict(args or {})
    unknown = sorted(set(types) - set(names))
    if unknown:
        raise DiffcError(f"args names {', '.join(unknown)}, not arguments of {getattr(fn, '__name__', fn)} "
                         f"(arguments: {', '.join(names)})")
    for name, text in annotation_types(fn).items():
        types.setdefault(name, text)
    _params_from_types(list(types), types)  # a bad type is refused now, not at the first call
    for name, value in _defaults(fn, names).items():  # a defaulted number types itself: args= need not name it
        text = _scalar_type(value)
        if name not in types and text is not None:
            types[name] = text
    params = _params_from_types(names, types) if set(names) <= set(types) else None
    inferred = params is None  # sizes come from the first call: X_0, w_n until _name_sizes names them

    def build(params: list[Param], arguments: Arguments) -> Program:
        program = trace(fn, params, arguments=arguments.arguments)
        if inferred:
            _name_sizes(program)
        if program.output_names == ["out"] and program.name != "lambda_":
            program.output_names = [program.name]
        return program

    label = getattr(fn, "__name__", type(fn).__name__)
    return Compiled(build, names, params, wrt, backend, label, defaults=_defaults(fn, names))


def _scalar_type(value: Any) -> str | None:
    """The type of a default that is a plain number (``alpha=1.0`` is f64, ``m=10`` is i64), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (float, np.floating)):
        return "f32" if isinstance(value, np.float32) else "f64"
    if isinstance(value, (int, np.integer)):
        return "i64"
    return None


def _defaults(fn: Callable[..., Any], names: Sequence[str]) -> dict[str, Any]:
    """The default values of the traced parameters: a call may leave them out (then they are constants)."""
    parameters = inspect.signature(fn).parameters
    return {n: parameters[n].default for n in names if parameters[n].default is not inspect.Parameter.empty}


def emit(source: Any, args: ArgTypes = None, wrt: str | Sequence[str] | None = None, name: str | None = None,
         backend: str = "numba", command: str | None = None, annotate: bool = True,
         derivatives: str | Sequence[str] | None = None) -> str:
    """The source of a standalone module with ``forward``, ``grad``, ``value_and_grad`` and ``vjp``.

    ``derivatives`` chooses instead (one name or several): ``grad``
    (``value_and_grad`` and ``grad``), ``vjp``, ``jvp``, ``jacobian`` (with
    the ``vjp`` and ``jvp`` it calls), ``hvp`` or ``hessian`` (with ``hvp``);
    ``forward`` is always there. The module imports only NumPy (and Numba
    for ``backend="numba"``), and needs no diffc. Its docstring records the
    source, the signature, ``wrt``, the diffc version and ``command``, the
    command that regenerates it.
    """
    from diffc import __version__
    from diffc.derivatives import emitted, emitted_signatures

    compiled = compile(source, wrt=wrt, args=args, backend=backend, annotate=annotate)
    if compiled._params is None:
        raise DiffcError(f"{compiled.label}: emit needs argument types; give args "
                         "(for example --args 'w:f64[n] X:f64[m,n]') or annotations")
    spec = compiled._declared()
    if name:
        spec.forward.name = name
    which = (derivatives,) if isinstance(derivatives, str) else tuple(derivatives or ())
    lines = [f"Gradient code generated by diffc {__version__} ({backend} back end); it needs no diffc.", ""]
    lines += ["Source:", *("    " + line for line in _source_text(source).splitlines()), ""]
    lines.append(f"Signature: {compiled.signature()}")
    lines.append(f"Gradient with respect to: {', '.join(spec.wrt) or '(nothing)'}")
    if which:
        functions, python = emitted(spec, which, annotate)
        lines.append("Functions: " + ", ".join(emitted_signatures(spec, functions, python)))
        if command:
            lines += ["", "Regenerate with:", f"    {command}"]
        text = render_module(functions, spec.variant, "\n".join(lines), True, python)
        check_source(text, spec.forward.name, cache.writable_cache_dir())
        return text
    functions = ["forward"] + (["value_and_grad", "grad"] if spec.scalar_output and spec.wrt else [])
    functions += ["vjp"] if spec.wrt else []
    params = ", ".join(p[0] for p in spec.params)
    cotangent = f"{spec.forward.output_names[0]}_bar"
    lines.append("Functions: " + ", ".join(f"{fn}({params}{', ' + cotangent if fn == 'vjp' else ''})"
                                           for fn in functions))
    if command:
        lines += ["", "Regenerate with:", f"    {command}"]
    return spec.module_source("\n".join(lines), standalone=True, annotate=annotate)


def _source_text(source: Any) -> str:
    if isinstance(source, str):
        return source.strip()
    if isinstance(source, Program):
        return source.text()
    if callable(source) and not _is_sympy(source):
        try:
            return inspect.getsource(source).rstrip()
        except (OSError, TypeError):
            return getattr(source, "__qualname__", repr(source))
    return str(source)


def grad(fn: Any, wrt: str | Sequence[str] | None = None, **options: Any) -> Callable[..., Any]:
    """``diffc.grad(f)(*args)``: the gradient, with ``compile``'s defaults."""
    return compile(fn, wrt=wrt, **options).grad


def jacobian(fn: Any, wrt: str | Sequence[str] | None = None, mode: str = "auto",
             compressed: bool = False, **options: Any) -> Callable[..., Any]:
    """``diffc.jacobian(f, mode="rev"|"fwd"|"auto")(*args)``: the Jacobian, shaped as ``jax.jacobian``'s."""
    compiled = compile(fn, wrt=wrt, **options)
    return lambda *args, **kwargs: compiled.jacobian(*args, mode=mode, compressed=compressed, **kwargs)


def hessian(fn: Any, wrt: str | Sequence[str] | None = None, **options: Any) -> Callable[..., Any]:
    """``diffc.hessian(f)(*args)``: the Hessian of a scalar function."""
    return compile(fn, wrt=wrt, **options).hessian


def value_and_grad(fn: Any, wrt: str | Sequence[str] | None = None, **options: Any) -> Callable[..., Any]:
    """``diffc.value_and_grad(f)(*args)``: ``(value, gradient)``."""
    return compile(fn, wrt=wrt, **options).value_and_grad
