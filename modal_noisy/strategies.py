"""modAL query strategies: a scorer from :mod:`modal_noisy.scoring` plus a selector, built by one factory.

Every strategy follows one contract (DESIGN.md §2)::

    strategy(classifier, X_pool, n_instances=1, *, labels=None, <its own options>, random_state=None)
        -> ndarray of n_instances distinct int positions into X_pool, most informative first

so it plugs into modAL directly::

    learner = ActiveLearner(estimator=net, query_strategy=loss_noisy_query, X_training=X, y_training=y)
    idx, _ = learner.query(X_pool, n_instances=70, labels=y_pool)

* ``classifier`` — a modAL learner (its ``estimator`` is used) or the estimator itself: a skorch
  net (``CoTeachingClassifier`` included) or any scikit-learn classifier with ``predict_proba``.
* ``labels`` — the pool's current (possibly wrong) labels; loss, VoG and cleanlab strategies need them
  and raise ``ValueError`` without them. The others accept and ignore them, so one call fits all.
* Ties are broken by a generator from ``random_state`` (scikit-learn convention), so a fixed seed
  gives the same answer. ``n_instances`` larger than the pool is an error, never a silent truncation.
* Precomputed inputs skip the model: ``pred_probs=`` (probabilities of the pool), ``vog=``,
  ``mc_pred_probs=`` (BALD), ``features=`` (core-set). With one of them ``X_pool`` may be ``None``.
* Each strategy takes only its own options (its signature lists them); any other keyword is a
  ``TypeError`` naming it, so a misspelt option never passes silently. A caller holding one set of
  keywords for whichever strategy runs passes :func:`keywords_for` ``(strategy, **kwargs)``.

Model inference is batched, runs under ``torch.no_grad()`` in eval mode and restores every
submodule's train/eval mode afterwards, even on error (:mod:`modal_noisy._inference`).

:data:`STRATEGIES` maps short names to strategies; :func:`get_strategy` looks one up.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from modAL.models.base import BaseLearner
from sklearn.utils import check_random_state

from modal_noisy import scoring
from modal_noisy._inference import is_skorch_net, mc_dropout_proba, penultimate_features, predict_proba
from modal_noisy._validation import (
    check_choice,
    check_finite_input,
    check_fraction,
    check_labels,
    check_positive_int,
)

__all__ = [
    "STRATEGIES",
    "accepted_keywords",
    "adaptive_mislabel_query",
    "bald_query",
    "class_balanced",
    "cleanlab_query",
    "coreset_query",
    "entropy_query",
    "get_strategy",
    "informative_mislabel_query",
    "keywords_for",
    "least_confidence_query",
    "loss_noisy_query",
    "margin_query",
    "random_query",
    "training_margin_query",
    "uncertain_mislabel_query",
    "vog_noisy_query",
]

RandomState = int | np.random.RandomState | None
Strategy = Callable[..., np.ndarray]

# Keywords holding one entry per pool sample (class_balanced hands each class its slice).
_PER_SAMPLE_KWARGS = ("labels", "pred_probs", "training_proba", "vog", "pool_indices", "features")

# Every option a built-in strategy may take: its default and its numpydoc entry, written once.
_OPTIONS: dict[str, tuple[Any, str]] = {
    "method": (
        "self_confidence",
        'method : {"self_confidence", "normalized_margin"}, default="self_confidence"\n'
        "    cleanlab's scoring method.",
    ),
    "vog": (
        None,
        "vog : array-like of shape (n_pool,), optional\n"
        "    VoG of the pool samples. Without it, ``estimator.vog_[pool_indices]`` is used, or\n"
        "    ``estimator.vog_`` itself when the pool is the whole training set (same length).",
    ),
    "pool_indices": (
        None,
        "pool_indices : array-like of int, shape (n_pool,), optional\n"
        "    Positions of the pool samples in the estimator's training set.",
    ),
    "mix_ratio": (
        0.5,
        "mix_ratio : float in [0, 1], default=0.5\n"
        "    Weight of VoG against loss (0 = loss only, 1 = VoG only).",
    ),
    "n_passes": (
        20,
        "n_passes : int, default=20\n    Stochastic passes (>= 2).",
    ),
    "mc_pred_probs": (
        None,
        "mc_pred_probs : array-like of shape (n_passes, n_pool, n_classes), optional\n"
        "    Precomputed MC-dropout probabilities (the model is then not called).",
    ),
    "features": (
        None,
        "features : array-like of shape (n_pool, n_features), optional\n    Precomputed pool features.",
    ),
    "X_labelled": (
        None,
        "X_labelled : array-like, optional\n"
        "    Already-labelled samples; their features count as centres chosen beforehand, so the picks\n"
        "    cover what is not yet covered. (Not taken from the learner's ``X_training`` by default: in\n"
        "    label cleaning the pool is part of the training set.)",
    ),
    "labelled_features": (
        None,
        "labelled_features : array-like of shape (n_labelled, n_features), optional\n"
        "    Precomputed features of the labelled samples (instead of ``X_labelled``).",
    ),
    "chunk_elements": (
        1 << 22,
        "chunk_elements : int, default=2**22\n    Bound on temporary distance blocks.",
    ),
    "pred_probs": (
        None,
        "pred_probs : array-like of shape (n_pool, n_classes), optional\n"
        "    Precomputed probabilities of the pool (the model is then not called).",
    ),
    "training_proba": (
        None,
        "training_proba : array-like of shape (n_pool, n_classes), optional\n"
        "    The pool's probabilities averaged over training, instead of the estimator's\n"
        "    ``training_proba_`` (for any estimator).",
    ),
    "candidates": (
        2.0,
        "candidates : float >= 1, default=2\n"
        "    Size of the shortlist, in multiples of ``n_instances``.",
    ),
    "answered": (
        None,
        "answered : array-like of int, shape (n_rounds, 2), optional\n"
        "    One row per earlier round, in order: how many labels the expert gave and how many of them\n"
        "    changed the label. :class:`~modal_noisy.cleaning.ActiveLabelCleaner` passes it. Without it\n"
        "    (no answers yet) the shortlist is ``n_instances`` long.",
    ),
    "min_fix_rate": (
        0.95,
        "min_fix_rate : float in (0, 1], default=0.95\n"
        "    Share of the answers so far that must have changed a label for the shortlist to widen.",
    ),
}

#: the adaptive shortlist widens by this factor per round, up to the cap
_SHORTLIST_GROWTH = 16
_SHORTLIST_CAP = 256


# --------------------------------------------------------------------------------------------------
# shared plumbing
# --------------------------------------------------------------------------------------------------


def _estimator(classifier: object) -> object:
    """The model behind a modAL learner (modAL passes the learner itself), else ``classifier``."""
    return classifier.estimator if isinstance(classifier, BaseLearner) else classifier


def _length(X: object) -> int:
    if isinstance(X, dict):  # skorch accepts a dict of equally long arrays
        if not X:
            raise ValueError("X_pool is an empty dict")
        return len(next(iter(X.values())))
    return len(X)  # type: ignore[arg-type]


def _pool_size(X_pool: object, **precomputed: object) -> int:
    """Pool size from ``X_pool``, or from a precomputed per-sample array when ``X_pool`` is None."""
    if X_pool is not None:
        check_finite_input(X_pool, "X_pool")  # a NaN image would get NaN scores, ranked anywhere
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
        pred_probs = predict_proba(estimator, X_pool)
    p = np.asarray(pred_probs)
    _check_length(p, n_pool, "pred_probs")
    return p


def accepted_keywords(strategy: Strategy) -> frozenset[str] | None:
    """The keywords ``strategy`` takes after ``(classifier, X_pool, n_instances)``.

    Read from its signature, so it answers for the built-in strategies, for ``functools.partial``
    of them, for :func:`class_balanced` wrappers and for your own strategies alike.

    Returns
    -------
    frozenset of str or None
        ``None`` when the strategy takes ``**kwargs`` (any keyword), or has no readable signature.
    """
    try:
        params = list(inspect.signature(strategy).parameters.values())
    except (TypeError, ValueError):  # a callable without a signature
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    leading = [p for p in params if p.kind in positional][:3]
    return frozenset(p.name for p in params if p not in leading and p.kind is not p.VAR_POSITIONAL)


def keywords_for(strategy: Strategy, **kwargs: Any) -> dict[str, Any]:
    """The subset of ``kwargs`` that ``strategy`` takes (all of them when it takes ``**kwargs``).

    For a caller that holds one set of keywords for whichever strategy a user chose, e.g. the
    cleaner's ``pool_indices`` that only :func:`vog_noisy_query` uses::

        strategy(est, X_pool, k, labels=y_pool, **keywords_for(strategy, pool_indices=pool))
    """
    accepted = accepted_keywords(strategy)
    if accepted is None:
        return dict(kwargs)
    return {name: value for name, value in kwargs.items() if name in accepted}


# --------------------------------------------------------------------------------------------------
# the factory
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    """What a scorer sees: the model, the pool, its checked labels, the generator and the options."""

    estimator: object
    X: object
    size: int
    labels: np.ndarray | None
    rng: np.random.RandomState
    options: Mapping[str, Any]

    def pred_probs(self) -> np.ndarray:
        """The pool's probabilities: ``pred_probs=`` when given, else the model's prediction."""
        return _pred_probs(self.estimator, self.X, self.size, self.options.get("pred_probs"))


def _signature(options: tuple[str, ...]) -> inspect.Signature:
    P = inspect.Parameter
    params = [
        P("classifier", P.POSITIONAL_OR_KEYWORD),
        P("X_pool", P.POSITIONAL_OR_KEYWORD),
        P("n_instances", P.POSITIONAL_OR_KEYWORD, default=1),
        P("labels", P.KEYWORD_ONLY, default=None),
        *(P(name, P.KEYWORD_ONLY, default=_OPTIONS[name][0]) for name in options),
        P("random_state", P.KEYWORD_ONLY, default=None),
    ]
    return inspect.Signature(params, return_annotation=np.ndarray)


def _docstring(
    summary: str,
    details: str,
    *,
    classifier_doc: str,
    needs_labels: bool,
    options: tuple[str, ...],
    size_from: tuple[str, ...],
    random_state_doc: str,
    x_pool_doc: str | None,
) -> str:
    # the inputs that stand in for the model (labels or vog give the pool size, not a prediction)
    precomputed = [name for name in size_from if name in ("pred_probs", "mc_pred_probs", "features")]
    x_pool = x_pool_doc or "The pool."
    if precomputed and x_pool_doc is None:
        x_pool = f"The pool; may be ``None`` when ``{'=`` or ``'.join(precomputed)}=`` is given."
    labels = (
        "labels : array-like of shape (n_pool,)\n    Required: the pool's current labels."
        if needs_labels
        else "labels : ignored\n    Accepted so that one call fits every strategy."
    )
    raises = "``n_instances`` larger than the pool"
    if needs_labels:
        raises += ", ``labels`` missing"
    parts = [
        f"classifier : {classifier_doc}",
        f"X_pool : array-like or None\n    {x_pool}",
        "n_instances : int, default=1\n    Number of distinct positions to return (at most the pool size).",
        labels,
        *(_OPTIONS[name][1] for name in options),
        f"random_state : int, RandomState or None\n    {random_state_doc}",
    ]
    params = "\n".join(parts).replace("\n", "\n    ")
    body = f"{summary}\n\n    {details}\n\n" if details else f"{summary}\n\n"
    return (
        f"{body}    Parameters\n    ----------\n    {params}\n\n"
        "    Returns\n    -------\n    ndarray of shape (n_instances,), int64\n"
        "        Distinct positions into ``X_pool``, most informative first.\n\n"
        "    Raises\n    ------\n    TypeError\n        A keyword this strategy does not take.\n"
        f"    ValueError\n        {raises}, or an input of the wrong length.\n"
    )


def _make_strategy(
    name: str,
    *,
    scorer: Callable[[_Pool], np.ndarray] | None = None,
    largest: bool = True,
    select: Callable[[_Pool, int], np.ndarray] | None = None,
    needs_labels: bool,
    options: tuple[str, ...] = (),
    size_from: tuple[str, ...] = (),
    summary: str,
    details: str = "",
    classifier_doc: str = "modAL learner or estimator with ``predict_proba``",
    random_state_doc: str = "Tie breaking.",
    x_pool_doc: str | None = None,
) -> Strategy:
    """Build a query strategy that follows the contract of this module.

    The strategy rejects keywords outside ``options``, sizes the pool from ``X_pool`` (or the first
    of ``size_from`` given), checks ``n_instances`` and, when ``needs_labels``, the labels; then either
    ranks ``scorer``'s scores (``largest`` first, ties broken by ``random_state``) or lets ``select``
    pick the positions itself.
    """
    if (scorer is None) == (select is None):
        raise TypeError("give a scorer or a selector, not both")
    allowed = frozenset(options)
    accepted = ", ".join(f"{kw}=" for kw in ("labels", *options, "random_state"))

    def strategy(
        classifier: object,
        X_pool: object,
        n_instances: int = 1,
        *,
        labels: object = None,
        random_state: RandomState = None,
        **kwargs: Any,
    ) -> np.ndarray:
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            what = "unexpected keyword arguments" if len(unknown) > 1 else "an unexpected keyword argument"
            raise TypeError(f"{name}() got {what} {', '.join(map(repr, unknown))} (it takes {accepted})")
        values = {option: kwargs.get(option, _OPTIONS[option][0]) for option in options}
        sizes = {key: labels if key == "labels" else values[key] for key in size_from}
        n_pool = _pool_size(X_pool, **sizes)
        k = _check_n_instances(n_instances, n_pool)
        y = _require_labels(labels, n_pool, name) if needs_labels else None
        rng = check_random_state(random_state)
        pool = _Pool(_estimator(classifier), X_pool, n_pool, y, rng, values)
        if select is not None:
            return select(pool, k)
        return scoring.top_k(scorer(pool), k, largest=largest, random_state=rng)  # type: ignore[misc]

    strategy.__name__ = strategy.__qualname__ = name
    strategy.__signature__ = _signature(options)  # type: ignore[attr-defined]
    strategy.__doc__ = _docstring(
        summary,
        details,
        classifier_doc=classifier_doc,
        needs_labels=needs_labels,
        options=options,
        size_from=size_from,
        random_state_doc=random_state_doc,
        x_pool_doc=x_pool_doc,
    )
    return strategy


# --------------------------------------------------------------------------------------------------
# scorers and selectors of the nine strategies
# --------------------------------------------------------------------------------------------------


def _random_picks(pool: _Pool, k: int) -> np.ndarray:
    return pool.rng.choice(pool.size, size=k, replace=False).astype(np.int64)


def _label_quality(pool: _Pool) -> np.ndarray:
    method = check_choice(pool.options["method"], "method", scoring.LABEL_QUALITY_METHODS)
    return scoring.label_quality_scores(pool.pred_probs(), pool.labels, method=method)


def _resolve_vog(estimator: object, n_pool: int, vog: object, pool_indices: object) -> np.ndarray:
    """VoG of the pool samples: ``vog``, else ``estimator.vog_[pool_indices]``, else ``vog_`` itself."""
    return _training_record(estimator, "vog_", "vog", n_pool, vog, pool_indices, "vog_noisy_query")


def _training_record(
    estimator: object, attribute: str, given_name: str, n_pool: int, given: object, pool_indices: object,
    query: str,
) -> np.ndarray:
    """A per-training-sample record of the pool: ``given``, else ``estimator.<attribute>[pool_indices]``,
    else the record itself when the pool is the whole training set."""
    if given is not None:
        arr = np.asarray(given)
        _check_length(arr, n_pool, given_name)
        return arr
    fitted = getattr(estimator, attribute, None)
    how = (
        f"{attribute} is recorded per training sample; give the pool's values in one of three ways: "
        f"{given_name}=<array, one row per pool sample>; or pool_indices=<positions of the pool samples "
        f"in the training set> with an estimator that has {attribute} (CoTeachingClassifier"
        + (", or a skorch net with the VoGTracker callback" if attribute == "vog_" else "")
        + "); or query a pool that is the whole training set"
    )
    if fitted is None:
        raise ValueError(f"{query}: {type(estimator).__name__} has no {attribute}. {how}")
    fitted = np.asarray(fitted)
    if pool_indices is not None:
        idx = np.asarray(pool_indices)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(
                f"pool_indices must be a 1-D array of integers (got {idx.dtype}, shape {idx.shape})"
            )
        _check_length(idx, n_pool, "pool_indices")
        if idx.size and (idx.min() < 0 or idx.max() >= len(fitted)):
            raise ValueError(
                f"pool_indices must lie in [0, {len(fitted)}) (the length of {attribute}) "
                f"(got {int(idx.min())}..{int(idx.max())})"
            )
        return fitted[idx]
    if len(fitted) == n_pool:
        return fitted
    raise ValueError(
        f"{query}: the estimator's {attribute} has {len(fitted)} entries but the pool has "
        f"{n_pool} samples. {how}"
    )


def _training_margin(pool: _Pool) -> np.ndarray:
    probs = _training_record(
        pool.estimator, "training_proba_", "pred_probs", pool.size, pool.options["pred_probs"],
        pool.options["pool_indices"], "training_margin_query",
    )
    return scoring.label_quality_scores(probs, pool.labels, method="normalized_margin")


def _informative_mislabel_picks(pool: _Pool, k: int) -> np.ndarray:
    factor = check_fraction(
        pool.options["candidates"], "candidates", low=1.0, high=float("inf"), high_inclusive=False
    )
    return _shortlist_by_record_then_entropy(pool, k, factor, "informative_mislabel_query")


def _adaptive_mislabel_picks(pool: _Pool, k: int) -> np.ndarray:
    target = check_fraction(pool.options["min_fix_rate"], "min_fix_rate", low=0.0, low_inclusive=False)
    factor = _adaptive_shortlist_factor(_check_answered(pool.options["answered"]), target)
    return _shortlist_by_record_then_entropy(pool, k, factor, "adaptive_mislabel_query")


def _check_answered(answered: object) -> np.ndarray:
    rows = np.asarray([] if answered is None else answered)
    if rows.size == 0:  # no round answered yet
        return np.zeros((0, 2), dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != 2 or rows.dtype.kind not in "iu":
        raise ValueError(
            f"answered must be integer pairs (labels given, labels changed), one row per round "
            f"(got an array of shape {rows.shape} and dtype {rows.dtype})"
        )
    if (rows < 0).any() or (rows[:, 1] > rows[:, 0]).any():
        raise ValueError(
            f"answered must hold 0 <= labels changed <= labels given in every row (got {rows.tolist()})"
        )
    return rows.astype(np.int64)


def _adaptive_shortlist_factor(answered: np.ndarray, min_fix_rate: float) -> int:
    """Shortlist size, in multiples of a round's budget, after the rounds in ``answered``.

    It starts at 1 (the labels the record of training doubts most) and after each round is
    multiplied by 16, up to 256, when the answers so far changed at least ``min_fix_rate`` of the
    labels, and back to 1 when they did not: once answers stop fixing labels the list has reached
    past the wrong ones, and a smaller step back could still cover the whole pool. It never widens
    back to a size whose last round changed fewer than ``min_fix_rate`` of its own labels: the
    ranking's top has only been used up further since, so that size would reach past the wrong
    labels again. Replayed from the whole history, so a resumed session reaches the same size.

    Parameters
    ----------
    answered : ndarray of int of shape (n_rounds, 2)
        Per earlier round: labels given and labels changed.
    min_fix_rate : float in (0, 1]
        Share of changed labels, over all answers so far, that lets the shortlist widen.

    Returns
    -------
    int
        1, 16 or 256.
    """
    factor, given, changed = 1, 0, 0
    fell_short = set()  # sizes whose last round changed fewer than min_fix_rate of its labels
    for n_given, n_changed in answered.tolist():
        if n_given and n_changed < min_fix_rate * n_given:
            fell_short.add(factor)
        elif n_given:
            fell_short.discard(factor)
        given, changed = given + n_given, changed + n_changed
        if given == 0:
            continue
        wider = min(_SHORTLIST_CAP, factor * _SHORTLIST_GROWTH)
        if changed < min_fix_rate * given:
            factor = 1
        elif wider not in fell_short:
            factor = wider
    return factor


def _shortlist_by_record_then_entropy(pool: _Pool, k: int, factor: float, query: str) -> np.ndarray:
    record = _training_record(
        pool.estimator, "training_proba_", "training_proba", pool.size, pool.options["training_proba"],
        pool.options["pool_indices"], query,
    )
    margin = scoring.label_quality_scores(record, pool.labels, method="normalized_margin")
    size = min(pool.size, math.ceil(factor * k))
    shortlist = scoring.top_k(margin, size, largest=False, random_state=pool.rng)
    # only the shortlist is predicted: the current model's opinion of the rest is not needed
    given = pool.options["pred_probs"]
    if given is not None:
        _check_length(np.asarray(given), pool.size, "pred_probs")
        given = np.asarray(given)[shortlist]
    probs = _pred_probs(pool.estimator, _take(pool.X, shortlist), len(shortlist), given)
    order = scoring.top_k(scoring.entropy_scores(probs), k, largest=True, random_state=pool.rng)
    return shortlist[order].astype(np.int64)


def _vog_noisy(pool: _Pool) -> np.ndarray:
    vog = _resolve_vog(pool.estimator, pool.size, pool.options["vog"], pool.options["pool_indices"])
    loss = scoring.loss_scores(pool.pred_probs(), pool.labels)
    return scoring.vog_noisy_scores(loss, vog, mix_ratio=pool.options["mix_ratio"])


def _bald(pool: _Pool) -> np.ndarray:
    mc = pool.options["mc_pred_probs"]
    if mc is None:
        n_passes = check_positive_int(pool.options["n_passes"], "n_passes", minimum=2)
        if not is_skorch_net(pool.estimator):
            raise ValueError(
                "bald_query needs a skorch net with dropout layers for MC dropout "
                f"(got {type(pool.estimator).__name__}); or pass mc_pred_probs="
            )
        seed = int(pool.rng.randint(np.iinfo(np.int32).max))
        mc = mc_dropout_proba(pool.estimator, pool.X, n_passes=n_passes, seed=seed)
    mc = np.asarray(mc)
    if mc.ndim != 3 or mc.shape[1] != pool.size:
        raise ValueError(
            "mc_pred_probs must have shape (n_passes, n_pool, n_classes) with n_pool="
            f"{pool.size} (got shape {mc.shape})"
        )
    return scoring.bald_scores(mc)


def _features(estimator: object, X: object, name: str) -> np.ndarray:
    if is_skorch_net(estimator):
        return penultimate_features(estimator, X)
    arr = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    return scoring._as_features(arr, name)


def _coreset_picks(pool: _Pool, k: int) -> np.ndarray:
    X_labelled, labelled = pool.options["X_labelled"], pool.options["labelled_features"]
    if X_labelled is not None and labelled is not None:
        raise ValueError("pass X_labelled or labelled_features, not both")
    features = pool.options["features"]
    if features is None:
        features = _features(pool.estimator, pool.X, "X_pool")
    _check_length(features, pool.size, "features")
    if X_labelled is not None and _length(X_labelled) > 0:
        labelled = _features(pool.estimator, X_labelled, "X_labelled")
    return scoring.kcenter_greedy(
        features,
        k,
        labelled_features=labelled,
        random_state=pool.rng,
        chunk_elements=pool.options["chunk_elements"],
    )


def _uncertainty_strategy(
    name: str, score: Callable[[np.ndarray], np.ndarray], *, largest: bool, summary: str
) -> Strategy:
    """A label-blind strategy that ranks the pool by ``score`` of its predicted probabilities."""
    return _make_strategy(
        name,
        scorer=lambda pool: score(pool.pred_probs()),
        largest=largest,
        needs_labels=False,
        options=("pred_probs",),
        size_from=("pred_probs",),
        summary=summary,
    )


# --------------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------------

random_query = _make_strategy(
    "random_query",
    select=_random_picks,
    needs_labels=False,
    size_from=("labels",),
    summary="Uniformly random positions (the baseline every strategy must beat). The model is not used.",
    classifier_doc="modAL learner or estimator\n    Not used; part of the modAL signature.",
    random_state_doc="The draw.",
    x_pool_doc="The pool (only its length is used); may be ``None`` when ``labels=`` is given.",
)
entropy_query = _uncertainty_strategy(
    "entropy_query",
    scoring.entropy_scores,
    largest=True,
    summary="Highest predictive entropy first (:func:`modal_noisy.scoring.entropy_scores`).",
)
margin_query = _uncertainty_strategy(
    "margin_query",
    scoring.margin_scores,
    largest=False,
    summary="Smallest margin between the top two classes first (:func:`modal_noisy.scoring.margin_scores`).",
)
least_confidence_query = _uncertainty_strategy(
    "least_confidence_query",
    scoring.least_confidence_scores,
    largest=True,
    summary="Lowest top-class probability first (:func:`modal_noisy.scoring.least_confidence_scores`).",
)
loss_noisy_query = _make_strategy(
    "loss_noisy_query",
    scorer=lambda pool: scoring.loss_scores(pool.pred_probs(), pool.labels),
    needs_labels=True,
    options=("pred_probs",),
    size_from=("pred_probs", "labels"),
    summary="Largest loss of the given label first: the samples most likely mislabelled by the loss alone.",
    details="Scores are :func:`modal_noisy.scoring.loss_scores` (``-log p[label]``).",
)
cleanlab_query = _make_strategy(
    "cleanlab_query",
    scorer=_label_quality,
    largest=False,
    needs_labels=True,
    options=("method", "pred_probs"),
    size_from=("pred_probs", "labels"),
    summary="Lowest cleanlab label-quality score first (:func:`modal_noisy.scoring.label_quality_scores`).",
    details=(
        'With ``method="self_confidence"`` the score is ``p[label]``, a monotone function of the loss\n'
        "    ``-log p[label]``, so this query picks what :func:`loss_noisy_query` picks, in the same order;\n"
        '    ``"normalized_margin"`` (``p[label]`` minus the largest other probability) ranks differently.\n'
        "    cleanlab ranks best with out-of-sample ``pred_probs``."
    ),
)
uncertain_mislabel_query = _make_strategy(
    "uncertain_mislabel_query",
    scorer=lambda pool: scoring.uncertain_mislabel_scores(pool.pred_probs(), pool.labels),
    needs_labels=True,
    options=("pred_probs",),
    size_from=("pred_probs", "labels"),
    summary="Likely mislabelled and uncertain first: answers that fix a label and teach the model.",
    details=(
        "Scores are :func:`modal_noisy.scoring.uncertain_mislabel_scores`: ``(1 - p[label])`` times the\n"
        "    entropy of ``p``. Loss or margin rankings spend answers on samples the model already gives\n"
        "    their true class (fixed, but nothing learned); entropy spends them on uncertain samples whose\n"
        "    label may be right."
    ),
)
training_margin_query = _make_strategy(
    "training_margin_query",
    scorer=_training_margin,
    largest=False,
    needs_labels=True,
    options=("pool_indices", "pred_probs"),
    size_from=("pred_probs", "labels"),
    summary="Lowest normalized margin of the given label over training first: the likely mislabelled.",
    details=(
        "Scores are cleanlab's normalized margin (``p[label]`` minus the largest other probability,\n"
        "    :func:`modal_noisy.scoring.label_quality_scores`) of the probabilities the networks gave each\n"
        "    training sample, averaged over the epochs of training (``estimator.training_proba_``; a\n"
        "    co-teaching net records them in its training passes). A network fits a wrong label late, so\n"
        "    the average keeps the predictions it made before memorising it, where its final prediction\n"
        "    on a sample it trained on often agrees with the wrong label. ``pred_probs=`` replaces the\n"
        "    record (for any estimator)."
    ),
    classifier_doc=(
        "modAL learner or estimator with ``training_proba_`` (``CoTeachingClassifier``), unless\n"
        "    ``pred_probs=``"
    ),
    x_pool_doc="The pool (not used: the scores come from the training record).",
)
informative_mislabel_query = _make_strategy(
    "informative_mislabel_query",
    select=_informative_mislabel_picks,
    needs_labels=True,
    options=("pool_indices", "training_proba", "pred_probs", "candidates"),
    size_from=("training_proba", "labels"),
    summary="Likely mislabelled by the record of training, then least certain now: fixes that teach.",
    details=(
        "Shortlists the ``ceil(candidates * n_instances)`` samples with the lowest normalized margin of\n"
        "    the given label over training (what :func:`training_margin_query` ranks first), then returns\n"
        "    the ``n_instances`` of them whose current prediction has the highest entropy\n"
        "    (:func:`modal_noisy.scoring.entropy_scores`). The shortlist keeps the answers precise (most\n"
        "    of them fix a wrong label); the entropy spends them on the samples the model is unsure of,\n"
        "    where a fixed label changes it, rather than on those it already gives their true class.\n"
        "    ``candidates=1`` picks what :func:`training_margin_query` picks. ``training_proba=``\n"
        "    replaces the record and ``pred_probs=`` the current prediction (then ``X_pool`` may be\n"
        "    ``None``)."
    ),
    classifier_doc=(
        "modAL learner or estimator with ``training_proba_`` (``CoTeachingClassifier``) and\n"
        "    ``predict_proba``, unless ``training_proba=`` and ``pred_probs=``"
    ),
    random_state_doc="Tie breaking.",
)
adaptive_mislabel_query = _make_strategy(
    "adaptive_mislabel_query",
    select=_adaptive_mislabel_picks,
    needs_labels=True,
    options=("pool_indices", "training_proba", "pred_probs", "answered", "min_fix_rate"),
    size_from=("training_proba", "labels"),
    summary="informative_mislabel, its shortlist widened while the expert's answers keep fixing labels.",
    details=(
        "The first round picks what :func:`training_margin_query` picks: without answers there is no\n"
        "    telling how far down the record's ranking the wrong labels go. After each round, when at\n"
        "    least ``min_fix_rate`` of all answers so far changed a label, the shortlist grows 16-fold\n"
        "    (to at most 256 times ``n_instances``, most pools); when fewer did, it goes back to 1. It\n"
        "    does not grow back to a size whose last round there changed fewer than ``min_fix_rate`` of\n"
        "    its own labels.\n"
        "    The ``n_instances`` picks are the shortlist's samples of highest entropy under the current\n"
        "    model, as in :func:`informative_mislabel_query`. Where the record ranks wrong labels well,\n"
        "    the answers keep fixing labels while they move to samples that teach the model; where it\n"
        "    does not, the shortlist stays at the samples it doubts most, so the share of answers that\n"
        "    fix a label is what the record's ranking gives. ``answered`` is the history\n"
        "    (:class:`~modal_noisy.cleaning.ActiveLabelCleaner` passes it); the size is replayed from\n"
        "    it, so the strategy keeps no state."
    ),
    classifier_doc=(
        "modAL learner or estimator with ``training_proba_`` (``CoTeachingClassifier``) and\n"
        "    ``predict_proba``, unless ``training_proba=`` and ``pred_probs=``"
    ),
)
vog_noisy_query = _make_strategy(
    "vog_noisy_query",
    scorer=_vog_noisy,
    needs_labels=True,
    options=("vog", "pool_indices", "mix_ratio", "pred_probs"),
    size_from=("pred_probs", "vog", "labels"),
    summary="The samples most likely mislabelled by loss and Variance of Gradients together.",
    details=(
        "Scores are :func:`modal_noisy.scoring.vog_noisy_scores`: a ``mix_ratio`` blend of the rank of\n"
        "    the given label's loss and the rank of VoG, highest first."
    ),
    classifier_doc=("modAL learner or estimator with ``predict_proba`` (and ``vog_`` unless ``vog=``)"),
)
bald_query = _make_strategy(
    "bald_query",
    scorer=_bald,
    needs_labels=False,
    options=("n_passes", "mc_pred_probs"),
    size_from=("mc_pred_probs",),
    summary="Highest BALD mutual information first, from Monte-Carlo dropout (Gal et al. 2017).",
    details=(
        "Runs ``n_passes`` forward passes of the pool with only the network's dropout layers\n"
        "    (``nn.Dropout*``) in train mode — BatchNorm keeps its running statistics — under a torch RNG\n"
        "    forked and seeded from ``random_state`` (the global RNG is left as it was). A co-teaching net\n"
        "    uses the networks it predicts with (the sum of both networks' logits in phase 1, network 1\n"
        "    after fine-tuning). Scores are :func:`modal_noisy.scoring.bald_scores`."
    ),
    classifier_doc=(
        "modAL learner or skorch net with dropout layers\n"
        "    Functional dropout (``F.dropout`` in ``forward``) cannot be switched on; a net without\n"
        "    dropout layers raises ``ValueError``."
    ),
    random_state_doc="Seeds the dropout masks and tie breaking.",
)
coreset_query = _make_strategy(
    "coreset_query",
    select=_coreset_picks,
    needs_labels=False,
    options=("features", "X_labelled", "labelled_features", "chunk_elements"),
    size_from=("features",),
    summary="Greedy k-centre core-set (Sener & Savarese 2018): cover the pool's feature space.",
    details=(
        "Features are the penultimate-layer activations of a skorch net (the input of\n"
        "    ``modal_noisy.nets.final_linear``; network 1 of a co-teaching net) or the flattened raw\n"
        "    ``X_pool`` for any other estimator. Selection is :func:`modal_noisy.scoring.kcenter_greedy`\n"
        "    (O(N) memory), returned in pick order."
    ),
    classifier_doc="modAL learner or estimator",
    random_state_doc="First centre (when nothing is labelled) and tie breaking.",
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


def _declares(strategy: Strategy, keyword: str) -> bool:
    """Whether ``strategy`` names ``keyword`` in its signature (``**kwargs`` alone does not count)."""
    try:
        return keyword in inspect.signature(strategy).parameters
    except (TypeError, ValueError):
        return False


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
        A strategy with the same contract and the keywords of ``strategy``. Per-sample keywords
        (``labels``, ``pred_probs``, ``vog``, ``pool_indices``, ``features``, ``mc_pred_probs``) are
        sliced per class. For
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
            if _declares(strategy, "pred_probs"):  # reuse the probabilities instead of predicting again
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
    try:  # the wrapper takes the keywords the wrapped strategy takes
        query.__signature__ = inspect.signature(strategy)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
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
    "uncertain_mislabel": uncertain_mislabel_query,
    "training_margin": training_margin_query,
    "informative_mislabel": informative_mislabel_query,
    "adaptive_mislabel": adaptive_mislabel_query,
}

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
