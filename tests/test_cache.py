"""The disk cache is safe to share and to damage (diffc/cache.py; issue 12, item 2).

Each fault runs in a child process (``python -c`` with ``DIFFC_CACHE_DIR``
set), as a user's next run would meet it: a cache directory is primed once
per back end, copied for each fault, damaged, and the child must print the
right value and gradient (against NumPy's ``3.5 * exp(x)``) with exactly one
:class:`diffc.CacheWarning`; a further run must hit the repaired entry with
no warning.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import diffc
import diffc.cache
from diffc.cache import DIGEST_SUFFIX, sealed, unsealed, write_atomic

EXPR = "sum(exp(x) * 3.5)"
X = np.linspace(-1.0, 1.0, 7)

CHILD = """
import json, sys, warnings
import numpy as np
import diffc

backend, expr, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.linspace(-1.0, 1.0, 7)
results = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for k in range(count):  # a second function: still one warning for one bad directory
        f = diffc.compile(expr if k == 0 else expr + " + sum(x)", args={"x": "f64[n]"}, backend=backend)
        value, grads = f.value_and_grad(x)
        grad = grads if isinstance(grads, np.ndarray) else grads[0]
        results.append({"value": value, "grad": [float(g) for g in grad], "cache": f.stats.get("cache")})
print(json.dumps({"results": results,
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, diffc.CacheWarning)]}))
"""


def run_child(cache: Path | str, backend: str, count: int = 1) -> dict[str, Any]:
    env = {**os.environ, "DIFFC_CACHE_DIR": os.fspath(cache)}
    done = subprocess.run([sys.executable, "-c", CHILD, backend, EXPR, str(count)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_right(report: dict[str, Any], warnings: int) -> None:
    """NumPy's value and gradient of 3.5 * sum(exp(x)) (plus sum(x) for the second function), and the warnings."""
    for k, result in enumerate(report["results"]):
        assert result["value"] == pytest.approx(3.5 * np.sum(np.exp(X)) + k * np.sum(X), rel=1e-14)
        np.testing.assert_allclose(result["grad"], 3.5 * np.exp(X) + k, rtol=1e-14)
    assert len(report["warnings"]) == warnings, report["warnings"]


def entry(cache: Path) -> Path:
    (path,) = cache.glob("diffc_*.py")
    return path


@pytest.fixture(scope="module")
def primed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A cache directory per back end, built once by a child process, with its Numba files."""
    built: dict[str, Path] = {}

    def get(backend: str) -> Path:
        if backend not in built:
            path = tmp_path_factory.mktemp(f"primed-{backend}")
            report = run_child(path, backend)
            assert_right(report, 0)
            assert report["results"][0]["cache"] == "miss"
            assert "3.5" in entry(path).read_text()
            built[backend] = path
        return built[backend]

    return get


def edit_constant(path: Path) -> None:
    """3.5 -> 4.5 in place: same size, and the old modification time put back."""
    stat = path.stat()
    path.write_text(path.read_text().replace("3.5", "4.5", 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def break_import(path: Path) -> None:
    """A correctly sealed text that fails when it runs (a digest cannot catch this one)."""
    text = unsealed(path.read_bytes())
    assert text is not None
    path.write_text(sealed(text + "\nraise RuntimeError('a broken entry')\n"))


TEXT_FAULTS = {"edited constant": edit_constant, "truncated": truncate, "emptied": empty, "garbled": garble,
               "import error": break_import}


def numba_files(cache: Path, suffix: str) -> list[Path]:
    files = [p for p in (cache / "__pycache__").iterdir() if p.name.endswith(suffix) and "value_and_grad" in p.name]
    assert files, f"no {suffix} file"
    return files


@pytest.mark.parametrize("fault", list(TEXT_FAULTS))
def test_damaged_entry_is_rebuilt_with_one_warning_numpy(fault: str, primed: Callable[[str], Path],
                                                         tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(primed("numpy"), cache)
    TEXT_FAULTS[fault](entry(cache))
    report = run_child(cache, "numpy")
    assert_right(report, 1)
    assert report["results"][0]["cache"] == "miss"
    if fault in ("edited constant", "import error"):  # repaired: the next process hits it, with no warning
        again = run_child(cache, "numpy")
        assert_right(again, 0)
        assert again["results"][0]["cache"] == "hit"


@pytest.mark.parametrize("fault", ["edited constant", "nbc garbled",
                                   *(pytest.param(f, marks=pytest.mark.slow)
                                     for f in ("garbled", "nbi truncated", "nbi garbled", "nbc truncated"))])
def test_damaged_entry_or_numba_file_is_rebuilt_numba(fault: str, primed: Callable[[str], Path],
                                                      tmp_path: Path) -> None:
    """Real Numba: the module's text, its index (.nbi) or its data file (.nbc) damaged; never a stale function."""
    cache = tmp_path / "cache"
    shutil.copytree(primed("numba"), cache)
    if fault.startswith("nb"):
        kind, how = fault.split()
        for path in numba_files(cache, f".{kind}"):
            (truncate if how == "truncated" else garble)(path)
    else:
        TEXT_FAULTS[fault](entry(cache))
    assert_right(run_child(cache, "numba"), 1)
    if fault in ("edited constant", "nbc garbled"):
        assert_right(run_child(cache, "numba"), 0)  # repaired: no warning in the next process


