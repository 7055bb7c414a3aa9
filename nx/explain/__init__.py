"""``nx.explain.run``: new explanations for chosen neurons, scored as the paper does, appended to
the warehouse as a new run that ``nx sql`` compares with the public one.

One call: check the arguments and that the run may be resumed with them; read the neurons'
records; skip those this run already scored; probe the server once (key, models, simulator);
then explain, simulate and score the rest, ``concurrency`` at a time, writing each batch of
finished neurons atomically (``runs.py``), and return an ``ExplainReport``. Failed neurons are
stored with their reason and no score and are retried by the next call with the same run.
The API key goes to the server only.
"""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

from nx import settings
from nx.errors import ApiError, NotFoundError, UsageError
from nx.progress import NullProgress, Progress
from nx.explain.report import ExplainReport

__all__ = ["run", "ExplainReport"]

EXPLAINERS = ("token-activations", "token-lookup")
SIMULATORS = ("all-at-once", "chat-logprobs", "sampling", "token-by-token", "json")
CALIBRATIONS = ("linear", "percentile")
SCORERS = ("simulation", "detection", "fuzzing")
PROMPTS = ("nx", "paper")
PAPER_SIMULATORS = ("all-at-once", "token-by-token", "json")


def run(*, warehouse=None, model: str = settings.DEFAULT_MODEL, layers: list[int],
        neurons: list[int] | None = None, run: str, explainer_model: str, simulator_model: str,
        explainer: str = "token-activations", simulator: str = "all-at-once",
        base_url: str | None = None, api_key: str | None = None, concurrency: int = 8,
        calibrate: str | bool | None = None, samples: int = 1, scorers: tuple[str, ...] | list[str] = ("simulation",),
        prompts: str = "nx", timeout: float = 60.0, max_retries: int = 5, batch_size: int = 16,
        progress: Progress = NullProgress()) -> ExplainReport:
    """Explain, simulate and score ``neurons`` (None: all with records) of ``layers`` as ``run``.

    ``calibrate``: None (raw 0-10 simulations), "linear" (True) or "percentile"; ``samples``
    explanations per neuron, each scored, the best flagged; ``scorers``: any of "simulation"
    (the paper's), "detection" and "fuzzing"; ``prompts``: "nx" or "paper" (the original
    package's prompt builder and few-shot examples, the ``paper`` extra).

    Raises UsageError (bad arguments, or a run resumed with other models/simulator/prompts),
    NotFoundError (no activation records for the layers), ApiError (no key for OpenAI, key or
    model refused, server unreachable, simulator unsupported: checked before any neuron),
    WarehouseError (the warehouse cannot be written). Interrupted (KeyboardInterrupt) or
    killed, it leaves only whole neurons behind; calling it again resumes.
    """
    from nx.explain import inputs, runs
    from nx.explain import prompts as nx_prompts
    from nx.explain.neuron import RunConfig
    from nx.ranges import parse_ranges
    from nx.warehouse import Warehouse

    # "0-3,7" or lists alike, as nx.ingest.run takes them
    layers, neurons = parse_ranges(layers, "layer"), parse_ranges(neurons, "neuron")
    _check_arguments(model, layers, neurons, explainer, simulator, explainer_model, simulator_model,
                     concurrency, batch_size, timeout, max_retries)
    calibrate, scorers = _check_scoring(calibrate, samples, scorers, prompts, simulator, explainer)
    builder = nx_prompts
    if prompts == "paper":
        from nx.explain import paper

        builder = paper.load()
    layers = list(dict.fromkeys(layers))
    runs.check_run_name(run)
    started, clock = runs.now(), time.monotonic()
    store = runs.RunStore(warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse), model, run)
    versions = builder.versions_used(explainer, simulator, scorers)
    store.check_compatible({"explainer_model": explainer_model, "simulator_model": simulator_model,
                            "explainer": explainer, "simulator": simulator, "calibrate": calibrate,
                            "samples": samples, "scorers": ",".join(scorers), "prompts": prompts,
                            "prompt_versions": json.dumps(versions, sort_keys=True)})
    store.warehouse.check_writable()
    from nx import migrate  # an older nx's tables become Delta tables before anything is written

    migrate.migrate(store.warehouse, migrate.needed(store.warehouse))
    available = {layer: inputs.neurons_with_records(store.warehouse, model, layer) for layer in layers}
    empty = [layer for layer in layers if not available[layer]]
    chosen = [(layer, neuron) for layer in layers
              for neuron in (dict.fromkeys(neurons) if neurons is not None else sorted(available[layer]))]
    if empty or not any(neuron in available[layer] for layer, neuron in chosen):
        where = f"layer(s) {runs.compact_ranges(empty)}" if empty else "the chosen neurons"
        raise NotFoundError(f"no activation records for model {model} {where} in "
                            f"{store.warehouse.url}; ingest them first")
    config = RunConfig(model, run, explainer_model, simulator_model, explainer, simulator, calibrate,
                       builder.version(explainer, simulator, scorers), samples, scorers, builder)
    report = ExplainReport(run, model, explainer_model, simulator_model, explainer, simulator,
                           config.prompt_version)
    store.repair()
    scored = {layer: store.scored_neurons(layer) for layer in layers}
    todo = [(layer, neuron) for layer, neuron in chosen if neuron not in scored[layer]]
    report.skipped = len(chosen) - len(todo)
    if todo:
        key = settings.resolve(settings.OPENAI_API_KEY, api_key)
        url = settings.resolve(settings.OPENAI_BASE_URL, base_url)
        if not key and not url:
            raise ApiError("OPENAI_API_KEY is not set (needed for OpenAI's API); set it, or give "
                           "--base-url for a server that needs no key")
        parameters = {"model": model, "layers": runs.compact_ranges(layers),
                      "neurons": runs.compact_ranges(neurons) if neurons is not None else "all",
                      "calibrate": calibrate, "samples": samples, "scorers": ",".join(scorers),
                      "prompts": prompts, "concurrency": concurrency, "timeout": timeout,
                      "max_retries": max_retries, "batch_size": batch_size}
        items = inputs.stream(store.warehouse, model, todo, explainer, available)
        _run_coroutine(_execute(config, store, items, len(todo), report, progress, parameters,
                                versions, started, url, key, concurrency, timeout, max_retries, batch_size))
    report.seconds = time.monotonic() - clock
    return report


