"""The query layer: DuckDB views over the warehouse, read-only SQL, named queries, polars scans.

- ``connect(warehouse)``: your own in-memory DuckDB connection with every view (see
  ``views.py``); it is yours to use as you like, for example to COPY results to a file.
- ``sql(text, warehouse, params)``: one read-only statement, as an Arrow table, or as ``Rows``
  of Python values (``nx sql`` prints those: no pyarrow to load).
- ``query(name, warehouse, **params)``: a named query (``nx query NAME``); ``named_queries``
  lists them (``nx query --list``).
- ``scan(table, warehouse)``: a polars LazyFrame (``frames.py``).
- ``nx.neuron`` (``neuron.py``, drawn by ``card.py``). (``nx.export``, which writes tables back
  as the public JSON files, is ``nx/json_export.py``: it needs ingest's inverse flatteners, and
  this layer never imports ``nx.ingest``.)

``sql`` and ``query`` run on a fresh in-memory DuckDB that holds only views, admit only
SELECT and EXPLAIN, reach no file but the views' data files (``readonly.py``), and run in a
thread the kernel forbids to write files where the system allows it (``sandbox.py``, Linux
Landlock): they cannot create, change or delete a file. Every connection made here (``connect``
too) spills to a private temporary directory of this process, bounded (``sandbox.py``).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import replace

import duckdb

from nx import delta_log
from nx.errors import QueryError, UsageError, WarehouseError
from nx.queries import named, readonly, sandbox, views
from nx.queries.location import Root, at, locate
from nx.queries.render import Rows


FORMATS = ("arrow", "polars", "pandas")  # what nx.sql and nx.query hand back


def open_warehouse(warehouse=None):
    """The ``Warehouse`` to read; WarehouseError if a local directory is not there."""
    return locate(warehouse).warehouse


def connect(warehouse=None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table and the derived views.

    >>> con = nx.connect()
    >>> con.sql("select layer, count(*) from explanations group by layer").fetchall()

    The views read each table's Delta version current when you connected (a consistent
    snapshot); connect again to see later commits. DuckDB spills to a private temporary
    directory of this process (removed at exit) instead of ``./.tmp``; being your connection,
    it is not locked: ``SET temp_directory`` changes that, and it may write files.
    """
    root = locate(warehouse)
    con = duckdb.connect(config=sandbox.spill_config())
    views.connect_filesystem(con, root)
    with delta_log.reading_with(con):
        views.register_views(con, root)
    return con


def sql(text: str, warehouse=None, params: dict | None = None, *, format: str = "arrow", arrow: bool = True,
        as_of=None):
    """Run one read-only statement (SELECT or EXPLAIN); its rows as a pyarrow Table, or as
    ``Rows`` of Python values with ``arrow=False`` (what ``nx sql`` prints, without pyarrow).

    >>> nx.sql("select layer, count(*) as n from explanations group by layer", format="polars")

    ``format``: "arrow" (a pyarrow Table), "polars" or "pandas" (a DataFrame; pandas is not a
    dependency of nx). ``params`` binds ``$name`` parameters. ``as_of`` reads the tables as they
    were: a version number, ``"TABLE=VERSION,..."``, or a time (a datetime or ISO text); ``nx
    history`` lists them. Raises QueryError with DuckDB's message when the SQL is wrong or would
    write.
    """
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
    root = at(locate(warehouse), as_of)
    try:
        result = _run(text, root, params, arrow, union_by_name=False)
    except QueryError as exc:
        if "schema mismatch" not in str(exc):
            raise
        # Files written under an older schema: read them by column name, at the cost of every footer.
        result = _run(text, root, params, arrow, union_by_name=True)
    return as_frame(result, format) if arrow else result


def as_frame(table, format: str):
    """An Arrow table as ``format`` asks: itself, a polars or a pandas DataFrame."""
    if format == "polars":
        import polars as pl  # only when asked: nx sql never loads it

        return pl.from_arrow(table)
    if format == "pandas":
        try:
            import pandas  # noqa: F401  (optional: to_pandas needs it)
        except ImportError:
            raise UsageError("format='pandas' needs pandas, which nx does not install: pip install pandas") from None
        return table.to_pandas()
    return table


