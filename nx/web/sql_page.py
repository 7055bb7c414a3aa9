"""The SQL page: one read-only statement over the warehouse's views, paged, or as a file.

The statement goes through ``readonly.check_statement`` (SELECT or EXPLAIN of a SELECT
only) on a cursor of the locked views connection (no file outside the warehouse), under the
viewer's time limit. A page re-runs the statement with ``LIMIT page_size + 1 OFFSET ...``
through DuckDB's relation API, so the statement is never pasted into other SQL.

Downloads stream the whole result (at most ``MAX_DOWNLOAD_ROWS``) in record batches into a
spooled temporary file (memory up to 32 MB, then disk), so a large result never sits in
memory whole; CSV gets nested columns (token lists) as their SQL text.
"""
from __future__ import annotations

import tempfile
import time

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nx.errors import UsageError
from nx.queries import views
from nx.web.database import Database
from nx.web.home import table_of

MAX_DOWNLOAD_ROWS = 1_000_000
BATCH_ROWS = 50_000
FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def run_page(cursor: duckdb.DuckDBPyConnection, text: str, page: int, page_size: int) -> dict:
    started = time.perf_counter()
    result = table_of(Database.relation(cursor, text), page_size, (page - 1) * page_size)
    return {**result, "page": page, "page_size": page_size,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}


def _flat(relation):
    """CSV cannot hold lists or structs: cast those columns to their SQL text."""
    nested = [("[" in str(t) or str(t).split("(")[0] in ("STRUCT", "MAP", "UNION")) for t in relation.types]
    if not any(nested):
        return relation
    return relation.project(", ".join(
        f"cast({views.quote(c)} as varchar) as {views.quote(c)}" if n else views.quote(c)
        for c, n in zip(relation.columns, nested)))


def write_download(cursor: duckdb.DuckDBPyConnection, text: str, fmt: str):
    """The result as a file (spooled), rewound; UsageError when it has too many rows."""
    relation = Database.relation(cursor, text).limit(MAX_DOWNLOAD_ROWS + 1)
    if fmt == "csv":
        relation = _flat(relation)
    reader = relation.to_arrow_reader(BATCH_ROWS)
    out = tempfile.SpooledTemporaryFile(max_size=32 * 2**20)
    rows = 0
    try:
        writer = pacsv.CSVWriter(out, reader.schema) if fmt == "csv" else pq.ParquetWriter(
            out, reader.schema, compression="zstd")
        with writer:
            for batch in reader:
                rows += batch.num_rows
                if rows > MAX_DOWNLOAD_ROWS:
                    raise UsageError(f"the result has more than {MAX_DOWNLOAD_ROWS:,} rows: narrow it, or write it "
                                     "with nx sql -o FILE")
                writer.write_table(pa.Table.from_batches([batch], reader.schema))
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
