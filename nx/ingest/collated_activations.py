"""Kind ``collated-activations``: NeuronRecord files -> ``neurons`` + ``activation_records``.

``flatten`` is pure: one parsed NeuronRecord in, rows out. Records keep their list position
(``rank``) and quantile bin, so ``rebuild`` gives back the same object: empty lists, a null
``random_sample_by_quantile``, unknown fields (the fork's ``dfa_values``) included.
"""
from __future__ import annotations

import threading
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nx import layout
from nx.ingest import extras, token_scan
from nx.ingest.decode import (MalformedFile, Refused, expect, expect_list, expect_number, expect_numbers,
                              expect_object, expect_strings)
from nx.ingest.rows import Rows
from nx.keys import sequence_ids

KIND = "collated-activations"
DIRECTORY, SUFFIX, TABLES, MAIN_TABLE = layout.KINDS[KIND][1:]  # declared in nx/layout.py
CHUNK = 128  # files read, converted and written at a time (a piece of a unit)
# A unit's files hold up to this many neurons (about 35 KB each in activation_records): a
# GPT-2 XL layer is then four files, which compaction leaves as they are.
UNIT_NEURONS = 1600
DERIVED = {"neurons": ("max_activation",), "activation_records": ("max_activation", "sequence_id")}

NEURON_FIELDS = ("neuron_id", "random_sample", "random_sample_by_quantile", "quantile_boundaries",
                 "mean", "variance", "skewness", "kurtosis", "most_positive_activation_records")
RECORD_FIELDS = ("tokens", "activations")
MOMENTS = ("mean", "variance", "skewness", "kurtosis")
NEURON_ID_OLDER_NAMES = {"layer": "layer_index", "idx": "neuron_index"}


def neuron_id_leftovers(value: object, layer: int, neuron: int, where: str) -> dict | None:
    """NeuronId leftovers; ids that disagree with the path (or are strings) are kept raw."""
    if value is None:
        return None
    neuron_id = extras.adopt(expect_object(value, where), NEURON_ID_OLDER_NAMES)
    left = extras.leftovers(neuron_id, ("layer_index", "neuron_index"), "NeuronId") or {}
    if neuron_id.get("layer_index") != layer or type(neuron_id.get("layer_index")) is not int:
        left["layer_index"] = neuron_id.get("layer_index")
    if neuron_id.get("neuron_index") != neuron or type(neuron_id.get("neuron_index")) is not int:
        left["neuron_index"] = neuron_id.get("neuron_index")
    return left or None


def restore_neuron_id(layer: int, neuron: int, left: dict | None) -> dict:
    left = dict(left or {})
    values = {"layer_index": left.pop("layer_index", layer), "neuron_index": left.pop("neuron_index", neuron)}
    return extras.restore(values, left, "NeuronId")


def _add_record_places(rows: Rows, neuron: int, sample: str, quantile: int | None, n: int,
                       record_extras: list) -> None:
    """The columns of ``n`` records of one list besides their tokens and activations: which
    neuron, list and place each came from, and its extras. Both paths use it."""
    table = rows.columns["activation_records"]
    table["neuron"].extend([neuron] * n)
    table["sample"].extend([sample] * n)
    table["quantile"].extend([quantile] * n)
    table["rank"].extend(range(n))
    table["extras"].extend(record_extras)


