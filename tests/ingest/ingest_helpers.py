"""Reading one neuron's rows back from a warehouse, for the ingest tests."""
from __future__ import annotations

import json

from nx.ingest.kinds import kind_module, table_partitions
from nx.warehouse import Warehouse


def neuron_rows(warehouse: str, kind: str, layer: int, neuron: int, model: str = "gpt2-xl") -> dict[str, list[dict]]:
    w = Warehouse(warehouse)
    rows = {}
    for table in kind_module(kind).TABLES:
        data = w.read_table(table, table_partitions(table, model, layer))
        rows[table] = [r for r in data.to_pylist() if r["neuron"] == neuron]
    return rows


def log_rows(warehouse: str, kind: str, model: str = "gpt2-xl") -> dict[tuple[int, int], dict]:
    data = Warehouse(warehouse).read_table("_ingest", {"model": model, "kind": kind})
    return {(r["layer"], r["neuron"]): r for r in data.to_pylist()}


def rebuilt(warehouse: str, kind: str, layer: int, neuron: int) -> dict:
    skeleton = log_rows(warehouse, kind)[(layer, neuron)]["skeleton"]
    return kind_module(kind).rebuild(neuron_rows(warehouse, kind, layer, neuron), layer, neuron,
                                     json.loads(skeleton) if skeleton else None)


def table_rows(warehouse: str, table: str) -> list[dict]:
    """All rows of a table, sorted, for comparing two warehouses."""
    rows = Warehouse(warehouse).read_table(table).to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def nan_aware_equal(a, b) -> bool:
    """JSON values equal, with NaN equal to NaN (the NaN-literal file holds real NaNs)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(nan_aware_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(nan_aware_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
