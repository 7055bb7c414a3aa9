"""Two neurons side by side (``/compare-neurons?a=L/N&b=L/N``): explanations, scores, top
records, and the related neurons they share.

``parse`` reads ``L/N`` and checks it against the catalog (as the neuron page does); ``compare``
takes two results of ``neuron_data.read`` and keeps what the page shows of each (statistics,
every explanation with its scores but not its scored sequences, the first ``TOP`` top records)
plus the neurons both are connected to by weights, with the direction, sign and weight on each
side, and whether one is among the other's related neurons. ``panes`` adds the token heatmaps.
"""
from __future__ import annotations

from nx.web import neuron_page, tokens
from nx.web.catalog import Catalog
from nx.web.params import BadParameter

TOP = 5
SCORE_KEYS = ("score", "rsquared_score", "top_only_score", "random_only_score")


def parse(text: str | None, name: str, catalog: Catalog) -> tuple[int, int]:
    """``L/N`` (a layer and a neuron), checked against what the warehouse holds."""
    if not text or text.count("/") != 1:
        raise BadParameter(f"{name} must be a neuron as LAYER/NEURON, e.g. {name}=0/2")
    layer, neuron = text.split("/")
    return neuron_page.parse_ids(layer, neuron, catalog)


def _links(found: dict) -> dict[tuple[int, int], list[dict]]:
    links: dict[tuple[int, int], list[dict]] = {}
    for side in ("upstream", "downstream"):
        for row in found[side]:
            links.setdefault((row["layer"], row["neuron"]), []).append(
                {"direction": side, "sign": row["sign"], "weight": row["weight"]})
    return links


def _summary(found: dict) -> dict:
    return {"layer": found["layer"], "neuron": found["neuron"], "url": f"/neuron/{found['layer']}/{found['neuron']}",
            "stats": found.get("stats"),
            "explanations": [{"run": e["run"], "explanation": e.get("explanation"),
                              **{k: e.get(k) for k in SCORE_KEYS}} for e in found["explanations"]],
            "top_records": found["top_records"][:TOP]}


def compare(a: dict, b: dict) -> dict:
    """The JSON twin: both neurons in brief, the related neurons they share, direct links."""
    links_a, links_b = _links(a), _links(b)
    best = {}
    for side in ("upstream", "downstream"):
        for row in a[side] + b[side]:
            best[(row["layer"], row["neuron"])] = (row.get("explanation"), row.get("score"))
    shared = [{"layer": key[0], "neuron": key[1], "url": f"/neuron/{key[0]}/{key[1]}", "a": links_a[key],
               "b": links_b[key], "explanation": best[key][0], "score": best[key][1]}
              for key in sorted(links_a.keys() & links_b.keys())]
    key_a, key_b = (a["layer"], a["neuron"]), (b["layer"], b["neuron"])
    return {"model": a["model"], "a": _summary(a), "b": _summary(b), "shared": shared,
            "a_to_b": links_a.get(key_b, []), "b_to_a": links_b.get(key_a, [])}


def panes(data: dict) -> dict:
    """Template context: each neuron's top records as token heatmaps on that neuron's scale."""
    shown = {}
    for side in ("a", "b"):
        neuron = data[side]
        stats = neuron.get("stats") or {}
        scale = stats.get("max_activation") or tokens.scale_of(*(r["activations"] for r in neuron["top_records"])) or 1.0
        shown[side] = [{"rank": r["rank"], "max": tokens.number(r.get("max_activation"), 3),
                        "html": tokens.record_html(r["tokens"], r["activations"], scale)} for r in neuron["top_records"]]
    return {"records": shown}
