"""Reading cannot write: the guard on user SQL and the lock on the connection that runs it.

``check_statement`` admits one statement whose parsed type is SELECT, or an EXPLAIN of one
(``EXPLAIN ANALYZE`` runs its statement, so ``EXPLAIN ANALYZE COPY ... TO`` must be refused
too); everything else (COPY, ATTACH, INSTALL, LOAD, CREATE, INSERT, PRAGMA, SET, CALL...) is
a QueryError. DuckDB's ``allowed_directories`` alone would not do: ``COPY ... TO`` a path
inside the warehouse is allowed by it.

``lock`` then limits what an admitted SELECT can reach: external access off except the
warehouse root (so ``read_csv('/etc/passwd')`` fails), and the configuration locked so the
query cannot turn it back on.
"""
from __future__ import annotations

import duckdb

from nx.errors import QueryError, UsageError
from nx.queries.location import Root, locate

ADMITTED = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The one read-only statement in ``sql``; QueryError for anything that could write."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(message_of(exc)) from exc
    if not statements:
        raise UsageError("no SQL statement given")
    if len(statements) > 1:
        raise QueryError(f"give one statement at a time ({len(statements)} were given)")
    (statement,) = statements
    if statement.type == duckdb.StatementType.SELECT:
        return statement.query
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _explained(con, statement.query)
        if inner is not None and inner.type == duckdb.StatementType.SELECT:
            return statement.query
        refused = "EXPLAIN " + (_statement_name(inner) if inner is not None else "of this")
    else:
        refused = _statement_name(statement)
    raise QueryError(f"only SELECT (or EXPLAIN of a SELECT) can be run here, not {refused}: "
                     "the warehouse is read-only to queries")


def tokens(sql: str) -> list[tuple[int, object, str]]:
    """(offset, kind, text) of each token of ``sql`` that is not a comment."""
    found = duckdb.tokenize(sql)
    ends = [start for start, _ in found[1:]] + [len(sql)]
    return [(start, kind, sql[start:end].strip()) for (start, kind), end in zip(found, ends)
            if kind != duckdb.token_type.comment]


def _words(sql: str) -> list[tuple[int, str]]:
    return [(start, text) for start, _, text in tokens(sql)]


def _statement_name(statement) -> str:
    """What the statement is called in SQL: its first word (INSTALL, not LOAD), or its type."""
    words = _words(statement.query)
    first = words[0][1].upper() if words else ""
    return first if first.isalpha() and first != "WITH" else statement.type.name


def _explained(con: duckdb.DuckDBPyConnection, sql: str):
    """The statement an EXPLAIN [ANALYZE] [(options)] explains, or None if it cannot be parsed."""
    words = _words(sql)
    i = 0
    if i < len(words) and words[i][1].lower() == "explain":
        i += 1
    if i < len(words) and words[i][1].lower() in ("analyze", "analyse"):
        i += 1
    starts = [i]
    if i < len(words) and words[i][1] == "(":  # options, e.g. (FORMAT json), or a parenthesized query
        depth = 0
        while i < len(words):
            depth += {"(": 1, ")": -1}.get(words[i][1], 0)
            i += 1
            if depth == 0:
                break
        starts.insert(0, i)
    for start in starts:
        if start < len(words):
            try:
                inner = con.extract_statements(sql[words[start][0]:])
            except duckdb.Error:
                continue
            if len(inner) == 1:
                return inner[0]
    return None


def lock(con: duckdb.DuckDBPyConnection, root: Root) -> None:
    """No file but the warehouse's from here on, and no way to change that."""
    root = locate(root)
    prefix = root.path.rstrip("/") + "/"
    if root.protocol == "file":
        allowed = [prefix]
    else:  # fsspec globs answer in the filesystem's first protocol (abfs://), the views say az://
        protocols = root.warehouse.fs.protocol
        protocols = protocols if isinstance(protocols, tuple) else (protocols,)
        allowed = [f"{protocol}://{prefix.lstrip('/')}" for protocol in protocols]
    con.execute("set allowed_directories = $dirs", {"dirs": allowed})
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def message_of(exc: BaseException) -> str:
    """DuckDB's message without the caret drawing under the query text."""
    text = str(exc).strip()
    head, _, _ = text.partition("\nLINE ")
    return head.strip() or text
