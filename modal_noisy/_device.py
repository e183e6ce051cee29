"""The check of a ``device`` parameter: a torch device this machine has, refused before any work."""

from __future__ import annotations

import torch

__all__ = ["check_device"]


def check_device(device: object, name: str = "device") -> str:
    """Return ``device`` after checking it names a device torch can use here.

    Accepts ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` (when that GPU exists), ``"mps"`` (when available) and
    a :class:`torch.device`; ``None`` is refused.

    Raises
    ------
    ValueError
        When ``device`` is not a device name, or names a GPU this machine does not have.
    """
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"{name} must be 'cpu', 'cuda' or 'cuda:N' (got {device!r})")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must be 'cpu', 'cuda' or 'cuda:N' (got {device!r})") from None
    if parsed.type == "cuda":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ValueError(f"{name}={str(device)!r} needs a CUDA GPU, and this machine has none; use 'cpu'")
        if parsed.index is not None and parsed.index >= available:
            raise ValueError(
                f"{name}={str(device)!r} names GPU {parsed.index}, and this machine has {available} "
                f"(cuda:0 to cuda:{available - 1})"
            )
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name}={str(device)!r} needs Apple's MPS, which is not available here")
    elif parsed.type != "cpu":
        raise ValueError(f"{name} must be 'cpu', 'cuda' or 'cuda:N' (got {device!r})")
    return device if isinstance(device, str) else str(device)
