"""modAL query strategies: a scorer from :mod:`modal_noisy.scoring` plus a selector.

Every strategy follows one contract (DESIGN.md §2)::

    strategy(classifier, X_pool, n_instances=1, *, labels=None, random_state=None, **kwargs)
        -> ndarray of n_instances distinct int positions into X_pool, most informative first

so it plugs into modAL directly::

    learner = ActiveLearner(estimator=net, query_strategy=loss_noisy_query, X_training=X, y_training=y)
    idx, _ = learner.query(X_pool, n_instances=70, labels=y_pool)

* ``classifier`` — a modAL learner (its ``estimator`` is used) or the estimator itself: a skorch
  net (``CoTeachingClassifier`` included) or any scikit-learn classifier with ``predict_proba``.
* ``labels`` — the pool's current (possibly wrong) labels; loss, VoG and cleanlab strategies need them
  and raise ``ValueError`` without them. The others ignore them.
* Ties are broken by a generator from ``random_state`` (scikit-learn convention), so a fixed seed
  gives the same answer. ``n_instances`` larger than the pool is an error, never a silent truncation.
* Precomputed inputs skip the model: ``pred_probs=`` (probabilities of the pool), ``vog=``,
  ``mc_pred_probs=`` (BALD), ``features=`` (core-set). With one of them ``X_pool`` may be ``None``.
  Every strategy accepts (and ignores) the keywords that only another strategy uses, so one set of
  keywords can be passed to any of them; any other keyword is a ``TypeError``.

Model inference is batched, runs under ``torch.no_grad()`` in eval mode and restores every
submodule's train/eval mode afterwards, even on error (:mod:`modal_noisy._inference`).

:data:`STRATEGIES` maps short names to strategies; :func:`get_strategy` looks one up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from modal_noisy import scoring
from modal_noisy._validation import check_choice, check_labels, check_positive_int

__all__ = [
    "STRATEGIES",
    "bald_query",
    "class_balanced",
    "cleanlab_query",
    "coreset_query",
    "entropy_query",
    "get_strategy",
    "least_confidence_query",
    "loss_noisy_query",
    "margin_query",
    "random_query",
    "vog_noisy_query",
]

RandomState = int | np.random.RandomState | None
Strategy = Callable[..., np.ndarray]

# Keywords some strategy uses; every strategy accepts them so a caller can pass one set to any.
_SHARED_KWARGS = frozenset(
    {
        "pred_probs",
        "vog",
        "pool_indices",
        "mix_ratio",
        "method",
        "mc_pred_probs",
        "n_passes",
        "features",
        "X_labelled",
        "labelled_features",
        "chunk_elements",
    }
)
# Keywords holding one entry per pool sample (class_balanced hands each class its slice).
_PER_SAMPLE_KWARGS = ("labels", "pred_probs", "vog", "pool_indices", "features")


# --------------------------------------------------------------------------------------------------
# shared plumbing
# --------------------------------------------------------------------------------------------------


def _estimator(classifier: object) -> object:
    """The model behind a modAL learner (modAL passes the learner itself), else ``classifier``."""
    from modAL.models.base import BaseLearner

    return classifier.estimator if isinstance(classifier, BaseLearner) else classifier


def _reject_unknown(name: str, kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - _SHARED_KWARGS)
    if unknown:
        raise TypeError(f"{name}() got an unexpected keyword argument {unknown[0]!r}")


def _length(X: object) -> int:
    if isinstance(X, dict):  # skorch accepts a dict of equally long arrays
        if not X:
            raise ValueError("X_pool is an empty dict")
        return len(next(iter(X.values())))
    return len(X)  # type: ignore[arg-type]


def _pool_size(X_pool: object, **precomputed: object) -> int:
    """Pool size from ``X_pool``, or from a precomputed per-sample array when ``X_pool`` is None."""
    if X_pool is not None:
        return _length(X_pool)
    for name, value in precomputed.items():
        if value is not None:
            return np.shape(value)[1] if name == "mc_pred_probs" else _length(value)
    options = ", ".join(f"{name}=" for name in precomputed) or "nothing"
    raise ValueError(f"X_pool is None; pass the pool, or precomputed inputs ({options})")


def _check_n_instances(n_instances: object, n_pool: int) -> int:
    k = check_positive_int(n_instances, "n_instances")
    if k > n_pool:
        raise ValueError(f"n_instances must be <= pool size (got {k}, pool has {n_pool})")
    return k


def _check_length(value: object, n_pool: int, name: str) -> None:
    n = _length(value)
    if n != n_pool:
        raise ValueError(f"{name} must have one entry per pool sample (got {n}, pool has {n_pool})")


def _require_labels(labels: object, n_pool: int, name: str) -> np.ndarray:
    if labels is None:
        raise ValueError(
            f"{name} needs the pool's current labels: call it with labels=<array of {n_pool} ints> "
            "(with modAL: learner.query(X_pool, n_instances=k, labels=y_pool))"
        )
    y = check_labels(labels, "labels")
    _check_length(y, n_pool, "labels")
    return y


def _pred_probs(estimator: object, X_pool: object, n_pool: int, pred_probs: object) -> np.ndarray:
    if pred_probs is None:
        if X_pool is None:
            raise ValueError("X_pool is None; pass the pool or pred_probs=")
        from modal_noisy._inference import predict_proba

        pred_probs = predict_proba(estimator, X_pool)
    p = np.asarray(pred_probs)
    _check_length(p, n_pool, "pred_probs")
    return p


def _select(scores: np.ndarray, k: int, largest: bool, rng: np.random.RandomState) -> np.ndarray:
    return scoring.top_k(scores, k, largest=largest, random_state=rng)


# --------------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------------


def random_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Uniformly random positions (the baseline every strategy must beat). The model is not used.

    Parameters
    ----------
    classifier : modAL learner or estimator
        Not used; part of the modAL signature.
    X_pool : array-like or None
        The pool (only its length is used). ``None`` needs ``pred_probs=`` or another per-sample
        keyword to give the pool size.
    n_instances : int, default=1
    labels : ignored
    random_state : int, RandomState or None

    Returns
    -------
    ndarray of shape (n_instances,), int64
    """
    _reject_unknown("random_query", kwargs)
    sizes = {name: kwargs.get(name) for name in ("pred_probs", "vog", "features")}
    n_pool = _pool_size(X_pool, labels=labels, **sizes)
    k = _check_n_instances(n_instances, n_pool)
    rng = check_random_state(random_state)
    return rng.choice(n_pool, size=k, replace=False).astype(np.int64)


