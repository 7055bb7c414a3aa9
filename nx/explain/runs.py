"""Write-back of a run: its rows in the ``run=<name>`` partitions and its ``runs`` row.

Each flushed batch is two Delta commits: the scored sequences of its neurons, then their
``explanations`` rows (scored, or failed with the reason and no scores). Each commit replaces
whatever rows those neurons had in the run, so a retried neuron, a resumed run or a second
process on the same run never leaves two rows for one neuron. A crash between the two commits
leaves sequences whose neuron has no scored explanation; ``repair`` (run at every start)
removes them. The runs row is replaced at start, after each batch and at the end: token
usage adds up over resumes, counts are recounted from the rows.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from nx.errors import UsageError
from nx.schema import TABLES
from nx.warehouse import Replace, Warehouse

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

    def _commit(self, table: str, files: list, keys: set | None) -> None:
        rule = Replace({"model": self.model, "run": self.run}, keys)
        self.warehouse.commit(table, files, [rule], "explain", {"run": self.run, "model": self.model})

    # -- state ---------------------------------------------------------------------------
    def previous(self) -> dict | None:
        """The runs row of this run, if there is one."""
        table = self.warehouse.read_table("runs", self._partition())
        return table.to_pylist()[0] if len(table) else None

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
        """Undo what an interrupted flush left: sequences of neurons with no scored row."""
        sequences = self.warehouse.read_table("explanation_sequences", self._partition(), columns=["layer", "neuron"])
        if not len(sequences):
            return
        explanations = self.warehouse.read_table("explanations", self._partition(),
                                                 columns=["layer", "neuron", "status"])
        scored = {(l, n) for l, n, s in zip(*(explanations[c].to_pylist() for c in ("layer", "neuron", "status")))
                  if s == "ok"}
        orphans = set(zip(sequences["layer"].to_pylist(), sequences["neuron"].to_pylist())) - scored
        if orphans:
            self._commit("explanation_sequences", [], orphans)

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
        """Write finished neurons (``NeuronResult``s): sequences first, then explanations."""
        keys = {(r.layer, r.neuron) for r in results}
        sequences, explanations = [], []
        for layer in sorted({r.layer for r in results}):
            mine = [r for r in results if r.layer == layer]
            sequences += self._files("explanation_sequences", layer, [row for r in mine if r.ok for row in r.sequences])
            explanations += self._files("explanations", layer, [r.explanation for r in mine])
        self._commit("explanation_sequences", sequences, keys)
        self._commit("explanations", explanations, keys)

    def _files(self, table: str, layer: int, rows: list[dict]) -> list:
        spec = TABLES[table]
        data = pa.Table.from_pylist(rows, schema=pa.schema([f for f in spec.columns if f.name != "layer"]))
        return self.warehouse.write_files(table, self._partition(layer), data)

    def write_run(self, record: dict) -> None:
        """Replace the runs row; ``record`` holds its columns but the counts, recounted here."""
        ok, failed = self.counts()
        row = dict(record, neurons_ok=ok, neurons_failed=failed)
        data = pa.Table.from_pylist([row], schema=TABLES["runs"].columns)
        self._commit("runs", self.warehouse.write_files("runs", self._partition(), data), None)
