"""Generated code a person recognises: the user's names, sizes m and n, a rule comment on each adjoint line.

The notes' logistic regression, written as a NumPy function, is the reference
program: its gradient must name ``z`` and ``z_bar``, bind the sizes as ``m``
and ``n``, and carry a comment naming the rule on every adjoint statement,
on both back ends, with values and gradients still right (central
differences) and the text the same from compile to compile.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close as assert_close_tol
from conftest import check_grad
from plain_numba import call_plain, load_compiled

import diffc

# ruff: noqa: N803, N806 - X: the notes' name for the data matrix

def assert_close(actual: object, expected: object) -> None:
    assert_close_tol(actual, expected, rtol=1e-9, atol=1e-12)


TYPES = {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}
BACKENDS = ("numpy", "numba")


def loss(w, b, X, y):
    m, n = X.shape
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def loss_no_shape(w, b, X, y):
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def data(dtype: type = np.float64) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(9, 4)).astype(dtype)
    return rng.normal(size=4).astype(dtype), 0.3, X, (rng.random(9) > 0.5).astype(dtype)


def reference_grad(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The notes' formula: dz = (a - y) / m, dw = X^T dz, db = sum(dz)."""
    a = 1 / (1 + np.exp(-(X @ w + b)))
    dz = (a - y) / len(y)
    return X.T @ dz, float(np.sum(dz))


ADJOINT = re.compile(r"^\s*(\w+_bar\w*)(\[.*\])? (\+)?= ")  # a statement assigning (or adding into) an adjoint


MACHINERY = re.compile(r"= (0\.0|np\.zeros\(|np\.empty\(|empty_f(32|64)\()|_parts\[|\w+_bar_i$|_(weight|block)\[")


def adjoint_lines(source: str) -> list[tuple[str, str]]:
    """(line before, line) for every line computing a gradient value (``z_bar = ...``, ``b_bar_chunk += z_bar``).

    The loops' machinery is not a step of the gradient: accumulators set to
    zero, chunks combined, an element stored into its array.
    """
    lines = source.splitlines()
    found = []
    for k, line in enumerate(lines):
        if ADJOINT.match(line) and not MACHINERY.search(line):
            head = k - 1
            while head > 0 and lines[head].strip().startswith("#   "):  # merged notes: one statement a line
                head -= 1
            found.append((lines[head].strip(), line))
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_logistic_regression_reads_like_the_notes(backend: str) -> None:
    f = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend=backend)
    text = f.grad_source
    assert re.search(r"\bz = ", text) and re.search(r"\bz_bar\b", text)
    assert re.search(r"\bm\b", text) and re.search(r"\bn\b", text)
    assert "X_0" not in text and "w_n" not in text
    # the shape checks: one line each, a call of the module's check_shape
    assert "raise ShapeError" not in text and not re.search(r"^\s*if .*shape", text, re.M)
    checks = [line.strip() for line in text.splitlines() if "check_shape(" in line]
    assert checks == ['check_shape(X.shape[1] == n, "X.shape[1] must equal w.shape[0] (n): X, w have shapes ", '
                      '(X.shape, w.shape))',
                      'check_shape(y.shape[0] == m, "y.shape[0] must equal X.shape[0] (m): y, X have shapes ", '
                      '(y.shape, X.shape))']
    for before, line in adjoint_lines(text):
        assert before.startswith("# "), f"no rule comment above {line!r}"
        assert re.match(r"# (add distributes|mul switches|max routes|min routes|where routes|chain rule through \w+)",
                        before), before


@pytest.mark.parametrize("backend", BACKENDS)
def test_logistic_regression_values_unchanged(backend: str) -> None:
    w, b, X, y = data()
    f = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend=backend)
    if backend == "numba":
        value, (gw, gb) = call_plain(load_compiled(f)["value_and_grad"], w, b, X, y)
    else:
        value, (gw, gb) = f.value_and_grad(w, b, X, y)
    assert_close(value, loss(w, b, X, y))
    rw, rb = reference_grad(w, b, X, y)
    assert_close(gw, rw)
    assert_close(gb, rb)
    if backend == "numpy":  # central differences (the Numba module's values are checked against the same formula)
        check_grad(f, (w, b, X, y), wrt=(0, 1))


@pytest.mark.slow
def test_logistic_regression_real_numba() -> None:
    w, b, X, y = data()
    f = diffc.compile(loss, args=TYPES, wrt=("w", "b"))
    gw, gb = f.grad(w, b, X, y)
    rw, rb = reference_grad(w, b, X, y)
    assert_close(gw, rw)
    assert_close(gb, rb)


