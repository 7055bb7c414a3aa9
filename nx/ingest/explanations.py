"""Kind ``explanations``: NeuronSimulationResults files -> ``explanations`` +
``explanation_sequences`` (run ``public``).

Each scored sequence keeps its simulation, the uncalibrated simulation nested in it (depth 2,
as calibrated runs write; anything deeper is kept verbatim in ``extras``), distributions in
all their shapes (an inner ``[]``, an outer ``[]``, ``null``) and integer expected values.
``derive`` labels each sequence 'top' or 'random' by joining its ``sequence_id`` to the
neuron's activation records (the paper scores 5 top then 5 random "valid" records; the file
itself does not say which is which) and computes the top-only and random-only scores.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from nx import layout, scoring
from nx.ingest import extras
from nx.ingest.collated_activations import neuron_id_leftovers, restore_neuron_id
from nx.ingest.decode import (expect_list, expect_number, expect_number_lists, expect_numbers, expect_object,
                              expect_string, expect_strings)
from nx.ingest.rows import Rows
from nx.keys import sequence_ids

KIND = "explanations"
DIRECTORY, SUFFIX, TABLES, MAIN_TABLE = layout.KINDS[KIND][1:]  # declared in nx/layout.py
CHUNK = 128  # equal to collated-activations' so a unit reads one activation-records file
DERIVED = {"explanations": ("top_only_score", "random_only_score"),
           "explanation_sequences": ("sample", "sequence_id")}

RESULTS_FIELDS = ("neuron_id", "scored_explanations")
EXPLANATION_FIELDS = ("explanation", "scored_simulation")
SCORE_FIELDS = scoring.SCORE_NAMES
SIMULATION_FIELDS = ("scored_sequence_simulations", *SCORE_FIELDS)
SEQUENCE_FIELDS = ("simulation", "true_activations", *SCORE_FIELDS)
SIM_FIELDS = ("tokens", "expected_activations", "activation_scale", "distribution_values",
              "distribution_probabilities", "uncalibrated_simulation")
INNER = "simulation.uncalibrated_simulation"
# keys the seed renamed, under their older names (see extras.adopt)
RESULTS_OLDER_NAMES = {"scored_explanation_or_baseline_list": "scored_explanations"}
EXPLANATION_OLDER_NAMES = {"explanation_or_baseline": "explanation"}
SEQUENCE_OLDER_NAMES = {"sequence_simulation": "simulation"}
SIMULATION_OLDER_NAMES = {"unit": "activation_scale"}


def _int_positions(values: list | None) -> list[int] | None:
    if not values:
        return None
    positions = [i for i, v in enumerate(values) if type(v) is int]
    return positions or None


def _scores(obj: dict, where: str) -> dict:
    return {name: expect_number(obj.get(name), f"{where}.{name}") for name in SCORE_FIELDS}


def _simulation(value: object, where: str) -> tuple[dict, dict]:
    """A SequenceSimulation (older key names adopted) and its values checked by type, keyed
    by field (big integers made floats: see decode.expect_number)."""
    simulation = extras.adopt(expect_object(value, where), SIMULATION_OLDER_NAMES)
    checked = {
        "tokens": expect_strings(simulation.get("tokens"), f"{where}.tokens", nullable=True),
        "expected_activations": expect_numbers(simulation.get("expected_activations"),
                                               f"{where}.expected_activations", nullable=True),
        "activation_scale": expect_string(simulation.get("activation_scale"), f"{where}.activation_scale"),
        **{name: expect_number_lists(simulation.get(name), f"{where}.{name}", nullable=True)
           for name in ("distribution_values", "distribution_probabilities")},
    }
    return simulation, checked


def _add_sequence(rows: Rows, neuron: int, explanation_index: int, seq_index: int, seq: object, where: str) -> None:
    sequence = extras.adopt(expect_object(seq, where), SEQUENCE_OLDER_NAMES)
    outer, values = _simulation(sequence.get("simulation"), f"{where}.simulation")
    true_activations = expect_numbers(sequence.get("true_activations"), f"{where}.true_activations", nullable=True)
    inner_value = outer.get("uncalibrated_simulation")
    inner, inner_values = (_simulation(inner_value, f"{where}.simulation.uncalibrated_simulation")
                           if inner_value is not None else (None, {}))
    by_path: dict = {
        "": extras.leftovers(sequence, SEQUENCE_FIELDS, "ScoredSequenceSimulation"),
        "simulation": extras.leftovers(outer, SIM_FIELDS, "SequenceSimulation"),
        "ints.expected_activations": _int_positions(values["expected_activations"]),
        "ints.true_activations": _int_positions(true_activations),
    }
    if inner is not None:
        by_path[INNER] = extras.leftovers(inner, SIM_FIELDS, "SequenceSimulation")
        by_path["ints.uncalibrated_expected_activations"] = _int_positions(inner_values["expected_activations"])
        if inner.get("tokens") != outer.get("tokens"):
            by_path["uncalibrated.tokens"] = inner.get("tokens")
        if inner.get("uncalibrated_simulation") is not None:
            by_path["uncalibrated.uncalibrated_simulation"] = inner["uncalibrated_simulation"]
    rows.append(
        "explanation_sequences", neuron=neuron, explanation_index=explanation_index, seq_index=seq_index,
        tokens=values["tokens"], true_activations=true_activations,
        expected_activations=values["expected_activations"], activation_scale=values["activation_scale"],
        distribution_values=values["distribution_values"],
        distribution_probabilities=values["distribution_probabilities"],
        uncalibrated_expected_activations=inner_values.get("expected_activations"),
        uncalibrated_activation_scale=inner_values.get("activation_scale"),
        uncalibrated_distribution_values=inner_values.get("distribution_values"),
        uncalibrated_distribution_probabilities=inner_values.get("distribution_probabilities"),
        extras=extras.dumps(by_path), **_scores(sequence, where),
    )


def flatten(obj: object, layer: int, neuron: int) -> tuple[Rows, dict | None]:
    results = extras.adopt(expect_object(obj, "NeuronSimulationResults"), RESULTS_OLDER_NAMES)
    rows = Rows(TABLES)
    explanations = expect_list(results.get("scored_explanations", []), "scored_explanations")
    for index, value in enumerate(explanations):
        where = f"scored_explanations[{index}]"
        explanation = extras.adopt(expect_object(value, where), EXPLANATION_OLDER_NAMES)
        text = expect_string(explanation.get("explanation"), f"{where}.explanation")
        simulation = expect_object(explanation.get("scored_simulation"), f"{where}.scored_simulation")
        scores = _scores(simulation, f"{where}.scored_simulation")
        sequences = expect_list(simulation.get("scored_sequence_simulations", []), f"{where}.scored_sequence_simulations")
        for seq_index, seq in enumerate(sequences):
            _add_sequence(rows, neuron, index, seq_index, seq, f"{where}.scored_sequence_simulations[{seq_index}]")
        rows.append(
            "explanations", neuron=neuron, explanation_index=index, explanation=text,
            score=scores["ev_correlation_score"], sequence_count=len(sequences), status="ok",
            extras=extras.dumps({
                "": extras.leftovers(explanation, EXPLANATION_FIELDS, "ScoredExplanation"),
                "scored_simulation": extras.leftovers(simulation, SIMULATION_FIELDS, "ScoredSimulation"),
            }),
            **scores,
        )
    skeleton = {"": extras.leftovers(results, RESULTS_FIELDS, "NeuronSimulationResults"),
                "neuron_id": neuron_id_leftovers(results.get("neuron_id"), layer, neuron, "neuron_id")}
    return rows, extras.file_skeleton(skeleton, [])


# -- derived columns -------------------------------------------------------------------------
def _record_samples(context) -> dict[tuple[int, str], str]:
    """(neuron, sequence_id) -> 'top' | 'random' from the chunk's activation records."""
    if context is None:
        return {}
    if "record_samples" not in context.cache:
        context.cache["record_samples"] = _read_record_samples(context)
    return context.cache["record_samples"]


