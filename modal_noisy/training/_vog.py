"""Variance of Gradients (VoG) from the last linear layer, in closed form, with a per-sample ring buffer.

For logits ``z = W h + b``, softmax ``p`` and given label ``y``, the cross-entropy gradient with respect
to the row ``y`` of ``[W | b]`` is ``(p_y - 1) · [h, 1]`` (times the class weight ``w_y`` and with the
smoothed target ``1 - ε + ε/C`` in place of 1 under label smoothing). So the per-sample gradient that VoG
tracks is available from the forward pass alone: capture ``h`` (the input of the final linear layer)
with a forward hook, read ``p_y`` from the logits. No second backward pass, no per-sample autograd.

:class:`VoGBuffer` keeps the last ``window`` gradients of every sample, keyed by dataset index, and turns
them into VoG once per epoch with written-out moments (one vectorised pass over the buffer; the per-batch
work is a single scatter). :func:`record_vog_pass` is the one eval-mode pass over a training set that
fills such buffers, shared by the :class:`~modal_noisy.training.VoGTracker` callback and
``CoTeachingClassifier(vog_source="checkpoint")``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import nn

from modal_noisy._validation import check_positive_int
from modal_noisy.nets import final_linear
from modal_noisy.training._indexed import split_index

__all__ = [
    "VOG_DTYPES",
    "VoGBuffer",
    "capture_input",
    "forward_capture",
    "last_layer_grad",
    "record_vog_pass",
]

#: Storage types of a VoG ring buffer, by the name a user passes (``dtype=`` / ``vog_dtype=``).
VOG_DTYPES = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64}


class _InputCapture:
    """Forward hook that keeps the (first) input of the layer it is registered on."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        self.value = inputs[0]


@contextlib.contextmanager
def capture_input(layer: nn.Module) -> Iterator[_InputCapture]:
    """Record the input of ``layer`` during the forward passes run inside the block.

    The hook is registered on entry and removed on exit, so modules never carry it outside the block
    (they stay picklable and unaffected when used elsewhere).
    """
    capture = _InputCapture()
    handle = layer.register_forward_hook(capture)
    try:
        yield capture
    finally:
        handle.remove()


