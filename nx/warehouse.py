"""The warehouse root (local or az://), table and partition paths, and the one atomic writer.

Layout: ``<root>/<table>/<key>=<value>/.../<name>.parquet``, zstd Parquet, partition keys in
the order the schema declares them. Every Parquet file nx writes goes through
``write_file``: it is checked against the table's declared schema, written under a temporary
name that no reader globs (``*.parquet.tmp-*``) and then moved into place, so a reader never
sees half a file and a crash leaves at worst a temporary file that the next write removes.
Ingest and explain's write-back both use it.
"""
from __future__ import annotations

import io
import uuid
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from nx import settings, storage
from nx.errors import UsageError, WarehouseError
from nx.schema import TABLES, Table

TMP_MARK = ".tmp-"
# Tables of 64-token rows get small row groups: reading one neuron (nx.neuron, the viewer)
# then decodes about 16 neurons' rows, not a whole file's 128, for files ~5% larger.
ROW_GROUP_ROWS = {"activation_records": 2048, "explanation_sequences": 2048}


def _table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise UsageError(f"unknown table {name!r}; tables: {', '.join(TABLES)}") from None


def partition_dir(table: Table, partitions: dict[str, object]) -> str:
    missing = [k for k in table.partition_names if k not in partitions]
    if missing:
        raise ValueError(f"{table.name}: partition value(s) missing: {missing}")
    return "/".join(f"{k}={partitions[k]}" for k in table.partition_names)


def conform(table: Table, data: pa.Table) -> pa.Table:
    """The stored columns of ``data`` in declared order and types; raises if one is missing."""
    missing = [n for n in table.columns.names if n not in data.column_names]
    if missing:
        raise ValueError(f"{table.name}: columns missing: {missing}")
    return data.select(table.columns.names).cast(table.columns)


