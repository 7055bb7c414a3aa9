"""The token scanner: the string arrays under a key of compact JSON, escapes decoded, in any
list order; anything it does not handle gives None (the caller then parses normally)."""
from __future__ import annotations

import json
import random

import orjson
import pyarrow as pa
import pytest

from nx.ingest import token_scan
from nx.ingest.token_scan import string_lists

QUIRKS = ["a", " ", '"', "\\", "\n", "\t", "\r", "é", "🙂", "\ufffd", "\x0c", "\x08", "/", ":", ",", "]",
          "}", "{", "[", "tokens", '\\"', "\\\\", '","', '":"', "\u2028"]


@pytest.fixture(autouse=True, params=["compiled", "python"])
def scan_kind(request, monkeypatch):
    """Every test runs against both scans: the compiled one (if built) and the pure-Python one."""
    if request.param == "compiled" and not token_scan.COMPILED:
        pytest.skip("nx/ingest/_token_scan.c was not built (no C compiler at install)")
    monkeypatch.setattr(token_scan, "COMPILED", request.param == "compiled")
    return request.param


def document(lists: list[list[str]]) -> bytes:
    """A NeuronRecord-like document: keys, non-array string values, nested objects."""
    records = [{"dataclass_name": "ActivationRecord", "tokens": tokens, "activations": [0.5] * len(tokens)}
               for tokens in lists]
    return orjson.dumps({"neuron_id": {"layer_index": 1, "dataclass_name": "NeuronId"},
                         "random_sample": records[1:], "label": "a,\"b\"]", "top": records[:1]})


def in_document_order(lists):
    return lists[1:] + lists[:1]


def test_random_token_lists_come_back_exactly_in_any_order():
    rng = random.Random(7)
    for _ in range(500):
        lists = [["".join(rng.choice(QUIRKS) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(0, 6))]
                 for _ in range(rng.randint(1, 6))]
        ordered = in_document_order(lists)
        data = document(lists)
        assert string_lists(data, b"tokens", b"activations", len(ordered)).to_pylist() == ordered
        order = rng.sample(range(len(ordered)), len(ordered))
        assert string_lists(data, b"tokens", b"activations", len(ordered), order).to_pylist() == [ordered[i] for i in order]


def records(*lists) -> bytes:
    return orjson.dumps([{"tokens": tokens, "activations": [], "dataclass_name": "ActivationRecord"}
                         for tokens in lists])


def scan(data: bytes, lengths: list[int], order=None):
    """The scan of ``len(lengths)`` token lists, None unless their lengths are these."""
    lists = string_lists(data, b"tokens", b"activations", len(lengths), order)
    if lists is not None and [len(x) for x in lists.to_pylist()] != ([lengths[i] for i in order] if order else lengths):
        return None
    return lists


def test_a_list_holding_a_non_string_does_not_add_up():
    assert scan(records(["x", 1, "y"]), [3]) is None
    assert scan(records(["z", None]), [2]) is None
    assert scan(records([1]), [1]) is None


def test_a_key_found_more_or_fewer_times_than_expected_gives_none():
    data = records(["a"], ["b"])
    assert scan(data, [1, 1]).to_pylist() == [["a"], ["b"]]
    assert scan(data, [1]) is None
    assert scan(data, [1, 1, 0]) is None


def test_tokens_that_look_like_the_end_of_the_array_stay_tokens():
    tricky = ['"]', "],", '],"activations":[', "]}", '"tokens":[', "\\", '\\"', ""]
    assert scan(records(tricky, ["]"], [], ['"'], tricky), [8, 1, 0, 1, 8]).to_pylist() == \
        [tricky, ["]"], [], ['"'], tricky]


def test_a_list_not_followed_by_the_next_key_gives_none():
    assert scan(orjson.dumps([{"activations": [], "tokens": ["a"]}, {"tokens": ["b"], "activations": []}]), [1, 1]) is None
    assert scan(orjson.dumps({"tokens": ["a"]}), [1]) is None


def test_control_characters_written_as_unicode_escapes_are_left_to_the_parser():
    assert scan(records(["ok"], ["bell\x07"]), [1, 1]) is None


def test_json_with_spaces_around_strings_is_left_to_the_parser():
    assert scan(json.dumps([{"tokens": ["x", "y"], "activations": []}], separators=(",", ":")).encode(), [2]).to_pylist() == [["x", "y"]]
    assert scan(json.dumps([{"tokens": ["x", "y"], "activations": []}]).encode(), [2]) is None


def test_order_must_be_a_permutation():
    with pytest.raises(ValueError):
        scan(records(["x"], ["y"]), [1, 1], [0, 0])


def test_no_lists_give_an_empty_array():
    assert scan(orjson.dumps({"a": 1}), []).to_pylist() == []
    assert scan(records([]), [0]).to_pylist() == [[]]


@pytest.mark.skipif(not token_scan.COMPILED, reason="nx/ingest/_token_scan.c was not built")
def test_the_compiled_scan_gives_what_the_python_scan_gives(scan_kind):
    rng = random.Random(11)
    opening, closing = b'"tokens":[', b'"],"activations":'
    for _ in range(2000):
        lists = [["".join(rng.choice(QUIRKS + ["\x01"]) for _ in range(rng.randint(0, 3))) for _ in range(rng.randint(0, 4))]
                 for _ in range(rng.randint(0, 5))]
        data = records(*lists) if rng.random() < 0.7 else document(lists or [[]])
        if rng.random() < 0.2:  # damage it: cut, or a byte changed
            at = rng.randrange(len(data))
            data = data[:at] if rng.random() < 0.5 else data[:at] + rng.choice([b",", b'"', b"\\", b"]", b"1"]) + data[at + 1:]
        expected = rng.choice([len(lists), len(lists), len(lists) + 1, max(0, len(lists) - 1)])
        order = rng.sample(range(expected), expected) if rng.random() < 0.5 else None
        python = token_scan._python_scan(data, opening, closing, expected, order)
        compiled = token_scan._compiled_scan(data, opening, closing, expected, order)
        assert (python is None) == (compiled is None), data
        if python is not None:  # compared as bytes: damage may have split a UTF-8 character
            assert compiled.cast(pa.list_(pa.binary())).equals(python.cast(pa.list_(pa.binary()))), data
