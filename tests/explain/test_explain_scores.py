"""nx explain scores as the paper does: each simulator against the fake server's rule, whose
scores are computed independently (numpy, DESIGN.md's formulas) and must agree to 1e-9."""
from __future__ import annotations

import json
import math

import duckdb
import pytest

import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, MODEL, explanation_of, expected_scores
from nx.progress import CountingProgress

NEURONS = [0, 1, 2, 3]
SCORE_COLUMNS = ("ev_correlation_score", "rsquared_score", "absolute_dev_explained_score",
                 "top_only_score", "random_only_score")


def _close(stored, expected) -> bool:
    if expected is None or math.isnan(expected):
        return stored is None
    return stored is not None and abs(stored - expected) <= 1e-9


def _rows(warehouse, table: str, run: str) -> list[dict]:
    return warehouse.read_table(table, {"model": MODEL, "run": run}).to_pylist()


def _check_scores(warehouse, run: str, simulator: str, calibrate: bool = False) -> None:
    explanations = {row["neuron"]: row for row in _rows(warehouse, "explanations", run)}
    sequences = _rows(warehouse, "explanation_sequences", run)
    assert sorted(explanations) == NEURONS
    for neuron, row in explanations.items():
        expected = expected_scores(neuron, simulator, calibrate)
        assert row["status"] == "ok" and row["error"] is None
        assert row["explanation"] == explanation_of(neuron)
        for column in SCORE_COLUMNS:
            assert _close(row[column], expected[column]), (neuron, column, row[column], expected[column])
        assert row["score"] == row["ev_correlation_score"]
        assert row["sequence_count"] == 10 and row["simulator"] == simulator
        mine = sorted((s for s in sequences if s["neuron"] == neuron), key=lambda s: s["seq_index"])
        assert [s["sample"] for s in mine] == ["top"] * 5 + ["random"] * 5
        for sequence, (tokens, true), predicted in zip(mine, expected["valid"], expected["expected_activations"]):
            assert sequence["tokens"] == tokens and sequence["true_activations"] == true
            assert sequence["expected_activations"] == pytest.approx(predicted, abs=1e-9)


@pytest.mark.parametrize("simulator, model", [("all-at-once", "fake-completion"),
                                              ("chat-logprobs", "fake-chat")])
def test_logprob_simulators_scores_match_formula(fake, warehouse, simulator, model):
    progress = CountingProgress()
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="new",
                            explainer_model="fake-chat", simulator_model=model, simulator=simulator,
                            base_url=fake.url, progress=progress)
    assert (report.ok, report.failed, report.skipped) == (4, 0, 0)
    _check_scores(warehouse, "new", simulator)
    assert progress.total == 4 and progress.done == 4 and progress.finished
    assert progress.counts["failed"] == 0 and 0 < progress.counts["tokens"] <= report.tokens
    sequence = _rows(warehouse, "explanation_sequences", "new")[0]
    assert sequence["activation_scale"] == "simulated_normalized_activations"
    assert sequence["uncalibrated_expected_activations"] is None
    # Renormalised over "0".."10" only: the fake gives 20 % of the mass to other tokens.
    assert all(math.isclose(sum(p), 1.0) for p in sequence["distribution_probabilities"])
    assert {tuple(v) for v in sequence["distribution_values"]} <= {(10.0, 8.0, 0.0), (0.0, 1.0)}


@pytest.mark.parametrize("model, endpoint", [("fake-completion", "/v1/completions"),
                                             ("fake-chat", "/v1/chat/completions")])
def test_token_by_token_scores_match_formula_on_either_endpoint(fake, warehouse, model, endpoint):
    # One request per token, on the endpoint the model serves with logprobs: completions for a
    # self-hosted model, chat (top_logprobs) for a hosted chat model.
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="tbt",
                            explainer_model="fake-chat", simulator_model=model,
                            simulator="token-by-token", base_url=fake.url)
    assert (report.ok, report.failed) == (4, 0), report
    _check_scores(warehouse, "tbt", "token-by-token")
    one_token = [r["body"] for r in fake.requests[-len(NEURONS) * 10 * 16:]]
    assert all(b.get("max_tokens") == 1 and b["model"] == model for b in one_token)
    assert {r["path"] for r in fake.requests[-len(NEURONS) * 10 * 16:]} == {endpoint}
    sequence = _rows(warehouse, "explanation_sequences", "tbt")[0]
    assert all(math.isclose(sum(p), 1.0) for p in sequence["distribution_probabilities"])


@pytest.mark.parametrize("model", ["fake-chat", "fake-reasoner"])
def test_json_simulator_scores_match_formula_without_logprobs(fake, warehouse, model):
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="json",
                            explainer_model="fake-chat", simulator_model=model,
                            simulator="json", base_url=fake.url)
    assert (report.ok, report.failed) == (4, 0), report
    _check_scores(warehouse, "json", "json")
    sequence = _rows(warehouse, "explanation_sequences", "json")[0]
    assert sequence["distribution_values"] == []
    asked = [r["body"] for r in fake.requests if r["body"].get("response_format")]
    assert asked and all(b["response_format"] == {"type": "json_object"} for b in asked)


def test_chat_simulator_scores_match_formula(fake, warehouse):
    nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="chat",
                   explainer_model="fake-chat", simulator_model="fake-chat",
                   simulator="chat-logprobs", base_url=fake.url)
    _check_scores(warehouse, "chat", "chat-logprobs")
    simulations = [r["body"] for r in fake.requests if r["path"] == "/v1/chat/completions"
                   and r["body"].get("logprobs")]
    assert simulations and all(b["top_logprobs"] == 15 for b in simulations)


