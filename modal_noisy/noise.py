"""Seeded generators of class imbalance and label noise, for experiments with a known ground truth.

Two functions, numpy only (this module never imports torch):

- :func:`make_long_tailed` subsamples a data set to an exponential (long-tailed) class profile, the
  usual way CIFAR-LT / digits-LT benchmarks are made;
- :func:`inject_label_noise` corrupts labels with symmetric, pair (class ``c`` -> ``c + 1``) or
  class-dependent (transition matrix) noise, optionally leaving some classes untouched (the
  "uncorrupted classes" of Khanal et al., MICCAI 2024), and returns a :class:`NoisyLabels` record with
  the noisy labels, the noise mask and the realised noise rates.

Both take ``random_state`` (``None``, an int or a :class:`numpy.random.RandomState`), resolved with
:func:`sklearn.utils.check_random_state`; the global numpy generator is never seeded.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from modal_noisy._validation import (
    _short,
    check_bool,
    check_choice,
    check_fraction,
    check_labels,
    check_positive_int,
    check_same_length,
)

__all__ = ["NoisyLabels", "inject_label_noise", "make_long_tailed"]

NOISE_KINDS = ("symmetric", "pair", "transition")
_ROW_SUM_TOL = 1e-6


# --------------------------------------------------------------------------------------------------
# class imbalance
# --------------------------------------------------------------------------------------------------


def make_long_tailed(
    X: object,
    y: object,
    imbalance_ratio: float = 10.0,
    *,
    class_counts: Mapping[int, int] | Sequence[int] | None = None,
    class_order: Sequence[int] | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subsample ``(X, y)`` to a long-tailed (exponentially decaying) class distribution.

    With the default profile the class of rank ``r`` (0 = head) keeps

    ``n_r = round(n_max * imbalance_ratio ** (-r / (K - 1)))``

    samples (at least 1), where ``n_max`` is the size of the largest class in ``y`` and ``K`` the
    number of classes present in ``y``. A class that has fewer samples than its target keeps all of
    them, so the head class keeps ``min(n_max, its size)``. Which samples are kept is drawn at random,
    without replacement, within each class.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Samples; indexed along the first axis (converted with :func:`numpy.asarray`).
    y : array-like of shape (n_samples,)
        Integer class labels (a column vector ``(n, 1)`` is flattened).
    imbalance_ratio : float, default=10.0
        Size of the head class over the size of the tail class, ``>= 1`` (1 keeps every class whole).
        Ignored when ``class_counts`` is given.
    class_counts : mapping or sequence of int, optional
        Explicit number of samples to keep per class instead of the exponential profile: a mapping
        ``{class: count}`` (classes not listed are kept whole) or a sequence whose entry ``c`` is the
        count of class ``c`` (one entry per class ``0 .. max(y)``). A count may be 0 (drops the class)
        and may not exceed the samples available.
    class_order : sequence of int, optional
        Classes from head (keeps most) to tail (keeps fewest); must list every class present in ``y``
        once. By default classes are ranked by class index: the smallest label is the head, the largest
        the tail.
    random_state : int, RandomState instance or None, default=None
        Seed for choosing which samples each class keeps.

    Returns
    -------
    X_sub : ndarray of shape (n_kept, ...)
        The kept samples, in their original order.
    y_sub : ndarray of shape (n_kept,), int64
        Their labels.
    indices : ndarray of shape (n_kept,), int64
        Sorted positions of the kept samples in ``X`` / ``y``.

    Raises
    ------
    ValueError
        If ``imbalance_ratio < 1``, a count is negative or exceeds the available samples, ``class_order``
        is not a permutation of the classes present, or ``X`` and ``y`` differ in length.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.repeat(np.arange(3), 100)
    >>> _, y_lt, idx = make_long_tailed(np.zeros((300, 2)), y, imbalance_ratio=10, random_state=0)
    >>> np.bincount(y_lt).tolist()
    [100, 32, 10]
    """
    y_arr = check_labels(y, "y")
    X_arr = np.asarray(X)
    if X_arr.ndim == 0:
        raise ValueError(f"X must be an array of samples (got a scalar {_short(X)})")
    check_same_length(X_arr, y_arr, "X", "y")
    if y_arr.size == 0:
        raise ValueError("y must contain at least one label (got an empty array)")
    rng = check_random_state(random_state)

    available = np.bincount(y_arr)
    present = np.flatnonzero(available)
    if class_counts is not None:
        targets = _explicit_counts(class_counts, available)
    else:
        ratio = _check_ratio(imbalance_ratio)
        order = _check_order(class_order, present)
        targets = available.copy()
        n_max = int(available.max())
        k = len(order)
        for rank, cls in enumerate(order):
            exponent = -rank / (k - 1) if k > 1 else 0.0
            wanted = max(1, int(np.floor(n_max * ratio**exponent + 0.5)))
            targets[cls] = min(wanted, int(available[cls]))

    keep: list[np.ndarray] = []
    for cls in present:
        members = np.flatnonzero(y_arr == cls)
        if targets[cls] < members.size:
            members = rng.choice(members, size=int(targets[cls]), replace=False)
        keep.append(members)
    indices = np.sort(np.concatenate(keep)).astype(np.int64, copy=False)
    return X_arr[indices], y_arr[indices], indices


