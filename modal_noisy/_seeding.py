"""The one way library code seeds torch: forked generators, so the caller's random state is untouched.

Every random component takes ``random_state``; :func:`draw_seeds` turns it into integer seeds and
:func:`torch_seed` runs a block under one of them (network initialisation, data-loader shuffling,
MC-dropout masks) and restores the global generators afterwards. Library code never calls
``torch.manual_seed``.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["draw_seeds", "forked_rng", "torch_seed"]


def draw_seeds(random_state: object, n: int) -> list[int]:
    """``n`` integer seeds from ``random_state`` (None, an int or a ``numpy.random.RandomState``).

    An int always gives the same seeds; None draws from numpy's global generator (advancing it,
    never seeding it), as scikit-learn estimators do.
    """
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(0, np.iinfo(np.int32).max, size=n)]


def _cuda_devices(device: str | torch.device | None) -> list[int]:
    """The index of the CUDA device in use, as a list; empty on the CPU or without CUDA."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type != "cuda" or not torch.cuda.is_available():
        return []
    return [dev.index if dev.index is not None else torch.cuda.current_device()]


@contextlib.contextmanager
def forked_rng(device: str | torch.device | None = "cpu") -> Iterator[list[int]]:
    """Run the block with torch's CPU generator (and that of a CUDA ``device``) forked.

    Whatever the block draws (a DataLoader's base seed, dropout masks), the caller's random streams
    continue on exit exactly as if it had never run. Yields the CUDA device indices forked.
    """
    devices = _cuda_devices(device)
    with torch.random.fork_rng(devices=devices):
        yield devices


@contextlib.contextmanager
def torch_seed(
    seed: int | None, device: str | torch.device | None = "cpu", *, name: str = "seed"
) -> Iterator[None]:
    """Run the block with torch's CPU generator (and that of a CUDA ``device``) seeded with ``seed``.

    The generators are forked first (:func:`forked_rng`) and restored on exit, so the caller's
    random streams continue exactly as if the block had never run. Only the CUDA device in use is
    forked and seeded (seeding all devices lazily would leak into devices that are initialised
    later). ``seed=None`` runs the block unseeded and unforked: it draws from the global generators,
    as torch itself would. ``name`` is the parameter the seed came from, for the error message.
    """
    if seed is None:
        yield
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int or None (got {seed!r})")
    with forked_rng(device) as cuda_devices:
        torch.random.default_generator.manual_seed(int(seed))
        for index in cuda_devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(int(seed))
        yield
