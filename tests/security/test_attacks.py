"""No SQL nx runs can create, change or delete a file, nor read one the views do not: every
attack of ``security_helpers.ATTACKS`` through ``nx sql``, ``nx query``, ``nx.sql``, ``nx.query``
(a named query file in the warehouse's ``_queries/``) and the viewer's SQL endpoints is
refused with one line (a 4xx in the viewer), and every file under the arena (warehouse,
outside directory, working directory with its ``.tmp`` symlink, HOME) is as it was.

Then the same attacks with the statement guard taken away: what holds is the connection
(``readonly.lock``) and, where the kernel has it, Landlock (``sandbox.confined``)."""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from click.testing import CliRunner

import nx
from nx.cli import app
from nx.errors import NxError
from nx.queries import readonly, sandbox
from security_helpers import ATTACKS, one_line

KEYS = list(ATTACKS)
SQL_PATHS = ["/sql", "/sql.json", "/api/sql", "/sql.csv", "/sql.parquet"]
# What the connection's lock alone does not stop: overwriting, in place, a file the views read
# (only a COPY does that, and the statement guard refuses every COPY). Landlock stops it.
IN_PLACE = {"copy-over-a-data-file"}


@pytest.fixture(scope="module")
def viewer(arena):
    from nx.web import create_app

    with TestClient(create_app(arena.warehouse)) as client:
        yield client


@pytest.mark.parametrize("key", KEYS)
def test_nx_sql_refuses_in_one_line(inside, key):
    before = inside.fingerprint()
    result = CliRunner().invoke(app, ["sql", inside.statement(key), "-w", inside.warehouse, "--format", "csv"])
    assert result.exit_code in (1, 2, 3) and result.stdout == ""
    assert result.stderr.startswith("nx: error: ") and one_line(result.stderr), result.stderr
    assert inside.fingerprint() == before


@pytest.mark.parametrize("key", KEYS)
def test_nx_query_of_a_named_query_file_refuses_in_one_line(inside, key):
    before = inside.fingerprint()
    result = CliRunner().invoke(app, ["query", f"attack-{key}", "-w", inside.warehouse, "--format", "csv"])
    assert result.exit_code in (1, 2, 3) and result.stdout == ""
    assert result.stderr.startswith("nx: error: ") and one_line(result.stderr), result.stderr
    assert inside.fingerprint() == before


@pytest.mark.parametrize("key", KEYS)
def test_the_api_refuses_in_one_line(inside, key):
    before = inside.fingerprint()
    with pytest.raises(NxError) as sql_error:
        nx.sql(inside.statement(key), inside.warehouse)
    with pytest.raises(NxError) as query_error:
        nx.query(f"attack-{key}", inside.warehouse)
    assert one_line(str(sql_error.value)) and one_line(str(query_error.value))
    assert inside.fingerprint() == before


@pytest.mark.parametrize("path", SQL_PATHS)
@pytest.mark.parametrize("key", KEYS)
def test_the_viewer_refuses(inside, viewer, key, path):
    before = inside.fingerprint()
    answer = viewer.get(path, params={"q": inside.statement(key)})
    assert 400 <= answer.status_code < 500, answer.text[:300]
    if path in ("/sql.json", "/api/sql"):
        assert one_line(answer.json()["error"]), answer.text
    else:  # the page, or a download's error page
        assert "Traceback" not in answer.text and "text/html" in answer.headers["content-type"]
    assert inside.fingerprint() == before


@pytest.mark.parametrize("key", KEYS)
def test_the_viewer_refuses_posted_statements_and_named_query_files(inside, viewer, key):
    before = inside.fingerprint()
    assert 400 <= viewer.post("/sql", data={"q": inside.statement(key)}).status_code < 500
    answer = viewer.get(f"/queries/attack-{key}.json")
    assert 400 <= answer.status_code < 500 and one_line(answer.json()["error"]), answer.text
    assert inside.fingerprint() == before


@pytest.mark.parametrize("confined", [True, False], ids=["landlock", "connection-only"])
@pytest.mark.parametrize("key", KEYS)
def test_without_the_statement_guard_the_connection_still_cannot_write(inside, monkeypatch, request, key,
                                                                       confined):
    if confined and sandbox.landlock_abi() < 1:
        pytest.skip("Landlock is not available here")
    if not confined:
        monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
        if key in IN_PLACE:
            request.applymarker(pytest.mark.xfail(
                strict=True, reason="without Landlock, only the statement guard stops a COPY over a file the views read"))
    monkeypatch.setattr(readonly, "check_statement", lambda con, text: text)
    before = inside.fingerprint()
    try:
        nx.sql(inside.statement(key), inside.warehouse)
    except NxError as exc:
        assert one_line(str(exc)), str(exc)
    assert inside.fingerprint() == before
