"""The warehouse root (local or az://) and its tables, each a Delta Lake table.

Layout: ``<root>/<table>/`` is a Delta table (``_delta_log/`` beside Hive partition directories
``<key>=<value>/`` holding zstd Parquet files), readable by Spark, Trino, polars
``scan_delta``, DuckDB's delta extension and ``deltalake``. Writing takes two steps:

1. ``write_files`` (in any process, e.g. an ingest worker) writes a table's rows as new Parquet
   files with unique names and returns them as ``NewFile``s (``open_file``: one file written
   piece by piece, as an ingest unit makes its rows). Nothing sees them yet.
2. ``commit`` (one process) makes many of them visible in one Delta commit, and in the same
   commit removes the rows they replace: every write replaces the rows of the neurons it
   names (``Replace``), so a re-run, a changed source file or a second writer never
   duplicates rows. nx's commits carry one application transaction id, so two nx writers
   committing at once conflict instead of both succeeding; the loser re-reads the table and
   retries. Files of a commit that never happened (``kill -9``) are seen by no reader and
   removed by ``nx vacuum``.

Compaction, vacuum and history are in ``nx/maintenance.py``; readers take a version's file list
from ``nx/delta_log.py``. deltalake (delta-rs) and pyarrow are imported by writers only.
"""
from __future__ import annotations

import bisect
import contextlib
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nx import delta_log, settings, storage
from nx.errors import UsageError, WarehouseError
from nx.parquet_files import ParquetStream, statistics
from nx.schema import TABLES, Table

APP_ID = "nx"  # every nx commit carries this transaction id: concurrent nx commits conflict
COMMIT_ATTEMPTS = 30