def last_layer_grad(
    logits: torch.Tensor,
    features: torch.Tensor,
    y: torch.Tensor,
    *,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Per-sample cross-entropy gradient w.r.t. the given label's row of the final linear layer.

    Parameters
    ----------
    logits : Tensor of shape (B, C)
        Output of the final linear layer.
    features : Tensor of shape (B, D)
        Input of the final linear layer (``h``).
    y : LongTensor of shape (B,)
        Given labels.
    class_weight : Tensor of shape (C,), optional
        The ``weight`` of :class:`torch.nn.CrossEntropyLoss`, if any.
    label_smoothing : float, default=0.0
        The ``label_smoothing`` of :class:`torch.nn.CrossEntropyLoss`.

    Returns
    -------
    Tensor of shape (B, D + 1)
        ``[∂l/∂W[y], ∂l/∂b[y]]`` for each sample, detached, in the dtype of ``features``.
    """
    logits = logits.detach()
    features = features.detach().flatten(1)
    n_classes = logits.shape[1]
    p_y = torch.softmax(logits.to(features.dtype), dim=1).gather(1, y.view(-1, 1)).squeeze(1)
    target = 1.0 - label_smoothing + label_smoothing / n_classes
    coef = p_y - target
    if class_weight is not None:
        coef = coef * class_weight.to(coef)[y]
    coef = coef.unsqueeze(1)
    return torch.cat([coef * features, coef], dim=1)


class VoGBuffer:
    """Ring buffer of the last ``window`` per-sample gradients and their VoG.

    VoG of a sample = mean over the ``D + 1`` gradient coordinates of the (population) standard
    deviation of that coordinate over the gradients stored for the sample. Before a sample has
    ``window`` gradients, the standard deviation is taken over the ones it has (so VoG is 0 after a
    single observation and 0 for a sample never observed): always finite.

    Memory: ``n_samples × window × dim`` values of ``dtype`` (float32: 4 bytes each; e.g. 10,000
    samples × 5 epochs × 129 → 26 MB), plus one int64 counter per sample.

    Parameters
    ----------
    n_samples : int
        Number of samples (dataset indices ``0 … n_samples - 1``).
    dim : int
        Gradient size (``D + 1``: the features of the final layer plus its bias).
    window : int
        Number of most recent gradients kept per sample (``K``), at least 2.
    dtype : torch.dtype, default=torch.float32
        Storage type; ``torch.float16`` halves the memory (moments are always computed in float32 or
        the gradients' own wider type).
    device : str or torch.device, default="cpu"
    """

    def __init__(
        self,
        n_samples: int,
        dim: int,
        window: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        check_positive_int(n_samples, "n_samples")
        check_positive_int(dim, "dim")
        check_positive_int(window, "window", minimum=2)
        self.n_samples = n_samples
        self.dim = dim
        self.window = window
        self.buffer = torch.zeros(n_samples, window, dim, dtype=dtype, device=device)
        self.count = torch.zeros(n_samples, dtype=torch.long, device=device)

    @property
    def nbytes(self) -> int:
        """Memory held by the buffer and the counters, in bytes."""
        return self.buffer.element_size() * self.buffer.numel() + 8 * self.n_samples

    def update(self, index: torch.Tensor, grads: torch.Tensor) -> None:
        """Store one new gradient for each sample in ``index`` (distinct dataset indices)."""
        index = index.to(self.count.device)
        slot = self.count[index] % self.window
        self.buffer[index, slot] = grads.to(self.buffer.dtype)
        self.count[index] += 1

    def min_count(self, index: torch.Tensor | None = None) -> int:
        """Fewest gradients stored for any sample (of ``index`` when given)."""
        count = self.count if index is None else self.count[index]
        return int(count.min()) if count.numel() else 0

    def compute(self, *, chunk_size: int = 4096) -> torch.Tensor:
        """VoG of every sample, a float tensor of shape ``(n_samples,)`` on the buffer's device.

        Two passes over each chunk of the buffer (mean, then squared deviations) with the moments
        written out, instead of ``Tensor.std``: same result, a fraction of the time.
        """
        out_dtype = torch.float64 if self.buffer.dtype == torch.float64 else torch.float32
        out = torch.empty(self.n_samples, dtype=out_dtype, device=self.buffer.device)
        slots = torch.arange(self.window, device=self.buffer.device)
        for start in range(0, self.n_samples, chunk_size):
            stop = min(start + chunk_size, self.n_samples)
            buf = self.buffer[start:stop].to(out_dtype)
            n_obs = self.count[start:stop].clamp(max=self.window)
            # weights 1/n over the filled slots; the ring fills slots 0, 1, … in order
            weight = (slots < n_obs.unsqueeze(1)).to(out_dtype) / n_obs.clamp(min=1).unsqueeze(1)
            weight = weight.unsqueeze(2)
            mean = (buf * weight).sum(dim=1, keepdim=True)
            dev = buf - mean
            var = (dev * dev * weight).sum(dim=1)
            out[start:stop] = var.sqrt().mean(dim=1)
        return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def forward_capture(
    module: nn.Module, x: Any, fit_params: Mapping[str, Any] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``module`` on a batch; return its output and the input of its final linear layer.

    A dict batch is passed as keyword arguments (skorch's convention); a tuple output gives its first
    element.

    Raises
    ------
    RuntimeError
        The forward pass never called the final layer, so there is no input to take VoG from.
    """
    fit_params = fit_params or {}
    with capture_input(final_linear(module)) as cap:
        out = module(**{**x, **fit_params}) if isinstance(x, Mapping) else module(x, **fit_params)
    if cap.value is None:
        raise RuntimeError(f"{type(module).__name__}.forward did not call its final linear layer")
    return (out[0] if isinstance(out, tuple) else out), cap.value


def record_vog_pass(
    net: Any,
    dataset: Any,
    networks: Sequence[tuple[nn.Module, VoGBuffer]],
    *,
    grad: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = last_layer_grad,
    probabilities: bool = False,
) -> None:
    """Add one last-layer gradient per sample to each network's buffer, from an eval-mode pass.

    The pass runs over ``net.get_iterator(dataset, training=False)`` (in order, no shuffling) with
    no gradient and every network in eval mode, so BatchNorm statistics and dropout stay untouched;
    each network's train/eval mode is restored afterwards, even on error. A sample's buffer slot is
    its dataset index when the batches carry one (:class:`~modal_noisy.training._indexed.IndexedDataset`),
    else its position in the pass.

    Parameters
    ----------
    net : skorch net
        Supplies the batches and the device.
    dataset : torch Dataset
        The training set.
    networks : sequence of (module, VoGBuffer)
        The networks and the buffers their gradients go to.
    grad : callable, default=last_layer_grad
        ``grad(logits, features, y)`` -> per-sample gradients (bind a criterion's class weights or
        label smoothing here).
    probabilities : bool, default=False
        The modules return probabilities (a final softmax); their log is taken as the logits.
    """
    modes = [module.training for module, _ in networks]
    for module, _ in networks:
        module.eval()
    offset = 0
    try:
        with torch.no_grad():
            for batch in net.get_iterator(dataset, training=False):
                Xi, yi = unpack_data(batch)
                x, index = split_index(Xi)
                x = to_tensor(x, device=net.device)
                y = to_tensor(yi, device=net.device).long()
                if index is None:
                    index = torch.arange(offset, offset + len(y))
                index = index.to(net.device)
                offset += len(y)
                for module, buffer in networks:
                    out, features = forward_capture(module, x)
                    logits = torch.log(out.clamp_min(1e-30)) if probabilities else out
                    buffer.update(index, grad(logits, features, y))
    finally:
        for (module, _), mode in zip(networks, modes, strict=True):
            module.train(mode)
