"""The viewer's pages and their JSON twins, through Starlette's test client."""
from __future__ import annotations

import io
import os
import re
import time

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import nx
from nx.warehouse import Warehouse
from web_helpers import HOSTILE_EXPLANATION, HOSTILE_TOKENS, MODEL, RUN, SAMPLE, add_run, json_equal, table_of


def test_every_page_has_a_json_twin_under_json_and_api(client):
    for page, twin, api in [("/", "/index.json", "/api/home"), ("/neuron/0/1", "/neuron/0/1.json", "/api/neuron/0/1"),
                            ("/search?q=dog", "/search.json?q=dog", "/api/search?q=dog"),
                            ("/compare", "/compare.json", "/api/compare"), ("/queries", "/queries.json", "/api/queries"),
                            ("/compare-neurons?a=0/2&b=1/1", "/compare-neurons.json?a=0/2&b=1/1",
                             "/api/compare-neurons?a=0/2&b=1/1"),
                            ("/queries/top-explained", "/queries/top-explained.json", "/api/queries/top-explained"),
                            ("/sql?q=select+1+as+x", "/sql.json?q=select+1+as+x", "/api/sql?q=select+1+as+x")]:
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html"), page
        first, second = client.get(twin), client.get(api)
        assert first.status_code == 200 and first.headers["content-type"] == "application/json", twin
        assert rounded(first.json()) == rounded(second.json()), api  # parallel sums may differ in the last bit


def rounded(value):
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items() if k != "elapsed_ms"}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_neuron_json_holds_what_nx_neuron_returns(client, sample_warehouse):
    got = client.get("/neuron/0/1.json").json()
    expected = nx.neuron(0, 1, warehouse=sample_warehouse).asdict()
    assert set(expected) <= set(got)
    for key in ("stats", "top_records", "random_records", "quantile_records", "token_lookups", "token_weights"):
        assert json_equal(expected[key], got[key]), key
    for side in ("upstream", "downstream"):
        assert json_equal(expected[side], got[side]), side
    assert [(e["run"], e["explanation"], len(e["sequences"])) for e in got["explanations"]] == \
           [(e["run"], e["explanation"], len(e["sequences"])) for e in expected["explanations"]]
    assert got["navigation"] == {"previous_neuron": {"layer": 0, "neuron": 0}, "next_neuron": {"layer": 0, "neuron": 2},
                                 "previous_layer": None, "next_layer": {"layer": 1, "neuron": 1}}


def test_neuron_page_shows_every_pane(client):
    html = client.get("/neuron/0/1").text
    for pane in ("explanations", "top-records", "random-records", "token-lookups", "token-weights", "related"):
        assert f'id="{pane}"' in html
    for label in ("ev-correlation", "r²", "abs-dev", "top-only", "random-only"):
        assert label in html
    assert html.count('class="pair') >= 5 * 20  # real vs simulated, per token of each scored sequence
    assert 'href="/neuron/0/0"' in html and 'href="/neuron/0/2"' in html and 'href="/neuron/1/1"' in html


def test_explanations_of_every_run_with_their_metadata(client):
    data = client.get("/neuron/0/0.json").json()
    assert [e["run"] for e in data["explanations"]] == ["public", RUN]
    mine = data["explanations"][1]
    assert mine["explanation"] == HOSTILE_EXPLANATION
    assert (mine["explainer_model"], mine["simulator_model"], mine["simulator"], mine["prompt_version"]) == \
           ("fake-explainer", "fake-simulator", "all-at-once", "v1")
    assert mine["run_metadata"]["explainer"] == "token-activations"
    assert mine["sequences"][0]["tokens"] == HOSTILE_TOKENS


def test_run_settings_on_home_and_the_neuron_page(client):
    runs = {r["run"]: r for r in client.get("/index.json").json()["runs"]}
    assert runs[RUN]["settings"] == {"explainer": "token-activations · fake-explainer",
                                     "simulator": "all-at-once · fake-simulator", "calibration": "linear",
                                     "prompts": "explainer-token-activations@1"}
    assert runs["public"]["settings"]["explainer"] == "token-activations · OpenAI (public)"
    home = client.get("/").text
    row = re.search(rf'<tr data-run="{RUN}">.*?</tr>', home, re.S).group(0)
    for shown in ("token-activations · fake-explainer", "all-at-once · fake-simulator", ">linear<",
                  "explainer-token-activations@1", "2026-12-01 14:35:21 UTC"):
        assert shown in row, shown
    assert "208804" not in home and "+00:00" not in home  # to the second, in UTC
    page = client.get("/neuron/0/0").text
    mine = page[page.index(f'data-run="{RUN}"'):]
    meta = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", mine[:mine.index("</article>")]))
    assert meta == {"explainer": "token-activations · fake-explainer", "simulator": "all-at-once · fake-simulator",
                    "calibration": "linear", "prompts": "v1", "run started": "2026-12-01 14:35:21 UTC"}


