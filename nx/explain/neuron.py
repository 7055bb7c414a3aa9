"""One neuron from records to rows: explain, simulate, calibrate, score (the paper's pipeline).

``samples`` explanations are written from the top train records (or the token lookup table);
each is scored on its own: the valid split (5 top, then 5 random records) is simulated and
scored with ``nx.scoring`` pooled over all tokens, and over the top and the random sequences
alone; with calibration the calibration split is simulated too and a map fitted on it
(``calibration.py``) takes the valid predictions to real units; the detection and fuzzing
scorers (``scorers.py``) ask their questions. The best sample (highest score, the first on
ties) is flagged. Whatever goes wrong comes back as a failed result with its reason and no
scores: the neuron is whole or failed, and a failed one is asked again on resume.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from nx.explain import calibration, explainer, prompts, scorers, simulators
from nx.explain.client import NEURON_USAGE, Client, RequestFailed, Usage
from nx.explain.inputs import NeuronInput
from nx.explain.splits import make_splits
from nx.keys import sequence_id
from nx.scoring import score

_METRIC_COLUMNS = tuple(f"{scorer}_{name}" for scorer in ("detection", "fuzzing")
                        for name in ("balanced_accuracy", "precision", "recall", "f1", "auc"))


@dataclass(frozen=True)
class RunConfig:
    model: str
    run: str
    explainer_model: str
    simulator_model: str
    explainer: str
    simulator: str
    calibrate: str | None            # None, "linear" or "percentile"
    prompt_version: str
    samples: int = 1
    scorers: tuple[str, ...] = ("simulation",)
    builder: object = prompts        # nx's prompts, or nx.explain.paper's

    @property
    def simulates(self) -> bool:
        return "simulation" in self.scorers


@dataclass
class NeuronResult:
    layer: int
    neuron: int
    explanations: list[dict]          # one row per sample (one failed row if the neuron failed)
    sequences: list[dict] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    fatal: bool = False
    tokens: int = 0

    @property
    def ok(self) -> bool:
        return all(row["status"] == "ok" for row in self.explanations)

    @property
    def error(self) -> str | None:
        return next((row["error"] for row in self.explanations if row["error"]), None)


class _Unusable(Exception):
    """The neuron's records cannot be explained or scored (too few of them)."""


async def process(client: Client, config: RunConfig, item: NeuronInput) -> NeuronResult:
    """Explain and score one neuron; never raises for a failed request or bad reply."""
    usage = Usage()
    token = NEURON_USAGE.set(usage)
    try:
        if item.missing:
            raise _Unusable(item.missing)
        rows, sequences, predictions = await _explain_and_score(client, config, item)
        return NeuronResult(item.layer, item.neuron, rows, sequences, predictions, tokens=usage.tokens)
    except _Unusable as exc:
        return failed(config, item, str(exc))
    except RequestFailed as exc:
        result = failed(config, item, exc.reason, fatal=exc.fatal)
        result.tokens = usage.tokens
        return result
    finally:
        try:
            NEURON_USAGE.reset(token)
        except ValueError:   # closed outside its task (interpreter shutdown): nothing to restore
            pass


def failed(config: RunConfig, item: NeuronInput, reason: str, fatal: bool = False) -> NeuronResult:
    row = _explanation_row(config, item.neuron, 0, None, None, None, None, 0)
    row.update(status="failed", error=reason, calibration=None)
    return NeuronResult(item.layer, item.neuron, [row], [], fatal=fatal)


async def _explain_and_score(client: Client, config: RunConfig, item: NeuronInput):
    split = make_splits(item.top, item.random)
    if config.explainer == "token-activations" and not split.train:
        raise _Unusable("no top-activating records to explain from")
    if not split.valid:
        raise _Unusable("no records in the valid split to score on")
    if config.calibrate and config.simulates and not split.calibration:
        raise _Unusable("no records in the calibration split")
    texts = await explainer.explain(client, config.explainer_model, config.explainer, records=split.train,
                                    lookup_tokens=item.lookup, samples=config.samples, builder=config.builder)
    scored = await _all_or_nothing(_score_sample(client, config, item, split, index, text)
                                   for index, text in enumerate(texts))
    rows = [row for row, _, _ in scored]
    best = max(range(len(rows)), key=lambda i: (_rank(config, rows[i]) is not None, _rank(config, rows[i]) or 0.0, -i))
    for index, row in enumerate(rows):
        row["best"] = index == best
    return rows, [s for _, seqs, _ in scored for s in seqs], [p for _, _, preds in scored for p in preds]


