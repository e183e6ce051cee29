"""A fitted phase 1 as a label-issues table in the shape of cleanlab's Datalab.

cleanlab's ``Datalab.get_issues("label")`` has one row per sample with ``is_label_issue``,
``label_score`` (0 = the given label is very likely wrong, 1 = very likely right), ``given_label`` and
``predicted_label``. :func:`label_issues` gives the same columns from a fitted
:class:`~modal_noisy.CoTeachingClassifier`: the issue flag is phase 1's own decision (the samples it
did not keep as clean), the score cleanlab's label-quality score of the model's probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modal_noisy._validation import check_labels
from modal_noisy.scoring import label_quality_scores

__all__ = ["label_issues"]


def label_issues(
    estimator: Any,
    X: object,
    y: object,
    *,
    pred_probs: object = None,
    method: str = "self_confidence",
) -> pd.DataFrame:
    """The label issues phase 1 found, ranked most likely wrong first, in Datalab's columns.

    Parameters
    ----------
    estimator : CoTeachingClassifier
        Fitted on ``X`` and ``y``: its ``clean_mask_`` has one entry per sample of ``X``.
    X : array-like
        The training inputs ``estimator`` was fitted on (for its predictions).
    y : array-like of int
        The given (possibly wrong) labels it was fitted on.
    pred_probs : array-like of shape (n_samples, n_classes), optional
        The model's probabilities for ``X``; default ``estimator.predict_proba(X)``.
    method : {"self_confidence", "normalized_margin"}, default="self_confidence"
        The label-quality score (:func:`modal_noisy.scoring.label_quality_scores`, cleanlab's).

    Returns
    -------
    pandas.DataFrame
        Indexed by sample position, sorted by ``label_score`` (lowest first, ties in position
        order), with the columns ``is_label_issue`` (not selected as clean by phase 1),
        ``label_score``, ``given_label`` and ``predicted_label``.

    Raises
    ------
    ValueError
        An unfitted estimator, or ``y`` / ``pred_probs`` that do not match its ``clean_mask_``.
    """
    clean_mask = getattr(estimator, "clean_mask_", None)
    if clean_mask is None:
        raise ValueError(
            f"estimator must be fitted (it has no clean_mask_): call fit(X, y) first "
            f"(got an unfitted {type(estimator).__name__})"
        )
    clean_mask = np.asarray(clean_mask, dtype=bool)
    given = check_labels(y, "y")
    if given.size != clean_mask.size:
        raise ValueError(
            f"y must hold the {clean_mask.size} labels the estimator was fitted on (got {given.size})"
        )
    probs = np.asarray(estimator.predict_proba(X) if pred_probs is None else pred_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != clean_mask.size:
        raise ValueError(
            f"pred_probs must have shape ({clean_mask.size}, n_classes), one row per training sample "
            f"(got shape {probs.shape})"
        )
    frame = pd.DataFrame(
        {
            "is_label_issue": ~clean_mask,
            "label_score": label_quality_scores(probs, given, method=method),
            "given_label": given,
            "predicted_label": probs.argmax(axis=1).astype(np.int64),
        }
    )
    return frame.sort_values("label_score", kind="stable")
