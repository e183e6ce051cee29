"""Each modAL fix in modal_noisy._compat, shown on the installed versions."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn.utils
from modAL.models import ActiveLearner
from modAL.uncertainty import uncertainty_sampling
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

import modal_noisy  # noqa: F401  (applies the fixes)
from modal_noisy import _compat


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 4)) + y[:, None]
    return X, y


def test_apply_is_idempotent():
    first = _compat.apply()
    assert _compat.apply() == first


def test_force_all_finite_fix_matches_installed_sklearn():
    needs_fix = "force_all_finite" not in inspect.signature(sklearn.utils.check_X_y).parameters
    assert ("check_X_y_force_all_finite" in _compat.APPLIED) == needs_fix


def test_learner_fits_teaches_queries_without_warnings(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner = ActiveLearner(LogisticRegression(), X_training=X[:30], y_training=y[:30])
        learner.teach(X[30:40], y[30:40])
        idx, rows = learner.query(X[40:], n_instances=5)
    assert len(set(idx.tolist())) == 5
    assert np.array_equal(rows, X[40:][idx])
    assert len(learner.X_training) == 40


def test_non_finite_input_still_rejected(blobs):
    X, y = blobs
    X = X.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ActiveLearner(LogisticRegression(), X_training=X, y_training=y)


@pytest.mark.parametrize("by_keyword", [True, False], ids=["keyword", "positional"])
def test_learner_clones_and_reprs(blobs, by_keyword):
    X, y = blobs
    if by_keyword:
        learner = ActiveLearner(LogisticRegression(C=0.5), bootstrap_init=False)
    else:
        learner = ActiveLearner(LogisticRegression(C=0.5), uncertainty_sampling, None, None, False)
    assert learner.get_params()["bootstrap_init"] is False
    assert "LogisticRegression(C=0.5)" in repr(learner)
    copy = clone(learner)
    assert copy is not learner
    assert copy.get_params()["estimator__C"] == 0.5
    copy.teach(X, y)
    assert copy.predict(X[:3]).shape == (3,)


def test_teach_with_dataframe_uses_concat(blobs):
    X, y = blobs
    frame = pd.DataFrame(X, columns=list("abcd"))
    learner = ActiveLearner(LogisticRegression(), X_training=frame.iloc[:30], y_training=y[:30])
    learner.teach(frame.iloc[30:35], y[30:35])
    assert isinstance(learner.X_training, pd.DataFrame)
    assert list(learner.X_training.index) == list(range(35))
