"""The Python API as a notebook user meets it: what dir(nx) and help() show, frames in the
format asked for, derived views as lazy frames, a neuron that prints in one line (and as an
escaped card), and range strings wherever numbers are asked for."""
from __future__ import annotations

import polars as pl
import pytest

import nx
from nx.errors import NotFoundError, UsageError
from nx.queries.neuron import Neuron
from nx.queries.views import DERIVED, TABLES
from query_fixtures import fresh_warehouse, warehouse  # noqa: F401  (fixtures)


def test_dir_lists_the_api_for_tab_completion():
    names = dir(nx)
    assert {"connect", "sql", "query", "scan", "neuron", "export", "ingest", "explain"} <= set(names)
    assert all(callable(getattr(nx, name)) or name in ("ingest", "explain") for name in names if name[0] != "_")


def test_help_of_scan_names_every_table_and_derived_view():
    for name in (*TABLES, *DERIVED):
        assert name in nx.scan.__doc__


@pytest.mark.parametrize("view", list(DERIVED))
def test_derived_views_scan_lazily_as_they_read_in_sql(warehouse, view):
    frame = nx.scan(view, warehouse)
    assert isinstance(frame, pl.LazyFrame)
    key = ["layer", "neuron"] + (["run"] if view == "best_explanations" else []) + (
        ["sample", "rank", "position"] if view == "activations" else [])
    scanned = frame.filter(pl.col("layer") == 1).collect().sort(key)
    expected = nx.sql(f"select * from {view} where layer = 1", warehouse, format="polars").sort(key)
    assert scanned.height > 0 and scanned.equals(expected)


def test_an_unknown_name_says_which_tables_and_views_there_are(warehouse):
    with pytest.raises(UsageError, match="views: activations, best_explanations, neuron_summary$"):
        nx.scan("best_explanation", warehouse)


def test_sql_and_query_hand_back_the_frame_asked_for(warehouse):
    statement = "select layer, count(*) as n from explanations group by layer order by layer"
    arrow = nx.sql(statement, warehouse)
    assert nx.sql(statement, warehouse, format="arrow").equals(arrow)
    assert nx.sql(statement, warehouse, format="polars").equals(pl.from_arrow(arrow))
    assert nx.query("top-explained", warehouse, min_score=0, format="polars").height == \
        nx.query("top-explained", warehouse, min_score=0).num_rows
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="pip install pandas"):
            nx.sql(statement, warehouse, format="pandas")
    else:
        assert nx.sql(statement, warehouse, format="pandas").equals(arrow.to_pandas())
    with pytest.raises(UsageError, match="^unknown format 'csv'; formats: arrow, polars, pandas$"):
        nx.sql(statement, warehouse, format="csv")


def test_a_neuron_prints_in_one_short_line(warehouse):
    found = nx.neuron(0, 1, warehouse=warehouse)
    text = repr(found)
    assert len(text) < 400 and "\n" not in text
    assert text.startswith("<Neuron gpt2-xl layer 0 neuron 1: ") and text.endswith(" neurons>")
    best = found.best_explanation
    assert best["score"] == max(e["score"] for e in found.explanations if e["run"] == "public")
    assert f"best {best['score']:.3f} (public)" in text


def test_a_neurons_card_in_a_notebook_escapes_everything():
    hostile = "<script>alert('x')</script>"
    neuron = Neuron("m<b>", 0, 1, stats={"max_activation": 2.0},
                    explanations=[{"run": "r&d", "score": 0.5, "explanation": hostile}],
                    top_records=[{"rank": 0, "tokens": ["<img src=x onerror=alert(1)>", "\n"],
                                  "activations": [2.0, None], "max_activation": 2.0}],
                    token_lookups=[{"rank": 0, "token": "</code><u>x</u>", "average_activation": 1.0}])
    card = neuron._repr_html_()
    for raw in (hostile, "<img", "<u>x</u>", "m<b>", "r&d"):
        assert raw not in card
    assert "&lt;script&gt;" in card and "&lt;img src=x" in card and "↵" in card and "r&amp;d" in card


def test_explain_takes_range_strings_as_ingest_does(fresh_warehouse):
    with pytest.raises(NotFoundError, match="no activation records"):
        nx.explain.run(warehouse=fresh_warehouse, layers="0", neurons="0-1", run="r", explainer_model="m",
                       simulator_model="m")
    with pytest.raises(UsageError, match="bad layer list"):
        nx.explain.run(warehouse=fresh_warehouse, layers="zero", run="r", explainer_model="m", simulator_model="m")
