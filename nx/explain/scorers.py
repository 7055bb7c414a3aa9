"""The detection and fuzzing scorers: does a model, told the explanation, tell records apart?

Besides the paper's simulation score, two cheaper checks of an explanation (as in EleutherAI's
"Automatically Interpreting Millions of Features in LLMs", Paulo et al. 2024), both asked of the
simulator model, one chat request per example, answered with one digit (1 yes, 0 no):
- ``detection``: a record of the valid split, the top ones labelled activating and the random
  ones not; "does the neuron fire anywhere in this text?";
- ``fuzzing``: each top record of the valid split twice, once with the tokens where the neuron
  fires marked (normalised activation >= 1 on the paper's 0-10 scale) and once with as many
  other tokens marked instead (chosen at random, seeded by the record, so a resumed run asks
  the same); "do the marked tokens fit the explanation?".
Logprobs are asked for: where the server gives them, P("1") renormalised over "0" and "1" is
the example's probability (for the AUC). An answer that cannot be read is a missing prediction
with its reason, never counted right or wrong; a request that fails for good fails the neuron
like any other.
"""
from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Sequence

from nx.explain import metrics, prompts
from nx.explain.client import Client, Unparseable
from nx.keys import sequence_id

KINDS = ("simulation", "detection", "fuzzing")
_ANSWER = re.compile(r"^\W*([01])(?!\d)")


@dataclass(frozen=True)
class Example:
    scorer: str
    index: int
    sample: str
    tokens: list[str]
    activations: list[float]
    label: bool
    marked: tuple[int, ...] | None = None


def examples(scorer: str, valid, valid_sample: Sequence[str]) -> list[Example]:
    """The examples a scorer asks about, from the valid split's records."""
    if scorer == "detection":
        return [Example(scorer, i, sample, list(tokens), list(acts), sample == "top")
                for i, ((tokens, acts), sample) in enumerate(zip(valid, valid_sample))]
    top = [record for record, sample in zip(valid, valid_sample) if sample == "top"]
    maximum = max((a for _, acts in top for a in acts if a is not None), default=0.0)
    found: list[Example] = []
    for tokens, acts in top:
        firing = tuple(i for i, v in enumerate(prompts.normalise(acts, maximum)) if v >= 1)
        quiet = [i for i in range(len(tokens)) if i not in firing]
        if not firing or not quiet:
            continue
        seed = int(hashlib.sha256(sequence_id(tokens, acts).encode()).hexdigest()[:16], 16)
        wrong = tuple(sorted(random.Random(seed).sample(quiet, min(len(firing), len(quiet)))))
        for label, marked in ((True, firing), (False, wrong)):
            found.append(Example(scorer, len(found), "top", list(tokens), list(acts), label, marked))
    return found


async def score(client: Client, model: str, scorer: str, explanation: str, valid, valid_sample,
                neuron: int, explanation_index: int) -> tuple[dict, list[dict]]:
    """(metric columns of the explanation row, prediction rows) of one scorer."""
    chosen = examples(scorer, valid, valid_sample)
    answers = await asyncio.gather(*(_ask(client, model, explanation, e) for e in chosen))
    rows = [{"neuron": neuron, "explanation_index": explanation_index, "scorer": scorer,
             "example_index": e.index, "sample": e.sample, "sequence_id": sequence_id(e.tokens, e.activations),
             "label": e.label, "marked": list(e.marked) if e.marked is not None else None,
             "prediction": prediction, "probability": probability, "answer": answer, "error": error}
            for e, (prediction, probability, answer, error) in zip(chosen, answers)]
    found = metrics.classification([r["label"] for r in rows], [r["prediction"] for r in rows],
                                   [r["probability"] for r in rows])
    return {f"{scorer}_{name}": found[name] for name in metrics.NAMES}, rows


async def _ask(client: Client, model: str, explanation: str, example: Example):
    """(prediction, probability, the answer as written, why it is missing)."""
    if example.scorer == "detection":
        messages = prompts.detection_messages(explanation, example.tokens)
    else:
        messages = prompts.fuzzing_messages(explanation, example.tokens, example.marked)
    try:
        body = await client.chat(model=model, messages=messages, max_tokens=1, temperature=0,
                                 logprobs=True, top_logprobs=5)
    except Unparseable as exc:
        return None, None, None, exc.reason
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        return None, None, None, "the reply has no text"
    found = _ANSWER.match(text)
    if not found:
        return None, None, text[:200], f"the answer {text[:40]!r} is neither 1 nor 0"
    return found.group(1) == "1", _probability(choice.get("logprobs")), text[:200], None


def _probability(logprobs) -> float | None:
    """P("1") over "0" and "1" among the first answer token's top logprobs, if there are any."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    first = content[0].get("top_logprobs") if isinstance(content, list) and content and isinstance(content[0], dict) else None
    if not isinstance(first, list):
        return None
    mass = {"0": 0.0, "1": 0.0}
    for entry in first:
        token = entry.get("token") if isinstance(entry, dict) else None
        logprob = entry.get("logprob") if isinstance(entry, dict) else None
        if isinstance(token, str) and token.strip() in mass and isinstance(logprob, (int, float)) and math.isfinite(logprob):
            mass[token.strip()] += math.exp(logprob)
    total = mass["0"] + mass["1"]
    return mass["1"] / total if total > 0 else None
