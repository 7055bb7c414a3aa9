"""Kind ``token-weights``: WeightBasedSummaryOfNeuron files -> ``token_weights``.

The four TokensAndWeights lists (input/output x positive/negative) become rows with
``direction``, ``sign`` and ``rank``. A null list is remembered in the file log's skeleton.
"""
from __future__ import annotations

from nx import layout
from nx.ingest import extras
from nx.ingest.decode import expect, expect_numbers, expect_object, expect_strings
from nx.ingest.rows import Rows, ranked

KIND = "token-weights"
DIRECTORY, SUFFIX, TABLES, MAIN_TABLE = layout.KINDS[KIND][1:]  # declared in nx/layout.py
CHUNK = 1600
DERIVED: dict[str, tuple[str, ...]] = {}
CLASS = "WeightBasedSummaryOfNeuron"
SIDE_CLASS = "TokensAndWeights"
SIDES = {"input_positive": ("input", "positive"), "input_negative": ("input", "negative"),
         "output_positive": ("output", "positive"), "output_negative": ("output", "negative")}


def flatten(obj: object, layer: int, neuron: int) -> tuple[Rows, dict | None]:
    summary = expect_object(obj, CLASS)
    rows = Rows(TABLES)
    table = rows.columns["token_weights"]
    skeleton: dict = {"": extras.leftovers(summary, tuple(SIDES), CLASS)}
    null_sides = []
    for side, (direction, sign) in SIDES.items():
        if side not in summary:
            continue
        value = summary[side]
        if value is None:
            null_sides.append(side)
            continue
        pairs = expect_object(value, side)
        tokens = expect_strings(pairs.get("tokens", []), f"{side}.tokens")
        strengths = expect_numbers(pairs.get("strengths", []), f"{side}.strengths")
        expect(len(tokens) == len(strengths), f"{side}: {len(tokens)} tokens but {len(strengths)} strengths")
        skeleton[side] = extras.leftovers(pairs, ("tokens", "strengths"), SIDE_CLASS)
        n = len(tokens)
        table["neuron"].extend([neuron] * n)
        table["direction"].extend([direction] * n)
        table["sign"].extend([sign] * n)
        table["rank"].extend(range(n))
        table["token"].extend(tokens)
        table["strength"].extend(strengths)
        table["extras"].extend([None] * n)
    return rows, extras.file_skeleton(skeleton, null_sides)


def rebuild(rows: dict[str, list[dict]], layer: int, neuron: int, skeleton: dict | None = None) -> dict:
    skeleton = skeleton or {}
    values: dict = {}
    for side, (direction, sign) in SIDES.items():
        if side in skeleton.get(extras.NULL_SIDES, ()):
            values[side] = None
            continue
        ordered = ranked(rows["token_weights"], direction=direction, sign=sign)
        values[side] = extras.restore({"tokens": [r["token"] for r in ordered],
                                       "strengths": [r["strength"] for r in ordered]}, skeleton.get(side), SIDE_CLASS)
    return extras.restore(values, skeleton.get(""), CLASS)
