"""A source the network does not lead to: nx says at once what it is reaching, and gives up
within seconds (a refused connection) or REACH_SECONDS (a host that never answers) with one
line naming the whole location, the cause and the way out (--source a local copy)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import nx.ingest
from nx import storage
from nx.errors import SourceError
from nx.ingest import runner, source
from nx.progress import CountingProgress

PUBLIC = "az://openaipublic/neuron-explainer/data"


def endpoint(port: int) -> str:
    """A connection string that sends the public account's requests to 127.0.0.1:port."""
    return (f"DefaultEndpointsProtocol=http;AccountName=openaipublic;AccountKey=a2V5;"
            f"BlobEndpoint=http://127.0.0.1:{port}/openaipublic;")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again on leaving: connecting is refused


@pytest.fixture
def blackhole():
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection in held:
        connection.close()


def test_nx_ingest_without_a_network_says_so_within_seconds(tmp_path):
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": endpoint(closed_port())}
    env.pop("NX_SOURCE", None)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "nx", "ingest", "--all", "-w", str(tmp_path / "w")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert time.monotonic() - started < 45
    assert (result.returncode, result.stdout) == (3, "")
    first, error = result.stderr.splitlines()
    assert first == f"nx: reaching {PUBLIC} (giving up after {source.REACH_SECONDS} s without an answer)"
    assert error.startswith(f"nx: error: cannot reach {PUBLIC}: ")
    assert "127.0.0.1" in error and error.endswith("give --source a local copy of the files in the public layout")


def test_a_host_that_never_answers_is_given_up_after_reach_seconds(blackhole, monkeypatch, tmp_path):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", endpoint(blackhole))
    monkeypatch.setattr(source, "REACH_SECONDS", 2)
    monkeypatch.setattr(runner, "REACH_SECONDS", 2)
    progress = CountingProgress()
    started = time.monotonic()
    with pytest.raises(SourceError) as error:
        nx.ingest.run(warehouse=str(tmp_path / "w"), workers=1, progress=progress)
    assert time.monotonic() - started < 15
    assert progress.notes == [f"reaching {PUBLIC} (giving up after 2 s without an answer)"]
    assert str(error.value) == (f"cannot reach {PUBLIC}: no answer in 2 s; without a network, give --source a "
                                "local copy of the files in the public layout")
    assert not os.path.exists(tmp_path / "w" / "_ingest")  # nothing was written


def test_azure_locations_are_shown_with_their_account():
    location = storage.Location("az://acct/box/data", None, "box/data", "az", "acct")
    assert location.shown("box/data/explanations/0") == "az://acct/box/data/explanations/0"
    assert location.url_of("box/data/explanations/0") == "az://box/data/explanations/0"  # what DuckDB opens
