"""The ``token-by-token`` simulator: the paper's one-token-at-a-time method.

One request per token: the prompt holds the text up to that token and asks for its activation;
the reply's first generated token carries the distribution over "0".."10" in its top logprobs,
whose expected value (renormalised, as for the other logprob simulators) is the prediction.
It runs on whichever endpoint the model serves with logprobs: the completions endpoint
(``max_tokens=1, logprobs``; the paper's request) is tried first, then chat (``max_tokens=1,
logprobs, top_logprobs``); the first that answers with logprobs is remembered per model for
the rest of the run. It costs one request per token (64 per public sequence), but needs no
echo and works on hosted chat models that give ``top_logprobs``.
"""
from __future__ import annotations

import asyncio
from typing import Sequence

from nx.explain.client import Client, RequestFailed, Unparseable
from nx.explain.logprobs import NoLogprobs, Simulation, expected_value, first_choice

_ROUTE = "token-by-token"
# What a refusal of the completions endpoint looks like for a chat-only model (404 at OpenAI,
# 400 at some servers); anything else (a bad key, a timeout) is not a reason to try chat.
_TRY_CHAT = {400, 404, 405, 501}


async def simulate(client: Client, model: str, explanation: str, tokens: Sequence[str], builder,
                   top_logprobs: int) -> Simulation:
    """Expected values and distributions of every token; raises Unparseable on a bad reply."""
    route = client.routes.get((_ROUTE, model))
    if route is None:
        route = await _choose_route(client, model, explanation, tokens, builder, top_logprobs)
    reads = await _gather(_one(client, model, route, explanation, tokens, k, builder, top_logprobs)
                          for k in range(len(tokens)))
    return Simulation([r[0] for r in reads], [r[1] for r in reads], [r[2] for r in reads])


async def _choose_route(client, model, explanation, tokens, builder, top_logprobs) -> str:
    """Ask for the first token on completions, then on chat; remember the first that works."""
    try:
        await _one(client, model, "completions", explanation, tokens, 0, builder, top_logprobs)
        route = "completions"
    except RequestFailed as exc:
        if not (isinstance(exc, Unparseable) or exc.status in _TRY_CHAT):
            raise
        try:
            await _one(client, model, "chat", explanation, tokens, 0, builder, top_logprobs)
        except RequestFailed as chat:
            kind = Unparseable if isinstance(chat, Unparseable) else RequestFailed
            raise kind(f"neither endpoint gives logprobs for one token: completions: {exc.reason}; "
                       f"chat: {chat.reason}", fatal=chat.fatal, status=chat.status) from None
        route = "chat"
    client.routes[(_ROUTE, model)] = route
    return route


async def _one(client, model, route, explanation, tokens, k, builder, top_logprobs):
    if route == "completions":
        body = await client.complete(model=model, prompt=builder.single_token_prompt(explanation, tokens, k),
                                     max_tokens=1, logprobs=top_logprobs, temperature=0)
        logprobs = first_choice(body).get("logprobs")
        top = logprobs.get("top_logprobs") if isinstance(logprobs, dict) else None
        first = top[0] if isinstance(top, list) and top else None
    else:
        body = await client.chat(model=model, messages=builder.single_token_messages(explanation, tokens, k),
                                 max_tokens=1, temperature=0, logprobs=True, top_logprobs=top_logprobs)
        logprobs = first_choice(body).get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        first = content[0].get("top_logprobs") if isinstance(content, list) and content and isinstance(content[0], dict) else None
    if not first:
        raise NoLogprobs(f"the {route} reply has no top logprobs for its first token")
    read = expected_value(first)
    if read is None:
        raise Unparseable(f"no activation value 0-10 among the top logprobs of token {k}")
    return read


async def _gather(coroutines) -> list:
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
