"""The ``nx`` command: a thin click app over the library API, with the same words.

Each command parses its options, makes one library call and renders the result. Errors
that are the user's (NxError) become one line on stderr and a documented exit code:
0 ok, 1 failed (query rejected, files not ingested, neurons failed), 2 usage,
3 source/warehouse/server unreachable, 130 interrupted.

The command line is click's own, not typer's: typer coerces every value through pydantic,
whose import alone costs about 110 ms, and ``nx sql``'s start-up is a contract (within 1.5x a
bare ``python -c "import duckdb; ..."``; tests/queries/test_import_hygiene.py). Every value is
shown by what it is (SQL, LAYERS, PATH), never by a Python type.
"""
from __future__ import annotations

import functools
import sys
import warnings

import click

from nx.errors import ExitCode, NxError

Exit = click.exceptions.Exit


class Commands(click.Group):
    """nx's commands, listed in the order they are declared (ingest first), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


class AtLeast(click.ParamType):
    """An int or float no lower than ``low``: "-1 is not greater than or equal to 0" otherwise."""

    def __init__(self, kind: type, low: float, high: float | None = None):
        self.kind, self.low, self.high = kind, low, high
        self.name = "integer" if kind is int else "number"

    def convert(self, value, param, ctx):
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not {'an integer' if self.kind is int else 'a number'}", param, ctx)
        if number < self.low:
            self.fail(f"{value} is not greater than or equal to {self.low}", param, ctx)
        if self.high is not None and number > self.high:
            self.fail(f"{value} is not less than or equal to {self.high}", param, ctx)
        return number


@click.group(name="nx", cls=Commands, invoke_without_command=True, no_args_is_help=True,
             context_settings={"max_content_width": 100})
@click.option("--version", is_flag=True, help="Print nx's version and exit.")
@click.pass_context
def app(context: click.Context, version: bool) -> None:
    """nx: OpenAI's public neuron-explainer data as a Parquet warehouse you can query.

    Start with `nx ingest --all`, then `nx sql "select ..."`, `nx query --list` or `nx show LAYER NEURON`.
    """
    if version:
        from nx import __version__

        print(__version__)
        raise Exit(0)
    if context.invoked_subcommand is None:
        print(context.get_help())
        raise Exit(0)


WAREHOUSE_HELP = "Warehouse root: a directory or az://ACCOUNT/CONTAINER/path. [env: NX_WAREHOUSE; default: ./nx-warehouse]"
MODEL_HELP = "Model partition: gpt2-xl, gpt2-small, or a name of your own."
FORMAT_HELP = ("Output format: table, csv, json or parquet. [default: from the -o suffix; else table on a "
               "terminal, csv when piped]")
OUTPUT_HELP = "Write the result to FILE (atomically) instead of stdout."
MAX_ROWS_HELP = "Rows drawn in table format (the row count is always shown).  [default: 40]"
AS_OF_HELP = ("Read the tables as they were: a version number (of every table read), TABLE=VERSION pairs "
              "(explanations=3,runs=2), or a time (2026-12-01T15:30:00Z). nx history lists them.")
TABLES_HELP = "Tables to work on. [default: every table of the warehouse]"

warehouse_option = click.option("--warehouse", "-w", metavar="PATH", help=WAREHOUSE_HELP)
model_option = click.option("--model", default="gpt2-xl", metavar="MODEL", help=MODEL_HELP, show_default=True)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
json_option = click.option("--json", "json_report", is_flag=True, help="Print the report as JSON instead of a summary.")


def result_options(command):
    """-w, --format, --output and --max-rows: the options of every command that prints rows."""
    for option in reversed((
            warehouse_option,
            click.option("--format", "-f", "fmt", metavar="FORMAT", help=FORMAT_HELP),
            click.option("--output", "-o", metavar="FILE", help=OUTPUT_HELP),
            click.option("--max-rows", default=40, type=AtLeast(int, 0), metavar="N", help=MAX_ROWS_HELP))):
        command = option(command)
    return command


def handles_errors(command=None, *, stop_after: float | None = None):
    """Map NxError to one stderr line and its exit code; Ctrl-C to 130; nx's warnings to one line.

    ``stop_after``: for commands that write nothing until their query is done (sql, query), the
    seconds a Ctrl-C waits for the command to stop before nx exits anyway. DuckDB notices an
    interrupt only between some steps of a query; a cross join can run on for minutes.
    """
    if command is None:
        return functools.partial(handles_errors, stop_after=stop_after)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from nx.render import Interrupts, error_line, one_line_for_nx

        with warnings.catch_warnings(), Interrupts(stop_after) as interrupts:
            warnings.showwarning = one_line_for_nx(warnings.showwarning)
            try:
                return command(*args, **kwargs)
            except (Exit, click.ClickException):
                raise
            except (Exception, KeyboardInterrupt) as exc:
                # A Ctrl-C inside a running DuckDB query comes out as DuckDB's error, not KeyboardInterrupt.
                if interrupts.seen.is_set() or isinstance(exc, KeyboardInterrupt):
                    interrupts.tell()
                    if stop_after is not None:  # sql, query: DuckDB may still be stopping
                        _leave_now()
                    raise Exit(int(ExitCode.INTERRUPTED)) from None
                if isinstance(exc, NxError):
                    error_line(str(exc))
                    raise Exit(int(exc.exit_code)) from None
                if isinstance(exc, BrokenPipeError):
                    sys.stderr.close()
                    raise Exit(0) from None
                raise

    return wrapper


def _leave_now() -> None:
    """After a Ctrl-C in a query, DuckDB's worker threads may still be unwinding it: a normal
    interpreter shutdown then aborts the process (SIGABRT, 'exception not rethrown'). A query
    command has written nothing yet, so it leaves at once, as interrupted."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(ExitCode.INTERRUPTED))


