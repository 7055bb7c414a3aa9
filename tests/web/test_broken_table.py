"""A committed data file that is not Parquet, or not the table's, does not stop the viewer (it
would not start): the pages that need that table answer with one line naming the file, the
others as usual."""
from __future__ import annotations

import duckdb
import pytest
from starlette.testclient import TestClient

from nx.warehouse import Warehouse
from nx.web import create_app


def committed(root: str, table: str) -> list[str]:
    store = Warehouse(root)
    return sorted(f"{store.table_path(table)}/{f.path}" for f in store.files(table))


@pytest.fixture
def spoiled(own_warehouse):
    records = committed(own_warehouse, "activation_records")[0]  # layer 0: read when the views are made
    with open(records, "wb") as f:
        f.write(b"not a parquet file\n")
    lookups = committed(own_warehouse, "token_lookups")[-1]
    duckdb.sql(f"copy (select 1 as foo, 'x' as bar) to '{lookups}' (format parquet)")
    return own_warehouse, records, lookups


def test_the_viewer_starts_and_only_pages_needing_a_spoiled_table_fail(spoiled):
    root, records, lookups = spoiled
    with TestClient(create_app(root)) as client:
        assert client.get("/").status_code == 200
        assert client.get("/search.json", params={"q": "the"}).status_code == 200
        assert client.get("/sql.json", params={"q": "select count(*) as n from explanations"}).status_code == 200
        for statement, file, says in [("select count(*) from activation_records", records, "Invalid Input Error"),
                                      ("select * from token_lookups", lookups, "is not a file of this table")]:
            answer = client.get("/sql.json", params={"q": statement})
            error = answer.json()["error"]
            assert 400 <= answer.status_code < 500 and file in error and says in error and "\n" not in error
        page = client.get("/neuron/0/1.json")  # reads the files holding it directly, both spoiled tables' too
        error = page.json()["error"]
        assert 400 <= page.status_code < 500 and "\n" not in error and "Traceback" not in error
        assert "Permission Error" not in error  # a spoiled table's files stay readable: the error says what is wrong
