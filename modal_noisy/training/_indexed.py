"""A dataset wrapper that also yields each sample's dataset index, so per-sample state survives shuffling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["INDEX_KEY", "X_KEY", "IndexedDataset", "split_index"]

# Reserved keys: a user's own X (array, tensor, dict, list) travels untouched under X_KEY.
X_KEY = "__modal_noisy_x__"
INDEX_KEY = "__modal_noisy_index__"


class IndexedDataset(Dataset):
    """Wrap a ``(X, y)`` dataset so item ``i`` is ``({X_KEY: x_i, INDEX_KEY: i}, y_i)``.

    The default collate turns the index into a LongTensor per batch, so a shuffled loader or a
    smaller last batch still tells which samples a batch holds. ``X`` and ``y`` of the wrapped
    dataset stay reachable (skorch's ``data_from_dataset``, stratified splits and scoring use them).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[dict[str, Any], Any]:
        x, y = self.dataset[i]
        return {X_KEY: x, INDEX_KEY: i}, y

    def __getattr__(self, name: str) -> Any:
        # only X / y are forwarded; anything else is a genuine AttributeError
        if name in ("X", "y"):
            return getattr(self.__dict__["dataset"], name)
        raise AttributeError(name)


def split_index(x: Any) -> tuple[Any, torch.Tensor | None]:
    """Split a batch from :class:`IndexedDataset` into ``(x, index)``; other batches give ``(x, None)``."""
    if isinstance(x, Mapping) and INDEX_KEY in x and X_KEY in x:
        return x[X_KEY], x[INDEX_KEY]
    return x, None
