"""A real HTTP server speaking enough of the OpenAI protocol for explain's tests.

``FakeOpenAI`` listens on 127.0.0.1 (a free port) in a thread and serves:
- ``GET /v1/models``;
- ``POST /v1/completions`` with ``echo`` + ``logprobs`` (``tokens``, ``token_logprobs``,
  ``top_logprobs`` as a list of dicts, ``text_offset``), tokenised by a toy tokenizer;
- ``POST /v1/chat/completions``: explanations (``n`` choices, the i-th naming the i-th likeliest
  letter; a model without ``n`` names the next letter each time it is asked the same thing),
  and simulations either sampled or with ``logprobs``/``top_logprobs`` per generated token;
- one-token simulations (token-by-token) on either endpoint: the first generated token's top
  logprobs are the rule's distribution for the token rated; JSON simulations (the rule's
  sampled values as JSON);
- usage counts; a key check (401 echoing the key it was given, to test redaction);
- a fault queue: ``inject(Fault(...))`` makes the next matching request return a status (with
  Retry-After), sleep past the client's timeout, send garbage, or drop the connection; or send
  its reply a byte at a time (``trickle``, from the status line with ``head``), padded to
  ``size`` bytes (``huge``), or as a chunked body that never ends (``endless``: the fake hangs up
  after ``size`` bytes, default ``ENDLESS_VALVE``, so a client without a cap fails its test
  rather than exhausting the machine's memory).

Its "model" follows a rule, so scores are known in advance (``rule_distribution``): the fake
explainer names the letter shared by the tokens with high activations ("words containing the
letter q"); the fake simulator predicts, for each token, a distribution whose expected value
is ``FIRING_EV`` if the token contains that letter and ``QUIET_EV`` otherwise. Test data
whose activations follow the same letter then has scores computable with numpy.
"""
from __future__ import annotations

import ast
import gzip
import json
import math
import re
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

# Top logprobs at a placeholder. "unknown" takes some mass, so the simulator must renormalise.
FIRING = {"10": 0.56, "8": 0.16, "0": 0.08, "unknown": 0.2}
QUIET = {"0": 0.72, "1": 0.08, " the": 0.2}
FIRING_EV = (10 * 0.56 + 8 * 0.16) / 0.8   # 8.6
QUIET_EV = (1 * 0.08) / 0.8                # 0.1
ENDLESS_VALVE = 64 << 20

# model -> what it can do
MODELS = {
    "fake-completion": {"completions", "chat"},           # a self-hosted model (vLLM-like)
    "fake-chat": {"chat", "chat-logprobs"},               # a hosted chat model with logprobs
    "fake-reasoner": {"chat", "reasoning"},               # no logprobs, max_completion_tokens only, no n
    "fake-davinci": {"completions", "logprobs-5"},         # OpenAI's legacy completions limit
}


def unescape(shown: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), shown)


def letter_of(explanation: str) -> str | None:
    match = re.search(r"letter (\w)", explanation)
    return match.group(1) if match else None


def rule_distribution(explanation: str, token: str) -> dict[str, float]:
    """The fake simulator's top logprobs (as probabilities) for one token."""
    letter = letter_of(explanation)
    return FIRING if letter and letter in token.lower() else QUIET


def rule_expected(explanation: str, token: str) -> float:
    return FIRING_EV if rule_distribution(explanation, token) is FIRING else QUIET_EV


def rule_sampled(explanation: str, token: str) -> int:
    return 10 if rule_distribution(explanation, token) is FIRING else 0


def toy_tokens(text: str) -> list[tuple[str, int]]:
    """(token, character offset): tabs, newlines, spaces, and words with one leading space."""
    return [(m.group(0), m.start()) for m in re.finditer(r"\t|\n| ?[^\s]+| |.", text, re.DOTALL)]


def rank_letters(firing: list[str], quiet: list[str]) -> list[str]:
    """Letters from the most typical of the firing tokens against the quiet ones to the least."""
    def share(tokens: list[str], letter: str) -> float:
        return sum(letter in t.lower() for t in tokens) / len(tokens) if tokens else 0.0
    letters = "abcdefghijklmnopqrstuvwxyz"
    return sorted(letters, key=lambda c: (-(share(firing, c) - share(quiet, c)), letters.index(c)))


def choose_letter(firing: list[str], quiet: list[str]) -> str:
    """The letter most typical of the firing tokens against the quiet ones."""
    return rank_letters(firing, quiet)[0]


