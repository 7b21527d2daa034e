"""``diffc emit --derivative grad|jvp|vjp|jacobian|hvp|hessian``: modules that need no diffc, same numbers.

Each derivative is emitted into its own module by the CLI, imported from a
temporary folder in a subprocess where ``import diffc`` fails (NumPy back end
and, for a sample, real Numba) or loaded as plain Python with a fake Numba
(tests/plain_numba.py: every derivative of the Numba back end without
compiling), and its numbers are compared with the compiled function's
methods (f.value_and_grad, f.jvp, f.vjp, f.jacobian, f.hvp, f.hessian).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import diffc
from diffc.cli import main, parse_args_option
from diffc.errors import DiffcError
from tests.plain_numba import load_text

DERIVATIVES = ("grad", "jvp", "vjp", "jacobian", "hvp", "hessian")
# a scalar loss of a vector and a scalar (tuples of blocks, a bare scalar block), and a vector layer
SCALAR = ("sum(log(1 + exp(X @ w + b))) + b * sum(w * w)", "w:f64[n] b:f64 X:f64[m,n]", "w,b")
LAYER = ("tanh(W @ h) * c", "W:f64[k,n] h:f64[n] c:f64", "W,h")
RNG = np.random.default_rng(15)
INPUTS = {"w": RNG.normal(size=3), "b": 0.4, "X": RNG.normal(size=(5, 3)),
          "W": RNG.normal(size=(2, 3)), "h": RNG.normal(size=3), "c": -1.3}
DIRECTIONS = {"w": RNG.normal(size=3), "b": 0.7, "W": RNG.normal(size=(2, 3)), "h": RNG.normal(size=3)}
COTANGENTS = {"scalar": 0.9, "layer": RNG.normal(size=2)}


def _emit(tmp_path: Path, name: str, model: tuple[str, str, str], derivative: str, backend: str) -> Path:
    path = tmp_path / f"{name}.py"
    source, args, wrt = model
    assert main(["emit", source, "--args", args, "--wrt", wrt, "--derivative", derivative, "--backend", backend,
                 "-o", str(path)]) == 0
    return path


def numbers(mod: Any, derivative: str, args: list[Any], directions: list[Any], cotangent: Any) -> list[Any]:
    """What an emitted module's functions give, flattened to a list of arrays (the subprocess runs this too)."""
    import numpy as np

    def flat(x: Any) -> list[Any]:
        return [a for part in x for a in flat(part)] if isinstance(x, tuple | list) else [np.asarray(x, float)]

    if derivative == "grad":
        return flat((mod.value_and_grad(*args), mod.grad(*args), mod.forward(*args)))
    if derivative == "jvp":
        return flat(mod.jvp(*args, *directions))
    if derivative == "vjp":
        return flat(mod.vjp(*args, cotangent))
    if derivative == "jacobian":
        return flat((mod.jacobian(*args), mod.jacobian(*args, mode="fwd"), mod.jacobian(*args, mode="rev")))
    if derivative == "hvp":
        return flat(mod.hvp(*args, *directions))
    return flat(mod.hessian(*args))


def expected(f: diffc.Compiled, derivative: str, args: list[Any], directions: list[Any], cotangent: Any) -> list[Any]:
    """The same numbers from the compiled function's methods."""
    adapted = SimpleNamespace(
        value_and_grad=f.value_and_grad, grad=f.grad, forward=f,
        jvp=lambda *a: f.jvp(*a[:len(args)], tuple(a[len(args):])),
        vjp=lambda *a: (f(*a[:-1]), f.vjp(*a)), jacobian=f.jacobian,  # the module's vjp gives the value too
        hvp=lambda *a: f.hvp(*a[:len(args)], tuple(a[len(args):])), hessian=f.hessian)
    return numbers(adapted, derivative, args, directions, cotangent)


CASES = [(d, "scalar") for d in DERIVATIVES] + [(d, "layer") for d in ("jvp", "vjp", "jacobian")]


def _case(model: str) -> tuple[tuple[str, str, str], list[Any], list[Any], Any]:
    source = SCALAR if model == "scalar" else LAYER
    names = list(parse_args_option(source[1]))
    wrt = source[2].split(",")
    return source, [INPUTS[n] for n in names], [DIRECTIONS[n] for n in wrt], COTANGENTS[model]


