"""modal_noisy.scoring: scorers against hand-computed values, top-k, and k-centre against brute force."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from modal_noisy import scoring

P = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1.0, 0.0, 0.0]])
Y = np.array([0, 2, 1])


# --------------------------------------------------------------------------------------------------
# scorers: hand-computed values
# --------------------------------------------------------------------------------------------------


def test_loss_scores_hand_values():
    # -log 0.5, -log 0.1, and a zero probability clipped at 1e-12
    expected = [np.log(2), np.log(10), -np.log(1e-12)]
    np.testing.assert_allclose(scoring.loss_scores(P, Y), expected, rtol=1e-12)


def test_entropy_scores_hand_values():
    expected = [
        1.5 * np.log(2),  # -(0.5 ln 0.5 + 2 * 0.25 ln 0.25)
        -(2 * 0.1 * np.log(0.1) + 0.8 * np.log(0.8)),
        0.0,  # 0 log 0 = 0
    ]
    np.testing.assert_allclose(scoring.entropy_scores(P), expected, rtol=1e-12)


def test_uncertain_mislabel_scores_hand_values_and_order():
    labels = [0, 2, 1]
    expected = [
        0.5 * 1.5 * np.log(2),  # p[label] = 0.5: a coin flip on a maximally unsure prediction
        0.9 * -(2 * 0.1 * np.log(0.1) + 0.8 * np.log(0.8)),
        0.0,  # certain: nothing to learn, whatever the label
    ]
    scores = scoring.uncertain_mislabel_scores(P, labels)
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    # confidently another class ranks below an unsure prediction whose label is also likely wrong
    confident_other, unsure = scoring.uncertain_mislabel_scores([[0.02, 0.98], [0.45, 0.55]], [0, 0])
    assert unsure > confident_other > 0


def test_margin_and_least_confidence_hand_values():
    np.testing.assert_allclose(scoring.margin_scores(P), [0.25, 0.7, 1.0])
    np.testing.assert_allclose(scoring.least_confidence_scores(P), [0.5, 0.2, 0.0])


def test_margin_counts_a_tie_for_first_twice():
    np.testing.assert_allclose(scoring.margin_scores([[0.5, 0.0, 0.5], [0.2, 0.4, 0.4]]), [0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vectorised_scorers_match_textbook_formulas(dtype):
    from scipy.special import entr
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(7, 0.3), size=2000).astype(dtype)
    p[:5, 1:] = 0  # exact zeros and ones
    p[:5, 0] = 1
    p /= p.sum(axis=1, keepdims=True)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(scoring.entropy_scores(p), entr(p.astype(float)).sum(1), **tol)
    top2 = np.sort(p, axis=1)[:, -2:]
    np.testing.assert_allclose(scoring.margin_scores(p), top2[:, 1] - top2[:, 0], **tol)
    np.testing.assert_allclose(scoring.least_confidence_scores(p), 1 - p.max(1), **tol)
    loss = np.round(rng.random(2000), 2)  # many ties
    vog = rng.random(2000)
    expected = 0.3 * (rankdata(loss) - 1) / 1999 + 0.7 * (rankdata(vog) - 1) / 1999
    np.testing.assert_allclose(scoring.vog_noisy_scores(loss, vog, mix_ratio=0.7), expected)


def test_bald_scores_hand_values():
    mc = np.array(
        [
            [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
            [[0.0, 1.0], [0.5, 0.5], [0.9, 0.1]],
        ]
    )
    # sample 0: passes disagree completely -> ln 2; samples 1, 2: passes agree -> 0
    np.testing.assert_allclose(scoring.bald_scores(mc), [np.log(2), 0, 0], atol=1e-12)


def test_bald_scores_partial_disagreement():
    mc = np.array([[[0.8, 0.2]], [[0.4, 0.6]]])
    h = lambda q: -(q * np.log(q) + (1 - q) * np.log(1 - q))  # noqa: E731
    np.testing.assert_allclose(scoring.bald_scores(mc), [h(0.6) - (h(0.8) + h(0.4)) / 2])


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("self_confidence", [0.5, 0.1, 0.0]),
        # (p[label] - max other + 1) / 2
        ("normalized_margin", [(0.5 - 0.25 + 1) / 2, (0.1 - 0.8 + 1) / 2, (0 - 1 + 1) / 2]),
    ],
    ids=["self_confidence", "normalized_margin"],
)
def test_label_quality_scores_hand_values(method, expected):
    np.testing.assert_allclose(
        scoring.label_quality_scores(P, Y, method=method), expected, atol=1e-6
    )


def test_vog_noisy_scores_rank_mix():
    loss, vog = np.array([1.0, 2.0, 3.0]), np.array([30.0, 10.0, 20.0])
    # percentile ranks: loss (0, .5, 1), vog (1, 0, .5)
    np.testing.assert_allclose(scoring.vog_noisy_scores(loss, vog, mix_ratio=0.5), [0.5, 0.25, 0.75])
    np.testing.assert_allclose(scoring.vog_noisy_scores(loss, vog, mix_ratio=0.0), [0, 0.5, 1])
    np.testing.assert_allclose(scoring.vog_noisy_scores(loss, vog, mix_ratio=1.0), [1, 0, 0.5])
    np.testing.assert_allclose(scoring.vog_noisy_scores(loss, vog, mix_ratio=0.2), [0.2, 0.4, 0.9])


def test_vog_noisy_scores_ties_share_a_rank():
    scores = scoring.vog_noisy_scores([1.0, 1.0, 5.0], [0.0, 0.0, 0.0], mix_ratio=0.0)
    np.testing.assert_allclose(scores, [0.25, 0.25, 1.0])


# --------------------------------------------------------------------------------------------------
# scorers: validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred_probs", "match"),
    [
        (np.array([[2.0, -1.0], [0.3, 0.7]]), r"pred_probs must be >= 0"),
        (np.array([[2.0, 1.0], [0.3, 0.7]]), r"row 0 sums to 3.*not logits"),
        (np.array([[np.nan, 1.0], [0.3, 0.7]]), r"NaN"),
        (np.array([0.3, 0.7]), r"2-D array.*got shape \(2,\)"),
        (np.ones((2, 1)), r"at least 2 columns"),
    ],
    ids=["negative", "logits", "nan", "1d", "one-class"],
)
def test_pred_probs_validation(pred_probs, match):
    with pytest.raises(ValueError, match=match):
        scoring.entropy_scores(pred_probs)


def test_labels_validation():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*got label 3"):
        scoring.loss_scores(P, [0, 1, 3])
    with pytest.raises(ValueError, match=r"same length \(got 2 and 3\)"):
        scoring.loss_scores(P, [0, 1])
    with pytest.raises(ValueError, match=r"method must be one of 'self_confidence'"):
        scoring.label_quality_scores(P, Y, method="entropy")


def test_vog_noisy_scores_validation():
    with pytest.raises(ValueError, match=r"mix_ratio must be in \[0, 1\] \(got 1.5\)"):
        scoring.vog_noisy_scores([1.0], [1.0], mix_ratio=1.5)
    with pytest.raises(ValueError, match=r"loss and vog must have the same length \(got 2 and 1\)"):
        scoring.vog_noisy_scores([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"vog must not contain NaN"):
        scoring.vog_noisy_scores([1.0, 2.0], [1.0, np.nan])


def test_bald_scores_validation():
    with pytest.raises(ValueError, match=r"3-D array"):
        scoring.bald_scores(P)
    with pytest.raises(ValueError, match=r"at least 2 passes \(got 1\)"):
        scoring.bald_scores(P[None])


def test_scoring_imports_no_torch():
    code = "import sys, modal_noisy.scoring; print(sorted(m for m in sys.modules if m == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------
# top_k
# --------------------------------------------------------------------------------------------------


def test_top_k_hand_values():
    s = np.array([3.0, 1.0, 2.0, 5.0])
    np.testing.assert_array_equal(scoring.top_k(s, 2), [3, 0])
    np.testing.assert_array_equal(scoring.top_k(s, 3, largest=False), [1, 2, 0])
    np.testing.assert_array_equal(scoring.top_k(s, 4), [3, 0, 2, 1])


def test_top_k_ties_are_seeded_and_fair():
    s = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    draws = [tuple(scoring.top_k(s, 3, random_state=seed)) for seed in range(40)]
    assert all(d[0] == 0 for d in draws)  # the strict best always comes first
    assert {i for d in draws for i in d[1:]} == {1, 2, 3, 4}  # every tied one gets its turn
    assert draws[5] == tuple(scoring.top_k(s, 3, random_state=5))  # same seed, same answer


def test_top_k_many_ties_is_fast_and_distinct():
    s = np.zeros(200_000)
    a = scoring.top_k(s, 1000, random_state=0)
    b = scoring.top_k(s, 1000, random_state=1)
    assert len(np.unique(a)) == 1000
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, scoring.top_k(s, 1000, random_state=0))


def test_top_k_errors():
    with pytest.raises(ValueError, match=r"k must be <= pool size \(got 5, pool has 4\)"):
        scoring.top_k(np.zeros(4), 5)
    with pytest.raises(ValueError, match=r"k must be >= 1 \(got 0\)"):
        scoring.top_k(np.zeros(4), 0)
    with pytest.raises(ValueError, match=r"scores must not contain NaN"):
        scoring.top_k(np.array([1.0, np.nan]), 1)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(-3, 3), min_size=1, max_size=30),
    data=st.data(),
    largest=st.booleans(),
)
def test_top_k_matches_a_full_sort(values, data, largest):
    s = np.asarray(values, dtype=float)
    k = data.draw(st.integers(1, len(s)))
    got = scoring.top_k(s, k, largest=largest, random_state=0)
    assert len(np.unique(got)) == k
    expected = np.sort(s)[::-1][:k] if largest else np.sort(s)[:k]
    np.testing.assert_array_equal(s[got], expected)  # best first, the right values


# --------------------------------------------------------------------------------------------------
# k-centre greedy against brute force
# --------------------------------------------------------------------------------------------------


def _brute_kcenter(X, k, first=None, labelled=None):
    """Reference: a full distance matrix and the textbook greedy loop."""
    D = cdist(X, X)
    if labelled is not None:
        min_d = cdist(X, labelled).min(axis=1)
        chosen = []
    else:
        chosen = [first]
        min_d = D[first].copy()
    while len(chosen) < k:
        masked = min_d.copy()
        masked[chosen] = -1
        c = int(np.argmax(masked))
        chosen.append(c)
        min_d = np.minimum(min_d, D[c])
    return np.array(chosen)


@pytest.mark.parametrize("seed", range(5), ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("with_labelled", [False, True], ids=["pool-only", "with-labelled"])
def test_kcenter_matches_brute_force(seed, with_labelled):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 4))
    labelled = rng.normal(size=(7, 4)) if with_labelled else None
    got = scoring.kcenter_greedy(X, 15, labelled_features=labelled, random_state=seed)
    expected = _brute_kcenter(X, 15, first=None if with_labelled else got[0], labelled=labelled)
    np.testing.assert_array_equal(got, expected)


def test_kcenter_chunking_does_not_change_the_answer():
    rng = np.random.default_rng(0)
    X, L = rng.normal(size=(101, 3)), rng.normal(size=(13, 3))
    a = scoring.kcenter_greedy(X, 20, labelled_features=L, chunk_elements=5)
    b = scoring.kcenter_greedy(X, 20, labelled_features=L)
    np.testing.assert_array_equal(a, b)


def test_kcenter_duplicates_give_distinct_seeded_picks():
    X = np.zeros((30, 2))
    a = scoring.kcenter_greedy(X, 30, random_state=0)
    assert sorted(a) == list(range(30))
    np.testing.assert_array_equal(a, scoring.kcenter_greedy(X, 30, random_state=0))
    assert not np.array_equal(a[:5], scoring.kcenter_greedy(X, 30, random_state=1)[:5])


def test_kcenter_covers_clusters_first():
    # three tight, far-apart clusters: the first three picks hit each cluster once
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [100, 0], [0, 100]])
    X = np.concatenate([c + rng.normal(scale=0.1, size=(20, 2)) for c in centres])
    picks = scoring.kcenter_greedy(X, 3, random_state=0)
    assert sorted(picks // 20) == [0, 1, 2]


def test_kcenter_errors():
    with pytest.raises(ValueError, match=r"n_centers must be <= pool size \(got 4, pool has 3\)"):
        scoring.kcenter_greedy(np.zeros((3, 2)), 4)
    with pytest.raises(ValueError, match=r"labelled_features must have as many features"):
        scoring.kcenter_greedy(np.zeros((3, 2)), 1, labelled_features=np.zeros((2, 3)))
