"""Running ingest: the file log, re-runs, changed files, workers, interrupted runs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cases
import nx.ingest
import nx.maintenance
from ingest_helpers import nan_aware_equal, log_rows, neuron_rows, table_rows
from nx.ingest import runner
from nx.ingest.source import Source
from nx.progress import CountingProgress
from nx.schema import DATA_TABLES

KINDS = ("collated-activations", "explanations", "related-neurons", "token-lookups", "token-weights")


def test_report_counts_every_file_by_status(ingested):
    report, source = ingested["report"], ingested["source"]
    for kind in KINDS:
        counts = report.kinds[kind]
        assert (counts.ok, counts.missing, counts.malformed) == (
            len(source["ok"][kind]), len(source["missing"][kind]), len(source["malformed"][kind])), kind
    assert not report.complete
    assert report.asdict()["complete"] is False
    assert "not ingested" in str(report)


def test_file_log_records_missing_and_malformed_with_reasons(ingested):
    source = ingested["source"]
    for kind in KINDS:
        log = log_rows(ingested["warehouse"], kind)
        for key in source["missing"][kind]:
            assert log[key]["status"] == "missing" and log[key]["error"] == "not found"
        for key in source["malformed"][kind]:
            assert log[key]["status"] == "malformed"
            assert log[key]["error"] and "\n" not in log[key]["error"]
        for key in source["ok"][kind]:
            assert log[key]["status"] == "ok" and log[key]["size"] > 0


def test_empty_and_truncated_files_give_their_reason(ingested):
    source = ingested["source"]
    reasons = {"empty": "empty file", "truncated": "invalid JSON", "wrong-type": "expected"}
    for (kind, layer, neuron), why in source["malformed_reasons"].items():
        assert reasons[why] in log_rows(ingested["warehouse"], kind)[(layer, neuron)]["error"]


def test_rerun_skips_finished_files_and_duplicates_nothing(copied_source, tmp_path):
    warehouse = str(tmp_path / "w")
    first = nx.ingest.run(source=copied_source["root"], warehouse=warehouse, workers=1)
    before = {t: len(table_rows(warehouse, t)) for t in DATA_TABLES}
    progress = CountingProgress()
    second = nx.ingest.run(source=copied_source["root"], warehouse=warehouse, workers=1, progress=progress)
    after = {t: len(table_rows(warehouse, t)) for t in DATA_TABLES}
    assert after == before
    for kind in KINDS:
        assert second.kinds[kind].skipped == first.kinds[kind].ok + first.kinds[kind].malformed
        assert second.kinds[kind].missing == first.kinds[kind].missing  # holes are looked for again
    assert progress.done == sum(first.kinds[k].missing for k in KINDS)


def test_reingesting_a_changed_file_replaces_its_rows(copied_source, tmp_path):
    warehouse = str(tmp_path / "w")
    nx.ingest.run(["token-lookups"], source=copied_source["root"], warehouse=warehouse, workers=1)
    path = Path(copied_source["root"]) / cases.source_path("token-lookups", 0, 2)
    path.write_bytes(cases.dumps({"tokens": [" only"], "average_activations": [1.5],
                                  "dataclass_name": "TokenLookupTableSummaryOfNeuron"}))
    report = nx.ingest.run(["token-lookups"], source=copied_source["root"], warehouse=warehouse, workers=1)
    assert report.kinds["token-lookups"].ok == 1
    rows = neuron_rows(warehouse, "token-lookups", 0, 2)["token_lookups"]
    assert [(r["token"], r["average_activation"]) for r in rows] == [(" only", 1.5)]
    assert len(neuron_rows(warehouse, "token-lookups", 0, 3)["token_lookups"]) == 50  # neighbours kept


def test_a_hole_that_turns_up_is_ingested_on_the_next_run(copied_source, tmp_path):
    warehouse = str(tmp_path / "w")
    layer, neuron = copied_source["missing"]["explanations"][0]
    nx.ingest.run(["collated-activations", "explanations"], source=copied_source["root"], warehouse=warehouse, workers=1)
    record = copied_source["objects"][("collated-activations", 0, 0)]
    results = cases.simulation_results(layer, neuron, record)
    target = Path(copied_source["root"]) / cases.source_path("explanations", layer, neuron)
    target.write_bytes(cases.dumps(results) + b"\n")
    report = nx.ingest.run(["explanations"], source=copied_source["root"], warehouse=warehouse, workers=1)
    assert report.kinds["explanations"].ok == 1
    assert log_rows(warehouse, "explanations")[(layer, neuron)]["status"] == "ok"


@pytest.mark.parametrize("workers", [1, 2])
def test_one_and_two_workers_write_the_same_tables(ingested, workers, tmp_path):
    warehouse = str(tmp_path / "w")
    nx.ingest.run(source=ingested["source"]["root"], warehouse=warehouse, workers=workers)
    for table in DATA_TABLES:
        assert nan_aware_equal(table_rows(warehouse, table), table_rows(ingested["warehouse"], table)), table


def test_a_unit_of_several_pieces_writes_one_file_per_table_and_the_same_rows(ingested, tmp_path, monkeypatch):
    # pieces of one file, units of two: each unit reads its files one at a time, the broken ones included
    from nx.ingest import collated_activations
    from nx.warehouse import Warehouse

    monkeypatch.setattr(collated_activations, "CHUNK", 1)
    monkeypatch.setattr(collated_activations, "UNIT_NEURONS", 2)
    monkeypatch.setenv("NX_COMMIT_SECONDS", "0")
    warehouse = str(tmp_path / "w")
    plan = runner.plan_kind("collated-activations", Source(ingested["source"]["root"]), Warehouse(warehouse),
                            "gpt2-xl", None, None)
    assert [len(u.neurons) for u in plan.units] == [2, 2, 2, 2]
    runner.ingest(["collated-activations"], ingested["source"]["root"], Warehouse(warehouse), "gpt2-xl", None, None,
                  workers=1, compact=False)
    for table in ("neurons", "activation_records"):
        assert len(Warehouse(warehouse).files(table)) <= len(plan.units)
        assert nan_aware_equal(table_rows(warehouse, table), table_rows(ingested["warehouse"], table)), table
    fresh = {k: {c: v for c, v in r.items() if c not in ("ingested_at", "version")}
             for k, r in log_rows(warehouse, "collated-activations").items()}
    once = {k: {c: v for c, v in r.items() if c not in ("ingested_at", "version")}
            for k, r in log_rows(ingested["warehouse"], "collated-activations").items()}
    assert fresh == once


def test_units_are_large_but_leave_no_worker_idle():
    from nx.ingest import collated_activations, token_lookups

    assert runner.unit_size(collated_activations, 1000, 1) == 1000  # one file of a thousand neurons
    assert runner.unit_size(collated_activations, 1000, 2) == 500   # a unit for each worker
    assert runner.unit_size(collated_activations, 48 * 6400, 2) == 1600
    assert runner.unit_size(collated_activations, 10, 8) == 128    # never less than a piece
    assert runner.unit_size(token_lookups, 10, 8) == token_lookups.CHUNK


def test_layers_and_neurons_limit_what_is_ingested(ingested, tmp_path):
    warehouse = str(tmp_path / "w")
    report = nx.ingest.run(["token-weights"], source=ingested["source"]["root"], warehouse=warehouse,
                           layers="1", neurons="0-1,3", workers=1)
    assert report.kinds["token-weights"].ok == 2 and report.kinds["token-weights"].malformed == 1
    assert {(r["layer"], r["neuron"]) for r in table_rows(warehouse, "token_weights")} == {(1, 0), (1, 1)}


def test_explanations_ingested_before_their_records_are_labelled_later(ingested, tmp_path):
    warehouse = str(tmp_path / "w")
    root = ingested["source"]["root"]
    nx.ingest.run(["explanations"], source=root, warehouse=warehouse, workers=1)
    assert {r["top_only_score"] for r in table_rows(warehouse, "explanations")} == {None}
    nx.ingest.run(["collated-activations"], source=root, warehouse=warehouse, workers=1)
    report = nx.ingest.run(["explanations"], source=root, warehouse=warehouse, workers=1)
    assert report.kinds["explanations"].ok == len(ingested["source"]["ok"]["explanations"])
    assert nan_aware_equal(table_rows(warehouse, "explanations"), table_rows(ingested["warehouse"], "explanations"))


def _parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet") if "_delta_log" not in p.parts)


def test_killed_run_leaves_no_partial_file_and_rerun_completes(tmp_path):
    source = tmp_path / "source"
    layers, neurons = 12, 30  # one unit per layer
    for layer in range(layers):
        for neuron in range(neurons):
            path = source / cases.source_path("collated-activations", layer, neuron)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(cases.dumps(cases.neuron_record(layer, neuron, n_top=40, n_random=40, seed=neuron)))
    warehouse = tmp_path / "w"
    command = [sys.executable, "-m", "nx", "ingest", "collated-activations", "--source", str(source),
               "-w", str(warehouse), "--workers", "1", "-q"]
    # a commit after every unit, so that the kill falls between commits
    process = subprocess.Popen(command, start_new_session=True, env={**os.environ, "NX_COMMIT_SECONDS": "0"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (warehouse / "_ingest" / "_delta_log" / f"{1:020d}.json").exists():
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    import pyarrow.parquet as pq

    from nx.warehouse import Warehouse

    opened = Warehouse(str(warehouse))
    for table in ("neurons", "activation_records", "_ingest"):
        for f in opened.files(table):
            pq.read_metadata(f"{opened.table_path(table)}/{f.path}")  # every committed file is whole
    done = len(log_rows(str(warehouse), "collated-activations"))
    assert 0 < done < layers * neurons, "the run should have been killed midway"
    report = nx.ingest.run(["collated-activations"], source=str(source), warehouse=str(warehouse), workers=2)
    assert report.complete and report.kinds["collated-activations"].skipped == done
    fresh = tmp_path / "fresh"
    nx.ingest.run(["collated-activations"], source=str(source), warehouse=str(fresh), workers=1)
    for table in ("neurons", "activation_records"):
        assert nan_aware_equal(table_rows(str(warehouse), table), table_rows(str(fresh), table))
    # what the killed run wrote but never committed is garbage that vacuum removes
    nx.maintenance.vacuum(opened, retention_hours=0)
    committed = {Path(opened.table_path(t)) / f.path for t in ("neurons", "activation_records", "_ingest")
                 for f in opened.files(t)}
    assert set(_parquet_files(warehouse)) == committed
