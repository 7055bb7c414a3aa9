"""Faults: transient ones are retried with backoff (Retry-After honoured); a reply that cannot
be read fails that neuron with its reason and no score, and the run goes on; what fails for
every neuron (quota, key) stops the run; failed neurons are retried on resume. ``--timeout``
bounds each whole reply (a trickle is a timeout), and a reply over the size cap fails at once."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, MODEL
from fake_openai import Fault, is_simulation
from nx.explain.client import MAX_REPLY_BYTES

SIMULATE = "/v1/completions"


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch):
    monkeypatch.setattr("nx.explain.client.BACKOFF_SECONDS", 0.02)


def _run(fake, warehouse, run="faulty", neurons=(0, 1, 2), **options):
    arguments = dict(warehouse=warehouse, layers=[LAYER], neurons=list(neurons), run=run,
                     explainer_model="fake-chat", simulator_model="fake-completion",
                     simulator="all-at-once", base_url=fake.url, concurrency=2)
    arguments.update(options)
    return nx.explain.run(**arguments)


def _explanations(warehouse, run="faulty") -> dict[int, dict]:
    rows = warehouse.read_table("explanations", {"model": MODEL, "run": run}).to_pylist()
    neurons = [row["neuron"] for row in rows]
    assert len(neurons) == len(set(neurons)), "a neuron appears twice"
    return {row["neuron"]: row for row in rows}


def _for_neuron(word: str):
    """Matches the simulation requests of the neuron explained with this letter."""
    def matches(body: dict) -> bool:
        text = body.get("prompt") or ((body.get("messages") or [{}])[-1].get("content") or "")
        return is_simulation(body) and f"the letter {word}\n" in text
    return matches


def test_rate_limited_requests_are_retried_after_retry_after(fake, warehouse):
    fake.inject(*[Fault("status", status=429, retry_after="0.3", path=SIMULATE) for _ in range(3)])
    report = _run(fake, warehouse, neurons=[0], concurrency=1)
    assert (report.ok, report.failed, report.retries) == (1, 0, 3)
    times = [r["time"] for r in fake.requests if r["path"] == SIMULATE]
    # The probe's completion met the three 429s; each retry waited what Retry-After said.
    assert all(later - earlier >= 0.29 for earlier, later in zip(times[:3], times[1:4]))
    assert _explanations(warehouse)[0]["status"] == "ok"


def test_server_errors_timeouts_and_dropped_connections_are_retried(fake, warehouse):
    fake.inject(Fault("status", status=500, path=SIMULATE, when=is_simulation),
                Fault("status", status=503, retry_after="0", path=SIMULATE),
                Fault("sleep", seconds=1.5, path=SIMULATE),
                Fault("drop", path=SIMULATE),
                Fault("drop", path="/v1/chat/completions"))
    report = _run(fake, warehouse, timeout=0.5)
    assert (report.ok, report.failed, report.retries) == (3, 0, 5)
    assert {row["status"] for row in _explanations(warehouse).values()} == {"ok"}


def test_unparseable_response_marks_neuron_failed_without_score(fake, warehouse):
    # The first simulation of neuron 1 (letter x) gets a body that is not JSON.
    fake.inject(Fault("garbage", path=SIMULATE, when=_for_neuron("x")))
    report = _run(fake, warehouse)
    assert (report.ok, report.failed) == (2, 1)
    assert report.failures[0]["neuron"] == 1 and "not JSON" in report.failures[0]["error"]
    rows = _explanations(warehouse)
    failed = rows[1]
    assert failed["status"] == "failed" and "not JSON" in failed["error"]
    assert all(failed[c] is None for c in ("score", "ev_correlation_score", "rsquared_score",
                                            "absolute_dev_explained_score", "top_only_score",
                                            "random_only_score", "explanation"))
    assert rows[0]["status"] == rows[2]["status"] == "ok"
    sequences = warehouse.read_table("explanation_sequences", {"model": MODEL, "run": "faulty"})
    assert sorted(set(sequences["neuron"].to_pylist())) == [0, 2]
    assert "1 failed" in str(report) and "failed: layer 9 neuron 1" in str(report)


def test_chat_reply_in_the_wrong_format_marks_neuron_failed(fake, warehouse):
    fake.inject(Fault("reply", content="I'm sorry, I can't help with that.",
                      path="/v1/chat/completions", when=_for_neuron("x")))
    report = _run(fake, warehouse, simulator="sampling", simulator_model="fake-chat")
    assert report.failed == 1
    failed = _explanations(warehouse)[1]
    assert failed["status"] == "failed" and "has no number" in failed["error"] and failed["score"] is None


@pytest.mark.parametrize("content, reason", [
    ('{"activations": [{"token": " the", "activation": 3}]}', "1 activations for 16 tokens"),
    ('{"activations": ', "not JSON"),
])
def test_json_reply_that_does_not_fit_fails_the_neuron_never_zeros(fake, warehouse, content, reason):
    fake.inject(Fault("reply", content=content, path="/v1/chat/completions",
                      when=lambda body: is_simulation(body) and 'letter x"' in body["messages"][-1]["content"]))
    report = _run(fake, warehouse, simulator="json", simulator_model="fake-chat")
    assert (report.ok, report.failed) == (2, 1)
    failed = _explanations(warehouse)[1]
    assert failed["status"] == "failed" and reason in failed["error"] and failed["score"] is None
    sequences = warehouse.read_table("explanation_sequences", {"model": MODEL, "run": "faulty"})
    assert 1 not in sequences["neuron"].to_pylist()
    again = _run(fake, warehouse, simulator="json", simulator_model="fake-chat")
    assert (again.ok, again.skipped) == (1, 2) and _explanations(warehouse)[1]["status"] == "ok"


def test_token_by_token_reply_without_a_digit_fails_the_neuron(fake, warehouse):
    fake.inject(Fault("reply", content="maybe", path="/v1/chat/completions", when=_for_neuron("x")))
    report = _run(fake, warehouse, simulator="token-by-token", simulator_model="fake-chat")
    assert (report.ok, report.failed) == (2, 1)
    failed = _explanations(warehouse)[1]
    assert failed["status"] == "failed" and "top logprobs" in failed["error"] and failed["score"] is None


def test_exhausted_retries_mark_neuron_failed_and_resume_retries_it(fake, warehouse):
    fake.inject(*[Fault("status", status=502, path=SIMULATE, when=_for_neuron("z")) for _ in range(30)])
    report = _run(fake, warehouse, max_retries=2)
    fake.faults.clear()
    assert (report.ok, report.failed) == (2, 1)
    failed = _explanations(warehouse)[2]
    assert failed["status"] == "failed" and "HTTP 502" in failed["error"] and "gave up after 3 attempts" in failed["error"]
    assert failed["score"] is None
    runs = warehouse.read_table("runs").to_pylist()[0]
    assert (runs["neurons_ok"], runs["neurons_failed"]) == (2, 1)

    again = _run(fake, warehouse, max_retries=2)
    assert (again.ok, again.failed, again.skipped) == (1, 0, 2)
    rows = _explanations(warehouse)
    assert {row["status"] for row in rows.values()} == {"ok"} and rows[2]["score"] is not None
    runs = warehouse.read_table("runs").to_pylist()[0]
    assert (runs["neurons_ok"], runs["neurons_failed"]) == (3, 0)


def test_exhausted_quota_stops_the_run_and_stores_no_score(fake, warehouse):
    fake.inject(Fault("status", status=429, code="insufficient_quota", path=SIMULATE, when=_for_neuron("q"),
                      message="You exceeded your current quota, please check your plan and billing details."))
    report = _run(fake, warehouse, neurons=range(6), concurrency=1)
    assert report.stopped and "quota" in report.stopped
    assert report.failed == 1 and report.ok == 0 and report.remaining == 5
    rows = _explanations(warehouse)
    assert list(rows) == [0] and rows[0]["status"] == "failed" and rows[0]["score"] is None
    assert "stopped early" in str(report)

    resumed = _run(fake, warehouse, neurons=range(6), concurrency=1)
    assert (resumed.ok, resumed.failed, resumed.skipped) == (6, 0, 0)
    assert len(_explanations(warehouse)) == 6


@pytest.mark.parametrize("concurrency", [1, 2])
def test_concurrent_neurons_each_written_once(fake, warehouse, concurrency):
    fake.inject(Fault("status", status=500, retry_after="0", path=SIMULATE, when=_for_neuron("k")))
    report = _run(fake, warehouse, neurons=range(6), concurrency=concurrency, batch_size=2)
    assert (report.ok, report.failed) == (6, 0)
    assert sorted(_explanations(warehouse)) == list(range(6))
    sequences = warehouse.read_table("explanation_sequences", {"model": MODEL, "run": "faulty"})
    assert len(sequences) == 60


@pytest.mark.parametrize("head", [False, True], ids=["body", "status-line"])
def test_a_reply_trickled_past_the_timeout_fails_its_neuron_and_the_run_goes_on(fake, warehouse, head):
    # 1 byte/s never trips a read timeout (each read gets a byte within 2 s): only a bound on the
    # whole reply stops it. Before that bound this command ran for hours; it runs as a process so
    # that such a hang is killed.
    fake.inject(*[Fault("trickle", head=head, path=SIMULATE, when=_for_neuron("z")) for _ in range(30)])
    command = [sys.executable, "-m", "nx", "explain", "--layers", str(LAYER), "--neurons", "0-2",
               "--run", "faulty", "--explainer-model", "fake-chat", "--simulator-model", "fake-completion",
               "--base-url", fake.url, "-w", warehouse.url, "--timeout", "2", "--max-retries", "1",
               "--json", "-q"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                          cwd=Path(__file__).parents[2], env={**os.environ, "OPENAI_API_KEY": "sk-test"})
    assert time.monotonic() - started < 60, "the run finished, but not well within its timeouts"
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["ok"], report["failed"]) == (2, 1)
    failed = _explanations(warehouse)[2]
    assert failed["status"] == "failed" and failed["score"] is None
    assert "timed out" in failed["error"] and "gave up after 2 attempts" in failed["error"]


def test_a_reply_over_the_size_cap_fails_that_request_at_once(fake, warehouse):
    # Declared by Content-Length: refused before its body is read; the cap itself is allowed.
    fake.inject(Fault("huge", size=MAX_REPLY_BYTES, path=SIMULATE, when=_for_neuron("x")),
                Fault("huge", size=MAX_REPLY_BYTES + 1, path=SIMULATE, when=_for_neuron("z")))
    report = _run(fake, warehouse)
    assert (report.ok, report.failed, report.retries) == (2, 1, 0)
    failed = _explanations(warehouse)[2]
    assert failed["status"] == "failed" and failed["score"] is None
    assert "larger than 16 MiB" in failed["error"] and "\n" not in failed["error"]


def test_a_compressed_reply_is_read_and_one_that_inflates_past_the_cap_fails(fake, warehouse):
    # gzip: 16 MiB of spaces compress to ~16 KB, so the cap must count what comes out.
    fake.inject(Fault("gzip", size=1000, path=SIMULATE, when=_for_neuron("x")),
                Fault("gzip", size=64 * MAX_REPLY_BYTES, path=SIMULATE, when=_for_neuron("z")))
    report = _run(fake, warehouse)
    assert (report.ok, report.failed, report.retries) == (2, 1, 0)
    failed = _explanations(warehouse)[2]
    assert failed["status"] == "failed" and "larger than 16 MiB" in failed["error"]
    assert {r["accept_encoding"] for r in fake.requests} == {"gzip, deflate"}  # nothing it could not inflate


def test_an_endless_reply_fails_at_the_size_cap_and_the_run_goes_on(fake, warehouse):
    # A chunked body with no end: counted as it arrives (before the cap it was read until the
    # fake's safety valve hung up, then retried as a dropped connection).
    fake.inject(Fault("endless", path=SIMULATE, when=_for_neuron("z")))
    started = time.monotonic()
    report = _run(fake, warehouse, timeout=30)   # far above what 16 MiB takes here: the cap must stop it
    assert time.monotonic() - started < 60
    assert (report.ok, report.failed, report.retries) == (2, 1, 0)
    failed = _explanations(warehouse)[2]
    assert failed["status"] == "failed" and "larger than 16 MiB" in failed["error"]


def _encoded_reply_server(data: bytes, encoding: str):
    """An HTTP server on 127.0.0.1 that answers every GET with ``data`` under ``encoding``."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("data, encoding, says", [
    (gzip.compress(b'{"data": []}')[:-12], "gzip", "compressed reply is cut short"),
    (b"not gzip at all", "gzip", "compressed reply cannot be inflated"),
    (b'{"data": []}', "br", "encoded as 'br', which nx does not read"),
])
def test_a_compressed_reply_that_cannot_be_read_fails_in_one_line(data, encoding, says):
    import asyncio

    from nx.explain.client import Client, RequestFailed

    server = _encoded_reply_server(data, encoding)

    async def ask():
        client = Client(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="k", timeout=10,
                        max_retries=0)
        try:
            return await client._call("models", {})
        finally:
            await client.close()

    try:
        with pytest.raises(RequestFailed, match=says) as failed:
            asyncio.run(ask())
        assert "\n" not in str(failed.value)
    finally:
        server.shutdown()
        server.server_close()
