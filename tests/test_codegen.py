"""The generated source, read as a code reader would: golden text, determinism,
names, float literals, lint, nesting, and very long programs.

Most tests print sources without running Numba (printing needs no compile);
the few that run generated code use the NumPy back end unless the test is
about Numba.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from typing import Any

import numpy as np
import pytest
from conftest import check_grad

import diffc
from diffc.codegen.naming import RESERVED, Namer, sanitize
from diffc.codegen.printer import MAX_INLINE_DEPTH
from diffc.ir import DType, Graph, Node, Op, Program, Sym

NOTES = "c = a + b\nd = b + 1\ne = c * d"

# ---------------------------------------------------------------------------
# golden text: the notes' example, as a person reads it

NOTES_GRAD_SOURCE = '''\
@numba.njit(error_model="numpy", cache=True)
def value_and_grad(a, b):
    """Value of e and its gradient with respect to a, b."""
    c = a + b
    d = b + 1.0
    e = c * d
    # mul switches: e = c * d; add distributes: d = b + 1.0; add distributes: c = a + b
    b_bar = c + d
    # mul switches: e = c * d; add distributes: c = a + b
    a_bar = d
    return e, (a_bar, b_bar)
'''

NOTES_SOURCE = '''\
@numba.njit(error_model="numpy", cache=True)
def forward(a, b):
    """Value of e."""
    c = a + b
    d = b + 1.0
    e = c * d
    return e
'''


def test_golden_gradient_source_of_the_notes_example() -> None:
    """e = (a + b)(b + 1): de/da = d = b + 1 and de/db = c + d, written with the user's names."""
    f = diffc.compile(NOTES)
    assert f.grad_source == NOTES_GRAD_SOURCE
    assert f.source == NOTES_SOURCE


def test_golden_source_runs_and_agrees_with_the_notes() -> None:
    """At a = 2, b = 1 the notes work out e = 6, de/da = 2, de/db = 5."""
    f = diffc.compile(NOTES, backend="numpy")
    assert f.value_and_grad(2.0, 1.0) == (6.0, (2.0, 5.0))
    # the same text without the decorator; the NumPy back end may first make scalars NumPy floats (IEEE 1/0)
    lines = [line for line in f.grad_source.splitlines() if not re.fullmatch(r"\s+(\w+) = np\.float64\(\1\)", line)]
    assert lines == NOTES_GRAD_SOURCE.splitlines()[1:]


# ---------------------------------------------------------------------------
# determinism: the same input, the same bytes, whatever the hash seed

DETERMINISM_SCRIPT = r'''
import json, sys
import sympy
import diffc
from diffc.ir import DType, Graph, Op, Program

out = {}
def record(key, f):
    out[key] = {"grad_source": f.grad_source, "module": f.module_source(), "ir": f.ir, "grad_ir": f.grad_ir}

record("notes", diffc.compile("c = a + b\nd = b + 1\ne = c * d"))
record("logistic", diffc.compile("sum(log(1.0 + exp(-(X @ w) * y))) + 0.5 * sum(w * w)",
                                 args={"X": "f64[m,n]", "w": "f64[n]", "y": "f64[m]"}))
record("array_out", diffc.compile("exp(X @ w) * where(X @ w > 0.0, 1.0, 2.0)",
                                  args={"X": "f64[m,n]", "w": "f64[n]"}, backend="numpy"))
a, b, c = sympy.symbols("a b c")
record("sympy", diffc.compile(sympy.sin(a * b) + sympy.exp(c) * a ** 2 + sympy.Max(a, c)))
g = Graph()
names = ["np", "sum", "out", "a_bar", "x", "add", "mul", "exp"]
ins = [g.input(n) for n in names]
acc = ins[0]
for x in ins[1:]:
    acc = g.apply(Op.EXP, acc * x) + x * x
record("names", diffc.compile(Program(g, ins, [acc], ["out"], name="loss")))
json.dump(out, sys.stdout, sort_keys=True)
'''


