"""How a page answers: HTML from a template, or its JSON twin; errors as clear 4xx/5xx pages.

A request wants JSON when its path ends in ``.json`` or starts with ``/api/``; the page
handler builds one ``data`` dict and ``respond`` renders it either way. ``answers`` wraps a
handler so an error reaches the user as one sentence with the right status, never as a
stack trace: bad parameter or rejected SQL 400, unknown neuron, layer, run or query 404,
a result over what one answer may hold 413, query time limit 504, viewer busy or warehouse
unreadable 503, anything else 500 (logged). (403 and 421 come from ``app.Guard``.)
"""
from __future__ import annotations

import datetime as dt
import decimal
import functools
import logging
import math
import uuid

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from nx import __version__
from nx.errors import NotFoundError, NxError, QueryError, UsageError, WarehouseError
from nx.web.database import Busy, QueryTimeout, TooLarge
from nx.web.tokens import number, when

log = logging.getLogger("nx.web")


def _default(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dt.timedelta, uuid.UUID)):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def dumps(data) -> bytes:
    """JSON bytes; NaN and infinities become null (orjson's rule), odd types their text."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return dumps(content)


def script_json(data) -> Markup:
    """JSON for a ``<script type="application/json">`` block: nothing in it can end the block."""
    text = dumps(data).decode("utf-8")
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return Markup(text)


class Cut(str):
    """A cell's first characters; ``more`` says how many were left out (shown as a mark)."""

    def __new__(cls, text: str, more: int):
        cut = super().__new__(cls, text)
        cut.more = more
        return cut


def cell(value) -> str:
    """A SQL result value as short text for a table cell (the template escapes it)."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return number(value, 6) if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        return when(value)  # as nx sql's table shows them; the JSON twin and downloads keep them whole
    if isinstance(value, (list, dict, tuple)):
        text = dumps(value).decode("utf-8")
        return text if len(text) <= 300 else text[:300] + "…"
    return str(value)


def make_templates() -> Jinja2Templates:
    env = Environment(loader=PackageLoader("nx.web", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["cell"] = cell
    env.filters["when"] = when
    env.filters["script_json"] = script_json
    env.tests["cut"] = lambda value: isinstance(value, Cut)
    env.globals["version"] = __version__  # in static URLs: a new nx is never served stale scripts
    return Jinja2Templates(env=env)


TEMPLATES = make_templates()


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.endswith(".json") or path.startswith("/api/")


def respond(request: Request, template: str, data: dict, context: dict | None = None, status: int = 200) -> Response:
    """``data`` as JSON for a JSON twin, else the template with ``data`` and ``context``."""
    if wants_json(request):
        return JSONResponse(data, status_code=status)
    return TEMPLATES.TemplateResponse(request, template, {"data": data, **(context or {})}, status_code=status)


STATUS = ((QueryTimeout, 504), (Busy, 503), (TooLarge, 413), (NotFoundError, 404), (UsageError, 400),
          (QueryError, 400), (WarehouseError, 503))
TITLES = {400: "Bad request", 403: "Refused", 404: "Not found", 405: "Method not allowed", 413: "Too large",
          421: "Wrong address", 500: "Server error", 503: "Unavailable", 504: "Too slow"}


def status_of(exc: NxError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 400)


def error(request: Request, status: int, message: str) -> Response:
    data = {"error": message, "status": status}
    headers = {"Retry-After": "5"} if status == 503 else None
    if wants_json(request):
        return JSONResponse(data, status_code=status, headers=headers)
    return TEMPLATES.TemplateResponse(request, "error.html", {"data": data, "title": TITLES.get(status, "Error")},
                                      status_code=status, headers=headers)


def answers(handler):
    """Bring the views and index up to date, then run the handler; turn what it raises into
    an error page (or JSON) with the right status."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            # The views and the index follow the warehouse's current versions (index.py).
            await request.app.state.index.ready()
            return await handler(request)
        except NxError as exc:
            return error(request, status_of(exc), str(exc))
        except Exception:
            log.exception("error answering %s", request.url.path)
            return error(request, 500, "the viewer failed on this request; the server log has the details")

    return wrapper
