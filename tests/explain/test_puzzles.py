"""nx puzzles: each puzzle explained, the generated, true and false explanations simulated and
scored on its sentences, results in puzzle_results with a summary; the original's own puzzles
when its package is installed."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import nx
import nx.explain.puzzles
from explain_fixtures import fake  # noqa: F401 (fixture)
from fake_openai import rule_expected
from nx.cli import app
from nx.warehouse import Warehouse

WORDS = {"q": [" queen", " quick", " aqua"], "z": [" zoo", " lazy", " jazz"]}


def _sentence(words: list[str]) -> tuple[list[str], list[float]]:
    return words, [10.0 if "q" in w else 0.0 for w in words]


PUZZLES = {
    "q-words": ("words containing the letter q",
                [_sentence([" the", " queen", " was", " quick"]), _sentence([" a", " blue", " aqua", " sea", " and", " zoo"])],
                ["words containing the letter z", "words containing the letter w"]),
}


def _expected(explanation: str) -> float | None:
    records = PUZZLES["q-words"][1]
    t = np.concatenate([a for _, a in records])
    p = np.array([rule_expected(explanation, tok) for tokens, _ in records for tok in tokens])
    return float(np.corrcoef(t, p)[0, 1]) if p.std() > 0 else None


def test_puzzles_score_generated_true_and_false_explanations(fake, tmp_path):
    report = nx.explain.puzzles.run(warehouse=str(tmp_path / "w"), run="bench", explainer_model="fake-chat",
                                    simulator_model="fake-completion", simulator="all-at-once",
                                    base_url=fake.url, puzzles=PUZZLES)
    assert (report.puzzles, report.failed) == (1, 0)
    rows = Warehouse(str(tmp_path / "w")).read_table("puzzle_results", {"model": "puzzles", "run": "bench"}).to_pylist()
    by_kind = {(r["kind"], r["false_index"]): r for r in rows}
    assert set(by_kind) == {("generated", None), ("true", None), ("false", 0), ("false", 1)}
    assert by_kind[("generated", None)]["explanation"] == "words containing the letter q"
    for row in rows:
        expected = _expected(row["explanation"])
        assert (row["score"] is None) if expected is None else row["score"] == pytest.approx(expected, abs=1e-9)
        assert row["sequence_count"] == 2 and row["simulator"] == "all-at-once" and row["status"] == "ok"
    assert (report.compared, report.generated_at_least_true, report.mean_gap, report.true_beats_false) == (1, 1, 0.0, 1)
    assert "generated >= true in 1 of 1 (mean gap +0.000)" in str(report)
    # models compared with SQL
    found = nx.sql("select run, kind, round(avg(score), 6) as score from puzzle_results where kind = 'true' group by all",
                   warehouse=str(tmp_path / "w")).to_pylist()
    assert found == [{"run": "bench", "kind": "true", "score": round(_expected("words containing the letter q"), 6)}]
    # a run made again replaces its rows
    nx.explain.puzzles.run(warehouse=str(tmp_path / "w"), run="bench", explainer_model="fake-chat",
                           simulator_model="fake-completion", base_url=fake.url, puzzles=PUZZLES)
    assert len(Warehouse(str(tmp_path / "w")).read_table("puzzle_results")) == 4


def test_the_originals_puzzles_from_the_command_line(fake, tmp_path):
    pytest.importorskip("neuron_explainer.explanations.puzzles",
                        reason="the original package automated-interpretability is not installed "
                               "(pip install 'nx-neurons[paper]')")
    from neuron_explainer.explanations.puzzles import PUZZLES_BY_NAME

    result = CliRunner().invoke(app, ["puzzles", "--run", "original", "--explainer-model", "fake-chat",
                                      "--simulator-model", "fake-chat", "--simulator", "json", "--base-url", fake.url,
                                      "-w", str(tmp_path / "w"), "-q", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["puzzles"] == len(PUZZLES_BY_NAME) and report["failed"] == 0
    rows = Warehouse(str(tmp_path / "w")).read_table("puzzle_results").to_pylist()
    assert len(rows) == sum(2 + len(p.false_explanations) for p in PUZZLES_BY_NAME.values())
    assert {r["puzzle"] for r in rows} == set(PUZZLES_BY_NAME)
