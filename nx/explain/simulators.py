"""The simulators: predict a neuron's activations on a sequence from an explanation.

- ``all-at-once`` (the paper's method): one completions request per sequence, the prompt
  echoed back (``echo``) with ``logprobs`` per position; at each ``unknown`` placeholder the
  probabilities of the tokens "0".."10" among the top logprobs, renormalised, give the
  expected value. Needs a server that returns prompt logprobs (vLLM, llama.cpp).
- ``chat-logprobs``: one chat request per sequence; the model rewrites the lines with a digit
  for each token and the top logprobs of each digit give the expected value the same way.
  For hosted chat models that offer ``logprobs``/``top_logprobs`` but no echo.
- ``sampling``: the same chat prompt at temperature 0, the numbers written are the prediction
  (no distribution). Works with any chat model; its scores are coarser.
- ``token-by-token`` (the paper's one-at-a-time method, ``token_by_token.py``): one request per
  token, on completions or chat, whichever gives the first token's logprobs.
- ``json`` (``json_simulator.py``): any chat model, no logprobs; the reply is JSON.
Prompts come from ``builder``: nx's own (``prompts``) or the original package's (``paper``).
Scores from different simulators are not comparable; every row records which one made it.
A reply that cannot be read raises ``Unparseable`` (never a made-up prediction).
"""
from __future__ import annotations

import bisect
import re
from typing import Sequence

from nx.explain import json_simulator, prompts, token_by_token
from nx.explain.client import Client, RequestFailed, Unparseable
from nx.explain.logprobs import NoLogprobs, Simulation, expected_value, first_choice

__all__ = ["KINDS", "NoLogprobs", "Simulation", "expected_value", "simulate", "check"]

KINDS = ("all-at-once", "chat-logprobs", "sampling", "token-by-token", "json")
TOP_LOGPROBS = 15           # as in the paper; servers that allow fewer are adapted to
SIMULATION_MAX_TOKENS = 2000
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


async def simulate(client: Client, model: str, kind: str, explanation: str,
                   tokens: Sequence[str], builder=prompts) -> Simulation:
    if kind == "all-at-once":
        return await _all_at_once(client, model, explanation, tokens, builder)
    if kind == "chat-logprobs":
        return await _chat_logprobs(client, model, explanation, tokens)
    if kind == "sampling":
        return await _sampling(client, model, explanation, tokens)
    if kind == "token-by-token":
        return await token_by_token.simulate(client, model, explanation, tokens, builder, TOP_LOGPROBS)
    if kind == "json":
        return await json_simulator.simulate(client, model, explanation, tokens, builder, SIMULATION_MAX_TOKENS)
    raise ValueError(f"unknown simulator {kind!r}")


async def _all_at_once(client: Client, model: str, explanation: str, tokens: Sequence[str],
                       builder=prompts) -> Simulation:
    prompt, offsets = builder.completion_prompt(explanation, tokens)
    # max_tokens=1, not 0: several servers refuse 0; the generated token is past every offset.
    body = await client.complete(model=model, prompt=prompt, max_tokens=1, echo=True,
                                 logprobs=TOP_LOGPROBS, temperature=0)
    logprobs = first_choice(body).get("logprobs")
    if not isinstance(logprobs, dict) or not logprobs.get("top_logprobs") or not logprobs.get("text_offset"):
        raise NoLogprobs("the completions reply has no echoed prompt logprobs (echo + logprobs unsupported?)")
    top, text_offset = logprobs["top_logprobs"], logprobs["text_offset"]
    position = {}
    for index, offset in enumerate(text_offset):
        position.setdefault(offset, index)
    expected, values, probabilities = [], [], []
    for k, offset in enumerate(offsets):
        index = position.get(offset)
        if index is None or index >= len(top):
            raise Unparseable(f"no echoed token starts at the placeholder of token {k} "
                              f"(the server's tokenizer merges it with the tab)")
        read = expected_value(top[index])
        if read is None:
            raise Unparseable(f"no activation value 0-10 among the top logprobs at token {k}")
        expected.append(read[0])
        values.append(read[1])
        probabilities.append(read[2])
    return Simulation(expected, values, probabilities)