def _run(text: str, root: Root, params: dict | None, arrow: bool, union_by_name: bool):
    """The statement on a connection of its own, locked, in a confined thread (``sandbox``)."""
    opened: list[duckdb.DuckDBPyConnection] = []
    root = root.fetched(name for name in views.needed_views(text) if name in views.TABLES)  # az://: local copies

    def work():
        con = duckdb.connect(config=sandbox.spill_config())  # in this thread: its workers inherit the confinement
        opened.append(con)
        try:
            statement = readonly.check_statement(con, text)
            readonly.connect_filesystem(con, root)
            made = readonly.Recording(con)  # the views' SQL, for the lock
            with delta_log.reading_with(con):
                views.register_views(made, root, views.needed_views(statement), union_by_name=union_by_name)
            # Each file by name, or, where the kernel stops writes anyway, their folders (cheaper).
            readonly.lock(con, root, exact=not sandbox.thread_confined(), views_sql=made.executed)
            try:
                if arrow:  # DuckDB's relation hands Arrow over without copying the rows
                    return con.sql(statement, params=params or None).to_arrow_table()
                # execute, not sql(): a relation binds the statement (every footer) a second time
                result = con.execute(statement, params or None)
                columns = [column[0] for column in result.description]
                return Rows(columns, [str(column[1]) for column in result.description], result.fetchall())
            except duckdb.Error as exc:
                raise _read_error(exc, root) from exc
        finally:
            con.close()

    return sandbox.confined(work, on_interrupt=lambda: [con.interrupt() for con in opened])


def _read_error(exc: duckdb.Error, root: Root) -> QueryError | WarehouseError:
    """A data file DuckDB cannot read (not Parquet, cut short) is the warehouse's fault, named
    with its table; anything else is the query's (QueryError, see ``_explained_error``)."""
    message = readonly.message_of(exc)
    prefix = root.path.rstrip("/") + "/"
    where = message.find(prefix)
    # Not a file outside the views (refused) nor a schema mismatch (retried by column name).
    if where >= 0 and not isinstance(exc, duckdb.PermissionException) and "schema mismatch" not in message:
        table = message[where + len(prefix):].split("/", 1)[0]
        return WarehouseError(f"cannot read table {table} of {root.url}: {message}")
    return QueryError(_explained_error(exc))


def _explained_error(exc: duckdb.Error) -> str:
    """DuckDB's message; for an unknown table, the views nx has (DuckDB only sees those made)."""
    message = readonly.message_of(exc)
    missing = re.match(r"Catalog Error: Table with name (\S+) does not exist!", message)
    if not missing:
        return message
    close = difflib.get_close_matches(missing.group(1).lower(), views.VIEW_NAMES, 1)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    return f"{missing.group(0)}{hint} Views: {', '.join(views.VIEW_NAMES)}"


def named_queries(warehouse=None) -> dict[str, named.NamedQuery]:
    """Every named query (built-in, the warehouse's ``_queries/``, ``$NX_QUERIES``) by name;
    without a warehouse, the others."""
    try:
        root = locate(warehouse)
    except WarehouseError:
        root = None
    return named.named_queries(root)


def query(name: str, warehouse=None, *, format: str = "arrow", arrow: bool = True, as_of=None, **params):
    """Run the named query ``name`` with ``params`` (strings are converted to the declared types);
    ``format`` as for ``sql``.

    >>> nx.query("top-explained", min_score=0.9, layer=5, format="polars")
    """
    root = locate(warehouse)
    found = named.find(name, root)
    try:
        result = sql(found.sql, root, found.bind(params), format=format, arrow=arrow, as_of=as_of)
    except QueryError as exc:
        sentence = named.stopped_with(exc)
        if sentence is None:
            raise
        raise QueryError(sentence) from exc
    first = None if arrow else found.stopped_at_default_limit(params, len(result.rows))
    return result if first is None else replace(result, first=first)


def scan(table: str, warehouse=None):
    """A polars LazyFrame over a table or a derived view, with partition pruning (see
    ``nx.queries.frames``); nothing is read until it is collected.

    >>> import polars as pl
    >>> nx.scan("best_explanations").filter(pl.col("layer") == 5).sort("score").collect()

    Tables: {tables}.
    Derived views: {derived}.
    """
    from nx.queries.frames import scan as scan_table  # polars is imported only by scans

    return scan_table(table, warehouse)


scan.__doc__ = scan.__doc__.format(tables=", ".join(views.TABLES), derived=", ".join(views.DERIVED))


__all__ = ["connect", "sql", "query", "scan", "named_queries", "locate", "open_warehouse", "Rows", "FORMATS"]
