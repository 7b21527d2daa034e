"""Every ```python block in docs/*.md and README.md runs, and the output it shows is the output it gives.

Blocks in doctest style (``>>> `` prompts) are checked by the standard
library's doctest (ELLIPSIS and NORMALIZE_WHITESPACE on); other blocks are
run and must not raise. The blocks of one file share a namespace, in order,
as a reader runs them. A block whose fence reads ```python no-run is an
illustration (generated loops, a sketch) and is skipped on purpose; the test
keeps count so that such exceptions stay few. The default run compiles with
the NumPy back end (the documented numbers do not depend on it); the slow run
repeats every file with Numba, and README.md runs on Numba in both.
docs/api.md must name every entry of ``diffc.__all__``, and docs/cli.md every option of the command line.
"""

from __future__ import annotations

import doctest
import functools
import re
from pathlib import Path

import pytest

import diffc
import diffc.api

ROOT = Path(__file__).resolve().parent.parent
FILES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```python(?P<flags>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MOST_SKIPPED = 6


def blocks(path: Path) -> list[tuple[int, str, str]]:
    """(line number, fence flags, body) of every ```python block of ``path``."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m["flags"].strip(), m["body"]) for m in FENCE.finditer(text)]


def run_file(path: Path) -> None:
    """Run the blocks of ``path`` in one namespace; fail with doctest's report of every mismatch."""
    globs: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for line, flags, body in blocks(path):
        name = f"{path.name}:{line}"
        if "no-run" in flags.split():
            continue
        if ">>>" in body:
            test = parser.get_doctest(body, globs, name, str(path), line - 1)
            runner.run(test, out=report.append, clear_globs=False)
            globs = test.globs  # a DocTest runs in a copy: the next block continues from this one
        else:
            exec(compile(body, name, "exec"), globs)  # noqa: S102 - the project's own documentation
    assert runner.failures == 0, "".join(report)


def needs_dask(path: Path) -> None:
    """docs/dask.md runs Dask: without the extra it is skipped, saying so."""
    if path.name == "dask.md":
        pytest.importorskip("dask.array", reason="docs/dask.md needs the dask extra: pip install -e '.[dask]'")


def numpy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """``diffc.compile`` (and grad, value_and_grad, emit, which call it) default to backend="numpy"."""
    monkeypatch.setattr(diffc.api, "compile", functools.partial(diffc.api.compile, backend="numpy"))
    monkeypatch.setattr(diffc, "compile", diffc.api.compile)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_doc_blocks(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    needs_dask(path)
    if path.name != "README.md":
        numpy_by_default(monkeypatch)
    run_file(path)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_doc_blocks_numba(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    needs_dask(path)
    run_file(path)


def test_skipped_blocks_are_few() -> None:
    skipped = [f"{p.name}:{line}" for p in FILES for line, flags, _ in blocks(p) if "no-run" in flags.split()]
    assert len(skipped) <= MOST_SKIPPED, skipped


def test_tutorial_and_api_have_checked_blocks() -> None:
    for name in ("tutorial.md", "api.md"):
        checked = [body for _, flags, body in blocks(ROOT / "docs" / name) if ">>>" in body]
        assert len(checked) >= 5, name


def test_api_reference_names_every_public_name() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    missing = [name for name in diffc.__all__ if f"`{name}" not in text and f"diffc.{name}" not in text]
    assert not missing, f"docs/api.md does not describe {missing}"


@pytest.mark.parametrize("name", ["compile", "emit"])
def test_api_reference_headings_give_every_parameter(name: str) -> None:
    """The heading of ``diffc.compile`` (and ``emit``) in docs/api.md lists each parameter the function takes."""
    import inspect

    heading = next(line for line in (ROOT / "docs" / "api.md").read_text().splitlines()
                   if line.startswith(f"### `diffc.{name}("))
    missing = [p for p in inspect.signature(getattr(diffc, name)).parameters if not re.search(rf"\b{p}\b", heading)]
    assert not missing, f"docs/api.md's diffc.{name} heading lacks {missing}"


def test_cli_reference_names_every_option() -> None:
    """docs/cli.md describes every subcommand, option and --what choice the parser accepts."""
    import argparse

    from diffc.cli import build_parser

    text = (ROOT / "docs" / "cli.md").read_text()
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in commands.choices.items():
        missing += [] if f"diffc {name}" in text else [f"diffc {name}"]
        for action in sub._actions:
            options = [o for o in action.option_strings if o not in ("-h", "--help")]
            if options and not any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in options):
                missing.append(f"{name} {options[-1]}")
            missing += [f"{name} {o}={c}" for o in options[-1:] for c in action.choices or () if c not in text]
    assert not missing, f"docs/cli.md does not describe {missing}"


def test_runner_catches_a_wrong_output(tmp_path: Path) -> None:
    """The runner is not vacuous: a block whose shown output is wrong fails."""
    page = tmp_path / "page.md"
    page.write_text("```python\n>>> 1 + 1\n3\n```\n")
    with pytest.raises(AssertionError, match="Expected"):
        run_file(page)
