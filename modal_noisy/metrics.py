"""Metrics of label cleaning and classification.

A leaf module: beside numpy and scikit-learn it uses only the decision rule
(:mod:`modal_noisy.decision`), never the training, strategy or cleaning code, so every layer can use it.
The cleaning report that tabulates these metrics per round lives in :mod:`modal_noisy.cleaning.report`.

- :func:`classification_metrics` — balanced accuracy, macro-F1, one-vs-rest AUROC, MCC, per-class
  recall, accuracy of a model's predicted probabilities.
- :func:`selection_metrics` — how good a "clean set" is: precision, recall and per-class clean
  retention (does the selection keep the rare classes?).
- :func:`relabel_precision` — the share of queried labels that were wrong (budget well spent).
- :func:`paired_balanced_accuracy_difference` — how much better one model's decisions are than
  another's on the same samples, with the standard error of that difference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from modal_noisy._validation import check_labels, check_positive_int, check_pred_probs, check_same_length
from modal_noisy.decision import prior_corrected_predict

__all__ = [
    "classification_metrics",
    "paired_balanced_accuracy_difference",
    "relabel_precision",
    "selection_metrics",
]


def _check_mask(mask: object, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D boolean mask (got shape {arr.shape})")
    if arr.size and arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be a boolean mask (got dtype {arr.dtype})")
    return arr.astype(bool, copy=False)


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN (silently) when the denominator is 0."""
    return float(numerator) / float(denominator) if denominator else math.nan


def classification_metrics(
    y_true: object,
    pred_probs: object,
    *,
    n_classes: int | None = None,
    class_prior: object | None = None,
) -> dict[str, Any]:
    """Classification metrics of predicted class probabilities; higher is better for all.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    pred_probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities (or any scores: the prediction is the arg-max, AUROC uses ranks only).
    n_classes : int, optional
        Number of classes; default ``pred_probs.shape[1]``.
    class_prior : array-like of shape (n_classes,), optional
        When given, the prediction is :func:`modal_noisy.decision.prior_corrected_predict` (the
        balanced-accuracy decision) instead of the arg-max, and ``pred_probs`` must then be non-negative
        probabilities; AUROC is unaffected.

    Returns
    -------
    dict
        ``accuracy``; ``balanced_accuracy`` (mean recall over the classes present in ``y_true``);
        ``macro_f1`` (mean F1 over the classes present in ``y_true`` or predicted, 0 where undefined,
        as scikit-learn's ``f1_score(average="macro", zero_division=0)``); ``auroc`` (one-vs-rest,
        macro average; NaN when a class is absent from ``y_true``); ``mcc`` (multi-class Matthews
        correlation, 0 when undefined); ``per_class_recall`` (list, NaN for classes absent from
        ``y_true``). All plain Python floats.
    """
    probs, n_classes = check_pred_probs(pred_probs, n_classes)
    y = check_labels(y_true, "y_true", n_classes=n_classes)
    check_same_length(y, probs, "y_true", "pred_probs")
    if y.size == 0:
        raise ValueError("y_true must hold at least one sample (got 0)")

    pred = probs.argmax(axis=1) if class_prior is None else prior_corrected_predict(probs, class_prior)
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    support = cm.sum(axis=1)  # true counts
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
    present = support > 0

    fp = predicted - tp
    fn = support - tp
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    f1_classes = present | (predicted > 0)

    # multi-class MCC from the confusion matrix (Gorodkin 2004), 0 when undefined like scikit-learn
    n = float(cm.sum())
    correct = float(tp.sum())
    cov_ytyp = correct * n - float(np.dot(support, predicted))
    cov_ypyp = n * n - float(np.dot(predicted, predicted))
    cov_ytyt = n * n - float(np.dot(support, support))
    mcc = cov_ytyp / math.sqrt(cov_ytyt * cov_ypyp) if cov_ytyt * cov_ypyp > 0 else 0.0

    if n_classes >= 2 and present.all():
        auroc = float(np.mean([roc_auc_score(y == k, probs[:, k]) for k in range(n_classes)]))
    else:
        auroc = math.nan

    return {
        "accuracy": correct / n,
        "balanced_accuracy": float(np.mean(recall[present])),
        "macro_f1": float(np.mean(f1[f1_classes])),
        "auroc": auroc,
        "mcc": float(mcc),
        "per_class_recall": [float(r) for r in recall],
    }


