"""Names never change meaning: a user may name anything what the generated code names its own things.

The generator builds one program per group of hostile names: its arguments,
its intermediate variables, its output and the function itself are named
exactly what the printers call their own loop indices, chunk counters,
partial-sum arrays, helper functions and module globals (the reserved list of
``diffc/codegen/naming.py`` and the bases the loop printers pass to the
Namer), plus Python's keywords and builtins. The same program with safe names,
compiled by the NumPy back end, is the reference: values and gradients must
agree on the NumPy back end and on the Numba back end's module run as plain
Python with every parallel loop forced into several chunks; a small sample,
including a parameter named ``chunks`` as a scalar, a vector and a matrix,
goes through real Numba.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from plain_numba import call_plain, load_compiled

import diffc
from diffc.codegen.naming import GENERATED_NAMES, RESERVED, sanitize
from diffc.ir import DType, Graph, Op, Program, Sym

# names the printers derive from others (a variable's parts and chunk accumulator, a size, an element,
# a split part, a hidden constant, a gradient), as a user might spell them
DERIVED = ("x_parts", "sum__parts", "sum__chunk", "u_chunk", "u_parts", "x_n", "x_0", "x_i", "u_i", "x_all",
           "u_block", "u_weight", "u_next", "sum_", "sum__2", "forward_part1", "grad_part1", "c0", "_const0",
           "x_bar", "out", "out_bar", "f", "cotangent", "lambda_", "sum__", "chunks_2", "i_2", "j_2")

HOSTILE = sorted(set(RESERVED) | set(GENERATED_NAMES) | set(DERIVED) | set(keyword.kwlist)
                 | {n for n in dir(builtins) if n.isidentifier()})


def groups(names: Sequence[str], size: int) -> list[tuple[str, ...]]:
    """Every name once, in groups of ``size`` (the last group padded from the start)."""
    padded = list(names) + list(names[:(-len(names)) % size])
    return [tuple(padded[k:k + size]) for k in range(0, len(padded), size)]


def build(names: Sequence[str], out: str, fn_name: str) -> Program:
    """a: f64[n], b: f64[n], c: f64, d: f64[m,n]; u = sin(a) * b; v = tanh(d @ a);
    out = sum(u * c) + sum(v) + c * c: parallel reductions, a row loop, a scalar."""
    g = Graph()
    a = g.input(names[0], DType.F64, (Sym.named("n"),))
    b = g.input(names[1], DType.F64, (Sym.named("n"),))
    c = g.input(names[2], DType.F64, ())
    d = g.input(names[3], DType.F64, (Sym.named("m"), Sym.named("n")))
    u = g.apply(Op.MUL, g.apply(Op.SIN, a), b)
    v = g.apply(Op.TANH, d @ a)
    g.names[u], g.names[v] = names[4], names[5]
    total = (g.apply(Op.SUM, u * c, axis=(0,), keepdims=False) + g.apply(Op.SUM, v, axis=(0,), keepdims=False)
             + c * c)
    return Program(g, [a, b, c, d], [total], [out], name=fn_name)


def inputs(seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=7), rng.normal(size=7), float(rng.normal()), rng.normal(size=(5, 7))]


SAFE = ("a0", "a1", "a2", "a3", "v4", "v5")


def reference(args: list[Any]) -> tuple[float, tuple[Any, ...]]:
    value, grads = diffc.compile(build(SAFE, "out", "f"), backend="numpy").value_and_grad(*args)
    return value, tuple(grads) if isinstance(grads, tuple) else (grads,)


def compare(got: tuple[Any, Any], want: tuple[float, tuple[Any, ...]], what: str) -> None:
    value, grads = got
    grads = tuple(grads) if isinstance(grads, tuple) else (grads,)
    np.testing.assert_allclose(value, want[0], rtol=1e-12, err_msg=f"{what}: value")
    assert len(grads) == len(want[1]), what
    for k, (mine, theirs) in enumerate(zip(grads, want[1], strict=True)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14, err_msg=f"{what}: gradient {k}")


GROUPS = groups(HOSTILE, 6)


def test_the_generator_covers_every_reserved_and_generated_name() -> None:
    covered = {n for group in GROUPS for n in group}
    assert set(RESERVED) | set(GENERATED_NAMES) <= covered
    assert {"chunks", "chunk", "i", "j", "np", "numba", "forward", "lambda", "sum"} <= covered


def test_sanitize_renames_reserved_names_readably() -> None:
    assert sanitize("lambda") == "lambda_"
    assert sanitize("np") == "np_"
    assert sanitize("sum") == "sum_"
    assert sanitize("__class__").startswith("u__")
    for name in RESERVED:
        assert sanitize(name) not in RESERVED and sanitize(name).isidentifier()


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "-".join(g[:2]))
def test_hostile_names_numpy_and_plain_numba(group: tuple[str, ...]) -> None:
    """Arguments, variables, output and function all named by the group: both back ends agree with the
    safely named reference (the Numba module as plain Python, every parallel loop in several chunks)."""
    args = inputs(len(group[0]))
    want = reference(args)
    program = build(group, group[-1], group[0])
    compare(diffc.compile(program, backend="numpy").value_and_grad(*args), want, f"numpy {group}")
    namespace = load_compiled(diffc.compile(program, backend="numba"), parallel_threshold=0)
    compare(call_plain(namespace["value_and_grad"], *args), want, f"plain numba {group}")


def test_the_loop_gets_the_number_and_the_user_keeps_the_name() -> None:
    """A user's ``chunks`` stays ``chunks``; the parallel loop's counter is a fresh ``chunks_2``."""
    text = diffc.compile(build(("chunks", "chunk", "i", "j", "chunks_2", "start"), "stop", "f"),
                         backend="numba")._declared().module_source("", standalone=True)
    assert "def forward(chunks, chunk, i, j):" in text
    assert "for chunk_2 in numba.prange(chunks_2):" in text


TRACED = [
    ("chunks", "def f(x, chunks):\n    return np.sum(np.sin(x) * chunks)\n"),
    ("chunk", "def f(chunk, i):\n    return np.sum(np.sin(chunk) * i)\n"),
    ("sum", "def f(sum, range, np_):\n    return np.sum(np.tanh(sum) * range) * np_\n"),
]


def traced(text: str) -> Any:
    """The test's own function text (never a user's), defined in a namespace with NumPy."""
    namespace: dict[str, Any] = {"np": np}
    exec(compile(text, "<test_names>", "exec"), namespace)  # noqa: S102 - the test's own source
    return namespace["f"]


@pytest.mark.parametrize("rank", [0, 1, 2], ids=["scalar", "vector", "matrix"])
def test_real_numba_parameter_named_chunks(rank: int) -> None:
    """The issue's case: ``chunks`` as a scalar, a vector and a matrix parameter of a parallel loop (large
    enough to run in chunks), real Numba against NumPy's value and the NumPy back end's gradient."""
    fn = traced("def f(x, chunks):\n    return np.sum(np.sin(x) * chunks)\n")
    rng = np.random.default_rng(rank)
    shape = (600, 500) if rank == 2 else (300_000,)
    args = [rng.normal(size=shape), rng.normal(size=shape) if rank else float(rng.normal())]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = diffc.compile(fn)
        got = compiled.value_and_grad(*args)
    assert "fallback" not in compiled.stats
    np.testing.assert_allclose(got[0], fn(*args), rtol=1e-9)
    want = diffc.compile(fn, backend="numpy").value_and_grad(*args)
    for mine, theirs in zip(got[1], want[1], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-9)
    assert "numba.prange(chunks_2)" in compiled.source or (rank == 2 and "prange" not in compiled.source)


@pytest.mark.parametrize("name,text", TRACED, ids=[t[0] for t in TRACED])
def test_traced_hostile_parameters_both_back_ends(name: str, text: str) -> None:
    """Traced functions whose parameters are loop and builtin names; plain-Python Numba module with
    chunks forced, and the NumPy back end, against NumPy's value and the safe reference."""
    fn = traced(text)
    rng = np.random.default_rng(0)
    args = [rng.normal(size=9), rng.normal(size=9)] + ([1.5] if "np_" in text else [])
    safe = traced(text.replace("chunks", "q0").replace("chunk", "q1").replace("(sum,", "(q2,")
                  .replace("tanh(sum)", "tanh(q2)").replace("range", "q3").replace(", i)", ", q4)")
                  .replace("* i)", "* q4)").replace("* np_", "* q5").replace(", np_)", ", q5)"))
    want = diffc.compile(safe, backend="numpy").value_and_grad(*args)
    got = diffc.compile(fn, backend="numpy").value_and_grad(*args)
    np.testing.assert_allclose(got[0], fn(*args), rtol=1e-12)
    compare(got, (want[0], tuple(want[1]) if isinstance(want[1], tuple) else (want[1],)), f"numpy {name}")
    types = {p: "f64[n]" for p in fn.__code__.co_varnames[:2]} | ({"np_": "f64"} if "np_" in text else {})
    namespace = load_compiled(diffc.compile(fn, args=types), parallel_threshold=0)
    compare(call_plain(namespace["value_and_grad"], *args),
            (want[0], tuple(want[1]) if isinstance(want[1], tuple) else (want[1],)), f"plain numba {name}")


