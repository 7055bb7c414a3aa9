"""The paper's scores of a simulation (Bills et al. 2023, "Language models can explain
neurons in language models", section 2.3): pooled over ALL tokens of ALL scored sequences,
not averaged per sequence.

- ``ev_correlation_score``: Pearson correlation of true and simulated activations;
- ``rsquared_score``: 1 - mean((t - p)^2) / mean(t^2) (uncentred);
- ``absolute_dev_explained_score``: 1 - mean(|t - p|) / mean(|t|).

NaN and infinities come back as None: the public files store them as null. Ingest uses these
to derive top-only and random-only scores, explain to score new runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

SCORE_NAMES = ("ev_correlation_score", "rsquared_score", "absolute_dev_explained_score")


@dataclass(frozen=True)
class Scores:
    ev_correlation_score: float | None
    rsquared_score: float | None
    absolute_dev_explained_score: float | None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _pooled(sequences: Sequence[Sequence[float | None]]) -> np.ndarray:
    if not sequences:
        return np.zeros(0)
    return np.concatenate([np.asarray([np.nan if v is None else v for v in s], dtype=np.float64)
                           for s in sequences])


def score(true_activations: Sequence[Sequence[float | None]],
          expected_activations: Sequence[Sequence[float | None]]) -> Scores:
    """Scores of simulated against true activations, pooled over all given sequences."""
    t = _pooled(true_activations)
    p = _pooled(expected_activations)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true activations but {p.size} simulated ones")
    if t.size == 0:
        return Scores(None, None, None)
    with np.errstate(all="ignore"):
        if t.size > 1 and np.std(t) > 0 and np.std(p) > 0:
            ev = _finite(np.corrcoef(t, p)[0, 1])
        else:
            ev = None
        rsq = _finite(1.0 - np.mean((t - p) ** 2) / np.mean(t ** 2))
        absdev = _finite(1.0 - np.mean(np.abs(t - p)) / np.mean(np.abs(t)))
    return Scores(ev, rsq, absdev)