def _uncertainty_query(
    name: str,
    scorer: Callable[[np.ndarray], np.ndarray],
    largest: bool,
    classifier: object,
    X_pool: object,
    n_instances: int,
    random_state: RandomState,
    pred_probs: object,
    kwargs: dict[str, Any],
) -> np.ndarray:
    _reject_unknown(name, kwargs)
    n_pool = _pool_size(X_pool, pred_probs=pred_probs)
    k = _check_n_instances(n_instances, n_pool)
    rng = check_random_state(random_state)
    p = _pred_probs(_estimator(classifier), X_pool, n_pool, pred_probs)
    return _select(scorer(p), k, largest, rng)


def entropy_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    pred_probs: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Highest predictive entropy first (:func:`modal_noisy.scoring.entropy_scores`).

    Parameters
    ----------
    classifier : modAL learner or estimator with ``predict_proba``
    X_pool : array-like or None
        The pool; may be ``None`` when ``pred_probs`` is given.
    n_instances : int, default=1
    labels : ignored
    pred_probs : array-like of shape (n_pool, n_classes), optional
        Precomputed probabilities of the pool (the model is then not called).
    random_state : int, RandomState or None
        Tie breaking.

    Returns
    -------
    ndarray of shape (n_instances,), int64
    """
    return _uncertainty_query(
        "entropy_query", scoring.entropy_scores, True,
        classifier, X_pool, n_instances, random_state, pred_probs, kwargs,
    )  # fmt: skip


def margin_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    pred_probs: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Smallest margin between the top two classes first (:func:`modal_noisy.scoring.margin_scores`).

    Parameters are those of :func:`entropy_query`.
    """
    return _uncertainty_query(
        "margin_query", scoring.margin_scores, False,
        classifier, X_pool, n_instances, random_state, pred_probs, kwargs,
    )  # fmt: skip


