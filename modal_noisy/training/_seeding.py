"""Private seeds for torch without touching the caller's global random state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["draw_seeds", "torch_seed"]


def draw_seeds(random_state: object, n: int) -> list[int]:
    """``n`` integer seeds from ``random_state`` (None, an int or a ``numpy.random.RandomState``).

    An int always gives the same seeds; None draws from numpy's global generator (advancing it,
    never seeding it), as scikit-learn estimators do.
    """
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(0, np.iinfo(np.int32).max, size=n)]


@contextlib.contextmanager
def torch_seed(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the block with torch's CPU generator (and that of a CUDA ``device``) seeded with ``seed``.

    The generators are forked first and restored on exit, so the caller's random streams continue
    exactly as if the block had never run. Only the CUDA device in use is forked and seeded (seeding
    all devices lazily would leak into devices that are initialised later).
    """
    dev = torch.device(device)
    cuda_devices: list[int] = []
    if dev.type == "cuda" and torch.cuda.is_available():
        cuda_devices = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda_devices):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda_devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
