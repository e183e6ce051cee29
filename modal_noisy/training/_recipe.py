"""The default training recipe for the small networks of :mod:`modal_noisy.nets`."""

from __future__ import annotations

from typing import Any

import torch

from modal_noisy._validation import check_choice, check_positive_int
from modal_noisy.training._schedule import CosineLR
from modal_noisy.training._standardize import InputStandardizer

__all__ = ["recommended_net_kwargs"]

_OPTIMIZERS = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def recommended_net_kwargs(
    *,
    max_epochs: int = 40,
    batch_size: int = 64,
    lr: float | None = None,
    optimizer: str = "adamw",
    weight_decay: float | None = None,
    standardize: bool = True,
    random_state: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a skorch ``NeuralNetClassifier`` that train the small CNNs well.

    Placeholder: the recipe is being tuned.
    """
    check_positive_int(max_epochs, "max_epochs")
    check_positive_int(batch_size, "batch_size")
    optimizer = check_choice(optimizer, "optimizer", tuple(_OPTIMIZERS))
    if lr is None:
        lr = 1e-3 if optimizer == "adamw" else 0.05
    if weight_decay is None:
        weight_decay = 0.05 if optimizer == "adamw" else 5e-4
    if not lr > 0:
        raise ValueError(f"lr must be > 0 (got {lr!r})")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0 (got {weight_decay!r})")

    callbacks: list[tuple[str, Any]] = []
    if standardize:
        callbacks.append(("standardize", InputStandardizer()))
    callbacks.append(("lr_schedule", CosineLR()))
    kwargs: dict[str, Any] = {
        "optimizer": _OPTIMIZERS[optimizer],
        "lr": lr,
        "optimizer__weight_decay": weight_decay,
        "batch_size": batch_size,
        "max_epochs": max_epochs,
        "train_split": None,
        "iterator_train__shuffle": True,
        "callbacks": callbacks,
    }
    if optimizer == "sgd":
        kwargs.update(optimizer__momentum=0.9, optimizer__nesterov=True)
    if random_state is not None:
        check_positive_int(random_state, "random_state", minimum=0)
        kwargs["iterator_train__generator"] = torch.Generator().manual_seed(random_state)
    return kwargs
