"""The scripts in examples/ run, at their small size by default, and print what they promise.

Each script runs in a subprocess with this tree on PYTHONPATH, as a user would
run it, and its printed numbers are checked against independent references:
ln 2 for logistic regression's loss at w = 0, the notes' hand-worked
gradient of e = (a + b)(b + 1), hand-derived gradients of the DAG logistic
regression and the ReLU layer, SciPy's own ``rosen``/``rosen_der``, the
true weights that generated the Dask example's labels. The
small runs use the NumPy back end, except logistic regression, run on both
back ends as the default run's real-Numba sample; the full-size runs, on
Numba, are marked slow. Without scikit-learn, matplotlib or tqdm (the
``examples`` extra, also in ``test``) or Dask (the ``dask`` extra) the tests skip, saying which is missing.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NEEDS = {"logistic_regression": ("sklearn", "tqdm"), "mlp_digits": ("sklearn", "tqdm"),
         "rosenbrock_lbfgs": ("scipy",), "notes_pictures": (), "training_curve": ("sklearn", "matplotlib"),
         "demo": (), "newton_cg": ("scipy",), "dask_logistic": ("dask", "scipy")}
NUMBER = r"([-+0-9.eE]+|nan|inf)"


def run_example(name: str, *argv: str, small: bool = True, backend: str = "numpy", cwd: Path | None = None,
                cache: Path | None = None) -> str:
    """Run ``examples/<name>.py`` and return its stdout; skip if a package it needs is missing."""
    missing = [m for m in NEEDS[name] if importlib.util.find_spec(m) is None]
    if missing:
        extra = "dask" if "dask" in missing else "examples"
        pytest.skip(f"examples/{name}.py needs {', '.join(missing)}: pip install -e '.[{extra}]'")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cache is not None:
        env["DIFFC_CACHE_DIR"] = str(cache)
    options = [] if name == "demo" else [*(["--small"] if small else []), "--backend", backend]
    command = [sys.executable, str(EXAMPLES / f"{name}.py"), *options, *argv]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def numbers(pattern: str, text: str) -> list[float]:
    """Every match of ``pattern`` (one group, a number) in ``text``, as floats."""
    return [float(x) for x in re.findall(pattern, text)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh diffc cache for the module: the scripts compile, not a user's cache."""
    return tmp_path_factory.mktemp("cache")


def test_every_example_has_a_docstring_and_small_flag() -> None:
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py") if p.stem not in ("common", "demo"))
    assert scripts == sorted(set(NEEDS) - {"demo"})
    for name in scripts:
        text = (EXAMPLES / f"{name}.py").read_text()
        doc = ast.get_docstring(ast.parse(text))
        assert doc and len(doc.splitlines()) > 3, name
        assert "parse_args(__doc__" in text, f"{name} takes no --small"


def test_demo(cache: Path) -> None:
    """The README's first command: e = (a + b)(b + 1) at (2, 1) is 6, its gradient (b + 1, a + 2b + 1) = (2, 5)."""
    out = run_example("demo", cache=cache)
    assert "e(2, 1)           = 6.0" in out and "(de/da, de/db)    = (2.0, 5.0)" in out


def check_logistic(out: str, threshold: float) -> None:
    losses = numbers(rf"step +\d+ +loss {NUMBER}", out)
    assert len(losses) >= 5
    assert math.isclose(losses[0], math.log(2.0), rel_tol=1e-6)  # w = 0, b = 0: a = 1/2 everywhere
    assert np.all(np.diff(losses) < 0), losses
    [accuracy] = numbers(rf"test accuracy {NUMBER}", out)
    assert accuracy >= threshold


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_logistic_regression_small(backend: str, cache: Path) -> None:
    check_logistic(run_example("logistic_regression", backend=backend, cache=cache), 0.93)


def check_mlp(out: str, threshold: float) -> None:
    losses = numbers(rf"epoch +\d+ +loss {NUMBER}", out)
    assert losses[0] > 1.5 and losses[-1] < 0.2 * losses[0]  # ln 10 = 2.3 at random weights
    assert np.all(np.diff(losses) < 0), losses
    [accuracy] = numbers(rf"test accuracy {NUMBER}", out)
    assert accuracy >= threshold


def test_mlp_digits_small(cache: Path) -> None:
    check_mlp(run_example("mlp_digits", cache=cache), 0.93)


