"""The two explainers: write a one-phrase explanation of a neuron with a chat model.

- ``token-activations`` (the paper's method): the top-activating records of the train split
  as token<TAB>activation lines, activations normalised to 0-10;
- ``token-lookup``: the tokens with the highest average activation (the ``token_lookups``
  table), without activations, as the paper's token-space explainer does.
One explanation per neuron, sampled at temperature 1 like the paper's (which then scored each
of several samples; nx keeps one to keep the cost per neuron at one explainer request).
"""
from __future__ import annotations

from typing import Sequence

from nx.explain import prompts
from nx.explain.client import Client, Unparseable

KINDS = ("token-activations", "token-lookup")
EXPLANATION_MAX_TOKENS = 60
TEMPERATURE = 1.0
LOOKUP_TOKENS = 50


async def explain(client: Client, model: str, kind: str, *,
                  records: Sequence[tuple[Sequence[str], Sequence[float]]] = (),
                  lookup_tokens: Sequence[str] = ()) -> str:
    """The explanation text; raises Unparseable if the reply holds none."""
    if kind == "token-activations":
        messages = prompts.explainer_messages(records)
    elif kind == "token-lookup":
        messages = prompts.lookup_explainer_messages(list(lookup_tokens)[:LOOKUP_TOKENS])
    else:
        raise ValueError(f"unknown explainer {kind!r}")
    body = await client.chat(model=model, messages=messages, max_tokens=EXPLANATION_MAX_TOKENS,
                             temperature=TEMPERATURE)
    choices = body.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise Unparseable("the explainer's reply has no text")
    explanation = prompts.parse_explanation(text)
    if not explanation:
        raise Unparseable(f"the explainer's reply holds no explanation: {text[:60]!r}")
    return explanation


async def check(client: Client, model: str) -> None:
    """One small request with the explainer's parameters; raises RequestFailed if refused."""
    await client.chat(model=model, messages=[{"role": "user", "content": "Say ok."}],
                      max_tokens=EXPLANATION_MAX_TOKENS, temperature=TEMPERATURE)
