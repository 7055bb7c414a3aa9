"""The explain module's pure parts: the paper's splits, normalisation, expected values,
calibration, prompt layout, reply parsing, retry timing, redaction, and import cost."""
from __future__ import annotations

import math
import subprocess
import sys
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, MODEL, build_warehouse, neuron_records
from nx.explain import calibration, inputs, json_simulator, prompts, simulators, splits
from nx.explain.client import Unparseable, _retry_after, display_url, redact
from nx.explain.report import ExplainReport


def test_splits_are_the_papers():
    top, random = list(range(24)), list(range(18))
    split = splits.make_splits(top, random)
    assert split.train == [0, 4, 8, 12, 16]
    assert split.calibration == [1, 5, 9, 13, 17] + [0, 3, 6, 9, 12]
    assert split.valid == [2, 6, 10, 14, 18] + [1, 4, 7, 10, 13]
    assert split.valid_sample == ["top"] * 5 + ["random"] * 5
    short = splits.make_splits(list(range(7)), list(range(2)))
    assert short.train == [0, 4] and short.valid == [2, 6, 1] and short.valid_sample == ["top", "top", "random"]


def test_normalise_is_floor_of_ten_relu_over_max():
    assert prompts.normalise([-1.0, 0.0, 0.99, 1.0, 2.5, 9.99, 10.0, 12.0], 10.0) == [0, 0, 0, 1, 2, 9, 10, 10]
    assert prompts.normalise([-0.5, -0.1], -0.1) == [0, 0]
    assert prompts.normalise([None, 1.0], 1.0) == [0, 10]


def test_expected_value_renormalises_over_the_digits():
    ev, values, probabilities = simulators.expected_value(
        {"10": math.log(0.3), "unknown": math.log(0.4), "2": math.log(0.2), " 2": math.log(0.1)})
    assert values == [10.0, 2.0] and probabilities == pytest.approx([0.5, 0.5])
    assert ev == pytest.approx(6.0)
    assert simulators.expected_value({"cat": -0.1}) is None
    assert simulators.expected_value([{"token": "\t4", "logprob": 0.0}])[0] == 4.0


def test_linear_calibration_matches_least_squares():
    rng = np.random.default_rng(1)
    simulated = [rng.uniform(0, 10, 16) for _ in range(4)]
    true = [0.3 * s - 0.2 + rng.normal(0, 0.1, 16) for s in simulated]
    fit = calibration.fit(true, simulated)
    slope, intercept = np.polyfit(np.concatenate(simulated), np.concatenate(true), 1)
    assert (fit.slope, fit.intercept) == (pytest.approx(slope, abs=1e-12), pytest.approx(intercept, abs=1e-12))
    constant = calibration.fit([[1.0, 3.0]], [[5.0, 5.0]])
    assert (constant.slope, constant.intercept) == (0.0, 2.0)


def test_completion_prompt_places_each_token_on_one_line():
    tokens = [" a", "\n", "\t", "\\", "unknown", " <end>", "\r\n"]
    prompt, offsets = prompts.completion_prompt("things", tokens)
    assert all(prompt[o:o + len("unknown\n")] == "unknown\n" for o in offsets)
    block = prompt[prompt.rfind("<start>"):]
    assert block.count("\n") == len(tokens) + 2
    assert prompt.endswith("\n<end>\n")


def test_chat_reply_lines_are_read_leniently_but_must_match_the_tokens():
    reply = "Sure:\n<start>\n a\t3\n b 10\n\n <end>\t0\n<end>\n"
    assert [v for v, _ in simulators._value_lines(reply, 3)] == ["3", "10", "0"]
    assert [reply[o] for _, o in simulators._value_lines(reply, 3)] == ["3", "1", "0"]
    with pytest.raises(Unparseable, match="3 token lines for 4 tokens"):
        simulators._value_lines(reply, 4)
    with pytest.raises(Unparseable, match="no number"):
        simulators._value_lines("<start>\n a\tlots\n<end>", 1)


def test_explanations_are_cleaned():
    assert prompts.parse_explanation("this neuron fires on dates and years.\nmore") == "dates and years"
    assert prompts.parse_explanation("Neuron 3: this neuron fires on cats.") == "cats"
    assert prompts.parse_explanation("  \n") == ""


def test_retry_after_in_seconds_milliseconds_or_a_date():
    assert _retry_after({"retry-after": "2.5"}) == 2.5
    assert _retry_after({"retry-after-ms": "150", "retry-after": "9"}) == 0.15
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < _retry_after({"retry-after": later}) <= 30
    assert _retry_after({"retry-after": "soon"}) is None and _retry_after({}) is None


