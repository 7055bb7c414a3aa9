"""The viewer's one door to DuckDB: shared read-only views, a bounded pool, a time limit.

A ``Database`` holds one in-memory DuckDB connection per warehouse with every view of
``nx.queries.views`` on it, locked by ``nx.queries.readonly.lock`` (no file outside the
warehouse, configuration frozen) before any request runs. Work runs in lanes of
worker threads, each thread with its own cursor of that connection (``con.cursor()``: same
views, own query state), so a request never opens a connection. The ``pages`` lane (neuron
pages, search, home: ``workers`` threads) and the ``sql`` lane (the SQL box's statements:
``sql_workers`` threads, at most ``sql_waiting`` more waiting, then ``Busy`` at once) never
wait for each other, so slow statements delay only their own clients. A request waits for a
slot of its lane, and gives up with ``Busy`` after ``queue_timeout``.

A query that runs past ``timeout`` seconds is interrupted (``cursor.interrupt()``) and the
request gets ``QueryTimeout``: the worker is free again at once, so the server keeps
answering. User SQL goes through ``readonly.check_statement`` like ``nx sql``.

Besides the views, the database holds named private connections (``install``): the
viewer's in-memory index of explanations (``index.py``) lives in one, out of reach of the
SQL box. Views read the files of the tables' versions they were made at; ``refresh()``
makes them anew (the index calls it when a version moved).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

import duckdb

from nx.errors import NxError, QueryError, WarehouseError
from nx.queries import readonly, sandbox, views
from nx.warehouse import Warehouse

T = TypeVar("T")


class QueryTimeout(NxError):
    """A query ran past the viewer's time limit and was stopped."""


class Busy(NxError):
    """Every worker of a lane stayed busy for longer than the queue timeout, or its queue is full."""


class TooLarge(NxError):
    """A result holds more than the viewer sends in one answer."""


