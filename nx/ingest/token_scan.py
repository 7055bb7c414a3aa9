"""Token lists straight from the bytes of a compact JSON document to one Arrow array.

Collated activations hold about 8,000 tokens per neuron. Making a Python ``str`` of each,
then an Arrow array of those, then freeing them, cost more than parsing the whole file.
Here the token arrays' text is cut out of the document (from ``"tokens":[`` to the
``"],"activations":`` after it) and joined in the order the rows want; numpy then finds the quotes in that text, and deleting
the quotes, the commas between strings and the escapes' backslashes leaves the tokens'
bytes, one after another: an Arrow string array's data buffer. JSON strings are UTF-8
already (the parser that validated the document checked that), so only escapes need
decoding: the two-character ones (``\\n``, ``\\"``, ...) are decoded here; a ``\\u`` escape,
an element that is not a string, or whitespace between elements gives None (the caller
then reads the file the ordinary way). The same scan is compiled from ``_token_scan.c``
when a C compiler was there at install (about 5x faster); the tests hold both to the same
results.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

try:  # built from _token_scan.c by ``pip install`` where a C compiler is at hand
    from nx.ingest import _token_scan
except ImportError:  # pragma: no cover - the pure-Python scan below does the same, slower
    _token_scan = None
COMPILED = _token_scan is not None

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
# Byte after a backslash -> the byte it stands for (0: not a two-character escape).
_UNESCAPE = np.zeros(256, dtype=np.uint8)
for _escape, _byte in zip(b'nrtbf"\\/', b'\n\r\t\b\f"\\/'):
    _UNESCAPE[_escape] = _byte


def string_lists(data: bytes, key: bytes, next_key: bytes, expected: int,
                 order: list[int] | None = None) -> pa.ListArray | None:
    """The string arrays that are the values of ``key`` in the document, as one
    list<string> array: one list per occurrence of the key, in document order, or in
    ``order`` (a permutation of the occurrences' indices).

    The caller has parsed the document and knows that ``key`` occurs there ``expected``
    times, only as a key (as in a canonical NeuronRecord). Each array must be followed by
    ``next_key`` (the seed writes ``tokens`` then ``activations``). None when the text says
    otherwise (see the module's docstring). Runs compiled when ``_token_scan.c`` was built."""
    if order is not None and sorted(order) != list(range(expected)):
        raise ValueError("order must be a permutation of the lists")
    scan = _compiled_scan if COMPILED else _python_scan
    return scan(data, b'"' + key + b'":[', b'"],"' + next_key + b'":', expected, order)


def _compiled_scan(data: bytes, opening: bytes, closing: bytes, expected: int,
                   order: list[int] | None) -> pa.ListArray | None:
    rows = None if order is None else np.asarray(order, dtype=np.int32).tobytes()
    scanned = _token_scan.token_lists(data, opening, closing, expected, rows)
    if scanned is None:
        return None
    values, string_offsets, list_offsets = (pa.py_buffer(b) for b in scanned)
    strings = pa.StringArray.from_buffers(len(string_offsets) // 4 - 1, string_offsets, values)
    return pa.ListArray.from_buffers(pa.list_(pa.string()), expected, [None, list_offsets], children=[strings])


def _python_scan(data: bytes, opening: bytes, closing: bytes, expected: int,
                 order: list[int] | None) -> pa.ListArray | None:
    texts = _array_texts(data, opening, closing, expected)
    if texts is None:
        return None
    if order is not None:
        texts = [texts[i] for i in order]
    scanned = _strings(b",".join(t for t in texts if t))
    if scanned is None:
        return None
    strings, opening_quotes = scanned
    # each list's first string opens where its text starts in the joined text
    sizes = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    nonempty = sizes > 0
    starts = np.cumsum(sizes[nonempty] + 1) - (sizes[nonempty] + 1)
    first = np.searchsorted(opening_quotes, starts)
    if len(starts) and (first[-1] >= len(opening_quotes) or (opening_quotes[first] != starts).any()):
        return None
    counts = np.zeros(len(texts), dtype=np.int64)
    counts[nonempty] = np.diff(first, append=len(opening_quotes))
    offsets = np.zeros(len(texts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), strings)


def _array_texts(data: bytes, opening: bytes, closing: bytes, expected: int) -> list | None:
    """The text (a memoryview) of each of the ``expected`` arrays that start after
    ``opening`` and end where ``closing`` (a quote, the bracket, the next key) begins; None
    if the document has more or fewer such arrays. (An array followed by some other key gets
    a text running into the next array, which ``_strings`` rejects.)

    Both patterns only match real keys: a string's own quotes are escaped, and each
    pattern has a quote that follows a character other than a backslash."""
    view, texts = memoryview(data), []
    at = data.find(opening)
    while at >= 0:
        start = at + len(opening)
        if data[start:start + 1] == b"]":
            texts.append(b"")
            at = data.find(opening, start)
            continue
        end = data.find(closing, start)
        if end < 0:
            return None
        # An array followed by some other key makes ``end`` a later array's: its text then
        # holds that array's '"tokens":[', which ``_strings`` rejects (a string not followed
        # by a comma).
        texts.append(view[start:end + 1])
        at = data.find(opening, end)  # the next array
    return texts if len(texts) == expected else None


def _strings(text: bytes) -> tuple[pa.StringArray, np.ndarray] | None:
    """JSON strings written one after another, separated by single commas, as an Arrow
    string array (escapes decoded) and the positions of their opening quotes; None if
    ``text`` is anything else."""
    if not text:
        return pa.array([], pa.string()), np.zeros(0, dtype=np.int64)
    buffer = np.frombuffer(text, dtype=np.uint8)
    quotes = np.flatnonzero(buffer == _QUOTE)
    introducers = _escape_introducers(np.flatnonzero(buffer == _BACKSLASH))
    escaped_quotes = introducers[buffer[introducers + 1] == _QUOTE] + 1
    if len(escaped_quotes):
        keep = np.ones(len(quotes), dtype=bool)
        keep[np.searchsorted(quotes, escaped_quotes)] = False
        quotes = quotes[keep]
    if len(quotes) % 2 or quotes[0] != 0 or quotes[-1] != len(buffer) - 1:
        return None
    count = len(quotes) // 2
    opening, closing = quotes[0::2], quotes[1::2]
    if not (opening[1:] - closing[:-1] == 2).all() or not (buffer[closing[:-1] + 1] == ord(",")).all():
        return None  # something between two strings besides one comma
    lengths = closing - opening - 1
    kept = np.ones(len(buffer), dtype=bool)  # all but the quotes, the commas between, the escapes' backslashes
    kept[quotes] = False
    kept[closing[:-1] + 1] = False
    if len(introducers):
        decoded = _UNESCAPE[buffer[introducers + 1]]
        if not decoded.all():
            return None  # a \\uXXXX escape: not decoded here
        buffer = buffer.copy()
        buffer[introducers + 1] = decoded
        kept[introducers] = False
        lengths -= np.bincount(np.searchsorted(opening, introducers) - 1, minlength=count)
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(np.compress(kept, buffer))), opening


def _escape_introducers(backslashes: np.ndarray) -> np.ndarray:
    """The backslashes (positions) that start an escape: in a run of backslashes, the 1st,
    3rd, ... (``\\\\`` is one escaped backslash). Backslashes only occur inside strings."""
    if not len(backslashes) or not (np.diff(backslashes) == 1).any():
        return backslashes  # no two in a row: each starts an escape
    run_starts = np.ones(len(backslashes), dtype=bool)
    run_starts[1:] = backslashes[1:] != backslashes[:-1] + 1
    first_of_run = np.flatnonzero(run_starts)[np.cumsum(run_starts) - 1]
    return backslashes[(np.arange(len(backslashes)) - first_of_run) % 2 == 0]