def test_activations_not_tokens_says_how_to_make_a_token_lookup_run(client):
    answer = client.get("/queries/activations-not-tokens.json")  # the sample has none
    assert answer.status_code == 404
    assert answer.json()["error"].startswith("no token-lookup explanations of model gpt2-xl")
    assert "nx explain --explainer token-lookup" in answer.json()["error"]
    assert "activations-not-tokens" in client.get("/queries").text


def test_hostile_text_is_escaped_in_the_html(client):
    html = client.get("/neuron/0/0").text
    assert "<script>window.__xss" not in html and "<img src=x" not in html and "<script>alert(1)" not in html
    assert "&lt;script&gt;window.__xss=2&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in html
    assert "\u202e" not in html and "\u200f" not in html  # shown as ⟨U+202E⟩, never applied
    assert "⟨U+202E⟩" in html and "⟨U+200F⟩" in html and "↵" in html and "⇥" in html
    compare = client.get(f"/compare?a=public&b={RUN}").text
    assert "<img src=x" not in compare and "&lt;img src=x" in compare


def test_quantile_samples_are_labelled_with_their_quantile_range_and_bounds(client):
    data = client.get("/neuron/0/2.json").json()
    boundaries = data["stats"]["quantile_boundaries"]
    assert len(boundaries) == 6 and [b["records"] for b in data["quantile_bins"]] == [2] * 5  # edges included
    assert [b["levels"] for b in data["quantile_bins"]] == [[0, 0.5], [0.5, 0.9], [0.9, 0.99], [0.99, 0.999],
                                                             [0.999, 1]]
    assert [(b["low"], b["high"]) for b in data["quantile_bins"]] == list(zip(boundaries, boundaries[1:]))
    html = client.get("/neuron/0/2").text
    titles = re.findall(r'<details class="quantile" data-quantile="(\d)"><summary>([^<]*)', html)
    assert titles == [(str(q), f"Quantile range [{a:g}, {b:g}] sample ") for q, (a, b) in
                      reversed(list(enumerate(zip((0, 0.5, 0.9, 0.99, 0.999), (0.5, 0.9, 0.99, 0.999, 1)))))]
    assert f"(activations {boundaries[0]:.3f} to {boundaries[1]:.3f})" in html


def test_activation_histogram_of_the_stored_records_with_quantile_boundaries(client):
    from nx.web.histogram import histogram

    data = client.get("/neuron/0/2.json").json()
    html = client.get("/neuron/0/2").text
    section = html[html.index('id="activation-histogram"'):html.index('id="random-records"')]
    drawn = histogram(data, data["quantile_bins"])
    tokens = {s: sum(len(r["activations"]) for r in data[f"{s}_records"]) for s in ("top", "random", "quantile")}
    assert drawn["tokens"] == tokens and sum(map(sum, drawn["counts"].values())) == sum(tokens.values())
    assert section.count("<rect ") >= 10 and "<script" not in section
    # the inner boundaries of the five bins (the last bin's upper bound is the largest activation)
    labels = re.findall(r'<text [^>]*class="boundary">([^<]*)</text>', section)
    assert labels == ["0.5", "0.9", "0.99", "0.999"]
    assert histogram({"top_records": [], "random_records": [], "quantile_records": []}, []) is None


def test_quantile_bounds_only_where_the_boundaries_fit_the_bins():
    from nx.web.neuron_page import quantile_bins

    def bins(boundaries, count=5):
        found = {"stats": {"quantile_count": count, "quantile_boundaries": boundaries},
                 "quantile_records": [{"quantile": q} for q in range(count)]}
        return [(b["levels"], b["low"], b["high"]) for b in quantile_bins(found)]

    # the public datasets: 4 inner boundaries (the activations at quantiles 0.5, 0.9, 0.99, 0.999)
    assert bins([1.0, 2.0, 3.0, 4.0]) == [([0, 0.5], None, 1.0), ([0.5, 0.9], 1.0, 2.0), ([0.9, 0.99], 2.0, 3.0),
                                          ([0.99, 0.999], 3.0, 4.0), ([0.999, 1], 4.0, None)]
    assert [low for _, low, _ in bins([1.0, 2.0, 3.0])] == [None] * 5  # ambiguous: no bounds
    assert bins(None)[0] == ([0, 0.5], None, None)
    # not the public five bins: no quantile ranges, bounds where they fit
    assert bins([1.0, 2.0, 3.0, 4.0], count=3) == [(None, 1.0, 2.0), (None, 2.0, 3.0), (None, 3.0, 4.0)]
    assert bins([1.0, 2.0, 3.0, 4.0], count=2) == [(None, None, None)] * 2
    # an empty bin still appears
    assert len(quantile_bins({"stats": {"quantile_count": 5}, "quantile_records": [{"quantile": 0}]})) == 5


