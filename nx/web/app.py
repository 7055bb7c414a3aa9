"""The ASGI app: routes (each page and its JSON twins), static files, headers, lifespan.

``create_app(warehouse)`` checks the warehouse at once (a missing one is a WarehouseError
before any server starts) and returns a Starlette app; its lifespan opens the shared
``Database`` (views + pool + time limit), the in-memory ``Index`` (loading it in the
background right away) and the neuron ``FileIndex``, and closes them on shutdown.

Answers are gzipped at level 1: a neuron's JSON (340 KB) in 3 ms instead of 11 ms at level 5,
for 10% more bytes. Plotly's JavaScript comes from the ``plotly`` package itself (``plotly/package_data/
plotly.min.js``), gzipped once in memory and served from ``/static/plotly.min.js``: no CDN,
so the viewer works on an air-gapped cluster. Every answer carries a Content-Security-Policy
that allows scripts from the viewer only, as a second wall behind escaping.

``Guard`` refuses what another site can make a browser send: requests addressed to another
name (DNS rebinding) and cross-site requests to the SQL box.
"""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib.util
import os
import socket
import threading
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nx.queries import open_warehouse
from nx.warehouse import Warehouse
from nx.web import is_loopback, pages, sql_page
from nx.web.database import Database
from nx.web.index import Index
from nx.web.neuron_data import FileIndex
from nx.web.respond import error

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 b"img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                 b"form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    # same-origin, not no-referrer: under no-referrer a browser sends the SQL form's POST with
    # "Origin: null", which the Guard cannot tell from another site's.
    (b"referrer-policy", b"same-origin"),
]
SQL_PATHS = frozenset({"/sql", "/sql.json", "/api/sql", "/sql.csv", "/sql.parquet"})


class SecurityHeaders:
    """Add ``SECURITY_HEADERS`` to every HTTP response (plain ASGI: no per-request task)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def host_name(header: str) -> str:
    """The name in a Host header: lower case, without the port, brackets or a final dot."""
    text = header.strip().lower()
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        return name if not rest or rest.startswith(":") else text
    return (text.rsplit(":", 1)[0] if text.count(":") == 1 else text).rstrip(".")


class Guard:
    """Refuse what another site can make a browser send (plain ASGI).

    DNS rebinding: a page of evil.example whose name is made to resolve to 127.0.0.1 reads the
    viewer as if it were its own site, but its requests say ``Host: evil.example``. The viewer
    answers only requests addressed to a loopback name or address, to the address they came in
    on, to ``hosts``, or (on a network address) to the machine's own name; the rest get 421.

    Cross-site requests to the SQL box: ``<img src="http://127.0.0.1:8000/sql.csv?q=...">`` on
    any page would have the browser run a statement. Requests the browser marks as sent from
    another site (``Sec-Fetch-Site``), or whose ``Origin`` is another site, get 403. Neuron
    pages and the rest may still be linked from anywhere; they run no user SQL.
    """

    def __init__(self, app, hosts=()):
        self.app = app
        self.hosts = {host_name(h) for h in hosts}
        self.machine = {socket.gethostname().lower()}  # for --host 0.0.0.0 reached as http://NAME:PORT/

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = self.refusal(scope, Headers(scope=scope))
        if refused:
            return await error(Request(scope), *refused)(scope, receive, send)
        await self.app(scope, receive, send)

    def refusal(self, scope, headers: Headers) -> tuple[int, str] | None:
        host = headers.get("host")
        if host is not None and not self.addressed_here(host_name(host), scope):
            return 421, (f"this viewer answers requests addressed to 127.0.0.1, localhost, [::1] or the address it "
                         f"listens on, not to {host[:100]!r}: a page of another site may be trying to read it")
        if scope["path"] in SQL_PATHS:
            site, origin = headers.get("sec-fetch-site"), headers.get("origin")
            if site in ("cross-site", "same-site") or (
                    origin is not None and site != "same-origin" and urlsplit(origin).netloc != (host or "").lower()):
                return 403, ("the SQL box runs statements sent from the viewer's own pages only, not from another "
                             "site: open /sql in the viewer and run the statement there")
        return None

    def addressed_here(self, name: str, scope) -> bool:
        if is_loopback(name) or name in self.hosts:
            return True
        server = str((scope.get("server") or ("",))[0]).lower()
        return name == server or (not is_loopback(server) and name in self.machine)


class Plotly:
    """plotly.min.js from the installed plotly package, gzipped once."""

    def __init__(self):
        spec = importlib.util.find_spec("plotly")  # locate only: importing plotly's Python side is slow
        self.path = (os.path.join(spec.submodule_search_locations[0], "package_data", "plotly.min.js")
                     if spec and spec.submodule_search_locations else None)
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    def body(self) -> bytes:
        with self._lock:
            if self._gzipped is None:
                with open(self.path, "rb") as f:
                    self._gzipped = gzip.compress(f.read(), compresslevel=6, mtime=0)
        return self._gzipped

    async def endpoint(self, request: Request) -> Response:
        if not self.path or not os.path.exists(self.path):
            return error(request, 404, "plotly is not installed: pip install plotly (the pictures need it)")
        body = await asyncio.to_thread(self.body)
        headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(body, media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"})
        return Response(gzip.decompress(body), media_type="text/javascript", headers=headers)


FAVICON = os.path.join(os.path.dirname(__file__), "static", "favicon.ico")  # scripts/make_favicon.py


async def favicon(request: Request) -> Response:
    """Where browsers look for a site's icon unasked."""
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


