"""Checks that the synthetic source builder tests/cases.py is faithful to the public formats
(data-formats.md sections 2-7 and 9): scores, layout, serialization and quirks. Owns nothing
else."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import orjson
import pytest

try:
    from tests import cases
except ImportError:                    # tests/ itself on sys.path
    import cases

SCORE_KEYS = ("ev_correlation_score", "rsquared_score", "absolute_dev_explained_score")


# ------------------------------------------------------------------------------------------
# helpers

def walk_objects(value):
    """Every JSON object (dict) inside ``value``, depth first."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from walk_objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from walk_objects(child)


def activation_records(record: dict):
    yield from record["most_positive_activation_records"]
    yield from record["random_sample"]
    for quantile in record["random_sample_by_quantile"] or []:
        yield from quantile


def reference_scores(true_values, predicted_values) -> dict:
    """The paper's formulas written out independently of cases.py; NaN/inf -> None."""
    t = np.asarray(true_values, dtype=np.float64)
    p = np.asarray(predicted_values, dtype=np.float64)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ev = np.corrcoef(t, p)[0, 1] if t.size else float("nan")
            rsq = 1 - np.mean((t - p) ** 2) / np.mean(t ** 2)
            absdev = 1 - np.mean(np.abs(t - p)) / np.mean(np.abs(t))
    return {key: (float(v) if math.isfinite(v) else None)
            for key, v in zip(SCORE_KEYS, (ev, rsq, absdev))}


def assert_scores_equal(stored: dict, expected: dict) -> None:
    for key in SCORE_KEYS:
        if expected[key] is None:
            assert stored[key] is None, key
        else:
            assert stored[key] is not None, key
            assert abs(stored[key] - expected[key]) <= 1e-12, (key, stored[key], expected[key])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("source")
    return cases.write_source_tree(root)


def read(tree, kind, layer, neuron) -> bytes:
    return (Path(tree["root"]) / cases.source_path(kind, layer, neuron)).read_bytes()


# ------------------------------------------------------------------------------------------
# scores

def explanation_files(tree):
    return [(pair, tree["objects"][("explanations", *pair)]) for pair in tree["ok"]["explanations"]]


def test_stored_scores_recompute_with_the_pooled_formulas(tree):
    checked = 0
    for _, results in explanation_files(tree):
        scored = results["scored_explanations"][0]["scored_simulation"]
        sequences = scored["scored_sequence_simulations"]
        for sequence in sequences:
            assert_scores_equal(sequence, reference_scores(sequence["true_activations"],
                                                           sequence["simulation"]["expected_activations"]))
        pooled_true = [v for s in sequences for v in s["true_activations"]]
        pooled_predicted = [v for s in sequences for v in s["simulation"]["expected_activations"]]
        assert_scores_equal(scored, reference_scores(pooled_true, pooled_predicted))
        checked += 1
    assert checked == len(tree["ok"]["explanations"]) >= 5


def test_pooled_score_is_not_the_mean_of_per_sequence_scores(tree):
    _, results = explanation_files(tree)[0]
    scored = results["scored_explanations"][0]["scored_simulation"]
    per_sequence = [s["ev_correlation_score"] for s in scored["scored_sequence_simulations"]
                    if s["ev_correlation_score"] is not None]
    assert abs(np.mean(per_sequence) - scored["ev_correlation_score"]) > 1e-6


@pytest.mark.parametrize("calibrated", [True, False])
@pytest.mark.parametrize("hard", [False, True, 2])
def test_builder_scores_recompute(calibrated, hard):
    record = cases.neuron_record(2, 7, seed=3, hard=hard)
    results = json.loads(cases.dumps(cases.simulation_results(2, 7, record, calibrated=calibrated,
                                                              seed=3, hard=hard)))
    scored = results["scored_explanations"][0]["scored_simulation"]
    sequences = scored["scored_sequence_simulations"]
    for sequence in sequences:
        assert_scores_equal(sequence, reference_scores(sequence["true_activations"],
                                                       sequence["simulation"]["expected_activations"]))
    assert_scores_equal(scored, reference_scores(
        [v for s in sequences for v in s["true_activations"]],
        [v for s in sequences for v in s["simulation"]["expected_activations"]]))
    assert scored["ev_correlation_score"] is not None and scored["ev_correlation_score"] > 0.3


def test_scored_sequences_are_the_valid_split_top_then_random(tree):
    for (layer, neuron), results in explanation_files(tree):
        record = tree["objects"][("collated-activations", layer, neuron)]
        top = record["most_positive_activation_records"]
        random = record["random_sample"]
        expected = [top[i] for i in (2, 6, 10, 14, 18) if i < len(top)]
        expected += [random[j] for j in (1, 4, 7, 10, 13) if j < len(random)]
        sequences = results["scored_explanations"][0]["scored_simulation"]["scored_sequence_simulations"]
        assert len(sequences) == len(expected)
        for sequence, source in zip(sequences, expected):
            assert sequence["true_activations"] == source["activations"]
            assert sequence["simulation"]["tokens"] == source["tokens"]
        if (layer, neuron) not in tree["hard"]:
            assert len(sequences) == 10