def test_generated_source_is_byte_identical_across_hash_seeds() -> None:
    outputs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT], capture_output=True, text=True, env=env,
                             timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        outputs.append(json.loads(run.stdout))
    first, second = outputs
    assert first.keys() == second.keys()
    for key in first:
        for what in first[key]:
            assert first[key][what] == second[key][what], f"{key}.{what} differs between hash seeds"
    assert first["notes"]["grad_source"] == NOTES_GRAD_SOURCE


def test_same_program_twice_in_one_process_prints_the_same() -> None:
    sources = {diffc.compile("sum(sin(x) * y) + sum(x)", args={"x": "f64[n]", "y": "f64[n]"}).module_source()
               for _ in range(3)}
    assert len(sources) == 1


# ---------------------------------------------------------------------------
# names: the user's where possible, never a clash, never code

CLASHING = ["np", "lambda_", "sum", "exp", "print", "out", "add", "a_bar", "forward", "numba", "lambda",
            "ShapeError", "grad", "vjp", "value_and_grad", "mul", "len", "x", "cotangent"]


def clashing_program() -> tuple[Program, list[float], float, list[float]]:
    """sum_k f_k(name_k): alternately name * name and exp((k + 1) * name / 10); value and gradient by hand."""
    g = Graph()
    inputs = [g.input(n, DType.F64, ()) for n in CLASHING]
    acc = None
    for k, x in enumerate(inputs):
        term = g.apply(Op.EXP, x * (0.1 * (k + 1))) if k % 2 else x * x
        acc = term if acc is None else acc + term
    assert acc is not None
    g.names[acc] = "print"  # an assignment target may clash too
    values = [0.05 * (k + 1) for k in range(len(CLASHING))]
    value = sum(math.exp(v * 0.1 * (k + 1)) if k % 2 else v * v for k, v in enumerate(values))
    grads = [0.1 * (k + 1) * math.exp(v * 0.1 * (k + 1)) if k % 2 else 2 * v for k, v in enumerate(values)]
    return Program(g, inputs, [acc], ["out"], name="np"), values, value, grads


