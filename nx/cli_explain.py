"""The ``nx explain`` and ``nx puzzles`` commands, part of the command line (``nx/cli.py``
registers them): parse, make one library call (``nx.explain.run``, ``nx.explain.puzzles.run``),
render the report; the exit code follows it.
"""
from __future__ import annotations

import click

from nx.cli import (AtLeast, Exit, _note_migration, _print_report, app, handles_errors, json_option,
                    model_option, quiet_option, warehouse_option)
from nx.errors import ExitCode


def server_options(command):
    """The models, simulator, server and request options of explain and puzzles."""
    for option in reversed((
            click.option("--explainer-model", required=True, metavar="MODEL", help="Model that writes the explanations."),
            click.option("--simulator-model", required=True, metavar="MODEL", help="Model that simulates activations "
                                                                                    "from them (and answers scorers)."),
            click.option("--simulator", default="all-at-once", metavar="KIND", show_default=True, help=(
                "all-at-once (the paper's: completions with echo + logprobs, e.g. vLLM, llama.cpp), chat-logprobs (chat "
                "models with top_logprobs), sampling (any chat model: sampled numbers), token-by-token (the paper's one "
                "request per token, completions or chat with logprobs) or json (any chat model: activations as JSON).")),
            click.option("--prompts", default="nx", type=click.Choice(["nx", "paper"]), metavar="SET", show_default=True,
                         help="nx's own prompts, or paper: the original package's prompt builder and few-shot "
                              "examples (pip install 'nx-neurons[paper]')."),
            click.option("--base-url", envvar="OPENAI_BASE_URL", metavar="URL", help=(
                "OpenAI-compatible server, e.g. http://localhost:8000/v1. The key comes from OPENAI_API_KEY only. "
                "[env: OPENAI_BASE_URL]")),
            click.option("--concurrency", default=8, type=int, metavar="N", show_default=True,
                         help="Requests in flight at once."),
            click.option("--timeout", default=60.0, type=float, metavar="SECONDS", show_default=True, help=(
                "Seconds for each request's whole reply (connect, first and last byte; a trickle too) before it is "
                "retried.")),
            click.option("--max-retries", default=5, type=int, metavar="N", show_default=True,
                         help="Retries of a request after 429, 5xx, timeouts and dropped connections."),
            warehouse_option, json_option, quiet_option)):
        command = option(command)
    return command


@app.command()
@click.option("--layers", required=True, metavar="LAYERS", help="Layers to explain, as ranges and lists: 9 or 0-3,7.")
@click.option("--neurons", metavar="NEURONS",
              help="Neurons in each layer: 6236,100-120. [default: every neuron with activation records]")
@click.option("--run", required=True, metavar="NAME", help="Name of the run: its explanations are written under "
                                                           "run=NAME. Re-running the same command resumes it.")
@click.option("--explainer", default="token-activations", metavar="KIND", show_default=True,
              help="token-activations (the paper's: top records as token/0-10 activation pairs) or token-lookup "
                   "(the neuron's token lookup table).")
@click.option("--calibrate", type=click.Choice(["linear", "percentile"]), metavar="KIND", help=(
    "Calibrate simulations on the calibration split: linear or percentile (matches the real activations' quantiles). "
    "[default: raw 0-10 values]"))
@click.option("--samples", default=1, type=AtLeast(int, 1, 20), metavar="N", show_default=True,
              help="Explanations per neuron, each scored; the best is flagged (one request with n=N where allowed).")
@click.option("--scorer", "scorers", default="simulation", metavar="SCORERS", show_default=True, help=(
    "Comma-separated: simulation (the paper's), detection (top vs random records), fuzzing (right vs shuffled marks)."))
@click.option("--batch-size", default=16, type=int, metavar="N", show_default=True,
              help="Neurons written per batch (a crash loses at most the batch in flight).")
@server_options
@model_option
@handles_errors
def explain(layers, neurons, run, explainer, calibrate, samples, scorers, batch_size, model, **options):
    """Generate, simulate and score new explanations; write them back as run NAME.

    Scores follow the paper: pooled ev-correlation, r-squared and absolute-deviation scores on
    the valid split (5 top + 5 random records), plus top-only and random-only scores. Failed
    neurons are stored with their reason and no score, and are retried when the command is
    run again. Compare with the public run: nx sql "select run, avg(score) from explanations
    group by run".
    """
    import nx.explain
    from nx.ranges import parse_ranges

    json_report, progress = _explain_progress(options, "neurons")
    _note_migration(options["warehouse"])
    report = nx.explain.run(model=model, layers=parse_ranges(layers, "layer"), neurons=parse_ranges(neurons, "neuron"),
                            run=run, explainer=explainer, calibrate=calibrate, samples=samples, scorers=scorers,
                            batch_size=batch_size, progress=progress, **options)
    _print_report(report, json_report)
    raise Exit(int(ExitCode.FAILED if report.failed or report.stopped else ExitCode.OK))


def _explain_progress(options: dict, unit: str):
    """(--json, the progress bar or none), taken out of ``options``."""
    from nx.progress import NullProgress
    from nx.render import RichProgress

    quiet, json_report = options.pop("quiet"), options.pop("json_report")
    return json_report, NullProgress() if quiet else RichProgress(unit, ("failed", "tokens"))


@app.command()
@click.option("--run", required=True, metavar="NAME", help="Name of the results in the puzzle_results table.")
@server_options
@handles_errors
def puzzles(run, **options):
    """Run the original's explanation puzzles: explain each, and score the generated, true and false
    explanations on its sentences; results to the puzzle_results table (pip install 'nx-neurons[paper]')."""
    import nx.explain.puzzles

    json_report, progress = _explain_progress(options, "puzzles")
    report = nx.explain.puzzles.run(run=run, progress=progress, **options)
    _print_report(report, json_report)
    raise Exit(int(ExitCode.FAILED if report.failed or report.stopped else ExitCode.OK))
