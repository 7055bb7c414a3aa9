"""Checks the Azurite fixture of tests/azurite.py: authenticated upload and read, and the
anonymous connection form nx uses to read public containers. Owns nothing else."""
from __future__ import annotations

import adlfs
import pytest

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:                    # tests/ itself on sys.path
    from azurite import azurite  # noqa: F401

pytestmark = pytest.mark.azurite

PAYLOAD = '{"tokens":["\\t","\ufffd"],"dataclass_name":"ActivationRecord"}'.encode("utf-8")


@pytest.fixture(scope="module")
def uploaded(azurite, tmp_path_factory):
    """A public and a private container, each holding data/collated-activations/0/1.json."""
    local = tmp_path_factory.mktemp("upload")
    (local / "collated-activations" / "0").mkdir(parents=True)
    (local / "collated-activations" / "0" / "1.json").write_bytes(PAYLOAD)
    azurite.create_container("public-data", public=True)
    azurite.create_container("private-data", public=False)
    names = azurite.upload_tree(local, "public-data", prefix="data")
    azurite.upload_tree(local, "private-data", prefix="data")
    return names


def test_handle_describes_the_dev_account(azurite):
    assert azurite.account == "devstoreaccount1"
    assert f"BlobEndpoint=http://127.0.0.1:{azurite.port}/devstoreaccount1" in azurite.connection_string
    assert azurite.key in azurite.connection_string


def test_upload_tree_names_blobs_under_the_prefix(uploaded):
    assert uploaded == ["data/collated-activations/0/1.json"]


def test_authenticated_read(azurite, uploaded):
    fs = adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string, skip_instance_cache=True)
    assert fs.cat("public-data/data/collated-activations/0/1.json") == PAYLOAD
    assert fs.cat("private-data/data/collated-activations/0/1.json") == PAYLOAD


@pytest.mark.parametrize("connection_string", [
    "BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
    "AccountName=devstoreaccount1;BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
])
def test_anonymous_read_of_a_public_container(azurite, uploaded, connection_string):
    fs = adlfs.AzureBlobFileSystem(connection_string=connection_string.format(port=azurite.port),
                                   skip_instance_cache=True)
    assert fs.cat("public-data/data/collated-activations/0/1.json") == PAYLOAD
    assert fs.ls("public-data/data/collated-activations/0") == ["public-data/data/collated-activations/0/1.json"]
    assert not fs.exists("public-data/data/collated-activations/0/2.json")


def test_anonymous_connection_string_property(azurite, uploaded):
    fs = adlfs.AzureBlobFileSystem(connection_string=azurite.anonymous_connection_string,
                                   skip_instance_cache=True)
    assert fs.cat("public-data/data/collated-activations/0/1.json") == PAYLOAD


def test_anonymous_read_of_a_private_container_is_refused(azurite, uploaded):
    fs = adlfs.AzureBlobFileSystem(connection_string=azurite.anonymous_connection_string,
                                   skip_instance_cache=True)
    with pytest.raises(Exception, match="authenticate|not exist|NotFound|403|404"):
        fs.cat("private-data/data/collated-activations/0/1.json")
