"""Kind ``related-neurons``: weight-based connection files -> ``related_neurons``.

``c_fc`` is the input side (upstream neurons), ``c_proj`` the output side (downstream); each
holds top positive and negative neurons ("L_N" names) with parallel weights. A null side
(layer 0 has no upstream MLP) is remembered in the file log's skeleton; a name that is not
"L_N" is kept raw in ``extras``, and so is a name whose numbers are not plain ASCII decimals
or do not fit the columns (a ``"١_٢"`` is not neuron 1_2).
"""
from __future__ import annotations

import json
import re

from nx import layout
from nx.ingest import extras
from nx.ingest.decode import expect, expect_list, expect_numbers, expect_object
from nx.ingest.rows import Rows, ranked
from nx.keys import neuron_name

KIND = "related-neurons"
DIRECTORY, SUFFIX, TABLES, MAIN_TABLE = layout.KINDS[KIND][1:]  # declared in nx/layout.py
CHUNK = 1600
DERIVED: dict[str, tuple[str, ...]] = {}
DIRECTIONS = {"c_fc": "input", "c_proj": "output"}
SIGNS = ("positive", "negative")
SIDE_FIELDS = tuple(f"top_{sign}_{what}" for sign in SIGNS for what in ("neurons", "weights"))
# ASCII digits only (int() also takes "+1", " 1", "1_0" and other scripts' digits)
_NAME = re.compile(r"([0-9]{1,10})_([0-9]{1,10})")
_INT32 = 2 ** 31


def _other_neuron(name: object) -> tuple[int, int] | None:
    """(layer, neuron) of an "L_N" name; None for anything else or what the columns cannot hold."""
    match = _NAME.fullmatch(name) if type(name) is str else None
    if match is None:
        return None
    layer, neuron = int(match[1]), int(match[2])
    return (layer, neuron) if layer < _INT32 and neuron < _INT32 else None


def flatten(obj: object, layer: int, neuron: int) -> tuple[Rows, dict | None]:
    connections = expect_object(obj, "related neurons")
    rows = Rows(TABLES)
    skeleton: dict = {"": extras.leftovers(connections, tuple(DIRECTIONS), None)}
    null_sides = []
    for key, direction in DIRECTIONS.items():
        if key not in connections:
            continue
        if connections[key] is None:
            null_sides.append(key)
            continue
        side = expect_object(connections[key], key)
        skeleton[key] = extras.leftovers(side, SIDE_FIELDS, None)
        for sign in SIGNS:
            names = expect_list(side.get(f"top_{sign}_neurons", []), f"{key}.top_{sign}_neurons")
            weights = expect_numbers(side.get(f"top_{sign}_weights", []), f"{key}.top_{sign}_weights")
            expect(len(names) == len(weights), f"{key}: {len(names)} {sign} neurons but {len(weights)} weights")
            for rank, (name, weight) in enumerate(zip(names, weights)):
                other = _other_neuron(name)
                other_layer, other_neuron = other if other else (None, None)
                # kept raw when it would not be written back the same ("05_12", 7, null)
                extra = None if other and neuron_name(*other) == name else extras.to_json({"name": name})
                rows.append("related_neurons", neuron=neuron, direction=direction, sign=sign, rank=rank,
                            other_layer=other_layer, other_neuron=other_neuron, weight=weight, extras=extra)
    return rows, extras.file_skeleton(skeleton, null_sides)


def rebuild(rows: dict[str, list[dict]], layer: int, neuron: int, skeleton: dict | None = None) -> dict:
    skeleton = skeleton or {}
    values: dict = {}
    for key, direction in DIRECTIONS.items():
        if key in skeleton.get(extras.NULL_SIDES, ()):
            values[key] = None
            continue
        side: dict = {}
        for sign in SIGNS:
            ordered = ranked(rows["related_neurons"], direction=direction, sign=sign)
            side[f"top_{sign}_neurons"] = [
                json.loads(r["extras"])["name"] if r["extras"] else neuron_name(r["other_layer"], r["other_neuron"])
                for r in ordered]
            side[f"top_{sign}_weights"] = [r["weight"] for r in ordered]
        values[key] = extras.restore(side, skeleton.get(key), None)
    return extras.restore(values, skeleton.get(""), None)
