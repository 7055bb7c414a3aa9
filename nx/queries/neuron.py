"""Everything the warehouse holds about one neuron, as plain Python objects (``nx.neuron``).

Reads only the files that hold the neuron: those whose ``(layer, neuron)`` statistics in the
table's Delta log include it, and of each only the row groups that may hold it
(``row_groups``; DuckDB for remote files and large groups). The best public explanations of
its related neurons come from a table kept in memory. About 40 ms at GPT-2 XL scale (see
bench/query.py). ``nx show`` draws the result (``card.py``).
"""
from __future__ import annotations

import bisect
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import duckdb

from nx.errors import NotFoundError, WarehouseError
from nx.queries import sandbox, views
from nx.queries.catalog import TABLES
from nx.queries.location import Root, locate
from nx.queries.readonly import message_of
from nx.settings import DEFAULT_MODEL

READERS = 4  # threads of one nx.neuron call
WEIGHT_SIDES = ("input_positive", "input_negative", "output_positive", "output_negative")


@dataclass(repr=False)
class Neuron:
    """One neuron: its statistics, explanations (every run, with their scored sequences),
    activation records, lookup-table and weight-based tokens, and related neurons with their
    best public explanation. Lists keep the source order (``rank``).

    Its ``repr`` is one line (counts and the best explanation: the fields hold hundreds of
    kilobytes); in a notebook it shows as a card (``_repr_html_``, ``card.html_card``).
    """

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
    def best_explanation(self) -> dict | None:
        """The highest-scoring explanation, a public one if there is one; None without any."""
        scored = [e for e in self.explanations if e.get("score") is not None]
        public = [e for e in scored if e.get("run") == "public"]
        return max(public or scored, key=lambda e: e["score"], default=None)

    def __repr__(self) -> str:
        best = self.best_explanation
        text = best and best["explanation"] or ""
        said = (f"best {best['score']:.3f} ({best['run']}): {text[:80] + ('…' if len(text) > 80 else '')!r}"
                if best else "no scored explanation")
        count = len(self.explanations)
        return (f"<Neuron {self.model} layer {self.layer} neuron {self.neuron}: {count} explanation"
                f"{'' if count == 1 else 's'}, {said}; {len(self.top_records)} top, {len(self.random_records)} "
                f"random, {len(self.quantile_records)} quantile records; {len(self.token_lookups)} lookup tokens; "
                f"{len(self.upstream)} upstream, {len(self.downstream)} downstream neurons>")

    def _repr_html_(self) -> str:
        from nx.queries.card import html_card  # only a notebook asks

        return html_card(self)

    @property
    def empty(self) -> bool:
        return not (self.stats or self.explanations or self.top_records or self.random_records
                    or self.quantile_records or self.token_lookups or any(self.token_weights.values())
                    or self.upstream or self.downstream)


_SHARED: list[duckdb.DuckDBPyConnection] = []  # opening an in-memory DuckDB costs about 14 ms
_SHARED_LOCK = threading.Lock()
DISTRIBUTIONS = ("distribution_values", "distribution_probabilities", "uncalibrated_distribution_values",
                 "uncalibrated_distribution_probabilities")


