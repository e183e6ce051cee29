"""CoTeachingClassifier: skorch / scikit-learn contracts, per-sample state, validation, callbacks.

Tiny networks and a few epochs: these check behaviour, not accuracy (see test_coteaching_quality.py).
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.utils import estimator_checks
from skorch import NeuralNetClassifier
from skorch.callbacks import Checkpoint, EarlyStopping, LoadInitState, LRScheduler, ProgressBar
from skorch.dataset import Dataset, ValidSplit
from torch import nn

from modal_noisy.decision import label_prior
from modal_noisy.nets import SmallCNN
from modal_noisy.training import (
    CoTeachingClassifier,
    InputStandardizer,
    SelectionMonitor,
    VoGTracker,
)

N = 203  # 32-sample batches leave a last batch of 11


class TinyMLP(nn.Module):
    """No BatchNorm, no dropout: a sample's output does not depend on its batch."""

    def __init__(self, n_classes: int = 10, hidden: int = 8, dtype: str = "float32") -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, n_classes)
        self.to(getattr(torch, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.to(self.head.weight.dtype)))


@pytest.fixture(scope="module")
def data(digits_noisy):
    return digits_noisy.X_train[:N], digits_noisy.y_noisy[:N], digits_noisy.is_noisy[:N]


def make_net(module: type[nn.Module] = SmallCNN, **kwargs) -> CoTeachingClassifier:
    params = dict(
        module=module,
        module__n_classes=10,
        optimizer=torch.optim.AdamW,
        lr=1e-2,
        batch_size=32,
        max_epochs=3,
        num_gradual=1,
        vog_window=2,
        forget_rate=0.4,
        class_aware=False,  # the paper's per-batch rule, whose counts these tests check
        random_state=0,
        verbose=0,
        callbacks=[("standardize", InputStandardizer())],
    )
    if module is SmallCNN:
        params["module__width"] = 4
    params.update(kwargs)
    return CoTeachingClassifier(**params)


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    return make_net(selection="loss+vog").fit(X, y)


# ---------------------------------------------------------------- learned state


def test_fitted_attributes(fitted):
    net = fitted
    assert net.clean_mask_.dtype == bool and net.clean_mask_.shape == (N,)
    assert net.sample_loss_.dtype == np.float32 and net.sample_loss_.shape == (N,)
    assert net.vog_.dtype == np.float32 and net.vog_.shape == (N,)
    assert np.isfinite(net.sample_loss_).all() and np.isfinite(net.vog_).all()
    assert (net.vog_ > 0).all()  # window of 2 full after 3 epochs
    assert net.noise_rate_ == 0.4
    assert net.class_noise_rates_.shape == (10,)
    np.testing.assert_array_equal(net.classes_, np.arange(10))
    assert net.inference_networks_ == 2
    # the forget rate ramps 0 -> 0.4 over num_gradual=1 epoch; last epoch keeps floor(0.6 n) per batch
    assert net.history[:, "forget_rate"] == [0.0, 0.4, 0.4]
    expected = sum(int(0.6 * b) for b in [32] * 6 + [11]) / N
    assert net.history[-1, "selected_frac"] == pytest.approx(expected)
    assert net.clean_mask_.sum() == round(expected * N)
    assert net.history[:, "vog_mixing"] == [False, False, True]
    assert net.history[-1, "train_loss"] == pytest.approx(
        (net.history[-1, "train_loss1"] + net.history[-1, "train_loss2"]) / 2, rel=1e-5
    )
    for key in ("train_loss", "train_loss1", "train_loss2", "noise_rate", "dur"):
        assert len(net.history[:, key]) == 3


def test_two_networks_differ_and_have_own_optimizers(fitted):
    p1 = torch.nn.utils.parameters_to_vector(fitted.module_.parameters())
    p2 = torch.nn.utils.parameters_to_vector(fitted.module2_.parameters())
    assert p1.shape == p2.shape and not torch.allclose(p1, p2)
    assert fitted.optimizer_ is not fitted.optimizer2_
    own = {id(p) for g in fitted.optimizer2_.param_groups for p in g["params"]}
    assert own == {id(p) for p in fitted.module2_.parameters()}


