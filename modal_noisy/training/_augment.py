"""Label-preserving random flips / rotations of training batches, as a DataLoader ``collate_fn``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import default_collate

from modal_noisy._validation import check_choice
from modal_noisy.training._indexed import X_KEY

__all__ = ["AUGMENT_MODES", "RandomFlips"]

#: Modes accepted by :class:`RandomFlips` (and ``recommended_net_kwargs(augment=...)``).
AUGMENT_MODES: tuple[str, ...] = ("flips", "dihedral")


class RandomFlips:
    """A ``collate_fn`` that collates a batch, then flips (and rotates) each image at random.

    Use it for the training iterator only (skorch: ``iterator_train__collate_fn=RandomFlips()``);
    prediction and scoring stay unaugmented. Only for images whose label does not depend on
    orientation — fundus photographs, dermoscopy, histology — never for digits or text.

    Parameters
    ----------
    mode : {"flips", "dihedral"}, default="flips"
        ``"flips"``: horizontal and vertical flip, each with probability 1/2 (4 variants).
        ``"dihedral"``: additionally a rotation by a random multiple of 90° (all 8 symmetries of
        the square; square images only).
    random_state : int or None, default=None
        Seed of a private ``torch.Generator`` (created at the first batch); None draws from torch's
        global generator (never seeding it).

    Notes
    -----
    Batches whose input is a tensor of shape ``(N, C, H, W)`` are augmented, and so are the
    images of batches from :class:`modal_noisy.training._indexed.IndexedDataset` (a mapping with
    the images under its reserved key); anything else raises :class:`TypeError`.
    """

    def __init__(self, mode: str = "flips", *, random_state: int | None = None) -> None:
        self.mode = mode
        self.random_state = random_state

    def _generator(self) -> torch.Generator | None:
        if self.random_state is None:
            return None
        gen = getattr(self, "_gen", None)
        if gen is None:
            gen = torch.Generator().manual_seed(int(self.random_state))
            self._gen = gen
        return gen

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Return a randomly flipped (and, for ``"dihedral"``, rotated) copy of an NCHW batch."""
        check_choice(self.mode, "mode", AUGMENT_MODES)
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"RandomFlips needs image batches of shape (N, C, H, W) (got {shape})")
        gen = self._generator()
        n = x.shape[0]
        draws = torch.rand(n, 3, generator=gen)
        flip_w = (draws[:, 0] < 0.5).view(-1, 1, 1, 1)
        flip_h = (draws[:, 1] < 0.5).view(-1, 1, 1, 1)
        x = torch.where(flip_w, x.flip(-1), x)
        x = torch.where(flip_h, x.flip(-2), x)
        if self.mode == "dihedral":
            if x.shape[-1] != x.shape[-2]:
                raise ValueError(
                    f"mode='dihedral' needs square images (got {x.shape[-2]}×{x.shape[-1]}); "
                    "use mode='flips'"
                )
            # with both flips, one transpose completes the 8 symmetries of the square
            transpose = (draws[:, 2] < 0.5).view(-1, 1, 1, 1)
            x = torch.where(transpose, x.transpose(-1, -2), x)
        return x

    def __call__(self, batch: list[Any]) -> Any:
        collated = default_collate(batch)
        if not isinstance(collated, (list, tuple)) or len(collated) != 2:
            return self._augment_input(collated)
        xb, yb = collated
        return self._augment_input(xb), yb

    def _augment_input(self, xb: Any) -> Any:
        if isinstance(xb, Mapping) and X_KEY in xb:
            out = dict(xb)
            out[X_KEY] = self.augment(xb[X_KEY])
            return out
        return self.augment(xb)

    def __repr__(self) -> str:
        return f"RandomFlips(mode={self.mode!r}, random_state={self.random_state!r})"
