"""Classification metrics of the detection and fuzzing scorers, from their stored predictions.

Pure functions over (label, prediction, probability) triples. A prediction that is None (an
answer that could not be read) is left out: it counts as neither right nor wrong. A metric
that is undefined on what is left (no positive examples for recall, no positive predictions
for precision, one class only for the AUC) is None, never 0 or 0.5 made up.
- balanced accuracy: the mean of recall (true positive rate) and specificity (true negative rate);
- precision, recall and F1 of the positive class (an activating record, a right highlighting);
- AUC: the probability that a positive example gets a higher probability of "1" than a
  negative one (ties count half), over the answered examples that have a probability (the
  server gave logprobs); None when none has one.
"""
from __future__ import annotations

from typing import Sequence

NAMES = ("balanced_accuracy", "precision", "recall", "f1", "auc")


def classification(labels: Sequence[bool], predictions: Sequence[bool | None],
                   probabilities: Sequence[float | None]) -> dict[str, float | None]:
    answered = [(bool(l), bool(p), q) for l, p, q in zip(labels, predictions, probabilities) if p is not None]
    tp = sum(1 for l, p, _ in answered if l and p)
    fp = sum(1 for l, p, _ in answered if not l and p)
    tn = sum(1 for l, p, _ in answered if not l and not p)
    fn = sum(1 for l, p, _ in answered if l and not p)
    recall = tp / (tp + fn) if tp + fn else None
    specificity = tn / (tn + fp) if tn + fp else None
    precision = tp / (tp + fp) if tp + fp else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "balanced_accuracy": (recall + specificity) / 2 if recall is not None and specificity is not None else None,
        "precision": precision, "recall": recall, "f1": f1,
        "auc": auc([l for l, _, q in answered if q is not None], [q for _, _, q in answered if q is not None]),
    }


def auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    positives = [s for l, s in zip(labels, scores) if l]
    negatives = [s for l, s in zip(labels, scores) if not l]
    if not positives or not negatives:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))