def _add_records(rows: Rows, neuron: int, records: list, sample: str, quantile: int | None, where: str) -> None:
    # Column-wise, one comprehension per column: this runs for every record of every neuron.
    n = len(records)
    if not all(type(r) is dict for r in records):
        bad = next(i for i, r in enumerate(records) if type(r) is not dict)
        expect(False, f"{where}[{bad}]: expected an ActivationRecord object")
    tokens = [r.get("tokens") for r in records]
    activations = [r.get("activations") for r in records]
    if not all(type(t) is list for t in tokens) or not all(type(a) is list for a in activations):
        bad = next(i for i in range(n) if type(tokens[i]) is not list or type(activations[i]) is not list)
        expect(False, f"{where}[{bad}]: tokens and activations must be lists")
    # All records' values at once (in C: Arrow's conversion, one type set); records are looked
    # at one by one only when something is off, for the reason's path (or to make big
    # integers floats). Arrow alone would take a boolean for 1.0.
    try:
        token_lists = pa.array(tokens, pa.list_(pa.string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        for i, values in enumerate(tokens):
            expect_strings(values, f"{where}[{i}].tokens")
        expect(False, f"{where}: tokens must be strings: {' '.join(str(exc).split())[:120]}")
    if not set(map(type, chain.from_iterable(activations))) <= {float}:
        activations = [expect_numbers(values, f"{where}[{i}].activations") for i, values in enumerate(activations)]
    if all(len(r) == 3 for r in records) and all(r.get("dataclass_name") == "ActivationRecord" for r in records):
        record_extras = [None] * n
    else:
        record_extras = [extras.dumps({"": extras.leftovers(r, RECORD_FIELDS, "ActivationRecord")}) for r in records]
    _add_record_places(rows, neuron, sample, quantile, n, record_extras)
    rows.add_arrow("activation_records", "tokens", token_lists)
    try:
        rows.add_arrow("activation_records", "activations", pa.array(activations, pa.list_(pa.float64())))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        expect(False, f"{where}: activations must be numbers: {' '.join(str(exc).split())[:120]}")


def flatten(obj: object, layer: int, neuron: int) -> tuple[Rows, dict | None]:
    record = expect_object(obj, "NeuronRecord")
    rows = Rows(TABLES)
    top = expect_list(record.get("most_positive_activation_records", []), "most_positive_activation_records")
    random = expect_list(record.get("random_sample", []), "random_sample")
    by_quantile = expect_list(record.get("random_sample_by_quantile"), "random_sample_by_quantile", nullable=True)
    boundaries = expect_numbers(record.get("quantile_boundaries"), "quantile_boundaries", nullable=True)
    moments = {name: expect_number(record.get(name), name) for name in MOMENTS}
    _add_records(rows, neuron, top, "top", None, "most_positive_activation_records")
    _add_records(rows, neuron, random, "random", None, "random_sample")
    for quantile, records in enumerate(by_quantile or []):
        _add_records(rows, neuron, expect_list(records, f"random_sample_by_quantile[{quantile}]"),
                     "quantile", quantile, f"random_sample_by_quantile[{quantile}]")
    rows.append(
        "neurons", neuron=neuron, quantile_boundaries=boundaries,
        top_count=len(top), random_count=len(random),
        quantile_count=None if by_quantile is None else len(by_quantile),
        extras=extras.dumps({
            "": extras.leftovers(record, NEURON_FIELDS, "NeuronRecord"),
            "neuron_id": neuron_id_leftovers(record.get("neuron_id"), layer, neuron, "neuron_id"),
        }),
        **moments,
    )
    return rows, None


# -- the fast paths --------------------------------------------------------------------------
# Collated activations are most of the public data's bytes (about 234 KB per neuron). A file
# exactly as the seed writes it is read whole by ``_record_scan.c`` in one pass (a third of
# the time simdjson, the record loop and the token scan below take together). For any other
# file in the seed serializer's canonical shape, simdjson hands each record's activations
# over as a float64 buffer and ``token_scan`` copies all token strings into one Arrow array:
# no Python float or str is made per value. Anything else (unknown keys, nulls, NaN literals,
# odd ids, \u escapes in tokens, values of another type) returns None and goes through orjson
# and ``flatten``, which keep every value or find the file malformed: both paths give the same
# rows for every file the fast path takes (tests/ingest/test_hostile_files.py holds them to it).
_CANONICAL_KEYS = frozenset((*NEURON_FIELDS, "dataclass_name"))
_NEURON_ID_KEYS = frozenset(("layer_index", "neuron_index", "dataclass_name"))


def flatten_bytes(data: bytes, layer: int, neuron: int) -> tuple[Rows, None] | None:
    if isinstance(data, Refused):
        return None  # decode gives the reason
    if _record_scan is not None:
        scanned = _record_scan.neuron_record(data, layer, neuron)
        if scanned is not None:
            return _scanned_rows(scanned, neuron), None
    try:
        return _flatten_canonical(data, _parse(data), layer, neuron)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError, MalformedFile, _NotCanonical):
        return None


try:  # built from _record_scan.c by ``pip install`` where a C compiler is at hand
    from nx.ingest import _record_scan
except ImportError:  # pragma: no cover - simdjson and the token scan below give the same rows
    _record_scan = None


def _scanned_rows(scanned: tuple, neuron: int) -> Rows:
    """The rows of a file ``_record_scan`` read whole (the same rows ``_flatten_canonical``
    makes of it): the records' buffers in row order, the counts, moments and boundaries."""
    chars, string_offsets, token_offsets, values, value_offsets, counts, moments, boundaries = scanned
    top, random, quantiles = counts
    n = len(token_offsets) // 4 - 1
    strings = pa.StringArray.from_buffers(len(string_offsets) // 4 - 1, pa.py_buffer(string_offsets),
                                          pa.py_buffer(chars))
    numbers = pa.Array.from_buffers(pa.float64(), len(values) // 8, [None, pa.py_buffer(values)])
    places = [("top", None, top), ("random", None, random),
              *(("quantile", quantile, count) for quantile, count in enumerate(quantiles or ()))]
    return _canonical_rows(
        neuron, places,
        pa.ListArray.from_buffers(pa.list_(pa.string()), n, [None, pa.py_buffer(token_offsets)], children=[strings]),
        pa.ListArray.from_buffers(pa.list_(pa.float64()), n, [None, pa.py_buffer(value_offsets)], children=[numbers]),
        boundaries, top, random, None if quantiles is None else len(quantiles), dict(zip(MOMENTS, moments)))


def _canonical_rows(neuron: int, places: list[tuple[str, int | None, int]], tokens: pa.ListArray,
                    activations: pa.ListArray, boundaries, top: int, random: int, quantile_count: int | None,
                    moments: dict) -> Rows:
    """The rows of a canonical file, however it was read: its records' places ((sample,
    quantile, count) in row order) and list columns, and its neurons row."""
    rows = Rows(TABLES)
    for sample, quantile, count in places:
        _add_record_places(rows, neuron, sample, quantile, count, [None] * count)
    rows.add_arrow("activation_records", "tokens", tokens)
    rows.add_arrow("activation_records", "activations", activations)
    rows.append("neurons", neuron=neuron, quantile_boundaries=boundaries, top_count=top, random_count=random,
                quantile_count=quantile_count, extras=None, **moments)
    return rows


_parsers = threading.local()


def _parse(data: bytes):
    """The simdjson document of ``data``, from this thread's parser: making a parser for each
    file cost a sixth of the parse. A parser whose last document is still referenced cannot
    parse again; a new one does then."""
    import simdjson  # imported here: only ingest workers need it

    parser = getattr(_parsers, "parser", None) or simdjson.Parser()
    _parsers.parser = parser
    try:
        return parser.parse(data)
    except RuntimeError:  # the last document is still held somewhere
        return simdjson.Parser().parse(data)


class _NotCanonical(Exception):
    pass


def _canonical_records(value) -> tuple[list, list]:
    """The records of a list, and each one's activations as a float64 buffer."""
    import simdjson

    if not isinstance(value, simdjson.Array):
        raise _NotCanonical
    records = list(value)
    activations = []
    for record in records:
        # three keys, two of them read here and the third by the token scan: exactly these
        if len(record) != 3 or record["dataclass_name"] != "ActivationRecord":
            raise _NotCanonical
        activations.append(memoryview(record["activations"].as_buffer(of_type="d")))
    return records, activations


def _flatten_canonical(data: bytes, document, layer: int, neuron: int) -> tuple[Rows, None]:
    if len(document) != len(_CANONICAL_KEYS) or set(document.keys()) != _CANONICAL_KEYS \
            or document["dataclass_name"] != "NeuronRecord":
        raise _NotCanonical
    neuron_id = document["neuron_id"]
    if (len(neuron_id) != 3 or set(neuron_id.keys()) != _NEURON_ID_KEYS
            or neuron_id["dataclass_name"] != "NeuronId"
            or type(neuron_id["layer_index"]) is not int or neuron_id["layer_index"] != layer
            or type(neuron_id["neuron_index"]) is not int or neuron_id["neuron_index"] != neuron):
        raise _NotCanonical
    # (a value of another type raises MalformedFile: the general path then says why)
    moments = {name: expect_number(document[name], name) for name in MOMENTS}
    boundaries = document["quantile_boundaries"]
    boundaries = None if boundaries is None else expect_numbers(boundaries.as_list(), "quantile_boundaries")
    by_quantile = document["random_sample_by_quantile"]
    groups = {"most_positive_activation_records": [("top", None, *_canonical_records(document["most_positive_activation_records"]))],
              "random_sample": [("random", None, *_canonical_records(document["random_sample"]))],
              "random_sample_by_quantile": []}
    quantile_count = None
    if by_quantile is not None:
        bins = list(by_quantile)
        quantile_count = len(bins)
        groups["random_sample_by_quantile"] = [("quantile", q, *_canonical_records(records))
                                               for q, records in enumerate(bins)]
    # rows go out top, random, quantiles; the file lists them in its own key order
    in_file_order = [group for key in document.keys() if key in groups for group in groups[key]]
    in_row_order = [group for key in groups for group in groups[key]]
    tokens = _token_lists(data, in_file_order, in_row_order)
    # simdjson's as_buffer flattens nested arrays ([[1.5]] reads as [1.5]): every '[' of the
    # text must open one of the arrays counted here or be inside a token
    arrays = 2 + (0 if boundaries is None else 1) + (0 if by_quantile is None else 1 + quantile_count) \
        + 2 * sum(len(group[2]) for group in in_row_order)
    if _count_brackets(data) != arrays + _count_brackets(_string_bytes(tokens.values)):
        raise _NotCanonical
    buffers = [buffer for _, _, _, activations in in_row_order for buffer in activations]
    offsets = np.zeros(len(buffers) + 1, dtype=np.int32)
    np.cumsum([b.nbytes // 8 for b in buffers], out=offsets[1:])
    values = np.frombuffer(b"".join(buffers), dtype=np.float64)
    places = [(sample, quantile, len(records)) for sample, quantile, records, _ in in_row_order]
    return _canonical_rows(neuron, places, tokens, pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
                           boundaries, len(groups["most_positive_activation_records"][0][2]),
                           len(groups["random_sample"][0][2]), quantile_count, moments), None


def _count_brackets(data) -> int:
    """How many '[' bytes ``data`` holds (numpy: bytes.count is several times slower)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord("[")))


def _string_bytes(strings: pa.StringArray) -> memoryview:
    """The UTF-8 bytes of all of a string array's values."""
    offsets = np.frombuffer(strings.buffers()[1], np.int32)[strings.offset:strings.offset + len(strings) + 1]
    data = strings.buffers()[2]
    return memoryview(data)[offsets[0]:offsets[-1]] if data is not None and len(strings) else memoryview(b"")


def _token_lists(data: bytes, in_file_order: list, in_row_order: list) -> pa.ListArray:
    """The records' token lists, in row order, from the file's bytes (a canonical file's
    records are each read once as a key, ``tokens``, followed by ``activations``)."""
    first, position = {}, 0  # index of each group's first record in file order
    for group in in_file_order:
        first[id(group)] = position
        position += len(group[2])
    order = [first[id(group)] + i for group in in_row_order for i in range(len(group[2]))]
    lists = token_scan.string_lists(data, b"tokens", b"activations", position, order)
    if lists is None:
        raise _NotCanonical
    return lists


def record_maxima(activations: pa.ListArray) -> np.ndarray:
    """Largest activation of each list (NaN where a list is empty or all null)."""
    offsets = activations.offsets.to_numpy(zero_copy_only=False)
    values = activations.values.cast(pa.float64())
    if values.null_count:
        values = values.fill_null(np.nan)
    values = values.to_numpy(zero_copy_only=False)
    values = values[offsets[0]:offsets[-1]]
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    maxima = np.full(len(lengths), np.nan)
    nonempty = lengths > 0
    if values.size:
        with np.errstate(invalid="ignore"):
            maxima[nonempty] = np.fmax.reduceat(values, starts[nonempty])
    return maxima


def derive(tables: dict[str, pa.Table], context: object = None) -> dict[str, pa.Table]:
    records = tables["activation_records"]
    # the columns' chunks (one per file) combined once: copying a piece's megabytes costs less
    # than numpy's and Arrow's calls on each file's chunk (0.04 ms against 0.2 ms a neuron)
    tokens, activations = records.column("tokens").combine_chunks(), records.column("activations").combine_chunks()
    maxima = record_maxima(activations)
    ids = sequence_ids(tokens, activations)
    records = records.append_column("max_activation", pa.array(maxima, pa.float64(), from_pandas=True))
    records = records.append_column("sequence_id", ids)
    neurons = tables["neurons"]
    neuron_ids = neurons.column("neuron").to_numpy()
    is_top = pc.equal(records.column("sample"), "top").to_numpy(zero_copy_only=False)
    top_neurons = records.column("neuron").to_numpy()[is_top]
    top_maxima = maxima[is_top]
    neuron_max = np.full(len(neuron_ids), np.nan)
    if len(neuron_ids):
        index = {n: i for i, n in enumerate(neuron_ids.tolist())}
        positions = np.fromiter((index[n] for n in top_neurons.tolist()), dtype=np.int64, count=len(top_neurons))
        np.fmax.at(neuron_max, positions, top_maxima)
    neurons = neurons.append_column("max_activation", pa.array(neuron_max, pa.float64(), from_pandas=True))
    return {"neurons": neurons, "activation_records": records}


def rebuild(rows: dict[str, list[dict]], layer: int, neuron: int, skeleton: dict | None = None) -> dict:
    """The NeuronRecord object back from its rows (one neuron's rows of both tables)."""
    (head,) = rows["neurons"]
    by_path = extras.loads(head["extras"])
    samples: dict[tuple[str, int | None], list] = {}
    for row in sorted(rows["activation_records"], key=lambda r: (r["sample"], r["quantile"] or 0, r["rank"])):
        left = extras.loads(row["extras"]).get("")
        samples.setdefault((row["sample"], row["quantile"]), []).append(
            extras.restore({"tokens": row["tokens"], "activations": row["activations"]}, left, "ActivationRecord"))
    quantile_count = head["quantile_count"]
    values = {
        "neuron_id": restore_neuron_id(layer, neuron, by_path.get("neuron_id")),
        "random_sample": samples.get(("random", None), []),
        "random_sample_by_quantile": None if quantile_count is None else
        [samples.get(("quantile", q), []) for q in range(quantile_count)],
        "quantile_boundaries": head["quantile_boundaries"],
        **{name: head[name] for name in MOMENTS},
        "most_positive_activation_records": samples.get(("top", None), []),
    }
    return extras.restore(values, by_path.get(""), "NeuronRecord")
