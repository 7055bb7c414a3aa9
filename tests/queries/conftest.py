"""Fixtures for the query-layer tests: the ingested warehouse, an empty one, a private copy,
and the command line run in-process."""
from __future__ import annotations

import math
import shutil

import pytest
from typer.testing import CliRunner

from nx.cli import app


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


def sort_key(row: dict) -> str:
    """A total order on rows of any table (NaN and None included), for comparing tables."""
    return repr(sorted((k, "nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()))
