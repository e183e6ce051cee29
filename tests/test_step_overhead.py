"""The co-teaching step does no avoidable host work: networks already in the right mode are not switched."""

from __future__ import annotations

from modal_noisy import CoTeachingClassifier, SmallCNN


class CountingCNN(SmallCNN):
    """SmallCNN that counts its ``train()`` calls."""

    calls = 0

    def train(self, mode: bool = True):
        type(self).calls += 1
        return super().train(mode)


def test_set_training_switches_only_networks_with_a_layer_in_the_other_mode():
    net = CoTeachingClassifier(CountingCNN, module__width=4, device="cpu").initialize()
    net._set_training(True)
    CountingCNN.calls = 0
    net._set_training(True)  # every layer already trains: nothing to do
    assert CountingCNN.calls == 0
    net._set_training(False)
    assert CountingCNN.calls == 2 and not net.module_.training and not net.module2_.training
    # one layer left in the other mode (e.g. dropout switched on for MC dropout) is put right
    net.module_.dropout.train()
    CountingCNN.calls = 0
    net._set_training(False)
    assert CountingCNN.calls == 1
    assert not any(m.training for m in net.module_.modules())