class _LayerReader:
    """Rows of one model's tables, read from the files that hold the neurons asked for."""

    def __init__(self, root: Root, model: str):
        self.root = root
        self.model = model
        if root.protocol == "file":
            with _SHARED_LOCK:
                if not _SHARED:
                    # nothing is written, but a spill would go to nx's private directory, not ./.tmp
                    shared = duckdb.connect(config=sandbox.spill_config())
                    # one table a query: join ordering and statistics propagation only cost (~6% of a call)
                    shared.execute("set disabled_optimizers = 'join_order,statistics_propagation'")
                    # footers parsed once per process: compacted files are large, their footers too
                    shared.execute("set parquet_metadata_cache = true")
                    _SHARED.append(shared)
            self.con = _SHARED[0].cursor()
        else:  # its own connection: the filesystem registered is this warehouse's
            self.con = duckdb.connect(config=sandbox.spill_config())
            views.connect_filesystem(self.con, root)

    def files(self, table: str, layer: int, neurons: set[int], **partitions: object) -> list[tuple[str, object]]:
        """The files of ``table`` in ``layer`` (and ``partitions``) that may hold ``neurons``,
        by the statistics the Delta log keeps of each file: (URL, the file's log entry)."""
        snapshot = self.root.snapshot(table)
        chosen: dict[str, object] = {}
        for neuron in sorted(neurons):
            for url, entry in self.root.data_files(table, snapshot=snapshot, model=self.model, layer=layer,
                                                   neuron=neuron, **partitions):
                chosen[url] = entry
        return list(chosen.items())

    def rows(self, table: str, files: list[str], where: str, params: dict, order: tuple[str, ...],
             exclude: tuple[str, ...] = ()) -> list[dict]:
        """Rows of ``files`` matching ``where``, sorted by ``order`` (``sort_rows``)."""
        if not files:
            return []
        columns = f"* exclude ({', '.join(map(views.quote, exclude))})" if exclude else "*"
        sql = f"select {columns} from {views.read_parquet_sql(table, '$files')} where {where}"
        try:
            # execute, not sql(): a relation binds the query (reading the footers) once more
            result = self.con.execute(sql, {"files": files, **params})
            columns = [column[0] for column in result.description]
            return sort_rows([dict(zip(columns, row)) for row in result.fetchall()], order)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot read {table} of {self.root.url}: {message_of(exc)}") from exc

    def neuron_rows(self, table: str, layer: int, neuron: int, order: tuple[str, ...], exclude: tuple[str, ...] = (),
                    **partitions: object) -> list[dict]:
        """The rows of one neuron, sorted by ``order``. A local file whose row groups that may
        hold the neuron are small is read through them (``row_groups``), any other by DuckDB."""
        from nx.queries import row_groups  # pyarrow: only nx.neuron needs it

        columns = [c for c, _ in TABLES[table]["columns"] + TABLES[table]["partitions"] if c not in exclude]
        found, by_duckdb = row_groups.read_local(self.files(table, layer, {neuron}, **partitions), table, layer,
                                                 neuron, columns)
        found += self.rows(table, by_duckdb, "layer = $layer and neuron = $neuron", {"layer": layer, "neuron": neuron},
                           (), exclude)
        return sort_rows(found, order)

    def best_public(self, neurons: list[tuple[int, int]]) -> list[dict]:
        """The best public explanation of each of ``neurons`` ((layer, neuron) pairs) that has
        one: rows of layer, neuron, explanation and score.

        Related neurons lie in any layer, so their rows are spread over every row group of the
        compacted table: on a local warehouse the best public explanation of every neuron is
        kept in memory instead (sorted keys and their texts, about 40 MB at GPT-2 XL scale, made
        once per version of the table in this process, at its second call; a lookup is a
        bisection, a scan 30 ms)."""
        snapshot = self.root.snapshot("explanations")
        if snapshot is None:
            return []
        files = self.root.file_urls("explanations", snapshot=snapshot, model=self.model, run="public")
        key = (self.root.path, self.model, snapshot.version)
        if self.root.protocol != "file" or _first_ask(key):  # one call (nx show): a scan is cheaper
            params = {"layers": [l for l, _ in neurons], "neurons": [n for _, n in neurons]}
            return self.rows("explanations", files, "(layer, neuron) in (select unnest($layers), unnest($neurons))",
                             params, ("-score", "explanation_index"))
        best = _best_public(self, key, files)
        found = []
        for layer, neuron in neurons:
            key = _key(layer, neuron)
            at = bisect.bisect_left(best.keys, key)
            if at < len(best.keys) and best.keys[at] == key:
                found.append({"layer": layer, "neuron": neuron, "explanation": best.texts[at],
                              "score": best.scores[at]})
        return found


@dataclass(frozen=True)
class _BestPublic:
    """Each neuron's best public explanation: keys (``_key``) sorted, with texts and scores."""

    keys: list[int]
    texts: list[str | None]
    scores: list[float | None]


_BEST_PUBLIC: dict[tuple, _BestPublic] = {}  # (warehouse path, model, explanations version) -> its table


_ASKED: set[tuple] = set()  # the keys of _BEST_PUBLIC asked for once


def _first_ask(key: tuple) -> bool:
    """True the first time ``key``'s best public explanations are asked for in this process:
    building their table (~0.6 s at GPT-2 XL scale) pays from the second call on."""
    with _SHARED_LOCK:
        if key in _BEST_PUBLIC or key in _ASKED:
            return False
        _ASKED.add(key)
        return True


def _key(layer: int, neuron: int) -> int:
    return (layer << 32) | neuron


def _best_public(reader: _LayerReader, key: tuple, files: list[str]) -> _BestPublic:
    """The best public explanations for ``key``, read on first use; an older version's are
    dropped."""
    with _SHARED_LOCK:
        found = _BEST_PUBLIC.get(key)
        if found is not None:
            return found
        rows = []
        if files:
            source = views.read_parquet_sql("explanations", "$files")
            try:
                rows = reader.con.execute(
                    f"select layer, neuron, explanation, score from (select *, row_number() over (partition by "
                    f"layer, neuron order by score desc nulls last, explanation_index) as place from {source}) "
                    f"where place = 1 order by layer, neuron", {"files": files}).fetchall()
            except duckdb.Error as exc:
                raise WarehouseError(f"cannot read explanations of {reader.root.url}: {message_of(exc)}") from exc
        found = _BestPublic([_key(layer, neuron) for layer, neuron, _, _ in rows], [r[2] for r in rows],
                            [r[3] for r in rows])
        for old in [k for k in _BEST_PUBLIC if k[:2] == key[:2]]:
            del _BEST_PUBLIC[old]
        _BEST_PUBLIC[key] = found
        return found


