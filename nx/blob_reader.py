"""Reading Azure Blob Storage on the standard library alone: the listing and whole-blob reads
that the readers of an az:// warehouse need (``nx.delta_log.LogFiles``, ``nx.file_cache``).

Why not adlfs: importing it (azure.storage.blob, azure.core, aiohttp) costs 0.5-0.9 s of CPU,
while a warm ``nx sql`` over az:// (every data file and checkpoint in the local cache) makes
one request, the listing of a table's ``_delta_log/``. Whatever must hand DuckDB an fsspec
filesystem (a remote read) takes adlfs's from ``fsspec()``. Import this module only to reach
Azure: it loads http.client and ssl.

- Credentials as ``nx.storage`` gives them to adlfs: ``AZURE_STORAGE_CONNECTION_STRING`` naming
  the account (its ``BlobEndpoint``, ``AccountKey`` or ``SharedAccessSignature``; Azurite's
  path-style ``http://127.0.0.1:PORT/devstoreaccount1``), else ``AZURE_STORAGE_ACCOUNT_KEY``
  (requests signed with Shared Key), else ``AZURE_STORAGE_SAS_TOKEN``, else anonymous.
- Time limits as adlfs's clients get them (``nx.storage``): a reply's status and headers within
  ``CONNECT_SECONDS``, however slowly they are dripped; its body at least a mebibyte per
  ``CONNECT_SECONDS``. Connection errors, time-outs, 408, 429 and 5xx are retried
  ``AZURE_RETRIES`` times, soon.
- Replies are input like any other: a listing page is at most ``MAX_LISTING_BYTES``, parsed
  only without a DTD (no entity to expand), and refused if it names a blob outside the
  directory asked for or a size that is not a non-negative integer; a blob is at most
  ``MAX_BLOB_BYTES`` and exactly as long as its Content-Length. Errors are ``OSError``
  (``FileNotFoundError`` for what is not there), one line naming the URL, never a SAS token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import re
import socket
import threading
import time
from email.utils import formatdate
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree

from nx import storage

PROTOCOLS = ("abfs", "az", "abfss")  # adlfs's AzureBlobFileSystem.protocol: the same URLs, the same cache keys
API_VERSION = "2021-08-06"
MAX_BLOB_BYTES = 4 * 1024**3
MAX_LISTING_BYTES = 64 * 1024**2
MAX_PAGES = 10_000  # of one listing: a server that always answers with a NextMarker is stopped
_CHUNK = 1024 * 1024  # what a body must bring per timeout period
_BACKOFF = (0.5, 1.5)  # seconds before the first retry, then before each later one
_UNSAFE = re.compile(r"[^\x20-\x7e]+")  # what a server's words may not bring into a one-line error


class _Refused(OSError):
    """A reply that asking again will not improve (too large, malformed)."""


class BlobReader:
    """Read-only access to one storage account: ``ls`` and ``cat_file`` on the paths adlfs
    takes (``container/blob``, or ``az://container/blob``)."""

    protocol = PROTOCOLS

    def __init__(self, account: str, endpoint: str | None = None, *, key: str | None = None,
                 sas: str | None = None, signer: str | None = None, timeout: float = storage.CONNECT_SECONDS,
                 retries: int = storage.AZURE_RETRIES, max_bytes: int = MAX_BLOB_BYTES,
                 page_size: int | None = None):
        self.account = account  # as the az:// URL names it
        self.endpoint = (endpoint or f"https://{account}.blob.core.windows.net").rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OSError(f"{self.endpoint}: not an http(s) blob endpoint")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._base = parts.path.rstrip("/")  # Azurite's path-style endpoints: /devstoreaccount1
        self._key = key
        self._sas = None if key else (sas or "").lstrip("?") or None  # a key wins, as in Azure's SDK
        self._signer = signer or account  # the account the key is of
        self.timeout, self.retries, self.max_bytes, self.page_size = timeout, retries, max_bytes, page_size
        self._local = threading.local()  # a kept-alive connection per thread (file_cache fetches in threads)
        self._adlfs = None

    def ls(self, path: str, detail: bool = True) -> list:
        """The blobs and virtual directories directly under the directory ``path``
        (``container/dir``); FileNotFoundError when there is none."""
        container, directory = _split(path)
        prefix = directory + "/" if directory else ""
        where, found, marker, seen = "/" + quote(container, safe=""), [], "", set()
        for _ in range(MAX_PAGES):
            query = [("restype", "container"), ("comp", "list"), ("prefix", prefix), ("delimiter", "/")]
            query += [("marker", marker)] if marker else []
            query += [("maxresults", str(self.page_size))] if self.page_size else []
            entries, marker = _parse_listing(self._get(where, query, MAX_LISTING_BYTES), prefix,
                                             self._shown(where, query))
            found += [{"name": f"{container}/{name}", "size": size, "type": kind} for name, size, kind in entries]
            if not marker:
                break
            if marker in seen:
                raise _Refused(f"{self._shown(where, query)}: the listing repeats its NextMarker")
            seen.add(marker)
        else:
            raise _Refused(f"{self._shown(where, query)}: a listing of more than {MAX_PAGES:,} pages")
        if not found:
            raise FileNotFoundError(f"{self.endpoint}{where}/{quote(prefix)}: no such directory")
        return found if detail else [entry["name"] for entry in found]

    def cat_file(self, path: str, max_bytes: int | None = None) -> bytes:
        """The whole blob at ``path``, at most ``max_bytes`` (default: the reader's cap)."""
        container, blob = _split(path)
        if not blob:
            raise IsADirectoryError(f"{path}: a container, not a blob")
        where = f"/{quote(container, safe='')}/{quote(blob, safe='/~')}"
        return self._get(where, [], self.max_bytes if max_bytes is None else max_bytes)

    def invalidate_cache(self, path: str | None = None) -> None:
        """Nothing to forget: every listing is asked for anew (fsspec's filesystems cache them)."""

    def fsspec(self):
        """adlfs's filesystem of the same account, for what must hand DuckDB an fsspec one."""
        if self._adlfs is None:
            self._adlfs = storage.azure_filesystem(self.account)  # imports adlfs, 0.5-0.9 s: only here
        return self._adlfs

    # -- one GET ---------------------------------------------------------------------------------
    def _shown(self, path: str, query: list[tuple[str, str]]) -> str:
        """The URL as errors name it: without the SAS token."""
        text = "&".join(f"{name}={quote(value, safe='/')}" for name, value in query)
        return f"{self.endpoint}{path}" + (f"?{text}" if text else "")

    def _get(self, path: str, query: list[tuple[str, str]], cap: int) -> bytes:
        """The body of a GET of ``path`` (encoded, below the endpoint), retried as the module says."""
        shown, target = self._shown(path, query), self._base + path
        text = "&".join([f"{name}={quote(value, safe='')}" for name, value in query] + [self._sas] * bool(self._sas))
        url = target + (f"?{text}" if text else "")
        attempt, cause = 0, ""
        while attempt <= self.retries:
            reused = getattr(self._local, "connection", None) is not None
            try:
                status, reason, body = self._exchange(url, self._headers(target, query), cap, shown)
            except _Refused:
                self._drop()
                raise
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if reused and isinstance(exc, (ConnectionError, http.client.RemoteDisconnected)):
                    continue  # a kept-alive connection the server had closed: again at once, on a new one
                cause = _cause(exc)
            else:
                if status == 200:
                    return body
                if status == 404:
                    raise FileNotFoundError(f"{shown}: 404 {reason}")
                cause = f"{status} {reason}"
                if status < 500 and status not in (408, 429):
                    raise OSError(f"{shown}: {cause}")
            attempt += 1
            if attempt <= self.retries:
                time.sleep(_BACKOFF[min(attempt, len(_BACKOFF)) - 1])
        raise OSError(f"{shown}: {cause}" + (f" (after {self.retries + 1} attempts)" if self.retries else ""))

    def _headers(self, target: str, query: list[tuple[str, str]]) -> dict[str, str]:
        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": API_VERSION}
        if self._key:
            headers["Authorization"] = f"SharedKey {self._signer}:{self._signature(target, query, headers)}"
        return headers

    def _signature(self, target: str, query: list[tuple[str, str]], headers: dict[str, str]) -> str:
        """Azure's "Authorize with Shared Key" of a GET with no body or condition: the verb, 11
        empty standard headers, the x-ms- headers, then /ACCOUNT + the encoded path + the query
        parameters sorted, decoded."""
        lines = ["GET", *[""] * 11, *(f"{name}:{value}" for name, value in sorted(headers.items())
                                     if name.startswith("x-ms-"))]
        resource = f"/{self._signer}{target}" + "".join(f"\n{name.lower()}:{value}" for name, value in sorted(query))
        try:
            key = base64.b64decode(self._key, validate=True)
        except ValueError:
            raise _Refused(f"{self.endpoint}: the account key is not base64") from None
        digest = hmac.new(key, ("\n".join(lines) + "\n" + resource).encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def _exchange(self, url: str, headers: dict[str, str], cap: int, shown: str) -> tuple[int, str, bytes]:
        """One request on this thread's connection: (status, reason, body); a body only if 200."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            connection = self._local.connection = kind(self._host, self._port, timeout=self.timeout)
        # The status and headers within the timeout even if dripped a byte at a time: a read
        # blocked past it is woken by shutting the socket down.
        fired = threading.Event()
        watchdog = threading.Timer(self.timeout, _shut, (connection, fired))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("GET", url, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if fired.is_set() or isinstance(exc, TimeoutError):
                raise TimeoutError(f"no reply within {self.timeout:g} s") from None
            raise
        finally:
            watchdog.cancel()
        reason = _UNSAFE.sub(" ", response.reason or "")[:120].strip()
        code = _UNSAFE.sub(" ", response.getheader("x-ms-error-code") or "")[:60].strip()
        if response.status != 200:
            self._drop()  # its body is left unread: the connection cannot serve another request
            return response.status, f"{reason} ({code})" if code else reason, b""
        body = _read_body(response, cap, self.timeout, shown)
        if response.will_close:
            self._drop()
        return 200, reason, body

    def _drop(self) -> None:
        connection, self._local.connection = getattr(self._local, "connection", None), None
        if connection is not None:
            connection.close()


def _split(path: str) -> tuple[str, str]:
    """(container, the rest) of ``container/...`` or ``az://container/...``."""
    scheme, found, rest = path.partition("://")
    container, _, inner = (rest if found and scheme in PROTOCOLS else path).strip("/").partition("/")
    if not container:
        raise OSError(f"{path!r}: give container/path")
    return container, inner.strip("/")


def _shut(connection, fired: threading.Event) -> None:
    fired.set()
    if connection.sock is not None:
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _read_body(response, cap: int, timeout: float, shown: str) -> bytes:
    declared = response.getheader("Content-Length")
    if declared is not None:
        if not re.fullmatch(r"[0-9]{1,19}", declared.strip()):
            raise _Refused(f"{shown}: a Content-Length that is not a number")
        if int(declared) > cap:
            raise _Refused(f"{shown}: {int(declared):,} bytes, more than the {cap:,} bytes nx reads")
    chunks, total, started = [], 0, time.monotonic()
    while chunk := response.read1(_CHUNK):
        total += len(chunk)
        if total > cap:
            raise _Refused(f"{shown}: more than the {cap:,} bytes nx reads")
        chunks.append(chunk)
        if time.monotonic() - started > timeout * (1 + total / _CHUNK):
            raise TimeoutError(f"the reply came slower than {_CHUNK // 1024} KiB per {timeout:g} s")
    if declared is not None and total != int(declared):
        raise http.client.IncompleteRead(b"", int(declared) - total)
    response.close()  # read to its end: the connection may serve the next request
    return b"".join(chunks)


def _cause(exc: BaseException) -> str:
    """What went wrong, as the end of one line."""
    if isinstance(exc, http.client.IncompleteRead):
        return f"the reply was cut short ({exc.expected:,} bytes of its Content-Length missing)"
    return _UNSAFE.sub(" ", str(exc)).strip()[:200] or type(exc).__name__


def _parse_listing(page: bytes, prefix: str, shown: str) -> tuple[list[tuple[str, int, str]], str]:
    """(name, size, "file" or "directory") of each entry of a List Blobs page, and its NextMarker."""
    if b"<!DOCTYPE" in page or b"<!ENTITY" in page:  # never in Azure's replies; entities could expand
        raise _Refused(f"{shown}: a listing with a DTD")
    try:
        root = ElementTree.fromstring(page)
    except ElementTree.ParseError as exc:
        raise _Refused(f"{shown}: not a blob listing ({exc})") from None
    if root.tag != "EnumerationResults":
        raise _Refused(f"{shown}: not a blob listing (<{_UNSAFE.sub(' ', root.tag)[:40]}>)")
    entries = []
    for element in [*root.iterfind("Blobs/Blob"), *root.iterfind("Blobs/BlobPrefix")]:
        kind = "file" if element.tag == "Blob" else "directory"
        name = _name(element.find("Name"))
        rest = name[len(prefix):].rstrip("/") if kind == "directory" else name[len(prefix):]
        if not name.startswith(prefix) or not rest or "/" in rest:
            raise _Refused(f"{shown}: the listing names {name[:200]!r}, which is not directly under {prefix!r}")
        size = (element.findtext("Properties/Content-Length") or "").strip() if kind == "file" else "0"
        if not re.fullmatch(r"[0-9]{1,19}", size):
            raise _Refused(f"{shown}: the listing gives {name[:200]!r} the size {size[:40]!r}")
        entries.append((prefix + rest, int(size), kind))
    return entries, (root.findtext("NextMarker") or "").strip()


def _name(element) -> str:
    if element is None or element.text is None:
        return ""
    # names holding characters XML cannot carry come percent-encoded (API 2020-04-08 and later)
    return unquote(element.text) if element.get("Encoded") == "true" else element.text


def for_account(account: str, endpoint: str | None = None, **options) -> BlobReader:
    """A reader of ``account`` with the credentials ``nx.storage`` gives adlfs; ``endpoint``
    replaces ``https://ACCOUNT.blob.core.windows.net`` where no connection string names one."""
    conn = storage._connection_string_for(account)
    if conn:
        parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
        signer = parts.get("AccountName") or account
        endpoint = parts.get("BlobEndpoint") or endpoint or (
            f"{parts.get('DefaultEndpointsProtocol', 'https')}://{signer}.blob."
            f"{parts.get('EndpointSuffix', 'core.windows.net')}")
        return BlobReader(account, endpoint, key=parts.get("AccountKey"), sas=parts.get("SharedAccessSignature"),
                          signer=signer, **options)
    return BlobReader(account, endpoint, key=os.environ.get("AZURE_STORAGE_ACCOUNT_KEY") or None,
                      sas=os.environ.get("AZURE_STORAGE_SAS_TOKEN"), **options)
