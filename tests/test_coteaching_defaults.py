"""CoTeachingClassifier's own defaults are the measured recipe of ``recommended_net_kwargs()``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from modal_noisy.nets import SmallCNN
from modal_noisy.training import CosineLR, CoTeachingClassifier, InputStandardizer, recommended_net_kwargs


def _tiny_data(n: int = 96, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(3.0, 2.0, size=(n, 1, 8, 8)).astype(np.float32), np.arange(n) % k


def _callbacks(net) -> dict[str, object]:
    return {name: cb for name, cb in net.callbacks_ if cb is not None}


def test_bare_estimator_trains_with_the_recipe():
    X, y = _tiny_data()
    bare = CoTeachingClassifier(SmallCNN, module__n_classes=3, module__width=4, max_epochs=3, verbose=0)
    bare.fit(X, y)
    recipe = recommended_net_kwargs(max_epochs=3)
    reference = NeuralNetClassifier(SmallCNN, module__n_classes=3, module__width=4, verbose=0, **recipe)
    reference.fit(X, y)
    for name in ("optimizer_", "optimizer2_"):
        group = getattr(bare, name).param_groups[0]
        ref = reference.optimizer_.param_groups[0]
        assert type(getattr(bare, name)) is type(reference.optimizer_) is torch.optim.AdamW
        assert group["weight_decay"] == ref["weight_decay"] == 1e-4
    assert bare.batch_size == reference.batch_size
    assert bare.get_params()["iterator_train__shuffle"] is True
    # the same cosine schedule and the same standardisation
    np.testing.assert_allclose(bare.history[:, "lr"], reference.history[:, "lr"])
    cbs, ref_cbs = _callbacks(bare), _callbacks(reference)
    assert isinstance(cbs["lr_schedule"], CosineLR) and isinstance(cbs["standardize"], InputStandardizer)
    np.testing.assert_allclose(cbs["standardize"].mean_, ref_cbs["standardize"].mean_)
    np.testing.assert_allclose(cbs["standardize"].std_, ref_cbs["standardize"].std_)
    assert bare.class_aware is True


def test_recipe_callbacks_are_not_doubled_and_can_be_switched_off():
    X, y = _tiny_data()
    with_recipe = CoTeachingClassifier(
        SmallCNN, module__n_classes=3, module__width=4, verbose=0, **recommended_net_kwargs(max_epochs=1)
    ).fit(X, y)
    names = [name for name, _ in with_recipe.callbacks_]
    assert names.count("standardize") == 1 and names.count("lr_schedule") == 1
    off = CoTeachingClassifier(
        SmallCNN, module__n_classes=3, module__width=4, max_epochs=1, verbose=0, callbacks__lr_schedule=None
    ).fit(X, y)
    assert "lr_schedule" not in _callbacks(off)
    assert off.optimizer_.param_groups[0]["lr"] == off.lr  # no schedule touched it


@pytest.mark.parametrize("param", ["optimizer", "lr", "batch_size", "max_epochs"])
def test_recipe_defaults_are_ordinary_parameters(param):
    default = CoTeachingClassifier(SmallCNN, module__n_classes=3).get_params()[param]
    again = CoTeachingClassifier(SmallCNN, module__n_classes=3, **{param: default}).get_params()[param]
    assert again == default
