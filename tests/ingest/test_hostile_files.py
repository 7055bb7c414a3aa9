"""One bad file never stops a run: hostile files are malformed with a one-line reason, special
files are not read, names that are not neuron numbers are not neurons, and the fast and the
general path read every file the same way."""
from __future__ import annotations

import functools
import http.server
import json
import math
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import orjson
import pytest

import cases
from ingest_helpers import log_rows
from nx.ingest import collated_activations, decode, explanations, source as source_module
from nx.ingest.decode import MAX_DEPTH, MalformedFile, Refused
from nx.ingest.kinds import KINDS, kind_module
from nx.ingest.runner import plan_kind
from nx.ingest.source import MAX_FILE_BYTES, Missing, Source, parse_number
from nx.warehouse import Warehouse

try:
    from tests.azurite import azurite  # noqa: F401  (the fixture)
except ImportError:
    from azurite import azurite  # noqa: F401

CHILD_SECONDS = 60
CHILD_MEMORY = 16 * 2 ** 30  # more address space a child may take: reading /dev/zero stops there (delta-rs maps GBs of address space it never touches)


def _limit_memory() -> None:
    """Let this process map at most CHILD_MEMORY more than it has (not the machine's all)."""
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + CHILD_MEMORY, hard))


def every_hard_case(kind: str) -> dict:
    """The kind's every-hard-case object, small enough to swap each of its values in turn."""
    if kind == "collated-activations":
        return cases.neuron_record(0, 1, n_top=8, n_random=2, n_quantiles=3, per_quantile=1, n_tokens=3, hard=2)
    if kind == "explanations":
        return cases.simulation_results(0, 1, cases.neuron_record(0, 1, n_top=20, n_random=15, n_tokens=3), hard=1)
    if kind == "related-neurons":
        return cases.related_neurons(1, 1, n=2, n_layers=3)
    if kind == "token-lookups":
        return cases.token_lookup(0, 1, n=5, hard=True)
    return cases.token_weights(0, 1, n=3, hard=True)


def flattened(kind: str, obj: object) -> dict | None:
    """The kind's tables for ``obj`` as a unit makes them (flatten, Arrow, derive); None if
    the file is malformed. Any other exception fails the test."""
    module = kind_module(kind)
    try:
        rows, skeleton = module.flatten(obj, 0, 1)
    except MalformedFile as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    json.dumps(skeleton)  # the file log holds it as JSON
    tables = {t: rows.to_arrow(t, module.DERIVED.get(t, ())) for t in module.TABLES}
    if hasattr(module, "derive"):
        module.derive(tables, None)
    return tables


def general_path(data: bytes) -> dict | None:
    try:
        obj, _ = decode.decode(data)
    except MalformedFile:
        return None
    return flattened("collated-activations", obj)


def fast_path(data: bytes) -> dict | None:
    found = collated_activations.flatten_bytes(data, 0, 1)
    if found is None:
        return None
    rows, _ = found
    return {t: rows.to_arrow(t, collated_activations.DERIVED[t]) for t in collated_activations.TABLES}


def rows_of(tables: dict) -> dict:
    return {t: table.to_pylist() for t, table in tables.items()}


