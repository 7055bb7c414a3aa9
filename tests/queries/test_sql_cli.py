"""``nx sql``: stdout is data in csv, json, parquet or a terminal table; errors are one line."""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

import nx
from nx.errors import UsageError
from nx.queries.render import choose_format, fit_columns
from query_fixtures import cli, warehouse  # noqa: F401  (fixtures)

HARD = ("select 1 as n, 0.5 as x, 'nan'::double as nan, null as nothing, 'a,\"b\"\nc' as text, "
        "true as yes, ['\t', ' é'] as tokens")


def test_csv_is_the_default_when_stdout_is_not_a_terminal(cli, warehouse):
    result = cli("sql", "select layer, neuron from explanations where layer = 0 order by neuron", "-w", warehouse)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "layer,neuron\n0,0\n0,1\n0,2\n0,3\n"


def test_csv_writes_nulls_empty_lists_as_json_and_quotes_what_needs_it(cli, warehouse):
    result = cli("sql", HARD, "-w", warehouse, "--format", "csv")
    assert result.stdout == 'n,x,nan,nothing,text,yes,tokens\n1,0.5,NaN,,"a,""b""\nc",true,"[""\\t"","" é""]"\n'


def test_json_is_an_array_of_row_objects_with_nan_as_null(cli, warehouse):
    result = cli("sql", HARD, "-w", warehouse, "-f", "json")
    assert json.loads(result.stdout) == [{"n": 1, "x": 0.5, "nan": None, "nothing": None, "text": 'a,"b"\nc',
                                          "yes": True, "tokens": ["\t", " é"]}]
    assert cli("sql", "select 1 as a where false", "-w", warehouse, "-f", "json").stdout == "[]\n"


def test_parquet_output_reads_back_as_the_same_table(cli, warehouse, tmp_path):
    target = tmp_path / "out.parquet"
    statement = "select * from explanations order by layer, neuron"
    result = cli("sql", statement, "-w", warehouse, "-o", target)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert pq.read_table(target).equals(nx.sql(statement, warehouse))
    assert os.listdir(tmp_path) == ["out.parquet"]  # written under a temporary name, then renamed


@pytest.mark.parametrize("suffix, first_line", [(".csv", "layer,neuron"), (".json", "["), (".txt", "layer")])
def test_the_output_suffix_picks_the_format(cli, warehouse, tmp_path, suffix, first_line):
    target = tmp_path / f"out{suffix}"
    cli("sql", "select layer, neuron from neurons", "-w", warehouse, "-o", target)
    assert target.read_text(encoding="utf-8").splitlines()[0].strip().startswith(first_line)


def test_the_table_format_shows_rows_and_the_row_count(cli, warehouse):
    result = cli("sql", "select layer, neuron, explanation from explanations order by layer, neuron",
                 "-w", warehouse, "-f", "table", "--max-rows", "2")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["layer", "neuron", "explanation"]
    assert len([line for line in lines if line.strip().startswith("0 ")]) == 2
    assert lines[-1] == "6 rows (2 shown; --format csv or -o FILE for all)"


def test_the_table_format_makes_whitespace_visible_and_keeps_one_line_per_row(cli, warehouse):
    result = cli("sql", "select 'a\nb\tc' as text, null as nothing", "-w", warehouse, "-f", "table")
    assert result.stdout.splitlines()[2].split() == ["a↵b⇥c", "NULL"]
    assert result.stdout.splitlines()[-1] == "1 row"


def test_narrow_terminals_shrink_text_columns_then_drop_columns_from_the_right():
    assert fit_columns([5, 50, 6], [5, 12, 6], 80) == [5, 50, 6]
    assert fit_columns([5, 50, 6], [5, 12, 6], 40) == [5, 23, 6]
    assert fit_columns([5, 50, 30], [5, 12, 30], 40) == [5, 32]


def test_statement_from_stdin(cli, warehouse):
    result = cli("sql", "-", "-w", warehouse, input="select count(*) as n from token_lookups")
    assert result.stdout == "n\n300\n"


def test_sql_errors_exit_1_with_duckdbs_message_and_no_traceback(cli, warehouse):
    result = cli("sql", "selec 1", "-w", warehouse)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == 'nx: error: Parser Error: syntax error at or near "selec"\n'
    result = cli("sql", "select * from explanation", "-w", warehouse)
    assert result.exit_code == 1
    assert result.stderr == ('nx: error: Catalog Error: Table with name explanation does not exist! Did you mean '
                             '"explanations"? Views: neurons, activation_records, explanations, explanation_sequences, '
                             "related_neurons, token_weights, token_lookups, _ingest, runs, scorer_predictions, "
                             "puzzle_results, activations, best_explanations, neuron_summary\n")


def test_a_missing_warehouse_exits_3(cli, tmp_path):
    result = cli("sql", "select 1", "-w", tmp_path / "nowhere")
    assert result.exit_code == 3
    assert result.stderr == (f"nx: error: no warehouse at {tmp_path / 'nowhere'}: give --warehouse, "
                             "set NX_WAREHOUSE, or run nx ingest first\n")


def test_an_unknown_format_exits_2(cli, warehouse):
    result = cli("sql", "select 1", "-w", warehouse, "-f", "xml")
    assert result.exit_code == 2
    assert result.stderr == "nx: error: unknown format 'xml'; formats: table, csv, json, parquet\n"


def test_parquet_is_refused_on_a_terminal_without_a_file():
    with pytest.raises(UsageError, match="^parquet is binary: give -o FILE or redirect stdout$"):
        choose_format("parquet", None, terminal=True)
    assert choose_format(None, None, terminal=True) == "table"
    assert choose_format(None, None, terminal=False) == "csv"
    assert choose_format(None, "x.parquet", terminal=True) == "parquet"


def test_the_warehouse_comes_from_the_environment(cli, warehouse, monkeypatch):
    monkeypatch.setenv("NX_WAREHOUSE", warehouse)
    assert cli("sql", "select count(*) as n from neurons").stdout == "n\n8\n"


def test_the_table_shows_times_to_the_second_in_utc_and_csv_and_json_keep_them_whole(cli, warehouse):
    statement = ("select '2026-12-01 14:35:21.208804+00'::timestamptz as t, "
                 "'2026-12-01 16:35:21.9+02'::timestamptz as elsewhere, '2026-12-01 14:35:21.5'::timestamp as naive")
    table = cli("sql", statement, "-w", warehouse, "-f", "table").stdout.splitlines()
    assert table[2].split("   ") == ["2026-12-01 14:35:21Z", "2026-12-01 14:35:21Z", "2026-12-01 14:35:21"]
    assert "14:35:21.208804" in cli("sql", statement, "-w", warehouse, "-f", "csv").stdout
    assert json.loads(cli("sql", statement, "-w", warehouse, "-f", "json").stdout)[0]["t"].startswith(
        "2026-12-01T14:35:21.208804")