def _check_arguments(model, layers, neurons, explainer, simulator, explainer_model, simulator_model,
                     concurrency, batch_size, timeout, max_retries) -> None:
    if explainer not in EXPLAINERS:
        raise UsageError(f"explainer {explainer!r}: choose one of {', '.join(EXPLAINERS)}")
    if simulator not in SIMULATORS:
        raise UsageError(f"simulator {simulator!r}: choose one of {', '.join(SIMULATORS)}")
    if not explainer_model or not simulator_model:
        raise UsageError("give both an explainer model and a simulator model")
    if not layers:
        raise UsageError("give at least one layer")
    if concurrency < 1 or batch_size < 1 or timeout <= 0 or max_retries < 0:
        raise UsageError("concurrency and batch size must be at least 1, the timeout positive, "
                         "retries not negative")
    layer_count, neuron_count = settings.PUBLIC_MODELS.get(model, (None, 1 << 30, 1 << 30))[1:]
    for layer in layers:
        if not 0 <= layer < layer_count:
            raise UsageError(f"layer {layer} is out of range for {model} (0-{layer_count - 1})")
    for neuron in neurons or ():
        if not 0 <= neuron < neuron_count:
            raise UsageError(f"neuron {neuron} is out of range for {model} (0-{neuron_count - 1})")


