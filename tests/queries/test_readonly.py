"""Reading cannot write: nx sql admits one SELECT or EXPLAIN of one, and reads only the warehouse."""
from __future__ import annotations

import os

import duckdb
import pytest

import nx
from nx.errors import QueryError, UsageError
from nx.queries import readonly
from nx.warehouse import Warehouse
from query_fixtures import cli, copied_warehouse, warehouse  # noqa: F401  (fixtures)

REFUSED = "only SELECT (or EXPLAIN of a SELECT) can be run here, not {}: the warehouse is read-only to queries"


def snapshot(root: str) -> dict[str, tuple[int, int]]:
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            found[path] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
    return found


@pytest.mark.parametrize("statement, refused", [
    ("copy (select 1) to '{w}/evil.csv'", "COPY"),
    ("copy explanations to '{w}/explanations/evil.parquet' (format parquet)", "COPY"),
    ("attach '{w}/evil.db' as evil", "ATTACH"),
    ("install httpfs", "INSTALL"),
    ("load httpfs", "LOAD"),
    ("create table evil as select 1", "CREATE"),
    ("insert into explanations select * from explanations", "INSERT"),
    ("with x as (select 1) insert into evil select * from x", "INSERT"),
    ("pragma version", "PRAGMA"),
    ("set enable_external_access = true", "SET"),
    ("call pragma_version()", "CALL"),
    ("export database '{w}/evil'", "EXPORT"),
    ("explain analyze copy (select 1) to '{w}/evil.csv'", "EXPLAIN COPY"),
    ("explain analyze (format json) copy (select 1) to '{w}/evil.csv'", "EXPLAIN COPY"),
])
def test_statements_that_could_write_are_refused_and_nothing_changes(copied_warehouse, statement, refused):
    before = snapshot(copied_warehouse)
    with pytest.raises(QueryError) as error:
        nx.sql(statement.format(w=copied_warehouse), copied_warehouse)
    assert str(error.value) == REFUSED.format(refused)
    assert snapshot(copied_warehouse) == before


def test_files_outside_the_warehouse_cannot_be_read(warehouse):
    with pytest.raises(QueryError) as error:
        nx.sql("select * from read_csv('/etc/passwd')", warehouse)
    assert str(error.value) == ('Permission Error: Cannot access file "/etc/passwd" - '
                                "file system operations are disabled by configuration")


def test_files_inside_the_warehouse_can_be_read_directly(warehouse):
    from nx.warehouse import Warehouse

    store = Warehouse(warehouse)
    [committed] = store.files("explanations")  # one file after compaction; older ones await vacuum
    path = f"{store.table_path('explanations')}/{committed.path}"
    direct = nx.sql(f"select count(*) as n from read_parquet('{path}')", warehouse)
    assert direct.to_pylist() == nx.sql("select count(*) as n from explanations", warehouse).to_pylist()


@pytest.mark.parametrize("statement", [
    "select 1", "from explanations", "with x as (select 1 as a) select a from x", "(select 1) union (select 2)",
    "describe explanations", "explain select * from explanations", "explain analyze select count(*) from explanations",
    "-- a comment first\nexplain analyze (format json) select 1", "explain analyze (select 1)",
])
def test_reading_statements_are_admitted(warehouse, statement):
    assert nx.sql(statement, warehouse).num_rows >= 1


def test_one_statement_at_a_time(warehouse):
    with pytest.raises(QueryError, match=r"^give one statement at a time \(2 were given\)$"):
        nx.sql("select 1; select 2", warehouse)
    assert nx.sql("select 1 as a;", warehouse).to_pylist() == [{"a": 1}]


@pytest.mark.parametrize("statement", ["", "  ;", "-- only a comment"])
def test_an_empty_statement_is_a_usage_error(warehouse, statement):
    with pytest.raises(UsageError, match="^no SQL statement given$"):
        nx.sql(statement, warehouse)


def test_the_locked_configuration_cannot_be_unlocked(warehouse):
    con = duckdb.connect()
    readonly.lock(con, Warehouse(warehouse))
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("set enable_external_access = true")


def test_sql_errors_are_duckdbs_message_in_one_line(warehouse):
    with pytest.raises(QueryError) as error:
        nx.sql("select nope from explanations", warehouse)
    message = str(error.value)
    assert message.startswith('Binder Error: Referenced column "nope" not found in FROM clause!')
    assert "LINE 1" not in message and "^" not in message


def test_cli_refusal_is_one_line_on_stderr_with_exit_code_1(cli, copied_warehouse):
    target = os.path.join(copied_warehouse, "evil.csv")
    result = cli("sql", f"copy (select 1) to '{target}'", "-w", copied_warehouse)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "nx: error: " + REFUSED.format("COPY") + "\n"
    assert not os.path.exists(target)