def test_predict_proba_is_softmax_of_summed_logits(fitted, data):
    X = data[0][:50]
    proba = fitted.predict_proba(X)
    with torch.no_grad():
        x = torch.as_tensor(X)
        logits = fitted.module_.eval()(x) + fitted.module2_.eval()(x)
    np.testing.assert_allclose(proba, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fitted.predict(X), proba.argmax(1))


def test_balanced_decision_divides_by_the_training_prior(fitted, data):
    X, y, _ = data
    np.testing.assert_allclose(fitted.class_prior_, np.bincount(y, minlength=10) / len(y))
    proba = fitted.predict_proba(X)
    balanced = copy.deepcopy(fitted)
    balanced.decision = "balanced"  # the decision rule only acts in predict: no refit needed
    pred = balanced.predict(X)
    # two networks' summed logits: a product of two posteriors, so the prior goes out twice
    np.testing.assert_array_equal(pred, np.argmax(np.log(proba) - 2 * np.log(fitted.class_prior_), axis=1))
    assert fitted.decision_prior_ is None
    squared = fitted.class_prior_**2
    np.testing.assert_allclose(balanced.decision_prior_, squared / squared.sum())
    changed = pred != proba.argmax(1)
    assert changed.any()
    # every changed decision moves to a rarer class than the arg-max's
    prior = fitted.class_prior_
    assert (prior[pred[changed]] < prior[proba.argmax(1)[changed]]).all()


def test_balanced_decision_after_fine_tuning_network_one_divides_its_labels_prior_once(fitted, data):
    X, y, _ = data
    net = copy.deepcopy(fitted).set_params(decision="balanced")
    tuned = np.flatnonzero(y < 5)[:64]  # half the classes: a prior far from the fit's
    net.fine_tune(X[tuned], y[tuned], epochs=1, networks="first")
    assert net.inference_networks_ == 1
    prior = label_prior(y[tuned], 10)
    assert not np.allclose(prior, fitted.class_prior_)
    np.testing.assert_allclose(net.class_prior_, prior)
    np.testing.assert_allclose(net.decision_prior_, prior)
    expected = np.argmax(np.log(net.predict_proba(X)) - np.log(prior), axis=1)
    np.testing.assert_array_equal(net.predict(X), expected)


def test_fine_tune_of_a_dataset_without_labels(fitted, data):
    X, y, _ = data
    balanced = copy.deepcopy(fitted).set_params(decision="balanced")
    before = [p.clone() for p in balanced.module_.parameters()]
    with pytest.raises(ValueError, match=r"decision='balanced' needs the labels fine_tune trains on.*y=None"):
        balanced.fine_tune(Dataset(X[:64], y[:64]), None, epochs=1)
    assert all(torch.equal(p, q) for p, q in zip(balanced.module_.parameters(), before, strict=True))
    plain = copy.deepcopy(fitted)
    plain.fine_tune(Dataset(X[:64], y[:64]), None, epochs=1)  # the arg-max needs no prior
    np.testing.assert_allclose(plain.class_prior_, fitted.class_prior_)


def test_class_prior_gets_a_pseudo_count_for_absent_classes(data):
    X, y, _ = data
    keep = y != 9
    net = make_net(max_epochs=1, decision="balanced").fit(X[keep], y[keep])
    counts = np.bincount(y[keep], minlength=10).astype(float)
    counts[9] = 1
    np.testing.assert_allclose(net.class_prior_, counts / counts.sum())
    assert net.predict(X[:20]).shape == (20,)


def test_balanced_decision_after_load_params_asks_for_the_prior(fitted, data, tmp_path):
    fitted.save_params(f_params=tmp_path / "p.pt")
    restored = make_net(decision="balanced").initialize()
    restored.load_params(f_params=tmp_path / "p.pt")
    with pytest.raises(ValueError, match=r"decision='balanced' needs class_prior_.*after load_params"):
        restored.predict(data[0][:5])
    restored.class_prior_ = fitted.class_prior_
    expected = np.argmax(np.log(fitted.predict_proba(data[0][:5])) - 2 * np.log(fitted.class_prior_), axis=1)
    np.testing.assert_array_equal(restored.predict(data[0][:5]), expected)


