"""Batched, no-grad inference helpers shared by the query strategies (the torch side of scoring).

* :func:`preserved_mode` — restores the train/eval flag of every submodule afterwards, even on error;
* :func:`predict_proba` — class probabilities from any estimator, with a skorch net's modes restored;
* :func:`mc_dropout_proba` — Monte-Carlo dropout passes for BALD;
* :func:`penultimate_features` — inputs of the network's final linear layer, for core-set.

All of them leave the global torch RNG as they found it (:mod:`modal_noisy._seeding`): a DataLoader
draws its base seed from it, so a plain ``predict_proba`` would shift the caller's random stream.

Batches come from the net's own ``get_dataset`` / ``get_iterator(training=False)``, so its
``batch_size`` (or ``iterator_valid__batch_size``), dataset class and device apply unchanged.
A co-teaching net predicts with the sum of its networks' logits (``module_`` and ``module2_``)
while ``inference_networks_ == 2``, else with ``module_`` alone; :func:`mc_dropout_proba` does the
same, :func:`penultimate_features` always uses network 1 (``module_``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import to_tensor
from torch import nn

from modal_noisy._seeding import forked_rng, torch_seed
from modal_noisy.nets import final_linear

__all__ = [
    "DROPOUT_TYPES",
    "inference_modules",
    "is_skorch_net",
    "mc_dropout_proba",
    "penultimate_features",
    "predict_proba",
    "preserved_mode",
]

#: Layers that MC dropout switches to train mode. Functional dropout (``F.dropout`` inside a
#: ``forward``) follows its parent module's flag, which stays in eval mode, so it cannot be sampled.
DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def is_skorch_net(estimator: object) -> bool:
    return isinstance(estimator, NeuralNet)


def _all_torch_modules(net: object) -> list[nn.Module]:
    """Every initialised nn.Module a skorch net holds (``module_``, ``module2_``, ``criterion_``…)."""
    return [
        value
        for name, value in vars(net).items()
        if name.endswith("_") and not name.startswith("_") and isinstance(value, nn.Module)
    ]


@contextlib.contextmanager
def preserved_mode(modules: list[nn.Module]) -> Iterator[None]:
    """Restore the ``training`` flag of every submodule of ``modules`` when the block exits."""
    saved = [(m, m.training) for module in modules for m in module.modules()]
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def inference_modules(net: NeuralNet) -> list[nn.Module]:
    """The networks whose summed logits make the net's prediction (see the module docstring)."""
    module = getattr(net, "module_", None)
    if not isinstance(module, nn.Module):
        raise ValueError(
            f"{type(net).__name__} is not initialised: fit it (or call initialize()) before querying"
        )
    module2 = getattr(net, "module2_", None)
    n_networks = getattr(net, "inference_networks_", 2 if isinstance(module2, nn.Module) else 1)
    if n_networks == 2 and isinstance(module2, nn.Module):
        return [module, module2]
    return [module]


def _batches(net: NeuralNet, X: object) -> Iterator[object]:
    dataset = net.get_dataset(X)
    for batch in net.get_iterator(dataset, training=False):
        Xi = batch[0] if isinstance(batch, (tuple, list)) else batch
        yield to_tensor(Xi, device=net.device)


def _forward(module: nn.Module, Xi: object) -> torch.Tensor:
    out = module(**Xi) if isinstance(Xi, dict) else module(Xi)
    if isinstance(out, (tuple, list)):  # skorch convention: the first output is the prediction
        out = out[0]
    return out


def _nonlinearity(net: NeuralNet):
    # skorch's own choice for predict_proba (softmax after CrossEntropyLoss, identity after NLLLoss)
    get = getattr(net, "_get_predict_nonlinearity", None)
    return get() if callable(get) else (lambda z: torch.softmax(z, dim=-1))


def predict_proba(estimator: object, X: object) -> np.ndarray:
    """``estimator.predict_proba(X)``; a skorch net's modes and the global torch RNG are restored."""
    if not hasattr(estimator, "predict_proba"):
        raise ValueError(
            f"{type(estimator).__name__} has no predict_proba; pass pred_probs= or use an estimator "
            "that predicts probabilities"
        )
    if is_skorch_net(estimator):
        # a DataLoader draws its base seed from the global torch RNG: fork it so a query never
        # shifts the random stream of the caller's next training run
        with (
            preserved_mode(_all_torch_modules(estimator)),
            forked_rng(estimator.device),
        ):
            return np.asarray(estimator.predict_proba(X))
    return np.asarray(estimator.predict_proba(X))


def mc_dropout_proba(net: NeuralNet, X: object, *, n_passes: int, seed: int) -> np.ndarray:
    """Class probabilities of ``n_passes`` stochastic passes with only the dropout layers active.

    BatchNorm and every other layer stay in eval mode; each submodule's mode is restored afterwards.
    The passes run under :func:`modal_noisy._seeding.torch_seed` (forked generators seeded with
    ``seed``), so the caller's global torch RNG state is unchanged.

    Returns
    -------
    ndarray of shape (n_passes, n_samples, n_classes), float32

    Raises
    ------
    ValueError
        The networks hold no dropout layer (every pass would be identical).
    """
    modules = inference_modules(net)
    dropouts = [m for module in modules for m in module.modules() if isinstance(m, DROPOUT_TYPES)]
    if not dropouts:
        raise ValueError(
            f"MC dropout needs dropout layers ({', '.join(t.__name__ for t in DROPOUT_TYPES)}) in "
            f"the network, but {type(modules[0]).__name__} has none; build it with dropout > 0 "
            "(functional F.dropout cannot be switched on)"
        )
    nonlin = _nonlinearity(net)
    chunks: list[np.ndarray] = []
    with (
        preserved_mode(_all_torch_modules(net)),
        torch_seed(seed, net.device),
        torch.no_grad(),
    ):
        for module in modules:
            module.eval()
        for layer in dropouts:
            layer.train()
        for Xi in _batches(net, X):
            passes = [nonlin(sum(_forward(m, Xi) for m in modules)) for _ in range(n_passes)]
            chunks.append(torch.stack(passes).float().cpu().numpy())
    if not chunks:
        return np.zeros((n_passes, 0, 0), dtype=np.float32)
    return np.concatenate(chunks, axis=1)


def penultimate_features(net: NeuralNet, X: object) -> np.ndarray:
    """Inputs of network 1's final linear layer (``modal_noisy.nets.final_linear``), eval mode.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32
    """
    module = inference_modules(net)[0]
    head = final_linear(module)
    captured: list[np.ndarray] = []

    def grab(_layer: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured.append(args[0].detach().reshape(len(args[0]), -1).float().cpu().numpy())

    handle = head.register_forward_pre_hook(grab)
    try:
        with (
            preserved_mode(_all_torch_modules(net)),
            forked_rng(net.device),
            torch.no_grad(),
        ):
            module.eval()
            for Xi in _batches(net, X):
                _forward(module, Xi)
    finally:
        handle.remove()
    if not captured:
        return np.zeros((0, head.in_features), dtype=np.float32)
    return np.concatenate(captured, axis=0)