@dataclass
class Fault:
    kind: str                         # "status", "sleep", "garbage", "drop", "reply", "trickle", "huge", "endless", "gzip"
    status: int = 500
    retry_after: str | None = None
    code: str | None = None
    seconds: float = 0.0              # "sleep": how long; "trickle": between bytes (default 1)
    content: str = ""
    message: str | None = None        # error message of a "status" fault
    size: int = 0                     # "huge", "gzip": bytes of the padded reply (gzip: before compression); "endless": bytes before hanging up
    head: bool = False                # "trickle": from the status line on, not only the body
    path: str | None = None           # only requests to this path (e.g. "/v1/chat/completions")
    when: Callable[[dict], bool] | None = None


def is_simulation(body: dict) -> bool:
    """A simulation request (completions or chat), not an explanation or a probe."""
    if "prompt" in body:
        return True
    messages = body.get("messages") or []
    last = (messages[-1].get("content") or "") if messages else ""
    return "\tunknown" in last or rated_token(last) is not None or json_request(last) is not None


def rated_token(text: str) -> str | None:
    """The token a one-token (token-by-token) prompt asks about: nx's or the paper's shape."""
    found = re.findall(r'\nToken to rate: "(.*)"\nActivation:\s*$', text)
    if found:
        return unescape(found[-1])
    start, end = text.rfind("\nLast token in the text:\n"), text.rfind("\n\nLast token activation, ")
    if start < 0 or end < start or not re.search(r"\n\nLast token activation, [^\n]*\n(?:<\|endofprompt\|>)?$", text):
        return None
    return text[start + len("\nLast token in the text:\n"):end]   # the paper's prompt: tokens unescaped


def classify(question: str) -> bool:
    """The fake's answer to a detection or fuzzing question: detection, whether any token has the
    explanation's letter; fuzzing, whether every marked token has it."""
    letter = letter_of(_explanation_in(question)) or "\0"
    text = question.split("\n")[1].split(": ", 1)[1]
    marked = re.findall(r"<<(.*?)>>", text)
    if "marked" in question.split("\n")[1]:
        return bool(marked) and all(letter in unescape(m).lower() for m in marked)
    return letter in unescape(text).lower()


def json_request(text: str) -> dict | None:
    """A JSON simulation request (nx's or the paper's): the object, if it is one."""
    try:
        request = json.loads(text)
    except ValueError:
        return None
    return request if isinstance(request, dict) and isinstance(request.get("activations"), list) else None