# -- ingest ----------------------------------------------------------------------------------
@app.command()
@click.argument("kinds", nargs=-1, metavar="[KIND]...")
@click.option("--all", "all_kinds", is_flag=True, help="Ingest all five kinds.")
@click.option("--source", envvar="NX_SOURCE", metavar="PATH|URL",
              help="Source root in the public layout: a directory, https:// URL or az://ACCOUNT/CONTAINER/path. "
                   "[env: NX_SOURCE; default: OpenAI's public bucket for --model]")
@warehouse_option
@click.option("--model", default="gpt2-xl", metavar="MODEL", show_default=True,
              help=MODEL_HELP + " gpt2-small reads OpenAI's GPT-2 Small release.")
@click.option("--layers", metavar="LAYERS", help="Layers, as ranges and lists: 0-3,7. [default: all, found by "
                                                 "listing the source]")
@click.option("--neurons", metavar="NEURONS", help="Neurons in each layer, as ranges and lists: 0-99. [default: all]")
@click.option("--workers", "-j", type=int, metavar="N", help="Worker processes. [default: all cores]")
@json_option
@quiet_option
@handles_errors
def ingest(kinds, all_kinds, source, warehouse, model, layers, neurons, workers, json_report, quiet):
    """Flatten the public JSON files into the warehouse's Parquet tables.

    KIND: collated-activations, explanations, related-neurons, token-lookups or
    token-weights; or give --all for all five.

    Resumable and idempotent: files already ingested (and unchanged) are skipped, so an
    interrupted run is finished by running it again. Missing and malformed files are logged
    in the _ingest table and listed in the summary; the exit code is 1 if any file was not
    ingested.
    """
    import nx.ingest
    from nx.progress import NullProgress
    from nx.render import RichProgress

    if not kinds and not all_kinds:
        raise click.BadParameter("name one or more kinds, or give --all", param_hint="KIND")
    if kinds and all_kinds:
        raise click.BadParameter("give kinds or --all, not both", param_hint="KIND")
    progress = NullProgress() if quiet else RichProgress("files", ("ok", "missing", "malformed"))
    _note_migration(warehouse)
    report = nx.ingest.run(None if all_kinds else list(kinds), source=source, warehouse=warehouse, model=model,
                           layers=layers, neurons=neurons, workers=workers, progress=progress)
    _print_report(report, json_report)
    raise Exit(int(ExitCode.OK if report.complete else ExitCode.FAILED))


def _print_report(report, as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps(report.asdict(), indent=2))
    else:
        print(report)


# -- query commands (sql, query, show, export) -----------------------------------------------
@app.command()
@click.argument("statement", metavar="SQL")
@result_options
@click.option("--as-of", metavar="VERSION|TIME", help=AS_OF_HELP)
@handles_errors(stop_after=1.0)
def sql(statement, warehouse, fmt, output, max_rows, as_of):
    """Run one read-only SQL statement against the warehouse (local or az://).

    SQL: one SELECT or EXPLAIN statement over the views (one per table, plus activations,
    best_explanations and neuron_summary; show tables lists them); '-' reads it from stdin.

    Only SELECT and EXPLAIN are admitted, and only the warehouse's files can be read: nx sql
    never modifies anything. A filter on model, run or layer reads only those partitions.
    SQL errors print DuckDB's message and exit with 1.
    """
    import nx.queries
    from nx.queries.render import choose_format, emit

    text = sys.stdin.read() if statement == "-" else statement
    fmt = choose_format(fmt, output, sys.stdout.isatty())
    emit(nx.queries.sql(text, warehouse, arrow=fmt == "parquet", as_of=as_of), fmt, output, max_rows=max_rows)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             add_help_option=False)
