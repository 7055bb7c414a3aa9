"""The compiled reader of canonical NeuronRecords (nx/ingest/_record_scan.c): every file it
reads gives the same rows, bit for bit, as its twin (simdjson and the token scan, what runs
where it was not built); every file it does not read is left to that twin."""
from __future__ import annotations

import random
import struct
from decimal import Decimal

import numpy as np
import orjson
import pytest

import cases
from nx.ingest import collated_activations as kind
from nx.ingest.decode import MalformedFile, decode

pytestmark = pytest.mark.skipif(kind._record_scan is None,
                                reason="nx/ingest/_record_scan.c was not built (no C compiler at install)")


def as_tables(rows):
    return {t: rows.to_arrow(t, kind.DERIVED[t]) for t in kind.TABLES}


def scanned(data: bytes, layer: int = 0, neuron: int = 1):
    found = kind._record_scan.neuron_record(data, layer, neuron)
    return None if found is None else as_tables(kind._scanned_rows(found, neuron))


def twin(data: bytes, layer: int = 0, neuron: int = 1):
    """The rows without the compiled reader: simdjson's path, else orjson's; None if malformed."""
    try:
        found = kind._flatten_canonical(data, kind._parse(data), layer, neuron)
    except Exception:  # noqa: BLE001  not canonical to simdjson's path either
        try:
            found = kind.flatten(decode(data)[0], layer, neuron)
        except MalformedFile:
            return None
    return as_tables(found[0])


def bits(value):
    """A table's rows with every float as its 8 bytes (-0.0 and 0.0 differ, as stored)."""
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, list):
        return [bits(v) for v in value]
    if isinstance(value, dict):
        return {k: bits(v) for k, v in value.items()}
    return value


def assert_same(found: dict, expected: dict) -> None:
    for table in kind.TABLES:
        assert found[table].schema == expected[table].schema
        assert bits(found[table].to_pylist()) == bits(expected[table].to_pylist()), table


def record_text(tokens, numbers: list[str], name_first: bool = False) -> bytes:
    body = b'"tokens":' + orjson.dumps(tokens) + b',"activations":[' + ",".join(numbers).encode() + b"]"
    name = b'"dataclass_name":"ActivationRecord"'
    return b"{" + (name + b"," + body if name_first else body + b"," + name) + b"}"


def neuron_text(top: list[bytes], random_sample: list[bytes] = (), quantiles: list[list[bytes]] | None = None,
                boundaries: str = "null", moments=("0.5", "null", "-1.25", "3e2")) -> bytes:
    def listed(records):
        return b"[" + b",".join(records) + b"]"
    by_quantile = b"null" if quantiles is None else b"[" + b",".join(listed(q) for q in quantiles) + b"]"
    return (b'{"neuron_id":{"layer_index":0,"neuron_index":1,"dataclass_name":"NeuronId"},'
            b'"random_sample":' + listed(random_sample) + b',"random_sample_by_quantile":' + by_quantile +
            b',"quantile_boundaries":' + boundaries.encode() +
            b"".join(b',"%s":%s' % (name.encode(), value.encode()) for name, value in zip(kind.MOMENTS, moments)) +
            b',"most_positive_activation_records":' + listed(top) + b',"dataclass_name":"NeuronRecord"}')


def numbers_document(numbers: list[str]) -> bytes:
    records = [record_text(["a"] * len(numbers[i:i + 64]), numbers[i:i + 64]) for i in range(0, len(numbers), 64)]
    return neuron_text(records[:1], records[1:2], [records[2:]])


