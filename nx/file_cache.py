"""Local copies of a remote (az://) warehouse's files, so a query reads them from the disk.

A Delta table never changes a file it has written: a data file or a checkpoint is replaced by a
new file with a new name, never rewritten. So a copy, keyed by the file's URL and checked
against the size the log records, is good for as long as it exists. Over az:// every read is a
request and DuckDB reads a Parquet file through fsspec in many small ones: one whole-file GET
per file, in parallel, then a local read, is several times faster than a remote scan even on
the first query, and later queries pay no transfer at all.

- ``NX_CACHE_DIR`` (default ``$XDG_CACHE_HOME/nx`` or ``~/.cache/nx``) holds the copies in
  ``files/``, a directory only its owner may enter; ``off`` turns the cache off.
- ``NX_CACHE_GB`` (default 10) caps its size: the least recently used copies go first.
- A query whose uncached files add up to more than ``FETCH_LIMIT`` reads them remotely as
  before (a scan of a whole GPT-2 XL table's records must not first download 20 GB).

Copies are written to a temporary name and renamed when complete and of the logged size, so a
killed process or a server that sends a different number of bytes leaves no copy behind.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from nx import settings

FETCH_LIMIT = 2 * 1024**3  # bytes a single call may download; beyond, files are read remotely
FETCH_THREADS = 8
_SUFFIX = ".copy"  # a download in progress (or a killed one's, removed by trim after an hour)
_UNFINISHED_SECONDS = 3600
_LOCK = threading.Lock()


def directory() -> str | None:
    """The cache's ``files`` directory (made, 0700), or None when the cache is off or cannot
    be made (a read-only HOME: nx then reads remotely, as without it)."""
    base = settings.resolve(settings.CACHE_DIR)
    if base is None:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "nx")
    if base.strip().lower() in ("off", "none", "0", "no", "false"):
        return None
    path = os.path.join(os.path.abspath(os.path.expanduser(base)), "files")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path)
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None  # a directory others may write to could hand us their bytes
    return path


def max_bytes() -> int:
    text = settings.resolve(settings.CACHE_GB)
    try:
        return max(0, int(float(text) * 1024**3))
    except (TypeError, ValueError):
        return int(float(settings.CACHE_GB.default) * 1024**3)


_SAFE_PART = re.compile(r"^[A-Za-z0-9_.%=+-]+$")


def _copy_path(where: str, url: str, size: int, relative: str) -> str | None:
    """Where the copy of ``url`` goes: a directory of its own, named by a digest of the URL and
    size, holding the file under its path relative to its table (DuckDB reads Hive partition
    values such as ``model=gpt2-xl/`` from it). None for a relative path that could leave that
    directory (the log is input like any other)."""
    parts = relative.split("/")
    if not parts or any(part in ("", ".", "..") or not _SAFE_PART.match(part) for part in parts):
        return None
    digest = hashlib.sha256(f"{url}\n{size}".encode()).hexdigest()[:40]
    return os.path.join(where, digest, *parts)


def local(url: str, size: int, relative: str, where: str | None) -> str | None:
    """The local copy of ``url`` (of ``size`` bytes), if there is one; touched, for the LRU."""
    path = _copy_path(where, url, size, relative) if where else None
    if path is None:
        return None
    try:
        if os.stat(path).st_size != size:
            return None
        os.utime(path)
    except OSError:
        return None
    return path


def fetch(fs, wanted: list[tuple[str, str, int, str]], where: str | None) -> dict[str, str]:
    """Copies of ``wanted`` (fs path, URL, size, path relative to its table), downloaded if
    missing and together under ``FETCH_LIMIT``; returns URL -> local path for every file that
    has a copy now."""
    if where is None or not wanted:
        return {}
    found, missing = {}, []
    for fs_path, url, size, relative in wanted:
        copy = local(url, size, relative, where)
        if copy:
            found[url] = copy
        elif _copy_path(where, url, size, relative):
            missing.append((fs_path, url, size, relative))
    if missing and sum(item[2] for item in missing) <= min(FETCH_LIMIT, max_bytes()):
        with ThreadPoolExecutor(min(FETCH_THREADS, len(missing))) as pool:
            for url, copy in pool.map(lambda item: _download(fs, *item, where), missing):
                if copy:
                    found[url] = copy
        trim(where)
    return found


def _download(fs, fs_path: str, url: str, size: int, relative: str, where: str) -> tuple[str, str | None]:
    """One file into the cache; None when it cannot be read or is not ``size`` bytes (the
    caller then reads it remotely, where a real error is reported with the table's name)."""
    try:
        data = fs.cat_file(fs_path)
    except Exception:  # noqa: BLE001  (any failure: read remotely instead, which reports it)
        return url, None
    if len(data) != size:
        return url, None
    target = _copy_path(where, url, size, relative)
    try:
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), suffix=_SUFFIX)
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(data)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return url, None  # a full disk: read remotely
    return url, target


def trim(where: str) -> None:
    """Remove the least recently used copies until the cache fits ``NX_CACHE_GB``."""
    limit = max_bytes()
    with _LOCK:
        copies, now = [], time.time()
        for directory, _, names in os.walk(where):
            for name in names:
                path = os.path.join(directory, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if name.endswith(_SUFFIX) and now - info.st_mtime < _UNFINISHED_SECONDS:
                    continue  # another process's download in progress
                copies.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in copies)
        for _, size, path in sorted(copies):
            if total <= limit:
                break
            try:
                os.unlink(path)
                total -= size
            except OSError:
                continue
            _remove_empty_parents(os.path.dirname(path), where)


def _remove_empty_parents(directory: str, where: str) -> None:
    while os.path.abspath(directory) != os.path.abspath(where):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)
