"""Test data for explain: neurons whose activations follow a letter, and their scores computed
independently (numpy, the formulas of DESIGN.md) from the fake server's rule.

Neuron n of layer 9 responds to tokens containing ``LETTERS[n]`` (2.0 per occurrence), and is
slightly negative elsewhere; its top records hold several such words, its random records few.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from fake_openai import rule_expected, rule_sampled
from nx.keys import sequence_id
from nx.schema import TABLES
from nx.warehouse import Warehouse

MODEL, LAYER = "gpt2-xl", 9
LETTERS = {0: "q", 1: "x", 2: "z", 3: "k", 4: "v", 5: "j"}
WORDS = {"q": [" queen", " quit", " quick", " aqua"], "x": [" box", " six", " axe", " fox"],
         "z": [" zoo", " lazy", " zero", " jazz"], "k": [" kite", " milk", " book", " ask"],
         "v": [" very", " love", " five", " seven"], "j": [" joy", " jam", " just", " major"]}
COMMON = [" the", " a", " of", " and", " to", " in", " is", " it", " was", " on", " for", " as",
          " with", " by", " at", " from", " this", " that", " be", " are", " or", " an", " not",
          " one", " all", " had", " her", " his", " but", " we", ".", ","]
TOKENS_PER_RECORD = 16


def activation(letter: str, token: str) -> float:
    count = token.count(letter)
    return 2.0 * count if count else -0.03 * (len(token) % 4)


def _record(rng, letter: str, firing_words: int) -> tuple[list[str], list[float]]:
    tokens = list(rng.choice(COMMON, TOKENS_PER_RECORD))
    for position in rng.choice(TOKENS_PER_RECORD, firing_words, replace=False):
        tokens[position] = str(rng.choice(WORDS[letter]))
    tokens = [str(t) for t in tokens]
    return tokens, [activation(letter, t) for t in tokens]


def neuron_records(neuron: int) -> tuple[list, list]:
    """(top records most activating first, random records) of a test neuron."""
    rng = np.random.default_rng(neuron)
    letter = LETTERS[neuron]
    top = [_record(rng, letter, int(rng.integers(1, 5))) for _ in range(24)]
    top.sort(key=lambda r: (-max(r[1]), -sum(r[1])))
    random = [_record(rng, letter, int(rng.random() < 0.3)) for _ in range(18)]
    return top, random


def build_warehouse(root, neurons=tuple(LETTERS), lookups=True, layers=(LAYER,)) -> Warehouse:
    warehouse = Warehouse(str(root))
    rows, lookup_rows = [], []
    for neuron in neurons:
        top, random = neuron_records(neuron)
        for sample, records in (("top", top), ("random", random)):
            for rank, (tokens, acts) in enumerate(records):
                rows.append({"neuron": neuron, "sample": sample, "quantile": None, "rank": rank,
                             "tokens": tokens, "activations": acts, "max_activation": max(acts),
                             "sequence_id": sequence_id(tokens, acts), "extras": None})
        words = WORDS[LETTERS[neuron]] + COMMON[:4]
        lookup_rows += [{"neuron": neuron, "rank": rank, "token": token, "average_activation": 5.0 - rank * 0.5,
                         "extras": None} for rank, token in enumerate(words)]
    for layer in layers:   # every layer gets the same neurons
        partition = {"model": MODEL, "layer": layer}
        warehouse.append("activation_records", partition, pa.Table.from_pylist(rows, schema=TABLES["activation_records"].columns))
        if lookups:
            warehouse.append("token_lookups", partition, pa.Table.from_pylist(lookup_rows, schema=TABLES["token_lookups"].columns))
    return warehouse


def explanation_of(neuron: int) -> str:
    return f"words containing the letter {LETTERS[neuron]}"


def _formulas(t: np.ndarray, p: np.ndarray) -> dict:
    return {"ev_correlation_score": float(np.corrcoef(t, p)[0, 1]),
            "rsquared_score": float(1 - np.mean((t - p) ** 2) / np.mean(t ** 2)),
            "absolute_dev_explained_score": float(1 - np.mean(np.abs(t - p)) / np.mean(np.abs(t)))}


def percentile_match(simulated: np.ndarray, true: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentile matching written out: the k-th smallest simulated value goes to the k-th
    smallest true one; equal simulated values to the mean of the true values they span;
    linear in between, clamped outside."""
    pairs = sorted(zip(np.sort(simulated), np.sort(true)))
    groups: dict[float, list[float]] = {}
    for s, t in pairs:
        groups.setdefault(float(s), []).append(float(t))
    xs = sorted(groups)
    ys = [sum(groups[x]) / len(groups[x]) for x in xs]
    out = []
    for v in values:
        if v <= xs[0]:
            out.append(ys[0])
        elif v >= xs[-1]:
            out.append(ys[-1])
        else:
            i = max(k for k in range(len(xs)) if xs[k] <= v)
            j = i + 1 if xs[i] < v else i
            out.append(ys[i] if j == i else ys[i] + (ys[j] - ys[i]) * (v - xs[i]) / (xs[j] - xs[i]))
    return np.array(out)


def expected_scores(neuron: int, simulator: str, calibrate: bool | str = False) -> dict:
    """The scores a run must store for this neuron, from the rule and the paper's splits."""
    top, random = neuron_records(neuron)
    explanation = explanation_of(neuron)
    rule = rule_sampled if simulator in ("sampling", "json") else rule_expected

    def predict(records):
        return [np.array([rule(explanation, tok) for tok in tokens], dtype=float) for tokens, _ in records]

    valid = top[2:20:4] + random[1:15:3]          # the paper's valid split, n = 5
    calibration = top[1:20:4] + random[0:15:3]
    predicted = predict(valid)
    if calibrate == "percentile":
        predicted = [percentile_match(np.concatenate(predict(calibration)),
                                      np.concatenate([np.array(a) for _, a in calibration]), p) for p in predicted]
    elif calibrate:
        slope, intercept = np.polyfit(np.concatenate(predict(calibration)),
                                      np.concatenate([np.array(a) for _, a in calibration]), 1)
        predicted = [intercept + slope * p for p in predicted]
    true = [np.array(a, dtype=float) for _, a in valid]
    scores = _formulas(np.concatenate(true), np.concatenate(predicted))
    scores["top_only_score"] = _formulas(np.concatenate(true[:5]), np.concatenate(predicted[:5]))["ev_correlation_score"]
    scores["random_only_score"] = _formulas(np.concatenate(true[5:]), np.concatenate(predicted[5:]))["ev_correlation_score"]
    scores["expected_activations"] = [list(p) for p in predicted]
    scores["valid"] = valid
    return scores