async def not_found(request: Request, exc) -> Response:
    return error(request, 404, f"no page at {request.url.path}: start from /")


async def not_allowed(request: Request, exc) -> Response:
    return error(request, 405, f"{request.method} is not allowed on {request.url.path}")


def twins(path: str, endpoint, api: str | None = None, methods=("GET",)) -> list[Route]:
    """The page, its ``.json`` twin and its ``/api/`` twin."""
    methods = list(methods)
    return [Route(f"{path}.json", endpoint, methods=methods), Route(f"/api{api or path}", endpoint, methods=methods),
            Route(path, endpoint, methods=methods)]


def routes(plotly: Plotly) -> list:
    static = os.path.join(os.path.dirname(__file__), "static")
    return [
        Route("/index.json", pages.home), Route("/api/home", pages.home), Route("/", pages.home),
        *twins("/search", pages.search),
        *twins("/neuron/{layer}/{neuron}", pages.neuron),
        *twins("/random", pages.random_neuron),
        *twins("/queries", pages.queries),
        *twins("/queries/{name}", pages.query),
        *twins("/compare", pages.compare),
        *twins("/compare-neurons", pages.compare_neurons),
        *twins("/contexts", pages.contexts),
        Route("/sql.csv", sql_page.download, methods=["GET", "POST"]),
        Route("/sql.parquet", sql_page.download, methods=["GET", "POST"]),
        *twins("/sql", sql_page.sql, methods=("GET", "POST")),
        Route("/static/plotly.min.js", plotly.endpoint),
        Route("/favicon.ico", favicon),
        Mount("/static", StaticFiles(directory=static)),
    ]


async def _warm(index: Index) -> None:
    """Load the index before the first page asks (a failure is reported to that page)."""
    with contextlib.suppress(Exception):
        await index.ready()


def create_app(warehouse: str | Warehouse | None = None, *, workers: int = 4, query_timeout: float = 10.0,
               queue_timeout: float = 30.0, index_ttl: float | None = None, memory_limit: str | None = None,
               sql_workers: int = 2, sql_waiting: int = 8, hosts=()) -> Starlette:
    """The viewer over ``warehouse`` (flag > NX_WAREHOUSE > ./nx-warehouse), local or az://.

    ``workers`` queries of pages run at once, and ``sql_workers`` statements of the SQL box
    (``sql_waiting`` more wait, the rest get 503); each is stopped after ``query_timeout``
    seconds; a request waits at most ``queue_timeout`` for a worker; the tables' versions are
    read before each request, or at most every ``index_ttl`` seconds (default: 0 on a local
    disk, 5 on az://). ``hosts``: names besides loopback the viewer is reached by."""
    location = open_warehouse(warehouse)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        database = Database(location, workers=workers, timeout=query_timeout, queue_timeout=queue_timeout,
                            memory_limit=memory_limit, sql_workers=sql_workers, sql_waiting=sql_waiting)
        app.state.database = database
        app.state.index = Index(database, ttl=index_ttl)
        app.state.files = FileIndex(location)
        warm = asyncio.create_task(_warm(app.state.index))
        try:
            yield
        finally:
            warm.cancel()
            database.close()

    app = Starlette(
        routes=routes(Plotly()), lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders), Middleware(Guard, hosts=hosts),
                    Middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)],
        exception_handlers={404: not_found, 405: not_allowed},
    )
    app.state.warehouse = location
    return app
