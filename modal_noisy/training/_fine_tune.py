"""Phase-2 recalibration of a co-teaching net: :meth:`FineTuneMixin.fine_tune`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch.utils import to_tensor
from torch import nn
from torch.utils.data import DataLoader

from modal_noisy._seeding import draw_seeds, torch_seed
from modal_noisy._validation import check_choice, check_fraction, check_positive_int
from modal_noisy.decision import label_prior

__all__ = ["FineTuneMixin"]


class FineTuneMixin:
    """``fine_tune`` for :class:`~modal_noisy.training.CoTeachingClassifier`.

    Uses the net's ``module_`` / ``module2_``, ``criterion_``, ``device``, ``batch_size``,
    ``random_state``, its data helpers (``_validate_data``, ``get_dataset``, ``_call``) and its
    engine hooks (``_autocast``, ``_backward``).
    """

    def fine_tune(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        batch_size: int | None = None,
        networks: str = "first",
    ) -> FineTuneMixin:
        """Recalibrate network 1 on (clean) samples, the paper's phase-2 step; predict with it alone.

        Plain mean cross-entropy, SGD with the given ``lr``, ``momentum`` and ``weight_decay``, the
        learning rate annealed by a cosine over the ``epochs`` of this call. The batches are the plain
        samples: the training iterator's ``collate_fn`` (e.g. the recipe's flips and shifts) is not
        applied. Network 2, the
        optimizers of ``fit``, callbacks and ``history`` are left alone. Deterministic for a given
        ``random_state`` (each call gets its own seed from it and the number of calls so far).
        Afterwards ``inference_networks_`` is 1: predictions come from network 1 only. With
        ``networks="both"`` each network is recalibrated the same way (its own optimizer and shuffling)
        and predictions keep using the sum of both networks' logits (``inference_networks_`` is 2).
        ``class_prior_`` becomes the class frequencies of ``y`` (when given): the recalibrated
        networks estimate the posterior under the prior of the labels they were fine-tuned on, so
        that is the prior ``decision="balanced"`` must divide out (a clean set is usually more
        imbalanced than the noisy labels, whose noise spreads mass over every class).

        Parameters
        ----------
        X : array of shape (n, C, H, W) or torch Dataset
        y : array of int of shape (n,)
            Labels to trust (phase-1 clean labels and the oracle's answers).
        epochs : int >= 1
        lr, momentum, weight_decay : float
            SGD settings (paper: 0.01, 0.9, 1e-4).
        batch_size : int, optional
            Defaults to the net's ``batch_size``.
        networks : {"first", "both"}, default="first"
            ``"first"`` is the paper (phase 2 continues with network 1); ``"both"`` keeps the
            two-network ensemble of phase 1, which measured better after recalibration on small clean
            sets (see ``benchmarks/RESULTS.md``).

        Returns
        -------
        self
        """
        self.check_is_fitted()
        check_positive_int(epochs, "epochs")
        check_fraction(lr, "lr", high=float("inf"), low_inclusive=False)
        check_fraction(momentum, "momentum")
        check_fraction(weight_decay, "weight_decay", high=float("inf"))
        batch_size = self.batch_size if batch_size is None else batch_size
        check_positive_int(batch_size, "batch_size")
        check_choice(networks, "networks", ("first", "both"))
        X, y = self._validate_data(X, y)
        if y is None and self.decision == "balanced":
            raise ValueError(
                "decision='balanced' needs the labels fine_tune trains on to count the class prior: "
                "pass y with a Dataset X (got y=None)"
            )
        prior = None if y is None else label_prior(y, self._n_classes())
        dataset = self.get_dataset(X, y)
        calls = getattr(self, "fine_tune_calls_", 0)
        seed = draw_seeds(self.random_state, 4)[3]
        seed = (seed + 104729 * calls) % np.iinfo(np.int32).max
        modules = [self.module_] if networks == "first" else [self.module_, self.module2_]
        losses = [
            self._fine_tune_module(
                module,
                dataset,
                (seed + offset) % np.iinfo(np.int32).max,
                epochs,
                batch_size,
                lr=lr,
                momentum=momentum,
                weight_decay=weight_decay,
            )
            for offset, module in enumerate(modules)
        ]
        self.fine_tune_calls_ = calls + 1
        self.fine_tune_losses_ = losses[0]
        self.inference_networks_ = len(modules)
        if prior is not None:  # a Dataset without labels: the arg-max does not need the prior
            self.class_prior_ = prior
        return self

    def _fine_tune_module(
        self,
        module: nn.Module,
        dataset: Any,
        seed: int,
        epochs: int,
        batch_size: int,
        *,
        lr: float,
        momentum: float,
        weight_decay: float,
    ) -> list[float]:
        """Plain cross-entropy SGD with a cosine schedule on one network; returns per-epoch losses."""
        optimizer = torch.optim.SGD(module.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        losses = []
        with torch_seed(seed, self.device):
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                shuffle=True,
                generator=torch.Generator().manual_seed(seed),
            )
            # under a multi-process engine: the wrapped network, its optimizer, a sharded loader
            trained, step_optimizer, loader = self._prepare_fine_tune(module, optimizer, loader)
            trained.train()
            for _ in range(epochs):
                total = torch.zeros(2, dtype=torch.float64, device=self.device)
                for xb, yb in loader:
                    xb = to_tensor(xb, device=self.device)
                    yb = to_tensor(yb, device=self.device)
                    step_optimizer.zero_grad()
                    with self._autocast():
                        loss = self.criterion_(self._call(trained, xb, {}), yb)
                    self._backward(loss)
                    step_optimizer.step()
                    total += torch.stack([loss.detach().double() * len(yb), total.new_tensor(len(yb))])
                schedule.step()
                loss_sum, count = self._sum_across_processes(total).tolist()
                losses.append(loss_sum / max(count, 1))
            self._finish_fine_tune(trained)
        module.eval()
        return losses

    # one process: nothing to prepare or reduce (an engine such as Accelerate overrides these)
    def _prepare_fine_tune(self, *objects: Any) -> tuple[Any, ...]:
        return objects

    def _sum_across_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def _finish_fine_tune(self, trained: nn.Module) -> None:
        """Undo what ``_prepare_fine_tune`` did to the network (nothing here)."""
