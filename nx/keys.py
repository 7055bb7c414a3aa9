"""Stable keys shared by ingest and explain: ``sequence_id`` and "L_N" neuron names.

``sequence_id`` is a 16-hex-digit BLAKE2b hash of a token list *together with* its true
activations (token lists alone repeat: boilerplate text), so a scored sequence joins to the
activation record it was simulated from. The bytes hashed are, in order: the token count
(uint32 LE), each token's UTF-8 length (uint32 LE), the concatenated UTF-8 tokens, and the
activations as float64 LE with null written as NaN. ``sequence_ids`` computes the same hash
from Arrow arrays without making Python objects per token.
"""
from __future__ import annotations

import hashlib
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def sequence_id(tokens: list[str], activations: list[float | None]) -> str:
    encoded = [(t or "").encode("utf-8") for t in tokens]
    lengths = np.fromiter((len(e) for e in encoded), dtype="<u4", count=len(encoded))
    values = np.array([np.nan if a is None else a for a in activations], dtype="<f8")
    digest = hashlib.blake2b(digest_size=8)
    digest.update(struct.pack("<I", len(encoded)))
    digest.update(lengths.tobytes())
    digest.update(b"".join(encoded))
    digest.update(values.tobytes())
    return digest.hexdigest()


def sequence_ids(tokens: pa.Array, activations: pa.Array) -> pa.Array:
    """``sequence_id`` of every row of two list arrays (list<string>, list<float64>)."""
    tokens = tokens.combine_chunks() if isinstance(tokens, pa.ChunkedArray) else tokens
    activations = activations.combine_chunks() if isinstance(activations, pa.ChunkedArray) else activations
    token_offsets = tokens.offsets.to_numpy(zero_copy_only=False)
    strings = pc.fill_null(tokens.values, "")
    string_offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + len(strings) + 1]
    string_bytes = memoryview(strings.buffers()[2] or b"")
    string_lengths = np.diff(string_offsets).astype("<u4")
    length_bytes = memoryview(string_lengths.tobytes())
    act_offsets = activations.offsets.to_numpy(zero_copy_only=False)
    act_values = pc.fill_null(activations.values.cast(pa.float64()), float("nan")).to_numpy(zero_copy_only=False)
    act_bytes = memoryview(np.ascontiguousarray(act_values, dtype="<f8").tobytes())
    blake2b = hashlib.blake2b
    pack = struct.Struct("<I").pack
    out = []
    for row in range(len(tokens)):
        first, last = token_offsets[row], token_offsets[row + 1]
        digest = blake2b(digest_size=8)
        digest.update(pack(last - first))
        digest.update(length_bytes[first * 4:last * 4])
        digest.update(string_bytes[string_offsets[first]:string_offsets[last]])
        digest.update(act_bytes[act_offsets[row] * 8:act_offsets[row + 1] * 8])
        out.append(digest.hexdigest())
    return pa.array(out, pa.string())


def parse_neuron_name(name: str) -> tuple[int, int]:
    """"12_345" -> (12, 345); raises ValueError for anything else."""
    layer, sep, neuron = name.partition("_")
    if not sep:
        raise ValueError(f"not a layer_neuron name: {name!r}")
    return int(layer), int(neuron)


def neuron_name(layer: int, neuron: int) -> str:
    return f"{layer}_{neuron}"
