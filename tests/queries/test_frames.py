"""``nx.scan``: polars LazyFrames with the declared schema and partition pruning."""
from __future__ import annotations

import glob
import os

import polars as pl
import pytest

import nx
from nx.errors import UsageError
from nx.schema import TABLES
from nx.warehouse import Warehouse
from query_fixtures import copied_warehouse, fresh_warehouse, plain, sorted_rows, warehouse  # noqa: F401


def declared(table: str) -> pl.Schema:
    return pl.from_arrow(TABLES[table].schema.empty_table()).schema


@pytest.mark.parametrize("table", list(TABLES))
def test_every_scan_has_the_declared_columns_and_types(warehouse, fresh_warehouse, table):
    assert nx.scan(table, warehouse).collect_schema() == declared(table)
    assert nx.scan(table, fresh_warehouse).collect().schema == declared(table)
    assert nx.scan(table, fresh_warehouse).collect().height == 0


@pytest.mark.parametrize("table", ["explanations", "activation_records", "token_weights"])
def test_a_scan_holds_the_same_rows_as_the_view(warehouse, table):
    scanned = nx.scan(table, warehouse).collect().to_dicts()
    assert sorted_rows(scanned) == sorted_rows(nx.sql(f"select * from {table}", warehouse).to_pylist())


def test_a_filter_on_layer_reads_only_that_layer(copied_warehouse):
    store = Warehouse(copied_warehouse)
    for path in [f"{store.table_path('activation_records')}/{f.path}"
                 for f in store.files("activation_records", {"layer": 1})]:
        with open(path, "wb") as f:
            f.write(b"not parquet")
    frame = nx.scan("activation_records", copied_warehouse)
    assert frame.filter(pl.col("layer") == 0).select(pl.len()).collect().item() > 0
    with pytest.raises(pl.exceptions.ComputeError):
        frame.filter(pl.col("layer") == 1).collect()


def test_a_run_named_like_a_date_stays_a_string(copied_warehouse):
    store = Warehouse(copied_warehouse)
    rows = store.read_table("explanations", {"model": "gpt2-xl", "run": "public", "layer": 0})
    store.commit("explanations", store.write_files("explanations", {"model": "gpt2-xl", "run": "2024-01-01", "layer": 0},
                                                   rows))
    runs = nx.scan("explanations", copied_warehouse).filter(pl.col("run") == "2024-01-01").collect()
    assert runs.schema["run"] == pl.String and runs.height == rows.num_rows


def test_an_unknown_table_is_a_usage_error(warehouse):
    with pytest.raises(UsageError, match="^unknown table 'explanation'; tables: neurons, "):
        nx.scan("explanation", warehouse)