def in_child(function, *args):
    """``function(*args)`` in a forked child with bounded memory and time: what it returns, or
    an AssertionError when it hung or ran out of memory (as reading a FIFO or /dev/zero does)."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def run():
        _limit_memory()
        try:
            send.send(("ok", function(*args)))
        except BaseException as exc:  # noqa: BLE001  reported to the parent
            send.send(("error", f"{type(exc).__name__}: {exc}"))

    child = context.Process(target=run)
    child.start()
    try:
        if not receive.poll(CHILD_SECONDS):
            raise AssertionError(f"{function.__name__} did not return within {CHILD_SECONDS} s")
        status, value = receive.recv()
    finally:
        child.kill()
        child.join()
    assert status == "ok", value
    return value


# -- nesting ----------------------------------------------------------------------------------
def test_a_hundred_thousand_brackets_are_malformed_not_a_recursion_error():
    with pytest.raises(MalformedFile, match=f"nested deeper than {MAX_DEPTH} levels"):
        decode.decode(b"[" * 100_000)
    with pytest.raises(MalformedFile, match="nested deeper"):
        decode.decode(b'{"a":' * 5000 + b"1" + b"}" * 5000)
    assert collated_activations.flatten_bytes(b"[" * 100_000, 0, 1) is None


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_field_nested_a_thousand_deep_is_malformed(kind):
    data = cases.with_deep_field(every_hard_case(kind), 1000)
    obj, _ = decode.decode(data)  # orjson reads up to 1,024 levels
    with pytest.raises(MalformedFile, match="nested deeper"):
        kind_module(kind).flatten(obj, 0, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_field_within_the_depth_limit_is_kept(kind):
    obj, _ = decode.decode(cases.with_deep_field(every_hard_case(kind), MAX_DEPTH - 4))
    tables = flattened(kind, obj)
    assert tables is not None


def test_an_unknown_field_nested_deep_inside_a_record_is_malformed():
    record = every_hard_case("collated-activations")
    record["most_positive_activation_records"][0]["dfa_values"] = cases.nested(MAX_DEPTH + 10)
    assert flattened("collated-activations", record) is None


# -- types ------------------------------------------------------------------------------------
def test_true_activations_given_as_a_number_is_malformed():
    results = every_hard_case("explanations")
    sequence = results["scored_explanations"][0]["scored_simulation"]["scored_sequence_simulations"][0]
    sequence["true_activations"] = 1.5
    with pytest.raises(MalformedFile, match=r"scored_sequence_simulations\[0\]\.true_activations: expected a list"):
        explanations.flatten(results, 0, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_any_value_of_the_wrong_type_makes_the_file_malformed_and_nothing_else(kind):
    """Every value swapped for every other JSON type (and removed): the file is malformed or
    read; its rows always convert to the tables' types."""
    accepted = refused = 0
    for path, swap, changed in cases.type_swapped(every_hard_case(kind)):
        try:
            tables = flattened(kind, changed)
        except Exception as exc:  # noqa: BLE001  the assertion names the case
            raise AssertionError(f"{kind}: {swap} at {path}: {type(exc).__name__}: {exc}") from exc
        accepted += tables is not None
        refused += tables is None
    assert accepted and refused


@pytest.mark.parametrize("swap", ["true", "false", "numeric string", "empty object", "nested list"])
def test_a_number_of_another_type_in_any_kind_is_malformed(swap):
    value = cases.TYPE_SWAPS[swap]
    record = every_hard_case("collated-activations")
    record["most_positive_activation_records"][1]["activations"][2] = value
    lookup = dict(every_hard_case("token-lookups"))
    lookup["average_activations"] = [value] + lookup["average_activations"][1:]
    weights = every_hard_case("token-weights")
    weights["output_negative"]["strengths"][0] = value
    for kind, obj in (("collated-activations", record), ("token-lookups", lookup), ("token-weights", weights)):
        with pytest.raises(MalformedFile, match="expected a number"):
            kind_module(kind).flatten(obj, 0, 1)


def test_a_lone_surrogate_is_malformed_and_a_pair_is_read():
    with pytest.raises(MalformedFile, match="surrogate"):
        decode.decode(b'{"tokens": ["\\ud800"], "average_activations": [NaN]}')
    obj, note = decode.decode(b'{"tokens": ["\\ud83d\\ude00"], "average_activations": [NaN]}')
    assert obj["tokens"] == ["\U0001F600"] and note == decode.NON_STRICT_NOTE


def test_fast_and_general_path_agree_on_every_type_swap():
    """Each swapped NeuronRecord, serialized as the seed would: the fast path either leaves
    it to the general one or gives the same rows."""
    taken = 0
    canonical = cases.neuron_record(0, 1, n_top=4, n_random=2, n_quantiles=2, per_quantile=1, n_tokens=3)
    assert fast_path(orjson.dumps(canonical)) is not None
    for path, swap, changed in cases.type_swapped(canonical):
        data = _serialized(changed)
        fast = fast_path(data)
        if fast is not None:
            taken += 1
            general = general_path(data)
            assert general is not None and rows_of(fast) == rows_of(general), f"{swap} at {path}"
    assert taken


def test_nested_activations_are_not_flattened_by_the_fast_path():
    record = cases.neuron_record(0, 1, n_top=3, n_random=2, n_tokens=3)
    record["random_sample"][1]["activations"] = [[1.5], [2.5], [3.5]]
    data = orjson.dumps(record)
    assert fast_path(data) is None and general_path(data) is None


