"""Query results as bytes: a terminal table, CSV, JSON or Parquet.

Results come as ``Rows`` (Python values straight from DuckDB: what the command line renders,
without loading pyarrow) or, for Parquet, as an Arrow table. ``write_result`` is the one way
out, for stdout and ``-o FILE`` alike (a file is written under a temporary name and renamed,
so it is never seen half-written). The format defaults to a table on a terminal and CSV
otherwise; ``-o`` picks it from the file's suffix.

- csv: a header, then one line per row; null is an empty field, lists and structs are JSON;
- json: an array of row objects, one per line; NaN and null are ``null``;
- parquet: the Arrow table as written by pyarrow (binary: refused on a terminal);
- table: rich, at most ``max_rows`` rows and 60 characters a cell, whitespace made visible
  (``nx.tokens``: ↵ newline, ⇥ tab, ...), times to the second in UTC, then the row count.
"""
from __future__ import annotations

import csv
import io
import math
import os
import shutil
import sys
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import BinaryIO

from nx.errors import UsageError
from nx.tokens import visible_text

FORMATS = ("table", "csv", "json", "parquet")
SUFFIXES = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".txt": "table"}
MAX_ROWS = 40
MAX_CELL = 60
NUMERIC = re.compile(r"^(u?(tiny|small|big|huge)?int(eger)?\d*|double|float\d*|real|halffloat|decimal.*)$", re.I)


@dataclass(frozen=True)
class Rows:
    """A result as Python values: column names, type names (DuckDB's or Arrow's), rows."""

    columns: list[str]
    types: list[str]
    rows: list[tuple]
    first: int | None = None  # set when a named query stopped at its default limit: more rows may match

    @classmethod
    def from_arrow(cls, table) -> "Rows":
        values = [row for batch in table.to_batches()
                  for row in zip(*(column.to_pylist() for column in batch.columns))]
        return cls(list(table.column_names), [str(f.type) for f in table.schema], values)

    def to_arrow(self):
        """An Arrow table with types inferred from the values (queries give exact ones with arrow=True)."""
        import pyarrow as pa

        return pa.table({name: [row[i] for row in self.rows] for i, name in enumerate(self.columns)})


def choose_format(fmt: str | None, output: str | None, terminal: bool) -> str:
    """``--format`` if given, else the suffix of ``-o``, else table on a terminal and csv otherwise."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
        chosen = fmt
    elif output is not None:
        chosen = SUFFIXES.get(os.path.splitext(output)[1].lower(), "csv")
    else:
        chosen = "table" if terminal else "csv"
    if chosen == "parquet" and output is None and terminal:
        raise UsageError("parquet is binary: give -o FILE or redirect stdout")
    return chosen


def emit(result, fmt: str, output: str | None = None, stdout=None, max_rows: int = MAX_ROWS,
         text: str | None = None) -> None:
    """Write a result as the command line does: to ``-o`` or stdout, in ``fmt`` (from
    ``choose_format``); ``text``, when given, stands for the table in table format."""
    stdout = stdout or sys.stdout
    if fmt == "table" and text is not None and output is None:
        stdout.write(text)
        stdout.flush()
        return
    terminal = stdout.isatty() and output is None
    write_result(result, fmt, stdout.buffer, output, terminal=terminal, max_rows=max_rows)


def write_result(table, fmt: str, stream: BinaryIO | None = None, output: str | None = None,
                 terminal: bool = False, width: int | None = None, max_rows: int = MAX_ROWS) -> None:
    """Write ``table`` in ``fmt`` to ``output`` (atomically) or to ``stream``."""
    if output is None:
        _write(table, fmt, stream, terminal, width, max_rows)
        stream.flush()
        return
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {output}: no directory {directory}")
    if os.path.isdir(output):
        raise UsageError(f"cannot write {output}: it is a directory; give a file name for -o")
    temporary = f"{output}.tmp-{uuid.uuid4().hex}"
    try:
        with open(temporary, "wb") as out:
            _write(table, fmt, out, False, width, max_rows)
        os.replace(temporary, output)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _write(result, fmt: str, stream: BinaryIO, terminal: bool, width: int | None, max_rows: int) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq  # only parquet output needs pyarrow

        pq.write_table(result.to_arrow() if isinstance(result, Rows) else result, stream, compression="zstd")
        return
    rows = result if isinstance(result, Rows) else Rows.from_arrow(result)
    if fmt == "csv":
        write_csv(rows, stream)
    elif fmt == "json":
        write_json(rows, stream)
    else:
        stream.write(draw_table(rows, color=terminal, width=width, max_rows=max_rows).encode("utf-8"))


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def dumps_json(value) -> bytes:
    import orjson  # serializes NaN as null, datetimes as ISO 8601

    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def csv_field(value) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return dumps_json(value).decode("utf-8")
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


def write_csv(rows: Rows, stream: BinaryIO) -> None:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(rows.columns)
        writer.writerows([csv_field(v) for v in row] for row in rows.rows)
    finally:
        text.detach()


def write_json(rows: Rows, stream: BinaryIO) -> None:
    stream.write(b"[")
    for i, row in enumerate(rows.rows):
        stream.write(b"\n" if i == 0 else b",\n")
        stream.write(dumps_json(dict(zip(rows.columns, row))))
    stream.write(b"\n]\n" if rows.rows else b"]\n")


def format_cell(value) -> str:
    """A value as a short, one-line string for a terminal cell."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, (list, dict)):
        text = dumps_json(value).decode("utf-8")
    else:
        text = str(value)
    text = visible_text(text)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def format_time(value: datetime) -> str:
    """To the second; one with a time zone in UTC, marked Z (2026-12-01 14:35:21Z). CSV and JSON
    keep the full precision and offset."""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def format_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e9:
        return f"{value:.4f}"
    return f"{value:.3e}"


