"""Named queries: the built-in seven, their parameters, and queries users add themselves."""
from __future__ import annotations

import os
import statistics

import pytest

import nx
from nx.errors import QueryError
from nx.queries.named import QueryFileWarning
from query_fixtures import cli, copied_warehouse, warehouse  # noqa: F401  (fixtures)

BUILT_IN = ["activations-not-tokens", "connections", "layer-stats", "monosemantic", "search", "token",
            "top-explained", "top-per-layer"]
TOP_PARAMS = ("--min-score NUMBER (default 0.8), --layer INTEGER (default null), --limit INTEGER (default null), "
              "--model TEXT (default gpt2-xl), --run TEXT (default public)")
# Every query that lists rows, with what it needs to list some in the session's warehouse.
LISTING = {"top-explained": {"min_score": "0"}, "monosemantic": {"min_score": "-1"}, "search": {"text": "references"},
           "token": {"token": "Canadian"}, "top-per-layer": {}}


def explanation_rows(warehouse) -> list[dict]:
    return nx.sql("select * from explanations", warehouse).to_pylist()


def test_list_names_every_built_in_query_with_its_parameters(cli, warehouse):
    result = cli("query", "--list", "-w", warehouse, "-f", "table")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line for line in lines if line and not line.startswith(" ")] == BUILT_IN
    assert "      --min-score NUMBER (default 0.8)         lowest score shown" in lines
    rows = nx.queries.named_queries(warehouse)
    assert list(rows) == BUILT_IN
    as_csv = cli("query", "--list", "-w", warehouse).stdout.splitlines()
    assert as_csv[0] == "name,parameters,description,origin"
    assert as_csv[-2].startswith(f'top-explained,"{TOP_PARAMS}",')


def test_top_explained_lists_scores_at_or_above_min_score_best_first(warehouse):
    result = nx.query("top-explained", warehouse, min_score=0.85).to_pylist()
    expected = sorted((r for r in explanation_rows(warehouse) if r["score"] >= 0.85), key=lambda r: -r["score"])
    assert [(r["layer"], r["neuron"], r["score"]) for r in result] == \
        [(r["layer"], r["neuron"], r["score"]) for r in expected]
    assert len(result) == 4


def test_parameters_given_as_strings_are_converted(cli, warehouse):
    result = cli("query", "top-explained", "--min-score", "0.89", "-w", warehouse)
    assert result.stdout.splitlines()[0] == "layer,neuron,explanation,score,top_only_score,random_only_score"
    assert len(result.stdout.splitlines()) == 1 + 3
    assert cli("query", "top-explained", "--min-score=0.89", "-w", warehouse).stdout == result.stdout


def test_monosemantic_ranks_by_random_only_score(warehouse):
    result = nx.query("monosemantic", warehouse, min_score=0.05).to_pylist()
    assert result and all(r["random_only_score"] >= 0.05 for r in result)
    assert [r["random_only_score"] for r in result] == sorted((r["random_only_score"] for r in result), reverse=True)


def test_layer_stats_counts_means_and_share_above_the_threshold(warehouse):
    stats = {r["layer"]: r for r in nx.query("layer-stats", warehouse).to_pylist()}
    for layer in (0, 1):
        scores = [r["score"] for r in explanation_rows(warehouse) if r["layer"] == layer]
        assert stats[layer]["explanations"] == len(scores)
        assert stats[layer]["mean_score"] == pytest.approx(statistics.mean(scores))
        assert stats[layer]["median"] == pytest.approx(statistics.median(scores))
        assert stats[layer]["share_above"] == pytest.approx(sum(s > 0.8 for s in scores) / len(scores))


