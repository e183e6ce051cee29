"""Noise-rate estimators on synthetic losses and probabilities with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from modal_noisy.training._noise_rate import class_noise_rates, noisy_posterior


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.6], ids=["20%", "40%", "60%"])
def test_noisy_posterior_recovers_mixture_weight(rate):
    rng = np.random.default_rng(0)
    n = 2000
    noisy = rng.random(n) < rate
    # log-normal losses: clean around 0.05, noisy around 2.5
    losses = np.where(noisy, np.exp(rng.normal(0.9, 0.5, n)), np.exp(rng.normal(-3.0, 0.7, n)))
    post = noisy_posterior(losses)
    assert post.shape == (n,)
    assert post.mean() == pytest.approx(noisy.mean(), abs=0.02)
    assert np.mean((post > 0.5) == noisy) > 0.97


def test_noisy_posterior_degenerate_inputs():
    assert noisy_posterior(np.ones(10)).tolist() == [0.0] * 10
    assert noisy_posterior(np.array([0.1, 2.0])).tolist() == [0.0, 0.0]


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
