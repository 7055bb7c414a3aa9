"""The five source kinds, by name, each with the module that flattens and rebuilds its files.

What each kind is -- its directory, suffix and tables, in the order ``--all`` ingests them --
is declared once in ``nx.layout``, which export reads too; this maps it to ingest's modules.
"""
from __future__ import annotations

from types import ModuleType

from nx import layout
from nx.ingest import (collated_activations, explanations, related_neurons, token_lookups,
                       token_weights)
from nx.layout import table_partitions  # noqa: F401  (ingest's callers import it from here)

_MODULES = {m.KIND: m for m in (collated_activations, explanations, related_neurons, token_lookups, token_weights)}
KINDS: dict[str, ModuleType] = {name: _MODULES[name] for name in layout.KINDS}


def kind_module(name: str) -> ModuleType:
    return KINDS[layout.kind(name).name]


def relative_path(kind: ModuleType, layer: int, neuron: int) -> str:
    return layout.relative_path(kind.KIND, layer, neuron)