def _compare(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _run_without_diffc(folder: Path, modules: list[tuple[str, str, str]]) -> list[list[Any]]:
    """Import each (module, model, derivative) in a subprocess without diffc; its numbers, saved as .npz."""
    body = textwrap.dedent("""
        cases = json.loads(sys.argv[1])
        data = np.load("inputs.npz", allow_pickle=False)
        for module, model, derivative in cases:
            def get(key):
                values = [data[k] for k in sorted(data.files) if k.startswith(f"{model}-{key}-")]
                return [v.item() if v.ndim == 0 else v for v in values]
            args, directions, cotangent = get("args"), get("dirs"), get("cot")[0]
            out = numbers(importlib.import_module(module), derivative, args, directions, cotangent)
            np.savez(f"{module}-out.npz", *out)
    """)
    prelude = "import importlib, json, sys\nsys.modules['diffc'] = None  # any import of diffc now fails\n"
    code = prelude + "from typing import Any\nimport numpy as np\n\n" + _numbers_source() + body
    arrays = {}
    for model in ("scalar", "layer"):
        _, args, directions, cotangent = _case(model)
        for key, values in (("args", args), ("dirs", directions), ("cot", [cotangent])):
            arrays.update({f"{model}-{key}-{k:02d}": np.asarray(v) for k, v in enumerate(values)})
    np.savez(folder / "inputs.npz", **arrays)
    import json

    result = subprocess.run([sys.executable, "-c", code, json.dumps(modules)], capture_output=True, text=True,
                            cwd=folder, timeout=600)
    assert result.returncode == 0, result.stderr
    found = []
    for module, _, _ in modules:
        data = np.load(folder / f"{module}-out.npz")
        found.append([data[f"arr_{k}"] for k in range(len(data.files))])
    return found


def _numbers_source() -> str:
    import inspect

    return inspect.getsource(numbers)


def _check_modules(tmp_path: Path, backend: str, cases: list[tuple[str, str]], reference: str | None = None) -> None:
    """Emit each case for ``backend``, run it without diffc, compare with the compiled function (``reference``'s
    back end, by default the same)."""
    modules = []
    for derivative, model in cases:
        name = f"{model}_{derivative}"
        _emit(tmp_path, name, _case(model)[0], derivative, backend)
        modules.append((name, model, derivative))
    for (_, model, derivative), got in zip(modules, _run_without_diffc(tmp_path, modules), strict=True):
        source, args, directions, cotangent = _case(model)
        f = diffc.compile(source[0], args=parse_args_option(source[1]), wrt=tuple(source[2].split(",")),
                          backend=reference or backend)
        _compare(got, expected(f, derivative, args, directions, cotangent))


def test_every_emitted_derivative_numpy(tmp_path: Path) -> None:
    """Each derivative's NumPy module, imported without diffc, agrees with the compiled NumPy function."""
    _check_modules(tmp_path, "numpy", CASES)


@pytest.mark.parametrize("derivative,model", CASES)
def test_every_emitted_derivative_numba_as_plain_python(tmp_path: Path, derivative: str, model: str) -> None:
    """Each derivative's Numba module, run as plain Python, agrees with the compiled NumPy function."""
    path = _emit(tmp_path, "mod", _case(model)[0], derivative, "numba")
    text = path.read_text()
    assert "import numba" in text
    assert not any(line.startswith(("import diffc", "from diffc")) for line in text.splitlines())
    mod = SimpleNamespace(**load_text(text))
    source, args, directions, cotangent = _case(model)
    f = diffc.compile(source[0], args=parse_args_option(source[1]), wrt=tuple(source[2].split(",")),
                      backend="numpy")
    _compare(numbers(mod, derivative, args, directions, cotangent),
             expected(f, derivative, args, directions, cotangent))


def test_emitted_hvp_on_real_numba(tmp_path: Path) -> None:
    """One real-Numba module, imported without diffc: the default run's sample (one kernel compiled)."""
    _check_modules(tmp_path, "numba", [("hvp", "scalar")], reference="numpy")


@pytest.mark.slow
def test_every_emitted_derivative_on_real_numba(tmp_path: Path) -> None:
    """Every module compiled by Numba, against the compiled Numba function's methods."""
    _check_modules(tmp_path, "numba", CASES)


def test_emit_names_the_functions_and_refuses_what_cannot_be(tmp_path: Path) -> None:
    source, args, wrt = SCALAR
    text = diffc.emit(source, args=parse_args_option(args), wrt=("w", "b"), derivatives="hessian", backend="numpy")
    assert "Functions: forward(w, b, X), hvp(w, b, X, w_dot, b_dot), hessian(w, b, X)" in text
    assert "def value_and_grad(" not in text and "def hessian(w, b, X):" in text
    with pytest.raises(DiffcError, match="no hvp"):
        diffc.emit(LAYER[0], args=parse_args_option(LAYER[1]), derivatives="hvp")
    with pytest.raises(DiffcError, match="unknown derivative 'hesian'"):
        diffc.emit(source, args=parse_args_option(args), derivatives="hesian")
    assert main(["emit", source, "--args", args, "--derivative", "grad,hesian"]) == 2


def test_emit_with_derivatives_is_deterministic_and_regenerates() -> None:
    source, args, _ = SCALAR
    first = diffc.emit(source, args=parse_args_option(args), derivatives=("jacobian", "hvp"), command="x")
    second = diffc.emit(source, args=parse_args_option(args), derivatives=("jacobian", "hvp"), command="x")
    assert first == second
    result = subprocess.run([sys.executable, "-m", "diffc", "emit", source, "--args", args, "--derivative", "hvp"],
                            capture_output=True, text=True, timeout=300)
    assert "--derivative hvp" in result.stdout


def test_show_prints_the_jvp_and_hvp_sources(capsys: pytest.CaptureFixture[str]) -> None:
    source, args, wrt = SCALAR
    f = diffc.compile(source, args=parse_args_option(args), wrt=tuple(wrt.split(",")), backend="numpy")
    for what, text in (("jvp-source", f.jvp_source), ("hvp-source", f.hvp_source)):
        assert main(["show", source, "--args", args, "--wrt", wrt, "--backend", "numpy", "--what", what]) == 0
        assert capsys.readouterr().out == text
