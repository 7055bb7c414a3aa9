"""Fixtures of the attack tests: an arena holding the bundled sample warehouse (with a named
query file per attack in its ``_queries/``, and a Parquet file no commit names), a directory
outside it, and a working directory whose ``.tmp`` is a symlink to that outside directory."""
from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import nx.ingest
from nx.warehouse import Warehouse
from security_helpers import ATTACKS, fingerprint

SAMPLE = Path(__file__).resolve().parents[2] / "nx" / "sample"


@dataclass
class Arena:
    warehouse: str
    outside: str
    cwd: str
    home: str
    data: str   # a data file the views read
    stray: str  # a Parquet file in a table's folder (not a partition's) that no commit names

    def statement(self, key: str) -> str:
        return ATTACKS[key].format(w=self.warehouse, data=self.data, stray=self.stray, outside=self.outside,
                                   cwd=self.cwd)

    def fingerprint(self) -> dict:
        return {**fingerprint(os.path.dirname(self.warehouse)), **fingerprint(self.home)}


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> str:
    """The bundled sample (3 layers x 6 neurons), ingested once (copied before any attack)."""
    root = str(tmp_path_factory.mktemp("security-sample") / "wh")
    assert nx.ingest.run(source=str(SAMPLE), warehouse=root, workers=1).complete
    return root


@pytest.fixture(scope="module")
def arena(sample_root, tmp_path_factory) -> Arena:
    base = tmp_path_factory.mktemp("arena")
    warehouse = str(base / "warehouse")
    shutil.copytree(sample_root, warehouse)
    outside, cwd, home = base / "outside", base / "cwd", base / "home"
    for directory in (outside, cwd, home):
        directory.mkdir()
    (outside / "secret.txt").write_text("not for the viewer\n")
    (cwd / ".tmp").symlink_to(outside)  # DuckDB's default temp_directory is ./.tmp
    store = Warehouse(warehouse)
    [committed] = store.files("explanations")
    data = f"{store.table_path('explanations')}/{committed.path}"
    stray = os.path.join(store.table_path("explanations"), "part-00000000000000000000000000000000.parquet")
    shutil.copyfile(data, stray)
    queries = Path(warehouse) / "_queries"
    queries.mkdir()
    found = Arena(warehouse, str(outside), str(cwd), str(home), data, stray)
    for key in ATTACKS:
        (queries / f"attack-{key}.sql").write_text(f"-- description: attack {key}\n{found.statement(key)}\n",
                                                  encoding="utf-8")
    assert not glob.glob(os.path.join(warehouse, "**", "pwn*"), recursive=True)
    return found


@pytest.fixture
def inside(arena, monkeypatch) -> Arena:
    """The arena, from its working directory, with HOME (DuckDB's secrets and extensions) in it."""
    monkeypatch.chdir(arena.cwd)
    monkeypatch.setenv("HOME", arena.home)
    return arena