def test_balanced_decision_needs_labels_with_a_dataset(data):
    X, y, _ = data
    with pytest.raises(ValueError, match=r"decision='balanced' needs the training labels .*got y=None"):
        make_net(decision="balanced").fit(Dataset(X, y), None)


def test_per_sample_state_is_keyed_by_dataset_index(data):
    """With frozen weights and a batch-independent net, the losses recorded during shuffled training
    (last batch smaller) must equal each sample's loss computed directly, in X's order."""
    X, y, _ = data
    net = make_net(TinyMLP, optimizer=torch.optim.SGD, lr=0.0, callbacks=None, max_epochs=2)
    net.fit(X, y)
    with torch.no_grad():
        expected = nn.functional.cross_entropy(
            net.module_(torch.as_tensor(X)), torch.as_tensor(y), reduction="none"
        )
    np.testing.assert_allclose(net.sample_loss_, expected.numpy(), rtol=1e-5)
    assert bool(net.run_state_.seen.all())
    assert net.run_state_.epochs_seen.tolist() == [2] * N


def test_same_seed_same_result_and_global_rng_untouched(data):
    X, y, _ = data
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002
    a = make_net(selection="loss+random", class_aware=True).fit(X, y)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()  # noqa: NPY002
    b = make_net(selection="loss+random", class_aware=True).fit(X, y)
    c = make_net(selection="loss+random", class_aware=True, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.clean_mask_, b.clean_mask_)
    np.testing.assert_array_equal(a.vog_, b.vog_)
    np.testing.assert_array_equal(a.sample_loss_, b.sample_loss_)
    assert not np.array_equal(a.sample_loss_, c.sample_loss_)


# ---------------------------------------------------------------- VoG against autograd


class TinyBatchNormMLP(nn.Module):
    """BatchNorm before the head: train mode (batch statistics) and eval mode (running ones) differ."""

    def __init__(self, n_classes: int = 10, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.BatchNorm1d(hidden), nn.Tanh())
        self.head = nn.Linear(hidden, n_classes)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.to(torch.float64)))


def _autograd_rows(module: nn.Module, X: np.ndarray, y: np.ndarray, *, train: bool) -> torch.Tensor:
    """Each sample's gradient w.r.t. its label's row of [head.weight | head.bias], by autograd."""
    module = copy.deepcopy(module).train(train)  # a train-mode pass must not move the net's statistics
    head = module.head
    logits = module(torch.as_tensor(X))  # the whole set as one batch
    rows = []
    for i in range(len(y)):
        loss = nn.functional.cross_entropy(logits[i : i + 1], torch.as_tensor(y[i : i + 1]))
        g_w, g_b = torch.autograd.grad(loss, [head.weight, head.bias], retain_graph=True)
        rows.append(torch.cat([g_w[y[i]], g_b[y[i]].view(1)]))
    return torch.stack(rows)


@pytest.mark.parametrize("source", ["training", "checkpoint"])
def test_stored_gradients_match_autograd_float64(data, source):
    """The training source records the train-mode forward pass, the checkpoint source an eval-mode
    pass over the final weights: on a BatchNorm network the two differ, so each must match its own."""
    X, y, _ = data
    X, y = X[:64], y[:64]
    # one batch of all 64 samples, so the train-mode batch statistics are those of exactly these
    # samples whatever the shuffle; lr=0 keeps the weights the training pass saw
    lr = 0.0 if source == "training" else 0.05
    net = make_net(
        TinyBatchNormMLP,
        optimizer=torch.optim.SGD,
        lr=lr,
        batch_size=64,
        callbacks=None,
        vog_source=source,
        vog_dtype="float64",
        max_epochs=2,
    )
    net.fit(X, y)
    buf = net.run_state_.vog1
    last = (buf.count - 1) % buf.window
    stored = buf.buffer[torch.arange(len(y)), last]
    train_rows = _autograd_rows(net.module_, X, y, train=True)
    eval_rows = _autograd_rows(net.module_, X, y, train=False)
    assert float((train_rows - eval_rows).abs().max() / eval_rows.abs().max()) > 1e-2  # modes differ
    expected = train_rows if source == "training" else eval_rows
    assert stored.dtype == torch.float64
    assert float((stored - expected).abs().max() / expected.abs().max()) <= 1e-6