def test_float32_keeps_names() -> None:
    w, b, X, y = data(np.float32)
    types = {"w": "f32[n]", "b": "f32", "X": "f32[m,n]", "y": "f32[m]"}
    f = diffc.compile(loss, args=types, wrt=("w", "b"), backend="numpy")
    assert "z_bar" in f.grad_source
    gw, gb = f.grad(w, np.float32(b), X, y)
    rw, rb = reference_grad(w.astype(np.float64), b, X.astype(np.float64), y.astype(np.float64))
    assert gw.dtype == np.float32
    np.testing.assert_allclose(gw, rw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gb, rb, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sizes_from_a_first_call_are_m_and_n(backend: str) -> None:
    w, b, X, y = data()
    f = diffc.compile(loss_no_shape, wrt=("w", "b"), backend=backend)
    # the types of a first call, without running it (Numba would compile): what a call does first
    f._last = f._prepare([w, b, X, y])[0]
    values = f.value_and_grad(w, b, X, y) if backend == "numpy" else None
    text = f.grad_source
    assert "X_0" not in text and "w_n" not in text and "y_n" not in text
    assert re.search(r"\bn, = w\.shape", text) and re.search(r"\bm = X\.shape\[0\]", text)
    if values is not None:
        assert_close(values[1][0], reference_grad(w, b, X, y)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_shape_error_names_both_shapes(backend: str) -> None:
    w, b, X, y = data()
    f = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend=backend)
    # the Numba module's standalone text run by Python raises its own ShapeError, a ValueError
    error, grad = (diffc.ShapeError, f.grad) if backend == "numpy" else (ValueError, load_compiled(f)["grad"])
    with pytest.raises(error, match=r"X, w have shapes \(\(9, 4\), \(3,\)\)"):
        call_plain(grad, w[:3], b, X, y)
    with pytest.raises(error, match=r"y\.shape\[0\] must equal X\.shape\[0\] \(m\): y, X have shapes"):
        call_plain(grad, w, b, X, y[:5])


def test_a_check_is_one_line_of_the_module_helper_also_standalone(tmp_path: Path) -> None:
    """An emitted module defines check_shape once, at the top, and needs no diffc to raise its own ShapeError."""
    for backend in BACKENDS:
        f = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend=backend)
        text = f.module_source(standalone=True)
        assert text.count("def check_shape(") == 1 and not re.search(r"^\s*(import|from) diffc", text, re.M)
        assert text.index("def check_shape(") < text.index("def forward(")
        if backend == "numpy":
            path = tmp_path / "emitted_loss.py"
            path.write_text(text)
            script = ("import sys, numpy as np; sys.modules['diffc'] = None; import emitted_loss as e\n"
                      "try:\n    e.grad(np.zeros(3), 0.0, np.ones((9, 4)), np.ones(9))\n"
                      "except ValueError as err:\n    print(type(err).__name__, err)\n")
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                                 check=True)
            assert run.stdout.strip() == "ShapeError X.shape[1] must equal w.shape[0] (n): X, w have shapes " \
                                         "((9, 4), (3,))"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_notes_graph_names_its_rules(backend: str) -> None:
    f = diffc.compile("c = a + b\nd = b + 1\ne = c * d", backend=backend)
    text = f.grad_source
    assert "mul switches: e = c * d" in text
    assert "add distributes: c = a + b" in text
    assert f.grad(2.0, 1.0) == (2.0, 5.0)  # (b + 1, a + 2b + 1) by hand


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_routes_and_chain_rule_comments(backend: str) -> None:
    def f(z):
        h = np.maximum(z, 0)
        a = np.exp(z)
        return np.sum(h * a)

    compiled = diffc.compile(f, args={"z": "f64[n]"}, backend=backend)
    text = compiled.grad_source
    assert "max routes: h = maximum(z, 0.0)" in text
    assert "chain rule through exp: a = exp(z)" in text
    z = np.array([-1.0, 0.5, 2.0, -0.2])
    grad = compiled.grad(z) if backend == "numpy" else call_plain(load_compiled(compiled)["grad"], z)
    assert_close(grad, np.where(z > 0, z * np.exp(z) + np.exp(z), 0.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_annotate_false_gives_no_comments(backend: str) -> None:
    f = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend=backend, annotate=False)
    assert "#" not in f.grad_source
    assert not re.search(r"# (add|mul|max|min|where|chain)", f.module_source())
    f.annotate = True
    assert "# " in f.grad_source


def test_comments_never_end_early() -> None:
    """A name with a newline (a SymPy symbol may have one) cannot end the comment and become code."""
    sympy = pytest.importorskip("sympy")
    a = sympy.Symbol("a\nimport os")
    f = diffc.compile(sympy.exp(a) * a, backend="numpy")
    for line in f.grad_source.splitlines():
        assert "import os" not in line or line.strip().startswith("#") or '"""' in line


def test_user_names_never_collide_with_generated_names() -> None:
    def f(x):
        np_ = x * 2.0
        i = np.exp(np_)
        chunks = i + 1.0
        grad = np.sum(chunks * x)
        return grad

    for backend in BACKENDS:
        compiled = diffc.compile(f, args={"x": "f64[n]"}, backend=backend)
        text = compiled.grad_source
        compile(text, "<grad>", "exec")
        x = np.linspace(-1, 1, 7)
        got = compiled.grad(x) if backend == "numpy" else call_plain(load_compiled(compiled)["grad"], x)
        assert_close(got, 2 * np.exp(2 * x) * x + np.exp(2 * x) + 1.0)


def test_rebinding_names_the_new_value() -> None:
    def f(x):
        y = np.sin(x)
        y = y * y
        return np.sum(y)

    text = diffc.compile(f, args={"x": "f64[n]"}, backend="numpy").grad_source
    assert re.search(r"\by = np\.sin\(x\)", text) and re.search(r"\by_2 = y \* y", text)


def test_lambdas_keep_op_names() -> None:
    f = diffc.compile(lambda x: np.sum(np.exp(x)), args={"x": "f64[n]"}, backend="numpy")
    assert "exp" in f.grad_source
    assert_close(f.grad(np.ones(3)), np.exp(np.ones(3)))


def test_a_running_trace_function_keeps_running() -> None:
    """A debugger's or coverage's trace function sees the user's lines while diffc names them."""
    seen: list[int] = []
    code = loss.__code__

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        if frame.f_code is code and event == "line":
            seen.append(frame.f_lineno)
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        f = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend="numpy")
        text = f.grad_source
    finally:
        sys.settrace(previous)
    assert "z_bar" in text and len(set(seen)) >= 4


