"""What explain reads from the warehouse: which neurons have records, and each neuron's
records and token lookup table, streamed a chunk of neurons at a time (a whole layer's records
as Python lists would take gigabytes).

Only the records the splits can use are read: top records of rank < 20 and random records of
rank < 15 (n = 5 per split, strides 4 and 3), pushed down to the Parquet reader as filters.
A neuron without records (or without a lookup table, for the token-lookup explainer) comes
back with ``missing`` set: it is recorded as failed with that reason, not sent anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from nx.explain import splits
from nx.warehouse import Warehouse

Record = tuple[list[str], list[float]]
NO_RECORDS = "no activation records in the warehouse"
CHUNK = 64

_TOP_ROWS = splits.EXAMPLES_PER_SPLIT * len(splits.TOP_SPLITS)
_RANDOM_ROWS = splits.EXAMPLES_PER_SPLIT * len(splits.RANDOM_SPLITS)


@dataclass
class NeuronInput:
    layer: int
    neuron: int
    top: list[Record] = field(default_factory=list)
    random: list[Record] = field(default_factory=list)
    lookup: list[str] = field(default_factory=list)
    missing: str | None = None


def _filters(neurons: list[int] | None, ranks: bool = True) -> list[list[tuple]]:
    chosen = [("neuron", "in", neurons)] if neurons is not None else []
    return [chosen + [("sample", "=", "top")] + ([("rank", "<", _TOP_ROWS)] if ranks else []),
            chosen + [("sample", "=", "random")] + ([("rank", "<", _RANDOM_ROWS)] if ranks else [])]


def neurons_with_records(warehouse: Warehouse, model: str, layer: int) -> set[int]:
    """Neurons of a layer that have top or random records (reads one integer column)."""
    table = warehouse.read_table("activation_records", {"model": model, "layer": layer},
                                 columns=["neuron"], filters=_filters(None, ranks=False))
    return set(table["neuron"].unique().to_pylist())


def load(warehouse: Warehouse, model: str, layer: int, neurons: list[int], explainer: str,
         available: set[int]) -> list[NeuronInput]:
    """Inputs of some neurons of one layer, in the order given."""
    wanted = [n for n in neurons if n in available]
    found = {n: NeuronInput(layer, n) for n in wanted}
    if wanted:
        records = warehouse.read_table(
            "activation_records", {"model": model, "layer": layer},
            columns=["neuron", "sample", "rank", "tokens", "activations"], filters=_filters(wanted),
        ).sort_by([("neuron", "ascending"), ("rank", "ascending")]).to_pydict()
        for neuron, sample, tokens, activations in zip(records["neuron"], records["sample"],
                                                       records["tokens"], records["activations"]):
            item = found[neuron]
            (item.top if sample == "top" else item.random).append((tokens, activations))
    if explainer == "token-lookup" and wanted:
        lookups = warehouse.read_table(
            "token_lookups", {"model": model, "layer": layer}, columns=["neuron", "rank", "token"],
            filters=[("neuron", "in", wanted)],
        ).sort_by([("neuron", "ascending"), ("rank", "ascending")]).to_pydict()
        for neuron, token in zip(lookups["neuron"], lookups["token"]):
            found[neuron].lookup.append(token)
        for item in found.values():
            if not item.lookup:
                item.missing = "no token lookup table in the warehouse"
    return [found.get(n) or NeuronInput(layer, n, missing=NO_RECORDS) for n in neurons]


def stream(warehouse: Warehouse, model: str, todo: list[tuple[int, int]], explainer: str,
           available: dict[int, set[int]], chunk: int = CHUNK) -> Iterator[NeuronInput]:
    """Inputs of the (layer, neuron) pairs of ``todo``, in order, read ``chunk`` neurons at a time."""
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        for layer in dict.fromkeys(layer for layer, _ in part):
            neurons = [n for l, n in part if l == layer]
            yield from load(warehouse, model, layer, neurons, explainer, available[layer])
