"""Derived columns: sequence_id joins, max_activation, top-only and random-only scores."""
from __future__ import annotations

import math

import cases
from ingest_helpers import neuron_rows
from nx.keys import sequence_id


def test_scored_sequences_join_their_activation_records(ingested):
    rows = neuron_rows(ingested["warehouse"], "explanations", 0, 0)["explanation_sequences"]
    records = neuron_rows(ingested["warehouse"], "collated-activations", 0, 0)["activation_records"]
    by_id = {r["sequence_id"]: r for r in records}
    assert [r["sample"] for r in rows] == ["top"] * 5 + ["random"] * 5
    for row in rows:
        record = by_id[row["sequence_id"]]
        assert record["sample"] == row["sample"] and record["tokens"] == row["tokens"]
        assert record["activations"] == row["true_activations"]


def test_sequence_id_separates_repeated_text_with_other_activations(ingested):
    records = neuron_rows(ingested["warehouse"], "collated-activations", 0, 1)["activation_records"]
    six, seven = (next(r for r in records if r["sample"] == "top" and r["rank"] == k) for k in (6, 7))
    assert six["tokens"] == seven["tokens"] and six["sequence_id"] != seven["sequence_id"]
    assert six["sequence_id"] == sequence_id(six["tokens"], six["activations"])


def test_max_activation_is_the_largest_top_activation(ingested):
    rows = neuron_rows(ingested["warehouse"], "collated-activations", 0, 2)
    record = ingested["source"]["objects"][("collated-activations", 0, 2)]
    expected = max(max(r["activations"]) for r in record["most_positive_activation_records"])
    assert rows["neurons"][0]["max_activation"] == expected
    for row in rows["activation_records"]:
        assert row["max_activation"] == max(row["activations"])


def test_top_and_random_only_scores_follow_the_paper_formula(ingested):
    results = ingested["source"]["objects"][("explanations", 0, 2)]
    sequences = results["scored_explanations"][0]["scored_simulation"]["scored_sequence_simulations"]
    top, random = sequences[:5], sequences[5:]
    row = neuron_rows(ingested["warehouse"], "explanations", 0, 2)["explanations"][0]
    for part, column in ((top, "top_only_score"), (random, "random_only_score")):
        expected = cases.paper_scores([s["true_activations"] for s in part],
                                      [s["simulation"]["expected_activations"] for s in part])["ev_correlation_score"]
        assert math.isclose(row[column], expected, rel_tol=0, abs_tol=1e-12)
    stored = results["scored_explanations"][0]["scored_simulation"]["ev_correlation_score"]
    assert row["score"] == row["ev_correlation_score"] == stored
