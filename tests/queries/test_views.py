"""The DuckDB views: declared columns and types, empty tables, partition pruning, derived views."""
from __future__ import annotations

import glob
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nx
from nx.errors import WarehouseError
from nx.queries.catalog import duckdb_type
from nx.queries.views import DERIVED
from nx.schema import DATA_TABLES, TABLES
from nx.warehouse import Warehouse
from query_fixtures import copied_warehouse, fresh_warehouse, warehouse  # noqa: F401  (fixtures)


def described(con, view: str) -> list[tuple[str, str]]:
    return [(name, kind) for name, kind, *_ in con.sql(f'describe "{view}"').fetchall()]


def declared(table: str) -> list[tuple[str, str]]:
    return [(f.name, duckdb_type(f.type)) for f in TABLES[table].schema]


@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_view_has_the_declared_columns_and_types(warehouse, fresh_warehouse, table):
    assert described(nx.connect(warehouse), table) == declared(table)
    assert described(nx.connect(fresh_warehouse), table) == declared(table)


@pytest.mark.parametrize("view", [*TABLES, *DERIVED])
def test_a_fresh_warehouse_gives_zero_rows_not_an_error(fresh_warehouse, view):
    assert nx.sql(f'select * from "{view}"', fresh_warehouse).num_rows == 0


def test_a_warehouse_that_is_not_there_is_a_one_line_error(tmp_path):
    with pytest.raises(WarehouseError) as error:
        nx.sql("select 1", str(tmp_path / "nowhere"))
    assert str(error.value) == (f"no warehouse at {tmp_path / 'nowhere'}: give --warehouse, set NX_WAREHOUSE, "
                                "or run nx ingest first")


def test_the_views_hold_what_was_ingested(warehouse, source_tree):
    counts = {row["kind"]: row["n"] for row in
              nx.sql("select kind, count(*) as n from _ingest where status = 'ok' group by kind", warehouse).to_pylist()}
    assert counts == {kind: len(pairs) for kind, pairs in source_tree["ok"].items()}
    assert nx.sql("select count(*) as n from neurons", warehouse).to_pylist() == \
        [{"n": len(source_tree["ok"]["collated-activations"])}]


def _break_layer(warehouse: str, layer: int) -> None:
    """Overwrite every Parquet file of one layer with garbage: reading it fails loudly."""
    for path in glob.glob(os.path.join(warehouse, "*", "**", f"layer={layer}", "*.parquet"), recursive=True):
        with open(path, "wb") as f:
            f.write(b"not parquet")


@pytest.mark.parametrize("view", ["activation_records", "activations", "explanation_sequences"])
def test_a_query_on_one_layer_reads_only_that_layer(copied_warehouse, view):
    # the tables partitioned by layer; the others are a few files sorted by (layer, neuron),
    # pruned by row-group statistics (tests/test_table_format.py)
    _break_layer(copied_warehouse, 1)
    assert nx.sql(f"select count(*) as n from {view} where layer = 0", copied_warehouse).to_pylist()[0]["n"] > 0
    with pytest.raises(WarehouseError, match="^cannot read table (activation_records|explanation_sequences) of "
                                             ".*layer=1/part-.* too small to be a Parquet file$"):
        nx.sql(f"select count(*) from {view} where layer = 1", copied_warehouse)


def test_a_run_named_like_a_date_stays_a_string(copied_warehouse):
    store = Warehouse(copied_warehouse)
    rows = store.read_table("explanations", {"model": "gpt2-xl", "run": "public", "layer": 0})
    files = store.write_files("explanations", {"model": "gpt2-xl", "run": "2024-01-01", "layer": 0}, rows)
    store.commit("explanations", files)
    result = nx.sql("select run, count(*) as n from explanations where run = '2024-01-01' group by run",
                    copied_warehouse)
    assert result.schema.field("run").type == pa.string()
    assert result.to_pylist() == [{"run": "2024-01-01", "n": rows.num_rows}]


