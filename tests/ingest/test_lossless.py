"""Every value of every source file is in the tables: each source object is rebuilt from the
rows and compared with the parsed source JSON, quirks included."""
from __future__ import annotations

import pytest

from ingest_helpers import nan_aware_equal, rebuilt

KINDS = ("collated-activations", "explanations", "related-neurons", "token-lookups", "token-weights")


@pytest.mark.parametrize("kind", KINDS)
def test_every_ingested_file_rebuilds_to_the_parsed_source(ingested, kind):
    source = ingested["source"]
    checked = 0
    for layer, neuron in source["ok"][kind]:
        original = source["objects"][(kind, layer, neuron)]
        assert nan_aware_equal(rebuilt(ingested["warehouse"], kind, layer, neuron), original), (kind, layer, neuron)
        checked += 1
    assert checked == len(source["ok"][kind]) > 0


def test_hard_neuron_quirks_survive(ingested):
    """Spot checks of the quirks the round trip covers, so a regression names its cause."""
    warehouse = ingested["warehouse"]
    record = rebuilt(warehouse, "collated-activations", 0, 1)
    assert record["mean"] is None and record["random_sample_by_quantile"] is None
    assert record["random_sample"] == []
    assert "dfa_values" in record["most_positive_activation_records"][0]
    tokens = {t for r in record["most_positive_activation_records"] for t in r["tokens"]}
    assert {"\t", "\n", "\ufffd", "<|endoftext|>"} <= tokens
    second = rebuilt(warehouse, "collated-activations", 1, 0)
    assert [] in second["random_sample_by_quantile"]
    explanation = rebuilt(warehouse, "explanations", 0, 1)
    sequences = explanation["scored_explanations"][0]["scored_simulation"]["scored_sequence_simulations"]
    assert all(type(v) is int for v in sequences[0]["simulation"]["expected_activations"])
    assert sequences[1]["simulation"]["distribution_values"] == []
    assert sequences[2]["simulation"]["distribution_values"] is None
    assert list(explanation["scored_explanations"][0])[-1] == "dataclass_name"


def test_nan_literal_file_is_read_not_called_malformed(ingested):
    source = ingested["source"]
    from ingest_helpers import log_rows

    for kind, layer, neuron in source["nan_literal"]:
        entry = log_rows(ingested["warehouse"], kind)[(layer, neuron)]
        assert entry["status"] == "ok"
        assert "non-strict" in entry["note"]
