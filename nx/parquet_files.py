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

# Row groups: DuckDB pays for each group of a file on every query, and a neuron lookup decodes
# the whole group the neuron sits in. nx.neuron reads groups of up to 32K rows with pyarrow
# through a footer kept in memory (``nx.queries.row_groups``), larger ones with DuckDB. Tables
# of 64-token rows get groups of about 8 neurons (activation records) or 70 (scored sequences);
# explanation text 16K rows (one layer: 6,400); the token and related-neuron tables 32K rows
# (about 400-800 neurons): a lookup 5 ms instead of 15 with 128K-row groups, a whole nx sql
# process over them 0-15% slower. Other tables 128K. Groups hold one layer each (``groups``).
ROW_GROUP_ROWS = {"activation_records": 1024, "explanation_sequences": 1024, "explanations": 16 * 1024,
                  "token_lookups": 32 * 1024, "token_weights": 32 * 1024, "related_neurons": 32 * 1024}
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
            self._flush(everything=False)

    def _flush(self, everything: bool) -> None:
        """Write the pending rows as row groups (``groups``); unless ``everything``, a last
        group shorter than the table's size stays pending, for the next piece to fill."""
        whole = pa.concat_tables(self.pending)
        bounds = groups(whole, self.rows_per_group)
        if not everything and bounds and bounds[-1][1] - bounds[-1][0] < self.rows_per_group:
            bounds.pop()
        for start, stop in bounds:
            self.writer.write_table(whole.slice(start, stop - start), row_group_size=stop - start)
        done = bounds[-1][1] if bounds else 0
        rest = whole.slice(done)
        self.pending, self.pending_rows = ([rest] if len(rest) else []), len(rest)

    def close(self) -> int:
        """Finish the file; its size in bytes."""
        if self.pending:
            self._flush(everything=True)
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


def groups(rows: pa.Table, size: int) -> list[tuple[int, int]]:
    """(start, stop) of each row group of ``rows``: at most ``size`` rows, and, where the rows
    come in ``layer`` order, one layer each. A group that holds the end of one layer and the
    start of the next has the neuron range 0..6399 in its statistics, so a neuron lookup in
    either layer has to read it; with one layer a group, exactly one group holds a neuron. Rows
    out of layer order (no nx writer makes them) are cut by size only, not into a group per
    change of layer."""
    starts = [0]
    if "layer" in rows.column_names and len(rows) > 1:
        layer = rows["layer"]
        before, after = layer.slice(0, len(rows) - 1), layer.slice(1)
        if pc.all(pc.less_equal(before, after)).as_py() is not False:
            starts += [int(i) + 1 for i in pc.indices_nonzero(pc.not_equal(before, after).fill_null(True))
                       .to_numpy()]
    starts.append(len(rows))
    return [(cut, min(cut + size, stop)) for start, stop in zip(starts, starts[1:]) for cut in range(start, stop, size)]


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
