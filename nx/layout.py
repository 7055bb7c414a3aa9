"""The public dataset's layout: its five kinds, where their files are, which tables hold them.

This is what ingest (which reads the files into tables) and export (which writes the tables
back as files) both know, so it lives here, apart from either: the query layer reads the
warehouse without importing the writer. Each kind's pure ``flatten`` and its inverse
``rebuild`` stay in ``nx/ingest/<kind>.py``, beside each other.

A kind's files are ``{directory}/{layer}/{neuron}{suffix}`` under the source root (for
example ``explanations/31/1593.jsonl``); its rows go to ``tables``, the first-named being the
one whose rows the ``_ingest`` log counts per file being ``main_table``. ``KINDS`` is in the order
``--all`` ingests them: collated activations before explanations, whose top-only and
random-only scores are labelled by joining to the activation records.
"""
from __future__ import annotations

from typing import NamedTuple

from nx.errors import UsageError


class Kind(NamedTuple):
    name: str
    directory: str  # under the source root
    suffix: str
    tables: tuple[str, ...]
    main_table: str  # the table whose rows the _ingest log counts per file


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("collated-activations", "collated-activations", ".json", ("neurons", "activation_records"),
         "activation_records"),
    Kind("explanations", "explanations", ".jsonl", ("explanations", "explanation_sequences"), "explanations"),
    Kind("related-neurons", "related-neurons/weight-based", ".json", ("related_neurons",), "related_neurons"),
    Kind("token-lookups", "related-tokens/activation-based", ".json", ("token_lookups",), "token_lookups"),
    Kind("token-weights", "related-tokens/weight-based", ".json", ("token_weights",), "token_weights"),
)}

# The _ingest log's note on a file read as non-strict JSON (NaN/Infinity literals): export
# writes such a file with those literals again, so its values survive the round trip.
NON_STRICT_NOTE = "non-strict JSON (NaN/Infinity literals) read with Python's json"


def kind(name: str) -> Kind:
    """The kind called ``name``; UsageError naming the kinds otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown kind {name!r}; kinds: {', '.join(KINDS)}") from None


def relative_path(name: str, layer: int, neuron: int) -> str:
    """A neuron's file of kind ``name``, relative to the source root."""
    found = kind(name)
    return f"{found.directory}/{layer}/{neuron}{found.suffix}"


def table_partitions(table: str, model: str, layer: int) -> dict[str, object]:
    """The values that select one layer of an ingested table (the public run's, for explanations)."""
    if table in ("explanations", "explanation_sequences"):
        return {"model": model, "run": "public", "layer": layer}
    return {"model": model, "layer": layer}
