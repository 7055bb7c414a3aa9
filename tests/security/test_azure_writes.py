"""An az:// warehouse is read through a filesystem that cannot write: with the statement guard
taken away, COPY ... TO az://... is refused and no blob is made, changed or deleted."""
from __future__ import annotations

from pathlib import Path

import pytest

import nx
import nx.ingest
from nx.errors import NxError
from nx.queries import readonly
from nx.warehouse import Warehouse

SAMPLE = Path(__file__).resolve().parents[2] / "nx" / "sample"

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:                    # tests/ itself on sys.path
    from azurite import azurite  # noqa: F401

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def azure_root(azurite):
    """The bundled sample ingested into a private container."""
    azurite.create_container("security", public=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        url = f"az://{azurite.account}/security/wh"
        assert nx.ingest.run(source=str(SAMPLE), warehouse=url, workers=1).complete
    return url


def blobs(url: str) -> dict[str, tuple]:
    store = Warehouse(url)
    return {path: (info["size"], info.get("etag")) for path, info in store.fs.find(store.location.path, detail=True).items()}


@pytest.mark.parametrize("statement", [
    "with x as (copy (select 1 a) to '{w}/pwn.csv') select 1",
    "with x as (copy (select 1 a, 2 b) to '{w}/neurons' (format parquet, partition_by (b), overwrite true)) select 1",
    "with x as (copy (select * from explanations) to '{data}' (format parquet, use_tmp_file false)) "
    "select count(*) from explanations",
    "copy (select 1 a) to '{w}/pwn.parquet' (format parquet)",
])
def test_the_connection_cannot_write_to_an_azure_warehouse(azure_root, azurite, monkeypatch, statement):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setattr(readonly, "check_statement", lambda con, text: text)
    store = Warehouse(azure_root)
    [committed] = store.files("explanations")
    data = "az://" + f"{store.table_path('explanations')}/{committed.path}".lstrip("/")
    inside = "az://" + store.location.path.strip("/")  # as the views name it: allowed to be read
    assert nx.sql("select count(*) as n from explanations", azure_root).to_pylist()[0]["n"] > 0
    before = blobs(azure_root)
    with pytest.raises(NxError):
        nx.sql(statement.format(w=inside, data=data), azure_root)
    assert blobs(azure_root) == before
