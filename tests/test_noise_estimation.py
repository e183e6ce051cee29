"""forget_rate="auto" inside CoTeachingClassifier: the held-out share, the freeze, per-class rates."""

from __future__ import annotations

import numpy as np
import pytest
from skorch.callbacks import Callback

from modal_noisy.nets import SmallCNN
from modal_noisy.training import NOISE_RATE_RANGE, CoTeachingClassifier


class _Watch(Callback):
    """Per epoch: whether samples were held out, and whether any held-out sample was selected."""

    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_end(self, net, **kwargs):
        state = net.run_state_
        held = state.held_out
        self.epochs.append(
            {
                "holding": state.holding_out,
                "n_held": int(held.sum()),
                "held_selected": bool((state.sel1 | state.sel2)[held].any()),
            }
        )


def _net(**kwargs) -> CoTeachingClassifier:
    params = dict(
        module__n_classes=10, module__width=4, max_epochs=8, num_gradual=4, random_state=0, verbose=0
    )
    params.update(kwargs)
    return CoTeachingClassifier(SmallCNN, **params)


def test_held_out_share_trains_only_after_the_estimate_is_frozen(digits_noisy):
    d = digits_noisy
    watch = _Watch()
    net = _net(callbacks=[("watch", watch)]).fit(d.X_train, d.y_noisy)
    n = len(d.y_noisy)
    holding = [e["holding"] for e in watch.epochs]
    assert holding[0] and not holding[-1]  # estimated first, then everything trains
    assert holding == sorted(holding, reverse=True)  # once released, never held again
    assert watch.epochs[0]["n_held"] == min(max(round(0.2 * n), 200), n // 2)
    assert not any(e["held_selected"] for e in watch.epochs if e["holding"])
    assert any(e["held_selected"] for e in watch.epochs if not e["holding"])
    assert len(net.noise_estimates_) == holding.count(True)
    assert NOISE_RATE_RANGE[0] <= net.noise_rate_ <= NOISE_RATE_RANGE[1]
    assert net.history[-1, "class_noise_rates"] == pytest.approx(net.class_noise_rates_, abs=5e-4)


def test_same_seed_holds_out_the_same_samples(digits_noisy):
    d = digits_noisy
    first = _net(max_epochs=1).fit(d.X_train, d.y_noisy)
    second = _net(max_epochs=1).fit(d.X_train, d.y_noisy)
    other = _net(max_epochs=1, random_state=1).fit(d.X_train, d.y_noisy)
    held = first.run_state_.held_out.numpy()
    assert np.array_equal(held, second.run_state_.held_out.numpy())
    assert not np.array_equal(held, other.run_state_.held_out.numpy())


@pytest.mark.parametrize("rate", [0.4, 0.97])
def test_a_given_rate_holds_nothing_out_and_is_used_as_given(digits_noisy, rate):
    """Only estimates are clipped to NOISE_RATE_RANGE; a rate the user sets is used as it is."""
    d = digits_noisy
    watch = _Watch()
    net = _net(forget_rate=rate, max_epochs=2, callbacks=[("watch", watch)]).fit(d.X_train, d.y_noisy)
    assert not any(e["holding"] for e in watch.epochs) and net.noise_rate_ == rate


def test_a_class_too_small_to_estimate_gets_the_overall_rate(digits_noisy):
    d = digits_noisy
    y = d.y_noisy.copy()
    rare = np.flatnonzero(y == 9)[CoTeachingClassifier.MIN_CLASS_SAMPLES - 1 :]
    y[rare] = 0  # class 9 keeps MIN_CLASS_SAMPLES - 1 labels
    with pytest.warns(UserWarning, match=r"classes \[9\] have fewer than 10 training samples"):
        net = _net(max_epochs=3).fit(d.X_train, y)
    assert net.class_noise_rates_[9] == pytest.approx(net.noise_rate_)