@pytest.mark.parametrize("record", [
    cases.realistic_neuron_record(0, 1, seed=5),
    cases.neuron_record(0, 1, n_quantiles=0, seed=3),
    cases.neuron_record(0, 1, n_top=0, n_random=0, n_quantiles=3, per_quantile=0),
    dict(cases.neuron_record(0, 1, seed=4), random_sample_by_quantile=None, quantile_boundaries=None),
    dict(cases.neuron_record(0, 1, seed=6), mean=None, kurtosis=None, quantile_boundaries=[]),
    dict(reversed(list(cases.neuron_record(0, 1, seed=7).items()))),  # keys in another order
], ids=["realistic", "no-quantiles", "empty-lists", "null-quantiles", "null-moments", "reordered"])
def test_a_seed_file_is_read_whole_with_its_twins_rows(record):
    data = cases.dumps(record)
    found = scanned(data)
    assert found is not None
    assert_same(found, twin(data))
    assert kind.flatten_bytes(data, 0, 1) is not None


def test_quirky_tokens_are_read_as_the_twin_reads_them():
    rng = random.Random(3)
    quirks = list(cases.HARD_TOKENS) + ["é", "🙂", "\\n", '\\"', "/", "\x7f", "]", '","', "tokens"]
    record = cases.neuron_record(0, 1, n_top=6, n_random=4, n_quantiles=2, per_quantile=2, n_tokens=8)
    for r in record["most_positive_activation_records"] + record["random_sample"]:
        r["tokens"] = ["".join(rng.choice(quirks) for _ in range(rng.randint(0, 3))) for _ in r["tokens"]]
    data = cases.dumps(record)
    found = scanned(data)
    assert found is not None
    assert_same(found, twin(data))


def test_a_record_may_name_its_class_first():
    data = neuron_text([record_text(["a", "b"], ["0.5", "1.5"], name_first=True)],
                       [record_text(["c"], ["2.5"])])
    found = scanned(data)
    assert found is not None and found["activation_records"].column("tokens").to_pylist() == [["a", "b"], ["c"]]
    assert_same(found, twin(data))


def _numbers(rng: random.Random) -> list[str]:
    """Decimal texts of every shape the seed (and other writers) give, hard roundings included."""
    texts = ["0.0", "-0.0", "0e0", "-0e-5", "1E5", "1e+5", "1e-5", "0.000000000000000000000000001234",
             "123456789012345678.5", "9007199254740993.0", "9007199254740992.0", "9007199254740995.0",
             "1.7976931348623157e308", "2.2250738585072014e-308", "0.1", "0.3", "2.5e-30", "7.0e27",
             "1234567890123456789012345.0", "0.00000000000000000000000000000000000000001e40"]
    for _ in range(3000):
        x = rng.uniform(-10, 10) * 10.0 ** rng.randint(-8, 3)
        texts.append(repr(float(np.float32(x))))  # float32 values written as float64, like the public files
        texts.append(repr(x))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 24)))
        point = rng.randint(1, len(digits))
        head = digits[:point].lstrip("0") or "0"
        text = rng.choice(["", "-"]) + head + "." + (digits[point:] or "0")
        if rng.random() < 0.3:
            text += rng.choice(["e", "E"]) + rng.choice(["", "+", "-"]) + str(rng.randint(0, 30))
        texts.append(text)
        # halfway between two doubles, exactly and to 19 significant digits either side
        low = rng.uniform(0.001, 1000.0)
        middle = (Decimal(low) + Decimal(float(np.nextafter(low, np.inf)))) / 2
        texts.append(format(middle, "f"))
        near = format(middle, ".18e")
        mantissa, exponent = near.split("e")
        last = Decimal(1).scaleb(int(exponent) - 18)
        for step in (-1, 0, 1):
            texts.append(format(Decimal(mantissa).scaleb(int(exponent)) + step * last, "f"))
    return texts


def test_numbers_are_the_nearest_double_as_python_and_simdjson_read_them():
    texts = _numbers(random.Random(11))
    data = numbers_document(texts)
    found = scanned(data)
    assert found is not None
    values = found["activation_records"].column("activations").combine_chunks().values.to_numpy()
    expected = np.array([float(t) for t in texts])
    assert values.view(np.uint64).tolist() == expected.view(np.uint64).tolist()
    assert_same(found, twin(data))


@pytest.mark.parametrize("number", ["1e-310", "1e-400", "1e400", "-1e309", "1", "-0", "12", "null", "true",
                                    "01.5", "1.", ".5", "1e", "+1.5", "0x10", "NaN", "Infinity", "1.5.5"])
