"""nx/blob_reader.py, the standard-library Azure Blob client that lists an az:// warehouse's logs
and fetches its files into the cache: it reads Azurite with every kind of credential nx takes,
treats a hostile server's replies as input (one-line errors, never a hang), and spares a warm
``nx sql`` over az:// the import of adlfs, azure and aiohttp."""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

import nx
import nx.ingest
from nx import blob_reader, delta_log
from nx.errors import WarehouseError
from query_fixtures import azure_explanations, sorted_rows  # noqa: F401  (fixture)

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:                    # tests/ itself on sys.path
    from azurite import azurite  # noqa: F401

# Names Azure allows that URL encoding must get right.
BLOBS = {"dir/plain.json": b"{}\n", "dir/key=value.json": b"x" * 300, "dir/100% sure.bin": b"\x00\xff" * 7,
         "dir/a b/inner.txt": b"below", "dir/empty": b"", "other/file.txt": b"elsewhere"}


@pytest.fixture(scope="module")
def containers(azurite):
    """A private and a public container holding ``BLOBS``."""
    for name, public in (("reader-private", False), ("reader-public", True)):
        azurite.create_container(name, public=public)
        client = azurite.service_client().get_container_client(name)
        for blob, data in BLOBS.items():
            client.upload_blob(blob, data, overwrite=True)
    return azurite


def listed(reader: blob_reader.BlobReader, path: str) -> dict:
    return {entry["name"]: (entry["size"], entry["type"]) for entry in reader.ls(path, detail=True)}


def expect_everything(reader: blob_reader.BlobReader, container: str) -> None:
    assert listed(reader, f"{container}/dir") == {
        f"{container}/dir/plain.json": (3, "file"), f"{container}/dir/key=value.json": (300, "file"),
        f"{container}/dir/100% sure.bin": (14, "file"), f"{container}/dir/empty": (0, "file"),
        f"{container}/dir/a b": (0, "directory")}
    for blob, data in BLOBS.items():
        assert reader.cat_file(f"{container}/{blob}") == data
    assert reader.cat_file(f"az://{container}/dir/key=value.json") == BLOBS["dir/key=value.json"]


