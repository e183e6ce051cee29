"""modal_noisy.strategies through real modAL learners, skorch nets and scikit-learn models on digits."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
import torch
from modAL.models import ActiveLearner
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier

from modal_noisy import _inference, scoring, strategies
from modal_noisy.nets import SmallCNN
from modal_noisy.strategies import (
    STRATEGIES,
    adaptive_mislabel_query,
    bald_query,
    class_balanced,
    cleanlab_query,
    coreset_query,
    entropy_query,
    get_strategy,
    informative_mislabel_query,
    keywords_for,
    least_confidence_query,
    loss_noisy_query,
    margin_query,
    random_query,
    training_margin_query,
    vog_noisy_query,
)

POOL = np.arange(100, 400)  # pool = these positions of the (noisy) training set
NEEDS_LABELS = {
    "loss": loss_noisy_query,
    "vog": vog_noisy_query,
    "cleanlab": cleanlab_query,
    "training_margin": training_margin_query,
    "informative_mislabel": informative_mislabel_query,
    "adaptive_mislabel": adaptive_mislabel_query,
}


def _make_net(dropout: float = 0.3, cls=NeuralNetClassifier, **kwargs) -> NeuralNetClassifier:
    params = dict(
        module__n_classes=10,
        module__width=8,
        module__dropout=dropout,
        module__random_state=0,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.05,
        max_epochs=2,
        batch_size=128,
        train_split=None,
        verbose=0,
    )
    params.update(kwargs)
    return cls(SmallCNN, **params)


@pytest.fixture(scope="module")
def data(digits_noisy):
    X, y = digits_noisy.X_train, digits_noisy.y_noisy.astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def net_learner(data):
    """A modAL learner around a skorch SmallCNN trained on the whole noisy training set."""
    X, y = data
    learner = ActiveLearner(estimator=_make_net(), X_training=X, y_training=y)
    # what phase 1 (CoTeachingClassifier / VoGTracker) would leave behind: one VoG per training sample
    learner.estimator.vog_ = np.random.default_rng(0).random(len(X))
    # and one epoch-averaged probability row per training sample (training_margin_query reads it)
    learner.estimator.training_proba_ = np.random.default_rng(1).dirichlet(np.ones(10), size=len(X))
    return learner


@pytest.fixture(scope="module")
def lr_learner(data):
    X, y = data
    flat = X.reshape(len(X), -1)
    return ActiveLearner(
        estimator=LogisticRegression(max_iter=300), X_training=flat[:200], y_training=y[:200]
    )


def _setting(kind, data, net_learner, lr_learner, strategy=None):
    """(learner, X_pool, labels, extra keywords) for a learner kind; the extras ``strategy`` takes."""
    X, y = data
    if kind == "skorch":
        setting = net_learner, X[POOL], y[POOL], {"pool_indices": POOL}
    else:
        vog = np.random.default_rng(1).random(len(POOL))
        setting = lr_learner, X[POOL].reshape(len(POOL), -1), y[POOL], {"vog": vog}
    learner, X_pool, labels, extra = setting
    return learner, X_pool, labels, keywords_for(strategy, **extra) if strategy else extra


CASES = [
    (name, kind)
    for name in STRATEGIES
    for kind in ("skorch", "sklearn")
    # BALD needs dropout, the training-record strategies a record: tested as errors below
    if not (
        name in ("bald", "training_margin", "informative_mislabel", "adaptive_mislabel") and kind == "sklearn"
    )
]


# --------------------------------------------------------------------------------------------------
# the contract, through modAL
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_contract_through_modal(name, kind, data, net_learner, lr_learner):
    learner, X_pool, labels, extra = _setting(kind, data, net_learner, lr_learner, STRATEGIES[name])
    learner.query_strategy = STRATEGIES[name]
    idx, rows = learner.query(X_pool, n_instances=7, labels=labels, random_state=0, **extra)
    assert isinstance(idx, np.ndarray) and idx.ndim == 1 and idx.dtype.kind == "i"
    assert len(idx) == 7 and len(np.unique(idx)) == 7
    assert idx.min() >= 0 and idx.max() < len(X_pool)
    np.testing.assert_array_equal(rows, X_pool[idx])
    again, _ = learner.query(X_pool, n_instances=7, labels=labels, random_state=0, **extra)
    np.testing.assert_array_equal(idx, again)


@pytest.mark.parametrize("name", list(STRATEGIES), ids=list(STRATEGIES))
def test_n_instances_larger_than_pool_is_an_error(name, data, net_learner):
    _, X_pool, labels, extra = _setting("skorch", data, net_learner, None, STRATEGIES[name])
    with pytest.raises(ValueError, match=r"n_instances must be <= pool size \(got 500, pool has 300\)"):
        STRATEGIES[name](net_learner, X_pool, 500, labels=labels, **extra)


@pytest.mark.parametrize("name", list(NEEDS_LABELS), ids=list(NEEDS_LABELS))
def test_labels_are_required(name, data, net_learner):
    _, X_pool, _, extra = _setting("skorch", data, net_learner, None, NEEDS_LABELS[name])
    with pytest.raises(ValueError, match=r"needs the pool's current labels: call it with labels="):
        NEEDS_LABELS[name](net_learner, X_pool, 3, **extra)


# what each strategy takes besides (classifier, X_pool, n_instances, labels, random_state)
OWN_OPTIONS = {
    "random": set(),
    "entropy": {"pred_probs"},
    "least_confidence": {"pred_probs"},
    "margin": {"pred_probs"},
    "bald": {"n_passes", "mc_pred_probs"},
    "coreset": {"features", "X_labelled", "labelled_features", "chunk_elements"},
    "loss": {"pred_probs"},
    "vog": {"vog", "pool_indices", "mix_ratio", "pred_probs"},
    "cleanlab": {"method", "pred_probs"},
    "cleanlab_margin": {"method", "pred_probs"},
    "uncertain_mislabel": {"pred_probs"},
    "training_margin": {"pool_indices", "pred_probs"},
    "informative_mislabel": {"pool_indices", "training_proba", "pred_probs", "candidates"},
    "adaptive_mislabel": {"pool_indices", "training_proba", "pred_probs", "answered", "min_fix_rate"},
}
ALL_OPTIONS = set().union(*OWN_OPTIONS.values())


@pytest.mark.parametrize("name", list(STRATEGIES), ids=list(STRATEGIES))
def test_each_strategy_takes_its_own_options_only(name):
    strategy = STRATEGIES[name]
    assert strategies.accepted_keywords(strategy) == {"labels", "random_state"} | OWN_OPTIONS[name]
    for other in sorted(ALL_OPTIONS - OWN_OPTIONS[name]):
        # another strategy's option is refused, by name, before any work (no pool is even given)
        with pytest.raises(TypeError, match=rf"got an unexpected keyword argument '{other}' \(it takes"):
            strategy(None, None, 1, **{other: None})


@pytest.mark.parametrize("name", list(STRATEGIES), ids=list(STRATEGIES))
def test_unknown_keywords_are_a_type_error_naming_them(name):
    function = getattr(STRATEGIES[name], "func", STRATEGIES[name]).__name__
    with pytest.raises(
        TypeError, match=rf"{function}\(\) got unexpected keyword arguments 'a_typo', 'mix_raito'"
    ):
        STRATEGIES[name](None, None, 1, mix_raito=0.3, a_typo=1)


@pytest.mark.parametrize("name", list(STRATEGIES), ids=list(STRATEGIES))
def test_every_strategy_states_the_contract(name):
    strategy = STRATEGIES[name]
    function = getattr(strategy, "func", strategy)
    params = inspect.signature(function).parameters
    assert list(params)[:4] == ["classifier", "X_pool", "n_instances", "labels"]
    assert list(params)[-1] == "random_state" and params["n_instances"].default == 1
    assert all(params[p].default is None for p in ("labels", "random_state"))
    for section in ("Parameters", "Returns", "Raises", "random_state :", "labels :"):
        assert section in function.__doc__, section
    assert pickle.loads(pickle.dumps(function)) is function  # by reference, like a plain function
    with pytest.raises(ValueError, match=r"X_pool is None; pass the pool"):
        strategy(None, None, 1)
    with pytest.raises(ValueError, match=r"n_instances must be"):
        strategy(None, np.zeros((5, 2)), 0, labels=np.zeros(5, dtype=int))


def test_keywords_for_passes_what_a_strategy_takes():
    shared = {"pool_indices": POOL, "mix_ratio": 0.3, "chunk_elements": 1 << 16}
    assert keywords_for(entropy_query, **shared) == {}
    assert set(keywords_for(vog_noisy_query, **shared)) == {"pool_indices", "mix_ratio"}
    assert set(keywords_for(coreset_query, **shared)) == {"chunk_elements"}
    assert set(keywords_for(class_balanced(vog_noisy_query), **shared)) == {"pool_indices", "mix_ratio"}

    def own(classifier, X_pool, n_instances=1, *, labels=None, random_state=None, **kwargs):
        return np.arange(n_instances)

    assert keywords_for(own, **shared) == shared  # a strategy with **kwargs gets everything
    assert strategies.accepted_keywords(own) is None


def test_one_keyword_set_reaches_every_strategy_through_keywords_for(data, net_learner):
    # how the phase-2 loop passes one set of keywords to whichever strategy the user chose
    _, X_pool, labels, _ = _setting("skorch", data, net_learner, None)
    shared = {"pool_indices": POOL, "mix_ratio": 0.3, "chunk_elements": 1 << 16}
    for name, strategy in STRATEGIES.items():
        idx = strategy(
            net_learner, X_pool, 2, labels=labels, random_state=0, **keywords_for(strategy, **shared)
        )
        assert len(idx) == 2 and len(np.unique(idx)) == 2, name


@pytest.mark.parametrize(
    ("strategy", "score", "largest"),
    [
        (entropy_query, lambda p, y: scoring.entropy_scores(p), True),
        (margin_query, lambda p, y: scoring.margin_scores(p), False),
        (least_confidence_query, lambda p, y: scoring.least_confidence_scores(p), True),
        (loss_noisy_query, scoring.loss_scores, True),
        (cleanlab_query, scoring.label_quality_scores, False),
    ],
    ids=["entropy", "margin", "least_confidence", "loss", "cleanlab"],
)
def test_most_informative_first(strategy, score, largest, data, lr_learner):
    X, y = data
    flat = X[POOL].reshape(len(POOL), -1)
    p = lr_learner.estimator.predict_proba(flat)
    s = score(p, y[POOL])
    idx = strategy(lr_learner, flat, 25, labels=y[POOL], random_state=0)
    best = np.sort(s)[::-1][:25] if largest else np.sort(s)[:25]
    np.testing.assert_allclose(s[idx], best)
    # precomputed probabilities give the same answer without the model
    np.testing.assert_array_equal(idx, strategy(None, None, 25, labels=y[POOL], pred_probs=p, random_state=0))


def test_self_confidence_ranks_as_the_loss_does(data, lr_learner):
    """p[label] is monotone in -log p[label]: the two strategies pick the same samples, in order."""
    X, y = data
    p = lr_learner.estimator.predict_proba(X[POOL].reshape(len(POOL), -1))
    kwargs = dict(labels=y[POOL], pred_probs=p, random_state=0)
    by_loss = loss_noisy_query(None, None, 40, **kwargs)
    np.testing.assert_array_equal(cleanlab_query(None, None, 40, **kwargs), by_loss)
    assert not np.array_equal(cleanlab_query(None, None, 40, method="normalized_margin", **kwargs), by_loss)


def test_fixed_random_state_leaves_global_rngs_alone(data, net_learner):
    _, X_pool, labels, extra = _setting("skorch", data, net_learner, None)
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the legacy global RNG is the one to guard)
    torch_state = torch.get_rng_state().clone()
    for strategy in STRATEGIES.values():
        strategy(net_learner, X_pool, 3, labels=labels, random_state=0, **keywords_for(strategy, **extra))
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_random_query_is_seeded_and_spread(data):
    X, _ = data
    a = random_query(None, X, 50, random_state=0)
    np.testing.assert_array_equal(a, random_query(None, X, 50, random_state=0))
    assert not np.array_equal(a, random_query(None, X, 50, random_state=1))
    assert len(np.unique(a)) == 50


# --------------------------------------------------------------------------------------------------
# VoG for pool samples
# --------------------------------------------------------------------------------------------------


def test_vog_from_pool_indices_equals_explicit_vog(data, net_learner):
    _, X_pool, labels, _ = _setting("skorch", data, net_learner, None)
    vog = net_learner.estimator.vog_
    a = vog_noisy_query(net_learner, X_pool, 20, labels=labels, pool_indices=POOL, random_state=0)
    b = vog_noisy_query(net_learner, X_pool, 20, labels=labels, vog=vog[POOL], random_state=0)
    np.testing.assert_array_equal(a, b)


def test_vog_of_a_pool_that_is_the_training_set(data, net_learner):
    X, y = data
    a = vog_noisy_query(net_learner, X, 20, labels=y, mix_ratio=1.0, random_state=0)
    # mix_ratio=1 ranks by VoG alone: the 20 largest vog_ values
    np.testing.assert_array_equal(np.sort(a), np.sort(np.argsort(net_learner.estimator.vog_)[-20:]))


def test_vog_missing_names_the_three_options(data, net_learner, lr_learner):
    X, y = data
    flat = X[POOL].reshape(len(POOL), -1)
    with pytest.raises(ValueError, match=r"LogisticRegression has no vog_.*vog=.*pool_indices=.*whole"):
        vog_noisy_query(lr_learner, flat, 3, labels=y[POOL])
    with pytest.raises(ValueError, match=r"vog_ has 520 entries but the pool has 300 samples.*vog="):
        vog_noisy_query(net_learner, X[POOL], 3, labels=y[POOL])
    with pytest.raises(ValueError, match=r"pool_indices must lie in \[0, 520\)"):
        vog_noisy_query(net_learner, X[POOL], 3, labels=y[POOL], pool_indices=POOL + 500)
    with pytest.raises(ValueError, match=r"vog must have one entry per pool sample \(got 2, pool"):
        vog_noisy_query(net_learner, X[POOL], 3, labels=y[POOL], vog=[0.1, 0.2])


# --------------------------------------------------------------------------------------------------
# torch inference: MC dropout, modes, features
# --------------------------------------------------------------------------------------------------


def _flags(module):
    return [m.training for m in module.modules()]


@pytest.mark.parametrize("start_in_train", [True, False], ids=["train-mode", "eval-mode"])
def test_bald_restores_modes_rng_and_batchnorm(start_in_train, data, net_learner):
    net = net_learner.estimator
    net.module_.train(start_in_train)
    net.module_.stages[0][0][1].train(not start_in_train)  # a mixed state must survive too
    flags = _flags(net.module_)
    buffers = {k: v.clone() for k, v in net.module_.state_dict().items()}
    rng_state = torch.get_rng_state().clone()
    bald_query(net_learner, data[0][POOL], 5, n_passes=4, random_state=0)
    assert _flags(net.module_) == flags
    assert torch.equal(torch.get_rng_state(), rng_state)
    for key, value in net.module_.state_dict().items():  # BatchNorm running stats untouched
        assert torch.equal(value, buffers[key]), key


def test_modes_restored_even_on_error(data, net_learner):
    net = net_learner.estimator
    net.module_.train()
    flags = _flags(net.module_)
    wrong_channels = np.zeros((4, 3, 8, 8), dtype=np.float32)
    for strategy in (bald_query, coreset_query, entropy_query):
        with pytest.raises(ValueError, match=r"expected 1 input channel"):
            strategy(net_learner, wrong_channels, 2)
        assert _flags(net.module_) == flags, strategy.__name__


def test_mc_dropout_passes_are_stochastic_and_seeded(data, net_learner):
    net, X = net_learner.estimator, data[0][:50]
    mc = _inference.mc_dropout_proba(net, X, n_passes=3, seed=0)
    assert mc.shape == (3, 50, 10)
    np.testing.assert_allclose(mc.sum(axis=2), 1, atol=1e-5)
    assert not np.allclose(mc[0], mc[1])  # dropout is on
    np.testing.assert_array_equal(mc, _inference.mc_dropout_proba(net, X, n_passes=3, seed=0))
    a = bald_query(net_learner, X, 10, n_passes=5, random_state=3)
    np.testing.assert_array_equal(a, bald_query(net_learner, X, 10, n_passes=5, random_state=3))


def test_bald_without_dropout_layers_or_torch_is_an_error(data, lr_learner):
    X, y = data

    class NoDropout(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.head(torch.nn.functional.dropout(x.flatten(1), 0.5, self.training))

    net = NeuralNetClassifier(
        NoDropout, criterion=torch.nn.CrossEntropyLoss, max_epochs=1, train_split=None, verbose=0
    ).fit(X, y)
    with pytest.raises(ValueError, match=r"MC dropout needs dropout layers.*NoDropout has none"):
        bald_query(net, X, 3)
    with pytest.raises(ValueError, match=r"bald_query needs a skorch net.*LogisticRegression"):
        bald_query(lr_learner, X.reshape(len(X), -1), 3)


def test_two_network_inference_sums_logits(data):
    """A co-teaching net predicts with module_ + module2_ until inference_networks_ drops to 1."""
    X, y = data

    class TwoNetworks(NeuralNetClassifier):  # how skorch registers a second module
        def initialize_module(self):
            super().initialize_module()
            params = {**self.get_params_for("module"), "random_state": 1}
            self.module2_ = SmallCNN(**params)
            return self

    # dropout layers present but p = 0, so every MC pass is the deterministic prediction
    net = _make_net(dropout=0.0, cls=TwoNetworks, max_epochs=1).fit(X, y)
    net.inference_networks_ = 2
    x = torch.as_tensor(X[:40])
    with torch.no_grad():
        net.module_.eval(), net.module2_.eval()
        both = torch.softmax(net.module_(x) + net.module2_(x), 1).numpy()
        one = torch.softmax(net.module_(x), 1).numpy()
    mc = _inference.mc_dropout_proba(net, X[:40], n_passes=2, seed=0)
    np.testing.assert_allclose(mc[0], both, atol=1e-5)
    net.inference_networks_ = 1
    mc = _inference.mc_dropout_proba(net, X[:40], n_passes=2, seed=0)
    np.testing.assert_allclose(mc[1], one, atol=1e-5)


def test_coreset_uses_penultimate_features_of_a_net(data, net_learner):
    net, X = net_learner.estimator, data[0][POOL]
    feats = _inference.penultimate_features(net, X)
    with torch.no_grad():
        net.module_.eval()
        expected = net.module_.forward_features(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(feats, expected, atol=1e-5)
    assert feats.shape == (len(POOL), 32)
    np.testing.assert_array_equal(
        coreset_query(net_learner, X, 12, random_state=0),
        scoring.kcenter_greedy(expected, 12, random_state=0),
    )


def test_coreset_with_labelled_points_on_raw_features(data, lr_learner):
    X, _ = data
    flat = X.reshape(len(X), -1)
    got = coreset_query(lr_learner, flat[POOL], 10, X_labelled=flat[:100], random_state=0)
    expected = scoring.kcenter_greedy(flat[POOL], 10, labelled_features=flat[:100])
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="X_labelled or labelled_features, not both"):
        coreset_query(lr_learner, flat[POOL], 2, X_labelled=flat[:5], labelled_features=flat[:5])


# --------------------------------------------------------------------------------------------------
# class_balanced
# --------------------------------------------------------------------------------------------------


def test_class_balanced_spreads_over_classes(data, lr_learner):
    X, y = data
    flat, labels = X[POOL].reshape(len(POOL), -1), y[POOL]
    plain = loss_noisy_query(lr_learner, flat, 20, labels=labels, random_state=0)
    balanced = class_balanced(loss_noisy_query)
    lr_learner.query_strategy = balanced
    idx, _ = lr_learner.query(flat, n_instances=20, labels=labels, random_state=0)
    assert len(np.unique(idx)) == 20
    np.testing.assert_array_equal(np.bincount(labels[idx], minlength=10), np.full(10, 2))
    assert len(np.unique(labels[idx[:10]])) == 10  # round-robin: any prefix is balanced
    assert np.bincount(labels[plain], minlength=10).max() > 2  # unbalanced without the wrapper
    # within a class the wrapped strategy's own order is kept
    first_of_class = idx[labels[idx] == labels[idx[0]]][0]
    members = np.flatnonzero(labels == labels[idx[0]])
    own = loss_noisy_query(lr_learner, flat[members], 1, labels=labels[members], random_state=0)
    assert first_of_class == members[own[0]]


def test_class_balanced_gives_a_small_class_surplus_to_others():
    labels = np.array([0] * 10 + [1] * 10 + [2])
    p = np.full((21, 3), 1 / 3)
    idx = class_balanced(entropy_query)(None, None, 9, labels=labels, pred_probs=p, random_state=0)
    np.testing.assert_array_equal(np.bincount(labels[idx]), [4, 4, 1])
    assert labels[idx[0]] == 2  # the rarest class leads each round


def test_class_balanced_by_prediction_and_with_vog_of_the_training_set(data, net_learner):
    X, y = data
    p = net_learner.estimator.predict_proba(X)
    pred = p.argmax(1)
    idx = class_balanced(entropy_query, by="predicted")(net_learner, X, 12, random_state=0)
    counts = np.bincount(pred[idx], minlength=10)
    assert counts.max() - counts[counts > 0].min() <= 1
    # vog_ belongs to the whole training set: the wrapper resolves it before slicing the pool
    idx = class_balanced(vog_noisy_query)(net_learner, X, 10, labels=y, random_state=0)
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10), np.ones(10))


def test_class_balanced_validation():
    with pytest.raises(ValueError, match=r"by must be one of 'auto', 'labels', 'predicted'"):
        class_balanced(entropy_query, by="truth")
    with pytest.raises(ValueError, match=r"needs the pool's current labels"):
        class_balanced(entropy_query, by="labels")(None, None, 2, pred_probs=np.eye(3))


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------


def test_get_strategy():
    assert get_strategy("entropy") is entropy_query
    assert get_strategy("vog_noisy_query") is vog_noisy_query
    assert get_strategy(margin_query) is margin_query
    assert get_strategy("cleanlab_margin").keywords == {"method": "normalized_margin"}
    with pytest.raises(ValueError, match=r"strategy must be one of 'random', 'entropy'.*got 'bold'"):
        get_strategy("bold")


def test_public_names_are_exported():
    import modal_noisy

    for name in strategies.__all__:
        assert getattr(modal_noisy, name) is getattr(strategies, name)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_strategies_on_cuda(data):
    X, y = data
    net = _make_net(device="cuda").fit(X, y)
    net.module_.train()
    flags = _flags(net.module_)
    cpu_rng, cuda_rng = torch.get_rng_state().clone(), torch.cuda.get_rng_state().clone()
    for strategy in (bald_query, coreset_query, entropy_query):
        a = strategy(net, X[POOL], 10, random_state=0)
        np.testing.assert_array_equal(a, strategy(net, X[POOL], 10, random_state=0))
    assert _flags(net.module_) == flags
    assert torch.equal(torch.get_rng_state(), cpu_rng)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    mc = _inference.mc_dropout_proba(net, X[:64], n_passes=3, seed=0)
    assert mc.shape == (3, 64, 10) and not np.allclose(mc[0], mc[1])


# --------------------------------------------------------------------------------------------------
# training_margin: the record of training, not the final prediction
# --------------------------------------------------------------------------------------------------


def test_training_margin_ranks_the_pool_rows_of_training_proba_(data, net_learner):
    X, y = data
    record = net_learner.estimator.training_proba_
    idx = training_margin_query(net_learner, X[POOL], 9, labels=y[POOL], pool_indices=POOL, random_state=0)
    margin = scoring.label_quality_scores(record[POOL], y[POOL], method="normalized_margin")
    np.testing.assert_array_equal(idx, np.argsort(margin, kind="stable")[:9])
    # precomputed probabilities replace the record, for any estimator, and X_pool may then be None
    same = training_margin_query(None, None, 9, labels=y[POOL], pred_probs=record[POOL], random_state=0)
    np.testing.assert_array_equal(idx, same)


def test_training_margin_without_a_record_says_how_to_give_one(data, lr_learner):
    X, y = data
    flat = X[POOL].reshape(len(POOL), -1)
    message = (r"training_margin_query: LogisticRegression has no training_proba_\. "
               r"training_proba_ is recorded per training sample; .*pred_probs=")
    with pytest.raises(ValueError, match=message):
        training_margin_query(lr_learner, flat, 3, labels=y[POOL])


def test_training_margin_checks_pool_indices_against_the_record(data, net_learner):
    X, y = data
    message = r"pool_indices must lie in \[0, 520\) \(the length of training_proba_\)"
    with pytest.raises(ValueError, match=message):
        training_margin_query(net_learner, X[:3], 3, labels=y[:3], pool_indices=np.array([0, 1, 600]))
    with pytest.raises(ValueError, match=r"has 520 entries but the pool has 300 samples"):
        training_margin_query(net_learner, X[POOL], 3, labels=y[POOL])


# --------------------------------------------------------------------------------------------------
# informative_mislabel: the training record's shortlist, the current model's uncertainty
# --------------------------------------------------------------------------------------------------


def _pool_probabilities(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(10, 0.5), size=len(POOL))


def test_informative_mislabel_takes_the_most_uncertain_of_the_shortlist(data):
    _, y = data
    record, current = _pool_probabilities(2), _pool_probabilities(3)
    idx = informative_mislabel_query(
        None, None, 8, labels=y[POOL], training_proba=record, pred_probs=current, random_state=0
    )
    margin = scoring.label_quality_scores(record, y[POOL], method="normalized_margin")
    shortlist = np.argsort(margin, kind="stable")[:16]  # candidates=2: twice n_instances
    entropy = scoring.entropy_scores(current)
    expected = shortlist[np.argsort(-entropy[shortlist], kind="stable")[:8]]
    np.testing.assert_array_equal(idx, expected)
    # the pick is not what either score alone would pick
    assert set(idx) != set(np.argsort(margin, kind="stable")[:8])
    assert set(idx) != set(np.argsort(-entropy, kind="stable")[:8])


def test_informative_mislabel_spans_training_margin_and_entropy(data, net_learner):
    X, y = data
    current = _pool_probabilities(4)
    keywords = dict(labels=y[POOL], pool_indices=POOL, pred_probs=current, random_state=0)
    one = informative_mislabel_query(net_learner, X[POOL], 9, candidates=1, **keywords)
    margin_picks = training_margin_query(net_learner, X[POOL], 9, labels=y[POOL], pool_indices=POOL)
    assert set(one) == set(margin_picks)
    everything = informative_mislabel_query(net_learner, X[POOL], 9, candidates=len(POOL), **keywords)
    by_entropy = entropy_query(None, None, 9, pred_probs=current, random_state=0)
    np.testing.assert_array_equal(everything, by_entropy)


class _CountingModel:
    """predict_proba that remembers how many rows it was asked about."""

    def __init__(self, record: np.ndarray) -> None:
        self.training_proba_ = record
        self.rows: list[int] = []

    def predict_proba(self, X):
        self.rows.append(len(X))
        return np.full((len(X), 10), 0.1)


def test_informative_mislabel_predicts_the_shortlist_only(data):
    X, y = data
    model = _CountingModel(_pool_probabilities(5))
    idx = informative_mislabel_query(model, X[POOL], 10, labels=y[POOL], candidates=2.5, random_state=0)
    assert model.rows == [25] and len(idx) == 10


@pytest.mark.parametrize("bad", [0.5, float("inf"), float("nan"), "2", True])
def test_informative_mislabel_rejects_a_bad_candidates_factor(bad, data):
    _, y = data
    with pytest.raises(ValueError, match=r"candidates must be"):
        informative_mislabel_query(
            None, None, 3, labels=y[POOL], training_proba=_pool_probabilities(6),
            pred_probs=_pool_probabilities(7), candidates=bad,
        )


def test_informative_mislabel_without_a_record_says_how_to_give_one(data, lr_learner):
    X, y = data
    flat = X[POOL].reshape(len(POOL), -1)
    with pytest.raises(ValueError, match=r"informative_mislabel_query: LogisticRegression has no "
                                         r"training_proba_\. .*training_proba="):
        informative_mislabel_query(lr_learner, flat, 3, labels=y[POOL])


def test_informative_mislabel_runs_per_class(data, net_learner):
    X, y = data
    balanced = class_balanced(informative_mislabel_query)
    idx = balanced(net_learner, X[POOL], 10, labels=y[POOL], pool_indices=POOL, random_state=0)
    assert len(np.unique(idx)) == 10 and len(np.unique(y[POOL][idx])) == 10


# --------------------------------------------------------------------------------------------------
# adaptive_mislabel: the shortlist widens while the answers keep fixing labels
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answered", "factor"),
    [
        ([], 1),
        ([[20, 20]], 16),
        ([[20, 19]], 16),  # 0.95 of the answers changed a label: enough
        ([[20, 18]], 1),
        ([[20, 20], [20, 20]], 256),
        ([[20, 20], [20, 20], [20, 20]], 256),  # capped
        ([[20, 20], [20, 20], [20, 10]], 1),  # 50 of 60 so far: back to the top of the ranking
        ([[20, 20], [20, 10], [20, 20]], 1),  # 50 of 60 so far after round 3 too
        ([[0, 0], [20, 20]], 16),  # a round without answers says nothing
        # 16x fell short on its own round (18 of 20): after the reset (and 448 of 460 so far) the list
        # does not grow back to it, however many rounds keep fixing labels
        ([[20, 20], [20, 18], [20, 10], [400, 400]], 1),
        ([[20, 20], [20, 18], [20, 10], [400, 400], [20, 20]], 1),
        ([[20, 20], [20, 20], [20, 10], [200, 200]], 16),  # 256x fell short, 16x did not
        # the demo's history under the earlier rule: 1x, 16x (27 of 30), 256x (28 of 30), 1x
        ([[30, 30], [30, 27], [30, 28], [30, 30]], 1),
    ],
)
def test_adaptive_shortlist_size_follows_the_share_of_answers_that_fixed_a_label(answered, factor):
    history = np.asarray(answered, dtype=np.int64).reshape(-1, 2)
    assert strategies._adaptive_shortlist_factor(history, 0.95) == factor


def test_adaptive_mislabel_is_informative_mislabel_with_the_replayed_shortlist(data):
    _, y = data
    record, current = _pool_probabilities(8), _pool_probabilities(9)
    keywords = dict(labels=y[POOL], training_proba=record, pred_probs=current, random_state=0)
    first = adaptive_mislabel_query(None, None, 6, **keywords)
    by_record = training_margin_query(None, None, 6, labels=y[POOL], pred_probs=keywords["training_proba"])
    assert set(first) == set(by_record)
    for answered, candidates in [([[6, 6]], 16), ([[6, 6], [6, 6]], 256), ([[6, 6], [6, 1]], 1)]:
        widened = adaptive_mislabel_query(None, None, 6, answered=answered, **keywords)
        expected = informative_mislabel_query(None, None, 6, candidates=candidates, **keywords)
        np.testing.assert_array_equal(widened, expected)
    # a stricter target keeps the shortlist narrow after the same answers
    strict = adaptive_mislabel_query(None, None, 6, answered=[[6, 5]], min_fix_rate=1.0, **keywords)
    assert set(strict) == set(first)


def test_adaptive_mislabel_through_modal_with_a_history(data, net_learner):
    X, y = data
    net_learner.query_strategy = adaptive_mislabel_query
    idx, _ = net_learner.query(X[POOL], n_instances=5, labels=y[POOL], pool_indices=POOL, answered=[[5, 5]],
                           random_state=0)
    assert len(np.unique(idx)) == 5


@pytest.mark.parametrize(
    ("keyword", "bad", "message"),
    [
        ("answered", [[5, 6]], r"answered must hold 0 <= labels changed <= labels given in every row"),
        ("answered", [[-1, 0]], r"answered must hold 0 <= labels changed"),
        ("answered", [5, 5], r"answered must be integer pairs .* shape \(2,\)"),
        ("answered", [[5.0, 5.0]], r"answered must be integer pairs .* dtype float64"),
        ("min_fix_rate", 0.0, r"min_fix_rate must be in \(0, 1\] \(got 0.0\)"),
        ("min_fix_rate", 1.5, r"min_fix_rate must be in \(0, 1\]"),
        ("min_fix_rate", float("nan"), r"min_fix_rate must be in"),
    ],
)
def test_adaptive_mislabel_rejects_bad_history_and_target(keyword, bad, message, data):
    _, y = data
    with pytest.raises(ValueError, match=message):
        adaptive_mislabel_query(
            None, None, 3, labels=y[POOL], training_proba=_pool_probabilities(6),
            pred_probs=_pool_probabilities(7), **{keyword: bad},
        )
