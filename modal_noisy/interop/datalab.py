"""Phase 1 as a cleanlab Datalab check: ``find_issues(issue_types={"coteaching": {...}})``.

Importing this module registers :class:`CoTeachingIssueManager` with cleanlab's documented hook
(:func:`cleanlab.datalab.internal.issue_manager_factory.register`) for classification, so::

    import modal_noisy.interop.datalab  # registers "coteaching"
    from cleanlab import Datalab

    lab = Datalab(data={"label": y_noisy}, label_name="label")
    lab.find_issues(
        features=X.reshape(len(X), -1),                       # for cleanlab's own checks
        issue_types={"coteaching": {"estimator": net, "X": X},  # our phase 1
                     "label": {}, "outlier": {}, "near_duplicate": {}},
    )
    lab.get_issues("coteaching")   # is_coteaching_issue, coteaching_score
    lab.report()                   # lists the coteaching issues beside cleanlab's

Datalab needs the ``datasets`` package (``pip install 'modal-noisy[datalab]'``). Datalab catches the
errors of every check and prints them ("Error in coteaching: ..."), so a bad argument shows there.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone

try:
    from cleanlab.datalab.internal.issue_manager import IssueManager
    from cleanlab.datalab.internal.issue_manager_factory import REGISTRY, register
    from cleanlab.datalab.internal.task import Task
except ImportError as error:  # cleanlab's Datalab imports Hugging Face `datasets`
    raise ImportError(
        f"modal_noisy.interop.datalab needs cleanlab's Datalab, which needs the 'datasets' package "
        f"({error}); install it with pip install 'modal-noisy[datalab]'"
    ) from error

from modal_noisy._validation import check_labels
from modal_noisy.interop.issues import label_issues

__all__ = ["ISSUE_NAME", "CoTeachingIssueManager"]

#: The issue type under which phase 1 runs in ``Datalab.find_issues(issue_types=...)``.
ISSUE_NAME = "coteaching"


class CoTeachingIssueManager(IssueManager):
    """Datalab check: co-teaching with VoG-aware selection flags the labels it does not trust.

    Parameters (the dict under ``issue_types["coteaching"]``)
    ----------------------------------------------------------
    estimator : CoTeachingClassifier
        Cloned and fitted on ``X`` and the Datalab's labels; with ``fit=False``, used as fitted
        (it must have been fitted on the same samples, in the same order).
    X : array-like
        The inputs of the estimator (images, ``(n_samples, C, H, W)``), aligned with the Datalab's
        rows; Datalab's own ``features`` are not used.
    fit : bool, default=True
        Whether to fit (a clone of) ``estimator``.

    The issues table holds ``is_coteaching_issue`` (not selected as clean) and ``coteaching_score``
    (cleanlab's self-confidence of the fitted model, lowest = most likely wrong); ``info`` holds
    ``given_label``, ``predicted_label``, the noise-rate estimates and the fitted ``estimator``.
    """

    description: ClassVar[str] = (
        "Labels that co-teaching with Variance-of-Gradients selection (modal-noisy phase 1) did not "
        "keep as clean: likely wrong, ranked by the model's confidence in the given label.\n\n"
        "Two networks pick, per mini-batch, the samples of small loss and small VoG for each other; "
        "the samples network 1 did not pick in the last epoch are flagged. Class-aware quotas keep a "
        "rare class's clean samples from being flagged with the noise."
    )
    issue_name: ClassVar[str] = ISSUE_NAME
    verbosity_levels: ClassVar[dict[int, list[str]]] = {
        0: ["noise_rate_estimate"],
        1: ["n_selected_clean", "class_noise_rate_estimates"],
        2: [],
        3: [],
    }

    def __init__(self, datalab: Any, estimator: Any = None, X: object = None, fit: bool = True, **_: Any):
        super().__init__(datalab)
        self.estimator = estimator
        self.X = X
        self.fit = fit

    def find_issues(self, **_: Any) -> None:
        """Fit phase 1 (unless ``fit=False``) and fill ``issues``, ``summary`` and ``info``."""
        if self.estimator is None or self.X is None:
            raise ValueError(
                f"issue_types[{ISSUE_NAME!r}] must give 'estimator' and 'X' (got "
                f"estimator={type(self.estimator).__name__}, X={type(self.X).__name__})"
            )
        labels = self._labels()
        X = np.asarray(self.X)
        if len(X) != len(labels):
            raise ValueError(
                f"X must have one row per Datalab example ({len(labels)}) (got {len(X)})"
            )
        estimator = clone(self.estimator).fit(X, labels) if self.fit else self.estimator
        table = label_issues(estimator, X, labels).sort_index()
        self.issues = pd.DataFrame(
            {
                f"is_{ISSUE_NAME}_issue": table["is_label_issue"].to_numpy(),
                self.issue_score_key: table["label_score"].to_numpy(),
            }
        )
        self.summary = self.make_summary(score=float(table["label_score"].mean()))
        self.info = self.collect_info(estimator, table)

    def _labels(self) -> np.ndarray:
        """The Datalab's labels as class indices; they must be the indices themselves."""
        label_map = getattr(self.datalab, "_label_map", None) or {}
        if any(int(index) != original for index, original in label_map.items()):
            raise ValueError(
                "the Datalab's labels must be the class indices 0..n_classes-1, each present "
                f"(Datalab renumbered them: {label_map})"
            )
        return check_labels(np.asarray(self.datalab.labels), "Datalab labels")

    def collect_info(self, estimator: Any, table: pd.DataFrame) -> dict[str, Any]:  # type: ignore[override]
        rates = getattr(estimator, "class_noise_rates_", None)
        return {
            "given_label": table["given_label"].to_numpy(),
            "predicted_label": table["predicted_label"].to_numpy(),
            "noise_rate_estimate": float(estimator.noise_rate_),
            "class_noise_rate_estimates": None if rates is None else np.round(np.asarray(rates), 3).tolist(),
            "n_selected_clean": int(np.sum(estimator.clean_mask_)),
            "estimator": estimator,
        }


if REGISTRY[Task.CLASSIFICATION].get(ISSUE_NAME) is not CoTeachingIssueManager:
    register(CoTeachingIssueManager, task="classification")
