"""The viewer's neuron page shows what nx explain wrote: every sample of a run (which one is the
best), its calibration, and the detection and fuzzing scores beside the simulation ones."""
from __future__ import annotations

import nx.explain
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER


def test_neuron_page_shows_samples_calibration_and_scorers(fake, warehouse):
    from starlette.testclient import TestClient

    from nx.web import create_app

    report = nx.explain.run(warehouse=warehouse, layers=[LAYER], neurons=[0], run="full",
                            explainer_model="fake-chat", simulator_model="fake-completion", simulator="all-at-once",
                            calibrate="percentile", samples=2, scorers="simulation,detection,fuzzing",
                            base_url=fake.url)
    assert report.ok == 1
    with TestClient(create_app(warehouse.url)) as client:
        data = client.get(f"/neuron/{LAYER}/0.json").json()
        page = client.get(f"/neuron/{LAYER}/0").text
    mine = [e for e in data["explanations"] if e["run"] == "full"]
    assert sorted(e["explanation_index"] for e in mine) == [0, 1]
    assert [e["best"] for e in mine].count(True) == 1
    assert all(e["calibration"] == "percentile" and e["detection_balanced_accuracy"] is not None for e in mine)
    assert all(len(e["sequences"]) == 10 for e in mine)
    for text in ("1 of 2", "2 of 2", "the best", "percentile", "detection bal. acc.", "fuzzing F1"):
        assert text in page, text
    # fake-completion gives no logprobs on chat: no AUC, and none shown
    assert all(e["fuzzing_auc"] is None for e in mine) and "fuzzing AUC" not in page