# ---------------------------------------------------------------- modes


@pytest.mark.parametrize(
    "params",
    [
        {"selection": "loss", "vog_source": None},
        {"selection": "loss+vog", "vog_source": "checkpoint"},
        {"selection": "loss+random", "class_aware": True},
        {"selection": "loss+vog", "class_aware": True, "vog_dtype": "float16"},
        {"forget_rate": "auto", "mix_ratio": 1.0},
        {"forget_rate": 0.0},
    ],
    ids=[
        "loss-no-vog",
        "vog-checkpoint",
        "random-class-aware",
        "vog-class-aware-fp16",
        "auto",
        "no-forgetting",
    ],
)
def test_modes_fit(data, params):
    X, y, _ = data
    net = make_net(**params).fit(X, y)
    assert net.clean_mask_.any() and np.isfinite(net.vog_).all()
    assert 0.0 <= net.noise_rate_ <= 1.0
    if params.get("vog_source", "training") is None:
        assert (net.vog_ == 0).all()
    if params.get("forget_rate") == 0.0:
        assert net.clean_mask_.all()


def test_class_aware_never_empties_a_class(data):
    X, y, _ = data
    net = make_net(class_aware=True, forget_rate=0.9, max_epochs=4).fit(X, y)
    for c in np.unique(y):
        assert net.clean_mask_[y == c].any(), f"class {c} emptied"


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"forget_rate": 1.5}, r"forget_rate must be in \[0, 1\) \(got 1.5\)"),
        ({"forget_rate": "half"}, r"forget_rate must be a number in \[0, 1\) or 'auto' \(got 'half'\)"),
        ({"mix_ratio": -0.1}, r"mix_ratio must be in \[0, 1\] \(got -0.1\)"),
        ({"vog_window": 1}, r"vog_window must be >= 2 \(got 1\)"),
        ({"selection": "vog"}, r"selection must be one of .* \(got 'vog'\)"),
        ({"vog_source": "backpack"}, r"vog_source must be one of .* \(got 'backpack'\)"),
        ({"vog_source": None}, r"vog_source must not be None with selection='loss\+vog'"),
        ({"class_reserve": 2.0}, r"class_reserve must be in \[0, 1\] \(got 2.0\)"),
        ({"decision": "bayes"}, r"decision must be one of .* \(got 'bayes'\)"),
        ({"criterion": nn.NLLLoss}, r"criterion must be torch.nn.CrossEntropyLoss .*NLLLoss"),
    ],
    ids=[
        "forget-rate",
        "forget-rate-str",
        "mix-ratio",
        "vog-window",
        "selection",
        "vog-source",
        "vog-none",
        "class-reserve",
        "decision",
        "criterion",
    ],
)
def test_bad_parameters(data, params, match):
    X, y, _ = data
    with pytest.raises(ValueError, match=match):
        make_net(**params).fit(X, y)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, 10, y)), r"y must lie in \[0, 10\).*got label 10"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, -1, y)), r"y must be >= 0 \(got label -1\)"),
        (lambda X, y: (X, y[:-1]), r"X and y must have the same length \(got 203 and 202\)"),
        (
            lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y),
            r"X must not contain NaN or infinity \(got 1 non-finite",
        ),
        (lambda X, y: (torch.full(X.shape, float("inf")), y), r"X must not contain NaN or infinity"),
    ],
    ids=["label-too-large", "negative-label", "length-mismatch", "nan-array", "inf-tensor"],
)
def test_bad_data(data, mutate, match):
    X, y, _ = data
    X_bad, y_bad = mutate(X, y)
    with pytest.raises(ValueError, match=match):
        make_net().fit(X_bad, y_bad)


# ---------------------------------------------------------------- scikit-learn and skorch