def test_numba_data_file_gets_a_digest(primed: Callable[[str], Path]) -> None:
    for path in numba_files(primed("numba"), ".nbc"):
        digest = Path(os.fspath(path) + DIGEST_SUFFIX).read_text()
        assert digest == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def read_only_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write: chmod for a user, a sysfs folder for root (who ignores modes)."""
    if os.geteuid() != 0:
        path = tmp_path / "read-only"
        path.mkdir()
        path.chmod(0o555)
        return path
    for candidate in ("/sys", "/proc/self"):
        if os.path.isdir(candidate) and diffc.cache._unusable(Path(candidate)):
            return Path(candidate)
    pytest.skip("no read-only directory for root here")


@pytest.mark.parametrize("kind", ["read-only", "a file"])
def test_unusable_cache_dir_compiles_privately_with_one_warning(kind: str, tmp_path: Path) -> None:
    if kind == "a file":
        cache = tmp_path / "not-a-dir"
        cache.write_text("a file where the cache directory should be\n")
    else:
        cache = read_only_dir(tmp_path)
    report = run_child(cache, "numpy", count=2)
    assert_right(report, 1)
    assert "cannot be used" in report["warnings"][0] and "private" in report["warnings"][0]
    if kind == "a file":
        assert cache.read_text() == "a file where the cache directory should be\n"


def test_two_processes_compile_one_function_at_once(tmp_path: Path) -> None:
    """Two children, one empty DIFFC_CACHE_DIR, real Numba: both right, no warning; a third hits the cache."""
    env = {**os.environ, "DIFFC_CACHE_DIR": os.fspath(tmp_path)}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, "numba", EXPR, "1"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-3000:]
        assert_right(json.loads(out.strip().splitlines()[-1]), 0)
    third = run_child(tmp_path, "numba")
    assert_right(third, 0)
    assert third["results"][0]["cache"] == "hit"
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"


def test_atomic_writes_never_show_half_a_file(tmp_path: Path) -> None:
    """A reader racing two writers of one entry sees a whole, sealed text every time."""
    path = tmp_path / "diffc_race.py"
    texts = [sealed(f"x = {k}\n" + "# padding\n" * 5000) for k in range(2)]
    write_atomic(path, texts[0])
    stop = threading.Event()

    def writer(text: str) -> None:
        while not stop.is_set():
            write_atomic(path, text)

    threads = [threading.Thread(target=writer, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    try:
        seen = {unsealed(path.read_bytes()) for _ in range(300)}
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert None not in seen and seen <= {unsealed(t.encode()) for t in texts}


def test_entries_of_other_versions_are_never_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key holds diffc's source digest and the Numba, NumPy and Python versions: another string, another entry."""
    import numba

    text = diffc.cache.versions()
    assert numba.__version__ in text and np.__version__ in text and sys.version in text
    monkeypatch.setenv("DIFFC_CACHE_DIR", os.fspath(tmp_path))
    first = diffc.compile(EXPR, args={"x": "f64[n]"}, backend="numpy")
    first.value_and_grad(X)
    assert first.stats["cache"] == "miss"
    monkeypatch.setattr(diffc.cache, "versions", lambda: text.replace(np.__version__, "0.0.other"))
    other = diffc.compile(EXPR, args={"x": "f64[n]"}, backend="numpy")
    value, _ = other.value_and_grad(X)
    assert other.stats["cache"] == "miss" and len(list(tmp_path.glob("diffc_*.py"))) == 2
    assert value == pytest.approx(3.5 * np.sum(np.exp(X)), rel=1e-14)


def test_sealed_text_round_trips_and_refuses_edits() -> None:
    text = "def f(x):\n    return x * 3.5\n"
    assert unsealed(sealed(text).encode()) == text
    assert unsealed(sealed(text).replace("3.5", "4.5").encode()) is None
    assert unsealed(text.encode()) is None and unsealed(b"") is None
    assert unsealed(sealed(text).encode()[:-3]) is None


KEY_CHILD = """
import numpy as np, diffc, diffc.dask
def loss(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(w * w)
f = diffc.compile(loss, args={"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, backend="numpy")
spec = f._specialize(f._params)
plan = diffc.dask._plan(f, spec, ("X", "y"))
print(plan.kernel.key)
"""


def test_the_key_is_the_same_after_a_miss_and_after_a_hit(tmp_path: Path) -> None:
    """Printing a module names more nodes; the key a process holds afterwards must still be the one that a
    process which found the module on disk holds: diffc.dask ships a block kernel to workers by this key, and
    a key that changed with printing made the first worker that found it compile it again."""
    pytest.importorskip("dask", reason="the block kernel of diffc.dask needs the dask extra")
    env = {**os.environ, "DIFFC_CACHE_DIR": os.fspath(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", KEY_CHILD], env=env, capture_output=True, text=True, timeout=300,
                           check=True).stdout.split() for _ in range(2)]
    assert runs[0] == runs[1]
