"""The Azurite blob emulator for tests: the session fixture ``azurite`` and its helpers.
Owns nothing else.

``azurite`` starts ``azurite-blob`` (npm package ``azurite``) on a free port with a
throw-away workspace, yields an ``Azurite`` handle and kills the process at the end of the
session. Without ``azurite-blob`` on PATH the fixture fails (CI installs it; it is not a skip).
Use it from a test module with ``from tests.azurite import azurite  # noqa: F401`` (or
``from azurite import azurite`` when tests/ itself is on sys.path).

Reading a PUBLIC container anonymously (how nx reads the public source) works with adlfs
through a connection string that holds only the endpoint::

    adlfs.AzureBlobFileSystem(connection_string=f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")

(``AccountName=devstoreaccount1;BlobEndpoint=...;`` works too.) Without a key or SAS,
azure-storage-blob sends unsigned requests, which Azurite, like Azure, answers for containers
created with public access "container": read, exists and list all work. The same client on a
private container fails with HttpResponseError "Server failed to authenticate the request"
(Azurite answers 403; real Azure may answer 404 ResourceNotFound instead: treat both as
"not readable anonymously").
``Azurite.anonymous_connection_string`` is that form. ``AzureBlobFileSystem(account_name=...,
anon=True, account_host="127.0.0.1:<port>/devstoreaccount1")`` does NOT work: adlfs builds an
https URL and the plain-http emulator fails the TLS handshake (it retries for minutes).
tests/test_azurite_fixture.py checks these forms. Authenticated access uses
``connection_string`` (the well-known dev account and key).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

AZURITE_BLOB_EXECUTABLE = "azurite-blob"
DEV_ACCOUNT = "devstoreaccount1"
# The well-known key of Azurite's development account (public, documented by Microsoft).
DEV_ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
                   "K1SZFPTOtr/KBHBeksoGMGw==")
STARTUP_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite-blob exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"azurite-blob did not listen on port {port} within {timeout} s")


@dataclass
class Azurite:
    """A running azurite-blob: its address, credentials and upload helpers."""
    port: int
    workspace: Path
    account: str = DEV_ACCOUNT
    key: str = DEV_ACCOUNT_KEY

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        """Authenticated (shared key) connection string of the dev account."""
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
                f"BlobEndpoint={self.blob_endpoint};")

    @property
    def anonymous_connection_string(self) -> str:
        """No credentials: reads public containers only."""
        return f"BlobEndpoint={self.blob_endpoint};"

    def service_client(self):
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str, public: bool | str = True) -> None:
        """Create ``name`` (if absent); ``public=True`` grants anonymous read and list,
        ``public="blob"`` anonymous reads of blobs but no listing."""
        from azure.core.exceptions import ResourceExistsError
        access = "blob" if public == "blob" else "container" if public else None
        service = self.service_client()
        container = service.get_container_client(name)
        try:
            container.create_container(public_access=access)
        except ResourceExistsError:
            container.set_container_access_policy(signed_identifiers={}, public_access=access)

    def upload_tree(self, local_dir, container: str, prefix: str = "") -> list[str]:
        """Upload every file under ``local_dir`` to ``container`` as ``prefix/<relative path>``;
        returns the blob names written."""
        local_dir = Path(local_dir)
        container_client = self.service_client().get_container_client(container)
        prefix = prefix.strip("/")
        names = []
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            relative = path.relative_to(local_dir).as_posix()
            name = f"{prefix}/{relative}" if prefix else relative
            with path.open("rb") as data:
                container_client.upload_blob(name, data, overwrite=True)
            names.append(name)
        return names


def start_azurite(workspace: Path) -> tuple[Azurite, subprocess.Popen]:
    executable = shutil.which(AZURITE_BLOB_EXECUTABLE)
    if executable is None:
        pytest.fail(f"{AZURITE_BLOB_EXECUTABLE} is not on PATH: install the Azurite emulator "
                    "with `npm install -g azurite` (CI installs it; these tests do not skip)",
                    pytrace=False)
    port = free_port()
    data_dir = workspace / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = workspace / "azurite.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [executable, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data_dir),
         "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        wait_for_port(port, process)
    except RuntimeError as error:
        stop_azurite(process)
        output = log_path.read_text(errors="replace")
        pytest.fail(f"{error}\n{output}", pytrace=False)
    return Azurite(port=port, workspace=workspace), process


def stop_azurite(process: subprocess.Popen) -> None:
    """Stop the azurite-blob process group this module started (its own session)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A running Azurite blob service for the whole test session."""
    handle, process = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield handle
    finally:
        stop_azurite(process)
