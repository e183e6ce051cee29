"""The noise-rate audit: draws, the estimate and its Wilson interval, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modal_noisy.cleaning.audit import audit_noise_rate, draw_audit
from modal_noisy.noise import inject_label_noise


def test_draw_is_seeded_sorted_and_without_replacement():
    first = draw_audit(1000, 50, random_state=3)
    assert np.array_equal(first, draw_audit(1000, 50, random_state=3))
    assert not np.array_equal(first, draw_audit(1000, 50, random_state=4))
    assert len(np.unique(first)) == 50 and np.all(np.diff(first) > 0)
    assert first.min() >= 0 and first.max() < 1000


def test_wilson_interval_matches_the_textbook_value():
    # 40 of 100 wrong: Wilson 95% interval (0.3094, 0.4980), e.g. Agresti & Coull (1998)
    audit = audit_noise_rate(np.r_[np.zeros(60, int), np.ones(40, int)], np.zeros(100, int))
    assert audit.noise_rate == 0.4 and audit.n_changed == 40 and audit.n_audited == 100
    assert audit.low == pytest.approx(0.3094, abs=5e-4)
    assert audit.high == pytest.approx(0.4980, abs=5e-4)


@pytest.mark.parametrize(("wrong", "low", "high"), [(0, 0.0, None), (20, None, 1.0)], ids=["none", "all"])
def test_interval_ends_are_exact_at_the_extremes(wrong, low, high):
    given = np.zeros(20, int)
    verified = np.r_[np.ones(wrong, int), np.zeros(20 - wrong, int)]
    audit = audit_noise_rate(given, verified)
    if low is not None:
        assert audit.low == low and 0 < audit.high < 0.2
    if high is not None:
        assert audit.high == high and 0.8 < audit.low < 1


# derandomized: a coverage check fails by chance in a few of many random searches, and hypothesis
# searches for exactly that; fixed examples make the suite reproducible
@settings(max_examples=25, deadline=None, derandomize=True)
@given(rate=st.sampled_from([0.1, 0.2, 0.4, 0.6]), seed=st.integers(0, 10_000))
def test_random_audit_recovers_the_realised_rate(rate, seed):
    """The interval covers the training set's realised rate in (nearly) all of many seeded audits."""
    y = np.random.default_rng(seed).integers(0, 5, size=3000)
    noisy = inject_label_noise(y, rate, random_state=seed)
    misses = 0
    for k in range(20):
        idx = draw_audit(len(y), 200, random_state=seed + 1 + k)  # the noise's seed would correlate them
        audit = audit_noise_rate(noisy.labels[idx], y[idx])
        misses += not (audit.low <= noisy.noise_rate <= audit.high)
    assert misses <= 4  # 95% coverage: 1 miss expected in 20, P(>= 5 misses) < 0.003


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: draw_audit(10, 11), r"size must be <= n_samples \(got 11 > 10\)"),
        (lambda: draw_audit(10, 0), r"size must be >= 1 \(got 0\)"),
        (lambda: audit_noise_rate([0, 1], [0]), r"given .* verified"),
        (lambda: audit_noise_rate([], []), r"at least one audited label \(got 0\)"),
        (lambda: audit_noise_rate([0, 1], [0, -1]), r"verified"),
        (lambda: audit_noise_rate([0], [0], confidence=1.0), r"confidence must be in \(0, 1\) \(got 1.0\)"),
    ],
    ids=["size>n", "size<1", "lengths", "empty", "negative-label", "confidence"],
)
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()