@click.argument("name", required=False, metavar="[NAME]")
@click.option("--list", "list_queries", is_flag=True, help="List the named queries with their parameters.")
@result_options
@click.option("--help", "show_help", is_flag=True, help="Show this message (after NAME: the query's own) and exit.")
@click.pass_context
@handles_errors(stop_after=1.0)
def query(ctx, name, list_queries, warehouse, fmt, output, max_rows, show_help):
    """Run a named query: nx query top-explained --min-score 0.9.

    NAME is the query; its parameters follow as --PARAM VALUE (nx query NAME --help lists
    them). Named queries are .sql files with a header naming their parameters and defaults:
    nx's own, then <warehouse>/_queries/*.sql, then $NX_QUERIES/*.sql. Yours add to nx's and
    cannot replace them: a file named like one of nx's, or one that cannot be read, is skipped
    with a warning.
    """
    import nx.queries
    from nx.errors import UsageError
    from nx.queries.named import describe, listing, params_from_args, usage
    from nx.queries.render import choose_format, emit
    from nx.render import note

    if show_help:
        print(usage(nx.queries.named_queries(warehouse), name, ctx.get_help()) if name else ctx.get_help())
        return
    fmt = choose_format(fmt, output, sys.stdout.isatty())
    if list_queries:
        if name or ctx.args:
            raise UsageError("--list takes no query name or parameters")
        queries = nx.queries.named_queries(warehouse)
        emit(listing(queries), fmt, output, max_rows=len(queries), text=describe(queries))
        return
    if not name:
        raise UsageError("name a query (nx query --list shows them)")
    result = nx.queries.query(name, warehouse, arrow=fmt == "parquet", **params_from_args(ctx.args))
    if getattr(result, "first", None) is not None and fmt != "table":  # a table says so in its footer
        note(f"nx: note: the first {result.first:,} rows (the query's default limit); --limit N for more")
    emit(result, fmt, output, max_rows=max_rows)