def test_random_sequence_predicted_constant_has_null_correlation():
    record = cases.neuron_record(0, 0)
    sequences = cases.simulation_results(0, 0, record)["scored_explanations"][0]["scored_simulation"][
        "scored_sequence_simulations"]
    first_random = sequences[5]
    assert len(set(first_random["simulation"]["uncalibrated_simulation"]["expected_activations"])) == 1
    assert first_random["ev_correlation_score"] is None
    assert first_random["rsquared_score"] is not None
    assert b'"ev_correlation_score":null' in cases.dumps(sequences[5])


# ------------------------------------------------------------------------------------------
# explanations: structure

def test_calibrated_simulation_nests_the_raw_one():
    record = cases.neuron_record(1, 2)
    sequences = cases.simulation_results(1, 2, record)["scored_explanations"][0]["scored_simulation"][
        "scored_sequence_simulations"]
    saw_empty_inner = False
    for sequence in sequences:
        outer = sequence["simulation"]
        inner = outer["uncalibrated_simulation"]
        assert outer["activation_scale"] == "neuron_activations"
        assert inner["activation_scale"] == "simulated_normalized_activations"
        assert inner["uncalibrated_simulation"] is None
        assert outer["distribution_probabilities"] == inner["distribution_probabilities"]
        assert len(inner["distribution_values"]) == len(inner["tokens"]) == 64
        for values, probabilities, expected in zip(inner["distribution_values"],
                                                   inner["distribution_probabilities"],
                                                   inner["expected_activations"]):
            assert len(values) == len(probabilities) <= 11
            assert all(0.0 <= v <= 10.0 for v in values)
            if values:
                assert abs(sum(probabilities) - 1.0) < 1e-9
                assert abs(sum(v * p for v, p in zip(values, probabilities)) - expected) < 1e-9
            else:
                saw_empty_inner = True
                assert expected == 0.0
    assert saw_empty_inner


def test_uncalibrated_simulation_has_depth_one():
    record = cases.neuron_record(1, 2)
    sequence = cases.simulation_results(1, 2, record, calibrated=False)["scored_explanations"][0][
        "scored_simulation"]["scored_sequence_simulations"][0]
    assert sequence["simulation"]["activation_scale"] == "simulated_normalized_activations"
    assert sequence["simulation"]["uncalibrated_simulation"] is None


def test_hard_explanation_quirks():
    record = cases.neuron_record(0, 1, hard=True)
    data = cases.dumps(cases.simulation_results(0, 1, record, hard=True))
    results = json.loads(data)
    explanation = results["scored_explanations"][0]
    sequences = explanation["scored_simulation"]["scored_sequence_simulations"]
    assert explanation["explanation"].startswith(" ") and explanation["explanation"].endswith(".")
    assert any(ord(c) > 127 for c in explanation["explanation"])
    assert "explainer_model" in explanation
    assert list(explanation)[-1] == "dataclass_name"
    assert all(type(v) is int for v in sequences[0]["simulation"]["expected_activations"])
    assert b'"expected_activations":[0,' in data or b'"expected_activations":[1,' in data
    assert sequences[1]["simulation"]["distribution_values"] == []
    assert sequences[1]["simulation"]["distribution_probabilities"] == []
    assert sequences[2]["simulation"]["distribution_values"] is None
    assert sequences[2]["simulation"]["uncalibrated_simulation"] is None
    assert "response" in sequences[3]["simulation"]
    assert sequences[4]["ev_correlation_score"] is None
    assert len(sequences) == 5                       # the hard record has no random sample
    assert any(t in cases.HARD_TOKENS for t in sequences[0]["simulation"]["tokens"])


# ------------------------------------------------------------------------------------------
# collated activations

def test_realistic_record_has_the_measured_public_size():
    for seed in range(3):
        size = len(cases.dumps(cases.realistic_neuron_record(5, 100 + seed, seed)))
        assert 225_000 <= size <= 245_000, size


def test_record_activations_are_float32_and_top_records_sorted():
    record = cases.neuron_record(3, 9)
    for activation_record in activation_records(record):
        assert len(activation_record["tokens"]) == len(activation_record["activations"]) == 64
        assert all(float(np.float32(a)) == a for a in activation_record["activations"])
        assert min(activation_record["activations"]) >= cases.GELU_MINIMUM
    maxima = [max(r["activations"]) for r in record["most_positive_activation_records"]]
    assert maxima == sorted(maxima, reverse=True)
    assert maxima[0] > 3.0
    random_values = np.concatenate([r["activations"] for r in record["random_sample"]])
    assert np.mean(random_values < 0) > 0.8
    assert len(record["random_sample_by_quantile"]) == 5
    assert len(record["quantile_boundaries"]) == 6
    assert all(record[m] is not None for m in ("mean", "variance", "skewness", "kurtosis"))