def check_rosenbrock(out: str) -> None:
    [(f_x0, rosen_x0)] = re.findall(rf"f\(x0\) = {NUMBER}, rosen\(x0\) = {NUMBER}", out)
    assert math.isclose(float(f_x0), float(rosen_x0), rel_tol=1e-12)
    [difference] = numbers(rf"max\|rosen_der\(x0\)\| = {NUMBER}", out)
    assert difference < 1e-12  # diffc's gradient is SciPy's hand-written rosen_der at x0
    rows = re.findall(rf"^(diffc .*?|scipy .*?) +iterations +(\d+).*\|grad\| {NUMBER} +max\|x-1\| {NUMBER}", out,
                      re.MULTILINE)
    assert len(rows) == 3, out
    for label, iterations, gradient, distance in rows:
        assert int(iterations) > 10, label
        assert float(gradient) < 1e-3 and float(distance) < 1e-4, label


def test_rosenbrock_small(cache: Path) -> None:
    check_rosenbrock(run_example("rosenbrock_lbfgs", cache=cache))


def test_newton_cg_small(cache: Path) -> None:
    out = run_example("newton_cg", cache=cache)
    newton, lbfgs = (int(m.group(1)) for m in re.finditer(r": +(\d+) iterations", out))
    assert newton < lbfgs


def test_notes_pictures(tmp_path: Path, cache: Path) -> None:
    out = run_example("notes_pictures", "--out", str(tmp_path), cache=cache)
    for name in ("e_graph", "dag_logistic", "relu_layer"):
        text = (tmp_path / f"{name}.dot").read_text()
        assert text.startswith("digraph") and text.count("{") == text.count("}") and "->" in text, name
    # the notes: e = (a + b)(b + 1) at a = 2, b = 1 is 6, de/da = b + 1 = 2, de/db = (b + 1) + (a + b) = 5
    assert "e_graph(2.0, 1.0): value 6, gradient (2.0, 5.0)" in out
    # d/dw [½‖w‖² − λ log σ(y wᵀx)] = w − λ (1 − σ(y wᵀx)) y x, at w = 0: −x / 2
    x = np.array([1.0, -2.0, 0.5])
    [line] = [t for t in out.splitlines() if "dag_logistic(" in t]
    assert np.allclose(ast.literal_eval(line.split("gradient ")[1]), -0.5 * x)
    # sum(max(W x, 0)): row i of the gradient is x where (W x)_i > 0, else 0 (max routes)
    W, xr = np.array([[1.0, 1.0], [-2.0, 0.5]]), np.array([1.0, 2.0])
    [line] = [t for t in out.splitlines() if "relu_layer(" in t]
    assert np.allclose(ast.literal_eval(line.split("gradient ")[1]), ((W @ xr) > 0)[:, None] * xr)


def test_training_curve(tmp_path: Path, cache: Path) -> None:
    png = tmp_path / "curve.png"
    out = run_example("training_curve", "--out", str(png), cache=cache)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = re.findall(rf"lr {NUMBER} +loss: first {NUMBER} +last train {NUMBER} +last test {NUMBER}", out)
    assert len(rows) == 3
    for _lr, first, last_train, last_test in rows:
        assert math.isclose(float(first), math.log(2.0), rel_tol=1e-6)
        assert float(last_train) < float(first) and float(last_test) < float(first)
    lasts = [float(r[2]) for r in rows]
    assert lasts == sorted(lasts, reverse=True)  # a larger step gets further in the same number of steps


def check_dask_logistic(out: str) -> None:
    losses = numbers(rf"evaluation +\d+ +loss {NUMBER}", out)
    assert len(losses) >= 5
    assert math.isclose(losses[0], math.log(2.0), rel_tol=1e-6)  # w = 0, b = 0: ln 2 on every row
    assert min(losses) == losses[-1] < 0.7 * losses[0], losses  # L-BFGS ends at its best point
    [(correlation, distance)] = re.findall(rf"corr\(w, w_true\) {NUMBER} +\|w - w_true\| / \|w_true\| {NUMBER}", out)
    assert float(correlation) > 0.99 and float(distance) < 0.15  # the labels' own weights, recovered


def test_dask_logistic_small(cache: Path) -> None:
    """60,000 lazy rows in 9 blocks on Dask's threads: the loss falls from ln 2 and w_true comes back."""
    check_dask_logistic(run_example("dask_logistic", cache=cache))


@pytest.mark.slow
def test_dask_logistic_small_on_worker_processes(cache: Path) -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed: pip install -e '.[dask]'")
    out = run_example("dask_logistic", "--scheduler", "processes", "--workers", "2", backend="numba", cache=cache)
    check_dask_logistic(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["logistic_regression", "mlp_digits", "rosenbrock_lbfgs"])
def test_full_size(name: str, cache: Path) -> None:
    out = run_example(name, small=False, backend="numba", cache=cache)
    {"logistic_regression": lambda: check_logistic(out, 0.95), "mlp_digits": lambda: check_mlp(out, 0.95),
     "rosenbrock_lbfgs": lambda: check_rosenbrock(out)}[name]()