# -- big integers -----------------------------------------------------------------------------
def test_a_big_integer_activation_is_the_same_float64_on_both_paths():
    record = cases.neuron_record(0, 1, n_top=3, n_random=2, n_tokens=4)
    record["most_positive_activation_records"][0]["activations"][1] = 12345678901234567
    record["random_sample"][0]["activations"][0] = 18446744073709551615  # beyond int64, within 64 bits
    record["mean"] = 12345678901234567
    canonical = orjson.dumps(record)
    fast, general = fast_path(canonical), general_path(canonical)
    assert fast is not None and general is not None and rows_of(fast) == rows_of(general)
    # the same value in a file only the general path reads (an unknown key)
    other = general_path(orjson.dumps(dict(record, provenance="elsewhere")))
    assert other["activation_records"].column("activations").to_pylist() == \
        fast["activation_records"].column("activations").to_pylist()
    values = fast["activation_records"].column("activations").to_pylist()
    assert values[0][1] == 1.2345678901234568e16 == float(12345678901234567)
    assert fast["neurons"].column("mean").to_pylist() == [1.2345678901234568e16]


def test_integers_beyond_float64_become_infinite_like_an_overflowing_literal():
    digits = b"1" + b"0" * 400
    lookup = b'{"tokens": ["a", "b", "c"], "average_activations": [%s, -%s, 1e400]}' % (digits, digits)
    obj, _ = decode.decode(lookup)
    tables = flattened("token-lookups", obj)
    assert tables["token_lookups"].column("average_activation").to_pylist() == [math.inf, -math.inf, math.inf]


@pytest.mark.parametrize("kind, change", [
    ("explanations", lambda r: r["scored_explanations"][0]["scored_simulation"].update(ev_correlation_score=2 ** 60 + 1)),
    ("related-neurons", lambda r: r["c_fc"]["top_positive_weights"].__setitem__(0, 2 ** 60 + 1)),
    ("token-weights", lambda r: r["input_positive"]["strengths"].__setitem__(0, 2 ** 60 + 1)),
])
def test_big_integers_are_read_as_float64_in_every_kind(kind, change):
    obj = every_hard_case(kind)
    change(obj)
    tables = flattened(kind, decode.decode(orjson.dumps(obj))[0])
    assert tables is not None
    values = [v for t in tables.values() for column in t.columns if column.type == "double"
              for v in column.to_pylist()]
    assert float(2 ** 60 + 1) in values


# -- special files and sizes --------------------------------------------------------------------
def _fetch(root: str, relative: str):
    value = Source(root).fetch([relative])[relative]
    if isinstance(value, Refused):
        return ("refused", value.reason)
    return ("missing", str(value)) if isinstance(value, Missing) else ("bytes", len(value))


@pytest.fixture
def special_files():
    """A FIFO, a symlink to /dev/zero, a socket, a directory and a sparse file over the size
    limit, named like neuron files (a short path: a socket's name has at most 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="nx-special-"))
    layer = root / "collated-activations" / "0"
    layer.mkdir(parents=True)
    os.mkfifo(layer / "2.json")
    (layer / "3.json").symlink_to("/dev/zero")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(layer / "4.json"))
    (layer / "5.json").mkdir()
    with open(layer / "6.json", "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    (layer / "7.json").write_bytes(b"{}")
    (layer / "8.json").symlink_to(layer / "7.json")
    yield str(root)
    server.close()
    subprocess.run(["rm", "-rf", str(root)], check=True)


@pytest.mark.parametrize("neuron, reason", [
    (2, "a FIFO"), (3, "a character device"), (4, "a socket"), (5, "a directory"), (6, "over the 67,108,864-byte limit"),
])
def test_special_and_oversized_files_are_refused_unread(special_files, neuron, reason):
    status, why = in_child(_fetch, special_files, f"collated-activations/0/{neuron}.json")
    assert status == "refused" and reason in why and "\n" not in why
    with pytest.raises(MalformedFile, match=reason):
        decode.decode(Refused(why))


def test_plain_files_and_links_to_them_are_read(special_files):
    assert in_child(_fetch, special_files, "collated-activations/0/7.json") == ("bytes", 2)
    assert in_child(_fetch, special_files, "collated-activations/0/8.json") == ("bytes", 2)
    assert in_child(_fetch, special_files, "collated-activations/0/9.json") == ("missing", "not found")


def test_a_file_that_grew_past_the_limit_after_its_size_was_checked_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(source_module, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(source_module, "_refusal", lambda status: None)  # as if it was small when checked
    (tmp_path / "big.json").write_bytes(b" " * 101)
    value = Source(str(tmp_path)).fetch(["big.json"])["big.json"]
    assert isinstance(value, Refused) and "limit" in value.reason


@pytest.mark.parametrize("size, refused", [(50, False), (150, True)])
def test_a_file_that_grew_after_its_size_was_read_is_read_to_its_end_or_refused(tmp_path, monkeypatch, size, refused):
    monkeypatch.setattr(source_module, "MAX_FILE_BYTES", 100)
    (tmp_path / "grown.json").write_bytes(b"x" * size)
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 10, *real_fstat(fd)[7:])))
    value = Source(str(tmp_path)).fetch(["grown.json"])["grown.json"]
    if refused:
        assert isinstance(value, Refused) and "limit" in value.reason
    else:
        assert value == b"x" * size


@pytest.fixture
def ranged_http_source(tmp_path):
    """Files over HTTP from a server that honours Range requests, answering 416 for a range
    of an empty file (as Azure and most servers do)."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "big.json").write_bytes(b"[" + b"1," * 600 + b"1]")
    (root / "small.json").write_bytes(b"[1]")
    (root / "empty.json").write_bytes(b"")
    asked: list[str] = []

    class RangeHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            asked.append(self.headers.get("Range", ""))
            first, _, last = self.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
            if not data:
                self.send_error(416)
                return
            part = data[int(first): int(last) + 1 if last else None]
            self.send_response(206)
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            self.wfile.write(part)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()


