"""Oracles: who gives the correct label of a queried sample.

An oracle is a callable ``oracle(indices, *, current_labels, round_index) -> labels``: ``indices`` are
positions into the full training set, ``current_labels`` the queried samples' current labels (aligned
with ``indices``; the full label vector of the training set is accepted too), ``round_index`` the
cleaning round; it returns int64 labels in the order of ``indices``.

- :class:`SimulatedOracle` knows the truth (benchmarks).
- :class:`NoisyOracle` is an imperfect expert: wrong with a given probability, reproducibly.
- :class:`~modal_noisy.cleaning.file_oracle.FileOracle` is the human workflow (its own module): it
  writes each round's queue as a CSV plus a PNG contact sheet and reads the expert's answers back.
"""

from __future__ import annotations

import abc

import numpy as np
from sklearn.utils import check_random_state

from modal_noisy._validation import check_fraction, check_indices, check_labels, check_positive_int

__all__ = ["NoisyOracle", "Oracle", "SimulatedOracle"]


class Oracle(abc.ABC):
    """Base class of the oracles: ``oracle(indices, *, current_labels, round_index) -> labels``.

    Attributes
    ----------
    n_classes : int or None
        Number of classes, where known.
    """

    n_classes: int | None = None

    @abc.abstractmethod
    def __call__(
        self,
        indices: object,
        *,
        current_labels: object = None,
        round_index: int = 0,
    ) -> np.ndarray:
        """Return the oracle's labels (int64) for the training samples at ``indices``."""


class _AnswerTableOracle(Oracle):
    """An oracle whose answer for every training sample is fixed in advance, in ``answers``.

    Answering is then a lookup, the same for every call order and grouping, so a resumed run gets
    the answers an uninterrupted one got.
    """

    answers: np.ndarray

    def __call__(
        self,
        indices: object,
        *,
        current_labels: object = None,
        round_index: int = 0,
    ) -> np.ndarray:
        idx = check_indices(indices, self.answers.size)
        return self.answers[idx].copy()


class SimulatedOracle(_AnswerTableOracle):
    """A perfect expert that returns the true labels (for benchmarks and tests).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        The true labels of the whole training set.
    n_classes : int, optional
        Number of classes; default ``y_true.max() + 1``.

    Attributes
    ----------
    answers : ndarray of shape (n_samples,)
        The answer the oracle gives for each sample: ``y_true``.
    """

    def __init__(self, y_true: object, *, n_classes: int | None = None) -> None:
        if n_classes is not None:
            n_classes = check_positive_int(n_classes, "n_classes")
        self.y_true = check_labels(y_true, "y_true", n_classes=n_classes)
        self.n_classes = n_classes if n_classes is not None else int(self.y_true.max(initial=-1)) + 1
        self.answers = self.y_true

    def __repr__(self) -> str:
        return f"SimulatedOracle(n_samples={self.y_true.size}, n_classes={self.n_classes})"


class NoisyOracle(_AnswerTableOracle):
    """An imperfect expert: with probability ``error_rate`` it answers a uniformly random other class.

    The answer for a sample depends only on ``random_state`` and the sample's index, never on the
    order or the grouping of the calls, so a resumed run gets the same answers as an uninterrupted
    one: every answer is drawn once, at construction.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        The true labels of the whole training set.
    error_rate : float in [0, 1]
        Probability that an answer is wrong.
    n_classes : int, optional
        Number of classes; default ``y_true.max() + 1``. Must be >= 2 when ``error_rate > 0``.
    random_state : int, RandomState instance or None
        Seed of the answers.

    Attributes
    ----------
    answers : ndarray of shape (n_samples,)
        The answer the oracle gives for each sample.
    is_wrong : ndarray of bool, shape (n_samples,)
        Where ``answers`` differs from the truth.
    """

    def __init__(
        self,
        y_true: object,
        error_rate: float,
        *,
        n_classes: int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.error_rate = check_fraction(error_rate, "error_rate")
        if n_classes is not None:
            n_classes = check_positive_int(n_classes, "n_classes")
        self.y_true = check_labels(y_true, "y_true", n_classes=n_classes)
        self.n_classes = n_classes if n_classes is not None else int(self.y_true.max(initial=-1)) + 1
        if self.error_rate > 0 and self.n_classes < 2:
            raise ValueError(
                f"n_classes must be >= 2 for a NoisyOracle with error_rate > 0 (got {self.n_classes})"
            )
        self.random_state = random_state
        rng = check_random_state(random_state)
        n = self.y_true.size
        # both draws are made for every sample so that answer i depends only on (seed, i)
        flip = rng.random_sample(n) < self.error_rate
        shift = rng.randint(1, max(self.n_classes, 2), size=n)
        wrong = (self.y_true + shift) % max(self.n_classes, 1)
        self.answers = np.where(flip, wrong, self.y_true).astype(np.int64)
        self.answers.flags.writeable = False
        self.is_wrong = self.answers != self.y_true
        self.is_wrong.flags.writeable = False

    def __repr__(self) -> str:
        return (
            f"NoisyOracle(n_samples={self.y_true.size}, error_rate={self.error_rate:g}, "
            f"n_classes={self.n_classes}, random_state={self.random_state!r})"
        )
