"""The neuron page: one neuron's data turned into the panes of the original neuron viewer.

``parse_ids`` checks the URL's numbers against the catalog (a layer or neuron the warehouse
does not have is a NotFoundError naming what it has); ``decorate`` adds to what
``neuron_data.read`` returns (the shape of ``nx.neuron(...).asdict()``) the metadata of each
explanation's run, links and the navigation: that is the JSON twin. ``panes`` shapes it
for the template: token heatmaps as escaped HTML (``tokens.py``), real-vs-simulated pairs
per scored sequence, chips for tokens, related neurons grouped by direction and sign.
"""
from __future__ import annotations

from nx.errors import NotFoundError
from nx.queries.neuron import WEIGHT_SIDES
from nx.web import histogram, tokens
from nx.web.catalog import Catalog, settings_of
from nx.web.params import whole
from nx.web.tokens import when

SCORES = (("score", "ev-correlation"), ("rsquared_score", "r²"), ("absolute_dev_explained_score", "abs-dev"),
          ("top_only_score", "top-only"), ("random_only_score", "random-only"))
# The detection and fuzzing scorers' metrics (nx explain --scorer), shown where a run has them.
SCORER_METRICS = tuple((f"{scorer}_{key}", f"{scorer} {label}") for scorer in ("detection", "fuzzing")
                       for key, label in (("balanced_accuracy", "bal. acc."), ("precision", "precision"),
                                          ("recall", "recall"), ("f1", "F1"), ("auc", "AUC")))
RUN_FIELDS = ("explainer_model", "simulator_model", "explainer", "simulator", "calibrate", "prompt_versions",
              "started_at", "ended_at")
NORMALIZED_SCALE = "simulated_normalized_activations"
# The public datasets' five bins of random_sample_by_quantile, as the original viewer labels
# them: quantile ranges of the neuron's activations ([0.999, 1] overlaps the top records).
QUANTILE_LEVELS = (0.0, 0.5, 0.9, 0.99, 0.999, 1.0)
SHOWN_TOP = 20
SHOWN_SEQUENCES = 2  # per explanation, before "more"


def parse_ids(layer: str, neuron: str, catalog: Catalog) -> tuple[int, int]:
    """Layer and neuron from the URL, checked against what the warehouse holds."""
    layer_number = whole(layer, "layer")
    neuron_number = whole(neuron, "neuron")
    if not catalog.has_layer(layer_number):
        raise NotFoundError(f"layer {layer_number} of model {catalog.model} is not in the warehouse "
                            f"({catalog.describe_layers()})")
    count = catalog.neuron_count(layer_number)
    if neuron_number >= count:
        raise NotFoundError(f"neuron {neuron_number} is not in layer {layer_number} of model {catalog.model} "
                            f"(neurons 0-{count - 1})")
    return layer_number, neuron_number


def decorate(found: dict, catalog: Catalog) -> dict:
    """The JSON twin: the neuron's data plus its runs' metadata, links and navigation."""
    runs = {r["run"]: r for r in catalog.runs}
    for explanation in found["explanations"]:
        meta = runs.get(explanation["run"], {})
        explanation["run_metadata"] = {k: meta.get(k) for k in RUN_FIELDS}
    for side in ("upstream", "downstream"):
        for row in found[side]:
            row["url"] = f"/neuron/{row['layer']}/{row['neuron']}"
    found["quantile_bins"] = quantile_bins(found)
    found["navigation"] = catalog.navigation(found["layer"], found["neuron"])
    found["url"] = f"/neuron/{found['layer']}/{found['neuron']}"
    return found


def quantile_bins(found: dict) -> list[dict]:
    """Each bin of ``random_sample_by_quantile``: its quantile range (``levels``) when the
    neuron has the public datasets' five bins, and its activation bounds where
    ``quantile_boundaries`` gives them without doubt: one boundary more than bins (edges
    included: bin q spans boundaries q and q+1) or one fewer (inner boundaries only: bin q
    lies above boundary q-1 and below boundary q). Any other length gives no bounds."""
    stats = found.get("stats") or {}
    held = [r["quantile"] for r in found["quantile_records"] if r.get("quantile") is not None]
    count = max([stats.get("quantile_count") or 0] + [q + 1 for q in held])
    boundaries = stats.get("quantile_boundaries") or []
    bins = []
    for q in range(count):
        low = high = None
        if len(boundaries) == count + 1:
            low, high = boundaries[q], boundaries[q + 1]
        elif len(boundaries) == count - 1:
            low = boundaries[q - 1] if q > 0 else None
            high = boundaries[q] if q < count - 1 else None
        levels = list(QUANTILE_LEVELS[q:q + 2]) if count == len(QUANTILE_LEVELS) - 1 else None
        bins.append({"quantile": q, "levels": levels, "low": low, "high": high, "records": held.count(q)})
    return bins


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"activations {tokens.number(low)} to {tokens.number(high)}"
    if high is not None:
        return f"activations up to {tokens.number(high)}"
    return f"activations from {tokens.number(low)}" if low is not None else ""


def _quantile_title(found: dict) -> str:
    levels = found["levels"]
    return (f"Quantile range [{levels[0]:g}, {levels[1]:g}]" if levels else f"Quantile bin {found['quantile']}")


