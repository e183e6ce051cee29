"""Co-teaching with VoG-aware clean-sample selection as a skorch ``NeuralNetClassifier``."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_tensor
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from modal_noisy._device import check_device
from modal_noisy._seeding import draw_seeds, torch_seed
from modal_noisy._validation import (
    check_bool,
    check_choice,
    check_finite_array,
    check_fraction,
    check_labels,
    check_mask,
    check_positive_int,
    check_same_length,
)
from modal_noisy.decision import ensemble_prior, label_prior, prior_corrected_predict
from modal_noisy.nets import final_linear
from modal_noisy.training._distributed import BatchRows, BatchShard
from modal_noisy.training._fine_tune import FineTuneMixin
from modal_noisy.training._finite_input import FiniteInputMixin
from modal_noisy.training._indexed import IndexedDataset, split_index
from modal_noisy.training._noise_rate import NOISE_RATE_RANGE, class_noise_rates, wrong_label_share
from modal_noisy.training._persistence import CompanionFilesMixin
from modal_noisy.training._schedule import CosineLR
from modal_noisy.training._selection import (
    forget_rate_at,
    select_samples,
    split_keep,
)
from modal_noisy.training._standardize import InputStandardizer
from modal_noisy.training._vog import VOG_DTYPES, VoGBuffer, forward_capture, last_layer_grad, record_vog_pass

__all__ = ["CoTeachingClassifier"]

SELECTIONS: tuple[str, ...] = ("loss", "loss+vog", "loss+random")
DECISIONS: tuple[str, ...] = ("argmax", "balanced")
VOG_SOURCES: tuple[str, ...] = ("training", "checkpoint")
# the rest of recommended_net_kwargs()'s recipe that is not a named parameter (same values)
_RECIPE_KWARGS: dict[str, Any] = {"optimizer__weight_decay": 1e-4, "iterator_train__shuffle": True}
# the recipe's callbacks, added unless the user's callbacks already carry these names
_RECIPE_CALLBACKS: tuple[tuple[str, type], ...] = (
    ("standardize", InputStandardizer),
    ("lr_schedule", CosineLR),
)


def _check_trusted_length(trusted: np.ndarray, n: int) -> None:
    if len(trusted) != n:
        raise ValueError(f"trusted must have one entry per training sample (got {len(trusted)} for {n})")


def _reset_parameters(module: nn.Module) -> None:
    for sub in module.modules():
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset):
            reset()


class _RunState:
    """Per-sample training state keyed by dataset index (all tensors on the training device)."""

    def __init__(
        self,
        n: int,
        n_classes: int,
        device: torch.device,
        vog_dim: int | None,
        vog_window: int,
        vog_dtype: torch.dtype,
    ) -> None:
        self.n = n
        self.n_classes = n_classes
        f32 = dict(dtype=torch.float32, device=device)
        self.loss1 = torch.zeros(n, **f32)
        self.loss2 = torch.zeros(n, **f32)
        self.pred = torch.full((n,), -1, dtype=torch.long, device=device)
        self.label = torch.full((n,), -1, dtype=torch.long, device=device)
        self.sel1 = torch.zeros(n, dtype=torch.bool, device=device)
        self.sel2 = torch.zeros(n, dtype=torch.bool, device=device)
        self.seen = torch.zeros(n, dtype=torch.bool, device=device)
        # running sums over epochs for the noise estimates (averages damp late memorisation)
        self.prob = torch.zeros(n, n_classes, **f32)
        self.prob_sum = torch.zeros(n, n_classes, **f32)
        self.loss_sum1 = torch.zeros(n, dtype=torch.float32, device=device)
        self.loss_sum2 = torch.zeros(n, dtype=torch.float32, device=device)
        self.epochs_seen = torch.zeros(n, dtype=torch.long, device=device)
        self.is_train = torch.zeros(n, dtype=torch.bool, device=device)
        # samples kept out of both networks' updates while the noise rate is estimated
        self.held_out = torch.zeros(n, dtype=torch.bool, device=device)
        self.holding_out = False
        # labels known to be right (an expert's answers): always selected, never held out or estimated
        self.trusted = torch.zeros(n, dtype=torch.bool, device=device)
        self.vog1 = self.vog2 = None
        self.vog_values1 = torch.zeros(n, **f32)
        self.vog_values2 = torch.zeros(n, **f32)
        self.reserved1: torch.Tensor | None = None
        self.reserved2: torch.Tensor | None = None
        if vog_dim is not None:
            kw = dict(dtype=vog_dtype, device=device)
            self.vog1 = VoGBuffer(n, vog_dim, vog_window, **kw)
            self.vog2 = VoGBuffer(n, vog_dim, vog_window, **kw)

    def to(self, device: torch.device | str) -> _RunState:
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
            elif isinstance(value, VoGBuffer):
                value.buffer = value.buffer.to(device)
                value.count = value.count.to(device)
        return self


class CoTeachingClassifier(FiniteInputMixin, FineTuneMixin, CompanionFilesMixin, NeuralNetClassifier):
    """Two networks trained with co-teaching and VoG-aware clean-sample selection (Khanal et al. 2024).

    A skorch :class:`~skorch.NeuralNetClassifier` holding two networks of the same architecture,
    ``module_`` and ``module2_``, initialised differently and trained at the same time with their own
    optimizers (``optimizer_``, ``optimizer2_``). Per mini-batch of ``n`` samples in epoch ``e``
    (0-based):

    1. both networks compute per-sample cross-entropy losses against the given labels;
    2. ``r = ⌊(1 - τ_e) n⌋`` samples are kept, ``τ_e = τ · min(e / num_gradual, 1) ** exponent``;
    3. network ``k`` selects its ``r`` smallest-loss samples (``selection="loss"``); with
       ``"loss+vog"``, once ``e >= num_gradual`` and every training sample has ``vog_window``
       gradients, it takes ``⌊r (1 - mix_ratio)⌋`` by smallest loss and fills the other places with
       the samples of smallest VoG not yet taken (``"loss+random"``: filled at random, the control);
    4. network 1 is updated on network 2's selection and vice versa, each with the mean loss over
       the selection.

    Prediction (``predict_proba``) is the softmax of the sum of both networks' logits; after
    :meth:`fine_tune` with ``networks="first"`` (the paper) it uses network 1 alone
    (``inference_networks_``). ``predict`` takes its arg-max, or with ``decision="balanced"`` the
    arg-max after dividing by the class prior of the training labels once per summed network
    (``decision_prior_``).

    VoG (Variance of Gradients) is tracked for every sample from the **training forward pass**:
    the cross-entropy gradient with respect to the given label's row of the final linear layer
    (weights and bias) is ``(p_y - 1)·[h, 1]``, read from the logits and the layer's input ``h``
    (captured by a forward hook; the layer is found with :func:`modal_noisy.nets.final_linear`).
    The last ``vog_window`` gradients of each sample sit in a ring buffer keyed by dataset index;
    VoG is the mean over coordinates of their standard deviation, computed once per epoch with
    written-out moments. Memory: ``2 × N × vog_window × (D + 1)`` values of ``vog_dtype``
    (``N`` samples, ``D`` input features of the final layer; two networks), e.g. N = 10,000,
    D = 128, float32: 52 MB. ``vog_source="checkpoint"`` instead runs an extra eval-mode,
    no-gradient pass over the training set at the end of every epoch (the reference code's
    approach; BatchNorm statistics are left untouched); it is slower, see
    ``benchmarks/vog_overhead.py``.

    Parameters
    ----------
    module : torch module class or instance
        The network; it must expose its final ``nn.Linear`` as ``head`` (see
        :func:`modal_noisy.nets.final_linear`) and return logits. ``module__*`` parameters are
        passed to both networks. If they include an int ``random_state``, network 2 gets
        ``random_state + 1`` (two identical networks would make co-teaching degenerate).
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
        Must be :class:`torch.nn.CrossEntropyLoss` (or a subclass); its ``weight`` and
        ``label_smoothing`` are honoured in the per-sample losses and the VoG gradients.
    optimizer, lr, batch_size, max_epochs : default AdamW, 1e-3, 64, 40
        The recipe of :func:`~modal_noisy.training.recommended_net_kwargs` is the estimator's own
        default: AdamW with ``optimizer__weight_decay=1e-4``, batches of 64, shuffled
        (``iterator_train__shuffle=True``), and two callbacks, ``"standardize"``
        (:class:`~modal_noisy.training.InputStandardizer`) and ``"lr_schedule"``
        (:class:`~modal_noisy.training.CosineLR`), so ``CoTeachingClassifier(SmallCNN,
        module__n_classes=K)`` trains well as it is. A user callback of the same name replaces the
        recipe's; ``callbacks__lr_schedule=None`` switches one off.
    forget_rate : float in [0, 1) or "auto", default="auto"
        The assumed noise rate ``τ``. A float reproduces the paper (which sets it to the true rate).
        ``"auto"`` estimates it from the training data alone, see Notes; the estimate is stored in
        ``noise_rate_``.
    num_gradual : int, default=10
        Epochs ``T_k`` over which the forget rate ramps up (and the warm-up before VoG mixing).
    exponent : float, default=1.0
        Exponent ``c`` of the ramp.
    selection : {"loss", "loss+vog", "loss+random"}, default="loss+vog"
        Clean-sample selection rule (see above).
    mix_ratio : float in [0, 1], default=0.2
        Share ``λ`` of the kept places filled by smallest VoG (or at random). 0 = loss only.
    vog_window : int >= 2, default=5
        Number of most recent epochs ``K`` over which VoG is computed.
    vog_source : {"training", "checkpoint"} or None, default="training"
        Where the per-sample gradients come from: the training forward pass (free) or an extra
        eval-mode pass per epoch. ``None`` tracks no VoG (``vog_`` is then all zeros); allowed only
        with ``selection`` other than ``"loss+vog"``.
    vog_dtype : {"float32", "float16", "float64"}, default="float32"
        Storage type of the VoG ring buffers.
    class_aware : bool, default=True
        Reserve part of every class's likely-clean samples before the paper's rule fills the rest
        of each batch's ``r`` places (see Notes): rare classes are no longer emptied. False is
        faithful to the paper.
    class_reserve : float in [0, 1], default=0.75
        With ``class_aware=True``: share of each class's estimated clean samples that is reserved
        (at least one sample per class). 0 = the paper's selection.
    decision : {"argmax", "balanced"}, default="argmax"
        How :meth:`predict` turns probabilities into classes. ``"balanced"`` divides them by
        ``decision_prior_`` first (:func:`modal_noisy.decision.prior_corrected_predict`), the
        decision that maximises balanced accuracy; on imbalanced data it trades majority-class
        recall for rare-class recall (*Clean-label ceilings* in ``benchmarks/RESULTS.md``).
        ``predict_proba``, and so every query strategy, is unaffected.
    random_state : int, numpy RandomState or None, default=None
        Seeds the two networks' initialisations, the shuffling, dropout and the random fill.
        The same int gives identical results on the CPU. The caller's global torch and numpy
        random states are never reseeded (torch's generators are forked and restored).
    train_split : callable or None, default=None
        As in skorch. With a split, held-out samples are never selected (``clean_mask_`` is False
        for them); their ``sample_loss_`` and ``vog_`` come from the validation pass.
    **kwargs
        Everything else of :class:`skorch.NeuralNetClassifier` (``optimizer``, ``lr``,
        ``max_epochs``, ``batch_size``, ``callbacks``, ``device``, …). See
        :func:`modal_noisy.training.recommended_net_kwargs` for a recipe that trains well.

    Attributes
    ----------
    module_, module2_ : torch.nn.Module
        Networks 1 and 2.
    optimizer_, optimizer2_ : torch.optim.Optimizer
        Their optimizers. ``optimizer2_`` mirrors every hyper-parameter of ``optimizer_``'s param
        groups (``lr``, ``momentum``, …) before each step, so skorch's ``LRScheduler`` (which steps
        ``optimizer_`` only), ``set_params(lr=...)`` and every other schedule drive both networks.
    clean_mask_ : ndarray of bool, shape (N,)
        Samples selected as clean by network 1 in the last epoch (``N`` = samples passed to
        ``fit``); the rest is the noisy pool.
    sample_loss_ : ndarray of float32, shape (N,)
        Network 1's per-sample cross-entropy against the given label in the last epoch, as seen in
        the training pass (train mode) or the validation pass for held-out samples.
    vog_ : ndarray of float32, shape (N,)
        Network 1's VoG at the end of the last epoch; finite. Until a sample has ``vog_window``
        gradients it is the standard deviation over the gradients it has (0 after one epoch).
    training_proba_ : ndarray of float32, shape (N, n_classes)
        Each sample's probabilities (softmax of both networks' summed logits) from the training passes,
        averaged over the epochs so far: the predictions made before the networks memorised a wrong
        label count as much as the last ones, which makes it the better record for ranking likely
        mislabelled samples (:func:`~modal_noisy.strategies.training_margin_query`). Uniform for a
        sample no training pass has seen (a ``train_split``'s validation part); :meth:`fine_tune`
        leaves it alone.
    noise_rate_ : float
        The forget rate ``τ`` in use (the estimate with ``forget_rate="auto"``).
    noise_estimates_ : list of float
        The overall noise estimate of each epoch until the estimate was frozen.
    class_noise_rates_ : ndarray of float, shape (n_classes,)
        Per-class noise estimates (given-label classes) behind the class-aware reserves, scaled so
        that their sample-weighted mean is ``noise_rate_`` (estimated in every mode).
    inference_networks_ : int
        2 after ``fit`` (sum of logits); after :meth:`fine_tune`, 1 with ``networks="first"``
        (network 1 only) and 2 with ``networks="both"``.
    classes_ : ndarray
        ``arange(n_classes)`` (labels are class indices).
    class_prior_ : ndarray of float, shape (n_classes,)
        Class frequencies of the labels of the last ``fit`` / ``partial_fit`` (each at least
        ``1 / (n + n_classes)``: a class without labels gets a small pseudo-count), used by
        ``decision="balanced"``; :meth:`fine_tune` replaces it with the frequencies of its labels.
    decision_prior_ : ndarray of float, shape (n_classes,), or None
        What ``predict`` divides the probabilities by: None with ``decision="argmax"``, else
        ``class_prior_ ** inference_networks_`` (normalised). The prediction of two networks is
        the softmax of their summed logits, a product of two posteriors that each carry the
        training prior, so the prior is divided out once per network.
    history : skorch History
        Per epoch, besides skorch's entries: ``forget_rate`` (``τ_e``), ``noise_rate`` (``τ``),
        ``selected_frac`` (share of the training samples network 1 selected), ``vog_mixing``
        (whether the VoG/random fill was active), ``train_loss`` (mean of the two networks'
        selected-sample losses), ``train_loss1`` / ``train_loss2`` (each network's loss on its
        peer's selection).

    Notes
    -----
    ``forget_rate="auto"`` estimates the noise rate from the training data alone. While it is
    estimated, a seeded random fifth of the training samples (at least 200, at most half) is held
    out of both networks' updates but still predicted every epoch; once the estimate is frozen they
    rejoin training. Each epoch's estimate is a mixture-proportion estimate on the held-out
    predictions (:func:`~modal_noisy.training.wrong_label_share`): a wrong label the networks have
    not memorised looks like a label drawn at random among the wrong classes, whatever the
    network's accuracy, which is what lets the estimate hold where the clean labels are hard to
    fit (fundus grades, 8×8 dermoscopy) and small-loss mixtures mistake hard classes for noise.
    The rate in use is the median of the estimates from epoch 1 on, frozen at the first plateau (an
    estimate within 2% of the one before) and at the latest after epoch
    ``max(min(num_gradual, 6), 3) - 1``; epoch 0 forgets nothing, and each epoch uses the estimate
    available at its start. Where wrong labels follow a pattern the networks learn (a class
    systematically given one other label: pair noise, adjacent grades), the estimate is too low;
    set the rate from an expert's random audit then (:mod:`modal_noisy.cleaning.audit`, or
    ``ActiveLabelCleaner(audit_size=...)``, which does it for you). ``benchmarks/noise_estimate.py``
    measures the estimate on all three benchmark data sets.

    Per given-label class ``c``, the noise rate ``τ_c`` (``class_noise_rates_``) is the confident
    joint of confident learning on the epoch-averaged predictions (a rare class's lower confidence
    does not count its clean samples as noisy), scaled so that its sample-weighted mean is
    ``noise_rate_``; a class with fewer than ``MIN_CLASS_SAMPLES`` training samples gets the
    overall rate (with a warning naming it), and every rate is clipped to
    :data:`~modal_noisy.training.NOISE_RATE_RANGE`.

    ``class_aware=True``: at the start of each epoch, class ``c`` reserves
    ``class_reserve · (1 - ramp · (1 - s_c)) · n_c`` of its ``n_c`` samples, ranked within the
    class by each network's own loss averaged over the past epochs (the ``mix_ratio`` share by VoG
    when mixing is on). ``s_c`` is the clean share ``1 - τ_c`` plus one binomial standard error,
    but never less than the data set's ``1 - noise_rate_``: the estimate of a class made mostly of
    wrong labels is the least reliable one, and its few clean samples are the costliest to lose.
    In each batch, a network's reserved samples are taken first; the remaining of the ``r`` places
    follow the paper's rule. Deciding the reserve per epoch rather than per batch matters: a rare
    class has a handful of samples per batch.

    Checkpointing: ``save_params(f_params="p.pt")`` (and thus skorch's ``Checkpoint`` /
    ``LoadInitState``) also writes network 2 to ``p_module2.pt`` and its optimizer next to
    ``f_optimizer`` as ``<name>_optimizer2.pt``, and ``load_params`` reads them when present;
    pass ``f_module2`` / ``f_optimizer2`` to choose other names. The per-sample state (VoG
    buffers, selections) is not checkpointed: a resumed run restarts the VoG window.

    Optimizers that need a closure (LBFGS) are not supported: each batch runs one forward and one
    backward pass of both networks, then steps both optimizers.
    """

    _PLATEAU_TOL = 0.02  # relative move between consecutive epochs' estimates
    # share of the samples held out of training while the noise rate is estimated (at least
    # _HOLD_OUT_MIN samples, at most half the data set)
    _HOLD_OUT_SHARE = 0.2
    _HOLD_OUT_MIN = 200
    #: a class with fewer training samples gets the overall noise rate (too few to estimate its own)
    MIN_CLASS_SAMPLES = 10
    # standard errors added to a class's estimated clean share before reserving (small classes
    # have the noisiest estimates; a missed rare clean sample costs more than a kept noisy one)
    _RESERVE_SE = 1.0

    def __init__(
        self,
        module: Any,
        *args: Any,
        criterion: Any = nn.CrossEntropyLoss,
        train_split: Any = None,
        optimizer: Any = torch.optim.AdamW,
        lr: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 40,
        forget_rate: float | str = "auto",
        num_gradual: int = 10,
        exponent: float = 1.0,
        selection: str = "loss+vog",
        mix_ratio: float = 0.2,
        vog_window: int = 5,
        vog_source: str | None = "training",
        vog_dtype: str = "float32",
        class_aware: bool = True,
        class_reserve: float = 0.75,
        decision: str = "argmax",
        random_state: Any = None,
        **kwargs: Any,
    ) -> None:
        for key, value in _RECIPE_KWARGS.items():
            kwargs.setdefault(key, value)
        super().__init__(
            module,
            *args,
            criterion=criterion,
            train_split=train_split,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            **kwargs,
        )
        self.forget_rate = forget_rate
        self.num_gradual = num_gradual
        self.exponent = exponent
        self.selection = selection
        self.mix_ratio = mix_ratio
        self.vog_window = vog_window
        self.vog_source = vog_source
        self.vog_dtype = vog_dtype
        self.class_aware = class_aware
        self.class_reserve = class_reserve
        self.decision = decision
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _validate_hyperparams(self) -> None:
        if self.forget_rate != "auto":
            if isinstance(self.forget_rate, str):
                raise ValueError(
                    f"forget_rate must be a number in [0, 1) or 'auto' (got {self.forget_rate!r})"
                )
            # 1 would keep nothing (the schedule keeps one sample per batch): never a noise rate
            check_fraction(self.forget_rate, "forget_rate", high_inclusive=False)
        if self.device is not None:
            check_device(self.device)
        check_positive_int(self.num_gradual, "num_gradual", minimum=0)
        check_fraction(self.exponent, "exponent", low=0.0, high=float("inf"), low_inclusive=False)
        check_choice(self.selection, "selection", SELECTIONS)
        check_fraction(self.mix_ratio, "mix_ratio")
        check_positive_int(self.vog_window, "vog_window", minimum=2)
        if self.vog_source is not None:
            check_choice(self.vog_source, "vog_source", VOG_SOURCES)
        elif self.selection == "loss+vog":
            raise ValueError("vog_source must not be None with selection='loss+vog' (got None)")
        check_choice(self.vog_dtype, "vog_dtype", tuple(VOG_DTYPES))
        check_bool(self.class_aware, "class_aware")
        check_fraction(self.class_reserve, "class_reserve")
        check_choice(self.decision, "decision", DECISIONS)

    def _validate_data(self, X: Any, y: Any) -> tuple[Any, Any]:
        n_classes = self._n_classes()
        if isinstance(X, torch.utils.data.Dataset):
            if y is not None:
                y = check_labels(y, "y", n_classes=n_classes)
            return X, y
        if isinstance(X, torch.Tensor):
            if not bool(torch.isfinite(X).all()):
                n_bad = int((~torch.isfinite(X)).sum())
                raise ValueError(f"X must not contain NaN or infinity (got {n_bad} non-finite values)")
        elif isinstance(X, np.ndarray) or not isinstance(X, (Mapping, list, tuple)):
            X = check_finite_array(X, "X")
        if y is None:
            raise ValueError("y must be given with array input X (got None)")
        y = check_labels(y, "y", n_classes=n_classes)
        if not isinstance(X, Mapping):
            check_same_length(X, y, "X", "y")
        return X, y

    def _n_classes(self) -> int:
        return int(final_linear(self.module_).out_features)

    # ------------------------------------------------------------------ initialisation
    def initialize(self) -> CoTeachingClassifier:
        self._validate_hyperparams()
        for name in (
            "noise_rate_",
            "class_noise_rates_",
            "clean_mask_",
            "sample_loss_",
            "vog_",
            "training_proba_",
            "estimates_frozen_",
        ):
            self.__dict__.pop(name, None)
        self.noise_estimates_: list[float] = []
        self.class_shapes_: list[np.ndarray] = []
        super().initialize()
        self.run_state_: _RunState | None = None
        self.inference_networks_ = 2
        return self

    def get_default_callbacks(self) -> list[tuple[str, Any]]:
        """skorch's defaults plus the recipe's ``"standardize"`` and ``"lr_schedule"`` callbacks.

        A user callback of the same name (e.g. from :func:`recommended_net_kwargs`) replaces the
        recipe's; ``callbacks__standardize=None`` switches one off.
        """
        names = {item[0] if isinstance(item, tuple) else type(item).__name__ for item in self.callbacks or ()}
        recipe = [(name, cls()) for name, cls in _RECIPE_CALLBACKS if name not in names]
        return [*super().get_default_callbacks(), *recipe]

    def initialize_module(self) -> CoTeachingClassifier:
        """Create ``module_`` and ``module2_`` from two different seeds drawn from ``random_state``."""
        kwargs = self.get_params_for("module")
        seed1, seed2 = draw_seeds(self.random_state, 2)
        with torch_seed(seed1):
            module = self.initialized_instance(self.module, kwargs)
        with torch_seed(seed2):
            if isinstance(self.module, nn.Module) and not kwargs:
                module2 = copy.deepcopy(module)
                _reset_parameters(module2)
            else:
                kwargs2 = dict(kwargs)
                rs = kwargs2.get("random_state")
                if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
                    kwargs2["random_state"] = int(rs) + 1
                module2 = self.initialized_instance(self.module, kwargs2)
        final_linear(module)  # fail early, with the explanation, if there is no head
        self.module_ = module
        self.module2_ = module2
        return self

    def initialize_criterion(self) -> CoTeachingClassifier:
        super().initialize_criterion()
        if not isinstance(self.criterion_, nn.CrossEntropyLoss):
            raise ValueError(
                "criterion must be torch.nn.CrossEntropyLoss (the selection and the closed-form "
                f"VoG assume it) (got {type(self.criterion_).__name__})"
            )
        return self

    def initialize_optimizer(self, triggered_directly: Any = None) -> CoTeachingClassifier:
        """One optimizer per network, built from the same ``optimizer`` / ``optimizer__*`` settings."""
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **kwargs)
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module2_.named_parameters())
        self.optimizer2_ = self.optimizer(*args, **kwargs)
        return self

    # ------------------------------------------------------------------ data plumbing
    def get_split_datasets(self, X: Any, y: Any = None, **fit_params: Any) -> tuple[Any, Any]:
        """Wrap the data so every batch carries dataset indices, then split as skorch does."""
        dataset = IndexedDataset(self.get_dataset(X, y))
        self._ensure_run_state(len(dataset))
        self._apply_trusted(len(dataset))
        if not self.train_split:
            return dataset, None
        if y is None:
            return self.train_split(dataset, **fit_params)
        return self.train_split(dataset, y, **fit_params)

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """skorch's iterator; the training loader shuffles with the net's own seeded generator."""
        if training and "iterator_train__generator" not in vars(self):
            gen = getattr(self, "loader_generator_", None)
            iterator = self.iterator_train
            if gen is not None and isinstance(iterator, type) and issubclass(iterator, DataLoader):
                kwargs = self.get_params_for("iterator_train")
                kwargs.setdefault("batch_size", self.batch_size)
                if kwargs["batch_size"] == -1:
                    kwargs["batch_size"] = len(dataset)
                return iterator(dataset, generator=gen, **kwargs)
        return super().get_iterator(dataset, training=training)

    def _ensure_run_state(self, n: int) -> None:
        state = getattr(self, "run_state_", None)
        if state is not None and state.n == n:
            state.to(self.device)
            return
        head = final_linear(self.module_)
        vog_dim = head.in_features + 1 if self.vog_source is not None else None
        self.run_state_ = _RunState(
            n,
            head.out_features,
            torch.device(self.device),
            vog_dim,
            self.vog_window,
            VOG_DTYPES[self.vog_dtype],
        )

    def _apply_trusted(self, n: int) -> None:
        """Copy the ``trusted`` mask of the current ``fit`` / ``partial_fit`` into the run state."""
        trusted = getattr(self, "_trusted_for_fit", None)
        state = self.run_state_
        if trusted is None:
            state.trusted.zero_()
            return
        _check_trusted_length(trusted, n)
        state.trusted = torch.as_tensor(trusted, dtype=torch.bool, device=state.label.device)

    # ------------------------------------------------------------------ forward helpers
    @staticmethod
    def _call(module: nn.Module, x: Any, fit_params: Mapping[str, Any]) -> torch.Tensor:
        if isinstance(x, Mapping):
            return module(**{**x, **fit_params})
        return module(x, **fit_params)

    def _per_sample_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        crit = self.criterion_
        return F.cross_entropy(
            logits,
            y,
            weight=crit.weight,
            ignore_index=crit.ignore_index,
            reduction="none",
            label_smoothing=crit.label_smoothing,
        )

    def _grad(self, logits: torch.Tensor, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        crit = self.criterion_
        return last_layer_grad(logits, h, y, class_weight=crit.weight, label_smoothing=crit.label_smoothing)

    def infer(self, x: Any, **fit_params: Any) -> torch.Tensor:
        """Logits of network 1 plus (unless fine-tuned) network 2 for a batch."""
        x, _ = split_index(x)
        x = to_tensor(x, device=self.device)
        logits = self._call(self.module_, x, fit_params)
        if getattr(self, "inference_networks_", 2) == 2:
            logits = logits + self._call(self.module2_, x, fit_params)
        return logits

    # ------------------------------------------------------------------ training
    def partial_fit(
        self, X: Any, y: Any = None, classes: Any = None, *, trusted: Any = None, **fit_params: Any
    ) -> Any:
        """Co-teach both networks for ``max_epochs`` more epochs (or ``epochs=`` of ``fit_params``).

        ``trusted`` (bool array, one entry per sample, optional) marks labels known to be right, such
        as an expert's answers: both networks always select them, the forget rate applies to the
        other samples only, and they are never held out for, nor counted in, the noise estimates.
        """
        self._validate_hyperparams()
        if not self.initialized_:
            self.initialize()
        X, y = self._validate_data(X, y)
        self._trusted_for_fit = None if trusted is None else check_mask(trusted, "trusted")
        if y is not None:
            self.class_prior_ = label_prior(y, self._n_classes())
        elif self.decision == "balanced":
            raise ValueError(
                "decision='balanced' needs the training labels to count the class prior: pass y "
                "with a Dataset X (got y=None)"
            )
        seed = draw_seeds(self.random_state, 3)[2]  # 0 and 1 initialise the networks
        seed = (seed + 7919 * len(self.history)) % np.iinfo(np.int32).max
        self.inference_networks_ = 2
        with torch_seed(seed, self.device):
            self.loader_generator_ = torch.Generator().manual_seed(seed)
            self.select_generator_ = torch.Generator(device=self.device).manual_seed(seed + 1)
            try:
                super().partial_fit(X, y, classes=classes, **fit_params)
            finally:
                self.loader_generator_ = None
                self.select_generator_ = None
                self._trusted_for_fit = None
        return self

    def fit(self, X: Any, y: Any = None, *, trusted: Any = None, **fit_params: Any) -> Any:
        """Initialise both networks (unless ``warm_start``) and co-teach them on ``(X, y)``.

        ``trusted``: see :meth:`partial_fit`.
        """
        self._validate_hyperparams()
        if trusted is not None:
            trusted = check_mask(trusted, "trusted")
            if isinstance(X, (np.ndarray, torch.Tensor, torch.utils.data.Dataset)):
                _check_trusted_length(trusted, len(X))  # before the networks are built
        return super().fit(X, y, trusted=trusted, **fit_params)

    def predict(self, X: Any) -> np.ndarray:
        """Class of each sample: arg-max of ``predict_proba``, prior-corrected if ``decision="balanced"``."""
        prior = self.decision_prior_
        if prior is None:
            return super().predict(X)
        return prior_corrected_predict(self.predict_proba(X), prior)

    @property
    def decision_prior_(self) -> np.ndarray | None:
        """The prior ``predict`` divides by (see the class's Attributes)."""
        if check_choice(self.decision, "decision", DECISIONS) == "argmax":
            return None
        prior = getattr(self, "class_prior_", None)
        if prior is None:
            # save_params/load_params restore the networks, not the label statistics of fit
            raise ValueError(
                "decision='balanced' needs class_prior_, the class frequencies of the training labels, "
                "which fit sets: after load_params assign it (net.class_prior_ = counts / counts.sum()) "
                "or pickle the whole net instead (got no class_prior_)"
            )
        return ensemble_prior(prior, getattr(self, "inference_networks_", 2))

    def check_data(self, X: Any, y: Any) -> None:
        super().check_data(X, y)
        # labels are class indices: report every class the network has, present in y or not
        self.classes_inferred_ = np.arange(self._n_classes())

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """One forward and backward pass of both networks, then one step of each optimizer."""
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self._mirror_optimizer()
        self._step_optimizer(None)
        return step

    def _mirror_optimizer(self) -> None:
        groups1 = self.optimizer_.param_groups
        groups2 = self.optimizer2_.param_groups
        if len(groups1) != len(groups2):
            return
        for g1, g2 in zip(groups1, groups2, strict=True):
            for key, value in g1.items():
                if key != "params":
                    g2[key] = value

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Co-teaching step: select on each network's losses, update each on the peer's selection."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x, index = split_index(Xi)
        if index is None:
            raise ValueError(
                "CoTeachingClassifier needs batches from its own training dataset "
                "(override get_split_datasets only through IndexedDataset)"
            )
        x = to_tensor(x, device=self.device)
        y = to_tensor(yi, device=self.device)
        index = index.to(self.device)
        with self._autocast():
            logits1, h1 = forward_capture(self.module_, x, fit_params)
            logits2, h2 = forward_capture(self.module2_, x, fit_params)
            loss1 = self._per_sample_loss(logits1, y)
            loss2 = self._per_sample_loss(logits2, y)
        with torch.no_grad():
            rows = BatchRows(index, y, loss1.detach(), loss2.detach(), (logits1 + logits2).detach().float())
            if self.vog_source == "training":
                rows.grad1, rows.grad2 = self._grad(logits1, h1, y), self._grad(logits2, h2, y)
        # the global batch (all processes); shard is None on one process
        rows, shard = self._gather_rows(rows)
        sel1, sel2 = self._select(rows.index, rows.y, rows.loss1, rows.loss2)
        state = self.run_state_
        if state.holding_out:
            held = state.held_out[rows.index]
            sel1, sel2 = sel1 & ~held, sel2 & ~held
        own1, own2, scale = sel1, sel2, 1
        if shard is not None:
            own1, own2, scale = shard.local(sel1), shard.local(sel2), shard.world_size
        # network 1 learns from network 2's pick and vice versa (where(), not masking: no sync);
        # a mean over the global selection (data-parallel training averages the ranks' gradients)
        obj1 = torch.where(own2, loss1, 0.0).sum() * scale / sel2.sum().clamp(min=1)
        obj2 = torch.where(own1, loss2, 0.0).sum() * scale / sel1.sum().clamp(min=1)
        self._backward(obj1 + obj2)

        with torch.no_grad():
            objective = torch.stack(
                [
                    torch.where(sel2, rows.loss1, 0.0).sum() / sel2.sum().clamp(min=1),
                    torch.where(sel1, rows.loss2, 0.0).sum() / sel1.sum().clamp(min=1),
                ]
            )
            self.epoch_loss_sum_ += objective.double() * len(rows.y)
            self.epoch_loss_count_ += len(rows.y)
            index = rows.index
            state.loss1[index] = rows.loss1.float()
            state.loss2[index] = rows.loss2.float()
            state.pred[index] = rows.logits.argmax(1)
            state.prob[index] = torch.softmax(rows.logits, dim=1)
            state.label[index] = rows.y
            state.sel1[index] = sel1
            state.sel2[index] = sel2
            state.seen[index] = True
            state.is_train[index] = True
            if rows.grad1 is not None:
                state.vog1.update(index, rows.grad1)
                state.vog2.update(index, rows.grad2)
        return {
            "loss": objective.mean(),
            "y_pred": logits1.detach() + logits2.detach(),
        }

    def _set_training(self, training: bool = True) -> None:
        """skorch's mode switch, skipping networks whose every layer is already in that mode.

        skorch switches every network and criterion at every step; a recursive ``train()`` over a
        network costs host time (about 0.5 ms per step for two SmallCNNs) for nothing when no layer
        changes. A network with a layer in the other mode (a custom ``train``, MC dropout) is switched.
        """
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, nn.Module) and any(m.training != training for m in module.modules()):
                module.train(training)

    # hooks of the multi-process engine (AcceleratedCoTeachingClassifier); one process: no-ops
    def _gather_rows(self, rows: BatchRows) -> tuple[BatchRows, BatchShard | None]:
        """The step's rows of the global batch and this process's part in it (None: one process)."""
        return rows, None

    def _backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context of the forward passes (mixed precision under an engine that has it)."""
        return contextlib.nullcontext()

    def _select(
        self, index: torch.Tensor, y: torch.Tensor, loss1: torch.Tensor, loss2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = loss1.shape[0]
        fill_fraction = self.mix_ratio if self.epoch_mixing_ else 0.0
        gen = self.select_generator_
        state = self.run_state_
        r = max(int(np.floor((1.0 - self.epoch_forget_rate_) * n)), 1)
        key1 = key2 = None
        if fill_fraction > 0.0:
            if self.selection == "loss+vog":
                key1, key2 = state.vog_values1[index], state.vog_values2[index]
            else:
                key1 = torch.rand(n, generator=gen, device=loss1.device)
                key2 = torch.rand(n, generator=gen, device=loss1.device)
        reserved1 = reserved2 = None
        if state.reserved1 is not None:
            reserved1, reserved2 = state.reserved1[index], state.reserved2[index]
        if self.trusting_:
            # trusted samples are always kept; the forget rate applies to the others
            trusted = state.trusted[index]
            n_trusted = trusted.sum()
            r = n_trusted + torch.floor((1.0 - self.epoch_forget_rate_) * (n - n_trusted)).long().clamp(min=1)
            reserved1 = trusted if reserved1 is None else reserved1 | trusted
            reserved2 = trusted if reserved2 is None else reserved2 | trusted
        return (
            self._select_one(loss1, r, reserved1, key1, fill_fraction),
            self._select_one(loss2, r, reserved2, key2, fill_fraction),
        )

    @staticmethod
    def _select_one(
        loss: torch.Tensor,
        r: int,
        reserved: torch.Tensor | None,
        key: torch.Tensor | None,
        fill_fraction: float,
    ) -> torch.Tensor:
        """``r`` samples of the batch: the reserved ones (class-aware), then the rest by the paper's rule."""
        if isinstance(r, torch.Tensor):
            keep = r.reshape(1)
        else:
            keep = torch.full((1,), r, dtype=torch.long, device=loss.device)  # no host-to-device copy
        if reserved is not None:
            inf = torch.full_like(loss, float("inf"))
            loss = torch.where(reserved, inf, loss)
            key = None if key is None else torch.where(reserved, inf.to(key.dtype), key)
            keep = (keep - reserved.sum()).clamp(min=0)
        fill = None if key is None else split_keep(keep, fill_fraction)
        selected = select_samples(loss, keep, fill_key=key, fill=fill)
        return selected if reserved is None else selected | reserved

    def _hold_out(self) -> None:
        """Keep a seeded random share of the samples out of training while the rate is estimated.

        The noise-rate estimate (:func:`~modal_noisy.training.wrong_label_share`) needs predictions
        of samples the networks have not memorised; the held-out samples are still predicted
        every epoch and rejoin training once the estimate is frozen.
        """
        state = self.run_state_
        state.holding_out = self.forget_rate == "auto" and not getattr(self, "estimates_frozen_", False)
        if not state.holding_out or bool(state.held_out.any()):
            return
        # trusted labels are known: the estimate is of the others
        candidates = np.flatnonzero(~state.trusted.cpu().numpy())
        n = len(candidates)
        n_held = min(max(round(self._HOLD_OUT_SHARE * n), self._HOLD_OUT_MIN), n // 2)
        rng = np.random.RandomState(draw_seeds(self.random_state, 4)[3])
        held = np.zeros(state.n, dtype=bool)
        held[candidates[rng.choice(n, size=n_held, replace=False)]] = True
        state.held_out = torch.as_tensor(held, device=state.label.device)

    def _reserve(self, epoch: int, ramp: float) -> None:
        """Class-aware: pick each class's reserved samples for this epoch, once, for all batches.

        Class ``c`` reserves ``class_reserve · (1 - ramp · τ_c) · n_c`` of its ``n_c`` training
        samples (``τ_c`` its estimated noise rate), ranked within the class by each network's own
        loss averaged over the past epochs (VoG / random fill for the ``mix_ratio`` share when
        mixing is on). Deciding per epoch, not per batch, keeps a rare class's handful of samples
        per batch from turning its quota into a lottery.
        """
        state = self.run_state_
        state.reserved1 = state.reserved2 = None
        rates = getattr(self, "class_noise_rates_", None)
        if not self.class_aware or rates is None or epoch == 0:
            return
        k = state.n_classes
        train = state.is_train & (state.epochs_seen > 0) & ~state.trusted
        groups = torch.where(train, state.label, torch.full_like(state.label, k))
        counts = torch.bincount(groups, minlength=k + 1)[:k].cpu().numpy()
        rates = np.clip(np.asarray(rates, dtype=float), 0.0, 1.0)
        se = np.sqrt(rates * (1.0 - rates) / np.maximum(counts, 1))
        clean = np.minimum(1.0 - rates + self._RESERVE_SE * se, 1.0)
        # no class is assumed noisier than the data set: the estimate of a class that is mostly
        # noise is the least reliable one, and its few clean samples are the costliest to lose
        clean = np.maximum(clean, 1.0 - float(self.noise_rate_))
        frac = self.class_reserve * (1.0 - ramp * (1.0 - clean))
        # never empty a class: at least one reserved sample each
        keep = np.where(counts > 0, np.maximum(np.floor(frac * counts + 0.5), 1), 0)
        keep = np.append(keep, 0).astype(np.int64)
        keep_t = torch.as_tensor(keep, device=state.label.device)
        fill = split_keep(keep_t, self.mix_ratio) if self.epoch_mixing_ else None
        denom = state.epochs_seen.clamp(min=1).to(torch.float32)
        out = []
        for loss_sum, vog in ((state.loss_sum1, state.vog_values1), (state.loss_sum2, state.vog_values2)):
            key = None
            if fill is not None:
                if self.selection == "loss+vog":
                    key = vog.float()
                else:
                    key = torch.rand(state.n, generator=self.select_generator_, device=denom.device)
            out.append(select_samples(loss_sum / denom, keep_t, groups=groups, fill_key=key, fill=fill))
        state.reserved1, state.reserved2 = out

    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Validation loss of the summed logits; records held-out samples' loss and VoG."""
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        x, index = split_index(Xi)
        x = to_tensor(x, device=self.device)
        y = to_tensor(yi, device=self.device)
        with torch.no_grad():
            logits1, h1 = forward_capture(self.module_, x, fit_params)
            logits2 = self._call(self.module2_, x, fit_params)
            y_pred = logits1 + logits2
            loss = self.get_loss(y_pred, y, X=Xi, training=False)
            state = getattr(self, "run_state_", None)
            if index is not None and state is not None:
                index = index.to(self.device)
                state.loss1[index] = self._per_sample_loss(logits1, y).float()
                state.label[index] = y
                if state.vog1 is not None:
                    state.vog1.update(index, self._grad(logits1, h1, y))
        return {"loss": loss, "y_pred": y_pred}

    def _checkpoint_pass(self, dataset: Any) -> None:
        """VoG gradients from an eval-mode, no-gradient pass over the training set."""
        state = self.run_state_
        networks = [(self.module_, state.vog1), (self.module2_, state.vog2)]
        record_vog_pass(self, dataset, networks, grad=self._grad)

    # ------------------------------------------------------------------ epoch bookkeeping
    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        super().on_train_begin(net, X=X, y=y, **kwargs)
        if not hasattr(self, "noise_rate_"):
            self.noise_rate_ = 0.0 if self.forget_rate == "auto" else float(self.forget_rate)
        elif self.forget_rate != "auto":
            self.noise_rate_ = float(self.forget_rate)

    def on_train_end(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        super().on_train_end(net, X=X, y=y, **kwargs)
        self._mirror_optimizer()  # a schedule's last step after the last batch reaches both

    def on_epoch_begin(self, net: Any, dataset_train: Any = None, **kwargs: Any) -> None:
        super().on_epoch_begin(net, dataset_train=dataset_train, **kwargs)
        epoch = len(self.history) - 1
        state = self.run_state_
        self.epoch_forget_rate_ = forget_rate_at(epoch, self.noise_rate_, self.num_gradual, self.exponent)
        ramp = forget_rate_at(epoch, 1.0, self.num_gradual, self.exponent)
        mixing = self.selection != "loss" and epoch >= self.num_gradual
        if mixing and self.selection == "loss+vog":
            train_idx = torch.nonzero(state.is_train).squeeze(1)
            mixing = train_idx.numel() > 0 and state.vog1.min_count(train_idx) >= self.vog_window
        self.epoch_mixing_ = bool(mixing)
        self.trusting_ = bool(state.trusted.any())
        self._hold_out()
        self._reserve(epoch, ramp)
        self.epoch_loss_sum_ = torch.zeros(2, dtype=torch.float64, device=self.device)
        self.epoch_loss_count_ = 0
        state.seen.zero_()
        state.sel1.zero_()
        state.sel2.zero_()

    def on_epoch_end(self, net: Any, dataset_train: Any = None, **kwargs: Any) -> None:
        state = self.run_state_
        if self.vog_source == "checkpoint" and dataset_train is not None:
            self._checkpoint_pass(dataset_train)
        if state.vog1 is not None:
            state.vog_values1 = state.vog1.compute()
            state.vog_values2 = state.vog2.compute()
        epoch = len(self.history) - 1
        self._update_estimates(epoch)
        self._publish()
        seen = state.seen
        n_seen = max(int(seen.sum()), 1)
        self.history.record("forget_rate", float(self.epoch_forget_rate_))
        self.history.record("noise_rate", float(self.noise_rate_))
        self.history.record("class_noise_rates", [round(float(r), 3) for r in self.class_noise_rates_])
        self.history.record("selected_frac", float((state.sel1 & seen).sum()) / n_seen)
        self.history.record("vog_mixing", self.epoch_mixing_)
        if self.epoch_loss_count_:
            loss1, loss2 = (self.epoch_loss_sum_ / self.epoch_loss_count_).tolist()
            self.history.record("train_loss1", loss1)
            self.history.record("train_loss2", loss2)
        super().on_epoch_end(net, dataset_train=dataset_train, **kwargs)

    def _update_estimates(self, epoch: int) -> None:
        """Update the noise estimates from this epoch's training pass, until they are frozen.

        The overall estimate of an epoch uses that epoch's predictions of the held-out samples
        (see :meth:`_hold_out`); the per-class shape uses every training sample's predictions
        averaged over the epochs so far. The estimate in use from epoch 1 on is the median of the
        estimates of epochs 1, 2, … so far (the per-class shapes: their element-wise median); it
        is frozen when an estimate moves by less than ``_PLATEAU_TOL`` (relative) from the one
        before, and at the latest after epoch ``max(min(num_gradual, 6), 3) - 1``, before the
        networks memorise the noisy labels that the shape is computed from.
        """
        state = self.run_state_
        seen_t = state.seen
        if not bool(seen_t.any()):
            return
        state.loss_sum1[seen_t] += state.loss1[seen_t]
        state.loss_sum2[seen_t] += state.loss2[seen_t]
        state.prob_sum[seen_t] += state.prob[seen_t]
        state.epochs_seen[seen_t] += 1
        if getattr(self, "estimates_frozen_", False):
            return
        train = state.is_train & (state.epochs_seen > 0) & ~state.trusted
        epochs = state.epochs_seen[train].unsqueeze(1)
        labels = state.label[train].cpu().numpy()
        cum_prob = (state.prob_sum[train] / epochs).cpu().numpy()
        held = train & state.held_out & seen_t
        estimate = wrong_label_share(state.prob[held].cpu().numpy(), state.label[held].cpu().numpy())
        shape = class_noise_rates(labels, cum_prob)
        estimates = self.noise_estimates_
        move = np.inf
        if epoch >= 2 and len(estimates) >= 2:
            move = abs(estimate - estimates[-1]) / max(estimates[-1], 0.05)
        estimates.append(estimate)
        self.class_shapes_.append(shape)
        first = 1 if epoch >= 1 else epoch  # epoch 0 starts from untrained networks
        level = float(np.clip(np.median(estimates[first:]), *NOISE_RATE_RANGE))
        shape = np.median(np.stack(self.class_shapes_[first:]), axis=0)
        if self.forget_rate != "auto":
            level = float(self.forget_rate)
        counts = np.bincount(labels, minlength=state.n_classes)
        mean_shape = float((shape * counts).sum() / max(counts.sum(), 1))
        rates = shape * (level / mean_shape) if mean_shape > 0 else np.full_like(shape, level)
        small = (counts > 0) & (counts < self.MIN_CLASS_SAMPLES)
        rates = np.clip(np.where(small, level, rates), *NOISE_RATE_RANGE)
        self.noise_rate_ = level
        self.class_noise_rates_ = rates
        if self.class_aware and small.any() and len(estimates) == 1:
            warnings.warn(
                f"classes {np.flatnonzero(small).tolist()} have fewer than {self.MIN_CLASS_SAMPLES} "
                "training samples: they get the overall noise rate",
                UserWarning,
                stacklevel=2,
            )
        if move < self._PLATEAU_TOL or epoch >= max(min(self.num_gradual, 6), 3) - 1:
            self.estimates_frozen_ = True

    def _publish(self) -> None:
        state = self.run_state_
        self.clean_mask_ = (state.sel1 & state.seen).cpu().numpy()
        self.sample_loss_ = state.loss1.cpu().numpy().astype(np.float32)
        self.vog_ = state.vog_values1.float().cpu().numpy()
        # a sample no training pass has seen yet (a train_split's validation part) gets no information
        epochs = state.epochs_seen.unsqueeze(1)
        uniform = torch.full_like(state.prob_sum, 1.0 / state.n_classes)
        average = torch.where(epochs > 0, state.prob_sum / epochs.clamp(min=1), uniform)
        self.training_proba_ = average.cpu().numpy()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        run_state = state.get("run_state_")
        if run_state is not None:
            # per-sample tensors travel on the CPU, whatever device trained them
            state["run_state_"] = copy.deepcopy(run_state).to("cpu")
        for name in ("loader_generator_", "select_generator_"):
            state.pop(name, None)
        return state
