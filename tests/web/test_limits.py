"""What the viewer refuses: writes and reads outside the warehouse from the SQL box, bad URL
parameters; and how it holds up: a query time limit, many concurrent loads."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import markupsafe
import pytest


@pytest.mark.parametrize("statement, says", [
    ("copy (select 1 as x) to '{warehouse}/evil.csv'", "not COPY"),
    ("copy explanations to '/tmp/nx-web-evil.parquet'", "not COPY"),
    ("attach '/tmp/nx-web-evil.duckdb' as evil", "not ATTACH"),
    ("install httpfs", "not INSTALL"),
    ("load httpfs", "not LOAD"),
    ("create table evil as select 1", "not CREATE"),
    ("insert into explanations select * from explanations", "not INSERT"),
    ("set enable_external_access = true", "not SET"),
    ("pragma enable_profiling", "only SELECT"),
    ("explain analyze copy (select 1) to '/tmp/nx-web-evil.csv'", "only SELECT"),
    ("select 1; select 2", "one statement at a time"),
    ("select * from read_csv('/etc/passwd')", "Cannot access file"),
    ("select * from read_text('{warehouse}/../../../etc/passwd')", "Cannot access file"),
    ("select * from glob('/etc/*')", "Cannot access file"),
])
def test_the_sql_box_cannot_write_or_read_outside_the_warehouse(client, sample_warehouse, statement, says):
    text = statement.format(warehouse=sample_warehouse)
    answer = client.get("/sql.json", params={"q": text})
    assert answer.status_code == 400 and says.lower() in answer.json()["error"].lower()
    download = client.get("/sql.csv", params={"q": text})  # a download link shows the error page
    assert download.status_code == 400 and says.lower() in download.text.lower()
    page = client.post("/sql", data={"q": text})
    assert page.status_code == 400 and "Traceback" not in page.text
    assert not os.path.exists(f"{sample_warehouse}/evil.csv") and not os.path.exists("/tmp/nx-web-evil.csv")
    assert not os.path.exists("/tmp/nx-web-evil.duckdb") and not os.path.exists("/tmp/nx-web-evil.parquet")


@pytest.mark.parametrize("url, status, says", [
    ("/neuron/99/0", 404, "layer 99 of model gpt2-xl is not in the warehouse (layers 0-2)"),
    ("/neuron/0/6", 404, "neuron 6 is not in layer 0"),
    ("/neuron/0/-1", 400, "neuron must be at least 0"),
    ("/neuron/abc/0", 400, "layer must be a whole number, not 'abc'"),
    ("/neuron/0/1?model=gpt2-nope", 404, "model 'gpt2-nope' is not in the warehouse"),
    ("/search?layer_min=x", 400, "layer_min must be a whole number"),
    ("/search?layer_min=2&layer_max=1", 400, "layer_min (2) is above layer_max (1)"),
    ("/search?min_score=nan", 400, "min_score must be a finite number"),
    ("/search?page_size=100000", 400, "page_size must be at most 1000"),
    ("/search?page=0", 400, "page must be at least 1"),
    ("/search?q=" + "x" * 600, 400, "q is too long"),
    ("/search?run=nope", 404, "run 'nope' is not in the warehouse"),
    ("/compare?b=nope", 404, "run 'nope' is not in the warehouse"),
    ("/sql?q=select+1&page_size=5000", 400, "page_size must be at most 1000"),
    ("/queries/top-explained?min_score=high", 400, "must be float, not 'high'"),
    ("/queries/top-explained?colour=red", 400, "has no parameter 'colour'"),
    ("/queries/nope", 404, "no named query 'nope'"),
    ("/nowhere", 404, "no page at /nowhere"),
])
def test_bad_parameters_get_a_clear_4xx(client, url, status, says):
    answer = client.get(url)
    assert answer.status_code == status
    assert "Traceback" not in answer.text and str(markupsafe.escape(says)) in answer.text
    twin = client.get("/api" + url if not url.startswith("/nowhere") else url + ".json")
    assert twin.status_code == status and says in twin.json()["error"]


@pytest.fixture(scope="module")
def patient_server(sample_warehouse):
    """A server whose time limit is long enough that a busy machine never reaches it by accident."""
    from web_helpers import RunningServer

    with RunningServer(sample_warehouse, query_timeout=8.0, workers=3) as running:
        yield running


def test_a_long_query_is_stopped_while_the_server_keeps_answering(patient_server):
    server = patient_server
    slow = "select count(*) from range(1000000000000) a"
    with ThreadPoolExecutor(4) as pool:
        stopped = pool.submit(httpx.get, f"{server.url}/sql.json", params={"q": slow}, timeout=60)
        time.sleep(0.2)
        quick = [pool.submit(httpx.get, f"{server.url}/neuron/0/1.json", timeout=60) for _ in range(3)]
        assert all(f.result().status_code == 200 for f in quick)
        assert not stopped.done()  # answered while the slow query ran
        answer = stopped.result()
    assert answer.status_code == 504
    assert "stopped after 8 s, the viewer's time limit" in answer.json()["error"]
    assert httpx.get(f"{server.url}/sql.json", params={"q": "select 1 as one"}).json()["rows"] == [{"one": 1}]


def test_many_concurrent_loads_leave_no_open_files_or_threads_behind(patient_server):
    server = patient_server
    def load(i: int) -> int:
        path = ["/neuron/0/1", "/neuron/1/2.json", "/", f"/search.json?q=e&page={1 + i % 3}", "/neuron/2/5"][i % 5]
        return httpx.get(server.url + path, timeout=60).status_code

    for _ in range(10):  # warm: caches filled, pool threads started
        load(0)
    files, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(load, range(300)))
    assert statuses == [200] * 300
    time.sleep(0.5)
    assert len(os.listdir("/proc/self/fd")) <= files + 8
    assert threading.active_count() <= threads + 4