def test_files_written_under_an_older_schema_are_still_read(copied_warehouse):
    store = Warehouse(copied_warehouse)
    [path] = [f"{store.table_path('explanations')}/{f.path}" for f in store.files("explanations")]
    older = pq.read_table(path).drop_columns(["prompt_version"])  # as if written before that column existed
    pq.write_table(older, path)
    rows = nx.sql("select layer, prompt_version from explanations order by layer", copied_warehouse).to_pylist()
    assert {row["layer"] for row in rows} == {0, 1}
    assert all(row["prompt_version"] is None for row in rows)


def test_activations_has_one_row_per_token(warehouse):
    records = nx.sql("select layer, neuron, sample, quantile, rank, tokens, activations from activation_records",
                     warehouse).to_pylist()
    tokens = nx.sql("select * from activations", warehouse)
    assert tokens.column_names == ["model", "layer", "neuron", "sample", "quantile", "rank", "position", "token",
                                   "activation"]
    assert tokens.num_rows == sum(len(r["tokens"]) for r in records)
    record = next(r for r in records if r["layer"] == 1 and r["sample"] == "top" and r["rank"] == 2)
    rows = nx.sql("select position, token, activation from activations where layer = 1 and neuron = $neuron "
                  "and sample = 'top' and rank = 2 order by position", warehouse,
                  {"neuron": record["neuron"]}).to_pylist()
    assert [(r["token"], r["activation"]) for r in rows] == list(zip(record["tokens"], record["activations"]))
    assert [r["position"] for r in rows] == list(range(len(record["tokens"])))


def test_neuron_summary_has_one_row_per_neuron_with_its_best_public_explanation(warehouse, source_tree):
    objects = source_tree["objects"]
    summary = {(r["layer"], r["neuron"]): r
               for r in nx.sql("select * from neuron_summary", warehouse).to_pylist()}
    grid = {(layer, neuron) for layer in source_tree["layers"] for neuron in source_tree["neurons"]}
    assert set(summary) == grid
    for (layer, neuron), row in summary.items():
        explained = objects.get(("explanations", layer, neuron))
        if explained:
            best = max(explained["scored_explanations"], key=lambda e: e["scored_simulation"]["ev_correlation_score"])
            assert row["explanation"] == best["explanation"]
            assert row["score"] == best["scored_simulation"]["ev_correlation_score"]
        else:
            assert row["explanation"] is None and row["explanation_count"] == 0
        lookup = objects.get(("token-lookups", layer, neuron))
        assert row["top_tokens"] == (lookup["tokens"][:10] if lookup else None)
        related = objects.get(("related-neurons", layer, neuron))
        sides = {"c_fc": "upstream_count", "c_proj": "downstream_count"}
        for side, column in sides.items():
            lists = (related or {}).get(side) or {}
            assert row[column] == len(lists.get("top_positive_neurons", [])) + len(lists.get("top_negative_neurons", []))


def test_every_data_table_has_a_view(warehouse):
    names = {row[0] for row in nx.connect(warehouse).sql("select view_name from duckdb_views() "
                                                         "where not internal").fetchall()}
    assert set(DATA_TABLES) | set(DERIVED) <= names


@pytest.mark.parametrize("statement, column", [
    ("show tables", "name"), ("show all tables", "name"), ("describe", "name"), ("DESCRIBE", "name"),
    ("select table_name from information_schema.tables", "table_name"),
    ("select view_name from duckdb_views() where not internal", "view_name"),
    ("select table_name from information_schema.columns", "table_name"),
    ("select distinct table_name from duckdb_columns() where not internal", "table_name"),
    ("select name from sqlite_master", "name"),
])
def test_a_first_query_of_the_catalog_lists_every_table_and_view(warehouse, statement, column):
    listed = set(nx.sql(statement, warehouse).column(column).to_pylist())
    assert listed == {*TABLES, *DERIVED}


def test_an_ordinary_query_creates_only_the_views_it_names(warehouse):
    from nx.queries.views import needed_views

    assert needed_views("select count(*) from explanations order by 1 desc") == {"explanations"}
    assert needed_views("describe explanations") == {"explanations"}
    assert needed_views("select 1") == set()
    assert needed_views("select * from best_explanations") == {"best_explanations", "explanations"}
