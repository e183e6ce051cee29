"""Noise-rate estimates from what co-teaching observes (numpy only).

* The overall rate (:func:`wrong_label_share`): mixture-proportion estimation on predictions of
  samples held out of training. A wrong label that the networks have not memorised looks like a
  label drawn at random among the wrong classes, so the given-label probabilities are a mixture
  of a clean part and that random-label reference, and the reference's weight is the rate.
* Per-class rates (:func:`class_noise_rates`): the confident joint of confident learning
  (Northcutt et al., JAIR 2021) on epoch-averaged probabilities gives their shape; a sample
  labelled ``i`` counts as confidently of class ``j`` when ``p_j`` reaches class ``j``'s mean
  self-confidence, so a rare class's lower confidence does not count its clean samples as noisy.
  The caller scales the shape to the overall rate.

Both are computed in the first epochs and then frozen (see
:class:`~modal_noisy.training.CoTeachingClassifier`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["NOISE_RATE_RANGE", "class_noise_rates", "wrong_label_share"]

#: every estimate is clipped to this range: a class whose labels all look wrong still keeps a few
NOISE_RATE_RANGE = (0.0, 0.95)
# each ratio of the mixture-proportion estimate is raised by this many binomial standard errors
_STDERR_WEIGHT = 0.5


def wrong_label_share(probs: np.ndarray, labels: np.ndarray, *, min_quantile: float = 0.1) -> float:
    """Share of wrong labels by mixture-proportion estimation against a random-label reference.

    Each sample contributes its predicted probability of its given label, ``p[i, label_i]``;
    these follow ``(1 - τ) · F_clean + τ · F_wrong``. The probabilities of the classes a sample
    is *not* labelled with, ``p[i, j]`` for ``j != label_i``, give the reference ``F_wrong``: the
    distribution of a label drawn at random among the wrong ones, which is what a wrong label
    looks like to a network that has not memorised it. Since ``F_obs(t) >= τ · F_wrong(t)`` for
    every threshold ``t``, ``τ <= F_obs(t) / F_wrong(t)``; the estimate is the smallest ratio over
    thresholds at the reference's quantiles ``min_quantile``…0.99, each ratio raised by half its
    binomial standard error (the minimum of noisy ratios is otherwise biased low on a few hundred
    samples). It is tight where clean labels have almost no mass (Blanchard, Lee & Scott 2010;
    Scott 2015).

    Two conditions make it exact, and their failures bias it in known directions:

    * the probabilities come from networks that did not train on these samples (a held-out
      share): a network that has begun to memorise a wrong label ranks it above the other wrong
      classes, and the estimate drops;
    * wrong labels carry no pattern the networks can learn (symmetric noise): where a class is
      systematically given one other label (pair noise, adjacent grades), the networks learn to
      expect it and the estimate is too low. An expert's audit then sets the rate
      (:mod:`modal_noisy.cleaning.audit`).

    Parameters
    ----------
    probs : ndarray of shape (n, n_classes)
        Predicted class probabilities (rows sum to 1).
    labels : ndarray of int of shape (n,)
        Given labels in ``[0, n_classes)``.
    min_quantile : float in (0, 1), default=0.1
        Lowest reference quantile used as a threshold.

    Returns
    -------
    float in [0, 1]
        The estimated share of wrong labels; 0 for fewer than 2 samples or 2 classes.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = probs.shape
    if n < 2 or k < 2:
        return 0.0
    rows = np.arange(n)
    observed = np.sort(probs[rows, labels])
    other = np.ones_like(probs, dtype=bool)
    other[rows, labels] = False
    reference = np.sort(probs[other])
    thresholds = np.quantile(reference, np.linspace(min_quantile, 0.99, 50))
    f_obs = np.searchsorted(observed, thresholds, side="right") / n
    f_ref = np.maximum(np.searchsorted(reference, thresholds, side="right") / reference.size, 1e-12)
    stderr = np.sqrt(f_obs * (1.0 - f_obs) / n)
    return float(np.clip(((f_obs + _STDERR_WEIGHT * stderr) / f_ref).min(), 0.0, 1.0))


def class_noise_rates(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-class noise rates from the (calibrated) confident joint of labels and probabilities.

    Parameters
    ----------
    labels : ndarray of int of shape (n,)
        Given labels in ``[0, n_classes)``.
    probs : ndarray of shape (n, n_classes)
        Predicted class probabilities (e.g. averaged over epochs).

    Returns
    -------
    ndarray of shape (n_classes,)
        For each given class ``i``, the estimated share of its samples whose true class is another
        one: ``1 - C[i, i] / sum_j C[i, j]``. Larger = noisier. A class without samples, or whose
        samples are all unconfident, gets the overall rate.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    # per-class threshold: mean self-confidence of the samples given that label
    self_conf = np.bincount(labels, weights=probs[np.arange(n), labels], minlength=k)
    thresholds = np.where(counts > 0, self_conf / np.maximum(counts, 1.0), 1.0)
    confident = probs >= thresholds[None, :] - 1e-12
    masked = np.where(confident, probs, -np.inf)
    has_any = confident.any(axis=1)
    guess = masked.argmax(axis=1)
    joint = np.zeros((k, k))
    np.add.at(joint, (labels[has_any], guess[has_any]), 1.0)
    row = joint.sum(axis=1)
    diag = np.diag(joint)
    total = row.sum()
    overall = 1.0 - diag.sum() / total if total > 0 else 0.0
    return np.where(row > 0, 1.0 - diag / np.maximum(row, 1.0), overall)
