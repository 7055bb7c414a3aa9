"""Where bytes live: turns a warehouse or source URL into an fsspec filesystem and a path.

Accepted forms:
- a local directory (``./w``, ``/data/w``, ``file:///data/w``);
- ``az://ACCOUNT/CONTAINER/path`` -- the spelling of OpenAI's public dataset (blobfile's
  convention: the storage account comes first), read and written through adlfs;
- ``https://ACCOUNT.blob.core.windows.net/CONTAINER/path`` -- the same blob, also through adlfs;
- any other ``https://`` URL, read through fsspec's HTTP filesystem (cannot be listed).

Azure credentials come from the environment only: ``AZURE_STORAGE_CONNECTION_STRING`` when it
names the same account (its ``AccountName`` or the last part of its ``BlobEndpoint``; the
Azurite emulator is reached this way), else ``AZURE_STORAGE_ACCOUNT_KEY`` or
``AZURE_STORAGE_SAS_TOKEN``; with none of them the account is read anonymously, which is how
the public ``openaipublic`` account must be read.

Azure clients give up soon on a host that does not answer: ``CONNECT_SECONDS`` to connect,
``AZURE_RETRIES`` retries a few seconds apart (the SDK's defaults, 20 s and 3 retries 15-24 s
apart, made an unreachable source take minutes per call); nx's own callers retry on top.
"""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from nx.errors import UsageError

_AZURE_HTTPS = re.compile(r"^https://([a-z0-9]+)\.blob\.core\.windows\.net/(.+)$")


@dataclass(frozen=True)
class Location:
    """A root URL resolved to a filesystem; ``path`` is the root in that filesystem's terms."""

    url: str
    opened: Any  # the filesystem; None for a local path, whose ``fs`` is made when first used
    path: str
    protocol: str  # "file", "az" or "https"
    account: str | None = None  # the Azure storage account of az:// locations

    @cached_property
    def fs(self) -> Any:
        """The fsspec filesystem. A local one is made on first use: importing fsspec costs
        0.1-0.17 s, and ingest and queries of a local warehouse mostly read and write by path."""
        if self.opened is None and self.protocol == "file":
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem()
        return self.opened

    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts) if self.protocol != "file" else os.path.join(self.path, *parts)

    def shown(self, fs_path: str) -> str:
        """A path in this filesystem as people write the location (the account of az:// too)."""
        if self.protocol == "az":
            return f"az://{self.account}/{fs_path.lstrip('/')}"
        return self.url_of(fs_path)

    def url_of(self, fs_path: str) -> str:
        """A path in this filesystem as a URL that DuckDB (with the fs registered) can open."""
        if self.protocol == "file":
            return fs_path
        if self.protocol == "az":
            return "az://" + fs_path.lstrip("/")
        return fs_path


def _connection_string_for(account: str) -> str | None:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not conn:
        return None
    parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
    if parts.get("AccountName") == account:
        return conn
    endpoint = parts.get("BlobEndpoint", "").rstrip("/")
    if endpoint.endswith("/" + account):
        return conn
    return None


def delta_storage_options(account: str) -> dict[str, str]:
    """delta-rs's options for an Azure account, from the same environment adlfs reads: an
    emulator (Azurite) is reached through its BlobEndpoint, never delta-rs's fixed port."""
    conn = _connection_string_for(account)
    if conn:
        parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
        options = {"account_name": parts.get("AccountName", account)}
        if parts.get("AccountKey"):
            options["account_key"] = parts["AccountKey"]
        if parts.get("SharedAccessSignature"):
            options["sas_key"] = parts["SharedAccessSignature"]
        endpoint = parts.get("BlobEndpoint")
        if endpoint:
            options["azure_storage_endpoint"] = endpoint.rstrip("/")
            if endpoint.startswith("http://"):
                options["allow_http"] = "true"
        return options
    key = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY")
    sas = os.environ.get("AZURE_STORAGE_SAS_TOKEN")
    if key:
        return {"account_name": account, "account_key": key}
    if sas:
        return {"account_name": account, "sas_key": sas.lstrip("?")}
    return {"account_name": account, "azure_skip_signature": "true"}


CONNECT_SECONDS = 10
AZURE_RETRIES = 2  # after 1 s, then about 3 s
_AZURE_CLASS: list = []


def _azure_class():
    """adlfs's filesystem whose Azure clients connect within CONNECT_SECONDS and retry
    AZURE_RETRIES times, soon (adlfs makes its clients with the SDK's defaults, and again after
    a fork or unpickling: hence a subclass, not a client swapped in once)."""
    if not _AZURE_CLASS:
        import adlfs  # imported here: only az:// users pay for the Azure SDK
        from azure.storage.blob.aio import BlobServiceClient

        options = {"connection_timeout": CONNECT_SECONDS, "retry_total": AZURE_RETRIES, "initial_backoff": 1,
                   "increment_base": 2, "random_jitter_range": 1}

        class AzureFileSystem(adlfs.AzureBlobFileSystem):
            def do_connect(self):
                super().do_connect()
                client = self.service_client
                if self.connection_string is not None:
                    self.service_client = BlobServiceClient.from_connection_string(
                        self.connection_string, **options)
                else:  # the same URL (with a SAS token) and credential as adlfs's, other options
                    self.service_client = BlobServiceClient(client.url, credential=client.credential, **options)

        _AZURE_CLASS.append(AzureFileSystem)
    return _AZURE_CLASS[0]


def azure_filesystem(account: str):
    """An adlfs filesystem for one storage account, with credentials from the environment."""
    filesystem = _azure_class()
    conn = _connection_string_for(account)
    if conn:
        return filesystem(connection_string=conn, skip_instance_cache=True)
    key = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY")
    sas = os.environ.get("AZURE_STORAGE_SAS_TOKEN")
    if key or sas:
        return filesystem(account_name=account, account_key=key, sas_token=sas, skip_instance_cache=True)
    return filesystem(account_name=account, anon=True, skip_instance_cache=True)


def azure_address(url: str) -> tuple[str, str] | None:
    """(account, container/path) of an Azure location (az:// or https://ACCOUNT.blob...), None
    for any other URL; UsageError for an Azure one without a container. (Without making a
    filesystem: adlfs costs 0.5-0.9 s to import, and nx.blob_reader reads logs without it.)"""
    https_azure = _AZURE_HTTPS.match(url)
    if not url.startswith("az://") and not https_azure:
        return None
    if https_azure:
        account, rest = https_azure.group(1), https_azure.group(2)
    else:
        account, _, rest = url[len("az://"):].partition("/")
    rest = rest.strip("/")
    if not account or not rest:
        raise UsageError(f"{url}: an Azure location is az://ACCOUNT/CONTAINER[/path]")
    return account, rest


def locate(url: str) -> Location:
    """Resolve a root URL; raises UsageError for a form nx cannot use."""
    if not url:
        raise UsageError("an empty path was given")
    address = azure_address(url)
    if address:
        return Location(url, azure_filesystem(address[0]), address[1], "az", address[0])
    if url.startswith(("https://", "http://")):
        import fsspec  # imported here: the HTTP filesystem pulls in aiohttp

        return Location(url, fsspec.filesystem("https"), url.rstrip("/"), "https")
    if "://" in url and not url.startswith("file://"):
        raise UsageError(f"{url}: nx reads local paths, https:// and az:// locations")
    path = os.path.abspath(os.path.expanduser(url[len("file://"):] if url.startswith("file://") else url))
    return Location(url, None, path, "file")
