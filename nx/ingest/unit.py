"""One unit of work: the files of one kind, layer and block of neurons, fetched, decoded,
flattened, converted to Arrow and written as new Parquet files (one per table), with their
file-log rows. A unit goes through its files a piece (``kind.CHUNK`` files) at a time, each
piece's rows appended to the unit's files, so memory holds one piece however large the unit.

A unit commits nothing: it hands its files back (``UnitResult.writes``) with the rows they
replace, and the runner commits many units at once. Rows of re-ingested neurons replace their
old rows; a file that fails to fetch or parse replaces nothing (its neuron keeps whatever
rows it had) and is logged with its reason.
"""
from __future__ import annotations

import datetime as dt
import gc
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from nx.ingest import file_log
from nx.ingest.decode import MalformedFile, decode
from nx.ingest.kinds import kind_module, relative_path, table_partitions
from nx.ingest.report import Failure, KindCounts
from nx.ingest.rows import Rows
from nx.ingest.source import FileInfo, Missing, Source
from nx.schema import TABLES
from nx.warehouse import NewFile, Replace, Warehouse

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError)


@dataclass(frozen=True)
class Unit:
    kind: str
    model: str
    layer: int
    chunk: int
    neurons: tuple[int, ...]
    infos: tuple[FileInfo | None, ...]  # from the listing, parallel to neurons


@dataclass
class UnitResult:
    kind: str
    neurons: int
    counts: KindCounts
    failures: list[Failure] = field(default_factory=list)
    # table -> (files written, not yet committed; the rows they replace)
    writes: dict[str, tuple[list[NewFile], Replace]] = field(default_factory=dict)


@dataclass
class UnitContext:
    """What a kind's ``derive`` may read besides its own rows."""

    warehouse: Warehouse
    model: str
    layer: int
    neurons: tuple[int, ...] = ()
    cache: dict = field(default_factory=dict)  # what derive read, for the log to reuse


@dataclass
class _File:
    neuron: int
    path: str
    info: FileInfo | None
    status: str = "ok"
    error: str | None = None
    note: str | None = None
    rows: Rows | None = None
    skeleton: str | None = None
    count: int | None = None  # rows in the kind's main table (read well)
    labelled: bool | None = None


def _flatten_all(kind, unit: Unit, source: Source, threads: int) -> list[_File]:
    files = [_File(n, relative_path(kind, unit.layer, n), info) for n, info in zip(unit.neurons, unit.infos)]
    fetched = source.fetch([f.path for f in files], threads=threads)
    for f in files:
        data = fetched[f.path]
        if isinstance(data, Missing):
            f.status, f.error = "missing", str(data)
            continue
        if f.info is None:
            f.info = FileInfo(len(data), "")
        try:
            fast = kind.flatten_bytes(data, unit.layer, f.neuron) if hasattr(kind, "flatten_bytes") else None
            if fast is not None:
                f.rows, skeleton = fast
            else:
                obj, f.note = decode(data)
                f.rows, skeleton = kind.flatten(obj, unit.layer, f.neuron)
            f.skeleton = _json(skeleton)
        except MalformedFile as exc:
            f.status, f.error = "malformed", str(exc)
    return files


def _json(value: dict | None) -> str | None:
    import json

    return json.dumps(value, ensure_ascii=False) if value else None


def _to_arrow(kind, files: list[_File]) -> dict[str, pa.Table]:
    """Arrow tables of all good files; a file whose values have the wrong type is marked
    malformed (found by converting file by file only when the whole unit fails)."""
    good = [f for f in files if f.status == "ok"]
    try:
        return _convert(kind, good)
    except _ARROW_ERRORS:
        pass
    for f in good:
        try:
            _convert(kind, [f])
        except _ARROW_ERRORS as exc:
            f.status, f.error, f.rows = "malformed", f"wrong type: {' '.join(str(exc).split())[:200]}", None
    return _convert(kind, [f for f in files if f.status == "ok"])


def _convert(kind, files: list[_File]) -> dict[str, pa.Table]:
    merged = Rows(kind.TABLES)
    for f in files:
        merged.extend(f.rows)
    return {t: merged.to_arrow(t, kind.DERIVED.get(t, ())) for t in kind.TABLES}


