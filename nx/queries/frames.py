"""``nx.scan(table)``: a polars LazyFrame over one table, for analysis scripts.

Columns and types are the declared ones (partition keys first, typed by ``hive_schema``, so
``run=2024-01-01`` stays a string), and a filter on a partition key reads only the matching
files. The files are those of the table's current Delta version, from its log (never a glob).
Local warehouses are scanned by polars itself; az:// ones through a pyarrow dataset over the
warehouse's fsspec filesystem (polars does not know the az://ACCOUNT/... spelling nor the
credentials nx resolves), which prunes partitions as well. A table with no files is an empty
frame with the declared schema. (``pl.scan_delta(<warehouse>/<table>)`` reads the same table.)

The derived views (``activations``, ``best_explanations``, ``neuron_summary``) are DuckDB's
(``views.py``): one is scanned as a DuckDB relation handed to polars lazily, so a filter or a
column choice reaches DuckDB, which prunes partitions as ``nx sql`` does, and rows are made only
when the frame is collected. The SQL of each view is declared once, there.

polars is imported here only: ``nx sql`` never pays for it.
"""
from __future__ import annotations

import polars as pl

from nx.schema import TABLES
from nx.warehouse import Warehouse


def scan(table: str, warehouse=None) -> pl.LazyFrame:
    """A LazyFrame over ``table``.

    >>> import polars as pl
    >>> (nx.scan("explanations").filter(pl.col("layer") == 5)
    ...    .sort("score", descending=True).head(10).collect())
    """
    from nx.errors import UsageError
    from nx.queries.location import locate
    from nx.queries.views import DERIVED

    if table in DERIVED:
        return _derived(table, locate(warehouse))
    if table not in TABLES:
        raise UsageError(f"unknown table {table!r}; tables: {', '.join(TABLES)}; views: {', '.join(DERIVED)}")
    root = locate(warehouse)
    spec = TABLES[table]
    empty = pl.from_arrow(spec.schema.empty_table())
    files = root.file_urls(table)
    if not files:
        return empty.lazy()
    if root.protocol == "file":
        frame = pl.scan_parquet(files, hive_partitioning=True,
                                hive_schema={f.name: empty.schema[f.name] for f in spec.partitions})
    else:
        frame = pl.scan_pyarrow_dataset(_dataset(root.warehouse, table))
    return frame.select(spec.schema.names)


def _derived(name: str, root) -> pl.LazyFrame:
    """A derived view as a lazy frame over a DuckDB relation; the connection lives as long as it."""
    import duckdb

    from nx.queries import sandbox, views

    con = duckdb.connect(config=sandbox.spill_config())  # spills, if it must, to nx's private directory, not ./.tmp
    views.connect_filesystem(con, root)
    views.register_views(con, root, {name})
    return con.sql(f"select * from {views.quote(name)}").pl(lazy=True)


def _dataset(location: Warehouse, table: str):
    import pyarrow as pa
    import pyarrow.dataset as ds

    spec = TABLES[table]
    files = [f"{location.table_path(table)}/{f.path}" for f in location.files(table)]
    partitioning = ds.partitioning(pa.schema(list(spec.partitions)), flavor="hive")
    return ds.dataset(files, filesystem=location.fs, format="parquet", partitioning=partitioning,
                      partition_base_dir=location.table_path(table), schema=spec.schema)

