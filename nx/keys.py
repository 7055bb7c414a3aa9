"""Stable keys shared by ingest and explain: ``sequence_id`` and "L_N" neuron names.

``sequence_id`` identifies a token list *together with* its true activations (token lists
alone repeat: boilerplate text), so a scored sequence joins to the activation record it was
simulated from. It is the first 8 bytes of the SHA-256 digest, as 16 hex digits, of: the token count and
the activation count (uint32 LE each), each token's UTF-8 length (uint32 LE), the
activations as float64 LE with null written as NaN, then the concatenated UTF-8 tokens.
``sequence_ids`` computes it for whole Arrow arrays straight from their buffers (the SHA-256
loop compiled from ``_sequence_digests.c`` where it could be built: a Python call per record
cost half the hashing); ``sequence_id`` is the same for one record.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def sequence_id(tokens: list[str], activations: list[float | None]) -> str:
    """The ``sequence_id`` of one token list and its activations."""
    one = sequence_ids(pa.array([tokens], pa.list_(pa.string())), pa.array([activations], pa.list_(pa.float64())))
    return one[0].as_py()


def sequence_ids(tokens: pa.Array, activations: pa.Array) -> pa.Array:
    """``sequence_id`` of every row of two list arrays (list<string>, list<float64>)."""
    tokens = tokens.combine_chunks() if isinstance(tokens, pa.ChunkedArray) else tokens
    activations = activations.combine_chunks() if isinstance(activations, pa.ChunkedArray) else activations
    strings = tokens.values
    if strings.null_count:
        strings = pc.fill_null(strings, "")
    strings = strings.cast(pa.string())
    char_offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + len(strings) + 1]
    chars = memoryview(strings.buffers()[2] or b"")
    token_offsets = tokens.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    values = activations.values.cast(pa.float64())
    if values.null_count:
        values = pc.fill_null(values, float("nan"))
    values = values.to_numpy(zero_copy_only=False)
    nan = np.isnan(values)
    if nan.any():
        values = np.where(nan, np.nan, values)  # one NaN bit pattern for every NaN
    act_offsets = activations.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    heads, head_offsets = _heads(token_offsets, np.diff(char_offsets).astype("<u4"), act_offsets, values)
    char_bounds = char_offsets[token_offsets].astype(np.int64)  # each row's tokens in ``chars``
    return _hex_strings(_digests(heads, head_offsets, chars, char_bounds), len(token_offsets) - 1)


def _digests(heads, head_offsets: np.ndarray, chars, char_bounds: np.ndarray, compiled: bool = True) -> bytes:
    """First 8 bytes of the SHA-256 of each row's head and tokens, one row after another."""
    if compiled:
        try:  # built from nx/_sequence_digests.c where a C compiler and OpenSSL's headers were at hand
            from nx import _sequence_digests
        except ImportError:  # pragma: no cover - the loop below gives the same bytes, slower
            pass
        else:
            return _sequence_digests.digests(heads, head_offsets, chars, char_bounds)
    sha256 = hashlib.sha256  # OpenSSL's: hardware SHA on most CPUs, faster than BLAKE2b here
    rows, at, bounds = memoryview(heads), head_offsets.tolist(), char_bounds.tolist()
    digests = []
    for i in range(len(at) - 1):  # this runs for every record ingested: two C calls
        digest = sha256(rows[at[i]:at[i + 1]])
        digest.update(chars[bounds[i]:bounds[i + 1]])
        digests.append(digest.digest()[:8])
    return b"".join(digests)


_HEX = np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), dtype=np.uint8).reshape(256, 2)


def _hex_strings(digests: bytes, count: int) -> pa.StringArray:
    """``count`` 8-byte digests, one after another -> 16-hex-digit strings, in one go."""
    text = _HEX[np.frombuffer(digests, dtype=np.uint8)].reshape(-1)
    offsets = np.arange(0, 16 * count + 1, 16, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text))


def _heads(token_offsets: np.ndarray, lengths: np.ndarray, act_offsets: np.ndarray, values: np.ndarray
           ) -> tuple[object, np.ndarray]:
    """Each row's bytes before its tokens (counts, token lengths and activations), one row
    after another, and where each row's start (int64, one more than the rows)."""
    token_counts, act_counts = np.diff(token_offsets), np.diff(act_offsets)
    n = len(token_counts)
    lengths = lengths[token_offsets[0]:token_offsets[-1]] if n else lengths[:0]
    values = np.ascontiguousarray(values[act_offsets[0]:act_offsets[-1]] if n else values[:0], dtype="<f8")
    if n and (token_counts == token_counts[0]).all() and (act_counts == act_counts[0]).all():
        # every row the same shape (64 tokens, as a rule): one 2-D array, a row per record
        t, a = int(token_counts[0]), int(act_counts[0])
        rows = np.empty((n, 2 + t + 2 * a), dtype="<u4")
        rows[:, 0], rows[:, 1] = t, a
        rows[:, 2:2 + t] = lengths.reshape(n, t)
        rows[:, 2 + t:] = values.view("<u4").reshape(n, 2 * a)
        width = rows.shape[1] * 4
        return rows.reshape(-1).view(np.uint8), np.arange(0, n * width + 1, width, dtype=np.int64)
    counts = np.stack([token_counts, act_counts], axis=1).astype("<u4")
    tok = (token_offsets - token_offsets[0]).tolist() if n else [0]
    act = (act_offsets - act_offsets[0]).tolist() if n else [0]
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(8 + 4 * token_counts + 8 * act_counts, out=starts[1:])
    return b"".join(b"".join((counts[i].tobytes(), lengths[tok[i]:tok[i + 1]].tobytes(),
                              values[act[i]:act[i + 1]].tobytes())) for i in range(n)), starts


def parse_neuron_name(name: str) -> tuple[int, int]:
    """"12_345" -> (12, 345); raises ValueError for anything else."""
    layer, sep, neuron = name.partition("_")
    if not sep:
        raise ValueError(f"not a layer_neuron name: {name!r}")
    return int(layer), int(neuron)


def neuron_name(layer: int, neuron: int) -> str:
    return f"{layer}_{neuron}"