@pytest.mark.parametrize("hard", [True, 2])
def test_hard_record_quirks(hard):
    record = cases.neuron_record(0, 1, hard=hard)
    data = cases.dumps(record)
    for moment in ("mean", "variance", "skewness", "kurtosis"):
        assert record[moment] is None
        assert f'"{moment}":null'.encode() in data
    assert record["random_sample"] == []
    if hard is True:
        assert record["random_sample_by_quantile"] is None and record["quantile_boundaries"] is None
        assert b'"random_sample_by_quantile":null' in data
    else:
        assert [] in record["random_sample_by_quantile"]
        assert record["quantile_boundaries"] is not None
    tokens = {t for r in activation_records(record) for t in r["tokens"]}
    for quirky in ("\t", "\n", "\n\n", "\ufffd", "\U0001F600", '"', "\\", "<|endoftext|>",
                   "<script>alert(1)</script>", "\u200f"):
        assert quirky in tokens, repr(quirky)
    assert "\ufffd".encode() in data and b"\\t" in data and "\u200f".encode() in data
    for activation_record in activation_records(record):
        assert list(activation_record) == ["tokens", "activations", "dfa_values", "dfa_target_index",
                                           "dataclass_name"]
    dfa = [r["dfa_values"] for r in activation_records(record)]
    assert None in dfa and any(isinstance(v, list) and all(type(i) is int for i in v) for v in dfa)
    assert "provenance" in record and list(record)[-1] == "dataclass_name"
    top = record["most_positive_activation_records"]
    assert top[6]["tokens"] == top[7]["tokens"] and top[6]["activations"] != top[7]["activations"]
    assert max(top[-1]["activations"]) < 0
    maxima = [max(r["activations"]) for r in top]
    assert maxima == sorted(maxima, reverse=True)


# ------------------------------------------------------------------------------------------
# kinds 3-5

def test_related_neurons_sides():
    first = cases.related_neurons(0, 5, n_layers=4)
    middle = cases.related_neurons(2, 5, n_layers=4)
    last = cases.related_neurons(3, 5, n_layers=4)
    assert first["c_fc"] is None and first["c_proj"] is not None
    assert last["c_proj"] is None and last["c_fc"] is not None
    assert list(middle) == ["c_fc", "c_proj", "dataclass_name"]
    for direction, layers in (("c_fc", range(0, 2)), ("c_proj", range(3, 4))):
        side = middle[direction]
        assert set(side) == {"top_positive_neurons", "top_positive_weights",
                             "top_negative_neurons", "top_negative_weights"}
        for name in side["top_positive_neurons"] + side["top_negative_neurons"]:
            layer, neuron = (int(part) for part in name.split("_"))
            assert layer in layers and 0 <= neuron < 6400
        assert len(side["top_positive_weights"]) == len(side["top_positive_neurons"]) == 10
        assert side["top_positive_weights"] == sorted(side["top_positive_weights"], reverse=True)
        assert side["top_negative_weights"] == sorted(side["top_negative_weights"])
        assert all(w < 0 for w in side["top_negative_weights"])


def test_token_lookup_and_weights():
    lookup = cases.token_lookup(1, 1)
    assert len(lookup["tokens"]) == len(set(lookup["tokens"])) == 50
    assert lookup["average_activations"] == sorted(lookup["average_activations"], reverse=True)
    assert list(lookup) == ["tokens", "average_activations", "dataclass_name"]
    hard_lookup = cases.token_lookup(1, 1, hard=True)
    assert None in hard_lookup["average_activations"]
    assert set(cases.HARD_TOKENS) & set(hard_lookup["tokens"])
    weights = cases.token_weights(1, 1)
    assert list(weights) == ["input_positive", "input_negative", "output_positive",
                             "output_negative", "dataclass_name"]
    for key in ("input_positive", "output_positive"):
        assert all(s > 0 for s in weights[key]["strengths"])
    for key in ("input_negative", "output_negative"):
        assert weights[key]["strengths"] == sorted(weights[key]["strengths"])
        assert weights[key]["dataclass_name"] == "TokensAndWeights"
        assert len(weights[key]["tokens"]) == 20
    hard_weights = cases.token_weights(1, 1, hard=True)
    assert None in hard_weights["input_negative"]["strengths"]


# ------------------------------------------------------------------------------------------
# serialization and the source tree