def _check_ratio(imbalance_ratio: object) -> float:
    if isinstance(imbalance_ratio, bool) or not isinstance(imbalance_ratio, numbers.Real):
        raise ValueError(f"imbalance_ratio must be a number >= 1 (got {_short(imbalance_ratio)})")
    ratio = float(imbalance_ratio)
    if not np.isfinite(ratio) or ratio < 1:
        raise ValueError(f"imbalance_ratio must be a finite number >= 1 (got {_short(imbalance_ratio)})")
    return ratio


def _check_order(class_order: Sequence[int] | None, present: np.ndarray) -> np.ndarray:
    if class_order is None:
        return present
    order = check_labels(class_order, "class_order")
    if order.size != present.size or not np.array_equal(np.sort(order), present):
        raise ValueError(
            "class_order must list every class present in y exactly once "
            f"(expected a permutation of {present.tolist()}, got {order.tolist()})"
        )
    return order


def _explicit_counts(class_counts: Mapping[int, int] | Sequence[int], available: np.ndarray) -> np.ndarray:
    """Per-class target counts from a mapping or a sequence, checked against what is available."""
    n_classes = available.size
    targets = available.copy()
    if isinstance(class_counts, Mapping):
        items = list(class_counts.items())
    else:
        counts = list(np.asarray(class_counts).ravel()) if not isinstance(class_counts, str) else None
        if counts is None or len(counts) != n_classes:
            got = "a string" if counts is None else f"{len(counts)} entries"
            raise ValueError(
                f"class_counts must have one entry per class 0..{n_classes - 1} "
                f"({n_classes} entries; got {got})"
            )
        items = list(enumerate(counts))
    for cls, count in items:
        if isinstance(cls, (bool, np.bool_)) or not isinstance(cls, numbers.Integral):
            raise ValueError(f"class_counts has a non-integer class {_short(cls)}")
        if 0 <= int(cls) < n_classes and available[int(cls)] == 0 and count == 0:
            continue  # an absent class asked to keep nothing: consistent, nothing to do
        if not 0 <= int(cls) < n_classes or available[int(cls)] == 0:
            raise ValueError(
                f"class_counts names class {int(cls)}, which is not present in y "
                f"(classes present: {np.flatnonzero(available).tolist()})"
            )
        number = check_positive_int(count, f"class_counts[{int(cls)}]", minimum=0)
        if number > available[int(cls)]:
            raise ValueError(
                f"class_counts[{int(cls)}] must be <= the {int(available[int(cls)])} samples "
                f"available for class {int(cls)} (got {number})"
            )
        targets[int(cls)] = number
    return targets


