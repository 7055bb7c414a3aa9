"""The query layer: DuckDB views over the warehouse, read-only SQL, named queries, polars scans.

- ``connect(warehouse)``: your own in-memory DuckDB connection with every view (see
  ``views.py``); it is yours to use as you like, for example to COPY results to a file.
- ``sql(text, warehouse, params)``: one read-only statement, as an Arrow table (``nx sql``).
- ``query(name, warehouse, **params)``: a named query (``nx query NAME``); ``named_queries``
  lists them (``nx query --list``).
- ``scan(table, warehouse)``: a polars LazyFrame (``scan.py``).

``sql`` and ``query`` run on a fresh in-memory DuckDB that holds only views, and admit only
SELECT and EXPLAIN (``readonly.py``): they cannot modify the warehouse.
"""
from __future__ import annotations

import os

import duckdb

from nx.errors import QueryError, WarehouseError
from nx.queries import named, readonly, views
from nx.warehouse import Warehouse


def open_warehouse(warehouse: str | Warehouse | None) -> Warehouse:
    """The Warehouse (flag > NX_WAREHOUSE > ./nx-warehouse); WarehouseError if a local one is absent."""
    found = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    if found.location.protocol == "file" and not os.path.isdir(found.location.path):
        raise WarehouseError(f"no warehouse at {found.url}: give --warehouse, set NX_WAREHOUSE, "
                             "or run nx ingest first")
    return found


def connect(warehouse: str | Warehouse | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table and the derived views.

    >>> con = nx.connect()
    >>> con.sql("select layer, count(*) from explanations group by layer").fetchall()

    Views list their files when a query binds, so new partitions show up; a table that had
    no files when you connected stays empty until you connect again.
    """
    location = open_warehouse(warehouse)
    con = duckdb.connect()
    views.connect_filesystem(con, location)
    views.register_views(con, location)
    return con


def sql(text: str, warehouse: str | Warehouse | None = None, params: dict | None = None):
    """Run one read-only statement (SELECT or EXPLAIN) and return its rows as a pyarrow Table.

    ``params`` binds ``$name`` parameters. Raises QueryError with DuckDB's message when the
    SQL is wrong or would write.
    """
    location = open_warehouse(warehouse)
    try:
        return _run(text, location, params, union_by_name=False)
    except QueryError as exc:
        if "schema mismatch" not in str(exc):
            raise
        # Files written under an older schema: read them by column name, at the cost of every footer.
        return _run(text, location, params, union_by_name=True)


def _run(text: str, location: Warehouse, params: dict | None, union_by_name: bool):
    con = duckdb.connect()
    try:
        statement = readonly.check_statement(con, text)
        views.connect_filesystem(con, location)
        views.register_views(con, location, views.needed_views(statement), union_by_name=union_by_name)
        readonly.lock(con, location)
        try:
            return con.sql(statement, params=params or None).to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(readonly.message_of(exc)) from exc
    finally:
        con.close()


def named_queries(warehouse: str | Warehouse | None = None) -> dict[str, named.NamedQuery]:
    """Every named query (built-in, the warehouse's ``_queries/``, ``$NX_QUERIES``) by name."""
    return named.named_queries(warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse))


def query(name: str, warehouse: str | Warehouse | None = None, **params):
    """Run the named query ``name`` with ``params`` (strings are converted to the declared types).

    >>> nx.query("top-explained", min_score=0.9)
    """
    location = open_warehouse(warehouse)
    found = named.find(name, location)
    return sql(found.sql, location, found.bind(params))


def scan(table: str, warehouse: str | Warehouse | None = None):
    """A polars LazyFrame over a table, with partition pruning (see ``nx.queries.frames``)."""
    from nx.queries.frames import scan as scan_table  # polars is imported only by scans

    return scan_table(table, warehouse)


__all__ = ["connect", "sql", "query", "scan", "named_queries", "open_warehouse"]