def test_search_is_case_insensitive_and_binds_its_text(warehouse):
    found = nx.query("search", warehouse, text="DOG").to_pylist()
    assert {r["explanation"] for r in found} == {"references to dog and cat"}
    assert nx.query("search", warehouse, text="dog", layer=1).to_pylist() == [f for f in found if f["layer"] == 1]
    assert nx.query("search", warehouse, text="'; drop table explanations; --").num_rows == 0
    assert nx.query("search", warehouse, text='"quotes"').num_rows == 2


@pytest.mark.parametrize("how, text, expected", [
    ("substring", "at", {"references to dog and cat"}),  # 'at' in 'cat'
    ("word", "at", set()),
    ("word", "CAT", {"references to dog and cat"}),
    ("word", "and cat", {"references to dog and cat"}),
    ("regex", "^references to (dog|cat)", {"references to dog and cat"}),
])
def test_search_matches_a_substring_a_whole_word_or_a_regex(warehouse, how, text, expected):
    found = {r["explanation"] for r in nx.query("search", warehouse, text=text, match=how).to_pylist()}
    assert found & {"references to dog and cat"} == expected


def test_text_matches_is_a_macro_every_statement_can_use(warehouse):
    row = nx.sql("select text_matches('the cat sat', 'at', 'substring') as a, text_matches('the cat sat', 'at', 'word') "
                 "as b, text_matches('U.S. army', 'u.s.', 'word') as c, text_matches('US army', 'u.s.', 'word') as d, "
                 "text_matches('cat', 'c.t', 'regex') as e", warehouse).to_pylist()
    assert row == [{"a": True, "b": False, "c": True, "d": False, "e": True}]


