"""Keeping what nx does not model: unknown keys, absent known keys, odd ``dataclass_name``s.

Every source object has known fields (declared by the flattener) and a ``dataclass_name``.
``leftovers`` returns what a row cannot hold -- unknown keys with their values, the names of
known keys that were absent (absent is not null), and a ``dataclass_name`` other than the
expected one -- and ``restore`` puts an object back together from its known fields and its
leftovers. Rows keep leftovers as JSON in their ``extras`` column, keyed by object path.
"""
from __future__ import annotations

from typing import Iterable

import json

ABSENT_KEY = "__absent__"
NULL_SIDES = "__null__"  # in a file skeleton: the sides (c_fc, input_positive, ...) that were null
_MISSING = object()


def leftovers(obj: dict, known: Iterable[str], dataclass_name: str | None) -> dict | None:
    known = tuple(known)
    # With no expected class name (related neurons: the class is unpublished) a
    # dataclass_name is kept like any other unknown key.
    out = {k: v for k, v in obj.items()
           if k not in known and (dataclass_name is None or k != "dataclass_name")}
    absent = [k for k in known if k not in obj]
    if dataclass_name is not None:
        found = obj.get("dataclass_name", _MISSING)
        if found is _MISSING:
            absent.append("dataclass_name")
        elif found != dataclass_name:
            out["dataclass_name"] = found
    if absent:
        out[ABSENT_KEY] = absent
    return out or None


def restore(known_values: dict, extra: dict | None, dataclass_name: str | None) -> dict:
    """The object: known fields in declared order, unknown ones, then dataclass_name (last,
    as the seed's serializer writes it)."""
    extra = dict(extra or {})
    absent = set(extra.pop(ABSENT_KEY, ()))
    obj = {k: v for k, v in known_values.items() if k not in absent}
    name = extra.pop("dataclass_name", dataclass_name)
    obj.update(extra)
    if name is not None and "dataclass_name" not in absent:
        obj["dataclass_name"] = name
    return obj


def dumps(by_path: dict[str, dict | None]) -> str | None:
    """JSON for an ``extras`` column: only the paths that have leftovers; None if none do."""
    kept = {path: value for path, value in by_path.items() if value}
    # stdlib json, not orjson: it keeps NaN/Infinity in unknown fields instead of writing null
    return json.dumps(kept, ensure_ascii=False) if kept else None


def loads(text: str | None) -> dict:
    return json.loads(text) if text else {}


def file_skeleton(by_path: dict[str, dict | None], null_sides: list[str]) -> dict | None:
    """A file's skeleton for the ingest log: leftovers by path and the sides that were null;
    None when the file holds nothing a row cannot."""
    kept = {path: value for path, value in by_path.items() if value}
    if null_sides:
        kept[NULL_SIDES] = null_sides
    return kept or None
