"""``nx serve``: its options, the warning when exposed, a clear error for a missing warehouse,
and the viewer over an az:// warehouse (Azurite)."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

import nx.ingest
import nx.web
from fake_socket import FakeSocket
from web_helpers import SAMPLE, RunningServer

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:                    # tests/ itself on sys.path
    from azurite import azurite  # noqa: F401


def test_serve_help_lists_its_options():
    shown = subprocess.run([sys.executable, "-m", "nx", "serve", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0
    for option in ("--warehouse", "--port", "--host", "--workers", "--query-timeout"):
        assert option in shown.stdout


def test_a_missing_warehouse_is_one_line_and_exit_3(tmp_path):
    failed = subprocess.run([sys.executable, "-m", "nx", "serve", "-w", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 3
    assert "no warehouse at" in failed.stderr and "Traceback" not in failed.stderr


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                          ("0.0.0.0", True), ("192.0.2.10", True)])
def test_exposing_the_viewer_warns(sample_warehouse, monkeypatch, host, warned):
    calls, lines = [], []
    monkeypatch.setattr("nx.web.listen_socket", lambda host, port: FakeSocket(port))
    monkeypatch.setattr("uvicorn.Server.run", lambda server, sockets: calls.append((server.config, sockets)))
    nx.web.serve(sample_warehouse, host=host, port=8123, log=lines.append)
    assert calls[0][0].host == host and calls[0][1][0].getsockname()[1] == 8123
    assert any("warning" in line for line in lines) == warned
    assert any("http://" in line and ":8123/" in line for line in lines)


def test_a_busy_port_is_one_line_and_exit_3_before_any_url(sample_warehouse):
    with socket.socket() as other:  # another program listening on the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        failed = subprocess.run([sys.executable, "-m", "nx", "serve", "-w", sample_warehouse, "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert failed.returncode == 3
    assert failed.stderr.count("\n") == 1 and f"port {port} of 127.0.0.1 is in use" in failed.stderr
    assert "http://" not in failed.stderr and "Traceback" not in failed.stderr


def test_the_announced_address_takes_connections_before_the_server_has_started():
    """The URL is printed before uvicorn runs: a browser that follows it at once waits in the
    listening socket's backlog instead of being refused."""
    sock = nx.web.listen_socket("127.0.0.1", 0)
    with sock, socket.create_connection(sock.getsockname(), timeout=5) as client:
        accepted, _ = sock.accept()  # what uvicorn does once it runs
        with accepted:
            client.sendall(b"ping")
            assert accepted.recv(4) == b"ping"


def test_port_0_announces_the_port_it_got(sample_warehouse):
    server = subprocess.Popen([sys.executable, "-m", "nx", "serve", "-w", sample_warehouse, "--port", "0"],
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = server.stderr.readline()
        found = re.search(r"at http://127\.0\.0\.1:(\d+)/ ", line)
        assert found and int(found.group(1)) > 0, line
        url = f"http://127.0.0.1:{found.group(1)}"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"{url}/index.json", timeout=30)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the announced port never answered"
                time.sleep(0.1)
        assert answer.status_code == 200 and answer.json()["runs"]
    finally:
        server.terminate()
        server.wait(20)


@pytest.mark.azurite
def test_the_viewer_over_an_azure_warehouse(azurite, monkeypatch):
    azurite.create_container("web-warehouse", public=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    url = f"az://{azurite.account}/web-warehouse/nx"
    assert nx.ingest.run(source=str(SAMPLE), warehouse=url, workers=1).complete
    with RunningServer(url) as server:
        neuron = httpx.get(f"{server.url}/neuron/0/2.json", timeout=60).json()
        assert neuron["explanations"][0]["explanation"] == "references to dog and cat"
        assert len(neuron["top_records"]) == 20 and neuron["upstream"] + neuron["downstream"]
        assert httpx.get(f"{server.url}/neuron/0/2", timeout=60).status_code == 200
        assert httpx.get(f"{server.url}/search.json?q=dog", timeout=60).json()["total"] == 3
        rows = httpx.get(f"{server.url}/sql.json", params={"q": "select count(*) as n from explanations"},
                         timeout=60).json()["rows"]
        assert rows == [{"n": 18}]
        refused = httpx.get(f"{server.url}/sql.json", params={"q": "select * from read_csv('/etc/passwd')"}, timeout=60)
        assert refused.status_code == 400
