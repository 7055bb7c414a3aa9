"""A run is atomic per batch and resumable: re-running skips what is scored, an interrupted or
killed run leaves only whole neurons, and a run is never resumed with settings that would mix
incomparable scores."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import nx.explain
from nx.explain import runs
from explain_fixtures import fake, warehouse  # noqa: F401 (fixtures)
from explain_data import LAYER, MODEL
from fake_openai import Fault, is_simulation
from nx.errors import UsageError
from nx.progress import CountingProgress
from nx.schema import TABLES


def _run(fake, warehouse, run="resumable", neurons=range(6), **options):
    arguments = dict(warehouse=warehouse, layers=[LAYER], neurons=list(neurons), run=run,
                     explainer_model="fake-chat", simulator_model="fake-chat",
                     simulator="chat-logprobs", base_url=fake.url, concurrency=2, batch_size=2)
    arguments.update(options)
    return nx.explain.run(**arguments)


def _check_whole(warehouse, run="resumable") -> dict[int, str]:
    """Each neuron once; each scored neuron with its 10 sequences, each failed one with none."""
    partition = {"model": MODEL, "run": run}
    rows = warehouse.read_table("explanations", partition).to_pylist()
    neurons = [row["neuron"] for row in rows]
    assert len(neurons) == len(set(neurons))
    sequences = warehouse.read_table("explanation_sequences", partition)["neuron"].to_pylist()
    for row in rows:
        assert sequences.count(row["neuron"]) == (10 if row["status"] == "ok" else 0)
    assert set(sequences) <= set(neurons)
    return {row["neuron"]: row["status"] for row in rows}


def test_rerun_resumes_and_skips_scored_neurons(fake, warehouse):
    first = _run(fake, warehouse, neurons=range(3))
    assert (first.ok, first.skipped) == (3, 0)
    requests = len(fake.requests)
    again = _run(fake, warehouse, neurons=range(3))
    assert (again.ok, again.failed, again.skipped) == (0, 0, 3)
    assert len(fake.requests) == requests, "nothing to do must cost no request"
    more = _run(fake, warehouse, neurons=range(6))
    assert (more.ok, more.skipped) == (3, 3)
    assert set(_check_whole(warehouse).values()) == {"ok"} and len(_check_whole(warehouse)) == 6
    assert warehouse.read_table("runs").to_pylist()[0]["neurons_ok"] == 6


class _Crashing(CountingProgress):
    """Crashes the run from inside (a real Ctrl-C is sent to a subprocess below)."""

    def __init__(self, after: int):
        super().__init__()
        self.after = after

    def advance(self, n: int = 1, **counts: int) -> None:
        super().advance(n, **counts)
        if self.done == self.after:
            raise RuntimeError("crash")


def test_crashed_run_leaves_whole_neurons_and_resumes(fake, warehouse):
    with pytest.raises(RuntimeError, match="crash"):
        _run(fake, warehouse, progress=_Crashing(after=3), batch_size=4)
    done = _check_whole(warehouse)
    assert 3 <= len(done) < 6 and set(done.values()) == {"ok"}
    resumed = _run(fake, warehouse)
    assert resumed.skipped == len(done) and resumed.ok == 6 - len(done)
    assert len(_check_whole(warehouse)) == 6


def test_half_written_batch_is_repaired_on_resume(fake, warehouse):
    _run(fake, warehouse, neurons=range(2))
    layer = {"model": MODEL, "run": "resumable", "layer": LAYER}
    # A crash between the two commits of a batch: sequences of neuron 2, whose explanation never came.
    sequences = warehouse.read_table("explanation_sequences", layer).drop_columns(["model", "run", "layer"])
    orphans = sequences.filter(pc.equal(sequences["neuron"], 1))
    orphans = orphans.set_column(orphans.schema.get_field_index("neuron"), "neuron",
                                 pa.array([2] * len(orphans), pa.int32()))
    warehouse.append("explanation_sequences", layer, orphans)
    report = _run(fake, warehouse, neurons=range(3))
    assert (report.ok, report.skipped) == (1, 2)
    assert _check_whole(warehouse) == {0: "ok", 1: "ok", 2: "ok"}


def test_a_second_process_on_the_same_run_never_duplicates_a_neuron(fake, warehouse):
    first = _run(fake, warehouse, neurons=range(3))
    # as if another process had scored neurons 1 and 2 again at the same time: its batch
    # replaces what the run had for them
    store = runs.RunStore(warehouse, MODEL, "resumable")
    layer = {"model": MODEL, "run": "resumable", "layer": LAYER}
    again = warehouse.read_table("explanations", layer).drop_columns(["model", "run"])
    again = again.filter(pc.greater_equal(again["neuron"], 1))
    store._commit("explanations", warehouse.write_files("explanations", layer, again.drop_columns(["layer"])),
                  {(LAYER, 1), (LAYER, 2)})
    assert first.ok == 3 and _check_whole(warehouse) == {0: "ok", 1: "ok", 2: "ok"}


def test_resuming_with_another_simulator_is_refused(fake, warehouse):
    _run(fake, warehouse, neurons=[0])
    with pytest.raises(UsageError, match="simulator=chat-logprobs"):
        _run(fake, warehouse, neurons=[0, 1], simulator="sampling")
    with pytest.raises(UsageError, match="calibrate"):
        _run(fake, warehouse, neurons=[0, 1], calibrate=True)


@pytest.mark.parametrize("signal_number, batch_size", [(signal.SIGKILL, 1), (signal.SIGINT, 4)])
def test_killed_or_interrupted_process_leaves_whole_neurons_and_resumes(fake, warehouse, tmp_path,
                                                                       signal_number, batch_size):
    # Slow simulations, so that the signal arrives in the middle of the run.
    fake.inject(*[Fault("sleep", seconds=0.03, when=is_simulation) for _ in range(200)])
    script = tmp_path / "explain.py"
    script.write_text(
        "import nx.explain\n"
        f"nx.explain.run(warehouse={warehouse.url!r}, layers=[{LAYER}], neurons=list(range(6)), "
        f"run='resumable', explainer_model='fake-chat', simulator_model='fake-chat', "
        f"simulator='chat-logprobs', base_url={fake.url!r}, concurrency=1, batch_size={batch_size})\n")
    root = Path(nx.__file__).parent.parent
    process = subprocess.Popen([sys.executable, str(script)], cwd=root, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(root)})
    deadline = time.monotonic() + 20
    # 1 probe + 10 simulations per neuron: after 25, two neurons are finished.
    while time.monotonic() < deadline and sum(is_simulation(r["body"]) for r in fake.requests) < 25:
        time.sleep(0.01)
    process.send_signal(signal_number)
    assert process.wait(timeout=20) != 0
    done = _check_whole(warehouse)
    # SIGKILL: the flushed batches; SIGINT: every finished neuron, flushed on the way out.
    assert 2 <= len(done) < 6 and set(done.values()) == {"ok"}
    fake.faults.clear()
    resumed = _run(fake, warehouse)
    assert resumed.skipped == len(done) and resumed.ok + resumed.skipped == 6
    assert len(_check_whole(warehouse)) == 6


def test_killed_run_with_samples_and_scorers_resumes_asking_nothing_stored(fake, warehouse, tmp_path):
    from explain_data import LETTERS

    fake.inject(*[Fault("sleep", seconds=0.02, when=is_simulation) for _ in range(300)])
    script = tmp_path / "explain.py"
    script.write_text(
        "import nx.explain\n"
        f"nx.explain.run(warehouse={warehouse.url!r}, layers=[{LAYER}], neurons=list(range(6)), "
        f"run='resumable', explainer_model='fake-chat', simulator_model='fake-chat', samples=2, "
        f"scorers=['simulation', 'detection'], simulator='chat-logprobs', base_url={fake.url!r}, "
        f"concurrency=1, batch_size=1)\n")
    root = Path(nx.__file__).parent.parent
    process = subprocess.Popen([sys.executable, str(script)], cwd=root, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(root)})
    deadline = time.monotonic() + 30
    # 1 probe + 2 x 10 simulations per neuron: after 50, two neurons are finished.
    while time.monotonic() < deadline and sum(is_simulation(r["body"]) for r in fake.requests) < 50:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=20) != 0
    partition = {"model": MODEL, "run": "resumable"}
    rows = warehouse.read_table("explanations", partition).to_pylist()
    done = {r["neuron"] for r in rows if r["status"] == "ok"}
    assert 2 <= len(done) < 6
    assert sorted((r["neuron"], r["explanation_index"]) for r in rows) == [(n, i) for n in sorted(done) for i in (0, 1)]
    fake.faults.clear()
    before = len(fake.requests)
    resumed = _run(fake, warehouse, samples=2, scorers=["simulation", "detection"])
    assert resumed.skipped == len(done) and resumed.ok + resumed.skipped == 6
    asked = [r["body"] for r in fake.requests[before:] if r["body"].get("messages")]
    explainer = [b for b in asked if b.get("n") == 2]
    assert len(explainer) == 6 - len(done)   # one request (n=2) per neuron not stored
    for body in asked:
        text = body["messages"][-1]["content"]
        assert not any(f"letter {LETTERS[n]}" in text for n in done), "asked again about a stored neuron"
    rows = warehouse.read_table("explanations", partition).to_pylist()
    assert sorted((r["neuron"], r["explanation_index"]) for r in rows) == [(n, i) for n in range(6) for i in (0, 1)]
    predictions = warehouse.read_table("scorer_predictions", partition)["neuron"].to_pylist()
    assert all(predictions.count(n) == 20 for n in range(6))
