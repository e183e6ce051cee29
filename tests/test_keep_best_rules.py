"""The adoption rules benchmarks/keep_best.py compares: the paired difference and who gets adopted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from keep_best import adopted_rounds, delivered

from modal_noisy.metrics import paired_balanced_accuracy_difference

Y = np.array([0, 0, 0, 0, 1, 1])


def test_rules_differ_on_a_candidate_slightly_worse_on_validation():
    phase1 = np.array([0, 0, 0, 1, 1, 0])
    slightly_worse = np.array([0, 0, 1, 1, 1, 0])  # one more miss in class 0
    decisions = [phase1, slightly_worse]
    assert adopted_rounds(Y, decisions, "strict") == [True, False]
    assert adopted_rounds(Y, decisions, "always") == [True, True]
    difference, stderr = paired_balanced_accuracy_difference(Y, phase1, slightly_worse)
    assert difference < 0 < stderr
    assert adopted_rounds(Y, decisions, "paired", z=abs(difference) / stderr + 0.01) == [True, True]
    assert adopted_rounds(Y, decisions, "paired", z=abs(difference) / stderr - 0.01) == [True, False]


def test_delivered_takes_the_last_adopted_round():
    record = {
        "y_val": Y.tolist(),
        "rounds": [
            {"val_balanced_accuracy": 0.625, "test_balanced_accuracy": 0.30,
             "val_decisions": [0, 0, 0, 1, 1, 0]},
            {"val_balanced_accuracy": 0.5, "test_balanced_accuracy": 0.35,
             "val_decisions": [0, 0, 1, 1, 1, 0]},
        ],
    }
    scores = delivered(record)
    assert scores["phase 1"] == 0.30 and scores["strict"] == 0.30 and scores["always"] == 0.35
