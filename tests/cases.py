"""Synthetic source data in the exact layout and serialization of OpenAI's neuron-explainer
public datasets (GPT-2 XL), for tests and benchmarks. Owns nothing else.

Pure Python: stdlib, numpy and orjson only; it never imports nx, so it can judge nx.
The formats follow /work/shared/reference/data-formats.md sections 2-7 and 9:

- every dataclass object carries ``"dataclass_name"`` as its LAST key (as orjson writes a
  FastDataclass); unknown extra keys sit before it, as a fork's extra fields would;
- NaN and infinities are written as ``null`` (the builders already put ``None`` there, so
  ``json.loads(dumps(obj)) == obj``);
- activations are float32 values carried as Python floats (``float(np.float32(x))``); scores,
  moments, probabilities and calibrated values are float64;
- explanations hold one scored explanation over the paper's "valid" split: top records
  2, 6, 10, 14, 18 then random records 1, 4, 7, 10, 13, scored with the pooled formulas.

Builders, one per kind: ``neuron_record``, ``simulation_results``, ``related_neurons``,
``token_lookup``, ``token_weights``; ``dumps`` serializes like the seed; ``write_source_tree``
writes a whole small source tree with quirky and broken files; ``realistic_neuron_record``
makes a full-size (~234 KB) NeuronRecord for benchmarks.

``hard`` is False, True (= variant 1) or 2. Variant 1 has ``random_sample_by_quantile`` and
``quantile_boundaries`` null; variant 2 has them present with one empty inner quantile list.
Both have every other quirk (see ``neuron_record``).
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import orjson

# --------------------------------------------------------------------------------------------
# Names and layout

KINDS = ("collated-activations", "explanations", "related-neurons", "token-lookups", "token-weights")

KIND_PATHS = {
    "collated-activations": "collated-activations/{layer}/{neuron}.json",
    "explanations": "explanations/{layer}/{neuron}.jsonl",
    "related-neurons": "related-neurons/weight-based/{layer}/{neuron}.json",
    "token-lookups": "related-tokens/activation-based/{layer}/{neuron}.json",
    "token-weights": "related-tokens/weight-based/{layer}/{neuron}.json",
}

# The related-neurons class is not published (data-formats.md section 5): this name is invented.
RELATED_NEURONS_CLASS_NAME = "WeightBasedNeuronConnections"

TOP_VALID_INDICES = (2, 6, 10, 14, 18)      # stride-4 "valid" slice of the top records
RANDOM_VALID_INDICES = (1, 4, 7, 10, 13)    # stride-3 "valid" slice of the random sample

GELU_MINIMUM = -0.17

# Tokens no text pipeline should mangle (data-formats.md quirks 5 and 6).
HARD_TOKENS = (
    "\t", "\n", "\n\n", "\ufffd", " \ufffd", "\ufffd\ufffd", "\U0001F600", " \U0001F1E8\U0001F1E6",
    '"', ' "quoted"', "\\", " C:\\path\\", "<|endoftext|>", "<script>alert(1)</script>",
    "\u200f", " \u05e9\u05dc\u05d5\u05dd", " ", "", "\r\n", "'", " caf\u00e9",
)

VOCABULARY = (
    " the", " of", " and", " to", " a", " in", " is", " that", " for", " it", " as", " was",
    " with", " be", " by", " on", " not", " he", " this", " are", " or", " his", " from", " at",
    " which", " but", " have", " an", " had", " they", " you", " were", " their", " one", " all",
    " we", " can", " her", " has", " there", " been", " if", " more", " when", " will", " would",
    " who", " so", " no", " out", " up", " into", " them", " time", " only", " new", " some",
    " could", " these", " two", " may", " first", " then", " do", " any", " like", " my", " now",
    " over", " such", " our", " man", " me", " even", " most", " made", " after", " also", " did",
    " many", " before", " must", " through", " back", " years", " where", " much", " your", " way",
    " well", " down", " should", " because", " each", " just", " those", " people", " how", " too",
    " little", " state", " good", " very", " make", " world", " still", " own", " see", " men",
    " work", " long", " get", " here", " between", " both", " life", " being", " under", " never",
    " day", " same", " another", " know", " while", " last", " might", " us", " great", " old",
    " year", " off", " come", " since", " against", " go", " came", " right", " used", " take",
    " three", " city", " government", " company", " school", " water", " market", " game",
    ",", ".", ":", ";", "'s", "\n", " -", "(", ")", " \"", "'", " $", "1", "2", "0", " 2012",
    "ing", "ed", "ly", "er", "s", " re", " un", "ation", " pre", "ment",
)

TRIGGER_TOPICS = (
    (" Canada", " Canadian", " Ottawa", " Toronto", " Quebec"),
    (" Monday", " Tuesday", " Friday", " weekend", " Sunday"),
    (" dog", " cat", " puppy", " pets", " animals"),
    (" Python", " function", " return", " import", " def"),
    (" football", " goal", " season", " coach", " league"),
    (" happy", " joy", " smile", " glad", " laugh"),
)

_PURPOSE_CODES = {"record": 1, "simulation": 2, "related": 3, "lookup": 4, "weights": 5}


def _rng(seed: int, layer: int, neuron: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, layer, neuron, _PURPOSE_CODES[purpose]])


def _float32(value: float) -> float:
    """The float64 value of the float32 nearest to ``value``."""
    return float(np.float32(value))


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _hard_variant(hard) -> int:
    """False -> 0, True -> 1, 2 -> 2."""
    if hard is False or hard is None or hard == 0:
        return 0
    if hard is True or hard == 1:
        return 1
    if hard == 2:
        return 2
    raise ValueError(f"hard must be False, True or 2, not {hard!r}")


def neuron_name(layer: int, neuron: int) -> str:
    return f"{layer}_{neuron}"


def source_path(kind: str, layer: int, neuron: int) -> str:
    """Relative path of one file in the public layout, e.g. ``explanations/3/17.jsonl``."""
    return KIND_PATHS[kind].format(layer=layer, neuron=neuron)


def neuron_id(layer: int, neuron: int) -> dict:
    return {"layer_index": layer, "neuron_index": neuron, "dataclass_name": "NeuronId"}


def activation_record(tokens, activations, *, extra: dict | None = None) -> dict:
    """An ActivationRecord dict; ``extra`` keys go between the fields and ``dataclass_name``."""
    record = {"tokens": list(tokens), "activations": [_float32(a) for a in activations]}
    if extra:
        record.update(extra)
    record["dataclass_name"] = "ActivationRecord"
    return record


# --------------------------------------------------------------------------------------------
# Kind 1: NeuronRecord

def _background_activations(rng: np.random.Generator, n_tokens: int) -> np.ndarray:
    """Post-GELU activations of a neuron that is not firing: mostly small negatives."""
    return _gelu(rng.normal(-1.3, 0.7, size=n_tokens))


def _excerpt_tokens(rng: np.random.Generator, n_tokens: int) -> list[str]:
    return [VOCABULARY[i] for i in rng.integers(0, len(VOCABULARY), size=n_tokens)]


def _spiked_excerpt(rng, n_tokens, peak, triggers) -> tuple[list[str], np.ndarray]:
    """An excerpt whose maximum activation is about ``peak``, reached on trigger tokens."""
    tokens = _excerpt_tokens(rng, n_tokens)
    activations = _background_activations(rng, n_tokens)
    n_spikes = int(rng.integers(1, 5))
    positions = rng.choice(n_tokens, size=min(n_spikes, n_tokens), replace=False)
    for rank, position in enumerate(positions):
        scale = 1.0 if rank == 0 else rng.uniform(0.2, 0.9)
        activations[position] = peak * scale
        tokens[position] = triggers[int(rng.integers(0, len(triggers)))]
    return tokens, activations


def _dfa_extra(rng: np.random.Generator, n_tokens: int, with_values: bool) -> dict:
    """The Neuronpedia fork's extra ActivationRecord fields (data-formats.md section 2.4)."""
    if not with_values:
        return {"dfa_values": None, "dfa_target_index": None}
    return {"dfa_values": [int(v) for v in rng.integers(-50, 50, size=n_tokens)],
            "dfa_target_index": int(rng.integers(0, n_tokens))}