def test_heatmap_spans_carry_their_colour_and_exact_value(client):
    data = client.get("/neuron/0/1.json").json()
    html = client.get("/neuron/0/1").text
    top = data["top_records"][0]
    peak = max(top["activations"])
    assert f'title="{peak:.4f}"' in html
    spans = re.findall(r'<span class="t c?" style="background:(#[0-9a-f]{6})" title="([-0-9.]+)"', html)
    assert spans
    darkest = min(spans, key=lambda s: int(s[0][1:3], 16))
    assert float(darkest[1]) == pytest.approx(data["stats"]["max_activation"], abs=1e-3)


def test_search_ranks_by_score_and_filters(client):
    rows = client.get("/search.json?q=DOG").json()["rows"]
    assert rows and all("dog" in r["explanation"].lower() for r in rows)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    narrowed = client.get("/search.json?q=dog&layer_min=1&layer_max=2&min_score=0.89").json()
    assert narrowed["rows"] and all(1 <= r["layer"] <= 2 and r["score"] >= 0.89 for r in narrowed["rows"])
    mine = client.get(f"/search.json?run={RUN}").json()
    assert mine["total"] == 6 and {r["run"] for r in mine["rows"]} == {RUN}
    paged = client.get("/search.json?page=2&page_size=5").json()
    assert paged["total"] == 24 and len(paged["rows"]) == 5 and paged["has_more"]


def test_home_has_layer_stats_lists_and_runs(client):
    data = client.get("/index.json").json()
    assert [r["layer"] for r in data["layer_stats"]] == [0, 1, 2]
    assert all(0 <= r["share_above"] <= 1 for r in data["layer_stats"])
    assert data["lists"]["top-explained"]["rows"][0]["score"] >= data["lists"]["top-explained"]["rows"][-1]["score"]
    assert data["lists"]["monosemantic"]["min_score"] == 0.7
    assert [r["run"] for r in data["runs"]] == ["public", RUN]
    html = client.get("/").text
    assert 'src="/static/plotly.min.js?v=' in html and 'id="layer-plot"' in html
    assert not re.search(r'<script[^>]+src="https?:', html)  # nothing from a CDN


def test_compare_two_runs(client):
    data = client.get(f"/compare.json?a=public&b={RUN}").json()
    assert data["summary"]["neurons"] == 6 and len(data["points"]["score_a"]) == 6
    differences = [abs(r["difference"]) for r in data["disagreements"]]
    assert differences == sorted(differences, reverse=True)
    assert data["disagreements"][0]["explanation_b"] in (HOSTILE_EXPLANATION, "my explanation of neuron 3")


def test_two_neurons_side_by_side_with_the_related_neurons_they_share(client):
    pair = client.get("/compare-neurons.json?a=0/2&b=1/1").json()
    a, b = client.get("/neuron/0/2.json").json(), client.get("/neuron/1/1.json").json()
    assert [e["explanation"] for e in pair["a"]["explanations"]] == [e["explanation"] for e in a["explanations"]]
    assert pair["b"]["top_records"] == b["top_records"][:5] and pair["a"]["stats"] == a["stats"]

    def related(found):
        return {(r["layer"], r["neuron"]) for side in ("upstream", "downstream") for r in found[side]}

    shared = related(a) & related(b)
    assert shared and [(r["layer"], r["neuron"]) for r in pair["shared"]] == sorted(shared)
    assert bool(pair["a_to_b"]) == ((1, 1) in related(a)) and bool(pair["b_to_a"]) == ((0, 2) in related(b))
    html = client.get("/compare-neurons?a=0/2&b=1/1").text
    assert 'id="neuron-a"' in html and 'id="neuron-b"' in html and html.count('class="record"') == 10
    assert 'href="/compare-neurons?a=0/2&amp;b=' in client.get("/neuron/0/2").text  # from the related neurons
    hostile = client.get("/compare-neurons?a=0/0&b=0/1").text
    assert "&lt;img src=x" in hostile and "<img src=x" not in hostile
    assert client.get("/compare-neurons.json?a=0&b=1/1").status_code == 400
    assert client.get("/compare-neurons.json?a=9/0&b=1/1").status_code == 404
    assert client.get("/compare-neurons.json?a=0/2").status_code == 400
    assert client.get("/compare-neurons").status_code == 200  # the form


