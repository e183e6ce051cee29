"""Shared set-up of a cleaning experiment: data source -> splits -> injected noise -> estimators.

Used by the ``modal-noisy`` command, the examples and the benchmarks so that they all build the same
thing the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Experiment", "build_coteaching", "build_cross_entropy", "load_experiment", "medical_recipe"]


def medical_recipe(image_side: int) -> dict[str, Any]:
    """Training recipe for orientation-free medical images (fundus, dermoscopy).

    Random flips, random shifts of up to ``image_side // 14`` pixels, and a local-contrast filter
    of the same width (Gaussian sigma ``image_side // 14`` pixels; 2 at 28×28, 4 at 64×64, none
    below 14). Measured with ``benchmarks/clean_upper_bound.py`` (clean labels, 3 seeds): on
    RetinaMNIST (28×28) flips + 2-pixel shifts lifted balanced accuracy from 0.31 to 0.37, the
    filter to 0.41 (chosen by cross-validation on the training split,
    ``benchmarks/recipe_search.py``); on HAM10000 8×8 flips alone gave 0.35, while 2-pixel shifts
    (a quarter of the image) cut it to 0.27. Digits get no augmentation: their class depends on
    orientation.
    """
    width = int(image_side) // 14
    return {"augment": "flips", "max_shift": width, "local_contrast": float(width)}


@dataclass
class Experiment:
    """Splits of one experiment. ``y_true`` is ``None`` when the truth is unknown (a real data set)."""

    name: str
    X_train: np.ndarray
    y_given: np.ndarray
    y_true: np.ndarray | None
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: list[str] = field(default_factory=list)
    #: extra ``recommended_net_kwargs`` for this kind of image (see :func:`medical_recipe`)
    recipe: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def is_noisy(self) -> np.ndarray | None:
        return None if self.y_true is None else self.y_given != self.y_true


def load_experiment(
    source: str,
    *,
    path: str | Path | None = None,
    noise_rate: float = 0.4,
    noise_kind: str = "symmetric",
    imbalance_ratio: float = 10.0,
    random_state: int = 0,
) -> Experiment:
    """Load a data set, split it and inject label noise into the training split.

    The medical sources carry :func:`medical_recipe` as their ``recipe``; digits none.

    Parameters
    ----------
    source : {"digits", "medmnist", "hmnist"}
        ``digits``: scikit-learn's bundled digits made long-tailed (``imbalance_ratio``); ``medmnist``: a
        MedMNIST-layout ``.npz`` at ``path`` (its train/val/test splits); ``hmnist``: a HAM10000
        ``hmnist_*.csv`` at ``path`` (stratified, seeded 70/10/20 split).
    noise_rate : float
        Share of training labels to corrupt; 0 keeps the labels as given (a real noisy data set).
    noise_kind : {"symmetric", "pair"}
    random_state : int
        Seeds the split and the noise.
    """
    from modal_noisy.datasets import (
        load_digits_long_tailed,
        load_hmnist_csv,
        load_medmnist,
        stratified_split,
    )
    from modal_noisy.noise import inject_label_noise

    if source == "digits":
        data = load_digits_long_tailed(imbalance_ratio=imbalance_ratio, random_state=random_state)
        # a validation split carved from the clean test side keeps the training set intact
        X_val, y_val, X_test, y_test = _split_half(data.X_test, data.y_test, random_state)
        X_train, y_train, n_classes = data.X_train, data.y_train, 10
        name = f"digits-LT{imbalance_ratio:g}x"
    elif source == "medmnist":
        if path is None:
            raise ValueError("path is required for source='medmnist' (a MedMNIST .npz file)")
        X_train, y_train = load_medmnist(path, split="train")
        X_val, y_val = load_medmnist(path, split="val")
        X_test, y_test = load_medmnist(path, split="test")
        n_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
        name = Path(path).stem
    elif source == "hmnist":
        if path is None:
            raise ValueError("path is required for source='hmnist' (a HAM10000 hmnist_*.csv file)")
        X, y = load_hmnist_csv(path)
        split = stratified_split(X, y, val_size=0.1, test_size=0.2, random_state=random_state)
        X_train, y_train = split.X_train, split.y_train
        X_val, y_val, X_test, y_test = split.X_val, split.y_val, split.X_test, split.y_test
        n_classes = int(y.max()) + 1
        name = Path(path).stem
    else:
        raise ValueError(f"source must be one of 'digits', 'medmnist', 'hmnist' (got {source!r})")

    if noise_rate > 0:
        noise = inject_label_noise(
            y_train, noise_rate, kind=noise_kind, n_classes=n_classes, random_state=random_state
        )
        y_given, y_true = noise.labels, y_train
    else:
        y_given, y_true = y_train, None
    return Experiment(
        name=name,
        X_train=X_train,
        y_given=y_given,
        y_true=y_true,
        X_val=X_val,
        y_val=y_val,
        X_test=X_test,
        y_test=y_test,
        n_classes=n_classes,
        class_names=[str(c) for c in range(n_classes)],
        recipe={} if source == "digits" else medical_recipe(min(X_train.shape[-2:])),
    )


def _split_half(X: np.ndarray, y: np.ndarray, random_state: int):
    from sklearn.model_selection import train_test_split

    X_val, X_test, y_val, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=random_state
    )
    return X_val, y_val, X_test, y_test


def build_coteaching(
    experiment: Experiment,
    *,
    max_epochs: int = 40,
    selection: str = "loss+vog",
    forget_rate: float | str = "auto",
    class_aware: bool = False,
    device: str = "cpu",
    random_state: int = 0,
    recipe: dict[str, Any] | None = None,
    **params: Any,
):
    """A :class:`~modal_noisy.CoTeachingClassifier` with a SmallCNN and the recommended recipe.

    ``recipe`` (default: the experiment's) adds keyword arguments of ``recommended_net_kwargs``
    such as ``augment``; ``params`` override single skorch parameters.
    """
    from modal_noisy.nets import SmallCNN
    from modal_noisy.training import CoTeachingClassifier, recommended_net_kwargs

    kwargs = recommended_net_kwargs(max_epochs=max_epochs, **_recipe(experiment, recipe))
    kwargs.update(params)
    return CoTeachingClassifier(
        SmallCNN,
        module__in_channels=experiment.in_channels,
        module__n_classes=experiment.n_classes,
        selection=selection,
        forget_rate=forget_rate,
        class_aware=class_aware,
        device=device,
        random_state=random_state,
        **kwargs,
    )


def build_cross_entropy(
    experiment: Experiment,
    *,
    max_epochs: int = 40,
    device: str = "cpu",
    random_state: int = 0,
    recipe: dict[str, Any] | None = None,
    **params: Any,
):
    """The plain cross-entropy baseline: the same SmallCNN and recipe, one network, all labels."""
    import torch
    from skorch import NeuralNetClassifier

    from modal_noisy.nets import SmallCNN
    from modal_noisy.training import recommended_net_kwargs

    kwargs = recommended_net_kwargs(max_epochs=max_epochs, **_recipe(experiment, recipe))
    # SmallCNN returns logits: skorch's default NLLLoss would take their log (NaN losses)
    kwargs.setdefault("criterion", torch.nn.CrossEntropyLoss)
    kwargs.update(params)
    net = NeuralNetClassifier(
        SmallCNN,
        module__in_channels=experiment.in_channels,
        module__n_classes=experiment.n_classes,
        device=device,
        **kwargs,
    )
    # skorch seeds nothing itself: initialise and train under a private, seeded RNG state
    return _Seeded(net, random_state, torch)


def _recipe(experiment: Experiment, recipe: dict[str, Any] | None) -> dict[str, Any]:
    return dict(experiment.recipe if recipe is None else recipe)


class _Seeded:
    """Fit a skorch net under ``torch.random.fork_rng`` seeded with ``random_state``."""

    def __init__(self, net, random_state: int, torch_module) -> None:
        self.net = net
        self.random_state = random_state
        self._torch = torch_module

    def fit(self, X, y):
        with self._torch.random.fork_rng(devices=[]):
            self._torch.manual_seed(self.random_state)
            self.net.fit(X, y)
        return self

    def predict_proba(self, X):
        return self.net.predict_proba(X)

    def predict(self, X):
        # cleanlab's CleanLearning requires fit, predict_proba and predict
        return self.net.predict(X)