def test_sympy_symbols_named_like_keywords_and_loop_names() -> None:
    """SymPy symbols may be named anything, keywords included: renamed apart, same numbers."""
    sympy = pytest.importorskip("sympy")
    names = ["lambda", "lambda_", "chunks", "np", "i", "forward"]
    symbols = sympy.symbols(names)
    expr = sum((k + 1) * sympy.sin(s) * symbols[0] for k, s in enumerate(symbols))
    values = [0.1 * (k + 1) for k in range(len(names))]
    safe = sympy.symbols([f"s{k}" for k in range(len(names))])
    want = diffc.compile(expr.subs(dict(zip(symbols, safe, strict=True)), simultaneous=True),
                         args=[str(s) for s in safe], backend="numpy").value_and_grad(*values)
    for backend in ("numpy", "numba-plain"):
        compiled = diffc.compile(expr, args=names, backend="numpy" if backend == "numpy" else "numba")
        got = compiled.value_and_grad(*values) if backend == "numpy" else \
            call_plain(load_compiled(compiled)["value_and_grad"], *values)
        compare(got, (want[0], tuple(want[1])), backend)


def text_names() -> list[str]:
    """The hostile names the text front end accepts as variables (not keywords, its functions or dunders)."""
    from diffc.frontends.text import FUNCTIONS

    return [n for n in HOSTILE if n.isidentifier() and not keyword.iskeyword(n) and n not in FUNCTIONS
            and not n.startswith("__") and n not in ("True", "False", "None")]


