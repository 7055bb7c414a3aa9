"""The source: listing layer and neuron files, and fetching their bytes, with retries.

All source I/O of ingest is here. Transient failures (timeouts, connection errors, 5xx)
are retried with backoff before a file is reported missing; a 404 is reported missing at once
(a later run retries missing files: a blob reported missing once later turned up, issue #7
of the original repository).

Only plain files are read: a FIFO, a device, a socket or a directory at a file's path is
refused without being opened for reading (a FIFO would block forever, ``/dev/zero`` would
fill memory), and so is a file over ``MAX_FILE_BYTES``; ``decode`` makes a refused file
malformed with the reason. Layer directories and neuron files count only when named by a
plain ASCII decimal number without a leading zero, below a limit (the model's width when it
is known): ``01.json``, ``+1.json``, `` 1.json`` or an Arabic-Indic ``١.json`` are not neuron 1,
and ``999999999999.json`` is not a neuron; such names are collected in ``ignored``.
"""
from __future__ import annotations

import os
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nx import storage
from nx.errors import SourceError
from nx.ingest.decode import Refused

ATTEMPTS = 4
BACKOFF_SECONDS = 0.5
# A remote source that does not answer its first request within this is not tried further.
REACH_SECONDS = 30
# Real files measure about 234 KB; a file this large is refused rather than read into memory.
MAX_FILE_BYTES = 64 * 2 ** 20
# Limits on layer and neuron numbers of a model whose size nx does not know (nx/settings.py's
# PUBLIC_MODELS gives the public models' own): a name beyond them is not a layer or neuron.
MAX_LAYERS = 10_000
MAX_NEURONS = 1_000_000
_NUMBER = re.compile(r"0|[1-9][0-9]*")  # [0-9], not \d: \d also matches other scripts' digits
_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


@dataclass(frozen=True)
class FileInfo:
    size: int | None
    version: str


class Missing(Exception):
    """The file is not there (after retries, for transient errors)."""


def _version(info: dict) -> str:
    for key in ("etag", "ETag", "mtime", "last_modified", "LastModified"):
        if info.get(key):
            return str(info[key])
    return ""


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def parse_number(name: str, limit: int) -> int | None:
    """The layer or neuron number ``name`` stands for, or None: plain ASCII decimal digits,
    no leading zero, below ``limit``."""
    # the length check first: int() of thousands of digits is slow, then refused by Python
    if len(name) > len(str(limit)) or not _NUMBER.fullmatch(name):
        return None
    number = int(name)
    return number if number < limit else None