def test_clone_get_set_params_round_trip():
    net = make_net(selection="loss+random", mix_ratio=0.3, class_aware=True)
    params = net.get_params()
    for key in (
        "forget_rate",
        "selection",
        "mix_ratio",
        "vog_window",
        "vog_source",
        "class_aware",
        "decision",
        "random_state",
        "num_gradual",
        "exponent",
        "class_reserve",
        "vog_dtype",
    ):
        assert key in params
    twin = clone(net)
    assert twin.get_params()["mix_ratio"] == 0.3 and twin.selection == "loss+random"
    twin.set_params(mix_ratio=0.5, module__width=8)
    assert twin.mix_ratio == 0.5 and twin.module__width == 8
    assert net.mix_ratio == 0.3


def test_pickle_fitted_net(fitted, data):
    X = data[0][:40]
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(restored.predict_proba(X), fitted.predict_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(restored.clean_mask_, fitted.clean_mask_)
    assert restored.run_state_.vog1.buffer.device.type == "cpu"


def test_grid_search_over_mix_ratio(data):
    """GridSearchCV clones the net per candidate, scores each on the folds and refits the best on all
    the data; mix_ratio reaches training (three epochs fill the two-epoch VoG window, so the third
    mixes VoG into the selection and the candidates select differently)."""
    X, y, _ = data
    grid, cv = [0.0, 1.0], StratifiedKFold(2)
    search = GridSearchCV(make_net(max_epochs=3), {"mix_ratio": grid}, cv=cv, scoring="accuracy")
    search.fit(X, y)
    for i, mix_ratio in enumerate(grid):  # each candidate scored as a net with that mix_ratio scores
        by_hand = cross_val_score(
            make_net(max_epochs=3, mix_ratio=mix_ratio), X, y, cv=cv, scoring="accuracy"
        )
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(by_hand.mean())
    best = search.best_estimator_
    assert best.mix_ratio == grid[int(np.argmax(search.cv_results_["mean_test_score"]))]
    assert best.history[-1]["vog_mixing"] and best.clean_mask_.shape == (N,)
    other = make_net(max_epochs=3, mix_ratio=1.0 - best.mix_ratio).fit(X, y)
    assert not np.array_equal(other.clean_mask_, best.clean_mask_)


# scikit-learn's own checks that need no fit on its random tabular data (a CNN takes images)
SKLEARN_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_get_params_invariance",
    "check_parameters_default_constructible",
]


@pytest.mark.parametrize("check", SKLEARN_CHECKS)
def test_sklearn_estimator_checks(check):
    getattr(estimator_checks, check)("CoTeachingClassifier", make_net(selection="loss+random"))


def test_get_params_round_trip_and_clone_of_a_fitted_net(fitted):
    params = fitted.get_params(deep=False)
    rebuilt = CoTeachingClassifier(**params)
    assert rebuilt.get_params(deep=False) == params  # every __init__ argument is stored as given
    assert rebuilt.set_params(**params).get_params(deep=False) == params
    assert repr(rebuilt) == repr(CoTeachingClassifier(**params))
    twin = clone(fitted)
    assert twin.get_params(deep=False).keys() == params.keys()
    assert not twin.initialized_ and not hasattr(twin, "clean_mask_")  # a clone is unfitted


def test_pickle_round_trip_of_an_unfitted_net(data):
    X, y, _ = data
    net = make_net(max_epochs=1)
    restored = pickle.loads(pickle.dumps(net))
    before, after = net.get_params(deep=False), restored.get_params(deep=False)
    callbacks = before.pop("callbacks"), after.pop("callbacks")  # copies: compare names and types
    assert after == before
    assert [[(name, type(cb)) for name, cb in c] for c in callbacks] == [
        [(name, type(cb)) for name, cb in callbacks[0]]
    ] * 2
    np.testing.assert_array_equal(restored.fit(X, y).clean_mask_, net.fit(X, y).clean_mask_)


def test_progress_bar_and_print_log(data, capsys):
    X, y, flags = data
    callbacks = [ProgressBar(), SelectionMonitor(flags)]
    make_net(verbose=1, callbacks=callbacks).fit(X, y)
    out = capsys.readouterr().out
    assert "selection_precision" in out and "train_loss" in out