# --------------------------------------------------------------------------------------------------
# label noise
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Result of :func:`inject_label_noise`.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,), int64
        The noisy labels.
    is_noisy : ndarray of shape (n_samples,), bool
        ``labels != y``: which samples were flipped.
    noise_rates : ndarray of shape (n_classes,), float64
        Realised noise rate per *true* class (fraction of that class flipped); NaN for a class with no
        samples.
    noise_rate : float
        Realised overall noise rate, ``is_noisy.mean()`` (NaN for an empty ``y``).
    transition : ndarray of shape (n_classes, n_classes), float64
        The row-stochastic matrix the labels were drawn from, ``transition[i, j] = P(noisy = j | true = i)``.
    kind : str
        ``"symmetric"``, ``"pair"`` or ``"transition"``.

    Notes
    -----
    The dataclass is frozen (its fields cannot be re-bound) but the arrays are ordinary writable numpy
    arrays; copy ``labels`` before relabelling in place if the original noisy labels are still needed.
    """

    labels: np.ndarray
    is_noisy: np.ndarray
    noise_rates: np.ndarray
    noise_rate: float
    transition: np.ndarray
    kind: str

    @property
    def n_classes(self) -> int:
        """Number of classes ``K`` of the transition matrix."""
        return int(self.transition.shape[0])


def inject_label_noise(
    y: object,
    noise_rate: float | None,
    kind: str = "symmetric",
    *,
    n_classes: int | None = None,
    exclude_classes: int | Sequence[int] = (),
    transition: object = None,
    exact: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> NoisyLabels:
    """Corrupt integer labels with synthetic label noise.

    Each sample of true class ``i`` receives the noisy label ``j`` with probability ``T[i, j]``, drawn
    independently per sample, where the matrix ``T`` depends on ``kind``:

    - ``"symmetric"``: stay with probability ``1 - noise_rate``; otherwise flip to one of the *other*
      non-excluded classes, chosen uniformly (so a flipped label never equals the true one; this is
      the "other class" convention, not the ``noise_rate / K`` on the diagonal one);
    - ``"pair"``: flip with probability ``noise_rate`` to the next class, ``c -> c + 1 (mod K)``,
      skipping excluded classes (the next non-excluded class in cyclic order);
    - ``"transition"``: ``T = transition`` as given (class-dependent noise). Giving ``transition``
      selects this kind whatever ``kind`` is left at (its default ``"symmetric"`` or ``"transition"``);
      ``noise_rate`` is then not used and may be ``None``.

    Classes in ``exclude_classes`` are never flipped and never receive a flipped label. ``noise_rate``
    is the flip probability *within each non-excluded class*, so with exclusions the overall rate is
    lower than ``noise_rate``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True integer labels in ``[0, n_classes)``; a column vector ``(n, 1)`` is flattened.
    noise_rate : float in [0, 1), or None
        Probability that a sample of a non-excluded class is flipped (``symmetric`` / ``pair``).
        Not used (may be ``None``) when ``transition`` is given.
    kind : {"symmetric", "pair", "transition"}, default="symmetric"
        Noise model, see above.
    n_classes : int, optional
        Number of classes ``K``; defaults to ``max(y) + 1``. Give it when the rarest classes may be
        absent from ``y``, so flips can reach them.
    exclude_classes : int or sequence of int, default=()
        Uncorrupted classes: they keep their labels and no other class is flipped into them.
    transition : array-like of shape (K, K), optional
        Row-stochastic matrix (non-negative, rows sum to 1 within 1e-6) with
        ``transition[i, j] = P(noisy = j | true = i)``. Must agree with ``exclude_classes``: an excluded
        class has ``transition[c, c] == 1`` and a zero column off the diagonal.
    exact : bool, default=False
        If True, flip exactly ``round(n_i * (1 - T[i, i]))`` samples of each class ``i`` (chosen at
        random; their noisy labels drawn from the off-diagonal part of row ``i``) instead of flipping
        each sample independently. Realised per-class rates then match the target up to rounding.
    random_state : int, RandomState instance or None, default=None
        Seed; the same seed and inputs give the same noisy labels.

    Returns
    -------
    NoisyLabels
        ``labels``, ``is_noisy``, realised ``noise_rates`` per class and overall ``noise_rate``, and the
        ``transition`` matrix used.

    Raises
    ------
    ValueError
        If ``noise_rate`` is outside [0, 1), ``kind`` is unknown, ``y`` is not a 1-D array of
        non-negative integers, ``exclude_classes`` names an unknown class, ``transition`` is not a
        row-stochastic ``(K, K)`` matrix (or contradicts ``exclude_classes``), or noise is requested but
        fewer than two classes are left to flip between.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.repeat(np.arange(4), 250)
    >>> noisy = inject_label_noise(y, 0.4, random_state=0)
    >>> bool(np.all(noisy.labels[noisy.is_noisy] != y[noisy.is_noisy]))
    True
    >>> round(noisy.noise_rate, 1)
    0.4
    """
    kind = check_choice(kind, "kind", NOISE_KINDS)
    y_arr = check_labels(y, "y")
    if n_classes is None:
        if y_arr.size == 0:
            raise ValueError("n_classes must be given when y is empty")
        k = int(y_arr.max()) + 1
    else:
        k = check_positive_int(n_classes, "n_classes")
        y_arr = check_labels(y_arr, "y", n_classes=k)
    excluded = _check_excluded(exclude_classes, k)
    rng = check_random_state(random_state)
    check_bool(exact, "exact")

    if transition is not None:
        if kind == "pair":
            raise ValueError(
                "kind='pair' conflicts with transition: give kind='transition' (or leave the default) "
                "when passing a transition matrix"
            )
        if noise_rate is not None:
            check_fraction(noise_rate, "noise_rate", high=1.0, high_inclusive=False)
        kind = "transition"
        matrix = _check_transition(transition, k, excluded)
    elif kind == "transition":
        raise ValueError("kind='transition' needs a transition matrix (got transition=None)")
    else:
        if noise_rate is None:
            raise ValueError(f"noise_rate must be a number in [0, 1) for kind={kind!r} (got None)")
        rate = check_fraction(noise_rate, "noise_rate", high=1.0, high_inclusive=False)
        matrix = _structured_transition(kind, rate, k, excluded)

    if exact:
        labels = _sample_exact(y_arr, matrix, rng)
    else:
        labels = _sample_rows(y_arr, matrix, rng)
    is_noisy = labels != y_arr
    return NoisyLabels(
        labels=labels,
        is_noisy=is_noisy,
        noise_rates=_per_class_rates(y_arr, is_noisy, k),
        noise_rate=float(is_noisy.mean()) if is_noisy.size else float("nan"),
        transition=matrix,
        kind=kind,
    )


def _check_excluded(exclude_classes: int | Sequence[int], n_classes: int) -> np.ndarray:
    raw = np.atleast_1d(np.asarray(exclude_classes))
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
        raise ValueError(f"exclude_classes must be integer class labels (got {_short(exclude_classes)})")
    unknown = raw[(raw < 0) | (raw >= n_classes)]
    if unknown.size:
        raise ValueError(
            f"exclude_classes contains unknown class {int(unknown[0])} "
            f"(classes are 0..{n_classes - 1} for n_classes={n_classes})"
        )
    return np.unique(raw).astype(np.int64)


def _structured_transition(kind: str, rate: float, k: int, excluded: np.ndarray) -> np.ndarray:
    """The transition matrix of symmetric or pair noise over the non-excluded classes."""
    matrix = np.eye(k)
    free = np.setdiff1d(np.arange(k), excluded)
    if rate == 0.0:
        return matrix
    if free.size < 2:
        raise ValueError(
            f"noise_rate={rate:g} needs at least two non-excluded classes to flip between "
            f"(n_classes={k}, exclude_classes={excluded.tolist()})"
        )
    for pos, cls in enumerate(free):
        matrix[cls, cls] = 1.0 - rate
        if kind == "symmetric":
            others = free[free != cls]
            matrix[cls, others] = rate / others.size
        else:  # pair: the next non-excluded class, cyclically
            matrix[cls, free[(pos + 1) % free.size]] = rate
    return matrix


def _check_transition(transition: object, k: int, excluded: np.ndarray) -> np.ndarray:
    try:
        matrix = np.array(transition, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"transition must be a numeric (K, K) matrix (got {_short(transition)})") from err
    if matrix.shape != (k, k):
        raise ValueError(
            f"transition must have shape ({k}, {k}) for n_classes={k} (got shape {matrix.shape})"
        )
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError("transition must be finite and non-negative (got a negative or non-finite entry)")
    row_sums = matrix.sum(axis=1)
    bad = np.flatnonzero(np.abs(row_sums - 1.0) > _ROW_SUM_TOL)
    if bad.size:
        raise ValueError(
            f"transition must be row-stochastic: every row must sum to 1 within {_ROW_SUM_TOL:g} "
            f"(row {int(bad[0])} sums to {row_sums[bad[0]]:.6g})"
        )
    matrix /= row_sums[:, None]  # remove the tolerated rounding so sampling is exact
    for cls in excluded:
        off_col = np.delete(matrix[:, cls], cls)
        if matrix[cls, cls] != 1.0 or np.any(off_col > 0):
            raise ValueError(
                f"transition contradicts exclude_classes: excluded class {int(cls)} must have "
                f"transition[{int(cls)}, {int(cls)}] == 1 and receive no flips "
                f"(got row {np.round(matrix[cls], 4).tolist()})"
            )
    return matrix


def _sample_rows(y: np.ndarray, matrix: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Draw one label per sample from row ``y[i]`` of ``matrix`` (inverse-CDF, vectorised)."""
    if y.size == 0:
        return y.copy()
    cdf = np.cumsum(matrix, axis=1)
    # Pin each row's CDF to exactly 1 from its last non-zero entry on, so float round-off can never
    # select a trailing zero-probability class (or run past the last class).
    last = matrix.shape[1] - 1 - np.argmax(matrix[:, ::-1] > 0, axis=1)
    cdf[np.arange(matrix.shape[1])[None, :] >= last[:, None]] = 1.0
    u = rng.random_sample(y.size)
    return np.sum(cdf[y] <= u[:, None], axis=1).astype(np.int64)


def _sample_exact(y: np.ndarray, matrix: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Flip exactly ``round(n_i * (1 - T[i, i]))`` samples of each class ``i``."""
    labels = y.copy()
    for cls in np.unique(y):
        flip_prob = 1.0 - matrix[cls, cls]
        members = np.flatnonzero(y == cls)
        n_flip = int(np.floor(members.size * flip_prob + 0.5))
        if n_flip == 0:
            continue
        chosen = rng.choice(members, size=n_flip, replace=False)
        dest_p = matrix[cls].copy()
        dest_p[cls] = 0.0
        dest_p /= dest_p.sum()
        labels[chosen] = rng.choice(matrix.shape[1], size=n_flip, p=dest_p)
    return labels


def _per_class_rates(y: np.ndarray, is_noisy: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(y, minlength=k).astype(np.float64)
    flipped = np.bincount(y, weights=is_noisy.astype(np.float64), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = flipped / counts
    rates[counts == 0] = np.nan
    return rates