def fit_columns(widths: list[int], floors: list[int], width: int, gap: int = 3) -> list[int]:
    """Column widths that fit ``width``: text columns shrink toward their floor first, then
    columns are dropped from the right (the result is shorter than ``widths``)."""
    widths = list(widths)
    while widths:
        excess = sum(widths) + gap * (len(widths) - 1) - width
        if excess <= 0:
            return widths
        slack = [w - f for w, f in zip(widths, floors)]
        if sum(slack) >= excess:
            # Shrink the widest text columns first: they lose the least by an ellipsis.
            while excess > 0:
                i = max(range(len(widths)), key=lambda j: (slack[j] > 0, widths[j] if slack[j] > 0 else -1))
                widths[i] -= 1
                slack[i] -= 1
                excess -= 1
            return widths
        widths.pop()
        floors = floors[:len(widths)]
    return widths


def draw_table(rows: Rows, color: bool = False, width: int | None = None, max_rows: int = MAX_ROWS) -> str:
    """A rich table of the first ``max_rows`` rows (and the columns that fit), then the row count."""
    from rich.box import SIMPLE_HEAD
    from rich.console import Console  # rich only when a table is drawn
    from rich.table import Table
    from rich.text import Text

    width = width or shutil.get_terminal_size((120, 24)).columns
    shown = rows.rows[:max_rows]
    cells = [[format_cell(v) for v in row] for row in shown]
    numeric = [bool(NUMERIC.match(kind)) for kind in rows.types]
    widest = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(rows.columns)]
    floors = [w if numeric[i] else min(w, max(len(rows.columns[i]), 12)) for i, w in enumerate(widest)]
    fitted = fit_columns(widest, floors, width)
    grid = Table(box=SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    for i, column_width in enumerate(fitted):
        grid.add_column(rows.columns[i], justify="right" if numeric[i] else "left", no_wrap=True,
                        overflow="ellipsis", width=column_width)
    for row, raw in zip(cells, shown):
        grid.add_row(*(Text(row[i], style="dim" if raw[i] is None else "") for i in range(len(fitted))))
    count = len(rows.rows)
    notes = [f"{count:,} row{'s' if count != 1 else ''}" if rows.first is None else
             f"first {count:,} row{'s' if count != 1 else ''}; --limit N for more"]
    if count > max_rows:
        notes.append(f"{max_rows} shown")
    if len(fitted) < len(rows.columns):
        hidden = rows.columns[len(fitted):]
        notes.append(f"{len(hidden)} more column{'s' if len(hidden) > 1 else ''}: {', '.join(hidden)}")
    caption = notes[0] + (f" ({'; '.join(notes[1:])}; --format csv or -o FILE for all)" if notes[1:] else "")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width,
                      highlight=False, emoji=False)
    console.print(grid)
    console.print(Text(caption, style="dim"))
    return buffer.getvalue()
