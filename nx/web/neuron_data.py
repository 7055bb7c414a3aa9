"""One neuron's rows, read from the few files that hold it: the data behind the neuron page.

The viewer answers in well under 100 ms by opening only the files that hold a neuron
(``FileIndex``, from the statistics in each table's Delta log), and takes the related
neurons' explanations from the catalog's sorted array of best public explanations
(``Catalog.best``) instead of reading every layer they sit in. The result has the shape of ``nx.neuron(...).asdict()``
(the ``Neuron`` dataclass is reused), so the JSON twin and ``nx show --json`` agree.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from typing import Callable

import duckdb

from nx.errors import NotFoundError, QueryError, WarehouseError
from nx.queries import row_groups, views
from nx.queries.neuron import WEIGHT_SIDES, Neuron, sort_rows
from nx.schema import TABLES
from nx.warehouse import Warehouse

# Columns the page draws from a scored sequence; the JSON twin reads them all.
PAGE_SEQUENCE_COLUMNS = ("run", "explanation_index", "seq_index", "sample", "tokens", "true_activations",
                         "expected_activations", "activation_scale", "ev_correlation_score", "rsquared_score",
                         "absolute_dev_explained_score", "sequence_id")


class FileIndex:
    """Which data files of a table may hold a given neuron: those of the table's current
    Delta version whose ``(layer, neuron)`` statistics include it (the log is re-read only
    when its version changes; DuckDB's row-group statistics then skip the rest of a file)."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def files(self, table: str, partitions: dict, neuron: int) -> list[tuple[str, object]]:
        """The table's files in ``partitions`` that may hold ``neuron``: (URL, log entry)."""
        spec = TABLES[table]
        columns = {k: v for k, v in partitions.items() if k not in spec.partition_names}
        return [(self.warehouse.url_of(table, f.path), f) for f in self.warehouse.files(table, partitions)
                if f.may_hold(neuron=neuron, **columns)]


def _rows(cursor: duckdb.DuckDBPyConnection, table: str, files: list[tuple[str, object]], layer: int, neuron: int,
          order: tuple[str, ...], columns: tuple[str, ...] | None = None) -> list[dict]:
    """The neuron's rows, sorted by ``order``: local files with small row groups read through
    them (``row_groups``, as ``nx.neuron`` does), the others by DuckDB."""
    if not files:
        return []
    spec = TABLES[table]
    wanted = list(columns) if columns else [*spec.columns.names, *spec.partition_names]
    try:
        found, left = row_groups.read_local(files, table, layer, neuron, wanted)
    except WarehouseError as exc:  # a spoiled file: what DuckDB's error about it gives (a 4xx), not a 503
        raise QueryError(str(exc)) from exc
    if left:
        selected = ", ".join(views.quote(c) for c in columns) if columns else "*"
        sql = f"select {selected} from {views.read_parquet_sql(table, '$files')} where layer = $layer and neuron = $neuron"
        found += cursor.sql(sql, params={"files": left, "layer": layer, "neuron": neuron}).to_arrow_table().to_pylist()
    return sort_rows(found, order)


def _strip(row: dict, *names: str) -> dict:
    for name in ("model", "layer", "neuron", *names):
        row.pop(name, None)
    return row


def read(cursor: duckdb.DuckDBPyConnection, files: FileIndex, catalog, layer: int, neuron: int,
         full: bool = True, side: Callable[[Callable], Future] | None = None) -> dict:
    """Everything about one neuron, as ``nx.neuron(...).asdict()``; NotFoundError if nothing.

    ``full=False`` leaves out the scored sequences' distributions (the page does not draw them).
    ``side(work)`` runs ``work(cursor)`` in another thread: the activation records, the
    slowest read (DuckDB decodes a file's token lists up to the neuron's rows: 10-45 ms), are
    read there while this thread reads the rest."""
    model, runs = catalog.model, catalog.run_names()
    base = {"model": model, "layer": layer}
    found = Neuron(model, layer, neuron)

    def of(table: str, order: tuple[str, ...], columns=None, runs_too: bool = False, on=None) -> list[dict]:
        parts = [{**base, "run": run} for run in runs] if runs_too else [base]
        paths = [p for partitions in parts for p in files.files(table, partitions, neuron)]
        return _rows(on or cursor, table, paths, layer, neuron, order, columns)

    records = side(lambda other: of("activation_records", ("sample", "quantile", "rank"), on=other)) if side else None
    stats = of("neurons", ())
    found.stats = _strip(stats[0]) if stats else None
    explanations = of("explanations", ("run", "-score", "explanation_index"), runs_too=True)
    explanations.sort(key=lambda row: row["run"] != "public")  # public first, then the runs by name
    sequences = of("explanation_sequences", ("run", "explanation_index", "seq_index"),
                   None if full else PAGE_SEQUENCE_COLUMNS, runs_too=True)
    by_explanation: dict[tuple[str, int], list[dict]] = {}
    for row in sequences:
        by_explanation.setdefault((row["run"], row["explanation_index"]), []).append(
            _strip(row, "run", "explanation_index"))
    for row in explanations:
        row["sequences"] = by_explanation.get((row["run"], row["explanation_index"]), [])
        found.explanations.append(_strip(row))
    found.token_lookups = [_strip(r) for r in of("token_lookups", ("rank",))]
    found.token_weights = {side: [] for side in WEIGHT_SIDES}
    for row in of("token_weights", ("direction", "-sign", "rank")):
        found.token_weights[f"{row['direction']}_{row['sign']}"].append(_strip(row, "direction", "sign"))
    _add_related(found, of("related_neurons", ("direction", "-sign", "rank")), catalog.best)
    for row in records.result() if records else of("activation_records", ("sample", "quantile", "rank")):
        getattr(found, f"{row['sample']}_records").append(_strip(row, "sample"))
    if found.empty:
        raise NotFoundError(_not_found(cursor, model, layer, neuron))
    # Neuron.asdict() deep-copies every token list (75 ms a neuron at full size); nothing is shared here.
    return {f.name: getattr(found, f.name) for f in dataclasses.fields(found)}


def _add_related(found: Neuron, related: list[dict], best) -> None:
    explained = best([(r["other_layer"], r["other_neuron"]) for r in related])
    for row in related:
        explanation, score = explained.get((row["other_layer"], row["other_neuron"]), (None, None))
        entry = {"sign": row["sign"], "rank": row["rank"], "layer": row["other_layer"],
                 "neuron": row["other_neuron"], "weight": row["weight"], "explanation": explanation, "score": score}
        (found.upstream if row["direction"] == "input" else found.downstream).append(entry)


def _not_found(cursor: duckdb.DuckDBPyConnection, model: str, layer: int, neuron: int) -> str:
    message = f"neuron {layer}/{neuron} of model {model} is not in the warehouse"
    logged = cursor.sql('select kind, status from "_ingest" where model = $model and layer = $layer '
                        "and neuron = $neuron order by kind",
                        params={"model": model, "layer": layer, "neuron": neuron}).fetchall()
    if logged:
        return f"{message}; its source files were logged as: {', '.join(f'{k} {s}' for k, s in logged)}"
    return message
