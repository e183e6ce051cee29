"""Metrics against hand-computed values and scikit-learn; the cleaning report's tables, JSON and plots."""

from __future__ import annotations

import ast
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

from modal_noisy.metrics import (
    classification_metrics,
    paired_balanced_accuracy_difference,
    relabel_precision,
    selection_metrics,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# six samples, three classes; predictions 0 1 1 1 2 0 (see the hand computation in each test)
Y6 = np.array([0, 0, 1, 1, 2, 2])
P6 = np.array(
    [
        [0.6, 0.3, 0.1],
        [0.3, 0.5, 0.2],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.1, 0.2, 0.7],
        [0.5, 0.1, 0.4],
    ]
)


# ------------------------------------------------------------------ classification
def test_classification_metrics_by_hand():
    m = classification_metrics(Y6, P6)
    # recalls 1/2, 2/2, 1/2
    assert m["per_class_recall"] == [0.5, 1.0, 0.5]
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # F1 per class: 2*1/(2+1+1), 2*2/(4+1+0), 2*1/(2+0+1)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # MCC: n=6, correct=4, true counts (2,2,2), predicted counts (2,3,1)
    assert m["mcc"] == pytest.approx((4 * 6 - 12) / math.sqrt((36 - 12) * (36 - 14)))
    # one-vs-rest AUROC: class 0 ranks 7 of 8 pairs right, classes 1 and 2 all 8
    assert m["auroc"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    assert all(type(m[k]) is float for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "mcc"))


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["s0", "s1", "s2"])
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 200)
    y[:5] = np.arange(5)
    probs = rng.dirichlet(np.ones(5), 200)
    probs[np.arange(200), y] += rng.random(200) * 0.5  # better than chance
    probs /= probs.sum(axis=1, keepdims=True)
    m = classification_metrics(y, probs)
    pred = probs.argmax(1)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    assert m["auroc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))


def test_absent_class_gives_nan_auroc_without_warning():
    y = np.array([0, 0, 1, 1])  # class 2 absent
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, probs)
    assert math.isnan(m["auroc"]) and math.isnan(m["per_class_recall"][2])
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)  # over present classes
    # F1 over classes in y_true or predicted: class 0 (2/3), 1 (1), 2 (0, predicted once)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_constant_prediction_mcc_zero_without_warning():
    y = np.array([0, 1, 1, 0])
    probs = np.tile([0.9, 0.1], (4, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, probs)
    assert m["mcc"] == 0.0 and m["auroc"] == 0.5


@pytest.mark.parametrize(
    ("y", "probs", "kwargs", "match"),
    [
        (Y6, P6[:, :2], {}, r"y_true must lie in \[0, 2\)"),
        (Y6, P6, {"n_classes": 4}, "must have n_classes=4 columns"),
        (Y6[:5], P6, {}, "same length"),
        (Y6, P6[:, 0], {}, r"shape \(n_samples, n_classes\)"),
        (Y6, np.full((6, 3), np.nan), {}, "NaN"),
    ],
    ids=["label-range", "columns", "length", "1d", "nan"],
)
def test_classification_metrics_validate(y, probs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y, probs, **kwargs)


def test_class_prior_changes_decisions_not_auroc():
    y = np.array([0, 0, 0, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.65, 0.35]])
    plain = classification_metrics(y, probs)
    balanced = classification_metrics(y, probs, class_prior=[0.75, 0.25])
    assert plain["per_class_recall"] == [1.0, 0.0]
    # divided by the prior: 1.2 / 0.4, 1.07 / 0.8, 0.8 / 1.6, 0.87 / 1.4
    assert balanced["per_class_recall"] == pytest.approx([2 / 3, 1.0])
    assert balanced["auroc"] == plain["auroc"]


# ------------------------------------------------------------------ selection / relabel
def test_selection_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    noisy = np.array([False, True, False, False, True, False])
    selected = np.array([True, True, False, True, False, False])
    m = selection_metrics(selected, noisy, y, n_classes=4)
    assert m["precision"] == pytest.approx(2 / 3)  # samples 0 and 3 correct out of 0, 1, 3
    assert m["recall"] == pytest.approx(2 / 4)  # 4 correctly labelled: 0, 2, 3, 5
    assert m["clean_retention"][:3] == [0.5, 1.0, 0.0] and math.isnan(m["clean_retention"][3])
    assert m["min_retention"] == 0.0 and m["selected_fraction"] == 0.5 and m["n_selected"] == 3
    assert m["class_counts"] == [3, 2, 1, 0] and m["clean_counts"] == [2, 1, 1, 0]


def test_selection_metrics_empty_selection_is_nan():
    m = selection_metrics(np.zeros(3, bool), np.array([0, 1, 0]), np.array([0, 1, 1]), n_classes=2)
    assert math.isnan(m["precision"]) and m["recall"] == 0.0 and m["min_retention"] == 0.0


def test_selection_metrics_validate():
    with pytest.raises(ValueError, match="selected_mask and is_noisy must have the same length"):
        selection_metrics(np.ones(3, bool), np.ones(2, bool), np.zeros(3), n_classes=2)
    with pytest.raises(ValueError, match="is_noisy must be a boolean mask"):
        selection_metrics(np.ones(3, bool), np.array([0.5, 0, 1]), np.zeros(3), n_classes=2)


def test_relabel_precision_by_hand():
    given = np.array([0, 1, 2, 3])
    truth = np.array([0, 0, 2, 0])
    assert relabel_precision([1, 2, 3], given, truth) == pytest.approx(2 / 3)
    assert relabel_precision([0, 2], given, truth) == 0.0
    assert math.isnan(relabel_precision(np.array([], dtype=np.int64), given, truth))
    with pytest.raises(ValueError, match=r"queried_indices must lie in \[0, 4\)"):
        relabel_precision([4], given, truth)


def test_metrics_is_a_leaf_module():
    source = Path(__import__("modal_noisy.metrics").metrics.__file__).read_text()
    imported = {
        node.module or "" for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    forbidden = {
        "torch", "skorch", "matplotlib", "pandas",
        "modal_noisy.cleaning", "modal_noisy.strategies", "modal_noisy.training",
    }
    assert not imported & forbidden, imported & forbidden


def test_paired_difference_is_the_balanced_accuracy_difference_with_its_error():
    Y = np.array([0, 0, 0, 0, 1, 1])
    before = np.array([0, 0, 1, 1, 1, 0])  # recalls 0.5, 0.5
    after = np.array([0, 0, 0, 1, 1, 1])  # recalls 0.75, 1.0
    difference, stderr = paired_balanced_accuracy_difference(Y, before, after)
    assert difference == pytest.approx((0.75 + 1.0) / 2 - 0.5)
    # class 0: per-sample changes (0, 0, 1, 0), class 1: (0, 1); variances over class sizes, 1/K² weights
    expected = np.sqrt((np.var([0, 0, 1, 0], ddof=1) / 4 + np.var([0, 1], ddof=1) / 2) / 4)
    assert stderr == pytest.approx(expected)
    assert paired_balanced_accuracy_difference(Y, before, before) == (0.0, 0.0)



def test_paired_difference_checks_lengths():
    with pytest.raises(ValueError, match=r"y_true and after must have the same length \(got 3 and 2\)"):
        paired_balanced_accuracy_difference([0, 1, 1], [0, 1, 0], [0, 1])
