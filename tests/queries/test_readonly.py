"""Reading cannot write: nx sql admits one SELECT or EXPLAIN of one, and reads only the warehouse."""
from __future__ import annotations

import os
import shutil

import duckdb
import pytest

import nx
from nx.errors import NxError, QueryError, UsageError
from nx.queries import readonly, sandbox
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


def test_files_the_views_do_not_read_cannot_be_read_even_in_the_warehouse(warehouse):
    store = Warehouse(warehouse)
    [committed] = store.files("explanations")
    data = f"{store.table_path('explanations')}/{committed.path}"
    log = os.path.join(store.table_path("explanations"), "_delta_log", "00000000000000000000.json")
    for statement in (f"select * from read_text('{log}')", f"select count(*) from read_parquet('{data}')",
                      f"select count(*) from read_parquet('{warehouse}/explanations/**/*.parquet')"):
        with pytest.raises(QueryError, match="^Permission Error: Cannot access file .* disabled by configuration$"):
            nx.sql(statement, warehouse)
    # the files of the views a statement names are the ones it may read
    assert nx.sql(f"select count(*) as n from explanations, read_parquet('{data}') limit 1", warehouse).num_rows == 1


@pytest.mark.parametrize("confined", [True, False], ids=["landlock", "duckdb-only"])
def test_a_file_no_commit_names_beside_the_views_files(copied_warehouse, monkeypatch, confined):
    # Without Landlock every file is allowed by name (nothing can be made beside them); with
    # it, their folders (allowing 2,400 paths costs DuckDB 40 ms), and the kernel stops writes.
    if not confined:
        monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    elif sandbox.landlock_abi() < 1:
        pytest.skip("Landlock is not available here")
    store = Warehouse(copied_warehouse)
    [committed] = store.files("explanations")
    data = f"{store.table_path('explanations')}/{committed.path}"
    stray = os.path.join(os.path.dirname(data), "part-00000000000000000000000000000000.parquet")
    shutil.copyfile(data, stray)
    statement = f"select count(*) as n from explanations, read_parquet('{stray}')"
    if confined:
        assert nx.sql(statement, copied_warehouse).num_rows == 1
    else:
        with pytest.raises(QueryError, match="^Permission Error: Cannot access file"):
            nx.sql(statement, copied_warehouse)


@pytest.mark.parametrize("statement, word", [
    ("with x as (copy (select 1) to '{w}/evil.csv') select 1", "COPY"),
    ("WITH x AS (COPY (select 1 a, 2 b) TO '{w}/neurons' (FORMAT parquet, PARTITION_BY (b), OVERWRITE true)) "
     "SELECT 1", "COPY"),
    ("explain analyze with x as (copy (select 1) to '{w}/evil.csv') select 1", "COPY"),
    ("with x as (insert into t values (1)) select 1", "INSERT"),
    ("with x as (delete from t) select 1", "DELETE"),
    ("select 1 as set", "SET"),
])
def test_a_writing_word_anywhere_in_a_select_is_refused(copied_warehouse, statement, word):
    before = snapshot(copied_warehouse)
    with pytest.raises(QueryError) as error:
        nx.sql(statement.format(w=copied_warehouse), copied_warehouse)
    assert str(error.value) == (f'{word} cannot be part of a query here (a name spelled so must be quoted: '
                                f'"{word.lower()}"): the warehouse is read-only to queries')
    assert snapshot(copied_warehouse) == before


@pytest.mark.parametrize("statement, function", [
    ("select * from json_execute_serialized_sql(json_serialize_sql('with x as (copy (select 1) to ''{w}/e.csv'') "
     "select 1'))", "json_execute_serialized_sql"),
    ("select * from \"JSON_EXECUTE_SERIALIZED_SQL\"('x')", "json_execute_serialized_sql"),
    ("select * from query('select 1')", "query"),
    ("select * from enable_logging(storage = 'file', storage_path = '{w}/logs')", "enable_logging"),
    ("select write_log('x')", "write_log"),
])
def test_functions_that_run_sql_of_their_own_are_refused(copied_warehouse, statement, function):
    before = snapshot(copied_warehouse)
    with pytest.raises(QueryError) as error:
        nx.sql(statement.format(w=copied_warehouse), copied_warehouse)
    assert str(error.value) == (f"{function}() runs SQL of its own or changes the database, so it cannot be used "
                                "here: the warehouse is read-only to queries")
    assert snapshot(copied_warehouse) == before


def test_such_words_in_strings_comments_and_quoted_names_are_fine(warehouse):
    result = nx.sql("select 'copy' as \"load\", 2 as \"set\" -- copy, attach\n/* install */", warehouse)
    assert result.to_pylist() == [{"load": "copy", "set": 2}]
    assert nx.sql("select count(*) as n from query_table('explanations')", warehouse).num_rows == 1


