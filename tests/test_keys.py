"""sequence_id: the documented byte layout, the same for every shape and slice of the arrays."""
from __future__ import annotations

import hashlib
import math
import struct

import pyarrow as pa
import pytest

from nx.keys import neuron_name, parse_neuron_name, sequence_id, sequence_ids


def documented_sequence_id(tokens: list[str | None], activations: list[float | None]) -> str:
    """The definition in nx/keys.py, written out plainly."""
    encoded = [(t or "").encode() for t in tokens]
    parts = [struct.pack("<II", len(tokens), len(activations))]
    parts += [struct.pack("<I", len(e)) for e in encoded]
    parts += [struct.pack("<d", math.nan if a is None or math.isnan(a) else a) for a in activations]
    parts += encoded
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]


ROWS = [
    (["The", " cat", "\n", "é", "🙂", ""], [0.0, -1.5, 2.25, None, math.nan, 1e-300]),
    ([], []),
    (["x"], [3.0]),
    (["a", "b"], [1.0]),           # more tokens than activations: still well defined
    (["ab"], [1.0, 2.0]),
    (["a", None], [float("inf"), -0.0]),
]


def as_arrays(rows):
    return (pa.array([t for t, _ in rows], pa.list_(pa.string())),
            pa.array([a for _, a in rows], pa.list_(pa.float64())))


def test_rows_of_any_shape_hash_as_documented():
    tokens, activations = as_arrays(ROWS)
    assert sequence_ids(tokens, activations).to_pylist() == [documented_sequence_id(t, a) for t, a in ROWS]


@pytest.mark.parametrize("start,stop", [(0, 3), (1, 4), (2, 6), (5, 6)])
def test_sliced_arrays_hash_like_fresh_ones(start, stop):
    tokens, activations = as_arrays(ROWS)
    sliced = sequence_ids(tokens[start:stop], activations[start:stop]).to_pylist()
    assert sliced == [documented_sequence_id(t, a) for t, a in ROWS[start:stop]]


def test_rows_of_one_shape_take_the_same_digest_as_mixed_ones():
    uniform = [([f"t{i}", f" w{i}", "\t"], [float(i), -float(i), 0.5]) for i in range(50)]
    tokens, activations = as_arrays(uniform)
    expected = [documented_sequence_id(t, a) for t, a in uniform]
    assert sequence_ids(tokens, activations).to_pylist() == expected
    assert sequence_ids(tokens[7:19], activations[7:19]).to_pylist() == expected[7:19]
    chunked = sequence_ids(pa.chunked_array([tokens[:20], tokens[20:]]), pa.chunked_array([activations[:20], activations[20:]]))
    assert chunked.to_pylist() == expected


def test_one_record_matches_the_array_form_and_nan_bit_patterns_do_not_matter():
    tokens, activations = ["a", "b"], [float("nan"), -float("nan")]
    assert sequence_id(tokens, activations) == documented_sequence_id(tokens, activations)
    assert sequence_id(tokens, [None, None]) == sequence_id(tokens, activations)
    assert sequence_id(tokens, [1.0, 2.0]) != sequence_id(tokens, [1.0, 2.0000000000000004])


def test_compiled_digests_are_the_python_loops():
    import numpy as np

    from nx import keys

    compiled = pytest.importorskip("nx._sequence_digests", reason="built where a C compiler and OpenSSL's headers are")
    uniform = [([f"t{i}", "\u00e9", ""], [float(i), -0.0, math.inf]) for i in range(40)]
    for rows in (ROWS, uniform, []):
        tokens, activations = as_arrays(rows)
        strings = tokens.values.fill_null("")
        char_offsets = np.frombuffer(strings.buffers()[1], np.int32)[:len(strings) + 1]
        token_offsets = tokens.offsets.to_numpy().astype(np.int64)
        values = activations.values.fill_null(math.nan).to_numpy(zero_copy_only=False)
        heads, offsets = keys._heads(token_offsets, np.diff(char_offsets).astype("<u4"),
                                     activations.offsets.to_numpy().astype(np.int64), values)
        chars, bounds = memoryview(strings.buffers()[2] or b""), char_offsets[token_offsets].astype(np.int64)
        assert keys._digests(heads, offsets, chars, bounds) == keys._digests(heads, offsets, chars, bounds, compiled=False)
        assert len(keys._digests(heads, offsets, chars, bounds)) == 8 * len(rows)
    with pytest.raises(ValueError):  # offsets past the end of a buffer are refused, never read
        compiled.digests(b"abc", np.array([0, 4], np.int64), b"", np.array([0, 0], np.int64))
    with pytest.raises(ValueError):
        compiled.digests(b"abc", np.array([2, 1], np.int64), b"", np.array([0, 0], np.int64))


def test_neuron_names_round_trip():
    assert parse_neuron_name(neuron_name(12, 345)) == (12, 345)
    with pytest.raises(ValueError):
        parse_neuron_name("12-345")
