"""The viewer's in-memory index: every explanation's text and scores, the neuron keys, the runs.

Search, layer statistics, the lists, run comparison and the best explanation of each
related neuron all read the ``explanations`` table, whose files number 50 per layer and
run: reading them per request costs 300-500 ms at GPT-2 XL scale. So the viewer copies the
table (every column but ``extras``; about 50 MB for 307,200 neurons), the ``(model, layer,
neuron)`` keys of ``neurons`` and the ``runs`` table into a private in-memory DuckDB
connection (``Database.install("index", ...)``), where the same SQL runs in 10-40 ms. The
SQL box never sees this connection: it reads the warehouse's views.

The copy is checked against the warehouse every ``ttl`` seconds, in the background: when a
table's Delta version changed (a new ``nx explain`` run, a re-ingest), it is rebuilt and
swapped in whole, and the views (which read the files of the version they were made at) are
refreshed. A page never waits for a check. Results
derived from the index (layer statistics) are memoized until the next swap.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

import duckdb

from nx import delta_log
from nx.queries import views
from nx.schema import TABLES as SCHEMAS
from nx.web.catalog import MODELS_SQL, Catalog, load as load_catalog
from nx.web.database import Database

INDEXED = ("explanations", "neurons", "runs")
LOAD_TIMEOUT = 900.0  # seconds: reading every explanation of an az:// warehouse can take minutes


class Index:
    """The in-memory copy, its catalogs per model, and memoized results."""

    def __init__(self, database: Database, ttl: float = 30.0):
        self.database = database
        self.ttl = ttl
        self.catalogs: dict[str, Catalog] = {}
        self.models: list[str] = []
        self._signature: frozenset | None = None
        self._checked_at = 0.0
        self._memo: dict[tuple, object] = {}
        self._checking = threading.Lock()
        self._first = asyncio.Lock()

    # -- loading -------------------------------------------------------------------------
    async def ready(self) -> None:
        """Load the index on first use; later, start a background check when it is old."""
        if self._signature is None:
            async with self._first:
                if self._signature is None:
                    await self.database.run(lambda cur: self._load(cur, self.signature()), timeout=LOAD_TIMEOUT)
            return
        if time.monotonic() - self._checked_at > self.ttl and not self._checking.locked():
            threading.Thread(target=self._check, name="nx-web-index", daemon=True).start()

    def signature(self) -> frozenset:
        """The current Delta version of every table: a commit to any of them changes it."""
        warehouse = self.database.warehouse
        return frozenset((table, delta_log.latest_version(warehouse.log(table))) for table in SCHEMAS)

    def _check(self) -> None:
        if not self._checking.acquire(blocking=False):
            return
        try:
            signature = self.signature()
            if signature != self._signature:
                self.database.refresh()
                self.database.limited(lambda cur: self._load(cur, signature), timeout=LOAD_TIMEOUT)
            self._checked_at = time.monotonic()
        except Exception:  # the old index stays; the next request tries again
            self._checked_at = time.monotonic()
        finally:
            self._checking.release()

    def _load(self, cursor: duckdb.DuckDBPyConnection, signature: frozenset) -> None:
        """Copy the tables from the views (``cursor``) into a new private connection."""
        columns = [c for c in SCHEMAS["explanations"].schema.names if c != "extras"]
        explanations = cursor.sql(f"select {', '.join(views.quote(c) for c in columns)} from explanations").to_arrow_table()
        neuron_keys = cursor.sql("select distinct model, layer, neuron from neurons").to_arrow_table()
        runs = cursor.sql("select * from runs").to_arrow_table()
        con = duckdb.connect(config={"memory_limit": self.database.memory_limit})
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
        self._signature, self._checked_at = signature, time.monotonic()

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
