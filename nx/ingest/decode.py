"""Bytes of one source file -> a parsed JSON object, or a one-line reason it is malformed.

orjson is the fast path. Files written by other tools may hold ``NaN``/``Infinity`` literals
that strict parsers reject and Python's json accepts: those are read through json, and the
file is noted as non-strict rather than called malformed.
"""
from __future__ import annotations

import json

import orjson

from nx.layout import NON_STRICT_NOTE  # noqa: F401  (the _ingest note export looks for)


class MalformedFile(Exception):
    """The file cannot be ingested; the message is the one-line reason for the file log."""


def decode(data: bytes) -> tuple[object, str | None]:
    """Parse one JSON document; returns (object, note). Raises MalformedFile."""
    if not data.strip():
        raise MalformedFile("empty file")
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as strict_error:
        try:
            return json.loads(data.decode("utf-8")), NON_STRICT_NOTE
        except UnicodeDecodeError as exc:
            raise MalformedFile(f"not UTF-8: {exc}") from None
        except json.JSONDecodeError:
            raise MalformedFile(f"invalid JSON: {strict_error}") from None


def expect(condition: bool, reason: str) -> None:
    """Flatteners call this for structural checks; a False condition makes the file malformed."""
    if not condition:
        raise MalformedFile(reason)


def expect_object(value: object, where: str) -> dict:
    expect(isinstance(value, dict), f"{where}: expected an object, got {type(value).__name__}")
    return value  # type: ignore[return-value]


def expect_list(value: object, where: str, nullable: bool = False) -> list | None:
    if value is None and nullable:
        return None
    expect(isinstance(value, list), f"{where}: expected a list, got {type(value).__name__}")
    return value  # type: ignore[return-value]
