"""A cosine learning-rate schedule that restarts with every training run, as a skorch callback."""

from __future__ import annotations

import math
from typing import Any

from skorch.callbacks import Callback

from modal_noisy._validation import check_positive_int

__all__ = ["CosineLR"]


class CosineLR(Callback):
    """Cosine-anneal the learning rate of every optimizer of a net over one training run.

    At epoch ``t`` (0-based, counted from the start of the current ``fit`` / ``partial_fit``) every
    parameter group of every optimizer the net registered gets
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T)) / 2``, where ``T`` is ``T_max`` or,
    when that is None, the net's ``max_epochs`` at the start of the run.

    Unlike :class:`skorch.callbacks.LRScheduler` with ``CosineAnnealingLR`` (whose restart continues
    from the annealed learning rate), each run starts again from ``base_lr``: the learning rate the
    group had when this callback first saw it, or the value the user set since (e.g.
    ``net.set_params(lr=...)``). So each phase-2 recalibration round gets a full cosine, as in the
    paper. For ``partial_fit(X, y, epochs=E)`` set ``T_max=E`` (or ``max_epochs=E``) so the
    schedule spans the run. The learning rate of each epoch is recorded in ``net.history`` as
    ``"lr"`` (of the first parameter group of the first optimizer).

    Parameters
    ----------
    T_max : int or None, default=None
        Length of the cosine in epochs; None uses ``net.max_epochs``. Epochs beyond it stay at
        ``eta_min``.
    eta_min : float, default=0.0
        Final learning rate.
    """

    def __init__(self, *, T_max: int | None = None, eta_min: float = 0.0) -> None:
        self.T_max = T_max
        self.eta_min = eta_min

    def initialize(self) -> CosineLR:
        if self.T_max is not None:
            check_positive_int(self.T_max, "T_max")
        if not self.eta_min >= 0:
            raise ValueError(f"eta_min must be >= 0 (got {self.eta_min!r})")
        self.base_lrs_: list[float] | None = None
        self.last_lrs_: list[float] | None = None
        self.epoch_ = 0
        self.period_ = 1
        return self

    @staticmethod
    def _groups(net: Any) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        for name in getattr(net, "_optimizers", []):
            optimizer = getattr(net, name + "_", None)
            groups.extend(getattr(optimizer, "param_groups", []))
        return groups

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        current = [float(g["lr"]) for g in self._groups(net)]
        # keep the stored base while the groups still hold what we set last; anything else means
        # a new optimizer or a user change, which becomes the new base
        if self.base_lrs_ is None or current != self.last_lrs_:
            self.base_lrs_ = current
        self.epoch_ = 0
        self.period_ = int(self.T_max if self.T_max is not None else net.max_epochs)

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        groups = self._groups(net)
        if self.base_lrs_ is None or len(groups) != len(self.base_lrs_):
            # optimizer replaced mid-run (rare): restart from its current values
            self.base_lrs_ = [float(g["lr"]) for g in groups]
        t = min(self.epoch_, self.period_)
        factor = 0.5 * (1.0 + math.cos(math.pi * t / max(self.period_, 1)))
        lrs = [self.eta_min + (base - self.eta_min) * factor for base in self.base_lrs_]
        for group, lr in zip(groups, lrs, strict=True):
            group["lr"] = lr
        self.last_lrs_ = lrs
        if lrs:
            net.history.record("lr", lrs[0])

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        self.epoch_ += 1
