"""The paper's record splits (openai/automated-interpretability, activations.py).

Split *i* of a list takes every ``len(splits)``-th record starting at *i*, at most ``n`` of
them. Top-activating records are split [train, calibration, valid, test] (stride 4); the random
sample [calibration, valid, test] (stride 3); n = 5. Explanations are written from the top
train records; calibration and valid are top records followed by random ones. Scores are
computed on valid, which is what the public explanation files hold (5 top, then 5 random).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")

TOP_SPLITS = ("train", "calibration", "valid", "test")
RANDOM_SPLITS = ("calibration", "valid", "test")
EXAMPLES_PER_SPLIT = 5


def take_split(records: Sequence[T], splits: Sequence[str], name: str,
               n: int = EXAMPLES_PER_SPLIT) -> list[T]:
    stride = len(splits)
    return list(records[splits.index(name):n * stride:stride])


@dataclass(frozen=True)
class Splits:
    """One neuron's records per split; ``sample`` lists say which are 'top' and 'random'."""

    train: list
    calibration: list
    calibration_sample: list[str]
    valid: list
    valid_sample: list[str]


def make_splits(top: Sequence[T], random: Sequence[T], n: int = EXAMPLES_PER_SPLIT) -> Splits:
    """``top`` ordered most activating first, ``random`` in sample order (both by rank)."""
    top_calibration = take_split(top, TOP_SPLITS, "calibration", n)
    random_calibration = take_split(random, RANDOM_SPLITS, "calibration", n)
    top_valid = take_split(top, TOP_SPLITS, "valid", n)
    random_valid = take_split(random, RANDOM_SPLITS, "valid", n)
    return Splits(
        train=take_split(top, TOP_SPLITS, "train", n),
        calibration=top_calibration + random_calibration,
        calibration_sample=["top"] * len(top_calibration) + ["random"] * len(random_calibration),
        valid=top_valid + random_valid,
        valid_sample=["top"] * len(top_valid) + ["random"] * len(random_valid),
    )
