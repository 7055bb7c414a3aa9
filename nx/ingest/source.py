"""The source: listing layer and neuron files, and fetching their bytes, with retries.

All source I/O of ingest is here. Transient failures (timeouts, connection errors, 5xx)
are retried with backoff before a file is reported missing; a 404 is reported missing at once
(a later run retries missing files: a blob reported missing once later turned up, issue #7
of the original repository).
"""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nx import storage
from nx.errors import SourceError

ATTEMPTS = 4
BACKOFF_SECONDS = 0.5
_NUMBER = re.compile(r"^(\d+)$")


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


class Source:
    def __init__(self, url: str):
        self.url = url
        self.location = storage.locate(url)
        self.fs = self.location.fs

    @property
    def listable(self) -> bool:
        return self.location.protocol != "https"

    def path(self, relative: str) -> str:
        return self.location.join(relative)

    def list_layers(self, directory: str) -> list[int]:
        """Layer numbers under ``directory`` (raises SourceError if it cannot be listed)."""
        entries = self._ls(self.path(directory), detail=False)
        return sorted(int(m.group(1)) for m in (_NUMBER.match(_basename(e)) for e in entries) if m)

    def list_neurons(self, directory: str, layer: int, suffix: str) -> dict[int, FileInfo]:
        """Neuron number -> size and version of each file in one layer's directory."""
        entries = self._ls(self.path(f"{directory}/{layer}"), detail=True)
        found: dict[int, FileInfo] = {}
        for entry in entries:
            name = _basename(entry["name"])
            if entry.get("type") == "directory" or not name.endswith(suffix):
                continue
            stem = name[: -len(suffix)]
            if stem.isdigit():
                found[int(stem)] = FileInfo(entry.get("size"), _version(entry))
        return found

    def _ls(self, path: str, detail: bool):
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
        raise SourceError(f"cannot list {self.location.url_of(path)}: {_one_line(last_error)}")

    def fetch(self, relative_paths: list[str], threads: int = 1) -> dict[str, bytes | Missing]:
        """Bytes of each file, or Missing with the reason. Never raises for one bad file."""
        if self.location.protocol == "file":
            return {p: self._fetch_local(p) for p in relative_paths}
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                return dict(zip(relative_paths, pool.map(self._fetch_remote, relative_paths)))
        return {p: self._fetch_remote(p) for p in relative_paths}

    def _fetch_local(self, relative: str) -> bytes | Missing:
        try:
            with open(self.path(relative), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return Missing("not found")
        except OSError as exc:
            return Missing(f"unreadable: {_one_line(exc)}")

    def _fetch_remote(self, relative: str) -> bytes | Missing:
        path = self.path(relative)
        last_error: Exception | None = None
        for attempt in range(ATTEMPTS):
            try:
                return self.fs.cat_file(path)
            except FileNotFoundError:
                return Missing("not found")
            except Exception as exc:  # timeouts, dropped connections, 5xx: transient
                last_error = exc
                time.sleep(BACKOFF_SECONDS * 2 ** attempt)
        return Missing(f"unreachable after {ATTEMPTS} attempts: {_one_line(last_error)}")


def _one_line(error: Exception | None) -> str:
    text = f"{type(error).__name__}: {error}" if error else "unknown error"
    return " ".join(text.split())[:300]
