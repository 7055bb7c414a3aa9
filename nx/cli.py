"""The ``nx`` command: a thin typer app over the library API, with the same words.

Each command parses its options, makes one library call and renders the result. Errors
that are the user's (NxError) become one line on stderr and a documented exit code:
0 ok, 1 failed (query rejected, files not ingested, neurons failed), 2 usage,
3 source/warehouse/server unreachable, 130 interrupted.
"""
from __future__ import annotations

import functools
import sys
import warnings
from typing import List, Optional

import typer

from nx.errors import ExitCode, NxError

app = typer.Typer(
    name="nx",
    help="A columnar warehouse and query tool for OpenAI's automated-interpretability neuron data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



@app.callback(invoke_without_command=True)
def _group(
    context: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print nx's version and exit."),
) -> None:
    """nx: OpenAI's public neuron-explainer data as a Parquet warehouse you can query.

    Start with `nx ingest --all`, then `nx sql "select ..."`, `nx query --list` or `nx show LAYER NEURON`.
    """
    if version:
        from nx import __version__

        print(__version__)
        raise typer.Exit(0)
    if context.invoked_subcommand is None:
        print(context.get_help())
        raise typer.Exit(0)


WAREHOUSE_HELP = "Warehouse root: a directory or az://ACCOUNT/CONTAINER/path. [env: NX_WAREHOUSE; default: ./nx-warehouse]"
MODEL_HELP = "Model partition: gpt2-xl, gpt2-small, or a name of your own."


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
            except typer.Exit:
                raise
            except (Exception, KeyboardInterrupt) as exc:
                # A Ctrl-C inside a running DuckDB query comes out as DuckDB's error, not KeyboardInterrupt.
                if interrupts.seen.is_set() or isinstance(exc, KeyboardInterrupt):
                    interrupts.tell()
                    raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
                if isinstance(exc, NxError):
                    error_line(str(exc))
                    raise typer.Exit(int(exc.exit_code)) from None
                if isinstance(exc, BrokenPipeError):
                    sys.stderr.close()
                    raise typer.Exit(0) from None
                raise

    return wrapper


# -- ingest ----------------------------------------------------------------------------------
@app.command()
@handles_errors
def ingest(
    kinds: Optional[List[str]] = typer.Argument(
        None, help="Kinds to ingest: collated-activations, explanations, related-neurons, token-lookups, "
                   "token-weights. Give --all instead for all five."),
    all_kinds: bool = typer.Option(False, "--all", help="Ingest all five kinds."),
    source: Optional[str] = typer.Option(
        None, "--source", envvar="NX_SOURCE",
        help="Source root in the public layout: a directory, https:// URL or az://ACCOUNT/CONTAINER/path. "
             "[default: OpenAI's public bucket for --model]"),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    model: str = typer.Option("gpt2-xl", "--model", help=MODEL_HELP + " gpt2-small reads OpenAI's GPT-2 Small release."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Layers, as ranges and lists: 0-3,7. [default: all, found by listing the source]"),
    neurons: Optional[str] = typer.Option(None, "--neurons", help="Neurons in each layer, as ranges and lists: 0-99. [default: all]"),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help="Worker processes. [default: all cores]"),
    json_report: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Flatten the public JSON files into the warehouse's Parquet tables.

    Resumable and idempotent: files already ingested (and unchanged) are skipped, so an
    interrupted run is finished by running it again. Missing and malformed files are logged
    in the _ingest table and listed in the summary; the exit code is 1 if any file was not
    ingested.
    """
    import nx.ingest
    from nx.progress import NullProgress
    from nx.render import RichProgress

    if not kinds and not all_kinds:
        raise typer.BadParameter("name one or more kinds, or give --all", param_hint="KINDS")
    if kinds and all_kinds:
        raise typer.BadParameter("give kinds or --all, not both", param_hint="KINDS")
    progress = NullProgress() if quiet else RichProgress("files", ("ok", "missing", "malformed"))
    _note_migration(warehouse)
    report = nx.ingest.run(None if all_kinds else kinds, source=source, warehouse=warehouse, model=model,
                           layers=layers, neurons=neurons, workers=workers, progress=progress)
    if json_report:
        import json

        print(json.dumps(report.asdict(), indent=2))
    else:
        print(report)
    raise typer.Exit(int(ExitCode.OK if report.complete else ExitCode.FAILED))


# -- query commands (sql, query, show, export) are defined below ----------------------------
# QUERY-COMMANDS (nx sql, nx query, nx show, nx export: the query layer, nx/queries)
FORMAT_HELP = ("Output format: table, csv, json or parquet. [default: from the -o suffix; else table on a "
               "terminal, csv when piped]")
OUTPUT_HELP = "Write the result to FILE (atomically) instead of stdout."
MAX_ROWS_HELP = "Rows drawn in table format (the row count is always shown)."
AS_OF_HELP = ("Read the tables as they were: a version number (of every table read), TABLE=VERSION pairs "
              "(explanations=3,runs=2), or a time (2026-12-01T15:30:00Z). nx history lists them.")


@app.command()
@handles_errors(stop_after=1.0)
def sql(
    statement: str = typer.Argument(
        ..., help="One SELECT or EXPLAIN statement over the views: one per table, plus activations, "
                  "best_explanations and neuron_summary. '-' reads it from stdin."),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
    max_rows: int = typer.Option(40, "--max-rows", min=0, help=MAX_ROWS_HELP),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
):
    """Run one read-only SQL statement against the warehouse (local or az://).

    Only SELECT and EXPLAIN are admitted, and only the warehouse's files can be read: nx sql
    never modifies anything. A filter on model, run or layer reads only those partitions.
    SQL errors print DuckDB's message and exit with 1.
    """
    import nx.queries
    from nx.queries.render import choose_format, emit

    text = sys.stdin.read() if statement == "-" else statement
    fmt = choose_format(fmt, output, sys.stdout.isatty())
    emit(nx.queries.sql(text, warehouse, arrow=fmt == "parquet", as_of=as_of), fmt, output, max_rows=max_rows)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handles_errors(stop_after=1.0)
def query(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="The named query, then its parameters: --NAME VALUE ..."),
    list_queries: bool = typer.Option(False, "--list", help="List the named queries with their parameters."),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
    max_rows: int = typer.Option(40, "--max-rows", min=0, help=MAX_ROWS_HELP),
):
    """Run a named query: nx query top-explained --min-score 0.9.

    Named queries are .sql files with a header naming their parameters and defaults: nx's own,
    then <warehouse>/_queries/*.sql, then $NX_QUERIES/*.sql. Yours add to nx's and cannot replace
    them: a file named like one of nx's, or one that cannot be read, is skipped with a warning.
    """
    import nx.queries
    from nx.errors import UsageError
    from nx.queries.named import describe, listing, params_from_args
    from nx.queries.render import choose_format, emit

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
    emit(result, fmt, output, max_rows=max_rows)


@app.command()
@handles_errors
def show(
    layer: int = typer.Argument(..., help="The neuron's layer."),
    neuron: int = typer.Argument(..., help="The neuron's index in its layer."),
    model: str = typer.Option("gpt2-xl", "--model", help=MODEL_HELP),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    records: int = typer.Option(5, "--records", min=0, help="Top activation records shown."),
    as_json: bool = typer.Option(False, "--json", help="Print everything nx.neuron() returns, as JSON."),
):
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
@handles_errors
def export(
    kinds: Optional[List[str]] = typer.Argument(
        None, help="Kinds to export: collated-activations, explanations, related-neurons, token-lookups, "
                   "token-weights. Give --all instead for all five."),
    all_kinds: bool = typer.Option(False, "--all", help="Export all five kinds."),
    to: str = typer.Option(..., "--to", help="Directory to write the public JSON layout into."),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    model: str = typer.Option("gpt2-xl", "--model", help=MODEL_HELP),
    layers: Optional[str] = typer.Option(None, "--layers", help="Layers, as ranges and lists: 0-3,7. [default: all]"),
    neurons: Optional[str] = typer.Option(None, "--neurons", help="Neurons in each layer: 0-99. [default: all]"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Write tables back to the public JSON layout: the same paths and the same JSON as the
    source (dataclass_name keys included), for every file logged 'ok' at ingest."""
    from nx.json_export import export as export_files
    from nx.progress import NullProgress
    from nx.render import RichProgress

    if bool(kinds) == all_kinds:
        raise typer.BadParameter("name one or more kinds, or give --all", param_hint="KINDS")
    progress = NullProgress() if quiet else RichProgress("files")
    report = export_files(None if all_kinds else kinds, to=to, warehouse=warehouse, model=model,
                          layers=layers, neurons=neurons, progress=progress)
    print(report)

# -- explain --------------------------------------------------------------------------------
@app.command()
@handles_errors
def explain(
    layers: str = typer.Option(..., "--layers", help="Layers to explain, as ranges and lists: 9 or 0-3,7."),
    neurons: Optional[str] = typer.Option(
        None, "--neurons", help="Neurons in each layer: 6236,100-120. [default: every neuron with activation records]"),
    run: str = typer.Option(..., "--run", help="Name of the run: its explanations are written under run=NAME. "
                                               "Re-running the same command resumes it."),
    explainer_model: str = typer.Option(..., "--explainer-model", help="Model that writes the explanations."),
    simulator_model: str = typer.Option(..., "--simulator-model", help="Model that simulates activations from them."),
    explainer: str = typer.Option(
        "token-activations", "--explainer",
        help="token-activations (the paper's: top records as token/0-10 activation pairs) or token-lookup "
             "(the neuron's token lookup table)."),
    simulator: str = typer.Option(
        "all-at-once", "--simulator",
        help="all-at-once (the paper's: completions with echo + logprobs, e.g. vLLM, llama.cpp), chat-logprobs "
             "(chat models with top_logprobs: expected value of the 0-10 digits) or sampling (any chat model: "
             "parses sampled numbers)."),
    base_url: Optional[str] = typer.Option(
        None, "--base-url", envvar="OPENAI_BASE_URL",
        help="OpenAI-compatible server, e.g. http://localhost:8000/v1. The key comes from OPENAI_API_KEY only."),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight at once."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Calibrate simulations linearly on the paper's "
                                                             "calibration split before scoring."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds for each request's whole reply (connect, first "
                                                          "and last byte; a trickle too) before it is retried."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries of a request after 429, 5xx, timeouts and "
                                                             "dropped connections."),
    batch_size: int = typer.Option(16, "--batch-size", help="Neurons written per batch (a crash loses at most "
                                                            "the batch in flight)."),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    model: str = typer.Option("gpt2-xl", "--model", help=MODEL_HELP),
    json_report: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Generate, simulate and score new explanations; write them back as run NAME.

    Scores follow the paper: pooled ev-correlation, r-squared and absolute-deviation scores on
    the valid split (5 top + 5 random records), plus top-only and random-only scores. Failed
    neurons are stored with their reason and no score, and are retried when the command is
    run again. Compare with the public run: nx sql "select run, avg(score) from explanations
    group by run".
    """
    import nx.explain
    from nx.progress import NullProgress
    from nx.ranges import parse_ranges
    from nx.render import RichProgress

    progress = NullProgress() if quiet else RichProgress("neurons", ("failed", "tokens"))
    _note_migration(warehouse)
    report = nx.explain.run(
        warehouse=warehouse, model=model, layers=parse_ranges(layers, "layer"),
        neurons=parse_ranges(neurons, "neuron"), run=run, explainer_model=explainer_model,
        simulator_model=simulator_model, explainer=explainer, simulator=simulator, base_url=base_url,
        concurrency=concurrency, calibrate=calibrate, timeout=timeout, max_retries=max_retries,
        batch_size=batch_size, progress=progress)
    if json_report:
        import json

        print(json.dumps(report.asdict(), indent=2))
    else:
        print(report)
    raise typer.Exit(int(ExitCode.FAILED if report.failed or report.stopped else ExitCode.OK))

# -- table maintenance (compact, vacuum, history, migrate) ----------------------------------
TABLES_HELP = "Tables to work on. [default: every table of the warehouse]"


@app.command()
@handles_errors
def compact(
    tables: Optional[List[str]] = typer.Argument(None, metavar="[TABLE]...", help=TABLES_HELP),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
):
    """Merge each table's small files into a few sorted by (layer, neuron).

    nx ingest and nx explain do this when they finish; run it after an interrupted run. One
    commit per table that changes no data; the files it replaces stay readable (nx sql
    --as-of) until nx vacuum removes them.
    """
    from nx import maintenance

    print(maintenance.compact(maintenance.open_warehouse(warehouse), _tables(tables)))


@app.command()
@handles_errors
def vacuum(
    tables: Optional[List[str]] = typer.Argument(None, metavar="[TABLE]...", help=TABLES_HELP),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    retention_hours: float = typer.Option(
        168, "--retention-hours", min=0,
        help="Keep files that a version younger than this still reads (time travel with --as-of). "
             "Files no commit ever referenced (left by a killed writer) older than this go too."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be removed; remove nothing."),
):
    """Delete data files no version within the retention reads, and files never committed.

    A version older than the retention can no longer be read with --as-of afterwards. A
    retention of 0 also removes what a writer running right now has written but not yet
    committed: use it only when nothing else writes.
    """
    from nx import maintenance

    print(maintenance.vacuum(maintenance.open_warehouse(warehouse), _tables(tables), retention_hours, dry_run))


@app.command()
@handles_errors
def history(
    table: Optional[str] = typer.Argument(None, metavar="[TABLE]", help="One table. [default: all]"),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
    max_rows: int = typer.Option(40, "--max-rows", min=0, help=MAX_ROWS_HELP),
):
    """List the commits of the warehouse's tables, newest first: what wrote each version.

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
@handles_errors
def migrate(
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
):
    """Convert a warehouse written by an older nx (plain Parquet) into Delta tables, in place.

    Every row is kept. Safe to interrupt and run again; nx ingest and nx explain do it on
    their own before they write.
    """
    from nx import maintenance, migrate as conversion

    print(conversion.migrate(maintenance.open_warehouse(warehouse)))


def _note_migration(warehouse: Optional[str]) -> None:
    """Say so on stderr when a writer is about to convert an older nx's tables."""
    from nx import migrate as conversion
    from nx.render import note
    from nx.warehouse import Warehouse

    older = conversion.needed(Warehouse(warehouse))
    if older:
        note(f"converting {', '.join(older)} from an older nx's layout (plain Parquet) to Delta tables first")


def _tables(names: Optional[List[str]]) -> Optional[List[str]]:
    from nx.schema import TABLES

    for name in names or []:
        if name not in TABLES:
            raise typer.BadParameter(f"unknown table {name!r}; tables: {', '.join(TABLES)}", param_hint="TABLE")
    return list(names) if names else None


# -- serve ----------------------------------------------------------------------------------
@app.command()
@handles_errors
def serve(
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback exposes "
                                                         "the warehouse to the network (a warning says so)."),
    workers: int = typer.Option(4, "--workers", min=1, max=64, help="Queries run at once; more wait their turn."),
    query_timeout: float = typer.Option(10.0, "--query-timeout", min=0.1,
                                        help="Seconds a query may run before it is stopped with a clear message."),
    open_browser: bool = typer.Option(False, "--open", help="Open the viewer in a web browser."),
):
    """Start the neuron viewer, a local web app over the warehouse (local or az://), read-only.

    Neuron pages with every pane of OpenAI's viewer, search, layer statistics, run comparison
    and a read-only SQL box; every page has a JSON twin (add .json to its path).
    """
    import nx.web

    nx.web.serve(warehouse, host=host, port=port, workers=workers, query_timeout=query_timeout,
                 open_browser=open_browser)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