def test_activation_contexts_holding_a_token_strongest_first(client):
    found = client.get("/contexts.json?token=DOG&layer=0").json()
    assert found["total"] == len(found["rows"]) == 20  # spaces ignored, in lower case too: " dog"
    for row in found["rows"]:
        at = [i for i, t in enumerate(row["tokens"]) if t.strip().lower() == "dog"]
        assert at and row["position"] in at
        assert row["token_activation"] == max(row["activations"][i] for i in at) == row["activations"][row["position"]]
    strengths = [r["token_activation"] for r in found["rows"]]
    assert strengths == sorted(strengths, reverse=True)
    assert client.get("/contexts.json?token=DOG&layer=0&case=1").json()["total"] == 0
    assert {r["sample"] for r in client.get("/contexts.json?token=dog&layer=0&sample=top").json()["rows"]} == {"top"}
    paged = client.get("/contexts.json?token=dog&layer=0&page=2&page_size=15").json()
    assert len(paged["rows"]) == 5 and not paged["has_more"]
    html = client.get("/contexts", params={"token": "<script>window.__xss=2</script>", "layer": 0}).text
    assert 'class="record context"' in html and "&lt;script&gt;window.__xss=2" in html and "<script>window" not in html
    assert client.get("/contexts.json?token=dog&layer=9").status_code == 404
    assert client.get("/contexts.json?token=dog&sample=best").status_code == 400
    assert client.get("/contexts.json").status_code == 400
    assert 'href="/contexts"' in client.get("/").text
    from nx.web.contexts import spellings

    assert spellings(" McDonald ", case=True) == ["McDonald", "McDonald ", " McDonald", " McDonald "]
    assert {"mcdonald", " MCDONALD", " Mcdonald"} <= set(spellings("McDonald", case=False))


def test_named_queries_run_with_url_parameters(client):
    rows = client.get("/queries/top-explained.json?min_score=0.9").json()["rows"]
    assert rows and all(r["score"] >= 0.9 for r in rows)
    connections = client.get("/queries/connections.json?layer=1&neuron=2").json()
    assert connections["rows"]  # reads related_neurons: runs on the views, not the index
    assert client.get("/queries/connections.json").status_code == 400  # layer and neuron are required


def test_random_neuron_lands_on_a_neuron_that_exists(client):
    for _ in range(5):
        answer = client.get("/random", follow_redirects=False)
        assert answer.status_code == 303
        assert client.get(answer.headers["location"]).status_code == 200
    assert client.get("/random.json").json()["url"].startswith("/neuron/")


def test_sql_pages_and_downloads(client):
    text = "select layer, neuron, tokens from activation_records where layer = 0 order by neuron, sample, rank"
    page = client.get("/sql.json", params={"q": text, "page_size": 10, "page": 2}).json()
    assert len(page["rows"]) == 10 and page["has_more"] and page["columns"][2]["name"] == "tokens"
    posted = client.post("/sql", data={"q": "select 42 as answer"})
    assert posted.status_code == 200 and ">42<" in posted.text
    csv = client.get("/sql.csv", params={"q": text})
    assert csv.headers["content-disposition"].endswith('.csv"')
    table = pacsv.read_csv(io.BytesIO(csv.content))
    assert table.num_rows == nx.sql("select count(*) as n from activation_records where layer = 0",
                                    client.app.state.warehouse).column("n")[0].as_py()
    parquet = pq.read_table(io.BytesIO(client.get("/sql.parquet", params={"q": text}).content))
    assert parquet.num_rows == table.num_rows and parquet.schema.field("tokens").type.value_type == "string"


def test_the_sql_form_sends_get_so_a_result_has_an_address(client):
    page = client.get("/sql").text
    assert '<form id="sql-form" action="/sql" method="get">' in page
    shown = client.get("/sql", params={"q": "select 42 as answer", "page_size": "100"})
    assert shown.status_code == 200 and ">42<" in shown.text
    # a timestamp to the second in UTC, as nx sql's table shows it; the JSON keeps it whole
    text = f"select started_at from runs where run = '{RUN}'"
    assert "2026-12-01 14:35:21 UTC" in client.get("/sql", params={"q": text}).text
    assert client.get("/sql.json", params={"q": text}).json()["rows"][0]["started_at"].startswith(
        "2026-12-01T14:35:21.208804")


