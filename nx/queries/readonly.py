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
from nx.warehouse import Warehouse

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
    if statement.type not in ADMITTED or (statement.type == duckdb.StatementType.EXPLAIN
                                          and not _explains_a_select(con, statement.query)):
        kind = statement.type.name.replace("_", " ")
        raise QueryError(f"only SELECT (or EXPLAIN of a SELECT) can be run here, not {kind}: "
                         "the warehouse is read-only to queries")
    return statement.query


def _explains_a_select(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether an EXPLAIN [ANALYZE] [(options)] statement explains a SELECT."""
    tokens = [(start, kind) for start, kind in duckdb.tokenize(sql) if kind != duckdb.token_type.comment]
    words = [sql[start:start + 7].lower() for start, _ in tokens]
    i = 0
    if i < len(tokens) and words[i] == "explain":
        i += 1
    if i < len(tokens) and words[i] in ("analyze", "analyse"):
        i += 1
    if i < len(tokens) and sql[tokens[i][0]] == "(":
        depth = 0
        while i < len(tokens):
            char = sql[tokens[i][0]]
            depth += char == "("
            depth -= char == ")"
            i += 1
            if depth == 0:
                break
    if i >= len(tokens):
        return False
    try:
        inner = con.extract_statements(sql[tokens[i][0]:])
    except duckdb.Error:
        return False
    return len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT


def lock(con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> None:
    """No file but the warehouse's from here on, and no way to change that."""
    root = warehouse.location.url_of(warehouse.location.path).rstrip("/") + "/"
    con.execute("set allowed_directories = $dirs", {"dirs": [root]})
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def message_of(exc: BaseException) -> str:
    """DuckDB's message without the caret drawing under the query text."""
    text = str(exc).strip()
    head, _, _ = text.partition("\nLINE ")
    return head.strip() or text
