"""Home and search: layer statistics, the researchers' lists, explanation search, named queries.

Everything here reads the in-memory index (``index.py``), except named queries that need
other tables, which run on the warehouse's views. Layer statistics, the top-explained and
possibly-monosemantic lists are the named queries ``layer-stats``, ``top-explained`` and
``monosemantic`` (``nx/queries/sql/``), run unchanged on the index; search adds what the
named ``search`` query lacks (layer range, minimum score, paging) as its own SQL, with every
value a bound parameter.
"""
from __future__ import annotations

import duckdb

from nx.errors import QueryError
from nx.queries import named, views
from nx.web.database import Database

INDEXED_VIEWS = {"explanations", "best_explanations", "runs"}
LIST_ROWS = 10

SEARCH_SQL = """
select layer, neuron, run, explanation, score, top_only_score, random_only_score,
       count(*) over () as total
from explanations
where model = $model and explanation is not null
  and ($run is null or run = $run)
  and layer between $layer_min and $layer_max
  and ($min_score is null or score >= $min_score)
  and ($text is null or contains(lower(explanation), lower($text)))
order by score desc nulls last, layer, neuron, run, explanation_index
limit $limit offset $offset
"""


def search(cursor: duckdb.DuckDBPyConnection, params: dict) -> dict:
    rows = cursor.sql(SEARCH_SQL, params=params).to_arrow_table().to_pylist()
    total = rows[0].pop("total") if rows else 0
    for row in rows[1:]:
        row.pop("total")
    return {"total": total, "rows": rows}


def runs_on_index(query: named.NamedQuery) -> bool:
    """Whether a named query reads only what the index holds."""
    return views.needed_views(query.sql) <= INDEXED_VIEWS


def table_of(relation, limit: int, offset: int) -> dict:
    """One page of a relation as columns and rows (``has_more``: another page follows)."""
    page = relation.limit(limit + 1, offset).to_arrow_table()
    rows = page.slice(0, limit).to_pylist()
    return {"columns": [{"name": f.name, "type": str(f.type)} for f in page.schema],
            "rows": rows, "has_more": page.num_rows > limit}


def named_query(cursor: duckdb.DuckDBPyConnection, query: named.NamedQuery, bound: dict, limit: int,
                offset: int) -> dict:
    return table_of(Database.relation(cursor, query.sql, bound), limit, offset)


async def run_named(database: Database, index, query: named.NamedQuery, bound: dict, limit: int,
                    offset: int) -> dict:
    """A named query's page, on the index when it can, else on the views."""
    if runs_on_index(query):
        try:
            return await index.run(named_query, query, bound, limit, offset)
        except QueryError:
            pass  # e.g. a user's query naming a column the index leaves out: the views have it
    return await database.run(named_query, query, bound, limit, offset)


def layer_stats(cursor: duckdb.DuckDBPyConnection, query: named.NamedQuery, bound: dict) -> list[dict]:
    return Database.relation(cursor, query.sql, bound).to_arrow_table().to_pylist()


async def overview(database: Database, index, model: str, run: str, threshold: float) -> dict:
    """The home page's data: layer statistics, the two lists, the runs."""
    queries = named.named_queries(database.warehouse)
    stats_query = queries["layer-stats"]
    stats = await index.memo(("layer-stats", model, run, threshold), layer_stats, stats_query,
                             stats_query.bind({"model": model, "run": run, "threshold": threshold}))
    lists = {}
    for name in ("top-explained", "monosemantic"):
        # The query's own threshold, so the list and its "all" link agree on what passes.
        query = queries[name]
        bound = query.bind({"model": model, "run": run})
        found = await index.memo(("list", name, model, run), named_query, query, bound, LIST_ROWS, 0)
        lists[name] = {**found, "min_score": bound["min_score"]}
    catalog = await index.catalog(model)
    return {"model": model, "run": run, "threshold": threshold, "layer_stats": stats, "lists": lists,
            "runs": catalog.runs if catalog else [], "models": index.models,
            "layers": catalog.layer_list if catalog else [], "neurons": len(catalog.layers) if catalog else 0}
