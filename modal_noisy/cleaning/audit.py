"""The noise rate from an expert's audit of a random sample of the given labels (numpy only).

Phase 1 forgets the share ``τ`` of each batch with the largest losses, so ``τ`` must be close to the
true noise rate. :class:`~modal_noisy.CoTeachingClassifier` can estimate it from the training losses
(``forget_rate="auto"``), which works when the network fits the clean labels well, but not when it fits
them poorly: then the early losses separate the majority class from the rest, not clean labels from
wrong ones, and the estimate hardly moves with the true rate (``benchmarks/noise_estimate.py`` measures
both). An expert who checks ``n`` labels drawn uniformly at
random gives an unbiased estimate whatever the network: the share of labels the expert changed, with a
binomial (Wilson) interval; ``n = 50`` pins a rate of 0.4 to about ±0.13, ``n = 200`` to about ±0.07.
The audited answers are not wasted: they join the clean set.

- :func:`draw_audit` picks the samples to show the expert (seeded, without replacement);
- :func:`audit_noise_rate` turns the expert's answers into the estimate and its interval.

:class:`~modal_noisy.ActiveLabelCleaner` does both when ``audit_size > 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from sklearn.utils import check_random_state

from modal_noisy._validation import (
    check_fraction,
    check_labels,
    check_positive_int,
    check_same_length,
)

__all__ = ["NoiseAudit", "audit_noise_rate", "draw_audit"]


@dataclass(frozen=True)
class NoiseAudit:
    """Result of :func:`audit_noise_rate`.

    Attributes
    ----------
    noise_rate : float
        Share of audited labels the expert changed, the point estimate of the noise rate.
    low, high : float
        Wilson score interval for the noise rate at ``confidence``.
    n_audited : int
        Number of labels the expert checked.
    n_changed : int
        Number of those the expert changed.
    confidence : float
        Coverage of the interval.
    """

    noise_rate: float
    low: float
    high: float
    n_audited: int
    n_changed: int
    confidence: float


def draw_audit(
    n_samples: int, size: int, *, random_state: int | np.random.RandomState | None = None
) -> np.ndarray:
    """Indices of a uniformly random audit sample, drawn without replacement.

    Parameters
    ----------
    n_samples : int
        Size of the training set.
    size : int
        Number of labels to audit, ``1 <= size <= n_samples``.
    random_state : int, RandomState or None
        Seeds the draw.

    Returns
    -------
    ndarray of int64 of shape (size,)
        Sorted sample indices.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    size = check_positive_int(size, "size")
    if size > n_samples:
        raise ValueError(f"size must be <= n_samples (got {size} > {n_samples})")
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n_samples, size=size, replace=False)).astype(np.int64)


def audit_noise_rate(given: object, verified: object, *, confidence: float = 0.95) -> NoiseAudit:
    """Estimate the noise rate from an expert's verdict on a random sample of given labels.

    Parameters
    ----------
    given : array-like of int of shape (n,)
        The given labels of the audited samples.
    verified : array-like of int of shape (n,)
        The expert's labels for the same samples.
    confidence : float in (0, 1), default=0.95
        Coverage of the Wilson interval.

    Returns
    -------
    NoiseAudit
        ``noise_rate = mean(given != verified)`` and its interval. Larger = noisier. The estimate is
        unbiased only when the audited samples were drawn uniformly at random (:func:`draw_audit`), not
        when they were chosen by a query strategy.
    """
    given = check_labels(given, "given")
    verified = check_labels(verified, "verified")
    n = check_same_length(given, verified, "given", "verified")
    if n == 0:
        raise ValueError("given must hold at least one audited label (got 0)")
    confidence = check_fraction(confidence, "confidence", low_inclusive=False, high_inclusive=False)
    changed = int(np.count_nonzero(given != verified))
    rate = changed / n
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return NoiseAudit(
        noise_rate=rate,
        low=0.0 if changed == 0 else max(0.0, centre - half),
        high=1.0 if changed == n else min(1.0, centre + half),
        n_audited=n,
        n_changed=changed,
        confidence=confidence,
    )
