"""The collated-activations flattener: its simdjson fast path agrees with the generic path."""
from __future__ import annotations

import orjson
import pytest

import cases
from nx.ingest import collated_activations as kind


def both_paths(data: bytes, layer: int, neuron: int):
    fast = kind.flatten_bytes(data, layer, neuron)
    generic, _ = kind.flatten(orjson.loads(data), layer, neuron)
    return fast, generic


def as_tables(rows):
    return {t: rows.to_arrow(t, kind.DERIVED[t]) for t in kind.TABLES}


@pytest.mark.parametrize("record", [
    cases.neuron_record(3, 7, seed=1),
    cases.realistic_neuron_record(3, 7, seed=2),
    cases.neuron_record(3, 7, n_quantiles=0, seed=3),
], ids=["small", "realistic", "no-quantiles"])
def test_fast_path_gives_the_generic_rows_for_canonical_files(record):
    fast, generic = both_paths(cases.dumps(record), 3, 7)
    assert fast is not None
    fast_tables, generic_tables = as_tables(fast[0]), as_tables(generic)
    for table in kind.TABLES:
        assert fast_tables[table].equals(generic_tables[table]), table


@pytest.mark.parametrize("hard", [True, 2])
def test_files_with_unknown_fields_leave_the_fast_path(hard):
    data = cases.dumps(cases.neuron_record(0, 1, hard=hard))
    assert kind.flatten_bytes(data, 0, 1) is None


def test_ids_that_disagree_with_the_path_leave_the_fast_path():
    data = cases.dumps(cases.neuron_record(3, 7))
    assert kind.flatten_bytes(data, 3, 8) is None


def test_null_activation_leaves_the_fast_path_and_is_kept():
    record = cases.neuron_record(3, 7)
    record["most_positive_activation_records"][0]["activations"][5] = None
    data = cases.dumps(record)
    assert kind.flatten_bytes(data, 3, 7) is None
    rows, _ = kind.flatten(orjson.loads(data), 3, 7)
    assert rows.to_arrow("activation_records", kind.DERIVED["activation_records"]).column("activations")[0][5].as_py() is None


def with_tokens(record: dict, tokens: list[str]) -> dict:
    for i, activation_record in enumerate(record["most_positive_activation_records"] + record["random_sample"]):
        n = len(activation_record["tokens"])
        activation_record["tokens"] = [tokens[(i + j) % len(tokens)] for j in range(n)]
    return record


def test_quirky_tokens_take_the_fast_path_and_give_the_generic_rows():
    # newlines, tabs, quotes, backslashes, emoji, U+FFFD, tokens that look like JSON syntax
    quirky = [t for t in cases.HARD_TOKENS] + ['"],"activations":[', "]}", '","', "\\n", "\\\\\""]
    data = cases.dumps(with_tokens(cases.neuron_record(3, 7, seed=4), quirky))
    fast, generic = both_paths(data, 3, 7)
    assert fast is not None
    fast_tables, generic_tables = as_tables(fast[0]), as_tables(generic)
    for table in kind.TABLES:
        assert fast_tables[table].equals(generic_tables[table]), table


@pytest.mark.parametrize("token", ["bell\x07", "nul\x00"])
def test_tokens_written_with_unicode_escapes_leave_the_fast_path_and_are_kept(token):
    data = cases.dumps(with_tokens(cases.neuron_record(3, 7), [" a", token]))
    assert b"\\u00" in data
    assert kind.flatten_bytes(data, 3, 7) is None
    rows, _ = kind.flatten(orjson.loads(data), 3, 7)
    tokens = rows.to_arrow("activation_records", kind.DERIVED["activation_records"]).column("tokens").to_pylist()
    assert any(token in t for t in tokens)