def _read_record_samples(context) -> dict[tuple[int, str], str]:
    records = context.warehouse.read_table("activation_records", {"model": context.model, "layer": context.layer},
                                           columns=["neuron", "sample", "sequence_id"],
                                           neurons=(min(context.neurons), max(context.neurons)))
    labels: dict[tuple[int, str], str] = {}
    for neuron, sample, sid in zip(*(records.column(c).to_pylist() for c in ("neuron", "sample", "sequence_id"))):
        if sample == "top" or (sample == "random" and labels.get((neuron, sid)) != "top"):
            labels[(neuron, sid)] = sample
    return labels


def labelled(context):
    """neuron -> whether its sequences could be labelled (its activation records were there)."""
    neurons = {n for n, _ in _record_samples(context)}
    return lambda neuron: neuron in neurons


def derive(tables: dict[str, pa.Table], context=None) -> dict[str, pa.Table]:
    sequences = tables["explanation_sequences"]
    ids = sequence_ids(sequences.column("tokens"), sequences.column("true_activations"))
    labels = _record_samples(context)
    neurons = sequences.column("neuron").to_pylist()
    samples = [labels.get((n, sid)) for n, sid in zip(neurons, ids.to_pylist())]
    sequences = sequences.append_column("sample", pa.array(samples, pa.string()))
    sequences = sequences.append_column("sequence_id", ids)
    grouped: dict[tuple[int, int, str], tuple[list, list]] = {}
    keys = zip(neurons, sequences.column("explanation_index").to_pylist(), samples)
    for key, truth, expected in zip(keys, sequences.column("true_activations").to_pylist(),
                                    sequences.column("expected_activations").to_pylist()):
        if key[2] in ("top", "random") and truth is not None and expected is not None and len(truth) == len(expected):
            pooled = grouped.setdefault(key, ([], []))
            pooled[0].append(truth)
            pooled[1].append(expected)
    explanations = tables["explanations"]
    for sample, column in (("top", "top_only_score"), ("random", "random_only_score")):
        values = []
        for neuron, index in zip(explanations.column("neuron").to_pylist(),
                                 explanations.column("explanation_index").to_pylist()):
            pooled = grouped.get((neuron, index, sample))
            values.append(scoring.score(*pooled).ev_correlation_score if pooled else None)
        explanations = explanations.append_column(column, pa.array(values, pa.float64()))
    return {"explanations": explanations, "explanation_sequences": sequences}