def test_checkpoint_and_load_init_state_restore_both_networks(data, tmp_path):
    X, y, _ = data
    cp = Checkpoint(dirname=str(tmp_path), monitor=None)
    make_net(callbacks=[cp]).fit(X, y)
    assert (tmp_path / "params_module2.pt").exists() and (tmp_path / "optimizer_optimizer2.pt").exists()
    saved = torch.load(tmp_path / "params_module2.pt", weights_only=True)
    resumed = make_net(
        callbacks=[LoadInitState(Checkpoint(dirname=str(tmp_path), monitor=None))],
        max_epochs=0,
        random_state=5,
    )
    resumed.fit(X, y)
    for key, value in saved.items():
        assert torch.equal(resumed.module2_.state_dict()[key], value)
    assert len(resumed.history) == 3  # history came back too


def test_early_stopping_on_train_loss(data):
    X, y, _ = data
    net = make_net(
        max_epochs=20, callbacks=[EarlyStopping(monitor="train_loss", patience=1, threshold=100.0)]
    )
    net.fit(X, y)
    assert len(net.history) == 2


def test_valid_split_early_stopping_and_held_out_samples(data):
    X, y, _ = data
    net = make_net(
        train_split=ValidSplit(0.25, random_state=0),
        max_epochs=20,
        callbacks=[EarlyStopping(monitor="valid_loss", patience=1, threshold=100.0)],
    )
    net.fit(X, y)
    assert len(net.history) == 2 and "valid_acc" in net.history[-1]
    held_out = ~net.run_state_.is_train.numpy()
    assert held_out.sum() == pytest.approx(N / 4, abs=2)
    assert not net.clean_mask_[held_out].any()
    assert np.isfinite(net.sample_loss_).all() and (net.sample_loss_[held_out] > 0).all()


def test_lr_scheduler_drives_both_optimizers(data):
    X, y, _ = data
    sched = LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=3)
    net = make_net(callbacks=[sched], lr=0.1).fit(X, y)
    lrs = net.history[:, "event_lr"]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] < lrs[0]
    lr1 = net.optimizer_.param_groups[0]["lr"]
    assert lr1 < 0.1 and net.optimizer2_.param_groups[0]["lr"] == pytest.approx(lr1)


def test_dataset_input(data):
    X, y, _ = data
    net = make_net().fit(Dataset(X, y), None)
    assert net.clean_mask_.shape == (N,)
    assert net.predict(X[:5]).shape == (5,)


# ---------------------------------------------------------------- phase 2


def test_fine_tune_uses_network_one_alone(data):
    X, y, _ = data
    nets = [make_net().fit(X, y) for _ in range(2)]
    before2 = [p.clone() for p in nets[0].module2_.parameters()]
    for net in nets:
        net.fine_tune(X[:120], y[:120], epochs=3, lr=0.05, batch_size=40)
    a, b = nets
    assert a.inference_networks_ == 1 and len(a.fine_tune_losses_) == 3
    for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        assert torch.equal(p, q)  # deterministic for the seed
    for p, q in zip(a.module2_.parameters(), before2, strict=True):
        assert torch.equal(p, q)  # network 2 untouched
    with torch.no_grad():
        logits = a.module_.eval()(torch.as_tensor(X[:30]))
    np.testing.assert_allclose(a.predict_proba(X[:30]), torch.softmax(logits, 1).numpy(), rtol=1e-5)
    a.partial_fit(X, y)  # co-teaching again: both networks predict
    assert a.inference_networks_ == 2


