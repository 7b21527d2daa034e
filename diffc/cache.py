"""The disk cache of generated modules: safe to share between processes, and to damage.

Each entry is one generated module, ``diffc_<key>.py``, whose key hashes the
forward IR, the signature, the printer and the versions of diffc (its
source), Numba, NumPy and Python (:func:`versions`): an entry built by
another version is never found. Its first line is a digest of the rest
(:data:`HEADER`), checked before the text runs.

What goes wrong, and what happens (each time one :class:`CacheWarning`,
never a crash and never stale code):

- the text was edited, truncated, emptied or garbled (the digest does not
  match), or it fails to import: the entry is rebuilt, and the Numba cache
  files of the old text are deleted first;
- a Numba index or data file (``.nbi``, ``.nbc``) is damaged: Numba's load
  raises (EOFError, UnpicklingError, an LLVM error) inside the first call,
  or the data file no longer matches the digest diffc wrote beside it;
  :func:`guard_numba_cache` turns that into "not cached": the files are
  deleted and Numba compiles again, and writes them anew;
- the directory cannot be created or written (read-only, or
  ``DIFFC_CACHE_DIR`` names a file): this process compiles in a private
  temporary directory instead.

Writes are atomic (a temporary file in the same directory, then
``os.replace``), so processes that compile one function at once with one
``DIFFC_CACHE_DIR`` each read either no entry or a whole one. Numba's own
cache files are written the same way by Numba.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from diffc.errors import CacheWarning

HEADER = "# diffc cache entry; sha256 of the lines below: "
_PRIVATE: list[Path] = []  # this process's temporary directory, once the cache directory failed
_CHECKED: dict[str, str] = {}  # directory -> "" when usable, else why not (checked once per process)
_LOCK = threading.RLock()  # usable_dir holds it while it may call _private


def warn(message: str) -> None:
    """One :class:`CacheWarning`, pointing at the user's call (not at diffc's internals)."""
    warnings.warn(f"diffc cache: {message}", CacheWarning, stacklevel=4)


# ---------------------------------------------------------------------------
# where


def cache_dir() -> Path:
    """Where generated modules live (DIFFC_CACHE_DIR, else the user's cache directory); may raise OSError."""
    root = os.environ.get("DIFFC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "diffc")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def writable_cache_dir() -> Path | None:
    """The cache directory, or ``None`` when it cannot be used (for saving a bug report's copy)."""
    try:
        return usable_dir()
    except OSError:
        return None


def _unusable(path: Path) -> str:
    """Why ``path`` cannot hold entries (``""`` when it can): a real write, since root passes ``os.access``."""
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".diffc-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
    return ""


def usable_dir() -> Path:
    """The cache directory if it can be written, else (with one warning) a private temporary one."""
    with _LOCK:
        try:
            path = cache_dir()
            key = os.fspath(path)
            if key not in _CHECKED:
                _CHECKED[key] = _unusable(path)
            reason = _CHECKED[key]
        except OSError as error:
            path, key, reason = None, "", f"{type(error).__name__}: {error.strerror or error}"
        if not reason:
            assert path is not None
            return path
        return _private(f"the cache directory {os.environ.get('DIFFC_CACHE_DIR') or key!r} cannot be used "
                        f"({reason})")


def _private(why: str) -> Path:
    """This process's own temporary directory (deleted at exit), warned about once."""
    with _LOCK:
        if not _PRIVATE:
            _PRIVATE.append(Path(tempfile.mkdtemp(prefix="diffc-private-cache-")))
            atexit.register(shutil.rmtree, _PRIVATE[0], True)
            warn(f"{why}; compiling in the private directory {os.fspath(_PRIVATE[0])!r} for this process "
                 "(set DIFFC_CACHE_DIR to a writable directory to keep compiled code between runs)")
        return _PRIVATE[0]


@functools.cache
def versions() -> str:
    """diffc's own source (so a change to the generator invalidates the cache), Numba, NumPy, Python."""
    import numba

    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"diffc {digest.hexdigest()} numba {numba.__version__} numpy {np.__version__} python {sys.version}"


# ---------------------------------------------------------------------------
# the entries


def sealed(text: str) -> str:
    """``text`` under its digest line."""
    return f"{HEADER}{hashlib.sha256(text.encode()).hexdigest()}\n{text}"


def unsealed(data: bytes) -> str | None:
    """The text under a correct digest line; ``None`` for anything else (edited, cut, empty, not UTF-8)."""
    head, newline, rest = data.partition(b"\n")
    if not newline or not head.startswith(HEADER.encode()):
        return None
    if head[len(HEADER):].decode("ascii", "replace") != hashlib.sha256(rest).hexdigest():
        return None
    try:
        return rest.decode()
    except UnicodeDecodeError:
        return None


def write_atomic(path: Path, text: str) -> None:
    """``text`` at ``path`` by a temporary file in the same directory and ``os.replace``: never half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def numba_files(path: Path) -> list[Path]:
    """Numba's index and data files of the module at ``path`` (in its ``__pycache__``)."""
    folder = path.parent / "__pycache__"
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(f"{path.stem}.")
            and (p.suffix in (".nbi", ".nbc") or p.name.endswith(DIGEST_SUFFIX))]


def _clear_numba_files(path: Path) -> None:
    for stale in numba_files(path):
        with contextlib.suppress(OSError):
            stale.unlink()


def load(key: str, make_text: Callable[[], str]) -> tuple[ModuleType, bool]:
    """The module of entry ``key``, and whether it came from the cache (else ``make_text()`` was printed).

    A damaged entry is rebuilt (see the module docstring); a fresh one is
    written atomically, and imported from the text just written.
    """
    path = usable_dir() / f"diffc_{key}.py"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as error:
        warn(f"cannot read {os.fspath(path)!r} ({error.strerror or error}); rebuilding it")
        data = None
    if data is not None:
        text = unsealed(data)
        if text is None:
            warn(f"{os.fspath(path)!r} is damaged (its digest does not match: edited, truncated or garbled); "
                 "rebuilding it")
        else:
            try:
                return execute(data.decode(), path), True
            except Exception as error:  # noqa: BLE001 - any failure of a cached text means: rebuild it
                warn(f"{os.fspath(path)!r} fails to import ({type(error).__name__}: {error}); rebuilding it")
        _clear_numba_files(path)
    return load_module(make_text(), path), False


def load_module(text: str, path: Path | None = None) -> ModuleType:
    """Write generated source to a stable path (named by its hash unless given), sealed, and import it.

    A stable path lets Numba's on-disk cache find the compiled code again in
    the next process. When the directory cannot be written, the text goes
    to this process's private directory instead (one warning).
    """
    if path is None:
        path = usable_dir() / f"diffc_generated_{hashlib.sha256(text.encode()).hexdigest()[:24]}.py"
    content = sealed(text)
    try:
        current = path.read_bytes() if path.exists() else None
        if current != content.encode():  # an unchanged file keeps its mtime, which Numba's index checks
            write_atomic(path, content)
    except OSError as error:
        path = _private(f"cannot write {os.fspath(path)!r} ({error.strerror or error})") / path.name
        write_atomic(path, content)
    return execute(content, path)


def execute(text: str, path: Path) -> ModuleType:
    """Run ``text``, the whole checked file, as the module at ``path``, its Numba functions guarded.

    The checked text is what runs, not a second read of the file, which
    another process may be replacing; its digest line is a comment, kept
    so that line numbers (in tracebacks, in Numba's errors) are the file's.
    """
    name = path.stem
    module = ModuleType(name)
    module.__file__ = os.fspath(path)
    code = compile(text, os.fspath(path), "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - text diffc printed, under a matching digest
    except BaseException:
        sys.modules.pop(name, None)
        raise
    for owner in [module] + [m for n, m in list(sys.modules.items()) if n.startswith("diffc.support.")]:
        for value in list(vars(owner).values()):
            guard_numba_cache(value)
    return module


# ---------------------------------------------------------------------------
# Numba's cache files


DIGEST_SUFFIX = ".diffc-sha256"  # beside each Numba data file: the sha256 of its bytes
_DAMAGE = (EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError, RuntimeError, OSError, ImportError)


class _UnverifiedError(Exception):
    """A Numba data file without diffc's digest beside it (written before diffc guarded it): compile again."""


class _DamagedError(Exception):
    """A Numba data file whose bytes do not match the digest diffc wrote beside it."""


def guard_numba_cache(dispatcher: Any) -> None:
    """Make a damaged ``.nbi``/``.nbc`` of ``dispatcher`` mean "not cached": one warning, files deleted.

    Numba reads its index and data files in ``Cache.load_overload`` at the
    first call of each signature; an error there (a cut pickle, garbled
    bytes, an LLVM bitcode error) would otherwise fail that call in this
    process and every later one. A data file whose bytes are garbled but
    still unpickle would run wrong machine code: so each data file gets a
    digest beside it when Numba writes it (:data:`DIGEST_SUFFIX`), checked
    before Numba reads it. Returning ``None`` makes Numba compile, and save
    fresh files over the damaged ones.
    """
    cache = getattr(dispatcher, "_cache", None)
    load_overload = getattr(cache, "load_overload", None)
    files = getattr(cache, "_cache_file", None)
    if load_overload is None or getattr(load_overload, "diffc_guarded", False) \
            or not all(hasattr(files, a) for a in ("_save_data", "_data_path", "_index_path")):
        return
    _seal_data_files(files)

    def guarded(sig: Any, target_context: Any) -> Any:
        try:
            return load_overload(sig, target_context)
        except _UnverifiedError:
            return None
        except Exception as error:  # noqa: BLE001 - pickle raises many kinds; all mean the files are bad
            if not isinstance(error, _DAMAGE + (_DamagedError,)) and "pickle" not in type(error).__module__:
                raise
            warn(f"Numba's cache files of {getattr(dispatcher, '__name__', 'a function')}() are damaged "
                 f"({type(error).__name__}: {str(error)[:200]}); compiling it again")
            for stale in _cache_files(files._index_path):
                with contextlib.suppress(OSError):
                    os.unlink(stale)
            return None

    guarded.diffc_guarded = True  # type: ignore[attr-defined]
    cache.load_overload = guarded


def _seal_data_files(files: Any) -> None:
    """Numba's data files written with a digest beside them, and read only when it matches."""
    save_data = files._save_data

    def save_sealed(name: str, data: Any) -> None:
        save_data(name, data)
        path = files._data_path(name)
        write_atomic(Path(path + DIGEST_SUFFIX), hashlib.sha256(Path(path).read_bytes()).hexdigest())

    def load_checked(name: str) -> Any:
        path = files._data_path(name)
        try:
            digest = Path(path + DIGEST_SUFFIX).read_text().strip()
        except FileNotFoundError:
            raise _UnverifiedError(path) from None
        data = Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise _DamagedError(f"{path} does not match its digest")
        return pickle.loads(data)  # noqa: S301 - Numba's own file, as Numba reads it, after the digest check

    files._save_data = save_sealed
    files._load_data = load_checked


def _cache_files(index: str) -> list[str]:
    """A Numba index file, and the data files (and digests) in its folder that share its name."""
    stem = os.path.basename(index)[:-len(".nbi")]
    folder = os.path.dirname(index)
    try:
        return [index] + [os.path.join(folder, f) for f in os.listdir(folder)
                          if f.startswith(f"{stem}.") and (f.endswith(".nbc") or f.endswith(DIGEST_SUFFIX))]
    except OSError:
        return [index]