def least_confidence_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    pred_probs: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Lowest top-class probability first (:func:`modal_noisy.scoring.least_confidence_scores`).

    Parameters are those of :func:`entropy_query`.
    """
    return _uncertainty_query(
        "least_confidence_query", scoring.least_confidence_scores, True,
        classifier, X_pool, n_instances, random_state, pred_probs, kwargs,
    )  # fmt: skip


def loss_noisy_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    pred_probs: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Largest loss of the given label first: the samples most likely mislabelled by the loss alone.

    Scores are :func:`modal_noisy.scoring.loss_scores` (``-log p[label]``).

    Parameters
    ----------
    classifier : modAL learner or estimator with ``predict_proba``
    X_pool : array-like or None
        The pool; may be ``None`` when ``pred_probs`` is given.
    n_instances : int, default=1
    labels : array-like of shape (n_pool,)
        Required: the pool's current labels.
    pred_probs : array-like of shape (n_pool, n_classes), optional
        Precomputed probabilities of the pool.
    random_state : int, RandomState or None

    Returns
    -------
    ndarray of shape (n_instances,), int64
    """
    _reject_unknown("loss_noisy_query", kwargs)
    n_pool = _pool_size(X_pool, pred_probs=pred_probs, labels=labels)
    k = _check_n_instances(n_instances, n_pool)
    y = _require_labels(labels, n_pool, "loss_noisy_query")
    rng = check_random_state(random_state)
    p = _pred_probs(_estimator(classifier), X_pool, n_pool, pred_probs)
    return _select(scoring.loss_scores(p, y), k, True, rng)


