"""Sources other than a local directory: https:// and az:// (Azurite), and an az:// warehouse."""
from __future__ import annotations

import functools
import http.server
import threading

import pytest

import nx.ingest
from ingest_helpers import nan_aware_equal, table_rows

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:
    from azurite import azurite  # noqa: F401


@pytest.fixture
def https_like_source(source_tree):
    """The source tree served over plain HTTP on 127.0.0.1 (fsspec's HTTP filesystem)."""
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=source_tree["root"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_source_is_read_for_the_given_layers_and_neurons(https_like_source, ingested, tmp_path):
    warehouse = str(tmp_path / "w")
    report = nx.ingest.run(["collated-activations", "explanations", "token-lookups"], source=https_like_source, warehouse=warehouse,
                           layers="0-1", neurons="0-3", workers=1)
    assert report.kinds["explanations"].missing == 1  # the hole, a 404
    assert report.kinds["token-lookups"].malformed == 2
    for table in ("explanations", "token_lookups"):
        assert table_rows(warehouse, table) == table_rows(ingested["warehouse"], table)


@pytest.mark.azurite
def test_public_azure_container_is_ingested_anonymously(azurite, source_tree, ingested, tmp_path, monkeypatch):
    azurite.create_container("neuron-explainer", public=True)
    azurite.upload_tree(source_tree["root"], "neuron-explainer", prefix="data")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.anonymous_connection_string)
    warehouse = str(tmp_path / "w")
    report = nx.ingest.run(source=f"az://{azurite.account}/neuron-explainer/data", warehouse=warehouse, workers=2)
    assert report.kinds["collated-activations"].ok == len(source_tree["ok"]["collated-activations"])
    assert report.kinds["explanations"].missing == 1  # found by listing: a gap below the largest neuron
    for table in ("neurons", "activation_records", "explanations", "token_weights"):
        assert nan_aware_equal(table_rows(warehouse, table), table_rows(ingested["warehouse"], table)), table


@pytest.mark.azurite
def test_warehouse_can_live_on_azure(azurite, source_tree, ingested, monkeypatch):
    azurite.create_container("warehouse", public=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    warehouse = f"az://{azurite.account}/warehouse/nx"
    report = nx.ingest.run(["token-lookups", "related-neurons"], source=source_tree["root"],
                           warehouse=warehouse, workers=2)
    assert report.kinds["token-lookups"].ok == len(source_tree["ok"]["token-lookups"])
    for table in ("token_lookups", "related_neurons"):
        assert table_rows(warehouse, table) == table_rows(ingested["warehouse"], table)
    again = nx.ingest.run(["token-lookups"], source=source_tree["root"], warehouse=warehouse, workers=1)
    assert again.kinds["token-lookups"].skipped == report.kinds["token-lookups"].ok + report.kinds["token-lookups"].malformed


@pytest.fixture
def flaky_source(source_tree):
    """The source over HTTP, where every file fails twice with a 500 before it is served."""
    failures: dict[str, int] = {}

    class FlakyHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if failures.get(self.path, 0) < 2:
                failures[self.path] = failures.get(self.path, 0) + 1
                self.send_error(500, "try again")
                return
            super().do_GET()

    handler = functools.partial(FlakyHandler, directory=source_tree["root"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", failures
    server.shutdown()


def test_transient_server_errors_are_retried_before_a_file_is_missing(flaky_source, ingested, tmp_path, monkeypatch):
    from nx.ingest import source as source_module

    monkeypatch.setattr(source_module, "BACKOFF_SECONDS", 0.01)
    url, failures = flaky_source
    warehouse = str(tmp_path / "w")
    report = nx.ingest.run(["token-lookups"], source=url, warehouse=warehouse, layers="0", neurons="0-3", workers=1)
    assert report.kinds["token-lookups"].ok == 4 and report.complete
    assert all(count == 2 for count in failures.values()) and len(failures) == 4
    assert table_rows(warehouse, "token_lookups") == [r for r in table_rows(ingested["warehouse"], "token_lookups")
                                                      if r["layer"] == 0]


@pytest.mark.azurite
def test_container_that_refuses_listing_is_read_by_enumerating(azurite, source_tree, ingested, tmp_path, monkeypatch):
    azurite.create_container("reads-only", public="blob")
    azurite.upload_tree(source_tree["root"], "reads-only", prefix="data")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.anonymous_connection_string)
    warehouse = str(tmp_path / "w")
    report = nx.ingest.run(["token-weights", "explanations"], source=f"az://{azurite.account}/reads-only/data",
                           warehouse=warehouse, layers="0-1", neurons="0-3", workers=1)
    assert report.kinds["token-weights"].ok == len(source_tree["ok"]["token-weights"])
    assert report.kinds["explanations"].missing == 1
    assert table_rows(warehouse, "token_weights") == table_rows(ingested["warehouse"], "token_weights")


@pytest.mark.azurite
def test_private_container_read_anonymously_is_unreachable(azurite, source_tree, tmp_path, monkeypatch):
    from nx.errors import SourceError

    azurite.create_container("private-source", public=False)
    azurite.upload_tree(source_tree["root"], "private-source", prefix="data")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.anonymous_connection_string)
    from nx.ingest import source as source_module

    monkeypatch.setattr(source_module, "BACKOFF_SECONDS", 0.01)
    with pytest.raises(SourceError, match="cannot list"):
        nx.ingest.run(["token-weights"], source=f"az://{azurite.account}/private-source/data",
                      warehouse=str(tmp_path / "w"), layers="0", neurons="0", workers=1)
