"""The ``json`` simulator: any chat model, no logprobs needed.

One chat request per sequence at temperature 0 (JSON mode asked for, dropped where a server
refuses it): the model gets a JSON object with the explanation, the text and its tokens with
null activations, and returns the same object with an integer 0-10 for each token (TDB's and
the PyPI fork's logprob-free simulator works the same way). The reply must hold exactly the
tokens sent, in order; a reply that is not JSON, lacks the list, has another number of tokens,
another token, or an activation that is not a number from 0 to 10 fails the sequence with that
reason (``Unparseable``): the original replaced such replies with zeros, a made-up prediction
that nx never stores. Like ``sampling``, it has no distribution and coarser scores.
"""
from __future__ import annotations

import json
import math
import re
from typing import Sequence

from nx.explain.client import Client, Unparseable
from nx.explain.logprobs import MAX_VALUE, Simulation, first_choice

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


async def simulate(client: Client, model: str, explanation: str, tokens: Sequence[str], builder,
                   max_tokens: int) -> Simulation:
    body = await client.chat(model=model, messages=builder.json_simulation_messages(explanation, tokens),
                             max_tokens=max_tokens, temperature=0, response_format={"type": "json_object"})
    message = first_choice(body).get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise Unparseable("the chat reply has no text")
    return Simulation(parse(text, tokens), [], [])


def parse(text: str, tokens: Sequence[str]) -> list[float]:
    """The activations of a JSON reply, one per token; raises Unparseable saying what is wrong."""
    fenced = _FENCE.match(text)
    try:
        reply = json.loads(fenced.group(1) if fenced else text)
    except ValueError as exc:
        raise Unparseable(f"the reply is not JSON ({exc.msg} at character {exc.pos}): {text[:60]!r}") from None
    entries = reply.get("activations") if isinstance(reply, dict) else None
    if not isinstance(entries, list):
        raise Unparseable("the JSON reply has no \"activations\" list")
    if len(entries) != len(tokens):
        raise Unparseable(f"the JSON reply has {len(entries)} activations for {len(tokens)} tokens")
    values = []
    for k, (entry, token) in enumerate(zip(entries, tokens)):
        if not isinstance(entry, dict):
            raise Unparseable(f"activation {k} of the JSON reply is not an object")
        written = entry.get("token")
        # Models often drop a token's leading space; anything more is another token.
        if not isinstance(written, str) or written.strip() != token.strip():
            raise Unparseable(f"token {k} of the JSON reply is {written!r}, not {token!r}")
        value = entry.get("activation")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= MAX_VALUE or value != int(value):
            raise Unparseable(f"activation {k} of the JSON reply is {value!r}, not an integer from 0 to {MAX_VALUE}")
        values.append(float(value))
    return values