def test_fine_tune_both_networks_keeps_the_ensemble(fitted, data):
    X, y, _ = data
    net = pickle.loads(pickle.dumps(fitted))
    before = [p.clone() for p in net.module2_.parameters()]
    net.fine_tune(X[:100], y[:100], epochs=2, networks="both")
    assert net.inference_networks_ == 2
    assert any(not torch.equal(p, q) for p, q in zip(net.module2_.parameters(), before, strict=True))
    with torch.no_grad():
        x = torch.as_tensor(X[:20])
        logits = net.module_.eval()(x) + net.module2_.eval()(x)
    np.testing.assert_allclose(net.predict_proba(X[:20]), torch.softmax(logits, 1).numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, r"epochs must be >= 1"),
        ({"epochs": 1, "lr": 0.0}, r"lr must be in \(0, inf\]"),
        ({"epochs": 1, "networks": "second"}, r"networks must be one of 'first', 'both' \(got 'second'\)"),
    ],
    ids=["epochs", "lr", "networks"],
)
def test_fine_tune_validation(fitted, data, kwargs, match):
    X, y, _ = data
    with pytest.raises(ValueError, match=match):
        fitted.fine_tune(X, y, **kwargs)


# ---------------------------------------------------------------- callbacks


def test_selection_monitor_figures(data):
    X, y, flags = data
    net = make_net(callbacks=[SelectionMonitor(flags)]).fit(X, y)
    mask, clean = net.clean_mask_, ~flags
    h = net.history[-1]
    assert h["selection_precision"] == pytest.approx(clean[mask].mean())
    assert h["selection_recall"] == pytest.approx(mask[clean].mean())
    recall_c = [mask[clean & (y == c)].mean() for c in range(10)]
    np.testing.assert_allclose(h["selection_recall_per_class"], recall_c)
    assert h["selection_min_class_recall"] == pytest.approx(min(recall_c))
    assert len(h["selection_precision_per_class"]) == 10


def test_selection_monitor_validation(data):
    X, y, flags = data
    with pytest.raises(ValueError, match=r"is_noisy must have one flag per training sample"):
        make_net(callbacks=[SelectionMonitor(flags[:10])]).fit(X, y)
    with pytest.raises(ValueError, match=r"is_noisy must be a 1-D boolean array"):
        make_net(callbacks=[SelectionMonitor(np.full(N, 0.5))]).fit(X, y)


@pytest.mark.parametrize("criterion", [nn.CrossEntropyLoss, nn.NLLLoss], ids=["logits", "probabilities"])
def test_vog_tracker_on_plain_classifier(data, criterion):
    X, y, _ = data

    class Softmaxed(TinyMLP):
        def forward(self, x):
            return torch.softmax(super().forward(x), dim=1)

    module = TinyMLP if criterion is nn.CrossEntropyLoss else Softmaxed
    tracker = VoGTracker(window=3)
    net = NeuralNetClassifier(
        module,
        criterion=criterion,
        max_epochs=4,
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
        iterator_train__shuffle=True,
        callbacks=[tracker],
    )
    net.fit(X, y)
    assert net.vog_.shape == (N,) and np.isfinite(net.vog_).all() and (net.vog_ > 0).all()
    buf = tracker.buffer_
    last = (buf.count - 1) % buf.window
    stored = buf.buffer[torch.arange(N), last]
    head_module = net.module_
    expected = _autograd_rows(
        head_module if module is TinyMLP else _Unsoftmax(head_module), X, y, train=False
    )
    torch.testing.assert_close(stored, expected, rtol=1e-4, atol=1e-6)