def run_unit(unit: Unit, source: Source, warehouse: Warehouse, threads: int = 1) -> UnitResult:
    kind = kind_module(unit.kind)
    # a file per table for the whole unit: large units leave large files, which compaction
    # need not rewrite
    writers = {table: warehouse.open_file(table, table_partitions(table, unit.model, unit.layer))
               for table in kind.TABLES}
    files: list[_File] = []
    rows = dict.fromkeys(kind.TABLES, 0)
    for start in range(0, len(unit.neurons), kind.CHUNK):
        piece = replace(unit, neurons=unit.neurons[start:start + kind.CHUNK],
                        infos=unit.infos[start:start + kind.CHUNK])
        gc_was_enabled = gc.isenabled()
        gc.disable()  # parsed JSON is many small objects that live until converted: nothing to collect
        try:
            piece_files = _flatten_all(kind, piece, source, threads)
            tables = _to_arrow(kind, piece_files)
        finally:
            if gc_was_enabled:
                gc.enable()
        context = UnitContext(warehouse, unit.model, unit.layer, piece.neurons)
        if hasattr(kind, "derive"):  # kinds with derived columns (sequence_id, scores, maxima)
            tables = kind.derive(tables, context)
        for table, data in tables.items():
            writers[table].write(data)
            rows[table] += len(data)
        main_rows = _rows_per_neuron(tables[kind.MAIN_TABLE])
        labelled = getattr(kind, "labelled", lambda ctx: None)(context)
        for f in piece_files:
            f.rows = None  # converted and written: let the parsed values go
            if f.status == "ok":
                f.count = main_rows.get(f.neuron, 0)
                f.labelled = labelled(f.neuron) if labelled else None
        files += piece_files
    ok = {f.neuron for f in files if f.status == "ok"}
    counts = KindCounts()
    writes = {}
    for table, writer in writers.items():
        written = writer.close()
        if ok:  # the rows of the neurons read well are replaced, even by none
            writes[table] = ([written] if written else [],
                             _replace(table, table_partitions(table, unit.model, unit.layer), unit.layer, ok))
            counts.rows[table] = rows[table]
    now = dt.datetime.now(dt.timezone.utc)
    log = pa.table({
        "layer": [unit.layer] * len(files),
        "neuron": [f.neuron for f in files],
        "path": [f.path for f in files],
        "size": [f.info.size if f.info else None for f in files],
        "version": [f.info.version if f.info else None for f in files],
        "status": [f.status for f in files],
        "error": [f.error for f in files],
        "note": [f.note for f in files],
        "labelled": [f.labelled for f in files],
        "rows": [f.count for f in files],
        "skeleton": [f.skeleton for f in files],
        "ingested_at": [now] * len(files),
    }, schema=TABLES[file_log.TABLE].columns)
    partition = file_log.partition(unit.model, unit.kind, unit.layer)
    writes[file_log.TABLE] = (warehouse.write_files(file_log.TABLE, partition, log),
                              _replace(file_log.TABLE, partition, unit.layer, {f.neuron for f in files}))
    failures = []
    for f in files:
        if f.status == "ok":
            counts.ok += 1
        else:
            setattr(counts, f.status, getattr(counts, f.status) + 1)
            failures.append(Failure(unit.kind, f.path, f.status, f.error or ""))
    return UnitResult(unit.kind, len(files), counts, failures, writes)


def _replace(table: str, values: dict, layer: int, replaced: set[int]) -> Replace:
    """The rows new files replace: every row of the neurons ``replaced`` (those read well),
    in the partitions the values name."""
    spec = TABLES[table]
    outer = {k: str(v) for k, v in values.items() if k in spec.partition_names and k != "layer"}
    return Replace(outer, {(layer, n) for n in replaced})


def _rows_per_neuron(table: pa.Table) -> dict[int, int]:
    if len(table) == 0:
        return {}
    neurons, counts = np.unique(table.column("neuron").to_numpy(), return_counts=True)
    return dict(zip(neurons.tolist(), counts.tolist()))
