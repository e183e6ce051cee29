"""Noise-rate estimators on synthetic losses and probabilities with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from modal_noisy.training import class_noise_rates, wrong_label_share


def _weak_learner(rng, n, k, rate, *, boost=2.0, memorised=0.0, pair=False):
    """Softmax of Gaussian logits with the true class raised by `boost` (a network that gets a
    fifth of the clean labels wrong), labels flipped at `rate` (uniformly, or to the next class)."""
    true = rng.integers(0, k, n)
    flip = rng.random(n) < rate
    given = true.copy()
    shift = np.ones(flip.sum(), dtype=int) if pair else rng.integers(1, k, flip.sum())
    given[flip] = (true[flip] + shift) % k
    logits = rng.normal(0.0, 1.0, (n, k))
    logits[np.arange(n), true] += boost
    logits[np.arange(n), given] += memorised * flip  # a network that has begun to fit wrong labels
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return given, probs, flip


@pytest.mark.parametrize(
    ("rate", "slack"), [(0.2, 0.05), (0.4, 0.05), (0.6, 0.12)], ids=["20%", "40%", "60%"]
)
def test_wrong_label_share_recovers_the_rate_of_a_weak_learner(rate, slack):
    """An upper bound, tight while clean labels have little mass where random labels lie."""
    rng = np.random.default_rng(0)
    given, probs, flip = _weak_learner(rng, 3000, 5, rate)
    clean = ~flip
    assert (probs.argmax(1) == given)[clean].mean() < 0.85  # hard clean labels, unlike digits
    estimate = wrong_label_share(probs, given)
    assert flip.mean() - 0.02 <= estimate <= flip.mean() + slack


def test_wrong_label_share_is_low_where_wrong_labels_are_learned():
    """The two documented failures both bias the estimate down, never up."""
    rng = np.random.default_rng(1)
    given, probs, _ = _weak_learner(rng, 3000, 5, 0.4)
    unbiased = wrong_label_share(probs, given)
    given_m, probs_m, _ = _weak_learner(np.random.default_rng(1), 3000, 5, 0.4, memorised=2.0)
    given_p, probs_p, _ = _weak_learner(np.random.default_rng(1), 3000, 5, 0.4, memorised=1.0, pair=True)
    memorised = wrong_label_share(probs_m, given_m)
    pair = wrong_label_share(probs_p, given_p)
    assert memorised < unbiased - 0.1
    assert pair <= unbiased


def test_wrong_label_share_degenerate_inputs():
    assert wrong_label_share(np.array([[0.5, 0.5]]), np.array([0])) == 0.0
    assert wrong_label_share(np.ones((5, 1)), np.zeros(5, dtype=int)) == 0.0
    uniform = wrong_label_share(np.full((50, 4), 0.25), np.arange(50) % 4)
    assert 0.0 <= uniform <= 1.0


def _synthetic_probs(rng, counts, noise, confidence):
    """Labels of classes with the given sizes; a share `noise` relabelled uniformly elsewhere."""
    k = len(counts)
    true = np.repeat(np.arange(k), counts)
    flip = rng.random(len(true)) < noise
    given = true.copy()
    given[flip] = (true[flip] + rng.integers(1, k, flip.sum())) % k
    probs = np.full((len(true), k), 0.0)
    conf = np.asarray(confidence)[true]
    probs[np.arange(len(true)), true] = conf
    probs += ((1 - conf) / (k - 1))[:, None] * (np.arange(k)[None, :] != true[:, None])
    return given, probs, flip


def test_class_noise_rates_match_truth_with_a_rare_unconfident_class():
    rng = np.random.default_rng(1)
    counts = [400, 300, 200, 60]
    # the rare class is predicted with low confidence: a single loss threshold calls it noisy
    given, probs, flip = _synthetic_probs(rng, counts, 0.3, [0.95, 0.9, 0.9, 0.45])
    rates = class_noise_rates(given, probs)
    truth = np.array([flip[given == c].mean() for c in range(4)])
    np.testing.assert_allclose(rates, truth, atol=0.03)
    assert truth[3] > 0.5  # inflow from the big classes makes the rare class the noisiest


def test_class_noise_rates_class_without_samples_gets_overall_rate():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.9, 0.0]])
    labels = np.array([0, 1, 0])  # sample 2 is "class 1 labelled 0"
    rates = class_noise_rates(labels, probs)
    assert rates[0] == pytest.approx(0.5)
    assert rates[1] == pytest.approx(0.0)
    assert rates[2] == pytest.approx(1 / 3)