def cleanlab_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    method: str = "self_confidence",
    pred_probs: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Lowest cleanlab label-quality score first (:func:`modal_noisy.scoring.label_quality_scores`).

    With ``method="self_confidence"`` the score is ``p[label]``, a monotone function of the loss
    ``-log p[label]``, so this query picks what :func:`loss_noisy_query` picks, in the same order;
    ``"normalized_margin"`` (``p[label]`` minus the largest other probability) ranks differently.

    Parameters
    ----------
    classifier : modAL learner or estimator with ``predict_proba``
    X_pool : array-like or None
        The pool; may be ``None`` when ``pred_probs`` is given.
    n_instances : int, default=1
    labels : array-like of shape (n_pool,)
        Required: the pool's current labels.
    method : {"self_confidence", "normalized_margin"}, default="self_confidence"
        cleanlab's scoring method.
    pred_probs : array-like of shape (n_pool, n_classes), optional
        Precomputed probabilities (cleanlab ranks best with out-of-sample ones).
    random_state : int, RandomState or None

    Returns
    -------
    ndarray of shape (n_instances,), int64
    """
    _reject_unknown("cleanlab_query", kwargs)
    check_choice(method, "method", scoring.LABEL_QUALITY_METHODS)
    n_pool = _pool_size(X_pool, pred_probs=pred_probs, labels=labels)
    k = _check_n_instances(n_instances, n_pool)
    y = _require_labels(labels, n_pool, "cleanlab_query")
    rng = check_random_state(random_state)
    p = _pred_probs(_estimator(classifier), X_pool, n_pool, pred_probs)
    return _select(scoring.label_quality_scores(p, y, method=method), k, False, rng)


def _resolve_vog(estimator: object, n_pool: int, vog: object, pool_indices: object) -> np.ndarray:
    """VoG of the pool samples: ``vog``, else ``estimator.vog_[pool_indices]``, else ``vog_`` itself."""
    if vog is not None:
        arr = np.asarray(vog)
        _check_length(arr, n_pool, "vog")
        return arr
    fitted = getattr(estimator, "vog_", None)
    how = (
        "VoG is a per-training-sample quantity; give the pool's VoG in one of three ways: "
        "vog=<array, one value per pool sample>; or pool_indices=<positions of the pool samples in "
        "the training set> with an estimator that has vog_ (CoTeachingClassifier, or a skorch net "
        "with the VoGTracker callback); or query a pool that is the whole training set"
    )
    if fitted is None:
        raise ValueError(f"vog_noisy_query: {type(estimator).__name__} has no vog_. {how}")
    fitted = np.asarray(fitted)
    if pool_indices is not None:
        idx = np.asarray(pool_indices)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"pool_indices must be a 1-D array of integers (got {idx.dtype}, "
                             f"shape {idx.shape})")
        _check_length(idx, n_pool, "pool_indices")
        if idx.size and (idx.min() < 0 or idx.max() >= len(fitted)):
            raise ValueError(
                f"pool_indices must lie in [0, {len(fitted)}) (the length of vog_) "
                f"(got {int(idx.min())}..{int(idx.max())})"
            )
        return fitted[idx]
    if len(fitted) == n_pool:
        return fitted
    raise ValueError(
        f"vog_noisy_query: the estimator's vog_ has {len(fitted)} entries but the pool has "
        f"{n_pool} samples. {how}"
    )


def vog_noisy_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    vog: object = None,
    pool_indices: object = None,
    mix_ratio: float = 0.5,
    pred_probs: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """The samples most likely mislabelled by loss and Variance of Gradients together.

    Scores are :func:`modal_noisy.scoring.vog_noisy_scores`: a ``mix_ratio`` blend of the rank of the
    given label's loss and the rank of VoG, highest first.

    Parameters
    ----------
    classifier : modAL learner or estimator with ``predict_proba`` (and ``vog_`` unless ``vog=``)
    X_pool : array-like or None
        The pool; may be ``None`` when ``pred_probs`` is given.
    n_instances : int, default=1
    labels : array-like of shape (n_pool,)
        Required: the pool's current labels.
    vog : array-like of shape (n_pool,), optional
        VoG of the pool samples. Without it, ``estimator.vog_[pool_indices]`` is used, or
        ``estimator.vog_`` itself when the pool is the whole training set (same length).
    pool_indices : array-like of int, shape (n_pool,), optional
        Positions of the pool samples in the estimator's training set.
    mix_ratio : float in [0, 1], default=0.5
        Weight of VoG against loss (0 = loss only, 1 = VoG only).
    pred_probs : array-like of shape (n_pool, n_classes), optional
    random_state : int, RandomState or None

    Returns
    -------
    ndarray of shape (n_instances,), int64
    """
    _reject_unknown("vog_noisy_query", kwargs)
    n_pool = _pool_size(X_pool, pred_probs=pred_probs, vog=vog, labels=labels)
    k = _check_n_instances(n_instances, n_pool)
    y = _require_labels(labels, n_pool, "vog_noisy_query")
    estimator = _estimator(classifier)
    vog_arr = _resolve_vog(estimator, n_pool, vog, pool_indices)
    rng = check_random_state(random_state)
    p = _pred_probs(estimator, X_pool, n_pool, pred_probs)
    scores = scoring.vog_noisy_scores(scoring.loss_scores(p, y), vog_arr, mix_ratio=mix_ratio)
    return _select(scores, k, True, rng)


def bald_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    n_passes: int = 20,
    mc_pred_probs: object = None,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Highest BALD mutual information first, from Monte-Carlo dropout (Gal et al. 2017).

    Runs ``n_passes`` forward passes of the pool with only the network's dropout layers
    (``nn.Dropout*``) in train mode — BatchNorm keeps its running statistics — under a torch RNG
    forked and seeded from ``random_state`` (the global RNG is left as it was). A co-teaching net
    uses the networks it predicts with (the sum of both networks' logits in phase 1, network 1
    after fine-tuning). Scores are :func:`modal_noisy.scoring.bald_scores`.

    Parameters
    ----------
    classifier : modAL learner or skorch net with dropout layers
        Functional dropout (``F.dropout`` in ``forward``) cannot be switched on; a net without
        dropout layers raises ``ValueError``.
    X_pool : array-like or None
        The pool; may be ``None`` when ``mc_pred_probs`` is given.
    n_instances : int, default=1
    labels : ignored
    n_passes : int, default=20
        Stochastic passes (>= 2).
    mc_pred_probs : array-like of shape (n_passes, n_pool, n_classes), optional
        Precomputed MC-dropout probabilities (the model is then not called).
    random_state : int, RandomState or None
        Seeds the dropout masks and tie breaking.

    Returns
    -------
    ndarray of shape (n_instances,), int64
    """
    _reject_unknown("bald_query", kwargs)
    n_pool = _pool_size(X_pool, mc_pred_probs=mc_pred_probs)
    k = _check_n_instances(n_instances, n_pool)
    rng = check_random_state(random_state)
    if mc_pred_probs is None:
        n_passes = check_positive_int(n_passes, "n_passes", minimum=2)
        estimator = _estimator(classifier)
        from modal_noisy._inference import is_skorch_net, mc_dropout_proba

        if not is_skorch_net(estimator):
            raise ValueError(
                "bald_query needs a skorch net with dropout layers for MC dropout "
                f"(got {type(estimator).__name__}); or pass mc_pred_probs="
            )
        seed = int(rng.randint(np.iinfo(np.int32).max))
        mc_pred_probs = mc_dropout_proba(estimator, X_pool, n_passes=n_passes, seed=seed)
    mc = np.asarray(mc_pred_probs)
    if mc.ndim != 3 or mc.shape[1] != n_pool:
        raise ValueError(
            "mc_pred_probs must have shape (n_passes, n_pool, n_classes) with n_pool="
            f"{n_pool} (got shape {mc.shape})"
        )
    return _select(scoring.bald_scores(mc), k, True, rng)


