"""What every simulator returns, and how a logprob simulator reads a prediction from a reply.

The paper's reading: at the position of an activation, the probabilities of the tokens "0".."10"
among the top logprobs, renormalised, give a distribution whose expected value is the
prediction (Bills et al. 2023, section 2.2; simulator.py in openai/automated-interpretability).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from nx.explain.client import Unparseable

MAX_VALUE = 10
_VALUES = {str(v): v for v in range(MAX_VALUE + 1)}


class NoLogprobs(Unparseable):
    """The server answered without the logprobs the simulator reads."""


@dataclass(frozen=True)
class Simulation:
    """Per token: the expected value (0-10) and the distribution it came from (empty: sampled)."""

    expected: list[float]
    distribution_values: list[list[float]]
    distribution_probabilities: list[list[float]]


def expected_value(top_logprobs: dict[str, float] | list | None) -> tuple[float, list[float], list[float]] | None:
    """EV over the tokens "0".."10" in a top-logprobs map, renormalised; None if none is there.

    Tokens are compared without surrounding whitespace (a tokenizer may glue the tab to the
    digit); the probabilities of tokens naming the same value are added.
    """
    if isinstance(top_logprobs, list):   # chat: [{"token": ..., "logprob": ...}]
        pairs = [(e.get("token"), e.get("logprob")) for e in top_logprobs if isinstance(e, dict)]
    elif isinstance(top_logprobs, dict):
        pairs = list(top_logprobs.items())
    else:
        return None
    probabilities: dict[int, float] = {}
    for token, logprob in pairs:
        value = _VALUES.get(token.strip()) if isinstance(token, str) else None
        if value is not None and isinstance(logprob, (int, float)) and math.isfinite(logprob):
            probabilities[value] = probabilities.get(value, 0.0) + math.exp(logprob)
    total = sum(probabilities.values())
    if not probabilities or total <= 0:
        return None
    values = [float(v) for v in probabilities]
    normalised = [p / total for p in probabilities.values()]
    return sum(v * p for v, p in zip(values, normalised)), values, normalised


def first_choice(body: dict) -> dict:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise Unparseable("the reply has no choices")
    return choices[0]
