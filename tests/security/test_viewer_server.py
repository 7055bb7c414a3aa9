"""The viewer's server: clients that connect and never finish a request's head cannot hold
its places (uvicorn answers 503 past ``limit_concurrency`` connections), and a name given
with ``nx serve --host NAME`` is one the viewer answers to."""
from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

import nx.web
from fake_socket import FakeSocket

LIMIT = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def small_server(sample_root):
    """The viewer as ``nx serve`` configures it, with 20 places and a 1 s deadline for a head."""
    port = free_port()
    config = nx.web.server_config(nx.web.create_app(sample_root), "127.0.0.1", port, limit_concurrency=LIMIT,
                                  header_timeout=1.0)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the viewer did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", port
    server.should_exit = True
    thread.join(10)


def closed(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_half_sent_requests_cannot_hold_every_place(small_server):
    url, port = small_server
    idle = []
    for i in range(LIMIT + 5):
        sock = socket.create_connection(("127.0.0.1", port))
        if i % 2:  # half a request; the others send nothing at all
            sock.sendall(b"GET /neuron/0/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        idle.append(sock)
    time.sleep(0.2)
    assert httpx.get(url + "/index.json", timeout=10).status_code == 503  # every place is held
    time.sleep(2.0)  # past the 1 s deadline
    assert httpx.get(url + "/index.json", timeout=10).status_code == 200
    assert all(closed(sock) for sock in idle)
    for sock in idle:
        sock.close()


def test_a_trickled_request_head_is_cut_at_the_deadline(small_server):
    _, port = small_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        head = b"GET /index.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        try:
            for byte in head:  # a byte every 0.1 s: each resets uvicorn's own keep-alive timer
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed(sock) and time.monotonic() - started < 5


def test_a_slow_statement_is_not_cut_by_the_deadline(small_server):
    url, _ = small_server
    answer = httpx.get(url + "/sql.json", params={"q": "select count(*) as n from range(200000000)"}, timeout=60)
    assert answer.status_code == 200 and answer.json()["rows"] == [{"n": 200000000}]


def test_a_name_given_with_host_is_answered(sample_root, monkeypatch):
    configs = []
    monkeypatch.setattr("nx.web.listen_socket", lambda host, port: FakeSocket(port))
    monkeypatch.setattr("uvicorn.Server.run", lambda server, sockets=None: configs.append(server.config))
    nx.web.serve(sample_root, host="viewer.lab.example", port=8123, log=lambda line: None)
    [config] = configs
    assert config.header_timeout > 0 and config.http is not None
    with TestClient(config.app) as client:
        assert client.get("/neuron/0/1.json", headers={"host": "viewer.lab.example:8123"}).status_code == 200
        assert client.get("/neuron/0/1.json", headers={"host": "other.lab.example"}).status_code == 421
