"""The adoption rules benchmarks/keep_best.py compares: the paired difference and who gets adopted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from keep_best import adopted_rounds, delivered, paired_difference

Y = np.array([0, 0, 0, 0, 1, 1])


def test_paired_difference_is_the_balanced_accuracy_difference_with_its_error():
    before = np.array([0, 0, 1, 1, 1, 0])  # recalls 0.5, 0.5
    after = np.array([0, 0, 0, 1, 1, 1])  # recalls 0.75, 1.0
    difference, stderr = paired_difference(Y, before, after)
    assert difference == pytest.approx((0.75 + 1.0) / 2 - 0.5)
    # class 0: per-sample changes (0, 0, 1, 0), class 1: (0, 1); variances over class sizes, 1/K² weights
    expected = np.sqrt((np.var([0, 0, 1, 0], ddof=1) / 4 + np.var([0, 1], ddof=1) / 2) / 4)
    assert stderr == pytest.approx(expected)
    assert paired_difference(Y, before, before) == (0.0, 0.0)


def test_rules_differ_on_a_candidate_slightly_worse_on_validation():
    phase1 = np.array([0, 0, 0, 1, 1, 0])
    slightly_worse = np.array([0, 0, 1, 1, 1, 0])  # one more miss in class 0
    decisions = [phase1, slightly_worse]
    scores = [0.625, 0.5]
    assert adopted_rounds(Y, decisions, scores, "strict") == [True, False]
    assert adopted_rounds(Y, decisions, scores, "always") == [True, True]
    difference, stderr = paired_difference(Y, phase1, slightly_worse)
    assert difference < 0 < stderr
    assert adopted_rounds(Y, decisions, scores, "paired", z=abs(difference) / stderr + 0.01) == [True, True]
    assert adopted_rounds(Y, decisions, scores, "paired", z=abs(difference) / stderr - 0.01) == [True, False]


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
