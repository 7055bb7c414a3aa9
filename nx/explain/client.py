"""The one way explain talks to an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama).

``Client`` wraps ``openai.AsyncOpenAI`` (base URL and key from the caller or the environment,
the client's own retries off) and owns:
- retries: 429 (waiting what Retry-After / retry-after-ms says), 408/409, 5xx, timeouts and
  dropped connections are retried with exponential backoff and jitter; anything else is not;
- classification: a request that still fails raises ``RequestFailed`` with a one-line reason;
  ``fatal`` marks what will fail for every neuron alike (key, model, exhausted quota), so the
  run stops instead of burning through the list; ``Unparseable`` is a reply that is not JSON;
- adapting once per endpoint and model to a 400 that names a parameter: ``max_tokens`` where
  ``max_completion_tokens`` is wanted or a non-default ``temperature`` (reasoning models), too
  many logprobs (OpenAI's legacy completions allow 5); later requests are sent that way;
- bounds on each reply: ``timeout`` covers the whole of it (connect, first byte, last byte), so a
  server that trickles a byte a second times out like one that says nothing; a reply over
  ``MAX_REPLY_BYTES`` fails that request at once (``ReplyTooLarge``) instead of filling memory;
- token usage, request and retry counts;
- the key's secrecy: it goes to the server and nowhere else; reasons are passed through
  ``redact`` before anyone stores them.
Replies are plain dicts decoded from the HTTP body, so servers' extra or missing fields are
the parsers' business, not pydantic's.
"""
from __future__ import annotations

import asyncio
import contextvars
import email.utils
import functools
import random
import re
import sys
import time
import zlib
from dataclasses import dataclass

import orjson

OPENAI_URL = "https://api.openai.com/v1"
_TRANSIENT_STATUS = {408, 409, 429}
_FATAL_STATUS = {401, 403, 404}
_MAX_WAIT = 120.0
# Explain's largest replies (completions echoing a sequence with logprobs) are tens of kilobytes;
# one over 16 MiB is a server fault, and an endless one would otherwise be read until MemoryError.
MAX_REPLY_BYTES = 16 << 20
BACKOFF_SECONDS = 0.5   # first retry waits 0.25-0.5 s, doubling up to 30 s (tests shorten it)
_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_\-*.]{4,}")


# The usage of the neuron being worked on; tasks gathered for it inherit it (see ``Client``).
NEURON_USAGE: contextvars.ContextVar["Usage | None"] = contextvars.ContextVar("NEURON_USAGE", default=None)


