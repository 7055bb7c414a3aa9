"""Kind ``token-lookups``: TokenLookupTableSummaryOfNeuron files -> ``token_lookups``.

One row per token, in source order (``rank``). File-level leftovers (unknown keys, an odd
``dataclass_name``) go to the file log's ``skeleton`` so ``rebuild`` gives the object back.
"""
from __future__ import annotations

from nx import layout
from nx.ingest import extras
from nx.ingest.decode import expect, expect_numbers, expect_object, expect_strings
from nx.ingest.rows import Rows, ranked

KIND = "token-lookups"
DIRECTORY, SUFFIX, TABLES, MAIN_TABLE = layout.KINDS[KIND][1:]  # declared in nx/layout.py
CHUNK = 1600
DERIVED: dict[str, tuple[str, ...]] = {}
FIELDS = ("tokens", "average_activations")
CLASS = "TokenLookupTableSummaryOfNeuron"


def flatten(obj: object, layer: int, neuron: int) -> tuple[Rows, dict | None]:
    summary = expect_object(obj, CLASS)
    tokens = expect_strings(summary.get("tokens", []), "tokens")
    averages = expect_numbers(summary.get("average_activations", []), "average_activations")
    expect(len(tokens) == len(averages),
           f"{len(tokens)} tokens but {len(averages)} average_activations")
    rows = Rows(TABLES)
    table = rows.columns["token_lookups"]
    table["neuron"].extend([neuron] * len(tokens))
    table["rank"].extend(range(len(tokens)))
    table["token"].extend(tokens)
    table["average_activation"].extend(averages)
    table["extras"].extend([None] * len(tokens))
    return rows, extras.file_skeleton({"": extras.leftovers(summary, FIELDS, CLASS)}, [])


def rebuild(rows: dict[str, list[dict]], layer: int, neuron: int, skeleton: dict | None = None) -> dict:
    ordered = ranked(rows["token_lookups"])
    values = {"tokens": [r["token"] for r in ordered],
              "average_activations": [r["average_activation"] for r in ordered]}
    return extras.restore(values, (skeleton or {}).get(""), CLASS)
