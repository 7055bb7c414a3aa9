"""Finding a neuron's files from footer statistics: binary search in ingest's chunked partitions,
everything in the time-named partitions of explain runs."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import nx
from nx.queries.files import files_holding, neuron_range
from nx.queries.location import locate
from nx.warehouse import Warehouse
from query_fixtures import copied_warehouse, warehouse  # noqa: F401  (fixtures)


@pytest.fixture
def chunked(tmp_path):
    """Ten files of ten consecutive neurons each, as ingest writes them (part-<chunk>)."""
    paths = []
    for chunk in range(10):
        path = tmp_path / f"part-{chunk:05d}.parquet"
        pq.write_table(pa.table({"neuron": pa.array(range(chunk * 10, chunk * 10 + 10), pa.int32())}), path)
        paths.append(str(path))
    return tmp_path, paths


def test_a_neuron_is_found_in_its_chunk_file(chunked):
    root, paths = chunked
    located = locate(str(root))
    for neuron in (0, 9, 10, 55, 99):
        assert files_holding(located, paths, {neuron}, chunked=True) == [paths[neuron // 10]]
    assert files_holding(located, paths, {3, 77}, chunked=True) == [paths[0], paths[7]]
    assert files_holding(located, paths, {100}, chunked=True) == []
    assert files_holding(located, paths, {5}, chunked=False) == paths
    assert neuron_range(located, paths[4]) == (40, 49)


def test_files_without_statistics_are_all_read(tmp_path):
    paths = []
    for chunk in range(4):
        path = tmp_path / f"part-{chunk}.parquet"
        pq.write_table(pa.table({"neuron": pa.array([chunk], pa.int32())}), path, write_statistics=False)
        paths.append(str(path))
    assert files_holding(locate(str(tmp_path)), paths, {2}, chunked=True) == paths


def test_explanations_of_a_run_written_in_batches_are_all_found(copied_warehouse):
    """nx explain writes a run's partition in time-named batches holding neurons in any order."""
    store = Warehouse(copied_warehouse)
    rows = store.read_table("explanations", {"model": "gpt2-xl", "run": "public", "layer": 0})
    partitions = {"model": "gpt2-xl", "run": "mine", "layer": 0}
    for name, neurons in (("part-20260101T000000-a", [3, 0]), ("part-20260101T000001-b", [1]),
                          ("part-20260101T000002-c", [2]), ("part-20260101T000003-d", [0])):
        batch = rows.filter(pc.is_in(rows.column("neuron"), pa.array(neurons, pa.int32())))
        store.write_file("explanations", partitions, name, batch)
    found = nx.neuron(0, 0, warehouse=copied_warehouse)
    assert [e["run"] for e in found.explanations] == ["public", "mine", "mine"]
