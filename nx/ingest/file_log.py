"""The file log (table ``_ingest``): per source file, its status, size, version and reason.

One log file per unit of work, written after the unit's data files are in place, so a file
logged 'ok' always has its rows. ``read_log`` gives the state a re-run plans from.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from nx.warehouse import Warehouse

TABLE = "_ingest"


@dataclass(frozen=True)
class LogEntry:
    status: str
    size: int | None
    version: str | None
    labelled: bool | None


def read_log(warehouse: Warehouse, model: str, kind: str) -> dict[tuple[int, int], LogEntry]:
    data = warehouse.read_table(TABLE, {"model": model, "kind": kind},
                                columns=["layer", "neuron", "status", "size", "version", "labelled"])
    return {
        (row["layer"], row["neuron"]): LogEntry(row["status"], row["size"], row["version"], row["labelled"])
        for row in data.to_pylist()
    }


def write_log(warehouse: Warehouse, model: str, kind: str, layer: int, name: str,
              entries: pa.Table, replaced_neurons: set[int]) -> None:
    """Merge a unit's log rows into the layer's log file ``name`` (replacing those neurons)."""
    partitions = {"model": model, "kind": kind, "layer": layer}
    existing = warehouse.read_file(TABLE, partitions, name)
    if existing is not None and len(existing):
        keep = pa.array([n not in replaced_neurons for n in existing.column("neuron").to_pylist()])
        entries = pa.concat_tables([existing.filter(keep), entries.select(existing.column_names).cast(existing.schema)])
    entries = entries.sort_by("neuron")
    warehouse.write_file(TABLE, partitions, name, entries)
