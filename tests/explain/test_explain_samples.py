"""Calibration kinds and several samples per neuron: percentile matching against a hand-computed
case and against the rule, the calibration column; N samples stored with their index, each
scored, the best flagged by score and used by the best_explanations view."""
from __future__ import annotations

import math

import pytest

import nx
import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, LETTERS, MODEL, expected_scores
from nx.errors import UsageError
from nx.explain import calibration

NEURONS = [0, 1, 2]


def _rows(warehouse, table: str, run: str) -> list[dict]:
    return warehouse.read_table(table, {"model": MODEL, "run": run}).to_pylist()


def test_percentile_calibration_of_a_hand_computed_case():
    # calibration split: simulated 0, 0, 5, 10 against true 6, -1, 2, 0 (pooled, as sorted:
    # -1, 0, 2, 6). The two 0s span the true quantiles -1 and 0: they map to -0.5.
    fit = calibration.fit([[6.0, -1.0], [2.0, 0.0]], [[0.0, 0.0], [5.0, 10.0]], "percentile")
    assert fit.apply([0.0, 5.0, 10.0]) == [-0.5, 2.0, 6.0]
    assert fit.apply([2.5, 7.5]) == [0.75, 4.0]            # linear in between
    assert fit.apply([-3.0, 12.0]) == [-0.5, 6.0]          # clamped outside
    assert fit.apply([]) == []


@pytest.mark.parametrize("kind", ["linear", "percentile"])
def test_calibrated_scores_match_the_rule_and_say_how(fake, warehouse, kind):
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run=kind,
                            explainer_model="fake-chat", simulator_model="fake-completion",
                            simulator="all-at-once", calibrate=kind, base_url=fake.url)
    assert report.ok == 3
    for row in _rows(warehouse, "explanations", kind):
        expected = expected_scores(row["neuron"], "all-at-once", calibrate=kind)
        assert row["calibration"] == kind
        for column in ("ev_correlation_score", "rsquared_score", "absolute_dev_explained_score"):
            assert row[column] == pytest.approx(expected[column], abs=1e-9), (kind, column)
    sequences = _rows(warehouse, "explanation_sequences", kind)
    assert {s["activation_scale"] for s in sequences} == {"neuron_activations"}
    raw = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="raw",
                         explainer_model="fake-chat", simulator_model="fake-completion",
                         simulator="all-at-once", base_url=fake.url)
    assert raw.ok == 1 and _rows(warehouse, "explanations", "raw")[0]["calibration"] is None
    with pytest.raises(UsageError, match="calibrate"):
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run=kind,
                       explainer_model="fake-chat", simulator_model="fake-completion",
                       simulator="all-at-once", base_url=fake.url,
                       calibrate="percentile" if kind == "linear" else "linear")
    with pytest.raises(UsageError, match="calibration 'cubic'"):
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="x", calibrate="cubic",
                       explainer_model="fake-chat", simulator_model="fake-completion", base_url=fake.url)


def _check_samples(warehouse, run: str, samples: int) -> dict[int, list[dict]]:
    rows = _rows(warehouse, "explanations", run)
    by_neuron: dict[int, list[dict]] = {}
    for row in rows:
        by_neuron.setdefault(row["neuron"], []).append(row)
    sequences = _rows(warehouse, "explanation_sequences", run)
    for neuron, mine in by_neuron.items():
        mine.sort(key=lambda r: r["explanation_index"])
        assert [r["explanation_index"] for r in mine] == list(range(samples))
        assert all(r["status"] == "ok" and r["score"] is not None for r in mine)
        # each sample scored on its own 10 sequences, with the rule's scores
        for row in mine:
            own = [s for s in sequences if s["neuron"] == neuron and s["explanation_index"] == row["explanation_index"]]
            assert len(own) == 10
            t = [v for s in own for v in s["true_activations"]]
            p = [v for s in own for v in s["expected_activations"]]
            import numpy as np
            assert row["score"] == pytest.approx(float(np.corrcoef(t, p)[0, 1]), abs=1e-9)
        scores = [r["score"] for r in mine]
        best = scores.index(max(scores))
        assert [r["best"] for r in mine] == [i == best for i in range(samples)]
    return by_neuron


