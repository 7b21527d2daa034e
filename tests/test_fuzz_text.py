"""The hostile-string fuzzer: nothing a user types is ever executed, and every refusal is a DiffcError.

Three sources of text go through ``diffc.compile`` (and, for what compiles,
through the generated code of both back ends: called on the NumPy back end,
the Numba module run as plain Python) and through the CLI's source rule
(``diffc show``, run in an empty folder):

- payloads that would create a marker file if anything evaluated them
  (``__import__('os').system('touch M')`` in every disguise: attribute chains,
  dunder names, lambdas, f-strings, comprehensions, decorators, statements,
  names that are builtins), alone and spliced into valid expressions;
- random text, control characters included;
- valid expressions mutated character by character.

After each example the marker must not exist. A small sample runs by default
(about 200 examples per source); ``-m slow`` runs ten times more. The
counts of examples and outcomes are printed at the end of the module's run
(``pytest -s``).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plain_numba import call_plain, load_compiled

import diffc
from diffc.cli import main
from diffc.errors import DiffcError

FOLDER = Path(tempfile.mkdtemp(prefix="diffc-fuzz-"))
MARKER = FOLDER / "M"
M = str(MARKER)

PAYLOADS = [
    f"__import__('os').system('touch {M}')",
    f"open('{M}', 'w').write('x')",
    f"exec(\"open('{M}', 'w')\")",
    f"eval(\"open('{M}', 'w')\")",
    f"(lambda: __import__('os').system('touch {M}'))()",
    f"f'{{__import__(\"os\").system(\"touch {M}\")}}'",
    f"x if __import__('os').system('touch {M}') else x",
    f"[__import__('os').system('touch {M}') for _ in (1,)]",
    f"a = __import__('os')\na.system('touch {M}')\na",
    f"import os\nos.system('touch {M}')",
    f"x.__class__.__init__.__globals__['os'].system('touch {M}')",
    "().__class__.__base__.__subclasses__()",
    "sin.__globals__",
    "np.sin(x).__class__",
    "getattr(x, '__class__')",
    "globals()['__builtins__']",
    "breakpoint()",
    "__builtins__",
    "__import__",
    f"x; open('{M}', 'w')",
    f"@open('{M}', 'w')\ndef g(): pass",
    f"with open('{M}', 'w') as h: h",
    f"(h := open('{M}', 'w'))",
    f"sum(open('{M}', 'w') for _ in 'a')",
    f"lambda: open('{M}', 'w')",
    f"x[open('{M}', 'w')]",
    f"sin(x, out=open('{M}', 'w'))",
    f"exp(**{{'x': open('{M}', 'w')}})",
    f"exp(*[open('{M}', 'w')])",
    "\x00", "x\x00y", "a = 1\r\nb = a \\\n + 2\nb", "\u2028x", "x  # comment\n",
    "\\N{LATIN SMALL LETTER A}", "'\\x00'", "b'x'", "...", "None", "True + x",
    "x = x\nx", "def f(x): return x", "class C: pass", "async def f(): pass", "await x",
    "yield x", "raise SystemExit", "assert False", "global x", "del x", "print(x)", "input()",
    "9" * 5000, "x" * 5000, "(" * 300 + "x" + ")" * 300, "-" * 3000 + "x", "x" + "+x" * 3000,
]
SEEDS = ["a * b + sin(a)", "sum(w * x) / 3.0", "t = exp(-x)\ny = log(1 + t)\ny", "maximum(a, 0.0) ** 2",
         "where(x > 0, sqrt(x), -x)", "tanh(a) @ b", "x[1:] - x[:-1]", "mean(x * x)", "a / b", "-a ** 0.5"]
ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))
PIECES = list("()[]{}.,:;=+-*/@%<>!~^&|'\"\\#_ \n\t\r\x00") + ["__", "lambda", "import", "os", "exec", "eval",
                                                               "open", "f'", "{", "}", "**", "if", "for"]

COUNTS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Print the counts after the module's tests (visible with -s); never leave the folder behind."""
    yield
    print("\nfuzz counts:", dict(sorted(COUNTS.items())))
    for path in FOLDER.iterdir():
        path.unlink()
    FOLDER.rmdir()


@contextlib.contextmanager
def in_folder() -> Iterator[None]:
    """The CLI reads files named by SOURCE: run it in the fuzzer's empty folder, quietly."""
    previous = os.getcwd()
    os.chdir(FOLDER)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        os.chdir(previous)


def run_generated(compiled: diffc.Compiled) -> None:
    """What compiled: the generated code of both back ends runs (that is where an injection would act)."""
    values = [0.5] * len(compiled._declared().params)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(DiffcError):  # a ShapeError of the program itself, say
            compiled(*values)
        plain = diffc.compile(compiled._declared().forward, backend="numba")
        call_plain(load_compiled(plain)["forward"], *values)


def check(text: str, source: str) -> None:
    """One example: a DiffcError or a program; the CLI exits 0 or 2; the marker never appears."""
    COUNTS[f"{source}: examples"] += 1
    try:
        compiled = diffc.compile(text, backend="numpy")
        if not all(p[2] == () for p in compiled._declared().params):
            raise AssertionError("a text without args has scalar inputs only")
        COUNTS[f"{source}: compiled"] += 1
        run_generated(compiled)
    except DiffcError as error:
        COUNTS[f"{source}: {type(error).__name__}"] += 1
    with in_folder():
        status = main(["show", "--what", "source", "--backend", "numpy", "--", text])
    assert status in (0, 2), status
    COUNTS[f"{source}: cli exit {status}"] += 1
    assert not MARKER.exists(), f"{text!r} created the marker"


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_payloads_alone_and_spliced(payload: str) -> None:
    check(payload, "payload")
    for seed in SEEDS[:3]:
        check(seed.replace("a", f"({payload})", 1) if "a" in seed else seed + " + " + payload, "payload spliced")


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid expression with a few characters inserted, deleted or replaced (payload fragments among them)."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "payload"]))
        piece = draw(st.sampled_from(PIECES) | st.text(ALPHABET, max_size=2))
        if action == "insert":
            text = text[:at] + piece + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + 1:]
        elif action == "replace":
            text = text[:at] + piece + text[at + len(piece):]
        else:
            text = text[:at] + draw(st.sampled_from(PAYLOADS[:11])) + text[at:]
    return text


@FAST
@given(text=st.text(ALPHABET, max_size=60))
def test_random_text(text: str) -> None:
    check(text, "random")


@FAST
@given(text=mutated())
def test_mutated_expressions(text: str) -> None:
    check(text, "mutated")


@pytest.mark.slow
@SLOW
@given(text=st.text(ALPHABET, max_size=200) | mutated())
def test_fuzz_more(text: str) -> None:
    check(text, "slow")