@pytest.mark.parametrize("group", groups(text_names(), 4), ids=lambda g: "-".join(g[:2]))
def test_hostile_names_in_expression_text(group: tuple[str, ...]) -> None:
    """Arguments and an assignment target of a text program named by the group, both back ends."""
    a, b, c, t = group
    template = "{t} = sin({a}) * {b} + {c}\nsum({t} * {a}) + {c} * {c}"
    types = {"{a}": "f64[n]", "{b}": "f64[n]", "{c}": "f64"}
    if len({a, b, c, t}) < 4:
        pytest.skip("a padded group repeats a name")
    rng = np.random.default_rng(0)
    args = [rng.normal(size=6), rng.normal(size=6), 0.7]
    safe = diffc.compile(template.format(t="q", a="p0", b="p1", c="p2"), backend="numpy",
                         args={k.format(a="p0", b="p1", c="p2"): v for k, v in types.items()})
    want = safe.value_and_grad(*args)
    want = (want[0], tuple(want[1]))
    source = template.format(t=t, a=a, b=b, c=c)
    hostile_types = {k.format(a=a, b=b, c=c): v for k, v in types.items()}
    compare(diffc.compile(source, args=hostile_types, backend="numpy").value_and_grad(*args), want, f"numpy {group}")
    namespace = load_compiled(diffc.compile(source, args=hostile_types), parallel_threshold=0)
    compare(call_plain(namespace["value_and_grad"], *args), want, f"plain numba {group}")


