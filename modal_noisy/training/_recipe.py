"""The default training recipe for the small networks of :mod:`modal_noisy.nets`."""

from __future__ import annotations

from typing import Any

import torch

from modal_noisy._validation import check_choice, check_nonnegative, check_positive_int
from modal_noisy.training._augment import FLIP_MODES, RandomAugment
from modal_noisy.training._schedule import CosineLR
from modal_noisy.training._standardize import InputStandardizer

__all__ = ["recommended_net_kwargs"]

_OPTIMIZERS = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
# optimizer -> (lr, weight decay) measured on digits-LT, RetinaMNIST and HAM10000 8×8
_DEFAULTS = {"adamw": (1e-3, 1e-4), "sgd": (0.05, 5e-4)}


def recommended_net_kwargs(
    *,
    max_epochs: int = 40,
    batch_size: int = 64,
    lr: float | None = None,
    optimizer: str = "adamw",
    weight_decay: float | None = None,
    standardize: bool = True,
    augment: str | None = None,
    max_shift: int = 0,
    local_contrast: float = 0.0,
    random_state: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a skorch ``NeuralNetClassifier`` that train the small CNNs well.

    The documented default recipe for :class:`~modal_noisy.nets.SmallCNN` and the backbones of
    :func:`~modal_noisy.nets.make_backbone` on small image sets: cross-entropy on logits, AdamW
    (lr 1e-3, weight decay 1e-4), batches of 64, a cosine learning-rate schedule over
    ``max_epochs`` (40), per-channel input standardisation fitted once on the training data, no
    validation split, shuffled training batches. Plain, unweighted cross-entropy: co-teaching needs
    per-sample losses on a common scale (see ``benchmarks/README.md`` for what class weighting and
    other variants measured).

    Use it as ``NeuralNetClassifier(SmallCNN, module__n_classes=7, **recommended_net_kwargs())``
    (or with :class:`~modal_noisy.training.CoTeachingClassifier`), and override any entry after
    the fact with skorch's parameter names. The callbacks have stable names:
    ``"standardize"`` (:class:`~modal_noisy.training.InputStandardizer`) and ``"lr_schedule"``
    (:class:`~modal_noisy.training.CosineLR`), e.g. ``callbacks__lr_schedule__T_max=10`` or
    ``callbacks__standardize=None`` to drop one.

    Parameters
    ----------
    max_epochs : int, default=40
        Epochs of a ``fit``; the cosine schedule spans them.
    batch_size : int, default=64
    lr : float or None, default=None
        Peak learning rate; None means 1e-3 for AdamW and 0.05 for SGD.
    optimizer : {"adamw", "sgd"}, default="adamw"
        ``"sgd"`` is SGD with Nesterov momentum 0.9.
    weight_decay : float or None, default=None
        None means 1e-4 for AdamW (decoupled) and 5e-4 for SGD.
    standardize : bool, default=True
        Add the ``"standardize"`` callback.
    augment : {None, "flips", "dihedral"}, default=None
        Random flips (``"dihedral"``: flips and 90° rotations) of the *training* batches through
        ``iterator_train__collate_fn`` (:class:`~modal_noisy.training.RandomAugment`). Only for
        images whose class does not depend on orientation (fundus, dermoscopy, histology); off by
        default because it is wrong for digits and text.
    max_shift : int, default=0
        Random translations of the training batches by up to this many pixels (reflected border).
        For orientation-free medical images use ``augment="flips"`` with ``max_shift`` about a
        fourteenth of the side (2 at 28×28), and no shifts on tiny images, where a shift of two
        pixels moves a quarter of the picture out of view (measured effects:
        ``benchmarks/README.md``).
    local_contrast : float, default=0.0
        When > 0, ``module__local_contrast``: the network subtracts from its standardised input
        a Gaussian blur of this standard deviation in pixels (``SmallCNN(local_contrast=...)``,
        also :func:`~modal_noisy.nets.make_backbone`). For fundus photographs about a fourteenth
        of the side (2 at 28×28); it is part of the network, so prediction gets it too.
    random_state : int or None, default=None
        Seed of a private ``torch.Generator`` for the shuffling (``iterator_train__generator``)
        and of the augmentation. The module's initialisation is seeded separately
        (``module__random_state`` of the nets here). None leaves both to torch's global generator.

    Returns
    -------
    dict
        Fresh objects on every call (callbacks are not shared between nets).
    """
    check_positive_int(max_epochs, "max_epochs")
    check_positive_int(batch_size, "batch_size")
    optimizer = check_choice(optimizer, "optimizer", tuple(_OPTIMIZERS))
    default_lr, default_wd = _DEFAULTS[optimizer]
    lr = default_lr if lr is None else lr
    weight_decay = default_wd if weight_decay is None else weight_decay
    if not lr > 0:
        raise ValueError(f"lr must be > 0 (got {lr!r})")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0 (got {weight_decay!r})")

    callbacks: list[tuple[str, Any]] = []
    if standardize:
        callbacks.append(("standardize", InputStandardizer()))
    callbacks.append(("lr_schedule", CosineLR()))
    kwargs: dict[str, Any] = {
        # the nets return logits; skorch's default NLLLoss would treat them as log-probabilities
        "criterion": torch.nn.CrossEntropyLoss,
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
    if augment is not None:
        augment = check_choice(augment, "augment", FLIP_MODES)
    max_shift = check_positive_int(max_shift, "max_shift", minimum=0)
    local_contrast = check_nonnegative(local_contrast, "local_contrast")
    if local_contrast:
        kwargs["module__local_contrast"] = local_contrast
    if augment is not None or max_shift:
        kwargs["iterator_train__collate_fn"] = RandomAugment(
            augment, max_shift=max_shift, random_state=random_state
        )
    return kwargs
