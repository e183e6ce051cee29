"""A run of the method, end to end: its configuration and its data -> noise -> estimator -> cleaner.

- :class:`RunConfig` is the one schema of a run: the ``modal-noisy`` command's options and its
  ``settings.json`` use its field names, and its cleaner fields are the parameters of
  :class:`~modal_noisy.cleaning.ActiveLabelCleaner`, which the journal's header records and
  :meth:`~modal_noisy.cleaning.ActiveLabelCleaner.resume` reads back. Unknown or renamed keys are
  refused with a message that names them.
- :class:`Experiment` holds the splits of a data set with injected noise (:func:`load_experiment`)
  and builds the estimators (:func:`build_coteaching`, :func:`build_cross_entropy`) and the cleaner of
  a run, so the command, the examples and the benchmarks build the same thing the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier

from modal_noisy._device import check_device
from modal_noisy._files import write_text_atomic
from modal_noisy._seeding import torch_seed
from modal_noisy._validation import check_choice, check_fraction, check_positive_int
from modal_noisy.cleaning import ActiveLabelCleaner
from modal_noisy.cleaning.loop import CLEANER_SETTINGS
from modal_noisy.datasets import load_digits_long_tailed, load_hmnist_csv, load_medmnist, stratified_split
from modal_noisy.nets import SmallCNN
from modal_noisy.noise import inject_label_noise
from modal_noisy.strategies import STRATEGIES
from modal_noisy.training import CoTeachingClassifier, recommended_net_kwargs

__all__ = [
    "Experiment",
    "RunConfig",
    "build_coteaching",
    "build_cross_entropy",
    "load_experiment",
    "medical_recipe",
]

SOURCES = ("digits", "medmnist", "hmnist")

#: Keys of settings files written before the names were unified, and what replaced them.
_RENAMED = {
    "budget": "budget_per_round",
    "seed": "random_state",
    "audit": "audit_size",
    "epochs": "max_epochs",
    "local_contrast_filter": None,  # the filter is part of the medical recipe, always
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run: data and noise, phase 1, phase 2, the seed.

    Parameters
    ----------
    source : {"digits", "medmnist", "hmnist"}, default="digits"
        The data set (see :func:`load_experiment`); ``path`` is required for the last two.
    path : str, optional
        The MedMNIST ``.npz`` or HAM10000 ``hmnist_*.csv`` file.
    noise_rate : float in [0, 1), default=0.4
        Share of training labels to corrupt; 0 keeps the labels as given (a real noisy data set).
    noise_kind : {"symmetric", "pair"}, default="symmetric"
    imbalance_ratio : float, default=10.0
        How long-tailed the digits are made (``source="digits"`` only).
    max_epochs, selection, class_aware, forget_rate, decision, device
        Phase 1: the :class:`~modal_noisy.CoTeachingClassifier` parameters of the same names.
    strategy, pool, budget_per_round, rounds, audit_size, recalibration_epochs, lr, momentum, weight_decay, \
recalibrate, recalibrate_from, keep_best, keep_best_tolerance
        Phase 2: the :class:`~modal_noisy.cleaning.ActiveLabelCleaner` parameters of the same names.
    random_state : int, default=0
        Seeds the split, the noise, the estimator and the cleaner.
    """

    source: str = "digits"
    path: str | None = None
    noise_rate: float = 0.4
    noise_kind: str = "symmetric"
    imbalance_ratio: float = 10.0
    max_epochs: int = 40
    selection: str = "loss+vog"
    class_aware: bool = True
    forget_rate: float | str = "auto"
    decision: str = "argmax"
    device: str = "cpu"
    strategy: str = "adaptive_mislabel"
    pool: str = "all"
    budget_per_round: int = 70
    rounds: int = 9
    audit_size: int = 0
    recalibration_epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    recalibrate: str = "both"
    recalibrate_from: str = "phase1"
    keep_best: bool = True
    keep_best_tolerance: float = 2.0
    random_state: int = 0

    def __post_init__(self) -> None:
        check_choice(self.source, "source", SOURCES)
        if self.source != "digits" and self.path is None:
            raise ValueError(f"path is required for source={self.source!r} (got None)")
        check_fraction(self.noise_rate, "noise_rate", high_inclusive=False)
        check_choice(self.noise_kind, "noise_kind", ("symmetric", "pair"))
        check_positive_int(self.max_epochs, "max_epochs")
        check_choice(self.selection, "selection", ("loss", "loss+vog", "loss+random"))
        if self.forget_rate != "auto":
            check_fraction(self.forget_rate, "forget_rate", high_inclusive=False)
        check_choice(self.decision, "decision", ("argmax", "balanced"))
        check_device(self.device)
        check_choice(self.strategy, "strategy", sorted(STRATEGIES))
        # the rest of phase 2's settings: the cleaner's own checks, before any work
        ActiveLabelCleaner(None, **self.cleaner_params())._check_params()
        check_positive_int(self.random_state, "random_state", minimum=0)

    # ------------------------------------------------------------------ the parts of a run
    def data_params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`load_experiment`."""
        return self._pick("source", "path", "noise_rate", "noise_kind", "imbalance_ratio", "random_state")

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`build_coteaching`."""
        return self._pick(
            "max_epochs", "selection", "class_aware", "forget_rate", "decision", "device", "random_state"
        )

    def cleaner_params(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~modal_noisy.cleaning.ActiveLabelCleaner` (the journal's settings)."""
        return self._pick(*CLEANER_SETTINGS)

    def _pick(self, *names: str) -> dict[str, Any]:
        return {name: getattr(self, name) for name in names}

    # ------------------------------------------------------------------ settings files
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> RunConfig:
        """Build a configuration from a mapping; missing keys take their defaults.

        Raises
        ------
        ValueError
            When a key is not a field (the message names it, and what replaced it when it was
            renamed), or a value breaks a field's rule.
        """
        if not isinstance(settings, Mapping):
            raise TypeError(f"settings must be a mapping (got {type(settings).__name__})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [key for key in settings if key not in known]
        if unknown:
            described = []
            for key in unknown:
                if key in _RENAMED:
                    now = _RENAMED[key]
                    described.append(f"{key!r} (now {now!r})" if now else f"{key!r} (no longer a setting)")
                else:
                    described.append(repr(key))
            raise ValueError(
                f"settings have unknown key(s) {', '.join(described)}; valid keys: {', '.join(sorted(known))}"
            )
        return cls(**settings)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the configuration as ``settings.json``-style indented JSON."""
        # atomic: a second run checking the folder never reads half a file
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> RunConfig:
        """Read a configuration written by :meth:`to_json` (see :meth:`from_dict` for the checks)."""
        try:
            settings = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error})") from None
        try:
            return cls.from_dict(settings)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None


@dataclass
class Experiment:
    """Splits of one experiment. ``y_true`` is ``None`` when the truth is unknown (a real data set).

    Built by :func:`load_experiment` or :meth:`from_config`; the ``build_*`` methods make the run's
    estimator, its baseline and its cleaner from a :class:`RunConfig`.
    """

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

    @classmethod
    def from_config(cls, config: RunConfig) -> Experiment:
        """Load the data set of ``config`` and inject its noise."""
        return load_experiment(**config.data_params())

    @property
    def in_channels(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def is_noisy(self) -> np.ndarray | None:
        return None if self.y_true is None else self.y_given != self.y_true

    @property
    def evaluation_splits(self) -> dict[str, np.ndarray]:
        """``X_val``, ``y_val``, ``X_test``, ``y_test``: the keyword arguments of a cleaner's ``fit``."""
        return {"X_val": self.X_val, "y_val": self.y_val, "X_test": self.X_test, "y_test": self.y_test}

    def build_estimator(self, config: RunConfig, **params: Any) -> CoTeachingClassifier:
        """The phase-1 :class:`~modal_noisy.CoTeachingClassifier` of ``config`` (``params`` override)."""
        return build_coteaching(self, **{**config.estimator_params(), **params})

    def build_baseline(self, config: RunConfig, **params: Any) -> _Seeded:
        """Plain cross-entropy with the same network, recipe, epochs and seed as ``config``'s estimator."""
        return build_cross_entropy(
            self,
            max_epochs=config.max_epochs,
            device=config.device,
            random_state=config.random_state,
            **params,
        )

    def build_cleaner(
        self,
        config: RunConfig,
        estimator: Any,
        *,
        journal: str | os.PathLike[str] | None = None,
        verbose: int = 1,
    ) -> ActiveLabelCleaner:
        """The :class:`~modal_noisy.cleaning.ActiveLabelCleaner` of ``config`` around ``estimator``."""
        return ActiveLabelCleaner(estimator, journal=journal, verbose=verbose, **config.cleaner_params())


def medical_recipe(image_side: int) -> dict[str, Any]:
    """Training recipe for orientation-free medical images (fundus, dermoscopy).

    Random flips, random shifts of up to ``image_side // 14`` pixels, and a local-contrast filter
    of the same width (Gaussian sigma ``image_side // 14`` pixels; 2 at 28×28, 4 at 64×64, none
    below 14): shifts wider than that move a small image's content out of view, and the filter
    removes the slow changes of illumination between fundus photographs (chosen on clean labels,
    ``benchmarks/clean_upper_bound.py`` and ``benchmarks/recipe_search.py``). Digits get no
    augmentation: their class depends on orientation.
    """
    width = int(image_side) // 14
    return {"augment": "flips", "max_shift": width, "local_contrast": float(width)}


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
    class_aware: bool = True,
    device: str = "cpu",
    random_state: int = 0,
    recipe: dict[str, Any] | None = None,
    **params: Any,
):
    """A :class:`~modal_noisy.CoTeachingClassifier` with a SmallCNN and the recommended recipe.

    ``recipe`` (default: the experiment's) adds keyword arguments of ``recommended_net_kwargs``
    such as ``augment``; ``params`` override single skorch parameters.
    """
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
    return _Seeded(net, random_state)


def _recipe(experiment: Experiment, recipe: dict[str, Any] | None) -> dict[str, Any]:
    return dict(experiment.recipe if recipe is None else recipe)


class _Seeded:
    """Fit a skorch net under torch generators forked and seeded with ``random_state``."""

    def __init__(self, net, random_state: int) -> None:
        self.net = net
        self.random_state = random_state

    def fit(self, X, y):
        with torch_seed(self.random_state, self.net.device, name="random_state"):
            self.net.fit(X, y)
        return self

    def predict_proba(self, X):
        return self.net.predict_proba(X)

    def predict(self, X):
        # cleanlab's CleanLearning requires fit, predict_proba and predict
        return self.net.predict(X)
