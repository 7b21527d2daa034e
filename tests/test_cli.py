"""The command line: ``diffc emit`` writes modules that need no diffc; ``diffc show`` prints.

Emitted modules are imported in a subprocess where ``import diffc`` is made to
fail, so a module that secretly needs diffc fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import diffc
from diffc.cli import main, parse_args_option

LOGISTIC = "mean(-(y * log(sigmoid(X @ w + b)) + (1 - y) * log(1 - sigmoid(X @ w + b))))"
LOGISTIC_ARGS = "w:f64[n] b:f64 X:f64[m,n] y:f64[m]"


def run_cli(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffc", *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)


def run_without_diffc(folder: Path, code: str) -> str:
    """Run ``code`` with ``folder`` on sys.path and diffc made unimportable."""
    prelude = "import sys\nsys.modules['diffc'] = None  # any import of diffc now fails\n"
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                            text=True, cwd=folder, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_done_when_example(tmp_path: Path) -> None:
    """The issue's check: emit, then import the module without diffc."""
    result = run_cli("emit", "(a + b) * (b + 1)", "-o", "e.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    out = run_without_diffc(tmp_path, "import e; print(e.value_and_grad(2.0, 1.0))")
    assert out.strip() == "(6.0, (2.0, 5.0))"


def _random_inputs(rng: np.random.Generator, m: int, n: int) -> dict[str, object]:
    return {"w": rng.normal(size=n), "b": float(rng.normal()), "X": rng.normal(size=(m, n)),
            "y": (rng.random(m) > 0.5).astype(float)}


SEED_MODELS = {
    # the notes' logistic regression over m examples
    "logistic": (LOGISTIC, LOGISTIC_ARGS, ["w", "b", "X", "y"]),
    # the DAG logistic regression: 1/2 |w|^2 - lambda log p(y|x), labels in {-1, 1}
    "dag_logistic": ("0.5 * sum(w * w) - 0.1 * mean(log(sigmoid(y * (X @ w))))", "w:f64[n] X:f64[m,n] y:f64[m]",
                     ["w", "X", "y"]),
    # a ReLU layer, summed
    "relu_layer": ("sum(relu(X @ w + b))", "w:f64[n] b:f64 X:f64[m,n]", ["w", "b", "X"]),
}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("model", sorted(SEED_MODELS))
def test_emitted_module_matches_compile(tmp_path: Path, model: str, backend: str) -> None:
    source, args, names = SEED_MODELS[model]
    result = run_cli("emit", source, "--args", args, "--backend", backend, "-o", "mod.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "mod.py").read_text()
    assert ("import numba" in text) == (backend == "numba")
    rng = np.random.default_rng(7)
    inputs = _random_inputs(rng, 13, 4)
    if model == "dag_logistic":
        inputs["y"] = np.where(rng.random(13) > 0.5, 1.0, -1.0)
    values = [inputs[name] for name in names]
    np.savez(tmp_path / "inputs.npz", *[np.asarray(v) for v in values])
    out = run_without_diffc(tmp_path, f"""
        import json, numpy as np, mod
        data = np.load("inputs.npz")
        args = [data[f"arr_{{k}}"] for k in range({len(values)})]
        args = [a.item() if a.ndim == 0 else a for a in args]
        value, grads = mod.value_and_grad(*args)
        assert np.array_equal(mod.grad(*args)[0], grads[0])
        print(json.dumps([float(mod.forward(*args)), float(value),
                          [np.asarray(g).tolist() for g in grads]]))
    """)
    forward, value, grads = json.loads(out)
    f = diffc.compile(source, args=parse_args_option(args), backend="numpy")
    expect_value, expect_grads = f.value_and_grad(*values)
    assert forward == pytest.approx(expect_value, rel=1e-12)
    assert value == pytest.approx(expect_value, rel=1e-12)
    for got, expected in zip(grads, expect_grads, strict=True):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-14)


def test_linear_layer_vjp_module(tmp_path: Path) -> None:
    """The notes' h = W h_prev: dW = outer(g, h_prev), dh_prev = W^T g, from the emitted vjp."""
    result = run_cli("emit", "W @ h", "--args", "W:f64[k,n] h:f64[n]", "--backend", "numpy", "-o", "layer.py",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = run_without_diffc(tmp_path, """
        import json, numpy as np, layer
        rng = np.random.default_rng(3)
        W, h, g = rng.normal(size=(3, 5)), rng.normal(size=5), rng.normal(size=3)
        value, (W_bar, h_bar) = layer.vjp(W, h, g)
        print(json.dumps([np.abs(value - W @ h).max(), np.abs(W_bar - np.outer(g, h)).max(),
                          np.abs(h_bar - W.T @ g).max()]))
    """)
    assert max(json.loads(out)) < 1e-13


def test_emit_is_byte_identical_across_hash_seeds_and_outputs(tmp_path: Path) -> None:
    argv = ["emit", LOGISTIC, "--args", LOGISTIC_ARGS, "--wrt", "w,b"]
    first = run_cli(*argv, env={"PYTHONHASHSEED": "1"})
    second = run_cli(*argv, env={"PYTHONHASHSEED": "12345"})
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    written = run_cli(*argv, "-o", str(tmp_path / "m.py"), env={"PYTHONHASHSEED": "99"})
    assert written.returncode == 0
    assert (tmp_path / "m.py").read_text() == first.stdout
    assert "diffc: wrote" in written.stderr and written.stdout == ""


def test_docstring_records_source_signature_wrt_version_and_command() -> None:
    result = run_cli("emit", LOGISTIC, "--args", LOGISTIC_ARGS, "--wrt", "w,b", "--backend", "numpy")
    doc = result.stdout.split('"""')[1]
    assert LOGISTIC in doc
    assert "w: f64[n], b: f64, X: f64[m,n], y: f64[m]" in doc
    assert "Gradient with respect to: w, b" in doc
    assert f"diffc {diffc.__version__}" in doc
    assert f"diffc emit '{LOGISTIC}' --args '{LOGISTIC_ARGS}' --wrt w,b --backend numpy" in doc
    assert "-o" not in doc.split("Regenerate with:")[1]


def test_emitted_module_checks_shapes_without_diffc(tmp_path: Path) -> None:
    run_cli("emit", "sum(X @ w)", "--args", "w:f64[n] X:f64[m,n]", "--backend", "numpy", "-o", "s.py", cwd=tmp_path)
    out = run_without_diffc(tmp_path, """
        import numpy as np, s
        try:
            s.forward(np.ones(3), np.ones((2, 4)))
        except ValueError as error:
            print(type(error).__name__, error)
    """)
    assert out.startswith("ShapeError")
    assert "(3,)" in out and "(2, 4)" in out


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_emitted_module_is_ruff_clean(tmp_path: Path, backend: str) -> None:
    result = run_cli("emit", LOGISTIC, "--args", LOGISTIC_ARGS, "--backend", backend, "-o", "m.py", cwd=tmp_path)
    assert result.returncode == 0
    lint = subprocess.run(["ruff", "check", "--no-cache", "--isolated", "m.py"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout


def test_function_source_is_imported_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("SCALE = 0.5\n")
    (tmp_path / "model.py").write_text(textwrap.dedent("""
        import numpy as np
        from helpers import SCALE

        def loss(w: "f64[n]", X: "f64[m,n]") -> float:
            return SCALE * np.sum(np.exp(X @ w))
    """))
    result = run_cli("emit", "model.py:loss", "--backend", "numpy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (tmp_path / "out.py").write_text(result.stdout)
    out = run_without_diffc(tmp_path, """
        import json, numpy as np, out
        rng = np.random.default_rng(0)
        w, X = rng.normal(size=3), rng.normal(size=(4, 3))
        value, (w_bar, X_bar) = out.value_and_grad(w, X)
        e = np.exp(X @ w)
        print(json.dumps([abs(value - 0.5 * e.sum()), np.abs(w_bar - 0.5 * X.T @ e).max(),
                          np.abs(X_bar - 0.5 * np.outer(e, w)).max()]))
    """)
    assert max(json.loads(out)) < 1e-12


def test_file_of_assignment_lines(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("c = a + b\nd = b + 1\ne = c * d\n")
    result = run_cli("show", "model.txt", "--what", "grad-source", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "def value_and_grad(a, b):" in result.stdout
    assert "a_bar = d" in result.stdout


@pytest.mark.parametrize("what,needle", [("ir", "= mul"), ("grad-ir", "a_bar="), ("source", "def forward(a, b)"),
                                         ("grad-source", "def value_and_grad(a, b)"), ("dot", "digraph")])
def test_show(what: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "(a + b) * (b + 1)", "--what", what, "--backend", "numpy"]) == 0
    assert needle in capsys.readouterr().out


def test_show_dot_has_partials_and_adjoints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "c = a + b\nd = b + 1\ne = c * d", "--what", "dot"]) == 0
    out = capsys.readouterr().out
    assert "∂e/∂c = d" in out and "∂e/∂d = c" in out and '"ā"' in out
    assert out.count("->") == 10  # five data-flow edges, five adjoint edges back


def test_parse_error_prints_caret_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emit", "a + exp(b) * np.sin(a)"]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "line 1, column 14" in lines[0]
    assert lines[1].strip() == "a + exp(b) * np.sin(a)"
    assert lines[2].index("^") - lines[1].index("a") == 13
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["emit", "missing.py:loss"], "no such file"),
    (["emit", "missing_model.txt"], "no such file"),
    (["emit", "a * b", "--args", "a:f64["], "bad type"),
    (["emit", "a * b", "--args", "1a:f64"], "NAME:TYPE"),
    (["emit", "a * b", "--wrt", "c"], "'c'"),
    (["show", "a * b", "--what", "ir", "--args", "a:f64"], "'b'"),
])
def test_user_mistakes_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_function_in_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.py").write_text("def other(x):\n    return x\n")
    assert main(["emit", f"{tmp_path / 'm.py'}:loss"]) == 2
    assert "has no function 'loss'" in capsys.readouterr().err


def test_debug_shows_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emit", "a +", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_version_and_help() -> None:
    version = run_cli("--version")
    assert version.stdout.strip() == f"diffc {diffc.__version__}"
    for command in ("emit", "show"):
        shown = run_cli(command, "--help")
        assert shown.returncode == 0 and "examples:" in shown.stdout and f"diffc {command}" in shown.stdout


def test_console_script_matches_python_m(tmp_path: Path) -> None:
    script = shutil.which("diffc")
    if script is None:
        pytest.skip("the diffc console script is not installed")
    via_script = subprocess.run([script, "emit", "a * b"], capture_output=True, text=True, timeout=120)
    assert via_script.stdout == run_cli("emit", "a * b").stdout


def test_parse_args_option() -> None:
    assert parse_args_option("w:f64[n] b:f64 X:f64[m, n] c") == {"w": "f64[n]", "b": "f64", "X": "f64[m,n]",
                                                                   "c": "f64"}


def test_emit_is_public_and_matches_the_cli() -> None:
    """The CLI is a thin layer: diffc.emit gives the module diffc emit prints; only the docstring
    differs (the CLI adds the regenerating command)."""
    text = diffc.emit("(a + b) * (b + 1)", backend="numpy")
    printed = run_cli("emit", "(a + b) * (b + 1)", "--backend", "numpy").stdout
    assert text.split('"""', 2)[2] == printed.split('"""', 2)[2]
    assert "Regenerate with:" in printed and "Regenerate with:" not in text