class FakeOpenAI:
    def __init__(self, api_key: str | None = None):
        self.api_key = api_key
        self.faults: list[Fault] = []
        self.requests: list[dict] = []
        self._asked: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def take_fault(self, path: str, body: dict) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if (fault.path is None or fault.path == path) and (fault.when is None or fault.when(body)):
                    return self.faults.pop(i)
        return None

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    # -- the "model" ---------------------------------------------------------------------
    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        model = body.get("model")
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]}
        if model not in MODELS:
            return 404, _error(f"The model `{model}` does not exist or you do not have access to it.",
                               "model_not_found")
        can = MODELS[model]
        if path == "/v1/completions":
            if "completions" not in can:
                return 404, _error("This is a chat model and not supported in the v1/completions endpoint.")
            if "logprobs-5" in can and (body.get("logprobs") or 0) > 5:
                return 400, _error("The maximum value for logprobs is 5.", "invalid_value")
            return 200, self._completion(body)
        if "reasoning" in can:
            if (body.get("n") or 1) > 1:
                return 400, _error("Unsupported value: 'n' must be 1 with this model.", "unsupported_value")
            if "max_tokens" in body:
                return 400, _error("Unsupported parameter: 'max_tokens' is not supported with this model. "
                                   "Use 'max_completion_tokens' instead.", "unsupported_parameter")
            if body.get("temperature") not in (None, 1, 1.0):
                return 400, _error("Unsupported value: 'temperature' does not support 0 with this model. "
                                   "Only the default (1) value is supported.", "unsupported_value")
        return 200, self._chat(body, with_logprobs=bool(body.get("logprobs")) and "chat-logprobs" in can)

    def _completion(self, body: dict) -> dict:
        prompt = body["prompt"]
        if not body.get("echo"):
            return self._one_token_completion(body)
        tokens = toy_tokens(prompt) + [("\n", len(prompt))]   # max_tokens=1: one generated token
        start = prompt.rfind("<start>")
        explanation = _explanation_in(prompt[:start])
        top: list = []
        for i, (token, offset) in enumerate(tokens):
            if i == 0:
                top.append(None)
            elif offset > start and token == "unknown" and tokens[i - 1][0] == "\t":
                line_start = prompt.rfind("\n", 0, offset) + 1
                shown = unescape(prompt[line_start:offset - 1])
                top.append(_logs(rule_distribution(explanation, shown)))
            else:
                top.append({token: -0.1})
        logprobs = {"tokens": [t for t, _ in tokens], "text_offset": [o for _, o in tokens],
                    "token_logprobs": [None] + [-0.5] * (len(tokens) - 1), "top_logprobs": top}
        return {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "text": prompt + "\n", "logprobs": logprobs,
                                                     "finish_reason": "length"}],
                "usage": _usage(len(tokens) - 1, 1)}

    def _one_token_completion(self, body: dict) -> dict:
        prompt = body["prompt"]
        token = rated_token(prompt)
        distribution = rule_distribution(_explanation_in(prompt), token) if token is not None else {"ok": 1.0}
        value = max(distribution, key=distribution.get)
        logprobs = {"tokens": [value], "text_offset": [len(prompt)], "token_logprobs": [math.log(distribution[value])],
                    "top_logprobs": [_logs(distribution)]}
        return {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "text": value, "logprobs": logprobs,
                                                     "finish_reason": "length"}],
                "usage": _usage(len(toy_tokens(prompt)), 1)}

    def _chat(self, body: dict, with_logprobs: bool) -> dict:
        last = (body.get("messages") or [{}])[-1].get("content") or ""
        prompt_tokens = sum(len(toy_tokens(m.get("content") or "")) for m in body.get("messages") or [])
        if not is_simulation(body) and ("<start>" in last or last.startswith("Tokens:")):
            return self._explanations(body, last, prompt_tokens)
        if last.endswith("Answer 1 (yes) or 0 (no).") and not is_simulation(body):
            yes = classify(last)
            text = "1" if yes else "0"
            logprob_content = [{"token": text, "logprob": math.log(0.9),
                                "top_logprobs": [{"token": text, "logprob": math.log(0.9)},
                                                 {"token": "0" if yes else "1", "logprob": math.log(0.1)}]}]
        elif rated_token(last) is not None:
            distribution = rule_distribution(_explanation_in(last), rated_token(last))
            text = max(distribution, key=distribution.get)
            logprob_content = [{"token": text, "logprob": math.log(distribution[text]),
                                "top_logprobs": [{"token": k, "logprob": math.log(p)} for k, p in distribution.items()]}]
        elif json_request(last) is not None:
            request = json_request(last)
            explanation = request.get("explanation") or request.get("to_find") or ""
            text = json.dumps({"activations": [{"token": e["token"], "activation": rule_sampled(explanation, e["token"])}
                                               for e in request["activations"]]})
            logprob_content = None
        elif is_simulation(body):
            text, logprob_content = self._simulate_chat(last)
        else:
            text, logprob_content = "ok", None
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                  "logprobs": {"content": logprob_content} if with_logprobs and logprob_content else None}
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": [choice],
                "usage": _usage(prompt_tokens, len(toy_tokens(text)))}

    def _explanations(self, body: dict, last: str, prompt_tokens: int) -> dict:
        """``n`` explanations: choice i names the i-th likeliest letter; asked again for one,
        the next letter each time."""
        ranked = self._explain_ranked(last)
        n = body.get("n") or 1
        if n == 1:
            with self._lock:
                seen = self._asked.get(last, 0)
                self._asked[last] = seen + 1
            letters = [ranked[seen % len(ranked)]]
        else:
            letters = ranked[:n]
        texts = [f"words containing the letter {letter}." for letter in letters]
        choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                    "logprobs": None} for i, text in enumerate(texts)]
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": choices,
                "usage": _usage(prompt_tokens, sum(len(toy_tokens(t)) for t in texts))}

    @staticmethod
    def _explain_ranked(request: str) -> list[str]:
        if request.startswith("Tokens:"):
            shown = ast.literal_eval("[" + request[len("Tokens:"):].split("\n")[0] + "]")
            return rank_letters(shown[:4], shown[4:])
        block = request[request.find("<start>"):].split("The same texts with")[0].split("Same activations, but")[0]
        firing, quiet = [], []
        for line in block.split("\n"):
            if "\t" in line:
                shown, value = line.rsplit("\t", 1)
                (firing if value.strip().isdigit() and int(value) > 0 else quiet).append(unescape(shown))
        return rank_letters(firing, quiet)

    @staticmethod
    def _simulate_chat(request: str) -> tuple[str, list]:
        explanation = _explanation_in(request)
        lines = request[request.rfind("<start>"):request.rfind("<end>")].split("\n")[1:]
        out, content = "<start>\n", [{"token": "<start>", "logprob": -0.01, "top_logprobs": []},
                                     {"token": "\n", "logprob": -0.01, "top_logprobs": []}]
        for line in lines:
            if "\t" not in line:
                continue
            shown = line.rsplit("\t", 1)[0]
            distribution = rule_distribution(explanation, unescape(shown))
            value = max((k for k in distribution if k.isdigit()), key=distribution.get)
            out += f"{shown}\t{value}\n"
            for piece in (shown, "\t"):
                content.append({"token": piece, "logprob": -0.01, "top_logprobs": [{"token": piece, "logprob": -0.01}]})
            content.append({"token": value, "logprob": math.log(distribution[value]),
                            "top_logprobs": [{"token": k, "logprob": math.log(p)} for k, p in distribution.items()]})
            content.append({"token": "\n", "logprob": -0.01, "top_logprobs": []})
        out += "<end>"
        content.append({"token": "<end>", "logprob": -0.01, "top_logprobs": []})
        return out, content


