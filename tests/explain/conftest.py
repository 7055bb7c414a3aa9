"""Fixtures of the explain tests: a fake OpenAI server and a warehouse of rule-following neurons."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ (fake_openai) and tests/explain (explain_data) importable however pytest is started.
for directory in (Path(__file__).parent, Path(__file__).parent.parent):
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))

from explain_data import build_warehouse  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def warehouse(tmp_path):
    return build_warehouse(tmp_path / "warehouse")


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch):
    # A developer's real key or server must never be used by these tests.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
