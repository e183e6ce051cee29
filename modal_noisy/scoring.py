"""Per-sample scores for choosing which labels to re-check, and the selectors that pick from them.

Everything here is numpy in, numpy out (no torch), so scoring a pool of a million samples from
precomputed probabilities never touches a network. Every scorer documents which direction means
"query first":

=================================  ===================================  ===========
scorer                             what it measures                     query first
=================================  ===================================  ===========
:func:`loss_scores`                cross-entropy of the given label     highest
:func:`entropy_scores`             predictive entropy                   highest
:func:`margin_scores`              top-1 minus top-2 probability        lowest
:func:`least_confidence_scores`    1 − top-1 probability                highest
:func:`bald_scores`                mutual information (MC dropout)      highest
:func:`label_quality_scores`       cleanlab label quality               lowest
:func:`vog_noisy_scores`           rank mix of loss and VoG             highest
=================================  ===================================  ===========

Selectors: :func:`top_k` (the k best scores, ties broken by a seeded generator) and
:func:`kcenter_greedy` (greedy k-centre core-set, O(N) memory). Arguments follow one order throughout:
``pred_probs`` first, then ``labels`` (cleanlab puts ``labels`` first; pass by keyword to be safe).
"""

from __future__ import annotations

import numpy as np
from cleanlab.rank import get_label_quality_scores
from sklearn.utils import check_random_state

from modal_noisy._validation import check_choice, check_fraction, check_labels, check_positive_int

__all__ = [
    "LABEL_QUALITY_METHODS",
    "bald_scores",
    "entropy_scores",
    "kcenter_greedy",
    "label_quality_scores",
    "least_confidence_scores",
    "loss_scores",
    "margin_scores",
    "top_k",
    "uncertain_mislabel_scores",
    "vog_noisy_scores",
]

#: Methods of :func:`label_quality_scores` (cleanlab's names).
LABEL_QUALITY_METHODS: tuple[str, ...] = ("self_confidence", "normalized_margin")

# Rows of pred_probs must sum to one within this tolerance (float32 softmax is good to ~1e-6).
_ROW_SUM_ATOL = 1e-3
# Clip probabilities away from 0 so the cross-entropy of a zero probability stays finite.
_LOG_EPS = 1e-12


# --------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------


def _check_pred_probs(pred_probs: object, name: str = "pred_probs") -> np.ndarray:
    """Return ``pred_probs`` as a float array of shape (n, K >= 2) with rows on the simplex."""
    arr = np.asarray(pred_probs)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_classes) "
                         f"(got shape {arr.shape})")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 columns (classes) (got shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.floating):
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
            raise ValueError(f"{name} must be numeric (got dtype {arr.dtype})")
        arr = arr.astype(np.float64)
    if arr.size:
        # one cheap reduction catches NaN/inf (they make the total non-finite); exact check after
        if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
            raise ValueError(f"{name} must not contain NaN or infinity")
        if arr.min() < 0:
            raise ValueError(f"{name} must be >= 0 (got {float(arr.min())!r})")
        sums = _row_sums(arr)
        worst = int(np.argmax(np.abs(sums - 1)))
        if abs(float(sums[worst]) - 1) > _ROW_SUM_ATOL:
            raise ValueError(
                f"each row of {name} must sum to 1 (row {worst} sums to {float(sums[worst]):.6g}); "
                "pass probabilities, not logits"
            )
    return arr


def _row_sums(arr: np.ndarray) -> np.ndarray:
    # einsum is ~3x faster than sum(axis=1) over a short last axis, and needs no BLAS threads
    return np.einsum("ij->i", arr)


def _row_max(arr: np.ndarray) -> np.ndarray:
    # column by column: vectorised over samples instead of a reduction over a short last axis
    out = arr[:, 0].copy()
    for j in range(1, arr.shape[1]):
        np.maximum(out, arr[:, j], out=out)
    return out


