"""Where the query layer reads: the warehouse root and each table's current data files.

``nx.warehouse.Warehouse`` owns the layout and all writing, and loads pyarrow, fsspec and
delta-rs to do it. Reading a local warehouse needs none of them, so ``locate`` resolves a
local directory with os.path alone, and a table's files come from its Delta log
(``nx.delta_log``), never from a glob. An az:// warehouse's logs are listed and its files
copied to the local cache (``nx.file_cache``) through ``nx.blob_reader`` (the standard
library); adlfs (0.5-0.9 s to import) is loaded only when DuckDB must read a file remotely
(``Root.fs``). ``as_of`` (a version or a time) reads the tables as they were.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, replace

from nx import delta_log, settings
from nx.errors import UsageError, WarehouseError
from nx.queries.catalog import TABLES

_LEGACY_NAME = re.compile(r"^(?!part-[0-9a-f]{32}\.parquet$).*\.parquet$")


@dataclass(frozen=True)
class AsOf:
    """Which version of each table to read: a time (every table), one version number (every
    table read), or versions by table; nothing given means the newest."""

    timestamp: object = None  # a datetime
    version: int | None = None
    versions: tuple[tuple[str, int], ...] = ()

    def of(self, table: str) -> tuple:
        chosen = dict(self.versions)
        if table in chosen:
            return chosen[table], None
        return self.version, self.timestamp


def parse_as_of(text: str | None) -> AsOf | None:
    """``--as-of``: a version (``12``), versions by table (``explanations=12,runs=3``) or an
    ISO time (``2026-12-01``, ``2026-12-01T15:30:00Z``)."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if text.isdigit():
        return AsOf(version=int(text))
    if "=" in text:
        versions = []
        for part in text.split(","):
            table, _, version = part.partition("=")
            if table.strip() not in TABLES or not version.strip().isdigit():
                raise UsageError(f"--as-of {text!r}: give TABLE=VERSION pairs of known tables, e.g. explanations=3")
            versions.append((table.strip(), int(version)))
        return AsOf(versions=tuple(versions))
    from datetime import datetime

    try:
        return AsOf(timestamp=datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise UsageError(f"--as-of {text!r}: give a version number, TABLE=VERSION pairs, or an ISO time "
                         f"such as 2026-12-01T15:30:00Z") from None


@dataclass
class Root:
    """A warehouse root as the query layer sees it."""

    url: str
    protocol: str            # "file" or "az"
    path: str                # local absolute path, or the filesystem path (container/...) of az://
    opened: object = field(default=None, repr=False)  # the Warehouse, once needed
    as_of: AsOf | None = None  # read the tables as they were (nx sql --as-of)
    location: object = field(default=None, repr=False)  # nx.storage's Location of an az:// root
    copies: dict = field(default_factory=dict, repr=False)  # remote URL -> local copy (nx.file_cache)
    pinned: dict | None = field(default=None, repr=False)  # table -> snapshot, kept by ``fetch`` for one query
    account: str | None = None  # the storage account of an az:// root
    reader: object = field(default=None, repr=False)  # its nx.blob_reader.BlobReader, once needed
    # Set by ``fetched``: every file of the fetched tables has a local copy, so DuckDB reads
    # no remote file and needs no (adlfs) filesystem.
    all_local: bool = False

    @property
    def warehouse(self):
        """The full ``Warehouse`` (pyarrow, fsspec): for scans and exports."""
        if self.opened is None:
            from nx.warehouse import Warehouse

            self.opened = Warehouse(self.url)
        return self.opened

    @property
    def fs(self):
        """The fsspec filesystem of an az:// root, without the writer's imports (pyarrow: ~180 ms)."""
        if self.opened is not None:
            return self.opened.fs
        if self.location is None:
            from nx import storage

            self.location = storage.locate(self.url)
        return self.location.fs

    @property
    def blobs(self):
        """The light reader of an az:// root (``nx.blob_reader``): for its logs and the copies
        of its files, without adlfs."""
        if self.reader is None:
            from nx import blob_reader

            self.reader = blob_reader.for_account(self.account)
        return self.reader

    def url_of(self, path: str) -> str:
        return path if self.protocol == "file" else "az://" + path.lstrip("/")

    def join(self, *parts: str) -> str:
        return os.path.join(self.path, *parts) if self.protocol == "file" else "/".join([self.path, *parts])

    def log(self, table: str) -> delta_log.LogFiles:
        return delta_log.LogFiles(self.join(table), None if self.protocol == "file" else self.blobs)

    def snapshot(self, table: str, as_of: AsOf | None = None) -> delta_log.Snapshot | None:
        """The table's files at the version asked for (default: the newest); None if the table
        does not exist (yet, or at that time). WarehouseError for an older nx's table."""
        if self.pinned is not None and as_of is None and table in self.pinned:
            return self.pinned[table]
        log = self.log(table)
        as_of = as_of or self.as_of
        version, timestamp = as_of.of(table) if as_of else (None, None)
        try:
            found = delta_log.snapshot(log, version, timestamp)
        except WarehouseError as exc:
            if timestamp is not None and "nothing was committed" in str(exc):
                return None  # the table did not exist yet at that time
            raise
        if found is None:
            self.check_not_legacy(table)
        if self.pinned is not None and as_of is self.as_of:
            self.pinned[table] = found
        return found

    def check_not_legacy(self, table: str) -> None:
        """A table directory of Parquet files without a Delta log is an older nx's layout."""
        if self.protocol != "file":
            return  # listing a remote table costs a request per directory: nx migrate says it
        directory = self.join(table)
        if not os.path.isdir(directory):
            return
        for _, _, names in os.walk(directory):
            if any(_LEGACY_NAME.match(n) for n in names):
                raise WarehouseError(f"table {table} of {self.url} was written by an older nx (plain Parquet, "
                                     f"no Delta log): run `nx migrate -w {self.url}` once to convert it")

    def file_urls(self, table: str, as_of: AsOf | None = None, snapshot=None, **where: object) -> list[str]:
        """URLs DuckDB can read: the table's current files, in the partitions given and (by
        their statistics) holding the column values given (``layer=3, neuron=5``)."""
        return [url for url, _ in self.data_files(table, as_of, snapshot, **where)]

    def data_files(self, table: str, as_of: AsOf | None = None, snapshot=None,
                   **where: object) -> list[tuple[str, delta_log.DataFile]]:
        """``file_urls`` with each file's entry in the log (its partition values, statistics).
        A file of an az:// root with a local copy is named by the copy's path."""
        found = snapshot if snapshot is not None else self.snapshot(table, as_of)
        if found is None:
            return []
        partitions = {k: str(v) for k, v in where.items() if k in dict(TABLES[table]["partitions"])}
        columns = {k: v for k, v in where.items() if k not in partitions}
        table_path = self.join(table)
        chosen = [f for f in found.files
                  if all(f.partition_values.get(k) == v for k, v in partitions.items()) and f.may_hold(**columns)]
        if self.protocol == "file":
            named = [(self.url_of(f"{table_path}/{f.path}"), f) for f in chosen]
            for path, _ in named:
                _check_regular(path)
            return named
        from nx import file_cache

        where, named = file_cache.directory(), []
        for f in chosen:
            url = self.url_of(f"{table_path}/{f.path}")
            named.append((self.copies.get(url) or file_cache.local(url, f.size, f.path, where) or url, f))
        return named

    def fetched(self, tables) -> Root:
        """For one query of an az:// root: this root with the snapshots of ``tables`` read once
        (pinned) and their files copied to the local cache (``nx.file_cache``; a table's files
        stay remote if they are too many bytes), so ``file_urls`` names the copies, and
        ``all_local`` says whether they all have one. Call it before a confined thread, which
        cannot write them. A local root is returned as it is."""
        if self.protocol == "file":
            return self
        from nx import file_cache

        root = replace(self, pinned={}, copies=dict(self.copies))
        where, all_local = file_cache.directory(), True
        for table in tables:
            found = root.snapshot(table)
            wanted = [(path, root.url_of(path), f.size, f.path) for f in (found.files if found else ())
                      for path in [f"{root.join(table)}/{f.path}"]]
            root.copies.update(file_cache.fetch(root.blobs, wanted, where))
            all_local = all_local and all(url in root.copies for _, url, _, _ in wanted)
        root.all_local = all_local
        return root

    def glob(self, pattern: str) -> list[str]:
        """Paths matching ``pattern`` (a path under this root)."""
        if self.protocol == "file":
            import glob

            return sorted(glob.glob(pattern))
        import fnmatch  # one directory's names, through the light reader (no adlfs import)

        directory, _, name_pattern = pattern.rpartition("/")
        try:
            entries = self.blobs.ls(directory, detail=True)
        except (FileNotFoundError, OSError):
            return []
        return sorted(e["name"] for e in entries
                      if e.get("type") == "file" and fnmatch.fnmatchcase(e["name"].rsplit("/", 1)[-1], name_pattern))

    def read_bytes(self, path: str) -> bytes:
        if self.protocol == "file":
            with open(path, "rb") as f:
                return f.read()
        return self.blobs.cat_file(path)


def _check_regular(path: str) -> None:
    """A committed data file that is there but is not a regular file (a FIFO blocks a reader
    for ever, a directory is no Parquet) is a WarehouseError; a missing one is left to the
    reader, which says so."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WarehouseError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        raise WarehouseError(f"cannot read {path}: not a regular file")


def at(root: Root, as_of) -> Root:
    """``root`` reading the tables as of ``as_of`` (an AsOf, a version, a datetime or the
    text ``--as-of`` takes); ``root`` itself when None."""
    if as_of is None:
        return root
    if isinstance(as_of, bool):
        raise UsageError("as_of: give a version, a time or TABLE=VERSION pairs")
    from datetime import datetime

    if isinstance(as_of, int):
        as_of = AsOf(version=as_of)
    elif isinstance(as_of, datetime):
        as_of = AsOf(timestamp=as_of)
    elif not isinstance(as_of, AsOf):
        as_of = parse_as_of(str(as_of))
    return replace(root, as_of=as_of, pinned=None, all_local=False)


def locate(warehouse=None) -> Root:
    """The warehouse to read (flag > NX_WAREHOUSE > ./nx-warehouse); WarehouseError for a local
    directory that is not there."""
    if isinstance(warehouse, Root):
        return warehouse
    if isinstance(warehouse, os.PathLike):
        warehouse = os.fspath(warehouse)
    from_object = not isinstance(warehouse, (str, type(None)))  # a Warehouse
    url = warehouse.url if from_object else settings.resolve(settings.WAREHOUSE, warehouse)
    if from_object:
        return Root(url, warehouse.location.protocol, warehouse.location.path, warehouse,
                    account=warehouse.location.account)
    if "://" in url and not url.startswith("file://"):
        from nx import storage

        address = storage.azure_address(url)  # no filesystem made yet: adlfs only if DuckDB needs it
        if address is None:
            if not url.startswith(("https://", "http://")):
                storage.locate(url)  # its UsageError names the forms nx reads
            raise UsageError(f"{url}: a warehouse must be a directory or az:// location")
        return Root(url, "az", address[1], account=address[0])
    path = os.path.abspath(os.path.expanduser(url[len("file://"):] if url.startswith("file://") else url))
    if not os.path.isdir(path):
        raise WarehouseError(f"no warehouse at {url}: give --warehouse, set NX_WAREHOUSE, or run nx ingest first")
    return Root(url, "file", path)
