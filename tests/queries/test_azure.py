"""The query layer on an az:// warehouse (Azurite): views, the read-only lock, nx.neuron, nx.scan."""
from __future__ import annotations

import polars as pl
import pytest

import nx
import nx.ingest
from nx.errors import QueryError
from query_fixtures import plain, sorted_rows, warehouse  # noqa: F401  (fixture)

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:                    # tests/ itself on sys.path
    from azurite import azurite  # noqa: F401

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def azure_warehouse(azurite, source_tree):
    """The source tree ingested into a private container; credentials from the environment."""
    azurite.create_container("query-warehouse", public=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        url = f"az://{azurite.account}/query-warehouse/nx"
        nx.ingest.run(source=source_tree["root"], warehouse=url, workers=1)
    return url


@pytest.fixture
def on_azure(azure_warehouse, azurite, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    return azure_warehouse


@pytest.mark.parametrize("statement", [
    "select * from explanations where layer = 1",
    "select * from neuron_summary",
    "select layer, count(*) as n from activations group by layer",
])
def test_sql_on_azure_gives_what_it_gives_locally(on_azure, warehouse, statement):
    assert sorted_rows(nx.sql(statement, on_azure).to_pylist()) == sorted_rows(nx.sql(statement, warehouse).to_pylist())


def test_named_queries_run_on_azure(on_azure, warehouse):
    assert nx.query("top-explained", on_azure, min_score=0.5).equals(nx.query("top-explained", warehouse, min_score=0.5))


def test_local_files_cannot_be_read_through_an_azure_warehouse(on_azure):
    with pytest.raises(QueryError, match='Cannot access file "/etc/passwd"'):
        nx.sql("select * from read_csv('/etc/passwd')", on_azure)
    with pytest.raises(QueryError, match="not COPY"):
        nx.sql(f"copy (select 1) to '{on_azure}/evil.csv'", on_azure)


def test_neuron_and_scan_on_azure(on_azure, warehouse):
    assert plain(nx.neuron(0, 1, warehouse=on_azure).asdict()) == plain(nx.neuron(0, 1, warehouse=warehouse).asdict())
    frame = nx.scan("explanations", on_azure).filter(pl.col("layer") == 0)
    assert sorted_rows(frame.collect().to_dicts()) == \
        sorted_rows(nx.scan("explanations", warehouse).filter(pl.col("layer") == 0).collect().to_dicts())


def test_azure_tables_are_delta_tables_compacted_with_history_and_time_travel(on_azure, warehouse):
    from nx import maintenance
    from nx.warehouse import Warehouse

    store = Warehouse(on_azure)
    assert len(store.files("explanations")) == 1  # compacted after ingest
    history = maintenance.history(store, "explanations")
    assert [h["operation"] for h in history][:2] == ["compact", "ingest"]
    before_compaction = history[1]["version"]
    count = "select count(*) as n from explanations"
    assert nx.sql(count, on_azure, as_of=f"explanations={before_compaction}").equals(nx.sql(count, warehouse))
    maintenance.vacuum(store, ["explanations"], retention_hours=168)  # keeps what time travel needs
    assert nx.sql(count, on_azure).equals(nx.sql(count, warehouse))


def test_a_query_in_an_azure_warehouses_own_queries_folder_runs(on_azure, azurite):
    from nx.storage import azure_filesystem

    fs = azure_filesystem(azurite.account)
    path = on_azure[len(f"az://{azurite.account}/"):] + "/_queries/per-layer.sql"  # container/...
    fs.pipe_file(path, b"-- description: neurons per layer\n"
                       b"select layer, count(*) as n from neurons group by layer order by layer\n")
    try:
        queries = nx.queries.named_queries(on_azure)
        assert queries["per-layer"].origin.endswith("nx/_queries/per-layer.sql")
        assert nx.query("per-layer", on_azure).to_pylist() == [{"layer": 0, "n": 4}, {"layer": 1, "n": 4}]
    finally:
        fs.rm(path)