class RequestFailed(Exception):
    """A request that failed for good; ``reason`` is one redacted line."""

    def __init__(self, reason: str, *, fatal: bool = False, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.status = status


class Unparseable(RequestFailed):
    """The server answered, but not with something the simulator or explainer can read."""


class ReplyTooLarge(RequestFailed):
    """A reply over ``MAX_REPLY_BYTES``. Not retried: the same request would get it again."""

    def __init__(self) -> None:
        super().__init__(f"the server's reply is larger than {MAX_REPLY_BYTES >> 20} MiB "
                         "(nx's cap on one reply); not retried")


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    retries: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def redact(text: str, secret: str | None) -> str:
    """``text`` on one line, without the key or anything shaped like an OpenAI key."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", text)
    return " ".join(text.split())[:300]


def display_url(base_url: str | None) -> str:
    """The server URL for messages and the runs table: no user:password, no query string."""
    url = (base_url or OPENAI_URL).split("?", 1)[0].split("#", 1)[0]
    return re.sub(r"//[^/@]*@", "//", url).rstrip("/")


class Client:
    def __init__(self, *, base_url: str | None, api_key: str | None, timeout: float = 60.0,
                 max_retries: int = 5, concurrency: int = 8, backoff: float | None = None):
        import openai  # imported here: only explain pays for the openai package

        self.base_url = display_url(base_url)
        self._key = api_key
        self.timeout = timeout
        # openai's own client (its pool limits and redirects), plus the size cap on every reply.
        # Replies compressed only as _cap_reply can inflate under the cap (httpx would also offer br, zstd).
        http = openai.DefaultAsyncHttpxClient(timeout=timeout, event_hooks={"response": [_cap_reply]},
                                              headers={"Accept-Encoding": "gzip, deflate"})
        # Local servers often need no key, but the openai client insists on one.
        self._openai = openai.AsyncOpenAI(base_url=base_url or OPENAI_URL, api_key=api_key or "EMPTY",
                                          timeout=timeout, max_retries=0, http_client=http)
        self._errors = openai
        self.max_retries = max_retries
        self.backoff = BACKOFF_SECONDS if backoff is None else backoff
        self.usage = Usage()
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        # What each (endpoint, model) refused, so later requests are sent its way at once.
        self._adapted: dict[tuple[str, str], _Adaptation] = {}
        # What a simulator learnt about a model (e.g. which endpoint gives logprobs), for the run.
        self.routes: dict[tuple[str, str], str] = {}

    async def close(self) -> None:
        await self._openai.close()

    async def complete(self, **params) -> dict:
        """POST /completions."""
        return await self._call("completions", params)

    async def chat(self, **params) -> dict:
        """POST /chat/completions."""
        return await self._call("chat", params)

    async def models(self) -> list[str]:
        """GET /models: the ids the server lists."""
        body = await self._call("models", {})
        return [m.get("id") for m in body.get("data") or [] if isinstance(m, dict) and m.get("id")]

    def _send(self, endpoint: str, params: dict):
        if endpoint == "models":
            return self._openai.models.with_raw_response.list()
        params = self._adaptation(endpoint, params).apply(params)
        if endpoint == "completions":
            return self._openai.completions.with_raw_response.create(**params)
        return self._openai.chat.completions.with_raw_response.create(**params)

    async def _call(self, endpoint: str, params: dict) -> dict:
        async with self._semaphore:
            attempt = 0
            while True:
                self.usage.requests += 1
                try:
                    # httpx's timeouts bound each read, not their sum: a trickle passes them all.
                    # The body is read inside (no streaming), so this bounds the whole reply.
                    # ReplyTooLarge passes through: it is a RequestFailed, and not retried.
                    raw = await asyncio.wait_for(self._send(endpoint, params), self.timeout)
                    content = raw.http_response.content
                except asyncio.TimeoutError:
                    failure = RequestFailed(f"timed out: no whole reply within {self.timeout:g} s")
                    wait = self._backoff(attempt)
                except self._errors.APIStatusError as exc:
                    if self._adaptation(endpoint, params).learn(exc):
                        continue
                    failure, wait = self._status_failure(exc, attempt)
                except self._errors.APIConnectionError as exc:  # timeouts are a subclass
                    if isinstance(exc.__cause__, ReplyTooLarge):   # older openai wraps what httpx raised
                        raise exc.__cause__ from None
                    kind = "timed out" if isinstance(exc, self._errors.APITimeoutError) else "connection failed"
                    cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
                    failure = RequestFailed(f"{kind}: {redact(str(exc) + cause, self._key)}")
                    wait = self._backoff(attempt)
                else:
                    return self._decode(content)
                if wait is None or attempt >= self.max_retries:
                    if wait is not None:
                        failure.reason = f"{failure.reason} (gave up after {attempt + 1} attempts)"
                    raise failure
                attempt += 1
                self.usage.retries += 1
                await asyncio.sleep(wait)

    def _decode(self, content: bytes) -> dict:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise Unparseable(f"the server's reply is not JSON: {redact(content[:80].decode('utf-8', 'replace'), self._key)!r}") from None
        if not isinstance(body, dict):
            raise Unparseable(f"the server's reply is not a JSON object: {type(body).__name__}")
        usage = body.get("usage")
        if isinstance(usage, dict):
            for counter in (self.usage, NEURON_USAGE.get()):
                if counter is not None:
                    counter.prompt_tokens += _count(usage.get("prompt_tokens"))
                    counter.completion_tokens += _count(usage.get("completion_tokens"))
        return body

    def _status_failure(self, exc, attempt: int) -> tuple[RequestFailed, float | None]:
        """The failure and how long to wait before retrying it (None: do not retry)."""
        status = exc.status_code
        message = redact(_error_message(exc), self._key)
        reason = f"HTTP {status}: {message}"
        if status == 429 and _error_code(exc) == "insufficient_quota":
            return RequestFailed(f"quota exhausted: {reason}", fatal=True, status=status), None
        if status in _TRANSIENT_STATUS or status >= 500:
            retry_after = _retry_after(exc.response.headers)
            wait = min(retry_after, _MAX_WAIT) if retry_after is not None else self._backoff(attempt)
            return RequestFailed(reason, status=status), wait
        return RequestFailed(reason, fatal=status in _FATAL_STATUS, status=status), None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff * 2 ** attempt, 30.0)
        return ceiling * (0.5 + random.random() / 2)

    def _adaptation(self, endpoint: str, params: dict) -> "_Adaptation":
        return self._adapted.setdefault((endpoint, str(params.get("model"))), _Adaptation())


class _Adaptation:
    """Parameters one model refused with 400, changed once and then for every request."""

    def __init__(self) -> None:
        self.renamed: dict[str, str] = {}
        self.dropped: set[str] = set()
        self.capped: dict[str, int] = {}

    def apply(self, params: dict) -> dict:
        return {self.renamed.get(k, k): min(v, self.capped[k]) if k in self.capped else v
                for k, v in params.items() if k not in self.dropped}

    def learn(self, exc) -> bool:
        """True if the refusal names something to change (and it was not changed already)."""
        if exc.status_code != 400:
            return False
        message = _error_message(exc).lower()
        if "max_completion_tokens" in message and "max_tokens" not in self.renamed:
            self.renamed["max_tokens"] = "max_completion_tokens"   # reasoning models
            return True
        for optional in ("response_format", "n"):
            # JSON mode and several samples per request are conveniences: without them the
            # reply is parsed the same way, and samples are asked for one by one.
            named = any(f"{q}{optional}{q}" in message for q in "'`\"") or (
                optional == "response_format" and optional in message)
            if named and optional not in self.dropped:
                self.dropped.add(optional)
                return True
        if "temperature" in message and "temperature" not in self.dropped and (
                "unsupported" in message or "not support" in message or "only the default" in message):
            self.dropped.add("temperature")
            return True
        # OpenAI's legacy completions allow at most 5 logprobs; the paper asked for 15.
        name = "top_logprobs" if "top_logprobs" in message else "logprobs" if "logprobs" in message else None
        limit = re.search(r"(?:maximum|at most|less than or equal to|<=)\D{0,30}?(\d+)", message)
        if name and limit and name not in self.capped:
            self.capped[name] = int(limit.group(1))
            return True
        return False


async def _cap_reply(response) -> None:
    """httpx response hook, run before the body is read: a reply over ``MAX_REPLY_BYTES`` fails
    as soon as that is known, from its Content-Length or at the byte that passes the cap."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
        raise ReplyTooLarge()
    # A compressed reply is inflated here, the cap counting what comes out (a 16 MiB gzip body
    # can hold gigabytes): httpx, seeing no Content-Encoding left, passes the bytes on as they are.
    encoding = response.headers.get("content-encoding", "").strip().lower()
    inflater = None
    if encoding not in ("", "identity"):
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise RequestFailed(f"the server's reply is encoded as {encoding[:40]!r}, which nx does not read "
                                "(it asks for gzip, deflate or none)")
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or zlib header, whichever comes
        del response.headers["content-encoding"]
    # httpx2 or httpx, whichever the installed openai runs on: the stream must subclass its base.
    library = sys.modules[type(response).__module__.partition(".")[0]]
    response.stream = _capped_stream(library.AsyncByteStream)(response.stream, inflater)


@functools.cache
def _capped_stream(base: type) -> type:
    class CappedStream(base):
        """The reply's bytes as they arrive, inflated first if they came compressed; at most
        ``MAX_REPLY_BYTES`` of them either way."""

        def __init__(self, stream, inflater=None) -> None:
            self._stream = stream
            self._inflater = inflater

        async def __aiter__(self):
            received = 0
            async for chunk in self._stream:
                for piece in self._inflated(chunk, received):
                    received += len(piece)
                    if received > MAX_REPLY_BYTES:
                        raise ReplyTooLarge()
                    yield piece
            if self._inflater is not None and not self._inflater.eof:
                raise RequestFailed("the server's compressed reply is cut short")

        def _inflated(self, chunk: bytes, received: int):
            if self._inflater is None:
                yield chunk
                return
            try:
                # never more than one byte past the cap per call, however much the chunk expands
                piece = self._inflater.decompress(chunk, MAX_REPLY_BYTES - received + 1)
                yield piece
                while self._inflater.unconsumed_tail and len(piece) <= MAX_REPLY_BYTES - received:
                    received += len(piece)
                    piece = self._inflater.decompress(self._inflater.unconsumed_tail, MAX_REPLY_BYTES - received + 1)
                    yield piece
            except zlib.error as exc:
                raise RequestFailed(f"the server's compressed reply cannot be inflated: {exc}") from None

        async def aclose(self) -> None:
            await self._stream.aclose()

    return CappedStream


def _count(value) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _error_body(exc) -> dict:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return body if isinstance(body, dict) else {}


def _error_message(exc) -> str:
    body = _error_body(exc)
    message = body.get("message") if body else None
    if message:
        return str(message)
    text = getattr(exc.response, "text", "") or ""
    return text.strip() or exc.__class__.__name__


def _error_code(exc) -> str | None:
    body = _error_body(exc)
    return body.get("code") or body.get("type")


def _retry_after(headers) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, or Retry-After (seconds or a date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None
