"""``nx export``: warehouse tables back to the public JSON layout, file for file.

For each neuron whose source file the ``_ingest`` log has as 'ok', the kind's pure ``rebuild``
(in ``nx/ingest/<kind>.py``, beside the ``flatten`` it inverts) turns the neuron's rows back into
the source object, which is written at the same relative path: compact orjson like the
public files (``dataclass_name`` keys included), explanations as one line ending in a newline.
A file that was read as non-strict JSON (it held NaN literals) is written with NaN literals
again, so its values survive. Each file is written under a temporary name and renamed.
Ingesting an export gives the same tables (tests/queries/test_export.py).

Export is ingest run backwards, so it sits beside both, not in the query layer: the layout it
shares with ingest (kinds, paths, tables) comes from ``nx.layout``, and only the kinds'
``rebuild`` functions from ``nx.ingest``, which ``nx.queries`` never imports.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field

import orjson

from nx import layout, storage
from nx.errors import UsageError
from nx.layout import NON_STRICT_NOTE, table_partitions
from nx.progress import NullProgress, Progress
from nx.ranges import parse_ranges
from nx.settings import DEFAULT_MODEL
from nx.warehouse import Warehouse

BATCH = 256  # neurons read at once: bounds memory on the large collated-activations rows


@dataclass
class ExportReport:
    model: str
    warehouse: str
    target: str
    files: dict[str, int] = field(default_factory=dict)  # kind -> files written

    def asdict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"export of {self.warehouse} (model {self.model}) to {self.target}"]
        lines += [f"  {kind:<22}{count:>9,} files" for kind, count in self.files.items()]
        return "\n".join(lines)


def export(kinds: list[str] | str | None = None, *, to: str, warehouse=None,
           model: str = DEFAULT_MODEL, layers: str | list[int] | None = None,
           neurons: str | list[int] | None = None, progress: Progress = NullProgress()) -> ExportReport:
    """Write ``kinds`` (default: all five) of ``model`` to ``to`` in the public layout."""
    from nx.queries.location import locate

    if isinstance(kinds, str):
        kinds = [kinds]
    names = list(layout.KINDS) if not kinds else [layout.kind(k).name for k in kinds]
    location = locate(warehouse).warehouse
    target = storage.locate(to)
    if target.protocol == "https":
        raise UsageError(f"{to}: export writes to a directory or an az:// location")
    _check_local_directory(target, to)
    wanted_layers, wanted_neurons = parse_ranges(layers, "layer"), parse_ranges(neurons, "neuron")
    plans = {name: _logged_ok(location, model, name, wanted_layers, wanted_neurons) for name in names}
    progress.start(sum(len(p) for p in plans.values()), "export")
    report = ExportReport(model, location.url, to)
    try:
        for name, logged in plans.items():
            report.files[name] = _export_kind(name, logged, location, model, target, progress)
    finally:
        progress.finish()
    return report


def _check_local_directory(target: storage.Location, to: str) -> None:
    """UsageError, before anything is written, if a local ``to`` (or a folder above it) is a file."""
    if target.protocol != "file":
        return
    path = target.path
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise UsageError(f"{to}: export writes to a directory, but {path} is a file")


def _logged_ok(warehouse: Warehouse, model: str, kind: str, layers: list[int] | None,
               neurons: list[int] | None) -> list[dict]:
    """Log rows (layer, neuron, note, skeleton) of the kind's files that were ingested."""
    log = warehouse.read_table("_ingest", {"model": model, "kind": kind},
                               columns=["layer", "neuron", "status", "note", "skeleton"])
    return sorted((row for row in log.to_pylist() if row["status"] == "ok"
                   and (layers is None or row["layer"] in layers)
                   and (neurons is None or row["neuron"] in neurons)),
                  key=lambda row: (row["layer"], row["neuron"]))


def _export_kind(name: str, logged: list[dict], warehouse: Warehouse, model: str, target: storage.Location,
                 progress: Progress) -> int:
    from nx.ingest.kinds import kind_module  # the one use of ingest: each flattener's inverse is beside it

    kind = layout.kind(name)
    rebuild = kind_module(name).rebuild
    written = 0
    for start in range(0, len(logged), BATCH):
        batch = logged[start:start + BATCH]
        for layer in sorted({row["layer"] for row in batch}):
            entries = [row for row in batch if row["layer"] == layer]
            rows = _rows_by_neuron(kind, warehouse, model, layer, [row["neuron"] for row in entries])
            for entry in entries:
                neuron = entry["neuron"]
                skeleton = json.loads(entry["skeleton"]) if entry["skeleton"] else None
                obj = rebuild({t: rows[t].get(neuron, []) for t in kind.tables}, layer, neuron, skeleton)
                _write(target, layout.relative_path(name, layer, neuron), encode(obj, kind, entry["note"]))
                written += 1
                progress.advance(1)
    return written


def _rows_by_neuron(kind, warehouse: Warehouse, model: str, layer: int, neurons: list[int]) -> dict:
    """table -> neuron -> that neuron's rows, for the given neurons of one layer."""
    found: dict[str, dict[int, list[dict]]] = {}
    for table in kind.tables:
        data = warehouse.read_table(table, table_partitions(table, model, layer),
                                    filters=[("neuron", "in", neurons)])
        by_neuron: dict[int, list[dict]] = {}
        for row in data.to_pylist():
            by_neuron.setdefault(row["neuron"], []).append(row)
        found[table] = by_neuron
    return found


def encode(obj: object, kind, note: str | None) -> bytes:
    """The file's bytes: compact orjson, or Python's json where the source held NaN literals."""
    if note == NON_STRICT_NOTE:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    else:
        data = orjson.dumps(obj)
    return data + b"\n" if kind.suffix == ".jsonl" else data


def _write(target: storage.Location, relative: str, data: bytes) -> None:
    parts = relative.split("/")
    final = target.join(*parts)
    temporary = f"{final}.tmp-{uuid.uuid4().hex}"
    target.fs.makedirs(target.join(*parts[:-1]), exist_ok=True)
    try:
        with target.fs.open(temporary, "wb") as out:
            out.write(data)
        target.fs.mv(temporary, final)
    except BaseException:
        if target.fs.exists(temporary):
            target.fs.rm(temporary)
        raise