class Source:
    def __init__(self, url: str):
        self.url = url
        self.location = storage.locate(url)
        self.ignored: list[str] = []  # listed names that are not layer or neuron numbers

    @property
    def fs(self):
        return self.location.fs

    @property
    def listable(self) -> bool:
        return self.location.protocol != "https"

    def path(self, relative: str) -> str:
        return self.location.join(relative)

    def list_layers(self, directory: str, limit: int = MAX_LAYERS) -> list[int]:
        """Layer numbers (below ``limit``) under ``directory``; other names go to ``ignored``
        (raises SourceError if it cannot be listed)."""
        layers = []
        for entry in self._ls(self.path(directory), detail=False):
            name = _basename(entry)
            layer = parse_number(name, limit)
            if layer is None:
                self.ignored.append(f"{directory}/{name}")
            else:
                layers.append(layer)
        return sorted(layers)

    def list_neurons(self, directory: str, layer: int, suffix: str, limit: int = MAX_NEURONS
                     ) -> dict[int, FileInfo]:
        """Neuron number (below ``limit``) -> size and version of each file in one layer's
        directory; other names ending in ``suffix`` go to ``ignored``."""
        entries = self._ls(self.path(f"{directory}/{layer}"), detail=True)
        found: dict[int, FileInfo] = {}
        for entry in entries:
            name = _basename(entry["name"])
            if entry.get("type") == "directory" or not name.endswith(suffix):
                continue
            neuron = parse_number(name[: -len(suffix)], limit)
            if neuron is None:
                self.ignored.append(f"{directory}/{layer}/{name}")
            else:
                found[neuron] = FileInfo(entry.get("size"), _version(entry))
        return found

    def reach(self, seconds: float | None = None) -> None:
        """For a remote source, one request to its root, answered within ``seconds`` (default
        REACH_SECONDS), or SourceError naming the location as given, the cause and the way out.
        Any answer will do (a 404 or 403 too): this asks whether the network leads there."""
        if self.location.protocol == "file":
            return
        from fsspec.asyn import sync  # adlfs and fsspec's https are asynchronous underneath

        ask = self.fs._ls if self.listable else self.fs._info
        seconds = REACH_SECONDS if seconds is None else seconds
        try:
            sync(self.fs.loop, ask, self.location.path, timeout=seconds)
        except Exception as exc:  # adlfs/aiohttp/azure raise their own types
            if isinstance(exc, (FileNotFoundError, PermissionError)) or _status(exc) is not None:
                return
            cause = f"no answer in {seconds:g} s" if "Timeout" in type(exc).__name__ else _one_line(exc)
            raise SourceError(f"cannot reach {self.location.shown(self.location.path)}: {cause}; "
                              f"without a network, give --source a local copy of the files in the public "
                              f"layout") from exc

    def _ls(self, path: str, detail: bool):
        if self.location.protocol == "file":
            return _local_ls(path, detail)
        last_error: Exception | None = None
        for attempt in range(ATTEMPTS):
            try:
                return self.fs.ls(path, detail=detail)
            except FileNotFoundError:
                return []
            except Exception as exc:  # adlfs/aiohttp raise their own types for network failures
                last_error = exc
                if getattr(exc, "status_code", None) in (401, 403):
                    break  # refused, not transient: a container may allow reads but not listing
                time.sleep(BACKOFF_SECONDS * 2 ** attempt)
        raise SourceError(f"cannot list {self.location.shown(path)}: {_one_line(last_error)}")

    def fetch(self, relative_paths: list[str], threads: int = 1) -> dict[str, bytes | Missing]:
        """Bytes of each file, or Missing with the reason. Never raises for one bad file."""
        if self.location.protocol == "file":
            return {p: self._fetch_local(p) for p in relative_paths}
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                return dict(zip(relative_paths, pool.map(self._fetch_remote, relative_paths)))
        return {p: self._fetch_remote(p) for p in relative_paths}

    def _fetch_local(self, relative: str) -> bytes | Missing:
        path = self.path(relative)
        try:
            refused = _refusal(os.stat(path))  # follows symlinks: a link to /dev/zero is a device
            if refused:
                return Refused(refused)
            # O_NONBLOCK: should the file have become a FIFO since, opening it does not block
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
            with open(fd, "rb") as f:
                status = os.fstat(fd)
                refused = _refusal(status)
                if refused:
                    return Refused(refused)
                # the size it has, and a byte more: asked for the limit at once, Python makes a
                # 64 MiB buffer for each file (0.07-0.1 ms of a 234 KB file's 0.2 ms)
                data = f.read(status.st_size + 1)
                if len(data) > status.st_size:  # it grew since: on, as far as the limit
                    data += f.read(MAX_FILE_BYTES + 1 - len(data))
        except FileNotFoundError:
            return Missing("not found")
        except OSError as exc:
            return Missing(f"unreadable: {_one_line(exc)}")
        return Refused(_too_large()) if len(data) > MAX_FILE_BYTES else data

    def _fetch_remote(self, relative: str) -> bytes | Missing:
        path = self.path(relative)
        last_error: Exception | None = None
        for attempt in range(ATTEMPTS):
            try:
                # at most one byte over the limit is fetched, however large the blob
                data = self.fs.cat_file(path, start=0, end=MAX_FILE_BYTES + 1)
                return Refused(_too_large()) if len(data) > MAX_FILE_BYTES else data
            except FileNotFoundError:
                return Missing("not found")
            except Exception as exc:  # timeouts, dropped connections, 5xx: transient
                if _status(exc) == 416:
                    return b""  # a range from byte 0 is unsatisfiable only for an empty blob
                last_error = exc
                time.sleep(BACKOFF_SECONDS * 2 ** attempt)
        return Missing(f"unreachable after {ATTEMPTS} attempts: {_one_line(last_error)}")


def _local_ls(path: str, detail: bool) -> list:
    """What fsspec's LocalFileSystem.ls gives of a local directory, as far as listing reads it
    (name, type, size, mtime: of a link in it, its own type and mtime and its target's size),
    without importing fsspec (0.1-0.17 s); [] if it is not there."""
    try:
        status = os.stat(path)
        if not stat.S_ISDIR(status.st_mode):  # a file (or a link's target) lists as itself
            kind = "file" if stat.S_ISREG(status.st_mode) else "other"
            return [{"name": path, "type": kind, "size": status.st_size, "mtime": status.st_mtime} if detail else path]
        entries = []
        with os.scandir(path) as found:
            for entry in found:
                if not detail:
                    entries.append(entry.path)
                    continue
                try:
                    own = entry.stat(follow_symlinks=False)
                    size = own.st_size
                    if entry.is_symlink():
                        try:
                            size = entry.stat(follow_symlinks=True).st_size
                        except OSError:
                            size = 0
                    kind = "directory" if entry.is_dir(follow_symlinks=False) else \
                        "file" if entry.is_file(follow_symlinks=False) else "other"
                except FileNotFoundError:
                    continue
                entries.append({"name": entry.path, "type": kind, "size": size, "mtime": own.st_mtime})
        return entries
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SourceError(f"cannot list {path}: {_one_line(exc)}") from exc


def _refusal(status: os.stat_result) -> str | None:
    """Why a file of this status is not read, or None for a plain file within the limit."""
    for test, what in _SPECIAL:
        if test(status.st_mode):
            return f"{what}, not a regular file: not read"
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file: not read"
    if status.st_size > MAX_FILE_BYTES:
        return _too_large(status.st_size)
    return None


def _too_large(size: int | None = None) -> str:
    measured = f"{size:,} bytes" if size is not None else "larger"
    return f"{measured}, over the {MAX_FILE_BYTES:,}-byte limit: not read"


def _status(error: Exception) -> int | None:
    """The HTTP status of an fsspec/adlfs/aiohttp error, if it has one."""
    for name in ("status_code", "status"):
        value = getattr(error, name, None)
        if isinstance(value, int):
            return value
    return None


def _one_line(error: Exception | None) -> str:
    text = f"{type(error).__name__}: {error}" if error else "unknown error"
    return " ".join(text.split())[:300]
