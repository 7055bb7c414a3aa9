"""Converting a warehouse written by nx before its tables were Delta tables, in place.

The older layout was plain Hive-partitioned Parquet, every table partitioned by ``layer`` too
(``<table>/model=.../[run=...|kind=...]/layer=N/part-00000.parquet``), with no log. A table
is converted by reading each of its files, writing the rows again in today's layout (``layer``
a column where it is no longer a partition), committing them all in one Delta commit, and
only then deleting the old files: a crash before the commit leaves the old table as it was
(the next try starts over; what the crashed try wrote is never committed and vacuum removes
it), a crash after it leaves old files that ``nx migrate`` deletes when run again. Compaction
follows. Writers (``nx ingest``, ``nx explain``) convert a table they are about to write.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field

from nx.schema import TABLES

_NEW_NAME = re.compile(r"^part-[0-9a-f]{32}\.parquet$")


@dataclass
class MigrateReport:
    tables: dict[str, int] = field(default_factory=dict)  # table -> old files converted
    removed: int = 0  # old files left behind by an interrupted conversion, deleted now

    def asdict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if not self.tables and not self.removed:
            return "nothing to convert: every table is a Delta table"
        lines = [f"{table}: {count} Parquet files converted to a Delta table" for table, count in self.tables.items()]
        if self.removed:
            lines.append(f"{self.removed} files of an earlier, interrupted conversion removed")
        return "\n".join(lines)


def legacy_files(warehouse, table: str) -> list[str]:
    """The table's Parquet files in the older layout (paths in the warehouse's filesystem)."""
    root = warehouse.table_path(table)
    if warehouse.location.protocol == "file" and not os.path.isdir(root):
        return []  # (asked of every table a writer starts with: without importing fsspec)
    try:
        found = warehouse.fs.find(root)
    except (FileNotFoundError, OSError):
        return []
    return sorted(p for p in found if p.endswith(".parquet") and "/_delta_log/" not in p.replace("\\", "/")
                  and not _NEW_NAME.match(p.replace("\\", "/").rsplit("/", 1)[-1]))


def needed(warehouse) -> list[str]:
    """Tables still in the older layout (cheap: only tables without a Delta log are listed)."""
    return [t for t in TABLES if not warehouse.has_table(t) and legacy_files(warehouse, t)]


def _values(path: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in path.replace("\\", "/").split("/") if "=" in part)


def migrate(warehouse, tables: list[str] | None = None) -> MigrateReport:
    """Convert the tables (default: all) that are still in the older layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nx import delta_log, maintenance

    report = MigrateReport()
    for table in list(TABLES) if tables is None else tables:
        spec = TABLES[table]
        old = legacy_files(warehouse, table)
        if not old:
            continue
        if warehouse.has_table(table) and any((i.get("nx") or {}).get("operation") == "migrate"
                                              for i in delta_log.commit_infos(warehouse.log(table))):
            for path in old:  # converted already; these outlived an interrupted clean-up
                warehouse.fs.rm(path)
            report.removed += len(old)
            continue
        written = []
        for path in old:
            values = _values(path)
            with warehouse.fs.open(path, "rb") as f:
                data = pq.read_table(f)
            for column in spec.columns:  # a column added after the file was written
                if column.name not in data.column_names and column.name not in values:
                    data = data.append_column(column, pa.nulls(len(data), column.type))
            typed = {}
            for name, value in values.items():
                if name in spec.schema.names:
                    kind = spec.schema.field(name).type
                    typed[name] = int(value) if pa.types.is_integer(kind) else value
            written += warehouse.write_files(table, typed, data)
        warehouse.commit(table, written, operation="migrate", metadata={"files": len(old)})
        for path in old:
            warehouse.fs.rm(path)
        report.tables[table] = len(old)
        maintenance.compact_table(warehouse, table, "migrate")
    return report
