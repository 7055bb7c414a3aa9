"""Keeping the warehouse's Delta tables compact: compaction, vacuum and history.

- ``compact``: in each partition, the small files that writes leave (one per ingest unit or
  explain batch) are merged into files of up to ``TARGET_FILE_BYTES``, sorted by ``(layer,
  neuron)``, so a cross-neuron query opens a handful of files and row-group statistics still
  prune a neuron lookup. Files already large whose key ranges overlap no other's (an ingest
  unit of collated activations writes one of 20-60 MB) are left as they are, and merged files
  stop where such a file starts. Files are streamed in key order: those whose key ranges overlap
  (a re-ingested neuron) are read and sorted together, the others are copied through one at a
  time, so memory holds one file's rows, not a partition's. The rewrite is one commit that
  changes no data (``dataChange: false``); a checkpoint follows, so readers read the log in
  one request. Run after every ``nx ingest`` and ``nx explain``, and by ``nx compact``.
- ``vacuum``: deletes data files that no version younger than the retention references,
  and files no commit ever referenced (left by a killed writer), through delta-rs.
- ``history``: the commits of each table with the metadata nx gave them.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from nx import delta_log
from nx.errors import UsageError, WarehouseError
from nx.schema import TABLES

TARGET_FILE_BYTES = 128 * 1024 * 1024
# A file this large that overlaps no other is left alone: reading it costs far more than
# opening it, so merging it would save a query little and cost a rewrite of its bytes (an
# ingest unit of collated activations writes 20-60 MB per table).
KEPT_FILE_BYTES = 16 * 1024 * 1024
DEFAULT_RETENTION_HOURS = 168  # Delta's default: a week of time travel


@dataclass
class CompactReport:
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (files before, after)

    def asdict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if not self.tables:
            return "nothing to compact"
        return "\n".join(f"{t}: {before} files -> {after}" for t, (before, after) in self.tables.items())


def _sort_key(spec, f: delta_log.DataFile) -> tuple:
    """A file's smallest and largest (layer, neuron), from partition values and statistics."""
    low, high = [], []
    for column in spec.key:
        if column in spec.partition_names:
            value = int(f.partition_values[column])
            low.append(value)
            high.append(value)
        else:
            bounds = f.bounds(column)
            low.append(bounds[0] if bounds else -1)
            high.append(bounds[1] if bounds else 1 << 40)
    return tuple(low), tuple(high)


def _clusters(spec, files: list[delta_log.DataFile]) -> list[list[delta_log.DataFile]]:
    """Files in key order, grouped where their key ranges overlap."""
    ordered = sorted(files, key=lambda f: (_sort_key(spec, f), f.path))
    clusters: list[list] = []
    reach = None
    for f in ordered:
        low, high = _sort_key(spec, f)
        if clusters and reach is not None and low <= reach:
            clusters[-1].append(f)
            reach = max(reach, high)
        else:
            clusters.append([f])
            reach = high
    return clusters


