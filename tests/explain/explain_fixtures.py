"""Fixtures of the explain tests: a fake OpenAI server and a warehouse of rule-following neurons.

Imported by each test module (``from explain_fixtures import fake, warehouse``) rather than
kept in a conftest.py: a second module named ``conftest`` would shadow tests/conftest.py for the
test modules that import helpers from it. tests/conftest.py already keeps OPENAI_API_KEY and
OPENAI_BASE_URL out of every test.
"""
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

