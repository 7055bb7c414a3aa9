"""Fixtures for the query-layer tests: the ingested warehouse, an empty one, a private copy,
and the command line run in-process; ``plain`` makes rows comparable.

Imported by each test module (``from query_fixtures import ...``) rather than kept in a
conftest.py: a second module named ``conftest`` would shadow tests/conftest.py for the
modules that import helpers from it."""
from __future__ import annotations

import itertools
import math
import shutil

import pytest
from click.testing import CliRunner

from nx.cli import app

_CONTAINERS = itertools.count()


@pytest.fixture(scope="session")
def warehouse(ingested) -> str:
    """The session's warehouse holding tests/cases.py's source tree (read-only for tests)."""
    return ingested["warehouse"]


@pytest.fixture
def fresh_warehouse(tmp_path) -> str:
    """An empty warehouse directory: nothing ingested yet."""
    path = tmp_path / "fresh"
    path.mkdir()
    return str(path)


@pytest.fixture
def copied_warehouse(warehouse, tmp_path) -> str:
    """A private copy of the ingested warehouse that a test may change."""
    target = tmp_path / "copy"
    shutil.copytree(warehouse, target)
    return str(target)


@pytest.fixture
def cli():
    """Run ``nx ARGS...`` in-process; the result has stdout, stderr and exit_code apart."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return run


def plain(value):
    """``value`` with every NaN replaced by the string "NaN", so that == compares NaN as equal."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def sorted_rows(rows: list[dict]) -> list[dict]:
    """Rows in a total order (NaN and None included), NaN made comparable: for comparing tables."""
    return sorted((plain(row) for row in rows), key=lambda row: repr(sorted(row.items())))


@pytest.fixture(scope="module")
def azure_explanations(azurite, source_tree):
    """The source tree's explanations ingested into a private Azurite container of their own
    (the test module needs ``azurite`` from tests/azurite.py); its az:// URL."""
    import nx.ingest

    container = f"explanations-{next(_CONTAINERS)}"
    azurite.create_container(container, public=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        url = f"az://{azurite.account}/{container}/nx"
        nx.ingest.run(source=source_tree["root"], warehouse=url, workers=1, kinds=["explanations"])
    return url
