"""The SQL box: one read-only statement over the warehouse's views, as a page, its JSON twin or a file.

The statement goes through ``readonly.check_statement`` (SELECT or EXPLAIN of a SELECT
only) on a cursor of the locked views connection (no file outside the warehouse), under the
viewer's time limit, in the database's ``sql`` lane: two threads and a short queue of their
own (more statements get a 503 at once), so slow statements delay only their own clients and
never the neuron pages, search or home. A page re-runs the statement with ``LIMIT page_size
+ 1 OFFSET ...`` through DuckDB's relation API, so the statement is never pasted into other SQL.

What one answer may hold is capped, and measured while the result is read, so a result of
huge cells never sits in memory whole (1,000 rows of 400,000-character strings took 58 s and
5 GB to render before):

- the page shows each cell's first ``CELL_CHARS`` characters, cut by DuckDB itself (the long
  text never reaches Python) with a mark saying how many more there are, and at most
  ``PAGE_CHARS`` characters of cells; it is rendered in a worker thread, not on the event loop;
- the JSON twin holds whole values, at most ``JSON_BYTES`` (serialized in the worker thread);
- downloads hold at most ``MAX_DOWNLOAD_ROWS`` rows and ``MAX_DOWNLOAD_BYTES`` bytes, written
  in record batches into a spooled temporary file (memory up to 32 MB, then disk) and sent
  from there once complete; CSV gets nested columns (token lists) as their SQL text.

Past a cap the answer is a 413 saying to write the result with ``nx sql -o FILE``; past the
time limit a 504.
"""
from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from urllib.parse import parse_qs

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from nx.errors import QueryError, UsageError
from nx.queries import readonly, views
from nx.settings import DEFAULT_MODEL
from nx.web import params
from nx.web.database import Database, TooLarge
from nx.web.respond import Cut, answers, dumps, respond, wants_json

CELL_CHARS = 1_000
PAGE_CHARS = 2_000_000
JSON_BYTES = 32 * 2**20
JSON_BATCH_ROWS = 64
MAX_DOWNLOAD_ROWS = 1_000_000
MAX_DOWNLOAD_BYTES = 256 * 2**20
BATCH_ROWS = 512
ROW_GROUP_ROWS = 50_000
ROW_GROUP_BYTES = 32 * 2**20
FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
# Shown as they are; every other type is cut to CELL_CHARS characters as text (nested ones as JSON).
KEPT_TYPES = {"boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
              "ubigint", "uhugeint", "float", "double", "decimal", "date", "time", "timestamp", "timestamp_s",
              "timestamp_ms", "timestamp_ns", "timestamp with time zone", "time with time zone", "interval"}
NESTED_TYPES = {"list", "array", "struct", "map", "union"}


def _too_large(what: str, remedy: str = "narrow it") -> TooLarge:
    return TooLarge(f"{what}, more than the viewer sends in one answer: {remedy}, or write the result with "
                    "nx sql -o FILE")


@contextlib.contextmanager
def _batches(relation, rows: int):
    """The relation's record batches of ``rows`` rows; DuckDB's errors met while streaming
    (they arrive through Arrow) as QueryError. The result is closed on leaving, read or not:
    left open, it would refuse the worker's next statement."""
    reader = relation.to_arrow_reader(rows)

    def batches():
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as exc:
                raise QueryError(readonly.message_of(exc)) from exc
            yield batch

    try:
        yield reader.schema, batches()
    finally:
        reader.close()


# -- the page ------------------------------------------------------------------------------
def _shown(relation) -> tuple[list[str], list[bool]]:
    """Expressions that cut every text-like column to ``CELL_CHARS`` (and give its length),
    by position: a statement's columns may share a name."""
    expressions, cut = [], []
    for position, kind in enumerate((t.id for t in relation.types), start=1):
        if kind in KEPT_TYPES:
            expressions.append(f"#{position}")
        else:
            text = f"to_json(#{position})::varchar" if kind in NESTED_TYPES else f"cast(#{position} as varchar)"
            expressions += [f"left({text}, {CELL_CHARS})", f"length({text})"]
        cut.append(kind not in KEPT_TYPES)
    return expressions, cut