def _features(estimator: object, X: object, name: str) -> np.ndarray:
    from modal_noisy._inference import is_skorch_net, penultimate_features

    if is_skorch_net(estimator):
        return penultimate_features(estimator, X)
    arr = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    return scoring._as_features(arr, name)


def coreset_query(
    classifier: object,
    X_pool: object,
    n_instances: int = 1,
    *,
    labels: object = None,
    features: object = None,
    X_labelled: object = None,
    labelled_features: object = None,
    chunk_elements: int = 1 << 22,
    random_state: RandomState = None,
    **kwargs: Any,
) -> np.ndarray:
    """Greedy k-centre core-set (Sener & Savarese 2018): cover the pool's feature space.

    Features are the penultimate-layer activations of a skorch net (the input of
    ``modal_noisy.nets.final_linear``; network 1 of a co-teaching net) or the flattened raw
    ``X_pool`` for any other estimator. Selection is :func:`modal_noisy.scoring.kcenter_greedy`
    (O(N) memory), returned in pick order.

    Parameters
    ----------
    classifier : modAL learner or estimator
    X_pool : array-like or None
        The pool; may be ``None`` when ``features`` is given.
    n_instances : int, default=1
    labels : ignored
    features : array-like of shape (n_pool, n_features), optional
        Precomputed pool features.
    X_labelled : array-like, optional
        Already-labelled samples; their features count as centres chosen beforehand, so the picks
        cover what is not yet covered. (Not taken from the learner's ``X_training`` by default: in
        label cleaning the pool is part of the training set.)
    labelled_features : array-like of shape (n_labelled, n_features), optional
        Precomputed features of the labelled samples (instead of ``X_labelled``).
    chunk_elements : int, default=2**22
        Bound on temporary distance blocks.
    random_state : int, RandomState or None
        First centre (when nothing is labelled) and tie breaking.

    Returns
    -------
    ndarray of shape (n_instances,), int64
    """
    _reject_unknown("coreset_query", kwargs)
    if X_labelled is not None and labelled_features is not None:
        raise ValueError("pass X_labelled or labelled_features, not both")
    n_pool = _pool_size(X_pool, features=features)
    k = _check_n_instances(n_instances, n_pool)
    rng = check_random_state(random_state)
    estimator = _estimator(classifier)
    if features is None:
        features = _features(estimator, X_pool, "X_pool")
    _check_length(features, n_pool, "features")
    if X_labelled is not None and _length(X_labelled) > 0:
        labelled_features = _features(estimator, X_labelled, "X_labelled")
    return scoring.kcenter_greedy(
        features,
        k,
        labelled_features=labelled_features,
        random_state=rng,
        chunk_elements=chunk_elements,
    )


