"""The warehouse's tables are Delta Lake tables: commits, replacement, compaction, time
travel, vacuum, migration, concurrent writers, and other engines reading them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import nx
import nx.ingest
from nx import maintenance, migrate
from nx.ingest import runner
from nx.errors import QueryError, WarehouseError
from nx.schema import DATA_TABLES, TABLES
from nx.warehouse import Replace, Warehouse

SAMPLE = str(Path(__file__).resolve().parent.parent / "nx" / "sample")
LEGACY = Path(__file__).resolve().parent / "data" / "legacy-warehouse"
# columns that differ between two ingests of the same files (when, and the file's mtime)
VOLATILE = {"_ingest": ("ingested_at", "version")}


def _rows(warehouse: str, table: str, **kwargs) -> list[dict]:
    data = nx.sql(f"select * from {table}", warehouse, **kwargs)
    data = data.drop_columns([c for c in VOLATILE.get(table, ()) if c in data.column_names])
    return sorted((json.dumps(r, sort_keys=True, default=str) for r in data.to_pylist()))


def _legacy_rows(table: str) -> list[str]:
    """The rows of a table of the bundled legacy warehouse, read from its plain Parquet files."""
    rows = []
    for path in sorted((LEGACY / table).rglob("*.parquet")):
        values = dict(p.split("=", 1) for p in path.relative_to(LEGACY / table).parts[:-1])
        for row in pq.read_table(path).to_pylist():
            row.update({k: int(v) if k == "layer" else v for k, v in values.items()})
            row.update({name: None for name in TABLES[table].schema.names if name not in row})  # newer columns
            for column in VOLATILE.get(table, ()):
                row.pop(column, None)
            rows.append(json.dumps(row, sort_keys=True, default=str))
    return sorted(rows)


def _run_nx(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nx", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> str:
    target = str(tmp_path_factory.mktemp("sample") / "w")
    nx.ingest.run(source=SAMPLE, warehouse=target, workers=1)
    return target


def test_every_table_is_a_delta_table_that_deltalake_and_polars_read_directly(sample_warehouse):
    import polars as pl
    from deltalake import DeltaTable

    store = Warehouse(sample_warehouse)
    for table in [*DATA_TABLES, "_ingest"]:
        path = store.table_path(table)
        assert os.path.isdir(os.path.join(path, "_delta_log"))
        expected = nx.sql(f"select count(*) as n from {table}", sample_warehouse).to_pylist()[0]["n"]
        assert expected > 0
        assert DeltaTable(path).to_pyarrow_table().num_rows == expected
        assert pl.scan_delta(path).select(pl.len()).collect().item() == expected
    # the same values, not only the same count: what a Spark or Trino user gets
    frame = pl.read_delta(store.table_path("explanations")).sort("layer", "neuron", "explanation_index")
    ours = nx.scan("explanations", sample_warehouse).collect().sort("layer", "neuron", "explanation_index")
    assert frame.select(ours.columns).equals(ours)


def test_after_ingest_each_partition_is_one_file_sorted_by_layer_and_neuron(sample_warehouse):
    store = Warehouse(sample_warehouse)
    for table in DATA_TABLES:
        files = store.files(table)
        partitions = {tuple(sorted(f.partition_values.items())) for f in files}
        assert len(files) == len(partitions), table
        for f in files:
            data = pq.read_table(f"{store.table_path(table)}/{f.path}")
            keys = [c for c in ("layer", "neuron") if c in data.column_names]
            ordered = data.sort_by([(k, "ascending") for k in keys])
            for key in keys:
                assert data[key].equals(ordered[key]), f"{table} is not sorted by {keys}"


def test_files_written_but_not_committed_are_seen_by_no_reader_and_vacuum_removes_them(tmp_path):
    target = str(tmp_path / "w")
    nx.ingest.run(["token-lookups"], source=SAMPLE, warehouse=target, workers=1)
    store = Warehouse(target)
    before = _rows(target, "token_lookups")
    planted = nx.sql("select * exclude (model) from token_lookups where layer = 0", target)
    orphan = store.write_files("token_lookups", {"model": "gpt2-xl"}, planted)  # a writer killed before its commit
    assert os.path.exists(f"{store.table_path('token_lookups')}/{orphan[0].path}")
    assert _rows(target, "token_lookups") == before
    assert nx.scan("token_lookups", target).collect().height == len(before)
    report = maintenance.vacuum(store, ["token_lookups"], retention_hours=0)
    assert report.removed["token_lookups"] >= 1
    assert not os.path.exists(f"{store.table_path('token_lookups')}/{orphan[0].path}")
    assert _rows(target, "token_lookups") == before


def test_a_commit_replaces_the_rows_of_the_neurons_it_writes(tmp_path):
    target = str(tmp_path / "w")
    nx.ingest.run(["token-lookups"], source=SAMPLE, warehouse=target, workers=1)
    store = Warehouse(target)
    old = nx.sql("select * exclude (model) from token_lookups where layer = 1 and neuron = 2", target)
    new = old.set_column(old.schema.get_field_index("token"), "token", pa.array(["new"] * len(old)))
    store.commit("token_lookups", store.write_files("token_lookups", {"model": "gpt2-xl"}, new.slice(0, 3)),
                 [Replace({"model": "gpt2-xl"}, {(1, 2)})])
    after = nx.sql("select token from token_lookups where layer = 1 and neuron = 2", target).to_pylist()
    assert after == [{"token": "new"}] * 3
    others = "select count(*) as n from token_lookups where not (layer = 1 and neuron = 2)"
    assert nx.sql(others, target).to_pylist()[0]["n"] == nx.sql("select count(*) as n from token_lookups",
                                                               target, as_of=1).to_pylist()[0]["n"] - len(old)


def test_compaction_keeps_every_row_and_changes_no_value(tmp_path):
    target = str(tmp_path / "w")
    # one commit per unit and no compaction at the end: many small files
    os.environ["NX_COMMIT_SECONDS"] = "0"
    try:
        runner.ingest(["collated-activations", "related-neurons"], SAMPLE, Warehouse(target), "gpt2-xl",
                         None, None, workers=1, compact=False)
    finally:
        del os.environ["NX_COMMIT_SECONDS"]
    store = Warehouse(target)
    before = {t: _rows(target, t) for t in ("neurons", "activation_records", "related_neurons")}
    files_before = {t: len(store.files(t)) for t in before}
    assert files_before["neurons"] == 3  # one per layer unit
    report = maintenance.compact(store, list(before))
    assert {t: len(store.files(t)) for t in before} == {"neurons": 1, "activation_records": 3, "related_neurons": 1}
    assert report.tables["neurons"] == (3, 1)
    for table, rows in before.items():
        assert _rows(target, table) == rows
    # the compaction commit says it changed no data, and history names it
    assert maintenance.history(store, "neurons")[0]["operation"] == "compact"


def test_compaction_leaves_large_files_that_overlap_no_other_alone(tmp_path, monkeypatch):
    store = Warehouse(str(tmp_path / "w"))

    def lookups(neurons: range, per_neuron: int) -> pa.Table:
        n = len(neurons) * per_neuron
        return pa.table({"layer": [0] * n, "neuron": [x for x in neurons for _ in range(per_neuron)],
                         "rank": list(range(per_neuron)) * len(neurons),
                         "token": [f"t{i}" for i in range(n)], "average_activation": [i / 7 for i in range(n)],
                         "extras": [None] * n})

    def commit(neurons: range, per_neuron: int) -> str:
        (written,) = store.write_files("token_lookups", {"model": "gpt2-xl"}, lookups(neurons, per_neuron))
        store.commit("token_lookups", [written])
        return written.path

    large = {"a": commit(range(0, 40), 200), "b": commit(range(100, 140), 200)}
    for neurons in (range(20, 21), range(50, 51), range(60, 61), range(200, 201)):  # 20 lies inside a's range
        commit(neurons, 3)
    sizes = {f.path: f.size for f in store.files("token_lookups")}
    assert max(s for p, s in sizes.items() if p not in large.values()) < min(sizes[p] for p in large.values())
    monkeypatch.setattr(maintenance, "KEPT_FILE_BYTES", min(sizes[p] for p in large.values()))
    before = _rows(str(tmp_path / "w"), "token_lookups")
    assert maintenance.compact(store, ["token_lookups"]).tables["token_lookups"] == (6, 3)
    after = store.files("token_lookups")
    # b overlaps nothing and is left as it was; a and the small file inside it are merged with
    # the small files up to b, and the one after b makes a file of its own
    assert large["b"] in {f.path for f in after} and large["a"] not in {f.path for f in after}
    assert sorted(f.bounds("neuron") for f in after) == [(0, 60), (100, 139), (200, 200)]
    assert _rows(str(tmp_path / "w"), "token_lookups") == before
    for f in after:
        neurons = pq.read_table(f"{store.table_path('token_lookups')}/{f.path}", columns=["neuron"])["neuron"]
        assert neurons.to_pylist() == sorted(neurons.to_pylist())


def test_as_of_reads_the_tables_as_they_were(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(SAMPLE, source)
    target = str(tmp_path / "w")
    nx.ingest.run(["explanations"], source=str(source), warehouse=target, workers=1)
    store = Warehouse(target)
    version = max(h["version"] for h in maintenance.history(store, "explanations"))
    old_text = nx.sql("select explanation from explanations where layer = 0 and neuron = 2 order by explanation_index",
                      target).to_pylist()
    path = source / "explanations" / "0" / "2.jsonl"
    changed = json.loads(path.read_text())
    changed["scored_explanations"][0]["explanation"] = "a changed explanation"
    path.write_text(json.dumps(changed))
    nx.ingest.run(["explanations"], source=str(source), warehouse=target, workers=1)
    now = nx.sql("select explanation from explanations where layer = 0 and neuron = 2 order by explanation_index",
                 target).to_pylist()
    assert now[0]["explanation"] == "a changed explanation"
    then = nx.sql("select explanation from explanations where layer = 0 and neuron = 2 order by explanation_index",
                  target, as_of=f"explanations={version}").to_pylist()
    assert then == old_text
    history = maintenance.history(store, "explanations")
    committed = next(h["committed_at"] for h in history if h["version"] == version)
    assert nx.sql("select explanation from explanations where layer = 0 and neuron = 2 order by explanation_index",
                  target, as_of=committed.isoformat()).to_pylist() == old_text
    cli = _run_nx("sql", "select count(*) from explanations", "-w", target, "--as-of", "99999")
    assert cli.returncode == 3 and cli.stderr.count("\n") == 1 and "no version 99999" in cli.stderr
    bad = _run_nx("sql", "select 1", "-w", target, "--as-of", "yesterday")
    assert bad.returncode == 2 and "--as-of 'yesterday'" in bad.stderr


def test_history_lists_each_commit_with_what_made_it(sample_warehouse):
    result = _run_nx("history", "explanations", "-w", sample_warehouse, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    operations = [r["operation"] for r in rows]
    assert operations[0] == "compact" and "ingest" in operations and operations[-1] == "create"
    ingest = next(r for r in rows if r["operation"] == "ingest")
    details = json.loads(ingest["details"])
    assert details["source"] == SAMPLE and details["rows_added"] > 0 and ingest["nx_version"] == nx.__version__


def test_two_ingests_at_once_lose_and_duplicate_nothing(tmp_path):
    target = str(tmp_path / "w")
    env = {"NX_COMMIT_SECONDS": "0"}  # as many commits as possible, to make them collide
    processes = [subprocess.Popen([sys.executable, "-m", "nx", "ingest", "--all", "--source", SAMPLE, "-w", target,
                                   "--workers", "1", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, **env}) for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    fresh = str(tmp_path / "fresh")
    nx.ingest.run(source=SAMPLE, warehouse=fresh, workers=1)
    for table in [*DATA_TABLES, "_ingest"]:
        assert _rows(target, table) == _rows(fresh, table), table


def test_an_ingest_beside_an_explain_run_keeps_both(tmp_path):
    # the explain run's commits and the ingest's go to the same explanations table
    target = str(tmp_path / "w")
    nx.ingest.run(["collated-activations"], source=SAMPLE, warehouse=target, workers=1)
    store = Warehouse(target)
    run_rows = nx.sql("select * exclude (model, run) from explanations", target)  # none yet
    assert run_rows.num_rows == 0
    ingest = subprocess.Popen([sys.executable, "-m", "nx", "ingest", "explanations", "related-neurons",
                               "--source", SAMPLE, "-w", target, "--workers", "1", "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "NX_COMMIT_SECONDS": "0"})
    # a writer like nx explain's: 30 small commits of its own run while the ingest commits
    spec = TABLES["explanations"]
    for neuron in range(30):
        row = {name: None for name in spec.columns.names}
        row.update(neuron=neuron, explanation_index=0, explanation=f"run row {neuron}", score=0.5, status="ok")
        data = pa.Table.from_pylist([row], schema=spec.columns)
        store.commit("explanations", store.write_files("explanations", {"model": "gpt2-xl", "run": "mine", "layer": 0},
                                                      data),
                     [Replace({"model": "gpt2-xl", "run": "mine"}, {(0, neuron)})], "explain")
    _, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    counts = dict(nx.sql("select run, count(*) from explanations group by run", target).to_pylist()[i].values()
                  for i in range(2))
    assert counts == {"mine": 30, "public": 18}


def test_a_warehouse_of_the_previous_layout_is_converted_without_losing_a_row(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(LEGACY, old)
    result = _run_nx("sql", "select count(*) from explanations", "-w", str(old))
    assert result.returncode == 3 and "nx migrate" in result.stderr and result.stderr.count("\n") == 1
    assert sorted(migrate.needed(Warehouse(str(old)))) == sorted(p.name for p in LEGACY.iterdir())
    result = _run_nx("migrate", "-w", str(old))
    assert result.returncode == 0, result.stderr
    assert "explanations: 3 Parquet files converted" in result.stdout
    assert not migrate.legacy_files(Warehouse(str(old)), "explanations")
    for table in [*DATA_TABLES, "_ingest"]:
        assert _rows(str(old), table) == _legacy_rows(table), table
    again = _run_nx("migrate", "-w", str(old))
    assert again.returncode == 0 and "nothing to convert" in again.stdout


def test_an_interrupted_conversion_is_finished_by_running_it_again(tmp_path, monkeypatch):
    old = tmp_path / "old"
    shutil.copytree(LEGACY, old)
    store = Warehouse(str(old))
    calls = []
    real_commit = Warehouse.commit

    def crash_on_third(self, table, *args, **kwargs):
        calls.append(table)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_commit(self, table, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "commit", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        migrate.migrate(store)
    monkeypatch.setattr(Warehouse, "commit", real_commit)
    migrate.migrate(store)
    for table in DATA_TABLES:
        assert _rows(str(old), table) == _legacy_rows(table), table


def test_a_version_vacuumed_away_is_refused_with_one_line(tmp_path):
    target = str(tmp_path / "w")
    nx.ingest.run(["token-lookups"], source=SAMPLE, warehouse=target, workers=1)
    store = Warehouse(target)
    maintenance.vacuum(store, retention_hours=0)
    # the files of version 1 (before compaction) are gone: reading it fails clearly, not silently
    with pytest.raises((WarehouseError, QueryError)):
        nx.sql("select count(*) from token_lookups", target, as_of=1)
    assert nx.sql("select count(*) as n from token_lookups", target).to_pylist()[0]["n"] == 900