class _Unsoftmax(nn.Module):
    """Logits of a module that returns probabilities (its head is followed by a softmax)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.head = inner.head

    def forward(self, x):
        return self.head(self.inner.body(x))


def test_vog_tracker_every_and_validation(data):
    X, y, _ = data
    tracker = VoGTracker(window=2, every=2)
    net = NeuralNetClassifier(
        TinyMLP, criterion=nn.CrossEntropyLoss, max_epochs=3, train_split=None, verbose=0, callbacks=[tracker]
    ).fit(X, y)
    assert tracker.buffer_.min_count() == 1 and (net.vog_ == 0).all()
    with pytest.raises(ValueError, match=r"window must be >= 2 \(got 1\)"):
        NeuralNetClassifier(TinyMLP, callbacks=[VoGTracker(window=1)]).initialize()


# ---------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_predict_and_pickle(data):
    X, y, flags = data
    net = make_net(device="cuda", class_aware=True, callbacks=[InputStandardizer(), SelectionMonitor(flags)])
    net.fit(X, y)
    assert next(net.module2_.parameters()).is_cuda
    assert net.clean_mask_.shape == (N,) and np.isfinite(net.vog_).all()
    proba = net.predict_proba(X)
    assert proba.shape == (N, 10)
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(restored.predict_proba(X), proba, rtol=1e-5)
    net.fine_tune(X, y, epochs=1)
    assert net.inference_networks_ == 1


# --------------------------------------------------------------------------------------------------
# the record of training and trusted labels
# --------------------------------------------------------------------------------------------------


def test_training_proba_is_the_mean_of_the_epochs_training_pass_probabilities(data):
    X, y, _ = data
    net = make_net(TinyMLP, max_epochs=1).fit(X, y)
    first = net.training_proba_.copy()
    assert first.shape == (N, 10) and first.dtype == np.float32
    np.testing.assert_allclose(first.sum(1), 1.0, atol=1e-5)
    net.partial_fit(X, y, epochs=1)  # a second epoch: the record is the mean of both epochs' passes
    second_pass = 2 * net.training_proba_ - first
    np.testing.assert_allclose(second_pass.sum(1), 1.0, atol=1e-4)
    assert np.abs(second_pass - first).max() > 1e-3  # the networks moved between the epochs
    net.fine_tune(X[:64], y[:64], epochs=1)
    np.testing.assert_array_equal(net.training_proba_ * 2 - first, second_pass)  # fine_tune leaves it


def test_training_proba_of_samples_no_training_pass_saw_is_uniform(data):
    X, y, _ = data
    net = make_net(TinyMLP, max_epochs=1, train_split=ValidSplit(4, stratified=False)).fit(X, y)
    held = ~net.clean_mask_ & np.isclose(net.training_proba_, 0.1).all(1)
    assert 45 <= held.sum() <= 55  # the validation fifth, and no training sample
    np.testing.assert_allclose(net.training_proba_[~held].sum(1), 1.0, atol=1e-5)


def test_trusted_samples_are_always_selected_and_the_rate_applies_to_the_rest(data):
    X, y, _ = data
    trusted = np.zeros(N, dtype=bool)
    trusted[::4] = True
    net = make_net(TinyMLP, forget_rate=0.6, max_epochs=3).fit(X, y, trusted=trusted)
    assert net.clean_mask_[trusted].all()
    # per batch: every trusted sample plus 40% of the others (floors per batch of 32)
    share = net.history[-1, "selected_frac"]
    expected = (trusted.sum() + 0.4 * (~trusted).sum()) / N
    assert abs(share - expected) < 0.04
    untrusted = make_net(TinyMLP, forget_rate=0.6, max_epochs=3).fit(X, y)
    assert untrusted.history[-1, "selected_frac"] < share - 0.1
    # a later fit without trusted forgets them again
    net.fit(X, y)
    assert abs(net.history[-1, "selected_frac"] - untrusted.history[-1, "selected_frac"]) < 1e-9


def test_trusted_samples_are_never_held_out_for_the_noise_estimate(digits_noisy):
    X, y = digits_noisy.X_train, digits_noisy.y_noisy
    trusted = np.zeros(len(y), dtype=bool)
    trusted[: len(y) // 2] = True
    net = make_net(TinyMLP, forget_rate="auto", max_epochs=2).fit(X, y, trusted=trusted)
    held = net.run_state_.held_out.numpy()
    assert held.any() and not (held & trusted).any()


@pytest.mark.parametrize(
    ("trusted", "message"),
    [
        (np.zeros(5, dtype=bool), r"trusted must have one entry per training sample \(got 5 for 203\)"),
        (np.full(N, 0.5), r"trusted must be a boolean array \(got dtype float64\)"),
        (np.zeros((N, 2), dtype=bool), r"trusted must be a one-dimensional boolean array"),
    ],
)
def test_bad_trusted_is_refused_before_training(data, trusted, message):
    X, y, _ = data
    net = make_net(TinyMLP)
    with pytest.raises(ValueError, match=message):
        net.fit(X, y, trusted=trusted)
    assert not net.history  # nothing trained