def test_remote_files_are_fetched_up_to_the_limit_and_no_further(ranged_http_source, monkeypatch):
    monkeypatch.setattr(source_module, "MAX_FILE_BYTES", 1000)
    monkeypatch.setattr(source_module, "BACKOFF_SECONDS", 0.01)
    url, asked = ranged_http_source
    fetched = Source(url).fetch(["big.json", "small.json", "empty.json", "absent.json"])
    assert isinstance(fetched["big.json"], Refused) and "limit" in fetched["big.json"].reason
    assert fetched["small.json"] == b"[1]"
    assert fetched["empty.json"] == b"" and not isinstance(fetched["empty.json"], Refused)
    assert str(fetched["absent.json"]) == "not found"
    assert asked.count("bytes=0-1000") == 3  # one request each: a 416 is not retried


@pytest.mark.azurite
def test_an_empty_blob_is_read_as_empty_from_azure(azurite, tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "empty.json").write_bytes(b"")
    (tmp_path / "src" / "small.json").write_bytes(b"[1]")
    azurite.create_container("hostile", public=True)
    azurite.upload_tree(str(tmp_path / "src"), "hostile", prefix="data")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.anonymous_connection_string)
    monkeypatch.setattr(source_module, "BACKOFF_SECONDS", 0.01)
    fetched = Source(f"az://{azurite.account}/hostile/data").fetch(["empty.json", "small.json"])
    assert fetched == {"empty.json": b"", "small.json": b"[1]"}


# -- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, number", [
    ("0", 0), ("1", 1), ("6399", 6399), ("6400", None), ("01", None), ("00", None), ("+1", None), (" 1", None),
    ("1 ", None), ("1\n", None), ("\u0661", None), ("\uff11", None), ("1_0", None), ("-1", None), ("", None),
    ("999999999999", None), ("9" * 5000, None),
])
def test_only_plain_decimal_numbers_below_the_width_name_a_neuron(name, number):
    assert parse_number(name, 6400) == number


def test_listing_skips_and_collects_names_that_are_not_numbers(tmp_path):
    hostile = cases.write_hostile_tree(tmp_path / "source", too_large_bytes=10)
    source = Source(hostile["root"])
    assert source.list_layers("collated-activations", 48) == [0]
    found = source.list_neurons("collated-activations", 0, ".json", 6400)
    assert sorted(found) == [0, 1, 2, 3, 4, 5, 6]
    ignored = set(source.ignored)
    assert {f"collated-activations/{n}" for n in cases.ODD_LAYER_NAMES} <= ignored
    assert {f"collated-activations/0/{n}.json" for n in cases.ODD_NEURON_NAMES} <= ignored


def _planned(root: str, model: str) -> list[int]:
    """The token-lookups neurons an ingest of ``root``/source would look at."""
    plan = plan_kind("token-lookups", Source(f"{root}/source"), Warehouse(f"{root}/w"), model, None, None)
    return [n for u in plan.units for n in u.neurons]


@pytest.mark.parametrize("model, planned", [("gpt2-xl", [0, 1, 2]), ("gpt2-small", [0, 1, 2]), ("my-model", [0, 1, 2])])
def test_planning_never_allocates_for_a_huge_neuron_number(tmp_path, model, planned):
    directory = tmp_path / "source" / "related-tokens" / "activation-based" / "0"
    directory.mkdir(parents=True)
    for name in ("0", "2", "999999999999", "01", "\u0661"):
        (directory / f"{name}.json").write_bytes(b"{}")
    assert in_child(_planned, str(tmp_path), model) == planned  # 1 is a hole: logged missing


