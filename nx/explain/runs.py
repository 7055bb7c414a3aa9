"""Write-back of a run: its rows in the ``run=<name>`` partitions and its ``runs`` row.

Each flushed batch is three Delta commits: the scored sequences of its neurons, the detection
and fuzzing predictions, then their ``explanations`` rows (one per sample, scored, or one failed
row with the reason and no scores). Each commit replaces whatever rows those neurons had in the
run, so a retried neuron, a resumed run or a second process on the same run never leaves two
rows for one neuron and sample. A crash between the commits leaves sequences or predictions
whose neuron has no scored explanation; ``repair`` (run at every start) removes them. The runs row is replaced at start, after each batch and at the end: token
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
# ... and these of its parameters (with the value a run made before they existed had).
IDENTITY_PARAMETERS = {"calibrate": None, "samples": 1, "scorers": "simulation", "prompts": "nx"}
CHILD_TABLES = ("explanation_sequences", "scorer_predictions")
# What a run writes (scorer_predictions only with --scorer detection or fuzzing).
RUN_TABLES = ("explanations", *CHILD_TABLES, "runs")


def _normalised(name: str, value):
    if name == "calibrate" and isinstance(value, bool):   # runs before --calibrate took a kind
        return "linear" if value else None
    return value


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
        parameters = json.loads(previous.get("parameters") or "{}")
        for name, default in IDENTITY_PARAMETERS.items():
            made = _normalised(name, parameters.get(name, default))
            if made != identity[name]:
                raise UsageError(f"run {self.run!r} was made with {name}={made}, not {identity[name]}; "
                                 f"resuming it would mix scores, choose another --run")

    def repair(self) -> None:
        """Undo what an interrupted flush left: sequences and predictions of neurons with no
        scored row."""
        scored = None
        for table in CHILD_TABLES:
            if not self.warehouse.has_table(table):
                continue
            children = self.warehouse.read_table(table, self._partition(), columns=["layer", "neuron"])
            if not len(children):
                continue
            if scored is None:
                explanations = self.warehouse.read_table("explanations", self._partition(),
                                                         columns=["layer", "neuron", "status"])
                scored = {(l, n) for l, n, s in zip(*(explanations[c].to_pylist() for c in ("layer", "neuron", "status")))
                          if s == "ok"}
            orphans = set(zip(children["layer"].to_pylist(), children["neuron"].to_pylist())) - scored
            if orphans:
                self._commit(table, [], orphans)

    def scored_neurons(self, layer: int) -> set[int]:
        """Neurons of a layer with 'ok' rows in this run (they are skipped on resume)."""
        table = self.warehouse.read_table("explanations", self._partition(layer),
                                          columns=["neuron", "status"])
        ok = table.filter(pc.equal(table["status"], "ok"))
        return set(ok["neuron"].to_pylist())

    def counts(self) -> tuple[int, int]:
        """(ok, failed) neurons of the run, from its rows (a neuron has one row per sample)."""
        table = self.warehouse.read_table("explanations", self._partition(), columns=["layer", "neuron", "status"])
        neurons = {(l, n): s for l, n, s in zip(*(table[c].to_pylist() for c in ("layer", "neuron", "status")))}
        statuses = list(neurons.values())
        return statuses.count("ok"), statuses.count("failed")

    # -- writing -------------------------------------------------------------------------
    def write_batch(self, results: list) -> None:
        """Write finished neurons (``NeuronResult``s): sequences first, then explanations."""
        keys = {(r.layer, r.neuron) for r in results}
        sequences, predictions, explanations = [], [], []
        for layer in sorted({r.layer for r in results}):
            mine = [r for r in results if r.layer == layer]
            sequences += self._files("explanation_sequences", layer, [row for r in mine if r.ok for row in r.sequences])
            predictions += self._files("scorer_predictions", layer, [row for r in mine if r.ok for row in r.predictions])
            explanations += self._files("explanations", layer, [row for r in mine for row in r.explanations])
        self._commit("explanation_sequences", sequences, keys)
        if predictions or self.warehouse.has_table("scorer_predictions"):
            self._commit("scorer_predictions", predictions, keys)
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