def sort_rows(rows: list[dict], order: tuple[str, ...]) -> list[dict]:
    """``rows`` sorted by the columns of ``order`` (a leading ``-``: descending), nulls last
    either way, as DuckDB's ``order by`` would."""
    for name in reversed(order):
        column = name.lstrip("-")
        if name.startswith("-"):
            rows.sort(key=lambda row: (row[column] is not None, row[column]), reverse=True)
        else:
            rows.sort(key=lambda row: (row[column] is None, row[column]))
    return rows


def _strip(row: dict, *names: str) -> dict:
    for name in ("model", "layer", "neuron", *names):
        row.pop(name, None)
    return row


def neuron(layer: int, neuron: int, model: str = DEFAULT_MODEL, warehouse=None,
           distributions: bool = False) -> Neuron:
    """Everything about neuron ``neuron`` of ``layer``; NotFoundError if no table has a row of it.

    The scored sequences of each explanation leave out the simulator's per-token distributions
    (the four ``*distribution_*`` columns, most of their bytes) unless ``distributions``.

    >>> card = nx.neuron(5, 131)
    >>> card.explanations[0]["explanation"], card.top_records[0]["tokens"][:5]
    """
    root = locate(warehouse)
    found = Neuron(model, int(layer), int(neuron))
    exclude = () if distributions else DISTRIBUTIONS
    # Independent reads, each filling its own fields: one decodes (without the GIL) while
    # another builds its Python objects.
    with ThreadPoolExecutor(READERS) as pool:
        for done in [pool.submit(fill, found, _LayerReader(root, model), *args) for fill, *args in (
                (_add_tokens,), (_add_related,), (_add_explanations, exclude), (_add_records,))]:
            done.result()
    if found.empty:
        raise NotFoundError(_not_found(found, root, _LayerReader(root, model)))
    return found


def _add_records(found: Neuron, reader: _LayerReader) -> None:
    stats = reader.neuron_rows("neurons", found.layer, found.neuron, ())
    found.stats = _strip(stats[0]) if stats else None
    for row in reader.neuron_rows("activation_records", found.layer, found.neuron, ("sample", "quantile", "rank")):
        getattr(found, f"{row['sample']}_records").append(_strip(row, "sample"))


def _add_tokens(found: Neuron, reader: _LayerReader) -> None:
    found.token_lookups = [_strip(r) for r in reader.neuron_rows("token_lookups", found.layer, found.neuron, ("rank",))]
    found.token_weights = {side: [] for side in WEIGHT_SIDES}
    for row in reader.neuron_rows("token_weights", found.layer, found.neuron, ("direction", "-sign", "rank")):
        found.token_weights[f"{row['direction']}_{row['sign']}"].append(_strip(row, "direction", "sign"))


def _add_explanations(found: Neuron, reader: _LayerReader, exclude: tuple[str, ...]) -> None:
    explanations = reader.neuron_rows("explanations", found.layer, found.neuron,
                                      ("run", "-score", "explanation_index"))
    explanations.sort(key=lambda row: row["run"] != "public")  # public first, then the runs by name
    sequences = reader.neuron_rows("explanation_sequences", found.layer, found.neuron,
                                   ("run", "explanation_index", "seq_index"), exclude)
    by_explanation: dict[tuple[str, int], list[dict]] = {}
    for row in sequences:
        key = (row["run"], row["explanation_index"])
        by_explanation.setdefault(key, []).append(_strip(row, "run", "explanation_index"))
    for row in explanations:
        row["sequences"] = by_explanation.get((row["run"], row["explanation_index"]), [])
        found.explanations.append(_strip(row))


def _add_related(found: Neuron, reader: _LayerReader) -> None:
    related = reader.neuron_rows("related_neurons", found.layer, found.neuron, ("direction", "-sign", "rank"))
    others = sorted({(r["other_layer"], r["other_neuron"]) for r in related})
    best: dict[tuple[int, int], dict] = {}
    if others:
        for row in reader.best_public(others):  # best first: the first row of a neuron wins
            best.setdefault((row["layer"], row["neuron"]), row)
    for row in related:
        other = best.get((row["other_layer"], row["other_neuron"]), {})
        entry = {"sign": row["sign"], "rank": row["rank"], "layer": row["other_layer"],
                 "neuron": row["other_neuron"], "weight": row["weight"],
                 "explanation": other.get("explanation"), "score": other.get("score")}
        (found.upstream if row["direction"] == "input" else found.downstream).append(entry)


def _not_found(found: Neuron, root: Root, reader: _LayerReader) -> str:
    message = f"neuron {found.layer}/{found.neuron} of model {found.model} is not in the warehouse {root.url}"
    logged = reader.neuron_rows("_ingest", found.layer, found.neuron, ("kind",))
    if logged:
        statuses = ", ".join(f"{r['kind']} {r['status']}" for r in logged)
        return f"{message}; its source files were logged as: {statuses}"
    return message