def test_dumps_is_compact_orjson_with_null_for_nan():
    data = cases.dumps({"a": float("nan"), "b": [float("inf"), "\u00e9\t"], "dataclass_name": "X"})
    assert data == '{"a":null,"b":[null,"\u00e9\\t"],"dataclass_name":"X"}'.encode("utf-8")


def test_builders_are_deterministic():
    assert cases.dumps(cases.neuron_record(1, 3, seed=4)) == cases.dumps(cases.neuron_record(1, 3, seed=4))
    assert cases.dumps(cases.neuron_record(1, 3, seed=4)) != cases.dumps(cases.neuron_record(1, 3, seed=5))


def test_tree_layout_matches_the_returned_description(tree):
    root = Path(tree["root"])
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(tree["paths"].values())
    for kind in cases.KINDS:
        for layer, neuron in tree["ok"][kind]:
            assert (kind, layer, neuron) in tree["objects"]
        for layer, neuron in tree["missing"][kind]:
            assert not (root / cases.source_path(kind, layer, neuron)).exists()
        covered = tree["ok"][kind] + tree["missing"][kind] + tree["malformed"][kind]
        assert sorted(covered) == sorted((l, n) for l in tree["layers"] for n in tree["neurons"])
    assert tree["missing"]["explanations"] == [tree["broken_neurons"]["A"]]
    assert tree["hard"] == {(0, 1): 1, (1, 0): 2}
    assert "collated-activations/0/1.json" in on_disk
    assert "related-tokens/activation-based/1/1.json" in on_disk
    assert "related-tokens/weight-based/0/0.json" in on_disk
    assert "related-neurons/weight-based/0/0.json" in on_disk


def test_ok_objects_are_the_parsed_files(tree):
    for (kind, layer, neuron), parsed in tree["objects"].items():
        data = read(tree, kind, layer, neuron)
        if (kind, layer, neuron) in tree["nan_literal"]:
            continue
        assert orjson.loads(data) == parsed == json.loads(data)
        if kind == "explanations":
            assert data.endswith(b"}\n") and data.count(b"\n") == 1


def test_dataclass_name_is_last_in_every_dataclass_object(tree):
    names = set()
    for parsed in tree["objects"].values():
        for obj in walk_objects(parsed):
            if "dataclass_name" in obj:
                assert list(obj)[-1] == "dataclass_name"
                names.add(obj["dataclass_name"])
    assert names == {"NeuronRecord", "NeuronId", "ActivationRecord", "NeuronSimulationResults",
                     "ScoredExplanation", "ScoredSimulation", "ScoredSequenceSimulation",
                     "SequenceSimulation", "TokenLookupTableSummaryOfNeuron",
                     "WeightBasedSummaryOfNeuron", "TokensAndWeights",
                     cases.RELATED_NEURONS_CLASS_NAME}


def test_malformed_files_fail_to_parse_or_have_the_wrong_type(tree):
    reasons = tree["malformed_reasons"]
    assert set(reasons.values()) == {"empty", "truncated", "wrong-type"}
    for (kind, layer, neuron), reason in reasons.items():
        data = read(tree, kind, layer, neuron)
        if reason == "empty":
            assert data == b""
        if reason in ("empty", "truncated"):
            with pytest.raises(ValueError):
                json.loads(data)
        else:
            parsed = json.loads(data)
            assert isinstance(parsed, list) or not isinstance(parsed.get("tokens"), list)


def test_nan_literal_collated_file_is_python_json(tree):
    [(kind, layer, neuron)] = tree["nan_literal"]
    assert kind == "collated-activations" and (layer, neuron) in tree["ok"][kind]
    data = read(tree, kind, layer, neuron)
    assert b"NaN" in data
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data)
    parsed = json.loads(data)
    assert math.isnan(parsed["mean"])
    assert parsed["most_positive_activation_records"]


def test_hard_neuron_files_hold_the_quirks(tree):
    collated = read(tree, "collated-activations", 0, 1)
    assert b'"mean":null' in collated and b'"quantile_boundaries":null' in collated
    assert b'"random_sample":[]' in collated and b'"dfa_values"' in collated
    assert b"<|endoftext|>" in collated and b"<script>alert(1)</script>" in collated
    assert b'"dataclass_name":"ActivationRecord"}' in collated
    second = read(tree, "collated-activations", 1, 0)
    assert b",[]," in second or b"[[]," in second or b",[]]" in second
    explanation = read(tree, "explanations", 0, 1)
    assert b'"distribution_values":[]' in explanation and b'"distribution_values":null' in explanation
    assert b'"ev_correlation_score":null' in explanation
    assert b'"average_activations":[' in read(tree, "token-lookups", 0, 1)
    assert None in tree["objects"][("token-lookups", 0, 1)]["average_activations"]
    assert tree["objects"][("related-neurons", 0, 1)]["c_fc"] is None
    assert tree["objects"][("related-neurons", 1, 1)]["c_proj"] is None