def _check_scoring(calibrate, samples, scorers, prompts, simulator, explainer) -> tuple[str | None, tuple[str, ...]]:
    """The calibration kind (None, linear, percentile) and scorers, checked."""
    if calibrate is True:
        calibrate = "linear"
    elif calibrate is False or calibrate in ("", "none"):
        calibrate = None
    if calibrate not in (None, *CALIBRATIONS):
        raise UsageError(f"calibration {calibrate!r}: choose one of {', '.join(CALIBRATIONS)}")
    if isinstance(scorers, str):
        scorers = [s.strip() for s in scorers.split(",") if s.strip()]
    scorers = tuple(dict.fromkeys(scorers))
    unknown = [s for s in scorers if s not in SCORERS]
    if unknown or not scorers:
        raise UsageError(f"scorer {', '.join(unknown) or '(none)'}: choose from {', '.join(SCORERS)}")
    if not isinstance(samples, int) or not 1 <= samples <= 20:
        raise UsageError("samples must be from 1 to 20")
    if prompts not in PROMPTS:
        raise UsageError(f"prompts {prompts!r}: choose one of {', '.join(PROMPTS)}")
    if prompts == "paper" and ("simulation" in scorers and simulator not in PAPER_SIMULATORS
                               or explainer != "token-activations"):
        raise UsageError(f"--prompts paper builds the original's token-activations explainer and its "
                         f"{', '.join(PAPER_SIMULATORS)} simulators; choose one of those")
    return calibrate, scorers


def _run_coroutine(coroutine) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    # Called from inside an event loop (a notebook): run ours in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def _execute(config, store, items, total, report, progress, parameters, versions, started, url,
                   key, concurrency, timeout, max_retries, batch_size) -> None:
    from nx.explain import runs
    from nx.explain.client import Client
    from nx.explain.neuron import process
    from nx.explain.probe import probe

    client = Client(base_url=url, api_key=key, timeout=timeout, max_retries=max_retries,
                    concurrency=concurrency)
    previous = store.previous() or {}
    pending: list = []
    stop: list[str] = []
    halted: list[bool] = []  # set when the run is interrupted: no worker starts another neuron

    def record(ended) -> dict:
        return {"explainer_model": config.explainer_model, "simulator_model": config.simulator_model,
                "explainer": config.explainer, "simulator": config.simulator,
                "prompt_versions": json.dumps(versions, sort_keys=True),
                "parameters": json.dumps(parameters, sort_keys=True), "base_url": client.base_url,
                "started_at": started, "ended_at": ended,
                "prompt_tokens": (previous.get("prompt_tokens") or 0) + client.usage.prompt_tokens,
                "completion_tokens": (previous.get("completion_tokens") or 0) + client.usage.completion_tokens}

    def flush() -> None:
        if pending:
            batch = pending[:]
            pending.clear()
            store.write_batch(batch)
            store.write_run(record(None))

    async def worker(items) -> None:
        # Workers share one iterator; next() runs between awaits, so each item goes to one.
        for item in items:
            if stop or halted:
                return
            result = await process(client, config, item)
            pending.append(result)
            if result.ok:
                report.ok += 1
            else:
                report.failed += 1
                report.failures.append({"layer": result.layer, "neuron": result.neuron, "error": result.error})
                if result.fatal and not stop:
                    stop.append(result.error)
            progress.advance(1, failed=0 if result.ok else 1, tokens=result.tokens)
            if len(pending) >= batch_size:
                flush()

    try:
        await probe(client, explainer_model=config.explainer_model,
                    simulator_model=config.simulator_model, simulator=config.simulator if config.simulates else None,
                    builder=config.builder)
        store.write_run(record(None))
        progress.start(total, f"explain {config.run}")
        workers = [asyncio.ensure_future(worker(items)) for _ in range(min(concurrency, total))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            # Interrupted or failed: end the other workers here, so that no task outlives the
            # loop and every neuron finished by now is in ``pending`` for the flush below. The
            # flag too: Python 3.11's wait_for can swallow a cancellation that lands as its
            # request completes, and the worker would go on through every remaining neuron.
            halted.append(True)
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        flush()
        store.write_run(record(runs.now()))
        progress.start(0, "compacting")
        from nx import maintenance  # pyarrow and delta-rs: already loaded by the writes

        written = [t for t in runs.RUN_TABLES if store.warehouse.has_table(t)]
        maintenance.compact(store.warehouse, written, "explain")
        progress.finish()
    finally:
        # Neurons already finished are whole: keep them even when interrupted.
        flush()
        report.prompt_tokens = client.usage.prompt_tokens
        report.completion_tokens = client.usage.completion_tokens
        report.requests = client.usage.requests
        report.retries = client.usage.retries
        report.remaining = total - report.ok - report.failed
        report.stopped = stop[0] if stop else None
        await client.close()
