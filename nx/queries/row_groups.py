"""One neuron's rows of a local Parquet file, read from the row groups that may hold it (pyarrow).

For ``nx.neuron`` and the viewer's neuron page. DuckDB, for the same lookup, checks the
statistics of every row group of the file again at each query and decodes the whole group the
neuron sits in while it holds the GIL; here each group's ``layer`` and ``neuron`` ranges are
read once per file and process (Delta never rewrites a file: a file's path, size and time name
its contents), the groups that may hold the neuron are read alone, strings as dictionaries, and
only the neuron's rows are made Python objects. nx writes groups of one layer and at most 32K
rows (``nx.parquet_files``); larger groups, as older warehouses have, and remote files are left
to DuckDB (``read_local``), which decodes only the rows its filter keeps.

A file that is not readable Parquet, or whose ``neuron`` column is not an integer, is a
WarehouseError naming it.
"""
from __future__ import annotations

import os
import threading
from stat import S_ISREG
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nx.errors import WarehouseError
from nx.schema import TABLES, Table

FOOTERS_KEPT = 512  # files whose footer and ranges stay in memory (a few hundred KB each at most)
# Above this many rows in the groups to read, DuckDB is cheaper: it decodes only the rows its
# filter keeps (groups of 128K rows, as in tables written before the token tables had 32K).
MOST_ROWS = 32 * 1024


@dataclass(frozen=True)
class Footer:
    """A file's Parquet metadata, its column names and each row group's (min, max) of
    ``layer`` and of ``neuron`` (None where a group has no statistics)."""

    metadata: pq.FileMetaData
    names: tuple[str, ...]
    schema: pa.Schema
    strings: tuple[str, ...]  # leaves of string columns, read as dictionaries (most are repeats)
    layers: tuple[tuple[int, int] | None, ...]
    neurons: tuple[tuple[int, int] | None, ...]

    def rows_in(self, groups: list[int]) -> int:
        return sum(self.metadata.row_group(group).num_rows for group in groups)

    def groups_holding(self, layer: int, neuron: int) -> list[int]:
        """Row groups whose statistics do not rule out (layer, neuron)."""
        return [i for i, (layers, neurons) in enumerate(zip(self.layers, self.neurons))
                if (layers is None or layers[0] <= layer <= layers[1])
                and (neurons is None or neurons[0] <= neuron <= neurons[1])]


_FOOTERS: OrderedDict[tuple, Footer] = OrderedDict()
_LOCK = threading.Lock()


def footer(path: str) -> Footer:
    """The footer of the local file ``path``, read once while it is unchanged."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise WarehouseError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not S_ISREG(stat.st_mode):  # a FIFO would block the read for ever
        raise WarehouseError(f"cannot read {path}: not a regular file")
    key = (path, stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        found = _FOOTERS.get(key)
        if found is not None:
            _FOOTERS.move_to_end(key)
            return found
    try:
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise WarehouseError(f"cannot read {path}: not a readable Parquet file ({exc})") from exc
    names = tuple(schema.names)
    if "neuron" not in names:
        raise WarehouseError(f"cannot read {path}: it has no neuron column, so it is not a file of this table")
    for column in ("layer", "neuron"):
        if column in names and not pa.types.is_integer(schema.field(column).type):
            raise WarehouseError(f"cannot read {path}: its {column} column holds {schema.field(column).type}, "
                                 f"not integers, so it is not a file of this table")
    strings = tuple(metadata.schema.column(i).path for i in range(metadata.num_columns)
                    if metadata.schema.column(i).logical_type.type == "STRING")
    found = Footer(metadata, names, schema, strings, _ranges(metadata, schema, "layer"),
                   _ranges(metadata, schema, "neuron"))
    with _LOCK:
        _FOOTERS[key] = found
        while len(_FOOTERS) > FOOTERS_KEPT:
            _FOOTERS.popitem(last=False)
    return found


def _ranges(metadata: pq.FileMetaData, schema: pa.Schema, column: str) -> tuple:
    """Per row group, (min, max) of a top-level integer ``column``; None where unknown."""
    if column not in schema.names:
        return (None,) * metadata.num_row_groups
    at = schema.get_field_index(column)
    found = []
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(at).statistics
        low, high = (statistics.min, statistics.max) if statistics is not None and statistics.has_min_max else (None, None)
        found.append((low, high) if type(low) is int and type(high) is int else None)
    return tuple(found)


def neuron_rows(path: str, found: Footer, groups: list[int], layer: int, neuron: int, columns: list[str],
                spec: Table, partition_values: dict) -> list[dict]:
    """Rows of (layer, neuron) in ``groups`` of the local Parquet file ``path`` (its
    ``footer``): ``columns`` (declared ones the file lacks, from an older nx, are None), with
    the file's ``partition_values`` (as its Delta log entry has them) for the partition keys of
    table ``spec``."""
    if not groups:
        return []
    stored = [c for c in columns if c in found.names]
    for key in ("layer", "neuron"):
        if key in found.names and key not in stored:
            stored.append(key)
    try:
        # strings as dictionaries: decoding every token of the group costs more than the rest
        # of the read; only the neuron's rows are made plain strings (``cast``)
        reader = pq.ParquetFile(path, metadata=found.metadata, read_dictionary=found.strings)
        # a group at a time: a dictionary column of lists cannot span groups in one read
        table = pa.concat_tables([reader.read_row_group(group, columns=stored, use_threads=False)
                                  for group in groups])
        wanted = pc.equal(table["neuron"], pa.scalar(neuron, table.schema.field("neuron").type))
        if "layer" in table.column_names:
            wanted = pc.and_(wanted, pc.equal(table["layer"], pa.scalar(layer, table.schema.field("layer").type)))
        chosen = table.filter(wanted)
        whole = []
        for name in columns:  # the columns asked for, in order; made in Arrow, not per row
            if name in chosen.column_names:
                column = chosen[name]
                declared = found.schema.field(name).type
                whole.append(column if column.type == declared else column.cast(declared))
            elif name in spec.partition_names:  # typed (an untyped pa.array imports dateutil at each call)
                whole.append(spec.partition_column(name, partition_values.get(name), len(chosen)))
            else:
                whole.append(pa.nulls(len(chosen)))
        return pa.Table.from_arrays(whole, names=columns).to_pylist()
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise WarehouseError(f"cannot read {path}: {exc}") from exc


def read_local(files: list[tuple[str, object]], table: str, layer: int, neuron: int,
               columns: list[str]) -> tuple[list[dict], list[str]]:
    """The rows of (layer, neuron) read here from those of ``files`` ((URL, Delta log entry)
    pairs) that are local and whose groups that may hold it are small (``MOST_ROWS``), and
    the URLs of the others, for DuckDB (a remote file: DuckDB reads only the ranges it needs)."""
    spec = TABLES[table]
    found, left = [], []
    for url, entry in files:
        if "://" in url:
            left.append(url)
            continue
        footer_of = footer(url)
        groups = footer_of.groups_holding(layer, neuron)
        if footer_of.rows_in(groups) > MOST_ROWS:
            left.append(url)
            continue
        found += neuron_rows(url, footer_of, groups, layer, neuron, columns, spec, entry.partition_values)
    return found, left