def test_a_sparse_listing_of_a_model_of_unknown_width_is_not_filled_with_holes(tmp_path, caplog):
    directory = tmp_path / "source" / "related-tokens" / "activation-based" / "0"
    directory.mkdir(parents=True)
    for neuron in (0, 1, 999_999):
        (directory / f"{neuron}.json").write_bytes(b"{}")
    assert in_child(_planned, str(tmp_path), "my-model") == [0, 1, 999_999]
    assert in_child(_planned, str(tmp_path), "gpt2-xl") == [0, 1]  # 999999 is beyond GPT-2 XL's width
    _planned(str(tmp_path), "my-model")  # (in this process too, for the note)
    assert "too sparse" in caplog.text


# -- a whole run --------------------------------------------------------------------------------
INGEST = """
import json, sys
import nx.ingest
report = nx.ingest.run(source=sys.argv[1], warehouse=sys.argv[2], workers=int(sys.argv[3]))
print(json.dumps(report.asdict()))
"""


def _ingest_in_child(source: str, warehouse: str, workers: int) -> dict:
    try:
        done = subprocess.run([sys.executable, "-c", INGEST, source, warehouse, str(workers)], capture_output=True,
                              text=True, timeout=CHILD_SECONDS * 3, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        raise AssertionError("the ingest hung") from None
    assert done.returncode == 0, done.stderr[-3000:]
    return {"report": json.loads(done.stdout), "stderr": done.stderr}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_source_full_of_hostile_files_is_ingested_to_the_end_every_time(tmp_path, workers):
    hostile = cases.write_hostile_tree(tmp_path / "source")
    warehouse = str(tmp_path / "w")
    first = _ingest_in_child(hostile["root"], warehouse, workers)
    for kind in KINDS:
        counts = first["report"]["kinds"][kind]
        assert (counts["ok"], counts["malformed"], counts["missing"]) == (
            len(hostile["ok"][kind]), len(hostile["malformed"][kind]), 0), kind
        log = log_rows(warehouse, kind)
        assert set(log) == set(hostile["ok"][kind]) | set(hostile["malformed"][kind]), kind  # odd names: not neurons
        for key, words in hostile["malformed"][kind].items():
            assert log[key]["status"] == "malformed" and words in log[key]["error"], (kind, key, log[key]["error"])
            assert "\n" not in log[key]["error"]
    assert "not layer numbers" in first["stderr"] and "'collated-activations/0/01.json'" in first["stderr"]
    again = _ingest_in_child(hostile["root"], warehouse, workers)
    for kind in KINDS:
        counts = again["report"]["kinds"][kind]
        assert counts["skipped"] == len(hostile["ok"][kind]) + len(hostile["malformed"][kind]), kind


def _serialized(obj) -> bytes:
    """As the seed writes it (so the fast path may take it), or by json where orjson cannot."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits
        return json.dumps(obj, separators=(",", ":")).encode()


def test_every_type_swap_is_ingested_or_malformed_in_a_real_run(tmp_path):
    """Each type swap of an explanation file and of its NeuronRecord as one neuron's files of a
    source, ingested together (so explanations are labelled from the records and scored)."""
    import nx.ingest

    record = cases.neuron_record(0, 0, n_top=20, n_random=15, n_tokens=3, hard=1)
    results = cases.simulation_results(0, 0, record, hard=1)
    swapped = {"collated-activations": [changed for _, _, changed in cases.type_swapped(record)][::3],
               "explanations": [changed for _, _, changed in cases.type_swapped(results)][::3]}
    unchanged = {"collated-activations": record, "explanations": results}
    neurons = max(len(objects) for objects in swapped.values())
    root = tmp_path / "source"
    for kind, objects in swapped.items():
        for neuron in range(neurons):
            path = root / cases.source_path(kind, 0, neuron)
            path.parent.mkdir(parents=True, exist_ok=True)
            obj = objects[neuron] if neuron < len(objects) else unchanged[kind]
            path.write_bytes(_serialized(obj) + b"\n")
    warehouse = str(tmp_path / "w")
    report = nx.ingest.run(["collated-activations", "explanations"], source=str(root), warehouse=warehouse, workers=1)
    for kind in swapped:
        counts = report.kinds[kind]
        assert counts.ok + counts.malformed == neurons and counts.missing == 0, kind
        assert counts.ok and counts.malformed, kind
        errors = [entry["error"] for entry in log_rows(warehouse, kind).values() if entry["status"] == "malformed"]
        assert all(error and "\n" not in error for error in errors)
