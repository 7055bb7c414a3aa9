"""What explain reads from the warehouse: each chosen neuron's records and token lookup table.

Only the records the splits can use are read: top records of rank < 20 and random records of
rank < 15 (n = 5 per split, strides 4 and 3), pushed down to the Parquet reader as filters.
A neuron without records (or without a lookup table, for the token-lookup explainer) comes
back with ``missing`` set: it will be recorded as failed with that reason, not sent anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from nx.explain import splits
from nx.warehouse import Warehouse

Record = tuple[list[str], list[float]]


@dataclass
class NeuronInput:
    layer: int
    neuron: int
    top: list[Record] = field(default_factory=list)
    random: list[Record] = field(default_factory=list)
    lookup: list[str] = field(default_factory=list)
    missing: str | None = None


def _neuron_filter(neurons: list[int] | None) -> list[tuple]:
    return [("neuron", "in", neurons)] if neurons is not None else []


def load_layer(warehouse: Warehouse, model: str, layer: int, neurons: list[int] | None,
               explainer: str) -> list[NeuronInput]:
    """Inputs of the chosen neurons of one layer (all neurons with records if ``neurons`` is None)."""
    top_count = splits.EXAMPLES_PER_SPLIT * len(splits.TOP_SPLITS)
    random_count = splits.EXAMPLES_PER_SPLIT * len(splits.RANDOM_SPLITS)
    by_neuron = _neuron_filter(neurons)
    records = warehouse.read_table(
        "activation_records", {"model": model, "layer": layer},
        columns=["neuron", "sample", "rank", "tokens", "activations"],
        filters=[by_neuron + [("sample", "=", "top"), ("rank", "<", top_count)],
                 by_neuron + [("sample", "=", "random"), ("rank", "<", random_count)]],
    ).sort_by([("neuron", "ascending"), ("rank", "ascending")])
    found: dict[int, NeuronInput] = {}
    columns = records.to_pydict()
    for neuron, sample, tokens, activations in zip(columns["neuron"], columns["sample"],
                                                   columns["tokens"], columns["activations"]):
        item = found.setdefault(neuron, NeuronInput(layer, neuron))
        (item.top if sample == "top" else item.random).append((tokens, activations))
    chosen = sorted(found) if neurons is None else list(dict.fromkeys(neurons))
    items = [found.get(n) or NeuronInput(layer, n, missing="no activation records in the warehouse")
             for n in chosen]
    if explainer == "token-lookup" and items:
        lookups = warehouse.read_table(
            "token_lookups", {"model": model, "layer": layer}, columns=["neuron", "rank", "token"],
            filters=_neuron_filter([i.neuron for i in items]) or None,
        ).sort_by([("neuron", "ascending"), ("rank", "ascending")]).to_pydict()
        tokens_of: dict[int, list[str]] = {}
        for neuron, token in zip(lookups["neuron"], lookups["token"]):
            tokens_of.setdefault(neuron, []).append(token)
        for item in items:
            item.lookup = tokens_of.get(item.neuron, [])
            if not item.lookup and not item.missing:
                item.missing = "no token lookup table in the warehouse"
    return items
