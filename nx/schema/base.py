"""The shape every table declaration takes: partition keys (typed), columns, and their docs."""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

MODEL = pa.field("model", pa.string())
LAYER = pa.field("layer", pa.int32())
RUN = pa.field("run", pa.string())
# ``layer`` as a stored column, in tables small enough not to be split by layer: the number of
# files a query touches decides its speed on az://, so only the big tables partition by layer.
LAYER_COLUMN = ("layer", pa.int32(), "layer of the neuron")

_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT"}


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    partitions: tuple[pa.Field, ...]
    columns: pa.Schema
    column_docs: dict[str, str] = field(default_factory=dict)

    @property
    def partition_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.partitions)

    @property
    def key(self) -> tuple[str, ...]:
        """Columns (beside the partition keys) that say whose rows a row is: a write replaces
        the rows of the neurons it writes. Also the sort order compaction gives the files."""
        return tuple(name for name in ("layer", "neuron") if name in self.schema.names)

    @property
    def schema(self) -> pa.Schema:
        """Partition keys followed by the stored columns: what a reader sees."""
        return pa.schema(list(self.partitions) + list(self.columns))

    def partition_column(self, name: str, raw: str | None, rows: int) -> pa.Array:
        """A partition key's column of ``rows`` rows, from its value in the Delta log (a string,
        or None), typed as declared."""
        kind = self.schema.field(name).type
        value = None if raw is None else (int(raw) if pa.types.is_integer(kind) else raw)
        return pa.array([value] * rows, kind)

    @property
    def hive_types(self) -> dict[str, str]:
        """Partition types for DuckDB's ``hive_types`` (else run=2024-01-01 becomes a DATE)."""
        return {f.name: _DUCKDB_TYPES[f.type] for f in self.partitions}


def table(name: str, doc: str, partitions: tuple[pa.Field, ...],
          columns: list[tuple[str, pa.DataType, str]]) -> Table:
    """A table declaration; partition keys are Hive directories, ``columns`` are stored."""
    return Table(
        name=name,
        doc=doc,
        partitions=partitions,
        columns=pa.schema([pa.field(n, t) for n, t, _ in columns]),
        column_docs={n: d for n, _, d in columns},
    )
