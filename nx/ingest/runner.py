"""Planning and running an ingest: which files need work, split into units, run in parallel.

A file needs work when the log has no 'ok' or 'malformed' entry for it, when the listing
shows a different size or version than the log (a changed file), or, for explanations, when
it was ingested before the neuron's activation records were there to label its sequences.
Units run in a process pool (``workers`` > 1) or in this process (``workers`` = 1); each
writes new Parquet files, and this process commits them in batches (``Batch``: a Delta commit
costs tens of milliseconds, a unit takes about as long), data tables first and the file log
last. An interrupted run leaves at most uncommitted files that no reader sees; running it
again finishes it.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nx import maintenance, migrate, settings
from nx.errors import SourceError, UsageError
from nx.ingest import file_log
from nx.ingest.kinds import kind_module, relative_path
from nx.ingest.report import IngestReport, KindCounts
from nx.ingest.source import MAX_LAYERS, MAX_NEURONS, REACH_SECONDS, FileInfo, Missing, Source
from nx.ingest.unit import Unit, UnitResult, run_unit
from nx.progress import NullProgress, Progress, tell
from nx.settings import PUBLIC_MODELS
from nx.warehouse import Warehouse

LISTING_THREADS = 8


@dataclass(frozen=True)
class Plan:
    kind: str
    units: list[Unit]
    skipped: int
    found: bool  # the source has this kind at all


def _listed(source: Source, kind, layers: list[int] | None, neurons: list[int] | None, model: str
            ) -> dict[int, dict[int, FileInfo]] | None:
    """Layer -> neuron -> file info from listing the source; None if it cannot be listed
    (https://, or a container that allows reading blobs but not listing them) but its files
    can be read, in which case the neurons are enumerated instead. Names that are not layer
    or neuron numbers within the model's size are left out, with a note on the ``nx.ingest``
    logger (stderr, unless the caller configures logging)."""
    if not source.listable:
        return None
    _, layer_limit, neuron_limit = PUBLIC_MODELS.get(model, (None, MAX_LAYERS, MAX_NEURONS))
    try:
        if layers is None:
            layers = source.list_layers(kind.DIRECTORY, layer_limit)
        with ThreadPoolExecutor(LISTING_THREADS) as pool:
            listings = list(pool.map(
                lambda layer: source.list_neurons(kind.DIRECTORY, layer, kind.SUFFIX, neuron_limit), layers))
        if source.ignored:
            names, source.ignored = source.ignored, []
            logging.getLogger("nx.ingest").warning(
                "%s: ignored %d name(s) that are not layer numbers below %d or neuron numbers below %d "
                "(plain decimal, no leading zero): %s", kind.KIND, len(names), layer_limit, neuron_limit,
                ", ".join(repr(n) for n in sorted(names)[:5]) + (", ..." if len(names) > 5 else ""))
        return dict(zip(layers, listings))
    except SourceError:
        if (layers is None or neurons is None) and model not in PUBLIC_MODELS:
            raise
        first_layer = layers[0] if layers else 0
        first_neuron = neurons[0] if neurons else 0
        probe = source.fetch([relative_path(kind, first_layer, first_neuron)])
        if any(isinstance(v, Missing) and v.args[0] != "not found" for v in probe.values()):
            raise  # the files cannot be read either: the source is unreachable
        return None


def plan_kind(kind_name: str, source: Source, warehouse: Warehouse, model: str,
              layers: list[int] | None, neurons: list[int] | None,
              progress: Progress = NullProgress(), workers: int = 1) -> Plan:
    kind = kind_module(kind_name)
    progress.start(0, f"listing {kind_name}")
    listing = _listed(source, kind, layers, neurons, model)
    if listing is None:
        dims = PUBLIC_MODELS.get(model)
        if (layers is None or neurons is None) and dims is None:
            raise UsageError(f"{source.url} cannot be listed; give --layers and --neurons")
        layers = layers if layers is not None else list(range(dims[1]))
        wanted = {layer: {n: None for n in (neurons if neurons is not None else range(dims[2]))}
                  for layer in layers}
    else:
        # Neurons are numbered 0..N-1 in every layer: a gap below the largest listed number
        # is a hole (a missing file), which is logged rather than silently passed over. The
        # listing bounds the numbers (the model's width, else source.MAX_NEURONS); for a model
        # of unknown width, gaps count as holes only while there are no more of them than
        # listed files, so planning never holds far more neurons than the listing does.
        largest = max((max(found) for found in listing.values() if found), default=-1)
        listed = sum(len(found) for found in listing.values())
        expected = neurons if neurons is not None else range(largest + 1)
        if neurons is None and model not in PUBLIC_MODELS and (largest + 1) * len(listing) > 2 * listed:
            logging.getLogger("nx.ingest").warning(
                "%s: %d file(s) numbered up to %d: too sparse to tell holes from neurons the model "
                "does not have, so gaps are not looked for", kind_name, listed, largest)
            expected = None
        wanted = {layer: dict(sorted(found.items())) if expected is None else {n: found.get(n) for n in expected}
                  for layer, found in listing.items()}
    log = file_log.read_log(warehouse, model, kind_name)
    records_log = (file_log.read_log(warehouse, model, "collated-activations")
                   if kind_name == "explanations" else {})
    todo: dict[int, list[tuple[int, FileInfo | None]]] = {}
    skipped = 0
    for layer in sorted(wanted):
        for neuron, info in sorted(wanted[layer].items()):
            entry = log.get((layer, neuron))
            if entry and _done(entry, info, records_log.get((layer, neuron))):
                skipped += 1
                continue
            todo.setdefault(layer, []).append((neuron, info))
    size = unit_size(kind, sum(map(len, todo.values())), workers)
    units: list[Unit] = []
    for layer, items in todo.items():
        blocks: dict[int, list[tuple[int, FileInfo | None]]] = {}
        for neuron, info in items:
            blocks.setdefault(neuron // size, []).append((neuron, info))
        for block, chosen in sorted(blocks.items()):
            units.append(Unit(kind_name, model, layer, block,
                              tuple(n for n, _ in chosen), tuple(i for _, i in chosen)))
    found = listing is None or any(listing.values())
    return Plan(kind_name, units, skipped, found)


def unit_size(kind, files: int, workers: int) -> int:
    """Neurons per unit: ``kind.UNIT_NEURONS`` (each unit writes a file per table, and files of
    that many neurons are large enough for compaction to leave alone), fewer when that would
    leave workers idle, never fewer than a piece (``kind.CHUNK``)."""
    share = -(-files // max(1, workers))  # equal shares: the run waits for the last unit
    return min(getattr(kind, "UNIT_NEURONS", kind.CHUNK), max(kind.CHUNK, share))


def _done(entry: file_log.LogEntry, info: FileInfo | None, records: file_log.LogEntry | None) -> bool:
    if entry.status == "missing":
        return False  # holes are looked for again: they have been known to turn up
    if info is not None and (info.size != entry.size or (info.version or "") != (entry.version or "")):
        return False
    if entry.status == "ok" and entry.labelled is False and records is not None and records.status == "ok":
        return False
    return True


# -- workers -------------------------------------------------------------------------------
_worker_state: dict[str, object] = {}


def _init_worker(source_url: str, warehouse_url: str) -> None:
    _worker_state["source"] = Source(source_url)
    _worker_state["warehouse"] = Warehouse(warehouse_url)


def _run_in_worker(unit: Unit) -> UnitResult:
    return run_unit(unit, _worker_state["source"], _worker_state["warehouse"])  # type: ignore[arg-type]


class Batch:
    """Units' files waiting to be committed: all at once, every ``NX_COMMIT_SECONDS``."""

    def __init__(self, warehouse: Warehouse, metadata: dict):
        self.warehouse = warehouse
        self.metadata = metadata
        self.pending: dict[str, tuple[list, list]] = {}
        self.started = time.monotonic()
        self.touched: set[str] = set()
        try:
            self.seconds = float(settings.resolve(settings.COMMIT_SECONDS))
        except ValueError:
            raise UsageError(f"{settings.COMMIT_SECONDS.env} must be a number of seconds") from None

    def add(self, result: UnitResult) -> None:
        for table, (files, replace) in result.writes.items():
            pending = self.pending.setdefault(table, ([], []))
            pending[0].extend(files)
            pending[1].append(replace)
        if time.monotonic() - self.started >= self.seconds:
            self.commit()

    def commit(self) -> None:
        # The file log last: a file logged 'ok' has its rows committed.
        tables = sorted(self.pending, key=lambda t: t == file_log.TABLE)
        for table in tables:
            files, replaces = self.pending[table]
            self.warehouse.commit(table, files, _merged(replaces), "ingest", self.metadata)
            self.touched.add(table)
        self.pending = {}
        self.started = time.monotonic()


def _merged(replaces: list) -> list:
    """One replace rule per partition, holding the keys of all the units' rules."""
    merged: dict = {}
    for rule in replaces:
        key = tuple(sorted(rule.partitions.items()))
        if key in merged:
            merged[key].keys |= rule.keys
        else:
            merged[key] = type(rule)(dict(rule.partitions), set(rule.keys))
    return list(merged.values())


def run_plans(plans: list[Plan], source: Source, warehouse: Warehouse, report: IngestReport,
              workers: int, progress: Progress, batch: Batch) -> None:
    total = sum(len(u.neurons) for p in plans for u in p.units)
    progress.start(total, "ingesting")
    for plan in plans:
        report.kinds.setdefault(plan.kind, KindCounts()).skipped += plan.skipped
    units = [u for p in plans for u in p.units]
    threads = 1 if source.location.protocol == "file" else 16

    def record(result: UnitResult) -> None:
        batch.add(result)
        report.kinds[result.kind].add(result.counts)
        for failure in result.failures:
            report.add_failure(failure)
        progress.advance(result.neurons, ok=result.counts.ok, missing=result.counts.missing,
                         malformed=result.counts.malformed)

    if workers <= 1 or len(units) <= 1:
        for unit in units:
            record(run_unit(unit, source, warehouse, threads))
        batch.commit()
        return
    # Kinds run one after another: explanations are labelled from the activation records
    # that the collated-activations units of the same run have just written.
    # fork starts workers in milliseconds with nx already imported; but adlfs and fsspec's
    # HTTP filesystem run an event-loop thread that a forked child must not inherit.
    local = source.location.protocol == "file" and warehouse.location.protocol == "file"
    context = multiprocessing.get_context("fork" if local else "spawn")
    if local:
        import simdjson  # noqa: F401  imported once here rather than in every forked worker
    with context.Pool(workers, _init_worker, (source.url, warehouse.url)) as pool:
        for plan in plans:
            results = pool.imap_unordered(_run_in_worker, plan.units)
            warm_up_commits()
            for result in results:
                record(result)
    batch.commit()


def warm_up_commits() -> None:
    """Import what committing and compacting use while the workers run: this process waits
    for them anyway, and the first commit would otherwise wait for these imports (0.06 s)."""
    import deltalake  # noqa: F401
    import deltalake.transaction  # noqa: F401
    import pyarrow.dataset  # noqa: F401  (pyarrow.parquet reads through it: compaction)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def ingest(kinds: list[str], source_url: str, warehouse: Warehouse, model: str,
           layers: list[int] | None, neurons: list[int] | None, workers: int,
           progress: Progress = NullProgress(), compact: bool = True) -> IngestReport:
    started = time.monotonic()
    source = Source(source_url)
    if source.location.protocol != "file":
        tell(progress, f"reaching {source.location.shown(source.location.path)} (giving up after "
                       f"{REACH_SECONDS} s without an answer)")
        source.reach()
    report = IngestReport(model=model, source=source_url, warehouse=warehouse.url)
    warehouse.check_writable()
    migrate.migrate(warehouse, migrate.needed(warehouse))  # an older nx's tables become Delta tables first
    plans = []
    for kind in kinds:
        if kind == "explanations" and "collated-activations" in kinds:
            # planned after the activation records are in, so that labelling is seen as done
            continue
        plans.append(plan_kind(kind, source, warehouse, model, layers, neurons, progress, workers))
    if plans and not any(p.found for p in plans) and not (layers is not None and neurons is not None):
        directories = ", ".join(f"{kind_module(k).DIRECTORY}/" for k in kinds)
        raise SourceError(f"nothing to ingest: {source_url} holds none of {directories}")
    batch = Batch(warehouse, {"source": source_url, "model": model, "kinds": kinds})
    try:
        run_plans(plans, source, warehouse, report, workers, progress, batch)
        if "explanations" in kinds and "collated-activations" in kinds:
            plan = plan_kind("explanations", source, warehouse, model, layers, neurons, progress, workers)
            run_plans([plan], source, warehouse, report, workers, progress, batch)
        if compact and batch.touched:
            progress.start(0, "compacting")
            maintenance.compact(warehouse, sorted(batch.touched), "ingest")
    finally:
        progress.finish()
        report.seconds = time.monotonic() - started
    return report


__all__ = ["ingest", "plan_kind", "default_workers", "SourceError"]
