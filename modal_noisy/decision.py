"""The prior-correction decision rule: predict the class that maximises balanced accuracy.

A network trained with cross-entropy on class-imbalanced labels estimates ``p(k | x)`` under the
training prior, so its arg-max favours the majority classes. Dividing the probabilities by that prior
before the arg-max (post-hoc logit adjustment) gives the decision for the balanced error instead.
Phase 1 (``CoTeachingClassifier(decision="balanced")``), the metrics and the cleaning report use it,
so it lives in a module of its own below all of them (numpy only).

- :func:`label_prior` — class frequencies of the training labels, never 0 for a class;
- :func:`ensemble_prior` — the prior carried by the softmax of several networks' summed logits;
- :func:`prior_corrected_predict` — ``argmax_k p(k | x) / prior(k)``.
"""

from __future__ import annotations

import numpy as np

from modal_noisy._validation import check_labels, check_positive_int, check_pred_probs

__all__ = ["ensemble_prior", "label_prior", "prior_corrected_predict"]


def _check_prior(class_prior: object, n_classes: int) -> np.ndarray:
    prior = np.asarray(class_prior, dtype=np.float64)
    if prior.shape != (n_classes,):
        raise ValueError(
            f"class_prior must have one entry per class, shape ({n_classes},) (got shape {prior.shape})"
        )
    if not (np.all(np.isfinite(prior)) and np.all(prior > 0)):
        raise ValueError(f"class_prior must be finite and > 0 for every class (got {prior.tolist()})")
    return prior / prior.sum()


def label_prior(labels: object, n_classes: int) -> np.ndarray:
    """Class frequencies of ``labels``, with a pseudo-count of 1 for a class that has none.

    The prior :func:`prior_corrected_predict` and ``CoTeachingClassifier(decision="balanced")`` divide
    by; the pseudo-count keeps every entry > 0, so a class absent from the training labels is still
    predictable.

    Parameters
    ----------
    labels : array-like of int, shape (n_samples,)
        Training labels in ``[0, n_classes)``.
    n_classes : int
        Number of classes.

    Returns
    -------
    ndarray of float64, shape (n_classes,)
        Sums to 1.
    """
    n_classes = check_positive_int(n_classes, "n_classes")
    counts = np.bincount(check_labels(labels, "labels", n_classes=n_classes), minlength=n_classes)
    counts = counts.astype(np.float64)
    counts[counts == 0] = 1.0
    return counts / counts.sum()


def ensemble_prior(class_prior: object, n_networks: int = 1) -> np.ndarray:
    """The prior to divide out of the softmax of ``n_networks`` networks' summed logits.

    Each network's softmax is a posterior that carries the training prior; the softmax of their
    summed logits is proportional to the product of those posteriors, so it carries the prior
    ``n_networks`` times. Dividing by ``class_prior ** n_networks`` (normalised) takes it out once per
    network; dividing once would leave the prior in a pair's decision once more, still favouring the
    majority classes.

    Parameters
    ----------
    class_prior : array-like of shape (n_classes,)
        Class frequencies of the training labels (every entry > 0), e.g. :func:`label_prior`.
    n_networks : int, default=1
        Number of networks whose logits are summed before the softmax.

    Returns
    -------
    ndarray of float64, shape (n_classes,)
        Sums to 1.
    """
    n_networks = check_positive_int(n_networks, "n_networks")
    prior = np.asarray(class_prior, dtype=np.float64)
    if prior.ndim != 1:
        raise ValueError(f"class_prior must have shape (n_classes,) (got shape {prior.shape})")
    powered = _check_prior(prior, len(prior)) ** n_networks
    return powered / powered.sum()


def prior_corrected_predict(pred_probs: object, class_prior: object) -> np.ndarray:
    """Predicted classes ``argmax_k p(k | x) / prior(k)``: the balanced-accuracy decision.

    A network trained with cross-entropy on imbalanced labels estimates ``p(k | x)`` under the
    training prior, so its arg-max favours the majority classes. Dividing by the prior
    (post-hoc logit adjustment, Menon et al., ICLR 2021) gives the Bayes-optimal decision for the
    *balanced* error, the mean of the per-class error rates. It changes decisions only, not the
    probabilities (which active-learning scores and cleanlab should keep receiving).

    Parameters
    ----------
    pred_probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities (finite, non-negative).
    class_prior : array-like of shape (n_classes,)
        Class frequencies of the training labels (normalised here; every entry > 0).

    Returns
    -------
    ndarray of int64, shape (n_samples,)
    """
    probs, n_classes = check_pred_probs(pred_probs)
    if np.any(probs < 0):
        raise ValueError("pred_probs must be >= 0 (got a negative value)")
    prior = _check_prior(class_prior, n_classes)
    with np.errstate(divide="ignore"):
        scores = np.log(probs) - np.log(prior)
    return scores.argmax(axis=1).astype(np.int64)
