"""Keeping what nx does not model: unknown keys, absent known keys, odd ``dataclass_name``s,
and the older names of renamed keys.

Every source object has known fields (declared by the flattener) and a ``dataclass_name``.
``leftovers`` returns what a row cannot hold -- unknown keys with their values, the names of
known keys that were absent (absent is not null), and a ``dataclass_name`` other than the
expected one -- and ``restore`` puts an object back together from its known fields and its
leftovers. Rows keep leftovers as JSON in their ``extras`` column, keyed by object path.

Some files use the names keys had before the seed renamed them (TDB still reads them:
``idx`` for ``neuron_index``, ``scored_explanation_or_baseline_list`` for
``scored_explanations``, ...). ``adopt`` puts such a key under today's name, so its values
land in the columns, and notes the old name among the leftovers; ``restore`` writes it back.

Leftovers are written as JSON by Python's json, which recurses: ``to_json`` first checks
they nest no deeper than ``decode.MAX_DEPTH`` (a file read by ``decode`` never does), so a
hostile object handed to a flattener makes the file malformed, not the run crash.
"""
from __future__ import annotations

from typing import Iterable

import json

from nx.ingest.decode import MAX_DEPTH, MalformedFile, depth_within

ABSENT_KEY = "__absent__"
RENAMED_KEY = "__renamed__"  # today's name -> the older name the file used
NULL_SIDES = "__null__"  # in a file skeleton: the sides (c_fc, input_positive, ...) that were null
_MISSING = object()


def adopt(obj: dict, older_names: dict[str, str]) -> dict:
    """``obj`` with keys under older names (``older_names``: old -> today's) renamed, the
    renaming noted under ``RENAMED_KEY`` (an unknown key to ``leftovers``, so it is kept). A
    key present under both names is left alone: the old one is then just an unknown key."""
    renamed = {new: old for old, new in older_names.items() if old in obj and new not in obj}
    if not renamed:
        return obj
    today = {old: new for new, old in renamed.items()}
    adopted = {today.get(k, k): v for k, v in obj.items()}
    adopted[RENAMED_KEY] = renamed
    return adopted


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
    renamed = extra.pop(RENAMED_KEY, None) or {}
    obj = {renamed.get(k, k): v for k, v in known_values.items() if k not in absent}
    name = extra.pop("dataclass_name", dataclass_name)
    obj.update(extra)
    if name is not None and "dataclass_name" not in absent:
        obj["dataclass_name"] = name
    return obj


def dumps(by_path: dict[str, dict | None]) -> str | None:
    """JSON for an ``extras`` column: only the paths that have leftovers; None if none do."""
    kept = {path: value for path, value in by_path.items() if value}
    return to_json(kept) if kept else None


def to_json(value: object) -> str:
    """``value`` as JSON text; raises MalformedFile if it nests deeper than MAX_DEPTH."""
    if not depth_within(value, MAX_DEPTH):
        raise MalformedFile(f"unknown fields nested deeper than {MAX_DEPTH} levels")
    # stdlib json, not orjson: it keeps NaN/Infinity in unknown fields instead of writing null
    return json.dumps(value, ensure_ascii=False)


def loads(text: str | None) -> dict:
    return json.loads(text) if text else {}


def file_skeleton(by_path: dict[str, dict | None], null_sides: list[str]) -> dict | None:
    """A file's skeleton for the ingest log: leftovers by path and the sides that were null;
    None when the file holds nothing a row cannot."""
    kept = {path: value for path, value in by_path.items() if value}
    if null_sides:
        kept[NULL_SIDES] = null_sides
    if not depth_within(kept, MAX_DEPTH):
        raise MalformedFile(f"unknown fields nested deeper than {MAX_DEPTH} levels")
    return kept or None
