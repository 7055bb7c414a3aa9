"""--prompts paper: the request bodies nx sends are, byte for byte, the prompts the original
package's own classes build for the same record and explanation; its scores follow the fake
server's rule like nx's prompts do; without the package, one line says how to install it."""
from __future__ import annotations

import json
import sys

import pytest

import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, MODEL, explanation_of, expected_scores, neuron_records
from fake_openai import is_simulation
from nx.errors import UsageError


def test_without_the_package_one_line_says_how_to_install_it(fake, warehouse, monkeypatch):
    for name in [m for m in sys.modules if m.startswith("neuron_explainer")] + ["neuron_explainer"]:
        monkeypatch.setitem(sys.modules, name, None)   # as if not installed
    with pytest.raises(UsageError, match=r"pip install 'nx-neurons\[paper\]'") as error:
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="paper", prompts="paper",
                       explainer_model="fake-chat", simulator_model="fake-completion", base_url=fake.url)
    assert "\n" not in str(error.value) and not fake.requests


def test_paper_prompts_refuse_simulators_the_original_has_none_for(fake, warehouse):
    with pytest.raises(UsageError, match="--prompts paper"):
        nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="paper", prompts="paper",
                       simulator="chat-logprobs", explainer_model="fake-chat", simulator_model="fake-chat",
                       base_url=fake.url)


original = pytest.importorskip(
    "neuron_explainer.explanations.simulator",
    reason="the original package automated-interpretability cannot be installed here "
           "(pip install 'nx-neurons[paper]'); the byte-for-byte comparison needs it")
from neuron_explainer.activations.activations import ActivationRecord  # noqa: E402
from neuron_explainer.explanations.explainer import TokenActivationPairExplainer  # noqa: E402
from neuron_explainer.explanations.prompt_builder import PromptFormat  # noqa: E402


def _bytes(prompt) -> bytes:
    """A prompt (a string, or chat messages) as the bytes of its JSON."""
    if isinstance(prompt, list):
        prompt = [{"role": str(getattr(m["role"], "value", m["role"])), "content": m["content"]} for m in prompt]
    return json.dumps(prompt, ensure_ascii=False).encode()


def _run(fake, warehouse, simulator: str, model: str):
    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run=f"paper-{simulator}-{model}",
                            prompts="paper", explainer_model="fake-chat", simulator_model=model,
                            simulator=simulator, base_url=fake.url)
    assert (report.ok, report.failed) == (1, 0), report
    row = warehouse.read_table("explanations", {"model": MODEL, "run": f"paper-{simulator}-{model}"}).to_pylist()[0]
    assert row["prompt_version"].startswith("paper-explainer-token-activations@automated-interpretability-")
    assert row["explanation"] == explanation_of(0)
    return row


def test_explainer_request_is_the_originals_prompt(fake, warehouse):
    _run(fake, warehouse, "json", "fake-chat")
    sent = [r["body"] for r in fake.requests if r["body"].get("messages") and not is_simulation(r["body"])
            and "<start>" in r["body"]["messages"][-1]["content"]]
    top, _ = neuron_records(0)
    records = [ActivationRecord(tokens=t, activations=a) for t, a in top[0:20:4]]   # the train split
    explainer = TokenActivationPairExplainer(model_name="fake-chat")
    explainer._prompt_is_too_long = lambda *_: False   # its length check downloads a tokenizer
    built = explainer.make_explanation_prompt(all_activation_records=records, max_activation=max(max(a) for _, a in top[0:20:4]),
                                              max_tokens_for_completion=60)
    assert len(sent) == 1 and _bytes(sent[0]["messages"]) == _bytes(built)


@pytest.mark.parametrize("simulator, model", [("all-at-once", "fake-completion"), ("token-by-token", "fake-completion"),
                                              ("token-by-token", "fake-chat"), ("json", "fake-chat")])
def test_simulation_requests_are_the_originals_prompts_byte_for_byte(fake, warehouse, simulator, model):
    row = _run(fake, warehouse, simulator, model)
    expected = expected_scores(0, simulator)
    assert row["score"] == pytest.approx(expected["ev_correlation_score"], abs=1e-9)
    explanation = row["explanation"]
    tokens, _ = expected["valid"][3]
    bodies = [r["body"] for r in fake.requests if is_simulation(r["body"]) and r["body"]["model"] == model]
    if simulator == "all-at-once":
        built = original.ExplanationNeuronSimulator(model, explanation).make_simulation_prompt(tokens)
        sent = [b["prompt"] for b in bodies if b["prompt"].endswith("\n".join(f"{t}\tunknown" for t in tokens) + "\n<end>\n")]
    elif simulator == "token-by-token":
        chat = model == "fake-chat"
        simulator_ = original.ExplanationTokenByTokenSimulator(
            model, explanation, prompt_format=PromptFormat.HARMONY_V4 if chat else PromptFormat.INSTRUCTION_FOLLOWING)
        built = simulator_.make_single_token_simulation_prompt(tokens, explanation, 7)
        text = "".join(tokens[:8])
        bodies = [b for b in bodies if ("messages" in b) == chat]   # chat-only: completions was tried once
        sent = [b["messages"] if chat else b["prompt"] for b in bodies
                if f"\nText:\n{text}\n\nLast token" in (b["messages"][-1]["content"] if chat else b["prompt"])]
    else:
        built = original.LogprobFreeExplanationTokenSimulator(model, explanation)._make_simulation_prompt_json(tokens, explanation)
        sent = [b["messages"] for b in bodies if json.loads(b["messages"][-1]["content"])["document"] == "".join(tokens)]
    assert sent and all(_bytes(s) == _bytes(built) for s in sent)