def selection_metrics(
    selected_mask: object,
    is_noisy: object,
    y_true: object,
    *,
    n_classes: int,
) -> dict[str, Any]:
    """Quality of a selected "clean" set against the known truth; higher is better for all rates.

    Parameters
    ----------
    selected_mask : array-like of bool, shape (n_samples,)
        Samples the method kept as clean.
    is_noisy : array-like of bool, shape (n_samples,)
        Whether each sample's given label is wrong.
    y_true : array-like of shape (n_samples,)
        True labels (the classes of the retention).
    n_classes : int

    Returns
    -------
    dict
        ``precision`` (share of the selected samples whose label is correct), ``recall`` (share of
        the correctly labelled samples that were selected), ``clean_retention`` (list: per true
        class, the share of its correctly labelled samples that were selected; NaN for a class with
        none), ``min_retention`` (the smallest of those, ignoring NaN), ``selected_fraction``,
        ``n_selected``, ``class_counts`` (samples per true class) and ``clean_counts`` (correctly
        labelled samples per true class). Rates with an empty denominator are NaN.
    """
    n_classes = check_positive_int(n_classes, "n_classes")
    selected = _check_mask(selected_mask, "selected_mask")
    noisy = _check_mask(is_noisy, "is_noisy")
    y = check_labels(y_true, "y_true", n_classes=n_classes)
    check_same_length(selected, noisy, "selected_mask", "is_noisy")
    check_same_length(selected, y, "selected_mask", "y_true")

    clean = ~noisy
    kept_clean = selected & clean
    clean_counts = np.bincount(y[clean], minlength=n_classes)
    kept_counts = np.bincount(y[kept_clean], minlength=n_classes)
    retention = [_ratio(k, c) for k, c in zip(kept_counts, clean_counts, strict=True)]
    finite = [r for r in retention if not math.isnan(r)]
    return {
        "precision": _ratio(kept_clean.sum(), selected.sum()),
        "recall": _ratio(kept_clean.sum(), clean.sum()),
        "clean_retention": retention,
        "min_retention": min(finite) if finite else math.nan,
        "selected_fraction": _ratio(selected.sum(), selected.size),
        "n_selected": int(selected.sum()),
        "class_counts": np.bincount(y, minlength=n_classes).tolist(),
        "clean_counts": clean_counts.tolist(),
    }


def relabel_precision(queried_indices: object, given_labels: object, y_true: object) -> float:
    """Share of the queried samples whose given label was wrong (higher = budget better spent).

    Parameters
    ----------
    queried_indices : array-like of int
        Positions of the queried samples in the training set.
    given_labels : array-like of shape (n_samples,)
        The labels of the whole training set *before* the oracle answered.
    y_true : array-like of shape (n_samples,)
        The true labels of the whole training set.

    Returns
    -------
    float
        NaN (silently) when nothing was queried.
    """
    given = check_labels(given_labels, "given_labels")
    truth = check_labels(y_true, "y_true")
    check_same_length(given, truth, "given_labels", "y_true")
    idx = np.asarray(queried_indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(
            f"queried_indices must be a 1-D array of integer positions (got {idx.dtype}, shape {idx.shape})"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= given.size):
        raise ValueError(
            f"queried_indices must lie in [0, {given.size}) (got {int(idx.min())}..{int(idx.max())})"
        )
    return _ratio(np.count_nonzero(given[idx] != truth[idx]), idx.size)


def paired_balanced_accuracy_difference(
    y_true: object, before: object, after: object
) -> tuple[float, float]:
    """Balanced accuracy of ``after`` minus that of ``before`` on the same samples, and its standard error.

    The two sets of decisions are compared sample by sample: within class ``c`` (``n_c`` samples) the
    per-sample change in correctness has variance ``s_c²``, and the difference of the two balanced
    accuracies, a mean over the ``K`` classes present of the per-class recall differences, has
    variance ``sum_c s_c² / n_c / K²``. Pairing makes the error far smaller than that of two separate
    scores when the models agree on most samples, which is what lets a small validation split tell a
    real loss from noise.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
    before, after : array-like of int, shape (n_samples,)
        Predicted classes of the two models.

    Returns
    -------
    (float, float)
        The difference and its standard error (0 where every class has a single sample).
    """
    y = check_labels(y_true, "y_true")
    before = check_labels(before, "before")
    after = check_labels(after, "after")
    check_same_length(y, before, "y_true", "before")
    check_same_length(y, after, "y_true", "after")
    classes = np.unique(y)
    difference, variance = 0.0, 0.0
    for c in classes:
        members = y == c
        change = (after[members] == c).astype(np.float64) - (before[members] == c).astype(np.float64)
        difference += change.mean()
        if members.sum() > 1:
            variance += change.var(ddof=1) / members.sum()
    k = max(len(classes), 1)
    return float(difference / k), float(math.sqrt(variance) / k)
