"""`nx ingest` on the command line: summary on stdout, one-line errors and exit codes."""
from __future__ import annotations

import json

from click.testing import CliRunner

from nx.cli import app

runner = CliRunner()


def test_summary_and_exit_code_say_whether_everything_was_ingested(source_tree, tmp_path):
    result = runner.invoke(app, ["ingest", "token-lookups", "--source", source_tree["root"], "-w", str(tmp_path), "-q"])
    assert result.exit_code == 1
    assert "token-lookups" in result.stdout and "2 file(s) not ingested" in result.stdout
    complete = runner.invoke(app, ["ingest", "token-lookups", "--source", source_tree["root"], "-w", str(tmp_path / "b"),
                                   "--neurons", "0-1", "-q", "--json"])
    assert complete.exit_code == 0
    report = json.loads(complete.stdout)
    assert report["complete"] is True and report["kinds"]["token-lookups"]["ok"] == 4


def test_model_option_writes_its_own_partition(source_tree, tmp_path):
    result = runner.invoke(app, ["ingest", "token-weights", "--model", "gpt2-small", "--source", source_tree["root"],
                                 "-w", str(tmp_path), "--layers", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "token_weights" / "model=gpt2-small").is_dir()


def run_error(*args):
    result = runner.invoke(app, ["ingest", *args])
    assert result.stdout == ""
    return result.exit_code, result.stderr


def test_user_mistakes_are_one_line_with_a_usage_exit_code(source_tree, tmp_path):
    root = source_tree["root"]
    assert run_error("nonsense", "--source", root, "-w", str(tmp_path)) == (2, (
        "nx: error: unknown kind 'nonsense'; kinds: collated-activations, explanations, related-neurons, "
        "token-lookups, token-weights\n"))
    assert run_error("--all", "--layers", "3-1", "--source", root, "-w", str(tmp_path)) == (
        2, "nx: error: bad layer range '3-1': 3 is above 1\n")
    assert run_error("--all", "--neurons", "a-b", "--source", root, "-w", str(tmp_path)) == (
        2, "nx: error: bad neuron list 'a-b': use numbers and ranges like 0-3,7\n")
    assert run_error("--all", "--workers", "0", "--source", root, "-w", str(tmp_path)) == (
        2, "nx: error: --workers must be at least 1\n")
    assert run_error("--all", "--model", "mine", "-w", str(tmp_path)) == (
        2, "nx: error: model 'mine' is not a public release: give --source\n")


def test_unwritable_warehouse_and_missing_source_are_unreachable(source_tree, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    code, message = run_error("--all", "--source", source_tree["root"], "-w", str(blocked / "w"))
    assert code == 3 and message.startswith(f"nx: error: cannot write to the warehouse {blocked / 'w'}: ")
    assert message.count("\n") == 1
    code, message = run_error("--all", "--source", str(tmp_path / "nowhere"), "-w", str(tmp_path / "w"))
    assert code == 3 and message.startswith("nx: error: nothing to ingest: ")
