"""The explainer and simulator prompts, each template with a version recorded with the run.

Formats follow the paper (Bills et al. 2023, "Language models can explain neurons in language
models"; openai/automated-interpretability, explainer.py and simulator.py): records are shown as
``token<TAB>activation`` lines between ``<start>`` and ``<end>``, with activations normalised to
the integers 0-10 as floor(10 * relu(x) / max); a simulator sees the same lines with the
placeholder ``unknown`` where it must predict. The wording and the few-shot examples are nx's
own. Change a template's text and you must bump its version in ``VERSIONS``: scores made with
different prompts are not comparable, and every score row says which prompts made it.

Tokens are shown escaped (backslash, tab, newline, carriage return) so that each token sits on
exactly one line whatever it contains.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

# Template name -> version. ``prompt_version`` of a row names the two templates it used.
VERSIONS = {
    "explainer-token-activations": "1",
    "explainer-token-lookup": "1",
    "simulator-completion": "1",   # all-at-once, on the completions endpoint
    "simulator-chat": "1",         # chat-logprobs and sampling
    "simulator-single-token": "1", # token-by-token, on either endpoint
    "simulator-json": "1",         # json
    "scorer-detection": "1",       # --scorer detection
    "scorer-fuzzing": "1",         # --scorer fuzzing
}
EXPLAINER_TEMPLATE = {"token-activations": "explainer-token-activations",
                      "token-lookup": "explainer-token-lookup"}
SIMULATOR_TEMPLATE = {"all-at-once": "simulator-completion", "chat-logprobs": "simulator-chat",
                      "sampling": "simulator-chat", "token-by-token": "simulator-single-token",
                      "json": "simulator-json"}

PLACEHOLDER = "unknown"
EXPLANATION_LEAD = "this neuron fires on"
MAX_VALUE = 10

_INTRO = ("We are studying the neurons of a language model. A neuron responds to something "
          "particular in a short text: a kind of word, a topic, a pattern.")
_FORMAT = ("Texts are written one token per line as token<TAB>activation between <start> and <end>. "
           "Activations are integers from 0 (silent) to 10 (strongest); most are 0.")

# Few-shot neurons (invented): (explanation, [(tokens, normalised activations)]).
_EXAMPLES = [
    ("years written as numbers", [
        ([" The", " album", " came", " out", " in", " 1994", " and", " again", " in", " 2003", "."],
         [0, 0, 0, 0, 1, 10, 0, 0, 1, 9, 0]),
        ([" By", " the", " end", " of", " 1871", ",", " the", " city", " had", " grown"],
         [0, 0, 0, 1, 8, 0, 0, 0, 0, 0]),
    ]),
    ("negations such as not and never", [
        ([" She", " did", " not", " want", " to", " go", ",", " and", " never", " went", "."],
         [0, 0, 10, 1, 0, 0, 0, 0, 8, 1, 0]),
        ([" It", " isn", "'t", " true", " that", " cats", " hate", " water"],
         [0, 3, 7, 0, 0, 0, 0, 0]),
    ]),
]
_LOOKUP_EXAMPLES = [
    (["'pizza'", "'pasta'", "' spaghetti'", "' lasagna'", "'ravioli'"], "Italian dishes"),
    (["' Monday'", "' Tuesday'", "'Friday'", "' weekend'", "' Sunday'"], "days of the week"),
]


def _names(explainer: str, simulator: str, scorers: Sequence[str]) -> list[str]:
    names = [EXPLAINER_TEMPLATE[explainer]]
    if "simulation" in scorers:
        names.append(SIMULATOR_TEMPLATE[simulator])
    return names + [f"scorer-{s}" for s in scorers if s != "simulation"]


def version(explainer: str, simulator: str, scorers: Sequence[str] = ("simulation",)) -> str:
    """The ``prompt_version`` of rows made with this explainer, simulator and scorers."""
    return ",".join(f"{name}@{VERSIONS[name]}" for name in _names(explainer, simulator, scorers))


def versions_used(explainer: str, simulator: str, scorers: Sequence[str] = ("simulation",)) -> dict[str, str]:
    return {name: VERSIONS[name] for name in _names(explainer, simulator, scorers)}


def display_token(token: str) -> str:
    return (token.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def normalise(activations: Sequence[float], max_activation: float) -> list[int]:
    """The paper's 0-10 scale: floor(10 * relu(x) / max), at most 10; all 0 if max <= 0."""
    if not max_activation or max_activation <= 0:
        return [0] * len(activations)
    return [min(MAX_VALUE, math.floor(MAX_VALUE * max(0.0, a or 0.0) / max_activation))
            for a in activations]


def format_record(tokens: Sequence[str], values: Sequence[object]) -> str:
    lines = "".join(f"{display_token(t)}\t{v}\n" for t, v in zip(tokens, values))
    return f"<start>\n{lines}<end>\n"


