"""Reading a Delta table's transaction log: which data files make up a version, and its history.

Every nx table is a Delta Lake table: ``<table>/_delta_log/`` holds one JSON file per commit
(``00000000000000000012.json``: add, remove, metaData, protocol, commitInfo actions, one a
line) and, every so often, a Parquet checkpoint that sums up the commits before it. A version's
files are those of the newest checkpoint at or below it, replayed with the JSON commits after.

Readers (``nx sql``, ``nx.neuron``, the viewer) use this module instead of the ``deltalake``
package: it needs neither pyarrow nor delta-rs (about 130 ms of imports together), reads a
checkpoint with DuckDB, which they have loaded already, and hands over each file's statistics
so a neuron lookup opens only the files whose ``(layer, neuron)`` range holds it. It reads the
subset of the protocol nx and other writers use for plain tables; a table that needs more
(deletion vectors, column mapping) is refused with a sentence rather than read wrong.
Writing is ``nx.warehouse``'s, through delta-rs.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import threading
from dataclasses import dataclass, field

from nx.errors import WarehouseError

LOG_DIR = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")
# Reader features whose files are plain Parquet read as they are.
_READABLE_FEATURES = {"timestampNtz", "vacuumProtocolCheck", "v2Checkpoint", "appendOnly", "invariants",
                      "checkConstraints", "changeDataFeed", "generatedColumns", "identityColumns",
                      "domainMetadata", "rowTracking", "inCommitTimestamp", "typeWidening"}
_READ_THREADS = 16  # commit files are read in parallel: on az:// each is a request
# Below this many bytes of JSON commits, a local log is replayed from its first commit rather
# than from a checkpoint: reading a Parquet checkpoint costs about 10 ms (40 with a DuckDB
# database of its own to open), parsing 256 KB of JSON a few. (Remote logs use the checkpoint: every commit file is a request.)
_JSON_INSTEAD_OF_CHECKPOINT = 256 * 1024


@dataclass(frozen=True)
class DataFile:
    """One data file of a version: its path (relative to the table, decoded), partition
    values as the log gives them (strings), size and column statistics (or None)."""

    path: str
    partition_values: dict
    size: int
    stats: dict | None = None

    def bounds(self, column: str) -> tuple | None:
        """(min, max) of a column from the file's statistics, or None if not recorded."""
        if not self.stats:
            return None
        low = self.stats.get("minValues", {}).get(column)
        high = self.stats.get("maxValues", {}).get(column)
        return None if low is None or high is None else (low, high)

    def overlaps(self, column: str, low, high) -> bool:
        """False only when the statistics prove no row has a value in [low, high]."""
        found = self.bounds(column)
        return found is None or (found[0] <= high and low <= found[1])

    def may_hold(self, **values: int) -> bool:
        """False only when the statistics prove no row has these column values."""
        for column, value in values.items():
            found = self.bounds(column)
            if found is not None and not found[0] <= value <= found[1]:
                return False
        return True


@dataclass
class Snapshot:
    version: int
    files: list[DataFile] = field(default_factory=list)


class LogFiles:
    """The files of one table's log: on the local disk (os only), or through a filesystem's
    ``ls``, ``cat_file`` and ``invalidate_cache`` (az://: ``nx.blob_reader``'s, or an fsspec one)."""

    def __init__(self, table_path: str, fs=None):
        self.table_path = table_path
        self.fs = fs
        self.log_path = f"{table_path.rstrip('/')}/{LOG_DIR}" if fs is not None else os.path.join(table_path, LOG_DIR)

    def names(self) -> list[str]:
        if self.fs is None:  # names alone: no stat of each file
            try:
                return os.listdir(self.log_path)
            except (FileNotFoundError, NotADirectoryError):
                return []
            except OSError as exc:
                raise WarehouseError(f"cannot list {self.log_path}: {exc}") from exc
        return list(self.listing())

    def listing(self) -> dict[str, int]:
        """Name -> size of every file in the log directory (empty if there is none)."""
        try:
            if self.fs is None:
                with os.scandir(self.log_path) as entries:
                    return {e.name: e.stat().st_size for e in entries}
            self.fs.invalidate_cache(self.log_path)  # delta-rs commits behind fsspec's listing cache
            return {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
                    for e in self.fs.ls(self.log_path, detail=True)}
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as exc:
            raise WarehouseError(f"cannot list {self.log_path}: {exc}") from exc

    def path(self, name: str) -> str:
        return f"{self.log_path}/{name}" if self.fs is not None else os.path.join(self.log_path, name)

    def read(self, name: str) -> bytes:
        try:
            if self.fs is None:
                with open(self.path(name), "rb") as f:
                    return f.read()
            return self.fs.cat_file(self.path(name))
        except OSError as exc:
            raise WarehouseError(f"cannot read {self.path(name)}: {exc}") from exc