def neuron_scale(data: dict) -> float:
    stats = data.get("stats") or {}
    best = stats.get("max_activation")
    if best is not None and best > 0:
        return float(best)
    return tokens.scale_of(*(r["activations"] for r in data["top_records"] + data["random_records"])) or 1.0


def _records(rows: list[dict], scale: float) -> list[dict]:
    return [{"rank": r["rank"], "max": tokens.number(r.get("max_activation"), 3),
             "html": tokens.record_html(r["tokens"], r["activations"], scale)} for r in rows]


def _explanation(e: dict, scale: float, samples: int = 1) -> dict:
    sequences = e.get("sequences") or []
    true_scale = max(scale, tokens.scale_of(*(s["true_activations"] for s in sequences)))
    shown = []
    for s in sequences:
        normalized = (s.get("activation_scale") or NORMALIZED_SCALE) == NORMALIZED_SCALE
        expected_scale = 10.0 if normalized else true_scale
        shown.append({
            "seq_index": s["seq_index"], "sample": s.get("sample") or "unlabelled",
            "score": tokens.number(s.get("ev_correlation_score")),
            "scale": "a 0–10 scale" if normalized else "the activation scale",
            "html": tokens.simulation_html(s["tokens"], s["true_activations"], s.get("expected_activations"),
                                           true_scale, expected_scale),
        })
    scorers = [(key, label) for key, label in SCORER_METRICS if e.get(key) is not None]
    sample = None
    if samples > 1:   # nx explain --samples N: which of the run's samples, and whether it is the best
        sample = f"{(e.get('explanation_index') or 0) + 1} of {samples}" + (", the best" if e.get("best") else "")
    return {**e, "scores": [(label, tokens.number(e.get(key)), e.get(key)) for key, label in (*SCORES, *scorers)],
            "shown_sequences": shown,
            "meta": [(k, v) for k, v in [("sample", sample), *_settings(e)] if v is not None]}


def _settings(e: dict) -> list[tuple[str, object]]:
    """How an explanation was made: its own columns first, its run's row for the rest."""
    run = e.get("run_metadata") or {}

    def of(key: str):
        return e.get(key) if e.get(key) is not None else run.get(key)

    settings = settings_of({"run": e["run"], **{k: of(k) for k in ("explainer", "explainer_model", "simulator",
                                                                    "simulator_model")},
                            "calibrate": e.get("calibration") or run.get("calibrate")})
    return [("explainer", settings["explainer"]), ("simulator", settings["simulator"]),
            ("calibration", settings["calibration"]),
            ("prompts", e["prompt_version"].replace(",", ", ") if e.get("prompt_version") else None),
            ("run started", when(run.get("started_at")))]


def panes(data: dict) -> dict:
    """Template context: the JSON twin plus ready-to-place HTML for each pane."""
    scale = neuron_scale(data)
    quantiles: dict[int, list[dict]] = {}
    for row in data["quantile_records"]:
        quantiles.setdefault(row["quantile"], []).append(row)
    lookup_scale = tokens.scale_of([r["average_activation"] for r in data["token_lookups"]]) or 1.0
    weights = {}
    for side in WEIGHT_SIDES:
        rows = data["token_weights"].get(side, [])
        side_scale = tokens.scale_of([abs(r["strength"]) for r in rows if r["strength"] is not None]) or 1.0
        colour = tokens.GREEN if side.endswith("positive") else tokens.RED
        weights[side.replace("_", " ")] = [tokens.chip_html(r["token"], r["strength"], side_scale, colour)
                                          for r in rows]
    related = {}
    for side, title in (("upstream", "Upstream (input weights)"), ("downstream", "Downstream (output weights)")):
        for sign in ("positive", "negative"):
            related[f"{title}, {sign}"] = [r for r in data[side] if r["sign"] == sign]
    bins = data.get("quantile_bins") or quantile_bins(data)
    distribution = histogram.histogram(data, bins)
    return {
        "data": data, "scale": scale, "histogram": histogram.svg(distribution),
        "histogram_tokens": (distribution or {}).get("tokens"),
        "explanations": [_explanation(e, scale, [x["run"] for x in data["explanations"]].count(e["run"]))
                         for e in data["explanations"]],
        "top": _records(data["top_records"], scale), "shown_top": SHOWN_TOP, "shown_sequences": SHOWN_SEQUENCES,
        "random": _records(data["random_records"], scale),
        # highest bin first, as in the original viewer: below the top records, down to the median
        "quantiles": [{"quantile": b["quantile"], "title": _quantile_title(b), "bounds": _bounds(b["low"], b["high"]),
                       "records": _records(quantiles.get(b["quantile"], []), scale)}
                      for b in reversed(bins)],
        "lookups": [tokens.chip_html(r["token"], r["average_activation"], lookup_scale) for r in data["token_lookups"]],
        "weights": weights, "related": related,
        "stats": [(label, tokens.number((data.get("stats") or {}).get(key), 4)) for key, label in
                  (("max_activation", "max activation"), ("mean", "mean"), ("variance", "variance"),
                   ("skewness", "skewness"), ("kurtosis", "kurtosis"))],
    }