def _records_block(records: Sequence[tuple[Sequence[str], Sequence[int]]]) -> str:
    block = "".join(format_record(tokens, values) for tokens, values in records)
    nonzero = sum(1 for _, values in records for v in values if v > 0)
    total = sum(len(values) for _, values in records)
    # Sparse neurons: repeat only the firing tokens, as the paper does below 20 % non-zero.
    if total and nonzero / total < 0.2:
        kept = [([t for t, v in zip(tokens, values) if v > 0], [v for v in values if v > 0])
                for tokens, values in records]
        block += "The same texts with the zero activations left out:\n"
        block += "".join(format_record(tokens, values) for tokens, values in kept)
    return block


def explainer_messages(records: Sequence[tuple[Sequence[str], Sequence[float]]]) -> list[dict]:
    """Chat messages asking for an explanation of a neuron from its top records."""
    max_activation = max((a for _, acts in records for a in acts if a is not None), default=0.0)
    target = [(tokens, normalise(acts, max_activation)) for tokens, acts in records]
    system = (f"{_INTRO} Read the texts below with the neuron's activations and say in one short "
              f"phrase what the neuron responds to. Describe the pattern; do not list the tokens.\n\n"
              f"{_FORMAT}")
    messages = [{"role": "system", "content": system}]
    for number, (explanation, example) in enumerate(_EXAMPLES, start=1):
        messages.append({"role": "user", "content": _explain_request(number, example)})
        messages.append({"role": "assistant", "content": f"{explanation}."})
    messages.append({"role": "user", "content": _explain_request(len(_EXAMPLES) + 1, target)})
    return messages


def _explain_request(number: int, records) -> str:
    return (f"Neuron {number}\nActivations:\n{_records_block(records)}"
            f"Complete: \"Neuron {number}: {EXPLANATION_LEAD} ...\"")


def lookup_explainer_messages(tokens: Sequence[str]) -> list[dict]:
    """Chat messages asking for an explanation from the tokens a neuron responds to most."""
    system = (f"{_INTRO} You get the tokens with the highest average activation of a neuron. "
              f"Say in one short phrase what the neuron responds to.")
    messages = [{"role": "system", "content": system}]
    for shown, explanation in _LOOKUP_EXAMPLES:
        messages.append({"role": "user", "content": _lookup_request(shown)})
        messages.append({"role": "assistant", "content": f"{explanation}."})
    messages.append({"role": "user", "content": _lookup_request([repr(t) for t in tokens])})
    return messages


def _lookup_request(shown: Sequence[str]) -> str:
    return f"Tokens: {', '.join(shown)}\nComplete: \"{EXPLANATION_LEAD} ...\""