# -- back to the source object -----------------------------------------------------------------
def _with_ints(values: list | None, positions) -> list | None:
    if values is None or not positions:
        return values
    out = list(values)
    for i in positions:
        out[i] = int(out[i])
    return out


def _rebuild_sequence(row: dict) -> dict:
    by_path = extras.loads(row["extras"])
    inner = None
    if row["uncalibrated_expected_activations"] is not None or INNER in by_path:
        inner = extras.restore({
            "tokens": by_path.get("uncalibrated.tokens", row["tokens"]),
            "expected_activations": _with_ints(row["uncalibrated_expected_activations"],
                                               by_path.get("ints.uncalibrated_expected_activations")),
            "activation_scale": row["uncalibrated_activation_scale"],
            "distribution_values": row["uncalibrated_distribution_values"],
            "distribution_probabilities": row["uncalibrated_distribution_probabilities"],
            "uncalibrated_simulation": by_path.get("uncalibrated.uncalibrated_simulation"),
        }, by_path.get(INNER), "SequenceSimulation")
    outer = extras.restore({
        "tokens": row["tokens"],
        "expected_activations": _with_ints(row["expected_activations"], by_path.get("ints.expected_activations")),
        "activation_scale": row["activation_scale"],
        "distribution_values": row["distribution_values"],
        "distribution_probabilities": row["distribution_probabilities"],
        "uncalibrated_simulation": inner,
    }, by_path.get("simulation"), "SequenceSimulation")
    return extras.restore({
        "simulation": outer,
        "true_activations": _with_ints(row["true_activations"], by_path.get("ints.true_activations")),
        **{name: row[name] for name in SCORE_FIELDS},
    }, by_path.get(""), "ScoredSequenceSimulation")


def rebuild(rows: dict[str, list[dict]], layer: int, neuron: int, skeleton: dict | None = None) -> dict:
    skeleton = skeleton or {}
    sequences: dict[int, list[dict]] = {}
    for row in sorted(rows["explanation_sequences"], key=lambda r: (r["explanation_index"], r["seq_index"])):
        sequences.setdefault(row["explanation_index"], []).append(_rebuild_sequence(row))
    explanations = []
    for row in sorted(rows["explanations"], key=lambda r: r["explanation_index"]):
        by_path = extras.loads(row["extras"])
        simulation = extras.restore({
            "scored_sequence_simulations": sequences.get(row["explanation_index"], []),
            **{name: row[name] for name in SCORE_FIELDS},
        }, by_path.get("scored_simulation"), "ScoredSimulation")
        explanations.append(extras.restore({"explanation": row["explanation"], "scored_simulation": simulation},
                                           by_path.get(""), "ScoredExplanation"))
    return extras.restore({"neuron_id": restore_neuron_id(layer, neuron, skeleton.get("neuron_id")),
                           "scored_explanations": explanations}, skeleton.get(""), "NeuronSimulationResults")