def _top2(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest and second-largest value of each row (ties count twice), column by column."""
    first = np.maximum(arr[:, 0], arr[:, 1])
    second = np.minimum(arr[:, 0], arr[:, 1])
    for j in range(2, arr.shape[1]):
        col = arr[:, j]
        np.maximum(second, np.minimum(first, col), out=second)
        np.maximum(first, col, out=first)
    return first, second


def _entropy(p: np.ndarray) -> np.ndarray:
    # p log p with 0 log 0 = 0: clipping at the smallest normal float leaves p * log(p) = 0 there
    log_p = np.maximum(p, np.finfo(p.dtype).tiny)
    np.log(log_p, out=log_p)  # in place: one temporary instead of three
    return -np.einsum("ij,ij->i", p, log_p)


def _check_scores(scores: object, name: str = "scores") -> np.ndarray:
    arr = np.asarray(scores)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (got shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
        raise ValueError(f"{name} must be numeric (got dtype {arr.dtype})")
    if arr.size and not np.isfinite(arr).all():
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must not contain NaN or infinity (got {n_bad} non-finite values)")
    return arr


def _check_labels_for(pred_probs: np.ndarray, labels: object) -> np.ndarray:
    y = check_labels(labels, "labels", n_classes=pred_probs.shape[1])
    if len(y) != len(pred_probs):
        raise ValueError(
            f"labels and pred_probs must have the same length (got {len(y)} and {len(pred_probs)})"
        )
    return y


# --------------------------------------------------------------------------------------------------
# scorers
# --------------------------------------------------------------------------------------------------


def loss_scores(pred_probs: object, labels: object) -> np.ndarray:
    """Cross-entropy of each sample's given label: ``-log pred_probs[i, labels[i]]``.

    **Query first: highest.** A large loss means the model disagrees with the given label, the
    classic small-loss criterion for clean samples turned around.

    Parameters
    ----------
    pred_probs : array-like of shape (n_samples, n_classes)
        Predicted class probabilities (rows sum to 1). Out-of-sample probabilities rank best.
    labels : array-like of shape (n_samples,)
        The given (possibly wrong) integer labels.

    Returns
    -------
    ndarray of shape (n_samples,)
        Losses in ``[0, -log 1e-12]``, in the dtype of ``pred_probs``.
    """
    p = _check_pred_probs(pred_probs)
    y = _check_labels_for(p, labels)
    p_given = p[np.arange(len(y)), y]
    return -np.log(np.maximum(p_given, _LOG_EPS))


def entropy_scores(pred_probs: object) -> np.ndarray:
    """Shannon entropy (nats) of each predicted distribution, ``-sum_k p_k log p_k``.

    **Query first: highest** (the most uncertain prediction). Labels are not used.

    Parameters
    ----------
    pred_probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,)
        Values in ``[0, log n_classes]``.
    """
    p = _check_pred_probs(pred_probs)
    return np.maximum(_entropy(p), 0)


def uncertain_mislabel_scores(pred_probs: object, labels: object) -> np.ndarray:
    """Probability that the given label is wrong times the entropy of the prediction.

    **Query first: highest.** ``(1 - p[label]) * H(p)``. An answer pays twice when the label is
    likely wrong (the expert fixes it) *and* the model is unsure of the sample (the answer teaches
    it something): a sample the model confidently gives another class is most likely mislabelled,
    but fixing it to what the model already predicts changes little, while an uncertain sample whose
    given label is likely right is a wasted answer in label cleaning.

    Parameters
    ----------
    pred_probs : array-like of shape (n_samples, n_classes)
    labels : array-like of shape (n_samples,)
        The given (possibly wrong) integer labels.

    Returns
    -------
    ndarray of shape (n_samples,)
        Values in ``[0, log n_classes]``.
    """
    p = _check_pred_probs(pred_probs)
    y = _check_labels_for(p, labels)
    wrong = np.clip(1.0 - p[np.arange(len(y)), y], 0.0, 1.0)
    return wrong * np.maximum(_entropy(p), 0)


def margin_scores(pred_probs: object) -> np.ndarray:
    """Margin between the two most probable classes, ``p_(1) - p_(2)``.

    **Query first: lowest** (the model can hardly tell its top two classes apart). Labels are not
    used.

    Parameters
    ----------
    pred_probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,)
        Values in ``[0, 1]``.
    """
    p = _check_pred_probs(pred_probs)
    first, second = _top2(p)
    return first - second


def least_confidence_scores(pred_probs: object) -> np.ndarray:
    """One minus the top predicted probability, ``1 - max_k p_k``.

    **Query first: highest.** Labels are not used.

    Parameters
    ----------
    pred_probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,)
        Values in ``[0, 1 - 1/n_classes]``.
    """
    p = _check_pred_probs(pred_probs)
    return 1 - _row_max(p)


def bald_scores(mc_pred_probs: object) -> np.ndarray:
    """BALD mutual information from Monte-Carlo dropout samples (Houlsby et al. 2011; Gal et al. 2017).

    ``I_i = H(mean_t p_t,i) - mean_t H(p_t,i)``: the entropy of the averaged prediction minus the
    average entropy of the individual passes. **Query first: highest** (the passes disagree).

    Parameters
    ----------
    mc_pred_probs : array-like of shape (n_passes, n_samples, n_classes)
        Class probabilities of ``n_passes >= 2`` stochastic forward passes.

    Returns
    -------
    ndarray of shape (n_samples,)
        Non-negative values (round-off below zero is clipped) at most ``log n_classes``.
    """
    mc = np.asarray(mc_pred_probs)
    if mc.ndim != 3:
        raise ValueError(
            "mc_pred_probs must be a 3-D array of shape (n_passes, n_samples, n_classes) "
            f"(got shape {mc.shape})"
        )
    if mc.shape[0] < 2:
        raise ValueError(f"mc_pred_probs must hold at least 2 passes (got {mc.shape[0]})")
    if not np.issubdtype(mc.dtype, np.floating):
        mc = mc.astype(np.float64)
    # one pass at a time: temporaries stay O(n_samples * n_classes) however many passes there are
    mean_probs = np.zeros(mc.shape[1:], dtype=mc.dtype)
    mean_entropy = np.zeros(mc.shape[1], dtype=mc.dtype)
    for t in range(mc.shape[0]):
        p_t = _check_pred_probs(mc[t], f"mc_pred_probs[{t}]")
        mean_probs += p_t
        mean_entropy += _entropy(p_t)
    mean_probs /= mc.shape[0]
    mean_entropy /= mc.shape[0]
    return np.maximum(_entropy(mean_probs) - mean_entropy, 0)


def label_quality_scores(
    pred_probs: object, labels: object, *, method: str = "self_confidence"
) -> np.ndarray:
    """cleanlab's label-quality score of each given label, through ``cleanlab.rank``.

    **Query first: lowest** (0 = the given label is very likely wrong, 1 = very likely right).

    Parameters
    ----------
    pred_probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities; cleanlab recommends out-of-sample ones (cross-validation).
    labels : array-like of shape (n_samples,)
        The given (possibly wrong) integer labels.
    method : {"self_confidence", "normalized_margin"}, default="self_confidence"
        ``"self_confidence"`` is ``p[label]``; ``"normalized_margin"`` is
        ``(p[label] - max_{k != label} p[k] + 1) / 2``. See
        :func:`cleanlab.rank.get_label_quality_scores`.

    Returns
    -------
    ndarray of shape (n_samples,)
        Scores in ``[0, 1]``.
    """
    check_choice(method, "method", LABEL_QUALITY_METHODS)
    p = _check_pred_probs(pred_probs)
    y = _check_labels_for(p, labels)
    if len(y) == 0:
        return np.zeros(0, dtype=p.dtype)
    return np.asarray(get_label_quality_scores(y, p, method=method))


def _percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1] (ties share their mean rank; a single value gets 0.5)."""
    n = len(values)
    if n == 1:
        return np.full(1, 0.5)
    # scipy.stats.rankdata(method="average") - 1, about 3x faster: one argsort, then runs of ties
    order = np.argsort(values)
    ordered = values[order]
    starts_run = np.empty(n, dtype=bool)
    starts_run[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_run[1:])
    starts = np.flatnonzero(starts_run)
    ends = np.append(starts[1:], n)
    ranks = np.empty(n)
    ranks[order] = np.repeat((starts + ends - 1) / 2, ends - starts)
    return ranks / (n - 1)


