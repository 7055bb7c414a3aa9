"""Files that use the keys' older names (the TDB back-compat renames) are ingested into the
same columns as today's, and rebuild to what they were, older names included."""
from __future__ import annotations

import copy

import pytest

import cases
from ingest_helpers import log_rows, neuron_rows, rebuilt

LAYER, NEURON = 0, 2


def with_older_names(results: dict) -> dict:
    """A NeuronSimulationResults written with the names keys had before the seed renamed them."""
    old = copy.deepcopy(results)
    old["neuron_id"] = {"layer": LAYER, "idx": NEURON, "dataclass_name": "NeuronId"}
    explanations = old.pop("scored_explanations")
    for explanation in explanations:
        explanation["explanation_or_baseline"] = explanation.pop("explanation")
        explanation["dataclass_name"] = "ScoredExplanationOrBaseline"
        for sequence in explanation["scored_simulation"]["scored_sequence_simulations"]:
            simulation = sequence.pop("simulation")
            for level in (simulation, simulation.get("uncalibrated_simulation")):
                if level:
                    level["unit"] = level.pop("activation_scale")
            sequence["sequence_simulation"] = simulation
    old["scored_explanation_or_baseline_list"] = explanations
    return old


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    import nx.ingest

    root = tmp_path_factory.mktemp("legacy-source")
    record = cases.neuron_record(LAYER, NEURON, seed=5)
    results = cases.simulation_results(LAYER, NEURON, record, seed=5)
    record_old = dict(record, neuron_id={"layer": LAYER, "idx": NEURON, "dataclass_name": "NeuronId"})
    results_old = with_older_names(results)
    cases._write(root, cases.source_path("collated-activations", LAYER, NEURON), cases.dumps(record_old))
    cases._write(root, cases.source_path("explanations", LAYER, NEURON), cases.dumps(results_old) + b"\n")
    warehouse = str(tmp_path_factory.mktemp("legacy-warehouse"))
    report = nx.ingest.run(["collated-activations", "explanations"], source=str(root), warehouse=warehouse,
                           workers=1)
    return {"warehouse": warehouse, "report": report, "today": results, "record_old": record_old,
            "results_old": results_old}


def test_files_with_older_key_names_are_ingested_not_called_malformed(legacy):
    for kind in ("collated-activations", "explanations"):
        assert log_rows(legacy["warehouse"], kind)[(LAYER, NEURON)]["status"] == "ok"


def test_older_names_land_in_the_same_columns(legacy):
    rows = neuron_rows(legacy["warehouse"], "explanations", LAYER, NEURON)
    today = legacy["today"]["scored_explanations"][0]
    (explanation,) = rows["explanations"]
    assert explanation["explanation"] == today["explanation"]
    assert explanation["score"] == today["scored_simulation"]["ev_correlation_score"]
    sequences = sorted(rows["explanation_sequences"], key=lambda r: r["seq_index"])
    expected = today["scored_simulation"]["scored_sequence_simulations"]
    assert [s["activation_scale"] for s in sequences] == [e["simulation"]["activation_scale"] for e in expected]
    assert [s["tokens"] for s in sequences] == [e["simulation"]["tokens"] for e in expected]
    assert all(s["sample"] in ("top", "random") for s in sequences)  # joined to the activation records


def test_files_with_older_names_rebuild_to_what_they_were(legacy):
    assert rebuilt(legacy["warehouse"], "collated-activations", LAYER, NEURON) == legacy["record_old"]
    assert rebuilt(legacy["warehouse"], "explanations", LAYER, NEURON) == legacy["results_old"]