def test_a_bad_regex_is_a_one_line_error(cli, warehouse):
    result = cli("query", "search", "--text", "(", "--match", "regex", "-w", warehouse)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("nx: error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("name", LISTING)
def test_every_listing_query_takes_limit_and_layer_and_lists_all_rows_by_default(warehouse, name):
    given = LISTING[name]
    everything = nx.query(name, warehouse, **given).to_pylist()
    assert len({(r["layer"], r["neuron"]) for r in everything}) > 2
    assert nx.query(name, warehouse, **given, limit="2").to_pylist() == everything[:2]
    assert nx.query(name, warehouse, **given, layer=1).to_pylist() == [r for r in everything if r["layer"] == 1]
    limit = next(p for p in nx.queries.named_queries(warehouse)[name].params if p.name == "limit")
    assert limit.default is None  # nothing is cut without saying so


def test_top_per_layer_ranks_each_layers_best_explanations(warehouse):
    result = nx.query("top-per-layer", warehouse, top=2).to_pylist()
    expected = []
    for layer in sorted({r["layer"] for r in explanation_rows(warehouse)}):
        ranked = sorted((r for r in explanation_rows(warehouse) if r["layer"] == layer and r["score"] is not None),
                        key=lambda r: (-r["score"], r["neuron"], r["explanation_index"]))[:2]
        expected += [(layer, rank + 1, r["neuron"], r["score"]) for rank, r in enumerate(ranked)]
    assert [(r["layer"], r["rank"], r["neuron"], r["score"]) for r in result] == expected


def test_a_query_stopped_by_its_default_limit_says_so(cli, copied_warehouse):
    _write(os.path.join(copied_warehouse, "_queries", "some.sql"),
           '-- param: limit int 2 "rows shown"\nselect * from range(5) t(n) order by n limit $limit\n')
    table = cli("query", "some", "-w", copied_warehouse, "-f", "table")
    assert table.stdout.splitlines()[-1] == "first 2 rows; --limit N for more"
    piped = cli("query", "some", "-w", copied_warehouse)
    assert (piped.stdout, piped.stderr) == (
        "n\n0\n1\n", "nx: note: the first 2 rows (the query's default limit); --limit N for more\n")
    asked = cli("query", "some", "--limit", "2", "-w", copied_warehouse, "-f", "table")
    assert asked.stdout.splitlines()[-1] == "2 rows" and asked.stderr == ""
    assert cli("query", "some", "--limit", "null", "-w", copied_warehouse).stdout == "n\n0\n1\n2\n3\n4\n"


def test_token_finds_neurons_by_lookup_table_and_by_top_record_peaks(warehouse, source_tree):
    objects = source_tree["objects"]
    token = " Canadian"
    result = {(r["layer"], r["neuron"]): r for r in nx.query("token", warehouse, token="Canadian").to_pylist()}
    by_lookup = {(layer, neuron): obj["tokens"].index(token) for (kind, layer, neuron), obj in objects.items()
                 if kind == "token-lookups" and token in obj["tokens"]}
    for key, rank in by_lookup.items():
        assert result[key]["lookup_rank"] == rank
    by_peak = {}
    for (kind, layer, neuron), obj in objects.items():
        if kind == "collated-activations":
            for record in obj["most_positive_activation_records"]:
                peak = max(range(len(record["activations"])), key=lambda i: record["activations"][i], default=None)
                if peak is not None and record["tokens"][peak].strip() == "Canadian":
                    by_peak[(layer, neuron)] = by_peak.get((layer, neuron), 0) + 1
    assert {key: r["top_records"] for key, r in result.items() if r["top_records"]} == by_peak
    assert set(result) == set(by_lookup) | set(by_peak)


def test_connections_lists_the_strongest_neighbours_of_a_neuron(warehouse, source_tree):
    related = source_tree["objects"][("related-neurons", 1, 1)]
    result = nx.query("connections", warehouse, layer=1, neuron=1, top=3).to_pylist()
    upstream_positive = [(r["other_layer"], r["other_neuron"], r["weight"]) for r in result
                         if r["direction"] == "input" and r["sign"] == "positive"]
    names = related["c_fc"]["top_positive_neurons"][:3]
    assert upstream_positive == [(*map(int, n.split("_")), w)
                                 for n, w in zip(names, related["c_fc"]["top_positive_weights"][:3])]
    assert [r["direction"] for r in result] == ["input"] * 6  # layer 1 is the last: nothing downstream


@pytest.mark.parametrize("args, message", [
    (["nope"], "no named query 'nope'; queries: " + ", ".join(BUILT_IN) + " (see nx query --list)"),
    (["top-explained", "--min-scor", "1"], f"query 'top-explained' has no parameter 'min_scor'; parameters: {TOP_PARAMS}"),
    (["top-explained", "--min-score", "high"], "query 'top-explained': --min-score must be float, not 'high'"),
    (["search"], "query 'search' needs --text; parameters: --text TEXT (required), --match substring|word|regex "
                 "(default substring), --layer INTEGER (default null), --limit INTEGER (default null), "
                 "--model TEXT (default gpt2-xl), --run TEXT (default public)"),
    (["search", "--text", "at", "--match", "fuzzy"],
     "query 'search': --match must be one of substring, word, regex, not 'fuzzy'"),
    (["top-explained", "0.9"], "unexpected argument '0.9': give parameters as --NAME VALUE"),
    (["top-explained", "--min-score"], "--min-score needs a value"),
    ([], "name a query (nx query --list shows them)"),
])
def test_bad_names_and_parameters_exit_2_saying_what_exists(cli, warehouse, args, message):
    result = cli("query", *args, "-w", warehouse)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"nx: error: {message}\n")


