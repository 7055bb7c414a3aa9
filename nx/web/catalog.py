"""What the warehouse holds for one model, in brief: layers, neurons, runs (``Catalog``).

Every page needs the layers and neuron counts (to check a URL's numbers and draw
previous/next links) and the runs (for the filters and the comparison page). The index
(``index.py``) builds one ``Catalog`` per model each time it loads. ``random_neuron`` picks
from the neurons that exist, so it never lands on a hole.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

import numpy as np


KEYS_SQL = """
select layer, neuron from explanations where model = $model
union
select layer, neuron from neuron_keys where model = $model
order by layer, neuron
"""

# A run's settings come from its row in runs; the explanations' own columns fill in for a run
# without one. Public explanations were written from top activations by OpenAI.
RUNS_SQL = """
with counted as (
    select run, count(*) as explanations, count(distinct (layer, neuron)) as neurons,
           avg(score) as mean_score, min(layer) as first_layer, max(layer) as last_layer,
           min(explainer) as row_explainer, min(explainer_model) as row_explainer_model,
           min(simulator) as row_simulator, min(simulator_model) as row_simulator_model
    from explanations where model = $model group by run
)
select c.run, c.explanations, c.neurons, c.mean_score, c.first_layer, c.last_layer,
       coalesce(r.explainer, c.row_explainer, case when c.run = 'public' then 'token-activations' end) as explainer,
       coalesce(r.explainer_model, c.row_explainer_model) as explainer_model,
       coalesce(r.simulator, c.row_simulator) as simulator,
       coalesce(r.simulator_model, c.row_simulator_model) as simulator_model,
       json_extract_string(r.parameters, '$.calibrate') as calibrate, r.prompt_versions,
       r.started_at, r.ended_at, r.neurons_ok, r.neurons_failed
from counted c left join runs r on r.model = $model and r.run = c.run
order by c.run = 'public' desc, c.run
"""


def settings_of(run: dict) -> dict:
    """A run's settings in words, for the home page and the neuron page: explainer and
    simulator (kind and model), calibration, prompt versions."""
    public = run["run"] == "public"

    def pair(kind, model) -> str | None:
        model = model or ("OpenAI (public)" if public else None)
        return " · ".join(x for x in (kind, model) if x) or None

    calibrate = run.get("calibrate")
    if calibrate in ("true", "false"):  # written as a flag before there were kinds of calibration
        calibrate = "linear" if calibrate == "true" else None
    prompts = run.get("prompt_versions")
    try:
        prompts = ", ".join(f"{k}@{v}" for k, v in json.loads(prompts).items()) if prompts else None
    except (ValueError, AttributeError):
        pass  # not the JSON object nx writes: shown as it is
    return {"explainer": pair(run.get("explainer"), run.get("explainer_model")),
            "simulator": pair(run.get("simulator"), run.get("simulator_model")),
            "calibration": None if public else (calibrate or "none"), "prompts": prompts}

MODELS_SQL = "select distinct model from explanations union select distinct model from neuron_keys order by 1"


@dataclass
class Catalog:
    """One model's layers, neurons per layer and runs, as of ``loaded_at``."""

    model: str
    layers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    neurons: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # parallel to layers
    runs: list[dict] = field(default_factory=list)
    loaded_at: float = 0.0
    # The best public explanation of each neuron, sorted by key (layer << 20 | neuron), for related neurons.
    best_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    best_texts: list = field(default_factory=list)
    best_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))

    @property
    def layer_list(self) -> list[int]:
        return sorted(set(self.layers.tolist()))

    def has_layer(self, layer: int) -> bool:
        return bool(np.any(self.layers == layer))

    def neuron_count(self, layer: int) -> int:
        """One more than the highest neuron index of the layer (0: layer absent)."""
        found = self.neurons[self.layers == layer]
        return int(found.max()) + 1 if len(found) else 0

    def run_names(self) -> list[str]:
        return [r["run"] for r in self.runs]

    def random_neuron(self) -> tuple[int, int] | None:
        if not len(self.layers):
            return None
        i = random.randrange(len(self.layers))
        return int(self.layers[i]), int(self.neurons[i])

    def navigation(self, layer: int, neuron: int) -> dict:
        """Where previous/next neuron and layer up/down lead (None at the edges)."""
        layers = self.layer_list
        up = [l for l in layers if l < layer]
        down = [l for l in layers if l > layer]
        count = self.neuron_count(layer)

        def at(l: int) -> dict:
            return {"layer": l, "neuron": min(neuron, max(self.neuron_count(l) - 1, 0))}

        return {
            "previous_neuron": {"layer": layer, "neuron": neuron - 1} if neuron > 0 else None,
            "next_neuron": {"layer": layer, "neuron": neuron + 1} if neuron + 1 < count else None,
            "previous_layer": at(up[-1]) if up else None,
            "next_layer": at(down[0]) if down else None,
        }

    def best(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[str | None, float | None]]:
        """The best public explanation and score of each (layer, neuron) that has one."""
        if not keys or not len(self.best_keys):
            return {}
        wanted = np.array([(layer << 20) | neuron for layer, neuron in keys], np.int64)
        at = np.minimum(np.searchsorted(self.best_keys, wanted), len(self.best_keys) - 1)
        found = {}
        for key, i, hit in zip(keys, at.tolist(), (self.best_keys[at] == wanted).tolist()):
            if hit:
                score = float(self.best_scores[i])
                found[key] = (self.best_texts[i], None if score != score else score)
        return found

    def describe_layers(self) -> str:
        layers = self.layer_list
        if not layers:
            return "no layers"
        return f"layers {layers[0]}-{layers[-1]}" if len(layers) > 1 else f"layer {layers[0]}"


BEST_SQL = """
select (layer::bigint << 20) | neuron as key, explanation, coalesce(score, 'nan'::double) as score
from best_explanations where model = $model and run = 'public' order by key
"""


def load(cursor, model: str) -> Catalog:
    """The catalog of ``model`` from the index connection (``index.py``)."""
    keys = cursor.sql(KEYS_SQL, params={"model": model}).fetchnumpy()
    runs = cursor.sql(RUNS_SQL, params={"model": model}).to_arrow_table().to_pylist()
    for run in runs:
        run["settings"] = settings_of(run)
    best = cursor.sql(BEST_SQL, params={"model": model}).to_arrow_table()
    return Catalog(model, np.asarray(keys["layer"], np.int32), np.asarray(keys["neuron"], np.int32),
                   runs, time.monotonic(), best.column("key").to_numpy(), best.column("explanation").to_pylist(),
                   best.column("score").to_numpy())
