"""Generated modules are checked before anything imports or writes them.

Python's own ``compile`` is the check: text that it refuses is a printer bug,
reported as :class:`~diffc.errors.CodegenError` with the generated function
and line, and a copy of the source saved for the bug report, instead of an
``IndentationError`` from inside an import (or a module that ``diffc emit``
wrote and that never imports).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from diffc.errors import CodegenError

DEF = re.compile(r"def (\w+)\(")


def enclosing_function(lines: list[str], line: int) -> str:
    """The name of the ``def`` that line ``line`` (1-based) of ``lines`` belongs to, or ``""``."""
    found = (DEF.match(row) for row in reversed(lines[:line]))
    return next((match.group(1) for match in found if match), "")


def save_for_report(text: str, directory: Path | None) -> str:
    """A copy of ``text`` in ``directory`` (else the temporary directory), named by its hash."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    for folder in ([directory] if directory is not None else []) + [Path(tempfile.gettempdir())]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"diffc_bug_{digest}.py"
            path.write_text(text)
            return os.fspath(path)
        except OSError:
            continue
    return ""


def check_source(text: str, label: str, directory: Path | None = None) -> None:
    """Raise :class:`CodegenError` unless ``text`` is valid Python."""
    try:
        compile(text, f"<diffc module for {label}>", "exec")
    except SyntaxError as error:
        line = error.lineno or 0
        lines = text.splitlines()
        function = enclosing_function(lines, line)
        saved = save_for_report(text, directory)
        shown = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        raise CodegenError(
            f"diffc generated invalid Python for {label} (a bug in diffc, not in your code): {error.msg} at line "
            f"{line}{f' of {function}()' if function else ''}: {shown!r}; the source is saved in {saved or '(nowhere)'}"
            " for a bug report", function=function, line=line, saved=saved) from None
