"""nx: a columnar warehouse and query tool for OpenAI's automated-interpretability neuron data.

Public API (imports are lazy so that ``nx sql`` starts fast):

- ``nx.ingest.run(...)``: flatten public JSON files into the warehouse's Parquet tables;
- ``nx.connect(warehouse=None)``: a DuckDB connection with a view per table;
- ``nx.sql(text)`` / ``nx.query(name, **params)``: run SQL / a named query, get an Arrow table
  (``format="polars"`` or ``"pandas"``: a DataFrame);
- ``nx.scan(table)``: a polars LazyFrame with partition pruning, over a table or a derived view;
- ``nx.neuron(layer, neuron)``: everything about one neuron as plain Python objects;
- ``nx.export(...)``: tables back to the public JSON files;
- ``nx.explain.run(...)``: generate, simulate and score new explanations.

``dir(nx)`` lists these (tab completion), though none is imported before it is used.
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "connect": ("nx.queries", "connect"),
    "sql": ("nx.queries", "sql"),
    "query": ("nx.queries", "query"),
    "scan": ("nx.queries", "scan"),
    "neuron": ("nx.queries.neuron", "neuron"),
    "export": ("nx.json_export", "export"),
    "Warehouse": ("nx.warehouse", "Warehouse"),
}

__all__ = ["connect", "sql", "query", "scan", "neuron", "export", "Warehouse", "ingest", "explain"]


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    if name in ("ingest", "explain", "queries", "schema"):
        import importlib

        return importlib.import_module(f"nx.{name}")
    raise AttributeError(f"module 'nx' has no attribute {name!r}")