# --------------------------------------------------------------------------------------------------
# class-balanced wrapper
# --------------------------------------------------------------------------------------------------


def _quotas(counts: np.ndarray, k: int) -> np.ndarray:
    """Spread ``k`` over classes as evenly as their sizes allow; leftovers go to the rarest first."""
    quotas = np.zeros(len(counts), dtype=np.int64)
    by_rarity = np.lexsort((np.arange(len(counts)), counts))
    remaining = k
    while remaining > 0:
        open_ = [c for c in by_rarity if quotas[c] < counts[c]]
        share, extra = divmod(remaining, len(open_))
        for rank, c in enumerate(open_):
            add = min(share + (1 if rank < extra else 0), counts[c] - quotas[c])
            quotas[c] += add
            remaining -= add
    return quotas


def _take(X: object, idx: np.ndarray) -> object:
    if X is None:
        return None
    if isinstance(X, dict):
        return {key: _take(value, idx) for key, value in X.items()}
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in idx]
    return X[idx]  # type: ignore[index]


def _is_ours(strategy: object) -> bool:
    func = getattr(strategy, "func", strategy)  # functools.partial
    return func in _BUILTIN


def class_balanced(strategy: Strategy, *, by: str = "auto") -> Strategy:
    """Wrap a strategy so each query spreads ``n_instances`` evenly over the classes of the pool.

    Without it, a round of an imbalanced pool is often spent on the majority class alone. The pool
    is split by class, the wrapped strategy picks ``n_c`` from each class on its own (so its scores
    are never compared across classes), with ``n_c`` as equal as the class sizes allow — a class
    with fewer samples than its share gives the rest to the others, and the remainder of an uneven
    split goes to the rarest classes first. The result interleaves the classes round-robin (the
    rarest class first within each round), so any prefix of it is balanced too.

    Parameters
    ----------
    strategy : callable
        Any query strategy following the contract (built-in or your own).
    by : {"auto", "labels", "predicted"}, default="auto"
        What "class" means: the pool's current ``labels`` (the default when they are passed), or the
        model's predicted class (``argmax`` of ``pred_probs=`` or of ``predict_proba``).

    Returns
    -------
    callable
        A strategy with the same contract. Per-sample keywords (``labels``, ``pred_probs``,
        ``vog``, ``pool_indices``, ``features``, ``mc_pred_probs``) are sliced per class. For
        ``vog_noisy_query`` the pool's VoG is resolved once beforehand (from ``vog=``, or
        ``vog_[pool_indices]``, or ``vog_`` itself), so a pool that is the whole training set still
        works per class.
    """
    check_choice(by, "by", ("auto", "labels", "predicted"))
    if not callable(strategy):
        raise TypeError(f"strategy must be callable (got {strategy!r})")
    inner_name = getattr(strategy, "__name__", None) or getattr(
        getattr(strategy, "func", None), "__name__", repr(strategy)
    )

    def query(
        classifier: object,
        X_pool: object,
        n_instances: int = 1,
        *,
        labels: object = None,
        random_state: RandomState = None,
        **kwargs: Any,
    ) -> np.ndarray:
        per_sample = {name: kwargs.get(name) for name in ("pred_probs", "vog", "features")}
        n_pool = _pool_size(X_pool, labels=labels, **per_sample)
        k = _check_n_instances(n_instances, n_pool)
        estimator = _estimator(classifier)
        use_labels = by == "labels" or (by == "auto" and labels is not None)
        if use_labels:
            groups = _require_labels(labels, n_pool, f"class_balanced(by={by!r})")
        else:
            p = _pred_probs(estimator, X_pool, n_pool, kwargs.get("pred_probs"))
            groups = p.argmax(axis=1)
            if _is_ours(strategy):  # reuse the probabilities instead of predicting again
                kwargs["pred_probs"] = p
        if (
            getattr(strategy, "func", strategy) is vog_noisy_query
            and kwargs.get("vog") is None
            and getattr(estimator, "vog_", None) is not None
        ):
            kwargs["vog"] = _resolve_vog(estimator, n_pool, None, kwargs.pop("pool_indices", None))
        _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        quotas = _quotas(counts, k)
        picks: dict[int, np.ndarray] = {}
        for c in np.flatnonzero(quotas):
            members = np.flatnonzero(inverse == c)
            sub_kwargs = {
                name: (None if value is None else _take(np.asarray(value), members))
                if name in _PER_SAMPLE_KWARGS
                else value
                for name, value in kwargs.items()
            }
            if kwargs.get("mc_pred_probs") is not None:
                sub_kwargs["mc_pred_probs"] = np.asarray(kwargs["mc_pred_probs"])[:, members]
            if labels is not None:
                sub_kwargs["labels"] = np.asarray(labels)[members]
            chosen = np.asarray(
                strategy(
                    classifier,
                    _take(X_pool, members),
                    int(quotas[c]),
                    random_state=random_state,
                    **sub_kwargs,
                )
            )
            if chosen.shape != (quotas[c],):
                raise ValueError(
                    f"{inner_name} returned {chosen.shape} positions for a request of {quotas[c]}"
                )
            picks[int(c)] = members[chosen.astype(np.int64)]
        rarest_first = sorted(picks, key=lambda c: (counts[c], c))
        rounds = max(len(p) for p in picks.values())
        merged = [picks[c][r] for r in range(rounds) for c in rarest_first if r < len(picks[c])]
        return np.asarray(merged, dtype=np.int64)

    query.__name__ = f"class_balanced_{inner_name}"
    query.__qualname__ = query.__name__
    query.__doc__ = f"{inner_name}, spread evenly over the pool's classes (by={by!r})."
    query.strategy = strategy  # type: ignore[attr-defined]
    query.by = by  # type: ignore[attr-defined]
    return query


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------

