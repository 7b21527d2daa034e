"""The user's own names for traced values: ``z = X @ w + b`` names its node ``z``.

Why frames, not source: a traced function may have no source (built by
``exec``, a notebook cell that was edited since), may be a closure, and its
assignments may run many times (a loop unrolled while tracing); what the
function binds is what its frame holds. While the user's function runs, a
trace hook on *its* frame only (``sys.settrace``: per thread, so concurrent
traces do not mix) reads the frame's locals after each line and hands each
newly bound value to ``bind``. A name rebound (``x = x + 1``) names the new
value; a value that has a name keeps its first one. Lambdas, builtins and
callables without a code object of their own keep the op names.

A trace function already installed (a debugger, coverage) keeps running:
the hook calls it first, for every frame, as it would have been called.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

Bind = Callable[[str, Any], None]


def code_of(fn: Any) -> CodeType | None:
    """The code object the user's function runs (through partials, bound methods, ``__call__``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: its class's __call__
        code = getattr(type(fn).__dict__.get("__call__"), "__code__", None)
    if not isinstance(code, CodeType) or code.co_name == "<lambda>":
        return None
    return code


@contextmanager
def local_names(fn: Any, bind: Bind) -> Iterator[None]:
    """Call ``bind(name, value)`` for each local the user's function binds while the block runs."""
    code = code_of(fn)
    if code is None:
        yield
        return
    previous = sys.gettrace()
    seen: dict[str, Any] = {}

    def scan(frame: FrameType) -> None:
        for name, value in frame.f_locals.items():
            if seen.get(name, seen) is not value:
                seen[name] = value
                bind(name, value)

    def hook(inner: Any) -> Any:
        def local(frame: FrameType, event: str, arg: Any) -> Any:
            nonlocal inner
            if inner is not None:
                inner = inner(frame, event, arg)
            if event in ("line", "return"):
                scan(frame)
            return local
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        inner = previous(frame, event, arg) if previous is not None else None
        if frame.f_code is not code:
            return inner
        seen.update(frame.f_locals)  # the arguments: already named by their parameters
        return hook(inner)

    sys.settrace(global_)
    try:
        yield
    finally:
        sys.settrace(previous)