def vog_noisy_scores(loss: object, vog: object, *, mix_ratio: float = 0.5) -> np.ndarray:
    """"Likely mislabelled" score mixing the ranks of loss and Variance of Gradients (VoG).

    ``score_i = (1 - mix_ratio) * r(loss)_i + mix_ratio * r(vog)_i`` where ``r`` is the average
    rank scaled to ``[0, 1]``. Ranks, not raw values, so the two quantities' very different scales do
    not matter. **Query first: highest** — a large loss (the model disagrees with the given label)
    and a large VoG (the sample's gradient never settled, as for atypical and mislabelled samples,
    Agarwal et al. 2022). This is the mirror image of phase 1's clean selection, which keeps small
    loss and small VoG.

    The direction is empirical: on long-tailed digits with label noise the last-layer VoG of a CNN
    is higher for mislabelled samples (``tests/test_query_enrichment.py`` checks it), but for a
    linear softmax model (fixed features, so VoG only tracks the changing ``p_y``) it is the
    correctly labelled samples, still being learned, that have the higher VoG. Use a network's VoG
    here.

    Parameters
    ----------
    loss : array-like of shape (n_samples,)
        Per-sample loss of the given label, e.g. from :func:`loss_scores`.
    vog : array-like of shape (n_samples,)
        Per-sample VoG, e.g. a fitted ``CoTeachingClassifier.vog_`` restricted to the pool.
    mix_ratio : float in [0, 1], default=0.5
        Weight of the VoG rank; 0 ranks by loss only, 1 by VoG only.

    Returns
    -------
    ndarray of shape (n_samples,)
        Scores in ``[0, 1]``.
    """
    mix = check_fraction(mix_ratio, "mix_ratio")
    loss_arr = _check_scores(loss, "loss")
    vog_arr = _check_scores(vog, "vog")
    if len(loss_arr) != len(vog_arr):
        raise ValueError(
            f"loss and vog must have the same length (got {len(loss_arr)} and {len(vog_arr)})"
        )
    if len(loss_arr) == 0:
        return np.zeros(0)
    if mix == 0:
        return _percentile_ranks(loss_arr)
    if mix == 1:
        return _percentile_ranks(vog_arr)
    return (1 - mix) * _percentile_ranks(loss_arr) + mix * _percentile_ranks(vog_arr)


