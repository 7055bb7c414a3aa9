"""Shared fixtures: environment isolation, a synthetic source tree, an ingested warehouse."""
from __future__ import annotations

import shutil

import pytest

import cases

ISOLATED_VARIABLES = ("NX_WAREHOUSE", "NX_SOURCE", "NX_QUERIES", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                      "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_KEY",
                      "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ACCOUNT_NAME", "NX_CACHE_GB")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No test sees the developer's warehouse, keys or Azure credentials."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NX_WAREHOUSE", str(tmp_path / "default-warehouse"))
    monkeypatch.setenv("NX_CACHE_DIR", str(tmp_path / "nx-cache"))  # copies of az:// files: never the user's


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory):
    """The every-hard-case source (2 layers x 4 neurons, broken files included) and its manifest."""
    root = tmp_path_factory.mktemp("source")
    return cases.write_source_tree(root)


@pytest.fixture(scope="session")
def ingested(source_tree, tmp_path_factory):
    """A warehouse holding the source tree, ingested once with one worker (read-only for tests)."""
    import nx.ingest

    warehouse = tmp_path_factory.mktemp("warehouse")
    report = nx.ingest.run(source=source_tree["root"], warehouse=str(warehouse), workers=1)
    return {"warehouse": str(warehouse), "report": report, "source": source_tree}


@pytest.fixture
def copied_source(source_tree, tmp_path):
    """A private copy of the source tree that a test may change."""
    target = tmp_path / "source"
    shutil.copytree(source_tree["root"], target)
    return {**source_tree, "root": str(target)}

