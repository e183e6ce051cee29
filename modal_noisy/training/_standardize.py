"""Per-channel input standardisation fitted on the training data, as a skorch callback."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback
from torch.utils.data import DataLoader

from modal_noisy._validation import check_positive_int
from modal_noisy.training._indexed import split_index

__all__ = ["InputStandardizer", "channel_stats"]


def _unwrap(module: Any) -> Any:
    """The user's module behind ``torch.compile`` or (Distributed)DataParallel wrappers."""
    for attr in ("_orig_mod", "module"):
        if not hasattr(module, "set_input_stats") and isinstance(
            getattr(module, attr, None), torch.nn.Module
        ):
            module = getattr(module, attr)
    return module


class _Moments:
    """Per-channel running sums in float64 (stable enough for image data in any range)."""

    def __init__(self) -> None:
        self.count = 0
        self.total: np.ndarray | None = None
        self.total_sq: np.ndarray | None = None

    def update(self, batch: np.ndarray) -> None:
        if batch.ndim != 4:
            raise ValueError(
                "InputStandardizer needs image batches of shape (N, C, H, W) "
                f"(got shape {batch.shape})"
            )
        batch = batch.astype(np.float64, copy=False)
        s = batch.sum(axis=(0, 2, 3))
        sq = np.square(batch).sum(axis=(0, 2, 3))
        self.total = s if self.total is None else self.total + s
        self.total_sq = sq if self.total_sq is None else self.total_sq + sq
        self.count += batch.shape[0] * batch.shape[2] * batch.shape[3]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self.count == 0 or self.total is None or self.total_sq is None:
            raise ValueError("InputStandardizer got an empty training set")
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - np.square(mean), 0.0)
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def channel_stats(X: Any, *, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation of NCHW images.

    Parameters
    ----------
    X : ndarray, torch.Tensor or torch Dataset
        Images of shape ``(N, C, H, W)``, or a dataset whose items are images or ``(image, ...)``
        tuples. Arrays are read in chunks of ``batch_size`` to bound the float64 copy.
    batch_size : int, default=1024

    Returns
    -------
    mean, std : ndarray of shape (C,), float32
    """
    check_positive_int(batch_size, "batch_size")
    moments = _Moments()
    if isinstance(X, torch.utils.data.Dataset):
        for batch in DataLoader(X, batch_size=batch_size, shuffle=False):
            xb = batch[0] if isinstance(batch, (list, tuple)) else batch
            xb, _ = split_index(xb)  # an IndexedDataset batch carries the images under a key
            if not isinstance(xb, torch.Tensor):
                raise TypeError(
                    "InputStandardizer needs a dataset whose items are image tensors or "
                    f"(image, ...) tuples (got {type(xb).__name__})"
                )
            moments.update(xb.detach().cpu().numpy())
        return moments.result()
    arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"InputStandardizer needs numeric images (got dtype {arr.dtype})")
    for start in range(0, max(len(arr), 1), batch_size):
        moments.update(arr[start : start + batch_size])
    return moments.result()


class InputStandardizer(Callback):
    """Fit the input standardisation of a net's modules on its training data, once.

    At ``on_train_begin`` this computes the per-channel mean and standard deviation of the training
    images and calls ``set_input_stats(mean, std)`` on every module the net registered (skorch's
    ``net._modules``: ``module_``, and e.g. ``module2_`` for co-teaching) that has that method and
    whose ``input_stats_fitted`` buffer is still false. Modules without ``set_input_stats`` are
    left alone.

    Fitted statistics are kept: a later ``partial_fit`` on a subset (phase-2 recalibration on the
    clean set) does **not** move them, so the network keeps seeing inputs in the units it was
    trained on. A full ``fit`` re-creates the modules (unless ``warm_start=True``), and new modules
    are unfitted, so they are standardised on the new training data. Set ``refit=True`` to
    recompute them at the start of every training run.

    Arrays and tensors of shape ``(N, C, H, W)`` are read directly; anything else (e.g. an index
    array with a custom ``dataset=``) is passed through ``net.get_dataset`` and iterated, so the
    statistics are those of what the module actually receives.

    Parameters
    ----------
    refit : bool, default=False
        Recompute the statistics at every ``on_train_begin``, even for fitted modules.
    batch_size : int, default=1024
        Chunk size for reading the training data.

    Attributes
    ----------
    mean_, std_ : ndarray of shape (C,) or None
        The statistics set by the last call that set any (None before).
    fitted_modules_ : list of str
        Names of the modules set by the last call that set any.
    """

    def __init__(self, *, refit: bool = False, batch_size: int = 1024) -> None:
        self.refit = refit
        self.batch_size = batch_size

    def initialize(self) -> InputStandardizer:
        check_positive_int(self.batch_size, "batch_size")
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self.fitted_modules_: list[str] = []
        return self

    def _targets(self, net: Any) -> list[tuple[str, Any]]:
        targets = []
        for name in getattr(net, "_modules", []):
            module = _unwrap(getattr(net, name + "_", None))
            if not callable(getattr(module, "set_input_stats", None)):
                continue
            fitted = getattr(module, "input_stats_fitted", None)
            if self.refit or fitted is None or not bool(fitted):
                targets.append((name + "_", module))
        return targets

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        targets = self._targets(net)
        if not targets:
            return
        if X is None:
            raise ValueError("InputStandardizer needs the training data X at on_train_begin")
        is_images = isinstance(X, (np.ndarray, torch.Tensor)) and X.ndim == 4
        data = X if is_images else net.get_dataset(X, y)
        mean, std = channel_stats(data, batch_size=self.batch_size)
        for _, module in targets:
            module.set_input_stats(mean, std)
        self.mean_, self.std_ = mean, std
        self.fitted_modules_ = [name for name, _ in targets]