# --------------------------------------------------------------------------------------------------
# selectors
# --------------------------------------------------------------------------------------------------


def _check_k(k: object, n: int, name: str = "n_instances") -> int:
    k = check_positive_int(k, name)
    if k > n:
        raise ValueError(f"{name} must be <= pool size (got {k}, pool has {n})")
    return k


def top_k(
    scores: object,
    k: int,
    *,
    largest: bool = True,
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray:
    """Positions of the ``k`` best scores, best first; ties broken by a seeded generator.

    Runs in O(n) plus O(k log k): ``argpartition`` finds the cut, only the samples tied *at* the cut
    are sampled at random, and only the ``k`` chosen ones are sorted (random keys order ties among
    them). A million scores take a few milliseconds.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Finite scores.
    k : int
        How many to pick, ``1 <= k <= n``.
    largest : bool, default=True
        ``True`` picks the highest scores, ``False`` the lowest.
    random_state : int, RandomState or None
        Breaks ties (scikit-learn convention).

    Returns
    -------
    ndarray of shape (k,), int64
        Distinct positions into ``scores``.
    """
    s = _check_scores(scores)
    n = len(s)
    k = _check_k(k, n, "k")
    rng = check_random_state(random_state)
    key = -s if largest else s  # smaller key = better
    if k == n:
        chosen = np.arange(n)
    else:
        cut = key[np.argpartition(key, k - 1)[:k]].max()
        better = np.flatnonzero(key < cut)
        tied = np.flatnonzero(key == cut)
        need = k - len(better)
        if need < len(tied):
            tied = np.sort(rng.choice(tied, size=need, replace=False))
        chosen = np.concatenate([better, tied])
    order = np.lexsort((rng.random_sample(len(chosen)), key[chosen]))
    return chosen[order].astype(np.int64, copy=False)


def _as_features(X: object, name: str) -> np.ndarray:
    arr = np.asarray(X)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features) (got shape {arr.shape})")
    arr = arr.reshape(len(arr), -1)
    if not np.issubdtype(arr.dtype, np.floating):
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
            raise ValueError(f"{name} must be numeric (got dtype {arr.dtype})")
        arr = arr.astype(np.float64)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} must not contain NaN or infinity")
    return arr


