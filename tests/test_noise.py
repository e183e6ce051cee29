"""Tests for modal_noisy.noise: long-tailed subsampling and synthetic label noise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modal_noisy.noise import NoisyLabels, inject_label_noise, make_long_tailed

K = 5
Y_BALANCED = np.repeat(np.arange(K), 400)  # 2,000 labels, 400 per class


def binomial_bound(n: int, p: float, sigmas: float = 4.0) -> float:
    """Half-width of a ``sigmas``-sigma interval for a binomial proportion of ``n`` trials."""
    return sigmas * np.sqrt(p * (1 - p) / n)


# --------------------------------------------------------------------------------------------------
# inject_label_noise: rates, structure, determinism
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
@pytest.mark.parametrize("rate", [0.0, 0.2, 0.4, 0.8], ids=lambda r: f"rate{r}")
def test_realised_rate_within_binomial_bound(kind, rate):
    noisy = inject_label_noise(Y_BALANCED, rate, kind, random_state=1)
    n = Y_BALANCED.size
    assert isinstance(noisy, NoisyLabels)
    assert abs(noisy.noise_rate - rate) <= binomial_bound(n, rate) + 1e-12
    for cls in range(K):
        assert abs(noisy.noise_rates[cls] - rate) <= binomial_bound(400, rate) + 1e-12
    assert noisy.noise_rate == pytest.approx(noisy.is_noisy.mean())


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
def test_mean_realised_rate_over_200_seeds_is_unbiased(kind):
    y = np.repeat(np.arange(4), 50)
    rates = np.array([inject_label_noise(y, 0.3, kind, random_state=s).noise_rate for s in range(200)])
    # the mean of 200 independent proportions of 200 trials each: sd = sqrt(.3*.7/40000)
    assert abs(rates.mean() - 0.3) <= binomial_bound(200 * 200, 0.3)
    # and the seeds really differ
    assert rates.std() > 0


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 6), min_size=1, max_size=300),
    rate=st.floats(0.0, 0.99),
    kind=st.sampled_from(["symmetric", "pair"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_flipped_labels_never_equal_original(labels, rate, kind, seed):
    y = np.asarray(labels)
    k = int(y.max()) + 1
    if k < 2:
        rate = 0.0  # a single class has nowhere to flip to
    noisy = inject_label_noise(y, rate, kind, n_classes=max(k, 2), random_state=seed)
    assert noisy.labels.dtype == np.int64 and noisy.is_noisy.dtype == bool
    assert noisy.labels.shape == y.shape
    np.testing.assert_array_equal(noisy.is_noisy, noisy.labels != y)
    assert np.all((noisy.labels >= 0) & (noisy.labels < max(k, 2)))
    if kind == "pair":
        flipped = noisy.is_noisy
        np.testing.assert_array_equal(noisy.labels[flipped], (y[flipped] + 1) % max(k, 2))


def test_symmetric_flips_are_uniform_over_other_classes():
    y = np.zeros(20_000, dtype=np.int64)
    noisy = inject_label_noise(y, 0.5, n_classes=K, random_state=3)
    dest = noisy.labels[noisy.is_noisy]
    assert not np.any(dest == 0)
    counts = np.bincount(dest, minlength=K)[1:]
    expected = dest.size / (K - 1)
    # chi-square with 3 dof; 16.27 is its 0.999 quantile
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 16.27, counts


def test_pair_noise_goes_to_next_class_cyclically():
    noisy = inject_label_noise(Y_BALANCED, 0.4, "pair", random_state=0)
    flipped = noisy.is_noisy
    np.testing.assert_array_equal(noisy.labels[flipped], (Y_BALANCED[flipped] + 1) % K)
    # the last class wraps round to 0
    assert np.any(noisy.labels[Y_BALANCED == K - 1] == 0)


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
@pytest.mark.parametrize("excluded", [(0,), (2, 4), 3], ids=["one", "two", "scalar"])
def test_excluded_classes_untouched_and_never_receive_flips(kind, excluded):
    noisy = inject_label_noise(Y_BALANCED, 0.6, kind, exclude_classes=excluded, random_state=0)
    excl = np.atleast_1d(excluded)
    in_excl = np.isin(Y_BALANCED, excl)
    np.testing.assert_array_equal(noisy.labels[in_excl], Y_BALANCED[in_excl])
    assert not np.any(np.isin(noisy.labels[~in_excl], excl))
    np.testing.assert_array_equal(noisy.noise_rates[excl], 0.0)
    free = np.setdiff1d(np.arange(K), excl)
    assert np.all(noisy.noise_rates[free] > 0.5)
    # overall rate counts the untouched classes too
    assert noisy.noise_rate == pytest.approx(noisy.is_noisy.mean())
    assert noisy.noise_rate < 0.6


def test_pair_noise_skips_excluded_class():
    noisy = inject_label_noise(Y_BALANCED, 0.5, "pair", exclude_classes=[2], random_state=0)
    flipped_from_1 = noisy.labels[(Y_BALANCED == 1) & noisy.is_noisy]
    assert flipped_from_1.size > 0
    assert np.all(flipped_from_1 == 3)


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
def test_same_seed_same_labels_different_seed_different_labels(kind):
    a = inject_label_noise(Y_BALANCED, 0.4, kind, random_state=7)
    b = inject_label_noise(Y_BALANCED, 0.4, kind, random_state=7)
    c = inject_label_noise(Y_BALANCED, 0.4, kind, random_state=8)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def test_random_state_instance_is_accepted_and_advanced():
    rng = np.random.RandomState(0)
    first = inject_label_noise(Y_BALANCED, 0.4, random_state=rng).labels
    second = inject_label_noise(Y_BALANCED, 0.4, random_state=rng).labels
    assert not np.array_equal(first, second)


def test_global_numpy_rng_is_not_touched():
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy global RNG is the subject
    inject_label_noise(Y_BALANCED, 0.4, random_state=0)
    make_long_tailed(np.zeros(Y_BALANCED.size), Y_BALANCED, 10, random_state=0)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_transition_matrix_rates_and_destinations():
    T = np.array(
        [
            [0.7, 0.3, 0.0],
            [0.0, 1.0, 0.0],
            [0.1, 0.1, 0.8],
        ]
    )
    y = np.repeat(np.arange(3), 3000)
    noisy = inject_label_noise(y, None, transition=T, random_state=0)
    assert noisy.kind == "transition"
    np.testing.assert_allclose(noisy.transition, T)
    for cls in range(3):
        target = 1 - T[cls, cls]
        assert abs(noisy.noise_rates[cls] - target) <= binomial_bound(3000, target) + 1e-12
    # zero entries are never drawn
    assert not np.any(noisy.labels[y == 0] == 2)
    assert np.all(noisy.labels[y == 1] == 1)
    from_2 = noisy.labels[(y == 2) & noisy.is_noisy]
    assert abs(np.mean(from_2 == 0) - 0.5) < 0.1


def test_transition_with_kind_transition_and_numeric_rate_ignored():
    T = np.full((3, 3), 1 / 3)
    y = np.repeat(np.arange(3), 100)
    a = inject_label_noise(y, 0.1, kind="transition", transition=T, random_state=0)
    b = inject_label_noise(y, None, transition=T, random_state=0)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_symmetric_transition_matrix_is_reported():
    noisy = inject_label_noise(Y_BALANCED, 0.4, exclude_classes=[0], random_state=0)
    T = noisy.transition
    np.testing.assert_allclose(T.sum(axis=1), 1.0)
    np.testing.assert_array_equal(T[0], np.eye(K)[0])
    assert T[1, 1] == pytest.approx(0.6) and T[1, 2] == pytest.approx(0.4 / 3) and T[1, 0] == 0


def test_exact_mode_hits_the_rate_up_to_rounding():
    y = np.repeat(np.arange(4), [100, 50, 25, 7])
    noisy = inject_label_noise(y, 0.4, exact=True, random_state=0)
    flipped = np.bincount(y, weights=noisy.is_noisy, minlength=4)
    np.testing.assert_array_equal(flipped, [40, 20, 10, 3])
    assert not np.any(noisy.labels[noisy.is_noisy] == y[noisy.is_noisy])


def test_noise_rates_nan_for_empty_class_and_n_classes_lets_flips_reach_it():
    y = np.repeat([0, 1], 500)  # class 2 absent
    noisy = inject_label_noise(y, 0.5, n_classes=3, random_state=0)
    assert noisy.noise_rates.shape == (3,)
    assert np.isnan(noisy.noise_rates[2])
    assert np.any(noisy.labels == 2)
    assert noisy.n_classes == 3


def test_column_vector_labels_are_flattened():
    y = Y_BALANCED[:, None]
    noisy = inject_label_noise(y, 0.2, random_state=0)
    assert noisy.labels.shape == (Y_BALANCED.size,)


def test_zero_rate_is_identity():
    noisy = inject_label_noise(Y_BALANCED, 0.0, random_state=0)
    np.testing.assert_array_equal(noisy.labels, Y_BALANCED)
    assert noisy.noise_rate == 0.0


# --------------------------------------------------------------------------------------------------
# inject_label_noise: invalid input
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise_rate": 1.0}, r"noise_rate must be in \[0, 1\) \(got 1.0\)"),
        ({"noise_rate": -0.1}, r"noise_rate must be in \[0, 1\)"),
        ({"noise_rate": float("nan")}, r"noise_rate"),
        ({"noise_rate": "0.3"}, r"noise_rate must be a number"),
        ({"noise_rate": None}, r"noise_rate must be a number in \[0, 1\) for kind='symmetric'"),
        ({"kind": "asymmetric"}, r"kind must be one of .*'pair'.* \(got 'asymmetric'\)"),
        ({"kind": "transition"}, r"kind='transition' needs a transition matrix"),
        ({"exclude_classes": [7]}, r"exclude_classes contains unknown class 7"),
        ({"exclude_classes": [-1]}, r"exclude_classes contains unknown class -1"),
        ({"exclude_classes": [0.5]}, r"exclude_classes must be integer"),
        ({"exclude_classes": [0, 1, 2, 3]}, r"at least two non-excluded classes"),
        ({"n_classes": 3}, r"y must lie in \[0, 3\)"),
        ({"n_classes": 0}, r"n_classes must be >= 1"),
        ({"exact": "yes"}, r"exact must be True or False"),
    ],
    ids=[
        "rate-one",
        "rate-negative",
        "rate-nan",
        "rate-string",
        "rate-none",
        "kind-unknown",
        "kind-transition-without-matrix",
        "exclude-too-large",
        "exclude-negative",
        "exclude-float",
        "exclude-all-but-one",
        "n-classes-too-small",
        "n-classes-zero",
        "exact-not-bool",
    ],
)
def test_invalid_arguments_raise_naming_the_parameter(kwargs, match):
    args = {"noise_rate": 0.3, **kwargs}
    rate = args.pop("noise_rate")
    with pytest.raises(ValueError, match=match):
        inject_label_noise(Y_BALANCED, rate, **args)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.array([0.0, 1.5, 2.0]), r"y must hold integer class labels \(got 1.5\)"),
        (np.zeros((4, 2), dtype=int), r"y must be a 1-D array .*shape \(4, 2\)"),
        (np.array([0, -1, 2]), r"y must be >= 0"),
        (np.array(["a", "b"]), r"y must hold integer class labels"),
        (np.array([True, False]), r"y must hold integer class labels"),
        (np.array([], dtype=int), r"n_classes must be given when y is empty"),
    ],
    ids=["float-labels", "2d-labels", "negative", "strings", "bools", "empty"],
)
def test_invalid_labels_raise(y, match):
    with pytest.raises(ValueError, match=match):
        inject_label_noise(y, 0.2)


@pytest.mark.parametrize(
    ("transition", "match"),
    [
        (np.full((3, 3), 0.3), r"transition must be row-stochastic.*row 0 sums to 0.9"),
        (np.array([[1.2, -0.2, 0], [0, 1, 0], [0, 0, 1]]), r"transition must be finite and non-negative"),
        (np.eye(4), r"transition must have shape \(3, 3\).*got shape \(4, 4\)"),
        (np.eye(3)[:2], r"transition must have shape \(3, 3\)"),
        ([["a", "b", "c"]] * 3, r"transition must be a numeric"),
        (np.where(np.eye(3) == 1, np.nan, 0.0), r"transition must be finite"),
    ],
    ids=["rows-sum-0.9", "negative-entry", "wrong-size", "not-square", "strings", "nan"],
)
def test_invalid_transition_raises(transition, match):
    y = np.repeat(np.arange(3), 10)
    with pytest.raises(ValueError, match=match):
        inject_label_noise(y, None, transition=transition)


def test_transition_row_sum_tolerance_is_1e_6():
    y = np.repeat(np.arange(2), 10)
    inject_label_noise(y, None, transition=[[1 - 5e-7, 0.0], [0.0, 1.0]], random_state=0)
    with pytest.raises(ValueError, match="transition must be row-stochastic"):
        inject_label_noise(y, None, transition=[[1 - 5e-6, 0.0], [0.0, 1.0]])


def test_transition_contradicting_exclusion_raises():
    y = np.repeat(np.arange(3), 10)
    T = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match=r"transition contradicts exclude_classes: excluded class 1"):
        inject_label_noise(y, None, transition=T, exclude_classes=[1])
    ok = inject_label_noise(y, None, transition=T, exclude_classes=[2], random_state=0)
    assert np.all(ok.labels[y == 2] == 2)


def test_pair_with_transition_is_a_conflict():
    with pytest.raises(ValueError, match=r"kind='pair' conflicts with transition"):
        inject_label_noise(np.arange(3), None, "pair", transition=np.eye(3))


# --------------------------------------------------------------------------------------------------
# make_long_tailed
# --------------------------------------------------------------------------------------------------


def _balanced(n_per_class: int = 200, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    y = np.tile(np.arange(k), n_per_class)  # interleaved, like load_digits
    X = np.arange(y.size * 2, dtype=np.float32).reshape(y.size, 2)
    return X, y


@pytest.mark.parametrize("ratio", [1.0, 5.0, 10.0, 100.0], ids=lambda r: f"ratio{r:g}")
def test_counts_follow_the_exponential_profile(ratio):
    X, y = _balanced()
    X_sub, y_sub, idx = make_long_tailed(X, y, ratio, random_state=0)
    expected = [max(1, int(np.floor(200 * ratio ** (-r / 4) + 0.5))) for r in range(5)]
    np.testing.assert_array_equal(np.bincount(y_sub, minlength=5), expected)
    assert np.bincount(y_sub)[0] / np.bincount(y_sub)[-1] == pytest.approx(ratio, rel=0.05)
    np.testing.assert_array_equal(X_sub, X[idx])
    np.testing.assert_array_equal(y_sub, y[idx])
    assert np.all(np.diff(idx) > 0)  # sorted, unique: original order kept
    assert idx.dtype == np.int64 and y_sub.dtype == np.int64


def test_head_class_smaller_than_n_max_is_capped():
    y = np.repeat(np.arange(3), [80, 100, 100])  # largest class (100) is not class 0
    _, y_sub, _ = make_long_tailed(np.zeros(y.size), y, 4.0, random_state=0)
    np.testing.assert_array_equal(np.bincount(y_sub), [80, 50, 25])


def test_class_order_puts_the_tail_where_asked():
    X, y = _balanced()
    _, y_sub, _ = make_long_tailed(X, y, 10, class_order=[4, 3, 2, 1, 0], random_state=0)
    np.testing.assert_array_equal(np.bincount(y_sub), [20, 36, 63, 112, 200])


@pytest.mark.parametrize(
    "counts",
    [{0: 5, 3: 17}, [5, 200, 200, 17, 200], np.array([5, 200, 200, 17, 200])],
    ids=["dict", "list", "array"],
)
def test_explicit_class_counts(counts):
    X, y = _balanced()
    _, y_sub, _ = make_long_tailed(X, y, class_counts=counts, random_state=0)
    np.testing.assert_array_equal(np.bincount(y_sub, minlength=5), [5, 200, 200, 17, 200])


def test_zero_count_drops_a_class():
    X, y = _balanced()
    _, y_sub, _ = make_long_tailed(X, y, class_counts={2: 0}, random_state=0)
    assert 2 not in y_sub and y_sub.size == 800


def test_make_long_tailed_is_deterministic_for_a_seed():
    X, y = _balanced()
    a = make_long_tailed(X, y, 10, random_state=3)[2]
    b = make_long_tailed(X, y, 10, random_state=3)[2]
    c = make_long_tailed(X, y, 10, random_state=4)[2]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=2, max_size=6),
    ratio=st.floats(1.0, 50.0),
    seed=st.integers(0, 1000),
)
def test_long_tailed_subset_properties(sizes, ratio, seed):
    y = np.repeat(np.arange(len(sizes)), sizes)
    X_sub, y_sub, idx = make_long_tailed(y.astype(float), y, ratio, random_state=seed)
    counts = np.bincount(y_sub, minlength=len(sizes))
    assert np.all(counts >= 1) and np.all(counts <= sizes)
    assert len(np.unique(idx)) == idx.size
    np.testing.assert_array_equal(X_sub, y[idx])
    targets = [max(1, round(max(sizes) * ratio ** (-r / (len(sizes) - 1)))) for r in range(len(sizes))]
    np.testing.assert_allclose(counts, np.minimum(targets, sizes), atol=1)  # atol: round-half rule


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"imbalance_ratio": 0.5}, r"imbalance_ratio must be a finite number >= 1 \(got 0.5\)"),
        ({"imbalance_ratio": float("inf")}, r"imbalance_ratio must be a finite number >= 1"),
        ({"imbalance_ratio": "10"}, r"imbalance_ratio must be a number >= 1"),
        ({"class_counts": {0: 201}}, r"class_counts\[0\] must be <= the 200 samples available"),
        ({"class_counts": {0: -1}}, r"class_counts\[0\] must be >= 0"),
        ({"class_counts": {9: 1}}, r"class_counts names class 9, which is not present"),
        ({"class_counts": [1, 2]}, r"class_counts must have one entry per class 0..4"),
        ({"class_counts": {0: 2.5}}, r"class_counts\[0\] must be an integer"),
        ({"class_order": [0, 1, 2]}, r"class_order must list every class present"),
        ({"class_order": [0, 0, 1, 2, 3]}, r"class_order must list every class present"),
    ],
    ids=[
        "ratio-below-one",
        "ratio-inf",
        "ratio-string",
        "count-too-large",
        "count-negative",
        "count-unknown-class",
        "counts-wrong-length",
        "count-float",
        "order-incomplete",
        "order-duplicate",
    ],
)
def test_make_long_tailed_invalid_input(kwargs, match):
    X, y = _balanced()
    with pytest.raises(ValueError, match=match):
        make_long_tailed(X, y, **kwargs)


def test_make_long_tailed_length_mismatch_and_bad_labels():
    with pytest.raises(ValueError, match="X and y must have the same length"):
        make_long_tailed(np.zeros(3), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"y must be a 1-D array"):
        make_long_tailed(np.zeros(3), np.zeros((3, 2), dtype=int))


def test_noise_module_does_not_import_torch():
    code = "import sys, modal_noisy.noise; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