def test_sampling_simulator_scores_match_formula_on_a_reasoning_model(fake, warehouse):
    # fake-reasoner refuses max_tokens and temperature 0, and has no logprobs: the client
    # adapts once (max_completion_tokens, default temperature) and sampling needs no logprobs.
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="sampled",
                            explainer_model="fake-chat", simulator_model="fake-reasoner",
                            simulator="sampling", base_url=fake.url)
    assert report.failed == 0
    _check_scores(warehouse, "sampled", "sampling")
    sequence = _rows(warehouse, "explanation_sequences", "sampled")[0]
    assert sequence["distribution_values"] == [] and sequence["distribution_probabilities"] == []
    refused = [r for r in fake.requests if r["body"].get("model") == "fake-reasoner" and "max_tokens" in r["body"]]
    assert len(refused) == 1


def test_calibrated_scores_match_formula(fake, warehouse):
    nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="calibrated",
                   explainer_model="fake-chat", simulator_model="fake-completion",
                   simulator="all-at-once", calibrate=True, base_url=fake.url)
    _check_scores(warehouse, "calibrated", "all-at-once", calibrate=True)
    sequence = _rows(warehouse, "explanation_sequences", "calibrated")[0]
    assert sequence["activation_scale"] == "neuron_activations"
    assert sequence["uncalibrated_activation_scale"] == "simulated_normalized_activations"
    assert max(max(s) for s in [sequence["uncalibrated_expected_activations"]]) <= 10
    # 10 valid + 10 calibration simulations per neuron, one explanation.
    simulations = [r for r in fake.requests if r["path"] == "/v1/completions"]
    assert len(simulations) == 1 + len(NEURONS) * 20


def test_token_lookup_explainer_explains_from_the_lookup_table(fake, warehouse):
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="lookup",
                            explainer="token-lookup", explainer_model="fake-chat",
                            simulator_model="fake-chat", simulator="chat-logprobs", base_url=fake.url)
    assert report.ok == 4
    _check_scores(warehouse, "lookup", "chat-logprobs")
    assert all(r["prompt_version"].startswith("explainer-token-lookup@")
               for r in _rows(warehouse, "explanations", "lookup"))


def test_rows_name_their_explainer_and_a_named_query_compares_the_two_kinds(fake, warehouse):
    import nx.queries
    from nx.errors import QueryError

    with pytest.raises(QueryError, match="^no token-lookup explanations .* make some with nx explain --explainer token-lookup"):
        nx.queries.query("activations-not-tokens", warehouse.url)  # no token-lookup run yet: says how
    for run, explainer in (("acts", "token-activations"), ("lookup", "token-lookup")):
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run=run, explainer=explainer,
                       explainer_model="fake-chat", simulator_model="fake-chat", simulator="chat-logprobs",
                       base_url=fake.url)
        assert {r["explainer"] for r in _rows(warehouse, "explanations", run)} == {explainer}
    scores = {run: {r["neuron"]: r["score"] for r in _rows(warehouse, "explanations", run)} for run in ("acts", "lookup")}
    rows = nx.queries.query("activations-not-tokens", warehouse.url, min_score=-1.0).to_pylist()
    assert sorted(r["neuron"] for r in rows) == NEURONS
    for row in rows:
        assert (row["activations_run"], row["tokens_run"]) == ("acts", "lookup")
        assert row["activations_score"] == scores["acts"][row["neuron"]]
        assert row["tokens_score"] == scores["lookup"][row["neuron"]]
        assert row["gap"] == pytest.approx(row["activations_score"] - row["tokens_score"])
    assert [r["gap"] for r in rows] == sorted((r["gap"] for r in rows), reverse=True)


def test_new_run_sits_beside_public_and_joins_activation_records(fake, warehouse):
    nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=NEURONS, run="mine",
                   explainer_model="fake-chat", simulator_model="fake-chat",
                   simulator="chat-logprobs", base_url=fake.url)
    root = warehouse.location.path
    con = duckdb.connect()
    joined = con.execute(f"""
        select s.sample, a.sample, count(*) from read_parquet('{root}/explanation_sequences/*/*/*/*.parquet',
            hive_partitioning = true, hive_types = {{'model': VARCHAR, 'run': VARCHAR, 'layer': INTEGER}}) s
        join read_parquet('{root}/activation_records/*/*/*.parquet', hive_partitioning = true,
            hive_types = {{'model': VARCHAR, 'layer': INTEGER}}) a
          on a.sequence_id = s.sequence_id and a.neuron = s.neuron and a.layer = s.layer
        where s.run = 'mine' group by all order by all""").fetchall()
    assert joined == [("random", "random", 20), ("top", "top", 20)]
    runs = warehouse.read_table("runs").to_pylist()
    assert len(runs) == 1
    row = runs[0]
    assert (row["run"], row["model"], row["explainer_model"], row["simulator_model"], row["simulator"],
            row["explainer"]) == ("mine", MODEL, "fake-chat", "fake-chat", "chat-logprobs", "token-activations")
    assert json.loads(row["prompt_versions"]) == {"explainer-token-activations": "1", "simulator-chat": "1"}
    parameters = json.loads(row["parameters"])
    assert parameters["neurons"] == "0-3" and parameters["calibrate"] is None and parameters["samples"] == 1
    assert row["base_url"] == fake.url and row["started_at"] <= row["ended_at"]
    assert (row["neurons_ok"], row["neurons_failed"]) == (4, 0)
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
