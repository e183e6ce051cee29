"""Networks: a small CNN for 8×8–64×64 images and torchvision backbones with a new linear head.

Every network here

* standardises its input per channel from the buffers ``input_mean`` / ``input_std`` (shape ``(C,)``,
  default 0 / 1) and records in the boolean buffer ``input_stats_fitted`` whether they were set with
  :meth:`set_input_stats` (the skorch callback :class:`modal_noisy.training.InputStandardizer` does it
  from the training data); the buffers travel with ``state_dict`` and pickling, so a saved model
  carries its preprocessing;
* optionally filters the standardised input for local contrast (``local_contrast=sigma``: the image
  minus its Gaussian blur, :meth:`~SmallCNN.prepare_input`), so prediction gets the same filter;
* applies dropout (``dropout``, an :class:`torch.nn.Dropout`) right before its final layer, so MC-dropout
  (BALD) can switch it on at inference;
* exposes its final layer as the attribute ``head`` (an :class:`torch.nn.Linear`); use
  :func:`final_linear` to get it — VoG reads the penultimate features and the gradients of this layer.

Seeding: pass ``random_state=<int>`` to build the parameters from a private seed (the global torch RNG
is forked and restored, never reseeded for the caller). With skorch, ``module__random_state=0`` makes
every (re)initialisation of the module identical; two networks that must differ (co-teaching) need
two different seeds.

Weights: :func:`make_backbone` starts from a random initialisation, a state dict from a local path,
or torchvision's pretrained weights named by their enum (``ResNet18_Weights.IMAGENET1K_V1``) or its
name (``"IMAGENET1K_V1"``, ``"DEFAULT"``). Only the last downloads, through torchvision into the torch
hub cache, and only when asked for; a machine without access to the model host reads the cached file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from os import PathLike
from pathlib import Path

import torch
from torch import nn

from modal_noisy._seeding import torch_seed
from modal_noisy._validation import check_fraction, check_nonnegative, check_positive_int

__all__ = [
    "BACKBONES",
    "Backbone",
    "SmallCNN",
    "final_linear",
    "gaussian_blur",
    "gaussian_kernel",
    "make_backbone",
    "resolve_weights",
]

#: Names accepted by :func:`make_backbone`.
BACKBONES: tuple[str, ...] = ("resnet18", "mobilenet_v2")

# Stages of SmallCNN pool 2×2 only while the map is at least this wide, so an 8×8 input keeps a 4×4 map:
# pooling a tiny map down to a pixel or two throws away the spatial detail its classes differ by.
_MIN_POOL_SIZE = 8


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma`` pixels, radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of each channel of an NCHW batch, borders reflected.

    On images smaller than the kernel the kernel is cut to the widest reflection the image allows
    (radius ``min(H, W) - 1``) and renormalised.
    """
    radius = (kernel.numel() - 1) // 2
    fit = min(radius, x.shape[-2] - 1, x.shape[-1] - 1)
    if fit < radius:
        kernel = kernel[radius - fit : radius + fit + 1]
        kernel = kernel / kernel.sum()
    if fit == 0:  # a one-pixel side: nothing to blur with
        return x
    c = x.shape[1]
    kernel = kernel.to(dtype=x.dtype)
    x = nn.functional.pad(x, (fit, fit, fit, fit), mode="reflect")
    x = nn.functional.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return nn.functional.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class _InputStandardization(nn.Module):
    """Mixin module: per-channel ``(x - mean) / std`` from buffers set by :meth:`set_input_stats`,
    optionally followed by a local-contrast filter (``local_contrast``)."""

    input_mean: torch.Tensor
    input_std: torch.Tensor
    input_stats_fitted: torch.Tensor
    contrast_kernel: torch.Tensor
    local_contrast: float

    def _init_input_stats(self, in_channels: int, local_contrast: float = 0.0) -> None:
        self.register_buffer("input_mean", torch.zeros(in_channels))
        self.register_buffer("input_std", torch.ones(in_channels))
        self.register_buffer("input_stats_fitted", torch.tensor(False))
        self.local_contrast = check_nonnegative(local_contrast, "local_contrast")
        # derived from the constructor argument, so kept out of the state dict; a buffer so that
        # it follows the module to its device
        kernel = gaussian_kernel(self.local_contrast) if self.local_contrast else torch.zeros(0)
        self.register_buffer("contrast_kernel", kernel, persistent=False)

    @property
    def in_channels(self) -> int:
        return int(self.input_mean.shape[0])

    def set_input_stats(
        self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
    ) -> None:
        """Set the per-channel input mean and standard deviation and mark them as fitted.

        Parameters
        ----------
        mean, std : array-like of shape (in_channels,)
            Statistics of the training images, per channel, in the units the network receives.
            A standard deviation below 1e-6 (a constant channel) is replaced by 1 so the channel is
            only centred.
        """
        mean_t = torch.as_tensor(mean, dtype=torch.float32).detach().reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).detach().reshape(-1)
        c = self.in_channels
        if mean_t.numel() != c or std_t.numel() != c:
            raise ValueError(
                f"mean and std must have one value per input channel ({c}) "
                f"(got {mean_t.numel()} and {std_t.numel()})"
            )
        if not (torch.isfinite(mean_t).all() and torch.isfinite(std_t).all()):
            raise ValueError("mean and std must be finite")
        if (std_t < 0).any():
            raise ValueError(f"std must be >= 0 (got {std_t.tolist()})")
        std_t = torch.where(std_t < 1e-6, torch.ones_like(std_t), std_t)
        device = self.input_mean.device
        self.input_mean.copy_(mean_t.to(device))
        self.input_std.copy_(std_t.to(device))
        self.input_stats_fitted.fill_(True)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(x - input_mean) / input_std``, per channel of an NCHW batch."""
        if x.ndim != 4:
            raise ValueError(f"expected an NCHW batch with 4 dimensions (got shape {tuple(x.shape)})")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected {self.in_channels} input channel(s) (got shape {tuple(x.shape)})"
            )
        x = x.to(self.input_mean.dtype) if not x.is_floating_point() else x
        return (x - self.input_mean.view(1, -1, 1, 1)) / self.input_std.view(1, -1, 1, 1)

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the network's first layer sees: :meth:`standardize`, then the local-contrast filter.

        With ``local_contrast = sigma > 0`` the standardised image minus its Gaussian blur of
        standard deviation ``sigma`` pixels (borders reflected) is returned: each pixel relative to
        its neighbourhood, the preprocessing of Graham (2015) for fundus photographs, which removes
        the slow changes of illumination between images and keeps small structures.
        """
        x = self.standardize(x)
        if self.local_contrast:
            x = x - gaussian_blur(x, self.contrast_kernel)
        return x


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(_InputStandardization):
    """A small VGG-style CNN for images from 8×8 to 64×64 pixels.

    Three stages of two 3×3 conv–BatchNorm–ReLU blocks (``width``, ``2·width``, ``4·width`` channels).
    A stage is followed by 2×2 max pooling only while its map is at least 8 pixels wide, so an 8×8
    input is pooled once (to 4×4) and keeps its spatial detail, while 28×28 and 64×64 inputs are
    pooled two and three times. Global average pooling, dropout and a linear ``head`` follow.

    Parameters
    ----------
    in_channels : int, default=1
        Number of input channels (1 for grayscale, 3 for RGB).
    n_classes : int, default=10
        Number of output logits.
    dropout : float, default=0.0
        Dropout probability before the head (in [0, 1)); > 0 enables MC-dropout BALD.
    width : int, default=32
        Channels of the first stage.
    local_contrast : float, default=0.0
        Standard deviation in pixels of the Gaussian blur subtracted from the standardised input
        (:meth:`prepare_input`); 0 turns the filter off. For fundus photographs use about a
        fourteenth of the side (2 at 28×28): the filter removes slowly varying illumination, which
        carries no class information there (its measured effect: ``benchmarks/README.md``).
    random_state : int or None, default=None
        Seed for the parameter initialisation (global torch RNG forked, not reseeded).

    Attributes
    ----------
    features : nn.Sequential
        The convolutional stages.
    dropout : nn.Dropout
    head : nn.Linear
        The final layer, ``4·width`` features to ``n_classes`` logits.
    input_mean, input_std, input_stats_fitted : torch.Tensor
        Buffers of the input standardisation (see :meth:`set_input_stats`).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 10,
        dropout: float = 0.0,
        width: int = 32,
        *,
        local_contrast: float = 0.0,
        random_state: int | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_classes, "n_classes")
        check_positive_int(width, "width")
        check_fraction(dropout, "dropout", high_inclusive=False)
        self._init_input_stats(in_channels, local_contrast)
        with torch_seed(random_state, name="random_state"):  # parameters are created on the CPU
            self.stages = nn.ModuleList(
                [
                    nn.Sequential(_conv_bn_relu(c_in, c_out), _conv_bn_relu(c_out, c_out))
                    for c_in, c_out in (
                        (in_channels, width),
                        (width, 2 * width),
                        (2 * width, 4 * width),
                    )
                ]
            )
            self.pool = nn.MaxPool2d(2)
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(4 * width, n_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (input of ``dropout`` and ``head``), shape ``(N, 4·width)``."""
        x = self.prepare_input(x)
        for stage in self.stages:
            x = stage(x)
            if min(x.shape[-2:]) >= _MIN_POOL_SIZE:
                x = self.pool(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))