def _kept(spec, files: list[delta_log.DataFile]) -> set[str]:
    """Files compaction leaves as they are: those of at least half the target size, and those
    of at least ``KEPT_FILE_BYTES`` whose key range overlaps no other file's (sorted, as every
    file is written, so nothing would change but the file count)."""
    kept = {f.path for f in files if f.size >= TARGET_FILE_BYTES // 2}
    for cluster in _clusters(spec, files):
        if len(cluster) == 1 and cluster[0].size >= KEPT_FILE_BYTES:
            kept.add(cluster[0].path)
    return kept


def compact_table(warehouse, table: str, operation: str = "compact") -> tuple[int, int]:
    """Compact one table; (data files before, after)."""
    import pyarrow as pa

    from nx.parquet_files import statistics
    from nx.warehouse import NewFile

    spec = TABLES[table]
    snapshot = warehouse.snapshot(table)
    if snapshot is None:
        return 0, 0
    by_partition: dict[tuple, list] = {}
    for f in snapshot.files:
        by_partition.setdefault(tuple(f.partition_values.get(k) for k in spec.partition_names), []).append(f)
    removes, adds = [], []
    for values, files in by_partition.items():
        kept = _kept(spec, files)
        small = [f for f in files if f.path not in kept]
        if len(small) < 2:
            continue
        # merged files stop where a kept one starts, so that file ranges stay apart
        boundaries = sorted(_sort_key(spec, f)[0] for f in files if f.path in kept)
        partition = dict(zip(spec.partition_names, values))
        directory = small[0].path.rsplit("/", 1)[0]
        stream = None
        pieces: list = []  # what the open output file holds (for its statistics: integers only)
        written = 0

        def flush() -> None:
            nonlocal stream, pieces, written
            if stream is not None:
                size = stream.close()
                adds.append(NewFile(relative, size, dict(partition), int(datetime.now().timestamp() * 1000),
                                    statistics(spec, pieces), sum(len(p) for p in pieces)))
            stream, pieces, written = None, [], 0

        for cluster in _clusters(spec, small):
            low = _sort_key(spec, cluster[0])[0]
            while boundaries and boundaries[0] <= low:
                boundaries.pop(0)
                flush()
            data = pa.concat_tables([warehouse._read_file(table, f.path, list(spec.columns.names)) for f in cluster])
            stored_key = [k for k in spec.key if k not in spec.partition_names]
            if len(cluster) > 1 and stored_key:
                data = data.sort_by([(k, "ascending") for k in stored_key])  # stable: keeps each neuron's order
            if stream is None:
                relative = f"{directory}/part-{uuid.uuid4().hex}.parquet"
                stream = warehouse.open_stream(table, relative, data.schema)
            stream.write(data)
            pieces.append(data.select([f.name for f in data.schema if pa.types.is_integer(f.type)]))
            written += sum(f.size for f in cluster)
            if written >= TARGET_FILE_BYTES:
                flush()
        flush()
        removes += small
    if not removes:
        return len(snapshot.files), len(snapshot.files)
    try:
        warehouse.commit(table, adds, operation="compact", metadata={"after": operation},
                         data_change=False, removes=removes)
    except WarehouseError:
        warehouse.discard(table, adds)  # another writer changed these files: compact next time
        return len(snapshot.files), len(snapshot.files)
    _checkpoint(warehouse, table)
    return len(snapshot.files), len(snapshot.files) - len(removes) + len(adds)


def _checkpoint(warehouse, table: str) -> None:
    from deltalake import DeltaTable

    try:
        DeltaTable(warehouse.table_uri(table), storage_options=warehouse.storage_options()).create_checkpoint()
    except Exception:  # noqa: BLE001  a checkpoint only speeds reading the log up
        pass


def compact(warehouse, tables: list[str] | None = None, operation: str = "compact") -> CompactReport:
    report = CompactReport()
    for table in tables or [t for t in TABLES if warehouse.has_table(t)]:
        report.tables[table] = compact_table(warehouse, table, operation)
    return report


@dataclass
class VacuumReport:
    removed: dict[str, int] = field(default_factory=dict)
    retention_hours: float = DEFAULT_RETENTION_HOURS

    def asdict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        total = sum(self.removed.values())
        lines = [f"{t}: {n} files removed" for t, n in self.removed.items() if n]
        return "\n".join(lines + [f"{total} files removed (retention {self.retention_hours:g} h)"])


def vacuum(warehouse, tables: list[str] | None = None, retention_hours: float = DEFAULT_RETENTION_HOURS,
           dry_run: bool = False) -> VacuumReport:
    """Delete files no version within the retention needs, and files never committed."""
    from deltalake import DeltaTable

    if retention_hours < 0:
        raise UsageError("--retention-hours must be 0 or more")
    report = VacuumReport(retention_hours=retention_hours)
    for table in tables or [t for t in TABLES if warehouse.has_table(t)]:
        delta = DeltaTable(warehouse.table_uri(table), storage_options=warehouse.storage_options())
        removed = delta.vacuum(retention_hours=int(retention_hours), dry_run=dry_run,
                               enforce_retention_duration=False, full=True)
        report.removed[table] = len(removed)
    return report


def history(warehouse, table: str | None = None) -> list[dict]:
    """Commits of one table (or all), newest first: version, time, operation, nx's metadata."""
    if table is not None and table not in TABLES:
        raise UsageError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    rows = []
    for name in [table] if table else [t for t in TABLES if warehouse.has_table(t)]:
        for info in delta_log.commit_infos(warehouse.log(name)):
            nx_info = info.get("nx") or {}
            millis = info.get("inCommitTimestamp", info.get("timestamp"))
            rows.append({
                "table": name,
                "version": info["version"],
                "committed_at": datetime.fromtimestamp(millis / 1000, timezone.utc) if millis else None,
                "operation": nx_info.get("operation") or info.get("operation"),
                "nx_version": nx_info.get("nx_version"),
                "details": {k: v for k, v in nx_info.items() if k not in ("operation", "nx_version")},
            })
    rows.sort(key=lambda r: (r["committed_at"] or datetime.min.replace(tzinfo=timezone.utc), r["version"]),
              reverse=True)
    return rows


def open_warehouse(warehouse=None):
    """The Warehouse to maintain (flag > NX_WAREHOUSE > default); a local one must exist."""
    from nx.queries.location import locate

    return locate(warehouse).warehouse