def _min_sq_dist_to(
    X: np.ndarray, sq_norms: np.ndarray, centres: np.ndarray, chunk_elements: int
) -> np.ndarray:
    """Squared distance from each row of X to its nearest row of ``centres``, in row blocks."""
    out = np.empty(len(X), dtype=X.dtype)
    c_norms = np.einsum("ij,ij->i", centres, centres)
    rows = max(1, chunk_elements // max(1, len(centres)))
    for start in range(0, len(X), rows):
        block = slice(start, start + rows)
        d = sq_norms[block, None] + c_norms[None, :] - 2 * (X[block] @ centres.T)
        out[block] = np.maximum(d.min(axis=1), 0)
    return out


def kcenter_greedy(
    features: object,
    n_centers: int,
    *,
    labelled_features: object | None = None,
    random_state: int | np.random.RandomState | None = None,
    chunk_elements: int = 1 << 22,
) -> np.ndarray:
    """Greedy k-centre core-set (Sener & Savarese 2018): repeatedly take the point farthest from all
    centres chosen so far (and from the labelled points).

    Each pick updates a running minimum distance with one matrix-vector product, so memory is
    O(N) beyond the features themselves and time O(N·D) per pick; no N×N matrix is ever formed.
    Distances to ``labelled_features`` are computed in row blocks of at most ``chunk_elements``
    entries. Euclidean distance via ``|x|² + |c|² − 2 x·c`` in the features' float dtype (float32
    features give float32 round-off, which can reorder near-equal distances).

    The first centre, when nothing is labelled, is drawn at random; exact ties for the farthest
    point (duplicates) are broken at random too. **Order: the pick order**, so the first positions
    cover the pool best.

    Parameters
    ----------
    features : array-like of shape (n_samples, ...)
        Pool features (flattened to 2-D).
    n_centers : int
        How many centres to pick, ``1 <= n_centers <= n_samples``.
    labelled_features : array-like of shape (n_labelled, ...), optional
        Features of already-labelled samples; they act as centres chosen beforehand.
    random_state : int, RandomState or None
        First centre and tie breaking.
    chunk_elements : int, default=2**22
        Bound on the size of the temporary distance blocks.

    Returns
    -------
    ndarray of shape (n_centers,), int64
        Distinct positions into ``features``, in pick order.
    """
    X = _as_features(features, "features")
    n = len(X)
    k = _check_k(n_centers, n, "n_centers")
    chunk_elements = check_positive_int(chunk_elements, "chunk_elements")
    rng = check_random_state(random_state)
    sq_norms = np.einsum("ij,ij->i", X, X)
    chosen = np.empty(k, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    start = 0
    if labelled_features is not None and len(labelled_features) > 0:  # type: ignore[arg-type]
        L = _as_features(labelled_features, "labelled_features").astype(X.dtype, copy=False)
        if L.shape[1] != X.shape[1]:
            raise ValueError(
                "labelled_features must have as many features as features "
                f"(got {L.shape[1]} and {X.shape[1]})"
            )
        min_d = _min_sq_dist_to(X, sq_norms, L, chunk_elements)
    else:
        first = int(rng.randint(n))
        chosen[0], taken[first], start = first, True, 1
        min_d = np.maximum(sq_norms + sq_norms[first] - 2 * (X @ X[first]), 0)
    min_d[taken] = -np.inf
    for i in range(start, k):
        best = min_d.max()
        c = int(np.argmax(min_d))
        if i + 1 < n and min_d[c + 1 :].max(initial=-np.inf) == best:  # exact tie: pick at random
            c = int(rng.choice(np.flatnonzero(min_d == best)))
        chosen[i] = c
        taken[c] = True
        d = sq_norms + sq_norms[c] - 2 * (X @ X[c])
        np.minimum(min_d, d, out=min_d)
        min_d[c] = -np.inf
    return chosen