def run_page(cursor: duckdb.DuckDBPyConnection, text: str, page: int, page_size: int) -> dict:
    """One page for the HTML table: cells cut (``Cut``), at most ``PAGE_CHARS`` characters."""
    started = time.perf_counter()
    relation = Database.relation(cursor, text)
    expressions, cut = _shown(relation)
    table = relation.limit(page_size + 1, (page - 1) * page_size).project(", ".join(expressions)).to_arrow_table()
    values = [column.to_pylist() for column in table.slice(0, page_size).columns]
    rows, size, short = [], 0, False
    for r in range(min(table.num_rows, page_size)):
        row, at = {}, 0
        for name, is_cut in zip(relation.columns, cut):
            value = values[at][r]
            if is_cut:
                length = values[at + 1][r]
                value = Cut(value, length - CELL_CHARS) if value is not None and length > CELL_CHARS else value
                at += 2
            else:
                at += 1
            size += len(value) if isinstance(value, str) else 8
            row[name] = value
        if rows and size > PAGE_CHARS:
            short = True
            break
        rows.append(row)
    return {"columns": [{"name": n, "type": str(t)} for n, t in zip(relation.columns, relation.types)],
            "rows": rows, "has_more": table.num_rows > page_size, "short": short, "page": page,
            "page_size": page_size, "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}


def run_json(cursor: duckdb.DuckDBPyConnection, text: str, page: int, page_size: int, head: dict) -> bytes:
    """One page as JSON bytes (whole values), or TooLarge past ``JSON_BYTES``."""
    started = time.perf_counter()
    relation = Database.relation(cursor, text).limit(page_size + 1, (page - 1) * page_size)
    too_large = _too_large(f"this page of the result is over {JSON_BYTES // 2**20} MB",
                           "ask for fewer rows (page_size)")
    kept, held = [], 0
    with _batches(relation, JSON_BATCH_ROWS) as (schema, batches):
        for batch in batches:
            held += batch.nbytes
            if held > JSON_BYTES:
                raise too_large
            kept.append(batch)
    table = pa.Table.from_batches(kept, schema)
    body = dumps({**head, "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
                  "rows": table.slice(0, page_size).to_pylist(), "has_more": table.num_rows > page_size,
                  "page": page, "page_size": page_size,
                  "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)})
    if len(body) > JSON_BYTES:
        raise too_large
    return body


# -- downloads -----------------------------------------------------------------------------
def _flat(relation):
    """CSV cannot hold lists or structs: cast those columns to their SQL text (by position:
    a statement's columns may share a name)."""
    nested = [("[" in str(t) or str(t).split("(")[0] in ("STRUCT", "MAP", "UNION")) for t in relation.types]
    if not any(nested):
        return relation
    return relation.project(", ".join(
        f"cast(#{i} as varchar) as {views.quote(c)}" if n else f"#{i} as {views.quote(c)}"
        for i, (c, n) in enumerate(zip(relation.columns, nested), start=1)))


def write_download(cursor: duckdb.DuckDBPyConnection, text: str, fmt: str):
    """The result as a file (spooled), rewound; TooLarge past ``MAX_DOWNLOAD_ROWS`` rows or
    ``MAX_DOWNLOAD_BYTES`` bytes, found while writing (batches of ``BATCH_ROWS`` rows, row
    groups of up to ``ROW_GROUP_ROWS`` rows)."""
    relation = Database.relation(cursor, text).limit(MAX_DOWNLOAD_ROWS + 1)
    if fmt == "csv":
        relation = _flat(relation)
    out = tempfile.SpooledTemporaryFile(max_size=32 * 2**20)
    over_bytes = _too_large(f"the result is over {MAX_DOWNLOAD_BYTES // 2**20} MB")
    try:
        with _batches(relation, BATCH_ROWS) as (schema, batches), (
                pacsv.CSVWriter(out, schema) if fmt == "csv" else pq.ParquetWriter(out, schema, compression="zstd")
        ) as writer:
            rows, pending, held = 0, [], 0
            for batch in batches:
                rows += batch.num_rows
                if rows > MAX_DOWNLOAD_ROWS:
                    raise _too_large(f"the result has more than {MAX_DOWNLOAD_ROWS:,} rows")
                pending.append(batch)
                held += batch.nbytes
                if out.tell() + held > MAX_DOWNLOAD_BYTES:
                    raise over_bytes
                if sum(b.num_rows for b in pending) >= ROW_GROUP_ROWS or held >= ROW_GROUP_BYTES:
                    writer.write_table(pa.Table.from_batches(pending, schema))
                    pending, held = [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema))
        if out.tell() > MAX_DOWNLOAD_BYTES:
            raise over_bytes
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def chunks(file, size: int = 256 * 1024):
    """The file's bytes in pieces (for a streaming response), closing it at the end."""
    try:
        while piece := file.read(size):
            yield piece
    finally:
        file.close()


# -- handlers ------------------------------------------------------------------------------
async def _statement(request: Request) -> str | None:
    text = request.query_params.get("q")
    if request.method == "POST":  # an urlencoded form, read by hand: no multipart parser needed
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > 8 * params.MAX_SQL:
                raise params.BadParameter(f"the form is too large (at most {params.MAX_SQL:,} characters of SQL)")
        text = (parse_qs(body.decode("utf-8", "replace")).get("q") or [text])[0]
    return params.text(text, "q", limit=params.MAX_SQL)


@answers
async def sql(request: Request) -> Response:
    """``/sql`` (the form and one page of the result) and its JSON twins."""
    text = await _statement(request)
    page, size = params.page(request.query_params, default_size=100)
    data = {"q": text, "page": page, "page_size": size}
    database = request.app.state.database
    if wants_json(request):
        if not text or not text.strip():
            raise UsageError("give a statement as q=SELECT ...")
        return Response(await database.run(run_json, text, page, size, data, lane="sql"),
                        media_type="application/json")
    if text and text.strip():
        data.update(await database.run(run_page, text, page, size, lane="sql"))
    context = {"model": DEFAULT_MODEL, "model_query": "", "page_chars": PAGE_CHARS}
    return await asyncio.to_thread(respond, request, "sql.html", data, context)  # off the event loop


@answers
async def download(request: Request) -> Response:
    """``/sql.csv`` and ``/sql.parquet``: the whole result as a file."""
    fmt = request.url.path.rsplit(".", 1)[-1]
    text = await _statement(request)
    if not text or not text.strip():
        raise UsageError("give a statement as q=SELECT ...")
    file = await request.app.state.database.run(write_download, text, fmt, lane="sql")
    return StreamingResponse(chunks(file), media_type=FORMATS[fmt],
                             headers={"Content-Disposition": f'attachment; filename="nx-result.{fmt}"'})
