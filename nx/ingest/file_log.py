"""The file log (table ``_ingest``): per source file, its status, size, version and reason.

A unit's log rows are committed after its data files, so a file logged 'ok' always has its
rows; a re-run replaces a neuron's log row as it replaces its data rows. ``read_log`` gives
the state a re-run plans from.
"""
from __future__ import annotations

from dataclasses import dataclass

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


def partition(model: str, kind: str, layer: int) -> dict:
    """Where a unit's log rows go (``layer`` is a column: the log is small)."""
    return {"model": model, "kind": kind, "layer": layer}
