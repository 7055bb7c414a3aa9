"""A committed data file that is not Parquet, or not the table's: nx sql says which table and
which file in one line and exits 3 (it printed a traceback, or read the file as a row of nulls)."""
from __future__ import annotations

import os

import duckdb
import pytest

import nx
from nx.errors import WarehouseError
from nx.warehouse import Warehouse
from query_fixtures import cli, copied_warehouse, warehouse  # noqa: F401  (fixtures)


def committed(root: str, table: str) -> list[str]:
    store = Warehouse(root)
    return sorted(f"{store.table_path(table)}/{f.path}" for f in store.files(table))


def garbage(path: str) -> None:
    with open(path, "wb") as f:
        f.write(b"not a parquet file\n")


def foreign(path: str) -> None:
    duckdb.sql(f"copy (select 1 as foo, 'x' as bar) to '{path}' (format parquet)")


@pytest.mark.parametrize("spoil, says", [(garbage, "Invalid Input Error: "),
                                         (foreign, "is not a file of this table (its columns: foo, bar)")])
@pytest.mark.parametrize("which", [0, -1], ids=["first-file", "last-file"])
@pytest.mark.parametrize("table", ["explanations", "activation_records"])
def test_a_spoiled_data_file_is_one_line_naming_table_and_file_exit_3(cli, copied_warehouse, table, which, spoil,
                                                                      says):
    path = committed(copied_warehouse, table)[which]
    spoil(path)
    result = cli("sql", f"select * from {table}", "-w", copied_warehouse, "--format", "csv")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr.startswith(f"nx: error: cannot read table {table} of {copied_warehouse}: ")
    assert path in result.stderr and says in result.stderr and result.stderr.count("\n") == 1
    with pytest.raises(WarehouseError):
        nx.sql(f"select count(*) from {table} where neuron >= 0", copied_warehouse)


def test_the_other_tables_still_answer(copied_warehouse):
    garbage(committed(copied_warehouse, "activation_records")[0])
    assert nx.sql("select count(*) as n from explanations", copied_warehouse).to_pylist()[0]["n"] > 0


@pytest.mark.parametrize("command", [["sql", "select count(*) from activation_records"], ["show", "0", "0"]])
def test_a_data_file_that_is_a_fifo_is_one_line_not_a_hang(cli, copied_warehouse, command):
    path = committed(copied_warehouse, "activation_records")[0]
    os.remove(path)
    os.mkfifo(path)  # opening it for reading would wait for a writer for ever
    result = cli(*command, "-w", copied_warehouse)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"nx: error: cannot read {path}: not a regular file\n"
