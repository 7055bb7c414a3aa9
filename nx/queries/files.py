"""Which Parquet files of a partition hold given neurons, without opening all of them.

A layer partition holds about 50 files at GPT-2 XL scale, and a neuron's related neurons are
spread over up to 47 layers: asking DuckDB to filter a whole partition reads every footer
(about 0.1 ms each), which alone would cost a neuron card a few hundred milliseconds.

Ingest writes one file per chunk of consecutive neurons (``part-<chunk>``, rows sorted by
neuron), so in those partitions the file names sort like their neuron ranges, and a binary
search over the files' footer statistics finds a neuron's file in log2(files) reads. Partitions
of ``nx explain`` runs (files named by time, neurons in any order) are read whole; so is any
partition whose footers have no statistics. Footer ranges of local files are cached for the
life of the process, keyed by path, size and modification time.
"""
from __future__ import annotations

import os

from nx.queries.location import Root

_RANGES: dict[tuple[str, int, int], tuple[int, int] | None] = {}


def neuron_range(root: Root, path: str) -> tuple[int, int] | None:
    """The smallest and largest ``neuron`` in a file, from its footer; None without statistics."""
    key = None
    if root.protocol == "file":
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key in _RANGES:
            return _RANGES[key]
    import pyarrow.parquet as pq  # footers only: nx sql never comes here

    if root.protocol == "file":
        metadata = pq.read_metadata(path)
    else:
        with root.warehouse.fs.open(path, "rb") as f:
            metadata = pq.read_metadata(f)
    found = _range_of(metadata)
    if key is not None:
        _RANGES[key] = found
    return found


def _range_of(metadata) -> tuple[int, int] | None:
    column = metadata.schema.names.index("neuron") if "neuron" in metadata.schema.names else None
    if column is None or metadata.num_row_groups == 0:
        return None
    lows, highs = [], []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max:
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    return min(lows), max(highs)


def files_holding(root: Root, files: list[str], neurons: set[int], chunked: bool) -> list[str]:
    """The files (of one partition, sorted by name) that may hold any of ``neurons``."""
    if not chunked or len(files) <= 2:
        return files
    chosen: set[str] = set()
    for neuron in neurons:
        low, high = 0, len(files) - 1
        while low <= high:
            middle = (low + high) // 2
            found = neuron_range(root, files[middle])
            if found is None:
                return files
            if neuron < found[0]:
                high = middle - 1
            elif neuron > found[1]:
                low = middle + 1
            else:
                chosen.add(files[middle])
                break
    return [f for f in files if f in chosen]