def test_home_lists_use_the_thresholds_of_their_all_links(client):
    lists = client.get("/index.json").json()["lists"]
    top, mono = lists["top-explained"], lists["monosemantic"]
    assert (top["min_score"], mono["min_score"]) == (0.8, 0.7)
    assert top["rows"] and all(r["score"] >= 0.8 for r in top["rows"])
    assert mono["rows"] == []  # the sample's best random-only score is 0.35: none passes 0.7
    html = client.get("/").text
    assert "min_score=0.7\">all ≥ 0.7 →</a>" in html and "min_score=0.8\">all ≥ 0.8 →</a>" in html
    assert "no explanation of run public has a random-only score of 0.7 or more" in html
    assert client.get("/queries/monosemantic.json?min_score=0.7").json()["rows"] == []


def test_favicon(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00" and b"PNG" in icon.content[:40]
    assert '<link rel="icon" href="/favicon.ico">' in client.get("/").text


def test_the_bundled_samples_related_neurons_are_distinct_per_list_and_sign(tmp_path):
    import nx.ingest

    root = str(tmp_path / "related")
    assert nx.ingest.run(["related-neurons"], source=str(SAMPLE), warehouse=root, workers=1).complete
    repeated = nx.sql("""select layer, neuron, direction, count(*) as n,
                                count(distinct (other_layer, other_neuron)) as distinct_neurons
                         from related_neurons group by all having n != distinct_neurons""", root)
    assert repeated.num_rows == 0  # none twice in a list, none both positive and negative
    assert nx.sql("select count(*) as n from related_neurons", root).column("n")[0].as_py() == 144


def test_plotly_is_served_by_the_viewer_itself(client):
    answer = client.get("/static/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
    assert b"plotly.js" in answer.content[:400]


def test_a_new_run_shows_up_on_every_page_at_the_next_request(own_warehouse):
    from starlette.testclient import TestClient

    from nx.web import create_app

    with TestClient(create_app(own_warehouse)) as fresh:
        assert "late-run" not in [r["run"] for r in fresh.get("/index.json").json()["runs"]]
        index = fresh.app.state.index
        before = index.catalogs
        add_run(own_warehouse, "late-run")
        # no waiting: the very next request of each page sees it
        assert "late-run" in [r["run"] for r in fresh.get("/index.json").json()["runs"]]
        assert index.catalogs is not before
        assert "late-run" in [e["run"] for e in fresh.get("/neuron/1/3.json").json()["explanations"]]
        assert fresh.get("/search.json?run=late-run").json()["total"] == 6
        assert fresh.get("/compare.json?a=public&b=late-run").json()["summary"]["neurons"] == 6
        assert fresh.get("/sql.json", params={"q": "select count(*) as n from explanations where run = 'late-run'"}
                         ).json()["rows"] == [{"n": 6}]
        assert "late-run" in fresh.get("/neuron/1/3").text and "late-run" in fresh.get("/").text
        # a table the index does not copy: the views are made anew, the index is kept
        rebuilt = index.catalogs
        Warehouse(own_warehouse).append("token_lookups", {"model": MODEL, "layer": 1}, table_of(
            "token_lookups", [{"neuron": 3, "rank": 99, "token": " late", "average_activation": 9.0}]))
        assert " late" in [r["token"] for r in fresh.get("/neuron/1/3.json").json()["token_lookups"]]
        assert index.catalogs is rebuilt


def test_versions_are_listed_again_when_a_log_changes_within_a_clock_tick(own_warehouse, monkeypatch):
    from nx.web import index as index_module

    warehouse = Warehouse(own_warehouse)
    log = warehouse.log("explanations").log_path
    watch = index_module.Versions(warehouse)
    add_run(own_warehouse, "tick-a")
    stamp = os.stat(log).st_mtime_ns
    seen = watch.current()["explanations"]
    add_run(own_warehouse, "tick-b")
    os.utime(log, ns=(stamp, stamp))  # as if both commits fell in one tick of the file system's clock
    assert watch.current()["explanations"] == seen + 1
    # a log unchanged for a while is not listed again: one stat per table
    old = time.time_ns() - 10**10
    for table in ("explanations", "neurons"):
        path = warehouse.log(table).log_path
        os.utime(path, ns=(old, old))
    watch.current()
    listed = []
    monkeypatch.setattr(index_module.delta_log, "latest_version", lambda files: listed.append(files) or 0)
    watch.current()
    assert not [f for f in listed if f.log_path.endswith(("explanations/_delta_log", "neurons/_delta_log"))]