def test_stable_rewrite_keeps_the_name() -> None:
    """a = 1 / (1 + exp(-z)) becomes sigmoid(z); the gradient reuses it under the user's name."""
    text = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend="numpy").grad_source
    assert re.search(r"\ba = ", text)


SCRIPT = textwrap.dedent("""
    import numpy as np, diffc
    def loss(w, b, X, y):
        m, n = X.shape
        z = X @ w + b
        a = 1 / (1 + np.exp(-z))
        return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))
    types = {"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}
    for backend in ("numpy", "numba"):
        print(diffc.compile(loss, args=types, wrt=("w", "b"), backend=backend).module_source())
""")


def test_text_is_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    script = tmp_path / "show.py"
    script.write_text(SCRIPT)
    root = str(Path(__file__).resolve().parent.parent)
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": root, "DIFFC_CACHE_DIR": str(tmp_path / seed)}
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1] and "z_bar" in outputs[0]
    same = diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend="numpy")
    assert same.grad_source == diffc.compile(loss, args=TYPES, wrt=("w", "b"), backend="numpy").grad_source


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_shows_rules_and_no_comments_leaves_them_out(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    from diffc.cli import main

    program = "c = a + b\nd = b + 1\ne = c * d"
    assert main(["show", program, "--what", "grad-source", "--backend", backend]) == 0
    assert "# mul switches: e = c * d" in capsys.readouterr().out
    assert main(["show", program, "--what", "grad-source", "--backend", backend, "--no-comments"]) == 0
    assert "#" not in capsys.readouterr().out
    assert main(["emit", program, "--backend", backend, "--no-comments"]) == 0
    module = capsys.readouterr().out
    assert "mul switches" not in module and "--no-comments" in module  # the regenerate command keeps the flag
    assert main(["emit", program, "--backend", backend]) == 0
    assert "add distributes: c = a + b" in capsys.readouterr().out


def long_chain(x, a):
    """200 steps, every tenth a tanh: large enough that the Numba back end splits its gradient into parts."""
    for k in range(200):
        x = x * 0.99 + 0.5
        if k % 10 == 0:
            x = np.tanh(x)
    return x


def test_a_split_gradient_keeps_its_rule_comments() -> None:
    f = diffc.compile(long_chain, args={"x": "f64", "a": "f64"}, wrt="x")
    text = f.grad_source
    parts = re.findall(r"^def (value_and_grad_part\d+)\(", text, re.M)
    assert len(parts) >= 3 and text.count("@numba.njit") == len(parts) + 1  # split, and still Numba
    steps = [(before, line) for before, line in adjoint_lines(text) if not re.search(r"_part\d+\(", line)]
    reference = diffc.compile(long_chain, args={"x": "f64", "a": "f64"}, wrt="x", backend="numpy")
    assert len(steps) == len(adjoint_lines(reference.grad_source)) > 200  # the same steps as printed unsplit
    for before, line in steps:
        assert re.match(r"# (mul switches: x = x \* 0\.99 \+ 0\.5|chain rule through tanh: x = tanh\(x\))$",
                        before), f"{line!r} lost its comment: {before!r}"
    assert text.count("# chain rule through tanh: x = tanh(x)") == 20
    x = 0.3
    got = call_plain(load_compiled(f)["value_and_grad"], x, 0.0)
    assert_close(got, reference.value_and_grad(x, 0.0))
    check_grad(reference, (x, 0.0), wrt=(0,))
    plain = diffc.compile(long_chain, args={"x": "f64", "a": "f64"}, wrt="x", annotate=False).grad_source
    assert "#" not in plain and re.findall(r"^def (value_and_grad_part\d+)\(", plain, re.M) == parts
