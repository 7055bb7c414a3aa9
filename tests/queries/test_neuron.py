"""``nx.neuron`` and ``nx show``: one neuron's records as plain objects, and its card."""
from __future__ import annotations

import json
import math
import re

import pyarrow as pa
import pytest

import nx
from nx.errors import NotFoundError
from nx.queries.card import draw_card
from nx.warehouse import Replace, Warehouse
from query_fixtures import cli, copied_warehouse, warehouse  # noqa: F401  (fixtures)


def pairs(records: list[dict]) -> list[tuple[list, list]]:
    return [(r["tokens"], r["activations"]) for r in records]


@pytest.mark.parametrize("layer, neuron", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_a_neuron_comes_back_as_its_source_records(warehouse, source_tree, layer, neuron):
    objects = source_tree["objects"]
    found = nx.neuron(layer, neuron, warehouse=warehouse)
    record = objects[("collated-activations", layer, neuron)]
    assert pairs(found.top_records) == pairs(record["most_positive_activation_records"])
    assert pairs(found.random_records) == pairs(record["random_sample"])
    quantiles = [r for bin_ in record["random_sample_by_quantile"] or [] for r in bin_]
    assert pairs(found.quantile_records) == pairs(quantiles)
    assert found.stats["mean"] == record["mean"] and found.stats["quantile_boundaries"] == record["quantile_boundaries"]

    [explanation] = objects[("explanations", layer, neuron)]["scored_explanations"]
    [row] = found.explanations
    assert (row["run"], row["explanation"]) == ("public", explanation["explanation"])
    assert row["score"] == explanation["scored_simulation"]["ev_correlation_score"]
    sequences = explanation["scored_simulation"]["scored_sequence_simulations"]
    assert [s["tokens"] for s in row["sequences"]] == [s["simulation"]["tokens"] for s in sequences]
    assert [s["true_activations"] for s in row["sequences"]] == [s["true_activations"] for s in sequences]

    lookup = objects[("token-lookups", layer, neuron)]
    assert [(t["token"], t["average_activation"]) for t in found.token_lookups] == \
        list(zip(lookup["tokens"], lookup["average_activations"]))
    weights = objects[("token-weights", layer, neuron)]
    for side, entries in found.token_weights.items():
        assert [(e["token"], e["strength"]) for e in entries] == list(zip(weights[side]["tokens"], weights[side]["strengths"]))

    related = objects[("related-neurons", layer, neuron)]
    for side, listed in (("c_fc", found.upstream), ("c_proj", found.downstream)):
        expected = []
        for sign in ("positive", "negative"):
            names = (related[side] or {}).get(f"top_{sign}_neurons", [])
            weights_ = (related[side] or {}).get(f"top_{sign}_weights", [])
            expected += [(sign, f"{l}_{n}", w) for (l, n), w in zip((name.split("_") for name in names), weights_)]
        assert [(e["sign"], f"{e['layer']}_{e['neuron']}", e["weight"]) for e in listed] == expected


def test_related_neurons_carry_the_other_neurons_best_public_explanation(copied_warehouse, source_tree):
    store = Warehouse(copied_warehouse)
    partitions = {"model": "gpt2-xl", "layer": 0}
    rows = store.read_table("related_neurons", partitions).to_pylist()
    target = next(r for r in rows if r["neuron"] == 0 and r["direction"] == "output" and r["rank"] == 0
                  and r["sign"] == "positive")
    target["other_layer"], target["other_neuron"] = 1, 1
    changed = pa.Table.from_pylist([r for r in rows if r["neuron"] == 0])
    store.commit("related_neurons", store.write_files("related_neurons", partitions, changed),
                 [Replace({"model": "gpt2-xl"}, {(0, 0)})])
    found = nx.neuron(0, 0, warehouse=copied_warehouse)
    first = found.downstream[0]
    [explanation] = source_tree["objects"][("explanations", 1, 1)]["scored_explanations"]
    assert (first["layer"], first["neuron"], first["explanation"]) == (1, 1, explanation["explanation"])
    assert all(e["explanation"] is None for e in found.downstream[1:])  # neurons outside the small grid


def _relate_to_the_grid(warehouse: str) -> Warehouse:
    """Commit related neurons of 0/0 that are all 1/1, a neuron of the sample's grid (the
    others lie outside it, without explanations)."""
    store = Warehouse(warehouse)
    related = store.read_table("related_neurons", {"model": "gpt2-xl", "layer": 0}).to_pylist()
    for row in related:
        if row["neuron"] == 0:
            row["other_layer"], row["other_neuron"] = 1, 1
    store.commit("related_neurons", store.write_files("related_neurons", {"model": "gpt2-xl", "layer": 0},
                                                      pa.Table.from_pylist([r for r in related if r["neuron"] == 0])),
                 [Replace({"model": "gpt2-xl"}, {(0, 0)})])
    return store


def test_related_neurons_show_a_new_best_explanation_in_the_same_process(copied_warehouse):
    """The best public explanations are kept in memory per version of the explanations table:
    a commit that changes one is seen by the next call."""
    store = _relate_to_the_grid(copied_warehouse)
    before = nx.neuron(0, 0, warehouse=copied_warehouse)
    target = next(e for e in before.upstream + before.downstream if e["explanation"] is not None)
    assert target["explanation"] != "a new text, scored best"
    partitions = {"model": "gpt2-xl", "run": "public"}
    rows = [r for r in store.read_table("explanations", partitions).to_pylist()
            if (r["layer"], r["neuron"]) == (target["layer"], target["neuron"])]
    for row in rows:
        row["explanation"], row["score"] = "a new text, scored best", 2.0
    store.commit("explanations", store.write_files("explanations", partitions, pa.Table.from_pylist(rows)),
                 [Replace(partitions, {(target["layer"], target["neuron"])})])
    after = nx.neuron(0, 0, warehouse=copied_warehouse)
    changed = [e for e in after.upstream + after.downstream
               if (e["layer"], e["neuron"]) == (target["layer"], target["neuron"])]
    assert changed and all((e["explanation"], e["score"]) == ("a new text, scored best", 2.0) for e in changed)


def test_related_neurons_explanations_agree_whether_scanned_or_kept_in_memory(copied_warehouse):
    """The first call for a version of explanations scans for its related neurons' best
    explanations; the second builds the table kept in memory, the third reads it."""
    from nx.queries import neuron as neuron_module

    _relate_to_the_grid(copied_warehouse)
    calls = [nx.neuron(layer, neuron, warehouse=copied_warehouse) for layer, neuron in [(0, 0), (0, 1), (0, 0)]]
    assert any(key[0] == copied_warehouse for key in neuron_module._BEST_PUBLIC)  # built at the second call
    related = [[(e["layer"], e["neuron"], e["explanation"], e["score"]) for e in c.upstream + c.downstream]
               for c in calls]
    assert related[0] == related[2] and any(text is not None for _, _, text, _ in related[0])


def test_a_neuron_with_some_kinds_missing_is_still_found(warehouse, source_tree):
    layer, neuron = source_tree["broken_neurons"]["A"]  # collated ok; the other four kinds missing or malformed
    found = nx.neuron(layer, neuron, warehouse=warehouse)
    assert found.explanations == [] and found.token_lookups == [] and found.upstream == []
    assert math.isnan(found.stats["mean"])  # the NaN-literal file


def test_a_neuron_that_is_not_there_is_a_clear_error(warehouse, cli):
    with pytest.raises(NotFoundError) as error:
        nx.neuron(7, 12, warehouse=warehouse)
    assert str(error.value) == f"neuron 7/12 of model gpt2-xl is not in the warehouse {warehouse}"
    result = cli("show", "0", "99", "-w", warehouse)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"nx: error: neuron 0/99 of model gpt2-xl is not in the warehouse {warehouse}\n"
    other_model = cli("show", "0", "0", "--model", "gpt2-small", "-w", warehouse)
    assert other_model.stderr == f"nx: error: neuron 0/0 of model gpt2-xl is not in the warehouse {warehouse}\n" \
        .replace("gpt2-xl", "gpt2-small")


def test_show_prints_every_section_of_the_card(cli, warehouse, source_tree, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    result = cli("show", "1", "1", "-w", warehouse, "--records", "2")
    assert result.exit_code == 0
    text = result.stdout
    [explanation] = source_tree["objects"][("explanations", 1, 1)]["scored_explanations"]
    for expected in ("Neuron 1/1 · gpt2-xl", "Explanations", explanation["explanation"], "random-only",
                     "Top activation records (2 of 20, shaded by activation)", "Token lookup table",
                     "Weight-based tokens", "input positive", "Upstream neurons (input)"):
        assert expected in text
    assert "Downstream neurons" not in text  # layer 1 is the last layer of the grid
    assert text.count("#") == 2


def test_show_makes_whitespace_in_tokens_visible(cli, warehouse):
    text = cli("show", "0", "1", "-w", warehouse).stdout  # the hard neuron: tabs, newlines, U+FFFD
    assert "↵" in text and "⇥" in text
    assert "«" in text  # the peak token is marked when there is no colour


def test_tokens_are_shaded_by_activation_on_a_colour_terminal(warehouse):
    import io

    buffer = io.StringIO()
    draw_card(nx.neuron(0, 0, warehouse=warehouse), buffer, color=True, width=120)
    text = buffer.getvalue()
    backgrounds = re.findall(r"\x1b\[([0-9;]*)m", text)
    assert any(re.search(r"(^|;)(4[0-7]|10[0-7]|48)(;|$)", codes) for codes in backgrounds)
    assert "«" not in text


def test_show_json_is_what_nx_neuron_returns(cli, warehouse):
    shown = json.loads(cli("show", "1", "3", "-w", warehouse, "--json").stdout)
    expected = nx.neuron(1, 3, warehouse=warehouse).asdict()
    assert shown["stats"]["mean"] is None  # NaN -> null
    expected["stats"] = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                         for k, v in expected["stats"].items()}
    assert shown == json.loads(json.dumps(expected))