class Backbone(_InputStandardization):
    """A torchvision feature extractor with input standardisation, dropout and a new linear ``head``.

    Built by :func:`make_backbone`; ``body`` is the torchvision model with its classifier replaced
    by :class:`torch.nn.Identity`, so it returns the pooled penultimate features.
    """

    def __init__(
        self,
        body: nn.Module,
        n_features: int,
        in_channels: int,
        n_classes: int,
        dropout: float,
        local_contrast: float = 0.0,
    ) -> None:
        super().__init__()
        self._init_input_stats(in_channels, local_contrast)
        self.body = body
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_features, n_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))


def _first_conv_name(name: str) -> str:
    return {"resnet18": "conv1", "mobilenet_v2": "features.0.0"}[name]


def _head_prefix(name: str) -> str:
    return {"resnet18": "fc.", "mobilenet_v2": "classifier."}[name]


def _adapt_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Map an RGB first-conv kernel to ``in_channels`` inputs, keeping the response to a flat image."""
    if weight.shape[1] == in_channels:
        return weight
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (weight.shape[1] / in_channels)


def _load_state_dict(path: str | PathLike[str], parameter: str = "weights_path") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{parameter} does not exist or is not a file (got {str(path)!r})")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"{parameter} must hold a state dict (a mapping of tensors) (got {type(state).__name__})"
        )
    return state


# a string that names a file rather than a torchvision weight
_WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def resolve_weights(name: str, weights: object) -> Enum | Path | None:
    """Resolve the ``weights`` argument of :func:`make_backbone` without loading anything.

    Parameters
    ----------
    name : {"resnet18", "mobilenet_v2"}
        The torchvision architecture.
    weights : None, torchvision weight enum, str or path
        ``None``; a member of the architecture's weight enum (``ResNet18_Weights.IMAGENET1K_V1``);
        its name, alone (``"IMAGENET1K_V1"``, ``"DEFAULT"``) or qualified
        (``"ResNet18_Weights.IMAGENET1K_V1"``); or the path of a local state dict (a
        :class:`os.PathLike`, or a string with a path separator or a ``.pt``/``.pth``/``.bin``/``.ckpt``
        suffix).

    Returns
    -------
    torchvision weight enum member, Path or None

    Raises
    ------
    ValueError
        A weight name the architecture does not have, or an enum member of another architecture;
        the message lists the names it has.
    TypeError
        ``weights`` of another type.
    """
    from torchvision import models

    if name not in BACKBONES:
        raise ValueError(f"name must be one of {list(BACKBONES)} (got {name!r})")
    if weights is None:
        return None
    enum_class = models.get_model_weights(name)
    names = [*enum_class.__members__]
    if isinstance(weights, Enum):
        if not isinstance(weights, enum_class):
            raise ValueError(
                f"weights must be one of {enum_class.__name__}.{{{', '.join(names)}}} for {name} "
                f"(got {type(weights).__name__}.{weights.name})"
            )
        return weights
    if isinstance(weights, PathLike):
        return Path(weights)
    if not isinstance(weights, str):
        raise TypeError(
            f"weights must be None, a torchvision weight enum, its name or a path "
            f"(got {type(weights).__name__})"
        )
    if "/" in weights or "\\" in weights or weights.lower().endswith(_WEIGHT_FILE_SUFFIXES):
        return Path(weights)
    prefix, _, member = weights.rpartition(".")
    if prefix in ("", enum_class.__name__) and member in enum_class.__members__:
        return enum_class[member]
    raise ValueError(
        f"weights must name one of {name}'s torchvision weights {names} (alone or as "
        f"'{enum_class.__name__}.<name>') or be a path to a state dict file (got {weights!r})"
    )


def _weights_state_dict(weights: Enum) -> dict[str, torch.Tensor]:
    """The state dict of torchvision weights: from the torch hub cache, else downloaded into it."""
    try:
        return weights.get_state_dict(progress=False, check_hash=True)  # type: ignore[attr-defined]
    except OSError as exc:  # urllib's URLError is an OSError: no network, host unreachable
        raise OSError(
            f"could not load torchvision weights {type(weights).__name__}.{weights.name}: they are not "
            f"in the torch hub cache ({torch.hub.get_dir()}/checkpoints) and {weights.url} "  # type: ignore[attr-defined]
            f"could not be downloaded ({exc}); download the file on a machine with access and copy it "
            "into that folder, or pass a local state dict path"
        ) from exc


def make_backbone(
    name: str,
    *,
    in_channels: int = 3,
    n_classes: int,
    weights: object = None,
    weights_path: str | PathLike[str] | None = None,
    dropout: float = 0.0,
    local_contrast: float = 0.0,
    random_state: int | None = None,
) -> Backbone:
    """Build a torchvision ``resnet18`` or ``mobilenet_v2`` with a new head, optionally pretrained.

    Parameters
    ----------
    name : {"resnet18", "mobilenet_v2"}
        The torchvision architecture.
    in_channels : int, default=3
        Input channels. With loaded RGB weights the first convolution's kernel is averaged over
        its input channels and repeated, scaled by ``3 / in_channels``.
    n_classes : int
        Number of output logits of the new ``head``.
    weights : None, torchvision weight enum, str or path, default=None
        Pretrained weights of the body: torchvision's enum member (``ResNet18_Weights.IMAGENET1K_V1``)
        or its name (``"IMAGENET1K_V1"``, ``"DEFAULT"``, ``"ResNet18_Weights.IMAGENET1K_V1"``), read
        from the torch hub cache or downloaded into it; or a local state dict file (see
        :func:`resolve_weights`). ``None`` keeps the random initialisation.
    weights_path : path or None, default=None
        Local file with a state dict of the torchvision model (e.g. ImageNet weights the user
        downloaded, or ``torchvision.models.resnet18().state_dict()`` saved with ``torch.save``);
        the same as passing the path as ``weights``. In every case the classifier (``fc.*`` /
        ``classifier.*``) of the loaded weights is ignored and every other key must match.
    dropout : float, default=0.0
        Dropout probability before the head.
    local_contrast : float, default=0.0
        The local-contrast filter of :class:`SmallCNN` (Gaussian sigma in pixels; 0: off).
    random_state : int or None, default=None
        Seed for the initialisation of every parameter that is not loaded.

    Returns
    -------
    Backbone
        A module with ``body``, ``dropout``, ``head`` and the input-standardisation buffers.

    Raises
    ------
    ValueError
        Unknown ``name``, an unknown weight name, both ``weights`` and ``weights_path``, or a state
        dict whose keys or shapes do not match the architecture.
    FileNotFoundError
        The weights file does not exist.
    OSError
        Torchvision weights that are neither cached nor downloadable.
    """
    # torchvision costs seconds to import and only the backbones need it: SmallCNN (and so phase 1
    # on small images) stays usable without loading it
    from torchvision import models

    if name not in BACKBONES:
        raise ValueError(f"name must be one of {list(BACKBONES)} (got {name!r})")
    check_positive_int(in_channels, "in_channels")
    check_positive_int(n_classes, "n_classes")
    check_fraction(dropout, "dropout", high_inclusive=False)
    local_contrast = check_nonnegative(local_contrast, "local_contrast")
    if weights is not None and weights_path is not None:
        raise ValueError(
            f"give weights or weights_path, not both (got weights={weights!r}, "
            f"weights_path={str(weights_path)!r})"
        )
    source: object = weights if weights_path is None else Path(weights_path)
    resolved = resolve_weights(name, source)
    parameter = "weights_path" if weights_path is not None else "weights"
    if resolved is None:
        state = None
    elif isinstance(resolved, Path):
        state = _load_state_dict(resolved, parameter)
    else:
        state = _weights_state_dict(resolved)

    with torch_seed(random_state, name="random_state"):  # parameters are created on the CPU
        body = getattr(models, name)(weights=None)
        conv_name = _first_conv_name(name)
        parent_name, _, attr = conv_name.rpartition(".")
        parent = body.get_submodule(parent_name) if parent_name else body
        old: nn.Conv2d = getattr(parent, attr)
        if in_channels != old.in_channels:
            setattr(
                parent,
                attr,
                nn.Conv2d(
                    in_channels,
                    old.out_channels,
                    kernel_size=old.kernel_size,  # type: ignore[arg-type]
                    stride=old.stride,  # type: ignore[arg-type]
                    padding=old.padding,  # type: ignore[arg-type]
                    bias=old.bias is not None,
                ),
            )
        if name == "resnet18":
            n_features = body.fc.in_features
            body.fc = nn.Identity()
        else:
            n_features = body.classifier[-1].in_features
            body.classifier = nn.Identity()  # its Dropout is replaced by ours
        net = Backbone(body, n_features, in_channels, n_classes, dropout, local_contrast)

    if state is not None:
        prefix = _head_prefix(name)
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
        key = conv_name + ".weight"
        if key in state:
            state[key] = _adapt_conv_weight(state[key], in_channels)
        try:
            body.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{parameter} {str(source)!r} does not match torchvision {name}: {exc}") from exc
    return net


def final_linear(module: nn.Module) -> nn.Linear:
    """Return the final linear layer of a network: its ``head`` attribute.

    This is the one supported way to find the layer whose per-sample gradients give VoG.
    A custom network works with this library if it stores its last layer as ``head``. A
    ``DistributedDataParallel`` (or ``DataParallel``) wrapper is looked through.

    Raises
    ------
    TypeError
        The module has no ``head`` attribute, or it is not an :class:`torch.nn.Linear`.
    """
    inner = getattr(module, "module", None)
    if not hasattr(module, "head") and isinstance(inner, nn.Module):
        module = inner  # look through a (Distributed)DataParallel wrapper
    head = getattr(module, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(
            f"{type(module).__name__} has no final linear layer: expected an attribute 'head' "
            f"that is an nn.Linear (got {type(head).__name__}); store your last layer as "
            "`self.head = nn.Linear(...)`"
        )
    return head
