"""Fail fast: a bad key, model or server, or a simulator the model cannot serve, is refused
before any neuron is worked on, with one clear line (and the simulator that would work); the
key is never written anywhere."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, MODEL
from fake_openai import Fault, FakeOpenAI, is_simulation
from nx.errors import ApiError, NotFoundError, UsageError

SECRET = "sk-test-0123456789abcdefSECRET"


def _run(fake, warehouse, **options):
    arguments = dict(warehouse=warehouse, layers=[LAYER], neurons=[0, 1], run="probed",
                     explainer_model="fake-chat", simulator_model="fake-chat",
                     simulator="chat-logprobs", base_url=fake.url)
    arguments.update(options)
    return nx.explain.run(**arguments)


def _nothing_written(warehouse) -> bool:
    return not warehouse.has_table("explanations") and not warehouse.has_table("runs")


def test_bad_model_fails_fast(fake, warehouse):
    with pytest.raises(ApiError) as error:
        _run(fake, warehouse, simulator_model="gpt-nonexistent")
    message = str(error.value)
    assert "'gpt-nonexistent'" in message and "not available" in message and "fake-chat" in message
    assert "\n" not in message
    assert _nothing_written(warehouse)
    assert len(fake.requests) <= 8


def test_bad_explainer_model_fails_fast(fake, warehouse):
    with pytest.raises(ApiError, match="'nope' \\(explainer\\) is not available"):
        _run(fake, warehouse, explainer_model="nope")
    assert _nothing_written(warehouse)


def test_bad_key_fails_fast_without_echoing_it(warehouse):
    with FakeOpenAI(api_key="sk-right-key-000000") as fake:
        with pytest.raises(ApiError) as error:
            _run(fake, warehouse, api_key=SECRET)
    message = str(error.value)
    assert "refused the API key" in message and "OPENAI_API_KEY" in message
    assert SECRET not in message and SECRET[:12] not in message
    assert _nothing_written(warehouse)
    assert len(fake.requests) == 1


def test_key_comes_from_the_environment(warehouse, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeOpenAI(api_key=SECRET) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        report = _run(fake, warehouse, base_url=None)
    assert report.ok == 2
    assert {r["auth"] for r in fake.requests} == {f"Bearer {SECRET}"}


def test_missing_key_for_openai_fails_fast(warehouse):
    with pytest.raises(ApiError, match="OPENAI_API_KEY is not set"):
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="nokey",
                       explainer_model="gpt-4o", simulator_model="gpt-4o", simulator="sampling")


def test_unreachable_server_fails_fast(warehouse, monkeypatch):
    monkeypatch.setattr("nx.explain.client.BACKOFF_SECONDS", 0.01)
    with FakeOpenAI() as fake:
        url = fake.url
    with pytest.raises(ApiError, match="cannot reach the server"):
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="down", base_url=url,
                       explainer_model="fake-chat", simulator_model="fake-chat", max_retries=1)


def test_chat_model_without_logprobs_is_refused_with_suggestion(fake, warehouse):
    with pytest.raises(ApiError) as error:
        _run(fake, warehouse, simulator_model="fake-reasoner", simulator="chat-logprobs")
    message = str(error.value)
    assert "chat-logprobs simulator cannot run on model 'fake-reasoner'" in message
    assert "no logprobs" in message and "use --simulator sampling" in message
    assert _nothing_written(warehouse)


def test_completions_simulator_on_a_chat_model_suggests_chat_logprobs(fake, warehouse):
    with pytest.raises(ApiError, match="all-at-once simulator cannot run .* use --simulator chat-logprobs"):
        _run(fake, warehouse, simulator_model="fake-chat", simulator="all-at-once")


def test_bad_arguments_are_usage_errors(fake, warehouse):
    for options, pattern in [({"simulator": "psychic"}, "simulator 'psychic'"),
                             ({"explainer": "guess"}, "explainer 'guess'"),
                             ({"run": "public"}, "reserved"), ({"run": "a/b"}, "run name"),
                             ({"layers": [48]}, "layer 48 is out of range"),
                             ({"neurons": [6400]}, "neuron 6400 is out of range"),
                             ({"concurrency": 0}, "concurrency")]:
        with pytest.raises(UsageError, match=pattern):
            _run(fake, warehouse, **options)
    assert fake.requests == []


def test_layer_without_records_is_not_found(fake, warehouse):
    with pytest.raises(NotFoundError, match="no activation records .* layer\\(s\\) 3"):
        _run(fake, warehouse, layers=[3])


def test_neuron_without_records_fails_without_a_request(fake, warehouse):
    report = _run(fake, warehouse, neurons=[0, 77])
    assert (report.ok, report.failed) == (1, 1)
    row = [r for r in warehouse.read_table("explanations", {"model": MODEL, "run": "probed"}).to_pylist()
           if r["neuron"] == 77][0]
    assert row["status"] == "failed" and row["error"] == "no activation records in the warehouse"


def test_api_key_is_not_written_to_warehouse(warehouse):
    with FakeOpenAI(api_key=SECRET) as fake:
        # A mid-run 401 whose message quotes the key, as some servers' do.
        fake.inject(Fault("status", status=401, when=lambda b: is_simulation(b) and "letter x" in str(b),
                          message=f"Incorrect API key provided: {SECRET}. Key {SECRET[:-6]}******"))
        report = _run(fake, warehouse, api_key=SECRET, neurons=[0, 1, 2], concurrency=1)
    assert report.failed >= 1 and report.stopped
    assert "[redacted]" in report.failures[0]["error"]
    texts = [str(report), json.dumps(report.asdict(), default=str)]
    root = warehouse.location.path
    for path in warehouse.fs.glob(f"{root}/**/*.parquet"):
        texts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
    assert len(texts) > 4
    for text in texts:
        assert SECRET not in text and SECRET[3:15] not in text


def test_token_by_token_on_a_model_without_logprobs_is_refused_naming_one_that_works(fake, warehouse):
    with pytest.raises(ApiError, match="token-by-token simulator cannot run .* use --simulator sampling"):
        _run(fake, warehouse, simulator_model="fake-reasoner", simulator="token-by-token")
