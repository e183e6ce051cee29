"""skorch callbacks: VoG for any classifier, and selection quality against known noise flags."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from modal_noisy._validation import check_choice, check_positive_int
from modal_noisy.nets import final_linear
from modal_noisy.training._vog import VOG_DTYPES, VoGBuffer, record_vog_pass

__all__ = ["SelectionMonitor", "VoGTracker"]


class VoGTracker(Callback):
    """Give any skorch classifier a per-sample ``vog_`` (Variance of Gradients) attribute.

    At the end of every ``every``-th epoch, an eval-mode, no-gradient pass over the training set
    (in order, no shuffling; BatchNorm statistics untouched) takes each sample's cross-entropy
    gradient with respect to its given label's row of the final linear layer, in closed form from
    the layer's input ``h`` and the output: ``(p_y - 1)·[h, 1]``. The last ``window`` gradients of
    each sample are kept in a ring buffer; VoG is the mean over coordinates of their standard
    deviation (over the gradients a sample has until the window is full: 0 after one).

    The result lands on the net as ``net.vog_`` (float32 array, one value per sample of the
    training dataset, in its order: with ``train_split=None`` the ``i``-th sample of ``X``) and on
    the callback as ``vog_``. Larger VoG = less stable = more likely mislabelled or atypical.
    :class:`~modal_noisy.training.CoTeachingClassifier` tracks VoG itself from its training pass
    and needs no tracker (one would overwrite its ``vog_``).

    Memory: ``N × window × (D + 1)`` values of ``dtype`` (``D``: input features of the final
    layer). Time: one extra inference pass over the training set per tracked epoch.

    Parameters
    ----------
    window : int >= 2, default=5
        Number of most recent tracked epochs VoG is computed over.
    every : int >= 1, default=1
        Track every ``every``-th epoch only (fewer extra passes; the window then spans more epochs).
    output : {"auto", "logits", "probabilities"}, default="auto"
        What the module returns. ``"auto"``: probabilities when the criterion is
        :class:`torch.nn.NLLLoss` (skorch's convention: the module ends with a softmax right after
        its final layer), logits otherwise.
    module : str, default="module_"
        Attribute of the net holding the network; its final layer is found with
        :func:`modal_noisy.nets.final_linear`.
    dtype : {"float32", "float16", "float64"}, default="float32"
        Storage type of the ring buffer.

    Attributes
    ----------
    vog_ : ndarray of float32 or None
        VoG after the last tracked epoch.
    buffer_ : VoGBuffer or None
    """

    def __init__(
        self,
        *,
        window: int = 5,
        every: int = 1,
        output: str = "auto",
        module: str = "module_",
        dtype: str = "float32",
    ) -> None:
        self.window = window
        self.every = every
        self.output = output
        self.module = module
        self.dtype = dtype

    def initialize(self) -> VoGTracker:
        check_positive_int(self.window, "window", minimum=2)
        check_positive_int(self.every, "every")
        check_choice(self.output, "output", ("auto", "logits", "probabilities"))
        check_choice(self.dtype, "dtype", tuple(VOG_DTYPES))
        self.vog_: np.ndarray | None = None
        self.buffer_: VoGBuffer | None = None
        self.epochs_ = 0
        return self

    def _returns_probabilities(self, net: Any) -> bool:
        if self.output != "auto":
            return self.output == "probabilities"
        return isinstance(getattr(net, "criterion_", None), nn.NLLLoss)

    def on_epoch_end(self, net: Any, dataset_train: Any = None, **kwargs: Any) -> None:
        self.epochs_ += 1
        if dataset_train is None or self.epochs_ % self.every:
            return
        module = getattr(net, self.module)
        head = final_linear(module)
        n = len(dataset_train)
        if self.buffer_ is None or self.buffer_.n_samples != n:
            self.buffer_ = VoGBuffer(
                n,
                head.in_features + 1,
                self.window,
                dtype=VOG_DTYPES[self.dtype],
                device=net.device,
            )
        record_vog_pass(
            net, dataset_train, [(module, self.buffer_)], probabilities=self._returns_probabilities(net)
        )
        self.vog_ = self.buffer_.compute().float().cpu().numpy()
        net.vog_ = self.vog_


class SelectionMonitor(Callback):
    """Log the precision and recall of a net's clean selection against the true noise flags.

    For evaluation only (the flags never reach training). At the end of each epoch it reads the
    net's ``clean_mask_`` (set by :class:`~modal_noisy.training.CoTeachingClassifier` before the
    callbacks run) and records in ``net.history``:

    * ``{name}_precision``: share of the selected samples whose given label is correct;
    * ``{name}_recall``: share of the correctly labelled samples that are selected (clean
      retention);
    * ``{name}_precision_per_class`` and ``{name}_recall_per_class``: the same per given class, as
      lists (NaN where a class has no selected / no correctly labelled sample);
    * ``{name}_min_class_recall``: the smallest per-class recall (the rare-class figure that
      matters).

    Parameters
    ----------
    is_noisy : array-like of bool, shape (N,)
        True where the given label of the training sample is wrong, aligned with the ``X`` passed
        to ``fit``.
    n_classes : int, optional
        Number of classes for the per-class lists; default: the net's ``classes_``.
    name : str, default="selection"
        Prefix of the history keys.
    """

    def __init__(self, is_noisy: Any, *, n_classes: int | None = None, name: str = "selection"):
        self.is_noisy = is_noisy
        self.n_classes = n_classes
        self.name = name

    def initialize(self) -> SelectionMonitor:
        flags = np.asarray(self.is_noisy)
        if flags.ndim == 1 and flags.dtype != np.bool_ and np.isin(flags, (0, 1)).all():
            flags = flags.astype(bool)
        if flags.ndim != 1 or flags.dtype != np.bool_:
            raise ValueError(
                f"is_noisy must be a 1-D boolean array (got dtype {flags.dtype}, shape {flags.shape})"
            )
        if self.n_classes is not None:
            check_positive_int(self.n_classes, "n_classes")
        self.flags_ = flags
        self.labels_: np.ndarray | None = None
        return self

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        if y is None:
            raise ValueError("SelectionMonitor needs the given labels y passed to fit (got None)")
        labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).astype(np.int64)
        if len(labels) != len(self.flags_):
            raise ValueError(
                f"is_noisy must have one flag per training sample (got {len(self.flags_)} "
                f"flags and {len(labels)} samples)"
            )
        self.labels_ = labels

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        mask = getattr(net, "clean_mask_", None)
        if mask is None or self.labels_ is None:
            return
        mask = np.asarray(mask, dtype=bool)
        clean = ~self.flags_
        labels = self.labels_
        k = self.n_classes if self.n_classes is not None else len(net.classes_)
        selected = np.bincount(labels[mask], minlength=k)
        selected_clean = np.bincount(labels[mask & clean], minlength=k)
        clean_total = np.bincount(labels[clean], minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision_c = np.where(selected > 0, selected_clean / selected, np.nan)
            recall_c = np.where(clean_total > 0, selected_clean / clean_total, np.nan)
        precision = float(selected_clean.sum() / selected.sum()) if selected.sum() else np.nan
        recall = float(selected_clean.sum() / clean_total.sum()) if clean_total.sum() else np.nan
        prefix = self.name
        net.history.record(f"{prefix}_precision", precision)
        net.history.record(f"{prefix}_recall", recall)
        finite = recall_c[np.isfinite(recall_c)]
        net.history.record(f"{prefix}_min_class_recall", float(finite.min()) if finite.size else np.nan)
        net.history.record(f"{prefix}_precision_per_class", precision_c.tolist())
        net.history.record(f"{prefix}_recall_per_class", recall_c.tolist())