def defined_names(source: str) -> dict[str, list[str]]:
    """For each generated function (top level: not ShapeError's methods), its parameters and every name it assigns."""
    out: dict[str, list[str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            names = [a.arg for a in node.args.args]
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.append(sub.id)
            out[node.name] = names
    return out


def test_clashing_user_names_are_renamed(backend: str) -> None:
    program, values, value, grads = clashing_program()
    f = diffc.compile(program, backend=backend)
    source = f.module_source()
    for fn, names in defined_names(source).items():
        assert fn in ("forward", "value_and_grad", "grad", "vjp")
        clashes = sorted(set(names) & RESERVED)
        assert not clashes, f"{fn} binds reserved names {clashes}"
    tree = ast.parse(source)
    params = {n.name: [a.arg for a in n.args.args] for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert len(set(params["forward"])) == len(CLASHING)
    assert len(set(params["vjp"])) == len(CLASHING) + 1, "the cotangent must not merge with a user argument"
    got, got_grads = f.value_and_grad(*values)
    assert got == pytest.approx(value, rel=1e-14)
    assert got_grads == pytest.approx(grads, rel=1e-14)
    assert f(*values) == pytest.approx(value, rel=1e-14)
    cotangent = 2.0
    assert f.vjp(*values, cotangent) == pytest.approx([cotangent * g for g in grads], rel=1e-14)


def test_clashing_names_keep_a_readable_form() -> None:
    """Renaming appends an underscore or a number; the user's name stays recognisable."""
    program, *_ = clashing_program()
    line = diffc.compile(program, backend="numpy").source.splitlines()[0]
    assert line.startswith("def forward(np_, lambda_, sum_, exp, print_, out, add, a_bar, forward_, numba_, ")


@pytest.mark.parametrize("text", ["out_bar * a", "e = a * e_bar"])
def test_an_argument_named_like_the_cotangent_stays_an_argument(text: str) -> None:
    f = diffc.compile(text, backend="numpy")
    assert f.value_and_grad(3.0, 5.0) == (15.0, (5.0, 3.0))
    assert f.vjp(3.0, 5.0, 2.0) == (10.0, 6.0)


def test_names_that_are_fine_are_kept_verbatim() -> None:
    f = diffc.compile("loss = weight * x_1 + bias", backend="numpy")
    assert "def forward(weight, x_1, bias):" in f.source
    assert "loss = weight * x_1 + bias" in f.source


@pytest.mark.parametrize("name", ["x; import os", "a b", "x)", "__import__", "1x", "", "x.y", "os.system"])
def test_strange_argument_names_through_args_are_refused(name: str) -> None:
    with pytest.raises(diffc.DiffcError):
        diffc.compile("sum(x)", args={name: "f64[n]"}, backend="numpy")


STRANGE = ['x"""; import os; """', "x; import os", "a b", "1x", "x\\", "é", "", "__class__", "x'\"", "None"]


def test_strange_names_in_a_hand_built_program_are_sanitised() -> None:
    """Inputs, assignment targets, the program, the output and even a size may carry any string."""
    g = Graph()
    size = Sym.named('n"); import os; ("')
    inputs = [g.input(name, DType.F64, (size,)) for name in STRANGE]
    acc = inputs[0]
    for k, x in enumerate(inputs[1:]):
        acc = acc + x * float(k + 2)
        g.names[acc] = f"t{k}; import os"
    total = g.apply(Op.SUM, acc)
    program = Program(g, inputs, [total], ['out"; import os; "'], name='f"""; import os; """')
    f = diffc.compile(program, backend="numpy")
    source = f.module_source()
    tree = ast.parse(source)
    imports = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports == ["import numpy as np"]
    for node in ast.walk(tree):  # "import os" may appear only as text inside a docstring or message
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "import os" in node.value:
            continue
        assert not (isinstance(node, ast.Name) and node.id in ("os", "__import__", "eval", "exec"))
    params = [a.arg for a in next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                                  and n.name == "forward").args.args]
    assert all(p.isidentifier() and p not in RESERVED for p in params)
    assert len(set(params)) == len(STRANGE)
    x = [np.full(3, float(k + 1)) for k in range(len(STRANGE))]
    expected = 3.0 * (1.0 + sum((k + 2) * (k + 2.0) for k in range(len(STRANGE) - 1)))
    assert f(*x) == expected
    grads = f.grad(*x)
    assert [g[0] for g in grads] == [1.0] + [float(k + 2) for k in range(len(STRANGE) - 1)]
    with pytest.raises(diffc.ShapeError):
        f(*x[:-1], np.ones(4))


def test_sanitize_and_namer() -> None:
    assert sanitize("lambda") == "lambda_"
    assert sanitize("np") == "np_"
    assert sanitize("x; import os") == "x__import_os"
    assert sanitize("1x") == "_1x"
    assert sanitize("__class__").isidentifier() and not sanitize("__class__").startswith("__")
    assert sanitize("").isidentifier() and sanitize("") not in RESERVED
    namer = Namer({"add"})
    assert [namer.fresh("add") for _ in range(3)] == ["add_2", "add_3", "add_4"]
    namer.taken.add("mul_2")
    assert [namer.fresh("mul") for _ in range(3)] == ["mul", "mul_3", "mul_4"]


def test_renaming_does_not_depend_on_how_python_was_started() -> None:
    """``site`` adds help, exit, license ... to builtins and the REPL adds ``_``: without them (python -S,
    an embedded interpreter) the same program must still print the same names."""
    script = ("import builtins\n"
              "for name in ('help', 'exit', 'quit', 'copyright', 'credits', 'license', '_'):\n"
              "    builtins.__dict__.pop(name, None)\n"
              "import diffc\n"
              "print(diffc.compile('help * _x + license + exit', backend='numpy').source)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    here = diffc.compile("help * _x + license + exit", backend="numpy").source
    assert run.stdout == here + "\n"
    assert "def forward(help_, _x, license_, exit_):" in here


def test_many_temporaries_are_named_in_linear_time() -> None:
    """20,000 temporaries of one base name: a per-name counter, not a rescan from _2 each time."""
    namer = Namer()
    names = [namer.fresh("add") for _ in range(20_000)]
    assert names[:3] == ["add", "add_2", "add_3"] and names[-1] == "add_20000"
    assert len(set(names)) == len(names)


# ---------------------------------------------------------------------------
# float literals read back to the same bits


def same_float(got: Any, want: Any) -> bool:
    """Equal bits; any NaN equals any NaN (NumPy does not promise the sign of a NaN)."""
    got, want = np.float64(got), np.float64(want)
    if np.isnan(want):
        return bool(np.isnan(got))
    return got.tobytes() == want.tobytes()


FLOATS = [
    ("a * 0.1", lambda a: a * 0.1),
    ("a + 1e-300", lambda a: a + 1e-300),
    ("a * 5e-324", lambda a: a * 5e-324),
    ("a * 1.7976931348623157e308", lambda a: a * 1.7976931348623157e308),
    ("a * -0.0", lambda a: a * -0.0),
    ("a + -0.0", lambda a: a + -0.0),
    ("a * 0.30000000000000004", lambda a: a * 0.30000000000000004),
    ("a * 2.2250738585072014e-308", lambda a: a * 2.2250738585072014e-308),
    ("exp(1000.0) * a", lambda a: np.exp(1000.0) * a),
    ("-exp(1000.0) * a", lambda a: -np.exp(1000.0) * a),
    ("(exp(1000.0) - exp(1000.0)) * a", lambda a: (np.exp(1000.0) - np.exp(1000.0)) * a),
    ("log(0.0) + a", lambda a: np.log(0.0) + a),
    ("a * (0.1 + 0.2)", lambda a: a * (0.1 + 0.2)),
]
POINTS = [1.5, -3.0, 0.0, -0.0, math.inf, -math.inf, math.nan, 1e-310, 0.1]


@pytest.mark.parametrize("text, reference", FLOATS, ids=[t for t, _ in FLOATS])
def test_float_constants_round_trip_bit_for_bit(text: str, reference: Any) -> None:
    """The forward code, and the value of the simplified (folded) gradient code, give NumPy's bits."""
    f = diffc.compile(text, backend="numpy")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for a in POINTS:
            want = reference(np.float64(a))
            assert same_float(f(a), want), f"{text} at {a}: forward {f(a)!r}, NumPy {want!r}"
            value = f.value_and_grad(a)[0]
            assert same_float(value, want), f"{text} at {a}: folded {value!r}, NumPy {want!r}"


def test_float_literals_in_the_source_are_exact() -> None:
    """Every literal printed in generated code reads back (float()) to the constant's bits."""
    f = diffc.compile("a * 0.1 + a * 5e-324 + a * 1.7976931348623157e308 + a * -0.0 + exp(1000.0) * a",
                      backend="numpy")
    source = f.grad_source
    literals = [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant)
                and isinstance(n.value, float)]
    for wanted in (0.1, 5e-324, 1.7976931348623157e308):
        assert any(same_float(x, wanted) for x in literals), f"{wanted!r} not printed exactly:\n{source}"
    assert "-0.0" in source
    assert "np.inf" in source


def test_f32_constants_keep_their_float32_bits() -> None:
    f = diffc.compile("sum(x * 0.1 + 1e-30)", args={"x": "f32[n]"}, backend="numpy")
    x = np.array([1.0, 3.0, -7.5], dtype=np.float32)
    assert "np.float32(" in f.source
    value = f(x)
    want = np.sum(x * np.float32(0.1) + np.float32(1e-30))
    assert np.float32(value).tobytes() == want.tobytes()


def test_float_constants_round_trip_on_numba() -> None:
    """One Numba compile: a scalar where picks one formula per call, so every literal is exercised."""
    body = "a * 0.1"
    for k, (text, _) in enumerate(FLOATS[1:], start=1):
        body = f"where(k > {k - 0.5}, {text}, {body})"
    f = diffc.compile(body, args={"a": "f64", "k": "f64"}, wrt="a", backend="numba")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, (text, reference) in enumerate(FLOATS):
            for a in POINTS:
                want = reference(np.float64(a))
                got = f(a, float(k))
                assert same_float(got, want), f"numba {text} at {a}: {got!r}, NumPy {want!r}"
                assert same_float(f.value_and_grad(a, float(k))[0], want), f"numba folded {text} at {a}"


@pytest.mark.parametrize("text, want", [("(-8.0) ** 0.5 * a", math.nan), ("1.0 / 0.0 * a", math.inf),
                                        ("10.0 ** 400.0 * a", math.inf)])
def test_constant_only_subexpressions_follow_numpy_in_the_forward_code(text: str, want: float) -> None:
    f = diffc.compile(text, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert same_float(f.value_and_grad(1.0)[0], want)
        got = f(1.0)
    assert isinstance(got, float) and same_float(got, want)


# ---------------------------------------------------------------------------
# the source is valid, lint-clean Python that does not nest deeply

LINT_CASES: list[tuple[str, Any, str]] = [
    (NOTES, None, "numba"),
    (NOTES, None, "numpy"),
    ("sum(log(1.0 + exp(-(X @ w) * y))) + 0.5 * sum(w * w)", {"X": "f64[m,n]", "w": "f64[n]", "y": "f64[m]"},
     "numba"),
    ("mean(sigmoid(X @ w + b) - y) ** 2.0", {"X": "f64[m,n]", "w": "f64[n]", "b": "f64", "y": "f64[m]"}, "numpy"),
    ("sum(relu(x) * y) + max(a, 0.5) * min(a, 2.0)", {"x": "f64[n]", "y": "f64[n]", "a": "f64"}, "numba"),
    ("sum(x * y + x * 0.5)", {"x": "f32[n]", "y": "f32[n]"}, "numpy"),
    ("sum(tanh(M) * 2.0) + sum(abs(M) / (1.0 + sqrt(abs(M))))", {"M": "f64[m,n]"}, "numba"),
    ("a * b + c", ["a", "b", "c"], "numpy"),
    ("X @ w - y", {"X": "f64[m,n]", "w": "f64[n]", "y": "f64[m]"}, "numpy"),
]


def module_sources() -> list[tuple[str, str]]:
    out = []
    for text, args, backend in LINT_CASES:
        f = diffc.compile(text, args=args, backend=backend)
        for standalone in (True, False):
            out.append((f"{backend} {text!r} standalone={standalone}", f.module_source(standalone=standalone)))
    return out


def test_generated_modules_compile() -> None:
    for label, source in module_sources():
        compile(source, label, "exec")


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not on PATH")
def test_generated_modules_are_ruff_clean() -> None:
    """pycodestyle and pyflakes (E, F, W) at the project's line length: no unused import or variable."""
    failures = []
    for label, source in module_sources():
        run = subprocess.run(["ruff", "check", "--isolated", "--select", "E,F,W", "--line-length", "120",
                              "--output-format", "concise", "--stdin-filename", "generated.py", "-"],
                             input=source, capture_output=True, text=True, timeout=60, check=False)
        if run.returncode != 0:
            failures.append(f"{label}:\n{run.stdout}")
    assert not failures, "\n".join(failures)


def paren_depth(line: str) -> int:
    """The deepest bracket nesting of a line, brackets inside string literals not counted."""
    depth = deepest = 0
    quote = ""
    for ch in line:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def deep_expressions() -> list[tuple[str, Any]]:
    functions = ["sin", "cos", "exp", "tanh", "sigmoid", "sqrt", "abs", "log"]
    nested_calls = "x"
    for k in range(40):
        nested_calls = f"{functions[k % len(functions)]}({nested_calls} * 0.5 + {k}.0)"
    nested_binary = "a"
    for k in range(40):
        nested_binary = f"(({nested_binary}) * b - c) / (d + {k}.0)"
    nested_power = "a"
    for _ in range(40):
        nested_power = f"({nested_power} - b) ** 2.0"
    return [(nested_calls, None), (nested_binary, None), (nested_power, ["a", "b"]),
            ("sum(exp(exp(exp(exp(exp(exp(x * 0.1) * 0.1) * 0.1) * 0.1) * 0.1) * 0.1))", {"x": "f64[n]"})]


def test_no_line_nests_deeply() -> None:
    """Deep formulas are cut into named temporaries: a line nests a few levels, never forty."""
    bound = MAX_INLINE_DEPTH + 3
    for text, args in deep_expressions():
        f = diffc.compile(text, args=args, backend="numpy")
        for source in (f.source, f.grad_source):
            lines = [line for line in source.splitlines() if not line.strip().startswith('"""')]
            worst = max(lines, key=paren_depth)
            assert paren_depth(worst) <= bound, f"nesting {paren_depth(worst)} > {bound}: {worst}"
            assert len(lines) > 4


def test_deep_expressions_still_compute_the_right_gradient() -> None:
    text, _ = deep_expressions()[1]
    f = diffc.compile(text, backend="numpy")
    args = [0.3, 1.1, 0.2, 0.7]

    def direct(a: float, b: float, c: float, d: float) -> float:
        for k in range(40):
            a = (a * b - c) / (d + k)
        return a

    assert f(*args) == pytest.approx(direct(*args), rel=1e-13)
    h = 1e-6
    for i in range(4):
        up, down = list(args), list(args)
        up[i] += h
        down[i] -= h
        numeric = (direct(*up) - direct(*down)) / (2 * h)
        assert f.grad(*args)[i] == pytest.approx(numeric, rel=1e-6, abs=1e-12)


# ---------------------------------------------------------------------------
# very long programs: iterative everywhere, under the default recursion limit

CHAIN = 20_000
RATE = 1.0001


def chain_reference(a: float, n: int) -> tuple[float, float]:
    """t0 = a, t_k = t_{k-1} * 1.0001 + a, in the order the generated code adds: value and d/da."""
    t, dt = a, 1.0
    for _ in range(n):
        t = t * RATE + a
        dt = dt * RATE + 1.0
    return t, dt


@pytest.fixture
def default_recursion_limit() -> Any:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(old)


def test_20000_assignment_lines_through_the_text_front_end(default_recursion_limit: Any) -> None:
    lines = ["t0 = a"] + [f"t{k} = t{k - 1} * {RATE} + a" for k in range(1, CHAIN + 1)]
    f = diffc.compile("\n".join(lines), backend="numpy")
    value, grad = f.value_and_grad(0.5)
    want_value, want_grad = chain_reference(0.5, CHAIN)
    assert value == pytest.approx(want_value, rel=1e-12)
    assert grad == pytest.approx(want_grad, rel=1e-12)
    closed_form = (RATE ** (CHAIN + 1) - 1.0) / (RATE - 1.0)  # sum of RATE^k, k = 0..CHAIN
    assert grad == pytest.approx(closed_form, rel=1e-9)
    assert f(0.5) == pytest.approx(want_value, rel=1e-12)
    assert f.grad_source.count("\n") > CHAIN


def chain_program(n: int) -> Program:
    g = Graph()
    a = g.input("a")
    x: Node = a
    for _ in range(n):
        x = x * RATE + a
    return Program(g, [a], [x], ["t"], name="chain")


def test_20000_operation_ir_program_built_in_a_loop(default_recursion_limit: Any) -> None:
    f = diffc.compile(chain_program(CHAIN), backend="numpy")
    value, grad = f.value_and_grad(0.5)
    want_value, want_grad = chain_reference(0.5, CHAIN)
    assert value == pytest.approx(want_value, rel=1e-12)
    assert grad == pytest.approx(want_grad, rel=1e-12)
    assert max(paren_depth(line) for line in f.module_source().splitlines()) <= MAX_INLINE_DEPTH + 3


@pytest.mark.slow
@pytest.mark.parametrize("n", [500, 2000])
def test_numba_compile_time_of_a_chain(n: int, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured, not asserted: how long the first call takes (printing plus Numba) for an n-op chain."""
    monkeypatch.setenv("DIFFC_CACHE_DIR", str(tmp_path))  # a cold cache: Numba really compiles
    start = time.perf_counter()
    f = diffc.compile(chain_program(n), backend="numba")
    source = f.module_source()
    printed = time.perf_counter()
    value, grad = f.value_and_grad(0.5)
    done = time.perf_counter()
    print(f"\n{n}-op chain: diffc {printed - start:.2f} s, first value_and_grad call {done - printed:.2f} s "
          f"({source.count(chr(10))} lines of source)")
    want_value, want_grad = chain_reference(0.5, n)
    assert value == pytest.approx(want_value, rel=1e-12)
    assert grad == pytest.approx(want_grad, rel=1e-12)


def test_a_bias_updates_a_fresh_matrix_product_in_place() -> None:
    """z = X @ W then z += b: the product's own array, only when nothing else reads the product."""
    def once(X, W, b):
        return np.sum(np.maximum(X @ W + b, 0.0) ** 2)

    def twice(X, W, b):
        p = X @ W
        return np.sum((p + b) ** 2) + np.sum(p * 3.0)

    rng = np.random.default_rng(3)
    X, W, b = rng.normal(size=(7, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    types = {"X": "f64[m,d]", "W": "f64[d,h]", "b": "f64[h]"}
    for backend in ("numpy", "numba"):
        f = diffc.compile(once, args=types, backend=backend)
        assert re.search(r"^\s+X_W_plus_b \+= b$", f.grad_source, re.M), f.grad_source
        g = diffc.compile(twice, args=types, backend=backend)
        assert "+= b" not in g.grad_source  # p is read twice: never overwritten
        for fn, compiled in ((once, f), (twice, g)):
            value, grads = compiled.value_and_grad(X, W, b)
            assert value == pytest.approx(fn(X, W, b), rel=1e-13)
            reference = diffc.compile(fn, args=types, backend="numpy")
            for got, want in zip(grads, reference.value_and_grad(X, W, b)[1], strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-13)
    check_grad(diffc.compile(once, args=types), (X, W, b), f=once)  # the in-place form, against central differences


def test_relu_adjoint_writes_into_the_fresh_product_only() -> None:
    """where(z > 0, g @ W.T, 0) writes into the product's array; a product used again is left alone."""
    def mlp(X, W1, W2):
        return np.sum((np.maximum(X @ W1, 0.0) @ W2) ** 2)

    def reused(X, W1, W2):
        g = X @ W1
        return np.sum(np.where(g > 0.5, g, 0.0) ** 2) + np.sum(g)

    rng = np.random.default_rng(4)
    X, W1, W2 = rng.normal(size=(6, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    types = {"X": "f64[m,d]", "W1": "f64[d,h]", "W2": "f64[h,k]"}
    f = diffc.compile(mlp, args=types)
    assert "where_rows_into(" in f.grad_source
    g = diffc.compile(reused, args=types)
    assert "where_rows_into(" not in g.grad_source
    for fn, compiled in ((mlp, f), (reused, g)):
        reference = diffc.compile(fn, args=types, backend="numpy")
        value, grads = compiled.value_and_grad(X, W1, W2)
        want_value, want_grads = reference.value_and_grad(X, W1, W2)
        assert value == pytest.approx(want_value, rel=1e-13)
        for got, want in zip(grads, want_grads, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
