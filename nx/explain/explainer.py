"""The two explainers: write a one-phrase explanation of a neuron with a chat model.

- ``token-activations`` (the paper's method): the top-activating records of the train split
  as token<TAB>activation lines, activations normalised to 0-10;
- ``token-lookup``: the tokens with the highest average activation (the ``token_lookups``
  table), without activations, as the paper's token-space explainer does.
Explanations are sampled at temperature 1 like the paper's, ``samples`` of them per neuron (the
paper scored each of several and kept the best): one request with ``n`` where the server gives
that many choices, else the missing ones asked for one request each.
"""
from __future__ import annotations

import asyncio
from typing import Sequence

from nx.explain import prompts
from nx.explain.client import Client, Unparseable

KINDS = ("token-activations", "token-lookup")
EXPLANATION_MAX_TOKENS = 60
TEMPERATURE = 1.0
LOOKUP_TOKENS = 50


async def explain(client: Client, model: str, kind: str, *,
                  records: Sequence[tuple[Sequence[str], Sequence[float]]] = (),
                  lookup_tokens: Sequence[str] = (), samples: int = 1, builder=prompts) -> list[str]:
    """``samples`` explanation texts; raises Unparseable if a reply holds none."""
    if kind == "token-activations":
        messages = builder.explainer_messages(records)
    elif kind == "token-lookup":
        messages = builder.lookup_explainer_messages(list(lookup_tokens)[:LOOKUP_TOKENS])
    else:
        raise ValueError(f"unknown explainer {kind!r}")

    async def ask(n: int) -> list[str]:
        extra = {"n": n} if n > 1 else {}
        body = await client.chat(model=model, messages=messages, max_tokens=EXPLANATION_MAX_TOKENS,
                                 temperature=TEMPERATURE, **extra)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise Unparseable("the explainer's reply has no choices")
        return [_text(choice, builder) for choice in choices[:n]]

    found = await ask(samples)
    if len(found) < samples:   # the server ignored or refused n: one request per missing sample
        for more in await asyncio.gather(*(ask(1) for _ in range(samples - len(found)))):
            found += more
    return found


def _text(choice, builder) -> str:
    message = choice.get("message") if isinstance(choice, dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise Unparseable("the explainer's reply has no text")
    explanation = builder.parse_explanation(text)
    if not explanation:
        raise Unparseable(f"the explainer's reply holds no explanation: {text[:60]!r}")
    return explanation


async def check(client: Client, model: str) -> None:
    """One small request with the explainer's parameters; raises RequestFailed if refused."""
    await client.chat(model=model, messages=[{"role": "user", "content": "Say ok."}],
                      max_tokens=EXPLANATION_MAX_TOKENS, temperature=TEMPERATURE)
