"""Fixtures of the viewer's tests: the bundled sample warehouse with a second run and planted
hostile text (``web_helpers.py``), a test client, and a real uvicorn server on a free port."""
from __future__ import annotations

import shutil

import pytest

import nx.ingest
from web_helpers import SAMPLE, RunningServer, plant_run


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory) -> str:
    """The bundled sample (3 layers x 6 neurons) ingested, plus the planted run (read-only for tests)."""
    root = str(tmp_path_factory.mktemp("web-warehouse") / "wh")
    report = nx.ingest.run(source=str(SAMPLE), warehouse=root, workers=1)
    assert report.complete
    plant_run(root)
    return root


@pytest.fixture
def own_warehouse(sample_warehouse, tmp_path) -> str:
    """A private copy of the sample warehouse that a test may change."""
    target = tmp_path / "own"
    shutil.copytree(sample_warehouse, target)
    return str(target)


@pytest.fixture(scope="session")
def client(sample_warehouse):
    from starlette.testclient import TestClient

    from nx.web import create_app

    with TestClient(create_app(sample_warehouse)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def server(sample_warehouse):
    """A real server over the sample warehouse (short time limit, for the time-limit test)."""
    with RunningServer(sample_warehouse, query_timeout=1.0, workers=3) as running:
        yield running