def exists(files: LogFiles) -> bool:
    return any(_COMMIT.match(n) for n in files.names())


def _versions(names: list[str]) -> tuple[list[int], dict[int, list[str]]]:
    commits = sorted(int(m.group(1)) for m in map(_COMMIT.match, names) if m)
    parts: dict[int, list[tuple[int, int, str]]] = {}
    for name in names:
        m = _CHECKPOINT.match(name)
        if m:
            parts.setdefault(int(m.group(1)), []).append((int(m.group(2) or 1), int(m.group(3) or 1), name))
    checkpoints = {v: [n for _, _, n in sorted(p)] for v, p in parts.items()
                   if len({i for i, _, _ in p}) == p[0][1]}  # only complete multi-part checkpoints
    return commits, checkpoints


def _actions(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _stats(text) -> dict | None:
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _unquote(path: str) -> str:
    """A log path as a file path (the log percent-encodes them)."""
    if "%" not in path:
        return path
    from urllib.parse import unquote  # rarely needed: nx's own paths hold no escapes

    return unquote(path)


class _State:
    def __init__(self):
        self.files: dict[str, DataFile] = {}

    def add(self, action: dict) -> None:
        path = _unquote(action["path"])
        self.files[path] = DataFile(path, dict(action.get("partitionValues") or {}), int(action.get("size") or 0),
                                    _stats(action.get("stats")))

    def remove(self, action: dict) -> None:
        self.files.pop(_unquote(action["path"]), None)

    def check(self, action: dict, where: str) -> None:
        protocol = action.get("protocol")
        if protocol:
            unknown = set(protocol.get("readerFeatures") or ()) - _READABLE_FEATURES
            if protocol.get("minReaderVersion", 1) > 3 or unknown:
                raise WarehouseError(f"{where}: the table needs Delta reader features nx cannot read "
                                     f"({', '.join(sorted(unknown)) or 'reader version ' + str(protocol['minReaderVersion'])})")
        metadata = action.get("metaData")
        if metadata and (metadata.get("configuration") or {}).get("delta.columnMapping.mode", "none") != "none":
            raise WarehouseError(f"{where}: the table uses Delta column mapping, which nx cannot read")
        if action.get("add", {}).get("deletionVector"):
            raise WarehouseError(f"{where}: the table has deletion vectors, which nx cannot read")


_SHARED_CONNECTION: contextvars.ContextVar = contextvars.ContextVar("nx_delta_log_connection", default=None)


@contextlib.contextmanager
def reading_with(con):
    """Read checkpoints through a cursor of ``con`` (a DuckDB connection the caller has open,
    with the table's filesystem registered) while inside: a new DuckDB database costs about
    30 ms to open, a cursor of an open one nothing."""
    token = _SHARED_CONNECTION.set(con)
    try:
        yield
    finally:
        _SHARED_CONNECTION.reset(token)


def _read_checkpoint(files: LogFiles, names: list[str], sizes: dict[str, int], state: _State) -> None:
    """A checkpoint's live files (its add actions; its remove actions are tombstones kept for
    vacuum, already applied) and its protocol and metadata, which are checked."""
    import duckdb  # readers have it loaded already; a checkpoint is Parquet

    if files.fs is None:
        paths = [files.path(n) for n in names]
    else:  # a checkpoint never changes: read a local copy (nx.file_cache), made now if need be
        from nx import file_cache

        wanted = [(files.path(n), _fs_url(files.fs, files.path(n)), sizes.get(n, -1), n) for n in names]
        copies = file_cache.fetch(files.fs, [w for w in wanted if w[2] >= 0], file_cache.directory())
        paths = [copies.get(url, url) for _, url, _, _ in wanted]
    # No local copy (the cache is off or full): DuckDB reads it through fsspec, adlfs's for a
    # log read with nx.blob_reader (which DuckDB cannot use).
    remote = None
    if files.fs is not None and not all(p.startswith("/") for p in paths):
        remote = files.fs.fsspec() if hasattr(files.fs, "fsspec") else files.fs
    shared = _SHARED_CONNECTION.get()
    if shared is not None and remote is not None and \
            not any(shared.filesystem_is_registered(name) for name in _protocols(remote)):
        shared = None  # its filesystems are its owner's choice (a query's is read-only): a new database
    con = shared.cursor() if shared is not None else duckdb.connect()
    try:
        if remote is not None and shared is None:
            con.register_filesystem(remote)
        relation = con.sql("select * from read_parquet($paths, union_by_name = true)", params={"paths": paths})
        kinds = [c for c in ("add", "protocol", "metaData") if c in relation.columns]
        if not kinds:
            return
        # Only the rows that matter: a checkpoint after compaction holds thousands of tombstones.
        rows = relation.filter(" or ".join(f'"{c}" is not null' for c in kinds)).select(
            *(f'"{c}"' for c in kinds)).fetchall()
    finally:
        con.close()  # an open DuckDB left to the interpreter's shutdown can abort it
    for row in rows:
        action = {k: v for k, v in zip(kinds, row) if v}
        if "add" in action:
            add = dict(action["add"])
            add["partitionValues"] = _as_dict(add.get("partitionValues"))
            state.check({"add": add}, files.table_path)
            state.add(add)
        else:
            metadata = action.get("metaData")
            if metadata:
                action["metaData"] = dict(metadata, configuration=_as_dict(metadata.get("configuration")))
            state.check(action, files.table_path)


def _as_dict(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict) and set(value) == {"key", "value"} and isinstance(value["key"], list):
        return dict(zip(value["key"], value["value"]))  # DuckDB's older map representation
    return dict(value)


def _protocols(fs) -> tuple[str, ...]:
    return tuple(fs.protocol) if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)


