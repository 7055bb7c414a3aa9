"""Helpers of the viewer's tests: hostile text, a planted second run, a real server in a thread."""
from __future__ import annotations

import datetime as dt
import math
import socket
import threading
import time
from pathlib import Path

import pyarrow as pa

from nx.schema import TABLES
from nx.warehouse import Warehouse

SAMPLE = Path(__file__).resolve().parents[2] / "nx" / "sample"
MODEL = "gpt2-xl"
RUN = "my-run"
# Text that would run script or break the page if it reached the HTML unescaped.
HOSTILE_EXPLANATION = '<img src=x onerror="window.__xss=1">"quoted" & </script><b>bold</b>'
STARTED = dt.datetime(2026, 12, 1, 14, 35, 21, 208804, tzinfo=dt.timezone.utc)
HOSTILE_TOKENS = ["<script>window.__xss=2</script>", '"><img src=x onerror=window.__xss=3>', "\u202e", "\t",
                  "\n", "\ufffd", "\u200f", "<|endoftext|>", "'", "</div></section>", " plain"]


def table_of(name: str, rows: list[dict]) -> pa.Table:
    """Rows of a table's stored columns (missing ones null)."""
    return pa.Table.from_pylist(rows, schema=TABLES[name].columns)


def plant_run(root: str) -> None:
    """A second run, ``my-run``, over layer 0: a hostile explanation for neuron 0, scores that
    disagree with the public run, scored sequences with hostile tokens; its ``runs`` row; and
    one more top record of neuron (0, 0) holding hostile tokens; connections from (0, 1) to (1, 2)
    and to (7, 4000), which is not in the warehouse."""
    warehouse = Warehouse(root)
    explanations, sequences = [], []
    for neuron in range(6):
        score = [0.2, 0.95, 0.5, 0.1, 0.7, 0.3][neuron]
        explanations.append({
            "neuron": neuron, "explanation_index": 0, "sequence_count": 1, "status": "ok",
            "explanation": HOSTILE_EXPLANATION if neuron == 0 else f"my explanation of neuron {neuron}",
            "score": score, "ev_correlation_score": score, "rsquared_score": score - 0.1,
            "absolute_dev_explained_score": score - 0.2, "top_only_score": score, "random_only_score": score / 2,
            "explainer_model": "fake-explainer", "simulator_model": "fake-simulator", "simulator": "all-at-once",
            "prompt_version": "v1"})
        tokens = HOSTILE_TOKENS if neuron == 0 else [" a", " b", " c"]
        sequences.append({
            "neuron": neuron, "explanation_index": 0, "seq_index": 0, "sample": "top", "tokens": tokens,
            "true_activations": [float(i % 4) for i in range(len(tokens))],
            "expected_activations": [float((i * 3) % 10) for i in range(len(tokens))],
            "activation_scale": "simulated_normalized_activations", "ev_correlation_score": score})
    partitions = {"model": MODEL, "run": RUN, "layer": 0}
    warehouse.append("explanation_sequences", partitions, table_of("explanation_sequences", sequences))
    warehouse.append("explanations", partitions, table_of("explanations", explanations))
    warehouse.append("runs", {"model": MODEL, "run": RUN}, table_of("runs", [{
        "explainer_model": "fake-explainer", "simulator_model": "fake-simulator", "explainer": "token-activations",
        "simulator": "all-at-once", "prompt_versions": '{"explainer-token-activations": "1"}',
        "parameters": '{"calibrate": true}', "started_at": STARTED, "neurons_ok": 6, "neurons_failed": 0}]))
    warehouse.append("activation_records", {"model": MODEL, "layer": 0}, table_of(
        "activation_records", [{"neuron": 0, "sample": "top", "rank": 99, "tokens": HOSTILE_TOKENS,
                                "activations": [0.5 * i for i in range(len(HOSTILE_TOKENS))],
                                "max_activation": 0.5 * (len(HOSTILE_TOKENS) - 1)}]))
    # a connection inside the sample and one to a neuron the warehouse does not have
    warehouse.append("related_neurons", {"model": MODEL, "layer": 0}, table_of(
        "related_neurons", [{"neuron": 1, "direction": "output", "sign": "positive", "rank": 99, "other_layer": 1,
                             "other_neuron": 2, "weight": 0.5},
                            {"neuron": 1, "direction": "output", "sign": "negative", "rank": 99, "other_layer": 7,
                             "other_neuron": 4000, "weight": -0.5}]))


def add_run(root: str, run: str, layer: int = 1) -> None:
    """A small run over one layer, written while a viewer may be running."""
    warehouse = Warehouse(root)
    rows = [{"neuron": n, "explanation_index": 0, "explanation": f"{run} says neuron {n}", "score": 0.5,
             "status": "ok"} for n in range(6)]
    warehouse.append("explanations", {"model": MODEL, "run": run, "layer": layer}, table_of("explanations", rows))


def json_equal(a, b) -> bool:
    """Values equal as JSON sees them (NaN and infinities are null there)."""
    if isinstance(a, float) and not math.isfinite(a):
        return b is None
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() <= b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return a == b


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """The viewer under uvicorn in a thread of this process, on a free loopback port."""

    def __init__(self, warehouse: str, **options):
        import uvicorn

        from nx.web import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(warehouse, **options), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False, limit_concurrency=200)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="nx-web-test-server", daemon=True)

    def __enter__(self) -> "RunningServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the viewer did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