def parse_explanation(text: str | None) -> str:
    """The explanation in a reply: first line, without "Neuron N:", the lead or a final period."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    explanation = lines[0].strip('"').strip() if lines else ""
    explanation = _NEURON_LABEL.sub("", explanation)
    if explanation.lower().startswith(EXPLANATION_LEAD):
        explanation = explanation[len(EXPLANATION_LEAD):].strip()
    explanation = explanation.rstrip('"').rstrip()
    return explanation[:-1].rstrip() if explanation.endswith(".") else explanation


_NEURON_LABEL = re.compile(r"^neuron\s*\d*\s*:\s*", re.IGNORECASE)


def _simulation_intro() -> str:
    return (f"{_INTRO} Given what a neuron responds to, predict its activation on every token of "
            f"a text.\n\n{_FORMAT} \"{PLACEHOLDER}\" marks an activation to predict.")


def completion_prompt(explanation: str, tokens: Sequence[str]) -> tuple[str, list[int]]:
    """The all-at-once prompt and, for each token, the character offset of its placeholder.

    The server echoes the prompt with top logprobs per position; the distribution over "0".."10"
    at each placeholder is the simulator's prediction (paper's all-at-once method).
    """
    parts = [_simulation_intro(), "\n"]
    for number, (example_explanation, records) in enumerate(_EXAMPLES, start=1):
        parts.append(f"\nNeuron {number}\n{EXPLANATION_LEAD} {example_explanation}\nActivations:\n")
        parts.extend(format_record(t, v) for t, v in records)
    parts.append(f"\nNeuron {len(_EXAMPLES) + 1}\n{EXPLANATION_LEAD} {explanation.strip()}\n"
                 f"Activations:\n<start>\n")
    prompt = "".join(parts)
    offsets = []
    lines = []
    position = len(prompt)
    for token in tokens:
        shown = f"{display_token(token)}\t"
        offsets.append(position + len(shown))
        line = f"{shown}{PLACEHOLDER}\n"
        lines.append(line)
        position += len(line)
    return prompt + "".join(lines) + "<end>\n", offsets


def chat_simulation_messages(explanation: str, tokens: Sequence[str]) -> list[dict]:
    """Chat messages asking the model to rewrite the lines with a number for each token."""
    system = (f"{_simulation_intro()} Answer with the same lines between <start> and <end>, "
              f"in the same order, replacing each \"{PLACEHOLDER}\" with one integer from 0 to 10. "
              f"Write nothing else.")
    messages = [{"role": "system", "content": system}]
    for example_explanation, records in _EXAMPLES:
        example_tokens, values = records[0]
        messages.append({"role": "user", "content": _simulate_request(example_explanation, example_tokens)})
        messages.append({"role": "assistant", "content": format_record(example_tokens, values)})
    messages.append({"role": "user", "content": _simulate_request(explanation.strip(), tokens)})
    return messages


def _simulate_request(explanation: str, tokens: Sequence[str]) -> str:
    return f"{EXPLANATION_LEAD} {explanation}\n{format_record(tokens, [PLACEHOLDER] * len(tokens))}"


def single_token_messages(explanation: str, tokens: Sequence[str], index: int) -> list[dict]:
    """Messages asking for the activation of token ``index`` only, given the text up to it
    (the paper's one-token-at-a-time method: the reply's first token carries the distribution).
    """
    system = (f"{_INTRO} Given what a neuron responds to, rate its activation on the last token of "
              f"a text, from 0 (silent) to 10 (strongest); most tokens are 0. Answer with the number only.")
    messages = [{"role": "system", "content": system}]
    for example_explanation, records in _EXAMPLES:
        example_tokens, values = records[0]
        position = max(range(len(values)), key=values.__getitem__)
        messages.append({"role": "user", "content": _single_token_request(example_explanation, example_tokens, position)})
        messages.append({"role": "assistant", "content": str(values[position])})
    messages.append({"role": "user", "content": _single_token_request(explanation.strip(), tokens, index)})
    return messages


def single_token_prompt(explanation: str, tokens: Sequence[str], index: int) -> str:
    """The same request as one completions prompt, ending where the number is to be written."""
    messages = single_token_messages(explanation, tokens, index)
    parts = [messages[0]["content"], "\n\n"]
    parts += [m["content"] + (" " if m["role"] == "user" else "\n\n") for m in messages[1:]]
    return "".join(parts).rstrip(" ")


def _single_token_request(explanation: str, tokens: Sequence[str], index: int) -> str:
    text = display_token("".join(tokens[:index + 1]))
    return (f"{EXPLANATION_LEAD} {explanation}\nText: {text}\n"
            f"Token to rate: \"{display_token(tokens[index])}\"\nActivation:")


def json_simulation_messages(explanation: str, tokens: Sequence[str]) -> list[dict]:
    """Chat messages asking for a JSON object: the tokens, each with an integer activation."""
    system = (f"{_simulation_intro()} You get a JSON object with the explanation, the text and its "
              f"tokens with \"activation\": null. Reply with the same JSON object, every token "
              f"verbatim and in order, each activation an integer from 0 to 10. Reply with JSON only.")
    messages = [{"role": "system", "content": system}]
    for example_explanation, records in _EXAMPLES:
        example_tokens, values = records[0]
        messages.append({"role": "user", "content": json_record(example_explanation, example_tokens, None)})
        messages.append({"role": "assistant", "content": json_record(example_explanation, example_tokens, values)})
    messages.append({"role": "user", "content": json_record(explanation.strip(), tokens, None)})
    return messages


def json_record(explanation: str, tokens: Sequence[str], values: Sequence[int] | None) -> str:
    import json

    return json.dumps({"explanation": explanation, "text": "".join(tokens),
                       "activations": [{"token": t, "activation": None if values is None else values[i]}
                                       for i, t in enumerate(tokens)]}, ensure_ascii=False)


_CLASSIFY_SYSTEM = (f"{_INTRO} You get an explanation of what a neuron responds to and a text. "
                    f"Answer with one digit: 1 for yes, 0 for no.")
ANSWER = "Answer 1 (yes) or 0 (no)."


def detection_messages(explanation: str, tokens: Sequence[str]) -> list[dict]:
    """Does the neuron fire anywhere in this text? (the detection scorer)"""
    question = (f"{EXPLANATION_LEAD} {explanation.strip()}\nText: {display_token(''.join(tokens))}\n"
                f"Does this neuron fire anywhere in the text? {ANSWER}")
    return [{"role": "system", "content": _CLASSIFY_SYSTEM}, {"role": "user", "content": question}]


def fuzzing_messages(explanation: str, tokens: Sequence[str], marked: Sequence[int]) -> list[dict]:
    """Are the marked tokens the ones the explanation points to? (the fuzzing scorer)"""
    chosen = set(marked)
    text = "".join(f"<<{display_token(t)}>>" if i in chosen else display_token(t) for i, t in enumerate(tokens))
    question = (f"{EXPLANATION_LEAD} {explanation.strip()}\nText, the tokens where the neuron fires marked "
                f"<<like this>>: {text}\nDo the marked tokens fit the explanation? {ANSWER}")
    return [{"role": "system", "content": _CLASSIFY_SYSTEM}, {"role": "user", "content": question}]