@app.command()
@click.argument("layer", type=int, metavar="LAYER")
@click.argument("neuron", type=int, metavar="NEURON")
@model_option
@warehouse_option
@click.option("--records", default=5, type=AtLeast(int, 0), metavar="N", help="Top activation records shown.",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print everything nx.neuron() returns, as JSON.")
@handles_errors
def show(layer, neuron, model, warehouse, records, as_json):
    """Print a neuron card: explanations with all scores, top activation records shaded by
    activation, lookup-table and weight-based tokens, related neurons with their explanations."""
    import nx.queries.neuron
    from nx.queries.card import draw_card, write_json

    found = nx.queries.neuron.neuron(layer, neuron, model=model, warehouse=warehouse)
    if as_json:
        write_json(found, sys.stdout.buffer)
    else:
        draw_card(found, sys.stdout, color=sys.stdout.isatty(), records=records)


@app.command()
@click.argument("kinds", nargs=-1, metavar="[KIND]...")
@click.option("--all", "all_kinds", is_flag=True, help="Export all five kinds.")
@click.option("--to", required=True, metavar="PATH", help="Directory to write the public JSON layout into.")
@warehouse_option
@model_option
@click.option("--layers", metavar="LAYERS", help="Layers, as ranges and lists: 0-3,7. [default: all]")
@click.option("--neurons", metavar="NEURONS", help="Neurons in each layer: 0-99. [default: all]")
@quiet_option
@handles_errors
def export(kinds, all_kinds, to, warehouse, model, layers, neurons, quiet):
    """Write tables back to the public JSON layout: the same paths and the same JSON as the
    source (dataclass_name keys included), for every file logged 'ok' at ingest.

    KIND: collated-activations, explanations, related-neurons, token-lookups or
    token-weights; or give --all for all five.
    """
    from nx.json_export import export as export_files
    from nx.progress import NullProgress
    from nx.render import RichProgress

    if bool(kinds) == all_kinds:
        raise click.BadParameter("name one or more kinds, or give --all", param_hint="KIND")
    progress = NullProgress() if quiet else RichProgress("files")
    report = export_files(None if all_kinds else list(kinds), to=to, warehouse=warehouse, model=model,
                          layers=layers, neurons=neurons, progress=progress)
    print(report)


# -- table maintenance (compact, vacuum, history, migrate) ----------------------------------
@app.command()
@click.argument("tables", nargs=-1, metavar="[TABLE]...")
@warehouse_option
@handles_errors
def compact(tables, warehouse):
    """Merge each table's small files into a few sorted by (layer, neuron).

    TABLE: the tables to work on. [default: every table of the warehouse]

    nx ingest and nx explain do this when they finish; run it after an interrupted run. One
    commit per table that changes no data; the files it replaces stay readable (nx sql
    --as-of) until nx vacuum removes them.
    """
    from nx import maintenance

    print(maintenance.compact(maintenance.open_warehouse(warehouse), _tables(tables)))


@app.command()
@click.argument("tables", nargs=-1, metavar="[TABLE]...")
@warehouse_option
@click.option("--retention-hours", default=168.0, type=AtLeast(float, 0), metavar="HOURS", show_default=True,
              help="Keep files that a version younger than this still reads (time travel with --as-of). "
                   "Files no commit ever referenced (left by a killed writer) older than this go too.")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@handles_errors
def vacuum(tables, warehouse, retention_hours, dry_run):
    """Delete data files no version within the retention reads, and files never committed.

    TABLE: the tables to work on. [default: every table of the warehouse]

    A version older than the retention can no longer be read with --as-of afterwards. A
    retention of 0 also removes what a writer running right now has written but not yet
    committed: use it only when nothing else writes.
    """
    from nx import maintenance

    print(maintenance.vacuum(maintenance.open_warehouse(warehouse), _tables(tables), retention_hours, dry_run))


@app.command()
@click.argument("table", required=False, metavar="[TABLE]")
@result_options
@handles_errors
def history(table, warehouse, fmt, output, max_rows):
    """List the commits of the warehouse's tables, newest first: what wrote each version.

    TABLE: one table. [default: all]

    Each commit carries the command that made it (ingest, explain, compact, migrate), nx's
    version and its source, run or counts. Query a past state with nx sql --as-of VERSION
    (one table's version: TABLE=VERSION) or --as-of TIME.
    """
    import json

    from nx import maintenance
    from nx.queries.render import Rows, choose_format, emit

    rows = maintenance.history(maintenance.open_warehouse(warehouse), table)
    result = Rows(["table", "version", "committed_at", "operation", "nx_version", "details"],
                  ["VARCHAR", "BIGINT", "TIMESTAMP WITH TIME ZONE", "VARCHAR", "VARCHAR", "VARCHAR"],
                  [(r["table"], r["version"], r["committed_at"], r["operation"], r["nx_version"],
                    json.dumps(r["details"], sort_keys=True) if r["details"] else None) for r in rows])
    emit(result, choose_format(fmt, output, sys.stdout.isatty()), output, max_rows=max_rows)


@app.command()
@warehouse_option
@handles_errors
def migrate(warehouse):
    """Convert a warehouse written by an older nx (plain Parquet) into Delta tables, in place.

    Every row is kept. Safe to interrupt and run again; nx ingest and nx explain do it on
    their own before they write.
    """
    from nx import maintenance, migrate as conversion

    print(conversion.migrate(maintenance.open_warehouse(warehouse)))


def _note_migration(warehouse: str | None) -> None:
    """Say so on stderr when a writer is about to convert an older nx's tables."""
    from nx import migrate as conversion
    from nx.render import note
    from nx.warehouse import Warehouse

    older = conversion.needed(Warehouse(warehouse))
    if older:
        note(f"converting {', '.join(older)} from an older nx's layout (plain Parquet) to Delta tables first")


def _tables(names: tuple[str, ...]) -> list[str] | None:
    from nx.schema import TABLES

    for name in names:
        if name not in TABLES:
            raise click.BadParameter(f"unknown table {name!r}; tables: {', '.join(TABLES)}", param_hint="TABLE")
    return list(names) or None


# -- serve ----------------------------------------------------------------------------------
@app.command()
@warehouse_option
@click.option("--port", "-p", default=8000, type=int, metavar="PORT", show_default=True,
              help="Port to listen on; 0 takes a free one and prints it. A port in use is an error (exit 3).")
@click.option("--host", default="127.0.0.1", metavar="ADDRESS", show_default=True,
              help="Address to listen on. Anything but loopback exposes the warehouse to the network (a warning "
                   "says so).")
@click.option("--workers", default=4, type=AtLeast(int, 1, 64), metavar="N", show_default=True,
              help="Queries run at once; more wait their turn.")
@click.option("--query-timeout", default=10.0, type=AtLeast(float, 0.1), metavar="SECONDS", show_default=True,
              help="Seconds a query may run before it is stopped with a clear message.")
@click.option("--open", "open_browser", is_flag=True, help="Open the viewer in a web browser.")
@handles_errors
def serve(warehouse, port, host, workers, query_timeout, open_browser):
    """Start the neuron viewer, a local web app over the warehouse (local or az://), read-only.

    Neuron pages with every pane of OpenAI's viewer, search, layer statistics, run comparison
    and a read-only SQL box; every page has a JSON twin (add .json to its path).
    """
    import nx.web

    nx.web.serve(warehouse, host=host, port=port, workers=workers, query_timeout=query_timeout,
                 open_browser=open_browser)


# explain and puzzles: their own module, registered here (this one stays under 500 lines).
from nx import cli_explain  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
