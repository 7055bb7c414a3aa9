"""`nx explain` on the command line: a run against a fake OpenAI-compatible server, its
resume, and one-line errors with their exit codes."""
from __future__ import annotations

import json

from click.testing import CliRunner

from explain_data import LAYER, build_warehouse
from explain_fixtures import fake  # noqa: F401  (fixture)
from nx.cli import app

runner = CliRunner()


def explain(fake, warehouse, *extra, key="sk-test"):
    args = ["explain", "--layers", str(LAYER), "--neurons", "0-2", "--run", "cli-run",
            "--explainer-model", "fake-chat", "--simulator-model", "fake-completion",
            "--base-url", fake.url, "-w", str(warehouse), "-q", *extra]
    return runner.invoke(app, args, env={"OPENAI_API_KEY": key} if key else {})


def test_explain_writes_a_run_and_a_rerun_skips_it(fake, tmp_path):
    warehouse = tmp_path / "w"
    build_warehouse(warehouse)
    first = explain(fake, warehouse, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["ok"], report["failed"]) == (3, 0)
    import nx

    rows = nx.sql("select neuron, simulator, status from explanations where run = 'cli-run' order by neuron",
                  warehouse=str(warehouse)).to_pylist()
    assert [(r["neuron"], r["status"]) for r in rows] == [(0, "ok"), (1, "ok"), (2, "ok")]
    assert {r["simulator"] for r in rows} == {"all-at-once"}
    again = explain(fake, warehouse, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == 3


def test_unknown_model_fails_fast_with_one_line(fake, tmp_path):
    warehouse = tmp_path / "w"
    build_warehouse(warehouse)
    result = runner.invoke(app, ["explain", "--layers", str(LAYER), "--neurons", "0", "--run", "r",
                                 "--explainer-model", "no-such-model", "--simulator-model", "fake-completion",
                                 "--base-url", fake.url, "-w", str(warehouse), "-q"],
                           env={"OPENAI_API_KEY": "sk-test"})
    assert result.exit_code == 3
    assert result.stderr.startswith("nx: error: ") and result.stderr.count("\n") == 1
    assert "no-such-model" in result.stderr


def test_bad_neuron_range_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["explain", "--layers", "9", "--neurons", "5-1", "--run", "r",
                                 "--explainer-model", "a", "--simulator-model", "b", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == "nx: error: bad neuron range '5-1': 5 is above 1\n"