def _moments(values: np.ndarray) -> dict:
    mean = float(np.mean(values))
    centred = values - mean
    variance = float(np.mean(centred ** 2))
    std = math.sqrt(variance)
    skewness = float(np.mean(centred ** 3)) / std ** 3 if std > 0 else float("nan")
    kurtosis = float(np.mean(centred ** 4)) / variance ** 2 - 3.0 if variance > 0 else float("nan")
    return {"mean": _finite_or_none(mean), "variance": _finite_or_none(variance),
            "skewness": _finite_or_none(skewness), "kurtosis": _finite_or_none(kurtosis)}


def neuron_record(layer: int, neuron: int, *, n_top: int = 20, n_random: int = 15,
                  n_quantiles: int = 5, per_quantile: int = 2, n_tokens: int = 64,
                  seed: int = 0, hard=False) -> dict:
    """A NeuronRecord dict (key order as the seed's orjson writes it).

    Top records are sorted by max activation, descending. With ``hard`` (True or 2):
    moments null; an empty ``random_sample``; quirky tokens (HARD_TOKENS) in top records 0 and 2;
    top records 6 and 7 share their tokens but not their activations (boilerplate); the last
    top record has a negative max; every ActivationRecord has the fork's ``dfa_values`` /
    ``dfa_target_index`` (a list and an int, or null and null, alternating); an unknown
    top-level key ``provenance``. Variant 1 (True): ``random_sample_by_quantile`` and
    ``quantile_boundaries`` null. Variant 2: both present, inner quantile list 2 empty.
    """
    variant = _hard_variant(hard)
    rng = _rng(seed, layer, neuron, "record")
    triggers = TRIGGER_TOPICS[(layer * 7 + neuron) % len(TRIGGER_TOPICS)]
    records_made = 0

    def make(tokens, activations) -> dict:
        nonlocal records_made
        extra = _dfa_extra(rng, len(tokens), records_made % 2 == 0) if variant else None
        records_made += 1
        return activation_record(tokens, activations, extra=extra)

    # Top-activating excerpts: peaks decay from about 6-10 down.
    top_peak = rng.uniform(6.0, 10.0)
    peaks = top_peak * np.exp(-np.linspace(0.0, 1.2, n_top)) * rng.uniform(0.95, 1.05, size=n_top)
    top_excerpts = [_spiked_excerpt(rng, n_tokens, peak, triggers) for peak in peaks]
    if variant and n_top >= 2:
        # A neuron-record excerpt that never fires: negative max, sorted last.
        negative = _background_activations(rng, n_tokens)
        negative = np.minimum(negative, -1e-3)
        top_excerpts[-1] = (_excerpt_tokens(rng, n_tokens), negative)
    top_excerpts = [(tokens, np.asarray([_float32(a) for a in acts]))
                    for tokens, acts in top_excerpts]
    top_excerpts.sort(key=lambda excerpt: -float(np.max(excerpt[1])))
    if variant:
        for index, shift in ((0, 0), (2, 5)):         # record 2 is in the scored valid split
            if index < len(top_excerpts):
                quirky = [HARD_TOKENS[(i + shift) % len(HARD_TOKENS)] for i in range(n_tokens)]
                top_excerpts[index] = (quirky, top_excerpts[index][1])
        if n_top >= 8:
            top_excerpts[7] = (list(top_excerpts[6][0]), top_excerpts[7][1])
    most_positive = [make(tokens, acts) for tokens, acts in top_excerpts]

    random_sample = [make(_excerpt_tokens(rng, n_tokens), _background_activations(rng, n_tokens))
                     for _ in range(n_random)]

    # Quantile bins: from "not firing" up to the top 0.1 %.
    bin_peaks = np.geomspace(0.05, 0.8 * top_peak, num=max(n_quantiles, 1))
    by_quantile = []
    for q in range(n_quantiles):
        bin_records = []
        for _ in range(per_quantile):
            if q == 0:
                tokens, acts = _excerpt_tokens(rng, n_tokens), _background_activations(rng, n_tokens)
            else:
                tokens, acts = _spiked_excerpt(rng, n_tokens, bin_peaks[q] * rng.uniform(0.7, 1.0), triggers)
            bin_records.append(make(tokens, acts))
        by_quantile.append(bin_records)

    everything = [r for r in most_positive + random_sample] + [r for b in by_quantile for r in b]
    all_activations = np.concatenate([np.asarray(r["activations"], dtype=np.float64) for r in everything]) \
        if everything else np.zeros(0)
    quantile_levels = [0.0, 0.5, 0.9, 0.99, 0.999, 1.0][: n_quantiles + 1]
    boundaries = ([float(v) for v in np.quantile(all_activations, quantile_levels)]
                  if all_activations.size else [])
    moments = (_moments(all_activations) if all_activations.size else
               {"mean": None, "variance": None, "skewness": None, "kurtosis": None})

    if variant:
        random_sample = []
        moments = {"mean": None, "variance": None, "skewness": None, "kurtosis": None}
        if variant == 1:
            by_quantile, boundaries = None, None
        elif n_quantiles > 2:
            by_quantile[2] = []

    record = {
        "neuron_id": neuron_id(layer, neuron),
        "random_sample": random_sample,
        "random_sample_by_quantile": by_quantile,
        "quantile_boundaries": boundaries,
        **moments,
        "most_positive_activation_records": most_positive,
    }
    if variant:
        record["provenance"] = {"generator": "tests/cases.py", "hard_variant": variant}
    record["dataclass_name"] = "NeuronRecord"
    return record


