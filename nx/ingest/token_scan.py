"""Token lists straight from the bytes of a compact JSON document to one Arrow array.

Collated activations hold about 8,000 tokens per neuron. Making a Python ``str`` of each,
then an Arrow array of those, then freeing them, cost more than parsing the whole file. Here
numpy finds every string of the document at once, and Arrow copies the bytes of the ones
that are array elements into one buffer. JSON strings are UTF-8 already (the parser that
validated the document checked that), so only escapes need decoding: the two-character ones
(``\\n``, ``\\"``, ...) are decoded here; a ``\\u`` escape in an element gives None (the caller
then reads the file the ordinary way), as does JSON with whitespace around strings.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def _byte_set(characters: str) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[[ord(c) for c in characters]] = True
    return table


# In compact JSON a string follows one of "{[,:" and is followed by one of ":,]}"; it is an
# array element when it follows "[" or "," and is followed by "," or "]" (a key follows
# "{" or "," but is followed by ":").
_BEFORE_STRING, _AFTER_STRING = _byte_set("{[,:"), _byte_set(":,]}")
_OPENS_ELEMENT, _CLOSES_ELEMENT = _byte_set("[,"), _byte_set(",]")
# Byte after a backslash -> the byte it stands for (0: not a two-character escape).
_UNESCAPE = np.zeros(256, dtype=np.uint8)
for _escape, _byte in zip(b'nrtbf"\\/', b'\n\r\t\b\f"\\/'):
    _UNESCAPE[_escape] = _byte


def string_lists(data: bytes, lengths: list[int], order: list[int] | None = None) -> pa.ListArray | None:
    """The strings that are array elements in the document (a string after ``[`` or ``,``
    and before ``,`` or ``]``), cut into consecutive lists of ``lengths``, as one
    list<string> array; in document order, or in ``order`` (a permutation of the lists).

    The caller knows from its parser that the document's only string arrays are these lists
    and how long each is. None when the strings do not add up to ``lengths`` (a list holds
    a non-string) or the document is not written compactly."""
    doc = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(doc == _QUOTE)
    introducers = _escape_introducers(_backslashes(data, doc))
    if len(introducers):
        escaped_quotes = introducers[doc[introducers + 1] == _QUOTE] + 1
        if len(escaped_quotes):
            keep = np.ones(len(quotes), dtype=bool)
            keep[np.searchsorted(quotes, escaped_quotes)] = False
            quotes = quotes[keep]
    if len(quotes) % 2 or (len(quotes) and (quotes[0] == 0 or quotes[-1] + 1 >= len(doc))):
        return None
    starts, ends = quotes[0::2] + 1, quotes[1::2]
    before, after = doc[starts - 2], doc[ends + 1]
    if not (_BEFORE_STRING[before].all() and _AFTER_STRING[after].all()):
        return None  # whitespace around strings: not compact
    is_element = _OPENS_ELEMENT[before] & _CLOSES_ELEMENT[after]
    starts, ends = starts[is_element], ends[is_element]
    counts = np.asarray(lengths, dtype=np.int64)
    if len(starts) != counts.sum():
        return None
    picked = np.arange(len(starts))  # the strings in document order ...
    if order is not None:  # ... or list by list in the order asked
        order = np.asarray(order, dtype=np.int64)
        if np.sort(order).tolist() != list(range(len(counts))):
            raise ValueError("order must be a permutation of the lists")
        first = np.cumsum(counts) - counts
        counts = counts[order]
        picked = picked - np.repeat(np.cumsum(counts) - counts - first[order], counts)
    strings = _gather(doc, starts, ends, picked, introducers)
    if strings is None:
        return None
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), strings)


def _backslashes(data: bytes, doc: np.ndarray, few: int = 4096) -> np.ndarray:
    """Positions of every backslash: found one by one (memchr) while they are few, as they
    are in token text; by numpy over the whole document when there are many."""
    found, at = [], data.find(b"\\")
    while at >= 0:
        if len(found) == few:
            return np.flatnonzero(doc == _BACKSLASH)
        found.append(at)
        at = data.find(b"\\", at + 1)
    return np.array(found, dtype=np.int64)


def _escape_introducers(backslashes: np.ndarray) -> np.ndarray:
    """The backslashes (positions) that start an escape: in a run of backslashes, the 1st,
    3rd, ... (``\\\\`` is one escaped backslash). Backslashes only occur inside strings."""
    if not len(backslashes):
        return backslashes
    run_starts = np.ones(len(backslashes), dtype=bool)
    run_starts[1:] = backslashes[1:] != backslashes[:-1] + 1
    first_of_run = np.flatnonzero(run_starts)[np.cumsum(run_starts) - 1]
    return backslashes[(np.arange(len(backslashes)) - first_of_run) % 2 == 0]


def _gather(doc: np.ndarray, starts: np.ndarray, ends: np.ndarray, picked: np.ndarray,
            introducers: np.ndarray) -> pa.StringArray | None:
    """The byte spans ``[starts[i], ends[i])`` of ``doc`` for i in ``picked``, as one string
    array, escapes decoded.

    The spans and the gaps between them are a zero-copy Arrow view of the document; taking
    the picked spans copies their bytes into a new array in one C++ call. Escapes are then
    decoded in that copy: each introducing backslash is dropped, the byte after it replaced."""
    if len(doc) >= 2**31:
        return None
    if not len(picked):
        return pa.array([], pa.string())
    bounds = np.empty(2 * len(starts), dtype=np.int32)
    bounds[0::2], bounds[1::2] = starts, ends
    view = pa.StringArray.from_buffers(len(bounds) - 1, pa.py_buffer(bounds), pa.py_buffer(doc))
    strings = view.take(pa.array(2 * picked.astype(np.int32)))
    if not len(introducers):
        return strings
    owner = np.searchsorted(starts, introducers, side="right") - 1
    inside = (owner >= 0) & (introducers < ends[np.maximum(owner, 0)])
    introducers, owner = introducers[inside], owner[inside]
    if not len(introducers):
        return strings
    decoded = _UNESCAPE[doc[introducers + 1]]
    if not decoded.all():
        return None  # a \\uXXXX escape: not decoded here
    place = np.empty(len(starts), dtype=np.int64)  # span -> its index in ``strings``
    place[picked] = np.arange(len(picked))
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[:len(strings) + 1]
    values = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[:offsets[-1]].copy()
    at = offsets[place[owner]] + (introducers - starts[owner])  # the introducers' places in ``values``
    owner = place[owner]
    values[at + 1] = decoded
    keep = np.ones(len(values), dtype=bool)
    keep[at] = False
    removed = np.zeros(len(offsets), dtype=np.int32)
    np.cumsum(np.bincount(owner, minlength=len(strings)), out=removed[1:])
    return pa.StringArray.from_buffers(len(strings), pa.py_buffer(offsets - removed), pa.py_buffer(values[keep]))
