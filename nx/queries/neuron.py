"""Everything the warehouse holds about one neuron, as plain Python objects (``nx.neuron``).

Reads only the neuron's layer partition of each table (and, for the explanations of its
related neurons, only those neurons' layers), with a filter on ``neuron`` that DuckDB checks
against each file's statistics: fast enough for a viewer (< 100 ms at GPT-2 XL scale, see
bench/query.py). ``nx show`` draws the result (``card.py``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import duckdb

from nx.errors import NotFoundError, WarehouseError
from nx.queries import views
from nx.queries.readonly import message_of
from nx.schema import TABLES
from nx.settings import DEFAULT_MODEL
from nx.warehouse import Warehouse

WEIGHT_SIDES = ("input_positive", "input_negative", "output_positive", "output_negative")


@dataclass
class Neuron:
    """One neuron: its statistics, explanations (every run, with their scored sequences),
    activation records, lookup-table and weight-based tokens, and related neurons with their
    best public explanation. Lists keep the source order (``rank``)."""

    model: str
    layer: int
    neuron: int
    stats: dict | None = None
    explanations: list[dict] = field(default_factory=list)
    top_records: list[dict] = field(default_factory=list)
    random_records: list[dict] = field(default_factory=list)
    quantile_records: list[dict] = field(default_factory=list)
    token_lookups: list[dict] = field(default_factory=list)
    token_weights: dict[str, list[dict]] = field(default_factory=dict)
    upstream: list[dict] = field(default_factory=list)
    downstream: list[dict] = field(default_factory=list)

    def asdict(self) -> dict:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return not (self.stats or self.explanations or self.top_records or self.random_records
                    or self.quantile_records or self.token_lookups or any(self.token_weights.values())
                    or self.upstream or self.downstream)


class _LayerReader:
    """Rows of one model's tables, read partition by partition."""

    def __init__(self, warehouse: Warehouse, model: str):
        self.warehouse = warehouse
        self.model = model
        self.con = duckdb.connect()
        views.connect_filesystem(self.con, warehouse)

    def glob(self, table: str, layer: int, run: str = "*", **partitions: str) -> str:
        values = {"model": self.model, "run": run, "layer": layer, **partitions}
        parts = [f"{key}={values.get(key, '*')}" for key in TABLES[table].partition_names]
        return self.warehouse.location.url_of(f"{self.warehouse.table_path(table)}/{'/'.join(parts)}/*.parquet")

    def rows(self, table: str, globs: list[str], where: str, params: dict, order: str) -> list[dict]:
        spec = TABLES[table]
        hive_types = ", ".join(f"{views.literal(k)}: {views.literal(v)}" for k, v in spec.hive_types.items())
        sql = (f"select * from read_parquet($globs, hive_partitioning = true, hive_types = {{{hive_types}}}) "
               f"where {where} order by {order}")
        try:
            return self.con.sql(sql, params={"globs": globs, **params}).to_arrow_table().to_pylist()
        except duckdb.IOException as exc:
            if "No files found" not in str(exc):
                raise WarehouseError(f"cannot read {table} of {self.warehouse.url}: {message_of(exc)}") from exc
        # read_parquet fails if any glob of its list matches nothing: read the others.
        existing = [g for g in globs if len(globs) > 1 and self.warehouse.fs.glob(g)]
        return self.rows(table, existing, where, params, order) if existing else []


def _strip(row: dict, *names: str) -> dict:
    for name in ("model", "layer", "neuron", *names):
        row.pop(name, None)
    return row