def _fs_url(fs, path: str) -> str:
    return f"{_protocols(fs)[0]}://{path.lstrip('/')}"


def _read_commits(files: LogFiles, versions: list[int]) -> list[list[dict]]:
    names = [f"{v:020d}.json" for v in versions]
    if files.fs is None or len(names) < 2:
        return [_actions(files.read(n)) for n in names]
    from concurrent.futures import ThreadPoolExecutor  # remote logs only

    with ThreadPoolExecutor(min(_READ_THREADS, len(names))) as pool:
        return [_actions(data) for data in pool.map(files.read, names)]


_CACHE: dict[tuple[str, int], Snapshot] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


def snapshot(files: LogFiles, version: int | None = None, timestamp=None) -> Snapshot | None:
    """The files of ``version`` (default: the newest, or the newest at ``timestamp``); None if
    there is no table. A version no longer in the log is a WarehouseError."""
    # a local log is listed by name (the sizes only for a version not read yet); a remote
    # listing gives both in one request
    listing = files.listing() if files.fs is not None else None
    commits, checkpoints = _versions(list(listing) if listing is not None else files.names())
    if not commits and not checkpoints:
        return None
    latest = max(commits + list(checkpoints))
    if timestamp is not None:
        version = version_at(files, timestamp, commits)
    target = latest if version is None else version
    if target > latest or target < 0:
        raise WarehouseError(f"{files.table_path}: no version {target} (the newest is {latest})")
    key = (files.log_path, target)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    if listing is None:
        listing = files.listing()
    base = max((v for v in checkpoints if v <= target), default=None)
    if base is not None and set(range(base + 1)) <= set(commits) and \
            files.fs is None and sum(listing[f"{v:020d}.json"] for v in range(target + 1)) <= _JSON_INSTEAD_OF_CHECKPOINT:
        base = None  # a short log: its JSON is read faster than a Parquet checkpoint is opened
    start = 0 if base is None else base + 1
    needed = list(range(start, target + 1))
    if set(needed) - set(commits):
        raise WarehouseError(f"{files.table_path}: version {target} is no longer in the log "
                             f"(vacuumed or cleaned up); the oldest readable is {_oldest(commits, checkpoints)}")
    state = _State()
    if base is not None:
        _read_checkpoint(files, checkpoints[base], listing, state)
    for actions in _read_commits(files, needed):
        for action in actions:
            state.check(action, files.table_path)
            if "add" in action:
                state.add(action["add"])
            elif "remove" in action:
                state.remove(action["remove"])
    found = Snapshot(target, sorted(state.files.values(), key=lambda f: f.path))
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = found
    return found


def _oldest(commits: list[int], checkpoints: dict) -> int:
    readable = [v for v in checkpoints] + [v for v in commits if v == 0]
    return min(readable) if readable else max(commits)


def latest_version(files: LogFiles) -> int | None:
    commits, checkpoints = _versions(files.names())
    return max(commits + list(checkpoints)) if commits or checkpoints else None


def commit_infos(files: LogFiles) -> list[dict]:
    """The commitInfo of every commit still in the log, oldest first, with its version."""
    commits, _ = _versions(files.names())
    infos = []
    for version, actions in zip(commits, _read_commits(files, commits)):
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        infos.append(dict(info, version=version))
    return infos


def version_at(files: LogFiles, timestamp, commits: list[int] | None = None) -> int:
    """The newest version committed at or before ``timestamp`` (a datetime)."""
    from datetime import timezone

    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=timezone.utc)
    millis = timestamp.timestamp() * 1000
    found = [i["version"] for i in commit_infos(files)
             if i.get("inCommitTimestamp", i.get("timestamp", 0)) <= millis]
    if not found:
        raise WarehouseError(f"{files.table_path}: nothing was committed at or before {timestamp.isoformat()}")
    return max(found)