def _write(path, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def test_users_add_queries_in_the_warehouse_and_in_nx_queries(cli, copied_warehouse, tmp_path, monkeypatch):
    _write(os.path.join(copied_warehouse, "_queries", "per-layer.sql"),
           "-- description: neurons per layer\n-- param: model str gpt2-xl \"model\"\n"
           "select layer, count(*) as n from neurons where model = $model group by layer order by layer\n")
    _write(os.path.join(copied_warehouse, "_queries", "scores.sql"), "-- description: the warehouse's\nselect 1 as n\n")
    mine = tmp_path / "mine"
    _write(mine / "scores.sql", "-- description: my own\n-- param: min_score float 0.5 \"floor\"\n"
                                "select count(*) as n from explanations where score >= $min_score\n")
    monkeypatch.setenv("NX_QUERIES", str(mine))
    queries = nx.queries.named_queries(copied_warehouse)
    assert queries["per-layer"].origin == os.path.join(copied_warehouse, "_queries", "per-layer.sql")
    assert queries["scores"].description == "my own"  # $NX_QUERIES replaces the warehouse's
    assert cli("query", "per-layer", "-w", copied_warehouse).stdout == "layer,n\n0,4\n1,4\n"
    assert cli("query", "scores", "-w", copied_warehouse).stdout == "n\n6\n"
    listed = cli("query", "--list", "-w", copied_warehouse, "-f", "table")
    assert f"scores  (user query from {mine / 'scores.sql'})" in listed.stdout.splitlines()
    assert "top-explained" in listed.stdout.splitlines() and listed.stderr == ""
    as_csv = cli("query", "--list", "-w", copied_warehouse).stdout.splitlines()
    assert [line.rsplit(",", 1)[1] for line in as_csv[1:]] == \
        ["built-in"] * 4 + [os.path.join(copied_warehouse, "_queries", "per-layer.sql"), str(mine / "scores.sql")] + \
        ["built-in"] * 4


PLANTED = "-- description: planted\nselect 42 as planted\n"


@pytest.mark.parametrize("where", ["warehouse", "NX_QUERIES"])
def test_a_user_file_cannot_replace_a_built_in_query(cli, copied_warehouse, tmp_path, monkeypatch, where):
    folder = os.path.join(copied_warehouse, "_queries") if where == "warehouse" else str(tmp_path / "mine")
    monkeypatch.setenv("NX_QUERIES", str(tmp_path / "mine"))
    os.makedirs(tmp_path / "mine", exist_ok=True)
    by_stem = _write(os.path.join(folder, "top-explained.sql"), PLANTED)
    by_header = _write(os.path.join(folder, "innocent.sql"), "-- name: layer-stats\n" + PLANTED)
    with pytest.warns(QueryFileWarning):
        expected = nx.query("top-explained", copied_warehouse, min_score=0.89).to_pylist()
    assert len(expected) == 3 and "planted" not in expected[0]
    result = cli("query", "top-explained", "--min-score", "0.89", "-w", copied_warehouse)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "layer,neuron,explanation,score,top_only_score,random_only_score"
    assert len(result.stdout.splitlines()) == 1 + 3
    assert result.stderr.splitlines() == [
        f"nx: warning: {by_header}: skipped: 'layer-stats' is a built-in query, which user queries cannot replace: "
        "give yours another name",
        f"nx: warning: {by_stem}: skipped: 'top-explained' is a built-in query, which user queries cannot replace: "
        "give yours another name"]
    with pytest.warns(QueryFileWarning) as caught:
        queries = nx.queries.named_queries(copied_warehouse)
    assert [str(w.message) for w in caught] == [line.removeprefix("nx: warning: ") for line in result.stderr.splitlines()]
    assert queries["top-explained"].builtin and queries["layer-stats"].builtin
    assert queries["top-explained"].origin == "nx:top-explained.sql" and "innocent" not in queries
    assert "planted" not in cli("query", "layer-stats", "-w", copied_warehouse).stdout


def _write_bytes(path, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_a_file_that_cannot_be_used_is_skipped_and_the_others_still_work(cli, copied_warehouse, tmp_path,
                                                                          monkeypatch):
    folder = os.path.join(copied_warehouse, "_queries")
    latin1 = _write_bytes(os.path.join(folder, "caf\u00e9.sql"), "-- description: caf\u00e9\nselect 1\n".encode("latin-1"))
    os.makedirs(os.path.join(folder, "folder.sql"))
    bad_param = _write(os.path.join(folder, "bad-param.sql"), "-- param: x decimal 1\nselect $x\n")
    _write(os.path.join(folder, "good.sql"), "select 7 as n\n")
    monkeypatch.setenv("NX_QUERIES", str(tmp_path / "nowhere"))
    result = cli("query", "good", "-w", copied_warehouse)
    assert (result.exit_code, result.stdout) == (0, "n\n7\n")
    assert result.stderr.splitlines() == [
        f"nx: warning: {bad_param}: skipped: bad param line 'x decimal 1': write 'param: NAME TYPE DEFAULT "
        "\"help\"' with TYPE one of str, int, float, bool, or the values it takes: one|two|three",
        f"nx: warning: {latin1}: skipped: it is not UTF-8 text (byte 0xe9 at offset 19)",
        f"nx: warning: {os.path.join(folder, 'folder.sql')}: skipped: it is a directory, not a file",
        f"nx: warning: NX_QUERIES={tmp_path / 'nowhere'}: skipped: not a directory nx can list "
        "(No such file or directory)"]
    assert cli("query", "top-explained", "--min-score", "0.89", "-w", copied_warehouse).stdout.count("\n") == 4
    listed = cli("query", "--list", "-w", copied_warehouse, "-f", "csv")
    assert listed.exit_code == 0
    assert [line.split(",")[0] for line in listed.stdout.splitlines()[1:]] == sorted([*BUILT_IN, "good"])
    with pytest.warns(QueryFileWarning) as caught:
        assert "good" in nx.queries.named_queries(copied_warehouse)
    assert len(caught) == 4


def test_a_user_query_cannot_write_either(copied_warehouse, tmp_path, monkeypatch):
    _write(tmp_path / "q" / "evil.sql", f"copy (select 1) to '{copied_warehouse}/evil.csv'\n")
    monkeypatch.setenv("NX_QUERIES", str(tmp_path / "q"))
    with pytest.raises(QueryError, match="not COPY"):
        nx.query("evil", copied_warehouse)
    assert not os.path.exists(os.path.join(copied_warehouse, "evil.csv"))


@pytest.mark.parametrize("line, message", [
    ("-- param: x float", None),
    ("-- param: x decimal 1", "bad param line 'x decimal 1'"),
    ("-- param: 1x int 1", "bad param line '1x int 1'"),
    ("-- param: x int one", "bad param line 'x int one': the default is not int"),
    ("-- param: warehouse str w", "a parameter cannot be called 'warehouse'"),
    ("-- param: help str w", "a parameter cannot be called 'help'"),
    ('-- param: x str "unclosed', "bad param line"),
    ("-- param: x int 1\n-- param: x str a", "parameter 'x' is declared twice"),
    ("-- name: --list", "bad query name '--list'"),
    ("-- name: a/b", "bad query name 'a/b'"),
])
def test_a_bad_header_skips_its_file_with_a_warning_naming_it(tmp_path, monkeypatch, warehouse, line, message):
    path = _write(tmp_path / "q" / "bad.sql", f"{line}\nselect $x as x\n")
    monkeypatch.setenv("NX_QUERIES", str(tmp_path / "q"))
    if message is None:
        assert nx.query("bad", warehouse, x="2.5").to_pylist() == [{"x": 2.5}]
        return
    with pytest.warns(QueryFileWarning) as caught:
        queries = nx.queries.named_queries(warehouse)
    assert list(queries) == BUILT_IN
    (warning,) = caught
    assert str(warning.message).startswith(f"{path}: skipped: ") and message in str(warning.message)


def test_an_int_parameter_beyond_64_bits_is_a_usage_error(cli, warehouse):
    result = cli("query", "search", "--text", "dog", "--limit", "99999999999999999999", "-w", warehouse)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("nx: error: query 'search': --limit must be int from -9223372036854775808 to "
                             "9223372036854775807, not '99999999999999999999'\n")