def default_memory_limit() -> str:
    """A quarter of the machine's memory: queries fail with DuckDB's message before the server starves."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "2GB"
    return f"{max(total // 4 // 2**20, 256)}MB"


class Lane:
    """Threads for one kind of work: ``workers`` run at once, at most ``waiting`` more wait
    (``None``: any number), each at most ``queue_timeout`` seconds."""

    def __init__(self, name: str, workers: int, queue_timeout: float, waiting: int | None, what: str):
        self.workers, self.queue_timeout, self.waiting, self.what = workers, queue_timeout, waiting, what
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"nx-web-{name}")
        self._slots = asyncio.Semaphore(workers)
        self._queued = 0

    @contextlib.asynccontextmanager
    async def slot(self):
        if self.waiting is not None and self._slots.locked() and self._queued >= self.waiting:
            raise Busy(f"the viewer is busy ({self.workers} {self.what} running and {self._queued} waiting): "
                       "try again in a moment")
        self._queued += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_timeout)
        except asyncio.TimeoutError:
            raise Busy(f"the viewer is busy ({self.workers} {self.what} running for over "
                       f"{self.queue_timeout:g} s): try again in a moment") from None
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._slots.release()


class Database:
    """Shared views of one warehouse, the viewer's in-memory index, and the pool that runs
    queries on them."""

    def __init__(self, warehouse: Warehouse, *, workers: int = 4, timeout: float = 10.0,
                 queue_timeout: float = 30.0, memory_limit: str | None = None, sql_workers: int = 2,
                 sql_waiting: int = 8):
        self.warehouse = warehouse
        self.timeout = timeout
        self.queue_timeout = queue_timeout
        self.workers = workers
        self.memory_limit = memory_limit or default_memory_limit()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._generation = 0
        self._connections: dict[str, duckdb.DuckDBPyConnection] = {"views": self._connect(union_by_name=False)}
        self._lanes = {"pages": Lane("db", workers, queue_timeout, None, "queries"),
                       "sql": Lane("sql", sql_workers, queue_timeout, sql_waiting, "SQL statements")}
        # One helper per worker, for a request that splits its reads in two (the neuron page).
        self._side = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nx-web-side")

    def _connect(self, union_by_name: bool) -> duckdb.DuckDBPyConnection:
        """Every view, locked (``readonly.lock``), spilling to nx's private directory. It is
        made in a confined thread (``sandbox.confined``), so DuckDB's worker threads, which it
        starts, cannot write files. A table that cannot be read (a committed file that is not
        Parquet, or not the table's) becomes a view failing with that one line whenever it is
        read: the viewer starts, and only the pages that need that table show the error."""

        def build() -> duckdb.DuckDBPyConnection:
            con = duckdb.connect(config={"memory_limit": self.memory_limit, **sandbox.spill_config()})
            readonly.connect_filesystem(con, self.warehouse)
            # The views' SQL, failed attempts included: a spoiled table's files stay readable,
            # so a neuron page reading them directly says what is wrong with them.
            made = readonly.Recording(con)
            for name, declared in views.TABLES.items():
                try:
                    views.register_views(made, self.warehouse, {name}, union_by_name=union_by_name)
                except WarehouseError as exc:
                    # Columns computed from error(...) and a filter on it: no query of the view
                    # (count(*), a filter on a partition key) can answer without raising it.
                    columns = ", ".join(f"cast(e as {kind}) as {views.quote(column)}"
                                        for column, kind in declared["partitions"] + declared["columns"])
                    con.execute(f"create or replace view {views.quote(name)} as select {columns} "
                                f"from (select error({views.literal(str(exc))}) as e) where e is null")
            for name, (_, sql, _) in views.DERIVED.items():
                con.execute(f"create or replace view {views.quote(name)} as {sql}")
            readonly.lock(con, self.warehouse, views_sql=made.executed)
            return con

        return sandbox.confined(build)

    def install(self, name: str, con: duckdb.DuckDBPyConnection) -> None:
        """Make ``con`` the connection called ``name`` (the index, rebuilt); threads switch
        to it at their next query, and queries running on the old one finish on it."""
        with self._lock:
            self._connections[name] = con
            self._generation += 1

    def refresh(self) -> None:
        """Fresh views, over the tables' current versions."""
        self.install("views", self._connect(union_by_name=False))
        with self._lock:
            self._connections.pop("union", None)

    def side(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> Future:
        """``work(cursor)`` in a helper thread, for part of a request already holding a slot."""
        return self._side.submit(lambda: work(self.cursor()))

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.pool.shutdown(wait=False, cancel_futures=True)
        self._side.shutdown(wait=False, cancel_futures=True)
        for con in list(self._connections.values()):
            con.close()

    # -- running -------------------------------------------------------------------------
    def cursor(self, name: str = "views") -> duckdb.DuckDBPyConnection:
        """This worker thread's cursor on connection ``name`` (made on first use)."""
        local = self._local.__dict__
        if local.get("generation") != self._generation:
            local.clear()
            local["generation"] = self._generation
        if name not in local:
            with self._lock:
                if name == "union" and "union" not in self._connections:
                    self._connections["union"] = self._connect(union_by_name=True)
                if name not in self._connections:
                    raise QueryError(f"the viewer's {name} is not ready yet")
                local[name] = self._connections[name].cursor()
        return local[name]

    def limited(self, work: Callable[[duckdb.DuckDBPyConnection], T], on: str = "views",
                timeout: float | None = None) -> T:
        """Run ``work(cursor)`` in this thread under the time limit (call it from a worker);
        ``timeout`` replaces the viewer's limit (the index load is not a user's query).

        Retries once on views that read files by name when the files' schemas disagree."""
        try:
            return self._limited(work, self.cursor(on), timeout or self.timeout)
        except QueryError as exc:
            if on != "views" or "schema mismatch" not in str(exc):
                raise
            return self._limited(work, self.cursor("union"), timeout or self.timeout)

    def _limited(self, work: Callable[[duckdb.DuckDBPyConnection], T], cursor, timeout: float) -> T:
        stopped = threading.Event()

        def stop() -> None:
            stopped.set()
            cursor.interrupt()

        timer = threading.Timer(timeout, stop)
        timer.daemon = True
        timer.start()
        try:
            return work(cursor)
        except Exception as exc:
            # Read through Arrow's stream (downloads), DuckDB's interrupt arrives as an OSError.
            if stopped.is_set() or isinstance(exc, duckdb.InterruptException):
                raise QueryTimeout(f"the query was stopped after {timeout:g} s, the viewer's time limit: narrow it "
                                   "(filter on layer or neuron, add a LIMIT) or run it with nx sql") from exc
            if isinstance(exc, duckdb.Error):
                raise QueryError(readonly.message_of(exc)) from exc
            raise
        finally:
            timer.cancel()

    async def run(self, work: Callable[..., T], *args, on: str = "views", timeout: float | None = None,
                  lane: str = "pages") -> T:
        """``work(cursor, *args)`` in a worker thread of ``lane`` (``pages`` or ``sql``), on
        connection ``on``, once a slot is free, under the time limit (or ``timeout``)."""
        chosen = self._lanes[lane]
        async with chosen.slot():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(chosen.pool,
                                              lambda: self.limited(lambda cur: work(cur, *args), on, timeout))

    # -- user SQL ------------------------------------------------------------------------
    @staticmethod
    def relation(cursor: duckdb.DuckDBPyConnection, text: str, params: dict | None = None):
        """The relation of one read-only statement (QueryError for anything that could write)."""
        statement = readonly.check_statement(cursor, text)
        relation = cursor.sql(statement, params=params or None)
        if relation is None:
            raise QueryError("the statement returned no rows")
        return relation
