"""Write-back of a run: its rows under ``run=<name>`` and its record in the ``runs`` table.

Files of one (model, run, layer) partition, all written with ``Warehouse.write_file``:
- ``part-<time>-<id>``: one per flushed batch, in both ``explanation_sequences`` and
  ``explanations``, holding the neurons that were scored; written sequences first, and never
  rewritten (a scored neuron is never redone);
- ``failed`` in ``explanations``: the neurons that failed, with their reasons and no scores;
  rewritten at each flush (a retried neuron leaves it, whether it now succeeds or fails again).
So a crash or Ctrl-C leaves at worst a sequences part without its explanations twin, or a
neuron both scored and still listed in ``failed``; ``repair`` (run at every start) removes
both, and a neuron is never counted twice. The runs row (``runs/model=/run=/run.parquet``)
is rewritten at start, after each batch and at the end: token usage adds up over resumes,
counts are recounted from the rows. Two processes must not write the same run at once.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from nx.errors import UsageError
from nx.schema import TABLES
from nx.warehouse import Warehouse

FAILED_FILE = "failed"
RUN_FILE = "run"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# What makes scores comparable: resuming a run with other values would mix them.
IDENTITY = ("explainer_model", "simulator_model", "explainer", "simulator", "prompt_versions")


def check_run_name(run: str) -> None:
    if not isinstance(run, str) or not _RUN_NAME.match(run):
        raise UsageError(f"run name {run!r}: use letters, digits, '.', '_' and '-' (at most 100)")
    if run == "public":
        raise UsageError("run name 'public' is reserved for the ingested explanations")


def compact_ranges(values: Iterable[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7'."""
    ordered = sorted(set(values))
    parts, start = [], None
    for i, value in enumerate(ordered):
        if start is None:
            start = value
        if i + 1 == len(ordered) or ordered[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


def now() -> datetime:
    return datetime.now(timezone.utc)


class RunStore:
    def __init__(self, warehouse: Warehouse, model: str, run: str):
        self.warehouse = warehouse
        self.model = model
        self.run = run

    def _partition(self, layer: int | None = None) -> dict:
        keys = {"model": self.model, "run": self.run}
        if layer is not None:
            keys["layer"] = layer
        return keys

    def _names_by_layer(self, table: str) -> dict[int, set[str]]:
        found: dict[int, set[str]] = {}
        for path in self.warehouse.list_files(table, self._partition()):
            parts = path.replace("\\", "/").split("/")
            layer = next(p.split("=", 1)[1] for p in parts if p.startswith("layer="))
            found.setdefault(int(layer), set()).add(parts[-1][: -len(".parquet")])
        return found

    # -- state ---------------------------------------------------------------------------
    def previous(self) -> dict | None:
        """The runs row of this run, if there is one."""
        table = self.warehouse.read_file("runs", self._partition(), RUN_FILE)
        return table.to_pylist()[0] if table is not None and len(table) else None

    def check_compatible(self, identity: dict) -> None:
        """Refuse to resume a run with settings that would make its scores incomparable."""
        previous = self.previous()
        if previous is None:
            return
        for key in IDENTITY:
            if previous.get(key) != identity[key]:
                raise UsageError(f"run {self.run!r} was made with {key}={previous.get(key)}, not "
                                 f"{identity[key]}; resuming it would mix scores, choose another --run")
        calibrated = json.loads(previous.get("parameters") or "{}").get("calibrate")
        if calibrated is not None and calibrated != identity["calibrate"]:
            raise UsageError(f"run {self.run!r} was made with calibrate={calibrated}; "
                             f"resuming it would mix scores, choose another --run")

    def repair(self) -> None:
        """Undo what an interrupted flush left: orphan sequence parts, stale failed rows."""
        explanation_parts = self._names_by_layer("explanations")
        for layer, names in self._names_by_layer("explanation_sequences").items():
            for orphan in names - explanation_parts.get(layer, set()):
                self.warehouse.remove_file("explanation_sequences", self._partition(layer), orphan)
        for layer, names in explanation_parts.items():
            if FAILED_FILE in names:
                scored = self.scored_neurons(layer)
                self._rewrite_failed(layer, drop=scored, add=[])

    def scored_neurons(self, layer: int) -> set[int]:
        """Neurons of a layer with an 'ok' row in this run (they are skipped on resume)."""
        table = self.warehouse.read_table("explanations", self._partition(layer),
                                          columns=["neuron", "status"])
        ok = table.filter(pc.equal(table["status"], "ok"))
        return set(ok["neuron"].to_pylist())

    def counts(self) -> tuple[int, int]:
        """(ok, failed) neurons of the run, from its rows."""
        table = self.warehouse.read_table("explanations", self._partition(), columns=["status"])
        statuses = table["status"].to_pylist()
        return statuses.count("ok"), statuses.count("failed")

    # -- writing -------------------------------------------------------------------------
    def write_batch(self, results: list) -> None:
        """Write finished neurons (``NeuronResult``s): a part per layer, then the failed file."""
        name = f"part-{now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        for layer in sorted({r.layer for r in results}):
            mine = [r for r in results if r.layer == layer]
            scored = [r for r in mine if r.ok]
            if scored:
                self._write("explanation_sequences", layer, name, [row for r in scored for row in r.sequences])
                self._write("explanations", layer, name, [r.explanation for r in scored])
            self._rewrite_failed(layer, drop={r.neuron for r in mine},
                                 add=[r.explanation for r in mine if not r.ok])

    def _write(self, table: str, layer: int, name: str, rows: list[dict]) -> None:
        data = pa.Table.from_pylist(rows, schema=TABLES[table].columns)
        self.warehouse.write_file(table, self._partition(layer), name, data)

    def _rewrite_failed(self, layer: int, drop: set[int], add: list[dict]) -> None:
        partition = self._partition(layer)
        existing = self.warehouse.read_file("explanations", partition, FAILED_FILE)
        if existing is None and not add:
            return
        kept = existing.filter(pc.invert(pc.is_in(existing["neuron"], pa.array(sorted(drop), pa.int32())))) \
            if existing is not None else None
        if existing is not None and not add and len(kept) == len(existing):
            return
        rows = (kept.to_pylist() if kept is not None else []) + add
        if rows:
            self._write("explanations", layer, FAILED_FILE, rows)
        else:
            self.warehouse.remove_file("explanations", partition, FAILED_FILE)

    def write_run(self, record: dict) -> None:
        """Rewrite the runs row; ``record`` holds its columns but the counts, recounted here."""
        ok, failed = self.counts()
        row = dict(record, neurons_ok=ok, neurons_failed=failed)
        data = pa.Table.from_pylist([row], schema=TABLES["runs"].columns)
        self.warehouse.write_file("runs", self._partition(), RUN_FILE, data)
