"""The query strategies on phase 1's CoTeachingClassifier: two networks, vog_, fine-tuning."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from modAL.models import ActiveLearner
from torch import nn

from modal_noisy import _inference
from modal_noisy.nets import SmallCNN
from modal_noisy.strategies import (
    STRATEGIES,
    bald_query,
    coreset_query,
    keywords_for,
    vog_noisy_query,
)

try:
    from modal_noisy.training import CoTeachingClassifier
except ImportError:  # not re-exported yet while phase 1 is being built
    from modal_noisy.training._coteaching import CoTeachingClassifier

POOL = np.arange(0, 520, 3)  # every third training sample: a pool inside the training set


@pytest.fixture(scope="module")
def fitted(digits_noisy):
    X, y = digits_noisy.X_train, digits_noisy.y_noisy.astype(np.int64)
    net = CoTeachingClassifier(
        SmallCNN,
        module__n_classes=10,
        module__width=8,
        module__dropout=0.3,
        forget_rate=0.4,
        num_gradual=1,
        vog_window=2,
        max_epochs=3,
        batch_size=128,
        lr=0.05,
        optimizer=torch.optim.SGD,
        random_state=0,
        verbose=0,
    ).fit(X, y)
    return net, X, y


def _no_dropout(net):
    for module in (net.module_, net.module2_):
        for layer in module.modules():
            if isinstance(layer, nn.Dropout):
                layer.p = 0.0


def _flags(net):
    return [m.training for module in (net.module_, net.module2_) for m in module.modules()]


@pytest.mark.parametrize("name", list(STRATEGIES), ids=list(STRATEGIES))
def test_every_strategy_queries_a_coteaching_net_through_modal(name, fitted):
    net, X, y = fitted
    learner = ActiveLearner(estimator=net, query_strategy=STRATEGIES[name])
    extra = keywords_for(STRATEGIES[name], pool_indices=POOL)
    idx, _ = learner.query(X[POOL], n_instances=8, labels=y[POOL], random_state=0, **extra)
    assert len(np.unique(idx)) == 8 and idx.max() < len(POOL)


def test_vog_query_reads_the_pool_entries_of_vog_(fitted):
    net, X, y = fitted
    assert net.vog_.shape == (len(X),) and np.ptp(net.vog_) > 0
    learner = ActiveLearner(estimator=net, query_strategy=vog_noisy_query)
    idx, _ = learner.query(X[POOL], n_instances=10, labels=y[POOL], pool_indices=POOL, random_state=0)
    expected = vog_noisy_query(
        None, None, 10, labels=y[POOL], pred_probs=net.predict_proba(X[POOL]),
        vog=net.vog_[POOL], random_state=0,
    )  # fmt: skip
    np.testing.assert_array_equal(idx, expected)


def test_mc_dropout_uses_the_networks_the_net_predicts_with(fitted):
    net, X, y = fitted
    net = copy.deepcopy(net)
    _no_dropout(net)  # with p = 0 every pass must equal the net's own prediction
    assert net.inference_networks_ == 2
    np.testing.assert_allclose(
        _inference.mc_dropout_proba(net, X[:64], n_passes=2, seed=0)[0],
        net.predict_proba(X[:64]),
        atol=1e-5,
    )
    net.fine_tune(X[:128], y[:128], epochs=1)
    assert net.inference_networks_ == 1
    np.testing.assert_allclose(
        _inference.mc_dropout_proba(net, X[:64], n_passes=2, seed=0)[1],
        net.predict_proba(X[:64]),
        atol=1e-5,
    )


def test_bald_and_coreset_restore_both_networks_modes(fitted):
    net, X, _ = fitted
    net.module_.train()
    net.module2_.eval()
    flags = _flags(net)
    rng_state = torch.get_rng_state().clone()
    a = bald_query(net, X[POOL], 5, n_passes=4, random_state=0)
    np.testing.assert_array_equal(a, bald_query(net, X[POOL], 5, n_passes=4, random_state=0))
    coreset_query(net, X[POOL], 5, random_state=0)
    assert _flags(net) == flags
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_coreset_features_come_from_network_1(fitted):
    net, X, _ = fitted
    feats = _inference.penultimate_features(net, X[:50])
    with torch.no_grad():
        net.module_.eval()
        expected = net.module_.forward_features(torch.as_tensor(X[:50])).numpy()
    np.testing.assert_allclose(feats, expected, atol=1e-5)
    assert isinstance(net.module_, SmallCNN)
