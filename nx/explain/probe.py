"""The capability probe: before any neuron is worked on, check once that the key, the models
and the chosen simulator work at the server, and fail fast with one clear line if not.

A simulator the model cannot serve (no echo + logprobs on completions, a chat model that
returns no logprobs, as reasoning models do, or replies the format cannot be read from) is
refused with the simulators that do work with it named, found by probing them too.
"""
from __future__ import annotations

from nx.errors import ApiError
from nx.explain import explainer, simulators
from nx.explain.client import Client, RequestFailed


async def probe(client: Client, *, explainer_model: str, simulator_model: str, simulator: str | None,
                builder=None) -> None:
    """Raises ApiError with a one-line message if the run cannot work. ``simulator`` None: the
    run only asks the simulator model plain chat questions (detection, fuzzing)."""
    listed: list[str] | None = None
    try:
        listed = await client.models()
    except RequestFailed as exc:
        if exc.status in (401, 403):
            raise ApiError(_key_message(client, exc)) from None
        if exc.status is None and not isinstance(exc, simulators.Unparseable):
            raise ApiError(f"cannot reach the server at {client.base_url}: {exc.reason}") from None
        # Some servers do not list models; the requests below still tell.
    try:
        await explainer.check(client, explainer_model)
    except RequestFailed as exc:
        raise ApiError(_describe(client, exc, explainer_model, "explainer", listed)) from None
    if simulator is None:
        try:
            await explainer.check(client, simulator_model)
        except RequestFailed as exc:
            raise ApiError(_describe(client, exc, simulator_model, "simulator", listed)) from None
        return
    try:
        await simulators.check(client, simulator_model, simulator, builder)
    except RequestFailed as exc:
        if exc.status in (401, 403) or (exc.fatal and exc.status == 429):
            raise ApiError(_describe(client, exc, simulator_model, "simulator", listed)) from None
        try:
            working = await simulators.working_alternatives(client, simulator_model, simulator)
        except RequestFailed as again:
            raise ApiError(_describe(client, again, simulator_model, "simulator", listed)) from None
        if exc.status == 404 and not working:
            raise ApiError(_describe(client, exc, simulator_model, "simulator", listed)) from None
        advice = (f"use --simulator {working[0]}, which works with this model" if working
                  else "no simulator works with this model at this server")
        raise ApiError(f"the {simulator} simulator cannot run on model {simulator_model!r} at "
                       f"{client.base_url}: {exc.reason}; {advice}") from None


def _key_message(client: Client, exc: RequestFailed) -> str:
    return (f"the server at {client.base_url} refused the API key ({exc.reason}); "
            f"check OPENAI_API_KEY")


def _describe(client: Client, exc: RequestFailed, model: str, role: str, listed: list[str] | None) -> str:
    if exc.status in (401, 403):
        return _key_message(client, exc)
    if exc.fatal and exc.status == 429:
        return f"the server at {client.base_url} refused the run: {exc.reason}"
    if exc.status == 404:
        known = f"; the server lists: {', '.join(listed[:12])}" if listed else ""
        return f"model {model!r} ({role}) is not available at {client.base_url} ({exc.reason}){known}"
    if exc.status is None and not isinstance(exc, simulators.Unparseable):
        return f"cannot reach the server at {client.base_url}: {exc.reason}"
    return f"model {model!r} ({role}) at {client.base_url} refused the request: {exc.reason}"