_cleanlab_margin_query = functools.partial(cleanlab_query, method="normalized_margin")

#: Short name -> strategy, for the phase-2 cleaner and the command line.
STRATEGIES: dict[str, Strategy] = {
    "random": random_query,
    "entropy": entropy_query,
    "least_confidence": least_confidence_query,
    "margin": margin_query,
    "bald": bald_query,
    "coreset": coreset_query,
    "loss": loss_noisy_query,
    "vog": vog_noisy_query,
    "cleanlab": cleanlab_query,
    "cleanlab_margin": _cleanlab_margin_query,
}

_BUILTIN = frozenset(
    {
        random_query,
        entropy_query,
        least_confidence_query,
        margin_query,
        bald_query,
        coreset_query,
        loss_noisy_query,
        vog_noisy_query,
        cleanlab_query,
    }
)
# Full function names are accepted too ("vog_noisy_query", "entropy_query", ...).
_ALIASES = {f.__name__: name for name, f in STRATEGIES.items() if hasattr(f, "__name__")}


def get_strategy(name: str | Strategy) -> Strategy:
    """Return the strategy called ``name`` (a key of :data:`STRATEGIES` or a function name).

    A callable is returned unchanged, so callers may accept either.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    """
    if callable(name):
        return name
    if isinstance(name, str):
        key = _ALIASES.get(name, name)
        if key in STRATEGIES:
            return STRATEGIES[key]
    valid = ", ".join(repr(n) for n in STRATEGIES)
    raise ValueError(f"strategy must be one of {valid} or a callable (got {name!r})")
