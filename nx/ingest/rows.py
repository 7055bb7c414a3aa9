"""Column-wise row accumulation for a unit of work, and its conversion to Arrow.

Flatteners append Python values to per-column lists (cheap: the token and activation lists
of the parsed JSON are referenced, not copied); Arrow converts each column in one C call.
A kind may hand a column over already converted (``add_arrow``: e.g. activations parsed
straight into float64 buffers); such a column becomes a chunked array of what was handed
over (values of files that took the general path are converted into chunks between them),
not one concatenated copy. Columns a kind derives after conversion (``sequence_id``,
``max_activation``, ...) are left out here and added by the kind's ``derive``.
"""
from __future__ import annotations

import pyarrow as pa

from nx.schema import TABLES


class Rows:
    """Per-table column lists; ``Rows(("token_lookups",))``."""

    def __init__(self, tables: tuple[str, ...]):
        self.tables = tables
        self.columns: dict[str, dict[str, list]] = {
            t: {name: [] for name in TABLES[t].columns.names} for t in tables
        }
        self.arrow: dict[str, dict[str, list[pa.Array]]] = {t: {} for t in tables}

    def column(self, table: str, name: str) -> list:
        return self.columns[table][name]

    def append(self, table: str, **values) -> None:
        for name, column in self.columns[table].items():
            column.append(values.get(name))

    def add_arrow(self, table: str, name: str, array: pa.Array) -> None:
        self.arrow[table].setdefault(name, []).append(array)

    def count(self, table: str) -> int:
        return len(self.columns[table]["neuron"]) + sum(len(a) for a in self.arrow[table].get("neuron", ()))

    def extend(self, other: "Rows") -> None:
        for table, columns in other.columns.items():
            for name, values in columns.items():
                if name in self.arrow[table] or name in other.arrow[table]:
                    # one side has this column as Arrow: keep both sides' rows in order as Arrow
                    self._flush(table, name)
                    other._flush(table, name)
                    self.arrow[table].setdefault(name, []).extend(other.arrow[table][name])
                else:
                    self.columns[table][name].extend(values)

    def _flush(self, table: str, name: str) -> None:
        """Python values of a column so far -> one Arrow chunk after its earlier chunks."""
        values = self.columns[table][name]
        if values:
            self.arrow[table].setdefault(name, []).append(pa.array(values, TABLES[table].columns.field(name).type))
            values.clear()
        else:
            self.arrow[table].setdefault(name, [])

    def to_arrow(self, table: str, derived: tuple[str, ...] = ()) -> pa.Table:
        """Arrow columns in declared types, except the derived ones (filled with nulls
        only when ``derived`` does not name them, i.e. the kind never derives them)."""
        schema = TABLES[table].columns
        n = self.count(table)
        arrays = []
        for field in schema:
            if field.name in derived:
                continue
            if field.name in self.arrow[table]:
                self._flush(table, field.name)
                # kept as chunks (one per file, as a rule): concatenating would copy megabytes
                array = pa.chunked_array([c.cast(field.type) for c in self.arrow[table][field.name]], field.type)
                if len(array) != n:
                    raise AssertionError(f"{table}.{field.name}: {len(array)} values for {n} rows")
                arrays.append(array)
                continue
            values = self.columns[table][field.name]
            if values and len(values) != n:
                raise AssertionError(f"{table}.{field.name}: {len(values)} values for {n} rows")
            arrays.append(pa.array(values, field.type) if values else pa.nulls(n, field.type))
        return pa.table(arrays, schema=pa.schema([f for f in schema if f.name not in derived]))


def ranked(rows: list[dict], **equal) -> list[dict]:
    """The rows whose columns equal the given values, in source order (``rank``): how each
    kind's ``rebuild`` gives a source list back."""
    return sorted((r for r in rows if all(r[k] == v for k, v in equal.items())), key=lambda r: r["rank"])
