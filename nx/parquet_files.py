"""Writing one Parquet data file the way every nx table wants it: zstd, dictionary-encoded
tokens and strings, byte-stream-split floats, min/max statistics for scalar columns only, row
groups sized per table, and the Delta statistics of the file (``statistics``). Used by
``nx.warehouse`` for new files and by compaction for merged ones.
"""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nx.errors import WarehouseError
from nx.schema import Table

# Row groups: DuckDB pays for each one a lookup must rule out (about 0.2 ms, measured on a
# compacted token_weights file: 2,048-row groups made a neuron lookup 20x slower than
# 131,072-row ones), and decodes the whole group a neuron sits in. Tables of 64-token rows get
# groups of about 16 neurons; explanation text 16K rows; small rows 128K.
ROW_GROUP_ROWS = {"activation_records": 2048, "explanation_sequences": 2048, "explanations": 16 * 1024}
DEFAULT_ROW_GROUP_ROWS = 128 * 1024


class ParquetStream:
    """One Parquet file written piece by piece: rows are buffered into row groups of the
    table's size whatever the pieces' sizes (a group per small piece would make thousands of
    them), and the file is written locally in place or uploaded whole when closed."""

    def __init__(self, fs, path: str, local: bool, table: str, schema: pa.Schema):
        self.path = path
        self.fs = fs
        self.rows_per_group = ROW_GROUP_ROWS.get(table, DEFAULT_ROW_GROUP_ROWS)
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.local = local
        try:
            fs.makedirs(self.path.rsplit("/", 1)[0], exist_ok=True)
            self.sink = open(self.path, "wb") if self.local else io.BytesIO()
        except OSError as exc:
            raise WarehouseError(f"cannot write {self.path}: {exc}") from exc
        self.writer = pq.ParquetWriter(self.sink, schema, compression="zstd", use_dictionary=_dictionary_columns(schema),
                                       use_byte_stream_split=_byte_stream_split_columns(schema),
                                       write_statistics=_scalar_columns(schema))

    def write(self, piece: pa.Table) -> None:
        self.pending.append(piece)
        self.pending_rows += len(piece)
        if self.pending_rows >= self.rows_per_group:
            whole = pa.concat_tables(self.pending)
            cut = (len(whole) // self.rows_per_group) * self.rows_per_group
            self.writer.write_table(whole.slice(0, cut), row_group_size=self.rows_per_group)
            rest = whole.slice(cut)
            self.pending, self.pending_rows = ([rest] if len(rest) else []), len(rest)

    def close(self) -> int:
        """Finish the file; its size in bytes."""
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=self.rows_per_group)
        self.writer.close()
        try:
            if self.local:
                size = self.sink.tell()
                self.sink.close()
                return size
            with self.fs.open(self.path, "wb") as out:
                out.write(self.sink.getvalue())
            return self.sink.tell()
        except OSError as exc:
            raise WarehouseError(f"cannot write {self.path}: {exc}") from exc


def statistics(spec: Table, pieces: list[pa.Table]) -> str:
    """Delta statistics of a file: row count, and min/max/null counts of its integer columns
    (``layer``, ``neuron``: what replacing rows and finding a neuron's file prune on)."""
    low: dict = {}
    high: dict = {}
    nulls: dict = {}
    for piece in pieces:
        for column_field in piece.schema:
            name = column_field.name
            if not pa.types.is_integer(column_field.type):
                continue
            nulls[name] = nulls.get(name, 0) + piece[name].null_count
            found = pc.min_max(piece[name])
            if found["min"].is_valid:
                low[name] = min(found["min"].as_py(), low.get(name, found["min"].as_py()))
                high[name] = max(found["max"].as_py(), high.get(name, found["max"].as_py()))
    return json.dumps({"numRecords": sum(len(p) for p in pieces), "minValues": low, "maxValues": high,
                       "nullCount": nulls})


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
