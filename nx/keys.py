"""Stable keys shared by ingest and explain: ``sequence_id`` and "L_N" neuron names.

``sequence_id`` identifies a token list *together with* its true activations (token lists
alone repeat: boilerplate text), so a scored sequence joins to the activation record it was
simulated from. It is the 8-byte BLAKE2b digest, as 16 hex digits, of: the token count
(uint32 LE), each token's UTF-8 length (uint32 LE), the concatenated UTF-8 tokens, and the
activations as float64 LE with null written as NaN. ``sequence_ids`` computes it for whole
Arrow arrays straight from their buffers; ``sequence_id`` is the same for one record.
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
    token_offsets = tokens.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    strings = tokens.values
    if strings.null_count:
        strings = pc.fill_null(strings, "")
    strings = strings.cast(pa.string())
    char_offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + len(strings) + 1]
    chars = memoryview(strings.buffers()[2] or b"")
    lengths = memoryview(np.diff(char_offsets).astype("<u4"))
    values = activations.values.cast(pa.float64())
    if values.null_count:
        values = pc.fill_null(values, float("nan"))
    values = values.to_numpy(zero_copy_only=False)
    values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern for every NaN
    floats = memoryview(np.ascontiguousarray(values, dtype="<f8"))
    # Plain ints and memoryview slices (no copies): this runs for every record ingested.
    tok = token_offsets.tolist()
    char_at = char_offsets[token_offsets].tolist()
    act = activations.offsets.to_numpy(zero_copy_only=False).tolist()
    counts = memoryview(np.diff(token_offsets).astype("<u4"))
    blake2b = hashlib.blake2b
    ids = []
    for i in range(len(tokens)):
        digest = blake2b(counts[i:i + 1], digest_size=8)
        digest.update(lengths[tok[i]:tok[i + 1]])
        digest.update(chars[char_at[i]:char_at[i + 1]])
        digest.update(floats[act[i]:act[i + 1]])
        ids.append(digest.hexdigest())
    return pa.array(ids, pa.string())


def parse_neuron_name(name: str) -> tuple[int, int]:
    """"12_345" -> (12, 345); raises ValueError for anything else."""
    layer, sep, neuron = name.partition("_")
    if not sep:
        raise ValueError(f"not a layer_neuron name: {name!r}")
    return int(layer), int(neuron)


def neuron_name(layer: int, neuron: int) -> str:
    return f"{layer}_{neuron}"