def test_a_number_it_does_not_read_leaves_the_file_to_the_twin(number):
    data = numbers_document(["0.5", number, "1.5"])
    assert scanned(data) is None
    kept = kind.flatten_bytes(data, 0, 1)
    expected = twin(data)
    if kept is None:
        return  # the general path reads it (or finds it malformed) in the unit
    assert_same(as_tables(kept[0]), expected)


SEED = cases.dumps(cases.neuron_record(0, 1, n_top=3, n_random=2, n_quantiles=2, per_quantile=1, n_tokens=3))


@pytest.mark.parametrize("change", [
    lambda d: d.replace(b'"tokens":[', b'"tokens": [', 1),                        # whitespace inside
    lambda d: d.replace(b',"dataclass_name":"ActivationRecord"}', b',"dataclass_name":"ActivationRecord","x":1}', 1),
    lambda d: d.replace(b'"mean":', b'"average":', 1),                            # an unknown key, one missing
    lambda d: d.replace(b'"neuron_index":1', b'"neuron_index":2', 1),             # another neuron's file
    lambda d: d.replace(b'"layer_index":0', b'"layer_index":0.0', 1),
    lambda d: d.replace(b'"dataclass_name":"NeuronRecord"', b'"dataclass_name":"NeuronRecorder"', 1),
    lambda d: d.replace(b'"tokens":["', b'"tokens":["\\u0041', 1),                 # a \u escape
    lambda d: d.replace(b'"tokens":["', b'"tokens":["\x01', 1),                    # a raw control character
    lambda d: d.replace(b'"tokens":["', b'"tokens":["\xff', 1),                    # not UTF-8
    lambda d: d.replace(b'"tokens":["', b'"tokens":["\xed\xa0\x80', 1),            # a UTF-8 surrogate
    lambda d: d.replace(b'"tokens":["', b'"tokens":["\xc0\xaf', 1),                # an overlong encoding
    lambda d: d.replace(b'"tokens":["', b'"tokens":[1,"', 1),                      # a token that is not a string
    lambda d: d.replace(b'"activations":[', b'"activations":[[1.5],', 1),          # nested activations
    lambda d: d.replace(b'"random_sample":[', b'"random_sample":null,"x":[', 1),
    lambda d: d.replace(b'"quantile_boundaries":[', b'"quantile_boundaries":[null,', 1),
    lambda d: d[:-1],                                                              # cut short
    lambda d: d + b"x",                                                            # trailing garbage
    lambda d: d[:-1] + b',"mean":1.5}',                                            # a key twice
    lambda d: d.replace(b'"activations":[', b'"activations":[1.5', 1),             # two numbers run together
], ids=lambda f: str(f.__code__.co_firstlineno))
def test_a_file_not_exactly_as_the_seed_writes_it_is_left_to_the_twin(change):
    data = change(SEED)
    assert data != SEED
    assert scanned(data) is None
    kept = kind.flatten_bytes(data, 0, 1)
    expected = twin(data)
    if kept is not None:
        assert expected is not None
        assert_same(as_tables(kept[0]), expected)


def test_whitespace_around_the_document_is_read():
    found = scanned(b" \n" + SEED + b"\r\n\t ")
    assert found is not None
    assert_same(found, twin(SEED))


def test_a_unit_gives_the_same_rows_with_and_without_the_compiled_reader(monkeypatch):
    records = [cases.dumps(cases.neuron_record(0, n, n_top=4, n_random=3, n_quantiles=2, per_quantile=2, seed=n))
               for n in range(1, 6)]
    with_reader = [as_tables(kind.flatten_bytes(d, 0, n)[0]) for n, d in enumerate(records, 1)]
    monkeypatch.setattr(kind, "_record_scan", None)
    for n, (data, found) in enumerate(zip(records, with_reader), 1):
        assert_same(found, as_tables(kind.flatten_bytes(data, 0, n)[0]))
