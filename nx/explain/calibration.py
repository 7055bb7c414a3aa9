"""Calibration of simulated activations, as in the paper (calibrated_simulator.py).

The simulator predicts on a 0-10 scale; a map fitted on the calibration split (pooled over all
its tokens) takes predictions on the valid split to the neuron's units:
- ``linear``: the least-squares line true ~ a + b * simulated. Correlation is unchanged by it
  when b > 0; r-squared and the absolute-deviation score are only meaningful after it. A
  constant prediction gets b = 0 and a = mean(true), as ordinary least squares does.
- ``percentile``: percentile matching: a simulated value goes to the true activation at the
  same quantile of the calibration split (the sorted simulated values against the sorted true
  ones, linear in between, clamped at the ends). Simulators repeat values (every quiet token
  gets the same prediction): a run of equal simulated values maps to the mean of the true
  quantiles it spans, so that ties are neither the lowest nor the highest of them.
The ``calibration`` column of ``explanations`` says which was used (null: raw 0-10 values).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class LinearCalibration:
    intercept: float
    slope: float

    def apply(self, values: Sequence[float]) -> list[float]:
        return [self.intercept + self.slope * float(v) for v in values]


@dataclass(frozen=True)
class PercentileCalibration:
    simulated: tuple[float, ...]     # distinct simulated values, increasing
    true: tuple[float, ...]          # the (mean) true quantile each maps to

    def apply(self, values: Sequence[float]) -> list[float]:
        if not len(values):
            return []
        return np.interp(np.asarray(values, dtype=np.float64), self.simulated, self.true).tolist()


KINDS = ("linear", "percentile")


def fit(true_activations: Sequence[Sequence[float]], simulated: Sequence[Sequence[float]],
        kind: str = "linear") -> LinearCalibration | PercentileCalibration:
    """Fit on pooled tokens; raises ValueError if there is nothing to fit on."""
    t = np.concatenate([np.asarray(s, dtype=np.float64) for s in true_activations]) if true_activations else np.zeros(0)
    p = np.concatenate([np.asarray(s, dtype=np.float64) for s in simulated]) if simulated else np.zeros(0)
    if t.size == 0 or t.size != p.size:
        raise ValueError(f"cannot calibrate on {t.size} true and {p.size} simulated activations")
    if kind == "percentile":
        return _percentile(t, p)
    if kind != "linear":
        raise ValueError(f"unknown calibration {kind!r}")
    centred = p - p.mean()
    denominator = float(np.dot(centred, centred))
    slope = float(np.dot(centred, t - t.mean()) / denominator) if denominator > 0 else 0.0
    return LinearCalibration(intercept=float(t.mean() - slope * p.mean()), slope=slope)


def _percentile(t: np.ndarray, p: np.ndarray) -> PercentileCalibration:
    ordered_true, ordered_simulated = np.sort(t), np.sort(p)
    distinct, starts, counts = np.unique(ordered_simulated, return_index=True, return_counts=True)
    means = [float(ordered_true[s:s + c].mean()) for s, c in zip(starts, counts)]
    return PercentileCalibration(tuple(float(v) for v in distinct), tuple(means))