def test_secrets_are_redacted_from_reasons_and_urls():
    assert "abc" not in redact("bad key sk-abc123456789 given", None)
    assert redact("the key was hunter2hunter2", "hunter2hunter2") == "the key was [redacted]"
    assert display_url("https://user:pw@host/v1?key=1") == "https://host/v1"
    assert display_url(None) == "https://api.openai.com/v1"


def test_prompt_version_names_both_templates():
    assert prompts.version("token-lookup", "all-at-once") == "explainer-token-lookup@1,simulator-completion@1"
    assert prompts.version("token-activations", "sampling") != prompts.version("token-activations", "all-at-once")


def test_report_is_readable_and_serialisable():
    report = ExplainReport("r", MODEL, "m1", "m2", "token-activations", "sampling", "v", ok=2, failed=1,
                           prompt_tokens=1000, completion_tokens=234,
                           failures=[{"layer": LAYER, "neuron": 5, "error": "HTTP 500: boom"}])
    text = str(report)
    assert "2 ok, 1 failed, 0 skipped" in text and "1,234 tokens" in text and "neuron 5: HTTP 500" in text
    assert report.asdict()["tokens"] == 1234 and report.failed == 1


def test_legacy_completions_logprobs_limit_is_adapted_to(fake, warehouse):
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="legacy",
                            explainer_model="fake-chat", simulator_model="fake-davinci",
                            simulator="all-at-once", base_url=fake.url)
    assert report.ok == 1
    sent = [r["body"]["logprobs"] for r in fake.requests if r["path"] == "/v1/completions"]
    assert sent[0] == 15 and set(sent[1:]) == {5}


def test_importing_explain_loads_neither_openai_nor_the_warehouse():
    code = "import sys, nx.explain; print(sorted(m for m in ('openai', 'httpx', 'duckdb', 'nx.warehouse') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_records_are_streamed_in_chunks_in_order(warehouse):
    todo = [(LAYER, 0), (LAYER, 1), (LAYER, 77), (LAYER, 2)]
    items = list(inputs.stream(warehouse, MODEL, todo, "token-activations", {LAYER: {0, 1, 2}}, chunk=2))
    assert [(i.neuron, i.missing) for i in items] == [(0, None), (1, None), (77, inputs.NO_RECORDS), (2, None)]
    assert [len(i.top) for i in items] == [20, 20, 0, 20] and [len(i.random) for i in items] == [15, 15, 0, 15]
    top, random = neuron_records(1)
    assert items[1].top == [(list(t), list(a)) for t, a in top[:20]]          # by rank, as stored
    assert items[1].random == [(list(t), list(a)) for t, a in random[:15]]


def test_several_layers_in_one_run(fake, tmp_path):
    warehouse = build_warehouse(tmp_path / "w", neurons=(0, 1), layers=(3, LAYER))
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER, 3, LAYER], run="two", base_url=fake.url,
                            explainer_model="fake-chat", simulator_model="fake-chat", simulator="sampling")
    assert report.ok == 4
    rows = warehouse.read_table("explanations", {"model": MODEL, "run": "two"}).to_pylist()
    assert sorted((r["layer"], r["neuron"]) for r in rows) == [(3, 0), (3, 1), (LAYER, 0), (LAYER, 1)]


@pytest.mark.parametrize("reply, reason", [
    ("not json at all", "not JSON"),
    ('{"tokens": []}', 'no "activations" list'),
    ('{"activations": [{"token": " a", "activation": 1}]}', "1 activations for 2 tokens"),
    ('{"activations": [{"token": " a", "activation": 1}, {"token": " c", "activation": 0}]}', "token 1"),
    ('{"activations": [{"token": " a", "activation": 1}, {"token": " b", "activation": 2.5}]}', "not an integer"),
    ('{"activations": [{"token": " a", "activation": 1}, {"token": " b", "activation": 11}]}', "not an integer"),
    ('{"activations": [{"token": " a", "activation": "3"}, {"token": " b", "activation": 0}]}', "not an integer"),
])
def test_json_replies_that_do_not_fit_fail_with_their_reason(reply, reason):
    with pytest.raises(Unparseable, match=reason):
        json_simulator.parse(reply, [" a", " b"])


def test_json_replies_may_drop_a_leading_space_or_come_fenced():
    reply = '```json\n{"activations": [{"token": "a", "activation": 3}, {"token": " b", "activation": 0.0}]}\n```'
    assert json_simulator.parse(reply, [" a", " b"]) == [3.0, 0.0]