def realistic_neuron_record(layer: int, neuron: int, seed: int = 0) -> dict:
    """A full-size NeuronRecord for benchmarks: 50 top + 50 random + 5 quantiles x 5 records
    of 64 tokens, about 234 KB serialized (the measured public size)."""
    return neuron_record(layer, neuron, n_top=50, n_random=50, n_quantiles=5, per_quantile=5,
                         n_tokens=64, seed=seed)


# --------------------------------------------------------------------------------------------
# Kind 2: NeuronSimulationResults

def correlation_score(true_activations, expected_activations) -> float:
    """np.corrcoef(t, p)[0, 1], as the seed computes it (NaN when either side is constant)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.corrcoef(true_activations, expected_activations)[0, 1])


def rsquared_score(true_activations, expected_activations) -> float:
    t = np.asarray(true_activations, dtype=np.float64)
    p = np.asarray(expected_activations, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(1 - np.mean(np.square(t - p)) / np.mean(np.square(t)))


def absolute_dev_explained_score(true_activations, expected_activations) -> float:
    t = np.asarray(true_activations, dtype=np.float64)
    p = np.asarray(expected_activations, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(1 - np.mean(np.abs(t - p)) / np.mean(np.abs(t)))


def paper_scores(true_sequences, expected_sequences) -> dict:
    """The three scores pooled over ALL tokens of the given sequences, NaN/inf as None.

    ``ev_correlation_score`` is None when there are no tokens (as the seed's aggregate)."""
    t = [float(v) for seq in true_sequences for v in seq]
    p = [float(v) for seq in expected_sequences for v in seq]
    if not t:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return {"ev_correlation_score": None,
                    "rsquared_score": _finite_or_none(rsquared_score(t, p)),
                    "absolute_dev_explained_score": _finite_or_none(absolute_dev_explained_score(t, p))}
    return {"ev_correlation_score": _finite_or_none(correlation_score(t, p)),
            "rsquared_score": _finite_or_none(rsquared_score(t, p)),
            "absolute_dev_explained_score": _finite_or_none(absolute_dev_explained_score(t, p))}


def valid_split_records(record: dict) -> list[tuple[str, int, dict]]:
    """(sample, index, ActivationRecord) of the paper's valid split: top 2, 6, 10, 14, 18 then
    random 1, 4, 7, 10, 13, skipping indices past the end of a list."""
    top = record.get("most_positive_activation_records") or []
    random = record.get("random_sample") or []
    picked = [("top", i, top[i]) for i in TOP_VALID_INDICES if i < len(top)]
    picked += [("random", j, random[j]) for j in RANDOM_VALID_INDICES if j < len(random)]
    return picked


def sequence_simulation(tokens, expected_activations, activation_scale, distribution_values,
                        distribution_probabilities, uncalibrated_simulation=None, *,
                        extra: dict | None = None) -> dict:
    simulation = {
        "tokens": list(tokens),
        "expected_activations": list(expected_activations),
        "activation_scale": activation_scale,
        "distribution_values": distribution_values,
        "distribution_probabilities": distribution_probabilities,
        "uncalibrated_simulation": uncalibrated_simulation,
    }
    if extra:
        simulation.update(extra)
    simulation["dataclass_name"] = "SequenceSimulation"
    return simulation


def _raw_token_distribution(rng, target: float) -> tuple[list[float], list[float]]:
    """Values 0-10 the simulator saw in its top logprobs for one token (most probable first,
    not sorted by value) and their renormalised probabilities."""
    centre = int(np.clip(round(target), 0, 10))
    candidates = [centre] + [v for v in (centre - 1, centre + 1, centre + 2, centre - 2) if 0 <= v <= 10]
    k = int(rng.integers(1, min(4, len(candidates)) + 1))
    values = [float(v) for v in candidates[:k]]
    weights = np.sort(rng.dirichlet([6.0] + [1.0] * (k - 1)))[::-1]   # mass on the centre
    weights = weights / weights.sum()
    order = list(range(k))
    if k > 1 and rng.random() < 0.3:     # ties in probability order are not value order
        order[0], order[1] = order[1], order[0]
    return [values[i] for i in order], [float(weights[i]) for i in order]


def simulation_results(layer: int, neuron: int, record: dict, *, calibrated: bool = True,
                       seed: int = 0, hard=False) -> dict:
    """A NeuronSimulationResults dict with one ScoredExplanation over the valid split of
    ``record`` (up to 5 top then up to 5 random sequences).

    Raw simulation: per-token distributions over 0-10 centred on 10 * relu(t) / max, some
    tokens with an inner ``[]`` (expected 0.0); the first random sequence is predicted
    constant 0, so its per-sequence correlation is null. Calibrated: the outer level is
    a + b * raw in real units ("neuron_activations") and ``uncalibrated_simulation`` holds the
    raw level ("simulated_normalized_activations"). Scores use the outer level.

    ``hard``: sequence 0 has integer expected activations (both levels), sequence 1 an outer
    ``distribution_values == []``, sequence 2 null distributions and no uncalibrated level,
    sequence 3 an unknown ``response`` key, sequence 4 a constant prediction; the explanation
    has a leading space, unicode and a trailing period; the ScoredExplanation has an unknown
    ``explainer_model`` key.
    """
    variant = _hard_variant(hard)
    rng = _rng(seed, layer, neuron, "simulation")
    picked = valid_split_records(record)
    top_activations = [a for r in record.get("most_positive_activation_records") or []
                       for a in r["activations"] if a is not None]
    max_activation = max(top_activations) if top_activations else 0.0
    scale = max_activation if max_activation > 0 else 1.0
    slope = scale / 10.0 * rng.uniform(0.8, 1.2)
    intercept = rng.uniform(-0.05, 0.05)
    first_random_position = next((i for i, (sample, _, _) in enumerate(picked) if sample == "random"), None)

    scored_sequences = []
    for position, (sample, _, source) in enumerate(picked):
        tokens = source["tokens"]
        truth = list(source["activations"])
        constant = position == first_random_position or (variant and position == 4)
        raw_values, raw_probabilities, raw_expected = [], [], []
        for index, true_value in enumerate(truth):
            if constant:
                values, probabilities = [0.0], [1.0]
            elif index % 23 == 7:                  # token the simulator could not see
                values, probabilities = [], []
            else:
                target = 10.0 * max(true_value or 0.0, 0.0) / scale + rng.normal(0.0, 0.4)
                values, probabilities = _raw_token_distribution(rng, target)
            raw_values.append(values)
            raw_probabilities.append(probabilities)
            raw_expected.append(float(sum(v * p for v, p in zip(values, probabilities))))

        if variant and position == 0:                  # logprob-free simulator: ints
            raw_expected = [int(round(v)) for v in raw_expected]
            raw_values = [[float(v)] for v in raw_expected]
            raw_probabilities = [[1.0] for _ in raw_expected]
        raw = sequence_simulation(tokens, raw_expected, "simulated_normalized_activations",
                                  raw_values, raw_probabilities)
        if variant and position == 0:                  # pass-through "calibration"
            outer = dict(raw, activation_scale="neuron_activations",
                         uncalibrated_simulation=dict(raw))
        elif calibrated:
            outer = sequence_simulation(
                tokens, [intercept + slope * v for v in raw_expected], "neuron_activations",
                [[intercept + slope * v for v in inner] for inner in raw_values],
                [list(inner) for inner in raw_probabilities], raw)
        else:
            outer = raw
        if variant and position == 1:
            outer["distribution_values"], outer["distribution_probabilities"] = [], []
            if outer["uncalibrated_simulation"] is not None:
                outer["uncalibrated_simulation"]["distribution_values"] = []
                outer["uncalibrated_simulation"]["distribution_probabilities"] = []
        if variant and position == 2:
            outer["distribution_values"] = outer["distribution_probabilities"] = None
            outer["uncalibrated_simulation"] = None
        if variant and position == 3:
            outer = {k: v for k, v in outer.items() if k != "dataclass_name"}
            outer["response"] = "legacy raw completion text\n"
            outer["dataclass_name"] = "SequenceSimulation"

        scores = paper_scores([truth], [outer["expected_activations"]])
        scored_sequences.append({"simulation": outer, "true_activations": list(truth), **scores,
                                 "dataclass_name": "ScoredSequenceSimulation"})

    aggregate = paper_scores([s["true_activations"] for s in scored_sequences],
                             [s["simulation"]["expected_activations"] for s in scored_sequences])
    topic = TRIGGER_TOPICS[(layer * 7 + neuron) % len(TRIGGER_TOPICS)]
    if variant:
        explanation = f" words like \u201c{topic[0].strip()}\u201d, caf\u00e9 \U0001F341 and \"quotes\" \\ back."
    else:
        explanation = f"references to{topic[0]} and{topic[1]}"
    scored_explanation = {
        "explanation": explanation,
        "scored_simulation": {"scored_sequence_simulations": scored_sequences, **aggregate,
                              "dataclass_name": "ScoredSimulation"},
    }
    if variant:
        scored_explanation["explainer_model"] = "gpt-4"
    scored_explanation["dataclass_name"] = "ScoredExplanation"
    return {"neuron_id": neuron_id(layer, neuron), "scored_explanations": [scored_explanation],
            "dataclass_name": "NeuronSimulationResults"}


# --------------------------------------------------------------------------------------------
# Kinds 3-5

def _descending_float32(rng, n: int, high: float, low: float) -> list[float]:
    values = np.sort(rng.uniform(low, high, size=n))[::-1]
    return [_float32(v) for v in values]


def related_neurons(layer: int, neuron: int, *, n: int = 10, n_layers: int = 4,
                    n_neurons: int = 6400) -> dict:
    """The weight-based related-neurons object: ``c_fc`` (upstream, layers below) is None at
    layer 0 and ``c_proj`` (downstream, layers above) None at layer ``n_layers - 1``.
    Positive lists are most positive first, negative lists most negative first."""
    rng = _rng(0, layer, neuron, "related")

    def side(other_layers: range) -> dict:
        def names(count):
            return [neuron_name(int(rng.choice(other_layers)), int(rng.integers(0, n_neurons)))
                    for _ in range(count)]
        positive = _descending_float32(rng, n, 0.6, 0.05)
        negative = [-v for v in _descending_float32(rng, n, 0.6, 0.05)]
        return {"top_positive_neurons": names(n), "top_positive_weights": positive,
                "top_negative_neurons": names(n), "top_negative_weights": negative}

    return {"c_fc": side(range(0, layer)) if layer > 0 else None,
            "c_proj": side(range(layer + 1, n_layers)) if layer < n_layers - 1 else None,
            "dataclass_name": RELATED_NEURONS_CLASS_NAME}


def _distinct_tokens(rng, n: int, hard: bool) -> list[str]:
    pool = list(VOCABULARY) + [t for topic in TRIGGER_TOPICS for t in topic]
    pool = list(dict.fromkeys(pool))
    order = rng.permutation(len(pool))
    tokens = [pool[i] for i in order]
    if hard:
        tokens = list(HARD_TOKENS) + [t for t in tokens if t not in HARD_TOKENS]
        # interleave so quirky tokens are spread through the list
        tokens = [tokens[(i * 7) % len(tokens)] for i in range(len(tokens))] \
            if math.gcd(7, len(tokens)) == 1 else tokens
    while len(tokens) < n:
        tokens.append(f" tok{len(tokens)}")
    return tokens[:n]


def token_lookup(layer: int, neuron: int, *, n: int = 50, hard=False) -> dict:
    """TokenLookupTableSummaryOfNeuron: tokens with the highest average activation, highest
    first. ``hard``: quirky tokens and a null in ``average_activations`` (index 3)."""
    variant = _hard_variant(hard)
    rng = _rng(0, layer, neuron, "lookup")
    tokens = _distinct_tokens(rng, n, bool(variant))
    averages = _descending_float32(rng, n, rng.uniform(2.0, 6.0), 0.1)
    if variant and n > 3:
        averages[3] = None
    return {"tokens": tokens, "average_activations": averages,
            "dataclass_name": "TokenLookupTableSummaryOfNeuron"}


def tokens_and_weights(tokens, strengths) -> dict:
    return {"tokens": list(tokens), "strengths": list(strengths), "dataclass_name": "TokensAndWeights"}


def token_weights(layer: int, neuron: int, *, n: int = 20, hard=False) -> dict:
    """WeightBasedSummaryOfNeuron with input/output x positive/negative TokensAndWeights.
    ``hard``: quirky tokens and a null strength in ``input_negative`` (index 1)."""
    variant = _hard_variant(hard)
    rng = _rng(0, layer, neuron, "weights")
    summary = {}
    for direction in ("input", "output"):
        for sign in ("positive", "negative"):
            tokens = _distinct_tokens(rng, n, bool(variant))
            magnitudes = _descending_float32(rng, n, 0.9, 0.1)
            strengths = magnitudes if sign == "positive" else [-m for m in magnitudes]
            if variant and direction == "input" and sign == "negative" and n > 1:
                strengths[1] = None
            summary[f"{direction}_{sign}"] = tokens_and_weights(tokens, strengths)
    summary["dataclass_name"] = "WeightBasedSummaryOfNeuron"
    return summary


# --------------------------------------------------------------------------------------------
# Serialization and source trees

def dumps(obj) -> bytes:
    """Serialize like the seed: compact orjson, NaN/inf as null, raw UTF-8, no newline."""
    return orjson.dumps(obj)


def _write(root: Path, relative: str, data: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_source_tree(root, layers=(0, 1), neurons=range(4), *, hard_neuron=(0, 1),
                      second_hard_neuron=(1, 0), broken: bool = True, seed: int = 0) -> dict:
    """Write all five kinds for every (layer, neuron) of ``layers x neurons`` under ``root``
    in the public layout, and return what was written.

    ``hard_neuron`` gets hard variant 1 for every kind, ``second_hard_neuron`` variant 2
    (each only if inside the grid). With ``broken`` the last two other grid neurons get:

    - A = last: collated written by Python ``json.dumps`` with ``NaN`` moments (must ingest
      as ok), explanations missing (a hole), related-neurons a top-level JSON list
      (wrong type), token-lookups an empty file, token-weights truncated JSON;
    - B = second to last: explanations truncated JSON, token-lookups with ``"tokens": 5``
      (wrong type); its other kinds are ok.

    Returns::

        {"root": str,
         "layers": [int], "neurons": [int],
         "ok":        {kind: [(layer, neuron), ...]},   # every kind present, maybe empty
         "missing":   {kind: [(layer, neuron), ...]},
         "malformed": {kind: [(layer, neuron), ...]},
         "malformed_reasons": {(kind, layer, neuron): "empty" | "truncated" | "wrong-type"},
         "nan_literal": [(kind, layer, neuron)],         # ok files holding NaN literals
         "hard": {(layer, neuron): variant},             # 1 or 2
         "broken_neurons": {"A": (layer, neuron) | None, "B": (layer, neuron) | None},
         "paths": {(kind, layer, neuron): relative path of every file written},
         "objects": {(kind, layer, neuron): json.loads of every ok file}}
    """
    root = Path(root)
    layers, neurons = list(layers), list(neurons)
    grid = [(layer, neuron) for layer in layers for neuron in neurons]
    n_layers = max(layers) + 1 if layers else 1
    hard = {}
    if tuple(hard_neuron or ()) in grid:
        hard[tuple(hard_neuron)] = 1
    others = [pair for pair in grid if pair not in hard]
    broken_a = broken_b = None
    if broken:
        if len(others) < 2:
            raise ValueError("broken=True needs at least two grid neurons besides hard_neuron")
        broken_a, broken_b = others[-1], others[-2]
    if second_hard_neuron is not None:
        pair = tuple(second_hard_neuron)
        if pair in grid and pair not in hard and pair not in (broken_a, broken_b):
            hard[pair] = 2

    result = {"root": str(root), "layers": layers, "neurons": neurons,
              "ok": {kind: [] for kind in KINDS}, "missing": {kind: [] for kind in KINDS},
              "malformed": {kind: [] for kind in KINDS}, "malformed_reasons": {},
              "nan_literal": [], "hard": dict(hard),
              "broken_neurons": {"A": broken_a, "B": broken_b}, "paths": {}, "objects": {}}

    def write_ok(kind, layer, neuron, data: bytes) -> None:
        relative = source_path(kind, layer, neuron)
        _write(root, relative, data)
        result["ok"][kind].append((layer, neuron))
        result["paths"][(kind, layer, neuron)] = relative
        result["objects"][(kind, layer, neuron)] = json.loads(data)

    def write_malformed(kind, layer, neuron, data: bytes, reason: str) -> None:
        relative = source_path(kind, layer, neuron)
        _write(root, relative, data)
        result["malformed"][kind].append((layer, neuron))
        result["malformed_reasons"][(kind, layer, neuron)] = reason
        result["paths"][(kind, layer, neuron)] = relative

    def truncated(data: bytes) -> bytes:
        return data[: len(data) // 2]

    for layer, neuron in grid:
        variant = hard.get((layer, neuron), False)
        record = neuron_record(layer, neuron, seed=seed, hard=variant)
        explanation = simulation_results(layer, neuron, record, seed=seed, hard=variant)
        related = related_neurons(layer, neuron, n_layers=n_layers)
        lookup = token_lookup(layer, neuron, hard=variant)
        weights = token_weights(layer, neuron, hard=variant)
        explanation_line = dumps(explanation) + b"\n"

        if (layer, neuron) == broken_a:
            nan_record = dict(record, mean=float("nan"), variance=float("nan"),
                              skewness=float("nan"), kurtosis=float("nan"))
            write_ok("collated-activations", layer, neuron, json.dumps(nan_record).encode("utf-8"))
            result["nan_literal"].append(("collated-activations", layer, neuron))
            result["missing"]["explanations"].append((layer, neuron))
            write_malformed("related-neurons", layer, neuron,
                            dumps([related["c_fc"], related["c_proj"]]), "wrong-type")
            write_malformed("token-lookups", layer, neuron, b"", "empty")
            write_malformed("token-weights", layer, neuron, truncated(dumps(weights)), "truncated")
            continue

        write_ok("collated-activations", layer, neuron, dumps(record))
        if (layer, neuron) == broken_b:
            write_malformed("explanations", layer, neuron, truncated(explanation_line), "truncated")
        else:
            write_ok("explanations", layer, neuron, explanation_line)
        write_ok("related-neurons", layer, neuron, dumps(related))
        if (layer, neuron) == broken_b:
            write_malformed("token-lookups", layer, neuron, dumps(dict(lookup, tokens=5)), "wrong-type")
        else:
            write_ok("token-lookups", layer, neuron, dumps(lookup))
        write_ok("token-weights", layer, neuron, dumps(weights))
    return result


# --------------------------------------------------------------------------------------------
# Hostile input: values of the wrong type, nesting, special files, odd names

def nested(depth: int) -> list:
    """A list nested ``depth`` deep: ``[[[...]]]``."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


# What a value may be swapped for: every JSON type, numbers float64 cannot hold exactly, and
# nesting far deeper than real files have.
TYPE_SWAPS = {
    "null": None, "true": True, "false": False, "zero": 0, "float": 1.5, "negative": -1,
    "big integer": 12345678901234567, "integer beyond 64 bits": 2 ** 64 + 1, "nan": float("nan"),
    "numeric string": "1.5", "empty string": "", "empty list": [], "numbers": [1.5, 2],
    "strings": ["x"], "nested list": [[1.5]], "empty object": {},
    "record-like object": {"tokens": ["x"], "activations": [1.5], "dataclass_name": "ActivationRecord"},
    "nested 80 deep": nested(80),
}
REMOVED = "removed"


def _replaced(obj, path: tuple, value, remove: bool):
    head, rest = path[0], path[1:]
    out = dict(obj) if isinstance(obj, dict) else list(obj)
    if rest:
        out[head] = _replaced(obj[head], rest, value, remove)
    elif remove:
        del out[head]
    else:
        out[head] = value
    return out


def _places(obj, path: tuple = ()):
    """Every key of every object, and the first and last item of every list, depth first."""
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list) and obj:
        items = [(i, obj[i]) for i in sorted({0, len(obj) - 1})]
    else:
        items = []
    for key, value in items:
        yield path + (key,)
        yield from _places(value, path + (key,))


def type_swapped(obj):
    """Yield ``(path, swap, changed)`` for every place of ``obj`` (see ``_places``) and every
    ``TYPE_SWAPS`` name (and ``REMOVED``): ``changed`` is a copy of ``obj`` with that value
    swapped (or the key or item removed). ``obj`` itself is never changed."""
    for path in _places(obj):
        for swap, value in TYPE_SWAPS.items():
            yield path, swap, _replaced(obj, path, value, remove=False)
        yield path, REMOVED, _replaced(obj, path, None, remove=True)


# Names that look like a neuron file or layer directory but are not one: leading zeros, a
# sign, a space, Arabic-Indic digits, a number no model has, one past GPT-2 XL's width.
ODD_NEURON_NAMES = ("01", "+1", " 1", "\u0661", "1 ", "999999999999", "6400", "1e3", "0x1")
ODD_LAYER_NAMES = ("00", "\u0660", "48", "-1")


def write_hostile_tree(root, too_large_bytes: int = 64 * 2 ** 20 + 1) -> dict:
    """A GPT-2 XL source tree (layer 0) where each kind has good files and hostile ones, and
    files named like neurons that are not. Returns::

        {"root": str,
         "ok":        {kind: [(layer, neuron), ...]},
         "malformed": {kind: {(layer, neuron): words the logged reason holds}},
         "ignored":   [relative paths of names that are not layer or neuron numbers]}

    Hostile files: ``[`` x 100,000; a FIFO (reading it blocks forever); a symlink to
    ``/dev/zero`` (reading it never ends); a sparse file of ``too_large_bytes``; an unknown
    field nested 1,000 deep; ``true_activations`` given as a number; a lone UTF-16 surrogate;
    numbers given as strings, booleans or objects; lists given as objects. Good files include
    integers float64 cannot hold exactly (read as the nearest float64).
    """
    import os

    root = Path(root)
    result: dict = {"root": str(root), "ok": {kind: [] for kind in KINDS},
                    "malformed": {kind: {} for kind in KINDS}, "ignored": []}

    def write(kind, neuron, data: bytes | None = None, reason: str | None = None) -> Path:
        path = root / source_path(kind, 0, neuron)
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        if reason is None:
            result["ok"][kind].append((0, neuron))
        else:
            result["malformed"][kind][(0, neuron)] = reason
        return path

    record = neuron_record(0, 0, hard=True)
    big = neuron_record(0, 4)
    big["most_positive_activation_records"][0]["activations"][0] = 12345678901234567
    kind = "collated-activations"
    write(kind, 0, dumps(record))
    write(kind, 1, b"[" * 100_000, "nested deeper")
    os.mkfifo(write(kind, 2, None, "FIFO"))
    write(kind, 3, None, "character device").symlink_to("/dev/zero")
    write(kind, 4, dumps(big))
    write(kind, 5, with_deep_field(record, 1000), "nested deeper")
    with open(write(kind, 6, None, "limit"), "wb") as f:
        f.truncate(too_large_bytes)  # a sparse file: nothing is written

    kind = "explanations"
    results = simulation_results(0, 0, record, hard=True)
    sequence = results["scored_explanations"][0]["scored_simulation"]["scored_sequence_simulations"][0]
    write(kind, 0, dumps(results) + b"\n")
    write(kind, 1, _with(results, sequence, "true_activations", 1.5), "true_activations")
    write(kind, 2, with_deep_field(results, 1000) + b"\n", "nested deeper")
    write(kind, 3, dumps(results).replace(b'"explanation":"', b'"explanation":"\\ud800', 1), "surrogate")
    write(kind, 4, dumps({**results, "scored_explanations": [dict(results["scored_explanations"][0], explanation=7)]}),
          "explanation")
    write(kind, 5, _with(results, sequence["simulation"], "expected_activations",
                         [12345678901234567] + sequence["simulation"]["expected_activations"][1:]))

    kind = "related-neurons"
    related = related_neurons(1, 0, n_layers=3)
    write(kind, 0, dumps(related))
    write(kind, 1, dumps({**related, "c_proj": dict(related["c_proj"], top_positive_weights=["0.5"] * 10)}),
          "expected a number")
    write(kind, 2, dumps({**related, "c_fc": [related["c_fc"]]}), "expected an object")

    kind = "token-lookups"
    lookup = token_lookup(0, 0, hard=True)
    write(kind, 0, dumps(lookup))
    write(kind, 1, dumps(dict(lookup, average_activations={})), "expected a list")
    write(kind, 2, dumps(dict(lookup, tokens=list(range(len(lookup["tokens"]))))), "expected a string")

    kind = "token-weights"
    weights = token_weights(0, 0, hard=True)
    write(kind, 0, dumps(weights))
    write(kind, 1, dumps({**weights, "input_positive": dict(weights["input_positive"],
                                                            strengths=[True] * 20)}), "boolean")
    write(kind, 2, b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested deeper")

    for kind in KINDS:
        directory = root / source_path(kind, 0, 0)
        suffix = directory.name[1:]  # "0.json" -> ".json"
        for name in ODD_NEURON_NAMES:
            (directory.parent / f"{name}{suffix}").write_bytes((directory.parent / f"0{suffix}").read_bytes())
            result["ignored"].append(f"{kind}/0/{name}{suffix}")
        for name in ODD_LAYER_NAMES:
            odd = directory.parent.parent / name
            odd.mkdir()
            (odd / f"0{suffix}").write_bytes((directory.parent / f"0{suffix}").read_bytes())
            result["ignored"].append(f"{kind}/{name}")
    return result


def with_deep_field(obj: dict, depth: int) -> bytes:
    """``obj`` serialized with an unknown key ``provenance`` holding a list nested ``depth``
    deep (written by hand: orjson will not write more than 255 levels)."""
    data = dumps(dict(obj, provenance=0))
    return data.replace(b'"provenance":0', b'"provenance":' + b"[" * depth + b"]" * depth, 1)


def _with(results: dict, obj: dict, key: str, value) -> bytes:
    """``results`` serialized with ``obj`` (an object inside it) holding ``value`` at ``key``."""
    original = obj[key]
    obj[key] = value
    try:
        return dumps(results) + b"\n"
    finally:
        obj[key] = original
