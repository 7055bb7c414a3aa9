"""Bytes of one source file -> a parsed JSON object, or a one-line reason it is malformed.

orjson is the fast path. Files written by other tools may hold ``NaN``/``Infinity`` literals
that strict parsers reject and Python's json accepts: those are read through json, and the
file is noted as non-strict rather than called malformed.

Limits, so that one hostile file is one malformed file and never a crashed run:

- ``MAX_DEPTH``: arrays and objects nested deeper than this make the file malformed (real
  files nest about 10 deep; Python's json recurses, and Python's recursion limit is about
  1,000). Known fields are checked by type, which stops any nesting where a column expects a
  value; unknown fields are checked for depth where they are written (``extras.to_json``);
  a document too deep for the parsers (orjson stops at 1,024 levels, Python's json at its
  recursion limit) is malformed here.
- Values are checked by type where they reach a column (``expect_number``, ``expect_numbers``,
  ``expect_strings``, ...): a list given as a scalar, a number given as a string or object, a
  ``true`` given as a number make the file malformed with the path of the value. Integers
  beyond 2**53 (which float64 cannot hold exactly) are read as the nearest float64, as
  simdjson's fast path reads them, so both paths store the same value.
- A string holding half of a UTF-16 surrogate pair (``"\\ud800"``: orjson refuses it, Python's
  json reads it) cannot be stored as UTF-8: the file is malformed.
- A file the source would not read (``Refused``: a FIFO, a device, a file over the size limit)
  is malformed with the source's reason.
"""
from __future__ import annotations

import json
import re
from itertools import chain

import orjson

from nx.layout import NON_STRICT_NOTE  # noqa: F401  (the _ingest note export looks for)

MAX_DEPTH = 64
EXACT_INTEGERS = 2 ** 53  # float64 holds every integer of at most this magnitude exactly
_NUMBER_TYPES = frozenset((float, int, type(None)))
_STRING_TYPES = frozenset((str, type(None)))
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class MalformedFile(Exception):
    """The file cannot be ingested; the message is the one-line reason for the file log."""


class Refused(bytes):
    """No bytes: stands for a file the source did not read (not a regular file, or too
    large); ``decode`` makes it malformed with ``reason``."""

    reason: str

    def __new__(cls, reason: str) -> "Refused":
        refused = super().__new__(cls, b"")
        refused.reason = reason
        return refused


def decode(data: bytes) -> tuple[object, str | None]:
    """Parse one JSON document; returns (object, note). Raises MalformedFile."""
    if isinstance(data, Refused):
        raise MalformedFile(data.reason)
    if not data.strip():
        raise MalformedFile("empty file")
    try:
        obj, note = orjson.loads(data), None
    except orjson.JSONDecodeError as strict_error:
        try:
            obj, note = json.loads(data.decode("utf-8")), NON_STRICT_NOTE
        except UnicodeDecodeError as exc:
            raise MalformedFile(f"not UTF-8: {exc}") from None
        except RecursionError:
            raise MalformedFile(f"nested deeper than {MAX_DEPTH} levels") from None
        except json.JSONDecodeError:
            raise MalformedFile(f"invalid JSON: {strict_error}") from None
        if _SURROGATE_ESCAPE.search(data):  # a pair is fine, half of one is not Unicode
            try:
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise MalformedFile(f"a string holds a lone surrogate ({exc.object[exc.start]!r}): not Unicode") from None
            except RecursionError:
                raise MalformedFile(f"nested deeper than {MAX_DEPTH} levels") from None
    return obj, note


def depth_within(value: object, limit: int) -> bool:
    """Whether arrays and objects nest at most ``limit`` deep; level by level, without
    recursion, looking into a container's members only when some are containers."""
    level = [value] if type(value) in (list, dict) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return False
        below = []
        for container in level:
            members = container.values() if type(container) is dict else container
            types = set(map(type, members))
            if list in types or dict in types:
                below.extend(m for m in members if type(m) is list or type(m) is dict)
        level = below
    return True


def expect(condition: bool, reason: str) -> None:
    """Flatteners call this for structural checks; a False condition makes the file malformed."""
    if not condition:
        raise MalformedFile(reason)


# (the checks below build their reason only when they fail: they run for every value)
def expect_object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise MalformedFile(f"{where}: expected an object, got {_type_name(value)}")
    return value


def expect_list(value: object, where: str, nullable: bool = False) -> list | None:
    if value is None and nullable:
        return None
    if not isinstance(value, list):
        raise MalformedFile(f"{where}: expected a list, got {_type_name(value)}")
    return value


def expect_string(value: object, where: str) -> str | None:
    """A string or null."""
    if value is not None and type(value) is not str:
        raise MalformedFile(f"{where}: expected a string, got {_type_name(value)}")
    return value


def expect_number(value: object, where: str) -> float | int | None:
    """A number or null (not a boolean); an integer float64 cannot hold exactly becomes the
    nearest float64."""
    kind = type(value)
    if kind is float or value is None:
        return value  # type: ignore[return-value]
    if kind is not int:
        raise MalformedFile(f"{where}: expected a number, got {_type_name(value)}")
    return value if -EXACT_INTEGERS <= value <= EXACT_INTEGERS else _to_float(value)  # type: ignore[operator]


def expect_numbers(value: object, where: str, nullable: bool = False) -> list | None:
    """A list of numbers and nulls (the same list, or a copy with big integers as floats)."""
    values = expect_list(value, where, nullable)
    if values is None:
        return None
    types = set(map(type, values))
    if types <= {float}:
        return values
    if not types <= _NUMBER_TYPES:
        index = next(i for i, v in enumerate(values) if type(v) not in _NUMBER_TYPES)
        raise MalformedFile(f"{where}[{index}]: expected a number, got {_type_name(values[index])}")
    if int in types and any(type(v) is int and not -EXACT_INTEGERS <= v <= EXACT_INTEGERS for v in values):
        return [_to_float(v) if type(v) is int else v for v in values]
    return values


def expect_number_lists(value: object, where: str, nullable: bool = False) -> list | None:
    """A list of lists of numbers and nulls (distributions); inner nulls allowed."""
    values = expect_list(value, where, nullable)
    if values is None:
        return None
    # all inner values' types in one pass in C (a scored sequence holds dozens of these lists)
    if set(map(type, values)) <= {list} and set(map(type, chain.from_iterable(values))) <= {float}:
        return values
    checked = [expect_numbers(inner, f"{where}[{i}]", nullable=True) for i, inner in enumerate(values)]
    return values if all(c is v for c, v in zip(checked, values)) else checked


def expect_strings(value: object, where: str, nullable: bool = False) -> list | None:
    """A list of strings and nulls."""
    values = expect_list(value, where, nullable)
    if values is not None and not set(map(type, values)) <= _STRING_TYPES:
        index = next(i for i, v in enumerate(values) if type(v) not in _STRING_TYPES)
        raise MalformedFile(f"{where}[{index}]: expected a string, got {_type_name(values[index])}")
    return values


def _to_float(value: int) -> float:
    """The nearest float64, infinite beyond its range (as a parser reading ``1e400`` gives)."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def _type_name(value: object) -> str:
    """JSON's name for a parsed value's type, for reasons."""
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)