def table_spec(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise UsageError(f"unknown table {name!r}; tables: {', '.join(TABLES)}") from None


def conform(table: Table, data: pa.Table) -> pa.Table:
    """The stored columns of ``data`` in declared order and types; raises if one is missing."""
    missing = [n for n in table.columns.names if n not in data.column_names]
    if missing:
        raise ValueError(f"{table.name}: columns missing: {missing}")
    return data.select(table.columns.names).cast(table.columns)


def partition_dir(table: Table, values: dict) -> str:
    missing = [k for k in table.partition_names if k not in values]
    if missing:
        raise ValueError(f"{table.name}: partition value(s) missing: {missing}")
    return "/".join(f"{k}={values[k]}" for k in table.partition_names)


@dataclass(frozen=True)
class NewFile:
    """A data file written but not committed: what a Delta add action needs."""

    path: str                # relative to the table, posix
    size: int
    partition_values: dict
    modification_time: int   # milliseconds
    stats: str               # Delta statistics JSON
    rows: int


@dataclass
class Replace:
    """Rows a commit replaces: in the partitions matching ``partitions`` (string values of
    some partition keys), those whose ``table.key`` values are in ``keys`` (all, if None)."""

    partitions: dict
    keys: set | None = None


@dataclass
class CommitResult:
    version: int
    added: int = 0
    removed: int = 0
    rewritten: int = 0
    retries: int = 0
    files: list = field(default_factory=list)


READ_WHOLE_BYTES = 64 << 20  # a remote data file up to this size is read into memory whole


class Warehouse:
    """A warehouse at a local path or az:// URL (flag > NX_WAREHOUSE > ./nx-warehouse)."""

    def __init__(self, url: str | None = None):
        self.url = settings.resolve(settings.WAREHOUSE, url)
        self.location = storage.locate(self.url)
        if self.location.protocol == "https":
            raise UsageError(f"{self.url}: a warehouse must be a directory or az:// location")

    @property
    def fs(self):
        """The fsspec filesystem (for a local warehouse, made on first use: see ``storage``)."""
        return self.location.fs

    def __repr__(self) -> str:
        return f"Warehouse({self.url!r})"

    # -- paths ---------------------------------------------------------------------------
    def table_path(self, table: str) -> str:
        return self.location.join(table_spec(table).name)

    def table_uri(self, table: str) -> str:
        """The table's location as delta-rs spells it."""
        path = self.table_path(table)
        return path if self.location.protocol == "file" else "az://" + path.lstrip("/")

    def storage_options(self) -> dict[str, str] | None:
        if self.location.protocol != "az":
            return None
        return storage.delta_storage_options(self.location.account)

    def url_of(self, table: str, relative: str) -> str:
        """A data file (path relative to its table) as a URL DuckDB and pyarrow can open."""
        return self.location.url_of(f"{self.table_path(table)}/{relative}")

    def log(self, table: str) -> delta_log.LogFiles:
        return delta_log.LogFiles(self.table_path(table), None if self.location.protocol == "file" else self.fs)

    # -- reading -------------------------------------------------------------------------
    def snapshot(self, table: str, version: int | None = None, timestamp=None) -> delta_log.Snapshot | None:
        return delta_log.snapshot(self.log(table), version, timestamp)

    def has_table(self, table: str) -> bool:
        return delta_log.exists(self.log(table))

    def files(self, table: str, partitions: dict | None = None, snapshot=None) -> list[delta_log.DataFile]:
        """The current data files of a table, in the partitions matching ``partitions``."""
        found = snapshot if snapshot is not None else self.snapshot(table)
        if found is None:
            return []
        wanted = {k: str(v) for k, v in (partitions or {}).items() if k in table_spec(table).partition_names}
        return [f for f in found.files if all(f.partition_values.get(k) == v for k, v in wanted.items())]

    def read_table(self, table: str, partitions: dict | None = None, columns: Iterable[str] | None = None,
                   filters=None, version: int | None = None, neurons: tuple[int, int] | None = None) -> pa.Table:
        """Rows of a table (partition columns included) in the partitions matching
        ``partitions``; a value given for a stored column (``layer``) filters rows too, and
        so does ``neurons``, a range (first, last) of neuron numbers."""
        spec = table_spec(table)
        wanted = list(columns) if columns else list(spec.schema.names)
        snapshot = self.snapshot(table, version) if version is not None else None
        chosen = self.files(table, partitions, snapshot)
        row_filters = {k: v for k, v in (partitions or {}).items() if k not in spec.partition_names}
        chosen = [f for f in chosen if f.may_hold(**row_filters)]
        if neurons is not None:
            chosen = [f for f in chosen if f.overlaps("neuron", *neurons)]
            between = [("neuron", ">=", neurons[0]), ("neuron", "<=", neurons[1])]
            filters = [list(c) + between for c in filters] if filters and isinstance(filters[0], list) \
                else list(filters or []) + between
        stored = [c for c in wanted if c in spec.columns.names]
        needed = stored + [k for k in row_filters if k not in stored]
        pieces = []
        for f in chosen:
            data = self._read_file(table, f.path, needed, filters)
            for key, value in row_filters.items():
                data = data.filter(pc.equal(data[key], pa.scalar(value, spec.schema.field(key).type)))
            for name in wanted:
                if name in spec.partition_names:
                    data = data.append_column(spec.schema.field(name),
                                              spec.partition_column(name, f.partition_values.get(name), len(data)))
            pieces.append(data)
        full = pa.schema([spec.schema.field(c) for c in wanted])
        if not pieces:
            return full.empty_table()
        return pa.concat_tables([p.select(full.names).cast(full) for p in pieces])

    def _read_file(self, table: str, relative: str, columns: list[str], filters=None) -> pa.Table:
        path = f"{self.table_path(table)}/{relative}"
        try:
            # A local file by its path, a remote one of up to READ_WHOLE_BYTES as bytes: Arrow
            # reads them itself. Handed a Python file object, a filtered read leaves scan tasks on
            # Arrow's threads that release the object later, and one still running at
            # interpreter exit aborts the process (std::terminate).
            local = self.location.protocol == "file"
            with contextlib.nullcontext() if local else self.fs.open(path, "rb") as handle:
                source = path if local else \
                    pa.BufferReader(handle.read()) if (handle.size or 0) <= READ_WHOLE_BYTES else handle
                try:
                    return pq.read_table(source, columns=columns, filters=filters, partitioning=None)
                except pa.ArrowInvalid as exc:   # a column declared after the file was written
                    if "No match for FieldRef" not in str(exc):
                        raise
                    if not local:
                        source.seek(0)
                    present = set(pq.read_schema(source).names)
                    if not local:
                        source.seek(0)
                    data = pq.read_table(source, columns=[c for c in columns if c in present], filters=filters,
                                         partitioning=None)
            declared = table_spec(table).columns
            return pa.table([data[c] if c in present else pa.nulls(len(data), declared.field(c).type) for c in columns],
                            schema=pa.schema([data.schema.field(c) if c in present else declared.field(c) for c in columns]))
        except (OSError, pa.ArrowInvalid) as exc:
            raise WarehouseError(f"cannot read {path}: {' '.join(str(exc).split())[:300]}") from exc

    # -- writing -------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Fail early, with one line, if the root cannot be written."""
        probe = self.location.join(f".nx-write-check-{uuid.uuid4().hex}")
        local = self.location.protocol == "file"
        try:
            (os.makedirs if local else self.fs.makedirs)(self.location.path, exist_ok=True)
            with (open if local else self.fs.open)(probe, "wb") as out:
                out.write(b"ok")
            (os.remove if local else self.fs.rm)(probe)
        except (OSError, ValueError) as exc:
            raise WarehouseError(f"cannot write to the warehouse {self.url}: {exc}") from exc

    def write_files(self, table: str, values: dict, data: pa.Table) -> list[NewFile]:
        """Write ``data`` (the stored columns; a stored column that ``values`` names, such as
        ``layer``, is set to that value) as one new file in the partition ``values`` names.
        Not visible until committed."""
        writer = self.open_file(table, values)
        writer.write(data)
        written = writer.close()
        return [written] if written else []

    def open_file(self, table: str, values: dict) -> "FileWriter":
        """One new file of the partition ``values`` names, written piece by piece (an ingest
        unit's rows, a few neurons at a time); ``close`` gives it as a ``NewFile``."""
        return FileWriter(self, table_spec(table), values)

    def open_stream(self, table: str, relative: str, schema: pa.Schema) -> ParquetStream:
        """A Parquet file written piece by piece, in full row groups (compaction's output)."""
        local = self.location.protocol == "file"
        return ParquetStream(_LOCAL_DIRECTORIES if local else self.fs, f"{self.table_path(table)}/{relative}", local,
                             table, schema)

    def append(self, table: str, values: dict, data: pa.Table, replace: list[Replace] = (),
               operation: str = "write", metadata: dict | None = None) -> CommitResult:
        """``write_files`` and ``commit`` in one: rows added to a table at once."""
        return self.commit(table, self.write_files(table, values, data), replace, operation, metadata)

    def discard(self, table: str, files: Iterable[NewFile]) -> None:
        """Remove files that will not be committed (best effort: vacuum finds any left)."""
        for f in files:
            try:
                self.fs.rm(f"{self.table_path(table)}/{f.path}")
            except OSError:
                pass

    def commit(self, table: str, files: list[NewFile], replace: list[Replace] = (), operation: str = "write",
               metadata: dict | None = None, data_change: bool = True, removes: list | None = None) -> CommitResult:
        """Make ``files`` visible and remove the rows ``replace`` names, in one commit; retried
        on a concurrent commit (against the table as it then is). ``removes`` are data files
        to drop whole (compaction), checked to still be there."""
        from deltalake.exceptions import CommitFailedError

        spec = table_spec(table)
        result = CommitResult(version=-1)
        for attempt in range(COMMIT_ATTEMPTS):
            delta = self._open_for_write(table)
            current = self.snapshot(table, delta.version())
            removed, rewritten = self._replaced(table, current, replace)
            if removes is not None:
                present = {f.path for f in current.files}
                if any(r.path not in present for r in removes):
                    raise WarehouseError(f"{table}: files to compact were changed by another writer")
                removed = removed + [r for r in removes if r.path not in {x.path for x in removed}]
            actions = [_add_action(f, data_change) for f in [*files, *rewritten]]
            actions += [_remove_action(f, data_change) for f in removed]
            if not actions:
                result.version = current.version
                return result
            try:
                counts = {"files_added": len(files) + len(rewritten), "files_removed": len(removed),
                          "rows_added": sum(f.rows for f in files)}
                delta.create_write_transaction(actions, "append", spec.schema, list(spec.partition_names),
                                               commit_properties=_commit_properties(operation, {**(metadata or {}),
                                                                                               **counts}))
            except CommitFailedError as exc:
                self.discard(table, rewritten)
                if attempt + 1 == COMMIT_ATTEMPTS:
                    raise WarehouseError(f"{table}: could not commit after {COMMIT_ATTEMPTS} tries "
                                         f"(other writers kept committing): {exc}") from exc
                result.retries += 1
                time.sleep(random.uniform(0.01, 0.05 * min(attempt + 1, 10)))
                continue
            except OSError as exc:
                raise WarehouseError(f"cannot commit to {self.table_uri(table)}: {exc}") from exc
            result.version = delta_log.latest_version(self.log(table))
            result.added, result.removed, result.rewritten = len(files), len(removed), len(rewritten)
            return result
        return result

    def _open_for_write(self, table: str):
        """The Delta table, created (empty, with the declared schema) if it is not there."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        uri, options = self.table_uri(table), self.storage_options()
        try:
            return DeltaTable(uri, storage_options=options)
        except TableNotFoundError:
            pass
        spec = table_spec(table)
        try:
            DeltaTable.create(uri, spec.schema, mode="ignore", partition_by=list(spec.partition_names),
                              name=spec.name, description=spec.doc, storage_options=options,
                              commit_properties=_commit_properties("create", None))
        except Exception as exc:  # noqa: BLE001  a writer that created it at the same moment wins
            if not self.has_table(table):
                raise WarehouseError(f"cannot create table {uri}: {exc}") from exc
        return DeltaTable(uri, storage_options=options)

    def _replaced(self, table: str, current: delta_log.Snapshot, replace: Iterable[Replace]
                  ) -> tuple[list[delta_log.DataFile], list[NewFile]]:
        """Files to remove, and files written again without the replaced rows, for ``replace``."""
        spec = table_spec(table)
        removed: dict[str, delta_log.DataFile] = {}
        rewritten: list[NewFile] = []
        for rule in replace:
            by_layer = _by_layer(rule.keys) if rule.keys is not None else {}
            for f in self.files(table, rule.partitions, current):
                if f.path in removed:
                    continue
                if rule.keys is None:
                    removed[f.path] = f
                    continue
                if not _keys_in_file(spec, f, by_layer):
                    continue
                kept = self._without(table, f, rule.keys)
                if kept is None:
                    continue
                removed[f.path] = f
                if len(kept):
                    rewritten += self.write_files(table, _partition_values(spec, f), kept)
        return list(removed.values()), rewritten

    def _without(self, table: str, f: delta_log.DataFile, keys: set) -> pa.Table | None:
        """The file's rows without those whose key is in ``keys``; None if it has none of them."""
        spec = table_spec(table)
        stored = [k for k in spec.key if k not in spec.partition_names]
        data = self._read_file(table, f.path, list(spec.columns.names))
        codes = [_key_code(*k) if len(k) == 2 else k[0] for k in keys]
        columns = [pc.cast(data[k], pa.int64()) if k in stored
                   else pa.array([int(f.partition_values[k])] * len(data), pa.int64()) for k in spec.key]
        code = pc.add(pc.multiply(columns[0], 1 << 32), columns[1]) if len(columns) == 2 else columns[0]
        hit = pc.is_in(code, pa.array(codes, pa.int64()))
        if not pc.any(hit).as_py():
            return None
        return data.filter(pc.invert(hit))


class FileWriter:
    """A new data file written piece by piece (``Warehouse.open_file``): each piece is
    conformed, and given the partition's values for stored columns, as ``write_files`` does;
    the file is made at the first row, and ``close`` gives it (None if no row came)."""

    def __init__(self, warehouse: Warehouse, spec: Table, values: dict):
        self.warehouse, self.spec, self.values = warehouse, spec, values
        self.relative = f"{partition_dir(spec, values)}/part-{uuid.uuid4().hex}.parquet"
        self.stream: ParquetStream | None = None
        self.keys: list[pa.Table] = []  # the integer columns written, for the file's statistics

    def write(self, data: pa.Table) -> None:
        for name, value in self.values.items():
            if name in self.spec.columns.names:
                field_ = self.spec.columns.field(name)
                constant = pa.array([value] * len(data), field_.type)
                data = (data.set_column(data.column_names.index(name), field_, constant)
                        if name in data.column_names else data.append_column(field_, constant))
        conformed = conform(self.spec, data)
        if len(conformed) == 0:
            return
        if self.stream is None:
            self.stream = self.warehouse.open_stream(self.spec.name, self.relative, conformed.schema)
        self.stream.write(conformed)
        self.keys.append(conformed.select([f.name for f in conformed.schema if pa.types.is_integer(f.type)]))

    def close(self) -> NewFile | None:
        if self.stream is None:
            return None
        size = self.stream.close()
        return NewFile(self.relative, size, {k: str(self.values[k]) for k in self.spec.partition_names},
                       int(time.time() * 1000), statistics(self.spec, self.keys), sum(len(k) for k in self.keys))


class _LocalDirectories:
    """All a stream of a local file asks of its filesystem (it writes the file itself): making
    its directory. Ingest workers thus never import fsspec."""

    @staticmethod
    def makedirs(path: str, exist_ok: bool = False) -> None:
        os.makedirs(path, exist_ok=exist_ok)


_LOCAL_DIRECTORIES = _LocalDirectories()


def _key_code(layer: int, neuron: int) -> int:
    """(layer, neuron) as one integer, the way ``_without`` computes it column-wise."""
    return layer * (1 << 32) + neuron


def _keys_in_file(spec: Table, f: delta_log.DataFile, by_layer: dict[int, list[int]]) -> bool:
    """Whether the file's partition values and statistics leave room for any of the keys
    (``_by_layer`` of (layer, neuron) tuples)."""
    if len(spec.key) != 2:
        return True
    if "layer" in spec.partition_names:
        layers = [int(f.partition_values["layer"])] if f.partition_values.get("layer") is not None else []
    else:
        bounds = f.bounds("layer")
        layers = [layer for layer in by_layer if bounds is None or bounds[0] <= layer <= bounds[1]]
    neuron_bounds = f.bounds("neuron")
    for layer in layers:
        neurons = by_layer.get(layer)
        if not neurons:
            continue
        if neuron_bounds is None:
            return True
        at = bisect.bisect_left(neurons, neuron_bounds[0])
        if at < len(neurons) and neurons[at] <= neuron_bounds[1]:
            return True
    return False


def _by_layer(keys: set) -> dict[int, list[int]]:
    """layer -> sorted neurons of a set of (layer, neuron) keys: what ``_keys_in_file`` bisects."""
    found: dict[int, list[int]] = {}
    for layer, neuron in keys:
        found.setdefault(layer, []).append(neuron)
    return {layer: sorted(neurons) for layer, neurons in found.items()}


def _partition_values(spec: Table, f: delta_log.DataFile) -> dict:
    return {k: f.partition_values.get(k) for k in spec.partition_names}


def _add_action(f: NewFile, data_change: bool):
    from deltalake.transaction import AddAction

    return AddAction(f.path, f.size, f.partition_values, f.modification_time, data_change, f.stats)


def _remove_action(f: delta_log.DataFile, data_change: bool):
    from deltalake.transaction import RemoveAction

    return RemoveAction(f.path, data_change, int(time.time() * 1000), f.size, f.partition_values)


def _commit_properties(operation: str, metadata: dict | None):
    from deltalake import CommitProperties
    from deltalake.transaction import Transaction

    from nx import __version__

    info = {"operation": operation, "nx_version": __version__, **(metadata or {})}
    return CommitProperties(custom_metadata={"nx": info}, max_commit_retries=0,
                            app_transactions=[Transaction(APP_ID, time.time_ns() // 1000)])