def test_samples_in_one_request_with_n_are_stored_and_the_best_flagged(fake, warehouse):
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="sampled",
                            explainer_model="fake-chat", simulator_model="fake-chat",
                            simulator="chat-logprobs", samples=3, base_url=fake.url)
    assert (report.ok, report.failed) == (3, 0)
    by_neuron = _check_samples(warehouse, "sampled", 3)
    explainer = [r["body"] for r in fake.requests if r["body"].get("n")]
    assert len(explainer) == 3 and all(b["n"] == 3 for b in explainer)
    for neuron, rows in by_neuron.items():
        # choice 0 names the neuron's letter (the fake's likeliest): it is the best
        assert rows[0]["explanation"] == f"words containing the letter {LETTERS[neuron]}" and rows[0]["best"]
        assert len({r["explanation"] for r in rows}) == 3
    assert warehouse.read_table("runs").to_pylist()[0]["neurons_ok"] == 3
    best = nx.sql("select neuron, explanation_index, explanation_count from best_explanations "
                  f"where run = 'sampled' order by neuron", warehouse=warehouse.url).to_pylist()
    assert best == [{"neuron": n, "explanation_index": 0, "explanation_count": 3} for n in NEURONS]


def test_samples_without_n_are_asked_one_by_one(fake, warehouse):
    # fake-reasoner refuses n > 1: the client drops n once, and the explainer asks per sample.
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="one-by-one",
                            explainer_model="fake-reasoner", simulator_model="fake-chat",
                            simulator="chat-logprobs", samples=2, base_url=fake.url, concurrency=1)
    assert (report.ok, report.failed) == (3, 0), report
    _check_samples(warehouse, "one-by-one", 2)
    asked = [r["body"] for r in fake.requests if r["body"].get("model") == "fake-reasoner"
             and "<start>" in r["body"]["messages"][-1]["content"]]
    refused = [b for b in asked if b.get("n")]
    assert len(refused) == 1 and len(asked) == 1 + 3 * 2   # the refused one, then 2 per neuron


def test_best_flag_decides_the_view_over_scores(fake, warehouse):
    nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="flagged",
                   explainer_model="fake-chat", simulator_model="fake-chat",
                   simulator="chat-logprobs", samples=2, base_url=fake.url)
    rows = _rows(warehouse, "explanations", "flagged")
    flagged = [r["explanation_index"] for r in rows if r["best"]]
    view = nx.sql("select explanation_index from best_explanations where run = 'flagged'",
                  warehouse=warehouse.url).to_pylist()
    assert view == [{"explanation_index": flagged[0]}] and not math.isnan(rows[0]["score"])


def test_explain_writes_beside_rows_an_older_nx_wrote_without_the_new_columns(fake, warehouse):
    import deltalake
    import pyarrow as pa

    from nx.schema import TABLES

    spec = TABLES["explanations"]
    older = [f for f in spec.columns if f.name not in ("calibration", "best")
             and not f.name.startswith(("detection_", "fuzzing_"))]
    schema = pa.schema(list(spec.partitions) + older)
    row = dict.fromkeys(schema.names) | {"model": MODEL, "run": "public", "layer": LAYER, "neuron": 0,
                                         "explanation_index": 0, "explanation": "older", "score": 0.5, "status": "ok"}
    deltalake.write_deltalake(warehouse.table_uri("explanations"), pa.Table.from_pylist([row], schema=schema),
                              partition_by=["model", "run"])
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="newer", samples=2,
                            explainer_model="fake-chat", simulator_model="fake-chat", simulator="chat-logprobs",
                            base_url=fake.url)
    assert report.ok == 1
    rows = warehouse.read_table("explanations").to_pylist()
    assert [r["best"] for r in rows if r["run"] == "public"] == [None]
    assert sorted(r["best"] for r in rows if r["run"] == "newer") == [False, True]
    best = nx.sql("select run, explanation from best_explanations order by run", warehouse=warehouse.url).to_pylist()
    assert [b["run"] for b in best] == ["newer", "public"] and best[1]["explanation"] == "older"
