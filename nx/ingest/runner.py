"""Planning and running an ingest: which files need work, split into units, run in parallel.

A file needs work when the log has no 'ok' or 'malformed' entry for it, when the listing
shows a different size or version than the log (a changed file), or, for explanations, when
it was ingested before the neuron's activation records were there to label its sequences.
Units run in a process pool (``workers`` > 1) or in this process (``workers`` = 1); each
unit writes its own files atomically, so an interrupted run is finished by running it again.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nx.errors import SourceError, UsageError
from nx.ingest import file_log
from nx.ingest.kinds import kind_module, relative_path
from nx.ingest.report import IngestReport, KindCounts
from nx.ingest.source import FileInfo, Missing, Source
from nx.ingest.unit import Unit, UnitResult, run_unit
from nx.progress import NullProgress, Progress
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
    can be read, in which case the neurons are enumerated instead."""
    if not source.listable:
        return None
    try:
        if layers is None:
            layers = source.list_layers(kind.DIRECTORY)
        with ThreadPoolExecutor(LISTING_THREADS) as pool:
            listings = list(pool.map(lambda layer: source.list_neurons(kind.DIRECTORY, layer, kind.SUFFIX), layers))
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
              progress: Progress = NullProgress()) -> Plan:
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
        # is a hole (a missing file), which is logged rather than silently passed over.
        largest = max((max(found) for found in listing.values() if found), default=-1)
        expected = neurons if neurons is not None else range(largest + 1)
        wanted = {layer: {n: found.get(n) for n in expected} for layer, found in listing.items()}
    log = file_log.read_log(warehouse, model, kind_name)
    records_log = (file_log.read_log(warehouse, model, "collated-activations")
                   if kind_name == "explanations" else {})
    units: list[Unit] = []
    skipped = 0
    for layer in sorted(wanted):
        chunks: dict[int, list[tuple[int, FileInfo | None]]] = {}
        for neuron, info in sorted(wanted[layer].items()):
            entry = log.get((layer, neuron))
            if entry and _done(entry, info, records_log.get((layer, neuron))):
                skipped += 1
                continue
            chunks.setdefault(neuron // kind.CHUNK, []).append((neuron, info))
        for chunk, items in sorted(chunks.items()):
            units.append(Unit(kind_name, model, layer, chunk,
                              tuple(n for n, _ in items), tuple(i for _, i in items)))
    found = listing is None or any(listing.values())
    return Plan(kind_name, units, skipped, found)


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


def run_plans(plans: list[Plan], source: Source, warehouse: Warehouse, report: IngestReport,
              workers: int, progress: Progress) -> None:
    total = sum(len(u.neurons) for p in plans for u in p.units)
    progress.start(total, "ingesting")
    for plan in plans:
        report.kinds.setdefault(plan.kind, KindCounts()).skipped += plan.skipped
    units = [u for p in plans for u in p.units]
    threads = 1 if source.location.protocol == "file" else 16

    def record(result: UnitResult) -> None:
        report.kinds[result.kind].add(result.counts)
        for failure in result.failures:
            report.add_failure(failure)
        progress.advance(result.neurons, ok=result.counts.ok, missing=result.counts.missing,
                         malformed=result.counts.malformed)

    if workers <= 1 or len(units) <= 1:
        for unit in units:
            record(run_unit(unit, source, warehouse, threads))
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
            for result in pool.imap_unordered(_run_in_worker, plan.units):
                record(result)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def ingest(kinds: list[str], source_url: str, warehouse: Warehouse, model: str,
           layers: list[int] | None, neurons: list[int] | None, workers: int,
           progress: Progress = NullProgress()) -> IngestReport:
    started = time.monotonic()
    source = Source(source_url)
    report = IngestReport(model=model, source=source_url, warehouse=warehouse.url)
    warehouse.check_writable()
    plans = []
    for kind in kinds:
        if kind == "explanations" and "collated-activations" in kinds:
            # planned after the activation records are in, so that labelling is seen as done
            continue
        plans.append(plan_kind(kind, source, warehouse, model, layers, neurons, progress))
    if plans and not any(p.found for p in plans) and not (layers is not None and neurons is not None):
        directories = ", ".join(f"{kind_module(k).DIRECTORY}/" for k in kinds)
        raise SourceError(f"nothing to ingest: {source_url} holds none of {directories}")
    try:
        run_plans(plans, source, warehouse, report, workers, progress)
        if "explanations" in kinds and "collated-activations" in kinds:
            plan = plan_kind("explanations", source, warehouse, model, layers, neurons, progress)
            run_plans([plan], source, warehouse, report, workers, progress)
    finally:
        progress.finish()
        report.seconds = time.monotonic() - started
    return report


__all__ = ["ingest", "plan_kind", "default_workers", "SourceError"]
