"""Reading cannot write: the guard on user SQL and the lock on the connection that runs it.

Three walls, each enough on its own for what it covers:

1. ``check_statement`` admits one statement whose parsed type is SELECT, or an EXPLAIN of one
   (``EXPLAIN ANALYZE`` runs its statement, so ``EXPLAIN ANALYZE COPY ... TO`` is refused too),
   and then refuses any statement that holds, anywhere outside string literals and comments,
   a word that only a writing statement uses (``WORDS``: DuckDB parses ``WITH x AS (COPY ...
   TO ...) SELECT 1`` as a SELECT, and runs the COPY) or calls a function that runs SQL given
   as text or changes the database (``FUNCTIONS``: ``json_execute_serialized_sql`` would run
   a COPY hidden in a string). Each refusal is one line naming the word.
2. ``lock`` makes the connection unable to reach any file but the data files its views read:
   external access off, ``allowed_paths`` listing exactly those files (no directory: nothing
   can be created, listed, globbed, renamed or deleted, the Delta log and every other file of
   the warehouse included), extensions neither installed nor loaded, configuration locked. An
   ``az://`` warehouse is read through ``ReadOnlyFileSystem``, which refuses to open anything
   for writing. What this leaves open, overwriting one of those data files in place, takes a
   ``COPY`` (wall 1) and is closed by wall 3 where the system has it.
3. ``nx.sql`` and ``nx.query`` run the statement in a thread the kernel forbids to write
   (``sandbox.confined``: Linux Landlock), with DuckDB's worker threads started from it. There
   ``lock`` allows the folders of the views' files rather than each file (cheaper: see ``lock``).

(``allowed_directories`` alone, as before, let ``COPY ... TO`` write anywhere in the warehouse:
``COPY ... (FORMAT parquet, PARTITION_BY (b), OVERWRITE true)`` into a table's folder deleted
the table.)
"""
from __future__ import annotations

import re

import duckdb

from nx.errors import QueryError, UsageError
from nx.queries import sandbox
from nx.queries.location import Root, locate

ADMITTED = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)
REFUSED = "the warehouse is read-only to queries"
_LITERAL = re.compile(r"'([^']*(?:''[^']*)*)'")
# Words no reading statement needs (DuckDB's tokenizer calls them keywords wherever they stand,
# so a column named like one must be quoted: "load").
WORDS = frozenset({
    "copy", "export", "import", "attach", "detach", "install", "load", "set", "reset", "pragma", "call",
    "create", "drop", "alter", "insert", "update", "delete", "truncate", "merge", "checkpoint", "vacuum",
    "prepare", "execute", "deallocate", "use", "comment",
})
# Functions that run SQL given as text (where wall 1 cannot read it) or change the database.
FUNCTIONS = frozenset({
    "query", "json_execute_serialized_sql", "enable_logging", "disable_logging", "truncate_duckdb_logs",
    "write_log", "checkpoint", "force_checkpoint", "setval", "nextval", "create_external_resource",
})


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
        return check_words(statement.query)
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _explained(con, statement.query)
        if inner is not None and inner.type == duckdb.StatementType.SELECT:
            return check_words(statement.query)
        refused = "EXPLAIN " + (_statement_name(inner) if inner is not None else "of this")
    else:
        refused = _statement_name(statement)
    raise QueryError(f"only SELECT (or EXPLAIN of a SELECT) can be run here, not {refused}: {REFUSED}")


def check_words(sql: str) -> str:
    """``sql`` if no word of ``WORDS`` and no call of ``FUNCTIONS`` is in it (outside string
    literals and comments); QueryError naming the first one found otherwise."""
    found = tokens(sql)
    for i, (_, kind, text) in enumerate(found):
        word = text.lower()
        if kind == duckdb.token_type.keyword and word in WORDS:
            raise QueryError(f"{text.upper()} cannot be part of a query here (a name spelled so must be quoted: "
                             f'"{word}"): {REFUSED}')
        called = i + 1 < len(found) and found[i + 1][2] == "("
        if called and kind in (duckdb.token_type.identifier, duckdb.token_type.keyword):
            name = word[1:-1].replace('""', '"') if word.startswith('"') else word
            if name in FUNCTIONS:
                raise QueryError(f"{name}() runs SQL of its own or changes the database, so it cannot be used "
                                 f"here: {REFUSED}")
    return sql


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


def connect_filesystem(con: duckdb.DuckDBPyConnection, root: Root) -> None:
    """Let ``con`` read an az:// warehouse, through a filesystem that cannot write (a local one
    needs nothing: DuckDB reads the files itself, and so it does the local copies of a root
    whose files all have one, ``Root.all_local``: adlfs, 0.5-0.9 s to import, is not loaded)."""
    root = locate(root)
    if root.protocol != "file" and not root.all_local:
        con.register_filesystem(read_only(root.fs))


