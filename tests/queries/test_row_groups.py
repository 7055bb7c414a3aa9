"""Row groups: nx writes one layer a group, and ``nx.neuron`` reads a neuron of a
layer-partitioned table from the groups that may hold it, through a footer kept per file."""
from __future__ import annotations

import os

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nx
from nx.errors import WarehouseError
from nx.parquet_files import ParquetStream, groups
from nx.queries import row_groups
from nx.schema import TABLES
from nx.warehouse import Warehouse
from query_fixtures import cli, copied_warehouse, warehouse  # noqa: F401  (fixtures)


def records(neurons: list[int], per_neuron: int = 3) -> pa.Table:
    """activation_records rows (stored columns) for ``neurons``, ``per_neuron`` each."""
    rows = [{"neuron": n, "sample": "top", "quantile": None, "rank": r, "tokens": [f"t{n}", f"r{r}"],
             "activations": [float(n), r / 2], "max_activation": float(n), "sequence_id": f"{n}-{r}", "extras": None}
            for n in neurons for r in range(per_neuron)]
    return pa.Table.from_pylist(rows, schema=TABLES["activation_records"].columns)


def write(path, table: pa.Table, rows_per_group: int, name: str = "activation_records") -> str:
    stream = ParquetStream(fsspec.filesystem("file"), str(path), True, name, table.schema)
    stream.rows_per_group = rows_per_group
    for start in range(0, len(table), 5):  # in pieces, as a unit's rows arrive
        stream.write(table.slice(start, 5))
    stream.close()
    return str(path)


COLUMNS = [c for c in TABLES["activation_records"].columns.names] + ["model", "layer"]


def read(path: str, layer: int, neuron: int, columns: list[str], partition_values: dict) -> list[dict]:
    footer = row_groups.footer(path)
    return row_groups.neuron_rows(path, footer, footer.groups_holding(layer, neuron), layer, neuron, columns,
                                  TABLES["activation_records"], partition_values)


def test_a_row_group_holds_one_layer_when_the_rows_come_in_layer_order():
    rows = pa.table({"layer": [1] * 5 + [2] * 3 + [3] * 10})
    assert groups(rows, 4) == [(0, 4), (4, 5), (5, 8), (8, 12), (12, 16), (16, 18)]


def test_rows_out_of_layer_order_are_cut_by_size_only():
    # a group per change of layer would make a group of every row here
    assert groups(pa.table({"layer": [1, 2, 1, 2, 1]}), 2) == [(0, 2), (2, 4), (4, 5)]
    assert groups(pa.table({"neuron": list(range(5))}), 2) == [(0, 2), (2, 4), (4, 5)]


def test_a_file_written_in_pieces_has_one_layer_a_group(tmp_path):
    table = TABLES["token_weights"]
    rows = [{"layer": layer, "neuron": n, "direction": "input", "sign": "positive", "rank": 0, "token": "x",
             "strength": 1.0, "extras": None} for layer in (0, 1, 2) for n in range(7)]
    path = write(tmp_path / "w.parquet", pa.Table.from_pylist(rows, schema=table.columns), 4, "token_weights")
    metadata = pq.read_metadata(path)
    layers = [metadata.row_group(i).column(0).statistics for i in range(metadata.num_row_groups)]
    assert [(s.min, s.max) for s in layers] == [(0, 0), (0, 0), (1, 1), (1, 1), (2, 2), (2, 2)]
    assert pq.read_table(path).equals(pa.Table.from_pylist(rows, schema=table.columns))


def test_a_neuron_is_read_from_the_one_group_that_holds_it_with_the_files_partition_values(tmp_path):
    path = write(tmp_path / "r.parquet", records(list(range(10))), 6)  # two neurons a group
    footer = row_groups.footer(path)
    assert footer.groups_holding(3, 4) == [2]
    found = read(path, 3, 4, COLUMNS, {"model": "m", "layer": "3"})
    expected = duckdb.sql(f"select *, 'm' as model, 3 as layer from '{path}' where neuron = 4 order by rank")
    assert found == [dict(zip(expected.columns, row)) for row in expected.fetchall()]
    assert [list(row) for row in found] == [COLUMNS] * 3


def test_a_neuron_whose_rows_span_two_groups_comes_back_whole(tmp_path):
    path = write(tmp_path / "r.parquet", records([0, 1, 2], per_neuron=4), 3)
    assert row_groups.footer(path).groups_holding(0, 1) == [1, 2]
    assert [r["rank"] for r in read(path, 0, 1, COLUMNS, {})] == [0, 1, 2, 3]


def test_a_column_an_older_file_lacks_is_none(tmp_path):
    path = str(tmp_path / "old.parquet")
    pq.write_table(records([5]).drop_columns(["extras", "sequence_id"]), path)
    [row, *_] = read(path, 0, 5, COLUMNS, {"model": "m", "layer": "0"})
    assert (row["extras"], row["sequence_id"], row["tokens"]) == (None, None, ["t5", "r0"])


def test_a_file_changed_in_place_has_its_footer_read_again(tmp_path):
    path = write(tmp_path / "r.parquet", records([1, 2]), 100)
    assert len(read(path, 0, 2, COLUMNS, {})) == 3
    write(tmp_path / "r.parquet", records([2, 3], per_neuron=5), 100)
    os.utime(path, ns=(1, 1))
    assert len(read(path, 0, 2, COLUMNS, {})) == 5


@pytest.mark.parametrize("content, says", [
    (b"not a parquet file\n", "not a readable Parquet file"),
    (None, "neuron"),
])
def test_a_file_that_is_not_the_tables_is_one_error_naming_it(tmp_path, content, says):
    path = str(tmp_path / "bad.parquet")
    if content is None:  # a neuron column of text: no statistics to trust, no integer to match
        pq.write_table(pa.table({"neuron": ["4", "5"], "tokens": [["a"], ["b"]]}), path)
    else:
        with open(path, "wb") as f:
            f.write(content)
    with pytest.raises(WarehouseError) as raised:
        read(path, 0, 4, COLUMNS, {})
    assert path in str(raised.value) and says in str(raised.value) and "\n" not in str(raised.value)


def test_a_spoiled_activation_records_file_is_one_line_from_nx_show(cli, copied_warehouse):
    store = Warehouse(copied_warehouse)
    [entry] = [f for f in store.files("activation_records") if f.partition_values["layer"] == "0"]
    path = f"{store.table_path('activation_records')}/{entry.path}"
    with open(path, "wb") as f:
        f.write(b"PAR1 and then nothing a reader can use")
    result = cli("show", "0", "0", "-w", copied_warehouse)
    assert result.exit_code == 3 and result.stdout == ""
    assert path in result.stderr and result.stderr.count("\n") == 1
    with pytest.raises(WarehouseError):
        nx.neuron(0, 0, warehouse=copied_warehouse)
