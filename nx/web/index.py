"""The viewer's in-memory index: every explanation's text and scores, the neuron keys, the runs.

Search, layer statistics, the lists, run comparison and the best explanation of each
related neuron all read the ``explanations`` table, whose files number 50 per layer and
run: reading them per request costs 300-500 ms at GPT-2 XL scale. So the viewer copies the
table (every column but ``extras``; about 50 MB for 307,200 neurons), the ``(model, layer,
neuron)`` keys of ``neurons`` and the ``runs`` table into a private in-memory DuckDB
connection (``Database.install("index", ...)``), where the same SQL runs in 10-40 ms. The
SQL box never sees this connection: it reads the warehouse's views.

Pages show the warehouse as it is: before each request (``respond.answers``) the viewer
reads every table's current Delta version (``Versions``: on a local disk one ``stat`` of each
table's log directory, and a listing when it changed; on az:// a listing per table, at most
every ``ttl`` seconds, 5 by default). When a version moved (an ``nx explain`` batch, a
re-ingest), the views (which read the files of the version they were made at) are made anew,
and the copy too if ``explanations``, ``neurons`` or ``runs`` moved, before the request goes
on; requests arriving meanwhile wait for the same rebuild. So a new run shows up on every page
at once. Results derived from the index (layer statistics) are memoized until the next rebuild.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import duckdb

from nx import delta_log
from nx.queries import sandbox, views
from nx.schema import TABLES as SCHEMAS
from nx.web.catalog import MODELS_SQL, Catalog, load as load_catalog
from nx.web.database import Database

INDEXED = ("explanations", "neurons", "runs")
LOAD_TIMEOUT = 900.0  # seconds: reading every explanation of an az:// warehouse can take minutes
REMOTE_TTL = 5.0  # seconds between readings of an az:// warehouse's versions (each a request per table)
log = logging.getLogger("nx.web")


class Versions:
    """The current Delta version of every table.

    A local log directory is listed only when its modification time changed since the last
    listing; that listing is trusted only when it started ``SETTLED`` seconds after the
    change, as a commit within the same tick of the file system's clock would leave the time
    as it was. An az:// warehouse's logs are listed in parallel (each is a request)."""

    SETTLED = 1.0

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self.local = warehouse.location.protocol == "file"
        self._seen: dict[str, tuple[int, int | None]] = {}  # table -> (log mtime_ns, version)

    def current(self) -> dict[str, int | None]:
        if self.local:
            return {table: self._local(table) for table in SCHEMAS}
        with ThreadPoolExecutor(len(SCHEMAS), thread_name_prefix="nx-web-versions") as pool:
            return dict(zip(SCHEMAS, pool.map(lambda t: delta_log.latest_version(self.warehouse.log(t)), SCHEMAS)))

    def _local(self, table: str) -> int | None:
        log = self.warehouse.log(table)
        try:
            changed = os.stat(log.log_path).st_mtime_ns
        except FileNotFoundError:
            return None
        seen = self._seen.get(table)
        if seen is not None and seen[0] == changed:
            return seen[1]
        listed_at = time.time_ns()
        version = delta_log.latest_version(log)
        if listed_at - changed > self.SETTLED * 1e9:
            self._seen[table] = (changed, version)
        else:
            self._seen.pop(table, None)
        return version


class Index:
    """The in-memory copy, its catalogs per model, and memoized results."""

    def __init__(self, database: Database, ttl: float | None = None):
        self.database = database
        self.watch = Versions(database.warehouse)
        # Seconds a reading of the versions holds: none locally (a stat per table), a few on az://.
        self.ttl = ttl if ttl is not None else (0.0 if self.watch.local else REMOTE_TTL)
        self.catalogs: dict[str, Catalog] = {}
        self.models: list[str] = []
        self.versions: dict[str, int | None] | None = None
        self._checked_at = 0.0
        self._memo: dict[tuple, object] = {}
        self._lock = asyncio.Lock()

    # -- loading -------------------------------------------------------------------------
    async def ready(self) -> None:
        """Bring the views and the index up to the warehouse's current versions (loading
        the index on first use); a no-op within ``ttl`` of the last check."""
        if self.versions is not None and time.monotonic() - self._checked_at < self.ttl:
            return
        async with self._lock:  # one check at a time: the others wait and find it done
            if self.versions is not None and time.monotonic() - self._checked_at < self.ttl:
                return
            checked_at = time.monotonic()
            versions = self.watch.current() if self.watch.local else await asyncio.to_thread(self.watch.current)
            if versions != self.versions:
                await self._rebuild(versions)
            self._checked_at = checked_at

    async def _rebuild(self, versions: dict[str, int | None]) -> None:
        first = self.versions is None
        try:
            # Versions are read before the views are made: they hold at least these.
            await asyncio.to_thread(self.database.refresh)
            if first or any(versions[t] != self.versions[t] for t in INDEXED):
                await self.database.run(self._load, timeout=LOAD_TIMEOUT)
        except Exception:
            if first:
                raise
            # The old index stays, and the next request tries again.
            log.warning("could not refresh the viewer's index", exc_info=True)
            return
        self.versions = versions

    def _load(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Copy the tables from the views (``cursor``) into a new private connection."""
        columns = [c for c in SCHEMAS["explanations"].schema.names if c != "extras"]
        explanations = cursor.sql(f"select {', '.join(views.quote(c) for c in columns)} from explanations").to_arrow_table()
        neuron_keys = cursor.sql("select distinct model, layer, neuron from neurons").to_arrow_table()
        runs = cursor.sql("select * from runs").to_arrow_table()
        # A private spill directory: DuckDB lets a connection without external access read its
        # temp_directory, and the default ./.tmp may be a symlink to anywhere (user named queries run here).
        con = duckdb.connect(config={"memory_limit": self.database.memory_limit, **sandbox.spill_config()})
        for name, table in (("explanations", explanations), ("neuron_keys", neuron_keys), ("runs", runs)):
            con.register(f"_{name}_arrow", table)
            con.execute(f"create table {name} as select * from _{name}_arrow")
            con.unregister(f"_{name}_arrow")
        # A table, not the view: its window over every explanation would run at each lookup.
        con.execute(f"create table best_explanations as {views.BEST_EXPLANATIONS_SQL}")
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
        models = [r[0] for r in con.sql(MODELS_SQL).fetchall()]
        catalogs = {model: load_catalog(con, model) for model in models}
        self.database.install("index", con)
        self.models, self.catalogs, self._memo = models, catalogs, {}

    # -- reading -------------------------------------------------------------------------
    async def catalog(self, model: str) -> Catalog | None:
        await self.ready()
        return self.catalogs.get(model)

    async def run(self, work: Callable[..., object], *args):
        """``work(cursor, *args)`` on the index connection, in the pool, under the time limit."""
        await self.ready()
        return await self.database.run(work, *args, on="index")

    async def memo(self, key: tuple, work: Callable[..., object], *args):
        """``run(work, *args)``, computed once per index version."""
        await self.ready()
        if key not in self._memo:
            self._memo[key] = await self.database.run(work, *args, on="index")
        return self._memo[key]
