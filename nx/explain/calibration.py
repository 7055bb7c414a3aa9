"""Linear calibration of simulated activations, as in the paper (calibrated_simulator.py).

The simulator predicts on a 0-10 scale; a least-squares line true ~ a + b * simulated, fitted
on the calibration split (pooled over all its tokens), maps predictions on the valid split to
the neuron's units. Correlation is unchanged by it when b > 0; r-squared and the
absolute-deviation score are only meaningful after it. A constant prediction gets b = 0 and
a = mean(true), as an ordinary least-squares fit with intercept does.
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


def fit(true_activations: Sequence[Sequence[float]],
        simulated: Sequence[Sequence[float]]) -> LinearCalibration:
    """Fit on pooled tokens; raises ValueError if there is nothing to fit on."""
    t = np.concatenate([np.asarray(s, dtype=np.float64) for s in true_activations]) if true_activations else np.zeros(0)
    p = np.concatenate([np.asarray(s, dtype=np.float64) for s in simulated]) if simulated else np.zeros(0)
    if t.size == 0 or t.size != p.size:
        raise ValueError(f"cannot calibrate on {t.size} true and {p.size} simulated activations")
    centred = p - p.mean()
    denominator = float(np.dot(centred, centred))
    slope = float(np.dot(centred, t - t.mean()) / denominator) if denominator > 0 else 0.0
    return LinearCalibration(intercept=float(t.mean() - slope * p.mean()), slope=slope)
