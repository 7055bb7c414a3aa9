"""URL parameters, checked: a bad value is a ``BadParameter`` (HTTP 400) that names it.

Pages never trust a query string: numbers are parsed here with their bounds (no negative
neuron, no page of a million rows), text is length-limited, and every value then reaches
DuckDB as a bound parameter, never formatted into SQL.
"""
from __future__ import annotations

import math

from starlette.datastructures import QueryParams

from nx.errors import UsageError

MAX_TEXT = 500
MAX_SQL = 20_000
MAX_PAGE_SIZE = 1000


class BadParameter(UsageError):
    """A URL parameter that is not what the page takes."""


def whole(value: str | None, name: str, *, default: int | None = None, low: int | None = 0,
          high: int | None = None) -> int | None:
    """A whole number within [low, high]; ``default`` when absent or empty."""
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        raise BadParameter(f"{name} must be a whole number, not {_shown(text)}") from None
    if low is not None and number < low:
        raise BadParameter(f"{name} must be at least {low}, not {number}")
    if high is not None and number > high:
        raise BadParameter(f"{name} must be at most {high}, not {number}")
    return number


def real(value: str | None, name: str, *, default: float | None = None, low: float | None = None,
         high: float | None = None) -> float | None:
    """A finite number within [low, high]; ``default`` when absent or empty."""
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise BadParameter(f"{name} must be a number, not {_shown(value.strip())}") from None
    if not math.isfinite(number):
        raise BadParameter(f"{name} must be a finite number, not {_shown(value.strip())}")
    if low is not None and number < low:
        raise BadParameter(f"{name} must be at least {low:g}, not {number:g}")
    if high is not None and number > high:
        raise BadParameter(f"{name} must be at most {high:g}, not {number:g}")
    return number


def text(value: str | None, name: str, *, default: str | None = None, limit: int = MAX_TEXT) -> str | None:
    if value is None or value == "":
        return default
    if len(value) > limit:
        raise BadParameter(f"{name} is too long ({len(value):,} characters; at most {limit:,})")
    if "\x00" in value:
        raise BadParameter(f"{name} must not contain NUL characters")
    return value


def page(params: QueryParams, default_size: int = 50) -> tuple[int, int]:
    """(page, page_size) from ``page`` (1-based) and ``page_size`` (at most 1000)."""
    number = whole(params.get("page"), "page", default=1, low=1, high=1_000_000)
    size = whole(params.get("page_size"), "page_size", default=default_size, low=1, high=MAX_PAGE_SIZE)
    return number, size


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")