class Warehouse:
    """A warehouse at a local path or az:// URL (flag > NX_WAREHOUSE > ./nx-warehouse)."""

    def __init__(self, url: str | None = None):
        self.url = settings.resolve(settings.WAREHOUSE, url)
        self.location = storage.locate(self.url)
        if self.location.protocol == "https":
            raise UsageError(f"{self.url}: a warehouse must be a directory or az:// location")
        self.fs = self.location.fs

    def __repr__(self) -> str:
        return f"Warehouse({self.url!r})"

    # -- paths ---------------------------------------------------------------------------
    def table_path(self, table: str) -> str:
        return self.location.join(_table(table).name)

    def partition_path(self, table: str, partitions: dict[str, object]) -> str:
        t = _table(table)
        return self.location.join(t.name, partition_dir(t, partitions))

    def file_path(self, table: str, partitions: dict[str, object], name: str) -> str:
        return f"{self.partition_path(table, partitions)}/{name}.parquet"

    def glob(self, table: str) -> str:
        """A glob of the table's Parquet files, as a URL DuckDB can read."""
        t = _table(table)
        stars = "/".join("*" for _ in t.partitions)
        return self.location.url_of(f"{self.table_path(table)}/{stars}/*.parquet")

    def has_table(self, table: str) -> bool:
        try:
            return bool(self.fs.glob(f"{self.table_path(table)}/**/*.parquet"))
        except FileNotFoundError:
            return False

    # -- writing -------------------------------------------------------------------------
    def write_file(self, table: str, partitions: dict[str, object], name: str, data: pa.Table) -> str:
        """Write ``data`` as ``<partition>/<name>.parquet``, atomically, replacing any file there."""
        t = _table(table)
        conformed = conform(t, data)
        directory = self.partition_path(table, partitions)
        final = f"{directory}/{name}.parquet"
        temporary = f"{final}{TMP_MARK}{uuid.uuid4().hex}"
        buffer = io.BytesIO()
        pq.write_table(conformed, buffer, compression="zstd", row_group_size=ROW_GROUP_ROWS.get(table, 64 * 1024),
                       use_dictionary=_dictionary_columns(conformed.schema),
                       use_byte_stream_split=_byte_stream_split_columns(conformed.schema),
                       write_statistics=_scalar_columns(conformed.schema))
        try:
            self.fs.makedirs(directory, exist_ok=True)
            self._remove_stale_temporaries(final)
            with self.fs.open(temporary, "wb") as out:
                out.write(buffer.getvalue())
            self.fs.mv(temporary, final)
        except OSError as exc:
            self._discard(temporary)
            raise WarehouseError(f"cannot write {final}: {exc}") from exc
        except BaseException:
            self._discard(temporary)
            raise
        return final

    def remove_file(self, table: str, partitions: dict[str, object], name: str) -> None:
        path = self.file_path(table, partitions, name)
        if self.fs.exists(path):
            self.fs.rm(path)

    def _discard(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except OSError:
            pass

    def _remove_stale_temporaries(self, final: str) -> None:
        for stale in self.fs.glob(f"{final}{TMP_MARK}*"):
            self._discard(stale)

    def check_writable(self) -> None:
        """Fail early, with one line, if the root cannot be written."""
        probe = self.location.join(f".nx-write-check{TMP_MARK}{uuid.uuid4().hex}")
        try:
            self.fs.makedirs(self.location.path, exist_ok=True)
            with self.fs.open(probe, "wb") as out:
                out.write(b"ok")
            self.fs.rm(probe)
        except (OSError, ValueError) as exc:
            raise WarehouseError(f"cannot write to the warehouse {self.url}: {exc}") from exc

    # -- reading -------------------------------------------------------------------------
    def read_file(self, table: str, partitions: dict[str, object], name: str,
                  columns: Iterable[str] | None = None) -> pa.Table | None:
        """One file's rows (stored columns only), or None if it is not there."""
        path = self.file_path(table, partitions, name)
        try:
            with self.fs.open(path, "rb") as f:
                return pq.read_table(f, columns=list(columns) if columns else None)
        except FileNotFoundError:
            return None

    def list_files(self, table: str, partitions: dict[str, object] | None = None) -> list[str]:
        """Paths of a table's Parquet files, under a partition prefix if given (in key order)."""
        t = _table(table)
        base = self.table_path(table)
        prefix = []
        for key in t.partition_names:
            if partitions and key in partitions:
                prefix.append(f"{key}={partitions[key]}")
            else:
                break
        depth = len(t.partitions) - len(prefix)
        pattern = "/".join([base, *prefix, *(["*"] * depth), "*.parquet"])
        try:
            return sorted(self.fs.glob(pattern))
        except FileNotFoundError:
            return []

    def read_table(self, table: str, partitions: dict[str, object] | None = None,
                   columns: Iterable[str] | None = None, filters=None) -> pa.Table:
        """All rows of a table under a partition prefix, partition columns included."""
        t = _table(table)
        files = self.list_files(table, partitions)
        wanted = list(columns) if columns else None
        pieces = []
        for path in files:
            with self.fs.open(path, "rb") as f:
                data = pq.read_table(f, columns=[c for c in wanted if c in t.columns.names] if wanted else None,
                                     filters=filters)
            values = _partition_values(t, path)
            for field in t.partitions:
                if wanted is None or field.name in wanted:
                    data = data.append_column(field, pa.array([values[field.name]] * len(data), field.type))
            pieces.append(data)
        full = t.schema if wanted is None else pa.schema([t.schema.field(c) for c in wanted])
        if not pieces:
            return full.empty_table()
        return pa.concat_tables([p.select(full.names).cast(full) for p in pieces])


def _leaf_path(field: pa.Field) -> tuple[str, pa.DataType]:
    """Parquet's leaf column path of a field ("tokens.list.element") with its type: encoding
    options name leaves, not fields (a field name silently matches nothing). nx's tables
    hold scalars and (nested) lists only: one leaf per field."""
    path, t = field.name, field.type
    while pa.types.is_list(t):
        path, t = f"{path}.list.element", t.value_type
    return path, t


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Leaves worth dictionary-encoding: all but floats (activations rarely repeat; encoding
    them costs a third of the write time). Tokens halve in size."""
    return [p for p, t in map(_leaf_path, schema) if not pa.types.is_floating(t)]


def _byte_stream_split_columns(schema: pa.Schema) -> list[str]:
    """Float leaves: split into byte streams, zstd compresses activations to 70% of their
    plain size in 40% of the time."""
    return [p for p, t in map(_leaf_path, schema) if pa.types.is_floating(t)]


def _scalar_columns(schema: pa.Schema) -> list[str]:
    """Columns whose min/max statistics are worth writing: readers prune on scalars
    (``neuron`` above all); statistics of 64-token lists are never used."""
    return [f.name for f in schema if not pa.types.is_list(f.type)]


def _partition_values(table: Table, path: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for part in path.replace("\\", "/").split("/"):
        key, sep, value = part.partition("=")
        if sep and key in table.partition_names:
            values[key] = int(value) if pa.types.is_integer(table.schema.field(key).type) else value
    return values