async def _chat_logprobs(client: Client, model: str, explanation: str, tokens: Sequence[str]) -> Simulation:
    messages = prompts.chat_simulation_messages(explanation, tokens)
    body = await client.chat(model=model, messages=messages, max_tokens=SIMULATION_MAX_TOKENS,
                             temperature=0, logprobs=True, top_logprobs=TOP_LOGPROBS)
    logprobs = first_choice(body).get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content or not isinstance(content, list):
        raise NoLogprobs("the chat reply has no logprobs (the model or server does not offer them)")
    pieces = [e.get("token") if isinstance(e, dict) and isinstance(e.get("token"), str) else "" for e in content]
    starts, text = [], ""
    for piece in pieces:
        starts.append(len(text))
        text += piece
    expected, values, probabilities = [], [], []
    for k, (value_text, offset) in enumerate(_value_lines(text, len(tokens))):
        index = bisect.bisect_right(starts, offset) - 1
        read = expected_value(content[index].get("top_logprobs")) if index >= 0 else None
        if read is None:
            raise Unparseable(f"no activation value 0-10 among the top logprobs at token {k} "
                              f"(the model wrote {value_text!r})")
        expected.append(read[0])
        values.append(read[1])
        probabilities.append(read[2])
    return Simulation(expected, values, probabilities)


async def _sampling(client: Client, model: str, explanation: str, tokens: Sequence[str]) -> Simulation:
    messages = prompts.chat_simulation_messages(explanation, tokens)
    body = await client.chat(model=model, messages=messages, max_tokens=SIMULATION_MAX_TOKENS, temperature=0)
    message = first_choice(body).get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise Unparseable("the chat reply has no text")
    expected = []
    for k, (value_text, _) in enumerate(_value_lines(text, len(tokens))):
        value = float(value_text)
        if not 0 <= value <= prompts.MAX_VALUE:
            raise Unparseable(f"activation {value_text!r} of token {k} is outside 0-10")
        expected.append(value)
    return Simulation(expected, [], [])


def _value_lines(text: str, count: int) -> list[tuple[str, int]]:
    """(value as written, its character offset) of each token line of a chat reply.

    The lines after the last line reading <start> and before the next reading <end> (all
    lines without them); the value is the last field of a line. A token that contains
    "<end>" cannot end the block: its line carries a value. The number of lines must equal
    the number of tokens.
    """
    lines, offset = [], 0
    for line in text.split("\n"):
        lines.append((line, offset))
        offset += len(line) + 1
    marks = [i for i, (line, _) in enumerate(lines) if line.strip() == "<start>"]
    body = lines[marks[-1] + 1:] if marks else lines
    found = []
    for line, offset in body:
        stripped = line.rstrip()
        if stripped.strip() == "<end>":
            break
        if not stripped.strip() or stripped.strip().startswith("```"):
            continue
        field = re.search(r"(\S+)$", stripped)
        if not field or not _NUMBER.match(field.group(1)):
            raise Unparseable(f"line {len(found)} of the reply has no number: {stripped[-40:]!r}")
        found.append((field.group(1), offset + field.start(1)))
    if len(found) != count:
        raise Unparseable(f"the reply has {len(found)} token lines for {count} tokens")
    return found


PROBE_TOKENS = (" The", " cat", " sat", " on", " the", " mat", ".")


async def check(client: Client, model: str, kind: str, builder=None) -> None:
    """Raise RequestFailed if ``kind`` cannot run on ``model``: one small simulation."""
    await simulate(client, model, kind, "animals", PROBE_TOKENS, builder or prompts)


async def working_alternatives(client: Client, model: str, kind: str) -> list[str]:
    """The other simulators that do run on ``model`` (for the refusal message)."""
    working = []
    for other in KINDS:
        if other == kind:
            continue
        try:
            await check(client, model, other)
        except RequestFailed as exc:
            if exc.fatal and exc.status in (401, 403):
                raise
            continue
        working.append(other)
    return working
