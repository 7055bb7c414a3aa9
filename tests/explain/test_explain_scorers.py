"""Detection and fuzzing scorers: per-example predictions stored in scorer_predictions, and the
metrics beside the simulation scores equal a hand computation from those predictions; an
answer that cannot be read is a missing prediction with its reason, never right or wrong."""
from __future__ import annotations

import pytest

import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, LETTERS, MODEL, expected_scores, neuron_records
from fake_openai import Fault
from nx.errors import UsageError
from nx.explain import metrics, scorers

NEURONS = [0, 1, 2]
METRICS = ("balanced_accuracy", "precision", "recall", "f1", "auc")


def _rows(warehouse, table: str, run: str) -> list[dict]:
    return warehouse.read_table(table, {"model": MODEL, "run": run}).to_pylist()


def _by_hand(predictions: list[dict]) -> dict:
    """The metrics written out from the stored predictions (missing ones left out)."""
    answered = [p for p in predictions if p["prediction"] is not None]
    tp = sum(p["label"] and p["prediction"] for p in answered)
    fp = sum(not p["label"] and p["prediction"] for p in answered)
    tn = sum(not p["label"] and not p["prediction"] for p in answered)
    fn = sum(p["label"] and not p["prediction"] for p in answered)
    recall = tp / (tp + fn) if tp + fn else None
    precision = tp / (tp + fp) if tp + fp else None
    specificity = tn / (tn + fp) if tn + fp else None
    positives = [p["probability"] for p in answered if p["label"]]
    negatives = [p["probability"] for p in answered if not p["label"]]
    pairs = [(a > b) + 0.5 * (a == b) for a in positives for b in negatives]
    return {"balanced_accuracy": (recall + specificity) / 2 if recall is not None and specificity is not None else None,
            "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if precision == 0 or recall == 0 else None),
            "auc": sum(pairs) / len(pairs) if pairs else None}


def test_detection_and_fuzzing_metrics_equal_a_hand_computation(fake, warehouse):
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="scored",
                            explainer_model="fake-chat", simulator_model="fake-chat", simulator="chat-logprobs",
                            scorers=["simulation", "detection", "fuzzing"], base_url=fake.url)
    assert (report.ok, report.failed) == (3, 0)
    predictions = _rows(warehouse, "scorer_predictions", "scored")
    for row in _rows(warehouse, "explanations", "scored"):
        neuron = row["neuron"]
        # the simulation score is untouched by the other scorers
        assert row["score"] == pytest.approx(expected_scores(neuron, "chat-logprobs")["ev_correlation_score"], abs=1e-9)
        top, random = neuron_records(neuron)
        for scorer in ("detection", "fuzzing"):
            mine = sorted((p for p in predictions if p["neuron"] == neuron and p["scorer"] == scorer),
                          key=lambda p: p["example_index"])
            assert len(mine) == 10 and all(p["prediction"] is not None and p["error"] is None for p in mine)
            assert all(0 < p["probability"] < 1 for p in mine)
            expected = _by_hand(mine)
            for name in METRICS:
                assert row[f"{scorer}_{name}"] == pytest.approx(expected[name], abs=1e-12), (neuron, scorer, name)
        detection = sorted((p for p in predictions if p["neuron"] == neuron and p["scorer"] == "detection"),
                           key=lambda p: p["example_index"])
        # the fake answers by its letter: a random record with such a word is a false positive
        valid_random = random[1:15:3]
        letter = LETTERS[neuron]
        assert [p["prediction"] for p in detection[5:]] == [any(letter in t for t in r[0]) for r in valid_random]
        assert [p["label"] for p in detection] == [True] * 5 + [False] * 5
        fuzzing = [p for p in predictions if p["neuron"] == neuron and p["scorer"] == "fuzzing"]
        assert [p["label"] for p in sorted(fuzzing, key=lambda p: p["example_index"])] == [True, False] * 5
        assert row["fuzzing_balanced_accuracy"] == 1.0


def test_a_garbled_answer_is_a_missing_prediction_never_a_score(fake, warehouse):
    garbled = lambda body: "Does this neuron fire" in body["messages"][-1]["content"] and "letter q" in body["messages"][-1]["content"]  # noqa: E731
    fake.inject(Fault("reply", content="Well, perhaps.", path="/v1/chat/completions", when=garbled),
                Fault("garbage", path="/v1/chat/completions", when=garbled))
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="garbled",
                            explainer_model="fake-chat", simulator_model="fake-chat", simulator="chat-logprobs",
                            scorers=["detection"], base_url=fake.url)
    assert (report.ok, report.failed) == (1, 0)
    predictions = _rows(warehouse, "scorer_predictions", "garbled")
    missing = [p for p in predictions if p["prediction"] is None]
    assert len(missing) == 2 and all(p["probability"] is None for p in missing)
    assert {("neither 1 nor 0" in p["error"]) or ("not JSON" in p["error"]) for p in missing} == {True}
    row = _rows(warehouse, "explanations", "garbled")[0]
    answered = [p for p in predictions if p["prediction"] is not None]
    assert len(answered) == 8
    expected = _by_hand(predictions)
    assert row["detection_balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"], abs=1e-12)
    # only detection ran: no simulation score, no simulator
    assert row["score"] is None and row["simulator"] is None and row["sequence_count"] == 0
    assert not _rows(warehouse, "explanation_sequences", "garbled")


def test_metrics_are_undefined_rather_than_made_up():
    assert metrics.classification([True, True], [True, None], [None, None]) == {
        "balanced_accuracy": None, "precision": 1.0, "recall": 1.0, "f1": 1.0, "auc": None}
    found = metrics.classification([True, False, True, False], [True, True, False, False], [0.9, 0.8, 0.3, 0.1])
    assert found["balanced_accuracy"] == 0.5 and found["precision"] == 0.5 and found["auc"] == 0.75
    assert metrics.classification([], [], [])["balanced_accuracy"] is None


def test_fuzzing_marks_the_firing_tokens_or_as_many_others():
    top, random = neuron_records(0)
    valid = top[2:20:4] + random[1:15:3]
    examples = scorers.examples("fuzzing", valid, ["top"] * 5 + ["random"] * 5)
    assert len(examples) == 10
    for right, wrong in zip(examples[::2], examples[1::2]):
        assert right.label and not wrong.label and right.tokens == wrong.tokens
        assert all("q" in right.tokens[i] for i in right.marked)
        assert not any("q" in wrong.tokens[i] for i in wrong.marked) and len(wrong.marked) == len(right.marked)
    assert scorers.examples("fuzzing", valid, ["top"] * 5 + ["random"] * 5) == examples   # seeded


def test_unknown_scorer_is_refused(fake, warehouse):
    with pytest.raises(UsageError, match="scorer simulaton"):
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="x", scorers="simulaton",
                       explainer_model="fake-chat", simulator_model="fake-chat", base_url=fake.url)
