"""Ingest: OpenAI's public neuron files -> Hive-partitioned Parquet tables, losslessly.

``run()`` is the one entry point (``nx ingest`` calls it). Data moves one way: source
(``source.py``) -> decode (``decode.py``) -> flatten (one module per kind, pure) -> Arrow
(``rows.py``) -> the warehouse's atomic writer, unit by unit (``unit.py``), planned and run in
parallel by ``runner.py``, logged in ``_ingest`` (``file_log.py``).
"""
from __future__ import annotations

from nx import settings
from nx.errors import UsageError
from nx.ingest.kinds import KINDS, kind_module
from nx.ingest.report import IngestReport
from nx.ingest.runner import default_workers, ingest
from nx.progress import NullProgress, Progress
from nx.ranges import parse_ranges
from nx.warehouse import Warehouse

ALL_KINDS = tuple(KINDS)


def run(kinds: list[str] | str | None = None, *, source: str | None = None, warehouse: str | Warehouse | None = None,
        model: str = settings.DEFAULT_MODEL, layers: str | list[int] | None = None,
        neurons: str | list[int] | None = None, workers: int | None = None,
        progress: Progress = NullProgress()) -> IngestReport:
    """Ingest ``kinds`` (default: all five) of ``model`` from ``source`` into ``warehouse``.

    Parameters
    ----------
    kinds: kind names (``collated-activations``, ``explanations``, ``related-neurons``,
        ``token-lookups``, ``token-weights``); None for all.
    source: the source root in the public layout (default: OpenAI's bucket for ``model``).
    layers, neurons: lists or range strings like ``"0-3,7"``; None lists the source.
    workers: processes (default: all cores); 1 runs in this process.

    Returns an IngestReport; ``report.complete`` says whether every file was ingested.
    """
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = list(ALL_KINDS) if not kinds else [kind_module(k).KIND for k in kinds]
    kinds = [k for k in ALL_KINDS if k in kinds]
    if not model or "/" in model or "=" in model:
        raise UsageError(f"bad model name {model!r}")
    source_url = settings.resolve(settings.SOURCE, source) or settings.default_source(model)
    if source_url is None:
        raise UsageError(f"model {model!r} is not a public release: give --source")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    target = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    return ingest(kinds, source_url, target, model, parse_ranges(layers, "layer"),
                  parse_ranges(neurons, "neuron"), workers, progress)


__all__ = ["run", "IngestReport", "ALL_KINDS"]