def _explanation_in(text: str) -> str:
    """The last explanation a simulation prompt states, in nx's shape or the paper's."""
    found = re.findall(r"(?:^|\n)this neuron fires on ([^\n]*)|behavior: the main thing this neuron does is find ([^\n]*)",
                       text)
    return "".join(found[-1]).strip() if found else ""


def _logs(distribution: dict[str, float]) -> dict[str, float]:
    return {k: math.log(p) for k, p in distribution.items()}


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error(message: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # Clients hang up on purpose here (timeouts, interrupted runs): not worth a traceback.
        pass


def _handler(fake: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True   # headers and body are separate writes: no 40 ms stalls

        def log_message(self, *args) -> None:   # keep pytest output clean
            pass

        def do_GET(self) -> None:
            self._serve({})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            self._serve(body)

        def _serve(self, body: dict) -> None:
            path = self.path.split("?")[0]
            auth = self.headers.get("Authorization", "")
            fake.requests.append({"path": path, "body": body, "auth": auth, "time": time.monotonic(),
                                  "accept_encoding": self.headers.get("Accept-Encoding", "")})
            try:
                if fake.api_key is not None and auth != f"Bearer {fake.api_key}":
                    given = auth.removeprefix("Bearer ")
                    return self._json(401, _error(f"Incorrect API key provided: {given}.", "invalid_api_key"))
                fault = fake.take_fault(path, body)
                if fault is not None and fault.kind not in ("reply", "trickle", "huge", "gzip"):
                    if self._fault(fault):
                        return
                status, payload = fake.answer(path, body)
                if fault is not None and fault.kind == "reply" and status == 200:
                    for choice in payload.get("choices", []):
                        if "message" in choice:
                            choice["message"]["content"] = fault.content
                            choice["logprobs"] = None
                        else:
                            choice["logprobs"] = None
                if fault is not None and fault.kind in ("trickle", "huge", "gzip"):
                    return self._deliver(fault, status, json.dumps(payload).encode())
                self._json(status, payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _fault(self, fault: Fault) -> bool:
            """Act out a fault; True if the request is answered (or dropped) by it."""
            if fault.kind == "sleep":
                time.sleep(fault.seconds)
                return False
            if fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return True
            if fault.kind == "garbage":
                self._send(200, b"<html>upstream hiccup</html", "application/json")
                return True
            if fault.kind == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk, sent = b" " * 65536, 0   # whitespace: a valid start of JSON, for ever
                while sent < (fault.size or ENDLESS_VALVE):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)   # no last chunk: the body never ends
                return True
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._json(fault.status, _error(fault.message or f"injected {fault.status}", fault.code), headers)
            return True

        def _deliver(self, fault: Fault, status: int, data: bytes) -> None:
            """The true reply, padded with leading whitespace to ``size`` bytes or trickled."""
            if fault.kind == "huge":
                return self._send(status, b" " * max(0, fault.size - len(data)) + data, "application/json")
            if fault.kind == "gzip":  # compressed; padded to ``size`` bytes before compression
                padded = b" " * max(0, fault.size - len(data)) + data
                return self._send(status, gzip.compress(padded, compresslevel=9), "application/json",
                                  {"Content-Encoding": "gzip"})
            head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n").encode()
            reply = head + data
            start = 0 if fault.head else len(head)
            self.wfile.write(reply[:start])
            for i in range(start, len(reply)):   # until the reply is out or the client hangs up
                self.wfile.write(reply[i:i + 1])
                time.sleep(fault.seconds or 1.0)

        def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", headers)

        def _send(self, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