def sas_token(azurite, container: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(azurite.account, container, account_key=azurite.key,
                                  permission=ContainerSasPermissions(read=True, list=True),
                                  expiry=datetime.now(timezone.utc) + timedelta(hours=1))


@pytest.mark.azurite
def test_a_connection_string_with_an_account_key_lists_and_reads(containers, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", containers.connection_string)
    expect_everything(blob_reader.for_account(containers.account), "reader-private")


@pytest.mark.azurite
def test_an_account_key_from_the_environment_signs_requests(containers, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", containers.key)
    expect_everything(blob_reader.for_account(containers.account, containers.blob_endpoint), "reader-private")


@pytest.mark.azurite
def test_a_sas_token_reads_from_the_environment_or_a_connection_string(containers, monkeypatch):
    token = sas_token(containers, "reader-private")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "?" + token)
    expect_everything(blob_reader.for_account(containers.account, containers.blob_endpoint), "reader-private")
    monkeypatch.delenv("AZURE_STORAGE_SAS_TOKEN")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"BlobEndpoint={containers.blob_endpoint};SharedAccessSignature={token}")
    reader = blob_reader.for_account(containers.account)
    expect_everything(reader, "reader-private")
    with pytest.raises(FileNotFoundError) as missing:  # an error names the URL, never the token
        reader.cat_file("reader-private/dir/missing.json")
    assert "sig=" not in str(missing.value) and "/reader-private/dir/missing.json" in str(missing.value)


@pytest.mark.azurite
def test_a_public_container_is_read_anonymously(containers, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", containers.anonymous_connection_string)
    expect_everything(blob_reader.for_account(containers.account), "reader-public")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    expect_everything(blob_reader.for_account(containers.account, containers.blob_endpoint), "reader-public")


@pytest.mark.azurite
def test_a_private_container_without_credentials_is_a_one_line_error(containers, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", containers.anonymous_connection_string)
    reader = blob_reader.for_account(containers.account)
    with pytest.raises(OSError) as refused:
        reader.ls("reader-private/dir")
    assert not isinstance(refused.value, FileNotFoundError)
    message = str(refused.value)
    assert "\n" not in message and "403" in message and "/reader-private" in message
    with pytest.raises(WarehouseError) as failed:
        delta_log.LogFiles("reader-private/dir", reader).listing()
    assert "\n" not in str(failed.value) and str(failed.value).startswith("cannot list reader-private/dir/_delta_log")


@pytest.mark.azurite
def test_a_listing_of_many_pages_is_followed_to_its_end(containers, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", containers.connection_string)
    whole = listed(blob_reader.for_account(containers.account), "reader-private/dir")
    assert listed(blob_reader.for_account(containers.account, page_size=2), "reader-private/dir") == whole


@pytest.mark.azurite
def test_what_is_not_there_is_file_not_found(containers, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", containers.connection_string)
    reader = blob_reader.for_account(containers.account)
    for missing in ("reader-private/nothing", "reader-private/dir/plain", "no-such-container/dir"):
        with pytest.raises(FileNotFoundError):
            reader.ls(missing)
    with pytest.raises(FileNotFoundError):
        reader.cat_file("reader-private/dir/missing.json")
    assert delta_log.LogFiles("reader-private/no-table", reader).listing() == {}


def test_its_protocols_are_adlfs_s():
    import adlfs

    assert blob_reader.BlobReader.protocol == blob_reader.PROTOCOLS == tuple(adlfs.AzureBlobFileSystem.protocol)


# -- a hostile server ----------------------------------------------------------------------
def listing(*blobs: tuple[str, str], marker: str = "", before: str = "") -> bytes:
    entries = "".join(f"<Blob><Name>{name}</Name><Properties><Content-Length>{size}</Content-Length>"
                      f"</Properties></Blob>" for name, size in blobs)
    return (f'<?xml version="1.0" encoding="utf-8"?>{before}<EnumerationResults ContainerName="c"><Blobs>'
            f"{entries}</Blobs><NextMarker>{marker}</NextMarker></EnumerationResults>").encode()


class Hostile(http.server.BaseHTTPRequestHandler):
    """Answers as ``self.server.behaviour`` says; counts the requests."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802  (http.server's name)
        self.server.requests += 1
        kind, payload = self.server.behaviour
        try:
            if kind == "status":
                self.send_response(payload)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif kind == "body":
                self.reply(payload, len(payload))
            elif kind == "declared":  # a Content-Length the body does not have
                body, declared = payload
                self.reply(body, declared)
                self.close_connection = True
            elif kind == "endless":  # no Content-Length, bytes until the client gives up
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                while True:
                    self.wfile.write(b"<Blob>" * 10_000)
            elif kind == "silent":  # nothing before the client's timeout
                time.sleep(payload)
            elif kind == "drip":  # the status line a byte at a time, forever
                for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 10_000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            elif kind == "drip-body":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(100_000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def reply(self, body: bytes, declared: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def reader_of(server, retries: int = 0) -> blob_reader.BlobReader:
    return blob_reader.BlobReader("acct", f"http://127.0.0.1:{server.server_port}/acct", timeout=0.5, retries=retries)


@pytest.mark.parametrize("behaviour, expected", [
    (("body", listing(("t/_delta_log/x.json", "1"), ("t/elsewhere.json", "2"))), "not directly under"),
    (("body", listing(("t/_delta_log/../../x.json", "1"))), "not directly under"),
    (("body", listing(("t/_delta_log/x.json", "-1"))), "the size '-1'"),
    (("body", listing(("t/_delta_log/x.json", "1e3"))), "the size '1e3'"),
    (("body", listing(("t/_delta_log/x.json", "9" * 30))), "the size"),
    (("body", listing(before='<!DOCTYPE d [<!ENTITY a "aaaa">]>')), "a DTD"),
    (("body", b"<EnumerationResults><Blobs>"), "not a blob listing"),
    (("body", b"<html>Hello</html>"), "not a blob listing"),
    (("body", listing(("t/_delta_log/x.json", "1"), marker="again")), "repeats its NextMarker"),
    (("declared", (b"<Enum", 1000)), "cut short"),
    (("declared", (b"", 65 * 1024**2)), "more than the 67,108,864 bytes"),
    (("endless", None), "more than the 67,108,864 bytes"),
    (("status", 403), "403"),
    (("status", 500), "500"),
    (("silent", 3), "no reply within 0.5 s"),
    (("drip", None), "no reply within 0.5 s"),
])
def test_a_hostile_listing_is_a_one_line_error_soon(hostile, behaviour, expected):
    hostile.behaviour = behaviour
    started = time.monotonic()
    with pytest.raises(OSError) as refused:
        reader_of(hostile).ls("c/t/_delta_log")
    assert time.monotonic() - started < 5
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    assert str(refused.value).startswith(f"http://127.0.0.1:{hostile.server_port}/acct/c?")
    with pytest.raises(WarehouseError, match="^cannot list c/t/_delta_log: ") as failed:
        delta_log.LogFiles("c/t", reader_of(hostile)).listing()
    assert "\n" not in str(failed.value)


@pytest.mark.parametrize("behaviour, expected", [
    (("declared", (b"abc", 10)), "cut short"),
    (("declared", (b"", 5 * 1024**3)), "more than the 4,294,967,296 bytes"),
    (("drip-body", None), "slower than 1024 KiB per 0.5 s"),
    (("silent", 3), "no reply within 0.5 s"),
    (("status", 404), "404"),
])
def test_a_hostile_blob_is_a_one_line_error_soon(hostile, behaviour, expected):
    hostile.behaviour = behaviour
    started = time.monotonic()
    with pytest.raises(OSError, match=expected) as refused:
        reader_of(hostile).cat_file("c/t/_delta_log/00000000000000000000.json")
    assert time.monotonic() - started < 5 and "\n" not in str(refused.value)
    if behaviour[0] == "status":
        assert isinstance(refused.value, FileNotFoundError)


def test_a_blob_larger_than_the_cap_asked_for_is_refused(hostile):
    hostile.behaviour = ("body", b"x" * 1000)
    assert reader_of(hostile).cat_file("c/blob", max_bytes=1000) == b"x" * 1000
    with pytest.raises(OSError, match="more than the 999 bytes"):
        reader_of(hostile).cat_file("c/blob", max_bytes=999)


def test_server_errors_and_timeouts_are_retried_then_reported(hostile):
    hostile.behaviour = ("status", 503)
    with pytest.raises(OSError, match=r"503 .*\(after 3 attempts\)$"):
        reader_of(hostile, retries=2).cat_file("c/blob")
    assert hostile.requests == 3
    hostile.requests, hostile.behaviour = 0, ("status", 403)
    with pytest.raises(OSError, match="403"):
        reader_of(hostile, retries=2).cat_file("c/blob")
    assert hostile.requests == 1  # refused is refused: not asked again


def test_a_kept_alive_connection_serves_the_next_request(hostile):
    hostile.behaviour = ("body", listing(("t/x.json", "5")))
    reader = reader_of(hostile)
    assert [reader.ls("c/t") for _ in range(3)][-1] == [{"name": "c/t/x.json", "size": 5, "type": "file"}]
    assert hostile.requests == 3


def test_an_unreachable_endpoint_is_a_one_line_error(hostile):
    port = hostile.server_port
    hostile.shutdown()
    hostile.server_close()
    reader = blob_reader.BlobReader("acct", f"http://127.0.0.1:{port}/acct", timeout=0.5, retries=1)
    with pytest.raises(OSError, match=r"refused.*\(after 2 attempts\)$") as refused:
        reader.ls("c/t")
    assert "\n" not in str(refused.value)


# -- nx sql over az:// -----------------------------------------------------------------------
@pytest.mark.azurite
def test_a_warm_nx_sql_over_azure_imports_no_azure_sdk(azure_explanations, azurite, tmp_path):
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
           "NX_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-X", "importtime", "-m", "nx", "sql", "select count(*) as n from explanations",
               "-w", azure_explanations, "--format", "csv"]
    cold = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert cold.returncode == 0, cold.stderr
    warm = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == cold.stdout and warm.stdout.splitlines()[0] == "n" and int(warm.stdout.splitlines()[1]) > 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in warm.stderr.splitlines() if line.startswith("import time:")}
    assert "nx.blob_reader" in imported
    assert not {m for m in imported if m.split(".")[0] in ("adlfs", "azure", "aiohttp", "fsspec")}


@pytest.mark.azurite
@pytest.mark.parametrize("statement", ["select * from explanations", "select * from best_explanations"])
def test_rows_are_the_same_cached_uncached_and_without_a_cache(azure_explanations, azurite, monkeypatch, tmp_path,
                                                               statement):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    delta_log._CACHE.clear()  # the log read again, its checkpoint copied
    first = sorted_rows(nx.sql(statement, azure_explanations).to_pylist())  # copies made
    assert sorted_rows(nx.sql(statement, azure_explanations).to_pylist()) == first  # copies read
    assert list((tmp_path / "nx-cache").rglob("*.checkpoint.parquet"))
    monkeypatch.setenv("NX_CACHE_DIR", "off")  # the checkpoint and data files read through adlfs
    delta_log._CACHE.clear()
    assert sorted_rows(nx.sql(statement, azure_explanations).to_pylist()) == first