# -- the user's own names in traced code (frames): the notes' logistic regression, rewrites, collisions --

BACKENDS = ("numpy", "numba")
LOGISTIC_TYPES = {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}
OP_NAMES = re.compile(r"^\s*(add|sub|mul|div|neg|exp|log|matmul|sum|mean)(_\d+)? = ", re.M)  # names of ops alone


def notes_logistic(w, b, X, y):  # noqa: N803 - X: the notes' name for the data matrix
    m, n = X.shape
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def notes_logistic_p(w, b, X, y):  # noqa: N803 - the same with the sigmoid named p: the name is the user's
    z = X @ w + b
    p = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_data() -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(11, 3))  # noqa: N806
    return rng.normal(size=3), -0.2, X, (rng.random(11) > 0.5).astype(float)


def grad_of(compiled: Any, backend: str, *args: Any) -> Any:
    """The gradient by the NumPy back end, or by the Numba module's own text run as plain Python."""
    return compiled.grad(*args) if backend == "numpy" else call_plain(load_compiled(compiled)["grad"], *args)


def rule_comment_above(lines: list[str], k: int) -> str:
    """The rule comment above line ``k`` (its first line, when it lists merged statements one a line), or above
    the loop that line is the body of (``w_bar += X[i, j] * ...`` in a loop over j)."""
    head = k - 1
    while head > 0 and re.match(r"\s*for \w+ in range\(\w+\):$", lines[head]):
        head -= 1
    while head > 0 and lines[head].strip().startswith("#   "):
        head -= 1
    return lines[head].strip()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_notes_logistic_regression_gradient_names(backend: str) -> None:
    """z, a, z_bar, m and n as the notes write them; no op-named temporaries; a rule above every adjoint line."""
    f = diffc.compile(notes_logistic, args=LOGISTIC_TYPES, wrt=("w", "b"), backend=backend)
    text = f.grad_source
    lines = text.splitlines()
    assert re.search(r"^\s*z = ", text, re.M) and re.search(r"^\s*a = ", text, re.M)
    assert re.search(r"^\s*z_bar = ", text, re.M) and "w_bar" in text and "b_bar" in text
    assert re.search(r"^\s*n, = w\.shape$", text, re.M) and re.search(r"^\s*m = X\.shape\[0\]$", text, re.M)
    assert not re.search(r"\b(X_0|X_1|w_n|y_n)\b", text) and not OP_NAMES.search(text)
    # the gradient's steps, not the loops' machinery (an accumulator set to zero, the chunks' partials combined)
    adjoints = [k for k, line in enumerate(lines)
                if (re.match(r"^\s*(z|w|b)_bar(_chunk)? \+?= ", line) or re.match(r"^\s*w_bar_parts\[.*\+= ", line))
                and not re.search(r"= (0\.0|np\.zeros\(\w+\))$|= \w+_parts\[", line)]
    assert len(adjoints) >= 3
    for k in adjoints:
        assert re.match(r"# (add distributes|mul switches|chain rule through \w+)", rule_comment_above(lines, k)), \
            f"no rule comment above {lines[k]!r}"
    w, b, X, y = logistic_data()  # noqa: N806
    a = 1 / (1 + np.exp(-(X @ w + b)))
    gw, gb = grad_of(f, backend, w, b, X, y)
    np.testing.assert_allclose(gw, X.T @ (a - y) / len(y), rtol=1e-10)  # the notes' dw = X^T (a - y) / m
    np.testing.assert_allclose(gb, np.mean(a - y), rtol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_stable_sigmoid_keeps_the_users_name(backend: str) -> None:
    """1 / (1 + exp(-z)) is rewritten to a stable sigmoid, and log(a) to a softplus: the value keeps the name the
    user gave it (a, or p), and the gradient reads it under that name."""
    sigmoid = r"(scipy\.special\.expit|sigmoid_f64)\(z\)"
    for fn, name in ((notes_logistic, "a"), (notes_logistic_p, "p")):
        f = diffc.compile(fn, args=LOGISTIC_TYPES, wrt=("w", "b"), backend=backend)
        text = f.grad_source
        assert re.search(rf"^\s*{name} = {sigmoid}$", text, re.M), text
        assert re.search(rf"^\s*z_bar = .*\b{name}\b", text, re.M)  # the adjoint reuses the stable value
        code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
        assert "exp(-" not in code and "np.log(" not in code and "math.log(" not in code  # the stable forms only
        w, b, X, y = logistic_data()  # noqa: N806
        a = 1 / (1 + np.exp(-(X @ w + b)))
        np.testing.assert_allclose(grad_of(f, backend, w, b, X, y)[1], np.mean(a - y), rtol=1e-10)


numpy_module = np  # the function below names a local np, so it reaches NumPy under another name


def collides(x):
    np = x * 2.0
    range = numpy_module.exp(np)
    x_bar = range + 1.0
    check_shape = x_bar * x
    sigmoid_f64 = numpy_module.sin(check_shape)
    i = sigmoid_f64 * 0.5
    out = i + x
    value_and_grad = numpy_module.sum(out * x)
    return value_and_grad


def collides_grad(x: np.ndarray) -> np.ndarray:
    """d/dx sum(out * x), out = sin((e^{2x} + 1) x) / 2 + x, by hand."""
    t = (np.exp(2 * x) + 1) * x
    dt = 2 * x * np.exp(2 * x) + np.exp(2 * x) + 1
    out = np.sin(t) / 2 + x
    return out + x * (np.cos(t) / 2 * dt + 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_names_that_collide_are_renamed_safely(backend: str) -> None:
    """Locals named like NumPy's alias, builtins, our helpers, a loop index, an adjoint and a generated function
    become ``name_`` (or keep their name where nothing else uses it); the code still means the same."""
    f = diffc.compile(collides, args={"x": "f64[n]"}, backend=backend)
    text = f.grad_source
    compile(text, "<grad>", "exec")
    for reserved in ("np", "range", "check_shape", "sigmoid_f64", "value_and_grad"):
        assert not re.search(rf"^\s*{reserved} = ", text, re.M), reserved
        assert re.search(rf"^\s*{reserved}_ = ", text, re.M), reserved
    assert re.search(r"^\s*x_bar = range_ \+ 1\.0$", text, re.M)  # the user's x_bar keeps its name ...
    returned = re.search(r"return \w+, (\w+)$", text, re.M)
    assert returned and returned.group(1).startswith("x_bar_")  # ... and the gradient of x gets the number
    x = np.linspace(-0.8, 0.6, 7)
    np.testing.assert_allclose(grad_of(f, backend, x), collides_grad(x), rtol=1e-10)


def test_functions_without_source_and_closures_get_names_from_their_frames() -> None:
    """Names come from the frame, not the source: a function built by exec (no source) and a closure are named."""
    namespace: dict[str, Any] = {"np": np}
    exec("def no_source(x):\n    t = np.exp(x)\n    u = t * t\n    return np.sum(u)\n", namespace)  # noqa: S102
    with pytest.raises(OSError):
        inspect.getsource(namespace["no_source"])
    scale = 3.0

    def closure(x):
        t = np.exp(x * 0.5)
        u = t * scale
        return np.sum(u)

    x = np.array([0.1, -0.4, 0.9])
    for fn, want in ((namespace["no_source"], 2 * np.exp(2 * x)), (closure, 1.5 * np.exp(0.5 * x))):
        for backend in BACKENDS:
            f = diffc.compile(fn, args={"x": "f64[n]"}, backend=backend)
            assert re.search(r"^\s*t = ", f.grad_source, re.M), f.grad_source
            np.testing.assert_allclose(grad_of(f, backend, x), want, rtol=1e-12)


def test_lambdas_and_called_helpers_keep_op_names() -> None:
    """A lambda has no frame of its own to read names from, and only the traced function's own frame is read:
    its helpers' locals stay unnamed, so their values are named after what they compute."""
    def helper(v):
        hidden = np.tanh(v)
        return hidden * 2.0

    def outer(x):
        h = helper(x)
        return np.sum(h)

    x = np.array([0.3, -1.2])
    for backend in BACKENDS:
        f = diffc.compile(lambda x: np.sum(np.tanh(x) * 2.0), args={"x": "f64[n]"}, backend=backend)
        g = diffc.compile(outer, args={"x": "f64[n]"}, backend=backend)
        assert "tanh_x" in f.grad_source and "hidden" not in g.grad_source and "tanh_x" in g.grad_source
        assert re.search(r"^\s*h = ", g.grad_source, re.M)
        for compiled in (f, g):
            np.testing.assert_allclose(grad_of(compiled, backend, x), 2 * (1 - np.tanh(x) ** 2), rtol=1e-12)


def two_layers(params, X, Y):  # noqa: N803 - X, Y: data matrices, as the notes write them
    (W1, b1), (W2, b2) = params  # noqa: N806
    h = np.maximum(X @ W1 + b1, 0.0)
    scores = h @ W2 + b2
    return 0.5 * np.sum((scores - Y) ** 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tree_leaves_take_the_names_the_function_unpacks_them_to(backend: str) -> None:
    """``(W1, b1), (W2, b2) = params`` names the leaves: parameters W1, ..., adjoints W1_bar, sums X_W1_plus_b1."""
    rng = np.random.default_rng(4)
    params = [(rng.normal(size=(3, 5)), rng.normal(size=5)), (rng.normal(size=(5, 2)), rng.normal(size=2))]
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))  # noqa: N806
    f = diffc.compile(two_layers, wrt="params", backend=backend)
    f._last = f._prepare([params, X, Y])[0]  # the types of a first call, without running it (Numba would compile)
    text = f.grad_source
    assert "def value_and_grad(W1, b1, W2, b2, X, Y):" in text and "with respect to W1, b1, W2, b2." in text
    assert "params_0_0" not in text and all(f"{n}_bar" in text for n in ("W1", "b1", "W2", "b2", "h"))
    (W1, b1), (W2, b2) = params  # noqa: N806 - by hand, backwards through the two layers
    z = X @ W1 + b1
    d_scores = np.maximum(z, 0.0) @ W2 + b2 - Y
    dz = (d_scores @ W2.T) * (z > 0)
    want = [X.T @ dz, dz.sum(0), np.maximum(z, 0.0).T @ d_scores, d_scores.sum(0)]
    got = f.grad(params, X, Y) if backend == "numpy" else call_plain(load_compiled(f)["grad"], W1, b1, W2, b2, X, Y)
    for mine, theirs in zip([g for pair in got for g in pair] if backend == "numpy" else got, want, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


def test_a_parameter_keeps_its_name_when_the_function_rebinds_it() -> None:
    """``z = x`` in the function does not rename the parameter x: only a tree's leaves take unpacked names."""
    def f(x, y):
        z = x
        return np.sum(z * y)

    text = diffc.compile(f, args={"x": "f64[n]", "y": "f64[n]"}, backend="numpy").grad_source
    assert "def value_and_grad(x, y):" in text and "x_bar = y" in text and "z_bar" not in text