WRITES_BEHIND_THE_GUARD = [
    "with x as (copy (select 1 a) to '{w}/evil.csv') select 1",
    "with x as (copy (select 1 a, 2 b) to '{w}/neurons' (format parquet, partition_by (b), overwrite true)) select 1",
    "with x as (copy (select 1 a) to '{outside}/evil.csv') select 1",
    "select * from json_execute_serialized_sql(json_serialize_sql("
    "'with x as (copy (select 1 a) to ''{w}/evil.csv'') select 1'))",
]


@pytest.mark.parametrize("confined", [True, False], ids=["landlock", "duckdb-only"])
@pytest.mark.parametrize("statement", WRITES_BEHIND_THE_GUARD)
def test_the_connection_alone_cannot_create_or_delete_files(copied_warehouse, tmp_path, monkeypatch, statement,
                                                            confined):
    # Wall 1 (the word check) taken away: what holds is the connection's lock (and Landlock).
    monkeypatch.setattr(readonly, "check_words", lambda sql: sql)
    if not confined:
        monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    elif sandbox.landlock_abi() < 1:
        pytest.skip("Landlock is not available here")
    outside = tmp_path / "outside"
    outside.mkdir()
    before = snapshot(copied_warehouse)
    with pytest.raises(QueryError, match="^Permission Error: Cannot access file"):
        nx.sql(statement.format(w=copied_warehouse, outside=outside), copied_warehouse)
    assert snapshot(copied_warehouse) == before and not os.listdir(outside)


def test_with_landlock_not_even_a_data_file_the_views_read_can_be_overwritten(copied_warehouse, monkeypatch):
    if sandbox.landlock_abi() < 1:
        pytest.skip("Landlock is not available here")
    monkeypatch.setattr(readonly, "check_words", lambda sql: sql)
    store = Warehouse(copied_warehouse)
    [committed] = store.files("explanations")
    data = f"{store.table_path('explanations')}/{committed.path}"
    before = snapshot(copied_warehouse)
    with pytest.raises(NxError, match="Permission denied"):
        nx.sql(f"with x as (copy (select * from explanations) to '{data}' (format parquet, use_tmp_file false)) "
               "select count(*) from explanations", copied_warehouse)
    assert snapshot(copied_warehouse) == before


def test_the_confined_thread_cannot_write_but_the_rest_of_the_process_can(tmp_path):
    if sandbox.landlock_abi() < 1:
        pytest.skip("Landlock is not available here")
    target = tmp_path / "written.txt"
    with pytest.raises(PermissionError):
        sandbox.confined(lambda: target.write_text("x"))
    spill = sandbox.confined(lambda: (sandbox.private_directory() + "/spilled.txt", open(
        sandbox.private_directory() + "/spilled.txt", "w").write("x"))[0])
    assert open(spill).read() == "x"
    os.remove(spill)
    target.write_text("here it can")
    assert sandbox.confinement().startswith("landlock")


def test_duckdb_spills_to_a_private_directory_not_to_dot_tmp(warehouse, tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / ".tmp").symlink_to(victim)  # DuckDB's default temp_directory is ./.tmp
    monkeypatch.chdir(work)
    config = sandbox.spill_config()
    private = sandbox.private_directory()
    assert os.path.dirname(config["temp_directory"]) == private and os.stat(private).st_mode & 0o777 == 0o700
    assert int(config["max_temp_directory_size"].rstrip("B")) <= sandbox.SPILL_CAP
    con = nx.connect(warehouse)
    assert con.sql("select current_setting('temp_directory')").fetchall()[0][0].startswith(private)
    con.close()
    # a sort bigger than the memory limit spills, and leaves nothing behind
    monkeypatch.setattr(sandbox, "spill_config", lambda: {**config, "memory_limit": "40MB", "threads": "1"})
    spilled = nx.sql("select count(*) as n from (select md5(i::varchar) s from range(3000000) t(i) order by s)",
                     warehouse)
    assert spilled.to_pylist() == [{"n": 3000000}]
    assert not os.listdir(victim) and sorted(os.listdir(work)) == [".tmp"]
    assert not os.path.exists(config["temp_directory"])
    # the spill is bounded: past the bound the query fails, in one line
    monkeypatch.setattr(sandbox, "spill_config", lambda: {**config, "memory_limit": "40MB", "threads": "1",
                                                           "max_temp_directory_size": "4MB"})
    with pytest.raises(QueryError, match=r"^Out of Memory Error: .* DuckDB's temporary files reached nx's limit "
                                         r"\(half the free space of the temporary directory's disk, at most 16 GiB\)"):
        nx.sql("select count(*) as n from (select md5(i::varchar) s from range(3000000) t(i) order by s)", warehouse)
    assert not os.listdir(victim) and sorted(os.listdir(work)) == [".tmp"]


def test_private_directories_of_dead_processes_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sandbox, "_private", None)
    dead = tmp_path / f"{sandbox.PREFIX}999999999-abc"  # no such process
    dead.mkdir()
    (dead / "duckdb_temp_storage.tmp").write_bytes(b"x" * 1000)
    alive = tmp_path / f"{sandbox.PREFIX}{os.getppid()}-def"
    alive.mkdir()
    made = sandbox.private_directory()
    assert not dead.exists() and alive.exists() and os.path.dirname(made) == str(tmp_path)


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
