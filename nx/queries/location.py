"""Where the query layer reads: the warehouse root and the glob of each table's files.

``nx.warehouse.Warehouse`` owns the layout and all writing, and loads pyarrow and fsspec to do
it (about 110 ms). Reading a local warehouse needs neither, so ``locate`` resolves a local
directory with os.path alone; an az:// warehouse is opened through ``Warehouse`` (its adlfs
filesystem is what DuckDB reads with). The layout read here is the one ``Warehouse`` writes:
``<root>/<table>/<key>=<value>/.../<name>.parquet``, keys in declared order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from nx import settings
from nx.errors import WarehouseError
from nx.queries.catalog import TABLES


@dataclass
class Root:
    """A warehouse root as the query layer sees it."""

    url: str
    protocol: str            # "file" or "az"
    path: str                # local absolute path, or the filesystem path (container/...) of az://
    opened: object = field(default=None, repr=False)  # the Warehouse, once needed

    @property
    def warehouse(self):
        """The full ``Warehouse`` (pyarrow, fsspec): for scans, exports and remote listing."""
        if self.opened is None:
            from nx.warehouse import Warehouse

            self.opened = Warehouse(self.url)
        return self.opened

    def url_of(self, path: str) -> str:
        return path if self.protocol == "file" else "az://" + path.lstrip("/")

    def join(self, *parts: str) -> str:
        return os.path.join(self.path, *parts) if self.protocol == "file" else "/".join([self.path, *parts])

    def table_glob(self, table: str, **partitions: object) -> str:
        """A URL DuckDB can read: the table's files, under the partition values given."""
        keys = [f"{key}={partitions.get(key, '*')}" for key, _ in TABLES[table]["partitions"]]
        return self.url_of(self.join(table, *keys, "*.parquet"))

    def glob(self, pattern: str) -> list[str]:
        """Paths matching ``pattern`` (a path under this root)."""
        if self.protocol == "file":
            import glob

            return sorted(glob.glob(pattern))
        try:
            return sorted(self.warehouse.fs.glob(pattern))
        except (FileNotFoundError, OSError):
            return []

    def read_bytes(self, path: str) -> bytes:
        if self.protocol == "file":
            with open(path, "rb") as f:
                return f.read()
        with self.warehouse.fs.open(path, "rb") as f:
            return f.read()


def locate(warehouse=None) -> Root:
    """The warehouse to read (flag > NX_WAREHOUSE > ./nx-warehouse); WarehouseError for a local
    directory that is not there."""
    if isinstance(warehouse, Root):
        return warehouse
    if isinstance(warehouse, os.PathLike):
        warehouse = os.fspath(warehouse)
    from_object = not isinstance(warehouse, (str, type(None)))  # a Warehouse
    url = warehouse.url if from_object else settings.resolve(settings.WAREHOUSE, warehouse)
    if from_object or ("://" in url and not url.startswith("file://")):
        if not from_object:
            from nx.warehouse import Warehouse

            warehouse = Warehouse(url)
        return Root(url, warehouse.location.protocol, warehouse.location.path, warehouse)
    path = os.path.abspath(os.path.expanduser(url[len("file://"):] if url.startswith("file://") else url))
    if not os.path.isdir(path):
        raise WarehouseError(f"no warehouse at {url}: give --warehouse, set NX_WAREHOUSE, or run nx ingest first")
    return Root(url, "file", path)