def _rank(config: RunConfig, row: dict) -> float | None:
    """What makes a sample the best: its score, or without simulation the first scorer's
    balanced accuracy."""
    if config.simulates:
        return row["score"]
    return row[f"{config.scorers[0]}_balanced_accuracy"]


async def _score_sample(client: Client, config: RunConfig, item: NeuronInput, split, index: int, text: str):
    sequences, pooled, top_only, random_only = [], None, None, None
    if config.simulates:
        sequences, pooled, top_only, random_only = await _simulate(client, config, item, split, index, text)
    row = _explanation_row(config, item.neuron, index, text, pooled, top_only, random_only, len(sequences))
    predictions = []
    for scorer in config.scorers:
        if scorer != "simulation":
            columns, rows = await scorers.score(client, config.simulator_model, scorer, text, split.valid,
                                                split.valid_sample, item.neuron, index)
            row.update(columns)
            predictions += rows
    return row, sequences, predictions


async def _simulate(client: Client, config: RunConfig, item: NeuronInput, split, index: int, text: str):
    targets = split.valid + (split.calibration if config.calibrate else [])
    simulations = await _all_or_nothing(
        simulators.simulate(client, config.simulator_model, config.simulator, text, tokens, config.builder)
        for tokens, _ in targets)
    valid = simulations[:len(split.valid)]
    fit = None
    if config.calibrate:
        fit = calibration.fit([acts for _, acts in split.calibration],
                              [s.expected for s in simulations[len(split.valid):]], config.calibrate)
    sequences = [_sequence_row(item.neuron, index, seq_index, sample, record, simulation, fit)
                 for seq_index, (sample, record, simulation)
                 in enumerate(zip(split.valid_sample, split.valid, valid))]
    trues = [row["true_activations"] for row in sequences]
    predicted = [row["expected_activations"] for row in sequences]

    def ev_of(sample: str) -> float | None:
        chosen = [i for i, s in enumerate(split.valid_sample) if s == sample]
        if not chosen:
            return None
        return score([trues[i] for i in chosen], [predicted[i] for i in chosen]).ev_correlation_score

    return sequences, score(trues, predicted), ev_of("top"), ev_of("random")


async def _all_or_nothing(coroutines) -> list:
    """Run concurrently; on the first failure cancel the rest (no requests wasted) and raise."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except Exception:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _explanation_row(config: RunConfig, neuron: int, index: int, text, pooled, top_only, random_only,
                     count) -> dict:
    return {
        "neuron": neuron, "explanation_index": index, "explanation": text,
        "score": pooled.ev_correlation_score if pooled else None,
        "ev_correlation_score": pooled.ev_correlation_score if pooled else None,
        "rsquared_score": pooled.rsquared_score if pooled else None,
        "absolute_dev_explained_score": pooled.absolute_dev_explained_score if pooled else None,
        "top_only_score": top_only, "random_only_score": random_only, "sequence_count": count,
        "explainer": config.explainer, "explainer_model": config.explainer_model,
        "simulator_model": config.simulator_model,
        "simulator": config.simulator if config.simulates else None, "prompt_version": config.prompt_version,
        "calibration": config.calibrate if config.simulates else None, "best": None,
        **dict.fromkeys(_METRIC_COLUMNS),
        "status": "ok", "error": None, "extras": None,
    }


def _sequence_row(neuron: int, explanation_index: int, index: int, sample: str, record, simulation, fit) -> dict:
    tokens, true_activations = record
    raw = {"expected_activations": simulation.expected,
           "activation_scale": "simulated_normalized_activations",
           "distribution_values": simulation.distribution_values,
           "distribution_probabilities": simulation.distribution_probabilities}
    if fit is None:
        shown, uncalibrated = raw, dict.fromkeys(raw)
    else:
        shown = {"expected_activations": fit.apply(simulation.expected),
                 "activation_scale": "neuron_activations",
                 "distribution_values": [fit.apply(v) for v in simulation.distribution_values],
                 "distribution_probabilities": simulation.distribution_probabilities}
        uncalibrated = raw
    scores = score([true_activations], [shown["expected_activations"]])
    return {
        "neuron": neuron, "explanation_index": explanation_index, "seq_index": index, "sample": sample,
        "tokens": tokens, "true_activations": true_activations, **shown,
        **{f"uncalibrated_{key}": value for key, value in uncalibrated.items()},
        "ev_correlation_score": scores.ev_correlation_score, "rsquared_score": scores.rsquared_score,
        "absolute_dev_explained_score": scores.absolute_dev_explained_score,
        "sequence_id": sequence_id(tokens, true_activations), "extras": None,
    }
