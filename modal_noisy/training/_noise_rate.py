"""Noise-rate estimates from per-sample training losses and predictions (numpy only).

Placeholder API refined by experiment; see the estimator docstrings for what is measured.
"""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture

__all__ = ["estimate_class_noise_rates", "estimate_noise_rate"]


def _normalise(losses: np.ndarray) -> np.ndarray:
    lo, hi = np.min(losses), np.max(losses)
    return (losses - lo) / max(hi - lo, 1e-12)


def estimate_noise_rate(losses: np.ndarray, *, random_state: int = 0) -> float:
    """Weight of the high-loss component of a two-component GMM on min-max normalised losses."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size < 4:
        return 0.0
    x = _normalise(losses).reshape(-1, 1)
    gmm = GaussianMixture(
        2, max_iter=100, tol=1e-3, reg_covar=5e-4, random_state=random_state
    ).fit(x)
    noisy = int(np.argmax(gmm.means_.ravel()))
    post = gmm.predict_proba(x)[:, noisy]
    return float(np.mean(post))


def estimate_class_noise_rates(
    labels: np.ndarray, predictions: np.ndarray, n_classes: int
) -> np.ndarray:
    """Per class: fraction of samples labelled ``c`` that the networks do not predict as ``c``."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    agree = np.bincount(labels[labels == predictions], minlength=n_classes).astype(np.float64)
    rates = np.where(counts > 0, 1.0 - agree / np.maximum(counts, 1.0), 0.0)
    return rates
