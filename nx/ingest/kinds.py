"""The five source kinds, by name, in the order ``--all`` ingests them.

Collated activations come before explanations: an explanation's top-only and random-only
scores are labelled by joining its sequences to the neuron's activation records.
"""
from __future__ import annotations

from types import ModuleType

from nx.errors import UsageError
from nx.ingest import (collated_activations, explanations, related_neurons, token_lookups,
                       token_weights)

KINDS: dict[str, ModuleType] = {m.KIND: m for m in (
    collated_activations, explanations, related_neurons, token_lookups, token_weights)}


def kind_module(name: str) -> ModuleType:
    try:
        return KINDS[name]
    except KeyError:
        raise UsageError(f"unknown kind {name!r}; kinds: {', '.join(KINDS)}") from None


def relative_path(kind: ModuleType, layer: int, neuron: int) -> str:
    return f"{kind.DIRECTORY}/{layer}/{neuron}{kind.SUFFIX}"


def table_partitions(table: str, model: str, layer: int) -> dict[str, object]:
    if table in ("explanations", "explanation_sequences"):
        return {"model": model, "run": "public", "layer": layer}
    return {"model": model, "layer": layer}