def neuron(layer: int, neuron: int, model: str = DEFAULT_MODEL, warehouse: str | Warehouse | None = None) -> Neuron:
    """Everything about neuron ``neuron`` of ``layer``; NotFoundError if no table has a row of it.

    >>> card = nx.neuron(5, 131)
    >>> card.explanations[0]["explanation"], card.top_records[0]["tokens"][:5]
    """
    from nx.queries import open_warehouse

    location = open_warehouse(warehouse)
    reader = _LayerReader(location, model)
    where, params = "neuron = $neuron", {"neuron": int(neuron)}
    found = Neuron(model, int(layer), int(neuron))

    stats = reader.rows("neurons", [reader.glob("neurons", layer)], where, params, "neuron")
    found.stats = _strip(stats[0]) if stats else None
    records = reader.rows("activation_records", [reader.glob("activation_records", layer)], where, params,
                          "sample, quantile, rank")
    for row in records:
        getattr(found, f"{row['sample']}_records").append(_strip(row, "sample"))
    _add_explanations(found, reader, where, params)
    found.token_lookups = [_strip(r) for r in reader.rows("token_lookups", [reader.glob("token_lookups", layer)],
                                                           where, params, "rank")]
    weights = reader.rows("token_weights", [reader.glob("token_weights", layer)], where, params,
                          "direction, sign desc, rank")
    found.token_weights = {side: [] for side in WEIGHT_SIDES}
    for row in weights:
        found.token_weights[f"{row['direction']}_{row['sign']}"].append(_strip(row, "direction", "sign"))
    _add_related(found, reader, where, params)
    if found.empty:
        raise NotFoundError(_not_found(found, location, reader))
    return found


def _add_explanations(found: Neuron, reader: _LayerReader, where: str, params: dict) -> None:
    explanations = reader.rows("explanations", [reader.glob("explanations", found.layer)], where, params,
                               "run = 'public' desc, run, score desc nulls last, explanation_index")
    sequences = reader.rows("explanation_sequences", [reader.glob("explanation_sequences", found.layer)],
                            where, params, "run, explanation_index, seq_index")
    by_explanation: dict[tuple[str, int], list[dict]] = {}
    for row in sequences:
        key = (row["run"], row["explanation_index"])
        by_explanation.setdefault(key, []).append(_strip(row, "run", "explanation_index"))
    for row in explanations:
        row["sequences"] = by_explanation.get((row["run"], row["explanation_index"]), [])
        found.explanations.append(_strip(row))


def _add_related(found: Neuron, reader: _LayerReader, where: str, params: dict) -> None:
    related = reader.rows("related_neurons", [reader.glob("related_neurons", found.layer)], where, params,
                          "direction, sign desc, rank")
    others = sorted({(r["other_layer"], r["other_neuron"]) for r in related})
    best: dict[tuple[int, int], dict] = {}
    if others:
        layers = sorted({layer for layer, _ in others})
        globs = [reader.glob("explanations", layer, run="public") for layer in layers]
        rows = reader.rows("explanations", globs,
                           "(layer, neuron) in (select unnest($layers), unnest($neurons))",
                           {"layers": [l for l, _ in others], "neurons": [n for _, n in others]},
                           "score desc nulls last, explanation_index")
        for row in rows:  # best first: the first row of a neuron wins
            best.setdefault((row["layer"], row["neuron"]), row)
    for row in related:
        other = best.get((row["other_layer"], row["other_neuron"]), {})
        entry = {"sign": row["sign"], "rank": row["rank"], "layer": row["other_layer"],
                 "neuron": row["other_neuron"], "weight": row["weight"],
                 "explanation": other.get("explanation"), "score": other.get("score")}
        (found.upstream if row["direction"] == "input" else found.downstream).append(entry)


def _not_found(found: Neuron, location: Warehouse, reader: _LayerReader) -> str:
    message = f"neuron {found.layer}/{found.neuron} of model {found.model} is not in the warehouse {location.url}"
    logged = reader.rows("_ingest", [reader.glob("_ingest", found.layer)], "neuron = $neuron",
                         {"neuron": found.neuron}, "kind")
    if logged:
        statuses = ", ".join(f"{r['kind']} {r['status']}" for r in logged)
        return f"{message}; its source files were logged as: {statuses}"
    return message