class Recording:
    """A connection that keeps the SQL it is given to ``execute``: hand it to
    ``views.register_views``, then its ``executed`` to ``lock`` (reading the views back from
    ``duckdb_views()`` costs 10 ms, the first query of a process)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con, self.executed = con, []

    def execute(self, query, *args, **kwargs):
        self.executed.append(query)
        return self._con.execute(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def lock(con: duckdb.DuckDBPyConnection, root: Root, exact: bool = True, views_sql: list[str] | None = None) -> None:
    """No file but the data files of the views on ``con`` from here on, no extension, and no
    way to change that. Call it once every view is made; ``views_sql``, the SQL that made them
    (``Recording.executed``), spares reading them back.

    ``exact=False`` allows the folders of those files instead of each file: DuckDB takes
    17 us to allow one path (40 ms for a table of 2,400 files, as long as a one-layer query),
    and a folder lets DuckDB make files in it, so only for a thread that cannot write anyway
    (``sandbox.thread_confined()``)."""
    root = locate(root)
    prefix = root.path.rstrip("/") + "/"
    if root.protocol == "file":
        files = view_files(con, prefix, views_sql)
        if exact:
            con.execute("set allowed_paths = $paths", {"paths": files})
        else:
            con.execute("set allowed_directories = $dirs", {"dirs": sorted({f.rsplit("/", 1)[0] + "/" for f in files})})
    else:  # read-only filesystem; fsspec globs answer in its first protocol (abfs://), the views say az://
        from nx import file_cache
        from nx.blob_reader import PROTOCOLS  # adlfs's, without importing it

        con.execute("set allowed_directories = $dirs",
                    {"dirs": [f"{protocol}://{prefix.lstrip('/')}" for protocol in PROTOCOLS]})

        where = file_cache.directory()
        copies = view_files(con, where + "/", views_sql) if where else []
        if copies:  # the local copies of its files (nx.file_cache), each by name
            con.execute("set allowed_paths = $paths", {"paths": copies})
    con.execute("set autoinstall_known_extensions = false; set autoload_known_extensions = false; "
                "set allow_community_extensions = false; set allow_persistent_secrets = false; "
                "set enable_external_access = false; set allow_extension_repositories = 'forbidden'; "
                "set lock_configuration = true")


def view_files(con: duckdb.DuckDBPyConnection, prefix: str, views_sql: list[str] | None = None) -> list[str]:
    """Paths under ``prefix`` the views on ``con`` read: the string literals of their SQL (which
    nx writes: ``views.table_view_sql``), found by a pattern (0.8 ms for 2,400 files; the
    tokenizer took 15 ms)."""
    if views_sql is None:
        views_sql = [sql for (sql,) in con.execute("select sql from duckdb_views() where not internal").fetchall()]
    found: dict[str, None] = {}
    for sql in views_sql:
        for text in _LITERAL.findall(sql or ""):
            if text.startswith(prefix):
                found[text.replace("''", "'")] = None
    return list(found)


def read_only(fs):
    """``fs`` (fsspec) as a filesystem DuckDB can read through and never write through: every
    open but for reading bytes is refused, and what would move, delete or make files is not
    there (fsspec's defaults refuse, or do nothing)."""
    from fsspec import AbstractFileSystem  # only az:// warehouses come here; fsspec is loaded already

    class ReadOnlyFileSystem(AbstractFileSystem):
        protocol = fs.protocol
        cachable = False
        _strip_protocol = staticmethod(fs._strip_protocol)

        def open(self, path, mode="rb", **kwargs):
            if mode != "rb":
                raise PermissionError(f"{path}: the warehouse is read-only to queries")
            return fs.open(path, "rb", **kwargs)

        def _open(self, path, mode="rb", **kwargs):
            return self.open(path, mode, **kwargs)

    for name in ("ls", "info", "exists", "isdir", "isfile", "size", "sizes", "modified", "created", "glob",
                 "find", "walk", "du", "cat_file", "checksum", "ukey", "unstrip_protocol"):
        setattr(ReadOnlyFileSystem, name, staticmethod(getattr(fs, name)))
    return ReadOnlyFileSystem()


def message_of(exc: BaseException) -> str:
    """DuckDB's message in one line: without the caret drawing under the query text, nor the
    advice after a blank line (settings a locked connection cannot change)."""
    text = str(exc).strip()
    head = text.partition("\nLINE ")[0].strip().split("\n\n", 1)[0]
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    if "max_temp_directory_size" in head:  # DuckDB's advice here is a PRAGMA
        return (f"{lines[0]} DuckDB's temporary files reached nx's limit (half the free space of the temporary "
                f"directory's disk, at most {sandbox.SPILL_CAP // 2**30} GiB): narrow the query, or set TMPDIR to a "
                "larger disk")
    return " ".join(lines) or text
