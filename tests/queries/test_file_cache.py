"""Local copies of an az:// warehouse's files (nx/file_cache.py): a query reads Delta's
immutable files from the disk after one whole-file download, gets the same rows, and the cache
neither trusts what it is handed (sizes, paths from the log) nor outgrows its cap."""
from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest

import nx
from nx import file_cache
from nx.errors import QueryError
from query_fixtures import azure_explanations, sorted_rows  # noqa: F401  (fixture)

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:                    # tests/ itself on sys.path
    from azurite import azurite  # noqa: F401

STATEMENT = "select * from explanations where score > 0.1"


def copies_in(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "files").rglob("*") if p.is_file())


@pytest.fixture
def on_azure(azure_explanations, azurite, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    return azure_explanations


@pytest.mark.azurite
def test_a_query_on_azure_copies_the_files_it_reads_and_gives_the_same_rows(on_azure, tmp_path):
    first = nx.sql(STATEMENT, on_azure)
    copies = copies_in(tmp_path / "nx-cache")
    names = {p.name for p in copies}
    assert any(n.endswith(".parquet") and n.startswith("part-") for n in names), names
    assert all(oct(p.parent.stat().st_mode)[-3:] == "700" for p in copies)
    # the Hive partition directories are kept: the view's model and run come from them
    assert any("model=" in str(p) and "run=public" in str(p) for p in copies)
    assert sorted_rows(nx.sql(STATEMENT, on_azure).to_pylist()) == sorted_rows(first.to_pylist())


@pytest.mark.azurite
def test_a_copy_of_the_wrong_size_is_not_used(on_azure, tmp_path):
    first = nx.sql(STATEMENT, on_azure).to_pylist()
    for copy in copies_in(tmp_path / "nx-cache"):
        if copy.name.startswith("part-"):
            copy.write_bytes(b"PAR1 not a parquet file")
    assert sorted_rows(nx.sql(STATEMENT, on_azure).to_pylist()) == sorted_rows(first)


@pytest.mark.azurite
def test_the_cache_can_be_turned_off(on_azure, tmp_path, monkeypatch):
    monkeypatch.setenv("NX_CACHE_DIR", "off")
    rows = nx.sql(STATEMENT, on_azure).to_pylist()
    assert not (tmp_path / "nx-cache").exists()
    monkeypatch.setenv("NX_CACHE_DIR", str(tmp_path / "nx-cache"))
    assert sorted_rows(rows) == sorted_rows(nx.sql(STATEMENT, on_azure).to_pylist())
    assert copies_in(tmp_path / "nx-cache")


@pytest.mark.azurite
def test_a_query_cannot_read_other_copies_in_the_cache(on_azure, tmp_path):
    nx.sql(STATEMENT, on_azure)
    copy = next(p for p in copies_in(tmp_path / "nx-cache") if p.name.startswith("part-"))
    with pytest.raises(QueryError, match="Cannot access file|Permission"):
        nx.sql(f"select count(*) from neurons, read_parquet('{copy}')", on_azure)


def local_fs_files(tmp_path: Path, sizes: dict[str, int]) -> list[tuple[str, str, int, str]]:
    wanted = []
    for name, size in sizes.items():
        path = tmp_path / "remote" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        wanted.append((str(path), f"az://acct/c/t/{name}", size, name))
    return wanted


def test_a_file_of_another_size_than_the_log_says_is_not_copied(tmp_path):
    ((path, url, size, relative),) = local_fs_files(tmp_path, {"part-1.parquet": 100})
    where = str(tmp_path / "cache")
    os.makedirs(where, mode=0o700)
    assert file_cache.fetch(fsspec.filesystem("file"), [(path, url, size + 1, relative)], where) == {}
    assert file_cache.fetch(fsspec.filesystem("file"), [(path, url, size, relative)], where)[url].endswith(relative)


@pytest.mark.parametrize("relative", ["../../escaped.parquet", "/etc/passwd", "a/./b.parquet", "", "x\x00y.parquet"])
def test_a_log_path_that_could_leave_the_cache_is_never_copied(tmp_path, relative):
    ((path, url, size, _),) = local_fs_files(tmp_path, {"part-1.parquet": 10})
    where = tmp_path / "cache"
    where.mkdir(mode=0o700)
    assert file_cache.fetch(fsspec.filesystem("file"), [(path, url, size, relative)], str(where)) == {}
    assert list(tmp_path.rglob("escaped.parquet")) == [] and list(where.rglob("*")) == []


def test_the_least_recently_used_copies_go_when_the_cache_is_over_its_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("NX_CACHE_GB", str(250 / 1024**3))  # 250 bytes
    wanted = local_fs_files(tmp_path, {"old.parquet": 100, "used.parquet": 100, "new.parquet": 100})
    where = tmp_path / "cache"
    where.mkdir(mode=0o700)
    fs = fsspec.filesystem("file")
    file_cache.fetch(fs, wanted[:2], str(where))
    old, used = (file_cache.local(url, size, rel, str(where)) for _, url, size, rel in wanted[:2])
    os.utime(old, (1, 1))
    os.utime(used, (2, 2))
    assert file_cache.local(*wanted[1][1:], str(where)) == used  # a use makes it recent again
    file_cache.fetch(fs, wanted[2:], str(where))
    assert sorted(p.name for p in where.rglob("*.parquet")) == ["new.parquet", "used.parquet"]
    assert [p for p in where.iterdir() if not any(p.iterdir())] == []  # no empty directory left


def test_a_cache_directory_others_may_write_to_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    (shared / "files").mkdir(parents=True)
    os.chmod(shared / "files", 0o777)
    monkeypatch.setenv("NX_CACHE_DIR", str(shared))
    assert file_cache.directory() is None
