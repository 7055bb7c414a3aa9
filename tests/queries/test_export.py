"""``nx export``: the warehouse back to the public JSON layout, and the round trip through ingest."""
from __future__ import annotations

import json
import os

import pytest

import nx
import nx.ingest
from nx.schema import DATA_TABLES
from query_fixtures import cli, plain, sorted_rows, warehouse  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def exported(ingested, tmp_path_factory):
    """Every kind of the session warehouse exported, then ingested again into a second warehouse."""
    target = tmp_path_factory.mktemp("export")
    report = nx.export(to=str(target), warehouse=ingested["warehouse"])
    again = tmp_path_factory.mktemp("again")
    nx.ingest.run(source=str(target), warehouse=str(again), workers=1)
    return {"root": str(target), "report": report, "again": str(again)}


def exported_files(root: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
            for d, _, files in os.walk(root) for f in files}


def test_every_ingested_file_is_exported_at_its_public_path(exported, source_tree):
    ok = {source_tree["paths"][(kind, layer, neuron)]
          for kind, pairs in source_tree["ok"].items() for layer, neuron in pairs}
    assert exported_files(exported["root"]) == ok
    assert exported["report"].files == {kind: len(pairs) for kind, pairs in source_tree["ok"].items()}


def test_exported_json_is_the_source_json(exported, source_tree):
    for (kind, layer, neuron), obj in source_tree["objects"].items():
        relative = source_tree["paths"][(kind, layer, neuron)]
        with open(os.path.join(exported["root"], relative), "rb") as f:
            data = f.read()
        assert plain(json.loads(data)) == plain(obj), relative
        if (kind, layer, neuron) not in source_tree["nan_literal"]:
            with open(os.path.join(source_tree["root"], relative), "rb") as f:
                assert data == f.read(), relative  # byte for byte: orjson, dataclass_name last, newline


@pytest.mark.parametrize("table", DATA_TABLES)
def test_ingesting_an_export_gives_identical_tables(exported, ingested, table):
    before = sorted_rows(nx.sql(f"select * from {table}", ingested["warehouse"]).to_pylist())
    after = sorted_rows(nx.sql(f"select * from {table}", exported["again"]).to_pylist())
    assert before and after == before


def test_export_takes_kinds_layers_and_neurons(cli, warehouse, tmp_path):
    result = cli("export", "explanations", "token-lookups", "--to", tmp_path / "out", "--layers", "1",
                 "--neurons", "0-1", "-w", warehouse, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == (f"export of {warehouse} (model gpt2-xl) to {tmp_path / 'out'}\n"
                             "  explanations                  2 files\n"
                             "  token-lookups                 2 files\n")
    assert exported_files(str(tmp_path / "out")) == {
        "explanations/1/0.jsonl", "explanations/1/1.jsonl",
        "related-tokens/activation-based/1/0.json", "related-tokens/activation-based/1/1.json"}


@pytest.mark.parametrize("args, message", [
    ([], "Invalid value for KIND: name one or more kinds, or give --all"),
    (["tables"], "nx: error: unknown kind 'tables'; kinds: collated-activations, explanations, related-neurons, "
                 "token-lookups, token-weights"),
])
def test_export_usage_errors_exit_2(cli, warehouse, tmp_path, args, message):
    result = cli("export", *args, "--to", tmp_path / "out", "-w", warehouse, "-q")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()
